//! IPv6 (and IPv4) addresses, routes and the IPv6 sysctls against the real kernel, each
//! test in a fresh network namespace entered by its own thread; a second namespace, when
//! a test needs one, is made fresh too, so no traffic leaves the two.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::sync::mpsc;
use std::time::Duration;

use common::{fresh_netns, in_fresh_netns, name};
use ctnet_kernel::link::{self, BridgeSpec, VethSpec};
use ctnet_kernel::netlink::Request;
use ctnet_kernel::route::{self, MAIN_TABLE};
use ctnet_kernel::{addr, sysctl, Family, Netns, RtSocket};
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::route::RouteType;
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

/// A veth pair `va` (here) / `vb` (in `peer`), no IPv6 link-local tweaks: as a
/// dual-stack interface is made. Returns `va`'s index.
fn veth_to(sock: &mut RtSocket, peer: &Netns) -> u32 {
    link::create_veth(
        sock,
        &VethSpec {
            name: &name("va"),
            peer_name: &name("vb"),
            peer_netns: peer.as_fd(),
            master: None,
            mtu: None,
            peer_mac: None,
        },
    )
    .unwrap();
    link::index_of(sock, "va").unwrap().unwrap()
}

fn ip6(text: &str) -> Ipv6Addr {
    text.parse().unwrap()
}

fn proc_sys(key: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/{key}"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn a_v6_address_is_usable_at_once_and_carries_a_datagram_between_namespaces() {
    in_fresh_netns(|| {
        let peer = fresh_netns();
        // In two fresh namespaces both ends of the pair would get index 2, and the
        // kernel's link watcher takes carrier on a device whose index equals its peer
        // link's (`iflink`) as not urgent: it may wait up to a second before marking the
        // peer operational, and until then IPv6 on it has no multicast route and drops
        // the neighbour solicitation for its address (the datagram then waits for the
        // solicitation's retry, a second later). A bridge made first in the peer's
        // namespace gives its end index 3, as a container's interface has an index
        // other than its host side's.
        peer.run(|| {
            link::create_bridge(
                &mut RtSocket::open()?,
                &BridgeSpec {
                    name: &name("br-x"),
                    mtu: None,
                    multicast_snooping: true,
                    mac: None,
                },
            )
        })
        .unwrap();
        let (here, there) = (ip6("fd00:1::1"), ip6("fd00:1::2"));
        let mut sock = RtSocket::open().unwrap();
        let va = veth_to(&mut sock, &peer);
        sock.execute_all(vec![
            addr::add_request(va, here, 64, "va"),
            link::set_up_request(va, "va"),
        ])
        .unwrap();
        peer.run(|| {
            let mut sock = RtSocket::open()?;
            let vb = link::index_of(&mut sock, "vb")?.unwrap();
            sock.execute_all(vec![
                addr::add_request(vb, there, 64, "vb"),
                link::set_up_request(vb, "vb"),
            ])
        })
        .unwrap();

        let listed = addr::list_family(&mut sock, Family::V6).unwrap();
        let ours = listed
            .iter()
            .find(|a| a.address == IpAddr::V6(here))
            .unwrap_or_else(|| panic!("{here} not listed: {listed:?}"));
        assert_eq!((ours.index, ours.prefix_len), (va, 64));
        assert_eq!(ours.family(), Family::V6);
        assert!(ours.is_usable() && !ours.is_tentative(), "{ours:?}");
        assert!(ours.flags.contains(addr::AddressFlags::Nodad), "{ours:?}");
        // The IPv4 listing keeps to IPv4.
        assert!(addr::list(&mut sock).unwrap().is_empty());

        // Binding to a tentative address fails (EADDRNOTAVAIL), so a bind at once proves
        // the receiver's address usable too.
        let (ready_tx, ready_rx) = mpsc::channel();
        let receiver = std::thread::scope(|scope| {
            let receiver = scope.spawn(|| {
                peer.enter_current_thread().unwrap();
                let socket = UdpSocket::bind(SocketAddr::new(there.into(), 4789)).unwrap();
                socket
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                ready_tx.send(()).unwrap();
                let mut buf = [0u8; 64];
                let (len, from) = socket.recv_from(&mut buf).expect("the datagram");
                (buf[..len].to_vec(), from)
            });
            ready_rx.recv().unwrap();
            let sender = UdpSocket::bind(SocketAddr::new(here.into(), 0)).unwrap();
            // Sent again until it arrives: the first can be lost while the pair's carrier
            // comes up or neighbour discovery runs (on a loaded machine it was).
            for _ in 0..100 {
                sender
                    .send_to(b"dual stack", SocketAddr::new(there.into(), 4789))
                    .unwrap();
                if receiver.is_finished() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            receiver.join().unwrap()
        });
        assert_eq!(receiver.0, b"dual stack");
        assert_eq!(receiver.1.ip(), IpAddr::V6(here));
        // Duplicate address detection would have held either address (the binds above
        // would have failed); a lost neighbour solicitation holds the datagram for its
        // 1 s retry, past the receiver's read timeout. No wall-clock bound of the whole
        // sequence: under a loaded CI machine that measures the machine, not the kernel.
    });
}

#[test]
fn without_nodad_a_v6_address_is_listed_tentative() {
    // The contrast: what `add_request` avoids, and that the listing tells it.
    in_fresh_netns(|| {
        let peer = fresh_netns();
        let mut sock = RtSocket::open().unwrap();
        let va = veth_to(&mut sock, &peer);
        let address = ip6("fd00:3::1");
        let mut message = AddressMessage::default();
        message.header.family = AddressFamily::Inet6;
        message.header.prefix_len = 64;
        message.header.index = va;
        message
            .attributes
            .push(AddressAttribute::Local(address.into()));
        sock.execute_all(vec![
            Request::new(
                RouteNetlinkMessage::NewAddress(message),
                NLM_F_CREATE | NLM_F_EXCL,
                "add a tentative address",
            ),
            link::set_up_request(va, "va"),
        ])
        .unwrap();
        let listed = addr::list_all(&mut sock).unwrap();
        let ours = listed
            .iter()
            .find(|a| a.address == IpAddr::V6(address))
            .unwrap_or_else(|| panic!("{address} not listed: {listed:?}"));
        assert!(ours.is_tentative() && !ours.is_usable(), "{ours:?}");
        let err = UdpSocket::bind(SocketAddr::new(address.into(), 0)).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EADDRNOTAVAIL), "{err}");
    });
}

