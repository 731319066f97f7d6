//! Neighbour entries (`ip neigh`) and the bridge forwarding database (`bridge fdb`), for
//! observing a running network. Both are `RTM_GETNEIGH` dumps; the family picks the table.
//!
//! ```text
//!   neighbours (AF_INET, AF_INET6)        fdb (AF_BRIDGE)
//!   10.88.0.2 dev br0 lladdr 02:..:02     02:..:02 dev vh master br0          (learnt)
//!             REACHABLE                   02:..:09 dev vh master br0 permanent (vh's own)
//!   IP ──► MAC, on a layer-3 link         MAC ──► bridge port, per bridge (and VLAN)
//!
//!   10.50.2.0 dev vx lladdr 0e:..:02      0e:..:02 dev vx dst 192.0.2.2 self permanent
//!             PERMANENT                   MAC ──► remote VTEP, in the VXLAN's own list
//! ```
//!
//! An overlay writes both by hand, one of each per peer (see [`crate::vxlan`]):
//! [`add_neighbour_request`] and [`add_fdb_request`], undone by [`delete_neighbour_request`]
//! and [`delete_fdb_request`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::error::Result;
use crate::netlink::{Request, RtSocket};

/// The state of a neighbour entry (`NUD_*`), as `ip neigh` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NeighState {
    /// Resolution is under way: a solicitation is out, no answer yet.
    Incomplete,
    /// The address answered recently; frames go straight to it.
    Reachable,
    /// Known, but not confirmed lately; the next use starts a confirmation.
    Stale,
    /// Used while stale: waiting a moment for upper layers to confirm it.
    Delay,
    /// Confirming it with unicast solicitations.
    Probe,
    /// Resolution failed: packets to the address are dropped.
    Failed,
    /// No resolution needed (point-to-point, multicast).
    Noarp,
    /// Set by hand, or a bridge port's own address: never expires.
    Permanent,
    /// No state (`NUD_NONE`).
    None,
    /// A value (or combination) this layer does not know.
    Other(u16),
}

impl NeighState {
    /// The state as `ip neigh` names it ("REACHABLE", ...); "UNKNOWN" for
    /// [`NeighState::Other`].
    pub fn as_str(&self) -> &'static str {
        match self {
            NeighState::Incomplete => "INCOMPLETE",
            NeighState::Reachable => "REACHABLE",
            NeighState::Stale => "STALE",
            NeighState::Delay => "DELAY",
            NeighState::Probe => "PROBE",
            NeighState::Failed => "FAILED",
            NeighState::Noarp => "NOARP",
            NeighState::Permanent => "PERMANENT",
            NeighState::None => "NONE",
            NeighState::Other(_) => "UNKNOWN",
        }
    }
}

impl From<NeighbourState> for NeighState {
    fn from(state: NeighbourState) -> Self {
        match state {
            NeighbourState::Incomplete => NeighState::Incomplete,
            NeighbourState::Reachable => NeighState::Reachable,
            NeighbourState::Stale => NeighState::Stale,
            NeighbourState::Delay => NeighState::Delay,
            NeighbourState::Probe => NeighState::Probe,
            NeighbourState::Failed => NeighState::Failed,
            NeighbourState::Noarp => NeighState::Noarp,
            NeighbourState::Permanent => NeighState::Permanent,
            NeighbourState::None => NeighState::None,
            // The crate's enum may grow; its raw value keeps what it would have said.
            other => NeighState::Other(u16::from(other)),
        }
    }
}

impl std::fmt::Display for NeighState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NeighState::Other(value) => write!(f, "{value:#x}"),
            known => f.write_str(known.as_str()),
        }
    }
}

/// An IPv4 (ARP) or IPv6 (neighbour discovery) cache entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    /// The link the neighbour is reached through.
    pub ifindex: u32,
    /// Its address (`NDA_DST`).
    pub ip: IpAddr,
    /// Its hardware address (`NDA_LLADDR`); None while unresolved or failed.
    pub mac: Option<[u8; 6]>,
    /// The entry's state.
    pub state: NeighState,
    /// It said it is a router (`NTF_ROUTER`, IPv6 only).
    pub router: bool,
}

