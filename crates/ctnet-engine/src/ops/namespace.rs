//! Named network namespaces: the ones users make with `ctnet netns add`, and the ones
//! `ctnet run` makes and owns for the life of its command.

use ctnet_kernel::{link, Netns, NetnsName, RtSocket};

use crate::engine::Engine;
use crate::error::{Error, ErrorKind, Result};
use crate::model::ContainerRef;
use crate::owner::Owner;
use crate::state;

/// The loopback device is always interface 1 of a network namespace.
pub(crate) const LOOPBACK_INDEX: u32 = 1;

fn netns_object(name: &str) -> String {
    format!("network namespace {name:?}")
}

/// A namespace with no name and loopback up, for a container that joins no network and
/// that nothing else joins (`ctnet run --network none` without `--name`): there is
/// nothing to record, and nothing to clean up should ctnet be killed, so it needs no
/// state at all.
pub fn anonymous_netns() -> Result<Netns> {
    let object = "a network namespace with no name";
    let ns = Netns::create_anonymous().map_err(|e| Error::kernel(object, e))?;
    ns.within(RtSocket::open)
        .and_then(|mut sock| link::set_up(&mut sock, LOOPBACK_INDEX, "lo"))
        .map_err(|e| Error::kernel(object, e))?;
    Ok(ns)
}

impl Engine {
    /// Creates a named namespace, like `ip netns add`, with loopback up.
    pub fn add_netns(&mut self, name: &NetnsName) -> Result<Netns> {
        if self.netns_dir.exists(name) {
            return Err(Error::new(
                ErrorKind::Conflict,
                netns_object(name.as_str()),
                "already exists",
                format!("choose another name, or remove it with `ctnet netns rm {name}`"),
            ));
        }
        self.create_with_loopback(name)
            .map_err(|e| Error::kernel(netns_object(name.as_str()), e))
    }

    /// Creates a namespace with loopback up, as every container's has; deletes it again
    /// if loopback cannot be brought up.
    fn create_with_loopback(&self, name: &NetnsName) -> ctnet_kernel::Result<Netns> {
        let ns = self.netns_dir.create(name)?;
        let lo_up = ns
            .within(RtSocket::open)
            .and_then(|mut sock| link::set_up(&mut sock, LOOPBACK_INDEX, "lo"));
        if let Err(e) = lo_up {
            let _ = self.netns_dir.delete(name);
            return Err(e);
        }
        Ok(ns)
    }

    /// Detaches a named namespace from all its networks, then deletes it.
    pub fn remove_netns(&mut self, name: &NetnsName) -> Result<()> {
        if !self.netns_dir.exists(name) {
            return Err(Error::not_found(
                netns_object(name.as_str()),
                "see `ctnet netns ls`",
            ));
        }
        self.detach_all(&ContainerRef::Named(name.clone()))?;
        self.netns_dir
            .delete(name)
            .map_err(|e| Error::kernel(netns_object(name.as_str()), e))?;
        self.remove_resolv_conf(name);
        self.store
            .write(|tx| state::delete_owned_netns(tx, name.as_str()))
    }

    /// Names of all named namespaces.
    pub fn list_netns(&self) -> Result<Vec<String>> {
        self.netns_dir
            .list()
            .map_err(|e| Error::kernel(format!("netns dir {}", self.netns_dir.path().display()), e))
    }

    /// Creates a namespace, loopback up, that lives as long as `owner` (the `ctnet run`
    /// process): `ctnet gc` removes it once the owner is gone.
    pub fn create_owned_netns(&mut self, name: &NetnsName, owner: &Owner) -> Result<Netns> {
        let object = netns_object(name.as_str());
        if self.netns_dir.exists(name) {
            return Err(Error::new(
                ErrorKind::Conflict,
                object,
                "already exists",
                format!("choose another --name, or remove it with `ctnet netns rm {name}`"),
            ));
        }
        self.store
            .write(|tx| state::insert_owned_netns(tx, name.as_str(), owner))?;
        match self.create_with_loopback(name) {
            Ok(ns) => Ok(ns),
            Err(e) => {
                self.store
                    .write(|tx| state::delete_owned_netns(tx, name.as_str()))?;
                Err(Error::kernel(object, e))
            }
        }
    }

    /// Detaches every endpoint of an owned namespace, then deletes the namespace.
    pub fn remove_owned_netns(&mut self, name: &NetnsName) -> Result<()> {
        self.remove_owned_netns_by_name(name.as_str())
    }

    pub(crate) fn remove_owned_netns_by_name(&mut self, name: &str) -> Result<()> {
        if let Ok(parsed) = NetnsName::new(name) {
            self.detach_all(&ContainerRef::Named(parsed.clone()))?;
            if self.netns_dir.exists(&parsed) {
                self.netns_dir
                    .delete(&parsed)
                    .map_err(|e| Error::kernel(format!("network namespace {name:?}"), e))?;
            }
            self.remove_resolv_conf(&parsed);
        }
        self.store.write(|tx| state::delete_owned_netns(tx, name))
    }
}
