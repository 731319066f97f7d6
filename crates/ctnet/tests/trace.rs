//! `ctnet trace FROM TO`: a real probe packet in a throwaway world, followed by the
//! kernel through ctnet's chains, each case with its hops and verdict: container to
//! container on one bridge, container to the wan (masqueraded, answered), the wan to a
//! published port (DNAT, answered), the wan to a container port that is not published
//! (dropped, the rule named), between isolated networks (dropped, the networks named),
//! the wan to a port published on 127.0.0.1 only (refused at the uplink address, and a
//! frame for 127.0.0.1 dropped by the loopback guard; the host itself reaches it), an internal network
//! to the wan (no route). Afterwards the table and the conntrack table are as before.
//! The same over IPv6 on a dual-stack network. Bad input is refused with nothing changed.

mod support;

use serde_json::Value;
use support::{
    refused, Sandbox, UPLINK_HOST, UPLINK_HOST6, UPLINK_WAN, UPLINK_WAN6, WAN_SERVER, WAN_SERVER6,
};

fn trace(sb: &Sandbox, args: &str) -> Value {
    let out = sb.ok(&format!("ctnet trace {args} --format json"));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn hops(v: &Value) -> Vec<String> {
    v["hops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["hop"].as_str().unwrap().to_string())
        .collect()
}

/// How the last pass through `chain` ended (a jump to `user` and back makes two).
fn chain_verdict(v: &Value, chain: &str) -> Option<String> {
    v["hops"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|h| h["hop"] == "chain" && h["table"] == "inet ctnet" && h["chain"] == chain)
        .map(|h| h["verdict"].as_str().unwrap().to_string())
}

fn has_rule(v: &Value, chain: &str, comment: &str) -> bool {
    v["hops"].as_array().unwrap().iter().any(|h| {
        h["hop"] == "chain"
            && h["chain"] == chain
            && h["rules"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["comment"].as_str().is_some_and(|c| c.contains(comment)))
    })
}

/// What a trace must leave as it found: ctnet's table without counters (elements
/// sorted; an expired trace element is not listed) and the number of conntrack entries
/// (`conntrack -L` must work: a missing tool fails the test, not counts zero).
fn state(sb: &Sandbox) -> (String, usize) {
    let table = sb.ok("nft -s list table inet ctnet");
    let mut lines: Vec<&str> = table.lines().collect();
    lines.sort();
    let conntrack =
        sb.ok("conntrack -L 2>/dev/null >/tmp/ct.$$ && wc -l </tmp/ct.$$; rm -f /tmp/ct.$$");
    (lines.join("\n"), conntrack.trim().parse().unwrap())
}

/// Two networks (web, db: isolated from each other), one internal network, three
/// containers with servers, a port published on every address and one on 127.0.0.1
/// only, and a wan with a server and a route to web's subnet (so it can try a
/// container port directly).
fn world() -> Sandbox {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.ok(
        "set -e; ctnet network create web --subnet 10.71.0.0/24 --dns false >/dev/null; \
         ctnet network create db --subnet 10.72.0.0/24 --dns false >/dev/null; \
         ctnet network create int --subnet 10.73.0.0/24 --internal --dns false >/dev/null; \
         for c in a b d i; do ctnet netns add $c; done; \
         ctnet attach web a -p 8080:80 >/dev/null; ctnet attach web b -p 127.0.0.1:8081:80 >/dev/null; \
         ctnet attach db d >/dev/null; ctnet attach int i >/dev/null; \
         ip netns exec wan ip route add 10.71.0.0/24 via 203.0.113.1",
    );
    for c in ["a", "b", "d"] {
        sb.serve(Some(c), "--tcp 80 --tcp 22 --udp 53");
    }
    sb.serve(
        Some("wan"),
        &format!("--bind {WAN_SERVER} --tcp 80 --udp 53"),
    );
    sb
}

#[test]
fn each_path_has_its_hops_and_verdict_and_nothing_remains() {
    let sb = world();
    // Warm up: the first packets of a fresh world resolve neighbours.
    sb.reach(Some("a"), "tcp", "10.71.0.3:80");
    let before = state(&sb);
    let a_ip = sb.addr_of("a", "eth0");
    let b_ip = sb.addr_of("b", "eth0");

    // Container to container on one bridge: bridged, no firewall hook sees it.
    let v = trace(&sb, "a b:80/tcp");
    assert_eq!(v["verdict"]["outcome"], "accepted", "{v:#}");
    assert_eq!(v["answer"], "connected");
    assert_eq!(v["destination"], format!("{b_ip}:80"));
    assert_eq!(
        v["source"].as_str().unwrap().split(':').next(),
        Some(a_ip.as_str())
    );
    assert_eq!(hops(&v)[..2], ["sent", "entered"], "{v:#}");

    // Container to the wan: through forward, masqueraded as the uplink address, answered.
    let v = trace(&sb, &format!("a {WAN_SERVER}:80/tcp"));
    assert_eq!(v["verdict"]["outcome"], "accepted", "{v:#}");
    assert!(
        has_rule(
            &v,
            "postrouting",
            "masquerade traffic leaving ctnet networks"
        ),
        "{v:#}"
    );
    let nat = v["hops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["hop"] == "translated")
        .unwrap_or_else(|| panic!("no NAT hop: {v:#}"));
    assert_eq!(nat["nat"], "masquerade");
    assert!(
        nat["to"].as_str().unwrap().starts_with(UPLINK_HOST),
        "{nat}"
    );
    assert!(
        v["hops"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["hop"] == "left" && h["interface"] == "uplink"),
        "{v:#}"
    );
    // UDP the same way, answered by the wan's echo server.
    let v = trace(&sb, &format!("a {WAN_SERVER}:53/udp"));
    assert_eq!(v["answer"], "replied", "{v:#}");
    // ICMP echo.
    let v = trace(&sb, &format!("a {WAN_SERVER}"));
    assert_eq!(v["protocol"], "icmp");
    assert_eq!(v["answer"], "replied", "{v:#}");

    // The wan to a published port: DNAT by the prerouting map, accepted by forward's
    // published-ports rule, delivered to a.
    let v = trace(&sb, &format!("{UPLINK_WAN} {UPLINK_HOST}:8080"));
    assert_eq!(v["verdict"]["outcome"], "accepted", "{v:#}");
    assert!(
        has_rule(&v, "prerouting", "ports published on every host address"),
        "{v:#}"
    );
    assert!(has_rule(&v, "forward", "published ports"), "{v:#}");
    let dnat = v["hops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["hop"] == "translated" && h["nat"] == "dnat")
        .unwrap_or_else(|| panic!("no DNAT hop: {v:#}"));
    assert_eq!(dnat["to"], format!("{a_ip}:80"));
    assert!(
        v["hops"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["hop"] == "delivered" && h["to"].as_str().unwrap().starts_with("a ")),
        "{v:#}"
    );

    // The wan straight to a container port that is not published: dropped, the rule named.
    let v = trace(&sb, &format!("{UPLINK_WAN} {a_ip}:22"));
    assert_eq!(v["verdict"]["outcome"], "dropped", "{v:#}");
    assert_eq!(chain_verdict(&v, "forward").as_deref(), Some("drop"));
    assert!(
        has_rule(&v, "forward", "nothing else enters a network"),
        "{v:#}"
    );
    let why = v["verdict"]["why"].as_str().unwrap();
    assert!(
        why.contains("published ports") && why.contains("web"),
        "{why}"
    );

    // Between isolated networks: dropped, the two networks named with the fix.
    let v = trace(&sb, "a d:80");
    assert_eq!(v["verdict"]["outcome"], "dropped", "{v:#}");
    let why = v["verdict"]["why"].as_str().unwrap();
    assert!(
        why.contains("networks web and db are isolated")
            && why.contains("attach the container to both"),
        "{why}"
    );

    // The wan to the port published on 127.0.0.1 only: no DNAT for the uplink address,
    // the host itself refuses it.
    let v = trace(&sb, &format!("{UPLINK_WAN} {UPLINK_HOST}:8081"));
    assert_eq!(v["verdict"]["outcome"], "refused", "{v:#}");
    assert!(
        v["verdict"]["why"]
            .as_str()
            .unwrap()
            .contains("no container has that port published"),
        "{v:#}"
    );

    // The wan to 127.0.0.1 of the host (a frame addressed to the host's MAC, as an
    // attacker on the link would send): dropped by the loopback guard before routing.
    let v = trace(&sb, &format!("{UPLINK_WAN} 127.0.0.1:8081"));
    assert_eq!(v["verdict"]["outcome"], "dropped", "{v:#}");
    assert_eq!(chain_verdict(&v, "guard").as_deref(), Some("drop"), "{v:#}");
    assert!(
        has_rule(&v, "guard", "127.0.0.0/8 is never reachable"),
        "{v:#}"
    );
    assert!(
        v["verdict"]["why"]
            .as_str()
            .unwrap()
            .contains("loopback guard"),
        "{v:#}"
    );
    // A container the same way.
    let v = trace(&sb, "a 127.0.0.1:8081");
    assert!(
        v["verdict"]["why"]
            .as_str()
            .unwrap()
            .contains("loopback guard"),
        "{v:#}"
    );
    // The host itself reaches it: DNAT to b through the output chain.
    let v = trace(&sb, "host 127.0.0.1:8081");
    assert_eq!(v["answer"], "connected", "{v:#}");
    assert!(
        has_rule(&v, "output", "ports published on one host address"),
        "{v:#}"
    );

    // An internal network to the wan: it has no route out, so it never leaves.
    let v = trace(&sb, &format!("i {WAN_SERVER}:80"));
    assert_eq!(v["verdict"]["outcome"], "dropped", "{v:#}");
    assert!(
        v["verdict"]["why"]
            .as_str()
            .unwrap()
            .contains("network int is internal"),
        "{v:#}"
    );

    // The text form says the same.
    let text = sb.ok("ctnet trace a d:80");
    for piece in [
        "trace a → d:80/tcp",
        "chain forward",
        "verdict: dropped",
        "networks web and db are isolated",
    ] {
        assert!(text.contains(piece), "{piece:?} not in:\n{text}");
    }

    // Nothing of the traces remains.
    assert_eq!(state(&sb), before);
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let sb = world();
    let before = sb.snapshot();
    refused(&sb, "ctnet trace nosuch a:80", &["nosuch", "ctnet ls"]);
    refused(&sb, "ctnet trace a b:80/icmp", &["ICMP has none"]);
    refused(&sb, "ctnet trace a b/tcp", &["names no port"]);
    refused(&sb, "ctnet trace a b:80/sctp", &["only tcp, udp and icmp"]);
    refused(&sb, "ctnet trace a:80 b", &["FROM takes no port"]);
    refused(
        &sb,
        "ctnet trace a b:80 --wait 0",
        &["--wait 0", "between 0 and 60"],
    );
    refused(&sb, "ctnet trace 192.0.2.99 b:80", &["cannot send from it"]);
    sb.ok("ctnet netns add lonely");
    refused(&sb, "ctnet trace lonely b:80", &["none mode", "no path"]);
    sb.ok("ip netns del lonely");
    assert_eq!(sb.snapshot(), before);
    // A port published for UDP only needs its protocol said.
    sb.ok("ctnet netns add u && ctnet attach web u -p 5353:53/udp >/dev/null");
    refused(
        &sb,
        &format!("ctnet trace {UPLINK_WAN} {UPLINK_HOST}:5353"),
        &["published for udp only", "/udp"],
    );
    // With ctnet's table gone, trace says so and changes nothing.
    sb.ok("nft delete table inet ctnet");
    let before = sb.snapshot();
    refused(
        &sb,
        "ctnet trace a b:80",
        &["table inet ctnet", "is missing", "ctnet gc"],
    );
    assert_eq!(sb.snapshot(), before);
}

#[test]
fn ipv6_probes_are_followed_through_nat66_and_published_ports() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.ok(
        "set -e; ctnet network create v6 --subnet 10.74.0.0/24 --ipv6 --subnet fd00:74::/64 --dns false >/dev/null; \
         ctnet netns add e; ctnet netns add f; \
         ctnet attach v6 e -p 8082:80 >/dev/null; ctnet attach v6 f >/dev/null",
    );
    for c in ["e", "f"] {
        sb.serve(Some(c), "--tcp 80");
    }
    sb.serve(Some("wan"), &format!("--bind {WAN_SERVER6} --tcp 80"));
    let e6 = sb.addr6_of("e", "eth0");
    let f6 = sb.addr6_of("f", "eth0");
    sb.reach(Some("e"), "tcp", &format!("[{f6}]:80"));
    let before = state(&sb);

    let v = trace(&sb, &format!("e [{f6}]:80"));
    assert_eq!(v["answer"], "connected", "{v:#}");
    assert_eq!(v["destination"], format!("[{f6}]:80"));

    let v = trace(&sb, &format!("e [{WAN_SERVER6}]:80"));
    assert_eq!(v["answer"], "connected", "{v:#}");
    assert!(
        has_rule(
            &v,
            "postrouting",
            "masquerade traffic leaving ctnet networks (IPv6)"
        ),
        "{v:#}"
    );
    let nat = v["hops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["hop"] == "translated")
        .unwrap();
    assert_eq!(nat["nat"], "masquerade");
    assert!(
        nat["to"]
            .as_str()
            .unwrap()
            .starts_with(&format!("[{UPLINK_HOST6}]")),
        "{nat}"
    );

    let v = trace(&sb, &format!("{UPLINK_WAN6} [{UPLINK_HOST6}]:8082"));
    assert_eq!(v["verdict"]["outcome"], "accepted", "{v:#}");
    assert!(
        has_rule(
            &v,
            "prerouting",
            "ports published on every host address (IPv6)"
        ),
        "{v:#}"
    );
    let dnat = v["hops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["hop"] == "translated")
        .unwrap();
    assert_eq!(dnat["to"], format!("[{e6}]:80"));

    let v = trace(&sb, &format!("e {WAN_SERVER6}"));
    assert_eq!(v["protocol"], "icmp");
    assert_eq!(v["answer"], "replied", "{v:#}");

    assert_eq!(state(&sb), before);
}

#[test]
fn an_interrupted_trace_still_leaves_nothing() {
    let sb = world();
    sb.reach(Some("a"), "tcp", "10.71.0.3:80");
    let before = state(&sb);
    // 203.0.113.99 is on the uplink's subnet but nobody has it: the SYN waits for an
    // answer that never comes, and SIGTERM arrives while it does (a shell's background
    // job ignores SIGINT, so SIGTERM stands for both: ctnet holds them alike).
    let out = sb.run(
        "ctnet trace a 203.0.113.99:80 --wait 5 >/dev/null & t=$!; sleep 0.5; kill -TERM $t; \
         s=$(date +%s%N); wait $t; echo exit=$? waited_ms=$(( ($(date +%s%N) - s) / 1000000 ))",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("exit=143"), "ended by SIGTERM: {stdout}");
    let waited: u64 = stdout
        .split("waited_ms=")
        .nth(1)
        .and_then(|w| w.trim().parse().ok())
        .unwrap();
    assert!(
        waited < 1000,
        "the signal ends the wait at once, not after it: {waited} ms"
    );
    assert_eq!(state(&sb), before);
}
