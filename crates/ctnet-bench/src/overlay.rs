//! `--overlay`: what an overlay network (VXLAN between hosts, coordinated through etcd;
//! see docs/overlay.md) costs a packet and an attach, and how fast its hosts learn of a
//! host that joins and of one that dies, on simulated hosts.
//!
//! One world plays the underlay's switch: a bridge `ul0` with one veth per member, whose
//! other end is `eth0` in a named namespace of that member:
//!
//! ```text
//!   world (this process): bridge ul0, no address
//!     ├─ ulE ───── eth0 192.0.2.101  namespace ovetcd: one etcd member, client port 2379
//!     ├─ ulh1g1 ── eth0 192.0.2.11   namespace ovh1: ctnet-agent --lease-ttl 4, state in h1.1/
//!     │              br-… 10.50.A.1/24, vx-… 10.50.A.0/32; containers c (10.50.A.2), a0…
//!     ├─ ulh2g2 ── eth0 192.0.2.12   namespace ovh2: the same, container c
//!     └─ …         eth0 192.0.2.(10+K) namespace ovhK, up to the largest cluster asked for
//!   overlay ov1: 10.50.0.0/16, one /24 per host, VXLAN (UDP 4789) over ul0;
//!   bridge network br1 (10.60.0.0/24) on h1, the attach figures' reference
//! ```
//!
//! A command "on a host" switches only its network namespace (setns between fork and
//! exec): the mount namespace stays the sandbox's, so every host's namespace folder (its
//! containers' bind mounts) is seen from everywhere. Each host has its own state, run,
//! netns and etc-netns folders, its own agent and its own firewall; the veth names carry
//! a generation (`g1`), since a host that comes back is a fresh namespace while the old
//! one may still be dismantled.
//!
//! Three figures, each printed, none asserted:
//!
//! 1. throughput: one TCP stream of iperf3 from the container on h1 to the one on h2
//!    over the overlay, and from h1's underlay address to h2's on the bare underlay,
//!    taking turns round by round; the ratio is the median of the rounds' ratios.
//! 2. attach: on h1 (agent running), `ctnet attach` to the overlay and to the bridge
//!    network, each a whole process timed from fork to reap, the namespaces made
//!    beforehand and each attach detached (untimed) before the next; the two take turns.
//! 3. convergence with H hosts: with H-1 hosts up and knowing each other, host H's agent
//!    is started (join) and, once the routes are seen, SIGKILLed and its namespace
//!    deleted (loss). Every host's routing table is read over rtnetlink every few
//!    milliseconds: a peer is a route `BLOCK/24 via BLOCK onlink` into the overlay.
//!    An `etcdctl watch` on `/ctnet/` tells when etcd held the new block and when it
//!    deleted it, so each is split into etcd's part and the agents' part.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ctnet_kernel::link::{self, BridgeSpec, VethSpec};
use ctnet_kernel::{addr, route, Family, IfName, Netns, NetnsDir, RtSocket};

use crate::child::{first_line_of, run_timed, Finished};
use crate::datapath;
use crate::sandbox::World;

/// The overlay network, its cluster subnet and the prefix of each host's block.
const NETWORK: &str = "ov1";
const SUBNET: &str = "10.50.0.0/16";
const SUBNET_BASE: Ipv4Addr = Ipv4Addr::new(10, 50, 0, 0);
const SUBNET_PREFIX: u32 = 16;
const BLOCK_PREFIX: u8 = 24;
/// The bridge network the overlay's attach is compared with, on the same host.
const BRIDGE_NETWORK: &str = "br1";
const BRIDGE_SUBNET: &str = "10.60.0.0/24";
/// The underlay: its switch, and the etcd member's address on it.
const UNDERLAY: &str = "ul0";
const ETCD_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 101);
const ETCD_URL: &str = "http://192.0.2.101:2379";
const ETCD_PEER_URL: &str = "http://192.0.2.101:2380";
/// The lease TTL every agent is started with (seconds): short, so a loss is seen soon,
/// and above etcd's minimum lease (about 2 s with its default election timeout).
pub const LEASE_TTL: u64 = 4;
/// The most hosts a run can ask for (their underlay addresses end at .60).
pub const MAX_HOSTS: usize = 50;
/// The smallest cluster measured, and the only one in quick mode.
pub const SMALL_HOSTS: usize = 3;
/// Ports: iperf3's, and the listener the reach probe connects to.
const IPERF_PORT: u16 = 5201;
const PROBE_PORT: u16 = 7000;
/// The container of every host that carries traffic.
const CONTAINER: &str = "c";

/// How long etcd may take to answer after its start.
const ETCD_READY_MAX: Duration = Duration::from_secs(15);
/// How long a cluster being built may take until every host knows every other.
const CONVERGE_MAX: Duration = Duration::from_secs(60);
/// How long a join may take until every figure of it is seen.
const JOIN_MAX: Duration = Duration::from_secs(30);
/// How long past the lease TTL a loss may take to be seen everywhere.
const LOSS_SLACK: Duration = Duration::from_secs(30);
/// How long a retired host's underlay port may take to vanish.
const PORT_GONE_MAX: Duration = Duration::from_secs(10);
/// Between two reads of the routing tables.
const POLL: Duration = Duration::from_millis(5);
/// One reach probe's connect: short, so the figure's resolution stays fine.
const PROBE_TIMEOUT: Duration = Duration::from_millis(50);

/// How much to measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Size {
    /// The cluster sizes convergence is measured at, ascending.
    pub hosts: Vec<usize>,
    /// Rounds of the throughput pair, and joins and losses per cluster size.
    pub rounds: usize,
    /// iperf3's `-t`.
    pub iperf_seconds: u32,
    /// Timed attaches per network.
    pub attaches: usize,
}

