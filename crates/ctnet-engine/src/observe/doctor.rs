//! `ctnet doctor`: what on this host will silently drop ctnet's traffic, each with the fix.
//!
//! Every check reads the kernel (sysctls, the nftables ruleset, routes) and the store;
//! nothing is changed. A finding is a `problem` when ctnet traffic is being dropped or
//! misrouted now, a `warning` when it will be under common conditions, `ok` otherwise.

use ctnet_kernel::sysctl;
use ctnet_nft::{ChainInfo, Family, Hook, NftSocket};
use serde::Serialize;

use crate::agent;
use crate::datapath::nft::{GUARD_TABLE, TABLE};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::model::Family::V4;
use crate::model::RowState;
use crate::state;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Nothing to do.
    Ok,
    /// Traffic will break under common conditions.
    Warning,
    /// Traffic is being dropped or misrouted now.
    Problem,
}

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// How bad it is.
    pub severity: Severity,
    /// What was checked, in a few words.
    pub check: String,
    /// What was found.
    pub detail: String,
    /// What to do about it; empty when nothing.
    pub fix: String,
}

impl Finding {
    fn new(severity: Severity, check: &str, detail: String, fix: &str) -> Self {
        Finding {
            severity,
            check: check.into(),
            detail,
            fix: fix.into(),
        }
    }
}

impl Engine {
    /// Runs every check.
    pub fn doctor(&mut self) -> Result<Vec<Finding>> {
        // Forwarding matters for bridge networks only: a macvlan container's traffic
        // leaves by its parent without passing the host's routing.
        let networks: Vec<_> = state::list_networks(self.store.read())?
            .into_iter()
            .filter(|n| n.driver.is_bridged())
            .collect();
        let ipv4_networks = networks.iter().filter(|n| n.subnet(V4).is_some()).count();
        let mut findings = vec![check_ip_forward(ipv4_networks)];
        let ipv6_networks = networks.iter().filter(|n| n.ipv6()).count();
        findings.push(check_ipv6_forward(ipv6_networks));
        let chains = NftSocket::open()
            .and_then(|mut s| s.list_chains())
            .map_err(|e| Error::kernel("the nftables ruleset", e))?;
        findings.extend(check_ctnet_table(self)?);
        findings.extend(check_antispoof(self)?);
        findings.push(check_agent(self)?);
        findings.extend(check_drift(self)?);
        findings.extend(check_forward_drop(&chains));
        findings.push(check_legacy_iptables());
        let policies = state::list_policies(self.store.read())?;
        findings.push(check_br_netfilter(&chains, !policies.is_empty()));
        let global = sysctl::read("net.bridge.bridge-nf-call-iptables").map(|v| v.trim() == "1");
        findings.push(policy_finding(
            &policies,
            crate::ops::policy::br_netfilter_present(std::path::Path::new(
                crate::ops::policy::BR_NETFILTER_DIR,
            )),
            global.unwrap_or(false),
        ));
        findings.extend(self.check_route_clashes()?);
        Ok(findings)
    }

    /// A host route overlapping a network's subnet through another device steals its
    /// traffic (two routes for one subnet: packets leave by the more specific one). ctnet
    /// refuses such a route's subnet at create time, but a route added later is only
    /// seen here.
    fn check_route_clashes(&mut self) -> Result<Vec<Finding>> {
        let networks: Vec<_> = state::list_networks(self.store.read())?
            .into_iter()
            .filter(|n| n.state == RowState::Ready)
            .collect();
        let routes = self.host_routes()?;
        let mut out = Vec::new();
        for net in &networks {
            for r in &routes {
                let clash = net.subnets.iter().any(|s| s.subnet.overlaps(&r.net));
                // A macvlan network's subnet is routed through its parent's LAN.
                let own = net
                    .macvlan
                    .as_ref()
                    .map_or(net.bridge.as_str(), |m| m.parent.as_str());
                if !clash || r.dev.as_deref() == Some(own) {
                    continue;
                }
                out.push(Finding::new(
                    Severity::Problem,
                    "routes",
                    format!(
                        "{r} overlaps network {:?} ({}); traffic for part of it leaves the wrong way",
                        net.name.as_str(),
                        net.subnets_text()
                    ),
                    "remove that route, or move the network: `ctnet network rm` it and create it on another subnet",
                ));
            }
        }
        if out.is_empty() {
            out.push(Finding::new(
                Severity::Ok,
                "routes",
                format!("no host route overlaps the {} networks", networks.len()),
                "",
            ));
        }
        Ok(out)
    }
}

