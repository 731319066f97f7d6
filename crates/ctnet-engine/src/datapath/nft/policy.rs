//! Network policy in ctnet's table: five sets per family and a base chain `policy` of
//! seven rules on the forward hook, just before chain `forward`.
//!
//! ```text
//! table inet ctnet {
//!   set policy_selected     { ipv4_addr; flags timeout }           # containers an allow policy selects
//!   set policy_allow        { ipv4_addr . ipv4_addr . inet_proto . inet_service; flags timeout }
//!   set policy_allow_ranges { ipv4_addr . ipv4_addr . inet_proto . inet_service; flags interval,timeout }
//!   set policy_deny         { (as policy_allow) }
//!   set policy_deny_ranges  { (as policy_allow_ranges) }
//!   (the same five ending in 6, with ipv6_addr)
//!
//!   chain policy { type filter hook forward priority filter - 1;   # before chain forward
//!     meta l4proto tcp tcp flags & syn == 0 accept
//!     ct state new,invalid ip daddr . ip saddr . meta l4proto . th dport @policy_deny drop
//!     ct state new,invalid ip daddr . ip saddr . meta l4proto . th dport @policy_deny_ranges drop
//!     ct state new,invalid ip daddr @policy_selected
//!                               ip daddr . ip saddr . meta l4proto . th dport != @policy_allow
//!                               ip daddr . ip saddr . meta l4proto . th dport != @policy_allow_ranges drop
//!     (the same three for IPv6)
//!   }
//! }
//! ```
//!
//! Keys are `destination . source . protocol . port` (`policy::compile`): the hash sets
//! take entries of one source address, protocol and port, the interval sets anything with
//! a range (a CIDR source, a port range, "any port"). Each new flow pays at most six
//! lookups however many policies and containers exist. Only new flows are judged
//! (`ct state new,invalid`): replies and established flows are not, so a policy change
//! governs new connections only, and neither are untracked packets (IPv6 neighbour
//! discovery) nor TCP packets without SYN (see [`policy_chain_rules`]). Policy never
//! opens what isolation closes: `accept` ends only this chain, and an admitted packet
//! goes on through chain `forward`.
//!
//! Traffic between two containers on one bridge passes `forward` only with
//! `br_netfilter` (the bridge as input and output interface); for bridges of networks
//! with policies ctnet sets the bridge's own `nf_call_iptables` and `nf_call_ip6tables`
//! flags (`IFLA_BR_NF_CALL_*`), which hold whatever the namespace's
//! `net.bridge.bridge-nf-call-iptables` says (see `ops/policy.rs`).
//!
//! Withdrawn entries expire one tick later rather than being deleted, as published
//! ports do (see "Withdrawing a port" in `mod.rs`), so a detach from a network with
//! policies does not hold up every other ctnet process's commit.

use std::net::IpAddr;

use ctnet_nft::abi::{CT_STATE_INVALID, CT_STATE_NEW};
use ctnet_nft::{Batch, Element, Field, Key, KeyField, NfProto, Rule, SetSpec};

use super::{Commented, TABLE};
use crate::model::policy::Action;
use crate::policy::{Compiled, Entry};

const SELECTED: &str = "policy_selected";
const ALLOW: &str = "policy_allow";
const ALLOW_RANGES: &str = "policy_allow_ranges";
const DENY: &str = "policy_deny";
const DENY_RANGES: &str = "policy_deny_ranges";
const SELECTED6: &str = "policy_selected6";
const ALLOW6: &str = "policy_allow6";
const ALLOW_RANGES6: &str = "policy_allow_ranges6";
const DENY6: &str = "policy_deny6";
const DENY_RANGES6: &str = "policy_deny_ranges6";

/// The names of the policy sets, IPv4 then IPv6 (for `inspect` and tests).
pub const POLICY_SETS: [&str; 10] = [
    SELECTED,
    ALLOW,
    ALLOW_RANGES,
    DENY,
    DENY_RANGES,
    SELECTED6,
    ALLOW6,
    ALLOW_RANGES6,
    DENY6,
    DENY_RANGES6,
];

