//! A network's gateway keeps its hardware address when containers come and go: the
//! container whose bridge port has the lowest address leaves, and a neighbour that has the
//! gateway in its ARP cache gets every ping answered at once (without a fixed address the
//! bridge took the next-lowest port's, and the neighbour was cut off for about 45 s). Also
//! for a bridge made without an address, as older ctnet made them: pinned to the address it
//! has on the next attach, detach or `ctnet gc`. And a container's `--mac` that another
//! container on the network (or the bridge) has is refused, so the first keeps its
//! traffic; an automatic address that someone's `--mac` took is replaced.

mod support;

use support::{refused, Sandbox};

const GATEWAY: &str = "10.9.0.1";
/// Lower than any address the kernel or ctnet gives: the port with it is the bridge's
/// lowest.
const LOWEST: &str = "02:00:00:00:00:01";

fn bridge_of(sb: &Sandbox, network: &str) -> String {
    let json: serde_json::Value =
        serde_json::from_str(&sb.ok(&format!("ctnet network inspect {network} --format json")))
            .unwrap();
    json["bridge"].as_str().unwrap().to_string()
}

fn host_side(sb: &Sandbox, container: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(&sb.ok("ctnet ls --format json")).unwrap();
    json.as_array()
        .unwrap()
        .iter()
        .find(|e| e["container"] == container)
        .and_then(|e| e["host_ifname"].as_str())
        .unwrap()
        .to_string()
}

fn mac_of(sb: &Sandbox, dev: &str) -> String {
    sb.ok(&format!("cat /sys/class/net/{dev}/address"))
        .trim()
        .to_string()
}

fn assign_type(sb: &Sandbox, dev: &str) -> String {
    sb.ok(&format!("cat /sys/class/net/{dev}/addr_assign_type"))
        .trim()
        .to_string()
}

/// `b` pings the gateway three times, 0.2 s apart, each answer awaited 1 s: how many
/// answers came.
fn answers(sb: &Sandbox) -> usize {
    let out = sb.run(&format!("ip netns exec b ping -c 3 -i 0.2 -W 1 {GATEWAY}"));
    let text = String::from_utf8_lossy(&out.stdout);
    text.split(',')
        .find_map(|part| part.trim().strip_suffix(" received")?.parse().ok())
        .unwrap_or_else(|| panic!("no ping summary: {text}"))
}

/// `a`'s port gets the lowest address, `b` learns the gateway's, `a` is detached, and
/// `b` must be answered at once.
fn lowest_port_leaves(sb: &Sandbox, bridge: &str) {
    let a = host_side(sb, "a");
    sb.ok(&format!("ip link set {a} address {LOWEST}"));
    let before = mac_of(sb, bridge);
    assert_eq!(answers(sb), 3, "b cannot reach the gateway at all");
    sb.ok("ctnet detach blue a");
    assert_eq!(
        answers(sb),
        3,
        "b was cut off from the gateway after a left"
    );
    assert_eq!(
        mac_of(sb, bridge),
        before,
        "the gateway's address changed when a left"
    );
}

#[test]
fn the_gateway_keeps_its_address_when_the_lowest_port_leaves() {
    let sb = Sandbox::new();
    sb.ok("ctnet network create blue --subnet 10.9.0.0/24 && ctnet netns add a && ctnet netns add b && \
           ctnet attach blue a && ctnet attach blue b");
    let bridge = bridge_of(&sb, "blue");
    lowest_port_leaves(&sb, &bridge);
    assert_eq!(
        assign_type(&sb, &bridge),
        "3",
        "the bridge's address was not set"
    );
    assert_ne!(mac_of(&sb, &bridge), LOWEST);
}

/// Remakes `blue`'s bridge as older ctnet made it, without an address, with the ports and
/// gateway it had.
fn make_old_bridge(sb: &Sandbox, bridge: &str) {
    let (a, b) = (host_side(sb, "a"), host_side(sb, "b"));
    sb.ok(&format!(
        "set -e; ip link del {bridge}; ip link add {bridge} type bridge; \
         ip addr add {GATEWAY}/24 dev {bridge}; ip link set {bridge} up; \
         ip link set {a} master {bridge}; ip link set {b} master {bridge}"
    ));
    assert_ne!(assign_type(sb, bridge), "3");
}

#[test]
fn a_bridge_made_without_an_address_is_pinned_before_a_port_leaves() {
    let sb = Sandbox::new();
    sb.ok("ctnet network create blue --subnet 10.9.0.0/24 && ctnet netns add a && ctnet netns add b && \
           ctnet attach blue a && ctnet attach blue b");
    let bridge = bridge_of(&sb, "blue");
    make_old_bridge(&sb, &bridge);
    // The detach pins the bridge to the address it has (a's, the lowest) before a's port
    // goes, so b's ARP entry stays right.
    lowest_port_leaves(&sb, &bridge);
    assert_eq!(mac_of(&sb, &bridge), LOWEST);
    assert_eq!(assign_type(&sb, &bridge), "3");
}

#[test]
fn a_bridge_made_without_an_address_is_pinned_by_attach_and_by_gc() {
    let sb = Sandbox::new();
    sb.ok("ctnet network create blue --subnet 10.9.0.0/24 && ctnet netns add a && ctnet netns add b && \
           ctnet netns add c && ctnet attach blue a && ctnet attach blue b");
    let bridge = bridge_of(&sb, "blue");
    make_old_bridge(&sb, &bridge);
    let had = mac_of(&sb, &bridge);
    sb.ok("ctnet attach blue c");
    assert_eq!(assign_type(&sb, &bridge), "3");
    assert_eq!(mac_of(&sb, &bridge), had, "pinning changed the address");
    make_old_bridge(&sb, &bridge);
    sb.ok("ctnet gc");
    assert_eq!(assign_type(&sb, &bridge), "3");
}

#[test]
fn a_mac_address_in_use_on_the_network_is_refused_and_its_holder_keeps_its_traffic() {
    let mut sb = Sandbox::new();
    sb.ok("ctnet network create blue --subnet 10.9.0.0/24 && \
           for c in a b c d; do ctnet netns add $c; done && \
           ctnet attach blue a --mac 02:42:0a:09:00:03");
    sb.serve(Some("a"), "--tcp 80");
    refused(
        &sb,
        "ctnet attach blue b --mac 02:42:0a:09:00:03",
        &[
            "MAC address 02:42:0a:09:00:03",
            "already used by container \"a\"",
            "--mac",
        ],
    );
    let bridge = bridge_of(&sb, "blue");
    let gateway_mac = mac_of(&sb, &bridge);
    refused(
        &sb,
        &format!("ctnet attach blue b --mac {gateway_mac}"),
        &[&gateway_mac, "bridge", "gateway"],
    );
    // b gets 10.9.0.3, whose automatic address a took by hand: b gets another one.
    sb.ok("ctnet attach blue b && ctnet attach blue c");
    assert_eq!(sb.addr_of("b", "eth0"), "10.9.0.3");
    let b_mac = sb.ok("ip -n b -o link show eth0");
    assert!(!b_mac.contains("02:42:0a:09:00:03"), "{b_mac}");
    // a still gets its traffic, from a neighbour and from the host.
    sb.reach(Some("c"), "tcp", "10.9.0.2:80");
    sb.reach(Some("b"), "tcp", "10.9.0.2:80");
    sb.reach(None, "tcp", "10.9.0.2:80");
}
