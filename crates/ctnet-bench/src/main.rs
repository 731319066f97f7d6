//! ctnet-bench: how long attaching and detaching a container takes with ctnet, with
//! netavark, with the CNI reference plugins and with bare rtnetlink calls, each measured
//! as a container engine experiences it (a whole process per operation, wall clock),
//! inside a throwaway network namespace that the benchmark makes itself.
//!
//! With `--podman` it also times whole `podman run --rm` commands with Podman's own
//! netavark against ctnet in its place (see `podman.rs`).
//!
//! With `--policy` it measures what network policy costs each packet and each new
//! connection with 1 entry, with 10,000 in ctnet's sets and with 10,000 as a linear
//! chain of rules (see `policy.rs`).
//!
//! With `--overlay` it measures overlay networks on simulated hosts: throughput over
//! VXLAN against the bare underlay, attach on an overlay against a bridge network, and
//! how fast the hosts learn of a host that joins or dies (see `overlay.rs`).
//!
//! See docs/benchmarks.md for the method and the figures.

mod child;
mod churn;
mod datapath;
mod dns;
mod layout;
mod lifecycle;
mod observe;
mod overlay;
mod podman;
mod policy;
mod quiet;
mod report;
mod sandbox;
mod stats;
mod systems;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::child::{is_executable, which};
use crate::report::{Curve, Measured, Row};
use crate::sandbox::{Place, World};
use crate::stats::percentile;
use crate::systems::ctnet::Dns;
use crate::systems::floor_process::FloorProgram;
use crate::systems::netavark::Firewall;
use crate::systems::System;

/// Measures container attach/detach for ctnet, netavark, the CNI plugins and the bare
/// kernel, in a throwaway network namespace (run as root; the machine's own network is
/// never touched).
#[derive(Parser, Debug)]
#[command(name = "ctnet-bench", version, about)]
struct Args {
    /// Containers per system in the main run.
    #[arg(long, default_value_t = DEFAULT_N)]
    n: usize,
    /// Scale curve instead of the main run: the per-operation p50 at each N (comma
    /// separated, e.g. 1,100,500,1000), containers attached cumulatively.
    #[arg(long, value_delimiter = ',', value_name = "N,N,...")]
    curve: Vec<usize>,
    /// Rounds of the main table: each runs every system once, one after another; the
    /// ratios are the median of the rounds' ratios, so a slow spell of the machine does
    /// not fall on one system alone.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Containers attached (and then detached) on top of N-1 at each point of the curve.
    #[arg(long, default_value_t = 20)]
    samples: usize,
    /// Also measure ctnet on dual-stack networks (`network create --ipv6` with an IPv6
    /// subnet beside the IPv4 one), in a row beside ctnet's IPv4-only one, with the ratio
    /// dual stack / IPv4 only. Needs a ctnet whose `network create` takes --ipv6; never
    /// implied by --quick.
    #[arg(long)]
    ipv6: bool,
    /// Also measure data-path throughput with iperf3 (3 s per path).
    #[arg(long)]
    datapath: bool,
    /// Smoke test for CI: N=3, no curve, no data path, and the Podman part with 2 runs
    /// of each kind; missing peers (and a missing Podman) are reported and skipped.
    #[arg(long)]
    quick: bool,
    /// After the attach/detach table, also time whole `podman run --rm` commands: with
    /// Podman's own netavark, with ctnet as netavark, with the CNI plugins and with ctnet
    /// as a CNI plugin, each against `--network none`. Needs podman, runc and
    /// busybox-static.
    #[arg(long)]
    podman: bool,
    /// Only the Podman part (implies --podman): no attach/detach table, curve or data path.
    #[arg(long)]
    podman_only: bool,
    /// Rounds of the Podman part: each is one `podman run --rm` of each kind, per back end.
    #[arg(long, default_value_t = 20)]
    podman_runs: usize,
    /// The ctnet binary [default: `ctnet` next to this program, else from PATH].
    #[arg(long, value_name = "PATH")]
    ctnet: Option<PathBuf>,
    /// netavark 1.x (its iptables driver).
    #[arg(long, value_name = "PATH", default_value = "/usr/lib/podman/netavark")]
    netavark: PathBuf,
    /// netavark 2.x, measured with NETAVARK_FW=nftables when given.
    #[arg(long, value_name = "PATH")]
    netavark2: Option<PathBuf>,
    /// Folder of the CNI reference plugins (bridge, host-local, portmap).
    #[arg(long, value_name = "DIR", default_value = "/usr/lib/cni")]
    cni_dir: PathBuf,
    /// aardvark-dns 1.x, the DNS server ctnet-agent's queries per second are compared with.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/usr/lib/podman/aardvark-dns"
    )]
    aardvark: PathBuf,
    /// Only the DNS part (queries per second and memory of ctnet-agent and aardvark-dns):
    /// no attach/detach table, curve, data path or Podman part.
    #[arg(long)]
    dns_only: bool,
    /// Only the whole-command figures: `ctnet run` (none, a network, with -p), `unshare
    /// -n true`, netns add + attach + detach + netns rm as four processes, the
    /// whole-process kernel floor, and attach/detach under churn. They also run after
    /// the main table unless --podman-only, --dns-only or --curve.
    #[arg(long)]
    run: bool,
    /// Turns of the whole-command figures: each runs every command once.
    #[arg(long, default_value_t = DEFAULT_RUN_TURNS)]
    run_turns: usize,
    /// Only the observation commands: `ctnet inspect`, `ctnet topology` and four `ctnet
    /// trace`s (three answered: same bridge, masquerade, DNAT; one dropped), each a whole
    /// process, with 2 containers on one network and again with --observe-n. `--quick`
    /// runs them too, with 3 containers and 3 turns.
    #[arg(long)]
    observe: bool,
    /// Containers on the network at the --observe figures' second size (2 to 1023).
    #[arg(long, default_value_t = DEFAULT_OBSERVE_N)]
    observe_n: usize,
    /// Turns of the --observe figures at each size: each runs every command once.
    #[arg(long, default_value_t = DEFAULT_OBSERVE_RUNS)]
    observe_runs: usize,
    /// Only network policy: throughput (iperf3), request/response and connection rates
    /// between two containers of one bridge with no policy, 1 entry, --policy-entries in
    /// ctnet's sets and the same as a linear chain of rules; and `ctnet policy add` with
    /// 1 and with --policy-entries present. `--quick` runs it too, with 100 entries and
    /// one round.
    #[arg(long)]
    policy: bool,
    /// Policy entries of the --policy part's large setups (2 to 50000).
    #[arg(long, default_value_t = DEFAULT_POLICY_ENTRIES)]
    policy_entries: usize,
    /// Rounds of the --policy part: each measures every setup once, in turns.
    #[arg(long, default_value_t = DEFAULT_POLICY_ROUNDS)]
    policy_rounds: usize,
    /// Only overlay networks, on simulated hosts (namespaces on one underlay bridge, one
    /// etcd member, a ctnet-agent per host): iperf3 container to container over VXLAN
    /// against the bare underlay; `ctnet attach` on an overlay against a bridge network;
    /// how long the other hosts take to route to a host that joins and to drop one whose
    /// agent is killed, with 3 and with --overlay-hosts hosts. `--quick` runs it too, with
    /// 3 hosts, one round and 5 attaches.
    #[arg(long)]
    overlay: bool,
    /// Hosts of the --overlay part's larger cluster (3 to 50).
    #[arg(long, default_value_t = DEFAULT_OVERLAY_HOSTS)]
    overlay_hosts: usize,
    /// Rounds of the --overlay part: of the throughput pair, and joins and losses at each
    /// cluster size.
    #[arg(long, default_value_t = DEFAULT_OVERLAY_ROUNDS)]
    overlay_rounds: usize,
    /// Timed attaches to each network (overlay and bridge) of the --overlay part.
    #[arg(long, default_value_t = DEFAULT_OVERLAY_ATTACHES)]
    overlay_attaches: usize,
}

