//! `--observe`: how long ctnet's observation commands take as whole processes (wall
//! clock, fork+exec to reap, as every other row), with the least world a trace between
//! two containers needs and again with N containers on the host:
//!
//! ```text
//!   ctnet inspect c0 --format json
//!   ctnet topology --format json
//!   ctnet trace c0 c1:80/tcp                 answered: same bridge
//!   ctnet trace c0 203.0.113.2:80/tcp        answered: through the host's masquerade
//!   ctnet trace 203.0.113.2 203.0.113.1:10000   answered: the wan to c1's published port (DNAT)
//!   ctnet trace c0 s0:80/tcp                 dropped: s0 is on a second, strict network
//! ```
//!
//! One world: network `obs` (10.200.0.0/16) with containers c0..c(N-1), c1 publishing
//! host port 10000 → 80/tcp; network `strict` (10.201.0.0/24, `--isolate strict`) with
//! container s0; a `wan` namespace on the host's uplink (203.0.113.2, the host's default
//! route through it, as in the data path). TCP port 80 listens in c1, s0 and the wan:
//! sockets this process opens inside those namespaces (the kernel answers the SYN; each
//! connection is accepted and closed after the run, untimed).
//!
//! The runs are taken in turns (one of each command per turn) after one untimed turn
//! that resolves neighbours. First with c0 and c1 only (the least: a trace between two
//! containers of one bridge needs two), then with containers attached up to N (`ctnet
//! netns add` + `ctnet attach obs cI`, untimed) and the same turns again. Every output is
//! checked: JSON that parses, the inspected container's name, every namespace in the
//! topology, and each trace's answer and verdict; a command that says something else
//! fails its row.

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::time::Duration;

use ctnet_kernel::Netns;
use serde_json::Value;

use crate::child::run_timed;
use crate::datapath;
use crate::layout;
use crate::sandbox::World;
use crate::stats::percentile;
use crate::systems::ctnet::{has_dns_flag, Ctnet, Dns};

/// The network of the N containers, and its subnet (a /16: up to 1,023 ports anyway).
const NETWORK: &str = "obs";
const SUBNET: &str = "10.200.0.0/16";
/// The second network, strict (talks to no other), with its one container.
const STRICT: &str = "strict";
const STRICT_SUBNET: &str = "10.201.0.0/24";
const STRICT_CONTAINER: &str = "s0";
/// The port every server listens on, and the host port c1 publishes it as.
const PORT: u16 = 80;
const HOST_PORT: u16 = 10_000;
/// The wan's address (it runs the wan's server) and the host's uplink address.
const WAN_ADDR: Ipv4Addr = datapath::WAN_ADDR;
const UPLINK_ADDR: Ipv4Addr = datapath::UPLINK_ADDR;
/// The containers at the small point: c0 (inspected, sends the traces), c1 (serves).
pub const SMALL: usize = 2;
/// The most containers: all on one bridge (see [`layout::PER_NETWORK`]).
pub const MAX_N: usize = layout::PER_NETWORK;

/// The commands, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Inspect,
    Topology,
    TraceBridge,
    TraceMasquerade,
    TraceDnat,
    TraceDropped,
}

const KINDS: [Kind; 6] = [
    Kind::Inspect,
    Kind::Topology,
    Kind::TraceBridge,
    Kind::TraceMasquerade,
    Kind::TraceDnat,
    Kind::TraceDropped,
];

impl Kind {
    /// The command's arguments after `ctnet`.
    fn args(self) -> Vec<String> {
        let c0 = container(0);
        let c1 = container(1);
        let v: Vec<String> = match self {
            Kind::Inspect => vec!["inspect".into(), c0, "--format".into(), "json".into()],
            Kind::Topology => vec!["topology".into(), "--format".into(), "json".into()],
            Kind::TraceBridge => vec!["trace".into(), c0, format!("{c1}:{PORT}/tcp")],
            Kind::TraceMasquerade => vec!["trace".into(), c0, format!("{WAN_ADDR}:{PORT}/tcp")],
            Kind::TraceDnat => vec![
                "trace".into(),
                WAN_ADDR.to_string(),
                format!("{UPLINK_ADDR}:{HOST_PORT}"),
            ],
            Kind::TraceDropped => {
                vec!["trace".into(), c0, format!("{STRICT_CONTAINER}:{PORT}/tcp")]
            }
        };
        if matches!(self, Kind::Inspect | Kind::Topology) {
            v
        } else {
            [v, vec!["--format".into(), "json".into()]].concat()
        }
    }

