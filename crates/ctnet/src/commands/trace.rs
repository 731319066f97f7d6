//! `ctnet trace FROM TO[:PORT][/tcp|/udp|/icmp]`: FROM and TO parsed once into the
//! engine's [`Place`]s, and the engine's [`Trace`] as numbered hops and a verdict, or
//! JSON.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use ctnet_engine::observe::trace::{Hop, Place, Protocol, Trace, TraceRequest};
use ctnet_engine::{Engine, Error, Result};
use ctnet_kernel::NetnsName;

use crate::cli::{Format, TraceArgs};
use crate::output;

pub fn trace(engine: &mut Engine, args: TraceArgs) -> Result<()> {
    let request = request(&args)?;
    let trace = engine.trace(&request)?;
    match args.format {
        Format::Json => output::json(&trace),
        Format::Table => print!("{}", render(&trace)),
    }
    Ok(())
}

fn request(args: &TraceArgs) -> Result<TraceRequest> {
    if !(args.wait.is_finite() && args.wait > 0.0 && args.wait <= 60.0) {
        return Err(Error::invalid(
            format!("--wait {}", args.wait),
            "is not a number of seconds between 0 and 60",
            "give e.g. --wait 1 or --wait 0.5",
        ));
    }
    let from = parse_place("FROM", &args.from)?;
    let (to, port, protocol) = parse_destination(&args.to)?;
    Ok(TraceRequest {
        from,
        to,
        port,
        protocol,
        wait: Duration::from_secs_f64(args.wait),
    })
}

/// A container, `host`, or an address.
fn parse_place(what: &str, text: &str) -> Result<Place> {
    if text == "host" {
        return Ok(Place::Host);
    }
    if let Ok(ip) = text
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Ok(Place::Address(ip));
    }
    if text.contains(':') || text.contains('/') {
        return Err(Error::invalid(
            format!("{what} {text:?}"),
            "is neither a container name, `host`, nor an address",
            "FROM takes no port or protocol: give e.g. `c1`, `host` or `192.0.2.10`",
        ));
    }
    NetnsName::new(text).map(Place::Container).map_err(|e| {
        Error::invalid(
            format!("{what} {text:?}"),
            e.to_string(),
            "name a container `ctnet ls` lists",
        )
    })
}

/// `TO[:PORT][/PROTO]`, with IPv6 addresses in brackets when a port follows.
fn parse_destination(text: &str) -> Result<(Place, Option<u16>, Option<Protocol>)> {
    let bad = |cause: &str| {
        Error::invalid(
            format!("TO {text:?}"),
            cause.to_string(),
            "write TO[:PORT][/tcp|/udp|/icmp], e.g. web:80/tcp, 192.0.2.1:8080, [2001:db8::1]:53/udp or c2",
        )
    };
    let (rest, protocol) = match text.rsplit_once('/') {
        Some((rest, "tcp")) => (rest, Some(Protocol::Tcp)),
        Some((rest, "udp")) => (rest, Some(Protocol::Udp)),
        Some((rest, "icmp")) => (rest, Some(Protocol::Icmp)),
        Some((_, other)) => {
            return Err(bad(&format!(
                "has protocol {other:?}: only tcp, udp and icmp are traced"
            )))
        }
        None => (text, None),
    };
    if let Ok(ip) = rest.parse::<IpAddr>() {
        return Ok((Place::Address(ip), None, protocol));
    }
    let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
        match inner.split_once(']') {
            Some((addr, "")) => (addr, None),
            Some((addr, tail)) => match tail.strip_prefix(':') {
                Some(port) => (addr, Some(port)),
                None => {
                    return Err(bad(
                        "has something after the bracketed address that is not :PORT",
                    ))
                }
            },
            None => return Err(bad("opens a bracket it does not close")),
        }
    } else {
        match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    let port = match port {
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                return Err(bad(&format!(
                    "has port {p:?}, not a number from 1 to 65535"
                )))
            }
        },
        None => None,
    };
    let place = parse_place("TO", host)?;
    Ok((place, port, protocol))
}

