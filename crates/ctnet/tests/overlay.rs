//! Networks across hosts (docs/overlay.md), with real traffic.
//!
//! First the proof that the multi-host harness (support/hosts.rs) is what it claims:
//! machines on one underlay that reach each other and the wan, an etcd they can use, a
//! capture that sees their traffic, hosts on which today's ctnet works each on its own,
//! and a host that can die.
//!
//! Then overlay networks, each test on a cluster of its own with a one-member etcd and
//! an agent per host, waiting until every agent has programmed every other host:
//! - three hosts: TCP and UDP between containers of every ordered pair of hosts, the
//!   server seeing the client's overlay address, carried as VXLAN (VNI and inner
//!   addresses read off the switch); the overlay MTU (1450) crossing with DF set and
//!   1451 refused by ping; the wan reached through each container's own host;
//! - a port published on a host (by `attach -p`, TCP and UDP, and by `ctnet run -p`)
//!   reached from the wan at that host's underlay address;
//! - two overlays and a bridge network kept apart, on one host and across hosts (every
//!   refused connect a drop: it times out), each overlay working across hosts;
//! - VXLAN forged by a machine that is no host dropped by `vxlan_in` (its counter) and
//!   never seen by the target container, while the same datagram from a host arrives.

mod support;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use support::hosts::{host_addr, Cluster, Etcd, Host, WAN_ROUTER};
use support::{process_ended, wait_until, Sandbox, WAN_SERVER};

#[test]
fn hosts_reach_each_other_and_the_wan_and_etcd_answers_a_host() {
    let sb = Sandbox::new();
    let cluster = Cluster::new(&sb, 3);
    for host in cluster.hosts() {
        // Its own links under /sys (the switch's ul0 would show through a shared sysfs).
        assert_eq!(
            host.ok("ls /sys/class/net"),
            "eth0\nlo\n",
            "{}",
            host.name()
        );
        let eth0 = host.ok("ip -o -4 addr show dev eth0; ip -o link show dev eth0");
        assert!(
            eth0.contains(&format!("inet {}/24", host.addr())) && eth0.contains("mtu 1500"),
            "{eth0}"
        );
        assert_eq!(host.ok("cat /proc/sys/net/ipv4/ip_forward"), "1\n");
        for other in cluster.hosts() {
            host.ok(&format!("ping -c1 -W2 {}", other.addr()));
        }
        host.ok(&format!(
            "ping -c1 -W2 {WAN_ROUTER} && ping -c1 -W2 {WAN_SERVER}"
        ));
    }
    // The wan sees a host's own address (no NAT between hosts and the wan).
    cluster.serve_wan(&format!("--bind {WAN_SERVER} --tcp 80"));
    let seen = cluster
        .host(3)
        .reach(None, "tcp", &format!("{WAN_SERVER}:80"));
    assert!(
        seen.starts_with(&format!("from {}:", host_addr(3))),
        "{seen}"
    );

    // UDP 4789 to a host from another and from a machine that is no host, all seen on
    // the switch.
    let capture = cluster.capture_underlay("udp port 4789");
    let h2 = cluster.host(2);
    h2.serve(None, "--udp 4789");
    let target = format!("{}:4789", h2.addr());
    let seen = cluster.host(1).reach(None, "udp", &target);
    assert!(
        seen.starts_with(&format!("from {}:", host_addr(1))),
        "{seen}"
    );
    let rogue = cluster.rogue(Ipv4Addr::new(192, 0, 2, 200));
    let seen = rogue.ok(&format!("ctnet-probe udp {target} --timeout 2"));
    assert!(seen.starts_with("from 192.0.2.200:"), "{seen}");
    let wire = capture.stop();
    for from in [host_addr(1), rogue.addr()] {
        assert!(
            wire.lines().any(|l| l.contains(&format!("IP {from}."))
                && l.contains(&format!("> {}.4789: ", h2.addr()))),
            "the switch saw no datagram from {from} to {target}:\n{wire}"
        );
    }

    // One etcd member; a host writes and reads over the underlay.
    let mut etcd = Etcd::start(&cluster, 1);
    let ctl = format!("etcdctl --endpoints {} --command-timeout 5s", etcd.urls());
    assert_eq!(h2.ok(&format!("{ctl} put /ctnet-test/k from-h2")), "OK\n");
    assert_eq!(
        h2.ok(&format!("{ctl} get /ctnet-test/k --print-value-only")),
        "from-h2\n"
    );
    assert_eq!(etcd.get_prefix("/ctnet-test/"), "/ctnet-test/k\nfrom-h2\n");
    // Stopped, it answers nobody; started again on its data dir, it has the key.
    etcd.stop();
    h2.fails(&format!(
        "etcdctl --endpoints {} --dial-timeout 1s --command-timeout 1s get /ctnet-test/k",
        etcd.urls()
    ));
    etcd.restart();
    assert_eq!(etcd.get_prefix("/ctnet-test/"), "/ctnet-test/k\nfrom-h2\n");
}

