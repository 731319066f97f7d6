//! Attaching containers to networks and detaching them.

use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::os::fd::AsFd;

use ctnet_kernel::{link, reclaim, sysctl, IfName, Netns, RtSocket};
use rusqlite::Connection;

use crate::agent;
use crate::alloc::addresses as ipam;
use crate::alloc::host_ports;
use crate::driver::bridge;
use crate::driver::bridge::port_rules;
use crate::driver::routes::RouteRule;
use crate::engine::{random_hex, Engine};
use crate::error::{Error, ErrorKind, Result};
use crate::model::policy::Labels;
use crate::model::ports::{host_ip_text, Holder, PortSpec, Protocol};
use crate::model::{
    ContainerRef, DnsName, Driver, Endpoint, Family, MacAddr, NamedEndpoint, NetnsIdentity,
    Network, NetworkName, RowState,
};
use crate::ops::bridge_address::random_local_mac;
use crate::ops::macvlan;
use crate::ops::names;
use crate::ops::stale::{identity_from, may_be_stale, Held};
use crate::owner::Owner;
use crate::state;

/// A request to attach a container to a network.
#[derive(Debug, Clone)]
pub struct AttachSpec {
    /// The network.
    pub network: NetworkName,
    /// The container's namespace.
    pub container: ContainerRef,
    /// Static addresses, at most one per family of the network; a free one for each
    /// family not given.
    pub ips: Vec<IpAddr>,
    /// The interface name inside the container; `eth0`, `eth1`, … when unset.
    pub ifname: Option<IfName>,
    /// Ties the endpoint's life to a process (`ctnet run`): `ctnet gc` removes it once
    /// that process is gone.
    pub owner: Option<Owner>,
    /// ctnet made the namespace and removes it.
    pub netns_owned: bool,
    /// Ports to publish (`-p`).
    pub publish: Vec<PortSpec>,
    /// The container interface's MAC; 02:42 and the address (as Docker does) when unset.
    pub mac: Option<MacAddr>,
    /// The container's name in the network's DNS, if it has one (ignored on a network
    /// without DNS: every container has a name or label, but only DNS networks serve it).
    pub name: Option<DnsName>,
    /// Further names it answers to (`--alias`); refused on a network without DNS.
    pub aliases: Vec<DnsName>,
    /// Its labels on the network (`--label`), which policies select by.
    pub labels: Labels,
}

pub(crate) fn container_object(label: &str) -> String {
    format!("container {label:?}")
}

/// An endpoint named in errors: its container and network.
pub(crate) fn endpoint_object(net: &Network, ep: &Endpoint) -> String {
    format!(
        "{} on network {:?}",
        container_object(&ep.container),
        net.name.as_str()
    )
}

impl Engine {
    /// Opens the namespace a container reference points at, with a helpful error.
    pub fn open_container(&self, container: &ContainerRef) -> Result<Netns> {
        let result = match container {
            ContainerRef::Named(name) => Netns::open(&self.netns_dir.path_of(name)),
            ContainerRef::Path(path) => Netns::open(path),
            ContainerRef::Pid(pid) => Netns::of_pid(*pid),
            ContainerRef::Runtime {
                netns: Some(path), ..
            } => Netns::open(path),
            ContainerRef::Runtime {
                netns: None, id, ..
            } => Err(ctnet_kernel::Error::NotFound {
                what: format!("the network namespace of container {id}"),
            }),
        };
        result.map_err(|e| self.netns_error(container, e))
    }

    /// A namespace that could not be opened, with what to do about it.
    fn netns_error(&self, container: &ContainerRef, e: ctnet_kernel::Error) -> Error {
        let fix = match container {
            ContainerRef::Named(name) => format!(
                "create it with `ctnet netns add {name}`, or check `ctnet netns ls` (netns dir {})",
                self.netns_dir.path().display()
            ),
            ContainerRef::Path(_) => {
                "give the path of a network namespace file, e.g. /proc/PID/ns/net".into()
            }
            ContainerRef::Pid(_) => "give the pid of a running process".into(),
            ContainerRef::Runtime { .. } => "give the container's network namespace path".into(),
        };
        let object = container_object(&container.label());
        if e.is_not_found() {
            Error::new(
                ErrorKind::NotFound,
                object,
                "network namespace does not exist",
                fix,
            )
        } else {
            Error::new(ErrorKind::InvalidInput, object, e.to_string(), fix)
        }
    }