/// An entry of a bridge's forwarding database, or of a device's own address list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdbEntry {
    /// The port (or device) the address is behind.
    pub ifindex: u32,
    /// The bridge whose database holds it (`NDA_MASTER`); None for a device's own list.
    pub master: Option<u32>,
    /// The hardware address.
    pub mac: [u8; 6],
    /// The VLAN it was learnt in (`NDA_VLAN`), when the bridge filters VLANs.
    pub vlan: Option<u16>,
    /// `NUD_PERMANENT`: a local address (the port's own, or the bridge's), never aged out.
    pub permanent: bool,
    /// `NTF_SELF`: from the device's own list (its unicast and multicast addresses, a
    /// VXLAN's remotes), not the bridge's.
    pub is_self: bool,
    /// `NTF_EXT_LEARNED`: put there by something outside the bridge (a switch driver,
    /// a control plane), not learnt from frames.
    pub extern_learn: bool,
    /// The remote end for this address (`NDA_DST`), on a VXLAN.
    pub remote: Option<IpAddr>,
}

/// Every IPv4 and IPv6 neighbour entry in the socket's namespace.
///
/// One `AF_UNSPEC` dump: the kernel walks every neighbour table for it (ARP and
/// neighbour discovery), so both families cost one round trip, not two.
pub fn neighbours(sock: &mut RtSocket) -> Result<Vec<Neighbour>> {
    let replies = dump(sock, AddressFamily::Unspec, "list neighbours")?;
    Ok(replies.iter().filter_map(neighbour_from_message).collect())
}

/// Every forwarding database entry in the socket's namespace: each bridge's, and each
/// device's own address list (`AF_BRIDGE`, what `bridge fdb show` lists).
pub fn fdb(sock: &mut RtSocket) -> Result<Vec<FdbEntry>> {
    let replies = dump(
        sock,
        AddressFamily::Bridge,
        "list forwarding database entries",
    )?;
    Ok(replies.iter().filter_map(fdb_from_message).collect())
}

/// The request that adds, or replaces, a permanent IPv4 neighbour entry `ip` → `mac` on
/// link `index` (`ip neigh replace IP lladdr MAC dev DEV nud permanent`): on a VXLAN
/// device, a peer's overlay address, which nothing would answer an ARP request for.
/// Replacing makes it idempotent, and overrides a failed or learnt entry for `ip`.
pub fn add_neighbour_request(index: u32, ip: Ipv4Addr, mac: [u8; 6]) -> Request {
    let mut message = neighbour_message(AddressFamily::Inet, index);
    message.header.state = NeighbourState::Permanent;
    message
        .attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)));
    message
        .attributes
        .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
    Request::new(
        RouteNetlinkMessage::NewNeighbour(message),
        NLM_F_CREATE | NLM_F_REPLACE,
        format!(
            "add permanent neighbour {ip} lladdr {} on link {index}",
            mac_text(&mac)
        ),
    )
}

/// The request that deletes the IPv4 neighbour entry for `ip` on link `index`, of any
/// state (a missing one is ENOENT, which [`crate::Error::is_not_found`] takes as not
/// found).
pub fn delete_neighbour_request(index: u32, ip: Ipv4Addr) -> Request {
    let mut message = neighbour_message(AddressFamily::Inet, index);
    message
        .attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)));
    Request::new(
        RouteNetlinkMessage::DelNeighbour(message),
        0,
        format!("delete neighbour {ip} on link {index}"),
    )
}

/// The request that adds, or replaces, a permanent entry `mac` → `dst` in VXLAN device
/// `vx_index`'s own forwarding database (`bridge fdb replace MAC dev VX dst DST self
/// permanent`): frames to `mac` leave encapsulated to the remote VTEP `dst`. Replacing
/// makes it idempotent, and moves an entry that pointed at another remote (a VXLAN
/// entry can hold several remotes only through `NLM_F_APPEND`, which an overlay of one
/// VTEP per MAC never wants).
pub fn add_fdb_request(vx_index: u32, mac: [u8; 6], dst: Ipv4Addr) -> Request {
    let mut message = fdb_message(vx_index, mac, dst);
    message.header.state = NeighbourState::Permanent;
    Request::new(
        RouteNetlinkMessage::NewNeighbour(message),
        NLM_F_CREATE | NLM_F_REPLACE,
        format!(
            "add forwarding entry {} dst {dst} to VXLAN link {vx_index}",
            mac_text(&mac)
        ),
    )
}

