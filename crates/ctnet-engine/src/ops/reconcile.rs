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

use crate::engine::Engine;
use crate::error::Result;

use crate::model::{Endpoint, RowState};
use crate::owner::Owner;
use crate::state;

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
    /// Kernel objects made again or put right for the store's networks and endpoints
    /// (drift), one line each.
    pub repaired: Vec<String>,
    /// How ctnet's table differed from the layout and the store before the rewrite.
    pub firewall_repaired: Vec<String>,
    /// The table was deleted and made again (another layout, a foreign or missing chain).
    pub firewall_recreated: bool,
    /// Elements removed from ctnet's table because the store does not explain them.
    pub firewall_removed: Vec<String>,
    /// Rules of the `user` chain that could not be carried into the recreated table,
    /// with the kernel's reason.
    pub user_rules_dropped: Option<String>,
    /// ctnet's bridges no network of the store uses, removed by `--discard-unknown`.
    pub discarded: Vec<String>,
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
        if !state::anything_unsettled(self.store.read())? {
            return Ok(report);
        }
        for (ep, owner) in state::owned_endpoints(self.store.read())? {
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
        for (net, _) in state::unsettled_networks(self.store.read())? {
            if self.remove_abandoned_network(&net.name)? {
                report.networks.push(net.name.to_string());
            }
        }
        Ok(report)
    }

    /// Claims endpoint `id` if `abandoned` holds for it at that moment, then removes it.
    pub(crate) fn remove_claimed_endpoint(
        &mut self,
        id: i64,
        abandoned: impl Fn(&Endpoint, Option<&Owner>) -> bool,
    ) -> Result<Option<Endpoint>> {
        let me = Owner::me();
        let Some(ep) = self
            .store
            .write(|tx| state::claim_endpoint(tx, id, &me, abandoned))?
        else {
            return Ok(None);
        };
        self.tear_down_endpoint(&ep)?;
        self.store.write(|tx| state::delete_endpoint(tx, ep.id))?;
        Ok(Some(ep))
    }

    /// Everything [`Engine::reconcile_interrupted`] does, plus removing the endpoints and
    /// namespaces of `ctnet run` processes that no longer exist, releasing endpoints
    /// whose namespace is gone ([`Engine::release_stale_endpoints`]), rewriting ctnet's
    /// nftables table, and turning forwarding back on for the families networks have.
    pub fn gc(&mut self) -> Result<GcReport> {
        self.gc_with(false)
    }

    /// [`Engine::gc`]; with `discard_unknown`, ctnet's bridges and table elements that no
    /// network of the store explains are removed first (the recovery from a lost state
    /// database, see `ops/lost_state.rs`), where plain `gc` refuses to act on an empty
    /// store while they exist.
    pub fn gc_with(&mut self, discard_unknown: bool) -> Result<GcReport> {
        let discarded = if discard_unknown {
            self.discard_unknown_bridges()?
        } else {
            self.refuse_if_state_lost()?;
            Vec::new()
        };
        let mut report = self.reconcile_interrupted()?;
        report.discarded = discarded;
        for (ep, _) in state::owned_endpoints(self.store.read())? {
            if let Some(ep) = self.remove_claimed_endpoint(ep.id, run_is_gone)? {
                report
                    .endpoints
                    .push(format!("{} on {}", ep.container, ep.network));
            }
        }
        for ep in self.release_stale_endpoints()? {
            report.endpoints.push(format!(
                "{} on {} (its namespace is gone)",
                ep.container, ep.network
            ));
        }
        for (name, owner) in state::owned_namespaces(self.store.read())? {
            if !owner.is_alive() {
                self.remove_owned_netns_by_name(&name)?;
                report.namespaces.push(name);
            }
        }
        // The table first (so its differences are reported, not mended silently by a
        // repair's check), then the kernel objects.
        let rewrite = self.rebuild_firewall()?;
        report.repaired = self.repair_drift()?;
        report.firewall_bridges = state::list_networks(self.store.read())?
            .into_iter()
            .filter(|n| n.state != RowState::Removing && n.driver.is_bridged())
            .map(|n| n.bridge.to_string())
            .collect();
        report.firewall_repaired = rewrite.repaired;
        report.firewall_recreated = rewrite.recreated;
        report.firewall_removed = rewrite.removed_elements;
        report.user_rules_dropped = rewrite
            .user_rules_dropped
            .map(|(n, why)| format!("{n} rule(s): {why}"));
        self.restore_forwarding()?;
        self.pin_bridge_addresses()?;
        Ok(report)
    }
}
