//! Links: bridges, veth pairs, macvlan interfaces, up/down, MTU, master, IPv6 link-local
//! addressing, IPv4 per-device settings (`route_localnet`), lookup and listing. VXLAN
//! devices have their own module, [`crate::vxlan`].

use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::link::{
    AfSpecInet, AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InetDevConf, InfoBridge, InfoBridgePort,
    InfoData, InfoKind, InfoMacVlan, InfoPortData, InfoPortKind, InfoVeth, LinkAttribute,
    LinkExtentMask, LinkFlags, LinkInfo, LinkMessage, MacVlanMode,
};
use netlink_packet_route::RouteNetlinkMessage;

use crate::error::{Error, Result};
use crate::names::IfName;
use crate::netlink::{header_u32, Request, RtSocket};

/// The loopback device is always interface 1 of a network namespace.
pub const LOOPBACK_INDEX: u32 = 1;

/// What the kernel holds about one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// The driver kind ("bridge", "veth", ...), when the kernel reports one.
    pub kind: Option<String>,
    /// Index of the bridge this link is a port of.
    pub master: Option<u32>,
    /// MTU in bytes.
    pub mtu: u32,
    /// Administratively up.
    pub up: bool,
    /// Hardware address.
    pub mac: Option<[u8; 6]>,
    /// The mode of a macvlan interface (`IFLA_MACVLAN_MODE`); None for any other kind.
    pub macvlan_mode: Option<MacvlanMode>,
    /// A bridge's own `nf_call_iptables` and `nf_call_ip6tables` flags
    /// (`IFLA_BR_NF_CALL_*`); None for any other kind.
    pub bridge_nf_call: Option<(bool, bool)>,
}

/// A veth pair to create: `name` stays in the socket's namespace, `peer_name` is made
/// directly inside `peer_netns`, so the peer never appears in the host namespace.
pub struct VethSpec<'a> {
    /// The side that stays here (the host side).
    pub name: &'a IfName,
    /// The side made inside `peer_netns` (the container side, e.g. `eth0`).
    pub peer_name: &'a IfName,
    /// The namespace the peer is created in.
    pub peer_netns: BorrowedFd<'a>,
    /// Make the host side a port of this bridge.
    pub master: Option<u32>,
    /// MTU of both sides.
    pub mtu: Option<u32>,
    /// Fixed hardware address for the peer.
    pub peer_mac: Option<[u8; 6]>,
}

/// How a macvlan interface shares its parent with the other macvlans on it (the
/// kernel's `MACVLAN_MODE_*`, `ip link … type macvlan mode …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacvlanMode {
    /// Macvlans on one parent reach each other inside the kernel, without the wire.
    Bridge,
    /// No traffic between macvlans on one parent, even back from an outside switch.
    Private,
    /// Traffic between macvlans on one parent goes out to the switch (802.1Qbg), which
    /// must send it back (hairpin).
    Vepa,
    /// The one macvlan on the parent takes over the parent's traffic (and address).
    Passthru,
    /// Only frames from listed source addresses are received.
    Source,
}

impl MacvlanMode {
    fn wire(self) -> MacVlanMode {
        match self {
            MacvlanMode::Bridge => MacVlanMode::Bridge,
            MacvlanMode::Private => MacVlanMode::Private,
            MacvlanMode::Vepa => MacVlanMode::Vepa,
            MacvlanMode::Passthru => MacVlanMode::Passthrough,
            MacvlanMode::Source => MacVlanMode::Source,
        }
    }

    fn from_wire(mode: MacVlanMode) -> Option<Self> {
        match mode {
            MacVlanMode::Bridge => Some(MacvlanMode::Bridge),
            MacVlanMode::Private => Some(MacvlanMode::Private),
            MacVlanMode::Vepa => Some(MacvlanMode::Vepa),
            MacVlanMode::Passthrough => Some(MacvlanMode::Passthru),
            MacVlanMode::Source => Some(MacvlanMode::Source),
            _ => None,
        }
    }
}

