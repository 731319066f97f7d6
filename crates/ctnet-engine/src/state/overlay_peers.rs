//! The remote hosts of each overlay network, as the host agent last programmed them.

use rusqlite::{params, Connection, Row};

use super::bad_column;
use crate::error::{Error, Result};
use crate::model::overlay::Peer;
use crate::model::{MacAddr, NetworkName};

fn peer_from_row(row: &Row<'_>) -> rusqlite::Result<Peer> {
    let block: String = row.get("block")?;
    let underlay: String = row.get("underlay")?;
    let mac: String = row.get("vtep_mac")?;
    let bad = |column: &str, text: &str| {
        bad_column(column, text, Error::invalid(column, "is malformed", ""))
    };
    Ok(Peer {
        block: block.parse().map_err(|_| bad("block", &block))?,
        underlay: underlay.parse().map_err(|_| bad("underlay", &underlay))?,
        vtep_mac: MacAddr::parse("vtep_mac", &mac).map_err(|e| bad_column("vtep_mac", &mac, e))?,
        host: row.get("host")?,
    })
}

/// The peers recorded for one overlay network, by block.
pub fn overlay_peers(conn: &Connection, network: &NetworkName) -> Result<Vec<Peer>> {
    let mut stmt =
        conn.prepare_cached("SELECT * FROM overlay_peers WHERE network = ?1 ORDER BY block")?;
    let rows = stmt.query_map(params![network.as_str()], peer_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Every overlay network's peers.
pub fn list_all_overlay_peers(conn: &Connection) -> Result<Vec<Peer>> {
    let mut stmt = conn.prepare_cached("SELECT * FROM overlay_peers")?;
    let rows = stmt.query_map([], peer_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Records exactly `peers` for the network.
pub fn set_overlay_peers(conn: &Connection, network: &NetworkName, peers: &[Peer]) -> Result<()> {
    conn.execute(
        "DELETE FROM overlay_peers WHERE network = ?1",
        params![network.as_str()],
    )?;
    let mut stmt = conn.prepare_cached(
        "INSERT INTO overlay_peers (network, block, underlay, vtep_mac, host)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for p in peers {
        stmt.execute(params![
            network.as_str(),
            p.block.to_string(),
            p.underlay.to_string(),
            p.vtep_mac.to_string(),
            p.host
        ])?;
    }
    Ok(())
}
