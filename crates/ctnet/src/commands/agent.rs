//! `ctnet agent status`: whether the host agent runs, from the run dir's files (see
//! `ctnet_engine::agent`). The lock tells whether it lives; its status file what it does.
//! A status file left by a dead agent is not believed.

use std::time::{SystemTime, UNIX_EPOCH};

use ctnet_engine::agent::{self, Status};
use ctnet_engine::Paths;
use serde::Serialize;

use crate::cli::Format;
use crate::output;

/// What `agent status --format json` prints.
#[derive(Serialize)]
struct Report {
    running: bool,
    pid: Option<u32>,
    #[serde(flatten)]
    status: Option<Status>,
}

/// The agent's status; exits 0 whether or not it runs.
pub fn status(paths: &Paths, format: Format) -> ctnet_engine::Result<()> {
    let pid = agent::running_pid(paths);
    let status = pid.and_then(|_| agent::read_status(paths));
    let report = Report {
        running: pid.is_some(),
        pid,
        status,
    };
    match format {
        Format::Json => output::json(&report),
        Format::Table => print_text(&report),
    }
    Ok(())
}

fn print_text(report: &Report) {
    let Some(pid) = report.pid else {
        println!("agent: not running");
        return;
    };
    let Some(st) = &report.status else {
        println!("agent: running (pid {pid}), no status written yet");
        return;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    println!(
        "agent: running (pid {pid}, {}), since {} ({} s ago)",
        st.mode,
        st.started,
        now - st.started
    );
    if st.dns.is_empty() {
        println!("dns: no network served");
    }
    for d in &st.dns {
        println!(
            "dns: network {} on {}: {} names, {} queries",
            d.network,
            d.listen.join(", "),
            d.names,
            d.queries
        );
    }
    if !st.upstreams.is_empty() {
        println!("upstreams: {}", st.upstreams.join(", "));
    }
    let fw = &st.firewall;
    println!(
        "firewall: {}, {} repairs{}",
        if fw.watching {
            "watching"
        } else {
            "not watching"
        },
        fw.repairs,
        fw.last_cause
            .as_deref()
            .map(|c| format!(", last: {c}"))
            .unwrap_or_default()
    );
    for e in &st.last_errors {
        println!("error at {}: {}", e.time, e.message);
    }
}
