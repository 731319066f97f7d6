//! The local state database: SQLite in WAL mode under the state dir.
//!
//! Many short-lived ctnet processes write at once; every decision that must be unique
//! (a subnet, an address, a device name) is read and recorded inside one `BEGIN
//! IMMEDIATE` transaction, which SQLite serialises across processes.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::path::Path;
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};

use crate::error::{Error, Result};
use crate::model::ports::{Holder, Protocol, PublishedPort};
use crate::model::{Endpoint, Network, NetworkName, RowState, Subnet};
use crate::owner::Owner;

const SCHEMA_VERSION: i64 = 5;

/// The schema. SQLite keeps each CREATE statement's text and parses it again in every
/// process that opens the database, so comments go outside the statements. A network's
/// `last_ip` is the address it handed out last (as a number): allocation resumes after it.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS networks (
    name        TEXT PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    driver      TEXT NOT NULL,
    subnet      TEXT NOT NULL UNIQUE,
    gateway     TEXT NOT NULL,
    bridge      TEXT NOT NULL UNIQUE,
    mtu         INTEGER,
    internal    INTEGER NOT NULL,
    state       TEXT NOT NULL,
    owner_pid   INTEGER,
    owner_start INTEGER,
    created     INTEGER NOT NULL,
    icc         INTEGER NOT NULL DEFAULT 1,
    last_ip     INTEGER
);
CREATE TABLE IF NOT EXISTS endpoints (
    id            INTEGER PRIMARY KEY,
    network       TEXT NOT NULL REFERENCES networks(name),
    container     TEXT NOT NULL,
    netns_path    TEXT NOT NULL,
    netns_inode   INTEGER NOT NULL,
    ifname        TEXT NOT NULL,
    host_ifname   TEXT NOT NULL UNIQUE,
    ip            TEXT NOT NULL,
    mac           TEXT NOT NULL,
    default_route INTEGER NOT NULL,
    netns_owned   INTEGER NOT NULL,
    state         TEXT NOT NULL,
    owner_pid     INTEGER,
    owner_start   INTEGER,
    created       INTEGER NOT NULL,
    UNIQUE (network, ip),
    UNIQUE (network, netns_inode)
);
CREATE INDEX IF NOT EXISTS endpoints_by_netns ON endpoints (netns_inode);
-- Version 4: no query looked endpoints up by state alone (the partial index below
-- serves the scan for unfinished rows), and every state change rewrote this index.
DROP INDEX IF EXISTS endpoints_by_state;
-- Every ctnet process looks for unfinished or process-owned rows as it opens the
-- database: this index holds only those, so the look costs nothing when there are none.
CREATE INDEX IF NOT EXISTS endpoints_unsettled ON endpoints (id)
    WHERE state != 'ready' OR owner_pid IS NOT NULL;
CREATE TABLE IF NOT EXISTS ports (
    endpoint_id    INTEGER NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    host_ip        TEXT NOT NULL,      -- '' for every local address
    host_port      INTEGER NOT NULL,
    container_port INTEGER NOT NULL,
    protocol       TEXT NOT NULL,
    UNIQUE (host_ip, host_port, protocol)
);
-- Clash checks look up one protocol's ports in a range, not every published port.
CREATE INDEX IF NOT EXISTS ports_by_port ON ports (protocol, host_port);
-- An endpoint's ports are read, and deleted with it (the foreign key's cascade), by
-- endpoint: without this index both read every published port.
CREATE INDEX IF NOT EXISTS ports_by_endpoint ON ports (endpoint_id);
CREATE TABLE IF NOT EXISTS namespaces (
    name        TEXT PRIMARY KEY,
    owner_pid   INTEGER NOT NULL,
    owner_start INTEGER NOT NULL
);
";

