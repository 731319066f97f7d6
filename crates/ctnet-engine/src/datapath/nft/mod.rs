//! ctnet's nftables table: its layout, and how networks and published ports change it.
//!
//! ctnet owns exactly one table and touches nothing else in the ruleset. Its rules are
//! written once; networks and published ports only add and remove set and map elements,
//! so the 1,000th published port costs a map element, not a rule, and each packet pays a
//! few hash lookups however many networks and ports exist:
//!
//! ```text
//! table inet ctnet {                                  # comment carries LAYOUT
//!   set masq_subnets  { ipv4_addr; interval }         # non-internal subnets
//!   set masq_local    { ipv4_addr . ifname; interval } # subnet . its own bridge
//!   set bridges       { ifname }                      # every ctnet bridge
//!   set internal      { ifname }                      # bridges of --internal networks
//!   set icc           { ifname . ifname }             # bridge . bridge where icc is on
//!   map publish_any   { inet_proto . inet_service : ipv4_addr . inet_service }
//!   map publish_addr  { ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service }
//!
//!   chain user { }    # yours: jumped to first from forward, never rewritten by ctnet
//!   chain guard       { filter prerouting raw:   iifname != "lo" ip daddr 127.0.0.0/8 drop }
//!   chain prerouting  { nat prerouting dstnat:   fib daddr type local dnat ... map @publish_addr
//!                                                fib daddr type local dnat ... map @publish_any }
//!   chain output      { nat output dstnat:       (the same two rules, for the host's own traffic) }
//!   chain forward     { filter forward filter:   jump user
//!                                                ct state established,related accept
//!                                                iifname . oifname @icc accept
//!                                                iifname @internal drop; oifname @internal drop
//!                                                oifname @bridges ct status dnat accept
//!                                                oifname @bridges drop }
//!   chain postrouting { nat postrouting srcnat:  ip saddr @masq_subnets ip saddr . oifname != @masq_local masquerade
//!                                                ct status dnat ip saddr . oifname @masq_local masquerade   # hairpin
//!                                                ct status dnat ip saddr 127.0.0.0/8 masquerade }           # localhost
//! }
//! ```
//!
//! Published ports reach containers from the wan, from the host itself (its addresses and
//! 127.0.0.1), from the container itself (hairpin) and from other containers. Traffic to
//! 127.0.0.1 leaves the host's loopback only because ctnet bridges have `route_localnet`
//! set; `guard` drops anything arriving from outside (a wan host or a container) for
//! 127.0.0.0/8 before routing, so a loopback-published port is never reachable from
//! another machine (the CVE-2020-8558 class).
//!
//! With `br_netfilter` active (bridge-nf-call-iptables=1, as wherever Docker runs),
//! frames between containers on one bridge also pass these hooks, with the bridge as both
//! input and output interface: `icc` lets them through where the network allows it, and a
//! container reaching its own published port is DNATed at the bridge layer and bridged
//! back to its own port, which is why container ports are in hairpin mode. Without
//! `br_netfilter` bridged frames skip these hooks; icc=false is then enforced by isolated
//! bridge ports alone.

use std::net::IpAddr;
use std::os::fd::{AsFd, BorrowedFd};

use ctnet_kernel::nft::{
    self, BaseChain, ChainType, CmpOp, CtKey, Element, Expr, Family, Hook, Key, KeyField, MetaKey,
    NftSocket, Register, SetSpec, Verdict,
};
use ctnet_kernel::IfName;

use crate::model::ports::PublishedPort;
use crate::model::Subnet;

/// The family of ctnet's table.
pub const FAMILY: Family = Family::Inet;
/// The name of ctnet's table.
pub const TABLE: &str = "ctnet";
/// The table's comment, which also names the layout this code writes. A table with any
/// other comment is rewritten in this layout (keeping the `user` chain).
pub const LAYOUT: &str = "managed by ctnet, layout 2; edits outside chain user are overwritten";
/// The chain for people's own forward rules; ctnet jumps to it first and never rewrites it.
pub const USER_CHAIN: &str = "user";

