//! The bridge driver: what a bridge network and each container on it ask of the kernel.
//!
//! ```text
//!  host namespace                               container namespace
//!  ┌────────────────────────────────┐          ┌──────────────────────────────────┐
//!  │ bridge br-… (mtu, no snooping) │          │ lo up                            │
//!  │   10.1.0.1/24   (gateway, v4)  │          │ eth0  10.1.0.2/24                │
//!  │   fd00:…::1/64  (gateway, v6,  │   veth   │       fd00:…::2/64 (nodad)       │
//!  │                  nodad)        │◄────────►│       mac 02:42:…                │
//!  │   └─ port vethXXXXXXX          │   pair   │ default via 10.1.0.1 [metric M]  │
//!  │        hairpin, isolated       │          │ default via fd00:…::1 [metric M] │
//!  │        unless icc, no IPv6     │          │ (IPv4-only: no IPv6 link-local)  │
//!  └────────────────────────────────┘          └──────────────────────────────────┘
//! ```
//!
//! The veth is created with its peer already inside the container's namespace and its
//! host side already a port of the bridge, in one request. The kernel objects of one
//! side go in one pipelined round trip. A network's and an endpoint's elements of ctnet's
//! nftables table are part of the plan too ([`network_rules`], [`port_rules`]). Which
//! networks give the default routes, and their metric, is [`super::routes`]' call. A
//! network without addresses (`ipam none`) has none of the addresses or routes drawn.

use std::os::fd::BorrowedFd;

use ctnet_kernel::link::{BridgeSpec, VethSpec};
use ctnet_kernel::netlink::Request;
use ctnet_kernel::{addr, link, route, IfName, LOOPBACK_INDEX};

use super::routes::RouteRule;
use crate::datapath::nft::{NetworkRules, PortGuard, PortRules};
use crate::model::{Endpoint, Family, Network, IPV6_MIN_MTU};

/// The bridge device of a network.
///
/// Multicast snooping is off. With it on (the kernel's default), every port the bridge
/// gains re-arms the IGMP and MLD query timers of every port it already has, and each of
/// those timers then fires: adding the thousandth container cost a thousand timer
/// restarts and two thousand callbacks, a quarter of the kernel's work for that veth.
/// With no multicast querier on the bridge (ctnet runs none) snooping only learns
/// reports that then expire, and it is known to delay IPv6 neighbour discovery. Off, the
/// bridge floods multicast to its ports as a plain switch does, which is what containers
/// on one network expect.
///
/// The bridge gets an address of its own (`mac`, random and locally administered, as
/// Docker's bridges do): one it is made without follows its lowest-numbered port, so
/// detaching that container changed the gateway's address under every other container,
/// cut off until its ARP entry went stale (measured 44 s).
pub fn create_bridge(net: &Network, mac: [u8; 6]) -> Request {
    link::create_bridge_request(&BridgeSpec {
        name: &net.bridge,
        mtu: net.mtu,
        multicast_snooping: false,
        mac: Some(mac),
    })
}

/// A random, locally administered, unicast hardware address made from 6 random bytes.
pub fn bridge_mac(random: [u8; 6]) -> [u8; 6] {
    let mut mac = random;
    mac[0] = (mac[0] & !0x01) | 0x02;
    mac
}

/// The address a network's bridge is made with: [`bridge_mac`] of the first six bytes of
/// the network's (random) id, so the bridge made again after a reboot or an `ip link del`
/// (which `ctnet gc` repairs) has the address it had, and the containers' ARP entries for
/// the gateway stay right.
pub fn bridge_mac_for(net: &Network) -> [u8; 6] {
    let id = net.id.as_bytes();
    bridge_mac(std::array::from_fn(|i| {
        id.get(2 * i..2 * i + 2)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .unwrap_or(0)
    }))
}

/// The link-local address an IPv6 bridge carries from the start (as Docker's bridges
/// do). The kernel sends no neighbour solicitation for forwarded traffic until the
/// outgoing interface has a usable link-local address, and the one it makes itself
/// appears only when the bridge gets carrier (its first container): without this, the
/// first packets forwarded to a container that was just attached waited about a second.
pub const BRIDGE_LINK_LOCAL: std::net::Ipv6Addr =
    std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);

