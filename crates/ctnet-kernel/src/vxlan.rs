//! VXLAN devices, for an overlay in the manner of Flannel's vxlan backend: one device per
//! host, no multicast group, no learning, and every peer written in by hand.
//!
//! ```text
//!   host A                                       host B
//!   ┌─────────────────────────────────────┐      ┌─────────────────────────────┐
//!   │ vx  VNI 42, local 192.0.2.1, :4789  │      │ vx  VNI 42, local 192.0.2.2 │
//!   │     0e:..:01, 10.50.1.0/32          │      │     0e:..:02, 10.50.2.0/32  │
//!   │     nolearning, no group or remote  │      │                             │
//!   │                                     │      │ the same three entries,     │
//!   │ per peer (here B), written by hand: │      │ for A                       │
//!   │  route 10.50.2.0/24 via 10.50.2.0   │      │                             │
//!   │        dev vx onlink     route.rs   │      │                             │
//!   │  neigh 10.50.2.0 → 0e:..:02         │      │                             │
//!   │        permanent         neigh.rs   │      │                             │
//!   │  fdb   0e:..:02 → dst 192.0.2.2     │      │                             │
//!   │        self permanent    neigh.rs   │      │                             │
//!   │                                     │      │                             │
//!   │ ul0 192.0.2.1 ══ UDP :4789, VNI 42 ═╪══════╪═ ul0 192.0.2.2              │
//!   └─────────────────────────────────────┘      └─────────────────────────────┘
//! ```
//!
//! A packet for 10.50.2.5 takes the route to the peer's subnet via the peer's own overlay
//! address, which no prefix of `vx` holds (hence `onlink`); the permanent neighbour entry
//! turns that address into the peer device's MAC without ARP (nothing would answer:
//! without a group or a default remote the device floods nowhere); the device's own
//! forwarding entry for that MAC names the remote end, and the frame leaves in a UDP
//! datagram to it. Without learning the receiving device never adds entries of its own,
//! so what the kernel holds is exactly what the control plane wrote, and can be diffed
//! against it ([`vxlan_info`], [`crate::neigh::fdb`], [`crate::neigh::neighbours`],
//! [`crate::route::list_family`]).

use std::fmt;
use std::net::Ipv4Addr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::RouteNetlinkMessage;

use crate::error::{Error, Result};
use crate::names::IfName;
use crate::neigh::mac_text;
use crate::netlink::{Request, RtSocket};

/// The IANA port of VXLAN (RFC 7348); Linux's own default, 8472, predates it.
pub const VXLAN_PORT: u16 = 4789;

/// The largest VXLAN network identifier: it is 24 bits wide.
pub const VNI_MAX: u32 = (1 << 24) - 1;

/// What VXLAN over IPv4 adds to each frame on the underlay: outer IPv4 (20), UDP (8),
/// VXLAN (8) and the inner Ethernet header (14) bytes. A device's MTU is its underlay's
/// less this.
pub const VXLAN_OVERHEAD: u32 = 50;

/// A VXLAN network identifier, 1 to [`VNI_MAX`]. The kernel takes 0 as well; an overlay
/// keeps it for "none".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Vni(u32);

/// Why a VNI was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("VXLAN network identifier {value} is out of range: a VNI is 24 bits and 0 means none, so use 1 to {VNI_MAX}")]
pub struct VniError {
    /// The value as given.
    pub value: u32,
}

impl Vni {
    /// Checks a VNI.
    pub fn new(value: u32) -> std::result::Result<Self, VniError> {
        if (1..=VNI_MAX).contains(&value) {
            Ok(Vni(value))
        } else {
            Err(VniError { value })
        }
    }