const MASQ_SUBNETS: &str = "masq_subnets";
const MASQ_LOCAL: &str = "masq_local";
const BRIDGES: &str = "bridges";
const INTERNAL: &str = "internal";
const ICC: &str = "icc";
const PUBLISH_ANY: &str = "publish_any";
const PUBLISH_ADDR: &str = "publish_addr";

/// Standard hook priorities, as nft names them.
const RAW: i32 = -300;
const DSTNAT: i32 = -100;
const FILTER: i32 = 0;
const SRCNAT: i32 = 100;

/// A network as the firewall sees it.
#[derive(Debug, Clone)]
pub struct NetworkRules {
    /// The network's subnets, one per family.
    pub subnets: Vec<Subnet>,
    /// The network's bridge.
    pub bridge: IfName,
    /// Internal networks get no masquerade and nothing forwarded in or out.
    pub internal: bool,
    /// Containers on the bridge may talk to each other.
    pub icc: bool,
}

/// A published port as the firewall sees it: where it goes.
#[derive(Debug, Clone, Copy)]
pub struct PortRules {
    /// The host side and protocol.
    pub port: PublishedPort,
    /// The container's address (of the family the port forwards over).
    pub container_ip: IpAddr,
}

/// Everything the table holds besides its fixed rules.
#[derive(Debug, Clone, Default)]
pub struct Contents {
    /// Networks.
    pub networks: Vec<NetworkRules>,
    /// Published ports.
    pub ports: Vec<PortRules>,
}

/// ctnet's table for one process; the netlink socket opens on first use.
#[derive(Default)]
pub struct Firewall {
    socket: Option<NftSocket>,
    table_checked: bool,
}

impl Firewall {
    /// A handle; nothing is opened or checked until first use.
    pub fn new() -> Self {
        Firewall::default()
    }

    /// True when ctnet's table exists with this code's layout. Once true, it is not asked
    /// again by this process.
    pub fn is_current(&mut self) -> ctnet_kernel::Result<bool> {
        if !self.table_checked {
            let comment = self.socket()?.table_comment(FAMILY, TABLE)?;
            self.table_checked = comment.as_deref() == Some(LAYOUT);
        }
        Ok(self.table_checked)
    }

    /// True when a table named like ctnet's exists, whatever its layout.
    pub fn table_exists(&mut self) -> ctnet_kernel::Result<bool> {
        Ok(self.socket()?.table_comment(FAMILY, TABLE)?.is_some())
    }

    /// Creates the table holding `contents` unless it exists, in one exclusive batch:
    /// when ctnet processes race, one creates it and the others carry on.
    pub fn create(&mut self, contents: &Contents) -> ctnet_kernel::Result<()> {
        let socket = self.socket()?;
        let mut batch = socket.batch();
        add_skeleton(&mut batch, true);
        add_contents(&mut batch, contents);
        match socket.commit(batch) {
            Err(e) if e.is_exists() => {}
            other => other?,
        }
        self.table_checked = true;
        Ok(())
    }

    /// Rewrites the table to hold exactly `contents`, in one batch: every ctnet chain and
    /// set is flushed and refilled, so hand edits, flushed sets or an older layout are put
    /// right without a moment where packets see a half-built table. The `user` chain and
    /// its rules are left as they are.
    pub fn rebuild(&mut self, contents: &Contents) -> ctnet_kernel::Result<()> {
        let socket = self.socket()?;
        let mut batch = socket.batch();
        add_skeleton(&mut batch, false);
        add_contents(&mut batch, contents);
        socket.commit(batch)?;
        self.table_checked = true;
        Ok(())
    }