/// IPv4 forwarding matters only once a network has IPv4: on a fresh host it is off
/// until ctnet creates the first network (or the default one on first attach).
fn check_ip_forward(ipv4_networks: usize) -> Finding {
    if ipv4_networks == 0 {
        return Finding::new(
            Severity::Ok,
            "ip_forward",
            "no bridge network has IPv4 (macvlan networks are not routed by the host)".into(),
            "",
        );
    }
    match sysctl::ip_forward_enabled() {
        Ok(true) => Finding::new(Severity::Ok, "ip_forward", "IPv4 forwarding is on".into(), ""),
        Ok(false) => Finding::new(
            Severity::Problem,
            "ip_forward",
            "net.ipv4.ip_forward is 0: nothing is routed between containers and the outside".into(),
            "set it back to 1 (`sysctl -w net.ipv4.ip_forward=1`; ctnet sets it when it creates a network), and find what turned it off",
        ),
        Err(e) => Finding::new(Severity::Warning, "ip_forward", format!("cannot be read: {e}"), ""),
    }
}

/// IPv6 forwarding matters only once a network has IPv6.
fn check_ipv6_forward(ipv6_networks: usize) -> Finding {
    if ipv6_networks == 0 {
        return Finding::new(
            Severity::Ok,
            "ipv6 forwarding",
            "no bridge network has IPv6 (macvlan networks are not routed by the host)".into(),
            "",
        );
    }
    match sysctl::ipv6_forward_enabled() {
        Ok(true) => Finding::new(
            Severity::Ok,
            "ipv6 forwarding",
            "IPv6 forwarding is on".into(),
            "",
        ),
        Ok(false) => Finding::new(
            Severity::Problem,
            "ipv6 forwarding",
            format!(
                "net.ipv6.conf.all.forwarding is 0 while {ipv6_networks} network(s) have IPv6: no IPv6 is routed between their containers and the outside"
            ),
            "run `ctnet gc`, which turns it back on (raising accept_ra to 2 where the host takes router advertisements), and find what turned it off",
        ),
        Err(e) => Finding::new(
            Severity::Warning,
            "ipv6 forwarding",
            format!("cannot be read: {e}"),
            "",
        ),
    }
}

/// ctnet's table against its layout and the store: chains, rules, sets and elements,
/// each difference a finding.
/// Anti-spoofing (table bridge ctnet): in force for every container port the store
/// guards, or what is missing. Macvlan containers and `ipam none` ones are not guarded,
/// and the finding says how many there are.
fn check_antispoof(engine: &mut Engine) -> Result<Vec<Finding>> {
    const CHECK: &str = "anti-spoofing";
    let contents = engine.firewall_contents_now()?;
    let endpoints = state::list_endpoints(engine.store.read())?;
    let unguarded = endpoints
        .iter()
        .filter(|ep| ep.state != RowState::Removing)
        .count()
        .saturating_sub(contents.guards.len());
    let audit = engine
        .firewall
        .audit_guard(Some(&contents.guards))
        .map_err(|e| Error::kernel("the nftables ruleset", e))?;
    let unguarded_note = if unguarded > 0 {
        format!("; {unguarded} endpoint(s) are not guarded (macvlan, or `ipam none`: no addresses of ctnet's to hold them to)")
    } else {
        String::new()
    };
    if contents.guards.is_empty() && !audit.exists() {
        return Ok(vec![Finding::new(
            Severity::Ok,
            CHECK,
            format!("no container ports to guard yet (table {GUARD_TABLE} is made with the first){unguarded_note}"),
            "",
        )]);
    }
    let mut lines = audit.differences();
    lines.retain(|l| !l.contains("does not explain"));
    if lines.is_empty() {
        return Ok(vec![Finding::new(
            Severity::Ok,
            CHECK,
            format!(
                "in force: table {GUARD_TABLE} checks the source MAC, addresses, ARP and neighbour advertisements of {} container port(s), and drops their router advertisements{unguarded_note}",
                contents.guards.len()
            ),
            "",
        )]);
    }
    Ok(lines
        .into_iter()
        .map(|d| {
            Finding::new(
                Severity::Problem,
                CHECK,
                format!("{d}: containers can send as one another"),
                "run `ctnet gc`, which rewrites the table from ctnet's state in one batch",
            )
        })
        .collect())
}

