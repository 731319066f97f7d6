//! Test sandboxes: each test builds its own world inside a throwaway network and mount
//! namespace, so nothing touches the machine's own network and tests run in parallel.
//!
//! A sandbox is a holder process made by `unshare --net --mount`; commands run inside it
//! through `nsenter`. Its namespace is the "host"; named namespaces inside it (on a
//! private /run/netns) play containers and the "wan"; a private /etc/netns holds the files
//! ctnet writes for them (`/etc/netns/NAME/resolv.conf`), which `ip netns exec` sees.
//! Dropping the sandbox kills the host agent ctnet may have started in it (it is no child
//! of the holder, and would keep the namespace alive), then the holder, and the kernel
//! removes every device, route and rule with the namespaces.

#![allow(dead_code)]

pub mod podman;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod containerd;
pub mod dns;
pub mod hosts;

/// The host's uplink address, as the wan sees it.
pub const UPLINK_HOST: &str = "203.0.113.1";
/// The wan router's address on the uplink.
pub const UPLINK_WAN: &str = "203.0.113.2";
/// A server "on the internet", behind the wan router.
pub const WAN_SERVER: &str = "198.51.100.10";
/// The host's IPv6 uplink address, as the wan sees it (2001:db8::/32 is for documentation).
pub const UPLINK_HOST6: &str = "2001:db8:1::1";
/// The wan router's IPv6 address on the uplink.
pub const UPLINK_WAN6: &str = "2001:db8:1::2";
/// An IPv6 server "on the internet", behind the wan router.
pub const WAN_SERVER6: &str = "2001:db8:100::10";

/// The script listing every kernel object ctnet could have touched (see
/// [`Sandbox::snapshot`] for what is left out and why).
const KERNEL_LISTING: &str = "links='s/^[0-9]+: //; s/<[^>]*>//; s/ qlen.*//; s/state [A-Z]+//'; \
     addrs6='s/ tentative//'; noise6='fe80\\|^multicast\\|ff00'; \
     echo '## links'; ip -o link show | sed -E \"$links\"; \
     echo '## addresses'; ip -o -4 addr show; ip -o -6 addr show scope global | sed \"$addrs6\"; \
     echo '## routes'; ip route show table all | grep -v '^local\\|^broadcast\\|^anycast\\|fe80\\|^multicast\\|ff00' | sed 's/ linkdown//'; \
     echo '## nft'; nft -s list ruleset; \
     echo '## netns'; ls /run/netns; \
     for ns in $(ls /run/netns); do echo \"## in $ns\"; ip -n $ns -o link show | sed -E \"$links\"; ip -n $ns -o -4 addr show; \
       ip -n $ns -o -6 addr show scope global | sed \"$addrs6\"; ip -n $ns route; \
       ip -n $ns -6 route | grep -v \"$noise6\" | sed 's/ linkdown//'; done";

pub struct Sandbox {
    holder: Child,
    pid: u32,
    dir: PathBuf,
    background: Vec<Child>,
}

fn bin_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ctnet"))
        .parent()
        .expect("bin dir")
        .to_path_buf()
}

impl Sandbox {
    /// A fresh host namespace with loopback up, a private /run/netns and its own state dirs.
    pub fn new() -> Sandbox {
        Sandbox::start(true)
    }

    /// A sandbox that keeps the machine's /sys (and so its cgroup mounts), for container
    /// engines that need cgroups. Its /sys/class/net shows the machine's interfaces, which
    /// no test reads; netlink and `ip netns exec` see the sandbox's own.
    pub fn with_host_sys() -> Sandbox {
        Sandbox::start(false)
    }

