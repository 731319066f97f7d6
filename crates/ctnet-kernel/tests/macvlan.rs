//! Macvlan interfaces against the real kernel: made in one request straight inside a
//! container's namespace over a parent of this one, under their final name, with their
//! mode; proven by datagrams. Everything happens in fresh namespaces: a "host" (the
//! test thread's own), a "LAN host" at the far end of a veth `lan0` that is the parent,
//! and the containers.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::sync::mpsc;
use std::time::Duration;

use common::{fresh_netns, in_fresh_netns, name};
use ctnet_kernel::link::{self, MacvlanMode, MacvlanSpec, VethSpec};
use ctnet_kernel::{addr, Netns, RtSocket, LOOPBACK_INDEX};

fn ip(text: &str) -> Ipv4Addr {
    text.parse().unwrap()
}

/// The "LAN": `lan0` here (up, no address), its peer `lanpeer` in a namespace of its
/// own holding 10.77.0.2/24. Returns that namespace and `lan0`'s index.
fn lan(sock: &mut RtSocket) -> (Netns, u32) {
    let lanhost = fresh_netns();
    link::create_veth(
        sock,
        &VethSpec {
            name: &name("lan0"),
            peer_name: &name("lanpeer"),
            peer_netns: lanhost.as_fd(),
            master: None,
            mtu: None,
            peer_mac: None,
        },
    )
    .unwrap();
    let lan0 = link::index_of(sock, "lan0").unwrap().unwrap();
    link::set_up(sock, lan0, "lan0").unwrap();
    configure(&lanhost, "lanpeer", "10.77.0.2");
    (lanhost, lan0)
}

/// Inside `ns`: `ifname` gets `address`/24 and comes up, with loopback.
fn configure(ns: &Netns, ifname: &str, address: &str) {
    let address = ip(address);
    ns.run(|| {
        let mut sock = RtSocket::open()?;
        let index = link::index_of(&mut sock, ifname)?.expect("the interface is there");
        sock.execute_all(vec![
            link::set_up_request(LOOPBACK_INDEX, "lo"),
            addr::add_request(index, address, 24, ifname),
            link::set_up_request(index, ifname),
        ])
    })
    .unwrap();
}

/// A container: a fresh namespace with a macvlan `eth0` over `parent` (made from here)
/// holding `address`.
fn container(sock: &mut RtSocket, parent: u32, mode: MacvlanMode, address: &str) -> Netns {
    let ns = fresh_netns();
    link::create_macvlan(
        sock,
        &MacvlanSpec {
            name: &name("eth0"),
            parent,
            mode,
            netns: ns.as_fd(),
            mtu: Some(1400),
            mac: Some([0x02, 0x42, 10, 77, 0, ip(address).octets()[3]]),
        },
    )
    .unwrap();
    configure(&ns, "eth0", address);
    ns
}

/// Sends one datagram from `from` (address `src`) to `to` (address `dst`); returns the
/// source address the receiver saw, or None when nothing arrived within a second.
fn datagram(from: &Netns, src: &str, to: &Netns, dst: &str) -> Option<IpAddr> {
    let (src, dst) = (ip(src), ip(dst));
    let (ready_tx, ready_rx) = mpsc::channel();
    std::thread::scope(|scope| {
        let receiver = scope.spawn(|| {
            to.enter_current_thread().unwrap();
            let socket = UdpSocket::bind(SocketAddr::new(dst.into(), 4790)).unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(1)))
                .unwrap();
            ready_tx.send(()).unwrap();
            let mut buf = [0u8; 16];
            socket.recv_from(&mut buf).ok().map(|(_, peer)| peer.ip())
        });
        ready_rx.recv().unwrap();
        scope
            .spawn(|| {
                from.enter_current_thread().unwrap();
                let socket = UdpSocket::bind(SocketAddr::new(src.into(), 0)).unwrap();
                socket
                    .send_to(b"macvlan", SocketAddr::new(dst.into(), 4790))
                    .unwrap();
            })
            .join()
            .unwrap();
        receiver.join().unwrap()
    })
}

