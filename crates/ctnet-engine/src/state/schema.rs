//! The database schema and its upgrades from every earlier version.
//!
//! SQLite keeps each CREATE statement's text and parses it again in every process that
//! opens the database, so comments go outside the statements.

use rusqlite::Connection;

use crate::error::Result;

/// The version this code writes (`PRAGMA user_version`).
pub const VERSION: i64 = 12;

/// The schema's parts. A network has one `subnets` row per family, each with its
/// gateway and `last_ip`, the address that subnet handed out last (allocation resumes
/// after it); an endpoint has one `addresses` row per family of its network. Addresses
/// are stored in their canonical text form, so equal addresses are equal strings. Both
/// tables are clustered on the key they are read by (`WITHOUT ROWID`): an endpoint's
/// addresses and a network's subnets are one range of their primary key, with no
/// second index for every process to parse and every attach to write.
/// Version 7 adds what identifies an endpoint's namespace beyond its inode (which the
/// kernel reuses): `netns_cookie` and `boot_id`, written when the endpoint becomes
/// ready (NULL before that, and in rows from earlier versions; see `ops/stale.rs` for
/// how such rows are judged), and a network's `creator`, the front end that made it
/// on first use (NULL: ctnet's own commands), so a front end removes only its own.
/// Version 8 adds a network's `isolation` (`open`, `isolated`, `strict`), the `metric`
/// of its default routes (NULL: the driver's default), its `ipam` (`ctnet`, `none`) and,
/// for the macvlan driver, `macvlan_parent` and `macvlan_mode` (NULL otherwise); rows
/// from earlier versions become strict, no metric, ctnet IPAM (what they were).
/// Version 9 lets an endpoint's `host_ifname` be NULL: a macvlan endpoint has no host
/// side (UNIQUE still holds among the names, as SQLite allows many NULLs).
/// Version 10 adds a network's `dns` (the host agent serves container names on its
/// gateways; rows from earlier versions: off, what they were) and the `dns_names` an
/// endpoint answers to on its network (see [`DNS_NAMES`]).
/// Version 11 adds an endpoint's `labels` and the network `policies` (see [`POLICIES`]).
/// Version 12 adds a network's `overlay` (this host's part of an overlay network, as
/// JSON: `model::overlay::OverlayConfig`; NULL for every other driver) and the
/// `overlay_peers` the host agent last programmed (see [`OVERLAY_PEERS`]).
/// The tables a version 6 upgrade makes anew (see [`upgrade`]).
const NETWORKS: &str = "
CREATE TABLE IF NOT EXISTS networks (
    name        TEXT PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    driver      TEXT NOT NULL,
    bridge      TEXT NOT NULL UNIQUE,
    mtu         INTEGER,
    internal    INTEGER NOT NULL,
    state       TEXT NOT NULL,
    owner_pid   INTEGER,
    owner_start INTEGER,
    created     INTEGER NOT NULL,
    icc         INTEGER NOT NULL DEFAULT 1,
    creator     TEXT,
    isolation   TEXT NOT NULL DEFAULT 'strict',
    metric      INTEGER,
    ipam        TEXT NOT NULL DEFAULT 'ctnet',
    macvlan_parent TEXT,
    macvlan_mode   TEXT,
    dns         INTEGER NOT NULL DEFAULT 0,
    overlay     TEXT
);
";
const SUBNETS: &str = "
CREATE TABLE IF NOT EXISTS subnets (
    network     TEXT NOT NULL REFERENCES networks(name) ON DELETE CASCADE,
    family      INTEGER NOT NULL,
    subnet      TEXT NOT NULL UNIQUE,
    gateway     TEXT NOT NULL,
    last_ip     TEXT,
    PRIMARY KEY (network, family)
) WITHOUT ROWID;
";
const ENDPOINTS: &str = "
CREATE TABLE IF NOT EXISTS endpoints (
    id            INTEGER PRIMARY KEY,
    network       TEXT NOT NULL REFERENCES networks(name),
    container     TEXT NOT NULL,
    netns_path    TEXT NOT NULL,
    netns_inode   INTEGER NOT NULL,
    ifname        TEXT NOT NULL,
    host_ifname   TEXT UNIQUE,
    mac           TEXT NOT NULL,
    default_route INTEGER NOT NULL,
    netns_owned   INTEGER NOT NULL,
    state         TEXT NOT NULL,
    owner_pid     INTEGER,
    owner_start   INTEGER,
    created       INTEGER NOT NULL,
    netns_cookie  INTEGER,
    boot_id       TEXT,
    UNIQUE (network, netns_inode)
);
";
const ADDRESSES: &str = "
CREATE TABLE IF NOT EXISTS addresses (
    endpoint_id INTEGER NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    network     TEXT NOT NULL,
    ip          TEXT NOT NULL,
    PRIMARY KEY (endpoint_id, ip),
    UNIQUE (network, ip)
) WITHOUT ROWID;
";
/// The names an endpoint answers to in its network's DNS: `seq` 0 is the container's own
/// name, 1 and up its aliases in the order given. A name is one container's on a network
/// (UNIQUE), which is also the one look-up an attach's clash check makes; the primary key
/// clusters an endpoint's names for reading it back (as `addresses`).
const DNS_NAMES: &str = "
CREATE TABLE IF NOT EXISTS dns_names (
    endpoint_id INTEGER NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    network     TEXT NOT NULL,
    name        TEXT NOT NULL,
    PRIMARY KEY (endpoint_id, seq),
    UNIQUE (network, name)
) WITHOUT ROWID;
";
/// An endpoint's labels (`--label KEY=VALUE`), one row each, clustered by endpoint as
/// `addresses`.
const LABELS: &str = "
CREATE TABLE IF NOT EXISTS labels (
    endpoint_id INTEGER NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    PRIMARY KEY (endpoint_id, key)
) WITHOUT ROWID;
";
/// Network policies: `spec` is the policy as JSON (`model::policy::Policy`), whose parts
/// are only ever read whole. They go with their network.
const POLICIES: &str = "
CREATE TABLE IF NOT EXISTS policies (
    name        TEXT PRIMARY KEY,
    network     TEXT NOT NULL REFERENCES networks(name) ON DELETE CASCADE,
    spec        TEXT NOT NULL,
    created     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS policies_by_network ON policies (network);
";
/// The remote hosts of an overlay network as the agent last programmed them (a route,
/// a neighbour and an FDB entry each): the firewall's audit restores the VXLAN sources
/// it admits from here, and drift checks compare the kernel's entries with them, while
/// etcd may be out of reach. They go with their network.
const OVERLAY_PEERS: &str = "
CREATE TABLE IF NOT EXISTS overlay_peers (
    network     TEXT NOT NULL REFERENCES networks(name) ON DELETE CASCADE,
    block       TEXT NOT NULL,
    underlay    TEXT NOT NULL,
    vtep_mac    TEXT NOT NULL,
    host        TEXT NOT NULL,
    PRIMARY KEY (network, block)
) WITHOUT ROWID;
";
/// Indexes and the tables no upgrade rebuilds.
const THE_REST: &str = "CREATE INDEX IF NOT EXISTS endpoints_by_netns ON endpoints (netns_inode);
-- Version 7: a runtime's container id (the label) is looked up on every CNI ADD, DEL
-- and netavark setup and teardown.
CREATE INDEX IF NOT EXISTS endpoints_by_container ON endpoints (container);
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

/// The schema, whole: every statement is idempotent (`IF NOT EXISTS`), so it also
/// completes an upgraded database.
pub fn schema() -> String {
    [
        NETWORKS,
        SUBNETS,
        ENDPOINTS,
        ADDRESSES,
        DNS_NAMES,
        LABELS,
        POLICIES,
        OVERLAY_PEERS,
        THE_REST,
    ]
    .concat()
}

/// Version 6 moves each network's subnet, gateway and cursor into `subnets` (one row per
/// family) and each endpoint's address into `addresses`. SQLite cannot drop a column
/// that a UNIQUE constraint names, so `networks` and `endpoints` are rebuilt; the
/// caller runs this with foreign keys off (they cannot be switched inside a
/// transaction), so dropping the old tables does not cascade. The v5 cursor was the
/// IPv4 address as a number. The tables it makes have the current shape (the columns
/// later versions added are NULL or their defaults in upgraded rows), so the steps of
/// versions 7, 8 and 10's network column are only for versions 6 and up.
fn to_v6() -> String {
    let renamed = |table: &str, old: &str, new: &str| {
        table.replace(&format!("IF NOT EXISTS {old} ("), &format!("{new} ("))
    };
    format!(
        "
{subnets}INSERT INTO subnets (network, family, subnet, gateway, last_ip)
    SELECT name, 4, subnet, gateway,
           CASE WHEN last_ip IS NULL THEN NULL ELSE
               ((last_ip >> 24) & 255) || '.' || ((last_ip >> 16) & 255) || '.' ||
               ((last_ip >> 8) & 255) || '.' || (last_ip & 255) END
    FROM networks;
{networks_v6}INSERT INTO networks_v6 (name, id, driver, bridge, mtu, internal, state, owner_pid,
    owner_start, created, icc) SELECT name, id, driver, bridge, mtu, internal, state, owner_pid,
    owner_start, created, icc FROM networks;
{addresses}INSERT INTO addresses (endpoint_id, network, ip) SELECT id, network, ip FROM endpoints;
{endpoints_v6}INSERT INTO endpoints_v6 (id, network, container, netns_path, netns_inode, ifname,
    host_ifname, mac, default_route, netns_owned, state, owner_pid, owner_start, created)
    SELECT id, network, container, netns_path, netns_inode, ifname,
    host_ifname, mac, default_route, netns_owned, state, owner_pid, owner_start, created
    FROM endpoints;
DROP TABLE endpoints;
DROP TABLE networks;
ALTER TABLE networks_v6 RENAME TO networks;
ALTER TABLE endpoints_v6 RENAME TO endpoints;
",
        subnets = SUBNETS,
        networks_v6 = renamed(NETWORKS, "networks", "networks_v6"),
        addresses = ADDRESSES,
        endpoints_v6 = renamed(ENDPOINTS, "endpoints", "endpoints_v6"),
    )
}

/// Version 9 rebuilds `endpoints` so `host_ifname` may be NULL (SQLite cannot drop a
/// NOT NULL in place); run with foreign keys off, as [`to_v6`], so `addresses` and
/// `ports` keep their rows. The indexes on `endpoints` go with the old table and are
/// made again by the schema.
fn to_v9() -> String {
    format!(
        "
{endpoints_v9}INSERT INTO endpoints_v9 (id, network, container, netns_path, netns_inode, ifname,
    host_ifname, mac, default_route, netns_owned, state, owner_pid, owner_start, created,
    netns_cookie, boot_id)
    SELECT id, network, container, netns_path, netns_inode, ifname,
    host_ifname, mac, default_route, netns_owned, state, owner_pid, owner_start, created,
    netns_cookie, boot_id
    FROM endpoints;
DROP TABLE endpoints;
ALTER TABLE endpoints_v9 RENAME TO endpoints;
",
        endpoints_v9 = ENDPOINTS.replace("IF NOT EXISTS endpoints (", "endpoints_v9 ("),
    )
}

/// Version 8's network columns, for a version 6 or 7 table.
const V8_COLUMNS: &str = "ALTER TABLE networks ADD COLUMN isolation TEXT NOT NULL DEFAULT 'strict';
ALTER TABLE networks ADD COLUMN metric INTEGER;
ALTER TABLE networks ADD COLUMN ipam TEXT NOT NULL DEFAULT 'ctnet';
ALTER TABLE networks ADD COLUMN macvlan_parent TEXT;
ALTER TABLE networks ADD COLUMN macvlan_mode TEXT;";

/// Brings a database of `version` (0 for a new one) to [`VERSION`], inside the caller's
/// transaction.
pub fn upgrade(tx: &Connection, version: i64) -> Result<()> {
    if version == 1 {
        // Version 2 added per-network icc and the ports table; versions 3 and 4 only
        // change indexes, which the schema does.
        tx.execute_batch("ALTER TABLE networks ADD COLUMN icc INTEGER NOT NULL DEFAULT 1")?;
    }
    if (1..5).contains(&version) {
        // Version 5: each network's allocation cursor.
        tx.execute_batch("ALTER TABLE networks ADD COLUMN last_ip INTEGER")?;
    }
    if (1..6).contains(&version) {
        tx.execute_batch(&to_v6())?;
    }
    if version == 6 {
        tx.execute_batch(
            "ALTER TABLE endpoints ADD COLUMN netns_cookie INTEGER;
             ALTER TABLE endpoints ADD COLUMN boot_id TEXT;
             ALTER TABLE networks ADD COLUMN creator TEXT;",
        )?;
    }
    if (6..8).contains(&version) {
        tx.execute_batch(V8_COLUMNS)?;
    }
    if (6..9).contains(&version) {
        // Below 6, `to_v6` made the table in today's shape already.
        tx.execute_batch(&to_v9())?;
    }
    if (6..10).contains(&version) {
        // Version 10: networks made before had no DNS (the table `dns_names` is new,
        // made by the schema).
        tx.execute_batch("ALTER TABLE networks ADD COLUMN dns INTEGER NOT NULL DEFAULT 0")?;
    }
    if (6..12).contains(&version) {
        // Version 12: no network was an overlay before.
        tx.execute_batch("ALTER TABLE networks ADD COLUMN overlay TEXT")?;
    }
    tx.execute_batch(&schema())?;
    tx.pragma_update(None, "user_version", VERSION)?;
    Ok(())
}
