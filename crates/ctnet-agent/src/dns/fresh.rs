//! Answers from an up-to-date table without the agent working for every attach.
//!
//! An attach or a detach on a DNS network sends its endpoint's id and exits. The agent
//! only notes the id when the datagram comes, and applies what it noted in one go at most
//! [`APPLY_WITHIN`] later, or at once when a query comes first. On a 2-core host the
//! agent's work for a datagram (a row read, the table swap, the status write) otherwise
//! runs while the one-shot exits and the next one starts, which they feel.
//!
//! ```text
//!   ctnet attach ──"endpoint 42"──▶ agent.sock ──▶ noted (pending) ──┐ APPLY_WITHIN, or
//!                                                                    ▼ a query, first
//!   query ──▶ pending? ──yes──▶ catch_up ──▶ control loop: read what waits on the
//!     │                           ▲           socket, apply every noted row, done
//!     ▼ no                        │
//!   decide ──▶ NXDOMAIN? ──yes────┘ (an attach's datagram may still wait on the socket,
//!     │                              unread): decide again
//!     ▼
//!   answer
//! ```
//!
//! So a name is answered as soon as its attach returns, and a detached one is never
//! answered once its datagram was read; what is left is at most one tick of a stale
//! positive answer for a datagram still unread on the socket when the query comes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{watch, Notify};

/// How long a noted attach or detach may wait before the agent applies it unasked.
pub const APPLY_WITHIN: Duration = Duration::from_millis(100);

/// Environment variable that sets [`APPLY_WITHIN`] in milliseconds (tests lengthen it, so
/// that only a query can have made the agent apply a change).
pub const ENV_APPLY_WITHIN: &str = "CTNET_AGENT_APPLY_WITHIN_MS";

/// [`APPLY_WITHIN`], or what [`ENV_APPLY_WITHIN`] says (`value` is its value).
pub fn apply_within(value: Option<&str>) -> Duration {
    value
        .and_then(|ms| ms.trim().parse().ok())
        .map_or(APPLY_WITHIN, Duration::from_millis)
}

/// What queries and the control loop share to keep answers current.
pub struct Fresh {
    /// Noted changes not yet applied.
    pending: AtomicBool,
    /// A query asks the control loop to catch up.
    asked: Notify,
    /// Bumped by the control loop each time it has caught up.
    done: watch::Sender<u64>,
}

impl Default for Fresh {
    fn default() -> Fresh {
        Fresh {
            pending: AtomicBool::new(false),
            asked: Notify::new(),
            done: watch::Sender::new(0),
        }
    }
}

impl Fresh {
    /// Whether changes are noted and not applied.
    pub fn is_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// The control loop noted changes (true) or applied them all (false).
    pub fn set_pending(&self, pending: bool) {
        self.pending.store(pending, Ordering::Release);
    }

    /// A query's side: asks the control loop to read its socket and apply what is noted,
    /// and returns once it has (at once if the agent is stopping).
    pub async fn catch_up(&self) {
        let mut done = self.done.subscribe();
        self.asked.notify_one();
        let _ = done.changed().await;
    }

    /// The control loop's side: resolves when a query asks it to catch up.
    pub async fn asked(&self) {
        self.asked.notified().await
    }

    /// The control loop's side: it has caught up; the queries waiting go on.
    pub fn caught_up(&self) {
        self.done
            .send_modify(|round| *round = round.wrapping_add(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_apply_window_is_100_ms_unless_the_environment_says_otherwise() {
        assert_eq!(apply_within(None), Duration::from_millis(100));
        assert_eq!(apply_within(Some("60000")), Duration::from_secs(60));
        assert_eq!(apply_within(Some("soon")), Duration::from_millis(100));
    }

    #[test]
    fn a_query_waits_until_the_control_loop_has_caught_up() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let fresh = Arc::new(Fresh::default());
            let applied = Arc::new(AtomicBool::new(false));
            let (f, a) = (fresh.clone(), applied.clone());
            let control = tokio::spawn(async move {
                f.asked().await;
                a.store(true, Ordering::SeqCst);
                f.set_pending(false);
                f.caught_up();
            });
            fresh.set_pending(true);
            assert!(fresh.is_pending());
            fresh.catch_up().await;
            assert!(
                applied.load(Ordering::SeqCst),
                "the query went on before the apply"
            );
            assert!(!fresh.is_pending());
            control.await.unwrap();
        });
    }

    #[test]
    fn an_ask_before_the_control_loop_listens_is_not_lost() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let fresh = Arc::new(Fresh::default());
            let f = fresh.clone();
            let query = tokio::spawn(async move { f.catch_up().await });
            // The query runs first and asks while nobody waits on `asked`.
            tokio::task::yield_now().await;
            fresh.asked().await;
            fresh.caught_up();
            query.await.unwrap();
        });
    }
}
