//! Batches: every change of one operation, applied by the kernel all at once or not at all.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ctnet_kernel::IfName;

use crate::abi::*;
use crate::expr::Expr;
use crate::wire::{comment_udata, Writer};
use crate::{Family, TableRef};

/// A netfilter hook a base chain attaches to. Its number depends on the table's family
/// ([`Hook::number`]); not every family has every hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    /// Before routing, for packets arriving on any interface.
    Prerouting,
    /// Packets for this host.
    Input,
    /// Packets routed (or bridged) through this host.
    Forward,
    /// Packets this host sends.
    Output,
    /// After routing, for packets leaving on any interface.
    Postrouting,
    /// A device's ingress, before prerouting (`inet` and `netdev`).
    Ingress,
    /// A device's egress (`netdev`).
    Egress,
}

impl Hook {
    /// The hook's number in `family` (`NF_INET_*`, `NF_ARP_*`, `NF_NETDEV_*`), or `None`
    /// when that family has no such hook.
    pub fn number(self, family: Family) -> Option<u32> {
        Some(match (family, self) {
            (Family::Arp, Hook::Input) => NF_ARP_IN,
            (Family::Arp, Hook::Output) => NF_ARP_OUT,
            (Family::Arp, Hook::Forward) => NF_ARP_FORWARD,
            (Family::Arp, _) => return None,
            (Family::Netdev, Hook::Ingress) => NF_NETDEV_INGRESS,
            (Family::Netdev, Hook::Egress) => NF_NETDEV_EGRESS,
            (Family::Netdev, _) => return None,
            (_, Hook::Prerouting) => NF_INET_PRE_ROUTING,
            (_, Hook::Input) => NF_INET_LOCAL_IN,
            (_, Hook::Forward) => NF_INET_FORWARD,
            (_, Hook::Output) => NF_INET_LOCAL_OUT,
            (_, Hook::Postrouting) => NF_INET_POST_ROUTING,
            (Family::Inet, Hook::Ingress) => NF_INET_INGRESS,
            (_, Hook::Ingress | Hook::Egress) => return None,
        })
    }

    /// The hook numbered `number` in `family`, if there is one.
    pub fn from_number(family: Family, number: u32) -> Option<Hook> {
        [
            Hook::Prerouting,
            Hook::Input,
            Hook::Forward,
            Hook::Output,
            Hook::Postrouting,
            Hook::Ingress,
            Hook::Egress,
        ]
        .into_iter()
        .find(|h| h.number(family) == Some(number))
    }
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Hook::Prerouting => "prerouting",
            Hook::Input => "input",
            Hook::Forward => "forward",
            Hook::Output => "output",
            Hook::Postrouting => "postrouting",
            Hook::Ingress => "ingress",
            Hook::Egress => "egress",
        })
    }
}

/// The kind of base chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChainType {
    /// Accept or drop.
    Filter,
    /// Address translation; sees the first packet of each connection only.
    Nat,
    /// Like filter, but routes again when an output rule changed the packet.
    Route,
}

impl ChainType {
    /// The name the kernel knows the type by.
    pub fn name(self) -> &'static str {
        match self {
            ChainType::Filter => "filter",
            ChainType::Nat => "nat",
            ChainType::Route => "route",
        }
    }

    /// The type named `name`, if it is one of the kernel's.
    pub fn from_name(name: &str) -> Option<ChainType> {
        [ChainType::Filter, ChainType::Nat, ChainType::Route]
            .into_iter()
            .find(|t| t.name() == name)
    }
}

impl fmt::Display for ChainType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
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

/// As nft writes it inside the chain: `type nat hook postrouting priority 100`.
impl fmt::Display for BaseChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "type {} hook {} priority {}",
            self.kind, self.hook, self.priority
        )
    }
}

/// The type of one field of a set key, as nft names it when it prints the set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyField {
    /// An IPv4 address (`ipv4_addr`), 4 bytes.
    Ipv4Addr,
    /// An IPv6 address (`ipv6_addr`), 16 bytes.
    Ipv6Addr,
    /// An interface name (`ifname`), 16 bytes.
    IfName,
    /// A layer 4 protocol number (`inet_proto`), 1 byte.
    InetProto,
    /// A TCP or UDP port (`inet_service`), 2 bytes, network byte order.
    InetService,
    /// A MAC address (`ether_addr`), 6 bytes (8 in a concatenation).
    EtherAddr,
}