/// A macvlan interface to create over `parent` (a link of the socket's namespace), made
/// straight inside `netns` under its final name: it never appears in the host namespace
/// and is never renamed.
#[derive(Debug, Clone, Copy)]
pub struct MacvlanSpec<'a> {
    /// Its name inside `netns` (the container side, e.g. `eth0`).
    pub name: &'a IfName,
    /// Index of the parent link, in the socket's namespace (`IFLA_LINK`).
    pub parent: u32,
    /// Its mode.
    pub mode: MacvlanMode,
    /// The namespace it is created in (`IFLA_NET_NS_FD`).
    pub netns: BorrowedFd<'a>,
    /// MTU; the parent's when None. The kernel refuses one above the parent's.
    pub mtu: Option<u32>,
    /// Fixed hardware address; a random one when None.
    pub mac: Option<[u8; 6]>,
}

/// The request that creates a macvlan interface (down) inside its namespace: one
/// message, as a veth's peer is made. It is brought up from inside the namespace with
/// its addresses, like the container side of a veth.
pub fn create_macvlan_request(spec: &MacvlanSpec<'_>) -> Request {
    let mut message = LinkMessage::default();
    message
        .attributes
        .push(LinkAttribute::IfName(spec.name.to_string()));
    message.attributes.push(LinkAttribute::Link(spec.parent));
    message
        .attributes
        .push(LinkAttribute::NetNsFd(spec.netns.as_raw_fd()));
    if let Some(mtu) = spec.mtu {
        message.attributes.push(LinkAttribute::Mtu(mtu));
    }
    if let Some(mac) = spec.mac {
        message
            .attributes
            .push(LinkAttribute::Address(mac.to_vec()));
    }
    message.attributes.extend(single_queue());
    message.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::MacVlan),
        LinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(spec.mode.wire())])),
    ]));
    Request::new(
        RouteNetlinkMessage::NewLink(message),
        NLM_F_CREATE | NLM_F_EXCL,
        format!("create macvlan {} on link {}", spec.name, spec.parent),
    )
}

/// Creates a macvlan interface (see [`create_macvlan_request`]).
pub fn create_macvlan(sock: &mut RtSocket, spec: &MacvlanSpec<'_>) -> Result<()> {
    sock.execute(create_macvlan_request(spec))
}

fn up_header(message: &mut LinkMessage) {
    message.header.flags = LinkFlags::Up;
    message.header.change_mask = LinkFlags::Up;
}

/// What a new bridge is made with.
#[derive(Debug, Clone, Copy)]
pub struct BridgeSpec<'a> {
    /// Its name.
    pub name: &'a IfName,
    /// Its MTU; the kernel's default when None.
    pub mtu: Option<u32>,
    /// IGMP/MLD snooping (`IFLA_BR_MCAST_SNOOPING`); the kernel turns it on by default.
    pub multicast_snooping: bool,
    /// Its hardware address (`IFLA_ADDRESS`). Without one the kernel gives the bridge a
    /// random address and then, each time a port comes or goes, the lowest address of
    /// its ports (`br_stp_recalculate_bridge_id`); an address given here is kept for
    /// good (`addr_assign_type` NET_ADDR_SET).
    pub mac: Option<[u8; 6]>,
}

/// `NET_ADDR_SET` of `addr_assign_type`: the address was set explicitly, and a bridge no
/// longer takes its ports' addresses.
pub const NET_ADDR_SET: u8 = 3;

/// The request that creates a bridge, up.
pub fn create_bridge_request(spec: &BridgeSpec<'_>) -> Request {
    let name = spec.name;
    let mut message = LinkMessage::default();
    up_header(&mut message);
    message
        .attributes
        .push(LinkAttribute::IfName(name.to_string()));
    if let Some(mtu) = spec.mtu {
        message.attributes.push(LinkAttribute::Mtu(mtu));
    }
    if let Some(mac) = spec.mac {
        message
            .attributes
            .push(LinkAttribute::Address(mac.to_vec()));
    }
    message.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Bridge),
        LinkInfo::Data(InfoData::Bridge(vec![InfoBridge::MulticastSnooping(
            spec.multicast_snooping,
        )])),
    ]));
    Request::new(
        RouteNetlinkMessage::NewLink(message),
        NLM_F_CREATE | NLM_F_EXCL,
        format!("create bridge {name}"),
    )
}

