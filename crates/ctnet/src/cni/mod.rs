//! ctnet as a CNI plugin (spec 1.0.0 and 1.1.0): chosen when `CNI_COMMAND` is set.
//!
//! The runtime passes the command and the container in the environment and the network
//! configuration on stdin; the plugin answers on stdout with a result or an error object
//! and exits non-zero on error. This module only translates: the network named in the
//! configuration becomes a ctnet network (made on first use from the configuration's
//! bridge and subnet), the container an endpoint labelled with its CNI container id, and
//! every decision is the engine's.

mod args;
mod types;

#[cfg(test)]
mod fuzz;

use std::io::Read;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use ctnet_engine::model::ports::PortRange;
use ctnet_engine::model::{parse_ip, Family, MacAddr, Runtime};
use ctnet_engine::{
    AttachSpec, ContainerRef, Engine, Error, ErrorKind, Network, NetworkName, NetworkSpec, Paths,
    PortSpec, Protocol, Subnet,
};
use ctnet_kernel::IfName;
use ipnet::IpNet;
use serde_json::{json, Value};

use crate::netavark::names;
use types::{code, CniError, CniResult, NetConf, SUPPORTED_VERSIONS};

/// A failure, with the spec's error code.
#[derive(Debug)]
struct Failure {
    code: u32,
    msg: String,
    details: String,
}

impl Failure {
    fn new(code: u32, msg: impl Into<String>, details: impl Into<String>) -> Self {
        Failure {
            code,
            msg: msg.into(),
            details: details.into(),
        }
    }
}

impl From<Error> for Failure {
    fn from(err: Error) -> Self {
        let code = match err.kind {
            ErrorKind::InvalidInput => code::INVALID_CONFIG,
            ErrorKind::NotFound => code::UNKNOWN_CONTAINER,
            ErrorKind::Conflict | ErrorKind::InUse => code::TAKEN,
            ErrorKind::Exhausted => code::ADDRESS_EXHAUSTED,
            ErrorKind::Kernel => code::IO_FAILURE,
            ErrorKind::Store | ErrorKind::Unavailable => code::TRY_AGAIN_LATER,
        };
        Failure::new(code, format!("{}: {}", err.object, err.cause), err.fix)
    }
}

/// Runs one CNI command and returns the process's exit code.
pub fn run() -> ExitCode {
    let command = std::env::var("CNI_COMMAND").unwrap_or_default();
    let mut input = String::new();
    // An unreadable stdin reads as empty, which fails as undecodable below.
    let _ = std::io::stdin().read_to_string(&mut input);
    let version = serde_json::from_str::<Value>(&input)
        .ok()
        .and_then(|v| v["cniVersion"].as_str().map(String::from))
        .unwrap_or_else(|| "1.1.0".into());
    match dispatch(&command, &input, &version) {
        Ok(Some(out)) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(f) => {
            let err = CniError {
                cni_version: version,
                code: f.code,
                msg: f.msg,
                details: f.details,
            };
            println!("{}", serde_json::to_string(&err).expect("plain struct"));
            ExitCode::FAILURE
        }
    }
}

fn dispatch(command: &str, input: &str, version: &str) -> Result<Option<Value>, Failure> {
    if command == "VERSION" {
        return Ok(Some(json!({
            "cniVersion": version,
            "supportedVersions": SUPPORTED_VERSIONS,
        })));
    }
    let conf: NetConf = serde_json::from_str(input).map_err(|e| {
        Failure::new(
            code::DECODING_FAILURE,
            "the network configuration on stdin is not valid JSON for ctnet",
            e.to_string(),
        )
    })?;
    if !SUPPORTED_VERSIONS.contains(&conf.cni_version.as_str()) {
        return Err(Failure::new(
            code::INCOMPATIBLE_VERSION,
            format!("cniVersion {} is not supported", conf.cni_version),
            format!("use one of {}", SUPPORTED_VERSIONS.join(", ")),
        ));
    }
    if conf.kind != "ctnet" {
        return Err(Failure::new(
            code::INVALID_CONFIG,
            format!("type {:?}: this plugin is ctnet", conf.kind),
            "set \"type\": \"ctnet\" in the configuration",
        ));
    }
    let mut engine = Engine::open(paths()).map_err(|e| {
        let mut f = Failure::from(e);
        if command == "STATUS" {
            f.code = code::NOT_AVAILABLE;
        }
        f
    })?;
    match command {
        "ADD" => add(&mut engine, &conf, input).map(Some),
        "DEL" => del(&mut engine, &conf, input).map(|()| None),
        "CHECK" => check(&mut engine, &conf).map(|()| None),
        "GC" => gc(&mut engine, &conf).map(|()| None),
        "STATUS" => Ok(None),
        other => Err(Failure::new(
            code::INVALID_ENVIRONMENT,
            format!("CNI_COMMAND {other:?} is not a CNI command"),
            "use ADD, DEL, CHECK, GC, STATUS or VERSION",
        )),
    }
}

