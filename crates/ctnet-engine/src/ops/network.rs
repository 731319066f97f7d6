//! Bridge networks: create, list, inspect, remove, and the default network.

use std::net::Ipv4Addr;

use ctnet_kernel::link::BridgeSpec;
use ctnet_kernel::{addr, link, reclaim, route, sysctl, IfName};
use rusqlite::Connection;

use crate::alloc::addresses::{self as ipam, TakenRange};
use crate::engine::{random_hex, Engine};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{Network, NetworkName, RowState, Subnet, DEFAULT_BRIDGE, DEFAULT_NETWORK};
use crate::ops::firewall::network_rules;
use crate::owner::Owner;
use crate::state;

/// What a user asks for when creating a network; unset fields are chosen by ctnet.
#[derive(Debug, Clone)]
pub struct NetworkSpec {
    /// Name.
    pub name: NetworkName,
    /// Subnet; a free one from the default pools when unset.
    pub subnet: Option<Subnet>,
    /// Gateway; the subnet's first host address when unset.
    pub gateway: Option<Ipv4Addr>,
    /// Bridge device; `br-` and 12 hex digits of the id when unset.
    pub bridge: Option<IfName>,
    /// MTU.
    pub mtu: Option<u32>,
    /// No masquerade, no way out of the bridge.
    pub internal: bool,
    /// Containers on the bridge may talk to each other (Docker's `enable_icc`).
    pub icc: bool,
}

impl NetworkSpec {
    /// A spec with only a name; everything else chosen by ctnet.
    pub fn named(name: NetworkName) -> Self {
        NetworkSpec {
            name,
            subnet: None,
            gateway: None,
            bridge: None,
            mtu: None,
            internal: false,
            icc: true,
        }
    }
}

/// The smallest and largest MTU a bridge network accepts.
pub const MTU_RANGE: std::ops::RangeInclusive<u32> = 68..=65535;

fn network_object(name: &str) -> String {
    format!("network {name:?}")
}

