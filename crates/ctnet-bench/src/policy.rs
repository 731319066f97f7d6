//! `--policy`: what network policy costs each packet and each new connection between
//! two containers on one bridge, with 1 policy entry and with 10,000, and what the same
//! 10,000 entries cost written as a linear chain of rules (the iptables way); and how
//! long `ctnet policy add` takes with 1 and with 10,000 entries present.
//!
//! One world: network `pol` (10.210.0.0/24, bridge `ctpol0`) with two containers, `srv`
//! (10.210.0.2, label role=srv) and `cli` (10.210.0.3, role=cli). Every figure is taken
//! from `cli` to `srv` port 5201/tcp (the measured flow), one setup after another:
//!
//! ```text
//!   no policy          nothing: ctnet's table as attach left it
//!   1 entry            ctnet policy add one --network pol --to role=srv --from role=cli --port 5201/tcp
//!   10,000 entries     `one`, and `big`: the same with 9,999 other ports (10000, 10001, ...)
//!   linear             no ctnet policy; the bench's own table (below), ct established first
//!   linear, no ct      the same chain without its first rule: every packet walks it
//! ```
//!
//! The bench's table, loaded with `nft -f` (a benchmark may use nft; no product path
//! does), with the bridge's `nf_call_iptables` turned on through sysfs so that bridged
//! frames pass the inet forward hook, as ctnet turns it on for networks with policies:
//!
//! ```text
//! table inet bench_linear {
//!   chain forward { type filter hook forward priority filter; policy accept;
//!     ct state established,related accept                            # not in "no ct"
//!     ip saddr 10.210.0.3 ip daddr 10.210.0.2 tcp dport 10000 accept  # one rule per entry,
//!     ...                                                             # the same entries as
//!     ip saddr 10.210.0.3 ip daddr 10.210.0.2 tcp dport 5201 accept   # ctnet's, the measured last
//!     ip daddr 10.210.0.2 drop } }                                    # srv accepts nothing else
//! ```
//!
//! Each setup is checked before it is measured: 5201 connects, and 5202 (where `srv`
//! also listens) connects with no policy and is dropped in every other setup; ctnet's
//! `policy_allow` set holds exactly 1 or 10,000 elements. A setup that says otherwise
//! fails its row. Then three figures, each from one run:
//!
//! - throughput: one TCP stream of iperf3 (`-t 2`);
//! - RR: 1-byte request, 1-byte answer, one after the other on one connection (netperf's
//!   TCP_RR), per second: established packets, which ctnet's policy chain does not
//!   look up (it judges new flows only) and the linear chain's first rule accepts;
//! - CRR: connect, one 1-byte request and answer, close, one connection after another
//!   (netperf's TCP_CRR), per second: every connection's SYN is looked up in the policy
//!   (or walks the chain). The client closes with a reset (`SO_LINGER` 0), so thousands
//!   of connections leave no TIME_WAIT sockets to run out of ports with.
//!
//! The RR and CRR client and server are this program's own (no netperf here): the
//! server a thread of this process on a socket opened inside `srv`, the client a thread
//! that has entered `cli`. The setups take turns, round after round, so a slow spell of
//! a shared machine falls on all of them alike; a ratio is the median of the rounds'
//! ratios.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ctnet_kernel::Netns;
use serde_json::Value;

use crate::child::{run_timed, Finished};
use crate::datapath;
use crate::sandbox::World;
use crate::stats::percentile;
use crate::systems::ctnet::{has_dns_flag, Ctnet, Dns};

/// The network, its subnet and its bridge.
const NETWORK: &str = "pol";
const SUBNET: &str = "10.210.0.0/24";
const BRIDGE: &str = "ctpol0";
/// The two containers: their names, addresses and labels.
const SERVER: &str = "srv";
const CLIENT: &str = "cli";
const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(10, 210, 0, 2);
const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(10, 210, 0, 3);
const SERVER_LABEL: &str = "role=srv";
const CLIENT_LABEL: &str = "role=cli";
/// The measured flow's port (iperf3's, and the RR/CRR server's after it).
pub const PORT: u16 = 5201;
/// A port `srv` listens on that no policy admits: it must be dropped wherever a policy
/// or the linear chain is in force.
const BLOCKED_PORT: u16 = 5202;
/// The other entries' ports: 10000, 10001, ... (never 5201 or 5202).
const FIRST_OTHER_PORT: u16 = 10_000;
/// The port of the policy `policy add` is timed with (admitted by nothing else).
const TIMED_PORT: u16 = 4000;
/// The most entries a run can ask for: the other ports end below 65,536.
pub const MAX_ENTRIES: usize = 50_000;
/// The bench's own table.
const LINEAR_TABLE: &str = "bench_linear";
/// How long a connect that must succeed may take: past TCP's first SYN retransmission
/// (1 s), since right after the attaches a first SYN can go missing.
const MUST_CONNECT: Duration = Duration::from_millis(2500);
/// How long a connect that must be dropped is given, right after a connect that
/// succeeded (so the path is up and a missing answer is the drop).
const DROP_WAIT: Duration = Duration::from_millis(300);
/// How long one read or write of RR/CRR may take before the run fails.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// How much to measure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Size {
    /// Policy entries of the large setups (ctnet's and the linear chain).
    pub entries: usize,
    /// Rounds: each measures every setup once.
    pub rounds: usize,
    /// How long each RR and each CRR run lasts.
    pub window: Duration,
    /// Runs of each figure per setup and round; the best is kept (see [`best`]).
    pub tries: usize,
    /// iperf3's length: seconds (`-t`), or bytes in quick mode (`-n`), where a second
    /// per run would be most of the part.
    pub iperf: IperfLength,
    /// Runs of each timed `policy add` (and `rm`).
    pub add_runs: usize,
    /// Adjacent pairs of the 1-entry and the N-entry setup (see
    /// `Bench::adjacent_pairs`).
    pub pairs: usize,
}