/// The policy sets.
pub(super) fn policy_sets() -> Vec<SetSpec> {
    use KeyField::{InetProto, InetService, Ipv4Addr, Ipv6Addr};
    let mut out = Vec::new();
    for (addr, [selected, allow, allow_ranges, deny, deny_ranges]) in [
        (Ipv4Addr, [SELECTED, ALLOW, ALLOW_RANGES, DENY, DENY_RANGES]),
        (
            Ipv6Addr,
            [SELECTED6, ALLOW6, ALLOW_RANGES6, DENY6, DENY_RANGES6],
        ),
    ] {
        let key = vec![addr, addr, InetProto, InetService];
        out.push(SetSpec::exact(selected, vec![addr]).with_timeouts());
        out.push(SetSpec::exact(allow, key.clone()).with_timeouts());
        out.push(SetSpec::intervals(allow_ranges, key.clone()).with_timeouts());
        out.push(SetSpec::exact(deny, key.clone()).with_timeouts());
        out.push(SetSpec::intervals(deny_ranges, key).with_timeouts());
    }
    out
}

/// The rules of chain `policy`. Its own base chain, before `forward` on the same hook:
/// an `accept` here ends only this chain, so what it lets through still meets
/// isolation, internal networks and the rest of `forward`, and its drops are final.
///
/// A TCP packet without SYN opens no connection, so it is not judged: conntrack takes
/// up a flow that was open before its bridge's first policy (the bridge's frames passed
/// no hook until then) as new at its next packet, and that flow goes on. Everything
/// else new (a SYN, UDP, ICMP) is judged.
pub(super) fn policy_chain_rules() -> Vec<Commented> {
    const TCP: u8 = 6;
    const SYN: u8 = 0x02;
    let mut rules = vec![(
        Rule::new()
            .l4proto(TCP)
            .bits_clear(Field::TcpFlags, SYN)
            .accept(),
        "policy: a TCP packet without SYN opens no connection",
    )];
    rules.extend(policy_rules());
    rules
}

/// The rules that judge new flows.
fn policy_rules() -> Vec<Commented> {
    let mut out = Vec::new();
    for (proto, [selected, allow, allow_ranges, deny, deny_ranges], comments) in [
        (
            NfProto::Ipv4,
            [SELECTED, ALLOW, ALLOW_RANGES, DENY, DENY_RANGES],
            [
                "policy: denied",
                "policy: denied (ranges)",
                "policy: not admitted by any policy that selects the container",
            ],
        ),
        (
            NfProto::Ipv6,
            [SELECTED6, ALLOW6, ALLOW_RANGES6, DENY6, DENY_RANGES6],
            [
                "policy: denied (IPv6)",
                "policy: denied (ranges, IPv6)",
                "policy: not admitted by any policy that selects the container (IPv6)",
            ],
        ),
    ] {
        let key = [
            Field::daddr(proto),
            Field::saddr(proto),
            Field::L4Proto,
            Field::Dport,
        ];
        // Only packets conntrack tracks are judged: new flows (and invalid ones). Untracked
        // ones pass on to the rest of `forward`: the kernel leaves IPv6 neighbour
        // discovery untracked, and a policy dropping a neighbour solicitation sent to a
        // selected container, or the advertisement that answers one, would cut IPv6
        // between containers on one bridge (`policy.rs` in the tests shows it).
        let rule = || {
            Rule::new()
                .nfproto(proto)
                .ct_state_any(CT_STATE_NEW | CT_STATE_INVALID)
        };
        out.push((rule().in_set(&key, deny).counter().drop(), comments[0]));
        out.push((
            rule().in_set(&key, deny_ranges).counter().drop(),
            comments[1],
        ));
        out.push((
            rule()
                .in_set(&[Field::daddr(proto)], selected)
                .not_in_set(&key, allow)
                .not_in_set(&key, allow_ranges)
                .counter()
                .drop(),
            comments[2],
        ));
    }
    out
}

