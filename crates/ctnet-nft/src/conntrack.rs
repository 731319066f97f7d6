//! The kernel's connection-tracking table over ctnetlink: what `conntrack -L` lists and
//! `conntrack -D` deletes, from this process.
//!
//! ```text
//!  request                                   reply
//!  ┌ nlmsghdr: CTNETLINK << 8 | CT_GET ────┐   one CTNETLINK << 8 | CT_NEW per entry
//!  │   REQUEST | DUMP                      │   (NLM_F_MULTI), then NLMSG_DONE, or
//!  └ nfgenmsg: AF_INET, then AF_INET6 ─────┘   NLMSG_ERROR when the kernel refuses
//!  ┌ nlmsghdr: CTNETLINK << 8 | CT_DELETE ─┐
//!  │   REQUEST | ACK                       │   an NLMSG_ERROR: 0, or ENOENT when no
//!  ├ nfgenmsg: the tuple's family          │   entry has that tuple in that zone
//!  ├ CTA_TUPLE_ORIG (below)                │
//!  └ CTA_ZONE be16 ────────────────────────┘
//!
//!  an entry's attributes
//!  ├ CTA_TUPLE_ORIG ──┬ CTA_TUPLE_IP ────┬ CTA_IP_V4_SRC / CTA_IP_V6_SRC   4 / 16 bytes
//!  │                  │                  └ CTA_IP_V4_DST / CTA_IP_V6_DST
//!  │                  └ CTA_TUPLE_PROTO ─┬ CTA_PROTO_NUM                   u8
//!  │                                     ├ CTA_PROTO_SRC_PORT, _DST_PORT   be16
//!  │                                     └ CTA_PROTO_ICMP(V6)_ID be16, _TYPE u8, _CODE u8
//!  ├ CTA_TUPLE_REPLY     the same shape, as replies look after NAT
//!  ├ CTA_STATUS be32, CTA_TIMEOUT be32 (seconds), CTA_MARK be32, CTA_ID be32
//!  ├ CTA_ZONE be16       absent in zone 0
//!  ├ CTA_PROTOINFO ─ CTA_PROTOINFO_TCP ─ CTA_PROTOINFO_TCP_STATE   u8
//!  └ CTA_COUNTERS_ORIG / _REPLY ─ CTA_COUNTERS_PACKETS, _BYTES    be64, when accounting is on
//! ```
//!
//! Every integer in these attributes is big-endian, unlike the netlink headers; nests
//! carry `NLA_F_NESTED`, as libnetfilter_conntrack writes them. The families are dumped
//! one at a time: `AF_UNSPEC` means "both" only on kernels whose dump filter takes 0 for
//! any family, while two dumps work on every kernel for one more round trip. The table
//! read is the one of the calling thread's network namespace.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket};

use ctnet_kernel::netlink::{header_u16, header_u32, kernel_socket, messages};
use ctnet_kernel::{Error, Result};

use crate::abi::{
    NFGENMSG_LEN, NFPROTO_IPV4, NFPROTO_IPV6, NLA_F_NESTED, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN,
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use crate::wire::{attributes, Writer};

// ---- the kernel's numbers (linux/netfilter/nfnetlink_conntrack.h, nf_conntrack_*.h) ----

/// The ctnetlink subsystem; the high byte of its message types.
pub const NFNL_SUBSYS_CTNETLINK: u16 = 1;
/// An entry: what a dump sends for each one (and what creates one).
pub const IPCTNL_MSG_CT_NEW: u16 = 0;
/// Reads entries.
pub const IPCTNL_MSG_CT_GET: u16 = 1;
/// Deletes an entry.
pub const IPCTNL_MSG_CT_DELETE: u16 = 2;

const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_STATUS: u16 = 3;
const CTA_PROTOINFO: u16 = 4;
const CTA_TIMEOUT: u16 = 7;
const CTA_MARK: u16 = 8;
const CTA_COUNTERS_ORIG: u16 = 9;
const CTA_COUNTERS_REPLY: u16 = 10;
const CTA_ID: u16 = 12;
const CTA_ZONE: u16 = 18;

const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;

const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_IP_V6_SRC: u16 = 3;
const CTA_IP_V6_DST: u16 = 4;

const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;
const CTA_PROTO_ICMP_ID: u16 = 4;
const CTA_PROTO_ICMP_TYPE: u16 = 5;
const CTA_PROTO_ICMP_CODE: u16 = 6;
const CTA_PROTO_ICMPV6_ID: u16 = 7;
const CTA_PROTO_ICMPV6_TYPE: u16 = 8;
const CTA_PROTO_ICMPV6_CODE: u16 = 9;

const CTA_PROTOINFO_TCP: u16 = 1;
const CTA_PROTOINFO_TCP_STATE: u16 = 1;

const CTA_COUNTERS_PACKETS: u16 = 1;
const CTA_COUNTERS_BYTES: u16 = 2;
/// The 32-bit counters of kernels before 2.6.27; read in case one still sends them.
const CTA_COUNTERS32_PACKETS: u16 = 3;
const CTA_COUNTERS32_BYTES: u16 = 4;

/// Status bit: the original direction's source was translated (SNAT, masquerade).
pub const IPS_SRC_NAT: u32 = 1 << 4;
/// Status bit: the original direction's destination was translated (DNAT).
pub const IPS_DST_NAT: u32 = 1 << 5;
/// Status bit: a packet of the reply direction has been seen.
pub const IPS_SEEN_REPLY: u32 = 1 << 1;
/// Status bit: the connection will not be evicted early under pressure.
pub const IPS_ASSURED: u32 = 1 << 2;

/// ICMP; this and the three below are the protocols [`Entry::protocol_name`] names.
pub const IPPROTO_ICMP: u8 = 1;
/// TCP.
pub const IPPROTO_TCP: u8 = 6;
/// UDP.
pub const IPPROTO_UDP: u8 = 17;
/// ICMPv6.
pub const IPPROTO_ICMPV6: u8 = 58;

/// `enum tcp_conntrack`, in its order; 9 is `TCP_CONNTRACK_SYN_SENT2` (once `LISTEN`),
/// named as conntrack(8) prints it.
const TCP_STATE_NAMES: [&str; 10] = [
    "NONE",
    "SYN_SENT",
    "SYN_RECV",
    "ESTABLISHED",
    "FIN_WAIT",
    "CLOSE_WAIT",
    "LAST_ACK",
    "TIME_WAIT",
    "CLOSE",
    "SYN_SENT2",
];

/// `TCP_CONNTRACK_ESTABLISHED`.
pub const TCP_CONNTRACK_ESTABLISHED: u8 = 3;

// ---- types ----

/// The identifying fields of an ICMP or ICMPv6 tuple, which has no ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Icmp {
    /// The echo identifier (be16 on the wire).
    pub id: u16,
    /// The message type.
    pub kind: u8,
    /// The message code.
    pub code: u8,
}

