//! IPv4 routes.

use std::net::Ipv4Addr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::error::Result;
use crate::netlink::{Request, RtSocket};

/// The main routing table's id.
pub const MAIN_TABLE: u8 = RouteHeader::RT_TABLE_MAIN;

/// An IPv4 route, as the kernel reports it.
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

/// The request that adds a default route via `gateway`.
pub fn add_default_request(gateway: Ipv4Addr) -> Request {
    let mut message = RouteMessage::default();
    message.header.address_family = AddressFamily::Inet;
    message.header.table = MAIN_TABLE;
    message.header.protocol = RouteProtocol::Boot;
    message.header.scope = RouteScope::Universe;
    message.header.kind = RouteType::Unicast;
    message
        .attributes
        .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
    Request::new(
        RouteNetlinkMessage::NewRoute(message),
        NLM_F_CREATE | NLM_F_EXCL,
        format!("add default route via {gateway}"),
    )
}

/// Adds a default route via `gateway`.
pub fn add_default(sock: &mut RtSocket, gateway: Ipv4Addr) -> Result<()> {
    sock.execute(add_default_request(gateway))
}

/// All IPv4 routes of every table in the socket's namespace.
pub fn list(sock: &mut RtSocket) -> Result<Vec<Route>> {
    let mut request = RouteMessage::default();
    request.header.address_family = AddressFamily::Inet;
    let replies = sock.dump(RouteNetlinkMessage::GetRoute(request), "list routes")?;
    let mut out = Vec::new();
    for reply in replies {
        let RouteNetlinkMessage::NewRoute(message) = reply else {
            continue;
        };
        let mut route = Route {
            destination: Ipv4Addr::UNSPECIFIED,
            prefix_len: message.header.destination_prefix_length,
            gateway: None,
            oif: None,
            table: u32::from(message.header.table),
            kind: message.header.kind,
        };
        for attr in &message.attributes {
            match attr {
                RouteAttribute::Destination(RouteAddress::Inet(ip)) => route.destination = *ip,
                RouteAttribute::Gateway(RouteAddress::Inet(ip)) => route.gateway = Some(*ip),
                RouteAttribute::Oif(index) => route.oif = Some(*index),
                RouteAttribute::Table(table) => route.table = *table,
                _ => {}
            }
        }
        out.push(route);
    }
    Ok(out)
}
