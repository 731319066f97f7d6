//! The whole host's container networking as one picture (`ctnet topology`): every
//! network, bridge, veth, VXLAN device, container namespace and published port, read
//! from the kernel and the store and joined so that each object appears exactly once.
//!
//! ```text
//!  store: networks, endpoints (and their published ports)
//!     │                                    the kernel
//!     │  host namespace ──────────────────┬─ bridges (kind bridge) with their addresses
//!     │                                   ├─ veths' host sides: master, peer index
//!     ▼                                   └─ VXLAN devices, their FDB's remote peers
//!  assemble() ◄── each namespace: the netns dir's and the endpoints' (by inode),
//!     │            its links and addresses
//!     ▼
//!  Topology: networks, bridges, veths, vxlans, namespaces (interfaces inside), ports
//! ```
//!
//! Joins are by name (a bridge is a network's by its `bridge` column, a veth an
//! endpoint's by its `host_ifname`) and by namespace inode (a container on two networks
//! is one namespace with two interfaces). Whatever only one side has is kept and marked
//! ([`Presence`]): a store object the kernel lacks is `missing`, a device ctnet would
//! have made that the store cannot explain is `unrecorded`, anyone else's is `foreign`.
//!
//! Only reads. [`assemble`] is a pure function of what was read, tested below with
//! made-up inputs; [`Engine::topology`] only does the reading.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;

use serde::Serialize;

use ctnet_kernel::addr::{self, AddressInfo};
use ctnet_kernel::link_detail::{self, LinkDetail};
use ctnet_kernel::neigh::{self, FdbEntry};
use ctnet_kernel::{Netns, RtSocket};

use crate::datapath::nft::PortRules;
use crate::driver::bridge::port_rules;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::model::{Endpoint, Network, RowState};
use crate::ops::lost_state::is_ctnet_bridge_name;
use crate::state;

/// What `ctnet topology` shows. Every list is sorted, so two reads of an unchanged
/// host give the same value.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Topology {
    /// The store's networks, by name.
    pub networks: Vec<NetworkNode>,
    /// The host namespace's bridges (every one, ctnet's or not), and the store's
    /// bridges the kernel lacks.
    pub bridges: Vec<BridgeNode>,
    /// The host namespace's veths (ctnet's host sides and any other), and the store's
    /// host sides the kernel lacks.
    pub veths: Vec<VethNode>,
    /// The host namespace's VXLAN devices.
    pub vxlans: Vec<VxlanNode>,
    /// Network namespaces: every named one in the netns dir and every one an endpoint
    /// is in, each once.
    pub namespaces: Vec<NamespaceNode>,
    /// Published ports, with whether their map element is in the kernel.
    pub ports: Vec<PortNode>,
}

/// Whether an object is in the store, the kernel, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    /// In the store and in the kernel.
    Present,
    /// In the store, not in the kernel.
    Missing,
    /// In the kernel with a name (or on a bridge) ctnet makes, not in the store.
    Unrecorded,
    /// In the kernel, not ctnet's (another program's device, a namespace nothing is
    /// attached in, a container's loopback).
    Foreign,
}

/// A network, as the store has it.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkNode {
    pub name: String,
    /// `bridge` or `macvlan`.
    pub driver: &'static str,
    pub subnets: Vec<SubnetNode>,
    /// Its bridge (None for macvlan).
    pub bridge: Option<String>,
    /// The host interface a macvlan network's containers sit on.
    pub parent: Option<String>,
    pub internal: bool,
    pub state: RowState,
}

/// One subnet of a network with its gateway.
#[derive(Debug, Clone, Serialize)]
pub struct SubnetNode {
    pub subnet: String,
    pub gateway: IpAddr,
}

/// A bridge in the host namespace.
#[derive(Debug, Clone, Serialize)]
pub struct BridgeNode {
    pub name: String,
    /// The network whose bridge it is.
    pub network: Option<String>,
    /// None when missing.
    pub index: Option<u32>,
    pub mac: Option<String>,
    pub up: bool,
    /// Its addresses, `ADDR/PREFIX` (the gateways).
    pub addresses: Vec<String>,
    pub presence: Presence,
}

