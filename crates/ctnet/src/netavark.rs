//! ctnet as Podman's network backend: invoked as `netavark` (argv[0], e.g. through a
//! symlink in a `helper_binaries_dir`), it speaks netavark's command line.
//!
//! ```text
//! netavark [--config DIR] [--rootless BOOL] [--aardvark-binary PATH] [-f FILE]
//!          setup|teardown NETNS_PATH          # network options JSON on stdin (or -f)
//! netavark --version | version
//! ```
//!
//! `setup` answers with a status block: per network, the interface's MAC and addresses,
//! and for a network with ctnet's DNS its gateways as `dns_server_ips` and Podman's
//! search domain `dns.podman` (Podman writes the container's resolv.conf from them; the
//! engine has ctnet-agent serve the names, so aardvark-dns is never started).
//! Errors are `{"error": "..."}` on stdout with exit code 1, as netavark reports them.
//! Podman does its own IPAM and passes each container's addresses; ctnet makes each
//! network on first use from Podman's `network_info` (subnet, gateway, bridge name,
//! internal) and attaches the container with those addresses.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ctnet_engine::model::ports::PortRange;
use ctnet_engine::model::{
    parse_ip, Driver, Family, Ipam, Isolation, MacAddr, MacvlanConfig, MacvlanMode, Runtime,
};
use ctnet_engine::{
    AttachSpec, ContainerRef, Endpoint, Engine, Error, ErrorKind, Network, NetworkName,
    NetworkSpec, Paths, PortSpec, Protocol, Subnet,
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
    /// The container's name (`podman run --name`), its DNS name on DNS networks.
    #[serde(default)]
    container_name: String,
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
    /// `--network-alias` names, and the container's short id, which Podman always adds.
    #[serde(default)]
    aliases: Option<Vec<String>>,
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
    /// Whether the network has container-name DNS (Podman's default for `network create`).
    #[serde(default)]
    dns_enabled: bool,
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
    let mut config: Option<PathBuf> = None;
    let mut positional = Vec::new();
    let mut it = args.iter().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--version" | "-V" => {
                println!("netavark {NETAVARK_VERSION}");
                return Ok(None);
            }
            // Podman's netavark config dir: where setup records ctnet's paths for the
            // container's teardown (see netavark/record.rs).
            "--config" | "-c" => config = it.next().map(PathBuf::from),
            a if a.starts_with("--config=") => {
                config = Some(PathBuf::from(&a["--config=".len()..]))
            }
            // Options that take a value. ctnet is always rootful, and never starts
            // aardvark-dns: ctnet-agent serves DNS networks (the engine starts it).
            "--rootless" | "-r" | "--aardvark-binary" | "-a" => {
                it.next();
            }
            "--file" | "-f" => file = it.next().map(PathBuf::from),
            a if a.starts_with("--rootless=") || a.starts_with("--aardvark-binary=") => {}
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
            setup(&opts, netns, config.as_deref())
                .map(Some)
                .map_err(|e| e.to_string())
        }
        ["teardown", netns] => {
            let opts = read_options(file.as_ref())?;
            teardown(&opts, netns, config.as_deref())
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
        Driver::Bridge | Driver::Overlay => (interface, None),
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
        dns: info.dns_enabled,
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
                            Driver::Overlay => "overlay networks are not made through netavark",
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

/// Setup: each network of the options made on first use and the container attached to
/// it; all or nothing. The paths are resolved and recorded first (see netavark/record.rs),
/// so whichever Podman process tears the container down finds its state.
fn setup(opts: &NetworkOptions, netns: &str, config: Option<&Path>) -> Result<Value, Error> {
    Runtime::Podman.check_id(&opts.container_id)?;
    check_network_info(opts)?;
    let (paths, _) = record::resolve(config, &opts.container_id);
    if let Some(config) = config {
        keep_record(config, &opts.container_id, &paths);
    }
    let mut engine = Engine::open(paths)?;
    let id = opts.container_id.clone();
    engine.set_port_keeper(move |pid| {
        std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| is_conmon_of(&c, &id))
    });
    let specs = port_specs(opts.port_mappings.as_deref().unwrap_or_default())?;
    // A container's ports are published once. On `podman network connect` Podman sends
    // all of them again with only the new network: the network carrying them keeps them.
    let carried = engine
        .endpoints_of(&container(opts, netns))?
        .iter()
        .any(|e| !e.ports.is_empty());
    let mut publish = if carried { Vec::new() } else { specs };
    let mut status = serde_json::Map::new();
    let mut done: Vec<(NetworkName, IfName)> = Vec::new();
    let mut made: Vec<NetworkName> = Vec::new();
    let mut attach_all = || {
        for (name, per) in &opts.networks {
            let (net_name, ifname, block) =
                attach_one(&mut engine, opts, netns, name, per, &mut publish, &mut made)?;
            done.push((net_name, ifname));
            status.insert(name.clone(), block);
        }
        // Never dropped silently: ports none of the networks can carry.
        match publish.is_empty() {
            true => Ok(()),
            false => Err(no_carrier(opts)),
        }
    };
    if let Err(e) = attach_all() {
        // All or nothing, as netavark: undo the networks already set up, and remove
        // those this setup made (unless another container joined one meanwhile: then
        // removing it is refused, and it stays).
        for (net, ifname) in &done {
            let _ = engine.detach_interface(net, &container(opts, netns), Some(ifname));
        }
        for net in &made {
            let _ = engine.remove_network(net);
        }
        return Err(e);
    }
    Ok(Value::Object(status))
}

