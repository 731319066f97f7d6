//! What `ip -s -d link` shows about each link, for observing a running network: state,
//! counters, the veth peer and the bridge port behind a link.
//!
//! ```text
//!   this namespace                          the peer's namespace
//!   br0 (index 2) ◄── master ── vh (3) ════ eth0 (2)
//!                                 │  peer_index = 2, peer_netnsid = 0
//!                                 ├─ bridge_port: forwarding, learning, flood
//!                                 └─ stats: rx/tx packets, bytes, drops, errors
//! ```
//!
//! Everything comes from one `RTM_GETLINK` reply per link (a dump for all of them):
//! `IFLA_STATS64`, `IFLA_LINK`/`IFLA_LINK_NETNSID` and, for a bridge port,
//! `IFLA_LINKINFO` → `IFLA_INFO_SLAVE_DATA`. Nothing is read from sysfs, which shows
//! the namespace it was mounted in rather than the socket's.

use netlink_packet_route::link::{
    BridgePortState, InfoBridgePort, InfoPortData, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
    State, Stats64,
};
use netlink_packet_route::RouteNetlinkMessage;

use crate::error::Result;
use crate::netlink::RtSocket;

/// A link's 64-bit counters (`IFLA_STATS64`), the ones `ip -s link` prints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Received packets dropped (no room, no handler for the protocol, ...).
    pub rx_dropped: u64,
    /// Packets dropped on the way out (for a veth: the peer was down or full).
    pub tx_dropped: u64,
    /// Bad packets received.
    pub rx_errors: u64,
    /// Packets that failed to go out.
    pub tx_errors: u64,
}

impl From<&Stats64> for Stats {
    fn from(s: &Stats64) -> Self {
        Stats {
            rx_packets: s.rx_packets,
            tx_packets: s.tx_packets,
            rx_bytes: s.rx_bytes,
            tx_bytes: s.tx_bytes,
            rx_dropped: s.rx_dropped,
            tx_dropped: s.tx_dropped,
            rx_errors: s.rx_errors,
            tx_errors: s.tx_errors,
        }
    }
}

/// A bridge port's spanning-tree state (`IFLA_BRPORT_STATE`). Without STP, which ctnet's
/// bridges run without, a port is `Forwarding` once it has carrier and `Disabled` before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortState {
    /// The port is down or has no carrier: no frames in or out.
    Disabled,
    /// STP is deciding the port's role: no forwarding, no learning.
    Listening,
    /// Addresses are learnt from incoming frames, none forwarded yet.
    Learning,
    /// Frames are forwarded and addresses learnt.
    Forwarding,
    /// STP blocks the port to break a loop.
    Blocking,
    /// A value this layer does not know.
    Other(u8),
}

impl PortState {
    /// The state as iproute2 names it ("forwarding", ...); "unknown" for [`PortState::Other`].
    pub fn as_str(&self) -> &'static str {
        match self {
            PortState::Disabled => "disabled",
            PortState::Listening => "listening",
            PortState::Learning => "learning",
            PortState::Forwarding => "forwarding",
            PortState::Blocking => "blocking",
            PortState::Other(_) => "unknown",
        }
    }
}

impl From<BridgePortState> for PortState {
    fn from(state: BridgePortState) -> Self {
        match state {
            BridgePortState::Disabled => PortState::Disabled,
            BridgePortState::Listening => PortState::Listening,
            BridgePortState::Learning => PortState::Learning,
            BridgePortState::Forwarding => PortState::Forwarding,
            BridgePortState::Blocking => PortState::Blocking,
            // The crate's enum may grow; its raw value keeps what it would have said.
            other => PortState::Other(u8::from(other)),
        }
    }
}

impl std::fmt::Display for PortState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PortState::Other(value) => write!(f, "{value}"),
            known => f.write_str(known.as_str()),
        }
    }
}

/// How a link behaves as a port of a bridge (`IFLA_BRPORT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BridgePort {
    /// Spanning-tree state.
    pub state: PortState,
    /// Frames may leave through the port they came in on.
    pub hairpin: bool,
    /// No frames to or from other isolated ports.
    pub isolated: bool,
    /// Source addresses of incoming frames are learnt into the forwarding database.
    pub learning: bool,
    /// Frames for unknown unicast addresses are flooded out of this port.
    pub flood: bool,
}

