//! A rule builder that reads like nft's syntax and picks the registers itself.
//!
//! ```text
//! Rule::new()                                   meta nfproto ipv4
//!     .nfproto(NfProto::Ipv4)                   iifname != "lo"
//!     .iifname_neq("lo")                        ip daddr 127.0.0.0/8
//!     .daddr_in_prefix(127.0.0.0, 8)            counter
//!     .counter()                                drop
//!     .drop()
//! ```
//!
//! Every match loads into registers from [`Register::R0`] on; a concatenated key's fields
//! go in consecutive registers, each padded to whole 32-bit words, which is the layout
//! set keys have ([`crate::Key`]). A field still in the register a key needs it in is not
//! loaded again (`ip saddr @a ip saddr . oifname @b` loads `ip saddr` once), so hand-tuned
//! rules come out expression for expression the same.

use std::net::IpAddr;

use crate::abi::{NFT_REG32_COUNT, RTN_LOCAL};
use crate::expr::{CmpOp, CtKey, Expr, MetaKey, NfProto, PayloadBase, Register, Verdict};

/// A packet field a rule can load, named as nft writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// `meta nfproto`: the layer 3 family, 1 byte.
    NfProto,
    /// `meta l4proto`: the layer 4 protocol, 1 byte.
    L4Proto,
    /// `iifname`: the input interface, 16 bytes.
    IifName,
    /// `oifname`: the output interface, 16 bytes.
    OifName,
    /// `ip saddr`, 4 bytes.
    IpSaddr,
    /// `ip daddr`, 4 bytes.
    IpDaddr,
    /// `ip6 saddr`, 16 bytes.
    Ip6Saddr,
    /// `ip6 daddr`, 16 bytes.
    Ip6Daddr,
    /// `th sport`: the TCP or UDP source port, 2 bytes.
    Sport,
    /// `th dport`: the TCP or UDP destination port, 2 bytes.
    Dport,
    /// `ether saddr`: the frame's source MAC, 6 bytes (`bridge` and `netdev` tables).
    EtherSaddr,
    /// `ether type`: the frame's EtherType, 2 bytes, network order (`0x8100` for a
    /// VLAN-tagged frame, whose tag the kernel keeps outside the frame: it is put back
    /// for the load).
    EtherType,
    /// ARP's fixed fields `htype . ptype . hlen . plen` (RFC 826), 6 bytes: `00 01 08 00
    /// 06 04` for Ethernet and IPv4, the only layout the sender fields below fit.
    ArpFormat,
    /// `arp saddr ether`: the sender hardware address of an Ethernet/IPv4 ARP, 6 bytes.
    ArpSha,
    /// `arp saddr ip`: the sender protocol address of an Ethernet/IPv4 ARP, 4 bytes.
    ArpSpa,
    /// `icmpv6 type`, 1 byte (put `l4proto` 58 before it).
    Icmpv6Type,
    /// `tcp flags`, 1 byte (put `l4proto` 6 before it).
    TcpFlags,
    /// The target address of a neighbour solicitation or advertisement, or of a
    /// redirect (RFC 4861 4.3-4.5), 16 bytes: `@th,64,128`.
    NdTarget,
}

impl Field {
    /// The source address of `proto`.
    pub fn saddr(proto: NfProto) -> Field {
        match proto {
            NfProto::Ipv4 => Field::IpSaddr,
            NfProto::Ipv6 => Field::Ip6Saddr,
        }
    }

    /// The destination address of `proto`.
    pub fn daddr(proto: NfProto) -> Field {
        match proto {
            NfProto::Ipv4 => Field::IpDaddr,
            NfProto::Ipv6 => Field::Ip6Daddr,
        }
    }

    /// How many bytes the field is.
    pub fn byte_len(self) -> u32 {
        match self {
            Field::NfProto | Field::L4Proto | Field::Icmpv6Type | Field::TcpFlags => 1,
            Field::Sport | Field::Dport | Field::EtherType => 2,
            Field::IpSaddr | Field::IpDaddr | Field::ArpSpa => 4,
            Field::EtherSaddr | Field::ArpFormat | Field::ArpSha => 6,
            Field::IifName
            | Field::OifName
            | Field::Ip6Saddr
            | Field::Ip6Daddr
            | Field::NdTarget => 16,
        }
    }