/// The request that creates a veth pair, host side up and enslaved to `master`, the peer
/// (down) already inside its namespace.
///
/// One message does it all: the kernel creates the peer in its namespace, sets the
/// master and brings the host side up, which saves three round trips against doing it
/// in steps.
pub fn create_veth_request(spec: &VethSpec<'_>) -> Request {
    // The peer cannot be created up: veth refuses to open a device before its pair is
    // linked (ENOTCONN), so the caller brings it up from inside its namespace.
    let mut peer = LinkMessage::default();
    peer.attributes
        .push(LinkAttribute::IfName(spec.peer_name.to_string()));
    peer.attributes
        .push(LinkAttribute::NetNsFd(spec.peer_netns.as_raw_fd()));
    if let Some(mtu) = spec.mtu {
        peer.attributes.push(LinkAttribute::Mtu(mtu));
    }
    if let Some(mac) = spec.peer_mac {
        peer.attributes.push(LinkAttribute::Address(mac.to_vec()));
    }
    peer.attributes.extend(single_queue());

    let mut message = LinkMessage::default();
    up_header(&mut message);
    message
        .attributes
        .push(LinkAttribute::IfName(spec.name.to_string()));
    message.attributes.extend(single_queue());
    if let Some(mtu) = spec.mtu {
        message.attributes.push(LinkAttribute::Mtu(mtu));
    }
    if let Some(master) = spec.master {
        message.attributes.push(LinkAttribute::Controller(master));
    }
    message.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
    ]));
    Request::new(
        RouteNetlinkMessage::NewLink(message),
        NLM_F_CREATE | NLM_F_EXCL,
        format!("create veth {} with peer {}", spec.name, spec.peer_name),
    )
}

/// One transmit and one receive queue, said outright. Without them the kernel makes a
/// veth end with a queue per CPU and then cuts it down to one, and cutting queues waits
/// for an expedited RCU grace period while holding the rtnl lock: twice per pair, a
/// fifth of the pair's creation time on a 2-CPU machine. One queue is what a veth uses
/// anyway unless XDP is set up on it.
fn single_queue() -> [LinkAttribute; 2] {
    [LinkAttribute::NumTxQueues(1), LinkAttribute::NumRxQueues(1)]
}

/// `IFLA_AF_SPEC` asking for no IPv6 link-local address (address generation mode none).
///
/// A bridge port or an IPv4-only container interface has no use for one, and making
/// it costs on every device: duplicate address detection, router solicitations and
/// MLD reports flooded to every port of the bridge, and a `fe80::/64` route per device
/// that the kernel walks on each link change, so each attach grows slower with the
/// number of containers.
fn no_ipv6_link_local() -> LinkAttribute {
    LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(vec![AfSpecInet6::AddrGenMode(
        In6AddrGenMode::None,
    )])])
}

/// The request that turns off IPv6 link-local addressing on a link (see
/// [`no_ipv6_link_local`]). It must come before the link has carrier (a veth whose
/// peer is still down): the kernel makes the address when carrier comes, and does not
/// take one back. It cannot go in the creating message: the kernel checks per-family
/// settings against a device that does not exist yet and refuses them.
///
/// # Dual stack
///
/// An interface of a dual-stack network needs nothing special when it is made: the engine
/// simply does not send this request for it, and the kernel gives it its `fe80::/64`
/// address when carrier comes, as on any host. The link-local address goes through
/// duplicate address detection, but that does not hold up the interface: ctnet's global
/// address is added without it (see [`crate::addr`]) and is usable at once, and the
/// default route goes via the bridge's global address, not a link-local one. What a
/// dual-stack container interface does need is no autoconfiguration from other
/// containers' router advertisements ([`crate::sysctl::disable_ipv6_autoconf`], before
/// it comes up), and its network's bridge must have IPv6 on
/// ([`crate::sysctl::enable_ipv6`]). A bridge port (the host side of a veth) stays
/// without IPv6 in either case: it only switches frames.
pub fn no_ipv6_link_local_request(name: &IfName) -> Request {
    let mut message = LinkMessage::default();
    message
        .attributes
        .push(LinkAttribute::IfName(name.to_string()));
    message.attributes.push(no_ipv6_link_local());
    Request::new(
        RouteNetlinkMessage::SetLink(message),
        0,
        format!("turn off IPv6 link-local addressing on {name}"),
    )
}

