//! ctnet, driven as a container engine would drive it: one `ctnet attach` process per
//! container, one `ctnet detach` per removal, each with its own state directories.
//!
//! Per attach, ctnet opens its SQLite state, records the endpoint (address, device
//! names, port) in one transaction, creates the veth pair in the namespace with the
//! address and default route, adds the published port as a map element in its nftables
//! table, and marks the row ready. Detach withdraws the port, deletes the veth and the row.
//!
//! With `dual_stack` the networks are made with `--ipv6` and an IPv6 subnet beside the
//! IPv4 one, so every attach also gives the container an IPv6 address and default route.
//!
//! [`Dns`] says whether the networks have ctnet's container-name DNS: `Off` makes them
//! with `--dns false` (what netavark and the CNI plugins are measured with: no DNS), `On`
//! with `--dns true`, and then ctnet-agent runs as a service in the world before the
//! first container (as on a host with its systemd unit), so each attach pays what it
//! costs with DNS on: the agent's liveness check and one datagram after the commit.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{Cost, System};
use crate::child::{first_line_of, run_timed, Finished};
use crate::dns::servers::{self, Server};
use crate::layout;
use crate::sandbox::{World, NETNS_DIR};

/// The container-name DNS of the benchmark's networks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dns {
    /// A ctnet from before DNS networks: no `--dns` given.
    Unknown,
    /// `--dns false`.
    Off,
    /// `--dns true`, with this ctnet-agent running as a service.
    On(PathBuf),
}

/// ctnet in one world.
pub struct Ctnet {
    label: String,
    bin: PathBuf,
    dual_stack: bool,
    dns: Dns,
    /// The agent of `Dns::On`, ended with the system.
    agent: Option<Server>,
    world: World,
    state_dir: PathBuf,
    run_dir: PathBuf,
    /// Where the namespaces' resolv.conf files go (DNS networks): inside the world, so
    /// the machine's /etc/netns is never written.
    etc_netns_dir: PathBuf,
    networks: BTreeSet<usize>,
    namespaces: BTreeSet<usize>,
}

impl Ctnet {
    /// ctnet at `bin`, with fresh state directories inside `world`; its networks are
    /// dual stack (IPv4 and IPv6) when `dual_stack`, else IPv4 only.
    pub fn new(world: World, bin: PathBuf, dual_stack: bool, dns: Dns) -> Result<Ctnet, String> {
        let state_dir = world.subdir("ctnet-state")?;
        let run_dir = world.subdir("ctnet-run")?;
        let etc_netns_dir = world.subdir("etc-netns")?;
        let mut label = label(&bin);
        if dual_stack {
            label.push_str(" (dual stack)");
        }
        match dns {
            Dns::On(_) => label.push_str(" (DNS on)"),
            Dns::Off if !dual_stack => label.push_str(" (DNS off)"),
            _ => {}
        }
        Ok(Ctnet {
            label,
            bin,
            dual_stack,
            dns,
            agent: None,
            world,
            state_dir,
            run_dir,
            etc_netns_dir,
            networks: BTreeSet::new(),
            namespaces: BTreeSet::new(),
        })
    }

    /// A `ctnet` command with this world's private state, run and netns directories.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .env("CTNET_STATE_DIR", &self.state_dir)
            .env("CTNET_RUN_DIR", &self.run_dir)
            .env("CTNET_NETNS_DIR", NETNS_DIR)
            .env("CTNET_ETC_NETNS_DIR", &self.etc_netns_dir);
        cmd
    }

    fn run(&self, args: &[&str]) -> Result<Finished, String> {
        let what = format!("ctnet {}", args.join(" "));
        run_timed(&what, &mut self.command(args), None)
    }

    /// The namespace of container `i`.
    pub fn netns_name(i: usize) -> String {
        format!("c{i}")
    }

    /// The network container `i` is on.
    pub fn network_name(i: usize) -> String {
        format!("bench{}", layout::network_of(i))
    }

    /// Runs any ctnet command in this world, untimed (the data path uses it).
    pub fn run_untimed(&self, args: &[&str]) -> Result<Finished, String> {
        self.run(args)
    }

    /// This world.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// This world, for the data path's own namespaces.
    pub fn world_mut(&mut self) -> &mut World {
        &mut self.world
    }
}

