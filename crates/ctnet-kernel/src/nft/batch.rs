//! Batches: every change of one operation, applied by the kernel all at once or not at all.

use std::net::Ipv4Addr;

use super::expr::Expr;
use super::wire::{attr, comment_udata, msg, Writer, NFNL_SUBSYS_NFTABLES};
use super::{
    wire::{NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END},
    Family,
};
use crate::names::IfName;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;

/// A netfilter hook a base chain attaches to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// Before routing, for packets arriving on any interface.
    Prerouting,
    /// Packets for this host.
    Input,
    /// Packets routed through this host.
    Forward,
    /// Packets this host sends.
    Output,
    /// After routing, for packets leaving on any interface.
    Postrouting,
}

impl Hook {
    fn number(self) -> u32 {
        match self {
            Hook::Prerouting => 0,
            Hook::Input => 1,
            Hook::Forward => 2,
            Hook::Output => 3,
            Hook::Postrouting => 4,
        }
    }
}

/// The kind of base chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainType {
    /// Accept or drop.
    Filter,
    /// Address translation; sees the first packet of each connection only.
    Nat,
}

impl ChainType {
    fn name(self) -> &'static str {
        match self {
            ChainType::Filter => "filter",
            ChainType::Nat => "nat",
        }
    }
}

/// Where a base chain hooks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaseChain {
    /// The chain type.
    pub kind: ChainType,
    /// The hook.
    pub hook: Hook,
    /// Lower runs first; nat postrouting is conventionally 100 (`srcnat`).
    pub priority: i32,
}

/// The type of one field of a set key, as nft names it when it prints the set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyField {
    /// An IPv4 address (`ipv4_addr`), 4 bytes.
    Ipv4Addr,
    /// An interface name (`ifname`), 16 bytes.
    IfName,
    /// A layer 4 protocol number (`inet_proto`), 1 byte.
    InetProto,
    /// A TCP or UDP port (`inet_service`), 2 bytes, network byte order.
    InetService,
}

impl KeyField {
    /// nft's datatype number, used to print elements back.
    fn datatype(self) -> u32 {
        match self {
            KeyField::Ipv4Addr => 7,
            KeyField::IfName => 41,
            KeyField::InetProto => 12,
            KeyField::InetService => 13,
        }
    }

    /// nft's byte order for the type: strings are host order, numbers network order.
    fn byteorder(self) -> u32 {
        const BYTEORDER_HOST_ENDIAN: u32 = 1;
        const BYTEORDER_BIG_ENDIAN: u32 = 2;
        match self {
            KeyField::IfName => BYTEORDER_HOST_ENDIAN,
            _ => BYTEORDER_BIG_ENDIAN,
        }
    }

    /// The field's length in bytes.
    pub fn byte_len(self) -> u32 {
        match self {
            KeyField::Ipv4Addr => 4,
            KeyField::IfName => 16,
            KeyField::InetProto => 1,
            KeyField::InetService => 2,
        }
    }
}

/// A named set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetSpec {
    /// The set's name in its table.
    pub name: String,
    /// Fields of the key; more than one makes a concatenation (`ipv4_addr . ifname`).
    pub key: Vec<KeyField>,
    /// Elements are ranges (prefixes) rather than single keys.
    pub interval: bool,
    /// For a map: the fields of the value each key maps to. `None` for a plain set.
    pub data: Option<Vec<KeyField>>,
}

impl SetSpec {
    /// A plain set of exact keys.
    pub fn exact(name: &str, key: Vec<KeyField>) -> Self {
        SetSpec {
            name: name.into(),
            key,
            interval: false,
            data: None,
        }
    }

    /// A set whose elements are ranges.
    pub fn intervals(name: &str, key: Vec<KeyField>) -> Self {
        SetSpec {
            interval: true,
            ..SetSpec::exact(name, key)
        }
    }

    /// A map from exact keys to values.
    pub fn map(name: &str, key: Vec<KeyField>, data: Vec<KeyField>) -> Self {
        SetSpec {
            data: Some(data),
            ..SetSpec::exact(name, key)
        }
    }

    fn key_len(&self) -> u32 {
        fields_len(&self.key)
    }

    fn key_type(&self) -> u32 {
        fields_type(&self.key)
    }