/// The request that deletes remote `dst` of entry `mac` from VXLAN device `vx_index`'s
/// own forwarding database; the entry goes with its last remote (a missing one is
/// ENOENT, which [`crate::Error::is_not_found`] takes as not found).
pub fn delete_fdb_request(vx_index: u32, mac: [u8; 6], dst: Ipv4Addr) -> Request {
    Request::new(
        RouteNetlinkMessage::DelNeighbour(fdb_message(vx_index, mac, dst)),
        0,
        format!(
            "delete forwarding entry {} dst {dst} from VXLAN link {vx_index}",
            mac_text(&mac)
        ),
    )
}

fn neighbour_message(family: AddressFamily, index: u32) -> NeighbourMessage {
    let mut message = NeighbourMessage::default();
    message.header.family = family;
    message.header.ifindex = index;
    message
}

/// An `AF_BRIDGE` entry of a device's own list (`NTF_SELF`), not a bridge's: a VXLAN
/// device keeps its remotes there.
fn fdb_message(vx_index: u32, mac: [u8; 6], dst: Ipv4Addr) -> NeighbourMessage {
    let mut message = neighbour_message(AddressFamily::Bridge, vx_index);
    message.header.flags = NeighbourFlags::Own;
    message
        .attributes
        .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
    message
        .attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(dst)));
    message
}

/// A MAC as `ip` writes it (`0e:00:00:00:00:02`).
pub(crate) fn mac_text(mac: &[u8; 6]) -> String {
    let bytes: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    bytes.join(":")
}

fn dump(sock: &mut RtSocket, family: AddressFamily, op: &str) -> Result<Vec<NeighbourMessage>> {
    // Strict checking (see `RtSocket::open`) refuses a dump request whose header has a
    // state, type or flags set: a default header with the family is what passes.
    let mut request = NeighbourMessage::default();
    request.header.family = family;
    let replies = sock.dump(RouteNetlinkMessage::GetNeighbour(request), op)?;
    Ok(replies
        .into_iter()
        .filter_map(|reply| match reply {
            RouteNetlinkMessage::NewNeighbour(message) => Some(message),
            _ => None,
        })
        .collect())
}

/// An IPv4 or IPv6 neighbour entry from the kernel's message; None for any other
/// family, or an entry without an address.
pub fn neighbour_from_message(message: &NeighbourMessage) -> Option<Neighbour> {
    if !matches!(
        message.header.family,
        AddressFamily::Inet | AddressFamily::Inet6
    ) {
        return None;
    }
    let mut ip = None;
    let mut mac = None;
    for attr in &message.attributes {
        match attr {
            NeighbourAttribute::Destination(address) => ip = ip_of(address),
            NeighbourAttribute::LinkLayerAddress(bytes) => mac = mac_of(bytes),
            _ => {}
        }
    }
    Some(Neighbour {
        ifindex: message.header.ifindex,
        ip: ip?,
        mac,
        state: NeighState::from(message.header.state),
        router: message.header.flags.contains(NeighbourFlags::Router),
    })
}

/// A forwarding database entry from the kernel's message; None for any family other
/// than `AF_BRIDGE`, or an entry without a 6-byte address.
pub fn fdb_from_message(message: &NeighbourMessage) -> Option<FdbEntry> {
    if message.header.family != AddressFamily::Bridge {
        return None;
    }
    let flags = message.header.flags;
    let mut entry = FdbEntry {
        ifindex: message.header.ifindex,
        master: None,
        mac: [0; 6],
        vlan: None,
        permanent: message.header.state == NeighbourState::Permanent,
        is_self: flags.contains(NeighbourFlags::Own),
        extern_learn: flags.contains(NeighbourFlags::ExtLearned),
        remote: None,
    };
    let mut mac = None;
    for attr in &message.attributes {
        match attr {
            NeighbourAttribute::LinkLayerAddress(bytes) => mac = mac_of(bytes),
            NeighbourAttribute::Controller(master) => entry.master = Some(*master),
            NeighbourAttribute::Vlan(vlan) => entry.vlan = Some(*vlan),
            NeighbourAttribute::Destination(address) => entry.remote = ip_of(address),
            _ => {}
        }
    }
    entry.mac = mac?;
    Some(entry)
}

fn mac_of(bytes: &[u8]) -> Option<[u8; 6]> {
    bytes.try_into().ok()
}

