//! A VXLAN overlay against the real kernel, as Flannel's vxlan backend builds one: two
//! "hosts", fresh namespaces A and B joined by a veth underlay `ul0` (192.0.2.1/24 and
//! 192.0.2.2/24), each with a VXLAN device `vx` (VNI 42, nolearning, a fixed MAC) made by
//! this crate and holding 10.50.1.0/32 and 10.50.2.0/32, and on each, for the other, the
//! three entries an overlay writes: a route to the peer's /24 via its address onlink, a
//! permanent neighbour entry for that address, and a forwarding entry to the peer's
//! underlay address. Proven by pings between the overlay addresses, tcpdump seeing them
//! as VXLAN datagrams on the underlay, and each entry's deletion stopping them. Nothing
//! leaves the two namespaces.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{fresh_netns, in_fresh_netns, name};
use ctnet_kernel::link::{self, VethSpec};
use ctnet_kernel::netlink::Request;
use ctnet_kernel::route;
use ctnet_kernel::vxlan::{self, Vni, VxlanField, VxlanInfo, VxlanSpec, VXLAN_PORT};
use ctnet_kernel::{addr, neigh, Error, Family, IfName, Netns, RtSocket, LOOPBACK_INDEX};

/// One host of the overlay.
struct Host {
    ns: Netns,
    /// Its address on the underlay, the VXLAN device's local address.
    underlay: Ipv4Addr,
    /// Its address on the overlay, and the network address of its /24 there.
    overlay: Ipv4Addr,
    /// Its VXLAN device's MAC.
    mac: [u8; 6],
    /// The underlay veth's index.
    ul0: u32,
    /// The VXLAN device's index, once made.
    vx: u32,
}

impl Host {
    fn spec<'a>(&self, vx: &'a IfName) -> VxlanSpec<'a> {
        VxlanSpec {
            name: vx,
            vni: Vni::new(42).unwrap(),
            local: self.underlay,
            underlay_index: Some(self.ul0),
            port: VXLAN_PORT,
            mac: self.mac,
            mtu: 1450,
        }
    }

    fn sock<T: Send>(&self, f: impl FnOnce(&mut RtSocket) -> ctnet_kernel::Result<T> + Send) -> T {
        self.ns
            .run(|| f(&mut RtSocket::open()?))
            .unwrap_or_else(|e| panic!("in host {}: {e}", self.underlay))
    }

    fn info(&self) -> VxlanInfo {
        self.sock(|s| vxlan::vxlan_info(s, &name("vx")))
            .expect("the VXLAN device is there")
    }
}

/// The route, neighbour entry and forwarding entry by which `here` reaches `peer`.
fn entries_for(here: &Host, peer: &Host) -> Vec<Request> {
    vec![
        route::add_onlink_route_request(peer.overlay, 24, peer.overlay, here.vx),
        neigh::add_neighbour_request(here.vx, peer.overlay, peer.mac),
        neigh::add_fdb_request(here.vx, peer.mac, peer.underlay),
    ]
}

/// The deletions of [`entries_for`]'s entries, in its order.
fn deletions_for(here: &Host, peer: &Host) -> Vec<Request> {
    vec![
        route::delete_route_request(peer.overlay, 24, here.vx),
        neigh::delete_neighbour_request(here.vx, peer.overlay),
        neigh::delete_fdb_request(here.vx, peer.mac, peer.underlay),
    ]
}

/// The two hosts, each with loopback and its underlay up and its VXLAN device made by
/// [`vxlan::create_vxlan`], addressed and up; no peer entries yet.
fn hosts() -> (Host, Host) {
    let host = |last: u8| Host {
        ns: fresh_netns(),
        underlay: Ipv4Addr::new(192, 0, 2, last),
        overlay: Ipv4Addr::new(10, 50, last, 0),
        mac: [0x0e, 0, 0, 0, 0, last],
        ul0: 0,
        vx: 0,
    };
    let (mut a, mut b) = (host(1), host(2));
    a.sock(|s| {
        link::create_veth(
            s,
            &VethSpec {
                name: &name("ul0"),
                peer_name: &name("ul0"),
                peer_netns: b.ns.as_fd(),
                master: None,
                mtu: None,
                peer_mac: None,
            },
        )
    });
    for h in [&mut a, &mut b] {
        let (underlay, overlay) = (h.underlay, h.overlay);
        h.ul0 = h.sock(|s| {
            let ul0 = link::index_of(s, "ul0")?.expect("the underlay veth");
            s.execute_all(vec![
                link::set_up_request(LOOPBACK_INDEX, "lo"),
                addr::add_request(ul0, underlay, 24, "ul0"),
                link::set_up_request(ul0, "ul0"),
            ])?;
            Ok(ul0)
        });
        let vx = name("vx");
        let spec = h.spec(&vx);
        h.vx = h.sock(|s| {
            vxlan::create_vxlan(s, &spec)?;
            let index = link::index_of(s, "vx")?.expect("the VXLAN device");
            // As the module says: per-family settings and the address while it is down.
            s.execute_all(vec![
                link::no_ipv6_link_local_request(&vx),
                addr::add_request(index, overlay, 32, "vx"),
                link::set_up_request(index, "vx"),
            ])?;
            Ok(index)
        });
    }
    (a, b)
}

