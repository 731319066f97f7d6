//! Macvlan networks over a sandbox "LAN", with real traffic: a veth `lan0` in the
//! sandbox host whose peer is in a namespace `lanhost`, the LAN's host and router
//! (10.77.0.1, with a server address 198.18.0.10 behind it on its loopback). Containers
//! on a macvlan network over `lan0` get interfaces of their own on that LAN: the LAN
//! host sees their own addresses, they reach each other (in bridge mode; not in private
//! mode), and reach what lies behind the router by their default route. From ctnet's
//! CLI and from Podman 4.3 with ctnet as its netavark; bad input refused with nothing
//! changed.

mod support;

use support::podman::{Backend, Podman};
use support::{refused, Sandbox};

/// The LAN's router and host.
const ROUTER: &str = "10.77.0.1";
/// A server behind the router (reached only through the container's default route).
const BEHIND: &str = "198.18.0.10";

/// The sandbox LAN: `lan0` (up, no address) here, its peer `eth0` in `lanhost`.
fn with_lan(sb: &mut Sandbox) {
    sb.ok(&format!(
        "set -e; ip netns add lanhost; ip link add lan0 type veth peer name eth0 netns lanhost; \
         ip link set lan0 up; ip -n lanhost link set lo up; \
         ip -n lanhost addr add {ROUTER}/24 dev eth0; ip -n lanhost link set eth0 up; \
         ip -n lanhost addr add {BEHIND}/32 dev lo"
    ));
    // One server per address: a UDP answer from a wildcard socket would leave from the
    // LAN address, not the one asked.
    sb.serve(
        Some("lanhost"),
        &format!("--bind {ROUTER} --tcp 80 --udp 53"),
    );
    sb.serve(
        Some("lanhost"),
        &format!("--bind {BEHIND} --tcp 80 --udp 53"),
    );
}

/// `ns` reaches `target` by TCP, UDP and ping, and the server saw `source`.
fn reaches(sb: &Sandbox, ns: &str, target: &str, source: &str) {
    for proto in ["tcp", "udp"] {
        let port = if proto == "tcp" { 80 } else { 53 };
        let seen = sb.reach(Some(ns), proto, &format!("{target}:{port}"));
        assert!(
            seen.starts_with(&format!("from {source}:")),
            "{proto} from {ns} to {target}: the server saw {seen}, not {source}"
        );
    }
    sb.ok(&format!("ip netns exec {ns} ping -c1 -W2 {target}"));
}

const CREATE: &str =
    "ctnet network create lan --driver macvlan --parent lan0 --subnet 10.77.0.0/24 --gateway 10.77.0.1";