/// The IP address in an `NDA_DST`. The crate decodes it by the message's family, so in
/// an `AF_BRIDGE` message (a VXLAN remote) it is left as raw bytes; their length tells.
fn ip_of(address: &NeighbourAddress) -> Option<IpAddr> {
    match address {
        NeighbourAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        NeighbourAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        NeighbourAddress::Other(bytes) => match bytes.len() {
            4 => Some(IpAddr::V4(Ipv4Addr::from(
                <[u8; 4]>::try_from(&bytes[..]).ok()?,
            ))),
            16 => Some(IpAddr::V6(Ipv6Addr::from(
                <[u8; 16]>::try_from(&bytes[..]).ok()?,
            ))),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(
        family: AddressFamily,
        ifindex: u32,
        state: NeighbourState,
        flags: NeighbourFlags,
        attributes: Vec<NeighbourAttribute>,
    ) -> NeighbourMessage {
        let mut message = NeighbourMessage::default();
        message.header.family = family;
        message.header.ifindex = ifindex;
        message.header.state = state;
        message.header.flags = flags;
        message.attributes = attributes;
        message
    }

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

    #[test]
    fn an_arp_entry_reads_with_its_mac_and_state() {
        let ip = Ipv4Addr::new(10, 88, 0, 2);
        let m = message(
            AddressFamily::Inet,
            2,
            NeighbourState::Reachable,
            NeighbourFlags::empty(),
            vec![
                NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)),
                NeighbourAttribute::LinkLayerAddress(MAC.to_vec()),
            ],
        );
        let entry = neighbour_from_message(&m).unwrap();
        assert_eq!(
            entry,
            Neighbour {
                ifindex: 2,
                ip: IpAddr::V4(ip),
                mac: Some(MAC),
                state: NeighState::Reachable,
                router: false,
            }
        );
        assert_eq!(entry.state.as_str(), "REACHABLE");
        // The bridge's table is not a neighbour table.
        let mut bridge = m.clone();
        bridge.header.family = AddressFamily::Bridge;
        assert_eq!(neighbour_from_message(&bridge), None);
    }

    #[test]
    fn an_unresolved_v6_router_has_no_mac() {
        let ip: Ipv6Addr = "fd00::1".parse().unwrap();
        let m = message(
            AddressFamily::Inet6,
            3,
            NeighbourState::Failed,
            NeighbourFlags::Router,
            vec![NeighbourAttribute::Destination(NeighbourAddress::Inet6(ip))],
        );
        let entry = neighbour_from_message(&m).unwrap();
        assert_eq!((entry.ip, entry.mac), (IpAddr::V6(ip), None));
        assert!(entry.router);
        assert_eq!(entry.state.as_str(), "FAILED");
        // Without an address there is no entry to speak of.
        let bare = message(
            AddressFamily::Inet6,
            3,
            NeighbourState::None,
            NeighbourFlags::empty(),
            vec![],
        );
        assert_eq!(neighbour_from_message(&bare), None);
    }

    #[test]
    fn every_state_has_its_ip_neigh_word() {
        let words: Vec<&str> = [1u16, 2, 4, 8, 0x10, 0x20, 0x40, 0x80, 0]
            .into_iter()
            .map(|nud| NeighState::from(NeighbourState::from(nud)).as_str())
            .collect();
        assert_eq!(
            words,
            [
                "INCOMPLETE",
                "REACHABLE",
                "STALE",
                "DELAY",
                "PROBE",
                "FAILED",
                "NOARP",
                "PERMANENT",
                "NONE"
            ]
        );
        let odd = NeighState::from(NeighbourState::from(0x06));
        assert_eq!((odd, odd.to_string()), (NeighState::Other(6), "0x6".into()));
    }

    #[test]
    fn a_bridge_ports_own_address_is_a_permanent_master_entry() {
        let m = message(
            AddressFamily::Bridge,
            3,
            NeighbourState::Permanent,
            NeighbourFlags::Controller,
            vec![
                NeighbourAttribute::LinkLayerAddress(MAC.to_vec()),
                NeighbourAttribute::Vlan(1),
                NeighbourAttribute::Controller(2),
            ],
        );
        assert_eq!(
            fdb_from_message(&m),
            Some(FdbEntry {
                ifindex: 3,
                master: Some(2),
                mac: MAC,
                vlan: Some(1),
                permanent: true,
                is_self: false,
                extern_learn: false,
                remote: None,
            })
        );
        let mut arp = m.clone();
        arp.header.family = AddressFamily::Inet;
        assert_eq!(fdb_from_message(&arp), None);
    }

    #[test]
    fn a_permanent_neighbour_is_replaced_with_its_address_and_mac() {
        let ip = Ipv4Addr::new(10, 50, 2, 0);
        let request = add_neighbour_request(4, ip, MAC);
        let RouteNetlinkMessage::NewNeighbour(m) = &request.message else {
            panic!("not a new neighbour: {:?}", request.message);
        };
        assert_eq!(m.header.family, AddressFamily::Inet);
        assert_eq!(m.header.ifindex, 4);
        assert_eq!(m.header.state, NeighbourState::Permanent);
        assert_eq!(m.header.flags, NeighbourFlags::empty());
        assert_eq!(request.flags, NLM_F_CREATE | NLM_F_REPLACE);
        // What it writes is what the listing reads.
        let entry = neighbour_from_message(m).unwrap();
        assert_eq!(
            (entry.ip, entry.mac, entry.state),
            (IpAddr::V4(ip), Some(MAC), NeighState::Permanent)
        );
        assert!(request.op.contains("10.50.2.0 lladdr 02:00:00:00:00:02"));

        let request = delete_neighbour_request(4, ip);
        let RouteNetlinkMessage::DelNeighbour(m) = &request.message else {
            panic!("not a neighbour deletion: {:?}", request.message);
        };
        assert_eq!(
            (m.header.family, m.header.ifindex),
            (AddressFamily::Inet, 4)
        );
        assert_eq!(
            m.attributes,
            [NeighbourAttribute::Destination(NeighbourAddress::Inet(ip))]
        );
        assert_eq!(request.flags, 0);
    }

    #[test]
    fn a_vxlan_forwarding_entry_is_the_devices_own_with_its_remote() {
        let dst = Ipv4Addr::new(192, 0, 2, 2);
        let request = add_fdb_request(9, MAC, dst);
        let RouteNetlinkMessage::NewNeighbour(m) = &request.message else {
            panic!("not a new neighbour: {:?}", request.message);
        };
        assert_eq!(m.header.family, AddressFamily::Bridge);
        assert_eq!(m.header.flags, NeighbourFlags::Own);
        assert_eq!(m.header.state, NeighbourState::Permanent);
        assert_eq!(request.flags, NLM_F_CREATE | NLM_F_REPLACE);
        let entry = fdb_from_message(m).unwrap();
        assert!(entry.is_self && entry.permanent && entry.master.is_none());
        assert_eq!(
            (entry.ifindex, entry.mac, entry.remote),
            (9, MAC, Some(IpAddr::V4(dst)))
        );

        let request = delete_fdb_request(9, MAC, dst);
        let RouteNetlinkMessage::DelNeighbour(m) = &request.message else {
            panic!("not a neighbour deletion: {:?}", request.message);
        };
        assert_eq!(m.header.flags, NeighbourFlags::Own);
        let entry = fdb_from_message(m).unwrap();
        assert_eq!((entry.mac, entry.remote), (MAC, Some(IpAddr::V4(dst))));
        assert_eq!(request.flags, 0);
    }

    #[test]
    fn a_vxlan_remote_reads_from_raw_bytes() {
        let m = message(
            AddressFamily::Bridge,
            5,
            NeighbourState::Reachable,
            NeighbourFlags::Own | NeighbourFlags::ExtLearned,
            vec![
                NeighbourAttribute::LinkLayerAddress(vec![0; 6]),
                NeighbourAttribute::Destination(NeighbourAddress::Other(vec![192, 0, 2, 7])),
            ],
        );
        let entry = fdb_from_message(&m).unwrap();
        assert!(entry.is_self && entry.extern_learn && !entry.permanent);
        assert_eq!(entry.master, None);
        assert_eq!(entry.remote, Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))));
        let v6 =
            NeighbourAddress::Other("2001:db8::7".parse::<Ipv6Addr>().unwrap().octets().to_vec());
        assert_eq!(ip_of(&v6), Some("2001:db8::7".parse().unwrap()));
        assert_eq!(ip_of(&NeighbourAddress::Other(vec![1, 2, 3])), None);
        // A frame address that is not Ethernet's leaves no entry.
        let mut short = m.clone();
        short.attributes = vec![NeighbourAttribute::LinkLayerAddress(vec![1, 2, 3, 4])];
        assert_eq!(fdb_from_message(&short), None);
    }
}
