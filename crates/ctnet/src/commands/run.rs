//! `ctnet run`: a command in a fresh network namespace, attached, and removed afterwards.

use std::ffi::OsString;
use std::process::ExitCode;

use std::path::PathBuf;

use ctnet_engine::model::policy::Labels;
use ctnet_engine::model::DnsName;
use ctnet_engine::{
    AttachSpec, ContainerRef, Engine, Error, NetworkName, Owner, Paths, PortSpec, Result,
};
use ctnet_kernel::{Netns, NetnsDir, NetnsName};

use crate::cli::{static_ips, RunArgs};
use crate::commands::endpoint::parse_publish;
use crate::exec;

/// Exit code when ctnet itself fails before the command runs (Docker uses the same).
const EXIT_CTNET_FAILED: u8 = 125;
/// Exit code when the command cannot be started.
const EXIT_CANNOT_INVOKE: u8 = 126;
/// Exit code when the command is not found.
const EXIT_NOT_FOUND: u8 = 127;

/// Docker's network modes.
#[derive(Debug)]
enum Mode {
    /// The host's own namespace.
    Host,
    /// A new namespace with only loopback.
    None,
    /// Another container's namespace.
    Container(NetnsName),
    /// A new namespace attached to these networks.
    Bridge(Vec<NetworkName>),
}

fn parse_mode(networks: &[String]) -> Result<Mode> {
    let special = |n: &str| n == "host" || n == "none" || n.starts_with("container:");
    if networks.len() > 1 && networks.iter().any(|n| special(n)) {
        return Err(Error::invalid(
            format!("--network {}", networks.join(" --network ")),
            "mixes a mode (host, none, container:NAME) with other networks",
            "give either one mode or one or more network names",
        ));
    }
    match networks.first().map(String::as_str) {
        None => Ok(Mode::Bridge(vec![NetworkName::default_network()])),
        Some("host") => Ok(Mode::Host),
        Some("none") => Ok(Mode::None),
        Some(other) if other.starts_with("container:") => Ok(Mode::Container(NetnsName::new(
            &other["container:".len()..],
        )?)),
        Some(_) => networks
            .iter()
            .map(|n| NetworkName::new(n))
            .collect::<Result<_>>()
            .map(Mode::Bridge),
    }
}

pub fn run(paths: Paths, args: RunArgs) -> ExitCode {
    // Before any thread exists (a library may start one), so every thread inherits the
    // mask and only the main thread's sigtimedwait takes these signals.
    exec::block_forwarded_signals();
    match Runner::prepare(paths, &args) {
        Err(err) => {
            eprintln!("ctnet: {err}");
            ExitCode::from(EXIT_CTNET_FAILED)
        }
        Ok(runner) if runner.in_place => {
            let Some(netns) = runner.netns.as_ref() else {
                unreachable!("a runner in place always has its namespace");
            };
            // Nothing to undo afterwards, so nothing to wait for: this process becomes
            // the command, as `unshare -n` does, its exit status and signals its own.
            let err = exec::exec_in(&args.command, netns, None);
            ExitCode::from(report_not_run(&args.command, &err))
        }
        Ok(mut runner) => {
            let code = runner.run_command(&args.command);
            if let Err(err) = runner.clean_up() {
                eprintln!("ctnet: cleaning up after the command: {err}");
                if code == 0 {
                    return ExitCode::from(EXIT_CTNET_FAILED);
                }
            }
            ExitCode::from(code)
        }
    }
}

/// A prepared `ctnet run`: the namespace to run in and what to remove afterwards.
struct Runner {
    engine: Option<Engine>,
    netns: Option<Netns>,
    owned: Option<NetnsName>,
    /// The namespace's /etc/netns/NAME, whose files the command sees over /etc.
    etc: Option<PathBuf>,
    /// The command replaces this process (nothing to clean up afterwards).
    in_place: bool,
}

/// What a fresh container's attaches are made with.
#[derive(Default)]
struct Fresh {
    /// Static addresses, on the first network.
    ips: Vec<std::net::IpAddr>,
    /// Published ports, on the first network.
    publish: Vec<PortSpec>,
    /// DNS aliases, on every DNS network.
    aliases: Vec<DnsName>,
    /// Labels, on every network.
    labels: Labels,
}

