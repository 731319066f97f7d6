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
    /// Counts packets and bytes that reach it.
    Counter,
    /// Source NAT to the address of the outgoing interface.
    Masquerade,
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
            Expr::Lookup { .. } => "lookup",
            Expr::Counter => "counter",
            Expr::Masquerade => "masq",
        }
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
