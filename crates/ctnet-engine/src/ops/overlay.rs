//! Overlay networks on this host: the agent's half (joining with a leased block,
//! programming the peers) and the checks a one-shot makes before an attach.
//!
//! ```text
//!   this host                                   each peer P (from etcd, via the agent)
//!   network row: driver overlay, subnet = block  route  P.block via P.vtep dev vx onlink
//!   br-<id>  gateway block.1/N                   neigh  P.vtep lladdr P.mac dev vx permanent
//!   vx-<id>  vxlan VNI, local underlay, 4789,    fdb    P.mac dev vx dst P.underlay self permanent
//!            nolearning, MAC from VNI+underlay,
//!            address block.0/32
//!   unreachable  cluster subnet (what no block above covers: a peer that left)
//! ```
//!
//! Peers are programmed by replacing each wanted entry in place (a replace of what is
//! already there changes nothing in the data path) and deleting only entries of peers
//! that are no longer wanted: a re-read after a watch error or compaction never
//! flushes (flannel#636).

use std::net::{IpAddr, Ipv4Addr};

use ctnet_kernel::netlink::Request;
use ctnet_kernel::{addr, link, neigh, route, vxlan, IfName};
use ipnet::Ipv4Net;

use crate::agent;
use crate::engine::Engine;
use crate::error::{Error, ErrorKind, Result};
use crate::model::overlay::{
    block_addresses, peer_changes, vtep_mac, OverlayConfig, OverlayDef, Peer, PeerChanges,
    VXLAN_PORT,
};
use crate::model::{Driver, Family, Isolation, Network, NetworkName, Subnet};
use crate::ops::firewall::{firewall_error, vxlan_sources};
use crate::ops::network::NetworkSpec;
use crate::state;

/// The device that holds a host's underlay address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Underlay {
    /// The address.
    pub addr: Ipv4Addr,
    /// Its device's index.
    pub index: u32,
    /// Its device's name.
    pub name: String,
    /// Its device's MTU.
    pub mtu: u32,
}

/// What the agent asks for when it joins an overlay.
#[derive(Debug, Clone)]
pub struct OverlayJoin {
    /// The overlay, as etcd has it.
    pub def: OverlayDef,
    /// The block this host leased.
    pub block: Ipv4Net,
    /// This host's underlay.
    pub underlay: Underlay,
}

fn overlay_object(name: &NetworkName) -> String {
    format!("overlay network {:?}", name.as_str())
}

impl Engine {
    /// The device holding `addr` on this host; an error naming the address and the
    /// addresses there are when it is not this host's.
    pub fn underlay(&mut self, addr: Ipv4Addr) -> Result<Underlay> {
        let object = format!("advertise address {addr}");
        let host = self.host()?;
        let addrs = ctnet_kernel::addr::list(host).map_err(|e| Error::kernel(&object, e))?;
        let Some(found) = addrs.iter().find(|a| a.address == addr) else {
            let mine: Vec<String> = addrs
                .iter()
                .filter(|a| !a.address.is_loopback())
                .map(|a| a.address.to_string())
                .collect();
            return Err(Error::invalid(
                &object,
                "is not an address of this host",
                if mine.is_empty() {
                    "give the address this host has on the underlay network".to_string()
                } else {
                    format!("give one of this host's addresses: {}", mine.join(", "))
                },
            ));
        };
        let links = link::list(host).map_err(|e| Error::kernel(&object, e))?;
        let dev = links
            .into_iter()
            .find(|l| l.index == found.index)
            .ok_or_else(|| {
                Error::new(ErrorKind::Kernel, &object, "its device vanished", "retry")
            })?;
        Ok(Underlay {
            addr,
            index: dev.index,
            name: dev.name,
            mtu: dev.mtu,
        })
    }

