//! `ctnet-agent`: the one long-lived ctnet process on a host. It answers container names
//! on the gateways of DNS networks and (with the firewall watch) puts ctnet's nftables
//! table back when someone else removes it. It is a service (`contrib/ctnet-agent.service`)
//! or started on demand by the first attach to a DNS network (see docs/agent.md).
//!
//! Start order: take the lock in the run dir (one agent per host), open the store, repair
//! drift as after a reboot (service mode), bind the DNS listeners, then `agent.sock` (a one-
//! shot waiting for the agent sees it answer only once names resolve), then the firewall
//! watch.

mod control;
mod dns;
mod firewall;
mod overlay;
mod status;

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use ctnet_engine::{agent, Engine, Paths};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use control::{Agent, Mode};
use status::Errors;

/// ctnet's host agent: container-name DNS on user networks and a firewall that repairs
/// itself. Runs in the foreground.
#[derive(Parser, Debug)]
#[command(name = "ctnet-agent", version)]
struct Args {
    /// Persistent state (the database).
    #[arg(long, env = ctnet_engine::paths::ENV_STATE_DIR)]
    state_dir: Option<PathBuf>,
    /// Runtime files: the agent's lock, socket, status and log.
    #[arg(long, env = ctnet_engine::paths::ENV_RUN_DIR)]
    run_dir: Option<PathBuf>,
    /// Named network namespaces.
    #[arg(long, env = ctnet_engine::paths::ENV_NETNS_DIR)]
    netns_dir: Option<PathBuf>,
    /// Started by a ctnet command: exit once no DNS network has a container for 5 s, and
    /// quietly when another agent already runs.
    #[arg(long)]
    on_demand: bool,
    /// Join the overlay networks of this etcd cluster (client URLs, comma-separated):
    /// lease a block of each for this host and keep the other hosts' routes (see
    /// docs/overlay.md). Needs --advertise-addr.
    #[arg(long, env = ctnet_engine::cluster::ENV_ETCD, value_name = "URL[,URL...]")]
    etcd: Option<String>,
    /// This host's address on the underlay network, which the other hosts send VXLAN to.
    #[arg(long, value_name = "IP", requires = "etcd")]
    advertise_addr: Option<String>,
    /// Seconds this host's leases live in etcd without a keep-alive (sent every third of
    /// it): a host that dies loses its blocks, and its peers its routes, that long after.
    #[arg(long, default_value_t = 10, value_name = "SECONDS", value_parser = clap::value_parser!(i64).range(2..=300))]
    lease_ttl: i64,
    /// This host's name in etcd, for people (the host name when omitted).
    #[arg(long, value_name = "NAME")]
    host_name: Option<String>,
}

/// Why the agent does not run.
enum Exit {
    /// Another agent serves (on demand: nothing to say).
    Quiet,
    /// A clear error for the user.
    Fail(String),
}

fn main() -> ExitCode {
    close_inherited_fds();
    let args = Args::parse();
    let overlay = match overlay_config(&args) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("ctnet-agent: {message}");
            return ExitCode::FAILURE;
        }
    };
    let mut paths = Paths::default();
    if let Some(dir) = args.state_dir {
        paths.state_dir = dir;
    }
    if let Some(dir) = args.run_dir {
        paths.run_dir = dir;
    }
    if let Some(dir) = args.netns_dir {
        paths.netns_dir = dir;
    }
    let mode = if args.on_demand {
        Mode::OnDemand
    } else {
        Mode::Service
    };
    match run(paths, mode, overlay) {
        Ok(()) | Err(Exit::Quiet) => ExitCode::SUCCESS,
        Err(Exit::Fail(message)) => {
            eprintln!("ctnet-agent: {message}");
            ExitCode::FAILURE
        }
    }
}

/// A one-shot that spawns us may hold descriptors open (its store, a netlink socket, the
/// pipe of whoever runs it): a long-lived process must not keep them, or a caller
/// waiting for that pipe to close would wait for us.
fn close_inherited_fds() {
    // SAFETY: close_range takes plain integers and only closes descriptors; nothing in
    // this process uses a descriptor above 2 yet (we are at the top of main).
    unsafe {
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
    }
}

/// The overlay role's settings, checked; None without --etcd.
fn overlay_config(args: &Args) -> Result<Option<overlay::Config>, String> {
    let Some(etcd) = &args.etcd else {
        return Ok(None);
    };
    if args.on_demand {
        return Err("--etcd makes the agent a service: drop --on-demand".into());
    }
    let endpoints = ctnet_engine::cluster::parse_endpoints(etcd).map_err(|e| e.to_string())?;
    let advertise = args
        .advertise_addr
        .as_deref()
        .ok_or("--etcd needs --advertise-addr: this host's IPv4 address on the underlay network")?;
    let advertise = advertise.parse().map_err(|_| {
        format!("--advertise-addr {advertise:?} is not an IPv4 address: give this host's underlay address, e.g. 192.0.2.11")
    })?;
    let host = args.host_name.clone().unwrap_or_else(|| {
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "unknown".into())
    });
    Ok(Some(overlay::Config {
        endpoints,
        advertise,
        ttl: args.lease_ttl,
        host,
    }))
}

