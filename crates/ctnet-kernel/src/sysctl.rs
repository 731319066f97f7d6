//! Network sysctls, written in-process through /proc/sys.
//!
//! Files under /proc/sys/net belong to the network namespace of the thread that opens
//! them, so callers run these inside [`crate::netns::Netns::within`] to act on another one.

use std::fs;
use std::path::Path;

use crate::error::{Error, Result};
use crate::names::IfName;

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

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
/// never gives it IPv6 addresses or routes. A kernel without IPv6 has nothing to turn off.
pub fn disable_ipv6(ifname: &IfName) -> Result<()> {
    let key = format!("net/ipv6/conf/{ifname}/disable_ipv6");
    match fs::write(path_of(&key), "1") {
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && !Path::new("/proc/sys/net/ipv6").exists() =>
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
    use super::path_of;

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
