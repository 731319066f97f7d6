//! The agent's control loop. The datagrams on `agent.sock` say what changed: "endpoint
//! ID" (an attach or a detach) is noted, and within [`fresh::APPLY_WITHIN`] (or before
//! the next query: dns/fresh.rs) the rows of all endpoints noted are read and the table
//! updated in place, once; "changed" (a network made or removed, anything else) makes it read the
//! whole store at once, as it also does every [`RELOAD_EVERY`] (so a lost datagram heals),
//! on SIGHUP, and when a burst filled the socket's queue (a datagram may have been
//! dropped). A "hello" (an attach asking whether an agent listens, before it changed
//! anything) only says the agent is needed. Each change reconciles the DNS listeners and
//! rewrites `agent.json`. SIGTERM and SIGINT stop it; an agent started on demand also
//! stops after [`IDLE_EXIT`] without a ready endpoint on any DNS network.
//!
//! ```text
//!   ctnet attach ──"hello"────────▶ agent.sock ──▶ idle clock reset
//!   ctnet attach ──"endpoint 42"──▶ agent.sock ──▶ noted ─┐ 100 ms later, or a query
//!   ctnet detach ──"endpoint 43"──▶ agent.sock ──▶ noted ─┴▶ rows 42, 43 ─▶ table, agent.json
//!   ctnet network ──"changed"─────▶ agent.sock ─┐
//!   every 2 s ──────────────────────────────────┼─▶ whole read ─▶ table, listeners, agent.json
//!   SIGHUP, a full queue ───────────────────────┘   (the store is skipped when no other
//!                                                    process committed since the last read)
//! ```
//!
//! So what an attach costs the agent does not grow with the number of containers, and a
//! burst of attaches costs it one table swap: on a small host the agent runs beside the
//! next one-shot, which would feel it.

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::os::unix::net::UnixDatagram as StdDatagram;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ctnet_engine::{Engine, Paths};
use tokio::net::UnixDatagram;
use tokio::signal::unix::{signal, SignalKind};
use tokio::time::Instant;

use crate::dns::fresh;
use crate::dns::server::{Servers, Shared};
use crate::dns::{self, forward, Applied, Loaded};
use crate::status::{self, Errors};
use ctnet_engine::agent::{self, DnsServing, FirewallStatus, Message, Status};

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
    /// The store's version when it was last read whole (None: read it next time).
    read_version: Option<i64>,
    /// How many datagrams the socket queues before a sender's is dropped.
    queue_limit: usize,
    /// Endpoints attached or detached, noted and not yet read.
    noted: BTreeSet<i64>,
    /// When the noted endpoints are read at the latest.
    apply_by: Option<Instant>,
    /// How long after it is noted an endpoint is read ([`fresh::APPLY_WITHIN`]).
    apply_within: Duration,
}

/// The datagrams read in one go.
#[derive(Debug, Default)]
struct Burst {
    count: usize,
    changed: bool,
    endpoints: BTreeSet<i64>,
}

/// What a burst asks for.
#[derive(Debug, PartialEq, Eq)]
enum Action {
    /// Read the whole store.
    WholeRead,
    /// Read these endpoints' rows.
    Endpoints(BTreeSet<i64>),
    /// Nothing changed; the agent is needed.
    Needed,
}

impl Burst {
    /// A "changed" asks for a whole read, and so does a burst as long as the socket's
    /// queue: the queue was full, so a one-shot's datagram may have been dropped and
    /// what it said is unknown.
    fn action(self, queue_limit: usize) -> Action {
        if self.changed || self.count >= queue_limit {
            Action::WholeRead
        } else if !self.endpoints.is_empty() {
            Action::Endpoints(self.endpoints)
        } else {
            Action::Needed
        }
    }

    fn add(&mut self, datagram: &[u8]) {
        self.count += 1;
        match Message::parse(datagram) {
            Message::Hello => {}
            Message::Endpoint(id) => {
                self.endpoints.insert(id);
            }
            Message::Changed => self.changed = true,
        }
    }
}

