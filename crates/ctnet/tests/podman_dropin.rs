//! ctnet as a drop-in netavark for a real Podman 4.3: `podman network connect`,
//! `disconnect` and `reload` of a container with a published port (the port answers from
//! the wan after every step, `podman inspect` agrees with the kernel), `podman rm -f`
//! leaving nothing whichever Podman process tears the container down (with ctnet's state
//! dir on a disk folder given by `CTNET_STATE_DIR`, which Podman's cleanup process does
//! not pass on), a teardown of an unknown container saying so, and errors carrying
//! netavark's key phrases.

mod support;

use std::collections::BTreeMap;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::podman::{make_defaults_private, page_answers, Backend, Podman, PodmanOptions, IMAGE};
use support::{Sandbox, MAKE_DEFAULT_NETWORK, UPLINK_HOST};

/// A Podman whose ctnet runs with the sandbox's `CTNET_STATE_DIR` (a folder under /tmp,
/// on disk here) and `CTNET_RUN_DIR`, as a user setting them has it: `podman run` and
/// `podman rm` pass them on, the cleanup process conmon starts does not.
fn podman_with_ctnet_env(sb: &Sandbox) -> Podman<'_> {
    Podman::with_options(
        sb,
        PodmanOptions {
            ctnet_env: true,
            ..PodmanOptions::new(Backend::Netavark)
        },
    )
}

/// What `podman inspect` says of the container's networks (name → IPv4 address), which
/// must succeed without "network inspection mismatch", and the addresses its namespace
/// really has (interface → address).
fn inspect_and_kernel(
    sb: &Sandbox,
    podman: &Podman,
    name: &str,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let out = podman.run(&format!("inspect {name}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("mismatch"),
        "podman inspect {name}: {stderr}"
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("inspect JSON");
    let networks = v[0]["NetworkSettings"]["Networks"]
        .as_object()
        .unwrap_or_else(|| panic!("no networks: {v}"))
        .iter()
        .map(|(n, s)| (n.clone(), s["IPAddress"].as_str().unwrap_or("").to_string()))
        .collect();
    let netns = v[0]["NetworkSettings"]["SandboxKey"].as_str().unwrap();
    let kernel = sb
        .ok(&format!(
            "nsenter --net={netns} ip -o -4 addr show scope global"
        ))
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[1].to_string(),
                f[3].split('/').next().unwrap().to_string(),
            )
        })
        .collect();
    (networks, kernel)
}

/// After each step: the published port answers from the wan, is published once (one map
/// element), and inspect lists exactly `networks`, each address one the container has.
fn check_step(sb: &Sandbox, podman: &Podman, step: &str, networks: &[&str]) {
    let addr = format!("{UPLINK_HOST}:8080");
    assert!(
        page_answers(sb, "wan", &addr, Duration::from_secs(10)),
        "after {step}: the published port does not answer from the wan\n{}{}",
        sb.ok("nft list map inet ctnet publish_any"),
        sb.ok("ctnet ls")
    );
    let elements = sb.ok("nft list map inet ctnet publish_any");
    assert_eq!(
        elements.matches("8080").count(),
        1,
        "after {step}: {elements}"
    );
    let (inspected, kernel) = inspect_and_kernel(sb, podman, "web");
    let names: Vec<&str> = inspected.keys().map(String::as_str).collect();
    assert_eq!(names, networks, "after {step}: inspect lists {inspected:?}");
    assert_eq!(
        kernel.len(),
        networks.len(),
        "after {step}: {kernel:?} vs {inspected:?}"
    );
    for (net, ip) in &inspected {
        assert!(
            kernel.values().any(|k| k == ip),
            "after {step}: inspect says {net} is {ip}, the container has {kernel:?}"
        );
    }
}