impl Runner {
    fn prepare(paths: Paths, args: &RunArgs) -> Result<Runner> {
        let mode = parse_mode(&args.networks)?;
        let ips = static_ips(args.ip.as_deref(), args.ip6.as_deref())?;
        let name = args.name.as_deref().map(NetnsName::new).transpose()?;
        let aliases = args
            .aliases
            .iter()
            .map(|a| DnsName::alias(a))
            .collect::<Result<Vec<_>>>()?;
        if !aliases.is_empty() && !matches!(mode, Mode::Bridge(_)) {
            return Err(Error::invalid(
                "--alias",
                "needs a network with DNS (the container joins no network)",
                "drop --alias, or use --network NAME",
            ));
        }
        if !ips.is_empty() && !matches!(mode, Mode::Bridge(_)) {
            let flag = if args.ip.is_some() { "--ip" } else { "--ip6" };
            return Err(Error::invalid(
                flag,
                "needs a bridge network",
                format!("drop {flag}, or use --network NAME"),
            ));
        }
        let labels = Labels::parse(&args.labels)?;
        if !labels.is_empty() && !matches!(mode, Mode::Bridge(_)) {
            return Err(Error::invalid(
                "--label",
                "needs a network (labels select a container's traffic on its networks)",
                "drop --label, or use --network NAME",
            ));
        }
        let publish = parse_publish(&args.publish)?;
        if !publish.is_empty() && !matches!(mode, Mode::Bridge(_)) {
            // Docker discards them with a warning; a silent no-op helps nobody.
            return Err(Error::invalid(
                "--publish",
                "needs a bridge network (in host mode the command's own ports are the host's)",
                "drop -p, or use --network NAME",
            ));
        }
        match mode {
            Mode::Host => Ok(Runner {
                engine: None,
                netns: None,
                owned: None,
                etc: None,
                in_place: false,
            }),
            Mode::Container(other) => {
                let dir = NetnsDir::new(&paths.netns_dir);
                let netns = Netns::open(&dir.path_of(&other)).map_err(|_| {
                    Error::not_found(
                        format!("container {:?}", other.as_str()),
                        "start it with `ctnet run --name NAME ...` or create it with `ctnet netns add`",
                    )
                })?;
                Ok(Runner {
                    engine: None,
                    etc: Some(paths.etc_netns_dir().join(other.as_str())),
                    netns: Some(netns),
                    owned: None,
                    in_place: false,
                })
            }
            // Nobody can join a namespace with no name: nothing to record or clean up.
            Mode::None if name.is_none() => Ok(Runner {
                engine: None,
                netns: Some(ctnet_engine::ops::namespace::anonymous_netns()?),
                owned: None,
                etc: None,
                in_place: true,
            }),
            Mode::None => Runner::fresh(paths, name, &[], Fresh::default()),
            Mode::Bridge(networks) => Runner::fresh(
                paths,
                name,
                &networks,
                Fresh {
                    ips,
                    publish,
                    aliases,
                    labels,
                },
            ),
        }
    }

    /// A new namespace owned by this process, attached to `networks`. On networks with
    /// DNS the container answers to its `--name` (which must then be a valid DNS name)
    /// and to `aliases`; a namespace named by ctnet (`ctnet-…`) gets no DNS name.
    fn fresh(
        paths: Paths,
        name: Option<NetnsName>,
        networks: &[NetworkName],
        fresh: Fresh,
    ) -> Result<Runner> {
        let Fresh {
            mut ips,
            mut publish,
            aliases,
            labels,
        } = fresh;
        let etc_dir = paths.etc_netns_dir();
        let mut engine = Engine::open(paths)?;
        let mut dns = Vec::new();
        for network in networks {
            dns.push(engine.network(network)?.dns);
        }
        let dns_name = match &name {
            Some(name) if dns.contains(&true) => Some(DnsName::new(name.as_str())?),
            _ => None,
        };
        // Aliases go to every network with DNS; when none has it, to the first, whose
        // attach refuses them with the reason (before anything is attached).
        let with_aliases: Vec<bool> = if dns.contains(&true) {
            dns.clone()
        } else {
            (0..dns.len()).map(|i| i == 0).collect()
        };
        let name = match name {
            Some(name) => name,
            None => NetnsName::new(&format!("ctnet-{}", random_suffix())).expect("valid name"),
        };
        let owner = Owner::me();
        let netns = engine.create_owned_netns(&name, &owner)?;
        let mut runner = Runner {
            engine: Some(engine),
            netns: Some(netns),
            owned: Some(name.clone()),
            etc: Some(etc_dir.join(name.as_str())),
            in_place: false,
        };
        let engine = runner.engine.as_mut().expect("set above");
        for (i, network) in networks.iter().enumerate() {
            let spec = AttachSpec {
                network: network.clone(),
                container: ContainerRef::Named(name.clone()),
                ips: if i == 0 {
                    std::mem::take(&mut ips)
                } else {
                    Vec::new()
                },
                ifname: None,
                owner: Some(owner),
                netns_owned: true,
                publish: std::mem::take(&mut publish),
                mac: None,
                name: dns_name.clone(),
                aliases: if with_aliases[i] {
                    aliases.clone()
                } else {
                    Vec::new()
                },
                labels: labels.clone(),
            };
            match engine.attach(spec) {
                Ok(ep) => {
                    // stdout belongs to the command; say where the ports went on stderr.
                    for port in &ep.ports {
                        eprintln!("ctnet: published {port}");
                    }
                }
                Err(err) => {
                    let _ = runner.clean_up();
                    return Err(err);
                }
            }
        }
        Ok(runner)
    }

    /// Runs the command to its end; returns the exit code to pass on.
    fn run_command(&mut self, command: &[OsString]) -> u8 {
        match exec::run_and_wait(command, self.netns.as_ref(), self.etc.as_deref()) {
            Ok(status) => exec::exit_code(status).clamp(0, 255) as u8,
            Err(err) => report_not_run(command, &err),
        }
    }

    fn clean_up(&mut self) -> Result<()> {
        self.netns = None;
        match (self.engine.as_mut(), self.owned.take()) {
            (Some(engine), Some(name)) => engine.remove_owned_netns(&name),
            _ => Ok(()),
        }
    }
}

/// Says why the command could not be started; the exit code a shell gives for it.
fn report_not_run(command: &[OsString], err: &std::io::Error) -> u8 {
    eprintln!("ctnet: command {:?} cannot be run: {err}", command[0]);
    if err.kind() == std::io::ErrorKind::NotFound {
        EXIT_NOT_FOUND
    } else {
        EXIT_CANNOT_INVOKE
    }
}

fn random_suffix() -> String {
    ctnet_kernel::random::random_hex(4)
}
