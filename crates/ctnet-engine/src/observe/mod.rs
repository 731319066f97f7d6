//! Observation: reading what the kernel really holds and comparing it with what ctnet
//! recorded. Nothing here changes the host.
//!
//! - [`doctor`]: what on the host will silently drop ctnet's traffic;
//! - [`check`]: one endpoint against the kernel (CNI's CHECK);
//! - [`inspect`]: one container as the kernel holds it, beside its rows;
//! - [`trace`]: one real probe packet followed through the kernel's chains and rules;
//! - [`topology`]: the whole host's networks, devices and namespaces, each once.

pub mod check;
pub mod doctor;
pub mod inspect;
pub mod topology;
pub mod trace;
