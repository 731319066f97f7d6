//! `ctnet network create|ls|inspect|rm`.

use ctnet_engine::model::{
    parse_ip, Driver, Ipam, Isolation, MacvlanConfig, MacvlanMode, Subnet, DEFAULT_BRIDGE,
    DEFAULT_NETWORK,
};
use ctnet_engine::observe::inspect::NetworkKernel;
use ctnet_engine::{Endpoint, Engine, Error, ErrorKind, Network, NetworkName, NetworkSpec, Result};
use ctnet_kernel::IfName;
use serde::Serialize;

use crate::cli::{Format, NetworkCommand, NetworkCreateArgs};
use crate::output;

pub fn dispatch(engine: &mut Engine, cmd: NetworkCommand) -> Result<()> {
    match cmd {
        NetworkCommand::Create(args) => create(engine, args),
        NetworkCommand::Ls(args) => list(engine, args.format),
        NetworkCommand::Inspect { name, format, etcd } => inspect(
            engine,
            &NetworkName::new(&name)?,
            format.format,
            etcd.as_deref(),
        ),
        NetworkCommand::Rm { names, etcd } => {
            // Every name is checked before any network is removed.
            let names = names
                .iter()
                .map(|n| NetworkName::new(n))
                .collect::<Result<Vec<_>>>()?;
            for name in names {
                // Its policies go with it (as a namespace's do in Kubernetes): say which.
                let policies: Vec<String> = engine
                    .policies()?
                    .into_iter()
                    .filter(|v| v.policy.network == name)
                    .map(|v| v.policy.name.to_string())
                    .collect();
                let local = engine.find_network(&name)?;
                let overlay = match &local {
                    Some(net) => net.driver == Driver::Overlay,
                    None => super::overlay::exists(etcd.as_deref(), &name)?,
                };
                if overlay {
                    if let Some(net) = &local {
                        // This host's containers first: etcd may not have heard of them yet.
                        let here = engine.container_count(&net.name)?;
                        if here > 0 {
                            return Err(Error::new(
                                ErrorKind::InUse,
                                format!("overlay network {:?}", name.as_str()),
                                format!("has {here} container(s) on this host"),
                                "detach them first",
                            ));
                        }
                    }
                    super::overlay::remove(etcd.as_deref(), &name)?;
                    if local.is_some() {
                        engine.remove_network(&name)?;
                    }
                    println!("{name}");
                    continue;
                }
                engine.remove_network(&name)?;
                println!("{name}");
                if !policies.is_empty() {
                    eprintln!(
                        "ctnet: network {:?}'s policies went with it: {}",
                        name.as_str(),
                        policies.join(", ")
                    );
                }
            }
            Ok(())
        }
        NetworkCommand::Connect(_) | NetworkCommand::Disconnect(_) => {
            unreachable!("dispatched as attach and detach")
        }
    }
}

/// The macvlan config the driver, `--parent` and `--macvlan-mode` give together.
fn macvlan_from(args: &NetworkCreateArgs, driver: Driver) -> Result<Option<MacvlanConfig>> {
    let object = format!("network {:?}", args.name);
    match (driver, &args.parent) {
        (Driver::Macvlan, Some(parent)) => Ok(Some(MacvlanConfig {
            parent: IfName::new(parent)?,
            mode: args
                .macvlan_mode
                .as_deref()
                .map_or(Ok(MacvlanMode::Bridge), MacvlanMode::parse)?,
        })),
        (Driver::Macvlan, None) => Err(Error::invalid(
            object,
            "uses the macvlan driver without a parent interface",
            "give the host interface its containers sit on: --parent IF",
        )),
        (Driver::Bridge | Driver::Overlay, _)
            if args.parent.is_some() || args.macvlan_mode.is_some() =>
        {
            Err(Error::invalid(
                object,
                "is a bridge network: --parent and --macvlan-mode are macvlan options",
                "drop them, or add --driver macvlan",
            ))
        }
        (Driver::Bridge | Driver::Overlay, _) => Ok(None),
    }
}

fn spec_from(args: NetworkCreateArgs) -> Result<NetworkSpec> {
    let driver = Driver::parse(&args.driver)?;
    Ok(NetworkSpec {
        overlay: None,
        driver,
        macvlan: macvlan_from(&args, driver)?,
        isolation: Isolation::from_isolate("--isolate", &args.isolate)?,
        metric: args.metric,
        ipam: Ipam::parse(&args.ipam)?,
        name: NetworkName::new(&args.name)?,
        subnets: args
            .subnet
            .iter()
            .map(|s| Subnet::parse(s))
            .collect::<Result<_>>()?,
        gateways: args
            .gateway
            .iter()
            .map(|g| parse_ip("gateway", g, None))
            .collect::<Result<_>>()?,
        ipv4: args.ipv4,
        ipv6: args.ipv6,
        bridge: args.bridge.as_deref().map(IfName::new).transpose()?,
        mtu: args.mtu,
        internal: args.internal,
        icc: args.icc,
        creator: None,
        // On unless turned off, as on Docker's user-defined networks (the default
        // network `bridge` is made elsewhere, without DNS, as Docker's docker0).
        dns: args.dns && !args.disable_dns,
    })
}

