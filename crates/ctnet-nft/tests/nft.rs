//! nf_tables batches against the real kernel, each test in a fresh network namespace
//! (entered by the test's own thread, so nothing touches the machine's ruleset).
//! Traffic through these rules is proven by the CLI's integration tests.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::Command;

use common::in_fresh_netns;
use ctnet_kernel::IfName;
use ctnet_nft::{
    abi, BaseChain, Batch, ChainType, Element, Family, Field, Hook, Key, KeyField, NfProto,
    NftSocket, Rule, SetSpec, TableRef,
};

const T: TableRef = TableRef::new(Family::Inet, "t");

/// `nft -s list ruleset` as seen from the calling thread's namespace.
fn ruleset() -> String {
    nft(&["-s", "list", "ruleset"])
}

/// The output of `nft args…` in the calling thread's namespace.
fn nft(args: &[&str]) -> String {
    let out = Command::new("nft")
        .args(args)
        .output()
        .expect("nft (package nftables) is needed to read the ruleset back");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Adds `rule` to chain `mine` of table inet t with the nft tool, behind our socket's back.
fn add_rule_to_mine(rule: &[&str]) {
    nft(&[&["add", "rule", "inet", "t", "mine"], rule].concat());
}

fn pair_set() -> SetSpec {
    SetSpec::intervals("pairs", vec![KeyField::Ipv4Addr, KeyField::IfName])
}

fn prefix_set() -> SetSpec {
    SetSpec::intervals("prefixes", vec![KeyField::Ipv4Addr])
}

fn skeleton(batch: &mut Batch) {
    batch.add_table(T, "made by a test", true);
    batch.add_set(T, &prefix_set());
    batch.add_set(T, &pair_set());
    batch.add_set(
        T,
        &SetSpec::map(
            "ports",
            vec![KeyField::InetProto, KeyField::InetService],
            vec![KeyField::Ipv4Addr, KeyField::InetService],
        ),
    );
    batch.add_chain(
        T,
        "post",
        Some(BaseChain {
            kind: ChainType::Nat,
            hook: Hook::Postrouting,
            priority: 100,
        }),
    );
    let rule = Rule::new()
        .nfproto(NfProto::Ipv4)
        .in_set(&[Field::IpSaddr], "prefixes")
        .counter()
        .masquerade();
    batch.add_rule(T, "post", rule.exprs(), "a comment");
}

fn pair(net: Ipv4Addr, len: u8, dev: &str) -> Element {
    let (first, last) = ctnet_nft::ipv4_bounds(net, len);
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
        assert_eq!(sock.table_comment(T).unwrap(), None);
        let mut batch = sock.batch();
        skeleton(&mut batch);
        sock.commit(batch).unwrap();
        assert_eq!(
            sock.table_comment(T).unwrap().as_deref(),
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
            batch.add_elements(T, "prefixes", &prefixes, "two prefixes");
            batch.add_elements(T, "pairs", &pairs, "a pair");
            batch.add_elements(T, "ports", &ports, "a port");
            sock.commit(batch).unwrap();
        }
        let full = ruleset();

        // Removing twice is not an error either.
        for _ in 0..2 {
            let mut batch = sock.batch();
            batch.destroy_elements(T, "prefixes", &prefixes[..1], "a prefix");
            batch.destroy_elements(T, "pairs", &pairs, "a pair");
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
        batch.add_table(T, "doomed", true);
        batch.add_set(T, &prefix_set());
        batch.add_elements(
            T,
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

/// The generation ctnet's record of a verified ruleset relies on: one more for every
/// committed batch, whoever sends it (`nft` too), and none for a refused one.
#[test]
fn the_generation_counts_committed_batches_only() {
    let steps = in_fresh_netns(|| {
        let mut sock = NftSocket::open().unwrap();
        let start = sock.generation().unwrap();
        let mut batch = sock.batch();
        skeleton(&mut batch);
        sock.commit(batch).unwrap();
        let made = sock.generation().unwrap();
        let add_prefix = |sock: &mut NftSocket, set: &str, second: u8| {
            let mut batch = sock.batch();
            let prefix = Element::ipv4_prefix(Ipv4Addr::new(10, second, 0, 0), 16);
            batch.add_elements(T, set, &[prefix], "a /16");
            sock.commit(batch)
        };
        add_prefix(&mut sock, "prefixes", 1).unwrap();
        let added = sock.generation().unwrap();
        add_prefix(&mut sock, "no-such-set", 2).unwrap_err();
        let refused = sock.generation().unwrap();
        nft(&["add", "rule", "inet", "t", "post", "counter"]);
        let by_nft = sock.generation().unwrap();
        [start, made, added, refused, by_nft]
    });
    let [start, made, added, refused, by_nft] = steps;
    assert_eq!(made, start.wrapping_add(1), "{steps:?}");
    assert_eq!(added, made + 1, "{steps:?}");
    assert_eq!(refused, added, "a refused batch does not count: {steps:?}");
    assert_eq!(by_nft, added + 1, "{steps:?}");
}

#[test]
fn destroying_what_is_not_there_is_quiet_but_a_missing_table_is_not() {
    let missing_table = in_fresh_netns(|| {
        let mut sock = NftSocket::open().unwrap();
        let mut batch = sock.batch();
        batch.destroy_table(TableRef::new(Family::Inet, "absent"));
        sock.commit(batch).unwrap();

        let mut batch = sock.batch();
        skeleton(&mut batch);
        sock.commit(batch).unwrap();
        let gone = [Element::ipv4_prefix(Ipv4Addr::new(10, 0, 0, 0), 8)];
        let mut batch = sock.batch();
        batch.destroy_elements(T, "prefixes", &gone, "10.0.0.0/8");
        sock.commit(batch).unwrap();

        let mut batch = sock.batch();
        batch.destroy_elements(
            TableRef::new(Family::Inet, "absent"),
            "set",
            &gone,
            "10.0.0.0/8",
        );
        sock.commit(batch).unwrap_err()
    });
    // Callers that tolerate a missing table check for it (see the engine's firewall).
    assert!(missing_table.is_not_found(), "{missing_table}");
}

const T6: TableRef = TableRef::new(Family::Inet, "t6");

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// The IPv6 counterparts of ctnet's sets, maps and rules, written and read back by nft.
fn ipv6_skeleton(batch: &mut Batch) {
    use KeyField::*;
    batch.add_table(T6, "ipv6 by a test", true);
    batch.add_set(T6, &SetSpec::intervals("prefixes6", vec![Ipv6Addr]));
    batch.add_set(T6, &SetSpec::intervals("pairs6", vec![Ipv6Addr, IfName]));
    batch.add_set(
        T6,
        &SetSpec::map(
            "ports6",
            vec![InetProto, InetService],
            vec![Ipv6Addr, InetService],
        ),
    );
    batch.add_set(
        T6,
        &SetSpec::map(
            "addr_ports6",
            vec![Ipv6Addr, InetProto, InetService],
            vec![Ipv6Addr, InetService],
        ),
    );
    let base = |kind, hook, priority| {
        Some(BaseChain {
            kind,
            hook,
            priority,
        })
    };
    batch.add_chain(T6, "pre", base(ChainType::Nat, Hook::Prerouting, -100));
    batch.add_chain(T6, "post", base(ChainType::Nat, Hook::Postrouting, 100));
    let local6 = || Rule::new().nfproto(NfProto::Ipv6).fib_daddr_local();
    let by_addr = local6().dnat_map(
        &[Field::Ip6Daddr, Field::L4Proto, Field::Dport],
        "addr_ports6",
        NfProto::Ipv6,
    );
    batch.add_rule(T6, "pre", by_addr.exprs(), "v6 dnat by address");
    let any = local6().dnat_map(&[Field::L4Proto, Field::Dport], "ports6", NfProto::Ipv6);
    batch.add_rule(T6, "pre", any.exprs(), "v6 dnat");
    let masq = Rule::new()
        .nfproto(NfProto::Ipv6)
        .in_set(&[Field::Ip6Saddr], "prefixes6")
        .not_in_set(&[Field::Ip6Saddr, Field::OifName], "pairs6")
        .counter()
        .masquerade();
    batch.add_rule(T6, "post", masq.exprs(), "v6 masquerade");
    let local = Rule::new()
        .nfproto(NfProto::Ipv6)
        .ct_status_any(abi::CT_STATUS_DNAT)
        .saddr_in_prefix(v6("fd00:1::").into(), 64)
        .daddr_in_prefix(v6("fd00:2::5").into(), 128)
        .counter()
        .masquerade();
    batch.add_rule(T6, "post", local.exprs(), "v6 prefixes");
}

#[test]
fn ipv6_sets_maps_and_dnat_round_trip_through_nft() {
    let (listed, chains) = in_fresh_netns(|| {
        let mut sock = NftSocket::open().unwrap();
        let mut batch = sock.batch();
        ipv6_skeleton(&mut batch);
        // A table of the ip6 family, to read its chain back typed.
        let ip6 = TableRef::new(Family::Ip6, "only6");
        batch.add_table(ip6, "", true);
        batch.add_chain(
            ip6,
            "fwd",
            Some(BaseChain {
                kind: ChainType::Filter,
                hook: Hook::Forward,
                priority: 5,
            }),
        );
        sock.commit(batch).unwrap();

        let dev = IfName::new("br-six").unwrap();
        let (first, last) = ctnet_nft::ipv6_bounds(v6("fd00:1::"), 64);
        let tcp = 6;
        let mut batch = sock.batch();
        batch.add_elements(
            T6,
            "prefixes6",
            &[
                Element::ipv6_prefix(v6("fd00:1::"), 64),
                Element::prefix(v6("fd00:2::").into(), 48),
            ],
            "two v6 prefixes",
        );
        batch.add_elements(
            T6,
            "pairs6",
            &[Element::Range {
                first: Key::new().ipv6(first).ifname(&dev),
                last: Key::new().ipv6(last).ifname(&dev),
            }],
            "a v6 pair",
        );
        let to = Key::new().ipv6(v6("fd00:1::2")).port(80);
        batch.add_elements(
            T6,
            "ports6",
            &[Element::Mapping {
                key: Key::new().proto(tcp).port(8080),
                value: to.clone(),
            }],
            "a v6 port",
        );
        let on = Key::new()
            .ip(v6("2001:db8::1").into())
            .proto(tcp)
            .port(8443);
        batch.add_elements(
            T6,
            "addr_ports6",
            &[Element::Mapping {
                key: on.clone(),
                value: Key::new().ipv6(v6("fd00:1::3")).port(443),
            }],
            "a v6 port on one address",
        );
        sock.commit(batch).unwrap();
        assert_eq!(
            sock.get_element(T6, "ports6", &Key::new().proto(tcp).port(8080))
                .unwrap()
                .as_deref(),
            Some(to.as_bytes())
        );
        let elsewhere = Key::new().ipv6(v6("2001:db8::2")).proto(tcp).port(8443);
        assert_eq!(
            sock.get_element(T6, "addr_ports6", &elsewhere).unwrap(),
            None
        );
        assert!(sock.get_element(T6, "addr_ports6", &on).unwrap().is_some());
        let chains = sock.list_chains().unwrap();
        (nft(&["-s", "list", "table", "inet", "t6"]), chains)
    });
    // nft wraps long element lists and leaves out `meta nfproto ipv6` where an ip6
    // match already implies it.
    let listed = listed.split_whitespace().collect::<Vec<_>>().join(" ");
    for expected in [
        "type ipv6_addr flags interval",
        "elements = { fd00:1::/64, fd00:2::/48 }",
        "type ipv6_addr . ifname",
        "elements = { fd00:1::/64 . \"br-six\" }",
        "type inet_proto . inet_service : ipv6_addr . inet_service",
        "elements = { tcp . 8080 : fd00:1::2 . 80 }",
        "type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service",
        "elements = { 2001:db8::1 . tcp . 8443 : fd00:1::3 . 443 }",
        "fib daddr type local dnat ip6 to ip6 daddr . meta l4proto . th dport map @addr_ports6 comment \"v6 dnat by address\"",
        "meta nfproto ipv6 fib daddr type local dnat ip6 to meta l4proto . th dport map @ports6 comment \"v6 dnat\"",
        "ip6 saddr @prefixes6 ip6 saddr . oifname != @pairs6 counter masquerade comment \"v6 masquerade\"",
        "ct status dnat ip6 saddr fd00:1::/64 ip6 daddr fd00:2::5 counter masquerade comment \"v6 prefixes\"",
    ] {
        assert!(listed.contains(expected), "{expected:?} not in\n{listed}");
    }
    let fwd = chains
        .iter()
        .find(|c| c.name == "fwd")
        .expect("the ip6 chain is listed");
    assert_eq!(fwd.family, Family::Ip6);
    assert_eq!(fwd.hook, Some((Hook::Forward, 5)));
    assert_eq!(fwd.kind, Some(ChainType::Filter));
    let pre = chains.iter().find(|c| c.name == "pre").unwrap();
    assert_eq!((pre.family, pre.table.as_str()), (Family::Inet, "t6"));
    assert_eq!(pre.hook, Some((Hook::Prerouting, -100)));
    assert_eq!(pre.kind, Some(ChainType::Nat));
}

#[test]
fn listed_rules_go_back_unchanged_into_a_table_made_again_in_one_batch() {
    let (before, after, rules, sets, elements) = in_fresh_netns(|| {
        let mut sock = NftSocket::open().unwrap();
        let mut batch = sock.batch();
        skeleton(&mut batch);
        batch.add_chain(T, "mine", None);
        let prefix = Element::ipv4_prefix(Ipv4Addr::new(10, 1, 0, 0), 16);
        batch.add_elements(T, "prefixes", std::slice::from_ref(&prefix), "a prefix");
        sock.commit(batch).unwrap();
        add_rule_to_mine(&[
            "ip",
            "saddr",
            "192.0.2.1",
            "tcp",
            "dport",
            "22",
            "counter",
            "drop",
            "comment",
            "\"kept\"",
        ]);
        add_rule_to_mine(&["ip", "saddr", "{ 192.0.2.2, 192.0.2.3 }", "drop"]);
        let before = nft(&["-s", "list", "chain", "inet", "t", "mine"]);
        let rules = sock.list_rules(T).unwrap();
        let sets = sock.list_sets(T).unwrap();
        let mut elements = sock.list_elements(T, "prefixes").unwrap();
        let mut expected = prefix.as_listed();
        elements.sort();
        expected.sort();
        assert_eq!(elements, expected);
        // Delete and make again in one batch, the chain's plain rule carried over.
        let mut batch = sock.batch();
        batch.destroy_table(T);
        skeleton(&mut batch);
        batch.add_chain(T, "mine", None);
        for rule in rules
            .iter()
            .filter(|r| r.chain == "mine" && !r.uses_anonymous_set)
        {
            batch.add_listed_rule(T, rule);
        }
        sock.commit(batch).unwrap();
        let after = nft(&["-s", "list", "chain", "inet", "t", "mine"]);
        (before, after, rules, sets, elements)
    });
    let mine: Vec<_> = rules.iter().filter(|r| r.chain == "mine").collect();
    assert_eq!(mine.len(), 2);
    assert_eq!(mine[0].comment, "kept");
    assert!(!mine[0].uses_anonymous_set && mine[1].uses_anonymous_set);
    let post: Vec<_> = rules.iter().filter(|r| r.chain == "post").collect();
    assert_eq!(post.len(), 1);
    assert_eq!(post[0].comment, "a comment");
    assert_eq!(
        post[0].expression_names,
        ["meta", "cmp", "payload", "lookup", "counter", "masq"]
    );
    let mut sets = sets;
    sets.sort();
    assert_eq!(sets, ["pairs", "ports", "prefixes"]);
    assert_eq!(elements.len(), 2, "an interval is its start and its end");
    assert!(before.contains("ip saddr 192.0.2.1 tcp dport 22 counter drop comment \"kept\""));
    assert!(
        after.contains("ip saddr 192.0.2.1 tcp dport 22 counter drop comment \"kept\""),
        "{after}"
    );
    assert!(!after.contains("192.0.2.2"), "{after}");
}

/// `tcp . port` → `addr . 80`, as the engine publishes ports.
fn published(port: u16, addr: Ipv4Addr) -> Element {
    Element::Mapping {
        key: Key::new().proto(6).port(port),
        value: Key::new().ipv4(addr).port(80),
    }
}

fn port_key(port: u16) -> Key {
    Key::new().proto(6).port(port)
}

#[test]
fn an_expired_element_is_gone_after_a_tick_and_its_key_can_map_elsewhere() {
    let ports = SetSpec::map(
        "ports",
        vec![KeyField::InetProto, KeyField::InetService],
        vec![KeyField::Ipv4Addr, KeyField::InetService],
    );
    let (a, b, c) = (
        Ipv4Addr::new(10, 0, 0, 2),
        Ipv4Addr::new(10, 0, 0, 3),
        Ipv4Addr::new(10, 0, 0, 4),
    );
    let (wrong_value, no_timeouts, after, listed, refilled) = in_fresh_netns(move || {
        let mut sock = NftSocket::open().unwrap();
        let mut batch = sock.batch();
        batch.add_table(T, "made by a test", true);
        batch.add_set(T, &ports.clone().with_timeouts());
        batch.add_set(
            T,
            &SetSpec {
                name: "plain".into(),
                ..ports.clone()
            },
        );
        batch.add_elements(T, "ports", &[published(80, a), published(81, a)], "two");
        batch.add_elements(T, "plain", &[published(80, a)], "one");
        sock.commit(batch).unwrap();

        // The value must be the element's own: another is refused, and nothing changes.
        let mut batch = sock.batch();
        batch.expire_elements(T, "ports", &[published(81, b)], "a wrong value");
        let wrong_value = sock.commit(batch).unwrap_err();
        // A map made without timeouts cannot expire anything.
        let mut batch = sock.batch();
        batch.expire_elements(T, "plain", &[published(80, a)], "in a plain map");
        let no_timeouts = sock.commit(batch).unwrap_err();

        let mut batch = sock.batch();
        batch.expire_elements(T, "ports", &[published(80, a)], "port 80");
        sock.commit(batch).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(30));
        let after = (
            sock.get_element(T, "ports", &port_key(80)).unwrap(),
            sock.get_element(T, "ports", &port_key(81)).unwrap(),
            sock.get_element(T, "plain", &port_key(80)).unwrap(),
        );
        let listed = nft(&["list", "map", "inet", "t", "ports"]);

        // The key is free for another address at once, before the collector ran.
        let mut batch = sock.batch();
        batch.add_elements(T, "ports", &[published(80, c)], "port 80 again");
        sock.commit(batch).unwrap();
        let refilled = sock.get_element(T, "ports", &port_key(80)).unwrap();
        (wrong_value, no_timeouts, after, listed, refilled)
    });
    assert!(wrong_value.is_exists(), "{wrong_value}");
    assert!(
        wrong_value
            .to_string()
            .contains("expire a wrong value in set inet t ports"),
        "{wrong_value}"
    );
    assert!(!no_timeouts.is_exists(), "{no_timeouts}");
    let value = |addr: Ipv4Addr| Some(Key::new().ipv4(addr).port(80).as_bytes().to_vec());
    assert_eq!(after.0, None, "port 80 still mapped after it expired");
    assert_eq!(after.1, value(a), "the refused expiry changed port 81");
    assert_eq!(
        after.2,
        value(a),
        "the refused expiry changed the plain map"
    );
    assert!(listed.contains("flags timeout"), "{listed}");
    assert!(!listed.contains("tcp . 80 "), "{listed}");
    assert!(listed.contains("tcp . 81 : 10.0.0.2 . 80"), "{listed}");
    assert_eq!(refilled, value(c));
}

/// A bridge table with a counted set of ports and `interface . MAC` / `interface .
/// address` sets, and a rule on ARP's sender fields: nft reads back what nft itself would
/// write, and an element's counter is read (zero: no frame passed here).
#[test]
fn a_bridge_table_with_layer_2_fields_and_counted_elements_round_trips_through_nft() {
    const B: TableRef = TableRef::new(Family::Bridge, "b");
    let listing = in_fresh_netns(|| {
        let mut socket = NftSocket::open().unwrap();
        let mut batch = socket.batch();
        batch.add_table(B, "made by a test", true);
        let ports = SetSpec::exact("ports", vec![KeyField::IfName])
            .with_timeouts()
            .with_counters();
        batch.add_set(B, &ports);
        batch.add_set(
            B,
            &SetSpec::exact("mac", vec![KeyField::IfName, KeyField::EtherAddr]),
        );
        batch.add_set(
            B,
            &SetSpec::exact("v4", vec![KeyField::IfName, KeyField::Ipv4Addr]),
        );
        batch.add_chain(
            B,
            "pre",
            Some(BaseChain {
                kind: ChainType::Filter,
                hook: Hook::Prerouting,
                priority: -200,
            }),
        );
        let arp = Rule::new()
            .ether_type(0x0806)
            .not_in_set(&[Field::IifName, Field::ArpSha], "mac")
            .in_set(&[Field::IifName], "ports")
            .drop();
        batch.add_rule(B, "pre", arp.exprs(), "arp");
        let ip = Rule::new()
            .ether_type(0x0800)
            .not_in_set(&[Field::IifName, Field::IpSaddr], "v4")
            .in_set(&[Field::IifName], "ports")
            .drop();
        batch.add_rule(B, "pre", ip.exprs(), "ip");
        let veth = IfName::new("veth0").unwrap();
        let mac = [0x02, 0x42, 10, 0, 0, 2];
        batch.add_elements(
            B,
            "ports",
            &[Element::Key(Key::new().ifname(&veth))],
            "a port",
        );
        batch.add_elements(
            B,
            "mac",
            &[Element::Key(Key::new().ifname(&veth).mac(mac))],
            "its MAC",
        );
        socket.commit(batch).unwrap();
        let key = Key::new().ifname(&veth);
        assert_eq!(
            socket.element_counter(B, "ports", &key).unwrap(),
            Some((0, 0))
        );
        let absent = Key::new().ifname(&IfName::new("veth9").unwrap());
        assert_eq!(socket.element_counter(B, "ports", &absent).unwrap(), None);
        nft(&["list", "table", "bridge", "b"])
    });
    for want in [
        "type ifname . ether_addr",
        "\"veth0\" . 02:42:0a:00:00:02",
        "\"veth0\" counter packets 0 bytes 0",
        "iifname . arp saddr ether != @mac iifname @ports drop",
        "iifname . ip saddr != @v4 iifname @ports drop",
    ] {
        assert!(listing.contains(want), "{want:?} not in:\n{listing}");
    }
}