#[test]
fn todays_ctnet_works_on_each_host_on_its_own() {
    let sb = Sandbox::new();
    let cluster = Cluster::new(&sb, 2);
    let (h1, h2) = (cluster.host(1), cluster.host(2));
    cluster.serve_wan(&format!("--bind {WAN_SERVER} --tcp 80"));
    // The same subnet on both: each host's state is its own.
    for host in [h1, h2] {
        host.ok("ctnet network create b --subnet 10.77.0.0/24");
    }
    // h1: a named namespace attached; h2: `ctnet run`.
    h1.ok("ctnet netns add c1 && ctnet attach b c1");
    let addr = h1.in_container_ok("c1", "ip -o -4 addr show dev eth0");
    assert!(addr.contains("inet 10.77.0.2/24"), "{addr}");
    let seen = h1.reach(Some("c1"), "tcp", &format!("{WAN_SERVER}:80"));
    assert!(seen.starts_with(&format!("from {}:", h1.addr())), "{seen}");
    let out = h2.ok(&format!(
        "ctnet run --network b --name c2 -- sh -c \
         'ip -o -4 addr show dev eth0 && ctnet-probe tcp {WAN_SERVER}:80 --timeout 2'"
    ));
    assert!(out.contains("inet 10.77.0.2/24"), "{out}");
    assert!(out.contains(&format!("from {}:", h2.addr())), "{out}");
    // Neither host knows the other's container, nor has its namespace file.
    assert!(!h2.ok("ctnet ls").contains("c1"));
    assert!(h1.ok("ctnet ls").contains("c1"));
    assert!(!h2.paths().netns_dir.join("c1").exists());
    // The wan has no way back to the containers: only masquerade got those answers.
    let route = cluster.wan("ip route get 10.77.0.2");
    assert!(!route.status.success(), "{route:?}");

    // A DNS network's attach started an agent on h1 on demand, inside h1's namespaces.
    let agent = h1.agent_pid().expect("an agent on demand on h1");
    assert_eq!(
        netns_of(agent),
        netns_of_host(h1),
        "h1's agent runs elsewhere"
    );
    h1.kill_agent();
    assert!(process_ended(agent));
    assert_eq!(
        h1.agent_pid(),
        None,
        "{}",
        h1.ok(
            "ps -eo pid,ppid,lstart,stat,args | grep '[c]tnet-agent'; cat $CTNET_RUN_DIR/agent.log"
        )
    );
}