/// An open state database.
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (and on first use creates) the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::invalid(
                    format!("state dir {}", dir.display()),
                    format!("cannot be created: {e}"),
                    "point --state-dir or CTNET_STATE_DIR at a writable folder",
                )
            })?;
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(60))?;
        // WAL lets readers run beside the one writer; NORMAL sync is crash-safe in WAL mode
        // (a power cut may lose the last commits, never corrupt the file).
        use_wal(&conn)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Every ctnet process is short-lived: checkpointing the WAL as each one exits
        // would cost every command an fsync. SQLite's automatic checkpoint keeps the WAL
        // short instead, and it must be short: the first connection of each process
        // reads the whole WAL to rebuild its index (at the default 1,000 pages, that
        // read was the largest cost of an attach). 64 pages is about five attaches.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
        conn.pragma_update(None, "wal_autocheckpoint", 64)?;
        // Pages are read through a memory map instead of one pread each.
        conn.pragma_update(None, "mmap_size", 64 * 1024 * 1024)?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version != SCHEMA_VERSION {
            // IMMEDIATE: many first processes may race to create the schema. A deferred
            // transaction would read, then fail at once (no busy wait) when it tried to
            // write after another process had committed.
            let tx = Transaction::new_unchecked(&conn, TransactionBehavior::Immediate)?;
            let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
            if version == 1 {
                // Version 2 added per-network icc and the ports table; versions 3 and 4
                // only change indexes, which the schema below does.
                tx.execute_batch("ALTER TABLE networks ADD COLUMN icc INTEGER NOT NULL DEFAULT 1")?;
            }
            if (1..5).contains(&version) {
                // Version 5: each network's allocation cursor.
                tx.execute_batch("ALTER TABLE networks ADD COLUMN last_ip INTEGER")?;
            }
            tx.execute_batch(SCHEMA)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            tx.commit()?;
        }
        Ok(Store { conn })
    }

    /// Runs `f` inside a `BEGIN IMMEDIATE` transaction and commits when it returns Ok.
    pub fn write<T>(&mut self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// Read-only access outside a write transaction.
    pub fn read(&self) -> &Connection {
        &self.conn
    }
}

/// Puts the database in WAL mode (it stays so once set). Converting a new database
/// takes an exclusive lock that SQLite does not wait for, so when many first processes
/// race to create it, all but one are refused with "database is locked": they retry
/// until the winner has converted it.
fn use_wal(conn: &Connection) -> Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
        if mode.eq_ignore_ascii_case("wal") {
            return Ok(());
        }
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(1));
            }
            // A file system without shared memory keeps the rollback journal; that works.
            other => return Ok(other?),
        }
    }
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

// ---- networks ----

const NETWORK_COLUMNS: &str =
    "name, id, driver, subnet, gateway, bridge, mtu, internal, state, created, icc";
/// Index of the first column after [`NETWORK_COLUMNS`].
const NETWORK_OWNER: usize = 11;

fn network_from_row(row: &Row<'_>) -> rusqlite::Result<Network> {
    let bad = |i: usize, what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            what.to_string().into(),
        )
    };
    let name: String = row.get(0)?;
    let subnet: String = row.get(3)?;
    let gateway: String = row.get(4)?;
    let bridge: String = row.get(5)?;
    let state: String = row.get(8)?;
    Ok(Network {
        name: NetworkName::new(&name).map_err(|_| bad(0, "network name"))?,
        id: row.get(1)?,
        driver: row.get(2)?,
        subnet: Subnet::parse(&subnet).map_err(|_| bad(3, "subnet"))?,
        gateway: gateway.parse().map_err(|_| bad(4, "gateway"))?,
        bridge: ctnet_kernel::IfName::new(&bridge).map_err(|_| bad(5, "bridge"))?,
        mtu: row.get(6)?,
        internal: row.get(7)?,
        state: RowState::parse(&state),
        created: row.get(9)?,
        icc: row.get(10)?,
    })
}

