//! The tables the benchmark prints.

use std::time::Duration;

use crate::datapath::{self, DataPath};
use crate::dns::{self, ServerRow};
use crate::observe;
use crate::overlay;
use crate::podman::{self, CASES};
use crate::policy;
use crate::stats::Summary;
use crate::systems::Cost;

/// One system's outcome in the main run.
pub struct Row {
    /// The system's label.
    pub label: String,
    /// Its measurements, one per round, or why there are none (not installed, failed).
    pub outcome: Result<Vec<Measured>, String>,
    /// True for ctnet itself (IPv4-only networks): the row every ratio is taken against.
    pub is_ctnet: bool,
    /// True for ctnet on dual-stack networks (`--ipv6`), compared with the row above.
    pub is_dual_stack: bool,
    /// True for ctnet on networks with container-name DNS (and its agent running),
    /// compared with ctnet's row, whose networks have it off.
    pub is_dns_on: bool,
}

impl Row {
    /// Every round's samples together.
    fn pooled(&self) -> Option<Measured> {
        let rounds = self.outcome.as_ref().ok()?;
        Some(Measured {
            attach: rounds.iter().flat_map(|m| m.attach.clone()).collect(),
            detach: rounds.iter().flat_map(|m| m.detach.clone()).collect(),
        })
    }

    /// Each round's p50 of attach and of detach.
    fn round_p50s(&self) -> Option<Vec<(Duration, Duration)>> {
        self.outcome
            .as_ref()
            .ok()?
            .iter()
            .map(|m| m.summaries().map(|(a, d)| (a.p50, d.p50)))
            .collect()
    }
}

/// Attach and detach costs of one system over N containers.
pub struct Measured {
    /// One entry per attach.
    pub attach: Vec<Cost>,
    /// One entry per detach.
    pub detach: Vec<Cost>,
}

impl Measured {
    fn summaries(&self) -> Option<(Summary, Summary)> {
        Some((
            Summary::of(&walls(&self.attach))?,
            Summary::of(&walls(&self.detach))?,
        ))
    }
}

fn walls(costs: &[Cost]) -> Vec<Duration> {
    costs.iter().map(|c| c.wall).collect()
}

/// "1.40 ms", right-aligned in 10 columns.
fn ms(d: Duration) -> String {
    format!("{:>7.2} ms", d.as_secs_f64() * 1e3)
}

const LABEL_WIDTH: usize = 30;

/// The main table: p50/p99 of attach and detach per system over every round's samples,
/// and ctnet's ratio to each: in each round ctnet's p50 over the system's, then the
/// median of those (with one round, simply the ratio of the p50s). Rounds run every
/// system one after another, so a slow spell of the machine falls on one round of
/// every system rather than on one system's whole run.
pub fn print_main(rows: &[Row], n: usize, rounds: usize) {
    println!();
    println!(
        "attach and detach, {n} containers, one published TCP port each (wall clock per operation){}",
        if rounds > 1 {
            format!("; {rounds} rounds")
        } else {
            String::new()
        }
    );
    let how = if rounds > 1 {
        "p50; median of the rounds' ratios"
    } else {
        "p50"
    };
    println!(
        "{:<LABEL_WIDTH$} {:>10} {:>10} {:>10} {:>10}   ctnet/this (attach, detach; {how})",
        "system", "attach p50", "attach p99", "detach p50", "detach p99"
    );
    let ctnet = rows.iter().find(|r| r.is_ctnet).and_then(Row::round_p50s);
    for row in rows {
        match row.pooled().as_ref().map(Measured::summaries) {
            Some(Some((a, d))) => {
                let ratios = match (&ctnet, row.is_ctnet, row.round_p50s()) {
                    (Some(c), false, Some(r)) => {
                        let attach = median_ratio(c.iter().zip(&r).map(|(c, r)| (c.0, r.0)));
                        let detach = median_ratio(c.iter().zip(&r).map(|(c, r)| (c.1, r.1)));
                        format!("{attach}, {detach}")
                    }
                    _ => String::new(),
                };
                println!(
                    "{:<LABEL_WIDTH$} {} {} {} {}   {ratios}",
                    row.label,
                    ms(a.p50),
                    ms(a.p99),
                    ms(d.p50),
                    ms(d.p99)
                );
            }
            Some(None) => println!("{:<LABEL_WIDTH$} no samples", row.label),
            None => {
                let why = row.outcome.as_ref().err().map_or("", |w| first_line(w));
                println!("{:<LABEL_WIDTH$} {why}", row.label)
            }
        }
    }
}

/// With `--ipv6`: what dual stack costs ctnet, as the ratio of its dual-stack p50 to its
/// IPv4-only p50 (in each round, then the median of the rounds), for attach and detach.
/// Nothing when either row is missing or failed; both rows' p50/p99 are in the main table.
pub fn print_dual_stack(rows: &[Row]) {
    if let Some(line) = dual_stack_line(rows) {
        println!();
        println!("{line}");
    }
}