impl Size {
    /// A real run (3 and `hosts` hosts), or the smoke test's: 3 hosts, one round, a
    /// 1-second iperf3, 5 attaches each.
    pub fn new(quick: bool, hosts: usize, rounds: usize, attaches: usize) -> Size {
        if quick {
            return Size {
                hosts: vec![SMALL_HOSTS],
                rounds: 1,
                iperf_seconds: 1,
                attaches: attaches.min(5),
            };
        }
        let mut sizes = vec![SMALL_HOSTS, hosts];
        sizes.dedup();
        Size {
            hosts: sizes,
            rounds,
            iperf_seconds: 3,
            attaches,
        }
    }
}

/// The throughput pair's runs, Gbit/s each.
#[derive(Debug)]
pub struct Throughput {
    pub overlay: Result<Vec<f64>, String>,
    pub underlay: Result<Vec<f64>, String>,
}

impl Throughput {
    /// The median of the rounds' overlay / underlay.
    pub fn ratio(&self) -> Option<f64> {
        datapath::paired_ratio(&self.underlay, &self.overlay)
    }
}

/// Whole `ctnet attach` processes on the same host.
#[derive(Debug, Default)]
pub struct Attaches {
    pub overlay: Vec<Duration>,
    pub bridge: Vec<Duration>,
}

/// One join: times from the new host's agent start.
#[derive(Debug, Clone)]
pub struct Join {
    /// When etcd held the new host's block (its agent up and its first sync done), as
    /// `etcdctl watch` printed it; None if the watch never showed it.
    pub leased: Option<Duration>,
    /// When each other host first had a route to the new host's block.
    pub seen_by: Vec<Duration>,
    /// When the new host had a route to every other host's block.
    pub knows_all: Duration,
    /// The new host's container attach (started once it knew every host), whole process.
    pub attach: Duration,
    /// When h1's container first connected to the new host's container.
    pub reached: Duration,
}

/// One loss: times from the SIGKILL of the lost host's agent.
#[derive(Debug, Clone)]
pub struct Loss {
    /// When etcd deleted the lost host's block (its lease expired), as `etcdctl watch`
    /// printed it; None if the watch never showed it.
    pub expired: Option<Duration>,
    /// When each other host no longer had a route to the lost host's block.
    pub gone_from: Vec<Duration>,
}

/// Convergence at one cluster size.
#[derive(Debug)]
pub struct Convergence {
    /// Hosts once the new one has joined.
    pub hosts: usize,
    pub joins: Vec<Join>,
    pub losses: Vec<Loss>,
    /// Why the rounds stopped early (or the cluster could not be built).
    pub failed: Option<String>,
}

/// Everything the part measured.
pub struct Measured {
    pub size: Size,
    /// The ctnet and ctnet-agent under test, as labels.
    pub ctnet: String,
    pub agent: String,
    /// None without iperf3 (said so).
    pub throughput: Option<Throughput>,
    pub attaches: Result<Attaches, String>,
    pub convergence: Vec<Convergence>,
}

impl Measured {
    /// Whether every figure asked for was measured.
    pub fn all_ok(&self) -> bool {
        let throughput = self
            .throughput
            .as_ref()
            .is_none_or(|t| t.overlay.is_ok() && t.underlay.is_ok());
        throughput && self.attaches.is_ok() && self.convergence.iter().all(|c| c.failed.is_none())
    }
}

/// Whether the ctnet at `bin` makes overlay networks (`network create` takes `--vni`).
pub fn has_overlay(bin: &Path) -> bool {
    Command::new(bin)
        .args(["network", "create", "--help"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|out| {
            out.status.success()
                && String::from_utf8_lossy(&out.stdout)
                    .split_whitespace()
                    .any(|w| w == "--vni" || w.starts_with("--vni="))
        })
}

/// The programs the part runs.
pub struct Programs {
    pub ctnet: PathBuf,
    pub agent: PathBuf,
    pub etcd: PathBuf,
    pub iperf3: Option<PathBuf>,
}

/// Builds the underlay and etcd, two hosts with a container each, measures throughput
/// and attach there, then convergence at every size. With `settle`, waits for a quiet
/// machine before throughput and attach (the smoke test does not).
pub fn measure(
    root: &Path,
    programs: &Programs,
    size: Size,
    settle: bool,
) -> Result<Measured, String> {
    let world = World::enter(root, "overlay")?;
    let mut cluster = Cluster::new(world, programs)?;
    eprintln!("overlay: etcd up; hosts h1 and h2 joining {NETWORK}");
    cluster.add_host(1)?;
    cluster.host_ctnet(
        1,
        &[
            "network", "create", NETWORK, "--driver", "overlay", "--subnet", SUBNET,
        ],
    )?;
    cluster.add_host(2)?;
    for k in 1..=2 {
        cluster.start_agent(k)?;
    }
    cluster.wait_converged()?;
    for k in 1..=2 {
        cluster.add_container(k)?;
    }
    if settle {
        crate::quiet::wait_for_quiet(crate::QUIET_MAX, "the overlay's throughput and attaches");
    }
    let throughput = programs.iperf3.as_deref().map(|iperf3| {
        eprintln!("overlay: throughput, {} round(s)", size.rounds);
        cluster.throughput(iperf3, size.rounds, size.iperf_seconds)
    });
    eprintln!("overlay: {} attaches to each network on h1", size.attaches);
    let attaches = cluster.attaches(size.attaches);
    if let Err(e) = &attaches {
        eprintln!("overlay, attaches: {e}");
    }
    let mut convergence = Vec::new();
    for &hosts in &size.hosts {
        eprintln!(
            "overlay: convergence with {hosts} hosts, {} round(s)",
            size.rounds
        );
        let c = cluster.convergence(hosts, size.rounds);
        if let Some(e) = &c.failed {
            eprintln!("overlay, convergence with {hosts} hosts: {e}");
        }
        let broken = c.joins.is_empty() && c.failed.is_some();
        convergence.push(c);
        if broken {
            break; // a cluster that could not be built will not grow
        }
    }
    Ok(Measured {
        size,
        ctnet: label(&programs.ctnet),
        agent: label(&programs.agent),
        throughput,
        attaches,
        convergence,
    })
}

/// "ctnet 0.1.0 (/path/to/ctnet)": the path says which build it is.
fn label(bin: &Path) -> String {
    let version = first_line_of(bin, &["--version"]).unwrap_or_else(|| "?".into());
    format!("{version} ({})", bin.display())
}

/// A long-lived process this part started (etcd, an agent), ended by its handle.
struct Daemon {
    what: String,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// Starts `cmd` inside `ns`, its output into `log`, dying with this process.
    fn spawn(what: String, mut cmd: Command, ns: &Netns, log: &Path) -> Result<Daemon, String> {
        let file =
            std::fs::File::create(log).map_err(|e| format!("create {}: {e}", log.display()))?;
        let err = file
            .try_clone()
            .map_err(|e| format!("{}: {e}", log.display()))?;
        datapath::in_netns(&mut cmd, ns);
        die_with_parent(&mut cmd);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .map_err(|e| {
                format!(
                    "start {what} ({}): {e}",
                    cmd.get_program().to_string_lossy()
                )
            })?;
        Ok(Daemon {
            what,
            child,
            log: log.to_path_buf(),
        })
    }

    /// An error if it has exited, with the last lines it wrote.
    fn running(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "{} exited ({status}): {}",
                self.what,
                tail(&self.log)
            )),
            Err(e) => Err(format!("{}: wait: {e}", self.what)),
        }
    }

    /// SIGKILL, then reap.
    fn kill(mut self) {
        self.end();
    }

    fn end(&mut self) {
        // Child::kill signals only a child not yet reaped, so never a reused pid.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.end();
    }
}

