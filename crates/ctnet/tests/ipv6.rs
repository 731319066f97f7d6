//! IPv6 dual stack with real traffic: containers on one network over TCP, UDP and ICMPv6,
//! NAT66 to the wan, published ports on the host's IPv6 addresses, IPv6-only networks,
//! isolation and internal networks holding for IPv6, the sysctls a container and the host
//! end up with, and every refused IPv6 input leaving nothing changed.

mod support;

use std::net::Ipv6Addr;

use serde_json::Value;
use support::{refused, Sandbox, UPLINK_HOST, UPLINK_HOST6, UPLINK_WAN, UPLINK_WAN6, WAN_SERVER6};

/// `[addr]:port`, the way an IPv6 target is written.
fn at(addr: &str, port: u16) -> String {
    format!("[{addr}]:{port}")
}

/// The start of `ctnet-probe`'s answer to a client at IPv6 `addr`.
fn from6(addr: &str) -> String {
    format!("from [{addr}]:")
}

/// A dual-stack network `ds` (fd00:10::/64 and 10.20.0.0/24) with containers c1 and c2.
fn dual_stack_pair() -> Sandbox {
    let sb = Sandbox::new();
    sb.ok(
        "ctnet network create ds --ipv6 --subnet fd00:10::/64 --subnet 10.20.0.0/24 && \
           ctnet netns add c1 && ctnet netns add c2 && ctnet attach ds c1 && ctnet attach ds c2",
    );
    sb
}

/// The harness itself, against any ctnet: the host reaches the wan's IPv6 server (which
/// sees the uplink address), and a namespace with a ULA routed through the host gets no
/// answer from the wan, so the NAT66 assertions below can fail.
#[test]
fn the_wan_answers_only_the_uplink_over_v6() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.serve(
        Some("wan"),
        &format!("--bind {WAN_SERVER6} --tcp 80 --udp 53"),
    );
    let wan = at(WAN_SERVER6, 80);
    assert!(sb
        .reach(None, "tcp", &wan)
        .starts_with(&from6(UPLINK_HOST6)));
    assert!(sb
        .reach(None, "udp", &at(WAN_SERVER6, 53))
        .starts_with(&from6(UPLINK_HOST6)));
    sb.ok(&format!("ping -6 -c1 -W2 {WAN_SERVER6}"));
    sb.ok(
        "ip netns add raw && ip link add rawh type veth peer name eth0 netns raw && \
           ip addr add fd00:99::1/64 dev rawh nodad && ip link set rawh up && \
           ip -n raw addr add fd00:99::2/64 dev eth0 nodad && ip -n raw link set eth0 up && \
           ip -n raw -6 route add default via fd00:99::1 && \
           echo 1 > /proc/sys/net/ipv6/conf/all/forwarding",
    );
    // The raw namespace reaches the host, so the wan's silence is the missing route back.
    sb.ok("ip netns exec raw ping -6 -c1 -W2 fd00:99::1");
    assert!(
        sb.probe(Some("raw"), "tcp", &wan).is_err(),
        "un-NATed IPv6 traffic got an answer from the wan"
    );
}