    /// The identifier as a number.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Vni {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A VXLAN device to create: the host's end of an overlay (see the module's drawing).
#[derive(Debug, Clone, Copy)]
pub struct VxlanSpec<'a> {
    /// Its name (Flannel's is `flannel.1`).
    pub name: &'a IfName,
    /// Its network identifier (`IFLA_VXLAN_ID`); every host of the overlay has the same.
    pub vni: Vni,
    /// The underlay address it sends from (`IFLA_VXLAN_LOCAL`), the one peers write in
    /// their forwarding entries for it.
    pub local: Ipv4Addr,
    /// The underlay link it sends through (`IFLA_VXLAN_LINK`); None leaves it to the
    /// routing table.
    pub underlay_index: Option<u32>,
    /// The UDP port it listens on and sends to (`IFLA_VXLAN_PORT`), in host byte order:
    /// [`VXLAN_PORT`] unless the overlay says otherwise.
    pub port: u16,
    /// Its hardware address (`IFLA_ADDRESS`). Peers' neighbour and forwarding entries
    /// name it, so it must outlive a re-creation: the caller picks and keeps it.
    pub mac: [u8; 6],
    /// Its MTU: the underlay's less [`VXLAN_OVERHEAD`], or less.
    pub mtu: u32,
}

/// The request that creates a VXLAN device, down, with nothing in its forwarding
/// database: no group, no default remote, learning off, UDP checksums on (the kernel's
/// default for IPv4, said outright so the device does not depend on the kernel's
/// version), the kernel's default TTL (that of the route to the remote) and source ports.
///
/// Down, so the caller can send per-family settings that cannot go in the creating
/// message (no IPv6 link-local address, [`crate::link::no_ipv6_link_local_request`])
/// and its address before it carries anything, then bring it up
/// ([`crate::link::set_up_request`]), all pipelined.
pub fn create_vxlan_request(spec: &VxlanSpec<'_>) -> Request {
    let mut data = vec![
        InfoVxlan::Id(spec.vni.get()),
        InfoVxlan::Local(spec.local),
        // The crate writes the port in network byte order (`emit_u16_be`), as the
        // kernel's nla_policy (NLA_BE16) wants.
        InfoVxlan::Port(spec.port),
        InfoVxlan::Learning(false),
        InfoVxlan::UDPCsum(true),
    ];
    if let Some(underlay) = spec.underlay_index {
        data.push(InfoVxlan::Link(underlay));
    }
    let mut message = LinkMessage::default();
    message.attributes.extend([
        LinkAttribute::IfName(spec.name.to_string()),
        LinkAttribute::Address(spec.mac.to_vec()),
        LinkAttribute::Mtu(spec.mtu),
        LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Vxlan),
            LinkInfo::Data(InfoData::Vxlan(data)),
        ]),
    ]);
    Request::new(
        RouteNetlinkMessage::NewLink(message),
        NLM_F_CREATE | NLM_F_EXCL,
        format!(
            "create VXLAN device {} (VNI {}, local {}, port {})",
            spec.name, spec.vni, spec.local, spec.port
        ),
    )
}

/// Creates a VXLAN device (see [`create_vxlan_request`]). A link of that name already
/// there is refused with EEXIST ([`Error::is_exists`]), whatever it is: the error says to
/// compare it with [`vxlan_info`] and keep it or delete it.
pub fn create_vxlan(sock: &mut RtSocket, spec: &VxlanSpec<'_>) -> Result<()> {
    sock.execute(create_vxlan_request(spec))
        .map_err(|error| match error {
            Error::Netlink { op, source } if source.raw_os_error() == Some(libc::EEXIST) => {
                Error::Netlink {
                    op: format!(
                        "{op}: a link named {} is already there; keep it if vxlan_info \
                         shows what is wanted, or delete it first",
                        spec.name
                    ),
                    source,
                }
            }
            other => other,
        })
}

