//! ctnet's engine: it decides.
//!
//! Front ends (the CLI now; CNI, netavark and the multi-host agent later) translate their
//! input into calls on [`Engine`]; the engine checks them, chooses subnets and addresses,
//! records intent in the state database, asks the kernel layer for the objects, and
//! either commits or undoes. Nothing here parses command lines or prints.
//!
//! Where things live:
//! - [`model`]: networks, endpoints and the checked values they are made of;
//! - [`ipam`]: subnet and address choice;
//! - [`store`]: the SQLite state database;
//! - [`network`], [`endpoint`]: create/remove networks, attach/detach containers;
//! - [`ports`]: the `-p` syntax and host port choice;
//! - [`firewall`]: ctnet's nftables table: masquerade, published ports, isolation;
//! - [`reconcile`]: repairing what interrupted operations left behind;
//! - [`doctor`]: what on the host will silently drop ctnet's traffic.

pub mod doctor;
pub mod endpoint;
pub mod engine;
pub mod error;
pub mod firewall;
pub mod ipam;
pub mod model;
pub mod namespace;
pub mod network;
pub mod owner;
pub mod paths;
pub mod ports;
pub mod reconcile;
pub mod store;

pub use endpoint::AttachSpec;
pub use engine::Engine;
pub use error::{Error, ErrorKind, Result};
pub use model::{ContainerRef, Endpoint, Network, NetworkName, Subnet};
pub use network::NetworkSpec;
pub use owner::Owner;
pub use paths::Paths;
pub use ports::{PortSpec, Protocol, PublishedPort};
