//! A synchronous rtnetlink socket.
//!
//! One socket per operation, opened in the network namespace it should act on (a netlink
//! socket belongs to the namespace of the thread that created it). Requests are pipelined:
//! several messages go out in one `sendmsg` and their acknowledgements are collected
//! afterwards, so a whole container set-up costs one round trip.

use std::io;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::error::{Error, Result};

/// A netlink socket of `protocol` in the calling thread's network namespace, bound to a
/// port id the kernel picks; `what` names it in errors.
pub(crate) fn bound_socket(protocol: isize, what: &str) -> Result<Socket> {
    let mut socket = Socket::new(protocol).map_err(|e| Error::io(format!("open {what}"), e))?;
    socket
        .bind_auto()
        .map_err(|e| Error::io(format!("bind {what}"), e))?;
    Ok(socket)
}

/// A netlink socket of `protocol`, bound and connected to the kernel, for requests.
/// Public for the other netlink families ctnet speaks (nf_tables, in `ctnet-nft`).
pub fn kernel_socket(protocol: isize, what: &str) -> Result<Socket> {
    let socket = bound_socket(protocol, what)?;
    socket
        .connect(&SocketAddr::new(0, 0))
        .map_err(|e| Error::io(format!("connect {what}"), e))?;
    Ok(socket)
}

/// Appends one rtnetlink message, with its header, to `buf`: how every request this
/// crate sends is framed (several in one buffer make one pipelined `sendmsg`).
pub(crate) fn encode_into(buf: &mut Vec<u8>, message: RouteNetlinkMessage, flags: u16, seq: u32) {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
    packet.finalize();
    let start = buf.len();
    buf.resize(start + packet.buffer_len(), 0);
    packet.serialize(&mut buf[start..]);
}

/// A request together with a description used in error messages.
pub struct Request {
    /// The message to send.
    pub message: RouteNetlinkMessage,
    /// Extra `NLM_F_*` flags (`NLM_F_REQUEST` and `NLM_F_ACK` are always set).
    pub flags: u16,
    /// What the request does, in words, for errors.
    pub op: String,
}

impl Request {
    /// A request with the given flags and description.
    pub fn new(message: RouteNetlinkMessage, flags: u16, op: impl Into<String>) -> Self {
        Request {
            message,
            flags,
            op: op.into(),
        }
    }
}

/// Room for one reply datagram. The kernel sizes its dump datagrams by the reader's
/// buffer, up to 32 KiB; a single reply is at most a few KiB.
const RECEIVE_BYTES: usize = 64 * 1024;

/// An rtnetlink socket bound to the network namespace it was opened in.
pub struct RtSocket {
    socket: Socket,
    next_seq: u32,
    buf: Vec<u8>,
    /// The last datagram received; its capacity is reserved once, so a receive is one
    /// `recv` into memory already there.
    received: Vec<u8>,
}

impl RtSocket {
    /// Opens a socket in the calling thread's current network namespace.
    pub fn open() -> Result<Self> {
        let socket = kernel_socket(NETLINK_ROUTE, "rtnetlink socket")?;
        // Strict checking makes the kernel honour filters in dump requests (link by name).
        let _ = socket.set_netlink_get_strict_chk(true);
        Ok(RtSocket {
            socket,
            next_seq: 1,
            buf: Vec::with_capacity(8192),
            received: Vec::with_capacity(RECEIVE_BYTES),
        })
    }

    /// The cookie of the network namespace this socket belongs to (see
    /// [`crate::netns`]): free to ask of a socket opened inside a container anyway.
    pub fn netns_cookie(&self) -> Result<u64> {
        use std::os::fd::{AsRawFd, BorrowedFd};
        // SAFETY: the descriptor stays open for as long as `self.socket` lives, which
        // outlasts this borrow.
        let fd = unsafe { BorrowedFd::borrow_raw(self.socket.as_raw_fd()) };
        crate::netns::socket_netns_cookie(fd)
    }

    /// Sends one request and waits for its acknowledgement.
    pub fn execute(&mut self, request: Request) -> Result<()> {
        self.execute_all(vec![request])
    }