/// A veth's host side.
#[derive(Debug, Clone, Serialize)]
pub struct VethNode {
    pub name: String,
    /// None when missing.
    pub index: Option<u32>,
    /// The bridge it is a port of, as the kernel has it (as the store has it when missing).
    pub bridge: Option<String>,
    /// The network of its endpoint.
    pub network: Option<String>,
    /// The other end, as the store has it.
    pub peer: Option<PeerRef>,
    /// The other end's index in its namespace (`IFLA_LINK`).
    pub peer_index: Option<u32>,
    pub up: bool,
    pub presence: Presence,
}

/// The container end of a veth pair.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct PeerRef {
    /// The namespace's name, as in [`NamespaceNode::name`].
    pub namespace: String,
    pub ifname: String,
}

/// A VXLAN device in the host namespace.
#[derive(Debug, Clone, Serialize)]
pub struct VxlanNode {
    pub name: String,
    pub index: u32,
    /// The bridge it is a port of.
    pub bridge: Option<String>,
    /// The remote ends its forwarding database sends to (`bridge fdb show dev`'s `dst`).
    pub remotes: Vec<IpAddr>,
    pub up: bool,
}

/// A network namespace.
#[derive(Debug, Clone, Serialize)]
pub struct NamespaceNode {
    /// The container's label (a named namespace's name), else the path.
    pub name: String,
    pub path: PathBuf,
    /// Its inode now (the recorded one when it cannot be opened).
    pub inode: Option<u64>,
    pub interfaces: Vec<InterfaceNode>,
    /// `present` when ctnet attached it, `missing` when the store's namespace is gone,
    /// `foreign` when nothing is attached in it.
    pub presence: Presence,
    /// Why it could not be looked into.
    pub error: Option<String>,
}

/// An interface inside a namespace.
#[derive(Debug, Clone, Serialize)]
pub struct InterfaceNode {
    pub name: String,
    /// None when missing.
    pub index: Option<u32>,
    /// `veth`, `macvlan`, ... (None for loopback).
    pub kind: Option<String>,
    pub mac: Option<String>,
    pub up: bool,
    pub addresses: Vec<String>,
    /// The network of its endpoint.
    pub network: Option<String>,
    /// Its veth's host side, as the store has it.
    pub host_side: Option<String>,
    pub presence: Presence,
}

/// A published port.
#[derive(Debug, Clone, Serialize)]
pub struct PortNode {
    /// `HOST_IP:PORT->PORT/PROTO`.
    pub published: String,
    /// The namespace, as in [`NamespaceNode::name`].
    pub container: String,
    pub network: String,
    /// The container address it forwards to.
    pub to: IpAddr,
    /// The map of ctnet's table its element belongs in.
    pub map: &'static str,
    pub in_kernel: bool,
}

/// What was read of one namespace: the input of [`assemble`].
#[derive(Debug, Clone, Default)]
pub struct NamespaceRead {
    /// Its name in the netns dir, if it is there.
    pub name: Option<String>,
    pub path: PathBuf,
    /// None when it could not be opened.
    pub inode: Option<u64>,
    pub links: Vec<LinkDetail>,
    pub addresses: Vec<AddressInfo>,
    pub error: Option<String>,
}

/// What was read of the host namespace: the input of [`assemble`].
#[derive(Debug, Clone, Default)]
pub struct HostRead {
    pub links: Vec<LinkDetail>,
    pub addresses: Vec<AddressInfo>,
    /// The forwarding entries (read only when a VXLAN device exists).
    pub fdb: Vec<FdbEntry>,
}