    /// The command as printed in the table.
    fn label(self) -> String {
        let words = format!("ctnet {}", self.args().join(" "));
        match self {
            Kind::Inspect | Kind::Topology => words,
            Kind::TraceBridge => format!("{words} (bridge)"),
            Kind::TraceMasquerade => format!("{words} (masquerade)"),
            Kind::TraceDnat => format!("{words} (DNAT)"),
            Kind::TraceDropped => format!("{words} (dropped)"),
        }
    }

    fn is_trace(self) -> bool {
        !matches!(self, Kind::Inspect | Kind::Topology)
    }
}

/// Container `i` of network `obs`.
fn container(i: usize) -> String {
    format!("c{i}")
}

/// One run: the whole process's wall clock, and for a trace the time it reports from
/// sending the probe to its answer (or to seeing it dropped).
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub wall: Duration,
    pub probe: Option<Duration>,
}

/// One command's runs at one size, or why it has none.
pub type Runs = Result<Vec<Sample>, String>;

/// One command at both sizes.
#[derive(Debug)]
pub struct Row {
    pub label: String,
    pub is_trace: bool,
    /// With [`SMALL`] containers, then with N.
    pub small: Runs,
    pub large: Runs,
}

/// Everything `--observe` measured.
pub struct Observed {
    pub rows: Vec<Row>,
    pub n: usize,
    pub runs: usize,
}

/// p50 and p90 of some durations (nearest rank).
pub fn p50_p90(samples: &[Duration]) -> Option<(Duration, Duration)> {
    Some((percentile(samples, 50.0)?, percentile(samples, 90.0)?))
}

/// The wall clocks of some runs.
pub fn walls(runs: &[Sample]) -> Vec<Duration> {
    runs.iter().map(|s| s.wall).collect()
}

/// The probe times of some runs (traces only).
pub fn probes(runs: &[Sample]) -> Vec<Duration> {
    runs.iter().filter_map(|s| s.probe).collect()
}

/// The world, the servers and the open namespaces the runs need.
struct Setup {
    ctnet: Ctnet,
    /// c1, s0 and the wan, each listening on port 80.
    listeners: Vec<TcpListener>,
    /// How many named namespaces the topology must show.
    namespaces: usize,
}

/// Builds the world, measures `runs` turns with [`SMALL`] containers, attaches up to `n`
/// and measures `runs` turns again. With `settle`, each size waits for the machine to go
/// quiet first (the smoke test, whose figures mean nothing, does not).
pub fn measure(
    root: &Path,
    ctnet_bin: &Path,
    n: usize,
    runs: usize,
    settle: bool,
) -> Result<Observed, String> {
    if !(SMALL..=MAX_N).contains(&n) {
        return Err(format!(
            "{n} containers: give {SMALL} to {MAX_N} (one bridge)"
        ));
    }
    let world = World::enter(root, "observe")?;
    let dns = if has_dns_flag(ctnet_bin) {
        Dns::Off
    } else {
        Dns::Unknown
    };
    let mut setup = Setup {
        ctnet: Ctnet::new(world, ctnet_bin.to_path_buf(), false, dns.clone())?,
        listeners: Vec::new(),
        namespaces: 0,
    };
    let wan = datapath::make_wan(setup.ctnet.world_mut())?;
    setup.namespaces += 1;
    for (name, subnet, extra) in [
        (NETWORK, SUBNET, &[][..]),
        (STRICT, STRICT_SUBNET, &["--isolate", "strict"][..]),
    ] {
        let mut args = vec!["network", "create", name, "--subnet", subnet];
        args.extend_from_slice(extra);
        if dns == Dns::Off {
            args.extend(["--dns", "false"]);
        }
        setup.ctnet.run_untimed(&args)?;
    }
    add_container(&mut setup, STRICT, STRICT_CONTAINER, None)?;
    for i in 0..SMALL {
        let publish = (i == 1).then(|| format!("{HOST_PORT}:{PORT}"));
        add_container(&mut setup, NETWORK, &container(i), publish.as_deref())?;
    }
    for name in [container(1).as_str(), STRICT_CONTAINER] {
        let ns = Netns::open(&setup.ctnet.world().netns_path(name)).map_err(|e| e.to_string())?;
        setup.listeners.push(listen_in(&ns, name)?);
    }
    setup.listeners.push(listen_in(&wan, "wan")?);

    let mut rows: Vec<Row> = KINDS
        .iter()
        .map(|k| Row {
            label: k.label(),
            is_trace: k.is_trace(),
            small: Ok(Vec::new()),
            large: Ok(Vec::new()),
        })
        .collect();
    eprintln!("observe: {SMALL} containers, {runs} turns");
    turns(&setup, runs, settle, &mut rows, |r| &mut r.small);
    eprintln!("observe: attaching containers up to {n}");
    for i in SMALL..n {
        add_container(&mut setup, NETWORK, &container(i), None)?;
    }
    eprintln!("observe: {n} containers, {runs} turns");
    turns(&setup, runs, settle, &mut rows, |r| &mut r.large);
    Ok(Observed { rows, n, runs })
}

