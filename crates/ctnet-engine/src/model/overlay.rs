//! Overlay networks: one subnet across hosts, each host a block of it, VXLAN between them
//! (Flannel's vxlan model; see docs/overlay.md).
//!
//! ```text
//!   cluster subnet 10.50.0.0/16, VNI 42, blocks of /24
//!
//!   host A (underlay 192.0.2.11)               host B (underlay 192.0.2.12)
//!   ┌──────────────────────────────┐           ┌──────────────────────────────┐
//!   │ c1 10.50.1.2                 │           │ c2 10.50.2.2                 │
//!   │  └─veth─ br-… 10.50.1.1/24   │           │  br-… 10.50.2.1/24 ─veth─┘   │
//!   │          vx-… 10.50.1.0/32 ──┼─UDP 4789──┼── vx-… 10.50.2.0/32          │
//!   │  route 10.50.2.0/24 via 10.50.2.0 dev vx-… onlink                        │
//!   │  neigh 10.50.2.0 lladdr <B's VTEP MAC> permanent                         │
//!   │  fdb   <B's VTEP MAC> dst 192.0.2.12 self permanent                      │
//!   └──────────────────────────────┘           └──────────────────────────────┘
//! ```
//!
//! What is shared (in etcd) is the overlay's definition ([`OverlayDef`]) and which host
//! holds which block ([`BlockLease`]); a container's address never leaves its host.

use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{MacAddr, NetworkName};

/// The UDP port VXLAN uses (IANA).
pub const VXLAN_PORT: u16 = 4789;
/// What VXLAN adds to a packet over IPv4: outer IPv4 (20), UDP (8), VXLAN (8) and the
/// inner Ethernet header (14).
pub const VXLAN_OVERHEAD: u32 = 50;
/// The block prefix a host leases when none is given.
pub const DEFAULT_HOST_PREFIX: u8 = 24;
/// The longest block prefix: a gateway, the VTEP address, at least one container and
/// the broadcast address.
pub const MAX_HOST_PREFIX: u8 = 29;

/// A VXLAN network identifier: 24 bits, 0 excluded (reserved by convention, and what
/// an unconfigured device has).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Vni(u32);

impl Vni {
    /// The largest VNI.
    pub const MAX: u32 = (1 << 24) - 1;

    /// Checks a VNI.
    pub fn new(value: u32) -> Result<Vni> {
        if (1..=Vni::MAX).contains(&value) {
            Ok(Vni(value))
        } else {
            Err(Error::invalid(
                format!("VNI {value}"),
                "is out of range",
                format!("use a VNI from 1 to {}", Vni::MAX),
            ))
        }
    }

    /// Parses a VNI given on the command line.
    pub fn parse(text: &str) -> Result<Vni> {
        let value: u32 = text.parse().map_err(|_| {
            Error::invalid(
                format!("VNI {text:?}"),
                "is not a number",
                format!("use a VNI from 1 to {}", Vni::MAX),
            )
        })?;
        Vni::new(value)
    }

    /// The number.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for Vni {
    type Error = Error;
    fn try_from(value: u32) -> Result<Vni> {
        Vni::new(value)
    }
}

impl From<Vni> for u32 {
    fn from(vni: Vni) -> u32 {
        vni.0
    }
}

impl fmt::Display for Vni {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An overlay network as the cluster knows it: what `ctnet network create --driver
/// overlay` writes to etcd, and every host's agent reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlayDef {
    /// Its name, the same on every host.
    pub name: NetworkName,
    /// The cluster-wide subnet.
    pub subnet: Ipv4Net,
    /// Its VXLAN network identifier.
    pub vni: Vni,
    /// The prefix length of each host's block.
    pub host_prefix: u8,
    /// The MTU of its containers and devices; None: each host's underlay MTU minus
    /// [`VXLAN_OVERHEAD`].
    pub mtu: Option<u32>,
    /// Creation time, seconds since the epoch.
    pub created: i64,
}

