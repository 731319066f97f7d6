//! The local state database: SQLite in WAL mode under the state dir.
//!
//! Many short-lived ctnet processes write at once; every decision that must be unique
//! (a subnet, an address, a device name) is read and recorded inside one `BEGIN
//! IMMEDIATE` transaction, which SQLite serialises across processes.
//!
//! This is the only place stored text becomes values again: every row is decoded into
//! the model's checked types, and a stored word or value this code would not have
//! written is an error naming the row, never a silent default.
//!
//! - [`schema`]: the tables and the upgrades from earlier versions;
//! - [`networks`], [`endpoints`], [`ports`], [`namespaces`]: one file per table group.

mod endpoints;
mod namespaces;
mod networks;
mod overlay_peers;
mod policies;
mod ports;
pub mod schema;

use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, Row, Transaction, TransactionBehavior};

pub use endpoints::*;
pub use namespaces::*;
pub use networks::*;
pub use overlay_peers::*;
pub use policies::*;
pub use ports::*;

use crate::error::{Error, ErrorKind, Result};
use crate::owner::Owner;

/// The database file this process opened last. A ctnet process opens one, and every
/// database error, wherever an operation meets it (opening, a write, a read in `gc`),
/// names this file: the user is told which file is full, read-only or damaged.
static OPENED: RwLock<Option<PathBuf>> = RwLock::new(None);

/// The file [`OPENED`] names, if a database was opened.
pub(crate) fn opened_database() -> Option<PathBuf> {
    OPENED.read().ok().and_then(|p| p.clone())
}

/// An open state database.
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (and on first use creates) the database at `path`. A failure names the file
    /// with the cause (read-only, full, not a database) and its fix.
    pub fn open(path: &Path) -> Result<Self> {
        if let Ok(mut opened) = OPENED.write() {
            *opened = Some(path.to_path_buf());
        }
        // Named here too: another store opened meanwhile (tests open several) must not
        // lend its name to this one's failure.
        Store::connect(path).map_err(|mut e| {
            if e.kind == ErrorKind::Store {
                e.object = format!("state database {}", path.display());
            }
            e
        })
    }

    fn connect(path: &Path) -> Result<Self> {
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
        conn.busy_handler(Some(wait_for_writer))?;
        // WAL lets readers run beside the one writer; NORMAL sync is crash-safe in WAL mode
        // (a power cut may lose the last commits, never corrupt the file).
        use_wal(&conn)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
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
        if version != schema::VERSION {
            // SQLite as built here starts with foreign keys on; an upgrade rebuilds
            // tables others refer to, which must not cascade.
            conn.pragma_update(None, "foreign_keys", "OFF")?;
            // IMMEDIATE: many first processes may race to create the schema. A deferred
            // transaction would read, then fail at once (no busy wait) when it tried to
            // write after another process had committed.
            let tx = Transaction::new_unchecked(&conn, TransactionBehavior::Immediate)?;
            let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
            if version != schema::VERSION {
                schema::upgrade(&tx, version)?;
            }
            tx.commit()?;
        }
        conn.pragma_update(None, "foreign_keys", "ON")?;
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

    /// Runs `f`'s reads in one read transaction: they see one moment of the store, and
    /// hold its WAL snapshot once instead of once per statement (a reader that takes and
    /// drops it for every row keeps the writers' checkpoints from finishing).
    pub fn read_snapshot<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Deferred)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// A number that changes whenever another connection (another process) has
    /// committed since this one last asked; SQLite's `PRAGMA data_version`, which reads
    /// no table. Lets a long-lived reader skip a re-read of an unchanged store.
    pub fn data_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .pragma_query_value(None, "data_version", |r| r.get(0))?)
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

/// The error for a stored value this code would not have written.
pub(crate) fn bad_column(column: &str, value: &str, e: Error) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("column {column} holds {value:?}: {e}").into(),
    )
}

/// Reads a text column and decodes it with `parse`; a value `parse` refuses is an error
/// naming the column.
pub(crate) fn decoded<T>(
    row: &Row<'_>,
    column: &str,
    parse: impl FnOnce(&str) -> Result<T>,
) -> rusqlite::Result<T> {
    let text: String = row.get(column)?;
    parse(&text).map_err(|e| bad_column(column, &text, e))
}