    /// Makes this host's part of an overlay, or checks and repairs it: the network row
    /// (its subnet the leased block), the bridge with the gateway, the VXLAN device with
    /// the VTEP address, and the firewall's elements. A network that holds another block
    /// is made again only while it has no containers.
    pub fn join_overlay(&mut self, join: &OverlayJoin) -> Result<Network> {
        let name = &join.def.name;
        let object = overlay_object(name);
        if let Some(net) = self.find_network(name)? {
            if net.driver != Driver::Overlay {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    &object,
                    format!(
                        "a {} network of that name exists on this host",
                        net.driver.as_str()
                    ),
                    format!("remove it (`ctnet network rm {name}`) or rename the overlay"),
                ));
            }
            if same_overlay(&net, join) {
                self.ensure_overlay_devices(&net)?;
                self.sync_vxlan_sources()?;
                return Ok(net);
            }
            if !self.endpoints_on(name)?.is_empty() {
                return Err(Error::new(
                    ErrorKind::InUse,
                    &object,
                    format!(
                        "this host holds block {} with containers, but etcd now gives it {}",
                        net.subnets_text(),
                        join.block
                    ),
                    "detach its containers, then restart the agent",
                ));
            }
            self.remove_network(name)?;
        }
        let spec = overlay_spec(join);
        let net = self.create_network(spec)?;
        self.sync_vxlan_sources()?;
        Ok(net)
    }

    /// The VXLAN device and its address, made by [`Engine::create_network`] for an
    /// overlay (after the bridge and gateway).
    pub(crate) fn build_overlay_devices(&mut self, net: &Network) -> Result<()> {
        let Some(o) = &net.overlay else {
            return Ok(());
        };
        let object = overlay_object(&net.name);
        let kernel = |e| Error::kernel(&object, e);
        let underlay = self.underlay(o.underlay)?;
        let name = IfName::new(&o.vxlan)?;
        let mtu = net
            .mtu
            .unwrap_or(underlay.mtu.saturating_sub(vxlan::VXLAN_OVERHEAD));
        let vni = vxlan::Vni::new(o.vni.get())
            .map_err(|_| Error::invalid(&object, format!("VNI {} is out of range", o.vni), ""))?;
        let spec = vxlan::VxlanSpec {
            name: &name,
            vni,
            local: o.underlay,
            underlay_index: Some(underlay.index),
            port: VXLAN_PORT,
            mac: o.mac().bytes(),
            mtu,
        };
        let host = self.host()?;
        host.execute(vxlan::create_vxlan_request(&spec))
            .map_err(kernel)?;
        let index = link::index_of(host, name.as_str())
            .map_err(kernel)?
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Kernel,
                    &object,
                    format!("VXLAN device {name} vanished while being set up"),
                    "retry",
                )
            })?;
        let (vtep, _) = block_addresses(block_of(net)?);
        host.execute_all(vec![
            addr::add_request(index, vtep, 32, name.as_str()),
            link::set_up_request(index, name.as_str()),
            cluster_route_request(o),
        ])
        .map_err(kernel)?;
        Ok(())
    }

    /// Whether the cluster subnet's unreachable route is there (see
    /// [`cluster_route_request`]).
    fn has_cluster_route(&mut self, o: &OverlayConfig) -> Result<bool> {
        let routes = route::list_family(self.host()?, ctnet_kernel::Family::V4)
            .map_err(|e| Error::kernel(format!("overlay cluster {}", o.cluster), e))?;
        Ok(routes.iter().any(|r| is_cluster_route(r, o)))
    }

    /// Puts back a VXLAN device that is gone (a reboot, a hand-deleted device), or the
    /// cluster subnet's unreachable route; says what was made again.
    pub(crate) fn ensure_overlay_devices(&mut self, net: &Network) -> Result<Option<String>> {
        let Some(o) = &net.overlay else {
            return Ok(None);
        };
        let object = overlay_object(&net.name);
        let host = self.host()?;
        let present = link::get(host, &o.vxlan)
            .map_err(|e| Error::kernel(&object, e))?
            .is_some();
        if present {
            if self.has_cluster_route(o)? {
                return Ok(None);
            }
            self.host()?
                .execute(cluster_route_request(o))
                .map_err(|e| Error::kernel(&object, e))?;
            return Ok(Some(format!("unreachable route {} made again", o.cluster)));
        }
        self.build_overlay_devices(net)?;
        // Its peers' entries went with it.
        self.store
            .write(|tx| state::set_overlay_peers(tx, &net.name, &[]))?;
        Ok(Some(format!(
            "VXLAN device {} made again (its peers come back with the agent's next sync)",
            o.vxlan
        )))
    }

    /// Programs an overlay's peers: the store records them, the kernel gets the three
    /// entries of each wanted peer (replaced in place) and loses those of peers no longer
    /// wanted, and the firewall admits VXLAN from exactly the peers of all overlays.
    pub fn set_overlay_peers(
        &mut self,
        name: &NetworkName,
        wanted: &[Peer],
    ) -> Result<PeerChanges> {
        let object = overlay_object(name);
        let net = self.network(name)?;
        let Some(o) = net.overlay.clone() else {
            return Err(Error::invalid(&object, "is not an overlay network", ""));
        };
        let programmed = state::overlay_peers(self.store.read(), name)?;
        let changes = peer_changes(wanted, &programmed);
        let kernel = |e| Error::kernel(&object, e);
        let host = self.host()?;
        let index = link::index_of(host, &o.vxlan)
            .map_err(kernel)?
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Kernel,
                    &object,
                    format!("its VXLAN device {} is missing", o.vxlan),
                    "restart ctnet-agent, which makes it again",
                )
            })?;
        let mut requests: Vec<Request> = Vec::new();
        for peer in &changes.remove {
            requests.extend(remove_peer_requests(index, peer));
        }
        // Deletions of entries already gone fail; each goes on its own.
        for request in requests {
            let _ = host.execute(request);
        }
        let mut requests = Vec::new();
        for peer in wanted {
            requests.extend(add_peer_requests(index, peer));
        }
        host.execute_all(requests).map_err(kernel)?;
        // The agent syncs every second: the store is written only when peers change, so
        // its readers (who notice any commit) are not woken for nothing.
        if changes != PeerChanges::default() {
            self.store
                .write(|tx| state::set_overlay_peers(tx, name, wanted))?;
        }
        self.sync_vxlan_sources()?;
        Ok(changes)
    }

    /// Makes the firewall's VXLAN source sets what the store says.
    pub fn sync_vxlan_sources(&mut self) -> Result<()> {
        let sources = vxlan_sources(self.store.read())?;
        self.ensure_firewall()?;
        self.firewall
            .set_vxlan_sources(&sources)
            .map_err(firewall_error)
    }

    /// The overlay networks this host has joined.
    pub fn overlay_networks(&mut self) -> Result<Vec<Network>> {
        Ok(self
            .networks()?
            .into_iter()
            .filter(|n| n.driver == Driver::Overlay)
            .collect())
    }

    /// The peers recorded for an overlay network.
    pub fn overlay_peers(&mut self, name: &NetworkName) -> Result<Vec<Peer>> {
        state::overlay_peers(self.store.read(), name)
    }

    /// How many containers are attached to a network on this host.
    pub fn container_count(&mut self, name: &NetworkName) -> Result<usize> {
        Ok(self.endpoints_on(name)?.len())
    }

    fn endpoints_on(&mut self, name: &NetworkName) -> Result<Vec<crate::model::Endpoint>> {
        Ok(state::list_endpoints(self.store.read())?
            .into_iter()
            .filter(|ep| &ep.network == name)
            .collect())
    }

    /// Refuses an attach to an overlay network while no agent runs on this host: without
    /// it no peer would learn of the container's host, and peers that come and go would
    /// never be programmed.
    pub(crate) fn check_overlay_agent(&self, net: &Network) -> Result<()> {
        if net.driver != Driver::Overlay || agent::running_pid(&self.paths).is_some() {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::Unavailable,
            overlay_object(&net.name),
            "no ctnet-agent runs on this host, and the agent keeps an overlay's hosts in touch",
            "start it: `ctnet-agent --etcd URL --advertise-addr UNDERLAY_IP` (see docs/overlay.md)",
        ))
    }
}

