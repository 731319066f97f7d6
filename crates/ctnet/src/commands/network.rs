//! `ctnet network create|ls|inspect|rm`.

use ctnet_engine::model::Subnet;
use ctnet_engine::{Endpoint, Engine, Network, NetworkName, NetworkSpec, Result};
use ctnet_kernel::IfName;
use serde::Serialize;

use crate::cli::{parse_ip, Format, NetworkCommand, NetworkCreateArgs};
use crate::output;

pub fn dispatch(engine: &mut Engine, cmd: NetworkCommand) -> Result<()> {
    match cmd {
        NetworkCommand::Create(args) => create(engine, args),
        NetworkCommand::Ls(args) => list(engine, args.format),
        NetworkCommand::Inspect { name, format } => inspect(engine, &name, format.format),
        NetworkCommand::Rm { names } => {
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
        subnet: args.subnet.as_deref().map(Subnet::parse).transpose()?,
        gateway: args
            .gateway
            .as_deref()
            .map(|g| parse_ip("gateway", g))
            .transpose()?,
        bridge: args.bridge.as_deref().map(IfName::new).transpose()?,
        mtu: args.mtu,
        internal: args.internal,
        icc: args.icc,
    })
}

fn create(engine: &mut Engine, args: NetworkCreateArgs) -> Result<()> {
    let spec = spec_from(args)?;
    // The default network comes first, as with Docker, so it keeps the first pool.
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
                        n.driver.clone(),
                        n.subnet.to_string(),
                        n.gateway.to_string(),
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

fn inspect(engine: &mut Engine, name: &str, format: Format) -> Result<()> {
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
            println!("subnet:    {}", n.subnet);
            println!("gateway:   {}", n.gateway);
            println!("bridge:    {}", n.bridge);
            println!(
                "mtu:       {}",
                n.mtu.map_or("default".to_string(), |m| m.to_string())
            );
            println!("internal:  {}", n.internal);
            println!("icc:       {}", n.icc);
            println!("containers:");
            for e in &view.containers {
                println!(
                    "  {} {} {}/{} mac {} host side {}",
                    e.container,
                    e.ifname,
                    e.ip,
                    n.subnet.net().prefix_len(),
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
