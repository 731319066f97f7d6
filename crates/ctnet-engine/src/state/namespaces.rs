//! Namespaces made by `ctnet run`, which live as long as its process.

use rusqlite::{params, Connection};

use crate::error::Result;
use crate::owner::Owner;

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