/// The set an entry goes in.
fn set_of(entry: &Entry) -> &'static str {
    let v4 = entry.daddr.is_ipv4();
    match (entry.action, entry.is_exact(), v4) {
        (Action::Allow, true, true) => ALLOW,
        (Action::Allow, false, true) => ALLOW_RANGES,
        (Action::Deny, true, true) => DENY,
        (Action::Deny, false, true) => DENY_RANGES,
        (Action::Allow, true, false) => ALLOW6,
        (Action::Allow, false, false) => ALLOW_RANGES6,
        (Action::Deny, true, false) => DENY6,
        (Action::Deny, false, false) => DENY_RANGES6,
    }
}

fn element_of(entry: &Entry) -> Element {
    let key = |source: IpAddr, proto: u8, port: u16| {
        Key::new()
            .ip(entry.daddr)
            .ip(source)
            .proto(proto)
            .port(port)
    };
    if entry.is_exact() {
        Element::Key(key(entry.source.0, entry.protos.0, entry.ports.0))
    } else {
        Element::Range {
            first: key(entry.source.0, entry.protos.0, entry.ports.0),
            last: key(entry.source.1, entry.protos.1, entry.ports.1),
        }
    }
}

/// Every `(set, element)` of `compiled`, grouped by set so ten thousand entries are a
/// few messages.
pub(super) fn policy_elements(compiled: &Compiled) -> Vec<(&'static str, Vec<Element>)> {
    let mut by_set: Vec<(&'static str, Vec<Element>)> =
        POLICY_SETS.iter().map(|s| (*s, Vec::new())).collect();
    let mut push = |set: &'static str, element: Element| {
        if let Some((_, list)) = by_set.iter_mut().find(|(s, _)| *s == set) {
            list.push(element);
        }
    };
    for ip in &compiled.selected {
        let set = if ip.is_ipv4() { SELECTED } else { SELECTED6 };
        push(set, Element::Key(Key::new().ip(*ip)));
    }
    for entry in &compiled.entries {
        push(set_of(entry), element_of(entry));
    }
    by_set.retain(|(_, list)| !list.is_empty());
    by_set
}

/// Adds `compiled`'s elements to `batch`.
pub(super) fn add_policy_elements(batch: &mut Batch, compiled: &Compiled) {
    for (set, elements) in policy_elements(compiled) {
        let what = format!("{} policy entries", elements.len());
        batch.add_elements(TABLE, set, &elements, &what);
    }
}

/// Withdraws `compiled`'s elements in `batch`: expired (`expire`) or deleted.
pub(super) fn withdraw_policy_elements(batch: &mut Batch, compiled: &Compiled, expire: bool) {
    for (set, elements) in policy_elements(compiled) {
        let what = format!("{} policy entries", elements.len());
        if expire {
            batch.expire_elements(TABLE, set, &elements, &what);
        } else {
            batch.destroy_elements(TABLE, set, &elements, &what);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(action: Action, source: (&str, &str), ports: (u16, u16)) -> Entry {
        Entry {
            action,
            daddr: "10.0.0.3".parse().unwrap(),
            source: (source.0.parse().unwrap(), source.1.parse().unwrap()),
            protos: (6, 6),
            ports,
        }
    }

    #[test]
    fn entries_go_to_the_set_of_their_shape() {
        let exact = entry(Action::Allow, ("10.0.0.2", "10.0.0.2"), (5432, 5432));
        let cidr = entry(
            Action::Allow,
            ("203.0.113.0", "203.0.113.255"),
            (5432, 5432),
        );
        let range = entry(Action::Deny, ("10.0.0.2", "10.0.0.2"), (1, 1024));
        assert_eq!(set_of(&exact), ALLOW);
        assert_eq!(set_of(&cidr), ALLOW_RANGES);
        assert_eq!(set_of(&range), DENY_RANGES);
        let Element::Key(key) = element_of(&exact) else {
            panic!("an exact entry is one key")
        };
        assert_eq!(key.as_bytes().len(), 4 + 4 + 4 + 4);
        assert!(matches!(element_of(&cidr), Element::Range { .. }));
    }

    #[test]
    fn the_rules_are_seven_whatever_the_entries() {
        assert_eq!(policy_rules().len(), 6);
        assert_eq!(policy_chain_rules().len(), 7);
        assert_eq!(policy_sets().len(), POLICY_SETS.len());
    }
}
