//! The host agent as a process: one per run dir (a second is refused, naming the first),
//! a clear error for a run dir it cannot write, what it says about itself (`ctnet agent
//! status`, agent.json), and its life: a service never leaves on idle, an agent started on
//! demand leaves once no DNS network has a container, and neither keeps the descriptors
//! of whoever started it.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::dns::within;
use support::Sandbox;

/// Starts `ctnet-agent ARGS` in the background (killed with the sandbox) and waits until
/// its socket is up; returns its pid.
fn start_agent(sb: &mut Sandbox, args: &str) -> u32 {
    sb.spawn_ready(&format!(
        "ctnet-agent {args} 2>&1 & i=0; \
         while [ ! -S \"$CTNET_RUN_DIR/agent.sock\" ] && [ $i -lt 300 ]; do sleep 0.01; i=$((i+1)); done; \
         echo ready; wait"
    ));
    sb.agent_pid().expect("the agent wrote its pid")
}

#[test]
fn a_second_agent_is_refused_and_names_the_first() {
    let mut sb = Sandbox::new();
    let pid = start_agent(&mut sb, "");
    let err = sb.fails("ctnet-agent");
    assert!(
        err.contains(&format!("another agent (pid {pid}) is running for run dir"))
            && err.contains("stop it first, or use another --run-dir"),
        "{err}"
    );
    // One started on demand leaves quietly: the running one serves.
    let out = sb.run("ctnet-agent --on-demand");
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    assert_eq!(sb.agent_pid(), Some(pid));
    // Another run dir is another agent (stopped by SIGINT after a second: exit 0).
    let other = sb.run_dir().with_file_name("run2");
    sb.ok(&format!(
        "timeout --preserve-status -s INT 1 ctnet-agent --run-dir {}",
        other.display()
    ));
}

