//! ctnet's table in the kernel against its layout (see the drawing in `mod.rs`) and
//! against what the store says it must hold, and the rewrite that puts it right.
//!
//! ```text
//!  kernel: table inet ctnet ──┬─ comment        == LAYOUT?
//!                             ├─ chains         == user + the five base chains (hooks, policy accept)?
//!                             ├─ rules          == the layout's, chain by chain (comment and expressions)?
//!                             ├─ sets           == the fourteen of the layout?
//!                             └─ elements       == the store's networks and published ports?
//!
//!  rewrite:  structure as the layout   → one batch: flush every ctnet chain and set, refill
//!            (only rules or elements     (the user chain is not touched)
//!             differ)
//!            anything else (a foreign  → one batch: delete the table, create it whole, the
//!            chain or set, a missing      user chain's rules carried over as the kernel
//!            chain, another layout)       listed them
//! ```
//!
//! Either batch is one nf_tables transaction: packets see the old table or the new one,
//! never a half-built one. The caller runs the rewrite under the store's write lock, so no
//! operation changes the store between the read of what the table must hold and the
//! commit (see `ops/firewall.rs`).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use ctnet_nft::{ElementInfo, KeyField, RuleInfo, SetSpec};

use super::{
    add_contents, add_skeleton, chains, network_elements, port_element, sets, Contents, Firewall,
    LAYOUT, TABLE, TRACE, TRACE6, USER_CHAIN,
};

/// How ctnet's table in the kernel differs from the layout and from the store.
#[derive(Debug, Clone, Default)]
pub struct TableAudit {
    /// The table's comment; `None` when there is no table.
    pub comment: Option<String>,
    /// Chains of the layout the table lacks.
    pub missing_chains: Vec<String>,
    /// Chains in the table that are not the layout's, described.
    pub foreign_chains: Vec<String>,
    /// ctnet's base chains whose policy was turned to drop.
    pub dropping_chains: Vec<String>,
    /// ctnet chains whose rules are not the layout's, each described.
    pub rule_differences: Vec<String>,
    /// Sets and maps of the layout the table lacks.
    pub missing_sets: Vec<String>,
    /// Sets and maps in the table that are not the layout's.
    pub foreign_sets: Vec<String>,
    /// Elements the store calls for that the table lacks, as `set: element`.
    pub missing_elements: Vec<String>,
    /// Elements in the table the store does not explain, as `set: element`.
    pub unexplained_elements: Vec<String>,
    /// Rules in the user chain.
    pub user_rules: usize,
    /// Elements compared (the store's count).
    pub expected_elements: usize,
    /// The unexplained elements as the kernel listed them, by set.
    pub(crate) unexplained_listed: Vec<(String, ElementInfo)>,
}

impl TableAudit {
    /// The table exists.
    pub fn exists(&self) -> bool {
        self.comment.is_some()
    }

    /// The table's chains, sets and comment are the layout's: a flush and refill of
    /// ctnet's chains and sets repairs whatever else differs.
    pub fn refillable(&self) -> bool {
        self.comment.as_deref() == Some(LAYOUT)
            && self.missing_chains.is_empty()
            && self.foreign_chains.is_empty()
            && self.missing_sets.is_empty()
            && self.foreign_sets.is_empty()
    }

    /// Nothing differs.
    pub fn is_clean(&self) -> bool {
        self.refillable()
            && self.dropping_chains.is_empty()
            && self.rule_differences.is_empty()
            && self.missing_elements.is_empty()
            && self.unexplained_elements.is_empty()
    }

    /// Every difference, one sentence each.
    pub fn differences(&self) -> Vec<String> {
        let Some(comment) = &self.comment else {
            return vec![format!("table {TABLE} is missing")];
        };
        let mut out = Vec::new();
        if comment != LAYOUT {
            out.push(format!(
                "table {TABLE} has another layout (comment {comment:?})"
            ));
        }
        let list = |what: &str, items: &[String]| format!("{what}: {}", items.join(", "));
        if !self.missing_chains.is_empty() {
            out.push(list("chains missing", &self.missing_chains));
        }
        if !self.foreign_chains.is_empty() {
            out.push(list("chains that are not ctnet's", &self.foreign_chains));
        }
        if !self.dropping_chains.is_empty() {
            out.push(list("ctnet chains with policy drop", &self.dropping_chains));
        }
        out.extend(self.rule_differences.iter().cloned());
        if !self.missing_sets.is_empty() {
            out.push(list("sets missing", &self.missing_sets));
        }
        if !self.foreign_sets.is_empty() {
            out.push(list("sets that are not ctnet's", &self.foreign_sets));
        }
        if !self.missing_elements.is_empty() {
            out.push(format!(
                "{} of {} elements the store calls for are missing ({})",
                self.missing_elements.len(),
                self.expected_elements,
                abbreviated(&self.missing_elements)
            ));
        }
        if !self.unexplained_elements.is_empty() {
            out.push(format!(
                "{} elements the store does not explain ({})",
                self.unexplained_elements.len(),
                abbreviated(&self.unexplained_elements)
            ));
        }
        out
    }
}

