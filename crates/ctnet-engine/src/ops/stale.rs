//! Endpoints whose namespace is gone, and namespaces that are not containers.
//!
//! An endpoint row names its container's namespace by path and inode and, since state
//! version 7, by the namespace's cookie and the boot it was read under (see
//! `ctnet_kernel::netns`). A runtime may lose a container without telling ctnet
//! (containerd's `ctr task rm` of a detached task; a reboot loses all of them); the
//! kernel then hands the freed inode to the next, unrelated namespace at once. Such a
//! row is *stale*: it holds an address, ports and perhaps an interface name that
//! belong to nobody, and it must neither block nor be mistaken for the newcomer.
//!
//! ```text
//!   row: inode 4026532249, cookie 28, boot A   ── namespace gone (ctr task rm)
//!   new: inode 4026532249, cookie 31, boot A   ── same inode, another namespace
//!        → the row is stale: released (veth, address, ports), the newcomer attached
//! ```
//!
//! How a row is judged ([`namespace_gone`], a pure decision over facts gathered only as
//! far as it needs them):
//! 1. a boot id other than this boot's: gone (every namespace dies with a reboot);
//! 2. the row's inode is that of a namespace this process holds open: two live
//!    namespaces never share an inode, so the row is that namespace exactly when its
//!    cookie is the held one's;
//! 3. its host-side veth exists: alive (the kernel deletes a veth pair with the
//!    namespace either end is in);
//! 4. otherwise alive only if its path still opens a namespace with its inode and its
//!    cookie (a veth deleted by hand: drift, not a gone namespace, for `gc` and
//!    `doctor` to repair).
//!
//! Rows written before version 7 have no cookie. They are taken to be the namespace
//! that now has their inode only while their host-side veth exists (rule 3: then their
//! namespace lives, and the only live namespace with that inode is the one in hand);
//! without the veth they are stale. Rows not yet ready are their owner's, or
//! reconcile's when the owner is gone, and are never judged here.
//!
//! Attach does no judging on its common path: only when its reservation clashes with
//! what is recorded (already attached, interface name, address, port, a full subnet)
//! does it release stale rows and try once more; `ctnet gc` releases them always
//! ([`Engine::release_stale_endpoints`]).

use std::os::unix::fs::MetadataExt;

use ctnet_kernel::{link, Netns};

use crate::engine::Engine;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{ContainerRef, Endpoint, NetnsIdentity, RowState};
use crate::ops::endpoint::container_object;
use crate::owner::Owner;
use crate::state;

/// A namespace this process holds open (so its inode names only it), with its identity.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Held<'a> {
    /// Its inode.
    pub inode: u64,
    /// Its cookie and boot.
    pub identity: &'a NetnsIdentity,
}

/// True when the namespace a ready endpoint row describes no longer exists; see the
/// module's notes for the rules. `veth_exists` and `at_path` (the inode and cookie of
/// the namespace the row's path opens now, None if it opens none) are asked only when
/// the earlier rules leave the answer open.
pub(crate) fn namespace_gone(
    ep: &Endpoint,
    boot_id: &str,
    held: Option<Held<'_>>,
    veth_exists: impl FnOnce() -> Result<bool>,
    at_path: impl FnOnce() -> Result<Option<(u64, u64)>>,
) -> Result<bool> {
    if let Some(id) = &ep.identity {
        if id.boot_id != boot_id {
            return Ok(true);
        }
    }
    if let (Some(held), Some(id)) = (held, &ep.identity) {
        if held.inode == ep.netns_inode {
            return Ok(id != held.identity);
        }
    }
    if veth_exists()? {
        return Ok(false);
    }
    let Some(id) = &ep.identity else {
        return Ok(true);
    };
    Ok(at_path()? != Some((ep.netns_inode, id.cookie)))
}