fn eth0_of(ns: &Netns) -> link::Link {
    ns.run(|| link::get(&mut RtSocket::open()?, "eth0"))
        .unwrap()
        .expect("eth0 inside the container")
}

#[test]
fn a_bridge_mode_macvlan_is_made_inside_the_container_and_reaches_the_lan_and_its_sibling() {
    in_fresh_netns(|| {
        let mut sock = RtSocket::open().unwrap();
        let (lanhost, lan0) = lan(&mut sock);
        let c1 = container(&mut sock, lan0, MacvlanMode::Bridge, "10.77.0.10");
        let c2 = container(&mut sock, lan0, MacvlanMode::Bridge, "10.77.0.111");

        // Made where it belongs, under its final name, with what was asked; never here.
        let eth0 = eth0_of(&c1);
        assert_eq!(eth0.kind.as_deref(), Some("macvlan"), "{eth0:?}");
        assert_eq!(eth0.macvlan_mode, Some(MacvlanMode::Bridge), "{eth0:?}");
        assert_eq!(eth0.mtu, 1400);
        assert_eq!(eth0.mac, Some([0x02, 0x42, 10, 77, 0, 10]));
        let here = link::list(&mut sock).unwrap();
        assert!(
            here.iter().all(|l| l.kind.as_deref() != Some("macvlan")),
            "no macvlan in the host namespace: {here:?}"
        );

        let lan_host = IpAddr::V4(ip("10.77.0.2"));
        assert_eq!(
            datagram(&c1, "10.77.0.10", &lanhost, "10.77.0.2"),
            Some(IpAddr::V4(ip("10.77.0.10"))),
            "the LAN host sees the container's own address"
        );
        assert_eq!(
            datagram(&lanhost, "10.77.0.2", &c2, "10.77.0.111"),
            Some(lan_host)
        );
        assert_eq!(
            datagram(&c1, "10.77.0.10", &c2, "10.77.0.111"),
            Some(IpAddr::V4(ip("10.77.0.10"))),
            "bridge mode: siblings on one parent reach each other"
        );
    });
}

#[test]
fn private_mode_macvlans_reach_the_lan_but_not_each_other() {
    in_fresh_netns(|| {
        let mut sock = RtSocket::open().unwrap();
        let (lanhost, lan0) = lan(&mut sock);
        let c1 = container(&mut sock, lan0, MacvlanMode::Private, "10.77.0.10");
        let c2 = container(&mut sock, lan0, MacvlanMode::Private, "10.77.0.111");
        assert_eq!(eth0_of(&c2).macvlan_mode, Some(MacvlanMode::Private));
        assert_eq!(
            datagram(&c1, "10.77.0.10", &lanhost, "10.77.0.2"),
            Some(IpAddr::V4(ip("10.77.0.10")))
        );
        assert_eq!(
            datagram(&c2, "10.77.0.111", &lanhost, "10.77.0.2"),
            Some(IpAddr::V4(ip("10.77.0.111")))
        );
        assert_eq!(
            datagram(&c1, "10.77.0.10", &c2, "10.77.0.111"),
            None,
            "private mode: nothing between siblings"
        );
    });
}

#[test]
fn a_macvlan_over_a_missing_parent_or_above_its_mtu_is_refused_and_nothing_is_made() {
    in_fresh_netns(|| {
        let mut sock = RtSocket::open().unwrap();
        let (_lanhost, lan0) = lan(&mut sock);
        let ns = fresh_netns();
        let eth0 = name("eth0");
        let spec = |parent, mtu| MacvlanSpec {
            name: &eth0,
            parent,
            mode: MacvlanMode::Bridge,
            netns: ns.as_fd(),
            mtu,
            mac: None,
        };
        assert!(link::create_macvlan(&mut sock, &spec(lan0 + 100, None)).is_err());
        assert!(link::create_macvlan(&mut sock, &spec(lan0, Some(9000))).is_err());
        let inside = ns.run(|| link::list(&mut RtSocket::open()?)).unwrap();
        assert_eq!(inside.len(), 1, "only lo: {inside:?}");
    });
}
