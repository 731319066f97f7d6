//! One container as the kernel holds it, beside what the store recorded (`ctnet
//! inspect`): everything seed 001's dozen observation commands show for it, read
//! through netlink from this process.
//!
//! ```text
//!  store: the container's endpoint rows ─────────────┐
//!                                                    ▼
//!  the container's namespace                  the host's namespace
//!  (inode now, against the rows')             ├─ each veth's host side: index, its peer
//!  ├─ links: name, index, MAC, MTU, state,    │  (IFLA_LINK), bridge, port state, counters
//!  │  addresses, counters (ip -s link)        ├─ the bridge's FDB entries for the
//!  ├─ routes (ip route)                       │  container's MAC (bridge fdb show)
//!  └─ neighbours (ip neigh)                   ├─ conntrack entries of its addresses, with
//!                                             │  their NAT (conntrack -L)
//!                                             ├─ its published ports: the map each is in,
//!                                             │  and whether the element is there
//!                                             └─ anti-spoofing: its port's element in
//!                                                table bridge ctnet and the frames
//!                                                dropped for it (the element's counter)
//!  differences: Engine::drift_of(): its endpoints and their networks only
//! ```
//!
//! Only reads. What the kernel lacks is reported in `differences` with the fix, never
//! hidden; a namespace that cannot be opened leaves the inside empty and says why.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::Serialize;

use ctnet_kernel::addr::{self, AddressInfo};
use ctnet_kernel::link_detail::{self, LinkDetail};
use ctnet_kernel::neigh::{self, FdbEntry};
use ctnet_kernel::route::{self, RouteInfo};
use ctnet_kernel::RtSocket;
use ctnet_nft::conntrack;

use crate::driver::bridge::{port_guard, port_rules};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::model::ports::PublishedPort;
use crate::model::{ContainerRef, Endpoint, MacAddr, Network, RowState};
use crate::ops::drift::Drift;
use crate::ops::endpoint::container_object;
use crate::state;

/// What `ctnet inspect` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// The container's label, as `ctnet ls` shows it.
    pub container: String,
    /// Its network namespace.
    pub namespace: Namespace,
    /// Every interface inside the namespace (loopback included).
    pub interfaces: Vec<Interface>,
    /// The namespace's routes, of both families, every table.
    pub routes: Vec<RouteEntry>,
    /// The namespace's neighbour entries.
    pub neighbours: Vec<Neighbour>,
    /// One per network the container is on.
    pub endpoints: Vec<EndpointView>,
    /// Where the kernel disagrees with the store, each with its fix.
    pub differences: Vec<Drift>,
}

/// The container's network namespace.
#[derive(Debug, Clone, Serialize)]
pub struct Namespace {
    /// Its path.
    pub path: PathBuf,
    /// Its inode now; None when it cannot be opened.
    pub inode: Option<u64>,
    /// The inode the store's rows were attached in.
    pub recorded_inode: Option<u64>,
    /// Why it cannot be looked into, when it cannot.
    pub error: Option<String>,
}

/// Packet and byte counters of an interface (`IFLA_STATS64`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
}

/// One interface inside the container.
#[derive(Debug, Clone, Serialize)]
pub struct Interface {
    pub name: String,
    pub index: u32,
    /// The driver (`veth`, `macvlan`), when the kernel names one.
    pub kind: Option<String>,
    pub mac: Option<String>,
    pub mtu: u32,
    /// Administratively up.
    pub up: bool,
    /// The kernel's operational state (`up`, `down`, `lowerlayerdown`, `unknown`).
    pub operstate: String,
    /// Its addresses, `ADDR/PREFIX`.
    pub addresses: Vec<String>,
    pub counters: Option<Counters>,
}

/// One route inside the container.
#[derive(Debug, Clone, Serialize)]
pub struct RouteEntry {
    /// `default`, or `NET/PREFIX`.
    pub destination: String,
    pub gateway: Option<IpAddr>,
    /// The interface it leaves by.
    pub device: Option<String>,
    pub metric: Option<u32>,
    pub table: u32,
    /// `unicast`, `local`, `broadcast`, ...
    pub kind: String,
}

