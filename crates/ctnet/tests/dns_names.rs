//! The one-shot side of container-name DNS: which networks have DNS, the names and
//! aliases a container may take (each bad one refused, nothing changed), the resolv.conf
//! a container is shown, and `ctnet agent status` without an agent. Real queries to the
//! agent are in dns.rs.

mod support;

use serde_json::Value;
use support::{refused, Sandbox};

fn dns_of(sb: &Sandbox, network: &str) -> bool {
    let out = sb.ok(&format!("ctnet network inspect {network} --format json"));
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    v["dns"]
        .as_bool()
        .unwrap_or_else(|| panic!("no dns in {out}"))
}

#[test]
fn created_networks_have_dns_and_the_default_network_does_not() {
    let sb = Sandbox::new();
    sb.ok(
        "ctnet network create user >/dev/null && ctnet network create quiet --dns false >/dev/null \
         && ctnet network create hushed --disable-dns >/dev/null",
    );
    assert!(dns_of(&sb, "user"));
    assert!(!dns_of(&sb, "quiet"));
    assert!(!dns_of(&sb, "hushed"));
    assert!(!dns_of(&sb, "bridge"), "docker0's counterpart has no DNS");
    let ls = sb.ok("ctnet network ls");
    assert!(ls.lines().next().unwrap().contains("DNS"), "{ls}");
    let user = ls.lines().find(|l| l.starts_with("user ")).unwrap();
    assert!(user.contains(" true "), "{ls}");
}

#[test]
fn bad_names_and_aliases_are_refused_and_change_nothing() {
    let sb = Sandbox::new();
    sb.ok(
        "ctnet network create user >/dev/null && ctnet network create quiet --dns false >/dev/null \
         && ctnet netns add c && ctnet netns add d && ctnet netns add www \
         && ctnet attach user c --alias web >/dev/null",
    );
    let before = sb.snapshot();
    refused(
        &sb,
        "ctnet run --network user --name a_b -- true",
        &[
            "name \"a_b\"",
            "not a valid DNS name",
            "letters, digits and '-'",
        ],
    );
    refused(
        &sb,
        "ctnet attach user d --alias bad_alias",
        &["alias \"bad_alias\"", "not a valid DNS name"],
    );
    refused(
        &sb,
        "ctnet attach user d --alias WEB",
        &[
            "alias \"web\"",
            "already used by container \"c\" on network \"user\"",
            "choose another",
        ],
    );
    refused(
        &sb,
        "ctnet attach user www --alias c",
        &["already used by container \"c\""],
    );
    refused(
        &sb,
        "ctnet attach quiet d --alias ok",
        &["network \"quiet\" has DNS off", "aliases need DNS"],
    );
    refused(
        &sb,
        "ctnet run --network none --alias ok -- true",
        &["--alias", "needs a network with DNS"],
    );
    assert_eq!(sb.snapshot(), before, "a refused name left something");
    // The same container takes a free alias, and a name of another network is no clash.
    sb.ok("ctnet attach user d --alias db >/dev/null");
    sb.ok("ctnet network create other >/dev/null && ctnet attach other www --alias web >/dev/null");
}

#[test]
fn a_named_namespace_is_shown_the_gateway_as_its_resolver() {
    let sb = Sandbox::new();
    sb.ok("ctnet network create user --subnet 10.53.0.0/24 >/dev/null && ctnet netns add c");
    assert!(
        sb.ok("ls /etc/netns").is_empty(),
        "nothing before the attach"
    );
    sb.ok("ctnet attach user c >/dev/null");
    let file = sb.ok("cat /etc/netns/c/resolv.conf");
    assert!(file.contains("nameserver 10.53.0.1\n"), "{file}");
    for how in [
        "ip netns exec c cat /etc/resolv.conf",
        "ctnet netns exec c cat /etc/resolv.conf",
    ] {
        let seen = sb.ok(how);
        assert!(seen.contains("nameserver 10.53.0.1\n"), "{how}: {seen}");
    }
    let run = sb.ok("ctnet run --network user -- cat /etc/resolv.conf");
    assert!(run.contains("nameserver 10.53.0.1\n"), "{run}");
    let off = sb.ok("ctnet network create quiet --dns false >/dev/null && ctnet run --network quiet -- cat /etc/resolv.conf");
    assert!(
        !off.contains("10.53.0.1"),
        "a network without DNS names no agent: {off}"
    );
    // A second DNS network adds its gateway; leaving the first keeps the second's.
    sb.ok("ctnet network create second --subnet 10.54.0.0/24 >/dev/null && ctnet attach second c >/dev/null");
    let both = sb.ok("cat /etc/netns/c/resolv.conf");
    assert!(
        both.contains("nameserver 10.53.0.1\nnameserver 10.54.0.1\n"),
        "{both}"
    );
    sb.ok("ctnet detach user c");
    let left = sb.ok("cat /etc/netns/c/resolv.conf");
    assert!(
        left.contains("nameserver 10.54.0.1\n") && !left.contains("10.53.0.1"),
        "{left}"
    );
    sb.ok("ctnet detach second c");
    assert!(
        sb.run("test -e /etc/netns/c/resolv.conf").status.code() == Some(1),
        "the file goes with the last DNS network"
    );
}

#[test]
fn agent_status_without_an_agent_says_so() {
    let sb = Sandbox::new();
    assert_eq!(sb.ok("ctnet agent status"), "agent: not running\n");
    let v: Value = serde_json::from_str(&sb.ok("ctnet agent status --format json")).unwrap();
    assert_eq!(v["running"], false);
    // A status file left by a dead agent is not believed.
    sb.ok(
        "mkdir -p $CTNET_RUN_DIR && echo 999999 > $CTNET_RUN_DIR/agent.lock && \
         echo '{\"pid\":999999,\"started\":1,\"updated\":1,\"mode\":\"service\",\"dns\":[],\
         \"upstreams\":[],\"firewall\":{\"watching\":true,\"repairs\":0,\"last_repair\":null,\
         \"last_cause\":null},\"last_errors\":[]}' > $CTNET_RUN_DIR/agent.json",
    );
    assert_eq!(sb.ok("ctnet agent status"), "agent: not running\n");
}