/// How long one iperf3 run lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IperfLength {
    Seconds(u32),
    Megabytes(u32),
}

impl IperfLength {
    fn args(self) -> [String; 2] {
        match self {
            IperfLength::Seconds(s) => ["-t".into(), s.to_string()],
            IperfLength::Megabytes(m) => ["-n".into(), format!("{m}M")],
        }
    }

    /// "iperf3 -t 2".
    pub fn words(self) -> String {
        format!("iperf3 {}", self.args().join(" "))
    }
}

impl Size {
    /// The size of a real run, or of the smoke test (100 entries, one round, 0.3 s
    /// windows: a few seconds in all).
    pub fn new(quick: bool, entries: usize, rounds: usize) -> Size {
        if quick {
            Size {
                entries: entries.min(100),
                rounds: 1,
                window: Duration::from_millis(300),
                tries: 1,
                iperf: IperfLength::Megabytes(64),
                add_runs: 2,
                pairs: 1,
            }
        } else {
            Size {
                entries,
                rounds,
                window: Duration::from_secs(1),
                tries: 3,
                iperf: IperfLength::Seconds(1),
                add_runs: 9,
                pairs: 10,
            }
        }
    }
}

/// The setups, in the order each round measures them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    NoPolicy,
    One,
    Many,
    Linear,
    LinearNoCt,
}

pub const SETUPS: [Setup; 5] = [
    Setup::NoPolicy,
    Setup::One,
    Setup::Many,
    Setup::Linear,
    Setup::LinearNoCt,
];

impl Setup {
    /// The row's label, with the number of entries of the large setups.
    pub fn label(self, entries: usize) -> String {
        let n = thousands(entries);
        match self {
            Setup::NoPolicy => "no policy".into(),
            Setup::One => "1 policy entry (ctnet, nft sets)".into(),
            Setup::Many => format!("{n} policy entries (ctnet, nft sets)"),
            Setup::Linear => format!("{n} rules, linear chain, ct established first"),
            Setup::LinearNoCt => format!("{n} rules, linear chain, every packet walks it"),
        }
    }

    /// Whether it needs `ctnet policy`.
    fn needs_policy(self) -> bool {
        matches!(self, Setup::One | Setup::Many)
    }

    /// Whether the port no policy admits must be dropped.
    fn filters(self) -> bool {
        self != Setup::NoPolicy
    }
}

/// "10,000".
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One round's figures for one setup.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// iperf3's Gbit/s; None without iperf3.
    pub gbits: Option<f64>,
    /// Requests and answers per second on one connection.
    pub rr: f64,
    /// Connections (each with one request and answer) per second.
    pub crr: f64,
    /// The bridge's `nf_call_iptables` while it was measured.
    pub nf_call: Option<bool>,
}

/// Which figure of a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Throughput,
    Rr,
    Crr,
}

pub const METRICS: [Metric; 3] = [Metric::Throughput, Metric::Rr, Metric::Crr];

impl Sample {
    pub fn get(&self, metric: Metric) -> Option<f64> {
        match metric {
            Metric::Throughput => self.gbits,
            Metric::Rr => Some(self.rr),
            Metric::Crr => Some(self.crr),
        }
    }
}

/// One setup's rounds, or why it has none (skipped or failed).
#[derive(Debug)]
pub struct Row {
    pub setup: Setup,
    pub label: String,
    pub runs: Result<Vec<Sample>, String>,
}

impl Row {
    /// The median of one figure over the rounds.
    pub fn median(&self, metric: Metric) -> Option<f64> {
        let values: Vec<f64> = self
            .runs
            .as_ref()
            .ok()?
            .iter()
            .filter_map(|s| s.get(metric))
            .collect();
        datapath::median(&values)
    }

    /// The lowest and highest of one figure over the rounds.
    pub fn range(&self, metric: Metric) -> Option<(f64, f64)> {
        let values: Vec<f64> = self
            .runs
            .as_ref()
            .ok()?
            .iter()
            .filter_map(|s| s.get(metric))
            .collect();
        let low = values.iter().copied().reduce(f64::min)?;
        let high = values.iter().copied().reduce(f64::max)?;
        Some((low, high))
    }

    /// The `nf_call_iptables` values seen: "0", "1", "0/1", or "?".
    pub fn nf_call(&self) -> String {
        let Ok(runs) = &self.runs else {
            return "-".into();
        };
        let seen: Vec<Option<bool>> = runs.iter().map(|s| s.nf_call).collect();
        let has = |v| seen.contains(&Some(v));
        match (has(false), has(true), seen.contains(&None)) {
            (_, _, true) => "?".into(),
            (true, true, _) => "0/1".into(),
            (false, true, _) => "1".into(),
            (true, false, _) => "0".into(),
            _ => "-".into(),
        }
    }
}

/// A comparison the targets are about: `of` over `to`, per figure, the median of the
/// rounds' ratios.
pub struct Comparison {
    pub what: String,
    pub ratios: [Option<f64>; 3],
}

/// The median over rounds of `of[i] / to[i]` for one figure.
pub fn paired(of: &Row, to: &Row, metric: Metric) -> Option<f64> {
    let pick = |row: &Row| -> Result<Vec<f64>, String> {
        let runs = row.runs.as_ref().map_err(Clone::clone)?;
        runs.iter()
            .map(|s| s.get(metric).ok_or_else(|| "not measured".to_string()))
            .collect()
    };
    datapath::paired_ratio(&pick(to), &pick(of))
}

/// Timed `ctnet policy add` and `rm` runs, whole process, wall clock.
#[derive(Debug, Default)]
pub struct Timings {
    pub add: Vec<Duration>,
    pub rm: Vec<Duration>,
}

