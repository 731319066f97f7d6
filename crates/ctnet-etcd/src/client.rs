//! The unary calls: one HTTP POST of a JSON body per request, to the first endpoint that
//! takes it.
//!
//! Failover: a request goes to the endpoint that last answered, and moves on to the next
//! one only when it cannot have been applied where it was: the connection was never made
//! (refused, no route, no answer to the connect). Once a write was sent, a broken
//! connection or a time-out is reported instead of sent again: a `create` sent twice would
//! find its own key and say "existed". Reads, keep-alives and revokes are safe to repeat
//! and move on after any transport failure.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{json, Value};

use crate::error::EndpointFailure;
use crate::wire::{
    self, b64, prefix_range, DeleteReply, ErrorReply, HeaderOnly, LeaseReply, RangeReply, Streamed,
    TxnReply,
};
use crate::{Endpoint, Endpoints, Error, KeyValue, Result};

/// A reply larger than this is refused rather than held in memory.
const MAX_REPLY: u64 = 64 << 20;
/// An error reply is a line of text; more is not read.
const MAX_ERROR_REPLY: u64 = 64 << 10;

/// Whether a request may be sent again to another endpoint after it may have reached one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repeat {
    /// A write: only when it was never delivered.
    Never,
    /// A read (or an operation whose second run changes nothing): after any transport
    /// failure.
    Safe,
}

/// How one attempt at one endpoint failed.
pub(crate) enum Attempt {
    /// The request never reached the endpoint; the cause for the message.
    NotDelivered(String),
    /// It reached it (or may have), and failed.
    Failed(Error),
}

/// A synchronous etcd v3 client over the JSON gateway. Cheap to share between threads
/// (`&Client` is enough: every method takes `&self`).
#[derive(Debug)]
pub struct Client {
    endpoints: Endpoints,
    timeout: Duration,
    agent: ureq::Agent,
    /// The endpoint that answered last, where the next request starts.
    current: AtomicUsize,
}

/// A lease as granted: its id and the TTL etcd gave it (which may be more than asked:
/// etcd rounds a short TTL up to its minimum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// The lease's id, to attach keys to and to keep alive.
    pub id: i64,
    /// Seconds it lives without a keep-alive.
    pub ttl: i64,
}

/// The HTTP agent's settings shared by unary calls and watches: no proxy from the
/// environment (etcd is on the underlay, never behind the user's web proxy), HTTP errors
/// read as replies (etcd's message is in the body), no pooled connections (a request on a
/// fresh connection that fails to connect was surely not delivered, which is what makes
/// failover safe), and the connect bounded by half the timeout (a live etcd accepts in
/// well under a millisecond; a silent one then costs half a timeout before the next is
/// tried, and a connect time-out is told apart from a slow answer).
pub(crate) fn agent_config(
    timeout: Duration,
) -> ureq::config::ConfigBuilder<ureq::typestate::AgentScope> {
    ureq::Agent::config_builder()
        .proxy(None)
        .http_status_as_error(false)
        .max_idle_connections(0)
        .max_idle_connections_per_host(0)
        .max_redirects(0)
        .user_agent(concat!("ctnet-etcd/", env!("CARGO_PKG_VERSION")))
        .timeout_resolve(Some(timeout / 2))
        .timeout_connect(Some(timeout / 2))
}

/// Sorts a ureq failure into "never delivered" and a reportable error.
pub(crate) fn classify(
    e: ureq::Error,
    endpoint: &Endpoint,
    path: &'static str,
    timeout: Duration,
) -> Attempt {
    use ureq::Timeout as T;
    match e {
        ureq::Error::Io(io) if never_connected(&io) => Attempt::NotDelivered(in_words(&io)),
        ureq::Error::Timeout(T::Connect | T::Resolve) => {
            Attempt::NotDelivered(format!("no answer to connect within {:?}", timeout / 2))
        }
        ureq::Error::HostNotFound => Attempt::NotDelivered("its host name does not resolve".into()),
        ureq::Error::ConnectionFailed => Attempt::NotDelivered("the connection failed".into()),
        ureq::Error::Timeout(_) => Attempt::Failed(Error::Timeout {
            endpoint: endpoint.clone(),
            path,
            timeout,
        }),
        ureq::Error::Io(io) => Attempt::Failed(Error::ConnectionLost {
            endpoint: endpoint.clone(),
            path,
            cause: in_words(&io),
        }),
        other => Attempt::Failed(Error::BadReply {
            endpoint: endpoint.clone(),
            path,
            cause: other.to_string(),
        }),
    }
}