    /// The expression that loads the field into `dreg` (and the registers after it).
    pub fn load(self, dreg: Register) -> Expr {
        let meta = |key| Expr::Meta { key, dreg };
        let payload = |base, offset| Expr::Payload {
            base,
            offset,
            len: self.byte_len(),
            dreg,
        };
        match self {
            Field::NfProto => meta(MetaKey::NfProto),
            Field::L4Proto => meta(MetaKey::L4Proto),
            Field::IifName => meta(MetaKey::IifName),
            Field::OifName => meta(MetaKey::OifName),
            // Offsets in the IPv4 header (RFC 791) and the IPv6 header (RFC 8200).
            Field::IpSaddr => payload(PayloadBase::Network, 12),
            Field::IpDaddr => payload(PayloadBase::Network, 16),
            Field::Ip6Saddr => payload(PayloadBase::Network, 8),
            Field::Ip6Daddr => payload(PayloadBase::Network, 24),
            // TCP and UDP put their ports in the same place.
            Field::Sport => payload(PayloadBase::Transport, 0),
            Field::Dport => payload(PayloadBase::Transport, 2),
            // The Ethernet header: destination, source, type.
            Field::EtherSaddr => payload(PayloadBase::Link, 6),
            Field::EtherType => payload(PayloadBase::Link, 12),
            // ARP (RFC 826): htype(2) ptype(2) hlen(1) plen(1) oper(2) sha(6) spa(4) ...
            Field::ArpFormat => payload(PayloadBase::Network, 0),
            Field::ArpSha => payload(PayloadBase::Network, 8),
            Field::ArpSpa => payload(PayloadBase::Network, 14),
            // ICMPv6 (RFC 4443): type(1) code(1) checksum(2); NDP's target after 4
            // reserved or flag bytes.
            Field::Icmpv6Type => payload(PayloadBase::Transport, 0),
            Field::TcpFlags => payload(PayloadBase::Transport, 13),
            Field::NdTarget => payload(PayloadBase::Transport, 8),
        }
    }
}

/// A rule's expressions, built match by match. See the module documentation.
#[derive(Debug, Clone, Default)]
pub struct Rule {
    exprs: Vec<Expr>,
    /// Which field each register holds since it was loaded, for reuse by later keys.
    held: Vec<(Register, Field)>,
}

impl Rule {
    /// A rule that matches every packet and does nothing yet.
    pub fn new() -> Self {
        Rule::default()
    }

    /// The expressions, for [`crate::Batch::add_rule`].
    pub fn exprs(&self) -> &[Expr] {
        &self.exprs
    }

    /// The expressions, owned.
    pub fn into_exprs(self) -> Vec<Expr> {
        self.exprs
    }

    /// Appends a hand-built expression. The builder then assumes it overwrote every
    /// register.
    pub fn expr(mut self, expr: Expr) -> Self {
        self.exprs.push(expr);
        self.held.clear();
        self
    }

    /// `meta nfproto ipv4` (or `ipv6`): in an `inet` table, the packet is of that family.
    /// Put it before matches on addresses of one family.
    pub fn nfproto(self, proto: NfProto) -> Self {
        self.cmp(Field::NfProto, CmpOp::Eq, vec![proto.code()])
    }

    /// `meta l4proto udp`: the layer 4 protocol is `proto` (`IPPROTO_*`).
    pub fn l4proto(self, proto: u8) -> Self {
        self.cmp(Field::L4Proto, CmpOp::Eq, vec![proto])
    }

    /// `th dport 53`: the TCP or UDP destination port. Put [`Rule::l4proto`] before it,
    /// as nft does for `udp dport 53`: other protocols have other bytes there.
    pub fn dport(self, port: u16) -> Self {
        self.cmp(Field::Dport, CmpOp::Eq, port.to_be_bytes().to_vec())
    }

    /// `ether type 0x0806`: the frame's EtherType (`bridge` and `netdev` tables).
    pub fn ether_type(self, ether_type: u16) -> Self {
        self.cmp(
            Field::EtherType,
            CmpOp::Eq,
            ether_type.to_be_bytes().to_vec(),
        )
    }

