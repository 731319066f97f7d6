//! The process that owns an unfinished operation or a `ctnet run` namespace.
//!
//! A pid alone is reused; a pid with its start time (field 22 of /proc/PID/stat) names one
//! process for the life of the boot, so reconcile never mistakes a newcomer for the owner.

use std::fs;
use std::io::Read;

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
    let stat = read_stat(pid)?;
    // The command name (field 2) may contain spaces and parentheses; fields after the last ')' are plain.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// `/proc/PID/stat`, read with one `read` when it fits in 1 KiB (it does unless the
/// kernel grows the line a lot): every ctnet process reads its own. The command name in
/// it may be any bytes; the fields after it are ASCII.
fn read_stat(pid: u32) -> Option<String> {
    let mut file = fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    let mut buf = [0u8; 1024];
    let n = file.read(&mut buf).ok()?;
    let mut bytes = buf[..n].to_vec();
    if n == buf.len() {
        file.read_to_end(&mut bytes).ok()?;
    }
    Some(String::from_utf8_lossy(&bytes).into_owned())
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
