//! nf_tables trace events: what `nft monitor trace` reads, typed.
//!
//! ```text
//!  a rule: … meta nftrace set 1          (Rule::set_nftrace)
//!            │ the packet's nftrace bit is set
//!            ▼
//!  every rule that ends for it ──▶ NFT_MSG_TRACE, type RULE, rule handle, verdict
//!  a chain's end, no verdict   ──▶ NFT_MSG_TRACE, type RULE, no handle, continue
//!  a base chain's policy       ──▶ NFT_MSG_TRACE, type POLICY, policy
//!            │ each with table, chain, the trace id of the packet, iif/oif, mark and
//!            │ the first bytes of its link, network and transport headers
//!            ▼
//!  NFNLGRP_NFTRACE multicast ──▶ Tracer::receive(timeout) → [TraceEvent]
//!                                TraceEvent::packet() → addresses, ports, ICMP, flags
//! ```
//!
//! Every event of one packet (in one namespace, while its nftrace bit stays set) carries
//! the same [`TraceEvent::id`], so a probe is matched by its headers once and its path
//! followed by id. The kernel sends the events only while some socket of the namespace
//! is in the group, and copies at most 20 bytes of link-layer header, 40 of network
//! header and 20 of transport header: enough for [`TraceEvent::packet`]. It copies them
//! (and the interfaces) into the first event of each base chain the packet passes only,
//! so match a probe on those, then follow its id.
//!
//! When the receive buffer overflows the kernel drops events and the next receive fails
//! with ENOBUFS; [`Tracer::receive`] then returns an error whose errno is ENOBUFS
//! ([`is_lost`]): the path of some packet is incomplete.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use netlink_sys::Socket;

use ctnet_kernel::netlink::{header_u16, messages};
use ctnet_kernel::{Error, Result};

use crate::abi::*;
use crate::multicast::{subscribe, text, wait_readable};
use crate::wire::attributes;
use crate::Family;

/// What a trace event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TraceKind {
    /// No type given (`NFT_TRACETYPE_UNSPEC`).
    Unspec,
    /// A base chain's policy decided the packet's fate at this hook.
    Policy,
    /// The kernel's type for a return to the chain that jumped (Linux 6.18 reports the
    /// end of a chain as a [`TraceKind::Rule`] without a handle instead).
    Return,
    /// A rule ended for the packet (its last expression ran, or it gave a verdict);
    /// without [`TraceEvent::rule_handle`], the chain ended without a verdict.
    Rule,
    /// A type a later kernel adds: its number.
    Other(u32),
}

impl TraceKind {
    /// The kind of `NFT_TRACETYPE_*` number `code`.
    pub fn from_code(code: u32) -> TraceKind {
        match code {
            NFT_TRACETYPE_UNSPEC => TraceKind::Unspec,
            NFT_TRACETYPE_POLICY => TraceKind::Policy,
            NFT_TRACETYPE_RETURN => TraceKind::Return,
            NFT_TRACETYPE_RULE => TraceKind::Rule,
            other => TraceKind::Other(other),
        }
    }
}

/// The verdict a traced rule (or chain) gave.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TraceVerdict {
    /// `accept`.
    Accept,
    /// `drop` (with or without an errno in the high bits).
    Drop,
    /// The rule ended without a verdict: evaluation goes on with the next rule.
    Continue,
    /// A match of the rule failed (seen only from some expressions).
    Break,
    /// `jump chain`.
    Jump(String),
    /// `goto chain`.
    Goto(String),
    /// `return`.
    Return,
    /// `queue` (whatever the queue number).
    Queue,
    /// Another code: its value.
    Other(i32),
}