/// Container to container over TCP, UDP and ICMPv6, both ways with the host (the gateway),
/// the default route, the addresses as the kernel has them and as `ctnet ls` lists them,
/// and IPv4 on the same network still working.
#[test]
fn containers_on_a_dual_stack_network_talk_over_v6() {
    let mut sb = dual_stack_pair();
    let ip1 = sb.addr6_of("c1", "eth0");
    let ip2 = sb.addr6_of("c2", "eth0");
    assert!(
        ip1.starts_with("fd00:10::") && ip2.starts_with("fd00:10::") && ip1 != ip2,
        "{ip1} {ip2}"
    );
    assert_ne!(ip1, "fd00:10::1", "a container was given the gateway");
    let v4_1 = sb.addr_of("c1", "eth0");
    let v4_2 = sb.addr_of("c2", "eth0");
    assert_eq!((v4_1.as_str(), v4_2.as_str()), ("10.20.0.2", "10.20.0.3"));
    sb.serve(Some("c2"), "--tcp 80 --udp 53");
    let tcp = sb.reach(Some("c1"), "tcp", &at(&ip2, 80));
    assert!(tcp.starts_with(&from6(&ip1)), "c2 saw {tcp}");
    let udp = sb.reach(Some("c1"), "udp", &at(&ip2, 53));
    assert!(udp.starts_with(&from6(&ip1)), "c2 saw {udp}");
    sb.ok(&format!("ip netns exec c1 ping -6 -c1 -W2 {ip2}"));
    // The gateway is the host: ICMPv6 to it, and TCP both ways.
    sb.ok("ip netns exec c1 ping -6 -c1 -W2 fd00:10::1");
    sb.serve(None, "--bind fd00:10::1 --tcp 8081");
    let seen = sb.reach(Some("c2"), "tcp", &at("fd00:10::1", 8081));
    assert!(seen.starts_with(&from6(&ip2)), "host saw {seen}");
    let seen = sb.reach(None, "tcp", &at(&ip2, 80));
    assert!(seen.starts_with(&from6("fd00:10::1")), "c2 saw {seen}");
    let routes = sb.ok("ip -n c1 -6 route");
    assert!(
        routes.contains("default via fd00:10::1 dev eth0"),
        "{routes}"
    );
    // IPv4 on the same network is as before.
    let tcp = sb.reach(Some("c1"), "tcp", &format!("{v4_2}:80"));
    assert!(tcp.starts_with(&format!("from {v4_1}:")), "c2 saw {tcp}");
    // `ctnet ls` lists both addresses of each container, IPv4 first.
    let rows: Value = serde_json::from_str(&sb.ok("ctnet ls --format json")).unwrap();
    let c1 = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["container"] == "c1")
        .unwrap_or_else(|| panic!("c1 not listed: {rows}"));
    assert_eq!(c1["ips"], serde_json::json!([v4_1, ip1]), "{c1}");
}

/// No duplicate address detection holds anything up: the gateway and a neighbour answer
/// over IPv6 in the same breath as the attach, with no sleep and a one-second timeout
/// (detection takes a second at the kernel's defaults, and a tentative address neither
/// sends nor receives).
#[test]
fn v6_is_usable_right_after_attach() {
    let mut sb = Sandbox::new();
    sb.ok(
        "ctnet network create ds --ipv6 --subnet fd00:11::/64 --subnet 10.21.0.0/24 && \
           ctnet netns add c1 && ctnet netns add c2",
    );
    // Listening on the wildcard before c2 has any address.
    sb.serve(Some("c2"), "--tcp 80");
    let out = sb.ok("ctnet attach ds c1 --ip6 fd00:11::10 >/dev/null && \
         ip netns exec c1 ping -6 -c1 -W1 fd00:11::1 >/dev/null && \
         ctnet attach ds c2 --ip6 fd00:11::20 >/dev/null && \
         ip -n c2 -6 -o addr show dev eth0 scope global && \
         ip netns exec c1 ctnet-probe tcp '[fd00:11::20]:80' --timeout 1");
    assert!(out.contains("inet6 fd00:11::20/64"), "{out}");
    assert!(
        !out.contains("tentative") && !out.contains("dadfailed"),
        "{out}"
    );
    assert!(out.contains(&from6("fd00:11::10")), "{out}");
}

