//! The DNS listeners: a UDP socket and a TCP listener on port 53 of every gateway address
//! of every DNS network, each bound to that one address (never the wildcard, so a DNS
//! server the user runs on the host's other addresses keeps its port 53).
//!
//! ```text
//!   container 10.89.0.2 ──query──▶ 10.89.0.1:53 (network user's listener)
//!                                     │ table brought up to date first (fresh.rs)
//!                                     │ records::respond(table, "user", 10.89.0.2, q)
//!                                     ├─ ours ──▶ answer
//!                                     └─ not ours ──▶ forward::udp/tcp ──▶ upstream
//! ```
//!
//! Sockets are bound with `IP_FREEBIND`/`IPV6_FREEBIND` (the gateway address may not be
//! on its bridge yet, or an IPv6 one still in duplicate address detection) and
//! `SO_REUSEADDR` (a restarted agent rebinds at once over the old TCP sockets in
//! TIME_WAIT, and a user's wildcard server that also sets it does not block ours:
//! aardvark-dns#13). The set of listeners is reconciled on every reload: a new network
//! gets its pair, a removed one loses them.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

use super::forward;
use super::fresh::Fresh;
use super::records::{self, Table};
use crate::status::Errors;

/// The DNS port.
pub const PORT: u16 = 53;
/// How long a TCP client may stay silent before we close its connection.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// What every listener answers from; swapped whole on each reload.
pub struct Shared {
    table: RwLock<Arc<Table>>,
    upstreams: RwLock<Arc<Vec<SocketAddr>>>,
    /// Where failures are recorded for `ctnet agent status`.
    pub errors: Errors,
    /// Attaches and detaches noted and not yet in the table.
    pub fresh: Fresh,
}

impl Shared {
    /// An empty table and no upstreams.
    pub fn new(errors: Errors) -> Arc<Shared> {
        Arc::new(Shared {
            table: RwLock::new(Arc::new(Table::default())),
            upstreams: RwLock::new(Arc::new(Vec::new())),
            errors,
            fresh: Fresh::default(),
        })
    }

    /// Replaces the table.
    pub fn set_table(&self, table: Table) {
        *self.table.write().expect("table lock") = Arc::new(table);
    }

    /// Replaces the upstreams; true when they changed.
    pub fn set_upstreams(&self, list: Vec<SocketAddr>) -> bool {
        let mut current = self.upstreams.write().expect("upstreams lock");
        let changed = **current != list;
        *current = Arc::new(list);
        changed
    }

    /// The upstreams in use.
    pub fn upstreams(&self) -> Arc<Vec<SocketAddr>> {
        self.upstreams.read().expect("upstreams lock").clone()
    }

    fn table(&self) -> Arc<Table> {
        self.table.read().expect("table lock").clone()
    }
}

/// One network's listener pair on one gateway address.
struct Listener {
    udp: JoinHandle<()>,
    tcp: JoinHandle<()>,
    queries: Arc<AtomicU64>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Aborting the tasks drops their sockets: the address is free at once.
        self.udp.abort();
        self.tcp.abort();
    }
}

/// A listener wanted: network name and gateway address.
pub type Want = (String, IpAddr);

/// Every listener the agent runs.
#[derive(Default)]
pub struct Servers {
    listeners: BTreeMap<Want, Listener>,
}

/// One network as served, for the status file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Serving {
    /// The network.
    pub network: String,
    /// `ADDR:53` of each listener up.
    pub listen: Vec<String>,
    /// Queries received on its listeners.
    pub queries: u64,
}

impl Servers {
    /// Makes the listeners exactly `wanted`: new ones are bound, ones no longer wanted
    /// closed. A bind that fails is recorded and retried on the next reload.
    pub fn reconcile(&mut self, wanted: &[Want], shared: &Arc<Shared>) {
        self.listeners.retain(|key, _| wanted.contains(key));
        for want in wanted {
            if self.listeners.contains_key(want) {
                continue;
            }
            match start(want, shared) {
                Ok(listener) => {
                    self.listeners.insert(want.clone(), listener);
                }
                Err(e) => shared.errors.record(format!(
                    "network {:?}: cannot listen on {}: {e}",
                    want.0,
                    SocketAddr::new(want.1, PORT)
                )),
            }
        }
    }

    /// What is served, network by network (sorted by name).
    pub fn serving(&self) -> Vec<Serving> {
        let mut out: Vec<Serving> = Vec::new();
        for ((network, ip), listener) in &self.listeners {
            let queries = listener.queries.load(Ordering::Relaxed);
            let listen = SocketAddr::new(*ip, PORT).to_string();
            match out.last_mut().filter(|s| &s.network == network) {
                Some(s) => {
                    s.listen.push(listen);
                    s.queries += queries;
                }
                None => out.push(Serving {
                    network: network.clone(),
                    listen: vec![listen],
                    queries,
                }),
            }
        }
        out
    }
}

