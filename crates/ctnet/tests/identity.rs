//! Namespace identity: a container lost without a DEL, its namespace's inode handed to
//! the next namespace at once, a re-ADD with the same id, a "rebooted" host with the
//! old state dir, the host's own namespace offered as a container, DEL and teardown
//! that name another container, and requested addresses and container ids that cannot
//! be used.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{netavark, Sandbox, MAKE_DEFAULT_NETWORK, UPLINK_HOST, UPLINK_WAN};

/// A CNI network: ctnet's own IPAM, a published port.
fn conf(name: &str, bridge: &str, subnet: &str, port: Option<u16>) -> Value {
    let ports = port.map_or(
        json!([]),
        |p| json!([{ "hostPort": p, "containerPort": 80, "protocol": "tcp" }]),
    );
    json!({
        "cniVersion": "1.0.0", "name": name, "type": "ctnet", "bridge": bridge,
        "ipam": { "type": "ctnet", "subnet": subnet },
        "runtimeConfig": { "portMappings": ports }
    })
}

fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// Runs ctnet as a CNI plugin with the interface name and extra environment given.
fn cni(
    sb: &Sandbox,
    command: &str,
    id: &str,
    netns: &str,
    ifname: &str,
    env: &str,
    conf: &Value,
) -> (bool, Value) {
    let out = sb.run(&format!(
        "printf '%s' {} | CNI_COMMAND={command} CNI_CONTAINERID={} CNI_NETNS={netns} \
         CNI_IFNAME={ifname} CNI_PATH=/usr/lib/cni {env} ctnet",
        quoted(&conf.to_string()),
        quoted(id)
    ));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let value = if stdout.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{command}: {e}: {stdout:?}"))
    };
    (out.status.success(), value)
}

/// A CNI ADD of `id` into /run/netns/`ns` as eth0, for a test that expects it to fail.
fn try_add(sb: &Sandbox, id: &str, ns: &str, conf: &Value) -> (bool, Value) {
    cni(sb, "ADD", id, &format!("/run/netns/{ns}"), "eth0", "", conf)
}

fn add(sb: &Sandbox, id: &str, ns: &str, ifname: &str, conf: &Value) -> Value {
    let (ok, out) = cni(sb, "ADD", id, &format!("/run/netns/{ns}"), ifname, "", conf);
    assert!(ok, "ADD {id} in {ns}: {out}");
    out
}

/// A CNI error with `code`, a message naming `piece` and details saying what to do.
fn cni_error(result: (bool, Value), code: u64, piece: &str) {
    let (ok, err) = result;
    assert!(!ok, "expected failure with code {code}, got {err}");
    assert_eq!(err["code"], code, "{err}");
    let msg = err["msg"].as_str().unwrap_or_default();
    assert!(msg.contains(piece), "msg lacks {piece:?}: {err}");
    assert!(
        err["details"].as_str().is_some_and(|d| !d.is_empty()),
        "{err}"
    );
}

/// Every endpoint ctnet lists, as (container label, network, namespace path).
fn endpoints(sb: &Sandbox) -> Vec<(String, String, String)> {
    let listed: Value = serde_json::from_str(&sb.ok("ctnet ls --format json")).unwrap();
    listed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (s("container"), s("network"), s("netns_path"))
        })
        .collect()
}

/// Held by each test that needs the kernel to reuse an inode, and by the others while
/// they make namespaces, so none takes the number another waits for.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn inode(sb: &Sandbox, ns: &str) -> String {
    sb.ok(&format!("stat -L -c %i /run/netns/{ns}"))
        .trim()
        .to_string()
}

