//! Network policy (`ctnet policy add|ls|rm`, labels on `run` and `attach`) with real
//! traffic, Kubernetes NetworkPolicy ingress semantics: a container selected by the `--to`
//! of an allow policy accepts only what some allow policy admits (plus replies), others
//! stay open, a `--deny` policy wins over any allow. Shown between containers on one
//! bridge with br_netfilter's netns-wide sysctls at 0 (the bridge's own `nf_call_iptables`
//! flag is what sends its frames through the hooks), from the wan to a published port
//! (matched on the container port after DNAT), over IPv6, with 10,000 elements costing no
//! rule, for labels given to containers after the policy, and for every refused input.
//!
//! A refused connection is a drop: the probe's connect times out (a missing server would
//! answer "connection refused", so a refusal cannot be confused with a server not running).

mod support;

use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{
    assert_reported, doctor_problems, refused, GroupGuard, Sandbox, UPLINK_HOST, UPLINK_HOST6,
    UPLINK_WAN, UPLINK_WAN6,
};

/// `ip:port`, bracketed for IPv6.
fn at(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// The probe from `ns` (None: the host) to `target` with a one-second timeout.
fn probe(sb: &Sandbox, ns: Option<&str>, proto: &str, target: &str) -> Result<String, String> {
    let prefix = ns
        .map(|n| format!("ip netns exec {n} "))
        .unwrap_or_default();
    let out = sb.run(&format!("{prefix}ctnet-probe {proto} {target} --timeout 1"));
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// `from` must reach `target`; returns what the server saw.
fn admitted(sb: &Sandbox, from: &str, proto: &str, target: &str, why: &str) -> String {
    probe(sb, Some(from), proto, target)
        .unwrap_or_else(|e| panic!("{why}: {proto} {from} -> {target} should connect: {e}"))
}

/// `from` must not reach `target`: the packets are dropped (TCP: the connect times out;
/// UDP: no answer), not answered by a missing server.
fn dropped(sb: &Sandbox, from: &str, proto: &str, target: &str, why: &str) {
    match probe(sb, Some(from), proto, target) {
        Ok(seen) => panic!("{why}: {proto} {from} -> {target} should be dropped, got {seen:?}"),
        Err(e) => {
            let expected = if proto == "tcp" {
                "timed out"
            } else {
                "no answer"
            };
            assert!(
                e.contains(expected),
                "{why}: {proto} {from} -> {target} failed, but not by a drop: {e}"
            );
        }
    }
}

/// The containers of the usual world and their addresses.
struct Trio {
    web: String,
    db: String,
    other: String,
}

/// Network `n` (made with `create`) holding web (role=web), db (role=db, publishing
/// `db_ports`) and other (no label). db serves TCP 5432, 22 and 5353 and UDP 5353 and 5354,
/// web TCP 80, other TCP 80. Addresses of `family` (4 or 6).
fn trio(sb: &mut Sandbox, create: &str, db_ports: &str, family: u8) -> Trio {
    sb.ok(&format!(
        "ctnet network create n --dns false {create} >/dev/null && \
         for c in web db other; do ctnet netns add $c >/dev/null; done && \
         ctnet attach n web --label role=web >/dev/null && \
         ctnet attach n db --label role=db {db_ports} >/dev/null && \
         ctnet attach n other >/dev/null"
    ));
    sb.serve(
        Some("db"),
        "--tcp 5432 --tcp 22 --tcp 5353 --udp 5353 --udp 5354",
    );
    sb.serve(Some("web"), "--tcp 80");
    sb.serve(Some("other"), "--tcp 80");
    let addr = |ns: &str| {
        if family == 6 {
            sb.addr6_of(ns, "eth0")
        } else {
            sb.addr_of(ns, "eth0")
        }
    };
    Trio {
        web: addr("web"),
        db: addr("db"),
        other: addr("other"),
    }
}

/// br_netfilter's netns-wide switches off in the sandbox (they are per network
/// namespace; the machine's own are untouched), so only the bridge's own flag can send
/// its frames through the inet hooks.
fn br_netfilter_off(sb: &Sandbox) {
    sb.ok("echo 0 > /proc/sys/net/bridge/bridge-nf-call-iptables && \
         echo 0 > /proc/sys/net/bridge/bridge-nf-call-ip6tables");
}

/// Both netns-wide br_netfilter sysctls, as the sandbox has them.
fn br_netfilter_sysctls(sb: &Sandbox) -> String {
    sb.ok(
        "cat /proc/sys/net/bridge/bridge-nf-call-iptables /proc/sys/net/bridge/bridge-nf-call-ip6tables",
    )
    .split_whitespace()
    .collect::<Vec<_>>()
    .join(" ")
}

/// Network `net`'s bridge.
fn bridge_of(sb: &Sandbox, net: &str) -> String {
    let v: Value =
        serde_json::from_str(&sb.ok(&format!("ctnet network inspect {net} --format json")))
            .unwrap();
    v["bridge"].as_str().expect("bridge name").to_string()
}

/// The bridge's own `nf_call_iptables` and `nf_call_ip6tables` flags, as `ip -d` shows them.
fn bridge_nf_flags(sb: &Sandbox, bridge: &str) -> (String, String) {
    let out = sb.ok(&format!("ip -d link show dev {bridge}"));
    let flag = |name: &str| {
        out.split_whitespace()
            .skip_while(|w| *w != name)
            .nth(1)
            .unwrap_or_else(|| panic!("no {name} in {out}"))
            .to_string()
    };
    (flag("nf_call_iptables"), flag("nf_call_ip6tables"))
}

/// `ctnet policy ls --format json`.
fn policies(sb: &Sandbox) -> Vec<Value> {
    let out = sb.ok("ctnet policy ls --format json");
    serde_json::from_str::<Value>(&out)
        .unwrap_or_else(|e| panic!("policy ls: {e}: {out}"))
        .as_array()
        .unwrap_or_else(|| panic!("policy ls is no array: {out}"))
        .clone()
}

/// The containers policy `name` selects (its `selected` list, as names).
fn selected(sb: &Sandbox, name: &str) -> Vec<String> {
    let all = policies(sb);
    let p = all
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("policy {name} not listed: {all:?}"));
    let mut names: Vec<String> = p["selected"]
        .as_array()
        .unwrap_or_else(|| panic!("policy {name}: selected is no array: {p}"))
        .iter()
        .map(|s| match s {
            Value::String(s) => s.clone(),
            other => other["container"]
                .as_str()
                .or(other["name"].as_str())
                .unwrap_or_else(|| panic!("policy {name}: selected entry {other}"))
                .to_string(),
        })
        .collect();
    names.sort();
    names
}

/// Output of a command that must succeed, stdout and stderr together.
fn ok_all(sb: &Sandbox, script: &str) -> String {
    let out = sb.run(script);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "`{script}` failed: {text}");
    text
}

