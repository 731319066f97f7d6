//! Network sysctls, read and written in-process through /proc/sys, and written only when
//! they must change.
//!
//! ```text
//!   ensure(key, wanted)
//!     read /proc/sys/<key> ──► holds `wanted` ─► kept: nothing opened for writing
//!                         └─► differs ───────► open for writing ─► EROFS/EACCES/EPERM:
//!                                                │                 SysctlUnwritable names
//!                                                ▼                 key, current, wanted
//!                                              write
//! ```
//!
//! Reading first is what lets ctnet run where /proc/sys is mounted read-only (a
//! container engine inside a container, as netavark does): every value that is already
//! right is left alone, and one that is not is refused naming the exact key. Per-device
//! IPv4 settings are set over netlink instead (see [`crate::link`]); IPv6 per-device
//! settings have no netlink form, so they stay here.
//!
//! Files under /proc/sys/net belong to the network namespace of the thread that opens
//! them, so callers run these inside [`crate::netns::Netns::within`] to act on another one.
//!
//! Besides plain reads and writes: IPv4 and IPv6 forwarding (the latter keeping the
//! host's router advertisements, see [`enable_ipv6_forward`]), and IPv6 per interface:
//! off, on, or on without autoconfiguration.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::names::IfName;

const IP_FORWARD: &str = "net/ipv4/ip_forward";
const IPV6_CONF: &str = "/proc/sys/net/ipv6/conf";
const IPV6_FORWARD: &str = "net/ipv6/conf/all/forwarding";

/// One sysctl, held as its path below /proc/sys (`net/ipv4/conf/eth0.100/forwarding`)
/// and shown as sysctl(8) names it (`net.ipv4.conf.eth0/100.forwarding`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key(String);

impl Key {
    /// A key given as `net/ipv4/ip_forward`, `net.ipv4.ip_forward` or a full
    /// `/proc/sys/...` path; the first separator tells the form. The dotted form names an
    /// interface with a dot in its name as sysctl(8) does, with a `/` in its place
    /// (`net.ipv4.conf.eth0/100.forwarding`).
    pub fn parse(key: &str) -> Key {
        let key = key.strip_prefix("/proc/sys/").unwrap_or(key);
        match key.find(['.', '/']).map(|i| &key[i..i + 1]) {
            Some(".") => {
                let parts: Vec<String> = key.split('.').map(|p| p.replace('/', ".")).collect();
                Key(parts.join("/"))
            }
            _ => Key(key.to_string()),
        }
    }

    /// A per-interface key: `net/<family>/conf/<ifname>/<setting>`.
    pub fn device(family: &str, ifname: &str, setting: &str) -> Key {
        Key(format!("net/{family}/conf/{ifname}/{setting}"))
    }

    /// Its file.
    pub fn path(&self) -> String {
        format!("/proc/sys/{}", self.0)
    }

    /// For a per-interface key, the same setting under `default`, which interfaces made
    /// afterwards start with: how a value can be set ahead for a device that does not
    /// exist yet. None for keys that are not per interface, or already `default`/`all`.
    pub fn for_new_devices(&self) -> Option<Key> {
        let parts: Vec<&str> = self.0.split('/').collect();
        match parts.as_slice() {
            ["net", family, "conf", ifname, setting] if !matches!(*ifname, "all" | "default") => {
                Some(Key::device(family, "default", setting))
            }
            _ => None,
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.split('/').map(|p| p.replace('.', "/")).collect();
        f.write_str(&parts.join("."))
    }
}

/// What a setting needs, given what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// It holds the value already: nothing is opened for writing.
    Keep,
    /// It must be written.
    Write,
}

/// Whether a setting holding `current` must be written to hold `wanted`. Values are
/// compared field by field, as the kernel prints several (`32768\t60999`) with tabs.
pub fn step(current: &str, wanted: &str) -> Step {
    if current.split_whitespace().eq(wanted.split_whitespace()) {
        Step::Keep
    } else {
        Step::Write
    }
}

/// What [`ensure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The value was right already.
    Kept,
    /// The value was written.
    Written,
}