/// The request that makes a link's IPv6 link-local address from its MAC (EUI-64,
/// RFC 4291 appendix A) when carrier comes, whatever the namespace's default
/// `addr_gen_mode` (a stable-privacy or random one would make an address nobody can
/// predict). ctnet's anti-spoofing lets a container's IPv6 out only from its own
/// addresses, this one included, so it must be known before the container has it. Like
/// [`no_ipv6_link_local_request`] it goes before the link has carrier.
pub fn eui64_link_local_request(name: &IfName) -> Request {
    let mut message = LinkMessage::default();
    message
        .attributes
        .push(LinkAttribute::IfName(name.to_string()));
    message
        .attributes
        .push(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
            vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::Eui64)],
        )]));
    Request::new(
        RouteNetlinkMessage::SetLink(message),
        0,
        format!("make the IPv6 link-local address of {name} from its MAC"),
    )
}

/// The request that turns on `route_localnet` on link `index` over netlink, with no
/// file under /proc/sys: `IFLA_AF_SPEC` → `AF_INET` → `IFLA_INET_CONF`, a nested entry
/// per setting whose type is its `IPV4_DEVCONF_*` index (`ROUTE_LOCALNET` = 26,
/// include/uapi/linux/ip.h), which the kernel's `inet_set_link_af` stores as a write to
/// `net.ipv4.conf.<link>.route_localnet` would. It works where /proc/sys is mounted
/// read-only, and pipelines with the link's other requests (no round trip of its own).
/// Like the per-family setting of [`no_ipv6_link_local_request`], it cannot go in the
/// creating message: the kernel refuses `IFLA_AF_SPEC` there (EAFNOSUPPORT, seen on 6.18).
///
/// `route_localnet` = 1 lets packets to 127.0.0.0/8 be routed out of the link, so a port
/// published on 127.0.0.1 can be DNATed to a container behind it. Whoever sets it must
/// drop packets for 127.0.0.0/8 that arrive from outside (the CVE-2020-8558 class).
pub fn enable_route_localnet_request(index: u32, what: &str) -> Request {
    // The crate's request form sends only the settings that are not 0, so only this one.
    let mut conf = InetDevConf::default();
    conf.route_localnet = 1;
    let mut message = LinkMessage::default();
    message.header.index = index;
    message
        .attributes
        .push(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet(vec![
            AfSpecInet::DevConfRequest(conf),
        ])]));
    Request::new(
        RouteNetlinkMessage::SetLink(message),
        0,
        format!("turn on route_localnet on {what}"),
    )
}

/// Link `name`'s `route_localnet`, read over netlink from its IPv4 settings
/// (`IFLA_INET_CONF` of its `IFLA_AF_SPEC`); None when there is no such link or it has
/// no IPv4 settings.
pub fn route_localnet(sock: &mut RtSocket, name: &str) -> Result<Option<bool>> {
    let what = format!("look up the IPv4 settings of link {name}");
    let Some(link) = get_message(sock, name, &what)? else {
        return Ok(None);
    };
    Ok(link.attributes.iter().find_map(|attr| match attr {
        LinkAttribute::AfSpecUnspec(families) => families.iter().find_map(|f| match f {
            AfSpecUnspec::Inet(entries) => entries.iter().find_map(|e| match e {
                AfSpecInet::DevConf(conf) => Some(conf.route_localnet != 0),
                _ => None,
            }),
            _ => None,
        }),
        _ => None,
    }))
}

