//! Bridge networking with real traffic: containers on one bridge, the gateway, the wan
//! through masquerade, several networks, and many concurrent attaches.

mod support;

use support::{Sandbox, UPLINK_HOST, WAN_SERVER};

/// Addresses are handed out in turn, as Docker, Podman and CNI's host-local do: the one a
/// detached container gave back is not reused while others are free (a neighbour may
/// still have it in its ARP cache), and after the end of the subnet allocation starts
/// again at the bottom, skipping what is held. Each newcomer is reachable at the address
/// it was given.
#[test]
fn addresses_are_handed_out_in_turn_and_wrap_round() {
    let mut sb = Sandbox::new();
    sb.ok("ctnet network create tiny --subnet 10.12.0.0/29 && \
           for c in a b c d e f; do ctnet netns add $c; done && \
           ctnet attach tiny a && ctnet attach tiny b && ctnet detach tiny a && ctnet attach tiny c");
    assert_eq!(sb.addr_of("b", "eth0"), "10.12.0.3");
    assert_eq!(
        sb.addr_of("c", "eth0"),
        "10.12.0.4",
        "the released .2 is not reused yet"
    );
    sb.ok("ctnet attach tiny d && ctnet attach tiny e");
    assert_eq!(sb.addr_of("e", "eth0"), "10.12.0.6");
    // Past .6 (the last host address of the /29) it wraps round to the free .2.
    sb.ok("ctnet attach tiny f");
    assert_eq!(sb.addr_of("f", "eth0"), "10.12.0.2");
    sb.serve(Some("f"), "--tcp 80");
    let seen = sb.reach(Some("c"), "tcp", "10.12.0.2:80");
    assert!(seen.starts_with("from 10.12.0.4:"), "f saw {seen}");
    // Now every address is held: the next attach is refused and leaves nothing behind.
    sb.ok("ctnet netns add g");
    let before = sb.snapshot();
    let err = sb.fails("ctnet attach tiny g");
    assert!(
        err.contains("subnet 10.12.0.0/29") && err.contains("no free address"),
        "{err}"
    );
    assert_eq!(sb.snapshot(), before);
}

/// Multicast between the containers of one network: a datagram sent to a group reaches
/// every member, with no querier anywhere. ctnet's bridges flood multicast as a plain
/// switch does (snooping off: with it on, every new port re-armed the query timers of
/// all the others, see `Engine::build_network`).
#[test]
fn multicast_reaches_every_member_of_a_group_on_the_bridge() {
    let mut sb = Sandbox::new();
    sb.ok(
        "ctnet network create blue --subnet 10.13.0.0/24 --bridge ctblue && \
           for c in a b c; do ctnet netns add $c && ctnet attach blue $c; done",
    );
    sb.serve(Some("b"), "--udp 5353 --join 239.7.7.7");
    sb.serve(Some("c"), "--udp 5353 --join 239.7.7.7");
    let answers = sb.ok("ip netns exec a ctnet-probe udp 239.7.7.7:5353 --timeout 2");
    for member in ["10.13.0.3", "10.13.0.4"] {
        assert!(
            answers.contains(&format!("{member}: from 10.13.0.2:")),
            "{member} should have answered the group: {answers}"
        );
    }
    assert_eq!(
        answers.lines().count(),
        2,
        "only the two members answer: {answers}"
    );
    let bridge = sb.ok("ip -d link show ctblue");
    assert!(bridge.contains("mcast_snooping 0"), "{bridge}");
}

