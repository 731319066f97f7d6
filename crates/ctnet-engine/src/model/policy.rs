//! Network policy: container labels, selectors, and policies as users write them.
//!
//! Everything here is parsed once at the edge (the CLI, CNI's `args`) into types that
//! cannot hold a bad value; `policy::compile` turns policies into set elements.
//!
//! Semantics follow Kubernetes NetworkPolicy ingress: a container selected by the `to`
//! of any allow policy accepts only what some allow policy admits (the union of their
//! rules), plus replies; a container selected by none stays open; a deny policy drops
//! what it matches whatever allows it (as Calico's and AdminNetworkPolicy's deny).

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::NetworkName;

/// Longest label key, as Kubernetes' name part.
pub const LABEL_KEY_MAX: usize = 63;
/// Longest label value.
pub const LABEL_VALUE_MAX: usize = 253;
/// Longest policy name.
pub const POLICY_NAME_MAX: usize = 64;
/// The selector word for a container's own name (`name=web`); no label may be called so.
pub const NAME_KEY: &str = "name";

const LABEL_KEY_RULE: &str = "a label key is 1 to 63 letters, digits, `-`, `_`, `.` or `/`, \
     starting and ending with a letter or digit";
const LABEL_VALUE_RULE: &str = "a label value is at most 253 characters, none of them a space, \
     `,`, `=` or a control character";

/// A label's key: 1 to 63 ASCII letters, digits, `-`, `_`, `.`, `/`, starting and ending
/// with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LabelKey(String);

impl LabelKey {
    /// Parses and checks a key.
    pub fn new(key: &str) -> Result<Self> {
        let object = format!("label key {key:?}");
        let cause = if key.is_empty() {
            Some("is empty".to_string())
        } else if key.len() > LABEL_KEY_MAX {
            Some(format!(
                "is {} bytes long, more than {LABEL_KEY_MAX}",
                key.len()
            ))
        } else if let Some(c) = key
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')))
        {
            Some(format!("contains {c:?}"))
        } else if !key.starts_with(|c: char| c.is_ascii_alphanumeric())
            || !key.ends_with(|c: char| c.is_ascii_alphanumeric())
        {
            Some("does not start and end with a letter or digit".to_string())
        } else {
            None
        };
        match cause {
            Some(cause) => Err(Error::invalid(object, cause, LABEL_KEY_RULE)),
            None => Ok(LabelKey(key.to_string())),
        }
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for LabelKey {
    type Error = Error;
    fn try_from(key: String) -> Result<Self> {
        LabelKey::new(&key)
    }
}

impl From<LabelKey> for String {
    fn from(key: LabelKey) -> String {
        key.0
    }
}

impl fmt::Display for LabelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A label's value: at most 253 characters with no space, `,`, `=` or control
/// character (selectors separate pairs with `,`), possibly empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LabelValue(String);

impl LabelValue {
    /// Parses and checks a value.
    pub fn new(value: &str) -> Result<Self> {
        let object = format!("label value {value:?}");
        if value.len() > LABEL_VALUE_MAX {
            let cause = format!("is {} bytes long, more than {LABEL_VALUE_MAX}", value.len());
            return Err(Error::invalid(object, cause, LABEL_VALUE_RULE));
        }
        match value
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || matches!(c, ',' | '='))
        {
            Some(c) => Err(Error::invalid(
                object,
                format!("contains {c:?}"),
                LABEL_VALUE_RULE,
            )),
            None => Ok(LabelValue(value.to_string())),
        }
    }

    /// The value as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for LabelValue {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        LabelValue::new(&value)
    }
}

impl From<LabelValue> for String {
    fn from(value: LabelValue) -> String {
        value.0
    }
}

/// `KEY=VALUE` into its checked parts; `what` names the flag for errors.
fn key_value(what: &str, text: &str) -> Result<(LabelKey, LabelValue)> {
    let Some((key, value)) = text.split_once('=') else {
        return Err(Error::invalid(
            format!("{what} {text:?}"),
            "has no `=`",
            "write KEY=VALUE, e.g. role=web",
        ));
    };
    Ok((LabelKey::new(key)?, LabelValue::new(value)?))
}

