//! `ctnet completion SHELL` and `ctnet man`: the shell completion script and the manual
//! page, generated from the command line's own definition (cli.rs), so they never fall
//! behind it. Both print to stdout and need no privileges.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// Prints the completion script for `shell`.
pub fn completion(shell: Shell) -> ExitCode {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "ctnet", &mut out);
    print(&out)
}

/// Prints ctnet's manual page (roff), or with `dir` writes one page per command there
/// (`ctnet.1`, `ctnet-network-create.1`, …), as packages install them.
pub fn man(dir: Option<&Path>) -> ExitCode {
    let cmd = Cli::command();
    let written = match dir {
        Some(dir) => clap_mangen::generate_to(cmd, dir).map(|()| Vec::new()),
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut out).map(|()| out)
        }
    };
    match written {
        Ok(out) => print(&out),
        Err(e) => {
            let place = dir.map_or("stdout".into(), |d| d.display().to_string());
            eprintln!("ctnet: manual pages in {place}: cannot be written: {e}; check that the folder exists and is writable");
            ExitCode::FAILURE
        }
    }
}

/// Writes to stdout; a closed pipe is a failure as for any output.
fn print(bytes: &[u8]) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}