/// NAT66: a container on a network made with just `--ipv6` (a ULA /64 picked for it)
/// reaches the wan's IPv6 server, which sees the host's uplink address.
#[test]
fn outbound_v6_is_masqueraded_behind_the_uplink_address() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.serve(
        Some("wan"),
        &format!("--bind {WAN_SERVER6} --tcp 80 --udp 53"),
    );
    sb.ok("ctnet network create auto6 --ipv6 && ctnet netns add c1 && ctnet attach auto6 c1");
    let inspect: Value =
        serde_json::from_str(&sb.ok("ctnet network inspect auto6 --format json")).unwrap();
    let subnets = inspect["subnets"]
        .as_array()
        .unwrap_or_else(|| panic!("no subnets list: {inspect}"));
    assert_eq!(subnets.len(), 2, "{inspect}");
    assert!(
        !subnets[0]["subnet"].as_str().unwrap().contains(':'),
        "IPv4 first: {inspect}"
    );
    let v6 = subnets[1]["subnet"].as_str().unwrap();
    let (prefix, len) = v6.split_once('/').unwrap();
    let prefix = u128::from(prefix.parse::<Ipv6Addr>().unwrap());
    assert!(prefix >> 120 == 0xfd && len == "64", "a ULA /64: {v6}");
    let gateway: Ipv6Addr = subnets[1]["gateway"].as_str().unwrap().parse().unwrap();
    assert_eq!(u128::from(gateway), prefix + 1, "the first host of {v6}");
    let ip: Ipv6Addr = sb.addr6_of("c1", "eth0").parse().unwrap();
    assert_eq!(u128::from(ip) >> 64, prefix >> 64, "{ip} not in {v6}");

    let tcp = sb.reach(Some("c1"), "tcp", &at(WAN_SERVER6, 80));
    assert!(tcp.starts_with(&from6(UPLINK_HOST6)), "wan saw {tcp}");
    let udp = sb.reach(Some("c1"), "udp", &at(WAN_SERVER6, 53));
    assert!(udp.starts_with(&from6(UPLINK_HOST6)), "wan saw {udp}");
    sb.ok(&format!("ip netns exec c1 ping -6 -c1 -W2 {WAN_SERVER6}"));
}

/// `-p 8080:80` on a dual-stack network answers on the host's IPv6 addresses: from the
/// wan (the container sees the real client), from the host, hairpin, from a neighbour and
/// from another network; IPv4 publishing is unchanged; an unpublished port stays shut.
#[test]
fn a_published_port_answers_over_v6_on_every_path() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.ok(
        "ctnet network create ds --ipv6 --subnet fd00:30::/64 --subnet 10.30.0.0/24 && \
           ctnet netns add web && ctnet attach ds web -p 8080:80 -p 5353:53/udp",
    );
    sb.serve(Some("web"), "--tcp 80 --udp 53 --tcp 81");
    let pub6 = at(UPLINK_HOST6, 8080);
    let seen = sb.reach(Some("wan"), "tcp", &pub6);
    assert!(seen.starts_with(&from6(UPLINK_WAN6)), "{seen}");
    let udp = sb.reach(Some("wan"), "udp", &at(UPLINK_HOST6, 5353));
    assert!(udp.starts_with(&from6(UPLINK_WAN6)), "{udp}");
    let v4 = sb.reach(Some("wan"), "tcp", &format!("{UPLINK_HOST}:8080"));
    assert!(v4.starts_with(&format!("from {UPLINK_WAN}:")), "{v4}");
    // The host itself, to its own uplink address.
    let seen = sb.reach(None, "tcp", &pub6);
    assert!(seen.starts_with(&from6(UPLINK_HOST6)), "{seen}");
    // Hairpin: the container through the host's IPv6 addresses reaches itself.
    sb.reach(Some("web"), "tcp", &pub6);
    sb.reach(Some("web"), "tcp", &at("fd00:30::1", 8080));
    sb.reach(Some("web"), "udp", &at(UPLINK_HOST6, 5353));
    // A neighbour on the same network, and a container on another dual-stack network.
    sb.ok("ctnet netns add same && ctnet attach ds same && \
           ctnet network create other --ipv6 --subnet fd00:31::/64 --subnet 10.31.0.0/24 && \
           ctnet netns add far && ctnet attach other far");
    sb.reach(Some("same"), "tcp", &pub6);
    sb.reach(Some("far"), "tcp", &pub6);
    sb.reach(Some("far"), "udp", &at(UPLINK_HOST6, 5353));
    assert!(sb.probe(Some("wan"), "tcp", &at(UPLINK_HOST6, 81)).is_err());
}

