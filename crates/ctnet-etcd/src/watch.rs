//! Watches: one long POST to `/v3/watch` whose reply never ends. The gateway writes each
//! watch response as one line of JSON, `{"result":{...}}\n`, in HTTP chunks that need
//! not match the lines: first `created: true`, then events as they happen; a watch from
//! a compacted revision gets `canceled: true, compact_revision: N` instead.
//!
//! Closing from another thread: each watch has an HTTP agent of its own, and
//! [`WatchCloser::close`] shuts it down (ureq's `Agent::shutdown`), which shuts the
//! socket and so wakes the blocked read at once; the iterator then ends with `None`. No
//! read timeout is involved, so an idle watch costs nothing.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;

use serde_json::json;

use crate::client::{agent_config, bad_reply, classify, status_error, stream_error, Attempt};
use crate::error::EndpointFailure;
use crate::wire::{self, b64, prefix_range, Streamed, WatchReply};
use crate::{Client, Endpoint, Error, KeyValue, Result};

const PATH: &str = "/v3/watch";
/// One watch response (one revision's events) larger than this ends the watch.
const MAX_LINE: u64 = 64 << 20;

/// One change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// The key was written; its new state.
    Put(KeyValue),
    /// The key was deleted (or its lease went) at `mod_revision`.
    Delete {
        /// The key deleted.
        key: String,
        /// The revision of the delete.
        mod_revision: i64,
    },
}

impl WatchEvent {
    /// The key changed.
    pub fn key(&self) -> &str {
        match self {
            WatchEvent::Put(kv) => &kv.key,
            WatchEvent::Delete { key, .. } => key,
        }
    }

    /// The revision of the change.
    pub fn mod_revision(&self) -> i64 {
        match self {
            WatchEvent::Put(kv) => kv.mod_revision,
            WatchEvent::Delete { mod_revision, .. } => *mod_revision,
        }
    }
}

/// A handle that closes its [`Watch`] from any thread, in bounded time: the socket is
/// shut, the watch's blocked `next()` returns `None`. Closing twice, or after the watch
/// ended, does nothing.
#[derive(Debug, Clone)]
pub struct WatchCloser {
    agent: ureq::Agent,
    closed: Arc<AtomicBool>,
}

