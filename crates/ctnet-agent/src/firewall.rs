//! The firewall watch: puts ctnet's table back when someone else deletes or edits it.
//!
//! ```text
//!  thread "ctnet-firewall" (its own Engine, no async)
//!    Monitor::open()                 ─ subscribe first, so nothing after the audit is missed
//!    repair_firewall()               ─ at start: after a reboot or a flush while no agent ran
//!    loop: receive notifications
//!      table/chain/rule/set/elements of inet ctnet  ─▶ remember: this batch touched it
//!        or of bridge ctnet (anti-spoofing)
//!      NEWGEN (pid, comm)                           ─▶ end of the batch:
//!           touched and not ctnet's own             ─▶ repair_firewall() at once
//!      ENOBUFS (notifications lost)                 ─▶ repair_firewall()
//!      nothing for PERIODIC                         ─▶ repair_firewall() (belt and braces)
//!    every repair that changed something, or failed ─▶ on_repair(Repair)
//! ```
//!
//! ctnet's own commits never trigger a repair, so the agent does not fight itself: a
//! batch is ctnet's when its NEWGEN names this thread or this process (the kernel gives
//! the committing *thread's* id) or a task whose name starts with `ctnet` (the one-shot
//! `ctnet` binary, `ctnet-agent`, and this thread, named `ctnet-firewall`) or `netavark`
//! (ctnet as Podman's backend: the real netavark never touches ctnet's table), so a
//! Podman host's every container start does not cost the agent an audit.
//! Other tables are never looked at, let alone touched.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ctnet_engine::{Engine, Paths};
use ctnet_nft::monitor::{Change, Event, Generation, Monitor, ObjectKind, Received};
use ctnet_nft::Family;

/// ctnet's table, as notifications name it.
const TABLE_FAMILY: Family = Family::Inet;
const TABLE_NAME: &str = "ctnet";
/// The anti-spoofing table's family (`bridge ctnet`, see ctnet-engine's
/// datapath/nft/antispoof.rs), watched and repaired like the inet one.
const GUARD_FAMILY: Family = Family::Bridge;
/// The watch thread's name, which is also its `comm` in NEWGEN: it starts with `ctnet`.
const THREAD_NAME: &str = "ctnet-firewall";
/// With no notification for this long, the table is audited anyway: a repair this watch
/// missed for any reason heals within it. An audit of a clean table costs a few
/// milliseconds and changes nothing.
const PERIODIC: Duration = Duration::from_secs(30);
/// After the notification socket failed, wait this long before opening another.
const RETRY: Duration = Duration::from_secs(1);

/// One repair: when, why, and what it changed (or why it failed).
#[derive(Debug, Clone)]
pub struct Repair {
    /// Seconds since the epoch.
    pub time: i64,
    /// What triggered it, e.g. `table inet ctnet deleted by nft (pid 123)`, with how
    /// long after the notification the table was back.
    pub cause: String,
    /// What differed (now rewritten), or the error.
    pub outcome: Result<Vec<String>, String>,
}

/// Starts the watch on its own thread, in the calling thread's network namespace.
/// Returns once it is subscribed and the first repair ran (so a caller that reports
/// "watching" is right), or with the error that kept it from starting.
pub fn watch(
    paths: Paths,
    on_repair: Box<dyn Fn(Repair) + Send>,
) -> std::io::Result<JoinHandle<()>> {
    let (started, ready) = mpsc::sync_channel::<Result<(), String>>(1);
    let handle = std::thread::Builder::new()
        .name(THREAD_NAME.into())
        .spawn(move || {
            let opened = Monitor::open()
                .map_err(|e| e.to_string())
                .and_then(|m| Ok((m, Engine::open(paths).map_err(|e| e.to_string())?)));
            let (monitor, engine) = match opened {
                Ok(pair) => pair,
                Err(e) => {
                    let _ = started.send(Err(e));
                    return;
                }
            };
            let mut watcher = Watcher {
                monitor,
                engine,
                on_repair,
                own: Own::this_thread(),
                batch: BatchSeen::default(),
            };
            watcher.repair("the agent started", Instant::now());
            let _ = started.send(Ok(()));
            watcher.run();
        })?;
    match ready.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(e)) => {
            let _ = handle.join();
            Err(std::io::Error::other(format!(
                "firewall watch: cannot start: {e}"
            )))
        }
        Err(_) => Err(std::io::Error::other(
            "firewall watch: its thread ended before it started",
        )),
    }
}

struct Watcher {
    monitor: Monitor,
    engine: Engine,
    on_repair: Box<dyn Fn(Repair) + Send>,
    own: Own,
    batch: BatchSeen,
}