/// A container's labels on one network (`--label KEY=VALUE`), ordered by key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Labels(BTreeMap<LabelKey, LabelValue>);

impl Labels {
    /// No labels.
    pub fn new() -> Self {
        Labels::default()
    }

    /// Parses `--label` flags; a key given twice keeps its last value (as Docker does).
    /// `name` is refused as a key: selectors read `name=X` as the container's name.
    pub fn parse<S: AsRef<str>>(flags: &[S]) -> Result<Self> {
        let mut labels = Labels::new();
        for flag in flags {
            let (key, value) = key_value("--label", flag.as_ref())?;
            if key.as_str() == NAME_KEY {
                return Err(Error::invalid(
                    format!("--label {:?}", flag.as_ref()),
                    "uses the key `name`, which selectors read as the container's name",
                    "choose another key; `--to name=CONTAINER` selects by name already",
                ));
            }
            labels.insert(key, value);
        }
        Ok(labels)
    }

    /// Sets one label.
    pub fn insert(&mut self, key: LabelKey, value: LabelValue) {
        self.0.insert(key, value);
    }

    /// The value of `key`, if the container has it.
    pub fn get(&self, key: &LabelKey) -> Option<&LabelValue> {
        self.0.get(key)
    }

    /// Each label, by key.
    pub fn iter(&self) -> impl Iterator<Item = (&LabelKey, &LabelValue)> {
        self.0.iter()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `role=web,tier=1` (empty when there are none).
    pub fn text(&self) -> String {
        let pairs: Vec<String> = self.0.iter().map(|(k, v)| format!("{k}={}", v.0)).collect();
        pairs.join(",")
    }
}

/// What a selector is matched against: one container on one network.
#[derive(Debug, Clone, Copy)]
pub struct Member<'a> {
    /// Its names: the container's own name (`run --name`, a named namespace, Podman's
    /// container name) and its label in listings.
    pub names: &'a [&'a str],
    /// Its labels.
    pub labels: &'a Labels,
}

/// Which containers of a network a policy means.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Selector {
    /// Every container on the network (`all`).
    All,
    /// The container of that name (`name=web`).
    Name(String),
    /// Containers that have every one of these labels (`role=db,tier=1`).
    Labels(Vec<(LabelKey, LabelValue)>),
}

const SELECTOR_FORMS: &str =
    "write KEY=VALUE[,KEY=VALUE...] (all must match), name=CONTAINER, or all";

impl Selector {
    /// Parses a selector; `flag` names where it came from.
    pub fn parse(flag: &str, text: &str) -> Result<Self> {
        if text == "all" {
            return Ok(Selector::All);
        }
        let object = || format!("{flag} {text:?}");
        if let Some(name) = text.strip_prefix("name=") {
            if name.is_empty() || name.contains(',') || name.chars().any(char::is_whitespace) {
                return Err(Error::invalid(
                    object(),
                    "does not give one container name after `name=`",
                    "write name=CONTAINER with the container's name (as `ctnet ls` shows it)",
                ));
            }
            return Ok(Selector::Name(name.to_string()));
        }
        let mut pairs = Vec::new();
        for item in text.split(',') {
            if item.is_empty() {
                return Err(Error::invalid(
                    object(),
                    "has an empty part",
                    SELECTOR_FORMS,
                ));
            }
            let Some((key, value)) = item.split_once('=') else {
                return Err(Error::invalid(
                    object(),
                    format!("has {item:?}, which is not KEY=VALUE"),
                    SELECTOR_FORMS,
                ));
            };
            let key = LabelKey::new(key).map_err(|e| e.within(&object()))?;
            if key.as_str() == NAME_KEY {
                return Err(Error::invalid(
                    object(),
                    "mixes `name=` with labels",
                    "select by name alone (name=CONTAINER) or by labels alone",
                ));
            }
            let value = LabelValue::new(value).map_err(|e| e.within(&object()))?;
            pairs.push((key, value));
        }
        pairs.sort();
        pairs.dedup();
        Ok(Selector::Labels(pairs))
    }

