//! From the kernel's trace events of one probe to the hops it took and a verdict in
//! words. Pure functions of what was read; unit-tested beside them.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use ctnet_kernel::link_detail::LinkDetail;
use ctnet_kernel::route::{RouteDecision, RouteType};
use ctnet_nft::conntrack;
use ctnet_nft::trace::{PacketHeaders, TraceEvent, TraceKind, TraceVerdict};
use ctnet_nft::{Hook, RuleInfo};

use super::verdict_word;
use crate::model::{Endpoint, Network};
use ctnet_kernel::probe::{Answer, Protocol};

/// The rule comments of ctnet's drop rules, as `datapath::nft` writes them.
const GUARD: &str = "127.0.0.0/8 is never reachable from another host or a container";
const INTERNAL_OUT: &str = "internal networks reach nothing outside their bridge";
const INTERNAL_IN: &str = "nothing reaches into internal networks";
const NO_ICC: &str = "containers on one bridge with icc off";
const ISOLATED: &str = "nothing else enters a network: not the wan, not another network";
const VXLAN_STRANGER: &str = "VXLAN only from the overlays' registered hosts";
/// The start of the comments of the policy rules that drop (`datapath::nft::policy`).
const POLICY_DENIED: &str = "policy: denied";
const POLICY_NOT_ADMITTED: &str = "policy: not admitted";
/// ctnet's chains that only turn tracing on.
const TRACE_CHAINS: [&str; 2] = ["trace_in", "trace_out"];

/// One step of the probe's way.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "hop", rename_all = "snake_case")]
pub enum Hop {
    /// It left the sender.
    Sent {
        /// The sender.
        namespace: String,
        /// The interface inside the sender, when it is a container.
        interface: Option<String>,
        /// Its source address.
        source: IpAddr,
    },
    /// The sender's kernel refused to send it.
    NotSent {
        /// The sender.
        namespace: String,
        /// The kernel's error.
        error: String,
    },
    /// It reached the host through a container's veth and bridge.
    Entered {
        /// The veth's host side.
        veth: String,
        /// The bridge it is a port of.
        bridge: String,
        /// The network of that bridge.
        network: String,
    },
    /// It reached the host by an interface that is no container's (an uplink).
    Arrived {
        /// The host's interface.
        interface: String,
    },
    /// One chain it passed, with the rules that matched it.
    Chain {
        /// `inet ctnet`, or another table.
        table: String,
        /// The chain.
        chain: String,
        /// The hook of the chain, for ctnet's chains.
        hook: Option<String>,
        /// The rules that matched, in order.
        rules: Vec<RuleHit>,
        /// How the chain ended for it.
        verdict: String,
    },
    /// The host's routing decision (`ip route get`).
    Routed {
        /// The interface it came in by (none when the host sent it).
        input: Option<String>,
        /// The destination routed to (after DNAT).
        destination: IpAddr,
        /// unicast, local, …
        kind: String,
        /// The interface it leaves by.
        output: Option<String>,
        /// The next hop, when there is a gateway.
        gateway: Option<IpAddr>,
    },
    /// Its addresses were rewritten.
    Translated {
        /// `dnat` (a published port) or `masquerade`.
        nat: String,
        /// Before.
        from: String,
        /// After.
        to: String,
    },
    /// It left the host.
    Left {
        /// The interface.
        interface: String,
        /// The network of that bridge, when it is one of ctnet's.
        network: Option<String>,
    },
    /// It was delivered.
    Delivered {
        /// To what: a container, or the host itself.
        to: String,
    },
}

/// A rule that matched the probe.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleHit {
    /// The rule's handle.
    pub handle: Option<u64>,
    /// Its comment, for ctnet's rules.
    pub comment: Option<String>,
    /// What it decided.
    pub verdict: String,
}