/// The first few of a long list.
pub(super) fn abbreviated(items: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = items
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if items.len() > SHOWN {
        text += &format!("; and {} more", items.len() - SHOWN);
    }
    text
}

/// What a rewrite did.
#[derive(Debug, Clone, Default)]
pub struct Rewrite {
    /// The table was deleted and created again (rather than flushed and refilled).
    pub recreated: bool,
    /// What differed before, one sentence each (empty when nothing did).
    pub repaired: Vec<String>,
    /// Elements removed because the store does not explain them, as `set: element`.
    pub removed_elements: Vec<String>,
    /// Rules of the user chain that could not be carried into the recreated table, and
    /// the kernel's reason (e.g. they jump to a chain that was not ctnet's).
    pub user_rules_dropped: Option<(usize, String)>,
}

impl Firewall {
    /// Compares the table with the layout and, given `contents`, its elements with them.
    pub fn audit(&mut self, contents: Option<&Contents>) -> ctnet_kernel::Result<TableAudit> {
        let socket = self.socket()?;
        let mut audit = TableAudit {
            comment: socket.table_comment(TABLE)?,
            ..TableAudit::default()
        };
        if !audit.exists() {
            return Ok(audit);
        }
        let listed: Vec<_> = socket
            .list_chains()?
            .into_iter()
            .filter(|c| c.family == TABLE.family && c.table == TABLE.name)
            .collect();
        let layout = chains();
        for (name, base, _) in &layout {
            match listed.iter().find(|c| c.name == *name) {
                None => audit.missing_chains.push(name.to_string()),
                Some(c) if c.hook.map(|h| h.0) != Some(base.hook) || c.kind != Some(base.kind) => {
                    audit
                        .foreign_chains
                        .push(format!("{name} (hooked differently)"));
                }
                Some(c) if c.policy_drop => audit.dropping_chains.push(name.to_string()),
                Some(_) => {}
            }
        }
        if !listed.iter().any(|c| c.name == USER_CHAIN) {
            audit.missing_chains.push(USER_CHAIN.into());
        }
        for c in &listed {
            if c.name != USER_CHAIN && !layout.iter().any(|(name, _, _)| c.name == *name) {
                let hook = match c.hook {
                    Some((hook, priority)) => format!(
                        " (hook {hook:?} priority {priority}, policy {})",
                        if c.policy_drop { "drop" } else { "accept" }
                    ),
                    None => String::new(),
                };
                audit.foreign_chains.push(format!("{}{hook}", c.name));
            }
        }
        let rules = socket.list_rules(TABLE)?;
        audit.user_rules = rules.iter().filter(|r| r.chain == USER_CHAIN).count();
        audit.rule_differences = rule_differences(&rules)
            .into_iter()
            .filter(|d| {
                // A missing chain has no rules; saying so twice helps no one.
                !audit
                    .missing_chains
                    .iter()
                    .any(|c| d.starts_with(&format!("chain {c} has 0 rules")))
            })
            .collect();
        let listed_sets = socket.list_sets(TABLE)?;
        let layout_sets = sets();
        for set in &layout_sets {
            if !listed_sets.contains(&set.name) {
                audit.missing_sets.push(set.name.clone());
            }
        }
        for name in &listed_sets {
            if !layout_sets.iter().any(|s| &s.name == name) {
                audit.foreign_sets.push(name.clone());
            }
        }
        if let Some(contents) = contents {
            let expected = expected_elements(contents);
            audit.expected_elements = expected.values().map(Vec::len).sum();
            for set in &layout_sets {
                if [TRACE, TRACE6].contains(&set.name.as_str()) {
                    // A running `ctnet trace`'s flows: the store never explains them, and
                    // they expire by themselves.
                    continue;
                }
                let want = expected.get(set.name.as_str()).cloned().unwrap_or_default();
                let (missing, extra) = if listed_sets.contains(&set.name) {
                    listed_difference(socket, &set.name, want)?
                } else {
                    multiset_difference(want, Vec::new())
                };
                let render = |e: &ElementInfo| format!("{}: {}", set.name, render_element(set, e));
                audit.missing_elements.extend(missing.iter().map(render));
                audit.unexplained_elements.extend(extra.iter().map(render));
                audit
                    .unexplained_listed
                    .extend(extra.into_iter().map(|e| (set.name.clone(), e)));
            }
        }
        Ok(audit)
    }

