//! `ctnet-probe`: a tiny TCP/UDP responder and client for checking container networking.
//!
//! `ctnet-probe serve --tcp 80 --udp 53` answers every TCP connection and UDP datagram
//! with the source address it saw (`from 10.0.0.2:41234`, `from [fd00::2]:41234`), which
//! is how tests (and people) check masquerade and port publishing. Without `--bind` it
//! listens on both families (one `::` socket that also takes IPv4, whose peers are shown
//! as plain IPv4 addresses); `--bind` takes an address of either family (`::`,
//! `2001:db8::10`, `10.0.0.1`). `ctnet-probe tcp|udp ADDR:PORT` (`[V6]:PORT` for IPv6)
//! sends one message and prints the answer, failing on timeout. The server stops by itself
//! after `--max-seconds` so a forgotten one never lingers. `--join GROUP` makes its UDP
//! sockets members of an IPv4 multicast group; a client sending to a group address
//! prints every answer that arrives within its timeout, one line per member.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn usage() -> ExitCode {
    eprintln!(
        "usage:\n  ctnet-probe serve [--bind ADDR] [--tcp PORT]... [--udp PORT]... [--join GROUP] [--max-seconds N]\n  \
         ctnet-probe tcp|udp ADDR:PORT|[V6ADDR]:PORT [--timeout SECONDS] [--message TEXT]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => serve(&args[1..]),
        Some(proto @ ("tcp" | "udp")) if args.len() >= 2 => client(proto, &args[1..]),
        _ => usage(),
    }
}

fn flag_values<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
    args.windows(2)
        .filter(|w| w[0] == flag)
        .map(|w| w[1].as_str())
        .collect()
}

/// Binds with `bind` to `ip`, or without an address to `::` (both families), falling
/// back to `0.0.0.0` where the kernel has no IPv6.
fn bind_socket<S>(
    ip: Option<IpAddr>,
    port: u16,
    bind: impl Fn(SocketAddr) -> std::io::Result<S>,
) -> std::io::Result<S> {
    match ip {
        Some(ip) => bind(SocketAddr::new(ip, port)),
        None => bind(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port))
            .or_else(|_| bind(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port))),
    }
}

/// A peer as people write it: an IPv4 client of a dual-stack socket (`::ffff:10.0.0.2`)
/// as plain IPv4.
fn shown(peer: SocketAddr) -> SocketAddr {
    SocketAddr::new(peer.ip().to_canonical(), peer.port())
}

fn serve(args: &[String]) -> ExitCode {
    let bind = match flag_values(args, "--bind").first() {
        None => None,
        Some(text) => match text
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            Ok(ip) => Some(ip),
            Err(_) => {
                eprintln!("ctnet-probe: --bind {text:?} is not an IPv4 or IPv6 address");
                return ExitCode::from(2);
            }
        },
    };
    let shown_bind = bind.map_or("*".to_string(), |ip| ip.to_string());
    let max_seconds: u64 = flag_values(args, "--max-seconds")
        .first()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let ports = |flag: &str| -> Option<Vec<u16>> {
        flag_values(args, flag)
            .iter()
            .map(|p| p.parse().ok())
            .collect()
    };
    let (Some(tcp_ports), Some(udp_ports)) = (ports("--tcp"), ports("--udp")) else {
        eprintln!("ctnet-probe: a port is a number from 0 to 65535");
        return ExitCode::from(2);
    };
    let mut handles = Vec::new();
    for port in tcp_ports {
        let listener = match bind_socket(bind, port, TcpListener::bind) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("ctnet-probe: tcp {shown_bind} port {port}: {e}");
                return ExitCode::FAILURE;
            }
        };
        handles.push(std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || answer_tcp(stream));
            }
        }));
    }
    let groups: Vec<Ipv4Addr> = match flag_values(args, "--join")
        .iter()
        .map(|g| g.parse::<Ipv4Addr>().ok().filter(Ipv4Addr::is_multicast))
        .collect::<Option<_>>()
    {
        Some(groups) => groups,
        None => {
            eprintln!("ctnet-probe: --join takes an IPv4 multicast group, e.g. 239.1.2.3");
            return ExitCode::from(2);
        }
    };
    // IPv4 groups are joined on an IPv4 socket.
    let udp_bind = match bind {
        None if !groups.is_empty() => Some(Ipv4Addr::UNSPECIFIED.into()),
        other => other,
    };
    for port in udp_ports {
        let socket = match bind_socket(udp_bind, port, UdpSocket::bind) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("ctnet-probe: udp {shown_bind} port {port}: {e}");
                return ExitCode::FAILURE;
            }
        };
        for group in &groups {
            if let Err(e) = socket.join_multicast_v4(group, &Ipv4Addr::UNSPECIFIED) {
                eprintln!("ctnet-probe: udp {shown_bind} port {port}: joining {group}: {e}");
                return ExitCode::FAILURE;
            }
        }
        handles.push(std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while let Ok((n, peer)) = socket.recv_from(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]);
                let _ = socket.send_to(
                    format!("from {} {}", shown(peer), text.trim()).as_bytes(),
                    peer,
                );
            }
        }));
    }
    if handles.is_empty() {
        return usage();
    }
    println!("ready");
    let _ = std::io::stdout().flush();
    std::thread::sleep(Duration::from_secs(max_seconds));
    ExitCode::SUCCESS
}

