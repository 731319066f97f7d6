//! Drift: the store's networks and endpoints against the kernel's objects, and the
//! repairs `ctnet gc` (and, for a network's bridge, the next attach) makes.
//!
//! ```text
//!  store row                      kernel object checked                  repair
//!  network (ready) ───────────── bridge exists, is a bridge, up ──────── made again (after a
//!                                 gateway address of each family           reboot, an `ip link
//!                                                                          del`), gateways,
//!                                                                          sysctls, elements
//!  endpoint (ready) ──┬───────── namespace still the one attached ─────── gone: the endpoint
//!                     │           (its inode)                              is removed
//!                     ├───────── host veth exists, up, a port of the ──── made again (the pair,
//!                     │           network's bridge                         into the namespace),
//!                     │                                                    or re-enslaved
//!                     └───────── in the namespace: the interface, up, ─── the veth made again
//!                                 its addresses, its default routes (gateway,
//!                                 metric; a next hop of a multipath one counts)
//!  network with policies ──────── its bridge's nf_call_iptables and ──── set again
//!                                 nf_call_ip6tables flags on
//! ```
//!
//! A macvlan network has no bridge: its parent (the user's interface) is checked to
//! exist and be up, never made; its endpoints have no host side, and the interface
//! inside the container is checked, and made again over the parent, as a veth's
//! container side is. A macvlan network is never "repaired" into a bridge.
//!
//! Firewall elements are compared by the table's audit (`datapath/nft/audit.rs`).
//! Checks read only; repairs run under the store's write lock with the row read again,
//! so a detach that claimed the endpoint meanwhile is never undone by a repair.

use ctnet_kernel::{addr, link, route, sysctl, Netns, RtSocket};

use crate::driver::bridge::network_rules;
use crate::driver::{bridge, routes};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::model::{Endpoint, Family, Network, RowState};
use crate::ops::endpoint::container_object;
use crate::ops::macvlan;
use crate::owner::Owner;
use crate::state;

/// One difference between the store and the kernel.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Drift {
    /// The store's object, e.g. `network "blue"` or `container "c1" on network "blue"`.
    pub object: String,
    /// What the kernel lacks or has wrong.
    pub detail: String,
    /// What to do.
    pub fix: String,
}

/// What `gc` can do about a network's bridge or an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndpointState {
    /// Everything in place.
    Healthy,
    /// The namespace it was attached in no longer exists.
    NamespaceGone,
    /// The host side is there but not a port of the bridge (the bridge was made again).
    NotEnslaved,
    /// The veth, or something inside the container, is missing: make the veth again.
    Broken,
}

const GC_FIX: &str = "run `ctnet gc`, which makes it again";

fn network_label(net: &Network) -> String {
    format!("network {:?}", net.name.as_str())
}

fn endpoint_label(ep: &Endpoint) -> String {
    format!(
        "{} on network {:?}",
        container_object(&ep.container),
        ep.network.as_str()
    )
}

impl Engine {
    /// Each network's state as the host's links show it, from one link dump: its row
    /// state, or `degraded (…)` for a ready network whose bridge is missing or down
    /// (`ctnet doctor` checks the rest).
    pub fn network_states(&mut self, networks: &[Network]) -> Result<Vec<String>> {
        let links = link::list(self.host()?).map_err(|e| Error::kernel("host links", e))?;
        Ok(networks
            .iter()
            .map(|net| {
                if net.state != RowState::Ready {
                    return net.state.as_str().to_string();
                }
                if let Some(macvlan) = &net.macvlan {
                    return match links.iter().find(|l| l.name == macvlan.parent.as_str()) {
                        None => format!("degraded (parent {} missing)", macvlan.parent),
                        Some(p) if !p.up => format!("degraded (parent {} down)", macvlan.parent),
                        Some(_) => net.state.as_str().to_string(),
                    };
                }
                match links.iter().find(|l| l.name == net.bridge.as_str()) {
                    None => format!("degraded (bridge {} missing)", net.bridge),
                    Some(b) if !b.up => format!("degraded (bridge {} down)", net.bridge),
                    Some(_) => match &net.overlay {
                        Some(o) => match links.iter().find(|l| l.name == o.vxlan) {
                            None => format!("degraded (VXLAN device {} missing)", o.vxlan),
                            Some(v) if !v.up => {
                                format!("degraded (VXLAN device {} down)", o.vxlan)
                            }
                            Some(_) => net.state.as_str().to_string(),
                        },
                        None => net.state.as_str().to_string(),
                    },
                }
            })
            .collect())
    }