/// The request that brings a link up.
pub fn set_up_request(index: u32, what: &str) -> Request {
    let mut message = LinkMessage::default();
    message.header.index = index;
    up_header(&mut message);
    Request::new(
        RouteNetlinkMessage::SetLink(message),
        0,
        format!("bring {what} up"),
    )
}

/// The request that sets link `index`'s hardware address. Setting the address it has
/// already changes nothing on the wire but marks it set (`NET_ADDR_SET`), which is how a
/// bridge made without one is made to keep the one it has.
pub fn set_address_request(index: u32, mac: [u8; 6], what: &str) -> Request {
    let mut message = LinkMessage::default();
    message.header.index = index;
    message
        .attributes
        .push(LinkAttribute::Address(mac.to_vec()));
    let text: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    Request::new(
        RouteNetlinkMessage::SetLink(message),
        0,
        format!("set the address of {what} to {}", text.join(":")),
    )
}

/// The request that sets link `index`'s MTU: a VXLAN device's must leave room for the
/// 50 bytes its encapsulation adds on the underlay, whatever the kernel chose.
pub fn set_mtu_request(index: u32, mtu: u32, what: &str) -> Request {
    let mut message = LinkMessage::default();
    message.header.index = index;
    message.attributes.push(LinkAttribute::Mtu(mtu));
    Request::new(
        RouteNetlinkMessage::SetLink(message),
        0,
        format!("set the MTU of {what} to {mtu}"),
    )
}

