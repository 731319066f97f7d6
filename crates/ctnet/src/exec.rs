//! Running a user's command inside a network namespace.

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use ctnet_kernel::Netns;
use nix::sys::signal::SigSet;

/// Signals `ctnet run` passes on to its command rather than dying of them: every signal
/// whose default action ends a process and that comes from outside (a user's `kill`, a
/// terminal, a timer, a resource limit), real-time signals included. Dying of any of them
/// would leave the command's endpoint and namespace behind. Faults of ctnet's own code
/// (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT) keep their default action;
/// SIGKILL cannot be caught, so the command is given a parent-death signal instead.
const FORWARDED: [libc::c_int; 15] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGPIPE,
    libc::SIGALRM,
    libc::SIGTERM,
    libc::SIGSTKFLT,
    libc::SIGXCPU,
    libc::SIGXFSZ,
    libc::SIGVTALRM,
    libc::SIGPROF,
    libc::SIGIO,
    libc::SIGPWR,
];

/// How long a command may take to exit after a forwarded signal before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Blocks the forwarded signals and SIGCHLD in this thread (and every thread started
/// after), so [`run_and_wait`] can take them one by one with `sigtimedwait`. Call before
/// any thread starts. SIGCHLD gets its default action back: ignored (inherited across
/// exec from a parent that ignores it) the kernel would reap the command unasked.
pub fn block_forwarded_signals() {
    // SAFETY: setting a signal's disposition to its default is always sound.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
    let _ = awaited_set().thread_block();
}

/// What `ctnet run` waits for: the forwarded signals and its command's SIGCHLD.
fn awaited_set() -> SigSet {
    let mut set = forwarded_set();
    set.add(nix::sys::signal::Signal::SIGCHLD);
    set
}

fn forwarded_set() -> SigSet {
    // SAFETY: sigemptyset/sigaddset only write the local set; SIGRTMIN/SIGRTMAX read the
    // C library's constants (it keeps the lowest real-time signals for its own threads).
    unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        for sig in FORWARDED
            .into_iter()
            .chain(libc::SIGRTMIN()..=libc::SIGRTMAX())
        {
            libc::sigaddset(&mut set, sig);
        }
        SigSet::from_sigset_t_unchecked(set)
    }
}

/// Everything the child needs between fork and exec, prepared beforehand because only
/// async-signal-safe calls may run there.
struct ChildSetup {
    netns_fd: Option<RawFd>,
    root: CString,
    sys: CString,
    sysfs: CString,
    /// (source, target) of each bind mount of /etc/netns/NAME/FILE over /etc/FILE.
    etc_binds: Vec<(CString, CString)>,
    /// The signals to unblock, computed before fork.
    signals: SigSet,
}

impl ChildSetup {
    fn new(netns: Option<&Netns>, etc: Option<&Path>) -> Self {
        ChildSetup {
            netns_fd: netns.map(|n| n.as_raw_fd()),
            root: CString::new("/").expect("no NUL"),
            sys: CString::new("/sys").expect("no NUL"),
            sysfs: CString::new("sysfs").expect("no NUL"),
            etc_binds: etc.map(etc_binds).unwrap_or_default(),
            signals: awaited_set(),
        }
    }

    /// Runs in the child after fork: enter the namespace; give the child its own mount
    /// namespace with /sys remounted, as `ip netns exec` does, so /sys/class/net shows the
    /// namespace's own devices, and each file of /etc/netns/NAME bind-mounted over its
    /// namesake in /etc (the resolv.conf naming the networks' DNS servers); unblock the
    /// signals the parent blocked.
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
                    // As iproute2: a file with no namesake in /etc is not bound.
                    for (source, target) in &self.etc_binds {
                        libc::mount(
                            source.as_ptr(),
                            target.as_ptr(),
                            std::ptr::null(),
                            libc::MS_BIND,
                            std::ptr::null(),
                        );
                    }
                }
            }
        }
        // SAFETY: sigprocmask is async-signal-safe; the set is a plain value.
        unsafe {
            libc::sigprocmask(
                libc::SIG_UNBLOCK,
                self.signals.as_ref(),
                std::ptr::null_mut(),
            );
        }
        Ok(())
    }
}

/// The bind mounts `ip netns exec` makes for a namespace whose /etc files are in `dir`
/// (`/etc/netns/NAME`): each entry over `/etc/ENTRY`. None when the folder is missing.
fn etc_binds(dir: &Path) -> Vec<(CString, CString)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut binds: Vec<(CString, CString)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            // ctnet's own half-written files (`.resolv.conf.PID`) are not for binding.
            if name.as_bytes().starts_with(b".") {
                return None;
            }
            let source = CString::new(entry.path().as_os_str().as_bytes()).ok()?;
            let target = CString::new(Path::new("/etc").join(&name).as_os_str().as_bytes()).ok()?;
            Some((source, target))
        })
        .collect();
    binds.sort();
    binds
}

fn build(argv: &[OsString], netns: Option<&Netns>, etc: Option<&Path>) -> Command {
    let mut command = Command::new(&argv[0]);
    command.args(&argv[1..]);
    let setup = ChildSetup::new(netns, etc);
    // SAFETY: `apply` only makes async-signal-safe system calls on data prepared before fork.
    unsafe {
        command.pre_exec(move || setup.apply());
    }
    command
}