/// Attaches container `id` (interface eth0) in a new namespace `lost` with `conf`, then
/// loses the namespace the way `ctr task rm` of a detached task does (no DEL), and makes
/// namespace `fresh` until the kernel hands it the lost one's inode (the lowest free
/// number, so at once, unless another namespace somewhere on the machine takes it
/// first: then this attempt is DELeted and made again). Returns the lost container's
/// host-side veth.
///
/// The tests of this file run one at a time (see [`one_at_a_time`]).
fn lost_and_recycled(sb: &Sandbox, id: &str, conf: &Value, fresh: &str) -> String {
    for _attempt in 0..10 {
        sb.ok("ip netns add lost");
        let result = add(sb, id, "lost", "eth0", conf);
        let veth = result["interfaces"][1]["name"]
            .as_str()
            .unwrap()
            .to_string();
        let wanted = inode(sb, "lost");
        sb.ok("ip netns del lost");
        let recycled = support::wait_until(Duration::from_secs(3), || {
            sb.ok(&format!("ip netns add {fresh}"));
            if inode(sb, fresh) == wanted {
                return true;
            }
            sb.ok(&format!("ip netns del {fresh}"));
            false
        });
        if recycled {
            sb.ok(&format!("ip -n {fresh} link set lo up"));
            return veth;
        }
        let (ok, out) = cni(sb, "DEL", id, "", "eth0", "", conf);
        assert!(ok, "{out}");
    }
    panic!("the kernel never handed a lost namespace's inode to a new one");
}

#[test]
fn a_recycled_inode_does_not_block_a_new_container_and_del_removes_the_right_row() {
    let _serial = one_at_a_time();
    let mut sb = Sandbox::new();
    sb.with_wan();
    let net = conf("cninet", "cni-ctnet0", "10.88.0.0/16", Some(8080));
    let old_veth = lost_and_recycled(&sb, "lostid", &net, "fresh");
    // The new, unrelated container gets in: same network, same interface name, same
    // published port (before: "already attached", code 101).
    let result = add(&sb, "freshid", "fresh", "eth0", &net);
    assert!(
        result["ips"][0]["address"]
            .as_str()
            .is_some_and(|a| a.starts_with("10.88.0.")),
        "{result}"
    );
    assert_eq!(
        endpoints(&sb),
        vec![(
            "cni:freshid".into(),
            "cninet".into(),
            "/run/netns/fresh".into()
        )]
    );
    let old_veth = old_veth.trim();
    assert!(
        sb.run(&format!("ip link show {old_veth}"))
            .status
            .code()
            .is_some_and(|c| c != 0),
        "the lost container's veth {old_veth} is still there"
    );
    // Its port is the newcomer's now: the wan reaches it.
    sb.serve(Some("fresh"), "--tcp 80");
    let seen = sb.reach(Some("wan"), "tcp", &format!("{UPLINK_HOST}:8080"));
    assert!(seen.starts_with(&format!("from {UPLINK_WAN}:")), "{seen}");
    // DEL of the lost container removes nothing of the newcomer's; its own DEL does.
    let (ok, out) = cni(&sb, "DEL", "lostid", "", "eth0", "", &net);
    assert!(ok, "{out}");
    assert_eq!(endpoints(&sb).len(), 1);
    let (ok, out) = cni(&sb, "DEL", "freshid", "/run/netns/fresh", "eth0", "", &net);
    assert!(ok, "{out}");
    assert_eq!(endpoints(&sb), vec![]);
}

#[test]
fn a_lost_containers_interface_name_does_not_block_another_network() {
    let _serial = one_at_a_time();
    let sb = Sandbox::new();
    let a = conf("neta", "cni-a", "10.88.0.0/16", None);
    let b = conf("netb", "cni-b", "10.89.0.0/16", None);
    lost_and_recycled(&sb, "lostid", &a, "fresh");
    // Before: "interface eth0 … is already used by another network of this container".
    add(&sb, "freshid", "fresh", "eth0", &b);
    assert_eq!(
        endpoints(&sb),
        vec![(
            "cni:freshid".into(),
            "netb".into(),
            "/run/netns/fresh".into()
        )]
    );
    sb.ok("ip -n fresh -o -4 addr show dev eth0 | grep -q 10.89.0.2/16");
    // The released address of the lost container is free again on its network.
    add(&sb, "freshid", "fresh", "eth1", &a);
    sb.ok("ip -n fresh -o -4 addr show dev eth1 | grep -q 10.88.0.");
}