    /// True when the table exists in this layout with every ctnet chain holding the
    /// layout's rules: two questions to the kernel (the table, its rules), asked once per
    /// process. It does not read elements; `ctnet doctor` does.
    pub(crate) fn structure_current(&mut self) -> ctnet_kernel::Result<bool> {
        let socket = self.socket()?;
        if socket.table_comment(TABLE)?.as_deref() != Some(LAYOUT) {
            return Ok(false);
        }
        let rules = socket.list_rules(TABLE)?;
        Ok(rule_differences(&rules).is_empty())
    }

    /// Makes the table hold the layout and `contents`, in one batch (see the drawing
    /// above), and says what was wrong and what it removed. Elements the store does not
    /// explain are removed (and listed) only with `remove_unexplained` (`ctnet gc`);
    /// otherwise they are kept through the rewrite. The caller holds the store's write
    /// lock.
    pub fn rewrite(
        &mut self,
        contents: &Contents,
        remove_unexplained: bool,
    ) -> ctnet_kernel::Result<Rewrite> {
        let mut audit = self.audit(Some(contents))?;
        if !remove_unexplained {
            audit.unexplained_elements.clear();
        }
        let keep = if remove_unexplained {
            Vec::new()
        } else {
            std::mem::take(&mut audit.unexplained_listed)
        };
        let mut report = Rewrite {
            repaired: if audit.is_clean() {
                Vec::new()
            } else {
                audit.differences()
            },
            removed_elements: audit.unexplained_elements.clone(),
            ..Rewrite::default()
        };
        if !audit.exists() && contents.networks.is_empty() {
            // No network needs a table: a host without one stays so.
            report.repaired.clear();
        } else if !audit.exists() {
            self.create(contents)?;
        } else if audit.is_clean() {
            // Nothing to put right.
        } else if audit.refillable() {
            self.refill(contents, &keep)?;
        } else {
            report.recreated = true;
            let socket = self.socket()?;
            let (user_rules, tied): (Vec<RuleInfo>, Vec<RuleInfo>) = socket
                .list_rules(TABLE)?
                .into_iter()
                .filter(|r| r.chain == USER_CHAIN)
                .partition(|r| !r.uses_anonymous_set);
            let mut dropped = Vec::new();
            if !tied.is_empty() {
                dropped.push((
                    tied.len(),
                    "they look up an anonymous set (`{ a, b }`), which lives and dies with the old table; a named set keeps them".to_string(),
                ));
            }
            if let Err(e) = self.recreate(contents, &user_rules, &keep) {
                if user_rules.is_empty() {
                    return Err(e);
                }
                // A user rule that refers to something only the old table had (a chain
                // that was not ctnet's) cannot come along; ctnet's own rules must.
                self.recreate(contents, &[], &keep)?;
                dropped.push((user_rules.len(), e.to_string()));
            }
            if !dropped.is_empty() {
                let count = dropped.iter().map(|(n, _)| n).sum();
                let why = dropped
                    .into_iter()
                    .map(|(n, why)| format!("{n}: {why}"))
                    .collect::<Vec<_>>()
                    .join("; ");
                report.user_rules_dropped = Some((count, why));
            }
        }
        self.table_checked = audit.exists() || !contents.networks.is_empty();
        Ok(report)
    }

    /// Deletes the table and creates it whole, with `user_rules` in the user chain: one
    /// batch.
    fn recreate(
        &mut self,
        contents: &Contents,
        user_rules: &[RuleInfo],
        keep: &[(String, ElementInfo)],
    ) -> ctnet_kernel::Result<()> {
        let socket = self.socket()?;
        let mut batch = socket.batch();
        batch.destroy_table(TABLE);
        add_skeleton(&mut batch, true);
        for rule in user_rules {
            batch.add_listed_rule(TABLE, rule);
        }
        add_contents(&mut batch, contents);
        add_kept(&mut batch, keep);
        socket.commit(batch)
    }

