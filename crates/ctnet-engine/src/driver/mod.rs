//! Drivers: what a network of each kind asks of the kernel. A driver decides and returns
//! plans (netlink requests, in order); `ops` sends them, each plan in one pipelined
//! round trip, and undoes them on failure. Plans are values, so a driver's decisions are
//! unit-tested without root.
//!
//! - [`bridge`]: a Linux bridge with the gateways on it; each container a veth pair whose
//!   host side is a port of the bridge.
//! - [`macvlan`]: nothing on the host but the user's parent interface; each container a
//!   macvlan interface over it, made inside the container's namespace.
//! - [`routes`]: which of a container's networks give it a default route, with what
//!   metric (ctnet's rule and netavark's).

pub mod bridge;
pub mod macvlan;
pub mod routes;

use crate::datapath::nft::NetworkRules;
use crate::model::{Driver, Network};

/// A network's part of ctnet's nftables table, if its driver has one: a bridge
/// network's subnets and bridge; nothing for a macvlan network, whose traffic never
/// passes ctnet's rules (netavark adds none for macvlan either).
pub fn network_rules(net: &Network) -> Option<NetworkRules> {
    match net.driver {
        Driver::Bridge | Driver::Overlay => Some(bridge::network_rules(net)),
        Driver::Macvlan => None,
    }
}
