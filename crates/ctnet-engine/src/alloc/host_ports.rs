//! Choosing host ports for `-p`: every request resolved to single-port mappings, checked
//! against every port already published, with free ports picked where none was given.
//!
//! Pure: the caller reads what is taken inside the transaction that records the choice.

use std::ops::RangeInclusive;

use crate::error::{Error, ErrorKind, Result};
use crate::model::ports::{host_ip_text, Holder, PortSpec, PublishedPort};

/// Turns specs into single-port mappings, choosing free host ports where none (or a range
/// for one container port) was given. `taken` is every port already published;
/// `automatic` is where automatic ports come from (the kernel's ephemeral range).
pub fn resolve(
    specs: &[PortSpec],
    taken: &[Holder],
    automatic: RangeInclusive<u16>,
) -> Result<Vec<PublishedPort>> {
    let mut out: Vec<PublishedPort> = Vec::new();
    for spec in specs {
        let free = |port: u16, out: &[PublishedPort]| {
            let candidate = PublishedPort {
                host_ip: spec.host_ip,
                host_port: port,
                container_port: 0,
                protocol: spec.protocol,
            };
            taken.iter().all(|h| !h.port.clashes_with(&candidate))
                && out.iter().all(|p| !p.clashes_with(&candidate))
        };
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
                    if let Some(h) = taken.iter().find(|t| t.port.clashes_with(&wanted)) {
                        return Err(clash(&wanted, &h.holder));
                    }
                    if out.iter().any(|p| p.clashes_with(&wanted)) {
                        return Err(clash(&wanted, "another -p of this request"));
                    }
                    out.push(wanted);
                }
            }
            Some(host) => {
                // One container port and a host range: the first free port of the range.
                let port = host.ports().find(|p| free(*p, &out)).ok_or_else(|| {
                    exhausted(
                        &format!("host ports {host}"),
                        "free some, or widen the range",
                    )
                })?;
                out.push(mapping(port, spec.container.first()));
            }
            None => {
                for c in spec.container.ports() {
                    let port = automatic.clone().find(|p| free(*p, &out)).ok_or_else(|| {
                        exhausted(
                            "the automatic host port range",
                            "give host ports explicitly",
                        )
                    })?;
                    out.push(mapping(port, c));
                }
            }
        }
    }
    Ok(out)
}

fn clash(wanted: &PublishedPort, holder: &str) -> Error {
    let ip = host_ip_text(wanted.host_ip);
    Error::new(
        ErrorKind::Conflict,
        format!("host port {ip}:{}/{}", wanted.host_port, wanted.protocol),
        format!("is already published by {holder}"),
        "choose another host port, or leave it out to get a free one",
    )
}

fn exhausted(what: &str, fix: &str) -> Error {
    Error::new(ErrorKind::Exhausted, what, "has no free port left", fix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ports::Protocol;

    fn spec(text: &str) -> PortSpec {
        text.parse().unwrap()
    }

    #[test]
    fn clashes_name_the_holder_and_ranges_pick_free_ports() {
        let taken = vec![Holder {
            port: PublishedPort {
                host_ip: None,
                host_port: 8080,
                container_port: 80,
                protocol: Protocol::Tcp,
            },
            holder: "container \"web\"".into(),
        }];
        let err = resolve(&[spec("127.0.0.1:8080:81")], &taken, 1000..=1001).unwrap_err();
        assert!(err.to_string().contains("container \"web\""), "{err}");
        // UDP on the same number is another port.
        assert!(resolve(&[spec("8080:80/udp")], &taken, 1000..=1001).is_ok());
        let got = resolve(&[spec("8080-8082:80")], &taken, 1000..=1001).unwrap();
        assert_eq!(got[0].host_port, 8081);
        let auto = resolve(&[spec("80-81")], &taken, 1000..=1001).unwrap();
        assert_eq!(
            auto.iter().map(|p| p.host_port).collect::<Vec<_>>(),
            vec![1000, 1001]
        );
        assert!(resolve(&[spec("80-82")], &taken, 1000..=1001).is_err());
        assert!(resolve(&[spec("9000:80"), spec("9000:81")], &[], 1..=2).is_err());
    }
}
