//! Choosing host ports for `-p`: every request resolved to single-port mappings, checked
//! against every port already published and every port a host program listens on, with
//! free ports picked where none was given.
//!
//! Pure: the caller reads what is taken (inside the transaction that records the
//! choice) and what host programs listen on (before it).
//!
//! Linear: what is taken is read once into one bit per port and protocol ([`PortBook`]),
//! and each automatic port is picked by a cursor that only moves forward, so `-p 1-2000`
//! is a couple of passes over 65,536 bits instead of 2,000 scans of the range, each
//! comparing every candidate with every port taken and chosen so far (cubic: `-p 1-2000`
//! took 0.57 s, `-p 1-4000` 4.4 s, `-p 1-65535` about an hour, all inside the write
//! transaction that every other attach waits for).

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::RangeInclusive;

use crate::error::{Error, ErrorKind, Result};
use crate::model::ports::{host_ip_text, Holder, PortSpec, Protocol, PublishedPort};

/// The most single-port mappings one attach may publish. Each is a row in the state
/// database and, per family, an element of ctnet's nftables maps, written while the
/// container is set up; 4,096 are written in well under a second. Docker accepts any
/// range but starts one proxy process per port (and is known to take minutes for a few
/// thousand); a container that needs more ports than this is better served by
/// `--network host`.
pub const MAX_PORTS_PER_ENDPOINT: u32 = 4096;

/// One bit per port number.
struct Bits(Box<[u64; 1024]>);

impl Bits {
    fn new() -> Self {
        Bits(Box::new([0; 1024]))
    }

    fn get(&self, port: u16) -> bool {
        self.0[usize::from(port / 64)] & (1 << (port % 64)) != 0
    }

    fn set(&mut self, port: u16) {
        self.0[usize::from(port / 64)] |= 1 << (port % 64);
    }
}

/// The host ports of one protocol that are taken: on every address, and per address.
struct Book {
    /// Taken on every host address (published without HOST_IP, a wildcard listener).
    any: Bits,
    /// Taken on at least one particular address.
    some: Bits,
    /// Taken on each particular address.
    by_ip: HashMap<IpAddr, Bits>,
}

impl Book {
    fn new() -> Self {
        Book {
            any: Bits::new(),
            some: Bits::new(),
            by_ip: HashMap::new(),
        }
    }

    /// Would a port on `ip` (None: every address) catch packets a taken one catches?
    /// The same rule as [`PublishedPort::clashes_with`].
    fn is_free(&self, ip: Option<IpAddr>, port: u16) -> bool {
        if self.any.get(port) {
            return false;
        }
        match ip {
            None => !self.some.get(port),
            Some(ip) => self.by_ip.get(&ip).is_none_or(|bits| !bits.get(port)),
        }
    }

    fn take(&mut self, ip: Option<IpAddr>, port: u16) {
        match ip {
            None => self.any.set(port),
            Some(ip) => {
                self.some.set(port);
                self.by_ip.entry(ip).or_insert_with(Bits::new).set(port);
            }
        }
    }
}

/// What is taken, for both protocols.
struct PortBook {
    tcp: Book,
    udp: Book,
}

impl PortBook {
    fn new<'a>(taken: impl IntoIterator<Item = &'a PublishedPort>) -> Self {
        let mut book = PortBook {
            tcp: Book::new(),
            udp: Book::new(),
        };
        for port in taken {
            book.of(port.protocol).take(port.host_ip, port.host_port);
        }
        book
    }

    fn of(&mut self, protocol: Protocol) -> &mut Book {
        match protocol {
            Protocol::Tcp => &mut self.tcp,
            Protocol::Udp => &mut self.udp,
        }
    }
}

/// How many single-port mappings `specs` ask for.
pub fn mapping_count(specs: &[PortSpec]) -> u32 {
    specs.iter().map(|s| s.container.count()).sum()
}

