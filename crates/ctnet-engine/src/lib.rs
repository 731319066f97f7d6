//! ctnet's engine: it decides.
//!
//! Front ends (the CLI, the CNI plugin, the netavark backend) translate their input into
//! calls on [`Engine`]; the engine checks them, chooses subnets and addresses, records
//! intent in the state database, asks the kernel layer for the objects, and either
//! commits or undoes. Nothing here parses command lines or prints.
//!
//! Where things live, by concern:
//! - [`model`]: networks, endpoints, published ports and the checked values they are
//!   made of;
//! - [`alloc`]: choosing subnets, container addresses and host ports (pure functions);
//! - [`state`]: the SQLite state database, the only place stored text is parsed;
//! - [`ops`]: the operations (create a network, attach, detach, gc), each reserve →
//!   build → commit or undo;
//! - [`driver`]: what a network's driver asks of the kernel, as plans of netlink requests;
//! - [`datapath`]: ctnet's nftables table (masquerade, published ports, isolation);
//! - [`observe`]: reading the kernel back: `ctnet doctor`, CNI's CHECK;
//! - [`agent`]: the host agent's files in the run dir: notifying it, starting it on
//!   demand, its status.

#![forbid(unsafe_code)]

pub mod agent;
pub mod alloc;
pub mod cluster;
pub mod datapath;
pub mod driver;
pub mod engine;
pub mod error;
pub mod model;
pub mod observe;
pub mod ops;
pub mod owner;
pub mod paths;
pub mod policy;
pub(crate) mod state;

pub use engine::Engine;
pub use error::{Error, ErrorKind, Result};
pub use model::ports::{PortSpec, Protocol, PublishedPort};
pub use model::{ContainerRef, Endpoint, Network, NetworkName, Subnet};
pub use ops::endpoint::AttachSpec;
pub use ops::network::NetworkSpec;
pub use owner::Owner;
pub use paths::Paths;
