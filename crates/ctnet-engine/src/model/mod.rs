//! The engine's vocabulary: networks, endpoints and the checked values they are made of.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::str::FromStr;

use ctnet_kernel::names::check_plain_name;
use ctnet_kernel::IfName;
use ipnet::Ipv4Net;
use serde::Serialize;

use crate::error::{Error, Result};
pub mod ports;

use ports::PublishedPort;

/// The name of the network every container joins when none is given (Docker's name).
pub const DEFAULT_NETWORK: &str = "bridge";
/// The bridge device of the default network.
pub const DEFAULT_BRIDGE: &str = "ctnet0";
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

impl FromStr for NetworkName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        NetworkName::new(s)
    }
}

/// An IPv4 subnet usable for a bridge network: written in canonical form (host bits zero)
/// and no smaller than a /30, so it holds a gateway and at least one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subnet(Ipv4Net);

/// The smallest subnet a network may have (prefix length).
pub const SUBNET_MAX_PREFIX: u8 = 30;

impl Subnet {
    /// Parses `a.b.c.d/n`, refusing malformed text, host bits set and tiny subnets.
    pub fn parse(text: &str) -> Result<Self> {
        let object = format!("subnet {text:?}");
        let net: Ipv4Net = text.parse().map_err(|_| {
            Error::invalid(
                &object,
                "is not an IPv4 CIDR",
                "write it as ADDRESS/PREFIX, e.g. 172.18.0.0/16",
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

    /// Wraps a network, checking its size.
    pub fn new(net: Ipv4Net) -> Result<Self> {
        if net.prefix_len() > SUBNET_MAX_PREFIX {
            return Err(Error::invalid(
                format!("subnet {net}"),
                format!(
                    "is too small (/{} leaves no room for a gateway and a container)",
                    net.prefix_len()
                ),
                format!("use a prefix of /{SUBNET_MAX_PREFIX} or shorter"),
            ));
        }
        Ok(Subnet(net.trunc()))
    }

    /// The underlying network.
    pub fn net(&self) -> Ipv4Net {
        self.0
    }

    /// The first usable address, the conventional gateway (x.y.z.1 for a /24).
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.0.network()) + 1)
    }

    /// True when `ip` is a usable host address of this subnet (not network or broadcast).
    pub fn is_host(&self, ip: Ipv4Addr) -> bool {
        self.0.contains(&ip) && ip != self.0.network() && ip != self.0.broadcast()
    }

    /// True when the two subnets share any address.
    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        self.0.contains(&other.network()) || other.contains(&self.0.network())
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Parses an IPv4 address given by a user for `object`.
pub fn parse_ipv4(object: &str, text: &str) -> Result<Ipv4Addr> {
    text.parse().map_err(|_| {
        Error::invalid(
            format!("{object} {text:?}"),
            "is not an IPv4 address",
            "write it as a.b.c.d, e.g. 172.18.0.10",
        )
    })
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

    /// Parses the stored word.
    pub fn parse(text: &str) -> RowState {
        match text {
            "ready" => RowState::Ready,
            "removing" => RowState::Removing,
            _ => RowState::Pending,
        }
    }
}

/// A bridge network.
#[derive(Debug, Clone, Serialize)]
pub struct Network {
    /// Unique name.
    pub name: NetworkName,
    /// 64-hex-digit id, like Docker's.
    pub id: String,
    /// Driver; only "bridge" for now.
    pub driver: String,
    /// The IPv4 subnet.
    pub subnet: Subnet,
    /// The bridge's own address, the containers' default gateway.
    pub gateway: Ipv4Addr,
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
    /// Row state.
    pub state: RowState,
    /// Creation time, seconds since the epoch.
    pub created: i64,
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
        /// Which front end knows it ("cni", "podman"); the label's prefix.
        runtime: &'static str,
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
            ContainerRef::Runtime { runtime, id, .. } => format!("{runtime}:{id}"),
        }
    }
}

/// A container's attachment to a network: one veth pair.
#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    /// Row id.
    pub id: i64,
    /// The network.
    pub network: NetworkName,
    /// Container label (namespace name, path or `pid:N`).
    pub container: String,
    /// Path of the namespace when attached.
    pub netns_path: String,
    /// Inode of the namespace, which identifies it however it is named.
    pub netns_inode: u64,
    /// Interface name inside the container.
    pub ifname: String,
    /// Host side of the veth pair.
    pub host_ifname: String,
    /// The container's address.
    pub ip: Ipv4Addr,
    /// The container interface's MAC address.
    pub mac: String,
    /// Whether this endpoint installed the container's default route.
    pub default_route: bool,
    /// Whether ctnet created the namespace and removes it with the endpoint.
    pub netns_owned: bool,
    /// Row state.
    pub state: RowState,
    /// Host ports forwarded to this endpoint.
    pub ports: Vec<PublishedPort>,
}

/// Parses a MAC address written `aa:bb:cc:dd:ee:ff`; it must be unicast.
pub fn parse_mac(object: &str, text: &str) -> Result<[u8; 6]> {
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
    if mac[0] & 1 == 1 || mac == [0; 6] {
        return Err(bad());
    }
    Ok(mac)
}

/// Formats a MAC address the usual way.
pub fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
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
    fn network_names() {
        assert!(NetworkName::new("blue").is_ok());
        assert!(NetworkName::new("host").is_err());
        assert!(NetworkName::new("../x").is_err());
        assert!(NetworkName::new("").is_err());
        assert!(NetworkName::new(&"n".repeat(65)).is_err());
    }
}