/// Replaces this process with `argv` run inside `netns` (`ctnet netns exec`), with the
/// files of `etc` (the namespace's /etc/netns/NAME) over /etc.
pub fn exec_in(argv: &[OsString], netns: &Netns, etc: Option<&Path>) -> std::io::Error {
    build(argv, Some(netns), etc).exec()
}

/// Runs `argv` (inside `netns` when given), forwarding the [`FORWARDED`] signals to it,
/// and returns its exit status. Signals must have been blocked with
/// [`block_forwarded_signals`] before any thread started. The command is killed if this
/// process dies first (even by SIGKILL), so it never outlives the endpoint it runs on.
/// The files of `etc` (the namespace's /etc/netns/NAME) are bound over /etc.
///
/// One thread does it all: it takes each blocked signal with `sigtimedwait`, SIGCHLD
/// meaning "reap it". A second thread (as a `sigwaitinfo` loop once was) makes every
/// `ctnet run` pay for it when the process exits: the TLB shootdown across CPUs of a
/// process that ran on two of them, about 0.4 ms on a 2-vCPU VM.
pub fn run_and_wait(
    argv: &[OsString],
    netns: Option<&Netns>,
    etc: Option<&Path>,
) -> std::io::Result<ExitStatus> {
    let mut command = build(argv, netns, etc);
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: `die_with_parent` only makes async-signal-safe system calls.
    unsafe {
        command.pre_exec(move || die_with_parent(parent));
    }
    let child = command.spawn()?;
    wait_forwarding(child.id() as libc::pid_t)
}

/// Waits for the command `pid` to end, passing on every forwarded signal sent to this
/// process; a command still running [`STOP_TIMEOUT`] after a SIGTERM or SIGINT is killed.
fn wait_forwarding(pid: libc::pid_t) -> std::io::Result<ExitStatus> {
    let set = awaited_set();
    let me = std::process::id() as libc::pid_t;
    let mut kill_at: Option<Instant> = None;
    loop {
        if let Some(status) = reap(pid)? {
            return Ok(status);
        }
        match take_signal(&set, kill_at) {
            // The command changed state (or another child did): looked at above.
            Some((libc::SIGCHLD, _)) => {}
            // A signal this process raised itself (the kernel's SIGPIPE for ctnet's own
            // write to a closed pipe names ctnet as the sender) is not the command's.
            Some((_, sender)) if sender == me => {}
            Some((sig, _)) => {
                // SAFETY: kill on the pid of our own child, which we have not reaped yet.
                unsafe { libc::kill(pid, sig) };
                if (sig == libc::SIGTERM || sig == libc::SIGINT) && kill_at.is_none() {
                    kill_at = Some(Instant::now() + STOP_TIMEOUT);
                }
            }
            None if kill_at.is_some_and(|t| Instant::now() >= t) => {
                // SAFETY: as above; the child has ignored the stop signal for too long.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                kill_at = None;
            }
            None => {} // interrupted, or not yet time
        }
    }
}

/// The exit status of `pid` if it has ended (reaping it), else None.
fn reap(pid: libc::pid_t) -> std::io::Result<Option<ExitStatus>> {
    let mut status = 0;
    // SAFETY: waitpid on our own child writes its status into a local.
    match unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } {
        0 => Ok(None),
        n if n == pid => Ok(Some(ExitStatus::from_raw(status))),
        _ => {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                Ok(None)
            } else {
                Err(err)
            }
        }
    }
}

/// The next of the blocked signals in `set` and its sender's pid; None when `until`
/// passed first (no deadline: waits as long as it takes) or the wait was interrupted.
fn take_signal(set: &SigSet, until: Option<Instant>) -> Option<(libc::c_int, libc::pid_t)> {
    let timeout = until.map(|t| {
        let left = t.saturating_duration_since(Instant::now());
        libc::timespec {
            tv_sec: left.as_secs() as libc::time_t,
            tv_nsec: left.subsec_nanos() as libc::c_long,
        }
    });
    let timeout_ptr = timeout
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: sigtimedwait writes the received signal's details into `info`, a plain
    // value owned here; the set was blocked in every thread before any started, and
    // the timeout, when given, is a valid timespec that outlives the call.
    unsafe {
        let mut info = std::mem::zeroed::<libc::siginfo_t>();
        let sig = libc::sigtimedwait(set.as_ref(), &mut info, timeout_ptr);
        (sig > 0).then(|| (sig, info.si_pid()))
    }
}

/// Runs in the child after fork: SIGKILL when the parent dies. The parent may have died
/// between fork and this call (the signal would then never come), so the parent is
/// checked after asking: a child already orphaned stops here instead of running on.
/// The parent-death signal follows the thread that forked, which is `ctnet run`'s main
/// thread: it lives as long as the process.
fn die_with_parent(parent: libc::pid_t) -> std::io::Result<()> {
    // SAFETY: prctl and getppid are async-signal-safe and take plain values.
    unsafe {
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
        if libc::getppid() != parent {
            libc::_exit(EXIT_ORPHANED);
        }
    }
    Ok(())
}

/// What a child whose parent died before it could exec exits with (nobody waits for it).
const EXIT_ORPHANED: libc::c_int = 137;

/// The exit code a shell would report for this status (128 + signal when killed).
pub fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}
