//! IPv4 and IPv6 routes.
//!
//! [`add_default_request`] takes a gateway of either family; [`add_default_route_request`]
//! a metric too, and whether the route may sit beside others of its metric. Listing comes in two
//! shapes: [`list`] gives the IPv4 routes as [`Route`] (the older, IPv4-typed API),
//! [`list_family`] and [`list_all`] give either family as [`RouteInfo`].
//!
//! An overlay's routes ([`add_onlink_route_request`]) go via a gateway that no prefix of
//! the device holds: the peer's own overlay address, reached on the VXLAN device by a
//! permanent neighbour entry (see [`crate::vxlan`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteProtocol, RouteScope,
    RouteVia,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

/// The kernel's route types, re-exported so callers need not depend on
/// netlink-packet-route to read a [`Route`] or [`RouteInfo`].
pub use netlink_packet_route::route::RouteType;

use crate::error::Result;
use crate::family::Family;
use crate::netlink::{Request, RtSocket};

/// The main routing table's id.
pub const MAIN_TABLE: u8 = RouteHeader::RT_TABLE_MAIN;

/// An IPv4 route, as the kernel reports it (see [`list`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Destination network address.
    pub destination: Ipv4Addr,
    /// Destination prefix length (0 for the default route).
    pub prefix_len: u8,
    /// Next hop, if the route goes through a gateway.
    pub gateway: Option<Ipv4Addr>,
    /// Output interface index.
    pub oif: Option<u32>,
    /// Routing table id.
    pub table: u32,
    /// Route type (unicast, local, broadcast, ...).
    pub kind: RouteType,
}

/// A route of either family, as the kernel reports it (see [`list_family`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    /// The route's family; `destination` is of this family.
    pub family: Family,
    /// Destination network address (the unspecified address of the family for a
    /// default route).
    pub destination: IpAddr,
    /// Destination prefix length (0 for the default route).
    pub prefix_len: u8,
    /// Next hop, if the route goes through a gateway (`RTA_GATEWAY`, or `RTA_VIA` for an
    /// IPv4 route through an IPv6 next hop). Multipath routes report none.
    pub gateway: Option<IpAddr>,
    /// Output interface index.
    pub oif: Option<u32>,
    /// Routing table id.
    pub table: u32,
    /// Route type (unicast, local, broadcast, ...).
    pub kind: RouteType,
    /// Metric (`RTA_PRIORITY`); the kernel gives IPv6 routes 1024 unless told, and
    /// reports none for an IPv4 route of metric 0.
    pub priority: Option<u32>,
    /// The gateways of a multipath route (`RTA_MULTIPATH`): IPv6 merges routes of one
    /// prefix and metric added beside each other into one such route. Empty otherwise.
    pub next_hops: Vec<NextHop>,
    /// `RTNH_F_ONLINK`: the gateway is taken as on the link, whatever its prefixes
    /// (`ip route … onlink`), as an overlay's routes via a peer's address are.
    pub onlink: bool,
}

/// One next hop of a multipath route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHop {
    /// Its gateway, if it has one.
    pub gateway: Option<IpAddr>,
    /// Its output interface index.
    pub oif: u32,
}

impl RouteInfo {
    /// A default route (prefix length 0) of the main table.
    pub fn is_main_default(&self) -> bool {
        self.prefix_len == 0 && self.table == u32::from(MAIN_TABLE)
    }

    /// True when the route goes via `gateway`, as its only gateway or as one of its
    /// next hops.
    pub fn goes_via(&self, gateway: IpAddr) -> bool {
        self.gateway == Some(gateway) || self.next_hops.iter().any(|h| h.gateway == Some(gateway))
    }

    /// The metric as the kernel applies it: IPv4 routes without one have 0, IPv6 ones
    /// 1024.
    pub fn metric(&self) -> u32 {
        self.priority.unwrap_or(match self.family {
            Family::V4 => 0,
            Family::V6 => IPV6_DEFAULT_METRIC,
        })
    }
}

