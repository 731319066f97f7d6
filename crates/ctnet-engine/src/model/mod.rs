//! The engine's vocabulary: networks, endpoints and the checked values they are made of.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::str::FromStr;

use ctnet_kernel::names::check_plain_name;
use ctnet_kernel::IfName;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Serialize;

use crate::error::{Error, Result};
pub mod dns;
pub mod overlay;
pub mod policy;
pub mod ports;

pub use dns::{DnsName, NamedEndpoint};

use ports::PublishedPort;

/// The name of the network every container joins when none is given (Docker's name).
pub const DEFAULT_NETWORK: &str = "bridge";
/// The bridge device of the default network.
pub const DEFAULT_BRIDGE: &str = "ctnet0";
/// The smallest MTU IPv6 works over (RFC 8200): the kernel gives a device with a
/// smaller one no IPv6 at all.
pub const IPV6_MIN_MTU: u32 = 1280;
/// Longest network name.
pub const NETWORK_NAME_MAX: usize = 64;

/// A network's name: 1 to 64 letters, digits, `-`, `_`, `.`; never a path; never one of
/// the reserved mode words (`host`, `none`, `container:…`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct NetworkName(String);

impl NetworkName {
    /// Parses and checks a network name.
    pub fn new(name: &str) -> Result<Self> {
        check_plain_name("network", name, NETWORK_NAME_MAX)?;
        if matches!(name, "host" | "none" | "default") {
            return Err(Error::invalid(
                format!("network name {name:?}"),
                "is reserved for a network mode",
                "choose another name",
            ));
        }
        Ok(NetworkName(name.to_string()))
    }

    /// The default network's name.
    pub fn default_network() -> Self {
        NetworkName(DEFAULT_NETWORK.to_string())
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NetworkName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for NetworkName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        NetworkName::new(&text).map_err(serde::de::Error::custom)
    }
}

impl FromStr for NetworkName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        NetworkName::new(s)
    }
}

/// An IP family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(ip: IpAddr) -> Family {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

/// A subnet usable for a network, of either family: written in canonical form (host bits
/// zero), large enough for a gateway and a container (IPv4: /30 or shorter), and for
/// IPv6 between /48 and /120 (shorter is a site's whole allocation, longer leaves too
/// few addresses to hand out in turn).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subnet {
    /// An IPv4 subnet.
    V4(Ipv4Net),
    /// An IPv6 subnet.
    V6(Ipv6Net),
}

/// The smallest IPv4 subnet a network may have (prefix length).
pub const SUBNET_MAX_PREFIX: u8 = 30;
/// The prefix lengths an IPv6 subnet may have.
pub const SUBNET6_PREFIXES: std::ops::RangeInclusive<u8> = 48..=120;

impl Subnet {
    /// Parses `ADDRESS/PREFIX` of either family, refusing malformed text, host bits set
    /// and sizes outside the limits.
    pub fn parse(text: &str) -> Result<Self> {
        let object = format!("subnet {text:?}");
        let net: IpNet = text.parse().map_err(|_| {
            Error::invalid(
                &object,
                "is not a CIDR",
                "write it as ADDRESS/PREFIX, e.g. 172.18.0.0/16 or fd00:1::/64",
            )
        })?;
        if net.network() != net.addr() {
            return Err(Error::invalid(
                &object,
                "has host bits set",
                format!("write the network address: {}", net.trunc()),
            ));
        }
        Subnet::new(net).map_err(|e| Error::invalid(&object, e.cause, e.fix))
    }

    /// Parses a subnet read back from the state database: the same form as [`parse`],
    /// but without [`special_range`], so a network recorded before that check existed
    /// can still be listed and removed.
    ///
    /// [`parse`]: Subnet::parse
    pub fn parse_stored(text: &str) -> Result<Self> {
        let net: IpNet = text
            .parse()
            .map_err(|_| Error::invalid(format!("stored subnet {text:?}"), "is not a CIDR", ""))?;
        Subnet::sized(net)
    }

    /// Wraps a network, checking its size and that it is an ordinary unicast range
    /// (not loopback, multicast, link-local or reserved: see [`special_range`]).
    pub fn new(net: IpNet) -> Result<Self> {
        if let Some(range) = special_range(&net) {
            return Err(Error::invalid(
                format!("subnet {net}"),
                format!(
                    "overlaps {} ({}), which no network can use",
                    range.net, range.what
                ),
                "use a private range, e.g. 172.18.0.0/16 or fd00:1::/64",
            ));
        }
        Subnet::sized(net)
    }

