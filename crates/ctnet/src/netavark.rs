//! ctnet as Podman's network backend: invoked as `netavark` (argv[0], e.g. through a
//! symlink in a `helper_binaries_dir`), it speaks netavark's command line.
//!
//! ```text
//! netavark [--config DIR] [--rootless BOOL] [--aardvark-binary PATH] [-f FILE]
//!          setup|teardown NETNS_PATH          # network options JSON on stdin (or -f)
//! netavark --version | version
//! ```
//!
//! `setup` answers with a status block: per network, the interface's MAC and addresses.
//! Errors are `{"error": "..."}` on stdout with exit code 1, as netavark reports them.
//! Podman does its own IPAM and passes each container's addresses; ctnet makes each
//! network on first use from Podman's `network_info` (subnet, gateway, bridge name,
//! internal) and attaches the container with those addresses.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use ctnet_engine::model::ports::PortRange;
use ctnet_engine::model::{
    parse_ip, Driver, Family, Ipam, Isolation, MacAddr, MacvlanConfig, MacvlanMode, Runtime,
};
use ctnet_engine::{
    AttachSpec, ContainerRef, Engine, Error, ErrorKind, NetworkName, NetworkSpec, Paths, PortSpec,
    Protocol, Subnet,
};
use ctnet_kernel::IfName;
use serde::Deserialize;
use serde_json::{json, Value};

/// The netavark version whose protocol this speaks (Podman 4.3 on Debian 12 uses 1.4).
const NETAVARK_VERSION: &str = "1.4.0";

/// `NetworkOptions` on stdin.
#[derive(Debug, Deserialize)]
struct NetworkOptions {
    container_id: String,
    #[serde(default)]
    port_mappings: Option<Vec<PortMapping>>,
    networks: BTreeMap<String, PerNetwork>,
    network_info: BTreeMap<String, NetworkInfo>,
}

#[derive(Debug, Deserialize)]
struct PortMapping {
    #[serde(default)]
    host_ip: String,
    container_port: u16,
    host_port: u16,
    #[serde(default = "one")]
    range: u16,
    protocol: String,
}

fn one() -> u16 {
    1
}

#[derive(Debug, Deserialize)]
struct PerNetwork {
    #[serde(default)]
    static_ips: Option<Vec<String>>,
    interface_name: String,
    #[serde(default)]
    static_mac: Option<String>,
}

#[derive(Debug, Deserialize)]
struct NetworkInfo {
    #[serde(default)]
    driver: String,
    #[serde(default)]
    network_interface: Option<String>,
    #[serde(default)]
    subnets: Option<Vec<SubnetInfo>>,
    #[serde(default)]
    internal: bool,
    #[serde(default)]
    ipv6_enabled: bool,
    /// The driver's options (`podman network create -o KEY=VALUE`), all strings.
    #[serde(default)]
    options: Option<BTreeMap<String, String>>,
    /// `driver` names the IPAM driver (`host-local`, `dhcp`, `none`).
    #[serde(default)]
    ipam_options: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
struct SubnetInfo {
    subnet: String,
    #[serde(default)]
    gateway: Option<String>,
}

/// Runs netavark's command line; returns the exit code.
pub fn run(args: &[String]) -> ExitCode {
    match dispatch(args) {
        Ok(Some(out)) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(message) => refuse(&message),
    }
}

/// Answers with netavark's error object.
pub fn refuse(message: &str) -> ExitCode {
    println!("{}", json!({ "error": message }));
    ExitCode::FAILURE
}

fn dispatch(args: &[String]) -> Result<Option<Value>, String> {
    let mut file: Option<PathBuf> = None;
    let mut positional = Vec::new();
    let mut it = args.iter().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--version" | "-V" => {
                println!("netavark {NETAVARK_VERSION}");
                return Ok(None);
            }
            // Options that take a value; ctnet keeps its own state and has no DNS server.
            "--config" | "-c" | "--rootless" | "-r" | "--aardvark-binary" | "-a" => {
                it.next();
            }
            "--file" | "-f" => file = it.next().map(PathBuf::from),
            a if a.starts_with("--config=")
                || a.starts_with("--rootless=")
                || a.starts_with("--aardvark-binary=") => {}
            a if a.starts_with("--file=") => file = Some(PathBuf::from(&a["--file=".len()..])),
            a if a.starts_with('-') => return Err(format!("unknown option {a}")),
            _ => positional.push(arg.as_str()),
        }
    }
    match positional.as_slice() {
        ["version"] => Ok(Some(json!({
            "version": NETAVARK_VERSION,
            "commit": "ctnet",
            "build_time": "",
            "target": std::env::consts::ARCH,
        }))),
        ["setup", netns] => {
            let opts = read_options(file.as_ref())?;
            setup(&opts, netns).map(Some).map_err(|e| e.to_string())
        }
        ["teardown", netns] => {
            let opts = read_options(file.as_ref())?;
            teardown(&opts, netns)
                .map(|()| None)
                .map_err(|e| e.to_string())
        }
        _ => Err("usage: netavark [options] setup|teardown NETNS_PATH, or version".into()),
    }
}

