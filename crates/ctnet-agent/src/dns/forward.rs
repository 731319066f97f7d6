//! Forwarding what is not ours to the host's resolvers, unchanged: the client's bytes go
//! out as they came (UDP as UDP, TCP as TCP) and the upstream's answer comes back as it
//! was sent, so DNSSEC bits, EDNS options and truncation reach the client untouched.
//!
//! Upstreams come from the host's resolv.conf. When that names only systemd-resolved's
//! stub (127.0.0.53), the real upstreams are in /run/systemd/resolve/resolv.conf (Docker
//! reads the same file). Each upstream gets [`PER_UPSTREAM`]; the whole query at most
//! [`WHOLE_QUERY`], then the caller answers SERVFAIL: a client never hangs on us.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{timeout_at, Instant};

/// How long one upstream may take.
pub const PER_UPSTREAM: Duration = Duration::from_millis(1500);
/// How long a forwarded query may take in all (dig waits 5 s, glibc 5 s per server).
pub const WHOLE_QUERY: Duration = Duration::from_secs(3);

/// The host's resolv.conf.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";
/// systemd-resolved's list of the real upstreams, behind its stub.
pub const RESOLVED_CONF: &str = "/run/systemd/resolve/resolv.conf";

/// systemd-resolved's stub listeners: a resolv.conf naming only these is a pointer to
/// [`RESOLVED_CONF`].
const STUBS: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 53)),
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 54)),
];

/// The `nameserver` addresses of a resolv.conf text, port 53, in order. Lines that do
/// not parse are skipped, as glibc does; a link-local IPv6 server's `%zone` is dropped
/// (the agent cannot use a zone it does not know).
pub fn nameservers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver"))
                .then(|| words.next())
                .flatten()
        })
        .filter_map(|addr| addr.split('%').next()?.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// The upstreams to use, from the host's resolv.conf text and systemd-resolved's (when
/// the file exists).
pub fn upstreams(resolv_conf: &str, resolved: Option<&str>) -> Vec<SocketAddr> {
    let main = nameservers(resolv_conf);
    let only_stub = !main.is_empty() && main.iter().all(|s| STUBS.contains(&s.ip()));
    match resolved.map(nameservers) {
        Some(real) if only_stub && !real.is_empty() => real,
        _ => main,
    }
}

/// Reads the upstreams from the host's files.
pub fn read_upstreams() -> Vec<SocketAddr> {
    let main = std::fs::read_to_string(RESOLV_CONF).unwrap_or_default();
    let resolved = std::fs::read_to_string(RESOLVED_CONF).ok();
    upstreams(&main, resolved.as_deref())
}

/// Why a forward got no answer (for the agent's last errors).
#[derive(Debug)]
pub struct Failure(pub String);

/// Sends a UDP query to each upstream in turn; the first answer whose id matches wins.
pub async fn udp(upstreams: &[SocketAddr], query: &[u8]) -> Result<Vec<u8>, Failure> {
    let deadline = Instant::now() + WHOLE_QUERY;
    let mut why = Vec::new();
    for &upstream in upstreams {
        let until = deadline.min(Instant::now() + PER_UPSTREAM);
        match timeout_at(until, udp_one(upstream, query)).await {
            Ok(Ok(answer)) => return Ok(answer),
            Ok(Err(e)) => why.push(format!("{upstream} (udp): {e}")),
            Err(_) => why.push(format!("{upstream} (udp): no answer in time")),
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    Err(failure(why))
}

/// One UDP exchange over a fresh socket (a random source port per query, so an off-path
/// spoofer has to guess it as well as the id).
async fn udp_one(upstream: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let local: SocketAddr = match upstream {
        SocketAddr::V4(_) => "0.0.0.0:0".parse().expect("constant"),
        SocketAddr::V6(_) => "[::]:0".parse().expect("constant"),
    };
    let sock = UdpSocket::bind(local).await?;
    sock.connect(upstream).await?;
    sock.send(query).await?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = sock.recv(&mut buf).await?;
        // A stray datagram (not the answer to our id) is ignored, not relayed.
        if n >= 2 && query.len() >= 2 && buf[..2] == query[..2] {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

/// Sends a TCP query (the message without its length prefix) to each upstream in turn.
pub async fn tcp(upstreams: &[SocketAddr], query: &[u8]) -> Result<Vec<u8>, Failure> {
    let deadline = Instant::now() + WHOLE_QUERY;
    let mut why = Vec::new();
    for &upstream in upstreams {
        let until = deadline.min(Instant::now() + PER_UPSTREAM);
        match timeout_at(until, tcp_one(upstream, query)).await {
            Ok(Ok(answer)) => return Ok(answer),
            Ok(Err(e)) => why.push(format!("{upstream} (tcp): {e}")),
            Err(_) => why.push(format!("{upstream} (tcp): no answer in time")),
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    Err(failure(why))
}

async fn tcp_one(upstream: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(upstream).await?;
    write_frame(&mut stream, query).await?;
    read_frame(&mut stream).await
}

/// Reads one length-prefixed DNS message (RFC 1035 4.2.2).
pub async fn read_frame<R: AsyncReadExt + Unpin>(r: &mut R) -> std::io::Result<Vec<u8>> {
    let len = r.read_u16().await?;
    let mut buf = vec![0u8; usize::from(len)];
    r.read_exact(&mut buf).await?;
    Ok(buf)
}

/// Writes one length-prefixed DNS message.
pub async fn write_frame<W: AsyncWriteExt + Unpin>(w: &mut W, msg: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(msg.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "message over 64 KiB"))?;
    let mut frame = Vec::with_capacity(msg.len() + 2);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(msg);
    w.write_all(&frame).await
}

fn failure(why: Vec<String>) -> Failure {
    if why.is_empty() {
        Failure("no upstream resolver: the host's resolv.conf names no nameserver".into())
    } else {
        Failure(format!("upstream gave no answer: {}", why.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[SocketAddr]) -> Vec<String> {
        list.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn nameservers_in_order_with_junk_skipped() {
        let text = "# comment\nsearch example.com\nnameserver 198.51.100.53\n\
                    nameserver fe80::1%eth0\nnameserver bogus\nnameserver\n  nameserver 2001:db8::53 # x\n";
        assert_eq!(
            addrs(&nameservers(text)),
            ["198.51.100.53:53", "[fe80::1]:53", "[2001:db8::53]:53"]
        );
    }

    #[test]
    fn the_resolved_stub_is_replaced_by_its_upstreams() {
        let stub = "nameserver 127.0.0.53\noptions edns0 trust-ad\n";
        let real = "nameserver 192.0.2.1\nnameserver 192.0.2.2\n";
        assert_eq!(
            addrs(&upstreams(stub, Some(real))),
            ["192.0.2.1:53", "192.0.2.2:53"]
        );
        // Without systemd-resolved's file, the stub is still reachable from the host.
        assert_eq!(addrs(&upstreams(stub, None)), ["127.0.0.53:53"]);
        // A stub next to a real server, or another local resolver, is kept as written.
        let mixed = "nameserver 127.0.0.53\nnameserver 192.0.2.9\n";
        assert_eq!(
            addrs(&upstreams(mixed, Some(real))),
            ["127.0.0.53:53", "192.0.2.9:53"]
        );
        let local = "nameserver 127.0.0.1\n";
        assert_eq!(addrs(&upstreams(local, Some(real))), ["127.0.0.1:53"]);
    }

    #[test]
    fn no_nameserver_means_no_upstream() {
        assert!(upstreams("", None).is_empty());
        assert!(failure(vec![]).0.contains("names no nameserver"));
    }
}