    /// True when `member` is one of the containers this selector means.
    pub fn matches(&self, member: &Member<'_>) -> bool {
        match self {
            Selector::All => true,
            Selector::Name(name) => member.names.contains(&name.as_str()),
            Selector::Labels(pairs) => pairs
                .iter()
                .all(|(key, value)| member.labels.get(key) == Some(value)),
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::All => f.write_str("all"),
            Selector::Name(name) => write!(f, "name={name}"),
            Selector::Labels(pairs) => {
                let pairs: Vec<String> =
                    pairs.iter().map(|(k, v)| format!("{k}={}", v.0)).collect();
                f.write_str(&pairs.join(","))
            }
        }
    }
}

impl TryFrom<String> for Selector {
    type Error = Error;
    fn try_from(text: String) -> Result<Self> {
        Selector::parse("selector", &text)
    }
}

impl From<Selector> for String {
    fn from(selector: Selector) -> String {
        selector.to_string()
    }
}

/// Where admitted (or denied) traffic comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Source {
    /// Containers of the policy's network.
    Containers(Selector),
    /// Any address in a block: another host, the wan, another network.
    Cidr(IpNet),
}

impl Source {
    /// Parses `--from`: a CIDR (or one address) when it reads as one, else a selector.
    /// A CIDR must have no host bits set: `203.0.113.5/24` is refused, not rounded.
    pub fn parse(text: &str) -> Result<Self> {
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(Source::Cidr(IpNet::from(ip)));
        }
        let looks_like_cidr = text.contains('/')
            && text
                .split_once('/')
                .is_some_and(|(a, _)| a.parse::<IpAddr>().is_ok());
        if !looks_like_cidr {
            return Selector::parse("--from", text).map(Source::Containers);
        }
        let object = format!("--from {text:?}");
        let net: IpNet = text.parse().map_err(|_| {
            Error::invalid(
                &object,
                "is not a CIDR block",
                "write ADDRESS/PREFIX, e.g. 203.0.113.0/24 or 2001:db8::/32",
            )
        })?;
        if net.trunc() != net {
            return Err(Error::invalid(
                object,
                format!("has host bits set (the block is {})", net.trunc()),
                format!(
                    "write {} for the block, or ADDRESS/{} for one address",
                    net.trunc(),
                    net.max_prefix_len()
                ),
            ));
        }
        Ok(Source::Cidr(net))
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Containers(selector) => selector.fmt(f),
            Source::Cidr(net) => net.fmt(f),
        }
    }
}

impl TryFrom<String> for Source {
    type Error = Error;
    fn try_from(text: String) -> Result<Self> {
        Source::parse(&text)
    }
}

impl From<Source> for String {
    fn from(source: Source) -> String {
        source.to_string()
    }
}

/// A transport protocol a policy port names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicyProto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP (matched by protocol number; this needs no SCTP support in the kernel).
    Sctp,
}

impl PolicyProto {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            PolicyProto::Tcp => 6,
            PolicyProto::Udp => 17,
            PolicyProto::Sctp => 132,
        }
    }

    /// `tcp`, `udp` or `sctp`.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyProto::Tcp => "tcp",
            PolicyProto::Udp => "udp",
            PolicyProto::Sctp => "sctp",
        }
    }
}

/// Container ports a policy admits: `5432`, `5432/tcp`, `8000-8099/udp` (TCP by default,
/// as Docker's `-p`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PortRange {
    /// The protocol.
    pub proto: PolicyProto,
    /// First port, at least 1.
    pub first: u16,
    /// Last port, at least `first`.
    pub last: u16,
}

const PORT_FORM: &str =
    "write PORT[-END][/tcp|/udp|/sctp] with ports 1 to 65535, e.g. 5432/tcp or 8000-8099";

