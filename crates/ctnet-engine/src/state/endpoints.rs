//! Endpoints (a container's attachment to a network) and their addresses.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::PathBuf;

use ctnet_kernel::IfName;
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{bad_column, decoded, now, owner_from, with_ports};
use crate::error::Result;
use crate::model::policy::Labels;
use crate::model::{
    parse_ip, DnsName, Endpoint, Family, MacAddr, NamedEndpoint, NetnsIdentity, NetworkName,
    RowState,
};
use crate::owner::Owner;

/// An endpoint's columns, its addresses folded into one column, its DNS name and its
/// aliases (one column, in order), and its owner.
/// (Columns are read by name; `*` is also less SQL for every process to parse.)
const ENDPOINT_SELECT: &str = "SELECT *, (SELECT group_concat(ip, ' ') FROM addresses
    WHERE endpoint_id = endpoints.id) AS ips,
    (SELECT name FROM dns_names WHERE endpoint_id = endpoints.id AND seq = 0) AS dns_name,
    (SELECT group_concat(name, ' ') FROM (SELECT name FROM dns_names
        WHERE endpoint_id = endpoints.id AND seq > 0 ORDER BY seq)) AS aliases,
    (SELECT group_concat(key || '=' || value, ' ') FROM labels
        WHERE endpoint_id = endpoints.id) AS labels
    FROM endpoints";

fn parse_ips(text: &str) -> crate::error::Result<Vec<IpAddr>> {
    let mut ips = text
        .split(' ')
        .filter(|t| !t.is_empty())
        .map(|t| parse_ip("address", t, None))
        .collect::<Result<Vec<_>>>()?;
    // IPv4 first, as every listing shows them.
    ips.sort_by_key(|ip| ip.is_ipv6());
    Ok(ips)
}

/// The host side's name; NULL for a macvlan endpoint, which has none (version 9).
fn optional_ifname(row: &Row<'_>) -> rusqlite::Result<Option<IfName>> {
    let text: Option<String> = row.get("host_ifname")?;
    text.map(|t| IfName::new(&t).map_err(|e| bad_column("host_ifname", &t, e.into())))
        .transpose()
}

fn endpoint_from_row(row: &Row<'_>) -> rusqlite::Result<Endpoint> {
    let ips: Option<String> = row.get("ips")?;
    let ips = ips.unwrap_or_default();
    let inode: i64 = row.get("netns_inode")?;
    let netns_path: String = row.get("netns_path")?;
    Ok(Endpoint {
        id: row.get("id")?,
        network: decoded(row, "network", NetworkName::new)?,
        container: row.get("container")?,
        netns_path: PathBuf::from(netns_path),
        netns_inode: inode as u64,
        ifname: decoded(row, "ifname", |t| Ok(IfName::new(t)?))?,
        host_ifname: optional_ifname(row)?,
        ips: parse_ips(&ips).map_err(|e| bad_column("ips", &ips, e))?,
        mac: decoded(row, "mac", |t| MacAddr::parse("mac", t))?,
        default_routes: default_routes_from(row.get("default_route")?),
        netns_owned: row.get("netns_owned")?,
        state: decoded(row, "state", RowState::parse)?,
        ports: Vec::new(),
        identity: identity_from(row)?,
        name: optional_dns_name(row)?,
        aliases: aliases_from(row)?,
        labels: labels_from(row)?,
    })
}

/// The labels (version 11; none in older rows). Neither keys nor values hold a space or
/// `=`, so one column carries them.
fn labels_from(row: &Row<'_>) -> rusqlite::Result<Labels> {
    let text: Option<String> = row.get("labels")?;
    let text = text.unwrap_or_default();
    let pairs: Vec<&str> = text.split(' ').filter(|t| !t.is_empty()).collect();
    Labels::parse(&pairs).map_err(|e| bad_column("labels", &text, e))
}

/// The container's own DNS name on the network (version 10; none in older rows).
fn optional_dns_name(row: &Row<'_>) -> rusqlite::Result<Option<DnsName>> {
    let text: Option<String> = row.get("dns_name")?;
    text.map(|t| DnsName::new(&t).map_err(|e| bad_column("dns_names", &t, e)))
        .transpose()
}

/// The aliases, in the order given.
fn aliases_from(row: &Row<'_>) -> rusqlite::Result<Vec<DnsName>> {
    let text: Option<String> = row.get("aliases")?;
    let text = text.unwrap_or_default();
    text.split(' ')
        .filter(|t| !t.is_empty())
        .map(|t| DnsName::alias(t).map_err(|e| bad_column("dns_names", t, e)))
        .collect()
}

