//! DNS in the sandboxes: an upstream resolver (dnsmasq) in the wan namespace, the host's
//! resolv.conf naming it (bind-mounted over /etc/resolv.conf in the sandbox's private
//! mount namespace), and `dig` from container namespaces.

use std::time::{Duration, Instant};

use super::{wait_until, Sandbox};

/// The upstream resolver's address in the wan.
pub const UPSTREAM: &str = "198.51.100.53";
/// A name only the upstream knows, and its addresses.
pub const WAN_NAME: &str = "wan.example";
pub const WAN_ADDR: &str = "203.0.113.77";
pub const WAN_ADDR6: &str = "2001:db8:100::77";
/// An upstream that never answers: the wan drops what is sent to it (a blackhole route),
/// so only our timeout ends the wait.
pub const DEAD_UPSTREAM: &str = "192.0.2.53";

/// The arguments of a dnsmasq that answers only from its command line (no resolv.conf,
/// no /etc/hosts, no config file, no pid file), in the foreground, logging to stderr.
pub fn dnsmasq(listen: &str, records: &[&str]) -> String {
    let addresses: String = records.iter().map(|r| format!(" --address={r}")).collect();
    format!(
        "dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --pid-file \
         --user=root --bind-interfaces --listen-address={listen} --log-facility=- {addresses}"
    )
}

impl Sandbox {
    /// The wan (see [`Sandbox::with_wan`]) with a DNS server at [`UPSTREAM`] that knows
    /// [`WAN_NAME`], and a host resolv.conf naming it.
    pub fn with_upstream(&mut self) {
        self.with_wan();
        self.ok(&format!(
            "ip -n wan addr add {UPSTREAM}/32 dev lo && ip -n wan route add blackhole {DEAD_UPSTREAM}"
        ));
        let server = dnsmasq(
            UPSTREAM,
            &[
                &format!("/{WAN_NAME}/{WAN_ADDR}"),
                &format!("/{WAN_NAME}/{WAN_ADDR6}"),
            ],
        );
        self.spawn_ready(&format!("exec ip netns exec wan {server} 2>&1"));
        self.set_resolv_conf(&[UPSTREAM]);
        let up = wait_until(Duration::from_secs(5), || {
            self.run(&format!(
                "dig +short +time=1 +tries=1 @{UPSTREAM} {WAN_NAME}"
            ))
            .stdout
            .starts_with(WAN_ADDR.as_bytes())
        });
        assert!(up, "the upstream dnsmasq did not come up");
    }

    /// Makes the sandbox's /etc/resolv.conf name `servers`, with a search line (that
    /// the containers' resolv.conf must copy).
    pub fn set_resolv_conf(&self, servers: &[&str]) {
        let path = self.dir.join("resolv.conf");
        let mounted = path.exists();
        let text: String = servers
            .iter()
            .map(|s| format!("nameserver {s}\n"))
            .chain(std::iter::once("search example.test\n".to_string()))
            .collect();
        // Written in place (same inode), so once bind-mounted the sandbox sees each rewrite.
        std::fs::write(&path, text).expect("resolv.conf");
        if !mounted {
            self.ok(&format!("mount --bind {} /etc/resolv.conf", path.display()));
        }
    }

    /// `dig @server ARGS` from namespace `ns` (None: the host); its whole output. One try,
    /// waiting `wait` seconds.
    /// dig reads a bare `a` as the record type A: name a container `a` with `-q a`.
    pub fn dig(&self, ns: Option<&str>, server: &str, args: &str) -> String {
        let prefix = ns
            .map(|n| format!("ip netns exec {n} "))
            .unwrap_or_default();
        let out = self.run(&format!("{prefix}dig +time=2 +tries=1 @{server} {args}"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The answers of `dig +short`, one per line.
    pub fn dig_short(&self, ns: Option<&str>, server: &str, args: &str) -> Vec<String> {
        self.dig(ns, server, &format!("+short {args}"))
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The gateway addresses of a network (IPv4 first), from `ctnet network inspect`.
    pub fn gateways(&self, network: &str) -> Vec<String> {
        let out = self.ok(&format!("ctnet network inspect {network} --format json"));
        let value: serde_json::Value = serde_json::from_str(&out).expect("inspect json");
        let net = value.get("network").unwrap_or(&value);
        net["subnets"]
            .as_array()
            .unwrap_or_else(|| panic!("no subnets in {out}"))
            .iter()
            .map(|s| s["gateway"].as_str().expect("gateway").to_string())
            .collect()
    }

    /// The sandbox's run dir (agent.lock, agent.sock, agent.json live there).
    pub fn run_dir(&self) -> std::path::PathBuf {
        self.dir.join("run")
    }
}

/// The status word of a dig answer (`NOERROR`, `NXDOMAIN`, `SERVFAIL`), or "" when dig got
/// no answer at all.
pub fn status(dig_output: &str) -> &str {
    dig_output
        .split("status: ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or("")
}

/// Polls `f` every 20 ms until it is true or `limit` passes; returns how long it took.
pub fn within(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}