/// Whether the ctnet at `bin` makes dual-stack networks: its `network create` takes
/// `--ipv6`. Asked of its help, before anything is set up, so a build without it is
/// refused with a clear message instead of failing in the middle of a run.
pub fn check_dual_stack(bin: &Path) -> Result<(), String> {
    let out = Command::new(bin)
        .args(["network", "create", "--help"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("--ipv6: cannot run {}: {e}", bin.display()))?;
    let help = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && help.split_whitespace().any(|w| w.starts_with("--ipv6")) {
        Ok(())
    } else {
        Err(format!(
            "--ipv6: the ctnet under test ({}) does not make dual-stack networks: its `network create` has no --ipv6. Build a ctnet that has it (or pass --ctnet PATH to one), or leave out --ipv6",
            bin.display()
        ))
    }
}

/// Whether the ctnet at `bin` makes networks with or without container-name DNS: its
/// `network create` takes `--dns`.
pub fn has_dns_flag(bin: &Path) -> bool {
    Command::new(bin)
        .args(["network", "create", "--help"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|out| {
            out.status.success()
                && String::from_utf8_lossy(&out.stdout)
                    .split_whitespace()
                    .any(|w| w == "--dns" || w.starts_with("--dns="))
        })
}

/// "ctnet 0.1.0", from the binary itself.
fn label(bin: &std::path::Path) -> String {
    first_line_of(bin, &["--version"]).unwrap_or_else(|| "ctnet".to_string())
}

impl System for Ctnet {
    fn label(&self) -> &str {
        &self.label
    }

    fn prepare(&mut self, i: usize) -> Result<(), String> {
        let j = layout::network_of(i);
        if self.networks.insert(j) {
            let (name, subnet, subnet6) = (
                Ctnet::network_name(i),
                layout::subnet(j),
                layout::subnet6(j),
            );
            let mut args = vec!["network", "create", &name, "--subnet", &subnet];
            if self.dual_stack {
                args.extend(["--ipv6", "--subnet", &subnet6]);
            }
            match self.dns {
                Dns::Unknown => {}
                Dns::Off => args.extend(["--dns", "false"]),
                Dns::On(_) => args.extend(["--dns", "true"]),
            }
            self.run(&args)?;
        }
        if let (Dns::On(agent), None) = (&self.dns, &self.agent) {
            let log = self.world.dir.join("agent.log");
            self.agent = Some(servers::start_agent(
                agent,
                &self.state_dir,
                &self.run_dir,
                NETNS_DIR,
                &log,
            )?);
        }
        if self.namespaces.insert(i) {
            let name = Ctnet::netns_name(i);
            self.run(&["netns", "add", &name])?;
            self.world.adopt_netns(&name)?;
        }
        Ok(())
    }

    fn attach(&mut self, i: usize) -> Result<Cost, String> {
        let publish = format!("{}:{}", layout::host_port(i), layout::CONTAINER_PORT);
        let done = self.run(&[
            "attach",
            &Ctnet::network_name(i),
            &Ctnet::netns_name(i),
            "-p",
            &publish,
        ])?;
        Ok(cost(&done))
    }

    fn detach(&mut self, i: usize) -> Result<Cost, String> {
        let done = self.run(&["detach", &Ctnet::network_name(i), &Ctnet::netns_name(i)])?;
        Ok(cost(&done))
    }
}

fn cost(done: &Finished) -> Cost {
    Cost {
        wall: done.wall,
        max_rss_kib: Some(done.max_rss_kib),
    }
}