    /// Each endpoint's state as the host's links show it, from one link dump: its row
    /// state, or `degraded (…)` for a ready endpoint whose veth is missing or not a port
    /// of its bridge (`ctnet doctor` looks inside the containers too).
    pub fn endpoint_states(&mut self, endpoints: &[Endpoint]) -> Result<Vec<String>> {
        let links = link::list(self.host()?).map_err(|e| Error::kernel("host links", e))?;
        let networks = state::list_networks(self.store.read())?;
        Ok(endpoints
            .iter()
            .map(|ep| {
                if ep.state != RowState::Ready {
                    return ep.state.as_str().to_string();
                }
                // A macvlan endpoint has nothing on the host to look at (doctor looks
                // inside the container).
                let Some(veth) = &ep.host_ifname else {
                    return ep.state.as_str().to_string();
                };
                let bridge = networks
                    .iter()
                    .find(|n| n.name == ep.network)
                    .and_then(|n| links.iter().find(|l| l.name == n.bridge.as_str()));
                match links.iter().find(|l| l.name == veth.as_str()) {
                    // The kernel removes a veth with its namespace: say which of the two
                    // was lost, as the fixes differ (gc releases the row; or it remakes
                    // the veth). Only a row already missing its veth pays the look.
                    None if namespace_lost(ep) => {
                        "degraded (namespace gone: `ctnet gc` releases it)".to_string()
                    }
                    None => format!("degraded (veth {veth} missing)"),
                    Some(v) if bridge.is_none_or(|b| v.master != Some(b.index)) => {
                        format!("degraded (veth {veth} not on its bridge)")
                    }
                    Some(_) => ep.state.as_str().to_string(),
                }
            })
            .collect())
    }

    /// Every difference between the store's ready networks and endpoints and the kernel.
    pub fn drift(&mut self) -> Result<Vec<Drift>> {
        let networks = ready_networks(self)?;
        let endpoints = ready_endpoints(self)?;
        self.drift_among(&networks, &endpoints)
    }

    /// The differences of `endpoints` (those ready) and of their networks only: what one
    /// container's `inspect` shows, without looking into every other container.
    pub fn drift_of(&mut self, endpoints: &[Endpoint]) -> Result<Vec<Drift>> {
        let networks: Vec<Network> = ready_networks(self)?
            .into_iter()
            .filter(|n| endpoints.iter().any(|e| e.network == n.name))
            .collect();
        let ready: Vec<Endpoint> = endpoints
            .iter()
            .filter(|e| e.state == RowState::Ready)
            .cloned()
            .collect();
        self.drift_among(&networks, &ready)
    }

    /// The differences of one network and its ready endpoints (`network inspect`).
    pub fn drift_of_network(&mut self, network: &Network) -> Result<Vec<Drift>> {
        let networks: Vec<Network> = ready_networks(self)?
            .into_iter()
            .filter(|n| n.name == network.name)
            .collect();
        let endpoints: Vec<Endpoint> = ready_endpoints(self)?
            .into_iter()
            .filter(|e| e.network == network.name)
            .collect();
        self.drift_among(&networks, &endpoints)
    }

