//! ctnet's second table, `bridge ctnet`: anti-spoofing at layer 2, always on.
//!
//! A container's frames leave its veth only with its own MAC and its own addresses, and
//! its ARP and neighbour advertisements claim only its own addresses. The check has to
//! sit in the bridge family: a frame from one container to another on the same bridge
//! never passes the `inet` hooks (unless br_netfilter is on), and ARP never does. The
//! rules are fixed; each guarded container is elements, so the thousandth container costs
//! elements, not rules, and each frame a few hash lookups however many there are:
//!
//! ```text
//! table bridge ctnet {                                       # comment carries GUARD_LAYOUT
//!   set spoof_ports { ifname; flags timeout; counter }       # host sides of guarded veths;
//!                                                            #   each counts its dropped frames
//!   set spoof_mac   { ifname . ether_addr; flags timeout }   # port . the container's MAC
//!   set spoof_ip4   { ifname . ipv4_addr; flags timeout }    # port . its IPv4 address
//!   set spoof_ip6   { ifname . ipv6_addr; flags timeout }    # port . its IPv6 addresses
//!                                                            #   (global and fe80:: EUI-64)
//!   chain antispoof { filter prerouting -200:   (frames entering the bridge from a port)
//!     iifname . ether saddr != @spoof_mac                              iifname @spoof_ports drop
//!     ether type != { ip, ip6, arp }  (VLAN tags, PPPoE, ...)          iifname @spoof_ports drop
//!     ether type ip   iifname . ip saddr != @spoof_ip4                 iifname @spoof_ports drop
//!     ether type arp  arp htype . ptype . hlen . plen != 1 . ip . 6 . 4 iifname @spoof_ports drop
//!     ether type arp  iifname . arp saddr ether != @spoof_mac          iifname @spoof_ports drop
//!     ether type arp  arp saddr ip != 0.0.0.0
//!                     iifname . arp saddr ip != @spoof_ip4             iifname @spoof_ports drop
//!     ether type ip6  ip6 saddr != :: iifname . ip6 saddr != @spoof_ip6 iifname @spoof_ports drop
//!     ether type ip6  ip6 saddr :: meta l4proto != icmpv6              iifname @spoof_ports drop
//!     ether type ip6  icmpv6 type nd-neighbor-advert
//!                     iifname . nd target != @spoof_ip6                iifname @spoof_ports drop
//!     ether type ip6  icmpv6 type nd-router-advert                     iifname @spoof_ports drop
//!     ether type ip6  icmpv6 type nd-redirect                          iifname @spoof_ports drop
//!   }
//! }
//! ```
//!
//! Every rule first finds the frame wrong (an inverted lookup: the pair is not the
//! port's), and only then looks its port up in `spoof_ports`: a port that is not there
//! (the bridge's own frames, an unguarded port) is never dropped, and the lookup that
//! finds the port is the one that counts, so each element's counter is the number of
//! frames dropped for that container (`ctnet inspect` shows it). A frame that is right
//! costs one inverted lookup per rule of its EtherType.
//!
//! What it does not check: a neighbour solicitation's or advertisement's link-layer
//! address option. Its sender address (and an advertisement's target) is checked, so the
//! option can only name a MAC for the container's own address: that misdirects only
//! traffic to the container itself. ARP sender MACs are checked, as ARP has no source
//! address besides them. An address of `::` is what detection and MLD reports use before
//! an interface has an address; only ICMPv6 may come from it, and it claims nothing.
//!
//! Withdrawing a container's elements: as for published ports, they are expired (one
//! clock tick from now), not deleted, on Linux 6.10 and later, so a detach does not leave
//! an RCU grace period behind for the next nf_tables socket's close to wait for (see
//! `mod.rs`, "Withdrawing a port"). The sets take timeouts for that reason only; no
//! element is added with one.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ctnet_kernel::IfName;
use ctnet_nft::{
    BaseChain, Batch, ChainType, Element, ElementInfo, Family, Field, Hook, Key, KeyField, Rule,
    SetSpec, TableRef,
};