/// Everything the part measured.
pub struct Measured {
    pub size: Size,
    /// The CPU everything ran on.
    pub cpu: usize,
    /// Whether the adjacent pairs were measured (their ratio is the first comparison).
    pub pairs: Result<(), String>,
    pub rows: Vec<Row>,
    pub comparisons: Vec<Comparison>,
    /// `policy add`/`rm` of one more policy with the 1-entry setup present, then with
    /// the 10,000-entry one; Err when the ctnet under test has no `policy`.
    pub with_one: Result<Timings, String>,
    pub with_many: Result<Timings, String>,
    /// Each install of the 9,999-port policy (one `ctnet policy add` process).
    pub big_adds: Vec<Duration>,
    /// Each `nft -f` of the linear chain.
    pub linear_loads: Vec<Duration>,
    /// Rules in `table inet ctnet` with the 1-entry and the 10,000-entry setup.
    pub rules: (Option<usize>, Option<usize>),
    /// Whether iperf3 was there.
    pub iperf3: bool,
}

impl Measured {
    /// Whether every setup that could run did, and every timing too.
    pub fn all_ok(&self) -> bool {
        self.rows.iter().all(|r| r.runs.is_ok()) && self.with_one.is_ok() && self.with_many.is_ok()
    }
}

/// Whether the ctnet at `bin` has network policy (`ctnet policy --help` works).
pub fn has_policy(bin: &Path) -> bool {
    Command::new(bin)
        .args(["policy", "--help"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The world and what the setups need of it.
struct Bench {
    ctnet: Ctnet,
    srv: Netns,
    cli: Netns,
    /// `srv` listening on [`BLOCKED_PORT`], for the checks.
    blocked: TcpListener,
    iperf3: Option<PathBuf>,
    size: Size,
    /// Whether the ctnet under test has `policy` (and so the `policy_*` sets).
    policy: bool,
    /// The bridge's `nf_call_iptables` before the bench turned it on for a linear
    /// chain, put back when the chain goes.
    nf_call_before: Option<bool>,
    /// Files of the two linear chains, written once.
    linear_files: [PathBuf; 2],
    big_adds: Vec<Duration>,
    linear_loads: Vec<Duration>,
    rules: (Option<usize>, Option<usize>),
}

/// Builds the world and measures every setup `size.rounds` times in turns, then the
/// `policy add` timings. With `settle`, waits for the machine to go quiet first (the
/// smoke test does not). A ctnet without `policy` gets its ctnet rows skipped (and
/// said so); the no-policy and linear rows still run.
pub fn measure(
    root: &Path,
    ctnet_bin: &Path,
    iperf3: Option<PathBuf>,
    size: Size,
    settle: bool,
) -> Result<Measured, String> {
    if !(2..=MAX_ENTRIES).contains(&size.entries) {
        return Err(format!("{} entries: give 2 to {MAX_ENTRIES}", size.entries));
    }
    let policy = has_policy(ctnet_bin);
    let pinned = Pinned::to_last_cpu()?;
    let pinned_cpu = pinned.cpu;
    let world = World::enter(root, "policy")?;
    let dns = if has_dns_flag(ctnet_bin) {
        Dns::Off
    } else {
        Dns::Unknown
    };
    let ctnet = Ctnet::new(world, ctnet_bin.to_path_buf(), false, dns.clone())?;
    let mut args = vec![
        "network", "create", NETWORK, "--subnet", SUBNET, "--bridge", BRIDGE,
    ];
    if dns == Dns::Off {
        args.extend(["--dns", "false"]);
    }
    ctnet.run_untimed(&args)?;
    let mut ctnet = ctnet;
    for (name, address, label) in [
        (SERVER, SERVER_ADDR, SERVER_LABEL),
        (CLIENT, CLIENT_ADDR, CLIENT_LABEL),
    ] {
        ctnet.run_untimed(&["netns", "add", name])?;
        ctnet.world_mut().adopt_netns(name)?;
        let address = address.to_string();
        let mut args = vec!["attach", NETWORK, name, "--ip", &address];
        if policy {
            args.extend(["--label", label]);
        }
        ctnet.run_untimed(&args)?;
    }
    let open = |name: &str| {
        Netns::open(&ctnet.world().netns_path(name)).map_err(|e| format!("open {name}: {e}"))
    };
    let (srv, cli) = (open(SERVER)?, open(CLIENT)?);
    let blocked = listen(&srv, BLOCKED_PORT)?;
    let linear_files = [true, false].map(|ct_first| {
        ctnet.world().dir.join(format!(
            "linear-{}.nft",
            if ct_first { "ct" } else { "no-ct" }
        ))
    });
    for (file, ct_first) in linear_files.iter().zip([true, false]) {
        std::fs::write(file, linear_ruleset(size.entries, ct_first))
            .map_err(|e| format!("write {}: {e}", file.display()))?;
    }
    let mut bench = Bench {
        ctnet,
        srv,
        cli,
        blocked,
        iperf3,
        size,
        policy,
        nf_call_before: None,
        linear_files,
        big_adds: Vec::new(),
        linear_loads: Vec::new(),
        rules: (None, None),
    };
    let no_policy = format!(
        "skipped: the ctnet under test ({}) has no `policy` command",
        ctnet_bin.display()
    );
    let mut rows: Vec<Row> = SETUPS
        .iter()
        .map(|&setup| Row {
            setup,
            label: setup.label(size.entries),
            runs: if setup.needs_policy() && !policy {
                Err(no_policy.clone())
            } else {
                Ok(Vec::new())
            },
        })
        .collect();
    if settle {
        crate::quiet::wait_for_quiet(crate::QUIET_MAX, "the policy setups");
    }
    for round in 1..=size.rounds {
        for row in rows.iter_mut() {
            let Ok(done) = row.runs.as_mut() else {
                continue;
            };
            eprintln!("policy: {} (round {round} of {})", row.label, size.rounds);
            match bench.one_round(row.setup) {
                Ok(sample) => done.push(sample),
                Err(e) => {
                    eprintln!("policy, {}: {e}", row.label);
                    row.runs = Err(format!("failed: {e}"));
                }
            }
        }
    }
    let pairs = if policy {
        eprintln!(
            "policy: {} adjacent pair(s) of 1 and {} entries",
            size.pairs, size.entries
        );
        bench.adjacent_pairs()
    } else {
        Err(no_policy.clone())
    };
    if let Err(e) = &pairs {
        eprintln!("policy, adjacent pairs: {e}");
    }
    let (with_one, with_many) = if policy {
        eprintln!(
            "policy: timing `ctnet policy add` with 1 and with {} entries",
            size.entries
        );
        (bench.time_add(Setup::One), bench.time_add(Setup::Many))
    } else {
        (Err(no_policy.clone()), Err(no_policy))
    };
    let pick = |of: Setup| rows.iter().find(|r| r.setup == of);
    let mut comparisons = Vec::new();
    if let Ok((one, many)) = &pairs {
        let row = |setup, runs: &Vec<Sample>| Row {
            setup,
            label: String::new(),
            runs: Ok(runs.clone()),
        };
        let (one, many) = (row(Setup::One, one), row(Setup::Many, many));
        comparisons.push(Comparison {
            what: format!(
                "{} / 1, {} adjacent pair{} (target: within 5 %)",
                thousands(size.entries),
                size.pairs,
                if size.pairs == 1 { "" } else { "s" }
            ),
            ratios: METRICS.map(|m| paired(&many, &one, m)),
        });
    }
    for (what, of, to) in [
        (
            format!("{} / 1, by round", thousands(size.entries)),
            Setup::Many,
            Setup::One,
        ),
        (
            format!("linear chain / {} in sets", thousands(size.entries)),
            Setup::Linear,
            Setup::Many,
        ),
        (
            format!("linear, every packet / {} in sets", thousands(size.entries)),
            Setup::LinearNoCt,
            Setup::Many,
        ),
        (
            "1 entry / no policy (br_netfilter, conntrack, lookup)".into(),
            Setup::One,
            Setup::NoPolicy,
        ),
    ] {
        if let (Some(of), Some(to)) = (pick(of), pick(to)) {
            comparisons.push(Comparison {
                what,
                ratios: METRICS.map(|m| paired(of, to, m)),
            });
        }
    }
    drop(pinned);
    Ok(Measured {
        size,
        cpu: pinned_cpu,
        pairs: pairs.map(|_| ()),
        rows,
        comparisons,
        with_one,
        with_many,
        big_adds: std::mem::take(&mut bench.big_adds),
        linear_loads: std::mem::take(&mut bench.linear_loads),
        rules: bench.rules,
        iperf3: bench.iperf3.is_some(),
    })
}

impl Bench {
    fn run(&self, args: &[&str]) -> Result<Finished, String> {
        self.ctnet.run_untimed(args)
    }

    /// Installs `setup`, checks it, measures it once and removes it again (also when
    /// the check or the measurement fails, so the next setup starts clean).
    fn one_round(&mut self, setup: Setup) -> Result<Sample, String> {
        let installed = self.install(setup);
        let outcome = installed.and_then(|()| {
            self.check(setup)?;
            self.sample(self.size.tries)
        });
        let removed = self.remove(setup);
        let sample = outcome?;
        removed?;
        Ok(sample)
    }

    fn install(&mut self, setup: Setup) -> Result<(), String> {
        match setup {
            Setup::NoPolicy => Ok(()),
            Setup::One => self.add_one(),
            Setup::Many => {
                self.add_one()?;
                self.add_big()
            }
            Setup::Linear | Setup::LinearNoCt => {
                self.nf_call_before = nf_call();
                set_nf_call(true)?;
                let file = &self.linear_files[usize::from(setup == Setup::LinearNoCt)];
                let mut cmd = Command::new("nft");
                cmd.arg("-f").arg(file);
                let done = run_timed(&format!("nft -f {}", file.display()), &mut cmd, None)?;
                self.linear_loads.push(done.wall);
                Ok(())
            }
        }
    }

    /// The policy with the entries other than the measured flow's.
    fn add_big(&mut self) -> Result<(), String> {
        let args = big_policy_args(self.size.entries - 1);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let done = self.run(&args)?;
        self.big_adds.push(done.wall);
        Ok(())
    }

    /// `size.pairs` pairs of samples, one with the 1-entry setup and one with the
    /// N-entry setup right after each other (one run of each figure), `big` added or
    /// removed between them; the order alternates, so a drift within a pair falls on
    /// either setup alike. Returns the 1-entry samples and the N-entry ones, in pairs.
    fn adjacent_pairs(&mut self) -> Result<(Vec<Sample>, Vec<Sample>), String> {
        self.add_one()?;
        let mut big = false;
        let outcome = self.adjacent_pairs_installed(&mut big);
        let big_gone = if big {
            self.run(&["policy", "rm", "big"]).map(|_| ())
        } else {
            Ok(())
        };
        let one_gone = self.remove(Setup::One);
        let pairs = outcome?;
        big_gone.and(one_gone)?;
        Ok(pairs)
    }

    fn adjacent_pairs_installed(
        &mut self,
        big: &mut bool,
    ) -> Result<(Vec<Sample>, Vec<Sample>), String> {
        let (mut one, mut many) = (Vec::new(), Vec::new());
        for pair in 0..self.size.pairs {
            let many_first = pair % 2 == 1;
            for step in 0..2 {
                let want_many = (step == 0) == many_first;
                if want_many != *big {
                    if want_many {
                        self.add_big()?;
                    } else {
                        self.run(&["policy", "rm", "big"])?;
                    }
                    *big = want_many;
                }
                let setup = if want_many { Setup::Many } else { Setup::One };
                self.check(setup)?;
                let sample = self.sample(1)?;
                if want_many {
                    many.push(sample);
                } else {
                    one.push(sample);
                }
            }
        }
        Ok((one, many))
    }

    fn add_one(&self) -> Result<(), String> {
        let port = format!("{PORT}/tcp");
        self.run(&[
            "policy",
            "add",
            "one",
            "--network",
            NETWORK,
            "--to",
            SERVER_LABEL,
            "--from",
            CLIENT_LABEL,
            "--port",
            &port,
        ])
        .map(|_| ())
    }

    fn remove(&mut self, setup: Setup) -> Result<(), String> {
        match setup {
            Setup::NoPolicy => Ok(()),
            Setup::One => self.run(&["policy", "rm", "one"]).map(|_| ()),
            Setup::Many => {
                let big = self.run(&["policy", "rm", "big"]);
                let one = self.run(&["policy", "rm", "one"]);
                big.and(one).map(|_| ())
            }
            Setup::Linear | Setup::LinearNoCt => {
                let mut cmd = Command::new("nft");
                cmd.args(["delete", "table", "inet", LINEAR_TABLE]);
                let deleted = run_timed("nft delete table", &mut cmd, None).map(|_| ());
                // Back to what ctnet left on the network.
                match self.nf_call_before.take() {
                    Some(before) => deleted.and(set_nf_call(before)),
                    None => deleted,
                }
            }
        }
    }

    /// Whether `setup` is in force: the measured port connects, the other one is
    /// dropped where anything filters and connects where nothing does, and ctnet's set
    /// holds the entries the setup claims.
    fn check(&mut self, setup: Setup) -> Result<(), String> {
        let server = listen(&self.srv, PORT)?;
        let measured = self.connects(PORT, MUST_CONNECT)?;
        drop(server);
        if !measured {
            return Err(format!(
                "{CLIENT} cannot connect to {SERVER_ADDR}:{PORT}, the flow every setup admits"
            ));
        }
        let wait = if setup.filters() {
            DROP_WAIT
        } else {
            MUST_CONNECT
        };
        let other = self.connects(BLOCKED_PORT, wait)?;
        drain(&self.blocked);
        match (setup.filters(), other) {
            (true, true) => {
                return Err(format!(
                    "{CLIENT} connects to {SERVER_ADDR}:{BLOCKED_PORT}, which this setup must drop: it is not in force"
                ))
            }
            (false, false) => {
                return Err(format!(
                    "{CLIENT} cannot connect to {SERVER_ADDR}:{BLOCKED_PORT} with no policy: something else filters"
                ))
            }
            _ => {}
        }
        if !self.policy {
            return Ok(());
        }
        let expected = match setup {
            Setup::One => 1,
            Setup::Many => self.size.entries,
            _ => 0,
        };
        let wanted: Vec<u16> = match setup {
            Setup::One => vec![PORT],
            Setup::Many => std::iter::once(PORT)
                .chain(other_ports(self.size.entries - 1))
                .collect(),
            _ => Vec::new(),
        };
        // A dump of a large hash set is not atomic: it comes in many messages, each
        // resuming after the number of elements already sent, so when the kernel's
        // garbage collector frees expired elements in between (a withdrawn policy's,
        // see ctnet-engine's datapath/nft/policy.rs) a listing can skip live ones
        // (seen: 8,092 of 10,000 listed, all 10,000 in the listings before and after).
        // So a listing that disagrees is taken again, a few times, before the setup
        // counts as wrong.
        let mut last = String::new();
        for attempt in 0..5 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(200));
            }
            let json = nft_json(&["list", "set", "inet", "ctnet", "policy_allow"])?;
            let held = count_elements(&json);
            let ports = element_ports(&json);
            let missing: Vec<String> = wanted
                .iter()
                .filter(|p| !ports.contains(p))
                .take(5)
                .map(u16::to_string)
                .collect();
            if held == expected && missing.is_empty() {
                last.clear();
                break;
            }
            last = format!(
                "ctnet's policy_allow holds {held} elements where this setup needs {expected} (missing ports: {}; 5 listings, 200 ms apart)",
                if missing.is_empty() { "none".to_string() } else { missing.join(", ") }
            );
        }
        if !last.is_empty() {
            return Err(last);
        }
        match setup {
            Setup::One => self.rules.0 = Some(ctnet_rules()?),
            Setup::Many => self.rules.1 = Some(ctnet_rules()?),
            _ => {}
        }
        Ok(())
    }

    /// Whether `cli` gets a connection to `srv:port` within `wait` (refused is an
    /// error: the server listens on both ports).
    fn connects(&self, port: u16, wait: Duration) -> Result<bool, String> {
        let target = SocketAddr::V4(SocketAddrV4::new(SERVER_ADDR, port));
        let outcome = self
            .cli
            .run(|| Ok(TcpStream::connect_timeout(&target, wait)))
            .map_err(|e| e.to_string())?;
        match outcome {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Ok(false),
            Err(e) => Err(format!("connect from {CLIENT} to {target}: {e}")),
        }
    }

    /// Each figure, the best of `tries` runs.
    fn sample(&self, tries: usize) -> Result<Sample, String> {
        let nf_call = nf_call();
        let gbits = match &self.iperf3 {
            Some(iperf3) => {
                let length = self.size.iperf.args();
                let length: Vec<&str> = length.iter().map(String::as_str).collect();
                let mut runs = Vec::new();
                for _ in 0..tries {
                    runs.push(datapath::iperf_for(
                        iperf3,
                        (&self.srv, SERVER_ADDR, PORT),
                        (&self.cli, SERVER_ADDR, PORT),
                        &length,
                    )?);
                }
                best(&runs)
            }
            None => None,
        };
        let (rr, crr) = self.rr_and_crr(tries)?;
        Ok(Sample {
            gbits,
            rr,
            crr,
            nf_call,
        })
    }

    /// The best of `tries` RR runs, then of `tries` CRR runs, against one server thread.
    fn rr_and_crr(&self, tries: usize) -> Result<(f64, f64), String> {
        let listener = listen(&self.srv, PORT)?;
        let stop = AtomicBool::new(false);
        let target = SocketAddr::V4(SocketAddrV4::new(SERVER_ADDR, PORT));
        let window = self.size.window;
        std::thread::scope(|scope| {
            let server = scope.spawn(|| serve(&listener, &stop));
            let rates = self
                .cli
                .run(|| {
                    let rr = (0..tries).map(|_| rr(target, window)).collect();
                    let crr = (0..tries).map(|_| crr(target, window)).collect();
                    Ok((best_of(rr), best_of(crr)))
                })
                .map_err(|e| e.to_string());
            stop.store(true, Ordering::Relaxed);
            let served = server
                .join()
                .unwrap_or_else(|_| Err("the server thread panicked".into()));
            let (rr, crr) = rates?;
            served?;
            Ok((rr?, crr?))
        })
    }

    /// `size.add_runs` timed `ctnet policy add` of one more policy (and its timed
    /// `rm`) with `present` installed.
    fn time_add(&mut self, present: Setup) -> Result<Timings, String> {
        self.install(present)?;
        let timed = self.time_add_installed();
        let removed = self.remove(present);
        let timings = timed?;
        removed?;
        Ok(timings)
    }

    fn time_add_installed(&self) -> Result<Timings, String> {
        let port = format!("{TIMED_PORT}/tcp");
        let add = [
            "policy",
            "add",
            "timed",
            "--network",
            NETWORK,
            "--to",
            SERVER_LABEL,
            "--from",
            CLIENT_LABEL,
            "--port",
            &port,
        ];
        let mut timings = Timings::default();
        for _ in 0..self.size.add_runs {
            timings.add.push(self.run(&add)?.wall);
            timings.rm.push(self.run(&["policy", "rm", "timed"])?.wall);
        }
        Ok(timings)
    }
}

