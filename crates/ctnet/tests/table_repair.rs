//! ctnet's nftables table edited behind its back (issue 12, items 16 and 17): `doctor`
//! names each difference from the layout and the store, `attach -p` repairs a flushed
//! or edited table, and `gc` rewrites it whole — a foreign chain gone, another layout
//! recreated once, the user chain's rules kept; an edit made after attaches recorded the
//! ruleset as checked is found all the same. The network has DNS off, so no host agent
//! runs: the agent would repair each edit at once (firewall_repair.rs proves that), and
//! these tests are about the one-shot commands.

mod support;

use support::{assert_reported, doctor_problems, Sandbox, UPLINK_HOST, WAN_SERVER};

/// The problems `ctnet doctor` reports for ctnet's table (it exits non-zero then).
fn table_problems(sb: &Sandbox) -> Vec<String> {
    doctor_problems(sb, Some("ctnet table"))
}

fn published(sb: &mut Sandbox) -> String {
    sb.with_wan();
    sb.ok("ctnet network create blue --subnet 10.50.0.0/16 --dns false && ctnet netns add web && ctnet attach blue web -p 8080:80");
    sb.serve(Some("web"), "--tcp 80");
    sb.serve(Some("wan"), &format!("--bind {WAN_SERVER} --tcp 80"));
    let target = format!("{UPLINK_HOST}:8080");
    sb.reach(Some("wan"), "tcp", &target);
    assert!(table_problems(sb).is_empty());
    target
}

/// Another container published on `blue`: an attach -p, which checks the table first.
fn attach_another(sb: &Sandbox) {
    sb.ok("ctnet netns add web2 && ctnet attach blue web2 -p 8081:80");
}

/// Traffic both ways works again and doctor finds the table as the layout has it.
fn works_and_table_is_clean(sb: &Sandbox, target: &str) {
    sb.reach(Some("wan"), "tcp", target);
    sb.reach(Some("web"), "tcp", &format!("{WAN_SERVER}:80"));
    assert!(table_problems(sb).is_empty());
}

/// Runs `ctnet gc`, which must say it removes the stray publish_any element 9999, and
/// checks that the element is gone from the kernel.
fn gc_removes_the_stray_element(sb: &Sandbox) {
    let gc = sb.ok("ctnet gc");
    assert!(
        gc.contains("firewall removed publish_any: tcp . 9999 : 10.50.0.77 . 80"),
        "{gc}"
    );
    assert!(!sb
        .ok("nft list map inet ctnet publish_any")
        .contains("9999"));
}

#[test]
fn a_flushed_table_is_reported_and_repaired_by_the_next_attach() {
    let mut sb = Sandbox::new();
    let target = published(&mut sb);
    sb.ok("nft flush table inet ctnet");
    assert!(sb.probe(Some("wan"), "tcp", &target).is_err());
    let problems = table_problems(&sb);
    for chain in ["guard", "prerouting", "output", "forward", "postrouting"] {
        assert_reported(
            &problems,
            &[&format!("chain {chain} has 0 rules"), "ctnet gc"],
        );
    }
    // attach -p looks at the rules, not only the comment, and rewrites the table.
    attach_another(&sb);
    works_and_table_is_clean(&sb, &target);
}

/// Attaches one after another leave a record of the ruleset they found current, and
/// the next attach takes it instead of listing the rules (datapath/nft/verified.rs).
/// Any change to the ruleset since, here a chain flushed by hand, makes the record a
/// past one: the next attach looks at the rules again and repairs them.
#[test]
fn an_edit_after_a_recorded_check_is_still_found_by_the_next_attach() {
    let mut sb = Sandbox::new();
    let target = published(&mut sb);
    attach_another(&sb);
    sb.ok("ctnet netns add web3 && ctnet attach blue web3 -p 8082:80");
    let record = sb.ok("cat \"$CTNET_RUN_DIR/nft-verified\"");
    assert!(
        record.starts_with("ctnet-nft-verified 1 ") && record.trim_end().ends_with(" 1 1 end"),
        "both tables recorded as current: {record}"
    );
    sb.ok("nft flush chain inet ctnet postrouting");
    assert!(sb
        .probe(Some("web"), "tcp", &format!("{WAN_SERVER}:80"))
        .is_err());
    sb.ok("ctnet netns add web4 && ctnet attach blue web4 -p 8083:80");
    works_and_table_is_clean(&sb, &target);
}

