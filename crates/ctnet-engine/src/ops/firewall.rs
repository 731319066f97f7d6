//! ctnet's nftables tables as operations need them (`inet ctnet`, and `bridge ctnet` for
//! anti-spoofing, `datapath/nft/antispoof.rs`): made before something is added to them,
//! and rewritten from the store, both under the same write transaction. What each
//! network and endpoint puts in them comes from the driver's plan
//! (`driver::bridge::network_rules`, `port_rules`, `port_guard`); the datapath knows
//! nothing of networks or containers.
//!
//! Every rewrite reads the store and commits its batch inside one write transaction of
//! the store. Operations add their elements only after their row is recorded (and keep
//! it until the elements are gone) and withdraw them only after the row is marked
//! `removing`, each in a write transaction of its own; a rewrite serialised with those
//! transactions therefore never puts back what a detach withdrew, nor drops what an
//! attach added. (Read outside the lock, a `ctnet gc` beside a detach put the withdrawn
//! ports back: 11 of 490 cycles.)

use rusqlite::Connection;

use crate::datapath::nft::{Contents, Rewrite, GUARD_TABLE, TABLE};
use crate::driver::bridge::{port_guard, port_rules};
use crate::driver::network_rules;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::model::RowState;
use crate::state;

impl Engine {
    /// Rewrites ctnet's nftables table from the store, so a table that was edited,
    /// deleted, or left by an older layout holds exactly what the networks need.
    pub(crate) fn rebuild_firewall(&mut self) -> Result<Rewrite> {
        let Engine {
            store, firewall, ..
        } = self;
        store.write(|tx| {
            let contents = firewall_contents(tx)?;
            let rewrite = firewall.rewrite(&contents, true).map_err(firewall_error)?;
            let guard = firewall
                .rewrite_guard(&contents, true)
                .map_err(guard_error)?;
            Ok(merged(rewrite, guard))
        })
    }

    /// Puts ctnet's table back when it differs from the store: `None` when it matches
    /// (nothing is written), else what differed, one sentence each, now rewritten.
    ///
    /// For the agent, after someone else flushed or edited the table. Like
    /// [`Engine::rebuild_firewall`] it reads the store and commits under the store's
    /// write lock, so it never undoes an operation's change; unlike it, elements the
    /// store does not explain are kept (removing them is `ctnet gc`'s, which lists them),
    /// and the `user` chain is never looked at. A host without networks and without a
    /// table stays without one.
    pub fn repair_firewall(&mut self) -> Result<Option<Vec<String>>> {
        let Engine {
            store, firewall, ..
        } = self;
        store.write(|tx| {
            let contents = firewall_contents(tx)?;
            let rewrite = firewall.rewrite(&contents, false).map_err(firewall_error)?;
            let guard = firewall
                .rewrite_guard(&contents, false)
                .map_err(guard_error)?;
            Ok(repaired(merged(rewrite, guard)))
        })
    }

    /// Makes sure the anti-spoofing table exists in its layout before a port's elements
    /// are added to it; like [`Engine::ensure_firewall`], a missing or edited one is
    /// rewritten from the store by one process, under the store's write lock.
    pub(crate) fn ensure_guard_table(&mut self) -> Result<()> {
        if self.firewall.guard_is_current().map_err(guard_error)? {
            return Ok(());
        }
        if !self.store.read().is_autocommit() {
            let contents = firewall_contents(self.store.read())?;
            self.firewall
                .rewrite_guard(&contents, false)
                .map_err(guard_error)?;
            return Ok(());
        }
        let Engine {
            store, firewall, ..
        } = self;
        store.write(|tx| {
            let contents = firewall_contents(tx)?;
            firewall
                .rewrite_guard(&contents, false)
                .map_err(guard_error)?;
            Ok(())
        })
    }

    /// Makes sure ctnet's tables exist in their layouts, with their rules, before
    /// something adds to them: the inet table ([`Engine::ensure_inet_table`]) and the
    /// anti-spoofing one ([`Engine::ensure_guard_table`]), which are made together with the
    /// first network.
    pub(crate) fn ensure_firewall(&mut self) -> Result<()> {
        self.ensure_inet_table()?;
        self.ensure_guard_table()
    }

    /// Makes sure ctnet's inet table exists in this layout, with its rules, before
    /// something adds to it. A missing, flushed or edited table, or one of another
    /// layout, is rewritten holding everything in the store — by one process: the others
    /// find it current once they hold the lock.
    fn ensure_inet_table(&mut self) -> Result<()> {
        if self.firewall.is_current().map_err(firewall_error)? {
            return Ok(());
        }
        if !self.store.read().is_autocommit() {
            // Called under a write lock this process holds already (a repair by gc).
            let contents = firewall_contents(self.store.read())?;
            self.firewall
                .rewrite(&contents, false)
                .map_err(firewall_error)?;
            return Ok(());
        }
        let Engine {
            store, firewall, ..
        } = self;
        store.write(|tx| {
            if firewall.is_current_now().map_err(firewall_error)? {
                return Ok(());
            }
            let contents = firewall_contents(tx)?;
            firewall.rewrite(&contents, false).map_err(firewall_error)?;
            Ok(())
        })
    }