/// Makes `cmd`'s process get SIGKILL when the thread that started it (this program's
/// main thread) ends, so none outlives a benchmark that dies.
fn die_with_parent(cmd: &mut Command) {
    // SAFETY: the hook runs in the forked child before exec and only calls prctl, which
    // is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

/// The last three lines a daemon wrote.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let last = lines[lines.len().saturating_sub(3)..].join(" | ");
    if last.is_empty() {
        "it said nothing".into()
    } else {
        last
    }
}

/// One simulated host.
struct Host {
    ns: Netns,
    /// Its folder: state, run, netns, etc-netns and the agent's log.
    dir: PathBuf,
    /// Its underlay port in the world (`ulhKgG`).
    port: String,
    /// An rtnetlink socket opened inside it, for reading its routes.
    routes: RtSocket,
    agent: Option<Daemon>,
}

impl Host {
    fn netns_dir(&self) -> PathBuf {
        self.dir.join("netns")
    }

    /// The network address of every peer block it routes to: routes into the overlay
    /// whose gateway is their own destination (`BLOCK/24 via BLOCK onlink dev vx-…`).
    fn peer_blocks(&mut self) -> Result<BTreeSet<Ipv4Addr>, String> {
        let routes = route::list_family(&mut self.routes, Family::V4)
            .map_err(|e| format!("read the routes of {}: {e}", self.ns.path().display()))?;
        Ok(routes
            .iter()
            .filter(|r| r.prefix_len == BLOCK_PREFIX && r.gateway == Some(r.destination))
            .filter_map(|r| match r.destination {
                std::net::IpAddr::V4(dst) if in_overlay(dst) => Some(dst),
                _ => None,
            })
            .collect())
    }

