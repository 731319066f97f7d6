//! Drivers: what a network of each kind asks of the kernel. A driver decides and returns
//! plans (netlink requests, in order); `ops` sends them, each plan in one pipelined
//! round trip, and undoes them on failure. Plans are values, so a driver's decisions are
//! unit-tested without root.
//!
//! - [`bridge`]: a Linux bridge with the gateways on it; each container a veth pair whose
//!   host side is a port of the bridge.

//! - [`routes`]: which of a container's networks give it a default route, with what
//!   metric (ctnet's rule and netavark's).

pub mod bridge;
pub mod routes;
