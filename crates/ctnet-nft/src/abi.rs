//! The kernel's numbers, named as in its headers, so every one can be checked against
//! `linux/netlink.h`, `linux/netfilter/nfnetlink.h`, `linux/netfilter.h` and
//! `linux/netfilter/nf_tables.h` by grepping for its name.
//!
//! They are typed here rather than taken from `libc`, which lacks most `NFTA_*`
//! attributes; the unit test below checks every one `libc` does have.
//!
//! Types follow their use on the wire: message types, attribute numbers and netlink flags
//! are `u16`, attribute values `u32` (written big-endian), families `u8`.

// ---- netlink (linux/netlink.h) ----

/// Flag: a request.
pub const NLM_F_REQUEST: u16 = 0x1;
/// Flag: acknowledge (with an `NLMSG_ERROR` of 0) even on success.
pub const NLM_F_ACK: u16 = 0x4;
/// Flag: dump every object (`NLM_F_ROOT | NLM_F_MATCH`).
pub const NLM_F_DUMP: u16 = 0x300;
/// Flag on a new-object request: fail if it exists.
pub const NLM_F_EXCL: u16 = 0x200;
/// Flag on a new-object request: create it if it does not exist.
pub const NLM_F_CREATE: u16 = 0x400;
/// Flag on a new-rule request: add at the end of the chain.
pub const NLM_F_APPEND: u16 = 0x800;
/// An acknowledgement or a refusal.
pub const NLMSG_ERROR: u16 = 2;
/// The end of a dump.
pub const NLMSG_DONE: u16 = 3;
/// Length of `struct nlmsghdr`.
pub const NLMSG_HDRLEN: usize = 16;
/// Messages and attributes start on multiples of this.
pub const NLA_ALIGNTO: usize = 4;
/// Length of `struct nlattr` (length, type).
pub const NLA_HDRLEN: usize = 4;
/// Attribute type flag: the payload is nested attributes.
pub const NLA_F_NESTED: u16 = 1 << 15;
/// Attribute type flag: the payload is in network byte order.
pub const NLA_F_NET_BYTEORDER: u16 = 1 << 14;
/// The attribute type without its flags.
pub const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | NLA_F_NET_BYTEORDER);

// ---- nfnetlink (linux/netfilter/nfnetlink.h) ----

/// The nf_tables subsystem; the high byte of every nf_tables message type.
pub const NFNL_SUBSYS_NFTABLES: u16 = 10;
/// Opens a batch.
pub const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
/// Closes a batch.
pub const NFNL_MSG_BATCH_END: u16 = 0x11;
/// The multicast group of nf_tables change notifications (`nft monitor`).
pub const NFNLGRP_NFTABLES: u32 = 7;
/// The multicast group of nf_tables trace events (`nft monitor trace`): one message per
/// rule, return or policy a packet with the nftrace bit meets.
pub const NFNLGRP_NFTRACE: u32 = 9;
/// The only `nfgenmsg` version.
pub const NFNETLINK_V0: u8 = 0;
/// Length of `struct nfgenmsg` (family, version, resource id).
pub const NFGENMSG_LEN: usize = 4;

// ---- families (linux/netfilter.h) ----

/// Every family, in a dump request.
pub const NFPROTO_UNSPEC: u8 = 0;
/// IPv4 and IPv6 together.
pub const NFPROTO_INET: u8 = 1;
/// IPv4; also what `meta nfproto` loads for an IPv4 packet.
pub const NFPROTO_IPV4: u8 = 2;
/// ARP.
pub const NFPROTO_ARP: u8 = 3;
/// A device's ingress and egress.
pub const NFPROTO_NETDEV: u8 = 5;
/// Bridged frames.
pub const NFPROTO_BRIDGE: u8 = 7;
/// IPv6; also what `meta nfproto` loads for an IPv6 packet.
pub const NFPROTO_IPV6: u8 = 10;

// ---- hooks (linux/netfilter.h); their numbers depend on the family ----

