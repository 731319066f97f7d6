//! A bounded DNS load: `total` A queries over UDP for container names, at most `window`
//! in flight, sent from inside a container's network namespace to a server address,
//! counted and timed.
//!
//! ```text
//!   bench thread (setns into the container's netns)          DNS server on the gateway
//!   UDP socket ── query id=k, name=N(k mod names) ────────▶  10.210.0.1:53 (ctnet-agent)
//!               ◀──────────────────── answer id=k ──────────  10.210.0.1:5353 (aardvark-dns)
//! ```
//!
//! Each query is encoded once per name with hickory-proto (the wire format is never
//! written by hand) and only its 16-bit id, the first two bytes of every DNS message,
//! changes from one send to the next; each answer is decoded with hickory-proto and
//! counted as answered when it is NOERROR with at least one record. A query without an
//! answer within [`LOST_AFTER`] counts as lost; the whole load stops at [`MAX_LOAD`].

use std::collections::HashMap;
use std::fs::File;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

/// A query without an answer after this long is lost.
pub const LOST_AFTER: Duration = Duration::from_secs(1);

/// No load runs longer than this, whatever the server does.
pub const MAX_LOAD: Duration = Duration::from_secs(120);

/// What a load asks for.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The namespace the queries leave from (a container's).
    pub netns: PathBuf,
    /// The server's address and port.
    pub server: SocketAddr,
    /// The names asked, in turn.
    pub names: Vec<String>,
    /// Queries in all.
    pub total: usize,
    /// Queries in flight at most.
    pub window: usize,
}

/// What a load measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct Load {
    /// Answers that were NOERROR with at least one record.
    pub answered: usize,
    /// Answers that were not (NXDOMAIN, SERVFAIL, NOERROR with nothing).
    pub wrong: usize,
    /// Queries that got no answer within [`LOST_AFTER`].
    pub lost: usize,
    /// From the first send to the last answer or loss.
    pub elapsed: Duration,
}

impl Load {
    /// Answered queries per second.
    pub fn per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.answered as f64 / secs
        } else {
            0.0
        }
    }
}

/// Runs the plan from a thread that enters the plan's namespace (this thread's own
/// namespace is left alone).
pub fn run(plan: &Plan) -> Result<Load, String> {
    let plan = plan.clone();
    std::thread::spawn(move || {
        enter_netns(&plan.netns)?;
        let socket = open(plan.server)?;
        flood(&socket, &plan)
    })
    .join()
    .map_err(|_| "the DNS load thread panicked".to_string())?
}

/// Asks `name` until one good answer comes (at most `within`): the server is up and
/// knows the name. Run before a load, from the same namespace.
pub fn wait_answered(
    netns: &Path,
    server: SocketAddr,
    name: &str,
    within: Duration,
) -> Result<(), String> {
    let (netns, name) = (netns.to_path_buf(), name.to_string());
    std::thread::spawn(move || {
        enter_netns(&netns)?;
        let socket = open(server)?;
        let query = encode(&name)?;
        let deadline = Instant::now() + within;
        let mut last = String::from("no answer");
        while Instant::now() < deadline {
            // A refused send (nothing listening yet: ICMP port unreachable) is retried.
            if socket.send(&query).is_ok() {
                let mut buf = [0u8; 4096];
                match socket.recv(&mut buf) {
                    Ok(n) => match verdict(&buf[..n]) {
                        Some((_, true)) => return Ok(()),
                        Some((_, false)) => last = "an answer without the name's address".into(),
                        None => last = "an answer that is no DNS message".into(),
                    },
                    Err(e) => last = e.to_string(),
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "{server} did not answer {name} within {} s ({last})",
            within.as_secs()
        ))
    })
    .join()
    .map_err(|_| "the DNS probe thread panicked".to_string())?
}

fn enter_netns(path: &Path) -> Result<(), String> {
    let file = File::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("enter network namespace {}: {e}", path.display()))
}

fn open(server: SocketAddr) -> Result<UdpSocket, String> {
    let any: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().expect("address")
    } else {
        "[::]:0".parse().expect("address")
    };
    let socket = UdpSocket::bind(any).map_err(|e| format!("bind a UDP socket: {e}"))?;
    socket
        .connect(server)
        .map_err(|e| format!("connect a UDP socket to {server}: {e}"))?;
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(|e| format!("set a receive timeout: {e}"))?;
    Ok(socket)
}

/// One A query for `name` (id 0, recursion desired), on the wire.
fn encode(name: &str) -> Result<Vec<u8>, String> {
    let name = Name::from_ascii(name).map_err(|e| format!("query name {name:?}: {e}"))?;
    let mut message = Message::new();
    message
        .set_id(0)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true);
    message.add_query(Query::query(name, RecordType::A));
    message.to_vec().map_err(|e| format!("encode a query: {e}"))
}

