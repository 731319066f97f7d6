//! Repairing what interrupted operations left behind.
//!
//! Every operation records its intent (a `pending` or `removing` row with the owning
//! process) before touching the kernel, and every teardown step is idempotent. So when a
//! ctnet process dies midway, the next one finds the row, sees the owner is gone, and
//! removes whatever kernel objects exist for it — rolling a create back, or a remove
//! forward — without having to know how far the dead process got.

use serde::Serialize;

use crate::engine::Engine;
use crate::error::Result;
use crate::model::RowState;
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
}

fn orphaned(owner: Option<&Owner>) -> bool {
    owner.is_none_or(|o| !o.is_alive())
}

impl Engine {
    /// Finishes operations whose process died: rows in `pending` or `removing` state.
    pub(crate) fn reconcile_interrupted(&mut self) -> Result<GcReport> {
        let mut report = GcReport::default();
        for (ep, owner) in store::owned_endpoints(self.store.read())? {
            if ep.state != RowState::Ready && orphaned(owner.as_ref()) {
                self.tear_down_endpoint(&ep)?;
                self.store.write(|tx| store::delete_endpoint(tx, ep.id))?;
                report
                    .endpoints
                    .push(format!("{} on {}", ep.container, ep.network));
            }
        }
        for (net, owner) in store::unsettled_networks(self.store.read())? {
            if orphaned(owner.as_ref()) {
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

    /// Everything [`Engine::reconcile_interrupted`] does, plus removing the endpoints and
    /// namespaces of `ctnet run` processes that no longer exist.
    pub fn gc(&mut self) -> Result<GcReport> {
        let mut report = self.reconcile_interrupted()?;
        for (ep, owner) in store::owned_endpoints(self.store.read())? {
            if orphaned(owner.as_ref()) {
                self.tear_down_endpoint(&ep)?;
                self.store.write(|tx| store::delete_endpoint(tx, ep.id))?;
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
        Ok(report)
    }
}
