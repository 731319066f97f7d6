//! The engine's error type: every variant names the object, the cause and the fix.

use std::fmt;

/// An engine failure, worded for the person who has to fix it.
#[derive(Debug)]
pub struct Error {
    /// The object concerned, e.g. `network "blue"`.
    pub object: String,
    /// What went wrong.
    pub cause: String,
    /// What to do about it (may be empty when there is nothing to suggest).
    pub fix: String,
    /// The class of failure, for callers that map errors to codes (CNI, netavark).
    pub kind: ErrorKind,
}

/// Broad classes of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input was malformed or contradictory.
    InvalidInput,
    /// The named object does not exist.
    NotFound,
    /// The object exists already or the resource is taken.
    Conflict,
    /// The object is still in use.
    InUse,
    /// No address or subnet is left.
    Exhausted,
    /// The kernel refused a request.
    Kernel,
    /// The state database failed.
    Store,
    /// A service ctnet needs (etcd, the host agent) did not answer.
    Unavailable,
}

impl Error {
    /// A new error.
    pub fn new(
        kind: ErrorKind,
        object: impl Into<String>,
        cause: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Error {
            object: object.into(),
            cause: cause.into(),
            fix: fix.into(),
            kind,
        }
    }

    /// Malformed or contradictory input.
    pub fn invalid(
        object: impl Into<String>,
        cause: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Error::new(ErrorKind::InvalidInput, object, cause, fix)
    }

    /// The same error, naming the larger input it was found in (`--to "a=b,k y=v"`:
    /// label key "k y": contains ' ').
    pub fn within(self, outer: &str) -> Self {
        Error {
            object: format!("{outer}: {}", self.object),
            ..self
        }
    }

    /// A missing object.
    pub fn not_found(object: impl Into<String>, fix: impl Into<String>) -> Self {
        Error::new(ErrorKind::NotFound, object, "does not exist", fix)
    }

    /// A kernel failure while working on `object`.
    pub fn kernel(object: impl Into<String>, err: ctnet_kernel::Error) -> Self {
        if let ctnet_kernel::Error::SysctlUnwritable { key, wanted, .. } = &err {
            let fix = unwritable_sysctl_fix(key, wanted);
            return Error::new(ErrorKind::Kernel, object, err.to_string(), fix);
        }
        let fix = match err.errno() {
            Some(libc::EPERM) | Some(libc::EACCES) => {
                "run ctnet as root (it needs CAP_NET_ADMIN and CAP_SYS_ADMIN)"
            }
            Some(libc::EEXIST) => "remove the conflicting object or choose another name",
            _ => "",
        };
        Error::new(ErrorKind::Kernel, object, err.to_string(), fix)
    }
}

/// What to do about a sysctl that must change where /proc/sys cannot be written: set it
/// ahead, outside, and for a device ctnet makes (which does not exist ahead), through the
/// `default` its devices start with.
fn unwritable_sysctl_fix(key: &ctnet_kernel::sysctl::Key, wanted: &str) -> String {
    let ahead = match key.for_new_devices() {
        Some(default) => format!(
            "{default} = {wanted} (which devices made afterwards in that namespace start with)"
        ),
        None => format!("{key} = {wanted}"),
    };
    format!(
        "set {ahead} before starting the container engine, e.g. in /etc/sysctl.d, \
         or make /proc/sys writable"
    )
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.object, self.cause)?;
        if !self.fix.is_empty() {
            write!(f, "; {}", self.fix)?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        let (cause, fix) = store_fault(&err);
        let object = match crate::state::opened_database() {
            Some(path) => format!("state database {}", path.display()),
            None => "state database".to_string(),
        };
        Error::new(ErrorKind::Store, object, cause, fix)
    }
}

/// What a failing SQLite call means, and what to do about it: the cause in words with
/// SQLite's own message after it, and the fix for that cause.
fn store_fault(err: &rusqlite::Error) -> (String, &'static str) {
    use rusqlite::ErrorCode as Code;
    let (what, fix) = match err.sqlite_error_code() {
        Some(Code::DiskFull) => (
            "the file system holding it is full",
            "free space there (`df -h` on the state dir), then run the command again; \
             `ctnet gc` then finishes or undoes what was interrupted",
        ),
        Some(Code::ReadOnly) => (
            "it or its folder is read-only",
            "remount the state dir read-write, or point --state-dir (CTNET_STATE_DIR) at a \
             writable folder",
        ),
        Some(Code::CannotOpen) | Some(Code::PermissionDenied) => (
            "it cannot be opened",
            "run ctnet as root, and check that the state dir exists and is writable \
             (not a read-only mount)",
        ),
        Some(Code::NotADatabase) | Some(Code::DatabaseCorrupt) => (
            "the file is not a ctnet database or is damaged",
            "restore it together with its -wal file from a backup, or move both aside \
             to start again (see \"Recovering the state database\" in docs/reliability.md)",
        ),
        Some(Code::SystemIoFailure) => (
            "reading or writing it failed",
            "check the disk holding the state dir (dmesg) and that it has free space",
        ),
        Some(Code::DatabaseBusy) | Some(Code::DatabaseLocked) => (
            "another ctnet process held it locked for too long",
            "run the command again; if it keeps failing, look for a hung ctnet process",
        ),
        _ => (
            "",
            "check that the state dir is writable; `ctnet gc` repairs interrupted operations",
        ),
    };
    if what.is_empty() {
        (err.to_string(), fix)
    } else {
        (format!("{what} ({err})"), fix)
    }
}

impl From<ctnet_kernel::NameError> for Error {
    fn from(err: ctnet_kernel::NameError) -> Self {
        Error::invalid(
            format!("{} name {:?}", err.kind, err.name),
            err.reason,
            err.fix,
        )
    }
}

/// Result with the engine's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use ctnet_kernel::sysctl::Key;

    use super::{unwritable_sysctl_fix, Error};

    #[test]
    fn an_unwritable_sysctl_says_what_to_set_ahead() {
        let fix = unwritable_sysctl_fix(&Key::parse("net.ipv4.ip_forward"), "1");
        assert_eq!(
            fix,
            "set net.ipv4.ip_forward = 1 before starting the container engine, e.g. in \
             /etc/sysctl.d, or make /proc/sys writable"
        );
        // A device ctnet makes does not exist ahead: its namespace's default does.
        let fix = unwritable_sysctl_fix(&Key::device("ipv6", "eth0", "accept_ra"), "0");
        assert!(
            fix.starts_with("set net.ipv6.conf.default.accept_ra = 0 (which devices made"),
            "{fix}"
        );
    }

    #[test]
    fn an_unwritable_sysctl_is_a_three_part_error() {
        let err = Error::kernel(
            "network \"blue\"",
            ctnet_kernel::Error::SysctlUnwritable {
                key: Key::parse("net.ipv4.ip_forward"),
                current: "0".into(),
                wanted: "1".into(),
                source: std::io::Error::from_raw_os_error(libc::EROFS),
            },
        );
        assert_eq!(err.object, "network \"blue\"");
        assert!(
            err.cause
                .starts_with("net.ipv4.ip_forward is 0 and must be 1"),
            "{}",
            err.cause
        );
        assert!(err.fix.contains("/etc/sysctl.d"), "{}", err.fix);
    }
}