    /// Wraps a network, checking its size only.
    fn sized(net: IpNet) -> Result<Self> {
        match net {
            IpNet::V4(n) if n.prefix_len() > SUBNET_MAX_PREFIX => Err(Error::invalid(
                format!("subnet {net}"),
                format!(
                    "is too small (/{} leaves no room for a gateway and a container)",
                    n.prefix_len()
                ),
                format!("use a prefix of /{SUBNET_MAX_PREFIX} or shorter"),
            )),
            IpNet::V4(n) => Ok(Subnet::V4(n.trunc())),
            IpNet::V6(n) if !SUBNET6_PREFIXES.contains(&n.prefix_len()) => Err(Error::invalid(
                format!("subnet {net}"),
                format!(
                    "has a /{} prefix, outside what an IPv6 network may use",
                    n.prefix_len()
                ),
                format!(
                    "use a prefix from /{} to /{} (a /64 is usual)",
                    SUBNET6_PREFIXES.start(),
                    SUBNET6_PREFIXES.end()
                ),
            )),
            IpNet::V6(n) => Ok(Subnet::V6(n.trunc())),
        }
    }

    /// The underlying network.
    pub fn net(&self) -> IpNet {
        match self {
            Subnet::V4(n) => IpNet::V4(*n),
            Subnet::V6(n) => IpNet::V6(*n),
        }
    }

    /// The family.
    pub fn family(&self) -> Family {
        match self {
            Subnet::V4(_) => Family::V4,
            Subnet::V6(_) => Family::V6,
        }
    }

    /// The prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.net().prefix_len()
    }

    /// The first usable address, the conventional gateway (x.y.z.1 for a /24, ::1 for
    /// an IPv6 prefix).
    pub fn first_host(&self) -> IpAddr {
        match self {
            Subnet::V4(n) => IpAddr::V4(Ipv4Addr::from(u32::from(n.network()) + 1)),
            Subnet::V6(n) => IpAddr::V6(Ipv6Addr::from(u128::from(n.network()) + 1)),
        }
    }

    /// True when `ip` is a usable host address of this subnet: not the network address
    /// (IPv6's subnet-router anycast address) nor IPv4's broadcast address.
    pub fn is_host(&self, ip: IpAddr) -> bool {
        match (self, ip) {
            (Subnet::V4(n), IpAddr::V4(ip)) => {
                n.contains(&ip) && ip != n.network() && ip != n.broadcast()
            }
            (Subnet::V6(n), IpAddr::V6(ip)) => n.contains(&ip) && ip != n.network(),
            _ => false,
        }
    }

    /// True when the two share any address (never across families).
    pub fn overlaps(&self, other: &IpNet) -> bool {
        let me = self.net();
        me.contains(&other.network()) || other.contains(&me.network())
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.net().fmt(f)
    }
}

impl Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// An address range with a meaning of its own, which a bridge network cannot use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialRange {
    /// The range.
    pub net: IpNet,
    /// What it is, and why that rules it out.
    pub what: &'static str,
}

/// The ranges the kernel or the protocols give a meaning of their own (RFC 6890): an
/// address there never works as a container's or a gateway's. The kernel would drop
/// traffic from loopback, "this network" and reserved sources as martians, treat
/// multicast as group traffic and link-local as never routed.
const SPECIAL_RANGES: &[(&str, &str)] = &[
    (
        "0.0.0.0/8",
        "\"this network\", never a source or destination on a wire",
    ),
    ("127.0.0.0/8", "loopback, never routed off the host"),
    ("169.254.0.0/16", "link-local, never routed"),
    ("224.0.0.0/4", "multicast"),
    (
        "240.0.0.0/4",
        "reserved, with the broadcast address 255.255.255.255",
    ),
    ("::/128", "the unspecified address"),
    ("::1/128", "loopback, never routed off the host"),
    ("::ffff:0:0/96", "IPv4-mapped addresses, never on a wire"),
    ("fe80::/10", "link-local, never routed"),
    ("ff00::/8", "multicast"),
];

/// The special range `net` overlaps, if any.
pub fn special_range(net: &IpNet) -> Option<SpecialRange> {
    SPECIAL_RANGES.iter().find_map(|(range, what)| {
        let range: IpNet = range.parse().expect("valid constant");
        let overlaps = range.contains(&net.network()) || net.contains(&range.network());
        overlaps.then_some(SpecialRange { net: range, what })
    })
}

/// One family of a network: its subnet and the gateway address on the bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SubnetConfig {
    /// The subnet.
    pub subnet: Subnet,
    /// The bridge's own address in it, the containers' default gateway.
    pub gateway: IpAddr,
}

