//! Where container number `i` goes, the same for every system: which network, which
//! address, which published port. Every system's world is a separate namespace, so all
//! of them can use the same addresses.

use std::net::Ipv4Addr;

/// Containers per network. A Linux bridge numbers its ports 1 to 1,023 (`BR_MAX_PORTS`
/// is 1,024 and port 0 is reserved), so past 1,023 containers the benchmark spreads
/// them over several networks.
pub const PER_NETWORK: usize = 1023;

/// The most containers one run can attach: host ports 10,000 up, 20 /16 networks.
pub const MAX_CONTAINERS: usize = 20_000;

/// The first host port; container `i` publishes `FIRST_HOST_PORT + i`.
const FIRST_HOST_PORT: usize = 10_000;

/// The port inside every container.
pub const CONTAINER_PORT: u16 = 80;

/// The network container `i` is on.
pub fn network_of(i: usize) -> usize {
    i / PER_NETWORK
}

/// Network `j`'s subnet: 10.(200+j).0.0/16.
pub fn subnet(j: usize) -> String {
    format!("10.{}.0.0/16", 200 + j)
}

/// Network `j`'s IPv6 subnet, for the dual-stack measurement: fd00:bec:J::/64 (a ULA,
/// the network number in hex as the third group).
pub fn subnet6(j: usize) -> String {
    format!("fd00:bec:{j:x}::/64")
}

/// The prefix length of every subnet.
pub const PREFIX_LEN: u8 = 16;

/// Network `j`'s gateway, the bridge's own address: 10.(200+j).0.1.
pub fn gateway(j: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, (200 + j) as u8, 0, 1)
}

/// The address of container `i` where the system lets the caller choose it (netavark's
/// static IPs, the kernel floor): 10.(200+j).0.2 onwards.
pub fn address(i: usize) -> Ipv4Addr {
    let j = network_of(i);
    let host = (i % PER_NETWORK) + 2;
    Ipv4Addr::new(10, (200 + j) as u8, (host / 256) as u8, (host % 256) as u8)
}

/// The host port container `i` publishes (TCP, to port 80 inside).
pub fn host_port(i: usize) -> u16 {
    (FIRST_HOST_PORT + i) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_over_networks() {
        assert_eq!(address(0), Ipv4Addr::new(10, 200, 0, 2));
        assert_eq!(address(999), Ipv4Addr::new(10, 200, 3, 233));
        assert_eq!(address(1022), Ipv4Addr::new(10, 200, 4, 0));
        assert_eq!(address(1023), Ipv4Addr::new(10, 201, 0, 2));
        assert_eq!(gateway(network_of(1500)), Ipv4Addr::new(10, 201, 0, 1));
        assert_eq!(host_port(MAX_CONTAINERS - 1), 29_999);
        assert!(network_of(MAX_CONTAINERS - 1) < 55);
        assert_eq!(network_of(MAX_CONTAINERS - 1), 19);
        assert_eq!(subnet6(19), "fd00:bec:13::/64");
        assert!(subnet6(19)
            .split('/')
            .next()
            .unwrap()
            .parse::<std::net::Ipv6Addr>()
            .is_ok());
    }
}