/// The outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// accepted, dropped, refused, unreachable or no answer.
    pub outcome: String,
    /// Where it was decided, when it was dropped.
    pub at: Option<String>,
    /// Why, and what to do.
    pub why: String,
}

/// What the explanation reads besides the events.
pub(crate) struct Context<'a> {
    pub sender_label: &'a str,
    pub sender_endpoints: &'a [Endpoint],
    /// Every endpoint ctnet knows: who a packet into a network was for.
    pub all_endpoints: &'a [Endpoint],
    pub networks: &'a [Network],
    pub host_links: &'a [LinkDetail],
    pub rules: &'a [RuleInfo],
    pub chain_hooks: &'a [(&'static str, Hook)],
    pub decision: Option<&'a RouteDecision>,
    pub entry: Option<&'a conntrack::Entry>,
}

impl Context<'_> {
    fn link_name(&self, index: Option<u32>) -> Option<String> {
        let index = index?;
        Some(
            self.host_links
                .iter()
                .find(|l| l.index == index)
                .map_or_else(|| format!("if{index}"), |l| l.name.clone()),
        )
    }

    fn network_of_bridge(&self, name: &str) -> Option<&Network> {
        self.networks.iter().find(|n| n.bridge.as_str() == name)
    }

    fn comment_of(&self, table: &str, handle: Option<u64>) -> Option<String> {
        let handle = handle?;
        self.rules
            .iter()
            .find(|r| r.table == table && r.handle == handle)
            .map(|r| r.comment.clone())
            .filter(|c| !c.is_empty())
    }

    fn is_ours(event: &TraceEvent) -> bool {
        event.table == crate::datapath::nft::TABLE.name
            && event.family == crate::datapath::nft::TABLE.family
    }

    fn hook_of(&self, event: &TraceEvent) -> Option<Hook> {
        if !Self::is_ours(event) {
            return None;
        }
        self.chain_hooks
            .iter()
            .find(|(name, _)| *name == event.chain)
            .map(|(_, hook)| *hook)
    }
}

/// Tells the probe's events from others of its flow.
pub(crate) struct Matcher {
    port: u16,
    protocol: Protocol,
}

impl Matcher {
    pub fn new(source: &SocketAddr, protocol: Protocol) -> Self {
        Matcher {
            port: source.port(),
            protocol,
        }
    }

    fn is_probe(&self, h: &PacketHeaders) -> bool {
        match self.protocol {
            Protocol::Icmp => h.icmp_id == Some(self.port) && matches!(h.icmp_type, Some(8 | 128)),
            _ => h.sport == Some(self.port) && h.protocol == self.protocol.number(h.dst),
        }
    }

    /// The events of the probe's first packet: the kernel puts headers in the first
    /// event of each base chain only and gives each hook's pass its own id, so an id is
    /// the probe's when its first event's headers are; a retransmission (a second id
    /// for a chain already seen) is left out.
    pub fn events_of_probe(&self, events: &[TraceEvent]) -> Vec<TraceEvent> {
        let mut ours: HashSet<u32> = HashSet::new();
        let mut others: HashSet<u32> = HashSet::new();
        let mut first_id: HashMap<(String, String), u32> = HashMap::new();
        let mut out = Vec::new();
        for e in events {
            if let Some(h) = e.packet() {
                if !ours.contains(&e.id) && !others.contains(&e.id) {
                    let key = (e.table.clone(), e.chain.clone());
                    let retransmission = first_id.get(&key).is_some_and(|id| *id != e.id);
                    if self.is_probe(&h) && !retransmission {
                        first_id.insert(key, e.id);
                        ours.insert(e.id);
                    } else {
                        others.insert(e.id);
                    }
                }
            }
            if ours.contains(&e.id) {
                out.push(e.clone());
            }
        }
        out
    }

    /// True once the probe's events include a drop.
    pub fn dropped(&self, events: &[TraceEvent]) -> bool {
        self.events_of_probe(events).iter().any(is_drop)
    }
}