    /// `ether type != 0x0806`.
    pub fn ether_type_neq(self, ether_type: u16) -> Self {
        self.cmp(
            Field::EtherType,
            CmpOp::Neq,
            ether_type.to_be_bytes().to_vec(),
        )
    }

    /// `FIELD == value`, `value` as the field's bytes in packet order (`field.byte_len()`
    /// of them): for the fields with no method of their own.
    pub fn field_eq(self, field: Field, value: &[u8]) -> Self {
        assert_eq!(
            value.len() as u32,
            field.byte_len(),
            "{field:?} compared with {value:?}"
        );
        self.cmp(field, CmpOp::Eq, value.to_vec())
    }

    /// `FIELD != value`; see [`Rule::field_eq`].
    pub fn field_neq(self, field: Field, value: &[u8]) -> Self {
        assert_eq!(
            value.len() as u32,
            field.byte_len(),
            "{field:?} compared with {value:?}"
        );
        self.cmp(field, CmpOp::Neq, value.to_vec())
    }

    /// `iifname "name"`.
    pub fn iifname_eq(self, name: &str) -> Self {
        self.cmp(Field::IifName, CmpOp::Eq, ifname_bytes(name))
    }

    /// `iifname != "name"`.
    pub fn iifname_neq(self, name: &str) -> Self {
        self.cmp(Field::IifName, CmpOp::Neq, ifname_bytes(name))
    }

    /// `oifname "name"`.
    pub fn oifname_eq(self, name: &str) -> Self {
        self.cmp(Field::OifName, CmpOp::Eq, ifname_bytes(name))
    }

    /// `oifname != "name"`.
    pub fn oifname_neq(self, name: &str) -> Self {
        self.cmp(Field::OifName, CmpOp::Neq, ifname_bytes(name))
    }

    /// `ip saddr 10.0.0.0/8`, or `ip6 saddr fd00::/8` for an IPv6 `network`.
    pub fn saddr_in_prefix(self, network: IpAddr, prefix_len: u8) -> Self {
        let field = Field::saddr(proto_of(network));
        self.in_prefix(field, network, prefix_len)
    }

    /// `ip daddr 127.0.0.0/8`, or `ip6 daddr ::1/128` for an IPv6 `network`.
    pub fn daddr_in_prefix(self, network: IpAddr, prefix_len: u8) -> Self {
        let field = Field::daddr(proto_of(network));
        self.in_prefix(field, network, prefix_len)
    }

    /// `ct state established,related`: any of the `mask` bits
    /// ([`crate::abi::CT_STATE_ESTABLISHED`] and friends) is set.
    pub fn ct_state_any(self, mask: u32) -> Self {
        self.ct_any(CtKey::State, mask)
    }

    /// `ct status dnat`: any of the `mask` bits ([`crate::abi::CT_STATUS_DNAT`]) is set.
    pub fn ct_status_any(self, mask: u32) -> Self {
        self.ct_any(CtKey::Status, mask)
    }

    /// `fib daddr type local`: the destination is an address of this host, in the
    /// packet's family.
    pub fn fib_daddr_local(mut self) -> Self {
        self.exprs.push(Expr::FibDaddrType { dreg: Register::R0 });
        self.wrote(Register::R0, 4);
        self.exprs.push(Expr::Cmp {
            sreg: Register::R0,
            op: CmpOp::Eq,
            data: RTN_LOCAL.to_ne_bytes().to_vec(),
        });
        self
    }

    /// `iifname . oifname @set`: the concatenation of `key` is in `set`.
    pub fn in_set(self, key: &[Field], set: &str) -> Self {
        self.lookup(key, set, false)
    }

    /// `ip saddr . oifname != @set`: the concatenation of `key` is not in `set`.
    pub fn not_in_set(self, key: &[Field], set: &str) -> Self {
        self.lookup(key, set, true)
    }