/// Whether an existing network is this join's overlay with the same block.
fn same_overlay(net: &Network, join: &OverlayJoin) -> bool {
    let Some(o) = &net.overlay else {
        return false;
    };
    o.vni == join.def.vni
        && o.cluster == join.def.subnet
        && o.underlay == join.underlay.addr
        && block_of(net).ok() == Some(join.block)
}

fn block_of(net: &Network) -> Result<Ipv4Net> {
    match net.subnet(Family::V4).map(|s| s.subnet) {
        Some(Subnet::V4(block)) => Ok(block),
        _ => Err(Error::invalid(
            overlay_object(&net.name),
            "has no IPv4 block",
            "remove it with `ctnet network rm` and restart the agent",
        )),
    }
}

/// The local network an overlay join makes: a bridge network on the block, isolated from
/// other networks as `ctnet network create` makes them, without the DNS server (the
/// agent knows only this host's names).
fn overlay_spec(join: &OverlayJoin) -> NetworkSpec {
    let (_, gateway) = block_addresses(join.block);
    let mut spec = NetworkSpec::named(join.def.name.clone());
    spec.driver = Driver::Overlay;
    spec.subnets = vec![Subnet::V4(join.block)];
    spec.gateways = vec![IpAddr::V4(gateway)];
    spec.mtu = Some(join.def.mtu_over(join.underlay.mtu));
    spec.isolation = Isolation::Strict;
    spec.dns = false;
    spec.overlay = Some(OverlayConfig {
        cluster: join.def.subnet,
        vni: join.def.vni,
        host_prefix: join.def.host_prefix,
        vxlan: String::new(),
        underlay: join.underlay.addr,
        vtep_mac: vtep_mac(join.def.vni, join.underlay.addr).to_string(),
    });
    spec
}