/// `ctnet netns add NAME`, `ctnet attach NETWORK NAME [-p PUBLISH]`, untimed.
fn add_container(
    setup: &mut Setup,
    network: &str,
    name: &str,
    publish: Option<&str>,
) -> Result<(), String> {
    setup.ctnet.run_untimed(&["netns", "add", name])?;
    setup.ctnet.world_mut().adopt_netns(name)?;
    setup.namespaces += 1;
    let mut args = vec!["attach", network, name];
    if let Some(p) = publish {
        args.extend(["-p", p]);
    }
    setup.ctnet.run_untimed(&args).map(|_| ())
}

/// A TCP listener on 0.0.0.0:80 inside `ns`, non-blocking so [`accept_all`] never waits.
fn listen_in(ns: &Netns, name: &str) -> Result<TcpListener, String> {
    ns.run(|| {
        let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, PORT))
            .map_err(|e| ctnet_kernel::Error::io("listen on port 80", e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| ctnet_kernel::Error::io("make the listener non-blocking", e))?;
        Ok(listener)
    })
    .map_err(|e| format!("a server in {name}: {e}"))
}

/// Accepts and closes every connection waiting on the listeners (bounded: a run makes
/// one at most per listener).
fn accept_all(listeners: &[TcpListener]) {
    for listener in listeners {
        for _ in 0..64 {
            match listener.accept() {
                Ok((conn, _)) => drop(conn),
                Err(_) => break,
            }
        }
    }
}

/// One untimed turn, then (after the machine went quiet, with `settle`) `runs` turns of
/// every command whose row has not failed, into the runs `which` picks from each row.
fn turns(
    setup: &Setup,
    runs: usize,
    settle: bool,
    rows: &mut [Row],
    which: impl Fn(&mut Row) -> &mut Runs,
) {
    for kind in KINDS {
        let _ = one(setup, kind);
        accept_all(&setup.listeners);
    }
    if settle {
        crate::quiet::wait_for_quiet(crate::QUIET_MAX, "the observation commands");
    }
    for _ in 0..runs {
        for (kind, row) in KINDS.iter().zip(rows.iter_mut()) {
            let slot = which(row);
            let Ok(done) = slot.as_mut() else {
                continue;
            };
            let outcome = one(setup, *kind);
            accept_all(&setup.listeners);
            match outcome {
                Ok(sample) => done.push(sample),
                Err(e) => {
                    eprintln!("observe: {e}");
                    *slot = Err(e);
                }
            }
        }
    }
}

/// One timed run of `kind`, its output checked.
fn one(setup: &Setup, kind: Kind) -> Result<Sample, String> {
    let args = kind.args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let what = format!("ctnet {}", args.join(" "));
    let done = run_timed(&what, &mut setup.ctnet.command(&args), None)?;
    let json: Value = serde_json::from_slice(&done.stdout)
        .map_err(|e| format!("{what}: its output is not JSON: {e}"))?;
    let probe = check(kind, &json, setup.namespaces).map_err(|e| format!("{what}: {e}"))?;
    Ok(Sample {
        wall: done.wall,
        probe,
    })
}