/// A file path unique to this test run (shared with the sandbox, whose mount namespace
/// sees the same /tmp).
fn scratch(name: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    std::env::temp_dir().join(format!(
        "ctnet-policy-{}-{}-{name}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ))
}

/// A TCP echo server: answers each message with "echo MESSAGE"; closes after the answer
/// unless the message starts with "keep" (so `ctnet-probe tcp` gets its answer and EOF,
/// and a long-lived client keeps its connection). Stops by itself after two minutes.
const ECHO_SERVER: &str = r#"
import os, socket, sys, threading
threading.Timer(120, lambda: os._exit(0)).start()
try:
    ls = socket.socket(socket.AF_INET6)
    ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("::", int(sys.argv[1])))
except OSError:
    ls = socket.socket(socket.AF_INET)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", int(sys.argv[1])))
ls.listen(16)
print("ready", flush=True)
def handle(c):
    with c:
        while True:
            d = c.recv(100)
            if not d:
                return
            c.sendall(b"echo " + d)
            if not d.startswith(b"keep"):
                return
while True:
    c, _ = ls.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
"#;

/// A long-lived client: connects, exchanges "keep before", prints "connected", waits
/// (at most 30 s) for the file argv[3] to exist, then exchanges "keep after" on the same
/// connection. Exit 0 only if that answer came. (Nothing is printed after the first line:
/// the reader of it is gone.)
const HOLDING_CLIENT: &str = r#"
import os, socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
s.sendall(b"keep before")
if s.recv(100) != b"echo keep before":
    sys.exit(2)
print("connected", flush=True)
deadline = time.time() + 30
while not os.path.exists(sys.argv[3]) and time.time() < deadline:
    time.sleep(0.05)
try:
    s.sendall(b"keep after")
    sys.exit(0 if s.recv(100) == b"echo keep after" else 3)
except OSError as e:
    sys.stderr.write("holding client: %s\n" % e)
    sys.exit(4)
"#;

/// Waits (at most 10 s) for `child` to exit; its exit code.
fn wait_bounded(child: &mut Child) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// The core of the issue on one bridge, br_netfilter's sysctls at 0: before any policy
/// everyone reaches db; `allow-web` admits web to db:5432 only, other is dropped, db still
/// reaches web (web is selected by nothing; the answers are replies); a UDP port policy
/// admits its port and not another; removing the policies opens db again; a deny beats the
/// allow, and a deny alone drops on a container no allow selects.
#[test]
fn allow_refuse_deny_between_containers_on_one_bridge_with_br_netfilter_off() {
    let mut sb = Sandbox::new();
    br_netfilter_off(&sb);
    let t = trio(&mut sb, "--subnet 10.80.0.0/24", "", 4);
    let (db, web) = (t.db.clone(), t.web.clone());

    // Open before any policy.
    for from in ["web", "other"] {
        for port in [5432, 22] {
            admitted(&sb, from, "tcp", &at(&db, port), "no policy yet");
        }
        admitted(&sb, from, "udp", &at(&db, 5354), "no policy yet");
    }
    let out = ok_all(
        &sb,
        "ctnet policy add allow-web --network n --to role=db --from role=web --port 5432/tcp",
    );
    assert!(
        out.contains("db"),
        "policy add does not say it selects db: {out}"
    );
    assert_eq!(selected(&sb, "allow-web"), ["db"]);
    assert_eq!(
        br_netfilter_sysctls(&sb),
        "0 0",
        "policy add turned on br_netfilter for the whole namespace"
    );
    let bridge = bridge_of(&sb, "n");
    assert_eq!(
        bridge_nf_flags(&sb, &bridge).0,
        "1",
        "the policy's bridge has no nf_call_iptables"
    );

    let seen = admitted(&sb, "web", "tcp", &at(&db, 5432), "allow-web");
    assert!(seen.starts_with(&format!("from {web}:")), "db saw {seen}");
    dropped(
        &sb,
        "web",
        "tcp",
        &at(&db, 22),
        "allow-web admits 5432 only",
    );
    dropped(&sb, "other", "tcp", &at(&db, 5432), "other has no role=web");
    admitted(
        &sb,
        "db",
        "tcp",
        &at(&web, 80),
        "web is selected by no policy",
    );
    admitted(
        &sb,
        "other",
        "tcp",
        &at(&web, 80),
        "web is selected by no policy",
    );
    // UDP: a /udp port admits that port; union with allow-web.
    sb.ok("ctnet policy add allow-dns --network n --to role=db --from role=web --port 5353/udp");
    admitted(&sb, "web", "udp", &at(&db, 5353), "allow-dns");
    dropped(
        &sb,
        "web",
        "udp",
        &at(&db, 5354),
        "allow-dns admits 5353 only",
    );
    dropped(&sb, "other", "udp", &at(&db, 5353), "other has no role=web");
    admitted(
        &sb,
        "web",
        "tcp",
        &at(&db, 5432),
        "the union of both policies",
    );
    dropped(
        &sb,
        "web",
        "tcp",
        &at(&db, 5353),
        "5353 is admitted for UDP only",
    );

    // Removing the policies opens db again.
    sb.ok("ctnet policy rm allow-web && ctnet policy rm allow-dns");
    assert!(policies(&sb).is_empty(), "{:?}", policies(&sb));
    admitted(&sb, "other", "tcp", &at(&db, 5432), "no policy left");
    admitted(&sb, "web", "tcp", &at(&db, 22), "no policy left");
    admitted(&sb, "other", "udp", &at(&db, 5354), "no policy left");

    // A deny beats an allow; removed, the allow admits again.
    sb.ok(
        "ctnet policy add allow-web --network n --to role=db --from role=web --port 5432/tcp && \
         ctnet policy add no-web --network n --to role=db --from name=web --port 5432 --deny",
    );
    dropped(
        &sb,
        "web",
        "tcp",
        &at(&db, 5432),
        "no-web denies what allow-web admits",
    );
    sb.ok("ctnet policy rm no-web");
    admitted(&sb, "web", "tcp", &at(&db, 5432), "the deny is gone");
    dropped(
        &sb,
        "other",
        "tcp",
        &at(&db, 5432),
        "allow-web still selects db",
    );

    // A deny alone drops its traffic on a container no allow selects, nothing else.
    sb.ok("ctnet policy add shun-other --network n --to name=web --from name=other --deny");
    dropped(&sb, "other", "tcp", &at(&web, 80), "shun-other");
    admitted(
        &sb,
        "db",
        "tcp",
        &at(&web, 80),
        "shun-other names other only",
    );
    admitted(
        &sb,
        "web",
        "tcp",
        &at(&t.other, 80),
        "shun-other protects web only",
    );
}

/// A long-lived client from `from` to `ip:port` (an [`ECHO_SERVER`]), connected; its
/// guard. Touching `go` makes it exchange once more and exit 0 if the answer came.
fn hold(
    sb: &Sandbox,
    from: &str,
    ip: &str,
    port: u16,
    go: &std::path::Path,
) -> (Child, GroupGuard) {
    let client = scratch("client.py");
    std::fs::write(&client, HOLDING_CLIENT).unwrap();
    let (child, line) = sb.start_with_first_line(&format!(
        "exec ip netns exec {from} python3 {} {ip} {port} {}",
        client.display(),
        go.display()
    ));
    let guard = GroupGuard(child.id());
    assert_eq!(
        line.trim(),
        "connected",
        "{from} -> {ip}:{port} did not connect"
    );
    (child, guard)
}

/// Lets a held client exchange again; whether it got its answer.
fn still_talks(held: &mut Child, go: &std::path::Path) -> bool {
    std::fs::write(go, "").unwrap();
    let code = wait_bounded(held);
    let _ = std::fs::remove_file(go);
    code == Some(0)
}

/// "New connections at once; established ones continue", br_netfilter's sysctls at 0:
/// a connection other holds open to db keeps exchanging data after `allow-web` selects db,
/// while a new one from other is dropped; both when the policy is the network's first
/// (the bridge's frames were not tracked while it was open), when the network already
/// had a policy as it was opened (a second policy selecting web), and under a policy
/// added after the network's last one was removed.
#[test]
fn an_established_connection_continues_when_a_policy_comes() {
    let mut sb = Sandbox::new();
    br_netfilter_off(&sb);
    let t = trio(&mut sb, "--subnet 10.88.0.0/24", "", 4);
    let echo = scratch("echo.py");
    std::fs::write(&echo, ECHO_SERVER).unwrap();
    for ns in ["db", "web"] {
        sb.spawn_ready(&format!(
            "exec ip netns exec {ns} python3 {} 5433",
            echo.display()
        ));
        admitted(
            &sb,
            "other",
            "tcp",
            &at(&sb.addr_of(ns, "eth0"), 5433),
            "no policy yet",
        );
    }

    // The network's first policy.
    let go_db = scratch("go");
    let (mut to_db, _g1) = hold(&sb, "other", &t.db, 5433, &go_db);
    sb.ok("ctnet policy add allow-web --network n --to role=db --from role=web --port 5432/tcp");
    dropped(
        &sb,
        "other",
        "tcp",
        &at(&t.db, 5433),
        "a new connection to db:5433",
    );
    let first = still_talks(&mut to_db, &go_db);

    // A later policy, on a network that already has one.
    let go_web = scratch("go");
    let (mut to_web, _g2) = hold(&sb, "other", &t.web, 5433, &go_web);
    sb.ok("ctnet policy add web-from-db --network n --to role=web --from role=db --port 80");
    dropped(
        &sb,
        "other",
        "tcp",
        &at(&t.web, 5433),
        "a new connection to web:5433",
    );
    let later = still_talks(&mut to_web, &go_web);

    // Every policy removed (the bridge's flags go off with the last), then one again.
    sb.ok("ctnet policy rm allow-web web-from-db");
    let go_again = scratch("go");
    let (mut again, _g3) = hold(&sb, "other", &t.db, 5433, &go_again);
    sb.ok("ctnet policy add allow-web --network n --to role=db --from role=web --port 5432/tcp");
    dropped(
        &sb,
        "other",
        "tcp",
        &at(&t.db, 5433),
        "a new connection to db:5433",
    );
    let readded = still_talks(&mut again, &go_again);
    let _ = std::fs::remove_file(&echo);

    let said = |ok: bool| if ok { "continued" } else { "stopped" };
    assert!(
        first && later && readded,
        "an established connection stopped when a policy selected its server: \
         under the network's first policy: {}, under a later one: {}, under a policy \
         added after the last was removed: {}",
        said(first),
        said(later),
        said(readded),
    );
}

/// Whether a ping from `from` to `ip` is answered (one, one-second wait).
fn pings(sb: &Sandbox, from: &str, ip: &str) -> bool {
    sb.run(&format!("ip netns exec {from} ping -c1 -W1 {ip}"))
        .status
        .success()
}

/// A policy without `--port` admits every port and protocol (ICMP too), one with ports
/// admits no ICMP; a CIDR source admits containers of the same network by address (the
/// subnet, one /32), and nobody else.
#[test]
fn no_ports_means_every_protocol_and_a_cidr_covers_containers_on_the_network() {
    let mut sb = Sandbox::new();
    br_netfilter_off(&sb);
    let t = trio(&mut sb, "--subnet 10.92.0.0/24", "", 4);
    assert!(
        pings(&sb, "web", &t.db) && pings(&sb, "other", &t.db),
        "no policy yet"
    );
    sb.ok("ctnet policy add allow-web --network n --to role=db --from role=web --port 5432");
    assert!(
        !pings(&sb, "web", &t.db),
        "allow-web admits TCP 5432 only, no ICMP"
    );
    sb.ok("ctnet policy add any-web --network n --to role=db --from role=web");
    assert!(pings(&sb, "web", &t.db), "any-web admits every protocol");
    admitted(
        &sb,
        "web",
        "tcp",
        &at(&t.db, 22),
        "any-web admits every port",
    );
    admitted(
        &sb,
        "web",
        "udp",
        &at(&t.db, 5354),
        "any-web admits UDP too",
    );
    assert!(!pings(&sb, "other", &t.db), "other has no role=web");
    sb.ok("ctnet policy rm any-web");

    sb.ok("ctnet policy add subnet --network n --to role=db --from 10.92.0.0/24 --port 22");
    admitted(
        &sb,
        "other",
        "tcp",
        &at(&t.db, 22),
        "other is in 10.92.0.0/24",
    );
    dropped(
        &sb,
        "other",
        "tcp",
        &at(&t.db, 5432),
        "subnet admits port 22 only",
    );
    sb.ok(&format!(
        "ctnet policy rm subnet && \
         ctnet policy add one-host --network n --to role=db --from {}/32 --port 22",
        t.other
    ));
    admitted(&sb, "other", "tcp", &at(&t.db, 22), "other's own /32");
    dropped(&sb, "web", "tcp", &at(&t.db, 22), "web is not other's /32");
}

/// `ctnet doctor` says what enforces policy between containers of one bridge while
/// br_netfilter's sysctl is off, and reports no problem for it; with the bridge's flag
/// cleared by hand the policy is bypassed, doctor names the bridge, and gc repairs it.
#[test]
fn doctor_explains_what_enforces_policy_on_the_bridge() {
    let mut sb = Sandbox::new();
    br_netfilter_off(&sb);
    let t = trio(&mut sb, "--subnet 10.84.0.0/24", "", 4);
    sb.ok("ctnet policy add allow-web --network n --to role=db --from role=web --port 5432");
    let bridge = bridge_of(&sb, "n");
    let out = sb.run("ctnet doctor --format json");
    let all: Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = all.as_array().unwrap();
    assert!(
        !findings.iter().any(|f| f["severity"] == "problem"),
        "{findings:#?}"
    );
    let says = findings.iter().any(|f| {
        let detail = f["detail"].as_str().unwrap_or_default();
        detail.contains("nf_call_iptables")
            && (detail.contains(&bridge)
                || detail.contains("\"n\"")
                || detail.contains("network n")
                || detail.contains("networks n"))
    });
    assert!(
        says,
        "doctor does not say the bridge's nf_call_iptables is in force: {findings:#?}"
    );
    // The flag is what enforces: cleared by hand, other reaches db past the policy and
    // doctor names the bridge; gc sets it again and other is dropped again.
    dropped(&sb, "other", "tcp", &at(&t.db, 5432), "allow-web");
    sb.ok(&format!(
        "ip link set dev {bridge} type bridge nf_call_iptables 0 nf_call_ip6tables 0"
    ));
    admitted(
        &sb,
        "other",
        "tcp",
        &at(&t.db, 5432),
        "the bridge's flag is off",
    );
    assert_reported(&doctor_problems(&sb, None), &[&bridge, "nf_call_iptables"]);
    sb.ok("ctnet gc");
    assert_eq!(bridge_nf_flags(&sb, &bridge), ("1".into(), "1".into()));
    dropped(
        &sb,
        "other",
        "tcp",
        &at(&t.db, 5432),
        "gc set the flag again",
    );
    assert!(doctor_problems(&sb, None).is_empty());
}

/// Policies live in the store: their elements flushed by hand are named by doctor and put
/// back by gc, and so is the whole table after `nft delete table` (traffic decided as
/// before each time).
#[test]
fn lost_policy_elements_are_named_and_put_back_by_gc() {
    let mut sb = Sandbox::new();
    br_netfilter_off(&sb);
    let t = trio(&mut sb, "--subnet 10.90.0.0/24", "", 4);
    let db = at(&t.db, 5432);
    sb.ok("ctnet policy add allow-web --network n --to role=db --from role=web --port 5432");
    admitted(&sb, "web", "tcp", &db, "allow-web");
    dropped(&sb, "other", "tcp", &db, "allow-web");

    sb.ok("nft flush set inet ctnet policy_allow");
    dropped(&sb, "web", "tcp", &db, "the allow elements are gone");
    assert_reported(&doctor_problems(&sb, None), &["policy_allow"]);
    sb.ok("ctnet gc");
    admitted(&sb, "web", "tcp", &db, "gc put the allow elements back");
    assert!(doctor_problems(&sb, None).is_empty());

    sb.ok("nft delete table inet ctnet");
    admitted(&sb, "other", "tcp", &db, "no table, no policy");
    sb.ok("ctnet gc");
    admitted(&sb, "web", "tcp", &db, "gc made the table again");
    dropped(&sb, "other", "tcp", &db, "with allow-web in it");
    assert_eq!(selected(&sb, "allow-web"), ["db"]);
}

/// The agent's firewall repair compiles policies too: with `ctnet-agent` running as a
/// service, `nft delete table inet ctnet` by another program is undone with allow-web in
/// it, no ctnet command run (web admitted and other dropped again within 5 s).
#[test]
fn the_agent_puts_policies_back_after_the_table_is_deleted() {
    let mut sb = Sandbox::new();
    br_netfilter_off(&sb);
    let t = trio(&mut sb, "--subnet 10.91.0.0/24", "", 4);
    let db = at(&t.db, 5432);
    sb.ok("ctnet policy add allow-web --network n --to role=db --from role=web --port 5432");
    sb.spawn_ready(
        "ctnet-agent --state-dir \"$CTNET_STATE_DIR\" --run-dir \"$CTNET_RUN_DIR\" & echo started; wait",
    );
    let watching = || {
        let out = sb.run("cat \"$CTNET_RUN_DIR/agent.json\"");
        serde_json::from_slice::<Value>(&out.stdout)
            .is_ok_and(|v| v["firewall"]["watching"] == Value::Bool(true))
    };
    assert!(
        support::wait_until(Duration::from_secs(10), watching),
        "the agent did not start watching"
    );
    dropped(&sb, "other", "tcp", &db, "allow-web");
    sb.ok("nft delete table inet ctnet");
    let back = support::wait_until(Duration::from_secs(5), || {
        probe(&sb, Some("other"), "tcp", &db).is_err()
            && probe(&sb, Some("web"), "tcp", &db).is_ok()
    });
    assert!(back, "the agent did not put allow-web back within 5 s");
    dropped(&sb, "other", "tcp", &db, "allow-web, repaired");
}

/// From outside: db publishes 8080->5432; `wan-in` admits 203.0.113.0/24 to port 5432 (the
/// container port, after DNAT): the wan router (203.0.113.2) reaches the published port, a
/// host behind it (192.0.2.10) does not, nor does web on db's own bridge; a policy on the
/// host port 8080 admits nobody.
#[test]
fn a_cidr_admits_the_wan_to_a_published_port_and_refuses_another_source() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    // A host behind the wan router, outside 203.0.113.0/24 (the host's default route
    // through the wan brings its answers back).
    sb.ok(
        "set -e; ip netns add far; ip -n wan link add wfar type veth peer name eth0 netns far; \
         ip -n wan addr add 192.0.2.1/24 dev wfar; ip -n wan link set wfar up; \
         ip -n far addr add 192.0.2.10/24 dev eth0; ip -n far link set eth0 up; ip -n far link set lo up; \
         ip -n far route add default via 192.0.2.1; \
         ip netns exec wan sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'",
    );
    let t = trio(&mut sb, "--subnet 10.82.0.0/24", "-p 8080:5432", 4);
    let published = at(UPLINK_HOST, 8080);
    let seen = admitted(&sb, "wan", "tcp", &published, "no policy yet");
    assert!(seen.starts_with(&format!("from {UPLINK_WAN}:")), "{seen}");
    let seen = admitted(&sb, "far", "tcp", &published, "no policy yet");
    assert!(seen.starts_with("from 192.0.2.10:"), "{seen}");

    sb.ok("ctnet policy add wan-in --network n --to role=db --from 203.0.113.0/24 --port 5432");
    let seen = admitted(
        &sb,
        "wan",
        "tcp",
        &published,
        "203.0.113.2 is in wan-in's CIDR",
    );
    assert!(seen.starts_with(&format!("from {UPLINK_WAN}:")), "{seen}");
    dropped(
        &sb,
        "far",
        "tcp",
        &published,
        "192.0.2.10 is outside wan-in's CIDR",
    );
    dropped(
        &sb,
        "web",
        "tcp",
        &at(&t.db, 5432),
        "web is outside wan-in's CIDR",
    );

    // Matched after DNAT: the host port is not what a policy names.
    sb.ok(
        "ctnet policy rm wan-in && \
         ctnet policy add wan-host-port --network n --to role=db --from 203.0.113.0/24 --port 8080",
    );
    dropped(
        &sb,
        "wan",
        "tcp",
        &published,
        "the container port is 5432, not 8080",
    );
    sb.ok("ctnet policy rm wan-host-port");
    admitted(&sb, "far", "tcp", &published, "no policy left");
}

