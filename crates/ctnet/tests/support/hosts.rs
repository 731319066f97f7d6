//! Several machines in one sandbox, for what spans hosts (overlay networks, etcd).
//!
//! The sandbox's own namespace is the underlay's switch, a bridge with no address; every
//! machine is a named namespace joined to it by a veth (`ul-NAME` on the switch, `eth0`
//! inside, MTU 1500):
//!
//! ```text
//!  sandbox netns ("the switch")
//!  ┌───────────────────────────────── ul0 (bridge) ─────────────────────────────────┐
//!  └──┬──────────────┬──────────────┬──────────────┬──────────────┬──────────────┬──┘
//!   ul-h1          ul-h2   …      ul-e1   …      ul-wan         ul-r1
//!     │              │              │              │              │
//!  h1 eth0        h2 eth0        e1 eth0        wan eth0       r1 eth0
//!  192.0.2.11     192.0.2.12     192.0.2.101    192.0.2.254    (any 192.0.2.x)
//!  ctnet, agent   ctnet, agent   etcd           lo 198.51.100.10
//!  default via .254              (Etcd)         ip_forward on   a rogue: not a host
//! ```
//!
//! A host is more than a network namespace: each has a long-lived holder process made by
//! `unshare --mount` inside its namespace, and every command "on the host" enters both
//! (`nsenter -t HOLDER -m -n`). Its mount namespace, which lasts as long as the holder,
//! gives it what a machine has to itself and ctnet relies on:
//! - `/sys` mounted from inside the host's network namespace, so `/sys/class/net` shows
//!   the host's links (ctnet reads a bridge's `addr_assign_type` there; a sysfs of the
//!   switch would show other links, or, worse, another link under the same index);
//! - the bind mounts ctnet makes for its containers under the host's `CTNET_NETNS_DIR`
//!   (`<sandbox>/hN/netns`), which live in that mount namespace and so outlive the
//!   command that made them (`ip netns exec` would make a fresh mount namespace per call,
//!   and they would vanish with it);
//! - its own `/etc/netns` (ctnet writes `/etc/netns/NAME/resolv.conf`: two hosts may have
//!   containers of the same name) and its own empty `/run/netns`. The switch's copies of
//!   `/run/netns` are detached in it, not merely covered: a copy would keep every other
//!   machine's namespace alive after that machine was removed.
//!
//! `/proc/sys/net` needs nothing: it shows the network namespace of the task that opens it.
//! Each host's state, run and netns dirs are its own (`<sandbox>/hN/{state,run,netns}`).
//!
//! Drop ends everything the cluster started, by pid: processes started on each host, the
//! agents (those started with [`Host::start_agent`] and any ctnet started on demand, named
//! by the lock in the host's run dir), whatever else still runs in a host's network
//! namespace (only the test can have started it), then the holders. The sandbox then
//! ends the namespaces. Build the cluster after the sandbox and etcd after the cluster,
//! so they drop first; do not call `Sandbox::with_wan` beside a cluster (it has its own
//! `wan`).

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{bin_dir, failed, process_ended, succeeded, wait_until, Sandbox, WAN_SERVER};

/// The underlay's bridge, in the sandbox's own namespace.
pub const SWITCH: &str = "ul0";
/// The wan router's underlay address, every host's default gateway.
pub const WAN_ROUTER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 254);
/// The underlay's prefix length.
pub const UNDERLAY_PREFIX: u8 = 24;
/// The hosts' underlay MTU.
pub const UNDERLAY_MTU: u32 = 1500;
/// Port of an etcd member's clients.
pub const ETCD_CLIENT_PORT: u16 = 2379;
/// Port of an etcd member's peers.
pub const ETCD_PEER_PORT: u16 = 2380;

/// How long etcd may take to become healthy (three members elect a leader in ~2 s here).
const ETCD_READY: Duration = Duration::from_secs(20);
/// How long an agent may take to open its socket.
const AGENT_READY: Duration = Duration::from_secs(10);
/// How long a killed process may take to be gone.
const GONE: Duration = Duration::from_secs(5);
/// A holder or a capture ends by itself after this, should the test process die unkindly.
const LIFETIME_SECONDS: u32 = 3600;

/// Host `i`'s underlay address (192.0.2.11 for h1).
pub fn host_addr(i: usize) -> Ipv4Addr {
    underlay(10 + i)
}