#[test]
fn a_run_dir_that_cannot_be_written_is_a_clear_error() {
    let sb = Sandbox::new();
    // Root ignores permission bits: a read-only bind mount stops even root.
    let dir = sb.run_dir().with_file_name("ro-run");
    sb.ok(&format!(
        "mkdir -p {d} && mount --bind {d} {d} && mount -o remount,bind,ro {d}",
        d = dir.display()
    ));
    let err = sb.fails(&format!("ctnet-agent --run-dir {}", dir.display()));
    assert!(
        err.contains(&format!("run dir {} is not writable", dir.display()))
            && err.contains("Read-only file system")
            && err.contains("--run-dir"),
        "{err}"
    );
    assert_eq!(sb.ok(&format!("ls -A {}", dir.display())), "");
    // A file where the dir should be.
    let file = sb.run_dir().with_file_name("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let err = sb.fails(&format!("ctnet-agent --run-dir {}", file.display()));
    assert!(err.contains("is not writable"), "{err}");
}

#[test]
fn status_says_pid_since_and_what_it_serves() {
    let mut sb = Sandbox::new();
    sb.ok(
        "ctnet network create user >/dev/null && ctnet network create quiet --dns false >/dev/null",
    );
    // The service first: an attach to a DNS network would start one on demand.
    let pid = start_agent(&mut sb, "");
    sb.ok("ctnet netns add a && ctnet attach user a >/dev/null");
    let gw = sb.gateways("user")[0].clone();
    // The agent notes an attach and applies it within 0.1 s (or before a query).
    let named = within(Duration::from_secs(2), || {
        let out = sb.ok("ctnet agent status --format json");
        let status: Value = serde_json::from_str(&out).unwrap_or_default();
        let status = status.get("status").unwrap_or(&status);
        status["dns"][0]["names"] == 1
    });
    assert!(
        named.is_some(),
        "{}",
        sb.ok("ctnet agent status --format json")
    );
    let out = sb.ok("ctnet agent status --format json");
    let status: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let status = status.get("status").unwrap_or(&status);
    assert_eq!(status["pid"], pid, "{out}");
    assert_eq!(status["mode"], "service", "{out}");
    assert!(status["started"].as_i64().unwrap() > 1_600_000_000, "{out}");
    let served: Vec<&str> = status["dns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["network"].as_str().unwrap())
        .collect();
    assert_eq!(
        served,
        ["user"],
        "a network with DNS off is not served: {out}"
    );
    assert_eq!(status["dns"][0]["listen"][0], format!("{gw}:53"), "{out}");
    assert_eq!(status["dns"][0]["names"], 1, "{out}");
    // Queries are counted.
    sb.dig(Some("a"), &gw, "a");
    let counted = within(Duration::from_secs(4), || {
        let file: Value = serde_json::from_str(&sb.ok("cat $CTNET_RUN_DIR/agent.json")).unwrap();
        file["dns"][0]["queries"].as_u64() >= Some(1)
    });
    assert!(counted.is_some());
    let text = sb.ok("ctnet agent status");
    assert!(
        text.contains(&pid.to_string()) && text.contains("user"),
        "{text}"
    );
}

#[test]
fn on_demand_leaves_when_idle_and_a_service_stays() {
    let mut sb = Sandbox::new();
    sb.ok("ctnet network create user >/dev/null && ctnet netns add a && ctnet attach user a >/dev/null");
    let pid = sb.agent_pid().expect("started on demand by the attach");
    let mode: Value = serde_json::from_str(&sb.ok("cat $CTNET_RUN_DIR/agent.json")).unwrap();
    assert_eq!(mode["mode"], "on-demand");
    // Busy: it stays past the idle time.
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(sb.agent_pid(), Some(pid));
    sb.ok("ctnet detach user a");
    let left = within(Duration::from_secs(10), || support::process_ended(pid));
    let took = left.expect("the on-demand agent did not leave when idle");
    assert!(
        took >= Duration::from_secs(4),
        "left after {took:?}, before the idle time"
    );
    assert!(
        !sb.run_dir().join("agent.sock").exists(),
        "socket left behind"
    );

    // A service with nothing to serve stays, and leaves on SIGTERM, removing its socket.
    let service = start_agent(&mut sb, "");
    std::thread::sleep(Duration::from_secs(7));
    assert_eq!(sb.agent_pid(), Some(service));
    sb.ok(&format!("kill -TERM {service}"));
    assert!(within(Duration::from_secs(3), || support::process_ended(service)).is_some());
    assert!(
        !sb.run_dir().join("agent.sock").exists(),
        "socket left behind"
    );
}

#[test]
fn the_agent_keeps_no_descriptor_of_whoever_started_it() {
    let mut sb = Sandbox::new();
    let marker = sb.run_dir().with_file_name("inherited");
    std::fs::write(&marker, "").unwrap();
    let pid = sb.spawn_ready(&format!(
        "exec 7<{m}; ctnet-agent 2>&1 & i=0; \
         while [ ! -S \"$CTNET_RUN_DIR/agent.sock\" ] && [ $i -lt 300 ]; do sleep 0.01; i=$((i+1)); done; \
         echo ready; wait",
        m = marker.display()
    ));
    let _ = pid;
    let agent = sb.agent_pid().expect("agent");
    let fds = sb.ok(&format!("ls -l /proc/{agent}/fd"));
    assert!(!fds.contains("inherited"), "{fds}");
    assert!(fds.contains("agent.lock"), "{fds}");
}

/// The systemd unit in contrib/ is one systemd accepts (`systemd-analyze verify`, with
/// ExecStart naming the agent under test), and its `Type=notify` holds: the agent says
/// READY=1 on $NOTIFY_SOCKET only once it serves, so a query sent the moment it does is
/// answered. (This machine has no systemd running as init; that is what is left.)
#[test]
fn the_unit_verifies_and_ready_means_names_are_served() {
    let unit =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/ctnet-agent.service");
    let agent = std::path::Path::new(env!("CARGO_BIN_EXE_ctnet")).with_file_name("ctnet-agent");
    let text = std::fs::read_to_string(&unit).unwrap();
    assert!(
        text.contains("ExecStart=/usr/local/bin/ctnet-agent "),
        "{text}"
    );
    let mut sb = Sandbox::new();
    let copy = sb.run_dir().with_file_name("ctnet-agent.service");
    std::fs::write(
        &copy,
        text.replace("/usr/local/bin/ctnet-agent", &agent.display().to_string()),
    )
    .unwrap();
    let verify = sb.run(&format!("systemd-analyze verify {}", copy.display()));
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "{verify:?}"
    );

    // A service names a; stopped, a new one is started under a notify socket.
    let first = start_agent(&mut sb, "");
    sb.ok("ctnet network create user >/dev/null && ctnet netns add a && ctnet attach user a >/dev/null");
    sb.ok(&format!("kill -TERM {first}"));
    assert!(within(Duration::from_secs(3), || support::process_ended(first)).is_some());
    let notify_path = sb.run_dir().with_file_name("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    sb.spawn_ready(&format!(
        "NOTIFY_SOCKET={} ctnet-agent 2>&1 & echo started; wait",
        notify_path.display()
    ));
    let mut buf = [0u8; 64];
    let n = notify.recv(&mut buf).expect("no READY=1 from the agent");
    assert_eq!(&buf[..n], b"READY=1");
    let gw = sb.gateways("user")[0].clone();
    assert_eq!(
        sb.dig_short(Some("a"), &gw, "-q a"),
        [sb.addr_of("a", "eth0")]
    );
}
