//! The one-shot side of the host agent (`ctnet-agent`, crates/ctnet-agent): finding it,
//! telling it the store changed, starting it on demand, and reading its status.
//!
//! Everything goes through four files in the run dir:
//!
//! ```text
//!  run dir (/run/ctnet)
//!  ├── agent.lock   the running agent holds flock(LOCK_EX) on it all its life; its pid inside
//!  ├── agent.sock   a unix datagram socket, bound once its DNS listeners are up:
//!  │                "changed": the store changed, read it again;
//!  │                "endpoint ID": that endpoint came or went, read its row;
//!  │                "hello": is anyone there? (a one-shot that started an agent, polling)
//!  ├── agent.json   its Status, rewritten atomically on change and at least every 5 s
//!  └── agent.log    the stderr of an agent started on demand (appended)
//! ```
//!
//! A one-shot process pays one datagram per change (no connection, no answer awaited),
//! sent after its work: an attach to a DNS network whose datagram nobody receives
//! starts the agent then (see `Engine::attach`), so an attach does not get slower. The
//! agent also re-reads the store on a timer, so a lost datagram only delays it. What the agent does for a datagram runs beside the
//! next one-shot on a small host's other core, so it is kept small: a "hello" costs it
//! nothing but a clock reset, and a re-read skips the store when no commit happened.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::paths::Paths;

/// The lock file (see the module's drawing).
pub const LOCK: &str = "agent.lock";
/// The notification socket.
pub const SOCKET: &str = "agent.sock";
/// The status file.
pub const STATUS: &str = "agent.json";
/// The log of an agent started on demand.
pub const LOG: &str = "agent.log";
/// Environment variable naming the ctnet-agent binary.
pub const ENV_AGENT: &str = "CTNET_AGENT";
/// The agent binary's name, beside `ctnet` or in PATH.
pub const BINARY: &str = "ctnet-agent";
/// What a one-shot process sends after it changed the store: read it again.
pub const CHANGED: &[u8] = b"changed";
/// What [`ensure_running`] sends to learn whether an agent listens: the agent only
/// notes that it is needed and does not re-read the store for it.
pub const HELLO: &[u8] = b"hello";
/// What an attach or a detach sends, followed by the endpoint's id in decimal: only that
/// endpoint changed, so the agent reads its one row instead of the whole store.
pub const ENDPOINT: &[u8] = b"endpoint ";

/// A datagram on the agent's socket, as the agent understands it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    /// [`HELLO`]: an agent is needed; nothing changed.
    Hello,
    /// [`ENDPOINT`] and an id: that endpoint was attached or detached.
    Endpoint(i64),
    /// [`CHANGED`], or anything not understood: read the whole store again.
    Changed,
}

impl Message {
    /// What `datagram` says; whatever is not understood asks for the safe answer, a
    /// whole re-read.
    pub fn parse(datagram: &[u8]) -> Message {
        if datagram == HELLO {
            return Message::Hello;
        }
        datagram
            .strip_prefix(ENDPOINT)
            .and_then(|id| std::str::from_utf8(id).ok()?.parse().ok())
            .map_or(Message::Changed, Message::Endpoint)
    }
}

/// How long [`ensure_running`] waits for a started agent's socket.
const START_TIMEOUT: Duration = Duration::from_secs(3);
/// How often it asks meanwhile.
const START_POLL: Duration = Duration::from_millis(2);

/// `run_dir/agent.lock`.
pub fn lock_path(p: &Paths) -> PathBuf {
    p.run_dir.join(LOCK)
}

/// `run_dir/agent.sock`.
pub fn socket_path(p: &Paths) -> PathBuf {
    p.run_dir.join(SOCKET)
}

/// `run_dir/agent.json`.
pub fn status_path(p: &Paths) -> PathBuf {
    p.run_dir.join(STATUS)
}

/// `run_dir/agent.log`.
pub fn log_path(p: &Paths) -> PathBuf {
    p.run_dir.join(LOG)
}

