//! Running a user's command inside a network namespace.

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use ctnet_kernel::Netns;
use nix::sys::signal::{SigSet, Signal};

/// Signals `ctnet run` passes on to its command rather than dying of them.
const FORWARDED: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// How long a command may take to exit after a forwarded signal before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Blocks the forwarded signals in this thread (and every thread started after), so a
/// dedicated thread can receive them with `sigwait`. Call before any thread starts.
pub fn block_forwarded_signals() {
    let _ = forwarded_set().thread_block();
}

fn forwarded_set() -> SigSet {
    let mut set = SigSet::empty();
    for sig in FORWARDED {
        set.add(sig);
    }
    set
}

/// Everything the child needs between fork and exec, prepared beforehand because only
/// async-signal-safe calls may run there.
struct ChildSetup {
    netns_fd: Option<RawFd>,
    root: CString,
    sys: CString,
    sysfs: CString,
}

impl ChildSetup {
    fn new(netns: Option<&Netns>) -> Self {
        ChildSetup {
            netns_fd: netns.map(|n| n.as_raw_fd()),
            root: CString::new("/").expect("no NUL"),
            sys: CString::new("/sys").expect("no NUL"),
            sysfs: CString::new("sysfs").expect("no NUL"),
        }
    }

    /// Runs in the child after fork: enter the namespace; give the child its own mount
    /// namespace with /sys remounted, as `ip netns exec` does, so /sys/class/net shows the
    /// namespace's own devices; unblock the signals the parent blocked.
    fn apply(&self) -> std::io::Result<()> {
        if let Some(fd) = self.netns_fd {
            // SAFETY: setns is async-signal-safe; fd is a namespace fd the parent keeps open.
            if unsafe { libc::setns(fd, libc::CLONE_NEWNET) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // SAFETY: plain syscalls on NUL-terminated strings prepared before fork. Failures
            // leave the old /sys view, which is harmless, so they are not reported.
            unsafe {
                if libc::unshare(libc::CLONE_NEWNS) == 0 {
                    libc::mount(
                        std::ptr::null(),
                        self.root.as_ptr(),
                        std::ptr::null(),
                        libc::MS_SLAVE | libc::MS_REC,
                        std::ptr::null(),
                    );
                    libc::umount2(self.sys.as_ptr(), libc::MNT_DETACH);
                    libc::mount(
                        self.sysfs.as_ptr(),
                        self.sys.as_ptr(),
                        self.sysfs.as_ptr(),
                        0,
                        std::ptr::null(),
                    );
                }
            }
        }
        let set = forwarded_set();
        // SAFETY: sigprocmask is async-signal-safe; the set is a plain value.
        unsafe {
            libc::sigprocmask(libc::SIG_UNBLOCK, set.as_ref(), std::ptr::null_mut());
        }
        Ok(())
    }
}

fn build(argv: &[OsString], netns: Option<&Netns>) -> Command {
    let mut command = Command::new(&argv[0]);
    command.args(&argv[1..]);
    let setup = ChildSetup::new(netns);
    // SAFETY: `apply` only makes async-signal-safe system calls on data prepared before fork.
    unsafe {
        command.pre_exec(move || setup.apply());
    }
    command
}

/// Replaces this process with `argv` run inside `netns` (`ctnet netns exec`).
pub fn exec_in(argv: &[OsString], netns: &Netns) -> std::io::Error {
    build(argv, Some(netns)).exec()
}

/// The child being waited for, so the signal thread can reach it.
static CHILD: AtomicI32 = AtomicI32::new(0);

/// Runs `argv` (inside `netns` when given), forwarding SIGINT/SIGTERM/SIGHUP/SIGQUIT to
/// it, and returns its exit status. Signals must have been blocked with
/// [`block_forwarded_signals`] before any thread started.
pub fn run_and_wait(argv: &[OsString], netns: Option<&Netns>) -> std::io::Result<ExitStatus> {
    let mut child = build(argv, netns).spawn()?;
    CHILD.store(child.id() as i32, Ordering::SeqCst);
    std::thread::spawn(forward_signals);
    let status = child.wait()?;
    CHILD.store(0, Ordering::SeqCst);
    Ok(status)
}

fn forward_signals() {
    let set = forwarded_set();
    while let Ok(sig) = set.wait() {
        let pid = CHILD.load(Ordering::SeqCst);
        if pid <= 0 {
            continue;
        }
        // SAFETY: kill on the pid of our own child, which we have not reaped yet.
        unsafe { libc::kill(pid, sig as i32) };
        if matches!(sig, Signal::SIGTERM | Signal::SIGINT) {
            std::thread::spawn(move || {
                std::thread::sleep(STOP_TIMEOUT);
                if CHILD.load(Ordering::SeqCst) == pid {
                    // SAFETY: as above; the child has ignored the stop signal for too long.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            });
        }
    }
}

/// The exit code a shell would report for this status (128 + signal when killed).
pub fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}