/// `ctnet policy add big …` with `ports` ports from [`FIRST_OTHER_PORT`] up.
fn big_policy_args(ports: usize) -> Vec<String> {
    let mut args: Vec<String> = [
        "policy",
        "add",
        "big",
        "--network",
        NETWORK,
        "--to",
        SERVER_LABEL,
        "--from",
        CLIENT_LABEL,
    ]
    .map(String::from)
    .to_vec();
    for port in other_ports(ports) {
        args.push("--port".into());
        args.push(format!("{port}/tcp"));
    }
    args
}

/// The ports of the entries other than the measured flow's.
fn other_ports(n: usize) -> impl Iterator<Item = u16> {
    (0..n).map(|i| FIRST_OTHER_PORT + i as u16)
}

/// The linear chain of `entries` rules (the measured flow's last), in `nft -f` syntax.
fn linear_ruleset(entries: usize, ct_first: bool) -> String {
    let mut out = format!(
        "table inet {LINEAR_TABLE} {{\n  chain forward {{\n    type filter hook forward priority filter; policy accept;\n"
    );
    if ct_first {
        out.push_str("    ct state established,related accept\n");
    }
    let rule = |port: u16| {
        format!("    ip saddr {CLIENT_ADDR} ip daddr {SERVER_ADDR} tcp dport {port} accept\n")
    };
    for port in other_ports(entries - 1) {
        out.push_str(&rule(port));
    }
    out.push_str(&rule(PORT));
    out.push_str(&format!("    ip daddr {SERVER_ADDR} drop\n  }}\n}}\n"));
    out
}

