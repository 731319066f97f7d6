//! Container-name DNS on user networks, by real queries from container namespaces to the
//! agent on the network's gateway (`dig`, `getent`), with a dnsmasq in the wan namespace
//! as the host's upstream resolver. The agent is never started by hand: the first attach
//! to a DNS network starts it (docs/agent.md).

mod support;

use std::time::{Duration, Instant};

use support::dns::{status, within, DEAD_UPSTREAM, UPSTREAM, WAN_ADDR, WAN_ADDR6, WAN_NAME};
use support::Sandbox;

/// A sandbox with a DNS network `user` and containers `a` and `b` (alias `web`) on it.
fn two_on_user(create: &str) -> (Sandbox, String) {
    let mut sb = Sandbox::new();
    sb.with_upstream();
    sb.ok(&format!(
        "ctnet network create user {create} >/dev/null && ctnet netns add a && ctnet netns add b && \
         ctnet attach user a >/dev/null && ctnet attach user b --alias web >/dev/null"
    ));
    let gw = sb.gateways("user")[0].clone();
    (sb, gw)
}

#[test]
fn containers_resolve_each_other_by_name_and_alias_over_udp_and_tcp() {
    let (sb, gw) = two_on_user("");
    let a = sb.addr_of("a", "eth0");
    let b = sb.addr_of("b", "eth0");
    for transport in ["", "+tcp"] {
        assert_eq!(
            sb.dig_short(Some("a"), &gw, &format!("{transport} b")),
            std::slice::from_ref(&b)
        );
        assert_eq!(
            sb.dig_short(Some("a"), &gw, &format!("{transport} web")),
            std::slice::from_ref(&b)
        );
        assert_eq!(
            sb.dig_short(Some("a"), &gw, &format!("{transport} WEB.dns.podman")),
            std::slice::from_ref(&b)
        );
        assert_eq!(
            sb.dig_short(Some("b"), &gw, &format!("{transport} -q a")),
            std::slice::from_ref(&a)
        );
    }
    // The answer is ours (authoritative), NOERROR without records for a type it lacks.
    let full = sb.dig(Some("a"), &gw, "b");
    assert!(
        full.contains(" aa ") || full.contains("flags: qr aa"),
        "{full}"
    );
    let none = sb.dig(Some("a"), &gw, "b AAAA");
    assert_eq!(status(&none), "NOERROR", "{none}");
    assert!(sb.dig_short(Some("a"), &gw, "b AAAA").is_empty());
    // PTR for its address: its name, then its alias.
    assert_eq!(
        sb.dig_short(Some("a"), &gw, &format!("-x {b}")),
        ["b.dns.podman.", "web.dns.podman."]
    );
    // glibc in the container, through the resolv.conf ctnet wrote for it.
    let hosts = sb.ok("ip netns exec a getent hosts web");
    assert!(hosts.starts_with(&b), "{hosts}");
    let conf = sb.ok("ip netns exec a cat /etc/resolv.conf");
    assert!(
        conf.contains(&format!("nameserver {gw}")) && conf.contains("search example.test"),
        "{conf}"
    );
}

#[test]
fn aaaa_and_ptr_on_a_dual_stack_network() {
    let (sb, gw) = two_on_user("--ipv6");
    let gw6 = sb.gateways("user")[1].clone();
    let b6 = sb.addr6_of("b", "eth0");
    assert_eq!(
        sb.dig_short(Some("a"), &gw, "b AAAA"),
        std::slice::from_ref(&b6)
    );
    // Over the IPv6 gateway too, UDP and TCP.
    assert_eq!(
        sb.dig_short(Some("a"), &gw6, "web AAAA"),
        std::slice::from_ref(&b6)
    );
    assert_eq!(
        sb.dig_short(Some("a"), &gw6, "+tcp b AAAA"),
        std::slice::from_ref(&b6)
    );
    assert_eq!(
        sb.dig_short(Some("a"), &gw6, &format!("-x {b6}")),
        ["b.dns.podman.", "web.dns.podman."]
    );
    let hosts = sb.ok("ip netns exec a getent ahostsv6 b");
    assert!(hosts.contains(&b6), "{hosts}");
}

