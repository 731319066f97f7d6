//! Policies to flow keys: what the firewall's policy sets must hold. Pure.
//!
//! A packet to a container is judged by its `destination . source . protocol . port`
//! (the container port, after DNAT). A policy becomes one [`Entry`] per destination
//! container it selects, per source (a container of the network, or a CIDR block), per
//! port range; an entry that names one source address, one protocol and one port goes
//! into a hash set (`policy_allow`, `policy_deny`), anything with a range into an
//! interval set (`..._ranges`). So the kernel makes a constant number of lookups per
//! packet however many policies and containers exist, and a policy's 10,000th entry is
//! an element, not a rule.
//!
//! Only destinations of the entry's own family pair with sources: an IPv4 CIDR admits
//! nothing to a container's IPv6 address, and a dual-stack source admits its IPv4
//! address to IPv4 destinations and its IPv6 address to IPv6 ones.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::model::policy::{Action, Member, Policy, Source};
use crate::model::Endpoint;

/// One flow key range, as the policy sets hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Entry {
    /// Allow or deny.
    pub action: Action,
    /// The destination container's address.
    pub daddr: IpAddr,
    /// The lowest and highest source address, inclusive (of `daddr`'s family).
    pub source: (IpAddr, IpAddr),
    /// The lowest and highest IP protocol number, inclusive.
    pub protos: (u8, u8),
    /// The lowest and highest destination port, inclusive.
    pub ports: (u16, u16),
}

impl Entry {
    /// True when it names one source, one protocol and one port: a hash set element.
    pub fn is_exact(&self) -> bool {
        self.source.0 == self.source.1
            && self.protos.0 == self.protos.1
            && self.ports.0 == self.ports.1
    }
}

/// What a set of policies needs in the kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Compiled {
    /// Addresses of containers some allow policy selects: they accept only what an
    /// allow entry admits.
    pub selected: BTreeSet<IpAddr>,
    /// Every entry.
    pub entries: BTreeSet<Entry>,
}

impl Compiled {
    /// Adds everything of `other`.
    pub fn extend(&mut self, other: Compiled) {
        self.selected.extend(other.selected);
        self.entries.extend(other.entries);
    }

    /// What `self` holds that `other` does not.
    pub fn minus(&self, other: &Compiled) -> Compiled {
        Compiled {
            selected: self.selected.difference(&other.selected).copied().collect(),
            entries: self.entries.difference(&other.entries).copied().collect(),
        }
    }

    /// True when it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.selected.is_empty() && self.entries.is_empty()
    }
}

/// How a selector sees an endpoint.
fn member_of<'a>(ep: &'a Endpoint, names: &'a [&'a str]) -> Member<'a> {
    Member {
        names,
        labels: &ep.labels,
    }
}

fn matches(selector: &crate::model::policy::Selector, ep: &Endpoint) -> bool {
    let names = ep.policy_names();
    selector.matches(&member_of(ep, &names))
}

/// Everything `policies` need, for the containers `members` (the ready endpoints of
/// their network).
pub fn compile(policies: &[Policy], members: &[Endpoint]) -> Compiled {
    let mut out = Compiled::default();
    for policy in policies {
        for dest in members.iter().filter(|ep| matches(&policy.to, ep)) {
            out.extend(destination_entries(policy, dest, members));
        }
    }
    out
}

/// What `policies` need because of the one container `member` (one of `members`): the
/// entries with it as destination, and those with it as a source. What an attach adds
/// and a detach removes, without compiling the whole network again.
///
/// An entry whose source is `member`'s address exactly may also be owed to a CIDR of
/// one address; those are left out, so removing the result never takes away what
/// another part of a policy still admits.
pub fn compile_member(policies: &[Policy], members: &[Endpoint], member: &Endpoint) -> Compiled {
    let mut out = Compiled::default();
    for policy in policies {
        if matches(&policy.to, member) {
            out.extend(destination_entries(policy, member, members));
        }
        let as_source = policy.from.iter().any(|source| match source {
            Source::Containers(selector) => matches(selector, member),
            Source::Cidr(_) => false,
        });
        if !as_source {
            continue;
        }
        let others = members.iter().filter(|ep| ep.id != member.id);
        for dest in others.filter(|ep| matches(&policy.to, ep)) {
            let sources = member.ips.iter().map(|ip| (*ip, *ip));
            out.entries
                .extend(entries(policy, dest, &sources.collect::<Vec<_>>()));
        }
    }
    let single_cidrs: BTreeSet<IpAddr> = policies
        .iter()
        .flat_map(|p| &p.from)
        .filter_map(|source| match source {
            Source::Cidr(net) if net.prefix_len() == net.max_prefix_len() => Some(net.addr()),
            _ => None,
        })
        .collect();
    out.entries.retain(|entry| {
        let exact_source = entry.source.0 == entry.source.1;
        member.ips.contains(&entry.daddr)
            || !(exact_source && single_cidrs.contains(&entry.source.0))
    });
    out
}