    /// Flushes every ctnet chain and set and fills them again, `keep` included: one
    /// batch, the `user` chain untouched.
    fn refill(
        &mut self,
        contents: &Contents,
        keep: &[(String, ElementInfo)],
    ) -> ctnet_kernel::Result<()> {
        let socket = self.socket()?;
        let mut batch = socket.batch();
        add_skeleton(&mut batch, false);
        add_contents(&mut batch, contents);
        add_kept(&mut batch, keep);
        socket.commit(batch)
    }
}

/// Elements kept through a rewrite, back in their sets: one message per set, so an
/// interval's start and end go together.
fn add_kept(batch: &mut ctnet_nft::Batch, keep: &[(String, ElementInfo)]) {
    let mut by_set: BTreeMap<&str, Vec<ElementInfo>> = BTreeMap::new();
    for (set, element) in keep {
        by_set.entry(set).or_default().push(element.clone());
    }
    for (set, elements) in by_set {
        let what = format!("{} elements the store does not explain", elements.len());
        batch.add_listed_elements(TABLE, set, &elements, &what);
    }
}

/// ctnet chains whose rules differ from the layout's (by count, comment or expressions).
fn rule_differences(rules: &[RuleInfo]) -> Vec<String> {
    let mut out = Vec::new();
    for (name, _, layout) in chains() {
        let found: Vec<&RuleInfo> = rules.iter().filter(|r| r.chain == name).collect();
        if found.len() != layout.len() {
            out.push(format!(
                "chain {name} has {} rules, the layout {}",
                found.len(),
                layout.len()
            ));
            continue;
        }
        let changed = found
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
        if let Some(i) = changed {
            out.push(format!(
                "rule {} of chain {name} (handle {}) is not the layout's `{}`",
                i + 1,
                found[i].handle,
                layout[i].1
            ));
        }
    }
    out
}

/// The elements `contents` put in each set, as the kernel lists them.
fn expected_elements(contents: &Contents) -> BTreeMap<&'static str, Vec<ElementInfo>> {
    let mut out: BTreeMap<&'static str, Vec<ElementInfo>> = BTreeMap::new();
    for net in &contents.networks {
        for (set, element) in network_elements(net) {
            out.entry(set).or_default().extend(element.as_listed());
        }
    }
    for port in &contents.ports {
        let (map, element) = port_element(port);
        out.entry(map).or_default().extend(element.as_listed());
    }
    for (set, elements) in super::policy::policy_elements(&contents.policy) {
        let listed = out.entry(set).or_default();
        listed.extend(elements.iter().flat_map(|e| e.as_listed()));
    }
    for (set, element) in contents.vxlan.elements() {
        out.entry(set).or_default().extend(element.as_listed());
    }
    out
}

/// What the store wants in `set` that the kernel lacks, and what the kernel has that
/// the store does not explain. A set's listing comes in many messages, and when the
/// kernel collects expired elements between two of them (after a detach or a `policy
/// rm` of thousands of entries) the dump can skip live ones or list one twice: a listing
/// that differs is taken again, up to twice, and the closest one counts.
fn listed_difference(
    socket: &mut ctnet_nft::NftSocket,
    set: &str,
    want: Vec<ElementInfo>,
) -> ctnet_kernel::Result<(Vec<ElementInfo>, Vec<ElementInfo>)> {
    let mut best = multiset_difference(want.clone(), socket.list_elements(TABLE, set)?);
    for _ in 0..2 {
        if best.0.is_empty() && best.1.is_empty() {
            break;
        }
        let again = multiset_difference(want.clone(), socket.list_elements(TABLE, set)?);
        if again.0.len() + again.1.len() < best.0.len() + best.1.len() {
            best = again;
        }
    }
    Ok(best)
}