/// One direction of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tuple {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol number (`IPPROTO_*`).
    pub protocol: u8,
    /// Source port, for protocols that have ports (TCP, UDP, SCTP, …).
    pub src_port: Option<u16>,
    /// Destination port, likewise.
    pub dst_port: Option<u16>,
    /// For ICMP and ICMPv6: id, type and code.
    pub icmp: Option<Icmp>,
}

impl Tuple {
    /// A TCP tuple from `src` to `dst`.
    pub fn tcp(src: SocketAddr, dst: SocketAddr) -> Tuple {
        Tuple::with_ports(IPPROTO_TCP, src, dst)
    }

    /// A UDP tuple from `src` to `dst`.
    pub fn udp(src: SocketAddr, dst: SocketAddr) -> Tuple {
        Tuple::with_ports(IPPROTO_UDP, src, dst)
    }

    /// A tuple of `protocol`, one with ports, from `src` to `dst`.
    pub fn with_ports(protocol: u8, src: SocketAddr, dst: SocketAddr) -> Tuple {
        Tuple {
            src: src.ip(),
            dst: dst.ip(),
            protocol,
            src_port: Some(src.port()),
            dst_port: Some(dst.port()),
            icmp: None,
        }
    }

    /// The `NFPROTO_*` family of both addresses, or `None` when they differ.
    fn family(&self) -> Option<u8> {
        match (self.src, self.dst) {
            (IpAddr::V4(_), IpAddr::V4(_)) => Some(NFPROTO_IPV4),
            (IpAddr::V6(_), IpAddr::V6(_)) => Some(NFPROTO_IPV6),
            _ => None,
        }
    }
}

/// Packets and bytes seen in one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Counters {
    /// Packets.
    pub packets: u64,
    /// Bytes, IP headers included.
    pub bytes: u64,
}

/// One tracked connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The direction of its first packet (`CTA_TUPLE_ORIG`).
    pub original: Tuple,
    /// What replies look like, after any NAT (`CTA_TUPLE_REPLY`).
    pub reply: Tuple,
    /// `IPS_*` status bits (`CTA_STATUS`).
    pub status: u32,
    /// For TCP: the `enum tcp_conntrack` state (`CTA_PROTOINFO_TCP_STATE`).
    pub tcp_state: Option<u8>,
    /// Seconds until it expires unless more packets come.
    pub timeout: Option<u32>,
    /// Its `ct mark`.
    pub mark: u32,
    /// Its conntrack zone, 0 unless one was set.
    pub zone: u16,
    /// The kernel's id for it.
    pub id: Option<u32>,
    /// Original-direction counters, when accounting is on (`net.netfilter.nf_conntrack_acct`).
    pub original_counters: Option<Counters>,
    /// Reply-direction counters, likewise.
    pub reply_counters: Option<Counters>,
}

impl Entry {
    /// Its destination was translated (`IPS_DST_NAT`): a published port, for ctnet.
    pub fn is_dnat(&self) -> bool {
        self.status & IPS_DST_NAT != 0
    }

