//! `ctnet inspect CONTAINER`, against real traffic: a wan client holds a TCP connection
//! open to a container through a published port, and inspect shows its conntrack entry
//! with the DNAT, the veth peer on its bridge, the bridge's forwarding entry for the
//! container's MAC, and counters that grow between two calls; the JSON holds the same;
//! a veth deleted by hand shows as missing, with the fix. `ctnet network inspect` shows
//! the network's bridge, its ports with their containers and what the bridge learned.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{wait_until, Sandbox, UPLINK_HOST};

fn inspect_json(sb: &Sandbox, container: &str) -> Value {
    let out = sb.ok(&format!("ctnet inspect {container} --format json"));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn eth0_rx_packets(v: &Value) -> u64 {
    v["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "eth0")
        .and_then(|i| i["counters"]["rx_packets"].as_u64())
        .expect("eth0 with counters")
}

#[test]
fn inspect_shows_a_live_connection_its_nat_the_veth_peer_fdb_and_growing_counters() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.ok(
        "ctnet network create web --subnet 10.61.0.0/24 >/dev/null && ctnet netns add c && \
         ctnet attach web c -p 8080:80 >/dev/null",
    );
    let c_ip = sb.addr_of("c", "eth0");
    // A server that keeps the connection open, and a wan client that holds it.
    // (Their output goes nowhere: the pipe the first line was read from is closed after.)
    sb.spawn_ready(
        "sleep 60 | ip netns exec c busybox nc -l -p 80 >/dev/null & \
         until ip netns exec c ss -Htln | grep -q ':80 '; do sleep 0.05; done; echo ready; wait",
    );
    sb.spawn_ready(&format!(
        "(echo hello; sleep 60) | ip netns exec wan busybox nc {UPLINK_HOST} 8080 >/dev/null & \
         echo ready; wait"
    ));
    let mut view = Value::Null;
    let connected = wait_until(Duration::from_secs(5), || {
        view = inspect_json(&sb, "c");
        view["endpoints"][0]["connections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["state"] == "ESTABLISHED" && c["dnat"] == true)
    });
    assert!(connected, "no established DNAT connection: {view:#}");
    let ep = &view["endpoints"][0];
    let conn = ep["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["dnat"] == true)
        .unwrap();
    assert_eq!(conn["protocol"], "tcp");
    assert_eq!(conn["original"]["dst"], UPLINK_HOST);
    assert_eq!(conn["original"]["dst_port"], 8080);
    assert_eq!(
        conn["reply"]["src"],
        c_ip.as_str(),
        "answered by the container"
    );
    assert_eq!(conn["reply"]["src_port"], 80);

    // The veth: its host side is a forwarding port of the bridge, peer of eth0.
    let bridge = ep["bridge"].as_str().unwrap().to_string();
    let host = &ep["host_side"];
    assert_eq!(host["bridge"], bridge.as_str());
    assert_eq!(host["port_state"], "forwarding");
    let eth0_index = view["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "eth0")
        .unwrap()["index"]
        .clone();
    assert_eq!(host["peer_index"], eth0_index);
    let kernel_peer = sb.ok(&format!(
        "cat /sys/class/net/{}/iflink",
        host["name"].as_str().unwrap()
    ));
    assert_eq!(kernel_peer.trim(), eth0_index.to_string());
    // The bridge learned the container's MAC on that port.
    let mac = ep["mac"].as_str().unwrap();
    assert!(
        ep["fdb"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["mac"] == mac && f["port"] == host["name"] && f["learned"] == true),
        "{ep:#}"
    );
    // The published port, its map element present.
    assert_eq!(ep["ports"][0]["published"], "0.0.0.0:8080->80/tcp");
    assert_eq!(ep["ports"][0]["in_kernel"], true);
    assert_eq!(ep["ports"][0]["connections"], 1, "the wan client's: {ep:#}");
    // Routes and addresses inside.
    assert!(
        view["routes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["destination"] == "default" && r["gateway"] == "10.61.0.1"),
        "{view:#}"
    );
    assert_eq!(view["differences"].as_array().unwrap().len(), 0);

    // Counters grow with traffic.
    let before = eth0_rx_packets(&view);
    sb.ok("ip netns exec c ping -c 3 -i 0.2 -W 1 10.61.0.1 >/dev/null");
    let after = eth0_rx_packets(&inspect_json(&sb, "c"));
    assert!(after >= before + 3, "rx packets {before} -> {after}");

    // The text form says the same things.
    let text = sb.ok("ctnet inspect c");
    for piece in [
        "container c".to_string(),
        format!("bridge {bridge}"),
        format!("dev {}", host["name"].as_str().unwrap()),
        "tcp 203.0.113.2:".to_string(),
        format!("DNAT to {c_ip}:80"),
        "0.0.0.0:8080->80/tcp".to_string(),
        "port forwarding".to_string(),
        "the kernel matches what ctnet recorded".to_string(),
    ] {
        assert!(text.contains(&piece), "{piece:?} not in:\n{text}");
    }

    // The network's kernel view: its bridge with the gateway, the container's port
    // forwarding, what the bridge learned, no differences.
    let net: Value =
        serde_json::from_str(&sb.ok("ctnet network inspect web --format json")).unwrap();
    let k = &net["kernel"];
    assert_eq!(k["bridge"]["name"], bridge.as_str(), "{net:#}");
    assert!(
        k["bridge"]["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "10.61.0.1/24"),
        "{net:#}"
    );
    let port = &k["ports"][0];
    assert_eq!(port["name"], host["name"]);
    assert_eq!(port["container"], "c");
    assert_eq!(port["state"], "forwarding");
    assert!(
        port["counters"]["tx_packets"].as_u64().unwrap() > 0,
        "{net:#}"
    );
    assert!(k["learned_macs"].as_u64().unwrap() >= 1, "{net:#}");
    assert_eq!(k["differences"].as_array().unwrap().len(), 0, "{net:#}");
    let text = sb.ok("ctnet network inspect web");
    assert!(
        text.contains(&format!("bridge {bridge}"))
            && text.contains("container c")
            && text.contains("the kernel matches what ctnet recorded"),
        "{text}"
    );

    // A veth deleted by hand: shown missing, with the fix.
    sb.ok(&format!("ip link del {}", host["name"].as_str().unwrap()));
    let net: Value =
        serde_json::from_str(&sb.ok("ctnet network inspect web --format json")).unwrap();
    assert_eq!(
        net["kernel"]["ports"].as_array().unwrap().len(),
        0,
        "{net:#}"
    );
    assert!(
        net["kernel"]["differences"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["fix"].as_str().unwrap_or("").contains("ctnet gc")),
        "{net:#}"
    );
    let broken = inspect_json(&sb, "c");
    assert!(broken["endpoints"][0]["host_side"].is_null(), "{broken:#}");
    let differences = broken["differences"].as_array().unwrap();
    assert!(
        differences
            .iter()
            .any(|d| d["detail"].as_str().unwrap_or("").contains("veth")
                && d["fix"].as_str().unwrap_or("").contains("ctnet gc")),
        "{broken:#}"
    );
    let text = sb.ok("ctnet inspect c");
    assert!(
        text.contains("veth peer on the host: missing") && text.contains("ctnet gc"),
        "{text}"
    );
}

#[test]
fn inspect_of_an_unknown_container_is_a_clear_error() {
    let sb = Sandbox::new();
    let err = sb.fails("ctnet inspect nosuch");
    assert!(
        err.contains("\"nosuch\"") && err.contains("ctnet attach"),
        "{err}"
    );
    sb.ok("ctnet netns add lonely");
    let err = sb.fails("ctnet inspect lonely");
    assert!(err.contains("lonely") && err.contains("ctnet ls"), "{err}");
}
