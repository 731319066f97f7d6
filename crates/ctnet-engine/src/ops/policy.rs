//! Network policies: added and removed as set elements of ctnet's table, and the
//! per-container part of them kept in step with attach and detach.
//!
//! ```text
//!  policy add ──► store: policies row ──► bridge nf_call_iptables/ip6tables on (first policy)
//!                                     └─► nft: the policy's entries, one batch
//!  policy rm  ──► store: row deleted  ──► nft: its entries no other policy needs, withdrawn
//!                                     └─► bridge flags off (last policy)
//!  attach     ──► (network has policies) entries of the new container only (compile_member)
//!  detach     ──► the same entries withdrawn, with its ports
//! ```
//!
//! Same-bridge traffic: frames between two containers of one bridge are bridged, not
//! routed, and skip the inet hooks unless `br_netfilter` hands them over. The kernel has
//! no conntrack of its own for the bridge family here (`CONFIG_NF_CONNTRACK_BRIDGE`
//! unset), so stateful policy between them needs `br_netfilter`: ctnet sets the
//! per-bridge `nf_call_iptables` flags on bridges of networks with policies only (other
//! bridges keep bridging without netfilter's per-packet cost), which holds even with
//! the namespace's `bridge-nf-call-iptables` at 0. Where `br_netfilter` is not in the
//! kernel at all, a policy is refused rather than half enforced.

use std::path::Path;

use serde::Serialize;

use crate::engine::Engine;
use crate::error::{Error, ErrorKind, Result};
use crate::model::policy::{Policy, PolicyName};
use crate::model::{Endpoint, Network, NetworkName, RowState};
use crate::ops::firewall::firewall_error;
use crate::policy::{compile, compile_member, Compiled};
use crate::state;

/// Where the kernel shows `br_netfilter`'s settings; absent when it is not loaded.
pub const BR_NETFILTER_DIR: &str = "/proc/sys/net/bridge";

/// A policy with what it selects now, for listings.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyView {
    /// The policy.
    #[serde(flatten)]
    pub policy: Policy,
    /// The containers its `to` selects now, by label.
    pub selected: Vec<String>,
    /// Elements it puts in the policy sets now.
    pub entries: usize,
    /// True for a deny policy (`action` says the same, for programs that read a flag).
    pub deny: bool,
}

/// True when `br_netfilter` is in the kernel (built in or loaded), judged by its sysctl
/// folder `dir`.
pub fn br_netfilter_present(dir: &Path) -> bool {
    dir.join("bridge-nf-call-iptables").exists()
}

/// The ready or pending endpoints of a network: the members policies are compiled for.
fn members(conn: &rusqlite::Connection, network: &NetworkName) -> Result<Vec<Endpoint>> {
    Ok(state::endpoints_of_network(conn, network)?
        .into_iter()
        .filter(|ep| ep.state != RowState::Removing)
        .collect())
}

fn policy_object(name: &PolicyName) -> String {
    format!("policy {:?}", name.as_str())
}

impl Engine {
    /// Adds a policy and puts its entries in the kernel; returns what it selects.
    /// Nothing is changed when it is refused or the kernel refuses its entries.
    pub fn add_policy(&mut self, policy: Policy) -> Result<PolicyView> {
        let object = policy_object(&policy.name);
        let net = self.network(&policy.network)?;
        refuse_unenforceable(&net, &object)?;
        if let Some(existing) = state::get_policy(self.store.read(), &policy.name)? {
            return Err(Error::new(
                ErrorKind::Conflict,
                object,
                format!("exists already, on network {:?}", existing.network.as_str()),
                format!(
                    "choose another name, or remove it first with `ctnet policy rm {}`",
                    policy.name
                ),
            ));
        }
        let (compiled, selected, first) = self.store.write(|tx| {
            let first = !state::network_has_policies(tx, &policy.network)?;
            state::insert_policy(tx, &policy)?;
            let members = members(tx, &policy.network)?;
            let compiled = compile(std::slice::from_ref(&policy), &members);
            let names = policy_names_selected(&policy, &members);
            Ok((compiled, names, first))
        })?;
        let applied = self.apply_new_policy(&net, &compiled, first);
        if let Err(e) = applied {
            let _ = self
                .store
                .write(|tx| state::delete_policy(tx, &policy.name).map(|_| ()));
            if first {
                let _ = self.set_policy_bridge_flags(&net, false);
            }
            return Err(e);
        }
        Ok(PolicyView {
            entries: compiled.entries.len() + compiled.selected.len(),
            deny: policy.denies(),
            policy,
            selected,
        })
    }

    fn apply_new_policy(&mut self, net: &Network, compiled: &Compiled, first: bool) -> Result<()> {
        if first {
            self.set_policy_bridge_flags(net, true)?;
        }
        self.ensure_firewall()?;
        self.firewall.add_policy(compiled).map_err(firewall_error)
    }

    /// Removes a policy, withdrawing the entries no other policy of its network needs.
    pub fn remove_policy(&mut self, name: &PolicyName) -> Result<Policy> {
        let object = policy_object(name);
        let (policy, withdraw, last) = self.store.write(|tx| {
            let Some(policy) = state::get_policy(tx, name)? else {
                return Err(Error::not_found(
                    &object,
                    "list the policies with `ctnet policy ls`",
                ));
            };
            state::delete_policy(tx, name)?;
            let rest = state::policies_of_network(tx, &policy.network)?;
            let members = members(tx, &policy.network)?;
            let gone = compile(std::slice::from_ref(&policy), &members);
            let withdraw = gone.minus(&compile(&rest, &members));
            Ok((policy, withdraw, rest.is_empty()))
        })?;
        self.firewall
            .remove_policy(&withdraw)
            .map_err(|e| Error::kernel(&object, e))?;
        if last {
            if let Ok(net) = self.network(&policy.network) {
                self.set_policy_bridge_flags(&net, false)?;
            }
        }
        Ok(policy)
    }