/// Parses an address given by a user for `object`, of the family `family` when given.
pub fn parse_ip(object: &str, text: &str, family: Option<Family>) -> Result<IpAddr> {
    let example = match family {
        Some(Family::V4) => "write it as a.b.c.d, e.g. 172.18.0.10",
        Some(Family::V6) => "write it as an IPv6 address, e.g. fd00:1::10",
        None => "write it as an IPv4 or IPv6 address, e.g. 172.18.0.10 or fd00:1::10",
    };
    let bad = |what: &str| Error::invalid(format!("{object} {text:?}"), what.to_string(), example);
    let ip: IpAddr = text.parse().map_err(|_| {
        bad(match family {
            Some(Family::V4) => "is not an IPv4 address",
            Some(Family::V6) => "is not an IPv6 address",
            None => "is not an IP address",
        })
    })?;
    match family {
        Some(f) if Family::of(ip) != f => Err(bad(match f {
            Family::V4 => "is not an IPv4 address",
            Family::V6 => "is not an IPv6 address",
        })),
        _ => Ok(ip),
    }
}

/// A network's driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    /// A Linux bridge; containers are veth ports of it.
    Bridge,
    /// Containers get macvlan devices of a host interface (the parent), straight on
    /// its LAN.
    Macvlan,
    /// A bridge on each host holding that host's block of a cluster-wide subnet, the
    /// hosts joined by VXLAN (see `model::overlay`).
    Overlay,
}

impl Driver {
    /// The word stored and shown.
    pub fn as_str(&self) -> &'static str {
        match self {
            Driver::Bridge => "bridge",
            Driver::Macvlan => "macvlan",
            Driver::Overlay => "overlay",
        }
    }

    /// True when containers are veth ports of a bridge on this host (bridge and
    /// overlay networks).
    pub fn is_bridged(&self) -> bool {
        matches!(self, Driver::Bridge | Driver::Overlay)
    }

    /// Parses a driver name.
    pub fn parse(text: &str) -> Result<Driver> {
        match text {
            "bridge" => Ok(Driver::Bridge),
            "macvlan" => Ok(Driver::Macvlan),
            "overlay" => Ok(Driver::Overlay),
            other => Err(Error::invalid(
                format!("driver {other:?}"),
                "is not a driver ctnet has",
                "use the bridge, macvlan or overlay driver",
            )),
        }
    }
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which other networks a network's containers may talk to (and be reached from).
/// Whether two networks may talk is [`Isolation::allows`]; the firewall enforces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// netavark's default (no `isolate` option): reaches, and is reached from, every
    /// other network that is not `Strict`.
    Open,
    /// netavark's `isolate=true`: no traffic with other `Isolated` networks; `Open`
    /// ones reach it and it reaches them.
    Isolated,
    /// netavark's `isolate=strict` and Docker's default for user networks: no traffic
    /// with any other network.
    Strict,
}

impl Isolation {
    /// The word stored and shown.
    pub fn as_str(&self) -> &'static str {
        match self {
            Isolation::Open => "open",
            Isolation::Isolated => "isolated",
            Isolation::Strict => "strict",
        }
    }

    /// Parses a stored word.
    pub fn parse(text: &str) -> Result<Isolation> {
        match text {
            "open" => Ok(Isolation::Open),
            "isolated" => Ok(Isolation::Isolated),
            "strict" => Ok(Isolation::Strict),
            other => Err(Error::invalid(
                format!("isolation {other:?}"),
                "is not open, isolated or strict",
                "",
            )),
        }
    }

    /// Parses the `isolate` words netavark and the CLI use: `false` (Open), `true`
    /// (Isolated), `strict`.
    pub fn from_isolate(object: &str, text: &str) -> Result<Isolation> {
        match text {
            "false" => Ok(Isolation::Open),
            "true" => Ok(Isolation::Isolated),
            "strict" => Ok(Isolation::Strict),
            other => Err(Error::invalid(
                format!("{object} {other:?}"),
                "is not true, false or strict",
                "use isolate true (isolated from other isolated networks), strict (from every \
                 network) or false (open)",
            )),
        }
    }

    /// True when containers of a network with isolation `self` and one with `other`
    /// may talk (the relation is symmetric).
    pub fn allows(self, other: Isolation) -> bool {
        matches!(
            (self, other),
            (Isolation::Open, Isolation::Open | Isolation::Isolated)
                | (Isolation::Isolated, Isolation::Open)
        )
    }
}

impl fmt::Display for Isolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who hands out a network's addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ipam {
    /// ctnet's allocator (or the front end's static addresses), from the subnets.
    Ctnet,
    /// Nobody: the network has no subnets and its containers' interfaces no address
    /// (netavark's `ipam_options.driver: none`).
    None,
}

impl Ipam {
    /// The word stored and shown.
    pub fn as_str(&self) -> &'static str {
        match self {
            Ipam::Ctnet => "ctnet",
            Ipam::None => "none",
        }
    }

    /// Parses the stored (and CLI) word.
    pub fn parse(text: &str) -> Result<Ipam> {
        match text {
            "ctnet" => Ok(Ipam::Ctnet),
            "none" => Ok(Ipam::None),
            other => Err(Error::invalid(
                format!("ipam {other:?}"),
                "is not ctnet or none",
                "use ipam ctnet (addresses from the subnets) or none (no addresses)",
            )),
        }
    }
}