impl Engine {
    /// Creates a bridge network: bridge device, gateway address, IPv4 forwarding and
    /// masquerade. Either all of it exists afterwards or none of it.
    pub fn create_network(&mut self, spec: NetworkSpec) -> Result<Network> {
        let object = network_object(spec.name.as_str());
        if let Some(mtu) = spec.mtu {
            if !MTU_RANGE.contains(&mtu) {
                return Err(Error::invalid(
                    &object,
                    format!("MTU {mtu} is out of range"),
                    format!(
                        "use an MTU from {} to {}",
                        MTU_RANGE.start(),
                        MTU_RANGE.end()
                    ),
                ));
            }
        }
        if let (None, Some(gateway)) = (&spec.subnet, spec.gateway) {
            return Err(Error::invalid(
                format!("gateway {gateway}"),
                "was given without a subnet",
                "give --subnet too, so the gateway can be checked against it",
            ));
        }
        let routes = self.host_route_ranges()?;
        if let Some(bridge) = &spec.bridge {
            if link::get(self.host()?, bridge.as_str())
                .map_err(|e| Error::kernel(&object, e))?
                .is_some()
            {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!("bridge {bridge}"),
                    "a link of that name already exists on this host",
                    "choose another --bridge name, or omit it to get a generated one",
                ));
            }
        }
        let me = Owner::me();
        let net = self
            .store
            .write(|tx| reserve_network(tx, &spec, &routes, &me))?;
        if let Err(err) = self.build_network(&net) {
            self.tear_down_network(&net);
            self.store
                .write(|tx| state::delete_network(tx, net.name.as_str()))?;
            return Err(err);
        }
        self.store
            .write(|tx| state::set_network_state(tx, net.name.as_str(), RowState::Ready, None))?;
        Ok(Network {
            state: RowState::Ready,
            ..net
        })
    }

    fn build_network(&mut self, net: &Network) -> Result<()> {
        let object = network_object(net.name.as_str());
        let host = self.host()?;
        // Multicast snooping off. With it on (the kernel's default), every port the bridge
        // gains re-arms the IGMP and MLD query timers of every port it already has, and
        // each of those timers then fires: adding the thousandth container cost a thousand
        // timer restarts and two thousand callbacks, a quarter of the kernel's work for
        // that veth. With no multicast querier on the bridge (ctnet runs none) snooping
        // only learns reports that then expire, and it is known to delay IPv6 neighbour
        // discovery. Off, the bridge floods multicast to its ports as a plain switch does,
        // which is what containers on one network expect.
        let spec = BridgeSpec {
            name: &net.bridge,
            mtu: net.mtu,
            multicast_snooping: false,
        };
        link::create_bridge(host, &spec).map_err(|e| Error::kernel(&object, e))?;
        let index = link::index_of(host, net.bridge.as_str())
            .map_err(|e| Error::kernel(&object, e))?
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Kernel,
                    &object,
                    format!("bridge {} vanished while being set up", net.bridge),
                    "retry",
                )
            })?;
        addr::add(
            host,
            index,
            net.gateway,
            net.subnet.net().prefix_len(),
            &format!("bridge {}", net.bridge),
        )
        .map_err(|e| Error::kernel(&object, e))?;
        sysctl::enable_ip_forward().map_err(|e| Error::kernel(&object, e))?;
        if !net.internal {
            // Lets traffic to a port published on 127.0.0.1 leave loopback for this
            // bridge; the firewall's guard chain keeps 127.0.0.0/8 unreachable from
            // outside (see firewall.rs).
            sysctl::write(&format!("net/ipv4/conf/{}/route_localnet", net.bridge), "1")
                .map_err(|e| Error::kernel(&object, e))?;
        }
        self.ensure_firewall()?;
        self.firewall
            .add_network(&network_rules(net))
            .map_err(|e| Error::kernel(&object, e))?;
        Ok(())
    }

    /// Removes a network's kernel objects, tolerating any of them being gone already.
    /// Returns the first failure, after trying every step.
    pub(crate) fn tear_down_network(&mut self, net: &Network) -> Option<Error> {
        let object = network_object(net.name.as_str());
        let mut first = None;
        if let Err(e) = self.firewall.remove_network(&network_rules(net)) {
            first.get_or_insert(Error::kernel(&object, e));
        }
        // A child process sits out the kernel's clean-up wait (see reclaim.rs).
        let hold: Vec<_> = self.firewall.open_socket().into_iter().collect();
        if let Err(e) = reclaim::delete_links(&[net.bridge.as_str()], &hold) {
            first.get_or_insert(Error::kernel(&object, e));
        }
        first
    }

    /// Removes a network that no container is attached to.
    pub fn remove_network(&mut self, name: &str) -> Result<()> {
        let object = network_object(name);
        if name == DEFAULT_NETWORK {
            return Err(Error::new(
                ErrorKind::InUse,
                &object,
                "is the default network and cannot be removed",
                "remove only networks you created",
            ));
        }
        // Detaches still finishing in the background are finished here, so a network
        // can be removed right after `ctnet detach --no-wait`.
        for ep in state::endpoints_of_network(self.store.read(), name)? {
            if ep.state == RowState::Removing {
                self.reap_endpoint(ep.id)?;
            }
        }
        let me = Owner::me();
        let net = self.store.write(|tx| {
            let net = state::get_network(tx, name)?.ok_or_else(|| {
                Error::not_found(
                    &object,
                    "see `ctnet network ls` for the networks that exist",
                )
            })?;
            let endpoints = state::endpoints_of_network(tx, name)?;
            if !endpoints.is_empty() {
                let containers: Vec<String> =
                    endpoints.iter().map(|e| e.container.clone()).collect();
                return Err(Error::new(
                    ErrorKind::InUse,
                    &object,
                    format!(
                        "has {} attached container(s): {}",
                        containers.len(),
                        containers.join(", ")
                    ),
                    format!(
                        "detach them first, e.g. `ctnet detach {name} {}`",
                        containers[0]
                    ),
                ));
            }
            state::set_network_state(tx, name, RowState::Removing, Some(&me))?;
            Ok(net)
        })?;
        if let Some(err) = self.tear_down_network(&net) {
            // The row stays in `removing`; the next ctnet run (or `ctnet gc`) finishes the job.
            return Err(err);
        }
        self.store.write(|tx| state::delete_network(tx, name))
    }

    /// All networks, sorted by name (the default one is created on first use).
    pub fn networks(&mut self) -> Result<Vec<Network>> {
        self.ensure_default_network()?;
        state::list_networks(self.store.read())
    }

    /// One network by name.
    pub fn network(&mut self, name: &str) -> Result<Network> {
        if name == DEFAULT_NETWORK {
            return self.ensure_default_network();
        }
        state::get_network(self.store.read(), name)?.ok_or_else(|| {
            Error::not_found(
                network_object(name),
                "see `ctnet network ls`, or create it with `ctnet network create`",
            )
        })
    }

    /// The network `spec` names, made from `spec` if it does not exist (what runtimes
    /// that define networks in their own configuration need: CNI, Podman). An existing
    /// network must agree with the subnet and bridge `spec` gives. Callers racing to
    /// make it all get the same network.
    pub fn ensure_network(&mut self, spec: NetworkSpec) -> Result<Network> {
        let name = spec.name.clone();
        let existing = match state::get_network(self.store.read(), name.as_str())? {
            Some(net) => net,
            None => match self.create_network(spec.clone()) {
                Ok(net) => return Ok(net),
                Err(e) if e.kind == ErrorKind::Conflict => self.network(name.as_str())?,
                Err(e) => return Err(e),
            },
        };
        let clash = |what: &str, have: String, want: String| {
            Error::new(
                ErrorKind::InvalidInput,
                network_object(name.as_str()),
                format!("exists with {what} {have}, not {want}"),
                "use the existing value, or another network name",
            )
        };
        if let Some(subnet) = spec.subnet.filter(|s| *s != existing.subnet) {
            return Err(clash(
                "subnet",
                existing.subnet.to_string(),
                subnet.to_string(),
            ));
        }
        if let Some(bridge) = spec.bridge.filter(|b| *b != existing.bridge) {
            return Err(clash(
                "bridge",
                existing.bridge.to_string(),
                bridge.to_string(),
            ));
        }
        Ok(existing)
    }

    /// A network by name once it is ready: while another live process is still creating
    /// it (two CNI ADDs, or an attach racing `network create`), waits up to 10 s; a
    /// creator that died is rolled back by reconcile, and the network is then not found.
    pub fn ready_network(&mut self, name: &str) -> Result<Network> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let net = self.network(name)?;
            if net.state != RowState::Pending || std::time::Instant::now() > deadline {
                return Ok(net);
            }
            self.reconcile_interrupted()?;
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// The default network, created on first use.
    pub fn ensure_default_network(&mut self) -> Result<Network> {
        if let Some(net) = state::get_network(self.store.read(), DEFAULT_NETWORK)? {
            return Ok(net);
        }
        let mut spec = NetworkSpec::named(NetworkName::default_network());
        spec.bridge = Some(IfName::new(DEFAULT_BRIDGE).expect("valid name"));
        match self.create_network(spec) {
            Ok(net) => Ok(net),
            // Another process created it at the same moment.
            Err(e) if e.kind == ErrorKind::Conflict => {
                state::get_network(self.store.read(), DEFAULT_NETWORK)?.ok_or(e)
            }
            Err(e) => Err(e),
        }
    }

    /// The host's IPv4 routes as ranges no network may overlap (the default route aside).
    fn host_route_ranges(&mut self) -> Result<Vec<TakenRange>> {
        Ok(self
            .host_routes()?
            .into_iter()
            .map(|r| TakenRange {
                net: r.net,
                holder: r.to_string(),
            })
            .collect())
    }

    /// The host's IPv4 routes in the main table, default route aside, with device names.
    pub(crate) fn host_routes(&mut self) -> Result<Vec<HostRoute>> {
        let host = self.host()?;
        let routes = route::list(host).map_err(|e| Error::kernel("host routing table", e))?;
        let links = link::list(host).map_err(|e| Error::kernel("host links", e))?;
        Ok(routes
            .into_iter()
            .filter(|r| r.table == u32::from(route::MAIN_TABLE) && r.prefix_len > 0)
            .filter_map(|r| {
                Some(HostRoute {
                    net: ipnet::Ipv4Net::new(r.destination, r.prefix_len).ok()?,
                    gateway: r.gateway,
                    dev: r
                        .oif
                        .and_then(|i| links.iter().find(|l| l.index == i))
                        .map(|l| l.name.clone()),
                })
            })
            .collect())
    }
}