    /// What the table should hold, read from the store (in a transaction the caller
    /// holds).
    pub(crate) fn firewall_contents_now(&self) -> Result<Contents> {
        firewall_contents(self.store.read())
    }
}

/// What the table should hold: every network and published port not being removed.
fn firewall_contents(conn: &Connection) -> Result<Contents> {
    let networks = state::list_networks(conn)?
        .iter()
        .filter(|net| net.state != RowState::Removing)
        .filter_map(network_rules)
        .collect();
    let endpoints: Vec<_> = state::list_endpoints(conn)?
        .into_iter()
        .filter(|ep| ep.state != RowState::Removing)
        .collect();
    let ports = endpoints.iter().flat_map(port_rules).collect();
    let mut policy = crate::policy::Compiled::default();
    let policies = state::list_policies(conn)?;
    let networks_with_policies: std::collections::BTreeSet<_> =
        policies.iter().map(|p| &p.network).collect();
    for network in networks_with_policies {
        let of_network: Vec<_> = policies
            .iter()
            .filter(|p| &p.network == network)
            .cloned()
            .collect();
        let members: Vec<_> = endpoints
            .iter()
            .filter(|ep| &ep.network == network)
            .cloned()
            .collect();
        policy.extend(crate::policy::compile(&of_network, &members));
    }
    let guards = endpoints.iter().filter_map(port_guard).collect();
    Ok(Contents {
        networks,
        ports,
        guards,
        policy,
        vxlan: vxlan_sources(conn)?,
    })
}

/// Who may send VXLAN to this host, from the store: the VTEP of each overlay network and
/// the peers the agent last programmed.
pub(crate) fn vxlan_sources(conn: &Connection) -> Result<crate::datapath::nft::VxlanSources> {
    let mut sources = crate::datapath::nft::VxlanSources::default();
    for net in state::list_networks(conn)? {
        if let (Some(o), true) = (&net.overlay, net.state != RowState::Removing) {
            sources
                .local
                .insert((o.underlay, crate::model::overlay::VXLAN_PORT));
        }
    }
    for peer in state::list_all_overlay_peers(conn)? {
        sources.peers.insert(peer.underlay);
    }
    Ok(sources)
}

/// The error for a failed change to ctnet's table.
pub(crate) fn firewall_error(e: ctnet_kernel::Error) -> Error {
    Error::kernel(format!("nftables table {TABLE}"), e)
}

/// The error for a failed change to the anti-spoofing table.
pub(crate) fn guard_error(e: ctnet_kernel::Error) -> Error {
    Error::kernel(format!("nftables table {GUARD_TABLE}"), e)
}

/// The rewrites of both tables as one report.
fn merged(mut inet: Rewrite, guard: Rewrite) -> Rewrite {
    inet.repaired.extend(guard.repaired);
    inet.removed_elements.extend(guard.removed_elements);
    if guard.recreated {
        inet.repaired.push(format!(
            "table {GUARD_TABLE} was deleted and made again in one batch"
        ));
    }
    inet
}

/// What a repair reports: nothing when the table was as the store says.
fn repaired(rewrite: Rewrite) -> Option<Vec<String>> {
    let mut lines = rewrite.repaired;
    if lines.is_empty() {
        return None;
    }
    if rewrite.recreated {
        lines.push(format!(
            "table {TABLE} was deleted and made again in one batch (the user chain's rules carried over)"
        ));
    }
    if let Some((n, why)) = rewrite.user_rules_dropped {
        lines.push(format!(
            "{n} rule(s) of chain user could not be carried over: {why}"
        ));
    }
    Some(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_rewrite_is_no_repair() {
        assert_eq!(repaired(Rewrite::default()), None);
        let missing = Rewrite {
            repaired: vec![format!("table {TABLE} is missing")],
            ..Rewrite::default()
        };
        assert_eq!(
            repaired(missing),
            Some(vec![format!("table {TABLE} is missing")])
        );
        let recreated = Rewrite {
            recreated: true,
            repaired: vec!["chains that are not ctnet's: evil".into()],
            user_rules_dropped: Some((1, "it jumps to evil".into())),
            ..Rewrite::default()
        };
        let lines = repaired(recreated).unwrap();
        assert_eq!(lines.len(), 3);
        assert!(lines[2].contains("1 rule(s) of chain user"));
    }
}