/// One neighbour entry inside the container.
#[derive(Debug, Clone, Serialize)]
pub struct Neighbour {
    pub ip: IpAddr,
    pub mac: Option<String>,
    /// `REACHABLE`, `STALE`, `PERMANENT`, ...
    pub state: String,
    pub device: Option<String>,
}

/// The container on one network.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointView {
    pub network: String,
    /// The network's bridge (None for macvlan).
    pub bridge: Option<String>,
    /// The interface inside the container.
    pub ifname: String,
    pub ips: Vec<IpAddr>,
    pub mac: MacAddr,
    /// The row's state (`ready`, `pending`, `removing`).
    pub state: RowState,
    /// The veth's host side, as the kernel has it; None when it has none (macvlan) or
    /// the kernel lost it (see `differences`).
    pub host_side: Option<HostSide>,
    /// The bridge's forwarding entries for the container's MAC.
    pub fdb: Vec<FdbView>,
    /// Its published ports.
    pub ports: Vec<PortView>,
    /// Tracked connections from or to its addresses.
    pub connections: Vec<Connection>,
    /// Its labels on the network.
    pub labels: crate::model::policy::Labels,
    /// The network's policies that concern it: what each does to it.
    pub policies: Vec<PolicyRole>,
    /// Anti-spoofing of its veth; None when it has none (macvlan, `ipam none`).
    pub antispoof: Option<AntispoofView>,
}

/// A container port's anti-spoofing (table bridge ctnet).
#[derive(Debug, Clone, Serialize)]
pub struct AntispoofView {
    /// The bridge port its frames are checked on.
    pub port: String,
    /// The addresses its frames may come from, link-local included.
    pub allowed: Vec<IpAddr>,
    /// Frames dropped for it since it was attached (or its element last put back); None
    /// when its element is missing (`differences` then has the fix).
    pub dropped_frames: Option<u64>,
}

/// One policy as it concerns one container.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyRole {
    /// The policy's name.
    pub name: String,
    /// `allow` or `deny`.
    pub action: crate::model::policy::Action,
    /// It governs traffic to this container (its `to` selects it).
    pub selects: bool,
    /// Traffic from this container is among what it admits or denies.
    pub source: bool,
}

/// The policies of `ep`'s network that select it or name it as a source.
fn policy_roles(policies: &[crate::model::policy::Policy], ep: &Endpoint) -> Vec<PolicyRole> {
    let names = ep.policy_names();
    let member = crate::model::policy::Member {
        names: &names,
        labels: &ep.labels,
    };
    policies
        .iter()
        .filter(|p| p.network == ep.network)
        .map(|p| PolicyRole {
            name: p.name.to_string(),
            action: p.action,
            selects: p.to.matches(&member),
            source: p.from.iter().any(|s| match s {
                crate::model::policy::Source::Containers(sel) => sel.matches(&member),
                crate::model::policy::Source::Cidr(_) => false,
            }),
        })
        .filter(|r| r.selects || r.source)
        .collect()
}

/// A veth's host side.
#[derive(Debug, Clone, Serialize)]
pub struct HostSide {
    pub name: String,
    pub index: u32,
    /// The index of its peer (the container's interface), in the container's namespace.
    pub peer_index: Option<u32>,
    /// The bridge it is a port of.
    pub bridge: Option<String>,
    /// Its STP state as a bridge port (`forwarding`, ...).
    pub port_state: Option<String>,
    pub up: bool,
    pub operstate: String,
    pub counters: Option<Counters>,
}

/// One bridge forwarding entry.
#[derive(Debug, Clone, Serialize)]
pub struct FdbView {
    pub mac: String,
    /// The port it points at.
    pub port: Option<String>,
    pub vlan: Option<u16>,
    /// Learned from traffic, or the port's own address (`permanent`).
    pub learned: bool,
}

/// One published port.
#[derive(Debug, Clone, Serialize)]
pub struct PortView {
    /// `HOST_IP:PORT->PORT/PROTO`.
    pub published: String,
    pub port: PublishedPort,
    /// The container address it forwards to.
    pub to: IpAddr,
    /// The map of ctnet's table its element belongs in.
    pub map: &'static str,
    /// Whether that element is in the kernel.
    pub in_kernel: bool,
    /// Connections tracked through it now (conntrack entries DNATed by it), and the
    /// packets they carried both ways when the kernel counts them (`nf_conntrack_acct`).
    /// The map elements themselves have no counters.
    pub connections: usize,
    pub packets: Option<u64>,
}

