//! Allocation: choices that must be unique on the host, made as pure functions over what
//! is taken. The caller reads "what is taken" inside the same state transaction that
//! records the choice, so two processes never get the same subnet, address or port.
//!
//! - [`subnets`]: subnets for new networks (IPv4 pools, IPv6 unique local /64s);
//! - [`addresses`]: addresses for containers, per family;
//! - [`host_ports`]: host ports for published ports.

pub mod addresses;
pub mod host_ports;
pub mod subnets;
