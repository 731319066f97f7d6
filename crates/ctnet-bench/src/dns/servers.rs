//! The two DNS servers the benchmark loads, each a process it starts itself in the
//! current world and ends by its pid:
//!
//! * ctnet-agent, in the foreground as a service (`ctnet-agent --state-dir S --run-dir R
//!   --netns-dir N`), as a host with its systemd unit runs it: it serves the world's DNS
//!   networks on their gateways, port 53, from ctnet's store.
//! * aardvark-dns 1.4 (`aardvark-dns --config DIR -p PORT run`), with a config dir
//!   written in its format, as netavark 1.4 writes it (seen by running netavark 1.4 with
//!   a `dns_enabled` network): one file per network, named after it; its first line the
//!   addresses to listen on, comma separated; then one line per container,
//!   `ID IPV4,... IPV6,... NAME,ALIAS,...` (an empty column leaves two spaces). `run`
//!   forks; the parent exits once the child serves, and the child writes its pid into
//!   `DIR/aardvark.pid`.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to come up.
const START_WITHIN: Duration = Duration::from_secs(5);

/// A server process the benchmark started.
pub struct Server {
    /// Its pid (the daemon's own for aardvark-dns, not the parent's that exited).
    pub pid: u32,
    child: Option<Child>,
}

impl Server {
    /// Its resident memory now, in KiB (`VmRSS` of /proc/PID/status).
    pub fn rss_kib(&self) -> Option<u64> {
        vm_rss_kib(&std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        match self.child.take() {
            Some(mut child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            None => {
                // The daemon is not our child (its parent exited): end it by its pid and
                // wait, boundedly, until it is gone.
                // SAFETY: kill(2) with a pid this benchmark started and a plain signal.
                unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGTERM) };
                let deadline = Instant::now() + Duration::from_secs(2);
                while Path::new(&format!("/proc/{}", self.pid)).exists()
                    && Instant::now() < deadline
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
}

/// `VmRSS:   3476 kB` of a /proc/PID/status text, in KiB.
pub fn vm_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
}

/// Starts ctnet-agent as a service on the given state and run dirs, and waits until its
/// socket is bound (it binds `agent.sock` once its DNS listeners are up).
pub fn start_agent(
    bin: &Path,
    state_dir: &Path,
    run_dir: &Path,
    netns_dir: &str,
    log: &Path,
) -> Result<Server, String> {
    let log_file =
        std::fs::File::create(log).map_err(|e| format!("create {}: {e}", log.display()))?;
    let child = Command::new(bin)
        .args(["--state-dir".as_ref(), state_dir.as_os_str()])
        .args(["--run-dir".as_ref(), run_dir.as_os_str()])
        .args(["--netns-dir", netns_dir])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("start {}: {e}", bin.display()))?;
    let mut server = Server {
        pid: child.id(),
        child: Some(child),
    };
    let socket = run_dir.join("agent.sock");
    let deadline = Instant::now() + START_WITHIN;
    while !socket.exists() {
        let exited = server
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten());
        if let Some(status) = exited {
            return Err(format!(
                "{} exited ({status}) before serving: {}",
                bin.display(),
                last_lines(log)
            ));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{} did not bind {} within {} s: {}",
                bin.display(),
                socket.display(),
                START_WITHIN.as_secs(),
                last_lines(log)
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(server)
}

/// A container as aardvark-dns's config lists it.
pub struct Entry {
    pub id: String,
    pub ipv4: Ipv4Addr,
    pub name: String,
}

/// The config file of one network, in aardvark-dns 1.4's format.
pub fn aardvark_config(listen: Ipv4Addr, entries: &[Entry]) -> String {
    let mut out = format!("{listen}\n");
    for e in entries {
        let _ = writeln!(out, "{} {}  {}", e.id, e.ipv4, e.name);
    }
    out
}

/// Writes `DIR/NETWORK` and starts aardvark-dns on `port`; returns the daemon.
pub fn start_aardvark(
    bin: &Path,
    dir: &Path,
    network: &str,
    config: &str,
    port: u16,
) -> Result<Server, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let file = dir.join(network);
    std::fs::write(&file, config).map_err(|e| format!("write {}: {e}", file.display()))?;
    let log = dir.with_extension("log");
    let log_file =
        std::fs::File::create(&log).map_err(|e| format!("create {}: {e}", log.display()))?;
    // The daemon inherits stdout and stderr: a pipe would stay open for as long as it
    // runs, so they go to a file.
    let status = Command::new(bin)
        .arg("--config")
        .arg(dir)
        .args(["-p", &port.to_string(), "run"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .status()
        .map_err(|e| format!("start {}: {e}", bin.display()))?;
    if !status.success() {
        return Err(format!(
            "{} run: {status}: {}",
            bin.display(),
            last_lines(&log)
        ));
    }
    let pid_file = dir.join("aardvark.pid");
    let pid = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| format!("{} has no pid after `run` succeeded", pid_file.display()))?;
    Ok(Server { pid, child: None })
}

/// "aardvark-dns 1.4.0", from the binary.
pub fn version_of(bin: &Path) -> String {
    crate::child::first_line_of(bin, &["--version"]).unwrap_or_else(|| bin.display().to_string())
}

fn last_lines(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(3)..].join(" | ");
    if tail.is_empty() {
        "it said nothing".into()
    } else {
        tail
    }
}

/// The sibling `ctnet-agent` of the ctnet binary under test (as the engine finds it).
pub fn agent_beside(ctnet: &Path) -> PathBuf {
    ctnet.with_file_name("ctnet-agent")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_kib() {
        let status = "Name:\taardvark-dns\nVmPeak:\t  10000 kB\nVmRSS:\t    3476 kB\nThreads:\t3\n";
        assert_eq!(vm_rss_kib(status), Some(3476));
        assert_eq!(vm_rss_kib("Name:\tx\n"), None);
    }

    #[test]
    fn the_config_is_written_as_netavark_1_4_writes_it() {
        let entries = [Entry {
            id: "a".repeat(64),
            ipv4: Ipv4Addr::new(10, 77, 0, 2),
            name: "c1".into(),
        }];
        let text = aardvark_config(Ipv4Addr::new(10, 77, 0, 1), &entries);
        assert_eq!(
            text,
            format!("10.77.0.1\n{} 10.77.0.2  c1\n", "a".repeat(64))
        );
    }
}