/// How the kernel came by a link's address (`addr_assign_type`: 0 permanent, 1 random,
/// 2 stolen, 3 set), and the link's index, from sysfs, which has it and netlink does not.
/// None when sysfs has no such link: it shows the namespace it was mounted in, which
/// the caller compares the index with.
pub fn address_assign_type(name: &IfName) -> Option<(u8, u32)> {
    let read = |file: &str| -> Option<u32> {
        std::fs::read_to_string(format!("/sys/class/net/{name}/{file}"))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    Some((
        u8::try_from(read("addr_assign_type")?).ok()?,
        read("ifindex")?,
    ))
}

/// Creates a bridge, up.
pub fn create_bridge(sock: &mut RtSocket, spec: &BridgeSpec<'_>) -> Result<()> {
    sock.execute(create_bridge_request(spec))
}

/// Creates a veth pair (see [`create_veth_request`]).
pub fn create_veth(sock: &mut RtSocket, spec: &VethSpec<'_>) -> Result<()> {
    sock.execute(create_veth_request(spec))
}

/// Deletes a link by name. Returns false when there was no such link.
///
/// Deleting one side of a veth pair deletes the other.
pub fn delete(sock: &mut RtSocket, name: &str) -> Result<bool> {
    let mut message = LinkMessage::default();
    message
        .attributes
        .push(LinkAttribute::IfName(name.to_string()));
    match sock.execute(Request::new(
        RouteNetlinkMessage::DelLink(message),
        0,
        format!("delete link {name}"),
    )) {
        Ok(()) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Takes a link down by name; `Ok(false)` if there is no such link.
pub fn set_down(sock: &mut RtSocket, name: &str) -> Result<bool> {
    let mut message = LinkMessage::default();
    message
        .attributes
        .push(LinkAttribute::IfName(name.to_string()));
    message.header.change_mask = LinkFlags::Up;
    match sock.execute(Request::new(
        RouteNetlinkMessage::SetLink(message),
        0,
        format!("take link {name} down"),
    )) {
        Ok(()) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Looks a link up by name.
pub fn get(sock: &mut RtSocket, name: &str) -> Result<Option<Link>> {
    let link = get_message(sock, name, &format!("look up link {name}"))?;
    Ok(link.map(|link| parse_link(&link)))
}

/// The kernel's whole description of the link named `name` (RTM_GETLINK), if it exists.
pub(crate) fn get_message(
    sock: &mut RtSocket,
    name: &str,
    what: &str,
) -> Result<Option<LinkMessage>> {
    let mut message = LinkMessage::default();
    message
        .attributes
        .push(LinkAttribute::IfName(name.to_string()));
    Ok(
        match sock.get(RouteNetlinkMessage::GetLink(message), what)? {
            Some(RouteNetlinkMessage::NewLink(link)) => Some(link),
            _ => None,
        },
    )
}

/// The index of the link named `name`, if it exists.
///
/// Only the index is read from the reply, and the kernel is asked to leave out the
/// statistics: a bridge's full description is a couple of KiB of attributes to decode.
pub fn index_of(sock: &mut RtSocket, name: &str) -> Result<Option<u32>> {
    let mut message = LinkMessage::default();
    message.attributes.extend([
        LinkAttribute::IfName(name.to_string()),
        LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]),
    ]);
    let op = format!("look up link {name}");
    sock.get_with(RouteNetlinkMessage::GetLink(message), &op, |reply| {
        // struct ifinfomsg follows the 16-byte netlink header: family, pad, type (u16),
        // then the index.
        header_u32(reply, 16 + 4).ok_or_else(|| Error::Protocol {
            op: op.clone(),
            detail: "a link reply too short to hold an index".into(),
        })
    })
}

/// All links in the socket's namespace.
pub fn list(sock: &mut RtSocket) -> Result<Vec<Link>> {
    let replies = sock.dump(
        RouteNetlinkMessage::GetLink(LinkMessage::default()),
        "list links",
    )?;
    Ok(replies
        .iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewLink(link) => Some(parse_link(link)),
            _ => None,
        })
        .collect())
}

/// Brings a link up.
pub fn set_up(sock: &mut RtSocket, index: u32, what: &str) -> Result<()> {
    sock.execute(set_up_request(index, what))
}

fn parse_link(message: &LinkMessage) -> Link {
    let mut link = Link {
        index: message.header.index,
        name: String::new(),
        kind: None,
        master: None,
        mtu: 0,
        up: message.header.flags.contains(LinkFlags::Up),
        mac: None,
        macvlan_mode: None,
        bridge_nf_call: None,
    };
    for attr in &message.attributes {
        match attr {
            LinkAttribute::IfName(name) => link.name = name.clone(),
            LinkAttribute::Mtu(mtu) => link.mtu = *mtu,
            LinkAttribute::Controller(master) => link.master = Some(*master),
            LinkAttribute::Address(mac) if mac.len() == 6 => {
                link.mac = Some(mac.as_slice().try_into().unwrap_or([0; 6]))
            }
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    match info {
                        LinkInfo::Kind(kind) => link.kind = Some(kind.to_string()),
                        LinkInfo::Data(InfoData::Bridge(data)) => {
                            let flag = |want: fn(&InfoBridge) -> Option<bool>| {
                                data.iter().find_map(want).unwrap_or(false)
                            };
                            link.bridge_nf_call = Some((
                                flag(|d| match d {
                                    InfoBridge::NfCallIpTables(on) => Some(*on),
                                    _ => None,
                                }),
                                flag(|d| match d {
                                    InfoBridge::NfCallIp6Tables(on) => Some(*on),
                                    _ => None,
                                }),
                            ));
                        }
                        LinkInfo::Data(InfoData::MacVlan(data)) => {
                            link.macvlan_mode = data.iter().find_map(|d| match d {
                                InfoMacVlan::Mode(mode) => MacvlanMode::from_wire(*mode),
                                _ => None,
                            })
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    link
}

/// The request that sets a bridge port's hairpin and isolation flags (pipeline it right
/// after the port's creation).
///
/// Hairpin lets a frame leave through the port it came in on: with `br_netfilter`
/// active, a container reaching its own published port is DNATed at the bridge layer and
/// bridged straight back to its own port. An isolated port exchanges frames with the bridge
/// itself and with non-isolated ports, never with another isolated port: with every
/// container port of a bridge isolated, containers on it cannot talk to each other
/// (Docker's icc=false), while routed traffic through the bridge device still flows.
pub fn set_bridge_port_flags_request(name: &IfName, hairpin: bool, isolated: bool) -> Request {
    let mut message = LinkMessage::default();
    message
        .attributes
        .push(LinkAttribute::IfName(name.to_string()));
    message.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::PortKind(InfoPortKind::Bridge),
        LinkInfo::PortData(InfoPortData::BridgePort(vec![
            InfoBridgePort::HairpinMode(hairpin),
            InfoBridgePort::Isolated(isolated),
        ])),
    ]));
    Request::new(
        RouteNetlinkMessage::NewLink(message),
        0,
        format!("set hairpin={hairpin} isolated={isolated} on bridge port {name}"),
    )
}

/// The request that sets a bridge's own `nf_call_iptables` and `nf_call_ip6tables`
/// flags: with them on, `br_netfilter` passes the bridge's bridged IPv4 and IPv6 frames
/// through the inet hooks (and conntrack) whatever the namespace's
/// `net.bridge.bridge-nf-call-iptables` sysctl says, so firewall rules see traffic
/// between two ports of this bridge, and only of this one.
pub fn set_bridge_nf_call_request(name: &IfName, on: bool) -> Request {
    let mut message = LinkMessage::default();
    message
        .attributes
        .push(LinkAttribute::IfName(name.to_string()));
    message.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Bridge),
        LinkInfo::Data(InfoData::Bridge(vec![
            InfoBridge::NfCallIpTables(on),
            InfoBridge::NfCallIp6Tables(on),
        ])),
    ]));
    Request::new(
        RouteNetlinkMessage::NewLink(message),
        0,
        format!("set nf_call_iptables={on} nf_call_ip6tables={on} on bridge {name}"),
    )
}