fn run(paths: Paths, mode: Mode, overlay: Option<overlay::Config>) -> Result<(), Exit> {
    let lock = take_lock(&paths, mode)?;
    let mut engine = Engine::open(paths.clone()).map_err(|e| Exit::Fail(e.to_string()))?;
    let errors = Errors::default();
    // Service mode repairs first, as after a reboot: networks come back and endpoints
    // whose namespaces are gone are dropped, before anything is served. On demand, the
    // one-shot that started us has just reconciled.
    if mode == Mode::Service {
        if let Err(e) = engine.gc() {
            errors.record(format!("repair at start failed: {e}"));
        }
    }
    let mut agent = Agent::new(paths.clone(), mode, engine, errors);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Exit::Fail(format!("cannot start the async runtime: {e}")))?;
    let served = runtime.block_on(async move {
        // Listeners first, then the socket: whoever waits for the socket finds names served.
        agent.reload(false);
        let control = bind_control(&paths)?;
        start_firewall_watch(&paths, &agent);
        if let Some(config) = overlay {
            overlay::start(paths.clone(), config, agent.errors()).map_err(std::io::Error::other)?;
        }
        agent.write_status();
        notify_systemd();
        agent.run(control).await
    });
    drop(lock);
    served.map_err(|e| Exit::Fail(e.to_string()))
}

/// Starts the firewall watch (its own thread and engine, `firewall.rs`): each repair goes
/// into the status and, failed, into the errors; a datagram to our own socket then makes
/// the status file say so at once. A watch that cannot start is an error in the status,
/// not the end of the agent: DNS still serves.
fn start_firewall_watch(paths: &Paths, agent: &Agent) {
    let (status, errors, own) = (agent.firewall.clone(), agent.errors(), paths.clone());
    let on_repair = Box::new(move |repair: firewall::Repair| {
        {
            let mut fw = status.lock().expect("firewall status lock");
            match &repair.outcome {
                Ok(lines) => {
                    eprintln!(
                        "ctnet-agent: firewall repaired: {}: {}",
                        repair.cause,
                        lines.join("; ")
                    );
                    fw.repairs += 1;
                    fw.last_repair = Some(repair.time);
                    fw.last_cause = Some(repair.cause.clone());
                }
                Err(e) => errors.record(format!("firewall: {}: {e}", repair.cause)),
            }
        }
        agent::notify(&own);
    });
    match firewall::watch(paths.clone(), on_repair) {
        Ok(_) => {
            agent
                .firewall
                .lock()
                .expect("firewall status lock")
                .watching = true
        }
        Err(e) => agent.errors().record(e.to_string()),
    }
}

/// Binds `agent.sock`. We hold the lock, so a socket file left there is a dead agent's.
fn bind_control(paths: &Paths) -> std::io::Result<UnixDatagram> {
    let path = agent::socket_path(paths);
    let _ = std::fs::remove_file(&path);
    let socket = UnixDatagram::bind(&path).map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot bind {}: {e}", path.display()))
    })?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// Tells systemd (a `Type=notify` unit sets NOTIFY_SOCKET) that we serve: units ordered
/// after ours start once the listeners and the socket are up.
fn notify_systemd() {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(socket) = UnixDatagram::unbound() else {
        return;
    };
    let bytes = target.as_encoded_bytes();
    let sent = match bytes.strip_prefix(b"@") {
        Some(name) => std::os::unix::net::SocketAddr::from_abstract_name(name)
            .and_then(|addr| socket.send_to_addr(b"READY=1", &addr)),
        None => socket.send_to(b"READY=1", PathBuf::from(&target)),
    };
    if let Err(e) = sent {
        eprintln!("ctnet-agent: cannot tell systemd we are ready: {e}");
    }
}

/// How long an agent started on demand waits for one that is starting or stopping.
const LOCK_WAIT: Duration = Duration::from_secs(3);

/// Takes `agent.lock` for the whole life of the process and writes our pid into it.
///
/// Held by a live agent: a service refuses at once, naming it. On demand, we were started
/// because a one-shot found no socket answering: the holder is starting (two one-shots
/// raced) or stopping (idle), so we wait until it answers (then leave it the work) or
/// lets go (then we are the agent).
fn take_lock(paths: &Paths, mode: Mode) -> Result<Flock<File>, Exit> {
    let run_dir = &paths.run_dir;
    let unwritable = |e: std::io::Error| {
        Exit::Fail(format!(
            "run dir {} is not writable: {e}: give a writable one with --run-dir or {}",
            run_dir.display(),
            ctnet_engine::paths::ENV_RUN_DIR
        ))
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(run_dir)
        .map_err(unwritable)?;
    let path = agent::lock_path(paths);
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(&path)
            .map_err(unwritable)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(mut locked) => {
                write_pid(&mut locked).map_err(unwritable)?;
                return Ok(locked);
            }
            Err((mut file, Errno::EWOULDBLOCK)) => {
                let holder = read_pid(&mut file);
                if mode == Mode::Service {
                    return Err(held(holder, paths));
                }
                if agent::notify(paths) {
                    return Err(Exit::Quiet);
                }
                if Instant::now() >= deadline {
                    return Err(held(holder, paths));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err((_, errno)) => {
                return Err(Exit::Fail(format!(
                    "cannot lock {}: {errno}",
                    path.display()
                )))
            }
        }
    }
}

fn held(holder: Option<u32>, paths: &Paths) -> Exit {
    let who = holder.map_or("unknown pid".to_string(), |p| format!("pid {p}"));
    Exit::Fail(format!(
        "another agent ({who}) is running for run dir {}: stop it first, or use another --run-dir",
        paths.run_dir.display()
    ))
}

fn write_pid(file: &mut File) -> std::io::Result<()> {
    file.set_len(0)?;
    file.write_all(format!("{}\n", std::process::id()).as_bytes())?;
    file.flush()
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}