/// ip, ip6, inet and bridge: before routing.
pub const NF_INET_PRE_ROUTING: u32 = 0;
/// ip, ip6, inet and bridge: for this host.
pub const NF_INET_LOCAL_IN: u32 = 1;
/// ip, ip6, inet and bridge: routed (or bridged) through this host.
pub const NF_INET_FORWARD: u32 = 2;
/// ip, ip6, inet and bridge: sent by this host.
pub const NF_INET_LOCAL_OUT: u32 = 3;
/// ip, ip6, inet and bridge: after routing.
pub const NF_INET_POST_ROUTING: u32 = 4;
/// inet: a device's ingress.
pub const NF_INET_INGRESS: u32 = 5;
/// arp: for this host.
pub const NF_ARP_IN: u32 = 0;
/// arp: sent by this host.
pub const NF_ARP_OUT: u32 = 1;
/// arp: bridged through this host.
pub const NF_ARP_FORWARD: u32 = 2;
/// netdev: a device's ingress.
pub const NF_NETDEV_INGRESS: u32 = 0;
/// netdev: a device's egress.
pub const NF_NETDEV_EGRESS: u32 = 1;

// ---- verdicts ----

/// Drop the packet; also a chain's drop policy.
pub const NF_DROP: i32 = 0;
/// Accept the packet; also a chain's accept policy.
pub const NF_ACCEPT: i32 = 1;
/// Hand the packet to a userspace queue (the queue number in the high 16 bits).
pub const NF_QUEUE: i32 = 3;
/// The low byte of a netfilter verdict; the rest carries an errno or a queue number.
pub const NF_VERDICT_MASK: i32 = 0xff;
/// Go on with the next expression (a rule that ends without a verdict ends so).
pub const NFT_CONTINUE: i32 = -1;
/// Stop this rule: a match failed.
pub const NFT_BREAK: i32 = -2;
/// Continue in another chain, then come back.
pub const NFT_JUMP: i32 = -3;
/// Continue in another chain and do not come back.
pub const NFT_GOTO: i32 = -4;
/// Go back to the chain that jumped here.
pub const NFT_RETURN: i32 = -5;

// ---- registers ----

/// The verdict register.
pub const NFT_REG_VERDICT: u32 = 0;
/// The first 32-bit data register.
pub const NFT_REG32_00: u32 = 8;
/// How many 32-bit data registers there are.
pub const NFT_REG32_COUNT: u32 = 16;

// ---- message types (enum nf_tables_msg_types) ----

/// Creates a table.
pub const NFT_MSG_NEWTABLE: u16 = 0;
/// Reads a table.
pub const NFT_MSG_GETTABLE: u16 = 1;
/// Deletes a table (and, notified, says one was deleted).
pub const NFT_MSG_DELTABLE: u16 = 2;
/// Creates a chain.
pub const NFT_MSG_NEWCHAIN: u16 = 3;
/// Reads chains.
pub const NFT_MSG_GETCHAIN: u16 = 4;
/// Deletes a chain.
pub const NFT_MSG_DELCHAIN: u16 = 5;
/// Appends a rule.
pub const NFT_MSG_NEWRULE: u16 = 6;
/// Deletes rules; with no handle, every rule of the chain.
pub const NFT_MSG_DELRULE: u16 = 8;
/// Reads rules.
pub const NFT_MSG_GETRULE: u16 = 7;
/// Creates a set.
pub const NFT_MSG_NEWSET: u16 = 9;
/// Reads sets.
pub const NFT_MSG_GETSET: u16 = 10;
/// Deletes a set.
pub const NFT_MSG_DELSET: u16 = 11;
/// Adds set elements.
pub const NFT_MSG_NEWSETELEM: u16 = 12;
/// Reads set elements.
pub const NFT_MSG_GETSETELEM: u16 = 13;
/// Deletes set elements; with no list, every element.
pub const NFT_MSG_DELSETELEM: u16 = 14;
/// Notified at the end of every committed batch: the new generation and who made it.
pub const NFT_MSG_NEWGEN: u16 = 15;
/// Asks for the ruleset's generation (answered with a [`NFT_MSG_NEWGEN`]).
pub const NFT_MSG_GETGEN: u16 = 16;
/// A trace event (enum nft_trace_attributes), multicast to [`NFNLGRP_NFTRACE`].
pub const NFT_MSG_TRACE: u16 = 17;
/// Deletes a stateful object (counter, quota, ...).
pub const NFT_MSG_DELOBJ: u16 = 20;
/// Deletes a flowtable.
pub const NFT_MSG_DELFLOWTABLE: u16 = 24;
/// Deletes a table, quietly if it is missing (Linux 6.3).
pub const NFT_MSG_DESTROYTABLE: u16 = 26;
/// Deletes a chain, quietly if it is missing (Linux 6.3).
pub const NFT_MSG_DESTROYCHAIN: u16 = 27;
/// Deletes a rule, quietly if it is missing (Linux 6.3).
pub const NFT_MSG_DESTROYRULE: u16 = 28;
/// Deletes a set, quietly if it is missing (Linux 6.3).
pub const NFT_MSG_DESTROYSET: u16 = 29;
/// Deletes set elements, quietly if they are missing (Linux 6.3).
pub const NFT_MSG_DESTROYSETELEM: u16 = 30;
/// Deletes a stateful object, quietly if it is missing (Linux 6.3).
pub const NFT_MSG_DESTROYOBJ: u16 = 31;
/// Deletes a flowtable, quietly if it is missing (Linux 6.3).
pub const NFT_MSG_DESTROYFLOWTABLE: u16 = 32;

