//! IPv6 dual stack through the engines' doors, with real traffic: ctnet as a CNI plugin
//! with host-local's `ranges` (its own IPAM and delegated to host-local), ctnet invoked as
//! netavark with an `ipv6_enabled` network, and a real Podman 4.3 with ctnet as its
//! netavark backend. The helpers mirror cni.rs and netavark.rs; Podman's set-up is
//! support/podman.rs.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::podman::{page_answers, Backend, Podman, IMAGE};
use support::{
    cni_call, netavark, Sandbox, MAKE_DEFAULT_NETWORK, UPLINK_HOST6, UPLINK_WAN6, WAN_SERVER6,
};

fn at(addr: &str, port: u16) -> String {
    format!("[{addr}]:{port}")
}

fn from6(addr: &str) -> String {
    format!("from [{addr}]:")
}

/// The result's entry in `ips` of the given family (an IPv6 address has a ':').
fn ip_entry(result: &Value, v6: bool) -> &Value {
    result["ips"]
        .as_array()
        .unwrap_or_else(|| panic!("no ips: {result}"))
        .iter()
        .find(|ip| ip["address"].as_str().is_some_and(|a| a.contains(':')) == v6)
        .unwrap_or_else(|| panic!("no IPv{} entry: {result}", if v6 { 6 } else { 4 }))
}

fn cni_conf(ipam: Value) -> Value {
    json!({
        "cniVersion": "1.0.0",
        "name": "cni6",
        "type": "ctnet",
        "bridge": "cni-ctnet6",
        "ipam": ipam,
        "runtimeConfig": { "portMappings": [
            { "hostPort": 8080, "containerPort": 80, "protocol": "tcp" }
        ] }
    })
}

/// ctnet's own IPAM with a dual-stack `ranges` list: ADD's result lists an address of each
/// family with its gateway, the kernel has the same, the container reaches the wan over
/// IPv6 behind the uplink address and the wan reaches its published port over IPv6; DEL
/// leaves nothing.
#[test]
fn cni_add_with_dual_stack_ranges() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.serve(Some("wan"), &format!("--bind {WAN_SERVER6} --tcp 80"));
    sb.ok(&format!(
        "{MAKE_DEFAULT_NETWORK} && ip netns add pod1 && ip -n pod1 link set lo up"
    ));
    let before = sb.snapshot();
    let conf = cni_conf(json!({
        "type": "ctnet",
        "ranges": [[{ "subnet": "10.88.0.0/16" }], [{ "subnet": "fd00:88::/64" }]]
    }));
    let (ok, result) = cni_call(&sb, "ctnet", "ADD", "pod1id", "/run/netns/pod1", &conf);
    assert!(ok, "{result}");
    assert_eq!(result["ips"].as_array().unwrap().len(), 2, "{result}");
    let v4 = ip_entry(&result, false);
    assert_eq!(v4["address"], "10.88.0.2/16", "{result}");
    assert_eq!(v4["gateway"], "10.88.0.1");
    let v6 = ip_entry(&result, true);
    assert_eq!(v6["gateway"], "fd00:88::1", "{result}");
    let v6_cidr = v6["address"].as_str().unwrap();
    assert!(
        v6_cidr.starts_with("fd00:88::") && v6_cidr.ends_with("/64"),
        "{result}"
    );
    for ip in [v4, v6] {
        let index = ip["interface"].as_u64().unwrap() as usize;
        assert_eq!(result["interfaces"][index]["name"], "eth0", "{result}");
    }
    let ip6 = sb.addr6_of("pod1", "eth0");
    assert_eq!(
        format!("{ip6}/64"),
        v6_cidr,
        "the kernel has the result's address"
    );
    let routes = sb.ok("ip -n pod1 -6 route");
    assert!(
        routes.contains("default via fd00:88::1 dev eth0"),
        "{routes}"
    );

    let seen = sb.reach(Some("pod1"), "tcp", &at(WAN_SERVER6, 80));
    assert!(seen.starts_with(&from6(UPLINK_HOST6)), "wan saw {seen}");
    sb.serve(Some("pod1"), "--tcp 80");
    let seen = sb.reach(Some("wan"), "tcp", &at(UPLINK_HOST6, 8080));
    assert!(seen.starts_with(&from6(UPLINK_WAN6)), "{seen}");

    let (ok, out) = cni_call(&sb, "ctnet", "DEL", "pod1id", "/run/netns/pod1", &conf);
    assert!(ok, "{out}");
    assert!(sb
        .probe(Some("wan"), "tcp", &at(UPLINK_HOST6, 8080))
        .is_err());
    // Only the network made on first use remains; remove it to compare with before.
    sb.ok("ctnet network rm cni6");
    assert_eq!(sb.snapshot(), before);
}