/// One link as `ip -s -d link` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkDetail {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// The driver kind ("bridge", "veth", ...), when the kernel reports one.
    pub kind: Option<String>,
    /// Hardware address.
    pub mac: Option<[u8; 6]>,
    /// MTU in bytes.
    pub mtu: u32,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Operational state in the kernel's words (`IFLA_OPERSTATE`): "up", "down",
    /// "lowerlayerdown", "unknown", "notpresent", "testing", "dormant", or the number.
    pub operstate: String,
    /// Whether the link has carrier (`IFLA_CARRIER`); a veth has it when both ends are up.
    pub carrier: Option<bool>,
    /// Index of the bridge this link is a port of (`IFLA_MASTER`).
    pub master: Option<u32>,
    /// The link this one sits on (`IFLA_LINK`): for a veth, the peer's index, counted in
    /// the peer's namespace. The kernel leaves it out when it equals the link's own index.
    pub peer_index: Option<u32>,
    /// This namespace's id for the namespace `peer_index` counts in
    /// (`IFLA_LINK_NETNSID`), when that is another one.
    pub peer_netnsid: Option<i32>,
    /// Counters, unless the kernel left them out.
    pub stats: Option<Stats>,
    /// The link's settings as a bridge port, when it is one.
    pub bridge_port: Option<BridgePort>,
}

/// Every link in the socket's namespace, with its details (one dump).
pub fn details(sock: &mut RtSocket) -> Result<Vec<LinkDetail>> {
    let replies = sock.dump(
        RouteNetlinkMessage::GetLink(LinkMessage::default()),
        "list link details",
    )?;
    Ok(replies
        .iter()
        .filter_map(|reply| match reply {
            RouteNetlinkMessage::NewLink(link) => Some(from_message(link)),
            _ => None,
        })
        .collect())
}

/// The details of the link named `name`; None when there is no such link.
pub fn detail(sock: &mut RtSocket, name: &str) -> Result<Option<LinkDetail>> {
    let mut request = LinkMessage::default();
    request
        .attributes
        .push(LinkAttribute::IfName(name.to_string()));
    let op = format!("look up the details of link {name}");
    Ok(
        match sock.get(RouteNetlinkMessage::GetLink(request), &op)? {
            Some(RouteNetlinkMessage::NewLink(link)) => Some(from_message(&link)),
            _ => None,
        },
    )
}

/// The kernel's description of a link, as a [`LinkDetail`].
pub fn from_message(message: &LinkMessage) -> LinkDetail {
    let mut detail = LinkDetail {
        index: message.header.index,
        name: String::new(),
        kind: None,
        mac: None,
        mtu: 0,
        up: message.header.flags.contains(LinkFlags::Up),
        // The kernel always sends IFLA_OPERSTATE; a message without it says nothing.
        operstate: operstate_word(State::Unknown),
        carrier: None,
        master: None,
        peer_index: None,
        peer_netnsid: None,
        stats: None,
        bridge_port: None,
    };
    for attr in &message.attributes {
        apply(&mut detail, attr);
    }
    detail
}

