//! Waiting for the machine to go quiet before measuring.
//!
//! Deleting hundreds of namespaces leaves the kernel dismantling them on a work queue
//! for seconds; hundreds of fresh interfaces keep it busy with IPv6 autoconfiguration
//! (DAD, router and multicast listener messages flooded over the bridge). A measurement
//! started during that pays for it. So before each measured batch the benchmark waits,
//! boundedly, until the CPUs are close to idle.

use std::time::{Duration, Instant};

/// One sampling window.
const WINDOW: Duration = Duration::from_millis(250);
/// Quiet means at most this share of all CPUs busy over a window.
const QUIET_SHARE: f64 = 0.10;

/// Waits until one window sees the CPUs at most [`QUIET_SHARE`] busy, for at most `max`.
/// Returns false (and says so on stderr) if the machine never went quiet; the
/// measurement then goes ahead anyway.
pub fn wait_for_quiet(max: Duration, before: &str) -> bool {
    let deadline = Instant::now() + max;
    let mut last = cpu_times();
    while Instant::now() < deadline {
        std::thread::sleep(WINDOW);
        let now = cpu_times();
        if let (Some((busy0, total0)), Some((busy1, total1))) = (last, now) {
            let total = total1.saturating_sub(total0);
            if total > 0 && (busy1.saturating_sub(busy0) as f64) / (total as f64) <= QUIET_SHARE {
                return true;
            }
        } else {
            return true; // no /proc/stat: nothing to wait for
        }
        last = now;
    }
    eprintln!(
        "note: the machine stayed busy for {} s before {before}; figures may be noisy",
        max.as_secs()
    );
    false
}

/// (busy, total) jiffies of all CPUs from /proc/stat; idle and iowait count as idle.
fn cpu_times() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest times are inside user).
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}