/// Etcd member `i`'s underlay address (192.0.2.101 for e1).
pub fn etcd_addr(i: usize) -> Ipv4Addr {
    underlay(100 + i)
}

/// 192.0.2.`last`.
fn underlay(last: usize) -> Ipv4Addr {
    let last = u8::try_from(last).expect("an underlay address ends in 1 to 254");
    Ipv4Addr::new(192, 0, 2, last)
}

/// A shell word for `text`, quoted.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// A command in the sandbox's namespaces (the switch), with ctnet's binaries on PATH.
fn in_sandbox(sb_pid: u32, script: &str) -> Command {
    let mut cmd = Command::new("nsenter");
    cmd.args([
        "-t",
        &sb_pid.to_string(),
        "-n",
        "-m",
        "--",
        "sh",
        "-c",
        script,
    ]);
    cmd.env("PATH", path_with_bins()).stdin(Stdio::null());
    cmd
}

fn path_with_bins() -> String {
    format!(
        "{}:{}",
        bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn sandbox_ok(sb_pid: u32, script: &str) -> String {
    let out = in_sandbox(sb_pid, script).output().expect("nsenter");
    succeeded(&format!("`{script}` in the sandbox"), out)
}

/// SIGKILLs `pid` (a plain pid, or `-PGID` for a group); one already gone is no error.
fn kill(target: &str) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", target])
        .stderr(Stdio::null())
        .status();
}

/// The lock's contents even if a panic poisoned it: cleanup must go on after a failed
/// assertion (a panic in a drop while unwinding would abort the test process and leave
/// every namespace holder running).
fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Kills a child we started and reaps it.
fn kill_child(child: &mut Child) {
    kill(&child.id().to_string());
    let _ = child.wait();
}

/// The namespaces a process is in, as /proc/PID/ns names them (`net:[4026532308]`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Namespaces {
    net: Option<PathBuf>,
    mnt: Option<PathBuf>,
}

impl Namespaces {
    /// `pid`'s (None each for a process gone, or a zombie, which has none left).
    fn of(pid: u32) -> Namespaces {
        let link = |kind: &str| std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).ok();
        Namespaces {
            net: link("net"),
            mnt: link("mnt"),
        }
    }

    /// Whether `other` shares the network or the mount namespace with these.
    fn shares_one(&self, other: &Namespaces) -> bool {
        (self.net.is_some() && self.net == other.net)
            || (self.mnt.is_some() && self.mnt == other.mnt)
    }
}

/// Every process in the network or the mount namespace of `ns`.
fn processes_in(ns: &Namespaces) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| ns.shares_one(&Namespaces::of(*pid)))
        .collect()
}

/// The machines of one sandbox: `h1..hN` and the wan (see the module's drawing).
pub struct Cluster<'a> {
    sb: &'a Sandbox,
    hosts: Vec<Host>,
    rogues: AtomicUsize,
    /// Servers started in the wan, each in its own process group.
    wan_servers: Mutex<Vec<Child>>,
}

impl<'a> Cluster<'a> {
    /// Builds the switch, the wan and `n` hosts (1 to 89: 192.0.2.11 to .99).
    pub fn new(sb: &'a Sandbox, n: usize) -> Cluster<'a> {
        assert!(
            (1..=89).contains(&n),
            "a cluster has 1 to 89 hosts, not {n}"
        );
        sandbox_ok(
            sb.pid(),
            &format!(
                "set -e; ip link add {SWITCH} type bridge; ip link set {SWITCH} up; {wan}",
                wan = join_script("wan", WAN_ROUTER)
            ),
        );
        sandbox_ok(
            sb.pid(),
            &format!(
                "set -e; ip -n wan addr add {WAN_SERVER}/32 dev lo; \
                 ip netns exec wan sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'"
            ),
        );
        let mut cluster = Cluster {
            sb,
            hosts: Vec::new(),
            rogues: AtomicUsize::new(0),
            wan_servers: Mutex::new(Vec::new()),
        };
        for i in 1..=n {
            cluster.hosts.push(Host::new(sb, i));
        }
        cluster
    }

    /// Host `i` (1-based: `host(1)` is h1).
    pub fn host(&self, i: usize) -> &Host {
        assert!(
            (1..=self.hosts.len()).contains(&i),
            "the cluster has hosts h1..h{}, not h{i}",
            self.hosts.len()
        );
        &self.hosts[i - 1]
    }

    /// Every host, h1 first.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The sandbox the cluster lives in.
    pub fn sandbox(&self) -> &'a Sandbox {
        self.sb
    }