/// True when ready row `ep`, recorded with the inode of a namespace this process holds
/// open, is that namespace rather than a gone one that had its inode before (detach and
/// `netns rm` match rows by inode first). Cheapest fact first, so a detach's common path
/// makes no namespace visit: a row of another boot is not it; a row whose host-side veth
/// exists is (its namespace lives, and two live namespaces never share an inode); without
/// the veth, it is only if its cookie is the held namespace's (`held`, read only then: a
/// visit into the namespace). A row without a cookie is then stale, as
/// [`namespace_gone`] judges it.
pub(crate) fn is_held_namespace(
    ep: &Endpoint,
    boot_id: &str,
    veth_exists: impl FnOnce() -> Result<bool>,
    held: impl FnOnce() -> Result<Option<NetnsIdentity>>,
) -> Result<bool> {
    if ep.identity.as_ref().is_some_and(|id| id.boot_id != boot_id) {
        return Ok(false);
    }
    if veth_exists()? {
        return Ok(true);
    }
    let Some(id) = &ep.identity else {
        return Ok(false);
    };
    Ok(held()?.as_ref() == Some(id))
}

/// A namespace's identity from its cookie as a socket inside it reported it; None on a
/// kernel without `SO_NETNS_COOKIE` (before 5.14), whose rows are then judged as those
/// written before version 7 (by their veth).
pub(crate) fn identity_from(
    cookie: ctnet_kernel::Result<u64>,
    object: &str,
) -> Result<Option<NetnsIdentity>> {
    let kernel = |e| Error::kernel(object, e);
    let cookie = match cookie {
        Ok(cookie) => cookie,
        Err(e) if e.errno() == Some(libc::ENOPROTOOPT) => return Ok(None),
        Err(e) => return Err(kernel(e)),
    };
    Ok(Some(NetnsIdentity {
        cookie,
        boot_id: ctnet_kernel::netns::boot_id().map_err(kernel)?,
    }))
}

/// True when a reservation's refusal may be caused by a stale row (something recorded
/// holds what was asked for), so releasing stale rows and trying again may succeed.
pub(crate) fn may_be_stale(e: &Error) -> bool {
    matches!(
        e.kind,
        ErrorKind::Conflict | ErrorKind::InUse | ErrorKind::Exhausted
    )
}

/// The inode of a namespace file (the magic link is followed), None if it opens none.
fn inode_at(path: &str) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.ino())
}

impl Engine {
    /// True when the namespace of endpoint `ep` no longer exists (its container was
    /// lost without a detach, or the host rebooted): the row is stale and
    /// [`Engine::release_stale_endpoints`] releases it. A row not yet ready is never
    /// judged gone here (its owner, or reconcile, deals with it).
    pub fn endpoint_namespace_gone(&mut self, ep: &Endpoint) -> Result<bool> {
        self.namespace_gone_with(ep, None)
    }

    fn namespace_gone_with(&mut self, ep: &Endpoint, held: Option<Held<'_>>) -> Result<bool> {
        if ep.state != RowState::Ready {
            return Ok(false);
        }
        let boot_id = ctnet_kernel::netns::boot_id()
            .map_err(|e| Error::kernel(container_object(&ep.container), e))?;
        let object = container_object(&ep.container);
        let host = self.host()?;
        // A macvlan endpoint has no host side: its namespace alone tells.
        let veth_exists = || match &ep.host_ifname {
            None => Ok(false),
            Some(veth) => link::index_of(host, veth.as_str())
                .map(|index| index.is_some())
                .map_err(|e| Error::kernel(&object, e)),
        };
        let at_path = || {
            // A path that opens no namespace (gone, or not a namespace file) answers None.
            Ok(Netns::open(&ep.netns_path).ok().and_then(|ns| {
                let inode = ns.inode().ok()?;
                Some((inode, ns.cookie().ok()?))
            }))
        };
        namespace_gone(ep, &boot_id, held, veth_exists, at_path)
    }

    /// Releases every endpoint whose namespace no longer exists
    /// ([`Engine::endpoint_namespace_gone`]): its published ports, its host-side veth
    /// if the kernel still has it, its row and with it its addresses. Returns what it
    /// released. `ctnet gc` calls it; attach calls it when its reservation clashes.
    pub fn release_stale_endpoints(&mut self) -> Result<Vec<Endpoint>> {
        self.release_stale(None)
    }