/// The gateway address of each family on the bridge (link `index`), and for IPv6 the
/// bridge's own link-local address.
pub fn gateway_requests(net: &Network, index: u32) -> Vec<Request> {
    let what = format!("bridge {}", net.bridge);
    let mut requests: Vec<Request> = net
        .subnets
        .iter()
        .map(|s| addr::add_request(index, s.gateway, s.subnet.prefix_len(), &what))
        .collect();
    if net.ipv6() {
        requests.push(addr::add_request(index, BRIDGE_LINK_LOCAL, 64, &what));
    }
    requests
}

/// The host side of a container's veth (named `veth`): the pair, its peer created
/// straight inside the container's namespace (`netns`), and the host side made a port of
/// the bridge (link `bridge`) with its flags. The flags go in the same round trip as the creation, before
/// the container side is up: an icc=false container is never briefly reachable.
pub fn host_side_requests(
    net: &Network,
    ep: &Endpoint,
    veth: &IfName,
    netns: BorrowedFd<'_>,
    bridge: u32,
) -> Vec<Request> {
    vec![
        link::create_veth_request(&VethSpec {
            name: veth,
            peer_name: &ep.ifname,
            peer_netns: netns,
            master: Some(bridge),
            mtu: net.mtu,
            peer_mac: Some(ep.mac.bytes()),
        }),
        link::set_bridge_port_flags_request(veth, true, !net.icc),
    ]
}

/// Inside the container (its interface is link `index` there): loopback up, an address
/// of each family of the network, the interface up, and the default route via the
/// gateway of each family the endpoint routes by default, with its metric (see
/// [`super::routes`]).
///
/// An IPv4-only network gives the interface no IPv6 link-local address either, as
/// Docker does; a network without addresses (`ipam none`) leaves the kernel's, as
/// netavark does (the one address its containers have without configuring any). IPv6 addresses are added without duplicate address detection, so they
/// are usable the moment the attach returns (with it, ~1.6 s later).
pub fn container_requests(net: &Network, ep: &Endpoint, index: u32) -> Vec<Request> {
    let mut requests = Vec::new();
    // Below IPv6's minimum MTU the kernel gives a device no IPv6 at all, and refuses
    // the request (EAFNOSUPPORT) as there is nothing to turn off.
    let has_ipv6 = net.mtu.is_none_or(|m| m >= IPV6_MIN_MTU);
    if !net.ipv6() && has_ipv6 && !net.subnets.is_empty() {
        requests.push(link::no_ipv6_link_local_request(&ep.ifname));
    }
    if net.ipv6() {
        // The link-local address anti-spoofing lets out (`port_guard`), whatever the
        // namespace's default way of making one.
        requests.push(link::eui64_link_local_request(&ep.ifname));
    }
    requests.push(link::set_up_request(LOOPBACK_INDEX, "lo"));
    for ip in &ep.ips {
        let subnet = net
            .subnet(Family::of(*ip))
            .expect("an endpoint's addresses come from its network's subnets");
        requests.push(addr::add_request(
            index,
            *ip,
            subnet.subnet.prefix_len(),
            ep.ifname.as_str(),
        ));
    }
    requests.push(link::set_up_request(index, ep.ifname.as_str()));
    let rule = RouteRule::for_container(&ep.container);
    for s in &net.subnets {
        if ep.routes_default(s.subnet.family()) {
            requests.push(route::add_default_route_request(
                &rule.route(net, s.gateway),
            ));
        }
    }
    requests
}

/// The network's part of ctnet's nftables table: its subnets (masquerade), its bridge
/// (isolation, internal, icc).
pub fn network_rules(net: &Network) -> NetworkRules {
    NetworkRules {
        subnets: net.subnets.iter().map(|s| s.subnet).collect(),
        bridge: net.bridge.clone(),
        internal: net.internal,
        icc: net.icc,
        isolation: net.isolation,
        vxlan: net.overlay.as_ref().and_then(|o| {
            let vxlan = IfName::new(&o.vxlan).ok()?;
            Some((vxlan, o.cluster))
        }),
    }
}