    /// `dnat ip to ip daddr . meta l4proto . th dport map @map` (or `dnat ip6 to` for
    /// IPv6): looks `key` up in `map`, whose values are `address . inet_service` of
    /// `proto`, and translates the destination to them. The rule stops when the key is
    /// absent.
    pub fn dnat_map(mut self, key: &[Field], map: &str, proto: NfProto) -> Self {
        let sreg = self.load_key(key);
        self.exprs.push(Expr::Map {
            map: map.into(),
            sreg,
            dreg: Register::R0,
        });
        let port = Register::R0
            .after(proto.addr_len())
            .expect("an address and a port fit the registers");
        self.wrote(Register::R0, proto.addr_len() + 4);
        self.exprs.push(Expr::Dnat {
            family: proto,
            addr: Register::R0,
            port,
        });
        self
    }

    /// `meta nftrace set 1`: from here on the packet is traced, every rule, return and
    /// policy it meets multicast as an event ([`crate::trace::Tracer`]).
    pub fn set_nftrace(mut self) -> Self {
        self.exprs.push(Expr::Immediate {
            dreg: Register::R0,
            data: vec![1],
        });
        self.wrote(Register::R0, 1);
        self.exprs.push(Expr::MetaSet {
            key: MetaKey::NfTrace,
            sreg: Register::R0,
        });
        self
    }

    /// `counter`.
    pub fn counter(mut self) -> Self {
        self.exprs.push(Expr::Counter);
        self
    }

    /// `masquerade`.
    pub fn masquerade(mut self) -> Self {
        self.exprs.push(Expr::Masquerade);
        self
    }

    /// Ends with a verdict.
    pub fn verdict(mut self, verdict: Verdict) -> Self {
        self.exprs.push(Expr::Verdict(verdict));
        self
    }

    /// `accept`.
    pub fn accept(self) -> Self {
        self.verdict(Verdict::Accept)
    }

    /// `drop`.
    pub fn drop(self) -> Self {
        self.verdict(Verdict::Drop)
    }

    /// `jump chain`.
    pub fn jump(self, chain: &str) -> Self {
        self.verdict(Verdict::Jump(chain.into()))
    }

    /// `FIELD & mask == 0`: none of the bits of `mask` set in a one-byte field (`tcp
    /// flags & syn == 0`).
    pub fn bits_clear(mut self, field: Field, mask: u8) -> Self {
        self.load(field, Register::R0);
        self.exprs.extend([
            Expr::Bitwise {
                sreg: Register::R0,
                dreg: Register::R0,
                mask: vec![mask],
                xor: vec![0],
            },
            Expr::Cmp {
                sreg: Register::R0,
                op: CmpOp::Eq,
                data: vec![0],
            },
        ]);
        self
    }

    fn cmp(mut self, field: Field, op: CmpOp, data: Vec<u8>) -> Self {
        self.load(field, Register::R0);
        self.exprs.push(Expr::Cmp {
            sreg: Register::R0,
            op,
            data,
        });
        self
    }

