//! Default routes: which of a container's networks give it one, and with what metric.
//!
//! ```text
//!  container on a (public), i (internal), b (public, metric 50)
//!
//!  rule              IPv4 default routes            egress
//!  FirstPerFamily    via a only                     a
//!  (ctnet, CNI)      (i never; b: a came first)
//!  EveryNetwork      via b metric 50                b (lowest metric; at one metric
//!  (netavark)        via a metric 100                  the newest IPv4 route first,
//!                    (i never)                          IPv6 one multipath route)
//! ```
//!
//! Internal networks have no way out, and networks without addresses (`ipam none`) no
//! gateway: neither ever gives a default route, whatever the rule. The rule is the
//! front end's (the container's runtime), measured for netavark in docs/podman.md.

use std::net::IpAddr;

use ctnet_kernel::route::{DefaultRoute, RouteInfo, IPV6_DEFAULT_METRIC};

use crate::model::{Endpoint, Family, Network, Runtime};

/// The metric netavark gives a network's default routes when it has no `metric` option.
pub const NETAVARK_DEFAULT_METRIC: u32 = 100;

/// How a container's networks share its default routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteRule {
    /// ctnet's own commands and the CNI plugin: the container's first non-internal
    /// network of each family gives that family's default route, the others none. One
    /// egress per family, whatever the order of later attaches.
    FirstPerFamily,
    /// netavark's: every non-internal network gives a default route of each of its
    /// families, metric the network's (100 when unset), beside the others; the lowest
    /// metric wins, and detaching a network leaves the others' routes in place.
    EveryNetwork,
}

impl RouteRule {
    /// The rule for a container, by its label: Podman's containers (attached through
    /// the netavark front end) follow netavark's.
    pub fn for_container(label: &str) -> RouteRule {
        if Runtime::Podman.id_in(label).is_some() {
            RouteRule::EveryNetwork
        } else {
            RouteRule::FirstPerFamily
        }
    }

    /// The families whose default route an endpoint on `net` installs, given the
    /// container's endpoints on other networks (`siblings`).
    pub fn families(self, net: &Network, siblings: &[Endpoint]) -> Vec<Family> {
        if net.internal {
            return Vec::new();
        }
        let families = net.subnets.iter().map(|s| s.subnet.family());
        match self {
            RouteRule::EveryNetwork => families.collect(),
            RouteRule::FirstPerFamily => families
                .filter(|f| siblings.iter().all(|e| !e.routes_default(*f)))
                .collect(),
        }
    }

    /// The metric (`RTA_PRIORITY`) of a network's default routes; None leaves the
    /// kernel's (IPv4 0, IPv6 1024).
    pub fn metric(self, net: &Network) -> Option<u32> {
        match self {
            RouteRule::EveryNetwork => Some(net.metric.unwrap_or(NETAVARK_DEFAULT_METRIC)),
            RouteRule::FirstPerFamily => net.metric,
        }
    }

    /// The default route via `gateway` that an endpoint of `net` adds.
    pub fn route(self, net: &Network, gateway: IpAddr) -> DefaultRoute {
        DefaultRoute {
            gateway,
            metric: self.metric(net),
            // netavark adds its routes beside each other (no NLM_F_EXCL); ctnet's one
            // route per family is refused where the container already has another of
            // its metric, rather than silently sharing the egress.
            beside_others: self == RouteRule::EveryNetwork,
        }
    }
}

/// The metric the kernel applies to a route of `family` given `metric` (see
/// [`RouteRule::metric`]): what a listing of the container's routes must show.
pub fn kernel_metric(metric: Option<u32>, family: Family) -> u32 {
    metric.unwrap_or(match family {
        Family::V4 => 0,
        Family::V6 => IPV6_DEFAULT_METRIC,
    })
}

/// The default routes an endpoint installed, as (gateway, metric the kernel shows),
/// from its record and its network.
pub fn installed(net: &Network, ep: &Endpoint) -> Vec<(IpAddr, u32)> {
    let rule = RouteRule::for_container(&ep.container);
    net.subnets
        .iter()
        .filter(|s| ep.routes_default(s.subnet.family()))
        .map(|s| {
            let family = s.subnet.family();
            (s.gateway, kernel_metric(rule.metric(net), family))
        })
        .collect()
}

