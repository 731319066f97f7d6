//! Networks and their subnets (one per family).

use std::net::IpAddr;

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{bad_column, decoded, owner_from};
use crate::error::{Error, Result};
use crate::model::{
    parse_ip, Driver, Family, Ipam, Isolation, MacvlanConfig, MacvlanMode, Network, NetworkName,
    RowState, Runtime, Subnet, SubnetConfig,
};
use crate::owner::Owner;

/// A network's columns, its subnets folded into one text column (`SUBNET GATEWAY`
/// pairs separated by commas), and its owner.
/// (Columns are read by name; `*` is also less SQL for every process to parse.)
const NETWORK_SELECT: &str = "SELECT *, (SELECT group_concat(subnet || ' ' || gateway, ',')
    FROM subnets WHERE network = name) AS subnets FROM networks";

fn family_number(family: Family) -> i64 {
    match family {
        Family::V4 => 4,
        Family::V6 => 6,
    }
}

/// Decodes `SUBNET GATEWAY,SUBNET GATEWAY`, IPv4 first; none only for a network
/// without IPAM.
fn parse_subnets(text: &str, ipam: Ipam) -> Result<Vec<SubnetConfig>> {
    let mut out = Vec::new();
    for pair in text.split(',').filter(|p| !p.is_empty()) {
        let (subnet, gateway) = pair
            .split_once(' ')
            .ok_or_else(|| Error::invalid(format!("subnet {pair:?}"), "has no gateway", ""))?;
        let subnet = Subnet::parse_stored(subnet)?;
        let gateway = parse_ip("gateway", gateway, Some(subnet.family()))?;
        out.push(SubnetConfig { subnet, gateway });
    }
    if out.is_empty() && ipam != Ipam::None {
        return Err(Error::invalid("network", "has no subnet", ""));
    }
    out.sort_by_key(|s| s.subnet.family());
    Ok(out)
}

fn network_from_row(row: &Row<'_>) -> rusqlite::Result<Network> {
    let subnets: Option<String> = row.get("subnets")?;
    let subnets = subnets.unwrap_or_default();
    let ipam = decoded(row, "ipam", Ipam::parse)?;
    Ok(Network {
        name: decoded(row, "name", NetworkName::new)?,
        id: row.get("id")?,
        driver: decoded(row, "driver", Driver::parse)?,
        subnets: parse_subnets(&subnets, ipam).map_err(|e| bad_column("subnets", &subnets, e))?,
        bridge: decoded(row, "bridge", |t| Ok(ctnet_kernel::IfName::new(t)?))?,
        mtu: row.get("mtu")?,
        internal: row.get("internal")?,
        state: decoded(row, "state", RowState::parse)?,
        created: row.get("created")?,
        icc: row.get("icc")?,
        creator: {
            let word: Option<String> = row.get("creator")?;
            match word {
                Some(w) => Some(Runtime::parse(&w).map_err(|e| bad_column("creator", &w, e))?),
                None => None,
            }
        },
        isolation: decoded(row, "isolation", Isolation::parse)?,
        metric: row.get("metric")?,
        ipam,
        macvlan: macvlan_from(row)?,
        overlay: {
            let text: Option<String> = row.get("overlay")?;
            match text {
                Some(t) => Some(serde_json::from_str(&t).map_err(|e| {
                    bad_column("overlay", &t, Error::invalid("overlay", e.to_string(), ""))
                })?),
                None => None,
            }
        },
        dns: row.get("dns")?,
    })
}

/// A macvlan network's parent and mode, both stored or neither.
fn macvlan_from(row: &Row<'_>) -> rusqlite::Result<Option<MacvlanConfig>> {
    let parent: Option<String> = row.get("macvlan_parent")?;
    let mode: Option<String> = row.get("macvlan_mode")?;
    match (parent, mode) {
        (None, None) => Ok(None),
        (Some(parent), Some(mode)) => Ok(Some(MacvlanConfig {
            parent: ctnet_kernel::IfName::new(&parent)
                .map_err(|e| bad_column("macvlan_parent", &parent, e.into()))?,
            mode: MacvlanMode::parse(&mode).map_err(|e| bad_column("macvlan_mode", &mode, e))?,
        })),
        (parent, mode) => {
            let text = format!("{parent:?} {mode:?}");
            let cause = Error::invalid("macvlan parent and mode", "are not both set", "");
            Err(bad_column("macvlan_parent", &text, cause))
        }
    }
}

fn network_and_owner(row: &Row<'_>) -> rusqlite::Result<(Network, Option<Owner>)> {
    Ok((network_from_row(row)?, owner_from(row)?))
}