// ---- attributes (enum nft_*_attributes) ----

/// `NFTA_LIST_ELEM`: one item of a nested list.
pub const NFTA_LIST_ELEM: u16 = 1;

/// Table name.
pub const NFTA_TABLE_NAME: u16 = 1;
/// Table flags.
pub const NFTA_TABLE_FLAGS: u16 = 2;
/// Table user data (nft keeps its comment there).
pub const NFTA_TABLE_USERDATA: u16 = 6;

/// Chain's table.
pub const NFTA_CHAIN_TABLE: u16 = 1;
/// Chain name.
pub const NFTA_CHAIN_NAME: u16 = 3;
/// Chain hook, nested: [`NFTA_HOOK_HOOKNUM`] and [`NFTA_HOOK_PRIORITY`].
pub const NFTA_CHAIN_HOOK: u16 = 4;
/// Base chain policy, an `NF_*` verdict.
pub const NFTA_CHAIN_POLICY: u16 = 5;
/// Base chain type (`filter`, `nat`, `route`).
pub const NFTA_CHAIN_TYPE: u16 = 7;
/// Hook number, per family.
pub const NFTA_HOOK_HOOKNUM: u16 = 1;
/// Hook priority, a signed 32-bit number.
pub const NFTA_HOOK_PRIORITY: u16 = 2;

/// Rule's table.
pub const NFTA_RULE_TABLE: u16 = 1;
/// Rule's chain.
pub const NFTA_RULE_CHAIN: u16 = 2;
/// Rule handle, a big-endian u64 the kernel gives each rule of a table.
pub const NFTA_RULE_HANDLE: u16 = 3;
/// Rule's expressions, a list.
pub const NFTA_RULE_EXPRESSIONS: u16 = 4;
/// Rule user data (nft keeps its comment there).
pub const NFTA_RULE_USERDATA: u16 = 7;

/// Generation id (big-endian u32).
pub const NFTA_GEN_ID: u16 = 1;
/// The committing task's pid (its thread id), big-endian u32.
pub const NFTA_GEN_PROC_PID: u16 = 2;
/// The committing task's `comm`.
pub const NFTA_GEN_PROC_NAME: u16 = 3;