impl fmt::Display for Ipam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How macvlan devices of one parent reach each other (the kernel's MACVLAN_MODE_*,
/// netavark 1.4's `mode` words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MacvlanMode {
    /// MACVLAN_MODE_BRIDGE: devices of one parent talk directly (the default).
    Bridge,
    /// MACVLAN_MODE_PRIVATE: no traffic between devices of one parent.
    Private,
    /// MACVLAN_MODE_VEPA: traffic between devices goes out to the switch and back.
    Vepa,
    /// MACVLAN_MODE_PASSTHRU: one device takes the parent over.
    Passthru,
    /// MACVLAN_MODE_SOURCE: frames accepted by source MAC.
    Source,
}

impl MacvlanMode {
    /// The word stored and shown (netavark's).
    pub fn as_str(&self) -> &'static str {
        match self {
            MacvlanMode::Bridge => "bridge",
            MacvlanMode::Private => "private",
            MacvlanMode::Vepa => "vepa",
            MacvlanMode::Passthru => "passthru",
            MacvlanMode::Source => "source",
        }
    }

    /// Parses a mode word.
    pub fn parse(text: &str) -> Result<MacvlanMode> {
        match text {
            "bridge" => Ok(MacvlanMode::Bridge),
            "private" => Ok(MacvlanMode::Private),
            "vepa" => Ok(MacvlanMode::Vepa),
            "passthru" => Ok(MacvlanMode::Passthru),
            "source" => Ok(MacvlanMode::Source),
            other => Err(Error::invalid(
                format!("macvlan mode {other:?}"),
                "is not a macvlan mode",
                "use bridge, private, vepa, passthru or source",
            )),
        }
    }
}

impl fmt::Display for MacvlanMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A macvlan network's parent interface and mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MacvlanConfig {
    /// The host interface whose LAN the containers join.
    #[serde(serialize_with = "serialize_display")]
    pub parent: IfName,
    /// The mode.
    pub mode: MacvlanMode,
}

/// A unicast MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddr([u8; 6]);

impl MacAddr {
    /// Parses `aa:bb:cc:dd:ee:ff` given for `object`; it must be unicast and not zero.
    pub fn parse(object: &str, text: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(
                object,
                format!("{text:?} is not a unicast MAC address"),
                "write six hex bytes like 02:42:0a:00:00:02 (first byte even)",
            )
        };
        let bytes: Vec<u8> = text
            .split(':')
            .map(|b| {
                (b.len() == 2)
                    .then(|| u8::from_str_radix(b, 16).ok())
                    .flatten()
            })
            .collect::<Option<_>>()
            .ok_or_else(bad)?;
        let mac: [u8; 6] = bytes.try_into().map_err(|_| bad())?;
        MacAddr::new(mac).ok_or_else(bad)
    }

    /// A MAC from bytes; None for a multicast or zero address.
    pub fn new(bytes: [u8; 6]) -> Option<Self> {
        (bytes[0] & 1 == 0 && bytes != [0; 6]).then_some(MacAddr(bytes))
    }

    /// A locally administered MAC derived from an address, as Docker does (02:42 and the
    /// IPv4 address; the last four bytes of an IPv6 one): stable for an address, so
    /// neighbours' caches stay right when a container restarts.
    pub fn for_address(ip: IpAddr) -> Self {
        let o = match ip {
            IpAddr::V4(v4) => v4.octets(),
            IpAddr::V6(v6) => {
                let b = v6.octets();
                [b[12], b[13], b[14], b[15]]
            }
        };
        MacAddr([0x02, 0x42, o[0], o[1], o[2], o[3]])
    }

    /// The six bytes.
    pub fn bytes(&self) -> [u8; 6] {
        self.0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The lifecycle state of a row: `pending` while its kernel objects are being made,
/// `ready` once the kernel holds them, `removing` while they are being taken apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RowState {
    /// Kernel objects are being created.
    Pending,
    /// The kernel holds everything the row describes.
    Ready,
    /// Kernel objects are being removed.
    Removing,
}

impl RowState {
    /// The word stored in the database.
    pub fn as_str(&self) -> &'static str {
        match self {
            RowState::Pending => "pending",
            RowState::Ready => "ready",
            RowState::Removing => "removing",
        }
    }

    /// Parses the stored word; anything else is an error, never a guess.
    pub fn parse(text: &str) -> Result<RowState> {
        match text {
            "pending" => Ok(RowState::Pending),
            "ready" => Ok(RowState::Ready),
            "removing" => Ok(RowState::Removing),
            other => Err(Error::invalid(
                format!("row state {other:?}"),
                "is not a state ctnet writes",
                "the state database was written by another program or version; `ctnet gc` cannot repair it",
            )),
        }
    }
}