    /// Runs a script in the wan namespace (the router and 198.51.100.10).
    pub fn wan(&self, script: &str) -> Output {
        in_sandbox(
            self.sb.pid(),
            &format!(
                "exec nsenter --net=/run/netns/wan -- sh -c {}",
                quoted(script)
            ),
        )
        .output()
        .expect("nsenter")
    }

    /// Starts `ctnet-probe serve ARGS` in the wan (`--bind 198.51.100.10 --tcp 80`) and
    /// waits until it listens; it ends with the cluster, or by itself after two minutes.
    pub fn serve_wan(&self, args: &str) -> u32 {
        let mut child = in_sandbox(
            self.sb.pid(),
            &format!(
                "exec nsenter --net=/run/netns/wan -- ctnet-probe serve {args} --max-seconds 120"
            ),
        )
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("nsenter");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("first line");
        let pid = child.id();
        locked(&self.wan_servers).push(child);
        assert_eq!(
            line.trim(),
            "ready",
            "ctnet-probe serve {args} in the wan did not start"
        );
        pid
    }

    /// A machine on the underlay at `ip` that is no host: no ctnet dirs, no agent, not in
    /// etcd (`r1`, `r2`, … in order). Its default route goes through the wan.
    pub fn rogue(&self, ip: Ipv4Addr) -> Rogue {
        let name = format!("r{}", self.rogues.fetch_add(1, Ordering::SeqCst) + 1);
        sandbox_ok(self.sb.pid(), &join_script(&name, ip));
        sandbox_ok(
            self.sb.pid(),
            &format!("ip -n {name} route add default via {WAN_ROUTER}"),
        );
        Rogue {
            sb_pid: self.sb.pid(),
            name,
            addr: ip,
        }
    }

    /// Starts tcpdump on the switch with a pcap `filter` (`udp port 4789`); it sees every
    /// frame between the machines. Returns once it captures.
    pub fn capture_underlay(&self, filter: &str) -> Capture {
        Capture::start(self.sb, filter)
    }
}

impl Drop for Cluster<'_> {
    fn drop(&mut self) {
        let errors: Vec<String> = self
            .hosts
            .iter()
            .filter_map(|h| h.end_processes().err())
            .collect();
        for mut child in locked(&self.wan_servers).drain(..) {
            kill(&format!("-{}", child.id()));
            let _ = child.wait();
        }
        // Everything was tried first; a second panic while unwinding would abort.
        if !errors.is_empty() && !std::thread::panicking() {
            panic!("{}", errors.join("\n"));
        }
    }
}

/// The script that makes namespace `name` and joins it to the switch at `ip`.
fn join_script(name: &str, ip: Ipv4Addr) -> String {
    format!(
        "set -e; ip netns add {name}; \
         ip link add ul-{name} mtu {UNDERLAY_MTU} type veth peer name eth0 mtu {UNDERLAY_MTU} netns {name}; \
         ip link set ul-{name} master {SWITCH} up; \
         ip -n {name} addr add {ip}/{UNDERLAY_PREFIX} dev eth0; \
         ip -n {name} link set eth0 up; ip -n {name} link set lo up"
    )
}

/// One machine of a [`Cluster`]: named namespace `hN`, its mount namespace holder, its
/// ctnet dirs under `<sandbox>/hN`, and what the test started on it.
pub struct Host {
    name: String,
    addr: Ipv4Addr,
    dir: PathBuf,
    sb_pid: u32,
    holder: Mutex<Child>,
    holder_pid: u32,
    /// The host's network and mount namespaces, to find what still runs in them.
    namespaces: Namespaces,
    agents: Mutex<Vec<Child>>,
    background: Mutex<Vec<Child>>,
    /// Set once [`Host::end_processes`] has run: nothing is left to end.
    ended: AtomicBool,
    removed: AtomicBool,
}