#[test]
fn default_routes_of_both_families_are_added_and_listed() {
    in_fresh_netns(|| {
        let here = Netns::current().unwrap();
        let mut sock = RtSocket::open().unwrap();
        let va = veth_to(&mut sock, &here);
        let vb = link::index_of(&mut sock, "vb").unwrap().unwrap();
        let (gw6, gw4) = (ip6("fd00:2::1"), Ipv4Addr::new(10, 9, 0, 1));
        // The gateway must be reachable through a device that is up.
        sock.execute_all(vec![
            addr::add_request(va, ip6("fd00:2::2"), 64, "va"),
            addr::add_request(va, Ipv4Addr::new(10, 9, 0, 2), 24, "va"),
            link::set_up_request(vb, "vb"),
            link::set_up_request(va, "va"),
            route::add_default_request(gw6),
            route::add_default_request(gw4),
        ])
        .unwrap();

        let v6 = route::list_family(&mut sock, Family::V6).unwrap();
        let default = v6
            .iter()
            .find(|r| r.is_main_default())
            .unwrap_or_else(|| panic!("no v6 default route: {v6:?}"));
        assert_eq!(default.family, Family::V6);
        assert_eq!(default.destination, IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        assert_eq!(default.gateway, Some(IpAddr::V6(gw6)));
        assert_eq!(default.oif, Some(va));
        assert_eq!(default.table, u32::from(MAIN_TABLE));
        assert_eq!(default.kind, RouteType::Unicast);
        assert!(v6.iter().all(|r| r.family == Family::V6));
        // The on-link prefix, with its destination.
        assert!(v6
            .iter()
            .any(|r| r.destination == IpAddr::V6(ip6("fd00:2::"))
                && r.prefix_len == 64
                && r.gateway.is_none()
                && r.oif == Some(va)));

        // The IPv4 listing keeps its old shape and sees only IPv4.
        let v4 = route::list(&mut sock).unwrap();
        assert!(v4
            .iter()
            .any(|r| r.prefix_len == 0 && r.gateway == Some(gw4) && r.oif == Some(va)));
        let all = route::list_all(&mut sock).unwrap();
        assert!(all.iter().any(|r| r.gateway == Some(IpAddr::V4(gw4))));
        assert!(all.iter().any(|r| r.gateway == Some(IpAddr::V6(gw6))));
        // IPv6 routes come and go on their own (a link-local route once the address is
        // ready), so the families are compared within the one dump, not across three.
        let all_v4 = all.iter().filter(|r| r.family == Family::V4).count();
        assert_eq!(all_v4, v4.len(), "list_all has every IPv4 route");
    });
}

/// Default routes with metrics, and beside each other as netavark adds them: IPv4 keeps
/// both of one metric (the newer first), IPv6 merges them into one multipath route whose
/// gateways the listing reports; an exclusive one of a taken metric is refused.
#[test]
fn default_routes_with_metrics_and_beside_each_other() {
    in_fresh_netns(|| {
        let here = Netns::current().unwrap();
        let mut sock = RtSocket::open().unwrap();
        let va = veth_to(&mut sock, &here);
        let vb = link::index_of(&mut sock, "vb").unwrap().unwrap();
        let v4 = |text: &str| -> IpAddr { text.parse().unwrap() };
        let beside = |gateway, metric| route::DefaultRoute {
            gateway,
            metric,
            beside_others: true,
        };
        sock.execute_all(vec![
            addr::add_request(va, ip6("fd00:5::2"), 64, "va"),
            addr::add_request(va, Ipv4Addr::new(10, 5, 0, 2), 24, "va"),
            addr::add_request(vb, ip6("fd00:6::2"), 64, "vb"),
            addr::add_request(vb, Ipv4Addr::new(10, 6, 0, 2), 24, "vb"),
            link::set_up_request(vb, "vb"),
            link::set_up_request(va, "va"),
        ])
        .unwrap();
        let first = route::add_default_route_request(&beside(v4("10.5.0.1"), Some(100)));
        assert_eq!(first.op, "add default route via 10.5.0.1 metric 100");
        sock.execute_all(vec![
            first,
            route::add_default_route_request(&beside(v4("10.6.0.1"), Some(100))),
            route::add_default_route_request(&beside(v4("fd00:5::1"), Some(100))),
            route::add_default_route_request(&beside(v4("fd00:6::1"), Some(100))),
            route::add_default_route_request(&beside(v4("10.5.0.9"), Some(50))),
        ])
        .unwrap();
        let all = route::list_all(&mut sock).unwrap();
        let defaults: Vec<_> = all.iter().filter(|r| r.is_main_default()).collect();
        let v4_defaults: Vec<(Option<IpAddr>, u32)> = defaults
            .iter()
            .filter(|r| r.family == Family::V4)
            .map(|r| (r.gateway, r.metric()))
            .collect();
        assert_eq!(
            v4_defaults,
            [
                (Some(v4("10.5.0.9")), 50),
                (Some(v4("10.6.0.1")), 100),
                (Some(v4("10.5.0.1")), 100)
            ]
        );
        let v6: Vec<_> = defaults.iter().filter(|r| r.family == Family::V6).collect();
        assert_eq!(v6.len(), 1, "{v6:?}");
        assert_eq!(v6[0].metric(), 100);
        assert!(v6[0].goes_via(v4("fd00:5::1")) && v6[0].goes_via(v4("fd00:6::1")));
        assert_eq!(v6[0].next_hops.len(), 2, "{v6:?}");
        assert!(!v6[0].goes_via(v4("fd00:5::7")));
        // Exclusive, where the metric is taken: refused.
        let taken = route::DefaultRoute {
            gateway: v4("10.6.0.9"),
            metric: Some(50),
            beside_others: false,
        };
        let err = sock
            .execute(route::add_default_route_request(&taken))
            .unwrap_err();
        assert!(err.is_exists(), "{err}");
        // Without a metric: the kernel's own (IPv4 0, IPv6 1024).
        sock.execute(route::add_default_request(ip6("fd00:6::1")))
            .unwrap();
        let v6_plain = route::list_family(&mut sock, Family::V6).unwrap();
        assert!(v6_plain
            .iter()
            .any(|r| r.is_main_default() && r.metric() == route::IPV6_DEFAULT_METRIC));
    });
}

#[test]
fn v6_forwarding_first_keeps_router_advertisements_where_they_were_taken() {
    in_fresh_netns(|| {
        let mut sock = RtSocket::open().unwrap();
        for bridge in ["br-one", "br-zero", "ctnet-own"] {
            link::create_bridge(
                &mut sock,
                &BridgeSpec {
                    name: &name(bridge),
                    mtu: None,
                    multicast_snooping: true,
                    mac: None,
                },
            )
            .unwrap();
        }
        sysctl::write("net/ipv6/conf/br-zero/accept_ra", "0").unwrap();
        assert_eq!(proc_sys("net/ipv6/conf/br-one/accept_ra"), "1");
        assert_eq!(proc_sys("net/ipv6/conf/all/forwarding"), "0");
        assert!(!sysctl::ipv6_forward_enabled().unwrap());

        let raised = sysctl::enable_ipv6_forward(|n| n.starts_with("ctnet")).unwrap();
        assert_eq!(raised, ["br-one"]);
        assert_eq!(proc_sys("net/ipv6/conf/br-one/accept_ra"), "2");
        assert_eq!(proc_sys("net/ipv6/conf/br-zero/accept_ra"), "0");
        assert_eq!(proc_sys("net/ipv6/conf/ctnet-own/accept_ra"), "1");
        assert_eq!(proc_sys("net/ipv6/conf/default/accept_ra"), "1");
        assert_eq!(proc_sys("net/ipv6/conf/lo/accept_ra"), "1");
        assert_eq!(proc_sys("net/ipv6/conf/all/forwarding"), "1");
        assert_eq!(proc_sys("net/ipv6/conf/br-one/forwarding"), "1");
        assert!(sysctl::ipv6_forward_enabled().unwrap());

        // Already on: nothing more is touched.
        sysctl::write("net/ipv6/conf/br-zero/accept_ra", "1").unwrap();
        assert!(sysctl::enable_ipv6_forward(|_| false).unwrap().is_empty());
        assert_eq!(proc_sys("net/ipv6/conf/br-zero/accept_ra"), "1");
    });
}

#[test]
fn ipv6_on_an_interface_off_on_and_without_autoconf() {
    in_fresh_netns(|| {
        let mut sock = RtSocket::open().unwrap();
        let bridge = name("br-six");
        link::create_bridge(
            &mut sock,
            &BridgeSpec {
                name: &bridge,
                mtu: None,
                multicast_snooping: true,
                mac: None,
            },
        )
        .unwrap();
        sysctl::disable_ipv6(&bridge).unwrap();
        assert_eq!(proc_sys("net/ipv6/conf/br-six/disable_ipv6"), "1");
        // The kernel refuses an IPv6 address while IPv6 is off on the link ...
        let index = link::index_of(&mut sock, "br-six").unwrap().unwrap();
        assert!(addr::add(&mut sock, index, ip6("fd00:4::1"), 64, "br-six").is_err());
        // ... and takes it once it is on again.
        sysctl::enable_ipv6(&bridge).unwrap();
        assert_eq!(proc_sys("net/ipv6/conf/br-six/disable_ipv6"), "0");
        addr::add(&mut sock, index, ip6("fd00:4::1"), 64, "br-six").unwrap();

        sysctl::disable_ipv6_autoconf(&bridge).unwrap();
        assert_eq!(proc_sys("net/ipv6/conf/br-six/accept_ra"), "0");
        assert_eq!(proc_sys("net/ipv6/conf/br-six/autoconf"), "0");

        assert!(addr::delete(&mut sock, index, ip6("fd00:4::1"), 64, "br-six").unwrap());
        assert!(!addr::delete(&mut sock, index, ip6("fd00:4::1"), 64, "br-six").unwrap());
    });
}

/// The error a UDP connect to `to` gets from the route lookup, if any.
fn connect_error(to: Ipv4Addr) -> Option<i32> {
    let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
    socket
        .connect(SocketAddr::new(to.into(), 9))
        .err()
        .and_then(|e| e.raw_os_error())
}

#[test]
fn an_unreachable_route_refuses_its_subnet_at_once_and_goes_when_deleted() {
    in_fresh_netns(|| {
        let mut sock = RtSocket::open().unwrap();
        let cluster = Ipv4Addr::new(10, 50, 0, 0);
        let inside = Ipv4Addr::new(10, 50, 3, 4);
        // With no route at all the lookup says the network is unreachable.
        assert_eq!(connect_error(inside), Some(libc::ENETUNREACH));

        sock.execute(route::add_unreachable_route_request(cluster, 16))
            .unwrap();
        // Replacing is idempotent: the agent puts it back on every sync.
        sock.execute(route::add_unreachable_route_request(cluster, 16))
            .unwrap();
        let ours: Vec<_> = route::list_family(&mut sock, Family::V4)
            .unwrap()
            .into_iter()
            .filter(|r| r.destination == IpAddr::V4(cluster))
            .collect();
        assert_eq!(ours.len(), 1, "{ours:?}");
        assert_eq!(
            (ours[0].prefix_len, ours[0].kind, ours[0].oif, ours[0].table),
            (16, RouteType::Unreachable, None, u32::from(MAIN_TABLE))
        );
        assert_eq!(connect_error(inside), Some(libc::EHOSTUNREACH));
        // Outside the subnet nothing changed.
        assert_eq!(
            connect_error(Ipv4Addr::new(10, 51, 0, 1)),
            Some(libc::ENETUNREACH)
        );

        sock.execute(route::delete_unreachable_route_request(cluster, 16))
            .unwrap();
        assert_eq!(connect_error(inside), Some(libc::ENETUNREACH));
        let again = sock
            .execute(route::delete_unreachable_route_request(cluster, 16))
            .unwrap_err();
        assert!(again.is_not_found(), "{again}");
    });
}