/// The conntrack entries `port` DNATed to `to`: their number and, when counted, their
/// packets both ways.
fn port_usage(
    entries: &[conntrack::Entry],
    port: &PublishedPort,
    to: IpAddr,
) -> (usize, Option<u64>) {
    let through: Vec<&conntrack::Entry> = entries
        .iter()
        .filter(|e| {
            e.is_dnat()
                && e.original.protocol == port.protocol.number()
                && e.original.dst_port == Some(port.host_port)
                && port.host_ip.is_none_or(|ip| e.original.dst == ip)
                && e.reply.src == to
                && e.reply.src_port == Some(port.container_port)
        })
        .collect();
    let packets = through
        .iter()
        .map(|e| {
            let o = e.original_counters.as_ref()?.packets;
            let r = e.reply_counters.as_ref()?.packets;
            Some(o + r)
        })
        .sum::<Option<u64>>();
    (through.len(), packets.filter(|_| !through.is_empty()))
}

/// One direction of a tracked connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Flow {
    pub src: IpAddr,
    pub src_port: Option<u16>,
    pub dst: IpAddr,
    pub dst_port: Option<u16>,
}

/// A tracked connection (conntrack) involving the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Connection {
    /// `tcp`, `udp`, `icmp`, ...
    pub protocol: &'static str,
    /// TCP's state (`ESTABLISHED`, ...).
    pub state: Option<&'static str>,
    /// As the first packet had it.
    pub original: Flow,
    /// As the answers have it: where the first packet really went, after NAT.
    pub reply: Flow,
    /// The destination was translated (a published port: DNAT).
    pub dnat: bool,
    /// The source was translated (masquerade on the way out).
    pub snat: bool,
    /// Seconds until the entry expires.
    pub timeout: Option<u32>,
}

/// The interface with `index` among `links`, by name.
fn name_of(links: &[LinkDetail], index: Option<u32>) -> Option<String> {
    let index = index?;
    links
        .iter()
        .find(|l| l.index == index)
        .map(|l| l.name.clone())
}