fn check_ctnet_table(engine: &mut Engine) -> Result<Vec<Finding>> {
    // Only bridge networks put anything in the table (macvlan traffic never passes it).
    let networks = state::list_networks(engine.store.read())?
        .iter()
        .filter(|n| n.driver.is_bridged())
        .count();
    let contents = engine.firewall_contents_now()?;
    let audit = engine
        .firewall
        .audit(Some(&contents))
        .map_err(|e| Error::kernel("the nftables ruleset", e))?;
    if networks == 0 && audit.unexplained_elements.is_empty() {
        return Ok(vec![Finding::new(
            Severity::Ok,
            "ctnet table",
            "no bridge networks yet".into(),
            "",
        )]);
    }
    if !audit.exists() {
        return Ok(vec![Finding::new(
            Severity::Problem,
            "ctnet table",
            format!("table {TABLE} is missing: no masquerade, no published ports, no isolation"),
            "run `ctnet gc` to rebuild it from ctnet's state",
        )]);
    }
    if audit.is_clean() {
        return Ok(vec![Finding::new(
            Severity::Ok,
            "ctnet table",
            format!(
                "table {TABLE} is in place: its chains and rules as the layout, its {} elements as the store's",
                audit.expected_elements
            ),
            "",
        )]);
    }
    let mut out: Vec<Finding> = audit
        .differences()
        .into_iter()
        .filter(|d| !d.contains("the store does not explain"))
        .map(|d| {
            Finding::new(
                Severity::Problem,
                "ctnet table",
                d,
                "run `ctnet gc`, which rewrites the table from ctnet's state in one batch (the user chain's rules kept)",
            )
        })
        .collect();
    if !audit.unexplained_elements.is_empty() {
        out.push(Finding::new(
            Severity::Problem,
            "ctnet table",
            format!(
                "{} element(s) no network or endpoint in the store explains: {}",
                audit.unexplained_elements.len(),
                audit.unexplained_elements.join("; ")
            ),
            "if the state database was lost, restore it with its WAL first; otherwise `ctnet gc` removes them (and lists what it removes)",
        ));
    }
    Ok(out)
}