#[test]
fn three_etcd_members_survive_losing_the_leader() {
    let sb = Sandbox::new();
    let cluster = Cluster::new(&sb, 1);
    let mut etcd = Etcd::start(&cluster, 3);
    let h1 = cluster.host(1);
    let ctl = |urls: &str| format!("etcdctl --endpoints {urls} --command-timeout 5s");
    h1.ok(&format!("{} put /ctnet-test/before 1", ctl(&etcd.urls())));
    let leader = etcd.wait_leader();
    etcd.kill_member(leader);
    let new_leader = etcd.wait_leader();
    assert_ne!(new_leader, leader);
    let others: Vec<String> = etcd.running().iter().map(|i| etcd.url(*i)).collect();
    assert_eq!(others.len(), 2);
    let rest = ctl(&others.join(","));
    h1.ok(&format!("{rest} put /ctnet-test/after 2"));
    assert_eq!(
        etcd.get_prefix("/ctnet-test/"),
        "/ctnet-test/after\n2\n/ctnet-test/before\n1\n"
    );
    // Back on its data dir, the old leader has what was written without it (a
    // serializable read answers from its own store).
    etcd.restart();
    let back = h1.ok(&format!(
        "{} get /ctnet-test/after --print-value-only --consistency s",
        ctl(&etcd.url(leader))
    ));
    assert_eq!(back, "2\n");
}

#[test]
fn a_removed_host_is_gone_and_the_cluster_ends_what_it_started() {
    let sb = Sandbox::new();
    let cluster = Cluster::new(&sb, 2);
    let (h1, h2) = (cluster.host(1), cluster.host(2));
    let agent1 = h1.start_agent("");
    assert_eq!(h1.agent_pid(), Some(agent1));
    assert_eq!(netns_of(agent1), netns_of_host(h1));
    h1.ok(
        "ctnet network create b --subnet 10.77.0.0/24 && ctnet netns add c1 && ctnet attach b c1",
    );
    let server1 = h1.serve(Some("c1"), "--tcp 80");
    h2.ok(
        "ctnet network create b --subnet 10.77.0.0/24 && ctnet netns add c1 && ctnet attach b c1",
    );
    let server2 = h2.serve(Some("c1"), "--tcp 80");
    let agent2 = h2.agent_pid().expect("an agent on demand on h2");
    h2.ok(&format!("ping -c1 -W2 {}", h1.addr()));
    // Left running by a test's `&`, on the host and in its container: no pid was kept.
    let stray = |script: &str| -> u32 {
        h1.ok(&format!("{script} >/dev/null 2>&1 & echo $!"))
            .trim()
            .parse()
            .unwrap()
    };
    let on_host = stray("sleep 60");
    let in_container = stray(&format!(
        "nsenter --net={}/c1 sleep 60",
        h1.paths().netns_dir.display()
    ));

    h1.remove();
    for pid in [agent1, server1, on_host, in_container] {
        assert!(process_ended(pid), "pid {pid} outlived h1");
    }
    assert!(h1.is_removed());
    let links = sb.ok("ip -o link show; ip netns list");
    assert!(!links.contains("ul-h1") && !links.contains("h1"), "{links}");
    h2.fails(&format!("ping -c1 -W1 {}", h1.addr()));
    // h2 and its container are as they were.
    h2.ok("ctnet ls | grep -q c1");
    h2.reach(Some("c1"), "tcp", "127.0.0.1:80");

    let holder2 = h2.holder_pid();
    drop(cluster);
    for pid in [agent2, server2, holder2] {
        assert!(process_ended(pid), "pid {pid} outlived the cluster");
    }
}

fn netns_of(pid: u32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()
}

/// The host's network namespace, as a process on it sees it.
fn netns_of_host(host: &support::hosts::Host) -> Option<PathBuf> {
    Some(PathBuf::from(host.ok("readlink /proc/self/ns/net").trim()))
}

