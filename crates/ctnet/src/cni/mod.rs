//! ctnet as a CNI plugin (spec 1.0.0 and 1.1.0): chosen when `CNI_COMMAND` is set.
//!
//! The runtime passes the command and the container in the environment and the network
//! configuration on stdin; the plugin answers on stdout with a result or an error object
//! and exits non-zero on error. This module only translates: the network named in the
//! configuration becomes a ctnet network (made on first use from the configuration's
//! bridge and subnet), the container an endpoint labelled with its CNI container id, and
//! every decision is the engine's.

mod types;

use std::io::Read;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;

use ctnet_engine::model::parse_mac;
use ctnet_engine::{
    AttachSpec, ContainerRef, Engine, Error, ErrorKind, Network, NetworkName, NetworkSpec, Paths,
    PortSpec, Subnet,
};
use ctnet_kernel::IfName;
use serde_json::{json, Value};

use types::{code, CniError, CniResult, NetConf, SUPPORTED_VERSIONS};

/// A failure, with the spec's error code.
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
            ErrorKind::Store => code::TRY_AGAIN_LATER,
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
    let mut paths = Paths::default();
    let var = |name: &str| std::env::var_os(name).map(PathBuf::from);
    if let Some(p) = var("CTNET_STATE_DIR") {
        paths.state_dir = p;
    }
    if let Some(p) = var("CTNET_RUN_DIR") {
        paths.run_dir = p;
    }
    if let Some(p) = var("CTNET_NETNS_DIR") {
        paths.netns_dir = p;
    }
    paths
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
    Ok(ContainerRef::Runtime {
        runtime: "cni",
        id: env("CNI_CONTAINERID", "this command")?,
        netns: netns.filter(|n| !n.is_empty()).map(PathBuf::from),
    })
}

fn network_name(conf: &NetConf) -> Result<NetworkName, Failure> {
    Ok(NetworkName::new(&conf.name)?)
}

/// The configuration's subnet: top-level `subnet`, or `ipam.subnet`.
fn configured_subnet(conf: &NetConf) -> Result<Option<Subnet>, Failure> {
    let text = conf
        .subnet
        .as_deref()
        .or(conf.ipam.as_ref().and_then(|i| i.subnet.as_deref()));
    Ok(text.map(Subnet::parse).transpose()?)
}