/// What the agent reports about itself (`agent.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Its pid.
    pub pid: u32,
    /// When it started, seconds since the epoch.
    pub started: i64,
    /// When it wrote this, seconds since the epoch.
    pub updated: i64,
    /// `service` (runs until stopped) or `on-demand` (exits when nothing needs it).
    pub mode: String,
    /// One entry per DNS network it serves.
    pub dns: Vec<DnsServing>,
    /// The upstream resolvers it forwards other names to (`198.51.100.53:53`).
    pub upstreams: Vec<String>,
    /// The firewall watch.
    pub firewall: FirewallStatus,
    /// Its last errors, oldest first, at most 20.
    pub last_errors: Vec<AgentError>,
}

/// One DNS network the agent serves.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DnsServing {
    /// The network's name.
    pub network: String,
    /// The addresses it listens on (`10.89.0.1:53`).
    pub listen: Vec<String>,
    /// How many names (containers' names and aliases) it answers for.
    pub names: usize,
    /// Queries answered since it started serving the network.
    pub queries: u64,
}

/// The firewall watch: whether it runs, and what it repaired.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FirewallStatus {
    /// It is subscribed to nf_tables notifications.
    pub watching: bool,
    /// Repairs made.
    pub repairs: u64,
    /// When it last repaired, seconds since the epoch.
    pub last_repair: Option<i64>,
    /// What caused it (the process that changed ctnet's table).
    pub last_cause: Option<String>,
}

/// An error the agent met.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentError {
    /// When, seconds since the epoch.
    pub time: i64,
    /// What happened.
    pub message: String,
}

/// The pid of the live agent holding the lock, if one does. Asking takes a shared lock
/// for a moment: granted means nobody holds the exclusive one (a pid in the file is then
/// stale); refused means the agent lives, and its pid is in the file.
pub fn running_pid(p: &Paths) -> Option<u32> {
    let file = File::open(lock_path(p)).ok()?;
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(_free) => None, // unlocked as `_free` drops
        Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
            let mut text = String::new();
            file.read_to_string(&mut text).ok()?;
            text.trim().parse().ok()
        }
        Err(_) => None,
    }
}

/// Sends the agent one datagram saying the store changed; true when an agent got it.
/// Never blocks and never fails: a missing or stopped agent is simply false. A full
/// queue counts as received: the agent, finding its queue was full, reads the whole
/// store after the datagrams waiting there.
pub fn notify(p: &Paths) -> bool {
    send(p, CHANGED)
}

/// Tells the agent that endpoint `id` was attached or detached (see [`ENDPOINT`]); as
/// [`notify`] otherwise.
pub fn notify_endpoint(p: &Paths, id: i64) -> bool {
    send(p, format!("endpoint {id}").as_bytes())
}

/// Sends one datagram to the agent's socket; true when an agent got it (see [`notify`]).
fn send(p: &Paths, what: &[u8]) -> bool {
    let Ok(sock) = UnixDatagram::unbound() else {
        return false;
    };
    if sock.set_nonblocking(true).is_err() {
        return false;
    }
    match sock.send_to(what, socket_path(p)) {
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
    }
}

/// Makes sure an agent serves this run dir: a [`HELLO`] first; when nobody answers,
/// starts `ctnet-agent --on-demand` detached and waits until its socket answers (at
/// most 3 s). The agent started does the rest (DNS listeners for the store's networks;
/// it exits by itself when nothing needs it).
pub fn ensure_running(p: &Paths) -> Result<()> {
    if send(p, HELLO) {
        return Ok(());
    }
    let binary = find_binary()?;
    let log = open_log(p)?;
    let pid = spawn(p, &binary, log)?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if send(p, HELLO) {
            return Ok(());
        }
        // Another agent may have won the lock (two attaches at once): this one then
        // exits quietly, and the other's socket answers soon.
        if !alive(pid) && running_pid(p).is_none() && !send(p, HELLO) {
            return Err(did_not_start(p, &binary, "it exited"));
        }
        if Instant::now() >= deadline {
            return Err(did_not_start(
                p,
                &binary,
                &format!("its socket did not answer within {START_TIMEOUT:?}"),
            ));
        }
        std::thread::sleep(START_POLL);
    }
}