fn read_options(file: Option<&PathBuf>) -> Result<NetworkOptions, String> {
    let text = match file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("read network options {}: {e}", path.display()))?,
        None => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| format!("read network options from stdin: {e}"))?;
            s
        }
    };
    serde_json::from_str(&text).map_err(|e| format!("decode network options: {e}"))
}

fn paths() -> Paths {
    Paths::from_env()
}

fn container(opts: &NetworkOptions, netns: &str) -> ContainerRef {
    ContainerRef::Runtime {
        runtime: Runtime::Podman,
        id: opts.container_id.clone(),
        netns: Some(PathBuf::from(netns)),
    }
}

/// The ctnet network for one of Podman's, made on first use from its `network_info`.
/// Every option netavark 1.4 has is honoured or refused, never ignored; isolation
/// defaults to netavark's (open).
fn network_spec(name: &str, info: &NetworkInfo) -> Result<NetworkSpec, Error> {
    let object = format!("network {name:?}");
    let driver = match info.driver.as_str() {
        "bridge" => Driver::Bridge,
        "macvlan" => Driver::Macvlan,
        other => {
            return Err(Error::invalid(
                &object,
                format!("driver {other:?} is not supported"),
                "use a bridge or macvlan network (`podman network create --driver bridge`)",
            ))
        }
    };
    let interface = info
        .network_interface
        .as_deref()
        .filter(|i| !i.is_empty())
        .map(IfName::new)
        .transpose()?;
    let mut subnets = Vec::new();
    let mut gateways = Vec::new();
    for s in info.subnets.iter().flatten() {
        let subnet = Subnet::parse(&s.subnet)?;
        if let Some(g) = s.gateway.as_deref() {
            gateways.push(parse_ip("gateway", g, Some(subnet.family()))?);
        }
        subnets.push(subnet);
    }
    let has = |family| subnets.iter().any(|s: &Subnet| s.family() == family);
    let options = NetavarkOptions::parse(&object, driver, info.options.as_ref())?;
    let ipam = ipam_driver(&object, info.ipam_options.as_ref())?;
    let (bridge, macvlan) = match driver {
        Driver::Bridge => (interface, None),
        Driver::Macvlan => {
            let parent = interface.ok_or_else(|| {
                Error::invalid(
                    &object,
                    "is a macvlan network without a parent interface (network_interface)",
                    "create it with `podman network create -d macvlan -o parent=IFACE`",
                )
            })?;
            let mode = options.mode.unwrap_or(MacvlanMode::Bridge);
            (None, Some(MacvlanConfig { parent, mode }))
        }
    };
    Ok(NetworkSpec {
        ipv4: has(Family::V4) || subnets.is_empty(),
        ipv6: info.ipv6_enabled || has(Family::V6),
        subnets,
        gateways,
        bridge,
        mtu: options.mtu,
        internal: info.internal,
        creator: Some(Runtime::Podman),
        driver,
        isolation: options.isolation,
        metric: options.metric,
        ipam,
        macvlan,
        ..NetworkSpec::named(NetworkName::new(name)?)
    })
}

/// A network's `options`, checked against what netavark 1.4 has for its driver.
struct NetavarkOptions {
    mtu: Option<u32>,
    metric: Option<u32>,
    isolation: Isolation,
    mode: Option<MacvlanMode>,
}