const DEFAULT_N: usize = 100;
const DEFAULT_RUN_TURNS: usize = 100;
const DEFAULT_OBSERVE_N: usize = 1000;
const DEFAULT_OBSERVE_RUNS: usize = 20;
const DEFAULT_POLICY_ENTRIES: usize = 10_000;
const DEFAULT_POLICY_ROUNDS: usize = 5;
const DEFAULT_OVERLAY_HOSTS: usize = 20;
const DEFAULT_OVERLAY_ROUNDS: usize = 3;
const DEFAULT_OVERLAY_ATTACHES: usize = 30;

impl Args {
    /// Refuses values the run cannot honour, before anything is set up.
    fn check(&self) -> Result<(), String> {
        let max = layout::MAX_CONTAINERS;
        if self.n == 0 || self.n > max {
            return Err(format!("--n {}: give 1 to {max} containers", self.n));
        }
        if let Some(bad) = self.curve.iter().find(|n| **n == 0 || **n > max) {
            return Err(format!(
                "--curve: {bad} is out of range; give points from 1 to {max}"
            ));
        }
        if self.podman_runs == 0 || self.podman_runs > 1000 {
            return Err(format!(
                "--podman-runs {}: give 1 to 1000 rounds",
                self.podman_runs
            ));
        }
        if self.dns_only && (self.podman_only || self.ipv6 || !self.curve.is_empty()) {
            return Err(
                "--dns-only runs the DNS part alone; leave out --podman-only, --ipv6 and --curve"
                    .into(),
            );
        }
        if self.run
            && (self.observe
                || self.podman_only
                || self.podman
                || self.dns_only
                || self.ipv6
                || self.datapath
                || self.rounds != 1
                || !self.curve.is_empty())
        {
            return Err(
                "--run measures whole commands alone; leave out --observe, --podman, --podman-only, --dns-only, --ipv6, --datapath, --rounds and --curve (its own count is --run-turns)"
                    .into(),
            );
        }
        if self.observe
            && (self.podman_only
                || self.podman
                || self.dns_only
                || self.ipv6
                || self.datapath
                || self.rounds != 1
                || !self.curve.is_empty()
                || self.n != DEFAULT_N
                || self.run_turns != DEFAULT_RUN_TURNS)
        {
            return Err(
                "--observe measures the observation commands alone; leave out --podman, --podman-only, --dns-only, --ipv6, --datapath, --rounds, --curve, --n and --run-turns (its own sizes are --observe-n and --observe-runs)"
                    .into(),
            );
        }
        if self.policy
            && (self.observe
                || self.run
                || self.podman_only
                || self.podman
                || self.dns_only
                || self.ipv6
                || self.datapath
                || self.rounds != 1
                || !self.curve.is_empty()
                || self.n != DEFAULT_N
                || self.run_turns != DEFAULT_RUN_TURNS)
        {
            return Err(
                "--policy measures network policy alone; leave out --observe, --run, --podman, --podman-only, --dns-only, --ipv6, --datapath, --rounds, --curve, --n and --run-turns (its own sizes are --policy-entries and --policy-rounds)"
                    .into(),
            );
        }
        if !self.policy
            && (self.policy_entries != DEFAULT_POLICY_ENTRIES
                || self.policy_rounds != DEFAULT_POLICY_ROUNDS)
        {
            return Err(
                "--policy-entries and --policy-rounds size the --policy part; add --policy".into(),
            );
        }
        if !(2..=policy::MAX_ENTRIES).contains(&self.policy_entries) {
            return Err(format!(
                "--policy-entries {}: give 2 to {} entries",
                self.policy_entries,
                policy::MAX_ENTRIES
            ));
        }
        if self.policy_rounds == 0 || self.policy_rounds > 50 {
            return Err(format!(
                "--policy-rounds {}: give 1 to 50 rounds",
                self.policy_rounds
            ));
        }
        self.check_overlay()?;
        if !self.observe
            && (self.observe_n != DEFAULT_OBSERVE_N || self.observe_runs != DEFAULT_OBSERVE_RUNS)
        {
            return Err(
                "--observe-n and --observe-runs size the --observe figures; add --observe".into(),
            );
        }
        if !(observe::SMALL..=observe::MAX_N).contains(&self.observe_n) {
            return Err(format!(
                "--observe-n {}: give {} to {} containers (one bridge)",
                self.observe_n,
                observe::SMALL,
                observe::MAX_N
            ));
        }
        if self.observe_runs == 0 || self.observe_runs > 1000 {
            return Err(format!(
                "--observe-runs {}: give 1 to 1000 turns",
                self.observe_runs
            ));
        }
        if self.run_turns == 0 || self.run_turns > 10_000 {
            return Err(format!(
                "--run-turns {}: give 1 to 10000 turns",
                self.run_turns
            ));
        }
        if self.ipv6 && self.podman_only {
            return Err(
                "--ipv6 measures attach and detach, which --podman-only leaves out; give one of them"
                    .into(),
            );
        }
        if self.rounds == 0 || self.rounds > 50 {
            return Err(format!("--rounds {}: give 1 to 50 rounds", self.rounds));
        }
        if self.samples == 0 || self.samples > 1000 {
            return Err(format!("--samples {}: give 1 to 1000 tries", self.samples));
        }
        if let Some(top) = self.curve.iter().max() {
            if top + self.samples - 1 > max {
                return Err(format!(
                    "--curve {top} with --samples {} needs {} containers, over the limit of {max}",
                    self.samples,
                    top + self.samples - 1
                ));
            }
        }
        Ok(())
    }