#[test]
fn a_re_add_with_the_same_id_leaves_one_row_and_del_removes_it() {
    let _serial = one_at_a_time();
    let sb = Sandbox::new();
    let net = conf("cninet", "cni-ctnet0", "10.88.0.0/16", Some(8080));
    sb.ok("ip netns add first");
    add(&sb, "c1", "first", "eth0", &net);
    // The runtime loses the namespace and adds the same container again elsewhere, once
    // the kernel has finished removing the old one (its veth goes last).
    sb.ok("ip netns del first && ip netns add second");
    assert!(support::wait_until(Duration::from_secs(10), || sb
        .ok("ip -o link show master cni-ctnet0")
        .trim()
        .is_empty()));
    add(&sb, "c1", "second", "eth0", &net);
    assert_eq!(
        endpoints(&sb),
        vec![("cni:c1".into(), "cninet".into(), "/run/netns/second".into())]
    );
    // While the first namespace lives, a second ADD of the same id elsewhere is refused.
    sb.ok("ip netns add third");
    cni_error(try_add(&sb, "c1", "third", &net), 101, "another namespace");
    let (ok, out) = cni(&sb, "DEL", "c1", "/run/netns/second", "eth0", "", &net);
    assert!(ok, "{out}");
    assert_eq!(endpoints(&sb), vec![]);
    sb.ok("test -z \"$(ip -o link show master cni-ctnet0)\"");
}

#[test]
fn del_and_teardown_never_detach_another_container() {
    let _serial = one_at_a_time();
    let sb = Sandbox::new();
    let net = conf("cninet", "cni-ctnet0", "10.88.0.0/16", None);
    sb.ok("ip netns add c1");
    add(&sb, "c1", "c1", "eth0", &net);
    // A DEL naming another container (or another interface) in c1's namespace.
    assert!(cni(&sb, "DEL", "notc1", "/run/netns/c1", "eth0", "", &net).0);
    assert!(cni(&sb, "DEL", "c1", "/run/netns/c1", "eth1", "", &net).0);
    assert_eq!(endpoints(&sb).len(), 1);
    sb.ok("ip netns exec c1 ping -c1 -W2 10.88.0.1");

    // netavark: a network made with `ctnet network create`, a Podman container on it.
    sb.ok("ctnet network create shared --subnet 10.77.0.0/24 --bridge shared0 && ip netns add p1");
    let info = json!({
        "name": "shared", "id": "e".repeat(64), "driver": "bridge",
        "network_interface": "shared0",
        "subnets": [{ "subnet": "10.77.0.0/24", "gateway": "10.77.0.1" }],
        "ipv6_enabled": false, "internal": false, "dns_enabled": false
    });
    let opts = |id: &str| {
        json!({
            "container_id": id, "container_name": id,
            "networks": { "shared": { "static_ips": ["10.77.0.5"], "interface_name": "eth0" } },
            "network_info": { "shared": info }
        })
    };
    let (ok, out) = netavark(&sb, "setup /run/netns/p1", &opts(&"1".repeat(64)));
    assert!(ok, "{out}");
    // Teardown for another container in p1's namespace: p1 stays, so does the network.
    let (ok, out) = netavark(&sb, "teardown /run/netns/p1", &opts(&"2".repeat(64)));
    assert!(ok, "{out}");
    assert_eq!(endpoints(&sb).len(), 2);
    sb.ok("ip netns exec p1 ping -c1 -W2 10.77.0.1");
    // p1's own teardown detaches it; the network, not Podman's, stays.
    let (ok, out) = netavark(&sb, "teardown /run/netns/p1", &opts(&"1".repeat(64)));
    assert!(ok, "{out}");
    assert_eq!(endpoints(&sb).len(), 1);
    sb.ok("ctnet network inspect shared >/dev/null && ip link show shared0 >/dev/null");
}

