//! Macvlan networks in the operations (the plans are `driver/macvlan.rs`'s).
//!
//! A macvlan network is a row only: creating it makes nothing in the kernel (its parent
//! is the user's, checked and never changed), removing it removes nothing. Each
//! container's interface is made inside its namespace over the parent, and deleted
//! from inside it on detach; when the namespace is gone the kernel has deleted the
//! interface with it, and the detach only forgets the row. There is no host side, so an
//! endpoint's `host_ifname` is None, and nothing of ctnet's table is ever added for it:
//! no masquerade, isolation or published port (containers are reached at their own
//! LAN address), as netavark adds no firewall rules for macvlan.

use std::os::fd::AsFd;

use ctnet_kernel::{link, reclaim, Netns, RtSocket, LOOPBACK_INDEX};

use crate::driver::macvlan;
use crate::engine::Engine;
use crate::error::{Error, ErrorKind, Result};
use crate::model::ports::PortSpec;
use crate::model::{
    Driver, Endpoint, Family, Ipam, MacvlanConfig, MacvlanMode, NetnsIdentity, Network,
};
use crate::ops::endpoint::{container_object, endpoint_object, has_link, interface_exists};
use crate::ops::lost_state::is_ctnet_bridge_name;
use crate::ops::network::NetworkSpec;
use crate::state;

fn network_object(name: &str) -> String {
    format!("network {name:?}")
}

fn parent_object(parent: &ctnet_kernel::IfName) -> String {
    format!("parent interface {parent}")
}

/// What a macvlan network's spec must say, before anything is looked up: its LAN's
/// subnet (ctnet does no DHCP, and a subnet from ctnet's pools is on no LAN), a mode
/// with a meaning without a source list, and none of the bridge's firewall settings,
/// which no rule of ctnet's enforces on a macvlan.
pub(crate) fn check_spec(spec: &NetworkSpec, macvlan: &MacvlanConfig) -> Result<()> {
    let object = network_object(spec.name.as_str());
    let missing = [(Family::V4, spec.ipv4), (Family::V6, spec.ipv6)]
        .into_iter()
        .find(|&(family, on)| on && spec.subnets.iter().all(|s| s.family() != family));
    if let (Some((family, _)), false) = (missing, spec.ipam == Ipam::None) {
        return Err(Error::invalid(
            &object,
            format!(
                "is a macvlan network over {} without an {family} subnet: its containers are on that interface's LAN, and ctnet does not ask the LAN for addresses (DHCP) nor make one up",
                macvlan.parent
            ),
            "give the LAN's subnet and router: --subnet CIDR --gateway ROUTER (Podman: podman network create -d macvlan -o parent=IF --subnet CIDR --gateway ROUTER)",
        ));
    }
    if macvlan.mode == MacvlanMode::Source {
        return Err(Error::invalid(
            &object,
            "macvlan mode source receives only frames from a list of source MAC addresses, which neither ctnet nor Podman can give: the containers would receive nothing",
            "use mode bridge (the default), private, vepa or passthru",
        ));
    }
    let refused = |setting: &str| {
        Error::invalid(
            &object,
            format!("is a macvlan network, and {setting} applies to bridge networks only (a macvlan's traffic never passes a bridge or ctnet's firewall)"),
            format!("leave {setting} out; containers on one parent are kept apart by --macvlan-mode private"),
        )
    };
    if spec.internal {
        return Err(refused("--internal"));
    }
    if !spec.icc {
        return Err(refused("--icc false"));
    }
    if spec.bridge.is_some() {
        return Err(refused("--bridge"));
    }
    Ok(())
}