    /// `--overlay` alone, and its sizes only with it.
    fn check_overlay(&self) -> Result<(), String> {
        if self.overlay
            && (self.policy
                || self.observe
                || self.run
                || self.podman_only
                || self.podman
                || self.dns_only
                || self.ipv6
                || self.datapath
                || self.rounds != 1
                || !self.curve.is_empty()
                || self.n != DEFAULT_N
                || self.run_turns != DEFAULT_RUN_TURNS)
        {
            return Err(
                "--overlay measures overlay networks alone; leave out --policy, --observe, --run, --podman, --podman-only, --dns-only, --ipv6, --datapath, --rounds, --curve, --n and --run-turns (its own sizes are --overlay-hosts, --overlay-rounds and --overlay-attaches)"
                    .into(),
            );
        }
        if !self.overlay
            && (self.overlay_hosts != DEFAULT_OVERLAY_HOSTS
                || self.overlay_rounds != DEFAULT_OVERLAY_ROUNDS
                || self.overlay_attaches != DEFAULT_OVERLAY_ATTACHES)
        {
            return Err(
                "--overlay-hosts, --overlay-rounds and --overlay-attaches size the --overlay part; add --overlay"
                    .into(),
            );
        }
        if !(overlay::SMALL_HOSTS..=overlay::MAX_HOSTS).contains(&self.overlay_hosts) {
            return Err(format!(
                "--overlay-hosts {}: give {} to {} hosts",
                self.overlay_hosts,
                overlay::SMALL_HOSTS,
                overlay::MAX_HOSTS
            ));
        }
        if self.overlay_rounds == 0 || self.overlay_rounds > 20 {
            return Err(format!(
                "--overlay-rounds {}: give 1 to 20 rounds",
                self.overlay_rounds
            ));
        }
        if self.overlay_attaches == 0 || self.overlay_attaches > 1000 {
            return Err(format!(
                "--overlay-attaches {}: give 1 to 1000 attaches",
                self.overlay_attaches
            ));
        }
        Ok(())
    }

    /// Rounds of the main table; one in quick mode.
    fn main_rounds(&self) -> usize {
        if self.quick {
            1
        } else {
            self.rounds
        }
    }

    /// Containers in the main run.
    fn containers(&self) -> usize {
        if self.quick {
            3
        } else {
            self.n
        }
    }

    /// Whether the Podman part runs: asked for, or as part of the smoke test.
    fn wants_podman(&self) -> bool {
        !self.dns_only
            && !self.run
            && !self.observe
            && !self.policy
            && !self.overlay
            && (self.podman || self.podman_only || self.quick)
    }

    /// Whether the DNS part runs: unless only the Podman part is asked for.
    fn wants_dns(&self) -> bool {
        !self.podman_only
            && !self.run
            && !self.observe
            && !self.policy
            && !self.overlay
            && self.curve.is_empty()
    }

    /// Whether the attach/detach table runs.
    fn wants_main_table(&self) -> bool {
        !self.podman_only
            && !self.dns_only
            && !self.run
            && !self.observe
            && !self.policy
            && !self.overlay
    }

    /// Whether the overlay part runs: asked for, or as part of the smoke test (when it
    /// runs the main table).
    fn wants_overlay(&self) -> bool {
        self.overlay || (self.quick && self.wants_main_table())
    }

    /// The overlay part's size; 3 hosts, one round and 5 attaches in quick mode.
    fn overlay_size(&self) -> overlay::Size {
        overlay::Size::new(
            self.quick,
            self.overlay_hosts,
            self.overlay_rounds,
            self.overlay_attaches,
        )
    }

    /// Whether the policy part runs: asked for, or as part of the smoke test (when it
    /// runs the main table).
    fn wants_policy(&self) -> bool {
        self.policy || (self.quick && self.wants_main_table())
    }

    /// The policy part's size; 100 entries and one round in quick mode.
    fn policy_size(&self) -> policy::Size {
        policy::Size::new(self.quick, self.policy_entries, self.policy_rounds)
    }

    /// Whether the observation commands run: asked for, or as part of the smoke test
    /// (when it runs the main table).
    fn wants_observe(&self) -> bool {
        self.observe || (self.quick && self.wants_main_table())
    }

    /// Containers and turns of the observation commands; 3 and 3 in quick mode.
    fn observe_size(&self) -> (usize, usize) {
        if self.quick {
            (3, 3)
        } else {
            (self.observe_n, self.observe_runs)
        }
    }

    /// Whether the whole-command figures run: asked for, or after the main table.
    fn wants_lifecycle(&self) -> bool {
        self.run || (self.wants_main_table() && self.curve.is_empty())
    }

    /// Turns of the whole-command figures; three in quick mode.
    fn lifecycle_turns(&self) -> usize {
        if self.quick {
            3
        } else {
            self.run_turns
        }
    }

    /// How much churn: N containers in the background and 4 loops of 25 containers
    /// twice; in quick mode 3 and 4 loops of 2 once.
    fn churn_size(&self) -> churn::Size {
        if self.quick {
            churn::Size {
                background: 3,
                per_loop: 2,
                rounds: 1,
            }
        } else {
            churn::Size {
                background: self.n.min(layout::MAX_CONTAINERS - churn::LOOPS * 25),
                per_loop: 25,
                rounds: 2,
            }
        }
    }