fn mac_text(bytes: [u8; 6]) -> String {
    let [a, b, c, d, e, f] = bytes;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

fn counters(link: &LinkDetail) -> Option<Counters> {
    link.stats.as_ref().map(|s| Counters {
        rx_packets: s.rx_packets,
        tx_packets: s.tx_packets,
        rx_bytes: s.rx_bytes,
        tx_bytes: s.tx_bytes,
        rx_dropped: s.rx_dropped,
        tx_dropped: s.tx_dropped,
        rx_errors: s.rx_errors,
        tx_errors: s.tx_errors,
    })
}

/// The interfaces inside a namespace, with their addresses.
fn interfaces(links: &[LinkDetail], addresses: &[AddressInfo]) -> Vec<Interface> {
    links
        .iter()
        .map(|l| Interface {
            name: l.name.clone(),
            index: l.index,
            kind: l.kind.clone(),
            mac: l.mac.map(mac_text),
            mtu: l.mtu,
            up: l.up,
            operstate: l.operstate.clone(),
            addresses: addresses
                .iter()
                .filter(|a| a.index == l.index)
                .map(|a| format!("{}/{}", a.address, a.prefix_len))
                .collect(),
            counters: counters(l),
        })
        .collect()
}

/// The routes inside a namespace, in the words of `ip route`.
fn routes(listed: &[RouteInfo], links: &[LinkDetail]) -> Vec<RouteEntry> {
    listed
        .iter()
        .map(|r| RouteEntry {
            destination: if r.prefix_len == 0 {
                "default".to_string()
            } else {
                format!("{}/{}", r.destination, r.prefix_len)
            },
            gateway: r.gateway,
            device: name_of(links, r.oif),
            metric: r.priority,
            table: r.table,
            kind: format!("{:?}", r.kind).to_ascii_lowercase(),
        })
        .collect()
}

/// The bridge's forwarding entries for `mac` (the container's), on ports of `bridge`.
fn fdb_of(entries: &[FdbEntry], mac: MacAddr, bridge: u32, host: &[LinkDetail]) -> Vec<FdbView> {
    entries
        .iter()
        .filter(|e| e.mac == mac.bytes() && (e.master == Some(bridge) || e.ifindex == bridge))
        .map(|e| FdbView {
            mac: mac_text(e.mac),
            port: name_of(host, Some(e.ifindex)),
            vlan: e.vlan,
            learned: !e.permanent,
        })
        .collect()
}

fn flow(t: &conntrack::Tuple) -> Flow {
    Flow {
        src: t.src,
        src_port: t.src_port,
        dst: t.dst,
        dst_port: t.dst_port,
    }
}

/// The tracked connections that involve one of `ips`.
fn connections_of(entries: &[conntrack::Entry], ips: &[IpAddr]) -> Vec<Connection> {
    entries
        .iter()
        .filter(|e| ips.iter().any(|ip| e.involves(*ip)))
        .map(|e| Connection {
            protocol: e.protocol_name(),
            state: e.tcp_state_name(),
            original: flow(&e.original),
            reply: flow(&e.reply),
            dnat: e.is_dnat(),
            snat: e.is_snat(),
            timeout: e.timeout,
        })
        .collect()
}

/// What the host's namespace holds that inspect shows, read once for all endpoints.
struct HostView {
    links: Vec<LinkDetail>,
    fdb: Vec<FdbEntry>,
    conntrack: Vec<conntrack::Entry>,
}

/// What the container's namespace holds.
#[derive(Default)]
struct InsideView {
    links: Vec<LinkDetail>,
    addresses: Vec<AddressInfo>,
    routes: Vec<RouteInfo>,
    neighbours: Vec<neigh::Neighbour>,
}

fn read_inside() -> ctnet_kernel::Result<InsideView> {
    let mut sock = RtSocket::open()?;
    Ok(InsideView {
        links: link_detail::details(&mut sock)?,
        addresses: addr::list_all(&mut sock)?,
        routes: route::list_all(&mut sock)?,
        neighbours: neigh::neighbours(&mut sock)?,
    })
}

impl Engine {
    /// The container as the kernel holds it, beside its rows (see the module's drawing).
    /// An unknown container is an error; one whose kernel objects are gone is shown,
    /// with the differences.
    pub fn inspect(&mut self, container: &ContainerRef) -> Result<Inspection> {
        let rows = self.rows_for_inspect(container)?;
        let netns = self.open_container(container);
        let recorded_inode = rows.first().map(|e| e.netns_inode);
        let (namespace, inside) = match &netns {
            Ok(ns) => {
                let inode = ns.inode().ok();
                let read = ns.run(read_inside);
                let error = read.as_ref().err().map(|e| e.to_string());
                let namespace = Namespace {
                    path: ns.path().to_path_buf(),
                    inode,
                    recorded_inode,
                    error,
                };
                (namespace, read.unwrap_or_default())
            }
            Err(e) => (
                Namespace {
                    path: rows
                        .first()
                        .map(|r| r.netns_path.clone())
                        .unwrap_or_default(),
                    inode: None,
                    recorded_inode,
                    error: Some(e.to_string()),
                },
                InsideView::default(),
            ),
        };
        let host = self.read_host()?;
        let networks = state::list_networks(self.store.read())?;
        let mut endpoints = Vec::new();
        for ep in &rows {
            let net = networks.iter().find(|n| n.name == ep.network);
            endpoints.push(self.endpoint_view(ep, net, &host)?);
        }
        let differences = self.drift_of(&rows)?;
        Ok(Inspection {
            container: rows
                .first()
                .map_or_else(|| container.label(), |r| r.container.clone()),
            interfaces: interfaces(&inside.links, &inside.addresses),
            routes: routes(&inside.routes, &inside.links),
            neighbours: inside
                .neighbours
                .iter()
                .map(|n| Neighbour {
                    ip: n.ip,
                    mac: n.mac.map(mac_text),
                    state: n.state.as_str().to_string(),
                    device: name_of(&inside.links, Some(n.ifindex)),
                })
                .collect(),
            namespace,
            endpoints,
            differences,
        })
    }

    /// The container's rows, in the namespace it names now or by its label; an error
    /// when it has none.
    fn rows_for_inspect(&mut self, container: &ContainerRef) -> Result<Vec<Endpoint>> {
        let by_inode = self
            .open_container(container)
            .ok()
            .and_then(|ns| ns.inode().ok())
            .map(|inode| state::endpoints_in_netns(self.store.read(), inode))
            .transpose()?
            .unwrap_or_default();
        let rows = if by_inode.is_empty() {
            state::endpoints_of_container(self.store.read(), &container.label())?
        } else {
            by_inode
        };
        if rows.is_empty() {
            return Err(Error::not_found(
                container_object(&container.label()),
                "attach it to a network first (`ctnet attach NETWORK CONTAINER`); `ctnet ls` lists the containers ctnet knows",
            ));
        }
        Ok(rows)
    }

    fn read_host(&mut self) -> Result<HostView> {
        let kernel = |e| Error::kernel("host network namespace", e);
        let host = self.host()?;
        Ok(HostView {
            links: link_detail::details(host).map_err(kernel)?,
            fdb: neigh::fdb(host).map_err(kernel)?,
            conntrack: conntrack::dump().map_err(kernel)?,
        })
    }

    fn endpoint_view(
        &mut self,
        ep: &Endpoint,
        net: Option<&Network>,
        host: &HostView,
    ) -> Result<EndpointView> {
        let bridge = net
            .filter(|n| n.macvlan.is_none())
            .map(|n| n.bridge.clone());
        let bridge_link = bridge
            .as_ref()
            .and_then(|b| host.links.iter().find(|l| l.name == b.as_str()));
        let host_side = ep
            .host_ifname
            .as_ref()
            .and_then(|veth| host.links.iter().find(|l| l.name == veth.as_str()))
            .map(|l| HostSide {
                name: l.name.clone(),
                index: l.index,
                peer_index: l.peer_index,
                bridge: name_of(&host.links, l.master),
                port_state: l.bridge_port.as_ref().map(|p| p.state.as_str().to_string()),
                up: l.up,
                operstate: l.operstate.clone(),
                counters: counters(l),
            });
        let rules = port_rules(ep);
        let missing: Vec<(PublishedPort, IpAddr)> = self
            .firewall
            .missing_ports(&rules)
            .map_err(|e| Error::kernel("ctnet's nftables table", e))?
            .iter()
            .map(|r| (r.port, r.container_ip))
            .collect();
        let ports = rules
            .iter()
            .map(|r| {
                let (connections, packets) = port_usage(&host.conntrack, &r.port, r.container_ip);
                PortView {
                    published: r.port.to_string(),
                    port: r.port,
                    to: r.container_ip,
                    map: crate::datapath::nft::port_map_of(r),
                    in_kernel: !missing.contains(&(r.port, r.container_ip)),
                    connections,
                    packets,
                }
            })
            .collect();
        let antispoof = match port_guard(ep) {
            Some(guard) => Some(AntispoofView {
                dropped_frames: self
                    .firewall
                    .spoofed_frames(&guard.port)
                    .map_err(|e| Error::kernel("ctnet's nftables table bridge ctnet", e))?,
                port: guard.port.to_string(),
                allowed: guard.ips,
            }),
            None => None,
        };
        Ok(EndpointView {
            antispoof,
            network: ep.network.as_str().to_string(),
            bridge: bridge.map(|b| b.as_str().to_string()),
            ifname: ep.ifname.as_str().to_string(),
            ips: ep.ips.clone(),
            mac: ep.mac,
            state: ep.state,
            host_side,
            fdb: bridge_link.map_or_else(Vec::new, |b| {
                fdb_of(&host.fdb, ep.mac, b.index, &host.links)
            }),
            ports,
            connections: connections_of(&host.conntrack, &ep.ips),
            labels: ep.labels.clone(),
            policies: policy_roles(
                &crate::state::policies_of_network(self.store.read(), &ep.network)?,
                ep,
            ),
        })
    }
}

/// A network as the kernel holds it (`ctnet network inspect NAME`): its bridge, the
/// bridge's ports with whose they are, what the bridge learned, and the differences.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkKernel {
    /// The bridge with its addresses and counters; None when the kernel has no such
    /// link (or the network is macvlan: it has no bridge).
    pub bridge: Option<Interface>,
    /// Every port of the bridge.
    pub ports: Vec<BridgePortView>,
    /// Forwarding entries the bridge learned (not its own, not permanent).
    pub learned_macs: usize,
    /// Where the kernel disagrees with the store for this network, each with its fix.
    pub differences: Vec<Drift>,
}

