//! The `NETLINK_NETFILTER` socket that commits batches and answers queries.

use std::borrow::Cow;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket};

use ctnet_kernel::netlink::{header_u16, header_u32, kernel_socket, messages};
use ctnet_kernel::{Error, Result};

use crate::abi::*;
use crate::batch::{Batch, ChainType, Hook, Key};
use crate::wire::{attributes, Writer};
use crate::{Family, TableRef};

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
        set_receive_timeout(&socket, RECEIVE_TIMEOUT_SECONDS)?;
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
    ///
    /// A set element insert can be refused with EBUSY while the kernel's hash table for
    /// the set is being resized by another writer (rhashtable allows one rehash at a
    /// time); the batch was aborted as a whole, so it is sent again, a bounded number of
    /// times.
    pub fn commit(&mut self, mut batch: Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let end_seq = batch.seal();
        self.next_seq = end_seq.wrapping_add(1);
        // The kernel takes a batch in one datagram, which must fit the send buffer.
        let len = batch.writer.bytes().len();
        if len > DEFAULT_SNDBUF_SAFE {
            set_send_buffer(&self.socket, len + SNDBUF_HEADROOM)?;
        }
        let mut attempt = 0;
        loop {
            match self.send_batch(&batch, end_seq)? {
                Verdict::Applied => return Ok(()),
                Verdict::Refused(index, errno)
                    if resize_race(&batch, index, errno) && attempt < RESIZE_RETRIES =>
                {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_micros(500 * attempt));
                }
                Verdict::Refused(index, errno) => return Err(refused(&batch.ops[index], errno)),
                Verdict::BatchRefused(errno) => {
                    return Err(refused("commit nf_tables batch", errno))
                }
            }
        }
    }

    fn send_batch(&mut self, batch: &Batch, end_seq: u32) -> Result<Verdict> {
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
            return Ok(Verdict::BatchRefused(errno));
        }
        Ok(match errors.iter().position(Option::is_some) {
            Some(index) => Verdict::Refused(index, errors[index].unwrap_or(libc::EIO)),
            None => Verdict::Applied,
        })
    }

    /// The generation of this namespace's whole ruleset: a number the kernel adds one to
    /// at every committed batch, whoever sends it (a refused batch changes nothing).
    /// While it stays the same, no table, chain, rule or set has changed.
    pub fn generation(&mut self) -> Result<u32> {
        let op = "ask for the ruleset's generation";
        let reply = self.query_one(NFT_MSG_GETGEN, NFPROTO_UNSPEC, op, |_| {})?;
        reply
            .as_deref()
            .and_then(|body| {
                attributes(body)
                    .find(|(kind, _)| *kind == NFTA_GEN_ID)
                    .and_then(|(_, v)| v.try_into().ok().map(u32::from_be_bytes))
            })
            .ok_or_else(|| {
                Error::io(
                    op,
                    io::Error::new(io::ErrorKind::InvalidData, "the kernel sent no generation"),
                )
            })
    }

    /// The comment of a table, `Some("")` if it has none, `None` if there is no such table.
    pub fn table_comment(&mut self, table: TableRef) -> Result<Option<String>> {
        let op = format!("look up table {table}");
        let reply = self.query_one(NFT_MSG_GETTABLE, table.family.code(), &op, |w| {
            w.put_str(NFTA_TABLE_NAME, table.name);
        })?;
        Ok(reply.map(|body| comment_of(&body)))
    }

    /// The value a map holds for `key` (`Some(vec![])` for a plain set's element), or
    /// `None` when the element is not there.
    pub fn get_element(
        &mut self,
        table: TableRef,
        set: &str,
        key: &Key,
    ) -> Result<Option<Vec<u8>>> {
        let op = format!("look up an element of set {table} {set}");
        let reply = self.query_one(NFT_MSG_GETSETELEM, table.family.code(), &op, |w| {
            w.put_str(NFTA_SET_ELEM_LIST_TABLE, table.name);
            w.put_str(NFTA_SET_ELEM_LIST_SET, set);
            w.nest(NFTA_SET_ELEM_LIST_ELEMENTS, |w| {
                w.nest(NFTA_LIST_ELEM, |w| {
                    w.put_data_value(NFTA_SET_ELEM_KEY, key.as_bytes());
                });
            });
        })?;
        Ok(reply.map(|body| element_data(&body)))
    }

    /// The counter of the element `key` of a set made [`crate::SetSpec::with_counters`],
    /// as `(packets, bytes)`; `None` when the element is not there (or has no counter).
    pub fn element_counter(
        &mut self,
        table: TableRef,
        set: &str,
        key: &Key,
    ) -> Result<Option<(u64, u64)>> {
        let op = format!("look up an element's counter in set {table} {set}");
        let reply = self.query_one(NFT_MSG_GETSETELEM, table.family.code(), &op, |w| {
            w.put_str(NFTA_SET_ELEM_LIST_TABLE, table.name);
            w.put_str(NFTA_SET_ELEM_LIST_SET, set);
            w.nest(NFTA_SET_ELEM_LIST_ELEMENTS, |w| {
                w.nest(NFTA_LIST_ELEM, |w| {
                    w.put_data_value(NFTA_SET_ELEM_KEY, key.as_bytes());
                });
            });
        })?;
        Ok(reply.and_then(|body| element_counter_of(&body)))
    }

    /// Every chain of every table and family, as the kernel lists them. A chain whose
    /// hook or type this crate has no name for (one a later kernel adds) is left out.
    pub fn list_chains(&mut self) -> Result<Vec<ChainInfo>> {
        let op = "list nf_tables chains";
        let seq = self.send_request(NFT_MSG_GETCHAIN, NLM_F_DUMP, NFPROTO_UNSPEC, op, |_| {})?;
        let mut chains = Vec::new();
        loop {
            for reply in self.receive(op)? {
                match reply {
                    Reply::Message {
                        seq: s,
                        family,
                        body,
                    } if s == seq => chains.extend(chain_of(family, &body)),
                    Reply::Done => return Ok(chains),
                    Reply::Ack { seq: s, errno } if s == seq && errno != 0 => {
                        return Err(refused(op, errno))
                    }
                    _ => {}
                }
            }
        }
    }

    /// Every rule of `table` in the kernel's order (chain by chain, each in rule order).
    /// A missing table has none.
    pub fn list_rules(&mut self, table: TableRef) -> Result<Vec<RuleInfo>> {
        let op = format!("list the rules of table {table}");
        let bodies = self.dump(NFT_MSG_GETRULE, table.family.code(), &op, |w| {
            w.put_str(NFTA_RULE_TABLE, table.name);
        })?;
        Ok(bodies
            .iter()
            .filter_map(|body| rule_of(body))
            .filter(|r| r.table == table.name)
            .collect())
    }

    /// The names of the named sets and maps of `table` (anonymous sets left out).
    pub fn list_sets(&mut self, table: TableRef) -> Result<Vec<String>> {
        let op = format!("list the sets of table {table}");
        let bodies = self.dump(NFT_MSG_GETSET, table.family.code(), &op, |w| {
            w.put_str(NFTA_SET_TABLE, table.name);
        })?;
        let mut names = Vec::new();
        for body in &bodies {
            let (mut in_table, mut name, mut anonymous) = (false, None, false);
            for (kind, value) in attributes(body) {
                match kind {
                    NFTA_SET_TABLE => in_table = text_of(value) == table.name,
                    NFTA_SET_NAME => name = Some(text_of(value)),
                    NFTA_SET_FLAGS => {
                        let flags = value.try_into().map(u32::from_be_bytes).unwrap_or(0);
                        anonymous = flags & NFT_SET_ANONYMOUS != 0;
                    }
                    _ => {}
                }
            }
            if let (true, Some(name), false) = (in_table, name, anonymous) {
                names.push(name);
            }
        }
        Ok(names)
    }

    /// Every element of set `set` of `table`, as the kernel keeps them (an interval of a
    /// single-field set is two: its start and, flagged, the key past its end).
    pub fn list_elements(&mut self, table: TableRef, set: &str) -> Result<Vec<ElementInfo>> {
        let op = format!("list the elements of set {table} {set}");
        let bodies = self.dump(NFT_MSG_GETSETELEM, table.family.code(), &op, |w| {
            w.put_str(NFTA_SET_ELEM_LIST_TABLE, table.name);
            w.put_str(NFTA_SET_ELEM_LIST_SET, set);
        })?;
        Ok(bodies.iter().flat_map(|b| elements_of(b)).collect())
    }

    /// Sends a dump request and collects the attributes of every object in the answer.
    fn dump(
        &mut self,
        kind: u16,
        family: u8,
        op: &str,
        body: impl FnOnce(&mut Writer),
    ) -> Result<Vec<Vec<u8>>> {
        let seq = self.send_request(kind, NLM_F_DUMP, family, op, body)?;
        let mut out = Vec::new();
        loop {
            for reply in self.receive(op)? {
                match reply {
                    Reply::Message { seq: s, body, .. } if s == seq => out.push(body),
                    Reply::Done => return Ok(out),
                    Reply::Ack { seq: s, errno } if s == seq && errno != 0 => {
                        return Err(refused(op, errno))
                    }
                    _ => {}
                }
            }
        }
    }

    /// Sends one request for one object and waits for it: its attributes, or `None`
    /// when the kernel says there is no such object (ENOENT).
    fn query_one(
        &mut self,
        kind: u16,
        family: u8,
        op: &str,
        body: impl FnOnce(&mut Writer),
    ) -> Result<Option<Vec<u8>>> {
        let seq = self.send_request(kind, 0, family, op, body)?;
        loop {
            for reply in self.receive(op)? {
                match reply {
                    Reply::Message { seq: s, body, .. } if s == seq => return Ok(Some(body)),
                    Reply::Ack { seq: s, errno } if s == seq => {
                        return match errno {
                            libc::ENOENT => Ok(None),
                            errno => Err(refused(op, errno)),
                        };
                    }
                    _ => {}
                }
            }
        }
    }

    /// Sends one nf_tables request outside a batch; returns its sequence number.
    fn send_request(
        &mut self,
        kind: u16,
        flags: u16,
        family: u8,
        op: &str,
        body: impl FnOnce(&mut Writer),
    ) -> Result<u32> {
        let seq = self.take_seq();
        let mut w = Writer::default();
        w.begin_message(
            (NFNL_SUBSYS_NFTABLES << 8) | kind,
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
        messages(&data)
            .map(|(offset, len)| reply_of(&data[offset..offset + len]))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| Error::Protocol {
                op: op.to_string(),
                detail: "an error message too short for its code".into(),
            })
    }
}

