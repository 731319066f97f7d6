//! `ctnet trace FROM TO`: one real packet, followed by the kernel through every chain
//! and rule it meets, and what came back.
//!
//! ```text
//!  resolve FROM and TO (a container, `host`, an address of the host or of a namespace
//!  in the netns dir) ─▶ sender's namespace, destination address, protocol and port
//!  Tracer::open()                           subscribe to NFNLGRP_NFTRACE first
//!  probe::prepare()  in the sender's ns     socket bound, source port known, nothing sent
//!  element source . destination . proto ─▶ set trace/trace6 (expires in 10 s by itself)
//!  probe.fire()                             SYN / datagram / echo; while waiting, events:
//!     trace_in/trace_out  meta nftrace set 1   (the kernel now reports this packet)
//!     every chain of every table it passes ─▶ TraceEvent (rule handle, verdict, headers)
//!     a drop seen ─▶ stop waiting
//!  conntrack entry of the probe            ─▶ its NAT (DNAT to a container, masquerade)
//!  route lookup (RTM_GETROUTE, with the input interface)  ─▶ where the host sent it
//!  cleanup: RST, element expired, the probe's conntrack entries deleted
//!  explain: the hops in order and the verdict, in words a user acts on
//! ```
//!
//! Signals that end the process (SIGINT, SIGTERM, SIGHUP) are held while the probe is
//! out and delivered after the cleanup, so an interrupted trace leaves nothing either;
//! a SIGKILL leaves an element that expires by itself within seconds.

mod explain;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use serde::Serialize;

use ctnet_kernel::addr;
use ctnet_kernel::link_detail::{self, LinkDetail};
use ctnet_kernel::route::{self, RouteDecision};
use ctnet_kernel::{Netns, NetnsName, RtSocket};
use ctnet_nft::conntrack;
use ctnet_nft::trace::{TraceEvent, TraceVerdict, Tracer};
use ctnet_nft::NftSocket;

use crate::datapath::nft::{self, LAYOUT, TABLE};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::model::{ContainerRef, Endpoint, Network};
use crate::state;

use ctnet_kernel::probe::HeldSignals;
pub use ctnet_kernel::probe::{self, Answer, Protocol};
pub use explain::{Hop, RuleHit, Verdict};

/// How long the trace element lives if nobody removes it.
const ELEMENT_LIFETIME: Duration = Duration::from_secs(10);
/// How long trace events are still read after the answer: the kernel queues a packet's
/// events while it passes the hooks, before the answer can come back, so what is left
/// is at most a packet still in a softirq on the other CPU.
const DRAIN: Duration = Duration::from_millis(2);

/// One end of a trace, as the user named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A container: a named namespace in the netns dir.
    Container(NetnsName),
    /// The host itself.
    Host,
    /// An address: of the host, of a namespace in the netns dir, or (as TO) anywhere.
    Address(IpAddr),
}

impl Place {
    fn label(&self) -> String {
        match self {
            Place::Container(n) => n.to_string(),
            Place::Host => "host".into(),
            Place::Address(ip) => ip.to_string(),
        }
    }
}

/// What to trace.
#[derive(Debug, Clone)]
pub struct TraceRequest {
    /// Where the probe is sent from.
    pub from: Place,
    /// Where it is sent to.
    pub to: Place,
    /// The destination port (TCP and UDP).
    pub port: Option<u16>,
    /// The protocol, if the user named one.
    pub protocol: Option<Protocol>,
    /// How long to wait for an answer.
    pub wait: Duration,
}

impl TraceRequest {
    /// TO as the user wrote it, with the port and the protocol in use.
    fn destination_label(&self, protocol: Protocol) -> String {
        let place = match &self.to {
            Place::Address(IpAddr::V6(v6)) if self.port.is_some() => format!("[{v6}]"),
            other => other.label(),
        };
        match self.port {
            Some(port) => format!("{place}:{port}/{}", protocol.as_str()),
            None => format!("{place}/{}", protocol.as_str()),
        }
    }
}

