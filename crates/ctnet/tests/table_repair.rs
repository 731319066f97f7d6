//! ctnet's nftables table edited behind its back (issue 12, items 16 and 17): `doctor`
//! names each difference from the layout and the store, `attach -p` repairs a flushed
//! or edited table, and `gc` rewrites it whole — a foreign chain gone, another layout
//! recreated once, the user chain's rules kept.

mod support;

use support::{Sandbox, UPLINK_HOST, WAN_SERVER};

/// The problems `ctnet doctor` reports for ctnet's table (it exits non-zero then).
fn table_problems(sb: &Sandbox) -> Vec<String> {
    let out = sb.run("ctnet doctor --format json");
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems: Vec<String> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == "ctnet table" && f["severity"] == "problem")
        .map(|f| format!("{} | {}", f["detail"], f["fix"]))
        .collect();
    assert_eq!(
        out.status.success(),
        problems.is_empty(),
        "doctor's exit status disagrees with {problems:?}"
    );
    problems
}

fn published(sb: &mut Sandbox) -> String {
    sb.with_wan();
    sb.ok("ctnet network create blue --subnet 10.50.0.0/16 && ctnet netns add web && ctnet attach blue web -p 8080:80");
    sb.serve(Some("web"), "--tcp 80");
    sb.serve(Some("wan"), &format!("--bind {WAN_SERVER} --tcp 80"));
    let target = format!("{UPLINK_HOST}:8080");
    sb.reach(Some("wan"), "tcp", &target);
    assert!(table_problems(sb).is_empty());
    target
}

#[test]
fn a_flushed_table_is_reported_and_repaired_by_the_next_attach() {
    let mut sb = Sandbox::new();
    let target = published(&mut sb);
    sb.ok("nft flush table inet ctnet");
    assert!(sb.probe(Some("wan"), "tcp", &target).is_err());
    let problems = table_problems(&sb);
    for chain in ["guard", "prerouting", "output", "forward", "postrouting"] {
        assert!(
            problems.iter().any(
                |p| p.contains(&format!("chain {chain} has 0 rules")) && p.contains("ctnet gc")
            ),
            "{chain}: {problems:?}"
        );
    }
    // attach -p looks at the rules, not only the comment, and rewrites the table.
    sb.ok("ctnet netns add web2 && ctnet attach blue web2 -p 8081:80");
    sb.reach(Some("wan"), "tcp", &target);
    sb.reach(Some("web"), "tcp", &format!("{WAN_SERVER}:80"));
    assert!(table_problems(&sb).is_empty());
}

#[test]
fn only_gc_removes_an_element_the_store_does_not_explain_and_it_says_so() {
    let mut sb = Sandbox::new();
    let target = published(&mut sb);
    sb.ok("nft add element inet ctnet publish_any '{ tcp . 9999 : 10.50.0.77 . 80 }' && nft flush table inet ctnet");
    // The attach rewrites the flushed table, keeping what it cannot explain.
    sb.ok("ctnet netns add web2 && ctnet attach blue web2 -p 8081:80");
    sb.reach(Some("wan"), "tcp", &target);
    assert!(sb
        .ok("nft list map inet ctnet publish_any")
        .contains("9999"));
    let gc = sb.ok("ctnet gc");
    assert!(
        gc.contains("firewall removed publish_any: tcp . 9999 : 10.50.0.77 . 80"),
        "{gc}"
    );
    assert!(!sb
        .ok("nft list map inet ctnet publish_any")
        .contains("9999"));
    assert!(table_problems(&sb).is_empty());
}

#[test]
fn flushed_maps_a_deleted_guard_and_an_accept_all_rule_are_named_and_mended_by_gc() {
    let mut sb = Sandbox::new();
    let target = published(&mut sb);

    sb.ok("nft flush map inet ctnet publish_any && nft flush set inet ctnet masq_subnets");
    assert!(sb.probe(Some("wan"), "tcp", &target).is_err());
    let problems = table_problems(&sb);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("elements the store calls for are missing")
                && p.contains("publish_any: tcp . 8080 : 10.50.0.2 . 80")
                && p.contains("masq_subnets: 10.50.0.0")),
        "{problems:?}"
    );
    let gc = sb.ok("ctnet gc");
    assert!(gc.contains("firewall"), "{gc}");
    sb.reach(Some("wan"), "tcp", &target);
    sb.reach(Some("web"), "tcp", &format!("{WAN_SERVER}:80"));
    assert!(table_problems(&sb).is_empty());

    sb.ok("nft delete chain inet ctnet guard");
    let problems = table_problems(&sb);
    assert!(
        problems.iter().any(|p| p.contains("chains missing: guard")),
        "{problems:?}"
    );
    sb.ok("ctnet gc");
    assert!(sb
        .ok("nft list chain inet ctnet guard")
        .contains("127.0.0.0/8"));
    assert!(table_problems(&sb).is_empty());

    // An accept-all rule first in forward opens every network to the wan.
    sb.ok("nft insert rule inet ctnet forward accept");
    let problems = table_problems(&sb);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("chain forward has 8 rules, the layout 7")),
        "{problems:?}"
    );
    sb.ok("ctnet gc");
    let forward = sb.ok("nft list chain inet ctnet forward");
    assert!(!forward.lines().any(|l| l.trim() == "accept"), "{forward}");
    assert!(table_problems(&sb).is_empty());
}