impl Watcher {
    fn run(&mut self) -> ! {
        loop {
            match self.monitor.receive(Some(PERIODIC)) {
                Ok(Received::Events(events)) => {
                    for event in &events {
                        if let Some(cause) = self.batch.feed(event, &self.own) {
                            self.repair(&cause, Instant::now());
                        }
                    }
                }
                Ok(Received::Lost) => {
                    self.batch = BatchSeen::default();
                    self.repair(
                        "nf_tables notifications were lost (receive buffer overrun)",
                        Instant::now(),
                    );
                }
                Ok(Received::Timeout) => self.repair("periodic check", Instant::now()),
                Err(e) => self.reopen(e.to_string()),
            }
        }
    }

    /// Reports a broken socket, opens another, and audits: what happened in between
    /// was not seen.
    fn reopen(&mut self, error: String) {
        (self.on_repair)(Repair {
            time: now(),
            cause: "reading nf_tables notifications failed".into(),
            outcome: Err(error),
        });
        loop {
            std::thread::sleep(RETRY);
            match Monitor::open() {
                Ok(m) => {
                    self.monitor = m;
                    self.batch = BatchSeen::default();
                    self.repair("the notification socket was reopened", Instant::now());
                    return;
                }
                Err(e) => (self.on_repair)(Repair {
                    time: now(),
                    cause: "reopening the nf_tables notification socket failed".into(),
                    outcome: Err(e.to_string()),
                }),
            }
        }
    }

    /// Audits the table against the store and rewrites it when it differs; reports it
    /// when it changed something or failed.
    fn repair(&mut self, cause: &str, noticed: Instant) {
        let outcome = match self.engine.repair_firewall() {
            Ok(None) => return,
            Ok(Some(lines)) => Ok(lines),
            Err(e) => Err(e.to_string()),
        };
        let took = noticed.elapsed();
        let cause = match &outcome {
            Ok(_) => format!("{cause}; put back {:.1} ms after", millis(took)),
            Err(_) => cause.to_string(),
        };
        (self.on_repair)(Repair {
            time: now(),
            cause,
            outcome,
        });
    }
}

/// Who "ctnet itself" is in a NEWGEN.
#[derive(Debug, Clone, Copy)]
struct Own {
    pid: u32,
    tid: u32,
}

impl Own {
    fn this_thread() -> Own {
        Own {
            pid: std::process::id(),
            tid: nix::unistd::gettid().as_raw() as u32,
        }
    }

    fn made(&self, generation: &Generation) -> bool {
        generation.pid == self.pid
            || generation.pid == self.tid
            || generation.proc_name.starts_with("ctnet")
            // ctnet run by Podman as its network backend has netavark's name; netavark
            // itself never touches ctnet's table, so a batch on it under that name is ours.
            || generation.proc_name == "netavark"
    }
}

/// What the batch being received did to ctnet's table so far.
#[derive(Debug, Default)]
struct BatchSeen {
    /// Which of ctnet's tables the batch touched first (for the cause's wording).
    family: Option<Family>,
    table_deleted: bool,
    deleted: Vec<ObjectKind>,
    added: Vec<ObjectKind>,
}

impl BatchSeen {
    /// Takes one notification; at the end of a foreign batch that touched ctnet's table,
    /// returns the cause of the repair it calls for.
    fn feed(&mut self, event: &Event, own: &Own) -> Option<String> {
        if event.kind == ObjectKind::Gen {
            let seen = std::mem::take(self);
            let generation = event.generation.as_ref()?;
            if seen.is_empty() || own.made(generation) {
                return None;
            }
            return Some(seen.cause(generation));
        }
        // Both of ctnet's tables: the inet one and the anti-spoofing one.
        if !event.touches(TABLE_FAMILY, TABLE_NAME) && !event.touches(GUARD_FAMILY, TABLE_NAME) {
            return None;
        }
        if self.family.is_none() {
            self.family = Some(if event.touches(TABLE_FAMILY, TABLE_NAME) {
                TABLE_FAMILY
            } else {
                GUARD_FAMILY
            });
        }
        match (event.kind, event.change) {
            (ObjectKind::Table, Change::Delete) => self.table_deleted = true,
            (kind, Change::Delete) => self.deleted.push(kind),
            (kind, Change::New) => self.added.push(kind),
        }
        None
    }

    fn is_empty(&self) -> bool {
        !self.table_deleted && self.deleted.is_empty() && self.added.is_empty()
    }