/// A VXLAN device as the kernel holds it, to compare with a [`VxlanSpec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanInfo {
    /// Interface index.
    pub index: u32,
    /// Network identifier (`IFLA_VXLAN_ID`).
    pub vni: u32,
    /// The underlay address it sends from; None when it has none (left to routing).
    pub local: Option<Ipv4Addr>,
    /// The underlay link it is bound to (`IFLA_VXLAN_LINK`); None when unbound.
    pub underlay_index: Option<u32>,
    /// UDP port, in host byte order.
    pub port: u16,
    /// Whether it learns remotes from the datagrams it receives.
    pub learning: bool,
    /// Whether it puts UDP checksums on what it sends over IPv4.
    pub udp_csum: bool,
    /// Hardware address.
    pub mac: [u8; 6],
    /// MTU in bytes.
    pub mtu: u32,
    /// Administratively up.
    pub up: bool,
}

/// A setting in which a device differs from its spec (see [`VxlanInfo::differences`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VxlanField {
    /// The network identifier.
    Vni,
    /// The local underlay address.
    Local,
    /// The underlay link.
    Underlay,
    /// The UDP port.
    Port,
    /// Learning is on.
    Learning,
    /// The hardware address.
    Mac,
    /// The MTU.
    Mtu,
}

impl VxlanField {
    /// Whether the device can be set right where it is ([`crate::link::set_address_request`],
    /// [`crate::link::set_mtu_request`]); any other difference means making it again.
    pub fn settable_in_place(self) -> bool {
        matches!(self, VxlanField::Mac | VxlanField::Mtu)
    }

    /// The setting as `ip -d link` names it.
    pub fn as_str(self) -> &'static str {
        match self {
            VxlanField::Vni => "id",
            VxlanField::Local => "local",
            VxlanField::Underlay => "dev",
            VxlanField::Port => "dstport",
            VxlanField::Learning => "learning",
            VxlanField::Mac => "address",
            VxlanField::Mtu => "mtu",
        }
    }
}

impl fmt::Display for VxlanField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl VxlanInfo {
    /// The settings in which the device differs from `spec`; empty when it is what
    /// `spec` makes. The underlay link counts only when `spec` names one.
    pub fn differences(&self, spec: &VxlanSpec<'_>) -> Vec<VxlanField> {
        let checks = [
            (VxlanField::Vni, self.vni == spec.vni.get()),
            (VxlanField::Local, self.local == Some(spec.local)),
            (
                VxlanField::Underlay,
                spec.underlay_index.is_none() || self.underlay_index == spec.underlay_index,
            ),
            (VxlanField::Port, self.port == spec.port),
            (VxlanField::Learning, !self.learning),
            (VxlanField::Mac, self.mac == spec.mac),
            (VxlanField::Mtu, self.mtu == spec.mtu),
        ];
        checks
            .into_iter()
            .filter(|(_, same)| !same)
            .map(|(field, _)| field)
            .collect()
    }
}

/// The VXLAN device named `name`, read from the kernel; None when there is no link of
/// that name, [`Error::WrongKind`] when the link is not a VXLAN device.
pub fn vxlan_info(sock: &mut RtSocket, name: &IfName) -> Result<Option<VxlanInfo>> {
    let what = format!("look up VXLAN device {name}");
    let Some(message) = crate::link::get_message(sock, name.as_str(), &what)? else {
        return Ok(None);
    };
    info_from_message(&message, name.as_str(), &what).map(Some)
}

