//! The DNS part: how many queries for container names ctnet-agent answers per second,
//! against aardvark-dns 1.4 (what netavark 1.4 starts for Podman), and how much memory
//! each keeps resident.
//!
//! ```text
//!   world (its own netns)
//!   ┌───────────────────────────────────────────────────────────────┐
//!   │ bridge of network dnsq, gateway 10.210.0.1                    │
//!   │   :53   ctnet-agent  (service mode, names from ctnet's store) │
//!   │   :5353 aardvark-dns (config dir written by the bench)        │
//!   │ q0 (client: the load)   q1 … qK (named containers, --ip .2+)  │
//!   └───────────────────────────────────────────────────────────────┘
//! ```
//!
//! Both servers hold the same K containers (ctnet's by `ctnet attach dnsq qI`, named after
//! their namespaces; aardvark's by its config file) and are loaded from the same client
//! namespace over the same bridge, in turns (ctnet, aardvark, ctnet, ...), so a slow
//! spell of the machine falls on both.

pub mod in_turns;
pub mod load;
pub mod servers;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::child::{is_executable, run_timed};
use crate::sandbox::{World, NETNS_DIR};
use load::{Load, Plan};
use servers::Server;

/// The network the DNS part makes.
const NETWORK: &str = "dnsq";
const SUBNET: &str = "10.210.0.0/24";
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 210, 0, 1);
/// aardvark-dns listens beside ctnet-agent on the same gateway, on this port.
const AARDVARK_PORT: u16 = 5353;

/// A server to load: where it answers and its process, or why there is none.
type Contender = Result<(SocketAddr, Server), String>;

/// How big the DNS load is.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    /// Named containers on the network.
    pub names: usize,
    /// Queries per load.
    pub queries: usize,
    /// Queries in flight at most.
    pub window: usize,
    /// Loads per server, taking turns.
    pub turns: usize,
}

impl Size {
    /// The full run, or the smoke test's.
    pub fn new(quick: bool) -> Size {
        if quick {
            Size {
                names: 3,
                queries: 300,
                window: 8,
                turns: 1,
            }
        } else {
            Size {
                names: 10,
                queries: 20_000,
                window: 32,
                turns: 3,
            }
        }
    }
}

/// One server's outcome.
pub struct ServerRow {
    /// "ctnet-agent 0.1.0", "aardvark-dns 1.4.0".
    pub label: String,
    /// Each turn's load and the server's resident memory before the first and after the
    /// last load, or why there are none.
    pub outcome: Result<Measured, String>,
}

/// What one server did.
pub struct Measured {
    pub loads: Vec<Load>,
    pub rss_idle_kib: Option<u64>,
    pub rss_loaded_kib: Option<u64>,
}

impl Measured {
    /// The median of the turns' queries per second.
    pub fn median_per_second(&self) -> f64 {
        let mut qps: Vec<f64> = self.loads.iter().map(Load::per_second).collect();
        qps.sort_by(f64::total_cmp);
        match qps.len() {
            0 => 0.0,
            n if n % 2 == 1 => qps[n / 2],
            n => (qps[n / 2 - 1] + qps[n / 2]) / 2.0,
        }
    }
}

/// The servers to measure, each found or with why it is not.
pub struct Servers {
    pub agent: Result<PathBuf, String>,
    pub aardvark: Result<PathBuf, String>,
}

impl Servers {
    /// ctnet-agent beside the ctnet under test; aardvark-dns at `aardvark`.
    pub fn find(ctnet: &Path, aardvark: &Path) -> Servers {
        let agent = servers::agent_beside(ctnet);
        Servers {
            agent: if is_executable(&agent) {
                Ok(agent)
            } else {
                Err(format!(
                    "not found at {} (build it with `cargo build --release -p ctnet-agent`); skipped",
                    agent.display()
                ))
            },
            aardvark: if is_executable(aardvark) {
                Ok(aardvark.to_path_buf())
            } else {
                Err(format!(
                    "not installed at {} (apt-get install aardvark-dns); skipped",
                    aardvark.display()
                ))
            },
        }
    }
}