    /// Rounds of the Podman part.
    fn podman_rounds(&self) -> usize {
        if self.quick {
            2
        } else {
            self.podman_runs
        }
    }

    /// Curve points, ascending, once each; none in quick mode.
    fn curve_points(&self) -> Vec<usize> {
        if self.quick {
            return Vec::new();
        }
        let mut points = self.curve.clone();
        points.sort_unstable();
        points.dedup();
        points
    }
}

/// How long to wait at most for the machine to go quiet before a measured batch.
pub(crate) const QUIET_MAX: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = args.check() {
        eprintln!("ctnet-bench: {e}");
        return ExitCode::from(2);
    }
    match sandbox::place() {
        Place::Outside => match sandbox::reexec_inside() {
            Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
            Err(e) => {
                eprintln!("ctnet-bench: {e}");
                ExitCode::from(2)
            }
        },
        Place::Inside(root) => match run(&args, &root) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(e) => {
                eprintln!("ctnet-bench: {e}");
                ExitCode::from(2)
            }
        },
    }
}

/// What kind of system an entry is, with what it needs to run.
enum Kind {
    Floor {
        with_netns: bool,
    },
    FloorProcess(FloorProgram),
    Ctnet {
        bin: PathBuf,
        dual_stack: bool,
        dns: Dns,
    },
    Netavark(PathBuf, Firewall),
    Cni(PathBuf),
}

/// A system to measure, or why it cannot be.
struct Entry {
    label: String,
    kind: Result<Kind, String>,
}

/// Inside the sandbox: every measurement. Ok(false) when some measurement failed.
fn run(args: &Args, root: &Path) -> Result<bool, String> {
    sandbox::prepare_inside(root)?;
    // Before the first world replaces /sys: Podman needs the machine's cgroups.
    let cgroups = if args.wants_podman() {
        sandbox::keep_host_cgroups(root)
    } else {
        Ok(())
    };
    let ctnet = find_ctnet(args)?;
    if args.ipv6 {
        systems::ctnet::check_dual_stack(&ctnet)?;
    }
    if args.observe && !observe::has_trace(&ctnet) {
        return Err(format!(
            "--observe: the ctnet under test ({}) has no `trace` command; build a ctnet that has it (or pass --ctnet PATH to one)",
            ctnet.display()
        ));
    }
    print_machine();
    let floor = FloorProgram::install(root);
    let mut ok = true;
    if args.wants_main_table() {
        attach_detach_part(args, root, &ctnet, &floor, &mut ok);
    }
    if args.wants_lifecycle() {
        lifecycle_part(args, root, &ctnet, &floor, &mut ok);
    }
    if args.wants_dns() {
        dns_part(args, root, &ctnet, &mut ok);
    }
    if args.wants_observe() {
        observe_part(args, root, &ctnet, &mut ok);
    }
    if args.wants_policy() {
        policy_part(args, root, &ctnet, &mut ok);
    }
    if args.wants_overlay() {
        overlay_part(args, root, &ctnet, &mut ok);
    }
    if args.wants_podman() {
        podman_part(args, root, &ctnet, cgroups, &mut ok);
    }
    Ok(ok)
}

/// Network policy's cost (see policy.rs). With a ctnet that has no `policy`, the rows
/// that need it are skipped, and said so; that fails a `--policy` run, not the smoke
/// test (as a ctnet without `trace` does not).
fn policy_part(args: &Args, root: &Path, ctnet: &Path, ok: &mut bool) {
    let size = args.policy_size();
    let iperf3 = which("iperf3");
    if iperf3.is_none() {
        println!(
            "\nnetwork policy: iperf3 not installed (apt-get install iperf3): no throughput column"
        );
    }
    match policy::measure(root, ctnet, iperf3, size, !args.quick) {
        Ok(measured) => {
            if args.policy {
                *ok &= measured.all_ok() && measured.iperf3;
            } else {
                *ok &= measured.rows.iter().all(|r| {
                    r.runs
                        .as_ref()
                        .err()
                        .is_none_or(|e| e.starts_with("skipped"))
                });
            }
            report::print_policy(&measured);
        }
        Err(e) => {
            eprintln!("network policy: {e}");
            println!("\nnetwork policy: failed: {e}");
            *ok = false;
        }
    }
}

/// Overlay networks on simulated hosts (see overlay.rs). A ctnet without overlays, or
/// a missing ctnet-agent, etcd or etcdctl, skips the part and says so; that fails an
/// `--overlay` run, not the smoke test.
fn overlay_part(args: &Args, root: &Path, ctnet: &Path, ok: &mut bool) {
    let programs = match overlay_programs(ctnet) {
        Ok(programs) => programs,
        Err(why) => {
            println!("\noverlay networks: skipped: {why}");
            *ok &= !args.overlay;
            return;
        }
    };
    if programs.iperf3.is_none() {
        println!(
            "\noverlay networks: iperf3 not installed (apt-get install iperf3): no throughput"
        );
    }
    match overlay::measure(root, &programs, args.overlay_size(), !args.quick) {
        Ok(measured) => {
            *ok &= measured.all_ok() && (measured.throughput.is_some() || !args.overlay);
            report::print_overlay(&measured);
        }
        Err(e) => {
            eprintln!("overlay networks: {e}");
            println!("\noverlay networks: failed: {e}");
            *ok = false;
        }
    }
}

/// What the overlay part runs, or why it cannot.
fn overlay_programs(ctnet: &Path) -> Result<overlay::Programs, String> {
    if !overlay::has_overlay(ctnet) {
        return Err(format!(
            "the ctnet under test ({}) has no overlay networks (`network create --driver overlay`)",
            ctnet.display()
        ));
    }
    let agent = dns::servers::agent_beside(ctnet);
    if !is_executable(&agent) {
        return Err(format!(
            "no ctnet-agent at {} (build it with `cargo build -p ctnet-agent`)",
            agent.display()
        ));
    }
    let etcd = which("etcd").ok_or("etcd not installed (apt-get install etcd-server)")?;
    if !is_executable(&etcd.with_file_name("etcdctl")) {
        return Err(format!(
            "no etcdctl beside {} (apt-get install etcd-client)",
            etcd.display()
        ));
    }
    Ok(overlay::Programs {
        ctnet: ctnet.to_path_buf(),
        agent,
        etcd,
        iperf3: which("iperf3"),
    })
}

