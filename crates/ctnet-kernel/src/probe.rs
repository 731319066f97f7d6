//! The probe `ctnet trace` sends: one real TCP SYN, UDP datagram or ICMP echo, from a
//! socket made inside the sender's namespace.
//!
//! ```text
//!  sender's namespace (a thread enters it)      this process, host namespace
//!  ├─ source: the address the kernel picks       │
//!  │  for the destination (a connected UDP       │
//!  │  socket sends nothing)                      │
//!  ├─ socket bound to source:0 ─ port known ───▶ follow source . destination . proto
//!  └─ (the socket stays in that namespace)       │
//!                                  fire(): connect / send / echo, wait for the answer
//!                                  close: TCP with RST (SO_LINGER 0), nothing lingers
//! ```
//!
//! The source port (or ICMP echo id) is the kernel's, known before anything is sent,
//! so the trace events of exactly this probe can be told from others of the same flow.

use std::io;
use std::mem::size_of;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// The probe's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// A TCP SYN (a connect).
    Tcp,
    /// A UDP datagram.
    Udp,
    /// An ICMP (or ICMPv6) echo request.
    Icmp,
}

impl Protocol {
    /// The IP protocol number of the probe to `destination`.
    pub fn number(self, destination: IpAddr) -> u8 {
        match (self, destination) {
            (Protocol::Tcp, _) => libc::IPPROTO_TCP as u8,
            (Protocol::Udp, _) => libc::IPPROTO_UDP as u8,
            (Protocol::Icmp, IpAddr::V4(_)) => libc::IPPROTO_ICMP as u8,
            (Protocol::Icmp, IpAddr::V6(_)) => libc::IPPROTO_ICMPV6 as u8,
        }
    }

    /// `tcp`, `udp` or `icmp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Icmp => "icmp",
        }
    }
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// TCP: the SYN was answered with SYN-ACK.
    Connected,
    /// UDP: a datagram came back; ICMP: an echo reply.
    Replied,
    /// TCP: RST; UDP: ICMP port unreachable. Something answered, nothing listens.
    Refused,
    /// An ICMP error came back (host or network unreachable, …), in words.
    Unreachable(String),
    /// Nothing within the wait.
    NoAnswer,
}

/// A probe ready to be sent: its socket (in the sender's namespace), its addresses, and
/// the port or echo id that tells its packets from others.
#[derive(Debug)]
pub struct Probe {
    /// The protocol.
    pub protocol: Protocol,
    /// The source address and port (the echo id for ICMP).
    pub source: SocketAddr,
    /// The destination address and port (0 for ICMP).
    pub destination: SocketAddr,
    socket: OwnedFd,
}

/// The source address the kernel of the calling thread's namespace picks for
/// `destination`, or the error that says it has no route.
fn source_for(destination: SocketAddr) -> io::Result<IpAddr> {
    let any: SocketAddr = match destination {
        SocketAddr::V4(_) => "0.0.0.0:0".parse().expect("literal"),
        SocketAddr::V6(_) => "[::]:0".parse().expect("literal"),
    };
    let socket = UdpSocket::bind(any)?;
    let mut target = destination;
    if target.port() == 0 {
        target.set_port(9);
    }
    socket.connect(target)?;
    Ok(socket.local_addr()?.ip())
}

/// Makes the probe's socket in the calling thread's namespace, bound to `source` (or the
/// address the kernel picks). Sends nothing.
pub fn prepare(
    protocol: Protocol,
    source: Option<IpAddr>,
    destination: SocketAddr,
) -> io::Result<Probe> {
    let src_ip = match source {
        Some(ip) => ip,
        None => source_for(destination)?,
    };
    let (domain, kind, proto) = match (protocol, destination.ip()) {
        (Protocol::Tcp, ip) => (domain_of(ip), libc::SOCK_STREAM, 0),
        (Protocol::Udp, ip) => (domain_of(ip), libc::SOCK_DGRAM, 0),
        (Protocol::Icmp, IpAddr::V4(_)) => (libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP),
        (Protocol::Icmp, IpAddr::V6(_)) => (libc::AF_INET6, libc::SOCK_RAW, libc::IPPROTO_ICMPV6),
    };
    let socket = new_socket(
        domain,
        kind | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        proto,
    )?;
    bind(socket.as_raw_fd(), SocketAddr::new(src_ip, 0))?;
    let bound = local_addr(socket.as_raw_fd())?;
    let source = match protocol {
        Protocol::Icmp => SocketAddr::new(bound.ip(), echo_id()),
        _ => bound,
    };
    Ok(Probe {
        protocol,
        source,
        destination,
        socket,
    })
}