/// State, runtime and netns folders: ctnet's usual environment variables, or defaults.
fn paths() -> Paths {
    Paths::from_env()
}

fn env(name: &str, command: &str) -> Result<String, Failure> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => Err(Failure::new(
            code::INVALID_ENVIRONMENT,
            format!("{name} is not set"),
            format!("{command} needs {name} in the environment"),
        )),
    }
}

fn container(netns: Option<String>) -> Result<ContainerRef, Failure> {
    let id = env("CNI_CONTAINERID", "this command")?;
    Runtime::Cni.check_id(&id).map_err(|e| {
        let mut f = Failure::from(e);
        f.code = code::INVALID_ENVIRONMENT;
        f.msg = format!("CNI_CONTAINERID: {}", f.msg);
        f
    })?;
    Ok(ContainerRef::Runtime {
        runtime: Runtime::Cni,
        id,
        netns: netns.filter(|n| !n.is_empty()).map(PathBuf::from),
    })
}

fn network_name(conf: &NetConf) -> Result<NetworkName, Failure> {
    Ok(NetworkName::new(&conf.name)?)
}

/// The configuration's subnets and gateways: top-level `subnet`/`gateway`, `ipam.subnet`/
/// `ipam.gateway`, and the first entry of each of `ipam.ranges` (host-local's form, one
/// list per family).
fn configured_subnets(conf: &NetConf) -> Result<(Vec<Subnet>, Vec<IpAddr>), Failure> {
    let mut pairs: Vec<(&str, Option<&str>)> = Vec::new();
    if let Some(s) = conf.subnet.as_deref() {
        pairs.push((s, conf.gateway.as_deref()));
    }
    if let Some(ipam) = &conf.ipam {
        if let Some(s) = ipam.subnet.as_deref() {
            pairs.push((s, ipam.gateway.as_deref()));
        }
        for set in &ipam.ranges {
            if let Some(first) = set.first() {
                pairs.push((&first.subnet, first.gateway.as_deref()));
            }
        }
    }
    let mut subnets = Vec::new();
    let mut gateways = Vec::new();
    for (subnet, gateway) in pairs {
        let subnet = Subnet::parse(subnet)?;
        if !subnets.contains(&subnet) {
            subnets.push(subnet);
        }
        if let Some(g) = gateway {
            gateways.push(parse_ip("gateway", g, Some(subnet.family()))?);
        }
    }
    Ok((subnets, gateways))
}

/// The network the configuration names, made on first use; true when this call made it.
fn ensure_network(
    engine: &mut Engine,
    conf: &NetConf,
    leases: &[Lease],
) -> Result<(Network, bool), Failure> {
    let (mut subnets, mut gateways) = configured_subnets(conf)?;
    // With a delegated IPAM plugin its leases tell the subnets and gateways the
    // configuration does not.
    for lease in leases {
        let Ok(net) = IpNet::new(lease.address, lease.prefix) else {
            continue;
        };
        let Ok(subnet) = Subnet::new(net.trunc()) else {
            continue;
        };
        if subnets.iter().all(|s| s.family() != subnet.family()) {
            subnets.push(subnet);
            gateways.extend(lease.gateway);
        }
    }
    let ipv6 = subnets.iter().any(|s| s.family() == Family::V6);
    let ipv4 = subnets.is_empty() || subnets.iter().any(|s| s.family() == Family::V4);
    let spec = NetworkSpec {
        subnets,
        gateways,
        ipv4,
        ipv6,
        bridge: conf
            .bridge
            .as_deref()
            .map(IfName::new)
            .transpose()
            .map_err(Error::from)?,
        mtu: conf.mtu,
        internal: conf.internal,
        dns: conf.ctnet_dns,
        creator: Some(Runtime::Cni),
        ..NetworkSpec::named(network_name(conf)?)
    };
    let (net, made) = engine.ensure_network_made(spec)?;
    if !made && net.dns != conf.ctnet_dns {
        // The network keeps what it was made with; the result says what is served.
        eprintln!(
            "ctnet: warning: network {:?} has DNS {} in ctnet's store, but the configuration's \
             ctnetDns is {}; the store's setting stays",
            net.name.as_str(),
            if net.dns { "on" } else { "off" },
            conf.ctnet_dns
        );
    }
    Ok((net, made))
}