#[test]
fn a_container_on_another_network_gets_nxdomain() {
    let (sb, _) = two_on_user("");
    let b = sb.addr_of("b", "eth0");
    sb.ok("ctnet network create other >/dev/null && ctnet netns add c && ctnet attach other c >/dev/null");
    let gw = sb.gateways("other")[0].clone();
    for name in ["b", "web", "b.dns.podman", "a"] {
        let out = sb.dig(Some("c"), &gw, name);
        assert_eq!(status(&out), "NXDOMAIN", "{name}: {out}");
    }
    let out = sb.dig(Some("c"), &gw, &format!("-x {b}"));
    assert_eq!(status(&out), "NXDOMAIN", "{out}");
    // Its own network still answers it.
    assert_eq!(sb.dig_short(Some("c"), &gw, "c"), [sb.addr_of("c", "eth0")]);
}

#[test]
fn other_names_go_to_the_upstream_unchanged() {
    let (sb, gw) = two_on_user("--ipv6");
    assert_eq!(sb.dig_short(Some("a"), &gw, WAN_NAME), [WAN_ADDR]);
    assert_eq!(
        sb.dig_short(Some("a"), &gw, &format!("+tcp {WAN_NAME}")),
        [WAN_ADDR]
    );
    assert_eq!(
        sb.dig_short(Some("a"), &gw, &format!("{WAN_NAME} AAAA")),
        [WAN_ADDR6]
    );
    let hosts = sb.ok(&format!("ip netns exec a getent ahostsv4 {WAN_NAME}"));
    assert!(hosts.starts_with(WAN_ADDR), "{hosts}");
    let status_file = sb.ok("cat $CTNET_RUN_DIR/agent.json");
    assert!(
        status_file.contains(&format!("{UPSTREAM}:53")),
        "{status_file}"
    );
}

#[test]
fn a_dead_upstream_gives_servfail_within_the_timeout() {
    let (sb, gw) = two_on_user("");
    sb.set_resolv_conf(&[DEAD_UPSTREAM]);
    // The agent re-reads resolv.conf on its 2 s timer.
    let switched = within(Duration::from_secs(5), || {
        sb.ok("cat $CTNET_RUN_DIR/agent.json")
            .contains(DEAD_UPSTREAM)
    });
    assert!(
        switched.is_some(),
        "the agent did not pick up the new resolv.conf"
    );
    for transport in ["", "+tcp"] {
        let start = Instant::now();
        let out = sb.dig(Some("a"), &gw, &format!("+time=6 {transport} {WAN_NAME}"));
        let took = start.elapsed();
        assert_eq!(status(&out), "SERVFAIL", "{transport}: {out}");
        assert!(
            took < Duration::from_millis(3500),
            "{transport}: SERVFAIL after {took:?}"
        );
        assert!(
            took > Duration::from_millis(1000),
            "{transport}: {took:?}: not a timeout?"
        );
    }
    // Container names do not wait on the upstream.
    assert_eq!(sb.dig_short(Some("a"), &gw, "b"), [sb.addr_of("b", "eth0")]);
    let errors = sb.ok("cat $CTNET_RUN_DIR/agent.json");
    assert!(
        errors.contains(&format!("{DEAD_UPSTREAM}:53 (udp): no answer in time")),
        "{errors}"
    );
}

#[test]
fn a_container_that_leaves_stops_resolving_within_a_second() {
    let (sb, gw) = two_on_user("");
    assert_eq!(sb.dig_short(Some("a"), &gw, "web").len(), 1);
    sb.ok("ctnet detach user b");
    let gone = within(Duration::from_secs(1), || {
        status(&sb.dig(Some("a"), &gw, "web")) == "NXDOMAIN"
    });
    assert!(gone.is_some(), "web still resolves a second after b left");
    assert_eq!(status(&sb.dig(Some("a"), &gw, "b")), "NXDOMAIN");
    // The one left still resolves itself.
    assert_eq!(
        sb.dig_short(Some("a"), &gw, "-q a"),
        [sb.addr_of("a", "eth0")]
    );
}

/// Each attach sends the agent two datagrams ("hello", then "endpoint ID") and its socket
/// queues ten (`net.unix.max_dgram_qlen`): with the agent stopped, eight attaches drop
/// some. Once it runs again it must see that its queue was full and read the whole
/// store, not only the endpoints whose datagrams it got.
#[test]
fn names_of_a_burst_larger_than_the_agents_queue_all_resolve() {
    let (sb, gw) = two_on_user("");
    let pid = sb.agent_pid().expect("an agent started on demand");
    sb.ok(&format!("kill -STOP {pid}"));
    let names: Vec<String> = (0..8).map(|i| format!("burst{i}")).collect();
    for name in &names {
        sb.ok(&format!(
            "ctnet netns add {name} && ctnet attach user {name} >/dev/null"
        ));
    }
    let queued = sb.ok("ss -x -l -n src $CTNET_RUN_DIR/agent.sock | awk 'NR > 1 {print $3}'");
    sb.ok(&format!("kill -CONT {pid}"));
    let all = within(Duration::from_secs(1), || {
        names
            .iter()
            .all(|n| sb.dig_short(Some("a"), &gw, &format!("+time=1 {n}")).len() == 1)
    });
    assert!(
        all.is_some(),
        "not every name resolves a second after the burst (the socket's Recv-Q was {queued})"
    );
}