/// Records a network with the given state and owner.
pub fn insert_network(conn: &Connection, net: &Network, owner: Option<&Owner>) -> Result<()> {
    conn.execute(
        "INSERT INTO networks (name, id, driver, subnet, gateway, bridge, mtu, internal, state, owner_pid, owner_start, created, icc)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            net.name.as_str(),
            net.id,
            net.driver,
            net.subnet.to_string(),
            net.gateway.to_string(),
            net.bridge.as_str(),
            net.mtu,
            net.internal,
            net.state.as_str(),
            owner.map(|o| o.pid),
            owner.map(|o| o.start),
            net.created,
            net.icc
        ],
    )?;
    Ok(())
}

/// A network by name.
pub fn get_network(conn: &Connection, name: &str) -> Result<Option<Network>> {
    Ok(conn
        .query_row(
            &format!("SELECT {NETWORK_COLUMNS} FROM networks WHERE name = ?1"),
            [name],
            network_from_row,
        )
        .optional()?)
}

/// All networks, sorted by name.
pub fn list_networks(conn: &Connection) -> Result<Vec<Network>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {NETWORK_COLUMNS} FROM networks ORDER BY name"
    ))?;
    let rows = stmt.query_map([], network_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Sets a network's state and owner.
pub fn set_network_state(
    conn: &Connection,
    name: &str,
    state: RowState,
    owner: Option<&Owner>,
) -> Result<()> {
    conn.execute(
        "UPDATE networks SET state = ?2, owner_pid = ?3, owner_start = ?4 WHERE name = ?1",
        params![
            name,
            state.as_str(),
            owner.map(|o| o.pid),
            owner.map(|o| o.start)
        ],
    )?;
    Ok(())
}

/// Takes over a network whose create or remove nobody is finishing; see [`claim_endpoint`].
pub fn claim_network(
    conn: &Connection,
    name: &str,
    me: &Owner,
    abandoned: impl Fn(&Network, Option<&Owner>) -> bool,
) -> Result<Option<Network>> {
    let row = conn
        .query_row(
            &format!(
                "SELECT {NETWORK_COLUMNS}, owner_pid, owner_start FROM networks WHERE name = ?1"
            ),
            [name],
            |row| Ok((network_from_row(row)?, owner_from(row, NETWORK_OWNER)?)),
        )
        .optional()?;
    match row {
        Some((net, owner)) if abandoned(&net, owner.as_ref()) => {
            set_network_state(conn, name, RowState::Removing, Some(me))?;
            Ok(Some(net))
        }
        _ => Ok(None),
    }
}

/// Forgets a network.
pub fn delete_network(conn: &Connection, name: &str) -> Result<()> {
    conn.execute("DELETE FROM networks WHERE name = ?1", [name])?;
    Ok(())
}

/// Networks in a transitional state together with the process that put them there.
pub fn unsettled_networks(conn: &Connection) -> Result<Vec<(Network, Option<Owner>)>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {NETWORK_COLUMNS}, owner_pid, owner_start FROM networks WHERE state != 'ready'"
    ))?;
    let rows = stmt.query_map([], |row| {
        Ok((network_from_row(row)?, owner_from(row, NETWORK_OWNER)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

// ---- endpoints ----

const ENDPOINT_COLUMNS: &str =
    "id, network, container, netns_path, netns_inode, ifname, host_ifname, ip, mac, \
     default_route, netns_owned, state";

fn endpoint_from_row(row: &Row<'_>) -> rusqlite::Result<Endpoint> {
    let bad = |i: usize, what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            what.to_string().into(),
        )
    };
    let network: String = row.get(1)?;
    let ip: String = row.get(7)?;
    let state: String = row.get(11)?;
    let inode: i64 = row.get(4)?;
    Ok(Endpoint {
        id: row.get(0)?,
        network: NetworkName::new(&network).map_err(|_| bad(1, "network name"))?,
        container: row.get(2)?,
        netns_path: row.get(3)?,
        netns_inode: inode as u64,
        ifname: row.get(5)?,
        host_ifname: row.get(6)?,
        ip: ip.parse().map_err(|_| bad(7, "ip"))?,
        mac: row.get(8)?,
        default_route: row.get(9)?,
        netns_owned: row.get(10)?,
        state: RowState::parse(&state),
        ports: Vec::new(),
    })
}

fn owner_from(row: &Row<'_>, first: usize) -> rusqlite::Result<Option<Owner>> {
    let pid: Option<u32> = row.get(first)?;
    let start: Option<u64> = row.get(first + 1)?;
    Ok(pid.zip(start).map(|(pid, start)| Owner { pid, start }))
}

/// Records an endpoint; returns its row id.
pub fn insert_endpoint(conn: &Connection, ep: &Endpoint, owner: Option<&Owner>) -> Result<i64> {
    conn.execute(
        "INSERT INTO endpoints (network, container, netns_path, netns_inode, ifname, host_ifname, ip, mac,
                                default_route, netns_owned, state, owner_pid, owner_start, created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        params![
            ep.network.as_str(),
            ep.container,
            ep.netns_path,
            ep.netns_inode as i64,
            ep.ifname,
            ep.host_ifname,
            ep.ip.to_string(),
            ep.mac,
            ep.default_route,
            ep.netns_owned,
            ep.state.as_str(),
            owner.map(|o| o.pid),
            owner.map(|o| o.start),
            now()
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Sets an endpoint's state and owner.
pub fn set_endpoint_state(
    conn: &Connection,
    id: i64,
    state: RowState,
    owner: Option<&Owner>,
) -> Result<()> {
    conn.execute(
        "UPDATE endpoints SET state = ?2, owner_pid = ?3, owner_start = ?4 WHERE id = ?1",
        params![
            id,
            state.as_str(),
            owner.map(|o| o.pid),
            owner.map(|o| o.start)
        ],
    )?;
    Ok(())
}

/// Takes over an endpoint nobody is finishing.
///
/// Must run inside a write transaction: the row is read again there, and only if
/// `abandoned` still holds for it is it marked `removing` by `me`. Deciding on a row read
/// earlier would race with its owner, which may have finished and exited in between.
pub fn claim_endpoint(
    conn: &Connection,
    id: i64,
    me: &Owner,
    abandoned: impl Fn(&Endpoint, Option<&Owner>) -> bool,
) -> Result<Option<Endpoint>> {
    let row = conn
        .query_row(
            &format!(
                "SELECT {ENDPOINT_COLUMNS}, owner_pid, owner_start FROM endpoints WHERE id = ?1"
            ),
            [id],
            |row| Ok((endpoint_from_row(row)?, owner_from(row, 12)?)),
        )
        .optional()?;
    match row {
        Some((ep, owner)) if abandoned(&ep, owner.as_ref()) => {
            set_endpoint_state(conn, id, RowState::Removing, Some(me))?;
            Ok(Some(with_ports(conn, ep)?))
        }
        _ => Ok(None),
    }
}

/// Forgets an endpoint.
pub fn delete_endpoint(conn: &Connection, id: i64) -> Result<()> {
    conn.execute("DELETE FROM endpoints WHERE id = ?1", [id])?;
    Ok(())
}

fn query_endpoints(
    conn: &Connection,
    filter: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<Endpoint>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM endpoints {filter} ORDER BY id"
    ))?;
    let rows = stmt.query_map(args, endpoint_from_row)?;
    let endpoints: Vec<Endpoint> = rows.collect::<rusqlite::Result<_>>()?;
    endpoints
        .into_iter()
        .map(|ep| with_ports(conn, ep))
        .collect()
}

/// All endpoints.
pub fn list_endpoints(conn: &Connection) -> Result<Vec<Endpoint>> {
    query_endpoints(conn, "", [])
}

/// Endpoints on one network.
pub fn endpoints_of_network(conn: &Connection, network: &str) -> Result<Vec<Endpoint>> {
    query_endpoints(conn, "WHERE network = ?1", [network])
}

/// Endpoints inside one namespace (by inode).
pub fn endpoints_in_netns(conn: &Connection, inode: u64) -> Result<Vec<Endpoint>> {
    query_endpoints(conn, "WHERE netns_inode = ?1", [inode as i64])
}

/// Endpoints of a container label (used when its namespace is gone).
pub fn endpoints_of_container(conn: &Connection, label: &str) -> Result<Vec<Endpoint>> {
    query_endpoints(conn, "WHERE container = ?1", [label])
}

/// Answers "is this address held on the network?" for an allocation, inside its
/// transaction.
///
/// Each question is one look-up in the `(network, ip)` index, so an allocation that
/// finds a free address at once costs the same with a thousand containers as with one.
/// Should many questions in a row find the address taken (a full stretch of the subnet
/// after the cursor wrapped round), it reads every held address once and answers from
/// memory from then on: never more than one scan.
pub struct HeldAddresses<'c> {
    conn: &'c Connection,
    network: &'c str,
    asked: usize,
    all: Option<HashSet<Ipv4Addr>>,
}

impl<'c> HeldAddresses<'c> {
    /// Look-ups one by one before reading every address at once.
    const LOOKUPS: usize = 32;

    /// Questions about `network`'s addresses.
    pub fn new(conn: &'c Connection, network: &'c str) -> Self {
        HeldAddresses {
            conn,
            network,
            asked: 0,
            all: None,
        }
    }

    /// True when an endpoint of the network holds `ip`.
    pub fn contains(&mut self, ip: Ipv4Addr) -> Result<bool> {
        self.asked += 1;
        if self.all.is_none() && self.asked > Self::LOOKUPS {
            self.all = Some(self.read_all()?);
        }
        match &self.all {
            Some(all) => Ok(all.contains(&ip)),
            None => {
                let mut stmt = self
                    .conn
                    .prepare_cached("SELECT 1 FROM endpoints WHERE network = ?1 AND ip = ?2")?;
                Ok(stmt.exists(params![self.network, ip.to_string()])?)
            }
        }
    }

    fn read_all(&self) -> Result<HashSet<Ipv4Addr>> {
        let mut stmt = self
            .conn
            .prepare("SELECT ip FROM endpoints WHERE network = ?1")?;
        let rows = stmt.query_map([self.network], |r| r.get::<_, String>(0))?;
        let mut all = HashSet::new();
        for ip in rows {
            if let Ok(ip) = ip?.parse() {
                all.insert(ip);
            }
        }
        Ok(all)
    }
}

/// The address the network handed out last, where its next allocation resumes.
pub fn last_allocated(conn: &Connection, network: &str) -> Result<Option<Ipv4Addr>> {
    let last: Option<u32> = conn
        .query_row(
            "SELECT last_ip FROM networks WHERE name = ?1",
            [network],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    Ok(last.map(Ipv4Addr::from))
}

/// Records the address the network handed out last.
pub fn set_last_allocated(conn: &Connection, network: &str, ip: Ipv4Addr) -> Result<()> {
    conn.execute(
        "UPDATE networks SET last_ip = ?2 WHERE name = ?1",
        params![network, u32::from(ip)],
    )?;
    Ok(())
}

/// The container holding an address on a network, if any.
pub fn address_holder(conn: &Connection, network: &str, ip: Ipv4Addr) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT container FROM endpoints WHERE network = ?1 AND ip = ?2",
            params![network, ip.to_string()],
            |r| r.get(0),
        )
        .optional()?)
}