    /// [`Engine::release_stale_endpoints`], knowing a namespace held open (rule 2).
    pub(crate) fn release_stale(&mut self, held: Option<Held<'_>>) -> Result<Vec<Endpoint>> {
        let mut released = Vec::new();
        for ep in state::list_endpoints(self.store.read())? {
            if !self.namespace_gone_with(&ep, held)? {
                continue;
            }
            // Claimed only if the row is still the one judged: ready, same namespace.
            let me = Owner::me();
            let judged = (ep.identity.clone(), ep.netns_inode);
            let claimed = self.store.write(|tx| {
                state::claim_endpoint(tx, ep.id, &me, |now, _| {
                    now.state == RowState::Ready
                        && (now.identity.clone(), now.netns_inode) == judged
                })
            })?;
            if let Some(ep) = claimed {
                self.tear_down_endpoint(&ep)?;
                self.store.write(|tx| state::delete_endpoint(tx, ep.id))?;
                released.push(ep);
            }
        }
        Ok(released)
    }

    /// Splits `rows`, recorded with the inode of namespace `netns` (held open), into
    /// those of that namespace and stale ones of a gone namespace that had its inode
    /// ([`is_held_namespace`]). The namespace's cookie is read at most once, and only
    /// for a row whose veth is missing. Rows not ready are their owner's and are taken
    /// as the namespace's, as before namespace identity.
    pub(crate) fn split_by_identity(
        &mut self,
        rows: Vec<Endpoint>,
        netns: &Netns,
        container: &ContainerRef,
    ) -> Result<(Vec<Endpoint>, Vec<Endpoint>)> {
        let object = container_object(&container.label());
        let mut held: Option<Option<NetnsIdentity>> = None;
        let (mut mine, mut stale) = (Vec::new(), Vec::new());
        for ep in rows {
            if ep.state != RowState::Ready {
                mine.push(ep);
                continue;
            }
            let boot_id = ctnet_kernel::netns::boot_id().map_err(|e| Error::kernel(&object, e))?;
            let host = self.host()?;
            let veth_exists = || match &ep.host_ifname {
                None => Ok(false),
                Some(veth) => link::index_of(host, veth.as_str())
                    .map(|index| index.is_some())
                    .map_err(|e| Error::kernel(&object, e)),
            };
            let held_identity = || match &held {
                Some(known) => Ok(known.clone()),
                None => {
                    let read = identity_from(netns.cookie(), &object)?;
                    held = Some(read.clone());
                    Ok(read)
                }
            };
            if is_held_namespace(&ep, &boot_id, veth_exists, held_identity)? {
                mine.push(ep);
            } else {
                stale.push(ep);
            }
        }
        Ok((mine, stale))
    }

    /// The identity of a namespace held open, for [`Engine::release_stale`] (None on a
    /// kernel without namespace cookies).
    pub(crate) fn identity_of(
        &self,
        netns: &Netns,
        container: &ContainerRef,
    ) -> Result<Option<NetnsIdentity>> {
        identity_from(netns.cookie(), &container_object(&container.label()))
    }