use super::{kernel_expires_elements, Firewall, Rewrite};

/// The anti-spoofing table.
pub const GUARD_TABLE: TableRef = TableRef::new(Family::Bridge, "ctnet");
/// Its comment, which also names the layout this code writes: a table with any other
/// comment, chain or set is deleted and made again in one batch.
pub const GUARD_LAYOUT: &str = "managed by ctnet: anti-spoofing, layout 1; edits are overwritten";
/// The one base chain.
pub const GUARD_CHAIN: &str = "antispoof";
/// The guarded ports, each with the counter of the frames dropped for it.
pub const SPOOF_PORTS: &str = "spoof_ports";
const SPOOF_MAC: &str = "spoof_mac";
const SPOOF_IP4: &str = "spoof_ip4";
const SPOOF_IP6: &str = "spoof_ip6";

/// nft's `filter` priority in the bridge family.
const BRIDGE_FILTER: i32 = -200;

const ETH_P_IP: u16 = 0x0800;
const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IPV6: u16 = 0x86dd;
const IPPROTO_ICMPV6: u8 = 58;
const ND_ROUTER_ADVERT: u8 = 134;
const ND_NEIGHBOR_ADVERT: u8 = 136;
const ND_REDIRECT: u8 = 137;
/// ARP for Ethernet (htype 1) and IPv4 (ptype 0x0800), 6-byte and 4-byte addresses.
const ARP_ETHERNET_IPV4: [u8; 6] = [0, 1, 8, 0, 6, 4];

/// One container's port as the anti-spoofing table sees it: what may come from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortGuard {
    /// The host side of the container's veth: the bridge port its frames enter by.
    pub port: IfName,
    /// The container interface's MAC.
    pub mac: [u8; 6],
    /// Every source address the container may use, IPv6 link-local included.
    pub ips: Vec<IpAddr>,
}

/// How the anti-spoofing table in the kernel differs from the layout and the store.
#[derive(Debug, Clone, Default)]
pub struct GuardAudit {
    /// The table's comment; `None` when there is no table.
    pub comment: Option<String>,
    /// Chains, sets and rules that are not the layout's, one sentence each.
    pub structure: Vec<String>,
    /// Elements the store calls for that the table lacks, as `set: element`.
    pub missing_elements: Vec<String>,
    /// Elements the store does not explain, as `set: element`.
    pub unexplained_elements: Vec<String>,
    unexplained_listed: Vec<(&'static str, ElementInfo)>,
}

impl GuardAudit {
    /// The table is there.
    pub fn exists(&self) -> bool {
        self.comment.is_some()
    }

    /// Nothing differs.
    pub fn is_clean(&self) -> bool {
        self.exists()
            && self.structure.is_empty()
            && self.missing_elements.is_empty()
            && self.unexplained_elements.is_empty()
    }