    /// Its source was translated (`IPS_SRC_NAT`): masquerade, for ctnet.
    pub fn is_snat(&self) -> bool {
        self.status & IPS_SRC_NAT != 0
    }

    /// `ip` is one of its four addresses (either end, before or after NAT).
    pub fn involves(&self, ip: IpAddr) -> bool {
        [
            self.original.src,
            self.original.dst,
            self.reply.src,
            self.reply.dst,
        ]
        .contains(&ip)
    }

    /// The TCP state as conntrack(8) prints it (`ESTABLISHED`, `TIME_WAIT`, …).
    pub fn tcp_state_name(&self) -> Option<&'static str> {
        TCP_STATE_NAMES.get(usize::from(self.tcp_state?)).copied()
    }

    /// `tcp`, `udp`, `icmp`, `icmpv6`, or `other`.
    pub fn protocol_name(&self) -> &'static str {
        match self.original.protocol {
            IPPROTO_TCP => "tcp",
            IPPROTO_UDP => "udp",
            IPPROTO_ICMP => "icmp",
            IPPROTO_ICMPV6 => "icmpv6",
            _ => "other",
        }
    }
}

// ---- requests ----

/// Every entry of both families (IPv4, then IPv6) in the calling thread's network
/// namespace. Empty where nothing uses conntrack: its hooks, and so its table, exist
/// only once some rule or module needs them.
pub fn dump() -> Result<Vec<Entry>> {
    let mut socket = CtSocket::open()?;
    let mut entries = socket.dump(NFPROTO_IPV4)?;
    entries.extend(socket.dump(NFPROTO_IPV6)?);
    Ok(entries)
}

/// Deletes the entry of `zone` whose original direction is `original`: true when it
/// was there, false when not (ENOENT).
pub fn delete(original: &Tuple, zone: u16) -> Result<bool> {
    let op = format!("delete conntrack entry {}", describe(original));
    let Some(family) = original.family() else {
        return Err(Error::io(
            op,
            io::Error::new(io::ErrorKind::InvalidInput, "mixed IPv4 and IPv6 addresses"),
        ));
    };
    let mut socket = CtSocket::open()?;
    let seq = socket.send(IPCTNL_MSG_CT_DELETE, NLM_F_ACK, family, &op, |w| {
        put_delete(w, original, zone)
    })?;
    match socket.ack(seq, &op)? {
        0 => Ok(true),
        libc::ENOENT => Ok(false),
        errno => Err(refused(&op, errno)),
    }
}

/// `proto 6 10.0.0.2:40000 -> 10.0.0.1:80`, for errors.
fn describe(t: &Tuple) -> String {
    let end = |ip: IpAddr, port: Option<u16>| match port {
        Some(port) => SocketAddr::new(ip, port).to_string(),
        None => ip.to_string(),
    };
    format!(
        "proto {} {} -> {}",
        t.protocol,
        end(t.src, t.src_port),
        end(t.dst, t.dst_port)
    )
}

/// The attributes of a delete request.
fn put_delete(w: &mut Writer, original: &Tuple, zone: u16) {
    w.nest(CTA_TUPLE_ORIG | NLA_F_NESTED, |w| put_tuple(w, original));
    w.put(CTA_ZONE, &zone.to_be_bytes());
}

fn put_tuple(w: &mut Writer, t: &Tuple) {
    w.nest(CTA_TUPLE_IP | NLA_F_NESTED, |w| match (t.src, t.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            w.put(CTA_IP_V4_SRC, &src.octets());
            w.put(CTA_IP_V4_DST, &dst.octets());
        }
        (src, dst) => {
            w.put(CTA_IP_V6_SRC, &v6_octets(src));
            w.put(CTA_IP_V6_DST, &v6_octets(dst));
        }
    });
    w.nest(CTA_TUPLE_PROTO | NLA_F_NESTED, |w| {
        w.put(CTA_PROTO_NUM, &[t.protocol]);
        if let Some(port) = t.src_port {
            w.put(CTA_PROTO_SRC_PORT, &port.to_be_bytes());
        }
        if let Some(port) = t.dst_port {
            w.put(CTA_PROTO_DST_PORT, &port.to_be_bytes());
        }
        if let Some(icmp) = t.icmp {
            // The kernel reads ICMPv6 ids from attributes of their own numbers.
            let (id, kind, code) = match t.protocol {
                IPPROTO_ICMPV6 => (
                    CTA_PROTO_ICMPV6_ID,
                    CTA_PROTO_ICMPV6_TYPE,
                    CTA_PROTO_ICMPV6_CODE,
                ),
                _ => (CTA_PROTO_ICMP_ID, CTA_PROTO_ICMP_TYPE, CTA_PROTO_ICMP_CODE),
            };
            w.put(id, &icmp.id.to_be_bytes());
            w.put(kind, &[icmp.kind]);
            w.put(code, &[icmp.code]);
        }
    });
}