/// Whether `json` says what `kind` must say; for a trace, the probe time it reports.
fn check(kind: Kind, json: &Value, namespaces: usize) -> Result<Option<Duration>, String> {
    match kind {
        Kind::Inspect => {
            let name = json["container"].as_str().unwrap_or("");
            if name.split_whitespace().next() == Some(container(0).as_str()) {
                Ok(None)
            } else {
                Err(format!("inspected {name:?}, not {}", container(0)))
            }
        }
        Kind::Topology => {
            let shown = json["namespaces"].as_array().map_or(0, Vec::len);
            if shown >= namespaces {
                Ok(None)
            } else {
                Err(format!(
                    "shows {shown} namespaces where the world has {namespaces}"
                ))
            }
        }
        _ => {
            let answer = json["answer"].as_str().unwrap_or("");
            let outcome = json["verdict"]["outcome"].as_str().unwrap_or("");
            let (fits, expected) = if kind == Kind::TraceDropped {
                (
                    outcome == "dropped" && !matches!(answer, "connected" | "replied"),
                    "dropped, unanswered",
                )
            } else {
                (
                    outcome == "accepted" && answer == "connected",
                    "accepted and connected",
                )
            };
            if !fits {
                let why = json["verdict"]["why"].as_str().unwrap_or("");
                return Err(format!(
                    "answer {answer:?}, verdict {outcome:?} ({why}); expected {expected}"
                ));
            }
            let ms = json["elapsed_ms"].as_f64().unwrap_or(0.0).max(0.0);
            Ok(Some(Duration::from_secs_f64(ms / 1e3)))
        }
    }
}

/// Whether the ctnet at `bin` has the observation commands (`ctnet trace --help` works).
pub fn has_trace(bin: &Path) -> bool {
    std::process::Command::new(bin)
        .args(["trace", "--help"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_commands_are_the_issues() {
        let labels: Vec<String> = KINDS.iter().map(|k| k.label()).collect();
        assert_eq!(
            labels,
            [
                "ctnet inspect c0 --format json",
                "ctnet topology --format json",
                "ctnet trace c0 c1:80/tcp --format json (bridge)",
                "ctnet trace c0 203.0.113.2:80/tcp --format json (masquerade)",
                "ctnet trace 203.0.113.2 203.0.113.1:10000 --format json (DNAT)",
                "ctnet trace c0 s0:80/tcp --format json (dropped)",
            ]
        );
    }

    #[test]
    fn outputs_that_say_something_else_fail_the_run() {
        let answered =
            json!({"answer": "connected", "verdict": {"outcome": "accepted"}, "elapsed_ms": 2.5});
        assert_eq!(
            check(Kind::TraceBridge, &answered, 0),
            Ok(Some(Duration::from_micros(2500)))
        );
        assert!(check(Kind::TraceDropped, &answered, 0)
            .unwrap_err()
            .contains("expected dropped, unanswered"));
        let dropped =
            json!({"answer": "no_answer", "verdict": {"outcome": "dropped", "why": "isolated"}});
        assert!(check(Kind::TraceDropped, &dropped, 0).is_ok());
        assert!(check(Kind::TraceDnat, &dropped, 0)
            .unwrap_err()
            .contains("isolated"));
        let topology = json!({"namespaces": [{}, {}, {}]});
        assert!(check(Kind::Topology, &topology, 3).is_ok());
        assert!(check(Kind::Topology, &topology, 4).is_err());
        assert!(check(Kind::Inspect, &json!({"container": "c0"}), 0).is_ok());
        assert!(check(Kind::Inspect, &json!({"container": "c10"}), 0).is_err());
    }

    #[test]
    fn p90_is_a_measured_run() {
        let ms: Vec<Duration> = (1..=20).map(Duration::from_millis).collect();
        assert_eq!(
            p50_p90(&ms),
            Some((Duration::from_millis(10), Duration::from_millis(18)))
        );
        assert_eq!(p50_p90(&[]), None);
    }
}
