//! Network policies, each stored whole as JSON beside its name and network.

use rusqlite::{params, Connection, OptionalExtension};

use super::{bad_column, now};
use crate::error::{Error, Result};
use crate::model::policy::{Policy, PolicyName};
use crate::model::NetworkName;

fn policy_from(text: &str) -> rusqlite::Result<Policy> {
    serde_json::from_str(text).map_err(|e| {
        bad_column(
            "policies.spec",
            text,
            Error::invalid(
                "stored policy",
                e.to_string(),
                "remove it with `ctnet policy rm`",
            ),
        )
    })
}

/// Records a policy; a name already used is refused by the primary key (the caller
/// checks first, to say so clearly).
pub fn insert_policy(conn: &Connection, policy: &Policy) -> Result<()> {
    let spec = serde_json::to_string(policy).expect("a policy serializes");
    conn.execute(
        "INSERT INTO policies (name, network, spec, created) VALUES (?1, ?2, ?3, ?4)",
        params![policy.name.as_str(), policy.network.as_str(), spec, now()],
    )?;
    Ok(())
}

/// The policy of that name, if any.
pub fn get_policy(conn: &Connection, name: &PolicyName) -> Result<Option<Policy>> {
    let mut stmt = conn.prepare_cached("SELECT spec FROM policies WHERE name = ?1")?;
    let text: Option<String> = stmt
        .query_row([name.as_str()], |row| row.get(0))
        .optional()?;
    Ok(text.as_deref().map(policy_from).transpose()?)
}

/// Deletes a policy; true when there was one.
pub fn delete_policy(conn: &Connection, name: &PolicyName) -> Result<bool> {
    Ok(conn.execute("DELETE FROM policies WHERE name = ?1", [name.as_str()])? > 0)
}

/// Every policy, by name.
pub fn list_policies(conn: &Connection) -> Result<Vec<Policy>> {
    let mut stmt = conn.prepare_cached("SELECT spec FROM policies ORDER BY name")?;
    let rows = stmt.query_map([], |row| policy_from(&row.get::<_, String>(0)?))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The policies of one network, by name.
pub fn policies_of_network(conn: &Connection, network: &NetworkName) -> Result<Vec<Policy>> {
    let mut stmt =
        conn.prepare_cached("SELECT spec FROM policies WHERE network = ?1 ORDER BY name")?;
    let rows = stmt.query_map([network.as_str()], |row| {
        policy_from(&row.get::<_, String>(0)?)
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// True when the network has any policy: asked on every attach and detach, one index
/// probe.
pub fn network_has_policies(conn: &Connection, network: &NetworkName) -> Result<bool> {
    let mut stmt = conn.prepare_cached("SELECT 1 FROM policies WHERE network = ?1 LIMIT 1")?;
    Ok(stmt.exists([network.as_str()])?)
}