/// What `ctnet trace` shows.
#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    /// FROM, as given.
    pub from: String,
    /// TO, as given.
    pub to: String,
    /// The probe's protocol: tcp, udp or icmp.
    pub protocol: String,
    /// Its source address and port (the echo id for ICMP).
    pub source: SocketAddr,
    /// Its destination address and port.
    pub destination: SocketAddr,
    /// Where it went, in order.
    pub hops: Vec<Hop>,
    /// What came back: connected, replied, refused, unreachable or no_answer.
    pub answer: String,
    /// For an ICMP error, which one.
    pub answer_detail: Option<String>,
    /// The outcome, in words.
    pub verdict: Verdict,
    /// Milliseconds from sending to the answer (or giving up).
    pub elapsed_ms: f64,
}

/// The sending side, resolved.
struct Sender {
    label: String,
    /// None: the host's own namespace.
    netns: Option<Netns>,
    source: Option<IpAddr>,
    endpoints: Vec<Endpoint>,
}

/// The receiving side, resolved.
struct Receiver {
    address: IpAddr,
}

impl Engine {
    /// Sends one probe from `request.from` to `request.to` and follows it (see the
    /// module's drawing). Bad input and a missing table are errors before anything is
    /// sent or changed.
    pub fn trace(&mut self, request: &TraceRequest) -> Result<Trace> {
        self.require_table()?;
        let networks = state::list_networks(self.store.read())?;
        let sender = self.resolve_sender(&request.from)?;
        let receiver = self.resolve_receiver(&request.to, &sender, &networks)?;
        let protocol = self.protocol_of(request, receiver.address)?;
        let destination = SocketAddr::new(receiver.address, request.port.unwrap_or(0));
        let held = HeldSignals::hold();
        let result = self.run_probe(request, &sender, &networks, protocol, destination, &held);
        drop(held);
        result
    }

    fn require_table(&mut self) -> Result<()> {
        let comment = NftSocket::open()
            .and_then(|mut s| s.table_comment(TABLE))
            .map_err(|e| Error::kernel("nftables", e))?;
        if comment.as_deref() == Some(LAYOUT) {
            return Ok(());
        }
        Err(Error::invalid(
            format!("table {TABLE}"),
            match comment {
                None => "is missing, so there is nothing to trace through".to_string(),
                Some(_) => "is of another layout than this ctnet writes".to_string(),
            },
            "run `ctnet gc`, which makes it again (the agent does so by itself while it runs); nothing was changed",
        ))
    }

    fn resolve_sender(&mut self, from: &Place) -> Result<Sender> {
        match from {
            Place::Host => Ok(Sender {
                label: "host".into(),
                netns: None,
                source: None,
                endpoints: Vec::new(),
            }),
            Place::Container(name) => {
                let endpoints = self.trace_endpoints(name)?;
                let netns = self.open_container(&ContainerRef::Named(name.clone()))?;
                if endpoints.is_empty() {
                    return Err(no_path(
                        &name.to_string(),
                        "has no network (none mode: only loopback)",
                    ));
                }
                if netns.inode().ok() == Netns::current().and_then(|n| n.inode()).ok() {
                    return Err(no_path(
                        &name.to_string(),
                        "shares the host's namespace (host mode)",
                    ));
                }
                Ok(Sender {
                    label: name.to_string(),
                    netns: Some(netns),
                    source: None,
                    endpoints,
                })
            }
            Place::Address(ip) => self.sender_holding(*ip),
        }
    }

    /// The host or a named namespace that holds `ip`.
    fn sender_holding(&mut self, ip: IpAddr) -> Result<Sender> {
        let host = addr::list_all(self.host()?).map_err(|e| Error::kernel("host addresses", e))?;
        if host.iter().any(|a| a.address == ip) {
            return Ok(Sender {
                label: format!("host ({ip})"),
                netns: None,
                source: Some(ip),
                endpoints: Vec::new(),
            });
        }
        for name in self
            .netns_dir
            .list()
            .map_err(|e| Error::kernel("netns dir", e))?
        {
            let Ok(ns) = Netns::open(&self.netns_dir.path().join(&name)) else {
                continue;
            };
            let holds = ns
                .run(|| {
                    let mut sock = RtSocket::open()?;
                    addr::list_all(&mut sock)
                })
                .map(|list| list.iter().any(|a| a.address == ip))
                .unwrap_or(false);
            if holds {
                let endpoints = match NetnsName::new(&name) {
                    Ok(n) => self.trace_endpoints(&n)?,
                    Err(_) => Vec::new(),
                };
                return Ok(Sender {
                    label: format!("{name} ({ip})"),
                    netns: Some(ns),
                    source: Some(ip),
                    endpoints,
                });
            }
        }
        Err(Error::invalid(
            format!("trace source {ip}"),
            "is no address of this host or of a namespace in the netns dir, so ctnet cannot send from it",
            "trace from a container, from `host`, or from an address one of them holds",
        ))
    }