    /// E.g. `table inet ctnet deleted by nft (pid 123)`, or `table inet ctnet changed by
    /// nft (pid 123): 9 rules deleted`.
    fn cause(&self, generation: &Generation) -> String {
        let by = format!("by {} (pid {})", generation.proc_name, generation.pid);
        let table = format!("table {} {TABLE_NAME}", self.family.unwrap_or(TABLE_FAMILY));
        if self.table_deleted {
            return format!("{table} deleted {by}");
        }
        let mut parts = Vec::new();
        for (kinds, verb) in [(&self.deleted, "deleted"), (&self.added, "added")] {
            for kind in [
                ObjectKind::Chain,
                ObjectKind::Rule,
                ObjectKind::Set,
                ObjectKind::SetElem,
                ObjectKind::Table,
            ] {
                let n = kinds.iter().filter(|k| **k == kind).count();
                if n > 0 {
                    parts.push(format!("{n} {} {verb}", noun(kind, n)));
                }
            }
            let others = kinds
                .iter()
                .filter(|k| matches!(k, ObjectKind::Other(_)))
                .count();
            if others > 0 {
                parts.push(format!("{others} other object(s) {verb}"));
            }
        }
        format!("{table} changed {by}: {}", parts.join(", "))
    }
}

fn noun(kind: ObjectKind, n: usize) -> &'static str {
    let one = n == 1;
    match kind {
        ObjectKind::Table => "table change",
        ObjectKind::Chain if one => "chain",
        ObjectKind::Chain => "chains",
        ObjectKind::Rule if one => "rule",
        ObjectKind::Rule => "rules",
        ObjectKind::Set if one => "set",
        ObjectKind::Set => "sets",
        ObjectKind::SetElem => "element batch(es)",
        ObjectKind::Gen | ObjectKind::Other(_) => "object(s)",
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: Own = Own { pid: 100, tid: 101 };

    fn object(kind: ObjectKind, change: Change, family: Family, table: &str) -> Event {
        Event {
            kind,
            change,
            family: Some(family),
            table: Some(table.into()),
            generation: None,
        }
    }

    fn ctnet(kind: ObjectKind, change: Change) -> Event {
        object(kind, change, Family::Inet, "ctnet")
    }

    fn gen(pid: u32, name: &str) -> Event {
        Event {
            kind: ObjectKind::Gen,
            change: Change::New,
            family: None,
            table: None,
            generation: Some(Generation {
                id: 7,
                pid,
                proc_name: name.into(),
            }),
        }
    }

    fn run(events: &[Event]) -> Vec<String> {
        let mut seen = BatchSeen::default();
        events.iter().filter_map(|e| seen.feed(e, &OWN)).collect()
    }

    #[test]
    fn a_flush_ruleset_by_nft_calls_for_a_repair_at_its_generation() {
        let causes = run(&[
            ctnet(ObjectKind::Rule, Change::Delete),
            ctnet(ObjectKind::Set, Change::Delete),
            ctnet(ObjectKind::Table, Change::Delete),
            object(ObjectKind::Table, Change::Delete, Family::Ip, "filter"),
            gen(4242, "nft"),
        ]);
        assert_eq!(causes, ["table inet ctnet deleted by nft (pid 4242)"]);
    }

    #[test]
    fn ctnets_own_batches_never_do() {
        let attach = [
            ctnet(ObjectKind::SetElem, Change::New),
            ctnet(ObjectKind::SetElem, Change::Delete),
        ];
        for who in [gen(100, "tokio-runtime-w"), gen(101, "x"), gen(5, "ctnet")] {
            assert!(run(&[attach[0].clone(), attach[1].clone(), who]).is_empty());
        }
        assert!(run(&[attach[0].clone(), gen(6, "ctnet-agent")]).is_empty());
        assert!(run(&[attach[0].clone(), gen(6, "ctnet-firewall")]).is_empty());
    }

    #[test]
    fn other_tables_and_empty_batches_are_none_of_its_business() {
        assert!(run(&[
            object(ObjectKind::Table, Change::Delete, Family::Inet, "filter"),
            object(ObjectKind::Rule, Change::New, Family::Ip, "ctnet"),
            gen(4242, "nft"),
            gen(4243, "firewalld"),
        ])
        .is_empty());
    }

    #[test]
    fn each_batch_is_judged_on_its_own() {
        let causes = run(&[
            ctnet(ObjectKind::Rule, Change::Delete),
            gen(5, "ctnet"),
            gen(4242, "nft"),
            ctnet(ObjectKind::Rule, Change::Delete),
            ctnet(ObjectKind::Rule, Change::Delete),
            ctnet(ObjectKind::SetElem, Change::Delete),
            ctnet(ObjectKind::Chain, Change::New),
            gen(4243, "iptables-nft"),
        ]);
        assert_eq!(
            causes,
            ["table inet ctnet changed by iptables-nft (pid 4243): 2 rules deleted, 1 element batch(es) deleted, 1 chain added"]
        );
    }

    #[test]
    fn a_generation_without_its_attributes_is_ignored() {
        let mut seen = BatchSeen::default();
        let mut bare = gen(1, "nft");
        bare.generation = None;
        seen.feed(&ctnet(ObjectKind::Rule, Change::Delete), &OWN);
        assert_eq!(seen.feed(&bare, &OWN), None);
        assert!(seen.is_empty());
    }
}
