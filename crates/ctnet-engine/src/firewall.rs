//! ctnet's nftables table. (Being wired to the kernel layer's nf_tables encoder.)

use ctnet_kernel::IfName;

use crate::model::Subnet;

/// ctnet's firewall state for one process.
pub struct Firewall {}

impl Firewall {
    /// A handle; the table is checked on first use.
    pub fn new() -> Self {
        Firewall {}
    }

    /// Masquerades traffic from `subnet` leaving through anything but `bridge`.
    pub fn add_masquerade(
        &mut self,
        _subnet: &Subnet,
        _bridge: &IfName,
    ) -> ctnet_kernel::Result<()> {
        Ok(())
    }

    /// Removes what [`Firewall::add_masquerade`] added; missing elements are fine.
    pub fn remove_masquerade(
        &mut self,
        _subnet: &Subnet,
        _bridge: &IfName,
    ) -> ctnet_kernel::Result<()> {
        Ok(())
    }
}
