//! Operations: what front ends ask the engine to do. Every operation follows one
//! contract: reserve (check and record intent as a `pending` or `removing` row inside one
//! state transaction), build (the driver's plan applied to the kernel, the datapath's
//! elements in one nftables batch), then commit (mark the row ready) or undo (remove what
//! was built, forget the row).
//!
//! - [`network`]: create, remove, list, inspect networks; the default network;
//! - [`bridge_address`]: a bridge's hardware address pinned for good;
//! - [`endpoint`]: attach and detach containers; CNI's CHECK;
//! - [`macvlan`]: what differs for a macvlan network: its parent checked, each
//!   container's interface made and deleted inside its namespace, no ports;
//! - [`names`]: the DNS names a container answers to on a network, and their clashes;
//! - [`namespace`]: named namespaces and the ones `ctnet run` owns;
//! - [`firewall`]: making sure ctnet's nftables table exists before an operation adds
//!   to it, and rewriting it from the store;
//! - [`drift`]: the store's networks and endpoints against the kernel (`ctnet doctor`),
//!   and their repair (`ctnet gc`; a network's missing bridge also at attach);
//! - [`lost_state`]: refusing to take an empty store for "nothing exists" while ctnet's
//!   bridges or table elements are on the host;
//! - [`policy`]: network policies as set elements, and each container's part of them
//!   at attach and detach;
//! - [`publish`]: what published ports are checked against in the kernel first (the
//!   host's addresses, its listening sockets);
//! - [`stale`]: endpoints whose namespace is gone (released instead of blocking), and
//!   refusing the host's own namespace as a container;
//! - [`resolv`]: `/etc/netns/NAME/resolv.conf` for named namespaces on DNS networks;
//! - [`reconcile`]: finishing what interrupted processes left (`ctnet gc`). It calls the
//!   operations' teardown steps; no operation calls into it.

pub mod bridge_address;
pub mod drift;
pub mod endpoint;
pub mod firewall;
pub mod lost_state;
pub mod macvlan;
pub mod names;
pub mod namespace;
pub mod network;
pub mod overlay;
pub mod policy;
pub mod publish;
pub mod reconcile;
pub mod resolv;
pub mod stale;