fn info_from_message(message: &LinkMessage, name: &str, what: &str) -> Result<VxlanInfo> {
    let mut kind = None;
    let mut data = None;
    let mut mac = None;
    let mut mtu = 0;
    for attr in &message.attributes {
        match attr {
            LinkAttribute::Address(bytes) => mac = <[u8; 6]>::try_from(&bytes[..]).ok(),
            LinkAttribute::Mtu(value) => mtu = *value,
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    match info {
                        LinkInfo::Kind(k) => kind = Some(k),
                        LinkInfo::Data(InfoData::Vxlan(d)) => data = Some(d),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if kind != Some(&InfoKind::Vxlan) {
        return Err(Error::WrongKind {
            name: name.to_string(),
            kind: kind.map_or_else(|| "unknown".to_string(), ToString::to_string),
            wanted: "vxlan",
        });
    }
    let protocol = |detail: &str| Error::Protocol {
        op: what.to_string(),
        detail: detail.to_string(),
    };
    let data = data.ok_or_else(|| protocol("a VXLAN device without IFLA_INFO_DATA"))?;
    let mut info = VxlanInfo {
        index: message.header.index,
        vni: 0,
        local: None,
        underlay_index: None,
        port: 0,
        learning: false,
        udp_csum: false,
        mac: mac.ok_or_else(|| protocol("a VXLAN device without an Ethernet address"))?,
        mtu,
        up: message.header.flags.contains(LinkFlags::Up),
    };
    let mut vni = None;
    for attr in data {
        match attr {
            InfoVxlan::Id(id) => vni = Some(*id),
            // The kernel reports an unset local address as 0.0.0.0 on some versions.
            InfoVxlan::Local(ip) if !ip.is_unspecified() => info.local = Some(*ip),
            // And an unbound device as link 0.
            InfoVxlan::Link(index) if *index != 0 => info.underlay_index = Some(*index),
            InfoVxlan::Port(port) => info.port = *port,
            InfoVxlan::Learning(on) => info.learning = *on,
            InfoVxlan::UDPCsum(on) => info.udp_csum = *on,
            _ => {}
        }
    }
    info.vni = vni.ok_or_else(|| protocol("a VXLAN device without IFLA_VXLAN_ID"))?;
    Ok(info)
}

impl fmt::Display for VxlanInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "vxlan id {} ", self.vni)?;
        if let Some(local) = self.local {
            write!(f, "local {local} ")?;
        }
        if let Some(underlay) = self.underlay_index {
            write!(f, "dev {underlay} ")?;
        }
        write!(
            f,
            "dstport {} {}learning address {} mtu {}",
            self.port,
            if self.learning { "" } else { "no" },
            mac_text(&self.mac),
            self.mtu
        )
    }
}

#[cfg(test)]
mod tests {
    use netlink_packet_core::Emitable;

    use super::*;

    const MAC: [u8; 6] = [0x0e, 0, 0, 0, 0, 1];

