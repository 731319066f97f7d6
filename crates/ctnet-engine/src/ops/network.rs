//! Networks: create, list, inspect, remove, and the default network.

use std::net::IpAddr;

use ctnet_kernel::{link, reclaim, route, sysctl, IfName};
use ipnet::IpNet;
use rusqlite::Connection;

use crate::agent;
use crate::alloc::subnets::{self, TakenRange};
use crate::driver::bridge;
use crate::driver::bridge::network_rules;
use crate::engine::{random_hex, Engine};
use crate::error::{Error, ErrorKind, Result};
use crate::model::{
    Driver, Family, Ipam, Isolation, MacvlanConfig, Network, NetworkName, RowState, Runtime,
    Subnet, SubnetConfig, DEFAULT_BRIDGE, DEFAULT_NETWORK, IPV6_MIN_MTU,
};
use crate::ops::macvlan;
use crate::owner::Owner;
use crate::state;

/// What a user asks for when creating a network; unset fields are chosen by ctnet.
#[derive(Debug, Clone)]
pub struct NetworkSpec {
    /// Name.
    pub name: NetworkName,
    /// Subnets, at most one per family; for each family the network has but no subnet
    /// is given, a free one (IPv4: the default pools; IPv6: a unique local /64).
    pub subnets: Vec<Subnet>,
    /// Gateways, at most one per family, each inside that family's subnet; the subnet's
    /// first host address when unset.
    pub gateways: Vec<IpAddr>,
    /// The network has IPv4 (Docker's `--ipv4`, on by default).
    pub ipv4: bool,
    /// The network has IPv6 (Docker's `--ipv6`).
    pub ipv6: bool,
    /// Bridge device; `br-` and 12 hex digits of the id when unset.
    pub bridge: Option<IfName>,
    /// MTU.
    pub mtu: Option<u32>,
    /// No masquerade, no way out of the bridge.
    pub internal: bool,
    /// Containers on the bridge may talk to each other (Docker's `enable_icc`).
    pub icc: bool,
    /// The front end making the network on first use (see [`Network::creator`]); None
    /// for ctnet's own commands.
    pub creator: Option<Runtime>,
    /// Driver.
    pub driver: Driver,
    /// Which other networks its containers may talk to; the front end chooses the
    /// default (the CLI and CNI: `Strict`; netavark: `Open`).
    pub isolation: Isolation,
    /// Metric of the default routes it gives containers (None: the driver's default).
    pub metric: Option<u32>,
    /// Who hands out addresses.
    pub ipam: Ipam,
    /// Parent and mode, for the macvlan driver.
    pub macvlan: Option<MacvlanConfig>,
    /// The host agent serves container names on its gateways (see [`Network::dns`]);
    /// the front end chooses (`ctnet network create`: on; the default network, CNI: off;
    /// netavark: Podman's `dns_enabled`).
    pub dns: bool,
    /// This host's part of an overlay network (the agent makes these; its `vxlan` name
    /// is chosen when the network is reserved).
    pub overlay: Option<crate::model::overlay::OverlayConfig>,
}

