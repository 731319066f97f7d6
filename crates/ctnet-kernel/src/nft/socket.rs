//! The `NETLINK_NETFILTER` socket that commits batches and answers queries.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket};

use super::batch::{Batch, Key};
use super::wire::{attr, attributes, msg, Writer, NFNL_SUBSYS_NFTABLES, UDATA_COMMENT};
use super::Family;
use crate::error::{Error, Result};
use crate::netlink::kernel_socket;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_HDRLEN: usize = 16;
const NFGENMSG_LEN: usize = 4;

/// A netfilter netlink socket in the calling thread's network namespace.
pub struct NftSocket {
    socket: Socket,
    next_seq: u32,
}

impl AsFd for NftSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the descriptor is open for as long as `self.socket` lives, which
        // outlives the returned borrow.
        unsafe { BorrowedFd::borrow_raw(self.socket.as_raw_fd()) }
    }
}

impl NftSocket {
    /// Opens a socket in the calling thread's current network namespace.
    pub fn open() -> Result<Self> {
        let socket = kernel_socket(NETLINK_NETFILTER, "nf_tables netlink socket")?;
        set_receive_timeout(&socket, 10)?;
        Ok(NftSocket {
            socket,
            next_seq: 1,
        })
    }

    /// A new, empty batch for this socket.
    pub fn batch(&mut self) -> Batch {
        Batch::new(self.next_seq)
    }

    /// Sends the batch and waits for the kernel's verdict on each change.
    ///
    /// The kernel applies all of it or none of it. On failure the error names the first
    /// change the kernel refused.
    pub fn commit(&mut self, mut batch: Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let end_seq = batch.seal();
        self.next_seq = end_seq.wrapping_add(1);
        // The kernel takes a batch in one datagram, which must fit the send buffer.
        let len = batch.writer.bytes().len();
        if len > DEFAULT_SNDBUF_SAFE {
            set_send_buffer(&self.socket, len + 64 * 1024)?;
        }
        self.socket
            .send(batch.writer.bytes(), 0)
            .map_err(|e| Error::io("send nf_tables batch", e))?;

        let mut answered = vec![false; batch.len()];
        let mut errors: Vec<Option<i32>> = vec![None; batch.len()];
        let mut batch_error = None;
        while batch_error.is_none() && answered.iter().any(|a| !a) {
            for reply in self.receive("commit nf_tables batch")? {
                let Reply::Ack { seq, errno } = reply else {
                    continue;
                };
                let index = seq.wrapping_sub(batch.seq_of(0)) as usize;
                if index < batch.len() {
                    answered[index] = true;
                    if errno != 0 {
                        errors[index] = Some(errno);
                    }
                } else if (seq == batch.first_seq || seq == end_seq) && errno != 0 {
                    // The kernel refused the batch as a whole (permissions, framing).
                    batch_error = Some(errno);
                }
            }
        }
        if let Some(errno) = batch_error {
            return Err(Error::Netlink {
                op: "commit nf_tables batch".into(),
                source: io::Error::from_raw_os_error(errno),
            });
        }
        match errors.iter().position(Option::is_some) {
            Some(index) => Err(Error::Netlink {
                op: batch.ops[index].clone(),
                source: io::Error::from_raw_os_error(errors[index].unwrap_or(libc::EIO)),
            }),
            None => Ok(()),
        }
    }

    /// The comment of a table, `Some("")` if it has none, `None` if there is no such table.
    pub fn table_comment(&mut self, family: Family, name: &str) -> Result<Option<String>> {
        let op = format!("look up table {family} {name}");
        let seq = self.take_seq();
        let mut w = Writer::default();
        w.begin_message(
            (NFNL_SUBSYS_NFTABLES << 8) | msg::GETTABLE,
            0x1, // NLM_F_REQUEST
            seq,
            family.code(),
            0,
        );
        w.put_str(attr::TABLE_NAME, name);
        w.end_message();
        self.socket
            .send(w.bytes(), 0)
            .map_err(|e| Error::io(format!("{op}: send"), e))?;
        loop {
            for reply in self.receive(&op)? {
                match reply {
                    Reply::Message { seq: s, body, .. } if s == seq => {
                        return Ok(Some(comment_of(&body)));
                    }
                    Reply::Ack { seq: s, errno } if s == seq => {
                        if errno == libc::ENOENT {
                            return Ok(None);
                        }
                        return Err(Error::Netlink {
                            op,
                            source: io::Error::from_raw_os_error(errno),
                        });
                    }
                    _ => {}
                }
            }
        }
    }