/// Refuses published ports on a macvlan network: nothing on the host forwards to its
/// containers, which are reached at their own LAN address.
pub(crate) fn refuse_ports(net: &Network, publish: &[PortSpec]) -> Result<()> {
    if net.driver != Driver::Macvlan || publish.is_empty() {
        return Ok(());
    }
    Err(Error::invalid(
        network_object(net.name.as_str()),
        format!(
            "is a macvlan network: its containers have addresses of their own on {}'s LAN, so ports cannot be published to them (container port {}/{})",
            net.macvlan.as_ref().map_or_else(String::new, |m| m.parent.to_string()),
            publish[0].container.first(),
            publish[0].protocol.as_str()
        ),
        "drop -p and reach the container at its own address, or publish on a bridge network the container is also attached to",
    ))
}

/// True when the namespace at an endpoint's path (`at_path`: its inode and cookie, None
/// when the path opens none) is still the endpoint's, so the interface in it is the
/// endpoint's to delete: its inode, and its cookie under this boot (`boot_id`: cookies
/// count again from 1 after a reboot). Without a cookie (a row not ready yet, whose
/// namespace the failing attach still holds open) the inode decides.
pub(crate) fn namespace_is_the_endpoints(
    ep: &Endpoint,
    at_path: Option<(u64, u64)>,
    boot_id: &str,
) -> bool {
    match (at_path, &ep.identity) {
        (None, _) => false,
        (Some((inode, cookie)), Some(id)) => {
            inode == ep.netns_inode && cookie == id.cookie && id.boot_id == boot_id
        }
        (Some((inode, _)), None) => inode == ep.netns_inode,
    }
}

/// The namespace at the endpoint's path if it is still the endpoint's
/// ([`namespace_is_the_endpoints`]); None when it is gone (and took the interface).
fn endpoint_netns(ep: &Endpoint) -> Result<Option<Netns>> {
    let Ok(netns) = Netns::open(&ep.netns_path) else {
        return Ok(None);
    };
    let boot_id = ctnet_kernel::netns::boot_id()
        .map_err(|e| Error::kernel(container_object(&ep.container), e))?;
    let inode = netns.inode().ok();
    // Without cookies (a kernel before 5.14) rows have none, and the inode decides.
    let cookie = netns.cookie().ok().unwrap_or(0);
    let at_path = inode.map(|i| (i, cookie));
    Ok(namespace_is_the_endpoints(ep, at_path, &boot_id).then_some(netns))
}

impl Engine {
    /// Checks a macvlan network's parent on the host: it exists, is not loopback, not
    /// a bridge of ctnet's, not a container's veth, and takes the network's MTU.
    pub(crate) fn check_macvlan_parent(
        &mut self,
        spec: &NetworkSpec,
        macvlan: &MacvlanConfig,
    ) -> Result<()> {
        let parent = &macvlan.parent;
        let object = parent_object(parent);
        let net = network_object(spec.name.as_str());
        let Some(found) =
            link::get(self.host()?, parent.as_str()).map_err(|e| Error::kernel(&object, e))?
        else {
            return Err(Error::new(
                ErrorKind::NotFound,
                object,
                format!("does not exist on this host (no such device), so {net} cannot put containers on it"),
                "give an existing interface as the parent (`ip link` lists them): ctnet network create --driver macvlan --parent IF, or podman network create -d macvlan -o parent=IF",
            ));
        };
        let refuse = |cause: String| {
            Error::invalid(
                parent_object(parent),
                cause,
                "give the host's interface on the LAN the containers should join (e.g. eth0, or a VLAN interface on it)",
            )
        };
        if found.index == LOOPBACK_INDEX || found.name == "lo" {
            return Err(refuse(
                "is the loopback device: nothing reaches a LAN through it".into(),
            ));
        }
        let networks = state::list_networks(self.store.read())?;
        if let Some(owner) = networks
            .iter()
            .find(|n| n.driver.is_bridged() && n.bridge == *parent)
        {
            return Err(refuse(format!(
                "is the bridge of ctnet network {:?}: a macvlan network goes on a LAN interface, not on another network's bridge",
                owner.name.as_str()
            )));
        }
        if found.kind.as_deref() == Some("bridge") && is_ctnet_bridge_name(&found.name) {
            return Err(refuse(
                "is a bridge ctnet made for a network: a macvlan network goes on a LAN interface"
                    .into(),
            ));
        }
        if state::host_ifname_taken(self.store.read(), parent.as_str())? {
            return Err(refuse(
                "is the host side of a container's veth, made by ctnet".into(),
            ));
        }
        if let Some(mtu) = spec.mtu.filter(|m| *m > found.mtu) {
            return Err(Error::invalid(
                net,
                format!(
                    "MTU {mtu} is above its parent {parent}'s {}: a macvlan interface cannot be larger than its parent",
                    found.mtu
                ),
                format!(
                    "use an MTU of {} or less, or leave it out to take the parent's",
                    found.mtu
                ),
            ));
        }
        Ok(())
    }