/// The namespace's cookie and boot id (version 7; NULL in older rows and in rows not
/// ready yet).
fn identity_from(row: &Row<'_>) -> rusqlite::Result<Option<NetnsIdentity>> {
    let cookie: Option<i64> = row.get("netns_cookie")?;
    let boot_id: Option<String> = row.get("boot_id")?;
    Ok(cookie.zip(boot_id).map(|(cookie, boot_id)| NetnsIdentity {
        cookie: cookie as u64,
        boot_id,
    }))
}

/// The `default_route` column: a bit per family whose default route the endpoint
/// installed, IPv4 1 and IPv6 2 (so the 1 of a version 5 row, from before IPv6, reads
/// as IPv4).
fn default_routes_bits(families: &[Family]) -> i64 {
    families
        .iter()
        .map(|f| match f {
            Family::V4 => 1,
            Family::V6 => 2,
        })
        .sum()
}

fn default_routes_from(bits: i64) -> Vec<Family> {
    [(1, Family::V4), (2, Family::V6)]
        .into_iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|(_, family)| family)
        .collect()
}

fn endpoint_and_owner(row: &Row<'_>) -> rusqlite::Result<(Endpoint, Option<Owner>)> {
    Ok((endpoint_from_row(row)?, owner_from(row)?))
}

/// Records an endpoint and its addresses; returns its row id.
pub fn insert_endpoint(conn: &Connection, ep: &Endpoint, owner: Option<&Owner>) -> Result<i64> {
    conn.execute(
        "INSERT INTO endpoints (network, container, netns_path, netns_inode, ifname, host_ifname, mac,
                                default_route, netns_owned, state, owner_pid, owner_start, created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            ep.network.as_str(),
            ep.container,
            ep.netns_path.to_string_lossy(),
            ep.netns_inode as i64,
            ep.ifname.as_str(),
            ep.host_ifname.as_ref().map(IfName::as_str),
            ep.mac.to_string(),
            default_routes_bits(&ep.default_routes),
            ep.netns_owned,
            ep.state.as_str(),
            owner.map(|o| o.pid),
            owner.map(|o| o.start),
            now()
        ],
    )?;
    let id = conn.last_insert_rowid();
    let mut stmt = conn
        .prepare_cached("INSERT INTO addresses (endpoint_id, network, ip) VALUES (?1, ?2, ?3)")?;
    for ip in &ep.ips {
        stmt.execute(params![id, ep.network.as_str(), ip.to_string()])?;
    }
    if !ep.labels.is_empty() {
        let mut stmt = conn
            .prepare_cached("INSERT INTO labels (endpoint_id, key, value) VALUES (?1, ?2, ?3)")?;
        for (key, value) in ep.labels.iter() {
            stmt.execute(params![id, key.as_str(), value.as_str()])?;
        }
    }
    if ep.dns_names().next().is_some() {
        let mut stmt = conn.prepare_cached(
            "INSERT INTO dns_names (endpoint_id, seq, network, name) VALUES (?1, ?2, ?3, ?4)",
        )?;
        let aliases = ep.aliases.iter().zip(1..);
        for (name, seq) in ep.name.iter().map(|n| (n, 0)).chain(aliases) {
            stmt.execute(params![id, seq, ep.network.as_str(), name.as_str()])?;
        }
    }
    Ok(id)
}

/// The container on `network` that answers to `name` (its name or an alias), if any.
pub fn dns_name_holder(
    conn: &Connection,
    network: &NetworkName,
    name: &DnsName,
) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT e.container FROM dns_names d JOIN endpoints e ON e.id = d.endpoint_id
             WHERE d.network = ?1 AND d.name = ?2",
            params![network.as_str(), name.as_str()],
            |r| r.get(0),
        )
        .optional()?)
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