impl KeyField {
    /// nft's datatype number, used to print elements back.
    fn datatype(self) -> u32 {
        match self {
            KeyField::Ipv4Addr => TYPE_IPADDR,
            KeyField::Ipv6Addr => TYPE_IP6ADDR,
            KeyField::IfName => TYPE_IFNAME,
            KeyField::InetProto => TYPE_INET_PROTOCOL,
            KeyField::InetService => TYPE_INET_SERVICE,
            KeyField::EtherAddr => TYPE_ETHERADDR,
        }
    }

    /// nft's byte order for the type: strings are host order, numbers network order.
    fn byteorder(self) -> u32 {
        match self {
            KeyField::IfName => BYTEORDER_HOST_ENDIAN,
            _ => BYTEORDER_BIG_ENDIAN,
        }
    }

    /// The field's length in bytes.
    pub fn byte_len(self) -> u32 {
        match self {
            KeyField::Ipv4Addr => 4,
            KeyField::Ipv6Addr => 16,
            KeyField::IfName => 16,
            KeyField::InetProto => 1,
            KeyField::InetService => 2,
            KeyField::EtherAddr => 6,
        }
    }

    /// The field for an address of `proto`.
    pub fn addr(proto: crate::NfProto) -> KeyField {
        match proto {
            crate::NfProto::Ipv4 => KeyField::Ipv4Addr,
            crate::NfProto::Ipv6 => KeyField::Ipv6Addr,
        }
    }
}

impl fmt::Display for KeyField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyField::Ipv4Addr => "ipv4_addr",
            KeyField::Ipv6Addr => "ipv6_addr",
            KeyField::IfName => "ifname",
            KeyField::InetProto => "inet_proto",
            KeyField::InetService => "inet_service",
            KeyField::EtherAddr => "ether_addr",
        })
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
    /// Elements can be given a timeout after they were added, so they can be withdrawn
    /// by expiring them ([`Batch::expire_elements`]) rather than deleting them.
    pub timeouts: bool,
    /// Every element has a counter of its own (nft's `counter` in a set), which counts
    /// the packets of each rule's lookup that found the element.
    pub counters: bool,
}

impl SetSpec {
    /// A plain set of exact keys.
    pub fn exact(name: &str, key: Vec<KeyField>) -> Self {
        SetSpec {
            name: name.into(),
            key,
            interval: false,
            data: None,
            timeouts: false,
            counters: false,
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

    /// The same set, whose elements can be expired ([`Batch::expire_elements`]).
    pub fn with_timeouts(self) -> Self {
        SetSpec {
            timeouts: true,
            ..self
        }
    }

    /// The same set, each of whose elements counts the lookups that found it
    /// ([`crate::NftSocket::element_counter`] reads one).
    pub fn with_counters(self) -> Self {
        SetSpec {
            counters: true,
            ..self
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
        let mut flags = 0;
        if self.interval {
            flags |= NFT_SET_INTERVAL;
        }
        if self.data.is_some() {
            flags |= NFT_SET_MAP;
        }
        if self.timeouts {
            flags |= NFT_SET_TIMEOUT;
        }
        if self.is_concat_interval() {
            flags |= NFT_SET_CONCAT;
        }
        flags
    }
}

/// As nft lists it: `set s { type ipv4_addr . ifname; flags interval; }`.
impl fmt::Display for SetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fields = |fields: &[KeyField]| {
            fields
                .iter()
                .map(KeyField::to_string)
                .collect::<Vec<_>>()
                .join(" . ")
        };
        let kind = if self.data.is_some() { "map" } else { "set" };
        write!(f, "{kind} {} {{ type {}", self.name, fields(&self.key))?;
        if let Some(data) = &self.data {
            write!(f, " : {}", fields(data))?;
        }
        f.write_str(";")?;
        match (self.interval, self.timeouts) {
            (true, true) => f.write_str(" flags interval,timeout;")?,
            (true, false) => f.write_str(" flags interval;")?,
            (false, true) => f.write_str(" flags timeout;")?,
            (false, false) => {}
        }
        if self.counters {
            f.write_str(" counter;")?;
        }
        f.write_str(" }")
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
    fields
        .iter()
        .fold(0, |acc, f| (acc << TYPE_BITS) | f.datatype())
}

/// A key value, built field by field in the order of the set's [`KeyField`]s. Every
/// field is padded to whole 32-bit words, as concatenations are laid out; single-field
/// keys of sub-word types (a lone port) would need no padding and are not built here.
/// Addresses (4 or 16 bytes) and interface names (16) are whole words already.
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

    /// Appends an IPv6 address.
    pub fn ipv6(mut self, addr: Ipv6Addr) -> Self {
        self.0.extend_from_slice(&addr.octets());
        self
    }

    /// Appends an address of either family, for a field of the matching type.
    pub fn ip(self, addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(a) => self.ipv4(a),
            IpAddr::V6(a) => self.ipv6(a),
        }
    }

