//! Default routes of containers on several networks, and networks without addresses
//! (issue 13): an internal network never gives a default route, so a container on an
//! internal and a public network reaches the wan through the public one whatever the
//! order (CLI and netavark role); under the netavark role the `metric` option picks the
//! egress and detaching that network moves it to the other; `ipam none` networks give
//! their containers an L2 network without addresses; an unknown IPAM driver makes
//! nothing.
//!
//! Both networks masquerade to the host's one uplink address, so the egress is told
//! apart by a counter per bridge in a test-owned nftables table (forward hook, packets
//! to the wan server).

mod support;

use serde_json::{json, Value};
use support::{
    doctor_problems, netavark, refused, Sandbox, MAKE_DEFAULT_NETWORK, UPLINK_HOST, UPLINK_HOST6,
    WAN_SERVER, WAN_SERVER6,
};

/// Counts, per bridge, packets forwarded from it to the wan servers.
fn count_egress(sb: &Sandbox, bridges: &[&str]) {
    let mut script = String::from(
        "nft add table inet egress && \
         nft add chain inet egress count '{ type filter hook forward priority -400; }'",
    );
    for br in bridges {
        script.push_str(&format!(
            " && nft add rule inet egress count iifname {br} ip daddr {WAN_SERVER} counter \
             && nft add rule inet egress count iifname {br} ip6 daddr {WAN_SERVER6} counter"
        ));
    }
    sb.ok(&script);
}

/// Packets counted so far from `bridge` to the wan server of the family of `server`.
fn counted(sb: &Sandbox, bridge: &str, server: &str) -> u64 {
    let listing = sb.ok("nft list chain inet egress count");
    let line = listing
        .lines()
        .find(|l| l.contains(&format!("iifname \"{bridge}\"")) && l.contains(server))
        .unwrap_or_else(|| panic!("no counter for {bridge} {server}: {listing}"));
    let after = line.split("packets ").nth(1).expect("a counter");
    after.split_whitespace().next().unwrap().parse().unwrap()
}

/// The bridge (of `bridges`) through which container `ns` reaches the wan server at
/// `server` (IPv4 or IPv6); the server saw the host's masqueraded address.
fn egress(sb: &Sandbox, ns: &str, bridges: &[&str], server: &str) -> String {
    let before: Vec<u64> = bridges.iter().map(|b| counted(sb, b, server)).collect();
    let target = if server.contains(':') {
        format!("[{server}]:80")
    } else {
        format!("{server}:80")
    };
    let seen = sb.reach(Some(ns), "tcp", &target);
    let host = if server.contains(':') {
        format!("from [{UPLINK_HOST6}]:")
    } else {
        format!("from {UPLINK_HOST}:")
    };
    assert!(seen.starts_with(&host), "{seen}");
    let used: Vec<&str> = bridges
        .iter()
        .zip(before)
        .filter(|(b, n)| counted(sb, b, server) > *n)
        .map(|(b, _)| *b)
        .collect();
    assert_eq!(used.len(), 1, "egress over {used:?}");
    used[0].to_string()
}

/// The wan with servers of both families on port 80, and the egress counters.
fn wan(sb: &mut Sandbox, bridges: &[&str]) {
    sb.with_wan();
    sb.serve(Some("wan"), &format!("--bind {WAN_SERVER} --tcp 80"));
    sb.serve(Some("wan"), &format!("--bind {WAN_SERVER6} --tcp 80"));
    count_egress(sb, bridges);
}