    /// Attaches a container to a network: a veth pair whose host side is a port of the
    /// network's bridge and whose container side gets an address, and the default routes
    /// its container's rule gives it (see `driver::routes`). All or nothing.
    pub fn attach(&mut self, spec: AttachSpec) -> Result<Endpoint> {
        let netns = self.open_container(&spec.container)?;
        let inode = netns
            .inode()
            .map_err(|e| Error::kernel(container_object(&spec.container.label()), e))?;
        self.refuse_host_namespace(&spec.container, inode)?;
        let automatic = if spec.publish.iter().any(|p| p.host.is_none()) {
            automatic_port_range()
        } else {
            0..=0 // unused: every host port is given
        };
        let listening = self.check_publish(&spec.publish, &automatic)?;
        let net = self.ready_network(&spec.network)?;
        self.check_overlay_agent(&net)?;
        macvlan::refuse_ports(&net, &spec.publish)?;
        if let (Some(mac), true) = (spec.mac, net.driver.is_bridged()) {
            self.check_mac_not_bridge(&net, mac)?;
        }
        // Aliases on a network without DNS are refused before anything is done.
        names::names_for(&net, spec.name.as_ref(), &spec.aliases)?;
        let me = Owner::me();
        let reserve = |tx: &Connection, held: Option<&NetnsIdentity>| {
            let (mut ep, alone) = reserve_endpoint(tx, &spec, &net, &netns, inode, held, &me)?;
            ensure_mac_free(tx, &net, &mut ep, spec.mac.is_some())?;
            let ep = reserve_ports(tx, ep, &spec.publish, &net, &listening, automatic.clone())?;
            Ok((ep, alone))
        };
        let (ep, alone) = match self.store.write(|tx| reserve(tx, None)) {
            // What clashed may belong to a container whose namespace is gone (lost
            // without a detach, or before a reboot; see ops/stale.rs): released, then
            // tried once more. Only this path pays for judging rows.
            Err(e) if may_be_stale(&e) => {
                let held = self.identity_of(&netns, &spec.container)?;
                let released =
                    self.release_stale(held.as_ref().map(|identity| Held { inode, identity }))?;
                if released.is_empty() {
                    return Err(e);
                }
                self.store.write(|tx| reserve(tx, held.as_ref()))?
            }
            other => other?,
        };
        // The kernel work and the write that marks the endpoint ready succeed together,
        // or both are undone.
        let built = self.build_endpoint(&net, &ep, &netns).and_then(|identity| {
            if net.dns && alone {
                // Its first network: the file names this network's gateways, and no
                // other row needs reading.
                self.write_resolv_conf(&ep, net.subnets.iter().map(|s| s.gateway).collect())?;
            } else if net.dns {
                // The pending row counts: the file names this network's gateways too.
                self.refresh_resolv_conf(&ep)?;
            }
            self.store.write(|tx| {
                state::set_endpoint_ready(tx, ep.id, spec.owner.as_ref(), identity.as_ref())
            })?;
            Ok(identity)
        });
        let identity = match built {
            Ok(identity) => identity,
            Err(err) => {
                self.undo_attach(&ep);
                if net.dns {
                    let _ = self.refresh_resolv_conf(&ep);
                }
                return Err(err);
            }
        };
        if net.dns {
            self.tell_agent_of_attach(&ep)?;
        }
        Ok(Endpoint {
            state: RowState::Ready,
            identity,
            ..ep
        })
    }

    /// Tells the agent that `ep`, on a DNS network, is ready: one datagram when an agent
    /// runs (the common case, and the whole cost DNS adds to an attach). When none
    /// answers, starts one, which reads the whole store, this endpoint with it, before
    /// its socket answers; if it cannot be started the attach is undone and refused, so
    /// no container is left on a DNS network whose names nobody serves.
    fn tell_agent_of_attach(&mut self, ep: &Endpoint) -> Result<()> {
        if agent::notify_endpoint(&self.paths, ep.id) {
            return Ok(());
        }
        agent::ensure_running(&self.paths).inspect_err(|_| {
            self.undo_attach(ep);
            let _ = self.refresh_resolv_conf(ep);
        })
    }

    /// Undoes an attach that failed after its reservation, whatever step failed (the
    /// kernel work, or the final write that marks it ready, e.g. on a full disk): the
    /// veth and published ports go, then the row. The caller reports the first failure;
    /// if the undo fails too, the row stays `pending` for a process that is about to
    /// exit, and the next ctnet command's reconcile finishes the job.
    fn undo_attach(&mut self, ep: &Endpoint) {
        // `removing` first: a firewall rewrite (gc) then leaves its ports out rather than
        // putting back what the teardown withdraws (see ops/firewall.rs).
        let me = Owner::me();
        let removing = RowState::Removing;
        let _ = self
            .store
            .write(|tx| state::set_endpoint_state(tx, ep.id, removing, Some(&me)));
        if self.tear_down_endpoint(ep).is_ok() {
            let _ = self.store.write(|tx| state::delete_endpoint(tx, ep.id));
        }
    }