/// The same results over IPv6 on a dual-stack network (br_netfilter off): allow, the
/// refused port and source, db reaching web, deny over allow, removal; the IPv4 side of
/// the same containers under the same policy; an IPv6 CIDR admitting the wan to the
/// published port over IPv6 and not the same wan over IPv4.
#[test]
fn the_same_over_ipv6_on_a_dual_stack_network() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    br_netfilter_off(&sb);
    let t = trio(
        &mut sb,
        "--ipv6 --subnet fd00:80::/64 --subnet 10.83.0.0/24",
        "-p 8080:5432",
        6,
    );
    let (db, web) = (t.db.clone(), t.web.clone());
    let db4 = sb.addr_of("db", "eth0");
    admitted(&sb, "other", "tcp", &at(&db, 5432), "no policy yet");
    admitted(&sb, "web", "tcp", &at(&db, 22), "no policy yet");

    sb.ok("ctnet policy add allow-web --network n --to role=db --from role=web --port 5432/tcp");
    assert_eq!(br_netfilter_sysctls(&sb), "0 0");
    assert_eq!(
        bridge_nf_flags(&sb, &bridge_of(&sb, "n")).1,
        "1",
        "the policy's bridge has no nf_call_ip6tables"
    );
    let seen = admitted(&sb, "web", "tcp", &at(&db, 5432), "allow-web over IPv6");
    assert!(seen.starts_with(&format!("from [{web}]:")), "db saw {seen}");
    dropped(
        &sb,
        "web",
        "tcp",
        &at(&db, 22),
        "allow-web admits 5432 only",
    );
    dropped(&sb, "other", "tcp", &at(&db, 5432), "other has no role=web");
    admitted(
        &sb,
        "db",
        "tcp",
        &at(&web, 80),
        "web is selected by no policy",
    );
    // The IPv4 side of the same containers.
    admitted(&sb, "web", "tcp", &at(&db4, 5432), "allow-web over IPv4");
    dropped(&sb, "other", "tcp", &at(&db4, 5432), "other over IPv4");

    sb.ok("ctnet policy add no-web --network n --to role=db --from name=web --port 5432 --deny");
    dropped(&sb, "web", "tcp", &at(&db, 5432), "the deny wins over IPv6");
    sb.ok("ctnet policy rm no-web");
    admitted(&sb, "web", "tcp", &at(&db, 5432), "the deny is gone");

    sb.ok("ctnet policy rm allow-web");
    admitted(&sb, "other", "tcp", &at(&db, 5432), "no policy left");

    // From the wan over IPv6 to the published port: an IPv6 CIDR.
    let published6 = at(UPLINK_HOST6, 8080);
    let published4 = at(UPLINK_HOST, 8080);
    admitted(&sb, "wan", "tcp", &published6, "no policy yet");
    admitted(&sb, "wan", "tcp", &published4, "no policy yet");
    sb.ok("ctnet policy add wan6 --network n --to role=db --from 2001:db8:1::/64 --port 5432");
    let seen = admitted(
        &sb,
        "wan",
        "tcp",
        &published6,
        "2001:db8:1::2 is in wan6's CIDR",
    );
    assert!(
        seen.starts_with(&format!("from [{UPLINK_WAN6}]:")),
        "{seen}"
    );
    dropped(
        &sb,
        "wan",
        "tcp",
        &published4,
        "the wan's IPv4 address is in no CIDR",
    );
}