/// The bridge's `nf_call_iptables`, from this world's sysfs.
fn nf_call_path() -> PathBuf {
    Path::new("/sys/class/net")
        .join(BRIDGE)
        .join("bridge/nf_call_iptables")
}

fn nf_call() -> Option<bool> {
    let text = std::fs::read_to_string(nf_call_path()).ok()?;
    match text.trim() {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    }
}

fn set_nf_call(on: bool) -> Result<(), String> {
    std::fs::write(nf_call_path(), if on { "1" } else { "0" })
        .map_err(|e| format!("write {}: {e}", nf_call_path().display()))
}

/// Rules of `table inet ctnet`.
fn ctnet_rules() -> Result<usize, String> {
    let json = nft_json(&["list", "table", "inet", "ctnet"])?;
    Ok(count_rules(&json))
}

fn nft_json(args: &[&str]) -> Result<Value, String> {
    let mut cmd = Command::new("nft");
    cmd.arg("-j").args(args);
    let what = format!("nft -j {}", args.join(" "));
    let done = run_timed(&what, &mut cmd, None)?;
    serde_json::from_slice(&done.stdout).map_err(|e| format!("{what}: not JSON: {e}"))
}

/// The elements of the (first) set in `nft -j list set` output.
fn count_elements(json: &Value) -> usize {
    objects(json)
        .find_map(|o| o.get("set"))
        .and_then(|set| set.get("elem"))
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

/// The ports (the last field of `daddr . saddr . proto . port`) of the elements in
/// `nft -j list set` output; an element with a timeout is wrapped in `{"elem": {"val": …}}`.
fn element_ports(json: &Value) -> std::collections::BTreeSet<u16> {
    objects(json)
        .find_map(|o| o.get("set"))
        .and_then(|set| set.get("elem"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let key = e.get("elem").and_then(|w| w.get("val")).unwrap_or(e);
            let port = key.get("concat")?.as_array()?.get(3)?.as_u64()?;
            u16::try_from(port).ok()
        })
        .collect()
}

/// The rules in `nft -j list table` output.
fn count_rules(json: &Value) -> usize {
    objects(json).filter(|o| o.get("rule").is_some()).count()
}

fn objects(json: &Value) -> impl Iterator<Item = &Value> {
    json["nftables"].as_array().into_iter().flatten()
}

/// A listener on 0.0.0.0:`port` inside `ns`, non-blocking (the server polls it).
fn listen(ns: &Netns, port: u16) -> Result<TcpListener, String> {
    ns.run(|| {
        let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))
            .map_err(|e| ctnet_kernel::Error::io(format!("listen on port {port}"), e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| ctnet_kernel::Error::io("make the listener non-blocking", e))?;
        Ok(listener)
    })
    .map_err(|e| format!("a server in {SERVER}: {e}"))
}