impl Probe {
    /// Sends the probe and waits up to `wait` for what comes back; `stop` is asked every
    /// few milliseconds whether the wait can end early (the trace saw it dropped).
    pub fn fire(&self, wait: Duration, stop: &mut dyn FnMut() -> bool) -> io::Result<Answer> {
        let deadline = Instant::now() + wait;
        match self.protocol {
            Protocol::Tcp => self.fire_tcp(deadline, stop),
            Protocol::Udp => self.fire_udp(deadline, stop),
            Protocol::Icmp => self.fire_icmp(deadline, stop),
        }
    }

    fn fire_tcp(&self, deadline: Instant, stop: &mut dyn FnMut() -> bool) -> io::Result<Answer> {
        let fd = self.socket.as_raw_fd();
        match connect(fd, self.destination) {
            Ok(()) => return Ok(Answer::Connected),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Ok(error_answer(&e)),
        }
        if !wait_for(fd, libc::POLLOUT, deadline, stop)? {
            return Ok(Answer::NoAnswer);
        }
        match socket_error(fd)? {
            0 => Ok(Answer::Connected),
            code => Ok(error_answer(&io::Error::from_raw_os_error(code))),
        }
    }

    fn fire_udp(&self, deadline: Instant, stop: &mut dyn FnMut() -> bool) -> io::Result<Answer> {
        let fd = self.socket.as_raw_fd();
        connect(fd, self.destination)?;
        if let Err(e) = send(fd, b"ctnet trace probe\n") {
            return Ok(error_answer(&e));
        }
        if !wait_for(fd, libc::POLLIN, deadline, stop)? {
            return Ok(Answer::NoAnswer);
        }
        let mut buf = [0u8; 512];
        match receive(fd, &mut buf) {
            Ok(_) => Ok(Answer::Replied),
            Err(e) => Ok(error_answer(&e)),
        }
    }

    fn fire_icmp(&self, deadline: Instant, stop: &mut dyn FnMut() -> bool) -> io::Result<Answer> {
        let fd = self.socket.as_raw_fd();
        let v6 = self.destination.is_ipv6();
        let id = self.source.port();
        let request = echo_request(v6, id, 1);
        if let Err(e) = send_to(fd, &request, SocketAddr::new(self.destination.ip(), 0)) {
            return Ok(error_answer(&e));
        }
        let mut buf = [0u8; 1500];
        loop {
            if !wait_for(fd, libc::POLLIN, deadline, stop)? {
                return Ok(Answer::NoAnswer);
            }
            let n = match receive(fd, &mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Ok(error_answer(&e)),
            };
            if let Some(answer) = echo_answer(v6, &buf[..n], id) {
                return Ok(answer);
            }
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        if self.protocol == Protocol::Tcp {
            // A reset, not a FIN exchange: nothing of the probe goes on after the trace
            // (no FIN_WAIT, no late packets for conntrack to pick up again).
            let linger = libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            // SAFETY: the fd is ours and open; `linger` is a valid, initialised struct of
            // the size passed.
            unsafe {
                libc::setsockopt(
                    self.socket.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    (&linger as *const libc::linger).cast(),
                    size_of::<libc::linger>() as libc::socklen_t,
                );
            }
        }
    }
}

/// What an error of a connect, send or receive says came back.
fn error_answer(e: &io::Error) -> Answer {
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => Answer::Refused,
        Some(libc::ETIMEDOUT) => Answer::NoAnswer,
        Some(libc::EHOSTUNREACH) => Answer::Unreachable("host unreachable".into()),
        Some(libc::ENETUNREACH) => Answer::Unreachable("network unreachable".into()),
        Some(libc::EACCES) | Some(libc::EPERM) => {
            Answer::Unreachable("administratively prohibited".into())
        }
        _ => Answer::Unreachable(e.to_string()),
    }
}

/// An echo id of this process's own.
fn echo_id() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    ((std::process::id() ^ nanos) & 0xffff) as u16 | 1
}