/// One port of a network's bridge.
#[derive(Debug, Clone, Serialize)]
pub struct BridgePortView {
    /// The host-side interface.
    pub name: String,
    pub index: u32,
    /// `forwarding`, `blocking`, …
    pub state: Option<String>,
    /// The container whose veth it is, by the store; None for a port ctnet did not make.
    pub container: Option<String>,
    pub up: bool,
    pub counters: Option<Counters>,
}

impl Engine {
    /// The kernel's side of `network`: see [`NetworkKernel`]. Only reads.
    pub fn network_kernel(&mut self, network: &Network) -> Result<NetworkKernel> {
        let kernel = |e| Error::kernel("host network namespace", e);
        let host = self.host()?;
        let links = link_detail::details(host).map_err(kernel)?;
        let addresses = addr::list_all(host).map_err(kernel)?;
        let fdb = neigh::fdb(host).map_err(kernel)?;
        let rows: Vec<Endpoint> = state::list_endpoints(self.store.read())?
            .into_iter()
            .filter(|e| e.network == network.name)
            .collect();
        let bridge_link = links
            .iter()
            .find(|l| network.macvlan.is_none() && l.name == network.bridge.as_str());
        let bridge = bridge_link.and_then(|b| {
            interfaces(std::slice::from_ref(b), &addresses)
                .into_iter()
                .next()
        });
        let ports = bridge_link.map_or_else(Vec::new, |b| bridge_ports(&links, b.index, &rows));
        let learned_macs = bridge_link.map_or(0, |b| {
            fdb.iter()
                .filter(|f| f.master == Some(b.index) && !f.permanent && !f.is_self)
                .count()
        });
        let differences = self.drift_of_network(network)?;
        Ok(NetworkKernel {
            bridge,
            ports,
            learned_macs,
            differences,
        })
    }
}