    fn start(fresh_sysfs: bool) -> Sandbox {
        let dir =
            std::env::temp_dir().join(format!("ctnet-test-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir).expect("sandbox dir");
        let (holder, pid) = spawn_holder(fresh_sysfs);
        Sandbox {
            holder,
            pid,
            dir,
            background: Vec::new(),
        }
    }

    /// A command running inside the sandbox, with ctnet's binaries on PATH and the
    /// sandbox's own state dirs.
    pub fn command(&self, script: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args([
            "-t",
            &self.pid.to_string(),
            "-n",
            "-m",
            "--",
            "sh",
            "-c",
            script,
        ]);
        let path = format!(
            "{}:{}",
            bin_dir().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        cmd.env("PATH", path)
            .env("CTNET_STATE_DIR", self.dir.join("state"))
            .env("CTNET_RUN_DIR", self.dir.join("run"))
            .env_remove("CTNET_NETNS_DIR");
        cmd
    }

    /// Runs a shell script inside the sandbox.
    pub fn run(&self, script: &str) -> Output {
        self.command(script)
            .stdin(Stdio::null())
            .output()
            .expect("nsenter")
    }

    /// Runs a script that must succeed; returns its stdout.
    pub fn ok(&self, script: &str) -> String {
        succeeded(&format!("`{script}`"), self.run(script))
    }

    /// Runs a script that must fail; returns its stderr.
    pub fn fails(&self, script: &str) -> String {
        failed(&format!("`{script}`"), self.run(script))
    }

    /// Starts a long-running script in the background; it is killed when the sandbox drops.
    /// Waits for the first line of output (e.g. `ready` from `ctnet-probe serve`).
    pub fn spawn_ready(&mut self, script: &str) -> u32 {
        let (child, line) = self.start_with_first_line(script);
        assert!(!line.is_empty(), "`{script}` exited before it was ready");
        let pid = child.id();
        self.background.push(child);
        pid
    }

    /// Starts `script` and returns it once its first line of output is `first_line`; the
    /// caller owns the child (to signal it and collect its exit status).
    pub fn start_until(&self, script: &str, first_line: &str) -> Child {
        let (child, line) = self.start_with_first_line(script);
        assert_eq!(
            line.trim(),
            first_line,
            "`{script}` did not start as expected"
        );
        child
    }

    /// Starts `script` in its own process group and reads its first line of output (""
    /// if it exited first); the caller owns the child.
    pub fn start_with_first_line(&self, script: &str) -> (Child, String) {
        // Its own process group: what it starts (e.g. `ctnet run` and the command under it)
        // is ended with it, not left running after the test.
        let mut child = self
            .command(script)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("nsenter");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("first line");
        (child, line)
    }

    /// Starts `ctnet-probe serve` with the given arguments inside namespace `ns` (None:
    /// the host) and waits until it listens. It stops by itself after two minutes.
    pub fn serve(&mut self, ns: Option<&str>, args: &str) {
        let prefix = ns
            .map(|n| format!("ip netns exec {n} "))
            .unwrap_or_default();
        self.spawn_ready(&format!(
            "exec {prefix}ctnet-probe serve {args} --max-seconds 120"
        ));
    }

    /// Builds the "internet": a `wan` namespace joined to the host by an uplink veth
    /// (host 203.0.113.1 and 2001:db8:1::1, wan 203.0.113.2 and 2001:db8:1::2), the host's
    /// default routes through it, and server addresses 198.51.100.10 and 2001:db8:100::10
    /// in the wan. The wan has no route to any container subnet of either family, so only
    /// masqueraded traffic gets answers. The IPv6 addresses skip duplicate address
    /// detection (`nodad`), so they are usable at once.
    pub fn with_wan(&mut self) {
        self.ok(&format!(
            "set -e; ip netns add wan; ip link add uplink type veth peer name eth0 netns wan; \
             ip addr add {UPLINK_HOST}/24 dev uplink; ip link set uplink up; \
             ip -n wan addr add {UPLINK_WAN}/24 dev eth0; ip -n wan link set eth0 up; ip -n wan link set lo up; \
             ip -n wan addr add {WAN_SERVER}/24 dev lo; \
             ip route add default via {UPLINK_WAN}; \
             ip addr add {UPLINK_HOST6}/64 dev uplink nodad; \
             ip -n wan addr add {UPLINK_WAN6}/64 dev eth0 nodad; \
             ip -n wan addr add {WAN_SERVER6}/128 dev lo nodad; \
             ip -6 route add default via {UPLINK_WAN6} dev uplink"
        ));
    }

    /// A listing of every kernel object and state row ctnet could have touched, to prove
    /// an operation changed nothing (or cleaned up fully). Link flags and carrier state
    /// (`linkdown`, NO-CARRIER) and counters are left out: they follow traffic and timing
    /// (a veth's carrier comes up a moment after the link), not configuration. So are an
    /// IPv6 address's `tentative` flag (duplicate address detection still running) and
    /// what the kernel derives by itself: link-local and multicast addresses and routes,
    /// the local table and the subnet-router anycast entries IPv6 forwarding adds.
    ///
    /// A set's elements are listed sorted: the kernel lists them in the order they were
    /// added, and a table rewritten with the same elements (the agent's repair) is the
    /// same table.
    pub fn snapshot(&self) -> String {
        sorted_elements(&self.ok(&format!(
            "{KERNEL_LISTING}; \
             echo '## ctnet'; ctnet ls --format json; ctnet network ls --format json"
        )))
    }

    /// The kernel half of [`Sandbox::snapshot`], without asking ctnet: what a killed
    /// command left before anything (even a ctnet reading its store, which finishes
    /// interrupted operations as it opens) has touched it.
    pub fn kernel_snapshot(&self) -> String {
        sorted_elements(&self.ok(KERNEL_LISTING))
    }

    /// Whether a probe from `ns` (None: the host) reaches `target` over `proto`.
    pub fn probe(&self, ns: Option<&str>, proto: &str, target: &str) -> Result<String, String> {
        let prefix = ns
            .map(|n| format!("ip netns exec {n} "))
            .unwrap_or_default();
        let out = self.run(&format!("{prefix}ctnet-probe {proto} {target} --timeout 2"));
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    /// Like [`Sandbox::probe`], but the probe must get an answer; returns it.
    pub fn reach(&self, ns: Option<&str>, proto: &str, target: &str) -> String {
        self.probe(ns, proto, target)
            .unwrap_or_else(|e| panic!("{proto} from {ns:?} to {target} failed: {e}"))
    }

    /// The address of interface `ifname` inside namespace `ns`.
    pub fn addr_of(&self, ns: &str, ifname: &str) -> String {
        let out = self.ok(&format!("ip -n {ns} -o -4 addr show dev {ifname}"));
        out.split_whitespace()
            .nth(3)
            .and_then(|cidr| cidr.split('/').next())
            .unwrap_or_else(|| panic!("no address on {ifname} in {ns}: {out}"))
            .to_string()
    }

    /// The global-scope IPv6 address of interface `ifname` inside namespace `ns` (the first,
    /// if it has several).
    pub fn addr6_of(&self, ns: &str, ifname: &str) -> String {
        let out = self.ok(&format!(
            "ip -n {ns} -6 -o addr show dev {ifname} scope global"
        ));
        out.split_whitespace()
            .nth(3)
            .and_then(|cidr| cidr.split('/').next())
            .unwrap_or_else(|| panic!("no global IPv6 address on {ifname} in {ns}: {out}"))
            .to_string()
    }

    /// The paths ctnet uses in this sandbox, as its commands see them.
    pub fn paths(&self) -> ctnet_engine::Paths {
        ctnet_engine::Paths {
            state_dir: self.dir.join("state"),
            run_dir: self.dir.join("run"),
            netns_dir: "/run/netns".into(),
        }
    }

    /// The pid of the host agent serving this sandbox's run dir, if one runs (it holds
    /// the lock in `<dir>/run/agent.lock`; a pid there without the lock is not believed,
    /// so no other process is ever signalled).
    pub fn agent_pid(&self) -> Option<u32> {
        ctnet_engine::agent::running_pid(&self.paths())
    }

    /// SIGKILLs the sandbox's host agent, if one runs, and waits (at most 5 s) until it
    /// is gone: it was started detached by a ctnet command, no child of the holder, and
    /// would otherwise outlive the sandbox and keep its namespaces alive.
    pub fn kill_agent(&self) {
        let Some(pid) = self.agent_pid() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .stderr(Stdio::null())
            .status();
        wait_until(Duration::from_secs(5), || process_ended(pid));
    }

    /// The sandbox's pid (its namespace holder).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The sandbox's own folder (state and run dirs, and whatever a test keeps there);
    /// removed when the sandbox drops.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// A reboot: the host's namespaces end (every device, address, route, rule and named
    /// namespace with them, background processes and the host agent killed) and a fresh
    /// host starts, with ctnet's state dir as it was and its run dir (a tmpfs on a real
    /// host) emptied.
    pub fn reboot(&mut self) {
        self.stop_holder();
        let _ = std::fs::remove_dir_all(self.dir.join("run"));
        let (holder, pid) = spawn_holder(true);
        self.holder = holder;
        self.pid = pid;
    }

    fn stop_holder(&mut self) {
        for child in &mut self.background {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.wait();
        }
        self.background.clear();
        self.kill_agent();
        let _ = Command::new("kill").arg(self.pid.to_string()).status();
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for child in &mut self.background {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.wait();
        }
        self.kill_agent();
        // The holder is our own child; ending it ends the namespaces and all within.
        let _ = Command::new("kill").arg(self.pid.to_string()).status();
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts a namespace holder (see [`Sandbox::new`]); returns it and its pid.
fn spawn_holder(fresh_sysfs: bool) -> (Child, u32) {
    let mut holder = Command::new("unshare")
        .args([
            "--net",
            "--mount",
            "--propagation",
            "private",
            "--fork",
            "--",
            "sh",
            "-c",
        ])
        .arg(format!(
            "mkdir -p /run/netns && mount -t tmpfs ctnet-test /run/netns && \
             mkdir -p /etc/netns && mount -t tmpfs ctnet-test /etc/netns && {} \
             ip link set lo up && echo $$ && exec sleep 3600",
            if fresh_sysfs {
                "mount -t sysfs none /sys &&"
            } else {
                ""
            }
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("unshare (util-linux) must be installed and the tests run as root");
    let mut line = String::new();
    BufReader::new(holder.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("holder pid");
    let pid = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("sandbox did not start: {line:?}"));
    (holder, pid)
}

/// `nft list` output with the elements of every `elements = { … }` sorted (one per line).
fn sorted_elements(listing: &str) -> String {
    let mut out = String::new();
    let mut rest = listing;
    while let Some(start) = rest.find("elements = {") {
        let open = start + "elements = {".len();
        let Some(len) = rest[open..].find('}') else {
            break;
        };
        let mut items: Vec<&str> = rest[open..open + len]
            .split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .collect();
        items.sort_unstable();
        out.push_str(&rest[..open]);
        out.push_str(&format!(" {} ", items.join(", ")));
        rest = &rest[open + len..];
    }
    out.push_str(rest);
    out
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Kills a process group when dropped: what a test started with
/// [`Sandbox::start_with_first_line`] (its own group) never outlives the test, even when
/// an assertion fails first (a command left by a broken ctnet would hold the test's
/// output open).
pub struct GroupGuard(pub u32);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        // A group already gone is no error worth seeing.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0)])
            .stderr(Stdio::null())
            .status();
    }
}

/// Whether process `pid` has ended (gone, or a zombie nobody has reaped yet).
pub fn process_ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the command name in parentheses, which may hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

/// A script that makes the default network and ctnet's table (the default network is
/// made on first attach, and kept), for a snapshot to hold them before a test begins.
pub const MAKE_DEFAULT_NETWORK: &str =
    "ctnet netns add warm >/dev/null && ctnet attach bridge warm >/dev/null && ctnet netns rm warm >/dev/null";

/// Where the reference CNI plugins are installed (Debian's containernetworking-plugins).
pub const CNI_PLUGINS: &str = "/usr/lib/cni";

/// Runs `cmd`, which must fail with a message containing every `expected` piece, and
/// proves by a full listing of kernel objects and state that nothing changed.
pub fn refused(sb: &Sandbox, cmd: &str, expected: &[&str]) {
    let before = sb.snapshot();
    let err = sb.fails(cmd);
    for piece in expected {
        assert!(
            err.contains(piece),
            "`{cmd}`: message {err:?} lacks {piece:?}"
        );
    }
    assert!(
        err.starts_with("ctnet: ") || err.contains("error:"),
        "`{cmd}`: {err:?}"
    );
    assert_eq!(sb.snapshot(), before, "`{cmd}` changed something");
}

/// The problems `ctnet doctor --format json` reports, each as "detail | fix", only those
/// of `check` when one is named. Doctor must exit non-zero exactly when there are some.
pub fn doctor_problems(sb: &Sandbox, check: Option<&str>) -> Vec<String> {
    let out = sb.run("ctnet doctor --format json");
    let all: Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems: Vec<String> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "problem" && check.is_none_or(|c| f["check"] == c))
        .map(|f| format!("{} | {}", f["detail"], f["fix"]))
        .collect();
    assert_eq!(
        out.status.success(),
        problems.is_empty(),
        "doctor's exit status disagrees with {problems:?}"
    );
    problems
}

/// Asserts that one of `problems` names every one of `pieces`.
pub fn assert_reported(problems: &[String], pieces: &[&str]) {
    assert!(
        problems
            .iter()
            .any(|p| pieces.iter().all(|piece| p.contains(piece))),
        "no problem names all of {pieces:?}: {problems:?}"
    );
}

/// Runs `ctnet gc`, which must say it let `container` go because its namespace is gone.
pub fn gc_lets_go_of(sb: &Sandbox, container: &str) {
    let gc = sb.ok("ctnet gc");
    assert!(
        gc.contains(container) && gc.contains("namespace is gone"),
        "{gc}"
    );
}

/// Runs a CNI plugin (`ctnet`, or `plugin` from the reference set) with `conf` on stdin;
/// returns whether it succeeded and its stdout as JSON (Null when empty).
pub fn cni_call(
    sb: &Sandbox,
    plugin: &str,
    command: &str,
    id: &str,
    netns: &str,
    conf: &Value,
) -> (bool, Value) {
    let conf = conf.to_string().replace('\'', "'\\''");
    let out = sb.run(&format!(
        "printf '%s' '{conf}' | CNI_COMMAND={command} CNI_CONTAINERID={id} CNI_NETNS={netns} \
         CNI_IFNAME=eth0 CNI_PATH={CNI_PLUGINS} {plugin}"
    ));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let value = if stdout.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{plugin} {command}: {e}: {stdout:?}"))
    };
    (out.status.success(), value)
}

/// Runs ctnet under the name `netavark`; returns success and stdout as JSON.
pub fn netavark(sb: &Sandbox, args: &str, stdin: &Value) -> (bool, Value) {
    let input = stdin.to_string().replace('\'', "'\\''");
    let out = sb.run(&format!(
        "mkdir -p \"$CTNET_RUN_DIR/bin\" && ln -sf \"$(command -v ctnet)\" \"$CTNET_RUN_DIR/bin/netavark\" && \
         printf '%s' '{input}' | \"$CTNET_RUN_DIR/bin/netavark\" --config /nonexistent --rootless=false \
         --aardvark-binary=/usr/libexec/podman/aardvark-dns {args}"
    ));
    let text = String::from_utf8_lossy(&out.stdout);
    let value = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args}: {e}: {text:?}"))
    };
    (out.status.success(), value)
}

/// Stdout of a run that must have succeeded; `what` names it in the panic.
pub fn succeeded(what: &str, out: Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed with {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stderr of a run that must have failed.
pub fn failed(what: &str, out: Output) -> String {
    assert!(
        !out.status.success(),
        "{what} should have failed\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}