    fn drift_among(&mut self, networks: &[Network], endpoints: &[Endpoint]) -> Result<Vec<Drift>> {
        let kernel = |e| Error::kernel("host links and addresses", e);
        let links = link::list(self.host()?).map_err(kernel)?;
        let addresses = addr::list_all(self.host()?).map_err(kernel)?;
        let mut out = Vec::new();
        for net in networks {
            let object = network_label(net);
            if net.macvlan.is_some() {
                if let Some((detail, fix)) = macvlan::parent_drift(net, &links) {
                    out.push(Drift {
                        object,
                        detail,
                        fix,
                    });
                }
                continue;
            }
            let Some(bridge) = links.iter().find(|l| l.name == net.bridge.as_str()) else {
                out.push(Drift {
                    object,
                    detail: format!(
                        "its bridge {} is missing from the kernel: its containers are cut off",
                        net.bridge
                    ),
                    fix:
                        "run `ctnet gc`, which makes the bridge again and re-plumbs its containers"
                            .into(),
                });
                continue;
            };
            if bridge.kind.as_deref() != Some("bridge") {
                out.push(Drift {
                    object,
                    detail: format!("link {} is not a bridge", net.bridge),
                    fix: format!(
                        "delete that link (`ip link del {}`), then run `ctnet gc`",
                        net.bridge
                    ),
                });
                continue;
            }
            if !bridge.up {
                out.push(Drift {
                    object: object.clone(),
                    detail: format!("its bridge {} is down", net.bridge),
                    fix: "run `ctnet gc`, which brings it up".into(),
                });
            }
            let has_policies = state::network_has_policies(self.store.read(), &net.name)?;
            if has_policies && bridge.bridge_nf_call != Some((true, true)) {
                out.push(Drift {
                    object: object.clone(),
                    detail: format!(
                        "it has policies, but its bridge {} does not hand bridged frames to the firewall (nf_call_iptables/nf_call_ip6tables off): traffic between its containers passes unjudged",
                        net.bridge
                    ),
                    fix: "run `ctnet gc`, which sets them again".into(),
                });
            }
            for s in &net.subnets {
                let present = addresses
                    .iter()
                    .any(|a| a.index == bridge.index && a.address == s.gateway);
                if !present {
                    out.push(Drift {
                        object: object.clone(),
                        detail: format!(
                            "its bridge {} lacks the gateway address {}/{}",
                            net.bridge,
                            s.gateway,
                            s.subnet.prefix_len()
                        ),
                        fix: "run `ctnet gc`, which adds it again".into(),
                    });
                }
            }
        }
        for ep in endpoints {
            let Some(net) = networks.iter().find(|n| n.name == ep.network) else {
                continue;
            };
            let bridge = links.iter().find(|l| l.name == net.bridge.as_str());
            let (_, details) = endpoint_state(ep, net, &links, bridge.map(|b| b.index));
            out.extend(details.into_iter().map(|(detail, fix)| Drift {
                object: endpoint_label(ep),
                detail,
                fix,
            }));
        }
        Ok(out)
    }

    /// Repairs what [`Engine::drift`] finds: each network's bridge and gateways made
    /// again, each endpoint's veth made again (or made a port of its bridge again), and
    /// endpoints whose namespace is gone removed. Returns what it did, one line each.
    pub(crate) fn repair_drift(&mut self) -> Result<Vec<String>> {
        // Repairs may add elements: the table must hold its rules first, and be current
        // before the lock below is taken (it would be rewritten under a lock of its own).
        self.ensure_firewall()?;
        let mut done = Vec::new();
        for net in ready_networks(self)? {
            if let Some(line) = self.repair_network(&net)? {
                done.push(line);
            }
        }
        for ep in ready_endpoints(self)? {
            if let Some(line) = self.repair_endpoint(ep.id)? {
                done.push(line);
            }
        }
        Ok(done)
    }