    fn resolve_receiver(
        &mut self,
        to: &Place,
        sender: &Sender,
        networks: &[Network],
    ) -> Result<Receiver> {
        match to {
            Place::Address(ip) => Ok(Receiver { address: *ip }),
            Place::Host => {
                let gateway = sender.endpoints.iter().find_map(|ep| {
                    let net = networks.iter().find(|n| n.name == ep.network)?;
                    net.subnets.first().map(|s| s.gateway)
                });
                match gateway {
                    Some(address) => Ok(Receiver { address }),
                    None => Err(Error::invalid(
                        "trace destination host",
                        format!("names no address seen from {}", sender.label),
                        "give the host's address instead (`ctnet trace FROM HOST_IP:PORT`)",
                    )),
                }
            }
            Place::Container(name) => {
                let endpoints = self.trace_endpoints(name)?;
                if endpoints.is_empty() {
                    return Err(no_path(
                        &name.to_string(),
                        "has no network (none mode: only loopback)",
                    ));
                }
                let shared = endpoints
                    .iter()
                    .find(|ep| sender.endpoints.iter().any(|s| s.network == ep.network));
                let ep = shared.unwrap_or(&endpoints[0]);
                let address = ep
                    .ips
                    .iter()
                    .copied()
                    .find(|ip| sender.source.is_none_or(|s| s.is_ipv4() == ip.is_ipv4()))
                    .ok_or_else(|| {
                        no_path(&name.to_string(), "has no address of the sender's family")
                    })?;
                Ok(Receiver { address })
            }
        }
    }

    fn trace_endpoints(&mut self, name: &NetnsName) -> Result<Vec<Endpoint>> {
        let container = ContainerRef::Named(name.clone());
        let known = self.netns_dir.exists(name);
        let rows = self.endpoints_of(&container)?;
        if rows.is_empty() && !known {
            return Err(Error::not_found(
                crate::ops::endpoint::container_object(&container.label()),
                "name a container `ctnet ls` lists, `host`, or an address",
            ));
        }
        Ok(rows)
    }

    fn protocol_of(&mut self, request: &TraceRequest, destination: IpAddr) -> Result<Protocol> {
        match (request.protocol, request.port) {
            (Some(Protocol::Icmp), Some(port)) => Err(Error::invalid(
                format!("{}:{port}/icmp", request.to.label()),
                "gives a port, and ICMP has none",
                "leave out the port for an ICMP echo, or say /tcp or /udp",
            )),
            (Some(p @ (Protocol::Tcp | Protocol::Udp)), None) => Err(Error::invalid(
                format!("{}/{}", request.to.label(), p.as_str()),
                "names no port",
                format!("give one: {}:PORT/{}", request.to.label(), p.as_str()),
            )),
            (Some(p), _) => Ok(p),
            (None, None) => Ok(Protocol::Icmp),
            (None, Some(port)) => self.default_protocol(destination, port, &request.to),
        }
    }

    /// TCP, unless the port is published on this host for UDP only: then the user must
    /// say which they mean.
    fn default_protocol(&mut self, destination: IpAddr, port: u16, to: &Place) -> Result<Protocol> {
        let published = state::list_endpoints(self.store.read())?
            .into_iter()
            .flat_map(|ep| ep.ports)
            .filter(|p| p.host_port == port && p.host_ip.is_none_or(|ip| ip == destination))
            .collect::<Vec<_>>();
        let udp_only =
            !published.is_empty() && published.iter().all(|p| p.protocol.as_str() == "udp");
        if udp_only {
            return Err(Error::invalid(
                format!("{}:{port}", to.label()),
                format!("gives no protocol, and port {port} is published for udp only"),
                format!("say which: {}:{port}/udp (or /tcp)", to.label()),
            ));
        }
        Ok(Protocol::Tcp)
    }