    /// Unmounts the namespaces of its containers and its namespace folder's own bind.
    fn unmount_containers(&self) {
        let dir = NetnsDir::new(self.netns_dir());
        for name in dir.list().unwrap_or_default() {
            if let Ok(name) = ctnet_kernel::NetnsName::new(&name) {
                let _ = dir.delete(&name);
            }
        }
        let _ = nix::mount::umount2(&self.netns_dir(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Whether `a` lies in the cluster subnet.
fn in_overlay(a: Ipv4Addr) -> bool {
    let mask = u32::MAX << (32 - SUBNET_PREFIX);
    u32::from(a) & mask == u32::from(SUBNET_BASE)
}

/// Host K's underlay address.
fn underlay_addr(k: usize) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, 10 + k as u8)
}

/// The world, etcd and the hosts.
struct Cluster<'p> {
    programs: &'p Programs,
    /// In the world's namespace: for the underlay's ports.
    sock: RtSocket,
    underlay: u32,
    hosts: BTreeMap<usize, Host>,
    /// etcd's namespace, where `etcdctl watch` runs.
    etcd_ns: Netns,
    /// Underlay ports of hosts removed, by host, until they are seen gone.
    retired: BTreeMap<usize, String>,
    generation: usize,
    etcd: Option<Daemon>,
    /// Dropped last: its namespaces go with it.
    world: World,
}

impl<'p> Cluster<'p> {
    /// The underlay switch and etcd on it, answering.
    fn new(mut world: World, programs: &'p Programs) -> Result<Cluster<'p>, String> {
        let mut sock = RtSocket::open().map_err(|e| e.to_string())?;
        let name = ifname(UNDERLAY)?;
        link::create_bridge(
            &mut sock,
            &BridgeSpec {
                name: &name,
                mtu: None,
                multicast_snooping: false,
                mac: None,
            },
        )
        .map_err(|e| format!("underlay bridge {UNDERLAY}: {e}"))?;
        let underlay = link::index_of(&mut sock, UNDERLAY)
            .map_err(|e| e.to_string())?
            .ok_or("the underlay bridge vanished right after it was made")?;
        let etcd_ns = world.create_netns("ovetcd")?;
        plug(&mut sock, underlay, &etcd_ns, "ulE", ETCD_ADDR)?;
        let data = world.subdir("etcd")?;
        let mut cmd = Command::new(&programs.etcd);
        cmd.args(["--name", "e1"])
            .arg("--data-dir")
            .arg(data.join("data"))
            .args([
                "--listen-client-urls",
                ETCD_URL,
                "--advertise-client-urls",
                ETCD_URL,
            ])
            .args([
                "--listen-peer-urls",
                ETCD_PEER_URL,
                "--initial-advertise-peer-urls",
                ETCD_PEER_URL,
            ])
            .args(["--initial-cluster", &format!("e1={ETCD_PEER_URL}")]);
        let etcd = Daemon::spawn("etcd".into(), cmd, &etcd_ns, &data.join("etcd.log"))?;
        let mut cluster = Cluster {
            programs,
            sock,
            underlay,
            hosts: BTreeMap::new(),
            etcd_ns,
            retired: BTreeMap::new(),
            generation: 0,
            etcd: Some(etcd),
            world,
        };
        cluster.wait_etcd()?;
        Ok(cluster)
    }

    fn etcdctl(&self) -> PathBuf {
        self.programs.etcd.with_file_name("etcdctl")
    }

    /// Until `etcdctl endpoint health` says yes, from etcd's own namespace.
    fn wait_etcd(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + ETCD_READY_MAX;
        loop {
            let mut cmd = Command::new(self.etcdctl());
            cmd.args([
                "--endpoints",
                ETCD_URL,
                "--command-timeout",
                "1s",
                "endpoint",
                "health",
            ]);
            datapath::in_netns(&mut cmd, &self.etcd_ns);
            let last = match run_timed("etcdctl endpoint health", &mut cmd, None) {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            if let Some(etcd) = self.etcd.as_mut() {
                etcd.running()?;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "etcd at {ETCD_URL} did not answer within {} s: {last}",
                    ETCD_READY_MAX.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A fresh host K on the underlay: namespace, port, folders (no agent yet).
    fn add_host(&mut self, k: usize) -> Result<(), String> {
        if let Some(old) = self.retired.remove(&k) {
            self.wait_port_gone(&old)?;
        }
        self.generation += 1;
        let ns = self.world.create_netns(&format!("ovh{k}"))?;
        let port = format!("ulh{k}g{}", self.generation);
        plug(&mut self.sock, self.underlay, &ns, &port, underlay_addr(k))?;
        let dir = self.world.subdir(&format!("h{k}.{}", self.generation))?;
        for sub in ["state", "run", "netns", "etc-netns"] {
            std::fs::create_dir_all(dir.join(sub))
                .map_err(|e| format!("create {}/{sub}: {e}", dir.display()))?;
        }
        let routes = ns
            .within(RtSocket::open)
            .map_err(|e| format!("an rtnetlink socket in host h{k}: {e}"))?;
        self.hosts.insert(
            k,
            Host {
                ns,
                dir,
                port,
                routes,
                agent: None,
            },
        );
        Ok(())
    }

    /// Until the old namespace of a host is dismantled (its underlay port gone), so its
    /// `eth0` never answers for the new one's address.
    fn wait_port_gone(&mut self, port: &str) -> Result<(), String> {
        let deadline = Instant::now() + PORT_GONE_MAX;
        while link::index_of(&mut self.sock, port)
            .map_err(|e| e.to_string())?
            .is_some()
        {
            if Instant::now() > deadline {
                return Err(format!(
                    "underlay port {port} of a removed host still exists after {} s",
                    PORT_GONE_MAX.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    fn host(&self, k: usize) -> Result<&Host, String> {
        self.hosts
            .get(&k)
            .ok_or_else(|| format!("host h{k} does not exist"))
    }

    /// `ctnet ARGS` on host K, with its folders and the etcd endpoint.
    fn host_command(&self, k: usize, args: &[&str]) -> Result<Command, String> {
        let host = self.host(k)?;
        let mut cmd = Command::new(&self.programs.ctnet);
        cmd.args(args);
        host_env(&mut cmd, host);
        datapath::in_netns(&mut cmd, &host.ns);
        Ok(cmd)
    }

    /// Runs `ctnet ARGS` on host K, timed as a whole process.
    fn host_ctnet(&self, k: usize, args: &[&str]) -> Result<Finished, String> {
        let mut cmd = self.host_command(k, args)?;
        run_timed(&format!("ctnet {} on h{k}", args.join(" ")), &mut cmd, None)
    }

    fn start_agent(&mut self, k: usize) -> Result<(), String> {
        let bin = self.programs.agent.clone();
        let host = self
            .hosts
            .get_mut(&k)
            .ok_or_else(|| format!("host h{k} does not exist"))?;
        let mut cmd = Command::new(&bin);
        cmd.args(["--etcd", ETCD_URL])
            .args(["--advertise-addr", &underlay_addr(k).to_string()])
            .args(["--host-name", &format!("h{k}")])
            .args(["--lease-ttl", &LEASE_TTL.to_string()]);
        host_env(&mut cmd, host);
        let log = host.dir.join("agent.log");
        host.agent = Some(Daemon::spawn(
            format!("ctnet-agent on h{k}"),
            cmd,
            &host.ns,
            &log,
        )?);
        Ok(())
    }

    /// Every agent still running.
    fn agents_running(&mut self) -> Result<(), String> {
        for host in self.hosts.values_mut() {
            if let Some(agent) = host.agent.as_mut() {
                agent.running()?;
            }
        }
        Ok(())
    }

    /// Until every host routes to every other host's block.
    fn wait_converged(&mut self) -> Result<(), String> {
        let n = self.hosts.len();
        let deadline = Instant::now() + CONVERGE_MAX;
        loop {
            let mut short = Vec::new();
            for (k, host) in self.hosts.iter_mut() {
                let peers = host.peer_blocks()?.len();
                if peers != n - 1 {
                    short.push(format!("h{k} routes to {peers} of {} peers", n - 1));
                }
            }
            if short.is_empty() {
                return Ok(());
            }
            self.agents_running()?;
            if Instant::now() > deadline {
                return Err(format!(
                    "{n} hosts did not learn each other within {} s: {}",
                    CONVERGE_MAX.as_secs(),
                    short.join(", ")
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Container `c` on host K, attached to the overlay (and given an address in it).
    fn add_container(&mut self, k: usize) -> Result<(), String> {
        self.host_ctnet(k, &["netns", "add", CONTAINER])?;
        self.host_ctnet(k, &["attach", NETWORK, CONTAINER])?;
        overlay_address(&self.container(k)?).map(|_| ())
    }

    fn container(&self, k: usize) -> Result<Netns, String> {
        let path = self.host(k)?.netns_dir().join(CONTAINER);
        Netns::open(&path).map_err(|e| format!("container {CONTAINER} on h{k}: {e}"))
    }

    /// Overlay and bare underlay from h1 to h2, taking turns.
    fn throughput(&self, iperf3: &Path, rounds: usize, seconds: u32) -> Throughput {
        let length = ["-t".to_string(), seconds.to_string()];
        let length: Vec<&str> = length.iter().map(String::as_str).collect();
        let overlay = || -> Result<f64, String> {
            let (c1, c2) = (self.container(1)?, self.container(2)?);
            let target = overlay_address(&c2)?;
            datapath::iperf_for(
                iperf3,
                (&c2, target, IPERF_PORT),
                (&c1, target, IPERF_PORT),
                &length,
            )
        };
        let underlay = || -> Result<f64, String> {
            let (h1, h2) = (&self.host(1)?.ns, &self.host(2)?.ns);
            let target = underlay_addr(2);
            datapath::iperf_for(
                iperf3,
                (h2, target, IPERF_PORT),
                (h1, target, IPERF_PORT),
                &length,
            )
        };
        let mut runs = Throughput {
            overlay: Ok(Vec::new()),
            underlay: Ok(Vec::new()),
        };
        for _ in 0..rounds {
            push_run(&mut runs.overlay, &overlay);
            push_run(&mut runs.underlay, &underlay);
        }
        for (what, r) in [("overlay", &runs.overlay), ("underlay", &runs.underlay)] {
            if let Err(e) = r {
                eprintln!("overlay, throughput over the {what}: {e}");
            }
        }
        runs
    }

    /// `n` timed attaches to the overlay and to a bridge network on h1, taking turns,
    /// each detached (untimed) before the next.
    fn attaches(&mut self, n: usize) -> Result<Attaches, String> {
        let mut create = vec![
            "network",
            "create",
            BRIDGE_NETWORK,
            "--subnet",
            BRIDGE_SUBNET,
        ];
        if crate::systems::ctnet::has_dns_flag(&self.programs.ctnet) {
            // An overlay has no DNS; neither has the network it is compared with.
            create.extend(["--dns", "false"]);
        }
        self.host_ctnet(1, &create)?;
        let names: Vec<String> = (0..n).map(|i| format!("a{i}")).collect();
        for name in &names {
            self.host_ctnet(1, &["netns", "add", name])?;
        }
        let mut out = Attaches::default();
        for (i, name) in names.iter().enumerate() {
            let order = if i % 2 == 0 {
                [NETWORK, BRIDGE_NETWORK]
            } else {
                [BRIDGE_NETWORK, NETWORK]
            };
            for net in order {
                let wall = self.host_ctnet(1, &["attach", net, name])?.wall;
                self.host_ctnet(1, &["detach", net, name])?;
                if net == NETWORK {
                    out.overlay.push(wall);
                } else {
                    out.bridge.push(wall);
                }
            }
        }
        Ok(out)
    }

    /// `rounds` joins and losses of host `hosts` with hosts 1..hosts-1 up.
    fn convergence(&mut self, hosts: usize, rounds: usize) -> Convergence {
        let mut c = Convergence {
            hosts,
            joins: Vec::new(),
            losses: Vec::new(),
            failed: None,
        };
        if let Err(e) = self.grow_to(hosts - 1) {
            c.failed = Some(e);
            return c;
        }
        for round in 1..=rounds {
            eprintln!("overlay: {hosts} hosts, round {round} of {rounds}: h{hosts} joins");
            let (join, block) = match self.join(hosts) {
                Ok(done) => done,
                Err(e) => {
                    c.failed = Some(format!("join, round {round}: {e}"));
                    self.remove_host(hosts);
                    return c;
                }
            };
            c.joins.push(join);
            eprintln!("overlay: {hosts} hosts, round {round} of {rounds}: h{hosts} is killed");
            match self.lose(hosts, block) {
                Ok(loss) => c.losses.push(loss),
                Err(e) => {
                    c.failed = Some(format!("loss, round {round}: {e}"));
                    return c;
                }
            }
        }
        c
    }

    /// Hosts 1..=n up, each with its agent and every other host's route.
    fn grow_to(&mut self, n: usize) -> Result<(), String> {
        let missing: Vec<usize> = (1..=n).filter(|k| !self.hosts.contains_key(k)).collect();
        for &k in &missing {
            self.add_host(k)?;
            self.start_agent(k)?;
        }
        if !missing.is_empty() {
            eprintln!("overlay: {n} hosts up, waiting until they know each other");
        }
        self.wait_converged()
    }

    /// Every block the existing hosts route to (with two or more hosts, every block).
    fn known_blocks(&mut self) -> Result<BTreeSet<Ipv4Addr>, String> {
        let mut known = BTreeSet::new();
        for host in self.hosts.values_mut() {
            known.extend(host.peer_blocks()?);
        }
        Ok(known)
    }

    /// Starts host K's agent and measures until every other host routes to it, it
    /// routes to every other host, and h1's container connects to its container
    /// (attached as soon as it knows every host). Returns the figures and its block.
    fn join(&mut self, k: usize) -> Result<(Join, Ipv4Addr), String> {
        let known = self.known_blocks()?;
        let others: Vec<usize> = self.hosts.keys().copied().collect();
        self.add_host(k)?;
        self.host_ctnet(k, &["netns", "add", CONTAINER])?;
        let from = self.container(1)?;
        let known_keys: BTreeSet<String> = known.iter().map(|b| block_key(*b)).collect();
        let mut watch = BlockWatch::start(&self.etcdctl(), &self.etcd_ns)?;
        let start = Instant::now();
        self.start_agent(k)?;
        let mut seen: BTreeMap<usize, Duration> = BTreeMap::new();
        let mut block: Option<Ipv4Addr> = None;
        let mut knows_all: Option<Duration> = None;
        let mut target: Option<(Duration, TcpListener, SocketAddr)> = None;
        let mut reached: Option<Duration> = None;
        let deadline = start + JOIN_MAX;
        loop {
            watch.read(start);
            for &o in &others {
                if seen.contains_key(&o) {
                    continue;
                }
                let blocks = self
                    .hosts
                    .get_mut(&o)
                    .ok_or("a host vanished")?
                    .peer_blocks()?;
                if let Some(&new) = blocks.difference(&known).next() {
                    match block {
                        Some(b) if b != new => {
                            return Err(format!(
                                "h{o} routes to a new block {new}, other hosts to {b}"
                            ))
                        }
                        _ => block = Some(new),
                    }
                    seen.insert(o, start.elapsed());
                }
            }
            if knows_all.is_none() {
                let blocks = self
                    .hosts
                    .get_mut(&k)
                    .ok_or("the new host vanished")?
                    .peer_blocks()?;
                if blocks == known {
                    knows_all = Some(start.elapsed());
                }
            }
            if knows_all.is_some() && target.is_none() {
                let attach = self.host_ctnet(k, &["attach", NETWORK, CONTAINER])?.wall;
                let to = self.container(k)?;
                let addr = overlay_address(&to)?;
                let listener = listen(&to, PROBE_PORT)?;
                target = Some((
                    attach,
                    listener,
                    SocketAddr::V4(SocketAddrV4::new(addr, PROBE_PORT)),
                ));
            }
            if let (Some((_, _, addr)), None) = (&target, reached) {
                if connects(&from, *addr)? {
                    reached = Some(start.elapsed());
                }
            }
            if let (true, Some(knows_all), Some((attach, _, _)), Some(reached), Some(block)) = (
                seen.len() == others.len(),
                knows_all,
                &target,
                reached,
                block,
            ) {
                watch.read(start);
                let leased = watch.first(Event::Put, |key| {
                    key.starts_with(BLOCKS_PREFIX) && !known_keys.contains(key)
                });
                let join = Join {
                    leased,
                    seen_by: seen.into_values().collect(),
                    knows_all,
                    attach: *attach,
                    reached,
                };
                return Ok((join, block));
            }
            self.agents_running()?;
            if Instant::now() > deadline {
                let missing: Vec<String> = others
                    .iter()
                    .filter(|o| !seen.contains_key(o))
                    .map(|o| format!("h{o}"))
                    .collect();
                return Err(format!(
                    "within {} s of its agent's start: hosts without its route: [{}]; it knows every host: {}; h1's container reached it: {}; its agent: {}",
                    JOIN_MAX.as_secs(),
                    missing.join(", "),
                    knows_all.is_some(),
                    reached.is_some(),
                    self.host(k).map(|h| tail(&h.dir.join("agent.log"))).unwrap_or_default()
                ));
            }
            if target.is_none() {
                std::thread::sleep(POLL);
            }
        }
    }

    /// SIGKILLs host K's agent, deletes its namespace, and measures until no other
    /// host routes to its block.
    fn lose(&mut self, k: usize, block: Ipv4Addr) -> Result<Loss, String> {
        let mut watch = BlockWatch::start(&self.etcdctl(), &self.etcd_ns)?;
        let key = block_key(block);
        let start = Instant::now();
        if let Some(agent) = self.hosts.get_mut(&k).and_then(|h| h.agent.take()) {
            agent.kill();
        }
        self.remove_host(k);
        let others: Vec<usize> = self.hosts.keys().copied().collect();
        let mut gone: BTreeMap<usize, Duration> = BTreeMap::new();
        let deadline = start + Duration::from_secs(LEASE_TTL) + LOSS_SLACK;
        loop {
            watch.read(start);
            for &o in &others {
                if gone.contains_key(&o) {
                    continue;
                }
                let blocks = self
                    .hosts
                    .get_mut(&o)
                    .ok_or("a host vanished")?
                    .peer_blocks()?;
                if !blocks.contains(&block) {
                    gone.insert(o, start.elapsed());
                }
            }
            if gone.len() == others.len() {
                watch.read(start);
                return Ok(Loss {
                    expired: watch.first(Event::Delete, |k| k == key),
                    gone_from: gone.into_values().collect(),
                });
            }
            self.agents_running()?;
            if Instant::now() > deadline {
                let still: Vec<String> = others
                    .iter()
                    .filter(|o| !gone.contains_key(o))
                    .map(|o| format!("h{o}"))
                    .collect();
                return Err(format!(
                    "{} s after h{k} died (lease TTL {LEASE_TTL} s), [{}] still route to its block {block}",
                    (Duration::from_secs(LEASE_TTL) + LOSS_SLACK).as_secs(),
                    still.join(", ")
                ));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Host K gone: its agent (if any) killed, its containers' namespaces unmounted, its
    /// namespace deleted (the kernel then takes its devices apart).
    fn remove_host(&mut self, k: usize) {
        let Some(mut host) = self.hosts.remove(&k) else {
            return;
        };
        if let Some(agent) = host.agent.take() {
            agent.kill();
        }
        host.unmount_containers();
        self.retired.insert(k, host.port.clone());
        drop(host); // its socket and namespace handle, which keep the namespace alive
        let _ = self.world.delete_netns(&format!("ovh{k}"));
    }
}

impl Drop for Cluster<'_> {
    fn drop(&mut self) {
        let hosts: Vec<usize> = self.hosts.keys().copied().collect();
        for k in hosts {
            self.remove_host(k);
        }
        self.etcd.take();
    }
}

/// Where etcd keeps the overlay's blocks, and a block's key (as ctnet-engine's
/// `cluster::block_key` writes it).
const BLOCKS_PREFIX: &str = "/ctnet/overlay/blocks/ov1/";

/// What the watch covers: ctnet's keys and the bench's own marker beside them.
const WATCH_PREFIX: &str = "/ctnet/";
/// The bench's marker: outside `/ctnet/overlay/`, which is all the agents read or watch.
const READY_KEY: &str = "/ctnet/bench/watch-ready";
/// How long a watch may take to show the marker.
const WATCH_READY_MAX: Duration = Duration::from_secs(5);

fn block_key(block: Ipv4Addr) -> String {
    format!("{BLOCKS_PREFIX}{block}_{BLOCK_PREFIX}")
}

/// A kind of etcd event, as `etcdctl watch` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Put,
    Delete,
}

/// `etcdctl watch --prefix /ctnet/`, read without blocking, so a join or a loss can be
/// split into etcd's part and the agents' part.
///
/// A watch sees only events after it is set up, and etcdctl says nothing when it is;
/// so [`BlockWatch::start`] writes a marker key and returns once the watch has shown
/// it: an agent's write after that cannot be missed.
///
/// etcdctl prints each event as its kind (`PUT`, `DELETE`), the key, then the value
/// (an empty line for a delete), one per line; a value is one line of JSON.
struct BlockWatch {
    child: Child,
    out: std::process::ChildStdout,
    parser: WatchParser,
}

impl BlockWatch {
    fn start(etcdctl: &Path, ns: &Netns) -> Result<BlockWatch, String> {
        let mut cmd = Command::new(etcdctl);
        cmd.args(["--endpoints", ETCD_URL, "watch", "--prefix", WATCH_PREFIX]);
        datapath::in_netns(&mut cmd, ns);
        die_with_parent(&mut cmd);
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("start etcdctl watch: {e}"))?;
        let Some(out) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err("etcdctl watch: no stdout pipe".into());
        };
        let mut watch = BlockWatch {
            child,
            out,
            parser: WatchParser::default(),
        };
        let flags = nix::fcntl::fcntl(&watch.out, nix::fcntl::FcntlArg::F_GETFL)
            .map_err(|e| format!("etcdctl watch's pipe: {e}"))?;
        let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(&watch.out, nix::fcntl::FcntlArg::F_SETFL(flags))
            .map_err(|e| format!("etcdctl watch's pipe: {e}"))?;
        watch.wait_ready(etcdctl, ns)?;
        Ok(watch)
    }

    /// Writes the marker until the watch shows it (a write made before the watch was
    /// set up is not shown, so it is written again every 100 ms).
    fn wait_ready(&mut self, etcdctl: &Path, ns: &Netns) -> Result<(), String> {
        let start = Instant::now();
        let mut put_at = None;
        loop {
            if put_at.is_none_or(|t: Instant| t.elapsed() >= Duration::from_millis(100)) {
                let mut cmd = Command::new(etcdctl);
                cmd.args(["--endpoints", ETCD_URL, "put", READY_KEY, "1"]);
                datapath::in_netns(&mut cmd, ns);
                run_timed("etcdctl put (the watch's marker)", &mut cmd, None)?;
                put_at = Some(Instant::now());
            }
            self.read(start);
            if self.first(Event::Put, |k| k == READY_KEY).is_some() {
                return Ok(());
            }
            if start.elapsed() > WATCH_READY_MAX {
                return Err(format!(
                    "etcdctl watch did not show the bench's own write of {READY_KEY} within {} s",
                    WATCH_READY_MAX.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Takes in what etcdctl printed so far; events are stamped with the time since
    /// `start` at which they were read.
    fn read(&mut self, start: Instant) {
        use std::io::Read;
        let mut chunk = [0u8; 4096];
        // Bounded: a pipe holds at most 64 KiB, and every read takes some of it.
        for _ in 0..64 {
            match self.out.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => self.parser.feed(&chunk[..n], start.elapsed()),
            }
        }
    }

    /// When the first event of `kind` on a key `wanted` was read.
    fn first(&self, kind: Event, wanted: impl Fn(&str) -> bool) -> Option<Duration> {
        self.parser
            .events
            .iter()
            .find(|(k, key, _)| *k == kind && wanted(key))
            .map(|(_, _, at)| *at)
    }
}

impl Drop for BlockWatch {
    fn drop(&mut self) {
        // Our own child, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Lines of `etcdctl watch` to events.
#[derive(Debug, Default)]
struct WatchParser {
    partial: String,
    kind: Option<Event>,
    events: Vec<(Event, String, Duration)>,
}

impl WatchParser {
    fn feed(&mut self, bytes: &[u8], at: Duration) {
        self.partial.push_str(&String::from_utf8_lossy(bytes));
        while let Some(end) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=end).collect();
            let line = line.trim_end();
            match (self.kind.take(), line) {
                (Some(kind), key) => self.events.push((kind, key.to_string(), at)),
                (None, "PUT") => self.kind = Some(Event::Put),
                (None, "DELETE") => self.kind = Some(Event::Delete),
                (None, _) => {} // a value
            }
        }
    }
}

/// Host folders and the etcd endpoint for a ctnet or agent process.
fn host_env(cmd: &mut Command, host: &Host) {
    cmd.env("CTNET_STATE_DIR", host.dir.join("state"))
        .env("CTNET_RUN_DIR", host.dir.join("run"))
        .env("CTNET_NETNS_DIR", host.netns_dir())
        .env("CTNET_ETC_NETNS_DIR", host.dir.join("etc-netns"))
        .env("CTNET_ETCD_ENDPOINTS", ETCD_URL);
}

/// A veth from the underlay switch (`port`, in the world) to `eth0` in `ns`, with
/// `address/24` on it, both up.
fn plug(
    sock: &mut RtSocket,
    underlay: u32,
    ns: &Netns,
    port: &str,
    address: Ipv4Addr,
) -> Result<(), String> {
    link::create_veth(
        sock,
        &VethSpec {
            name: &ifname(port)?,
            peer_name: &ifname("eth0")?,
            peer_netns: ns.as_fd(),
            master: Some(underlay),
            mtu: None,
            peer_mac: None,
        },
    )
    .map_err(|e| format!("underlay port {port}: {e}"))?;
    ns.within(|| {
        let mut sock = RtSocket::open()?;
        let index = link::index_of(&mut sock, "eth0")?.unwrap_or(0);
        sock.execute_all(vec![
            link::set_up_request(ctnet_kernel::LOOPBACK_INDEX, "lo"),
            link::set_up_request(index, "eth0"),
            addr::add_request(index, address, 24, "eth0"),
        ])
    })
    .map_err(|e| format!("configure eth0 {address} in {}: {e}", ns.path().display()))
}

fn ifname(name: &str) -> Result<IfName, String> {
    IfName::new(name).map_err(|e| e.to_string())
}

/// The container's address in the overlay.
fn overlay_address(ns: &Netns) -> Result<Ipv4Addr, String> {
    let addresses = ns
        .within(|| addr::list(&mut RtSocket::open()?))
        .map_err(|e| e.to_string())?;
    addresses
        .iter()
        .map(|a| a.address)
        .find(|a| in_overlay(*a))
        .ok_or_else(|| format!("no {SUBNET} address in {}", ns.path().display()))
}

/// A listener on 0.0.0.0:`port` inside `ns`: the kernel completes connections to it
/// without an accept.
fn listen(ns: &Netns, port: u16) -> Result<TcpListener, String> {
    ns.within(|| {
        TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))
            .map_err(|e| ctnet_kernel::Error::io(format!("listen on port {port}"), e))
    })
    .map_err(|e| format!("a listener in {}: {e}", ns.path().display()))
}

/// Whether a connection from inside `ns` to `target` completes within
/// [`PROBE_TIMEOUT`]; unreachable and timed out are both "not yet".
fn connects(ns: &Netns, target: SocketAddr) -> Result<bool, String> {
    let outcome = ns
        .within(|| Ok(TcpStream::connect_timeout(&target, PROBE_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    match outcome {
        Ok(_) => Ok(true),
        Err(e) if not_yet(&e) => Ok(false),
        Err(e) => Err(format!("connect to {target} from h1's container: {e}")),
    }
}

/// The errors of a path not yet there (no route, no neighbour, dropped, reset by a
/// firewall not yet told).
fn not_yet(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        e.kind(),
        ErrorKind::TimedOut
            | ErrorKind::HostUnreachable
            | ErrorKind::NetworkUnreachable
            | ErrorKind::ConnectionRefused
            | ErrorKind::ConnectionReset
    ) || matches!(
        e.raw_os_error(),
        Some(libc::EHOSTUNREACH | libc::ENETUNREACH)
    )
}

fn push_run(runs: &mut Result<Vec<f64>, String>, run: &dyn Fn() -> Result<f64, String>) {
    if let Ok(done) = runs {
        match run() {
            Ok(gbits) => done.push(gbits),
            Err(e) => *runs = Err(e),
        }
    }
}

/// The median of some durations (the mean of the middle two for an even count).
pub fn median(values: &[Duration]) -> Option<Duration> {
    let secs: Vec<f64> = values.iter().map(Duration::as_secs_f64).collect();
    datapath::median(&secs).map(Duration::from_secs_f64)
}

/// The largest of some durations.
pub fn max(values: &[Duration]) -> Option<Duration> {
    values.iter().copied().max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let quick = Size::new(true, 20, 3, 30);
        assert_eq!(quick.hosts, [3]);
        assert_eq!(
            (quick.rounds, quick.attaches, quick.iperf_seconds),
            (1, 5, 1)
        );
        let full = Size::new(false, 20, 3, 30);
        assert_eq!(full.hosts, [3, 20]);
        assert_eq!((full.rounds, full.attaches), (3, 30));
        assert_eq!(Size::new(false, 3, 2, 10).hosts, [3]);
    }

    #[test]
    fn the_overlay_subnet_and_the_underlay_addresses() {
        assert!(in_overlay(Ipv4Addr::new(10, 50, 7, 0)));
        assert!(in_overlay(Ipv4Addr::new(10, 50, 255, 255)));
        assert!(!in_overlay(Ipv4Addr::new(10, 51, 0, 0)));
        assert!(!in_overlay(Ipv4Addr::new(10, 60, 0, 2)));
        assert_eq!(underlay_addr(1), Ipv4Addr::new(192, 0, 2, 11));
        assert_eq!(underlay_addr(MAX_HOSTS), Ipv4Addr::new(192, 0, 2, 60));
    }

    #[test]
    fn medians_and_maxima_of_durations() {
        let ms = Duration::from_millis;
        assert_eq!(median(&[ms(3), ms(1), ms(2)]), Some(ms(2)));
        assert_eq!(max(&[ms(3), ms(1), ms(2)]), Some(ms(3)));
        assert_eq!(median(&[]), None);
        let t = Throughput {
            overlay: Ok(vec![2.0, 1.0, 3.0]),
            underlay: Ok(vec![8.0, 5.0, 10.0]),
        };
        assert_eq!(t.ratio(), Some(0.25));
        let failed = Throughput {
            overlay: Err("x".into()),
            underlay: Ok(vec![1.0]),
        };
        assert_eq!(failed.ratio(), None);
    }

    #[test]
    fn etcdctl_watch_lines_become_events() {
        let mut p = WatchParser::default();
        let at = Duration::from_millis;
        p.feed(
            b"PUT\n/ctnet/overlay/blocks/ov1/10.50.1.0_24\n{\"block\":",
            at(1),
        );
        p.feed(b"\"10.50.1.0/24\"}\nDEL", at(2));
        p.feed(b"ETE\n/ctnet/overlay/blocks/ov1/10.50.1.0_24\n\n", at(3));
        let key = block_key(Ipv4Addr::new(10, 50, 1, 0));
        assert_eq!(key, "/ctnet/overlay/blocks/ov1/10.50.1.0_24");
        assert_eq!(
            p.events,
            [
                (Event::Put, key.clone(), at(1)),
                (Event::Delete, key, at(3)),
            ]
        );
    }

    #[test]
    fn a_path_not_yet_there_is_not_an_error() {
        let kind = |k| std::io::Error::from(k);
        assert!(not_yet(&kind(std::io::ErrorKind::TimedOut)));
        assert!(not_yet(&std::io::Error::from_raw_os_error(
            libc::EHOSTUNREACH
        )));
        assert!(!not_yet(&kind(std::io::ErrorKind::PermissionDenied)));
    }
}