    /// Ranges over a concatenation need the pipapo set type, which wants every field's
    /// length up front.
    fn is_concat_interval(&self) -> bool {
        self.interval && self.key.len() > 1
    }

    fn flags(&self) -> u32 {
        const NFT_SET_INTERVAL: u32 = 0x4;
        const NFT_SET_MAP: u32 = 0x8;
        const NFT_SET_CONCAT: u32 = 0x80;
        let mut flags = 0;
        if self.interval {
            flags |= NFT_SET_INTERVAL;
        }
        if self.data.is_some() {
            flags |= NFT_SET_MAP;
        }
        if self.is_concat_interval() {
            flags |= NFT_SET_CONCAT;
        }
        flags
    }
}

/// Length of a key or value: fields of a concatenation each take whole 32-bit words.
fn fields_len(fields: &[KeyField]) -> u32 {
    if let [only] = fields {
        return only.byte_len();
    }
    fields
        .iter()
        .map(|f| f.byte_len().next_multiple_of(4))
        .sum()
}

/// nft's concatenated type: six bits per field, first field highest.
fn fields_type(fields: &[KeyField]) -> u32 {
    fields.iter().fold(0, |acc, f| (acc << 6) | f.datatype())
}

/// A key value, built field by field in the order of the set's [`KeyField`]s. Every
/// field is padded to whole 32-bit words, as concatenations are laid out; single-field
/// keys of sub-word types (a lone port) would need no padding and are not built here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Key(Vec<u8>);

impl Key {
    /// An empty key.
    pub fn new() -> Self {
        Key::default()
    }

    /// Appends an IPv4 address.
    pub fn ipv4(mut self, addr: Ipv4Addr) -> Self {
        self.0.extend_from_slice(&addr.octets());
        self
    }

    /// Appends an interface name, zero-padded to 16 bytes as the kernel stores it.
    pub fn ifname(mut self, name: &IfName) -> Self {
        let mut field = [0u8; 16];
        field[..name.as_str().len()].copy_from_slice(name.as_str().as_bytes());
        self.0.extend_from_slice(&field);
        self
    }

    /// Appends a layer 4 protocol number (one byte, padded to a word).
    pub fn proto(mut self, proto: u8) -> Self {
        self.0.extend_from_slice(&[proto, 0, 0, 0]);
        self
    }

    /// Appends a port (two bytes in network order, padded to a word).
    pub fn port(mut self, port: u16) -> Self {
        self.0.extend_from_slice(&port.to_be_bytes());
        self.0.extend_from_slice(&[0, 0]);
        self
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// One element of a set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Element {
    /// A single key, in a set without intervals.
    Key(Key),
    /// A key and the value it maps to, in a map.
    Mapping {
        /// The key.
        key: Key,
        /// The value, laid out like a key.
        value: Key,
    },
    /// An inclusive range in an interval set with a concatenated key. Each field ranges
    /// independently; equal bounds match exactly.
    Range {
        /// Lowest key, inclusive.
        first: Key,
        /// Highest key, inclusive.
        last: Key,
    },
    /// An inclusive range in an interval set with a single-field key. The kernel keeps it
    /// as two elements: the start, and the first key past the end.
    Interval {
        /// Lowest key, inclusive.
        first: Key,
        /// The first key after the range, or `None` when the range runs to the top.
        past_end: Option<Key>,
    },
}

impl Element {
    /// An IPv4 prefix as an [`Element::Interval`] for a single-field `ipv4_addr` set.
    pub fn ipv4_prefix(network: Ipv4Addr, prefix_len: u8) -> Element {
        let (first, last) = ipv4_bounds(network, prefix_len);
        Element::Interval {
            first: Key::new().ipv4(first),
            past_end: u32::from(last)
                .checked_add(1)
                .map(|n| Key::new().ipv4(Ipv4Addr::from(n))),
        }
    }