    fn spec(name: &IfName) -> VxlanSpec<'_> {
        VxlanSpec {
            name,
            vni: Vni::new(42).unwrap(),
            local: Ipv4Addr::new(192, 0, 2, 1),
            underlay_index: Some(3),
            port: VXLAN_PORT,
            mac: MAC,
            mtu: 1450,
        }
    }

    fn link_message(request: &Request) -> &LinkMessage {
        match &request.message {
            RouteNetlinkMessage::NewLink(message) => message,
            other => panic!("not a new link: {other:?}"),
        }
    }

    #[test]
    fn a_vni_is_24_bits_and_not_0() {
        assert_eq!(Vni::new(1).map(Vni::get), Ok(1));
        assert_eq!(Vni::new(VNI_MAX).map(Vni::get), Ok(16_777_215));
        for bad in [0, VNI_MAX + 1, u32::MAX] {
            let err = Vni::new(bad).unwrap_err();
            assert_eq!(err.value, bad);
            assert!(err.to_string().contains("1 to 16777215"), "{err}");
        }
    }

    #[test]
    fn the_creating_request_holds_the_overlays_settings_and_no_remote() {
        let name = IfName::new("vx0").unwrap();
        let request = create_vxlan_request(&spec(&name));
        let message = link_message(&request);
        for wanted in [
            LinkAttribute::IfName("vx0".into()),
            LinkAttribute::Address(MAC.to_vec()),
            LinkAttribute::Mtu(1450),
            LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Vxlan),
                LinkInfo::Data(InfoData::Vxlan(vec![
                    InfoVxlan::Id(42),
                    InfoVxlan::Local(Ipv4Addr::new(192, 0, 2, 1)),
                    InfoVxlan::Port(4789),
                    InfoVxlan::Learning(false),
                    InfoVxlan::UDPCsum(true),
                    InfoVxlan::Link(3),
                ])),
            ]),
        ] {
            assert!(
                message.attributes.contains(&wanted),
                "{wanted:?} missing from {:?}",
                message.attributes
            );
        }
        assert_eq!(request.flags, NLM_F_CREATE | NLM_F_EXCL);
        assert!(!message.header.flags.contains(LinkFlags::Up));
        assert!(request.op.contains("vx0") && request.op.contains("VNI 42"));
        // Unbound, it names no underlay link.
        let mut unbound = spec(&name);
        unbound.underlay_index = None;
        let request = create_vxlan_request(&unbound);
        let debug = format!("{:?}", link_message(&request).attributes);
        assert!(!debug.contains("Link(3)"), "{debug}");
    }

    #[test]
    fn the_port_goes_on_the_wire_in_network_byte_order() {
        let name = IfName::new("vx0").unwrap();
        let message = link_message(&create_vxlan_request(&spec(&name))).clone();
        let mut bytes = vec![0; message.buffer_len()];
        message.emit(&mut bytes);
        // IFLA_VXLAN_PORT (15): a 6-byte attribute whose header is in host order and
        // whose value, 4789 = 0x12b5, is big-endian.
        let mut port_attr = Vec::new();
        port_attr.extend(6u16.to_ne_bytes());
        port_attr.extend(15u16.to_ne_bytes());
        port_attr.extend([0x12, 0xb5]);
        assert!(
            bytes.windows(6).any(|w| w == port_attr),
            "no big-endian port attribute in {bytes:02x?}"
        );
    }

    #[test]
    fn the_kernels_answer_reads_back_and_is_compared_with_the_spec() {
        let name = IfName::new("vx0").unwrap();
        let spec = spec(&name);
        // The kernel's answer has what the request had, and more.
        let mut message = link_message(&create_vxlan_request(&spec)).clone();
        message.header.index = 7;
        message.header.flags = LinkFlags::Up;
        let info = info_from_message(&message, "vx0", "read").unwrap();
        assert_eq!(
            info,
            VxlanInfo {
                index: 7,
                vni: 42,
                local: Some(Ipv4Addr::new(192, 0, 2, 1)),
                underlay_index: Some(3),
                port: 4789,
                learning: false,
                udp_csum: true,
                mac: MAC,
                mtu: 1450,
                up: true,
            }
        );
        assert!(info.differences(&spec).is_empty());
        assert_eq!(
            info.to_string(),
            "vxlan id 42 local 192.0.2.1 dev 3 dstport 4789 nolearning address 0e:00:00:00:00:01 mtu 1450"
        );

        let mut drifted = info.clone();
        drifted.vni = 43;
        drifted.learning = true;
        drifted.mtu = 1500;
        let differences = drifted.differences(&spec);
        assert_eq!(
            differences,
            [VxlanField::Vni, VxlanField::Learning, VxlanField::Mtu]
        );
        assert_eq!(
            differences
                .iter()
                .map(|f| f.settable_in_place())
                .collect::<Vec<_>>(),
            [false, false, true]
        );
        // A spec that names no underlay accepts any.
        let mut any_underlay = spec;
        any_underlay.underlay_index = None;
        drifted.underlay_index = Some(9);
        assert!(!drifted
            .differences(&any_underlay)
            .contains(&VxlanField::Underlay));
        assert!(drifted.differences(&spec).contains(&VxlanField::Underlay));
    }

    #[test]
    fn a_link_of_another_kind_is_named_as_such() {
        let mut message = LinkMessage::default();
        message
            .attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        let err = info_from_message(&message, "vx0", "read").unwrap_err();
        assert_eq!(
            err.to_string(),
            "link vx0 is a bridge device, not a vxlan one; delete it or choose another name"
        );
        // A VXLAN answer without its data is the kernel's fault, said so.
        message.attributes = vec![
            LinkAttribute::Address(MAC.to_vec()),
            LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Vxlan)]),
        ];
        let err = info_from_message(&message, "vx0", "read").unwrap_err();
        assert!(matches!(err, Error::Protocol { .. }), "{err}");
    }
}