/// How often a batch refused by a set resize race is sent again; each wait is longer
/// (0.5 ms, 1 ms, ...), 14 ms in all at most.
const RESIZE_RETRIES: u64 = 7;

/// What the kernel said to a whole batch.
enum Verdict {
    Applied,
    /// The change at this index was refused with this errno; nothing was applied.
    Refused(usize, i32),
    /// The batch as a whole was refused.
    BatchRefused(i32),
}

/// True when a refusal is the transient one of a set's hash table being resized.
fn resize_race(batch: &Batch, index: usize, errno: i32) -> bool {
    errno == libc::EBUSY && batch.kinds.get(index) == Some(&NFT_MSG_NEWSETELEM)
}

fn refused(op: &str, errno: i32) -> Error {
    Error::Netlink {
        op: op.into(),
        source: io::Error::from_raw_os_error(errno),
    }
}

/// A reply message, reduced to what ctnet reads.
enum Reply {
    /// An acknowledgement; `errno` is 0 for success.
    Ack { seq: u32, errno: i32 },
    /// An object: its family (from `nfgenmsg`) and the attributes after it.
    Message { seq: u32, family: u8, body: Vec<u8> },
    /// The end of a dump.
    Done,
}

/// One whole message, as [`messages`] cuts them; `None` for an error message too short
/// to hold its code.
fn reply_of(message: &[u8]) -> Option<Reply> {
    let kind = header_u16(message, NLMSG_TYPE_AT)?;
    let seq = header_u32(message, NLMSG_SEQ_AT)?;
    let payload = &message[NLMSG_HDRLEN..];
    Some(match kind {
        NLMSG_ERROR => Reply::Ack {
            seq,
            errno: -(header_u32(payload, 0)? as i32),
        },
        NLMSG_DONE => Reply::Done,
        _ => Reply::Message {
            seq,
            family: payload.first().copied().unwrap_or(NFPROTO_UNSPEC),
            body: payload.get(NFGENMSG_LEN..).unwrap_or_default().to_vec(),
        },
    })
}