fn dual_stack_line(rows: &[Row]) -> Option<String> {
    let v4 = rows.iter().find(|r| r.is_ctnet)?.round_p50s()?;
    let both = rows.iter().find(|r| r.is_dual_stack)?.round_p50s()?;
    let attach = median_ratio(both.iter().zip(&v4).map(|(d, v)| (d.0, v.0)));
    let detach = median_ratio(both.iter().zip(&v4).map(|(d, v)| (d.1, v.1)));
    let how = if v4.len() > 1 {
        "p50; median of the rounds' ratios"
    } else {
        "p50"
    };
    Some(format!(
        "dual stack / IPv4 only (ctnet, {how}): attach {attach}, detach {detach}"
    ))
}

/// What DNS costs an attach: the ratio of ctnet's p50 on networks with DNS on (agent
/// running) to its p50 with DNS off, in each round, then the median; the target is at
/// most 1.05. Nothing when either row is missing or failed.
pub fn print_dns_on_off(rows: &[Row]) {
    if let Some(line) = dns_on_off_line(rows) {
        println!();
        println!("{line}");
    }
}

fn dns_on_off_line(rows: &[Row]) -> Option<String> {
    let off = rows.iter().find(|r| r.is_ctnet)?.round_p50s()?;
    let on = rows.iter().find(|r| r.is_dns_on)?.round_p50s()?;
    let attach = median_ratio(on.iter().zip(&off).map(|(d, v)| (d.0, v.0)));
    let detach = median_ratio(on.iter().zip(&off).map(|(d, v)| (d.1, v.1)));
    let how = if off.len() > 1 {
        "p50; median of the rounds' ratios"
    } else {
        "p50"
    };
    Some(format!(
        "DNS on / DNS off (ctnet, {how}): attach {attach}, detach {detach} (target: attach at most 1.05x)"
    ))
}

/// The DNS part: per server, queries per second (median of the turns), what was
/// answered, wrong and lost, and its resident memory before and after the load.
pub fn print_dns(rows: &[ServerRow], size: dns::Size) {
    println!();
    println!(
        "DNS: {} A queries per turn over UDP for {} container names, {} in flight, from a container to its gateway; {} turn(s) per server, taking turns",
        size.queries, size.names, size.window, size.turns
    );
    println!(
        "{:<LABEL_WIDTH$} {:>10} {:>9} {:>7} {:>7} {:>11} {:>11}",
        "server", "queries/s", "answered", "wrong", "lost", "VmRSS idle", "VmRSS after"
    );
    let mut best: Vec<(&str, f64)> = Vec::new();
    for row in rows {
        match &row.outcome {
            Ok(m) if !m.loads.is_empty() => {
                let sum = |f: fn(&dns::load::Load) -> usize| m.loads.iter().map(f).sum::<usize>();
                let qps = m.median_per_second();
                best.push((&row.label, qps));
                println!(
                    "{:<LABEL_WIDTH$} {:>10.0} {:>9} {:>7} {:>7} {:>11} {:>11}",
                    row.label,
                    qps,
                    sum(|l| l.answered),
                    sum(|l| l.wrong),
                    sum(|l| l.lost),
                    m.rss_idle_kib.map_or("-".into(), mib),
                    m.rss_loaded_kib.map_or("-".into(), mib)
                );
            }
            Ok(_) => println!("{:<LABEL_WIDTH$} no samples", row.label),
            Err(why) => println!("{:<LABEL_WIDTH$} {}", row.label, first_line(why)),
        }
    }
    if let [(a, qa), (b, qb)] = best.as_slice() {
        if *qb > 0.0 {
            println!("{a} / {b}, queries per second: {:.2}x", qa / qb);
        }
    }
}

/// Each round's attach and detach p50 per system, to show how much rounds differ.
pub fn print_rounds(rows: &[Row]) {
    let lines: Vec<(&str, Vec<(Duration, Duration)>)> = rows
        .iter()
        .filter_map(|row| Some((row.label.as_str(), row.round_p50s()?)))
        .filter(|(_, rounds)| rounds.len() > 1)
        .collect();
    if lines.is_empty() {
        return;
    }
    println!();
    println!("each round's p50, attach / detach (ms)");
    for (label, rounds) in lines {
        let cells: Vec<String> = rounds
            .iter()
            .map(|(a, d)| {
                format!(
                    "{:.2} / {:.2}",
                    a.as_secs_f64() * 1e3,
                    d.as_secs_f64() * 1e3
                )
            })
            .collect();
        println!("{label:<LABEL_WIDTH$} {}", cells.join("   "));
    }
}

