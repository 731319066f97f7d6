//! The ways to name a container (named namespace, namespace path, pid), `netns exec`, MTU.

mod support;

use support::Sandbox;

#[test]
fn attach_by_pid_and_by_namespace_path() {
    let mut sb = Sandbox::new();
    sb.ok("ctnet network create blue --subnet 10.11.0.0/24");
    // A process in its own network namespace, as a container runtime would start it.
    let pid = sb.spawn_ready("exec unshare --net sh -c 'echo ready; exec sleep 120'");
    let inner = sb
        .ok(&format!("pgrep -P {pid} sleep || echo {pid}"))
        .trim()
        .to_string();
    sb.ok(&format!("ctnet attach blue --pid {inner}"));
    let addr = sb.ok(&format!(
        "nsenter -t {inner} -n ip -o -4 addr show dev eth0"
    ));
    assert!(addr.contains("10.11.0.2/24"), "{addr}");
    sb.ok("ping -c1 -W2 10.11.0.2");
    // The same namespace by path is the same container: a second attach is refused.
    let err = sb.fails(&format!(
        "ctnet attach blue --netns-path /proc/{inner}/ns/net"
    ));
    assert!(err.contains("already attached"), "{err}");
    sb.ok(&format!(
        "ctnet detach blue --netns-path /proc/{inner}/ns/net"
    ));
    assert!(!sb.ok("ip -o link").contains("veth"));
    // By a bind-mounted path.
    sb.ok(&format!(
        "touch /run/netns/bound && mount --bind /proc/{inner}/ns/net /run/netns/bound"
    ));
    sb.ok("ctnet attach blue --netns-path /run/netns/bound");
    // Addresses are handed out in turn: the next one, not the one just given back.
    let addr = sb.ok(&format!(
        "nsenter -t {inner} -n ip -o -4 addr show dev eth0"
    ));
    assert!(addr.contains("10.11.0.3/24"), "{addr}");
    sb.ok("ping -c1 -W2 10.11.0.3");
}

#[test]
fn netns_exec_runs_inside_and_ip_netns_sees_ctnet_namespaces() {
    let sb = Sandbox::new();
    sb.ok("ctnet netns add c1 && ctnet attach bridge c1");
    let links = sb.ok("ctnet netns exec c1 ip -o link show");
    assert!(links.contains("eth0"), "{links}");
    // /sys inside shows the namespace's own devices, as with `ip netns exec`.
    let sys = sb.ok("ctnet netns exec c1 ls /sys/class/net");
    assert!(sys.contains("eth0") && !sys.contains("ctnet0"), "{sys}");
    assert!(sb.ok("ip netns list").contains("c1"));
    let out = sb.run("ctnet netns exec c1 sh -c 'exit 5'");
    assert_eq!(out.status.code(), Some(5));
    let listed = sb.ok("ctnet netns ls --format json");
    assert!(
        listed.contains("\"c1\"") && listed.contains("bridge"),
        "{listed}"
    );
}

#[test]
fn network_mtu_reaches_the_container() {
    let sb = Sandbox::new();
    sb.ok("ctnet network create small --subnet 10.12.0.0/24 --mtu 1400 && ctnet netns add c1 && ctnet attach small c1");
    assert!(sb.ok("ip -n c1 link show eth0").contains("mtu 1400"));
    let bridge = sb.ok("ctnet network inspect small --format json");
    assert!(bridge.contains("\"mtu\": 1400"), "{bridge}");
    sb.ok("ip netns exec c1 ping -c1 -W2 -M do -s 1372 10.12.0.1");
    assert!(!sb
        .run("ip netns exec c1 ping -c1 -W1 -M do -s 1373 10.12.0.1")
        .status
        .success());
}