/// `podman run -p 8080:80 --network a`, then `network connect b` (before: refused, "host
/// port 0.0.0.0:8080/tcp is already published by" the same container), `disconnect b`,
/// `reload`, `connect b` and `disconnect a` (the network carrying the port: it moves to
/// b, and keeps answering as with netavark 1.4), `reload` again: the port answers from
/// the wan after each, inspect agrees with the kernel; `rm -f` leaves nothing.
#[test]
fn connect_disconnect_and_reload_keep_the_published_port() {
    let mut sb = Sandbox::with_host_sys();
    sb.with_wan();
    {
        let podman = podman_with_ctnet_env(&sb);
        sb.ok(MAKE_DEFAULT_NETWORK);
        podman.ok("network create --subnet 10.89.1.0/24 a >/dev/null");
        podman.ok("network create --subnet 10.89.2.0/24 b >/dev/null");
        let before = sb.snapshot();
        podman.run_detached(&format!(
            "--name web -p 8080:80 --network a {IMAGE} httpd -f -p 80 -h /www"
        ));
        check_step(&sb, &podman, "run", &["a"]);
        podman.ok("network connect b web");
        check_step(&sb, &podman, "connect b", &["a", "b"]);
        podman.ok("network disconnect b web");
        check_step(&sb, &podman, "disconnect b", &["a"]);
        podman.ok("network reload web >/dev/null");
        check_step(&sb, &podman, "reload", &["a"]);
        podman.ok("network connect b web");
        check_step(&sb, &podman, "connect b again", &["a", "b"]);
        podman.ok("network disconnect a web");
        // The port moved to b; the wan's replies leave by b's default route.
        check_step(&sb, &podman, "disconnect a", &["b"]);
        podman.ok("network reload web >/dev/null");
        check_step(&sb, &podman, "reload on b", &["b"]);
        podman.ok("rm -f -t 0 web >/dev/null");
        assert_eq!(sb.snapshot(), before, "rm -f left something");
    }
}

/// The silent teardown: `podman run -d --network N -p 8088:80` then `podman rm
/// -f`, with ctnet's state dir on a disk folder through `CTNET_STATE_DIR`. When the
/// cleanup process conmon starts (no ctnet environment) ran the teardown, ctnet looked in
/// its default state dir, found nothing and answered 0: endpoint, map element and bridge
/// stayed. Setup now records where the state is, in Podman's netavark config dir; every
/// run, whichever process tears down, leaves nothing. Bounded: 4 runs, 90 s.
#[test]
fn rm_f_leaves_nothing_whichever_podman_process_tears_down() {
    let mut sb = Sandbox::with_host_sys();
    sb.with_wan();
    let podman = podman_with_ctnet_env(&sb);
    let state = sb.ok("printf %s \"$CTNET_STATE_DIR\"");
    assert!(state.starts_with("/tmp/"), "{state}");
    sb.ok(MAKE_DEFAULT_NETWORK);
    podman.ok("network create --subnet 10.89.3.0/24 n >/dev/null");
    let before = sb.snapshot();
    let started = Instant::now();
    for run in 0..4 {
        if run > 0 && started.elapsed() > Duration::from_secs(90) {
            break;
        }
        podman.run_detached(&format!(
            "--name web{run} --network n -p 8088:80 {IMAGE} httpd -f -p 80 -h /www"
        ));
        let addr = format!("{UPLINK_HOST}:8088");
        assert!(page_answers(&sb, "wan", &addr, Duration::from_secs(10)));
        // A short stop timeout: SIGTERM (which httpd as PID 1 ignores), then SIGKILL, as
        // the 10 s did, only sooner.
        podman.ok(&format!("rm -f -t 1 web{run} >/dev/null"));
        assert_eq!(sb.snapshot(), before, "run {run}: rm -f left something");
        assert!(sb.probe(Some("wan"), "tcp", &addr).is_err());
    }
}

/// The same without a race: a container that exits by itself is torn down by the
/// `podman container cleanup` conmon starts, and by nothing else. Before: always left
/// its endpoint, map element and bridge (that teardown looked in the default state dir).
#[test]
fn a_container_that_exits_is_torn_down_by_podmans_cleanup_process() {
    let mut sb = Sandbox::with_host_sys();
    sb.with_wan();
    let podman = podman_with_ctnet_env(&sb);
    sb.ok(MAKE_DEFAULT_NETWORK);
    podman.ok("network create --subnet 10.89.4.0/24 n >/dev/null");
    let before = sb.snapshot();
    podman.run_detached(&format!(
        "--name brief --network n -p 8089:80 {IMAGE} sleep 2"
    ));
    let exited = support::wait_until(Duration::from_secs(20), || {
        podman.ok("inspect -f '{{.State.Status}}' brief").trim() == "exited"
    });
    assert!(exited, "the container did not exit");
    let clean = support::wait_until(Duration::from_secs(10), || sb.snapshot() == before);
    assert_eq!(
        sb.snapshot(),
        before,
        "the cleanup process's teardown left something"
    );
    assert!(clean);
    podman.ok("rm brief >/dev/null");
}

/// Runs ctnet as `netavark` with `stdin` as the options; `env` goes before the command
/// (e.g. `env -u CTNET_STATE_DIR`).
fn netavark(sb: &Sandbox, env: &str, args: &str, stdin: &Value) -> Output {
    let input = stdin.to_string().replace('\'', "'\\''");
    sb.run(&format!(
        "mkdir -p \"$CTNET_RUN_DIR/bin\" && ln -sf \"$(command -v ctnet)\" \"$CTNET_RUN_DIR/bin/netavark\" && \
         printf '%s' '{input}' | {env} \"$CTNET_RUN_DIR/bin/netavark\" --rootless=false {args}"
    ))
}