/// The median of ctnet-over-other ratios (first over second of each pair), formatted as
/// [`ratio`] does; "-" when there are none or any is undefined.
fn median_ratio(pairs: impl Iterator<Item = (Duration, Duration)>) -> String {
    let mut values = Vec::new();
    for (ctnet, other) in pairs {
        if other.is_zero() {
            return "-".into();
        }
        values.push(ctnet.as_secs_f64() / other.as_secs_f64());
    }
    if values.is_empty() {
        return "-".into();
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    let median = if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    };
    format!("{median:.2}x")
}

/// The peak RSS of the processes behind one attach, largest over all attaches.
pub fn print_memory(rows: &[Row]) {
    let lines: Vec<(String, u64, u64)> = rows
        .iter()
        .filter_map(|row| {
            let measured = row.pooled()?;
            let mut rss: Vec<u64> = measured
                .attach
                .iter()
                .filter_map(|c| c.max_rss_kib)
                .collect();
            rss.sort_unstable();
            let max = *rss.last()?;
            Some((row.label.clone(), rss[(rss.len() - 1) / 2], max))
        })
        .collect();
    if lines.is_empty() {
        return;
    }
    println!();
    println!("peak memory of one attach (ru_maxrss of the child from wait4; processes it waited for included)");
    println!(
        "{:<LABEL_WIDTH$} {:>10} {:>10}",
        "system", "median", "largest"
    );
    for (label, median, max) in lines {
        println!("{:<LABEL_WIDTH$} {} {}", label, mib(median), mib(max));
    }
}

fn mib(kib: u64) -> String {
    format!("{:>6.1} MiB", kib as f64 / 1024.0)
}

/// "0.08x"; ctnet's time over the other's, so below 1 means ctnet is faster.
fn ratio(ctnet: Duration, other: Duration) -> String {
    if other.is_zero() {
        return "-".into();
    }
    format!("{:.2}x", ctnet.as_secs_f64() / other.as_secs_f64())
}

/// One system's scale curve: per N, the p50 of attach and of detach.
pub struct Curve {
    /// The system's label.
    pub label: String,
    /// (N, attach p50, detach p50) per curve point, or why the system has none.
    pub points: Result<Vec<(usize, Duration, Duration)>, String>,
}

/// The scale curve: one line per N, one "attach / detach" cell per system.
pub fn print_curve(curves: &[Curve], samples: usize) {
    println!();
    println!(
        "scale curve: with N-1 containers attached, p50 of attaching the next {samples} one after another, then of detaching them again; one published port each; ms"
    );
    let ns: Vec<usize> = curves
        .iter()
        .filter_map(|c| c.points.as_ref().ok())
        .flat_map(|p| p.iter().map(|(n, _, _)| *n))
        .fold(Vec::new(), |mut acc, n| {
            if !acc.contains(&n) {
                acc.push(n);
            }
            acc
        });
    println!("{:<LABEL_WIDTH$} {}", "system", header_cells(&ns));
    for curve in curves {
        match &curve.points {
            Ok(points) => {
                let cells: Vec<String> = ns
                    .iter()
                    .map(|n| match points.iter().find(|(pn, _, _)| pn == n) {
                        Some((_, a, d)) => format!(
                            "{:>17}",
                            format!(
                                "{:.2} / {:.2}",
                                a.as_secs_f64() * 1e3,
                                d.as_secs_f64() * 1e3
                            )
                        ),
                        None => format!("{:>17}", "-"),
                    })
                    .collect();
                println!("{:<LABEL_WIDTH$} {}", curve.label, cells.join(" "));
            }
            Err(why) => println!("{:<LABEL_WIDTH$} {}", curve.label, first_line(why)),
        }
    }
}