/// The container's DNS names on `net`: `K8S_POD_NAME` from CNI_ARGS and the `aliases`
/// capability's entry for this network, those that are DNS names (the others said on
/// stderr by the caller, never failing the ADD; see netavark/names.rs). Aliases asked
/// for on a network without DNS are refused; a pod name there is only a label.
fn dns_names(conf: &NetConf, net: &Network) -> Result<names::Chosen, Failure> {
    let aliases = conf
        .runtime_config
        .aliases
        .get(&conf.name)
        .cloned()
        .unwrap_or_default();
    if !net.dns {
        if !aliases.is_empty() {
            return Err(Failure::new(
                code::INVALID_CONFIG,
                format!(
                    "runtimeConfig.aliases: network {:?} has DNS off; aliases need DNS",
                    net.name.as_str()
                ),
                "add \"ctnetDns\": true to the plugin's configuration (a network that exists already keeps its setting: remove it with `ctnet network rm` first), or do not declare the aliases capability",
            ));
        }
        return Ok(Default::default());
    }
    let pod_name = args::parse(&std::env::var("CNI_ARGS").unwrap_or_default())?.pod_name;
    Ok(names::choose(pod_name.as_deref(), &aliases))
}

/// The IPAM plugin the configuration delegates to, if any (`ctnet` or none: ctnet's own).
fn delegated_ipam(conf: &NetConf) -> Option<&str> {
    conf.ipam
        .as_ref()
        .and_then(|i| i.kind.as_deref())
        .filter(|k| *k != "ctnet")
}

/// Runs the delegated IPAM plugin from CNI_PATH with the same stdin and environment
/// (CNI_COMMAND overridden), as the spec has a main plugin do.
fn run_ipam(kind: &str, command: &str, input: &str) -> Result<Value, Failure> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let not_found = || {
        Failure::new(
            code::INVALID_CONFIG,
            format!("IPAM plugin {kind:?} is not in CNI_PATH"),
            "install it there, or use ctnet's own IPAM (\"ipam\": {\"type\": \"ctnet\"})",
        )
    };
    if kind.contains('/') {
        return Err(not_found());
    }
    let path = std::env::var("CNI_PATH")
        .unwrap_or_default()
        .split(':')
        .map(|dir| PathBuf::from(dir).join(kind))
        .find(|p| p.is_file())
        .ok_or_else(not_found)?;
    let io = |e: std::io::Error| {
        Failure::new(
            code::IO_FAILURE,
            format!("IPAM plugin {}: {e}", path.display()),
            "check that it is executable",
        )
    };
    let mut child = Command::new(&path)
        .env("CNI_COMMAND", command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(io)?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(input.as_bytes())
        .map_err(io)?;
    let out = child.wait_with_output().map_err(io)?;
    let value: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    if !out.status.success() {
        // Pass the IPAM plugin's own error on.
        return Err(Failure::new(
            value["code"]
                .as_u64()
                .unwrap_or(u64::from(code::IO_FAILURE)) as u32,
            format!(
                "IPAM plugin {kind}: {}",
                value["msg"].as_str().unwrap_or("failed")
            ),
            value["details"].as_str().unwrap_or_default(),
        ));
    }
    Ok(value)
}

/// An address a delegated IPAM plugin handed out.
#[derive(Debug, Clone, Copy)]
struct Lease {
    address: IpAddr,
    prefix: u8,
    gateway: Option<IpAddr>,
}