    fn run_probe(
        &mut self,
        request: &TraceRequest,
        sender: &Sender,
        networks: &[Network],
        protocol: Protocol,
        destination: SocketAddr,
        held: &HeldSignals,
    ) -> Result<Trace> {
        let frame = match (&sender.netns, destination) {
            (Some(ns), SocketAddr::V4(dst)) if dst.ip().is_loopback() => {
                Some(self.frame_to_host(ns, sender, protocol, dst)?)
            }
            _ => None,
        };
        let source = frame.map(|(_, ip)| IpAddr::V4(ip)).or(sender.source);
        let prepared = match &sender.netns {
            Some(ns) => ns.run(|| Ok(probe::prepare(protocol, source, destination))),
            None => Ok(probe::prepare(protocol, source, destination)),
        }
        .map_err(|e| Error::kernel(format!("namespace of {}", sender.label), e))?;
        let probe = match prepared {
            Ok(p) => p,
            Err(e) => {
                return Ok(self.unsent(request, sender, protocol, destination, &e, networks));
            }
        };
        let mut tracer = Tracer::open().map_err(|e| Error::kernel("nftables trace events", e))?;
        let flow = (
            probe.source.ip(),
            destination.ip(),
            protocol.number(destination.ip()),
        );
        self.follow(flow, true)?;
        let started = Instant::now();
        let mut events: Vec<TraceEvent> = Vec::new();
        let matcher = explain::Matcher::new(&probe.source, protocol);
        let answer = {
            let mut stop = || {
                if let Ok(more) = tracer.receive(Duration::ZERO) {
                    events.extend(more);
                }
                // A signal that ends the process ends the wait; it is delivered after
                // the clean-up.
                matcher.dropped(&events) || held.pending()
            };
            match (frame, &sender.netns, probe.source, destination) {
                (Some((frame, _)), Some(ns), SocketAddr::V4(src), SocketAddr::V4(dst)) => ns
                    .run(|| Ok(probe::inject_syn(frame, src, dst)))
                    .map_err(|e| std::io::Error::other(e.to_string()))
                    .and_then(|sent| sent)
                    .map(|()| wait_for_drop(request.wait, &mut stop)),
                _ => probe.fire(request.wait, &mut stop),
            }
        };
        let elapsed = started.elapsed();
        if let Ok(more) = tracer.receive(DRAIN) {
            events.extend(more);
        }
        let entries = conntrack::dump().unwrap_or_default();
        let entry = explain::probe_entry(&entries, &probe.source, destination, protocol).cloned();
        let answer = answer.unwrap_or_else(|e| Answer::Unreachable(e.to_string()));
        let source = probe.source;
        drop(probe);
        self.follow(flow, false)?;
        forget_conntrack(&entry);
        let host_links = link_detail::details(self.host()?).unwrap_or_default();
        let all_endpoints = state::list_endpoints(self.store.read())?;
        let ours = matcher.events_of_probe(&events);
        let rules = NftSocket::open()
            .and_then(|mut s| s.list_rules(TABLE))
            .unwrap_or_default();
        let decision = self.route_decision(&ours, &source, destination, &entry, &host_links);
        let context = explain::Context {
            sender_label: &sender.label,
            sender_endpoints: &sender.endpoints,
            all_endpoints: &all_endpoints,
            networks,
            host_links: &host_links,
            rules: &rules,
            chain_hooks: &nft::chain_hooks(),
            decision: decision.as_ref(),
            entry: entry.as_ref(),
        };
        let hops = explain::hops(&context, &ours);
        let verdict = explain::verdict(&context, &ours, &answer, destination, protocol);
        Ok(Trace {
            from: request.from.label(),
            to: request.destination_label(protocol),
            protocol: protocol.as_str().into(),
            source,
            destination,
            hops,
            answer: answer_word(&answer).into(),
            answer_detail: match &answer {
                Answer::Unreachable(words) => Some(words.clone()),
                _ => None,
            },
            verdict,
            elapsed_ms: elapsed.as_secs_f64() * 1000.0,
        })
    }