/// ctnet's CLI: the internal network attached first or second, the container's default
/// route is the public network's, and it reaches the wan through it and its neighbour on
/// the internal network.
#[test]
fn cli_internal_and_public_reach_the_wan_through_the_public_one_in_both_orders() {
    let mut sb = Sandbox::new();
    wan(&mut sb, &["br-int", "br-pub"]);
    sb.ok(
        "ctnet network create int --internal --subnet 10.70.0.0/24 --bridge br-int && \
         ctnet network create pub --subnet 10.71.0.0/24 --bridge br-pub && \
         ctnet netns add first && ctnet attach int first --ip 10.70.0.2 && ctnet attach pub first && \
         ctnet netns add second && ctnet attach pub second && ctnet attach int second --ip 10.70.0.3",
    );
    sb.serve(Some("first"), "--tcp 81");
    sb.serve(Some("second"), "--tcp 81");
    for (ns, neighbour) in [("first", "10.70.0.3"), ("second", "10.70.0.2")] {
        let routes = sb.ok(&format!("ip -n {ns} -4 route show default"));
        assert_eq!(routes.lines().count(), 1, "{routes}");
        assert!(routes.contains("via 10.71.0.1"), "{routes}");
        assert_eq!(egress(&sb, ns, &["br-int", "br-pub"], WAN_SERVER), "br-pub");
        sb.reach(Some(ns), "tcp", &format!("{neighbour}:81"));
    }
    assert!(doctor_problems(&sb, None).is_empty());
}

/// The CLI's `--metric` is the metric of the network's default route (the first
/// public network of the container keeps giving the only one).
#[test]
fn cli_metric_is_the_default_route_metric() {
    let mut sb = Sandbox::new();
    wan(&mut sb, &["br-m"]);
    sb.ok(
        "ctnet network create m --metric 321 --ipv6 --subnet 10.72.0.0/24 --subnet fd00:72::/64 --bridge br-m && \
         ctnet netns add c && ctnet attach m c",
    );
    let v4 = sb.ok("ip -n c -4 route show default");
    assert!(
        v4.contains("via 10.72.0.1") && v4.contains("metric 321"),
        "{v4}"
    );
    let v6 = sb.ok("ip -n c -6 route show default");
    assert!(
        v6.contains("via fd00:72::1") && v6.contains("metric 321"),
        "{v6}"
    );
    assert_eq!(egress(&sb, "c", &["br-m"], WAN_SERVER6), "br-m");
    let inspect = sb.ok("ctnet network inspect m --format json");
    assert!(inspect.contains("321"), "{inspect}");
}

fn network_info(name: &str, bridge: &str, subnets: Value, internal: bool, options: Value) -> Value {
    let ipv6 = subnets.to_string().contains(':');
    json!({
        "name": name, "id": format!("{:0>64}", name.len()), "driver": "bridge",
        "network_interface": bridge, "created": "2026-11-22T00:00:00Z",
        "subnets": subnets, "ipv6_enabled": ipv6, "internal": internal,
        "dns_enabled": false, "options": options,
        "ipam_options": { "driver": "host-local" }
    })
}

fn v4(subnet: &str, gateway: &str) -> Value {
    json!([{ "subnet": subnet, "gateway": gateway }])
}

/// Netavark's options for container `id` on `nets`: (name, info, static ips, ifname).
fn options(id: &str, nets: &[(&str, &Value, Value, &str)]) -> Value {
    let mut networks = serde_json::Map::new();
    let mut info = serde_json::Map::new();
    for (name, net, ips, ifname) in nets {
        networks.insert(
            name.to_string(),
            json!({ "static_ips": ips, "interface_name": ifname }),
        );
        info.insert(name.to_string(), (*net).clone());
    }
    json!({
        "container_id": id, "container_name": id, "port_mappings": null,
        "networks": networks, "network_info": info
    })
}

