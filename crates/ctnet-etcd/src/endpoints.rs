//! etcd's client URLs as the user writes them (`http://192.0.2.1:2379,http://192.0.2.2:2379`),
//! parsed once into a list that holds only usable values, so nothing later has to check.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::Error;

/// The fix every refusal ends with unless it has a better one.
const WRITE_IT_SO: &str =
    "write etcd's client URLs as http://HOST:PORT, comma-separated, e.g. http://192.0.2.1:2379,http://192.0.2.2:2379";

/// The host part of an endpoint: an address, or a DNS name resolved at each connect.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// An IPv4 or IPv6 address (IPv6 written in brackets in the URL).
    Ip(IpAddr),
    /// A DNS name: letters, digits and hyphens in dot-separated labels.
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
            Host::Ip(IpAddr::V4(a)) => write!(f, "{a}"),
            Host::Name(n) => f.write_str(n),
        }
    }
}

/// One etcd client URL: plain HTTP to a host and a port, with no path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    host: Host,
    port: u16,
}

impl Endpoint {
    /// The host etcd listens on.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The client port (never 0).
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl fmt::Display for Endpoint {
    /// The URL as `http://HOST:PORT`, the form etcd and etcdctl take.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}:{}", self.host, self.port)
    }
}

/// A non-empty list of distinct etcd client URLs, in the order given (the order they are
/// tried in). Only [`Endpoints::parse`] makes one, so every value is usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints(Vec<Endpoint>);

impl Endpoints {
    /// Parses a comma-separated list of `http://HOST:PORT` URLs (spaces around entries
    /// allowed, a trailing `/` on a URL too). Refuses an empty list or entry, any scheme
    /// but `http` (`https` because TLS is not supported yet), a missing host or port, port
    /// 0, an unbracketed IPv6 address, user info, a path, query or fragment, and an entry
    /// given twice; the error names the text, what is wrong and how to write it.
    pub fn parse(text: &str) -> Result<Endpoints, Error> {
        let refuse = |cause: String, fix: &str| Error::BadEndpoints {
            text: text.to_string(),
            cause,
            fix: fix.to_string(),
        };
        if text.trim().is_empty() {
            return Err(refuse("no endpoint is given".into(), WRITE_IT_SO));
        }
        let mut list: Vec<Endpoint> = Vec::new();
        for entry in text.split(',').map(str::trim) {
            if entry.is_empty() {
                return Err(refuse(
                    "an entry is empty (two commas in a row, or one at an end)".into(),
                    WRITE_IT_SO,
                ));
            }
            let endpoint = parse_one(entry)
                .map_err(|(cause, fix)| refuse(format!("{entry}: {cause}"), &fix))?;
            if list.contains(&endpoint) {
                return Err(refuse(
                    format!("{endpoint} is listed twice"),
                    "give each etcd member once",
                ));
            }
            list.push(endpoint);
        }
        Ok(Endpoints(list))
    }

    /// The endpoints in the order given.
    pub fn as_slice(&self) -> &[Endpoint] {
        &self.0
    }

    /// Iterates over the endpoints in the order given.
    pub fn iter(&self) -> std::slice::Iter<'_, Endpoint> {
        self.0.iter()
    }
}

impl FromStr for Endpoints {
    type Err = Error;

    /// The same as [`Endpoints::parse`], for clap and `str::parse`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Endpoints::parse(s)
    }
}

