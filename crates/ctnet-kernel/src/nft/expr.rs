//! Rule expressions: the small virtual machine nf_tables runs per packet.
//!
//! A rule is a list of expressions that load packet data into registers, compare or look
//! it up, and end in an action. Only the expressions ctnet uses are modelled; each one is
//! typed so a rule cannot name a missing register or a comparison the kernel lacks.

use super::wire::{attr, Writer};

/// A data register. nf_tables has sixteen 32-bit registers; wider values (an interface
/// name, a concatenation) span consecutive ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Register(u32);

impl Register {
    /// The first 32-bit register (`NFT_REG32_00`).
    pub const R0: Register = Register(8);

    /// The 32-bit register `index` places after [`Register::R0`]; `None` past the last.
    pub fn r32(index: u32) -> Option<Register> {
        (index < 16).then_some(Register(8 + index))
    }

    /// The register just after the `len`-byte value that starts in this one.
    pub fn after(self, len: u32) -> Option<Register> {
        Register::r32(self.0 - 8 + len.div_ceil(4))
    }
}

/// Packet metadata the `meta` expression loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaKey {
    /// The layer 3 protocol family (`NFPROTO_IPV4`, ...); one byte.
    NfProto,
    /// The layer 4 protocol number; one byte.
    L4Proto,
    /// The input interface name; 16 bytes.
    IifName,
    /// The output interface name; 16 bytes.
    OifName,
}

impl MetaKey {
    /// How many bytes the key loads.
    pub fn byte_len(self) -> u32 {
        match self {
            MetaKey::NfProto | MetaKey::L4Proto => 1,
            MetaKey::IifName | MetaKey::OifName => 16,
        }
    }
}

impl MetaKey {
    fn code(self) -> u32 {
        match self {
            MetaKey::NfProto => 15,
            MetaKey::L4Proto => 16,
            MetaKey::IifName => 6,
            MetaKey::OifName => 7,
        }
    }
}

/// Where a payload offset counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadBase {
    /// The network (IP) header.
    Network,
    /// The transport (TCP, UDP) header.
    Transport,
}

impl PayloadBase {
    fn code(self) -> u32 {
        match self {
            PayloadBase::Network => 1,
            PayloadBase::Transport => 2,
        }
    }
}

/// A comparison operator of the `cmp` expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// Equal.
    Eq,
    /// Not equal.
    Neq,
}

/// One expression of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// Loads packet metadata into `dreg`.
    Meta {
        /// What to load.
        key: MetaKey,
        /// Where to put it.
        dreg: Register,
    },
    /// Loads `len` bytes of packet header at `offset` from `base` into `dreg`.
    Payload {
        /// The header the offset counts from.
        base: PayloadBase,
        /// Byte offset in that header.
        offset: u32,
        /// Number of bytes.
        len: u32,
        /// Where to put them.
        dreg: Register,
    },
    /// Compares `sreg` with `data`; the rule stops unless the comparison holds.
    Cmp {
        /// Register holding the value.
        sreg: Register,
        /// The operator.
        op: CmpOp,
        /// The constant compared with, in packet byte order.
        data: Vec<u8>,
    },
    /// Looks the value starting at `sreg` up in a named set; the rule stops unless it is
    /// there (or, with `invert`, unless it is not).
    Lookup {
        /// The set, in the rule's table.
        set: String,
        /// Register where the key starts.
        sreg: Register,
        /// Match when the key is absent instead.
        invert: bool,
    },
    /// Looks the key starting at `sreg` up in a named map and puts the mapped value in
    /// `dreg`; the rule stops if the key is absent.
    Map {
        /// The map, in the rule's table.
        map: String,
        /// Register where the key starts.
        sreg: Register,
        /// Register that receives the value.
        dreg: Register,
    },
    /// `dreg = (sreg & mask) ^ xor`, over `mask.len()` bytes.
    Bitwise {
        /// Source register.
        sreg: Register,
        /// Destination register.
        dreg: Register,
        /// AND mask.
        mask: Vec<u8>,
        /// XOR value, as long as the mask.
        xor: Vec<u8>,
    },
    /// Loads connection-tracking data into `dreg`.
    Ct {
        /// What to load.
        key: CtKey,
        /// Where to put it.
        dreg: Register,
    },
    /// Loads the route type of the destination address (`fib daddr type`) into `dreg`:
    /// an `RTN_*` value as a host-endian u32.
    FibDaddrType {
        /// Where to put it.
        dreg: Register,
    },
    /// Ends the rule with a verdict.
    Verdict(Verdict),
    /// Destination NAT for IPv4 to the address in `addr` and the port in `port`.
    Dnat {
        /// Register holding the new destination address.
        addr: Register,
        /// Register holding the new destination port (network byte order, 2 bytes).
        port: Register,
    },
    /// Counts packets and bytes that reach it.
    Counter,
    /// Source NAT to the address of the outgoing interface.
    Masquerade,
}