    /// Adds a network's elements. The table must exist ([`Firewall::is_current`]);
    /// adding what is already there is not an error.
    pub fn add_network(&mut self, net: &NetworkRules) -> ctnet_kernel::Result<()> {
        let socket = self.socket()?;
        let mut batch = socket.batch();
        add_network_elements(&mut batch, net);
        socket.commit(batch)
    }

    /// Removes a network's elements; elements or a table already gone are fine.
    pub fn remove_network(&mut self, net: &NetworkRules) -> ctnet_kernel::Result<()> {
        let socket = self.socket()?;
        let mut batch = socket.batch();
        for (set, element) in network_elements(net) {
            batch.destroy_elements(FAMILY, TABLE, set, &[element], &describe_network(net));
        }
        commit_tolerating_missing_table(socket, batch)
    }

    /// Publishes ports, all in one batch. The table must exist.
    pub fn add_ports(&mut self, ports: &[PortRules]) -> ctnet_kernel::Result<()> {
        let socket = self.socket()?;
        let mut batch = socket.batch();
        add_port_elements(&mut batch, ports);
        socket.commit(batch)
    }

    /// Withdraws published ports; elements or a table already gone are fine.
    pub fn remove_ports(&mut self, ports: &[PortRules]) -> ctnet_kernel::Result<()> {
        let socket = self.socket()?;
        let mut batch = socket.batch();
        for (map, elements) in port_elements_by_map(ports) {
            let what = format!("{} published ports", elements.len());
            batch.destroy_elements(FAMILY, TABLE, map, &elements, &what);
        }
        commit_tolerating_missing_table(socket, batch)
    }

    /// The published ports whose map element is missing or points elsewhere.
    pub fn missing_ports(&mut self, ports: &[PortRules]) -> ctnet_kernel::Result<Vec<PortRules>> {
        let socket = self.socket()?;
        let mut missing = Vec::new();
        for port in ports {
            let Some((map, element)) = port_element(port) else {
                continue;
            };
            let Element::Mapping { key, value } = element else {
                continue;
            };
            if socket.get_element(FAMILY, TABLE, map, &key)?.as_deref() != Some(value.as_bytes()) {
                missing.push(*port);
            }
        }
        Ok(missing)
    }

    /// The open nf_tables socket, if this process has used one. Its last close waits
    /// for the kernel to free removed elements; see [`ctnet_kernel::reclaim`].
    pub fn open_socket(&self) -> Option<BorrowedFd<'_>> {
        self.socket.as_ref().map(|s| s.as_fd())
    }

    fn socket(&mut self) -> ctnet_kernel::Result<&mut NftSocket> {
        if self.socket.is_none() {
            self.socket = Some(NftSocket::open()?);
        }
        Ok(self.socket.as_mut().expect("socket was just opened"))
    }
}

/// Destroying elements of a missing table is ENOENT; with no table there is nothing left
/// to remove.
fn commit_tolerating_missing_table(
    socket: &mut NftSocket,
    batch: nft::Batch,
) -> ctnet_kernel::Result<()> {
    match socket.commit(batch) {
        Err(e) if e.is_not_found() && socket.table_comment(FAMILY, TABLE)?.is_none() => Ok(()),
        other => other,
    }
}

/// The sets and maps, each with its key (and value) fields.
fn sets() -> [SetSpec; 7] {
    use KeyField::*;
    [
        SetSpec::intervals(MASQ_SUBNETS, vec![Ipv4Addr]),
        SetSpec::intervals(MASQ_LOCAL, vec![Ipv4Addr, IfName]),
        SetSpec::exact(BRIDGES, vec![IfName]),
        SetSpec::exact(INTERNAL, vec![IfName]),
        SetSpec::exact(ICC, vec![IfName, IfName]),
        SetSpec::map(
            PUBLISH_ANY,
            vec![InetProto, InetService],
            vec![Ipv4Addr, InetService],
        ),
        SetSpec::map(
            PUBLISH_ADDR,
            vec![Ipv4Addr, InetProto, InetService],
            vec![Ipv4Addr, InetService],
        ),
    ]
}