/// A unicast neighbour solicitation (as IPv6 neighbour unreachability detection sends)
/// from this namespace's eth0 to argv[2] at MAC argv[3], from argv[1]: exit 0 if the
/// advertisement comes back within a second. Needs python3-scapy (Debian's, under
/// /usr/bin/python3).
const UNICAST_NS: &str = r#"
import sys
from scapy.all import Ether, IPv6, ICMPv6ND_NS, ICMPv6NDOptSrcLLAddr, ICMPv6ND_NA, srp1, conf, get_if_hwaddr
conf.verb = 0
src, dst, mac = sys.argv[1], sys.argv[2], sys.argv[3]
me = get_if_hwaddr("eth0")
ns = Ether(src=me, dst=mac) / IPv6(src=src, dst=dst, hlim=255) / ICMPv6ND_NS(tgt=dst) / ICMPv6NDOptSrcLLAddr(lladdr=me)
answer = srp1(ns, iface="eth0", timeout=1)
sys.exit(0 if answer is not None and answer.haslayer(ICMPv6ND_NA) else 1)
"#;

/// Neighbour discovery is no traffic a policy judges: with db selected by a port policy
/// a unicast solicitation from web still gets db's advertisement (before the policy it
/// does, so the check can fail), and with every container selected (`--to all`) two
/// containers whose neighbour caches were flushed still reach each other's admitted
/// port over IPv6 (the advertisement answering a solicitation goes to a selected
/// container).
#[test]
fn ipv6_neighbour_discovery_passes_between_selected_containers() {
    let mut sb = Sandbox::new();
    br_netfilter_off(&sb);
    let t = trio(
        &mut sb,
        "--ipv6 --subnet fd00:93::/64 --subnet 10.93.0.0/24",
        "",
        6,
    );
    let ns = scratch("ns.py");
    std::fs::write(&ns, UNICAST_NS).unwrap();
    let mac = sb
        .ok("ip -n db -o link show dev eth0")
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .expect("db's MAC")
        .to_string();
    let solicit = format!(
        "ip netns exec web /usr/bin/python3 {} {} {} {mac}",
        ns.display(),
        t.web,
        t.db
    );
    sb.ok(&solicit);
    sb.ok("ctnet policy add allow-web --network n --to role=db --from role=web --port 5432");
    let unicast = sb.run(&solicit).status.success();

    sb.ok("ctnet policy rm allow-web && \
         ctnet policy add everyone --network n --to all --from all --port 5432 && \
         for c in web db; do ip -n $c -6 neigh flush dev eth0; done");
    let flushed = probe(&sb, Some("web"), "tcp", &at(&t.db, 5432));
    let _ = std::fs::remove_file(&ns);
    assert!(
        unicast && flushed.is_ok(),
        "policy drops IPv6 neighbour discovery: a unicast solicitation to a selected db \
         answered: {unicast}; web -> db:5432 under `--to all` with flushed caches: {flushed:?}"
    );
}