#[test]
fn a_rebooted_host_serves_setup_add_and_run_at_once() {
    let _serial = one_at_a_time();
    let saved = std::env::temp_dir().join(format!("ctnet-reboot-{}", std::process::id()));
    let podman = |id: &str| {
        json!({
            "container_id": id, "container_name": id,
            "port_mappings": [{ "host_ip": "", "container_port": 80, "host_port": 9090, "range": 1, "protocol": "tcp" }],
            "networks": { "podman": { "static_ips": ["10.88.0.5"], "interface_name": "eth0" } },
            "network_info": { "podman": {
                "name": "podman", "id": "f".repeat(64), "driver": "bridge",
                "network_interface": "podman0",
                "subnets": [{ "subnet": "10.88.0.0/16", "gateway": "10.88.0.1" }],
                "ipv6_enabled": false, "internal": false, "dns_enabled": false
            } }
        })
    };
    let net = conf("cninet", "cni-ctnet0", "10.89.0.0/16", Some(8080));
    {
        let before = Sandbox::new();
        before.ok("ip netns add pod && ip netns add c1 && ctnet netns add web");
        add(&before, "podid", "pod", "eth0", &net);
        let (ok, out) = netavark(&before, "setup /run/netns/c1", &podman(&"1".repeat(64)));
        assert!(ok, "{out}");
        before.ok("ctnet attach bridge web -p 7070:80");
        assert_eq!(endpoints(&before).len(), 3);
        before.ok(&format!(
            "rm -rf {0} && cp -a \"$CTNET_STATE_DIR\" {0}",
            saved.display()
        ));
    } // The host goes down with every namespace, device and rule in it.
    let after = Sandbox::new();
    after.ok(&format!(
        "mkdir -p \"$CTNET_STATE_DIR\" && cp -a {}/. \"$CTNET_STATE_DIR\"/ && rm -rf {0}",
        saved.display()
    ));
    after.ok("ip netns add c2 && ip netns add pod2");
    // Podman's setup with the same address and port (before: "host port 9090 already
    // published by podman:…"), then CNI ADD with the same port, then `ctnet run` with
    // the same port, each at once.
    // Podman starts the same container again after a reboot: same id, new namespace.
    let (ok, out) = netavark(&after, "setup /run/netns/c2", &podman(&"1".repeat(64)));
    assert!(ok, "{out}");
    add(&after, "pod2id", "pod2", "eth0", &net);
    let ran = after.ok("ctnet run -p 7070:80 -- ip -o -4 addr show dev eth0");
    assert!(ran.contains("inet 172.17."), "{ran}");
    let mut now = endpoints(&after);
    now.sort();
    assert_eq!(
        now,
        vec![
            (
                "cni:pod2id".into(),
                "cninet".into(),
                "/run/netns/pod2".into()
            ),
            (
                format!("podman:{}", "1".repeat(64)),
                "podman".into(),
                "/run/netns/c2".into()
            ),
        ]
    );
    after.ok("ip netns exec c2 ping -c1 -W2 10.88.0.1");
}