/// Under the netavark role, an internal network sorting before the public one (the
/// order Podman's networks are set up in) or after it: the container's only default
/// route is the public one's, metric 100 as netavark gives it; it reaches the wan
/// through it, and its neighbour on the internal network.
#[test]
fn netavark_internal_and_public_in_both_name_orders() {
    let mut sb = Sandbox::new();
    wan(&mut sb, &["nv-a", "nv-m", "nv-z"]);
    sb.ok("ip netns add c1 && ip netns add c2 && ip netns add n");
    let a = network_info(
        "a-int",
        "nv-a",
        v4("10.80.0.0/24", "10.80.0.1"),
        true,
        json!(null),
    );
    let m = network_info(
        "m-pub",
        "nv-m",
        v4("10.81.0.0/24", "10.81.0.1"),
        false,
        json!(null),
    );
    let z = network_info(
        "z-int",
        "nv-z",
        v4("10.82.0.0/24", "10.82.0.1"),
        true,
        json!(null),
    );
    let c1 = options(
        "c1",
        &[
            ("a-int", &a, json!(["10.80.0.2"]), "eth0"),
            ("m-pub", &m, json!(["10.81.0.2"]), "eth1"),
        ],
    );
    let c2 = options(
        "c2",
        &[
            ("m-pub", &m, json!(["10.81.0.3"]), "eth0"),
            ("z-int", &z, json!(["10.82.0.3"]), "eth1"),
        ],
    );
    // Neighbours on each internal network.
    let n = options(
        "n",
        &[
            ("a-int", &a, json!(["10.80.0.9"]), "eth0"),
            ("z-int", &z, json!(["10.82.0.9"]), "eth1"),
        ],
    );
    for (ns, opts) in [("c1", &c1), ("c2", &c2), ("n", &n)] {
        let (ok, out) = netavark(&sb, &format!("setup /run/netns/{ns}"), opts);
        assert!(ok, "{out}");
    }
    sb.serve(Some("n"), "--tcp 81");
    for (ns, neighbour) in [("c1", "10.80.0.9"), ("c2", "10.82.0.9")] {
        let routes = sb.ok(&format!("ip -n {ns} -4 route show default"));
        assert!(routes.starts_with("default via 10.81.0.1 "), "{routes}");
        assert!(routes.contains("metric 100"), "{routes}");
        assert_eq!(routes.lines().count(), 1, "{routes}");
        assert_eq!(
            egress(&sb, ns, &["nv-a", "nv-m", "nv-z"], WAN_SERVER),
            "nv-m"
        );
        sb.reach(Some(ns), "tcp", &format!("{neighbour}:81"));
    }
    // The container on the two internal networks has no default route at all.
    assert_eq!(sb.ok("ip -n n route show default").trim(), "");
    assert!(doctor_problems(&sb, None).is_empty());
}

/// A dual-stack internal network sorting first and a dual-stack public one: both
/// families leave through the public network.
#[test]
fn netavark_dual_stack_internal_first() {
    let mut sb = Sandbox::new();
    wan(&mut sb, &["nv-a", "nv-b"]);
    sb.ok("ip netns add c");
    let ds = |s4: &str, g4: &str, s6: &str, g6: &str| json!([{ "subnet": s4, "gateway": g4 }, { "subnet": s6, "gateway": g6 }]);
    let a = network_info(
        "a",
        "nv-a",
        ds("10.83.0.0/24", "10.83.0.1", "fd00:83::/64", "fd00:83::1"),
        true,
        json!(null),
    );
    let b = network_info(
        "b",
        "nv-b",
        ds("10.84.0.0/24", "10.84.0.1", "fd00:84::/64", "fd00:84::1"),
        false,
        json!(null),
    );
    let opts = options(
        "c",
        &[
            ("a", &a, json!(["10.83.0.2", "fd00:83::2"]), "eth0"),
            ("b", &b, json!(["10.84.0.2", "fd00:84::2"]), "eth1"),
        ],
    );
    let (ok, out) = netavark(&sb, "setup /run/netns/c", &opts);
    assert!(ok, "{out}");
    let v6 = sb.ok("ip -n c -6 route show default");
    assert!(
        v6.contains("via fd00:84::1") && !v6.contains("fd00:83::1"),
        "{v6}"
    );
    assert_eq!(egress(&sb, "c", &["nv-a", "nv-b"], WAN_SERVER), "nv-b");
    assert_eq!(egress(&sb, "c", &["nv-a", "nv-b"], WAN_SERVER6), "nv-b");
    assert!(doctor_problems(&sb, None).is_empty());
    let (ok, out) = netavark(&sb, "teardown /run/netns/c", &opts);
    assert!(ok, "{out}");
}

