//! The conntrack table read and pruned over ctnetlink against the real kernel, each test
//! in a fresh network namespace entered by the test's own thread, with real connections
//! over its loopback.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};

use common::in_fresh_netns;
use ctnet_kernel::{link, RtSocket, LOOPBACK_INDEX};
use ctnet_nft::conntrack::{self, Entry, Tuple};
use ctnet_nft::{abi, BaseChain, ChainType, Family, Hook, NftSocket, Rule, TableRef};

const T: TableRef = TableRef::new(Family::Inet, "ct");

/// Brings `lo` up, turns accounting on, and adds a `ct state` rule: conntrack registers
/// its hooks in a namespace only once a rule needs them, and counts only when told to.
fn track_this_namespace() {
    let mut rt = RtSocket::open().unwrap();
    link::set_up(&mut rt, LOOPBACK_INDEX, "lo").unwrap();
    // /proc/sys/net is the namespace of the thread that opens it: this test's own.
    std::fs::write("/proc/sys/net/netfilter/nf_conntrack_acct", "1").unwrap();
    let mut nft = NftSocket::open().unwrap();
    let mut batch = nft.batch();
    batch.add_table(T, "conntrack test", true);
    batch.add_chain(
        T,
        "out",
        Some(BaseChain {
            kind: ChainType::Filter,
            hook: Hook::Output,
            priority: 0,
        }),
    );
    let rule = Rule::new()
        .ct_state_any(abi::CT_STATE_ESTABLISHED | abi::CT_STATE_RELATED)
        .accept();
    batch.add_rule(T, "out", rule.exprs(), "");
    nft.commit(batch).unwrap();
}

/// An open TCP connection to a listener on `ip`: (client, server side, client address,
/// server address). Data goes both ways so the handshake is surely complete.
fn connect_tcp(ip: IpAddr) -> (TcpStream, TcpStream, SocketAddr, SocketAddr) {
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let server_addr = listener.local_addr().unwrap();
    let mut client = TcpStream::connect(server_addr).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    client.write_all(b"ping").unwrap();
    let mut buf = [0; 4];
    server.read_exact(&mut buf).unwrap();
    server.write_all(b"pong").unwrap();
    client.read_exact(&mut buf).unwrap();
    let client_addr = client.local_addr().unwrap();
    (client, server, client_addr, server_addr)
}

/// A UDP request and its answer over `ip`: (client address, server address).
fn exchange_udp(ip: IpAddr) -> (SocketAddr, SocketAddr) {
    let server = UdpSocket::bind((ip, 0)).unwrap();
    let client = UdpSocket::bind((ip, 0)).unwrap();
    let server_addr = server.local_addr().unwrap();
    client.send_to(b"ask", server_addr).unwrap();
    let mut buf = [0; 8];
    let (_, from) = server.recv_from(&mut buf).unwrap();
    server.send_to(b"answer", from).unwrap();
    client.recv_from(&mut buf).unwrap();
    (client.local_addr().unwrap(), server_addr)
}

fn find(entries: &[Entry], original: &Tuple) -> Option<Entry> {
    entries.iter().find(|e| e.original == *original).cloned()
}

/// The whole round: a TCP connection and a UDP exchange over `ip` are listed as they
/// are, the TCP entry is deleted and gone, and a second delete finds nothing.
fn round_trip(ip: IpAddr) {
    let (_client, _server, client_addr, server_addr) = connect_tcp(ip);
    let (udp_client, udp_server) = exchange_udp(ip);

    let entries = conntrack::dump().unwrap();
    let tcp = Tuple::tcp(client_addr, server_addr);
    let e = find(&entries, &tcp).unwrap_or_else(|| panic!("no {tcp:?} in {entries:#?}"));
    assert_eq!(e.reply, Tuple::tcp(server_addr, client_addr));
    assert_eq!(e.protocol_name(), "tcp");
    assert_eq!(e.tcp_state_name(), Some("ESTABLISHED"));
    assert!(e.status & conntrack::IPS_SEEN_REPLY != 0);
    assert!(!e.is_dnat() && !e.is_snat());
    assert!(e.involves(ip));
    assert!(e.timeout.is_some_and(|t| t > 0));
    assert!(e.id.is_some());
    assert_eq!((e.zone, e.mark), (0, 0));
    // Handshake and one data segment each way, at least.
    let counted = |c: Option<conntrack::Counters>| c.map_or(0, |c| c.packets);
    assert!(counted(e.original_counters) >= 3, "{e:?}");
    assert!(counted(e.reply_counters) >= 2, "{e:?}");

    let udp = Tuple::udp(udp_client, udp_server);
    let u = find(&entries, &udp).unwrap_or_else(|| panic!("no {udp:?} in {entries:#?}"));
    assert_eq!(u.reply, Tuple::udp(udp_server, udp_client));
    assert_eq!((u.protocol_name(), u.tcp_state), ("udp", None));
    assert!(u.status & conntrack::IPS_SEEN_REPLY != 0);

    // Nothing is sent on the connection from here on: a packet would, with loose TCP
    // tracking, make a new entry for the same tuple.
    assert!(conntrack::delete(&tcp, 0).unwrap());
    let after = conntrack::dump().unwrap();
    assert_eq!(find(&after, &tcp), None);
    assert!(find(&after, &udp).is_some());
    assert!(!conntrack::delete(&tcp, 0).unwrap());
}

#[test]
fn ipv4_connections_are_listed_and_deleted() {
    in_fresh_netns(|| {
        assert_eq!(conntrack::dump().unwrap(), vec![]);
        track_this_namespace();
        round_trip(Ipv4Addr::LOCALHOST.into());
    });
}

#[test]
fn ipv6_connections_are_listed_and_deleted() {
    in_fresh_netns(|| {
        track_this_namespace();
        round_trip(Ipv6Addr::LOCALHOST.into());
        // Each family's dump holds only its own entries.
        assert!(conntrack::dump()
            .unwrap()
            .iter()
            .all(|e| e.original.src.is_ipv6()));
    });
}

#[test]
fn deleting_what_was_never_there_is_false() {
    in_fresh_netns(|| {
        track_this_namespace();
        let nowhere = Tuple::udp(
            "127.0.0.2:40000".parse().unwrap(),
            "127.0.0.3:53".parse().unwrap(),
        );
        assert!(!conntrack::delete(&nowhere, 0).unwrap());
        let nowhere6 = Tuple::tcp("[::1]:1".parse().unwrap(), "[::1]:2".parse().unwrap());
        assert!(!conntrack::delete(&nowhere6, 3).unwrap());
    });
}