/// True when `routes` (a listing of the container's) hold a main-table default route via
/// `gateway` with `metric` (as [`installed`] gives it), on interface `oif` when given:
/// its own route, or a next hop of a multipath one.
pub fn is_present(routes: &[RouteInfo], gateway: IpAddr, metric: u32, oif: Option<u32>) -> bool {
    routes.iter().any(|r| {
        let on_oif = |o: Option<u32>| oif.is_none() || o == oif;
        r.is_main_default()
            && r.metric() == metric
            && ((r.gateway == Some(gateway) && on_oif(r.oif))
                || r.next_hops
                    .iter()
                    .any(|h| h.gateway == Some(gateway) && on_oif(Some(h.oif))))
    })
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::path::PathBuf;

    use ctnet_kernel::route::{NextHop, RouteType};
    use ctnet_kernel::IfName;

    use super::*;
    use crate::model::{MacAddr, NetworkName, RowState, Subnet, SubnetConfig};

    fn network(
        name: &str,
        subnets: &[(&str, &str)],
        internal: bool,
        metric: Option<u32>,
    ) -> Network {
        let mut net = crate::driver::bridge::tests::network(subnets);
        net.name = NetworkName::new(name).unwrap();
        net.internal = internal;
        net.metric = metric;
        net.subnets = subnets
            .iter()
            .map(|(s, g)| SubnetConfig {
                subnet: Subnet::parse(s).unwrap(),
                gateway: g.parse().unwrap(),
            })
            .collect();
        net
    }

    fn endpoint(container: &str, network: &str, default_routes: &[Family]) -> Endpoint {
        Endpoint {
            id: 1,
            network: NetworkName::new(network).unwrap(),
            container: container.into(),
            netns_path: PathBuf::from("/run/netns/c1"),
            netns_inode: 7,
            ifname: IfName::new("eth0").unwrap(),
            host_ifname: Some(IfName::new("vethabcdef0").unwrap()),
            mac: MacAddr::for_address("10.0.0.2".parse().unwrap()),
            ips: Vec::new(),
            default_routes: default_routes.to_vec(),
            netns_owned: false,
            state: RowState::Ready,
            ports: Vec::new(),
            name: None,
            aliases: Vec::new(),
            labels: Default::default(),
            identity: None,
        }
    }

    const DUAL: &[(&str, &str)] = &[("10.1.0.0/24", "10.1.0.1"), ("fd00:1::/64", "fd00:1::1")];
    const BOTH: &[Family] = &[Family::V4, Family::V6];

    #[test]
    fn the_rule_is_the_containers_front_end() {
        assert_eq!(
            RouteRule::for_container("podman:abc"),
            RouteRule::EveryNetwork
        );
        for label in ["c1", "cni:abc", "pid:7", "/proc/7/ns/net"] {
            assert_eq!(
                RouteRule::for_container(label),
                RouteRule::FirstPerFamily,
                "{label}"
            );
        }
    }

    #[test]
    fn internal_networks_and_networks_without_addresses_never_route() {
        let internal = network("i", DUAL, true, Some(10));
        let none = network("n", &[], false, None);
        for rule in [RouteRule::FirstPerFamily, RouteRule::EveryNetwork] {
            assert!(rule.families(&internal, &[]).is_empty());
            assert!(rule.families(&none, &[]).is_empty());
        }
        // An internal network first leaves the families free for the public one.
        let public = network("p", DUAL, false, None);
        let on_internal = endpoint("c1", "i", &[]);
        assert_eq!(
            RouteRule::FirstPerFamily.families(&public, &[on_internal]),
            BOTH
        );
    }

    #[test]
    fn ctnet_routes_each_family_by_the_first_network_only() {
        let second = network("b", DUAL, false, None);
        let v4_first = endpoint("c1", "a", &[Family::V4]);
        assert_eq!(
            RouteRule::FirstPerFamily.families(&second, &[v4_first]),
            [Family::V6]
        );
        let both_first = endpoint("c1", "a", BOTH);
        assert!(RouteRule::FirstPerFamily
            .families(&second, &[both_first])
            .is_empty());
        // Its metric is the network's, or the kernel's; exclusive.
        let route = RouteRule::FirstPerFamily.route(&second, "10.1.0.1".parse().unwrap());
        assert_eq!((route.metric, route.beside_others), (None, false));
        let metric = network("m", DUAL, false, Some(321));
        assert_eq!(RouteRule::FirstPerFamily.metric(&metric), Some(321));
    }

    #[test]
    fn netavark_routes_every_public_network_beside_the_others() {
        let second = network("b", DUAL, false, None);
        let first = endpoint("podman:x", "a", BOTH);
        assert_eq!(RouteRule::EveryNetwork.families(&second, &[first]), BOTH);
        let route = RouteRule::EveryNetwork.route(&second, "10.1.0.1".parse().unwrap());
        assert_eq!(route.metric, Some(NETAVARK_DEFAULT_METRIC));
        assert!(route.beside_others);
        let metric = network("m", DUAL, false, Some(50));
        assert_eq!(RouteRule::EveryNetwork.metric(&metric), Some(50));
    }

    #[test]
    fn installed_routes_carry_the_metric_the_kernel_shows() {
        let net = network("a", DUAL, false, None);
        let ip = |t: &str| -> IpAddr { t.parse().unwrap() };
        assert_eq!(
            installed(&net, &endpoint("c1", "a", BOTH)),
            [(ip("10.1.0.1"), 0), (ip("fd00:1::1"), 1024)]
        );
        assert_eq!(
            installed(&net, &endpoint("podman:x", "a", &[Family::V6])),
            [(ip("fd00:1::1"), 100)]
        );
    }

    #[test]
    fn a_route_is_present_by_gateway_metric_and_interface_or_as_a_next_hop() {
        let ip = |t: &str| -> IpAddr { t.parse().unwrap() };
        let route = |gateway: Option<&str>, oif, priority, hops: Vec<NextHop>| RouteInfo {
            family: ctnet_kernel::Family::V6,
            destination: ip("::"),
            prefix_len: 0,
            gateway: gateway.map(ip),
            oif,
            table: u32::from(ctnet_kernel::route::MAIN_TABLE),
            kind: RouteType::Unicast,
            priority,
            next_hops: hops,
            onlink: false,
        };
        let plain = [route(Some("fd00:1::1"), Some(3), Some(100), Vec::new())];
        assert!(is_present(&plain, ip("fd00:1::1"), 100, Some(3)));
        assert!(!is_present(&plain, ip("fd00:1::1"), 1024, Some(3)));
        assert!(!is_present(&plain, ip("fd00:1::1"), 100, Some(4)));
        let hop = |g: &str, oif| NextHop {
            gateway: Some(ip(g)),
            oif,
        };
        let multipath = [route(
            None,
            None,
            Some(100),
            vec![hop("fd00:1::1", 3), hop("fd00:2::1", 4)],
        )];
        assert!(is_present(&multipath, ip("fd00:2::1"), 100, Some(4)));
        assert!(!is_present(&multipath, ip("fd00:2::1"), 100, Some(3)));
    }
}