/// Every ordered pair of hosts talks TCP and UDP over one overlay unmasqueraded, over
/// VXLAN; its MTU is the underlay's less 50; the wan sees each host's own address.
#[test]
fn three_hosts_talk_over_the_overlay_unmasqueraded_and_reach_the_wan_through_their_own_host() {
    let sb = Sandbox::new();
    let cluster = Cluster::new(&sb, 3);
    let _etcd = overlays(&cluster, &[("ov1", "10.50.0.0/16")]);
    let hosts = cluster.hosts();
    let containers: Vec<(String, Ipv4Addr)> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let name = format!("c{}", i + 1);
            let addr = container(h, &name, "ov1", "");
            (name, addr)
        })
        .collect();
    for (host, (name, _)) in hosts.iter().zip(&containers) {
        host.serve(Some(name), "--tcp 80 --udp 80");
    }

    let capture = cluster.capture_underlay("udp port 4789");
    for (from, (name, addr)) in hosts.iter().zip(&containers) {
        for (to, (_, target)) in hosts.iter().zip(&containers) {
            if from.name() == to.name() {
                continue;
            }
            for proto in ["tcp", "udp"] {
                let seen = from.reach(Some(name), proto, &format!("{target}:80"));
                assert!(
                    seen.starts_with(&format!("from {addr}:")),
                    "{proto} {name} on {} -> {target} on {}: the server saw {seen:?}, not {addr}",
                    from.name(),
                    to.name()
                );
            }
        }
    }
    // A DF ping of the overlay MTU crosses in one datagram; a byte more does not leave.
    let (c1, _) = &containers[0];
    let c2_addr = containers[1].1;
    let mtu = format!("ping -c1 -W2 -M do -s {} {c2_addr}", OVERLAY_MTU - 28);
    hosts[0].in_container_ok(c1, &mtu);
    let over = hosts[0].in_container(
        c1,
        &format!("ping -c1 -W2 -M do -s {} {c2_addr}", OVERLAY_MTU - 27),
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&over.stdout),
        String::from_utf8_lossy(&over.stderr)
    );
    assert!(
        !over.status.success()
            && said.contains("message too long")
            && said.contains(&format!("mtu={OVERLAY_MTU}")),
        "a DF ping of {} bytes from c1 should fail locally: {said}",
        OVERLAY_MTU + 1
    );
    let wire = capture.stop();
    let frames = vxlan_frames(&wire);
    let vni = inspect(&hosts[0], "ov1")["overlay"]["vni"]
        .as_u64()
        .expect("ov1's VNI");
    for (from, (_, addr)) in hosts.iter().zip(&containers) {
        for (to, (_, target)) in hosts.iter().zip(&containers) {
            if from.name() == to.name() {
                continue;
            }
            for inner in [": Flags [S]", ": UDP"] {
                assert!(
                    frames.iter().any(|f| f.from == from.addr() && f.to == to.addr() && f.vni == vni
                        && f.inner.starts_with(&format!("IP {addr}."))
                        && f.inner.contains(&format!(" > {target}.80{inner}"))),
                    "no VXLAN datagram {} -> {}:4789 (VNI {vni}) carrying {addr} -> {target}:80{inner} on the switch:\n{wire}",
                    from.addr(), to.addr()
                );
            }
        }
    }
    let full = format!("IP {} > {c2_addr}: ICMP echo request", containers[0].1);
    assert!(
        frames.iter().any(|f| f.from == hosts[0].addr()
            && f.inner.starts_with(&full)
            && f.inner.ends_with(&format!("length {}", OVERLAY_MTU - 20))),
        "the {OVERLAY_MTU}-byte ping crossed in no single VXLAN datagram:\n{wire}"
    );

    // The wan: each container through its own host's masquerade.
    cluster.serve_wan(&format!("--bind {WAN_SERVER} --tcp 80"));
    for (host, (name, _)) in hosts.iter().zip(&containers) {
        let seen = host.reach(Some(name), "tcp", &format!("{WAN_SERVER}:80"));
        assert!(
            seen.starts_with(&format!("from {}:", host.addr())),
            "{name} on {} -> the wan: {seen}",
            host.name()
        );
    }
}