/// A route of the host's main table.
pub(crate) struct HostRoute {
    /// Destination.
    pub net: ipnet::Ipv4Net,
    /// Next hop, if any.
    pub gateway: Option<Ipv4Addr>,
    /// Output device, if known.
    pub dev: Option<String>,
}

impl std::fmt::Display for HostRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "route {}", self.net)?;
        if let Some(g) = self.gateway {
            write!(f, " via {g}")?;
        }
        if let Some(d) = &self.dev {
            write!(f, " dev {d}")?;
        }
        f.write_str(" on this host")
    }
}

/// Checks the spec against what is recorded and records the network as `pending`.
fn reserve_network(
    tx: &Connection,
    spec: &NetworkSpec,
    routes: &[TakenRange],
    owner: &Owner,
) -> Result<Network> {
    let name = spec.name.as_str();
    if state::get_network(tx, name)?.is_some() {
        return Err(Error::new(
            ErrorKind::Conflict,
            network_object(name),
            "already exists",
            format!("choose another name, or remove the old one with `ctnet network rm {name}`"),
        ));
    }
    let existing = state::list_networks(tx)?;
    if let Some(bridge) = &spec.bridge {
        if let Some(holder) = existing.iter().find(|n| &n.bridge == bridge) {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("bridge {bridge}"),
                format!("is already used by network {:?}", holder.name.as_str()),
                "choose another --bridge name",
            ));
        }
    }
    let mut taken: Vec<TakenRange> = existing
        .iter()
        .map(|n| TakenRange {
            net: n.subnet.net(),
            holder: format!("network {:?}", n.name.as_str()),
        })
        .collect();
    taken.extend(routes.iter().cloned());
    let subnet = match spec.subnet {
        Some(subnet) => {
            ipam::check_subnet_free(&subnet, &taken)?;
            subnet
        }
        None => ipam::choose_subnet(&taken)?,
    };
    let gateway = match spec.gateway {
        Some(gateway) => {
            ipam::check_gateway(&subnet, gateway)?;
            gateway
        }
        None => subnet.first_host(),
    };
    let id = random_hex(32);
    let bridge = match &spec.bridge {
        Some(bridge) => bridge.clone(),
        None => IfName::new(&format!("br-{}", &id[..12])).expect("15 bytes"),
    };
    let net = Network {
        name: spec.name.clone(),
        id,
        driver: "bridge".into(),
        subnet,
        gateway,
        bridge,
        mtu: spec.mtu,
        internal: spec.internal,
        icc: spec.icc,
        state: RowState::Pending,
        created: state::now(),
    };
    state::insert_network(tx, &net, Some(owner))?;
    Ok(net)
}