/// True when a host-side device name is recorded.
pub fn host_ifname_taken(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM endpoints WHERE host_ifname = ?1",
            [name],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// True when a row is unfinished or owned by a process: the one short question every
/// process asks as it opens the database, before reading such rows in full.
pub fn anything_unsettled(conn: &Connection) -> Result<bool> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM endpoints INDEXED BY endpoints_unsettled
                        WHERE state != 'ready' OR owner_pid IS NOT NULL)
             OR EXISTS (SELECT 1 FROM networks WHERE state != 'ready')",
        [],
        |r| r.get(0),
    )?)
}

/// Endpoints in a transitional state, or owned by a process, with their owners.
pub fn owned_endpoints(conn: &Connection) -> Result<Vec<(Endpoint, Option<Owner>)>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {ENDPOINT_COLUMNS}, owner_pid, owner_start FROM endpoints
         WHERE state != 'ready' OR owner_pid IS NOT NULL"
    ))?;
    let rows = stmt.query_map([], |row| {
        Ok((endpoint_from_row(row)?, owner_from(row, 12)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

// ---- published ports ----

/// Records the ports an endpoint publishes.
pub fn insert_ports(conn: &Connection, endpoint_id: i64, ports: &[PublishedPort]) -> Result<()> {
    let mut stmt = conn.prepare(
        "INSERT INTO ports (endpoint_id, host_ip, host_port, container_port, protocol)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for p in ports {
        stmt.execute(params![
            endpoint_id,
            p.host_ip.map(|ip| ip.to_string()).unwrap_or_default(),
            p.host_port,
            p.container_port,
            p.protocol.as_str()
        ])?;
    }
    Ok(())
}

fn port_from_row(row: &Row<'_>, first: usize) -> rusqlite::Result<PublishedPort> {
    let host_ip: String = row.get(first)?;
    let protocol: String = row.get(first + 3)?;
    Ok(PublishedPort {
        host_ip: host_ip.parse().ok(),
        host_port: row.get(first + 1)?,
        container_port: row.get(first + 2)?,
        protocol: Protocol::parse(&protocol).unwrap_or(Protocol::Tcp),
    })
}

fn with_ports(conn: &Connection, mut ep: Endpoint) -> Result<Endpoint> {
    let mut stmt = conn.prepare(
        "SELECT host_ip, host_port, container_port, protocol FROM ports
         WHERE endpoint_id = ?1 ORDER BY protocol, host_port",
    )?;
    let rows = stmt.query_map([ep.id], |row| port_from_row(row, 0))?;
    ep.ports = rows.collect::<rusqlite::Result<_>>()?;
    Ok(ep)
}

/// The published ports of one protocol whose host port lies in `ports`, with the
/// container and network holding each: all a request for those ports can clash with.
pub fn published_ports_in(
    conn: &Connection,
    protocol: Protocol,
    ports: RangeInclusive<u16>,
) -> Result<Vec<Holder>> {
    let mut stmt = conn.prepare(
        "SELECT p.host_ip, p.host_port, p.container_port, p.protocol, e.container, e.network
         FROM ports p JOIN endpoints e ON e.id = p.endpoint_id
         WHERE p.protocol = ?1 AND p.host_port BETWEEN ?2 AND ?3",
    )?;
    let rows = stmt.query_map(
        params![protocol.as_str(), ports.start(), ports.end()],
        |row| {
            let container: String = row.get(4)?;
            let network: String = row.get(5)?;
            Ok(Holder {
                port: port_from_row(row, 0)?,
                holder: format!("container {container:?} on network {network:?}"),
            })
        },
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

// ---- namespaces made by `ctnet run` ----

/// Records a namespace that lives as long as `owner`.
pub fn insert_owned_netns(conn: &Connection, name: &str, owner: &Owner) -> Result<()> {
    conn.execute(
        "INSERT INTO namespaces (name, owner_pid, owner_start) VALUES (?1, ?2, ?3)",
        params![name, owner.pid, owner.start],
    )?;
    Ok(())
}

/// Forgets an owned namespace.
pub fn delete_owned_netns(conn: &Connection, name: &str) -> Result<()> {
    conn.execute("DELETE FROM namespaces WHERE name = ?1", [name])?;
    Ok(())
}

/// All owned namespaces with their owners.
pub fn owned_namespaces(conn: &Connection) -> Result<Vec<(String, Owner)>> {
    let mut stmt = conn.prepare("SELECT name, owner_pid, owner_start FROM namespaces")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get(0)?,
            Owner {
                pid: r.get(1)?,
                start: r.get(2)?,
            },
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database file in a fresh folder of its own.
    fn scratch(name: &str) -> std::path::PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("ctnet-store-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("ctnet.db")
    }

    fn indexes(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
            .unwrap();
        let names = stmt.query_map([], |r| r.get(0)).unwrap();
        names.collect::<rusqlite::Result<_>>().unwrap()
    }

    /// The networks table as versions 2 to 4 made it: without the allocation cursor.
    fn schema_before_v5() -> String {
        let cursor = ",\n    last_ip     INTEGER";
        assert!(
            SCHEMA.contains(cursor),
            "the test's copy of the v5 column is stale"
        );
        SCHEMA.replace(cursor, "")
    }

    fn insert_plain_network(conn: &Connection) {
        conn.execute(
            "INSERT INTO networks (name, id, driver, subnet, gateway, bridge, internal,
                                   state, created)
             VALUES ('n', 'i', 'bridge', '10.9.0.0/24', '10.9.0.1', 'br-n', 0,
                     'pending', 0)",
            [],
        )
        .unwrap();
    }

    #[test]
    fn a_version_3_database_is_upgraded_on_opening() {
        let path = scratch("v3");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&schema_before_v5()).unwrap();
            conn.execute_batch(
                "DROP INDEX ports_by_endpoint;
                 CREATE INDEX endpoints_by_state ON endpoints (state);
                 PRAGMA user_version = 3;",
            )
            .unwrap();
            insert_plain_network(&conn);
        }
        let store = Store::open(&path).unwrap();
        let version: i64 = store
            .read()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let names = indexes(store.read());
        assert!(
            !names.iter().any(|n| n == "endpoints_by_state"),
            "{names:?}"
        );
        for wanted in ["endpoints_unsettled", "ports_by_endpoint"] {
            assert!(names.iter().any(|n| n == wanted), "{wanted}: {names:?}");
        }
        // Version 5's cursor: none yet for the old network, then the one recorded.
        assert_eq!(last_allocated(store.read(), "n").unwrap(), None);
        let ip = Ipv4Addr::new(10, 9, 0, 7);
        set_last_allocated(store.read(), "n", ip).unwrap();
        assert_eq!(last_allocated(store.read(), "n").unwrap(), Some(ip));
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn held_addresses_answers_by_look_up_then_from_one_read() {
        let path = scratch("held");
        let store = Store::open(&path).unwrap();
        let conn = store.read();
        insert_plain_network(conn);
        for host in 2..=40u8 {
            conn.execute(
                "INSERT INTO endpoints (network, container, netns_path, netns_inode, ifname,
                                        host_ifname, ip, mac, default_route, netns_owned,
                                        state, created)
                 VALUES ('n', ?1, '/x', ?2, 'eth0', ?1, ?3, 'm', 1, 0, 'ready', 0)",
                params![format!("c{host}"), host, format!("10.9.0.{host}")],
            )
            .unwrap();
        }
        let mut held = HeldAddresses::new(conn, "n");
        // More questions than the look-up budget: the answers stay right past it.
        for host in 2..=40u8 {
            assert!(
                held.contains(Ipv4Addr::new(10, 9, 0, host)).unwrap(),
                "{host}"
            );
        }
        assert!(
            held.all.is_some(),
            "a long run of taken addresses reads them all once"
        );
        assert!(!held.contains(Ipv4Addr::new(10, 9, 0, 41)).unwrap());
        let mut fresh = HeldAddresses::new(conn, "n");
        assert!(!fresh.contains(Ipv4Addr::new(10, 9, 0, 99)).unwrap());
        assert!(fresh.all.is_none());
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn anything_unsettled_sees_a_pending_network() {
        let path = scratch("unsettled");
        let store = Store::open(&path).unwrap();
        assert!(!anything_unsettled(store.read()).unwrap());
        insert_plain_network(store.read());
        assert!(anything_unsettled(store.read()).unwrap());
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
