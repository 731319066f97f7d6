//! Networks across hosts. For now, the proof that the multi-host harness
//! (support/hosts.rs) is what it claims: machines on one underlay that reach each other
//! and the wan, an etcd they can use, a capture that sees their traffic, hosts on which
//! today's ctnet works each on its own, and a host that can die.

mod support;

use std::net::Ipv4Addr;
use std::path::PathBuf;

use support::hosts::{host_addr, Cluster, Etcd, WAN_ROUTER};
use support::{process_ended, Sandbox, WAN_SERVER};

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
