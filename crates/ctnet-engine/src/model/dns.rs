//! Names a container answers to in its networks' DNS: its own name and its aliases.
//!
//! A name is checked once, where it comes in (a command line, a netavark request), and
//! stored lower-case: DNS compares names without regard to case (RFC 4343), so two
//! containers called `Web` and `web` are one name, and a clash check is a plain
//! comparison.

use std::fmt;

use serde::Serialize;

use crate::error::{Error, Result};

/// Longest label (RFC 1035).
pub const LABEL_MAX: usize = 63;
/// Longest name in text form without the final dot (RFC 1035's 255 bytes on the wire).
pub const NAME_MAX: usize = 253;

/// A checked DNS name: labels of ASCII letters, digits and `-` (neither first nor last),
/// 1 to 63 bytes each, separated by `.`, at most 253 bytes; lower-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct DnsName(String);

impl DnsName {
    /// Checks a container's name (`ctnet run --name`, netavark's `container_name`).
    pub fn new(text: &str) -> Result<Self> {
        DnsName::parse("name", text)
    }

    /// Checks an alias (`--alias`, netavark's `aliases`).
    pub fn alias(text: &str) -> Result<Self> {
        DnsName::parse("alias", text)
    }

    /// Checks `text` given as a `what` (`name`, `alias`): the error names it so.
    pub fn parse(what: &str, text: &str) -> Result<Self> {
        match problem(text) {
            None => Ok(DnsName(text.to_ascii_lowercase())),
            Some(cause) => Err(Error::invalid(
                format!("{what} {:?}", shown(text)),
                format!("is not a valid DNS name: {cause}"),
                "use letters, digits and '-' (not first or last), labels of at most 63 \
                 characters separated by '.', e.g. web or db-1",
            )),
        }
    }

    /// The name when `text` is a valid DNS name, else None: for names registered only
    /// when they can be (a namespace name given to `ctnet attach`, which may hold `_`).
    pub fn try_implicit(text: &str) -> Option<Self> {
        problem(text)
            .is_none()
            .then(|| DnsName(text.to_ascii_lowercase()))
    }

    /// The name, lower-case.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What the agent's DNS needs of one ready endpoint, read without the rest of the row
/// (see `Engine::dns_snapshot` and `Engine::named_endpoint`): the network, the names, the addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedEndpoint {
    /// The endpoint's id in the store.
    pub id: i64,
    /// The network it is on.
    pub network: crate::model::NetworkName,
    /// Its own name first (if it has one), then its aliases in the order given.
    pub names: Vec<DnsName>,
    /// Its addresses, IPv4 first.
    pub ips: Vec<std::net::IpAddr>,
}

impl fmt::Display for DnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What makes `text` no DNS name, if anything.
fn problem(text: &str) -> Option<String> {
    if text.is_empty() {
        return Some("it is empty".into());
    }
    if text.len() > NAME_MAX {
        return Some(format!(
            "it is {} characters long, more than {NAME_MAX}",
            text.len()
        ));
    }
    if text.parse::<std::net::IpAddr>().is_ok() {
        // A resolver would never ask for it: it is an address already.
        return Some("it is an IP address".into());
    }
    for label in text.split('.') {
        if label.is_empty() {
            return Some("it has an empty label (two dots, or a dot first or last)".into());
        }
        if label.len() > LABEL_MAX {
            return Some(format!(
                "label {:?} is {} characters long, more than {LABEL_MAX}",
                shown(label),
                label.len()
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Some(format!("it contains {c:?}"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some(format!("label {label:?} starts or ends with '-'"));
        }
    }
    None
}

/// At most 80 characters of `text`, for naming huge input.
fn shown(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_names_are_kept_lower_case() {
        for (text, stored) in [
            ("web", "web"),
            ("Web-1", "web-1"),
            ("db.prod", "db.prod"),
            ("1a", "1a"),
            ("a", "a"),
            ("123", "123"),
        ] {
            assert_eq!(DnsName::new(text).unwrap().as_str(), stored, "{text}");
        }
        let long_label = "a".repeat(63);
        assert!(DnsName::new(&long_label).is_ok());
        let long_name = [long_label.as_str(); 4].join(".");
        assert_eq!(long_name.len(), 255);
        assert!(DnsName::new(&long_name[..253]).is_ok());
        assert_eq!(DnsName::new("WEB").unwrap(), DnsName::new("web").unwrap());
    }

    #[test]
    fn invalid_names_are_refused_with_the_cause() {
        for (text, cause) in [
            ("a_b", "'_'"),
            ("", "empty"),
            ("-a", "'-'"),
            ("a-", "'-'"),
            ("a..b", "empty label"),
            (".a", "empty label"),
            ("a.", "empty label"),
            ("a b", "' '"),
            ("é", "'é'"),
            ("10.1.0.2", "IP address"),
            ("fd00::1", "IP address"),
            ("a:b", "':'"),
        ] {
            let e = DnsName::new(text).unwrap_err();
            assert!(e.cause.contains(cause), "{text:?}: {e}");
            assert!(e.object.starts_with("name "), "{e}");
            assert!(e.fix.contains("letters, digits and '-'"), "{e}");
        }
        let e = DnsName::new(&"a".repeat(64)).unwrap_err();
        assert!(e.cause.contains("more than 63"), "{e}");
        let e = DnsName::new(&["a"; 130].join(".")).unwrap_err();
        assert!(e.cause.contains("more than 253"), "{e}");
        assert!(e.object.len() < 100, "{e}");
        let e = DnsName::alias("x_y").unwrap_err();
        assert_eq!(e.object, "alias \"x_y\"");
    }

    #[test]
    fn implicit_names_are_taken_only_when_valid() {
        assert_eq!(
            DnsName::try_implicit("C1").map(|n| n.to_string()),
            Some("c1".into())
        );
        assert_eq!(DnsName::try_implicit("my_ns"), None);
        assert_eq!(DnsName::try_implicit(""), None);
    }

    #[test]
    fn a_name_serializes_as_a_string() {
        let name = DnsName::new("Web").unwrap();
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"web\"");
    }
}