fn is_drop(e: &TraceEvent) -> bool {
    match e.kind {
        TraceKind::Policy => e.policy == Some(0) || e.verdict == Some(TraceVerdict::Drop),
        _ => e.verdict == Some(TraceVerdict::Drop),
    }
}

/// The probe's conntrack entry in the host's table.
pub(crate) fn probe_entry<'a>(
    entries: &'a [conntrack::Entry],
    source: &SocketAddr,
    destination: SocketAddr,
    protocol: Protocol,
) -> Option<&'a conntrack::Entry> {
    entries.iter().find(|e| {
        let o = &e.original;
        o.src == source.ip()
            && o.dst == destination.ip()
            && o.protocol == protocol.number(destination.ip())
            && match protocol {
                Protocol::Icmp => o.icmp.as_ref().is_some_and(|i| i.id == source.port()),
                _ => o.src_port == Some(source.port()) && o.dst_port == Some(destination.port()),
            }
    })
}

/// Consecutive events of one chain pass, grouped.
struct Pass<'a> {
    events: Vec<&'a TraceEvent>,
}

fn passes(events: &[TraceEvent]) -> Vec<Pass<'_>> {
    let mut out: Vec<Pass> = Vec::new();
    for e in events {
        let same = out.last().is_some_and(|p| {
            let f = p.events[0];
            f.id == e.id && f.table == e.table && f.chain == e.chain && f.family == e.family
        });
        if same {
            out.last_mut().expect("just checked").events.push(e);
        } else {
            out.push(Pass { events: vec![e] });
        }
    }
    out
}

fn chain_hop(c: &Context, pass: &Pass) -> Hop {
    let first = pass.events[0];
    let mut rules = Vec::new();
    let mut verdict = "continue".to_string();
    for e in &pass.events {
        match e.kind {
            TraceKind::Policy => {
                verdict = match e.policy {
                    Some(0) => "policy drop".into(),
                    _ => "policy accept".into(),
                }
            }
            TraceKind::Rule if e.rule_handle.is_some() => {
                let word = e.verdict.as_ref().map_or("continue".into(), verdict_word);
                verdict = word.clone();
                rules.push(RuleHit {
                    handle: e.rule_handle,
                    comment: c.comment_of(&e.table, e.rule_handle),
                    verdict: word,
                });
            }
            TraceKind::Return => verdict = "return".into(),
            _ => {}
        }
    }
    let hook = c.hook_of(first);
    if hook.is_none() && Context::is_ours(first) && verdict == "continue" {
        // A regular chain that ran out of rules goes back to the chain that jumped.
        verdict = "return".into();
    }
    Hop::Chain {
        table: format!("{} {}", first.family, first.table),
        chain: first.chain.clone(),
        hook: hook.map(|h| hook_name(h).to_string()),
        rules,
        verdict,
    }
}

fn hook_name(hook: Hook) -> &'static str {
    match hook {
        Hook::Prerouting => "prerouting",
        Hook::Input => "input",
        Hook::Forward => "forward",
        Hook::Output => "output",
        Hook::Postrouting => "postrouting",
        Hook::Ingress => "ingress",
        _ => "other",
    }
}

fn flow_text(t: &conntrack::Tuple, dst: bool) -> String {
    let (ip, port) = if dst {
        (t.dst, t.dst_port)
    } else {
        (t.src, t.src_port)
    };
    match (ip, port) {
        (IpAddr::V6(v6), Some(p)) => format!("[{v6}]:{p}"),
        (ip, Some(p)) => format!("{ip}:{p}"),
        (ip, None) => ip.to_string(),
    }
}

fn dnat_hop(entry: &conntrack::Entry) -> Hop {
    Hop::Translated {
        nat: "dnat".into(),
        from: flow_text(&entry.original, true),
        to: flow_text(&entry.reply, false),
    }
}