/// Whether opening a sysctl for writing failed with `errno` because it cannot be written
/// here (a read-only /proc/sys, or no permission), rather than for a fault to report as
/// it is.
pub fn is_unwritable_errno(errno: Option<i32>) -> bool {
    matches!(errno, Some(libc::EROFS | libc::EACCES | libc::EPERM))
}

/// Reads a sysctl under /proc/sys, given as `net/ipv4/ip_forward` or `net.ipv4.ip_forward`.
///
/// Files under /proc/sys/net are resolved in the reading thread's network namespace.
pub fn read(key: &str) -> Result<String> {
    read_key(&Key::parse(key))
}

/// Writes a sysctl, leaving it alone when it already holds the value (see [`ensure`]).
pub fn write(key: &str, value: &str) -> Result<()> {
    ensure(&Key::parse(key), value).map(|_| ())
}

/// Makes `key` hold `wanted`: reads it and opens it for writing only when it differs.
/// When it must change and cannot be written here, the error is
/// [`Error::SysctlUnwritable`], naming the key, what it holds and what it must hold.
pub fn ensure(key: &Key, wanted: &str) -> Result<Outcome> {
    let current = read_key(key)?;
    match step(&current, wanted) {
        Step::Keep => Ok(Outcome::Kept),
        Step::Write => {
            let mut file = open_for_write(key, &current, wanted)?;
            file.write_all(wanted.as_bytes())
                .map_err(|e| Error::io(format!("set sysctl {key} = {wanted}"), e))?;
            Ok(Outcome::Written)
        }
    }
}

fn read_key(key: &Key) -> Result<String> {
    fs::read_to_string(key.path())
        .map(|s| s.trim().to_string())
        .map_err(|e| Error::io(format!("read sysctl {key}"), e))
}

/// Opens `key` for writing; a key that cannot be written here is a
/// [`Error::SysctlUnwritable`] carrying `current` and `wanted`.
fn open_for_write(key: &Key, current: &str, wanted: &str) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .open(key.path())
        .map_err(|source| {
            if is_unwritable_errno(source.raw_os_error()) {
                Error::SysctlUnwritable {
                    key: key.clone(),
                    current: current.to_string(),
                    wanted: wanted.to_string(),
                    source,
                }
            } else {
                Error::io(format!("set sysctl {key} = {wanted}"), source)
            }
        })
}

/// Turns IPv6 off on one interface. Done before the interface has carrier, the kernel
/// never gives it IPv6 addresses or routes. An interface without IPv6 state has nothing
/// to turn off: a kernel without IPv6, or a device whose MTU is below IPv6's minimum of
/// 1280, which the kernel keeps no IPv6 state (and no conf folder) for.
pub fn disable_ipv6(ifname: &IfName) -> Result<Outcome> {
    match ensure(&Key::device("ipv6", ifname.as_str(), "disable_ipv6"), "1") {
        Err(e) if e.is_not_found() && !Path::new(IPV6_CONF).join(ifname.as_str()).exists() => {
            Ok(Outcome::Kept)
        }
        other => other,
    }
}

/// True when IPv4 forwarding is on in this namespace.
pub fn ip_forward_enabled() -> Result<bool> {
    Ok(read(IP_FORWARD)? == "1")
}

/// Turns IPv4 forwarding on in this namespace.
pub fn enable_ip_forward() -> Result<Outcome> {
    ensure(&Key::parse(IP_FORWARD), "1")
}

/// True when IPv6 forwarding (`net/ipv6/conf/all/forwarding`) is on in this namespace.
pub fn ipv6_forward_enabled() -> Result<bool> {
    Ok(read(IPV6_FORWARD)? == "1")
}