    /// Refuses a `--mac` equal to the network bridge's own address, which is the
    /// gateway's: every container would send its traffic for the gateway to the new one.
    fn check_mac_not_bridge(&mut self, net: &Network, mac: MacAddr) -> Result<()> {
        let bridge = link::get(self.host()?, net.bridge.as_str())
            .map_err(|e| Error::kernel(format!("bridge {}", net.bridge), e))?;
        if bridge.and_then(|b| b.mac) != Some(mac.bytes()) {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::Conflict,
            format!("MAC address {mac}"),
            format!(
                "is the address of network {:?}'s bridge {} (its gateway)",
                net.name.as_str(),
                net.bridge
            ),
            "choose another --mac, or leave it out to get one made from the container's address",
        ))
    }

    /// Builds the endpoint in the kernel; returns the identity of the container's
    /// namespace, read from the socket opened inside it anyway (no extra visit).
    pub(crate) fn build_endpoint(
        &mut self,
        net: &Network,
        ep: &Endpoint,
        netns: &Netns,
    ) -> Result<Option<NetnsIdentity>> {
        let object = endpoint_object(net, ep);
        let veth = match (&net.macvlan, &ep.host_ifname) {
            (Some(macvlan), _) => return self.build_macvlan_endpoint(net, macvlan, ep, netns),
            (None, Some(veth)) => veth,
            (None, None) => return Err(no_veth(&object)),
        };
        let kernel = |e| Error::kernel(&object, e);
        let bridge_index = link::index_of(self.host()?, net.bridge.as_str()).map_err(kernel)?;
        let bridge_index = match bridge_index {
            Some(index) => index,
            // After a reboot (or an `ip link del`) the network is made ready again by its
            // first attach: the pending endpoint keeps `network rm` away meanwhile.
            None => self.replumb_network(net)?,
        };
        // Before the new port joins: a bridge of an older ctnet would take its address.
        self.pin_bridge_address(net)?;
        // Its anti-spoofing elements, published ports and part of the network's
        // policies, in one batch before the port exists, so the container's first frame
        // is checked (the elements name the port; see datapath/nft/antispoof.rs). Ports
        // and policy entries for an address nobody holds yet match nothing meanwhile.
        let guards: Vec<_> = bridge::port_guard(ep).into_iter().collect();
        let policy = self.endpoint_policy_part(ep)?.unwrap_or_default();
        let ports = port_rules(ep);
        if !ports.is_empty() || !policy.is_empty() {
            self.ensure_firewall()?;
        } else if !guards.is_empty() {
            self.ensure_guard_table()?;
        }
        self.firewall
            .add_endpoint(&ports, &policy, &guards)
            .map_err(kernel)?;
        let host = self.host()?;
        let made = host.execute_all(bridge::host_side_requests(
            net,
            ep,
            veth,
            netns.as_fd(),
            bridge_index,
        ));
        if let Err(e) = made {
            return Err(match e.errno() {
                Some(libc::EXFULL) => bridge_full(net),
                Some(libc::EEXIST) if has_link(netns, &ep.ifname) => {
                    interface_exists(ep, "a device ctnet did not make has that name")
                }
                _ => kernel(e),
            });
        }
        // A bridge port needs no IPv6 of its own. Each device with IPv6 adds routes the
        // kernel walks whole on every link change (attach grew with N), and sends
        // solicitations flooded to every port. Turned off before the peer brings carrier.
        match sysctl::disable_ipv6(veth) {
            Ok(_) => {}
            // /proc/sys read-only (an engine inside a container): the port's link-local
            // address goes instead, over netlink, as on an IPv4-only container's side.
            // That keeps what matters for traffic (no address, no detection or router
            // solicitations, no fe80::/64 route); only the port's ff00::/8 multicast
            // route stays, which disable_ipv6 would also have spared. Not a setting
            // anyone asked for, so nothing to refuse (netavark 1.4 does neither).
            Err(e) if e.is_unwritable() => self
                .host()?
                .execute(link::no_ipv6_link_local_request(veth))
                .map_err(kernel)?,
            Err(e) => return Err(kernel(e)),
        }
        let identity = self.configure_container_side(net, ep, netns, &object, |index| {
            bridge::container_requests(net, ep, index)
        })?;
        Ok(identity)
    }

    /// Configures the container's side of an endpoint from inside its namespace (its
    /// interface `ep.ifname` is there already): `requests` for the interface's index
    /// there, in one round trip. Returns the namespace's identity, read from the socket
    /// opened inside it anyway (no extra visit).
    pub(crate) fn configure_container_side(
        &mut self,
        net: &Network,
        ep: &Endpoint,
        netns: &Netns,
        object: &str,
        requests: impl FnOnce(u32) -> Vec<ctnet_kernel::netlink::Request>,
    ) -> Result<Option<NetnsIdentity>> {
        let kernel = |e| Error::kernel(object, e);
        // A socket made inside the container's namespace configures it from here. On
        // the same visit (one pair of namespace switches): addresses and routes are
        // ctnet's to give, so an IPv6 interface takes no router advertisements (any
        // container on the bridge could send one), makes no addresses from them, and
        // has no detection holding up its link-local address.
        let ipv6 = net.ipv6().then(|| ep.ifname.clone());
        let mut sock = netns
            .within(move || {
                if let Some(ifname) = &ipv6 {
                    sysctl::disable_ipv6_autoconf(ifname)?;
                    sysctl::disable_ipv6_dad(ifname)?;
                }
                RtSocket::open()
            })
            .map_err(kernel)?;
        let index = link::index_of(&mut sock, ep.ifname.as_str())
            .map_err(kernel)?
            .ok_or_else(|| {
                kernel(ctnet_kernel::Error::NotFound {
                    what: format!("link {} inside the container", ep.ifname),
                })
            })?;
        sock.execute_all(requests(index)).map_err(kernel)?;
        identity_from(sock.netns_cookie(), object)
    }

    /// Removes an endpoint's kernel objects; a veth already gone is fine.
    pub(crate) fn tear_down_endpoint(&mut self, ep: &Endpoint) -> Result<()> {
        let Some(veth) = &ep.host_ifname else {
            return self.delete_macvlan_interface(ep);
        };
        let host_side = [veth.as_str()];
        self.start_tearing_down_endpoint(ep, &host_side)?
            .wait()
            .map_err(|e| Error::kernel(container_object(&ep.container), e))
    }

    /// Withdraws an endpoint's published ports and starts deleting its veth by the host
    /// side's name (`host_side`): that takes the container side, its address and routes
    /// with it. A child process sits out the kernel's clean-up wait.
    ///
    /// The ports go first: an nf_tables commit made while the kernel deletes the device
    /// queues behind the device's own clean-up (nf_tables listens for it).
    fn start_tearing_down_endpoint<'a>(
        &mut self,
        ep: &Endpoint,
        host_side: &'a [&'a str],
    ) -> Result<reclaim::Deletion<'a>> {
        let object = container_object(&ep.container);
        // A bridge of an older ctnet would take another address when this port goes
        // (detach, a reaped `--no-wait` detach, gc's clean-up). Best effort: a failure to
        // pin must not keep a container attached.
        if let Ok(Some(net)) = state::get_network(self.store.read(), &ep.network) {
            let _ = self.pin_bridge_address(&net);
        }
        // Ports, policy entries and anti-spoofing elements: one commit.
        let policy = self.endpoint_policy_part(ep)?.unwrap_or_default();
        let guards: Vec<_> = bridge::port_guard(ep).into_iter().collect();
        self.firewall
            .remove_endpoint(&port_rules(ep), &policy, &guards)
            .map_err(|e| Error::kernel(&object, e))?;
        let hold: Vec<_> = self.firewall.open_socket().into_iter().collect();
        reclaim::start_deleting_links(host_side, &hold).map_err(|e| Error::kernel(object, e))
    }

    /// Detaches a container from a network, releasing its address.
    pub fn detach(&mut self, network: &NetworkName, container: &ContainerRef) -> Result<Endpoint> {
        self.detach_interface(network, container, None)
    }

    /// Detaches a container's interface `ifname` (any, when None) from a network. A
    /// runtime's container (CNI, Podman) is matched by its id, never by the namespace
    /// alone: another container's endpoint is never detached.
    pub fn detach_interface(
        &mut self,
        network: &NetworkName,
        container: &ContainerRef,
        ifname: Option<&IfName>,
    ) -> Result<Endpoint> {
        let ep = self.claim_for_detach(network, container, ifname)?;
        self.finish_detach(ep)
    }

    /// The rest of a detach, once the row is claimed: ports, veth, row; then the
    /// namespace's resolv.conf and the agent, for a DNS network.
    fn finish_detach(&mut self, ep: Endpoint) -> Result<Endpoint> {
        let ep = self.remove_claimed(ep)?;
        self.after_leaving(&ep);
        Ok(ep)
    }

    /// Tells what a gone endpoint of a DNS network leaves: its namespace's resolv.conf
    /// is written again (or removed), and the agent notified. Best effort: the endpoint
    /// is gone already, and the agent re-reads the store on its own timer.
    fn after_leaving(&mut self, ep: &Endpoint) {
        let dns = state::network_has_dns(self.store.read(), &ep.network).unwrap_or(false);
        if dns {
            let _ = self.refresh_resolv_conf(ep);
            agent::notify_endpoint(&self.paths, ep.id);
        }
    }

    /// Ports, veth and row of a claimed endpoint.
    fn remove_claimed(&mut self, ep: Endpoint) -> Result<Endpoint> {
        let Some(veth) = ep.host_ifname.clone() else {
            // Macvlan: the interface is deleted from inside the container, at once.
            self.delete_macvlan_interface(&ep)?;
            self.store.write(|tx| state::delete_endpoint(tx, ep.id))?;
            return Ok(ep);
        };
        let host_side = [veth.as_str()];
        let deletion = self.start_tearing_down_endpoint(&ep, &host_side)?;
        // The row's delete is written while the kernel deletes the veth, and committed
        // only once the kernel has confirmed it: a refusal rolls it back.
        self.store.write(|tx| {
            state::delete_endpoint(tx, ep.id)?;
            deletion
                .wait()
                .map_err(|e| Error::kernel(container_object(&ep.container), e))
        })?;
        Ok(ep)
    }

    /// The first half of a detach (`--no-wait`): the container is cut off (the host side
    /// of its veth taken down, so nothing reaches it, published ports included) and its
    /// row left `removing`; [`Engine::reap_endpoint`], in another process, withdraws the
    /// ports and deletes the veth. If the reaper never runs, any later ctnet process's
    /// reconcile finishes the detach, as for an interrupted one. The address stays taken
    /// until the veth is gone.
    pub fn detach_begin(
        &mut self,
        network: &NetworkName,
        container: &ContainerRef,
    ) -> Result<Endpoint> {
        let ep = self.claim_for_detach(network, container, None)?;
        match &ep.host_ifname {
            Some(veth) => {
                link::set_down(self.host()?, veth.as_str())
                    .map_err(|e| Error::kernel(container_object(&ep.container), e))?;
            }
            None => self.set_macvlan_interface_down(&ep)?,
        }
        Ok(ep)
    }

    /// Finishes a detach begun by [`Engine::detach_begin`]: deletes the veth and the row.
    /// Nothing to do if another process finished it already.
    pub fn reap_endpoint(&mut self, id: i64) -> Result<()> {
        let me = Owner::me();
        let claimed = self.store.write(|tx| {
            state::claim_endpoint(tx, id, &me, |ep, _| ep.state == RowState::Removing)
        })?;
        if let Some(ep) = claimed {
            self.tear_down_endpoint(&ep)?;
            self.store.write(|tx| state::delete_endpoint(tx, ep.id))?;
            self.after_leaving(&ep);
        }
        Ok(())
    }

    /// Finds the endpoint and marks it `removing` by this process.
    fn claim_for_detach(
        &mut self,
        network: &NetworkName,
        container: &ContainerRef,
        ifname: Option<&IfName>,
    ) -> Result<Endpoint> {
        let (mine, stale) = self.rows_of(container, |e| {
            &e.network == network
                && e.state != RowState::Removing
                && ifname.is_none_or(|n| &e.ifname == n)
        })?;
        if let Some(ep) = self.claim_first(&mine)? {
            return Ok(ep);
        }
        let object = container_object(&container.label());
        let cause = format!("is not attached to network {:?}", network.as_str());
        Err(match stale.first() {
            None => Error::new(
                ErrorKind::NotFound,
                object,
                cause,
                "see `ctnet ls` for what is attached where",
            ),
            // Left for gc: a detach changes nothing but the container it names.
            Some(old) => Error::new(
                ErrorKind::NotFound,
                object,
                format!(
                    "{cause}; the endpoint {:?} recorded there with this namespace's inode \
                     number is of a namespace that is gone (the kernel reuses the numbers)",
                    old.container
                ),
                "`ctnet gc` releases it; see `ctnet ls` for what is attached where",
            ),
        })
    }

    /// The rows of `container` that `wanted` accepts, as (its own, stale ones). A
    /// runtime's id names its container wherever its namespace is now (should it have
    /// rows in two namespaces, written before version 7, the one in the namespace named
    /// goes first); a namespace that cannot be opened is looked up by its label. Any
    /// other is matched by its namespace's inode and then its identity: a row of a gone
    /// namespace that had the inode before is stale, never this container's (see
    /// ops/stale.rs).
    fn rows_of(
        &mut self,
        container: &ContainerRef,
        wanted: impl Fn(&Endpoint) -> bool,
    ) -> Result<(Vec<Endpoint>, Vec<Endpoint>)> {
        let netns = self.open_container(container).ok();
        let held = netns.as_ref().and_then(|ns| Some((ns, ns.inode().ok()?)));
        match held {
            Some((ns, inode)) if !matches!(container, ContainerRef::Runtime { .. }) => {
                let rows = state::endpoints_in_netns(self.store.read(), inode)?;
                let rows = rows.into_iter().filter(|e| wanted(e)).collect();
                self.split_by_identity(rows, ns, container)
            }
            _ => {
                let inode = held.map(|(_, inode)| inode);
                let rows = state::endpoints_of_container(self.store.read(), &container.label())?;
                let mut rows: Vec<_> = rows.into_iter().filter(|e| wanted(e)).collect();
                rows.sort_by_key(|e| Some(e.netns_inode) != inode);
                Ok((rows, Vec::new()))
            }
        }
    }

    /// Marks the first of `rows` that is still not being removed `removing` by this
    /// process, and returns it as the store has it now.
    fn claim_first(&mut self, rows: &[Endpoint]) -> Result<Option<Endpoint>> {
        let me = Owner::me();
        for ep in rows {
            let claimed = self.store.write(|tx| {
                state::claim_endpoint(tx, ep.id, &me, |now, _| {
                    now.state != RowState::Removing && now.netns_inode == ep.netns_inode
                })
            })?;
            if claimed.is_some() {
                return Ok(claimed);
            }
        }
        Ok(None)
    }

    /// Detaches a container from every network it is on. Rows of a gone namespace that
    /// had its inode are not its own and stay for `ctnet gc` (or an attach that clashes
    /// with them) to release.
    pub fn detach_all(&mut self, container: &ContainerRef) -> Result<Vec<Endpoint>> {
        let (mine, _stale) = self.rows_of(container, |e| e.state != RowState::Removing)?;
        let mut out = Vec::new();
        for ep in mine {
            if let Some(ep) = self.claim_first(std::slice::from_ref(&ep))? {
                out.push(self.finish_detach(ep)?);
            }
        }
        Ok(out)
    }

    /// All endpoints.
    pub fn endpoints(&self) -> Result<Vec<Endpoint>> {
        state::list_endpoints(self.store.read())
    }

    /// The names and addresses of endpoint `id` if it is ready (None: gone, or not yet
    /// ready): what the agent reads when told that one endpoint changed.
    pub fn named_endpoint(&self, id: i64) -> Result<Option<NamedEndpoint>> {
        state::named_endpoint(self.store.read(), id)
    }

    /// Every network, and the names and addresses of every ready endpoint, as of one
    /// moment (one read transaction): what the agent's DNS rebuilds its table from.
    pub fn dns_snapshot(&self) -> Result<(Vec<Network>, Vec<NamedEndpoint>)> {
        self.store.read_snapshot(|conn| {
            Ok((
                state::list_networks(conn)?,
                state::list_named_endpoints(conn)?,
            ))
        })
    }

    /// A runtime container's endpoints (matched by its id) that are ready, in the
    /// namespace it names when that can be opened (rows of an earlier life of the same
    /// id, before a reboot, are not its own), else wherever they are.
    pub fn endpoints_of(&mut self, container: &ContainerRef) -> Result<Vec<Endpoint>> {
        let inode = self
            .open_container(container)
            .ok()
            .and_then(|ns| ns.inode().ok());
        let rows = state::endpoints_of_container(self.store.read(), &container.label())?;
        Ok(rows
            .into_iter()
            .filter(|e| e.state == RowState::Ready && inode.is_none_or(|i| e.netns_inode == i))
            .collect())
    }
}

