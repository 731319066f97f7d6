//! nf_tables trace events from the real kernel, each test in a fresh network namespace
//! entered by the test's own thread, with one UDP datagram over its loopback as the
//! probe (`nft` only reads the rule handles back).

mod common;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use common::in_fresh_netns;
use ctnet_kernel::{link, RtSocket, LOOPBACK_INDEX};
use ctnet_nft::trace::{TraceEvent, TraceKind, TraceVerdict, Tracer};
use ctnet_nft::{BaseChain, ChainType, Family, Hook, NfProto, NftSocket, Rule, TableRef};

const T: TableRef = TableRef::new(Family::Inet, "tr");
const PROBE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const IPPROTO_UDP: u8 = 17;

/// `lo` up, and table `inet tr`: chain `trace` (output, priority 0) with `ip daddr
/// 127.0.0.2 udp dport 9 meta nftrace set 1`, chain `count` (output, priority 10) with
/// `ip daddr 127.0.0.2 counter accept`.
fn trace_udp_to_port_9() {
    let mut rt = RtSocket::open().unwrap();
    link::set_up(&mut rt, LOOPBACK_INDEX, "lo").unwrap();
    let mut nft = NftSocket::open().unwrap();
    let mut batch = nft.batch();
    batch.add_table(T, "trace test", true);
    for (chain, priority) in [("trace", 0), ("count", 10)] {
        let base = BaseChain {
            kind: ChainType::Filter,
            hook: Hook::Output,
            priority,
        };
        batch.add_chain(T, chain, Some(base));
    }
    let probe = Rule::new()
        .nfproto(NfProto::Ipv4)
        .daddr_in_prefix(PROBE.into(), 32)
        .l4proto(IPPROTO_UDP)
        .dport(9)
        .set_nftrace();
    batch.add_rule(T, "trace", probe.exprs(), "");
    let count = Rule::new()
        .nfproto(NfProto::Ipv4)
        .daddr_in_prefix(PROBE.into(), 32)
        .counter()
        .accept();
    batch.add_rule(T, "count", count.exprs(), "");
    nft.commit(batch).unwrap();
}

/// The handle of the only rule of `chain`, as `nft -a` lists it.
fn handle_of(chain: &str) -> u64 {
    let out = Command::new("nft")
        .args(["-a", "list", "chain", "inet", "tr", chain])
        .output()
        .expect("nft (package nftables) lists the rule handles");
    assert!(out.status.success(), "nft list chain inet tr {chain}");
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("# handle") && !l.contains("chain "))
        .unwrap_or_else(|| panic!("no rule in {text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

/// Every event until `done` says stop or two seconds pass.
fn collect(tracer: &mut Tracer, done: impl Fn(&[TraceEvent]) -> bool) -> Vec<TraceEvent> {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut events = Vec::new();
    while !done(&events) && Instant::now() < deadline {
        events.extend(tracer.receive(Duration::from_millis(200)).unwrap());
    }
    events
}

fn send_probe(port: u16) -> SocketAddr {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    socket.send_to(b"probe", (PROBE, port)).unwrap();
    socket.local_addr().unwrap()
}

#[test]
fn a_traced_datagram_shows_its_rules_and_policies() {
    in_fresh_netns(|| {
        trace_udp_to_port_9();
        let mut tracer = Tracer::open().unwrap();
        assert_eq!(tracer.receive(Duration::from_millis(50)).unwrap(), vec![]);

        let from = send_probe(9);
        // The second chain's rule accepts: its event is the last of the probe's path.
        let events = collect(&mut tracer, |e| e.iter().any(|e| e.chain == "count"));
        // The kernel copies the headers into the first event of each base chain only:
        // find the probe by them, then its path by its trace id.
        let first = events
            .iter()
            .find(|e| {
                e.packet().is_some_and(|p| {
                    p.dst == PROBE && p.dport == Some(9) && p.sport == Some(from.port())
                })
            })
            .unwrap_or_else(|| panic!("no event of the probe in {events:#?}"));
        let probe: Vec<&TraceEvent> = events.iter().filter(|e| e.id == first.id).collect();
        assert!(probe
            .iter()
            .all(|e| e.family == Family::Inet && e.table == "tr"));

        let p = first.packet().unwrap();
        assert_eq!(p.src, from.ip());
        assert_eq!(p.protocol, IPPROTO_UDP);
        assert_eq!((p.icmp_type, p.icmp_id, p.tcp_flags), (None, None, None));
        assert_eq!(first.nfproto, Some(u32::from(NfProto::Ipv4.code())));
        assert_eq!(first.oif, Some(LOOPBACK_INDEX));

        // Linux 6.x also sends a RULE event without a handle where a chain ends without
        // a verdict, before its policy; older kernels do not.
        let (ends, rules): (Vec<&TraceEvent>, Vec<&TraceEvent>) = probe
            .iter()
            .partition(|e| e.kind == TraceKind::Rule && e.rule_handle.is_none());
        assert!(ends
            .iter()
            .all(|e| e.chain == "trace" && e.verdict == Some(TraceVerdict::Continue)));
        let path: Vec<_> = rules
            .iter()
            .map(|e| (e.chain.as_str(), e.kind, e.rule_handle, e.verdict.clone()))
            .collect();
        let accept = Some(TraceVerdict::Accept);
        assert_eq!(
            path,
            vec![
                (
                    "trace",
                    TraceKind::Rule,
                    Some(handle_of("trace")),
                    Some(TraceVerdict::Continue)
                ),
                ("trace", TraceKind::Policy, None, None),
                ("count", TraceKind::Rule, Some(handle_of("count")), accept),
            ],
            "{probe:#?}"
        );
        let policy = probe.iter().find(|e| e.kind == TraceKind::Policy).unwrap();
        assert_eq!(policy.policy, Some(1)); // NF_ACCEPT
    });
}

#[test]
fn an_untraced_datagram_makes_no_events() {
    in_fresh_netns(|| {
        trace_udp_to_port_9();
        let mut tracer = Tracer::open().unwrap();
        send_probe(10);
        assert_eq!(tracer.receive(Duration::from_millis(300)).unwrap(), vec![]);
        // The tracer works: the probe port is traced right after.
        send_probe(9);
        let events = collect(&mut tracer, |e| !e.is_empty());
        assert!(events
            .iter()
            .any(|e| e.packet().is_some_and(|p| p.dport == Some(9))));
        assert!(events
            .iter()
            .all(|e| e.packet().is_none_or(|p| p.dport != Some(10))));
    });
}