impl OverlayDef {
    /// Checks a new overlay's shape: the subnet in canonical form and room for at least
    /// one block, the block prefix longer than the subnet's and at most
    /// [`MAX_HOST_PREFIX`].
    pub fn check(&self) -> Result<()> {
        let object = format!("overlay network {:?}", self.name.as_str());
        if self.subnet.trunc() != self.subnet {
            return Err(Error::invalid(
                &object,
                format!("subnet {} has host bits set", self.subnet),
                format!("write it as {}", self.subnet.trunc()),
            ));
        }
        if self.host_prefix > MAX_HOST_PREFIX {
            return Err(Error::invalid(
                &object,
                format!(
                    "a block of /{} is too small for a host (gateway, VTEP address, containers)",
                    self.host_prefix
                ),
                format!("use --host-prefix {MAX_HOST_PREFIX} or shorter"),
            ));
        }
        if self.host_prefix < self.subnet.prefix_len() {
            return Err(Error::invalid(
                &object,
                format!(
                    "subnet {} is too small for even one host block of /{}",
                    self.subnet, self.host_prefix
                ),
                format!(
                    "use a subnet of /{} or shorter, or a longer --host-prefix",
                    self.host_prefix.saturating_sub(8).max(8)
                ),
            ));
        }
        if self.host_prefix == self.subnet.prefix_len() {
            return Err(Error::invalid(
                &object,
                format!(
                    "the host block prefix /{} is not longer than the subnet's /{}, so the subnet \
                     holds one host's block and no more",
                    self.host_prefix,
                    self.subnet.prefix_len()
                ),
                format!(
                    "use a larger subnet (e.g. /{}) or a longer --host-prefix (e.g. {})",
                    self.host_prefix.saturating_sub(8).max(8),
                    (self.subnet.prefix_len() + 8).min(MAX_HOST_PREFIX)
                ),
            ));
        }
        Ok(())
    }

    /// The number of blocks the subnet holds.
    pub fn block_count(&self) -> u64 {
        1u64 << (self.host_prefix - self.subnet.prefix_len()).min(32)
    }

    /// The `index`th block of the subnet.
    pub fn block(&self, index: u64) -> Option<Ipv4Net> {
        if index >= self.block_count() {
            return None;
        }
        let base = u32::from(self.subnet.network()) as u64;
        let size = 1u64 << (32 - self.host_prefix);
        let addr = Ipv4Addr::from((base + index * size) as u32);
        Ipv4Net::new(addr, self.host_prefix).ok()
    }

    /// The MTU on a host whose underlay device has `underlay_mtu`.
    pub fn mtu_over(&self, underlay_mtu: u32) -> u32 {
        self.mtu
            .unwrap_or(underlay_mtu.saturating_sub(VXLAN_OVERHEAD))
    }
}

/// A host's lease of one block of an overlay, as kept in etcd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockLease {
    /// The block.
    pub block: Ipv4Net,
    /// The host's underlay address (its VTEP's outer source address).
    pub underlay: Ipv4Addr,
    /// The MAC of the host's VXLAN device for this overlay.
    pub vtep_mac: String,
    /// The host's name, for people.
    pub host: String,
    /// How many containers the host has on the overlay (an overlay is not removed while
    /// any host has some).
    pub containers: u32,
}

/// A remote host of an overlay, as one host programs it: the three kernel entries
/// (route, neighbour, FDB) come from this.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Peer {
    /// The peer's block.
    pub block: Ipv4Net,
    /// Its underlay address.
    pub underlay: Ipv4Addr,
    /// Its VTEP's MAC.
    pub vtep_mac: MacAddr,
    /// Its name, for people.
    pub host: String,
}

impl Peer {
    /// The peer's VTEP address: its block's network address, as Flannel does (the
    /// route's next hop, and the neighbour entry's key).
    pub fn vtep_ip(&self) -> Ipv4Addr {
        self.block.network()
    }

    /// A lease read from etcd, as a peer; None if its MAC is malformed (another
    /// program's key).
    pub fn from_lease(lease: &BlockLease) -> Option<Peer> {
        Some(Peer {
            block: lease.block,
            underlay: lease.underlay,
            vtep_mac: MacAddr::parse("VTEP MAC", &lease.vtep_mac).ok()?,
            host: lease.host.clone(),
        })
    }
}