/// Records a network and its subnets with the given state and owner.
pub fn insert_network(conn: &Connection, net: &Network, owner: Option<&Owner>) -> Result<()> {
    conn.execute(
        "INSERT INTO networks (name, id, driver, bridge, mtu, internal, state, owner_pid, owner_start, created, icc, creator,
                               isolation, metric, ipam, macvlan_parent, macvlan_mode, dns, overlay)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
        params![
            net.name.as_str(),
            net.id,
            net.driver.as_str(),
            net.bridge.as_str(),
            net.mtu,
            net.internal,
            net.state.as_str(),
            owner.map(|o| o.pid),
            owner.map(|o| o.start),
            net.created,
            net.icc,
            net.creator.map(Runtime::as_str),
            net.isolation.as_str(),
            net.metric,
            net.ipam.as_str(),
            net.macvlan.as_ref().map(|m| m.parent.as_str()),
            net.macvlan.as_ref().map(|m| m.mode.as_str()),
            net.dns,
            net.overlay
                .as_ref()
                .map(|o| serde_json::to_string(o).expect("an overlay config serializes")),
        ],
    )?;
    let mut stmt = conn.prepare(
        "INSERT INTO subnets (network, family, subnet, gateway) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for s in &net.subnets {
        stmt.execute(params![
            net.name.as_str(),
            family_number(s.subnet.family()),
            s.subnet.to_string(),
            s.gateway.to_string()
        ])?;
    }
    Ok(())
}

/// A network by name.
pub fn get_network(conn: &Connection, name: &NetworkName) -> Result<Option<Network>> {
    Ok(conn
        .query_row(
            &format!("{NETWORK_SELECT} WHERE name = ?1"),
            [name.as_str()],
            network_from_row,
        )
        .optional()?)
}

/// Whether network `name` exists and has DNS on: one column, for a detach, which only
/// needs to know whether to tell the agent.
pub fn network_has_dns(conn: &Connection, name: &NetworkName) -> Result<bool> {
    let mut stmt = conn.prepare_cached("SELECT dns FROM networks WHERE name = ?1")?;
    let dns: Option<bool> = stmt.query_row([name.as_str()], |r| r.get(0)).optional()?;
    Ok(dns.unwrap_or(false))
}

/// All networks, sorted by name.
pub fn list_networks(conn: &Connection) -> Result<Vec<Network>> {
    let mut stmt = conn.prepare_cached(&format!("{NETWORK_SELECT} ORDER BY name"))?;
    let rows = stmt.query_map([], network_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Sets a network's state and owner.
pub fn set_network_state(
    conn: &Connection,
    name: &NetworkName,
    state: RowState,
    owner: Option<&Owner>,
) -> Result<()> {
    conn.execute(
        "UPDATE networks SET state = ?2, owner_pid = ?3, owner_start = ?4 WHERE name = ?1",
        params![
            name.as_str(),
            state.as_str(),
            owner.map(|o| o.pid),
            owner.map(|o| o.start)
        ],
    )?;
    Ok(())
}

/// Takes over a network whose create or remove nobody is finishing; see
/// [`super::claim_endpoint`].
pub fn claim_network(
    conn: &Connection,
    name: &NetworkName,
    me: &Owner,
    abandoned: impl Fn(&Network, Option<&Owner>) -> bool,
) -> Result<Option<Network>> {
    let row = conn
        .query_row(
            &format!("{NETWORK_SELECT} WHERE name = ?1"),
            [name.as_str()],
            network_and_owner,
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

/// Forgets a network (its subnets go with it).
pub fn delete_network(conn: &Connection, name: &NetworkName) -> Result<()> {
    conn.execute("DELETE FROM networks WHERE name = ?1", [name.as_str()])?;
    Ok(())
}

/// Networks in a transitional state together with the process that put them there.
pub fn unsettled_networks(conn: &Connection) -> Result<Vec<(Network, Option<Owner>)>> {
    let mut stmt = conn.prepare(&format!("{NETWORK_SELECT} WHERE state != 'ready'"))?;
    let rows = stmt.query_map([], network_and_owner)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The address the network's subnet of `family` handed out last, where its next
/// allocation resumes.
pub fn last_allocated(
    conn: &Connection,
    network: &NetworkName,
    family: Family,
) -> Result<Option<IpAddr>> {
    let last: Option<String> = conn
        .query_row(
            "SELECT last_ip FROM subnets WHERE network = ?1 AND family = ?2",
            params![network.as_str(), family_number(family)],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    last.map(|t| parse_ip("allocation cursor", &t, Some(family)))
        .transpose()
}

/// Records the address the network's subnet of its family handed out last.
pub fn set_last_allocated(conn: &Connection, network: &NetworkName, ip: IpAddr) -> Result<()> {
    conn.execute(
        "UPDATE subnets SET last_ip = ?3 WHERE network = ?1 AND family = ?2",
        params![
            network.as_str(),
            family_number(Family::of(ip)),
            ip.to_string()
        ],
    )?;
    Ok(())
}