/// `-p [2001:db8:1::1]:7070:70` answers on that address only: not on the host's IPv4
/// uplink address, not on its other IPv6 address (the gateway).
#[test]
fn a_port_published_on_one_v6_address() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.ok(&format!(
        "ctnet network create ds --ipv6 --subnet fd00:40::/64 --subnet 10.40.0.0/24 && \
         ctnet netns add web && ctnet attach ds web -p '[{UPLINK_HOST6}]:7070:70'"
    ));
    sb.serve(Some("web"), "--tcp 70");
    let seen = sb.reach(Some("wan"), "tcp", &at(UPLINK_HOST6, 7070));
    assert!(seen.starts_with(&from6(UPLINK_WAN6)), "{seen}");
    sb.reach(None, "tcp", &at(UPLINK_HOST6, 7070));
    assert!(sb
        .probe(Some("wan"), "tcp", &format!("{UPLINK_HOST}:7070"))
        .is_err());
    assert!(sb.probe(None, "tcp", &at("fd00:40::1", 7070)).is_err());
}

/// `--ipv6 --ipv4 false`: no IPv4 at all in the container, IPv6 between containers, to
/// the gateway and (NAT66) to the wan.
#[test]
fn a_v6_only_network_works() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.serve(Some("wan"), &format!("--bind {WAN_SERVER6} --tcp 80"));
    sb.ok(
        "ctnet network create six --ipv6 --ipv4 false --subnet fd00:60::/64 && \
           ctnet netns add a && ctnet netns add b && ctnet attach six a && ctnet attach six b",
    );
    assert_eq!(sb.ok("ip -n a -4 -o addr show dev eth0").trim(), "");
    assert_eq!(sb.ok("ip -n a -4 route").trim(), "");
    let a = sb.addr6_of("a", "eth0");
    let b = sb.addr6_of("b", "eth0");
    assert!(
        a.starts_with("fd00:60::") && b.starts_with("fd00:60::"),
        "{a} {b}"
    );
    sb.serve(Some("b"), "--tcp 80");
    let seen = sb.reach(Some("a"), "tcp", &at(&b, 80));
    assert!(seen.starts_with(&from6(&a)), "{seen}");
    sb.ok("ip netns exec a ping -6 -c1 -W2 fd00:60::1");
    let seen = sb.reach(Some("a"), "tcp", &at(WAN_SERVER6, 80));
    assert!(seen.starts_with(&from6(UPLINK_HOST6)), "{seen}");
    let rows: Value = serde_json::from_str(&sb.ok("ctnet ls --format json")).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["container"] == "a")
        .unwrap_or_else(|| panic!("a not listed: {rows}"));
    assert_eq!(row["ips"], serde_json::json!([a]), "{row}");
}

/// Two dual-stack networks cannot reach each other over IPv6 either way; a container on
/// both reaches both; the wan, given a route to a container prefix, reaches only the
/// published port.
#[test]
fn dual_stack_networks_are_isolated_over_v6() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.ok(
        "ctnet network create red --ipv6 --subnet fd00:a1::/64 --subnet 10.1.0.0/24 && \
           ctnet network create green --ipv6 --subnet fd00:a2::/64 --subnet 10.2.0.0/24 && \
           for c in r g both; do ctnet netns add $c; done && \
           ctnet attach red r -p 8080:80 && ctnet attach green g && ctnet attach red both && ctnet attach green both",
    );
    let r = sb.addr6_of("r", "eth0");
    let g = sb.addr6_of("g", "eth0");
    let both_red = sb.addr6_of("both", "eth0");
    let both_green = sb.addr6_of("both", "eth1");
    sb.serve(Some("r"), "--tcp 80 --tcp 81");
    sb.serve(Some("g"), "--tcp 80");
    assert!(sb.probe(Some("g"), "tcp", &at(&r, 80)).is_err());
    assert!(sb.probe(Some("r"), "tcp", &at(&g, 80)).is_err());
    let seen = sb.reach(Some("both"), "tcp", &at(&r, 80));
    assert!(seen.starts_with(&from6(&both_red)), "{seen}");
    let seen = sb.reach(Some("both"), "tcp", &at(&g, 80));
    assert!(seen.starts_with(&from6(&both_green)), "{seen}");
    // Across networks through the published port is allowed.
    sb.reach(Some("g"), "tcp", &at(UPLINK_HOST6, 8080));
    sb.ok(&format!(
        "ip -n wan -6 route add fd00:a1::/64 via {UPLINK_HOST6}"
    ));
    assert!(sb.probe(Some("wan"), "tcp", &at(&r, 81)).is_err());
    assert!(sb.probe(Some("wan"), "tcp", &at(&r, 80)).is_err());
    sb.reach(Some("wan"), "tcp", &at(UPLINK_HOST6, 8080));
}