    /// Appends an interface name, zero-padded to 16 bytes as the kernel stores it.
    pub fn ifname(mut self, name: &IfName) -> Self {
        let mut field = [0u8; 16];
        field[..name.as_str().len()].copy_from_slice(name.as_str().as_bytes());
        self.0.extend_from_slice(&field);
        self
    }

    /// Appends a MAC address (six bytes, padded to two words).
    pub fn mac(mut self, mac: [u8; 6]) -> Self {
        self.0.extend_from_slice(&mac);
        self.0.extend_from_slice(&[0, 0]);
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

    /// A key as the kernel listed it ([`crate::ElementInfo::key`]).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Key(bytes.to_vec())
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
        Element::prefix(IpAddr::V4(network), prefix_len)
    }

    /// An IPv6 prefix as an [`Element::Interval`] for a single-field `ipv6_addr` set.
    pub fn ipv6_prefix(network: Ipv6Addr, prefix_len: u8) -> Element {
        Element::prefix(IpAddr::V6(network), prefix_len)
    }

    /// A prefix of either family as an [`Element::Interval`] for a single-field address
    /// set of that family.
    pub fn prefix(network: IpAddr, prefix_len: u8) -> Element {
        let (first, last) = ip_bounds(network, prefix_len);
        let past_end = match last {
            IpAddr::V4(a) => u32::from(a)
                .checked_add(1)
                .map(|n| IpAddr::from(Ipv4Addr::from(n))),
            IpAddr::V6(a) => u128::from(a)
                .checked_add(1)
                .map(|n| IpAddr::from(Ipv6Addr::from(n))),
        };
        Element::Interval {
            first: Key::new().ip(first),
            past_end: past_end.map(|a| Key::new().ip(a)),
        }
    }

    /// The element as [`crate::NftSocket::list_elements`] would list it once added: an
    /// interval becomes its start and its flagged past-end key.
    pub fn as_listed(&self) -> Vec<crate::ElementInfo> {
        let plain = |key: &Key| crate::ElementInfo {
            key: key.as_bytes().to_vec(),
            key_end: None,
            data: None,
            interval_end: false,
        };
        match self {
            Element::Key(key) => vec![plain(key)],
            Element::Mapping { key, value } => vec![crate::ElementInfo {
                data: Some(value.as_bytes().to_vec()),
                ..plain(key)
            }],
            Element::Range { first, last } => vec![crate::ElementInfo {
                key_end: Some(last.as_bytes().to_vec()),
                ..plain(first)
            }],
            Element::Interval { first, past_end } => {
                let mut out = vec![plain(first)];
                out.extend(past_end.iter().map(|end| crate::ElementInfo {
                    interval_end: true,
                    ..plain(end)
                }));
                out
            }
        }
    }

    fn encode(&self, w: &mut Writer) {
        self.encode_with(w, |_| {});
    }