/// IPAM delegated to host-local with a range of each family: both leases are the
/// interface's addresses, IPv6 flows between the pods, and DEL releases both.
#[test]
fn cni_ipam_delegated_to_host_local_with_v6_ranges() {
    let mut sb = Sandbox::new();
    sb.ok("ip netns add pod1 && ip netns add pod2");
    let data = format!("{}/ipam", sb.ok("printf %s \"$CTNET_RUN_DIR\"").trim());
    let mut c = cni_conf(json!({
        "type": "host-local",
        "ranges": [
            [{ "subnet": "10.90.0.0/24", "gateway": "10.90.0.1" }],
            [{ "subnet": "fd00:90::/64", "gateway": "fd00:90::1" }]
        ],
        "dataDir": data,
    }));
    c["name"] = json!("hl6");
    c["bridge"] = json!("cni-hl6");
    c["runtimeConfig"] = json!({});
    let (ok, r1) = cni_call(&sb, "ctnet", "ADD", "a", "/run/netns/pod1", &c);
    assert!(ok, "{r1}");
    let (ok, r2) = cni_call(&sb, "ctnet", "ADD", "b", "/run/netns/pod2", &c);
    assert!(ok, "{r2}");
    let addr = |r: &Value, v6: bool| {
        ip_entry(r, v6)["address"]
            .as_str()
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string()
    };
    let (a6, b6, b4) = (addr(&r1, true), addr(&r2, true), addr(&r2, false));
    assert!(
        a6.starts_with("fd00:90::") && b6.starts_with("fd00:90::") && a6 != b6,
        "{a6} {b6}"
    );
    assert_eq!(ip_entry(&r2, true)["gateway"], "fd00:90::1", "{r2}");
    assert_eq!(sb.addr6_of("pod2", "eth0"), b6);
    assert_eq!(sb.addr_of("pod2", "eth0"), b4);
    sb.serve(Some("pod2"), "--tcp 80");
    let seen = sb.reach(Some("pod1"), "tcp", &at(&b6, 80));
    assert!(seen.starts_with(&from6(&a6)), "{seen}");
    let leases = format!("ls {data}/hl6");
    let held = sb.ok(&leases);
    assert!(held.contains(&b6) && held.contains(&b4), "{held}");
    assert!(cni_call(&sb, "ctnet", "DEL", "b", "/run/netns/pod2", &c).0);
    let held = sb.ok(&leases);
    assert!(!held.contains(&b6) && !held.contains(&b4), "{held}");
}

/// A dual-stack network as Podman 4.3 sends it: IPv4 subnet first, then the IPv6 one.
fn network_info6(name: &str, bridge: &str, v4: (&str, &str), v6: (&str, &str)) -> Value {
    json!({
        "name": name, "id": "e".repeat(64), "driver": "bridge",
        "network_interface": bridge, "created": "2026-11-22T00:00:00Z",
        "subnets": [
            { "subnet": v4.0, "gateway": v4.1 },
            { "subnet": v6.0, "gateway": v6.1 }
        ],
        "ipv6_enabled": true, "internal": false, "dns_enabled": false,
        "ipam_options": { "driver": "host-local" }
    })
}

fn options6(id: &str, ips: [&str; 2], ports: Value) -> Value {
    json!({
        "container_id": id, "container_name": id,
        "port_mappings": ports,
        "networks": { "podman6": { "static_ips": ips, "interface_name": "eth0" } },
        "network_info": { "podman6": network_info6(
            "podman6", "podman6", ("10.89.0.0/24", "10.89.0.1"), ("fd00:89::/64", "fd00:89::1")) }
    })
}

