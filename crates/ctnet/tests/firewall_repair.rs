//! The agent puts ctnet's firewall back (issue 14): with `ctnet-agent` running as a
//! service in the sandbox, another process runs `nft flush ruleset`, `nft delete table
//! inet ctnet`, or flushes a chain and a map of it, and with no ctnet command run a
//! published port and masquerade work again, and isolation between two networks is
//! back, each within one second. Probes run the whole time, from threads of this test
//! inside the sandbox's namespaces (a short TCP exchange every ~10 ms, bounded in
//! count), so the window in which isolation was open is measured, not guessed.
//! ctnet's own changes (attach, detach, the agent's repair itself) cause no repair.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{wait_until, Sandbox, UPLINK_HOST, WAN_SERVER};

/// The agent's status file, or Null while it has none.
fn status(sb: &Sandbox) -> Value {
    let out = sb.run("cat \"$CTNET_RUN_DIR/agent.json\"");
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

fn repairs(sb: &Sandbox) -> u64 {
    status(sb)["firewall"]["repairs"]
        .as_u64()
        .expect("agent.json has firewall.repairs")
}

/// Starts `ctnet-agent` as a service in the sandbox (killed with the sandbox) and waits
/// until its firewall watch runs.
fn start_agent(sb: &mut Sandbox) {
    sb.spawn_ready(
        "ctnet-agent --state-dir \"$CTNET_STATE_DIR\" --run-dir \"$CTNET_RUN_DIR\" & echo started; wait",
    );
    assert!(
        wait_until(Duration::from_secs(10), || status(sb)["firewall"]
            ["watching"]
            == Value::Bool(true)),
        "the agent did not start watching (is ctnet-agent built? `cargo build -p ctnet-agent`): {}",
        status(sb)
    );
}

/// Two isolated networks: `red` with container r1 (port 8080 published to its 80) and
/// `blue` with b1; a server on port 80 in each and in the wan.
fn world(sb: &mut Sandbox) -> World {
    sb.with_wan();
    start_agent(sb);
    sb.ok("ctnet network create red --subnet 10.61.0.0/24 && ctnet network create blue --subnet 10.62.0.0/24 \
           && ctnet netns add r1 && ctnet attach red r1 -p 8080:80 && ctnet netns add b1 && ctnet attach blue b1");
    sb.serve(Some("r1"), "--tcp 80");
    sb.serve(Some("b1"), "--tcp 80");
    sb.serve(Some("wan"), &format!("--bind {WAN_SERVER} --tcp 80"));
    let world = World {
        published: format!("{UPLINK_HOST}:8080").parse().unwrap(),
        wan: format!("{WAN_SERVER}:80").parse().unwrap(),
        blue: format!("{}:80", sb.addr_of("b1", "eth0")).parse().unwrap(),
    };
    let world_works = |sb: &Sandbox| {
        assert!(sb
            .reach(Some("wan"), "tcp", &world.published.to_string())
            .starts_with("from "));
        assert!(sb
            .reach(Some("r1"), "tcp", &world.wan.to_string())
            .starts_with(&format!("from {UPLINK_HOST}:")));
        assert!(sb
            .probe(Some("r1"), "tcp", &world.blue.to_string())
            .is_err());
    };
    world_works(sb);
    // ctnet's own changes, the one-shots' and the agent's, are not repairs.
    sb.ok("ctnet netns add r2 && ctnet attach red r2 -p 8081:80 && ctnet detach red r2 && ctnet attach blue r2 && ctnet netns rm r2");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(repairs(sb), 0, "{}", status(sb));
    world
}

struct World {
    published: SocketAddr,
    wan: SocketAddr,
    blue: SocketAddr,
}

/// How long each prober runs.
const PROBING: Duration = Duration::from_secs(3);

/// One attempt: when it started, and the answer or the error.
type Attempt = (Instant, Result<String, String>);

/// Probes for three seconds: TCP exchanges with `target` from namespace `ns` of the
/// sandbox, one every `gap` (plus the attempt itself, at most `connect` + 500 ms), at
/// most 400, on a thread of this process that entered that namespace.
fn probe_loop(
    sb: &Sandbox,
    ns: &str,
    target: SocketAddr,
    connect: Duration,
    gap: Duration,
) -> JoinHandle<Vec<Attempt>> {
    const ATTEMPTS: usize = 400;
    let until = Instant::now() + PROBING;
    // The named namespace lives on the sandbox's private /run/netns, reached through
    // its holder's root.
    let path = format!("/proc/{}/root/run/netns/{ns}", sb.pid());
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    std::thread::spawn(move || {
        nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
            .expect("setns into the sandbox's namespace (run the tests as root)");
        let mut out = Vec::with_capacity(ATTEMPTS);
        while out.len() < ATTEMPTS && Instant::now() < until {
            let at = Instant::now();
            out.push((at, exchange(target, connect).map_err(|e| e.to_string())));
            std::thread::sleep(gap);
        }
        out
    })
}

/// `ctnet-probe tcp`'s exchange: connect, say ping, read the answer (`from ADDR:PORT`).
fn exchange(target: SocketAddr, connect: Duration) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&target, connect)?;
    stream.set_read_timeout(Some(Duration::from_millis(500)))?;
    stream.write_all(b"ping")?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(reply)
}

