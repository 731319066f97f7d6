//! What a publish is checked against in the kernel before anything is reserved: the host's
//! own addresses (a port bound to an address the host does not have is never reached) and
//! the sockets host programs receive on (a published port is a DNAT in prerouting and
//! output, ahead of every socket: publishing a port a program listens on would silently
//! send that program's traffic from outside to the container).
//!
//! Both are read outside the state transaction; the choice itself stays pure
//! (`alloc::host_ports`). A program that binds a port after ctnet published it gets no
//! error (nftables holds no socket); see docs/architecture.md, "Published ports and host
//! programs".

use std::net::IpAddr;
use std::ops::RangeInclusive;

use ctnet_kernel::addr::{self, AddressScope};
use ctnet_kernel::sock_diag::{self, Listener, Transport};

use crate::alloc::host_ports;
use crate::driver::bridge::port_rules;
use crate::engine::Engine;
use crate::error::{Error, ErrorKind, Result};
use crate::model::ports::{host_ip_text, Holder, PortSpec, Protocol, PublishedPort};
use crate::model::{Endpoint, Family};
use crate::ops::endpoint::container_object;
use crate::state;

impl Engine {
    /// Checks a request's published ports before anything is reserved or made: not too
    /// many, each HOST_IP an address of this host; returns the host programs' sockets the
    /// choice of host ports must respect (see [`Engine::host_listeners`]).
    pub(crate) fn check_publish(
        &mut self,
        specs: &[PortSpec],
        automatic: &RangeInclusive<u16>,
    ) -> Result<Vec<Holder>> {
        if specs.is_empty() {
            return Ok(Vec::new());
        }
        host_ports::check_count(specs)?;
        self.check_host_ips(specs)?;
        self.host_listeners(specs, automatic)
    }

    /// Moves the ports endpoint `from` publishes to `to`, another endpoint of the same
    /// container, which then carries them (netavark keeps a container's ports answering
    /// while any of its networks can carry them). The rows move and the map elements are
    /// rewritten in one step: should the kernel refuse, the rows stay where they were and
    /// the old elements are put back. A port bound to an address of a family `to` has no
    /// subnet of is refused, before anything changes.
    pub fn move_ports(&mut self, from: &Endpoint, to: &Endpoint) -> Result<Endpoint> {
        let object = container_object(&from.container);
        let families: Vec<Family> = to.ips.iter().map(|ip| Family::of(*ip)).collect();
        if let Some(port) = from.ports.iter().find(|p| {
            p.host_ip
                .is_some_and(|ip| !families.contains(&Family::of(ip)))
        }) {
            return Err(Error::invalid(
                &object,
                format!(
                    "publishes {}, which network {:?} (the one left to carry its ports) has no address family for",
                    host_ip_text(port.host_ip),
                    to.network.as_str()
                ),
                "keep the container on a network of that family, or publish the port without an address",
            ));
        }
        let heir = Endpoint {
            ports: from.ports.clone(),
            ..to.clone()
        };
        self.ensure_firewall()?;
        let (old, new) = (port_rules(from), port_rules(&heir));
        let firewall = &mut self.firewall;
        self.store.write(|tx| {
            state::move_ports(tx, from.id, to.id)?;
            firewall
                .remove_ports(&old)
                .map_err(|e| Error::kernel(&object, e))?;
            firewall.add_ports(&new).map_err(|e| {
                let _ = firewall.add_ports(&old);
                Error::kernel(&object, e)
            })
        })?;
        let dns = |name| {
            state::get_network(self.store.read(), name)
                .ok()
                .flatten()
                .is_some_and(|n| n.dns)
        };
        if dns(&from.network) || dns(&to.network) {
            crate::agent::notify(&self.paths);
        }
        Ok(heir)
    }

    /// Refuses a `-p HOST_IP:…` whose address is not one of this host's.
    fn check_host_ips(&mut self, specs: &[PortSpec]) -> Result<()> {
        if specs.iter().all(|s| s.host_ip.is_none()) {
            return Ok(());
        }
        let local =
            addr::list_all(self.host()?).map_err(|e| Error::kernel("the host's addresses", e))?;
        for spec in specs {
            let Some(ip) = spec.host_ip else { continue };
            if !local.iter().any(|a| a.address == ip) {
                return Err(not_local(spec, ip, &local));
            }
        }
        Ok(())
    }

