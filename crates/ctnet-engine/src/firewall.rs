//! ctnet's nftables table: its layout, and how networks change it.
//!
//! ctnet owns exactly one table and touches nothing else in the ruleset:
//!
//! ```text
//! table inet ctnet {                       # comment carries LAYOUT
//!     set masq_subnets { type ipv4_addr; flags interval; }
//!     set masq_local { type ipv4_addr . ifname; flags interval; }
//!     chain postrouting {
//!         type nat hook postrouting priority srcnat; policy accept;
//!         meta nfproto ipv4 ip saddr @masq_subnets ip saddr . oifname != @masq_local counter masquerade
//!     }
//! }
//! ```
//!
//! The rule is written once; a network only adds elements: its subnet to `masq_subnets`,
//! and `subnet . bridge` to `masq_local` so traffic that stays on its own bridge keeps its
//! source. The cost per packet is two set lookups however many networks exist, where
//! Docker's bridge driver adds one iptables rule per network and walks them all.
//!
//! The table is made whole (skeleton plus every network the store knows) in one exclusive
//! batch, so when ctnet processes race, one creates it and the others see EEXIST and carry
//! on; a table deleted behind ctnet's back comes back with all networks in it. A table
//! with another layout comment is rebuilt the same way.

use ctnet_kernel::nft::{
    self, BaseChain, ChainType, Element, Expr, Family, Hook, Key, KeyField, MetaKey, NftSocket,
    Register, SetSpec,
};
use ctnet_kernel::IfName;

use crate::model::Subnet;

/// The family and name of ctnet's table.
pub const FAMILY: Family = Family::Inet;
/// The name of ctnet's table.
pub const TABLE: &str = "ctnet";
/// The table's comment, which also names the layout this code writes. A table with any
/// other comment was made by a different ctnet version and is rebuilt by `ctnet gc`.
pub const LAYOUT: &str = "managed by ctnet, layout 1; edits are overwritten";

const NAT_CHAIN: &str = "postrouting";
const MASQ_SUBNETS: &str = "masq_subnets";
const MASQ_LOCAL: &str = "masq_local";
/// `srcnat` priority, where Docker and nft's own templates put masquerade.
const SRCNAT_PRIORITY: i32 = 100;

/// A network as the firewall sees it: the subnet and the bridge its traffic stays on.
#[derive(Debug, Clone)]
pub struct MasqueradedNetwork {
    /// The network's subnet.
    pub subnet: Subnet,
    /// The network's bridge.
    pub bridge: IfName,
}

/// ctnet's table for one process; the netlink socket opens on first use.
#[derive(Default)]
pub struct Firewall {
    socket: Option<NftSocket>,
    table_checked: bool,
}

impl Firewall {
    /// A handle; nothing is opened or checked until first use.
    pub fn new() -> Self {
        Firewall::default()
    }

    /// True when ctnet's table exists with this code's layout. Once true, it is not asked
    /// again by this process.
    pub fn is_current(&mut self) -> ctnet_kernel::Result<bool> {
        if !self.table_checked {
            let comment = self.socket()?.table_comment(FAMILY, TABLE)?;
            self.table_checked = comment.as_deref() == Some(LAYOUT);
        }
        Ok(self.table_checked)
    }

    /// True when a table named like ctnet's exists, whatever its layout.
    pub fn table_exists(&mut self) -> ctnet_kernel::Result<bool> {
        Ok(self.socket()?.table_comment(FAMILY, TABLE)?.is_some())
    }

    /// Creates the table holding `networks` unless it exists, in one exclusive batch:
    /// when ctnet processes race, one creates it and the others carry on.
    pub fn create(&mut self, networks: &[MasqueradedNetwork]) -> ctnet_kernel::Result<()> {
        let socket = self.socket()?;
        let mut batch = socket.batch();
        add_skeleton(&mut batch, true);
        for net in networks {
            add_network_elements(&mut batch, net);
        }
        match socket.commit(batch) {
            Err(e) if e.is_exists() => {}
            other => other?,
        }
        self.table_checked = true;
        Ok(())
    }

    /// Replaces the whole table with one holding exactly `networks`, in one batch: a
    /// table edited by hand or left by another layout comes back as ctnet would have
    /// made it, and packets never see a half-built table.
    pub fn rebuild(&mut self, networks: &[MasqueradedNetwork]) -> ctnet_kernel::Result<()> {
        let socket = self.socket()?;
        let mut batch = socket.batch();
        batch.destroy_table(FAMILY, TABLE);
        add_skeleton(&mut batch, false);
        for net in networks {
            add_network_elements(&mut batch, net);
        }
        socket.commit(batch)?;
        self.table_checked = true;
        Ok(())
    }

