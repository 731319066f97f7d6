//! Per-device settings against the real kernel, each test in a fresh network namespace
//! entered by its own thread: IPv4's `route_localnet` set over netlink (no /proc/sys
//! file), and sysctls written only when they differ.

mod common;

use common::in_fresh_netns;
use ctnet_kernel::link::{self, BridgeSpec};
use ctnet_kernel::sysctl::{self, Key, Outcome};
use ctnet_kernel::{IfName, RtSocket};

fn bridge(sock: &mut RtSocket, text: &str) -> u32 {
    let name = IfName::new(text).unwrap();
    link::create_bridge(
        sock,
        &BridgeSpec {
            name: &name,
            mtu: None,
            multicast_snooping: false,
            mac: None,
        },
    )
    .unwrap();
    link::index_of(sock, text).unwrap().unwrap()
}

fn proc_sys(key: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/{key}"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn route_localnet_is_set_over_netlink_as_the_sysctl_would_set_it() {
    in_fresh_netns(|| {
        let mut sock = RtSocket::open().unwrap();
        let index = bridge(&mut sock, "br-local");
        bridge(&mut sock, "br-other");
        assert_eq!(proc_sys("net/ipv4/conf/br-local/route_localnet"), "0");
        assert_eq!(
            link::route_localnet(&mut sock, "br-local").unwrap(),
            Some(false)
        );

        // Pipelined with other requests, as the engine sends it beside the gateways.
        sock.execute_all(vec![
            link::set_up_request(index, "br-local"),
            link::enable_route_localnet_request(index, "br-local"),
        ])
        .unwrap();
        // The kernel's own view, through both doors, and only on that link.
        assert_eq!(proc_sys("net/ipv4/conf/br-local/route_localnet"), "1");
        assert_eq!(
            link::route_localnet(&mut sock, "br-local").unwrap(),
            Some(true)
        );
        assert_eq!(proc_sys("net/ipv4/conf/br-other/route_localnet"), "0");
        assert_eq!(proc_sys("net/ipv4/conf/default/route_localnet"), "0");
        assert_eq!(proc_sys("net/ipv4/conf/all/route_localnet"), "0");
        // Again is fine (a network made again after a reboot).
        sock.execute(link::enable_route_localnet_request(index, "br-local"))
            .unwrap();
        assert_eq!(
            link::route_localnet(&mut sock, "br-other").unwrap(),
            Some(false)
        );
        assert_eq!(link::route_localnet(&mut sock, "nothere").unwrap(), None);
    });
}

#[test]
fn a_sysctl_is_written_only_when_it_differs() {
    in_fresh_netns(|| {
        // Whatever a new namespace starts with, off first.
        let key = Key::parse("net.ipv4.ip_forward");
        sysctl::ensure(&key, "0").unwrap();
        assert_eq!(proc_sys("net/ipv4/ip_forward"), "0");
        assert_eq!(sysctl::enable_ip_forward().unwrap(), Outcome::Written);
        assert_eq!(proc_sys("net/ipv4/ip_forward"), "1");
        assert_eq!(sysctl::enable_ip_forward().unwrap(), Outcome::Kept);
        assert_eq!(sysctl::ensure(&key, "0").unwrap(), Outcome::Written);
        assert_eq!(proc_sys("net/ipv4/ip_forward"), "0");

        let mut sock = RtSocket::open().unwrap();
        bridge(&mut sock, "br-six");
        let name = IfName::new("br-six").unwrap();
        assert_eq!(sysctl::disable_ipv6(&name).unwrap(), Outcome::Written);
        assert_eq!(sysctl::disable_ipv6(&name).unwrap(), Outcome::Kept);
        assert_eq!(proc_sys("net/ipv6/conf/br-six/disable_ipv6"), "1");
        // A key that does not exist is an error, not a silent no.
        assert!(sysctl::ensure(&Key::parse("net.ipv4.no_such_thing"), "1").is_err());
    });
}
