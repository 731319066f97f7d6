//! One module per command group.

pub mod agent;
pub mod docs;
pub mod doctor;
pub mod endpoint;
pub mod inspect;
pub mod netns;
pub mod network;
pub mod overlay;
pub mod policy;
pub mod run;
pub mod topology;
pub mod trace;
