//! The agent's control loop: the store is re-read on every datagram on `agent.sock` (one-
//! shots send one after each change), every [`RELOAD_EVERY`] (so a lost datagram heals) and
//! on SIGHUP; each read reconciles the DNS listeners and rewrites `agent.json`. SIGTERM and
//! SIGINT stop it; an agent started on demand also stops after [`IDLE_EXIT`] without a
//! ready endpoint on any DNS network.
//!
//! ```text
//!   ctnet attach ──"changed"──▶ agent.sock ─┐
//!   every 2 s ──────────────────────────────┼─▶ reload: store ─▶ table, listeners, agent.json
//!   SIGHUP ─────────────────────────────────┘
//! ```

use std::io::ErrorKind;
use std::os::unix::net::UnixDatagram as StdDatagram;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ctnet_engine::{Engine, Paths};
use tokio::net::UnixDatagram;
use tokio::signal::unix::{signal, SignalKind};
use tokio::time::Instant;

use crate::dns::server::{Servers, Shared};
use crate::dns::{self, forward, Loaded};
use crate::status::{self, Errors};
use ctnet_engine::agent::{self, DnsServing, FirewallStatus, Status};

/// How often the store is re-read without being told.
pub const RELOAD_EVERY: Duration = Duration::from_secs(2);
/// How long an agent started on demand stays up with nothing to serve.
pub const IDLE_EXIT: Duration = Duration::from_secs(5);

/// How the agent was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A service (systemd): never exits on idle.
    Service,
    /// Spawned by a one-shot: exits when nothing needs it.
    OnDemand,
}

impl Mode {
    /// The word in the status file.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Service => "service",
            Mode::OnDemand => "on-demand",
        }
    }
}

/// The running agent.
pub struct Agent {
    paths: Paths,
    mode: Mode,
    engine: Engine,
    shared: Arc<Shared>,
    servers: Servers,
    loaded: Loaded,
    started: i64,
    /// Filled by the firewall watch's callback.
    pub firewall: Arc<Mutex<FirewallStatus>>,
    idle_since: Option<Instant>,
}

impl Agent {
    /// An agent over `engine`, serving nothing yet.
    pub fn new(paths: Paths, mode: Mode, engine: Engine, errors: Errors) -> Agent {
        Agent {
            paths,
            mode,
            engine,
            shared: Shared::new(errors),
            servers: Servers::default(),
            loaded: Loaded::default(),
            started: status::now(),
            firewall: Arc::new(Mutex::new(FirewallStatus::default())),
            idle_since: None,
        }
    }

    /// The errors every part records into.
    pub fn errors(&self) -> Errors {
        self.shared.errors.clone()
    }

    /// Re-reads the store and the upstreams, reconciles the listeners, rewrites the
    /// status. `poked`: a datagram came (someone is about to need us: the idle clock
    /// starts again).
    pub fn reload(&mut self, poked: bool) {
        match dns::load(&mut self.engine) {
            Ok(mut loaded) => {
                self.servers.reconcile(&loaded.listeners, &self.shared);
                self.shared.set_table(std::mem::take(&mut loaded.table));
                self.loaded = loaded;
            }
            // The old table stays: a store busy or briefly unreadable must not blank DNS.
            Err(e) => self
                .shared
                .errors
                .record(format!("cannot read the store: {e}")),
        }
        let upstreams = forward::read_upstreams();
        if self.shared.set_upstreams(upstreams.clone()) && upstreams.is_empty() {
            self.shared.errors.record(format!(
                "{} names no nameserver: names that are not containers' get SERVFAIL",
                forward::RESOLV_CONF
            ));
        }
        if self.loaded.busy() {
            self.idle_since = None;
        } else if poked || self.idle_since.is_none() {
            self.idle_since = Some(Instant::now());
        }
        self.write_status();
    }

    /// Writes agent.json; a failure is recorded (and retried on the next reload).
    pub fn write_status(&self) {
        let dns = self
            .servers
            .serving()
            .into_iter()
            .map(|s| DnsServing {
                names: self.loaded.names.get(&s.network).copied().unwrap_or(0),
                network: s.network,
                listen: s.listen,
                queries: s.queries,
            })
            .collect();
        let status = Status {
            pid: std::process::id(),
            started: self.started,
            updated: status::now(),
            mode: self.mode.as_str().to_string(),
            dns,
            upstreams: self
                .shared
                .upstreams()
                .iter()
                .map(|u| u.to_string())
                .collect(),
            firewall: self.firewall.lock().expect("firewall status lock").clone(),
            last_errors: self.shared.errors.list(),
        };
        let path = agent::status_path(&self.paths);
        if let Err(e) = status::write(&path, &status) {
            self.shared
                .errors
                .record(format!("cannot write {}: {e}", path.display()));
        }
    }

    fn idle_over(&self) -> bool {
        self.mode == Mode::OnDemand && self.idle_since.is_some_and(|t| t.elapsed() >= IDLE_EXIT)
    }

    /// Serves until a signal stops it (or, on demand, until idle).
    pub async fn run(mut self, control: StdDatagram) -> std::io::Result<()> {
        let path = agent::socket_path(&self.paths);
        let mut control = UnixDatagram::from_std(control)?;
        let mut tick = tokio::time::interval(RELOAD_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        let mut buf = [0u8; 64];
        loop {
            // Far in the future when busy (or a service): the branch then never fires.
            let idle_end = match (self.mode, self.idle_since) {
                (Mode::OnDemand, Some(since)) => since + IDLE_EXIT,
                _ => Instant::now() + Duration::from_secs(3600),
            };
            tokio::select! {
                got = control.recv(&mut buf) => {
                    if got.is_ok() {
                        // A burst of changes is one re-read.
                        while control.try_recv(&mut buf).is_ok() {}
                        self.reload(true);
                    }
                }
                _ = tick.tick() => self.reload(false),
                _ = hup.recv() => self.reload(true),
                _ = tokio::time::sleep_until(idle_end) => {}
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
            if self.idle_over() {
                match stop_listening(&path, control)? {
                    None => return Ok(()),
                    Some(again) => {
                        control = again;
                        self.reload(true);
                    }
                }
            }
        }
        let _ = std::fs::remove_file(&path);
        Ok(())
    }
}

/// Stops taking datagrams before an idle exit. The socket's name goes first, so a one-
/// shot from now on finds nobody and starts a new agent (which waits for our lock); then
/// whatever was sent before that is read: a datagram there means a one-shot counted on
/// us a moment ago, and we bind again and stay (Some).
fn stop_listening(path: &PathBuf, control: UnixDatagram) -> std::io::Result<Option<UnixDatagram>> {
    let _ = std::fs::remove_file(path);
    let mut buf = [0u8; 64];
    let mut pending = false;
    loop {
        match control.try_recv(&mut buf) {
            Ok(_) => pending = true,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(_) => break,
        }
    }
    drop(control);
    if !pending {
        return Ok(None);
    }
    Ok(Some(UnixDatagram::bind(path)?))
}
