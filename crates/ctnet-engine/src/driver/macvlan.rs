//! The macvlan driver: each container gets an interface of its own on a parent link of
//! the host (its LAN), with its own MAC address; nothing else is made on the host.
//!
//! ```text
//!  host namespace                            container namespace
//!  ┌──────────────────────────────┐          ┌──────────────────────────────────┐
//!  │ parent lan0 (the user's;     │          │ lo up                            │
//!  │  ctnet never changes it)     │          │ eth0  macvlan, mode bridge|…     │
//!  │   ▲                          │ IFLA_LINK│       link lan0 (in the host)    │
//!  │   └──────────────────────────┼──────────┤       10.77.0.10/24              │
//!  │ no bridge, no veth, no       │          │       mac 02:42:0a:4d:00:0a      │
//!  │ nftables elements, no        │          │ default via 10.77.0.1            │
//!  │ forwarding sysctls           │          │   (the LAN's router, the         │
//!  └──────────────────────────────┘          │    network's gateway)            │
//!          │ the wire                         └──────────────────────────────────┘
//!     LAN hosts see the container's own MAC and address; no NAT
//! ```
//!
//! The interface is created in one request straight inside the container's namespace
//! under its final name, its parent named by index in the host namespace: it never
//! appears on the host. Inside, it is configured as a veth's container side is (the
//! same requests, in one round trip). Deleting it, or the namespace ending, is all a
//! detach needs: the kernel holds nothing else for it.
//!
//! What macvlan means for the rest of ctnet:
//! - containers are reached at their own LAN address, so ports are never published
//!   (refused, see `ops/macvlan.rs`); the network has no masquerade, isolation, icc or
//!   internal rules, as netavark adds no firewall rules for macvlan;
//! - in `bridge` mode (the default) containers on one parent reach each other inside the
//!   kernel; in `private` mode they cannot (the mode is the kernel's, not a rule of ours);
//! - the host itself cannot reach its containers through the parent: the kernel does
//!   not pass frames between a parent and its macvlans (a macvlan of the host's own on
//!   the parent would, which ctnet does not make).

use std::os::fd::BorrowedFd;

use ctnet_kernel::link::{self, MacvlanMode as KernelMode, MacvlanSpec};
use ctnet_kernel::netlink::Request;

use crate::driver::bridge;
use crate::model::{Endpoint, MacvlanConfig, MacvlanMode, Network};

/// The kernel's mode for a network's mode.
pub fn kernel_mode(mode: MacvlanMode) -> KernelMode {
    match mode {
        MacvlanMode::Bridge => KernelMode::Bridge,
        MacvlanMode::Private => KernelMode::Private,
        MacvlanMode::Vepa => KernelMode::Vepa,
        MacvlanMode::Passthru => KernelMode::Passthru,
        MacvlanMode::Source => KernelMode::Source,
    }
}

/// The container's interface: a macvlan over `macvlan.parent` (link `parent` of the
/// host) in the network's mode, made inside `netns` as `ep.ifname` with the endpoint's
/// MAC and the network's MTU (None: the parent's).
pub fn interface<'a>(
    net: &Network,
    macvlan: &MacvlanConfig,
    ep: &'a Endpoint,
    netns: BorrowedFd<'a>,
    parent: u32,
) -> MacvlanSpec<'a> {
    MacvlanSpec {
        name: &ep.ifname,
        parent,
        mode: kernel_mode(macvlan.mode),
        netns,
        mtu: net.mtu,
        mac: Some(ep.mac.bytes()),
    }
}

/// The request that makes [`interface`].
pub fn create_request(spec: &MacvlanSpec<'_>) -> Request {
    link::create_macvlan_request(spec)
}