/// A port published on a host reaches its overlay container from the wan (DNAT only: the
/// container sees the wan router), on that host only.
#[test]
fn a_port_published_on_a_host_reaches_its_overlay_container_from_the_wan() {
    let sb = Sandbox::new();
    let cluster = Cluster::new(&sb, 2);
    let _etcd = overlays(&cluster, &[("ov1", "10.50.0.0/16")]);
    let (h1, h2) = (cluster.host(1), cluster.host(2));
    // On h2 by attach, TCP and UDP.
    container(h2, "c2", "ov1", "-p 8080:80 -p 8080:80/udp");
    h2.serve(Some("c2"), "--tcp 80 --udp 80");
    // On h1 by `ctnet run`, whose command is the server.
    h1.spawn_ready("exec ctnet run --network ov1 --name c1 -p 8081:80 -- ctnet-probe serve --tcp 80 --max-seconds 60");
    for (target, proto) in [
        (format!("{}:8080", h2.addr()), "tcp"),
        (format!("{}:8080", h2.addr()), "udp"),
        (format!("{}:8081", h1.addr()), "tcp"),
    ] {
        let out = cluster.wan(&format!("ctnet-probe {proto} {target} --timeout 2"));
        let seen = String::from_utf8_lossy(&out.stdout);
        // DNAT only: the container sees the wan router itself.
        assert!(
            out.status.success() && seen.starts_with(&format!("from {WAN_ROUTER}:")),
            "{proto} from the wan to {target}: {seen}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The published port is the host's, not the other host's.
    let out = cluster.wan(&format!("ctnet-probe tcp {}:8081 --timeout 2", h2.addr()));
    assert!(!out.status.success(), "{out:?}");
}

/// Two overlays (their own VNIs) on the same two hosts and a bridge network on h1: each
/// overlay works across hosts; between any two of the three networks, on one host or
/// across hosts, every connect times out.
#[test]
fn two_overlays_and_a_bridge_network_are_isolated_from_each_other() {
    let sb = Sandbox::new();
    let cluster = Cluster::new(&sb, 2);
    let _etcd = overlays(
        &cluster,
        &[("ov1", "10.50.0.0/16"), ("ov2", "10.60.0.0/16")],
    );
    let (h1, h2) = (cluster.host(1), cluster.host(2));
    let vni = |net| inspect(h1, net)["overlay"]["vni"].as_u64();
    assert_ne!(vni("ov1"), vni("ov2"), "two overlays share a VNI");
    h1.ok("ctnet network create b --subnet 10.77.0.0/24");
    let a1 = container(h1, "a1", "ov1", "");
    let b1 = container(h1, "b1", "ov2", "");
    let n1 = container(h1, "n1", "b", "");
    let a2 = container(h2, "a2", "ov1", "");
    let b2 = container(h2, "b2", "ov2", "");
    for (host, name) in [(h1, "a1"), (h1, "b1"), (h1, "n1"), (h2, "a2"), (h2, "b2")] {
        host.serve(Some(name), "--tcp 80");
    }
    // So that a2 -> n1 gets as far as h1's firewall, h2 routes b's subnet to h1.
    h2.ok(&format!("ip route add 10.77.0.0/24 via {}", h1.addr()));

    // Each overlay works across hosts.
    talks(h1, ("a1", a1), a2);
    talks(h2, ("a2", a2), a1);
    talks(h1, ("b1", b1), b2);
    talks(h2, ("b2", b2), b1);
    // Nothing else does; every drop takes the probe's whole timeout, so all at once.
    let cuts: [(&Host, &str, Ipv4Addr); 12] = [
        (h1, "a1", b2), // ov1 -> ov2 on the other host
        (h1, "a1", b1), // ov1 -> ov2 on the same host
        (h2, "a2", b1),
        (h2, "a2", b2),
        (h1, "b1", a2),
        (h1, "b1", a1),
        (h2, "b2", a1),
        (h1, "n1", a1), // bridge -> ov1 on the same host
        (h1, "n1", a2), // bridge -> ov1 on the other host
        (h1, "a1", n1), // ov1 -> bridge on the same host
        (h2, "a2", n1), // ov1 on the other host -> bridge
        (h1, "n1", b2),
    ];
    std::thread::scope(|s| {
        for (host, name, target) in cuts {
            s.spawn(move || cut_off(host, name, target));
        }
    });
    // The drops are the firewall's, not a route missing: without `forward`'s rules every
    // one of those connects (across networks masqueraded, as between bridges). The
    // agents go first, or they would put the rules back.
    for host in [h1, h2] {
        host.kill_agent();
        host.ok("nft flush chain inet ctnet forward");
    }
    for (host, name, target) in cuts {
        host.reach(Some(name), "tcp", &format!("{target}:80"));
    }
}

/// VXLAN carrying a well-formed overlay packet for c1, sent to h1 by a machine that is
/// no host, is dropped by `vxlan_in` (counted) and never reaches c1; the same datagram
/// from h2, a registered host, does, so the source check is what stops the first.
#[test]
fn vxlan_from_a_machine_that_is_no_host_is_dropped_and_from_a_host_delivered() {
    let sb = Sandbox::new();
    let cluster = Cluster::new(&sb, 2);
    let _etcd = overlays(&cluster, &[("ov1", "10.50.0.0/16")]);
    let (h1, h2) = (cluster.host(1), cluster.host(2));
    let c1 = container(h1, "c1", "ov1", "");
    let c2 = container(h2, "c2", "ov1", "");
    let ov1 = inspect(h1, "ov1");
    let vni = ov1["overlay"]["vni"].as_u64().expect("ov1's VNI");
    let vtep1 = ov1["overlay"]["vtep_mac"]
        .as_str()
        .expect("h1's VTEP MAC")
        .to_string();
    let vtep2 = inspect(h2, "ov1")["overlay"]["vtep_mac"]
        .as_str()
        .expect("h2's VTEP MAC")
        .to_string();
    let eth0 = h1.ok("cat /sys/class/net/eth0/address").trim().to_string();
    // What h2's VTEP would send c1 from c2: to h1's VTEP MAC (the VXLAN device routes;
    // it is no bridge port), UDP to a port where tcpdump in c1 waits.
    let packet = |outer_src: Ipv4Addr| {
        format!(
            "Ether(dst='{eth0}')/IP(src='{outer_src}', dst='{h1}')/UDP(sport=40000, dport=4789)\
             /VXLAN(vni={vni}, flags='Instance')/Ether(src='{vtep2}', dst='{vtep1}')\
             /IP(src='{c2}', dst='{c1}')/UDP(sport=5555, dport=9999)/Raw(load=b'crafted')",
            h1 = h1.addr()
        )
    };
    let send = |packet: String| {
        format!("{PYTHON} -c \"from scapy.all import *; conf.verb = 0; sendp([{packet}] * 3, iface='eth0')\"")
    };
    let seen = capture_in(h1, "c1", "udp port 9999");
    let arrived = || {
        std::fs::read_to_string(&seen)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&format!("IP {c2}.5555 > {c1}.9999: UDP, length 7")))
            .count()
    };

    let rogue = cluster.rogue(Ipv4Addr::new(192, 0, 2, 200));
    let before = vxlan_in_drops(h1);
    rogue.ok(&send(packet(rogue.addr())));
    // Counted as it arrives: once the three are, none of them went further.
    assert!(
        wait_until(Duration::from_secs(5), || vxlan_in_drops(h1) >= before + 3),
        "vxlan_in on h1 dropped {} of the rogue's 3 datagrams",
        vxlan_in_drops(h1).saturating_sub(before)
    );
    assert_eq!(vxlan_in_drops(h1), before + 3);
    assert_eq!(arrived(), 0, "c1 saw the rogue's packet");

    // The same packet from a registered host arrives; had the rogue's passed, c1 would
    // have seen six.
    h2.ok(&send(packet(h2.addr())));
    wait_until(Duration::from_secs(5), || arrived() >= 3);
    assert_eq!(
        arrived(),
        3,
        "c1 should see h2's 3 datagrams and none of the rogue's:\n{}",
        std::fs::read_to_string(&seen).unwrap_or_default()
    );
    assert_eq!(
        vxlan_in_drops(h1),
        before + 3,
        "h2's datagrams were dropped too"
    );
}