    /// A probe the sender's own kernel refused to send (no route, typically).
    fn unsent(
        &self,
        request: &TraceRequest,
        sender: &Sender,
        protocol: Protocol,
        destination: SocketAddr,
        error: &std::io::Error,
        networks: &[Network],
    ) -> Trace {
        let internal: Vec<String> = sender
            .endpoints
            .iter()
            .filter(|ep| networks.iter().any(|n| n.name == ep.network && n.internal))
            .map(|ep| ep.network.to_string())
            .collect();
        let why = explain::unsent_reason(&sender.label, destination.ip(), error, &internal);
        Trace {
            from: request.from.label(),
            to: request.destination_label(protocol),
            protocol: protocol.as_str().into(),
            source: SocketAddr::new(
                match destination {
                    SocketAddr::V4(_) => IpAddr::from([0, 0, 0, 0]),
                    SocketAddr::V6(_) => IpAddr::from([0u16; 8]),
                },
                0,
            ),
            destination,
            hops: vec![Hop::NotSent {
                namespace: sender.label.clone(),
                error: error.to_string(),
            }],
            answer: answer_word(&Answer::NoAnswer).into(),
            answer_detail: None,
            verdict: Verdict {
                outcome: "dropped".into(),
                at: Some(format!("{} (before it left)", sender.label)),
                why,
            },
            elapsed_ms: 0.0,
        }
    }

    /// The link, MACs and source address with which a frame from the sender's
    /// namespace reaches the host, for a destination its kernel would keep to itself
    /// (127.0.0.0/8): the first host address it routes to on a link, its neighbour
    /// entry (resolved by one datagram to port 9 when it has none).
    fn frame_to_host(
        &mut self,
        ns: &Netns,
        sender: &Sender,
        protocol: Protocol,
        destination: std::net::SocketAddrV4,
    ) -> Result<(probe::Frame, std::net::Ipv4Addr)> {
        let refuse = |cause: &str| {
            Error::invalid(
                format!("trace {} → {destination}", sender.label),
                cause.to_string(),
                "trace to a host address instead, or from `host`",
            )
        };
        if protocol != Protocol::Tcp {
            return Err(refuse(
                "sends to the host's loopback, which ctnet probes with a TCP SYN only",
            ));
        }
        let host: Vec<std::net::Ipv4Addr> = addr::list_all(self.host()?)
            .map_err(|e| Error::kernel("host addresses", e))?
            .into_iter()
            .filter_map(|a| match a.address {
                IpAddr::V4(v4) if !v4.is_loopback() => Some(v4),
                _ => None,
            })
            .collect();
        let found = ns
            .run(|| Ok(host.iter().find_map(|h| next_hop_frame(*h))))
            .map_err(|e| Error::kernel(format!("namespace of {}", sender.label), e))?;
        found.ok_or_else(|| refuse("finds no link from the sender to the host"))
    }

    /// Adds (or expires) the element that makes the kernel follow the flow.
    fn follow(&mut self, flow: (IpAddr, IpAddr, u8), on: bool) -> Result<()> {
        let Some((set, element)) = nft::trace_element(flow.0, flow.1, flow.2) else {
            return Err(Error::invalid(
                format!("trace {} → {}", flow.0, flow.1),
                "mixes IPv4 and IPv6",
                "give a destination of the sender's family",
            ));
        };
        let mut socket = NftSocket::open().map_err(|e| Error::kernel("nftables", e))?;
        let mut batch = socket.batch();
        if on {
            batch.add_elements_expiring(TABLE, set, &[element], ELEMENT_LIFETIME, "trace flow");
        } else {
            batch.expire_elements(TABLE, set, &[element], "trace flow");
        }
        socket
            .commit(batch)
            .map_err(|e| Error::kernel("nftables", e))
    }