impl WatchCloser {
    /// Closes the watch.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.agent.clone().shutdown();
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

/// A watch on a prefix: a blocking iterator of its changes in revision order.
///
/// `next()` blocks until a change comes. It gives `Some(Err(..))` once when the watch
/// cannot go on, then `None`: [`Error::Compacted`] when the start revision was compacted,
/// [`Error::WatchEnded`] when the member went away or etcd cancelled the watch. Either
/// way the caller reads the keys again and watches from that read's revision + 1. After
/// [`WatchCloser::close`] it gives `None` without an error. Dropping the watch closes it.
pub struct Watch {
    endpoint: Endpoint,
    reader: BufReader<ureq::BodyReader<'static>>,
    pending: VecDeque<WatchEvent>,
    /// An error to give before ending (a compaction seen with the creation).
    failure: Option<Error>,
    ended: bool,
    last_revision: i64,
    closer: WatchCloser,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("endpoint", &self.endpoint)
            .field("last_revision", &self.last_revision)
            .field("pending", &self.pending.len())
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl Watch {
    /// A handle that closes this watch from another thread.
    pub fn closer(&self) -> WatchCloser {
        self.closer.clone()
    }

    /// The endpoint the watch is on.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The highest revision up to which every change has been given out (or is about to
    /// be): the last event's revision, or a later one etcd's progress notifications
    /// vouch for; the start revision - 1 before any. A new watch from this + 1 misses
    /// nothing, unless it was compacted.
    pub fn last_revision(&self) -> i64 {
        self.last_revision
    }

    /// The next response line; `Ok(None)` at the end of the stream.
    fn read_message(&mut self) -> Result<Option<WatchReply>> {
        let mut line = Vec::new();
        let n = (&mut self.reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::WatchEnded {
                endpoint: self.endpoint.clone(),
                reason: format!("reading it failed: {e}"),
            })?;
        if n == 0 {
            return Ok(None);
        }
        if line.last() != Some(&b'\n') && n as u64 == MAX_LINE {
            return Err(bad_reply(
                &self.endpoint,
                PATH,
                format!("a watch response over {MAX_LINE} bytes"),
            ));
        }
        let m: Streamed<WatchReply> =
            wire::decode(&line).map_err(|c| bad_reply(&self.endpoint, PATH, c))?;
        match (m.result, m.error) {
            (_, Some(error)) => Err(stream_error(&self.endpoint, PATH, error)),
            (Some(reply), None) => Ok(Some(reply)),
            (None, None) => Err(bad_reply(
                &self.endpoint,
                PATH,
                "neither a result nor an error".into(),
            )),
        }
    }

    /// Takes in one response: its events queued, or the error that ends the watch.
    fn absorb(&mut self, reply: WatchReply) -> Result<()> {
        if reply.compact_revision > 0 {
            return Err(Error::Compacted {
                compact_revision: reply.compact_revision,
            });
        }
        if reply.canceled {
            let reason = if reply.cancel_reason.is_empty() {
                "etcd cancelled it".to_string()
            } else {
                format!("etcd cancelled it: {}", reply.cancel_reason)
            };
            return Err(Error::WatchEnded {
                endpoint: self.endpoint.clone(),
                reason,
            });
        }
        if reply.events.is_empty() && !reply.created {
            // A progress notification: every change up to its revision was sent.
            self.last_revision = self.last_revision.max(reply.header.revision);
        }
        for event in reply.events {
            let event = event
                .into_event()
                .map_err(|c| bad_reply(&self.endpoint, PATH, c))?;
            self.last_revision = self.last_revision.max(event.mod_revision());
            self.pending.push_back(event);
        }
        Ok(())
    }
}

impl Iterator for Watch {
    type Item = Result<WatchEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            if self.ended {
                return None;
            }
            if let Some(e) = self.failure.take() {
                self.ended = true;
                return Some(Err(e));
            }
            let outcome = match self.read_message() {
                Ok(Some(reply)) => self.absorb(reply),
                Ok(None) => Err(Error::WatchEnded {
                    endpoint: self.endpoint.clone(),
                    reason: "the connection closed".into(),
                }),
                Err(e) => Err(e),
            };
            if let Err(e) = outcome {
                // Events before the error still go out first.
                self.failure = Some(e);
            }
            if self.closer.is_closed() {
                self.ended = true;
                self.pending.clear();
                return None;
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.closer.close();
    }
}

impl Client {
    /// Watches every key starting with `prefix` from `start_revision` on (etcd's history
    /// from there, then live changes); `start_revision` <= 0 means changes after now.
    /// Returns once etcd has created the watch, so a change made after this returns is
    /// seen. Setting up is bounded by the timeout at each endpoint and moves on to the
    /// next after a transport failure (etcd's own refusal is returned); once set up, the
    /// watch has no time limit.
    pub fn watch_prefix(&self, prefix: &str, start_revision: i64) -> Result<Watch> {
        let (key, end) = prefix_range(prefix.as_bytes());
        let mut request =
            json!({"key": b64(&key), "range_end": b64(&end), "progress_notify": true});
        if start_revision > 0 {
            request["start_revision"] = start_revision.to_string().into();
        }
        let body = json!({ "create_request": request }).to_string();
        let list = self.endpoints().as_slice();
        let mut failures = Vec::new();
        let start = list
            .iter()
            .position(|e| e == self.current_endpoint())
            .unwrap_or(0);
        for endpoint in list.iter().cycle().skip(start).take(list.len()) {
            match self.open_watch(endpoint, &body, start_revision) {
                Ok(watch) => return Ok(watch),
                Err(Attempt::NotDelivered(cause)) => failures.push(EndpointFailure {
                    endpoint: endpoint.clone(),
                    cause,
                }),
                Err(Attempt::Failed(e @ (Error::Status { .. } | Error::BadReply { .. }))) => {
                    return Err(e)
                }
                Err(Attempt::Failed(e)) if list.len() == 1 => return Err(e),
                Err(Attempt::Failed(e)) => failures.push(EndpointFailure {
                    endpoint: endpoint.clone(),
                    cause: e.to_string(),
                }),
            }
        }
        Err(Error::Unreachable { failures })
    }