    /// Every difference, one sentence each.
    pub fn differences(&self) -> Vec<String> {
        if !self.exists() {
            return vec![format!("table {GUARD_TABLE} is missing")];
        }
        let mut out = self.structure.clone();
        if !self.missing_elements.is_empty() {
            out.push(format!(
                "{} anti-spoofing elements the store calls for are missing ({})",
                self.missing_elements.len(),
                super::audit::abbreviated(&self.missing_elements)
            ));
        }
        if !self.unexplained_elements.is_empty() {
            out.push(format!(
                "{} anti-spoofing elements the store does not explain ({})",
                self.unexplained_elements.len(),
                super::audit::abbreviated(&self.unexplained_elements)
            ));
        }
        out
    }
}

/// The sets, each with its key.
fn guard_sets() -> [SetSpec; 4] {
    use KeyField::{EtherAddr, IfName, Ipv4Addr, Ipv6Addr};
    [
        SetSpec::exact(SPOOF_PORTS, vec![IfName])
            .with_timeouts()
            .with_counters(),
        SetSpec::exact(SPOOF_MAC, vec![IfName, EtherAddr]).with_timeouts(),
        SetSpec::exact(SPOOF_IP4, vec![IfName, Ipv4Addr]).with_timeouts(),
        SetSpec::exact(SPOOF_IP6, vec![IfName, Ipv6Addr]).with_timeouts(),
    ]
}

fn guard_base() -> BaseChain {
    BaseChain {
        kind: ChainType::Filter,
        hook: Hook::Prerouting,
        priority: BRIDGE_FILTER,
    }
}

/// The chain's rules with their comments; see the drawing.
fn guard_rules() -> Vec<(Rule, &'static str)> {
    use Field::{ArpFormat, ArpSha, ArpSpa, EtherSaddr, IifName, Ip6Saddr, IpSaddr, NdTarget};
    // Each rule's last match: the frame came from a guarded port, whose counter counts it.
    let dropped = |rule: Rule| rule.in_set(&[IifName], SPOOF_PORTS).drop();
    let ipv6 = || Rule::new().ether_type(ETH_P_IPV6);
    let icmpv6 = |kind: u8| {
        ipv6()
            .l4proto(IPPROTO_ICMPV6)
            .field_eq(Field::Icmpv6Type, &[kind])
    };
    vec![
        (
            dropped(Rule::new().not_in_set(&[IifName, EtherSaddr], SPOOF_MAC)),
            "frames from a container carry its own MAC",
        ),
        (
            dropped(
                Rule::new()
                    .ether_type_neq(ETH_P_IP)
                    .ether_type_neq(ETH_P_IPV6)
                    .ether_type_neq(ETH_P_ARP),
            ),
            "containers send IPv4, IPv6 and ARP only (no VLAN tags)",
        ),
        (
            dropped(
                Rule::new()
                    .ether_type(ETH_P_IP)
                    .not_in_set(&[IifName, IpSaddr], SPOOF_IP4),
            ),
            "IPv4 from a container has its own source address",
        ),
        (
            dropped(
                Rule::new()
                    .ether_type(ETH_P_ARP)
                    .field_neq(ArpFormat, &ARP_ETHERNET_IPV4),
            ),
            "ARP from a container is for Ethernet and IPv4",
        ),
        (
            dropped(
                Rule::new()
                    .ether_type(ETH_P_ARP)
                    .not_in_set(&[IifName, ArpSha], SPOOF_MAC),
            ),
            "ARP from a container names its own MAC",
        ),
        (
            dropped(
                Rule::new()
                    .ether_type(ETH_P_ARP)
                    .field_neq(ArpSpa, &[0; 4])
                    .not_in_set(&[IifName, ArpSpa], SPOOF_IP4),
            ),
            "ARP from a container claims its own address (0.0.0.0 probes pass)",
        ),
        (
            dropped(
                ipv6()
                    .field_neq(Ip6Saddr, &[0; 16])
                    .not_in_set(&[IifName, Ip6Saddr], SPOOF_IP6),
            ),
            "IPv6 from a container has its own source address",
        ),
        (
            dropped(
                ipv6()
                    .field_eq(Ip6Saddr, &[0; 16])
                    .field_neq(Field::L4Proto, &[IPPROTO_ICMPV6]),
            ),
            "from :: a container sends only ICMPv6 (detection, MLD)",
        ),
        (
            dropped(icmpv6(ND_NEIGHBOR_ADVERT).not_in_set(&[IifName, NdTarget], SPOOF_IP6)),
            "neighbour advertisements from a container claim its own addresses",
        ),
        (
            dropped(icmpv6(ND_ROUTER_ADVERT)),
            "no router advertisements from containers (CVE-2020-13401)",
        ),
        (dropped(icmpv6(ND_REDIRECT)), "no redirects from containers"),
    ]
}

/// `(set, element)` pairs of one guarded port.
fn guard_elements(guard: &PortGuard) -> Vec<(&'static str, Element)> {
    let port = || Key::new().ifname(&guard.port);
    let mut out = vec![
        (SPOOF_PORTS, Element::Key(port())),
        (SPOOF_MAC, Element::Key(port().mac(guard.mac))),
    ];
    for ip in &guard.ips {
        let set = if ip.is_ipv4() { SPOOF_IP4 } else { SPOOF_IP6 };
        out.push((set, Element::Key(port().ip(*ip))));
    }
    out
}

/// Elements grouped by set, so a rewrite of a thousand ports is a few messages.
/// Adds `guards`' elements to `batch`, as [`Firewall::add_guards`] does in one of its
/// own.
pub(super) fn add_guard_elements(batch: &mut ctnet_nft::Batch, guards: &[PortGuard]) {
    add_elements(batch, guards);
}

/// Expires `guards`' elements in `batch`, as [`Firewall::remove_guards`] does in one of
/// its own.
pub(super) fn expire_guard_elements(batch: &mut ctnet_nft::Batch, guards: &[PortGuard]) {
    let what = describe(guards);
    for (set, elements) in by_set(guards) {
        batch.expire_elements(GUARD_TABLE, set, &elements, &what);
    }
}

fn by_set(guards: &[PortGuard]) -> BTreeMap<&'static str, Vec<Element>> {
    let mut out: BTreeMap<&'static str, Vec<Element>> = BTreeMap::new();
    for guard in guards {
        for (set, element) in guard_elements(guard) {
            out.entry(set).or_default().push(element);
        }
    }
    out
}

