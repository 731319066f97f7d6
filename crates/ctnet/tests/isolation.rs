//! Isolation between networks as a property of each network, proven by traffic both
//! ways (TCP connect and ping): under the netavark role networks without `isolate` reach
//! each other, `isolate: "true"` ones reach only open ones, `strict` ones nothing (as
//! netavark 1.4's own rules do; see docs/podman.md); ctnet's own CLI networks stay
//! isolated unless made with `--isolate false`.

mod support;

use serde_json::{json, Value};
use support::{assert_reported, doctor_problems, netavark, Sandbox};

/// Podman's `network_info` for a bridge network: `isolate` in its options when given,
/// an IPv6 subnet too when `subnet6` is.
fn info(
    name: &str,
    bridge: &str,
    subnet: &str,
    subnet6: Option<&str>,
    isolate: Option<&str>,
) -> Value {
    let gateway = |s: &str| s.replace(".0/24", ".1").replace("::/64", "::1");
    let mut subnets = vec![json!({ "subnet": subnet, "gateway": gateway(subnet) })];
    subnets.extend(subnet6.map(|s| json!({ "subnet": s, "gateway": gateway(s) })));
    let options = isolate.map_or(json!({}), |i| json!({ "isolate": i }));
    json!({
        "name": name, "id": "d".repeat(64), "driver": "bridge",
        "network_interface": bridge, "created": "2026-11-22T00:00:00Z",
        "subnets": subnets, "ipv6_enabled": subnet6.is_some(),
        "internal": false, "dns_enabled": false,
        "options": options, "ipam_options": { "driver": "host-local" }
    })
}

/// A Podman container `ns` (namespace of that name) on network `net` with these
/// addresses, set up through ctnet as netavark, serving TCP port 80.
fn podman_container(sb: &mut Sandbox, ns: &str, net: &str, info: Value, ips: &[&str]) {
    sb.ok(&format!("ip netns add {ns} && ip -n {ns} link set lo up"));
    let opts = json!({
        "container_id": ns, "container_name": ns, "port_mappings": null,
        "networks": { net: { "static_ips": ips, "interface_name": "eth0" } },
        "network_info": { net: info }
    });
    let (ok, out) = netavark(sb, &format!("setup /run/netns/{ns}"), &opts);
    assert!(ok, "{ns}: {out}");
    sb.serve(Some(ns), "--tcp 80");
}

/// Whether `from` reaches `ip`: a TCP connect to port 80 (answered) and a ping must
/// agree, so neither kind of traffic passes where the other is stopped.
fn reaches(sb: &Sandbox, from: &str, ip: &str) -> bool {
    let target = if ip.contains(':') {
        format!("[{ip}]:80")
    } else {
        format!("{ip}:80")
    };
    let tcp = sb
        .run(&format!(
            "ip netns exec {from} ctnet-probe tcp {target} --timeout 1"
        ))
        .status
        .success();
    let ping = sb
        .run(&format!("ip netns exec {from} ping -c1 -W1 {ip}"))
        .status
        .success();
    assert_eq!(tcp, ping, "{from} -> {ip}: TCP {tcp}, ping {ping}");
    tcp
}

/// Both directions between two containers, each by its address.
fn talk(sb: &Sandbox, (a, a_ip): (&str, &str), (b, b_ip): (&str, &str)) -> bool {
    let there = reaches(sb, a, b_ip);
    let back = reaches(sb, b, a_ip);
    assert_eq!(
        there, back,
        "{a} <-> {b}: one way only ({there} there, {back} back)"
    );
    there
}

const OPEN_A: (&str, &str) = ("oa", "10.70.1.2");
const OPEN_B: (&str, &str) = ("ob", "10.70.2.2");
const ISO_A: (&str, &str) = ("ia", "10.70.3.2");
const ISO_B: (&str, &str) = ("ib", "10.70.4.2");
const STRICT: (&str, &str) = ("st", "10.70.5.2");