fn masquerade_hop(entry: &conntrack::Entry) -> Hop {
    Hop::Translated {
        nat: "masquerade".into(),
        from: flow_text(&entry.original, false),
        to: flow_text(&entry.reply, true),
    }
}

fn routed_hop(c: &Context, input: Option<u32>, destination: IpAddr) -> Option<Hop> {
    let d = c.decision?;
    Some(Hop::Routed {
        input: c.link_name(input),
        destination,
        kind: route_kind(d.kind),
        output: c.link_name(d.oif),
        gateway: d.gateway,
    })
}

fn route_kind(kind: RouteType) -> String {
    match kind {
        RouteType::Unicast => "unicast".into(),
        RouteType::Local => "local".into(),
        RouteType::Broadcast => "broadcast".into(),
        RouteType::Unreachable => "unreachable".into(),
        RouteType::Prohibit => "prohibit".into(),
        RouteType::BlackHole => "blackhole".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// The sender's endpoint the probe left by: the one whose address is its source.
fn sending_endpoint<'a>(c: &'a Context, source: IpAddr) -> Option<&'a Endpoint> {
    c.sender_endpoints
        .iter()
        .find(|ep| ep.ips.contains(&source))
        .or(c.sender_endpoints.first())
}

/// The hops, in order.
pub(crate) fn hops(c: &Context, events: &[TraceEvent]) -> Vec<Hop> {
    let source = events
        .iter()
        .find_map(|e| e.packet().map(|h| h.src))
        .or(c.entry.map(|e| e.original.src));
    let mut out = Vec::new();
    let sender_ep = source.and_then(|s| sending_endpoint(c, s));
    if let Some(src) = source {
        out.push(Hop::Sent {
            namespace: c.sender_label.to_string(),
            interface: sender_ep.map(|ep| ep.ifname.to_string()),
            source: src,
        });
    }
    if let Some(ep) = sender_ep {
        if let (Some(veth), Some(net)) = (
            &ep.host_ifname,
            c.networks.iter().find(|n| n.name == ep.network),
        ) {
            out.push(Hop::Entered {
                veth: veth.to_string(),
                bridge: net.bridge.to_string(),
                network: net.name.to_string(),
            });
        }
    }
    let input = events.iter().find_map(|e| e.iif);
    let entered = matches!(out.last(), Some(Hop::Entered { .. }));
    if let (false, Some(interface)) = (entered, c.link_name(input)) {
        out.push(Hop::Arrived { interface });
    }
    let routed_to = c
        .entry
        .filter(|e| e.is_dnat())
        .map(|e| e.reply.src)
        .or_else(|| events.iter().find_map(|e| e.packet().map(|h| h.dst)));
    let all = passes(events);
    let shown: Vec<&Pass> = all
        .iter()
        .filter(|p| {
            !(Context::is_ours(p.events[0]) && TRACE_CHAINS.contains(&p.events[0].chain.as_str()))
        })
        .collect();
    let last_pre = shown
        .iter()
        .rposition(|p| c.hook_of(p.events[0]) == Some(Hook::Prerouting));
    let host_sent = input.is_none();
    let mut routed = false;
    if host_sent {
        if let Some(h) = routed_to.and_then(|d| routed_hop(c, None, d)) {
            out.push(h);
            routed = true;
        }
    }
    for (i, pass) in shown.iter().enumerate() {
        out.push(chain_hop(c, pass));
        let first = pass.events[0];
        if Context::is_ours(first) && matches!(first.chain.as_str(), "prerouting" | "output") {
            if let Some(entry) = c.entry.filter(|e| e.is_dnat()) {
                out.push(dnat_hop(entry));
            }
        }
        if Context::is_ours(first) && first.chain == "postrouting" {
            if let Some(entry) = c.entry.filter(|e| e.is_snat()) {
                out.push(masquerade_hop(entry));
            }
        }
        if !routed && last_pre == Some(i) {
            if let Some(h) = routed_to.and_then(|d| routed_hop(c, input, d)) {
                out.push(h);
                routed = true;
            }
        }
    }
    if !routed {
        if let Some(h) = routed_to.and_then(|d| routed_hop(c, input, d)) {
            out.push(h);
        }
    }
    if events.iter().any(is_drop) {
        return out;
    }
    if let Some(d) = c.decision {
        if d.kind == RouteType::Local {
            out.push(Hop::Delivered { to: "host".into() });
        } else if let Some(name) = c.link_name(d.oif) {
            let network = c.network_of_bridge(&name);
            out.push(Hop::Left {
                interface: name.clone(),
                network: network.map(|n| n.name.to_string()),
            });
            if let (Some(net), Some(to)) = (network, routed_to) {
                if let Some(ep) = c
                    .all_endpoints
                    .iter()
                    .find(|ep| ep.network == net.name && ep.ips.contains(&to))
                {
                    out.push(Hop::Delivered {
                        to: format!("{} ({})", ep.container, ep.ifname),
                    });
                }
            }
        }
    }
    out
}