impl Host {
    fn new(sb: &Sandbox, i: usize) -> Host {
        let name = format!("h{i}");
        let addr = host_addr(i);
        sandbox_ok(
            sb.pid(),
            &format!(
                "{join}; ip -n {name} route add default via {WAN_ROUTER}; \
                 ip netns exec {name} sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'",
                join = join_script(&name, addr)
            ),
        );
        let dir = sb.dir().join(&name);
        for sub in ["state", "run", "netns"] {
            std::fs::create_dir_all(dir.join(sub)).expect("host dir");
        }
        let (mut holder, holder_pid) = spawn_holder(sb.pid(), &name);
        let namespaces = Namespaces::of(holder_pid);
        if namespaces.net.is_none() || namespaces.mnt.is_none() {
            kill_child(&mut holder);
            panic!("host {name}'s holder (pid {holder_pid}) is gone");
        }
        Host {
            name,
            addr,
            dir,
            sb_pid: sb.pid(),
            holder: Mutex::new(holder),
            holder_pid,
            namespaces,
            agents: Mutex::new(Vec::new()),
            background: Mutex::new(Vec::new()),
            ended: AtomicBool::new(false),
            removed: AtomicBool::new(false),
        }
    }

    /// `h1`, `h2`, …
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host's underlay address (`eth0`), e.g. 192.0.2.11.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// `<sandbox>/hN`, which holds the host's ctnet dirs and agent log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The paths ctnet uses on this host.
    pub fn paths(&self) -> ctnet_engine::Paths {
        ctnet_engine::Paths {
            state_dir: self.dir.join("state"),
            run_dir: self.dir.join("run"),
            netns_dir: self.dir.join("netns"),
        }
    }

    /// The pid of the host's holder, whose mount namespace is the host's.
    pub fn holder_pid(&self) -> u32 {
        self.holder_pid
    }

    /// Whether [`Host::remove`] took the host away.
    pub fn is_removed(&self) -> bool {
        self.removed.load(Ordering::SeqCst)
    }