/// The ports of bridge `bridge`, each with the container the store says it is for.
fn bridge_ports(links: &[LinkDetail], bridge: u32, rows: &[Endpoint]) -> Vec<BridgePortView> {
    let mut ports: Vec<BridgePortView> = links
        .iter()
        .filter(|l| l.master == Some(bridge))
        .map(|l| BridgePortView {
            name: l.name.clone(),
            index: l.index,
            state: l.bridge_port.as_ref().map(|p| p.state.as_str().to_string()),
            container: rows
                .iter()
                .find(|r| r.host_ifname.as_ref().is_some_and(|h| h.as_str() == l.name))
                .map(|r| r.container.clone()),
            up: l.up,
            counters: counters(l),
        })
        .collect();
    ports.sort_by(|a, b| a.container.cmp(&b.container).then(a.name.cmp(&b.name)));
    ports
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn sock(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    /// A wan client's connection to published port 8080, sent on to 10.61.0.2:80.
    fn published_connection() -> conntrack::Entry {
        conntrack::Entry {
            original: conntrack::Tuple::tcp(sock("203.0.113.2:40000"), sock("203.0.113.1:8080")),
            reply: conntrack::Tuple::tcp(sock("10.61.0.2:80"), sock("203.0.113.2:40000")),
            status: conntrack::IPS_DST_NAT,
            tcp_state: Some(conntrack::TCP_CONNTRACK_ESTABLISHED),
            timeout: Some(431_999),
            mark: 0,
            zone: 0,
            id: None,
            original_counters: None,
            reply_counters: None,
        }
    }

    #[test]
    fn a_ports_connections_are_those_it_dnated_to_its_container() {
        let entry = published_connection();
        let port = PublishedPort {
            host_ip: None,
            host_port: entry.original.dst_port.unwrap(),
            container_port: entry.reply.src_port.unwrap(),
            protocol: crate::model::ports::Protocol::Tcp,
        };
        let to = entry.reply.src;
        assert_eq!(port_usage(std::slice::from_ref(&entry), &port, to).0, 1);
        let other = PublishedPort {
            host_port: port.host_port + 1,
            ..port
        };
        assert_eq!(port_usage(&[entry], &other, to), (0, None));
    }

    #[test]
    fn a_containers_connections_are_the_ones_its_addresses_are_in_either_way() {
        let other = conntrack::Entry {
            original: conntrack::Tuple::udp(sock("10.61.0.9:5353"), sock("198.51.100.1:53")),
            reply: conntrack::Tuple::udp(sock("198.51.100.1:53"), sock("203.0.113.1:5353")),
            status: conntrack::IPS_SRC_NAT,
            tcp_state: None,
            ..published_connection()
        };
        let entries = [published_connection(), other];
        // The container's address is only in the reply of the published connection.
        let mine = connections_of(&entries, &["10.61.0.2".parse().unwrap()]);
        assert_eq!(mine.len(), 1);
        let c = &mine[0];
        assert_eq!(
            (c.protocol, c.state, c.dnat, c.snat),
            ("tcp", Some("ESTABLISHED"), true, false)
        );
        assert_eq!(c.reply.src, "10.61.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(c.original.dst_port, Some(8080));
        let masqueraded = connections_of(&entries, &["10.61.0.9".parse().unwrap()]);
        assert_eq!(masqueraded.len(), 1);
        assert!(masqueraded[0].snat && !masqueraded[0].dnat);
        assert!(connections_of(&entries, &["10.61.0.77".parse().unwrap()]).is_empty());
    }

    fn link(index: u32, name: &str) -> LinkDetail {
        LinkDetail {
            index,
            name: name.into(),
            kind: None,
            mac: None,
            mtu: 1500,
            up: true,
            operstate: "up".into(),
            carrier: Some(true),
            master: None,
            peer_index: None,
            peer_netnsid: None,
            stats: None,
            bridge_port: None,
        }
    }

    fn fdb_entry(ifindex: u32, master: Option<u32>, mac: [u8; 6], permanent: bool) -> FdbEntry {
        FdbEntry {
            ifindex,
            master,
            mac,
            vlan: None,
            permanent,
            is_self: false,
            extern_learn: false,
            remote: None,
        }
    }

    #[test]
    fn the_fdb_view_keeps_the_containers_mac_on_its_own_bridge_only() {
        let mac = MacAddr::new([2, 0x42, 10, 61, 0, 2]).unwrap();
        let host = [
            link(3, "br-a"),
            link(4, "veth1"),
            link(7, "br-b"),
            link(8, "veth2"),
        ];
        let entries = [
            fdb_entry(4, Some(3), mac.bytes(), false),
            // The same MAC seen on another bridge (another network's container).
            fdb_entry(8, Some(7), mac.bytes(), false),
            // The port's own address, on the right bridge, not the container's.
            fdb_entry(4, Some(3), [0x9e, 1, 2, 3, 4, 5], true),
        ];
        let view = fdb_of(&entries, mac, 3, &host);
        assert_eq!(view.len(), 1, "{view:?}");
        assert_eq!(view[0].port.as_deref(), Some("veth1"));
        assert!(view[0].learned);
        assert_eq!(view[0].mac, "02:42:0a:3d:00:02");
    }

    #[test]
    fn routes_read_as_ip_route_writes_them() {
        use ctnet_kernel::Family;
        let links = [link(2, "eth0")];
        let listed = [
            RouteInfo {
                family: Family::V4,
                destination: "0.0.0.0".parse().unwrap(),
                prefix_len: 0,
                gateway: Some("10.61.0.1".parse().unwrap()),
                oif: Some(2),
                table: 254,
                kind: ctnet_kernel::route::RouteType::Unicast,
                priority: None,
                next_hops: Vec::new(),
                onlink: false,
            },
            RouteInfo {
                family: Family::V4,
                destination: "10.61.0.0".parse().unwrap(),
                prefix_len: 24,
                gateway: None,
                oif: Some(9),
                table: 254,
                kind: ctnet_kernel::route::RouteType::Unicast,
                priority: Some(100),
                next_hops: Vec::new(),
                onlink: false,
            },
        ];
        let view = routes(&listed, &links);
        assert_eq!(view[0].destination, "default");
        assert_eq!(view[0].device.as_deref(), Some("eth0"));
        assert_eq!(view[0].kind, "unicast");
        assert_eq!(view[1].destination, "10.61.0.0/24");
        assert_eq!(view[1].device, None, "an index not among the links");
        assert_eq!(view[1].metric, Some(100));
    }
}