#[test]
fn only_gc_removes_an_element_the_store_does_not_explain_and_it_says_so() {
    let mut sb = Sandbox::new();
    let target = published(&mut sb);
    sb.ok("nft add element inet ctnet publish_any '{ tcp . 9999 : 10.50.0.77 . 80 }' && nft flush table inet ctnet");
    // The attach rewrites the flushed table, keeping what it cannot explain.
    attach_another(&sb);
    sb.reach(Some("wan"), "tcp", &target);
    assert!(sb
        .ok("nft list map inet ctnet publish_any")
        .contains("9999"));
    gc_removes_the_stray_element(&sb);
    assert!(table_problems(&sb).is_empty());
}

#[test]
fn flushed_maps_a_deleted_guard_and_an_accept_all_rule_are_named_and_mended_by_gc() {
    let mut sb = Sandbox::new();
    let target = published(&mut sb);

    sb.ok("nft flush map inet ctnet publish_any && nft flush set inet ctnet masq_subnets");
    assert!(sb.probe(Some("wan"), "tcp", &target).is_err());
    assert_reported(
        &table_problems(&sb),
        &[
            "elements the store calls for are missing",
            "publish_any: tcp . 8080 : 10.50.0.2 . 80",
            "masq_subnets: 10.50.0.0",
        ],
    );
    let gc = sb.ok("ctnet gc");
    assert!(gc.contains("firewall"), "{gc}");
    works_and_table_is_clean(&sb, &target);

    sb.ok("nft delete chain inet ctnet guard");
    assert_reported(&table_problems(&sb), &["chains missing: guard"]);
    sb.ok("ctnet gc");
    assert!(sb
        .ok("nft list chain inet ctnet guard")
        .contains("127.0.0.0/8"));
    assert!(table_problems(&sb).is_empty());

    // An accept-all rule first in forward opens every network to the wan.
    sb.ok("nft insert rule inet ctnet forward accept");
    assert_reported(
        &table_problems(&sb),
        &["chain forward has 11 rules, the layout 10"],
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
    assert_reported(
        &table_problems(&sb),
        &[
            "no network or endpoint in the store explains",
            "publish_any: tcp . 9999 : 10.50.0.77 . 80",
        ],
    );
    gc_removes_the_stray_element(&sb);
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
    assert_reported(
        &table_problems(&sb),
        &["chains that are not ctnet's: evil", "policy drop"],
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
    works_and_table_is_clean(&sb, &target);
}

#[test]
fn a_table_of_another_layout_is_recreated_once_by_the_first_attach() {
    let mut sb = Sandbox::new();
    let target = published(&mut sb);
    // An older ctnet's table: another comment, a stale chain, a user rule.
    sb.ok("nft delete table inet ctnet && \
           nft add table inet ctnet '{ comment \"managed by ctnet, layout 3\"; }' && \
           nft add chain inet ctnet user && nft add rule inet ctnet user tcp dport 23 drop && \
           nft add chain inet ctnet forward '{ type filter hook forward priority 0; policy drop; }'");
    assert!(sb.probe(Some("wan"), "tcp", &target).is_err());
    assert_reported(&table_problems(&sb), &["another layout"]);
    attach_another(&sb);
    let table = sb.ok("nft list table inet ctnet");
    assert!(table.contains("layout 8"), "{table}");
    assert!(table.contains("tcp dport 23 drop"), "{table}");
    sb.reach(Some("wan"), "tcp", &target);
    // Rewritten once: later processes find it current and leave its rules alone.
    let handles = sb.ok("nft -a list chain inet ctnet forward");
    sb.ok("ctnet netns add web3 && ctnet attach blue web3 -p 8082:80 && ctnet detach blue web3");
    assert_eq!(sb.ok("nft -a list chain inet ctnet forward"), handles);
    assert!(table_problems(&sb).is_empty());
}
