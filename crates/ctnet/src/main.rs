//! `ctnet`: the command-line front end. It translates arguments into engine calls and
//! prints results; all decisions are the engine's.

mod cli;
mod cni;
mod commands;
mod exec;
mod netavark;
mod output;

use std::process::ExitCode;

use clap::Parser;
use ctnet_engine::{Engine, Paths};

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    // A runtime calling ctnet as a CNI plugin says so in the environment; Podman calls
    // its network backend by the name netavark.
    if std::env::var_os("CNI_COMMAND").is_some() {
        return cni::run();
    }
    let args: Vec<String> = std::env::args().collect();
    let invoked_as = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if invoked_as == "netavark" {
        return netavark::run(&args);
    }
    let cli = Cli::parse();
    let paths = Paths {
        state_dir: cli.state_dir.clone(),
        run_dir: cli.run_dir.clone(),
        netns_dir: cli.netns_dir.clone(),
    };
    let result = match cli.command {
        Command::Run(args) => return commands::run::run(paths, args),
        Command::Netns(cli::NetnsCommand::Exec { name, command }) => {
            commands::netns::exec(&paths, &name, &command)
        }
        other => Engine::open(paths).and_then(|mut engine| dispatch(&mut engine, other)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ctnet: {err}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(engine: &mut Engine, command: Command) -> ctnet_engine::Result<()> {
    match command {
        Command::Network(cmd) => commands::network::dispatch(engine, cmd),
        Command::Netns(cmd) => commands::netns::dispatch(engine, cmd),
        Command::Attach(args) => commands::endpoint::attach(engine, args),
        Command::Detach(args) => commands::endpoint::detach(engine, args),
        Command::Ls(args) => commands::endpoint::list(engine, args.format),
        Command::Gc(args) => commands::endpoint::gc(engine, args.format),
        Command::Doctor(args) => commands::doctor::doctor(engine, args.format),
        Command::ReapEndpoint { id } => engine.reap_endpoint(id),
        Command::Run(_) => unreachable!("handled before the engine opens"),
    }
}