/// The connect errors that leave nothing sent (ureq moves to a name's next address on the
/// same ones).
fn never_connected(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::NetworkDown
            | io::ErrorKind::AddrNotAvailable
    )
}

/// An I/O error as a message says it (the OS's text without "(os error N)").
fn in_words(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused: nothing listens there".into(),
        io::ErrorKind::HostUnreachable => "no route to the host".into(),
        io::ErrorKind::NetworkUnreachable => "the network is unreachable".into(),
        io::ErrorKind::NetworkDown => "the network is down".into(),
        io::ErrorKind::AddrNotAvailable => "the address is not available here".into(),
        io::ErrorKind::ConnectionReset => "the connection was reset".into(),
        io::ErrorKind::UnexpectedEof => "the connection closed before the reply was whole".into(),
        _ => e.to_string(),
    }
}

/// The error for a non-200 reply.
pub(crate) fn status_error(
    endpoint: &Endpoint,
    path: &'static str,
    status: u16,
    body: &[u8],
) -> Error {
    let (message, code) = ErrorReply::read(body);
    Error::Status {
        endpoint: endpoint.clone(),
        path,
        status,
        code,
        message,
    }
}

/// Whether etcd said the lease named does not exist (gRPC NOT_FOUND, "requested lease
/// not found").
fn lease_missing(e: &Error) -> bool {
    matches!(e, Error::Status { code: Some(5), message, .. } if message.contains("lease not found"))
}

impl Client {
    /// A client for `endpoints`. Every request (connect and whole reply) is bounded by
    /// `timeout` at each endpoint it is tried on; a request that cannot connect moves on
    /// to the next endpoint, so the worst case is one timeout per endpoint. Watches are
    /// bounded only while being set up. Nothing is sent until the first request.
    pub fn new(endpoints: Endpoints, timeout: Duration) -> Client {
        let agent = agent_config(timeout)
            .timeout_global(Some(timeout))
            .build()
            .new_agent();
        Client {
            endpoints,
            timeout,
            agent,
            current: AtomicUsize::new(0),
        }
    }

    /// The endpoints this client tries.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The bound on each request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The endpoint that answered last (the first one before any answer): where the next
    /// request goes first.
    pub fn current_endpoint(&self) -> &Endpoint {
        let list = self.endpoints.as_slice();
        &list[self.current.load(Ordering::Relaxed) % list.len()]
    }

    /// Proves etcd answers a linearizable read (so it has a leader and quorum) within the
    /// timeout at some endpoint: a count-only range of the key `health`, as `etcdctl
    /// endpoint health` does. The error says which endpoints failed and how.
    pub fn check(&self) -> Result<()> {
        self.call(
            "/v3/kv/range",
            json!({"key": b64(b"health"), "count_only": true}),
            Repeat::Safe,
            |_: HeaderOnly| Ok(()),
        )
    }

    /// The key's current value and the store's revision at the read (the revision to
    /// watch from, + 1, to miss nothing after it). `None` when the key does not exist.
    pub fn range(&self, key: &str) -> Result<(Option<KeyValue>, i64)> {
        self.call(
            "/v3/kv/range",
            json!({"key": b64(key.as_bytes())}),
            Repeat::Safe,
            |r: RangeReply| {
                let kv = r
                    .kvs
                    .into_iter()
                    .next()
                    .map(|kv| kv.into_key_value())
                    .transpose()?;
                Ok((kv, r.header.revision))
            },
        )
    }