/// A rule's expressions and its comment.
type Rule = (Vec<Expr>, &'static str);

/// The base chains and their rules.
fn chains() -> Vec<(&'static str, BaseChain, Vec<Rule>)> {
    let base = |kind, hook, priority| BaseChain {
        kind,
        hook,
        priority,
    };
    vec![
        (
            "guard",
            base(ChainType::Filter, Hook::Prerouting, RAW),
            vec![(
                loopback_from_outside(),
                "127.0.0.0/8 is never reachable from another host or a container",
            )],
        ),
        (
            "prerouting",
            base(ChainType::Nat, Hook::Prerouting, DSTNAT),
            publish_rules(),
        ),
        (
            "output",
            base(ChainType::Nat, Hook::Output, DSTNAT),
            publish_rules(),
        ),
        (
            "forward",
            base(ChainType::Filter, Hook::Forward, FILTER),
            forward_rules(),
        ),
        (
            "postrouting",
            base(ChainType::Nat, Hook::Postrouting, SRCNAT),
            masquerade_rules(),
        ),
    ]
}

/// The table, the user chain, every set and base chain, flushed and filled with rules.
fn add_skeleton(batch: &mut nft::Batch, exclusive: bool) {
    batch.add_table(FAMILY, TABLE, LAYOUT, exclusive);
    batch.add_chain(FAMILY, TABLE, USER_CHAIN, None);
    for set in sets() {
        batch.add_set(FAMILY, TABLE, &set);
        if !exclusive {
            batch.flush_set(FAMILY, TABLE, &set.name);
        }
    }
    for (name, base, rules) in chains() {
        batch.add_chain(FAMILY, TABLE, name, Some(base));
        if !exclusive {
            batch.flush_chain(FAMILY, TABLE, name);
        }
        for (exprs, comment) in rules {
            batch.add_rule(FAMILY, TABLE, name, &exprs, comment);
        }
    }
}

fn add_contents(batch: &mut nft::Batch, contents: &Contents) {
    for net in &contents.networks {
        add_network_elements(batch, net);
    }
    add_port_elements(batch, &contents.ports);
}

const R0: Register = Register::R0;

fn r(index: u32) -> Register {
    Register::r32(index).expect("register index below 16")
}

fn lookup(set: &str, sreg: Register, invert: bool) -> Expr {
    Expr::Lookup {
        set: set.into(),
        sreg,
        invert,
    }
}

fn meta(key: MetaKey, dreg: Register) -> Expr {
    Expr::Meta { key, dreg }
}

/// `ct status dnat`, using R0.
fn was_dnatted() -> Vec<Expr> {
    let mut e = vec![Expr::Ct {
        key: CtKey::Status,
        dreg: R0,
    }];
    e.extend(nft::any_bit_set(R0, nft::CT_STATUS_DNAT));
    e
}

/// `ip saddr 127.0.0.0/8` (or `daddr` with `load`), using R0.
fn in_loopback_net(load: fn(Register) -> Expr) -> Vec<Expr> {
    vec![
        load(R0),
        Expr::Bitwise {
            sreg: R0,
            dreg: R0,
            mask: vec![255, 0, 0, 0],
            xor: vec![0; 4],
        },
        Expr::Cmp {
            sreg: R0,
            op: CmpOp::Eq,
            data: vec![127, 0, 0, 0],
        },
    ]
}

/// `meta nfproto ipv4 iifname != "lo" ip daddr 127.0.0.0/8 drop`
fn loopback_from_outside() -> Vec<Expr> {
    let mut e = nft::is_ipv4().to_vec();
    e.push(meta(MetaKey::IifName, R0));
    e.push(nft::cmp_ifname(R0, CmpOp::Neq, "lo"));
    e.extend(in_loopback_net(nft::load_ipv4_daddr));
    e.extend([Expr::Counter, Expr::Verdict(Verdict::Drop)]);
    e
}

/// For packets to a local address: DNAT through `publish_addr` (keyed by the address
/// too), then through `publish_any`.
fn publish_rules() -> Vec<Rule> {
    let local = || {
        let mut e = nft::is_ipv4().to_vec();
        e.push(Expr::FibDaddrType { dreg: R0 });
        e.push(Expr::Cmp {
            sreg: R0,
            op: CmpOp::Eq,
            data: nft::RTN_LOCAL.to_ne_bytes().to_vec(),
        });
        e
    };
    let dnat_through = |map: &str, key: Vec<Expr>| {
        let mut e = local();
        e.extend(key);
        e.extend([
            Expr::Map {
                map: map.into(),
                sreg: R0,
                dreg: R0,
            },
            Expr::Dnat {
                addr: R0,
                port: r(1),
            },
        ]);
        e
    };
    vec![
        (
            dnat_through(
                PUBLISH_ADDR,
                vec![
                    nft::load_ipv4_daddr(R0),
                    meta(MetaKey::L4Proto, r(1)),
                    nft::load_dport(r(2)),
                ],
            ),
            "ports published on one host address",
        ),
        (
            dnat_through(
                PUBLISH_ANY,
                vec![meta(MetaKey::L4Proto, R0), nft::load_dport(r(1))],
            ),
            "ports published on every host address",
        ),
    ]
}

fn forward_rules() -> Vec<Rule> {
    let mut established = vec![Expr::Ct {
        key: CtKey::State,
        dreg: R0,
    }];
    established.extend(nft::any_bit_set(
        R0,
        nft::CT_STATE_ESTABLISHED | nft::CT_STATE_RELATED,
    ));
    established.push(Expr::Verdict(Verdict::Accept));
    let mut published = was_dnatted();
    published.extend([
        meta(MetaKey::OifName, R0),
        lookup(BRIDGES, R0, false),
        Expr::Verdict(Verdict::Accept),
    ]);
    vec![
        (
            vec![Expr::Verdict(Verdict::Jump(USER_CHAIN.into()))],
            "your rules first",
        ),
        (established, "replies"),
        (
            vec![
                meta(MetaKey::IifName, R0),
                meta(MetaKey::OifName, r(4)),
                lookup(ICC, R0, false),
                Expr::Verdict(Verdict::Accept),
            ],
            "containers on one bridge (seen here only when br_netfilter is active)",
        ),
        (
            vec![
                meta(MetaKey::IifName, R0),
                lookup(INTERNAL, R0, false),
                Expr::Counter,
                Expr::Verdict(Verdict::Drop),
            ],
            "internal networks reach nothing outside their bridge",
        ),
        (
            vec![
                meta(MetaKey::OifName, R0),
                lookup(INTERNAL, R0, false),
                Expr::Counter,
                Expr::Verdict(Verdict::Drop),
            ],
            "nothing reaches into internal networks",
        ),
        (published, "published ports"),
        (
            vec![
                meta(MetaKey::OifName, R0),
                lookup(BRIDGES, R0, false),
                Expr::Counter,
                Expr::Verdict(Verdict::Drop),
            ],
            "nothing else enters a network: not the wan, not another network",
        ),
    ]
}

fn masquerade_rules() -> Vec<Rule> {
    let oifname = r(1);
    let mut leaving = nft::is_ipv4().to_vec();
    leaving.extend([
        nft::load_ipv4_saddr(R0),
        lookup(MASQ_SUBNETS, R0, false),
        meta(MetaKey::OifName, oifname),
        lookup(MASQ_LOCAL, R0, true),
        Expr::Counter,
        Expr::Masquerade,
    ]);
    let mut hairpin = nft::is_ipv4().to_vec();
    hairpin.extend(was_dnatted());
    hairpin.extend([
        nft::load_ipv4_saddr(R0),
        meta(MetaKey::OifName, oifname),
        lookup(MASQ_LOCAL, R0, false),
        Expr::Counter,
        Expr::Masquerade,
    ]);
    let mut localhost = nft::is_ipv4().to_vec();
    localhost.extend(was_dnatted());
    localhost.extend(in_loopback_net(nft::load_ipv4_saddr));
    localhost.extend([Expr::Counter, Expr::Masquerade]);
    vec![
        (leaving, "masquerade traffic leaving ctnet networks"),
        (
            hairpin,
            "published ports reached from the same network answer through the host",
        ),
        (
            localhost,
            "published ports reached on 127.0.0.1 answer through the host",
        ),
    ]
}

/// `(set, element)` pairs of one network.
fn network_elements(net: &NetworkRules) -> Vec<(&'static str, Element)> {
    let bridge = Element::Key(Key::new().ifname(&net.bridge));
    let mut out = vec![(BRIDGES, bridge.clone())];
    if net.icc {
        let pair = Key::new().ifname(&net.bridge).ifname(&net.bridge);
        out.push((ICC, Element::Key(pair)));
    }
    if net.internal {
        out.push((INTERNAL, bridge));
        return out;
    }
    for subnet in &net.subnets {
        let Subnet::V4(n) = *subnet else { continue };
        let (first, last) = nft::ipv4_bounds(n.network(), n.prefix_len());
        out.extend([
            (
                MASQ_SUBNETS,
                Element::ipv4_prefix(n.network(), n.prefix_len()),
            ),
            (
                MASQ_LOCAL,
                Element::Range {
                    first: Key::new().ipv4(first).ifname(&net.bridge),
                    last: Key::new().ipv4(last).ifname(&net.bridge),
                },
            ),
        ]);
    }
    out
}

fn add_network_elements(batch: &mut nft::Batch, net: &NetworkRules) {
    for (set, element) in network_elements(net) {
        batch.add_elements(FAMILY, TABLE, set, &[element], &describe_network(net));
    }
}

/// The map a published port goes in, and its element.
fn port_element(p: &PortRules) -> Option<(&'static str, Element)> {
    let proto_port = |key: Key| key.proto(p.port.protocol.number()).port(p.port.host_port);
    let IpAddr::V4(container_ip) = p.container_ip else {
        return None;
    };
    let value = Key::new().ipv4(container_ip).port(p.port.container_port);
    Some(match p.port.host_ip {
        Some(IpAddr::V4(ip)) => (
            PUBLISH_ADDR,
            Element::Mapping {
                key: proto_port(Key::new().ipv4(ip)),
                value,
            },
        ),
        Some(IpAddr::V6(_)) => return None,
        None => (
            PUBLISH_ANY,
            Element::Mapping {
                key: proto_port(Key::new()),
                value,
            },
        ),
    })
}

/// Elements grouped by map, so a thousand ports are two messages, not a thousand.
fn port_elements_by_map(ports: &[PortRules]) -> [(&'static str, Vec<Element>); 2] {
    let mut any = Vec::new();
    let mut addr = Vec::new();
    for p in ports {
        match port_element(p) {
            Some((PUBLISH_ANY, e)) => any.push(e),
            Some((_, e)) => addr.push(e),
            None => {}
        }
    }
    [(PUBLISH_ANY, any), (PUBLISH_ADDR, addr)]
}

fn add_port_elements(batch: &mut nft::Batch, ports: &[PortRules]) {
    let what = |ports: &[PortRules]| match ports {
        [one] => format!("{} to {}", one.port, one.container_ip),
        many => format!("{} published ports", many.len()),
    };
    for (map, elements) in port_elements_by_map(ports) {
        batch.add_elements(FAMILY, TABLE, map, &elements, &what(ports));
    }
}

fn describe_network(net: &NetworkRules) -> String {
    let subnets: Vec<String> = net.subnets.iter().map(|s| s.to_string()).collect();
    format!("{} on {}", subnets.join(", "), net.bridge)
}