/// Where `nlmsghdr`'s type and sequence number sit.
const NLMSG_TYPE_AT: usize = 4;
const NLMSG_SEQ_AT: usize = 8;

/// A chain as the kernel lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainInfo {
    /// The table's family.
    pub family: Family,
    /// The table.
    pub table: String,
    /// The chain.
    pub name: String,
    /// For a base chain: the hook and priority.
    pub hook: Option<(Hook, i32)>,
    /// For a base chain: the policy, true when it drops what no rule accepts.
    pub policy_drop: bool,
    /// For a base chain: its type.
    pub kind: Option<ChainType>,
}

/// The chain in a NEWCHAIN message, or `None` when its family, hook or type has no name
/// here.
fn chain_of(family: u8, attrs: &[u8]) -> Option<ChainInfo> {
    let text = |v: &[u8]| String::from_utf8_lossy(v.strip_suffix(&[0]).unwrap_or(v)).into_owned();
    let be32 = |v: &[u8]| v.try_into().map(u32::from_be_bytes).unwrap_or(0);
    let family = Family::from_code(family)?;
    let mut chain = ChainInfo {
        family,
        table: String::new(),
        name: String::new(),
        hook: None,
        policy_drop: false,
        kind: None,
    };
    for (kind, value) in attributes(attrs) {
        match kind {
            NFTA_CHAIN_TABLE => chain.table = text(value),
            NFTA_CHAIN_NAME => chain.name = text(value),
            NFTA_CHAIN_POLICY => chain.policy_drop = be32(value) == NF_DROP as u32,
            NFTA_CHAIN_TYPE => chain.kind = Some(ChainType::from_name(&text(value))?),
            NFTA_CHAIN_HOOK => {
                let (mut number, mut priority) = (None, 0);
                for (k, v) in attributes(value) {
                    match k {
                        NFTA_HOOK_HOOKNUM => number = Some(be32(v)),
                        NFTA_HOOK_PRIORITY => priority = be32(v) as i32,
                        _ => {}
                    }
                }
                chain.hook = Some((Hook::from_number(family, number?)?, priority));
            }
            _ => {}
        }
    }
    Some(chain)
}

