//! A lost or emptied state database, told apart from a host where nothing exists yet.
//!
//! A missing `ctnet.db` is made anew and an emptied one reads as empty: either way the
//! store says "no networks". If ctnet's own bridges (`ctnet0`, `br-` and 12 hex digits)
//! or elements of its table are on the host at that moment, the store was lost, not the
//! networks: containers are still running on them. Acting on the empty store then does
//! harm (`ctnet gc` stripped the firewall from running containers; creating the default
//! network failed on its own bridge "choose another --bridge name"). So operations that
//! would act on it refuse, naming the objects, the cause and the two ways back:
//! restoring the database *with its WAL* (the committed state lives in `ctnet.db-wal`
//! until a checkpoint copies it into `ctnet.db`), or `ctnet gc --discard-unknown`, which
//! removes those objects on purpose.
//!
//! The check costs one store query when networks exist (the usual case) and, on a store
//! without networks, one link dump and a look at the table.

use ctnet_kernel::{link, reclaim, IfName};

use crate::datapath::nft::Contents;
use crate::engine::Engine;
use crate::error::{Error, ErrorKind, Result};
use crate::model::DEFAULT_BRIDGE;
use crate::ops::firewall::firewall_error;
use crate::state;

/// A bridge name ctnet makes itself: the default network's, or `br-` and 12 hex digits
/// of a network id.
pub(crate) fn is_ctnet_bridge_name(name: &str) -> bool {
    name == DEFAULT_BRIDGE
        || name.strip_prefix("br-").is_some_and(|id| {
            id.len() == 12
                && id
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

impl Engine {
    /// ctnet's kernel objects the store cannot explain because it holds no network at
    /// all: ctnet-named bridges, and elements of ctnet's table. Empty when the store has
    /// networks, or when the host has none of these.
    pub fn unexplained_by_empty_store(&mut self) -> Result<Vec<String>> {
        if !state::list_networks(self.store.read())?.is_empty() {
            return Ok(Vec::new());
        }
        let mut found: Vec<String> = link::list(self.host()?)
            .map_err(|e| Error::kernel("host links", e))?
            .into_iter()
            .filter(|l| l.kind.as_deref() == Some("bridge") && is_ctnet_bridge_name(&l.name))
            .map(|l| format!("bridge {}", l.name))
            .collect();
        let audit = self
            .firewall
            .audit(Some(&Contents::default()))
            .map_err(firewall_error)?;
        let elements = audit.unexplained_elements.len();
        if elements > 0 {
            found.push(format!("{elements} elements of nftables table inet ctnet"));
        }
        Ok(found)
    }

    /// Refuses to go on when the store is empty while ctnet's objects exist (see the
    /// module's comment).
    pub(crate) fn refuse_if_state_lost(&mut self) -> Result<()> {
        let found = self.unexplained_by_empty_store()?;
        if found.is_empty() {
            return Ok(());
        }
        Err(state_lost_error(&self.paths.database(), &found))
    }

    /// Why a network cannot have bridge `bridge`, which exists. One of ctnet's own names
    /// that no network of the store uses was left by a network the store lost: say so,
    /// rather than ask for another `--bridge` the user never gave.
    pub(crate) fn bridge_exists_error(&mut self, bridge: &IfName) -> Result<Error> {
        let known = state::list_networks(self.store.read())?
            .iter()
            .any(|n| &n.bridge == bridge);
        if is_ctnet_bridge_name(bridge.as_str()) && !known {
            return Ok(Error::new(
                ErrorKind::Conflict,
                format!("bridge {bridge}"),
                format!(
                    "exists, made by ctnet for a network its state database {} no longer records (the database was lost or replaced)",
                    self.paths.database().display()
                ),
                "restore the state database together with its WAL (ctnet.db and ctnet.db-wal), or run `ctnet gc --discard-unknown` to remove the bridge (containers on it lose their network)",
            ));
        }
        Ok(Error::new(
            ErrorKind::Conflict,
            format!("bridge {bridge}"),
            "a link of that name already exists on this host",
            "choose another --bridge name, or omit it to get a generated one",
        ))
    }

    /// The recovery when the state is gone for good: deletes ctnet-named bridges no
    /// network of the store uses (and the veths that are their ports, which takes the
    /// containers' interfaces with them). The table's elements no network explains go
    /// with the rewrite that follows in `gc`. Returns what it removed.
    pub(crate) fn discard_unknown_bridges(&mut self) -> Result<Vec<String>> {
        let known: Vec<String> = state::list_networks(self.store.read())?
            .into_iter()
            .map(|n| n.bridge.to_string())
            .collect();
        let links = link::list(self.host()?).map_err(|e| Error::kernel("host links", e))?;
        let mut removed = Vec::new();
        for bridge in links.iter().filter(|l| {
            l.kind.as_deref() == Some("bridge")
                && is_ctnet_bridge_name(&l.name)
                && !known.contains(&l.name)
        }) {
            let ports: Vec<&str> = links
                .iter()
                .filter(|l| l.master == Some(bridge.index) && l.kind.as_deref() == Some("veth"))
                .map(|l| l.name.as_str())
                .collect();
            let mut names = ports.clone();
            names.push(bridge.name.as_str());
            let hold: Vec<_> = self.firewall.open_socket().into_iter().collect();
            reclaim::delete_links(&names, &hold)
                .map_err(|e| Error::kernel(format!("bridge {}", bridge.name), e))?;
            removed.push(if ports.is_empty() {
                format!("bridge {}", bridge.name)
            } else {
                format!("bridge {} and its ports {}", bridge.name, ports.join(", "))
            });
        }
        Ok(removed)
    }
}

/// The error for a store that lost what the kernel still has.
fn state_lost_error(database: &std::path::Path, found: &[String]) -> Error {
    let wal = database.with_extension("db-wal");
    Error::new(
        ErrorKind::Conflict,
        format!("state database {}", database.display()),
        format!(
            "holds no networks, but this host has ctnet's {}: the database was lost, emptied or replaced while containers use them",
            found.join(", ")
        ),
        format!(
            "restore the database together with its WAL ({} and {}, copied while no ctnet runs), or, to give those networks up, run `ctnet gc --discard-unknown` (it removes them; containers on them lose their network)",
            database.display(),
            wal.display()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_ctnet_makes_are_ctnet_bridges() {
        assert!(is_ctnet_bridge_name("ctnet0"));
        assert!(is_ctnet_bridge_name("br-0123456789ab"));
        assert!(!is_ctnet_bridge_name("br-0123456789"));
        assert!(!is_ctnet_bridge_name("br-0123456789AB"));
        assert!(!is_ctnet_bridge_name("br0"));
        assert!(!is_ctnet_bridge_name("docker0"));
    }
}