    fn encode(&self, w: &mut Writer) {
        const NFT_SET_ELEM_INTERVAL_END: u32 = 0x1;
        match self {
            Element::Key(key) => w.nest(attr::LIST_ELEM, |w| {
                w.put_data_value(attr::SET_ELEM_KEY, key.as_bytes());
            }),
            Element::Mapping { key, value } => w.nest(attr::LIST_ELEM, |w| {
                w.put_data_value(attr::SET_ELEM_KEY, key.as_bytes());
                w.put_data_value(attr::SET_ELEM_DATA, value.as_bytes());
            }),
            Element::Range { first, last } => w.nest(attr::LIST_ELEM, |w| {
                w.put_data_value(attr::SET_ELEM_KEY, first.as_bytes());
                w.put_data_value(attr::SET_ELEM_KEY_END, last.as_bytes());
            }),
            Element::Interval { first, past_end } => {
                w.nest(attr::LIST_ELEM, |w| {
                    w.put_data_value(attr::SET_ELEM_KEY, first.as_bytes());
                });
                if let Some(end) = past_end {
                    w.nest(attr::LIST_ELEM, |w| {
                        w.put_data_value(attr::SET_ELEM_KEY, end.as_bytes());
                        w.put_be32(attr::SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
                    });
                }
            }
        }
    }
}

/// Set user data telling nft the key's byte order (`NFTNL_UDATA_SET_KEYBYTEORDER`).
fn key_byteorder_udata(order: u32) -> Vec<u8> {
    const NFTNL_UDATA_SET_KEYBYTEORDER: u8 = 0;
    let mut out = vec![NFTNL_UDATA_SET_KEYBYTEORDER, 4];
    out.extend_from_slice(&order.to_ne_bytes());
    out
}

/// First and last address of an IPv4 prefix.
pub fn ipv4_bounds(network: Ipv4Addr, prefix_len: u8) -> (Ipv4Addr, Ipv4Addr) {
    let host_mask = u32::MAX.checked_shr(u32::from(prefix_len)).unwrap_or(0);
    let first = u32::from(network) & !host_mask;
    (Ipv4Addr::from(first), Ipv4Addr::from(first | host_mask))
}

/// A batch of nf_tables changes, committed with [`super::NftSocket::commit`].
///
/// Each message carries a description used when the kernel refuses it.
pub struct Batch {
    pub(crate) writer: Writer,
    /// Descriptions of the messages between the delimiters, in order.
    pub(crate) ops: Vec<String>,
    pub(crate) first_seq: u32,
    next_seq: u32,
    next_set_id: u32,
    sealed: bool,
}

impl Batch {
    /// An empty batch whose messages are numbered from `first_seq`.
    pub(crate) fn new(first_seq: u32) -> Self {
        let mut batch = Batch {
            writer: Writer::default(),
            ops: Vec::new(),
            first_seq,
            next_seq: first_seq,
            next_set_id: 1,
            sealed: false,
        };
        batch.delimiter(NFNL_MSG_BATCH_BEGIN);
        batch
    }

    /// Number of changes in the batch.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// True when the batch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Creates a table. With `exclusive`, the whole batch fails with EEXIST if the table
    /// is already there, which makes "create the table and its skeleton" race-free.
    pub fn add_table(&mut self, family: Family, name: &str, comment: &str, exclusive: bool) {
        let flags = NLM_F_CREATE | if exclusive { NLM_F_EXCL } else { 0 };
        self.message(
            msg::NEWTABLE,
            flags,
            family,
            format!("create table {family} {name}"),
            |w| {
                w.put_str(attr::TABLE_NAME, name);
                w.put_be32(attr::TABLE_FLAGS, 0);
                w.put(attr::TABLE_USERDATA, &comment_udata(comment));
            },
        );
    }

    /// Deletes a table with everything in it; no error if it is not there.
    pub fn destroy_table(&mut self, family: Family, name: &str) {
        self.message(
            msg::DESTROYTABLE,
            0,
            family,
            format!("delete table {family} {name}"),
            |w| w.put_str(attr::TABLE_NAME, name),
        );
    }

    /// Creates a chain; `base` hooks it into the stack, `None` makes a regular chain
    /// reachable only by jumps.
    pub fn add_chain(&mut self, family: Family, table: &str, name: &str, base: Option<BaseChain>) {
        const NF_ACCEPT: u32 = 1;
        self.message(
            msg::NEWCHAIN,
            NLM_F_CREATE,
            family,
            format!("create chain {family} {table} {name}"),
            |w| {
                w.put_str(attr::CHAIN_TABLE, table);
                w.put_str(attr::CHAIN_NAME, name);
                if let Some(base) = base {
                    w.nest(attr::CHAIN_HOOK, |w| {
                        w.put_be32(attr::HOOK_HOOKNUM, base.hook.number());
                        w.put_be32(attr::HOOK_PRIORITY, base.priority as u32);
                    });
                    w.put_str(attr::CHAIN_TYPE, base.kind.name());
                    w.put_be32(attr::CHAIN_POLICY, NF_ACCEPT);
                }
            },
        );
    }