impl PortRange {
    /// Parses `--port`.
    pub fn parse(text: &str) -> Result<Self> {
        let object = || format!("--port {text:?}");
        let (ports, proto) = match text.rsplit_once('/') {
            Some((ports, "tcp")) => (ports, PolicyProto::Tcp),
            Some((ports, "udp")) => (ports, PolicyProto::Udp),
            Some((ports, "sctp")) => (ports, PolicyProto::Sctp),
            Some((_, other)) => {
                return Err(Error::invalid(
                    object(),
                    format!("names protocol {other:?}, not tcp, udp or sctp"),
                    PORT_FORM,
                ))
            }
            None => (text, PolicyProto::Tcp),
        };
        let port = |p: &str| -> Result<u16> {
            match p.parse::<u16>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(Error::invalid(
                    object(),
                    format!("has {p:?}, which is not a port from 1 to 65535"),
                    PORT_FORM,
                )),
            }
        };
        let (first, last) = match ports.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => (port(ports)?, port(ports)?),
        };
        if first > last {
            return Err(Error::invalid(
                object(),
                format!("is a reversed range: {first} comes after {last}"),
                format!("write {last}-{first}"),
            ));
        }
        Ok(PortRange { proto, first, last })
    }

    /// True for one port, not a range.
    pub fn is_single(&self) -> bool {
        self.first == self.last
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_single() {
            write!(f, "{}/{}", self.first, self.proto.as_str())
        } else {
            write!(f, "{}-{}/{}", self.first, self.last, self.proto.as_str())
        }
    }
}

impl TryFrom<String> for PortRange {
    type Error = Error;
    fn try_from(text: String) -> Result<Self> {
        PortRange::parse(&text)
    }
}

impl From<PortRange> for String {
    fn from(port: PortRange) -> String {
        port.to_string()
    }
}

/// A policy's name: 1 to 64 letters, digits, `-`, `_`, `.`, starting with a letter or
/// digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PolicyName(String);