    /// Makes a ready network's bridge (or its gateways) again, under the store's write
    /// lock with the row read again: a `network rm` that deleted the bridge meanwhile is
    /// never undone.
    fn repair_network(&mut self, net: &Network) -> Result<Option<String>> {
        let label = network_label(net);
        self.with_write_lock(|engine| {
            let still = state::get_network(engine.store.read(), &net.name)?
                .is_some_and(|n| n.state == RowState::Ready);
            // A macvlan network has nothing of its own in the kernel to make again.
            if !still || net.macvlan.is_some() {
                return Ok(None);
            }
            let missing = link::index_of(engine.host()?, net.bridge.as_str())
                .map_err(|e| Error::kernel(&label, e))?
                .is_none();
            if missing {
                engine.replumb_network(net)?;
                return Ok(Some(format!("{label}: bridge {} made again", net.bridge)));
            }
            if let Some(made) = engine.ensure_overlay_devices(net)? {
                return Ok(Some(format!("{label}: {made}")));
            }
            if engine.repair_policy_bridge_flags(net)? {
                return Ok(Some(format!(
                    "{label}: bridge {} hands bridged frames to the firewall again (policies)",
                    net.bridge
                )));
            }
            Ok(engine.repair_bridge(net)?.then(|| {
                format!(
                    "{label}: bridge {} brought up, its gateways added again",
                    net.bridge
                )
            }))
        })
    }

    /// Makes a network's bridge again as creating the network did (after a reboot, or an
    /// `ip link del`), with its gateways, sysctls and firewall elements; returns the
    /// bridge's index. Any part already there is fine, so two processes may do it at once.
    pub(crate) fn replumb_network(&mut self, net: &Network) -> Result<u32> {
        let object = network_label(net);
        let kernel = |e| Error::kernel(&object, e);
        let mac = bridge::bridge_mac_for(net);
        match self.host()?.execute(bridge::create_bridge(net, mac)) {
            Err(e) if !e.is_exists() => return Err(kernel(e)),
            _ => {}
        }
        self.repair_bridge(net)?;
        self.restore_policy_bridge_flags(net)?;
        let index = link::index_of(self.host()?, net.bridge.as_str())
            .map_err(kernel)?
            .ok_or_else(|| {
                Error::new(
                    crate::error::ErrorKind::Kernel,
                    &object,
                    format!("bridge {} vanished while being made again", net.bridge),
                    "retry",
                )
            })?;
        if net.subnet(Family::V4).is_some() {
            sysctl::enable_ip_forward().map_err(kernel)?;
            if !net.internal {
                // Over netlink, as creating the network does (no /proc/sys write).
                let request = link::enable_route_localnet_request(index, net.bridge.as_str());
                self.host()?.execute(request).map_err(kernel)?;
            }
        }
        if net.ipv6() {
            sysctl::enable_ipv6_forward(super::network::is_ctnet_device).map_err(kernel)?;
        }
        self.ensure_overlay_devices(net)?;
        self.ensure_firewall()?;
        self.firewall
            .add_network(&network_rules(net))
            .map_err(kernel)?;
        Ok(index)
    }

    /// Brings an existing bridge up and adds any gateway address it lacks; true when
    /// something was missing.
    fn repair_bridge(&mut self, net: &Network) -> Result<bool> {
        let object = network_label(net);
        let kernel = |e| Error::kernel(&object, e);
        let host = self.host()?;
        let Some(bridge) = link::get(host, net.bridge.as_str()).map_err(kernel)? else {
            return Ok(false);
        };
        let mut changed = false;
        if !bridge.up {
            link::set_up(host, bridge.index, net.bridge.as_str()).map_err(kernel)?;
            changed = true;
        }
        if net.ipv6() {
            sysctl::enable_ipv6(&net.bridge).map_err(kernel)?;
            sysctl::disable_ipv6_dad(&net.bridge).map_err(kernel)?;
        }
        for request in bridge::gateway_requests(net, bridge.index) {
            match host.execute(request) {
                Ok(()) => changed = true,
                Err(e) if e.is_exists() => {}
                Err(e) => return Err(kernel(e)),
            }
        }
        Ok(changed)
    }