/// One ping from `from`'s overlay address to `to`'s (two echo requests, a second's wait
/// for the last): true when an answer came.
fn ping(from: &Host, to: &Host) -> bool {
    let (src, dst) = (from.overlay.to_string(), to.overlay.to_string());
    from.ns
        .run(|| {
            // A child forked by a thread inside the namespace starts in it.
            Command::new("ping")
                .args([
                    "-n", "-q", "-c", "2", "-i", "0.2", "-W", "1", "-I", &src, &dst,
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map_err(|e| Error::io("run ping (is iputils-ping installed?)", e))
        })
        .unwrap()
        .success()
}

/// Pings until one is answered, at most `tries` times (the underlay's carrier can take
/// a second to come up in fresh namespaces).
fn ping_until_answered(from: &Host, to: &Host, tries: usize) -> bool {
    (0..tries).any(|_| ping(from, to))
}

/// tcpdump on `host`'s underlay, capturing the first datagram that matches `filter`;
/// returns once it listens.
fn capture(host: &Host, filter: &str) -> Child {
    let mut child = host
        .ns
        .run(|| {
            Command::new("timeout")
                .args(["10", "tcpdump", "-i", "ul0", "-n", "-l", "-c", "1", filter])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| Error::io("run tcpdump (is it installed?)", e))
        })
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
            if line.contains("listening on") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("tcpdump listening on ul0 within 10 s");
    child
}

/// What a capture printed, once it ended (by its packet, or its timeout).
fn captured(child: Child) -> String {
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn two_hosts_reach_each_other_over_vxlan_and_each_entry_is_needed() {
    in_fresh_netns(|| {
        let (a, b) = hosts();
        assert!(!ping(&a, &b), "no peer entries yet, and yet an answer");
        for (here, peer) in [(&a, &b), (&b, &a)] {
            let requests = entries_for(here, peer);
            here.sock(|s| s.execute_all(requests));
        }

        // The echo request crosses the underlay as a VXLAN datagram to port 4789, VNI 42.
        let tcpdump = capture(
            &b,
            "udp dst port 4789 and src host 192.0.2.1 and dst host 192.0.2.2",
        );
        assert!(
            ping_until_answered(&a, &b, 10),
            "10.50.1.0 never reached 10.50.2.0 over the overlay"
        );
        let seen = captured(tcpdump);
        assert!(
            seen.contains("192.0.2.2.4789: VXLAN") && seen.contains("vni 42"),
            "no VXLAN datagram on B's underlay: {seen:?}"
        );
        assert!(
            seen.contains("10.50.1.0 > 10.50.2.0: ICMP echo request"),
            "not the overlay's ping inside: {seen:?}"
        );
        assert!(ping(&b, &a), "B's own entries carry its pings to A");

        // Idempotent: the same entries again change nothing and are no error.
        a.sock(|s| s.execute_all(entries_for(&a, &b)));
        assert!(ping(&a, &b));

        // Each entry is needed: without it no answer, with it back answers again.
        let labels = ["route", "neighbour entry", "forwarding entry"];
        for (i, label) in labels.iter().enumerate() {
            let deletion = deletions_for(&a, &b).swap_remove(i);
            a.sock(|s| s.execute(deletion));
            assert!(!ping(&a, &b), "answered without A's {label} for B");
            let entry = entries_for(&a, &b).swap_remove(i);
            a.sock(|s| s.execute(entry));
            assert!(
                ping_until_answered(&a, &b, 3),
                "not answered with A's {label} for B back"
            );
        }

        // A forwarding entry replaced points at the new remote only.
        let elsewhere = Ipv4Addr::new(192, 0, 2, 99);
        a.sock(|s| s.execute(neigh::add_fdb_request(a.vx, b.mac, elsewhere)));
        let remotes: Vec<_> = a
            .sock(neigh::fdb)
            .into_iter()
            .filter(|e| e.ifindex == a.vx && e.mac == b.mac)
            .map(|e| e.remote)
            .collect();
        assert_eq!(remotes, [Some(IpAddr::V4(elsewhere))]);
        assert!(!ping(&a, &b), "answered with B's MAC sent to 192.0.2.99");
        a.sock(|s| s.execute(neigh::add_fdb_request(a.vx, b.mac, b.underlay)));
        assert!(ping_until_answered(&a, &b, 3));

        // All three gone: no answer, none of them listed, and deleting again is "not found".
        a.sock(|s| s.execute_all(deletions_for(&a, &b)));
        assert!(!ping(&a, &b), "answered with A's entries for B deleted");
        let (routes, neighbours, fdb) = a.sock(|s| {
            Ok((
                route::list_family(s, Family::V4)?,
                neigh::neighbours(s)?,
                neigh::fdb(s)?,
            ))
        });
        assert!(
            routes
                .iter()
                .all(|r| r.destination != IpAddr::V4(b.overlay) || r.prefix_len != 24),
            "{routes:?}"
        );
        assert!(
            neighbours
                .iter()
                .all(|n| n.ip != IpAddr::V4(b.overlay) || n.mac != Some(b.mac)),
            "{neighbours:?}"
        );
        assert!(fdb.iter().all(|e| e.mac != b.mac), "{fdb:?}");
        for deletion in deletions_for(&a, &b) {
            let op = deletion.op.clone();
            let err =
                a.ns.run(|| RtSocket::open()?.execute(deletion))
                    .expect_err(&op);
            assert!(err.is_not_found(), "{op}: {err}");
        }
    });
}

#[test]
fn the_device_reads_back_as_made_and_the_entries_list_as_written() {
    in_fresh_netns(|| {
        let (a, b) = hosts();
        let vx = name("vx");
        let spec = a.spec(&vx);

        let info = a.info();
        assert_eq!(
            info,
            VxlanInfo {
                index: a.vx,
                vni: 42,
                local: Some(a.underlay),
                underlay_index: Some(a.ul0),
                port: 4789,
                learning: false,
                udp_csum: true,
                mac: a.mac,
                mtu: 1450,
                up: true,
            }
        );
        assert!(info.differences(&spec).is_empty(), "{info}");
        // The kernel's own tools agree (the port in particular: byte order).
        let shown =
            a.ns.run(|| {
                Command::new("ip")
                    .args(["-d", "link", "show", "vx"])
                    .output()
                    .map_err(|e| Error::io("run ip", e))
            })
            .unwrap();
        let shown = String::from_utf8_lossy(&shown.stdout);
        assert!(
            shown.contains("vxlan id 42 local 192.0.2.1 dev ul0")
                && shown.contains("dstport 4789 nolearning"),
            "{shown}"
        );
        assert!(shown.contains("link/ether 0e:00:00:00:00:01"), "{shown}");

        // The MTU is set in place and the difference read as one.
        a.sock(|s| s.execute(link::set_mtu_request(a.vx, 1400, "vx")));
        let lowered = a.info();
        assert_eq!(lowered.mtu, 1400);
        assert_eq!(lowered.differences(&spec), [VxlanField::Mtu]);
        a.sock(|s| s.execute(link::set_mtu_request(a.vx, 1450, "vx")));
        assert!(a.info().differences(&spec).is_empty());

        // The same name again is refused, saying what is there and what to do.
        let err =
            a.ns.run(|| vxlan::create_vxlan(&mut RtSocket::open()?, &spec))
                .unwrap_err();
        assert!(err.is_exists(), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("create VXLAN device vx (VNI 42")
                && text.contains("a link named vx is already there")
                && text.contains("delete it first"),
            "{text}"
        );
        // A link of another kind is named as such; no link at all is None.
        let err =
            a.ns.run(|| vxlan::vxlan_info(&mut RtSocket::open()?, &name("ul0")))
                .unwrap_err();
        assert_eq!(
            err.to_string(),
            "link ul0 is a veth device, not a vxlan one; delete it or choose another name"
        );
        assert_eq!(a.sock(|s| vxlan::vxlan_info(s, &name("vx9"))), None);

        // The entries list as written.
        let requests = entries_for(&a, &b);
        a.sock(|s| s.execute_all(requests));
        let (routes, neighbours, fdb) = a.sock(|s| {
            Ok((
                route::list_family(s, Family::V4)?,
                neigh::neighbours(s)?,
                neigh::fdb(s)?,
            ))
        });
        let to_b = routes
            .iter()
            .find(|r| r.destination == IpAddr::V4(b.overlay) && r.prefix_len == 24)
            .unwrap_or_else(|| panic!("no route to 10.50.2.0/24 among {routes:?}"));
        assert_eq!(to_b.gateway, Some(IpAddr::V4(b.overlay)));
        assert_eq!(to_b.oif, Some(a.vx));
        assert!(to_b.onlink, "{to_b:?}");
        assert_eq!(to_b.table, u32::from(route::MAIN_TABLE));
        let underlay = routes
            .iter()
            .find(|r| r.destination == IpAddr::V4(Ipv4Addr::new(192, 0, 2, 0)))
            .unwrap_or_else(|| panic!("no underlay route among {routes:?}"));
        assert!(
            !underlay.onlink,
            "a connected route is not onlink: {underlay:?}"
        );

        let neighbour = neighbours
            .iter()
            .find(|n| n.ip == IpAddr::V4(b.overlay))
            .unwrap_or_else(|| panic!("no neighbour 10.50.2.0 among {neighbours:?}"));
        assert_eq!(
            (neighbour.ifindex, neighbour.mac, neighbour.state),
            (a.vx, Some(b.mac), neigh::NeighState::Permanent)
        );

        let entries: Vec<_> = fdb.iter().filter(|e| e.ifindex == a.vx).collect();
        assert_eq!(entries.len(), 1, "only what was written: {entries:?}");
        let entry = entries[0];
        assert_eq!(entry.mac, b.mac);
        assert_eq!(entry.remote, Some(IpAddr::V4(b.underlay)));
        assert!(
            entry.is_self && entry.permanent && entry.master.is_none(),
            "{entry:?}"
        );
    });
}
