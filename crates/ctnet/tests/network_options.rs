//! A network's settings from both front ends that make networks by hand: the options
//! netavark 1.4 has (`options`, `ipam_options`) arrive as Podman 4.3 sends them and are
//! honoured or refused by key, never ignored; `ctnet network create`'s flags for the
//! same settings are parsed and shown back.

mod support;

use serde_json::{json, Value};
use support::{netavark, refused, Sandbox, MAKE_DEFAULT_NETWORK};

/// Podman's `network_info` for a bridge network with these `options` and
/// `ipam_options`.
fn info(name: &str, bridge: &str, subnet: &str, options: Value, ipam: Value) -> Value {
    let gateway = subnet.replace(".0/24", ".1");
    json!({
        "name": name, "id": "e".repeat(64), "driver": "bridge",
        "network_interface": bridge, "created": "2026-11-22T00:00:00Z",
        "subnets": [{ "subnet": subnet, "gateway": gateway }],
        "ipv6_enabled": false, "internal": false, "dns_enabled": false,
        "options": options, "ipam_options": ipam
    })
}

fn setup_options(id: &str, ip: &str, name: &str, info: Value) -> Value {
    json!({
        "container_id": id, "container_name": id, "port_mappings": null,
        "networks": { name: { "static_ips": [ip], "interface_name": "eth0" } },
        "network_info": { name: info }
    })
}

/// `mtu` from Podman is the MTU of the bridge and of both containers' interfaces: a
/// packet of exactly that size passes with "don't fragment", one byte more does not.
#[test]
fn the_mtu_option_is_in_force_between_containers() {
    let sb = Sandbox::new();
    sb.ok("ip netns add a && ip netns add b");
    let net = info(
        "small",
        "podman7",
        "10.87.0.0/24",
        json!({ "mtu": "1000" }),
        json!({ "driver": "host-local" }),
    );
    for (id, ip) in [("a", "10.87.0.2"), ("b", "10.87.0.3")] {
        let (ok, out) = netavark(
            &sb,
            &format!("setup /run/netns/{id}"),
            &setup_options(id, ip, "small", net.clone()),
        );
        assert!(ok, "{out}");
    }
    // 1000 bytes: 20 of IP header, 8 of ICMP, 972 of payload.
    sb.ok("ip netns exec a ping -c1 -W2 -M do -s 972 10.87.0.3");
    let too_big = sb.run("ip netns exec a ping -c1 -W2 -M do -s 973 10.87.0.3");
    assert!(!too_big.status.success(), "the MTU of 1000 is not in force");
    assert!(sb.ok("ip -n b link show eth0").contains("mtu 1000"));
}

/// Every option or IPAM driver netavark 1.4 does not have (or a value it cannot take)
/// is refused before anything is made, the error naming the key or value.
#[test]
fn options_netavark_does_not_have_are_refused_by_name() {
    let sb = Sandbox::new();
    sb.ok(&format!("{MAKE_DEFAULT_NETWORK} && ip netns add c1"));
    let host_local = json!({ "driver": "host-local" });
    let cases = [
        (
            json!({ "vrf": "blue" }),
            host_local.clone(),
            vec!["\"vrf\"", "netavark 1.4", "no such bridge option"],
        ),
        (
            json!({ "vlan": "5" }),
            host_local.clone(),
            vec!["\"vlan\"", "netavark 1.4", "no such bridge option"],
        ),
        (
            json!({ "frobnicate": "1" }),
            host_local.clone(),
            vec!["\"frobnicate\"", "no such bridge option"],
        ),
        (
            json!({ "mode": "bridge" }),
            host_local.clone(),
            vec!["\"mode\"", "no such bridge option"],
        ),
        (
            json!({ "isolate": "yes" }),
            host_local.clone(),
            vec!["isolate", "\"yes\"", "not true, false or strict"],
        ),
        (
            json!({ "mtu": "big" }),
            host_local.clone(),
            vec!["mtu", "\"big\"", "not a whole number"],
        ),
        (
            json!({ "metric": "-1" }),
            host_local.clone(),
            vec!["metric", "\"-1\"", "not a whole number"],
        ),
        (
            json!({ "mtu": "70000" }),
            host_local.clone(),
            vec!["MTU 70000 is out of range"],
        ),
        (
            json!({}),
            json!({ "driver": "dhcp" }),
            vec!["dhcp ipam driver is not yet supported"],
        ),
        (
            json!({}),
            json!({ "driver": "magic" }),
            vec!["unsupported ipam driver \"magic\""],
        ),
    ];
    for (options, ipam, expected) in cases {
        let before = sb.snapshot();
        let opts = setup_options(
            "c1",
            "10.86.0.2",
            "opts",
            info("opts", "podman6", "10.86.0.0/24", options.clone(), ipam),
        );
        let (ok, out) = netavark(&sb, "setup /run/netns/c1", &opts);
        assert!(!ok, "{options}: {out}");
        let error = out["error"].as_str().unwrap_or_default();
        for piece in expected {
            assert!(
                error.contains(piece),
                "{options}: {error:?} lacks {piece:?}"
            );
        }
        assert_eq!(sb.snapshot(), before, "{options}: something was made");
    }
}

