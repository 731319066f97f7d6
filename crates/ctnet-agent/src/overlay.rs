//! The overlay role (`--etcd URL --advertise-addr IP`): this host joins every overlay
//! network etcd defines, with a block it leases, and keeps the other hosts' entries
//! (route, neighbour, FDB) and the firewall's VXLAN sources to what etcd says.
//!
//! Three threads, each with plain blocking calls (ctnet-etcd is synchronous):
//!
//! ```text
//!   keep-alive ── every TTL/3: lease keep-alive ──► lease lost: Event::LeaseLost
//!   watch ─────── watch /ctnet/overlay/ from the last sync's revision
//!                 ──► any event: Event::Changed; error or compaction: Event::Resync
//!   sync ──────── on an event, or every second: read definitions and leases, claim or
//!                 renew this host's blocks (compare-and-swap), join, program peers
//! ```
//!
//! Failure behaviour: while etcd is unreachable nothing in the kernel changes (the data
//! path keeps working as it was); syncs fail and are retried. A re-read is diffed
//! against what is programmed, never flushed. A lease that expired (etcd lost us for
//! longer than the TTL) is replaced by a new one and this host's blocks are written
//! again with it, the same blocks.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

use ctnet_engine::cluster::{self, Cluster};
use ctnet_engine::model::overlay::{pick_block, vtep_mac, BlockLease, OverlayDef, Peer};
use ctnet_engine::model::{Family, NetworkName, Subnet};
use ctnet_engine::ops::overlay::{OverlayJoin, Underlay};
use ctnet_engine::{Engine, Paths};
use ctnet_etcd::{Endpoints, WatchEvent};
use ipnet::Ipv4Net;

use crate::status::Errors;

/// What starts the overlay role.
#[derive(Debug, Clone)]
pub struct Config {
    /// The etcd endpoints.
    pub endpoints: Endpoints,
    /// This host's underlay address.
    pub advertise: Ipv4Addr,
    /// The TTL of this host's lease, in seconds.
    pub ttl: i64,
    /// This host's name, for people.
    pub host: String,
}

/// How long one etcd request may take in the agent.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the sync runs without an event (container counts, repair).
const TICK: Duration = Duration::from_secs(1);

enum Event {
    Changed,
    Resync,
    LeaseLost,
}

/// Checks the configuration (the address is this host's, etcd answers) and starts the
/// role's threads. Errors are for the user: the agent does not start.
pub fn start(paths: Paths, config: Config, errors: Errors) -> Result<(), String> {
    let underlay = Engine::open(paths.clone())
        .and_then(|mut engine| engine.underlay(config.advertise))
        .map_err(|e| format!("--advertise-addr: {e}"))?;
    let cluster = Cluster::new(config.endpoints.clone(), REQUEST_TIMEOUT);
    cluster.check().map_err(|e| format!("--etcd: {e}"))?;
    let (tx, rx) = channel();
    let revision = Arc::new(AtomicI64::new(0));
    let lease = Arc::new(AtomicI64::new(0));
    spawn_watch(config.endpoints.clone(), revision.clone(), tx.clone());
    spawn_keep_alive(config.endpoints.clone(), config.ttl, lease.clone(), tx);
    std::thread::Builder::new()
        .name("overlay".into())
        .spawn(move || {
            // The engine is the thread's own (it is not Send), as the firewall watch's.
            let engine = match Engine::open(paths) {
                Ok(engine) => engine,
                Err(e) => {
                    errors.record(format!("overlay: cannot open the store: {e}"));
                    return;
                }
            };
            let mut role = Role {
                engine,
                cluster,
                config,
                underlay,
                lease,
                revision,
                errors,
                published: BTreeMap::new(),
            };
            role.run(rx)
        })
        .map_err(|e| format!("cannot start the overlay thread: {e}"))?;
    Ok(())
}

struct Role {
    engine: Engine,
    cluster: Cluster,
    config: Config,
    underlay: Underlay,
    /// This agent's lease (0: none yet, or lost).
    lease: Arc<AtomicI64>,
    /// The revision the last sync read at; the watch starts after it.
    revision: Arc<AtomicI64>,
    errors: Errors,
    /// What this host last wrote for each of its blocks: key, value, mod revision.
    published: BTreeMap<String, (BlockLease, i64)>,
}