impl TraceVerdict {
    /// The verdict of `code` (`NF_*` or `NFT_*`), with `chain` for a jump or goto.
    pub fn from_code(code: i32, chain: Option<String>) -> TraceVerdict {
        let chain = || chain.clone().unwrap_or_default();
        match code {
            NFT_CONTINUE => TraceVerdict::Continue,
            NFT_BREAK => TraceVerdict::Break,
            NFT_JUMP => TraceVerdict::Jump(chain()),
            NFT_GOTO => TraceVerdict::Goto(chain()),
            NFT_RETURN => TraceVerdict::Return,
            // Netfilter verdicts keep an errno (drop) or a queue number in the high bits.
            c if c >= 0 => match c & NF_VERDICT_MASK {
                NF_ACCEPT => TraceVerdict::Accept,
                NF_DROP => TraceVerdict::Drop,
                NF_QUEUE => TraceVerdict::Queue,
                _ => TraceVerdict::Other(c),
            },
            c => TraceVerdict::Other(c),
        }
    }

    /// The verdict in a nested `NFTA_*_VERDICT` attribute's payload.
    fn parse(nested: &[u8]) -> Option<TraceVerdict> {
        let mut code = None;
        let mut chain = None;
        for (k, v) in attributes(nested) {
            match k {
                NFTA_VERDICT_CODE => code = Some(be32(v)? as i32),
                NFTA_VERDICT_CHAIN => chain = Some(text(v)),
                _ => {}
            }
        }
        Some(TraceVerdict::from_code(code?, chain))
    }
}

/// One trace event: a packet met a rule, a chain's end or a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEvent {
    /// The base chain's family (the `nfgenmsg` family): `inet` for an inet table.
    pub family: Family,
    /// The packet's trace id (`NFTA_TRACE_ID`), the same for all its events.
    pub id: u32,
    /// What happened.
    pub kind: TraceKind,
    /// The table.
    pub table: String,
    /// The chain.
    pub chain: String,
    /// The rule's handle, for [`TraceKind::Rule`]; `None` at the end of a chain.
    pub rule_handle: Option<u64>,
    /// The verdict of the rule (or of the return).
    pub verdict: Option<TraceVerdict>,
    /// The base chain's policy that decided, for [`TraceKind::Policy`]: an `NF_*` code.
    pub policy: Option<u32>,
    /// The input interface's index.
    pub iif: Option<u32>,
    /// The output interface's index.
    pub oif: Option<u32>,
    /// The input interface's type (`ARPHRD_*`).
    pub iif_type: Option<u16>,
    /// The output interface's type (`ARPHRD_*`).
    pub oif_type: Option<u16>,
    /// The packet mark, when not zero.
    pub mark: Option<u32>,
    /// The layer 3 protocol being processed (`NFPROTO_*`), as a u32.
    pub nfproto: Option<u32>,
    /// The start of the network header (at most 40 bytes); empty without one.
    pub network_header: Vec<u8>,
    /// The start of the transport header (at most 20 bytes); empty without one.
    pub transport_header: Vec<u8>,
    /// The link-layer header (at most 20 bytes); empty without one (as on output).
    pub ll_header: Vec<u8>,
}

impl TraceEvent {
    /// The packet's addresses, protocol and ports (or ICMP type and id), decoded from its
    /// headers; `None` when the network header is not a whole IPv4 or IPv6 header.
    pub fn packet(&self) -> Option<PacketHeaders> {
        PacketHeaders::parse(&self.network_header, &self.transport_header)
    }
}

/// What identifies a probe in its headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PacketHeaders {
    /// The source address.
    pub src: IpAddr,
    /// The destination address.
    pub dst: IpAddr,
    /// The IPv4 protocol, or the IPv6 fixed header's next header (an extension header's
    /// number when the packet has one).
    pub protocol: u8,
    /// The TCP or UDP source port.
    pub sport: Option<u16>,
    /// The TCP or UDP destination port.
    pub dport: Option<u16>,
    /// The ICMP or ICMPv6 echo request's or reply's identifier.
    pub icmp_id: Option<u16>,
    /// The ICMP or ICMPv6 type.
    pub icmp_type: Option<u8>,
    /// The TCP flags (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, …).
    pub tcp_flags: Option<u8>,
}