    /// Masquerades IPv4 traffic from the network's subnet that leaves through anything
    /// but its own bridge. The table must exist ([`Firewall::is_current`]). Adding what
    /// is already there is not an error.
    pub fn add_masquerade(&mut self, net: &MasqueradedNetwork) -> ctnet_kernel::Result<()> {
        let socket = self.socket()?;
        let mut batch = socket.batch();
        add_network_elements(&mut batch, net);
        socket.commit(batch)
    }

    /// Removes what [`Firewall::add_masquerade`] added; elements or a table already gone
    /// are fine.
    pub fn remove_masquerade(&mut self, net: &MasqueradedNetwork) -> ctnet_kernel::Result<()> {
        let socket = self.socket()?;
        let mut batch = socket.batch();
        let what = describe(net);
        batch.destroy_elements(FAMILY, TABLE, MASQ_SUBNETS, &[subnet_element(net)], &what);
        batch.destroy_elements(FAMILY, TABLE, MASQ_LOCAL, &[local_element(net)], &what);
        match socket.commit(batch) {
            // Destroying elements of a missing table is ENOENT; with no table there is
            // nothing left to remove.
            Err(e) if e.is_not_found() && socket.table_comment(FAMILY, TABLE)?.is_none() => Ok(()),
            other => other,
        }
    }

    fn socket(&mut self) -> ctnet_kernel::Result<&mut NftSocket> {
        if self.socket.is_none() {
            self.socket = Some(NftSocket::open()?);
        }
        Ok(self.socket.as_mut().expect("socket was just opened"))
    }
}

/// The table, its sets, the nat chain and the masquerade rule.
fn add_skeleton(batch: &mut nft::Batch, exclusive: bool) {
    batch.add_table(FAMILY, TABLE, LAYOUT, exclusive);
    batch.add_set(
        FAMILY,
        TABLE,
        &SetSpec {
            name: MASQ_SUBNETS.into(),
            key: vec![KeyField::Ipv4Addr],
            interval: true,
        },
    );
    batch.add_set(
        FAMILY,
        TABLE,
        &SetSpec {
            name: MASQ_LOCAL.into(),
            key: vec![KeyField::Ipv4Addr, KeyField::IfName],
            interval: true,
        },
    );
    batch.add_chain(
        FAMILY,
        TABLE,
        NAT_CHAIN,
        Some(BaseChain {
            kind: ChainType::Nat,
            hook: Hook::Postrouting,
            priority: SRCNAT_PRIORITY,
        }),
    );
    batch.add_rule(
        FAMILY,
        TABLE,
        NAT_CHAIN,
        &masquerade_rule(),
        "masquerade traffic leaving ctnet networks",
    );
}

/// `meta nfproto ipv4 ip saddr @masq_subnets ip saddr . oifname != @masq_local counter masquerade`
fn masquerade_rule() -> Vec<Expr> {
    let saddr = Register::R0;
    let oifname = saddr.after(4).expect("register after the first exists");
    let mut exprs = nft::is_ipv4().to_vec();
    exprs.extend([
        nft::load_ipv4_saddr(saddr),
        Expr::Lookup {
            set: MASQ_SUBNETS.into(),
            sreg: saddr,
            invert: false,
        },
        Expr::Meta {
            key: MetaKey::OifName,
            dreg: oifname,
        },
        Expr::Lookup {
            set: MASQ_LOCAL.into(),
            sreg: saddr,
            invert: true,
        },
        Expr::Counter,
        Expr::Masquerade,
    ]);
    exprs
}

fn add_network_elements(batch: &mut nft::Batch, net: &MasqueradedNetwork) {
    let what = describe(net);
    batch.add_elements(FAMILY, TABLE, MASQ_SUBNETS, &[subnet_element(net)], &what);
    batch.add_elements(FAMILY, TABLE, MASQ_LOCAL, &[local_element(net)], &what);
}

fn subnet_element(net: &MasqueradedNetwork) -> Element {
    let n = net.subnet.net();
    Element::ipv4_prefix(n.network(), n.prefix_len())
}

fn local_element(net: &MasqueradedNetwork) -> Element {
    let n = net.subnet.net();
    let (first, last) = nft::ipv4_bounds(n.network(), n.prefix_len());
    Element::Range {
        first: Key::new().ipv4(first).ifname(&net.bridge),
        last: Key::new().ipv4(last).ifname(&net.bridge),
    }
}

fn describe(net: &MasqueradedNetwork) -> String {
    format!("{} on {}", net.subnet.net(), net.bridge)
}