/// Every address (with its prefix) and gateway of an IPAM result.
fn ipam_addresses(result: &Value) -> Vec<Lease> {
    let Some(ips) = result["ips"].as_array() else {
        return Vec::new();
    };
    ips.iter()
        .filter_map(|ip| {
            let (addr, prefix) = ip["address"].as_str()?.split_once('/')?;
            Some(Lease {
                address: addr.parse().ok()?,
                prefix: prefix.parse().ok()?,
                gateway: ip["gateway"].as_str().and_then(|g| g.parse().ok()),
            })
        })
        .collect()
}

/// Refuses a `runtimeConfig` entry ctnet does not act on (a capability declared on
/// ctnet's entry that belongs to another plugin, e.g. `bandwidth`), unless it asks for
/// nothing (null, empty): such a setting is never dropped without a word.
fn unsupported_capabilities(conf: &NetConf) -> Result<(), Failure> {
    let asks = |v: &Value| match v {
        Value::Null => false,
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::String(s) => !s.is_empty(),
        _ => true,
    };
    let Some((key, _)) = conf.runtime_config.other.iter().find(|(_, v)| asks(v)) else {
        return Ok(());
    };
    let fix = match key.as_str() {
        "bandwidth" => "chain the reference `bandwidth` plugin after ctnet and give the capability to it".to_string(),
        "ipRanges" => "give ctnet's network its subnet in ipam.subnet, or delegate IPAM to host-local (\"ipam\": {\"type\": \"host-local\"}), which reads ipRanges".to_string(),
        _ => format!("declare the {key:?} capability on the plugin that does it, not on ctnet (which does portMappings, ips and mac)"),
    };
    Err(Failure::new(
        code::INVALID_CONFIG,
        format!("runtimeConfig.{key}: ctnet does not do the {key:?} capability"),
        fix,
    ))
}

fn add(engine: &mut Engine, conf: &NetConf, input: &str) -> Result<Value, Failure> {
    unsupported_capabilities(conf)?;
    let Some(kind) = delegated_ipam(conf) else {
        return add_with(engine, conf, &[]);
    };
    let result = run_ipam(kind, "ADD", input)?;
    let leases = ipam_addresses(&result);
    if leases.is_empty() {
        return Err(Failure::new(
            code::INVALID_CONFIG,
            format!("IPAM plugin {kind} returned no address"),
            "configure it with a subnet (ranges) of each family the network has",
        ));
    }
    add_with(engine, conf, &leases).inspect_err(|_| {
        // Give the address back; the ADD fails either way.
        let _ = run_ipam(kind, "DEL", input);
    })
}

fn add_with(engine: &mut Engine, conf: &NetConf, leases: &[Lease]) -> Result<Value, Failure> {
    let netns = env("CNI_NETNS", "ADD")?;
    let ifname_text = env("CNI_IFNAME", "ADD")?;
    let ifname = IfName::new(&ifname_text).map_err(|e| {
        Failure::new(
            code::INVALID_ENVIRONMENT,
            format!("CNI_IFNAME {ifname_text:?}: {e}"),
            "give an interface name of at most 15 bytes",
        )
    })?;
    let container = container(Some(netns.clone()))?;
    let requested = requested_ips(conf)?;
    let (net, made) = ensure_network(engine, conf, leases)?;
    let attached = attach_requested(engine, conf, &net, container, ifname, &requested, leases);
    match attached {
        Ok(ep) => Ok(result(conf, &net, &ep, &netns)),
        Err(f) => {
            if made {
                // The network this ADD made goes with it (unless another container
                // joined it meanwhile: then removing it is refused, and it stays).
                let _ = engine.remove_network(&net.name);
            }
            Err(f)
        }
    }
}

/// An address the runtime asked for, with the prefix it gave (if any).
#[derive(Debug, Clone, Copy)]
struct Requested {
    ip: IpAddr,
    prefix: Option<u8>,
    source: &'static str,
}

