//! The resolv.conf a named namespace's commands see: `/etc/netns/NAME/resolv.conf`.
//!
//! ```text
//!  /etc/netns/NAME/resolv.conf          bind-mounted over /etc/resolv.conf by
//!    nameserver 10.89.0.1   ◄─ gateway   `ip netns exec NAME …`, `ctnet netns exec NAME …`
//!    nameserver fd00:89::1  ◄─ of each   and `ctnet run --name NAME …`
//!    search …               ◄─ DNS network of the namespace (IPv4 first, then IPv6)
//!    options …              ◄─ copied from the host's /etc/resolv.conf
//! ```
//!
//! The host agent answers on those gateways (container names, and everything else
//! forwarded to the host's own resolvers). The file is written on every attach to a DNS
//! network and every detach from one, and removed (with its folder, if nothing else is
//! in it) when the namespace leaves its last DNS network. Only named namespaces get one:
//! that is the only place iproute2's convention looks; Podman writes its containers'
//! resolv.conf itself from netavark's answer.
//!
//! A resolv.conf there that ctnet did not write (its first line is not [`MARK`]) is the
//! user's: it is never overwritten or removed, as Docker's `--dns` wins over the
//! embedded server. That namespace then resolves what the user's file says.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ctnet_kernel::NetnsName;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::model::{Endpoint, Family};
use crate::state;

/// The first line of every resolv.conf ctnet writes: what tells ours from the user's.
const MARK: &str = "# Written by ctnet: the host agent answers on the gateways of this";

/// glibc's resolver reads at most this many `nameserver` lines (MAXNS).
const MAX_NAMESERVERS: usize = 3;
/// The host's resolver configuration, whose `search` and `options` lines are kept.
const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";

/// The file's text: a `nameserver` line for each of `nameservers` (IPv4 first, at most
/// three), then the `search`, `domain` and `options` lines of `host` (the host's
/// resolv.conf), so a container searches the same domains with the same options.
pub(crate) fn resolv_conf(nameservers: &[IpAddr], host: &str) -> String {
    let mut servers: Vec<IpAddr> = Vec::new();
    for family in [Family::V4, Family::V6] {
        for ip in nameservers.iter().filter(|ip| Family::of(**ip) == family) {
            if !servers.contains(ip) {
                servers.push(*ip);
            }
        }
    }
    let mut out = format!("{MARK}\n# namespace's networks with DNS.\n");
    for ip in servers.iter().take(MAX_NAMESERVERS) {
        out.push_str(&format!("nameserver {ip}\n"));
    }
    for line in host.lines() {
        let word = line.split_whitespace().next().unwrap_or("");
        if matches!(word, "search" | "domain" | "options") {
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    out
}

impl Engine {
    /// The named namespace an endpoint is in, if it is one (its label is a name in the
    /// netns dir): the namespaces that get a resolv.conf.
    fn named_netns_of(&self, ep: &Endpoint) -> Option<NetnsName> {
        let name = NetnsName::new(&ep.container).ok()?;
        (self.netns_dir.path_of(&name) == ep.netns_path).then_some(name)
    }

    /// `etc_netns_dir/NAME`.
    fn etc_dir_of(&self, name: &NetnsName) -> PathBuf {
        self.paths.etc_netns_dir().join(name.as_str())
    }

    /// Writes (or removes) the resolv.conf of `ep`'s namespace from the store: the
    /// gateways of every DNS network it is on now (rows not being removed). Nothing for
    /// an endpoint that is not in a named namespace.
    pub(crate) fn refresh_resolv_conf(&mut self, ep: &Endpoint) -> Result<()> {
        if self.named_netns_of(ep).is_none() {
            return Ok(());
        }
        let path = ep.netns_path.to_string_lossy();
        let gateways = state::dns_gateways_of_netns(self.store.read(), ep.netns_inode, &path)?;
        self.write_resolv_conf(ep, gateways)
    }

    /// Writes the resolv.conf of `ep`'s namespace naming `gateways` (none: removes it).
    /// Nothing for an endpoint that is not in a named namespace.
    pub(crate) fn write_resolv_conf(&mut self, ep: &Endpoint, gateways: Vec<IpAddr>) -> Result<()> {
        let Some(name) = self.named_netns_of(ep) else {
            return Ok(());
        };
        if gateways.is_empty() {
            self.remove_resolv_conf(&name);
            return Ok(());
        }
        if is_the_users(&self.etc_dir_of(&name).join("resolv.conf")) {
            return Ok(());
        }
        let host = std::fs::read_to_string(HOST_RESOLV_CONF).unwrap_or_default();
        write_atomically(
            &self.etc_dir_of(&name),
            "resolv.conf",
            &resolv_conf(&gateways, &host),
        )
    }

    /// Removes a namespace's resolv.conf if ctnet wrote it, and its folder when nothing
    /// else is in it; either already gone is fine.
    pub(crate) fn remove_resolv_conf(&self, name: &NetnsName) {
        let dir = self.etc_dir_of(name);
        let file = dir.join("resolv.conf");
        if is_the_users(&file) {
            return;
        }
        let _ = std::fs::remove_file(file);
        // Fails, as it should, when the user keeps other files there (hosts, …).
        let _ = std::fs::remove_dir(&dir);
    }
}

/// Whether `text` (a resolv.conf's content) was written by ctnet.
fn written_by_us(text: &str) -> bool {
    text.lines().next() == Some(MARK)
}

/// Whether `path` is a file someone other than ctnet wrote (a missing or unreadable one
/// is not: there is nothing of the user's to keep).
fn is_the_users(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|text| !written_by_us(&text))
}

/// Writes `dir/file` by a rename, so a command starting meanwhile reads the old file or
/// the new one, never half of one; makes `dir` (0755) if needed.
fn write_atomically(dir: &Path, file: &str, text: &str) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let failed = |e: std::io::Error| {
        Error::invalid(
            format!("{}", dir.join(file).display()),
            format!("cannot be written: {e}"),
            format!(
                "make {} writable (or set {} to a writable folder), or use a network \
                 without DNS",
                dir.parent().unwrap_or(dir).display(),
                crate::paths::ENV_ETC_NETNS_DIR
            ),
        )
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(failed)?;
    let tmp = dir.join(format!(".{file}.{}", std::process::id()));
    std::fs::write(&tmp, text).map_err(failed)?;
    std::fs::rename(&tmp, dir.join(file)).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        failed(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateways_ipv4_first_at_most_three_then_the_hosts_search_and_options() {
        let ips: Vec<IpAddr> = ["fd00:1::1", "10.1.0.1", "10.2.0.1", "10.1.0.1", "10.3.0.1"]
            .iter()
            .map(|t| t.parse().unwrap())
            .collect();
        let host =
            "# comment\nnameserver 127.0.0.53\nsearch example.org lan\noptions edns0 trust-ad\n";
        let text = resolv_conf(&ips, host);
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            lines,
            [
                "nameserver 10.1.0.1",
                "nameserver 10.2.0.1",
                "nameserver 10.3.0.1",
                "search example.org lan",
                "options edns0 trust-ad",
            ]
        );
        assert!(written_by_us(&text), "{text}");
        assert!(!written_by_us("nameserver 192.0.2.53\n"));
        assert!(!written_by_us(""));
        let v6 = resolv_conf(&[ips[0], ips[1]], "");
        assert!(
            v6.ends_with("nameserver 10.1.0.1\nnameserver fd00:1::1\n"),
            "{v6}"
        );
    }
}