/// An answer's id and whether it is NOERROR with at least one record; None when the
/// bytes are no DNS response.
fn verdict(bytes: &[u8]) -> Option<(u16, bool)> {
    let message = Message::from_vec(bytes).ok()?;
    (message.message_type() == MessageType::Response).then_some(())?;
    let good = message.response_code() == ResponseCode::NoError && !message.answers().is_empty();
    Some((message.id(), good))
}

/// The load itself: keep `window` queries in flight until `total` were sent and each
/// was answered or lost.
fn flood(socket: &UdpSocket, plan: &Plan) -> Result<Load, String> {
    if plan.names.is_empty() || plan.window == 0 {
        return Err("a DNS load needs names to ask and a window of at least 1".into());
    }
    let queries = plan
        .names
        .iter()
        .map(|n| encode(n))
        .collect::<Result<Vec<_>, _>>()?;
    let window = plan.window.min(1 << 15);
    let mut inflight: HashMap<u16, Instant> = HashMap::with_capacity(window);
    let mut load = Load::default();
    let mut sent = 0usize;
    let mut next_id: u16 = 0;
    let mut buf = [0u8; 4096];
    let start = Instant::now();
    while sent < plan.total || !inflight.is_empty() {
        if start.elapsed() > MAX_LOAD {
            return Err(format!(
                "{}: the load did not finish within {} s ({} of {} queries answered)",
                plan.server,
                MAX_LOAD.as_secs(),
                load.answered,
                plan.total
            ));
        }
        while sent < plan.total && inflight.len() < window {
            while inflight.contains_key(&next_id) {
                next_id = next_id.wrapping_add(1);
            }
            let mut query = queries[sent % queries.len()].clone();
            query[..2].copy_from_slice(&next_id.to_be_bytes());
            socket
                .send(&query)
                .map_err(|e| format!("send a query to {}: {e}", plan.server))?;
            inflight.insert(next_id, Instant::now());
            next_id = next_id.wrapping_add(1);
            sent += 1;
        }
        match socket.recv(&mut buf) {
            Ok(n) => match verdict(&buf[..n]) {
                Some((id, good)) if inflight.remove(&id).is_some() => match good {
                    true => load.answered += 1,
                    false => load.wrong += 1,
                },
                // A late answer to a query already counted lost, or garbage.
                _ => {}
            },
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Err(format!(
                    "{}: nothing listens there (port unreachable)",
                    plan.server
                ));
            }
            Err(e) => return Err(format!("receive from {}: {e}", plan.server)),
        }
        let before = inflight.len();
        inflight.retain(|_, at| at.elapsed() < LOST_AFTER);
        load.lost += before - inflight.len();
    }
    load.elapsed = start.elapsed();
    Ok(load)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_is_an_a_question_with_its_id_in_the_first_two_bytes() {
        let mut q = encode("c1").unwrap();
        q[..2].copy_from_slice(&0x1234u16.to_be_bytes());
        let m = Message::from_vec(&q).unwrap();
        assert_eq!(m.id(), 0x1234);
        assert_eq!(m.queries()[0].query_type(), RecordType::A);
        assert_eq!(m.queries()[0].name().to_ascii(), "c1.");
        // A query is no answer.
        assert_eq!(verdict(&q), None);
    }

    #[test]
    fn only_noerror_with_records_counts_as_answered() {
        let mut m = Message::from_vec(&encode("c1").unwrap()).unwrap();
        m.set_id(7).set_message_type(MessageType::Response);
        assert_eq!(verdict(&m.to_vec().unwrap()), Some((7, false)));
        let record = hickory_proto::rr::Record::from_rdata(
            Name::from_ascii("c1.").unwrap(),
            60,
            hickory_proto::rr::RData::A("10.0.0.2".parse::<std::net::Ipv4Addr>().unwrap().into()),
        );
        m.add_answer(record);
        assert_eq!(verdict(&m.to_vec().unwrap()), Some((7, true)));
        m.set_response_code(ResponseCode::NXDomain);
        assert_eq!(verdict(&m.to_vec().unwrap()), Some((7, false)));
        assert_eq!(verdict(b"\x00\x01garbage"), None);
    }

    #[test]
    fn per_second_counts_answers_only() {
        let load = Load {
            answered: 500,
            wrong: 100,
            lost: 10,
            elapsed: Duration::from_millis(250),
        };
        assert_eq!(load.per_second(), 2000.0);
        assert_eq!(Load::default().per_second(), 0.0);
    }
}
