//! The firewall posture, with real traffic: what may not pass times out, what may passes,
//! and people's own rules in the user chain are kept.

mod support;

use support::{Sandbox, UPLINK_HOST, WAN_SERVER};

#[test]
fn networks_are_isolated_and_only_published_ports_come_in() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.ok("ctnet network create red --subnet 10.1.0.0/24 && ctnet network create green --subnet 10.2.0.0/24 && \
           for c in r g both; do ctnet netns add $c; done && \
           ctnet attach red r -p 8080:80 && ctnet attach green g && ctnet attach red both && ctnet attach green both");
    sb.serve(Some("r"), "--tcp 80 --tcp 81");
    // Network green cannot reach network red directly...
    assert!(sb.probe(Some("g"), "tcp", "10.1.0.2:80").is_err());
    // ...but a container on both networks can, and anyone can through the published port.
    sb.reach(Some("both"), "tcp", "10.1.0.2:80");
    sb.reach(Some("g"), "tcp", &format!("{UPLINK_HOST}:8080"));
    // The wan, with a route to the container subnet, reaches only the published port.
    sb.ok(&format!(
        "ip -n wan route add 10.1.0.0/24 via {UPLINK_HOST}"
    ));
    assert!(sb.probe(Some("wan"), "tcp", "10.1.0.2:81").is_err());
    assert!(sb.probe(Some("wan"), "tcp", "10.1.0.2:80").is_err());
    sb.reach(Some("wan"), "tcp", &format!("{UPLINK_HOST}:8080"));
    // Containers still reach the wan (replies come back in).
    sb.serve(Some("wan"), &format!("--bind {WAN_SERVER} --tcp 80"));
    sb.reach(Some("g"), "tcp", &format!("{WAN_SERVER}:80"));
}

#[test]
fn an_internal_network_reaches_nothing_outside_its_bridge() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.serve(Some("wan"), &format!("--bind {WAN_SERVER} --tcp 80"));
    sb.ok(
        "ctnet network create secret --internal --subnet 10.9.0.0/24 && \
           ctnet netns add a && ctnet netns add b && ctnet netns add out && \
           ctnet attach secret a && ctnet attach secret b && ctnet attach bridge out",
    );
    sb.serve(Some("b"), "--tcp 80");
    sb.reach(Some("a"), "tcp", "10.9.0.3:80");
    assert!(sb
        .probe(Some("a"), "tcp", &format!("{WAN_SERVER}:80"))
        .is_err());
    sb.serve(Some("out"), "--tcp 80");
    assert!(sb.probe(Some("a"), "tcp", "172.17.0.2:80").is_err());
    assert!(sb.probe(Some("out"), "tcp", "10.9.0.3:80").is_err());
}

#[test]
fn icc_off_keeps_neighbours_apart_but_not_the_host() {
    let mut sb = Sandbox::new();
    sb.ok("ctnet network create lonely --subnet 10.8.0.0/24 --icc false && \
           ctnet network create friendly --subnet 10.6.0.0/24 && \
           for c in a b c d; do ctnet netns add $c; done && \
           ctnet attach lonely a && ctnet attach lonely b && ctnet attach friendly c && ctnet attach friendly d");
    sb.serve(Some("b"), "--tcp 80 --udp 53");
    sb.serve(Some("d"), "--tcp 80");
    assert!(sb.probe(Some("a"), "tcp", "10.8.0.3:80").is_err());
    assert!(sb.probe(Some("a"), "udp", "10.8.0.3:53").is_err());
    sb.reach(None, "tcp", "10.8.0.3:80");
    sb.reach(Some("c"), "tcp", "10.6.0.3:80");
    // Without br_netfilter, bridged frames skip nftables: isolated ports alone hold.
    sb.ok(
        "if [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]; then \
           echo 0 > /proc/sys/net/bridge/bridge-nf-call-iptables; fi",
    );
    assert!(sb.probe(Some("a"), "tcp", "10.8.0.3:80").is_err());
    sb.reach(Some("c"), "tcp", "10.6.0.3:80");
    sb.reach(None, "tcp", "10.8.0.3:80");
    let inspect = sb.ok("ctnet network inspect lonely --format json");
    assert!(inspect.contains("\"icc\": false"), "{inspect}");
}

#[test]
fn the_user_chain_comes_first_and_survives_gc() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.ok("ctnet netns add web && ctnet attach bridge web -p 8080:80");
    sb.serve(Some("web"), "--tcp 80");
    let target = format!("{UPLINK_HOST}:8080");
    sb.reach(Some("wan"), "tcp", &target);
    sb.ok("nft add rule inet ctnet user ip saddr 203.0.113.2 tcp dport 80 drop");
    assert!(sb.probe(Some("wan"), "tcp", &target).is_err());
    sb.ok("ctnet gc && ctnet network create other && ctnet netns add w2 && ctnet attach bridge w2 -p 8081:80 && ctnet detach bridge w2");
    let user = sb.ok("nft list chain inet ctnet user");
    assert!(
        user.contains("ip saddr 203.0.113.2 tcp dport 80 drop"),
        "{user}"
    );
    assert!(sb.probe(Some("wan"), "tcp", &target).is_err());
    sb.ok("nft flush chain inet ctnet user");
    sb.reach(Some("wan"), "tcp", &target);
}