/// netavark's `metric`: every public network gives a default route of each family, the
/// lowest metric carries the traffic; a later connect of a lower-metric network moves
/// the egress to it, and its disconnect moves it back (the other's route stayed).
/// doctor knows the routes by gateway and metric, the IPv6 multipath one included.
#[test]
fn netavark_metric_orders_the_default_routes() {
    let mut sb = Sandbox::new();
    wan(&mut sb, &["nv-a", "nv-b", "nv-c"]);
    sb.ok("ip netns add c");
    let ds = |n: u8| {
        json!([
            { "subnet": format!("10.9{n}.0.0/24"), "gateway": format!("10.9{n}.0.1") },
            { "subnet": format!("fd00:9{n}::/64"), "gateway": format!("fd00:9{n}::1") }
        ])
    };
    let ips = |n: u8| json!([format!("10.9{n}.0.2"), format!("fd00:9{n}::2")]);
    // a sorts first and has the higher metric: b carries the traffic.
    let a = network_info("a", "nv-a", ds(1), false, json!({ "metric": "300" }));
    let b = network_info("b", "nv-b", ds(2), false, json!(null));
    let c = network_info("c", "nv-c", ds(3), false, json!({ "metric": "50" }));
    let both = options("c", &[("a", &a, ips(1), "eth0"), ("b", &b, ips(2), "eth1")]);
    let (ok, out) = netavark(&sb, "setup /run/netns/c", &both);
    assert!(ok, "{out}");
    let v4 = sb.ok("ip -n c -4 route show default");
    assert!(
        v4.contains("via 10.92.0.1 dev eth1 ") && v4.contains("metric 100"),
        "{v4}"
    );
    assert!(
        v4.contains("via 10.91.0.1 dev eth0") && v4.contains("metric 300"),
        "{v4}"
    );
    let bridges = ["nv-a", "nv-b", "nv-c"];
    assert_eq!(egress(&sb, "c", &bridges, WAN_SERVER), "nv-b");
    assert_eq!(egress(&sb, "c", &bridges, WAN_SERVER6), "nv-b");
    // `network connect c` (metric 50) in a later setup: it carries the traffic.
    let connect = options("c", &[("c", &c, ips(3), "eth2")]);
    let (ok, out) = netavark(&sb, "setup /run/netns/c", &connect);
    assert!(ok, "{out}");
    assert_eq!(egress(&sb, "c", &bridges, WAN_SERVER), "nv-c");
    assert_eq!(egress(&sb, "c", &bridges, WAN_SERVER6), "nv-c");
    assert!(doctor_problems(&sb, None).is_empty());
    // A route lost is reported by its gateway and metric.
    sb.ok("ip -n c route del default via 10.93.0.1");
    let problems = doctor_problems(&sb, None);
    support::assert_reported(&problems, &["default route via 10.93.0.1 metric 50"]);
    sb.ok("ctnet gc");
    assert!(doctor_problems(&sb, None).is_empty());
    // `network disconnect c`: back to b; then b's: a, the only one left.
    let (ok, out) = netavark(&sb, "teardown /run/netns/c", &connect);
    assert!(ok, "{out}");
    assert_eq!(egress(&sb, "c", &bridges, WAN_SERVER), "nv-b");
    let only_b = options("c", &[("b", &b, ips(2), "eth1")]);
    let (ok, out) = netavark(&sb, "teardown /run/netns/c", &only_b);
    assert!(ok, "{out}");
    assert_eq!(egress(&sb, "c", &bridges, WAN_SERVER), "nv-a");
    assert_eq!(egress(&sb, "c", &bridges, WAN_SERVER6), "nv-a");
    assert!(doctor_problems(&sb, None).is_empty());
}