fn describe(guards: &[PortGuard]) -> String {
    match guards {
        [one] => format!("the container on port {}", one.port),
        many => format!("{} container ports", many.len()),
    }
}

/// The table, its sets and its chain with the rules, from nothing (the batch deletes any
/// table of the name first), and the elements of `guards`.
fn add_guard_table(batch: &mut Batch, guards: &[PortGuard]) {
    batch.destroy_table(GUARD_TABLE);
    batch.add_table(GUARD_TABLE, GUARD_LAYOUT, false);
    for set in guard_sets() {
        batch.add_set(GUARD_TABLE, &set);
    }
    batch.add_chain(GUARD_TABLE, GUARD_CHAIN, Some(guard_base()));
    for (rule, comment) in guard_rules() {
        batch.add_rule(GUARD_TABLE, GUARD_CHAIN, rule.exprs(), comment);
    }
    add_elements(batch, guards);
}

fn add_elements(batch: &mut Batch, guards: &[PortGuard]) {
    let what = describe(guards);
    for (set, elements) in by_set(guards) {
        batch.add_elements(GUARD_TABLE, set, &elements, &what);
    }
}

impl Firewall {
    /// True when the anti-spoofing table exists in this layout with its chain's rules:
    /// two questions to the kernel (the table's comment, its rules), asked once per
    /// process, whatever the number of guarded ports (no element is read). A deleted
    /// chain has no rules; a set cannot be deleted while a rule refers to it. A foreign
    /// chain added to the table is `ctnet gc`'s and doctor's to find.
    pub fn guard_is_current(&mut self) -> ctnet_kernel::Result<bool> {
        if !self.guard_checked && self.known().is_some_and(|k| k.guard) {
            self.guard_checked = true;
        }
        if !self.guard_checked {
            self.refresh_known();
            let socket = self.socket()?;
            self.guard_checked = socket.table_comment(GUARD_TABLE)?.as_deref()
                == Some(GUARD_LAYOUT)
                && rule_differences(&socket.list_rules(GUARD_TABLE)?).is_empty();
            if self.guard_checked {
                self.note_verified(|k| k.guard = true);
            }
        }
        Ok(self.guard_checked)
    }

