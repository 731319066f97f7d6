//! Observation against the real kernel: link details, neighbours and the bridge's
//! forwarding database, after real datagrams have crossed a bridge and a veth pair.
//!
//! ```text
//!   test namespace (fresh)                         container namespace (fresh)
//!   br0 10.88.0.1/24 ◄── master ── vh ═══ veth ═══ eth0 10.88.0.2/24  (UDP echo)
//! ```
//!
//! The container end lives in a second namespace so the datagrams go over the pair:
//! with both addresses in one namespace the kernel would deliver them locally.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::time::Duration;

use common::{fresh_netns, in_fresh_netns, name};
use ctnet_kernel::link::{self, BridgeSpec, VethSpec};
use ctnet_kernel::link_detail::{self, LinkDetail, PortState};
use ctnet_kernel::neigh::{self, NeighState};
use ctnet_kernel::{addr, Netns, RtSocket, LOOPBACK_INDEX};

const HERE: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 1);
const THERE: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 2);
const PORT: u16 = 4790;

/// The container's end: its index and MAC inside `container`, and a UDP socket bound
/// there (a socket stays in the namespace it was made in, whichever thread uses it).
struct Container {
    index: u32,
    mac: [u8; 6],
    socket: UdpSocket,
}

/// Builds the drawing: `br0` (up, addressed) here, `vh` on it, `eth0` in `container`.
/// Returns the indexes of `br0` and `vh`.
fn build(sock: &mut RtSocket, container: &Netns) -> (u32, u32) {
    // The bridge first, so `vh` gets index 3 while `eth0` gets 2: the kernel leaves out
    // IFLA_LINK when a link's peer index equals its own.
    link::create_bridge(
        sock,
        &BridgeSpec {
            name: &name("br0"),
            mtu: None,
            multicast_snooping: true,
            mac: None,
        },
    )
    .unwrap();
    let br0 = link::index_of(sock, "br0").unwrap().unwrap();
    addr::add(sock, br0, HERE, 24, "br0").unwrap();
    link::create_veth(
        sock,
        &VethSpec {
            name: &name("vh"),
            peer_name: &name("eth0"),
            peer_netns: container.as_fd(),
            master: Some(br0),
            mtu: None,
            peer_mac: None,
        },
    )
    .unwrap();
    let vh = link::index_of(sock, "vh").unwrap().unwrap();
    link::set_up(sock, vh, "vh").unwrap();
    (br0, vh)
}

/// Inside `container`: loopback and `eth0` up, `eth0` holding THERE, an echo socket.
fn start_container(container: &Netns) -> Container {
    container
        .run(|| {
            let mut sock = RtSocket::open()?;
            let eth0 = link::get(&mut sock, "eth0")?.expect("eth0 is there");
            sock.execute_all(vec![
                link::set_up_request(LOOPBACK_INDEX, "lo"),
                addr::add_request(eth0.index, THERE, 24, "eth0"),
                link::set_up_request(eth0.index, "eth0"),
            ])?;
            let socket = UdpSocket::bind(SocketAddr::new(THERE.into(), PORT)).unwrap();
            socket
                .set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            Ok(Container {
                index: eth0.index,
                mac: eth0.mac.expect("a veth has a MAC"),
                socket,
            })
        })
        .unwrap()
}

/// One datagram there and its echo back; false when either was lost.
fn round_trip(client: &UdpSocket, container: &Container) -> bool {
    let to = SocketAddr::new(THERE.into(), PORT);
    client.send_to(b"ping", to).unwrap();
    let mut buf = [0u8; 16];
    let Ok((_, from)) = container.socket.recv_from(&mut buf) else {
        return false;
    };
    assert_eq!(from.ip(), IpAddr::V4(HERE));
    container.socket.send_to(b"pong", from).unwrap();
    matches!(client.recv_from(&mut buf), Ok((4, _)))
}

fn find<'a>(details: &'a [LinkDetail], name: &str) -> &'a LinkDetail {
    details
        .iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("{name} not among {details:?}"))
}