/// The host agent: whether it runs (pid, since when, how), and what it did for the
/// firewall. Without it nobody answers container names, and a table someone else
/// flushes stays flushed until the next ctnet command that looks at it.
fn check_agent(engine: &Engine) -> Result<Finding> {
    let dns_networks: Vec<String> = state::list_networks(engine.store.read())?
        .into_iter()
        .filter(|n| n.dns && n.state == RowState::Ready)
        .map(|n| n.name.to_string())
        .collect();
    let serving: Vec<String> = {
        let endpoints = state::list_endpoints(engine.store.read())?;
        dns_networks
            .iter()
            .filter(|net| {
                endpoints
                    .iter()
                    .any(|ep| ep.state == RowState::Ready && ep.network.as_str() == net.as_str())
            })
            .cloned()
            .collect()
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let pid = agent::running_pid(&engine.paths);
    let status = agent::read_status(&engine.paths).filter(|s| Some(s.pid) == pid);
    Ok(agent_finding(pid, status.as_ref(), &serving, now))
}

/// The agent's finding from what was read: its pid (it holds the lock), its status file
/// (when it is this agent's) and the DNS networks that have containers.
fn agent_finding(
    pid: Option<u32>,
    status: Option<&agent::Status>,
    serving: &[String],
    now: i64,
) -> Finding {
    const CHECK: &str = "agent";
    let Some(pid) = pid else {
        if serving.is_empty() {
            return Finding::new(
                Severity::Ok,
                CHECK,
                "not running: no DNS network has a container (the first attach to one starts it); nobody puts ctnet's table back if another program flushes it".into(),
                "to have the firewall repaired at once after `nft flush ruleset` or a firewall reload, run ctnet-agent as a service (contrib/ctnet-agent.service)",
            );
        }
        return Finding::new(
            Severity::Problem,
            CHECK,
            format!(
                "not running: container names on DNS network(s) {} do not resolve, and nobody puts ctnet's table back",
                serving.join(", ")
            ),
            "start it (`systemctl start ctnet-agent`, or any `ctnet attach` to a DNS network starts it); if it died, see agent.log in the run dir",
        );
    };
    let Some(status) = status else {
        return Finding::new(
            Severity::Warning,
            CHECK,
            format!("pid {pid} holds the agent lock but has written no status yet"),
            "wait a few seconds; if it stays so, see agent.log in the run dir",
        );
    };
    let fw = &status.firewall;
    let mut detail = format!(
        "pid {pid}, {} mode, running for {}",
        status.mode,
        duration_words(now - status.started)
    );
    if fw.watching {
        detail += &format!("; watching the firewall: {} repair(s)", fw.repairs);
        if let (Some(at), Some(cause)) = (fw.last_repair, &fw.last_cause) {
            detail += &format!(", the last {} ago: {cause}", duration_words(now - at));
        }
    } else {
        detail += "; not watching the firewall";
    }
    if !status.dns.is_empty() {
        let nets: Vec<_> = status.dns.iter().map(|d| d.network.as_str()).collect();
        detail += &format!("; DNS for {}", nets.join(", "));
    }
    match (fw.watching, status.last_errors.last()) {
        (false, _) => Finding::new(
            Severity::Warning,
            CHECK,
            detail,
            "a table someone else flushes is not put back until the next ctnet command; see agent.log in the run dir for why the watch is off",
        ),
        (true, Some(e)) if now - e.time < RECENT_ERROR => Finding::new(
            Severity::Warning,
            CHECK,
            format!("{detail}; its last error, {} ago: {}", duration_words(now - e.time), e.message),
            "see agent.log in the run dir (`ctnet agent status` lists its last errors)",
        ),
        (true, _) => Finding::new(Severity::Ok, CHECK, detail, ""),
    }
}

/// An agent error older than this is history, not a warning.
const RECENT_ERROR: i64 = 600;

/// `3s`, `5m`, `2h07m`, `3d04h`.
fn duration_words(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86399 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

/// The store against the kernel: an empty store beside ctnet's objects, and each
/// network's bridge and gateways, each endpoint's veth, addresses and routes.
fn check_drift(engine: &mut Engine) -> Result<Vec<Finding>> {
    let lost = engine.unexplained_by_empty_store()?;
    if !lost.is_empty() {
        return Ok(vec![Finding::new(
            Severity::Problem,
            "state",
            format!(
                "the state database holds no networks, but this host has ctnet's {}: it was lost, emptied or replaced",
                lost.join(", ")
            ),
            "restore ctnet.db together with ctnet.db-wal from where they were (see docs/architecture.md, state), or run `ctnet gc --discard-unknown` to remove these objects",
        )]);
    }
    let drift = engine.drift()?;
    if drift.is_empty() {
        return Ok(vec![Finding::new(
            Severity::Ok,
            "kernel objects",
            "every network's bridge and gateways and every container's veth, addresses and routes are in place".into(),
            "",
        )]);
    }
    Ok(drift
        .into_iter()
        .map(|d| {
            Finding::new(
                Severity::Problem,
                "kernel objects",
                format!("{}: {}", d.object, d.detail),
                &d.fix,
            )
        })
        .collect())
}

fn is_ctnet_table(chain: &ChainInfo) -> bool {
    chain.family == TABLE.family && chain.table == TABLE.name
}

/// Forward base chains in other tables whose policy is drop: a packet ctnet accepts is
/// still dropped there (every base chain on a hook must accept it).
fn check_forward_drop(chains: &[ChainInfo]) -> Vec<Finding> {
    let dropping: Vec<_> = chains
        .iter()
        .filter(|c| {
            c.policy_drop
                && c.hook.is_some_and(|(hook, _)| hook == Hook::Forward)
                && matches!(c.family, Family::Ip | Family::Inet)
                && !is_ctnet_table(c)
        })
        .collect();
    if dropping.is_empty() {
        return vec![Finding::new(
            Severity::Ok,
            "forward policy",
            "no other nftables forward chain drops by default".into(),
            "",
        )];
    }
    dropping
        .into_iter()
        .map(|c| {
            Finding::new(
                Severity::Problem,
                "forward policy",
                format!(
                    "chain {} {} {} (forward hook, priority {}) drops what its rules do not accept, including container traffic ctnet allows{}",
                    c.family,
                    c.table,
                    c.name,
                    c.hook.map_or(0, |h| h.1),
                    if c.table == "filter" && c.name == "FORWARD" {
                        " (Docker sets this policy)"
                    } else {
                        ""
                    }
                ),
                "accept ctnet's bridges in that chain, for each bridge BR: `iifname BR accept`, `oifname BR ct state established,related accept`, `oifname BR ct status dnat accept` (iptables: -i BR -j ACCEPT; -o BR -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT), or make its policy accept",
            )
        })
        .collect()
}

/// Legacy (x_tables) iptables rules are invisible to nftables listings; say that they
/// exist so people look.
fn check_legacy_iptables() -> Finding {
    let names = std::fs::read_to_string("/proc/net/ip_tables_names").unwrap_or_default();
    if names.lines().any(|l| l.trim() == "filter") {
        Finding::new(
            Severity::Warning,
            "legacy iptables",
            "a legacy iptables filter table is loaded; its FORWARD policy cannot be read over nftables".into(),
            "check `iptables-legacy -S FORWARD`: a DROP policy there drops container traffic too",
        )
    } else {
        Finding::new(
            Severity::Ok,
            "legacy iptables",
            "no legacy iptables filter table".into(),
            "",
        )
    }
}

/// With br_netfilter, frames between containers on one bridge pass the forward hooks, so a
/// forward drop policy anywhere cuts containers off from their own neighbours.
fn check_br_netfilter(chains: &[ChainInfo], policy_bridges: bool) -> Finding {
    let namespace_wide = sysctl::read("net.bridge.bridge-nf-call-iptables")
        .map(|v| v.trim() == "1")
        .unwrap_or(false);
    let active = namespace_wide || policy_bridges;
    let forward_drop = !check_forward_drop(chains)
        .iter()
        .all(|f| f.severity == Severity::Ok);
    match (active, forward_drop) {
        (false, _) => Finding::new(
            Severity::Ok,
            "br_netfilter",
            "bridged frames do not pass iptables/nftables".into(),
            "",
        ),
        (true, false) if !namespace_wide => Finding::new(
            Severity::Ok,
            "br_netfilter",
            "off namespace-wide (bridge-nf-call-iptables=0); on for the bridges of networks with policies (their own nf_call flags), whose frames between containers pass the forward hooks".into(),
            "",
        ),
        (true, false) => Finding::new(
            Severity::Ok,
            "br_netfilter",
            "active: frames between containers on one bridge pass the forward hooks; ctnet accepts them (and drops them where --icc false)".into(),
            "",
        ),
        (true, true) => Finding::new(
            Severity::Problem,
            "br_netfilter",
            "active, and a forward chain above drops by default: containers on the same bridge cannot reach each other".into(),
            "fix the forward policy above, or turn off bridge-nf-call-iptables if nothing needs it",
        ),
    }
}

/// What enforces network policy here: which networks have policies, and how traffic
/// between two containers on one bridge reaches the firewall (missing bridge flags are
/// drift, reported with the network).
fn policy_finding(
    policies: &[crate::model::policy::Policy],
    br_netfilter: bool,
    bridge_nf_call_on: bool,
) -> Finding {
    let mut networks: Vec<&str> = policies.iter().map(|p| p.network.as_str()).collect();
    networks.sort();
    networks.dedup();
    if networks.is_empty() {
        return Finding::new(
            Severity::Ok,
            "policy",
            "no network has policies: containers are open to whatever isolation allows; anti-spoofing is always on".into(),
            "",
        );
    }
    if !br_netfilter {
        return Finding::new(
            Severity::Problem,
            "policy",
            format!(
                "networks {} have policies, but br_netfilter is not in this kernel: traffic between two containers on one bridge is not judged",
                networks.join(", ")
            ),
            "load it (`modprobe br_netfilter`), then run `ctnet gc`",
        );
    }
    let global = if bridge_nf_call_on { 1 } else { 0 };
    Finding::new(
        Severity::Ok,
        "policy",
        format!(
            "{} policies on networks {}: judged in chain forward of table inet ctnet by set lookups (new connections; replies and established ones pass), routed traffic and published ports included; between containers on one bridge through br_netfilter, which ctnet turns on for these networks' bridges only (their nf_call_iptables/ip6tables flags), whatever bridge-nf-call-iptables says (here {global})",
            policies.len(),
            networks.join(", ")
        ),
        "",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_finding_says_what_enforces_it() {
        let policy = |net: &str| crate::model::policy::Policy {
            name: crate::model::policy::PolicyName::new("p").unwrap(),
            network: crate::model::NetworkName::new(net).unwrap(),
            to: crate::model::policy::Selector::All,
            from: Vec::new(),
            ports: Vec::new(),
            action: crate::model::policy::Action::Allow,
        };
        let none = policy_finding(&[], true, false);
        assert_eq!(none.severity, Severity::Ok);
        assert!(none.detail.contains("no network has policies"));
        let some = policy_finding(&[policy("b"), policy("a"), policy("b")], true, false);
        assert_eq!(some.severity, Severity::Ok);
        assert!(
            some.detail.contains("networks a, b") && some.detail.contains("(here 0)"),
            "{}",
            some.detail
        );
        let unenforced = policy_finding(&[policy("a")], false, false);
        assert_eq!(unenforced.severity, Severity::Problem);
        assert!(unenforced.fix.contains("modprobe br_netfilter"));
    }

    fn status(watching: bool) -> agent::Status {
        agent::Status {
            pid: 42,
            started: 1000,
            updated: 1000,
            mode: "service".into(),
            firewall: agent::FirewallStatus {
                watching,
                repairs: 2,
                last_repair: Some(1060),
                last_cause: Some("table inet ctnet deleted by nft (pid 7)".into()),
            },
            ..agent::Status::default()
        }
    }

    #[test]
    fn no_agent_is_a_problem_only_where_names_need_it() {
        let idle = agent_finding(None, None, &[], 2000);
        assert_eq!(idle.severity, Severity::Ok);
        assert!(idle.detail.starts_with("not running"));
        let needed = agent_finding(None, None, &["user".into()], 2000);
        assert_eq!(needed.severity, Severity::Problem);
        assert!(needed.detail.contains("DNS network(s) user"));
    }

    #[test]
    fn a_running_agent_says_since_when_and_what_it_repaired() {
        let f = agent_finding(Some(42), Some(&status(true)), &[], 1000 + 3725);
        assert_eq!(f.severity, Severity::Ok);
        assert_eq!(
            f.detail,
            "pid 42, service mode, running for 1h02m; watching the firewall: 2 repair(s), the last 1h01m ago: table inet ctnet deleted by nft (pid 7)"
        );
        let off = agent_finding(Some(42), Some(&status(false)), &[], 1010);
        assert_eq!(off.severity, Severity::Warning);
        let mut failing = status(true);
        failing.last_errors.push(agent::AgentError {
            time: 1005,
            message: "boom".into(),
        });
        let f = agent_finding(Some(42), Some(&failing), &[], 1010);
        assert_eq!(f.severity, Severity::Warning);
        assert!(f.detail.ends_with("its last error, 5s ago: boom"));
        let f = agent_finding(Some(42), None, &[], 1010);
        assert_eq!(f.severity, Severity::Warning);
    }
}