#[test]
fn containers_on_a_macvlan_network_reach_the_lan_host_and_each_other_from_the_cli() {
    let mut sb = Sandbox::new();
    with_lan(&mut sb);
    let before = sb.snapshot();
    sb.ok(&format!(
        "{CREATE} && ctnet netns add c1 && ctnet netns add c2 && ctnet attach lan c1 && ctnet attach lan c2"
    ));
    let (ip1, ip2) = (sb.addr_of("c1", "eth0"), sb.addr_of("c2", "eth0"));
    assert_eq!((ip1.as_str(), ip2.as_str()), ("10.77.0.2", "10.77.0.3"));

    // The container's interface is a macvlan over lan0 in bridge mode; the host got no
    // bridge, no veth, no forwarding and nothing in ctnet's table.
    let eth0 = sb.ok("ip -n c1 -d link show eth0");
    assert!(
        eth0.contains("macvlan mode bridge") && eth0.contains("eth0@if"),
        "{eth0}"
    );
    let host_links = sb.ok("ip -o link show | grep -v ' lo:\\| lan0@' || true");
    assert_eq!(host_links.trim(), "", "new host links: {host_links}");
    assert_eq!(sb.ok("cat /proc/sys/net/ipv4/ip_forward").trim(), "0");
    let ruleset = sb.ok("nft list ruleset");
    assert!(!ruleset.contains("10.77."), "{ruleset}");
    let routes = sb.ok("ip -n c1 route");
    assert!(
        routes.contains(&format!("default via {ROUTER} dev eth0")),
        "{routes}"
    );

    // The LAN host sees each container's own address; the router forwards nothing,
    // so the server behind it answers only by the default route.
    reaches(&sb, "c1", ROUTER, &ip1);
    reaches(&sb, "c2", ROUTER, &ip2);
    reaches(&sb, "c1", BEHIND, &ip1);
    sb.serve(Some("c2"), "--tcp 80 --udp 53");
    reaches(&sb, "c1", &ip2, &ip1);
    let back = sb.reach(Some("lanhost"), "tcp", &format!("{ip2}:80"));
    assert!(back.starts_with(&format!("from {ROUTER}:")), "{back}");

    // Listed with its driver and parent; gc and doctor find nothing to mend (no bridge
    // made "again").
    let inspect = sb.ok("ctnet network inspect lan --format json");
    assert!(
        inspect.contains("macvlan") && inspect.contains("lan0"),
        "{inspect}"
    );
    let listing = sb.snapshot();
    sb.ok("ctnet gc");
    assert_eq!(
        sb.snapshot(),
        listing,
        "gc changed a healthy macvlan network"
    );
    let doctor = support::doctor_problems(&sb, None);
    assert!(doctor.is_empty(), "{doctor:?}");

    // Detach deletes the interface in the container; a gone namespace is fine too.
    sb.ok("ctnet detach lan c1");
    assert_eq!(
        sb.ok("ip -n c1 -o link show | grep -c eth0 || true").trim(),
        "0"
    );
    sb.ok("ip netns del c2");
    support::gc_lets_go_of(&sb, "c2");
    // A static address, and a detach that returns once the container is cut off, with
    // `network rm` right after it finishing the job.
    sb.ok("ctnet netns add c3 && ctnet attach lan c3 --ip 10.77.0.50");
    reaches(&sb, "c3", ROUTER, "10.77.0.50");
    sb.ok("ctnet detach --no-wait lan c3 && ctnet network rm lan");
    assert_eq!(
        sb.ok("ip -n c3 -o link show | grep -c eth0 || true").trim(),
        "0"
    );
    sb.ok("ctnet netns rm c1 && ctnet netns rm c3");
    assert_eq!(sb.snapshot(), before, "something was left behind");
}

/// A dual-stack macvlan network: the LAN's IPv6 prefix given with its router, each
/// container's IPv6 address usable at once (no duplicate address detection), seen by the
/// LAN host, and the default route of each family via the LAN's router.
#[test]
fn a_dual_stack_macvlan_network_reaches_the_lan_over_ipv6() {
    let mut sb = Sandbox::new();
    with_lan(&mut sb);
    sb.ok("ip -n lanhost addr add fd77::1/64 dev eth0 nodad");
    sb.serve(Some("lanhost"), "--bind fd77::1 --tcp 80 --udp 53");
    sb.ok(&format!(
        "{CREATE} --ipv6 --subnet fd77::/64 --gateway fd77::1 && ctnet netns add c1 && \
         ctnet netns add c2 && ctnet attach lan c1 && ctnet attach lan c2"
    ));
    let (v6a, v6b) = (sb.addr6_of("c1", "eth0"), sb.addr6_of("c2", "eth0"));
    assert_eq!((v6a.as_str(), v6b.as_str()), ("fd77::2", "fd77::3"));
    for proto in ["tcp", "udp"] {
        let port = if proto == "tcp" { 80 } else { 53 };
        let seen = sb.reach(Some("c1"), proto, &format!("[fd77::1]:{port}"));
        assert!(seen.starts_with("from [fd77::2]:"), "{proto}: {seen}");
    }
    sb.serve(Some("c2"), "--tcp 80");
    let seen = sb.reach(Some("c1"), "tcp", "[fd77::3]:80");
    assert!(seen.starts_with("from [fd77::2]:"), "{seen}");
    let routes = sb.ok("ip -n c1 -6 route show default");
    assert!(routes.contains("via fd77::1 dev eth0"), "{routes}");
    reaches(&sb, "c2", ROUTER, "10.77.0.3");
}