#[test]
fn traffic_over_a_bridge_port_shows_in_details_neighbours_and_fdb() {
    in_fresh_netns(|| {
        let container_ns = fresh_netns();
        let mut sock = RtSocket::open().unwrap();
        let (br0, vh) = build(&mut sock, &container_ns);
        let container = start_container(&container_ns);
        let client = UdpSocket::bind(SocketAddr::new(HERE.into(), 0)).unwrap();
        client
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        // Retried until one gets through: the first can be lost while the pair's
        // carrier comes up and ARP resolves.
        assert!(
            (0..100).any(|_| round_trip(&client, &container)),
            "no datagram made it across the bridge"
        );

        let before = link_detail::details(&mut sock).unwrap();
        let burst = 20;
        for _ in 0..burst {
            assert!(round_trip(&client, &container), "a datagram was lost");
        }
        let after = link_detail::details(&mut sock).unwrap();

        let port = find(&after, "vh");
        assert_eq!(port.index, vh);
        assert_eq!(port.kind.as_deref(), Some("veth"));
        assert_eq!(port.master, Some(br0));
        assert_eq!(port.peer_index, Some(container.index), "{port:?}");
        assert!(port.peer_netnsid.is_some(), "{port:?}");
        assert!(port.up && port.carrier == Some(true), "{port:?}");
        assert_eq!(port.operstate, "up");
        let bridge_port = port.bridge_port.expect("vh is a bridge port");
        assert_eq!(bridge_port.state, PortState::Forwarding);
        assert!(bridge_port.learning && bridge_port.flood, "{bridge_port:?}");
        let (old, new) = (
            find(&before, "vh").stats.expect("counters"),
            port.stats.expect("counters"),
        );
        assert!(
            new.tx_packets >= old.tx_packets + burst,
            "{old:?} → {new:?}"
        );
        assert!(
            new.rx_packets >= old.rx_packets + burst,
            "{old:?} → {new:?}"
        );
        assert!(new.tx_bytes > old.tx_bytes && new.rx_bytes > old.rx_bytes);
        let bridge = find(&after, "br0");
        assert_eq!(bridge.kind.as_deref(), Some("bridge"));
        assert_eq!((bridge.bridge_port, bridge.master), (None, None));

        // One link by name reads as the dump does, and a missing one is None.
        let single = link_detail::detail(&mut sock, "vh").unwrap().unwrap();
        assert_eq!(
            (single.index, single.master, single.peer_index),
            (vh, Some(br0), Some(container.index))
        );
        assert_eq!(
            single.bridge_port.map(|p| p.state),
            Some(PortState::Forwarding)
        );
        assert_eq!(link_detail::detail(&mut sock, "absent0").unwrap(), None);

        let neighbours = neigh::neighbours(&mut sock).unwrap();
        let peer = neighbours
            .iter()
            .find(|n| n.ip == IpAddr::V4(THERE))
            .unwrap_or_else(|| panic!("{THERE} not among {neighbours:?}"));
        assert_eq!((peer.ifindex, peer.mac), (br0, Some(container.mac)));
        assert!(
            matches!(
                peer.state,
                NeighState::Reachable | NeighState::Stale | NeighState::Delay
            ),
            "{peer:?}"
        );

        let fdb = neigh::fdb(&mut sock).unwrap();
        let own_mac = port.mac.expect("a veth has a MAC");
        let own = fdb
            .iter()
            .find(|e| e.ifindex == vh && e.mac == own_mac && e.master == Some(br0))
            .unwrap_or_else(|| panic!("vh's own address not among {fdb:?}"));
        assert!(own.permanent && !own.is_self, "{own:?}");
        let learnt = fdb
            .iter()
            .find(|e| e.ifindex == vh && e.mac == container.mac)
            .unwrap_or_else(|| panic!("the container's address not among {fdb:?}"));
        assert_eq!(learnt.master, Some(br0));
        assert!(!learnt.permanent && !learnt.extern_learn, "{learnt:?}");
        assert_eq!(learnt.remote, None);
    });
}