/// The agent's status file, if it is there and readable. Written by the agent; stale
/// when the agent died (compare [`running_pid`]).
pub fn read_status(p: &Paths) -> Option<Status> {
    let text = std::fs::read_to_string(status_path(p)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Where the agent binary is: `$CTNET_AGENT`, else beside this program, else in PATH.
fn find_binary() -> Result<PathBuf> {
    let from_env = std::env::var_os(ENV_AGENT).map(PathBuf::from);
    if let Some(path) = from_env {
        return if is_executable(&path) {
            Ok(path)
        } else {
            Err(Error::new(
                ErrorKind::NotFound,
                format!("{ENV_AGENT}={}", path.display()),
                "is not an executable file",
                format!("point {ENV_AGENT} at the {BINARY} binary, or unset it"),
            ))
        };
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join(BINARY)));
    let in_path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(BINARY))
                .collect()
        })
        .unwrap_or_default();
    let candidates: Vec<PathBuf> = beside.into_iter().chain(in_path).collect();
    candidates
        .iter()
        .find(|c| is_executable(c))
        .cloned()
        .ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("host agent {BINARY}"),
                "was not found beside this program nor in PATH; a network with DNS needs it \
                 to serve its containers' names",
                format!(
                    "install {BINARY} beside ctnet or in PATH, or set {ENV_AGENT} to its path; \
                     or use a network without DNS (`ctnet network create NAME --dns false`)"
                ),
            )
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Opens (creating the run dir 0755 if needed) the log the agent's output is appended
/// to. A run dir that cannot be written is refused here, before anything starts.
fn open_log(p: &Paths) -> Result<File> {
    let unwritable = |e: std::io::Error| {
        Error::invalid(
            format!("run dir {}", p.run_dir.display()),
            format!("is not writable for the host agent's files: {e}"),
            "point --run-dir or CTNET_RUN_DIR at a writable folder (root's /run/ctnet)",
        )
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(&p.run_dir)
        .map_err(unwritable)?;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(p))
        .map_err(unwritable)
}

/// Starts `binary --on-demand` for these paths, detached; returns its pid.
fn spawn(p: &Paths, binary: &Path, log: File) -> Result<u32> {
    let err = log.try_clone();
    let mut cmd = Command::new(binary);
    cmd.arg("--on-demand")
        .arg("--state-dir")
        .arg(&p.state_dir)
        .arg("--run-dir")
        .arg(&p.run_dir)
        .arg("--netns-dir")
        .arg(&p.netns_dir)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log));
    if let Ok(err) = err {
        cmd.stderr(Stdio::from(err));
    }
    ctnet_kernel::process::spawn_detached(&mut cmd).map_err(|e| {
        Error::new(
            ErrorKind::NotFound,
            format!("host agent {}", binary.display()),
            format!("could not be started: {e}"),
            format!("check the binary, or set {ENV_AGENT} to the {BINARY} binary"),
        )
    })
}

/// Whether process `pid` still runs (not gone, not a zombie nobody reaped).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
    }
}