/// A network.
#[derive(Debug, Clone, Serialize)]
pub struct Network {
    /// Unique name.
    pub name: NetworkName,
    /// 64-hex-digit id, like Docker's.
    pub id: String,
    /// Driver.
    pub driver: Driver,
    /// One subnet per family, IPv4 first; at least one, unless `ipam` is `None`
    /// (then none).
    pub subnets: Vec<SubnetConfig>,
    /// The bridge device.
    #[serde(serialize_with = "serialize_display")]
    pub bridge: IfName,
    /// MTU of the bridge and its veths (None: kernel default).
    pub mtu: Option<u32>,
    /// Internal networks get no masquerade and nothing forwarded in or out.
    pub internal: bool,
    /// Containers on the bridge may talk to each other (Docker's `enable_icc`). When
    /// false, every container port of the bridge is an isolated bridge port.
    pub icc: bool,
    /// Which other networks its containers may talk to.
    pub isolation: Isolation,
    /// The metric of the default routes it gives containers (None: the driver's default).
    pub metric: Option<u32>,
    /// Who hands out its addresses.
    pub ipam: Ipam,
    /// Parent and mode; Some exactly when `driver` is `Macvlan`.
    pub macvlan: Option<MacvlanConfig>,
    /// The network has the container-name DNS server (the host agent) on its gateways,
    /// and its containers are told to use it (Docker's user-defined networks; not the
    /// default network `bridge`, as Docker's docker0).
    pub dns: bool,
    /// This host's part of an overlay network; Some exactly when `driver` is `Overlay`
    /// (then `subnets` holds this host's block).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overlay: Option<overlay::OverlayConfig>,
    /// Row state.
    pub state: RowState,
    /// Creation time, seconds since the epoch.
    pub created: i64,
    /// The front end that made the network on first use (CNI, Podman); None when it
    /// was made by ctnet's own commands. A front end removes only networks it made.
    #[serde(skip)]
    pub creator: Option<Runtime>,
}

impl Network {
    /// The subnet of one family, if the network has it.
    pub fn subnet(&self, family: Family) -> Option<&SubnetConfig> {
        self.subnets.iter().find(|s| s.subnet.family() == family)
    }

    /// True when the network has IPv6.
    pub fn ipv6(&self) -> bool {
        self.subnet(Family::V6).is_some()
    }

    /// True when host ports may be published to its containers: a bridge network that
    /// is not internal and has a subnet.
    pub fn can_publish(&self) -> bool {
        self.driver.is_bridged() && !self.internal && !self.subnets.is_empty()
    }

    /// The subnets as text, `10.1.0.0/24, fd00:1::/64`.
    pub fn subnets_text(&self) -> String {
        let all: Vec<String> = self.subnets.iter().map(|s| s.subnet.to_string()).collect();
        all.join(", ")
    }
}

/// At most `max` characters of `text`, with `…` when cut (for naming huge input).
fn truncated(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// How a command names the container (network namespace) it works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerRef {
    /// A named namespace in the netns dir.
    Named(ctnet_kernel::NetnsName),
    /// Any namespace file (`/proc/PID/ns/net`, a bind mount).
    Path(PathBuf),
    /// The namespace of a running process.
    Pid(u32),
    /// A container known by a runtime's id (CNI's CNI_CONTAINERID, Podman's container
    /// id); its namespace path may be gone (CNI allows DEL without one).
    Runtime {
        /// Which front end knows it; the label's prefix.
        runtime: Runtime,
        /// The runtime's container id.
        id: String,
        /// Its network namespace, when known.
        netns: Option<PathBuf>,
    },
}

impl ContainerRef {
    /// The label stored with an endpoint and shown to users.
    pub fn label(&self) -> String {
        match self {
            ContainerRef::Named(name) => name.to_string(),
            ContainerRef::Path(path) => path.display().to_string(),
            ContainerRef::Pid(pid) => format!("pid:{pid}"),
            ContainerRef::Runtime { runtime, id, .. } => runtime.label(id),
        }
    }
}

/// A container engine that names containers by its own ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// A CNI runtime (containerd, CRI-O, …): CNI_CONTAINERID.
    Cni,
    /// Podman, through the netavark protocol.
    Podman,
}

