//! The sockets of this network namespace that receive traffic for a port: TCP listeners
//! and bound, unconnected UDP sockets, from the socket diagnostics netlink interface
//! (`NETLINK_SOCK_DIAG`, what `ss -l` reads), with no child process. And, for an error
//! message, the processes holding a socket (from `/proc/*/fd`).
//!
//! ```text
//!  request (one per family and protocol, NLM_F_REQUEST | NLM_F_DUMP)
//!  ┌──────────────── nlmsghdr (16) ────────────────┐
//!  │ len 72 │ type SOCK_DIAG_BY_FAMILY (20) │ flags │ seq │ pid 0 │
//!  ├──────────────── inet_diag_req_v2 (56) ────────┤
//!  │ family AF_INET/AF_INET6 │ protocol TCP/UDP │ ext 0 │ pad │
//!  │ states: bit per TCP state (u32)                │  TCP: 1 << LISTEN (10)
//!  │ inet_diag_sockid (48): sport, dport (be16),    │  UDP: 1 << CLOSE (7),
//!  │   src[16], dst[16], if, cookie[2] — all zero   │  a bound, unconnected socket
//!  └────────────────────────────────────────────────┘
//!
//!  reply: one message per socket, then NLMSG_DONE (or NLMSG_ERROR)
//!  ┌──────────────── nlmsghdr (16) ────────────────┐
//!  ├──────────────── inet_diag_msg (72) ───────────┤
//!  │ 0 family │ 1 state │ 2 timer │ 3 retrans      │
//!  │ 4 sockid: 4 sport (be16) │ 6 dport │ 8 src[16] │ 24 dst[16] │ 40 if │ 44 cookie[2] │
//!  │ 52 expires │ 56 rqueue │ 60 wqueue │ 64 uid │ 68 inode                         │
//!  ├──────────────── attributes (rtattr) ──────────┤
//!  │ INET_DIAG_SKV6ONLY (11): u8, for AF_INET6 sockets                              │
//!  └────────────────────────────────────────────────┘
//! ```
//!
//! The structures are written and read byte by byte at the offsets above (all fields
//! native-endian except the ports and addresses, which are network order), so no
//! `unsafe` is needed. The kernel lists the sockets of the namespace the netlink socket
//! was opened in: the calling thread's.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_sys::protocols::NETLINK_SOCK_DIAG;

use crate::error::{Error, Result};
use crate::netlink::{header_u16, header_u32, kernel_socket, messages, NLMSG_ERROR};

/// `SOCK_DIAG_BY_FAMILY`, the request type of inet_diag's second version.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `NLMSG_DONE`: the end of a dump.
const NLMSG_DONE: u16 = 3;
/// `TCP_LISTEN` and `TCP_CLOSE` of the kernel's `enum tcp_state` (UDP reuses it).
const TCP_LISTEN: u32 = 10;
const TCP_CLOSE: u32 = 7;
/// `INET_DIAG_SKV6ONLY`: the socket's `IPV6_V6ONLY`.
const INET_DIAG_SKV6ONLY: u16 = 11;
/// Sizes of the headers drawn above.
const NLMSG_HDR: usize = 16;
const REQ_V2: usize = 56;
const DIAG_MSG: usize = 72;

/// A transport protocol whose sockets can be listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TCP: listening sockets.
    Tcp,
    /// UDP: bound sockets with no peer (the ones that receive from anyone).
    Udp,
}

impl Transport {
    fn protocol(self) -> u8 {
        match self {
            Transport::Tcp => libc::IPPROTO_TCP as u8,
            Transport::Udp => libc::IPPROTO_UDP as u8,
        }
    }

    fn states(self) -> u32 {
        match self {
            Transport::Tcp => 1 << TCP_LISTEN,
            Transport::Udp => 1 << TCP_CLOSE,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "TCP listening",
            Transport::Udp => "bound UDP",
        }
    }
}

/// A socket that receives traffic for a local port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// The protocol.
    pub transport: Transport,
    /// The local address it is bound to (`0.0.0.0` or `::` for every address).
    pub address: IpAddr,
    /// The local port.
    pub port: u16,
    /// An IPv6 socket that takes no IPv4 (`IPV6_V6ONLY`); false for IPv4 sockets.
    pub v6only: bool,
    /// The socket's inode number (`socket:[INODE]` in `/proc/PID/fd`).
    pub inode: u32,
    /// The owner's uid.
    pub uid: u32,
}

/// Every socket of `transport` in this namespace that receives traffic for a port, of
/// both families.
pub fn listeners(transport: Transport) -> Result<Vec<Listener>> {
    let op = format!("list {} sockets", transport.name());
    let mut socket = kernel_socket(NETLINK_SOCK_DIAG, "sock_diag socket")?;
    let mut out = Vec::new();
    for (seq, family) in [(1, libc::AF_INET as u8), (2, libc::AF_INET6 as u8)] {
        let request = request(family, transport, seq);
        socket
            .send(&request, 0)
            .map_err(|e| Error::io(format!("{op}: send"), e))?;
        dump(&mut socket, seq, &op, |msg| {
            if let Some(l) = parse(msg, transport) {
                out.push(l);
            }
        })?;
    }
    Ok(out)
}

/// The request drawn at the top of the file.
fn request(family: u8, transport: Transport, seq: u32) -> Vec<u8> {
    let len = NLMSG_HDR + REQ_V2;
    let mut buf = Vec::with_capacity(len);
    buf.extend_from_slice(&(len as u32).to_ne_bytes());
    buf.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel
    buf.extend_from_slice(&[family, transport.protocol(), 0, 0]);
    buf.extend_from_slice(&transport.states().to_ne_bytes());
    buf.resize(len, 0); // inet_diag_sockid: no filter
    buf
}