/// What Podman's options say is what the network records (`isolate` absent: open, as
/// netavark's default), and `ctnet network inspect` shows it.
#[test]
fn accepted_options_are_recorded_and_shown() {
    let sb = Sandbox::new();
    sb.ok("ip netns add a && ip netns add b");
    for (id, name, bridge, subnet, options) in [
        ("a", "plain", "podman8", "10.85.0.0/24", json!({})),
        (
            "b",
            "strictnet",
            "podman9",
            "10.84.0.0/24",
            json!({ "isolate": "strict", "metric": "250" }),
        ),
    ] {
        let net = info(
            name,
            bridge,
            subnet,
            options,
            json!({ "driver": "host-local" }),
        );
        let ip = subnet.replace(".0/24", ".2");
        let (ok, out) = netavark(
            &sb,
            &format!("setup /run/netns/{id}"),
            &setup_options(id, &ip, name, net),
        );
        assert!(ok, "{out}");
    }
    let plain: Value =
        serde_json::from_str(&sb.ok("ctnet network inspect plain --format json")).unwrap();
    assert_eq!(plain["isolation"], "open", "{plain}");
    assert_eq!(plain["metric"], Value::Null, "{plain}");
    assert_eq!(plain["ipam"], "ctnet", "{plain}");
    assert_eq!(plain["driver"], "bridge", "{plain}");
    let strict: Value =
        serde_json::from_str(&sb.ok("ctnet network inspect strictnet --format json")).unwrap();
    assert_eq!(strict["isolation"], "strict", "{strict}");
    assert_eq!(strict["metric"], 250, "{strict}");
}

/// `ctnet network create`'s flags: the defaults (strict isolation, ctnet IPAM, no
/// metric) and what is given are shown by ls and inspect, in JSON and as text.
#[test]
fn cli_flags_are_recorded_and_shown() {
    let sb = Sandbox::new();
    sb.ok("ctnet network create plain --subnet 10.83.0.0/24");
    sb.ok("ctnet network create open --subnet 10.82.0.0/24 --isolate false --metric 300");
    sb.ok("ctnet network create iso --subnet 10.81.0.0/24 --isolate true");
    let listed: Value = serde_json::from_str(&sb.ok("ctnet network ls --format json")).unwrap();
    let by_name = |name: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} not listed: {listed}"))
    };
    for (name, isolation, metric) in [
        ("plain", "strict", Value::Null),
        ("open", "open", json!(300)),
        ("iso", "isolated", Value::Null),
    ] {
        let n = by_name(name);
        assert_eq!(n["isolation"], isolation, "{n}");
        assert_eq!(n["metric"], metric, "{n}");
        assert_eq!(n["ipam"], "ctnet", "{n}");
        assert_eq!(n["driver"], "bridge", "{n}");
        assert_eq!(n["macvlan"], Value::Null, "{n}");
    }
    assert_eq!(by_name("bridge")["isolation"], "strict");
    let table = sb.ok("ctnet network ls");
    assert!(
        table.lines().next().unwrap().contains("ISOLATION"),
        "{table}"
    );
    let row = table.lines().find(|l| l.starts_with("open ")).unwrap();
    assert!(row.contains(" open ") && row.contains(" ctnet "), "{row}");
    let text = sb.ok("ctnet network inspect open");
    assert!(text.contains("isolation: open"), "{text}");
    assert!(text.contains("metric:    300"), "{text}");
    assert!(text.contains("ipam:      ctnet"), "{text}");
}

/// Flags that contradict each other or name nothing ctnet has: refused, nothing made.
#[test]
fn bad_cli_flags_are_refused() {
    let sb = Sandbox::new();
    for (cmd, expected) in [
        (
            "ctnet network create x --isolate maybe",
            vec!["--isolate \"maybe\"", "true, false or strict"],
        ),
        (
            "ctnet network create x --driver ipvlan",
            vec!["driver \"ipvlan\"", "bridge, macvlan or overlay"],
        ),
        (
            "ctnet network create x --driver overlay",
            vec![
                "overlay network \"x\"",
                "no --subnet",
                "--subnet 10.50.0.0/16",
            ],
        ),
        (
            "ctnet network create x --vni 5",
            vec![
                "--vni and --host-prefix are overlay options",
                "--driver overlay",
            ],
        ),
        (
            "ctnet network create x --ipam dhcp",
            vec!["ipam \"dhcp\"", "ctnet or none"],
        ),
        (
            "ctnet network create x --parent eth0",
            vec!["network \"x\"", "--parent", "--driver macvlan"],
        ),
        (
            "ctnet network create x --macvlan-mode private",
            vec!["--macvlan-mode", "--driver macvlan"],
        ),
        (
            "ctnet network create x --driver macvlan",
            vec!["without a parent", "--parent IF"],
        ),
        (
            "ctnet network create x --driver macvlan --parent lo --macvlan-mode sideways",
            vec!["macvlan mode \"sideways\""],
        ),
        ("ctnet network create x --metric -3", vec!["-3"]),
    ] {
        refused(&sb, cmd, &expected);
    }
}