impl Runtime {
    fn prefix(self) -> &'static str {
        match self {
            Runtime::Cni => "cni:",
            Runtime::Podman => "podman:",
        }
    }

    /// The label stored for one of its containers.
    pub fn label(self, id: &str) -> String {
        format!("{}{id}", self.prefix())
    }

    /// The word stored for it (a network's creator).
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Cni => "cni",
            Runtime::Podman => "podman",
        }
    }

    /// The runtime a stored word names.
    pub fn parse(word: &str) -> Result<Runtime> {
        match word {
            "cni" => Ok(Runtime::Cni),
            "podman" => Ok(Runtime::Podman),
            other => Err(Error::invalid(
                format!("runtime {other:?}"),
                "is not cni or podman",
                "",
            )),
        }
    }

    /// The longest container id accepted. Runtimes use 64 hex digits (containerd,
    /// CRI-O, Podman); anything far longer is a mistake, and it is shown in every
    /// listing.
    pub const MAX_ID_BYTES: usize = 256;

    /// Checks a container id as the CNI spec defines one (CNI_CONTAINERID): not empty,
    /// at most [`Runtime::MAX_ID_BYTES`], an ASCII letter or digit, then letters,
    /// digits, `_`, `.` or `-`. So no `/` (the id is never a path) and no control
    /// characters (it is printed).
    pub fn check_id(self, id: &str) -> Result<()> {
        let object = format!("container id {:?}", truncated(id, 80));
        let fix = "give the runtime's container id: letters, digits, `_`, `.` and `-`,                    starting with a letter or digit, at most 256 bytes (runtimes use 64 hex digits)";
        let cause = if id.is_empty() {
            Some("is empty".to_string())
        } else if id.len() > Self::MAX_ID_BYTES {
            Some(format!(
                "is {} bytes long, more than {}",
                id.len(),
                Self::MAX_ID_BYTES
            ))
        } else if !id.as_bytes()[0].is_ascii_alphanumeric() {
            Some("does not start with a letter or digit".to_string())
        } else {
            id.chars()
                .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
                .map(|c| format!("contains {c:?}"))
        };
        match cause {
            Some(cause) => Err(Error::invalid(object, cause, fix)),
            None => Ok(()),
        }
    }

    /// The container id in a label this runtime made, or None for another's label.
    pub fn id_in(self, label: &str) -> Option<&str> {
        label.strip_prefix(self.prefix())
    }
}

/// A container's attachment to a network: a veth pair (bridge), or one interface inside
/// the container over a parent of the host (macvlan).
#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    /// Row id.
    pub id: i64,
    /// The network.
    pub network: NetworkName,
    /// Container label (namespace name, path, `pid:N` or a runtime's `cni:ID`).
    pub container: String,
    /// Path of the namespace when attached.
    pub netns_path: PathBuf,
    /// Inode of the namespace, which identifies it however it is named.
    pub netns_inode: u64,
    /// Interface name inside the container.
    #[serde(serialize_with = "serialize_display")]
    pub ifname: IfName,
    /// Host side of the veth pair; None for a macvlan endpoint, which has its interface
    /// in the container only (the kernel deletes it with the namespace).
    #[serde(serialize_with = "serialize_optional_display")]
    pub host_ifname: Option<IfName>,
    /// The container's addresses, one per family of the network, IPv4 first.
    pub ips: Vec<IpAddr>,
    /// The container interface's MAC address.
    pub mac: MacAddr,
    /// The families whose default route this endpoint installed, as its container's
    /// rule decided (`driver::routes`: ctnet's first non-internal network of each family,
    /// or netavark's every non-internal network); the routes' metric is the rule's for
    /// the network.
    pub default_routes: Vec<Family>,
    /// Whether ctnet created the namespace and removes it with the endpoint.
    pub netns_owned: bool,
    /// Row state.
    pub state: RowState,
    /// Host ports forwarded to this endpoint.
    pub ports: Vec<PublishedPort>,
    /// The container's own name on this network's DNS (`ctnet run --name`, the
    /// namespace name of `ctnet attach`, Podman's container name), if it has one.
    pub name: Option<DnsName>,
    /// Further names it answers to on this network (`--alias`, Podman's
    /// `--network-alias`).
    pub aliases: Vec<DnsName>,
    /// What identifies the namespace beyond its inode (which the kernel reuses): None
    /// for a row that is not ready yet or was written before version 7.
    #[serde(skip)]
    pub identity: Option<NetnsIdentity>,
    /// Its labels on this network (`--label KEY=VALUE`), which policies select by.
    pub labels: policy::Labels,
}

/// What names a network namespace for as long as the system runs: its cookie (never
/// reused until reboot) and the boot it was read under (see `ctnet_kernel::netns`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetnsIdentity {
    /// `SO_NETNS_COOKIE` of a socket inside the namespace.
    pub cookie: u64,
    /// `/proc/sys/kernel/random/boot_id` when the cookie was read.
    pub boot_id: String,
}

