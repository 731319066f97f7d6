//! Published ports: the `-p` syntax, and choosing host ports without clashes.
//!
//! `-p [HOST_IP:][HOST_PORT[-END]]:CONTAINER_PORT[-END][/tcp|/udp]`, or just
//! `-p CONTAINER_PORT[-END][/proto]`, as Docker reads it. A spec is parsed once at the edge
//! into a [`PortSpec`]; inside the state transaction it is resolved into one
//! [`PublishedPort`] per port, checked against every port already published.

use std::fmt;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::str::FromStr;

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};

/// A transport protocol a port is published for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }

    /// `tcp` or `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }

    /// Parses `tcp` or `udp`.
    pub fn parse(text: &str) -> Option<Protocol> {
        match text {
            "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            _ => None,
        }
    }

    /// Parses a protocol word read back from the state database: anything else is an
    /// error, never a guess.
    pub fn parse_stored(text: &str) -> Result<Protocol> {
        Protocol::parse(text).ok_or_else(|| {
            Error::invalid(
                format!("protocol {text:?}"),
                "is not a protocol ctnet writes",
                "the state database was written by another program or version",
            )
        })
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A non-empty range of ports, none of them 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    first: u16,
    last: u16,
}

impl PortRange {
    /// The ports `first` to `last`; None when either is 0 or the range ends before it
    /// starts.
    pub fn new(first: u16, last: u16) -> Option<PortRange> {
        (first != 0 && first <= last).then_some(PortRange { first, last })
    }

    /// The first port.
    pub fn first(&self) -> u16 {
        self.first
    }

    /// How many ports.
    pub fn count(&self) -> u32 {
        u32::from(self.last - self.first) + 1
    }

    /// The ports, in order.
    pub fn ports(&self) -> RangeInclusive<u16> {
        self.first..=self.last
    }

    fn parse(text: &str) -> std::result::Result<PortRange, String> {
        let port = |t: &str| match t.parse::<u16>() {
            Ok(0) | Err(_) => Err(format!("{t:?} is not a port (1-65535)")),
            Ok(p) => Ok(p),
        };
        let (first, last) = match text.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => (port(text)?, port(text)?),
        };
        if last < first {
            return Err(format!("range {text} ends before it starts"));
        }
        Ok(PortRange { first, last })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// One `-p` argument, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    /// Only traffic to this host address is forwarded; every local address when unset.
    pub host_ip: Option<IpAddr>,
    /// Host ports; a free one is chosen when unset.
    pub host: Option<PortRange>,
    /// Container ports.
    pub container: PortRange,
    /// The protocol.
    pub protocol: Protocol,
}

impl FromStr for PortSpec {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        let (ports, protocol) = match text.rsplit_once('/') {
            Some((p, proto)) => (
                p,
                Protocol::parse(proto)
                    .ok_or_else(|| format!("protocol {proto:?} is not tcp or udp"))?,
            ),
            None => (text, Protocol::Tcp),
        };
        let (host_ip, ports) = split_host_ip(ports)?;
        let parts: Vec<&str> = ports.split(':').collect();
        let (host, container) = match parts.as_slice() {
            [c] if host_ip.is_none() => ("", *c),
            [h, c] => (*h, *c),
            _ => return Err("expected [HOST_IP:]HOST_PORT:CONTAINER_PORT".into()),
        };
        let host = (!host.is_empty())
            .then(|| PortRange::parse(host))
            .transpose()?;
        let container = PortRange::parse(container)?;
        PortSpec::new(host_ip, host, container, protocol)
    }
}

/// Splits a leading `HOST_IP:` off, IPv6 written in brackets (`[2001:db8::1]:8080:80`).
fn split_host_ip(text: &str) -> std::result::Result<(Option<IpAddr>, &str), String> {
    if let Some(rest) = text.strip_prefix('[') {
        let (ip, rest) = rest.split_once("]:").ok_or_else(|| {
            "an IPv6 host address is written [ADDRESS]:HOST_PORT:CONTAINER_PORT".to_string()
        })?;
        let ip: std::net::Ipv6Addr = ip
            .parse()
            .map_err(|_| format!("{ip:?} is not an IPv6 address"))?;
        return Ok((Some(IpAddr::V6(ip)), rest));
    }
    match text.split(':').collect::<Vec<_>>().as_slice() {
        [ip, _, _] => {
            let ip: std::net::Ipv4Addr = ip.parse().map_err(|_| {
                format!("{ip:?} is not an IPv4 address (write an IPv6 one in brackets)")
            })?;
            let rest = &text[text.find(':').expect("three parts") + 1..];
            Ok((Some(IpAddr::V4(ip)), rest))
        }
        _ => Ok((None, text)),
    }
}