    /// One attempt at setting up a watch at `endpoint`: the POST and its `created`
    /// response, all within the timeout.
    fn open_watch(
        &self,
        endpoint: &Endpoint,
        body: &str,
        start_revision: i64,
    ) -> Result<Watch, Attempt> {
        let timeout = self.timeout();
        let agent = agent_config(timeout).build().new_agent();
        let closer = WatchCloser {
            agent: agent.clone(),
            closed: Arc::new(AtomicBool::new(false)),
        };
        // The stream has no time limit once it runs, so the setup gets a guard of its
        // own: past the timeout it shuts the agent, failing the blocked read.
        let (done, guard) = mpsc::channel::<()>();
        let expired = Arc::new(AtomicBool::new(false));
        {
            let (agent, expired) = (agent.clone(), expired.clone());
            thread::spawn(move || {
                if guard.recv_timeout(timeout) == Err(mpsc::RecvTimeoutError::Timeout) {
                    expired.store(true, Ordering::SeqCst);
                    agent.shutdown();
                }
            });
        }
        let opened = self.open_watch_unguarded(&agent, endpoint, body, start_revision, closer);
        let _ = done.send(());
        // Expired just after success, the watch is dead already: a time-out too.
        match opened {
            Ok(_) | Err(Attempt::Failed(_)) if expired.load(Ordering::SeqCst) => {
                Err(Attempt::Failed(Error::Timeout {
                    endpoint: endpoint.clone(),
                    path: PATH,
                    timeout,
                }))
            }
            other => other,
        }
    }

    fn open_watch_unguarded(
        &self,
        agent: &ureq::Agent,
        endpoint: &Endpoint,
        body: &str,
        start_revision: i64,
        closer: WatchCloser,
    ) -> Result<Watch, Attempt> {
        let classify = |e| classify(e, endpoint, PATH, self.timeout());
        let mut response = agent
            .post(format!("{endpoint}{PATH}"))
            .header("content-type", "application/json")
            .send(body)
            .map_err(classify)?;
        let status = response.status().as_u16();
        if status != 200 {
            let reply = response
                .body_mut()
                .with_config()
                .limit(64 << 10)
                .read_to_vec()
                .map_err(classify)?;
            return Err(Attempt::Failed(status_error(
                endpoint, PATH, status, &reply,
            )));
        }
        let mut watch = Watch {
            endpoint: endpoint.clone(),
            reader: BufReader::new(response.into_body().into_reader()),
            pending: VecDeque::new(),
            failure: None,
            ended: false,
            last_revision: start_revision.max(1) - 1,
            closer,
        };
        let created = match watch.read_message() {
            Ok(Some(reply)) if reply.created => reply,
            Ok(Some(_)) => {
                return Err(Attempt::Failed(bad_reply(
                    endpoint,
                    PATH,
                    "the first response is not `created`".into(),
                )))
            }
            Ok(None) => {
                return Err(Attempt::Failed(Error::WatchEnded {
                    endpoint: endpoint.clone(),
                    reason: "the connection closed before the watch was created".into(),
                }))
            }
            Err(e) => return Err(Attempt::Failed(e)),
        };
        if start_revision <= 0 {
            // From now: etcd starts after the revision it was at.
            watch.last_revision = created.header.revision;
        }
        if let Err(e) = watch.absorb(created) {
            watch.failure = Some(e);
        }
        Ok(watch)
    }
}