/// The error for published ports none of the setup's networks can carry.
fn no_carrier(opts: &NetworkOptions) -> Error {
    let names: Vec<String> = opts.networks.keys().map(|n| format!("{n:?}")).collect();
    Error::invalid(
        format!(
            "published ports of container \"podman:{}\"",
            opts.container_id
        ),
        format!(
            "none of its networks ({}) can carry them: each is internal, has no subnet \
             (ipam driver none) or is not a bridge network",
            names.join(", ")
        ),
        "attach it to a bridge network that is not internal as well, or run it without -p",
    )
}

/// Whether a process's command line (NUL-separated, as /proc/PID/cmdline) is the conmon
/// of container `id`: rootful Podman binds a container's published ports itself and
/// hands the sockets to it, so they are the container's own, not a host program's.
fn is_conmon_of(cmdline: &[u8], id: &str) -> bool {
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let is_conmon = args
        .first()
        .is_some_and(|a0| a0.rsplit(|b| *b == b'/').next() == Some(b"conmon".as_slice()));
    let names_id = args
        .windows(2)
        .any(|w| matches!(w[0], b"-c" | b"--cid") && w[1] == id.as_bytes())
        || args
            .iter()
            .any(|a| a.strip_prefix(b"--cid=".as_slice()) == Some(id.as_bytes()));
    is_conmon && names_id
}

/// Writes the container's record of the paths in use. A record that cannot be written
/// is said on stderr, not fatal: the setup works, but a teardown from a process without
/// ctnet's environment would look at the defaults (and say so).
fn keep_record(config: &Path, container_id: &str, paths: &Paths) {
    if let Err(e) = record::write(config, container_id, paths) {
        eprintln!(
            "ctnet: warning: record of ctnet's state dir {} for container podman:{container_id}: \
             cannot be written under {}: {e}; a teardown run without CTNET_STATE_DIR will look in {}",
            paths.state_dir.display(),
            config.display(),
            Paths::default().state_dir.display()
        );
    }
}

