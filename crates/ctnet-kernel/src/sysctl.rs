//! Network sysctls, written in-process through /proc/sys.
//!
//! Files under /proc/sys/net belong to the network namespace of the thread that opens
//! them, so callers run these inside [`crate::netns::Netns::within`] to act on another one.
//!
//! Besides plain reads and writes: IPv4 and IPv6 forwarding (the latter keeping the
//! host's router advertisements, see [`enable_ipv6_forward`]), and IPv6 per interface:
//! off, on, or on without autoconfiguration.

use std::fs;
use std::path::Path;

use crate::error::{Error, Result};
use crate::names::IfName;

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";
const IPV6_CONF: &str = "/proc/sys/net/ipv6/conf";
const IPV6_FORWARD: &str = "/proc/sys/net/ipv6/conf/all/forwarding";

/// Reads a sysctl under /proc/sys, given as `net/ipv4/ip_forward` or `net.ipv4.ip_forward`.
///
/// Files under /proc/sys/net are resolved in the reading thread's network namespace.
pub fn read(key: &str) -> Result<String> {
    let path = path_of(key);
    fs::read_to_string(&path)
        .map(|s| s.trim().to_string())
        .map_err(|e| Error::io(format!("read sysctl {key}"), e))
}

/// Writes a sysctl, skipping the write when it already holds the value.
pub fn write(key: &str, value: &str) -> Result<()> {
    if read(key).is_ok_and(|v| v == value) {
        return Ok(());
    }
    let path = path_of(key);
    fs::write(&path, value).map_err(|e| Error::io(format!("set sysctl {key} = {value}"), e))
}

/// Turns IPv6 off on one interface. Done before the interface has carrier, the kernel
/// never gives it IPv6 addresses or routes. An interface without IPv6 state has nothing
/// to turn off: a kernel without IPv6, or a device whose MTU is below IPv6's minimum of
/// 1280, which the kernel keeps no IPv6 state (and no conf folder) for.
pub fn disable_ipv6(ifname: &IfName) -> Result<()> {
    let key = format!("net/ipv6/conf/{ifname}/disable_ipv6");
    match fs::write(path_of(&key), "1") {
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && !Path::new(IPV6_CONF).join(ifname.as_str()).exists() =>
        {
            Ok(())
        }
        other => other.map_err(|e| Error::io(format!("set sysctl {key} = 1"), e)),
    }
}

/// True when IPv4 forwarding is on in this namespace.
pub fn ip_forward_enabled() -> Result<bool> {
    Ok(read(IP_FORWARD)? == "1")
}

/// Turns IPv4 forwarding on in this namespace.
pub fn enable_ip_forward() -> Result<()> {
    write(IP_FORWARD, "1")
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
/// how the host takes RAs. A kernel without IPv6 is an error.
pub fn enable_ipv6_forward(skip: impl Fn(&str) -> bool) -> Result<Vec<String>> {
    if ipv6_forward_enabled()? {
        return Ok(Vec::new());
    }
    let current = accept_ra_settings()?;
    let raise: Vec<String> = accept_ra_to_raise(&current, skip)
        .into_iter()
        .map(str::to_string)
        .collect();
    for ifname in &raise {
        match fs::write(format!("{IPV6_CONF}/{ifname}/accept_ra"), "2") {
            Ok(()) => {}
            // The interface went away since the listing: nothing left to keep.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::io(
                    format!("set sysctl net/ipv6/conf/{ifname}/accept_ra = 2"),
                    e,
                ))
            }
        }
    }
    write(IPV6_FORWARD, "1")?;
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
    write(&format!("net/ipv6/conf/{ifname}/accept_ra"), "0")?;
    write(&format!("net/ipv6/conf/{ifname}/autoconf"), "0")
}

/// Lets packets to 127.0.0.0/8 be routed out of one interface (`route_localnet` = 1), so
/// a port published on 127.0.0.1 can be DNATed to a container behind it. Whoever sets it
/// must drop packets for 127.0.0.0/8 that arrive from outside (the CVE-2020-8558 class).
pub fn enable_route_localnet(ifname: &IfName) -> Result<()> {
    write(&format!("net/ipv4/conf/{ifname}/route_localnet"), "1")
}

/// Turns duplicate address detection off on one interface (`accept_dad` = 0), so the
/// link-local address the kernel makes for it is usable at once. Until that address has
/// passed detection (about a second), the kernel sends no neighbour solicitation for
/// traffic it forwards out of the interface: the first packets to a container that was
/// just attached would wait. Meant for interfaces whose addresses ctnet alone gives out
/// (its bridges, a container's interface); set before the link has carrier.
pub fn disable_ipv6_dad(ifname: &IfName) -> Result<()> {
    write(&format!("net/ipv6/conf/{ifname}/accept_dad"), "0")
}

/// Turns IPv6 on for one interface (`disable_ipv6` = 0), e.g. the bridge of a
/// dual-stack network on a host whose `default/disable_ipv6` is 1: the kernel refuses
/// an IPv6 address on an interface with IPv6 off. A kernel without IPv6 is an error.
pub fn enable_ipv6(ifname: &IfName) -> Result<()> {
    write(&format!("net/ipv6/conf/{ifname}/disable_ipv6"), "0")
}

/// The /proc/sys path of a key. The dotted form cannot name an interface with a dot in
/// its name (`eth0.100`), so a key containing `/` is taken as a path as it is.
fn path_of(key: &str) -> String {
    if key.starts_with('/') {
        key.to_string()
    } else if key.contains('/') {
        format!("/proc/sys/{key}")
    } else {
        format!("/proc/sys/{}", key.replace('.', "/"))
    }
}

#[cfg(test)]
mod tests {
    use super::{accept_ra_to_raise, path_of};

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
    fn keys_map_to_proc_paths() {
        assert_eq!(
            path_of("net.ipv4.ip_forward"),
            "/proc/sys/net/ipv4/ip_forward"
        );
        assert_eq!(
            path_of("net/ipv4/conf/eth0.100/forwarding"),
            "/proc/sys/net/ipv4/conf/eth0.100/forwarding"
        );
    }
}