    /// Adds the elements of guarded ports, in one batch. The table must be current
    /// ([`Firewall::guard_is_current`]); adding what is there already is not an error.
    pub fn add_guards(&mut self, guards: &[PortGuard]) -> ctnet_kernel::Result<()> {
        if guards.is_empty() {
            return Ok(());
        }
        let socket = self.socket()?;
        let mut batch = socket.batch();
        add_elements(&mut batch, guards);
        socket.commit(batch)
    }

    /// Withdraws the elements of guarded ports: expired on Linux 6.10 and later (see the
    /// module documentation), else deleted. Elements or a table already gone are fine.
    pub fn remove_guards(&mut self, guards: &[PortGuard]) -> ctnet_kernel::Result<()> {
        // (The batch with ports and policy entries: `Firewall::remove_endpoint`.)
        if guards.is_empty() {
            return Ok(());
        }
        let what = describe(guards);
        let socket = self.socket()?;
        if kernel_expires_elements() {
            let mut batch = socket.batch();
            for (set, elements) in by_set(guards) {
                batch.expire_elements(GUARD_TABLE, set, &elements, &what);
            }
            // Refused (the table is gone, or of an older layout): nothing of it was
            // done, and a delete says which.
            if socket.commit(batch).is_ok() {
                return Ok(());
            }
        }
        let mut batch = socket.batch();
        for (set, elements) in by_set(guards) {
            batch.destroy_elements(GUARD_TABLE, set, &elements, &what);
        }
        match socket.commit(batch) {
            Err(e) if e.is_not_found() && socket.table_comment(GUARD_TABLE)?.is_none() => Ok(()),
            other => other,
        }
    }

    /// The number of frames dropped for `port` since its element was added; `None` when
    /// the port has no element (not guarded, or the table is gone).
    pub fn spoofed_frames(&mut self, port: &IfName) -> ctnet_kernel::Result<Option<u64>> {
        let socket = self.socket()?;
        if socket.table_comment(GUARD_TABLE)?.is_none() {
            return Ok(None);
        }
        let counter = socket.element_counter(GUARD_TABLE, SPOOF_PORTS, &Key::new().ifname(port))?;
        Ok(counter.map(|(packets, _)| packets))
    }

    /// Compares the anti-spoofing table with its layout and, given `guards`, its
    /// elements with them.
    pub fn audit_guard(
        &mut self,
        guards: Option<&[PortGuard]>,
    ) -> ctnet_kernel::Result<GuardAudit> {
        let socket = self.socket()?;
        let mut audit = GuardAudit {
            comment: socket.table_comment(GUARD_TABLE)?,
            ..GuardAudit::default()
        };
        let Some(comment) = &audit.comment else {
            return Ok(audit);
        };
        if comment != GUARD_LAYOUT {
            audit.structure.push(format!(
                "table {GUARD_TABLE} has another layout (comment {comment:?})"
            ));
        }
        let chains: Vec<_> = socket
            .list_chains()?
            .into_iter()
            .filter(|c| c.family == GUARD_TABLE.family && c.table == GUARD_TABLE.name)
            .collect();
        let base = guard_base();
        match chains.iter().find(|c| c.name == GUARD_CHAIN) {
            None => audit
                .structure
                .push(format!("chain {GUARD_CHAIN} is missing")),
            Some(c) if c.hook != Some((base.hook, base.priority)) || c.kind != Some(base.kind) => {
                audit
                    .structure
                    .push(format!("chain {GUARD_CHAIN} is hooked differently"))
            }
            Some(c) if c.policy_drop => audit
                .structure
                .push(format!("chain {GUARD_CHAIN} has policy drop")),
            Some(_) => {}
        }
        for c in chains.iter().filter(|c| c.name != GUARD_CHAIN) {
            audit
                .structure
                .push(format!("chain {} is not ctnet's", c.name));
        }
        let rules = socket.list_rules(GUARD_TABLE)?;
        audit.structure.extend(rule_differences(&rules));
        let listed_sets = socket.list_sets(GUARD_TABLE)?;
        let sets = guard_sets();
        for set in &sets {
            if !listed_sets.contains(&set.name) {
                audit.structure.push(format!("set {} is missing", set.name));
            }
        }
        for name in &listed_sets {
            if !sets.iter().any(|s| &s.name == name) {
                audit.structure.push(format!("set {name} is not ctnet's"));
            }
        }
        let Some(guards) = guards else {
            return Ok(audit);
        };
        let expected = by_set(guards);
        for set in &sets {
            let name = set.name.as_str();
            let mut want: Vec<ElementInfo> = expected
                .get(name)
                .into_iter()
                .flatten()
                .flat_map(Element::as_listed)
                .collect();
            let mut have = if listed_sets.contains(&set.name) {
                socket.list_elements(GUARD_TABLE, name)?
            } else {
                Vec::new()
            };
            want.sort();
            want.dedup();
            have.sort();
            let render = |e: &ElementInfo| format!("{name}: {}", render_key(set, &e.key));
            for e in want.iter().filter(|e| !have.contains(e)) {
                audit.missing_elements.push(render(e));
            }
            let static_name = sets_name(name);
            for e in have.into_iter().filter(|e| !want.contains(e)) {
                audit.unexplained_elements.push(render(&e));
                audit.unexplained_listed.push((static_name, e));
            }
        }
        Ok(audit)
    }

