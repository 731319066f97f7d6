//! Where ctnet keeps things; every path can be moved by flag or environment variable so
//! tests and several instances run side by side.

use std::path::PathBuf;

/// Environment variable for the state dir (database).
pub const ENV_STATE_DIR: &str = "CTNET_STATE_DIR";
/// Environment variable for the runtime dir (locks, sockets).
pub const ENV_RUN_DIR: &str = "CTNET_RUN_DIR";
/// Environment variable for the named-namespace dir.
pub const ENV_NETNS_DIR: &str = "CTNET_NETNS_DIR";
/// Environment variable for the per-namespace /etc files' dir.
pub const ENV_ETC_NETNS_DIR: &str = "CTNET_ETC_NETNS_DIR";
/// Where `ip netns exec NAME` finds the files it bind-mounts over /etc.
pub const ETC_NETNS_DIR: &str = "/etc/netns";

/// The three folders ctnet uses.
#[derive(Debug, Clone)]
pub struct Paths {
    /// Persistent state: the database (`/var/lib/ctnet`).
    pub state_dir: PathBuf,
    /// Runtime files that die with a reboot (`/run/ctnet`).
    pub run_dir: PathBuf,
    /// Named network namespaces (`/run/netns`, where iproute2 looks).
    pub netns_dir: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            state_dir: PathBuf::from("/var/lib/ctnet"),
            run_dir: PathBuf::from("/run/ctnet"),
            netns_dir: PathBuf::from("/run/netns"),
        }
    }
}

impl Paths {
    /// Defaults overridden by the environment variables that are set.
    pub fn from_env() -> Self {
        let mut paths = Paths::default();
        if let Some(dir) = std::env::var_os(ENV_STATE_DIR) {
            paths.state_dir = dir.into();
        }
        if let Some(dir) = std::env::var_os(ENV_RUN_DIR) {
            paths.run_dir = dir.into();
        }
        if let Some(dir) = std::env::var_os(ENV_NETNS_DIR) {
            paths.netns_dir = dir.into();
        }
        paths
    }

    /// The folder of files bind-mounted over /etc for commands run in a named namespace
    /// (`/etc/netns/NAME/resolv.conf`, as `ip netns exec` does): `/etc/netns`, or
    /// `CTNET_ETC_NETNS_DIR`. Read from the environment rather than kept as a field, so
    /// the paths a netavark setup records (netavark/record.rs) keep their format; only
    /// named namespaces use it, and iproute2 always looks in /etc/netns.
    pub fn etc_netns_dir(&self) -> PathBuf {
        std::env::var_os(ENV_ETC_NETNS_DIR)
            .filter(|d| !d.is_empty())
            .map_or_else(|| PathBuf::from(ETC_NETNS_DIR), PathBuf::from)
    }

    /// The database file.
    pub fn database(&self) -> PathBuf {
        self.state_dir.join("ctnet.db")
    }
}