/// Every network in `networks` has its `network_info` and the other way round, as
/// netavark requires ("network options for network NAME not found").
fn check_network_info(opts: &NetworkOptions) -> Result<(), Error> {
    let lacking_info = opts
        .networks
        .keys()
        .find(|n| !opts.network_info.contains_key(*n));
    let lacking_options = opts
        .network_info
        .keys()
        .find(|n| !opts.networks.contains_key(*n));
    let (name, cause) = match (lacking_info, lacking_options) {
        (Some(name), _) => (name, "has no network_info entry".to_string()),
        (None, Some(name)) => (
            name,
            format!("network options for network {name} not found: it is in network_info but not in networks"),
        ),
        (None, None) => return Ok(()),
    };
    Err(Error::new(
        ErrorKind::NotFound,
        format!("network {name:?}"),
        cause,
        "pass the same networks in networks and network_info, as Podman does",
    ))
}

/// Refuses a subnet of `network_info` that is not one, with the words users search for
/// (Podman: "invalid subnet"; netavark 1.4: "invalid IP address syntax").
fn check_subnets(name: &str, info: &NetworkInfo) -> Result<(), Error> {
    for s in info.subnets.iter().flatten() {
        Subnet::parse(&s.subnet).map_err(|e| {
            let netavark = if is_cidr(&s.subnet) {
                ""
            } else {
                " (netavark: invalid IP address syntax)"
            };
            Error::new(
                e.kind,
                format!("subnet {:?} of network {name:?}", s.subnet),
                format!("invalid subnet: {}{netavark}", e.cause),
                e.fix,
            )
        })?;
    }
    Ok(())
}

/// Whether `text` is written as ADDRESS/PREFIX with a prefix the family has, whatever
/// ctnet thinks of the subnet: what netavark's parser accepts.
fn is_cidr(text: &str) -> bool {
    let Some((addr, prefix)) = text.split_once('/') else {
        return false;
    };
    let max = match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => 32,
        Ok(std::net::IpAddr::V6(_)) => 128,
        Err(_) => return false,
    };
    prefix.parse::<u8>().is_ok_and(|p| p <= max)
}

/// The endpoint that takes over a container's published ports when the network carrying
/// them is torn down: the first, by network name, of its other endpoints that can carry
/// them and is not torn down too. netavark 1.4 publishes a container's ports on every
/// network and the first rule answers, so the ports keep answering while any of its
/// networks remains; ctnet publishes them once and moves them (docs/podman.md).
fn port_heir<'a>(others: &'a [(Endpoint, bool)], leaving: &[NetworkName]) -> Option<&'a Endpoint> {
    others
        .iter()
        .filter(|(ep, carries)| *carries && ep.ports.is_empty() && !leaving.contains(&ep.network))
        .map(|(ep, _)| ep)
        .min_by(|a, b| a.network.as_str().cmp(b.network.as_str()))
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
    check_subnets(name, info)?;
    let (net, new) = engine.ensure_network_made(network_spec(name, info)?)?;
    if new {
        made.push(net.name.clone());
    } else if net.dns != info.dns_enabled {
        dns_disagrees(&net, info.dns_enabled);
    }
    let mut names = dns_names(opts, &net, per);
    let ips = per
        .static_ips
        .iter()
        .flatten()
        .map(|ip| parse_ip("static_ips", ip, None))
        .collect::<Result<Vec<_>, _>>()?;
    let spec = AttachSpec {
        network: net.name.clone(),
        container: container(opts, netns),
        ips,
        ifname: Some(IfName::new(&per.interface_name)?),
        owner: None,
        netns_owned: false,
        // Ports are published once, on the first network (by name) that can carry them.
        publish: if net.can_publish() {
            std::mem::take(publish)
        } else {
            Vec::new()
        },
        mac: per
            .static_mac
            .as_deref()
            .map(|m| MacAddr::parse("static_mac", m))
            .transpose()?,
        name: None,
        aliases: Vec::new(),
        // Podman does not send a container's labels to its network back end; policies
        // select Podman containers by name.
        labels: ctnet_engine::model::policy::Labels::new(),
    };
    let ep = names::attach_naming(engine, spec, &mut names);
    say_left_out(opts, &net, &names);
    let ep = ep?;
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
    let (servers, search) = dns_status(&net);
    let block = json!({
        "dns_search_domains": search,
        "dns_server_ips": servers,
        "interfaces": {
            (ep.ifname.to_string()): {
                "mac_address": ep.mac.to_string(),
                "subnets": subnets,
            }
        }
    });
    Ok((net.name, ep.ifname, block))
}