    /// The host's routing decision for the probe: as forwarded from the interface it
    /// came in by, or as sent by the host itself.
    fn route_decision(
        &mut self,
        events: &[TraceEvent],
        source: &SocketAddr,
        destination: SocketAddr,
        entry: &Option<conntrack::Entry>,
        _links: &[LinkDetail],
    ) -> Option<RouteDecision> {
        // After DNAT the destination is the reply tuple's source.
        let target = entry
            .as_ref()
            .filter(|e| e.is_dnat())
            .map_or(destination.ip(), |e| e.reply.src);
        let input = events.iter().find_map(|e| e.iif);
        let host = self.host().ok()?;
        match input {
            Some(iif) => route::lookup(host, target, Some(source.ip()), Some(iif)).ok(),
            None => route::lookup(host, target, Some(source.ip()), None).ok(),
        }
    }
}

/// In the calling thread's namespace: the frame that reaches host address `host` on a
/// link, and the source address to use, if `host` is routed on a link from here.
fn next_hop_frame(host: std::net::Ipv4Addr) -> Option<(probe::Frame, std::net::Ipv4Addr)> {
    let mut sock = RtSocket::open().ok()?;
    let decision = route::lookup(&mut sock, IpAddr::V4(host), None, None).ok()?;
    if decision.kind != route::RouteType::Unicast {
        return None;
    }
    let ifindex = decision.oif?;
    let next_hop = decision.gateway.unwrap_or(IpAddr::V4(host));
    let IpAddr::V4(source) = decision.source? else {
        return None;
    };
    let links = link_detail::details(&mut sock).ok()?;
    let source_mac = links.iter().find(|l| l.index == ifindex)?.mac?;
    for attempt in 0..10 {
        let known = ctnet_kernel::neigh::neighbours(&mut sock)
            .ok()?
            .into_iter()
            .find(|n| n.ifindex == ifindex && n.ip == next_hop)
            .and_then(|n| n.mac);
        if let Some(destination_mac) = known {
            let frame = probe::Frame {
                ifindex,
                source_mac,
                destination_mac,
            };
            return Some((frame, source));
        }
        if attempt == 0 {
            // Makes the kernel resolve the neighbour (ARP); the host answers a port
            // unreachable at most.
            let _ = std::net::UdpSocket::bind((source, 0))
                .and_then(|s| s.send_to(b"ctnet trace", (next_hop, 9)));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// For a probe nothing can answer: waits until `stop` says it was dropped, or the wait
/// ends.
fn wait_for_drop(wait: Duration, stop: &mut dyn FnMut() -> bool) -> Answer {
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if stop() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Answer::NoAnswer
}

fn no_path(container: &str, why: &str) -> Error {
    Error::invalid(
        format!("container {container}"),
        format!("{why}, so there is no path to trace"),
        "trace from or to a container attached to a network (`ctnet attach NETWORK CONTAINER`)",
    )
}

/// Deletes the probe's conntrack entry, and again once the probe's closing reset has
/// passed the host (it updates the entry; conntrack makes no new one for a lone RST).
fn forget_conntrack(entry: &Option<conntrack::Entry>) {
    let Some(entry) = entry else { return };
    let _ = conntrack::delete(&entry.original, entry.zone);
    std::thread::sleep(Duration::from_millis(2));
    let _ = conntrack::delete(&entry.original, entry.zone);
}

fn answer_word(answer: &Answer) -> &'static str {
    match answer {
        Answer::Connected => "connected",
        Answer::Replied => "replied",
        Answer::Refused => "refused",
        Answer::Unreachable(_) => "unreachable",
        Answer::NoAnswer => "no_answer",
    }
}

/// For explain.rs: the verdict of an event, as a word.
pub(crate) fn verdict_word(v: &TraceVerdict) -> String {
    match v {
        TraceVerdict::Accept => "accept".into(),
        TraceVerdict::Drop => "drop".into(),
        TraceVerdict::Continue => "continue".into(),
        TraceVerdict::Break => "break".into(),
        TraceVerdict::Jump(c) => format!("jump {c}"),
        TraceVerdict::Goto(c) => format!("goto {c}"),
        TraceVerdict::Return => "return".into(),
        TraceVerdict::Queue => "queue".into(),
        TraceVerdict::Other(code) => format!("verdict {code}"),
    }
}
