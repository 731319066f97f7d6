//! nf_tables change notifications: what `nft monitor` reads, typed.
//!
//! ```text
//!  any process ── batch ──▶ nf_tables commit ──▶ NFNLGRP_NFTABLES multicast
//!                                                 │  one message per object changed:
//!                                                 │    NEWTABLE/DELTABLE, NEWCHAIN/DELCHAIN,
//!                                                 │    NEWRULE/DELRULE, NEWSET/DELSET,
//!                                                 │    NEWSETELEM/DELSETELEM, …
//!                                                 │  then one NEWGEN closing the batch:
//!                                                 │    generation id, pid and comm of the
//!                                                 ▼    committing task
//!                                        Monitor::receive → [Event], or Lost (ENOBUFS)
//! ```
//!
//! The kernel sends every message of one commit, then its NEWGEN, while it holds the
//! commit mutex of the namespace, so the messages between two NEWGENs are one batch and
//! the NEWGEN says who made it. When the receive buffer overflows the kernel drops
//! messages and the next receive fails with ENOBUFS; [`Received::Lost`] tells the caller
//! that it no longer knows what changed and must look at the ruleset itself.
//!
//! The pid in NEWGEN is the committing *thread's* id (`task_pid_nr(current)`) and the
//! name its `comm` (a thread's name when it has one, cut to 15 bytes).

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use netlink_sys::Socket;

use ctnet_kernel::netlink::{header_u16, messages};
use ctnet_kernel::{Error, Result};

use crate::abi::*;
use crate::multicast::{subscribe, text, wait_readable};
use crate::wire::attributes;
use crate::Family;

/// What kind of object a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// A table.
    Table,
    /// A chain.
    Chain,
    /// A rule.
    Rule,
    /// A set or map.
    Set,
    /// Elements of a set or map.
    SetElem,
    /// The end of a batch: a new generation of the ruleset.
    Gen,
    /// Something else (stateful objects, flowtables, a type a later kernel adds): its
    /// nf_tables message type.
    Other(u16),
}

/// Whether the object was made (or changed) or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    /// Added or updated.
    New,
    /// Deleted (or destroyed).
    Delete,
}

/// Who made a generation: what NFT_MSG_NEWGEN carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// The ruleset's generation id after the batch.
    pub id: u32,
    /// The committing thread's id (`NFTA_GEN_PROC_PID`).
    pub pid: u32,
    /// Its `comm` (`NFTA_GEN_PROC_NAME`), e.g. `nft`.
    pub proc_name: String,
}

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// What it is about.
    pub kind: ObjectKind,
    /// Made or removed.
    pub change: Change,
    /// The table's family; `None` for a generation or a family without a name here.
    pub family: Option<Family>,
    /// The table the object belongs to (or is); `None` for a generation.
    pub table: Option<String>,
    /// For [`ObjectKind::Gen`]: who made it.
    pub generation: Option<Generation>,
}

impl Event {
    /// True when the event is about table `name` of `family` or something in it.
    pub fn touches(&self, family: Family, name: &str) -> bool {
        self.family == Some(family) && self.table.as_deref() == Some(name)
    }
}

/// What one receive returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// Notifications, in the kernel's order (one datagram may hold many).
    Events(Vec<Event>),
    /// The kernel dropped notifications (the receive buffer overflowed, or a datagram
    /// was cut): anything may have changed.
    Lost,
    /// Nothing came within the timeout.
    Timeout,
}

/// A socket subscribed to nf_tables notifications in the calling thread's network
/// namespace.
pub struct Monitor {
    socket: Socket,
    buf: Vec<u8>,
}

/// Room for a burst (a `flush ruleset` of a large ruleset is one message per object)
/// before the kernel starts dropping; set with SO_RCVBUFFORCE, which CAP_NET_ADMIN
/// allows past net.core.rmem_max.
const RECEIVE_BUFFER: usize = 8 << 20;
/// One datagram: the kernel packs notifications into skbs of at most a page or so; a
/// larger buffer costs nothing and MSG_TRUNC says if one was ever cut.
const DATAGRAM_MAX: usize = 256 << 10;

impl Monitor {
    /// Opens the socket and joins the group. Notifications of commits after this call
    /// are received; nothing before it.
    pub fn open() -> Result<Self> {
        let socket = subscribe(
            NFNLGRP_NFTABLES,
            "NFNLGRP_NFTABLES",
            RECEIVE_BUFFER,
            "nf_tables notification socket",
        )?;
        Ok(Monitor {
            socket,
            buf: vec![0; DATAGRAM_MAX],
        })
    }