    /// A shell script on the host (its network and mount namespaces), with ctnet's
    /// binaries on PATH and the host's ctnet dirs in the environment.
    pub fn command(&self, script: &str) -> Command {
        assert!(
            !self.is_removed(),
            "host {} was removed; nothing runs on it any more",
            self.name
        );
        let paths = self.paths();
        let mut cmd = Command::new("nsenter");
        cmd.args([
            "-t",
            &self.holder_pid.to_string(),
            "-m",
            "-n",
            "--",
            "sh",
            "-c",
            script,
        ]);
        cmd.env("PATH", path_with_bins())
            .env("CTNET_STATE_DIR", paths.state_dir)
            .env("CTNET_RUN_DIR", paths.run_dir)
            .env("CTNET_NETNS_DIR", paths.netns_dir)
            .env_remove("CTNET_ETC_NETNS_DIR")
            .env_remove("CTNET_AGENT")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs a script on the host.
    pub fn run(&self, script: &str) -> Output {
        self.command(script).output().expect("nsenter")
    }

    /// Runs a script that must succeed on the host; returns its stdout.
    pub fn ok(&self, script: &str) -> String {
        succeeded(&format!("`{script}` on {}", self.name), self.run(script))
    }

    /// Runs a script that must fail on the host; returns its stderr.
    pub fn fails(&self, script: &str) -> String {
        failed(&format!("`{script}` on {}", self.name), self.run(script))
    }

    /// A script wrapped to run inside container namespace `name` of this host (its file
    /// in the host's netns dir), or on the host itself for None.
    fn within(&self, container: Option<&str>, script: &str) -> String {
        match container {
            None => script.to_string(),
            Some(name) => format!(
                "exec nsenter --net={} -- sh -c {}",
                self.paths().netns_dir.join(name).display(),
                quoted(script)
            ),
        }
    }

    /// A script inside container namespace `name` of this host, made by `ctnet netns add`
    /// or `ctnet run --name` on it. The mount namespace stays the host's.
    pub fn container_command(&self, name: &str, script: &str) -> Command {
        self.command(&self.within(Some(name), script))
    }

    /// Runs a script inside container namespace `name` of this host.
    pub fn in_container(&self, name: &str, script: &str) -> Output {
        self.container_command(name, script)
            .output()
            .expect("nsenter")
    }

    /// Runs a script that must succeed inside container `name`; returns its stdout.
    pub fn in_container_ok(&self, name: &str, script: &str) -> String {
        succeeded(
            &format!("`{script}` in container {name} of {}", self.name),
            self.in_container(name, script),
        )
    }

    /// Starts a long-running script on the host in its own process group and waits for its
    /// first line of output; it ends with the host. Returns its pid.
    pub fn spawn_ready(&self, script: &str) -> u32 {
        let mut child = self
            .command(script)
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("nsenter");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("first line");
        let pid = child.id();
        locked(&self.background).push(child);
        assert!(
            !line.is_empty(),
            "`{script}` on {} exited before it was ready",
            self.name
        );
        pid
    }

    /// Starts `ctnet-probe serve ARGS` in container `container` (None: the host) and waits
    /// until it listens. It stops by itself after two minutes.
    pub fn serve(&self, container: Option<&str>, args: &str) -> u32 {
        let script = format!("exec ctnet-probe serve {args} --max-seconds 120");
        self.spawn_ready(&self.within(container, &script))
    }

    /// Whether a probe from `container` (None: the host) reaches `target` over `proto`;
    /// the answer is what the server saw (`from 192.0.2.11:40000 ping`).
    pub fn probe(
        &self,
        container: Option<&str>,
        proto: &str,
        target: &str,
    ) -> Result<String, String> {
        let script = format!("ctnet-probe {proto} {target} --timeout 2");
        let out = self.run(&self.within(container, &script));
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    /// Like [`Host::probe`], but it must get an answer; returns it.
    pub fn reach(&self, container: Option<&str>, proto: &str, target: &str) -> String {
        self.probe(container, proto, target).unwrap_or_else(|e| {
            panic!(
                "{proto} from {container:?} on {} to {target} failed: {e}",
                self.name
            )
        })
    }

    /// Where [`Host::start_agent`] writes the agent's output.
    pub fn agent_log_path(&self) -> PathBuf {
        self.dir.join("agent.log")
    }

    /// Everything agents started with [`Host::start_agent`] wrote ("" before any).
    pub fn agent_log(&self) -> String {
        std::fs::read_to_string(self.agent_log_path()).unwrap_or_default()
    }

    /// Starts `ctnet-agent ARGS` on the host in the background, its output appended to
    /// [`Host::agent_log_path`], and waits until its socket is up. Panics with the log if
    /// it exits first or takes more than 10 s. Returns its pid.
    pub fn start_agent(&self, args: &str) -> u32 {
        let log = self.agent_log_path();
        let mut child = self
            .command(&format!(
                "exec ctnet-agent {args} >> {} 2>&1",
                quoted(&log.display().to_string())
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nsenter");
        // nsenter and sh exec in turn: the child is the agent itself.
        let pid = child.id();
        let socket = self.paths().run_dir.join("agent.sock");
        let deadline = Instant::now() + AGENT_READY;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "ctnet-agent {args} on {} exited with {status} before its socket was up; its log:\n{}",
                    self.name,
                    self.agent_log()
                );
            }
            if socket.exists() && ctnet_engine::agent::running_pid(&self.paths()) == Some(pid) {
                break;
            }
            if Instant::now() > deadline {
                kill_child(&mut child);
                panic!(
                    "ctnet-agent {args} on {} had no socket at {} after {AGENT_READY:?}; its log:\n{}",
                    self.name,
                    socket.display(),
                    self.agent_log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        locked(&self.agents).push(child);
        pid
    }

    /// The pid of the agent serving this host's run dir (started by the test or by ctnet
    /// on demand), if one runs.
    pub fn agent_pid(&self) -> Option<u32> {
        ctnet_engine::agent::running_pid(&self.paths())
    }

    /// SIGKILLs the host's agents (those started by [`Host::start_agent`] and one ctnet
    /// started on demand) and waits until they are gone.
    pub fn kill_agent(&self) {
        if let Err(e) = self.kill_agents() {
            panic!("{e}");
        }
    }

    fn kill_agents(&self) -> Result<(), String> {
        for mut child in locked(&self.agents).drain(..) {
            kill_child(&mut child);
        }
        let Some(pid) = self.agent_pid() else {
            return Ok(());
        };
        kill(&pid.to_string());
        // A killed multithreaded process shows as a zombie while its other threads still
        // exit, holding its files and so the lock: wait for both.
        if wait_until(GONE, || process_ended(pid) && self.agent_pid() != Some(pid)) {
            Ok(())
        } else {
            Err(format!(
                "the agent (pid {pid}) of {} outlived SIGKILL by {GONE:?}",
                self.name
            ))
        }
    }

    /// The machine dies: everything running on it is SIGKILLed (no agent gets to say
    /// goodbye), its cable to the switch is cut and its namespace deleted. Its containers'
    /// namespaces go with its mount namespace. Nothing runs on it afterwards.
    pub fn remove(&self) {
        assert!(!self.is_removed(), "host {} was removed already", self.name);
        let ended = self.end_processes();
        self.removed.store(true, Ordering::SeqCst);
        sandbox_ok(
            self.sb_pid,
            &format!("ip link del ul-{n}; ip netns del {n}", n = self.name),
        );
        ended.unwrap_or_else(|e| panic!("{e}"));
    }

    /// Ends, by pid, what runs on the host: the test's processes, the agents, anything
    /// left in its network or mount namespace (a test's `… &`: only the test can have
    /// started it), then the holder, and with it the host's mount namespace. Once only;
    /// an error names what outlived SIGKILL, after everything was tried.
    fn end_processes(&self) -> Result<(), String> {
        if self.ended.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        for mut child in locked(&self.background).drain(..) {
            kill(&format!("-{}", child.id()));
            let _ = child.wait();
        }
        let agents = self.kill_agents();
        let stray: Vec<u32> = processes_in(&self.namespaces)
            .into_iter()
            .filter(|pid| *pid != self.holder_pid)
            .collect();
        for pid in &stray {
            kill(&pid.to_string());
        }
        kill_child(&mut locked(&self.holder));
        let left: Vec<u32> = stray
            .into_iter()
            .filter(|p| !wait_until(GONE, || process_ended(*p)))
            .collect();
        agents?;
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "processes {left:?} on {} outlived SIGKILL by {GONE:?}",
                self.name
            ))
        }
    }
}

/// Starts host `name`'s holder: in the host's network namespace, a mount namespace of its
/// own with sysfs, /run/netns and /etc/netns fresh (see the module comment). Returns it
/// and its pid (nsenter and unshare exec in turn: the child is the holder's shell).
fn spawn_holder(sb_pid: u32, name: &str) -> (Child, u32) {
    let setup = format!(
        "umount -l /run/netns && mount -t tmpfs ctnet-host /run/netns && \
         umount -l /etc/netns && mount -t tmpfs ctnet-host /etc/netns && \
         mount -t sysfs none /sys && echo $$ && exec sleep {LIFETIME_SECONDS}"
    );
    let mut holder = in_sandbox(
        sb_pid,
        &format!(
            "exec nsenter --net=/run/netns/{name} -- unshare --mount --propagation private -- sh -c {}",
            quoted(&setup)
        ),
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit())
    .spawn()
    .expect("nsenter");
    let mut line = String::new();
    BufReader::new(holder.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("holder pid");
    match line.trim().parse::<u32>() {
        Ok(pid) if pid == holder.id() => (holder, pid),
        _ => {
            kill_child(&mut holder);
            panic!(
                "host {name}'s holder did not start as the child (pid {}): {line:?}",
                holder.id()
            );
        }
    }
}

/// A machine on the underlay that is no host (see [`Cluster::rogue`]): only its network
/// namespace is its own (`ip`, `ip link add … type vxlan`, ctnet-probe and scapy need no
/// more; its /sys shows the switch's links). It dies with the sandbox.
pub struct Rogue {
    sb_pid: u32,
    name: String,
    addr: Ipv4Addr,
}

impl Rogue {
    /// `r1`, `r2`, …
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its underlay address.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// A script in the rogue's network namespace, with ctnet's binaries (ctnet-probe) on
    /// PATH.
    pub fn command(&self, script: &str) -> Command {
        in_sandbox(
            self.sb_pid,
            &format!(
                "exec nsenter --net=/run/netns/{} -- sh -c {}",
                self.name,
                quoted(script)
            ),
        )
    }

    /// Runs a script in the rogue.
    pub fn run(&self, script: &str) -> Output {
        self.command(script).output().expect("nsenter")
    }

    /// Runs a script that must succeed in the rogue; returns its stdout.
    pub fn ok(&self, script: &str) -> String {
        succeeded(
            &format!("`{script}` on rogue {}", self.name),
            self.run(script),
        )
    }

    /// Runs a script that must fail in the rogue; returns its stderr.
    pub fn fails(&self, script: &str) -> String {
        failed(
            &format!("`{script}` on rogue {}", self.name),
            self.run(script),
        )
    }
}

/// A tcpdump on the switch (see [`Cluster::capture_underlay`]); killed if dropped.
pub struct Capture {
    child: Option<Child>,
    out: PathBuf,
    err: PathBuf,
}

impl Capture {
    fn start(sb: &Sandbox, filter: &str) -> Capture {
        let n = super::unique();
        let out = sb.dir().join(format!("capture-{n}.txt"));
        let err = sb.dir().join(format!("capture-{n}.err"));
        // Packets as they come (--immediate-mode: else the kernel hands them over a block
        // at a time, and a capture stopped within a second loses the last block), a line
        // each (-l); -c and timeout bound it however the test ends.
        let child = in_sandbox(
            sb.pid(),
            &format!(
                "exec timeout {LIFETIME_SECONDS} tcpdump -i {SWITCH} -n -l --immediate-mode -c 100000 {} > {} 2> {}",
                quoted(filter),
                out.display(),
                err.display()
            ),
        )
        .spawn()
        .expect("nsenter");
        let mut capture = Capture {
            child: Some(child),
            out,
            err,
        };
        let listening = wait_until(Duration::from_secs(5), || {
            capture.stderr().contains("listening on")
                || capture
                    .child
                    .as_mut()
                    .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))))
        });
        assert!(
            listening && capture.stderr().contains("listening on"),
            "tcpdump on {SWITCH} ({filter}) did not start: {}",
            capture.stderr()
        );
        capture
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// What was captured so far, one line per packet, the capture still running.
    pub fn so_far(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Stops the capture (SIGINT: tcpdump writes what it holds) and returns it.
    pub fn stop(mut self) -> String {
        if let Some(mut child) = self.child.take() {
            // timeout passes SIGINT on to tcpdump.
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            if !wait_until(GONE, || matches!(child.try_wait(), Ok(Some(_)))) {
                kill_child(&mut child);
            }
        }
        self.so_far()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_child(&mut child);
        }
    }
}