/// `IPPROTO_*` numbers the headers are told apart by.
const IPPROTO_ICMP: u8 = 1;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ICMPV6: u8 = 58;
/// ICMP echo reply and request; ICMPv6 echo request and reply.
const ECHO_TYPES: [(u8, u8); 4] = [
    (IPPROTO_ICMP, 0),
    (IPPROTO_ICMP, 8),
    (IPPROTO_ICMPV6, 128),
    (IPPROTO_ICMPV6, 129),
];

impl PacketHeaders {
    /// Decodes an IPv4 or IPv6 `network` header (the fixed IPv6 header only) and the
    /// TCP, UDP, ICMP or ICMPv6 `transport` header after it; fields the transport header
    /// is too short for (or another protocol's) are `None`.
    pub fn parse(network: &[u8], transport: &[u8]) -> Option<PacketHeaders> {
        let (src, dst, protocol) = network_fields(network)?;
        let mut headers = PacketHeaders {
            src,
            dst,
            protocol,
            sport: None,
            dport: None,
            icmp_id: None,
            icmp_type: None,
            tcp_flags: None,
        };
        let u16_at = |at: usize| {
            transport
                .get(at..at + 2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
        };
        match protocol {
            IPPROTO_TCP | IPPROTO_UDP => {
                headers.sport = u16_at(0);
                headers.dport = u16_at(2);
                if protocol == IPPROTO_TCP {
                    headers.tcp_flags = transport.get(13).copied();
                }
            }
            IPPROTO_ICMP | IPPROTO_ICMPV6 => {
                headers.icmp_type = transport.first().copied();
                if headers
                    .icmp_type
                    .is_some_and(|t| ECHO_TYPES.contains(&(protocol, t)))
                {
                    headers.icmp_id = u16_at(4);
                }
            }
            _ => {}
        }
        Some(headers)
    }
}

/// Source, destination and protocol of an IPv4 header or a fixed IPv6 header.
fn network_fields(header: &[u8]) -> Option<(IpAddr, IpAddr, u8)> {
    let bytes = |at: usize, len: usize| header.get(at..at + len);
    match header.first()? >> 4 {
        4 => {
            let v4 = |at| -> Option<IpAddr> {
                Some(Ipv4Addr::from(<[u8; 4]>::try_from(bytes(at, 4)?).ok()?).into())
            };
            Some((v4(12)?, v4(16)?, *header.get(9)?))
        }
        6 => {
            let v6 = |at| -> Option<IpAddr> {
                Some(Ipv6Addr::from(<[u8; 16]>::try_from(bytes(at, 16)?).ok()?).into())
            };
            Some((v6(8)?, v6(24)?, *header.get(6)?))
        }
        _ => None,
    }
}

/// A socket subscribed to nf_tables trace events in the calling thread's network
/// namespace.
pub struct Tracer {
    socket: Socket,
    buf: Vec<u8>,
}

/// Room for a burst of events (a traced packet makes one per rule it meets) before the
/// kernel starts dropping; set with SO_RCVBUFFORCE, which CAP_NET_ADMIN allows past
/// net.core.rmem_max.
const RECEIVE_BUFFER: usize = 4 << 20;
/// One datagram: the kernel sends one event per skb, a few hundred bytes; a larger
/// buffer costs nothing and MSG_TRUNC says if one was ever cut.
const DATAGRAM_MAX: usize = 64 << 10;

impl Tracer {
    /// Opens the socket and joins the group. Events of packets traced after this call
    /// are received; nothing before it.
    pub fn open() -> Result<Self> {
        let socket = subscribe(
            NFNLGRP_NFTRACE,
            "NFNLGRP_NFTRACE",
            RECEIVE_BUFFER,
            "nf_tables trace socket",
        )?;
        Ok(Tracer {
            socket,
            buf: vec![0; DATAGRAM_MAX],
        })
    }