/// Accepts and closes what the checks left waiting (bounded; never waits).
fn drain(listener: &TcpListener) {
    for _ in 0..64 {
        if listener.accept().is_err() {
            break;
        }
    }
}

/// The RR/CRR server: one connection at a time, answering each byte with one byte,
/// until `stop`. Waits in `poll` (100 ms slices, so `stop` is seen), never sleeps: a
/// sleep between connections would be charged to the CRR figure.
fn serve(listener: &TcpListener, stop: &AtomicBool) -> Result<(), String> {
    while !stop.load(Ordering::Relaxed) {
        let mut pfd = libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the call; the listener outlives it.
        let ready = unsafe { libc::poll(&mut pfd, 1, 100) };
        if ready <= 0 {
            continue; // timeout slice or EINTR: the stop flag bounds this loop
        }
        let mut conn = match listener.accept() {
            Ok((conn, _)) => conn,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(format!("accept on port {PORT}: {e}")),
        };
        let setup = conn
            .set_nonblocking(false)
            .and_then(|()| conn.set_nodelay(true))
            .and_then(|()| conn.set_read_timeout(Some(Duration::from_millis(100))))
            .and_then(|()| conn.set_write_timeout(Some(IO_TIMEOUT)));
        setup.map_err(|e| format!("set up an accepted connection: {e}"))?;
        let mut byte = [0u8; 1];
        while !stop.load(Ordering::Relaxed) {
            match conn.read(&mut byte) {
                Ok(0) => break,
                Ok(_) => conn
                    .write_all(&byte)
                    .map_err(|e| format!("answer on port {PORT}: {e}"))?,
                Err(e) if is_timeout(&e) => continue,
                // The CRR client closes with a reset.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => return Err(format!("read on port {PORT}: {e}")),
            }
        }
    }
    Ok(())
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// Requests and answers per second on one connection for `window` (on a thread that
/// is inside the client's namespace).
fn rr(target: SocketAddr, window: Duration) -> Result<f64, String> {
    let mut conn = connect(target)?;
    let start = Instant::now();
    let mut done: u64 = 0;
    let mut byte = [1u8; 1];
    while start.elapsed() < window {
        exchange(&mut conn, &mut byte).map_err(|e| format!("RR to {target}: {e}"))?;
        done += 1;
    }
    Ok(done as f64 / start.elapsed().as_secs_f64())
}

/// Connections per second, each with one request and answer, for `window`.
fn crr(target: SocketAddr, window: Duration) -> Result<f64, String> {
    let start = Instant::now();
    let mut done: u64 = 0;
    let mut byte = [1u8; 1];
    while start.elapsed() < window {
        let mut conn = connect(target)?;
        exchange(&mut conn, &mut byte)
            .map_err(|e| format!("CRR to {target}, connection {}: {e}", done + 1))?;
        reset_on_close(&conn)?;
        drop(conn);
        done += 1;
    }
    Ok(done as f64 / start.elapsed().as_secs_f64())
}

fn connect(target: SocketAddr) -> Result<TcpStream, String> {
    let conn = TcpStream::connect_timeout(&target, IO_TIMEOUT)
        .map_err(|e| format!("connect to {target}: {e}"))?;
    conn.set_nodelay(true)
        .and_then(|()| conn.set_read_timeout(Some(IO_TIMEOUT)))
        .and_then(|()| conn.set_write_timeout(Some(IO_TIMEOUT)))
        .map_err(|e| format!("set up the connection to {target}: {e}"))?;
    Ok(conn)
}

/// One byte there, one byte back.
fn exchange(conn: &mut TcpStream, byte: &mut [u8; 1]) -> std::io::Result<()> {
    conn.write_all(byte)?;
    conn.read_exact(byte)
}

/// `SO_LINGER` 0: closing sends a reset and leaves no TIME_WAIT socket behind.
fn reset_on_close(conn: &TcpStream) -> Result<(), String> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads `size_of::<linger>()` bytes from a live local; the
    // descriptor is the connection's, open for the call.
    let rc = unsafe {
        libc::setsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!(
            "SO_LINGER on a CRR connection: {}",
            std::io::Error::last_os_error()
        ))
    }
}

