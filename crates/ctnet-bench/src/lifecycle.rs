//! `--run`: whole commands as a user or an engine runs them, each timed from before its
//! fork+exec until it is reaped (see child.rs), taken in turns so a slow spell of the
//! machine falls on all of them:
//!
//! ```text
//!   unshare -n true                                 the least a command in a new netns costs
//!   ctnet run --network none -- true                 target ≤ 1.3x that
//!   ctnet run --network lc0 -- true                  ┐ targets against unshare -n true plus
//!   ctnet run --network lc0 -p 18080:80 -- true      │ the whole-process floor of an attach
//!   ctnet netns add + attach -p + detach + netns rm  ┘ and a detach (≤ 1.5x for -p)
//!   kernel floor, whole process: attach + detach     two runs of the static floor program
//! ```
//!
//! All in one world: ctnet's network `lc0` (DNS off where the ctnet has the flag), and a
//! bridge of the floor's own beside it, with one namespace the floor attaches to and
//! detaches from again each turn.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ctnet_kernel::RtSocket;

use crate::child::{run_timed, which};
use crate::sandbox::World;
use crate::stats::Summary;
use crate::systems::ctnet::{has_dns_flag, Ctnet, Dns};
use crate::systems::floor_process::{make_bridge, timed, FloorProgram};

/// ctnet's network for the runs, and the host port `-p` publishes.
const NETWORK: &str = "lc0";
const SUBNET: &str = "10.77.0.0/24";
const PUBLISH: &str = "18080:80";
/// The floor's bridge, its gateway and the address its container gets.
const FLOOR_BRIDGE: &str = "lcfl0";
const FLOOR_GATEWAY: [u8; 4] = [10, 78, 0, 1];
const FLOOR_ADDRESS: [u8; 4] = [10, 78, 0, 2];
const FLOOR_NETNS: &str = "lcf";
const FLOOR_VETH: &str = "vlcf";

/// One kind of command and what each of its runs took, or why it was not measured.
#[derive(Debug)]
pub struct Row {
    /// The command as printed.
    pub label: String,
    /// Wall clock of each run (for several processes, their sum per turn).
    pub runs: Result<Vec<Duration>, String>,
}

impl Row {
    /// p50/p99 of the runs, if there are any.
    pub fn summary(&self) -> Option<Summary> {
        self.runs.as_ref().ok().and_then(|r| Summary::of(r))
    }
}

/// Every row, in [`Kind`] order.
pub struct Lifecycle {
    pub rows: Vec<Row>,
    pub turns: usize,
}

/// The commands, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Unshare,
    RunNone,
    RunNetwork,
    RunPublished,
    FourProcesses,
    Floor,
}

const KINDS: [Kind; 6] = [
    Kind::Unshare,
    Kind::RunNone,
    Kind::RunNetwork,
    Kind::RunPublished,
    Kind::FourProcesses,
    Kind::Floor,
];

impl Kind {
    fn label(self) -> String {
        match self {
            Kind::Unshare => "unshare -n true".into(),
            Kind::RunNone => "ctnet run --network none -- true".into(),
            Kind::RunNetwork => format!("ctnet run --network {NETWORK} -- true"),
            Kind::RunPublished => format!("ctnet run --network {NETWORK} -p {PUBLISH} -- true"),
            Kind::FourProcesses => "ctnet netns add, attach -p, detach, netns rm".into(),
            Kind::Floor => "kernel floor, whole process: attach, detach".into(),
        }
    }
}

/// Everything one turn needs.
struct Setup {
    ctnet: Ctnet,
    unshare: Result<PathBuf, String>,
    floor: Result<FloorProgram, String>,
    floor_bridge: u32,
}

/// Runs every command `turns` times in turns, in a world of its own.
pub fn measure(
    root: &Path,
    ctnet_bin: &Path,
    floor: Result<FloorProgram, String>,
    turns: usize,
) -> Result<Lifecycle, String> {
    let world = World::enter(root, "lifecycle")?;
    let dns = if has_dns_flag(ctnet_bin) {
        Dns::Off
    } else {
        Dns::Unknown
    };
    let mut setup = Setup {
        ctnet: Ctnet::new(world, ctnet_bin.to_path_buf(), false, dns.clone())?,
        unshare: which("unshare")
            .ok_or_else(|| "unshare not found (apt-get install util-linux); skipped".to_string()),
        floor,
        floor_bridge: 0,
    };
    let mut create = vec!["network", "create", NETWORK, "--subnet", SUBNET];
    if dns == Dns::Off {
        create.extend(["--dns", "false"]);
    }
    setup.ctnet.run_untimed(&create)?;
    if setup.floor.is_ok() {
        let mut sock = RtSocket::open().map_err(|e| format!("lifecycle floor: {e}"))?;
        setup.floor_bridge = make_bridge(&mut sock, FLOOR_BRIDGE, FLOOR_GATEWAY.into())?;
        setup.ctnet.world_mut().create_netns(FLOOR_NETNS)?;
    }
    let mut rows: Vec<Row> = KINDS
        .iter()
        .map(|k| Row {
            label: k.label(),
            runs: Ok(Vec::new()),
        })
        .collect();
    crate::quiet::wait_for_quiet(crate::QUIET_MAX, "the whole commands");
    for turn in 0..turns {
        for (kind, row) in KINDS.iter().zip(rows.iter_mut()) {
            let Ok(runs) = row.runs.as_mut() else {
                continue;
            };
            match one(&setup, *kind, turn) {
                Ok(took) => runs.push(took),
                Err(e) => row.runs = Err(e),
            }
        }
    }
    Ok(Lifecycle { rows, turns })
}