/// Two networks of one metric (netavark's default 100): both default routes are there,
/// IPv6 as one multipath route, as netavark makes them, and doctor finds them right.
#[test]
fn netavark_networks_of_one_metric_keep_both_routes() {
    let mut sb = Sandbox::new();
    wan(&mut sb, &["nv-a", "nv-b"]);
    sb.ok("ip netns add c");
    let ds = |n: u8| {
        json!([
            { "subnet": format!("10.7{n}.0.0/24"), "gateway": format!("10.7{n}.0.1") },
            { "subnet": format!("fd00:7{n}::/64"), "gateway": format!("fd00:7{n}::1") }
        ])
    };
    let ips = |n: u8| json!([format!("10.7{n}.0.2"), format!("fd00:7{n}::2")]);
    let a = network_info("a", "nv-a", ds(5), false, json!(null));
    let b = network_info("b", "nv-b", ds(6), false, json!(null));
    let opts = options("c", &[("a", &a, ips(5), "eth0"), ("b", &b, ips(6), "eth1")]);
    let (ok, out) = netavark(&sb, "setup /run/netns/c", &opts);
    assert!(ok, "{out}");
    let v4 = sb.ok("ip -n c -4 route show default");
    assert_eq!(v4.lines().count(), 2, "{v4}");
    let v6 = sb.ok("ip -n c -6 route show default");
    assert!(
        v6.contains("nexthop via fd00:75::1") && v6.contains("nexthop via fd00:76::1"),
        "{v6}"
    );
    assert!(doctor_problems(&sb, None).is_empty());
    sb.reach(Some("c"), "tcp", &format!("{WAN_SERVER}:80"));
}

/// The addresses of interface `ifname` in `ns` other than IPv6 link-local ones.
fn addresses(sb: &Sandbox, ns: Option<&str>, ifname: &str) -> String {
    let prefix = ns.map(|n| format!("ip -n {n} ")).unwrap_or("ip ".into());
    sb.ok(&format!(
        "{prefix} -o -4 addr show dev {ifname}; {prefix} -o -6 addr show dev {ifname} scope global"
    ))
}

/// `ctnet network create --ipam none`: no address on the bridge or the containers'
/// interfaces (read from the kernel), no default route, published ports refused; the two
/// containers talk once the test gives them addresses by hand, so the L2 network works;
/// ls, inspect, doctor and gc work on it; nothing is left after detach.
#[test]
fn cli_ipam_none_is_a_network_without_addresses() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    // ctnet's table and the default network exist before, so the snapshot holds them.
    sb.ok(&format!(
        "{MAKE_DEFAULT_NETWORK} && ctnet netns add a && ctnet netns add b"
    ));
    let before = sb.snapshot();
    sb.ok("ctnet network create l2 --ipam none --bridge br-l2 && ctnet attach l2 a && ctnet attach l2 b");
    for ns in ["a", "b"] {
        assert_eq!(addresses(&sb, Some(ns), "eth0").trim(), "", "{ns}");
        assert_eq!(
            sb.ok(&format!(
                "ip -n {ns} route show default; ip -n {ns} -6 route show default"
            ))
            .trim(),
            ""
        );
    }
    assert_eq!(addresses(&sb, None, "br-l2").trim(), "");
    sb.ok("ctnet netns add p");
    refused(
        &sb,
        "ctnet attach l2 p -p 8080:80",
        &["network \"l2\"", "ipam none", "network with subnets"],
    );
    refused(&sb, "ctnet attach l2 p --ip 10.1.0.5", &["no subnets"]);
    sb.ok("ctnet netns rm p");
    let ls = sb.ok("ctnet network ls && ctnet ls && ctnet network inspect l2 --format json");
    assert!(ls.contains("l2") && ls.contains("none"), "{ls}");
    assert!(doctor_problems(&sb, None).is_empty());
    sb.ok("ctnet gc");
    // Addresses by hand: the bridge carries their traffic.
    sb.ok("ip -n a addr add 192.0.2.1/24 dev eth0 && ip -n b addr add 192.0.2.2/24 dev eth0");
    sb.serve(Some("b"), "--tcp 80");
    let seen = sb.reach(Some("a"), "tcp", "192.0.2.2:80");
    assert!(seen.starts_with("from 192.0.2.1:"), "{seen}");
    sb.ok("ctnet detach l2 a && ctnet detach l2 b && ctnet network rm l2");
    assert_eq!(sb.snapshot(), before);
}