    /// Repairs endpoint `id` if it is still ready, holding the store's write lock so no
    /// detach claims it meanwhile.
    fn repair_endpoint(&mut self, id: i64) -> Result<Option<String>> {
        let Some(ep) = endpoint_by_id(self, id)? else {
            return Ok(None);
        };
        if ep.state != RowState::Ready {
            return Ok(None);
        }
        let Some(net) = state::get_network(self.store.read(), &ep.network)? else {
            return Ok(None);
        };
        let links = link::list(self.host()?).map_err(|e| Error::kernel("host links", e))?;
        // What the endpoint hangs off on the host: the bridge, or a macvlan's parent.
        let anchor = net
            .macvlan
            .as_ref()
            .map_or(net.bridge.as_str(), |m| m.parent.as_str());
        let bridge = links.iter().find(|l| l.name == anchor).map(|l| l.index);
        let (verdict, _) = endpoint_state(&ep, &net, &links, bridge);
        let label = endpoint_label(&ep);
        match verdict {
            EndpointState::Healthy => Ok(None),
            EndpointState::NamespaceGone => {
                let gone = |e: &Endpoint, _: Option<&Owner>| e.state == RowState::Ready;
                Ok(self
                    .remove_claimed_endpoint(ep.id, gone)?
                    .map(|_| format!("{label}: removed, its network namespace is gone")))
            }
            EndpointState::NotEnslaved | EndpointState::Broken => {
                let Some(bridge) = bridge else {
                    return Ok(None);
                };
                self.with_write_lock(|engine| {
                    // Read again under the lock: a detach may have claimed it.
                    let still =
                        endpoint_by_id(engine, id)?.is_some_and(|e| e.state == RowState::Ready);
                    if !still {
                        return Ok(None);
                    }
                    let object = label.clone();
                    let kernel = |e| Error::kernel(&object, e);
                    if let (EndpointState::NotEnslaved, Some(veth)) = (verdict, &ep.host_ifname) {
                        engine
                            .host()?
                            .execute_all(vec![
                                link::set_master_request(veth, bridge),
                                link::set_bridge_port_flags_request(veth, true, !net.icc),
                            ])
                            .map_err(kernel)?;
                        return Ok(Some(format!(
                            "{label}: {veth} made a port of bridge {} again",
                            net.bridge
                        )));
                    }
                    // Whatever is left of the pair goes; then it is made as attach makes it.
                    if let Some(veth) = &ep.host_ifname {
                        link::delete(engine.host()?, veth.as_str()).map_err(kernel)?;
                    }
                    let netns = Netns::open(&ep.netns_path).map_err(kernel)?;
                    netns
                        .within(|| {
                            let mut sock = RtSocket::open()?;
                            link::delete(&mut sock, ep.ifname.as_str()).map(|_| ())
                        })
                        .map_err(kernel)?;
                    engine.build_endpoint(&net, &ep, &netns)?;
                    Ok(Some(match &ep.host_ifname {
                        Some(veth) => {
                            format!("{label}: veth {veth} made again ({} inside)", ep.ifname)
                        }
                        None => format!("{label}: macvlan {} made again", ep.ifname),
                    }))
                })
            }
        }
    }

    /// Runs `f` inside a `BEGIN IMMEDIATE` transaction of the store (it serialises with
    /// every writer), committing when it returns Ok. `f` must not open a transaction of
    /// its own.
    fn with_write_lock<T>(&mut self, f: impl FnOnce(&mut Engine) -> Result<T>) -> Result<T> {
        self.store.read().execute_batch("BEGIN IMMEDIATE")?;
        let result = f(self);
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        self.store.read().execute_batch(end)?;
        result
    }
}

/// Whether the namespace a row names is no longer the one it was attached in: its path
/// opens nothing, or another namespace (a recycled inode told apart by its cookie).
fn namespace_lost(ep: &Endpoint) -> bool {
    let Ok(ns) = Netns::open(&ep.netns_path) else {
        return true;
    };
    let inode = ns.inode().ok();
    match &ep.identity {
        Some(id) => (inode, ns.cookie().ok()) != (Some(ep.netns_inode), Some(id.cookie)),
        None => inode != Some(ep.netns_inode),
    }
}

fn ready_networks(engine: &Engine) -> Result<Vec<Network>> {
    Ok(state::list_networks(engine.store.read())?
        .into_iter()
        .filter(|n| n.state == RowState::Ready)
        .collect())
}