/// The rules in the whole ruleset (every table ctnet has: inet, and a bridge one if any).
fn rule_count(sb: &Sandbox) -> usize {
    let v: Value = serde_json::from_str(&sb.ok("nft -j list ruleset")).unwrap();
    v["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o.get("rule").is_some())
        .count()
}

/// The elements of ctnet's policy sets (`policy_*` in `table inet ctnet`), by set.
fn policy_elements(sb: &Sandbox) -> Vec<(String, usize)> {
    let v: Value = serde_json::from_str(&sb.ok("nft -j list table inet ctnet")).unwrap();
    v["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o.get("set"))
        .filter(|s| s["name"].as_str().is_some_and(|n| n.starts_with("policy_")))
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["elem"].as_array().map_or(0, Vec::len),
            )
        })
        .collect()
}

fn elements_in(sets: &[(String, usize)], name: &str) -> usize {
    sets.iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no set {name} in {sets:?}"))
        .1
}

/// 10,000 policy elements (one policy, 10,000 separate ports between web and db) cost
/// no rule more than one element: the ruleset's rule count is the same, the allow set
/// holds them, and traffic is still decided per element (an admitted port connects, the
/// port between two admitted ones is dropped, and other is dropped on an admitted port).
#[test]
fn ten_thousand_elements_add_no_rule_and_traffic_stays_correct() {
    let mut sb = Sandbox::new();
    br_netfilter_off(&sb);
    let t = trio(&mut sb, "--subnet 10.85.0.0/24", "", 4);
    sb.serve(Some("db"), "--tcp 25000 --tcp 25001");
    let db = t.db.clone();

    let before = policy_elements(&sb);
    let none = before.iter().map(|(_, n)| n).sum::<usize>();
    sb.ok("ctnet policy add one --network n --to role=db --from role=web --port 25000");
    let rules_one = rule_count(&sb);
    let one = policy_elements(&sb);
    assert!(
        elements_in(&one, "policy_allow") >= 1,
        "one element is not in policy_allow: {one:?}"
    );
    admitted(&sb, "web", "tcp", &at(&db, 25000), "one");
    dropped(&sb, "web", "tcp", &at(&db, 25001), "one admits 25000 only");
    sb.ok("ctnet policy rm one");
    assert_eq!(
        policy_elements(&sb).iter().map(|(_, n)| n).sum::<usize>(),
        none,
        "policy rm left elements"
    );

    // Even ports 20000..=39998: 10,000 ports no range can merge.
    let started = Instant::now();
    sb.ok(
        "ctnet policy add big --network n --to role=db --from role=web \
         $(seq 20000 2 39998 | sed 's/^/--port /') >/dev/null",
    );
    let took = started.elapsed();
    eprintln!("policy add with 10,000 ports took {took:?}");
    let big = policy_elements(&sb);
    assert!(
        elements_in(&big, "policy_allow") >= 10_000,
        "the allow set does not hold 10,000 elements: {big:?}"
    );
    let rules_big = rule_count(&sb);
    eprintln!("rules in the ruleset: {rules_one} with 1 element, {rules_big} with 10,000");
    assert_eq!(
        rules_big, rules_one,
        "10,000 elements changed the number of rules"
    );
    admitted(&sb, "web", "tcp", &at(&db, 25000), "big admits 25000");
    dropped(
        &sb,
        "web",
        "tcp",
        &at(&db, 25001),
        "25001 is between two admitted ports",
    );
    dropped(
        &sb,
        "other",
        "tcp",
        &at(&db, 25000),
        "other has no role=web",
    );
    let listed = policies(&sb);
    let ports = &listed[0]["ports"];
    assert_eq!(
        ports.as_array().map(Vec::len),
        Some(10_000),
        "policy ls does not list 10,000 ports"
    );
}