impl PolicyName {
    /// Parses and checks a policy name.
    pub fn new(name: &str) -> Result<Self> {
        ctnet_kernel::names::check_plain_name("policy", name, POLICY_NAME_MAX)?;
        Ok(PolicyName(name.to_string()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PolicyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for PolicyName {
    type Error = Error;
    fn try_from(name: String) -> Result<Self> {
        PolicyName::new(&name)
    }
}

impl From<PolicyName> for String {
    fn from(name: PolicyName) -> String {
        name.0
    }
}

/// Whether a policy admits what it matches or drops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Admit; containers it selects then accept only what some allow policy admits.
    Allow,
    /// Drop, whatever allows it.
    Deny,
}

/// One policy on one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Its name, unique on the host.
    pub name: PolicyName,
    /// The network whose containers it selects.
    pub network: NetworkName,
    /// The containers whose incoming traffic it governs.
    pub to: Selector,
    /// Where the traffic comes from; empty: anywhere.
    pub from: Vec<Source>,
    /// The container ports; empty: every port of every protocol.
    pub ports: Vec<PortRange>,
    /// Allow or deny.
    pub action: Action,
}

impl Policy {
    /// True for a deny policy.
    pub fn denies(&self) -> bool {
        self.action == Action::Deny
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member<'a>(names: &'a [&'a str], labels: &'a Labels) -> Member<'a> {
        Member { names, labels }
    }

    #[test]
    fn labels_parse_and_refuse() {
        let labels = Labels::parse(&["role=web", "tier=1", "role=db"]).unwrap();
        assert_eq!(
            labels.text(),
            "role=db,tier=1",
            "the last value of a key wins"
        );
        assert!(
            Labels::parse(&["empty="]).is_ok(),
            "an empty value is a value"
        );
        for bad in [
            "my key=v", "=v", "role", "-a=b", "a-=b", "k=v v", "k=a,b", "name=web",
        ] {
            let err = Labels::parse(&[bad]).unwrap_err().to_string();
            assert!(
                err.contains("label") || err.contains("name"),
                "{bad}: {err}"
            );
        }
        let long = format!("{}=v", "k".repeat(64));
        assert!(Labels::parse(&[long]).is_err());
    }

    #[test]
    fn selectors() {
        let labels = Labels::parse(&["role=db", "tier=1"]).unwrap();
        let names = ["db", "netns-db"];
        let db = member(&names, &labels);
        assert!(Selector::parse("--to", "all").unwrap().matches(&db));
        assert!(Selector::parse("--to", "role=db").unwrap().matches(&db));
        assert!(Selector::parse("--to", "tier=1,role=db")
            .unwrap()
            .matches(&db));
        assert!(!Selector::parse("--to", "role=db,tier=2")
            .unwrap()
            .matches(&db));
        assert!(!Selector::parse("--to", "role=web").unwrap().matches(&db));
        assert!(Selector::parse("--to", "name=db").unwrap().matches(&db));
        assert!(!Selector::parse("--to", "name=web").unwrap().matches(&db));
        for bad in [
            "role",
            "=x",
            "a=b,,c=d",
            "",
            "name=",
            "name=a,role=b",
            "role=db,name=x",
            "k y=v",
        ] {
            let err = Selector::parse("--to", bad).unwrap_err();
            assert!(err.to_string().contains("--to"), "{bad}: {err}");
        }
        let sel = Selector::parse("--to", "tier=1,role=db").unwrap();
        assert_eq!(sel.to_string(), "role=db,tier=1");
        assert_eq!(Selector::parse("--to", &sel.to_string()).unwrap(), sel);
    }

    #[test]
    fn sources() {
        assert_eq!(
            Source::parse("203.0.113.0/24").unwrap(),
            Source::Cidr("203.0.113.0/24".parse().unwrap())
        );
        assert_eq!(
            Source::parse("198.51.100.7").unwrap(),
            Source::Cidr("198.51.100.7/32".parse().unwrap())
        );
        assert_eq!(
            Source::parse("2001:db8::/32").unwrap(),
            Source::Cidr("2001:db8::/32".parse().unwrap())
        );
        let err = Source::parse("203.0.113.5/24").unwrap_err().to_string();
        assert!(
            err.contains("host bits") && err.contains("203.0.113.0/24"),
            "{err}"
        );
        assert!(Source::parse("203.0.113.0/33").is_err());
        assert!(matches!(
            Source::parse("role=web").unwrap(),
            Source::Containers(_)
        ));
    }

    #[test]
    fn ports() {
        let p = PortRange::parse("5432").unwrap();
        assert_eq!((p.proto, p.first, p.last), (PolicyProto::Tcp, 5432, 5432));
        let p = PortRange::parse("8000-8099/udp").unwrap();
        assert_eq!((p.proto, p.first, p.last), (PolicyProto::Udp, 8000, 8099));
        assert_eq!(PortRange::parse("9/sctp").unwrap().proto, PolicyProto::Sctp);
        let err = PortRange::parse("5432-22").unwrap_err().to_string();
        assert!(err.contains("reversed") && err.contains("22-5432"), "{err}");
        for bad in ["0", "65536", "x", "1-", "5/icmp", "-5", ""] {
            assert!(PortRange::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(PortRange::parse("1-2/udp").unwrap().to_string(), "1-2/udp");
    }

    #[test]
    fn policy_round_trips_through_json() {
        let policy = Policy {
            name: PolicyName::new("allow-web").unwrap(),
            network: NetworkName::new("n").unwrap(),
            to: Selector::parse("--to", "role=db").unwrap(),
            from: vec![
                Source::parse("role=web").unwrap(),
                Source::parse("203.0.113.0/24").unwrap(),
            ],
            ports: vec![PortRange::parse("5432").unwrap()],
            action: Action::Allow,
        };
        let json = serde_json::to_string(&policy).unwrap();
        assert_eq!(serde_json::from_str::<Policy>(&json).unwrap(), policy);
        assert!(json.contains("\"5432/tcp\""), "{json}");
    }
}