/// An etcd cluster of 1 or 3 members on the underlay (`e1..e3` at 192.0.2.101..103), run
/// by Debian's /usr/bin/etcd with data dirs under `<sandbox>/etcd`. Drop kills every
/// member it started.
pub struct Etcd<'a> {
    sb: &'a Sandbox,
    dir: PathBuf,
    members: Vec<Option<Child>>,
}

impl<'a> Etcd<'a> {
    /// Starts `members` (1 or 3) members and waits until every one is healthy.
    pub fn start(cluster: &Cluster<'a>, members: usize) -> Etcd<'a> {
        assert!(
            members == 1 || members == 3,
            "an etcd of 1 or 3 members, not {members}"
        );
        let sb = cluster.sandbox();
        for i in 1..=members {
            sandbox_ok(sb.pid(), &join_script(&format!("e{i}"), etcd_addr(i)));
        }
        let dir = sb.dir().join("etcd");
        std::fs::create_dir_all(&dir).expect("etcd dir");
        let mut etcd = Etcd {
            sb,
            dir,
            members: (0..members).map(|_| None).collect(),
        };
        for i in 1..=members {
            etcd.launch(i, "new");
        }
        etcd.wait_healthy();
        etcd
    }

    /// Every member's client URL, comma-separated (for `--etcd` and `--endpoints`).
    pub fn urls(&self) -> String {
        (1..=self.members.len())
            .map(client_url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Member `i`'s client URL.
    pub fn url(&self, i: usize) -> String {
        client_url(i)
    }

    /// Member `i`'s log (etcd's own zap log, every start of it).
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("e{i}.log"))).unwrap_or_default()
    }