impl Endpoint {
    /// The container's address of one family, if it has one.
    pub fn ip(&self, family: Family) -> Option<IpAddr> {
        self.ips
            .iter()
            .copied()
            .find(|ip| Family::of(*ip) == family)
    }

    /// Every name the container answers to on this network: its name, then its aliases.
    pub fn dns_names(&self) -> impl Iterator<Item = &DnsName> {
        self.name.iter().chain(self.aliases.iter())
    }

    /// True when this endpoint installed the container's default route of `family`.
    pub fn routes_default(&self, family: Family) -> bool {
        self.default_routes.contains(&family)
    }

    /// The host side as shown: its veth's name, or `-` where there is none (macvlan).
    pub fn host_side_text(&self) -> String {
        self.host_ifname
            .as_ref()
            .map_or_else(|| "-".to_string(), IfName::to_string)
    }

    /// What policy selectors match it by: its name on the network and its label.
    pub fn policy_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.name.iter().map(DnsName::as_str).collect();
        names.push(&self.container);
        if let Some(id) = Runtime::Podman.id_in(&self.container) {
            names.push(id);
        }
        names
    }

    /// The addresses as text, `10.1.0.2, fd00:1::2`.
    pub fn ips_text(&self) -> String {
        let all: Vec<String> = self.ips.iter().map(|ip| ip.to_string()).collect();
        all.join(", ")
    }
}

fn serialize_optional_display<T: fmt::Display, S: serde::Serializer>(
    value: &Option<T>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    match value {
        Some(v) => s.collect_str(v),
        None => s.serialize_none(),
    }
}