/// Reads the datagrams of one dump, handing each socket's message to `each`.
fn dump(
    socket: &mut netlink_sys::Socket,
    seq: u32,
    op: &str,
    mut each: impl FnMut(&[u8]),
) -> Result<()> {
    let mut received: Vec<u8> = Vec::with_capacity(64 * 1024);
    loop {
        received.clear();
        socket
            .recv(&mut received, 0)
            .map_err(|e| Error::io(format!("{op}: receive"), e))?;
        for (offset, len) in messages(&received) {
            let msg = &received[offset..offset + len];
            if header_u32(msg, 8) != Some(seq) {
                continue;
            }
            match header_u16(msg, 4) {
                Some(NLMSG_DONE) => return Ok(()),
                Some(NLMSG_ERROR) => {
                    let code = header_u32(msg, NLMSG_HDR).map_or(0, |c| -(c as i32));
                    return Err(Error::Netlink {
                        op: op.to_string(),
                        source: std::io::Error::from_raw_os_error(code),
                    });
                }
                Some(SOCK_DIAG_BY_FAMILY) => each(msg),
                _ => {}
            }
        }
        if received.is_empty() {
            return Err(Error::Protocol {
                op: op.to_string(),
                detail: "the dump ended without NLMSG_DONE".into(),
            });
        }
    }
}

/// One socket of a reply (netlink header first), or None when it is too short or binds
/// no port.
fn parse(msg: &[u8], transport: Transport) -> Option<Listener> {
    let body = msg.get(NLMSG_HDR..NLMSG_HDR + DIAG_MSG)?;
    let port = u16::from_be_bytes([body[4], body[5]]);
    let address = match i32::from(body[0]) {
        libc::AF_INET => IpAddr::V4(Ipv4Addr::new(body[8], body[9], body[10], body[11])),
        libc::AF_INET6 => {
            let octets: [u8; 16] = body[8..24].try_into().ok()?;
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        _ => return None,
    };
    let field = |at: usize| u32::from_ne_bytes(body[at..at + 4].try_into().expect("4 bytes"));
    let mut v6only = false;
    let mut at = NLMSG_HDR + DIAG_MSG;
    while let (Some(len), Some(kind)) = (header_u16(msg, at), header_u16(msg, at + 2)) {
        let len = usize::from(len);
        if len < 4 {
            break;
        }
        if kind & 0x3fff == INET_DIAG_SKV6ONLY {
            v6only = msg.get(at + 4).is_some_and(|b| *b != 0);
        }
        at += (len + 3) & !3;
    }
    (port != 0).then_some(Listener {
        transport,
        address,
        port,
        v6only,
        inode: field(68),
        uid: field(64),
    })
}

/// The processes holding socket `inode` open, as (pid, command name): found by reading
/// every `/proc/PID/fd` link, so meant for error messages, not for every operation. Those
/// this process may not look into are skipped.
pub fn socket_holders(inode: u32) -> Vec<(u32, String)> {
    let target = format!("socket:[{inode}]");
    let Ok(procs) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds
            .flatten()
            .any(|fd| fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == target.as_str()));
        if holds {
            let comm = fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            out.push((pid, comm.trim().to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_has_the_drawn_layout() {
        let r = request(libc::AF_INET6 as u8, Transport::Udp, 9);
        assert_eq!(r.len(), 72);
        assert_eq!(header_u32(&r, 0), Some(72));
        assert_eq!(header_u16(&r, 4), Some(20));
        assert_eq!(header_u32(&r, 8), Some(9));
        assert_eq!(&r[16..20], &[libc::AF_INET6 as u8, 17, 0, 0]);
        assert_eq!(header_u32(&r, 20), Some(1 << 7));
        assert!(r[24..].iter().all(|b| *b == 0));
    }

    #[test]
    fn a_reply_is_read_at_the_drawn_offsets() {
        let mut msg = vec![0u8; NLMSG_HDR + DIAG_MSG];
        let body = NLMSG_HDR;
        msg[body] = libc::AF_INET6 as u8;
        msg[body + 1] = TCP_LISTEN as u8;
        msg[body + 4..body + 6].copy_from_slice(&8500u16.to_be_bytes());
        let addr: Ipv6Addr = "2001:db8::1".parse().unwrap();
        msg[body + 8..body + 24].copy_from_slice(&addr.octets());
        msg[body + 64..body + 68].copy_from_slice(&1000u32.to_ne_bytes());
        msg[body + 68..body + 72].copy_from_slice(&4242u32.to_ne_bytes());
        // INET_DIAG_SKV6ONLY = 1, padded to 8 bytes.
        msg.extend_from_slice(&5u16.to_ne_bytes());
        msg.extend_from_slice(&INET_DIAG_SKV6ONLY.to_ne_bytes());
        msg.extend_from_slice(&[1, 0, 0, 0]);
        let l = parse(&msg, Transport::Tcp).unwrap();
        assert_eq!(
            l,
            Listener {
                transport: Transport::Tcp,
                address: IpAddr::V6(addr),
                port: 8500,
                v6only: true,
                inode: 4242,
                uid: 1000,
            }
        );
        // A socket with no port, and a truncated message, are not listeners.
        msg[body + 4..body + 6].copy_from_slice(&[0, 0]);
        assert_eq!(parse(&msg, Transport::Tcp), None);
        assert_eq!(parse(&msg[..40], Transport::Tcp), None);
    }
}