#[test]
fn names_come_back_after_the_agent_is_killed() {
    let (sb, gw) = two_on_user("");
    let b = sb.addr_of("b", "eth0");
    let first = sb.agent_pid().expect("an agent started on demand");
    sb.kill_agent();
    assert_eq!(
        status(&sb.dig(Some("a"), &gw, "+time=1 b")),
        "",
        "answered with no agent"
    );
    // The next ctnet command that needs it starts a new one.
    sb.ok("ctnet netns add c && ctnet attach user c >/dev/null");
    let second = sb.agent_pid().expect("a new agent");
    assert_ne!(first, second);
    assert_eq!(sb.dig_short(Some("a"), &gw, "b"), [b]);
    assert_eq!(
        sb.dig_short(Some("b"), &gw, "+tcp c"),
        [sb.addr_of("c", "eth0")]
    );
}

#[test]
fn an_attach_whose_agent_cannot_start_is_refused_and_undone() {
    // The agent is started after the kernel work (a running one costs the attach one
    // datagram, nothing before it); one that cannot start must leave nothing behind.
    let sb = Sandbox::new();
    sb.ok("ctnet network create user >/dev/null && ctnet netns add a");
    assert!(sb.agent_pid().is_none());
    support::refused(
        &sb,
        "CTNET_AGENT=/nonexistent/ctnet-agent ctnet attach user a",
        &[
            "CTNET_AGENT=/nonexistent/ctnet-agent",
            "is not an executable file",
        ],
    );
    assert!(sb.agent_pid().is_none());
    assert_eq!(
        sb.ok("ls -A /etc/netns"),
        "",
        "a resolv.conf was left for a"
    );
    // With the agent found, the same attach works and its name resolves.
    sb.ok("ctnet netns add b && ctnet attach user a >/dev/null && ctnet attach user b >/dev/null");
    let gw = sb.gateways("user")[0].clone();
    assert_eq!(
        sb.dig_short(Some("b"), &gw, "-q a"),
        [sb.addr_of("a", "eth0")]
    );
}

#[test]
fn ctnet_run_resolves_names_with_nothing_started_by_hand() {
    let sb = Sandbox::new();
    sb.ok("ctnet network create user >/dev/null");
    assert!(sb.agent_pid().is_none());
    let mut server = sb.start_until(
        "exec ctnet run --network user --name a -- sh -c 'echo ready; exec sleep 60'",
        "ready",
    );
    let guard = support::GroupGuard(server.id());
    let hosts = sb.ok("ctnet run --network user -- getent hosts a");
    let a = sb.ok("ctnet ls --format json");
    let ip = a
        .split('"')
        .find(|w| w.starts_with("172.") || w.starts_with("10."))
        .unwrap_or_else(|| panic!("no address in {a}"));
    assert!(hosts.starts_with(ip), "{hosts} vs {a}");
    assert!(hosts.contains(" a"), "{hosts}");
    // And by the search domain Podman's containers are given.
    sb.ok("ctnet run --network user -- getent hosts a.dns.podman");
    drop(guard);
    let _ = server.wait();
}