fn create(engine: &mut Engine, args: NetworkCreateArgs) -> Result<()> {
    if args.driver == "overlay" {
        return super::overlay::create(&args);
    }
    if args.vni.is_some() || args.host_prefix.is_some() {
        return Err(Error::invalid(
            format!("network {:?}", args.name),
            "--vni and --host-prefix are overlay options",
            "drop them, or add --driver overlay",
        ));
    }
    let spec = spec_from(args)?;
    if spec.name.as_str() == DEFAULT_NETWORK {
        // As Docker's `bridge`: it exists (made on first attach), and is not made by hand
        // with other settings.
        return Err(Error::new(
            ErrorKind::Conflict,
            format!("network {DEFAULT_NETWORK:?}"),
            "is the default network, made by ctnet when a container first attaches to it",
            "choose another name",
        ));
    }
    // The default network is not made here: it is made when something first attaches
    // to it, and keeps its usual subnet because the engine leaves the first free pool
    // to it whichever network comes first.
    let net = engine.create_network(spec)?;
    println!("{}", net.id);
    Ok(())
}

#[derive(Serialize)]
struct NetworkView<'a> {
    #[serde(flatten)]
    network: &'a Network,
    containers: Vec<&'a Endpoint>,
    /// The state as the host's links show it (`degraded (…)` when its bridge is gone).
    #[serde(skip_serializing_if = "Option::is_none")]
    kernel_state: Option<String>,
    /// What the kernel holds of it: the bridge, its ports, what it learned, the
    /// differences from the store (`network inspect` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    kernel: Option<Box<NetworkKernel>>,
    /// An overlay network's remote hosts, as this host's agent programmed them.
    #[serde(skip_serializing_if = "Option::is_none")]
    peers: Option<Vec<ctnet_engine::model::overlay::Peer>>,
    /// An overlay network as etcd has it: every host and its block.
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<super::overlay::ClusterView>,
}

/// The default network before anything has attached to it: listed, as Docker always
/// lists `bridge`, but nothing of it exists yet (no row, no bridge, no firewall).
#[derive(Serialize)]
struct VirtualDefault {
    name: &'static str,
    driver: &'static str,
    isolation: &'static str,
    ipam: &'static str,
    bridge: &'static str,
    dns: bool,
    state: &'static str,
    note: &'static str,
    containers: [(); 0],
}

const VIRTUAL_DEFAULT: VirtualDefault = VirtualDefault {
    name: DEFAULT_NETWORK,
    driver: "bridge",
    isolation: "strict",
    ipam: "ctnet",
    bridge: DEFAULT_BRIDGE,
    dns: false,
    state: "virtual",
    note: "not created yet: made when a container first attaches to it",
    containers: [],
};