/// The `dns_server_ips` and `dns_search_domains` of a network's status block, as
/// netavark 1.4 gives them: the network's gateways (IPv4 first) and `dns.podman` when it
/// has DNS, nothing otherwise. From ctnet's network, which is what is served.
fn dns_status(net: &Network) -> (Vec<String>, Vec<&'static str>) {
    if !net.dns {
        return (Vec::new(), Vec::new());
    }
    let mut gateways: Vec<IpAddr> = net.subnets.iter().map(|s| s.gateway).collect();
    gateways.sort_by_key(|g| g.is_ipv6());
    (
        gateways.iter().map(IpAddr::to_string).collect(),
        vec![PODMAN_SEARCH_DOMAIN],
    )
}

/// Podman's search domain: the agent answers `NAME.dns.podman` as `NAME`.
const PODMAN_SEARCH_DOMAIN: &str = "dns.podman";

/// Says on stderr that an existing network keeps its own DNS setting when Podman's
/// file says otherwise (a network made by `ctnet network create`, or by Podman through
/// a ctnet before DNS networks, or whose Podman file was edited).
fn dns_disagrees(net: &Network, podman: bool) {
    let (ours, theirs) = match net.dns {
        true => ("on", "off"),
        false => ("off", "on"),
    };
    eprintln!(
        "ctnet: warning: network {:?} has DNS {ours} in ctnet's store but {theirs} in Podman's          network file (dns_enabled: {podman}); ctnet's setting stays and is what the container          gets. To follow Podman's, remove the network from ctnet (`ctnet network rm {}`) once          no container uses it: the next container's setup makes it again from Podman's file",
        net.name.as_str(),
        net.name.as_str()
    );
}

/// The container's DNS names on `net` (none unless it has DNS): its name and aliases
/// that are DNS names; see netavark/names.rs.
fn dns_names(opts: &NetworkOptions, net: &Network, per: &PerNetwork) -> names::Chosen {
    if !net.dns {
        return names::Chosen::default();
    }
    names::choose(
        Some(opts.container_name.as_str()),
        per.aliases.as_deref().unwrap_or_default(),
    )
}

/// Says on stderr which of the container's names were left out on `net`, and why.
fn say_left_out(opts: &NetworkOptions, net: &Network, chosen: &names::Chosen) {
    for why in &chosen.left_out {
        eprintln!(
            "ctnet: warning: container \"podman:{}\" on network {:?}: {why}",
            opts.container_id,
            net.name.as_str()
        );
    }
}