/// An ICMP (type 8) or ICMPv6 (type 128) echo request; the kernel fills in ICMPv6's
/// checksum itself.
pub fn echo_request(v6: bool, id: u16, seq: u16) -> Vec<u8> {
    let mut packet = vec![if v6 { 128 } else { 8 }, 0, 0, 0];
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(b"ctnet trace");
    if !v6 {
        let sum = checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    packet
}

/// The answer a received ICMP message (with its IPv4 header; ICMPv6 comes without) is
/// to the echo `id`, if it is one: an echo reply, or an error quoting the request.
pub fn echo_answer(v6: bool, datagram: &[u8], id: u16) -> Option<Answer> {
    let icmp = if v6 {
        datagram
    } else {
        let ihl = usize::from(*datagram.first()? & 0x0f) * 4;
        datagram.get(ihl..)?
    };
    let (kind, code) = (*icmp.first()?, *icmp.get(1)?);
    let own = |message: &[u8]| message.get(4..6) == Some(&id.to_be_bytes()[..]);
    let reply = if v6 { 129 } else { 0 };
    if kind == reply {
        return own(icmp).then_some(Answer::Replied);
    }
    let unreachable = if v6 { 1 } else { 3 };
    if kind != unreachable {
        return None;
    }
    // The quoted request: its IP header, then the echo header with the id.
    let quoted = icmp.get(8..)?;
    let quoted_icmp = if v6 {
        quoted.get(40..)?
    } else {
        quoted.get(usize::from(*quoted.first()? & 0x0f) * 4..)?
    };
    if !own(quoted_icmp) {
        return None;
    }
    let words = match (v6, code) {
        (false, 0) | (true, 0) => "network unreachable",
        (false, 1) | (true, 3) => "host unreachable",
        (false, 13) | (true, 1) => "administratively prohibited",
        _ => "unreachable",
    };
    Some(Answer::Unreachable(words.into()))
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Polls `fd` for `events` until the deadline, or until `stop` says to give up; true
/// when it is ready.
fn wait_for(
    fd: RawFd,
    events: libc::c_short,
    deadline: Instant,
    stop: &mut dyn FnMut() -> bool,
) -> io::Result<bool> {
    const SLICE: Duration = Duration::from_millis(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stop() {
            return Ok(false);
        }
        let mut pfd = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        let ms = left.min(SLICE).as_millis().max(1) as libc::c_int;
        // SAFETY: `pfd` is one valid pollfd and we pass a count of 1.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n > 0 {
            return Ok(true);
        }
    }
}

fn domain_of(ip: IpAddr) -> libc::c_int {
    match ip {
        IpAddr::V4(_) => libc::AF_INET,
        IpAddr::V6(_) => libc::AF_INET6,
    }
}

fn new_socket(domain: libc::c_int, kind: libc::c_int, proto: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: socket(2) takes plain integers; a non-negative result is a new fd we own.
    let fd = unsafe { libc::socket(domain, kind, proto) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2) and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A `sockaddr_storage` holding `addr`, and its length.
fn raw_addr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all zeroes is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

fn from_raw_addr(storage: &libc::sockaddr_storage) -> io::Result<SocketAddr> {
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin: &libc::sockaddr_in =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast() };
            Ok(SocketAddr::new(
                IpAddr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                u16::from_be(sin.sin_port),
            ))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6: &libc::sockaddr_in6 =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast() };
            Ok(SocketAddr::new(
                IpAddr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
            ))
        }
        _ => Err(io::Error::other("unknown socket address family")),
    }
}

fn check(result: libc::c_int) -> io::Result<()> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn bind(fd: RawFd, addr: SocketAddr) -> io::Result<()> {
    let (storage, len) = raw_addr(addr);
    // SAFETY: `storage` holds a valid address of `len` bytes; `fd` is an open socket.
    check(unsafe { libc::bind(fd, (&storage as *const libc::sockaddr_storage).cast(), len) })
}

fn connect(fd: RawFd, addr: SocketAddr) -> io::Result<()> {
    let (storage, len) = raw_addr(addr);
    // SAFETY: as in `bind`.
    check(unsafe { libc::connect(fd, (&storage as *const libc::sockaddr_storage).cast(), len) })
}