/// Turns IPv6 forwarding on in this namespace without losing the routes it learns from
/// router advertisements, and returns the interfaces whose `accept_ra` it raised to 2.
///
/// With forwarding on, the kernel ignores router advertisements on every interface whose
/// `accept_ra` is 1, so a host that gets its IPv6 default route from RAs loses it when
/// the route's lifetime runs out (moby#43466). `accept_ra` = 2 accepts them even while
/// forwarding, so every interface at 1 is raised to 2 first (see [`accept_ra_to_raise`]
/// for which, and why not `default`), then forwarding goes on. Interfaces for which
/// `skip` says true are left alone: pass ctnet's own bridges and veths, which must not
/// take a container's advertisement as the host's default route.
///
/// When forwarding is already on, nothing is touched: whoever turned it on has settled
/// how the host takes RAs. When it is off and cannot be written here, the error names
/// `net.ipv6.conf.all.forwarding` before any `accept_ra` is raised. A kernel without
/// IPv6 is an error.
pub fn enable_ipv6_forward(skip: impl Fn(&str) -> bool) -> Result<Vec<String>> {
    let forwarding = Key::parse(IPV6_FORWARD);
    let current = read_key(&forwarding)?;
    if step(&current, "1") == Step::Keep {
        return Ok(Vec::new());
    }
    // Opened before anything changes: a read-only /proc/sys is refused with nothing done.
    let mut file = open_for_write(&forwarding, &current, "1")?;
    let settings = accept_ra_settings()?;
    let raise: Vec<String> = accept_ra_to_raise(&settings, skip)
        .into_iter()
        .map(str::to_string)
        .collect();
    for ifname in &raise {
        match ensure(&Key::device("ipv6", ifname, "accept_ra"), "2") {
            Ok(_) => {}
            // The interface went away since the listing: nothing left to keep.
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    file.write_all(b"1")
        .map_err(|e| Error::io(format!("set sysctl {forwarding} = 1"), e))?;
    Ok(raise)
}

/// Which interfaces must have `accept_ra` raised from 1 to 2 before IPv6 forwarding goes
/// on, given each interface's `accept_ra` (as listed under `/proc/sys/net/ipv6/conf`).
///
/// Only interfaces at exactly 1: 0 takes no RAs anyway and 2 already takes them while
/// forwarding. `all` is never changed (the kernel reads `accept_ra` per interface and
/// never consults `all`'s) nor is `default`, the value new interfaces start with: raised,
/// every bridge and veth ctnet makes afterwards would accept RAs while the host forwards,
/// so one container's advertisement could become the host's default route. An uplink
/// that appears later is not covered; the network managers that make such interfaces
/// (NetworkManager, systemd-networkd) handle RAs themselves and set `accept_ra` to 0.
/// `lo` never receives an RA and is left as it is.
pub fn accept_ra_to_raise<S: AsRef<str>>(
    interfaces: &[(S, i32)],
    skip: impl Fn(&str) -> bool,
) -> Vec<&str> {
    interfaces
        .iter()
        .map(|(name, value)| (name.as_ref(), *value))
        .filter(|&(name, value)| {
            value == 1 && !matches!(name, "all" | "default" | "lo") && !skip(name)
        })
        .map(|(name, _)| name)
        .collect()
}

/// Each interface's `accept_ra` under `/proc/sys/net/ipv6/conf`, `all` and `default`
/// included; interfaces that vanish while being read are left out.
fn accept_ra_settings() -> Result<Vec<(String, i32)>> {
    let entries = fs::read_dir(IPV6_CONF).map_err(|e| Error::io(format!("list {IPV6_CONF}"), e))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("list {IPV6_CONF}"), e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(value) = fs::read_to_string(entry.path().join("accept_ra")) else {
            continue;
        };
        if let Ok(value) = value.trim().parse() {
            out.push((name, value));
        }
    }
    Ok(out)
}

/// Turns off taking router advertisements and making addresses from them (SLAAC) on one
/// interface: `accept_ra` = 0 and `autoconf` = 0. Meant for a container's interface,
/// inside its namespace and before the link comes up: its addresses and routes are
/// ctnet's to give, and any container on the same bridge could send an RA.
pub fn disable_ipv6_autoconf(ifname: &IfName) -> Result<()> {
    ensure(&Key::device("ipv6", ifname.as_str(), "accept_ra"), "0")?;
    ensure(&Key::device("ipv6", ifname.as_str(), "autoconf"), "0").map(|_| ())
}

/// Turns duplicate address detection off on one interface (`accept_dad` = 0), so the
/// link-local address the kernel makes for it is usable at once. Until that address has
/// passed detection (about a second), the kernel sends no neighbour solicitation for
/// traffic it forwards out of the interface: the first packets to a container that was
/// just attached would wait. Meant for interfaces whose addresses ctnet alone gives out
/// (its bridges, a container's interface); set before the link has carrier.
pub fn disable_ipv6_dad(ifname: &IfName) -> Result<()> {
    ensure(&Key::device("ipv6", ifname.as_str(), "accept_dad"), "0").map(|_| ())
}

/// Turns IPv6 on for one interface (`disable_ipv6` = 0), e.g. the bridge of a
/// dual-stack network on a host whose `default/disable_ipv6` is 1: the kernel refuses
/// an IPv6 address on an interface with IPv6 off. A kernel without IPv6 is an error.
pub fn enable_ipv6(ifname: &IfName) -> Result<()> {
    ensure(&Key::device("ipv6", ifname.as_str(), "disable_ipv6"), "0").map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::{accept_ra_to_raise, is_unwritable_errno, step, Key, Step};

    #[test]
    fn forwarding_raises_accept_ra_only_where_it_is_one() {
        let interfaces = [
            ("all", 1),
            ("default", 1),
            ("lo", 1),
            ("eth0", 1),
            ("eth1", 0),
            ("wlan0", 2),
            ("eth0.100", 1),
            ("ctnet0", 1),
            ("bogus", -1),
        ];
        let raise = accept_ra_to_raise(&interfaces, |name| name.starts_with("ctnet"));
        assert_eq!(raise, ["eth0", "eth0.100"]);
        assert!(accept_ra_to_raise(&interfaces[..3], |_| false).is_empty());
    }

    #[test]
    fn keys_map_to_proc_paths_and_to_sysctl_names() {
        let forward = Key::parse("net.ipv4.ip_forward");
        assert_eq!(forward.path(), "/proc/sys/net/ipv4/ip_forward");
        assert_eq!(forward.to_string(), "net.ipv4.ip_forward");
        assert_eq!(Key::parse("/proc/sys/net/ipv4/ip_forward"), forward);
        assert_eq!(Key::parse("net/ipv4/ip_forward"), forward);

        // An interface with a dot in its name, both ways round, as sysctl(8) writes it.
        let vlan = Key::parse("net/ipv4/conf/eth0.100/forwarding");
        assert_eq!(vlan.path(), "/proc/sys/net/ipv4/conf/eth0.100/forwarding");
        assert_eq!(vlan.to_string(), "net.ipv4.conf.eth0/100.forwarding");
        assert_eq!(Key::parse("net.ipv4.conf.eth0/100.forwarding"), vlan);
        assert_eq!(Key::device("ipv4", "eth0.100", "forwarding"), vlan);
    }

    #[test]
    fn a_device_key_has_a_default_to_set_ahead() {
        let dad = Key::device("ipv6", "br-1234", "accept_dad");
        assert_eq!(
            dad.for_new_devices().unwrap().to_string(),
            "net.ipv6.conf.default.accept_dad"
        );
        assert_eq!(
            Key::device("ipv6", "all", "forwarding").for_new_devices(),
            None
        );
        assert_eq!(
            Key::device("ipv6", "default", "autoconf").for_new_devices(),
            None
        );
        assert_eq!(Key::parse("net.ipv4.ip_forward").for_new_devices(), None);
    }

    #[test]
    fn only_a_value_that_differs_is_written() {
        assert_eq!(step("1", "1"), Step::Keep);
        assert_eq!(step("0", "1"), Step::Write);
        assert_eq!(step("", "1"), Step::Write);
        // Several fields, as the kernel prints them (tabs) or a caller writes them.
        assert_eq!(step("32768\t60999", "32768 60999"), Step::Keep);
        assert_eq!(step("32768\t60999", "32768 61000"), Step::Write);
        assert_eq!(step("2", "1"), Step::Write);
    }

    #[test]
    fn read_only_and_permission_errors_mean_unwritable() {
        for errno in [libc::EROFS, libc::EACCES, libc::EPERM] {
            assert!(is_unwritable_errno(Some(errno)));
        }
        for errno in [Some(libc::ENOENT), Some(libc::EINVAL), None] {
            assert!(!is_unwritable_errno(errno));
        }
    }
}
