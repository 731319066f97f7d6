//! `ctnet attach|detach|ls|gc`.

use ctnet_engine::{
    AttachSpec, ContainerRef, Engine, Error, NetworkName, Paths, PortSpec, PublishedPort, Result,
};
use ctnet_kernel::{IfName, NetnsName};

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use ctnet_engine::model::policy::Labels;
use ctnet_engine::model::ports::host_ip_text;
use ctnet_engine::model::{DnsName, MacAddr, DEFAULT_NETWORK};
use ctnet_engine::paths::{ENV_NETNS_DIR, ENV_RUN_DIR, ENV_STATE_DIR};

use crate::cli::{static_ips, AttachArgs, DetachArgs, Format, TargetArgs};
use crate::output;

pub(crate) fn target(args: &TargetArgs) -> Result<ContainerRef> {
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
    let container = target(&args.target)?;
    // A named namespace answers to its name in DNS when that is a valid DNS name.
    let name = match &container {
        ContainerRef::Named(ns) => DnsName::try_implicit(ns.as_str()),
        _ => None,
    };
    let spec = AttachSpec {
        network: NetworkName::new(&args.network)?,
        container,
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
        name,
        aliases: args
            .aliases
            .iter()
            .map(|a| DnsName::alias(a))
            .collect::<Result<_>>()?,
        labels: Labels::parse(&args.labels)?,
    };
    let ep = engine
        .attach(spec)
        .map_err(|e| swapped(engine, "attach", &args.network, &args.target).unwrap_or(e))?;
    match args.format {
        Format::Json => output::json(&ep),
        Format::Table => {
            println!(
                "{} {} {} {} {}",
                ep.container,
                ep.network,
                ep.ifname,
                ep.ips_text(),
                ep.host_side_text()
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
        engine.detach_begin(&network, &container)
    } else {
        engine.detach(&network, &container)
    }
    .map_err(|e| swapped(engine, "detach", &args.network, &args.target).unwrap_or(e))?;
    if args.no_wait {
        spawn_reaper(engine.paths(), ep.id)?;
    }
    println!("{} {}", ep.container, ep.network);
    Ok(())
}

/// The error for `attach NAMESPACE NETWORK`, the arguments the wrong way round: when
/// the network argument names an existing namespace and the namespace argument an
/// existing network, that says more than "namespace not found". None otherwise.
fn swapped(engine: &mut Engine, verb: &str, network: &str, target: &TargetArgs) -> Option<Error> {
    let namespace = target.namespace.as_deref()?;
    let first_is_namespace =
        NetnsName::new(network).is_ok_and(|n| engine.netns_dir().path_of(&n).exists());
    let second_is_network = NetworkName::new(namespace).is_ok_and(|n| {
        n.as_str() == DEFAULT_NETWORK || engine.find_network(&n).is_ok_and(|n| n.is_some())
    });
    (first_is_namespace && second_is_network).then(|| {
        Error::invalid(
            format!("`ctnet {verb} {network} {namespace}`"),
            format!("{network} is a namespace and {namespace} a network: the network comes first"),
            format!("run `ctnet {verb} {namespace} {network}`"),
        )
    })
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
                "DNS",
                "LABELS",
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
                        e.host_side_text(),
                        ports_column(&e.ports),
                        super::network::names_text(e).unwrap_or_else(|| "-".into()),
                        Some(e.labels.text())
                            .filter(|t| !t.is_empty())
                            .unwrap_or_else(|| "-".into()),
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

/// Published ports for a table cell, like `docker ps`: a run of ports published
/// together (consecutive host and container ports, same address and protocol) is shown
/// as one range, `0.0.0.0:8000-8100->80-180/tcp`, not port by port.
fn ports_column(ports: &[PublishedPort]) -> String {
    if ports.is_empty() {
        return "-".into();
    }
    let mut runs: Vec<(&PublishedPort, &PublishedPort)> = Vec::new();
    for port in ports {
        match runs.last_mut() {
            Some((_, last)) if continues(last, port) => *last = port,
            _ => runs.push((port, port)),
        }
    }
    runs.iter()
        .map(|(first, last)| range_text(first, last))
        .collect::<Vec<_>>()
        .join(",")
}

/// True when `next` is the port after `last` in a published range.
fn continues(last: &PublishedPort, next: &PublishedPort) -> bool {
    last.host_ip == next.host_ip
        && last.protocol == next.protocol
        && last.host_port.checked_add(1) == Some(next.host_port)
        && last.container_port.checked_add(1) == Some(next.container_port)
}

/// One port, or a range from `first` to `last`.
fn range_text(first: &PublishedPort, last: &PublishedPort) -> String {
    if first == last {
        return first.to_string();
    }
    format!(
        "{}:{}-{}->{}-{}/{}",
        host_ip_text(first.host_ip),
        first.host_port,
        last.host_port,
        first.container_port,
        last.container_port,
        first.protocol
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ctnet_engine::model::ports::Protocol;

    fn port(ip: Option<&str>, host: u16, container: u16, protocol: Protocol) -> PublishedPort {
        PublishedPort {
            host_ip: ip.map(|i| i.parse().unwrap()),
            host_port: host,
            container_port: container,
            protocol,
        }
    }

    #[test]
    fn a_published_range_is_one_cell_entry() {
        let range: Vec<PublishedPort> = (0..=100)
            .map(|i| port(None, 8000 + i, 80 + i, Protocol::Tcp))
            .collect();
        assert_eq!(ports_column(&range), "0.0.0.0:8000-8100->80-180/tcp");
    }

    #[test]
    fn only_consecutive_ports_of_one_address_and_protocol_join() {
        let ports = [
            port(None, 8080, 80, Protocol::Tcp),
            port(None, 8081, 81, Protocol::Udp),
            port(Some("127.0.0.1"), 8082, 82, Protocol::Udp),
            port(Some("127.0.0.1"), 8083, 83, Protocol::Udp),
            port(Some("127.0.0.1"), 8085, 84, Protocol::Udp),
            port(Some("::1"), 9000, 90, Protocol::Tcp),
        ];
        assert_eq!(
            ports_column(&ports),
            "0.0.0.0:8080->80/tcp,0.0.0.0:8081->81/udp,127.0.0.1:8082-8083->82-83/udp,\
             127.0.0.1:8085->84/udp,[::1]:9000->90/tcp"
        );
        assert_eq!(ports_column(&[]), "-");
        let top = [
            port(None, 65535, 1, Protocol::Tcp),
            port(None, 0, 2, Protocol::Tcp),
        ];
        assert_eq!(ports_column(&top), "0.0.0.0:65535->1/tcp,0.0.0.0:0->2/tcp");
    }
}