    /// Makes the anti-spoofing table hold its layout and the guarded ports of
    /// `contents`, and says what was wrong: elements added in place when only they
    /// differ, else the table made again whole in one batch. Elements the store does not
    /// explain are removed with `remove_unexplained` (`ctnet gc`), else kept. Like the
    /// inet table, it is made with the first network: a host without networks, guarded
    /// ports or a table stays without one. The caller holds the store's write lock.
    pub fn rewrite_guard(
        &mut self,
        contents: &super::Contents,
        remove_unexplained: bool,
    ) -> ctnet_kernel::Result<Rewrite> {
        let guards = contents.guards.as_slice();
        let audit = self.audit_guard(Some(guards))?;
        let mut report = Rewrite::default();
        if !audit.exists() && guards.is_empty() && contents.networks.is_empty() {
            return Ok(report);
        }
        let stray = if remove_unexplained {
            report.removed_elements = audit.unexplained_elements.clone();
            audit.unexplained_elements.clone()
        } else {
            Vec::new()
        };
        let clean = audit.missing_elements.is_empty() && stray.is_empty() && {
            audit.exists() && audit.structure.is_empty()
        };
        if clean {
            self.guard_checked = true;
            return Ok(report);
        }
        let mut lines = audit.differences();
        if !remove_unexplained {
            lines.retain(|l| !l.contains("does not explain"));
        }
        report.repaired = lines;
        let socket = self.socket()?;
        let mut batch = socket.batch();
        if audit.exists() && audit.structure.is_empty() {
            add_elements(&mut batch, guards);
            if remove_unexplained {
                for (set, e) in &audit.unexplained_listed {
                    batch.destroy_elements(
                        GUARD_TABLE,
                        set,
                        &[Element::Key(Key::from_bytes(&e.key))],
                        "an element the store does not explain",
                    );
                }
            }
        } else {
            report.recreated = audit.exists();
            add_guard_table(&mut batch, guards);
            if !remove_unexplained {
                let mut kept: BTreeMap<&str, Vec<ElementInfo>> = BTreeMap::new();
                for (set, e) in &audit.unexplained_listed {
                    kept.entry(set).or_default().push(e.clone());
                }
                for (set, elements) in kept {
                    batch.add_listed_elements(GUARD_TABLE, set, &elements, "elements kept");
                }
            }
        }
        socket.commit(batch)?;
        self.guard_checked = true;
        Ok(report)
    }
}

