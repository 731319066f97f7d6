//! nf_tables over netlink, from this process, for IPv4 and IPv6.
//!
//! This crate knows how to say things to nf_tables, not what to say: the caller decides
//! the table layout (chains, sets, rules) and this crate encodes it. Every change of one
//! operation goes into one [`Batch`], which the kernel applies atomically.
//!
//! ```text
//! const T: TableRef = TableRef::new(Family::Inet, "t");
//!
//! NftSocket::open() ─ batch() ─ add_table(T, ..) / add_chain(T, ..) / add_set(T, ..) /
//!                               add_rule(T, chain, Rule::new()….exprs(), comment) /
//!                               add_elements(T, set, ..) / destroy_elements / destroy_table
//!                   ─ commit(batch)   // one sendmsg, one verdict per change
//!                   ─ table_comment(T) / get_element(T, set, key) / list_chains()
//!                   ─ list_rules(T) / list_sets(T) / list_elements(T, set)   // dumps
//!
//! monitor::Monitor::open() ─ receive(timeout)   // change notifications, typed
//! trace::Tracer::open() ─ receive(timeout)    // trace events of packets with nftrace set
//! conntrack::dump() / conntrack::delete(tuple, zone)   // the connection-tracking table
//! ```
//!
//! [`Rule`] composes a rule the way nft's syntax reads and picks the registers; [`Expr`]
//! is the register-level form underneath, for what the builder does not cover. Netlink
//! framing, the socket and the error type come from `ctnet-kernel`.

pub mod abi;
mod batch;
pub mod conntrack;
mod expr;
pub mod monitor;
mod multicast;
mod rule;
mod socket;
pub mod trace;
mod wire;

use std::fmt;

pub use batch::{
    ip_bounds, ipv4_bounds, ipv6_bounds, BaseChain, Batch, ChainType, Element, Hook, Key, KeyField,
    SetSpec,
};
pub use expr::{CmpOp, CtKey, Expr, MetaKey, NfProto, PayloadBase, Register, Verdict};
pub use rule::{Field, Rule};
pub use socket::{ChainInfo, ElementInfo, NftSocket, RuleInfo};

/// The address family of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4 and IPv6 together (`inet`).
    Inet,
    /// IPv4 only (`ip`).
    Ip,
    /// IPv6 only (`ip6`).
    Ip6,
    /// ARP (`arp`).
    Arp,
    /// Bridged frames (`bridge`).
    Bridge,
    /// A device's ingress and egress (`netdev`).
    Netdev,
}

impl Family {
    /// The `NFPROTO_*` number.
    pub fn code(self) -> u8 {
        match self {
            Family::Inet => abi::NFPROTO_INET,
            Family::Ip => abi::NFPROTO_IPV4,
            Family::Ip6 => abi::NFPROTO_IPV6,
            Family::Arp => abi::NFPROTO_ARP,
            Family::Bridge => abi::NFPROTO_BRIDGE,
            Family::Netdev => abi::NFPROTO_NETDEV,
        }
    }

    /// The family with `NFPROTO_*` number `code`, if nf_tables has tables of it.
    pub fn from_code(code: u8) -> Option<Family> {
        [
            Family::Inet,
            Family::Ip,
            Family::Ip6,
            Family::Arp,
            Family::Bridge,
            Family::Netdev,
        ]
        .into_iter()
        .find(|f| f.code() == code)
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Inet => "inet",
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
            Family::Arp => "arp",
            Family::Bridge => "bridge",
            Family::Netdev => "netdev",
        })
    }
}

/// A table: its family and name, which together name it in the ruleset. Every change and
/// query goes through one, so the pair is written once, usually as a constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TableRef {
    /// The table's family.
    pub family: Family,
    /// The table's name.
    pub name: &'static str,
}

impl TableRef {
    /// The table `name` of `family`.
    pub const fn new(family: Family, name: &'static str) -> Self {
        TableRef { family, name }
    }
}

/// As nft names it: `inet ctnet`.
impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.family, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_round_trip_through_their_codes() {
        for code in 0..=u8::MAX {
            if let Some(f) = Family::from_code(code) {
                assert_eq!(f.code(), code);
            }
        }
        assert_eq!(Family::from_code(abi::NFPROTO_IPV6), Some(Family::Ip6));
        assert_eq!(Family::from_code(abi::NFPROTO_UNSPEC), None);
        assert_eq!(
            TableRef::new(Family::Inet, "ctnet").to_string(),
            "inet ctnet"
        );
    }
}