/// Inside the container (its interface is link `index` there): exactly what a veth's
/// container side gets — loopback up, the addresses, the interface up, and the default
/// route via the network's gateway (the LAN's router) for each family this endpoint
/// routes by default.
pub fn container_requests(net: &Network, ep: &Endpoint, index: u32) -> Vec<Request> {
    bridge::container_requests(net, ep, index)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::net::IpAddr;
    use std::os::fd::AsFd;
    use std::path::PathBuf;

    use ctnet_kernel::IfName;

    use super::*;
    use crate::model::{
        Driver, Family, Ipam, Isolation, MacAddr, NetworkName, RowState, Subnet, SubnetConfig,
    };

    fn network(mode: MacvlanMode) -> Network {
        Network {
            name: NetworkName::new("lan").unwrap(),
            id: "0".repeat(64),
            driver: Driver::Macvlan,
            subnets: vec![SubnetConfig {
                subnet: Subnet::parse("10.77.0.0/24").unwrap(),
                gateway: "10.77.0.1".parse().unwrap(),
            }],
            bridge: IfName::new("br-000000000000").unwrap(),
            mtu: None,
            internal: false,
            icc: true,
            isolation: Isolation::Strict,
            metric: None,
            ipam: Ipam::Ctnet,
            macvlan: Some(MacvlanConfig {
                parent: IfName::new("lan0").unwrap(),
                mode,
            }),
            overlay: None,
            state: RowState::Pending,
            created: 0,
            creator: None,
            dns: false,
        }
    }

    pub(crate) fn endpoint(ip: &str, default_route: bool) -> Endpoint {
        let ip: IpAddr = ip.parse().unwrap();
        Endpoint {
            id: 1,
            network: NetworkName::new("lan").unwrap(),
            container: "c1".into(),
            netns_path: PathBuf::from("/run/netns/c1"),
            netns_inode: 7,
            ifname: IfName::new("eth0").unwrap(),
            host_ifname: None,
            mac: MacAddr::for_address(ip),
            ips: vec![ip],
            default_routes: if default_route {
                vec![Family::V4]
            } else {
                Vec::new()
            },
            netns_owned: false,
            state: RowState::Pending,
            ports: Vec::new(),
            name: None,
            aliases: Vec::new(),
            labels: Default::default(),
            identity: None,
        }
    }

    fn ops(requests: &[Request]) -> Vec<&str> {
        requests.iter().map(|r| r.op.as_str()).collect()
    }

    #[test]
    fn the_container_gets_its_address_lo_and_the_default_route_via_the_lan_router() {
        let net = network(MacvlanMode::Bridge);
        assert_eq!(
            ops(&container_requests(&net, &endpoint("10.77.0.2", true), 2)),
            [
                "turn off IPv6 link-local addressing on eth0",
                "bring lo up",
                "add address 10.77.0.2/24 to eth0",
                "bring eth0 up",
                "add default route via 10.77.0.1",
            ]
        );
        // A second network of the container: no default route from this one.
        let second = container_requests(&net, &endpoint("10.77.0.3", false), 2);
        assert!(ops(&second).iter().all(|op| !op.contains("route")));
    }

    #[test]
    fn the_interface_is_made_inside_the_container_over_the_parent_with_the_mode() {
        let netns = std::fs::File::open("/proc/self/ns/net").unwrap();
        let ep = endpoint("10.77.0.2", true);
        for (mode, kernel) in [
            (MacvlanMode::Bridge, KernelMode::Bridge),
            (MacvlanMode::Private, KernelMode::Private),
            (MacvlanMode::Vepa, KernelMode::Vepa),
            (MacvlanMode::Passthru, KernelMode::Passthru),
        ] {
            let mut net = network(mode);
            net.mtu = Some(1400);
            let macvlan = net.macvlan.clone().unwrap();
            let spec = interface(&net, &macvlan, &ep, netns.as_fd(), 4);
            assert_eq!(spec.name.as_str(), "eth0");
            assert_eq!((spec.parent, spec.mode, spec.mtu), (4, kernel, Some(1400)));
            assert_eq!(spec.mac, Some([0x02, 0x42, 10, 77, 0, 2]));
            assert_eq!(create_request(&spec).op, "create macvlan eth0 on link 4");
        }
    }
}