fn endpoint_by_id(engine: &Engine, id: i64) -> Result<Option<Endpoint>> {
    Ok(state::list_endpoints(engine.store.read())?
        .into_iter()
        .find(|e| e.id == id))
}

fn ready_endpoints(engine: &Engine) -> Result<Vec<Endpoint>> {
    Ok(state::list_endpoints(engine.store.read())?
        .into_iter()
        .filter(|e| e.state == RowState::Ready)
        .collect())
}

/// An endpoint against the kernel: what can be done about it, and each difference with
/// its fix. `bridge` is the index of the network's bridge, if it exists.
fn endpoint_state(
    ep: &Endpoint,
    net: &Network,
    links: &[link::Link],
    bridge: Option<u32>,
) -> (EndpointState, Vec<(String, String)>) {
    let netns = match Netns::open(&ep.netns_path) {
        Ok(ns) if ns.inode().ok() == Some(ep.netns_inode) => ns,
        _ => {
            return (
                EndpointState::NamespaceGone,
                vec![(
                    format!("its network namespace {} is gone", ep.netns_path.display()),
                    "run `ctnet gc`, which removes the endpoint and frees its address".into(),
                )],
            )
        }
    };
    // A macvlan endpoint is its interface inside the container, nothing more.
    let Some(veth) = &ep.host_ifname else {
        let inside = container_side(&netns, ep, net);
        if inside.is_empty() {
            return (EndpointState::Healthy, Vec::new());
        }
        return (
            EndpointState::Broken,
            inside
                .into_iter()
                .map(|d| (d, GC_FIX.to_string()))
                .collect(),
        );
    };
    let Some(host_side) = links.iter().find(|l| l.name == veth.as_str()) else {
        return (
            EndpointState::Broken,
            vec![(
                format!("its veth {veth} is missing: the container is cut off"),
                GC_FIX.into(),
            )],
        );
    };
    let inside = container_side(&netns, ep, net);
    if !inside.is_empty() {
        return (
            EndpointState::Broken,
            inside
                .into_iter()
                .map(|d| (d, GC_FIX.to_string()))
                .collect(),
        );
    }
    if bridge.is_some() && host_side.master != bridge {
        return (
            EndpointState::NotEnslaved,
            vec![(
                format!("its veth {veth} is not a port of bridge {}", net.bridge),
                "run `ctnet gc`, which makes it one again".into(),
            )],
        );
    }
    if !host_side.up {
        return (
            EndpointState::NotEnslaved,
            vec![(
                format!("its veth {veth} is down"),
                "run `ctnet gc`, which brings it up".into(),
            )],
        );
    }
    (EndpointState::Healthy, Vec::new())
}

/// What the container's side lacks: its interface (up), its addresses, its default
/// routes. Empty when all is there.
fn container_side(netns: &Netns, ep: &Endpoint, net: &Network) -> Vec<String> {
    let listed = netns.within(|| {
        let mut sock = RtSocket::open()?;
        let links = link::list(&mut sock)?;
        let addresses = addr::list_all(&mut sock)?;
        let routes = route::list_all(&mut sock)?;
        Ok((links, addresses, routes))
    });
    let Ok((links, addresses, listed_routes)) = listed else {
        return vec!["its network namespace cannot be read".into()];
    };
    let Some(iface) = links.iter().find(|l| l.name == ep.ifname.as_str()) else {
        return vec![format!(
            "interface {} is missing inside the container",
            ep.ifname
        )];
    };
    let mut out = Vec::new();
    if !iface.up {
        out.push(format!(
            "interface {} is down inside the container",
            ep.ifname
        ));
    }
    for ip in &ep.ips {
        if !addresses
            .iter()
            .any(|a| a.index == iface.index && a.address == *ip)
        {
            out.push(format!("interface {} lacks its address {ip}", ep.ifname));
        }
    }
    for (gateway, metric) in routes::installed(net, ep) {
        if !routes::is_present(&listed_routes, gateway, metric, Some(iface.index)) {
            out.push(format!(
                "the container lacks its default route via {gateway} metric {metric} ({})",
                Family::of(gateway)
            ));
        }
    }
    out
}