/// Runs a refused `cmd` (see [`refused`]: message pieces, snapshot unchanged) and checks
/// the policies are unchanged too.
fn refused_policy(sb: &Sandbox, cmd: &str, expected: &[&str]) {
    let before = policies(sb);
    refused(sb, cmd, expected);
    assert_eq!(policies(sb), before, "`{cmd}` changed the policies");
}

/// Every refused input names what is wrong and changes nothing (kernel, store, policies);
/// a `--to` that matches nothing is allowed and said.
#[test]
fn bad_input_is_refused_by_name_and_changes_nothing() {
    let mut sb = Sandbox::new();
    trio(&mut sb, "--subnet 10.86.0.0/24", "", 4);
    sb.ok("ctnet policy add allow-web --network n --to role=db --from role=web --port 5432");
    let add = "ctnet policy add p --network n";

    refused_policy(
        &sb,
        "ctnet policy add p --network nosuch --to role=db",
        &["network \"nosuch\"", "does not exist", "ctnet network ls"],
    );
    for (bad, why) in [
        (
            "role",
            &[
                "not KEY=VALUE",
                "KEY=VALUE[,KEY=VALUE...]",
                "name=CONTAINER",
            ][..],
        ),
        ("=x", &["label key \"\"", "is empty", "1 to 63"]),
        ("a=b,,c=d", &["an empty part", "KEY=VALUE[,KEY=VALUE...]"]),
    ] {
        for flag in ["--to", "--from"] {
            let to = if flag == "--from" { "--to role=db" } else { "" };
            let named = format!("{flag} \"{bad}\"");
            let mut expected = vec![named.as_str()];
            expected.extend_from_slice(why);
            refused_policy(&sb, &format!("{add} {to} {flag} '{bad}'"), &expected);
        }
    }
    refused_policy(
        &sb,
        &format!("{add} --to role=db --port 5432-22"),
        &["--port \"5432-22\"", "reversed", "22-5432"],
    );
    refused_policy(
        &sb,
        &format!("{add} --to role=db --port 70000"),
        &["--port \"70000\"", "1 to 65535"],
    );
    refused_policy(
        &sb,
        &format!("{add} --to role=db --port 80/icmp"),
        &["--port \"80/icmp\"", "icmp", "tcp, udp or sctp"],
    );
    refused_policy(
        &sb,
        &format!("{add} --to role=db --from 203.0.113.5/24"),
        &["\"203.0.113.5/24\"", "host bits", "write 203.0.113.0/24"],
    );
    refused_policy(
        &sb,
        &format!("{add} --to role=db --from 2001:db8::5/64"),
        &["\"2001:db8::5/64\"", "host bits", "write 2001:db8::/64"],
    );
    refused_policy(
        &sb,
        "ctnet policy add allow-web --network n --to role=db --port 22",
        &["allow-web", "already", "ctnet policy rm allow-web"],
    );
    // Several names: one unknown, none removed.
    refused_policy(
        &sb,
        "ctnet policy rm allow-web nosuch",
        &["policy \"nosuch\"", "does not exist"],
    );
    refused_policy(
        &sb,
        "ctnet policy rm nosuch",
        &["policy \"nosuch\"", "does not exist", "ctnet policy ls"],
    );

    // Label keys with spaces, on attach and on run.
    sb.ok("ctnet netns add late");
    refused_policy(
        &sb,
        "ctnet attach n late --label 'my key=v'",
        &["label key \"my key\"", "contains ' '"],
    );
    refused_policy(
        &sb,
        "ctnet run --network n --label 'my key=v' -- true",
        &["label key \"my key\"", "contains ' '"],
    );
    refused_policy(
        &sb,
        "ctnet attach n late --label novalue",
        &["--label \"novalue\"", "no `=`", "KEY=VALUE"],
    );

    // A --to matching nothing is allowed, and said.
    let before = policies(&sb).len();
    let out = ok_all(&sb, &format!("{add} --to role=ghost --from role=web"));
    let lower = out.to_lowercase();
    assert!(
        lower.contains("role=ghost")
            && [
                "no container",
                "selects nothing",
                "matches nothing",
                "selects no",
                "matches no"
            ]
            .iter()
            .any(|w| lower.contains(w)),
        "a --to matching nothing is not reported: {out}"
    );
    assert_eq!(policies(&sb).len(), before + 1);
    assert!(selected(&sb, "p").is_empty(), "{:?}", selected(&sb, "p"));
    // And it selects nothing: other still reaches web.
    sb.serve(Some("web"), "--tcp 81");
    admitted(
        &sb,
        "other",
        "tcp",
        &at(&sb.addr_of("web", "eth0"), 81),
        "p selects nobody",
    );
}