/// An internal dual-stack network: its containers talk to each other over IPv6, and reach
/// neither the wan (which here has a route back, so only a drop can stop it) nor another
/// network's containers, which cannot reach in either.
#[test]
fn an_internal_v6_network_reaches_nothing_outside_its_bridge() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.serve(Some("wan"), &format!("--bind {WAN_SERVER6} --tcp 80"));
    sb.ok(&format!(
        "ip -n wan -6 route add fd00:90::/64 via {UPLINK_HOST6} && \
         ctnet network create secret --internal --ipv6 --subnet fd00:90::/64 --subnet 10.9.0.0/24 && \
         ctnet network create open --ipv6 --subnet fd00:91::/64 --subnet 10.91.0.0/24 && \
         ctnet netns add a && ctnet netns add b && ctnet netns add out && \
         ctnet attach secret a && ctnet attach secret b && ctnet attach open out"
    ));
    let a = sb.addr6_of("a", "eth0");
    let b = sb.addr6_of("b", "eth0");
    let out = sb.addr6_of("out", "eth0");
    sb.serve(Some("b"), "--tcp 80");
    sb.serve(Some("out"), "--tcp 80");
    let seen = sb.reach(Some("a"), "tcp", &at(&b, 80));
    assert!(seen.starts_with(&from6(&a)), "{seen}");
    assert!(sb.probe(Some("a"), "tcp", &at(WAN_SERVER6, 80)).is_err());
    assert!(sb.probe(Some("a"), "tcp", &at(&out, 80)).is_err());
    assert!(sb.probe(Some("out"), "tcp", &at(&b, 80)).is_err());
    // The open network does reach the wan, so the silence above is the internal network's.
    sb.reach(Some("out"), "tcp", &at(WAN_SERVER6, 80));
}

/// The container takes no router advertisements (its routes are ctnet's), and enabling
/// IPv6 forwarding on the host does not silently cut a host interface off from the RAs it
/// was taking: accept_ra=1 becomes 2, as moby#43466 learned the hard way.
#[test]
fn router_advertisements_are_off_in_containers_and_kept_on_the_host() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.ok("echo 0 > /proc/sys/net/ipv6/conf/all/forwarding && \
           echo 1 > /proc/sys/net/ipv6/conf/uplink/accept_ra");
    sb.ok(
        "ctnet network create ds --ipv6 --subnet fd00:50::/64 --subnet 10.50.0.0/24 && \
           ctnet netns add c1 && ctnet attach ds c1",
    );
    assert_eq!(
        sb.ok("ip netns exec c1 cat /proc/sys/net/ipv6/conf/eth0/accept_ra")
            .trim(),
        "0"
    );
    assert_eq!(
        sb.ok("cat /proc/sys/net/ipv6/conf/all/forwarding").trim(),
        "1"
    );
    assert_eq!(
        sb.ok("cat /proc/sys/net/ipv6/conf/uplink/accept_ra").trim(),
        "2"
    );
}

/// A dual-stack network `blue` (fd00:7::/64, 10.7.0.0/24) with c1 at fd00:7::2, an
/// IPv4-only network `v4only`, and a free container c2.
fn world6() -> Sandbox {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.ok(
        "ctnet network create blue --ipv6 --subnet fd00:7::/64 --subnet 10.7.0.0/24 && \
           ctnet network create v4only --subnet 10.8.0.0/24 && \
           ctnet netns add c1 && ctnet netns add c2 && ctnet attach blue c1 --ip6 fd00:7::2",
    );
    sb
}

