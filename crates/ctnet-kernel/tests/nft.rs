//! nf_tables batches against the real kernel, each test in a fresh network namespace
//! (entered by the test's own thread, so nothing touches the machine's ruleset).
//! Traffic through these rules is proven by the CLI's integration tests.

mod common;

use std::net::Ipv4Addr;
use std::process::Command;

use common::in_fresh_netns;
use ctnet_kernel::nft::{
    self, BaseChain, ChainType, Element, Expr, Family, Hook, Key, KeyField, NftSocket, Register,
    SetSpec,
};
use ctnet_kernel::IfName;

/// `nft -s list ruleset` as seen from the calling thread's namespace.
fn ruleset() -> String {
    let out = Command::new("nft")
        .args(["-s", "list", "ruleset"])
        .output()
        .expect("nft (package nftables) is needed to read the ruleset back");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn pair_set() -> SetSpec {
    SetSpec::intervals("pairs", vec![KeyField::Ipv4Addr, KeyField::IfName])
}

fn prefix_set() -> SetSpec {
    SetSpec::intervals("prefixes", vec![KeyField::Ipv4Addr])
}

fn skeleton(batch: &mut nft::Batch) {
    batch.add_table(Family::Inet, "t", "made by a test", true);
    batch.add_set(Family::Inet, "t", &prefix_set());
    batch.add_set(Family::Inet, "t", &pair_set());
    batch.add_set(
        Family::Inet,
        "t",
        &SetSpec::map(
            "ports",
            vec![KeyField::InetProto, KeyField::InetService],
            vec![KeyField::Ipv4Addr, KeyField::InetService],
        ),
    );
    batch.add_chain(
        Family::Inet,
        "t",
        "post",
        Some(BaseChain {
            kind: ChainType::Nat,
            hook: Hook::Postrouting,
            priority: 100,
        }),
    );
    let mut rule = nft::is_ipv4().to_vec();
    rule.extend([
        nft::load_ipv4_saddr(Register::R0),
        Expr::Lookup {
            set: "prefixes".into(),
            sreg: Register::R0,
            invert: false,
        },
        Expr::Counter,
        Expr::Masquerade,
    ]);
    batch.add_rule(Family::Inet, "t", "post", &rule, "a comment");
}

fn pair(net: Ipv4Addr, len: u8, dev: &str) -> Element {
    let (first, last) = nft::ipv4_bounds(net, len);
    let dev = IfName::new(dev).unwrap();
    Element::Range {
        first: Key::new().ipv4(first).ifname(&dev),
        last: Key::new().ipv4(last).ifname(&dev),
    }
}

#[test]
fn skeleton_and_elements_round_trip_through_nft() {
    let listed = in_fresh_netns(|| {
        let mut sock = NftSocket::open().unwrap();
        assert_eq!(sock.table_comment(Family::Inet, "t").unwrap(), None);
        let mut batch = sock.batch();
        skeleton(&mut batch);
        sock.commit(batch).unwrap();
        assert_eq!(
            sock.table_comment(Family::Inet, "t").unwrap().as_deref(),
            Some("made by a test")
        );

        let prefixes = [
            Element::ipv4_prefix(Ipv4Addr::new(10, 1, 0, 0), 16),
            Element::ipv4_prefix(Ipv4Addr::new(10, 2, 0, 0), 16),
        ];
        let pairs = [pair(Ipv4Addr::new(10, 1, 0, 0), 16, "br-one")];
        let ports = [Element::Mapping {
            key: Key::new().proto(6).port(8080),
            value: Key::new().ipv4(Ipv4Addr::new(10, 1, 0, 2)).port(80),
        }];
        // Adding twice is not an error: callers may repeat an interrupted operation.
        for _ in 0..2 {
            let mut batch = sock.batch();
            batch.add_elements(Family::Inet, "t", "prefixes", &prefixes, "two prefixes");
            batch.add_elements(Family::Inet, "t", "pairs", &pairs, "a pair");
            batch.add_elements(Family::Inet, "t", "ports", &ports, "a port");
            sock.commit(batch).unwrap();
        }
        let full = ruleset();

        // Removing twice is not an error either.
        for _ in 0..2 {
            let mut batch = sock.batch();
            batch.destroy_elements(Family::Inet, "t", "prefixes", &prefixes[..1], "a prefix");
            batch.destroy_elements(Family::Inet, "t", "pairs", &pairs, "a pair");
            sock.commit(batch).unwrap();
        }
        (full, ruleset())
    });
    let (full, trimmed) = listed;
    assert!(full.contains("comment \"made by a test\""), "{full}");
    assert!(
        full.contains("elements = { 10.1.0.0/16, 10.2.0.0/16 }"),
        "{full}"
    );
    assert!(
        full.contains("elements = { 10.1.0.0/16 . \"br-one\" }"),
        "{full}"
    );
    assert!(full.contains("type ipv4_addr . ifname"), "{full}");
    assert!(
        full.contains("type inet_proto . inet_service : ipv4_addr . inet_service"),
        "{full}"
    );
    assert!(
        full.contains("elements = { tcp . 8080 : 10.1.0.2 . 80 }"),
        "{full}"
    );
    assert!(
        full.contains("type nat hook postrouting priority srcnat; policy accept;"),
        "{full}"
    );
    assert!(
        full.contains("ip saddr @prefixes counter masquerade comment \"a comment\""),
        "{full}"
    );
    assert!(trimmed.contains("elements = { 10.2.0.0/16 }"), "{trimmed}");
    assert!(!trimmed.contains("br-one"), "{trimmed}");
}

#[test]
fn an_exclusive_table_refuses_a_second_creator() {
    let second = in_fresh_netns(|| {
        let mut sock = NftSocket::open().unwrap();
        for attempt in 0..2 {
            let mut batch = sock.batch();
            skeleton(&mut batch);
            let result = sock.commit(batch);
            if attempt == 1 {
                return (
                    result.map_err(|e| (e.is_exists(), e.to_string())),
                    ruleset(),
                );
            }
            result.unwrap();
        }
        unreachable!()
    });
    let (result, rules) = second;
    let (is_exists, message) = result.expect_err("second exclusive create must fail");
    assert!(is_exists, "{message}");
    assert!(message.contains("create table inet t"), "{message}");
    // The failed batch added nothing: still exactly one rule.
    assert_eq!(rules.matches("masquerade").count(), 1, "{rules}");
}

#[test]
fn a_refused_change_rolls_back_the_whole_batch() {
    let (message, rules) = in_fresh_netns(|| {
        let mut sock = NftSocket::open().unwrap();
        let mut batch = sock.batch();
        batch.add_table(Family::Inet, "t", "doomed", true);
        batch.add_set(Family::Inet, "t", &prefix_set());
        batch.add_elements(
            Family::Inet,
            "t",
            "no-such-set",
            &[Element::ipv4_prefix(Ipv4Addr::new(10, 9, 0, 0), 16)],
            "10.9.0.0/16",
        );
        let err = sock
            .commit(batch)
            .expect_err("a missing set must be refused");
        (err.to_string(), ruleset())
    });
    assert!(
        message.contains("add 10.9.0.0/16 to set inet t no-such-set"),
        "{message}"
    );
    assert!(rules.trim().is_empty(), "table left behind:\n{rules}");
}

#[test]
fn destroying_what_is_not_there_is_quiet_but_a_missing_table_is_not() {
    let missing_table = in_fresh_netns(|| {
        let mut sock = NftSocket::open().unwrap();
        let mut batch = sock.batch();
        batch.destroy_table(Family::Inet, "absent");
        sock.commit(batch).unwrap();

        let mut batch = sock.batch();
        skeleton(&mut batch);
        sock.commit(batch).unwrap();
        let gone = [Element::ipv4_prefix(Ipv4Addr::new(10, 0, 0, 0), 8)];
        let mut batch = sock.batch();
        batch.destroy_elements(Family::Inet, "t", "prefixes", &gone, "10.0.0.0/8");
        sock.commit(batch).unwrap();

        let mut batch = sock.batch();
        batch.destroy_elements(Family::Inet, "absent", "set", &gone, "10.0.0.0/8");
        sock.commit(batch).unwrap_err()
    });
    // Callers that tolerate a missing table check for it (see the engine's firewall).
    assert!(missing_table.is_not_found(), "{missing_table}");
}