    /// Waits at most `timeout` for events, then takes every one already queued: the
    /// events in the kernel's order, or none when nothing came in time. Fails with errno
    /// ENOBUFS ([`is_lost`]) when the kernel dropped events.
    pub fn receive(&mut self, timeout: Duration) -> Result<Vec<TraceEvent>> {
        let fd = self.socket.as_raw_fd();
        let deadline = Instant::now() + timeout;
        let mut events = Vec::new();
        // The first wait may return early on EINTR: wait again for what is left.
        while !wait_readable(
            fd,
            Some(deadline.saturating_duration_since(Instant::now())),
            "nf_tables trace events",
        )? {
            if Instant::now() >= deadline {
                return Ok(events);
            }
        }
        while let Some(n) = self.receive_datagram()? {
            events.extend(parse(&self.buf[..n]));
        }
        Ok(events)
    }

    /// One queued datagram into `buf`: its length, or `None` when none is queued.
    fn receive_datagram(&mut self) -> Result<Option<usize>> {
        let fd = self.socket.as_raw_fd();
        // SAFETY: `buf` is a live, writable allocation of `buf.len()` bytes, and `fd`
        // is the socket `self` owns.
        let n = unsafe {
            libc::recv(
                fd,
                self.buf.as_mut_ptr().cast(),
                self.buf.len(),
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(None),
                Some(libc::ENOBUFS) => Err(lost("the receive buffer overflowed")),
                _ => Err(Error::io("receive nf_tables trace events", e)),
            };
        }
        let n = n as usize;
        if n > self.buf.len() {
            // MSG_TRUNC returns the datagram's real length: the rest is gone.
            return Err(lost("a datagram was cut"));
        }
        Ok(Some(n))
    }
}

impl AsRawFd for Tracer {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

fn lost(why: &str) -> Error {
    Error::io(
        format!("receive nf_tables trace events: some were lost ({why})"),
        io::Error::from_raw_os_error(libc::ENOBUFS),
    )
}

/// True when `error` is [`Tracer::receive`] saying the kernel dropped events.
pub fn is_lost(error: &Error) -> bool {
    error.errno() == Some(libc::ENOBUFS)
}

/// The trace events in one datagram; other messages are skipped.
pub fn parse(datagram: &[u8]) -> Vec<TraceEvent> {
    messages(datagram)
        .filter_map(|(offset, len)| event_of(&datagram[offset..offset + len]))
        .collect()
}

/// Where `nlmsghdr`'s type sits.
const NLMSG_TYPE_AT: usize = 4;

/// One whole message as an event, or `None` when it is not an nf_tables trace of a
/// family nf_tables has tables of.
fn event_of(message: &[u8]) -> Option<TraceEvent> {
    let kind = header_u16(message, NLMSG_TYPE_AT)?;
    if kind != (NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_TRACE) {
        return None;
    }
    let payload = message.get(NLMSG_HDRLEN..)?;
    let mut event = TraceEvent {
        family: Family::from_code(*payload.first()?)?,
        id: 0,
        kind: TraceKind::Unspec,
        table: String::new(),
        chain: String::new(),
        rule_handle: None,
        verdict: None,
        policy: None,
        iif: None,
        oif: None,
        iif_type: None,
        oif_type: None,
        mark: None,
        nfproto: None,
        network_header: Vec::new(),
        transport_header: Vec::new(),
        ll_header: Vec::new(),
    };
    for (k, v) in attributes(payload.get(NFGENMSG_LEN..).unwrap_or_default()) {
        match k {
            NFTA_TRACE_TABLE => event.table = text(v),
            NFTA_TRACE_CHAIN => event.chain = text(v),
            NFTA_TRACE_RULE_HANDLE => event.rule_handle = v.try_into().ok().map(u64::from_be_bytes),
            NFTA_TRACE_TYPE => event.kind = TraceKind::from_code(be32(v)?),
            NFTA_TRACE_VERDICT => event.verdict = TraceVerdict::parse(v),
            NFTA_TRACE_ID => event.id = be32(v)?,
            NFTA_TRACE_LL_HEADER => event.ll_header = v.to_vec(),
            NFTA_TRACE_NETWORK_HEADER => event.network_header = v.to_vec(),
            NFTA_TRACE_TRANSPORT_HEADER => event.transport_header = v.to_vec(),
            NFTA_TRACE_IIF => event.iif = be32(v),
            NFTA_TRACE_IIFTYPE => event.iif_type = be16(v),
            NFTA_TRACE_OIF => event.oif = be32(v),
            NFTA_TRACE_OIFTYPE => event.oif_type = be16(v),
            NFTA_TRACE_MARK => event.mark = be32(v),
            NFTA_TRACE_NFPROTO => event.nfproto = be32(v),
            NFTA_TRACE_POLICY => event.policy = be32(v),
            _ => {}
        }
    }
    Some(event)
}

fn be16(v: &[u8]) -> Option<u16> {
    v.try_into().ok().map(u16::from_be_bytes)
}

fn be32(v: &[u8]) -> Option<u32> {
    v.try_into().ok().map(u32::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    /// What Linux 6.18 multicast for one UDP datagram 127.0.0.1:40000 → 127.0.0.2:9
    /// through table `inet x`: chain `out` (output hook) with handle 3 `meta nfproto
    /// ipv4 meta l4proto udp th dport 9 meta nftrace set 1` and handle 4 `jump sub`;
    /// regular chain `sub` with handle 5 `counter`. Captured in a throwaway namespace,
    /// one datagram a message.
    const PATH: [&str; 6] = [
        "90000000110a000000000000000000000100000008000f000000000208000400000000030800060035c1721b080002006f75740006000100780000000c00030000000000000000030c00050008000100ffffffff08000c000000000106000d000304000018000800450000212a034000401112c67f0000017f000002110009009c400009000dfe2170726f6265000000",
        "5c000000110a000000000000000000000100000008000f000000000208000400000000030800060035c1721b080002006f75740006000100780000000c00030000000000000000041400050008000100fffffffd0800020073756200",
        "54000000110a000000000000000000000100000008000f000000000208000400000000030800060035c1721b080002007375620006000100780000000c00030000000000000000050c00050008000100ffffffff",
        "48000000110a000000000000000000000100000008000f000000000208000400000000030800060035c1721b080002007375620006000100780000000c00050008000100ffffffff",
        "48000000110a000000000000000000000100000008000f000000000208000400000000030800060035c1721b080002006f75740006000100780000000c00050008000100ffffffff",
        "44000000110a000000000000000000000100000008000f000000000208000400000000010800060035c1721b080002006f75740006000100780000000800100000000001",
    ];

    fn path() -> Vec<TraceEvent> {
        PATH.iter().flat_map(|m| parse(&bytes(m))).collect()
    }

    #[test]
    fn the_first_event_carries_the_packet_and_its_interfaces() {
        let first = &path()[0];
        assert_eq!(first.family, Family::Inet);
        assert_eq!(first.id, 0x35c1721b);
        assert_eq!(first.kind, TraceKind::Rule);
        assert_eq!((first.table.as_str(), first.chain.as_str()), ("x", "out"));
        assert_eq!(first.rule_handle, Some(3));
        assert_eq!(first.verdict, Some(TraceVerdict::Continue));
        assert_eq!(first.nfproto, Some(u32::from(NFPROTO_IPV4)));
        assert_eq!((first.oif, first.oif_type), (Some(1), Some(772))); // lo, ARPHRD_LOOPBACK
        assert_eq!((first.iif, first.iif_type, first.mark), (None, None, None));
        assert_eq!(first.network_header.len(), 20);
        assert!(first.ll_header.is_empty());
        let p = first.packet().unwrap();
        assert_eq!(p.src, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(p.dst, IpAddr::from([127, 0, 0, 2]));
        assert_eq!((p.protocol, p.sport, p.dport), (17, Some(40000), Some(9)));
        assert_eq!((p.icmp_type, p.icmp_id, p.tcp_flags), (None, None, None));
    }

    #[test]
    fn a_path_through_a_jump_ends_in_the_policy() {
        let events = path();
        assert!(events.iter().all(|e| e.id == 0x35c1721b && e.table == "x"));
        let steps: Vec<_> = events
            .iter()
            .map(|e| (e.chain.as_str(), e.kind, e.rule_handle, e.verdict.clone()))
            .collect();
        let cont = Some(TraceVerdict::Continue);
        assert_eq!(
            steps,
            vec![
                ("out", TraceKind::Rule, Some(3), cont.clone()),
                (
                    "out",
                    TraceKind::Rule,
                    Some(4),
                    Some(TraceVerdict::Jump("sub".into()))
                ),
                ("sub", TraceKind::Rule, Some(5), cont.clone()),
                // The ends of `sub` and of `out`, then the policy of `out`.
                ("sub", TraceKind::Rule, None, cont.clone()),
                ("out", TraceKind::Rule, None, cont),
                ("out", TraceKind::Policy, None, None),
            ]
        );
        assert_eq!(events[5].policy, Some(NF_ACCEPT as u32));
        // Headers only in the first event of the base chain.
        assert!(events[1..].iter().all(|e| e.packet().is_none()));
    }

    #[test]
    fn one_datagram_may_hold_several_events_and_others_are_skipped() {
        let all: Vec<u8> = PATH.iter().flat_map(|m| bytes(m)).collect();
        assert_eq!(parse(&all), path());
        let mut gen = bytes(PATH[5]);
        gen[4] = NFT_MSG_NEWGEN as u8;
        assert!(parse(&gen).is_empty());
        let mut other = bytes(PATH[5]);
        other[5] = 1; // NFNL_SUBSYS_CTNETLINK
        assert!(parse(&other).is_empty());
        assert!(parse(&all[..0x90 - 4]).is_empty());
    }

    #[test]
    fn verdict_codes_decode() {
        let v = |code, chain: Option<&str>| TraceVerdict::from_code(code, chain.map(Into::into));
        assert_eq!(v(NF_ACCEPT, None), TraceVerdict::Accept);
        assert_eq!(v(NF_DROP, None), TraceVerdict::Drop);
        // NF_DROP_ERR(-EPERM) and a queue number in the high bits.
        assert_eq!(v(1 << 16, None), TraceVerdict::Drop);
        assert_eq!(v(NF_QUEUE, None), TraceVerdict::Queue);
        assert_eq!(v(NF_QUEUE | (5 << 16), None), TraceVerdict::Queue);
        assert_eq!(v(NFT_CONTINUE, None), TraceVerdict::Continue);
        assert_eq!(v(NFT_BREAK, None), TraceVerdict::Break);
        assert_eq!(v(NFT_JUMP, Some("c")), TraceVerdict::Jump("c".into()));
        assert_eq!(v(NFT_GOTO, Some("d")), TraceVerdict::Goto("d".into()));
        assert_eq!(v(NFT_RETURN, None), TraceVerdict::Return);
        assert_eq!(v(2, None), TraceVerdict::Other(2)); // NF_STOLEN
        assert_eq!(v(-9, None), TraceVerdict::Other(-9));
        // NFTA_VERDICT_CODE -4, NFTA_VERDICT_CHAIN "sub".
        let goto = bytes("08000100fffffffc0800020073756200");
        assert_eq!(
            TraceVerdict::parse(&goto),
            Some(TraceVerdict::Goto("sub".into()))
        );
        assert_eq!(TraceVerdict::parse(&goto[8..]), None);
    }

    #[test]
    fn trace_types_decode() {
        assert_eq!(TraceKind::from_code(0), TraceKind::Unspec);
        assert_eq!(TraceKind::from_code(1), TraceKind::Policy);
        assert_eq!(TraceKind::from_code(2), TraceKind::Return);
        assert_eq!(TraceKind::from_code(3), TraceKind::Rule);
        assert_eq!(TraceKind::from_code(9), TraceKind::Other(9));
    }

    /// An IPv6 header from `src` to `dst` with next header `next`.
    fn ipv6(next: u8, src: &str, dst: &str) -> Vec<u8> {
        let mut h = vec![0x60, 0, 0, 0, 0, 8, next, 64];
        h.extend(src.parse::<Ipv6Addr>().unwrap().octets());
        h.extend(dst.parse::<Ipv6Addr>().unwrap().octets());
        h
    }

    #[test]
    fn an_ipv6_tcp_syn_gives_its_ports_and_flags() {
        let net = ipv6(6, "fd00::1", "2001:db8::2");
        // 443 → 8080, seq, ack, data offset 5, flags SYN.
        let tcp = bytes("01bb1f9000000001000000005002faf000000000");
        let p = PacketHeaders::parse(&net, &tcp).unwrap();
        assert_eq!(p.src, "fd00::1".parse::<IpAddr>().unwrap());
        assert_eq!(p.dst, "2001:db8::2".parse::<IpAddr>().unwrap());
        assert_eq!((p.protocol, p.sport, p.dport), (6, Some(443), Some(8080)));
        assert_eq!(p.tcp_flags, Some(0x02));
        assert_eq!((p.icmp_type, p.icmp_id), (None, None));
        // A short transport header gives what it has.
        let p = PacketHeaders::parse(&net, &tcp[..3]).unwrap();
        assert_eq!((p.sport, p.dport, p.tcp_flags), (Some(443), None, None));
    }

    #[test]
    fn icmp_echoes_give_their_id_and_other_types_only_the_type() {
        let v4 = bytes("450000540000400040010000c0a80001c0a80002");
        // Echo request, checksum, id 0x1234, sequence 1.
        let echo = PacketHeaders::parse(&v4, &bytes("0800000012340001")).unwrap();
        assert_eq!(echo.protocol, 1);
        assert_eq!((echo.icmp_type, echo.icmp_id), (Some(8), Some(0x1234)));
        assert_eq!((echo.sport, echo.dport), (None, None));
        // Port unreachable: bytes 4-5 are unused, not an id.
        let unreach = PacketHeaders::parse(&v4, &bytes("0303000000000000")).unwrap();
        assert_eq!((unreach.icmp_type, unreach.icmp_id), (Some(3), None));
        let v6 = ipv6(58, "::1", "::1");
        let reply = PacketHeaders::parse(&v6, &bytes("81000000abcd0002")).unwrap();
        assert_eq!((reply.icmp_type, reply.icmp_id), (Some(129), Some(0xabcd)));
    }

    #[test]
    fn what_is_not_a_whole_ip_header_is_no_packet() {
        assert_eq!(PacketHeaders::parse(&[], &[]), None);
        assert_eq!(PacketHeaders::parse(&[0x45; 19], &[]), None);
        assert_eq!(
            PacketHeaders::parse(&ipv6(17, "::1", "::2")[..39], &[]),
            None
        );
        // ARP, or anything but version 4 or 6.
        assert_eq!(PacketHeaders::parse(&[0x00; 40], &[]), None);
        // Another protocol: the addresses, no ports.
        let gre = PacketHeaders::parse(&ipv6(47, "::1", "::2"), &[0; 8]).unwrap();
        assert_eq!((gre.protocol, gre.sport, gre.icmp_type), (47, None, None));
    }
}