    /// Every key starting with `prefix` (all keys for `""`), sorted by key, and the
    /// store's revision at the read.
    pub fn range_prefix(&self, prefix: &str) -> Result<(Vec<KeyValue>, i64)> {
        let (key, end) = prefix_range(prefix.as_bytes());
        self.call(
            "/v3/kv/range",
            json!({"key": b64(&key), "range_end": b64(&end)}),
            Repeat::Safe,
            |r: RangeReply| {
                let kvs = r
                    .kvs
                    .into_iter()
                    .map(|kv| kv.into_key_value())
                    .collect::<Result<_, _>>()?;
                Ok((kvs, r.header.revision))
            },
        )
    }

    /// Writes `value` at `key`, attached to `lease` if given (the key goes when the lease
    /// does). Returns the revision of the write. A lease that no longer exists is
    /// [`Error::LeaseNotFound`].
    pub fn put(&self, key: &str, value: &[u8], lease: Option<i64>) -> Result<i64> {
        self.call(
            "/v3/kv/put",
            put_request(key, value, lease),
            Repeat::Never,
            |r: HeaderOnly| Ok(r.header.revision),
        )
        .map_err(|e| with_lease(e, lease))
    }

    /// Writes `key` only if it does not exist (its create revision is 0), in one
    /// transaction. `true` if written; `false` if the key existed, nothing written.
    pub fn create(&self, key: &str, value: &[u8], lease: Option<i64>) -> Result<bool> {
        self.txn(
            key,
            json!({"target": "CREATE", "create_revision": "0"}),
            json!({"request_put": put_request(key, value, lease)}),
        )
        .map_err(|e| with_lease(e, lease))
    }

    /// Writes `key` only if its mod revision is still `expected_mod_revision` (nobody
    /// wrote it since it was read), in one transaction. `true` if written; `false` if it
    /// changed or is gone, nothing written. etcd compares an absent key as all zeros, so
    /// `expected_mod_revision` 0 writes only a key that does not exist, as `create` does.
    pub fn replace(
        &self,
        key: &str,
        value: &[u8],
        expected_mod_revision: i64,
        lease: Option<i64>,
    ) -> Result<bool> {
        self.txn(
            key,
            json!({"target": "MOD", "mod_revision": expected_mod_revision.to_string()}),
            json!({"request_put": put_request(key, value, lease)}),
        )
        .map_err(|e| with_lease(e, lease))
    }

    /// Deletes `key`; `true` if it existed.
    pub fn delete(&self, key: &str) -> Result<bool> {
        self.call(
            "/v3/kv/deleterange",
            json!({"key": b64(key.as_bytes())}),
            Repeat::Never,
            |r: DeleteReply| Ok(r.deleted > 0),
        )
    }