/// The error for an address, or a port bound to an address, of a family the network
/// does not have.
fn family_missing(net: &Network, object: String, family: Family, fix: String) -> Error {
    let has = if net.subnets.is_empty() {
        "no subnets at all (ipam none: its containers get no address)".to_string()
    } else {
        format!("no {family} subnet ({})", net.subnets_text())
    };
    Error::invalid(
        object,
        format!("is {family}, but network {:?} has {has}", net.name.as_str()),
        fix,
    )
}

/// The error for a bridge network's endpoint recorded without a veth (a store written by
/// something else: ctnet records one for every bridge endpoint).
fn no_veth(object: &str) -> Error {
    Error::new(
        ErrorKind::Store,
        object,
        "is on a bridge network but the state database records no veth for it",
        "detach it and attach it again",
    )
}

/// Whether the namespace has a link named `ifname` (asked only to explain a refusal).
pub(crate) fn has_link(netns: &Netns, ifname: &IfName) -> bool {
    let name = ifname.clone();
    netns
        .within(move || {
            let mut sock = RtSocket::open()?;
            link::index_of(&mut sock, name.as_str())
        })
        .is_ok_and(|index| index.is_some())
}

/// The error for an interface name the container's namespace has already, worded with
/// netavark's key phrase ("interface eth0 already exists on container namespace").
pub(crate) fn interface_exists(ep: &Endpoint, why: &str) -> Error {
    Error::new(
        ErrorKind::Conflict,
        format!(
            "interface {} in {}",
            ep.ifname,
            container_object(&ep.container)
        ),
        format!(
            "interface {} already exists on container namespace: {why}",
            ep.ifname
        ),
        "choose another interface name (--ifname; Podman: interface_name), or remove that \
         device from the container's namespace",
    )
}