/// Trace: the table's name.
pub const NFTA_TRACE_TABLE: u16 = 1;
/// Trace: the chain's name.
pub const NFTA_TRACE_CHAIN: u16 = 2;
/// Trace: the rule's handle (be64).
pub const NFTA_TRACE_RULE_HANDLE: u16 = 3;
/// Trace: the event type (`NFT_TRACETYPE_*`, be32).
pub const NFTA_TRACE_TYPE: u16 = 4;
/// Trace: the verdict, nested [`NFTA_VERDICT_CODE`] and [`NFTA_VERDICT_CHAIN`].
pub const NFTA_TRACE_VERDICT: u16 = 5;
/// Trace: a pseudo-id, the same for every event of one packet (be32).
pub const NFTA_TRACE_ID: u16 = 6;
/// Trace: the link-layer header, up to 20 bytes.
pub const NFTA_TRACE_LL_HEADER: u16 = 7;
/// Trace: the network header, up to 40 bytes.
pub const NFTA_TRACE_NETWORK_HEADER: u16 = 8;
/// Trace: the transport header, up to 20 bytes.
pub const NFTA_TRACE_TRANSPORT_HEADER: u16 = 9;
/// Trace: the input interface's index (be32).
pub const NFTA_TRACE_IIF: u16 = 10;
/// Trace: the input interface's type, `ARPHRD_*` (be16).
pub const NFTA_TRACE_IIFTYPE: u16 = 11;
/// Trace: the output interface's index (be32).
pub const NFTA_TRACE_OIF: u16 = 12;
/// Trace: the output interface's type, `ARPHRD_*` (be16).
pub const NFTA_TRACE_OIFTYPE: u16 = 13;
/// Trace: the packet mark (be32).
pub const NFTA_TRACE_MARK: u16 = 14;
/// Trace: the layer 3 protocol being processed, `NFPROTO_*` (be32).
pub const NFTA_TRACE_NFPROTO: u16 = 15;
/// Trace: the base chain's policy that decided the packet (be32).
pub const NFTA_TRACE_POLICY: u16 = 16;
/// Trace: padding for the 64-bit handle.
pub const NFTA_TRACE_PAD: u16 = 17;

/// Expression name.
pub const NFTA_EXPR_NAME: u16 = 1;
/// Expression attributes, nested.
pub const NFTA_EXPR_DATA: u16 = 2;

/// Set's table.
pub const NFTA_SET_TABLE: u16 = 1;
/// Set name.
pub const NFTA_SET_NAME: u16 = 2;
/// Set flags (`NFT_SET_*`).
pub const NFTA_SET_FLAGS: u16 = 3;
/// Key type, nft's datatype number (six bits per concatenated field).
pub const NFTA_SET_KEY_TYPE: u16 = 4;
/// Key length in bytes.
pub const NFTA_SET_KEY_LEN: u16 = 5;
/// A map's value type.
pub const NFTA_SET_DATA_TYPE: u16 = 6;
/// A map's value length in bytes.
pub const NFTA_SET_DATA_LEN: u16 = 7;
/// Set description, nested.
pub const NFTA_SET_DESC: u16 = 9;
/// Set id, naming the set within its batch.
pub const NFTA_SET_ID: u16 = 10;
/// Set user data (nft keeps the key's byte order there).
pub const NFTA_SET_USERDATA: u16 = 13;
/// Set: one stateful expression every element gets its own instance of (a `counter`).
pub const NFTA_SET_EXPR: u16 = 17;
/// In a set description: the concatenation's fields, a list.
pub const NFTA_SET_DESC_CONCAT: u16 = 2;
/// In a concatenation field: its length.
pub const NFTA_SET_FIELD_LEN: u16 = 1;

/// Element list's table.
pub const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
/// Element list's set.
pub const NFTA_SET_ELEM_LIST_SET: u16 = 2;
/// The elements, a list.
pub const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
/// Element key, nested data.
pub const NFTA_SET_ELEM_KEY: u16 = 1;
/// Element value (in a map), nested data.
pub const NFTA_SET_ELEM_DATA: u16 = 2;
/// Element flags (`NFT_SET_ELEM_*`).
pub const NFTA_SET_ELEM_FLAGS: u16 = 3;
/// Element timeout in milliseconds (be64): the element expires that long after it is
/// added, or updated with one; 0 or absent is never.
pub const NFTA_SET_ELEM_TIMEOUT: u16 = 4;
/// Milliseconds (be64) until the element expires, at most its timeout.
pub const NFTA_SET_ELEM_EXPIRATION: u16 = 5;
/// Last key of a range, nested data.
pub const NFTA_SET_ELEM_KEY_END: u16 = 10;
/// Element: its one stateful expression (nested `NFTA_EXPR_*`), as dumps give it.
pub const NFTA_SET_ELEM_EXPR: u16 = 7;
/// Element: its stateful expressions when there are several (a list of them).
pub const NFTA_SET_ELEM_EXPRESSIONS: u16 = 11;
/// `counter`: bytes (be64).
pub const NFTA_COUNTER_BYTES: u16 = 1;
/// `counter`: packets (be64).
pub const NFTA_COUNTER_PACKETS: u16 = 2;