/// The observation commands at two sizes (see observe.rs); skipped, and said so, with a
/// ctnet that has no `trace` (only in quick mode: `--observe` refuses it up front).
fn observe_part(args: &Args, root: &Path, ctnet: &Path, ok: &mut bool) {
    if !observe::has_trace(ctnet) {
        println!("\nobservation commands: skipped: the ctnet under test has no `trace`");
        return;
    }
    let (n, runs) = args.observe_size();
    match observe::measure(root, ctnet, n, runs, !args.quick) {
        Ok(observed) => {
            *ok &= observed
                .rows
                .iter()
                .all(|r| r.small.is_ok() && r.large.is_ok());
            report::print_observe(&observed);
        }
        Err(e) => {
            eprintln!("observation commands: {e}");
            println!("\nobservation commands: failed: {e}");
            *ok = false;
        }
    }
}

/// The whole commands and the churn (see lifecycle.rs and churn.rs).
fn lifecycle_part(
    args: &Args,
    root: &Path,
    ctnet: &Path,
    floor: &Result<FloorProgram, String>,
    ok: &mut bool,
) {
    let turns = args.lifecycle_turns();
    eprintln!("whole commands: {turns} turns");
    match lifecycle::measure(root, ctnet, floor.clone(), turns) {
        Ok(life) => {
            *ok &= life.rows.iter().all(|r| {
                r.runs
                    .as_ref()
                    .err()
                    .is_none_or(|e| e.contains("skipped") || e.starts_with("not built"))
            });
            for row in &life.rows {
                if let Err(e) = &row.runs {
                    eprintln!("{}: {e}", row.label);
                }
            }
            report::print_lifecycle(&life);
        }
        Err(e) => {
            eprintln!("whole commands: {e}");
            println!("\nwhole commands: failed: {e}");
            *ok = false;
        }
    }
    let size = args.churn_size();
    eprintln!(
        "churn: {} attached, {} loops",
        size.background,
        churn::LOOPS
    );
    let rows = churn::measure(root, ctnet, floor.clone(), size);
    for row in &rows {
        if let Err(e) = &row.outcome {
            eprintln!("churn, {}: {e}", row.label);
            *ok &= e.starts_with("not built");
        }
    }
    report::print_churn(&rows, size);
}

/// The attach/detach table (or the scale curve) and the data path.
fn attach_detach_part(
    args: &Args,
    root: &Path,
    ctnet: &Path,
    floor: &Result<FloorProgram, String>,
    ok: &mut bool,
) {
    let entries = entries(args, ctnet, floor);
    for entry in &entries {
        if let Err(why) = &entry.kind {
            println!("{}: {why}", entry.label);
        }
    }
    let points = args.curve_points();
    if points.is_empty() {
        let n = args.containers();
        let rounds = args.main_rounds();
        let rows = main_run(root, &entries, n, rounds, ok);
        report::print_main(&rows, n, rounds);
        report::print_dual_stack(&rows);
        report::print_dns_on_off(&rows);
        report::print_rounds(&rows);
        report::print_memory(&rows);
    } else {
        let curves = curve_run(root, &entries, &points, args.samples, ok);
        report::print_curve(&curves, args.samples);
    }
    if args.datapath && !args.quick {
        match which("iperf3") {
            None => println!("data path: iperf3 not installed (apt-get install iperf3); skipped"),
            Some(iperf3) => match datapath::measure(root, ctnet.to_path_buf(), &iperf3) {
                Ok(data) => {
                    *ok &= data.paths.iter().all(|p| p.runs.is_ok());
                    for path in &data.paths {
                        if let Err(e) = &path.runs {
                            eprintln!("data path, {}: {e}", path.what);
                        }
                    }
                    report::print_datapath(&data);
                }
                Err(e) => {
                    eprintln!("data path: {e}");
                    println!("data path: failed: {e}");
                    *ok = false;
                }
            },
        }
    }
}

/// Queries per second and memory of ctnet-agent and aardvark-dns (see dns/mod.rs). A
/// missing server is reported and skipped.
fn dns_part(args: &Args, root: &Path, ctnet: &Path, ok: &mut bool) {
    let found = dns::Servers::find(ctnet, &args.aardvark);
    let size = dns::Size::new(args.quick);
    match dns::measure(root, ctnet, &found, size) {
        Ok(rows) => {
            *ok &= rows.iter().all(|r| {
                r.outcome
                    .as_ref()
                    .err()
                    .is_none_or(|e| !e.starts_with("failed"))
            });
            report::print_dns(&rows, size);
        }
        Err(e) => {
            eprintln!("dns: {e}");
            println!();
            println!("DNS: failed: {e}");
            *ok = false;
        }
    }
    dns_in_turns(args, root, ctnet, &found, ok);
}

/// DNS on / DNS off taken in turns in one world (see dns/in_turns.rs); skipped, and said
/// so, without an agent or with a ctnet that has no DNS networks.
fn dns_in_turns(args: &Args, root: &Path, ctnet: &Path, found: &dns::Servers, ok: &mut bool) {
    let agent = match &found.agent {
        Ok(agent) if systems::ctnet::has_dns_flag(ctnet) => agent,
        Ok(_) => {
            println!("\nDNS on / DNS off in turns: skipped: the ctnet under test has no `--dns`");
            return;
        }
        Err(why) => {
            println!("\nDNS on / DNS off in turns: skipped: {why}");
            return;
        }
    };
    let n = if args.quick { 3 } else { args.n.min(500) };
    eprintln!("dns: {n} attaches and detaches with DNS on and off, taken in turns");
    match dns::in_turns::measure(root, ctnet, agent, n) {
        Ok(r) => dns::in_turns::print(&r),
        Err(e) => {
            println!("\nDNS on / DNS off in turns: failed: {e}");
            *ok = false;
        }
    }
}