    fn launch(&mut self, i: usize, state: &str) {
        let n = self.members.len();
        let peers: Vec<String> = (1..=n)
            .map(|m| format!("e{m}=http://{}:{ETCD_PEER_PORT}", etcd_addr(m)))
            .collect();
        let ip = etcd_addr(i);
        let log = self.dir.join(format!("e{i}.log"));
        let script = format!(
            "exec nsenter --net=/run/netns/e{i} -- etcd --name e{i} --data-dir {data} \
             --listen-client-urls {url} --advertise-client-urls {url} \
             --listen-peer-urls http://{ip}:{ETCD_PEER_PORT} \
             --initial-advertise-peer-urls http://{ip}:{ETCD_PEER_PORT} \
             --initial-cluster {peers} --initial-cluster-state {state} \
             --initial-cluster-token ctnet-test --logger zap --log-outputs stderr >> {log} 2>&1",
            data = self.dir.join(format!("e{i}")).display(),
            url = client_url(i),
            peers = peers.join(","),
            log = log.display(),
        );
        // nsenter, sh and nsenter exec in turn: the child is etcd itself.
        let child = in_sandbox(self.sb.pid(), &script)
            .stdout(Stdio::null())
            .spawn()
            .expect("nsenter");
        self.members[i - 1] = Some(child);
    }