/// A network as listed: one that exists, or the default one not made yet.
#[derive(Serialize)]
#[serde(untagged)]
enum Listed<'a> {
    Real(NetworkView<'a>),
    Virtual(&'a VirtualDefault),
}

/// Table rows in the order of their first cell (the name), as networks are listed.
fn by_name(mut rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    rows.sort_by(|a, b| a[0].cmp(&b[0]));
    rows
}

/// The table row of the default network not made yet.
fn virtual_default_row() -> Vec<String> {
    [
        DEFAULT_NETWORK,
        "-",
        "bridge",
        "strict",
        "ctnet",
        "(on first attach)",
        "-",
        DEFAULT_BRIDGE,
        "false",
        "false",
        "0",
        "virtual",
    ]
    .map(String::from)
    .to_vec()
}

fn list(engine: &mut Engine, format: Format) -> Result<()> {
    let networks = engine.networks()?;
    let endpoints = engine.endpoints()?;
    let states = engine.network_states(&networks)?;
    let views: Vec<NetworkView> = networks
        .iter()
        .zip(states)
        .map(|(n, state)| NetworkView {
            network: n,
            containers: endpoints.iter().filter(|e| e.network == n.name).collect(),
            kernel_state: Some(state),
            kernel: None,
            peers: None,
            cluster: None,
        })
        .collect();
    let default_made = networks.iter().any(|n| n.name.as_str() == DEFAULT_NETWORK);
    let virtual_default = (!default_made).then_some(&VIRTUAL_DEFAULT);
    match format {
        Format::Json => {
            let mut listed: Vec<Listed> = views.into_iter().map(Listed::Real).collect();
            listed.extend(virtual_default.map(Listed::Virtual));
            listed.sort_by_key(|l| match l {
                Listed::Real(v) => v.network.name.to_string(),
                Listed::Virtual(v) => v.name.to_string(),
            });
            output::json(&listed)
        }
        Format::Table => output::table(
            &[
                "NAME",
                "ID",
                "DRIVER",
                "ISOLATION",
                "IPAM",
                "SUBNET",
                "GATEWAY",
                "BRIDGE",
                "INTERNAL",
                "DNS",
                "CONTAINERS",
                "STATE",
            ],
            &by_name(
                views
                    .iter()
                    .map(|v| {
                        let n = v.network;
                        vec![
                            n.name.to_string(),
                            n.id[..12].to_string(),
                            n.driver.to_string(),
                            isolation_text(n),
                            n.ipam.to_string(),
                            match &n.overlay {
                                Some(o) => format!("{} of {}", n.subnets_text(), o.cluster),
                                None => or_dash(n.subnets_text()),
                            },
                            or_dash(gateways_text(n)),
                            device_text(n),
                            n.internal.to_string(),
                            n.dns.to_string(),
                            v.containers.len().to_string(),
                            v.kernel_state.clone().unwrap_or_default(),
                        ]
                    })
                    .chain(virtual_default.map(|_| virtual_default_row()))
                    .collect(),
            ),
        ),
    }
    Ok(())
}

/// The ISOLATION column: a macvlan network's traffic never passes ctnet's firewall, so
/// its isolation setting has no effect and is not shown as if it had.
fn isolation_text(n: &Network) -> String {
    match n.macvlan {
        Some(_) => "-".into(),
        None => n.isolation.to_string(),
    }
}

/// The BRIDGE column: the bridge, or for a macvlan network the parent it sits on (it has
/// no bridge of its own).
fn device_text(n: &Network) -> String {
    if let Some(o) = &n.overlay {
        return format!("{} + {}", n.bridge, o.vxlan);
    }
    match &n.macvlan {
        Some(m) => format!("parent {}", m.parent),
        None => n.bridge.to_string(),
    }
}

/// An endpoint's DNS names (its name, then its aliases) as text; None when it has none.
pub fn names_text(e: &Endpoint) -> Option<String> {
    let all: Vec<&str> = e.dns_names().map(|n| n.as_str()).collect();
    (!all.is_empty()).then(|| all.join(","))
}

fn or_dash(text: String) -> String {
    if text.is_empty() {
        "-".into()
    } else {
        text
    }
}

fn gateways_text(n: &Network) -> String {
    let all: Vec<String> = n.subnets.iter().map(|s| s.gateway.to_string()).collect();
    all.join(", ")
}

fn inspect(
    engine: &mut Engine,
    name: &NetworkName,
    format: Format,
    etcd: Option<&str>,
) -> Result<()> {
    let network = match engine.find_network(name)? {
        Some(network) => network,
        None if name.as_str() == DEFAULT_NETWORK => {
            inspect_virtual_default(format);
            return Ok(());
        }
        None if super::overlay::exists(etcd, name)? => {
            return Err(super::overlay::not_joined(name))
        }
        // The engine's usual not-found error.
        None => engine.network(name)?,
    };
    let endpoints = engine.endpoints()?;
    let kernel = engine.network_kernel(&network)?;
    let view = NetworkView {
        network: &network,
        containers: endpoints
            .iter()
            .filter(|e| e.network == network.name)
            .collect(),
        kernel_state: None,
        kernel: Some(Box::new(kernel)),
        peers: if network.driver == Driver::Overlay {
            Some(engine.overlay_peers(&network.name)?)
        } else {
            None
        },
        cluster: (network.driver == Driver::Overlay)
            .then(|| super::overlay::view(etcd, &network.name))
            .flatten(),
    };
    match format {
        Format::Json => output::json(&view),
        Format::Table => {
            let n = &network;
            println!("name:      {}", n.name);
            println!("id:        {}", n.id);
            println!("driver:    {}", n.driver);
            for s in &n.subnets {
                println!("subnet:    {} gateway {}", s.subnet, s.gateway);
            }
            if let Some(m) = &n.macvlan {
                println!("parent:    {} mode {}", m.parent, m.mode);
            } else {
                println!("bridge:    {}", n.bridge);
            }
            if let Some(o) = &n.overlay {
                println!(
                    "overlay:   {} VNI {} blocks /{} vxlan {} underlay {}",
                    o.cluster, o.vni, o.host_prefix, o.vxlan, o.underlay
                );
                for p in view.peers.iter().flatten() {
                    println!(
                        "  peer {} {} block {} vtep {}",
                        p.host, p.underlay, p.block, p.vtep_mac
                    );
                }
                match &view.cluster {
                    Some(super::overlay::ClusterView::Known(c)) => {
                        for h in &c.hosts {
                            println!(
                                "  host {} {} block {} containers {}",
                                h.host, h.underlay, h.block, h.containers
                            );
                        }
                    }
                    Some(super::overlay::ClusterView::Unknown {
                        cluster_unavailable,
                    }) => {
                        println!("  cluster: {cluster_unavailable}")
                    }
                    None => {}
                }
            }
            println!("isolation: {}", n.isolation);
            println!("ipam:      {}", n.ipam);
            println!(
                "metric:    {}",
                n.metric.map_or("default".to_string(), |m| m.to_string())
            );
            println!(
                "mtu:       {}",
                n.mtu.map_or("default".to_string(), |m| m.to_string())
            );
            println!("internal:  {}", n.internal);
            println!("icc:       {}", n.icc);
            println!("dns:       {}", if n.dns { "on" } else { "off" });
            println!("containers:");
            for e in &view.containers {
                let addresses: Vec<String> = e
                    .ips
                    .iter()
                    .zip(&n.subnets)
                    .map(|(ip, s)| format!("{ip}/{}", s.subnet.prefix_len()))
                    .collect();
                println!(
                    "  {} {} {} mac {} host side {}",
                    e.container,
                    e.ifname,
                    addresses.join(" "),
                    e.mac,
                    e.host_side_text()
                );
                for port in &e.ports {
                    println!("    published {port}");
                }
                if let Some(names) = names_text(e) {
                    println!("    dns names {names}");
                }
            }
            if let Some(k) = &view.kernel {
                print!("{}", kernel_text(k, n));
            }
        }
    }
    Ok(())
}

/// The kernel's side, in the words of `ip -s link show BRIDGE`, `bridge link` and
/// `bridge fdb`.
fn kernel_text(k: &NetworkKernel, n: &Network) -> String {
    use std::fmt::Write as _;
    let mut out = String::from("kernel:\n");
    match &k.bridge {
        Some(b) => {
            let _ = writeln!(
                out,
                "  bridge {} index {} mtu {} {}{}",
                b.name,
                b.index,
                b.mtu,
                if b.up { "up" } else { "DOWN" },
                b.counters
                    .as_ref()
                    .map(|c| format!(
                        " rx {} packets {} bytes tx {} packets {} bytes",
                        c.rx_packets, c.rx_bytes, c.tx_packets, c.tx_bytes
                    ))
                    .unwrap_or_default()
            );
            for a in &b.addresses {
                let _ = writeln!(out, "    inet {a}");
            }
        }
        None if n.macvlan.is_some() => {
            let _ = writeln!(
                out,
                "  (macvlan: no bridge; the containers sit on the parent)"
            );
        }
        None => {
            let _ = writeln!(out, "  bridge {} MISSING", n.bridge);
        }
    }
    for p in &k.ports {
        let _ = writeln!(
            out,
            "  port {} index {} {} {}{}",
            p.name,
            p.index,
            p.state.as_deref().unwrap_or("-"),
            p.container
                .as_deref()
                .map_or("(not ctnet's)".to_string(), |c| format!("container {c}")),
            p.counters
                .as_ref()
                .map(|c| format!(" rx {} tx {} packets", c.rx_packets, c.tx_packets))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(out, "  learned MACs {}", k.learned_macs);
    if k.differences.is_empty() {
        let _ = writeln!(out, "  the kernel matches what ctnet recorded");
    }
    for d in &k.differences {
        let _ = writeln!(out, "  DIFFERS {}: {} (fix: {})", d.object, d.detail, d.fix);
    }
    out
}

/// `inspect bridge` before anything has attached to the default network.
fn inspect_virtual_default(format: Format) {
    match format {
        Format::Json => output::json(&VIRTUAL_DEFAULT),
        Format::Table => {
            let v = VIRTUAL_DEFAULT;
            println!("name:      {}", v.name);
            println!("driver:    {}", v.driver);
            println!("subnet:    chosen on first attach (the first free default pool)");
            println!("bridge:    {}", v.bridge);
            println!("state:     {}", v.note);
            println!("containers:");
        }
    }
}