/// Whole `podman run --rm` commands per network back end. A missing Podman, runc or
/// busybox is reported and skipped; `cgroups` is whether the machine's cgroups could be
/// kept for it.
fn podman_part(args: &Args, root: &Path, ctnet: &Path, cgroups: Result<(), String>, ok: &mut bool) {
    let tools = match podman::find_tools() {
        Ok(tools) => tools,
        Err(why) => {
            println!();
            println!("podman: {why}");
            return;
        }
    };
    if let Err(e) = cgroups {
        eprintln!("podman: {e}");
        println!();
        println!("podman: failed: {e}");
        *ok = false;
        return;
    }
    let entries = podman::entries(ctnet, &args.netavark, &args.cni_dir);
    let runs = args.podman_rounds();
    let rows = podman::measure(root, &tools, &entries, runs, ok);
    report::print_podman(&tools.version, &rows, runs);
}

/// The ctnet binary: `--ctnet`, else `ctnet` beside this program, else PATH.
fn find_ctnet(args: &Args) -> Result<PathBuf, String> {
    if let Some(path) = &args.ctnet {
        return if is_executable(path) {
            Ok(path.clone())
        } else {
            Err(format!(
                "--ctnet {}: no executable there; build it with `cargo build --release` or give the right path",
                path.display()
            ))
        };
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("ctnet")))
        .filter(|p| is_executable(p));
    beside.or_else(|| which("ctnet")).ok_or_else(|| {
        "ctnet not found beside ctnet-bench nor in PATH; build it with `cargo build --release` (it lands beside ctnet-bench) or pass --ctnet PATH".into()
    })
}

/// Every system, in table order, each either ready or with the reason it is skipped.
fn entries(args: &Args, ctnet: &Path, floor: &Result<FloorProgram, String>) -> Vec<Entry> {
    let iptables = which("iptables").is_some();
    let netavark1 = if !is_executable(&args.netavark) {
        Err(format!(
            "not installed at {} (apt-get install netavark); skipped",
            args.netavark.display()
        ))
    } else if !iptables {
        Err("iptables not installed (apt-get install iptables); skipped".into())
    } else {
        Ok(Kind::Netavark(args.netavark.clone(), Firewall::Iptables))
    };
    let netavark2 = match &args.netavark2 {
        None => Err(
            "not measured; pass --netavark2 PATH (docs/benchmarks.md says how to build netavark 2.1.0)"
                .into(),
        ),
        Some(p) if !is_executable(p) => Err(format!("--netavark2 {}: not found; skipped", p.display())),
        Some(_) if which("nft").is_none() => {
            Err("nft not installed (apt-get install nftables); skipped".into())
        }
        Some(p) => Ok(Kind::Netavark(p.clone(), Firewall::Nftables)),
    };
    let plugins = ["bridge", "host-local", "portmap"];
    let cni = if let Some(missing) = plugins
        .iter()
        .find(|p| !is_executable(&args.cni_dir.join(p)))
    {
        Err(format!(
            "not installed: no {} in {} (apt-get install containernetworking-plugins); skipped",
            missing,
            args.cni_dir.display()
        ))
    } else if !iptables {
        Err("iptables not installed (apt-get install iptables); skipped".into())
    } else {
        Ok(Kind::Cni(args.cni_dir.clone()))
    };
    let has_dns = systems::ctnet::has_dns_flag(ctnet);
    let off = if has_dns { Dns::Off } else { Dns::Unknown };
    let agent = dns::servers::agent_beside(ctnet);
    let dns_on = if !has_dns {
        Err(format!(
            "the ctnet under test ({}) has no DNS networks (`network create --dns`); skipped",
            ctnet.display()
        ))
    } else if !is_executable(&agent) {
        Err(format!(
            "no ctnet-agent at {} (build it with `cargo build --release -p ctnet-agent`); skipped",
            agent.display()
        ))
    } else {
        Ok(Kind::Ctnet {
            bin: ctnet.to_path_buf(),
            dual_stack: false,
            dns: Dns::On(agent),
        })
    };
    let mut entries = vec![
        Entry {
            label: "kernel floor".into(),
            kind: Ok(Kind::Floor { with_netns: false }),
        },
        Entry {
            label: "kernel floor (+ netns)".into(),
            kind: Ok(Kind::Floor { with_netns: true }),
        },
        Entry {
            label: "kernel floor, whole process".into(),
            kind: floor.clone().map(Kind::FloorProcess),
        },
        Entry {
            label: "ctnet".into(),
            kind: Ok(Kind::Ctnet {
                bin: ctnet.to_path_buf(),
                dual_stack: false,
                dns: off.clone(),
            }),
        },
        Entry {
            label: "ctnet (DNS on)".into(),
            kind: dns_on,
        },
    ];
    if args.ipv6 {
        entries.push(Entry {
            label: "ctnet (dual stack)".into(),
            kind: Ok(Kind::Ctnet {
                bin: ctnet.to_path_buf(),
                dual_stack: true,
                dns: off,
            }),
        });
    }
    entries.extend([
        Entry {
            label: "netavark".into(),
            kind: netavark1,
        },
        Entry {
            label: "netavark 2.x".into(),
            kind: netavark2,
        },
        Entry {
            label: "cni bridge+portmap".into(),
            kind: cni,
        },
    ]);
    entries
}

/// Builds the system of `kind` inside a fresh world.
fn build(root: &Path, label: &str, kind: &Kind) -> Result<Box<dyn System>, String> {
    let world = World::enter(root, label)?;
    Ok(match kind {
        Kind::Floor { with_netns } => Box::new(systems::floor::Floor::new(world, *with_netns)?),
        Kind::FloorProcess(program) => Box::new(systems::floor_process::FloorProcess::new(
            world,
            program.clone(),
        )?),
        Kind::Ctnet {
            bin,
            dual_stack,
            dns,
        } => Box::new(systems::ctnet::Ctnet::new(
            world,
            bin.clone(),
            *dual_stack,
            dns.clone(),
        )?),
        Kind::Netavark(bin, fw) => {
            Box::new(systems::netavark::Netavark::new(world, bin.clone(), *fw)?)
        }
        Kind::Cni(dir) => Box::new(systems::cni::Cni::new(world, dir.clone())?),
    })
}