/// Five Podman networks: two without `isolate`, two with `isolate: "true"` and one
/// `strict`, a container on each; the open pair and the isolated pair dual-stack.
fn podman_networks(sb: &mut Sandbox) {
    for (i, (ns, ip), isolate, v6) in [
        (1, OPEN_A, None, true),
        (2, OPEN_B, None, true),
        (3, ISO_A, Some("true"), true),
        (4, ISO_B, Some("true"), true),
        (5, STRICT, Some("strict"), false),
    ] {
        let net = format!("pn{i}");
        let subnet6 = format!("fd70:{i}::/64");
        let ip6 = format!("fd70:{i}::2");
        let mut ips = vec![ip];
        if v6 {
            ips.push(&ip6);
        }
        let info = info(
            &net,
            &format!("podman{i}"),
            &format!("10.70.{i}.0/24"),
            v6.then_some(subnet6.as_str()),
            isolate,
        );
        podman_container(sb, ns, &net, info, &ips);
    }
}

/// netavark's semantics, both ways, TCP and ping: open networks reach each other and
/// the isolated ones (whose connections get their answers), isolated ones do not reach
/// each other, a strict one reaches nobody; the same holds for IPv6.
#[test]
fn under_netavark_open_networks_talk_isolated_ones_only_to_open_ones_strict_to_none() {
    let mut sb = Sandbox::new();
    podman_networks(&mut sb);
    assert!(talk(&sb, OPEN_A, OPEN_B), "two networks without isolate");
    for iso in [ISO_A, ISO_B] {
        for open in [OPEN_A, OPEN_B] {
            assert!(talk(&sb, open, iso), "{} and {}", open.0, iso.0);
        }
    }
    assert!(!talk(&sb, ISO_A, ISO_B), "two networks with isolate: true");
    for other in [OPEN_A, OPEN_B, ISO_A, ISO_B] {
        assert!(!talk(&sb, STRICT, other), "strict and {}", other.0);
    }
    // Between networks the server sees the gateway of its own network, as with
    // netavark (masqueraded); a connection from an open network to an isolated one
    // is answered.
    let seen = sb.reach(Some(OPEN_A.0), "tcp", "10.70.3.2:80");
    assert!(seen.starts_with("from 10.70.3.1:"), "{seen}");
    // IPv6: the same decisions for the dual-stack pairs.
    assert!(talk(&sb, ("oa", "fd70:1::2"), ("ob", "fd70:2::2")));
    assert!(talk(&sb, ("oa", "fd70:1::2"), ("ia", "fd70:3::2")));
    assert!(!talk(&sb, ("ia", "fd70:3::2"), ("ib", "fd70:4::2")));
}

/// ctnet's CLI keeps Docker's default: its networks reach neither each other nor the
/// open networks Podman made; `--isolate false` networks reach each other and the open
/// Podman one; `--isolate true` ones only open ones.
#[test]
fn cli_networks_stay_isolated_unless_made_open() {
    let mut sb = Sandbox::new();
    podman_container(
        &mut sb,
        "pod",
        "podnet",
        info("podnet", "podman1", "10.71.1.0/24", None, None),
        &["10.71.1.2"],
    );
    for (net, flags, subnet) in [
        ("c1", "", "10.71.2.0/24"),
        ("c2", "", "10.71.3.0/24"),
        ("f1", "--isolate false", "10.71.4.0/24"),
        ("f2", "--isolate false", "10.71.5.0/24"),
        ("t1", "--isolate true", "10.71.6.0/24"),
        ("t2", "--isolate true", "10.71.7.0/24"),
    ] {
        sb.ok(&format!(
            "ctnet network create {net} --subnet {subnet} {flags} && ctnet netns add {net}x && \
             ctnet attach {net} {net}x"
        ));
        sb.serve(Some(&format!("{net}x")), "--tcp 80");
    }
    let pod = ("pod", "10.71.1.2");
    let (c1, c2) = (("c1x", "10.71.2.2"), ("c2x", "10.71.3.2"));
    let (f1, f2) = (("f1x", "10.71.4.2"), ("f2x", "10.71.5.2"));
    let (t1, t2) = (("t1x", "10.71.6.2"), ("t2x", "10.71.7.2"));
    assert!(!talk(&sb, c1, c2), "two default CLI networks");
    assert!(
        !talk(&sb, c1, pod),
        "a default CLI network and an open Podman one"
    );
    assert!(
        !talk(&sb, c1, f1),
        "a default CLI network and an open CLI one"
    );
    assert!(talk(&sb, f1, f2), "two --isolate false networks");
    assert!(
        talk(&sb, f1, pod),
        "an --isolate false network and an open Podman one"
    );
    assert!(
        talk(&sb, t1, f2),
        "an --isolate true network and an open one"
    );
    assert!(!talk(&sb, t1, t2), "two --isolate true networks");
}