/// setup on an `ipv6_enabled` network: the status block lists both addresses with their
/// gateways, the kernel has them, the port is published over IPv6 to the wan and the
/// container reaches the wan behind the uplink address; a second container is reached
/// over IPv6; teardown leaves nothing.
#[test]
fn netavark_setup_on_a_dual_stack_network() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.serve(Some("wan"), &format!("--bind {WAN_SERVER6} --tcp 80"));
    sb.ok(&format!(
        "{MAKE_DEFAULT_NETWORK} && ip netns add c1 && ip -n c1 link set lo up && \
           ip netns add c2 && ip -n c2 link set lo up",
    ));
    let before = sb.snapshot();
    let ports = json!([
        { "host_ip": "", "container_port": 80, "host_port": 8080, "range": 1, "protocol": "tcp" }
    ]);
    let opts1 = options6("c1id", ["10.89.0.5", "fd00:89::5"], ports);
    let opts2 = options6("c2id", ["10.89.0.6", "fd00:89::6"], json!(null));
    let (ok, status) = netavark(&sb, "setup /run/netns/c1", &opts1);
    assert!(ok, "{status}");
    let subnets = status["podman6"]["interfaces"]["eth0"]["subnets"]
        .as_array()
        .unwrap_or_else(|| panic!("no subnets: {status}"))
        .clone();
    assert_eq!(subnets.len(), 2, "{status}");
    for (ipnet, gateway) in [
        ("10.89.0.5/24", "10.89.0.1"),
        ("fd00:89::5/64", "fd00:89::1"),
    ] {
        assert!(
            subnets
                .iter()
                .any(|s| s["ipnet"] == ipnet && s["gateway"] == gateway),
            "{ipnet} via {gateway} missing: {status}"
        );
    }
    assert_eq!(sb.addr6_of("c1", "eth0"), "fd00:89::5");
    assert_eq!(sb.addr_of("c1", "eth0"), "10.89.0.5");
    assert!(netavark(&sb, "setup /run/netns/c2", &opts2).0);

    sb.serve(Some("c1"), "--tcp 80");
    let seen = sb.reach(Some("wan"), "tcp", &at(UPLINK_HOST6, 8080));
    assert!(seen.starts_with(&from6(UPLINK_WAN6)), "{seen}");
    let seen = sb.reach(Some("c1"), "tcp", &at(WAN_SERVER6, 80));
    assert!(seen.starts_with(&from6(UPLINK_HOST6)), "wan saw {seen}");
    let seen = sb.reach(Some("c2"), "tcp", &at("fd00:89::5", 80));
    assert!(seen.starts_with(&from6("fd00:89::6")), "{seen}");
    sb.ok("ip netns exec c1 ping -6 -c1 -W2 fd00:89::1");

    assert!(netavark(&sb, "teardown /run/netns/c2", &opts2).0);
    let (ok, out) = netavark(&sb, "teardown /run/netns/c1", &opts1);
    assert!(ok, "{out}");
    assert_eq!(sb.snapshot(), before, "teardown left something");
}

/// `podman network create --ipv6` (Podman picks a fd.. /64 and sends `ipv6_enabled` and
/// both subnets), `podman run -p 8080:80` busybox httpd fetched from the wan over IPv6,
/// the container reaching the wan behind the uplink address, and nothing left after
/// `podman rm`.
#[test]
fn podman_ipv6_network_with_ctnet_as_netavark() {
    let mut sb = Sandbox::with_host_sys();
    sb.with_wan();
    sb.serve(Some("wan"), &format!("--bind {WAN_SERVER6} --tcp 80"));
    let links_before = sb.ok("ip -br link | awk '{print $1}' | sort");
    {
        let podman = Podman::new(&sb, Backend::Netavark);
        podman.ok("network create --ipv6 mynet6 >/dev/null");
        let subnets =
            podman.ok("network inspect mynet6 --format '{{range .Subnets}}{{.Subnet}} {{end}}'");
        let v6 = subnets
            .split_whitespace()
            .find(|s| s.contains(':'))
            .unwrap_or_else(|| panic!("Podman made no IPv6 subnet: {subnets}"))
            .to_string();
        assert!(v6.starts_with("fd") && v6.ends_with("/64"), "{v6}");
        podman.run_detached(&format!(
            "--name web --network mynet6 -p 8080:80 {IMAGE} httpd -f -p 80 -h /www"
        ));
        let ip6 = podman
            .ok("inspect -f '{{.NetworkSettings.Networks.mynet6.GlobalIPv6Address}}' web")
            .trim()
            .to_string();
        assert!(ip6.starts_with("fd"), "no IPv6 address for web: {ip6:?}");
        let page = page_answers(
            &sb,
            "wan",
            &format!("[{UPLINK_HOST6}]:8080"),
            Duration::from_secs(10),
        );
        assert!(
            page,
            "the published port never answered from the wan over IPv6"
        );
        let seen = podman.ok(&format!(
            "exec web sh -c 'echo hi | nc -w 3 {WAN_SERVER6} 80'"
        ));
        assert!(seen.starts_with(&from6(UPLINK_HOST6)), "wan saw {seen}");
        podman.ok("rm -f -t 0 web >/dev/null");
    }
    let ls = "env -u CTNET_STATE_DIR -u CTNET_RUN_DIR ctnet ls --format json";
    let gone = support::wait_until(Duration::from_secs(10), || sb.ok(ls).trim() == "[]");
    assert!(gone, "containers left attached: {}", sb.ok(ls));
    assert_eq!(
        sb.ok("ip -br link | awk '{print $1}' | sort"),
        links_before,
        "links left behind"
    );
    let table = sb.ok("nft list table inet ctnet");
    assert!(!table.contains("8080"), "{table}");
}