/// The owner columns (`owner_pid`, `owner_start`) of a row.
pub(crate) fn owner_from(row: &Row<'_>) -> rusqlite::Result<Option<Owner>> {
    let pid: Option<u32> = row.get("owner_pid")?;
    let start: Option<u64> = row.get("owner_start")?;
    Ok(pid.zip(start).map(|(pid, start)| Owner { pid, start }))
}

/// While another process holds the write lock, SQLite calls this before each new try
/// (`tries` so far); false gives up with SQLITE_BUSY. See [`busy_pause`].
fn wait_for_writer(tries: i32) -> bool {
    match busy_pause(tries) {
        Some(pause) => {
            std::thread::sleep(pause);
            true
        }
        None => false,
    }
}

/// Tries at the short pause; a transaction of an attach or detach takes a few ms.
const SHORT_TRIES: i32 = 50;
const SHORT_PAUSE: Duration = Duration::from_micros(100);
const LONG_PAUSE: Duration = Duration::from_micros(500);
/// About 60 s of waiting in all: a process that holds the lock longer is stuck.
const LAST_TRY: i32 = SHORT_TRIES + 120_000;

/// How long to pause before try `tries + 1`, or None to give up. SQLite's own busy
/// timeout pauses 1, 2, 5, 10, 15, 20, 25 ms and on: a write lock held for 3 ms (a
/// detach commits only once the kernel confirms the veth gone) cost each waiter 8 ms or
/// more, which four engines attaching and detaching at once saw as a 25 ms p99. Short
/// pauses wake a waiter within 0.1 ms of the lock's release at first, within 0.5 ms later.
fn busy_pause(tries: i32) -> Option<Duration> {
    match tries {
        t if t < SHORT_TRIES => Some(SHORT_PAUSE),
        t if t < LAST_TRY => Some(LONG_PAUSE),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use rusqlite::params;

    use super::*;
    use crate::model::{Family, NetworkName};

    #[test]
    fn a_busy_store_is_tried_again_soon_and_given_up_after_about_a_minute() {
        assert_eq!(busy_pause(0), Some(SHORT_PAUSE));
        assert_eq!(busy_pause(SHORT_TRIES), Some(LONG_PAUSE));
        assert_eq!(busy_pause(LAST_TRY), None);
        let waited: Duration = (0..LAST_TRY).filter_map(busy_pause).sum();
        assert!(
            (Duration::from_secs(55)..=Duration::from_secs(65)).contains(&waited),
            "{waited:?}"
        );
    }

    /// The schema as version 5 wrote it: one subnet per network, one address per
    /// endpoint, the cursor as a number.
    const SCHEMA_V5: &str = "
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
            SCHEMA_V5.contains(cursor),
            "the test's copy of the v5 column is stale"
        );
        SCHEMA_V5.replace(cursor, "")
    }

    /// A network, a container on it and a published port, as versions 2 to 5 stored them.
    fn insert_old_rows(conn: &Connection) {
        conn.execute_batch(
            "INSERT INTO networks (name, id, driver, subnet, gateway, bridge, internal,
                                   state, created)
             VALUES ('n', 'i', 'bridge', '10.9.0.0/24', '10.9.0.1', 'br-n', 0, 'ready', 0);
             INSERT INTO endpoints (network, container, netns_path, netns_inode, ifname,
                                    host_ifname, ip, mac, default_route, netns_owned,
                                    state, created)
             VALUES ('n', 'c1', '/run/netns/c1', 7, 'eth0', 'vethabc', '10.9.0.2',
                     '02:42:0a:09:00:02', 1, 0, 'ready', 0);
             INSERT INTO ports (endpoint_id, host_ip, host_port, container_port, protocol)
             VALUES (1, '', 8080, 80, 'tcp');",
        )
        .unwrap();
    }

    fn n() -> NetworkName {
        NetworkName::new("n").unwrap()
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
            insert_old_rows(&conn);
        }
        let store = Store::open(&path).unwrap();
        let version: i64 = store
            .read()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, schema::VERSION);
        let names = indexes(store.read());
        assert!(
            !names.iter().any(|n| n == "endpoints_by_state"),
            "{names:?}"
        );
        for wanted in [
            "endpoints_unsettled",
            "ports_by_endpoint",
            "endpoints_by_netns",
        ] {
            assert!(names.iter().any(|n| n == wanted), "{wanted}: {names:?}");
        }
        // Version 6: the subnet, the address and the port all survive the rebuild.
        let net = get_network(store.read(), &n()).unwrap().unwrap();
        assert_eq!(net.subnets_text(), "10.9.0.0/24");
        assert_eq!(net.subnets[0].gateway.to_string(), "10.9.0.1");
        let eps = list_endpoints(store.read()).unwrap();
        assert_eq!(eps.len(), 1);
        assert_eq!(eps[0].ips, vec![IpAddr::from([10, 9, 0, 2])]);
        assert_eq!(eps[0].ports.len(), 1);
        assert_eq!(eps[0].ifname.as_str(), "eth0");
        // Version 5's default_route 1 (there was only IPv4) is IPv4's default route.
        assert_eq!(eps[0].default_routes, vec![Family::V4]);
        // The cursor: none yet for the old network, then the one recorded.
        assert_eq!(
            last_allocated(store.read(), &n(), Family::V4).unwrap(),
            None
        );
        let ip = IpAddr::V4(Ipv4Addr::new(10, 9, 0, 7));
        set_last_allocated(store.read(), &n(), ip).unwrap();
        assert_eq!(
            last_allocated(store.read(), &n(), Family::V4).unwrap(),
            Some(ip)
        );
        // Foreign keys hold after the rebuild: the endpoint's rows go with it.
        delete_endpoint(store.read(), eps[0].id).unwrap();
        let left: i64 = store
            .read()
            .query_row(
                "SELECT (SELECT count(*) FROM addresses) + (SELECT count(*) FROM ports)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 0);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_version_5_cursor_becomes_an_address() {
        let path = scratch("v5");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(SCHEMA_V5).unwrap();
            conn.execute_batch("PRAGMA user_version = 5;").unwrap();
            insert_old_rows(&conn);
            conn.execute(
                "UPDATE networks SET last_ip = ?1",
                [u32::from(Ipv4Addr::new(10, 9, 0, 200))],
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(
            last_allocated(store.read(), &n(), Family::V4).unwrap(),
            Some(IpAddr::from([10, 9, 0, 200]))
        );
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    /// The schema as version 11 wrote it: today's without a network's `overlay` and the
    /// `overlay_peers` table.
    fn schema_v11() -> String {
        let column = ",\n    overlay     TEXT";
        let text = schema::schema();
        let table_at = text
            .find("CREATE TABLE IF NOT EXISTS overlay_peers")
            .expect("the test's copy of version 12's table is stale");
        let table_end = table_at + text[table_at..].find(";\n").unwrap() + 2;
        assert!(
            text.contains(column),
            "the test's copy of version 12's column is stale"
        );
        let text = format!("{}{}", &text[..table_at], &text[table_end..]);
        text.replace(column, "")
    }

    #[test]
    fn a_version_11_database_gets_overlays() {
        let path = scratch("v11");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&schema_v11()).unwrap();
            conn.execute_batch(
                "INSERT INTO networks (name, id, driver, bridge, internal, state, created)
                 VALUES ('b', 'id1', 'bridge', 'br-1', 0, 'ready', 0);
                 INSERT INTO subnets (network, family, subnet, gateway)
                 VALUES ('b', 4, '10.9.0.0/24', '10.9.0.1');
                 PRAGMA user_version = 11;",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let net = get_network(store.read(), &NetworkName::new("b").unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(net.overlay, None);
        assert!(list_all_overlay_peers(store.read()).unwrap().is_empty());
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    /// The schema as version 9 wrote it: version 11's without a network's `dns` and the
    /// `dns_names` table.
    fn schema_v9() -> String {
        let column = ",\n    dns         INTEGER NOT NULL DEFAULT 0";
        let text = schema_v11();
        let table_at = text
            .find("CREATE TABLE IF NOT EXISTS dns_names")
            .expect("the test's copy of version 10's table is stale");
        let table_end = table_at + text[table_at..].find(";\n").unwrap() + 2;
        assert!(
            text.contains(column),
            "the test's copy of version 10's column is stale"
        );
        let text = format!("{}{}", &text[..table_at], &text[table_end..]);
        text.replace(column, "")
    }

    /// The schema as version 8 wrote it: version 9's with `host_ifname` NOT NULL.
    fn schema_v8() -> String {
        let (v9, v8) = (
            "host_ifname   TEXT UNIQUE,",
            "host_ifname   TEXT NOT NULL UNIQUE,",
        );
        let text = schema_v9();
        assert!(
            text.contains(v9),
            "the test's copy of version 9's column is stale"
        );
        text.replace(v9, v8)
    }

    /// The schema as version 7 wrote it: version 8's without its columns.
    fn schema_v7() -> String {
        let added = ",\n    isolation   TEXT NOT NULL DEFAULT 'strict',\n    metric      INTEGER,\n    ipam        TEXT NOT NULL DEFAULT 'ctnet',\n    macvlan_parent TEXT,\n    macvlan_mode   TEXT";
        let text = schema_v8();
        assert!(
            text.contains(added),
            "the test's copy of version 8's columns is stale"
        );
        text.replace(added, "")
    }

    /// The schema as version 6 wrote it: version 7's without its columns and index.
    fn schema_v6() -> String {
        let mut text = schema_v7();
        for added in [
            ",\n    creator     TEXT",
            "\n    netns_cookie  INTEGER,\n    boot_id       TEXT,",
        ] {
            assert!(
                text.contains(added),
                "the test's copy of {added:?} is stale"
            );
            text = text.replace(added, "");
        }
        text
    }

    #[test]
    fn a_version_6_database_gets_namespace_identity_and_network_creators() {
        let path = scratch("v6");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&schema_v6()).unwrap();
            conn.execute_batch(
                "DROP INDEX endpoints_by_container; PRAGMA user_version = 6;
                 INSERT INTO networks (name, id, driver, bridge, internal, state, created)
                 VALUES ('n', 'i', 'bridge', 'br-n', 0, 'ready', 0);
                 INSERT INTO subnets (network, family, subnet, gateway)
                 VALUES ('n', 4, '10.9.0.0/24', '10.9.0.1');
                 INSERT INTO endpoints (network, container, netns_path, netns_inode, ifname,
                                        host_ifname, mac, default_route, netns_owned,
                                        state, created)
                 VALUES ('n', 'cni:c1', '/run/netns/c1', 7, 'eth0', 'vethabc',
                         '02:42:0a:09:00:02', 1, 0, 'ready', 0);
                 INSERT INTO addresses (endpoint_id, network, ip) VALUES (1, 'n', '10.9.0.2');",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let version: i64 = store
            .read()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, schema::VERSION);
        assert!(indexes(store.read())
            .iter()
            .any(|n| n == "endpoints_by_container"));
        // Old rows: no identity (judged by their veth, see ops/stale.rs), no creator
        // (so no front end removes the network).
        let eps = list_endpoints(store.read()).unwrap();
        assert_eq!(eps.len(), 1);
        assert_eq!(eps[0].identity, None);
        assert_eq!(eps[0].ips, vec![IpAddr::from([10, 9, 0, 2])]);
        let net = get_network(store.read(), &n()).unwrap().unwrap();
        assert_eq!(net.creator, None);
        // The new columns are written and read back.
        let id = crate::model::NetnsIdentity {
            cookie: 28,
            boot_id: "b".into(),
        };
        set_endpoint_ready(store.read(), eps[0].id, None, Some(&id)).unwrap();
        let eps = endpoints_of_container(store.read(), "cni:c1").unwrap();
        assert_eq!(eps[0].identity, Some(id));
        store
            .read()
            .execute("UPDATE networks SET creator = 'podman'", [])
            .unwrap();
        let net = get_network(store.read(), &n()).unwrap().unwrap();
        assert_eq!(net.creator, Some(crate::model::Runtime::Podman));
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    /// Version 8: networks of version 7 become what they were (bridge, strict, no
    /// metric, ctnet IPAM); the new columns are written and read back.
    #[test]
    fn a_version_7_database_gets_isolation_metric_ipam_and_macvlan_columns() {
        let path = scratch("v7");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&schema_v7()).unwrap();
            conn.execute_batch(
                "PRAGMA user_version = 7;
                 INSERT INTO networks (name, id, driver, bridge, internal, state, created, creator)
                 VALUES ('n', 'i', 'bridge', 'br-n', 0, 'ready', 0, 'podman');
                 INSERT INTO subnets (network, family, subnet, gateway)
                 VALUES ('n', 4, '10.9.0.0/24', '10.9.0.1');",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let version: i64 = store
            .read()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, schema::VERSION);
        let net = get_network(store.read(), &n()).unwrap().unwrap();
        assert_eq!(net.driver, crate::model::Driver::Bridge);
        assert_eq!(net.isolation, crate::model::Isolation::Strict);
        assert_eq!(net.metric, None);
        assert_eq!(net.ipam, crate::model::Ipam::Ctnet);
        assert_eq!(net.macvlan, None);
        assert_eq!(net.creator, Some(crate::model::Runtime::Podman));
        assert_eq!(net.subnets_text(), "10.9.0.0/24");
        // A network with every new field set, and one without IPAM (so no subnets).
        let mac = crate::model::MacvlanConfig {
            parent: ctnet_kernel::IfName::new("lan0").unwrap(),
            mode: crate::model::MacvlanMode::Private,
        };
        let written = crate::model::Network {
            name: NetworkName::new("m").unwrap(),
            id: "j".into(),
            driver: crate::model::Driver::Macvlan,
            bridge: ctnet_kernel::IfName::new("lan0").unwrap(),
            subnets: Vec::new(),
            isolation: crate::model::Isolation::Open,
            metric: Some(250),
            ipam: crate::model::Ipam::None,
            macvlan: Some(mac.clone()),
            ..net
        };
        insert_network(store.read(), &written, None).unwrap();
        let read = get_network(store.read(), &written.name).unwrap().unwrap();
        assert_eq!(read.driver, crate::model::Driver::Macvlan);
        assert_eq!(read.isolation, crate::model::Isolation::Open);
        assert_eq!(read.metric, Some(250));
        assert_eq!(read.ipam, crate::model::Ipam::None);
        assert_eq!(read.macvlan, Some(mac));
        assert!(read.subnets.is_empty());
        // Only a network without IPAM may lack subnets.
        store
            .read()
            .execute("UPDATE networks SET ipam = 'ctnet' WHERE name = 'm'", [])
            .unwrap();
        assert!(get_network(store.read(), &written.name).is_err());
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    /// Version 9: a version 8 endpoint keeps its row, addresses and ports (the table is
    /// rebuilt), and an endpoint without a host side (macvlan) is written and read back.
    #[test]
    fn a_version_8_database_lets_endpoints_have_no_host_side() {
        let path = scratch("v8");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&schema_v8()).unwrap();
            conn.execute_batch(
                "PRAGMA user_version = 8;
                 INSERT INTO networks (name, id, driver, bridge, internal, state, created)
                 VALUES ('n', 'i', 'bridge', 'br-n', 0, 'ready', 0);
                 INSERT INTO subnets (network, family, subnet, gateway)
                 VALUES ('n', 4, '10.9.0.0/24', '10.9.0.1');
                 INSERT INTO endpoints (network, container, netns_path, netns_inode, ifname,
                                        host_ifname, mac, default_route, netns_owned,
                                        state, created, netns_cookie, boot_id)
                 VALUES ('n', 'cni:c1', '/run/netns/c1', 7, 'eth0', 'vethabc',
                         '02:42:0a:09:00:02', 1, 0, 'ready', 0, 28, 'b');
                 INSERT INTO addresses (endpoint_id, network, ip) VALUES (1, 'n', '10.9.0.2');
                 INSERT INTO ports (endpoint_id, host_ip, host_port, container_port, protocol)
                 VALUES (1, '', 8080, 80, 'tcp');",
            )
            .unwrap();
            let e = conn.execute(
                "INSERT INTO endpoints (network, container, netns_path, netns_inode, ifname,
                                        host_ifname, mac, default_route, netns_owned,
                                        state, created)
                 VALUES ('n', 'c2', '/run/netns/c2', 8, 'eth0', NULL, '02:42:0a:09:00:03',
                         1, 0, 'ready', 0)",
                [],
            );
            assert!(e.is_err(), "version 8 has host_ifname NOT NULL");
        }
        let store = Store::open(&path).unwrap();
        let version: i64 = store
            .read()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, schema::VERSION);
        let eps = list_endpoints(store.read()).unwrap();
        assert_eq!(eps.len(), 1);
        let old = &eps[0];
        assert_eq!(
            old.host_ifname.as_ref().map(|n| n.as_str()),
            Some("vethabc")
        );
        assert_eq!(old.ips, vec![IpAddr::from([10, 9, 0, 2])]);
        assert_eq!(old.identity.as_ref().map(|i| i.cookie), Some(28));
        let ports: i64 = store
            .read()
            .query_row(
                "SELECT count(*) FROM ports WHERE endpoint_id = 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(ports, 1, "the rebuild kept the endpoint's ports");
        assert!(indexes(store.read())
            .iter()
            .any(|n| n == "endpoints_by_container"));
        // Two endpoints without a host side, beside one with.
        for (container, inode, ip) in [("c2", 8, "10.9.0.3"), ("c3", 9, "10.9.0.4")] {
            let ip: IpAddr = ip.parse().unwrap();
            let ep = crate::model::Endpoint {
                container: container.into(),
                netns_inode: inode,
                host_ifname: None,
                ips: vec![ip],
                mac: crate::model::MacAddr::for_address(ip),
                ..old.clone()
            };
            insert_endpoint(store.read(), &ep, None).unwrap();
        }
        let eps = list_endpoints(store.read()).unwrap();
        let without: Vec<_> = eps.iter().filter(|e| e.host_ifname.is_none()).collect();
        assert_eq!(without.len(), 2, "{eps:?}");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    /// Version 10: a version 9 network has DNS off and its endpoints no names; a DNS
    /// network and an endpoint's name and aliases are written and read back, in order;
    /// a name is one container's on a network, and goes with its endpoint.
    #[test]
    fn a_version_9_database_gets_dns_and_names() {
        let path = scratch("v9");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(&schema_v9()).unwrap();
            conn.execute_batch(
                "PRAGMA user_version = 9;
                 INSERT INTO networks (name, id, driver, bridge, internal, state, created)
                 VALUES ('n', 'i', 'bridge', 'br-n', 0, 'ready', 0);
                 INSERT INTO subnets (network, family, subnet, gateway)
                 VALUES ('n', 4, '10.9.0.0/24', '10.9.0.1');
                 INSERT INTO endpoints (network, container, netns_path, netns_inode, ifname,
                                        host_ifname, mac, default_route, netns_owned,
                                        state, created)
                 VALUES ('n', 'c1', '/run/netns/c1', 7, 'eth0', 'vethabc',
                         '02:42:0a:09:00:02', 1, 0, 'ready', 0);
                 INSERT INTO addresses (endpoint_id, network, ip) VALUES (1, 'n', '10.9.0.2');",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let version: i64 = store
            .read()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, schema::VERSION);
        let old = get_network(store.read(), &n()).unwrap().unwrap();
        assert!(!old.dns);
        let eps = list_endpoints(store.read()).unwrap();
        assert_eq!((eps[0].name.as_ref(), eps[0].aliases.len()), (None, 0));
        let user = crate::model::Network {
            name: NetworkName::new("user").unwrap(),
            id: "j".into(),
            bridge: ctnet_kernel::IfName::new("br-user").unwrap(),
            subnets: Vec::new(),
            ipam: crate::model::Ipam::None,
            dns: true,
            ..old
        };
        insert_network(store.read(), &user, None).unwrap();
        assert!(get_network(store.read(), &user.name).unwrap().unwrap().dns);
        let dns = |t: &str| crate::model::DnsName::alias(t).unwrap();
        let ep = crate::model::Endpoint {
            network: user.name.clone(),
            container: "c2".into(),
            netns_inode: 8,
            host_ifname: None,
            ips: Vec::new(),
            name: Some(dns("web")),
            aliases: vec![dns("www"), dns("api"), dns("b")],
            ..eps[0].clone()
        };
        let id = insert_endpoint(store.read(), &ep, None).unwrap();
        let back = endpoints_of_network(store.read(), &user.name).unwrap();
        assert_eq!(back[0].name, Some(dns("web")));
        assert_eq!(back[0].aliases, vec![dns("www"), dns("api"), dns("b")]);
        assert_eq!(
            back[0].dns_names().map(|n| n.as_str()).collect::<Vec<_>>(),
            ["web", "www", "api", "b"]
        );
        for name in ["web", "api"] {
            let holder = dns_name_holder(store.read(), &user.name, &dns(name)).unwrap();
            assert_eq!(holder.as_deref(), Some("c2"), "{name}");
        }
        assert_eq!(
            dns_name_holder(store.read(), &n(), &dns("web")).unwrap(),
            None,
            "names are per network"
        );
        let twice = crate::model::Endpoint {
            container: "c3".into(),
            netns_inode: 9,
            name: Some(dns("api")),
            aliases: Vec::new(),
            ..ep.clone()
        };
        assert!(insert_endpoint(store.read(), &twice, None).is_err());
        delete_endpoint(store.read(), id).unwrap();
        assert_eq!(
            dns_name_holder(store.read(), &user.name, &dns("web")).unwrap(),
            None
        );
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    fn insert_v6_network(conn: &Connection) {
        conn.execute_batch(
            "INSERT INTO networks (name, id, driver, bridge, internal, state, created)
             VALUES ('n', 'i', 'bridge', 'br-n', 0, 'pending', 0);
             INSERT INTO subnets (network, family, subnet, gateway)
             VALUES ('n', 6, 'fd00:9::/64', 'fd00:9::1'), ('n', 4, '10.9.0.0/24', '10.9.0.1');",
        )
        .unwrap();
    }

    #[test]
    fn held_addresses_answers_by_look_up_then_from_one_read() {
        let path = scratch("held");
        let store = Store::open(&path).unwrap();
        let conn = store.read();
        insert_v6_network(conn);
        for host in 2..=40u8 {
            conn.execute(
                "INSERT INTO endpoints (network, container, netns_path, netns_inode, ifname,
                                        host_ifname, mac, default_route, netns_owned,
                                        state, created)
                 VALUES ('n', ?1, '/x', ?2, 'eth0', ?1, '02:42:00:00:00:01', 1, 0, 'ready', 0)",
                params![format!("c{host}"), host],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO addresses (endpoint_id, network, ip) VALUES (?1, 'n', ?2), (?1, 'n', ?3)",
                params![conn.last_insert_rowid(), format!("10.9.0.{host}"), format!("fd00:9::{host:x}")],
            )
            .unwrap();
        }
        let net = n();
        let mut held = HeldAddresses::new(conn, &net);
        // More questions than the look-up budget: the answers stay right past it.
        for host in 2..=40u8 {
            assert!(
                held.contains(IpAddr::from([10, 9, 0, host])).unwrap(),
                "{host}"
            );
        }
        assert!(
            held.all.is_some(),
            "a long run of taken addresses reads them all once"
        );
        assert!(!held.contains(IpAddr::from([10, 9, 0, 41])).unwrap());
        assert!(held.contains("fd00:9::28".parse().unwrap()).unwrap());
        let mut fresh = HeldAddresses::new(conn, &net);
        assert!(!fresh.contains(IpAddr::from([10, 9, 0, 99])).unwrap());
        assert!(fresh.contains("fd00:9::2".parse().unwrap()).unwrap());
        assert!(fresh.all.is_none());
        // Both families, IPv4 first, whatever order they were stored in.
        let eps = list_endpoints(conn).unwrap();
        assert_eq!(eps[0].ips_text(), "10.9.0.2, fd00:9::2");
        let nets = list_networks(conn).unwrap();
        assert_eq!(nets[0].subnets_text(), "10.9.0.0/24, fd00:9::/64");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn named_endpoints_read_what_the_whole_rows_say_and_versions_see_other_writers() {
        let path = scratch("named");
        let store = Store::open(&path).unwrap();
        let conn = store.read();
        insert_v6_network(conn);
        conn.execute_batch(
            "INSERT INTO endpoints (network, container, netns_path, netns_inode, ifname,
                                    host_ifname, mac, default_route, netns_owned,
                                    state, created)
             VALUES ('n', 'c1', '/x', 7, 'eth0', 'v1', '02:42:00:00:00:01', 1, 0, 'ready', 0),
                    ('n', 'c2', '/x', 8, 'eth0', 'v2', '02:42:00:00:00:02', 1, 0, 'pending', 0);
             INSERT INTO addresses (endpoint_id, network, ip)
             VALUES (1, 'n', 'fd00:9::2'), (1, 'n', '10.9.0.2'), (2, 'n', '10.9.0.3');
             INSERT INTO dns_names (endpoint_id, network, seq, name)
             VALUES (1, 'n', 2, 'second'), (1, 'n', 0, 'c1'), (1, 'n', 1, 'first');",
        )
        .unwrap();
        let whole = &list_endpoints(conn).unwrap()[0];
        let named = list_named_endpoints(conn).unwrap();
        assert_eq!(named.len(), 1, "only ready endpoints: {named:?}");
        assert_eq!(named[0].id, whole.id);
        assert_eq!(named[0].network, whole.network);
        assert_eq!(named[0].ips, whole.ips);
        assert_eq!(
            named[0].names,
            whole.dns_names().cloned().collect::<Vec<_>>()
        );
        assert_eq!(named_endpoint(conn, 1).unwrap().as_ref(), Some(&named[0]));
        assert_eq!(named_endpoint(conn, 2).unwrap(), None, "pending");
        assert_eq!(named_endpoint(conn, 3).unwrap(), None, "never was");
        // Another process's commit moves the version; this connection's reads do not.
        let before = store.data_version().unwrap();
        store.read_snapshot(list_named_endpoints).unwrap();
        assert_eq!(store.data_version().unwrap(), before);
        let other = Store::open(&path).unwrap();
        other
            .read()
            .execute("UPDATE endpoints SET state = 'ready' WHERE id = 2", [])
            .unwrap();
        assert_ne!(store.data_version().unwrap(), before);
        assert_eq!(named_endpoint(conn, 2).unwrap().unwrap().names, []);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn anything_unsettled_sees_a_pending_network() {
        let path = scratch("unsettled");
        let store = Store::open(&path).unwrap();
        assert!(!anything_unsettled(store.read()).unwrap());
        insert_v6_network(store.read());
        assert!(anything_unsettled(store.read()).unwrap());
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_file_that_is_not_a_database_is_named_with_the_fix() {
        let path = scratch("notadb");
        std::fs::write(&path, vec![0x5a; 8192]).unwrap();
        let e = Store::open(&path)
            .err()
            .expect("garbage opened as a database");
        assert_eq!(e.kind, ErrorKind::Store);
        assert!(e.object.contains(&path.display().to_string()), "{e}");
        assert!(e.cause.contains("not a ctnet database"), "{e}");
        assert!(e.fix.contains("backup"), "{e}");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_stored_word_ctnet_never_writes_is_an_error() {
        let path = scratch("garbage");
        let store = Store::open(&path).unwrap();
        insert_v6_network(store.read());
        store
            .read()
            .execute("UPDATE networks SET state = 'readyish'", [])
            .unwrap();
        let e = list_networks(store.read()).unwrap_err();
        assert!(e.cause.contains("readyish"), "{e}");
        store
            .read()
            .execute("UPDATE networks SET state = 'ready'", [])
            .unwrap();
        store
            .read()
            .execute_batch(
                "INSERT INTO endpoints (network, container, netns_path, netns_inode, ifname,
                                        host_ifname, mac, default_route, netns_owned,
                                        state, created)
                 VALUES ('n', 'c', '/x', 1, 'eth0', 'vethx', '02:42:00:00:00:01', 1, 0, 'ready', 0);
                 INSERT INTO ports (endpoint_id, host_ip, host_port, container_port, protocol)
                 VALUES (1, '', 80, 80, 'sctp');",
            )
            .unwrap();
        let e = list_endpoints(store.read()).unwrap_err();
        assert!(e.cause.contains("sctp"), "{e}");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