impl NetworkSpec {
    /// A spec with only a name; everything else chosen by ctnet.
    pub fn named(name: NetworkName) -> Self {
        NetworkSpec {
            name,
            subnets: Vec::new(),
            gateways: Vec::new(),
            ipv4: true,
            ipv6: false,
            bridge: None,
            mtu: None,
            internal: false,
            icc: true,
            creator: None,
            driver: Driver::Bridge,
            isolation: Isolation::Strict,
            metric: None,
            ipam: Ipam::Ctnet,
            macvlan: None,
            dns: false,
            overlay: None,
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
        check_ipv6_mtu(&spec)?;
        check_driver(&spec)?;
        check_families(&spec)?;
        if let Some(macvlan) = &spec.macvlan {
            macvlan::check_spec(&spec, macvlan)?;
        }
        self.refuse_if_state_lost()?;
        if let Some(macvlan) = &spec.macvlan {
            self.check_macvlan_parent(&spec, macvlan)?;
        }
        // A macvlan network's subnet is its parent's LAN: routed through the parent
        // already, which is no clash.
        let parent = spec.macvlan.as_ref().map(|m| m.parent.as_str());
        let routes = self.host_route_ranges(parent)?;
        if let Some(bridge) = &spec.bridge {
            if link::get(self.host()?, bridge.as_str())
                .map_err(|e| Error::kernel(&object, e))?
                .is_some()
            {
                return Err(self.bridge_exists_error(bridge)?);
            }
        }
        let me = Owner::me();
        let net = self
            .store
            .write(|tx| reserve_network(tx, &spec, &routes, &me))?;
        let built = self.build_network(&net).and_then(|()| {
            self.store
                .write(|tx| state::set_network_state(tx, &net.name, RowState::Ready, None))
        });
        if let Err(err) = built {
            self.undo_create_network(&net);
            return Err(err);
        }
        if net.dns {
            agent::notify(&self.paths);
        }
        Ok(Network {
            state: RowState::Ready,
            ..net
        })
    }

    /// Undoes a create that failed after its reservation, whatever step failed (the
    /// kernel work, or the final write that marks it ready): the bridge and firewall
    /// elements go, then the row; if the undo fails too, the row stays `pending` for the
    /// next command's reconcile.
    fn undo_create_network(&mut self, net: &Network) {
        // `removing` first, for the same reason as a failed attach (ops/firewall.rs).
        let me = Owner::me();
        let removing = RowState::Removing;
        let _ = self
            .store
            .write(|tx| state::set_network_state(tx, &net.name, removing, Some(&me)));
        if self.tear_down_network(net).is_none() {
            let _ = self.store.write(|tx| state::delete_network(tx, &net.name));
        }
    }

    fn build_network(&mut self, net: &Network) -> Result<()> {
        // A macvlan network makes nothing on the host: its containers' interfaces are
        // made over the parent as they attach.
        if net.driver == Driver::Macvlan {
            return Ok(());
        }
        let object = network_object(net.name.as_str());
        let kernel = |e| Error::kernel(&object, e);
        // Forwarding first: where /proc/sys is read-only and it is off, the create is
        // refused naming the key before anything is made. Each setting is read first and
        // written only when it differs (see ctnet_kernel::sysctl::ensure).
        if net.subnet(Family::V4).is_some() {
            sysctl::enable_ip_forward().map_err(kernel)?;
        }
        if net.ipv6() {
            // ctnet's own devices are left out: they must not take a container's router
            // advertisement as the host's route (see sysctl::enable_ipv6_forward).
            sysctl::enable_ipv6_forward(is_ctnet_device).map_err(kernel)?;
        }
        let host = self.host()?;
        host.execute(bridge::create_bridge(net, bridge::bridge_mac_for(net)))
            .map_err(kernel)?;
        let index = link::index_of(host, net.bridge.as_str())
            .map_err(kernel)?
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Kernel,
                    &object,
                    format!("bridge {} vanished while being set up", net.bridge),
                    "retry",
                )
            })?;
        if net.ipv6() {
            // The bridge carries the IPv6 gateway even where new interfaces start with
            // IPv6 off (default/disable_ipv6 = 1).
            sysctl::enable_ipv6(&net.bridge).map_err(kernel)?;
            // Forwarded traffic into the bridge waits for neighbour discovery, which
            // waits for the bridge's own link-local address to pass detection.
            sysctl::disable_ipv6_dad(&net.bridge).map_err(kernel)?;
        }
        let mut requests = bridge::gateway_requests(net, index);
        if net.subnet(Family::V4).is_some() && !net.internal {
            // Lets traffic to a port published on 127.0.0.1 leave loopback for this
            // bridge; the firewall's guard chain keeps 127.0.0.0/8 unreachable from
            // outside (see datapath/nft). IPv6 has no such switch: ports are never
            // published on ::1. Over netlink, in the gateways' round trip: no file
            // under /proc/sys, which may be read-only.
            requests.push(link::enable_route_localnet_request(
                index,
                net.bridge.as_str(),
            ));
        }
        host.execute_all(requests).map_err(kernel)?;
        self.build_overlay_devices(net)?;
        self.ensure_firewall()?;
        self.firewall
            .add_network(&network_rules(net))
            .map_err(kernel)?;
        Ok(())
    }

    /// Removes a network's kernel objects, tolerating any of them being gone already.
    /// Returns the first failure, after trying every step.
    pub(crate) fn tear_down_network(&mut self, net: &Network) -> Option<Error> {
        if net.driver == Driver::Macvlan {
            return None;
        }
        let object = network_object(net.name.as_str());
        let mut first = None;
        if let Err(e) = self.firewall.remove_network(&network_rules(net)) {
            first.get_or_insert(Error::kernel(&object, e));
        }
        // A child process sits out the kernel's clean-up wait (see reclaim.rs).
        let hold: Vec<_> = self.firewall.open_socket().into_iter().collect();
        let mut links = vec![net.bridge.as_str()];
        if let Some(o) = &net.overlay {
            links.push(o.vxlan.as_str());
        }
        if let Err(e) = reclaim::delete_links(&links, &hold) {
            first.get_or_insert(Error::kernel(&object, e));
        }
        if let Some(o) = &net.overlay {
            let request = super::overlay::delete_cluster_route_request(o);
            match self.host().map(|host| host.execute(request)) {
                Ok(Err(e)) if !e.is_not_found() => {
                    first.get_or_insert(Error::kernel(&object, e));
                }
                Err(e) => {
                    first.get_or_insert(e);
                }
                _ => {}
            }
        }
        first
    }

    /// Removes a network that no container is attached to.
    pub fn remove_network(&mut self, name: &NetworkName) -> Result<()> {
        let object = network_object(name.as_str());
        if name.as_str() == DEFAULT_NETWORK {
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
        self.store.write(|tx| state::delete_network(tx, name))?;
        if net.dns {
            agent::notify(&self.paths);
        }
        Ok(())
    }

    /// All networks that exist, sorted by name. Only reads: the default network is
    /// among them once something has attached to it (see [`Engine::network`]).
    pub fn networks(&mut self) -> Result<Vec<Network>> {
        state::list_networks(self.store.read())
    }

    /// One network by name if it exists; only reads (the default network too).
    pub fn find_network(&mut self, name: &NetworkName) -> Result<Option<Network>> {
        state::get_network(self.store.read(), name)
    }

    /// One network by name, for a caller about to use it: the default network is
    /// created here on first use (with its bridge, forwarding and firewall).
    pub fn network(&mut self, name: &NetworkName) -> Result<Network> {
        if name.as_str() == DEFAULT_NETWORK {
            return self.ensure_default_network();
        }
        self.find_network(name)?.ok_or_else(|| {
            Error::not_found(
                network_object(name.as_str()),
                "see `ctnet network ls`, or create it with `ctnet network create`",
            )
        })
    }

    /// The network `spec` names, made from `spec` if it does not exist (what runtimes
    /// that define networks in their own configuration need: CNI, Podman). An existing
    /// network must agree with the subnet, bridge and metric `spec` gives, and its IPAM.
    /// Callers racing to make it all get the same network.
    pub fn ensure_network(&mut self, spec: NetworkSpec) -> Result<Network> {
        self.ensure_network_made(spec).map(|(net, _)| net)
    }

    /// [`Engine::ensure_network`], also telling whether this call made the network (so
    /// a front end whose operation then fails can remove it again).
    pub fn ensure_network_made(&mut self, spec: NetworkSpec) -> Result<(Network, bool)> {
        let name = spec.name.clone();
        let existing = match state::get_network(self.store.read(), &name)? {
            Some(net) => net,
            None => match self.create_network(spec.clone()) {
                Ok(net) => return Ok((net, true)),
                // Made by another process meanwhile; any other conflict (a subnet or a
                // bridge taken) is the answer itself.
                Err(e) if e.kind == ErrorKind::Conflict => {
                    match state::get_network(self.store.read(), &name)? {
                        Some(net) => net,
                        None => return Err(e),
                    }
                }
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
        for wanted in &spec.subnets {
            let have = existing.subnet(wanted.family()).map(|s| s.subnet);
            if have != Some(*wanted) {
                let have = have.map_or_else(
                    || format!("no {} subnet", wanted.family()),
                    |s| s.to_string(),
                );
                return Err(clash(
                    &format!("{} subnet", wanted.family()),
                    have,
                    wanted.to_string(),
                ));
            }
        }
        if let Some(wanted) = spec.metric.filter(|m| Some(*m) != existing.metric) {
            let have = existing
                .metric
                .map_or_else(|| "the default".to_string(), |m| m.to_string());
            return Err(clash("metric", have, wanted.to_string()));
        }
        if spec.ipam != existing.ipam {
            return Err(clash(
                "IPAM",
                existing.ipam.to_string(),
                spec.ipam.to_string(),
            ));
        }
        if spec.ipv6 && !existing.ipv6() {
            return Err(clash("IPv6", "off".into(), "on".into()));
        }
        if spec.driver != existing.driver {
            return Err(clash(
                "driver",
                existing.driver.to_string(),
                spec.driver.to_string(),
            ));
        }
        if let (Some(have), Some(want)) = (&existing.macvlan, &spec.macvlan) {
            if have != want {
                let text = |m: &MacvlanConfig| format!("{} mode {}", m.parent, m.mode);
                return Err(clash("macvlan parent", text(have), text(want)));
            }
        }
        if let Some(bridge) = spec.bridge.filter(|b| *b != existing.bridge) {
            return Err(clash(
                "bridge",
                existing.bridge.to_string(),
                bridge.to_string(),
            ));
        }
        Ok((existing, false))
    }

    /// A network by name once it is ready: while another live process is still creating
    /// it (two CNI ADDs, or an attach racing `network create`), waits up to 10 s; a
    /// creator that died is rolled back by reconcile, and the network is then not found.
    pub fn ready_network(&mut self, name: &NetworkName) -> Result<Network> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let net = self.network(name)?;
            if net.state != RowState::Pending || std::time::Instant::now() > deadline {
                return Ok(net);
            }
            // A creator that died is not waited for: its half-made network goes, and the
            // next look finds it missing.
            self.remove_abandoned_network(name)?;
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Turns forwarding on for every family a network has, as creating it did (after a
    /// reboot, or when something else turned it off).
    pub(crate) fn restore_forwarding(&mut self) -> Result<()> {
        // Only bridge networks route: a macvlan container's traffic leaves by its parent
        // without passing the host's forwarding.
        let networks: Vec<Network> = state::list_networks(self.store.read())?
            .into_iter()
            .filter(|n| n.driver.is_bridged())
            .collect();
        let kernel = |e| Error::kernel("forwarding", e);
        if networks.iter().any(|n| n.subnet(Family::V4).is_some()) {
            sysctl::enable_ip_forward().map_err(kernel)?;
        }
        if networks.iter().any(|n| n.ipv6()) {
            sysctl::enable_ipv6_forward(is_ctnet_device).map_err(kernel)?;
        }
        Ok(())
    }

    /// Removes a network whose create or remove was left unfinished by a process that
    /// is gone, judged and claimed in one transaction (see `ops/reconcile.rs`); true
    /// when it did. A network a live process is working on is left alone.
    pub(crate) fn remove_abandoned_network(&mut self, name: &NetworkName) -> Result<bool> {
        let me = Owner::me();
        let claimed = self.store.write(|tx| {
            state::claim_network(tx, name, &me, |n, owner| {
                n.state != RowState::Ready && owner.is_none_or(|o| !o.is_alive())
            })
        })?;
        let Some(net) = claimed else {
            return Ok(false);
        };
        if let Some(err) = self.tear_down_network(&net) {
            return Err(err);
        }
        self.store
            .write(|tx| state::delete_network(tx, &net.name))?;
        Ok(true)
    }

    /// The default network, created on first use.
    pub fn ensure_default_network(&mut self) -> Result<Network> {
        let name = NetworkName::default_network();
        if let Some(net) = state::get_network(self.store.read(), &name)? {
            return Ok(net);
        }
        let mut spec = NetworkSpec::named(name.clone());
        spec.bridge = Some(IfName::new(DEFAULT_BRIDGE).expect("valid name"));
        match self.create_network(spec) {
            Ok(net) => Ok(net),
            // Another process created it at the same moment.
            Err(e) if e.kind == ErrorKind::Conflict => {
                state::get_network(self.store.read(), &name)?.ok_or(e)
            }
            Err(e) => Err(e),
        }
    }

    /// The host's routes of both families as ranges no network may overlap (default
    /// routes aside, and those through `parent`, a macvlan network's LAN interface).
    fn host_route_ranges(&mut self, parent: Option<&str>) -> Result<Vec<TakenRange>> {
        Ok(self
            .host_routes()?
            .into_iter()
            .filter(|r| parent.is_none_or(|p| r.dev.as_deref() != Some(p)))
            .map(|r| TakenRange {
                net: r.net,
                holder: r.to_string(),
            })
            .collect())
    }

    /// The host's routes of both families in the main table, default routes, IPv6
    /// link-local and multicast routes aside, with device names.
    pub(crate) fn host_routes(&mut self) -> Result<Vec<HostRoute>> {
        let host = self.host()?;
        let routes = route::list_all(host).map_err(|e| Error::kernel("host routing table", e))?;
        let links = link::list(host).map_err(|e| Error::kernel("host links", e))?;
        Ok(routes
            .into_iter()
            .filter(|r| r.table == u32::from(route::MAIN_TABLE) && r.prefix_len > 0)
            .filter_map(|r| {
                let net = IpNet::new(r.destination, r.prefix_len).ok()?;
                let noise = match net {
                    IpNet::V6(n) => n.addr().is_unicast_link_local() || n.addr().is_multicast(),
                    IpNet::V4(_) => false,
                };
                (!noise).then(|| HostRoute {
                    net,
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

/// True for the devices ctnet makes on the host (bridges `br-…` and `ctnet0`, veths
/// `veth…`), which the host's router-advertisement settings must leave alone.
pub(crate) fn is_ctnet_device(name: &str) -> bool {
    name.starts_with("br-") || name.starts_with("veth") || name == DEFAULT_BRIDGE
}

/// A route of the host's main table.
pub(crate) struct HostRoute {
    /// Destination.
    pub net: IpNet,
    /// Next hop, if any.
    pub gateway: Option<IpAddr>,
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

/// Refuses an MTU IPv6 cannot run over on a network with IPv6. An IPv4-only network may
/// use any MTU of [`MTU_RANGE`]: its devices simply have no IPv6.
fn check_ipv6_mtu(spec: &NetworkSpec) -> Result<()> {
    match spec.mtu {
        Some(mtu) if spec.ipv6 && mtu < IPV6_MIN_MTU => Err(Error::invalid(
            network_object(spec.name.as_str()),
            format!("MTU {mtu} is below {IPV6_MIN_MTU}, the least IPv6 works over"),
            format!("use an MTU of {IPV6_MIN_MTU} or more, or leave IPv6 off"),
        )),
        _ => Ok(()),
    }
}

/// Refuses a macvlan config without the macvlan driver (or that driver without one), and
/// addresses asked of a network without IPAM.
fn check_driver(spec: &NetworkSpec) -> Result<()> {
    let object = network_object(spec.name.as_str());
    if spec.overlay.is_some() != (spec.driver == Driver::Overlay) {
        return Err(Error::invalid(
            &object,
            "is an overlay network, which this host's part of is made by ctnet-agent",
            "create it with `ctnet network create NAME --driver overlay --subnet CIDR --etcd URL`; \
             every host's agent then joins it",
        ));
    }
    if spec.macvlan.is_some() != (spec.driver == Driver::Macvlan) {
        return Err(Error::invalid(
            &object,
            format!(
                "has driver {} with a macvlan parent given or missing",
                spec.driver
            ),
            "give a parent interface with the macvlan driver, and none with the bridge driver",
        ));
    }
    check_ipam_none(spec)
}

/// A network without IPAM has no subnet at all: refuses what would give it addresses.
fn check_ipam_none(spec: &NetworkSpec) -> Result<()> {
    if spec.ipam != Ipam::None {
        return Ok(());
    }
    let object = network_object(spec.name.as_str());
    let given = spec
        .subnets
        .iter()
        .map(|s| format!("subnet {s}"))
        .chain(spec.gateways.iter().map(|g| format!("gateway {g}")))
        .chain(spec.ipv6.then(|| "IPv6".to_string()))
        .collect::<Vec<_>>();
    if given.is_empty() {
        return Ok(());
    }
    Err(Error::invalid(
        object,
        format!(
            "has no IPAM (ipam none: no subnets, its containers get no address), but {} was given",
            given.join(", ")
        ),
        "give a network without IPAM no subnet, gateway or IPv6 (`ctnet network create NAME --ipam none` alone), or give it IPAM",
    ))
}

/// Refuses a spec whose families contradict each other, before anything is looked up.
fn check_families(spec: &NetworkSpec) -> Result<()> {
    let object = network_object(spec.name.as_str());
    if !spec.ipv4 && !spec.ipv6 {
        return Err(Error::invalid(
            &object,
            "would have neither IPv4 nor IPv6",
            "drop --ipv4=false, or add --ipv6",
        ));
    }
    for family in [Family::V4, Family::V6] {
        let subnets: Vec<&Subnet> = spec
            .subnets
            .iter()
            .filter(|s| s.family() == family)
            .collect();
        if let [first, second, ..] = subnets.as_slice() {
            return Err(Error::invalid(
                format!("subnets {first} and {second}"),
                format!("are both {family}: a network has one subnet per family"),
                "give at most one IPv4 and one IPv6 --subnet",
            ));
        }
        let gateways: Vec<&IpAddr> = spec
            .gateways
            .iter()
            .filter(|g| Family::of(**g) == family)
            .collect();
        if let [first, second, ..] = gateways.as_slice() {
            return Err(Error::invalid(
                format!("gateways {first} and {second}"),
                format!("are both {family}: a network has one gateway per family"),
                "give at most one IPv4 and one IPv6 --gateway",
            ));
        }
        if let (Some(g), true) = (gateways.first(), subnets.is_empty()) {
            return Err(Error::invalid(
                format!("gateway {g}"),
                format!("was given without an {family} subnet"),
                format!("give an {family} --subnet too, so the gateway can be checked against it"),
            ));
        }
        if let Some(s) = subnets.first() {
            let (on, flag) = match family {
                Family::V4 => (spec.ipv4, "drop --ipv4=false"),
                Family::V6 => (spec.ipv6, "add --ipv6"),
            };
            if !on {
                return Err(Error::invalid(
                    format!("subnet {s}"),
                    format!("is {family}, but the network has {family} turned off"),
                    format!("{flag}, or leave the subnet out"),
                ));
            }
        }
    }
    Ok(())
}

/// Checks the spec against what is recorded and records the network as `pending`.
fn reserve_network(
    tx: &Connection,
    spec: &NetworkSpec,
    routes: &[TakenRange],
    owner: &Owner,
) -> Result<Network> {
    let name = spec.name.as_str();
    if state::get_network(tx, &spec.name)?.is_some() {
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
        .flat_map(|n| {
            n.subnets.iter().map(|s| TakenRange {
                net: s.subnet.net(),
                holder: format!("network {:?}", n.name.as_str()),
            })
        })
        .collect();
    taken.extend(routes.iter().cloned());
    let mut configs = Vec::new();
    for (family, on) in [(Family::V4, spec.ipv4), (Family::V6, spec.ipv6)] {
        // Without IPAM the network has no subnet at all (see check_ipam_none).
        if !on || spec.ipam == Ipam::None {
            continue;
        }
        let subnet = match spec.subnets.iter().find(|s| s.family() == family) {
            Some(subnet) => {
                subnets::check_subnet_free(subnet, &taken)?;
                *subnet
            }
            None if family == Family::V6 => subnets::choose_ula(&taken, random_ula_id)?,
            None => {
                let mut pools = taken.clone();
                if name != DEFAULT_NETWORK
                    && !existing.iter().any(|n| n.name.as_str() == DEFAULT_NETWORK)
                {
                    // The default network, made on first use, keeps the first free pool
                    // (Docker's docker0 has 172.17.0.0/16), whichever front end or network
                    // comes first.
                    if let Ok(first) = subnets::choose_subnet(&pools) {
                        pools.push(TakenRange {
                            net: first.net(),
                            holder: "the default network".into(),
                        });
                    }
                }
                subnets::choose_subnet(&pools)?
            }
        };
        let gateway = match spec.gateways.iter().find(|g| Family::of(**g) == family) {
            Some(gateway) => {
                subnets::check_gateway(&subnet, *gateway)?;
                *gateway
            }
            None => subnet.first_host(),
        };
        taken.push(TakenRange {
            net: subnet.net(),
            holder: format!("network {name:?}"),
        });
        configs.push(SubnetConfig { subnet, gateway });
    }
    let id = random_hex(32);
    let bridge = match &spec.bridge {
        Some(bridge) => bridge.clone(),
        None => IfName::new(&format!("br-{}", &id[..12])).expect("15 bytes"),
    };
    let net = Network {
        name: spec.name.clone(),
        id: id.clone(),
        driver: spec.driver,
        subnets: configs,
        bridge,
        mtu: spec.mtu,
        internal: spec.internal,
        icc: spec.icc,
        isolation: spec.isolation,
        metric: spec.metric,
        ipam: spec.ipam,
        macvlan: spec.macvlan.clone(),
        overlay: spec.overlay.clone().map(|mut o| {
            o.vxlan = format!("vx-{}", &id[..12]);
            o
        }),
        dns: spec.dns,
        state: RowState::Pending,
        created: state::now(),
        creator: spec.creator,
    };
    state::insert_network(tx, &net, Some(owner))?;
    Ok(net)
}

/// 40 random bits: the global ID of a unique local IPv6 prefix.
fn random_ula_id() -> [u8; 5] {
    let hex = random_hex(5);
    let mut id = [0u8; 5];
    for (i, b) in id.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).expect("hex from random_hex");
    }
    id
}
