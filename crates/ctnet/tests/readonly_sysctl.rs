//! ctnet where /proc/sys is mounted read-only (a container engine inside a container), as
//! netavark works there: every setting ctnet needs is read first and written only when
//! it differs, per-device IPv4 settings go over netlink, and a value that must change
//! but cannot is refused naming its key. Each sandbox sets the right values ahead, then
//! bind-mounts /proc/sys read-only in its own mount namespace, and proves it with
//! traffic through the CLI, the netavark and the CNI doors, IPv4 and dual stack.

mod support;

use serde_json::{json, Value};
use support::{
    cni_call, netavark, refused, Sandbox, MAKE_DEFAULT_NETWORK, UPLINK_HOST, UPLINK_HOST6,
    UPLINK_WAN, UPLINK_WAN6, WAN_SERVER, WAN_SERVER6,
};

/// Makes the sandbox's /proc/sys read-only (its own mount namespace only) and proves it
/// took: even root cannot write a sysctl any more.
fn make_proc_sys_read_only(sb: &Sandbox) {
    sb.ok("mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys");
    let err = sb.fails("echo 1 > /proc/sys/net/ipv4/ip_forward");
    assert!(err.contains("Read-only file system"), "{err}");
}

fn from(addr: &str) -> String {
    format!("from {addr}:")
}

fn at6(addr: &str, port: u16) -> String {
    format!("[{addr}]:{port}")
}

/// Host sides of veths with an IPv6 address of any scope (none expected: the port's
/// IPv6 is off, or, where /proc/sys is read-only, its link-local is never made).
fn veth_ipv6_addresses(sb: &Sandbox) -> String {
    sb.ok("ip -6 -o addr show | grep ' veth' || true")
}

/// ctnet's own CLI on an IPv4 network: containers reach each other and the wan
/// (masqueraded), a published port answers from the wan and from the host's 127.0.0.1,
/// which needs `route_localnet` on the bridge, set over netlink: it is not set ahead.
#[test]
fn cli_networks_work_with_a_read_only_proc_sys_set_ahead() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.ok("sysctl -qw net.ipv4.ip_forward=1");
    make_proc_sys_read_only(&sb);
    assert_eq!(
        sb.ok("cat /proc/sys/net/ipv4/conf/default/route_localnet")
            .trim(),
        "0"
    );
    sb.serve(Some("wan"), &format!("--bind {WAN_SERVER} --tcp 80"));
    sb.ok(
        "ctnet network create ro --subnet 10.30.0.0/24 --bridge br-ro && \
         ctnet netns add a && ctnet attach ro a -p 8080:80 -p 127.0.0.1:9090:80 && \
         ctnet netns add b && ctnet attach ro b",
    );
    sb.serve(Some("a"), "--tcp 80");
    let a = sb.addr_of("a", "eth0");
    let seen = sb.reach(Some("b"), "tcp", &format!("{a}:80"));
    assert!(seen.starts_with(&from(&sb.addr_of("b", "eth0"))), "{seen}");
    let seen = sb.reach(Some("a"), "tcp", &format!("{WAN_SERVER}:80"));
    assert!(seen.starts_with(&from(UPLINK_HOST)), "wan saw {seen}");
    let seen = sb.reach(Some("wan"), "tcp", &format!("{UPLINK_HOST}:8080"));
    assert!(seen.starts_with(&from(UPLINK_WAN)), "{seen}");
    sb.reach(None, "tcp", "127.0.0.1:9090");
    assert_eq!(
        sb.ok("cat /proc/sys/net/ipv4/conf/br-ro/route_localnet")
            .trim(),
        "1"
    );
    // The bridge ports could not have IPv6 turned off through /proc/sys: they have no
    // IPv6 address either.
    assert_eq!(veth_ipv6_addresses(&sb).trim(), "", "ports got IPv6");

    sb.ok("ctnet detach ro a && ctnet detach ro b && ctnet network rm ro");
    assert!(sb
        .probe(Some("wan"), "tcp", &format!("{UPLINK_HOST}:8080"))
        .is_err());
}

fn netavark_options(id: &str, ip: &str) -> Value {
    json!({
        "container_id": id, "container_name": id,
        "port_mappings": [
            { "host_ip": "", "container_port": 80, "host_port": 8081, "range": 1, "protocol": "tcp" }
        ],
        "networks": { "podman": { "static_ips": [ip], "interface_name": "eth0" } },
        "network_info": { "podman": {
            "name": "podman", "id": "f".repeat(64), "driver": "bridge",
            "network_interface": "podman0", "created": "2026-11-22T00:00:00Z",
            "subnets": [{ "subnet": "10.88.0.0/16", "gateway": "10.88.0.1" }],
            "ipv6_enabled": false, "internal": false, "dns_enabled": false,
            "ipam_options": { "driver": "host-local" }
        } }
    })
}

