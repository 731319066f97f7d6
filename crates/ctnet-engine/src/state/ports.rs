//! Published ports.

use std::ops::RangeInclusive;

use rusqlite::{params, Connection, Row};

use super::{bad_column, decoded};
use crate::error::Result;
use crate::model::parse_ip;
use crate::model::ports::{Holder, Protocol, PublishedPort};
use crate::model::Endpoint;

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

/// Hands every port endpoint `from` publishes to endpoint `to`; returns how many moved.
pub fn move_ports(conn: &Connection, from: i64, to: i64) -> Result<usize> {
    Ok(conn.execute(
        "UPDATE ports SET endpoint_id = ?2 WHERE endpoint_id = ?1",
        params![from, to],
    )?)
}

fn port_from_row(row: &Row<'_>) -> rusqlite::Result<PublishedPort> {
    let host_ip: String = row.get("host_ip")?;
    let host_ip = match host_ip.as_str() {
        "" => None,
        text => {
            Some(parse_ip("host address", text, None).map_err(|e| bad_column("host_ip", text, e))?)
        }
    };
    Ok(PublishedPort {
        host_ip,
        host_port: row.get("host_port")?,
        container_port: row.get("container_port")?,
        protocol: decoded(row, "protocol", Protocol::parse_stored)?,
    })
}

pub(crate) fn with_ports(conn: &Connection, mut ep: Endpoint) -> Result<Endpoint> {
    // Cached: a listing runs it once per endpoint.
    let mut stmt = conn.prepare_cached(
        "SELECT host_ip, host_port, container_port, protocol FROM ports
         WHERE endpoint_id = ?1 ORDER BY protocol, host_port",
    )?;
    let rows = stmt.query_map([ep.id], port_from_row)?;
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
            let container: String = row.get("container")?;
            let network: String = row.get("network")?;
            Ok(Holder {
                port: port_from_row(row)?,
                holder: format!("container {container:?} on network {network:?}"),
            })
        },
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