    /// Encodes the element with `extra` attributes (a timeout) in each of its entries.
    fn encode_with(&self, w: &mut Writer, extra: impl Fn(&mut Writer)) {
        match self {
            Element::Key(key) => w.nest(NFTA_LIST_ELEM, |w| {
                w.put_data_value(NFTA_SET_ELEM_KEY, key.as_bytes());
                extra(w);
            }),
            Element::Mapping { key, value } => w.nest(NFTA_LIST_ELEM, |w| {
                w.put_data_value(NFTA_SET_ELEM_KEY, key.as_bytes());
                w.put_data_value(NFTA_SET_ELEM_DATA, value.as_bytes());
                extra(w);
            }),
            Element::Range { first, last } => w.nest(NFTA_LIST_ELEM, |w| {
                w.put_data_value(NFTA_SET_ELEM_KEY, first.as_bytes());
                w.put_data_value(NFTA_SET_ELEM_KEY_END, last.as_bytes());
                extra(w);
            }),
            Element::Interval { first, past_end } => {
                w.nest(NFTA_LIST_ELEM, |w| {
                    w.put_data_value(NFTA_SET_ELEM_KEY, first.as_bytes());
                    extra(w);
                });
                if let Some(end) = past_end {
                    w.nest(NFTA_LIST_ELEM, |w| {
                        w.put_data_value(NFTA_SET_ELEM_KEY, end.as_bytes());
                        w.put_be32(NFTA_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
                    });
                }
            }
        }
    }
}

/// A netlink attribute's length is 16 bits, so the element list of one message must stay
/// under 64 KiB; larger lists go in several messages of the same batch.
const ELEMENTS_PER_MESSAGE: usize = 256;

/// Set user data telling nft the key's byte order (`NFTNL_UDATA_SET_KEYBYTEORDER`).
fn key_byteorder_udata(order: u32) -> Vec<u8> {
    let mut out = vec![NFTNL_UDATA_SET_KEYBYTEORDER, size_of::<u32>() as u8];
    out.extend_from_slice(&order.to_ne_bytes());
    out
}

/// First and last address of an IPv4 prefix.
pub fn ipv4_bounds(network: Ipv4Addr, prefix_len: u8) -> (Ipv4Addr, Ipv4Addr) {
    let host_mask = u32::MAX.checked_shr(u32::from(prefix_len)).unwrap_or(0);
    let first = u32::from(network) & !host_mask;
    (Ipv4Addr::from(first), Ipv4Addr::from(first | host_mask))
}

/// First and last address of an IPv6 prefix.
pub fn ipv6_bounds(network: Ipv6Addr, prefix_len: u8) -> (Ipv6Addr, Ipv6Addr) {
    let host_mask = u128::MAX.checked_shr(u32::from(prefix_len)).unwrap_or(0);
    let first = u128::from(network) & !host_mask;
    (Ipv6Addr::from(first), Ipv6Addr::from(first | host_mask))
}

/// First and last address of a prefix of either family.
pub fn ip_bounds(network: IpAddr, prefix_len: u8) -> (IpAddr, IpAddr) {
    match network {
        IpAddr::V4(n) => {
            let (first, last) = ipv4_bounds(n, prefix_len);
            (first.into(), last.into())
        }
        IpAddr::V6(n) => {
            let (first, last) = ipv6_bounds(n, prefix_len);
            (first.into(), last.into())
        }
    }
}

/// A batch of nf_tables changes, committed with [`crate::NftSocket::commit`].
///
/// Each message carries a description used when the kernel refuses it.
pub struct Batch {
    pub(crate) writer: Writer,
    /// Descriptions of the messages between the delimiters, in order.
    pub(crate) ops: Vec<String>,
    /// The message type of each change, in the same order as `ops`.
    pub(crate) kinds: Vec<u16>,
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
            kinds: Vec::new(),
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
    pub fn add_table(&mut self, table: TableRef, comment: &str, exclusive: bool) {
        let flags = NLM_F_CREATE | if exclusive { NLM_F_EXCL } else { 0 };
        self.message(
            NFT_MSG_NEWTABLE,
            flags,
            table,
            format!("create table {table}"),
            |w| {
                w.put_str(NFTA_TABLE_NAME, table.name);
                w.put_be32(NFTA_TABLE_FLAGS, 0);
                w.put(NFTA_TABLE_USERDATA, &comment_udata(comment));
            },
        );
    }

    /// Deletes a table with everything in it; no error if it is not there.
    pub fn destroy_table(&mut self, table: TableRef) {
        self.message(
            NFT_MSG_DESTROYTABLE,
            0,
            table,
            format!("delete table {table}"),
            |w| w.put_str(NFTA_TABLE_NAME, table.name),
        );
    }

