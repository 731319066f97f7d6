//! `ctnet doctor`: each condition it reports really breaks traffic, and its fix mends it.

mod support;

use support::{Sandbox, UPLINK_HOST, UPLINK_HOST6, WAN_SERVER, WAN_SERVER6};

fn findings(sb: &Sandbox) -> Vec<serde_json::Value> {
    // Exits non-zero when there are problems; the JSON is on stdout either way.
    let out = sb.run("ctnet doctor --format json");
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn problem<'a>(all: &'a [serde_json::Value], check: &str) -> Option<&'a serde_json::Value> {
    all.iter()
        .find(|f| f["check"] == check && f["severity"] == "problem")
}

#[test]
fn a_healthy_host_has_no_problems() {
    let sb = Sandbox::new();
    sb.ok("ctnet network create blue --subnet 10.50.0.0/16");
    let out = sb.ok("ctnet doctor");
    assert!(out.contains("ok") && !out.contains("problem"), "{out}");
}

#[test]
fn ip_forward_off_and_a_forward_drop_policy_are_found_and_fixed() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.serve(Some("wan"), &format!("--bind {WAN_SERVER} --tcp 80"));
    sb.ok("ctnet netns add c1 && ctnet attach bridge c1 -p 8080:80");
    sb.serve(Some("c1"), "--tcp 80");
    let wan = format!("{WAN_SERVER}:80");
    sb.reach(Some("c1"), "tcp", &wan);

    sb.ok("echo 0 > /proc/sys/net/ipv4/ip_forward");
    assert!(sb.probe(Some("c1"), "tcp", &wan).is_err());
    let all = findings(&sb);
    let f = problem(&all, "ip_forward").expect("ip_forward reported");
    assert!(f["fix"].as_str().unwrap().contains("net.ipv4.ip_forward=1"));
    let err = sb.fails("ctnet doctor");
    assert!(err.contains("1 problem(s)"), "{err}");
    sb.ok("echo 1 > /proc/sys/net/ipv4/ip_forward");
    sb.reach(Some("c1"), "tcp", &wan);

    // Like Docker's FORWARD DROP policy in its own table: ctnet's accept is not enough.
    sb.ok("nft add table ip filter && nft 'add chain ip filter FORWARD { type filter hook forward priority 0; policy drop; }'");
    assert!(sb.probe(Some("c1"), "tcp", &wan).is_err());
    assert!(sb
        .probe(Some("wan"), "tcp", &format!("{UPLINK_HOST}:8080"))
        .is_err());
    let all = findings(&sb);
    let f = problem(&all, "forward policy").expect("forward policy reported");
    assert!(
        f["detail"].as_str().unwrap().contains("ip filter FORWARD"),
        "{f}"
    );
    assert!(problem(&all, "br_netfilter").is_some(), "{all:?}");
    // The fix it suggests, in nft words: accept ctnet's bridge both ways.
    sb.ok("nft add rule ip filter FORWARD iifname ctnet0 accept && \
           nft add rule ip filter FORWARD oifname ctnet0 ct state established,related accept && \
           nft add rule ip filter FORWARD oifname ctnet0 ct status dnat accept");
    sb.reach(Some("c1"), "tcp", &wan);
    sb.reach(Some("wan"), "tcp", &format!("{UPLINK_HOST}:8080"));
}

#[test]
fn a_route_added_later_that_steals_a_subnet_is_found() {
    let mut sb = Sandbox::new();
    sb.ok("ctnet network create blue --subnet 10.50.0.0/16 && ctnet netns add c1 && ctnet attach blue c1");
    sb.serve(Some("c1"), "--tcp 80");
    sb.reach(None, "tcp", "10.50.0.2:80");
    sb.ok(
        "ip link add stray type veth peer name stray-peer && ip link set stray up && \
           ip route add 10.50.0.0/24 dev stray",
    );
    assert!(sb.probe(None, "tcp", "10.50.0.2:80").is_err());
    let all = findings(&sb);
    let f = problem(&all, "routes").expect("route clash reported");
    let detail = f["detail"].as_str().unwrap();
    assert!(
        detail.contains("10.50.0.0/24 dev stray") && detail.contains("\"blue\""),
        "{detail}"
    );
    sb.ok("ip route del 10.50.0.0/24 dev stray");
    sb.reach(None, "tcp", "10.50.0.2:80");
    assert!(problem(&findings(&sb), "routes").is_none());
}

/// IPv6 forwarding turned off under a dual-stack network: NAT66 traffic stops, doctor
/// says so (and says nothing about it while no network has IPv6), and `ctnet gc` turns
/// it back on.
#[test]
fn ipv6_forwarding_off_is_found_and_gc_turns_it_back_on() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.ok("ctnet network create blue --subnet 10.51.0.0/24");
    assert!(problem(&findings(&sb), "ipv6 forwarding").is_none());
    sb.serve(Some("wan"), &format!("--bind {WAN_SERVER6} --tcp 80"));
    sb.ok(
        "ctnet network create ds --ipv6 --subnet fd00:51::/64 --subnet 10.52.0.0/24 && \
           ctnet netns add c1 && ctnet attach ds c1",
    );
    let wan = format!("[{WAN_SERVER6}]:80");
    let seen = sb.reach(Some("c1"), "tcp", &wan);
    assert!(
        seen.starts_with(&format!("from [{UPLINK_HOST6}]:")),
        "{seen}"
    );

    sb.ok("echo 0 > /proc/sys/net/ipv6/conf/all/forwarding");
    assert!(sb.probe(Some("c1"), "tcp", &wan).is_err());
    let all = findings(&sb);
    let f = problem(&all, "ipv6 forwarding").expect("ipv6 forwarding reported");
    assert!(f["fix"].as_str().unwrap().contains("ctnet gc"), "{f}");
    sb.ok("ctnet gc");
    assert_eq!(
        sb.ok("cat /proc/sys/net/ipv6/conf/all/forwarding").trim(),
        "1"
    );
    sb.reach(Some("c1"), "tcp", &wan);
    assert!(problem(&findings(&sb), "ipv6 forwarding").is_none());
}
