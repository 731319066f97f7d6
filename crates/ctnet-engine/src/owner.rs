//! The process that owns an unfinished operation or a `ctnet run` namespace.
//!
//! A pid alone is reused; a pid with its start time (field 22 of /proc/PID/stat) names one
//! process for the life of the boot, so reconcile never mistakes a newcomer for the owner.

use std::fs;

/// A process identity that survives pid reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// Process id.
    pub pid: u32,
    /// Start time in clock ticks since boot.
    pub start: u64,
}

impl Owner {
    /// This process.
    pub fn me() -> Owner {
        // Asked several times per command; /proc is read once.
        static ME: std::sync::OnceLock<Owner> = std::sync::OnceLock::new();
        *ME.get_or_init(|| {
            let pid = std::process::id();
            Owner {
                pid,
                start: start_time(pid).unwrap_or(0),
            }
        })
    }

    /// True while the process still runs.
    pub fn is_alive(&self) -> bool {
        start_time(self.pid) == Some(self.start)
    }
}

fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses; fields after the last ')' are plain.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_made_up_one_is_not() {
        let me = Owner::me();
        assert!(me.start > 0);
        assert!(me.is_alive());
        assert!(!Owner {
            pid: me.pid,
            start: me.start + 1
        }
        .is_alive());
    }
}