#[test]
fn containers_on_one_bridge_talk_tcp_udp_icmp_and_reach_the_gateway() {
    let mut sb = Sandbox::new();
    sb.ok("ctnet network create blue --subnet 10.10.0.0/24 && ctnet netns add c1 && ctnet netns add c2 \
           && ctnet attach blue c1 && ctnet attach blue c2");
    let ip1 = sb.addr_of("c1", "eth0");
    let ip2 = sb.addr_of("c2", "eth0");
    assert_eq!(ip1, "10.10.0.2");
    assert_eq!(ip2, "10.10.0.3");
    sb.serve(Some("c2"), "--tcp 80 --udp 53");
    let tcp = sb.reach(Some("c1"), "tcp", &format!("{ip2}:80"));
    assert!(tcp.starts_with(&format!("from {ip1}:")), "c2 saw {tcp}");
    let udp = sb.reach(Some("c1"), "udp", &format!("{ip2}:53"));
    assert!(udp.starts_with(&format!("from {ip1}:")), "c2 saw {udp}");
    sb.ok(&format!("ip netns exec c1 ping -c1 -W2 {ip2}"));
    // The gateway is the host itself: ICMP to it, and TCP both ways.
    sb.ok("ip netns exec c1 ping -c1 -W2 10.10.0.1");
    sb.serve(None, "--bind 10.10.0.1 --tcp 8081");
    let seen = sb.reach(Some("c2"), "tcp", "10.10.0.1:8081");
    assert!(seen.starts_with(&format!("from {ip2}:")), "host saw {seen}");
    let seen = sb.reach(None, "tcp", &format!("{ip2}:80"));
    assert!(seen.starts_with("from 10.10.0.1:"), "c2 saw {seen}");
    // The container side is eth0 with the default route via the gateway, lo is up.
    let routes = sb.ok("ip -n c1 route");
    assert!(
        routes.contains("default via 10.10.0.1 dev eth0"),
        "{routes}"
    );
    assert!(
        sb.ok("ip -n c1 -br link show lo").contains("UP")
            || sb.ok("ip -n c1 -br link show lo").contains("UNKNOWN")
    );
    // An IPv4-only network gives the veths no IPv6: no link-local on eth0 (as Docker),
    // and IPv6 off on the host sides, whose routes would slow every later attach.
    assert_eq!(sb.ok("ip -n c1 -6 -o addr show dev eth0").trim(), "");
    let host_sides = sb.ok("cat /proc/sys/net/ipv6/conf/veth*/disable_ipv6");
    assert_eq!(
        host_sides.split_whitespace().collect::<Vec<_>>(),
        ["1", "1"]
    );
}

#[test]
fn outbound_traffic_is_masqueraded_behind_the_uplink_address() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.serve(
        Some("wan"),
        &format!("--bind {WAN_SERVER} --tcp 80 --udp 53"),
    );
    // Without ctnet the wan cannot answer a container subnet: prove the test can fail.
    sb.ok("ip netns add raw && ip link add rawh type veth peer name eth0 netns raw && \
           ip addr add 10.99.0.1/24 dev rawh && ip link set rawh up && ip -n raw addr add 10.99.0.2/24 dev eth0 && \
           ip -n raw link set eth0 up && ip -n raw route add default via 10.99.0.1 && \
           echo 1 > /proc/sys/net/ipv4/ip_forward");
    assert!(
        sb.probe(Some("raw"), "tcp", &format!("{WAN_SERVER}:80"))
            .is_err(),
        "unmasqueraded traffic got an answer"
    );

    sb.ok("ctnet netns add c1 && ctnet attach bridge c1");
    let tcp = sb.reach(Some("c1"), "tcp", &format!("{WAN_SERVER}:80"));
    assert!(
        tcp.starts_with(&format!("from {UPLINK_HOST}:")),
        "wan saw {tcp}"
    );
    let udp = sb.reach(Some("c1"), "udp", &format!("{WAN_SERVER}:53"));
    assert!(
        udp.starts_with(&format!("from {UPLINK_HOST}:")),
        "wan saw {udp}"
    );
    sb.ok(&format!("ip netns exec c1 ping -c1 -W2 {WAN_SERVER}"));
}