/// The error for an agent that did not come up, with the end of its log.
fn did_not_start(p: &Paths, binary: &Path, why: &str) -> Error {
    let log = log_path(p);
    let tail = std::fs::read_to_string(&log)
        .ok()
        .and_then(|text| {
            text.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(String::from)
        })
        .map(|line| format!("; its log {} ends: {line}", log.display()))
        .unwrap_or_default();
    Error::new(
        ErrorKind::Kernel,
        format!("host agent {}", binary.display()),
        format!("was started but did not come up: {why}{tail}"),
        format!(
            "see {} and `ctnet agent status`; or use a network without DNS \
             (`ctnet network create NAME --dns false`)",
            log.display()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A test that forks (the spawn below) gives its children, until they exec, a copy of
    /// every descriptor of this process, a socket another test just closed included:
    /// the two are not run at once.
    static FORKS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn messages_parse_and_the_unknown_asks_for_a_whole_read() {
        assert_eq!(Message::parse(HELLO), Message::Hello);
        assert_eq!(Message::parse(CHANGED), Message::Changed);
        assert_eq!(Message::parse(b"endpoint 42"), Message::Endpoint(42));
        for odd in [
            &b"endpoint "[..],
            b"endpoint x",
            b"endpoint 4 2",
            b"",
            b"hello!",
        ] {
            assert_eq!(Message::parse(odd), Message::Changed, "{odd:?}");
        }
    }

    fn scratch(name: &str) -> Paths {
        let dir = std::env::temp_dir().join(format!("ctnet-agent-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Paths {
            state_dir: dir.join("state"),
            run_dir: dir.join("run"),
            netns_dir: dir.join("netns"),
        }
    }

    #[test]
    fn nobody_listening_is_false_and_a_bound_socket_is_true() {
        let _one = FORKS.lock().unwrap_or_else(|e| e.into_inner());
        let p = scratch("notify");
        assert!(!notify(&p), "no run dir");
        std::fs::create_dir_all(&p.run_dir).unwrap();
        let agent = UnixDatagram::bind(socket_path(&p)).unwrap();
        assert!(notify(&p));
        let mut buf = [0u8; 16];
        let n = agent.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], CHANGED);
        drop(agent);
        assert!(!notify(&p), "a socket file nobody reads");
        std::fs::remove_dir_all(p.run_dir.parent().unwrap()).unwrap();
    }

    #[test]
    fn the_pid_is_believed_only_while_the_lock_is_held() {
        let p = scratch("lock");
        assert_eq!(running_pid(&p), None, "no lock file");
        std::fs::create_dir_all(&p.run_dir).unwrap();
        let mut file = File::create(lock_path(&p)).unwrap();
        writeln!(file, "4242").unwrap();
        assert_eq!(running_pid(&p), None, "a stale pid, nobody holds the lock");
        let held = Flock::lock(file, FlockArg::LockExclusiveNonblock).unwrap();
        assert_eq!(running_pid(&p), Some(4242));
        drop(held);
        assert_eq!(running_pid(&p), None);
        std::fs::remove_dir_all(p.run_dir.parent().unwrap()).unwrap();
    }

    #[test]
    fn the_status_round_trips_and_garbage_is_none() {
        let p = scratch("status");
        assert_eq!(read_status(&p), None);
        std::fs::create_dir_all(&p.run_dir).unwrap();
        let status = Status {
            pid: 7,
            started: 1,
            updated: 2,
            mode: "on-demand".into(),
            dns: vec![DnsServing {
                network: "user".into(),
                listen: vec!["10.89.0.1:53".into()],
                names: 2,
                queries: 9,
            }],
            upstreams: vec!["198.51.100.53:53".into()],
            firewall: FirewallStatus {
                watching: true,
                repairs: 1,
                last_repair: Some(3),
                last_cause: Some("nft (pid 9)".into()),
            },
            last_errors: vec![AgentError {
                time: 4,
                message: "x".into(),
            }],
        };
        std::fs::write(status_path(&p), serde_json::to_string(&status).unwrap()).unwrap();
        assert_eq!(read_status(&p), Some(status));
        std::fs::write(status_path(&p), "{not json").unwrap();
        assert_eq!(read_status(&p), None);
        std::fs::remove_dir_all(p.run_dir.parent().unwrap()).unwrap();
    }

    /// A binary that exits at once is reported with the end of its log, long before
    /// the start timeout.
    #[test]
    fn an_agent_that_exits_is_reported_with_its_log() {
        let _one = FORKS.lock().unwrap_or_else(|e| e.into_inner());
        let p = scratch("exits");
        let fake = p.run_dir.parent().unwrap().join("fake-agent");
        std::fs::write(&fake, "#!/bin/sh\necho \"fake: refused $*\" >&2\nexit 1\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let started = Instant::now();
        let log = open_log(&p).unwrap();
        let pid = spawn(&p, &fake, log).unwrap();
        while alive(pid) && started.elapsed() < START_TIMEOUT {
            std::thread::sleep(START_POLL);
        }
        let e = did_not_start(&p, &fake, "it exited");
        assert!(
            e.cause.contains("fake: refused --on-demand --state-dir"),
            "{e}"
        );
        assert!(started.elapsed() < START_TIMEOUT);
        std::fs::remove_dir_all(p.run_dir.parent().unwrap()).unwrap();
    }
}