#[test]
fn private_mode_keeps_the_containers_apart_but_on_the_lan() {
    let mut sb = Sandbox::new();
    with_lan(&mut sb);
    sb.ok(&format!(
        "{CREATE} --macvlan-mode private && ctnet netns add c1 && ctnet netns add c2 && \
         ctnet attach lan c1 && ctnet attach lan c2"
    ));
    assert!(sb
        .ok("ip -n c2 -d link show eth0")
        .contains("macvlan mode private"));
    reaches(&sb, "c1", ROUTER, "10.77.0.2");
    reaches(&sb, "c2", ROUTER, "10.77.0.3");
    sb.serve(Some("c2"), "--tcp 80 --udp 53");
    for proto in ["tcp", "udp"] {
        let port = if proto == "tcp" { 80 } else { 53 };
        assert!(
            sb.probe(Some("c1"), proto, &format!("10.77.0.3:{port}"))
                .is_err(),
            "{proto}: private mode let c1 reach c2"
        );
    }
    assert!(!sb
        .run("ip netns exec c1 ping -c1 -W1 10.77.0.3")
        .status
        .success());
}

#[test]
fn bad_macvlan_input_is_refused_and_changes_nothing() {
    let mut sb = Sandbox::new();
    with_lan(&mut sb);
    sb.ok("ctnet network create blue --subnet 10.20.0.0/24 --bridge ctblue");
    let blue_bridge = "ctblue";
    refused(
        &sb,
        "ctnet network create lan --driver macvlan --parent lan9 --subnet 10.77.0.0/24",
        &["parent interface lan9", "does not exist", "--parent"],
    );
    refused(
        &sb,
        &format!("ctnet network create lan --driver macvlan --parent {blue_bridge} --subnet 10.77.0.0/24"),
        &["parent interface ctblue", "bridge of ctnet network \"blue\""],
    );
    refused(
        &sb,
        "ctnet network create lan --driver macvlan --parent lo --subnet 10.77.0.0/24",
        &["parent interface lo", "loopback"],
    );
    refused(
        &sb,
        "ctnet network create lan --driver macvlan --parent lan0",
        &["macvlan", "without an IPv4 subnet", "--subnet"],
    );
    refused(
        &sb,
        "ctnet network create lan --driver macvlan --parent lan0 --subnet 10.77.0.0/24 --macvlan-mode sideways",
        &["sideways"],
    );
    refused(
        &sb,
        "ctnet network create lan --driver macvlan --parent lan0 --subnet 10.77.0.0/24 --mtu 9000",
        &["MTU 9000", "parent lan0"],
    );
    sb.ok(&format!("{CREATE} && ctnet netns add c1"));
    refused(
        &sb,
        "ctnet attach lan c1 -p 8080:80",
        &["macvlan", "cannot be published", "own address"],
    );
}

/// `ctnet gc` makes a macvlan container's lost interface again over its parent, and
/// never makes a bridge for a macvlan network; a missing parent is reported, not "made
/// again", and once it is back gc puts the container back on the LAN.
#[test]
fn gc_repairs_a_macvlan_interface_and_never_makes_a_bridge() {
    let mut sb = Sandbox::new();
    with_lan(&mut sb);
    sb.ok(&format!(
        "{CREATE} && ctnet netns add c1 && ctnet attach lan c1"
    ));
    sb.ok("ip -n c1 link del eth0");
    let problems = support::doctor_problems(&sb, None);
    support::assert_reported(&problems, &["interface eth0 is missing", "ctnet gc"]);
    let gc = sb.ok("ctnet gc");
    assert!(gc.contains("macvlan eth0 made again"), "{gc}");
    reaches(&sb, "c1", ROUTER, "10.77.0.2");
    assert!(support::doctor_problems(&sb, None).is_empty());

    // The parent goes (and the kernel takes the container's interface with it).
    sb.ok("ip link del lan0");
    let problems = support::doctor_problems(&sb, None);
    support::assert_reported(
        &problems,
        &[
            "parent interface lan0 is missing",
            "bring interface lan0 back",
        ],
    );
    let states = sb.ok("ctnet network ls");
    assert!(
        states.contains("degraded (parent lan0 missing)"),
        "{states}"
    );
    sb.ok("ctnet gc");
    let links = sb.ok("ip -o link show");
    assert!(
        !links.contains("br-") && !links.contains("veth"),
        "gc made host links: {links}"
    );
    let err = sb.fails("ctnet netns add c2 && ctnet attach lan c2");
    assert!(
        err.contains("parent interface lan0") && err.contains("is gone"),
        "{err}"
    );

    // Back: gc makes the container's interface again over it.
    sb.ok(&format!(
        "ip link add lan0 type veth peer name eth0 netns lanhost && ip link set lan0 up && \
         ip -n lanhost addr add {ROUTER}/24 dev eth0 && ip -n lanhost link set eth0 up"
    ));
    let gc = sb.ok("ctnet gc");
    assert!(gc.contains("macvlan eth0 made again"), "{gc}");
    reaches(&sb, "c1", ROUTER, "10.77.0.2");
}