impl fmt::Display for Endpoints {
    /// The comma-separated list, normalised (no spaces, no trailing `/`): parsing it again
    /// gives the same list.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl<'a> IntoIterator for &'a Endpoints {
    type Item = &'a Endpoint;
    type IntoIter = std::slice::Iter<'a, Endpoint>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// One entry, or (cause, fix).
fn parse_one(entry: &str) -> Result<Endpoint, (String, String)> {
    let Some((scheme, rest)) = entry.split_once("://") else {
        if entry.contains(":/") {
            return Err((
                "is not of the form http://HOST:PORT".into(),
                "write the scheme with two slashes: http://HOST:PORT".into(),
            ));
        }
        return Err((
            "has no scheme".into(),
            format!("write it as http://{entry} (and check it is HOST:PORT)"),
        ));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "http" => {}
        "https" => {
            return Err((
                "TLS is not supported yet".into(),
                "use http:// on a trusted underlay or a local etcd proxy (a TLS-terminating TCP proxy such as stunnel: etcd's own grpc-proxy does not serve the JSON API)".into(),
            ))
        }
        other => {
            return Err((
                format!("the scheme {other:?} is not etcd's"),
                format!("use http://{rest}"),
            ))
        }
    }
    if let Some(i) = rest.find(['?', '#']) {
        return Err((
            format!("has a query or fragment ({:?})", &rest[i..]),
            "etcd's client URL has none: write http://HOST:PORT".into(),
        ));
    }
    let authority = match rest.split_once('/') {
        None => rest,
        Some((authority, "")) => authority,
        Some((_, path)) => {
            return Err((
                format!("has a path (/{path})"),
                "etcd's client URL has none: write http://HOST:PORT".into(),
            ))
        }
    };
    if authority.contains('@') {
        return Err((
            "has user info (user@)".into(),
            "authentication is not supported: write http://HOST:PORT".into(),
        ));
    }
    let (host, port) = split_host_port(authority)?;
    Ok(Endpoint {
        host: parse_host(host)?,
        port: parse_port(port)?,
    })
}

/// `HOST:PORT` or `[V6]:PORT` into its two texts.
fn split_host_port(authority: &str) -> Result<(&str, &str), (String, String)> {
    let no_port = || {
        (
            "has no port".into(),
            "add etcd's client port, e.g. :2379 (etcd's default)".into(),
        )
    };
    if let Some(inner) = authority.strip_prefix('[') {
        let Some((v6, after)) = inner.split_once(']') else {
            return Err((
                "an IPv6 address's [ is not closed".into(),
                "write http://[ADDRESS]:PORT".into(),
            ));
        };
        let port = after.strip_prefix(':').ok_or_else(no_port)?;
        return Ok((authority.get(..v6.len() + 2).unwrap_or(authority), port));
    }
    let (host, port) = authority.rsplit_once(':').ok_or_else(no_port)?;
    if host.contains(':') {
        return Err((
            "an IPv6 address must be in brackets".into(),
            "write http://[ADDRESS]:PORT".into(),
        ));
    }
    Ok((host, port))
}

fn parse_host(host: &str) -> Result<Host, (String, String)> {
    if host.is_empty() {
        return Err((
            "has no host".into(),
            "write http://HOST:PORT with etcd's address or name".into(),
        ));
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6
            .parse::<Ipv6Addr>()
            .map(|a| Host::Ip(IpAddr::V6(a)))
            .map_err(|_| {
                (
                    format!("[{v6}] is not an IPv6 address"),
                    "write http://[ADDRESS]:PORT".into(),
                )
            });
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return host
            .parse::<Ipv4Addr>()
            .map(|a| Host::Ip(IpAddr::V4(a)))
            .map_err(|_| {
                (
                    format!("{host} is not an IPv4 address"),
                    "write four numbers 0-255, e.g. 192.0.2.1".into(),
                )
            });
    }
    if is_dns_name(host) {
        Ok(Host::Name(host.to_ascii_lowercase()))
    } else {
        Err((
            format!("{host:?} is neither an address nor a host name"),
            "a host name has letters, digits and hyphens in dot-separated labels".into(),
        ))
    }
}

/// RFC 1123 host name: labels of 1-63 letters, digits and hyphens, not starting or ending
/// with a hyphen, 253 characters at most.
fn is_dns_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn parse_port(port: &str) -> Result<u16, (String, String)> {
    if port.is_empty() {
        return Err((
            "has no port after the colon".into(),
            "add etcd's client port, e.g. :2379 (etcd's default)".into(),
        ));
    }
    match port.parse::<u16>() {
        Ok(0) => Err((
            "port 0 is no port".into(),
            "give etcd's client port, e.g. 2379".into(),
        )),
        Ok(p) if port.bytes().all(|b| b.is_ascii_digit()) => Ok(p),
        _ => Err((
            format!("the port {port:?} is not a number from 1 to 65535"),
            "give etcd's client port, e.g. 2379".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> String {
        match Endpoints::parse(text) {
            Ok(e) => panic!("{text:?} was accepted as {e}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn lists_parse_and_print_back() {
        let e = Endpoints::parse("http://192.0.2.1:2379, http://192.0.2.2:2379/").unwrap();
        assert_eq!(e.to_string(), "http://192.0.2.1:2379,http://192.0.2.2:2379");
        assert_eq!(e.as_slice().len(), 2);
        assert_eq!(e.as_slice()[1].port(), 2379);
        assert_eq!(Endpoints::parse(&e.to_string()).unwrap(), e);

        let v6 = Endpoints::parse("http://[2001:db8::1]:2379").unwrap();
        assert_eq!(
            v6.as_slice()[0].host(),
            &Host::Ip("2001:db8::1".parse().unwrap())
        );
        assert_eq!(v6.to_string(), "http://[2001:db8::1]:2379");

        let named = Endpoints::parse("HTTP://Etcd-1.Example.net:2379").unwrap();
        assert_eq!(named.to_string(), "http://etcd-1.example.net:2379");
        assert_eq!(
            "http://127.0.0.1:1"
                .parse::<Endpoints>()
                .unwrap()
                .to_string(),
            "http://127.0.0.1:1"
        );
    }

    #[test]
    fn https_is_refused_with_the_way_out() {
        let m = refused("http://192.0.2.1:2379,https://192.0.2.2:2379");
        assert!(m.contains("https://192.0.2.2:2379"), "{m}");
        assert!(m.contains("TLS is not supported yet"), "{m}");
        assert!(
            m.contains("use http:// on a trusted underlay or a local etcd proxy"),
            "{m}"
        );
    }

    #[test]
    fn bad_lists_are_refused_naming_text_cause_and_fix() {
        for (text, cause) in [
            ("", "no endpoint"),
            ("   ", "no endpoint"),
            ("http://192.0.2.1:2379,", "empty"),
            ("http://a:1,,http://b:2", "empty"),
            ("192.0.2.1:2379", "no scheme"),
            ("http:/192.0.2.1:2379", "not of the form http://HOST:PORT"),
            ("unix://x:1", "not etcd's"),
            ("http://192.0.2.1", "no port"),
            ("http://192.0.2.1:", "no port after the colon"),
            ("http://:2379", "no host"),
            ("http://192.0.2.1:0", "port 0"),
            ("http://192.0.2.1:65536", "not a number from 1 to 65535"),
            ("http://192.0.2.1:+80", "not a number"),
            ("http://192.0.2.1:23x9", "not a number"),
            ("http://192.0.2.1:2379/v3", "has a path"),
            ("http://192.0.2.1:2379?x=1", "query"),
            ("http://u:p@192.0.2.1:2379", "user info"),
            ("http://2001:db8::1:2379", "must be in brackets"),
            ("http://[2001:db8::1:2379", "not closed"),
            ("http://[2001:db8::1]", "no port"),
            ("http://[zz::1]:2379", "not an IPv6 address"),
            ("http://300.1.1.1:2379", "not an IPv4 address"),
            ("http://bad_name:2379", "neither an address nor a host name"),
            ("http://-a:2379", "neither an address nor a host name"),
            ("http://a:1, http://a:1/", "listed twice"),
        ] {
            let m = refused(text);
            assert!(m.contains(cause), "{text:?}: {m}");
            assert!(m.contains(&format!("{text:?}")), "names the text: {m}");
            assert!(m.contains("; "), "has a fix: {m}");
        }
    }
}
