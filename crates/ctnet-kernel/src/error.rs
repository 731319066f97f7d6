//! The kernel layer's error type.

use std::io;

/// A failed request to the kernel, with enough context to say what was being done.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kernel refused a netlink request.
    #[error("{op}: {source}")]
    Netlink {
        /// What was asked, in words ("create veth vethab12 with peer eth0").
        op: String,
        /// The errno the kernel answered with.
        source: io::Error,
    },
    /// A system call or file operation outside netlink failed.
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The kernel answered with something this layer could not understand.
    #[error("{op}: unexpected reply from the kernel: {detail}")]
    Protocol {
        /// What was being done.
        op: String,
        /// What was wrong with the reply.
        detail: String,
    },
    /// A sysctl that must change cannot be written here: /proc/sys is mounted read-only
    /// (a container engine inside a container), or this process may not write it.
    #[error("{key} is {current} and must be {wanted}, but it cannot be written here ({source})")]
    SysctlUnwritable {
        /// The setting, as sysctl(8) names it (`net.ipv4.ip_forward`).
        key: crate::sysctl::Key,
        /// What it holds now.
        current: String,
        /// What it must hold.
        wanted: String,
        /// Why opening it for writing failed (EROFS, EACCES, EPERM).
        source: io::Error,
    },
    /// A link of the name asked for exists but is of another kind (a bridge where a
    /// VXLAN device was looked for).
    #[error(
        "link {name} is a {kind} device, not a {wanted} one; delete it or choose another name"
    )]
    WrongKind {
        /// The link's name.
        name: String,
        /// The kind it is ("bridge"; "unknown" when the kernel names none).
        kind: String,
        /// The kind that was looked for ("vxlan").
        wanted: &'static str,
    },
    /// A named object (link, namespace) does not exist.
    #[error("{what} does not exist")]
    NotFound {
        /// The object, in words ("link br-1234", "network namespace /run/netns/x").
        what: String,
    },
}

impl Error {
    /// Wraps an I/O error with a description of the operation.
    pub fn io(op: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            op: op.into(),
            source,
        }
    }

    /// The errno behind this error, if there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Netlink { source, .. }
            | Error::Io { source, .. }
            | Error::SysctlUnwritable { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// True when the kernel said the object already exists (EEXIST).
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(libc::EEXIST)
    }

    /// True when a sysctl that must change cannot be written here (see
    /// [`Error::SysctlUnwritable`]).
    pub fn is_unwritable(&self) -> bool {
        matches!(self, Error::SysctlUnwritable { .. })
    }

    /// True when the kernel said the object is not there (ENOENT, ENODEV, ESRCH).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
            || matches!(
                self.errno(),
                Some(libc::ENOENT) | Some(libc::ENODEV) | Some(libc::ESRCH)
            )
    }
}

/// Result with the kernel layer's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