/// The kernel's limit on a unix datagram socket's queue (`net.unix.max_dgram_qlen`, per
/// network namespace; 10 unless raised).
fn datagram_queue_limit() -> usize {
    std::fs::read_to_string("/proc/sys/net/unix/max_dgram_qlen")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(10)
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
            read_version: None,
            queue_limit: datagram_queue_limit().max(1),
            noted: BTreeSet::new(),
            apply_by: None,
            apply_within: fresh::apply_within(
                std::env::var(fresh::ENV_APPLY_WITHIN).ok().as_deref(),
            ),
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
        self.read_store();
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

    /// Reads the networks and endpoints into the DNS table and the listeners, unless no
    /// other process committed since the last read (SQLite's data version): with a
    /// thousand containers a re-read costs milliseconds, which a 2-core host's next
    /// attach would feel.
    fn read_store(&mut self) {
        self.forget_noted();
        let version = self.engine.store_version().ok();
        if version.is_some() && version == self.read_version {
            // Only a listener that failed to start is tried again.
            self.servers.reconcile(&self.loaded.listeners, &self.shared);
            return;
        }
        match dns::load(&mut self.engine) {
            Ok(loaded) => {
                self.servers.reconcile(&loaded.listeners, &self.shared);
                self.shared.set_table(loaded.table.clone());
                self.loaded = loaded;
                self.read_version = version;
            }
            // The old table stays: a store busy or briefly unreadable must not blank DNS.
            Err(e) => self
                .shared
                .errors
                .record(format!("cannot read the store: {e}")),
        }
    }

    /// Re-reads everything, whether or not the store changed (SIGHUP).
    fn reload_all(&mut self) {
        self.read_version = None;
        self.reload(true);
    }

    /// A one-shot is about to need the agent: the idle clock starts again.
    fn needed(&mut self) {
        if !self.loaded.busy() {
            self.idle_since = Some(Instant::now());
        }
    }

    /// Endpoints `ids` were attached or detached: their rows are read one by one and the
    /// table updated in place; a row on a network the table does not know, or a failed
    /// read, makes it a whole read.
    fn endpoints_changed(&mut self, ids: &BTreeSet<i64>) {
        for &id in ids {
            let applied = match self.engine.named_endpoint(id) {
                Ok(row) => self.loaded.apply(id, row.as_ref()),
                Err(e) => {
                    self.shared
                        .errors
                        .record(format!("cannot read endpoint {id} from the store: {e}"));
                    Applied::NeedsWholeRead
                }
            };
            if applied == Applied::NeedsWholeRead {
                self.read_version = None;
                return self.reload(true);
            }
        }
        self.shared.set_table(self.loaded.table.clone());
        self.idle_since = (!self.loaded.busy()).then(Instant::now);
        self.write_status();
    }

    /// Acts on one burst of datagrams (all that were waiting).
    fn on_burst(&mut self, burst: Burst) {
        match burst.action(self.queue_limit) {
            Action::WholeRead => {
                self.read_version = None;
                self.reload(true);
            }
            Action::Endpoints(ids) => self.note(ids),
            Action::Needed => self.needed(),
        }
    }

    /// Endpoints `ids` changed: read within [`fresh::APPLY_WITHIN`], or before the next
    /// query.
    fn note(&mut self, ids: BTreeSet<i64>) {
        self.noted.extend(ids);
        let within = self.apply_within;
        self.apply_by.get_or_insert_with(|| Instant::now() + within);
        self.shared.fresh.set_pending(true);
        self.needed();
    }

    /// The noted endpoints' rows are read now and the table updated.
    fn apply_noted(&mut self) {
        let ids = std::mem::take(&mut self.noted);
        self.forget_noted();
        if !ids.is_empty() {
            self.endpoints_changed(&ids);
        }
    }

    /// Nothing is noted any more (applied, or a whole read covers it).
    fn forget_noted(&mut self) {
        self.noted.clear();
        self.apply_by = None;
        self.shared.fresh.set_pending(false);
    }

    /// A query asked: whatever waits on the socket is taken, and everything noted
    /// applied, before the query is answered.
    fn catch_up(&mut self, socket: &StdDatagram) {
        let mut burst = Burst::default();
        let mut buf = [0u8; 64];
        while let Ok(n) = socket.recv(&mut buf) {
            burst.add(&buf[..n]);
        }
        if burst.count > 0 {
            self.on_burst(burst);
        }
        self.apply_noted();
        self.shared.fresh.caught_up();
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
        self.mode == Mode::OnDemand
            && self.noted.is_empty()
            && self.idle_since.is_some_and(|t| t.elapsed() >= IDLE_EXIT)
    }

    /// Serves until a signal stops it (or, on demand, until idle).
    pub async fn run(mut self, control: StdDatagram) -> std::io::Result<()> {
        let path = agent::socket_path(&self.paths);
        // Read directly when a query asks (the runtime's readiness may not have seen a
        // datagram that is already there).
        let mut direct = control.try_clone()?;
        let mut control = UnixDatagram::from_std(control)?;
        let shared = self.shared.clone();
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
            let apply_by = self
                .apply_by
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                got = control.recv(&mut buf) => {
                    if let Ok(n) = got {
                        let mut burst = Burst::default();
                        burst.add(&buf[..n]);
                        while let Ok(n) = control.try_recv(&mut buf) {
                            burst.add(&buf[..n]);
                        }
                        self.on_burst(burst);
                    }
                }
                _ = shared.fresh.asked() => self.catch_up(&direct),
                _ = tokio::time::sleep_until(apply_by) => self.apply_noted(),
                _ = tick.tick() => self.reload(false),
                _ = hup.recv() => self.reload_all(),
                _ = tokio::time::sleep_until(idle_end) => {}
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
            if self.idle_over() {
                match stop_listening(&path, control)? {
                    None => return Ok(()),
                    Some(again) => {
                        direct = again.try_clone()?;
                        control = UnixDatagram::from_std(again)?;
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
fn stop_listening(path: &PathBuf, control: UnixDatagram) -> std::io::Result<Option<StdDatagram>> {
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
    let again = StdDatagram::bind(path)?;
    again.set_nonblocking(true)?;
    Ok(Some(again))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn burst(datagrams: &[&[u8]]) -> Burst {
        let mut burst = Burst::default();
        for d in datagrams {
            burst.add(d);
        }
        burst
    }

    #[test]
    fn a_burst_reads_rows_and_only_a_change_or_a_full_queue_reads_everything() {
        assert_eq!(burst(&[agent::HELLO]).action(10), Action::Needed);
        assert_eq!(
            burst(&[agent::HELLO, b"endpoint 4", b"endpoint 2", b"endpoint 4"]).action(10),
            Action::Endpoints([2, 4].into())
        );
        assert_eq!(
            burst(&[b"endpoint 4", agent::CHANGED]).action(10),
            Action::WholeRead
        );
        assert_eq!(
            burst(&[b"endpoint 4", b"endpoint 5", agent::HELLO]).action(3),
            Action::WholeRead,
            "as many as the queue holds: one may have been dropped"
        );
        assert_eq!(burst(&[b"endpoint x"]).action(10), Action::WholeRead);
    }
}