    /// The sockets of host programs that would lose traffic to `specs`: every listener on
    /// a port an explicit host port or range of `specs` names, with the process holding
    /// it (looked up only for these), and every listener inside `automatic` when an
    /// automatic port is asked for (skipped there, so no process is looked up).
    fn host_listeners(
        &self,
        specs: &[PortSpec],
        automatic: &RangeInclusive<u16>,
    ) -> Result<Vec<Holder>> {
        let mut out = Vec::new();
        for (transport, protocol) in [
            (Transport::Tcp, Protocol::Tcp),
            (Transport::Udp, Protocol::Udp),
        ] {
            let ours: Vec<&PortSpec> = specs.iter().filter(|s| s.protocol == protocol).collect();
            if ours.is_empty() {
                continue;
            }
            let listeners = match sock_diag::listeners(transport) {
                Ok(listeners) => listeners,
                // A kernel built without socket diagnostics for this protocol (no
                // inet_diag, tcp_diag or udp_diag) cannot be asked: published as before.
                Err(e)
                    if matches!(
                        e.errno(),
                        Some(libc::ENOENT | libc::EPROTONOSUPPORT | libc::EOPNOTSUPP)
                    ) =>
                {
                    Vec::new()
                }
                Err(e) => return Err(Error::kernel("the host's listening sockets", e)),
            };
            for l in listeners {
                let explicit = ours
                    .iter()
                    .any(|s| s.host.is_some_and(|h| h.ports().contains(&l.port)));
                let automatic =
                    automatic.contains(&l.port) && ours.iter().any(|s| s.host.is_none());
                if explicit && self.kept_for_runtime(&l) {
                    continue;
                }
                if explicit || automatic {
                    out.push(listener_holder(&l, protocol, explicit));
                }
            }
        }
        Ok(out)
    }
}

impl Engine {
    /// Whether every process holding the listener's socket is the runtime's keeper of
    /// the container's ports ([`Engine::set_port_keeper`]).
    fn kept_for_runtime(&self, l: &Listener) -> bool {
        let Some(keeper) = &self.port_keeper else {
            return false;
        };
        let holders = sock_diag::socket_holders(l.inode);
        !holders.is_empty() && holders.iter().all(|(pid, _)| keeper(*pid))
    }
}

/// A listener as a holder of its port. A socket on `0.0.0.0` or `::` takes the port on
/// every address (an IPv6 one with `IPV6_V6ONLY` would not take IPv4, but is counted as
/// a holder of every address all the same: refusing there errs on the side of the
/// program); an IPv4-mapped address is the IPv4 address.
fn listener_holder(l: &Listener, protocol: Protocol, describe: bool) -> Holder {
    let ip = match l.address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(l.address, IpAddr::V4),
        v4 => v4,
    };
    let host_ip = (!ip.is_unspecified()).then_some(ip);
    let what = match l.transport {
        Transport::Tcp => "listening on",
        Transport::Udp => "bound to",
    };
    let bound = match l.address {
        IpAddr::V6(v6) => format!("[{v6}]:{}/{protocol}", l.port),
        v4 => format!("{v4}:{}/{protocol}", l.port),
    };
    let mut holder = format!(
        "a host socket {what} {bound} (socket inode {}, uid {})",
        l.inode, l.uid
    );
    if describe {
        let procs: Vec<String> = sock_diag::socket_holders(l.inode)
            .into_iter()
            .map(|(pid, comm)| format!("pid {pid} ({comm})"))
            .collect();
        if !procs.is_empty() {
            holder = format!("{}, held by {}", holder, procs.join(", "));
        }
    }
    Holder {
        port: PublishedPort {
            host_ip,
            host_port: l.port,
            container_port: 0,
            protocol,
        },
        holder,
    }
}

/// The error for a HOST_IP this host does not have, listing the ones it has.
fn not_local(spec: &PortSpec, ip: IpAddr, local: &[addr::AddressInfo]) -> Error {
    let mut have: Vec<String> = local
        .iter()
        .filter(|a| a.scope == AddressScope::Universe && a.address.is_ipv4() == ip.is_ipv4())
        .map(|a| a.address.to_string())
        .collect();
    have.dedup();
    let some = if have.is_empty() {
        String::new()
    } else {
        let shown: Vec<&str> = have.iter().take(6).map(String::as_str).collect();
        format!(" (this host has {})", shown.join(", "))
    };
    let host = spec.host.map(|h| h.to_string()).unwrap_or_default();
    Error::new(
        ErrorKind::InvalidInput,
        format!(
            "published port {}:{host}:{}/{}",
            host_ip_text(Some(ip)),
            spec.container,
            spec.protocol
        ),
        format!("{ip} is not an address of this host, so nothing would ever reach the port"),
        format!("publish on one of this host's addresses{some}, or leave HOST_IP out to publish on all of them"),
    )
}
