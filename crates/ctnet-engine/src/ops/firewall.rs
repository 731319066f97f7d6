//! ctnet's nftables table as operations need it: made before something is added to it,
//! and rewritten from the store. What each network and endpoint puts in it comes from
//! the driver's plan (`driver::bridge::network_rules`, `port_rules`); the datapath knows
//! nothing of networks or containers.
//!
//! Every rewrite reads the store and commits its batch inside one write transaction of
//! the store. Operations add their elements only after their row is recorded (and keep
//! it until the elements are gone) and withdraw them only after the row is marked
//! `removing`, each in a write transaction of its own; a rewrite serialised with those
//! transactions therefore never puts back what a detach withdrew, nor drops what an
//! attach added. (Read outside the lock, a `ctnet gc` beside a detach put the withdrawn
//! ports back: 11 of 490 cycles.)

use rusqlite::Connection;

use crate::datapath::nft::{Contents, Rewrite, TABLE};
use crate::driver::bridge::port_rules;
use crate::driver::network_rules;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::model::RowState;
use crate::state;

impl Engine {
    /// Rewrites ctnet's nftables table from the store, so a table that was edited,
    /// deleted, or left by an older layout holds exactly what the networks need.
    pub(crate) fn rebuild_firewall(&mut self) -> Result<Rewrite> {
        let Engine {
            store, firewall, ..
        } = self;
        store.write(|tx| {
            let contents = firewall_contents(tx)?;
            firewall.rewrite(&contents, true).map_err(firewall_error)
        })
    }

    /// Makes sure ctnet's table exists in this layout, with its rules, before something
    /// adds to it. A missing, flushed or edited table, or one of another layout, is
    /// rewritten holding everything in the store — by one process: the others find it
    /// current once they hold the lock.
    pub(crate) fn ensure_firewall(&mut self) -> Result<()> {
        if self.firewall.is_current().map_err(firewall_error)? {
            return Ok(());
        }
        if !self.store.read().is_autocommit() {
            // Called under a write lock this process holds already (a repair by gc).
            let contents = firewall_contents(self.store.read())?;
            self.firewall
                .rewrite(&contents, false)
                .map_err(firewall_error)?;
            return Ok(());
        }
        let Engine {
            store, firewall, ..
        } = self;
        store.write(|tx| {
            if firewall.is_current_now().map_err(firewall_error)? {
                return Ok(());
            }
            let contents = firewall_contents(tx)?;
            firewall.rewrite(&contents, false).map_err(firewall_error)?;
            Ok(())
        })
    }

    /// What the table should hold, read from the store (in a transaction the caller
    /// holds).
    pub(crate) fn firewall_contents_now(&self) -> Result<Contents> {
        firewall_contents(self.store.read())
    }
}

/// What the table should hold: every network and published port not being removed.
fn firewall_contents(conn: &Connection) -> Result<Contents> {
    let networks = state::list_networks(conn)?
        .iter()
        .filter(|net| net.state != RowState::Removing)
        .filter_map(network_rules)
        .collect();
    let ports = state::list_endpoints(conn)?
        .iter()
        .filter(|ep| ep.state != RowState::Removing)
        .flat_map(port_rules)
        .collect();
    Ok(Contents { networks, ports })
}

/// The error for a failed change to ctnet's table.
pub(crate) fn firewall_error(e: ctnet_kernel::Error) -> Error {
    Error::kernel(format!("nftables table {TABLE}"), e)
}