fn cni_conf() -> Value {
    json!({
        "cniVersion": "1.0.0", "name": "cninet", "type": "ctnet", "bridge": "cni-ctnet0",
        "ipam": { "type": "ctnet", "subnet": "10.89.0.0/16" },
        "runtimeConfig": { "portMappings": [
            { "hostPort": 8082, "containerPort": 80, "protocol": "tcp" }
        ] }
    })
}

/// ctnet as netavark (setup, teardown) and as a CNI plugin (ADD, DEL), each making its
/// network on first use, with a published port answering from the wan and from
/// 127.0.0.1; both leave nothing behind.
#[test]
fn netavark_and_cni_work_with_a_read_only_proc_sys_set_ahead() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.ok("sysctl -qw net.ipv4.ip_forward=1");
    make_proc_sys_read_only(&sb);
    sb.ok(&format!(
        "{MAKE_DEFAULT_NETWORK} && ip netns add pod && ip -n pod link set lo up && \
         ip netns add cni && ip -n cni link set lo up"
    ));
    let before = sb.snapshot();

    let opts = netavark_options("podid", "10.88.0.5");
    let (ok, status) = netavark(&sb, "setup /run/netns/pod", &opts);
    assert!(ok, "{status}");
    let (ok, result) = cni_call(&sb, "ctnet", "ADD", "cniid", "/run/netns/cni", &cni_conf());
    assert!(ok, "{result}");
    sb.serve(Some("pod"), "--tcp 80");
    sb.serve(Some("cni"), "--tcp 80");
    for port in [8081, 8082] {
        let seen = sb.reach(Some("wan"), "tcp", &format!("{UPLINK_HOST}:{port}"));
        assert!(seen.starts_with(&from(UPLINK_WAN)), "{seen}");
    }
    sb.reach(None, "tcp", "127.0.0.1:8081");
    sb.reach(None, "tcp", "127.0.0.1:8082");

    let (ok, out) = netavark(&sb, "teardown /run/netns/pod", &opts);
    assert!(ok, "{out}");
    let (ok, out) = cni_call(&sb, "ctnet", "DEL", "cniid", "/run/netns/cni", &cni_conf());
    assert!(ok, "{out}");
    // Each door made its network on first use; netavark's teardown removed its own with
    // its last container (as netavark does), the CNI one stays until removed.
    sb.ok("ctnet network rm cninet");
    assert_eq!(sb.snapshot(), before, "something was left behind");
}

/// Dual stack: IPv6 forwarding, and the IPv6 settings ctnet wants on its bridge and on a
/// container's interface, which have no netlink form, set ahead (for devices made
/// afterwards, through `default`, in each namespace); then a container reaches another
/// and the wan over IPv6, and its published port answers over IPv6.
#[test]
fn dual_stack_works_with_a_read_only_proc_sys_set_ahead() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.serve(Some("wan"), &format!("--bind {WAN_SERVER6} --tcp 80"));
    sb.ok(
        "sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
           net.ipv6.conf.default.accept_dad=0 && \
         for ns in c1 c2; do ctnet netns add $ns >/dev/null && \
           ip netns exec $ns sysctl -qw net.ipv6.conf.default.accept_ra=0 \
             net.ipv6.conf.default.autoconf=0 net.ipv6.conf.default.accept_dad=0; done",
    );
    make_proc_sys_read_only(&sb);
    sb.ok(
        "ctnet network create ds --ipv6 --subnet fd00:30::/64 --subnet 10.31.0.0/24 && \
         ctnet attach ds c1 -p 8080:80 && ctnet attach ds c2",
    );
    sb.serve(Some("c1"), "--tcp 80");
    let c1 = sb.addr6_of("c1", "eth0");
    let seen = sb.reach(Some("c2"), "tcp", &at6(&c1, 80));
    assert!(
        seen.starts_with(&format!("from [{}]:", sb.addr6_of("c2", "eth0"))),
        "{seen}"
    );
    let seen = sb.reach(Some("c1"), "tcp", &at6(WAN_SERVER6, 80));
    assert!(
        seen.starts_with(&format!("from [{UPLINK_HOST6}]:")),
        "{seen}"
    );
    let seen = sb.reach(Some("wan"), "tcp", &at6(UPLINK_HOST6, 8080));
    assert!(
        seen.starts_with(&format!("from [{UPLINK_WAN6}]:")),
        "{seen}"
    );
    let seen = sb.reach(Some("wan"), "tcp", &format!("{UPLINK_HOST}:8080"));
    assert!(seen.starts_with(&from(UPLINK_WAN)), "{seen}");
}