/// The metric the kernel gives an IPv6 route added without one.
pub const IPV6_DEFAULT_METRIC: u32 = 1024;

/// A default route to add (see [`add_default_route_request`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultRoute {
    /// The gateway; the route is of its family.
    pub gateway: IpAddr,
    /// `RTA_PRIORITY`; None leaves the kernel's default (IPv4 0, IPv6 1024).
    pub metric: Option<u32>,
    /// May sit beside another default route of the same metric (no `NLM_F_EXCL`, as
    /// netavark adds them): IPv4 then keeps both and prefers the newer, IPv6 merges them
    /// into one multipath route. Otherwise such a route is refused (`EEXIST`).
    pub beside_others: bool,
}

/// The request that adds a default route via `gateway`, of the gateway's family, to
/// the main table. The kernel finds the device from the gateway, which must be on a
/// link's prefix (a link-local IPv6 gateway needs a device: not covered here).
pub fn add_default_request(gateway: impl Into<IpAddr>) -> Request {
    add_default_route_request(&DefaultRoute {
        gateway: gateway.into(),
        metric: None,
        beside_others: false,
    })
}

/// The request that adds `route` to the main table (see [`add_default_request`]).
pub fn add_default_route_request(route: &DefaultRoute) -> Request {
    let gateway = route.gateway;
    let mut message = RouteMessage::default();
    message.header.address_family = Family::of(&gateway).netlink();
    message.header.table = MAIN_TABLE;
    message.header.protocol = RouteProtocol::Boot;
    message.header.scope = RouteScope::Universe;
    message.header.kind = RouteType::Unicast;
    message
        .attributes
        .push(RouteAttribute::Gateway(RouteAddress::from(gateway)));
    let mut op = format!("add default route via {gateway}");
    if let Some(metric) = route.metric {
        message.attributes.push(RouteAttribute::Priority(metric));
        op.push_str(&format!(" metric {metric}"));
    }
    let flags = if route.beside_others {
        NLM_F_CREATE
    } else {
        NLM_F_CREATE | NLM_F_EXCL
    };
    Request::new(RouteNetlinkMessage::NewRoute(message), flags, op)
}

/// Adds a default route via `gateway` (see [`add_default_request`]).
pub fn add_default(sock: &mut RtSocket, gateway: impl Into<IpAddr>) -> Result<()> {
    sock.execute(add_default_request(gateway))
}

/// The request that adds, or replaces, the main table's IPv4 route to
/// `destination/prefix_len` via `via` out of link `oif`, with `via` taken as on the link
/// (`ip route replace DST/LEN via VIA dev OIF onlink`): an overlay's route to a peer's
/// subnet via the peer's address on the VXLAN device, which no prefix of the device
/// covers. Replacing makes it idempotent, and moves a route that pointed elsewhere.
/// `destination` must have no host bits (the kernel refuses it with EINVAL).
pub fn add_onlink_route_request(
    destination: Ipv4Addr,
    prefix_len: u8,
    via: Ipv4Addr,
    oif: u32,
) -> Request {
    let mut message = v4_route_message(destination, prefix_len, oif);
    message.header.protocol = RouteProtocol::Boot;
    message.header.scope = RouteScope::Universe;
    message.header.kind = RouteType::Unicast;
    message.header.flags = RouteFlags::Onlink;
    message
        .attributes
        .push(RouteAttribute::Gateway(RouteAddress::Inet(via)));
    Request::new(
        RouteNetlinkMessage::NewRoute(message),
        NLM_F_CREATE | NLM_F_REPLACE,
        format!("add route {destination}/{prefix_len} via {via} onlink on link {oif}"),
    )
}