    /// Waits for the next datagram of notifications, at most `timeout` (`None`: for
    /// ever).
    pub fn receive(&mut self, timeout: Option<Duration>) -> Result<Received> {
        let fd = self.socket.as_raw_fd();
        if !wait_readable(fd, timeout, "nf_tables notifications")? {
            return Ok(Received::Timeout);
        }
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
                Some(libc::ENOBUFS) => Ok(Received::Lost),
                Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(Received::Events(Vec::new())),
                _ => Err(Error::io("receive nf_tables notifications", e)),
            };
        }
        let n = n as usize;
        if n > self.buf.len() {
            // MSG_TRUNC returns the datagram's real length: the rest is gone.
            return Ok(Received::Lost);
        }
        Ok(Received::Events(parse(&self.buf[..n])))
    }
}

impl AsRawFd for Monitor {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

/// The notifications in one datagram; messages of other subsystems are skipped.
pub fn parse(datagram: &[u8]) -> Vec<Event> {
    messages(datagram)
        .filter_map(|(offset, len)| event_of(&datagram[offset..offset + len]))
        .collect()
}

/// Where `nlmsghdr`'s type sits.
const NLMSG_TYPE_AT: usize = 4;

/// One whole message as an event, or `None` when it is not an nf_tables notification.
fn event_of(message: &[u8]) -> Option<Event> {
    let kind = header_u16(message, NLMSG_TYPE_AT)?;
    if kind >> 8 != NFNL_SUBSYS_NFTABLES {
        return None;
    }
    let (object, change) = classify(kind & 0xff);
    let payload = message.get(NLMSG_HDRLEN..)?;
    let family = Family::from_code(*payload.first()?);
    let attrs = payload.get(NFGENMSG_LEN..).unwrap_or_default();
    if object == ObjectKind::Gen {
        let mut generation = Generation {
            id: 0,
            pid: 0,
            proc_name: String::new(),
        };
        for (k, v) in attributes(attrs) {
            match k {
                NFTA_GEN_ID => generation.id = be32(v),
                NFTA_GEN_PROC_PID => generation.pid = be32(v),
                NFTA_GEN_PROC_NAME => generation.proc_name = text(v),
                _ => {}
            }
        }
        return Some(Event {
            kind: object,
            change,
            family: None,
            table: None,
            generation: Some(generation),
        });
    }
    // Every nf_tables object names its table in attribute 1: NFTA_TABLE_NAME for a
    // table, NFTA_{CHAIN,RULE,SET,SET_ELEM_LIST,OBJ,FLOWTABLE}_TABLE for the rest.
    let table = attributes(attrs)
        .find(|(k, _)| *k == NFTA_TABLE_NAME)
        .map(|(_, v)| text(v));
    Some(Event {
        kind: object,
        change,
        family,
        table,
        generation: None,
    })
}

/// The object and change of an nf_tables message type (the low byte).
fn classify(message_type: u16) -> (ObjectKind, Change) {
    use Change::{Delete, New};
    use ObjectKind::*;
    match message_type {
        NFT_MSG_NEWTABLE => (Table, New),
        NFT_MSG_DELTABLE | NFT_MSG_DESTROYTABLE => (Table, Delete),
        NFT_MSG_NEWCHAIN => (Chain, New),
        NFT_MSG_DELCHAIN | NFT_MSG_DESTROYCHAIN => (Chain, Delete),
        NFT_MSG_NEWRULE => (Rule, New),
        NFT_MSG_DELRULE | NFT_MSG_DESTROYRULE => (Rule, Delete),
        NFT_MSG_NEWSET => (Set, New),
        NFT_MSG_DELSET | NFT_MSG_DESTROYSET => (Set, Delete),
        NFT_MSG_NEWSETELEM => (SetElem, New),
        NFT_MSG_DELSETELEM | NFT_MSG_DESTROYSETELEM => (SetElem, Delete),
        NFT_MSG_NEWGEN => (Gen, New),
        NFT_MSG_DELOBJ | NFT_MSG_DELFLOWTABLE | NFT_MSG_DESTROYOBJ | NFT_MSG_DESTROYFLOWTABLE => {
            (Other(message_type), Delete)
        }
        other => (Other(other), New),
    }
}

fn be32(v: &[u8]) -> u32 {
    v.try_into().map(u32::from_be_bytes).unwrap_or(0)
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

    /// What the kernel (Linux 6.x) multicast for `nft 'add table inet x; add chain inet
    /// x c { type filter hook forward priority 0; }; add rule inet x c accept'`, captured
    /// in a throwaway namespace: one datagram with the three objects, one with NEWGEN.
    const ADD_BATCH: &str = "38000000000a000001000000af18000001000002060001007800000008000300000000010c0004000000000000000001080002000000000068000000030a000402000000af18000001000002060001007800000006000300630000000c0002000000000000000001140004000800010000000002080002000000000008000500000000010b00070066696c746572000008000a0000000001080006000000000164000000060a000c03000000af18000001000002060001007800000006000200630000000c000300000000000000000234000400300001000e000100696d6d6564696174650000001c0002000800010000000000100002000c0002000800010000000001";
    const ADD_GEN: &str =
        "2c0000000f0a000001000000af18000000000002080001000000000208000200000018af080003006e667400";
    /// `nft flush ruleset` over a table `inet ctnet` holding one set: DELSET, DELTABLE,
    /// NEWGEN (pid 0x1916).
    const FLUSH_BATCH: &str = "340000000b0a00000100000016190000010000030a00010063746e657400000006000200730000000c001000000000000000000134000000020a00000100000016190000010000030a00010063746e657400000008000300000000000c0004000000000000000001";
    const FLUSH_GEN: &str =
        "2c0000000f0a000001000000161900000000000308000100000000030800020000001916080003006e667400";

    fn object(kind: ObjectKind, change: Change, table: &str) -> Event {
        Event {
            kind,
            change,
            family: Some(Family::Inet),
            table: Some(table.into()),
            generation: None,
        }
    }

    #[test]
    fn a_batch_of_three_objects_parses_in_order() {
        assert_eq!(
            parse(&bytes(ADD_BATCH)),
            vec![
                object(ObjectKind::Table, Change::New, "x"),
                object(ObjectKind::Chain, Change::New, "x"),
                object(ObjectKind::Rule, Change::New, "x"),
            ]
        );
    }

    #[test]
    fn newgen_names_the_generation_and_the_process() {
        let events = parse(&bytes(ADD_GEN));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, ObjectKind::Gen);
        assert_eq!(events[0].table, None);
        assert_eq!(
            events[0].generation,
            Some(Generation {
                id: 2,
                pid: 0x18af,
                proc_name: "nft".into()
            })
        );
    }