/// In nested data: a value.
pub const NFTA_DATA_VALUE: u16 = 1;
/// In nested data: a verdict, nested.
pub const NFTA_DATA_VERDICT: u16 = 2;
/// Verdict code, an `NF_*` or `NFT_*` verdict.
pub const NFTA_VERDICT_CODE: u16 = 1;
/// Verdict chain, for a jump.
pub const NFTA_VERDICT_CHAIN: u16 = 2;

/// `meta`: destination register.
pub const NFTA_META_DREG: u16 = 1;
/// `meta`: what to load (`NFT_META_*`).
pub const NFTA_META_KEY: u16 = 2;
/// `meta` (set): source register.
pub const NFTA_META_SREG: u16 = 3;
/// `payload`: destination register.
pub const NFTA_PAYLOAD_DREG: u16 = 1;
/// `payload`: the header (`NFT_PAYLOAD_*_HEADER`).
pub const NFTA_PAYLOAD_BASE: u16 = 2;
/// `payload`: offset in the header.
pub const NFTA_PAYLOAD_OFFSET: u16 = 3;
/// `payload`: bytes to load.
pub const NFTA_PAYLOAD_LEN: u16 = 4;
/// `cmp`: source register.
pub const NFTA_CMP_SREG: u16 = 1;
/// `cmp`: operator (`NFT_CMP_*`).
pub const NFTA_CMP_OP: u16 = 2;
/// `cmp`: the constant, nested data.
pub const NFTA_CMP_DATA: u16 = 3;
/// `lookup`: the set's name.
pub const NFTA_LOOKUP_SET: u16 = 1;
/// `lookup`: register where the key starts.
pub const NFTA_LOOKUP_SREG: u16 = 2;
/// `lookup`: register receiving a map's value.
pub const NFTA_LOOKUP_DREG: u16 = 3;
/// `lookup`: flags (`NFT_LOOKUP_F_INV`).
pub const NFTA_LOOKUP_FLAGS: u16 = 5;
/// `bitwise`: source register.
pub const NFTA_BITWISE_SREG: u16 = 1;
/// `bitwise`: destination register.
pub const NFTA_BITWISE_DREG: u16 = 2;
/// `bitwise`: bytes it covers.
pub const NFTA_BITWISE_LEN: u16 = 3;
/// `bitwise`: AND mask, nested data.
pub const NFTA_BITWISE_MASK: u16 = 4;
/// `bitwise`: XOR value, nested data.
pub const NFTA_BITWISE_XOR: u16 = 5;
/// `ct`: destination register.
pub const NFTA_CT_DREG: u16 = 1;
/// `ct`: what to load (`NFT_CT_*`).
pub const NFTA_CT_KEY: u16 = 2;
/// `fib`: destination register.
pub const NFTA_FIB_DREG: u16 = 1;
/// `fib`: what to return (`NFT_FIB_RESULT_*`).
pub const NFTA_FIB_RESULT: u16 = 2;
/// `fib`: what to look up (`NFTA_FIB_F_*`).
pub const NFTA_FIB_FLAGS: u16 = 3;
/// `immediate`: destination register.
pub const NFTA_IMMEDIATE_DREG: u16 = 1;
/// `immediate`: the value, nested data.
pub const NFTA_IMMEDIATE_DATA: u16 = 2;
/// `nat`: `NFT_NAT_SNAT` or `NFT_NAT_DNAT`.
pub const NFTA_NAT_TYPE: u16 = 1;
/// `nat`: the address family, `NFPROTO_IPV4` or `NFPROTO_IPV6`.
pub const NFTA_NAT_FAMILY: u16 = 2;
/// `nat`: register holding the (lowest) new address.
pub const NFTA_NAT_REG_ADDR_MIN: u16 = 3;
/// `nat`: register holding the (lowest) new port.
pub const NFTA_NAT_REG_PROTO_MIN: u16 = 5;

// ---- attribute values ----

/// Set flag: elements are ranges.
pub const NFT_SET_INTERVAL: u32 = 0x4;
/// Set flag: an anonymous set, made for one rule (`ip saddr { a, b }`).
pub const NFT_SET_ANONYMOUS: u32 = 0x1;
/// Set flag: a map.
pub const NFT_SET_MAP: u32 = 0x8;
/// Set flag: elements may carry timeouts (and have them updated).
pub const NFT_SET_TIMEOUT: u32 = 0x10;
/// Set flag: ranges over a concatenation (the pipapo set type).
pub const NFT_SET_CONCAT: u32 = 0x80;
/// Element flag: the first key past a range.
pub const NFT_SET_ELEM_INTERVAL_END: u32 = 0x1;
/// Lookup flag: match when the key is absent.
pub const NFT_LOOKUP_F_INV: u32 = 1;