fn network_info(name: &str, bridge: &str, subnet: &str, gateway: &str) -> Value {
    json!({
        "name": name, "id": "f".repeat(64), "driver": "bridge",
        "network_interface": bridge, "created": "2026-12-01T00:00:00Z",
        "subnets": [{ "subnet": subnet, "gateway": gateway }],
        "ipv6_enabled": false, "internal": false, "dns_enabled": false,
        "ipam_options": { "driver": "host-local" }
    })
}

fn options(id: &str, networks: Value, info: Value) -> Value {
    json!({
        "container_id": id, "container_name": "c",
        "port_mappings": [{ "host_ip": "", "container_port": 80, "host_port": 8080, "range": 1, "protocol": "tcp" }],
        "networks": networks, "network_info": info
    })
}

fn one_network(id: &str) -> Value {
    options(
        id,
        json!({ "a": { "static_ips": ["10.89.1.2"], "interface_name": "eth0" } }),
        json!({ "a": network_info("a", "podman1", "10.89.1.0/24", "10.89.1.1") }),
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A teardown for a container ctnet has no endpoint of answers 0 (Podman needs it) but
/// says on stderr which container, which state dir it looked in and how that was chosen;
/// with no database there it says so and makes none. Before: rc 0, not a word.
#[test]
fn teardown_of_an_unknown_container_says_so() {
    let sb = Sandbox::new();
    make_defaults_private(&sb);
    sb.ok(&format!(
        "{MAKE_DEFAULT_NETWORK} && ip netns add c1 && ip -n c1 link set lo up"
    ));
    let id = "d".repeat(64);
    let state = sb.ok("printf %s \"$CTNET_STATE_DIR\"");
    let before = sb.snapshot();

    let out = netavark(
        &sb,
        "",
        "--config /run/containers/networks teardown /run/netns/c1",
        &one_network(&id),
    );
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    for piece in [
        format!("podman:{id}"),
        "network \"a\"".into(),
        format!("state dir {state}"),
        "no endpoint of it is recorded there".into(),
        "CTNET_STATE_DIR".into(),
    ] {
        assert!(err.contains(&piece), "{err:?} lacks {piece:?}");
    }
    assert_eq!(sb.snapshot(), before);

    // No CTNET_* variable and no record of a setup: ctnet's default state dir (a private
    // tmpfs here), which has no database; none is made.
    let out = netavark(
        &sb,
        "env -u CTNET_STATE_DIR -u CTNET_RUN_DIR",
        "--config /run/containers/networks teardown /run/netns/c1",
        &one_network(&id),
    );
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    for piece in [
        format!("podman:{id}"),
        "state dir /var/lib/ctnet".into(),
        "there is no state database there".into(),
        format!(
            "no record of a setup of this container at /run/containers/networks/ctnet/{id}.paths"
        ),
    ] {
        assert!(err.contains(&piece), "{err:?} lacks {piece:?}");
    }
    assert_eq!(sb.ok("ls -A /var/lib/ctnet"), "");
    assert_eq!(sb.snapshot(), before);
}

/// A setup run with CTNET_STATE_DIR records it; a teardown given another state dir says
/// where the setup put the container; a teardown without any CTNET_* variable (as from
/// Podman's cleanup process) finds the container there and removes it all, and the
/// record with it. Before: the teardown looked in the default state dir and left the
/// endpoint, its port and the bridge, without a word.
#[test]
fn teardown_without_ctnet_env_finds_the_state_setup_used() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    make_defaults_private(&sb);
    sb.ok(&format!(
        "{MAKE_DEFAULT_NETWORK} && ip netns add c1 && ip -n c1 link set lo up"
    ));
    let before = sb.snapshot();
    let id = "e".repeat(64);
    let config = "--config /run/containers/networks";
    let out = netavark(
        &sb,
        "",
        &format!("{config} setup /run/netns/c1"),
        &one_network(&id),
    );
    assert!(out.status.success(), "{}", text(&out.stdout));
    sb.serve(Some("c1"), "--tcp 80");
    sb.reach(Some("wan"), "tcp", &format!("{UPLINK_HOST}:8080"));
    let record = format!("/run/containers/networks/ctnet/{id}.paths");
    let state = sb.ok("printf %s \"$CTNET_STATE_DIR\"");

    // A teardown given another state dir finds nothing there, and names the one the
    // setup recorded; nothing changes.
    let moved = sb.snapshot();
    let out = netavark(
        &sb,
        "env CTNET_STATE_DIR=\"$CTNET_RUN_DIR/elsewhere\"",
        &format!("{config} teardown /run/netns/c1"),
        &one_network(&id),
    );
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("there is no state database there")
            && err.contains(&format!(
                "the container's setup recorded state dir {state} (in {record})"
            )),
        "{err}"
    );
    assert_eq!(sb.snapshot(), moved);

    let out = netavark(
        &sb,
        "env -u CTNET_STATE_DIR -u CTNET_RUN_DIR",
        &format!("{config} teardown /run/netns/c1"),
        &one_network(&id),
    );
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    assert!(sb
        .probe(Some("wan"), "tcp", &format!("{UPLINK_HOST}:8080"))
        .is_err());
    assert_eq!(sb.snapshot(), before);
    sb.fails(&format!("test -e {record}"));
}