    fn in_prefix(mut self, field: Field, network: IpAddr, prefix_len: u8) -> Self {
        let (first, _) = crate::ip_bounds(network, prefix_len);
        let first = match first {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        let bits = first.len() * 8;
        self.load(field, Register::R0);
        if usize::from(prefix_len) < bits {
            let mask: Vec<u8> = (0..first.len())
                .map(|i| {
                    let ones = usize::from(prefix_len).saturating_sub(i * 8).min(8);
                    (0xffu16 << (8 - ones)) as u8
                })
                .collect();
            self.exprs.push(Expr::Bitwise {
                sreg: Register::R0,
                dreg: Register::R0,
                xor: vec![0; mask.len()],
                mask,
            });
            self.wrote(Register::R0, field.byte_len());
        }
        self.exprs.push(Expr::Cmp {
            sreg: Register::R0,
            op: CmpOp::Eq,
            data: first,
        });
        self
    }

    fn ct_any(mut self, key: CtKey, mask: u32) -> Self {
        let reg = Register::R0;
        self.exprs.push(Expr::Ct { key, dreg: reg });
        self.wrote(reg, 4);
        self.exprs.extend([
            Expr::Bitwise {
                sreg: reg,
                dreg: reg,
                mask: mask.to_ne_bytes().to_vec(),
                xor: vec![0; 4],
            },
            Expr::Cmp {
                sreg: reg,
                op: CmpOp::Neq,
                data: vec![0; 4],
            },
        ]);
        self
    }

    fn lookup(mut self, key: &[Field], set: &str, invert: bool) -> Self {
        let sreg = self.load_key(key);
        self.exprs.push(Expr::Lookup {
            set: set.into(),
            sreg,
            invert,
        });
        self
    }

    /// Loads `key`'s fields into consecutive registers from R0; returns where it starts.
    fn load_key(&mut self, key: &[Field]) -> Register {
        let mut index = 0;
        for field in key {
            let reg = Register::r32(index)
                .unwrap_or_else(|| panic!("key {key:?} does not fit the registers"));
            self.load(*field, reg);
            index += field.byte_len().div_ceil(4);
        }
        Register::R0
    }

    fn load(&mut self, field: Field, at: Register) {
        assert!(
            at.index() + field.byte_len().div_ceil(4) <= NFT_REG32_COUNT,
            "{field:?} does not fit the registers from {at}"
        );
        if self.held.contains(&(at, field)) {
            return;
        }
        self.exprs.push(field.load(at));
        self.wrote(at, field.byte_len());
        self.held.push((at, field));
    }

    /// Forgets what the registers `len` bytes from `at` held.
    fn wrote(&mut self, at: Register, len: u32) {
        let span = |reg: Register, len: u32| (reg.index(), reg.index() + len.div_ceil(4));
        let (start, end) = span(at, len);
        self.held.retain(|&(reg, field)| {
            let (s, e) = span(reg, field.byte_len());
            e <= start || s >= end
        });
    }
}

fn proto_of(addr: IpAddr) -> NfProto {
    match addr {
        IpAddr::V4(_) => NfProto::Ipv4,
        IpAddr::V6(_) => NfProto::Ipv6,
    }
}

/// An interface name as the kernel compares it: zero-padded to 16 bytes.
fn ifname_bytes(name: &str) -> Vec<u8> {
    let mut data = name.as_bytes().to_vec();
    data.resize(16, 0);
    data
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::abi::{
        CT_STATE_ESTABLISHED, CT_STATE_RELATED, CT_STATUS_DNAT, NFPROTO_IPV4, NFPROTO_IPV6,
    };

    const R0: Register = Register::R0;

    fn r(i: u32) -> Register {
        Register::r32(i).unwrap()
    }

    #[test]
    fn a_single_match_loads_into_r0_and_compares() {
        let rule = Rule::new()
            .nfproto(NfProto::Ipv4)
            .iifname_neq("lo")
            .daddr_in_prefix(Ipv4Addr::new(127, 0, 0, 0).into(), 8)
            .counter()
            .drop();
        let mut lo = b"lo".to_vec();
        lo.resize(16, 0);
        assert_eq!(
            rule.into_exprs(),
            vec![
                Expr::Meta {
                    key: MetaKey::NfProto,
                    dreg: R0
                },
                Expr::Cmp {
                    sreg: R0,
                    op: CmpOp::Eq,
                    data: vec![NFPROTO_IPV4]
                },
                Expr::Meta {
                    key: MetaKey::IifName,
                    dreg: R0
                },
                Expr::Cmp {
                    sreg: R0,
                    op: CmpOp::Neq,
                    data: lo
                },
                Expr::Payload {
                    base: PayloadBase::Network,
                    offset: 16,
                    len: 4,
                    dreg: R0
                },
                Expr::Bitwise {
                    sreg: R0,
                    dreg: R0,
                    mask: vec![255, 0, 0, 0],
                    xor: vec![0; 4]
                },
                Expr::Cmp {
                    sreg: R0,
                    op: CmpOp::Eq,
                    data: vec![127, 0, 0, 0]
                },
                Expr::Counter,
                Expr::Verdict(Verdict::Drop),
            ]
        );
    }

    #[test]
    fn concatenations_fill_consecutive_registers_and_reuse_what_is_loaded() {
        let rule = Rule::new()
            .in_set(&[Field::IpSaddr], "a")
            .not_in_set(&[Field::IpSaddr, Field::OifName], "b")
            .in_set(&[Field::IifName, Field::OifName], "c");
        assert_eq!(
            rule.into_exprs(),
            vec![
                Field::IpSaddr.load(R0),
                Expr::Lookup {
                    set: "a".into(),
                    sreg: R0,
                    invert: false
                },
                Field::OifName.load(r(1)),
                Expr::Lookup {
                    set: "b".into(),
                    sreg: R0,
                    invert: true
                },
                // oifname sat in r1..r4; the ifname in r0 overwrote part of it.
                Field::IifName.load(R0),
                Field::OifName.load(r(4)),
                Expr::Lookup {
                    set: "c".into(),
                    sreg: R0,
                    invert: false
                },
            ]
        );
    }

    #[test]
    fn ct_tests_and_fib_overwrite_r0() {
        let rule = Rule::new()
            .in_set(&[Field::IpSaddr], "a")
            .ct_status_any(CT_STATUS_DNAT)
            .in_set(&[Field::IpSaddr], "a")
            .ct_state_any(CT_STATE_ESTABLISHED | CT_STATE_RELATED)
            .fib_daddr_local();
        let exprs = rule.into_exprs();
        assert_eq!(
            exprs
                .iter()
                .filter(|e| **e == Field::IpSaddr.load(R0))
                .count(),
            2
        );
        assert_eq!(
            exprs[3],
            Expr::Bitwise {
                sreg: R0,
                dreg: R0,
                mask: CT_STATUS_DNAT.to_ne_bytes().to_vec(),
                xor: vec![0; 4]
            }
        );
        assert_eq!(
            exprs.last().unwrap(),
            &Expr::Cmp {
                sreg: R0,
                op: CmpOp::Eq,
                data: RTN_LOCAL.to_ne_bytes().to_vec()
            }
        );
    }

    #[test]
    fn dnat_through_a_map_takes_the_port_after_the_address() {
        let v4 = Rule::new().dnat_map(&[Field::L4Proto, Field::Dport], "m", NfProto::Ipv4);
        assert_eq!(
            v4.into_exprs(),
            vec![
                Field::L4Proto.load(R0),
                Field::Dport.load(r(1)),
                Expr::Map {
                    map: "m".into(),
                    sreg: R0,
                    dreg: R0
                },
                Expr::Dnat {
                    family: NfProto::Ipv4,
                    addr: R0,
                    port: r(1)
                },
            ]
        );
        let v6 = Rule::new().dnat_map(
            &[Field::Ip6Daddr, Field::L4Proto, Field::Dport],
            "m6",
            NfProto::Ipv6,
        );
        assert_eq!(
            v6.into_exprs(),
            vec![
                Field::Ip6Daddr.load(R0),
                Field::L4Proto.load(r(4)),
                Field::Dport.load(r(5)),
                Expr::Map {
                    map: "m6".into(),
                    sreg: R0,
                    dreg: R0
                },
                Expr::Dnat {
                    family: NfProto::Ipv6,
                    addr: R0,
                    port: r(4)
                },
            ]
        );
    }

    #[test]
    fn ipv6_matches_load_16_bytes_at_the_ipv6_offsets() {
        let net: Ipv6Addr = "fd00:ab:cdff::".parse().unwrap();
        let exprs = Rule::new()
            .nfproto(NfProto::Ipv6)
            .saddr_in_prefix(net.into(), 41)
            .daddr_in_prefix(Ipv6Addr::LOCALHOST.into(), 128)
            .into_exprs();
        assert_eq!(
            exprs,
            vec![
                Expr::Meta {
                    key: MetaKey::NfProto,
                    dreg: R0
                },
                Expr::Cmp {
                    sreg: R0,
                    op: CmpOp::Eq,
                    data: vec![NFPROTO_IPV6]
                },
                Expr::Payload {
                    base: PayloadBase::Network,
                    offset: 8,
                    len: 16,
                    dreg: R0
                },
                Expr::Bitwise {
                    sreg: R0,
                    dreg: R0,
                    mask: vec![255, 255, 255, 255, 255, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                    xor: vec![0; 16]
                },
                Expr::Cmp {
                    sreg: R0,
                    op: CmpOp::Eq,
                    data: "fd00:ab:cd80::"
                        .parse::<Ipv6Addr>()
                        .unwrap()
                        .octets()
                        .to_vec()
                },
                // A whole address needs no mask.
                Expr::Payload {
                    base: PayloadBase::Network,
                    offset: 24,
                    len: 16,
                    dreg: R0
                },
                Expr::Cmp {
                    sreg: R0,
                    op: CmpOp::Eq,
                    data: Ipv6Addr::LOCALHOST.octets().to_vec()
                },
            ]
        );
    }

    #[test]
    fn a_traced_udp_probe_reads_like_nft_debug() {
        let rule = Rule::new()
            .nfproto(NfProto::Ipv4)
            .daddr_in_prefix(Ipv4Addr::new(127, 0, 0, 2).into(), 32)
            .l4proto(17)
            .dport(9)
            .set_nftrace();
        let lines: Vec<String> = rule.exprs().iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "[ meta load nfproto => reg 8 ]",
                "[ cmp eq reg 8 02 ]",
                "[ payload load 4b @ network header + 16 => reg 8 ]",
                "[ cmp eq reg 8 7f000002 ]",
                "[ meta load l4proto => reg 8 ]",
                "[ cmp eq reg 8 11 ]",
                "[ payload load 2b @ transport header + 2 => reg 8 ]",
                "[ cmp eq reg 8 0009 ]",
                "[ immediate reg 8 01 ]",
                "[ meta set nftrace with reg 8 ]",
            ]
        );
        // The immediate overwrote R0: a later match loads its field again.
        let again = Rule::new()
            .in_set(&[Field::IpSaddr], "a")
            .set_nftrace()
            .in_set(&[Field::IpSaddr], "a");
        assert_eq!(
            again
                .exprs()
                .iter()
                .filter(|e| **e == Field::IpSaddr.load(R0))
                .count(),
            2
        );
    }