/// The request that deletes the main table's IPv4 route to `destination/prefix_len`
/// out of link `oif`, whatever its gateway, scope, type or protocol (a missing one is
/// ESRCH, which [`crate::Error::is_not_found`] takes as not found).
pub fn delete_route_request(destination: Ipv4Addr, prefix_len: u8, oif: u32) -> Request {
    let mut message = v4_route_message(destination, prefix_len, oif);
    // The kernel matches any scope against RT_SCOPE_NOWHERE, and any type and protocol
    // against 0 (`fib_table_delete`).
    message.header.scope = RouteScope::NoWhere;
    Request::new(
        RouteNetlinkMessage::DelRoute(message),
        0,
        format!("delete route {destination}/{prefix_len} on link {oif}"),
    )
}

/// The request that adds, or replaces, an unreachable IPv4 route to
/// `destination/prefix_len` in the main table (`ip route replace unreachable DST/LEN`):
/// a packet that matches nothing more specific gets ICMP "host unreachable" at once.
/// An overlay's cluster subnet has one, so traffic to a block no peer holds (a host
/// that left, one not yet programmed) is refused here instead of leaving by the default
/// route, masqueraded. Such a route has no device.
pub fn add_unreachable_route_request(destination: Ipv4Addr, prefix_len: u8) -> Request {
    let mut message = unreachable_route_message(destination, prefix_len);
    message.header.protocol = RouteProtocol::Boot;
    message.header.scope = RouteScope::Universe;
    Request::new(
        RouteNetlinkMessage::NewRoute(message),
        NLM_F_CREATE | NLM_F_REPLACE,
        format!("add unreachable route {destination}/{prefix_len}"),
    )
}

/// The request that deletes the main table's unreachable IPv4 route to
/// `destination/prefix_len` (a missing one is ESRCH, taken as not found).
pub fn delete_unreachable_route_request(destination: Ipv4Addr, prefix_len: u8) -> Request {
    let mut message = unreachable_route_message(destination, prefix_len);
    message.header.scope = RouteScope::NoWhere;
    Request::new(
        RouteNetlinkMessage::DelRoute(message),
        0,
        format!("delete unreachable route {destination}/{prefix_len}"),
    )
}

fn unreachable_route_message(destination: Ipv4Addr, prefix_len: u8) -> RouteMessage {
    let mut message = RouteMessage::default();
    message.header.address_family = AddressFamily::Inet;
    message.header.destination_prefix_length = prefix_len;
    message.header.table = MAIN_TABLE;
    message.header.kind = RouteType::Unreachable;
    message
        .attributes
        .push(RouteAttribute::Destination(RouteAddress::Inet(destination)));
    message
}

/// A main-table IPv4 route message keyed by destination and output link.
fn v4_route_message(destination: Ipv4Addr, prefix_len: u8, oif: u32) -> RouteMessage {
    let mut message = RouteMessage::default();
    message.header.address_family = AddressFamily::Inet;
    message.header.destination_prefix_length = prefix_len;
    message.header.table = MAIN_TABLE;
    message
        .attributes
        .push(RouteAttribute::Destination(RouteAddress::Inet(destination)));
    message.attributes.push(RouteAttribute::Oif(oif));
    message
}

/// What the kernel decided for one packet (`ip route get`): see [`lookup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteDecision {
    /// Unicast (forwarded or sent), local (delivered to this namespace), …
    pub kind: RouteType,
    /// The interface it leaves by (`lo` for a local delivery).
    pub oif: Option<u32>,
    /// The next hop, when it goes through a gateway.
    pub gateway: Option<IpAddr>,
    /// The source address the kernel picks for it (`RTA_PREFSRC`).
    pub source: Option<IpAddr>,
    /// The table the route came from.
    pub table: u32,
}