    #[test]
    fn a_flush_ruleset_deletes_the_set_then_the_table() {
        let events = parse(&bytes(FLUSH_BATCH));
        assert_eq!(
            events,
            vec![
                object(ObjectKind::Set, Change::Delete, "ctnet"),
                object(ObjectKind::Table, Change::Delete, "ctnet"),
            ]
        );
        assert!(events.iter().all(|e| e.touches(Family::Inet, "ctnet")));
        assert!(!events[0].touches(Family::Ip, "ctnet"));
        let gen = parse(&bytes(FLUSH_GEN));
        assert_eq!(gen[0].generation.as_ref().unwrap().pid, 0x1916);
        assert_eq!(gen[0].generation.as_ref().unwrap().id, 3);
    }

    #[test]
    fn a_cut_datagram_yields_the_whole_messages_only() {
        let all = bytes(ADD_BATCH);
        // The first message is 0x38 bytes; cut in the middle of the second.
        assert_eq!(parse(&all[..0x38 + 20]).len(), 1);
        assert!(parse(&[]).is_empty());
    }

    #[test]
    fn message_types_map_to_objects_and_changes() {
        assert_eq!(
            classify(NFT_MSG_DESTROYTABLE),
            (ObjectKind::Table, Change::Delete)
        );
        assert_eq!(
            classify(NFT_MSG_DELSETELEM),
            (ObjectKind::SetElem, Change::Delete)
        );
        assert_eq!(
            classify(NFT_MSG_NEWSETELEM),
            (ObjectKind::SetElem, Change::New)
        );
        assert_eq!(classify(NFT_MSG_NEWGEN), (ObjectKind::Gen, Change::New));
        assert_eq!(classify(18), (ObjectKind::Other(18), Change::New));
        assert_eq!(classify(20), (ObjectKind::Other(20), Change::Delete));
    }

    #[test]
    fn other_subsystems_are_skipped() {
        let mut msg = bytes(ADD_GEN);
        msg[5] = 1; // NFNL_SUBSYS_CTNETLINK
        assert!(parse(&msg).is_empty());
    }
}