/// The best (highest) of some rates.
///
/// Another program busy on the same CPU (a shared machine) only ever takes from a
/// run, never adds to it, so the best of a few short runs is the one least disturbed;
/// the means of such runs moved by a factor of two between rounds.
fn best(runs: &[f64]) -> Option<f64> {
    runs.iter().copied().reduce(f64::max)
}

/// [`best`] of runs that may have failed: the first failure, or the best rate.
fn best_of(runs: Result<Vec<f64>, String>) -> Result<f64, String> {
    best(&runs?).ok_or_else(|| "no runs".to_string())
}

/// This thread pinned to one CPU, and with it every thread and child it starts (they
/// inherit the mask); the mask it had is put back on drop.
///
/// One CPU for client, server, softirq and ctnet alike makes each figure the whole
/// path's cost on that CPU, and keeps it from jumping with where the scheduler puts
/// two threads: unpinned, RR moved between 14,000 and 49,000 a second from run to run.
struct Pinned {
    before: libc::cpu_set_t,
    cpu: usize,
}

impl Pinned {
    fn to_last_cpu() -> Result<Pinned, String> {
        // SAFETY: cpu_set_t is plain old data; all-zero is the empty set.
        let mut before: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: pid 0 is this thread; the kernel writes at most `size` bytes into
        // `before`, a live local of that size.
        if unsafe { libc::sched_getaffinity(0, size, &mut before) } != 0 {
            return Err(format!(
                "read this thread's CPU mask: {}",
                std::io::Error::last_os_error()
            ));
        }
        let cpu = (0..libc::CPU_SETSIZE as usize)
            .rev()
            // SAFETY: CPU_ISSET reads one bit of a live set, `c` below its size.
            .find(|&c| unsafe { libc::CPU_ISSET(c, &before) })
            .ok_or("this thread may run on no CPU")?;
        // SAFETY: as above, all-zero is the empty set.
        let mut one: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: sets one bit of a live set, `cpu` below its size.
        unsafe { libc::CPU_SET(cpu, &mut one) };
        // SAFETY: pid 0 is this thread; the kernel reads `size` bytes of `one`.
        if unsafe { libc::sched_setaffinity(0, size, &one) } != 0 {
            return Err(format!(
                "pin this thread to CPU {cpu}: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(Pinned { before, cpu })
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        let size = std::mem::size_of::<libc::cpu_set_t>();
        // SAFETY: pid 0 is this thread; the kernel reads `size` bytes of the saved mask.
        unsafe { libc::sched_setaffinity(0, size, &self.before) };
    }
}

/// The p50 of some timings (nearest rank).
pub fn p50(samples: &[Duration]) -> Option<Duration> {
    percentile(samples, 50.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_linear_chain_has_one_rule_per_entry_the_measured_last_then_the_drop() {
        let text = linear_ruleset(3, true);
        let rules: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("ip ") || l.starts_with("ct "))
            .collect();
        assert_eq!(
            rules,
            [
                "ct state established,related accept",
                "ip saddr 10.210.0.3 ip daddr 10.210.0.2 tcp dport 10000 accept",
                "ip saddr 10.210.0.3 ip daddr 10.210.0.2 tcp dport 10001 accept",
                "ip saddr 10.210.0.3 ip daddr 10.210.0.2 tcp dport 5201 accept",
                "ip daddr 10.210.0.2 drop",
            ]
        );
        let walked = linear_ruleset(10_000, false);
        assert!(!walked.contains("ct state"));
        assert_eq!(walked.matches(" accept\n").count(), 10_000);
        assert!(!walked.contains(&format!("dport {BLOCKED_PORT} ")));
    }

    #[test]
    fn the_big_policy_admits_neither_the_measured_nor_the_blocked_port() {
        let args = big_policy_args(MAX_ENTRIES - 1);
        let ports: Vec<&String> = args.iter().skip(10).step_by(2).collect();
        assert_eq!(ports.len(), MAX_ENTRIES - 1);
        assert_eq!(
            args.iter().filter(|a| *a == "--port").count(),
            MAX_ENTRIES - 1
        );
        for bad in [PORT, BLOCKED_PORT, TIMED_PORT] {
            assert!(!ports.contains(&&format!("{bad}/tcp")));
        }
        assert_eq!(ports.last().unwrap().as_str(), "59998/tcp");
    }

    #[test]
    fn elements_and_rules_are_counted_from_nfts_json() {
        let set = json!({"nftables": [
            {"metainfo": {"json_schema_version": 1}},
            {"set": {"name": "policy_allow", "elem": [{"concat": [1]}, {"concat": [2]}]}}
        ]});
        assert_eq!(count_elements(&set), 2);
        let empty = json!({"nftables": [{"set": {"name": "policy_allow"}}]});
        assert_eq!(count_elements(&empty), 0);
        let ports = json!({"nftables": [{"set": {"elem": [
            {"elem": {"val": {"concat": ["10.210.0.2", "10.210.0.3", "tcp", 80]}, "timeout": 3600}},
            {"concat": ["10.210.0.2", "10.210.0.3", "tcp", 5201]}
        ]}}]});
        assert_eq!(
            element_ports(&ports).into_iter().collect::<Vec<_>>(),
            [80, 5201]
        );
        let table = json!({"nftables": [
            {"table": {}}, {"chain": {}}, {"rule": {}}, {"rule": {}}, {"set": {}}
        ]});
        assert_eq!(count_rules(&table), 2);
    }

    #[test]
    fn ratios_are_paired_by_round_and_nf_call_is_what_was_seen() {
        let sample = |rr: f64, nf_call| Sample {
            gbits: None,
            rr,
            crr: rr / 2.0,
            nf_call,
        };
        let row = |setup, runs| Row {
            setup,
            label: String::new(),
            runs,
        };
        let one = row(
            Setup::One,
            Ok(vec![
                sample(100.0, Some(true)),
                sample(50.0, Some(true)),
                sample(100.0, Some(true)),
            ]),
        );
        let many = row(
            Setup::Many,
            Ok(vec![
                sample(99.0, Some(true)),
                sample(40.0, Some(true)),
                sample(90.0, Some(true)),
            ]),
        );
        assert_eq!(paired(&many, &one, Metric::Rr), Some(0.9));
        assert_eq!(paired(&many, &one, Metric::Throughput), None);
        assert_eq!(many.median(Metric::Crr), Some(45.0));
        assert_eq!(many.range(Metric::Rr), Some((40.0, 99.0)));
        assert_eq!(one.nf_call(), "1");
        let mixed = row(
            Setup::NoPolicy,
            Ok(vec![sample(1.0, Some(false)), sample(1.0, Some(true))]),
        );
        assert_eq!(mixed.nf_call(), "0/1");
        let failed = row(Setup::Many, Err("failed".into()));
        assert_eq!(paired(&failed, &one, Metric::Rr), None);
        assert_eq!(failed.nf_call(), "-");
    }

    #[test]
    fn sizes_and_labels() {
        assert_eq!(thousands(10_000), "10,000");
        assert_eq!(thousands(100), "100");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(
            Setup::Many.label(10_000),
            "10,000 policy entries (ctnet, nft sets)"
        );
        let quick = Size::new(true, 10_000, 5);
        assert_eq!((quick.entries, quick.rounds), (100, 1));
        assert_eq!(quick.iperf.words(), "iperf3 -n 64M");
        let full = Size::new(false, 10_000, 5);
        assert_eq!((full.entries, full.rounds), (10_000, 5));
        assert_eq!(full.iperf.words(), "iperf3 -t 1");
        assert_eq!(best(&[3.0, 5.0, 4.0]), Some(5.0));
        assert_eq!(best(&[]), None);
        assert_eq!(best_of(Err("gone".into())), Err("gone".to_string()));
    }
}