    /// Makes a container's macvlan interface inside its namespace and configures it;
    /// returns the namespace's identity (see `Engine::build_endpoint`).
    pub(crate) fn build_macvlan_endpoint(
        &mut self,
        net: &Network,
        macvlan: &MacvlanConfig,
        ep: &Endpoint,
        netns: &Netns,
    ) -> Result<Option<NetnsIdentity>> {
        let object = endpoint_object(net, ep);
        let kernel = |e| Error::kernel(&object, e);
        let parent = link::index_of(self.host()?, macvlan.parent.as_str())
            .map_err(kernel)?
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    parent_object(&macvlan.parent),
                    format!(
                        "is gone from this host, and network {:?} puts its containers on it",
                        net.name.as_str()
                    ),
                    format!(
                        "bring interface {} back, or remove the network and create it over another parent",
                        macvlan.parent
                    ),
                )
            })?;
        let spec = macvlan::interface(net, macvlan, ep, netns.as_fd(), parent);
        let made = self.host()?.execute(macvlan::create_request(&spec));
        if let Err(e) = made {
            return Err(match e.errno() {
                Some(libc::EEXIST) if has_link(netns, &ep.ifname) => {
                    interface_exists(ep, "a device ctnet did not make has that name")
                }
                _ => kernel(e),
            });
        }
        self.configure_container_side(net, ep, netns, &object, |index| {
            macvlan::container_requests(net, ep, index)
        })
    }

    /// Deletes a macvlan endpoint's interface from inside its namespace, if that
    /// namespace is still the endpoint's; a namespace that is gone took the interface
    /// with it, which is fine.
    pub(crate) fn delete_macvlan_interface(&mut self, ep: &Endpoint) -> Result<()> {
        let Some(netns) = endpoint_netns(ep)? else {
            return Ok(());
        };
        let ifname = ep.ifname.clone();
        // Deleted as a veth is (`reclaim`): a child sits out the kernel's clean-up wait
        // (~20 ms), the thread stays inside only until the kernel has announced it gone.
        netns
            .within(|| {
                let mut sock = RtSocket::open()?;
                match link::get(&mut sock, ifname.as_str())? {
                    Some(l) if l.kind.as_deref() == Some("macvlan") => {
                        reclaim::delete_links(&[ifname.as_str()], &[])
                    }
                    _ => Ok(()),
                }
            })
            .map_err(|e| Error::kernel(container_object(&ep.container), e))
    }

    /// Takes a macvlan endpoint's interface down inside its namespace (the first half of
    /// a `--no-wait` detach: the container is cut off at once).
    pub(crate) fn set_macvlan_interface_down(&mut self, ep: &Endpoint) -> Result<()> {
        let Some(netns) = endpoint_netns(ep)? else {
            return Ok(());
        };
        let ifname = ep.ifname.clone();
        netns
            .within(|| link::set_down(&mut RtSocket::open()?, ifname.as_str()).map(|_| ()))
            .map_err(|e| Error::kernel(container_object(&ep.container), e))
    }
}