/// This host's part of an overlay, as the local store keeps it beside the network (whose
/// subnet is the block).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlayConfig {
    /// The cluster-wide subnet.
    pub cluster: Ipv4Net,
    /// The VNI.
    pub vni: Vni,
    /// The block prefix.
    pub host_prefix: u8,
    /// The VXLAN device.
    pub vxlan: String,
    /// This host's underlay address.
    pub underlay: Ipv4Addr,
    /// The VXLAN device's MAC.
    pub vtep_mac: String,
}

impl OverlayConfig {
    /// The VXLAN device's MAC.
    pub fn mac(&self) -> MacAddr {
        MacAddr::parse("VTEP MAC", &self.vtep_mac)
            .unwrap_or_else(|_| vtep_mac(self.vni, self.underlay))
    }
}

/// A host's VTEP MAC for an overlay: derived from the VNI and the underlay address, so it
/// is the same after every restart (Flannel's flannel#533: a new MAC at each start left
/// peers with stale entries) and differs between hosts of one overlay.
pub fn vtep_mac(vni: Vni, underlay: Ipv4Addr) -> MacAddr {
    let [a, b, c, d] = underlay.octets();
    let v = vni.get().to_be_bytes();
    // 0x0e: locally administered, unicast.
    MacAddr::new([0x0e ^ (v[1] << 4), v[2] ^ v[3], a, b, c, d]).expect("unicast, nonzero")
}

/// Which block a host takes: the one it held before if it is still free or its own
/// (never renumber a host that has containers), else the first free one.
pub fn pick_block(
    def: &OverlayDef,
    taken: &[(Ipv4Net, Ipv4Addr)],
    me: Ipv4Addr,
    held: Option<Ipv4Net>,
) -> Option<Ipv4Net> {
    let holder = |block: Ipv4Net| taken.iter().find(|(b, _)| *b == block).map(|(_, u)| *u);
    if let Some(own) = taken.iter().find(|(_, u)| *u == me) {
        return Some(own.0);
    }
    if let Some(block) = held {
        if def.subnet.contains(&block) && block.prefix_len() == def.host_prefix {
            match holder(block) {
                None => return Some(block),
                Some(u) if u == me => return Some(block),
                Some(_) => {}
            }
        }
    }
    (0..def.block_count().min(1 << 20))
        .filter_map(|i| def.block(i))
        .find(|b| holder(*b).is_none())
}

/// The addresses a host's block gives: the VTEP's (the network address) and the
/// gateway's (the first host address).
pub fn block_addresses(block: Ipv4Net) -> (Ipv4Addr, Ipv4Addr) {
    let vtep = block.network();
    let gateway = Ipv4Addr::from(u32::from(vtep) + 1);
    (vtep, gateway)
}

/// What changes to make one overlay's peers in the kernel what they should be.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerChanges {
    /// Peers whose entries must be made (new, or changed: a peer that moved is removed
    /// and added).
    pub add: Vec<Peer>,
    /// Peers whose entries must go.
    pub remove: Vec<Peer>,
}