#[test]
fn malformed_v6_subnets_and_gateways() {
    let sb = world6();
    refused(
        &sb,
        "ctnet network create x --ipv6 --subnet fd00:1::5/64",
        &["fd00:1::5/64", "host bits"],
    );
    refused(
        &sb,
        "ctnet network create x --ipv6 --subnet fd00:1::/124",
        &["fd00:1::/124", "/120"],
    );
    refused(
        &sb,
        "ctnet network create x --ipv6 --subnet fd00::/40",
        &["fd00::/40", "/48"],
    );
    refused(
        &sb,
        "ctnet network create x --subnet 10.9.0.0/24 --subnet 10.10.0.0/24",
        &["10.10.0.0/24"],
    );
    refused(
        &sb,
        "ctnet network create x --subnet fd00:1::/64",
        &["fd00:1::/64", "--ipv6"],
    );
    refused(
        &sb,
        "ctnet network create x --ipv6 --subnet fd00:1::/64 --gateway fd00:2::1",
        &["fd00:2::1", "fd00:1::/64"],
    );
}

#[test]
fn overlapping_v6_subnets_name_the_clash() {
    let sb = world6();
    for clash in ["fd00:7::/64", "fd00:7::/56"] {
        refused(
            &sb,
            &format!("ctnet network create x --ipv6 --subnet {clash}"),
            &[clash, "overlaps network \"blue\""],
        );
    }
}

#[test]
fn bad_static_v6_addresses_and_ports() {
    let sb = world6();
    refused(
        &sb,
        "ctnet attach blue c2 --ip6 fd00:8::5",
        &["fd00:8::5", "fd00:7::/64"],
    );
    refused(
        &sb,
        "ctnet attach blue c2 --ip6 fd00:7::2",
        &["fd00:7::2", "already taken by container \"c1\""],
    );
    refused(
        &sb,
        "ctnet attach v4only c2 --ip6 fd00:8::5",
        &["v4only", "--ip6"],
    );
    refused(&sb, "ctnet attach blue c2 -p '[::1]:8080:80'", &["::1"]);
    // A good static address works.
    sb.ok("ctnet attach blue c2 --ip6 fd00:7::50");
    assert_eq!(sb.addr6_of("c2", "eth0"), "fd00:7::50");
}

/// Each family's default route comes from the container's first network of that family:
/// a container on an IPv4-only network that then joins a dual-stack one keeps its IPv4
/// default route and gets the IPv6 one from the second network, and reaches the wan over
/// both.
#[test]
fn default_routes_come_from_the_first_network_of_each_family() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.serve(Some("wan"), &format!("--bind {WAN_SERVER6} --tcp 80"));
    sb.ok("ctnet network create v4only --subnet 10.60.0.0/24 && \
           ctnet network create ds --ipv6 --subnet fd00:60::/64 --subnet 10.61.0.0/24 && \
           ctnet netns add c1 && ctnet attach v4only c1 && ctnet attach ds c1");
    let v4 = sb.ok("ip -n c1 -4 route show default");
    assert!(v4.contains("via 10.60.0.1 dev eth0"), "{v4}");
    assert!(!v4.contains("10.61.0.1"), "{v4}");
    let v6 = sb.ok("ip -n c1 -6 route show default");
    assert!(v6.contains("via fd00:60::1 dev eth1"), "{v6}");
    let seen = sb.reach(Some("c1"), "tcp", &format!("[{WAN_SERVER6}]:80"));
    assert!(seen.starts_with(&from6(UPLINK_HOST6)), "{seen}");
    // Detached and attached again, the IPv6 default route comes back with it.
    sb.ok("ctnet detach ds c1 && ctnet attach ds c1");
    let v6 = sb.ok("ip -n c1 -6 route show default");
    assert!(v6.contains("via fd00:60::1"), "{v6}");
}