    /// The value a map holds for `key` (`Some(vec![])` for a plain set's element), or
    /// `None` when the element is not there.
    pub fn get_element(
        &mut self,
        family: Family,
        table: &str,
        set: &str,
        key: &Key,
    ) -> Result<Option<Vec<u8>>> {
        let op = format!("look up an element of set {family} {table} {set}");
        let seq = self.take_seq();
        let mut w = Writer::default();
        w.begin_message(
            (NFNL_SUBSYS_NFTABLES << 8) | msg::GETSETELEM,
            0x1, // NLM_F_REQUEST
            seq,
            family.code(),
            0,
        );
        w.put_str(attr::SET_ELEM_LIST_TABLE, table);
        w.put_str(attr::SET_ELEM_LIST_SET, set);
        w.nest(attr::SET_ELEM_LIST_ELEMENTS, |w| {
            w.nest(attr::LIST_ELEM, |w| {
                w.put_data_value(attr::SET_ELEM_KEY, key.as_bytes());
            });
        });
        w.end_message();
        self.socket
            .send(w.bytes(), 0)
            .map_err(|e| Error::io(format!("{op}: send"), e))?;
        loop {
            for reply in self.receive(&op)? {
                match reply {
                    Reply::Message { seq: s, body, .. } if s == seq => {
                        return Ok(Some(element_data(&body)));
                    }
                    Reply::Ack { seq: s, errno } if s == seq => {
                        if errno == libc::ENOENT {
                            return Ok(None);
                        }
                        return Err(Error::Netlink {
                            op,
                            source: io::Error::from_raw_os_error(errno),
                        });
                    }
                    _ => {}
                }
            }
        }
    }

    /// Every chain of every table and family, as the kernel lists them.
    pub fn list_chains(&mut self) -> Result<Vec<ChainInfo>> {
        let op = "list nf_tables chains";
        let seq = self.take_seq();
        let mut w = Writer::default();
        w.begin_message(
            (NFNL_SUBSYS_NFTABLES << 8) | msg::GETCHAIN,
            0x1 | 0x300, // NLM_F_REQUEST | NLM_F_DUMP
            seq,
            0, // NFPROTO_UNSPEC: every family
            0,
        );
        w.end_message();
        self.socket
            .send(w.bytes(), 0)
            .map_err(|e| Error::io(format!("{op}: send"), e))?;
        let mut chains = Vec::new();
        loop {
            for reply in self.receive(op)? {
                match reply {
                    Reply::Message {
                        seq: s,
                        family,
                        body,
                    } if s == seq => chains.push(chain_of(family, &body)),
                    Reply::Done => return Ok(chains),
                    Reply::Ack { seq: s, errno } if s == seq && errno != 0 => {
                        return Err(Error::Netlink {
                            op: op.into(),
                            source: io::Error::from_raw_os_error(errno),
                        })
                    }
                    _ => {}
                }
            }
        }
    }

    fn take_seq(&mut self) -> u32 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        seq
    }

    fn receive(&mut self, op: &str) -> Result<Vec<Reply>> {
        let (data, _) = self
            .socket
            .recv_from_full()
            .map_err(|e| Error::io(format!("{op}: receive netlink reply"), e))?;
        parse_replies(&data).map_err(|detail| Error::Protocol {
            op: op.to_string(),
            detail,
        })
    }
}

/// A reply message, reduced to what ctnet reads.
enum Reply {
    /// An acknowledgement; `errno` is 0 for success.
    Ack { seq: u32, errno: i32 },
    /// An object: its family (from `nfgenmsg`) and the attributes after it.
    Message { seq: u32, family: u8, body: Vec<u8> },
    /// End of a dump; no query ctnet makes yet is a dump.
    Done,
}

fn parse_replies(data: &[u8]) -> std::result::Result<Vec<Reply>, String> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset + NLMSG_HDRLEN <= data.len() {
        let header = &data[offset..];
        let len = u32::from_ne_bytes(header[0..4].try_into().unwrap()) as usize;
        if len < NLMSG_HDRLEN || offset + len > data.len() {
            return Err(format!("truncated message of length {len}"));
        }
        let kind = u16::from_ne_bytes([header[4], header[5]]);
        let seq = u32::from_ne_bytes(header[8..12].try_into().unwrap());
        let payload = &header[NLMSG_HDRLEN..len];
        out.push(match kind {
            NLMSG_ERROR => {
                let code = payload
                    .get(0..4)
                    .ok_or("short error message")?
                    .try_into()
                    .map(i32::from_ne_bytes)
                    .map_err(|_| "short error message")?;
                Reply::Ack { seq, errno: -code }
            }
            NLMSG_DONE => Reply::Done,
            _ => Reply::Message {
                seq,
                family: payload.first().copied().unwrap_or(0),
                body: payload.get(NFGENMSG_LEN..).unwrap_or_default().to_vec(),
            },
        });
        offset += (len + 3) & !3;
    }
    Ok(out)
}