/// The error for a bridge that refused another port. A Linux bridge numbers its ports
/// 1 to 1,023 (`BR_MAX_PORTS`); the kernel says only "Exchange full".
fn bridge_full(net: &Network) -> Error {
    Error::new(
        ErrorKind::Exhausted,
        format!("network {:?}", net.name.as_str()),
        format!(
            "its bridge {} has 1,023 ports, the most a Linux bridge takes",
            net.bridge
        ),
        "attach the container to another network (`ctnet network create NAME` makes one)",
    )
}

/// Checks the request against what is recorded and records the endpoint as `pending`.
fn reserve_endpoint(
    tx: &Connection,
    spec: &AttachSpec,
    net: &Network,
    netns: &Netns,
    inode: u64,
    held: Option<&NetnsIdentity>,
    owner: &Owner,
) -> Result<(Endpoint, bool)> {
    let label = spec.container.label();
    let object = container_object(&label);
    if net.state != RowState::Ready {
        return Err(Error::new(
            ErrorKind::Conflict,
            format!("network {:?}", net.name.as_str()),
            format!("is {}", net.state.as_str()),
            "wait for the operation on it to finish, or run `ctnet gc`",
        ));
    }
    let mut siblings = if state::netns_has_endpoints(tx, inode)? {
        state::endpoints_in_netns(tx, inode)?
    } else {
        Vec::new()
    };
    if let Some(held) = held {
        // Rows of another namespace that had this inode before are not this
        // container's (see ops/stale.rs).
        siblings.retain(|e| e.identity.as_ref().is_none_or(|id| id == held));
    }
    // A runtime's id names one container: the same id on this network in another
    // namespace is either stale (released, then this is tried again) or a second ADD
    // without a DEL, which the runtime must not send.
    let same_id = match spec.container {
        ContainerRef::Runtime { .. } => {
            state::same_container_elsewhere(tx, &label, &net.name, inode)?
        }
        _ => None,
    };
    if let Some(other) = same_id {
        return Err(Error::new(
            ErrorKind::Conflict,
            &object,
            format!(
                "is already attached to network {:?} in another namespace ({})",
                net.name.as_str(),
                other.display()
            ),
            "delete that attachment first (CNI DEL, or netavark teardown)",
        ));
    }
    if siblings
        .iter()
        .any(|e| e.network == net.name && e.state == RowState::Removing)
    {
        return Err(Error::new(
            ErrorKind::Conflict,
            &object,
            format!(
                "is still being detached from network {:?} (its veth is being deleted)",
                net.name.as_str()
            ),
            "retry in a moment, or run `ctnet gc` if it stays",
        ));
    }
    if siblings.iter().any(|e| e.network == net.name) {
        return Err(Error::new(
            ErrorKind::Conflict,
            &object,
            format!("is already attached to network {:?}", net.name.as_str()),
            format!("detach it first with `ctnet detach {} {label}`", net.name),
        ));
    }
    let ifname = match &spec.ifname {
        Some(name) => {
            if siblings.iter().any(|e| &e.ifname == name) {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!("interface {name} in {object}"),
                    format!(
                        "interface {name} already exists on container namespace: it is used by \
                         another network of this container"
                    ),
                    "choose another --ifname (Podman: another interface_name)",
                ));
            }
            name.clone()
        }
        None => (0..)
            .map(|i| IfName::new(&format!("eth{i}")).expect("eth and a number is a valid name"))
            .find(|n| siblings.iter().all(|e| &e.ifname != n))
            .expect("unbounded"),
    };
    let ips = reserve_addresses(tx, spec, net)?;
    let (name, aliases) = names::names_for(net, spec.name.as_ref(), &spec.aliases)?;
    names::check_names_free(tx, net, name.as_ref(), &aliases)?;
    // A macvlan endpoint has no host side.
    let host_ifname = match net.driver {
        Driver::Macvlan => None,
        Driver::Bridge | Driver::Overlay => Some(loop {
            let candidate = format!("veth{}", &random_hex(4)[..7]);
            if !state::host_ifname_taken(tx, &candidate)? {
                break IfName::new(&candidate).expect("veth and 7 hex digits is a valid name");
            }
        }),
    };
    let default_routes = RouteRule::for_container(&label).families(net, &siblings);
    let mut ep = Endpoint {
        id: 0,
        network: net.name.clone(),
        container: label,
        netns_path: netns.path().to_path_buf(),
        netns_inode: inode,
        ifname,
        host_ifname,
        mac: spec.mac.unwrap_or_else(|| automatic_mac(&ips)),
        ips,
        default_routes,
        netns_owned: spec.netns_owned,
        state: RowState::Pending,
        ports: Vec::new(),
        identity: None,
        name,
        aliases,
        labels: spec.labels.clone(),
    };
    ep.id = state::insert_endpoint(tx, &ep, Some(owner))?;
    Ok((ep, siblings.is_empty()))
}