/// What is wrong with a macvlan network's parent among the host's `links` (missing, or
/// down), with the fix; None when it is fine or the network is not a macvlan one. ctnet
/// never makes or changes the parent: it is the user's.
pub(crate) fn parent_drift(net: &Network, links: &[link::Link]) -> Option<(String, String)> {
    let macvlan = net.macvlan.as_ref()?;
    match links.iter().find(|l| l.name == macvlan.parent.as_str()) {
        None => Some((
            format!(
                "its parent interface {} is missing: its containers have lost their interfaces",
                macvlan.parent
            ),
            format!(
                "bring interface {} back, then run `ctnet gc`, which makes the containers' interfaces again",
                macvlan.parent
            ),
        )),
        Some(l) if !l.up => Some((
            format!(
                "its parent interface {} is down: its containers are cut off",
                macvlan.parent
            ),
            format!("bring it up (`ip link set {} up`)", macvlan.parent),
        )),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NetworkName;

    fn spec() -> (NetworkSpec, MacvlanConfig) {
        let mut spec = NetworkSpec::named(NetworkName::new("lan").unwrap());
        spec.subnets = vec![crate::model::Subnet::parse("10.77.0.0/24").unwrap()];
        let macvlan = MacvlanConfig {
            parent: ctnet_kernel::IfName::new("lan0").unwrap(),
            mode: MacvlanMode::Bridge,
        };
        (spec, macvlan)
    }

    #[test]
    fn a_macvlan_spec_needs_its_lans_subnet_and_no_bridge_settings() {
        let (spec, macvlan) = spec();
        assert!(check_spec(&spec, &macvlan).is_ok());
        let mut no_subnet = spec.clone();
        no_subnet.subnets.clear();
        let e = check_spec(&no_subnet, &macvlan).unwrap_err();
        assert!(
            e.cause.contains("DHCP") && e.fix.contains("--subnet"),
            "{e}"
        );
        no_subnet.ipam = Ipam::None;
        assert!(check_spec(&no_subnet, &macvlan).is_ok());
        // IPv6 on, and only the IPv4 subnet given: no ULA is made up for a LAN.
        let mut v6 = spec.clone();
        v6.ipv6 = true;
        let e = check_spec(&v6, &macvlan).unwrap_err();
        assert!(e.cause.contains("IPv6 subnet"), "{e}");
        v6.subnets
            .push(crate::model::Subnet::parse("fd00:77::/64").unwrap());
        assert!(check_spec(&v6, &macvlan).is_ok());
        for (change, word) in [
            (
                &(|s: &mut NetworkSpec| s.internal = true) as &dyn Fn(&mut NetworkSpec),
                "--internal",
            ),
            (&|s: &mut NetworkSpec| s.icc = false, "--icc"),
            (
                &|s: &mut NetworkSpec| s.bridge = Some(ctnet_kernel::IfName::new("br0").unwrap()),
                "--bridge",
            ),
        ] {
            let mut s = spec.clone();
            change(&mut s);
            let e = check_spec(&s, &macvlan).unwrap_err();
            assert!(e.cause.contains(word), "{e}");
        }
        let source = MacvlanConfig {
            mode: MacvlanMode::Source,
            ..macvlan
        };
        assert!(check_spec(&spec, &source)
            .unwrap_err()
            .cause
            .contains("source"));
    }

    #[test]
    fn only_the_endpoints_own_namespace_has_its_interface_deleted() {
        let mut ep = crate::driver::macvlan::tests::endpoint("10.77.0.2", true);
        ep.netns_inode = 7;
        assert!(namespace_is_the_endpoints(&ep, Some((7, 99)), "b"));
        assert!(!namespace_is_the_endpoints(&ep, Some((8, 99)), "b"));
        assert!(!namespace_is_the_endpoints(&ep, None, "b"));
        ep.identity = Some(NetnsIdentity {
            cookie: 5,
            boot_id: "b".into(),
        });
        assert!(namespace_is_the_endpoints(&ep, Some((7, 5)), "b"));
        // The inode reused by another namespace: its interface is not ours.
        assert!(!namespace_is_the_endpoints(&ep, Some((7, 6)), "b"));
        // Inode and cookie again after a reboot: another namespace.
        assert!(!namespace_is_the_endpoints(&ep, Some((7, 5)), "c"));
    }
}