/// The container's network namespace, entered by the pid Podman reports.
fn netns_of(podman: &Podman, name: &str) -> String {
    let pid = podman.ok(&format!("inspect -f '{{{{.State.Pid}}}}' {name}"));
    let pid = pid.trim();
    podman
        .sb
        .ok(&format!("ip netns attach {name} {pid} && echo {name}"))
        .trim()
        .to_string()
}

#[test]
fn podman_macvlan_networks_reach_the_lan_with_ctnet_as_netavark() {
    let mut sb = Sandbox::with_host_sys();
    with_lan(&mut sb);
    let sb = sb;
    let podman = Podman::new(&sb, Backend::Netavark);
    let before = sb.snapshot();
    podman.ok(
        "network create -d macvlan -o parent=lan0 --subnet 10.77.0.0/24 --gateway 10.77.0.1 lan",
    );
    podman
        .ok("network create -d macvlan -o parent=lan0 -o mode=private --subnet 10.78.0.0/24 apart");
    for name in ["a", "b"] {
        podman.run_detached(&format!(
            "--name {name} --network lan {} sleep 600",
            support::podman::IMAGE
        ));
    }
    let (ip_a, ip_b) = (podman.ip_of("a", "lan"), podman.ip_of("b", "lan"));
    assert!(
        ip_a.starts_with("10.77.0.") && ip_b.starts_with("10.77.0."),
        "{ip_a} {ip_b}"
    );
    let (a, b) = (netns_of(&podman, "a"), netns_of(&podman, "b"));
    assert!(sb
        .ok(&format!("ip -n {a} -d link show eth0"))
        .contains("macvlan mode bridge"));
    reaches(&sb, &a, ROUTER, &ip_a);
    reaches(&sb, &b, BEHIND, &ip_b);
    // A server in b (Podman's sandbox is borrowed: this one is ended here, by its pid).
    let (mut server, ready) = sb.start_with_first_line(&format!(
        "exec ip netns exec {b} ctnet-probe serve --tcp 80 --udp 53 --max-seconds 120"
    ));
    assert!(!ready.is_empty(), "the server in {b} did not start");
    reaches(&sb, &a, &ip_b, &ip_a);
    let group = format!("-{}", server.id());
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "--", &group])
        .status();
    let _ = server.wait();
    let host_links = sb.ok("ip -o link show | grep -v ' lo:\\| lan0@' || true");
    assert_eq!(host_links.trim(), "", "new host links: {host_links}");
    // Ports on a macvlan network are refused, not dropped (the netavark front end gives
    // them only to a network that can carry them, and says none can).
    let out = podman.run(&format!(
        "run -d {} --name p -p 8080:80 --network lan {} sleep 600",
        support::podman::RUN_FLAGS,
        support::podman::IMAGE
    ));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("(\"lan\") can carry them")
            && err.contains("not a bridge network"),
        "{err}"
    );
    podman.ok("rm -f -t 0 p");

    // Podman's `mode` option is the kernel's mode.
    podman.ok("network connect apart a");
    let apart = sb.ok(&format!("ip -n {a} -d link show eth1"));
    assert!(apart.contains("macvlan mode private"), "{apart}");

    podman.ok("rm -f -t 0 a b");
    sb.ok(&format!("ip netns del {a}; ip netns del {b}"));
    podman.ok("network rm lan apart");
    assert_eq!(sb.snapshot(), before, "podman rm left something behind");
}