/// The MAC of an interface given none: 02:42 and its first address (as Docker does), or
/// a random locally administered one for an interface without addresses (`ipam none`).
fn automatic_mac(ips: &[IpAddr]) -> MacAddr {
    match ips.first() {
        Some(ip) => MacAddr::for_address(*ip),
        None => MacAddr::new(random_local_mac()).expect("a locally administered unicast address"),
    }
}

/// Makes sure no other endpoint on the network has the endpoint's hardware address: the
/// bridge would send the traffic of both to whichever spoke last, and the other would
/// lose it. A given `--mac` that is taken is refused; an automatic one (made from the IP
/// address) can clash only with an address someone gave another container by hand, and
/// is then replaced by a random locally administered one.
fn ensure_mac_free(tx: &Connection, net: &Network, ep: &mut Endpoint, given: bool) -> Result<()> {
    let Some(holder) = state::mac_holder(tx, &net.name, ep.mac, ep.id)? else {
        return Ok(());
    };
    if given {
        return Err(Error::new(
            ErrorKind::Conflict,
            format!("MAC address {}", ep.mac),
            format!(
                "is already used by {} on network {:?}; two interfaces with one address on a bridge take each other's traffic",
                container_object(&holder),
                net.name.as_str()
            ),
            "choose another --mac, or leave it out to get one made from the container's address",
        ));
    }
    for _ in 0..16 {
        let mac = MacAddr::new(random_local_mac()).expect("a locally administered unicast address");
        if state::mac_holder(tx, &net.name, mac, ep.id)?.is_none() {
            ep.mac = mac;
            return state::set_endpoint_mac(tx, ep.id, mac);
        }
    }
    Err(Error::new(
        ErrorKind::Exhausted,
        format!("network {:?}", net.name.as_str()),
        "no free MAC address was found",
        "give the container a --mac of its own",
    ))
}

