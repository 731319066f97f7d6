//! The kernel floor: the least work the kernel must do to give a container a bridged
//! interface, asked for straight from this process over rtnetlink. No process start, no
//! state, no firewall, no port publishing: what every real system pays on top of this is
//! its own overhead.
//!
//! Attach: (optionally) a named namespace, then one veth pair made with its peer directly
//! inside the namespace, the host side enslaved to the bridge and up in the same message;
//! then, from inside the namespace, loopback and `eth0` up, the address and the default
//! route in one pipelined round trip. Detach: delete the host side (the peer goes with it)
//! and, if it was made in the attach, the namespace.

use std::collections::BTreeSet;
use std::os::fd::AsFd;
use std::time::Instant;

use ctnet_kernel::link::{self, BridgeSpec, VethSpec};
use ctnet_kernel::{addr, route, sysctl, IfName, Netns, RtSocket};

use super::{Cost, System};
use crate::layout;
use crate::sandbox::World;

/// The floor, in one of two flavours.
pub struct Floor {
    label: String,
    world: World,
    /// A socket in the world's own namespace, opened once: the floor pays no set-up.
    sock: RtSocket,
    /// True: the attach creates the namespace and the detach deletes it. False: the
    /// namespace is made beforehand, untimed, as for ctnet and the peers.
    with_netns: bool,
    /// Bridge indexes of the networks made so far, by network number.
    bridges: Vec<u32>,
    prepared: BTreeSet<usize>,
}

impl Floor {
    /// A floor in `world`; `with_netns` says whether namespace creation is timed.
    pub fn new(world: World, with_netns: bool) -> Result<Floor, String> {
        let sock = RtSocket::open().map_err(|e| format!("kernel floor: {e}"))?;
        let label = if with_netns {
            "kernel floor (+ netns)".to_string()
        } else {
            "kernel floor".to_string()
        };
        Ok(Floor {
            label,
            world,
            sock,
            with_netns,
            bridges: Vec::new(),
            prepared: BTreeSet::new(),
        })
    }

    fn netns_name(i: usize) -> String {
        format!("fl{i}")
    }

    /// Creates bridges up to network `j`: up, with the gateway address.
    fn ensure_bridge(&mut self, j: usize) -> Result<(), String> {
        while self.bridges.len() <= j {
            let k = self.bridges.len();
            let name = ifname(&format!("flbr{k}"))?;
            link::create_bridge(
                &mut self.sock,
                // As ctnet makes its bridges: the floor makes the same kernel calls.
                &BridgeSpec {
                    name: &name,
                    mtu: None,
                    multicast_snooping: false,
                    mac: None,
                },
            )
            .map_err(|e| e.to_string())?;
            let index = link::index_of(&mut self.sock, name.as_str())
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("bridge {name} vanished right after it was made"))?;
            addr::add(
                &mut self.sock,
                index,
                layout::gateway(k),
                layout::PREFIX_LEN,
                name.as_str(),
            )
            .map_err(|e| e.to_string())?;
            self.bridges.push(index);
        }
        Ok(())
    }
}

fn ifname(name: &str) -> Result<IfName, String> {
    IfName::new(name).map_err(|e| e.to_string())
}

/// Host-side veth name of container `i` ("vfl123").
fn host_veth(i: usize) -> String {
    format!("vfl{i}")
}

impl System for Floor {
    fn label(&self) -> &str {
        &self.label
    }

    fn prepare(&mut self, i: usize) -> Result<(), String> {
        self.ensure_bridge(layout::network_of(i))
            .map_err(|e| format!("kernel floor: {e}"))?;
        if !self.with_netns && self.prepared.insert(i) {
            self.world.create_netns(&Floor::netns_name(i))?;
        }
        Ok(())
    }

    fn attach(&mut self, i: usize) -> Result<Cost, String> {
        let name = Floor::netns_name(i);
        let host = ifname(&host_veth(i))?;
        let peer = ifname("eth0")?;
        let j = layout::network_of(i);
        let master = *self
            .bridges
            .get(j)
            .ok_or("kernel floor: attach before prepare")?;
        let start = Instant::now();
        let ns = if self.with_netns {
            self.world.create_netns(&name)?
        } else {
            Netns::open(&self.world.netns_path(&name)).map_err(|e| e.to_string())?
        };
        // The same kernel calls ctnet makes: the veth (peer made in the namespace, host
        // side enslaved and up), IPv6 off on the host side, then from a socket
        // opened inside the namespace one pipelined round trip for lo, eth0, the
        // address and the default route.
        self.sock
            .execute_all(vec![link::create_veth_request(&VethSpec {
                name: &host,
                peer_name: &peer,
                peer_netns: ns.as_fd(),
                master: Some(master),
                mtu: None,
                peer_mac: None,
            })])
            .map_err(|e| format!("kernel floor: {e}"))?;
        sysctl::disable_ipv6(&host).map_err(|e| format!("kernel floor: {e}"))?;
        ns.within(RtSocket::open)
            .and_then(|mut sock| {
                let index = link::index_of(&mut sock, "eth0")?.unwrap_or(0);
                sock.execute_all(vec![
                    link::no_ipv6_link_local_request(&peer),
                    link::set_up_request(1, "lo"),
                    link::set_up_request(index, "eth0"),
                    addr::add_request(index, layout::address(i), layout::PREFIX_LEN, "eth0"),
                    route::add_default_request(layout::gateway(j)),
                ])
            })
            .map_err(|e| format!("kernel floor, inside {name}: {e}"))?;
        Ok(Cost {
            wall: start.elapsed(),
            max_rss_kib: None,
        })
    }

    fn detach(&mut self, i: usize) -> Result<Cost, String> {
        let start = Instant::now();
        link::delete(&mut self.sock, &host_veth(i)).map_err(|e| format!("kernel floor: {e}"))?;
        if self.with_netns {
            self.world.delete_netns(&Floor::netns_name(i))?;
        }
        Ok(Cost {
            wall: start.elapsed(),
            max_rss_kib: None,
        })
    }
}