#[test]
fn the_hosts_own_namespace_is_refused() {
    let _serial = one_at_a_time();
    let sb = Sandbox::new();
    sb.ok("ctnet network create blue --subnet 10.31.0.0/24");
    let holder = sb.pid();
    for target in [
        format!("--pid {holder}"),
        format!("--netns-path /proc/{holder}/ns/net"),
        "--netns-path /proc/self/ns/net".to_string(),
    ] {
        support::refused(
            &sb,
            &format!("ctnet attach blue {target}"),
            &[
                "the network namespace ctnet itself runs in",
                "ctnet netns add",
            ],
        );
    }
    // PID 1's namespace, from a ctnet running in another one: a PID namespace whose
    // init is in the sandbox's namespace, and ctnet in a child namespace.
    sb.ok("ip netns add other");
    let err = sb.fails(
        "unshare --pid --fork --mount-proc sh -c 'ip netns exec other ctnet attach blue --pid 1'",
    );
    assert!(err.contains("that of PID 1"), "{err}");
    sb.ok("test -z \"$(ip -o link show type veth)\" && test -z \"$(ip -n other -o link show type veth)\"");
    // CNI gets the same refusal, as its error object.
    cni_error(
        cni(
            &sb,
            "ADD",
            "self",
            &format!("/proc/{holder}/ns/net"),
            "eth0",
            "",
            &conf("cninet", "cni-ctnet0", "10.88.0.0/16", None),
        ),
        7,
        "ctnet itself runs in",
    );
}

#[test]
fn requested_addresses_that_cannot_be_given_are_refused() {
    let _serial = one_at_a_time();
    let sb = Sandbox::new();
    // ctnet's table exists already (it stays when networks go), so what a failed ADD
    // leaves shows.
    sb.ok(&format!(
        "{MAKE_DEFAULT_NETWORK} && ip netns add c1 && ip netns add c2"
    ));
    let with_ips = |key: &str, ip: &str| {
        let mut c = conf("cninet", "cni-ctnet0", "10.88.0.0/16", None);
        match key {
            "runtimeConfig" => c["runtimeConfig"]["ips"] = json!([ip]),
            _ => c["args"] = json!({ "cni": { "ips": [ip] } }),
        }
        c
    };
    let before = sb.snapshot();
    // The first ADD makes the network; failing, it removes it again.
    cni_error(
        try_add(&sb, "c1", "c1", &with_ips("args", "10.99.0.5/16")),
        7,
        "10.99.0.5",
    );
    assert_eq!(sb.snapshot(), before, "a failed ADD left something");
    for (key, ip, code, piece) in [
        ("args", "10.88.0.1", 101, "gateway"),
        ("args", "10.88.0.0", 7, "usable"),
        ("args", "10.88.255.255", 7, "usable"),
        ("args", "fd00::5", 7, "IPv6"),
        ("args", "10.88.0.5/24", 7, "/24"),
        ("runtimeConfig", "10.99.0.5/16", 7, "10.99.0.5"),
    ] {
        cni_error(try_add(&sb, "c1", "c1", &with_ips(key, ip)), code, piece);
    }
    cni_error(
        cni(
            &sb,
            "ADD",
            "c1",
            "/run/netns/c1",
            "eth0",
            "CNI_ARGS='IgnoreUnknown=1;IP=10.99.0.7'",
            &conf("cninet", "cni-ctnet0", "10.88.0.0/16", None),
        ),
        7,
        "10.99.0.7",
    );
    assert_eq!(sb.snapshot(), before, "a failed ADD left something");
    // Taken: by a container that asked for it.
    let got = add(&sb, "c1", "c1", "eth0", &with_ips("args", "10.88.0.9/16"));
    assert_eq!(got["ips"][0]["address"], "10.88.0.9/16", "{got}");
    cni_error(
        try_add(&sb, "c2", "c2", &with_ips("args", "10.88.0.9")),
        101,
        "taken",
    );

    // netavark's static_ips: refused, and the network the setup made goes again.
    sb.ok("ip netns add p1");
    let before = sb.snapshot();
    for (ip, piece) in [
        ("10.67.0.5", "usable"),
        ("10.66.0.1", "gateway"),
        ("10.66.0.0", "usable"),
        ("10.66.255.255", "usable"),
        ("fd00::5", "IPv6"),
    ] {
        let opts = json!({
            "container_id": "a".repeat(64), "container_name": "p1",
            "networks": { "pnet": { "static_ips": [ip], "interface_name": "eth0" } },
            "network_info": { "pnet": {
                "name": "pnet", "id": "d".repeat(64), "driver": "bridge",
                "network_interface": "pnet0",
                "subnets": [{ "subnet": "10.66.0.0/16", "gateway": "10.66.0.1" }],
                "ipv6_enabled": false, "internal": false, "dns_enabled": false
            } }
        });
        let (ok, out) = netavark(&sb, "setup /run/netns/p1", &opts);
        assert!(!ok, "static_ips {ip}: {out}");
        let msg = out["error"].as_str().unwrap_or_default();
        assert!(msg.contains(piece), "static_ips {ip}: {out}");
        assert_eq!(sb.snapshot(), before, "setup with {ip} left something");
    }
}