/// `meta`: input interface name.
pub const NFT_META_IIFNAME: u32 = 6;
/// `meta`: output interface name.
pub const NFT_META_OIFNAME: u32 = 7;
/// `meta`: the packet's nftrace bit (one byte when set).
pub const NFT_META_NFTRACE: u32 = 12;
/// `meta`: layer 3 family (`NFPROTO_*`).
pub const NFT_META_NFPROTO: u32 = 15;
/// `meta`: layer 4 protocol number.
pub const NFT_META_L4PROTO: u32 = 16;

/// `payload`: the link-layer (Ethernet) header, in bridge and netdev tables.
pub const NFT_PAYLOAD_LL_HEADER: u32 = 0;
/// `payload`: the network header.
pub const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
/// `payload`: the transport header.
pub const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;

/// Trace event type: none given.
pub const NFT_TRACETYPE_UNSPEC: u32 = 0;
/// Trace event type: a base chain's policy decided.
pub const NFT_TRACETYPE_POLICY: u32 = 1;
/// Trace event type: the end of a regular chain, back to the one that jumped.
pub const NFT_TRACETYPE_RETURN: u32 = 2;
/// Trace event type: a rule matched (with its verdict).
pub const NFT_TRACETYPE_RULE: u32 = 3;

/// `cmp`: equal.
pub const NFT_CMP_EQ: u32 = 0;
/// `cmp`: not equal.
pub const NFT_CMP_NEQ: u32 = 1;

/// `ct`: state bits.
pub const NFT_CT_STATE: u32 = 0;
/// `ct`: status bits.
pub const NFT_CT_STATUS: u32 = 2;

/// `fib`: return the route type (`RTN_*`).
pub const NFT_FIB_RESULT_ADDRTYPE: u32 = 3;
/// `fib`: look up the destination address.
pub const NFTA_FIB_F_DADDR: u32 = 1 << 1;

/// `nat`: destination NAT.
pub const NFT_NAT_DNAT: u32 = 1;

// ---- values rules compare with ----

/// `ct state invalid`: `NF_CT_STATE_INVALID_BIT`.
pub const CT_STATE_INVALID: u32 = 1;
/// `ct state new`: `NF_CT_STATE_BIT(IP_CT_NEW)`.
pub const CT_STATE_NEW: u32 = 1 << 3;
/// `ct state established`: `NF_CT_STATE_BIT(IP_CT_ESTABLISHED)`.
pub const CT_STATE_ESTABLISHED: u32 = 1 << 1;
/// `ct state related`: `NF_CT_STATE_BIT(IP_CT_RELATED)`.
pub const CT_STATE_RELATED: u32 = 1 << 2;
/// `ct status dnat` (`IPS_DNAT`): the connection's destination was translated.
pub const CT_STATUS_DNAT: u32 = 1 << 5;
/// `RTN_LOCAL` (linux/rtnetlink.h): an address of this host.
pub const RTN_LOCAL: u32 = 2;

// ---- nft's own conventions (libnftnl, nftables' datatype.h) ----

