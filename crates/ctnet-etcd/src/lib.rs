//! A small, synchronous etcd v3 client over etcd's own JSON gateway.
//!
//! ```text
//!  ctnet (one-shot) ─┐                         etcd member (3.4+), its client URL:
//!                    ├─ Client ── HTTP/1.1 ──▶  /v3/kv/{range,put,txn,deleterange,compaction}
//!  ctnet-agent ──────┘   │        POST JSON    /v3/lease/{grant,keepalive,revoke,timetolive}
//!   (plain threads)      └─ Watch ─ one long ▶ /v3/watch   (a reply line per watch response)
//! ```
//!
//! etcd serves a grpc-gateway on every client URL that takes the v3 API as JSON: bytes as
//! base64, int64 as strings. Speaking it needs only an HTTP client, so the one-shot CLI
//! stays free of async runtimes, gRPC and protoc (see docs/etcd.md). Blocking calls,
//! each bounded by the client's timeout; watches are blocking iterators that another
//! thread can close. Plain HTTP only: TLS is not supported yet.

#![deny(missing_docs)]

mod client;
mod endpoints;
mod error;
mod watch;
mod wire;

pub use client::{Client, Lease};
pub use endpoints::{Endpoint, Endpoints, Host};
pub use error::{EndpointFailure, Error, Result};
pub use watch::{Watch, WatchCloser, WatchEvent};

/// A key as etcd holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key (ctnet's keys are UTF-8; a reply with another key is refused).
    pub key: String,
    /// The value's bytes.
    pub value: Vec<u8>,
    /// The revision that created the key (since its last delete).
    pub create_revision: i64,
    /// The revision of its last write: what [`Client::replace`] and
    /// [`Client::delete_if`] compare with.
    pub mod_revision: i64,
    /// The lease it is attached to, 0 for none.
    pub lease: i64,
}

#[cfg(test)]
mod tests {
    /// The agent shares one client between threads and hands watches to threads of
    /// their own; closers go to yet other threads.
    #[test]
    fn clients_and_watches_cross_threads() {
        fn shared<T: Send + Sync>() {}
        fn moved<T: Send>() {}
        shared::<crate::Client>();
        shared::<crate::WatchCloser>();
        moved::<crate::Watch>();
        shared::<crate::Error>();
    }
}
