//! `ctnet`: the command-line front end. It translates arguments into engine calls and
//! prints results; all decisions are the engine's.

#![cfg_attr(not(test), no_main)]

mod cli;
mod cni;
mod commands;
mod exec;
#[cfg(test)]
mod fuzz;
mod netavark;
mod output;

use std::process::ExitCode;

use ctnet_engine::{Engine, Paths};

use crate::cli::{Cli, Command};

/// The process's entry point, called by the C library.
///
/// Rust's own wrapper around `main` is skipped (`no_main`): ctnet runs as one short
/// process per operation, and the wrapper's stack-overflow guard (which reads
/// /proc/self/maps and maps an alternate signal stack) was a measurable part of every
/// attach (docs/performance.md has the figures).
/// What of the wrapper matters is done here: closed standard descriptors are reopened
/// on /dev/null, SIGPIPE is ignored (a closed pipe is a write error, as in any Rust
/// program), and `process::exit` flushes stdout. A stack overflow is still caught by the
/// guard page, as a plain SIGSEGV without Rust's message.
#[cfg(not(test))]
#[no_mangle]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    keep_standard_fds_open();
    // SAFETY: setting a signal's disposition to "ignore" has no preconditions; no
    // handler runs.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    std::process::exit(exit_status(run()))
}

/// Points 0, 1 and 2 at /dev/null if the caller left them closed, so that no socket or
/// file ctnet opens later becomes its stdout (as Rust's runtime does before `main`).
#[cfg(not(test))]
fn keep_standard_fds_open() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: `fds` is a valid array of three pollfd structs; a zero timeout never blocks.
    if unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) } < 0 {
        return;
    }
    for fd in fds.iter().filter(|p| p.revents & libc::POLLNVAL != 0) {
        // SAFETY: a NUL-terminated path; open takes the lowest free descriptor, which is
        // this closed standard one since those below it are open or reopened already.
        let got = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        if got != fd.fd {
            std::process::abort();
        }
    }
}

/// The number an [`ExitCode`] stands for (std offers no stable way to read it back).
#[cfg_attr(test, allow(dead_code))]
fn exit_status(code: ExitCode) -> i32 {
    (0..=255u8)
        .find(|n| ExitCode::from(*n) == code)
        .map_or(1, i32::from)
}

/// Runs the command line (or the CNI plugin, or the netavark backend) to its exit code.
#[cfg_attr(test, allow(dead_code))]
fn run() -> ExitCode {
    // A runtime calling ctnet as a CNI plugin says so in the environment; Podman calls
    // its network backend by the name netavark.
    if std::env::var_os("CNI_COMMAND").is_some() {
        return cni::run();
    }
    // As OS strings: `std::env::args` panics on an argument that is not UTF-8.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let invoked_as = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .unwrap_or_default();
    if invoked_as == "netavark" {
        return match netavark_args(&args) {
            Some(args) => netavark::run(&args),
            None => netavark::refuse("an argument is not valid UTF-8"),
        };
    }
    let cli = Cli::parse_args(args);
    match &cli.command {
        &Command::Completion { shell } => return commands::docs::completion(shell),
        Command::Man { dir } => return commands::docs::man(dir.as_deref()),
        _ => {}
    }
    // Before the database is opened: as another user it cannot be, and the error
    // would be about the file rather than the cause.
    if let Err(err) = require_root() {
        eprintln!("ctnet: {err}");
        return ExitCode::FAILURE;
    }
    let paths = Paths {
        state_dir: cli.dirs.state_dir.clone(),
        run_dir: cli.dirs.run_dir.clone(),
        netns_dir: cli.dirs.netns_dir.clone(),
    };
    let result = match cli.command {
        Command::Run(args) => return commands::run::run(paths, args),
        Command::Agent(cli::AgentCommand::Status(args)) => {
            commands::agent::status(&paths, args.format)
        }
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

/// The netavark command line as text (netavark's arguments are words and paths ctnet
/// only compares); None when one is not UTF-8.
fn netavark_args(args: &[std::ffi::OsString]) -> Option<Vec<String>> {
    args.iter().map(|a| a.to_str().map(String::from)).collect()
}

/// ctnet configures devices, namespaces and the firewall of the host, and keeps its
/// state in root's folders: anything else fails later, and less clearly.
fn require_root() -> ctnet_engine::Result<()> {
    let uid = nix::unistd::geteuid();
    if uid.is_root() {
        return Ok(());
    }
    Err(ctnet_engine::Error::new(
        ctnet_engine::ErrorKind::InvalidInput,
        format!("uid {uid}"),
        "ctnet must run as root: it configures the host's network devices, namespaces and firewall",
        "run it as root, e.g. with sudo",
    ))
}

fn dispatch(engine: &mut Engine, command: Command) -> ctnet_engine::Result<()> {
    match command {
        Command::Network(cli::NetworkCommand::Connect(args)) => {
            commands::endpoint::attach(engine, args)
        }
        Command::Network(cli::NetworkCommand::Disconnect(args)) => {
            commands::endpoint::detach(engine, args)
        }
        Command::Network(cmd) => commands::network::dispatch(engine, cmd),
        Command::Netns(cmd) => commands::netns::dispatch(engine, cmd),
        Command::Attach(args) => commands::endpoint::attach(engine, args),
        Command::Detach(args) => commands::endpoint::detach(engine, args),
        Command::Ls(args) => commands::endpoint::list(engine, args.format),
        Command::Policy(cmd) => commands::policy::dispatch(engine, cmd),
        Command::Gc(args) => commands::endpoint::gc(engine, args.format, args.discard_unknown),
        Command::Doctor(args) => commands::doctor::doctor(engine, args.format),
        Command::Inspect(args) => commands::inspect::inspect(engine, args),
        Command::Topology(args) => commands::topology::topology(engine, args),
        Command::Trace(args) => commands::trace::trace(engine, args),
        Command::ReapEndpoint { id } => engine.reap_endpoint(id),
        Command::Run(_) | Command::Agent(_) | Command::Completion { .. } | Command::Man { .. } => {
            unreachable!("handled before the engine opens")
        }
    }
}
