//! What can go wrong talking to etcd. Every variant that comes from a request names the
//! endpoint (and, where it matters, the gateway path) so a message says which member failed.

use std::fmt;
use std::time::Duration;

use crate::Endpoint;

/// One endpoint that could not be reached, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointFailure {
    /// The endpoint tried.
    pub endpoint: Endpoint,
    /// Why the request never reached it (refused, no route, no answer to connect...).
    pub cause: String,
}

impl fmt::Display for EndpointFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.endpoint, self.cause)
    }
}

/// Every failure names what failed; the `Display` text is meant for the user as it is.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// [`crate::Endpoints::parse`] refused the text.
    #[error("etcd endpoints {text:?}: {cause}; {fix}")]
    BadEndpoints {
        /// The whole text given.
        text: String,
        /// What is wrong with it, naming the entry.
        cause: String,
        /// How to write it instead.
        fix: String,
    },

    /// No endpoint could be reached; the request reached none of them, so nothing was
    /// applied.
    #[error(
        "etcd is unreachable at {}; check that etcd runs there and that the address and port are its client URL",
        list(failures)
    )]
    Unreachable {
        /// Each endpoint tried, in the order tried.
        failures: Vec<EndpointFailure>,
    },

    /// The endpoint took the request but gave no whole answer in time. A write may or may
    /// not have been applied: read before writing again.
    #[error("etcd at {endpoint} did not answer {path} within {timeout:?} (is it overloaded, or without quorum?){}", write_note(path))]
    Timeout {
        /// The endpoint that was asked.
        endpoint: Endpoint,
        /// The gateway path asked (`/v3/kv/put`...).
        path: &'static str,
        /// The bound the request ran into.
        timeout: Duration,
    },

    /// The connection broke after the request was sent. As with [`Error::Timeout`], a
    /// write may or may not have been applied.
    #[error(
        "etcd at {endpoint}: the connection broke during {path} ({cause}){}",
        write_note(path)
    )]
    ConnectionLost {
        /// The endpoint that was asked.
        endpoint: Endpoint,
        /// The gateway path asked.
        path: &'static str,
        /// The I/O error.
        cause: String,
    },

    /// etcd answered with an error: an HTTP status other than 200, or an error object in
    /// a streamed reply.
    #[error("etcd at {endpoint} refused {path}: HTTP {status}{}: {message}", code.map(|c| format!(", gRPC code {c}")).unwrap_or_default())]
    Status {
        /// The endpoint that answered.
        endpoint: Endpoint,
        /// The gateway path asked.
        path: &'static str,
        /// The HTTP status (200 for an error inside a stream).
        status: u16,
        /// etcd's gRPC status code, when it sent one (5 not found, 9 failed
        /// precondition, 11 out of range, 14 unavailable...).
        code: Option<u32>,
        /// etcd's own message (`etcdserver: ...`), or the body's text.
        message: String,
    },

    /// A put named a lease etcd does not have (it expired or was revoked).
    #[error("etcd at {endpoint}: lease {lease:x} does not exist (expired or revoked); grant a new lease and write the keys again")]
    LeaseNotFound {
        /// The endpoint that answered.
        endpoint: Endpoint,
        /// The lease named.
        lease: i64,
    },

    /// etcd's reply could not be understood.
    #[error("etcd at {endpoint} sent a reply to {path} that is not understood: {cause}; is this an etcd v3.4 or later client URL?")]
    BadReply {
        /// The endpoint that answered.
        endpoint: Endpoint,
        /// The gateway path asked.
        path: &'static str,
        /// What is wrong with the reply.
        cause: String,
    },

    /// A watch asked for history etcd no longer has: revisions before
    /// `compact_revision` were compacted away.
    #[error("the watch's start revision is compacted (etcd keeps history from revision {compact_revision} on); read the keys again and watch from the read's revision + 1")]
    Compacted {
        /// The oldest revision etcd still has.
        compact_revision: i64,
    },

    /// A watch stream ended without being closed by its [`crate::WatchCloser`]: the member
    /// went away or etcd cancelled the watch.
    #[error("etcd at {endpoint} ended the watch ({reason}); read the keys again and watch from the read's revision + 1")]
    WatchEnded {
        /// The endpoint the watch was on.
        endpoint: Endpoint,
        /// Why it ended, as far as it is known.
        reason: String,
    },
}

/// What a caller must know after a write that got no answer.
fn write_note(path: &str) -> &'static str {
    match path {
        "/v3/kv/put" | "/v3/kv/txn" | "/v3/kv/deleterange" | "/v3/lease/grant" => {
            "; the write may or may not have been applied: read before writing again"
        }
        _ => "",
    }
}

fn list(failures: &[EndpointFailure]) -> String {
    failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// This crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