    /// Deletes every rule of a chain.
    pub fn flush_chain(&mut self, family: Family, table: &str, chain: &str) {
        self.message(
            msg::DELRULE,
            0,
            family,
            format!("flush chain {family} {table} {chain}"),
            |w| {
                w.put_str(attr::RULE_TABLE, table);
                w.put_str(attr::RULE_CHAIN, chain);
            },
        );
    }

    /// Deletes every element of a set or map.
    pub fn flush_set(&mut self, family: Family, table: &str, set: &str) {
        self.message(
            msg::DELSETELEM,
            0,
            family,
            format!("flush set {family} {table} {set}"),
            |w| {
                w.put_str(attr::SET_ELEM_LIST_TABLE, table);
                w.put_str(attr::SET_ELEM_LIST_SET, set);
            },
        );
    }

    /// Creates a named set.
    pub fn add_set(&mut self, family: Family, table: &str, set: &SetSpec) {
        let id = self.next_set_id;
        self.next_set_id += 1;
        self.message(
            msg::NEWSET,
            NLM_F_CREATE,
            family,
            format!("create set {family} {table} {}", set.name),
            |w| {
                w.put_str(attr::SET_TABLE, table);
                w.put_str(attr::SET_NAME, &set.name);
                w.put_be32(attr::SET_FLAGS, set.flags());
                w.put_be32(attr::SET_KEY_TYPE, set.key_type());
                w.put_be32(attr::SET_KEY_LEN, set.key_len());
                if let Some(data) = &set.data {
                    w.put_be32(attr::SET_DATA_TYPE, fields_type(data));
                    w.put_be32(attr::SET_DATA_LEN, fields_len(data));
                }
                w.put_be32(attr::SET_ID, id);
                if let [field] = set.key.as_slice() {
                    // Without it nft prints a lone string key byte-reversed (as "").
                    w.put(attr::SET_USERDATA, &key_byteorder_udata(field.byteorder()));
                }
                if set.is_concat_interval() {
                    w.nest(attr::SET_DESC, |w| {
                        w.nest(attr::SET_DESC_CONCAT, |w| {
                            for field in &set.key {
                                w.nest(attr::LIST_ELEM, |w| {
                                    w.put_be32(attr::SET_FIELD_LEN, field.byte_len());
                                });
                            }
                        });
                    });
                }
            },
        );
    }

    /// Appends a rule to a chain.
    pub fn add_rule(
        &mut self,
        family: Family,
        table: &str,
        chain: &str,
        exprs: &[Expr],
        comment: &str,
    ) {
        self.message(
            msg::NEWRULE,
            NLM_F_CREATE | NLM_F_APPEND,
            family,
            format!("add rule to chain {family} {table} {chain} ({comment})"),
            |w| {
                w.put_str(attr::RULE_TABLE, table);
                w.put_str(attr::RULE_CHAIN, chain);
                w.nest(attr::RULE_EXPRESSIONS, |w| {
                    for expr in exprs {
                        expr.encode(w);
                    }
                });
                if !comment.is_empty() {
                    w.put(attr::RULE_USERDATA, &comment_udata(comment));
                }
            },
        );
    }

    /// Adds elements to a set. Elements already there are not an error.
    pub fn add_elements(
        &mut self,
        family: Family,
        table: &str,
        set: &str,
        elements: &[Element],
        what: &str,
    ) {
        self.elements(
            msg::NEWSETELEM,
            NLM_F_CREATE,
            family,
            table,
            set,
            elements,
            format!("add {what} to set {family} {table} {set}"),
        );
    }