/// What `want` has that `have` lacks, and what `have` has that `want` lacks (counting
/// repeats: two ports of one address and port are two elements).
fn multiset_difference(
    mut want: Vec<ElementInfo>,
    mut have: Vec<ElementInfo>,
) -> (Vec<ElementInfo>, Vec<ElementInfo>) {
    want.sort();
    have.sort();
    let (mut missing, mut extra) = (Vec::new(), Vec::new());
    let (mut w, mut h) = (want.into_iter().peekable(), have.into_iter().peekable());
    loop {
        match (w.peek(), h.peek()) {
            (Some(a), Some(b)) if a == b => {
                w.next();
                h.next();
            }
            (Some(a), Some(b)) if a < b => missing.extend(w.next()),
            (Some(_), Some(_)) => extra.extend(h.next()),
            (Some(_), None) => missing.extend(w.next()),
            (None, Some(_)) => extra.extend(h.next()),
            (None, None) => return (missing, extra),
        }
    }
}

/// An element in nft's words, e.g. `tcp . 8080 : 10.0.0.2 . 80`.
fn render_element(set: &SetSpec, e: &ElementInfo) -> String {
    let mut text = match &e.key_end {
        // A range of a concatenation ranges field by field, as nft writes it.
        Some(end) => field_texts(&set.key, &e.key)
            .into_iter()
            .zip(field_texts(&set.key, end))
            .map(|(a, b)| if a == b { a } else { format!("{a}-{b}") })
            .collect::<Vec<_>>()
            .join(" . "),
        None => render_fields(&set.key, &e.key),
    };
    if e.interval_end {
        text = format!("end of an interval at {text}");
    }
    if let (Some(data), Some(fields)) = (&e.data, &set.data) {
        text = format!("{text} : {}", render_fields(fields, data));
    }
    text
}

/// The fields of a key, each padded to four bytes in the kernel's layout.
fn render_fields(fields: &[KeyField], bytes: &[u8]) -> String {
    field_texts(fields, bytes).join(" . ")
}