#[test]
fn masquerade_comes_back_when_the_table_is_deleted_or_emptied() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.serve(Some("wan"), &format!("--bind {WAN_SERVER} --tcp 80"));
    let wan = format!("{WAN_SERVER}:80");
    sb.ok("ctnet netns add c1 && ctnet attach bridge c1");
    assert!(sb
        .reach(Some("c1"), "tcp", &wan)
        .starts_with(&format!("from {UPLINK_HOST}:")));

    // Someone deletes ctnet's table: the next network made brings back all of it.
    sb.ok("nft delete table inet ctnet");
    assert!(sb.probe(Some("c1"), "tcp", &wan).is_err());
    sb.ok("ctnet network create other --subnet 10.77.0.0/24");
    assert!(sb
        .reach(Some("c1"), "tcp", &wan)
        .starts_with(&format!("from {UPLINK_HOST}:")));
    let rules = sb.ok("nft -s list table inet ctnet");
    assert!(rules.contains("10.77.0.0/24"), "{rules}");

    // Someone empties a set: `ctnet gc` rewrites the table from the store.
    sb.ok("nft flush set inet ctnet masq_subnets");
    assert!(sb.probe(Some("c1"), "tcp", &wan).is_err());
    sb.ok("ctnet gc");
    assert!(sb
        .reach(Some("c1"), "tcp", &wan)
        .starts_with(&format!("from {UPLINK_HOST}:")));
}

#[test]
fn internal_network_is_not_masqueraded() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.serve(Some("wan"), &format!("--bind {WAN_SERVER} --tcp 80"));
    sb.ok("ctnet network create secret --internal && ctnet netns add c1 && ctnet attach secret c1");
    assert!(sb
        .probe(Some("c1"), "tcp", &format!("{WAN_SERVER}:80"))
        .is_err());
}

#[test]
fn two_networks_and_a_container_on_both() {
    let mut sb = Sandbox::new();
    sb.ok("ctnet network create red --subnet 10.1.0.0/24 && ctnet network create green --subnet 10.2.0.0/24 && \
           for c in a b both; do ctnet netns add $c; done && \
           ctnet attach red a && ctnet attach green b && ctnet attach red both && ctnet attach green both");
    assert_eq!(sb.addr_of("both", "eth0"), "10.1.0.3");
    assert_eq!(sb.addr_of("both", "eth1"), "10.2.0.3");
    // Only the first network sets the default route.
    let routes = sb.ok("ip -n both route");
    assert!(routes.contains("default via 10.1.0.1 dev eth0"), "{routes}");
    assert_eq!(routes.matches("default").count(), 1, "{routes}");
    sb.serve(Some("both"), "--tcp 80");
    let from_a = sb.reach(Some("a"), "tcp", "10.1.0.3:80");
    assert!(from_a.starts_with("from 10.1.0.2:"), "{from_a}");
    let from_b = sb.reach(Some("b"), "tcp", "10.2.0.3:80");
    assert!(from_b.starts_with("from 10.2.0.2:"), "{from_b}");
    let nets = sb.ok("ctnet network ls");
    assert!(
        nets.contains("red") && nets.contains("green") && nets.contains("bridge"),
        "{nets}"
    );
}

#[test]
fn thirty_two_concurrent_attaches_get_distinct_reachable_addresses() {
    let sb = Sandbox::new();
    sb.ok("ctnet network create many --subnet 10.32.0.0/24 && for i in $(seq 1 32); do ctnet netns add c$i; done");
    sb.ok("pids=''; for i in $(seq 1 32); do ctnet attach many c$i >/dev/null & pids=\"$pids $!\"; done; \
           rc=0; for p in $pids; do wait $p || rc=1; done; exit $rc");
    let mut addrs: Vec<String> = (1..=32)
        .map(|i| sb.addr_of(&format!("c{i}"), "eth0"))
        .collect();
    addrs.sort();
    addrs.dedup();
    assert_eq!(addrs.len(), 32, "{addrs:?}");
    let listed = sb.ok("ctnet ls --format json");
    let rows: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 32);
    // Every container answers from the host and from its neighbour.
    for ip in &addrs {
        sb.ok(&format!("ping -c1 -W2 {ip}"));
    }
    sb.ok(&format!("ip netns exec c1 ping -c1 -W2 {}", addrs[31]));
}
