//! Names the kernel and iproute2 accept, as types that cannot hold a bad value.

use std::fmt;
use std::str::FromStr;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} name {name:?} {reason}; {fix}")]
pub struct NameError {
    /// What kind of name it was ("interface", "network namespace").
    pub kind: &'static str,
    /// The name as given.
    pub name: String,
    /// What is wrong with it.
    pub reason: String,
    /// What to do instead.
    pub fix: String,
}

/// A network interface name: 1 to 15 bytes (IFNAMSIZ - 1), no `/`, `:`, whitespace,
/// and not `.` or `..` (the kernel's `dev_valid_name`), and no `%` (a name template to
/// the kernel's `dev_alloc_name`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IfName(String);

/// The longest interface name the kernel accepts, in bytes.
pub const IFNAME_MAX: usize = 15;

impl IfName {
    /// Parses and checks an interface name.
    pub fn new(name: &str) -> Result<Self, NameError> {
        let err = |reason: String| NameError {
            kind: "interface",
            name: name.to_string(),
            reason,
            fix: format!(
                "use 1 to {IFNAME_MAX} bytes of letters, digits, '-', '_' or '.', e.g. \"eth1\""
            ),
        };
        if name.is_empty() {
            return Err(err("is empty".into()));
        }
        if name.len() > IFNAME_MAX {
            return Err(err(format!(
                "is {} bytes long, over the kernel's limit of {IFNAME_MAX}",
                name.len()
            )));
        }
        if name == "." || name == ".." {
            return Err(err("is a path component".into()));
        }
        if let Some(c) = name
            .chars()
            .find(|c| *c == '/' || *c == ':' || c.is_whitespace() || c.is_control())
        {
            return Err(err(format!(
                "contains {c:?}, which the kernel forbids in interface names"
            )));
        }
        // The kernel takes a name with `%` as a template and makes a device of another
        // name (`br%d` becomes `br0`), which ctnet would then never find.
        if name.contains('%') {
            return Err(err(
                "contains '%', which the kernel takes as a name template (\"br%d\" would make \"br0\")"
                    .into(),
            ));
        }
        Ok(IfName(name.to_string()))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for IfName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IfName::new(s)
    }
}

/// The name of a named network namespace (a file under the netns dir, `/run/netns` by
/// default): 1 to 64 characters of letters, digits, `-`, `_` and `.`, not starting with
/// `.` or `-`, so it can never be a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetnsName(String);

/// The longest namespace name ctnet accepts.
pub const NETNS_NAME_MAX: usize = 64;

impl NetnsName {
    /// Parses and checks a namespace name.
    pub fn new(name: &str) -> Result<Self, NameError> {
        check_plain_name("network namespace", name, NETNS_NAME_MAX)?;
        Ok(NetnsName(name.to_string()))
    }

    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NetnsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for NetnsName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NetnsName::new(s)
    }
}

/// Checks a name that will become a file name or a key: letters, digits, `-`, `_`, `.`,
/// 1 to `max` characters, not starting with `.` or `-`.
pub fn check_plain_name(kind: &'static str, name: &str, max: usize) -> Result<(), NameError> {
    let fix = format!(
        "use 1 to {max} letters, digits, '-', '_' or '.', starting with a letter or digit, e.g. \"blue\""
    );
    let err = |reason: String| NameError {
        kind,
        name: name.to_string(),
        reason,
        fix: fix.clone(),
    };
    if name.is_empty() {
        return Err(err("is empty".into()));
    }
    if name.chars().count() > max {
        return Err(err(format!(
            "is {} characters long, over the limit of {max}",
            name.chars().count()
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(err(format!("contains {c:?}")));
    }
    if name.starts_with('.') || name.starts_with('-') {
        return Err(err("starts with '.' or '-'".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names() {
        assert!(IfName::new("eth0").is_ok());
        assert!(IfName::new("a23456789012345").is_ok());
        assert!(IfName::new("a234567890123456").is_err());
        assert!(IfName::new("").is_err());
        assert!(IfName::new("a/b").is_err());
        assert!(IfName::new("..").is_err());
        assert!(IfName::new("a b").is_err());
        assert!(IfName::new("a:1").is_err());
        assert!(IfName::new("a\tb").is_err());
        let e = IfName::new("br%d").unwrap_err();
        assert!(e.reason.contains("template"), "{e}");
        assert!(IfName::new("%").is_err());
    }

    #[test]
    fn namespace_names() {
        assert!(NetnsName::new("c1").is_ok());
        assert!(NetnsName::new("../x").is_err());
        assert!(NetnsName::new("a/b").is_err());
        assert!(NetnsName::new("").is_err());
        assert!(NetnsName::new(&"x".repeat(65)).is_err());
        assert!(NetnsName::new(".hidden").is_err());
    }
}