/// Asks the kernel how it routes a packet to `destination` (`ip route get`): one sent
/// from this namespace when `input` is None, or one that arrived on interface `input`
/// from `source` (`ip route get DST from SRC iif DEV`, the forwarding decision; the
/// source is then required). An unroutable packet is an error whose errno says why
/// (ENETUNREACH, EHOSTUNREACH, EINVAL for a source the input interface may not use).
pub fn lookup(
    sock: &mut RtSocket,
    destination: IpAddr,
    source: Option<IpAddr>,
    input: Option<u32>,
) -> Result<RouteDecision> {
    let family = Family::of(&destination);
    let mut request = RouteMessage::default();
    request.header.address_family = family.netlink();
    request.header.destination_prefix_length = full_prefix(destination);
    request
        .attributes
        .push(RouteAttribute::Destination(route_address(destination)));
    if let Some(src) = source {
        request.header.source_prefix_length = full_prefix(src);
        request
            .attributes
            .push(RouteAttribute::Source(route_address(src)));
    }
    if let Some(index) = input {
        request.attributes.push(RouteAttribute::Iif(index));
    }
    let op = format!("look up the route to {destination}");
    let reply = sock.get(RouteNetlinkMessage::GetRoute(request), &op)?;
    let Some(RouteNetlinkMessage::NewRoute(message)) = reply else {
        return Err(crate::error::Error::Protocol {
            op,
            detail: "no route in the kernel's answer".into(),
        });
    };
    let mut decision = RouteDecision {
        kind: message.header.kind,
        oif: None,
        gateway: None,
        source: None,
        table: u32::from(message.header.table),
    };
    for attr in &message.attributes {
        match attr {
            RouteAttribute::Oif(index) => decision.oif = Some(*index),
            RouteAttribute::Gateway(g) => decision.gateway = ip_of(g),
            RouteAttribute::Via(RouteVia::Inet(ip)) => decision.gateway = Some(IpAddr::V4(*ip)),
            RouteAttribute::Via(RouteVia::Inet6(ip)) => decision.gateway = Some(IpAddr::V6(*ip)),
            RouteAttribute::PrefSource(a) => decision.source = ip_of(a),
            RouteAttribute::Table(t) => decision.table = *t,
            _ => {}
        }
    }
    Ok(decision)
}