/// Compares the peers wanted with those programmed; peers that are in both unchanged
/// are left alone (a re-read never flushes).
pub fn peer_changes(wanted: &[Peer], programmed: &[Peer]) -> PeerChanges {
    PeerChanges {
        add: wanted
            .iter()
            .filter(|p| !programmed.contains(p))
            .cloned()
            .collect(),
        remove: programmed
            .iter()
            .filter(|p| !wanted.contains(p))
            .cloned()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(subnet: &str, prefix: u8) -> OverlayDef {
        OverlayDef {
            name: NetworkName::new("ov").unwrap(),
            subnet: subnet.parse().unwrap(),
            vni: Vni::new(42).unwrap(),
            host_prefix: prefix,
            mtu: None,
            created: 0,
        }
    }

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn vni_range() {
        assert!(Vni::new(0).is_err());
        assert!(Vni::new(1).is_ok());
        assert!(Vni::new(16_777_215).is_ok());
        let e = Vni::new(16_777_216).unwrap_err();
        assert!(e.to_string().contains("out of range"), "{e}");
        assert!(Vni::parse("x").is_err());
    }

    #[test]
    fn shapes_are_checked() {
        assert!(def("10.50.0.0/16", 24).check().is_ok());
        let e = def("10.50.0.0/24", 24).check().unwrap_err();
        assert!(e.to_string().contains("not longer"), "{e}");
        let e = def("10.50.0.0/30", 24).check().unwrap_err();
        assert!(
            e.to_string().contains("too small for even one host block"),
            "{e}"
        );
        let e = def("10.50.0.0/16", 30).check().unwrap_err();
        assert!(e.to_string().contains("too small"), "{e}");
        let e = def("10.50.1.0/16", 24).check().unwrap_err();
        assert!(e.to_string().contains("host bits"), "{e}");
        assert_eq!(def("10.50.0.0/16", 24).block_count(), 256);
        assert_eq!(def("10.50.0.0/16", 24).block(3), Some(net("10.50.3.0/24")));
        assert_eq!(def("10.50.0.0/16", 24).block(256), None);
    }

    #[test]
    fn a_host_keeps_its_block_and_others_take_the_first_free() {
        let d = def("10.50.0.0/16", 24);
        let me: Ipv4Addr = "192.0.2.11".parse().unwrap();
        let other: Ipv4Addr = "192.0.2.12".parse().unwrap();
        assert_eq!(pick_block(&d, &[], me, None), Some(net("10.50.0.0/24")));
        let taken = [(net("10.50.0.0/24"), other)];
        assert_eq!(pick_block(&d, &taken, me, None), Some(net("10.50.1.0/24")));
        // The block held before, still free: kept.
        assert_eq!(
            pick_block(&d, &taken, me, Some(net("10.50.7.0/24"))),
            Some(net("10.50.7.0/24"))
        );
        // Held before but taken meanwhile: the first free one.
        assert_eq!(
            pick_block(&d, &taken, me, Some(net("10.50.0.0/24"))),
            Some(net("10.50.1.0/24"))
        );
        // A lease of its own in etcd wins.
        let taken = [(net("10.50.0.0/24"), other), (net("10.50.9.0/24"), me)];
        assert_eq!(pick_block(&d, &taken, me, None), Some(net("10.50.9.0/24")));
        // Full.
        let small = def("10.50.0.0/23", 24);
        let taken = [(net("10.50.0.0/24"), other), (net("10.50.1.0/24"), other)];
        assert_eq!(pick_block(&small, &taken, me, None), None);
    }

    #[test]
    fn vtep_macs_are_stable_unicast_and_differ_between_hosts() {
        let vni = Vni::new(42).unwrap();
        let a = vtep_mac(vni, "192.0.2.11".parse().unwrap());
        assert_eq!(a, vtep_mac(vni, "192.0.2.11".parse().unwrap()));
        assert_ne!(a, vtep_mac(vni, "192.0.2.12".parse().unwrap()));
        assert_ne!(
            a,
            vtep_mac(Vni::new(43).unwrap(), "192.0.2.11".parse().unwrap())
        );
        assert_eq!(a.bytes()[0] & 1, 0);
        assert_eq!(a.bytes()[0] & 2, 2, "locally administered");
    }

    #[test]
    fn peer_changes_leave_unchanged_peers_alone() {
        let p = |b: &str, u: &str| Peer {
            block: net(b),
            underlay: u.parse().unwrap(),
            vtep_mac: MacAddr::new([0x0e, 0, 0, 0, 0, 1]).unwrap(),
            host: "h".into(),
        };
        let a = p("10.50.1.0/24", "192.0.2.11");
        let b = p("10.50.2.0/24", "192.0.2.12");
        let b_moved = p("10.50.2.0/24", "192.0.2.99");
        let changes = peer_changes(&[a.clone(), b_moved.clone()], &[a.clone(), b.clone()]);
        assert_eq!(changes.add, vec![b_moved]);
        assert_eq!(changes.remove, vec![b]);
        let same = std::slice::from_ref(&a);
        assert_eq!(peer_changes(same, same), PeerChanges::default());
    }

    #[test]
    fn block_addresses_are_the_vtep_and_the_gateway() {
        let (vtep, gw) = block_addresses(net("10.50.3.0/24"));
        assert_eq!(vtep.to_string(), "10.50.3.0");
        assert_eq!(gw.to_string(), "10.50.3.1");
    }
}
