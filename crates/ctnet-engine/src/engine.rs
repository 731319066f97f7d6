//! The engine handle: paths, the state database and the host's netlink socket.

pub(crate) use ctnet_kernel::random::random_hex;
use ctnet_kernel::{NetnsDir, RtSocket};

use crate::datapath::nft::Firewall;
use crate::error::{Error, Result};
use crate::paths::Paths;
use crate::state::Store;

/// Everything an operation needs: where things live, the database, and lazily opened
/// kernel sockets for the host namespace (the namespace ctnet runs in).
pub struct Engine {
    pub(crate) paths: Paths,
    pub(crate) store: Store,
    pub(crate) netns_dir: NetnsDir,
    host: Option<RtSocket>,
    pub(crate) firewall: Firewall,
    /// Tells a runtime's own process keeping a container's published port open from a
    /// host program (see [`Engine::set_port_keeper`]).
    pub(crate) port_keeper: Option<Box<dyn Fn(u32) -> bool>>,
}

impl Engine {
    /// Opens the engine: the database (created on first use) under `paths.state_dir`.
    ///
    /// Operations another ctnet process left half-done (it crashed or was killed) are
    /// finished or rolled back first, so their reservations never block this one.
    pub fn open(paths: Paths) -> Result<Self> {
        let store = Store::open(&paths.database())?;
        let netns_dir = NetnsDir::new(&paths.netns_dir);
        let firewall = Firewall::with_record(paths.run_dir.clone());
        let mut engine = Engine {
            paths,
            store,
            netns_dir,
            host: None,
            firewall,
            port_keeper: None,
        };
        engine.reconcile_interrupted()?;
        Ok(engine)
    }

    /// Names the processes (by pid) that keep the published ports of the container being
    /// attached open on the runtime's behalf, and are no host program a publish must
    /// avoid: rootful Podman binds a container's ports itself and its conmon holds them,
    /// so a `podman network reload` publishes ports conmon listens on.
    pub fn set_port_keeper(&mut self, keeper: impl Fn(u32) -> bool + 'static) {
        self.port_keeper = Some(Box::new(keeper));
    }

    /// The paths in use.
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// Changes whenever another process committed to the store since the last call
    /// (see [`Store::data_version`]): the agent re-reads only then.
    pub fn store_version(&self) -> Result<i64> {
        self.store.data_version()
    }

    /// The named-namespace folder.
    pub fn netns_dir(&self) -> &NetnsDir {
        &self.netns_dir
    }

    /// The rtnetlink socket of the host namespace, opened on first use.
    pub(crate) fn host(&mut self) -> Result<&mut RtSocket> {
        if self.host.is_none() {
            let sock = RtSocket::open().map_err(|e| Error::kernel("host network namespace", e))?;
            self.host = Some(sock);
        }
        Ok(self.host.as_mut().expect("just opened"))
    }
}