    /// Refuses the namespace ctnet itself runs in, and the host's (PID 1's), as a
    /// container: attaching one would put a bridge port's peer, an address and perhaps
    /// a default route into the host itself. `inode` is that of the container's
    /// namespace, held open by the caller, so comparing inodes is exact.
    pub(crate) fn refuse_host_namespace(&self, container: &ContainerRef, inode: u64) -> Result<()> {
        let whose = if inode_at("/proc/thread-self/ns/net") == Some(inode) {
            "is the network namespace ctnet itself runs in (the host's)"
        } else if inode_at("/proc/1/ns/net") == Some(inode) {
            "is the host's network namespace (that of PID 1)"
        } else {
            return Ok(());
        };
        Err(Error::invalid(
            container_object(&container.label()),
            whose,
            "give a container's namespace: `ctnet netns add NAME` makes one, `--pid` takes a \
             process inside a container, and `ctnet run` starts a command in a new one",
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use ctnet_kernel::IfName;

    use super::*;
    use crate::model::{MacAddr, NetworkName};

    fn row(inode: u64, identity: Option<(u64, &str)>) -> Endpoint {
        Endpoint {
            id: 1,
            network: NetworkName::new("n").unwrap(),
            container: "cni:c1".into(),
            netns_path: PathBuf::from("/run/netns/c1"),
            netns_inode: inode,
            ifname: IfName::new("eth0").unwrap(),
            host_ifname: Some(IfName::new("vethabcdef0").unwrap()),
            ips: Vec::new(),
            mac: MacAddr::parse("mac", "02:42:0a:00:00:02").unwrap(),
            default_routes: Vec::new(),
            netns_owned: false,
            state: RowState::Ready,
            ports: Vec::new(),
            name: None,
            aliases: Vec::new(),
            labels: Default::default(),
            identity: identity.map(|(cookie, boot)| NetnsIdentity {
                cookie,
                boot_id: boot.into(),
            }),
        }
    }

    fn id(cookie: u64, boot: &str) -> NetnsIdentity {
        NetnsIdentity {
            cookie,
            boot_id: boot.into(),
        }
    }

    /// Judges with fixed facts; a fact that must not be needed panics when asked.
    fn judge(
        ep: &Endpoint,
        held: Option<Held<'_>>,
        veth: Option<bool>,
        at_path: Option<Option<(u64, u64)>>,
    ) -> bool {
        namespace_gone(
            ep,
            "boot-a",
            held,
            || Ok(veth.expect("the veth was not to be asked about")),
            || Ok(at_path.expect("the path was not to be opened")),
        )
        .unwrap()
    }

    #[test]
    fn another_boot_is_gone_without_asking_the_kernel() {
        assert!(judge(&row(7, Some((28, "boot-old"))), None, None, None));
    }

    #[test]
    fn a_recycled_inode_is_told_apart_by_its_cookie_alone() {
        let now = id(31, "boot-a");
        let held = Some(Held {
            inode: 7,
            identity: &now,
        });
        assert!(judge(&row(7, Some((28, "boot-a"))), held, None, None));
        assert!(!judge(&row(7, Some((31, "boot-a"))), held, None, None));
        // Another inode: the held namespace says nothing about it.
        assert!(!judge(
            &row(8, Some((28, "boot-a"))),
            held,
            Some(true),
            None
        ));
    }

    #[test]
    fn a_live_veth_means_a_live_namespace() {
        assert!(!judge(
            &row(7, Some((28, "boot-a"))),
            None,
            Some(true),
            None
        ));
        assert!(!judge(&row(7, None), None, Some(true), None));
    }

    #[test]
    fn without_its_veth_a_row_lives_only_if_its_path_is_still_its_namespace() {
        let ep = row(7, Some((28, "boot-a")));
        // Veth deleted by hand, namespace still there: drift, not stale.
        assert!(!judge(&ep, None, Some(false), Some(Some((7, 28)))));
        // Path gone, or naming another namespace (same name made again, inode reused).
        assert!(judge(&ep, None, Some(false), Some(None)));
        assert!(judge(&ep, None, Some(false), Some(Some((9, 40)))));
        assert!(judge(&ep, None, Some(false), Some(Some((7, 40)))));
    }

    #[test]
    fn a_row_from_before_version_7_is_trusted_only_while_its_veth_lives() {
        let now = id(31, "boot-a");
        let held = Some(Held {
            inode: 7,
            identity: &now,
        });
        assert!(!judge(&row(7, None), held, Some(true), None));
        assert!(judge(&row(7, None), held, Some(false), None));
    }

    /// Asks [`is_held_namespace`] with fixed facts; a fact not to be needed panics.
    fn held_is(ep: &Endpoint, veth: Option<bool>, held: Option<Option<NetnsIdentity>>) -> bool {
        is_held_namespace(
            ep,
            "boot-a",
            || Ok(veth.expect("the veth was not to be asked about")),
            || Ok(held.expect("the cookie was not to be read")),
        )
        .unwrap()
    }

    #[test]
    fn a_row_with_its_veth_is_the_held_namespace_without_reading_the_cookie() {
        assert!(held_is(&row(7, Some((28, "boot-a"))), Some(true), None));
        assert!(held_is(&row(7, None), Some(true), None));
        // Another boot's row is never it, whatever has its veth's name now.
        assert!(!held_is(&row(7, Some((28, "boot-old"))), None, None));
    }

    #[test]
    fn without_its_veth_a_row_is_the_held_namespace_only_by_its_cookie() {
        let ep = row(7, Some((28, "boot-a")));
        // Veth deleted by hand: still this namespace's row (drift, for gc to repair).
        assert!(held_is(&ep, Some(false), Some(Some(id(28, "boot-a")))));
        // A gone namespace that had the inode.
        assert!(!held_is(&ep, Some(false), Some(Some(id(31, "boot-a")))));
        assert!(!held_is(&ep, Some(false), Some(None)));
        // No cookie and no veth: stale, as namespace_gone judges it.
        assert!(!held_is(&row(7, None), Some(false), None));
    }
}