/// Only reached for a tuple whose family was checked, so a v4 address never comes here.
fn v6_octets(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V6(v6) => v6.octets(),
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
    }
}

// ---- the socket ----

/// A netfilter netlink socket for ctnetlink requests.
struct CtSocket {
    socket: Socket,
    next_seq: u32,
}

impl CtSocket {
    fn open() -> Result<Self> {
        let socket = kernel_socket(NETLINK_NETFILTER, "ctnetlink socket")?;
        set_receive_timeout(&socket, RECEIVE_TIMEOUT_SECONDS)?;
        Ok(CtSocket {
            socket,
            next_seq: 1,
        })
    }

    /// Every entry of one `NFPROTO_*` family.
    fn dump(&mut self, family: u8) -> Result<Vec<Entry>> {
        let name = if family == NFPROTO_IPV4 {
            "IPv4"
        } else {
            "IPv6"
        };
        let op = format!("list {name} conntrack entries");
        let seq = self.send(IPCTNL_MSG_CT_GET, NLM_F_DUMP, family, &op, |_| {})?;
        let mut entries = Vec::new();
        loop {
            let datagram = self.receive(&op)?;
            for frame in frames(&datagram) {
                match frame {
                    Frame::Entry(entry) => entries.push(*entry),
                    Frame::Done { seq: s } if s == seq => return Ok(entries),
                    Frame::Ack { seq: s, errno } if s == seq && errno != 0 => {
                        return Err(refused(&op, errno))
                    }
                    _ => {}
                }
            }
        }
    }

    /// The errno of the acknowledgement of request `seq` (0 for success).
    fn ack(&mut self, seq: u32, op: &str) -> Result<i32> {
        loop {
            let datagram = self.receive(op)?;
            for frame in frames(&datagram) {
                if let Frame::Ack { seq: s, errno } = frame {
                    if s == seq {
                        return Ok(errno);
                    }
                }
            }
        }
    }

    /// Sends one ctnetlink request; returns its sequence number.
    fn send(
        &mut self,
        kind: u16,
        flags: u16,
        family: u8,
        op: &str,
        body: impl FnOnce(&mut Writer),
    ) -> Result<u32> {
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        let mut w = Writer::default();
        w.begin_message(
            (NFNL_SUBSYS_CTNETLINK << 8) | kind,
            NLM_F_REQUEST | flags,
            seq,
            family,
            0,
        );
        body(&mut w);
        w.end_message();
        self.socket
            .send(w.bytes(), 0)
            .map_err(|e| Error::io(format!("{op}: send"), e))?;
        Ok(seq)
    }

    fn receive(&mut self, op: &str) -> Result<Vec<u8>> {
        let (data, _) = self
            .socket
            .recv_from_full()
            .map_err(|e| Error::io(format!("{op}: receive netlink reply"), e))?;
        Ok(data)
    }
}

fn refused(op: &str, errno: i32) -> Error {
    Error::Netlink {
        op: op.into(),
        source: io::Error::from_raw_os_error(errno),
    }
}

/// A kernel that has not answered by then will not; better an error than a hang.
const RECEIVE_TIMEOUT_SECONDS: i64 = 10;

fn set_receive_timeout(socket: &Socket, seconds: i64) -> Result<()> {
    let timeout = libc::timeval {
        tv_sec: seconds,
        tv_usec: 0,
    };
    // SAFETY: the fd is a live socket owned by `socket`, and the option value is a
    // properly sized, initialised timeval that outlives the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(Error::io(
            "set receive timeout on ctnetlink socket",
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

// ---- parsing ----

/// One message of a reply datagram, reduced to what this module reads.
enum Frame {
    /// A conntrack entry (boxed: it dwarfs the other variants).
    Entry(Box<Entry>),
    /// An acknowledgement; `errno` is 0 for success.
    Ack { seq: u32, errno: i32 },
    /// The end of a dump.
    Done { seq: u32 },
    /// Anything else, or an entry or error too broken to read.
    Other,
}

/// Where `nlmsghdr`'s type and sequence number sit.
const NLMSG_TYPE_AT: usize = 4;
const NLMSG_SEQ_AT: usize = 8;

/// The entries in one datagram of a dump. Messages that are not entries, and entries
/// that are truncated or lack a tuple, are skipped.
pub fn parse_entries(datagram: &[u8]) -> Vec<Entry> {
    frames(datagram)
        .filter_map(|frame| match frame {
            Frame::Entry(entry) => Some(*entry),
            _ => None,
        })
        .collect()
}

fn frames(datagram: &[u8]) -> impl Iterator<Item = Frame> + '_ {
    messages(datagram).map(|(offset, len)| frame_of(&datagram[offset..offset + len]))
}

