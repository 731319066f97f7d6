//! `ctnet network create|ls|inspect|rm`.

use ctnet_engine::model::{parse_ip, Subnet};
use ctnet_engine::{Endpoint, Engine, Network, NetworkName, NetworkSpec, Result};
use ctnet_kernel::IfName;
use serde::Serialize;

use crate::cli::{Format, NetworkCommand, NetworkCreateArgs};
use crate::output;

pub fn dispatch(engine: &mut Engine, cmd: NetworkCommand) -> Result<()> {
    match cmd {
        NetworkCommand::Create(args) => create(engine, args),
        NetworkCommand::Ls(args) => list(engine, args.format),
        NetworkCommand::Inspect { name, format } => {
            inspect(engine, &NetworkName::new(&name)?, format.format)
        }
        NetworkCommand::Rm { names } => {
            // Every name is checked before any network is removed.
            let names = names
                .iter()
                .map(|n| NetworkName::new(n))
                .collect::<Result<Vec<_>>>()?;
            for name in names {
                engine.remove_network(&name)?;
                println!("{name}");
            }
            Ok(())
        }
    }
}

fn spec_from(args: NetworkCreateArgs) -> Result<NetworkSpec> {
    Ok(NetworkSpec {
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
    })
}

fn create(engine: &mut Engine, args: NetworkCreateArgs) -> Result<()> {
    let spec = spec_from(args)?;
    // As before: the default network exists once any network does (Docker's docker0).
    // Which pool it gets no longer depends on this: the engine keeps the first free
    // pool for it whichever front end creates a network first.
    engine.ensure_default_network()?;
    let net = engine.create_network(spec)?;
    println!("{}", net.id);
    Ok(())
}

#[derive(Serialize)]
struct NetworkView<'a> {
    #[serde(flatten)]
    network: &'a Network,
    containers: Vec<&'a Endpoint>,
}

fn list(engine: &mut Engine, format: Format) -> Result<()> {
    let networks = engine.networks()?;
    let endpoints = engine.endpoints()?;
    let views: Vec<NetworkView> = networks
        .iter()
        .map(|n| NetworkView {
            network: n,
            containers: endpoints.iter().filter(|e| e.network == n.name).collect(),
        })
        .collect();
    match format {
        Format::Json => output::json(&views),
        Format::Table => output::table(
            &[
                "NAME",
                "ID",
                "DRIVER",
                "SUBNET",
                "GATEWAY",
                "BRIDGE",
                "INTERNAL",
                "CONTAINERS",
            ],
            &views
                .iter()
                .map(|v| {
                    let n = v.network;
                    vec![
                        n.name.to_string(),
                        n.id[..12].to_string(),
                        n.driver.to_string(),
                        n.subnets_text(),
                        gateways_text(n),
                        n.bridge.to_string(),
                        n.internal.to_string(),
                        v.containers.len().to_string(),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
    }
    Ok(())
}

fn gateways_text(n: &Network) -> String {
    let all: Vec<String> = n.subnets.iter().map(|s| s.gateway.to_string()).collect();
    all.join(", ")
}

fn inspect(engine: &mut Engine, name: &NetworkName, format: Format) -> Result<()> {
    let network = engine.network(name)?;
    let endpoints = engine.endpoints()?;
    let view = NetworkView {
        network: &network,
        containers: endpoints
            .iter()
            .filter(|e| e.network == network.name)
            .collect(),
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
            println!("bridge:    {}", n.bridge);
            println!(
                "mtu:       {}",
                n.mtu.map_or("default".to_string(), |m| m.to_string())
            );
            println!("internal:  {}", n.internal);
            println!("icc:       {}", n.icc);
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
                    e.host_ifname
                );
                for port in &e.ports {
                    println!("    published {port}");
                }
            }
        }
    }
    Ok(())
}
