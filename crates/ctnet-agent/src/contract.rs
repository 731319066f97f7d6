//! TEMPORARY: the run-dir contract's types (contract-14.md section 2) until
//! `ctnet_engine::agent` lands from branch `names`; removed at that merge.
#![allow(dead_code)]
use std::path::PathBuf;

use ctnet_engine::Paths;
use serde::{Deserialize, Serialize};

pub const LOCK: &str = "agent.lock";
pub const SOCKET: &str = "agent.sock";
pub const STATUS: &str = "agent.json";
pub const LOG: &str = "agent.log";
pub fn lock_path(p: &Paths) -> PathBuf { p.run_dir.join(LOCK) }
pub fn socket_path(p: &Paths) -> PathBuf { p.run_dir.join(SOCKET) }
pub fn status_path(p: &Paths) -> PathBuf { p.run_dir.join(STATUS) }
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Status {
    pub pid: u32,
    pub started: i64,
    pub updated: i64,
    pub mode: String,
    pub dns: Vec<DnsServing>,
    pub upstreams: Vec<String>,
    pub firewall: FirewallStatus,
    pub last_errors: Vec<AgentError>,
}
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DnsServing { pub network: String, pub listen: Vec<String>, pub names: usize, pub queries: u64 }
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FirewallStatus { pub watching: bool, pub repairs: u64, pub last_repair: Option<i64>, pub last_cause: Option<String> }
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AgentError { pub time: i64, pub message: String }