    /// Sends all requests in one `sendmsg`, then collects every acknowledgement.
    ///
    /// The kernel handles them in order. The first failure is returned, after the
    /// remaining acknowledgements have been drained so the socket stays usable.
    pub fn execute_all(&mut self, requests: Vec<Request>) -> Result<()> {
        if requests.is_empty() {
            return Ok(());
        }
        let first_seq = self.next_seq;
        let mut ops = Vec::with_capacity(requests.len());
        self.buf.clear();
        for request in requests {
            let seq = self.take_seq();
            self.append(
                request.message,
                request.flags | NLM_F_REQUEST | NLM_F_ACK,
                seq,
            );
            ops.push(request.op);
        }
        self.send_buf(&ops[0])?;
        let mut pending = ops.len();
        let mut first_error: Option<Error> = None;
        while pending > 0 {
            let messages = self.receive(&ops[0])?;
            for (seq, payload) in messages {
                let index = seq.wrapping_sub(first_seq) as usize;
                if index >= ops.len() {
                    continue; // a stale reply from an earlier request on this socket
                }
                if let NetlinkPayload::Error(err) = payload {
                    pending -= 1;
                    if let Some(code) = err.code {
                        if first_error.is_none() {
                            first_error = Some(Error::Netlink {
                                op: ops[index].clone(),
                                source: io::Error::from_raw_os_error(-code.get()),
                            });
                        }
                    }
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Sends a dump request and returns every message of the reply.
    pub fn dump(
        &mut self,
        message: RouteNetlinkMessage,
        op: &str,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        let seq = self.take_seq();
        self.buf.clear();
        self.append(message, NLM_F_REQUEST | NLM_F_DUMP, seq);
        self.send_buf(op)?;
        let mut out = Vec::new();
        loop {
            for (reply_seq, payload) in self.receive(op)? {
                if reply_seq != seq {
                    continue;
                }
                match payload {
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(err) => {
                        let code = err.code.map_or(0, |c| c.get());
                        return Err(Error::Netlink {
                            op: op.to_string(),
                            source: io::Error::from_raw_os_error(-code),
                        });
                    }
                    _ => {}
                }
            }
        }
    }

    /// Sends a request that has exactly one reply message (a `GET` by key).
    ///
    /// Returns `Ok(None)` when the kernel says the object does not exist.
    pub fn get(
        &mut self,
        message: RouteNetlinkMessage,
        op: &str,
    ) -> Result<Option<RouteNetlinkMessage>> {
        self.get_with(message, op, |bytes| {
            let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes).map_err(|e| {
                Error::Protocol {
                    op: op.to_string(),
                    detail: e.to_string(),
                }
            })?;
            match msg.payload {
                NetlinkPayload::InnerMessage(m) => Ok(Some(m)),
                _ => Ok(None),
            }
        })
        .map(Option::flatten)
    }

    /// Like [`RtSocket::get`], but hands the reply's raw bytes (netlink header first) to
    /// `read` instead of decoding every attribute: for callers that need one field of a
    /// large reply, such as a link's index.
    pub fn get_with<T>(
        &mut self,
        message: RouteNetlinkMessage,
        op: &str,
        read: impl FnOnce(&[u8]) -> Result<T>,
    ) -> Result<Option<T>> {
        let seq = self.take_seq();
        self.buf.clear();
        self.append(message, NLM_F_REQUEST, seq);
        self.send_buf(op)?;
        loop {
            self.receive_datagram(op)?;
            for (offset, len) in messages(&self.received) {
                let bytes = &self.received[offset..offset + len];
                if header_u32(bytes, 8) != Some(seq) {
                    continue; // a stale reply from an earlier request on this socket
                }
                if header_u16(bytes, 4) == Some(NLMSG_ERROR) {
                    let code = header_u32(bytes, 16).map_or(0, |c| -(c as i32));
                    if matches!(code, libc::ENODEV | libc::ENOENT | libc::ESRCH) {
                        return Ok(None);
                    }
                    return Err(Error::Netlink {
                        op: op.to_string(),
                        source: io::Error::from_raw_os_error(code),
                    });
                }
                return read(bytes).map(Some);
            }
        }
    }

    fn take_seq(&mut self) -> u32 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        seq
    }

    fn append(&mut self, message: RouteNetlinkMessage, flags: u16, seq: u32) {
        encode_into(&mut self.buf, message, flags, seq);
    }

    fn send_buf(&mut self, op: &str) -> Result<()> {
        self.socket
            .send(&self.buf, 0)
            .map_err(|e| Error::io(format!("{op}: send netlink request"), e))?;
        Ok(())
    }

    /// Receives one datagram into `self.received`.
    fn receive_datagram(&mut self, op: &str) -> Result<()> {
        self.received.clear();
        let size = self
            .socket
            .recv(&mut self.received, libc::MSG_TRUNC)
            .map_err(|e| Error::io(format!("{op}: receive netlink reply"), e))?;
        if size > self.received.len() {
            return Err(Error::Protocol {
                op: op.to_string(),
                detail: format!("a {size}-byte reply overran the {RECEIVE_BYTES}-byte buffer"),
            });
        }
        Ok(())
    }

    fn receive(&mut self, op: &str) -> Result<Vec<(u32, NetlinkPayload<RouteNetlinkMessage>)>> {
        self.receive_datagram(op)?;
        let mut out = Vec::new();
        for (offset, len) in messages(&self.received) {
            let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(
                &self.received[offset..offset + len],
            )
            .map_err(|e| Error::Protocol {
                op: op.to_string(),
                detail: e.to_string(),
            })?;
            out.push((msg.header.sequence_number, msg.payload));
        }
        Ok(out)
    }
}

/// `NLMSG_ERROR`, the type of an acknowledgement or a refusal.
pub const NLMSG_ERROR: u16 = libc::NLMSG_ERROR as u16;

/// The `(offset, length)` of each whole netlink message in a datagram. It never
/// panics or allocates (the deleting child in `reclaim` relies on that). Every netlink
/// family's replies are walked with it, nf_tables' included.
pub fn messages(data: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut offset = 0;
    std::iter::from_fn(move || {
        let len = header_u32(data.get(offset..)?, 0)? as usize;
        if len < 16 || offset + len > data.len() {
            return None;
        }
        let here = offset;
        offset += (len + 3) & !3;
        Some((here, len))
    })
}

/// The native-endian u32 at `at` of a message, if it is long enough.
pub fn header_u32(message: &[u8], at: usize) -> Option<u32> {
    let bytes = message.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes(bytes.try_into().ok()?))
}

/// The native-endian u16 at `at` of a message, if it is long enough.
pub fn header_u16(message: &[u8], at: usize) -> Option<u16> {
    let bytes = message.get(at..at.checked_add(2)?)?;
    Some(u16::from_ne_bytes(bytes.try_into().ok()?))
}