/// Marks an endpoint ready, with its owner and its namespace's identity (read while
/// it was built; None on a kernel without namespace cookies).
pub fn set_endpoint_ready(
    conn: &Connection,
    id: i64,
    owner: Option<&Owner>,
    identity: Option<&NetnsIdentity>,
) -> Result<()> {
    conn.execute(
        "UPDATE endpoints SET state = 'ready', owner_pid = ?2, owner_start = ?3,
                              netns_cookie = ?4, boot_id = ?5 WHERE id = ?1",
        params![
            id,
            owner.map(|o| o.pid),
            owner.map(|o| o.start),
            identity.map(|i| i.cookie as i64),
            identity.map(|i| i.boot_id.as_str())
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
            &format!("{ENDPOINT_SELECT} WHERE id = ?1"),
            [id],
            endpoint_and_owner,
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

/// Forgets an endpoint (its addresses and ports go with it).
pub fn delete_endpoint(conn: &Connection, id: i64) -> Result<()> {
    conn.execute("DELETE FROM endpoints WHERE id = ?1", [id])?;
    Ok(())
}

fn query_endpoints(
    conn: &Connection,
    filter: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<Endpoint>> {
    let mut stmt = conn.prepare_cached(&format!("{ENDPOINT_SELECT} {filter} ORDER BY id"))?;
    let rows = stmt.query_map(args, endpoint_from_row)?;
    let endpoints: Vec<Endpoint> = rows.collect::<rusqlite::Result<_>>()?;
    endpoints
        .into_iter()
        .map(|ep| with_ports(conn, ep))
        .collect()
}

/// The id, network, names and addresses of ready endpoints: what DNS answers from, in
/// five columns (the agent reads them after every change, so no other column is read).
const NAMED_SELECT: &str = "SELECT id, network,
    (SELECT group_concat(ip, ' ') FROM addresses WHERE endpoint_id = endpoints.id),
    (SELECT name FROM dns_names WHERE endpoint_id = endpoints.id AND seq = 0),
    (SELECT group_concat(name, ' ') FROM (SELECT name FROM dns_names
        WHERE endpoint_id = endpoints.id AND seq > 0 ORDER BY seq))
    FROM endpoints WHERE state = 'ready'";

fn named_from_row(row: &Row<'_>) -> rusqlite::Result<NamedEndpoint> {
    let text = |i: usize| -> rusqlite::Result<String> {
        Ok(row.get::<_, Option<String>>(i)?.unwrap_or_default())
    };
    let (ips, name, aliases) = (text(2)?, text(3)?, text(4)?);
    let mut names = Vec::new();
    if !name.is_empty() {
        names.push(DnsName::new(&name).map_err(|e| bad_column("dns_names", &name, e))?);
    }
    for alias in aliases.split(' ').filter(|t| !t.is_empty()) {
        names.push(DnsName::alias(alias).map_err(|e| bad_column("dns_names", alias, e))?);
    }
    Ok(NamedEndpoint {
        id: row.get(0)?,
        network: decoded(row, "network", NetworkName::new)?,
        names,
        ips: parse_ips(&ips).map_err(|e| bad_column("ips", &ips, e))?,
    })
}

/// Every ready endpoint's names and addresses, by id.
pub fn list_named_endpoints(conn: &Connection) -> Result<Vec<NamedEndpoint>> {
    let mut stmt = conn.prepare_cached(&format!("{NAMED_SELECT} ORDER BY id"))?;
    let rows = stmt.query_map([], named_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// One endpoint's names and addresses, if it is ready.
pub fn named_endpoint(conn: &Connection, id: i64) -> Result<Option<NamedEndpoint>> {
    let mut stmt = conn.prepare_cached(&format!("{NAMED_SELECT} AND id = ?1"))?;
    Ok(stmt.query_row([id], named_from_row).optional()?)
}

/// The gateways of the DNS networks a namespace is on (endpoints not being removed), by
/// the namespace's inode and path: the nameservers its resolv.conf names. One short
/// statement: every attach to a DNS network asks it, and the whole endpoint and network
/// selects cost several times more to parse than this costs to run.
pub fn dns_gateways_of_netns(conn: &Connection, inode: u64, path: &str) -> Result<Vec<IpAddr>> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.gateway FROM endpoints e
         JOIN networks n ON n.name = e.network AND n.dns
         JOIN subnets s ON s.network = e.network
         WHERE e.netns_inode = ?1 AND e.netns_path = ?2 AND e.state != 'removing'
         ORDER BY e.id, s.family",
    )?;
    let rows = stmt.query_map(params![inode as i64, path], |row| {
        let text: String = row.get(0)?;
        parse_ip("gateway", &text, None).map_err(|e| bad_column("gateway", &text, e))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// All endpoints.
pub fn list_endpoints(conn: &Connection) -> Result<Vec<Endpoint>> {
    query_endpoints(conn, "", [])
}

/// Endpoints on one network.
pub fn endpoints_of_network(conn: &Connection, network: &NetworkName) -> Result<Vec<Endpoint>> {
    query_endpoints(conn, "WHERE network = ?1", [network.as_str()])
}

/// Endpoints inside one namespace (by inode).
pub fn endpoints_in_netns(conn: &Connection, inode: u64) -> Result<Vec<Endpoint>> {
    query_endpoints(conn, "WHERE netns_inode = ?1", [inode as i64])
}

/// Whether any endpoint is inside the namespace with `inode`: one look-up in the
/// namespace index. An attach asks it before reading its siblings, since a container's
/// first attach has none and the endpoint select, with its four subqueries, costs about
/// ten times as much to prepare (a tenth of a whole attach's instructions).
pub fn netns_has_endpoints(conn: &Connection, inode: u64) -> Result<bool> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM endpoints WHERE netns_inode = ?1)",
        [inode as i64],
        |r| r.get(0),
    )?)
}

/// Endpoints of a container label (used when its namespace is gone).
pub fn endpoints_of_container(conn: &Connection, label: &str) -> Result<Vec<Endpoint>> {
    query_endpoints(conn, "WHERE container = ?1", [label])
}

/// The namespace path of an endpoint of container `label` on `network` in a namespace
/// other than `inode`, if any: one look-up in the container index, asked on every
/// runtime's attach (a statement this small costs far less to prepare than a second
/// condition on the endpoint select).
pub fn same_container_elsewhere(
    conn: &Connection,
    label: &str,
    network: &NetworkName,
    inode: u64,
) -> Result<Option<PathBuf>> {
    let path: Option<String> = conn
        .query_row(
            "SELECT netns_path FROM endpoints
             WHERE container = ?1 AND network = ?2 AND netns_inode != ?3",
            params![label, network.as_str(), inode as i64],
            |r| r.get(0),
        )
        .optional()?;
    Ok(path.map(PathBuf::from))
}

/// Endpoints in a transitional state, or owned by a process, with their owners.
pub fn owned_endpoints(conn: &Connection) -> Result<Vec<(Endpoint, Option<Owner>)>> {
    let mut stmt = conn.prepare(&format!(
        "{ENDPOINT_SELECT} WHERE state != 'ready' OR owner_pid IS NOT NULL"
    ))?;
    let rows = stmt.query_map([], endpoint_and_owner)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
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
    network: &'c NetworkName,
    asked: usize,
    pub(super) all: Option<HashSet<IpAddr>>,
}

impl<'c> HeldAddresses<'c> {
    /// Look-ups one by one before reading every address at once.
    const LOOKUPS: usize = 32;

    /// Questions about `network`'s addresses.
    pub fn new(conn: &'c Connection, network: &'c NetworkName) -> Self {
        HeldAddresses {
            conn,
            network,
            asked: 0,
            all: None,
        }
    }

    /// True when an endpoint of the network holds `ip`.
    pub fn contains(&mut self, ip: IpAddr) -> Result<bool> {
        self.asked += 1;
        if self.all.is_none() && self.asked > Self::LOOKUPS {
            self.all = Some(self.read_all()?);
        }
        match &self.all {
            Some(all) => Ok(all.contains(&ip)),
            None => {
                let mut stmt = self
                    .conn
                    .prepare_cached("SELECT 1 FROM addresses WHERE network = ?1 AND ip = ?2")?;
                Ok(stmt.exists(params![self.network.as_str(), ip.to_string()])?)
            }
        }
    }

    fn read_all(&self) -> Result<HashSet<IpAddr>> {
        let mut stmt = self
            .conn
            .prepare("SELECT ip FROM addresses WHERE network = ?1")?;
        let rows = stmt.query_map([self.network.as_str()], |r| r.get::<_, String>(0))?;
        let mut all = HashSet::new();
        for ip in rows {
            all.insert(parse_ip("address", &ip?, None)?);
        }
        Ok(all)
    }
}

/// The container holding an address on a network, if any.
pub fn address_holder(
    conn: &Connection,
    network: &NetworkName,
    ip: IpAddr,
) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT e.container FROM addresses a JOIN endpoints e ON e.id = a.endpoint_id
             WHERE a.network = ?1 AND a.ip = ?2",
            params![network.as_str(), ip.to_string()],
            |r| r.get(0),
        )
        .optional()?)
}

/// The container of another endpoint (not row `except`) on `network` with hardware
/// address `mac`, if there is one.
pub fn mac_holder(
    conn: &Connection,
    network: &NetworkName,
    mac: MacAddr,
    except: i64,
) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT container FROM endpoints WHERE network = ?1 AND mac = ?2 AND id != ?3",
            params![network.as_str(), mac.to_string(), except],
            |r| r.get(0),
        )
        .optional()?)
}

/// Records another hardware address for endpoint `id` (one made while it is reserved).
pub fn set_endpoint_mac(conn: &Connection, id: i64, mac: MacAddr) -> Result<()> {
    conn.execute(
        "UPDATE endpoints SET mac = ?2 WHERE id = ?1",
        params![id, mac.to_string()],
    )?;
    Ok(())
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