    /// Deletes every key starting with `prefix` (every key for `""`); how many there were.
    pub fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        let (key, end) = prefix_range(prefix.as_bytes());
        self.call(
            "/v3/kv/deleterange",
            json!({"key": b64(&key), "range_end": b64(&end)}),
            Repeat::Never,
            |r: DeleteReply| Ok(u64::try_from(r.deleted).unwrap_or(0)),
        )
    }

    /// Deletes `key` only if its mod revision is still `expected_mod_revision`, in one
    /// transaction; `true` if deleted, `false` if it changed or is gone.
    pub fn delete_if(&self, key: &str, expected_mod_revision: i64) -> Result<bool> {
        self.txn(
            key,
            json!({"target": "MOD", "mod_revision": expected_mod_revision.to_string()}),
            json!({"request_delete_range": {"key": b64(key.as_bytes())}}),
        )
    }

    /// A new lease of `ttl_seconds` (etcd may round it up; the answer has the TTL given).
    pub fn grant(&self, ttl_seconds: i64) -> Result<Lease> {
        let path = "/v3/lease/grant";
        let (endpoint, reply) =
            self.call_raw(path, json!({"TTL": ttl_seconds.to_string()}), Repeat::Never)?;
        let r: LeaseReply =
            wire::decode(&reply).map_err(|cause| bad_reply(&endpoint, path, cause))?;
        if !r.error.is_empty() {
            return Err(Error::Status {
                endpoint,
                path,
                status: 200,
                code: None,
                message: r.error,
            });
        }
        if r.id == 0 || r.ttl <= 0 {
            return Err(bad_reply(
                &endpoint,
                path,
                format!("lease {} with TTL {}", r.id, r.ttl),
            ));
        }
        Ok(Lease {
            id: r.id,
            ttl: r.ttl,
        })
    }

    /// Renews lease `id` once. `Some(ttl)`: its TTL in seconds from now. `None`: the lease
    /// no longer exists (expired or revoked; etcd answers such a keep-alive with HTTP 200
    /// and no TTL), so its keys are gone and a new lease is needed.
    pub fn keep_alive(&self, id: i64) -> Result<Option<i64>> {
        let path = "/v3/lease/keepalive";
        let (endpoint, reply) = self.call_raw(path, json!({"ID": id.to_string()}), Repeat::Safe)?;
        let r: Streamed<LeaseReply> =
            wire::decode(&reply).map_err(|cause| bad_reply(&endpoint, path, cause))?;
        match (r.result, r.error) {
            (_, Some(error)) => Err(stream_error(&endpoint, path, error)),
            (Some(lease), None) => Ok((lease.ttl > 0).then_some(lease.ttl)),
            (None, None) => Err(bad_reply(
                &endpoint,
                path,
                "neither a result nor an error".into(),
            )),
        }
    }

    /// Revokes lease `id`, deleting its keys. A lease already gone is not an error: its
    /// keys are gone either way.
    pub fn revoke(&self, id: i64) -> Result<()> {
        match self.call(
            "/v3/lease/revoke",
            json!({"ID": id.to_string()}),
            Repeat::Safe,
            |_: HeaderOnly| Ok(()),
        ) {
            Err(e) if lease_missing(&e) => Ok(()),
            other => other,
        }
    }

    /// Lease `id`'s remaining TTL in seconds, without renewing it; `None` when it no
    /// longer exists (etcd says TTL -1).
    pub fn time_to_live(&self, id: i64) -> Result<Option<i64>> {
        self.call(
            "/v3/lease/timetolive",
            json!({"ID": id.to_string()}),
            Repeat::Safe,
            |r: LeaseReply| Ok((r.ttl > 0).then_some(r.ttl)),
        )
    }

    /// Compacts etcd's history up to `revision` and waits until it is physically gone:
    /// a watch from an older revision then gets [`Error::Compacted`]. etcd refuses a
    /// revision already compacted or not yet reached (an [`Error::Status`] with gRPC
    /// code 11).
    pub fn compact(&self, revision: i64) -> Result<()> {
        self.call(
            "/v3/kv/compaction",
            json!({"revision": revision.to_string(), "physical": true}),
            Repeat::Safe,
            |_: HeaderOnly| Ok(()),
        )
    }

    /// A one-compare transaction on `key` whose success branch is `then`.
    fn txn(&self, key: &str, mut compare: Value, then: Value) -> Result<bool> {
        compare["key"] = b64(key.as_bytes()).into();
        compare["result"] = "EQUAL".into();
        self.call(
            "/v3/kv/txn",
            json!({"compare": [compare], "success": [then]}),
            Repeat::Never,
            |r: TxnReply| Ok(r.succeeded),
        )
    }

    /// [`Client::call_raw`], the reply decoded as `R` and read by `read` (whose error is
    /// the reply's fault).
    fn call<R, T>(
        &self,
        path: &'static str,
        body: Value,
        repeat: Repeat,
        read: impl FnOnce(R) -> Result<T, String>,
    ) -> Result<T>
    where
        R: serde::de::DeserializeOwned,
    {
        let (endpoint, reply) = self.call_raw(path, body, repeat)?;
        wire::decode(&reply)
            .and_then(read)
            .map_err(|cause| bad_reply(&endpoint, path, cause))
    }

    /// Sends `body` to `path`, trying each endpoint once from the current one; the
    /// endpoint that answered and its 200 reply.
    fn call_raw(
        &self,
        path: &'static str,
        body: Value,
        repeat: Repeat,
    ) -> Result<(Endpoint, Vec<u8>)> {
        let body = body.to_string();
        let list = self.endpoints.as_slice();
        let start = self.current.load(Ordering::Relaxed);
        let mut failures = Vec::new();
        let mut last_failed = None;
        for i in (0..list.len()).map(|n| (start + n) % list.len()) {
            let endpoint = &list[i];
            match self.attempt(endpoint, path, &body) {
                Ok(reply) => {
                    self.current.store(i, Ordering::Relaxed);
                    return Ok((endpoint.clone(), reply));
                }
                Err(Attempt::NotDelivered(cause)) => failures.push(EndpointFailure {
                    endpoint: endpoint.clone(),
                    cause,
                }),
                Err(Attempt::Failed(
                    e @ (Error::Timeout { .. } | Error::ConnectionLost { .. }),
                )) if repeat == Repeat::Safe => {
                    failures.push(EndpointFailure {
                        endpoint: endpoint.clone(),
                        cause: e.to_string(),
                    });
                    last_failed = Some(e);
                }
                Err(Attempt::Failed(e)) => return Err(e),
            }
        }
        // With one endpoint, its own error says more than a list of one.
        match last_failed {
            Some(e) if list.len() == 1 => Err(e),
            _ => Err(Error::Unreachable { failures }),
        }
    }

    /// One POST to one endpoint.
    fn attempt(
        &self,
        endpoint: &Endpoint,
        path: &'static str,
        body: &str,
    ) -> Result<Vec<u8>, Attempt> {
        let url = format!("{endpoint}{path}");
        let classify = |e| classify(e, endpoint, path, self.timeout);
        let mut response = self
            .agent
            .post(&url)
            .header("content-type", "application/json")
            .send(body)
            .map_err(classify)?;
        let status = response.status().as_u16();
        let limit = if status == 200 {
            MAX_REPLY
        } else {
            MAX_ERROR_REPLY
        };
        let reply = response
            .body_mut()
            .with_config()
            .limit(limit)
            .read_to_vec()
            .map_err(classify)?;
        if status == 200 {
            Ok(reply)
        } else {
            Err(Attempt::Failed(status_error(
                endpoint, path, status, &reply,
            )))
        }
    }
}