/// The cluster subnet's unreachable route: the host's own block (on its bridge) and
/// each peer's (via the VXLAN device) are more specific, so it catches only blocks no
/// host holds here yet, or any more: a container's packet to a peer that left gets
/// "host unreachable" at once instead of leaving by the default route, masqueraded,
/// towards the wan.
pub(crate) fn cluster_route_request(o: &OverlayConfig) -> Request {
    route::add_unreachable_route_request(o.cluster.network(), o.cluster.prefix_len())
}

/// The request that deletes [`cluster_route_request`]'s route.
pub(crate) fn delete_cluster_route_request(o: &OverlayConfig) -> Request {
    route::delete_unreachable_route_request(o.cluster.network(), o.cluster.prefix_len())
}

fn is_cluster_route(r: &route::RouteInfo, o: &OverlayConfig) -> bool {
    r.kind == route::RouteType::Unreachable
        && r.destination == IpAddr::V4(o.cluster.network())
        && r.prefix_len == o.cluster.prefix_len()
        && r.table == u32::from(route::MAIN_TABLE)
}

/// A peer's three entries: the route to its block through its VTEP address, the
/// permanent neighbour entry for that address, and the FDB entry sending its VTEP MAC
/// to its underlay address.
fn add_peer_requests(vx_index: u32, peer: &Peer) -> Vec<Request> {
    let mac = peer.vtep_mac.bytes();
    vec![
        neigh::add_neighbour_request(vx_index, peer.vtep_ip(), mac),
        neigh::add_fdb_request(vx_index, mac, peer.underlay),
        route::add_onlink_route_request(
            peer.block.network(),
            peer.block.prefix_len(),
            peer.vtep_ip(),
            vx_index,
        ),
    ]
}

fn remove_peer_requests(vx_index: u32, peer: &Peer) -> Vec<Request> {
    vec![
        route::delete_route_request(peer.block.network(), peer.block.prefix_len(), vx_index),
        neigh::delete_neighbour_request(vx_index, peer.vtep_ip()),
        neigh::delete_fdb_request(vx_index, peer.vtep_mac.bytes(), peer.underlay),
    ]
}
