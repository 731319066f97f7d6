//! ctnet's kernel layer.
//!
//! Everything here talks to the Linux kernel and nothing else: network namespaces, links
//! (veth, bridge, macvlan, VXLAN), IPv4 and IPv6 addresses, routes and neighbour entries,
//! and sysctls, all over netlink or procfs from this process. This layer knows nothing about networks, containers or
//! state; the engine decides what to ask for and this layer asks. nf_tables has its own
//! crate, `ctnet-nft`, built on this one's netlink helpers.

pub mod addr;
pub mod error;
pub mod family;
pub mod link;
pub mod link_detail;
pub mod names;
pub mod neigh;
pub mod netlink;
pub mod netns;
pub mod probe;
pub mod process;
pub mod random;
pub mod reclaim;
pub mod route;
pub mod sock_diag;
pub mod sysctl;
pub mod vxlan;

pub use error::{Error, Result};
pub use family::Family;
pub use link::LOOPBACK_INDEX;
pub use names::{IfName, NameError, NetnsName};
pub use netlink::RtSocket;
pub use netns::{Netns, NetnsDir};