#[test]
fn container_ids_that_are_no_ids_are_refused() {
    let _serial = one_at_a_time();
    let sb = Sandbox::new();
    sb.ok("ip netns add c1");
    let net = conf("cninet", "cni-ctnet0", "10.88.0.0/16", None);
    let before = sb.snapshot();
    for (id, piece) in [
        ("a".repeat(10_000), "10000 bytes"),
        ("../../etc".to_string(), "does not start"),
        ("c1/../x".to_string(), "'/'"),
        ("c1\tx".to_string(), "'\\t'"),
    ] {
        for command in ["ADD", "DEL"] {
            cni_error(
                cni(&sb, command, &id, "/run/netns/c1", "eth0", "", &net),
                4,
                piece,
            );
        }
    }
    assert_eq!(sb.snapshot(), before);
    let opts = json!({
        "container_id": "../x", "container_name": "x",
        "networks": { "podman": { "static_ips": ["10.88.0.5"], "interface_name": "eth0" } },
        "network_info": { "podman": {
            "name": "podman", "id": "f".repeat(64), "driver": "bridge",
            "network_interface": "podman0",
            "subnets": [{ "subnet": "10.88.0.0/16", "gateway": "10.88.0.1" }]
        } }
    });
    let (ok, out) = netavark(&sb, "setup /run/netns/c1", &opts);
    assert!(
        !ok && out["error"].as_str().unwrap_or_default().contains("../x"),
        "{out}"
    );
    assert_eq!(sb.snapshot(), before);
}

#[test]
fn gc_releases_the_endpoints_of_namespaces_that_are_gone() {
    let _serial = one_at_a_time();
    let sb = Sandbox::new();
    sb.ok("ctnet network create blue --subnet 10.32.0.0/24 --bridge blue0 && ctnet netns add keep && ip netns add lost");
    sb.ok("ctnet attach blue keep -p 8100:80 && ctnet attach blue lost -p 8101:80");
    // The namespace goes without a detach; once the kernel has removed it (its veth
    // goes with it), gc releases its endpoint, address and port.
    sb.ok("ip netns del lost");
    assert!(support::wait_until(Duration::from_secs(10), || sb
        .ok("ip -o link show master blue0")
        .lines()
        .count()
        == 1));
    let report = sb.ok("ctnet gc");
    assert!(
        report.contains("endpoint lost on blue (its namespace is gone)"),
        "{report}"
    );
    assert_eq!(
        endpoints(&sb).into_iter().map(|e| e.0).collect::<Vec<_>>(),
        vec!["keep".to_string()]
    );
    let table = sb.ok("nft list table inet ctnet");
    assert!(table.contains("8100") && !table.contains("8101"), "{table}");
    // A second gc finds nothing; the live container was never touched.
    assert!(!sb.ok("ctnet gc").contains("endpoint"));
    sb.ok("ip netns exec keep ping -c1 -W2 10.32.0.1");
}

/// Forgets the namespace identity of every endpoint row, as rows upgraded from state
/// version 6 have none.
fn forget_identities(sb: &Sandbox) {
    sb.ok(
        "sqlite3 \"$CTNET_STATE_DIR/ctnet.db\" 'UPDATE endpoints SET netns_cookie = NULL, boot_id = NULL'",
    );
}