/// `policy ls`: each policy's name, network, `--to`, sources, ports (no protocol: tcp),
/// whether it denies, and what it selects (JSON; the text names each); gone after rm.
#[test]
fn policy_ls_lists_each_policy() {
    let mut sb = Sandbox::new();
    trio(&mut sb, "--subnet 10.89.0.0/24", "", 4);
    sb.ok(
        "ctnet policy add allow-web --network n --to role=db --from role=web \
           --from 203.0.113.0/24 --port 5432 --port 8000-8099/udp >/dev/null && \
         ctnet policy add no-other --network n --to all --from name=other --deny >/dev/null",
    );
    let all = policies(&sb);
    let find = |name: &str| {
        all.iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed: {all:?}"))
            .clone()
    };
    let allow = find("allow-web");
    assert_eq!(allow["network"], "n", "{allow}");
    assert_eq!(allow["to"], "role=db", "{allow}");
    assert_eq!(
        allow["from"],
        serde_json::json!(["role=web", "203.0.113.0/24"]),
        "{allow}"
    );
    assert_eq!(
        allow["ports"],
        serde_json::json!(["5432/tcp", "8000-8099/udp"]),
        "{allow}"
    );
    assert_eq!(selected(&sb, "allow-web"), ["db"]);
    let deny = find("no-other");
    assert_eq!(deny["to"], "all", "{deny}");
    assert_eq!(deny["from"], serde_json::json!(["name=other"]), "{deny}");
    assert_eq!(deny["ports"], serde_json::json!([]), "{deny}");
    assert_eq!(selected(&sb, "no-other"), ["db", "other", "web"]);
    assert_eq!(
        (&allow["deny"], &deny["deny"]),
        (&Value::Bool(false), &Value::Bool(true)),
        "policy ls --format json has no deny flag: {all:?}"
    );
    let text = sb.ok("ctnet policy ls");
    assert!(
        text.contains("allow-web") && text.contains("no-other"),
        "{text}"
    );
    sb.ok("ctnet policy rm no-other");
    let left: Vec<Value> = policies(&sb);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["name"], "allow-web");
}

/// Every object in `v` (recursively) that has key `key`.
fn find_key<'a>(v: &'a Value, key: &str, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            if let Some(x) = m.get(key) {
                out.push(x);
            }
            m.values().for_each(|x| find_key(x, key, out));
        }
        Value::Array(a) => a.iter().for_each(|x| find_key(x, key, out)),
        _ => {}
    }
}

