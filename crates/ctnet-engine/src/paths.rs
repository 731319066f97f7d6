//! Where ctnet keeps things; every path can be moved by flag or environment variable so
//! tests and several instances run side by side.

use std::path::PathBuf;

/// Environment variable for the state dir (database).
pub const ENV_STATE_DIR: &str = "CTNET_STATE_DIR";
/// Environment variable for the runtime dir (locks, sockets).
pub const ENV_RUN_DIR: &str = "CTNET_RUN_DIR";
/// Environment variable for the named-namespace dir.
pub const ENV_NETNS_DIR: &str = "CTNET_NETNS_DIR";

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

    /// The database file.
    pub fn database(&self) -> PathBuf {
        self.state_dir.join("ctnet.db")
    }
}