/// Binds and starts one network's listener pair.
fn start((network, ip): &Want, shared: &Arc<Shared>) -> std::io::Result<Listener> {
    let addr = SocketAddr::new(*ip, PORT);
    let udp = UdpSocket::from_std(bind(addr, Type::DGRAM)?.into())?;
    let tcp_socket = bind(addr, Type::STREAM)?;
    tcp_socket.listen(128)?;
    let tcp = TcpListener::from_std(tcp_socket.into())?;
    let queries = Arc::new(AtomicU64::new(0));
    let ctx = Ctx {
        network: network.clone(),
        shared: shared.clone(),
        queries: queries.clone(),
    };
    Ok(Listener {
        udp: tokio::spawn(serve_udp(Arc::new(udp), ctx.clone())),
        tcp: tokio::spawn(serve_tcp(tcp, ctx)),
        queries,
    })
}

/// A socket bound to exactly `addr`, free-bind and reuse-address, non-blocking.
fn bind(addr: SocketAddr, kind: Type) -> std::io::Result<Socket> {
    let protocol = if kind == Type::DGRAM {
        Protocol::UDP
    } else {
        Protocol::TCP
    };
    let socket = Socket::new(
        Domain::for_address(addr),
        kind.nonblocking().cloexec(),
        Some(protocol),
    )?;
    socket.set_reuse_address(true)?;
    match addr {
        SocketAddr::V4(_) => socket.set_freebind_v4(true)?,
        SocketAddr::V6(_) => {
            socket.set_only_v6(true)?;
            socket.set_freebind_v6(true)?;
        }
    }
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// What a listener's tasks share.
#[derive(Clone)]
struct Ctx {
    network: String,
    shared: Arc<Shared>,
    queries: Arc<AtomicU64>,
}

impl Ctx {
    /// Our answer's bytes, or None when the query is to be forwarded (or is unreadable:
    /// dropped, as a resolver drops garbage). Noted attaches and detaches are applied
    /// first; a name we do not know makes the agent read its socket and look again, as
    /// the attach that made it may have returned a moment ago (see fresh.rs).
    async fn local(&self, source: IpAddr, bytes: &[u8]) -> Result<Option<Vec<u8>>, ()> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        let request = Message::from_vec(bytes).map_err(|_| ())?;
        let fresh = &self.shared.fresh;
        if fresh.is_pending() {
            fresh.catch_up().await;
        }
        let respond = || records::respond(&self.shared.table(), &self.network, source, &request);
        let mut answer = respond();
        if answer
            .as_ref()
            .is_some_and(|a| a.response_code() == ResponseCode::NXDomain)
        {
            fresh.catch_up().await;
            answer = respond();
        }
        match answer {
            Some(answer) => answer.to_vec().map(Some).map_err(|_| ()),
            None => Ok(None),
        }
    }

    fn forward_failed(&self, e: forward::Failure) {
        self.shared
            .errors
            .record(format!("network {:?}: {}", self.network, e.0));
    }
}

async fn serve_udp(socket: Arc<UdpSocket>, ctx: Ctx) {
    let mut buf = vec![0u8; 65535];
    loop {
        let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let query = &buf[..n];
        match ctx.local(peer.ip(), query).await {
            Ok(Some(answer)) => {
                let _ = socket.send_to(&answer, peer).await;
            }
            Ok(None) => {
                // Forwarding waits on the network: its own task, so the listener goes on
                // answering container names meanwhile.
                let (socket, ctx, query) = (socket.clone(), ctx.clone(), query.to_vec());
                tokio::spawn(async move {
                    let upstreams = ctx.shared.upstreams();
                    let answer = match forward::udp(&upstreams, &query).await {
                        Ok(answer) => Some(answer),
                        Err(e) => {
                            ctx.forward_failed(e);
                            records::servfail(&query)
                        }
                    };
                    if let Some(answer) = answer {
                        let _ = socket.send_to(&answer, peer).await;
                    }
                });
            }
            Err(()) => {}
        }
    }
}

async fn serve_tcp(listener: TcpListener, ctx: Ctx) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            // Out of file descriptors, say: wait a little instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        tokio::spawn(serve_connection(stream, peer.ip(), ctx.clone()));
    }
}

/// One TCP client: messages one after the other until it closes or goes quiet.
async fn serve_connection(mut stream: TcpStream, peer: IpAddr, ctx: Ctx) {
    let _ = stream.set_nodelay(true);
    loop {
        let query = match tokio::time::timeout(TCP_IDLE, forward::read_frame(&mut stream)).await {
            Ok(Ok(query)) => query,
            _ => return,
        };
        let answer = match ctx.local(peer, &query).await {
            Ok(Some(answer)) => answer,
            Ok(None) => {
                let upstreams = ctx.shared.upstreams();
                match forward::tcp(&upstreams, &query).await {
                    Ok(answer) => answer,
                    Err(e) => {
                        ctx.forward_failed(e);
                        match records::servfail(&query) {
                            Some(answer) => answer,
                            None => return,
                        }
                    }
                }
            }
            Err(()) => return,
        };
        if forward::write_frame(&mut stream, &answer).await.is_err() {
            return;
        }
    }
}