impl NetavarkOptions {
    fn parse(
        object: &str,
        driver: Driver,
        options: Option<&BTreeMap<String, String>>,
    ) -> Result<NetavarkOptions, Error> {
        let mut out = NetavarkOptions {
            mtu: None,
            metric: None,
            isolation: Isolation::Open,
            mode: None,
        };
        for (key, value) in options.into_iter().flatten() {
            let option = format!("{object} option {key}");
            let number = || {
                value.parse::<u32>().map_err(|_| {
                    Error::invalid(
                        format!("{option}={value:?}"),
                        "is not a whole number",
                        format!("give {key} as a number, e.g. {key}=1500"),
                    )
                })
            };
            match (key.as_str(), driver) {
                ("mtu", _) => out.mtu = Some(number()?),
                ("metric", _) => out.metric = Some(number()?),
                ("isolate", Driver::Bridge) => {
                    out.isolation = Isolation::from_isolate(&format!("{option} value"), value)?
                }
                ("mode", Driver::Macvlan) => out.mode = Some(MacvlanMode::parse(value)?),
                (other, _) => {
                    return Err(Error::invalid(
                        format!("{object} option {other:?}"),
                        format!(
                            "is refused: netavark 1.4 (Podman 4.3) has no such {driver} option"
                        ),
                        match driver {
                            Driver::Bridge => {
                                "use only mtu, metric and isolate with a bridge network"
                            }
                            Driver::Macvlan => {
                                "use only mtu, metric and mode with a macvlan network"
                            }
                        },
                    ))
                }
            }
        }
        Ok(out)
    }
}

/// The IPAM driver `ipam_options.driver` names, with netavark 1.4's answers for those
/// it does not have.
fn ipam_driver(object: &str, ipam: Option<&BTreeMap<String, String>>) -> Result<Ipam, Error> {
    match ipam.and_then(|o| o.get("driver")).map(String::as_str) {
        None | Some("host-local") => Ok(Ipam::Ctnet),
        Some("none") => Ok(Ipam::None),
        Some("dhcp") => Err(Error::invalid(
            object,
            "uses the dhcp IPAM driver, which is not supported (netavark 1.4: dhcp ipam driver is not yet supported)",
            "use the host-local IPAM driver (Podman's default) or none",
        )),
        Some(other) => Err(Error::invalid(
            object,
            format!("unsupported ipam driver {other:?}"),
            "use the host-local IPAM driver (Podman's default), or none",
        )),
    }
}

/// Port mappings as port specs, built from their fields; `range` maps consecutive ports.
fn port_specs(mappings: &[PortMapping]) -> Result<Vec<PortSpec>, Error> {
    let mut out = Vec::new();
    for m in mappings {
        let object = format!(
            "port mapping {}:{}/{}",
            m.host_port, m.container_port, m.protocol
        );
        let invalid = |cause: String| {
            Error::invalid(
                &object,
                cause,
                "give ports 1-65535, a range that stays below 65536, and tcp or udp",
            )
        };
        let ports = |first: u16| {
            let last = first.checked_add(m.range.max(1) - 1);
            last.and_then(|last| PortRange::new(first, last))
                .ok_or_else(|| {
                    invalid(format!(
                        "ports {first} and a range of {} are not ports",
                        m.range
                    ))
                })
        };
        let host_ip = (!m.host_ip.is_empty())
            .then(|| parse_ip("host_ip", &m.host_ip, None))
            .transpose()?;
        for proto in m.protocol.split(',') {
            let protocol = Protocol::parse(proto)
                .ok_or_else(|| invalid(format!("protocol {proto:?} is not tcp or udp")))?;
            out.push(
                PortSpec::new(
                    host_ip,
                    Some(ports(m.host_port)?),
                    ports(m.container_port)?,
                    protocol,
                )
                .map_err(invalid)?,
            );
        }
    }
    Ok(out)
}