fn local_addr(fd: RawFd) -> io::Result<SocketAddr> {
    // SAFETY: all zeroes is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `storage` has room for `len` bytes, and the kernel writes at most that.
    check(unsafe {
        libc::getsockname(
            fd,
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    })?;
    from_raw_addr(&storage)
}

fn socket_error(fd: RawFd) -> io::Result<i32> {
    let mut code: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `code` is an int of the size passed, which SO_ERROR writes.
    check(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut code as *mut libc::c_int).cast(),
            &mut len,
        )
    })?;
    Ok(code)
}

fn send(fd: RawFd, data: &[u8]) -> io::Result<()> {
    // SAFETY: `data` is valid for its length.
    let n = unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn send_to(fd: RawFd, data: &[u8], addr: SocketAddr) -> io::Result<()> {
    let (storage, len) = raw_addr(addr);
    // SAFETY: `data` is valid for its length; `storage` holds an address of `len` bytes.
    let n = unsafe {
        libc::sendto(
            fd,
            data.as_ptr().cast(),
            data.len(),
            0,
            (&storage as *const libc::sockaddr_storage).cast(),
            len,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn receive(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of its length.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// Where and how to put a hand-made frame on a link: for a probe the sender's own
/// kernel would never send, a TCP SYN to 127.0.0.0/8 through the host (which it
/// delivers to its own loopback instead). It is what an attacker on the same link does
/// (the CVE-2020-8558 class), and what ctnet's loopback guard must stop.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    /// The sender's interface.
    pub ifindex: u32,
    /// Its MAC.
    pub source_mac: [u8; 6],
    /// The next hop's MAC (the host's interface on that link).
    pub destination_mac: [u8; 6],
}

/// Sends one TCP SYN from `source` to `destination` as a raw Ethernet frame on
/// `frame.ifindex` of the calling thread's namespace (AF_PACKET). Nothing can answer
/// it back to a socket, so its outcome is only what the trace saw.
pub fn inject_syn(
    frame: Frame,
    source: std::net::SocketAddrV4,
    destination: std::net::SocketAddrV4,
) -> io::Result<()> {
    let bytes = syn_frame(frame, source, destination);
    let socket = new_socket(
        libc::AF_PACKET,
        libc::SOCK_RAW | libc::SOCK_CLOEXEC,
        i32::from((libc::ETH_P_IP as u16).to_be()),
    )?;
    // SAFETY: sockaddr_ll is plain data; all zeroes is valid before the fields are set.
    let mut to: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    to.sll_family = libc::AF_PACKET as u16;
    to.sll_protocol = (libc::ETH_P_IP as u16).to_be();
    to.sll_ifindex = frame.ifindex as i32;
    to.sll_halen = 6;
    to.sll_addr[..6].copy_from_slice(&frame.destination_mac);
    // SAFETY: `bytes` is valid for its length; `to` is a sockaddr_ll of the size passed.
    let n = unsafe {
        libc::sendto(
            socket.as_raw_fd(),
            bytes.as_ptr().cast(),
            bytes.len(),
            0,
            (&to as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Ethernet, IPv4 and TCP headers of a SYN, checksums filled in.
pub fn syn_frame(
    frame: Frame,
    source: std::net::SocketAddrV4,
    destination: std::net::SocketAddrV4,
) -> Vec<u8> {
    let mut tcp = Vec::with_capacity(20);
    tcp.extend_from_slice(&source.port().to_be_bytes());
    tcp.extend_from_slice(&destination.port().to_be_bytes());
    tcp.extend_from_slice(&0x0102_0304u32.to_be_bytes()); // sequence
    tcp.extend_from_slice(&[0, 0, 0, 0]); // acknowledgement
    tcp.extend_from_slice(&[0x50, 0x02]); // 5 words, SYN
    tcp.extend_from_slice(&64240u16.to_be_bytes()); // window
    tcp.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent
    let mut pseudo = Vec::with_capacity(32);
    pseudo.extend_from_slice(&source.ip().octets());
    pseudo.extend_from_slice(&destination.ip().octets());
    pseudo.extend_from_slice(&[0, libc::IPPROTO_TCP as u8, 0, tcp.len() as u8]);
    pseudo.extend_from_slice(&tcp);
    let sum = checksum(&pseudo);
    tcp[16..18].copy_from_slice(&sum.to_be_bytes());
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&((20 + tcp.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&[0, 1, 0x40, 0, 64, libc::IPPROTO_TCP as u8, 0, 0]);
    ip.extend_from_slice(&source.ip().octets());
    ip.extend_from_slice(&destination.ip().octets());
    let sum = checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let mut out = Vec::with_capacity(14 + ip.len() + tcp.len());
    out.extend_from_slice(&frame.destination_mac);
    out.extend_from_slice(&frame.source_mac);
    out.extend_from_slice(&(libc::ETH_P_IP as u16).to_be_bytes());
    out.extend_from_slice(&ip);
    out.extend_from_slice(&tcp);
    out
}

/// SIGINT, SIGTERM, SIGHUP and SIGQUIT held (blocked) for this thread and the threads it
/// starts until dropped; one that arrived meanwhile is delivered then. For work that
/// must finish its cleanup once started (a probe's trace element and conntrack entry).
pub struct HeldSignals {
    previous: libc::sigset_t,
}

impl HeldSignals {
    /// Blocks the signals.
    pub fn hold() -> Self {
        // SAFETY: sigset_t is plain data, initialised by sigemptyset before use; the
        // pointers passed are to live locals.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut previous: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
                libc::sigaddset(&mut set, sig);
            }
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut previous);
            HeldSignals { previous }
        }
    }
}

impl HeldSignals {
    /// True when one of the held signals arrived: the work should end early.
    pub fn pending(&self) -> bool {
        // SAFETY: sigset_t is plain data, filled by sigpending before it is read.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            if libc::sigpending(&mut set) != 0 {
                return false;
            }
            [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT]
                .into_iter()
                .any(|sig| libc::sigismember(&set, sig) == 1)
        }
    }
}

impl Drop for HeldSignals {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved in `hold`, a valid sigset_t.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.previous, std::ptr::null_mut());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echo_request_has_a_valid_checksum_and_its_reply_is_recognised_by_id() {
        let request = echo_request(false, 0x1234, 1);
        assert_eq!(
            checksum(&request),
            0,
            "a packet with its checksum sums to zero"
        );
        let mut reply = vec![0x45u8; 1];
        reply.extend_from_slice(&[0; 19]);
        let mut icmp = request.clone();
        icmp[0] = 0;
        reply.extend_from_slice(&icmp);
        assert_eq!(echo_answer(false, &reply, 0x1234), Some(Answer::Replied));
        assert_eq!(
            echo_answer(false, &reply, 0x4321),
            None,
            "someone else's echo"
        );
    }

    #[test]
    fn an_unreachable_quoting_our_request_is_our_answer() {
        let request = echo_request(true, 7, 1);
        let mut error = vec![1u8, 3, 0, 0, 0, 0, 0, 0];
        error.extend_from_slice(&[0x60; 40]); // the quoted IPv6 header
        error.extend_from_slice(&request);
        assert_eq!(
            echo_answer(true, &error, 7),
            Some(Answer::Unreachable("host unreachable".into()))
        );
        assert_eq!(echo_answer(true, &error, 8), None);
    }

    #[test]
    fn a_hand_made_syn_has_valid_checksums() {
        let frame = Frame {
            ifindex: 2,
            source_mac: [2, 0, 0, 0, 0, 1],
            destination_mac: [2, 0, 0, 0, 0, 2],
        };
        let f = syn_frame(
            frame,
            "203.0.113.2:40000".parse().unwrap(),
            "127.0.0.1:8081".parse().unwrap(),
        );
        assert_eq!(&f[12..14], &[0x08, 0x00]);
        assert_eq!(checksum(&f[14..34]), 0, "IPv4 header checksum");
        let mut pseudo = f[26..34].to_vec();
        pseudo.extend_from_slice(&[0, 6, 0, 20]);
        pseudo.extend_from_slice(&f[34..]);
        assert_eq!(checksum(&pseudo), 0, "TCP checksum");
        assert_eq!(f[34 + 13], 0x02, "SYN");
    }

    #[test]
    fn errors_say_what_came_back() {
        let e = |code| error_answer(&io::Error::from_raw_os_error(code));
        assert_eq!(e(libc::ECONNREFUSED), Answer::Refused);
        assert_eq!(e(libc::ETIMEDOUT), Answer::NoAnswer);
        assert_eq!(
            e(libc::EHOSTUNREACH),
            Answer::Unreachable("host unreachable".into())
        );
    }
}