/// Turns specs into single-port mappings, choosing free host ports where none (or a range
/// for one container port) was given. `published` is every port already published;
/// `listening` every port a host program receives on (a TCP listener, a bound UDP
/// socket): an explicit host port there is refused, since its traffic would go to the
/// container from then on, and automatic ports skip them. `automatic` is where automatic
/// ports come from (the kernel's ephemeral range).
pub fn resolve(
    specs: &[PortSpec],
    published: &[Holder],
    listening: &[Holder],
    automatic: RangeInclusive<u16>,
) -> Result<Vec<PublishedPort>> {
    check_count(specs)?;
    let mut book = PortBook::new(published.iter().chain(listening).map(|h| &h.port));
    let mut out: Vec<PublishedPort> = Vec::new();
    for spec in specs {
        let book = book.of(spec.protocol);
        let mapping = |host_port: u16, container_port: u16| PublishedPort {
            host_ip: spec.host_ip,
            host_port,
            container_port,
            protocol: spec.protocol,
        };
        match spec.host {
            Some(host) if host.count() == spec.container.count() => {
                for (h, c) in host.ports().zip(spec.container.ports()) {
                    let wanted = mapping(h, c);
                    if !book.is_free(wanted.host_ip, h) {
                        return Err(explain_clash(&wanted, published, listening));
                    }
                    book.take(wanted.host_ip, h);
                    out.push(wanted);
                }
            }
            Some(host) => {
                // One container port and a host range: the first free port of the range.
                let port = host
                    .ports()
                    .find(|p| book.is_free(spec.host_ip, *p))
                    .ok_or_else(|| {
                        exhausted(
                            &format!("host ports {host}"),
                            "free some, or widen the range",
                        )
                    })?;
                book.take(spec.host_ip, port);
                out.push(mapping(port, spec.container.first()));
            }
            None => {
                // The cursor only moves forward: every port behind it is taken.
                let mut candidates = automatic.clone();
                for c in spec.container.ports() {
                    let port = candidates
                        .find(|p| book.is_free(spec.host_ip, *p))
                        .ok_or_else(|| {
                            exhausted(
                                &format!(
                                    "the automatic host port range {}-{}",
                                    automatic.start(),
                                    automatic.end()
                                ),
                                "publish fewer ports, or give host ports explicitly",
                            )
                        })?;
                    book.take(spec.host_ip, port);
                    out.push(mapping(port, c));
                }
            }
        }
    }
    Ok(out)
}

/// Refuses a request for more than [`MAX_PORTS_PER_ENDPOINT`] mappings before any work.
pub fn check_count(specs: &[PortSpec]) -> Result<()> {
    let count = mapping_count(specs);
    if count <= MAX_PORTS_PER_ENDPOINT {
        return Ok(());
    }
    let asked: Vec<String> = specs
        .iter()
        .filter(|s| s.container.count() > 1)
        .map(|s| format!("{}/{}", s.container, s.protocol))
        .collect();
    Err(Error::invalid(
        format!("published ports {}", asked.join(", ")),
        format!(
            "ask for {count} ports; one container publishes at most {MAX_PORTS_PER_ENDPOINT}"
        ),
        format!(
            "publish at most {MAX_PORTS_PER_ENDPOINT} ports, or give the container the host's network (`--network host`) if it serves that many"
        ),
    ))
}

/// The error for a host port that is taken: by whom. Only called once a clash is known,
/// so the holders are searched only then.
fn explain_clash(wanted: &PublishedPort, published: &[Holder], listening: &[Holder]) -> Error {
    let ip = host_ip_text(wanted.host_ip);
    let object = format!("host port {ip}:{}/{}", wanted.host_port, wanted.protocol);
    if let Some(h) = published.iter().find(|h| h.port.clashes_with(wanted)) {
        return Error::new(
            ErrorKind::Conflict,
            object,
            format!("is already published by {}", h.holder),
            "choose another host port, or leave it out to get a free one",
        );
    }
    if let Some(h) = listening.iter().find(|h| h.port.clashes_with(wanted)) {
        return Error::new(
            ErrorKind::Conflict,
            object,
            format!(
                "is in use on this host: {}; publishing it would send that program's traffic from outside to the container",
                h.holder
            ),
            "choose another host port, leave it out to get a free one, or stop that program first",
        );
    }
    Error::new(
        ErrorKind::Conflict,
        object,
        "is asked for twice by this request",
        "give each -p its own host port",
    )
}

