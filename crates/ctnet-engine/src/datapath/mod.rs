//! Datapaths: how packets of ctnet's networks are filtered, translated and forwarded
//! beyond what the kernel's bridge and routing do by themselves.
//!
//! The contract: every change one operation makes goes to the kernel in one batch,
//! which the kernel applies atomically, and per-container or per-port state is an element
//! of a set or map, never a rule.
//!
//! - [`nft`]: ctnet's own nftables table.

pub mod nft;
