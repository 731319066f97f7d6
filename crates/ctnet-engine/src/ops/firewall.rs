//! ctnet's nftables table as operations need it: made before something is added to it,
//! and rewritten from the store. What each network and endpoint puts in it comes from
//! the driver's plan (`driver::bridge::network_rules`, `port_rules`); the datapath knows
//! nothing of networks or containers.

use crate::datapath::nft::{Contents, TABLE};
use crate::driver::bridge::{network_rules, port_rules};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::model::RowState;
use crate::state;

impl Engine {
    /// Rewrites ctnet's nftables table from the store, so a table that was edited,
    /// deleted, or left by an older layout holds exactly what the networks need.
    pub(crate) fn rebuild_firewall(&mut self) -> Result<Vec<String>> {
        let contents = self.firewall_contents()?;
        self.firewall.rebuild(&contents).map_err(firewall_error)?;
        Ok(contents
            .networks
            .iter()
            .map(|n| n.bridge.to_string())
            .collect())
    }

    /// Makes sure ctnet's table exists in this layout before something adds to it. A
    /// missing table is created holding everything in the store (so one deleted behind
    /// ctnet's back comes back whole); one of another layout is rewritten.
    pub(crate) fn ensure_firewall(&mut self) -> Result<()> {
        if self.firewall.is_current().map_err(firewall_error)? {
            return Ok(());
        }
        let contents = self.firewall_contents()?;
        if self.firewall.table_exists().map_err(firewall_error)? {
            self.firewall.rebuild(&contents)
        } else {
            self.firewall.create(&contents)
        }
        .map_err(firewall_error)
    }

    /// What the table should hold: every network and published port not being removed.
    fn firewall_contents(&self) -> Result<Contents> {
        let conn = self.store.read();
        let networks = state::list_networks(conn)?
            .iter()
            .filter(|net| net.state != RowState::Removing)
            .map(network_rules)
            .collect();
        let ports = state::list_endpoints(conn)?
            .iter()
            .filter(|ep| ep.state != RowState::Removing)
            .flat_map(port_rules)
            .collect();
        Ok(Contents { networks, ports })
    }
}

/// The error for a failed change to ctnet's table.
pub(crate) fn firewall_error(e: ctnet_kernel::Error) -> Error {
    Error::kernel(format!("nftables table {TABLE}"), e)
}