/// The labels the runtime gives the container, by the CNI `args` convention
/// (`args.cni.labels`: a list of `{"key": K, "value": V}`), which policies select by.
fn requested_labels(conf: &NetConf) -> Result<ctnet_engine::model::policy::Labels, Failure> {
    let list = conf.args.as_ref().map(|a| &a["cni"]["labels"]);
    let Some(list) = list.filter(|v| !v.is_null()) else {
        return Ok(ctnet_engine::model::policy::Labels::new());
    };
    let bad = |what: String| {
        Failure::new(
            code::INVALID_CONFIG,
            what,
            "give args.cni.labels as a list of {\"key\": K, \"value\": V}",
        )
    };
    let list = list
        .as_array()
        .ok_or_else(|| bad("args.cni.labels is not a list".into()))?;
    let mut flags = Vec::new();
    for entry in list {
        match (entry["key"].as_str(), entry["value"].as_str()) {
            (Some(key), Some(value)) => flags.push(format!("{key}={value}")),
            _ => {
                return Err(bad(format!(
                    "args.cni.labels entry {entry} has no string key and value"
                )))
            }
        }
    }
    Ok(ctnet_engine::model::policy::Labels::parse(&flags)?)
}

/// The addresses the runtime asks for: the `ips` capability (`runtimeConfig.ips`), the
/// `args` convention (`args.cni.ips`) and `IP=` in CNI_ARGS, each an address with or
/// without a prefix. Any that cannot be given is refused, never replaced by another.
fn requested_ips(conf: &NetConf) -> Result<Vec<Requested>, Failure> {
    let mut texts: Vec<(&'static str, String)> = conf
        .runtime_config
        .ips
        .iter()
        .map(|t| ("runtimeConfig.ips", t.clone()))
        .collect();
    let args = conf.args.as_ref().map(|a| &a["cni"]["ips"]);
    if let Some(list) = args.filter(|v| !v.is_null()) {
        let list = list.as_array().ok_or_else(|| {
            Failure::new(
                code::INVALID_CONFIG,
                "args.cni.ips is not a list",
                "give a list of addresses, e.g. [\"10.88.0.5/16\"]",
            )
        })?;
        for v in list {
            let text = v.as_str().ok_or_else(|| {
                Failure::new(
                    code::INVALID_CONFIG,
                    format!("args.cni.ips entry {v} is not a string"),
                    "give each address as a string, e.g. \"10.88.0.5/16\"",
                )
            })?;
            texts.push(("args.cni.ips", text.to_string()));
        }
    }
    let cni_args = args::parse(&std::env::var("CNI_ARGS").unwrap_or_default())?;
    texts.extend(cni_args.ips.into_iter().map(|t| ("CNI_ARGS IP", t)));
    texts
        .into_iter()
        .map(|(source, text)| {
            let (ip, prefix) = match text.split_once('/') {
                Some((ip, prefix)) => (ip, Some(prefix)),
                None => (text.as_str(), None),
            };
            let ip = parse_ip(source, ip, None)?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let prefix = prefix
                .map(|p| {
                    p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| {
                        Failure::from(Error::invalid(
                            format!("{source} entry {text:?}"),
                            format!("prefix /{p} is not a prefix length of its family"),
                            "give an address with the network's prefix, or the address alone",
                        ))
                    })
                })
                .transpose()?;
            Ok(Requested { ip, prefix, source })
        })
        .collect()
}

/// Attaches with the requested addresses (or a delegated plugin's leases, which must
/// then include every requested address).
fn attach_requested(
    engine: &mut Engine,
    conf: &NetConf,
    net: &Network,
    container: ContainerRef,
    ifname: IfName,
    requested: &[Requested],
    leases: &[Lease],
) -> Result<ctnet_engine::Endpoint, Failure> {
    for r in requested {
        let subnet = net.subnet(Family::of(r.ip)).map(|s| s.subnet);
        if let (Some(prefix), Some(subnet)) = (r.prefix, subnet) {
            if prefix != subnet.prefix_len() {
                return Err(Error::invalid(
                    format!("{} entry {}/{prefix}", r.source, r.ip),
                    format!(
                        "has prefix /{prefix}, but network {:?} has subnet {subnet}",
                        net.name.as_str()
                    ),
                    format!("give an address of {subnet} with /{}", subnet.prefix_len()),
                )
                .into());
            }
        }
        if !leases.is_empty() && leases.iter().all(|l| l.address != r.ip) {
            return Err(Failure::new(
                code::INVALID_CONFIG,
                format!(
                    "{} entry {}: the IPAM plugin did not hand it out",
                    r.source, r.ip
                ),
                "ask the IPAM plugin for that address (host-local reads the same ips), or leave it out",
            ));
        }
    }
    let ips = if leases.is_empty() {
        requested.iter().map(|r| r.ip).collect()
    } else {
        leases.iter().map(|l| l.address).collect()
    };
    let publish = conf
        .runtime_config
        .port_mappings
        .iter()
        .map(port_spec)
        .collect::<Result<Vec<_>, _>>()?;
    let mut names = dns_names(conf, net)?;
    let label = container.label();
    let spec = AttachSpec {
        network: net.name.clone(),
        container,
        ips,
        ifname: Some(ifname),
        owner: None,
        netns_owned: false,
        publish,
        mac: conf
            .runtime_config
            .mac
            .as_deref()
            .map(|m| MacAddr::parse("runtimeConfig.mac", m))
            .transpose()?,
        name: None,
        aliases: Vec::new(),
        labels: requested_labels(conf)?,
    };
    let ep = names::attach_naming(engine, spec, &mut names);
    for why in &names.left_out {
        eprintln!(
            "ctnet: warning: container {label:?} on network {:?}: {why}",
            net.name.as_str()
        );
    }
    Ok(ep?)
}