impl PortSpec {
    /// A spec from its parts, as front ends with structured input (CNI's portMappings,
    /// netavark's port_mappings) build it. Refuses ranges of unequal length,
    /// IPv6 loopback (DNAT to a container cannot start on ::1, since IPv6 has no
    /// `route_localnet` to let such packets leave the host's loopback), and multicast and
    /// broadcast host addresses, which are never an address of the host.
    pub fn new(
        host_ip: Option<IpAddr>,
        host: Option<PortRange>,
        container: PortRange,
        protocol: Protocol,
    ) -> std::result::Result<PortSpec, String> {
        if let Some(h) = host {
            if h.count() != container.count() && container.count() != 1 {
                return Err(format!(
                    "host ports {h} and container ports {container} are ranges of unequal length"
                ));
            }
        }
        if host_ip.is_some_and(|ip| ip.is_loopback() && ip.is_ipv6()) {
            return Err(
                "IPv6 loopback [::1] cannot be forwarded to a container (IPv6 has no route_localnet); publish on 127.0.0.1 for host-only access, or on a host IPv6 address"
                    .into(),
            );
        }
        if let Some(ip) = host_ip.filter(|ip| ip.is_multicast() || is_broadcast(*ip)) {
            let kind = if ip.is_multicast() {
                "multicast"
            } else {
                "broadcast"
            };
            return Err(format!(
                "{} is a {kind} address: a published port takes traffic to one of the host's own (unicast) addresses; give one of those, or leave HOST_IP out",
                host_ip_text(Some(ip))
            ));
        }
        // The unspecified address means every address, as no address does.
        let host_ip = host_ip.filter(|ip| !ip.is_unspecified());
        Ok(PortSpec {
            host_ip,
            host,
            container,
            protocol,
        })
    }

    /// Parses a `-p` argument with an error that names it and the fix.
    pub fn parse(text: &str) -> Result<PortSpec> {
        text.parse().map_err(|cause: String| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("published port {text:?}"),
                cause,
                "write it as [HOST_IP:][HOST_PORT[-END]]:CONTAINER_PORT[-END][/tcp|/udp], e.g. 8080:80, 127.0.0.1:5353:53/udp or [2001:db8::1]:8080:80",
            )
        })
    }
}

/// One host port forwarded to one container port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PublishedPort {
    /// The host address it is limited to, or every local address.
    pub host_ip: Option<IpAddr>,
    /// The host port.
    pub host_port: u16,
    /// The container port.
    pub container_port: u16,
    /// The protocol.
    pub protocol: Protocol,
}

impl PublishedPort {
    /// True when both would catch the same packets.
    pub fn clashes_with(&self, other: &PublishedPort) -> bool {
        self.protocol == other.protocol
            && self.host_port == other.host_port
            && (self.host_ip.is_none() || other.host_ip.is_none() || self.host_ip == other.host_ip)
    }
}

impl fmt::Display for PublishedPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ip = host_ip_text(self.host_ip);
        write!(
            f,
            "{ip}:{}->{}/{}",
            self.host_port, self.container_port, self.protocol
        )
    }
}

/// The limited broadcast address, which no host has as its own.
fn is_broadcast(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v4) if v4.is_broadcast())
}

/// A host address as written before `:PORT`: `0.0.0.0` for every address, IPv6 in
/// brackets.
pub fn host_ip_text(ip: Option<IpAddr>) -> String {
    match ip {
        None => "0.0.0.0".to_string(),
        Some(IpAddr::V4(ip)) => ip.to_string(),
        Some(IpAddr::V6(ip)) => format!("[{ip}]"),
    }
}

/// A port already published, and who holds it (for error messages).
pub struct Holder {
    /// The port.
    pub port: PublishedPort,
    /// The container and network holding it, in words.
    pub holder: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> PortSpec {
        text.parse().unwrap()
    }

    #[test]
    fn docker_forms_parse() {
        assert_eq!(
            spec("8080:80"),
            PortSpec {
                host_ip: None,
                host: Some(PortRange::parse("8080").unwrap()),
                container: PortRange::parse("80").unwrap(),
                protocol: Protocol::Tcp
            }
        );
        let s = spec("127.0.0.1:5300-5301:53-54/udp");
        assert_eq!(s.host_ip, Some(IpAddr::from([127, 0, 0, 1])));
        assert_eq!(s.protocol, Protocol::Udp);
        assert_eq!(s.container.count(), 2);
        assert_eq!(spec("80").host, None);
        assert_eq!(spec("127.0.0.1::80").host, None);
        assert_eq!(spec("0.0.0.0:80:80").host_ip, None);
        let v6 = spec("[2001:db8::1]:8080:80/udp");
        assert_eq!(v6.host_ip, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(v6.host, PortRange::new(8080, 8080));
        assert_eq!(spec("[::]:80:80").host_ip, None);
        assert_eq!(spec("[2001:db8::1]::80").host, None);
    }

    #[test]
    fn garbage_is_refused() {
        for bad in [
            "",
            "0:80",
            "80:0",
            "70000:80",
            "a:80",
            "80:80/sctp",
            "1.2.3:80:80",
            "90-80:80",
            "8000-8002:80-81",
            "1:2:3:4",
            "[::1]:8080:80",
            "[2001:db8::1:8080:80",
            "[10.0.0.1]:80:80",
            "2001:db8::1:8080:80",
            "[2001:db8::1]:80",
            "224.0.0.251:5353:53/udp",
            "255.255.255.255:80:80",
            "[ff02::1]:80:80",
        ] {
            assert!(bad.parse::<PortSpec>().is_err(), "{bad:?} was accepted");
        }
    }
}