    /// Creates a chain; `base` hooks it into the stack, `None` makes a regular chain
    /// reachable only by jumps. A hook the table's family lacks is refused by the kernel,
    /// and the error names this chain.
    pub fn add_chain(&mut self, table: TableRef, name: &str, base: Option<BaseChain>) {
        self.message(
            NFT_MSG_NEWCHAIN,
            NLM_F_CREATE,
            table,
            format!("create chain {table} {name}"),
            |w| {
                w.put_str(NFTA_CHAIN_TABLE, table.name);
                w.put_str(NFTA_CHAIN_NAME, name);
                if let Some(base) = base {
                    let hook = base.hook.number(table.family).unwrap_or(u32::MAX);
                    w.nest(NFTA_CHAIN_HOOK, |w| {
                        w.put_be32(NFTA_HOOK_HOOKNUM, hook);
                        w.put_be32(NFTA_HOOK_PRIORITY, base.priority as u32);
                    });
                    w.put_str(NFTA_CHAIN_TYPE, base.kind.name());
                    w.put_be32(NFTA_CHAIN_POLICY, NF_ACCEPT as u32);
                }
            },
        );
    }

    /// Deletes every rule of a chain.
    pub fn flush_chain(&mut self, table: TableRef, chain: &str) {
        self.message(
            NFT_MSG_DELRULE,
            0,
            table,
            format!("flush chain {table} {chain}"),
            |w| {
                w.put_str(NFTA_RULE_TABLE, table.name);
                w.put_str(NFTA_RULE_CHAIN, chain);
            },
        );
    }

    /// Deletes every element of a set or map.
    pub fn flush_set(&mut self, table: TableRef, set: &str) {
        self.message(
            NFT_MSG_DELSETELEM,
            0,
            table,
            format!("flush set {table} {set}"),
            |w| {
                w.put_str(NFTA_SET_ELEM_LIST_TABLE, table.name);
                w.put_str(NFTA_SET_ELEM_LIST_SET, set);
            },
        );
    }

    /// Creates a named set.
    pub fn add_set(&mut self, table: TableRef, set: &SetSpec) {
        let id = self.next_set_id;
        self.next_set_id += 1;
        self.message(
            NFT_MSG_NEWSET,
            NLM_F_CREATE,
            table,
            format!("create set {table} {}", set.name),
            |w| {
                w.put_str(NFTA_SET_TABLE, table.name);
                w.put_str(NFTA_SET_NAME, &set.name);
                w.put_be32(NFTA_SET_FLAGS, set.flags());
                w.put_be32(NFTA_SET_KEY_TYPE, set.key_type());
                w.put_be32(NFTA_SET_KEY_LEN, set.key_len());
                if let Some(data) = &set.data {
                    w.put_be32(NFTA_SET_DATA_TYPE, fields_type(data));
                    w.put_be32(NFTA_SET_DATA_LEN, fields_len(data));
                }
                w.put_be32(NFTA_SET_ID, id);
                if let [field] = set.key.as_slice() {
                    // Without it nft prints a lone string key byte-reversed (as "").
                    w.put(NFTA_SET_USERDATA, &key_byteorder_udata(field.byteorder()));
                }
                if set.counters {
                    // The template each element's own counter is made from.
                    w.nest(NFTA_SET_EXPR, |w| w.put_str(NFTA_EXPR_NAME, "counter"));
                }
                if set.is_concat_interval() {
                    w.nest(NFTA_SET_DESC, |w| {
                        w.nest(NFTA_SET_DESC_CONCAT, |w| {
                            for field in &set.key {
                                w.nest(NFTA_LIST_ELEM, |w| {
                                    w.put_be32(NFTA_SET_FIELD_LEN, field.byte_len());
                                });
                            }
                        });
                    });
                }
            },
        );
    }

    /// Appends a rule to a chain; `exprs` usually comes from [`crate::Rule::exprs`].
    pub fn add_rule(&mut self, table: TableRef, chain: &str, exprs: &[Expr], comment: &str) {
        self.message(
            NFT_MSG_NEWRULE,
            NLM_F_CREATE | NLM_F_APPEND,
            table,
            format!("add rule to chain {table} {chain} ({comment})"),
            |w| {
                w.put_str(NFTA_RULE_TABLE, table.name);
                w.put_str(NFTA_RULE_CHAIN, chain);
                w.nest(NFTA_RULE_EXPRESSIONS, |w| {
                    for expr in exprs {
                        expr.encode(w);
                    }
                });
                if !comment.is_empty() {
                    w.put(NFTA_RULE_USERDATA, &comment_udata(comment));
                }
            },
        );
    }