/// What may leave a container's veth, for the anti-spoofing table: its MAC, its
/// addresses and, when it has IPv6, the link-local address the kernel makes from the MAC
/// ([`eui64_link_local`]; `container_requests` asks for that way of making it). `None` for
/// an endpoint with no veth (macvlan: its frames never cross a bridge of ctnet's) or no
/// addresses (`ipam none`: whoever configures it chooses them, so ctnet cannot say
/// which are its own).
pub fn port_guard(ep: &Endpoint) -> Option<PortGuard> {
    let port = ep.host_ifname.clone()?;
    if ep.ips.is_empty() {
        return None;
    }
    let mac = ep.mac.bytes();
    let mut ips = ep.ips.clone();
    if ep.ips.iter().any(|ip| ip.is_ipv6()) {
        ips.push(eui64_link_local(mac).into());
    }
    Some(PortGuard { port, mac, ips })
}

/// The IPv6 link-local address of an interface with hardware address `mac` (modified
/// EUI-64, RFC 4291 appendix A): fe80::, then the MAC with its universal/local bit
/// flipped and ff:fe in the middle.
pub fn eui64_link_local(mac: [u8; 6]) -> std::net::Ipv6Addr {
    let mut bytes = [0u8; 16];
    bytes[0] = 0xfe;
    bytes[1] = 0x80;
    bytes[8..11].copy_from_slice(&[mac[0] ^ 0x02, mac[1], mac[2]]);
    bytes[11..13].copy_from_slice(&[0xff, 0xfe]);
    bytes[13..16].copy_from_slice(&mac[3..6]);
    std::net::Ipv6Addr::from(bytes)
}