fn apply(detail: &mut LinkDetail, attr: &LinkAttribute) {
    match attr {
        LinkAttribute::IfName(name) => detail.name = name.clone(),
        LinkAttribute::Mtu(mtu) => detail.mtu = *mtu,
        LinkAttribute::Address(mac) => detail.mac = mac.as_slice().try_into().ok(),
        LinkAttribute::OperState(state) => detail.operstate = operstate_word(*state),
        LinkAttribute::Carrier(carrier) => detail.carrier = Some(*carrier != 0),
        LinkAttribute::Controller(master) => detail.master = Some(*master),
        LinkAttribute::Link(peer) => detail.peer_index = Some(*peer),
        LinkAttribute::LinkNetNsId(id) => detail.peer_netnsid = Some(*id),
        LinkAttribute::Stats64(stats) => detail.stats = Some(Stats::from(stats)),
        LinkAttribute::LinkInfo(infos) => {
            for info in infos {
                match info {
                    LinkInfo::Kind(kind) => detail.kind = Some(kind.to_string()),
                    LinkInfo::PortData(InfoPortData::BridgePort(port)) => {
                        detail.bridge_port = Some(bridge_port(port))
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

/// `IFLA_OPERSTATE` in the words of the kernel's `/sys/class/net/*/operstate`.
fn operstate_word(state: State) -> String {
    match state {
        State::Unknown => "unknown",
        State::NotPresent => "notpresent",
        State::Down => "down",
        State::LowerLayerDown => "lowerlayerdown",
        State::Testing => "testing",
        State::Dormant => "dormant",
        State::Up => "up",
        State::Other(value) => return value.to_string(),
        // The crate's enum may grow before this match does.
        _ => return "unknown".to_string(),
    }
    .to_string()
}

/// A bridge port from its `IFLA_BRPORT_*` attributes. The kernel sends every one of
/// these; an attribute missing from a hand-made message reads as off (and disabled).
fn bridge_port(attrs: &[InfoBridgePort]) -> BridgePort {
    let mut port = BridgePort {
        state: PortState::Disabled,
        hairpin: false,
        isolated: false,
        learning: false,
        flood: false,
    };
    for attr in attrs {
        match attr {
            InfoBridgePort::State(state) => port.state = PortState::from(*state),
            InfoBridgePort::HairpinMode(on) => port.hairpin = *on,
            InfoBridgePort::Isolated(on) => port.isolated = *on,
            InfoBridgePort::Learning(on) => port.learning = *on,
            InfoBridgePort::UnicastFlood(on) => port.flood = *on,
            _ => {}
        }
    }
    port
}

#[cfg(test)]
mod tests {
    use netlink_packet_route::link::{InfoKind, InfoPortKind};

    use super::*;

    /// What the kernel says of the host side of a veth on a bridge, its peer elsewhere.
    fn veth_port_message() -> LinkMessage {
        let mut stats = Stats64::default();
        stats.rx_packets = 5;
        stats.tx_packets = 7;
        stats.rx_bytes = 500;
        stats.tx_bytes = 700;
        stats.rx_dropped = 1;
        stats.tx_dropped = 2;
        stats.rx_errors = 3;
        stats.tx_errors = 4;
        let mut message = LinkMessage::default();
        message.header.index = 3;
        message.header.flags = LinkFlags::Up | LinkFlags::Broadcast;
        message.attributes = vec![
            LinkAttribute::IfName("vh".into()),
            LinkAttribute::Mtu(1500),
            LinkAttribute::Address(vec![2, 0, 0, 0, 0, 9]),
            LinkAttribute::OperState(State::Up),
            LinkAttribute::Carrier(1),
            LinkAttribute::Controller(2),
            LinkAttribute::Link(2),
            LinkAttribute::LinkNetNsId(0),
            LinkAttribute::Stats64(stats),
            LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Veth),
                LinkInfo::PortKind(InfoPortKind::Bridge),
                LinkInfo::PortData(InfoPortData::BridgePort(vec![
                    InfoBridgePort::State(BridgePortState::Forwarding),
                    InfoBridgePort::HairpinMode(true),
                    InfoBridgePort::Isolated(false),
                    InfoBridgePort::Learning(true),
                    InfoBridgePort::UnicastFlood(true),
                ])),
            ]),
        ];
        message
    }

    #[test]
    fn a_veth_bridge_port_reads_whole() {
        let detail = from_message(&veth_port_message());
        assert_eq!(
            detail,
            LinkDetail {
                index: 3,
                name: "vh".into(),
                kind: Some("veth".into()),
                mac: Some([2, 0, 0, 0, 0, 9]),
                mtu: 1500,
                up: true,
                operstate: "up".into(),
                carrier: Some(true),
                master: Some(2),
                peer_index: Some(2),
                peer_netnsid: Some(0),
                stats: Some(Stats {
                    rx_packets: 5,
                    tx_packets: 7,
                    rx_bytes: 500,
                    tx_bytes: 700,
                    rx_dropped: 1,
                    tx_dropped: 2,
                    rx_errors: 3,
                    tx_errors: 4,
                }),
                bridge_port: Some(BridgePort {
                    state: PortState::Forwarding,
                    hairpin: true,
                    isolated: false,
                    learning: true,
                    flood: true,
                }),
            }
        );
        assert_eq!(detail.bridge_port.unwrap().state.as_str(), "forwarding");
    }

    #[test]
    fn a_bare_link_has_no_port_peer_or_counters() {
        let mut message = LinkMessage::default();
        message.header.index = 1;
        message.attributes = vec![
            LinkAttribute::IfName("lo".into()),
            LinkAttribute::OperState(State::LowerLayerDown),
            LinkAttribute::Carrier(0),
            // Loopback's address is six zero bytes; anything of another length is no MAC.
            LinkAttribute::Address(vec![0; 4]),
        ];
        let detail = from_message(&message);
        assert!(!detail.up);
        assert_eq!(detail.operstate, "lowerlayerdown");
        assert_eq!(detail.carrier, Some(false));
        assert_eq!(
            (detail.mac, detail.kind, detail.master, detail.peer_index),
            (None, None, None, None)
        );
        assert_eq!((detail.stats, detail.bridge_port), (None, None));
    }

    #[test]
    fn port_states_read_as_iproute2_words() {
        assert_eq!(
            PortState::from(BridgePortState::Disabled).as_str(),
            "disabled"
        );
        assert_eq!(
            PortState::from(BridgePortState::Blocking).as_str(),
            "blocking"
        );
        let odd = PortState::from(BridgePortState::Other(9));
        assert_eq!((odd, odd.as_str()), (PortState::Other(9), "unknown"));
        assert_eq!(odd.to_string(), "9");
        assert_eq!(operstate_word(State::Other(42)), "42");
    }
}
