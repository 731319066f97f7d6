//! The kernel drifting from ctnet's records (issue 12, item 5): a container's veth or a
//! network's bridge deleted by hand, a namespace gone without a detach. `doctor` names
//! each (and exits non-zero), `gc` repairs what it can and says what it did, and traffic
//! works again.

mod support;

use std::time::Duration;

use support::{
    assert_reported, doctor_problems, gc_lets_go_of, wait_until, Sandbox, UPLINK_HOST, WAN_SERVER,
};

/// Every problem `ctnet doctor` reports, of any check (it exits non-zero then).
fn drift(sb: &Sandbox) -> Vec<String> {
    doctor_problems(sb, None)
}

fn host_side(sb: &Sandbox, container: &str) -> String {
    let ls: serde_json::Value = serde_json::from_str(&sb.ok("ctnet ls --format json")).unwrap();
    ls.as_array()
        .unwrap()
        .iter()
        .find(|e| e["container"] == container)
        .and_then(|e| e["host_ifname"].as_str())
        .unwrap_or_else(|| panic!("{container} not in {ls}"))
        .to_string()
}

/// Two containers on `blue` talking, c1 publishing port 8080 to the wan.
fn two_containers(sb: &mut Sandbox) {
    sb.with_wan();
    sb.ok("ctnet network create blue --subnet 10.50.0.0/16 && \
           ctnet netns add c1 && ctnet attach blue c1 -p 8080:80 && \
           ctnet netns add c2 && ctnet attach blue c2");
    sb.serve(Some("c1"), "--tcp 80");
    sb.serve(Some("wan"), &format!("--bind {WAN_SERVER} --tcp 80"));
    works(sb);
    assert!(drift(sb).is_empty());
}

/// c1 is reached from its neighbour, the host and the wan, and reaches the wan.
fn works(sb: &Sandbox) {
    sb.reach(Some("c2"), "tcp", "10.50.0.2:80");
    sb.reach(None, "tcp", "10.50.0.2:80");
    sb.reach(Some("wan"), "tcp", &format!("{UPLINK_HOST}:8080"));
    sb.reach(Some("c1"), "tcp", &format!("{WAN_SERVER}:80"));
}

#[test]
fn a_deleted_veth_is_reported_and_made_again_by_gc() {
    let mut sb = Sandbox::new();
    two_containers(&mut sb);
    let veth = host_side(&sb, "c1");
    sb.ok(&format!("ip link del {veth}"));
    assert!(sb.probe(Some("c2"), "tcp", "10.50.0.2:80").is_err());
    let ls = sb.ok("ctnet ls");
    assert!(
        ls.contains(&format!("degraded (veth {veth} missing)")),
        "{ls}"
    );
    assert_reported(
        &drift(&sb),
        &[
            "\\\"c1\\\" on network \\\"blue\\\"",
            &format!("its veth {veth} is missing"),
            "ctnet gc",
        ],
    );
    let gc = sb.ok("ctnet gc");
    assert!(
        gc.contains(&format!(
            "repaired container \"c1\" on network \"blue\": veth {veth} made again"
        )),
        "{gc}"
    );
    works(&sb);
    assert!(drift(&sb).is_empty());
}

#[test]
fn a_deleted_bridge_is_reported_and_made_again_with_its_containers_by_gc() {
    let mut sb = Sandbox::new();
    two_containers(&mut sb);
    let bridge = sb
        .ok("ip -o link show type bridge | grep -o 'br-[0-9a-f]*' | head -1")
        .trim()
        .to_string();
    sb.ok(&format!("ip link del {bridge}"));
    assert!(sb.probe(Some("c2"), "tcp", "10.50.0.2:80").is_err());
    let ls = sb.ok("ctnet network ls");
    assert!(
        ls.contains(&format!("degraded (bridge {bridge} missing)")),
        "{ls}"
    );
    assert!(sb.ok("ctnet ls").contains("not on its bridge"));
    assert_reported(
        &drift(&sb),
        &[&format!("its bridge {bridge} is missing from the kernel")],
    );
    let gc = sb.ok("ctnet gc");
    assert!(gc.contains(&format!("bridge {bridge} made again")), "{gc}");
    assert!(gc.contains("made a port of bridge"), "{gc}");
    works(&sb);
    assert!(!sb.ok("ctnet network ls; ctnet ls").contains("degraded"));
    assert!(drift(&sb).is_empty());
}

#[test]
fn an_address_removed_inside_the_container_is_put_back() {
    let mut sb = Sandbox::new();
    two_containers(&mut sb);
    sb.ok("ip -n c1 addr flush dev eth0");
    assert_reported(&drift(&sb), &["interface eth0 lacks its address 10.50.0.2"]);
    sb.ok("ctnet gc");
    works(&sb);
}

#[test]
fn an_endpoint_whose_namespace_is_gone_is_removed_by_gc() {
    let mut sb = Sandbox::new();
    two_containers(&mut sb);
    let ls = sb.ok("ctnet ls");
    let veth = ls
        .lines()
        .find(|l| l.starts_with("c2 "))
        .and_then(|l| l.split_whitespace().nth(5))
        .unwrap_or_else(|| panic!("no host interface for c2 in {ls}"))
        .to_string();
    sb.ok("ip netns del c2");
    assert_reported(&drift(&sb), &["network namespace /run/netns/c2 is gone"]);
    // The kernel dismantles a deleted namespace, and the veth with it, on a work queue:
    // on a busy machine the host side can outlive the `ip netns del` by a while.
    assert!(
        wait_until(Duration::from_secs(10), || !sb
            .ok("ip -o link show")
            .contains(&format!(" {veth}@"))),
        "{veth} still there 10 s after its namespace was deleted"
    );
    // `ls` says which was lost: the namespace (gc releases it), not just its veth.
    let ls = sb.ok("ctnet ls");
    let row = ls
        .lines()
        .find(|l| l.starts_with("c2 "))
        .unwrap_or_default();
    assert!(
        row.contains("degraded (namespace gone: `ctnet gc` releases it)"),
        "{ls}"
    );
    gc_lets_go_of(&sb, "c2");
    let ls = sb.ok("ctnet ls");
    assert!(!ls.lines().any(|l| l.starts_with("c2 ")), "{ls}");
    // Its address is free again.
    sb.ok("ctnet netns add c3 && ctnet attach blue c3 --ip 10.50.0.3");
    sb.reach(Some("c3"), "tcp", "10.50.0.2:80");
    assert!(drift(&sb).is_empty());
}