/// A rule as the kernel lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleInfo {
    /// The table.
    pub table: String,
    /// The chain.
    pub chain: String,
    /// The kernel's handle for it.
    pub handle: u64,
    /// Its comment ("" without one).
    pub comment: String,
    /// The names of its expressions, in order (`meta`, `cmp`, `immediate`, …); the
    /// kernel's own names are borrowed, not copied (see [`expression_name`]).
    pub expression_names: Vec<Cow<'static, str>>,
    /// The expression list as the kernel sent it, to be added back unchanged
    /// ([`crate::Batch::add_listed_rule`]).
    pub expressions: Vec<u8>,
    /// Its user data as the kernel sent it.
    pub userdata: Vec<u8>,
    /// It looks up an anonymous set (`ip saddr { a, b }`), which belongs to the rule's
    /// table as it is: such a rule cannot be added to another table unchanged.
    pub uses_anonymous_set: bool,
}

/// An element as the kernel lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ElementInfo {
    /// The key's bytes.
    pub key: Vec<u8>,
    /// The last key of a range (concatenated interval sets).
    pub key_end: Option<Vec<u8>>,
    /// A map element's value.
    pub data: Option<Vec<u8>>,
    /// The element marks the end of an interval (single-field interval sets).
    pub interval_end: bool,
}

fn text_of(v: &[u8]) -> String {
    String::from_utf8_lossy(v.strip_suffix(&[0]).unwrap_or(v)).into_owned()
}

