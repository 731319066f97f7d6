//! The systems under test, behind one interface: get container `i` ready (untimed),
//! attach it, detach it (timed).

pub mod cni;
pub mod ctnet;
pub mod floor;
pub mod floor_process;
pub mod netavark;

use std::time::Duration;

/// What one attach or detach cost.
#[derive(Debug, Clone, Copy)]
pub struct Cost {
    /// Wall-clock time of the whole operation.
    pub wall: Duration,
    /// Peak RSS in KiB of the process(es) that did it; None when it ran in-process.
    pub max_rss_kib: Option<u64>,
}

/// A container networking system, set up inside its own [`crate::sandbox::World`].
pub trait System {
    /// The name printed in the tables ("netavark 1.4.0 (iptables)").
    fn label(&self) -> &str;

    /// Everything container `i` needs before its attach that is not part of the
    /// measured operation: its namespace, its network. Idempotent.
    fn prepare(&mut self, i: usize) -> Result<(), String>;

    /// Connects container `i` to its network with one published TCP port.
    fn attach(&mut self, i: usize) -> Result<Cost, String>;

    /// Undoes [`System::attach`] for container `i`.
    fn detach(&mut self, i: usize) -> Result<Cost, String>;
}