/// nft datatype `ipv4_addr`.
pub const TYPE_IPADDR: u32 = 7;
/// nft datatype `ipv6_addr`.
pub const TYPE_IP6ADDR: u32 = 8;
/// nft datatype `ether_addr`.
pub const TYPE_ETHERADDR: u32 = 9;
/// nft datatype `inet_proto`.
pub const TYPE_INET_PROTOCOL: u32 = 12;
/// nft datatype `inet_service`.
pub const TYPE_INET_SERVICE: u32 = 13;
/// nft datatype `ifname`.
pub const TYPE_IFNAME: u32 = 41;
/// Bits per field in a concatenated type.
pub const TYPE_BITS: u32 = 6;
/// nft byte order: host.
pub const BYTEORDER_HOST_ENDIAN: u32 = 1;
/// nft byte order: network.
pub const BYTEORDER_BIG_ENDIAN: u32 = 2;
/// User-data TLV of a table or rule: the comment nft prints.
pub const NFTNL_UDATA_COMMENT: u8 = 0;
/// User-data TLV of a set: the key's byte order.
pub const NFTNL_UDATA_SET_KEYBYTEORDER: u8 = 0;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every constant `libc` also defines must agree with it.
    #[test]
    fn agrees_with_libc() {
        macro_rules! same {
            ($($name:ident),* $(,)?) => {
                $(assert_eq!(i64::from($name), libc::$name as i64, stringify!($name));)*
            };
        }
        same!(
            NLM_F_REQUEST,
            NLM_F_ACK,
            NLM_F_DUMP,
            NLM_F_EXCL,
            NLM_F_CREATE,
            NLM_F_APPEND,
            NLMSG_ERROR,
            NLMSG_DONE,
            NLA_F_NESTED,
            NLA_F_NET_BYTEORDER,
            NFNL_SUBSYS_NFTABLES,
            NFNL_MSG_BATCH_BEGIN,
            NFNL_MSG_BATCH_END,
            NFNETLINK_V0,
            NFPROTO_UNSPEC,
            NFPROTO_INET,
            NFPROTO_IPV4,
            NFPROTO_ARP,
            NFPROTO_NETDEV,
            NFPROTO_BRIDGE,
            NFPROTO_IPV6,
            NF_INET_PRE_ROUTING,
            NF_INET_LOCAL_IN,
            NF_INET_FORWARD,
            NF_INET_LOCAL_OUT,
            NF_INET_POST_ROUTING,
            NF_INET_INGRESS,
            NF_ARP_IN,
            NF_ARP_OUT,
            NF_ARP_FORWARD,
            NF_NETDEV_INGRESS,
            NF_NETDEV_EGRESS,
            NF_DROP,
            NF_ACCEPT,
            NF_QUEUE,
            NF_VERDICT_MASK,
            NFT_CONTINUE,
            NFT_BREAK,
            NFT_GOTO,
            NFT_JUMP,
            NFT_RETURN,
            NFT_REG_VERDICT,
            NFT_REG32_00,
            NFNLGRP_NFTABLES,
            NFNLGRP_NFTRACE,
            NFT_MSG_TRACE,
            NFT_META_NFTRACE,
            NFT_TRACETYPE_UNSPEC,
            NFT_TRACETYPE_POLICY,
            NFT_TRACETYPE_RETURN,
            NFT_TRACETYPE_RULE,
            NFT_MSG_NEWTABLE,
            NFT_MSG_GETTABLE,
            NFT_MSG_DELTABLE,
            NFT_MSG_DELCHAIN,
            NFT_MSG_DELSET,
            NFT_MSG_NEWGEN,
            NFT_MSG_GETGEN,
            NFT_MSG_DELOBJ,
            NFT_MSG_NEWCHAIN,
            NFT_MSG_GETCHAIN,
            NFT_MSG_NEWRULE,
            NFT_MSG_DELRULE,
            NFT_MSG_GETRULE,
            NFT_MSG_NEWSET,
            NFT_MSG_GETSET,
            NFT_MSG_NEWSETELEM,
            NFT_MSG_GETSETELEM,
            NFT_MSG_DELSETELEM,
            NFT_SET_INTERVAL,
            NFT_SET_ANONYMOUS,
            NFT_SET_MAP,
            NFT_SET_TIMEOUT,
            NFT_SET_ELEM_INTERVAL_END,
            NFT_LOOKUP_F_INV,
            NFT_META_IIFNAME,
            NFT_META_OIFNAME,
            NFT_META_NFPROTO,
            NFT_META_L4PROTO,
            NFT_PAYLOAD_LL_HEADER,
            NFT_PAYLOAD_NETWORK_HEADER,
            NFT_PAYLOAD_TRANSPORT_HEADER,
            NFT_CMP_EQ,
            NFT_CMP_NEQ,
            NFT_CT_STATE,
            NFT_CT_STATUS,
            NFT_NAT_DNAT,
            RTN_LOCAL,
        );
        assert_eq!(NLMSG_HDRLEN, std::mem::size_of::<libc::nlmsghdr>());
        assert_eq!(
            i64::from(NFT_REG32_COUNT),
            (libc::NFT_REG32_15 - libc::NFT_REG32_00 + 1) as i64
        );
    }
}