/// The verdict, in words a user acts on.
pub(crate) fn verdict(
    c: &Context,
    events: &[TraceEvent],
    answer: &Answer,
    destination: SocketAddr,
    protocol: Protocol,
) -> Verdict {
    if let Some(drop) = events.iter().find(|e| is_drop(e)) {
        return dropped(c, drop, events);
    }
    let target = match protocol {
        Protocol::Icmp => destination.ip().to_string(),
        _ => format!("{destination}/{}", protocol.as_str()),
    };
    let dnat = c.entry.filter(|e| e.is_dnat());
    let masq = c.entry.filter(|e| e.is_snat());
    match answer {
        Answer::Connected | Answer::Replied => {
            let mut why = format!("{target} answered");
            if let Some(e) = dnat {
                why.push_str(&format!(
                    " through the published port (DNAT to {})",
                    flow_text(&e.reply, false)
                ));
            }
            if let Some(e) = masq {
                why.push_str(&format!(", masqueraded as {}", e.reply.dst));
            }
            accepted("accepted", why)
        }
        Answer::Refused => {
            let local = c.decision.is_some_and(|d| d.kind == RouteType::Local);
            let why = if local && dnat.is_none() {
                format!(
                    "the host itself answered that nothing listens on {target}: no container has that port published (`ctnet attach NETWORK CONTAINER -p {}:PORT`)",
                    destination.port()
                )
            } else {
                format!("{target} was reached and refused it: nothing listens on that port there")
            };
            accepted("refused", why)
        }
        Answer::Unreachable(words) => accepted(
            "unreachable",
            format!("an ICMP error came back: {words}"),
        ),
        Answer::NoAnswer => accepted(
            "no answer",
            format!(
                "no nftables rule on this host dropped it, and nothing answered within the wait: {target} may be down, or not answer this protocol (a UDP server is silent when it has nothing to say)"
            ),
        ),
    }
}

fn accepted(outcome: &str, why: String) -> Verdict {
    Verdict {
        outcome: outcome.into(),
        at: None,
        why,
    }
}

