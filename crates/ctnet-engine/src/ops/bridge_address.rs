//! A network's bridge keeps one hardware address for good.
//!
//! A Linux bridge made without an address takes the lowest address of its ports, again
//! each time a port comes or goes, unless its address was set explicitly
//! (`addr_assign_type` NET_ADDR_SET). The gateway's address then changes when the
//! container with the lowest port address leaves, and every other container, whose ARP
//! entry still holds the old one, is cut off from the gateway, the host and the internet
//! until that entry goes stale (measured 44 s). ctnet makes bridges with an address of
//! their own (`driver::bridge::create_bridge`); a bridge made by an older ctnet is pinned
//! to the address it has the first time it is used again (an attach, any removal of a port, `ctnet gc`), which
//! changes nothing on the wire.
//!
//! The check is one sysfs read (netlink does not report `addr_assign_type`); only a bridge
//! not pinned yet costs netlink round trips, once.

use ctnet_kernel::link::{self, NET_ADDR_SET};

use crate::engine::{random_hex, Engine};
use crate::error::{Error, Result};
use crate::model::Network;

impl Engine {
    /// Pins the address of `net`'s bridge to the one it has, if nothing set it yet. A
    /// bridge missing from the kernel is left to the operation's own error; a sysfs that
    /// shows another namespace (its index for the name differs) means it cannot be told,
    /// and nothing is done.
    pub(crate) fn pin_bridge_address(&mut self, net: &Network) -> Result<()> {
        // A macvlan network has no bridge; what `bridge` names is never touched.
        if !net.driver.is_bridged() {
            return Ok(());
        }
        if link::address_assign_type(&net.bridge).is_some_and(|(t, _)| t == NET_ADDR_SET) {
            return Ok(());
        }
        let object = format!("bridge {} of network {:?}", net.bridge, net.name.as_str());
        let kernel = |e| Error::kernel(&object, e);
        let host = self.host()?;
        let Some(bridge) = link::get(host, net.bridge.as_str()).map_err(kernel)? else {
            return Ok(());
        };
        let seen = link::address_assign_type(&net.bridge);
        let (Some((assigned, index)), Some(mac)) = (seen, bridge.mac) else {
            return Ok(());
        };
        if index != bridge.index || assigned == NET_ADDR_SET {
            return Ok(());
        }
        host.execute(link::set_address_request(bridge.index, mac, &object))
            .map_err(kernel)
    }
}

impl Engine {
    /// Pins the bridge address of every network (`ctnet gc`).
    pub(crate) fn pin_bridge_addresses(&mut self) -> Result<()> {
        for net in crate::state::list_networks(self.store.read())? {
            self.pin_bridge_address(&net)?;
        }
        Ok(())
    }
}

/// A random, locally administered, unicast hardware address: a new bridge's, or a
/// container's whose automatic one is taken.
pub(crate) fn random_local_mac() -> [u8; 6] {
    let hex = random_hex(6);
    let bytes = std::array::from_fn(|i| {
        u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).expect("hex from random_hex")
    });
    crate::driver::bridge::bridge_mac(bytes)
}
