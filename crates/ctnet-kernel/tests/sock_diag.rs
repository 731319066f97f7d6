//! Listing the sockets that receive traffic for a port, against the real kernel, in a
//! fresh network namespace entered by the test's own thread: a TCP listener and a bound
//! UDP socket of each family are listed with their address, port and inode, and the
//! process holding one is found; a connected TCP client and a connected UDP socket are not
//! listed.

mod common;

use std::net::{IpAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;

use common::in_fresh_netns;
use ctnet_kernel::sock_diag::{listeners, socket_holders, Transport};
use ctnet_kernel::{link, RtSocket, LOOPBACK_INDEX};

fn inode_of(fd: i32) -> u32 {
    let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
    let text = link.to_string_lossy();
    text.trim_start_matches("socket:[")
        .trim_end_matches(']')
        .parse()
        .unwrap()
}

#[test]
fn listeners_of_both_protocols_and_families_are_listed_with_their_holder() {
    in_fresh_netns(|| {
        let mut sock = RtSocket::open().unwrap();
        link::set_up(&mut sock, LOOPBACK_INDEX, "lo").unwrap();
        assert!(listeners(Transport::Tcp).unwrap().is_empty());
        assert!(listeners(Transport::Udp).unwrap().is_empty());

        let tcp4 = TcpListener::bind("127.0.0.1:8500").unwrap();
        let tcp6 = TcpListener::bind("[::]:8501").unwrap();
        let udp4 = UdpSocket::bind("0.0.0.0:5300").unwrap();
        // Connected sockets receive only from their peer: not listeners.
        let _client = TcpStream::connect("127.0.0.1:8500").unwrap();
        let connected = UdpSocket::bind("127.0.0.1:0").unwrap();
        connected.connect("127.0.0.1:5300").unwrap();

        let tcp = listeners(Transport::Tcp).unwrap();
        let mut seen: Vec<(IpAddr, u16)> = tcp.iter().map(|l| (l.address, l.port)).collect();
        seen.sort();
        assert_eq!(
            seen,
            [
                ("127.0.0.1".parse().unwrap(), 8500),
                ("::".parse().unwrap(), 8501)
            ]
        );
        let l4 = tcp.iter().find(|l| l.port == 8500).unwrap();
        assert_eq!(l4.inode, inode_of(tcp4.as_raw_fd()));
        assert!(!tcp.iter().find(|l| l.port == 8501).unwrap().v6only);
        assert_eq!(
            tcp.iter().find(|l| l.port == 8501).unwrap().inode,
            inode_of(tcp6.as_raw_fd())
        );

        let udp = listeners(Transport::Udp).unwrap();
        assert_eq!(udp.len(), 1, "{udp:?}");
        assert_eq!(
            (udp[0].address, udp[0].port),
            ("0.0.0.0".parse().unwrap(), 5300)
        );
        assert_eq!(udp[0].inode, inode_of(udp4.as_raw_fd()));

        let holders = socket_holders(l4.inode);
        assert_eq!(holders.len(), 1, "{holders:?}");
        assert_eq!(holders[0].0, std::process::id());
    });
}