#[test]
fn a_user_dns_server_keeps_port_53_and_two_networks_coexist() {
    let mut sb = Sandbox::new();
    sb.with_upstream();
    // The user's own DNS server on the host's uplink address, before ctnet.
    let theirs = support::dns::dnsmasq(support::UPLINK_HOST, &["/mine.test/192.0.2.7"]);
    sb.spawn_ready(&format!("exec {theirs} 2>&1"));
    sb.ok(
        "ctnet network create one >/dev/null && ctnet network create two >/dev/null && \
         ctnet netns add a && ctnet netns add b && ctnet attach one a >/dev/null && ctnet attach two b >/dev/null",
    );
    let (one, two) = (sb.gateways("one")[0].clone(), sb.gateways("two")[0].clone());
    assert_eq!(
        sb.dig_short(Some("a"), &one, "-q a"),
        [sb.addr_of("a", "eth0")]
    );
    assert_eq!(
        sb.dig_short(Some("b"), &two, "b"),
        [sb.addr_of("b", "eth0")]
    );
    assert_eq!(
        sb.dig_short(None, support::UPLINK_HOST, "mine.test"),
        ["192.0.2.7"]
    );
    // A second server of the user's, started after the agent, binds too.
    let later = support::dns::dnsmasq("127.0.0.1", &["/later.test/192.0.2.8"]);
    sb.spawn_ready(&format!("exec {later} 2>&1"));
    assert_eq!(sb.dig_short(None, "127.0.0.1", "later.test"), ["192.0.2.8"]);
    // The agent holds port 53 on the gateways only, never the wildcard.
    let listening = sb.ok("ss -Hlnup 'sport = :53'; ss -Hlntp 'sport = :53'");
    let agent: Vec<&str> = listening
        .lines()
        .filter(|l| l.contains("ctnet-agent"))
        .collect();
    assert_eq!(agent.len(), 4, "{listening}");
    assert!(
        agent.iter().all(|l| l.contains(&one) || l.contains(&two)),
        "{listening}"
    );
}

/// The agent only notes an attach's or a detach's datagram and applies it later (0.1 s,
/// here a minute), unless a query comes first: a name must resolve as soon as its attach
/// returns, and stop as soon as its detach returns.
#[test]
fn a_query_sees_an_attach_and_a_detach_the_agent_has_not_applied_yet() {
    let mut sb = Sandbox::new();
    sb.with_upstream();
    let slow = "CTNET_AGENT_APPLY_WITHIN_MS=60000";
    sb.ok(&format!(
        "ctnet network create user >/dev/null && ctnet netns add a && ctnet netns add c && \
         {slow} ctnet attach user a >/dev/null"
    ));
    let gw = sb.gateways("user")[0].clone();
    let names = || -> u64 {
        let out = sb.ok("ctnet agent status --format json");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let v = v.get("status").unwrap_or(&v);
        v["dns"][0]["names"].as_u64().unwrap_or(0)
    };
    // The first attach started the agent, which read the whole store: a is in.
    assert_eq!(names(), 1);
    sb.ok("ctnet attach user c >/dev/null");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        names(),
        1,
        "c was applied unasked: the minute's window is not in force"
    );
    assert_eq!(sb.dig_short(Some("a"), &gw, "c"), [sb.addr_of("c", "eth0")]);
    assert_eq!(names(), 2, "the query made the agent apply c");
    sb.ok("ctnet detach user c");
    let out = sb.dig(Some("a"), &gw, "c");
    assert_eq!(status(&out), "NXDOMAIN", "c left: {out}");
    assert_eq!(names(), 1);
}

/// A resolv.conf the user wrote for a named namespace is theirs, as Docker's `--dns`
/// wins over its embedded server: an attach to a DNS network does not overwrite it, and
/// neither a detach nor `netns rm` removes it. The namespace resolves through the server
/// it names (the upstream, straight), so container names are not found.
#[test]
fn a_resolv_conf_the_user_wrote_is_kept() {
    let (sb, _) = two_on_user("");
    let mine = format!("# mine\nnameserver {UPSTREAM}\n");
    sb.ok(&format!(
        "ctnet netns add c && mkdir -p /etc/netns/c && printf '{}' > /etc/netns/c/resolv.conf && \
         ctnet attach user c >/dev/null",
        mine.replace('\n', "\\n")
    ));
    assert_eq!(sb.ok("cat /etc/netns/c/resolv.conf"), mine);
    assert_eq!(sb.ok("ip netns exec c cat /etc/resolv.conf"), mine);
    let wan = sb.ok(&format!("ip netns exec c getent ahostsv4 {WAN_NAME}"));
    assert!(wan.starts_with(WAN_ADDR), "{wan}");
    let name = sb.run("ip netns exec c getent hosts b");
    assert_eq!(
        name.status.code(),
        Some(2),
        "b found through the user's server"
    );
    // a, whose file ctnet wrote, still gets the agent.
    let a = sb.ok("ip netns exec a getent hosts b");
    assert!(a.starts_with(&sb.addr_of("b", "eth0")), "{a}");
    sb.ok("ctnet detach user c && ctnet netns rm c");
    assert_eq!(sb.ok("cat /etc/netns/c/resolv.conf"), mine);
    // ctnet's own file still goes with its namespace.
    sb.ok("ctnet detach user a && ctnet netns rm a");
    assert_eq!(sb.run("test -e /etc/netns/a").status.code(), Some(1));
}