fn answer_tcp(mut stream: TcpStream) {
    let peer = stream
        .peer_addr()
        .map(|p| shown(p).to_string())
        .unwrap_or_default();
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = [0u8; 2048];
    let n = stream.read(&mut buf).unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]);
    let _ = stream.write_all(format!("from {peer} {}\n", text.trim()).as_bytes());
}

fn client(proto: &str, args: &[String]) -> ExitCode {
    let target: SocketAddr = match args[0].parse() {
        Ok(t) => t,
        Err(_) => {
            eprintln!(
                "ctnet-probe: {:?} is not ADDR:PORT (IPv6: [ADDR]:PORT)",
                args[0]
            );
            return ExitCode::from(2);
        }
    };
    let timeout = flag_values(args, "--timeout")
        .first()
        .and_then(|s| s.parse::<f64>().ok())
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(3));
    let message = flag_values(args, "--message")
        .first()
        .copied()
        .unwrap_or("ping")
        .to_string();
    let result = if proto == "tcp" {
        tcp_exchange(target, &message, timeout)
    } else if target.ip().is_multicast() {
        udp_group_exchange(target, &message, timeout)
    } else {
        udp_exchange(target, &message, timeout)
    };
    match result {
        Ok(reply) => {
            println!("{}", reply.trim());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ctnet-probe: {proto} {target}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn tcp_exchange(target: SocketAddr, message: &str, timeout: Duration) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&target, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.write_all(message.as_bytes())?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    if reply.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed without an answer",
        ));
    }
    Ok(reply)
}

/// Sends to a multicast group and gathers the answers of its members until the timeout:
/// one line per member, sorted. Sends again every half second (the first datagrams may
/// be lost before ARP settles); a member that answers twice is listed once.
fn udp_group_exchange(
    target: SocketAddr,
    message: &str,
    timeout: Duration,
) -> std::io::Result<String> {
    let socket = UdpSocket::bind(any_port_for(target))?;
    let deadline = Instant::now() + timeout;
    let mut answers = std::collections::BTreeMap::new();
    let mut buf = [0u8; 2048];
    let mut next_send = Instant::now();
    while Instant::now() < deadline {
        if Instant::now() >= next_send {
            socket.send_to(message.as_bytes(), target)?;
            next_send = Instant::now() + Duration::from_millis(500);
        }
        let left = deadline
            .min(next_send)
            .saturating_duration_since(Instant::now());
        socket.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
        match socket.recv_from(&mut buf) {
            Ok((n, member)) => {
                let text = String::from_utf8_lossy(&buf[..n]).trim().to_string();
                answers.entry(member.ip()).or_insert(text);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
    }
    if answers.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "no member of the group answered",
        ));
    }
    Ok(answers
        .iter()
        .map(|(member, text)| format!("{member}: {text}"))
        .collect::<Vec<_>>()
        .join("\n"))
}

/// The wildcard address of `target`'s family, port 0: where a client socket binds.
fn any_port_for(target: SocketAddr) -> SocketAddr {
    let any: IpAddr = match target {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    SocketAddr::new(any, 0)
}

fn udp_exchange(target: SocketAddr, message: &str, timeout: Duration) -> std::io::Result<String> {
    let socket = UdpSocket::bind(any_port_for(target))?;
    socket.connect(target)?;
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 2048];
    // UDP may be lost before ARP settles: resend a few times within the timeout.
    while Instant::now() < deadline {
        socket.send(message.as_bytes())?;
        let left = deadline
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(500));
        socket.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
        match socket.recv(&mut buf) {
            Ok(n) => return Ok(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "no answer",
    ))
}
