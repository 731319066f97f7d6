//! nf_tables over netlink, from this process.
//!
//! The kernel layer knows how to say things to nf_tables, not what to say: the engine
//! decides the table layout (chains, sets, rules) and this module encodes it. Every change
//! of one operation goes into one [`Batch`], which the kernel applies atomically.
//!
//! ```text
//! NftSocket::open() ─ batch() ─ add_table / add_chain / add_set / add_rule /
//!                               add_elements / destroy_elements / destroy_table
//!                   ─ commit(batch)   // one sendmsg, one verdict per change
//! ```

mod batch;
mod expr;
mod socket;
mod wire;

use std::fmt;

pub use batch::{ipv4_bounds, BaseChain, Batch, ChainType, Element, Hook, Key, KeyField, SetSpec};
pub use expr::{
    any_bit_set, cmp_ifname, is_ipv4, load_dport, load_ipv4_daddr, load_ipv4_saddr, CmpOp, CtKey,
    Expr, MetaKey, PayloadBase, Register, Verdict, CT_STATE_ESTABLISHED, CT_STATE_RELATED,
    CT_STATUS_DNAT, NFPROTO_IPV4, RTN_LOCAL,
};
pub use socket::{ChainInfo, NftSocket};

/// The address family of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv4 and IPv6 together (`inet`).
    Inet,
    /// IPv4 only (`ip`).
    Ip,
}

impl Family {
    fn code(self) -> u8 {
        match self {
            Family::Inet => 1,
            Family::Ip => 2,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Inet => "inet",
            Family::Ip => "ip",
        })
    }
}