/// netavark's `ipam_options.driver: none` (Podman's `--ipam-driver none`): the status
/// block has no subnets, the interface no address; a teardown leaves nothing. An
/// unknown driver, or dhcp, is an error naming it, with nothing made.
#[test]
fn netavark_ipam_none_and_unknown_drivers() {
    let sb = Sandbox::new();
    sb.ok(&format!(
        "{MAKE_DEFAULT_NETWORK} && ip netns add c && ip -n c link set lo up"
    ));
    let before = sb.snapshot();
    let mut none = network_info("l2", "nv-l2", json!([]), false, json!(null));
    none["ipam_options"] = json!({ "driver": "none" });
    let opts = options("c", &[("l2", &none, json!([]), "eth0")]);
    let (ok, status) = netavark(&sb, "setup /run/netns/c", &opts);
    assert!(ok, "{status}");
    assert_eq!(
        status["l2"]["interfaces"]["eth0"]["subnets"],
        json!([]),
        "{status}"
    );
    assert_eq!(addresses(&sb, Some("c"), "eth0").trim(), "");
    assert_eq!(addresses(&sb, None, "nv-l2").trim(), "");
    assert!(doctor_problems(&sb, None).is_empty());
    let (ok, out) = netavark(&sb, "teardown /run/netns/c", &opts);
    assert!(ok, "{out}");
    assert_eq!(sb.snapshot(), before);

    for (driver, expected) in [
        ("bogus", "unsupported ipam driver \"bogus\""),
        ("dhcp", "dhcp"),
    ] {
        let mut net = network_info(
            "u",
            "nv-u",
            v4("10.99.0.0/24", "10.99.0.1"),
            false,
            json!(null),
        );
        net["ipam_options"] = json!({ "driver": driver });
        let opts = options("c", &[("u", &net, json!(["10.99.0.2"]), "eth0")]);
        let (ok, err) = netavark(&sb, "setup /run/netns/c", &opts);
        assert!(!ok, "{err}");
        let message = err["error"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{err}");
        assert_eq!(sb.snapshot(), before, "{driver}");
    }
}

/// A network in use keeps the metric and IPAM it was made with: a setup whose
/// `network_info` says otherwise (the network file edited meanwhile) is refused naming
/// both values, with nothing changed, rather than given the old values silently.
#[test]
fn netavark_a_network_in_use_keeps_its_metric_and_ipam() {
    let sb = Sandbox::new();
    sb.ok("ip netns add c1 && ip netns add c2 && ip -n c2 link set lo up");
    let net = network_info(
        "a",
        "nv-a",
        v4("10.98.0.0/24", "10.98.0.1"),
        false,
        json!({ "metric": "300" }),
    );
    let (ok, out) = netavark(
        &sb,
        "setup /run/netns/c1",
        &options("c1", &[("a", &net, json!(["10.98.0.2"]), "eth0")]),
    );
    assert!(ok, "{out}");
    let before = sb.snapshot();
    let mut edited = net.clone();
    edited["options"] = json!({ "metric": "50" });
    let (ok, err) = netavark(
        &sb,
        "setup /run/netns/c2",
        &options("c2", &[("a", &edited, json!(["10.98.0.3"]), "eth0")]),
    );
    assert!(!ok);
    let message = err["error"].as_str().unwrap_or_default();
    assert!(message.contains("exists with metric 300, not 50"), "{err}");
    assert_eq!(sb.snapshot(), before);
    let mut none = net.clone();
    none["subnets"] = json!([]);
    none["ipam_options"] = json!({ "driver": "none" });
    let (ok, err) = netavark(
        &sb,
        "setup /run/netns/c2",
        &options("c2", &[("a", &none, json!([]), "eth0")]),
    );
    assert!(!ok);
    let message = err["error"].as_str().unwrap_or_default();
    assert!(
        message.contains("exists with IPAM ctnet, not none"),
        "{err}"
    );
    assert_eq!(sb.snapshot(), before);
}