/// Labels are shown by `ls` (JSON `labels`) and `inspect` (text and JSON), for attach and
/// run.
#[test]
fn labels_are_shown_by_ls_and_inspect() {
    let sb = Sandbox::new();
    sb.ok(
        "ctnet network create n --dns false --subnet 10.87.0.0/24 >/dev/null && \
         for c in web db other db2 web2; do ctnet netns add $c >/dev/null; done && \
         ctnet attach n web --label role=web --label tier=front >/dev/null && \
         ctnet attach n db --label role=db >/dev/null && ctnet attach n other >/dev/null",
    );
    let rows: Value = serde_json::from_str(&sb.ok("ctnet ls --format json")).unwrap();
    let row = |name: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["container"] == name)
            .unwrap_or_else(|| panic!("{name} not listed: {rows}"))
            .clone()
    };
    assert_eq!(
        row("web")["labels"],
        serde_json::json!({"role": "web", "tier": "front"})
    );
    assert_eq!(row("db")["labels"], serde_json::json!({"role": "db"}));
    assert_eq!(row("other")["labels"], serde_json::json!({}));
    // ctnet run's labels.
    let mut run = sb.start_until(
        "exec ctnet run --network n --name r --label role=web -- sh -c 'echo started; exec sleep 30'",
        "started",
    );
    let _guard = GroupGuard(run.id());
    let rows: Value = serde_json::from_str(&sb.ok("ctnet ls --format json")).unwrap();
    let r = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["container"] == "r" || r["name"] == "r")
        .unwrap_or_else(|| panic!("r not listed: {rows}"));
    assert_eq!(r["labels"], serde_json::json!({"role": "web"}), "{r}");
    sb.ok(&format!("kill -TERM {}", run.id()));
    run.wait().unwrap();

    let text = sb.ok("ctnet inspect web");
    assert!(
        text.lines()
            .any(|l| l.contains("role") && l.contains("web") && l.contains("tier")),
        "inspect does not show web's labels: {text}"
    );
    let view: Value = serde_json::from_str(&sb.ok("ctnet inspect web --format json")).unwrap();
    let mut labels = Vec::new();
    find_key(&view, "labels", &mut labels);
    assert!(
        labels
            .iter()
            .any(|l| **l == serde_json::json!({"role": "web", "tier": "front"})),
        "inspect --format json has no labels: {view:#}"
    );
}

/// A container given a matching label after the policy was added is selected at once
/// (`--to` side) or admitted at once (`--from` side), without re-adding; a `ctnet run`
/// container's labels and name take part in policy from its first packet; a detached
/// container leaves the selection; `all` and a two-label selector.
#[test]
fn containers_attached_later_are_selected_at_once() {
    let mut sb = Sandbox::new();
    br_netfilter_off(&sb);
    sb.ok(
        "ctnet network create n --dns false --subnet 10.87.0.0/24 >/dev/null && \
         for c in web db other db2 web2; do ctnet netns add $c >/dev/null; done && \
         ctnet attach n web --label role=web --label tier=front >/dev/null && \
         ctnet attach n db --label role=db >/dev/null && ctnet attach n other >/dev/null",
    );
    for ns in ["db", "db2", "web", "other"] {
        sb.serve(Some(ns), "--tcp 5432");
    }
    sb.ok("ctnet policy add allow-web --network n --to role=db --from role=web --port 5432");
    assert_eq!(selected(&sb, "allow-web"), ["db"]);
    let db = sb.addr_of("db", "eth0");

    // A db attached later is selected as it attaches.
    sb.ok("ctnet attach n db2 --label role=db >/dev/null");
    let db2 = sb.addr_of("db2", "eth0");
    dropped(&sb, "other", "tcp", &at(&db2, 5432), "db2 has role=db");
    admitted(&sb, "web", "tcp", &at(&db2, 5432), "web to db2");
    assert_eq!(selected(&sb, "allow-web"), ["db", "db2"]);
    // A web attached later is admitted as it attaches.
    sb.ok("ctnet attach n web2 --label role=web >/dev/null");
    admitted(&sb, "web2", "tcp", &at(&db, 5432), "web2 has role=web");
    // Detached, db2 leaves the selection.
    sb.ok("ctnet detach n db2");
    assert_eq!(selected(&sb, "allow-web"), ["db"]);

    let target = at(&db, 5432);
    let run_probe = |flags: &str| {
        let out = sb.run(&format!(
            "ctnet run --network n {flags} -- ctnet-probe tcp {target} --timeout 1"
        ));
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            out.status.success() || err.contains("timed out"),
            "`ctnet run {flags}` failed, but not by a drop: {err}"
        );
        out.status.success()
    };
    assert!(run_probe("--label role=web"), "a run with role=web");
    assert!(!run_probe("--label role=other"), "a run with role=other");
    // By name: a run named r2 is admitted by name=r2, an unnamed one is not.
    sb.ok("ctnet policy add by-name --network n --to role=db --from name=r2 --port 5432");
    assert!(run_probe("--name r2"), "a run named r2");
    assert!(!run_probe("--name r3"), "a run named r3");
    assert!(!run_probe(""), "a run without a name");

    // `all` selects every container on the network; a comma needs every pair.
    sb.ok("ctnet policy add front --network n --to all --from role=web,tier=front --port 5432");
    assert_eq!(selected(&sb, "front"), ["db", "other", "web", "web2"]);
    let other = sb.addr_of("other", "eth0");
    admitted(
        &sb,
        "web",
        "tcp",
        &at(&other, 5432),
        "web has role=web and tier=front",
    );
    dropped(
        &sb,
        "web2",
        "tcp",
        &at(&other, 5432),
        "web2 has no tier=front",
    );
}

/// A network's policies go with it when it is removed, and `network rm` names them; no
/// policy element is left behind.
#[test]
fn network_rm_takes_its_policies_and_says_so() {
    let sb = Sandbox::new();
    sb.ok(
        "ctnet network create gone --subnet 10.77.0.0/24 >/dev/null && \
           ctnet network create kept --subnet 10.78.0.0/24 >/dev/null && \
           ip netns add a && ctnet attach gone a --label role=db >/dev/null && \
           ctnet policy add p1 --network gone --to role=db --from 203.0.113.0/24 >/dev/null && \
           ctnet policy add p2 --network kept --to all 2>/dev/null >/dev/null && \
           ctnet detach gone a >/dev/null",
    );
    let out = sb.run("ctnet network rm gone");
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("policies went with it: p1"), "{err}");
    let listed = sb.ok("ctnet policy ls");
    assert!(!listed.contains("p1") && listed.contains("p2"), "{listed}");
    let table = sb.ok("nft list table inet ctnet");
    assert!(!table.contains("10.77.0."), "{table}");
}