/// The entries `policy` makes for one destination it selects.
fn destination_entries(policy: &Policy, dest: &Endpoint, members: &[Endpoint]) -> Compiled {
    let mut out = Compiled::default();
    if policy.action == Action::Allow {
        out.selected.extend(dest.ips.iter().copied());
    }
    let mut sources: Vec<(IpAddr, IpAddr)> = Vec::new();
    if policy.from.is_empty() {
        sources.push(any(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
        sources.push(any(IpAddr::V6(Ipv6Addr::UNSPECIFIED)));
    }
    for source in &policy.from {
        match source {
            Source::Cidr(net) => sources.push((net.network(), net.broadcast())),
            Source::Containers(selector) => {
                let chosen = members.iter().filter(|ep| matches(selector, ep));
                sources.extend(chosen.flat_map(|ep| ep.ips.iter().map(|ip| (*ip, *ip))));
            }
        }
    }
    out.entries.extend(entries(policy, dest, &sources));
    out
}

/// Every address of `ip`'s family.
fn any(ip: IpAddr) -> (IpAddr, IpAddr) {
    match ip {
        IpAddr::V4(_) => (Ipv4Addr::UNSPECIFIED.into(), Ipv4Addr::BROADCAST.into()),
        IpAddr::V6(_) => (
            Ipv6Addr::UNSPECIFIED.into(),
            Ipv6Addr::from(u128::MAX).into(),
        ),
    }
}

/// The entries of `policy` to `dest` from `sources`, family by family.
fn entries(policy: &Policy, dest: &Endpoint, sources: &[(IpAddr, IpAddr)]) -> Vec<Entry> {
    let ports: Vec<((u8, u8), (u16, u16))> = if policy.ports.is_empty() {
        vec![((0, u8::MAX), (0, u16::MAX))]
    } else {
        policy
            .ports
            .iter()
            .map(|p| ((p.proto.number(), p.proto.number()), (p.first, p.last)))
            .collect()
    };
    let mut out = Vec::new();
    for daddr in &dest.ips {
        for source in sources.iter().filter(|s| s.0.is_ipv4() == daddr.is_ipv4()) {
            for (protos, range) in &ports {
                out.push(Entry {
                    action: policy.action,
                    daddr: *daddr,
                    source: *source,
                    protos: *protos,
                    ports: *range,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::policy::{Labels, PolicyName, PortRange, Selector};
    use crate::model::NetworkName;

    fn ep(id: i64, name: &str, labels: &[&str], ips: &[&str]) -> Endpoint {
        let mut ep = crate::driver::macvlan::tests::endpoint(ips[0], false);
        ep.id = id;
        ep.container = name.to_string();
        ep.ips = ips.iter().map(|ip| ip.parse().unwrap()).collect();
        ep.labels = Labels::parse(labels).unwrap();
        ep
    }

    fn policy(to: &str, from: &[&str], ports: &[&str], action: Action) -> Policy {
        Policy {
            name: PolicyName::new("p").unwrap(),
            network: NetworkName::new("n").unwrap(),
            to: Selector::parse("--to", to).unwrap(),
            from: from.iter().map(|f| Source::parse(f).unwrap()).collect(),
            ports: ports.iter().map(|p| PortRange::parse(p).unwrap()).collect(),
            action,
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn network() -> Vec<Endpoint> {
        vec![
            ep(1, "web", &["role=web"], &["10.0.0.2", "fd00::2"]),
            ep(2, "db", &["role=db"], &["10.0.0.3", "fd00::3"]),
            ep(3, "other", &[], &["10.0.0.4", "fd00::4"]),
        ]
    }

    #[test]
    fn allow_web_to_db() {
        let members = network();
        let p = policy("role=db", &["role=web"], &["5432/tcp"], Action::Allow);
        let out = compile(&[p], &members);
        assert_eq!(out.selected, [ip("10.0.0.3"), ip("fd00::3")].into());
        let exact: Vec<_> = out.entries.iter().filter(|e| e.is_exact()).collect();
        assert_eq!(exact.len(), 2, "one per family: {:?}", out.entries);
        let v4 = exact.iter().find(|e| e.daddr.is_ipv4()).unwrap();
        assert_eq!(v4.source, (ip("10.0.0.2"), ip("10.0.0.2")));
        assert_eq!((v4.protos, v4.ports), ((6, 6), (5432, 5432)));
    }

    #[test]
    fn no_from_and_no_port_mean_anything() {
        let members = network();
        let out = compile(&[policy("name=db", &[], &[], Action::Allow)], &members);
        assert_eq!(out.entries.len(), 2);
        for e in &out.entries {
            assert!(!e.is_exact());
            assert_eq!((e.protos, e.ports), ((0, 255), (0, 65535)));
        }
    }

    #[test]
    fn cidr_pairs_with_its_own_family_only() {
        let members = network();
        let p = policy(
            "role=db",
            &["203.0.113.0/24"],
            &["8000-8099/udp"],
            Action::Allow,
        );
        let out = compile(&[p], &members);
        assert_eq!(out.entries.len(), 1);
        let e = out.entries.iter().next().unwrap();
        assert_eq!(e.source, (ip("203.0.113.0"), ip("203.0.113.255")));
        assert_eq!((e.protos, e.ports), ((17, 17), (8000, 8099)));
    }

    #[test]
    fn deny_selects_nothing() {
        let members = network();
        let out = compile(
            &[policy("role=db", &["name=web"], &["22"], Action::Deny)],
            &members,
        );
        assert!(
            out.selected.is_empty(),
            "a deny policy does not close a container"
        );
        assert!(out.entries.iter().all(|e| e.action == Action::Deny));
        assert_eq!(out.entries.len(), 2);
    }

    #[test]
    fn member_part_is_what_the_whole_gains() {
        let members = network();
        let policies = [
            policy("role=db", &["role=web"], &["5432"], Action::Allow),
            policy("role=web", &["all"], &["80"], Action::Allow),
            policy(
                "role=db",
                &["role=web", "198.51.100.7"],
                &["22"],
                Action::Deny,
            ),
        ];
        for member in &members {
            let without: Vec<Endpoint> = members
                .iter()
                .filter(|ep| ep.id != member.id)
                .cloned()
                .collect();
            let gained = compile(&policies, &members).minus(&compile(&policies, &without));
            let part = compile_member(&policies, &members, member);
            assert_eq!(part, gained, "member {}", member.container);
        }
    }

    #[test]
    fn member_part_keeps_what_a_single_address_cidr_admits() {
        let members = network();
        let policies = [policy(
            "role=db",
            &["role=web", "10.0.0.2"],
            &["5432"],
            Action::Allow,
        )];
        let web = &members[0];
        let part = compile_member(&policies, &members, web);
        assert!(
            part.entries.iter().all(|e| e.source.0 != ip("10.0.0.2")),
            "the CIDR 10.0.0.2/32 still admits web's address: {part:?}"
        );
    }

    #[test]
    fn ten_thousand_ports_are_ten_thousand_exact_entries() {
        let members = network();
        let ports: Vec<String> = (1..=10_000).map(|p| p.to_string()).collect();
        let ports: Vec<&str> = ports.iter().map(String::as_str).collect();
        let p = policy("role=db", &["role=web"], &ports, Action::Allow);
        let out = compile(&[p], &members);
        assert_eq!(out.entries.iter().filter(|e| e.is_exact()).count(), 20_000);
    }
}