fn full_prefix(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn route_address(ip: IpAddr) -> RouteAddress {
    match ip {
        IpAddr::V4(v4) => RouteAddress::Inet(v4),
        IpAddr::V6(v6) => RouteAddress::Inet6(v6),
    }
}

/// All IPv4 routes of every table in the socket's namespace.
pub fn list(sock: &mut RtSocket) -> Result<Vec<Route>> {
    Ok(list_family(sock, Family::V4)?
        .into_iter()
        .filter_map(|r| {
            let IpAddr::V4(destination) = r.destination else {
                return None;
            };
            let gateway = match r.gateway {
                Some(IpAddr::V4(ip)) => Some(ip),
                // An IPv6 next hop (RTA_VIA) has no IPv4 form; the old listing left it out.
                _ => None,
            };
            Some(Route {
                destination,
                prefix_len: r.prefix_len,
                gateway,
                oif: r.oif,
                table: r.table,
                kind: r.kind,
            })
        })
        .collect())
}

/// All routes of one family, of every table, in the socket's namespace.
pub fn list_family(sock: &mut RtSocket, family: Family) -> Result<Vec<RouteInfo>> {
    dump(sock, family.netlink(), &format!("list {family} routes"))
}

/// All IPv4 and IPv6 routes of every table in the socket's namespace.
pub fn list_all(sock: &mut RtSocket) -> Result<Vec<RouteInfo>> {
    let mut routes = list_family(sock, Family::V4)?;
    routes.extend(list_family(sock, Family::V6)?);
    Ok(routes)
}

fn dump(sock: &mut RtSocket, family: AddressFamily, op: &str) -> Result<Vec<RouteInfo>> {
    let mut request = RouteMessage::default();
    request.header.address_family = family;
    let replies = sock.dump(RouteNetlinkMessage::GetRoute(request), op)?;
    Ok(replies
        .iter()
        .filter_map(|reply| match reply {
            RouteNetlinkMessage::NewRoute(message) => parse(message),
            _ => None,
        })
        .collect())
}

fn parse(message: &RouteMessage) -> Option<RouteInfo> {
    let family = Family::from_netlink(message.header.address_family)?;
    let mut route = RouteInfo {
        family,
        destination: match family {
            Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        },
        prefix_len: message.header.destination_prefix_length,
        gateway: None,
        oif: None,
        table: u32::from(message.header.table),
        kind: message.header.kind,
        priority: None,
        next_hops: Vec::new(),
        // IPv4 reports the next hop's flags in the header's.
        onlink: message.header.flags.contains(RouteFlags::Onlink),
    };
    for attr in &message.attributes {
        match attr {
            RouteAttribute::Destination(destination) => {
                if let Some(ip) = ip_of(destination) {
                    route.destination = ip;
                }
            }
            RouteAttribute::Gateway(gateway) => route.gateway = ip_of(gateway),
            RouteAttribute::Via(RouteVia::Inet(ip)) => route.gateway = Some(IpAddr::V4(*ip)),
            RouteAttribute::Via(RouteVia::Inet6(ip)) => route.gateway = Some(IpAddr::V6(*ip)),
            RouteAttribute::Oif(index) => route.oif = Some(*index),
            RouteAttribute::Table(table) => route.table = *table,
            RouteAttribute::Priority(priority) => route.priority = Some(*priority),
            RouteAttribute::MultiPath(hops) => {
                route.next_hops = hops
                    .iter()
                    .map(|hop| NextHop {
                        gateway: hop.attributes.iter().find_map(|a| match a {
                            RouteAttribute::Gateway(g) => ip_of(g),
                            RouteAttribute::Via(RouteVia::Inet(ip)) => Some(IpAddr::V4(*ip)),
                            RouteAttribute::Via(RouteVia::Inet6(ip)) => Some(IpAddr::V6(*ip)),
                            _ => None,
                        }),
                        oif: hop.interface_index,
                    })
                    .collect()
            }
            _ => {}
        }
    }
    Some(route)
}

fn ip_of(address: &RouteAddress) -> Option<IpAddr> {
    match address {
        RouteAddress::Inet(ip) => Some(IpAddr::V4(*ip)),
        RouteAddress::Inet6(ip) => Some(IpAddr::V6(*ip)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DST: Ipv4Addr = Ipv4Addr::new(10, 50, 2, 0);

    #[test]
    fn an_onlink_route_replaces_and_names_its_gateway_and_link() {
        let request = add_onlink_route_request(DST, 24, DST, 7);
        let RouteNetlinkMessage::NewRoute(message) = &request.message else {
            panic!("not a new route: {:?}", request.message);
        };
        let h = &message.header;
        assert_eq!(h.address_family, AddressFamily::Inet);
        assert_eq!((h.destination_prefix_length, h.table), (24, MAIN_TABLE));
        assert_eq!(
            (h.scope, h.kind),
            (RouteScope::Universe, RouteType::Unicast)
        );
        assert_eq!(h.flags, RouteFlags::Onlink);
        assert_eq!(
            message.attributes,
            [
                RouteAttribute::Destination(RouteAddress::Inet(DST)),
                RouteAttribute::Oif(7),
                RouteAttribute::Gateway(RouteAddress::Inet(DST)),
            ]
        );
        assert_eq!(request.flags, NLM_F_CREATE | NLM_F_REPLACE);
        // Read back, the header's flag is the route's.
        let info = parse(message).unwrap();
        assert!(info.onlink, "{info:?}");
        assert_eq!(info.gateway, Some(IpAddr::V4(DST)));
    }

    #[test]
    fn a_route_deletion_matches_any_scope_and_type_on_its_link() {
        let request = delete_route_request(DST, 24, 7);
        let RouteNetlinkMessage::DelRoute(message) = &request.message else {
            panic!("not a route deletion: {:?}", request.message);
        };
        assert_eq!(message.header.scope, RouteScope::NoWhere);
        assert_eq!(message.header.kind, RouteType::Unspec);
        assert_eq!(message.header.protocol, RouteProtocol::Unspec);
        assert_eq!(message.header.flags, RouteFlags::empty());
        assert!(message.attributes.contains(&RouteAttribute::Oif(7)));
        assert_eq!(request.flags, 0);
        assert!(!parse(message).unwrap().onlink);
    }
}