fn serialize_display<T: fmt::Display, S: serde::Serializer>(
    value: &T,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets() {
        assert!(Subnet::parse("172.18.0.0/16").is_ok());
        assert!(Subnet::parse("172.18.0.0").is_err());
        assert!(Subnet::parse("172.18.0.0/33").is_err());
        assert!(Subnet::parse("300.1.0.0/16").is_err());
        let e = Subnet::parse("172.18.0.5/16").unwrap_err();
        assert!(e.fix.contains("172.18.0.0/16"), "{e}");
        assert!(Subnet::parse("10.0.0.0/31").is_err());
        let s = Subnet::parse("10.0.0.0/30").unwrap();
        assert!(s.is_host("10.0.0.1".parse().unwrap()));
        assert!(!s.is_host("10.0.0.3".parse().unwrap()));
    }

    #[test]
    fn ipv6_subnets() {
        let s = Subnet::parse("fd00:1::/64").unwrap();
        assert_eq!(s.family(), Family::V6);
        assert_eq!(s.first_host().to_string(), "fd00:1::1");
        assert!(!s.is_host("fd00:1::".parse().unwrap()));
        assert!(s.is_host("fd00:1::ffff:ffff:ffff:ffff".parse().unwrap()));
        assert!(!s.is_host("10.0.0.1".parse().unwrap()));
        let e = Subnet::parse("fd00:1::5/64").unwrap_err();
        assert!(e.fix.contains("fd00:1::/64"), "{e}");
        assert!(Subnet::parse("fd00:1::/124").is_err());
        assert!(Subnet::parse("fd00::/40").is_err());
        assert!(Subnet::parse("fd00::/48").is_ok());
        assert!(Subnet::parse("fd00::/120").is_ok());
        assert!(!s.overlaps(&"10.0.0.0/8".parse().unwrap()));
        assert!(s.overlaps(&"fd00::/16".parse().unwrap()));
    }

    /// Ranges with a meaning of their own are refused, with what they are; ordinary
    /// private and global ranges (documentation ones too) are not.
    #[test]
    fn special_ranges_are_refused_with_the_reason() {
        for (text, why) in [
            ("127.0.0.0/8", "loopback"),
            ("127.5.0.0/16", "loopback"),
            ("224.0.0.0/4", "multicast"),
            ("239.1.0.0/24", "multicast"),
            ("0.0.0.0/8", "this network"),
            ("240.0.0.0/4", "reserved"),
            ("255.255.255.252/30", "255.255.255.255"),
            ("169.254.0.0/16", "link-local"),
            ("224.0.0.0/3", "multicast"),
            ("::/64", "unspecified"),
            ("::ffff:0:0/96", "IPv4-mapped"),
            ("fe80::/64", "link-local"),
            ("ff02::/64", "multicast"),
            ("ff00::/48", "multicast"),
        ] {
            let e = Subnet::parse(text).unwrap_err();
            assert!(e.cause.contains(why), "{text}: {e}");
            assert!(e.object.contains(text), "{text}: {e}");
            assert!(e.fix.contains("172.18.0.0/16"), "{text}: {e}");
        }
        for text in [
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "100.64.0.0/10",
            "198.51.100.0/24",
            "223.255.255.0/24",
            "1.0.0.0/8",
            "fd00::/48",
            "2001:db8::/64",
            "::2:0:0/96",
            "fec0::/64",
        ] {
            assert!(Subnet::parse(text).is_ok(), "{text}");
        }
        // What is already stored stays readable.
        assert!(Subnet::parse_stored("127.0.0.0/8").is_ok());
        assert!(Subnet::parse_stored("10.0.0.0/31").is_err());
    }

    #[test]
    fn stored_words_are_parsed_or_refused() {
        assert_eq!(RowState::parse("ready").unwrap(), RowState::Ready);
        assert!(RowState::parse("readyish").is_err());
        assert_eq!(Driver::parse("bridge").unwrap(), Driver::Bridge);
        assert_eq!(Driver::parse("macvlan").unwrap(), Driver::Macvlan);
        assert_eq!(Driver::parse("overlay").unwrap(), Driver::Overlay);
        assert!(Driver::parse("ipvlan").is_err());
        for word in ["open", "isolated", "strict"] {
            assert_eq!(Isolation::parse(word).unwrap().as_str(), word);
        }
        assert!(Isolation::parse("true").is_err());
        for word in ["ctnet", "none"] {
            assert_eq!(Ipam::parse(word).unwrap().as_str(), word);
        }
        for word in ["bridge", "private", "vepa", "passthru", "source"] {
            assert_eq!(MacvlanMode::parse(word).unwrap().as_str(), word);
        }
        assert!(MacvlanMode::parse("802.1q").is_err());
        assert_eq!(Runtime::Cni.id_in("cni:abc"), Some("abc"));
        assert_eq!(Runtime::Cni.id_in("podman:abc"), None);
    }

    /// netavark's semantics: open networks talk to open and isolated ones; isolated
    /// ones not to each other; strict ones to nobody. Symmetric.
    #[test]
    fn isolation_decides_which_networks_talk() {
        use Isolation::*;
        let all = [Open, Isolated, Strict];
        for a in all {
            for b in all {
                assert_eq!(a.allows(b), b.allows(a), "{a} {b}");
            }
        }
        assert!(Open.allows(Open));
        assert!(Open.allows(Isolated));
        assert!(!Isolated.allows(Isolated));
        assert!(!Strict.allows(Open) && !Strict.allows(Strict) && !Strict.allows(Isolated));
        assert_eq!(Isolation::from_isolate("o", "false").unwrap(), Open);
        assert_eq!(Isolation::from_isolate("o", "true").unwrap(), Isolated);
        assert_eq!(Isolation::from_isolate("o", "strict").unwrap(), Strict);
        let e = Isolation::from_isolate("option isolate", "yes").unwrap_err();
        assert!(e.object.contains("\"yes\""), "{e}");
    }

    #[test]
    fn container_ids_are_checked_as_the_cni_spec_defines_them() {
        let ok = "0123456789abcdef".repeat(4);
        assert!(Runtime::Cni.check_id(&ok).is_ok());
        assert!(Runtime::Cni.check_id("my_pod.1-a").is_ok());
        assert!(Runtime::Cni.check_id(&"a".repeat(256)).is_ok());
        for (bad, cause) in [
            ("", "empty"),
            ("../../etc", "start"),
            ("a/b", "'/'"),
            ("a\nb", "'\\n'"),
            ("-a", "start"),
        ] {
            let e = Runtime::Cni.check_id(bad).unwrap_err();
            assert!(e.cause.contains(cause), "{bad:?}: {e}");
            assert!(!e.fix.is_empty());
        }
        let e = Runtime::Cni.check_id(&"a".repeat(10_000)).unwrap_err();
        assert!(e.cause.contains("10000 bytes"), "{e}");
        assert!(
            e.object.len() < 100,
            "the object shows a prefix: {}",
            e.object
        );
    }

    #[test]
    fn macs() {
        let m = MacAddr::parse("mac", "02:42:0a:00:00:02").unwrap();
        assert_eq!(m.to_string(), "02:42:0a:00:00:02");
        assert!(MacAddr::parse("mac", "03:42:0a:00:00:02").is_err());
        assert!(MacAddr::parse("mac", "00:00:00:00:00:00").is_err());
        assert!(MacAddr::parse("mac", "02:42:0a:00:00").is_err());
        let v6 = MacAddr::for_address("fd00::a:b0c:d".parse().unwrap());
        assert_eq!(v6.to_string(), "02:42:0b:0c:00:0d");
    }

    #[test]
    fn network_names() {
        assert!(NetworkName::new("blue").is_ok());
        assert!(NetworkName::new("host").is_err());
        assert!(NetworkName::new("../x").is_err());
        assert!(NetworkName::new("").is_err());
        assert!(NetworkName::new(&"n".repeat(65)).is_err());
    }
}