/// Detaches the container (by its id and interface: never another container's
/// endpoint, whatever namespace it is in) from every network in the options, and, as
/// netavark does, removes a network's bridge and rules once its last container has left,
/// if this front end made it; Podman keeps the network's definition and makes it again.
/// A network made otherwise (`ctnet network create`, CNI) stays. Ports carried by a
/// network torn down while the container stays on others move to one of those
/// ([`port_heir`]). A network the container is not found on is said on stderr, naming
/// the state dir looked in and how it was chosen: rc 0 stays (Podman tears down what
/// may be gone), but a leak is never silent.
fn teardown(opts: &NetworkOptions, netns: &str, config: Option<&Path>) -> Result<(), Error> {
    Runtime::Podman.check_id(&opts.container_id)?;
    let (paths, source) = record::resolve(config, &opts.container_id);
    let asked: Vec<&str> = opts.networks.keys().map(String::as_str).collect();
    if !paths.database().exists() {
        nothing_found(
            opts,
            &asked,
            (&paths, &source),
            config,
            "there is no state database there",
        );
        return Ok(());
    }
    let mut engine = Engine::open(paths.clone())?;
    let me = container(opts, netns);
    let leaving: Vec<NetworkName> = opts
        .networks
        .keys()
        .filter_map(|n| NetworkName::new(n).ok())
        .collect();
    let mut first_error = None;
    let mut missing = Vec::new();
    for (name, per) in &opts.networks {
        let Ok(net) = NetworkName::new(name) else {
            missing.push(name.as_str());
            continue;
        };
        // The detach is what Podman asked for: a move that fails leaves the ports to go
        // with this endpoint, and says so, rather than failing the disconnect.
        if let Err(e) = hand_on_ports(&mut engine, &me, &net, &leaving) {
            eprintln!("ctnet: warning: {e}; its published ports are withdrawn with its endpoint on network {name:?}");
        }
        let ifname = IfName::new(&per.interface_name).ok();
        match engine.detach_interface(&net, &me, ifname.as_ref()) {
            Ok(_) => {}
            Err(e) if e.kind == ErrorKind::NotFound => missing.push(name.as_str()),
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
    if !missing.is_empty() {
        nothing_found(
            opts,
            &missing,
            (&paths, &source),
            config,
            "no endpoint of it is recorded there",
        );
    }
    if let Some(config) = config {
        let label = me.label();
        if first_error.is_none() && engine.endpoints()?.iter().all(|ep| ep.container != label) {
            record::remove(config, &opts.container_id);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Before the container leaves `net`: if its endpoint there carries its published ports
/// and it stays on another network that can carry them, they move there.
fn hand_on_ports(
    engine: &mut Engine,
    me: &ContainerRef,
    net: &NetworkName,
    leaving: &[NetworkName],
) -> Result<(), Error> {
    let mine = engine.endpoints_of(me)?;
    let Some(carrier) = mine
        .iter()
        .find(|e| &e.network == net && !e.ports.is_empty())
    else {
        return Ok(());
    };
    let mut others = Vec::new();
    for ep in mine.iter().filter(|e| &e.network != net) {
        let carries = engine
            .find_network(&ep.network)?
            .is_some_and(|n| n.can_publish());
        others.push((ep.clone(), carries));
    }
    match port_heir(&others, leaving) {
        Some(heir) => engine.move_ports(carrier, heir).map(|_| ()),
        None => Ok(()),
    }
}

/// Says on stderr that teardown found nothing of the container on `networks`.
fn nothing_found(
    opts: &NetworkOptions,
    networks: &[&str],
    (paths, source): (&Paths, &record::Source),
    config: Option<&Path>,
    why: &str,
) {
    let names: Vec<String> = networks.iter().map(|n| format!("{n:?}")).collect();
    let state = ctnet_engine::paths::ENV_STATE_DIR;
    // A CTNET_* variable set for this teardown but not for the setup: say where the
    // setup put the container.
    let recorded = config
        .map(|c| record::record_path(c, &opts.container_id))
        .and_then(|p| Some((record::read(&p)?, p)))
        .filter(|(r, _)| r.state_dir != paths.state_dir);
    let fix = match recorded {
        Some((r, p)) => format!(
            "nothing was removed; the container's setup recorded state dir {} (in {}): run \
             the teardown with {state} set to it, or with no CTNET_* variable",
            r.state_dir.display(),
            p.display()
        ),
        None => format!(
            "nothing was removed; if it was set up with another state dir, its interfaces and \
             published ports are still there: run `ctnet ls` and `ctnet detach` with \
             {state}=THAT_DIR"
        ),
    };
    let e = Error::new(
        ErrorKind::NotFound,
        format!("container \"podman:{}\"", opts.container_id),
        format!(
            "teardown found nothing to remove on network {}: {why} (state dir {}, {})",
            names.join(", "),
            paths.state_dir.display(),
            source.describe()
        ),
        fix,
    );
    eprintln!("ctnet: warning: {e}");
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use ctnet_engine::model::{Endpoint, MacAddr, RowState};
    use ctnet_engine::{NetworkName, Protocol, PublishedPort};
    use ctnet_kernel::IfName;

    use super::port_heir;

    fn ep(network: &str, ports: bool) -> Endpoint {
        Endpoint {
            id: 0,
            network: NetworkName::new(network).unwrap(),
            container: "podman:x".into(),
            netns_path: PathBuf::from("/run/netns/x"),
            netns_inode: 1,
            ifname: IfName::new("eth0").unwrap(),
            host_ifname: Some(IfName::new("veth0").unwrap()),
            mac: MacAddr::parse("mac", "02:42:0a:00:00:02").unwrap(),
            ips: vec!["10.0.0.2".parse().unwrap()],
            default_routes: Vec::new(),
            netns_owned: false,
            state: RowState::Ready,
            name: None,
            aliases: Vec::new(),
            labels: Default::default(),
            ports: if ports {
                vec![PublishedPort {
                    host_ip: None,
                    host_port: 8080,
                    container_port: 80,
                    protocol: Protocol::Tcp,
                }]
            } else {
                Vec::new()
            },
            identity: None,
        }
    }

    fn name(n: &str) -> NetworkName {
        NetworkName::new(n).unwrap()
    }

    #[test]
    fn only_the_containers_own_conmon_keeps_its_ports() {
        let id = "a".repeat(64);
        let conmon =
            format!("/usr/bin/conmon\0--api-version\x001\0-c\0{id}\0-u\0{id}\0-r\0/usr/bin/runc\0");
        assert!(super::is_conmon_of(conmon.as_bytes(), &id));
        assert!(super::is_conmon_of(
            format!("conmon\0--cid={id}\0").as_bytes(),
            &id
        ));
        let other = "b".repeat(64);
        assert!(!super::is_conmon_of(conmon.as_bytes(), &other));
        let not_conmon = format!("/usr/bin/nc\0-c\0{id}\0");
        assert!(!super::is_conmon_of(not_conmon.as_bytes(), &id));
        assert!(!super::is_conmon_of(
            format!("/usr/bin/conmon\0-u\0{id}\0").as_bytes(),
            &id
        ));
        assert!(!super::is_conmon_of(b"", &id));
    }

    #[test]
    fn cidr_syntax_as_netavark_parses_it() {
        for ok in ["10.89.1.0/24", "10.89.1.5/24", "fd00::/64", "10.0.0.0/32"] {
            assert!(super::is_cidr(ok), "{ok}");
        }
        for bad in [
            "banana",
            "10.89.1.0",
            "10.89.1.0/33",
            "fd00::/129",
            "10.89.1/24",
            "/24",
            "10.0.0.0/-1",
        ] {
            assert!(!super::is_cidr(bad), "{bad}");
        }
    }

    #[test]
    fn ports_go_to_the_first_remaining_network_that_can_carry_them() {
        let others = [
            (ep("zeta", false), true),
            (ep("beta", false), true),
            (ep("alpha", false), false),
        ];
        let heir = port_heir(&others, &[name("a")]).unwrap();
        assert_eq!(heir.network.as_str(), "beta");
    }

    #[test]
    fn no_heir_among_networks_torn_down_too_or_internal_ones() {
        let others = [(ep("beta", false), true), (ep("internal", false), false)];
        assert!(port_heir(&others, &[name("a"), name("beta")]).is_none());
        assert!(port_heir(&[], &[name("a")]).is_none());
    }
}

#[cfg(test)]
mod fuzz;
pub(crate) mod names;
mod record;