/// One address per family of the network: the one asked for, checked, or the next free
/// one after the subnet's cursor. Addresses asked for in a family the network does not
/// have, or two of one family, are refused.
fn reserve_addresses(tx: &Connection, spec: &AttachSpec, net: &Network) -> Result<Vec<IpAddr>> {
    for wanted in &spec.ips {
        let family = Family::of(*wanted);
        if net.subnet(family).is_none() {
            let (flag, create) = match family {
                Family::V4 => ("--ip", "ctnet network create NAME"),
                Family::V6 => ("--ip6", "ctnet network create NAME --ipv6"),
            };
            return Err(family_missing(
                net,
                format!("address {wanted}"),
                family,
                format!("omit {flag}, or attach to a network with {family} (`{create}`)"),
            ));
        }
        if spec
            .ips
            .iter()
            .filter(|ip| Family::of(**ip) == family)
            .count()
            > 1
        {
            return Err(Error::invalid(
                format!(
                    "addresses {}",
                    spec.ips
                        .iter()
                        .map(|ip| ip.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                format!(
                    "ask for two {family} addresses: a container gets one per family on a network"
                ),
                "give at most one --ip and one --ip6",
            ));
        }
    }
    let mut ips = Vec::new();
    for s in &net.subnets {
        let family = s.subnet.family();
        let ip = match spec.ips.iter().find(|ip| Family::of(**ip) == family) {
            Some(&ip) => {
                let holder =
                    state::address_holder(tx, &net.name, ip)?.map(|c| container_object(&c));
                ipam::check_static(&s.subnet, s.gateway, ip, holder.as_deref())?;
                ip
            }
            None => {
                let last = state::last_allocated(tx, &net.name, family)?;
                let mut held = state::HeldAddresses::new(tx, &net.name);
                let ip = ipam::allocate(&s.subnet, s.gateway, last, |ip| held.contains(ip))?;
                state::set_last_allocated(tx, &net.name, ip)?;
                ip
            }
        };
        ips.push(ip);
    }
    Ok(ips)
}

/// Resolves and records the endpoint's published ports, refusing clashes with ports
/// published already and with host programs' sockets (`listening`, read before the
/// transaction).
fn reserve_ports(
    tx: &Connection,
    mut ep: Endpoint,
    specs: &[PortSpec],
    net: &Network,
    listening: &[Holder],
    automatic: RangeInclusive<u16>,
) -> Result<Endpoint> {
    if specs.is_empty() {
        return Ok(ep);
    }
    if net.internal {
        // Docker accepts this and silently publishes nothing; say so instead.
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("network {:?}", net.name.as_str()),
            "is internal: nothing outside its bridge can reach it, so ports cannot be published on it",
            "publish on a non-internal network (attach the container to one as well)",
        ));
    }
    if net.subnets.is_empty() {
        // netavark accepts the ports and forwards nothing; say so instead.
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("network {:?}", net.name.as_str()),
            "has no addresses (ipam none): its containers have no address a published port could be forwarded to",
            "publish on a network with subnets (attach the container to one as well)",
        ));
    }
    for spec in specs {
        if let Some(ip) = spec.host_ip {
            let family = Family::of(ip);
            if net.subnet(family).is_none() {
                let object = format!(
                    "published port {}:{}",
                    host_ip_text(Some(ip)),
                    spec.container
                );
                let fix = "bind it to an address of the network's family, or leave the address out";
                return Err(family_missing(net, object, family, fix.into()));
            }
        }
    }
    // What is taken is read once per protocol, over the span every spec of it may use.
    let mut taken = Vec::new();
    for protocol in [Protocol::Tcp, Protocol::Udp] {
        let spans = specs
            .iter()
            .filter(|s| s.protocol == protocol)
            .map(|s| s.host.map_or_else(|| automatic.clone(), |h| h.ports()));
        let span = spans.reduce(|a, b| *a.start().min(b.start())..=*a.end().max(b.end()));
        if let Some(span) = span {
            taken.extend(state::published_ports_in(tx, protocol, span)?);
        }
    }
    ep.ports = host_ports::resolve(specs, &taken, listening, automatic)?;
    state::insert_ports(tx, ep.id, &ep.ports)?;
    Ok(ep)
}

/// The host ports chosen for `-p CONTAINER_PORT`: the kernel's ephemeral range, as
/// Docker uses.
fn automatic_port_range() -> RangeInclusive<u16> {
    let parsed = sysctl::read("net.ipv4.ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut it = text.split_whitespace().map(|n| n.parse::<u16>().ok());
            Some(it.next()??..=it.next()??)
        });
    parsed.unwrap_or(32768..=60999)
}
