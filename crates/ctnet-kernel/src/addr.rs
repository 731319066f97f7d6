//! IPv4 and IPv6 addresses on links.
//!
//! Adding takes either family. An IPv6 address is added with `IFA_F_NODAD`: with
//! duplicate address detection the kernel keeps a new address tentative, unusable for
//! binding or as a source, for about 1.6 s (measured on this kernel), and ctnet's
//! addresses are allocated by its own IPAM, so there is nothing to detect.
//!
//! Listing comes in two shapes: [`list`] gives the IPv4 addresses as [`Address`]
//! (the older, IPv4-typed API), [`list_family`] and [`list_all`] give either family as
//! [`AddressInfo`], with the kernel's flags (tentative, DAD failed, ...).

use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressHeaderFlags, AddressMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

/// The kernel's address flags and scopes, re-exported so callers need not depend on
/// netlink-packet-route to read an [`AddressInfo`].
pub use netlink_packet_route::address::{AddressFlags, AddressScope};

use crate::error::Result;
use crate::family::Family;
use crate::netlink::{Request, RtSocket};

/// An IPv4 address on a link, as the kernel reports it (see [`list`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// Interface index.
    pub index: u32,
    /// The address.
    pub address: Ipv4Addr,
    /// Prefix length.
    pub prefix_len: u8,
}

/// An address of either family on a link, as the kernel reports it (see
/// [`list_family`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressInfo {
    /// Interface index.
    pub index: u32,
    /// The address (`IFA_LOCAL`, else `IFA_ADDRESS`).
    pub address: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
    /// Scope: `Universe` for global addresses, `Link` for `fe80::/64`, `Host` for loopback.
    pub scope: AddressScope,
    /// The kernel's `IFA_F_*` flags (`IFA_FLAGS`, which supersedes the header's 8 bits).
    pub flags: AddressFlags,
}

impl AddressInfo {
    /// The address's family.
    pub fn family(&self) -> Family {
        Family::of(&self.address)
    }

    /// Still under duplicate address detection: nothing can bind to it or send from it.
    pub fn is_tentative(&self) -> bool {
        self.flags.contains(AddressFlags::Tentative)
    }

    /// Duplicate address detection found another host using it; the kernel will not use it.
    pub fn dad_failed(&self) -> bool {
        self.flags.contains(AddressFlags::Dadfailed)
    }

    /// Usable now: neither tentative nor failed.
    pub fn is_usable(&self) -> bool {
        !self.is_tentative() && !self.dad_failed()
    }
}

fn message(index: u32, address: IpAddr, prefix_len: u8) -> AddressMessage {
    let mut message = AddressMessage::default();
    message.header.prefix_len = prefix_len;
    message.header.index = index;
    message.attributes.push(AddressAttribute::Local(address));
    message.attributes.push(AddressAttribute::Address(address));
    match address {
        IpAddr::V4(v4) => {
            message.header.family = AddressFamily::Inet;
            if prefix_len < 31 {
                let host_bits = 32 - u32::from(prefix_len);
                let broadcast = u32::from(v4) | ((1u32 << host_bits) - 1);
                message
                    .attributes
                    .push(AddressAttribute::Broadcast(Ipv4Addr::from(broadcast)));
            }
        }
        IpAddr::V6(_) => {
            // IPv6 has no broadcast. No duplicate address detection (see the module
            // docs); the flag goes both in the header, for old kernels, and in
            // IFA_FLAGS, which the kernel prefers when present.
            message.header.family = AddressFamily::Inet6;
            message.header.flags = AddressHeaderFlags::Nodad;
            message
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
    }
    message
}

/// The request that adds `address/prefix_len` to link `index`; an IPv6 address is
/// added without duplicate address detection, so it is usable at once.
pub fn add_request(index: u32, address: impl Into<IpAddr>, prefix_len: u8, what: &str) -> Request {
    let address = address.into();
    Request::new(
        RouteNetlinkMessage::NewAddress(message(index, address, prefix_len)),
        NLM_F_CREATE | NLM_F_EXCL,
        format!("add address {address}/{prefix_len} to {what}"),
    )
}

/// Adds an address to a link (see [`add_request`]).
pub fn add(
    sock: &mut RtSocket,
    index: u32,
    address: impl Into<IpAddr>,
    prefix_len: u8,
    what: &str,
) -> Result<()> {
    sock.execute(add_request(index, address, prefix_len, what))
}

/// Removes an address from a link. Returns false when it was not there.
pub fn delete(
    sock: &mut RtSocket,
    index: u32,
    address: impl Into<IpAddr>,
    prefix_len: u8,
    what: &str,
) -> Result<bool> {
    let address = address.into();
    let mut message = message(index, address, prefix_len);
    // Flags mean nothing to a removal.
    message.header.flags = AddressHeaderFlags::empty();
    message
        .attributes
        .retain(|a| !matches!(a, AddressAttribute::Flags(_)));
    let request = Request::new(
        RouteNetlinkMessage::DelAddress(message),
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
    Ok(list_family(sock, Family::V4)?
        .into_iter()
        .filter_map(|a| match a.address {
            IpAddr::V4(address) => Some(Address {
                index: a.index,
                address,
                prefix_len: a.prefix_len,
            }),
            IpAddr::V6(_) => None,
        })
        .collect())
}

/// All addresses of one family in the socket's namespace.
pub fn list_family(sock: &mut RtSocket, family: Family) -> Result<Vec<AddressInfo>> {
    dump(sock, family.netlink(), &format!("list {family} addresses"))
}

/// All IPv4 and IPv6 addresses in the socket's namespace.
pub fn list_all(sock: &mut RtSocket) -> Result<Vec<AddressInfo>> {
    dump(sock, AddressFamily::Unspec, "list addresses")
}

fn dump(sock: &mut RtSocket, family: AddressFamily, op: &str) -> Result<Vec<AddressInfo>> {
    let mut request = AddressMessage::default();
    request.header.family = family;
    let replies = sock.dump(RouteNetlinkMessage::GetAddress(request), op)?;
    Ok(replies
        .iter()
        .filter_map(|reply| match reply {
            RouteNetlinkMessage::NewAddress(message) => parse(message),
            _ => None,
        })
        .collect())
}

fn parse(message: &AddressMessage) -> Option<AddressInfo> {
    Family::from_netlink(message.header.family)?;
    let mut local = None;
    let mut address = None;
    let mut flags = None;
    for attr in &message.attributes {
        match attr {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            AddressAttribute::Flags(f) => flags = Some(*f),
            _ => {}
        }
    }
    Some(AddressInfo {
        index: message.header.index,
        address: local.or(address)?,
        prefix_len: message.header.prefix_len,
        scope: message.header.scope,
        flags: flags.unwrap_or_else(|| {
            AddressFlags::from_bits_retain(u32::from(message.header.flags.bits()))
        }),
    })
}