/// The ADD result: the previous plugin's result (in a chain) with ctnet's appended.
fn result(conf: &NetConf, net: &Network, ep: &ctnet_engine::Endpoint, netns: &str) -> Value {
    let prev = conf.prev_result.clone().unwrap_or(Value::Null);
    let list = |key: &str| prev[key].as_array().cloned().unwrap_or_default();
    let mut interfaces = list("interfaces");
    let mut ips = list("ips");
    let mut routes = list("routes");
    interfaces.push(json!({ "name": net.bridge.as_str() }));
    if let Some(host_side) = &ep.host_ifname {
        interfaces.push(json!({ "name": host_side.as_str() }));
    }
    interfaces.push(types::interface(
        ep.ifname.as_str(),
        &ep.mac.to_string(),
        Some(netns),
    ));
    for s in &net.subnets {
        let family = s.subnet.family();
        let Some(ip) = ep.ip(family) else {
            continue;
        };
        let mut address = types::ip(ip, s.subnet.prefix_len(), s.gateway, interfaces.len() - 1);
        if conf.cni_version.starts_with("0.") {
            address["version"] = json!(if family == Family::V4 { "4" } else { "6" });
        }
        ips.push(address);
        if ep.routes_default(family) {
            let dst = if family == Family::V4 {
                "0.0.0.0/0"
            } else {
                "::/0"
            };
            routes.push(json!({ "dst": dst, "gw": s.gateway.to_string() }));
        }
    }
    let result = CniResult {
        cni_version: conf.cni_version.clone(),
        interfaces,
        ips,
        routes,
        dns: result_dns(
            conf.dns.as_ref().or(prev.get("dns")),
            if net.dns { gateways(net) } else { Vec::new() },
        ),
    };
    serde_json::to_value(result).expect("plain struct")
}

/// A network's gateways, IPv4 first: where the agent answers on a DNS network.
fn gateways(net: &Network) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = net.subnets.iter().map(|s| s.gateway).collect();
    out.sort_by_key(|g| g.is_ipv6());
    out
}

/// The result's `dns`: `given` (the configuration's `dns`, else the previous plugin's)
/// with `servers` (the gateways of a network with ctnet's DNS) first among its
/// nameservers, once each; the rest of `given` as it is.
fn result_dns(given: Option<&Value>, servers: Vec<IpAddr>) -> Value {
    let mut dns = match given {
        Some(Value::Object(m)) => Value::Object(m.clone()),
        _ => json!({}),
    };
    if servers.is_empty() {
        return dns;
    }
    let mut nameservers: Vec<Value> = servers.iter().map(|s| json!(s.to_string())).collect();
    for ns in dns["nameservers"].as_array().into_iter().flatten() {
        if !nameservers.contains(ns) {
            nameservers.push(ns.clone());
        }
    }
    dns["nameservers"] = Value::Array(nameservers);
    dns
}