/// Each field of a key as text.
fn field_texts(fields: &[KeyField], mut bytes: &[u8]) -> Vec<String> {
    let mut parts = Vec::new();
    for field in fields {
        let len = field.byte_len() as usize;
        let Some(value) = bytes.get(..len) else {
            break;
        };
        parts.push(match field {
            KeyField::Ipv4Addr => {
                Ipv4Addr::from(<[u8; 4]>::try_from(value).unwrap_or_default()).to_string()
            }
            KeyField::Ipv6Addr => {
                Ipv6Addr::from(<[u8; 16]>::try_from(value).unwrap_or_default()).to_string()
            }
            KeyField::IfName => String::from_utf8_lossy(value)
                .trim_end_matches('\0')
                .to_string(),
            KeyField::InetProto => match value[0] {
                6 => "tcp".into(),
                17 => "udp".into(),
                n => n.to_string(),
            },
            KeyField::InetService => u16::from_be_bytes([value[0], value[1]]).to_string(),
            KeyField::EtherAddr => value
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":"),
        });
        bytes = bytes.get(len.next_multiple_of(4)..).unwrap_or_default();
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn element(key: &[u8]) -> ElementInfo {
        ElementInfo {
            key: key.to_vec(),
            key_end: None,
            data: None,
            interval_end: false,
        }
    }

    #[test]
    fn differences_count_repeats_both_ways() {
        let (a, b, c) = (element(&[1]), element(&[2]), element(&[3]));
        let (missing, extra) = multiset_difference(
            vec![a.clone(), b.clone(), b.clone()],
            vec![b.clone(), c.clone(), c.clone()],
        );
        assert_eq!(missing, vec![a, b]);
        assert_eq!(extra, vec![c.clone(), c]);
    }

    #[test]
    fn only_a_table_of_this_structure_is_refilled_in_place() {
        let current = TableAudit {
            comment: Some(LAYOUT.into()),
            ..TableAudit::default()
        };
        assert!(current.refillable() && current.is_clean());
        assert!(current.differences().is_empty());
        let flushed = TableAudit {
            rule_differences: vec!["chain forward has 0 rules, the layout 10".into()],
            ..current.clone()
        };
        assert!(flushed.refillable() && !flushed.is_clean());
        let foreign = TableAudit {
            foreign_chains: vec!["evil".into()],
            ..current.clone()
        };
        assert!(!foreign.refillable());
        assert_eq!(foreign.differences(), ["chains that are not ctnet's: evil"]);
        let older = TableAudit {
            comment: Some("managed by ctnet, layout 2".into()),
            ..current
        };
        assert!(!older.refillable());
        assert!(older.differences()[0].contains("another layout"));
        assert_eq!(
            TableAudit::default().differences(),
            [format!("table {TABLE} is missing")]
        );
    }

    #[test]
    fn a_subnet_and_bridge_range_renders_field_by_field() {
        let set = &sets()[1];
        assert_eq!(set.name, "masq_local");
        let mut first = vec![10, 50, 0, 0];
        first.extend(b"br-1\0\0\0\0\0\0\0\0\0\0\0\0");
        let mut last = vec![10, 50, 255, 255];
        last.extend(b"br-1\0\0\0\0\0\0\0\0\0\0\0\0");
        let e = ElementInfo {
            key: first,
            key_end: Some(last),
            data: None,
            interval_end: false,
        };
        assert_eq!(render_element(set, &e), "10.50.0.0-10.50.255.255 . br-1");
    }

    #[test]
    fn a_published_port_renders_as_nft_writes_it() {
        let all = sets();
        let set = all.iter().find(|s| s.name == "publish_any").unwrap();
        let e = ElementInfo {
            key: vec![6, 0, 0, 0, 0x1f, 0x90, 0, 0],
            key_end: None,
            data: Some(vec![10, 0, 0, 2, 0, 80, 0, 0]),
            interval_end: false,
        };
        assert_eq!(render_element(set, &e), "tcp . 8080 : 10.0.0.2 . 80");
    }

    #[test]
    fn the_layouts_own_rules_show_no_difference_and_a_stray_rule_does() {
        let mut handle = 0;
        let mut listed: Vec<RuleInfo> = chains()
            .into_iter()
            .flat_map(|(name, _, rules)| {
                rules
                    .into_iter()
                    .map(move |(rule, comment)| (name, rule, comment))
            })
            .map(|(name, rule, comment)| {
                handle += 1;
                RuleInfo {
                    table: TABLE.name.into(),
                    chain: name.into(),
                    handle,
                    comment: comment.into(),
                    expression_names: rule.exprs().iter().map(|e| e.name().into()).collect(),
                    expressions: Vec::new(),
                    userdata: Vec::new(),
                    uses_anonymous_set: false,
                }
            })
            .collect();
        assert!(rule_differences(&listed).is_empty());
        let mut stray = listed[0].clone();
        stray.chain = "forward".into();
        stray.comment = String::new();
        stray.expression_names = vec!["immediate".into()];
        let at = listed.iter().position(|r| r.chain == "forward").unwrap();
        listed.insert(at, stray);
        assert_eq!(
            rule_differences(&listed),
            vec!["chain forward has 11 rules, the layout 10".to_string()]
        );
    }

    /// Each network's isolation is elements of `open` and `shared` (none for a strict or
    /// an internal network), and its icc pair in `icc` or `no_icc`: the audit expects
    /// exactly those, so a missing one is named by set and bridge.
    #[test]
    fn isolation_is_elements_the_audit_expects_by_bridge() {
        use crate::model::Isolation;
        let net = |bridge: &str, isolation, internal, icc| super::super::NetworkRules {
            subnets: Vec::new(),
            bridge: ctnet_kernel::IfName::new(bridge).unwrap(),
            internal,
            icc,
            isolation,
            vxlan: None,
        };
        let contents = Contents {
            networks: vec![
                net("br-open", Isolation::Open, false, true),
                net("br-iso", Isolation::Isolated, false, false),
                net("br-strict", Isolation::Strict, false, true),
                net("br-int", Isolation::Open, true, true),
            ],
            ports: Vec::new(),
            policy: Default::default(),
            guards: Vec::new(),
            vxlan: Default::default(),
        };
        let all = sets();
        let rendered = |name: &str| -> Vec<String> {
            let set = all.iter().find(|s| s.name == name).unwrap();
            let mut out: Vec<String> = expected_elements(&contents)
                .remove(name)
                .unwrap_or_default()
                .iter()
                .map(|e| render_element(set, e))
                .collect();
            out.sort();
            out
        };
        assert_eq!(rendered("open"), vec!["br-open"]);
        assert_eq!(rendered("shared"), vec!["br-iso", "br-open"]);
        assert_eq!(rendered("no_icc"), vec!["br-iso . br-iso"]);
        assert_eq!(
            rendered("icc"),
            vec![
                "br-int . br-int",
                "br-open . br-open",
                "br-strict . br-strict"
            ]
        );
    }
}