/// How the chain's rules differ from the layout's (by count, comment or expressions).
fn rule_differences(rules: &[ctnet_nft::RuleInfo]) -> Vec<String> {
    let rules: Vec<_> = rules.iter().filter(|r| r.chain == GUARD_CHAIN).collect();
    let layout = guard_rules();
    if rules.len() != layout.len() {
        return vec![format!(
            "chain {GUARD_CHAIN} has {} rules, the layout {}",
            rules.len(),
            layout.len()
        )];
    }
    let changed = rules
        .iter()
        .zip(&layout)
        .position(|(have, (rule, comment))| {
            have.comment != *comment
                || !have
                    .expression_names
                    .iter()
                    .map(AsRef::as_ref)
                    .eq(rule.exprs().iter().map(|e| e.name()))
        });
    changed
        .map(|i| {
            format!(
                "rule {} of chain {GUARD_CHAIN} (handle {}) is not the layout's `{}`",
                i + 1,
                rules[i].handle,
                layout[i].1
            )
        })
        .into_iter()
        .collect()
}

/// The layout's own name for a set listed by the kernel.
fn sets_name(name: &str) -> &'static str {
    [SPOOF_PORTS, SPOOF_MAC, SPOOF_IP4, SPOOF_IP6]
        .into_iter()
        .find(|n| *n == name)
        .unwrap_or(SPOOF_PORTS)
}