/// A chain as the kernel lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainInfo {
    /// The table's family, by nft's name (`ip`, `ip6`, `inet`, `bridge`, `arp`, `netdev`).
    pub family: &'static str,
    /// The table.
    pub table: String,
    /// The chain.
    pub name: String,
    /// For a base chain: the hook number (`NF_INET_*`) and priority.
    pub hook: Option<(u32, i32)>,
    /// For a base chain: the policy, true when it drops what no rule accepts.
    pub policy_drop: bool,
    /// For a base chain: `filter`, `nat` or `route`.
    pub kind: Option<String>,
}

fn family_name(code: u8) -> &'static str {
    match code {
        1 => "inet",
        2 => "ip",
        3 => "arp",
        5 => "netdev",
        7 => "bridge",
        10 => "ip6",
        _ => "unknown",
    }
}

fn chain_of(family: u8, attrs: &[u8]) -> ChainInfo {
    let text = |v: &[u8]| String::from_utf8_lossy(v.strip_suffix(&[0]).unwrap_or(v)).into_owned();
    let be32 = |v: &[u8]| v.try_into().map(u32::from_be_bytes).unwrap_or(0);
    let mut chain = ChainInfo {
        family: family_name(family),
        table: String::new(),
        name: String::new(),
        hook: None,
        policy_drop: false,
        kind: None,
    };
    for (kind, value) in attributes(attrs) {
        match kind {
            attr::CHAIN_TABLE => chain.table = text(value),
            attr::CHAIN_NAME => chain.name = text(value),
            attr::CHAIN_POLICY => chain.policy_drop = be32(value) == 0, // NF_DROP
            attr::CHAIN_TYPE => chain.kind = Some(text(value)),
            attr::CHAIN_HOOK => {
                let mut hook = (0, 0);
                for (k, v) in attributes(value) {
                    match k {
                        attr::HOOK_HOOKNUM => hook.0 = be32(v),
                        attr::HOOK_PRIORITY => hook.1 = be32(v) as i32,
                        _ => {}
                    }
                }
                chain.hook = Some(hook);
            }
            _ => {}
        }
    }
    chain
}

/// The data of the first element in a NEWSETELEM reply (empty for a plain set).
fn element_data(attrs: &[u8]) -> Vec<u8> {
    attributes(attrs)
        .filter(|(k, _)| *k == attr::SET_ELEM_LIST_ELEMENTS)
        .flat_map(|(_, list)| attributes(list))
        .flat_map(|(_, elem)| attributes(elem))
        .filter(|(k, _)| *k == attr::SET_ELEM_DATA)
        .flat_map(|(_, data)| attributes(data))
        .find(|(k, _)| *k == attr::DATA_VALUE)
        .map(|(_, v)| v.to_vec())
        .unwrap_or_default()
}

/// The comment stored in a table's user data, or "".
fn comment_of(table_attrs: &[u8]) -> String {
    let Some((_, udata)) = attributes(table_attrs).find(|(k, _)| *k == attr::TABLE_USERDATA) else {
        return String::new();
    };
    let mut rest = udata;
    while rest.len() >= 2 {
        let (kind, len) = (rest[0], rest[1] as usize);
        let Some(value) = rest.get(2..2 + len) else {
            break;
        };
        if kind == UDATA_COMMENT {
            let text = value.strip_suffix(&[0]).unwrap_or(value);
            return String::from_utf8_lossy(text).into_owned();
        }
        rest = &rest[2 + len..];
    }
    String::new()
}

/// Below this a batch fits the default socket send buffer (net.core.wmem_default).
const DEFAULT_SNDBUF_SAFE: usize = 128 * 1024;

fn set_send_buffer(socket: &Socket, bytes: usize) -> Result<()> {
    let size = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: the fd is a live socket owned by `socket`; the option value is an
    // initialised c_int that outlives the call, and its size is passed.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            // FORCE ignores net.core.wmem_max; ctnet runs with CAP_NET_ADMIN anyway.
            libc::SO_SNDBUFFORCE,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(Error::io(
            format!("grow the nf_tables socket's send buffer to {bytes} bytes for a large batch"),
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

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
            "set receive timeout on nf_tables socket",
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}