fn setup(opts: &NetworkOptions, netns: &str) -> Result<Value, Error> {
    Runtime::Podman.check_id(&opts.container_id)?;
    let mut engine = Engine::open(paths())?;
    let mut publish = port_specs(opts.port_mappings.as_deref().unwrap_or_default())?;
    let mut status = serde_json::Map::new();
    let mut done: Vec<(NetworkName, IfName)> = Vec::new();
    let mut made: Vec<NetworkName> = Vec::new();
    for (name, per) in &opts.networks {
        let result = attach_one(&mut engine, opts, netns, name, per, &mut publish, &mut made);
        match result {
            Ok((net_name, ifname, block)) => {
                done.push((net_name, ifname));
                status.insert(name.clone(), block);
            }
            Err(e) => {
                // All or nothing, as netavark: undo the networks already set up, and
                // remove those this setup made (unless another container joined one
                // meanwhile: then removing it is refused, and it stays).
                for (net, ifname) in &done {
                    let _ = engine.detach_interface(net, &container(opts, netns), Some(ifname));
                }
                for net in &made {
                    let _ = engine.remove_network(net);
                }
                return Err(e);
            }
        }
    }
    Ok(Value::Object(status))
}

fn attach_one(
    engine: &mut Engine,
    opts: &NetworkOptions,
    netns: &str,
    name: &str,
    per: &PerNetwork,
    publish: &mut Vec<PortSpec>,
    made: &mut Vec<NetworkName>,
) -> Result<(NetworkName, IfName, Value), Error> {
    let info = opts.network_info.get(name).ok_or_else(|| {
        Error::invalid(
            format!("network {name:?}"),
            "has no network_info entry",
            "pass network_info for every network in networks",
        )
    })?;
    let (net, new) = engine.ensure_network_made(network_spec(name, info)?)?;
    if new {
        made.push(net.name.clone());
    }
    let ips = per
        .static_ips
        .iter()
        .flatten()
        .map(|ip| parse_ip("static_ips", ip, None))
        .collect::<Result<Vec<_>, _>>()?;
    let ep = engine.attach(AttachSpec {
        network: net.name.clone(),
        container: container(opts, netns),
        ips,
        ifname: Some(IfName::new(&per.interface_name)?),
        owner: None,
        netns_owned: false,
        // Ports are published once, on the first network (by name) that can carry them.
        publish: if net.internal {
            Vec::new()
        } else {
            std::mem::take(publish)
        },
        mac: per
            .static_mac
            .as_deref()
            .map(|m| MacAddr::parse("static_mac", m))
            .transpose()?,
    })?;
    let subnets: Vec<Value> = net
        .subnets
        .iter()
        .filter_map(|s| {
            let ip = ep.ip(s.subnet.family())?;
            Some(json!({
                "ipnet": format!("{ip}/{}", s.subnet.prefix_len()),
                "gateway": s.gateway.to_string(),
            }))
        })
        .collect();
    let block = json!({
        "dns_search_domains": [],
        "dns_server_ips": [],
        "interfaces": {
            (ep.ifname.to_string()): {
                "mac_address": ep.mac.to_string(),
                "subnets": subnets,
            }
        }
    });
    Ok((net.name, ep.ifname, block))
}

/// Detaches the container (by its id and interface: never another container's
/// endpoint) from every network in the options (ones already gone are fine), and, as
/// netavark does, removes a network's bridge and rules once its last container has
/// left, if this front end made it; Podman keeps the network's definition and makes it
/// again. A network made otherwise (`ctnet network create`, CNI) stays.
fn teardown(opts: &NetworkOptions, netns: &str) -> Result<(), Error> {
    Runtime::Podman.check_id(&opts.container_id)?;
    let mut engine = Engine::open(paths())?;
    let mut first_error = None;
    for (name, per) in &opts.networks {
        let Ok(net) = NetworkName::new(name) else {
            continue;
        };
        let ifname = IfName::new(&per.interface_name).ok();
        match engine.detach_interface(&net, &container(opts, netns), ifname.as_ref()) {
            Ok(_) => {}
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
        let empty = engine.endpoints()?.iter().all(|ep| ep.network != net);
        let ours = net.as_str() != ctnet_engine::model::DEFAULT_NETWORK
            && engine
                .find_network(&net)
                .is_ok_and(|n| n.is_some_and(|n| n.creator == Some(Runtime::Podman)));
        if empty && ours {
            match engine.remove_network(&net) {
                // Another container joined meanwhile, or it is gone already.
                Err(e) if matches!(e.kind, ErrorKind::InUse | ErrorKind::NotFound) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
                Ok(()) => {}
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

#[cfg(test)]
mod fuzz;