fn dropped(c: &Context, drop: &TraceEvent, events: &[TraceEvent]) -> Verdict {
    let table = format!("{} {}", drop.family, drop.table);
    let at = match drop.rule_handle {
        Some(h) => format!("table {table} chain {} rule {h}", drop.chain),
        None => format!("table {table} chain {} (its policy)", drop.chain),
    };
    // The interfaces are in the first event of the drop's chain pass; the routing
    // decision has them too (trace events of a forwarded packet may carry only one).
    let of_pass =
        |f: fn(&TraceEvent) -> Option<u32>| events.iter().filter(|e| e.id == drop.id).find_map(f);
    let iif = c.link_name(of_pass(|e| e.iif).or_else(|| events.iter().find_map(|e| e.iif)));
    let oif = c.link_name(of_pass(|e| e.oif).or_else(|| c.decision.and_then(|d| d.oif)));
    let why = if Context::is_ours(drop) {
        let comment = c
            .comment_of(&drop.table, drop.rule_handle)
            .unwrap_or_default();
        why_ctnet_dropped(c, &drop.chain, &comment, iif.as_deref(), oif.as_deref())
    } else {
        format!(
            "a rule of table {table}, which is not ctnet's, dropped it (chain {}, handle {}); that table's owner decides",
            drop.chain,
            drop.rule_handle.map_or("-".into(), |h| h.to_string())
        )
    };
    Verdict {
        outcome: "dropped".into(),
        at: Some(at),
        why,
    }
}

fn why_ctnet_dropped(
    c: &Context,
    chain: &str,
    comment: &str,
    iif: Option<&str>,
    oif: Option<&str>,
) -> String {
    let net_in = iif
        .and_then(|n| c.network_of_bridge(n))
        .map(|n| n.name.to_string());
    let net_out = oif
        .and_then(|n| c.network_of_bridge(n))
        .map(|n| n.name.to_string());
    let or_unknown = |n: &Option<String>| n.clone().unwrap_or_else(|| "?".into());
    match comment {
        VXLAN_STRANGER => "dropped by chain vxlan_in: VXLAN to an overlay's VTEP from an address that is no registered host of any overlay (VXLAN has no authentication, so only hosts in etcd may send it); start ctnet-agent --etcd on that host".into(),
        GUARD => "dropped by the loopback guard: 127.0.0.0/8 is never reachable from another host or a container, so a port published on 127.0.0.1 answers the host alone; publish it on 0.0.0.0 or a host address to reach it from here".into(),
        INTERNAL_OUT => format!(
            "network {} is internal: its containers reach nothing outside their bridge; attach the container to a network that is not internal as well",
            or_unknown(&net_in)
        ),
        INTERNAL_IN => format!(
            "network {} is internal: nothing outside its bridge reaches it",
            or_unknown(&net_out)
        ),
        NO_ICC => format!(
            "network {} has inter-container traffic off (icc=false): its containers do not reach each other",
            or_unknown(&net_in)
        ),
        ISOLATED => match (&net_in, &net_out) {
            (Some(a), Some(b)) => format!(
                "dropped by chain {chain}: networks {a} and {b} are isolated; attach the container to both or publish the port"
            ),
            (_, Some(b)) => format!(
                "dropped by chain {chain}: from outside, containers of network {b} are reached only through published ports; publish the port (`-p HOST_PORT:PORT`) and trace to the host's address"
            ),
            _ => format!("dropped by chain {chain}: {comment}"),
        },
        _ if comment.starts_with(POLICY_DENIED) => format!(
            "a deny policy of network {} drops this flow (destination, source, protocol and port); see `ctnet policy ls`",
            or_unknown(&net_out)
        ),
        _ if comment.starts_with(POLICY_NOT_ADMITTED) => format!(
            "the destination is selected by an allow policy of network {}, and no allow policy admits this source, protocol and port; see `ctnet policy ls`, and admit it with `ctnet policy add`",
            or_unknown(&net_out)
        ),
        _ if chain == crate::datapath::nft::USER_CHAIN => format!(
            "your own rule in chain {chain} of table {} dropped it",
            crate::datapath::nft::TABLE
        ),
        "" => format!("the policy of chain {chain} dropped it"),
        other => format!("dropped by chain {chain}: {other}"),
    }
}