#[test]
fn an_element_the_store_does_not_explain_is_named_and_gc_says_it_removes_it() {
    let mut sb = Sandbox::new();
    let target = published(&mut sb);
    sb.ok("nft add element inet ctnet publish_any '{ tcp . 9999 : 10.50.0.77 . 80 }'");
    let problems = table_problems(&sb);
    assert!(
        problems.iter().any(
            |p| p.contains("no network or endpoint in the store explains")
                && p.contains("publish_any: tcp . 9999 : 10.50.0.77 . 80")
        ),
        "{problems:?}"
    );
    let gc = sb.ok("ctnet gc");
    assert!(
        gc.contains("firewall removed publish_any: tcp . 9999 : 10.50.0.77 . 80"),
        "{gc}"
    );
    assert!(!sb
        .ok("nft list map inet ctnet publish_any")
        .contains("9999"));
    sb.reach(Some("wan"), "tcp", &target);
}

#[test]
fn gc_removes_a_foreign_chain_and_keeps_the_user_chains_rules() {
    let mut sb = Sandbox::new();
    let target = published(&mut sb);
    sb.ok("nft add rule inet ctnet user ip saddr 192.0.2.9 tcp dport 22 drop comment '\"mine\"'");
    // Someone's forward hook with policy drop inside ctnet's table: an outage.
    sb.ok("nft add chain inet ctnet evil '{ type filter hook forward priority 10; policy drop; }'");
    assert!(sb.probe(Some("wan"), "tcp", &target).is_err());
    let problems = table_problems(&sb);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("chains that are not ctnet's: evil") && p.contains("policy drop")),
        "{problems:?}"
    );
    let gc = sb.ok("ctnet gc");
    assert!(gc.contains("made again"), "{gc}");
    let table = sb.ok("nft list table inet ctnet");
    assert!(!table.contains("evil"), "{table}");
    let user = sb.ok("nft list chain inet ctnet user");
    assert!(
        user.contains("ip saddr 192.0.2.9 tcp dport 22 drop comment \"mine\""),
        "{user}"
    );
    sb.reach(Some("wan"), "tcp", &target);
    sb.reach(Some("web"), "tcp", &format!("{WAN_SERVER}:80"));
    assert!(table_problems(&sb).is_empty());
}

#[test]
fn a_table_of_another_layout_is_recreated_once_by_the_first_attach() {
    let mut sb = Sandbox::new();
    let target = published(&mut sb);
    // An older ctnet's table: another comment, a stale chain, a user rule.
    sb.ok("nft delete table inet ctnet && \
           nft add table inet ctnet '{ comment \"managed by ctnet, layout 2\"; }' && \
           nft add chain inet ctnet user && nft add rule inet ctnet user tcp dport 23 drop && \
           nft add chain inet ctnet forward '{ type filter hook forward priority 0; policy drop; }'");
    assert!(sb.probe(Some("wan"), "tcp", &target).is_err());
    assert!(table_problems(&sb)
        .iter()
        .any(|p| p.contains("another layout")));
    sb.ok("ctnet netns add web2 && ctnet attach blue web2 -p 8081:80");
    let table = sb.ok("nft list table inet ctnet");
    assert!(table.contains("layout 3"), "{table}");
    assert!(table.contains("tcp dport 23 drop"), "{table}");
    sb.reach(Some("wan"), "tcp", &target);
    // Rewritten once: later processes find it current and leave its rules alone.
    let handles = sb.ok("nft -a list chain inet ctnet forward");
    sb.ok("ctnet netns add web3 && ctnet attach blue web3 -p 8082:80 && ctnet detach blue web3");
    assert_eq!(sb.ok("nft -a list chain inet ctnet forward"), handles);
    assert!(table_problems(&sb).is_empty());
}