/// One run of `kind`; `turn` names the namespaces of the four-process case apart.
fn one(setup: &Setup, kind: Kind, turn: usize) -> Result<Duration, String> {
    let ctnet = |args: &[&str]| {
        let what = format!("ctnet {}", args.join(" "));
        run_timed(&what, &mut setup.ctnet.command(args), None).map(|f| f.wall)
    };
    match kind {
        Kind::Unshare => {
            let unshare = setup.unshare.as_ref().map_err(Clone::clone)?;
            let mut cmd = Command::new(unshare);
            cmd.args(["-n", "true"]);
            run_timed("unshare -n true", &mut cmd, None).map(|f| f.wall)
        }
        Kind::RunNone => ctnet(&["run", "--network", "none", "--", "true"]),
        Kind::RunNetwork => ctnet(&["run", "--network", NETWORK, "--", "true"]),
        Kind::RunPublished => ctnet(&["run", "--network", NETWORK, "-p", PUBLISH, "--", "true"]),
        Kind::FourProcesses => {
            let ns = format!("lc{turn}");
            let steps: [&[&str]; 4] = [
                &["netns", "add", &ns],
                &["attach", NETWORK, &ns, "-p", PUBLISH],
                &["detach", NETWORK, &ns],
                &["netns", "rm", &ns],
            ];
            steps.iter().map(|args| ctnet(args)).sum()
        }
        Kind::Floor => {
            let floor = setup.floor.as_ref().map_err(Clone::clone)?;
            let netns = setup.ctnet.world().netns_path(FLOOR_NETNS);
            let attach = timed(
                "attach",
                floor.attach_command(
                    &netns,
                    FLOOR_VETH,
                    setup.floor_bridge,
                    FLOOR_ADDRESS.into(),
                    crate::layout::PREFIX_LEN,
                    FLOOR_GATEWAY.into(),
                ),
            )?;
            let detach = timed("detach", floor.detach_command(FLOOR_VETH))?;
            Ok(attach.wall + detach.wall)
        }
    }
}

/// The p50 of `kind`'s row, if it was measured.
fn p50(life: &Lifecycle, kind: Kind) -> Option<Duration> {
    let i = KINDS.iter().position(|k| *k == kind)?;
    life.rows.get(i)?.summary().map(|s| s.p50)
}

/// What a ratio is measured against.
pub struct Ratio {
    pub what: String,
    pub value: Option<f64>,
    pub target: Option<f64>,
}

/// The issue's ratios: each command's p50 against `unshare -n true` (for `none`), or
/// against `unshare -n true` plus the whole-process floor's attach and detach.
pub fn ratios(life: &Lifecycle) -> Vec<Ratio> {
    let unshare = p50(life, Kind::Unshare);
    let floor = p50(life, Kind::Floor);
    let reference = unshare.zip(floor).map(|(u, f)| u + f);
    let over = |a: Option<Duration>, b: Option<Duration>| {
        a.zip(b)
            .filter(|(_, b)| !b.is_zero())
            .map(|(a, b)| a.as_secs_f64() / b.as_secs_f64())
    };
    let against_both = "(unshare -n true + floor attach + floor detach)";
    vec![
        Ratio {
            what: format!("{} / unshare -n true", Kind::RunNone.label()),
            value: over(p50(life, Kind::RunNone), unshare),
            target: Some(1.3),
        },
        Ratio {
            what: format!("{} / {against_both}", Kind::RunPublished.label()),
            value: over(p50(life, Kind::RunPublished), reference),
            target: Some(1.5),
        },
        Ratio {
            what: format!("{} / {against_both}", Kind::RunNetwork.label()),
            value: over(p50(life, Kind::RunNetwork), reference),
            target: None,
        },
        Ratio {
            what: format!("{} / {against_both}", Kind::FourProcesses.label()),
            value: over(p50(life, Kind::FourProcesses), reference),
            target: None,
        },
    ]
}
