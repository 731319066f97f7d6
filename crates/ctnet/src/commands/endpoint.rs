//! `ctnet attach|detach|ls|gc`.

use ctnet_engine::{
    AttachSpec, ContainerRef, Engine, Error, NetworkName, Paths, PortSpec, PublishedPort, Result,
};
use ctnet_kernel::{IfName, NetnsName};

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use ctnet_engine::model::MacAddr;
use ctnet_engine::paths::{ENV_NETNS_DIR, ENV_RUN_DIR, ENV_STATE_DIR};

use crate::cli::{static_ips, AttachArgs, DetachArgs, Format, TargetArgs};
use crate::output;

fn target(args: &TargetArgs) -> Result<ContainerRef> {
    match (&args.namespace, &args.netns_path, args.pid) {
        (Some(name), None, None) => Ok(ContainerRef::Named(NetnsName::new(name)?)),
        (None, Some(path), None) => Ok(ContainerRef::Path(path.clone())),
        (None, None, Some(pid)) => Ok(ContainerRef::Pid(pid)),
        _ => Err(Error::invalid(
            "container",
            "is not given exactly once",
            "name a namespace, or give --netns-path or --pid",
        )),
    }
}

pub fn attach(engine: &mut Engine, args: AttachArgs) -> Result<()> {
    let spec = AttachSpec {
        network: NetworkName::new(&args.network)?,
        container: target(&args.target)?,
        ips: static_ips(args.ip.as_deref(), args.ip6.as_deref())?,
        ifname: args.ifname.as_deref().map(IfName::new).transpose()?,
        owner: None,
        netns_owned: false,
        publish: parse_publish(&args.publish)?,
        mac: args
            .mac
            .as_deref()
            .map(|m| MacAddr::parse("--mac", m))
            .transpose()?,
    };
    let ep = engine.attach(spec)?;
    match args.format {
        Format::Json => output::json(&ep),
        Format::Table => {
            println!(
                "{} {} {} {} {}",
                ep.container,
                ep.network,
                ep.ifname,
                ep.ips_text(),
                ep.host_ifname
            );
            for port in &ep.ports {
                println!("published {port}");
            }
        }
    }
    Ok(())
}

pub fn detach(engine: &mut Engine, args: DetachArgs) -> Result<()> {
    let network = NetworkName::new(&args.network)?;
    let container = target(&args.target)?;
    let ep = if args.no_wait {
        let ep = engine.detach_begin(&network, &container)?;
        spawn_reaper(engine.paths(), ep.id)?;
        ep
    } else {
        engine.detach(&network, &container)?
    };
    println!("{} {}", ep.container, ep.network);
    Ok(())
}

/// Starts `ctnet reap-endpoint ID` in its own process group, not waited for: it outlives
/// this process and is not hit by signals sent to the caller's job.
fn spawn_reaper(paths: &Paths, id: i64) -> Result<()> {
    let exe = std::env::current_exe().map_err(|e| {
        Error::invalid(
            "the ctnet executable",
            format!("cannot be found: {e}"),
            "run detach without --no-wait",
        )
    })?;
    Command::new(exe)
        .arg("reap-endpoint")
        .arg(id.to_string())
        .env(ENV_STATE_DIR, &paths.state_dir)
        .env(ENV_RUN_DIR, &paths.run_dir)
        .env(ENV_NETNS_DIR, &paths.netns_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| {
            Error::invalid(
                "the background detach",
                format!("cannot be started: {e}"),
                "run `ctnet gc` to finish it, or detach without --no-wait",
            )
        })?;
    Ok(())
}

pub fn list(engine: &mut Engine, format: Format) -> Result<()> {
    let endpoints = engine.endpoints()?;
    let states = engine.endpoint_states(&endpoints)?;
    match format {
        Format::Json => output::json(&endpoints),
        Format::Table => output::table(
            &[
                "CONTAINER",
                "NETWORK",
                "IFNAME",
                "ADDRESS",
                "MAC",
                "HOST-IF",
                "PORTS",
                "STATE",
            ],
            &endpoints
                .iter()
                .zip(&states)
                .map(|(e, state)| {
                    vec![
                        e.container.clone(),
                        e.network.to_string(),
                        e.ifname.to_string(),
                        e.ips_text(),
                        e.mac.to_string(),
                        e.host_ifname.to_string(),
                        ports_column(&e.ports),
                        state.clone(),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
    }
    Ok(())
}

pub fn gc(engine: &mut Engine, format: Format, discard_unknown: bool) -> Result<()> {
    let report = engine.gc_with(discard_unknown)?;
    match format {
        Format::Json => output::json(&report),
        Format::Table => {
            for n in &report.networks {
                println!("network {n}");
            }
            for e in &report.endpoints {
                println!("endpoint {e}");
            }
            for n in &report.namespaces {
                println!("netns {n}");
            }
            for d in &report.discarded {
                println!("discarded {d}");
            }
            for r in &report.repaired {
                println!("repaired {r}");
            }
            for f in &report.firewall_repaired {
                println!("firewall {f}");
            }
            if report.firewall_recreated {
                println!(
                    "firewall table inet ctnet made again, the user chain's rules carried over"
                );
            }
            for e in &report.firewall_removed {
                println!("firewall removed {e} (no network or endpoint in the store explains it)");
            }
            if let Some(dropped) = &report.user_rules_dropped {
                println!("firewall user chain rules NOT carried over: {dropped}");
            }
        }
    }
    Ok(())
}

/// Parses every `-p` argument.
pub fn parse_publish(args: &[String]) -> Result<Vec<PortSpec>> {
    args.iter().map(|a| PortSpec::parse(a)).collect()
}

/// Published ports for a table cell, like `docker ps`.
fn ports_column(ports: &[PublishedPort]) -> String {
    if ports.is_empty() {
        return "-".into();
    }
    ports
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}
