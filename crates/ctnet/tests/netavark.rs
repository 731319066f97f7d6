//! ctnet as Podman's network backend, driven the way Podman 4.3 drives netavark:
//! `netavark --config DIR --rootless=false setup|teardown NETNS` with the network options
//! on stdin and the status block on stdout.

mod support;

use serde_json::{json, Value};
use support::{netavark, Sandbox, MAKE_DEFAULT_NETWORK, UPLINK_HOST, UPLINK_WAN};

fn network_info(name: &str, bridge: &str, subnet: &str, gateway: &str) -> Value {
    json!({
        "name": name, "id": "f".repeat(64), "driver": "bridge",
        "network_interface": bridge, "created": "2026-11-22T00:00:00Z",
        "subnets": [{ "subnet": subnet, "gateway": gateway }],
        "ipv6_enabled": false, "internal": false, "dns_enabled": false,
        "ipam_options": { "driver": "host-local" }
    })
}

fn options(id: &str, ip: &str, ports: Value) -> Value {
    json!({
        "container_id": id, "container_name": id,
        "port_mappings": ports,
        "networks": { "podman": { "static_ips": [ip], "interface_name": "eth0" } },
        "network_info": { "podman": network_info("podman", "podman0", "10.88.0.0/16", "10.88.0.1") }
    })
}

#[test]
fn setup_publishes_and_teardown_leaves_nothing() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    // Loopback up, as the runtime leaves it (ctnet brings it up and leaves it so).
    // The default network (made on first attach) and ctnet's table exist already,
    // so the snapshot holds them.
    sb.ok(&format!(
        "{MAKE_DEFAULT_NETWORK} && ip netns add c1 && ip -n c1 link set lo up"
    ));
    let before = sb.snapshot();
    let opts = options(
        "c1id",
        "10.88.0.5",
        json!([
            { "host_ip": "", "container_port": 80, "host_port": 8080, "range": 1, "protocol": "tcp" },
            { "host_ip": "", "container_port": 90, "host_port": 9090, "range": 2, "protocol": "tcp" }
        ]),
    );
    let (ok, status) = netavark(&sb, "setup /run/netns/c1", &opts);
    assert!(ok, "{status}");
    let eth0 = &status["podman"]["interfaces"]["eth0"];
    assert_eq!(eth0["subnets"][0]["ipnet"], "10.88.0.5/16", "{status}");
    assert_eq!(eth0["subnets"][0]["gateway"], "10.88.0.1");
    assert_eq!(eth0["mac_address"].as_str().unwrap().len(), 17);
    assert_eq!(status["podman"]["dns_server_ips"], json!([]));
    sb.serve(Some("c1"), "--tcp 80 --tcp 91");
    let seen = sb.reach(Some("wan"), "tcp", &format!("{UPLINK_HOST}:8080"));
    assert!(seen.starts_with(&format!("from {UPLINK_WAN}:")), "{seen}");
    sb.reach(Some("wan"), "tcp", &format!("{UPLINK_HOST}:9091"));
    sb.ok("ip netns exec c1 ping -c1 -W2 10.88.0.1");

    let (ok, out) = netavark(&sb, "teardown /run/netns/c1", &opts);
    assert!(ok, "{out}");
    assert_eq!(sb.snapshot(), before, "teardown left something");
    // Teardown twice is fine.
    assert!(netavark(&sb, "teardown /run/netns/c1", &opts).0);
}

#[test]
fn two_containers_on_a_user_network_reach_each_other() {
    let mut sb = Sandbox::new();
    sb.ok("ip netns add a && ip netns add b");
    let opts = |id: &str, ip: &str| {
        json!({
            "container_id": id, "container_name": id, "port_mappings": null,
            "networks": { "mynet": { "static_ips": [ip], "interface_name": "eth0" } },
            "network_info": { "mynet": network_info("mynet", "podman1", "10.89.0.0/24", "10.89.0.1") }
        })
    };
    assert!(netavark(&sb, "setup /run/netns/a", &opts("a", "10.89.0.2")).0);
    assert!(netavark(&sb, "setup /run/netns/b", &opts("b", "10.89.0.3")).0);
    assert!(sb.ok("ip -br link show podman1").contains("podman1"));
    sb.serve(Some("b"), "--tcp 80");
    let seen = sb.reach(Some("a"), "tcp", "10.89.0.3:80");
    assert!(seen.starts_with("from 10.89.0.2:"), "{seen}");
    assert!(netavark(&sb, "teardown /run/netns/a", &opts("a", "10.89.0.2")).0);
    // The bridge stays while b is on it, and goes with the last container.
    assert!(sb.ok("ip -br link show podman1").contains("podman1"));
    assert!(netavark(&sb, "teardown /run/netns/b", &opts("b", "10.89.0.3")).0);
    assert!(sb.fails("ip link show podman1").contains("does not exist"));
}

#[test]
fn errors_are_json_on_stdout() {
    let sb = Sandbox::new();
    let (ok, err) = netavark(
        &sb,
        "setup /run/netns/missing",
        &options("x", "10.88.0.2", json!(null)),
    );
    assert!(!ok);
    assert!(
        err["error"].as_str().unwrap().contains("does not exist"),
        "{err}"
    );
    let (ok, err) = netavark(&sb, "setup /run/netns/missing", &json!({"nonsense": true}));
    assert!(!ok);
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("decode network options"),
        "{err}"
    );
    let out = sb.ok("mkdir -p \"$CTNET_RUN_DIR/bin\" && ln -sf \"$(command -v ctnet)\" \"$CTNET_RUN_DIR/bin/netavark\" && \"$CTNET_RUN_DIR/bin/netavark\" --version");
    assert!(out.starts_with("netavark 1."), "{out}");
}
