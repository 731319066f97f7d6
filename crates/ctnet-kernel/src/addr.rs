//! IPv4 addresses on links.

use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::error::Result;
use crate::netlink::{Request, RtSocket};

/// An IPv4 address on a link, as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// Interface index.
    pub index: u32,
    /// The address.
    pub address: Ipv4Addr,
    /// Prefix length.
    pub prefix_len: u8,
}

fn message(index: u32, address: Ipv4Addr, prefix_len: u8) -> AddressMessage {
    let mut message = AddressMessage::default();
    message.header.family = AddressFamily::Inet;
    message.header.prefix_len = prefix_len;
    message.header.index = index;
    message
        .attributes
        .push(AddressAttribute::Local(IpAddr::V4(address)));
    message
        .attributes
        .push(AddressAttribute::Address(IpAddr::V4(address)));
    if prefix_len < 31 {
        let host_bits = 32 - u32::from(prefix_len);
        let broadcast = u32::from(address) | ((1u32 << host_bits) - 1);
        message
            .attributes
            .push(AddressAttribute::Broadcast(Ipv4Addr::from(broadcast)));
    }
    message
}

/// The request that adds `address/prefix_len` to link `index`.
pub fn add_request(index: u32, address: Ipv4Addr, prefix_len: u8, what: &str) -> Request {
    Request::new(
        RouteNetlinkMessage::NewAddress(message(index, address, prefix_len)),
        NLM_F_CREATE | NLM_F_EXCL,
        format!("add address {address}/{prefix_len} to {what}"),
    )
}

/// Adds an address to a link.
pub fn add(
    sock: &mut RtSocket,
    index: u32,
    address: Ipv4Addr,
    prefix_len: u8,
    what: &str,
) -> Result<()> {
    sock.execute(add_request(index, address, prefix_len, what))
}

/// Removes an address from a link. Returns false when it was not there.
pub fn delete(
    sock: &mut RtSocket,
    index: u32,
    address: Ipv4Addr,
    prefix_len: u8,
    what: &str,
) -> Result<bool> {
    let request = Request::new(
        RouteNetlinkMessage::DelAddress(message(index, address, prefix_len)),
        0,
        format!("remove address {address}/{prefix_len} from {what}"),
    );
    match sock.execute(request) {
        Ok(()) => Ok(true),
        Err(e) if e.is_not_found() || e.errno() == Some(libc::EADDRNOTAVAIL) => Ok(false),
        Err(e) => Err(e),
    }
}

/// All IPv4 addresses in the socket's namespace.
pub fn list(sock: &mut RtSocket) -> Result<Vec<Address>> {
    let mut request = AddressMessage::default();
    request.header.family = AddressFamily::Inet;
    let replies = sock.dump(RouteNetlinkMessage::GetAddress(request), "list addresses")?;
    let mut out = Vec::new();
    for reply in replies {
        let RouteNetlinkMessage::NewAddress(message) = reply else {
            continue;
        };
        let local = message.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(IpAddr::V4(ip)) | AddressAttribute::Address(IpAddr::V4(ip)) => {
                Some(*ip)
            }
            _ => None,
        });
        if let Some(address) = local {
            out.push(Address {
                index: message.header.index,
                address,
                prefix_len: message.header.prefix_len,
            });
        }
    }
    Ok(out)
}