fn exhausted(what: &str, fix: &str) -> Error {
    Error::new(ErrorKind::Exhausted, what, "has no free port left", fix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> PortSpec {
        text.parse().unwrap()
    }

    fn holder(ip: Option<&str>, port: u16, protocol: Protocol, who: &str) -> Holder {
        Holder {
            port: PublishedPort {
                host_ip: ip.map(|ip| ip.parse().unwrap()),
                host_port: port,
                container_port: 80,
                protocol,
            },
            holder: who.into(),
        }
    }

    fn ports(got: &[PublishedPort]) -> Vec<u16> {
        got.iter().map(|p| p.host_port).collect()
    }

    #[test]
    fn clashes_name_the_holder_and_ranges_pick_free_ports() {
        let taken = vec![holder(None, 8080, Protocol::Tcp, "container \"web\"")];
        let err = resolve(&[spec("127.0.0.1:8080:81")], &taken, &[], 1000..=1001).unwrap_err();
        assert!(err.to_string().contains("container \"web\""), "{err}");
        // UDP on the same number is another port.
        assert!(resolve(&[spec("8080:80/udp")], &taken, &[], 1000..=1001).is_ok());
        let got = resolve(&[spec("8080-8082:80")], &taken, &[], 1000..=1001).unwrap();
        assert_eq!(got[0].host_port, 8081);
        let auto = resolve(&[spec("80-81")], &taken, &[], 1000..=1001).unwrap();
        assert_eq!(ports(&auto), vec![1000, 1001]);
        assert!(resolve(&[spec("80-82")], &taken, &[], 1000..=1001).is_err());
        let twice = resolve(&[spec("9000:80"), spec("9000:81")], &[], &[], 1..=2).unwrap_err();
        assert!(twice.to_string().contains("twice"), "{twice}");
    }

    #[test]
    fn addresses_clash_as_packets_would() {
        let taken = vec![holder(Some("10.0.0.1"), 8080, Protocol::Tcp, "a")];
        // Another address on the same port is another port; every address is not.
        assert!(resolve(&[spec("10.0.0.2:8080:80")], &taken, &[], 1..=2).is_ok());
        assert!(resolve(&[spec("10.0.0.1:8080:80")], &taken, &[], 1..=2).is_err());
        assert!(resolve(&[spec("8080:80")], &taken, &[], 1..=2).is_err());
        // A port on every address blocks each address.
        let any = vec![holder(None, 8080, Protocol::Tcp, "b")];
        assert!(resolve(&[spec("10.0.0.2:8080:80")], &any, &[], 1..=2).is_err());
        // Automatic ports on one address skip only that address's taken ports.
        let auto = resolve(&[spec("10.0.0.1::80")], &taken, &[], 8080..=8081).unwrap();
        assert_eq!(ports(&auto), vec![8081]);
        let auto = resolve(&[spec("10.0.0.2::80")], &taken, &[], 8080..=8081).unwrap();
        assert_eq!(ports(&auto), vec![8080]);
    }

    #[test]
    fn a_host_listener_is_refused_by_name_and_skipped_by_automatic_ports() {
        let listening = vec![
            holder(
                None,
                8500,
                Protocol::Tcp,
                "pid 42 (nc), listening on 0.0.0.0:8500",
            ),
            holder(Some("127.0.0.1"), 5300, Protocol::Udp, "pid 7 (dnsd)"),
        ];
        let err = resolve(&[spec("8500:80")], &[], &listening, 1..=2).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Conflict);
        assert!(err.to_string().contains("pid 42 (nc)"), "{err}");
        assert!(resolve(&[spec("5300:53/udp")], &[], &listening, 1..=2).is_err());
        assert!(resolve(&[spec("10.0.0.1:5300:53/udp")], &[], &listening, 1..=2).is_ok());
        assert!(resolve(&[spec("5300:53")], &[], &listening, 1..=2).is_ok());
        let auto = resolve(&[spec("80-81")], &[], &listening, 8499..=8501).unwrap();
        assert_eq!(ports(&auto), vec![8499, 8501]);
    }

    #[test]
    fn a_large_automatic_range_is_chosen_in_order_around_what_is_taken() {
        // Every other port of the automatic range is taken.
        let taken: Vec<Holder> = (0..2000u16)
            .map(|i| holder(None, 30000 + 2 * i, Protocol::Tcp, "x"))
            .collect();
        let got = resolve(&[spec("1-2000")], &taken, &[], 30000..=40000).unwrap();
        assert_eq!(got.len(), 2000);
        assert!(got
            .iter()
            .enumerate()
            .all(|(i, p)| p.host_port == 30001 + 2 * i as u16 && p.container_port == 1 + i as u16));
        // The cap is a clear refusal naming the count and the limit.
        let all = resolve(&[spec("1-65535")], &[], &[], 1..=65535).unwrap_err();
        let text = all.to_string();
        assert!(
            text.contains("65535 ports") && text.contains("4096"),
            "{text}"
        );
        assert!(resolve(&[spec("1-4096")], &[], &[], 1..=65535).is_ok());
        assert!(resolve(&[spec("1-4096"), spec("5000")], &[], &[], 1..=65535).is_err());
        // An automatic range larger than what is free says so.
        let full = resolve(&[spec("1-10")], &[], &[], 100..=108).unwrap_err();
        assert_eq!(full.kind, ErrorKind::Exhausted);
        assert!(full.to_string().contains("100-108"), "{full}");
    }
}