    /// Every policy with what it selects now.
    pub fn policies(&self) -> Result<Vec<PolicyView>> {
        let conn = self.store.read();
        let mut out = Vec::new();
        for policy in state::list_policies(conn)? {
            let members = members(conn, &policy.network)?;
            let compiled = compile(std::slice::from_ref(&policy), &members);
            out.push(PolicyView {
                selected: policy_names_selected(&policy, &members),
                entries: compiled.entries.len() + compiled.selected.len(),
                deny: policy.denies(),
                policy,
            });
        }
        Ok(out)
    }

    /// The entries an endpoint brings to its network's policies (what its attach adds
    /// and its detach withdraws, with its ports); None on a network without policies,
    /// which costs one index probe, or when no policy concerns it.
    pub(crate) fn endpoint_policy_part(&self, ep: &Endpoint) -> Result<Option<Compiled>> {
        let conn = self.store.read();
        if !state::network_has_policies(conn, &ep.network)? {
            return Ok(None);
        }
        let policies = state::policies_of_network(conn, &ep.network)?;
        if !policies.iter().any(|p| concerns(p, ep)) {
            // Neither selected nor a source of any policy: nothing to add, and the
            // network's other containers need not be read.
            return Ok(None);
        }
        let mut members = members(conn, &ep.network)?;
        if !members.iter().any(|m| m.id == ep.id) {
            members.push(ep.clone());
        }
        Ok(Some(compile_member(&policies, &members, ep)))
    }

    /// Sets (or clears) the bridge flags that hand a network's bridged frames to the
    /// inet hooks.
    pub(crate) fn set_policy_bridge_flags(&mut self, net: &Network, on: bool) -> Result<()> {
        let request = ctnet_kernel::link::set_bridge_nf_call_request(&net.bridge, on);
        self.host()?.execute(request).map_err(|e| {
            Error::kernel(
                format!("bridge {} of network {:?}", net.bridge, net.name.as_str()),
                e,
            )
        })
    }

    /// Sets the policy flags of a network with policies whose bridge lacks them; true
    /// when it did.
    pub(crate) fn repair_policy_bridge_flags(&mut self, net: &Network) -> Result<bool> {
        if !state::network_has_policies(self.store.read(), &net.name)? {
            return Ok(false);
        }
        let bridge = ctnet_kernel::link::get(self.host()?, net.bridge.as_str())
            .map_err(|e| Error::kernel(format!("bridge {}", net.bridge), e))?;
        if bridge.is_none_or(|b| b.bridge_nf_call == Some((true, true))) {
            return Ok(false);
        }
        self.set_policy_bridge_flags(net, true)?;
        Ok(true)
    }

    /// For a network whose bridge was made again: its policy flags, if it has policies.
    pub(crate) fn restore_policy_bridge_flags(&mut self, net: &Network) -> Result<()> {
        if state::network_has_policies(self.store.read(), &net.name)? {
            self.set_policy_bridge_flags(net, true)?;
        }
        Ok(())
    }
}

/// True when `policy` selects `ep` or admits (or denies) traffic from it.
fn concerns(policy: &Policy, ep: &Endpoint) -> bool {
    let names = ep.policy_names();
    let member = crate::model::policy::Member {
        names: &names,
        labels: &ep.labels,
    };
    policy.to.matches(&member)
        || policy.from.iter().any(|source| match source {
            crate::model::policy::Source::Containers(selector) => selector.matches(&member),
            crate::model::policy::Source::Cidr(_) => false,
        })
}

/// The labels of the containers `policy` selects among `members`.
fn policy_names_selected(policy: &Policy, members: &[Endpoint]) -> Vec<String> {
    members
        .iter()
        .filter(|ep| {
            let names = ep.policy_names();
            policy.to.matches(&crate::model::policy::Member {
                names: &names,
                labels: &ep.labels,
            })
        })
        .map(|ep| ep.container.clone())
        .collect()
}

/// Refuses a policy the kernel could not enforce on `net`: a macvlan network's traffic
/// never passes ctnet's bridge or firewall, and without `br_netfilter` traffic between
/// two containers of one bridge would pass unjudged.
fn refuse_unenforceable(net: &Network, object: &str) -> Result<()> {
    if !net.driver.is_bridged() {
        return Err(Error::invalid(
            object,
            format!(
                "is for network {:?}, a macvlan network: its containers' traffic goes straight to the parent interface, past ctnet's firewall",
                net.name.as_str()
            ),
            "put the containers on a bridge network to govern their traffic with policies",
        ));
    }
    if !br_netfilter_present(Path::new(BR_NETFILTER_DIR)) {
        return Err(Error::invalid(
            object,
            "cannot be enforced between containers on one bridge: br_netfilter is not in this kernel",
            "load it (`modprobe br_netfilter`, or br_netfilter in /etc/modules-load.d), then add the policy again",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn br_netfilter_is_judged_by_its_sysctl_folder() {
        let dir = std::env::temp_dir().join(format!("ctnet-brnf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(!br_netfilter_present(&dir));
        std::fs::write(dir.join("bridge-nf-call-iptables"), "0\n").unwrap();
        assert!(
            br_netfilter_present(&dir),
            "present even when switched off netns-wide"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