fn header_cells(ns: &[usize]) -> String {
    ns.iter()
        .map(|n| format!("{:>17}", format!("N={n} att / det")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Data-path throughputs and the two comparisons the targets are about.
pub fn print_datapath(data: &DataPath) {
    println!();
    println!(
        "data path (iperf3 -t {}, one TCP stream; Gbit/s)              median  (runs)",
        datapath::SECONDS
    );
    for path in &data.paths {
        match (&path.runs, path.median()) {
            (Ok(runs), Some(median)) => {
                let runs: Vec<String> = runs.iter().map(|g| format!("{g:.2}")).collect();
                println!("{:<60} {median:>6.2}  ({})", path.what, runs.join(" "));
            }
            (Err(e), _) => println!("{:<60} failed: {}", path.what, first_line(e)),
            (Ok(_), None) => println!("{:<60} no runs", path.what),
        }
    }
    for comparison in &data.comparisons {
        match comparison.ratio {
            Some(ratio) => println!("{:<68} {:>5.1} %", comparison.what, ratio * 100.0),
            None => println!("{:<68}   n/a", comparison.what),
        }
    }
}

/// The Podman tables: p50/p99 of each kind of `podman run --rm` per back end with the
/// network's share, then the ratios of each ctnet role to the back end it stands in for.
pub fn print_podman(version: &str, rows: &[podman::Row], runs: usize) {
    println!();
    println!(
        "{version}: `podman run --rm {} true`, {runs} rounds of one run of each kind; wall clock of the whole command",
        podman::IMAGE
    );
    println!("(network: the p50 minus the same back end's --network none p50)");
    println!(
        "{:<LABEL_WIDTH$} {:<CASE_WIDTH$} {:>10} {:>10} {:>10}",
        "back end", "run", "p50", "p99", "network"
    );
    for row in rows {
        let summaries = match &row.outcome {
            Ok(samples) => podman_summaries(samples),
            Err(why) => {
                println!("{:<LABEL_WIDTH$} {}", row.label, first_line(why));
                continue;
            }
        };
        let Some(summaries) = summaries else {
            println!("{:<LABEL_WIDTH$} no samples", row.label);
            continue;
        };
        for (k, (case, s)) in CASES.iter().zip(&summaries).enumerate() {
            let label = if k == 0 { row.label.as_str() } else { "" };
            let share = if k == 0 {
                String::new()
            } else {
                signed_ms(network_share_ms(s, &summaries[0]))
            };
            let line = format!(
                "{label:<LABEL_WIDTH$} {:<CASE_WIDTH$} {} {} {share}",
                case.describe(),
                ms(s.p50),
                ms(s.p99)
            );
            println!("{}", line.trim_end());
        }
    }
    print_podman_ratios(rows);
}

/// Width of the kind-of-run column.
const CASE_WIDTH: usize = 16;

/// ctnet's p50 over its counterpart's, for the whole run and for the network's share.
fn print_podman_ratios(rows: &[podman::Row]) {
    let measured = |row: &podman::Row| row.outcome.as_ref().ok().and_then(podman_summaries);
    let pairs: Vec<(&podman::Row, &podman::Row)> = rows
        .iter()
        .filter_map(|ctnet| {
            let peer = ctnet.backend.stands_in_for()?;
            let peer = rows.iter().find(|r| r.backend == peer)?;
            Some((ctnet, peer))
        })
        .filter(|(ctnet, peer)| measured(ctnet).is_some() && measured(peer).is_some())
        .collect();
    if pairs.is_empty() {
        return;
    }
    println!();
    println!(
        "{:<50} {:<CASE_WIDTH$} {:>9} {:>9}",
        "ctnet / the back end it stands in for (p50)", "run", "whole run", "network"
    );
    for (ctnet, peer) in pairs {
        let (Some(c), Some(p)) = (measured(ctnet), measured(peer)) else {
            continue;
        };
        let name = format!("{} / {}", ctnet.label, peer.label);
        for k in 1..CASES.len() {
            let label = if k == 1 { name.as_str() } else { "" };
            let share = share_ratio(
                network_share_ms(&c[k], &c[0]),
                network_share_ms(&p[k], &p[0]),
            );
            println!(
                "{label:<50} {:<CASE_WIDTH$} {:>9} {:>9}",
                CASES[k].describe(),
                ratio(c[k].p50, p[k].p50),
                share
            );
        }
    }
}

/// p50/p99 of every case, or None if any case has no samples.
fn podman_summaries(samples: &[Vec<Duration>; 3]) -> Option<[Summary; 3]> {
    Some([
        Summary::of(&samples[0])?,
        Summary::of(&samples[1])?,
        Summary::of(&samples[2])?,
    ])
}

/// A run's p50 minus the no-network run's p50, in ms; negative when lost in noise.
fn network_share_ms(run: &Summary, none: &Summary) -> f64 {
    (run.p50.as_secs_f64() - none.p50.as_secs_f64()) * 1e3
}

/// "  12.34 ms", or "-12.34 ms": a difference can come out below zero.
fn signed_ms(millis: f64) -> String {
    format!("{millis:>7.2} ms")
}

/// ctnet's network share over the other's, "n/a" when either is not above zero (a
/// share that small is lost in the run-to-run noise of the whole command).
fn share_ratio(ctnet_ms: f64, other_ms: f64) -> String {
    if ctnet_ms <= 0.0 || other_ms <= 0.0 {
        return "n/a".into();
    }
    format!("{:.2}x", ctnet_ms / other_ms)
}

/// The first line of a message, for table cells; the full text goes to stderr.
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// `--run`: whole commands, p50/p99 of each over its turns, and the ratios.
pub fn print_lifecycle(life: &crate::lifecycle::Lifecycle) {
    const WIDTH: usize = 52;
    println!();
    println!(
        "whole commands, {} runs of each taken in turns (wall clock, fork+exec to reap; several processes: their sum)",
        life.turns
    );
    println!("{:<WIDTH$} {:>10} {:>10}", "command", "p50", "p99");
    for row in &life.rows {
        match (&row.runs, row.summary()) {
            (Ok(_), Some(s)) => println!("{:<WIDTH$} {} {}", row.label, ms(s.p50), ms(s.p99)),
            (Ok(_), None) => println!("{:<WIDTH$} no samples", row.label),
            (Err(why), _) => println!("{:<WIDTH$} {}", row.label, first_line(why)),
        }
    }
    for r in crate::lifecycle::ratios(life) {
        let value = r
            .value
            .map_or_else(|| "not measured".to_string(), |v| format!("{v:.2}x"));
        let target = r
            .target
            .map_or_else(String::new, |t| format!(" (target: at most {t:.1}x)"));
        println!("{}: {value}{target}", r.what);
    }
}

/// Attach and detach under churn: p50/p99 per system.
pub fn print_churn(rows: &[crate::churn::Row], size: crate::churn::Size) {
    println!();
    println!(
        "under churn: {} containers attached, then {} loops in parallel each attaching and detaching {} containers of its own {} time(s) (wall clock per operation)",
        size.background,
        crate::churn::LOOPS,
        size.per_loop,
        size.rounds
    );
    println!(
        "{:<LABEL_WIDTH$} {:>10} {:>10} {:>10} {:>10}",
        "system", "attach p50", "attach p99", "detach p50", "detach p99"
    );
    for row in rows {
        match &row.outcome {
            Ok(s) => match (Summary::of(&s.attach), Summary::of(&s.detach)) {
                (Some(a), Some(d)) => println!(
                    "{:<LABEL_WIDTH$} {} {} {} {}",
                    row.label,
                    ms(a.p50),
                    ms(a.p99),
                    ms(d.p50),
                    ms(d.p99)
                ),
                _ => println!("{:<LABEL_WIDTH$} no samples", row.label),
            },
            Err(why) => println!("{:<LABEL_WIDTH$} {}", row.label, first_line(why)),
        }
    }
    println!("(target: ctnet's detach p99 at most 10 ms)");
}

/// `--observe`: per command, p50 and p90 of its wall clock with [`observe::SMALL`]
/// containers and with N, and the ratio of the p50s; then the traces' own probe times.
pub fn print_observe(o: &observe::Observed) {
    const WIDTH: usize = 66;
    let small = observe::SMALL;
    let n = o.n;
    println!();
    println!(
        "observation commands, {} turns of one run of each, with {small} and with {n} containers on network obs (wall clock, fork+exec to reap)",
        o.runs
    );
    println!(
        "{:<WIDTH$} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "command",
        format!("N={small} p50"),
        format!("N={small} p90"),
        format!("N={n} p50"),
        format!("N={n} p90"),
        format!("{n}/{small}")
    );
    for row in &o.rows {
        let cells = |runs: &observe::Runs| -> Result<(Duration, Duration), String> {
            match runs {
                Ok(r) => observe::p50_p90(&observe::walls(r)).ok_or_else(|| "no samples".into()),
                Err(why) => Err(first_line(why).to_string()),
            }
        };
        match (cells(&row.small), cells(&row.large)) {
            (Ok((s50, s90)), Ok((l50, l90))) => println!(
                "{:<WIDTH$} {} {} {} {} {:>8}",
                row.label,
                ms(s50),
                ms(s90),
                ms(l50),
                ms(l90),
                ratio(l50, s50)
            ),
            (Ok((s50, s90)), Err(why)) => println!(
                "{:<WIDTH$} {} {}   N={n}: {why}",
                row.label,
                ms(s50),
                ms(s90)
            ),
            (Err(why), _) => println!("{:<WIDTH$} {why}", row.label),
        }
    }
    println!("the probe's own time, sending to answer (or to the drop seen), as each trace reports it (elapsed_ms), p50:");
    for row in o.rows.iter().filter(|r| r.is_trace) {
        let p50 = |runs: &observe::Runs| {
            runs.as_ref()
                .ok()
                .and_then(|r| crate::stats::percentile(&observe::probes(r), 50.0))
                .map_or_else(|| format!("{:>10}", "-"), ms)
        };
        println!(
            "{:<WIDTH$} {} {:>10} {}",
            row.label,
            p50(&row.small),
            "",
            p50(&row.large)
        );
    }
}

/// `--policy`: per setup the median (and range) of throughput, RR and CRR over the
/// rounds with the bridge's `nf_call_iptables` seen; the ratios the targets are about;
/// then `ctnet policy add`/`rm` with 1 and with N entries present.
pub fn print_policy(m: &policy::Measured) {
    const WIDTH: usize = 52;
    let size = &m.size;
    let n = policy::thousands(size.entries);
    let window = format!("{:.1} s", size.window.as_secs_f64());
    println!();
    println!(
        "network policy: cli (role=cli) -> srv (role=srv) port {}/tcp on one bridge, all on CPU {}; {} round(s) of one run of each setup, taken in turns",
        policy::PORT,
        m.cpu,
        size.rounds
    );
    println!(
        "(Gbit/s: {}, one TCP stream; RR/s: 1-byte request and answer on one connection, {window}; CRR/s: connect, one request and answer, close, {window}; each the best of {} runs per round; median of the rounds (lowest-highest))",
        size.iperf.words(),
        size.tries
    );
    println!(
        "{:<WIDTH$} {:>7} {:>20} {:>22} {:>20}",
        "setup", "nf_call", "Gbit/s", "RR/s", "CRR/s"
    );
    for row in &m.rows {
        if let Err(why) = &row.runs {
            println!("{:<WIDTH$} {}", row.label, first_line(why));
            continue;
        }
        let cell = |metric, digits: usize| match (row.median(metric), row.range(metric)) {
            (Some(med), Some((lo, hi))) => {
                format!("{med:.digits$} ({lo:.digits$}-{hi:.digits$})")
            }
            _ => "-".into(),
        };
        println!(
            "{:<WIDTH$} {:>7} {:>20} {:>22} {:>20}",
            row.label,
            row.nf_call(),
            cell(policy::Metric::Throughput, 2),
            cell(policy::Metric::Rr, 0),
            cell(policy::Metric::Crr, 0)
        );
    }
    println!(
        "{:<WIDTH$} {:>7} {:>20} {:>22} {:>20}",
        "ratios (median of the pairs' or rounds' ratios)", "", "Gbit/s", "RR/s", "CRR/s"
    );
    for c in &m.comparisons {
        let cells: Vec<String> = c
            .ratios
            .iter()
            .zip([20, 22, 20])
            .map(|(r, w)| match r {
                Some(r) => format!("{:>w$}", format!("{:.1} %", r * 100.0)),
                None => format!("{:>w$}", "n/a"),
            })
            .collect();
        println!("{:<WIDTH$} {:>7} {}", c.what, "", cells.join(" "));
    }
    if let Err(why) = &m.pairs {
        println!(
            "{:<WIDTH$} {}",
            format!("{n} / 1, adjacent pairs"),
            first_line(why)
        );
    }
    println!(
        "`ctnet policy add` of one more policy (one port), whole process, wall clock, p50 of {}; and its `policy rm`:",
        size.add_runs
    );
    let mut p50s = Vec::new();
    for (what, timings) in [
        ("with 1 entry present".to_string(), &m.with_one),
        (format!("with {n} entries present"), &m.with_many),
    ] {
        match timings {
            Ok(t) => match (policy::p50(&t.add), policy::p50(&t.rm)) {
                (Some(add), Some(rm)) => {
                    println!("  {what:<WIDTH$} add {}   rm {}", ms(add), ms(rm));
                    p50s.push((add, rm));
                }
                _ => println!("  {what:<WIDTH$} no samples"),
            },
            Err(why) => println!("  {what:<WIDTH$} {}", first_line(why)),
        }
    }
    if let [(add1, rm1), (addn, rmn)] = p50s.as_slice() {
        println!(
            "  {:<WIDTH$} add {:>10}   rm {:>10}",
            format!("{n} / 1"),
            ratio(*addn, *add1),
            ratio(*rmn, *rm1)
        );
    }
    if let Some(p) = policy::p50(&m.big_adds) {
        println!(
            "adding the {}-port policy (one `ctnet policy add` process), p50 of {}: {}",
            policy::thousands(size.entries - 1),
            m.big_adds.len(),
            ms(p)
        );
    }
    if let Some(p) = policy::p50(&m.linear_loads) {
        println!(
            "loading the {n}-rule linear chain (`nft -f`, not ctnet), p50 of {}: {}",
            m.linear_loads.len(),
            ms(p)
        );
    }
    if let (Some(one), Some(many)) = m.rules {
        println!("rules in table inet ctnet: {one} with 1 entry, {many} with {n}");
    }
}

/// `--overlay`: throughput over the overlay against the bare underlay, attach on an
/// overlay against a bridge network, and convergence per cluster size (join and loss,
/// each over the rounds: the median, and the lowest and highest).
pub fn print_overlay(m: &overlay::Measured) {
    const WIDTH: usize = 70;
    let ttl = overlay::LEASE_TTL;
    println!();
    println!(
        "overlay networks: ov1 10.50.0.0/16 (VXLAN, a /24 per host) on simulated hosts (network namespaces on one underlay bridge), one etcd member, ctnet-agent --lease-ttl {ttl} on each"
    );
    println!("{}; {}", m.ctnet, m.agent);
    match &m.throughput {
        None => println!("throughput: iperf3 not installed (apt-get install iperf3); skipped"),
        Some(t) => {
            println!(
                "{:<WIDTH$} median  (runs)",
                format!(
                    "throughput h1 -> h2 (iperf3 -t {}, one TCP stream; Gbit/s), {} round(s) in turns",
                    m.size.iperf_seconds, m.size.rounds
                )
            );
            for (what, runs) in [
                (
                    "  container -> container over the overlay (VXLAN)",
                    &t.overlay,
                ),
                (
                    "  h1 -> h2 on the bare underlay (192.0.2.11 -> .12)",
                    &t.underlay,
                ),
            ] {
                match runs {
                    Ok(r) => {
                        let cells: Vec<String> = r.iter().map(|g| format!("{g:.2}")).collect();
                        let median = datapath::median(r).map_or("-".into(), |g| format!("{g:.2}"));
                        println!("{what:<WIDTH$} {median:>6}  ({})", cells.join(" "));
                    }
                    Err(e) => println!("{what:<WIDTH$} failed: {}", first_line(e)),
                }
            }
            let ratio = t
                .ratio()
                .map_or_else(|| "n/a".to_string(), |r| format!("{:.1} %", r * 100.0));
            println!(
                "{:<WIDTH$} {ratio:>6}",
                "  overlay / underlay (median of the rounds' ratios)"
            );
        }
    }
    println!(
        "attach on h1 with its agent running: whole `ctnet attach` process, namespace made beforehand, detached (untimed) before the next; {} of each, taken in turns",
        m.size.attaches
    );
    match &m.attaches {
        Ok(a) => match (Summary::of(&a.overlay), Summary::of(&a.bridge)) {
            (Some(o), Some(b)) => {
                println!("  {:<28} {:>10} {:>10}", "network", "p50", "p99");
                println!("  {:<28} {} {}", "overlay ov1", ms(o.p50), ms(o.p99));
                println!("  {:<28} {} {}", "bridge br1", ms(b.p50), ms(b.p99));
                println!(
                    "  overlay / bridge: p50 {} (target: at most 1.1x), p99 {}",
                    ratio(o.p50, b.p50),
                    ratio(o.p99, b.p99)
                );
            }
            _ => println!("  no samples"),
        },
        Err(e) => println!("  failed: {}", first_line(e)),
    }
    print_convergence(m);
}

/// The convergence table: one column per cluster size.
fn print_convergence(m: &overlay::Measured) {
    const WIDTH: usize = 70;
    let ttl = overlay::LEASE_TTL;
    println!(
        "convergence: with H-1 hosts up, host H's agent starts (join), then is SIGKILLed and its namespace deleted (loss); seconds from the agent's start or from the SIGKILL; {} round(s): median (lowest-highest)",
        m.size.rounds
    );
    let columns: Vec<&overlay::Convergence> = m.convergence.iter().collect();
    let header: Vec<String> = columns
        .iter()
        .map(|c| format!("{:>24}", format!("{} hosts", c.hosts)))
        .collect();
    println!("  {:<WIDTH$}{}", "figure", header.join(""));
    type Pick = fn(&overlay::Convergence) -> Vec<Duration>;
    let rows: [(&str, Pick); 11] = [
        (
            "join: etcd holds the new host's block (its agent's first sync)",
            |c| c.joins.iter().filter_map(|j| j.leased).collect(),
        ),
        ("join: the last other host routes to the new host", |c| {
            c.joins
                .iter()
                .filter_map(|j| overlay::max(&j.seen_by))
                .collect()
        }),
        ("join: the median other host routes to the new host", |c| {
            c.joins
                .iter()
                .filter_map(|j| overlay::median(&j.seen_by))
                .collect()
        }),
        (
            "  the agents' part: the last host, after etcd held the block",
            |c| {
                c.joins
                    .iter()
                    .filter_map(|j| overlay::max(&j.seen_by)?.checked_sub(j.leased?))
                    .collect()
            },
        ),
        ("join: the new host routes to every other host", |c| {
            c.joins.iter().map(|j| j.knows_all).collect()
        }),
        (
            "join: h1's container connects to the new host's container",
            |c| c.joins.iter().map(|j| j.reached).collect(),
        ),
        (
            "  of which the new container's attach (once its host knew all)",
            |c| c.joins.iter().map(|j| j.attach).collect(),
        ),
        (
            "loss: etcd deleted the host's block (its lease expired)",
            |c| c.losses.iter().filter_map(|l| l.expired).collect(),
        ),
        ("loss: the last other host dropped its route", |c| {
            c.losses
                .iter()
                .filter_map(|l| overlay::max(&l.gone_from))
                .collect()
        }),
        ("loss: the median other host dropped its route", |c| {
            c.losses
                .iter()
                .filter_map(|l| overlay::median(&l.gone_from))
                .collect()
        }),
        (
            "  the agents' part: the last host, after etcd's delete",
            |c| {
                c.losses
                    .iter()
                    .filter_map(|l| overlay::max(&l.gone_from)?.checked_sub(l.expired?))
                    .collect()
            },
        ),
    ];
    for (what, pick) in rows {
        let cells: Vec<String> = columns
            .iter()
            .map(|c| format!("{:>24}", spread(&pick(c))))
            .collect();
        println!("  {what:<WIDTH$}{}", cells.join(""));
    }
    let cells: Vec<String> = columns
        .iter()
        .map(|c| {
            let last: Vec<Duration> = c
                .losses
                .iter()
                .filter_map(|l| overlay::max(&l.gone_from))
                .collect();
            let cell = overlay::median(&last).map_or("-".into(), |d| {
                format!("{:.2}x", d.as_secs_f64() / ttl as f64)
            });
            format!("{cell:>24}")
        })
        .collect();
    println!(
        "  {:<WIDTH$}{}",
        format!("loss: the last host / the lease TTL ({ttl} s; median of the rounds)"),
        cells.join("")
    );
    for c in &columns {
        if let Some(why) = &c.failed {
            println!("  {} hosts: failed: {}", c.hosts, first_line(why));
        }
    }
}

/// "0.412 (0.398-0.455)" over rounds, "0.412" for one, "-" for none.
fn spread(values: &[Duration]) -> String {
    let secs = |d: Duration| format!("{:.3}", d.as_secs_f64());
    match (
        overlay::median(values),
        values.iter().min(),
        values.iter().max(),
    ) {
        (Some(m), Some(lo), Some(hi)) if values.len() > 1 => {
            format!("{} ({}-{})", secs(m), secs(*lo), secs(*hi))
        }
        (Some(m), _, _) => secs(m),
        _ => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_read_as_ctnet_over_other() {
        assert_eq!(
            ratio(Duration::from_millis(1), Duration::from_millis(4)),
            "0.25x"
        );
        assert_eq!(ratio(Duration::from_millis(1), Duration::ZERO), "-");
    }

    #[test]
    fn the_ratio_of_several_rounds_is_their_median() {
        let ms = Duration::from_millis;
        // Rounds 1/4, 2/4 and 3/4: the median is 0.50x, whatever the pooled p50s say.
        let pairs = [(ms(1), ms(4)), (ms(2), ms(4)), (ms(3), ms(4))];
        assert_eq!(median_ratio(pairs.into_iter()), "0.50x");
        let even = [(ms(1), ms(4)), (ms(2), ms(4))];
        assert_eq!(median_ratio(even.into_iter()), "0.38x");
        assert_eq!(median_ratio([(ms(1), ms(0))].into_iter()), "-");
        assert_eq!(median_ratio(std::iter::empty()), "-");
    }

    #[test]
    fn dual_stack_is_compared_with_ctnets_ipv4_row() {
        let ms = Duration::from_millis;
        let row = |label: &str, attach: u64, detach: u64, is_ctnet, is_dual_stack| {
            let cost = |d| Cost {
                wall: ms(d),
                max_rss_kib: None,
            };
            Row {
                label: label.into(),
                outcome: Ok(vec![Measured {
                    attach: vec![cost(attach)],
                    detach: vec![cost(detach)],
                }]),
                is_ctnet,
                is_dual_stack,
                is_dns_on: false,
            }
        };
        let mut rows = vec![
            row("ctnet", 4, 2, true, false),
            row("ctnet (dual stack)", 5, 3, false, true),
        ];
        assert_eq!(
            dual_stack_line(&rows).unwrap(),
            "dual stack / IPv4 only (ctnet, p50): attach 1.25x, detach 1.50x"
        );
        rows[1].outcome = Err("failed".into());
        assert_eq!(dual_stack_line(&rows), None);
        assert_eq!(dual_stack_line(&rows[..1]), None);
    }

    #[test]
    fn dns_on_is_compared_with_ctnets_dns_off_row() {
        let ms = Duration::from_millis;
        let row = |attach: u64, is_ctnet, is_dns_on| {
            let cost = |d| Cost {
                wall: ms(d),
                max_rss_kib: None,
            };
            Row {
                label: "ctnet".into(),
                outcome: Ok(vec![Measured {
                    attach: vec![cost(attach)],
                    detach: vec![cost(2)],
                }]),
                is_ctnet,
                is_dual_stack: false,
                is_dns_on,
            }
        };
        let rows = [row(20, true, false), row(21, false, true)];
        assert_eq!(
            dns_on_off_line(&rows).unwrap(),
            "DNS on / DNS off (ctnet, p50): attach 1.05x, detach 1.00x (target: attach at most 1.05x)"
        );
        assert_eq!(dns_on_off_line(&rows[..1]), None);
    }

    #[test]
    fn spreads_are_the_median_and_the_range_over_rounds() {
        let ms = Duration::from_millis;
        assert_eq!(spread(&[ms(400), ms(455), ms(398)]), "0.400 (0.398-0.455)");
        assert_eq!(spread(&[ms(412)]), "0.412");
        assert_eq!(spread(&[]), "-");
    }

    #[test]
    fn share_ratios_need_two_positive_shares() {
        assert_eq!(share_ratio(50.0, 200.0), "0.25x");
        assert_eq!(share_ratio(-3.0, 200.0), "n/a");
        assert_eq!(share_ratio(50.0, 0.0), "n/a");
    }
}