/// The isolation elements are part of what the table must hold: deleted by hand, they
/// are named by doctor, and `ctnet gc` puts them back, so the open pair talks again.
/// (An open bridge out of only one of its two sets is still reached through the other
/// rule, as an isolated one is: both go.)
#[test]
fn a_lost_isolation_element_is_named_and_restored() {
    let mut sb = Sandbox::new();
    for (i, (ns, ip)) in [(1, OPEN_A), (2, OPEN_B)] {
        let info = info(
            &format!("pn{i}"),
            &format!("podman{i}"),
            &format!("10.70.{i}.0/24"),
            None,
            None,
        );
        podman_container(&mut sb, ns, &format!("pn{i}"), info, &[ip]);
    }
    assert!(talk(&sb, OPEN_A, OPEN_B));
    sb.ok("nft delete element inet ctnet open '{ \"podman2\" }' && \
           nft delete element inet ctnet shared '{ \"podman2\" }'");
    assert!(
        !talk(&sb, OPEN_A, OPEN_B),
        "the elements are what lets them talk"
    );
    let problems = doctor_problems(&sb, None);
    assert_reported(&problems, &["open: podman2"]);
    assert_reported(&problems, &["shared: podman2"]);
    sb.ok("ctnet gc");
    assert!(talk(&sb, OPEN_A, OPEN_B), "gc restored the element");
    assert!(doctor_problems(&sb, None).is_empty());
}

/// An open network with icc off keeps its containers apart: with br_netfilter active a
/// frame between two of its ports passes `forward` with its bridge as input and output,
/// which the open rules would accept; `no_icc` drops it first. The ports' own isolation
/// is switched off here, so the firewall's half is what is shown.
#[test]
fn an_open_network_with_icc_off_keeps_its_containers_apart() {
    let mut sb = Sandbox::new();
    sb.ok(
        "ctnet network create lonely --subnet 10.72.1.0/24 --isolate false --icc false --dns false && \
           ctnet network create other --subnet 10.72.2.0/24 --isolate false --dns false && \
           for c in a b c; do ctnet netns add $c; done && \
           ctnet attach lonely a && ctnet attach lonely b && ctnet attach other c",
    );
    for ns in ["a", "b", "c"] {
        sb.serve(Some(ns), "--tcp 80");
    }
    if !sb
        .ok("cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo none")
        .starts_with('1')
    {
        sb.ok("echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables");
    }
    let inspect: Value =
        serde_json::from_str(&sb.ok("ctnet network inspect lonely --format json")).unwrap();
    let bridge = inspect["bridge"].as_str().unwrap().to_string();
    sb.ok(&format!(
        "for p in $(ls /sys/class/net/{bridge}/brif); do bridge link set dev $p isolated off; done"
    ));
    assert!(
        !talk(&sb, ("a", "10.72.1.2"), ("b", "10.72.1.3")),
        "icc off on an open network"
    );
    assert!(
        talk(&sb, ("a", "10.72.1.2"), ("c", "10.72.2.2")),
        "it is open to other networks"
    );
    // Without its no_icc element the open rules let the pair talk: the element is what
    // kept them apart (and doctor names it missing).
    sb.ok(&format!(
        "nft delete element inet ctnet no_icc '{{ \"{bridge}\" . \"{bridge}\" }}'"
    ));
    assert_reported(
        &doctor_problems(&sb, None),
        &[&format!("no_icc: {bridge} . {bridge}")],
    );
    assert!(
        talk(&sb, ("a", "10.72.1.2"), ("b", "10.72.1.3")),
        "the element was what held"
    );
}