/// DEL is idempotent: a missing network, endpoint or namespace is success. A delegated
/// IPAM plugin is told to release the address too.
fn del(engine: &mut Engine, conf: &NetConf, input: &str) -> Result<(), Failure> {
    let name = network_name(conf)?;
    let container = container(std::env::var("CNI_NETNS").ok())?;
    // The attachment is (container id, interface): another container's endpoint in
    // the same namespace, or this one's other interface, is not this DEL's.
    let ifname = std::env::var("CNI_IFNAME")
        .ok()
        .and_then(|n| IfName::new(&n).ok());
    // Only looks: a DEL must not create the default network to detach from it.
    if engine.find_network(&name).is_ok_and(|n| n.is_some()) {
        match engine.detach_interface(&name, &container, ifname.as_ref()) {
            Ok(_) => {}
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(kind) = delegated_ipam(conf) {
        run_ipam(kind, "DEL", input)?;
    }
    Ok(())
}

/// CHECK: the kernel holds what the endpoint needs (the engine's check) and, when the
/// runtime passes the ADD's result as prevResult (libcni does), the interface still has
/// exactly the addresses that result gave it.
fn check(engine: &mut Engine, conf: &NetConf) -> Result<(), Failure> {
    let netns = env("CNI_NETNS", "CHECK")?;
    let ifname = env("CNI_IFNAME", "CHECK")?;
    let name = network_name(conf)?;
    let ep = engine.check_endpoint(&name, &container(Some(netns.clone()))?)?;
    let Some(expected) = conf
        .prev_result
        .as_ref()
        .and_then(|prev| prev_addresses(prev, &ifname, &netns))
    else {
        return Ok(());
    };
    let mut have = ep.ips.clone();
    have.sort();
    if have != expected {
        let list = |ips: &[IpAddr]| {
            ips.iter()
                .map(|ip| ip.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(Failure::new(
            code::UNKNOWN_CONTAINER,
            format!(
                "interface {ifname} in {netns}: ctnet holds {} for it, but the ADD's result (prevResult) gives {}",
                list(&have),
                list(&expected)
            ),
            "the attachment changed since its ADD: DEL and ADD the container again",
        ));
    }
    Ok(())
}

/// The addresses (sorted) a result gives interface `ifname` in `netns`; None when the
/// result names no such interface (another plugin's result, nothing to compare).
fn prev_addresses(prev: &Value, ifname: &str, netns: &str) -> Option<Vec<IpAddr>> {
    let interfaces = prev["interfaces"].as_array()?;
    let index = interfaces
        .iter()
        .position(|i| i["name"] == ifname && i["sandbox"] == netns)?;
    let mut ips: Vec<IpAddr> = prev["ips"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|ip| ip["interface"].as_u64() == Some(index as u64))
        .filter_map(|ip| ip["address"].as_str()?.split('/').next()?.parse().ok())
        .collect();
    ips.sort();
    Some(ips)
}

/// GC: detaches every CNI attachment of this network that is not in the valid list.
fn gc(engine: &mut Engine, conf: &NetConf) -> Result<(), Failure> {
    let name = network_name(conf)?;
    let valid = conf.valid_attachments.as_deref().unwrap_or_default();
    for ep in engine.endpoints()? {
        let Some(id) = Runtime::Cni.id_in(&ep.container) else {
            continue;
        };
        let keep = valid
            .iter()
            .any(|a| a.container_id == id && a.ifname == ep.ifname.as_str());
        if ep.network == name && !keep {
            let container = ContainerRef::Runtime {
                runtime: Runtime::Cni,
                id: id.to_string(),
                netns: None,
            };
            match engine.detach_interface(&name, &container, Some(&ep.ifname)) {
                Ok(_) => {}
                Err(e) if e.kind == ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// A `portMappings` entry as a port spec, built from its fields (never through text).
fn port_spec(p: &types::PortMapping) -> Result<PortSpec, Failure> {
    let object = format!(
        "portMappings entry {}:{}/{}",
        p.host_port, p.container_port, p.protocol
    );
    let invalid = |cause: String| {
        Failure::from(Error::invalid(
            &object,
            cause,
            "give ports 1-65535 and tcp or udp",
        ))
    };
    let protocol = Protocol::parse(&p.protocol)
        .ok_or_else(|| invalid(format!("protocol {:?} is not tcp or udp", p.protocol)))?;
    let host_ip = p
        .host_ip
        .as_deref()
        .filter(|h| !h.is_empty())
        .map(|h| parse_ip("portMappings hostIP", h, None))
        .transpose()?;
    let host = PortRange::new(p.host_port, p.host_port)
        .ok_or_else(|| invalid(format!("host port {} is not a port", p.host_port)))?;
    let container = PortRange::new(p.container_port, p.container_port)
        .ok_or_else(|| invalid(format!("container port {} is not a port", p.container_port)))?;
    PortSpec::new(host_ip, Some(host), container, protocol).map_err(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(runtime_config: Value) -> NetConf {
        serde_json::from_value(json!({
            "cniVersion": "1.0.0", "name": "n", "type": "ctnet",
            "runtimeConfig": runtime_config
        }))
        .expect("conf")
    }

    #[test]
    fn capabilities_ctnet_does_not_do_are_refused_naming_the_plugin_that_does() {
        let f = unsupported_capabilities(&conf(json!({
            "portMappings": [], "bandwidth": { "ingressRate": 1000, "ingressBurst": 100 }
        })))
        .unwrap_err();
        assert_eq!(f.code, code::INVALID_CONFIG);
        assert!(f.msg.contains("runtimeConfig.bandwidth"), "{}", f.msg);
        assert!(f.details.contains("`bandwidth` plugin"), "{}", f.details);
        let f = unsupported_capabilities(&conf(json!({
            "ipRanges": [[{ "subnet": "10.1.0.0/24" }]]
        })))
        .unwrap_err();
        assert!(f.details.contains("host-local"), "{}", f.details);
        let f = unsupported_capabilities(&conf(json!({
            "dns": { "servers": ["10.0.0.10"] }
        })))
        .unwrap_err();
        assert!(f.msg.contains("\"dns\""), "{}", f.msg);
    }

    #[test]
    fn a_check_compares_the_addresses_its_prev_result_gives_the_interface() {
        let prev = json!({
            "interfaces": [
                { "name": "ctr0" }, { "name": "veth1" },
                { "name": "eth0", "sandbox": "/proc/7/ns/net" },
                { "name": "eth0", "sandbox": "/proc/8/ns/net" }
            ],
            "ips": [
                { "address": "fd00::5/64", "interface": 2 },
                { "address": "10.88.0.5/16", "interface": 2 },
                { "address": "10.88.0.9/16", "interface": 3 },
                { "address": "10.88.0.7/16" }
            ]
        });
        let ips = |t: &[&str]| {
            t.iter()
                .map(|a| a.parse().unwrap())
                .collect::<Vec<IpAddr>>()
        };
        assert_eq!(
            prev_addresses(&prev, "eth0", "/proc/7/ns/net"),
            Some(ips(&["10.88.0.5", "fd00::5"]))
        );
        assert_eq!(
            prev_addresses(&prev, "eth0", "/proc/8/ns/net"),
            Some(ips(&["10.88.0.9"]))
        );
        assert_eq!(prev_addresses(&prev, "eth1", "/proc/7/ns/net"), None);
        assert_eq!(prev_addresses(&json!({}), "eth0", "/proc/7/ns/net"), None);
    }

    #[test]
    fn the_result_dns_is_the_confs_with_the_dns_networks_gateways_first() {
        let given = json!({ "nameservers": ["10.0.0.53", "10.88.0.1"], "search": ["corp"] });
        let gw: Vec<IpAddr> = vec!["10.88.0.1".parse().unwrap(), "fd88::1".parse().unwrap()];
        assert_eq!(
            result_dns(Some(&given), gw.clone()),
            json!({ "nameservers": ["10.88.0.1", "fd88::1", "10.0.0.53"], "search": ["corp"] })
        );
        // Without DNS the configuration's dns passes through as it is.
        assert_eq!(result_dns(Some(&given), Vec::new()), given);
        assert_eq!(result_dns(None, Vec::new()), json!({}));
        assert_eq!(
            result_dns(Some(&json!(null)), gw[..1].to_vec()),
            json!({ "nameservers": ["10.88.0.1"] })
        );
    }

    #[test]
    fn what_ctnet_does_and_empty_capabilities_pass() {
        assert!(unsupported_capabilities(&conf(json!({
            "portMappings": [{ "hostPort": 80, "containerPort": 80, "protocol": "tcp" }],
            "ips": ["10.88.0.5/16"], "mac": "02:42:0a:58:00:05",
            "aliases": { "n": ["web"] }
        })))
        .is_ok());
        // containerd's CRI may pass a declared capability with nothing in it.
        assert!(unsupported_capabilities(&conf(json!({
            "bandwidth": {}, "dns": null, "ipRanges": [], "cgroupPath": ""
        })))
        .is_ok());
    }
}