/// Runs `f` on the system of `entry` in its own world; returns its label and outcome.
/// The world (namespaces, rules, state) is gone when this returns.
fn with_system<T>(
    root: &Path,
    entry: &Entry,
    ok: &mut bool,
    f: impl FnOnce(&mut dyn System) -> Result<T, String>,
) -> (String, Result<T, String>) {
    let kind = match &entry.kind {
        Ok(kind) => kind,
        Err(why) => return (entry.label.clone(), Err(why.clone())),
    };
    let mut system = match build(root, &entry.label, kind) {
        Ok(system) => system,
        Err(e) => {
            *ok = false;
            eprintln!("{}: {e}", entry.label);
            return (entry.label.clone(), Err(format!("failed: {e}")));
        }
    };
    let label = system.label().to_string();
    let outcome = f(system.as_mut()).map_err(|e| {
        *ok = false;
        eprintln!("{label}: {e}");
        format!("failed: {e}")
    });
    (label, outcome)
}

/// The main run: in each round, for each system in turn, N namespaces made (untimed), N
/// attaches, N detaches, in a fresh world. A system that fails in one round is reported
/// failed and not run again.
fn main_run(root: &Path, entries: &[Entry], n: usize, rounds: usize, ok: &mut bool) -> Vec<Row> {
    let mut rows: Vec<Row> = entries
        .iter()
        .map(|entry| Row {
            label: entry.label.clone(),
            outcome: entry
                .kind
                .as_ref()
                .map(|_| Vec::new())
                .map_err(Clone::clone),
            is_ctnet: matches!(
                &entry.kind,
                Ok(Kind::Ctnet {
                    dual_stack: false,
                    dns,
                    ..
                }) if !matches!(dns, Dns::On(_))
            ),
            is_dns_on: matches!(
                &entry.kind,
                Ok(Kind::Ctnet {
                    dns: Dns::On(_),
                    ..
                })
            ),
            is_dual_stack: matches!(
                entry.kind,
                Ok(Kind::Ctnet {
                    dual_stack: true,
                    ..
                })
            ),
        })
        .collect();
    for round in 1..=rounds {
        for (entry, row) in entries.iter().zip(rows.iter_mut()) {
            let Ok(done) = row.outcome.as_mut() else {
                continue;
            };
            let (label, outcome) = with_system(root, entry, ok, |system| {
                let of = if rounds > 1 {
                    format!(" (round {round} of {rounds})")
                } else {
                    String::new()
                };
                eprintln!("{}: {n} attaches, then {n} detaches{of}", system.label());
                attach_detach_all(system, n)
            });
            row.label = label;
            match outcome {
                Ok(measured) => done.push(measured),
                Err(why) => row.outcome = Err(why),
            }
        }
    }
    rows
}

/// Prepares containers 0..n, attaches them all, then detaches them all, timing each.
fn attach_detach_all(system: &mut dyn System, n: usize) -> Result<Measured, String> {
    for i in 0..n {
        system.prepare(i)?;
    }
    quiet::wait_for_quiet(QUIET_MAX, &format!("{}'s attaches", system.label()));
    let attach = (0..n)
        .map(|i| system.attach(i))
        .collect::<Result<Vec<_>, _>>()?;
    let detach = (0..n)
        .map(|i| system.detach(i))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Measured { attach, detach })
}

/// The scale curve for every system.
fn curve_run(
    root: &Path,
    entries: &[Entry],
    points: &[usize],
    samples: usize,
    ok: &mut bool,
) -> Vec<Curve> {
    entries
        .iter()
        .map(|entry| {
            let (label, points) =
                with_system(root, entry, ok, |system| curve_of(system, points, samples));
            Curve { label, points }
        })
        .collect()
}

/// At each point N (ascending): attach containers until N-1 are attached, then attach
/// `samples` more one after another (the Nth onwards) and detach those again, newest
/// first, timing each; keep the p50 of each kind. The containers of the fill stay
/// attached, so later points see every earlier container's rules and devices.
///
/// Attaches follow attaches and detaches follow detaches, as in the main run: a detach
/// leaves deferred work in the kernel (RCU callbacks, device clean-up) that an attach
/// issued right after it in the same process would otherwise be charged for.
fn curve_of(
    system: &mut dyn System,
    points: &[usize],
    samples: usize,
) -> Result<Vec<(usize, Duration, Duration)>, String> {
    let mut filled = 0;
    let mut out = Vec::new();
    for &n in points {
        eprintln!("{}: curve, N={n}", system.label());
        while filled < n - 1 {
            system.prepare(filled)?;
            system.attach(filled)?;
            filled += 1;
        }
        let probes = filled..filled + samples;
        for i in probes.clone() {
            system.prepare(i)?;
        }
        quiet::wait_for_quiet(QUIET_MAX, &format!("{} at N={n}", system.label()));
        let attach = probes
            .clone()
            .map(|i| system.attach(i).map(|c| c.wall))
            .collect::<Result<Vec<_>, _>>()?;
        let detach = probes
            .rev()
            .map(|i| system.detach(i).map(|c| c.wall))
            .collect::<Result<Vec<_>, _>>()?;
        let p50 = |s: &[Duration]| percentile(s, 50.0).unwrap_or_default();
        out.push((n, p50(&attach), p50(&detach)));
    }
    Ok(out)
}