impl Role {
    fn run(&mut self, events: Receiver<Event>) {
        let mut last_error = String::new();
        loop {
            match self.sync() {
                Ok(()) => last_error.clear(),
                Err(e) => {
                    // Said once per distinct failure, not every second.
                    if e != last_error {
                        eprintln!("ctnet-agent: overlay: {e}");
                        self.errors.record(format!("overlay: {e}"));
                        last_error = e;
                    }
                }
            }
            match events.recv_timeout(TICK) {
                Ok(Event::LeaseLost) => {
                    self.lease.store(0, Ordering::SeqCst);
                    self.published.clear();
                }
                Ok(Event::Changed | Event::Resync) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            // A burst of events is one sync.
            while events.try_recv().is_ok() {}
        }
    }

    /// One pass: read etcd, make sure this host holds a block of every overlay, join
    /// them, program the peers, and leave overlays that are gone.
    fn sync(&mut self) -> Result<(), String> {
        let (defs, rev) = self.cluster.definitions().map_err(|e| e.to_string())?;
        let lease = self.ensure_lease()?;
        for def in &defs {
            if let Err(e) = self.sync_overlay(def, lease) {
                self.errors
                    .record(format!("overlay {}: {e}", def.name.as_str()));
                eprintln!("ctnet-agent: overlay {}: {e}", def.name.as_str());
            }
        }
        self.leave_removed(&defs);
        self.revision.store(rev, Ordering::SeqCst);
        Ok(())
    }

    fn ensure_lease(&mut self) -> Result<i64, String> {
        let id = self.lease.load(Ordering::SeqCst);
        if id != 0 {
            return Ok(id);
        }
        let granted = self
            .cluster
            .client()
            .grant(self.config.ttl)
            .map_err(|e| format!("etcd lease: {e}"))?;
        self.lease.store(granted.id, Ordering::SeqCst);
        self.published.clear();
        Ok(granted.id)
    }

    fn sync_overlay(&mut self, def: &OverlayDef, lease: i64) -> Result<(), String> {
        let block = self.claim_block(def, lease)?;
        let join = OverlayJoin {
            def: def.clone(),
            block,
            underlay: self.underlay.clone(),
        };
        self.engine.join_overlay(&join).map_err(|e| e.to_string())?;
        self.publish_count(def, block, lease)?;
        let (leases, _) = self.cluster.leases().map_err(|e| e.to_string())?;
        let peers: Vec<Peer> = leases
            .iter()
            .filter(|e| e.network() == Some(def.name.as_str()))
            .filter(|e| e.lease.underlay != self.config.advertise)
            .filter_map(|e| Peer::from_lease(&e.lease))
            .collect();
        let changes = self
            .engine
            .set_overlay_peers(&def.name, &peers)
            .map_err(|e| e.to_string())?;
        for p in &changes.add {
            eprintln!(
                "ctnet-agent: overlay {}: peer {} ({}) block {} programmed",
                def.name.as_str(),
                p.host,
                p.underlay,
                p.block
            );
        }
        for p in &changes.remove {
            eprintln!(
                "ctnet-agent: overlay {}: peer {} ({}) block {} removed",
                def.name.as_str(),
                p.host,
                p.underlay,
                p.block
            );
        }
        Ok(())
    }

    /// This host's block of an overlay: the one its lease holds, else the one its store
    /// records (kept across restarts), else the first free one, each taken with a
    /// compare-and-swap so no two hosts hold one block.
    fn claim_block(&mut self, def: &OverlayDef, lease: i64) -> Result<Ipv4Net, String> {
        for _ in 0..8 {
            let (leases, _) = self.cluster.leases().map_err(|e| e.to_string())?;
            let of_def: Vec<_> = leases
                .iter()
                .filter(|e| e.network() == Some(def.name.as_str()))
                .collect();
            if let Some(own) = of_def
                .iter()
                .find(|e| e.lease.underlay == self.config.advertise)
            {
                if own.lease_id == lease {
                    let entry = (own.lease.clone(), own.mod_revision);
                    self.published.insert(own.key.clone(), entry);
                    return Ok(own.lease.block);
                }
                // Ours, from a lease that is gone (an agent restart): take it over.
                let value = serde_json::to_vec(&own.lease).expect("a lease serializes");
                if self
                    .cluster
                    .client()
                    .replace(&own.key, &value, own.mod_revision, Some(lease))
                    .map_err(|e| e.to_string())?
                {
                    return Ok(own.lease.block);
                }
                continue;
            }
            let taken: Vec<(Ipv4Net, Ipv4Addr)> = of_def
                .iter()
                .map(|e| (e.lease.block, e.lease.underlay))
                .collect();
            let held = self.held_block(&def.name);
            let block = pick_block(def, &taken, self.config.advertise, held).ok_or_else(|| {
                format!(
                    "subnet {} has no free /{} block for this host: every block is leased",
                    def.subnet, def.host_prefix
                )
            })?;
            let mine = BlockLease {
                block,
                underlay: self.config.advertise,
                vtep_mac: vtep_mac(def.vni, self.config.advertise).to_string(),
                host: self.config.host.clone(),
                containers: self.count(&def.name),
            };
            let key = cluster::block_key(&def.name, block);
            let value = serde_json::to_vec(&mine).expect("a lease serializes");
            if self
                .cluster
                .client()
                .create(&key, &value, Some(lease))
                .map_err(|e| e.to_string())?
            {
                eprintln!(
                    "ctnet-agent: overlay {}: leased block {block}",
                    def.name.as_str()
                );
                return Ok(block);
            }
            // Another host took it between our read and our write: read again.
        }
        Err("could not lease a block: other hosts kept taking them".into())
    }

    /// The block this host's store records for an overlay (its network's subnet).
    fn held_block(&mut self, name: &NetworkName) -> Option<Ipv4Net> {
        let net = self.engine.find_network(name).ok()??;
        match net.subnet(Family::V4)?.subnet {
            Subnet::V4(block) => Some(block),
            Subnet::V6(_) => None,
        }
    }

    fn count(&mut self, name: &NetworkName) -> u32 {
        self.engine.container_count(name).unwrap_or(0) as u32
    }

    /// Writes this host's container count into its lease when it changed (`network rm`
    /// refuses while any host has containers).
    fn publish_count(
        &mut self,
        def: &OverlayDef,
        block: Ipv4Net,
        lease: i64,
    ) -> Result<(), String> {
        let key = cluster::block_key(&def.name, block);
        let count = self.count(&def.name);
        let current = match self.published.get(&key) {
            Some((l, rev)) => (l.clone(), *rev),
            None => {
                let (kv, _) = self
                    .cluster
                    .client()
                    .range(&key)
                    .map_err(|e| e.to_string())?;
                let Some(kv) = kv else { return Ok(()) };
                let l: BlockLease = serde_json::from_slice(&kv.value).map_err(|e| e.to_string())?;
                (l, kv.mod_revision)
            }
        };
        if current.0.containers == count {
            self.published.insert(key, current);
            return Ok(());
        }
        let updated = BlockLease {
            containers: count,
            ..current.0
        };
        let value = serde_json::to_vec(&updated).expect("a lease serializes");
        let client = self.cluster.client();
        if client
            .replace(&key, &value, current.1, Some(lease))
            .map_err(|e| e.to_string())?
        {
            let (kv, _) = client.range(&key).map_err(|e| e.to_string())?;
            if let Some(kv) = kv {
                self.published.insert(key, (updated, kv.mod_revision));
            }
        } else {
            self.published.remove(&key);
        }
        Ok(())
    }

    /// Removes this host's part of overlays etcd no longer has (never while containers
    /// are attached: those stay, and the error says so).
    fn leave_removed(&mut self, defs: &[OverlayDef]) {
        let Ok(local) = self.engine.overlay_networks() else {
            return;
        };
        for net in local {
            if defs.iter().any(|d| d.name == net.name) {
                continue;
            }
            if self.count(&net.name) > 0 {
                self.errors.record(format!(
                    "overlay {} was removed from etcd but has containers here; detach them",
                    net.name.as_str()
                ));
                continue;
            }
            match self.engine.remove_network(&net.name) {
                Ok(()) => eprintln!(
                    "ctnet-agent: overlay {}: removed from etcd, left",
                    net.name.as_str()
                ),
                Err(e) => self
                    .errors
                    .record(format!("overlay {}: leaving: {e}", net.name.as_str())),
            }
        }
        let _ = self.engine.sync_vxlan_sources();
    }
}

/// Watches everything under the prefix from after the last sync's revision; each event
/// (or a broken watch) wakes the sync.
fn spawn_watch(endpoints: Endpoints, revision: Arc<AtomicI64>, events: Sender<Event>) {
    let _ = std::thread::Builder::new()
        .name("overlay-watch".into())
        .spawn(move || {
            let client = ctnet_etcd::Client::new(endpoints, REQUEST_TIMEOUT);
            loop {
                let from = revision.load(Ordering::SeqCst);
                if from == 0 {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                match client.watch_prefix(cluster::PREFIX, from + 1) {
                    Ok(watch) => {
                        for event in watch {
                            let sent = match event {
                                Ok(WatchEvent::Put(_) | WatchEvent::Delete { .. }) => {
                                    events.send(Event::Changed)
                                }
                                Err(_) => {
                                    let _ = events.send(Event::Resync);
                                    break;
                                }
                            };
                            if sent.is_err() {
                                return;
                            }
                        }
                    }
                    Err(_) => {
                        if events.send(Event::Resync).is_err() {
                            return;
                        }
                        // etcd unreachable: the sync's own tick retries meanwhile.
                        std::thread::sleep(TICK);
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
}

/// Keeps this agent's lease alive, TTL/3 apart; a lease etcd no longer has is reported
/// so the sync takes a new one and writes this host's blocks again.
fn spawn_keep_alive(endpoints: Endpoints, ttl: i64, lease: Arc<AtomicI64>, events: Sender<Event>) {
    let every = Duration::from_millis((ttl.max(3) as u64 * 1000) / 3);
    let _ = std::thread::Builder::new()
        .name("overlay-lease".into())
        .spawn(move || {
            let client = ctnet_etcd::Client::new(endpoints, REQUEST_TIMEOUT);
            loop {
                std::thread::sleep(every);
                let id = lease.load(Ordering::SeqCst);
                if id == 0 {
                    continue;
                }
                match client.keep_alive(id) {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        if events.send(Event::LeaseLost).is_err() {
                            return;
                        }
                    }
                    // Unreachable: keep trying; etcd extends leases when it comes back.
                    Err(_) => {}
                }
            }
        });
}