/// One whole message, as [`messages`] cuts them.
fn frame_of(message: &[u8]) -> Frame {
    let (Some(kind), Some(seq)) = (
        header_u16(message, NLMSG_TYPE_AT),
        header_u32(message, NLMSG_SEQ_AT),
    ) else {
        return Frame::Other;
    };
    let payload = &message[NLMSG_HDRLEN.min(message.len())..];
    match kind {
        NLMSG_ERROR => match header_u32(payload, 0) {
            Some(code) => Frame::Ack {
                seq,
                errno: (code as i32).wrapping_neg(),
            },
            None => Frame::Other,
        },
        NLMSG_DONE => Frame::Done { seq },
        k if k == (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW => payload
            .get(NFGENMSG_LEN..)
            .and_then(entry_of)
            .map_or(Frame::Other, |e| Frame::Entry(Box::new(e))),
        _ => Frame::Other,
    }
}

/// The entry in the attributes of a CT_NEW message, if both its tuples are readable.
fn entry_of(attrs: &[u8]) -> Option<Entry> {
    let tuple = |kind| {
        attributes(attrs)
            .find(|(k, _)| *k == kind)
            .and_then(|(_, nest)| tuple_of(nest))
    };
    let mut entry = Entry {
        original: tuple(CTA_TUPLE_ORIG)?,
        reply: tuple(CTA_TUPLE_REPLY)?,
        status: 0,
        tcp_state: None,
        timeout: None,
        mark: 0,
        zone: 0,
        id: None,
        original_counters: None,
        reply_counters: None,
    };
    for (kind, value) in attributes(attrs) {
        match kind {
            CTA_STATUS => entry.status = be32(value)?,
            CTA_TIMEOUT => entry.timeout = be32(value),
            CTA_MARK => entry.mark = be32(value)?,
            CTA_ID => entry.id = be32(value),
            CTA_ZONE => entry.zone = be16(value)?,
            CTA_PROTOINFO => entry.tcp_state = tcp_state_of(value),
            CTA_COUNTERS_ORIG => entry.original_counters = counters_of(value),
            CTA_COUNTERS_REPLY => entry.reply_counters = counters_of(value),
            _ => {}
        }
    }
    Some(entry)
}

/// The tuple in a `CTA_TUPLE_*` nest, if it has both addresses and a protocol.
fn tuple_of(nest: &[u8]) -> Option<Tuple> {
    let (mut src, mut dst, mut protocol) = (None, None, None);
    let (mut src_port, mut dst_port) = (None, None);
    let (mut icmp_id, mut icmp_kind, mut icmp_code) = (None, None, None);
    for (kind, value) in attributes(nest) {
        match kind {
            CTA_TUPLE_IP => {
                for (k, v) in attributes(value) {
                    match k {
                        CTA_IP_V4_SRC | CTA_IP_V6_SRC => src = ip_of(v),
                        CTA_IP_V4_DST | CTA_IP_V6_DST => dst = ip_of(v),
                        _ => {}
                    }
                }
            }
            CTA_TUPLE_PROTO => {
                for (k, v) in attributes(value) {
                    match k {
                        CTA_PROTO_NUM => protocol = v.first().copied(),
                        CTA_PROTO_SRC_PORT => src_port = be16(v),
                        CTA_PROTO_DST_PORT => dst_port = be16(v),
                        CTA_PROTO_ICMP_ID | CTA_PROTO_ICMPV6_ID => icmp_id = be16(v),
                        CTA_PROTO_ICMP_TYPE | CTA_PROTO_ICMPV6_TYPE => icmp_kind = v.first(),
                        CTA_PROTO_ICMP_CODE | CTA_PROTO_ICMPV6_CODE => icmp_code = v.first(),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let icmp = match (icmp_id, icmp_kind, icmp_code) {
        (Some(id), Some(&kind), Some(&code)) => Some(Icmp { id, kind, code }),
        _ => None,
    };
    Some(Tuple {
        src: src?,
        dst: dst?,
        protocol: protocol?,
        src_port,
        dst_port,
        icmp,
    })
}

/// An address attribute: four bytes are IPv4, sixteen IPv6, anything else is broken.
fn ip_of(v: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(v) {
        return Some(Ipv4Addr::from(v4).into());
    }
    <[u8; 16]>::try_from(v)
        .ok()
        .map(|v6| Ipv6Addr::from(v6).into())
}

/// The TCP state in a `CTA_PROTOINFO` nest (other protocols have none here).
fn tcp_state_of(nest: &[u8]) -> Option<u8> {
    attributes(nest)
        .filter(|(k, _)| *k == CTA_PROTOINFO_TCP)
        .flat_map(|(_, tcp)| attributes(tcp))
        .find(|(k, _)| *k == CTA_PROTOINFO_TCP_STATE)
        .and_then(|(_, v)| v.first().copied())
}

/// The counters in a `CTA_COUNTERS_*` nest, if it holds both.
fn counters_of(nest: &[u8]) -> Option<Counters> {
    let (mut packets, mut bytes) = (None, None);
    for (kind, value) in attributes(nest) {
        match kind {
            CTA_COUNTERS_PACKETS => packets = be64(value),
            CTA_COUNTERS_BYTES => bytes = be64(value),
            CTA_COUNTERS32_PACKETS => packets = be32(value).map(u64::from),
            CTA_COUNTERS32_BYTES => bytes = be32(value).map(u64::from),
            _ => {}
        }
    }
    Some(Counters {
        packets: packets?,
        bytes: bytes?,
    })
}

fn be16(v: &[u8]) -> Option<u16> {
    v.try_into().ok().map(u16::from_be_bytes)
}

fn be32(v: &[u8]) -> Option<u32> {
    v.try_into().ok().map(u32::from_be_bytes)
}

fn be64(v: &[u8]) -> Option<u64> {
    v.try_into().ok().map(u64::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A netlink attribute, built by hand rather than with [`Writer`] so the parser is
    /// checked against bytes laid out independently of the encoder.
    fn attr(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(payload);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out
    }

    fn nested(kind: u16, parts: &[Vec<u8>]) -> Vec<u8> {
        attr(kind | NLA_F_NESTED, &parts.concat())
    }

    /// A whole message: nlmsghdr, nfgenmsg, then `attrs`.
    fn message(kind: u16, seq: u32, family: u8, attrs: &[Vec<u8>]) -> Vec<u8> {
        let body = attrs.concat();
        let len = NLMSG_HDRLEN + NFGENMSG_LEN + body.len();
        let mut out = Vec::new();
        out.extend_from_slice(&(len as u32).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(&0x2u16.to_ne_bytes()); // NLM_F_MULTI
        out.extend_from_slice(&seq.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        out.extend_from_slice(&[family, 0, 0, 0]);
        out.extend_from_slice(&body);
        out
    }

    const CT_NEW: u16 = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW;

    fn tuple_attr(kind: u16, src: IpAddr, dst: IpAddr, proto: &[Vec<u8>]) -> Vec<u8> {
        let ip = |k4, k6, a: IpAddr| match a {
            IpAddr::V4(a) => attr(k4, &a.octets()),
            IpAddr::V6(a) => attr(k6, &a.octets()),
        };
        nested(
            kind,
            &[
                nested(
                    CTA_TUPLE_IP,
                    &[
                        ip(CTA_IP_V4_SRC, CTA_IP_V6_SRC, src),
                        ip(CTA_IP_V4_DST, CTA_IP_V6_DST, dst),
                    ],
                ),
                nested(CTA_TUPLE_PROTO, proto),
            ],
        )
    }

    fn ports(protocol: u8, src: u16, dst: u16) -> Vec<Vec<u8>> {
        vec![
            attr(CTA_PROTO_NUM, &[protocol]),
            attr(CTA_PROTO_SRC_PORT, &src.to_be_bytes()),
            attr(CTA_PROTO_DST_PORT, &dst.to_be_bytes()),
        ]
    }

    fn counters(packets: u64, bytes: u64) -> Vec<Vec<u8>> {
        vec![
            attr(CTA_COUNTERS_PACKETS, &packets.to_be_bytes()),
            attr(CTA_COUNTERS_BYTES, &bytes.to_be_bytes()),
        ]
    }

    /// A published port: 192.0.2.7:40000 → host 198.51.100.1:8080, translated to the
    /// container 10.1.0.2:80, which replies to the client.
    fn dnat_tcp_message() -> Vec<u8> {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let protoinfo = nested(
            CTA_PROTOINFO,
            &[nested(
                CTA_PROTOINFO_TCP,
                &[
                    attr(CTA_PROTOINFO_TCP_STATE, &[TCP_CONNTRACK_ESTABLISHED]),
                    attr(2, &[7]), // CTA_PROTOINFO_TCP_WSCALE_ORIGINAL, not read
                ],
            )],
        );
        message(
            CT_NEW,
            5,
            NFPROTO_IPV4,
            &[
                tuple_attr(
                    CTA_TUPLE_ORIG,
                    ip("192.0.2.7"),
                    ip("198.51.100.1"),
                    &ports(6, 40000, 8080),
                ),
                tuple_attr(
                    CTA_TUPLE_REPLY,
                    ip("10.1.0.2"),
                    ip("192.0.2.7"),
                    &ports(6, 80, 40000),
                ),
                attr(
                    CTA_STATUS,
                    &(IPS_DST_NAT | IPS_SEEN_REPLY | 0x8).to_be_bytes(),
                ),
                attr(CTA_TIMEOUT, &431_999u32.to_be_bytes()),
                attr(CTA_MARK, &0x10u32.to_be_bytes()),
                nested(CTA_COUNTERS_ORIG, &counters(3, 180)),
                nested(CTA_COUNTERS_REPLY, &counters(2, 120)),
                attr(11, &1u32.to_be_bytes()), // CTA_USE, not read
                attr(CTA_ID, &0xdead_beefu32.to_be_bytes()),
                protoinfo,
            ],
        )
    }

    fn udp6_message() -> Vec<u8> {
        let (a, b) = ("fd00::2".parse().unwrap(), "fd00::1".parse().unwrap());
        message(
            CT_NEW,
            5,
            NFPROTO_IPV6,
            &[
                tuple_attr(CTA_TUPLE_ORIG, a, b, &ports(17, 5353, 53)),
                tuple_attr(CTA_TUPLE_REPLY, b, a, &ports(17, 53, 5353)),
                attr(CTA_STATUS, &IPS_SEEN_REPLY.to_be_bytes()),
                attr(CTA_TIMEOUT, &30u32.to_be_bytes()),
                attr(CTA_ZONE, &7u16.to_be_bytes()),
            ],
        )
    }

    #[test]
    fn reads_a_dnat_tcp_entry_with_counters() {
        let entries = parse_entries(&dnat_tcp_message());
        assert_eq!(entries.len(), 1);
        let e = &entries[0];
        let tuple =
            |s: &str, d: &str| Tuple::tcp(s.parse::<SocketAddr>().unwrap(), d.parse().unwrap());
        assert_eq!(e.original, tuple("192.0.2.7:40000", "198.51.100.1:8080"));
        assert_eq!(e.reply, tuple("10.1.0.2:80", "192.0.2.7:40000"));
        assert!(e.is_dnat());
        assert!(!e.is_snat());
        assert_eq!(e.tcp_state, Some(TCP_CONNTRACK_ESTABLISHED));
        assert_eq!(e.tcp_state_name(), Some("ESTABLISHED"));
        assert_eq!(e.protocol_name(), "tcp");
        assert_eq!(e.timeout, Some(431_999));
        assert_eq!((e.mark, e.zone, e.id), (0x10, 0, Some(0xdead_beef)));
        let c = |packets, bytes| Some(Counters { packets, bytes });
        assert_eq!(e.original_counters, c(3, 180));
        assert_eq!(e.reply_counters, c(2, 120));
        assert!(e.involves("10.1.0.2".parse().unwrap()));
        assert!(e.involves("198.51.100.1".parse().unwrap()));
        assert!(!e.involves("10.1.0.3".parse().unwrap()));
    }

    #[test]
    fn reads_an_ipv6_udp_entry_and_the_rest_of_a_datagram() {
        let done = {
            let mut m = message(NLMSG_DONE, 5, 0, &[]);
            m.extend_from_slice(&0u32.to_ne_bytes());
            let len = m.len() as u32;
            m[0..4].copy_from_slice(&len.to_ne_bytes());
            m
        };
        let datagram = [udp6_message(), dnat_tcp_message(), done].concat();
        let entries = parse_entries(&datagram);
        assert_eq!(entries.len(), 2);
        let e = &entries[0];
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(
            e.original,
            Tuple::udp(addr("[fd00::2]:5353"), addr("[fd00::1]:53"))
        );
        assert_eq!(
            e.reply,
            Tuple::udp(addr("[fd00::1]:53"), addr("[fd00::2]:5353"))
        );
        assert_eq!(e.protocol_name(), "udp");
        assert_eq!((e.tcp_state, e.tcp_state_name()), (None, None));
        assert_eq!((e.zone, e.timeout, e.id), (7, Some(30), None));
        assert_eq!((e.original_counters, e.reply_counters), (None, None));
        assert!(!e.is_dnat() && !e.is_snat());
        assert!(matches!(
            frames(&datagram).last(),
            Some(Frame::Done { seq: 5 })
        ));
    }

    #[test]
    fn reads_icmp_ids_instead_of_ports() {
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let icmp = |kind| {
            vec![
                attr(CTA_PROTO_NUM, &[IPPROTO_ICMP]),
                attr(CTA_PROTO_ICMP_ID, &0x1234u16.to_be_bytes()),
                attr(CTA_PROTO_ICMP_TYPE, &[kind]),
                attr(CTA_PROTO_ICMP_CODE, &[0]),
            ]
        };
        let m = message(
            CT_NEW,
            1,
            NFPROTO_IPV4,
            &[
                tuple_attr(CTA_TUPLE_ORIG, a, b, &icmp(8)),
                tuple_attr(CTA_TUPLE_REPLY, b, a, &icmp(0)),
            ],
        );
        let e = &parse_entries(&m)[0];
        assert_eq!(e.protocol_name(), "icmp");
        assert_eq!((e.original.src_port, e.original.dst_port), (None, None));
        let echo = Icmp {
            id: 0x1234,
            kind: 8,
            code: 0,
        };
        assert_eq!(e.original.icmp, Some(echo));
    }

    #[test]
    fn broken_messages_are_skipped_without_panic() {
        let whole = dnat_tcp_message();
        // Cut anywhere: the message length then overruns the datagram, which ends the walk.
        for cut in 0..whole.len() {
            assert!(parse_entries(&whole[..cut]).is_empty(), "cut at {cut}");
        }
        // An entry whose header says it is shorter than its tuples: no reply tuple, no entry.
        let mut short = whole.clone();
        let tuple_len = u16::from_ne_bytes([short[20], short[21]]) as usize;
        let len = (NLMSG_HDRLEN + NFGENMSG_LEN + tuple_len) as u32;
        short.truncate(len as usize);
        short[0..4].copy_from_slice(&len.to_ne_bytes());
        assert!(parse_entries(&short).is_empty());
        // A status of the wrong width makes the entry unreadable; the next one still counts.
        let bad_status = message(
            CT_NEW,
            1,
            NFPROTO_IPV6,
            &[
                tuple_attr(
                    CTA_TUPLE_ORIG,
                    Ipv6Addr::LOCALHOST.into(),
                    Ipv6Addr::LOCALHOST.into(),
                    &ports(17, 1, 2),
                ),
                tuple_attr(
                    CTA_TUPLE_REPLY,
                    Ipv6Addr::LOCALHOST.into(),
                    Ipv6Addr::LOCALHOST.into(),
                    &ports(17, 2, 1),
                ),
                attr(CTA_STATUS, &[1, 2]),
            ],
        );
        // A five-byte address, and an attribute whose length runs past its nest.
        let bad_addr = message(
            CT_NEW,
            1,
            NFPROTO_IPV4,
            &[nested(
                CTA_TUPLE_ORIG,
                &[nested(CTA_TUPLE_IP, &[attr(CTA_IP_V4_SRC, &[1; 5])])],
            )],
        );
        let mut overrun = message(CT_NEW, 1, NFPROTO_IPV4, &[attr(CTA_STATUS, &[0; 4])]);
        overrun[NLMSG_HDRLEN + NFGENMSG_LEN] = 200;
        let garbage = vec![0xff; 64];
        let datagram = [bad_status, bad_addr, overrun, whole, garbage].concat();
        assert_eq!(parse_entries(&datagram).len(), 1);
        // A message from another subsystem (nf_tables) is not an entry.
        let mut other = dnat_tcp_message();
        other[5] = 10;
        assert!(parse_entries(&other).is_empty());
    }

    #[test]
    fn errors_and_acks_carry_their_errno() {
        let mut m = message(NLMSG_ERROR, 9, 0, &[]);
        m.truncate(NLMSG_HDRLEN);
        m.extend_from_slice(&(-libc::ENOENT).to_ne_bytes());
        m.extend_from_slice(&[0; 16]); // the request's header, echoed
        let len = m.len() as u32;
        m[0..4].copy_from_slice(&len.to_ne_bytes());
        assert!(matches!(
            frames(&m).next(),
            Some(Frame::Ack {
                seq: 9,
                errno: libc::ENOENT
            })
        ));
    }

    #[test]
    fn delete_request_names_the_tuple_and_zone() {
        let t = Tuple::tcp(
            "127.0.0.1:40000".parse().unwrap(),
            "127.0.0.1:80".parse().unwrap(),
        );
        let mut w = Writer::default();
        w.begin_message(
            (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE,
            NLM_F_REQUEST | NLM_F_ACK,
            3,
            NFPROTO_IPV4,
            0,
        );
        put_delete(&mut w, &t, 2);
        w.end_message();
        let lo = IpAddr::from(Ipv4Addr::LOCALHOST);
        let expected = [
            tuple_attr(CTA_TUPLE_ORIG, lo, lo, &ports(6, 40000, 80)),
            attr(CTA_ZONE, &2u16.to_be_bytes()),
        ]
        .concat();
        let b = w.bytes();
        assert_eq!(&b[NLMSG_HDRLEN + NFGENMSG_LEN..], &expected[..]);
        assert_eq!(u16::from_ne_bytes([b[4], b[5]]), 0x0102);
        assert_eq!(b[NLMSG_HDRLEN], NFPROTO_IPV4);
    }

    #[test]
    fn tcp_states_follow_the_kernel_enum() {
        let mut e = parse_entries(&dnat_tcp_message()).remove(0);
        for (state, name) in [
            (1, "SYN_SENT"),
            (7, "TIME_WAIT"),
            (8, "CLOSE"),
            (9, "SYN_SENT2"),
        ] {
            e.tcp_state = Some(state);
            assert_eq!(e.tcp_state_name(), Some(name));
        }
        e.tcp_state = Some(10);
        assert_eq!(e.tcp_state_name(), None);
        assert_eq!(
            i64::from(NFNL_SUBSYS_CTNETLINK),
            libc::NFNL_SUBSYS_CTNETLINK as i64
        );
    }

    #[test]
    fn mixed_family_tuples_are_refused_before_sending() {
        let t = Tuple::tcp("127.0.0.1:1".parse().unwrap(), "[::1]:2".parse().unwrap());
        assert_eq!(t.family(), None);
        let err = delete(&t, 0).unwrap_err();
        assert_eq!(err.errno(), None);
        assert!(err.to_string().contains("mixed IPv4 and IPv6"), "{err}");
    }
}
