//! `ctnet netns add|ls|rm|exec`.

use std::ffi::OsString;

use ctnet_engine::{Engine, Error, ErrorKind, Paths, Result};
use ctnet_kernel::{NetnsDir, NetnsName};
use serde::Serialize;

use crate::cli::{Format, NetnsCommand};
use crate::{exec, output};

pub fn dispatch(engine: &mut Engine, cmd: NetnsCommand) -> Result<()> {
    match cmd {
        NetnsCommand::Add { name } => {
            let name = NetnsName::new(&name)?;
            engine.add_netns(&name)?;
            println!("{name}");
            Ok(())
        }
        NetnsCommand::Ls(args) => list(engine, args.format),
        NetnsCommand::Rm { names } => {
            let names: Vec<NetnsName> = names
                .iter()
                .map(|n| NetnsName::new(n))
                .collect::<std::result::Result<_, _>>()?;
            for name in names {
                engine.remove_netns(&name)?;
                println!("{name}");
            }
            Ok(())
        }
        NetnsCommand::Exec { .. } => unreachable!("handled without opening the engine"),
    }
}

#[derive(Serialize)]
struct NetnsView {
    name: String,
    networks: Vec<String>,
}

fn list(engine: &mut Engine, format: Format) -> Result<()> {
    let names = engine.list_netns()?;
    let endpoints = engine.endpoints()?;
    let views: Vec<NetnsView> = names
        .into_iter()
        .map(|name| {
            let networks = endpoints
                .iter()
                .filter(|e| e.container == name)
                .map(|e| e.network.to_string())
                .collect();
            NetnsView { name, networks }
        })
        .collect();
    match format {
        Format::Json => output::json(&views),
        Format::Table => output::table(
            &["NAME", "NETWORKS"],
            &views
                .iter()
                .map(|v| vec![v.name.clone(), v.networks.join(",")])
                .collect::<Vec<_>>(),
        ),
    }
    Ok(())
}

/// Replaces this process with the command, run inside the named namespace.
pub fn exec(paths: &Paths, name: &str, command: &[OsString]) -> Result<()> {
    let name = NetnsName::new(name)?;
    let dir = NetnsDir::new(&paths.netns_dir);
    let netns = ctnet_kernel::Netns::open(&dir.path_of(&name)).map_err(|_| {
        Error::not_found(
            format!("network namespace {:?}", name.as_str()),
            "see `ctnet netns ls`, or create it with `ctnet netns add`",
        )
    })?;
    let etc = paths.etc_netns_dir().join(name.as_str());
    let err = exec::exec_in(command, &netns, Some(&etc));
    Err(Error::new(
        ErrorKind::InvalidInput,
        format!("command {:?}", command[0]),
        format!("cannot be run: {err}"),
        "check the command name and that it is executable",
    ))
}
