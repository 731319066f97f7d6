//! DNS on against DNS off, taken in turns in one world: the cost container-name DNS adds
//! to an attach, with nothing else differing.
//!
//! The main table's `ctnet (DNS on)` row runs in a world of its own after the DNS-off
//! row, so its ratio also prices the agent's mere presence (its firewall watch makes the
//! kernel build an nf_tables notification for every change a commit makes) and the
//! machine's drift between the two runs. Here one world holds both networks and one agent
//! (a service, as with the systemd unit), and each DNS-on attach is followed by a DNS-off
//! one, each timed as a whole process:
//!
//! ```text
//!   world ── ctnet-agent (service)
//!     ├── network turn-on  (--dns true)   t0 … tN-1   ─┐ attach t_i, attach u_i, …
//!     └── network turn-off (--dns false)  u0 … uN-1   ─┘ then detach t_i, detach u_i, …
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::servers;
use crate::child::run_timed;
use crate::sandbox::{World, NETNS_DIR};
use crate::stats::percentile;

/// The p50s of one run, DNS on and off.
#[derive(Debug, Clone, Copy)]
pub struct InTurns {
    pub n: usize,
    pub attach_on: Duration,
    pub attach_off: Duration,
    pub detach_on: Duration,
    pub detach_off: Duration,
}

/// Runs `n` attaches and detaches of each kind, taken in turns.
pub fn measure(root: &Path, ctnet: &Path, agent: &Path, n: usize) -> Result<InTurns, String> {
    let mut world = World::enter(root, "dns-turns")?;
    let state_dir = world.subdir("ctnet-state")?;
    let run_dir = world.subdir("ctnet-run")?;
    let etc_dir = world.subdir("etc-netns")?;
    let dirs = (state_dir.clone(), run_dir.clone(), etc_dir);
    let ctl = |args: &[&str]| -> Result<Duration, String> {
        let (state, run, etc): &(PathBuf, PathBuf, PathBuf) = &dirs;
        let mut cmd = std::process::Command::new(ctnet);
        cmd.args(args)
            .env("CTNET_STATE_DIR", state)
            .env("CTNET_RUN_DIR", run)
            .env("CTNET_NETNS_DIR", NETNS_DIR)
            .env("CTNET_ETC_NETNS_DIR", etc);
        run_timed(&format!("ctnet {}", args.join(" ")), &mut cmd, None).map(|f| f.wall)
    };
    ctl(&[
        "network",
        "create",
        "turn-on",
        "--subnet",
        "10.212.0.0/22",
        "--dns",
        "true",
    ])?;
    ctl(&[
        "network",
        "create",
        "turn-off",
        "--subnet",
        "10.216.0.0/22",
        "--dns",
        "false",
    ])?;
    let _agent = servers::start_agent(
        agent,
        &state_dir,
        &run_dir,
        NETNS_DIR,
        &world.dir.join("agent.log"),
    )?;
    for i in 0..n {
        for ns in [format!("t{i}"), format!("u{i}")] {
            ctl(&["netns", "add", &ns])?;
            world.adopt_netns(&ns)?;
        }
    }
    let (mut attach_on, mut attach_off) = (Vec::new(), Vec::new());
    for i in 0..n {
        let (on, off) = (format!("{}:80", 21000 + i), format!("{}:80", 41000 + i));
        attach_on.push(ctl(&["attach", "turn-on", &format!("t{i}"), "-p", &on])?);
        attach_off.push(ctl(&["attach", "turn-off", &format!("u{i}"), "-p", &off])?);
    }
    let (mut detach_on, mut detach_off) = (Vec::new(), Vec::new());
    for i in 0..n {
        detach_on.push(ctl(&["detach", "turn-on", &format!("t{i}")])?);
        detach_off.push(ctl(&["detach", "turn-off", &format!("u{i}")])?);
    }
    let p50 = |v: &[Duration]| percentile(v, 50.0).unwrap_or_default();
    Ok(InTurns {
        n,
        attach_on: p50(&attach_on),
        attach_off: p50(&attach_off),
        detach_on: p50(&detach_on),
        detach_off: p50(&detach_off),
    })
}

/// `on / off` as a ratio.
fn ratio(on: Duration, off: Duration) -> f64 {
    on.as_secs_f64() / off.as_secs_f64().max(f64::MIN_POSITIVE)
}

/// The report's lines.
pub fn print(r: &InTurns) {
    println!();
    println!(
        "DNS on / DNS off, taken in turns in one world with one agent ({} of each, p50): \
         attach {:.2} / {:.2} ms = {:.2}x, detach {:.2} / {:.2} ms = {:.2}x (target: attach at most 1.05x)",
        r.n,
        r.attach_on.as_secs_f64() * 1e3,
        r.attach_off.as_secs_f64() * 1e3,
        ratio(r.attach_on, r.attach_off),
        r.detach_on.as_secs_f64() * 1e3,
        r.detach_off.as_secs_f64() * 1e3,
        ratio(r.detach_on, r.detach_off),
    );
}