/// A value that must change and cannot: refused naming the key, what it holds, what it
/// must hold and how to set it, with nothing made. IPv4 forwarding off for the CLI, the
/// first attach (which makes the default network) and netavark; IPv6 forwarding off for
/// a dual-stack network; and a container's IPv6 setting not set ahead.
#[test]
fn a_needed_value_that_cannot_be_written_is_refused_naming_the_key() {
    let sb = Sandbox::new();
    sb.ok("sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0 && ctnet netns add c1");
    make_proc_sys_read_only(&sb);
    let forward = [
        "net.ipv4.ip_forward is 0 and must be 1",
        "Read-only file system",
        "set net.ipv4.ip_forward = 1 before starting the container engine",
        "/etc/sysctl.d",
        "make /proc/sys writable",
    ];
    refused(
        &sb,
        "ctnet network create v4 --subnet 10.40.0.0/24",
        &forward,
    );
    refused(&sb, "ctnet attach bridge c1", &forward);

    let before = sb.snapshot();
    let (ok, err) = netavark(
        &sb,
        "setup /run/netns/c1",
        &netavark_options("c1id", "10.88.0.9"),
    );
    assert!(!ok);
    let text = err["error"].as_str().unwrap_or_default();
    assert!(
        text.contains(forward[0]) && text.contains(forward[2]),
        "{err}"
    );
    assert_eq!(sb.snapshot(), before, "netavark setup left something");

    refused(
        &sb,
        "ctnet network create v6 --ipv6 --ipv4 false --subnet fd00:40::/64",
        &[
            "net.ipv6.conf.all.forwarding is 0 and must be 1",
            "set net.ipv6.conf.all.forwarding = 1 before",
        ],
    );
}

/// The container side of a dual-stack attach needs IPv6 settings a new interface does not
/// start with; not set ahead, the attach is refused naming the interface's key and the
/// `default` that sets it ahead, and the attach leaves nothing.
#[test]
fn a_container_setting_that_cannot_be_written_names_the_interface_key() {
    let sb = Sandbox::new();
    sb.ok(
        "sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
           net.ipv6.conf.default.accept_dad=0 && ctnet netns add c1 && \
         ctnet network create ds --ipv6 --subnet fd00:41::/64 --subnet 10.41.0.0/24",
    );
    make_proc_sys_read_only(&sb);
    refused(
        &sb,
        "ctnet attach ds c1",
        &[
            "net.ipv6.conf.eth0.accept_ra is 1 and must be 0",
            "set net.ipv6.conf.default.accept_ra = 0",
        ],
    );
}

/// With every value right already and /proc/sys writable, a network create and an attach
/// with a port on 127.0.0.1 open no file under /proc/sys for writing (strace), yet read
/// what they check and work: `route_localnet` goes over netlink, and a value already
/// right is never written.
#[test]
fn a_value_already_right_is_not_opened_for_writing() {
    let mut sb = Sandbox::new();
    // New devices start with IPv6 off, so a bridge port's is right from the start.
    sb.ok(
        "sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.default.disable_ipv6=1 && \
         ctnet netns add a",
    );
    let trace = "strace -f -qq -e trace=openat -o /dev/stderr";
    let out = sb.run(&format!(
        // DNS off: `strace -f` would follow the host agent an attach starts, for good.
        "{trace} ctnet network create rw --subnet 10.50.0.0/24 --dns false >/dev/null && \
         {trace} ctnet attach rw a -p 127.0.0.1:9090:80 >/dev/null"
    ));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let proc_sys: Vec<&str> = log.lines().filter(|l| l.contains("\"/proc/sys/")).collect();
    assert!(
        proc_sys.iter().any(|l| l.contains("net/ipv4/ip_forward")),
        "ip_forward was not even read: {proc_sys:#?}"
    );
    assert!(
        proc_sys.iter().any(|l| l.contains("/disable_ipv6")),
        "the port's IPv6 was not even read: {proc_sys:#?}"
    );
    let written: Vec<&&str> = proc_sys
        .iter()
        .filter(|l| l.contains("O_WRONLY") || l.contains("O_RDWR"))
        .collect();
    assert!(written.is_empty(), "opened for writing: {written:#?}");
    sb.serve(Some("a"), "--tcp 80");
    sb.reach(None, "tcp", "127.0.0.1:9090");
}