/// The network the configuration names, made on first use.
fn ensure_network(
    engine: &mut Engine,
    conf: &NetConf,
    lease: Option<(Ipv4Addr, u8, Option<Ipv4Addr>)>,
) -> Result<Network, Failure> {
    // With a delegated IPAM plugin its lease tells the subnet and gateway if the
    // configuration does not.
    let from_lease = lease.and_then(|(addr, prefix, gateway)| {
        let net = ipnet::Ipv4Net::new(addr, prefix).ok()?.trunc();
        Some((Subnet::new(net).ok()?, gateway))
    });
    let gateway_text = conf
        .gateway
        .as_deref()
        .or(conf.ipam.as_ref().and_then(|i| i.gateway.as_deref()));
    let gateway = gateway_text
        .map(|g| {
            g.parse::<Ipv4Addr>().map_err(|_| {
                Failure::new(
                    code::INVALID_CONFIG,
                    format!("gateway {g:?} is not an IPv4 address"),
                    "write it like 10.88.0.1",
                )
            })
        })
        .transpose()?;
    let spec = NetworkSpec {
        subnet: configured_subnet(conf)?.or(from_lease.map(|(s, _)| s)),
        gateway: gateway.or(from_lease.and_then(|(_, g)| g)),
        bridge: conf
            .bridge
            .as_deref()
            .map(IfName::new)
            .transpose()
            .map_err(Error::from)?,
        mtu: conf.mtu,
        internal: conf.internal,
        ..NetworkSpec::named(network_name(conf)?)
    };
    Ok(engine.ensure_network(spec)?)
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

/// The first IPv4 address (with its prefix) and gateway of an IPAM result.
fn ipam_address(result: &Value) -> Option<(Ipv4Addr, u8, Option<Ipv4Addr>)> {
    result["ips"].as_array()?.iter().find_map(|ip| {
        let (addr, prefix) = ip["address"].as_str()?.split_once('/')?;
        Some((
            addr.parse().ok()?,
            prefix.parse().ok()?,
            ip["gateway"].as_str().and_then(|g| g.parse().ok()),
        ))
    })
}

fn add(engine: &mut Engine, conf: &NetConf, input: &str) -> Result<Value, Failure> {
    let Some(kind) = delegated_ipam(conf) else {
        return add_with(engine, conf, None);
    };
    let result = run_ipam(kind, "ADD", input)?;
    let lease = ipam_address(&result).ok_or_else(|| {
        Failure::new(
            code::INVALID_CONFIG,
            format!("IPAM plugin {kind} returned no IPv4 address"),
            "configure it with an IPv4 subnet",
        )
    })?;
    add_with(engine, conf, Some(lease)).inspect_err(|_| {
        // Give the address back; the ADD fails either way.
        let _ = run_ipam(kind, "DEL", input);
    })
}

fn add_with(
    engine: &mut Engine,
    conf: &NetConf,
    lease: Option<(Ipv4Addr, u8, Option<Ipv4Addr>)>,
) -> Result<Value, Failure> {
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
    let net = ensure_network(engine, conf, lease)?;
    let requested = conf
        .runtime_config
        .ips
        .iter()
        .filter_map(|cidr| cidr.split('/').next()?.parse::<Ipv4Addr>().ok())
        .next();
    let ip = lease.map(|(addr, _, _)| addr).or(requested);
    let publish = conf
        .runtime_config
        .port_mappings
        .iter()
        .map(|p| {
            let host_ip = p.host_ip.as_deref().filter(|h| !h.is_empty());
            let text = match host_ip {
                Some(h) => format!("{h}:{}:{}/{}", p.host_port, p.container_port, p.protocol),
                None => format!("{}:{}/{}", p.host_port, p.container_port, p.protocol),
            };
            PortSpec::parse(&text)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let ep = engine.attach(AttachSpec {
        network: net.name.clone(),
        container,
        ip,
        ifname: Some(ifname),
        owner: None,
        netns_owned: false,
        publish,
        mac: conf
            .runtime_config
            .mac
            .as_deref()
            .map(|m| parse_mac("runtimeConfig.mac", m))
            .transpose()?,
    })?;
    Ok(result(conf, &net, &ep, &netns))
}

/// The ADD result: the previous plugin's result (in a chain) with ctnet's appended.
fn result(conf: &NetConf, net: &Network, ep: &ctnet_engine::Endpoint, netns: &str) -> Value {
    let prev = conf.prev_result.clone().unwrap_or(Value::Null);
    let list = |key: &str| prev[key].as_array().cloned().unwrap_or_default();
    let mut interfaces = list("interfaces");
    let mut ips = list("ips");
    let mut routes = list("routes");
    interfaces.push(json!({ "name": net.bridge.as_str() }));
    interfaces.push(json!({ "name": ep.host_ifname }));
    interfaces.push(types::interface(&ep.ifname, &ep.mac, Some(netns)));
    let mut address = types::ip(
        ep.ip,
        net.subnet.net().prefix_len(),
        net.gateway,
        interfaces.len() - 1,
    );
    if conf.cni_version.starts_with("0.") {
        address["version"] = json!("4");
    }
    ips.push(address);
    if ep.default_route {
        routes.push(json!({ "dst": "0.0.0.0/0", "gw": net.gateway.to_string() }));
    }
    let result = CniResult {
        cni_version: conf.cni_version.clone(),
        interfaces,
        ips,
        routes,
        dns: prev.get("dns").cloned().unwrap_or_else(|| json!({})),
    };
    serde_json::to_value(result).expect("plain struct")
}

/// DEL is idempotent: a missing network, endpoint or namespace is success. A delegated
/// IPAM plugin is told to release the address too.
fn del(engine: &mut Engine, conf: &NetConf, input: &str) -> Result<(), Failure> {
    let name = network_name(conf)?;
    let container = container(std::env::var("CNI_NETNS").ok())?;
    if engine.network(name.as_str()).is_ok() {
        match engine.detach(&name, &container) {
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

fn check(engine: &mut Engine, conf: &NetConf) -> Result<(), Failure> {
    let netns = env("CNI_NETNS", "CHECK")?;
    let name = network_name(conf)?;
    engine.check_endpoint(&name, &container(Some(netns))?)?;
    Ok(())
}

/// GC: detaches every CNI attachment of this network that is not in the valid list.
fn gc(engine: &mut Engine, conf: &NetConf) -> Result<(), Failure> {
    let name = network_name(conf)?;
    let valid = conf.valid_attachments.as_deref().unwrap_or_default();
    for ep in engine.endpoints()? {
        let Some(id) = ep.container.strip_prefix("cni:") else {
            continue;
        };
        let keep = valid
            .iter()
            .any(|a| a.container_id == id && a.ifname == ep.ifname);
        if ep.network == name && !keep {
            let container = ContainerRef::Runtime {
                runtime: "cni",
                id: id.to_string(),
                netns: None,
            };
            match engine.detach(&name, &container) {
                Ok(_) => {}
                Err(e) if e.kind == ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}