#[test]
fn rows_from_before_version_7_are_trusted_only_while_their_veth_lives() {
    let _serial = one_at_a_time();
    let sb = Sandbox::new();
    let net = conf("cninet", "cni-ctnet0", "10.88.0.0/16", Some(8080));
    // A live container with an old row stays attached: a second ADD is refused.
    sb.ok("ip netns add alive");
    add(&sb, "aliveid", "alive", "eth0", &net);
    forget_identities(&sb);
    cni_error(
        try_add(&sb, "otherid", "alive", &net),
        101,
        "already attached",
    );
    // A lost one's old row does not block the namespace that gets its inode.
    let _ = lost_and_recycled(
        &sb,
        "lostid",
        &conf("netb", "cni-b", "10.89.0.0/16", None),
        "fresh",
    );
    forget_identities(&sb);
    add(
        &sb,
        "freshid",
        "fresh",
        "eth0",
        &conf("netb", "cni-b", "10.89.0.0/16", None),
    );
    let mut now = endpoints(&sb);
    now.sort();
    assert_eq!(
        now,
        vec![
            (
                "cni:aliveid".into(),
                "cninet".into(),
                "/run/netns/alive".into()
            ),
            (
                "cni:freshid".into(),
                "netb".into(),
                "/run/netns/fresh".into()
            ),
        ]
    );
    sb.ok("ip netns exec alive ping -c1 -W2 10.88.0.1");
}

#[test]
fn detach_and_netns_rm_of_a_recycled_inode_touch_only_the_namespaces_own_rows() {
    let _serial = one_at_a_time();
    let mut sb = Sandbox::new();
    sb.ok("ctnet network create netb --subnet 10.89.0.0/24 --bridge netb0");
    // A stale row on network neta with the inode that namespace `fresh` now has.
    let a = conf("neta", "cni-a", "10.88.0.0/16", None);
    lost_and_recycled(&sb, "lostid", &a, "fresh");
    sb.ok("ctnet attach netb fresh");
    let stale = (
        "cni:lostid".to_string(),
        "neta".to_string(),
        "/run/netns/lost".to_string(),
    );
    let both = |sb: &Sandbox| {
        let mut now = endpoints(sb);
        now.sort();
        now
    };
    let fresh_on_b = ("fresh".into(), "netb".into(), "/run/netns/fresh".into());
    assert_eq!(both(&sb), vec![stale.clone(), fresh_on_b.clone()]);
    // `fresh` is not on neta: refused, naming the stale row and gc, which is left alone
    // (before: the lost container's row was detached and reported as `fresh`'s).
    for target in ["fresh", "--netns-path /run/netns/fresh"] {
        let err = sb.fails(&format!("ctnet detach neta {target}"));
        assert!(
            err.contains("is not attached to network \"neta\"")
                && err.contains("cni:lostid")
                && err.contains("ctnet gc"),
            "{err}"
        );
        assert_eq!(both(&sb), vec![stale.clone(), fresh_on_b.clone()]);
    }
    // Its own row goes, by name or by a process inside it; the stale one stays.
    let holder = sb.spawn_ready("exec ip netns exec fresh sh -c 'echo ready; exec sleep 60'");
    let out = sb.ok(&format!("ctnet detach netb --pid {holder}"));
    assert_eq!(out.trim(), "fresh netb");
    assert_eq!(both(&sb), vec![stale.clone()]);
    sb.ok("ip -n fresh -o link show eth0 && exit 1 || true");
    // `netns rm` detaches the namespace's rows only (before: the stale row as well).
    sb.ok("ctnet attach netb fresh && ctnet netns rm fresh");
    assert_eq!(both(&sb), vec![stale]);
    sb.ok("test -z \"$(ip -o link show master netb0)\"");
    // gc releases the stale row.
    let report = sb.ok("ctnet gc");
    assert!(report.contains("cni:lostid"), "{report}");
    assert_eq!(both(&sb), vec![]);
}