    /// Removes elements from a set. Elements already gone are not an error.
    pub fn destroy_elements(
        &mut self,
        family: Family,
        table: &str,
        set: &str,
        elements: &[Element],
        what: &str,
    ) {
        self.elements(
            msg::DESTROYSETELEM,
            0,
            family,
            table,
            set,
            elements,
            format!("remove {what} from set {family} {table} {set}"),
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn elements(
        &mut self,
        kind: u16,
        flags: u16,
        family: Family,
        table: &str,
        set: &str,
        elements: &[Element],
        op: String,
    ) {
        // A netlink attribute's length is 16 bits, so the element list of one message
        // must stay under 64 KiB; larger lists go in several messages of the same batch.
        const ELEMENTS_PER_MESSAGE: usize = 256;
        for chunk in elements.chunks(ELEMENTS_PER_MESSAGE) {
            self.message(kind, flags, family, op.clone(), |w| {
                w.put_str(attr::SET_ELEM_LIST_TABLE, table);
                w.put_str(attr::SET_ELEM_LIST_SET, set);
                w.nest(attr::SET_ELEM_LIST_ELEMENTS, |w| {
                    for element in chunk {
                        element.encode(w);
                    }
                });
            });
        }
    }

    fn message(
        &mut self,
        kind: u16,
        flags: u16,
        family: Family,
        op: String,
        body: impl FnOnce(&mut Writer),
    ) {
        assert!(!self.sealed, "message added to a sealed batch");
        let seq = self.take_seq();
        self.writer.begin_message(
            (NFNL_SUBSYS_NFTABLES << 8) | kind,
            NLM_F_REQUEST | NLM_F_ACK | flags,
            seq,
            family.code(),
            0,
        );
        body(&mut self.writer);
        self.writer.end_message();
        self.ops.push(op);
    }

    /// Closes the batch; returns the sequence number of the end delimiter.
    pub(crate) fn seal(&mut self) -> u32 {
        if !self.sealed {
            self.delimiter(NFNL_MSG_BATCH_END);
            self.sealed = true;
        }
        self.next_seq - 1
    }

    fn delimiter(&mut self, kind: u16) {
        let seq = self.take_seq();
        self.writer
            .begin_message(kind, NLM_F_REQUEST, seq, 0, NFNL_SUBSYS_NFTABLES);
        self.writer.end_message();
    }

    fn take_seq(&mut self) -> u32 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        seq
    }

    /// Sequence number of the `index`-th change (after the begin delimiter).
    pub(crate) fn seq_of(&self, index: usize) -> u32 {
        self.first_seq.wrapping_add(1 + index as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concatenated_keys_have_nft_type_and_word_aligned_length() {
        let set = SetSpec::intervals("s", vec![KeyField::Ipv4Addr, KeyField::IfName]);
        assert_eq!(set.key_type(), (7 << 6) | 41);
        assert_eq!(set.key_len(), 20);
        assert_eq!(set.flags(), 0x84);
        let map = SetSpec::map(
            "m",
            vec![KeyField::InetProto, KeyField::InetService],
            vec![KeyField::Ipv4Addr, KeyField::InetService],
        );
        assert_eq!(map.key_len(), 8);
        assert_eq!(fields_len(map.data.as_ref().unwrap()), 8);
        assert_eq!(map.flags(), 0x8);
        assert_eq!(
            Key::new().proto(6).port(8080).as_bytes(),
            &[6, 0, 0, 0, 0x1f, 0x90, 0, 0]
        );
    }

    #[test]
    fn prefixes_become_start_and_past_end() {
        let e = Element::ipv4_prefix(Ipv4Addr::new(172, 17, 3, 4), 16);
        assert_eq!(
            e,
            Element::Interval {
                first: Key::new().ipv4(Ipv4Addr::new(172, 17, 0, 0)),
                past_end: Some(Key::new().ipv4(Ipv4Addr::new(172, 18, 0, 0))),
            }
        );
        let top = Element::ipv4_prefix(Ipv4Addr::new(255, 255, 255, 0), 24);
        assert!(matches!(top, Element::Interval { past_end: None, .. }));
        assert_eq!(
            ipv4_bounds(Ipv4Addr::new(10, 1, 2, 3), 0),
            (Ipv4Addr::new(0, 0, 0, 0), Ipv4Addr::new(255, 255, 255, 255))
        );
    }

    #[test]
    fn batch_is_framed_by_delimiters() {
        let mut b = Batch::new(100);
        b.destroy_table(Family::Inet, "t");
        assert_eq!(b.seal(), 102);
        assert_eq!(b.seq_of(0), 101);
        assert_eq!(b.len(), 1);
    }
}