    /// The members that run, 1-based.
    pub fn running(&self) -> Vec<usize> {
        (1..=self.members.len())
            .filter(|i| self.members[i - 1].is_some())
            .collect()
    }

    /// `etcdctl ARGS` with the running members as endpoints, from the first running
    /// member's namespace (the switch has no address on the underlay).
    pub fn ctl(&self, args: &str) -> Output {
        let running = self.running();
        let first = *running.first().expect("no etcd member runs");
        let endpoints: Vec<String> = running.iter().map(|i| client_url(*i)).collect();
        in_sandbox(
            self.sb.pid(),
            &format!(
                "exec nsenter --net=/run/netns/e{first} -- etcdctl --endpoints {} \
                 --dial-timeout 2s --command-timeout 5s {args}",
                endpoints.join(",")
            ),
        )
        .output()
        .expect("nsenter")
    }

    /// `etcdctl ARGS` that must succeed; its stdout.
    pub fn ctl_ok(&self, args: &str) -> String {
        succeeded(&format!("etcdctl {args}"), self.ctl(args))
    }

    /// Every key under `prefix` with its value (`etcdctl get --prefix`: key and value on
    /// lines of their own).
    pub fn get_prefix(&self, prefix: &str) -> String {
        self.ctl_ok(&format!("get --prefix {}", quoted(prefix)))
    }

    /// Waits until every running member answers `endpoint health` (at most 20 s); panics
    /// with the members' logs if not.
    pub fn wait_healthy(&self) {
        let healthy = wait_until(ETCD_READY, || self.ctl("endpoint health").status.success());
        if !healthy {
            let last = self.ctl("endpoint health");
            let logs: Vec<String> = self
                .running()
                .iter()
                .map(|i| format!("--- e{i}:\n{}", tail(&self.log(*i), 20)))
                .collect();
            panic!(
                "etcd was not healthy after {ETCD_READY:?}: {}{}\n{}",
                String::from_utf8_lossy(&last.stdout),
                String::from_utf8_lossy(&last.stderr),
                logs.join("\n")
            );
        }
    }

    /// The member the running members agree leads, if they do: right after the leader
    /// died the others still name it until they elect another (a write sent to them
    /// before that is lost, and etcd answers it only after 7 s with "request timed out,
    /// possibly due to previous leader failure").
    pub fn leader(&self) -> Option<usize> {
        let out = self.ctl("endpoint status -w json");
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let members = status.as_array()?;
        let id_of = |s: &serde_json::Value| s["Status"]["header"]["member_id"].as_u64();
        let leader = members[0]["Status"]["leader"].as_u64()?;
        let agreed = members
            .iter()
            .all(|s| s["Status"]["leader"].as_u64() == Some(leader));
        let url = members.iter().find(|s| id_of(s) == Some(leader))?["Endpoint"].as_str()?;
        let running = self.running();
        agreed
            .then(|| running.into_iter().find(|i| client_url(*i) == url))
            .flatten()
    }

    /// Waits (at most 20 s) until the running members agree on a leader among them;
    /// returns it.
    pub fn wait_leader(&self) -> usize {
        let mut leader = None;
        wait_until(ETCD_READY, || {
            leader = self.leader();
            leader.is_some()
        });
        leader.unwrap_or_else(|| {
            panic!(
                "the etcd members {:?} agreed on no leader within {ETCD_READY:?}",
                self.running()
            )
        })
    }

    /// SIGKILLs member `i` (1-based) and reaps it.
    pub fn kill_member(&mut self, i: usize) {
        let mut child = self.members[i - 1]
            .take()
            .unwrap_or_else(|| panic!("etcd member e{i} is not running"));
        kill_child(&mut child);
    }

    /// SIGKILLs every member.
    pub fn stop(&mut self) {
        for i in self.running() {
            self.kill_member(i);
        }
    }

    /// Starts every member that is not running again, on its data dir (`--initial-
    /// cluster-state existing`), and waits until all are healthy.
    pub fn restart(&mut self) {
        for i in 1..=self.members.len() {
            if self.members[i - 1].is_none() {
                self.launch(i, "existing");
            }
        }
        self.wait_healthy();
    }
}

impl Drop for Etcd<'_> {
    fn drop(&mut self) {
        for member in self.members.iter_mut() {
            if let Some(mut child) = member.take() {
                kill_child(&mut child);
            }
        }
    }
}

fn client_url(i: usize) -> String {
    format!("http://{}:{ETCD_CLIENT_PORT}", etcd_addr(i))
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