/// The text form.
pub fn render(t: &Trace) -> String {
    let mut out = String::new();
    let flow = if t.protocol == "icmp" {
        format!(
            "{} → {} (icmp echo, id {})",
            t.source.ip(),
            t.destination.ip(),
            t.source.port()
        )
    } else {
        format!("{} → {} ({})", t.source, t.destination, t.protocol)
    };
    let _ = writeln!(out, "trace {} → {}: {flow}", t.from, t.to);
    for (i, hop) in t.hops.iter().enumerate() {
        let _ = writeln!(out, "  {:>2}. {}", i + 1, hop_text(hop));
        if let Hop::Chain { rules, .. } = hop {
            for r in rules {
                let handle = r.handle.map_or("-".into(), |h| h.to_string());
                let comment = r
                    .comment
                    .as_deref()
                    .map(|c| format!(" \"{c}\""))
                    .unwrap_or_default();
                let _ = writeln!(out, "        rule {handle}{comment}: {}", r.verdict);
            }
        }
    }
    let v = &t.verdict;
    let at =
        v.at.as_deref()
            .map(|a| format!(" at {a}"))
            .unwrap_or_default();
    let _ = writeln!(out, "verdict: {}{at} ({:.1} ms)", v.outcome, t.elapsed_ms);
    let _ = writeln!(out, "  {}", v.why);
    out
}

fn hop_text(hop: &Hop) -> String {
    match hop {
        Hop::Sent {
            namespace,
            interface,
            source,
        } => match interface {
            Some(i) => format!("sent by {namespace} from {i} ({source})"),
            None => format!("sent by {namespace} from {source}"),
        },
        Hop::NotSent { namespace, error } => format!("{namespace} did not send it: {error}"),
        Hop::Entered {
            veth,
            bridge,
            network,
        } => format!("entered the host by {veth}, a port of bridge {bridge} (network {network})"),
        Hop::Arrived { interface } => format!("arrived at the host by {interface}"),
        Hop::Chain {
            table,
            chain,
            hook,
            verdict,
            ..
        } => {
            let hook = hook
                .as_deref()
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            format!("table {table} chain {chain}{hook}: {verdict}")
        }
        Hop::Routed {
            input,
            destination,
            kind,
            output,
            gateway,
        } => {
            let from = input
                .as_deref()
                .map(|i| format!(" from {i}"))
                .unwrap_or_default();
            let via = gateway.map(|g| format!(" via {g}")).unwrap_or_default();
            let dev = output
                .as_deref()
                .map(|o| format!(" dev {o}"))
                .unwrap_or_default();
            format!("routed{from}: {destination} {kind}{via}{dev}")
        }
        Hop::Translated { nat, from, to } => format!("{nat}: {from} → {to}"),
        Hop::Left { interface, network } => match network {
            Some(n) => format!("left by {interface} into network {n}"),
            None => format!("left by {interface}"),
        },
        Hop::Delivered { to } => format!("delivered to {to}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_parse_into_a_place_a_port_and_a_protocol() {
        let c = |n: &str| Place::Container(NetnsName::new(n).unwrap());
        let ip = |s: &str| Place::Address(s.parse().unwrap());
        assert_eq!(
            parse_destination("web:80/tcp").unwrap(),
            (c("web"), Some(80), Some(Protocol::Tcp))
        );
        assert_eq!(parse_destination("c2").unwrap(), (c("c2"), None, None));
        assert_eq!(
            parse_destination("host:8080").unwrap(),
            (Place::Host, Some(8080), None)
        );
        assert_eq!(
            parse_destination("192.0.2.1:53/udp").unwrap(),
            (ip("192.0.2.1"), Some(53), Some(Protocol::Udp))
        );
        assert_eq!(
            parse_destination("2001:db8::1").unwrap(),
            (ip("2001:db8::1"), None, None)
        );
        assert_eq!(
            parse_destination("[2001:db8::1]:443").unwrap(),
            (ip("2001:db8::1"), Some(443), None)
        );
        assert_eq!(
            parse_destination("192.0.2.1/icmp").unwrap(),
            (ip("192.0.2.1"), None, Some(Protocol::Icmp))
        );
    }

    #[test]
    fn bad_destinations_say_what_is_wrong() {
        for (text, says) in [
            ("web:80/sctp", "only tcp, udp and icmp"),
            ("web:0", "not a number from 1 to 65535"),
            ("web:http", "not a number"),
            ("[2001:db8::1:80", "does not close"),
        ] {
            let e = parse_destination(text).unwrap_err().to_string();
            assert!(e.contains(says), "{text}: {e}");
        }
        assert!(parse_place("FROM", "c1:80").is_err());
    }
}