    /// Appends a rule as [`crate::NftSocket::list_rules`] listed it (its expressions and
    /// user data unchanged), e.g. to carry it into a recreated table.
    pub fn add_listed_rule(&mut self, table: TableRef, rule: &crate::RuleInfo) {
        self.message(
            NFT_MSG_NEWRULE,
            NLM_F_CREATE | NLM_F_APPEND,
            table,
            format!(
                "carry rule {} of chain {table} {} over",
                rule.handle, rule.chain
            ),
            |w| {
                w.put_str(NFTA_RULE_TABLE, table.name);
                w.put_str(NFTA_RULE_CHAIN, &rule.chain);
                w.put(NFTA_RULE_EXPRESSIONS, &rule.expressions);
                if !rule.userdata.is_empty() {
                    w.put(NFTA_RULE_USERDATA, &rule.userdata);
                }
            },
        );
    }

    /// Adds elements to a set. Elements already there are not an error.
    pub fn add_elements(&mut self, table: TableRef, set: &str, elements: &[Element], what: &str) {
        let op = format!("add {what} to set {table} {set}");
        self.elements(NFT_MSG_NEWSETELEM, NLM_F_CREATE, table, set, elements, op);
    }

    /// Adds elements to a set made [`SetSpec::with_timeouts`] that expire by themselves
    /// after `timeout` (at least 1 ms), so a process that dies before removing them
    /// leaves nothing behind for longer.
    pub fn add_elements_expiring(
        &mut self,
        table: TableRef,
        set: &str,
        elements: &[Element],
        timeout: std::time::Duration,
        what: &str,
    ) {
        let ms = u64::try_from(timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let op = format!("add {what} to set {table} {set}");
        for chunk in elements.chunks(ELEMENTS_PER_MESSAGE) {
            self.message(NFT_MSG_NEWSETELEM, NLM_F_CREATE, table, op.clone(), |w| {
                w.put_str(NFTA_SET_ELEM_LIST_TABLE, table.name);
                w.put_str(NFTA_SET_ELEM_LIST_SET, set);
                w.nest(NFTA_SET_ELEM_LIST_ELEMENTS, |w| {
                    for element in chunk {
                        element.encode_with(w, |w| w.put_be64(NFTA_SET_ELEM_TIMEOUT, ms));
                    }
                });
            });
        }
    }

    /// Adds elements as [`crate::NftSocket::list_elements`] listed them (e.g. to keep them
    /// through a flush and refill). Elements already there are not an error.
    pub fn add_listed_elements(
        &mut self,
        table: TableRef,
        set: &str,
        elements: &[crate::ElementInfo],
        what: &str,
    ) {
        let op = format!("add {what} back to set {table} {set}");
        self.message(NFT_MSG_NEWSETELEM, NLM_F_CREATE, table, op, |w| {
            w.put_str(NFTA_SET_ELEM_LIST_TABLE, table.name);
            w.put_str(NFTA_SET_ELEM_LIST_SET, set);
            w.nest(NFTA_SET_ELEM_LIST_ELEMENTS, |w| {
                for e in elements {
                    w.nest(NFTA_LIST_ELEM, |w| {
                        w.put_data_value(NFTA_SET_ELEM_KEY, &e.key);
                        if let Some(end) = &e.key_end {
                            w.put_data_value(NFTA_SET_ELEM_KEY_END, end);
                        }
                        if let Some(data) = &e.data {
                            w.put_data_value(NFTA_SET_ELEM_DATA, data);
                        }
                        if e.interval_end {
                            w.put_be32(NFTA_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
                        }
                    });
                }
            });
        });
    }

    /// Removes elements from a set. Elements already gone are not an error.
    pub fn destroy_elements(
        &mut self,
        table: TableRef,
        set: &str,
        elements: &[Element],
        what: &str,
    ) {
        let op = format!("remove {what} from set {table} {set}");
        self.elements(NFT_MSG_DESTROYSETELEM, 0, table, set, elements, op);
    }

    /// Withdraws elements of a set made [`SetSpec::with_timeouts`] by making them expire
    /// one clock tick from now (an element updated with a timeout of 1 ms). Unlike a
    /// delete, nothing of this is left for the kernel to free after an RCU grace period:
    /// a deleted element is, and until then the next close of any nf_tables socket holds
    /// the kernel's commit lock, so every other commit waits (see
    /// `ctnet_kernel::reclaim`). An expired element no longer matches, is not listed,
    /// does not clash with a new one of the same key, and the set's garbage collector
    /// frees it. Needs Linux 6.10 or later: an older kernel takes the update without
    /// doing it.
    ///
    /// A map element must be given with the value it has: another value is refused
    /// with EEXIST, which fails the batch. An element not there is made, already expiring.
    pub fn expire_elements(
        &mut self,
        table: TableRef,
        set: &str,
        elements: &[Element],
        what: &str,
    ) {
        const ONE_MS: u64 = 1;
        let op = format!("expire {what} in set {table} {set}");
        for chunk in elements.chunks(ELEMENTS_PER_MESSAGE) {
            self.message(NFT_MSG_NEWSETELEM, 0, table, op.clone(), |w| {
                w.put_str(NFTA_SET_ELEM_LIST_TABLE, table.name);
                w.put_str(NFTA_SET_ELEM_LIST_SET, set);
                w.nest(NFTA_SET_ELEM_LIST_ELEMENTS, |w| {
                    for element in chunk {
                        element.encode_with(w, |w| {
                            w.put_be64(NFTA_SET_ELEM_TIMEOUT, ONE_MS);
                            w.put_be64(NFTA_SET_ELEM_EXPIRATION, ONE_MS);
                        });
                    }
                });
            });
        }
    }

    fn elements(
        &mut self,
        kind: u16,
        flags: u16,
        table: TableRef,
        set: &str,
        elements: &[Element],
        op: String,
    ) {
        for chunk in elements.chunks(ELEMENTS_PER_MESSAGE) {
            self.message(kind, flags, table, op.clone(), |w| {
                w.put_str(NFTA_SET_ELEM_LIST_TABLE, table.name);
                w.put_str(NFTA_SET_ELEM_LIST_SET, set);
                w.nest(NFTA_SET_ELEM_LIST_ELEMENTS, |w| {
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
        table: TableRef,
        op: String,
        body: impl FnOnce(&mut Writer),
    ) {
        assert!(!self.sealed, "message added to a sealed batch");
        let seq = self.take_seq();
        self.writer.begin_message(
            (NFNL_SUBSYS_NFTABLES << 8) | kind,
            NLM_F_REQUEST | NLM_F_ACK | flags,
            seq,
            table.family.code(),
            0,
        );
        body(&mut self.writer);
        self.writer.end_message();
        self.ops.push(op);
        self.kinds.push(kind);
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
        // The delimiters name the subsystem the batch is for in nfgenmsg's resource id.
        self.writer.begin_message(
            kind,
            NLM_F_REQUEST,
            seq,
            NFPROTO_UNSPEC,
            NFNL_SUBSYS_NFTABLES,
        );
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
    fn ipv6_keys_are_16_bytes_and_pad_like_ipv4_in_concatenations() {
        let lone = SetSpec::intervals("s6", vec![KeyField::Ipv6Addr]);
        assert_eq!(lone.key_type(), 8);
        assert_eq!(lone.key_len(), 16);
        let pair = SetSpec::intervals("p6", vec![KeyField::Ipv6Addr, KeyField::IfName]);
        assert_eq!(pair.key_type(), (8 << 6) | 41);
        assert_eq!(pair.key_len(), 32);
        let map = SetSpec::map(
            "m6",
            vec![
                KeyField::Ipv6Addr,
                KeyField::InetProto,
                KeyField::InetService,
            ],
            vec![KeyField::Ipv6Addr, KeyField::InetService],
        );
        assert_eq!(map.key_len(), 16 + 4 + 4);
        assert_eq!(map.key_type(), (((8 << 6) | 12) << 6) | 13);
        assert_eq!(fields_len(map.data.as_ref().unwrap()), 20);
        assert_eq!(fields_type(map.data.as_ref().unwrap()), (8 << 6) | 13);

        let addr: Ipv6Addr = "fd00::1:2".parse().unwrap();
        let key = Key::new().ipv6(addr).proto(17).port(53);
        let mut expected = addr.octets().to_vec();
        expected.extend([17, 0, 0, 0, 0, 53, 0, 0]);
        assert_eq!(key.as_bytes(), expected);
        assert_eq!(key.as_bytes().len() as u32, map.key_len());
        assert_eq!(Key::new().ip(IpAddr::V6(addr)), Key::new().ipv6(addr));
        let v4 = Ipv4Addr::new(10, 0, 0, 1);
        assert_eq!(Key::new().ip(IpAddr::V4(v4)), Key::new().ipv4(v4));
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
    fn ipv6_prefixes_become_start_and_past_end() {
        let v6 = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        assert_eq!(
            Element::ipv6_prefix(v6("fd00:1:2:3::9"), 48),
            Element::Interval {
                first: Key::new().ipv6(v6("fd00:1:2::")),
                past_end: Some(Key::new().ipv6(v6("fd00:1:3::"))),
            }
        );
        let top = Element::ipv6_prefix(v6("ffff::"), 16);
        assert!(matches!(top, Element::Interval { past_end: None, .. }));
        assert_eq!(
            ipv6_bounds(v6("fd00::1"), 128),
            (v6("fd00::1"), v6("fd00::1"))
        );
        assert_eq!(
            ipv6_bounds(v6("fd00::1"), 0),
            (v6("::"), Ipv6Addr::from(u128::MAX))
        );
        assert_eq!(
            ip_bounds(IpAddr::V6(v6("fd00::ff")), 120),
            (IpAddr::V6(v6("fd00::")), IpAddr::V6(v6("fd00::ff")))
        );
    }

    #[test]
    fn hooks_are_numbered_per_family() {
        assert_eq!(Hook::Forward.number(Family::Inet), Some(NF_INET_FORWARD));
        assert_eq!(
            Hook::Ingress.number(Family::Netdev),
            Some(NF_NETDEV_INGRESS)
        );
        assert_eq!(Hook::Prerouting.number(Family::Netdev), None);
        assert_eq!(Hook::Ingress.number(Family::Ip), None);
        for family in [
            Family::Inet,
            Family::Ip,
            Family::Ip6,
            Family::Arp,
            Family::Netdev,
        ] {
            for n in 0..8 {
                if let Some(hook) = Hook::from_number(family, n) {
                    assert_eq!(hook.number(family), Some(n), "{family} {hook}");
                }
            }
        }
        assert_eq!(Hook::from_number(Family::Arp, 0), Some(Hook::Input));
        assert_eq!(Hook::from_number(Family::Ip, 0), Some(Hook::Prerouting));
    }

    #[test]
    fn specs_print_as_nft_lists_them() {
        let map = SetSpec::map(
            "m",
            vec![KeyField::InetProto, KeyField::InetService],
            vec![KeyField::Ipv6Addr, KeyField::InetService],
        );
        assert_eq!(
            map.to_string(),
            "map m { type inet_proto . inet_service : ipv6_addr . inet_service; }"
        );
        let set = SetSpec::intervals("s", vec![KeyField::Ipv4Addr, KeyField::IfName]);
        assert_eq!(
            set.to_string(),
            "set s { type ipv4_addr . ifname; flags interval; }"
        );
        assert_eq!(
            map.with_timeouts().to_string(),
            "map m { type inet_proto . inet_service : ipv6_addr . inet_service; flags timeout; }"
        );
        assert_eq!(
            set.clone().with_timeouts().flags(),
            NFT_SET_INTERVAL | NFT_SET_TIMEOUT | NFT_SET_CONCAT
        );
    }

    #[test]
    fn a_mac_key_pads_to_two_words_and_counted_sets_say_so() {
        let set = SetSpec::exact("mac", vec![KeyField::IfName, KeyField::EtherAddr])
            .with_timeouts()
            .with_counters();
        assert_eq!(set.key_len(), 16 + 8);
        assert_eq!(set.key_type(), (41 << 6) | 9);
        assert_eq!(set.flags(), NFT_SET_TIMEOUT);
        assert_eq!(
            set.to_string(),
            "set mac { type ifname . ether_addr; flags timeout; counter; }"
        );
        let key = Key::new()
            .ifname(&IfName::new("veth0").unwrap())
            .mac([2, 0x42, 10, 0, 0, 2]);
        assert_eq!(key.as_bytes().len() as u32, set.key_len());
        assert_eq!(&key.as_bytes()[16..], &[2, 0x42, 10, 0, 0, 2, 0, 0]);
    }

    #[test]
    fn batch_is_framed_by_delimiters() {
        let mut b = Batch::new(100);
        b.destroy_table(TableRef::new(Family::Inet, "t"));
        assert_eq!(b.seal(), 102);
        assert_eq!(b.seq_of(0), 101);
        assert_eq!(b.len(), 1);
    }
}