fn mac_text(bytes: [u8; 6]) -> String {
    let [a, b, c, d, e, f] = bytes;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

fn addresses_of(addresses: &[AddressInfo], index: u32) -> Vec<String> {
    let mut out: Vec<String> = addresses
        .iter()
        .filter(|a| a.index == index)
        .map(|a| format!("{}/{}", a.address, a.prefix_len))
        .collect();
    out.sort();
    out
}

/// An endpoint's addresses as the kernel would list them, `ADDR/PREFIX` with its
/// network's prefix (the bare address when the store has no subnet for it).
fn recorded_addresses(ep: &Endpoint, networks: &[Network]) -> Vec<String> {
    let net = networks.iter().find(|n| n.name == ep.network);
    ep.ips
        .iter()
        .map(|ip| {
            net.and_then(|n| n.subnets.iter().find(|s| s.subnet.net().contains(ip)))
                .map_or_else(
                    || ip.to_string(),
                    |s| format!("{ip}/{}", s.subnet.net().prefix_len()),
                )
        })
        .collect()
}

fn kind_is(link: &LinkDetail, kind: &str) -> bool {
    link.kind.as_deref() == Some(kind)
}

/// Joins the store with what was read. `missing_ports` are the published ports whose
/// map element the kernel lacks.
pub fn assemble(
    networks: &[Network],
    endpoints: &[Endpoint],
    host: &HostRead,
    namespaces: &[NamespaceRead],
    missing_ports: &[PortRules],
) -> Topology {
    let link_name = |index: Option<u32>| {
        index.and_then(|i| {
            host.links
                .iter()
                .find(|l| l.index == i)
                .map(|l| l.name.clone())
        })
    };

    // Namespaces first: the endpoints' (grouped by the inode they were attached in),
    // then the netns dir's that no endpoint is in.
    let mut groups: BTreeMap<u64, Vec<&Endpoint>> = BTreeMap::new();
    for ep in endpoints {
        groups.entry(ep.netns_inode).or_default().push(ep);
    }
    let mut used = vec![false; namespaces.len()];
    let mut nodes = Vec::new();
    // The namespace name each endpoint's rows are shown under.
    let mut ns_name_of: BTreeMap<u64, String> = BTreeMap::new();
    for (inode, rows) in &groups {
        let first = rows[0];
        let found = namespaces
            .iter()
            .position(|r| r.inode == Some(*inode))
            .or_else(|| {
                namespaces
                    .iter()
                    .position(|r| r.inode.is_none() && r.path == first.netns_path)
            });
        let read = found.map(|i| {
            used[i] = true;
            &namespaces[i]
        });
        let alive = read.is_some_and(|r| r.inode.is_some());
        let name = first.container.clone();
        ns_name_of.insert(*inode, name.clone());
        let mut interfaces = Vec::new();
        if let Some(r) = read.filter(|_| alive) {
            for l in &r.links {
                let ep = rows.iter().find(|e| e.ifname.as_str() == l.name);
                interfaces.push(InterfaceNode {
                    name: l.name.clone(),
                    index: Some(l.index),
                    kind: l.kind.clone(),
                    mac: l.mac.map(mac_text),
                    up: l.up,
                    addresses: addresses_of(&r.addresses, l.index),
                    network: ep.map(|e| e.network.as_str().to_string()),
                    host_side: ep.and_then(|e| e.host_ifname.as_ref().map(|h| h.to_string())),
                    presence: if ep.is_some() {
                        Presence::Present
                    } else {
                        Presence::Foreign
                    },
                });
            }
        }
        for ep in rows {
            if !interfaces.iter().any(|i| i.name == ep.ifname.as_str()) {
                interfaces.push(InterfaceNode {
                    name: ep.ifname.to_string(),
                    index: None,
                    kind: None,
                    mac: Some(ep.mac.to_string()),
                    up: false,
                    addresses: recorded_addresses(ep, networks),
                    network: Some(ep.network.as_str().to_string()),
                    host_side: ep.host_ifname.as_ref().map(|h| h.to_string()),
                    presence: Presence::Missing,
                });
            }
        }
        interfaces.sort_by(|a, b| a.name.cmp(&b.name));
        nodes.push(NamespaceNode {
            name,
            path: read.map_or_else(|| first.netns_path.clone(), |r| r.path.clone()),
            inode: Some(*inode),
            interfaces,
            presence: if alive {
                Presence::Present
            } else {
                Presence::Missing
            },
            error: if alive {
                None
            } else {
                Some(
                    read.and_then(|r| r.error.clone())
                        .unwrap_or_else(|| "the namespace is gone".to_string()),
                )
            },
        });
    }
    for (r, _) in namespaces.iter().zip(&used).filter(|(_, used)| !**used) {
        let mut interfaces: Vec<InterfaceNode> = r
            .links
            .iter()
            .map(|l| InterfaceNode {
                name: l.name.clone(),
                index: Some(l.index),
                kind: l.kind.clone(),
                mac: l.mac.map(mac_text),
                up: l.up,
                addresses: addresses_of(&r.addresses, l.index),
                network: None,
                host_side: None,
                presence: Presence::Foreign,
            })
            .collect();
        interfaces.sort_by(|a, b| a.name.cmp(&b.name));
        nodes.push(NamespaceNode {
            name: r
                .name
                .clone()
                .unwrap_or_else(|| r.path.display().to_string()),
            path: r.path.clone(),
            inode: r.inode,
            interfaces,
            presence: Presence::Foreign,
            error: r.error.clone(),
        });
    }
    nodes.sort_by(|a, b| a.name.cmp(&b.name).then(a.inode.cmp(&b.inode)));

    // Bridges: the kernel's, then the store's the kernel lacks.
    let bridge_networks: Vec<&Network> =
        networks.iter().filter(|n| n.driver.is_bridged()).collect();
    let mut bridges: Vec<BridgeNode> = host
        .links
        .iter()
        .filter(|l| kind_is(l, "bridge"))
        .map(|l| {
            let net = bridge_networks.iter().find(|n| n.bridge.as_str() == l.name);
            BridgeNode {
                name: l.name.clone(),
                network: net.map(|n| n.name.as_str().to_string()),
                index: Some(l.index),
                mac: l.mac.map(mac_text),
                up: l.up,
                addresses: addresses_of(&host.addresses, l.index),
                presence: match net {
                    Some(_) => Presence::Present,
                    None if is_ctnet_bridge_name(&l.name) => Presence::Unrecorded,
                    None => Presence::Foreign,
                },
            }
        })
        .collect();
    for n in &bridge_networks {
        if !bridges.iter().any(|b| b.name == n.bridge.as_str()) {
            bridges.push(BridgeNode {
                name: n.bridge.to_string(),
                network: Some(n.name.as_str().to_string()),
                index: None,
                mac: None,
                up: false,
                addresses: n
                    .subnets
                    .iter()
                    .map(|s| format!("{}/{}", s.gateway, s.subnet.net().prefix_len()))
                    .collect(),
                presence: Presence::Missing,
            });
        }
    }
    bridges.sort_by(|a, b| a.name.cmp(&b.name));
    let ctnet_bridge = |name: &str| {
        bridges
            .iter()
            .any(|b| b.name == name && b.presence != Presence::Foreign)
    };

    // Veths' host sides: the kernel's, then the store's the kernel lacks.
    let peer_of = |ep: &Endpoint| {
        ns_name_of.get(&ep.netns_inode).map(|ns| PeerRef {
            namespace: ns.clone(),
            ifname: ep.ifname.to_string(),
        })
    };
    let mut veths: Vec<VethNode> = host
        .links
        .iter()
        .filter(|l| kind_is(l, "veth"))
        .map(|l| {
            let ep = endpoints
                .iter()
                .find(|e| e.host_ifname.as_ref().is_some_and(|h| h.as_str() == l.name));
            let bridge = link_name(l.master);
            let presence = match ep {
                Some(_) => Presence::Present,
                None if bridge.as_deref().is_some_and(&ctnet_bridge) => Presence::Unrecorded,
                None => Presence::Foreign,
            };
            VethNode {
                name: l.name.clone(),
                index: Some(l.index),
                bridge,
                network: ep.map(|e| e.network.as_str().to_string()),
                peer: ep.and_then(peer_of),
                peer_index: l.peer_index,
                up: l.up,
                presence,
            }
        })
        .collect();
    for ep in endpoints {
        let Some(host_side) = &ep.host_ifname else {
            continue;
        };
        if veths.iter().any(|v| v.name == host_side.as_str()) {
            continue;
        }
        veths.push(VethNode {
            name: host_side.to_string(),
            index: None,
            bridge: networks
                .iter()
                .find(|n| n.name == ep.network)
                .map(|n| n.bridge.to_string()),
            network: Some(ep.network.as_str().to_string()),
            peer: peer_of(ep),
            peer_index: None,
            up: false,
            presence: Presence::Missing,
        });
    }
    // By the container end, which is stable (the host side's name is random).
    veths.sort_by(|a, b| {
        (a.peer.is_none(), &a.peer, &a.name).cmp(&(b.peer.is_none(), &b.peer, &b.name))
    });

    let vxlans = host
        .links
        .iter()
        .filter(|l| kind_is(l, "vxlan"))
        .map(|l| VxlanNode {
            name: l.name.clone(),
            index: l.index,
            bridge: link_name(l.master),
            remotes: host
                .fdb
                .iter()
                .filter(|e| e.ifindex == l.index)
                .filter_map(|e| e.remote)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            up: l.up,
        })
        .collect::<Vec<_>>();

    let mut ports: Vec<PortNode> = endpoints
        .iter()
        .flat_map(|ep| {
            let container = ns_name_of
                .get(&ep.netns_inode)
                .cloned()
                .unwrap_or_else(|| ep.container.clone());
            port_rules(ep).into_iter().map(move |r| PortNode {
                published: r.port.to_string(),
                container: container.clone(),
                network: ep.network.as_str().to_string(),
                to: r.container_ip,
                map: crate::datapath::nft::port_map_of(&r),
                in_kernel: !missing_ports
                    .iter()
                    .any(|m| m.port == r.port && m.container_ip == r.container_ip),
            })
        })
        .collect();
    ports.sort_by(|a, b| {
        (&a.container, &a.network, &a.published, a.to).cmp(&(
            &b.container,
            &b.network,
            &b.published,
            b.to,
        ))
    });

    let mut networks: Vec<NetworkNode> = networks
        .iter()
        .map(|n| NetworkNode {
            name: n.name.as_str().to_string(),
            driver: n.driver.as_str(),
            subnets: n
                .subnets
                .iter()
                .map(|s| SubnetNode {
                    subnet: s.subnet.to_string(),
                    gateway: s.gateway,
                })
                .collect(),
            bridge: n.driver.is_bridged().then(|| n.bridge.to_string()),
            parent: n.macvlan.as_ref().map(|m| m.parent.to_string()),
            internal: n.internal,
            state: n.state,
        })
        .collect();
    networks.sort_by(|a, b| a.name.cmp(&b.name));

    Topology {
        networks,
        bridges,
        veths,
        vxlans,
        namespaces: nodes,
        ports,
    }
}

fn read_links() -> ctnet_kernel::Result<(Vec<LinkDetail>, Vec<AddressInfo>)> {
    let mut sock = RtSocket::open()?;
    Ok((link_detail::details(&mut sock)?, addr::list_all(&mut sock)?))
}

/// Opens and reads the namespace at `path`.
fn read_namespace(name: Option<String>, path: PathBuf) -> NamespaceRead {
    let opened = Netns::open(&path).and_then(|ns| {
        let inode = ns.inode()?;
        let (links, addresses) = ns.run(read_links)?;
        Ok((inode, links, addresses))
    });
    match opened {
        Ok((inode, links, addresses)) => NamespaceRead {
            name,
            path,
            inode: Some(inode),
            links,
            addresses,
            error: None,
        },
        Err(e) => NamespaceRead {
            name,
            path,
            error: Some(e.to_string()),
            ..NamespaceRead::default()
        },
    }
}

impl Engine {
    /// The host's container networking as the store and the kernel hold it (see the
    /// module's drawing). Reads only.
    pub fn topology(&mut self) -> Result<Topology> {
        let networks = state::list_networks(self.store.read())?;
        let endpoints = state::list_endpoints(self.store.read())?;
        let kernel = |e| Error::kernel("host network namespace", e);
        let host_sock = self.host()?;
        let links = link_detail::details(host_sock).map_err(kernel)?;
        let addresses = addr::list_all(host_sock).map_err(kernel)?;
        let fdb = if links.iter().any(|l| kind_is(l, "vxlan")) {
            neigh::fdb(host_sock).map_err(kernel)?
        } else {
            Vec::new()
        };
        let host = HostRead {
            links,
            addresses,
            fdb,
        };

        let dir = self.netns_dir.path().to_path_buf();
        let names = self
            .netns_dir
            .list()
            .map_err(|e| Error::kernel(format!("netns dir {}", dir.display()), e))?;
        let mut namespaces: Vec<NamespaceRead> = names
            .into_iter()
            .map(|n| {
                let path = dir.join(&n);
                read_namespace(Some(n), path)
            })
            .collect();
        // The endpoints' namespaces outside the netns dir (`--pid`, `--netns-path`,
        // runtimes' own), each read once.
        let mut tried = BTreeSet::new();
        for ep in &endpoints {
            if namespaces.iter().any(|r| r.inode == Some(ep.netns_inode))
                || !tried.insert(ep.netns_path.clone())
            {
                continue;
            }
            let read = read_namespace(None, ep.netns_path.clone());
            // A path now holding another namespace (a recycled pid) is not the
            // endpoint's; it is shown only when it is the endpoint's.
            if read.inode.is_none_or(|i| i == ep.netns_inode) {
                namespaces.push(read);
            }
        }

        let rules: Vec<PortRules> = endpoints.iter().flat_map(port_rules).collect();
        let missing = if rules.is_empty() {
            Vec::new()
        } else {
            self.firewall
                .missing_ports(&rules)
                .map_err(|e| Error::kernel("ctnet's nftables table", e))?
        };
        Ok(assemble(
            &networks,
            &endpoints,
            &host,
            &namespaces,
            &missing,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::bridge::tests::network;
    use crate::model::{MacAddr, NetworkName};
    use crate::{Protocol, PublishedPort};
    use ctnet_kernel::IfName;

    fn link(index: u32, name: &str, kind: Option<&str>, master: Option<u32>) -> LinkDetail {
        LinkDetail {
            index,
            name: name.into(),
            kind: kind.map(String::from),
            mac: None,
            mtu: 1500,
            up: true,
            operstate: "up".into(),
            carrier: Some(true),
            master,
            peer_index: None,
            peer_netnsid: None,
            stats: None,
            bridge_port: None,
        }
    }

    fn address(index: u32, text: &str) -> AddressInfo {
        let (ip, prefix) = text.split_once('/').unwrap();
        AddressInfo {
            index,
            address: ip.parse().unwrap(),
            prefix_len: prefix.parse().unwrap(),
            scope: addr::AddressScope::Universe,
            flags: addr::AddressFlags::empty(),
        }
    }

    fn net(name: &str, bridge: &str, subnet: &str, gateway: &str) -> Network {
        let mut n = network(&[(subnet, gateway)]);
        n.name = NetworkName::new(name).unwrap();
        n.bridge = IfName::new(bridge).unwrap();
        n.state = RowState::Ready;
        n
    }

    fn endpoint(
        network: &str,
        container: &str,
        inode: u64,
        ifname: &str,
        veth: &str,
        ip: &str,
    ) -> Endpoint {
        let ip: IpAddr = ip.parse().unwrap();
        Endpoint {
            id: 1,
            network: NetworkName::new(network).unwrap(),
            container: container.into(),
            netns_path: PathBuf::from(format!("/run/netns/{container}")),
            netns_inode: inode,
            ifname: IfName::new(ifname).unwrap(),
            host_ifname: Some(IfName::new(veth).unwrap()),
            mac: MacAddr::for_address(ip),
            ips: vec![ip],
            default_routes: Vec::new(),
            netns_owned: false,
            state: RowState::Ready,
            ports: Vec::new(),
            name: None,
            aliases: Vec::new(),
            labels: Default::default(),
            identity: None,
        }
    }

    fn inside(name: &str, inode: u64, links: &[(u32, &str, &str)]) -> NamespaceRead {
        NamespaceRead {
            name: Some(name.into()),
            path: PathBuf::from(format!("/run/netns/{name}")),
            inode: Some(inode),
            links: links
                .iter()
                .map(|(i, n, _)| link(*i, n, (*n != "lo").then_some("veth"), None))
                .collect(),
            addresses: links.iter().map(|(i, _, a)| address(*i, a)).collect(),
            error: None,
        }
    }

    /// Two networks; `c1` on both, `c2` on blue; `wan` a namespace nothing is in.
    fn world() -> (Vec<Network>, Vec<Endpoint>, HostRead, Vec<NamespaceRead>) {
        let networks = vec![
            net("red", "br-red", "10.2.0.0/24", "10.2.0.1"),
            net("blue", "br-blue", "10.1.0.0/24", "10.1.0.1"),
        ];
        let mut c1_blue = endpoint("blue", "c1", 11, "eth0", "vethc1b0000", "10.1.0.2");
        c1_blue.ports = vec![PublishedPort {
            host_ip: None,
            host_port: 8080,
            container_port: 80,
            protocol: Protocol::Tcp,
        }];
        let endpoints = vec![
            c1_blue,
            endpoint("red", "c1", 11, "eth1", "vethc1r0000", "10.2.0.2"),
            endpoint("blue", "c2", 12, "eth0", "vethc2b0000", "10.1.0.3"),
        ];
        let host = HostRead {
            links: vec![
                link(1, "lo", None, None),
                link(2, "br-blue", Some("bridge"), None),
                link(3, "br-red", Some("bridge"), None),
                link(4, "vethc1b0000", Some("veth"), Some(2)),
                link(5, "vethc1r0000", Some("veth"), Some(3)),
                link(6, "vethc2b0000", Some("veth"), Some(2)),
                link(7, "uplink", Some("veth"), None),
            ],
            addresses: vec![address(2, "10.1.0.1/24"), address(3, "10.2.0.1/24")],
            fdb: Vec::new(),
        };
        let namespaces = vec![
            inside(
                "c1",
                11,
                &[
                    (1, "lo", "127.0.0.1/8"),
                    (2, "eth0", "10.1.0.2/24"),
                    (3, "eth1", "10.2.0.2/24"),
                ],
            ),
            inside(
                "c2",
                12,
                &[(1, "lo", "127.0.0.1/8"), (2, "eth0", "10.1.0.3/24")],
            ),
            inside(
                "wan",
                13,
                &[(1, "lo", "127.0.0.1/8"), (2, "eth0", "203.0.113.2/24")],
            ),
        ];
        (networks, endpoints, host, namespaces)
    }

    #[test]
    fn every_object_appears_once_and_a_container_on_two_networks_is_one_namespace() {
        let (networks, endpoints, host, namespaces) = world();
        let t = assemble(&networks, &endpoints, &host, &namespaces, &[]);
        let names = |v: Vec<&str>| v.join(" ");
        assert_eq!(
            names(t.networks.iter().map(|n| n.name.as_str()).collect()),
            "blue red"
        );
        assert_eq!(
            names(t.bridges.iter().map(|b| b.name.as_str()).collect()),
            "br-blue br-red"
        );
        assert_eq!(t.bridges[0].network.as_deref(), Some("blue"));
        assert_eq!(t.bridges[0].addresses, ["10.1.0.1/24"]);
        // Veths ordered by their container end; the foreign uplink last.
        assert_eq!(
            names(t.veths.iter().map(|v| v.name.as_str()).collect()),
            "vethc1b0000 vethc1r0000 vethc2b0000 uplink"
        );
        assert_eq!(t.veths[3].presence, Presence::Foreign);
        assert_eq!(t.veths[1].bridge.as_deref(), Some("br-red"));
        assert_eq!(
            t.veths[1].peer,
            Some(PeerRef {
                namespace: "c1".into(),
                ifname: "eth1".into()
            })
        );
        assert_eq!(
            names(t.namespaces.iter().map(|n| n.name.as_str()).collect()),
            "c1 c2 wan"
        );
        let c1 = &t.namespaces[0];
        assert_eq!(c1.presence, Presence::Present);
        assert_eq!(
            names(c1.interfaces.iter().map(|i| i.name.as_str()).collect()),
            "eth0 eth1 lo"
        );
        assert_eq!(c1.interfaces[1].network.as_deref(), Some("red"));
        assert_eq!(c1.interfaces[1].addresses, ["10.2.0.2/24"]);
        assert_eq!(c1.interfaces[2].presence, Presence::Foreign, "loopback");
        assert_eq!(
            t.namespaces[2].presence,
            Presence::Foreign,
            "nothing attached"
        );
        assert_eq!(t.ports.len(), 1);
        assert_eq!(t.ports[0].published, "0.0.0.0:8080->80/tcp");
        assert_eq!(
            (t.ports[0].container.as_str(), t.ports[0].in_kernel),
            ("c1", true)
        );
    }

    #[test]
    fn what_only_one_side_has_is_marked_not_dropped() {
        let (networks, endpoints, mut host, mut namespaces) = world();
        // The kernel lost red's bridge and c2's veth; c2's namespace is gone; a
        // ctnet-named bridge and a veth on it are unknown to the store.
        host.links
            .retain(|l| l.name != "br-red" && l.name != "vethc2b0000");
        host.links
            .push(link(8, "br-0123456789ab", Some("bridge"), None));
        host.links
            .push(link(9, "vethstray00", Some("veth"), Some(8)));
        namespaces.retain(|n| n.name.as_deref() != Some("c2"));
        let missing = port_rules(&endpoints[0]);
        let t = assemble(&networks, &endpoints, &host, &namespaces, &missing);
        let bridge = |name: &str| t.bridges.iter().find(|b| b.name == name).unwrap();
        assert_eq!(bridge("br-red").presence, Presence::Missing);
        assert_eq!(
            bridge("br-red").addresses,
            ["10.2.0.1/24"],
            "the store's gateway"
        );
        assert_eq!(bridge("br-0123456789ab").presence, Presence::Unrecorded);
        let veth = |name: &str| t.veths.iter().find(|v| v.name == name).unwrap();
        assert_eq!(veth("vethc2b0000").presence, Presence::Missing);
        assert_eq!(veth("vethc2b0000").bridge.as_deref(), Some("br-blue"));
        assert_eq!(veth("vethstray00").presence, Presence::Unrecorded);
        let c2 = t.namespaces.iter().find(|n| n.name == "c2").unwrap();
        assert_eq!(c2.presence, Presence::Missing);
        assert_eq!(c2.interfaces.len(), 1);
        assert_eq!(c2.interfaces[0].presence, Presence::Missing);
        assert_eq!(c2.interfaces[0].addresses, ["10.1.0.3/24"]);
        assert!(!t.ports[0].in_kernel);
        // Each object still once.
        assert_eq!(t.bridges.len(), 3);
        assert_eq!(t.veths.len(), 5);
    }

    #[test]
    fn a_namespace_reached_by_path_and_by_name_is_one_and_vxlan_remotes_are_read() {
        let (networks, mut endpoints, mut host, mut namespaces) = world();
        // c2 attached by pid: its rows name /proc/42/ns/net; the engine read it there.
        for ep in endpoints.iter_mut().filter(|e| e.container == "c2") {
            ep.container = "pid:42".into();
            ep.netns_path = "/proc/42/ns/net".into();
        }
        namespaces[1].name = None;
        namespaces[1].path = "/proc/42/ns/net".into();
        host.links.push(link(10, "vx0", Some("vxlan"), Some(2)));
        let remote = |ip: &str| FdbEntry {
            ifindex: 10,
            master: None,
            mac: [0; 6],
            vlan: None,
            permanent: true,
            is_self: true,
            extern_learn: false,
            remote: Some(ip.parse().unwrap()),
        };
        host.fdb = vec![
            remote("192.0.2.9"),
            remote("192.0.2.7"),
            remote("192.0.2.9"),
        ];
        let t = assemble(&networks, &endpoints, &host, &namespaces, &[]);
        assert_eq!(t.namespaces.len(), 3);
        let c2 = t.namespaces.iter().find(|n| n.name == "pid:42").unwrap();
        assert_eq!(c2.presence, Presence::Present);
        assert_eq!(t.vxlans.len(), 1);
        assert_eq!(t.vxlans[0].bridge.as_deref(), Some("br-blue"));
        assert_eq!(
            t.vxlans[0].remotes,
            [
                "192.0.2.7".parse::<IpAddr>().unwrap(),
                "192.0.2.9".parse().unwrap()
            ]
        );
    }
}