/// Connection-tracking data the `ct` expression loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtKey {
    /// The state bits (`ct state`): see [`CT_STATE_ESTABLISHED`] and friends.
    State,
    /// The status bits (`ct status`): see [`CT_STATUS_DNAT`].
    Status,
}

/// `ct state established`.
pub const CT_STATE_ESTABLISHED: u32 = 1 << 1;
/// `ct state related`.
pub const CT_STATE_RELATED: u32 = 1 << 2;
/// `ct status dnat`: the connection's destination was translated.
pub const CT_STATUS_DNAT: u32 = 1 << 5;
/// `RTN_LOCAL`: an address of this host.
pub const RTN_LOCAL: u32 = 2;

/// A rule's final verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Let the packet through this hook.
    Accept,
    /// Drop the packet.
    Drop,
    /// Continue in a regular chain, then come back.
    Jump(String),
    /// Leave this chain and go on after the jump that entered it.
    Return,
}

impl Expr {
    pub(crate) fn encode(&self, w: &mut Writer) {
        const META_DREG: u16 = 1;
        const META_KEY: u16 = 2;
        const PAYLOAD_DREG: u16 = 1;
        const PAYLOAD_BASE: u16 = 2;
        const PAYLOAD_OFFSET: u16 = 3;
        const PAYLOAD_LEN: u16 = 4;
        const CMP_SREG: u16 = 1;
        const CMP_OP: u16 = 2;
        const CMP_DATA: u16 = 3;
        const LOOKUP_SET: u16 = 1;
        const LOOKUP_SREG: u16 = 2;
        const LOOKUP_FLAGS: u16 = 5;
        const NFT_LOOKUP_F_INV: u32 = 1;
        const LOOKUP_DREG: u16 = 3;
        const BITWISE_SREG: u16 = 1;
        const BITWISE_DREG: u16 = 2;
        const BITWISE_LEN: u16 = 3;
        const BITWISE_MASK: u16 = 4;
        const BITWISE_XOR: u16 = 5;
        const CT_DREG: u16 = 1;
        const CT_KEY: u16 = 2;
        const FIB_DREG: u16 = 1;
        const FIB_RESULT: u16 = 2;
        const FIB_FLAGS: u16 = 3;
        const NFT_FIB_RESULT_ADDRTYPE: u32 = 3;
        const NFTA_FIB_F_DADDR: u32 = 1 << 1;
        const IMMEDIATE_DREG: u16 = 1;
        const IMMEDIATE_DATA: u16 = 2;
        const NAT_TYPE: u16 = 1;
        const NAT_FAMILY: u16 = 2;
        const NAT_REG_ADDR_MIN: u16 = 3;
        const NAT_REG_PROTO_MIN: u16 = 5;
        const NFT_NAT_DNAT: u32 = 1;

        w.nest(attr::LIST_ELEM, |w| {
            w.put_str(attr::EXPR_NAME, self.name());
            match self {
                Expr::Meta { key, dreg } => w.nest(attr::EXPR_DATA, |w| {
                    w.put_be32(META_DREG, dreg.0);
                    w.put_be32(META_KEY, key.code());
                }),
                Expr::Payload {
                    base,
                    offset,
                    len,
                    dreg,
                } => w.nest(attr::EXPR_DATA, |w| {
                    w.put_be32(PAYLOAD_DREG, dreg.0);
                    w.put_be32(PAYLOAD_BASE, base.code());
                    w.put_be32(PAYLOAD_OFFSET, *offset);
                    w.put_be32(PAYLOAD_LEN, *len);
                }),
                Expr::Cmp { sreg, op, data } => w.nest(attr::EXPR_DATA, |w| {
                    w.put_be32(CMP_SREG, sreg.0);
                    w.put_be32(
                        CMP_OP,
                        match op {
                            CmpOp::Eq => 0,
                            CmpOp::Neq => 1,
                        },
                    );
                    w.put_data_value(CMP_DATA, data);
                }),
                Expr::Lookup { set, sreg, invert } => w.nest(attr::EXPR_DATA, |w| {
                    w.put_str(LOOKUP_SET, set);
                    w.put_be32(LOOKUP_SREG, sreg.0);
                    if *invert {
                        w.put_be32(LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
                    }
                }),
                Expr::Map { map, sreg, dreg } => w.nest(attr::EXPR_DATA, |w| {
                    w.put_str(LOOKUP_SET, map);
                    w.put_be32(LOOKUP_SREG, sreg.0);
                    w.put_be32(LOOKUP_DREG, dreg.0);
                }),
                Expr::Bitwise {
                    sreg,
                    dreg,
                    mask,
                    xor,
                } => w.nest(attr::EXPR_DATA, |w| {
                    w.put_be32(BITWISE_SREG, sreg.0);
                    w.put_be32(BITWISE_DREG, dreg.0);
                    w.put_be32(BITWISE_LEN, mask.len() as u32);
                    w.put_data_value(BITWISE_MASK, mask);
                    w.put_data_value(BITWISE_XOR, xor);
                }),
                Expr::Ct { key, dreg } => w.nest(attr::EXPR_DATA, |w| {
                    w.put_be32(CT_DREG, dreg.0);
                    w.put_be32(
                        CT_KEY,
                        match key {
                            CtKey::State => 0,
                            CtKey::Status => 2,
                        },
                    );
                }),
                Expr::FibDaddrType { dreg } => w.nest(attr::EXPR_DATA, |w| {
                    w.put_be32(FIB_DREG, dreg.0);
                    w.put_be32(FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
                    w.put_be32(FIB_FLAGS, NFTA_FIB_F_DADDR);
                }),
                Expr::Verdict(verdict) => w.nest(attr::EXPR_DATA, |w| {
                    w.put_be32(IMMEDIATE_DREG, 0); // NFT_REG_VERDICT
                    w.nest(IMMEDIATE_DATA, |w| verdict.encode(w));
                }),
                Expr::Dnat { addr, port } => w.nest(attr::EXPR_DATA, |w| {
                    w.put_be32(NAT_TYPE, NFT_NAT_DNAT);
                    w.put_be32(NAT_FAMILY, u32::from(NFPROTO_IPV4));
                    w.put_be32(NAT_REG_ADDR_MIN, addr.0);
                    w.put_be32(NAT_REG_PROTO_MIN, port.0);
                }),
                // Counters start at zero and masquerade needs no options.
                Expr::Counter | Expr::Masquerade => {}
            }
        });
    }

    fn name(&self) -> &'static str {
        match self {
            Expr::Meta { .. } => "meta",
            Expr::Payload { .. } => "payload",
            Expr::Cmp { .. } => "cmp",
            Expr::Lookup { .. } | Expr::Map { .. } => "lookup",
            Expr::Bitwise { .. } => "bitwise",
            Expr::Ct { .. } => "ct",
            Expr::FibDaddrType { .. } => "fib",
            Expr::Verdict(_) => "immediate",
            Expr::Dnat { .. } => "nat",
            Expr::Counter => "counter",
            Expr::Masquerade => "masq",
        }
    }
}

impl Verdict {
    /// Writes `NFTA_DATA_VERDICT`; also used for verdict-map elements.
    pub(crate) fn encode(&self, w: &mut Writer) {
        const NF_DROP: i32 = 0;
        const NF_ACCEPT: i32 = 1;
        const NFT_JUMP: i32 = -3;
        const NFT_RETURN: i32 = -5;
        w.nest(attr::DATA_VERDICT, |w| {
            let code = match self {
                Verdict::Accept => NF_ACCEPT,
                Verdict::Drop => NF_DROP,
                Verdict::Jump(_) => NFT_JUMP,
                Verdict::Return => NFT_RETURN,
            };
            w.put_be32(attr::VERDICT_CODE, code as u32);
            if let Verdict::Jump(chain) = self {
                w.put_str(attr::VERDICT_CHAIN, chain);
            }
        });
    }
}

/// `NFPROTO_IPV4`, the value `meta nfproto` loads for IPv4 packets.
pub const NFPROTO_IPV4: u8 = 2;

/// Expressions for "the packet is IPv4" in an `inet` table, as nft writes `meta nfproto ipv4`.
pub fn is_ipv4() -> [Expr; 2] {
    [
        Expr::Meta {
            key: MetaKey::NfProto,
            dreg: Register::R0,
        },
        Expr::Cmp {
            sreg: Register::R0,
            op: CmpOp::Eq,
            data: vec![NFPROTO_IPV4],
        },
    ]
}

/// Loads the IPv4 source address into `dreg`.
pub fn load_ipv4_saddr(dreg: Register) -> Expr {
    Expr::Payload {
        base: PayloadBase::Network,
        offset: 12,
        len: 4,
        dreg,
    }
}

/// Loads the transport destination port (TCP or UDP) into `dreg`, network byte order.
pub fn load_dport(dreg: Register) -> Expr {
    Expr::Payload {
        base: PayloadBase::Transport,
        offset: 2,
        len: 2,
        dreg,
    }
}

/// Stops the rule unless the bits `mask` of the u32 (host byte order) in `reg` have any
/// bit set, as nft writes `ct state established,related`.
pub fn any_bit_set(reg: Register, mask: u32) -> [Expr; 2] {
    [
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
    ]
}

/// Stops the rule unless the interface name in `reg` is (or with `Neq`, is not) `name`.
pub fn cmp_ifname(reg: Register, op: CmpOp, name: &str) -> Expr {
    let mut data = name.as_bytes().to_vec();
    data.resize(16, 0);
    Expr::Cmp {
        sreg: reg,
        op,
        data,
    }
}

/// Loads the IPv4 destination address into `dreg`.
pub fn load_ipv4_daddr(dreg: Register) -> Expr {
    Expr::Payload {
        base: PayloadBase::Network,
        offset: 16,
        len: 4,
        dreg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_advance_by_whole_words() {
        assert_eq!(Register::R0.after(4), Register::r32(1));
        assert_eq!(Register::R0.after(16), Register::r32(4));
        assert_eq!(Register::r32(15).unwrap().after(4), None);
        assert_eq!(Register::r32(16), None);
    }
}