/// How long the agents may take to lease their blocks and program each other.
const CONVERGE: Duration = Duration::from_secs(20);
/// The underlay's MTU less VXLAN's 50 bytes.
const OVERLAY_MTU: u32 = 1450;
/// The system Python, which has python3-scapy (a pyenv shim on PATH may not).
const PYTHON: &str = "/usr/bin/python3";

/// Starts a one-member etcd, creates the overlays `(name, subnet)` from h1 (each with
/// the lowest free VNI), starts every host's agent and waits until each has joined every
/// overlay and programmed the other hosts. The etcd must live as long as the traffic.
fn overlays<'a>(cluster: &Cluster<'a>, nets: &[(&str, &str)]) -> Etcd<'a> {
    let etcd = Etcd::start(cluster, 1);
    for (name, subnet) in nets {
        cluster.host(1).ok(&format!(
            "ctnet network create {name} --driver overlay --subnet {subnet} --etcd {}",
            etcd.urls()
        ));
    }
    start_agents(cluster, &etcd);
    let names: Vec<&str> = nets.iter().map(|(name, _)| *name).collect();
    wait_converged(cluster, &names);
    etcd
}

/// Starts an agent with the overlay role on every host of the cluster.
fn start_agents(cluster: &Cluster, etcd: &Etcd) {
    for host in cluster.hosts() {
        host.start_agent(&format!(
            "--etcd {} --advertise-addr {} --host-name {}",
            etcd.urls(),
            host.addr(),
            host.name()
        ));
    }
}