/// How long after `since` `what` worked for good: the start of the first good attempt
/// after the last bad one (zero when none failed). Panics when the last one failed.
fn back_after(
    attempts: &[Attempt],
    since: Instant,
    what: &str,
    good: impl Fn(&str) -> bool,
) -> Duration {
    let after: Vec<_> = attempts.iter().filter(|(at, _)| *at >= since).collect();
    let bad = |r: &Result<String, String>| !r.as_deref().is_ok_and(&good);
    let first_good = after.iter().rposition(|(_, r)| bad(r)).map_or(0, |i| i + 1);
    let failed: Vec<_> = after
        .iter()
        .filter(|(_, r)| bad(r))
        .map(|(at, r)| (*at - since, r))
        .collect();
    let back = after.get(first_good).unwrap_or_else(|| {
        panic!(
            "{what} never worked again in {} attempts: {failed:?}",
            after.len()
        )
    });
    back.0 - since
}

/// Breaks the firewall with `script` (run by `nft`, another process) while probing, and
/// checks that everything is back within a second and isolation never stayed open longer.
fn breaks_and_heals(script: &str) {
    let mut sb = Sandbox::new();
    let world = world(&mut sb);
    let ms = Duration::from_millis;
    // Probing each: isolation (must stay shut but for the window), the published
    // port from the wan and masquerade from r1 (must come back).
    let isolation = probe_loop(&sb, "r1", world.blue, ms(10), ms(10));
    let published = probe_loop(&sb, "wan", world.published, ms(100), ms(10));
    let masquerade = probe_loop(&sb, "r1", world.wan, ms(40), ms(10));
    std::thread::sleep(ms(300));
    let broken = Instant::now();
    sb.ok(script);
    let isolation = isolation.join().unwrap();
    let published = published.join().unwrap();
    let masquerade = masquerade.join().unwrap();

    assert!(
        isolation
            .iter()
            .filter(|(at, _)| *at < broken)
            .all(|(_, r)| r.is_err()),
        "isolation was open before the firewall was touched"
    );
    let open: Vec<_> = isolation
        .iter()
        .filter(|(at, r)| *at >= broken && r.is_ok())
        .map(|(at, _)| *at - broken)
        .collect();
    let window = open.last().copied().unwrap_or_default();
    let probed = isolation.last().unwrap().0 - broken;
    assert!(probed > PROBING / 2, "probed only {probed:?}");
    assert!(
        window < Duration::from_secs(1),
        "after `{script}` isolation was open for {window:?} ({} of the probes got through)",
        open.len()
    );
    let port = back_after(&published, broken, "the published port", |r| {
        r.starts_with("from ")
    });
    let masq = back_after(&masquerade, broken, "masquerade", |r| {
        r.starts_with(&format!("from {UPLINK_HOST}:"))
    });
    assert!(
        port < Duration::from_secs(1),
        "published port back after {port:?}"
    );
    assert!(
        masq < Duration::from_secs(1),
        "masquerade back after {masq:?}"
    );

    let status = status(&sb);
    let cause = status["firewall"]["last_cause"]
        .as_str()
        .unwrap_or_default();
    eprintln!(
        "`{script}`: isolation open for {window:?} ({} probes through), published port back after {port:?}, masquerade after {masq:?}; agent: {cause}",
        open.len()
    );
    assert!(cause.contains("by nft (pid "), "{status}");
    // One foreign batch, one repair: the agent's own rewrite did not set off another.
    assert_eq!(repairs(&sb), 1, "{status}");
    assert!(
        support::doctor_problems(&sb, Some("ctnet table")).is_empty(),
        "the table is as the store says"
    );
}

#[test]
fn a_flush_ruleset_by_someone_else_is_repaired_within_a_second() {
    breaks_and_heals("nft flush ruleset");
}

#[test]
fn a_deleted_table_is_repaired_within_a_second() {
    breaks_and_heals("nft delete table inet ctnet");
}

#[test]
fn a_flushed_chain_and_map_are_repaired_within_a_second() {
    breaks_and_heals("nft 'flush chain inet ctnet forward; flush map inet ctnet publish_any; flush chain inet ctnet postrouting'");
}

#[test]
fn rules_of_other_tables_and_the_user_chain_are_left_alone() {
    let mut sb = Sandbox::new();
    let _world = world(&mut sb);
    sb.ok(
        "nft 'add table ip mine; add chain ip mine c; add rule ip mine c counter' \
           && nft add rule inet ctnet user counter accept && nft delete table ip mine",
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(repairs(&sb), 0, "{}", status(&sb));
    assert!(sb.ok("nft list chain inet ctnet user").contains("counter"));
}