/// The whole DNS part in one world. Err when the world itself cannot be set up.
pub fn measure(
    root: &Path,
    ctnet: &Path,
    found: &Servers,
    size: Size,
) -> Result<Vec<ServerRow>, String> {
    let mut world = World::enter(root, "dns")?;
    let state_dir = world.subdir("ctnet-state")?;
    let run_dir = world.subdir("ctnet-run")?;
    let ctl = |args: &[&str]| {
        let mut cmd = std::process::Command::new(ctnet);
        cmd.args(args)
            .env("CTNET_STATE_DIR", &state_dir)
            .env("CTNET_RUN_DIR", &run_dir)
            .env("CTNET_NETNS_DIR", NETNS_DIR);
        run_timed(&format!("ctnet {}", args.join(" ")), &mut cmd, None).map(|_| ())
    };
    // The agent first (a host with the service unit has it running before any
    // container), so no attach spawns an on-demand one.
    // Without the agent (or a ctnet without DNS networks) the network is made without
    // DNS, for aardvark-dns alone.
    let has_dns = crate::systems::ctnet::has_dns_flag(ctnet);
    let agent = match (&found.agent, has_dns) {
        (Ok(bin), true) => {
            ctl(&[
                "network", "create", NETWORK, "--subnet", SUBNET, "--dns", "true",
            ])?;
            servers::start_agent(
                bin,
                &state_dir,
                &run_dir,
                NETNS_DIR,
                &world.dir.join("agent.log"),
            )
        }
        (agent, has_dns) => {
            let mut args = vec!["network", "create", NETWORK, "--subnet", SUBNET];
            if has_dns {
                args.extend(["--dns", "false"]);
            }
            ctl(&args)?;
            Err(match agent {
                Err(why) => why.clone(),
                Ok(_) => format!("the ctnet under test ({}) has no DNS networks (`network create --dns`); skipped", ctnet.display()),
            })
        }
    };
    let mut entries = Vec::new();
    for i in 0..=size.names {
        let ns = format!("q{i}");
        ctl(&["netns", "add", &ns])?;
        world.adopt_netns(&ns)?;
        let ip = Ipv4Addr::new(10, 210, 0, (i + 2) as u8);
        ctl(&["attach", NETWORK, &ns, "--ip", &ip.to_string()])?;
        if i > 0 {
            entries.push(servers::Entry {
                id: format!("{:064x}", i),
                ipv4: ip,
                name: ns,
            });
        }
    }
    let names: Vec<String> = entries.iter().map(|e| e.name.clone()).collect();
    let client = world.netns_path("q0");
    let aardvark = found.aardvark.clone().and_then(|bin| {
        let config = servers::aardvark_config(GATEWAY, &entries);
        servers::start_aardvark(
            &bin,
            &world.dir.join("aardvark-dns"),
            NETWORK,
            &config,
            AARDVARK_PORT,
        )
        .map(|server| (bin, server))
    });
    let mut contenders: Vec<(String, Contender)> = vec![
        (
            found
                .agent
                .as_ref()
                .map_or_else(|_| "ctnet-agent".into(), |b| servers::version_of(b)),
            agent.map(|s| (SocketAddr::from((GATEWAY, 53)), s)),
        ),
        match aardvark {
            Ok((bin, server)) => (
                servers::version_of(&bin),
                Ok((SocketAddr::from((GATEWAY, AARDVARK_PORT)), server)),
            ),
            Err(why) => ("aardvark-dns".into(), Err(why)),
        },
    ];
    let mut rows: Vec<ServerRow> = contenders
        .iter()
        .map(|(label, c)| ServerRow {
            label: label.clone(),
            outcome: c
                .as_ref()
                .map(|_| Measured {
                    loads: Vec::new(),
                    rss_idle_kib: None,
                    rss_loaded_kib: None,
                })
                .map_err(Clone::clone),
        })
        .collect();
    for turn in 0..size.turns {
        for ((label, contender), row) in contenders.iter_mut().zip(rows.iter_mut()) {
            let (Ok((addr, server)), Ok(measured)) = (contender.as_ref(), row.outcome.as_mut())
            else {
                continue;
            };
            let first = names.first().map(String::as_str).unwrap_or("q1");
            let plan = Plan {
                netns: client.clone(),
                server: *addr,
                names: names.clone(),
                total: size.queries,
                window: size.window,
            };
            eprintln!(
                "{label}: {} DNS queries, {} in flight (turn {} of {})",
                size.queries,
                size.window,
                turn + 1,
                size.turns
            );
            let done =
                load::wait_answered(&client, *addr, first, Duration::from_secs(5)).and_then(|()| {
                    if turn == 0 {
                        measured.rss_idle_kib = server.rss_kib();
                    }
                    load::run(&plan)
                });
            match done {
                Ok(l) => {
                    measured.loads.push(l);
                    measured.rss_loaded_kib = server.rss_kib();
                }
                Err(e) => {
                    eprintln!("{label}: {e}");
                    row.outcome = Err(format!("failed: {e}"));
                }
            }
        }
    }
    drop(contenders);
    Ok(rows)
}