/// The request that makes link `name` a port of bridge `master` and brings it up (a
/// veth left behind by a bridge that was deleted and made again).
pub fn set_master_request(name: &IfName, master: u32) -> Request {
    let mut message = LinkMessage::default();
    up_header(&mut message);
    message
        .attributes
        .push(LinkAttribute::IfName(name.to_string()));
    message.attributes.push(LinkAttribute::Controller(master));
    Request::new(
        RouteNetlinkMessage::SetLink(message),
        0,
        format!("make {name} a port of bridge {master} again"),
    )
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn a_macvlan_request_names_its_parent_namespace_and_mode() {
        let netns = std::fs::File::open("/proc/self/ns/net").unwrap();
        let name = IfName::new("eth0").unwrap();
        let request = create_macvlan_request(&MacvlanSpec {
            name: &name,
            parent: 7,
            mode: MacvlanMode::Private,
            netns: netns.as_fd(),
            mtu: Some(1400),
            mac: Some([2, 0, 0, 0, 0, 1]),
        });
        let RouteNetlinkMessage::NewLink(message) = &request.message else {
            panic!("not a new link: {:?}", request.message);
        };
        let attrs = &message.attributes;
        for wanted in [
            LinkAttribute::IfName("eth0".into()),
            LinkAttribute::Link(7),
            LinkAttribute::NetNsFd(netns.as_raw_fd()),
            LinkAttribute::Mtu(1400),
            LinkAttribute::Address(vec![2, 0, 0, 0, 0, 1]),
            LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::MacVlan),
                LinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(
                    MacVlanMode::Private,
                )])),
            ]),
        ] {
            assert!(attrs.contains(&wanted), "{wanted:?} missing from {attrs:?}");
        }
        assert_eq!(request.flags, NLM_F_CREATE | NLM_F_EXCL);
        assert!(!message.header.flags.contains(LinkFlags::Up));
    }
    #[test]
    fn an_mtu_request_sets_only_the_mtu_of_its_link() {
        let request = set_mtu_request(5, 1450, "vx0");
        let RouteNetlinkMessage::SetLink(message) = &request.message else {
            panic!("not a link change: {:?}", request.message);
        };
        assert_eq!(message.header.index, 5);
        assert_eq!(message.attributes, [LinkAttribute::Mtu(1450)]);
        assert_eq!(message.header.change_mask, LinkFlags::empty());
        assert_eq!(request.op, "set the MTU of vx0 to 1450");
    }
}