/// Why the sender's own kernel would not send the probe.
pub(crate) fn unsent_reason(
    sender: &str,
    destination: IpAddr,
    error: &std::io::Error,
    internal_networks: &[String],
) -> String {
    match error.raw_os_error() {
        Some(libc::ENETUNREACH) if !internal_networks.is_empty() => format!(
            "{sender} has no route to {destination}: its network {} is internal, so it has no gateway; attach it to a network that is not internal to reach the outside",
            internal_networks.join(", ")
        ),
        Some(libc::ENETUNREACH) => format!(
            "{sender} has no route to {destination}: attach it to a network with a gateway, or check its routes (`ctnet inspect {sender}`)"
        ),
        _ => format!("{sender} could not send to {destination}: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ctnet_nft::Family;

    fn event(
        id: u32,
        chain: &str,
        kind: TraceKind,
        handle: Option<u64>,
        verdict: Option<TraceVerdict>,
    ) -> TraceEvent {
        TraceEvent {
            family: Family::Inet,
            id,
            kind,
            table: "ctnet".into(),
            chain: chain.into(),
            rule_handle: handle,
            verdict,
            policy: None,
            iif: None,
            oif: None,
            iif_type: None,
            oif_type: None,
            mark: None,
            nfproto: None,
            network_header: Vec::new(),
            transport_header: Vec::new(),
            ll_header: Vec::new(),
        }
    }

    /// An IPv4 header and a TCP header of a SYN from 10.0.0.2:sport to 10.0.1.2:80.
    fn with_syn(mut e: TraceEvent, sport: u16) -> TraceEvent {
        let mut ip = vec![0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0];
        ip.extend_from_slice(&[10, 0, 0, 2, 10, 0, 1, 2]);
        let mut tcp = sport.to_be_bytes().to_vec();
        tcp.extend_from_slice(&80u16.to_be_bytes());
        tcp.extend_from_slice(&[0; 8]);
        tcp.extend_from_slice(&[0x50, 0x02, 0, 0, 0, 0, 0, 0]);
        e.network_header = ip;
        e.transport_header = tcp;
        e
    }

    #[test]
    fn the_probes_events_are_followed_by_id_and_a_retransmission_is_left_out() {
        let probe: SocketAddr = "10.0.0.2:40000".parse().unwrap();
        let m = Matcher::new(&probe, Protocol::Tcp);
        let events = vec![
            with_syn(
                event(
                    1,
                    "forward",
                    TraceKind::Rule,
                    Some(5),
                    Some(TraceVerdict::Continue),
                ),
                40000,
            ),
            event(
                1,
                "forward",
                TraceKind::Rule,
                Some(9),
                Some(TraceVerdict::Drop),
            ),
            with_syn(event(2, "forward", TraceKind::Rule, Some(5), None), 40001),
            event(
                2,
                "forward",
                TraceKind::Rule,
                Some(9),
                Some(TraceVerdict::Accept),
            ),
            with_syn(event(3, "forward", TraceKind::Rule, Some(5), None), 40000),
        ];
        let ours = m.events_of_probe(&events);
        assert_eq!(ours.iter().map(|e| e.id).collect::<Vec<_>>(), [1, 1]);
        assert!(m.dropped(&events));
    }

    #[test]
    fn every_drop_rule_of_ctnets_layout_is_explained() {
        let comments = crate::datapath::nft::drop_rule_comments();
        assert!(!comments.is_empty());
        for comment in comments {
            assert!(
                [
                    GUARD,
                    INTERNAL_OUT,
                    INTERNAL_IN,
                    NO_ICC,
                    ISOLATED,
                    VXLAN_STRANGER
                ]
                .contains(&comment)
                    || comment.starts_with(POLICY_DENIED)
                    || comment.starts_with(POLICY_NOT_ADMITTED),
                "no explanation for the drop rule {comment:?}"
            );
        }
    }

    #[test]
    fn an_internal_network_without_a_route_is_named() {
        let e = std::io::Error::from_raw_os_error(libc::ENETUNREACH);
        let why = unsent_reason("c1", "203.0.113.1".parse().unwrap(), &e, &["int".into()]);
        assert!(why.contains("network int is internal"), "{why}");
    }
}
