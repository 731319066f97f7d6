//! `ctnet run`: network modes, exit codes and cleanup on signals.

mod support;

use std::time::Duration;

use support::{wait_until, Sandbox, MAKE_DEFAULT_NETWORK, UPLINK_HOST, WAN_SERVER};

#[test]
fn run_passes_the_exit_code_through_and_cleans_up() {
    let sb = Sandbox::new();
    sb.ok(MAKE_DEFAULT_NETWORK); // the default network exists from first use on
    let before = sb.snapshot();
    let out = sb.run("ctnet run --name job -- sh -c 'ip -o -4 addr show dev eth0; exit 7'");
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // On the default network (its first address went to the warm-up above).
    assert!(String::from_utf8_lossy(&out.stdout).contains("inet 172.17.0.3/16"));
    assert_eq!(sb.snapshot(), before);
    assert_eq!(sb.ok("ctnet ls --format json").trim(), "[]");
    // A command that does not exist: Docker's 127, nothing left.
    let out = sb.run("ctnet run -- /no/such/program");
    assert_eq!(out.status.code(), Some(127));
    assert_eq!(sb.ok("ls /run/netns").trim(), "");
}

#[test]
fn run_forwards_sigterm_and_removes_everything() {
    let sb = Sandbox::new();
    sb.ok("ctnet network create blue --subnet 10.5.0.0/24");
    let mut child = sb.start_until(
        "exec ctnet run --network blue --name victim -- sh -c 'echo started; exec sleep 60'",
        "started",
    );
    assert!(sb.ok("ctnet ls").contains("victim"));
    sb.ok(&format!("kill -TERM {}", child.id()));
    let status = child.wait().unwrap();
    // Like a shell (and docker run): 128 + SIGTERM when the command died of the signal.
    assert_eq!(status.code(), Some(143));
    assert!(
        wait_until(Duration::from_secs(15), || !sb
            .ok("ls /run/netns")
            .contains("victim")),
        "namespace still there after SIGTERM"
    );
    assert!(wait_until(Duration::from_secs(5), || sb
        .ok("ctnet ls --format json")
        .trim()
        == "[]"));
    let links = sb.ok("ip -o link show");
    assert!(!links.contains("veth"), "{links}");
}

#[test]
fn host_mode_uses_the_host_namespace() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    let links = sb.ok("ctnet run --network host -- ip -o link show");
    assert!(links.contains("uplink"), "{links}");
    assert!(!sb.ok("ls /run/netns").contains("ctnet-"));
    let out = sb.run("ctnet run --network host -- sh -c 'exit 3'");
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn none_mode_has_only_loopback() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    let links = sb.ok("ctnet run --network none -- ip -o link show");
    assert_eq!(links.lines().count(), 1, "{links}");
    assert!(links.contains("lo:") && links.contains("UP"), "{links}");
    let out = sb.run(&format!(
        "ctnet run --network none -- ctnet-probe tcp {WAN_SERVER}:80 --timeout 1"
    ));
    assert!(!out.status.success());
    // Loopback works inside.
    sb.ok("ctnet run --network none -- sh -c 'ctnet-probe serve --bind 127.0.0.1 --tcp 9 --max-seconds 5 & sleep 0.3; ctnet-probe tcp 127.0.0.1:9'");
    // A namespace of its own, not the host's; the command's exit status is passed on.
    let (host, inside) = (
        sb.ok("readlink /proc/self/ns/net"),
        sb.ok("ctnet run --network none -- readlink /proc/self/ns/net"),
    );
    assert_ne!(host, inside);
    let out = sb.run("ctnet run --network none -- sh -c 'exit 7'");
    assert_eq!(out.status.code(), Some(7));
    let out = sb.run("ctnet run --network none -- no-such-command");
    assert_eq!(out.status.code(), Some(127));
    // Without --name nothing is recorded or left: no named namespace, no state.
    assert_eq!(sb.ok("ls /run/netns").trim(), "wan"); // the test's own
    assert!(!sb.paths().state_dir.join("ctnet.db").exists());
    // With --name it is a named namespace for the command's life (others may join it).
    let named = sb.ok("ctnet run --network none --name quiet -- sh -c 'ls /run/netns'");
    assert_eq!(named.trim(), "quiet\nwan");
    assert_eq!(sb.ok("ls /run/netns").trim(), "wan");
}

#[test]
fn container_mode_joins_another_containers_namespace() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.spawn_ready(
        "ctnet run --name web -- ctnet-probe serve --bind 127.0.0.1 --tcp 8080 --max-seconds 60",
    );
    let seen = sb.ok("ctnet run --network container:web -- ctnet-probe tcp 127.0.0.1:8080");
    assert!(seen.starts_with("from 127.0.0.1:"), "{seen}");
    // Same interfaces and address as web.
    let web_ip = sb.addr_of("web", "eth0");
    let inner = sb.ok("ctnet run --network container:web -- ip -o -4 addr show dev eth0");
    assert!(inner.contains(&web_ip), "{inner}");
    // Joining does not create or remove anything.
    assert_eq!(
        sb.ok("ls /run/netns")
            .split_whitespace()
            .collect::<Vec<_>>(),
        vec!["wan", "web"]
    );
    // Outbound from the shared namespace is masqueraded too.
    sb.serve(Some("wan"), &format!("--bind {WAN_SERVER} --tcp 80"));
    let seen = sb.ok(&format!(
        "ctnet run --network container:web -- ctnet-probe tcp {WAN_SERVER}:80"
    ));
    assert!(seen.starts_with(&format!("from {UPLINK_HOST}:")), "{seen}");
    let err = sb.fails("ctnet run --network container:nosuch -- true");
    assert!(
        err.contains("\"nosuch\"") && err.contains("ctnet run --name"),
        "{err}"
    );
}
