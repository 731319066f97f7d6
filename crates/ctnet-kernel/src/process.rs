//! Starting a long-lived program detached from the short-lived one that needs it.
//!
//! ```text
//!  ctnet (one-shot)          fork ──► intermediate: setsid, fork ──► daemon: exec
//!     │ waits for it ◄──────────────── writes the daemon's pid, _exit(0)     │
//!     │ reads the pid                                                       runs on,
//!     ▼ exits                                                               a child of init
//! ```
//!
//! The classic double fork: the daemon is in a session of its own (no controlling
//! terminal, no signals from the caller's terminal or process group), it is not the
//! caller's child (the caller reaps the intermediate at once and leaves no zombie), and
//! it does not die with the caller. The engine forbids unsafe code, so the fork between
//! fork and exec lives here.

use std::io::Read;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use nix::fcntl::OFlag;

/// Spawns `cmd` detached (see the module's drawing) and returns the daemon's pid. Its
/// stdio is what `cmd` says (give it files or /dev/null: an inherited pipe would keep
/// the caller's reader waiting for the daemon's end); every other descriptor the caller
/// holds is closed at exec, and its signal mask is cleared (a caller may block signals
/// for a thread of its own to wait for them, which a daemon must not inherit). An exec
/// failure is returned as an error, as from [`Command::spawn`].
pub fn spawn_detached(cmd: &mut Command) -> std::io::Result<u32> {
    let (read_end, write_end) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let write_fd: RawFd = write_end.as_raw_fd();
    // SAFETY: `detach` makes only async-signal-safe system calls (sigprocmask, setsid,
    // close_range, fork, write, _exit) on values prepared before fork.
    unsafe {
        cmd.pre_exec(move || detach(write_fd));
    }
    let mut intermediate = cmd.spawn()?;
    // The intermediate exits as soon as it has forked: reaped here, no zombie left.
    intermediate.wait()?;
    drop(write_end);
    let mut pid = [0u8; 4];
    let mut reader = std::fs::File::from(read_end);
    reader.read_exact(&mut pid).map_err(|e| {
        std::io::Error::new(e.kind(), format!("the detached process sent no pid: {e}"))
    })?;
    Ok(u32::from_ne_bytes(pid))
}

/// Runs in the child between fork and exec: a new session, descriptors beyond stdio
/// marked close-on-exec, no blocked signals; then a second fork whose parent reports
/// the daemon's pid on `pid_pipe` and exits, and whose child goes on to exec.
fn detach(pid_pipe: RawFd) -> std::io::Result<()> {
    // SAFETY: sigemptyset writes a local set; sigprocmask, setsid and close_range are
    // plain system calls; none allocates or takes a lock.
    unsafe {
        let mut none = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        if libc::setsid() < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // Marked rather than closed: the pipe std uses to report an exec failure must
        // stay open until the exec (it is close-on-exec already). A kernel without
        // close_range (before 5.11) leaves them as they are.
        libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC as libc::c_uint,
        );
    }
    // SAFETY: fork in a single-threaded child (std forked it from one thread); the
    // parent branch writes four bytes and exits without running any destructors.
    match unsafe { libc::fork() } {
        -1 => Err(std::io::Error::last_os_error()),
        0 => Ok(()),
        daemon => {
            let bytes = (daemon as u32).to_ne_bytes();
            // SAFETY: write and _exit are async-signal-safe; `bytes` lives on this stack.
            unsafe {
                libc::write(pid_pipe, bytes.as_ptr().cast(), bytes.len());
                libc::_exit(0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// The daemon runs on in a session of its own, is not our child, and its pid is
    /// the one reported.
    #[test]
    fn a_detached_process_is_in_its_own_session_and_not_our_child() {
        let dir = std::env::temp_dir().join(format!("ctnet-detach-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!(
                "echo $$ $(cut -d' ' -f4,6 /proc/$$/stat) > {}.tmp && mv {0}.tmp {0}",
                out.display()
            ))
            .stdin(std::process::Stdio::null());
        let pid = spawn_detached(&mut cmd).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !out.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let text = std::fs::read_to_string(&out).unwrap();
        let fields: Vec<u32> = text
            .split_whitespace()
            .map(|f| f.parse().unwrap())
            .collect();
        let [shell, parent, session] = fields[..] else {
            panic!("{text}")
        };
        assert_eq!(shell, pid);
        assert_ne!(parent, std::process::id(), "the daemon is not our child");
        assert_ne!(session, nix::unistd::getsid(None).unwrap().as_raw() as u32);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_exec_failure_is_an_error() {
        let mut cmd = Command::new("/nonexistent/ctnet-agent");
        assert!(spawn_detached(&mut cmd).is_err());
    }
}