/// What the firewall needs to forward an endpoint's published ports: each port to the
/// container's address of each family it applies to (a port on every host address
/// forwards over both families of a dual-stack network; one bound to a host address only
/// over that address's family).
pub fn port_rules(ep: &Endpoint) -> Vec<PortRules> {
    ep.ports
        .iter()
        .flat_map(|&port| {
            ep.ips
                .iter()
                .filter(move |ip| port.host_ip.is_none_or(|h| h.is_ipv4() == ip.is_ipv4()))
                .map(move |&container_ip| PortRules { port, container_ip })
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use std::net::IpAddr;
    use std::path::PathBuf;

    use super::*;
    use crate::model::{Driver, MacAddr, NetworkName, RowState, Subnet, SubnetConfig};

    pub(crate) fn network(subnets: &[(&str, &str)]) -> Network {
        Network {
            name: NetworkName::new("blue").unwrap(),
            id: "0".repeat(64),
            driver: Driver::Bridge,
            subnets: subnets
                .iter()
                .map(|(s, g)| SubnetConfig {
                    subnet: Subnet::parse(s).unwrap(),
                    gateway: g.parse().unwrap(),
                })
                .collect(),
            bridge: IfName::new("br-blue").unwrap(),
            mtu: None,
            internal: false,
            icc: true,
            state: RowState::Pending,
            created: 0,
            creator: None,
            dns: false,
            isolation: crate::model::Isolation::Strict,
            metric: None,
            ipam: crate::model::Ipam::Ctnet,
            macvlan: None,
            overlay: None,
        }
    }

    fn endpoint(ips: &[&str], default_route: bool) -> Endpoint {
        let ips: Vec<IpAddr> = ips.iter().map(|ip| ip.parse().unwrap()).collect();
        let default_routes = if default_route {
            ips.iter().map(|ip| Family::of(*ip)).collect()
        } else {
            Vec::new()
        };
        Endpoint {
            id: 1,
            network: NetworkName::new("blue").unwrap(),
            container: "c1".into(),
            netns_path: PathBuf::from("/run/netns/c1"),
            netns_inode: 7,
            ifname: IfName::new("eth0").unwrap(),
            host_ifname: Some(IfName::new("vethabcdef0").unwrap()),
            mac: MacAddr::for_address(ips[0]),
            ips,
            default_routes,
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
    fn a_bridge_address_is_local_and_unicast() {
        assert_eq!(bridge_mac([0xff; 6]), [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(bridge_mac([0; 6]), [0x02, 0, 0, 0, 0, 0]);
        let mut net = network(&[("10.1.0.0/24", "10.1.0.1")]);
        net.id = "0123456789abcdef".into();
        assert_eq!(bridge_mac_for(&net), [0x02, 0x23, 0x45, 0x67, 0x89, 0xab]);
        assert_eq!(bridge_mac_for(&net), bridge_mac_for(&net.clone()));
        let net = network(&[("10.1.0.0/24", "10.1.0.1")]);
        assert_eq!(
            create_bridge(&net, [2, 0, 0, 0, 0, 9]).op,
            "create bridge br-blue"
        );
    }

    #[test]
    fn an_ipv4_container_gets_no_ipv6_at_all() {
        let net = network(&[("10.1.0.0/24", "10.1.0.1")]);
        let plan = container_requests(&net, &endpoint(&["10.1.0.2"], true), 2);
        assert_eq!(
            ops(&plan),
            [
                "turn off IPv6 link-local addressing on eth0",
                "bring lo up",
                "add address 10.1.0.2/24 to eth0",
                "bring eth0 up",
                "add default route via 10.1.0.1",
            ]
        );
    }

    /// Under IPv6's minimum MTU the interface has no IPv6 to turn off (the kernel
    /// would refuse the request).
    #[test]
    fn an_ipv4_container_under_1280_bytes_has_no_ipv6_to_turn_off() {
        let mut net = network(&[("10.1.0.0/24", "10.1.0.1")]);
        net.mtu = Some(1279);
        let plan = container_requests(&net, &endpoint(&["10.1.0.2"], true), 2);
        assert_eq!(ops(&plan)[0], "bring lo up");
        net.mtu = Some(1280);
        let plan = container_requests(&net, &endpoint(&["10.1.0.2"], true), 2);
        assert_eq!(ops(&plan)[0], "turn off IPv6 link-local addressing on eth0");
    }

    #[test]
    fn a_dual_stack_container_gets_both_families_and_both_default_routes() {
        let net = network(&[("10.1.0.0/24", "10.1.0.1"), ("fd00:1::/64", "fd00:1::1")]);
        let plan = container_requests(&net, &endpoint(&["10.1.0.2", "fd00:1::2"], true), 2);
        assert_eq!(
            ops(&plan),
            [
                "make the IPv6 link-local address of eth0 from its MAC",
                "bring lo up",
                "add address 10.1.0.2/24 to eth0",
                "add address fd00:1::2/64 to eth0",
                "bring eth0 up",
                "add default route via 10.1.0.1",
                "add default route via fd00:1::1",
            ]
        );
        // A second network of the container adds its addresses, not default routes.
        let second = container_requests(&net, &endpoint(&["10.1.0.3", "fd00:1::3"], false), 3);
        assert!(
            ops(&second).iter().all(|op| !op.contains("route")),
            "{:?}",
            ops(&second)
        );
    }

    #[test]
    fn published_ports_forward_over_each_family_they_apply_to() {
        use crate::model::ports::{Protocol, PublishedPort};
        let port = |host_ip: Option<&str>, host_port| PublishedPort {
            host_ip: host_ip.map(|ip| ip.parse().unwrap()),
            host_port,
            container_port: 80,
            protocol: Protocol::Tcp,
        };
        let mut ep = endpoint(&["10.1.0.2", "fd00:1::2"], true);
        ep.ports = vec![
            port(None, 8080),
            port(Some("2001:db8::1"), 8081),
            port(Some("203.0.113.1"), 8082),
        ];
        let rules: Vec<(u16, String)> = port_rules(&ep)
            .iter()
            .map(|r| (r.port.host_port, r.container_ip.to_string()))
            .collect();
        assert_eq!(
            rules,
            [
                (8080, "10.1.0.2".to_string()),
                (8080, "fd00:1::2".to_string()),
                (8081, "fd00:1::2".to_string()),
                (8082, "10.1.0.2".to_string()),
            ]
        );
        let net = network(&[("10.1.0.0/24", "10.1.0.1"), ("fd00:1::/64", "fd00:1::1")]);
        let subnets: Vec<String> = network_rules(&net)
            .subnets
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(subnets, ["10.1.0.0/24", "fd00:1::/64"]);
    }

    #[test]
    fn an_ipv6_only_container_and_its_bridge() {
        let net = network(&[("fd00:2::/64", "fd00:2::1")]);
        let plan = container_requests(&net, &endpoint(&["fd00:2::5"], true), 2);
        assert_eq!(
            ops(&plan),
            [
                "make the IPv6 link-local address of eth0 from its MAC",
                "bring lo up",
                "add address fd00:2::5/64 to eth0",
                "bring eth0 up",
                "add default route via fd00:2::1",
            ]
        );
        assert_eq!(
            ops(&gateway_requests(&net, 9)),
            [
                "add address fd00:2::1/64 to bridge br-blue",
                "add address fe80::1/64 to bridge br-blue",
            ]
        );
    }

    #[test]
    fn a_podman_container_routes_with_netavark_metrics() {
        let mut net = network(&[("10.1.0.0/24", "10.1.0.1"), ("fd00:1::/64", "fd00:1::1")]);
        let mut ep = endpoint(&["10.1.0.2", "fd00:1::2"], true);
        ep.container = "podman:abc".into();
        let plan = container_requests(&net, &ep, 2);
        assert_eq!(
            ops(&plan)[5..],
            [
                "add default route via 10.1.0.1 metric 100",
                "add default route via fd00:1::1 metric 100",
            ]
        );
        net.metric = Some(7);
        let plan = container_requests(&net, &ep, 2);
        assert_eq!(ops(&plan)[5], "add default route via 10.1.0.1 metric 7");
    }

    #[test]
    fn a_guarded_port_lets_out_its_mac_its_addresses_and_its_link_local_one() {
        let ep = endpoint(&["10.1.0.2", "fd00:1::2"], true);
        let guard = port_guard(&ep).unwrap();
        assert_eq!(guard.port.as_str(), "vethabcdef0");
        assert_eq!(guard.mac, ep.mac.bytes());
        let ips: Vec<String> = guard.ips.iter().map(|ip| ip.to_string()).collect();
        // 02:42:0a:01:00:02 (Docker's MAC for 10.1.0.2): the local bit flipped, ff:fe in.
        assert_eq!(ips, ["10.1.0.2", "fd00:1::2", "fe80::42:aff:fe01:2"]);
        // IPv4 only: no IPv6 at all (the interface has no link-local address).
        let v4 = port_guard(&endpoint(&["10.1.0.2"], true)).unwrap();
        assert_eq!(v4.ips.len(), 1);
        // No veth (macvlan) or no addresses (ipam none): nothing to guard.
        let mut macvlan = endpoint(&["10.1.0.2"], true);
        macvlan.host_ifname = None;
        assert_eq!(port_guard(&macvlan), None);
        let mut none = endpoint(&["10.1.0.2"], true);
        none.ips.clear();
        assert_eq!(port_guard(&none), None);
        assert_eq!(
            eui64_link_local([0x52, 0x54, 0, 0x12, 0x34, 0x56]).to_string(),
            "fe80::5054:ff:fe12:3456"
        );
    }

    /// `ipam none`: the interface is only brought up; the kernel's IPv6 link-local
    /// address stays (as netavark leaves it), and the bridge gets no address.
    #[test]
    fn a_network_without_addresses_gives_only_a_link() {
        let net = network(&[]);
        let mut ep = endpoint(&["10.1.0.2"], false);
        ep.ips.clear();
        assert_eq!(
            ops(&container_requests(&net, &ep, 2)),
            ["bring lo up", "bring eth0 up"]
        );
        assert!(gateway_requests(&net, 9).is_empty());
        assert!(network_rules(&net).subnets.is_empty());
    }
}
