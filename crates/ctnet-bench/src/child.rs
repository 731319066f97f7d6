//! Running one child process and timing it the way a container engine experiences it:
//! from just before fork+exec until the child has been reaped, with its input written
//! and all of its output read.
//!
//! The child is reaped with `wait4`, which hands back that child's own resource usage,
//! so every operation also reports the peak resident memory of the process that did it.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one finished child cost.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Wall-clock time from before the fork to after the reap.
    pub wall: Duration,
    /// Everything the child wrote to stdout.
    pub stdout: Vec<u8>,
    /// The child's peak resident set size in KiB (`ru_maxrss` from `wait4`).
    pub max_rss_kib: u64,
}

/// How long any single child may take before it is killed. Generous: a peer with
/// thousands of firewall rules can take seconds per operation, but nothing should hang
/// the benchmark for ever.
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// After a kill, how long to wait for the pipes to close (a grandchild may hold them).
const AFTER_KILL: Duration = Duration::from_secs(2);

/// Runs `cmd` with `stdin` as its input, waits for it and returns what it cost.
///
/// `what` names the operation for error messages ("netavark setup /run/netns/nv3").
/// A non-zero exit, a signal or a timeout is an error that carries the child's stderr.
pub fn run_timed(what: &str, cmd: &mut Command, stdin: Option<&[u8]>) -> Result<Finished, String> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());

    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| {
        format!(
            "{what}: cannot start {}: {e}",
            cmd.get_program().to_string_lossy()
        )
    })?;
    let pid = child.id() as libc::pid_t;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // Inputs are a few KiB, far below a pipe's buffer, so this never waits on the
        // child. A child that exits without reading gives EPIPE, which its exit status
        // will explain better.
        let _ = pipe.write_all(input);
    }
    let (stdout, stderr) = match (child.stdout.take(), child.stderr.take()) {
        (Some(out), Some(err)) => (
            File::from(OwnedFd::from(out)),
            File::from(OwnedFd::from(err)),
        ),
        _ => return Err(format!("{what}: the child's output pipes were not set up")),
    };
    let drained = drain(stdout, stderr, pid, start + TIMEOUT);
    let (status, max_rss_kib) = reap(pid).map_err(|e| format!("{what}: wait for it: {e}"))?;
    let wall = start.elapsed();

    let stderr_text = String::from_utf8_lossy(&drained.stderr).trim().to_string();
    if drained.killed {
        return Err(format!(
            "{what}: no answer within {} s, killed it; stderr: {stderr_text}",
            TIMEOUT.as_secs()
        ));
    }
    if let Some(problem) = exit_problem(status) {
        let detail = if stderr_text.is_empty() {
            String::from_utf8_lossy(&drained.stdout).trim().to_string()
        } else {
            stderr_text
        };
        return Err(if detail.is_empty() {
            format!("{what}: {problem} without saying why")
        } else {
            format!("{what}: {problem}: {detail}")
        });
    }
    Ok(Finished {
        wall,
        stdout: drained.stdout,
        max_rss_kib,
    })
}

/// Output read from a child, and whether it had to be killed.
struct Drained {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    killed: bool,
}

/// Reads stdout and stderr together until both close, so a child that fills one pipe
/// while we wait on the other can never deadlock us. Past `deadline` the child is killed
/// by its pid; the loop then ends within [`AFTER_KILL`] whatever happens.
fn drain(stdout: File, stderr: File, pid: libc::pid_t, deadline: Instant) -> Drained {
    let mut streams: [(Option<File>, Vec<u8>); 2] =
        [(Some(stdout), Vec::new()), (Some(stderr), Vec::new())];
    let mut deadline = deadline;
    let mut killed = false;
    while streams.iter().any(|(f, _)| f.is_some()) {
        let now = Instant::now();
        if now >= deadline {
            if killed {
                break;
            }
            // SAFETY: `pid` is our own child, not yet reaped, so the pid cannot have
            // been reused by another process.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed = true;
            deadline = now + AFTER_KILL;
            continue;
        }
        let mut fds: Vec<libc::pollfd> = streams
            .iter()
            .filter_map(|(f, _)| f.as_ref())
            .map(|f| libc::pollfd {
                fd: f.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let wait_ms = (deadline - now).as_millis().clamp(1, 1000) as libc::c_int;
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs for the call.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, wait_ms) };
        if ready <= 0 {
            continue; // timeout slice or EINTR: the deadline check above bounds this
        }
        for pfd in fds.iter().filter(|p| p.revents != 0) {
            for (file, buf) in streams.iter_mut() {
                let Some(f) = file.as_mut() else { continue };
                if f.as_raw_fd() != pfd.fd {
                    continue;
                }
                let mut chunk = [0u8; 16384];
                match f.read(&mut chunk) {
                    Ok(0) => *file = None,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => *file = None,
                }
            }
        }
    }
    let [(_, stdout), (_, stderr)] = streams;
    Drained {
        stdout,
        stderr,
        killed,
    }
}

/// Reaps `pid` with `wait4` and returns its wait status and peak RSS in KiB.
fn reap(pid: libc::pid_t) -> std::io::Result<(libc::c_int, u64)> {
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // EINTR is the only retryable error; a signal storm cannot last, but bound it anyway.
    for _ in 0..1000 {
        // SAFETY: valid pointers to locals; `pid` is our own unreaped child.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            return Ok((status, u64::try_from(usage.ru_maxrss).unwrap_or(0)));
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    Err(std::io::Error::from_raw_os_error(libc::EINTR))
}

/// None for a clean exit 0; otherwise how the child ended, in words.
fn exit_problem(status: libc::c_int) -> Option<String> {
    if libc::WIFEXITED(status) {
        match libc::WEXITSTATUS(status) {
            0 => None,
            code => Some(format!("exited with status {code}")),
        }
    } else if libc::WIFSIGNALED(status) {
        Some(format!("killed by signal {}", libc::WTERMSIG(status)))
    } else {
        Some(format!("ended with wait status {status:#x}"))
    }
}

/// The first line a program prints for `ARG` (e.g. `--version`), or None if it cannot
/// be run. Used only for labels, so failures are quiet.
pub fn first_line_of(program: &std::path::Path, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .next()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
}

/// Looks `name` up in PATH, as a shell would.
pub fn which(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// True for an existing regular file with an execute bit.
pub fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