fn put_request(key: &str, value: &[u8], lease: Option<i64>) -> Value {
    let mut put = json!({"key": b64(key.as_bytes()), "value": b64(value)});
    if let Some(lease) = lease {
        put["lease"] = lease.to_string().into();
    }
    put
}

/// etcd's "requested lease not found" as the variant that names the lease.
fn with_lease(e: Error, lease: Option<i64>) -> Error {
    match (lease, &e) {
        (Some(lease), Error::Status { endpoint, .. }) if lease_missing(&e) => {
            Error::LeaseNotFound {
                endpoint: endpoint.clone(),
                lease,
            }
        }
        _ => e,
    }
}

pub(crate) fn bad_reply(endpoint: &Endpoint, path: &'static str, cause: String) -> Error {
    Error::BadReply {
        endpoint: endpoint.clone(),
        path,
        cause,
    }
}

/// The `{"error": {...}}` message of a stream as an [`Error::Status`].
pub(crate) fn stream_error(endpoint: &Endpoint, path: &'static str, error: Value) -> Error {
    let body = error.to_string();
    let (message, code) = ErrorReply::read(body.as_bytes());
    Error::Status {
        endpoint: endpoint.clone(),
        path,
        status: error
            .get("http_code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(200),
        code,
        message,
    }
}