    /// As `nft --debug=netlink` (1.0.6) shows `ether type arp iifname . arp saddr ether
    /// != @mac` in a bridge table, but for the registers (nft's 128-bit reg 1 is ctnet's
    /// reg 8, its reg 2 our reg 12).
    #[test]
    fn layer_2_fields_load_from_the_link_and_arp_headers() {
        let rule = Rule::new()
            .ether_type(0x0806)
            .not_in_set(&[Field::IifName, Field::ArpSha], "mac")
            .in_set(&[Field::IifName], "ports")
            .drop();
        let lines: Vec<String> = rule.exprs().iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "[ payload load 2b @ link header + 12 => reg 8 ]",
                "[ cmp eq reg 8 0806 ]",
                "[ meta load iifname => reg 8 ]",
                "[ payload load 6b @ network header + 8 => reg 12 ]",
                "[ lookup reg 8 set mac inverted ]",
                // iifname is still in reg 8: not loaded again.
                "[ lookup reg 8 set ports ]",
                "[ immediate reg 0 drop ]",
            ]
        );
        let fields = [
            (
                Field::EtherSaddr,
                "[ payload load 6b @ link header + 6 => reg 8 ]",
            ),
            (
                Field::ArpFormat,
                "[ payload load 6b @ network header + 0 => reg 8 ]",
            ),
            (
                Field::ArpSpa,
                "[ payload load 4b @ network header + 14 => reg 8 ]",
            ),
            (
                Field::Icmpv6Type,
                "[ payload load 1b @ transport header + 0 => reg 8 ]",
            ),
            (
                Field::NdTarget,
                "[ payload load 16b @ transport header + 8 => reg 8 ]",
            ),
        ];
        for (field, want) in fields {
            assert_eq!(field.load(R0).to_string(), want, "{field:?}");
        }
        // A 6-byte MAC in a concatenation takes two words: the next field starts 8 on.
        let exprs = Rule::new()
            .in_set(&[Field::EtherSaddr, Field::IifName], "s")
            .into_exprs();
        assert_eq!(exprs[1], Field::IifName.load(r(2)));
    }

    #[test]
    #[should_panic(expected = "compared with")]
    fn a_constant_of_the_wrong_length_is_refused() {
        let _ = Rule::new().field_eq(Field::Icmpv6Type, &[134, 0]);
    }

    #[test]
    #[should_panic(expected = "does not fit the registers")]
    fn a_key_longer_than_the_registers_is_refused() {
        let _ = Rule::new().in_set(&[Field::Ip6Saddr; 5], "s");
    }
}
