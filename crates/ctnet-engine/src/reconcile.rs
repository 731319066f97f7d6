//! Repairing what interrupted operations left behind.
//!
//! Every operation records its intent (a `pending` or `removing` row with the owning
//! process) before touching the kernel, and every teardown step is idempotent. So when a
//! ctnet process dies midway, the next one finds the row, sees the owner is gone, and
//! removes whatever kernel objects exist for it — rolling a create back, or a remove
//! forward — without having to know how far the dead process got.
//!
//! A row is judged abandoned only inside a write transaction that also claims it (marks it
//! `removing` by this process). Judging a row read earlier would race with its owner, which
//! may have finished its work and exited in between; and two reconcilers never tear down
//! the same thing at once.

use serde::Serialize;

use crate::endpoint::port_rules;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::firewall::{Contents, TABLE};
use crate::model::{Endpoint, RowState};
use crate::network::network_rules;
use crate::owner::Owner;
use crate::store;

/// What a reconcile pass repaired.
#[derive(Debug, Default, Serialize)]
pub struct GcReport {
    /// Networks whose interrupted create or remove was finished.
    pub networks: Vec<String>,
    /// Endpoints removed (interrupted, or their `ctnet run` process is gone).
    pub endpoints: Vec<String>,
    /// Namespaces of `ctnet run` processes that are gone.
    pub namespaces: Vec<String>,
    /// Bridges of the networks the rewritten nftables table holds.
    pub firewall_bridges: Vec<String>,
}

fn orphaned(owner: Option<&Owner>) -> bool {
    owner.is_none_or(|o| !o.is_alive())
}

/// An operation on the row was left unfinished by a process that is gone.
fn unfinished(ep: &Endpoint, owner: Option<&Owner>) -> bool {
    ep.state != RowState::Ready && orphaned(owner)
}

/// Unfinished, or tied to a `ctnet run` process that is gone. A ready row without an
/// owner belongs to a plain `ctnet attach` and stays.
fn run_is_gone(ep: &Endpoint, owner: Option<&Owner>) -> bool {
    unfinished(ep, owner) || owner.is_some_and(|o| !o.is_alive())
}

impl Engine {
    /// Finishes operations whose process died: rows in `pending` or `removing` state.
    pub(crate) fn reconcile_interrupted(&mut self) -> Result<GcReport> {
        let mut report = GcReport::default();
        if !store::anything_unsettled(self.store.read())? {
            return Ok(report);
        }
        for (ep, owner) in store::owned_endpoints(self.store.read())? {
            // Rows of live `ctnet run` processes are the common case: only what looks
            // unfinished is claimed (and checked again inside the claiming transaction).
            if !unfinished(&ep, owner.as_ref()) {
                continue;
            }
            if let Some(ep) = self.remove_claimed_endpoint(ep.id, unfinished)? {
                report
                    .endpoints
                    .push(format!("{} on {}", ep.container, ep.network));
            }
        }
        let me = Owner::me();
        for (net, _) in store::unsettled_networks(self.store.read())? {
            let claimed = self.store.write(|tx| {
                store::claim_network(tx, net.name.as_str(), &me, |n, owner| {
                    n.state != RowState::Ready && orphaned(owner)
                })
            })?;
            if let Some(net) = claimed {
                if let Some(err) = self.tear_down_network(&net) {
                    return Err(err);
                }
                self.store
                    .write(|tx| store::delete_network(tx, net.name.as_str()))?;
                report.networks.push(net.name.to_string());
            }
        }
        Ok(report)
    }

    /// Claims endpoint `id` if `abandoned` holds for it at that moment, then removes it.
    fn remove_claimed_endpoint(
        &mut self,
        id: i64,
        abandoned: impl Fn(&Endpoint, Option<&Owner>) -> bool,
    ) -> Result<Option<Endpoint>> {
        let me = Owner::me();
        let Some(ep) = self
            .store
            .write(|tx| store::claim_endpoint(tx, id, &me, abandoned))?
        else {
            return Ok(None);
        };
        self.tear_down_endpoint(&ep)?;
        self.store.write(|tx| store::delete_endpoint(tx, ep.id))?;
        Ok(Some(ep))
    }

    /// Everything [`Engine::reconcile_interrupted`] does, plus removing the endpoints and
    /// namespaces of `ctnet run` processes that no longer exist.
    pub fn gc(&mut self) -> Result<GcReport> {
        let mut report = self.reconcile_interrupted()?;
        for (ep, _) in store::owned_endpoints(self.store.read())? {
            if let Some(ep) = self.remove_claimed_endpoint(ep.id, run_is_gone)? {
                report
                    .endpoints
                    .push(format!("{} on {}", ep.container, ep.network));
            }
        }
        for (name, owner) in store::owned_namespaces(self.store.read())? {
            if !owner.is_alive() {
                self.remove_owned_netns_by_name(&name)?;
                report.namespaces.push(name);
            }
        }
        report.firewall_bridges = self.rebuild_firewall()?;
        Ok(report)
    }

    /// Rewrites ctnet's nftables table from the store, so a table that was edited,
    /// deleted, or left by an older layout holds exactly what the networks need.
    fn rebuild_firewall(&mut self) -> Result<Vec<String>> {
        let contents = self.firewall_contents()?;
        self.firewall.rebuild(&contents).map_err(firewall_error)?;
        Ok(contents
            .networks
            .iter()
            .map(|n| n.bridge.to_string())
            .collect())
    }

    /// Makes sure ctnet's table exists in this layout before something adds to it. A
    /// missing table is created holding everything in the store (so one deleted behind
    /// ctnet's back comes back whole); one of another layout is rewritten.
    pub(crate) fn ensure_firewall(&mut self) -> Result<()> {
        if self.firewall.is_current().map_err(firewall_error)? {
            return Ok(());
        }
        let contents = self.firewall_contents()?;
        if self.firewall.table_exists().map_err(firewall_error)? {
            self.firewall.rebuild(&contents)
        } else {
            self.firewall.create(&contents)
        }
        .map_err(firewall_error)
    }

    /// What the table should hold: every network and published port not being removed.
    fn firewall_contents(&self) -> Result<Contents> {
        let conn = self.store.read();
        let networks = store::list_networks(conn)?
            .iter()
            .filter(|net| net.state != RowState::Removing)
            .map(network_rules)
            .collect();
        let ports = store::list_endpoints(conn)?
            .iter()
            .filter(|ep| ep.state != RowState::Removing)
            .flat_map(port_rules)
            .collect();
        Ok(Contents { networks, ports })
    }
}

/// The error for a failed change to ctnet's table.
fn firewall_error(e: ctnet_kernel::Error) -> Error {
    Error::kernel(format!("nftables table {TABLE}"), e)
}
