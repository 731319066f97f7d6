//! `agent.json`: what `ctnet agent status` and `ctnet doctor` read about the running agent.
//! Written whole to a temporary file and renamed over the old one, so a reader never sees
//! half a file; rewritten on every reload (at least every 2 s).

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};

use ctnet_engine::agent::{AgentError, Status};

/// At most this many errors are kept, oldest dropped first.
pub const MAX_ERRORS: usize = 20;

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The agent's recent errors, shared by every task that can fail (listeners, forwards,
/// the firewall watch). Each is also printed to stderr, which is agent.log for an agent
/// started on demand.
#[derive(Clone, Default)]
pub struct Errors(Arc<Mutex<VecDeque<AgentError>>>);

impl Errors {
    /// Records `message`. The same message as the newest one only moves its time, so an
    /// upstream that stays dead (or a bind retried every reload) takes one entry.
    pub fn record(&self, message: String) {
        let mut list = self.0.lock().expect("errors lock");
        let time = now();
        if let Some(last) = list.back_mut().filter(|e| e.message == message) {
            last.time = time;
            return;
        }
        eprintln!("ctnet-agent: {message}");
        list.push_back(AgentError { time, message });
        while list.len() > MAX_ERRORS {
            list.pop_front();
        }
    }

    /// The errors, oldest first.
    pub fn list(&self) -> Vec<AgentError> {
        self.0
            .lock()
            .expect("errors lock")
            .iter()
            .cloned()
            .collect()
    }
}

/// Writes `status` to `path` atomically.
pub fn write(path: &Path, status: &Status) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    // Made whole in memory, then one write: serde_json writes token by token, which
    // straight into the file is a system call for each.
    let mut text = serde_json::to_vec_pretty(status)?;
    text.push(b'\n');
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_bounded_and_repeats_merge() {
        let errors = Errors::default();
        for i in 0..30 {
            errors.record(format!("e{i}"));
            errors.record(format!("e{i}"));
        }
        let list = errors.list();
        assert_eq!(list.len(), MAX_ERRORS);
        assert_eq!(list[0].message, "e10");
        assert_eq!(list[MAX_ERRORS - 1].message, "e29");
    }

    #[test]
    fn status_is_written_whole() {
        let dir = std::env::temp_dir().join(format!("ctnet-agent-status-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("agent.json");
        let status = Status {
            pid: 7,
            mode: "service".into(),
            ..Status::default()
        };
        write(&path, &status).unwrap();
        let back: Status = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!((back.pid, back.mode.as_str()), (7, "service"));
        assert!(!dir.join("agent.json.tmp").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