/// The expressions the kernel knows by name (`nft_expr_type`s of Linux 6.x), which a
/// listed rule borrows instead of copying.
const EXPRESSION_NAMES: [&str; 40] = [
    "immediate",
    "cmp",
    "meta",
    "payload",
    "lookup",
    "counter",
    "ct",
    "nat",
    "bitwise",
    "range",
    "log",
    "limit",
    "reject",
    "masq",
    "redir",
    "dynset",
    "fib",
    "exthdr",
    "objref",
    "queue",
    "quota",
    "numgen",
    "hash",
    "socket",
    "tproxy",
    "xfrm",
    "synproxy",
    "osf",
    "tunnel",
    "connlimit",
    "last",
    "inner",
    "byteorder",
    "dup",
    "fwd",
    "notrack",
    "rt",
    "flow_offload",
    "match",
    "target",
];

/// An expression's name from its NUL-terminated attribute.
fn expression_name(v: &[u8]) -> Cow<'static, str> {
    let raw = v.strip_suffix(&[0]).unwrap_or(v);
    match EXPRESSION_NAMES.iter().find(|name| name.as_bytes() == raw) {
        Some(name) => Cow::Borrowed(name),
        None => Cow::Owned(String::from_utf8_lossy(raw).into_owned()),
    }
}

/// The rule in a NEWRULE message.
fn rule_of(attrs: &[u8]) -> Option<RuleInfo> {
    let mut rule = RuleInfo {
        table: String::new(),
        chain: String::new(),
        handle: 0,
        comment: String::new(),
        expression_names: Vec::new(),
        expressions: Vec::new(),
        userdata: Vec::new(),
        uses_anonymous_set: false,
    };
    for (kind, value) in attributes(attrs) {
        match kind {
            NFTA_RULE_TABLE => rule.table = text_of(value),
            NFTA_RULE_CHAIN => rule.chain = text_of(value),
            NFTA_RULE_HANDLE => rule.handle = u64::from_be_bytes(value.try_into().ok()?),
            NFTA_RULE_EXPRESSIONS => {
                rule.expressions = value.to_vec();
                // One pass over the expressions: every ctnet process lists its tables'
                // rules once to check their layout, and a copy of each name was most of
                // that check's cost.
                for (_, expr) in attributes(value) {
                    for (k, v) in attributes(expr) {
                        match k {
                            NFTA_EXPR_NAME => rule.expression_names.push(expression_name(v)),
                            NFTA_EXPR_DATA => {
                                rule.uses_anonymous_set |= attributes(v)
                                    .any(|(k, v)| k == NFTA_LOOKUP_SET && v.starts_with(b"__set"))
                            }
                            _ => {}
                        }
                    }
                }
            }
            NFTA_RULE_USERDATA => {
                rule.userdata = value.to_vec();
                rule.comment = udata_comment(value);
            }
            _ => {}
        }
    }
    Some(rule)
}

/// The elements in a NEWSETELEM message.
fn elements_of(attrs: &[u8]) -> Vec<ElementInfo> {
    let value_of = |nested: &[u8]| {
        attributes(nested)
            .find(|(k, _)| *k == NFTA_DATA_VALUE)
            .map(|(_, v)| v.to_vec())
    };
    attributes(attrs)
        .filter(|(k, _)| *k == NFTA_SET_ELEM_LIST_ELEMENTS)
        .flat_map(|(_, list)| attributes(list))
        .map(|(_, elem)| {
            let mut e = ElementInfo {
                key: Vec::new(),
                key_end: None,
                data: None,
                interval_end: false,
            };
            for (kind, value) in attributes(elem) {
                match kind {
                    NFTA_SET_ELEM_KEY => e.key = value_of(value).unwrap_or_default(),
                    NFTA_SET_ELEM_KEY_END => e.key_end = value_of(value),
                    NFTA_SET_ELEM_DATA => e.data = value_of(value),
                    NFTA_SET_ELEM_FLAGS => {
                        let flags = value.try_into().map(u32::from_be_bytes).unwrap_or(0);
                        e.interval_end = flags & NFT_SET_ELEM_INTERVAL_END != 0;
                    }
                    _ => {}
                }
            }
            e
        })
        .collect()
}