/// `ctnet network inspect NET --format json` on `host`.
fn inspect(host: &Host, net: &str) -> Value {
    let out = host.ok(&format!("ctnet network inspect {net} --format json"));
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("inspect {net} on {}: {e}: {out}", host.name()))
}

/// The hosts `host` has programmed as peers of `net` (none before it joined).
fn peer_hosts(host: &Host, net: &str) -> Vec<String> {
    let out = host.run(&format!("ctnet network inspect {net} --format json"));
    let Ok(view) = serde_json::from_slice::<Value>(&out.stdout) else {
        return Vec::new();
    };
    let mut hosts: Vec<String> = view["peers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["host"].as_str().map(String::from))
        .collect();
    hosts.sort();
    hosts
}

/// Waits until every host has joined each of `nets` and programmed every other host as
/// its peer.
fn wait_converged(cluster: &Cluster, nets: &[&str]) {
    for host in cluster.hosts() {
        let mut others: Vec<String> = cluster
            .hosts()
            .iter()
            .filter(|h| h.name() != host.name())
            .map(|h| h.name().to_string())
            .collect();
        others.sort();
        for net in nets {
            let done = wait_until(CONVERGE, || peer_hosts(host, net) == others);
            assert!(
                done,
                "{} did not program {others:?} as peers of {net} within {CONVERGE:?}: has {:?}; its agent's log:\n{}",
                host.name(),
                peer_hosts(host, net),
                host.agent_log()
            );
        }
    }
}

/// Makes container namespace `name` on `host` and attaches it to `net` (with `extra`
/// options); returns its address.
fn container(host: &Host, name: &str, net: &str, extra: &str) -> Ipv4Addr {
    host.ok(&format!(
        "ctnet netns add {name} && ctnet attach {net} {name} {extra}"
    ));
    address_of(host, name)
}

/// The IPv4 address of `eth0` in container `name` on `host`.
fn address_of(host: &Host, name: &str) -> Ipv4Addr {
    let out = host.in_container_ok(name, "ip -o -4 addr show dev eth0");
    let inet = out
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .unwrap_or_else(|| {
            panic!(
                "no IPv4 address on eth0 of {name} on {}: {out}",
                host.name()
            )
        });
    inet.split('/').next().unwrap().parse().unwrap()
}

/// `from` (container `name` on `host`) reaches `target`:80 over TCP, seen as `addr`.
fn talks(host: &Host, (name, addr): (&str, Ipv4Addr), target: Ipv4Addr) {
    let seen = host.reach(Some(name), "tcp", &format!("{target}:80"));
    assert!(
        seen.starts_with(&format!("from {addr}:")),
        "{name} on {} -> {target}: the server saw {seen:?}",
        host.name()
    );
}

/// Container `name` on `host` cannot reach `target`:80: its connect times out (dropped,
/// not refused by a missing server nor unrouted).
fn cut_off(host: &Host, name: &str, target: Ipv4Addr) {
    match host.probe(Some(name), "tcp", &format!("{target}:80")) {
        Ok(seen) => panic!("{name} on {} reached {target}: {seen}", host.name()),
        Err(e) => assert!(
            e.contains("timed out"),
            "{name} on {} -> {target} failed, but not by a drop: {e}",
            host.name()
        ),
    }
}

/// One VXLAN datagram as tcpdump shows it: the outer addresses, the VNI, and the inner
/// packet (tcpdump's next line).
struct VxlanFrame {
    from: Ipv4Addr,
    to: Ipv4Addr,
    vni: u64,
    inner: String,
}

/// The VXLAN datagrams to port 4789 in a capture of `tcpdump -n` (`IP 192.0.2.11.47357 >
/// 192.0.2.12.4789: VXLAN, flags [I] (0x08), vni 1`, then the inner packet's line).
fn vxlan_frames(wire: &str) -> Vec<VxlanFrame> {
    let lines: Vec<&str> = wire.lines().collect();
    lines
        .windows(2)
        .filter_map(|pair| {
            let (outer, rest) = pair[0].split_once(" IP ")?.1.split_once(": VXLAN, ")?;
            let (src, dst) = outer.split_once(" > ")?;
            let addr = |end: &str| -> Option<Ipv4Addr> { end.rsplit_once('.')?.0.parse().ok() };
            let dst_port = dst.rsplit_once('.')?.1;
            (dst_port == "4789").then_some(())?;
            Some(VxlanFrame {
                from: addr(src)?,
                to: addr(dst)?,
                vni: rest.rsplit_once("vni ")?.1.trim().parse().ok()?,
                inner: pair[1].trim().to_string(),
            })
        })
        .collect()
}

/// The packets chain `vxlan_in` on `host` has dropped (its rule's counter).
fn vxlan_in_drops(host: &Host) -> u64 {
    let chain = host.ok("nft list chain inet ctnet vxlan_in");
    chain
        .split_once("counter packets ")
        .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no counter in vxlan_in on {}:\n{chain}", host.name()))
}

/// Starts tcpdump with `filter` on eth0 of container `name` on `host`; returns the file
/// its packets go to, once it captures.
fn capture_in(host: &Host, name: &str, filter: &str) -> PathBuf {
    let out = host.dir().join(format!("capture-{name}.txt"));
    let err = host.dir().join(format!("capture-{name}.err"));
    host.spawn_ready(&format!(
        "exec nsenter --net={netns} -- sh -c \"tcpdump -i eth0 -n -l --immediate-mode -c 1000 '{filter}' > {out} 2> {err} & echo started; wait\"",
        netns = host.paths().netns_dir.join(name).display(),
        out = out.display(),
        err = err.display()
    ));
    let read = |p: &PathBuf| std::fs::read_to_string(p).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(5), || read(&err)
            .contains("listening on")),
        "tcpdump in {name} on {} did not start: {}",
        host.name(),
        read(&err)
    );
    out
}