/// A key in nft's words, e.g. `veth1a2b3c4 . 02:42:0a:00:00:02`.
fn render_key(set: &SetSpec, mut bytes: &[u8]) -> String {
    let mut parts = Vec::new();
    for field in &set.key {
        let len = field.byte_len() as usize;
        let Some(value) = bytes.get(..len) else {
            break;
        };
        parts.push(match field {
            KeyField::IfName => String::from_utf8_lossy(value)
                .trim_end_matches('\0')
                .to_string(),
            KeyField::EtherAddr => value
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":"),
            KeyField::Ipv4Addr => {
                IpAddr::from(<[u8; 4]>::try_from(value).unwrap_or_default()).to_string()
            }
            KeyField::Ipv6Addr => {
                IpAddr::from(<[u8; 16]>::try_from(value).unwrap_or_default()).to_string()
            }
            _ => format!("{value:02x?}"),
        });
        let step = if set.key.len() > 1 {
            len.next_multiple_of(4)
        } else {
            len
        };
        bytes = bytes.get(step..).unwrap_or_default();
    }
    parts.join(" . ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> PortGuard {
        PortGuard {
            port: IfName::new("veth1234567").unwrap(),
            mac: [2, 0x42, 10, 1, 0, 2],
            ips: vec![
                "10.1.0.2".parse().unwrap(),
                "fd00:1::2".parse().unwrap(),
                "fe80::42:aff:fe01:2".parse().unwrap(),
            ],
        }
    }

    #[test]
    fn a_port_is_one_element_per_set_and_address() {
        let rendered: Vec<String> = guard_elements(&guard())
            .into_iter()
            .map(|(set, e)| {
                let spec = guard_sets().into_iter().find(|s| s.name == set).unwrap();
                let Element::Key(key) = e else {
                    panic!("plain keys only")
                };
                format!("{set}: {}", render_key(&spec, key.as_bytes()))
            })
            .collect();
        assert_eq!(
            rendered,
            [
                "spoof_ports: veth1234567",
                "spoof_mac: veth1234567 . 02:42:0a:01:00:02",
                "spoof_ip4: veth1234567 . 10.1.0.2",
                "spoof_ip6: veth1234567 . fd00:1::2",
                "spoof_ip6: veth1234567 . fe80::42:aff:fe01:2",
            ]
        );
    }

    /// Every rule drops, and only after finding its port in `spoof_ports` (the lookup
    /// whose element counts): a port that is not guarded is never dropped, and the count
    /// is per container.
    #[test]
    fn every_rule_ends_by_finding_its_port_then_drops() {
        let port_lookup = ctnet_nft::Expr::Lookup {
            set: SPOOF_PORTS.into(),
            sreg: ctnet_nft::Register::R0,
            invert: false,
        };
        for (rule, comment) in guard_rules() {
            let exprs = rule.exprs();
            let n = exprs.len();
            assert_eq!(
                exprs[n - 1],
                ctnet_nft::Expr::Verdict(ctnet_nft::Verdict::Drop),
                "{comment}"
            );
            assert_eq!(exprs[n - 2], port_lookup, "{comment}");
            assert_eq!(
                exprs.iter().filter(|e| **e == port_lookup).count(),
                1,
                "{comment}"
            );
            // The port's name must be in R0 when it is looked up.
            let loads_iifname_last = exprs[..n - 2]
                .iter()
                .rev()
                .find(|e| match e {
                    ctnet_nft::Expr::Meta { dreg, .. } | ctnet_nft::Expr::Payload { dreg, .. } => {
                        *dreg == ctnet_nft::Register::R0
                    }
                    _ => false,
                })
                .is_some_and(|e| *e == Field::IifName.load(ctnet_nft::Register::R0));
            assert!(loads_iifname_last, "{comment}");
        }
    }

    /// The chain as text; a change shows as a diff and calls for a new GUARD_LAYOUT.
    #[test]
    #[cfg(target_endian = "little")]
    fn the_guard_chain_is_this_layout() {
        let mut out = format!("table {GUARD_TABLE} # {GUARD_LAYOUT}\n");
        for set in guard_sets() {
            out += &format!("  {set}\n");
        }
        out += &format!("  chain {GUARD_CHAIN} {{ {} }}\n", guard_base());
        for (rule, comment) in guard_rules() {
            out += &format!("    # {comment}\n");
            for e in rule.exprs() {
                out += &format!("      {e}\n");
            }
        }
        let want = include_str!("antispoof.layout");
        assert!(
            out == want,
            "the anti-spoofing layout changed; if on purpose, bump GUARD_LAYOUT and write antispoof.layout:\n{out}"
        );
    }

    #[test]
    fn the_layouts_rules_show_no_difference_and_an_inserted_one_does() {
        let mut listed: Vec<ctnet_nft::RuleInfo> = guard_rules()
            .into_iter()
            .enumerate()
            .map(|(i, (rule, comment))| ctnet_nft::RuleInfo {
                table: GUARD_TABLE.name.into(),
                chain: GUARD_CHAIN.into(),
                handle: i as u64 + 1,
                comment: comment.into(),
                expression_names: rule.exprs().iter().map(|e| e.name().into()).collect(),
                expressions: Vec::new(),
                userdata: Vec::new(),
                uses_anonymous_set: false,
            })
            .collect();
        assert!(rule_differences(&listed).is_empty());
        let mut accept_all = listed[0].clone();
        accept_all.comment = String::new();
        accept_all.expression_names = vec!["immediate".into()];
        listed.insert(0, accept_all);
        assert_eq!(
            rule_differences(&listed),
            ["chain antispoof has 12 rules, the layout 11"]
        );
        listed.remove(0);
        listed[2].comment = "edited".into();
        assert!(rule_differences(&listed)[0].starts_with("rule 3 of chain antispoof"));
        assert_eq!(
            rule_differences(&[]),
            ["chain antispoof has 0 rules, the layout 11"]
        );
    }

    #[test]
    fn an_audit_without_a_table_says_so() {
        assert_eq!(
            GuardAudit::default().differences(),
            ["table bridge ctnet is missing"]
        );
        let clean = GuardAudit {
            comment: Some(GUARD_LAYOUT.into()),
            ..GuardAudit::default()
        };
        assert!(clean.is_clean() && clean.differences().is_empty());
    }
}