/// The machine the figures come from: kernel, CPUs, CPU model.
fn print_machine() {
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_else(|_| "?".into());
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "?".into());
    println!("machine: Linux {kernel}, {cpus} CPUs, {model}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(args: &[&str]) -> Result<(), String> {
        let args = Args::try_parse_from(std::iter::once("ctnet-bench").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        args.check()
    }

    /// Every part of the benchmark but `part` itself, with a value where it takes one.
    const PARTS: &[&[&str]] = &[
        &["--overlay"],
        &["--policy"],
        &["--observe"],
        &["--run"],
        &["--podman"],
        &["--podman-only"],
        &["--dns-only"],
        &["--ipv6"],
        &["--datapath"],
        &["--rounds", "3"],
        &["--curve", "1,10"],
        &["--n", "50"],
        &["--run-turns", "5"],
    ];

    /// `part` taken beside any other part is refused as a part run alone.
    fn refused_beside_every_other_part(part: &str) {
        for other in PARTS.iter().filter(|o| o[0] != part) {
            let args = [&[part][..], other].concat();
            let err = check(&args).unwrap_err();
            assert!(err.contains("alone"), "{args:?}: {err}");
        }
    }

    #[test]
    fn run_alone_is_taken_and_what_it_would_leave_out_is_refused() {
        assert_eq!(check(&["--run"]), Ok(()));
        assert_eq!(check(&["--run", "--quick", "--run-turns", "5"]), Ok(()));
        for other in [
            &["--podman"][..],
            &["--podman-only"],
            &["--dns-only"],
            &["--ipv6"],
            &["--datapath"],
            &["--rounds", "3"],
            &["--curve", "1,10"],
        ] {
            let args = [&["--run"][..], other].concat();
            let err = check(&args).unwrap_err();
            assert!(
                err.contains("--run measures whole commands alone"),
                "{args:?}: {err}"
            );
        }
        assert!(check(&["--run", "--run-turns", "0"])
            .unwrap_err()
            .contains("--run-turns 0"));
    }

    #[test]
    fn observe_alone_is_taken_and_what_it_would_leave_out_is_refused() {
        assert_eq!(check(&["--observe"]), Ok(()));
        assert_eq!(
            check(&[
                "--observe",
                "--quick",
                "--observe-n",
                "50",
                "--observe-runs",
                "5"
            ]),
            Ok(())
        );
        refused_beside_every_other_part("--observe");
        for bad in ["0", "1", "1024"] {
            assert!(check(&["--observe", "--observe-n", bad])
                .unwrap_err()
                .contains(&format!("--observe-n {bad}")));
        }
        assert!(check(&["--observe", "--observe-runs", "0"])
            .unwrap_err()
            .contains("--observe-runs 0"));
        assert!(check(&["--observe-n", "10"])
            .unwrap_err()
            .contains("add --observe"));
    }

    #[test]
    fn policy_alone_is_taken_sized_by_its_own_flags_and_run_small_by_quick() {
        assert_eq!(check(&["--policy"]), Ok(()));
        assert_eq!(
            check(&[
                "--policy",
                "--quick",
                "--policy-entries",
                "500",
                "--policy-rounds",
                "2"
            ]),
            Ok(())
        );
        refused_beside_every_other_part("--policy");
        for bad in ["0", "1", "50001"] {
            assert!(check(&["--policy", "--policy-entries", bad])
                .unwrap_err()
                .contains(&format!("--policy-entries {bad}")));
        }
        assert!(check(&["--policy", "--policy-rounds", "0"])
            .unwrap_err()
            .contains("--policy-rounds 0"));
        assert!(check(&["--policy-entries", "100"])
            .unwrap_err()
            .contains("add --policy"));
        let parse = |args: &[&str]| {
            Args::try_parse_from(std::iter::once("ctnet-bench").chain(args.iter().copied()))
                .unwrap()
        };
        let policy = parse(&["--policy"]);
        assert!(policy.wants_policy());
        assert!(!policy.wants_main_table() && !policy.wants_lifecycle());
        assert!(!policy.wants_dns() && !policy.wants_podman() && !policy.wants_observe());
        assert_eq!(policy.policy_size().entries, 10_000);
        assert_eq!(policy.policy_size().rounds, 5);
        let quick = parse(&["--quick"]);
        assert!(quick.wants_policy());
        assert_eq!(quick.policy_size().entries, 100);
        assert!(!parse(&["--quick", "--observe"]).wants_policy());
        assert!(!parse(&[]).wants_policy());
    }

    #[test]
    fn overlay_alone_is_taken_sized_by_its_own_flags_and_run_small_by_quick() {
        assert_eq!(check(&["--overlay"]), Ok(()));
        assert_eq!(
            check(&[
                "--overlay",
                "--quick",
                "--overlay-hosts",
                "10",
                "--overlay-rounds",
                "2",
                "--overlay-attaches",
                "50"
            ]),
            Ok(())
        );
        refused_beside_every_other_part("--overlay");
        for bad in ["2", "51"] {
            assert!(check(&["--overlay", "--overlay-hosts", bad])
                .unwrap_err()
                .contains(&format!("--overlay-hosts {bad}")));
        }
        assert!(check(&["--overlay", "--overlay-rounds", "0"])
            .unwrap_err()
            .contains("--overlay-rounds 0"));
        assert!(check(&["--overlay", "--overlay-attaches", "0"])
            .unwrap_err()
            .contains("--overlay-attaches 0"));
        for alone in [
            &["--overlay-hosts", "5"][..],
            &["--overlay-rounds", "2"],
            &["--overlay-attaches", "7"],
        ] {
            assert!(
                check(alone).unwrap_err().contains("add --overlay"),
                "{alone:?}"
            );
        }
        let parse = |args: &[&str]| {
            Args::try_parse_from(std::iter::once("ctnet-bench").chain(args.iter().copied()))
                .unwrap()
        };
        let overlay = parse(&["--overlay"]);
        assert!(overlay.wants_overlay());
        assert!(!overlay.wants_main_table() && !overlay.wants_lifecycle());
        assert!(!overlay.wants_dns() && !overlay.wants_podman());
        assert!(!overlay.wants_observe() && !overlay.wants_policy());
        assert_eq!(overlay.overlay_size().hosts, [3, 20]);
        let quick = parse(&["--quick"]);
        assert!(quick.wants_overlay());
        assert_eq!(quick.overlay_size().hosts, [3]);
        assert_eq!(quick.overlay_size().attaches, 5);
        assert!(!parse(&["--quick", "--policy"]).wants_overlay());
        assert!(!parse(&[]).wants_overlay());
    }

    #[test]
    fn quick_runs_the_observation_commands_small_and_the_parts_alone_do_not() {
        let parse = |args: &[&str]| {
            Args::try_parse_from(std::iter::once("ctnet-bench").chain(args.iter().copied()))
                .unwrap()
        };
        let quick = parse(&["--quick"]);
        assert!(quick.wants_observe());
        assert_eq!(quick.observe_size(), (3, 3));
        let observe = parse(&["--observe"]);
        assert!(observe.wants_observe());
        assert!(!observe.wants_main_table() && !observe.wants_lifecycle());
        assert!(!observe.wants_dns() && !observe.wants_podman());
        assert_eq!(observe.observe_size(), (1000, 20));
        for alone in [&["--quick", "--run"][..], &["--quick", "--dns-only"], &[]] {
            assert!(!parse(alone).wants_observe(), "{alone:?}");
        }
    }
}