/// Runs a setup that must fail, leaving the snapshot as it was; returns netavark's
/// error text.
fn setup_refused(sb: &Sandbox, opts: &Value) -> String {
    let before = sb.snapshot();
    let out = netavark(
        sb,
        "",
        "--config /run/containers/networks setup /run/netns/c1",
        opts,
    );
    assert!(!out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).expect("netavark error JSON");
    assert_eq!(sb.snapshot(), before);
    v["error"].as_str().unwrap().to_string()
}

/// Errors with a well-known netavark wording carry its key phrase as well as ctnet's
/// object, cause and fix, and leave nothing: an interface name the container's namespace
/// has (a device of its own, or another network's), options for a network not in
/// `networks`, a subnet that is no CIDR; and ports no network of the container can
/// carry are refused, not dropped.
#[test]
fn netavark_errors_carry_netavarks_key_phrases() {
    let sb = Sandbox::new();
    make_defaults_private(&sb);
    sb.ok(&format!(
        "{MAKE_DEFAULT_NETWORK} && ip netns add c1 && ip -n c1 link set lo up && \
         ip -n c1 link add eth0 type veth peer name x0"
    ));
    let id = "f".repeat(64);
    let err = setup_refused(&sb, &one_network(&id));
    assert!(
        err.contains("interface eth0 already exists on container namespace")
            && err.contains(&format!("podman:{id}"))
            && err.contains("choose another interface name"),
        "{err}"
    );
    sb.ok("ip -n c1 link del eth0");

    let two_on_eth0 = options(
        &id,
        json!({
            "a": { "static_ips": ["10.89.1.2"], "interface_name": "eth0" },
            "b": { "static_ips": ["10.89.2.2"], "interface_name": "eth0" }
        }),
        json!({
            "a": network_info("a", "podman1", "10.89.1.0/24", "10.89.1.1"),
            "b": network_info("b", "podman2", "10.89.2.0/24", "10.89.2.1")
        }),
    );
    let err = setup_refused(&sb, &two_on_eth0);
    assert!(
        err.contains("interface eth0 already exists on container namespace")
            && err.contains("another network of this container"),
        "{err}"
    );

    let extra_info = options(
        &id,
        json!({ "a": { "static_ips": ["10.89.1.2"], "interface_name": "eth0" } }),
        json!({
            "a": network_info("a", "podman1", "10.89.1.0/24", "10.89.1.1"),
            "b": network_info("b", "podman2", "10.89.2.0/24", "10.89.2.1")
        }),
    );
    let err = setup_refused(&sb, &extra_info);
    assert!(
        err.contains("network options for network b not found"),
        "{err}"
    );

    // Ports on a container whose only network is internal: refused (before: setup
    // succeeded and published nothing, without a word).
    let mut internal = network_info("a", "podman1", "10.89.1.0/24", "10.89.1.1");
    internal["internal"] = json!(true);
    let ports_on_internal = options(
        &id,
        json!({ "a": { "static_ips": ["10.89.1.2"], "interface_name": "eth0" } }),
        json!({ "a": internal }),
    );
    let err = setup_refused(&sb, &ports_on_internal);
    assert!(
        err.contains("published ports of container")
            && err.contains("none of its networks (\"a\") can carry them"),
        "{err}"
    );

    for (subnet, netavark_words) in [
        ("10.89.1.0/33", true),
        ("banana", true),
        ("10.89.1.5/24", false),
    ] {
        let bad = options(
            &id,
            json!({ "a": { "static_ips": ["10.89.1.2"], "interface_name": "eth0" } }),
            json!({ "a": network_info("a", "podman1", subnet, "10.89.1.1") }),
        );
        let err = setup_refused(&sb, &bad);
        assert!(
            err.contains(&format!(
                "subnet \"{subnet}\" of network \"a\": invalid subnet"
            )) && err.contains("invalid IP address syntax") == netavark_words,
            "{err}"
        );
    }
}