/// The data of the first element in a NEWSETELEM reply (empty for a plain set).
fn element_data(attrs: &[u8]) -> Vec<u8> {
    attributes(attrs)
        .filter(|(k, _)| *k == NFTA_SET_ELEM_LIST_ELEMENTS)
        .flat_map(|(_, list)| attributes(list))
        .flat_map(|(_, elem)| attributes(elem))
        .filter(|(k, _)| *k == NFTA_SET_ELEM_DATA)
        .flat_map(|(_, data)| attributes(data))
        .find(|(k, _)| *k == NFTA_DATA_VALUE)
        .map(|(_, v)| v.to_vec())
        .unwrap_or_default()
}

/// The `counter` among the first element's stateful expressions in a NEWSETELEM reply:
/// one expression comes as `NFTA_SET_ELEM_EXPR`, several as a list in
/// `NFTA_SET_ELEM_EXPRESSIONS`.
fn element_counter_of(attrs: &[u8]) -> Option<(u64, u64)> {
    let elem = attributes(attrs)
        .filter(|(k, _)| *k == NFTA_SET_ELEM_LIST_ELEMENTS)
        .flat_map(|(_, list)| attributes(list))
        .map(|(_, elem)| elem)
        .next()?;
    let exprs: Vec<&[u8]> = attributes(elem)
        .flat_map(|(k, v)| match k {
            NFTA_SET_ELEM_EXPR => vec![v],
            NFTA_SET_ELEM_EXPRESSIONS => attributes(v).map(|(_, e)| e).collect(),
            _ => Vec::new(),
        })
        .collect();
    exprs.into_iter().find_map(|expr| {
        let is_counter = attributes(expr)
            .any(|(k, v)| k == NFTA_EXPR_NAME && v.strip_suffix(b"\0").unwrap_or(v) == b"counter");
        let data = attributes(expr).find(|(k, _)| *k == NFTA_EXPR_DATA)?.1;
        let be64 = |kind| {
            attributes(data)
                .find(|(k, _)| *k == kind)
                .and_then(|(_, v)| v.try_into().ok().map(u64::from_be_bytes))
        };
        is_counter.then(|| {
            (
                be64(NFTA_COUNTER_PACKETS).unwrap_or(0),
                be64(NFTA_COUNTER_BYTES).unwrap_or(0),
            )
        })
    })
}

/// The comment stored in a table's user data, or "".
fn comment_of(table_attrs: &[u8]) -> String {
    let Some((_, udata)) = attributes(table_attrs).find(|(k, _)| *k == NFTA_TABLE_USERDATA) else {
        return String::new();
    };
    udata_comment(udata)
}

/// The comment TLV in table or rule user data, or "".
fn udata_comment(udata: &[u8]) -> String {
    let mut rest = udata;
    while rest.len() >= 2 {
        let (kind, len) = (rest[0], rest[1] as usize);
        let Some(value) = rest.get(2..2 + len) else {
            break;
        };
        if kind == NFTNL_UDATA_COMMENT {
            let text = value.strip_suffix(&[0]).unwrap_or(value);
            return String::from_utf8_lossy(text).into_owned();
        }
        rest = &rest[2 + len..];
    }
    String::new()
}

/// Below this a batch fits the default socket send buffer (net.core.wmem_default).
const DEFAULT_SNDBUF_SAFE: usize = 128 * 1024;
/// Room past a large batch for the kernel's own accounting of the buffer.
const SNDBUF_HEADROOM: usize = 64 * 1024;
/// A kernel that has not answered by then will not; better an error than a hang.
const RECEIVE_TIMEOUT_SECONDS: i64 = 10;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{Element, Key};
    use crate::Family;

    const TABLE: TableRef = TableRef::new(Family::Inet, "t");

    #[test]
    fn only_a_busy_element_insert_is_sent_again() {
        let mut batch = Batch::new(1);
        batch.flush_set(TABLE, "s");
        batch.add_elements(TABLE, "s", &[Element::Key(Key::new().port(80))], "port 80");
        assert!(resize_race(&batch, 1, libc::EBUSY));
        // EBUSY on anything else (a set or chain in use) is a real refusal.
        assert!(!resize_race(&batch, 0, libc::EBUSY));
        assert!(!resize_race(&batch, 1, libc::EEXIST));
        assert!(!resize_race(&batch, 2, libc::EBUSY));
    }
}
