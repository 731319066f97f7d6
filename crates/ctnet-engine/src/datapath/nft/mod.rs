//! ctnet's nftables table: its layout, and how networks and published ports change it.
//!
//! ctnet owns two tables and touches nothing else in the ruleset: this one, and `bridge
//! ctnet`, which holds anti-spoofing at layer 2 (its own layout and drawing are in
//! `antispoof.rs`; it is audited and rewritten beside this one). This table's rules are
//! written once; networks and published ports only add and remove set and map elements,
//! so the 1,000th published port costs a map element, not a rule, and each packet pays a
//! few hash lookups however many networks and ports exist:
//!
//! ```text
//! table inet ctnet {                                  # comment carries LAYOUT
//!   set masq_subnets  { ipv4_addr; interval }         # non-internal subnets
//!   set masq_local    { ipv4_addr . ifname; interval } # subnet . its own bridge
//!   set masq_subnets6 { ipv6_addr; interval }         # the same for IPv6 (NAT66)
//!   set masq_local6   { ipv6_addr . ifname; interval }
//!   set bridges       { ifname }                      # every ctnet bridge
//!   set internal      { ifname }                      # bridges of --internal networks
//!   set icc           { ifname . ifname }             # bridge . bridge where icc is on
//!   set no_icc        { ifname . ifname }             # bridge . bridge where icc is off
//!   set open          { ifname }                      # bridges of open networks
//!   set shared        { ifname }                      # bridges of open or isolated networks
//!   map publish_any   { inet_proto . inet_service : ipv4_addr . inet_service; flags timeout }
//!   map publish_addr  { ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; flags timeout }
//!   map publish_any6  { inet_proto . inet_service : ipv6_addr . inet_service; flags timeout }
//!   map publish_addr6 { ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service; flags timeout }
//!   set trace         { ipv4_addr . ipv4_addr . inet_proto; flags timeout }  # flows `ctnet trace` follows
//!   set trace6        { ipv6_addr . ipv6_addr . inet_proto; flags timeout }
//!   set policy_selected, policy_allow, policy_allow_ranges, policy_deny, policy_deny_ranges
//!                     (and the same ending in 6)   # network policy: see policy.rs
//!   set vxlan_local   { ipv4_addr . inet_service } # underlay address . port of each overlay VTEP
//!   set vxlan_peers   { ipv4_addr }                # underlay addresses of the overlays' other hosts
//!
//!   chain user { }    # yours: jumped to first from forward, never rewritten by ctnet
//!   chain trace_in    { filter prerouting raw-10: ip saddr . ip daddr . meta l4proto @trace meta nftrace set 1
//!                                                 (the same for IPv6 through @trace6) }
//!   chain trace_out   { filter output raw-10:     (the same two rules, for the host's own packets) }
//!   chain guard       { filter prerouting raw:   iifname != "lo" ip daddr 127.0.0.0/8 drop }
//!   chain vxlan_in    { filter input filter:     meta l4proto udp ip daddr . th dport @vxlan_local
//!                                                ip saddr != @vxlan_peers counter drop }
//!   chain prerouting  { nat prerouting dstnat:   fib daddr type local dnat ... map @publish_addr
//!                                                fib daddr type local dnat ... map @publish_any
//!                                                (the same two for IPv6, through the maps ending in 6) }
//!   chain output      { nat output dstnat:       (the same two rules, for the host's own traffic) }
//!   chain policy      { filter forward filter-1: network policy, before forward (see policy.rs) }
//!   chain forward     { filter forward filter:   jump user
//!                                                ct state established,related accept
//!                                                iifname . oifname @icc accept
//!                                                iifname @internal drop; oifname @internal drop
//!                                                oifname @bridges ct status dnat accept
//!                                                iifname . oifname @no_icc drop
//!                                                iifname @open oifname @shared accept
//!                                                iifname @shared oifname @open accept
//!                                                oifname @bridges drop }
//!   chain postrouting { nat postrouting srcnat:  ip saddr @masq_subnets ip saddr . oifname != @masq_local masquerade
//!                                                ct status dnat ip saddr . oifname @masq_local masquerade   # hairpin
//!                                                ct status dnat ip saddr 127.0.0.0/8 masquerade            # localhost
//!                                                (the first two again for IPv6, with the sets ending in 6) }
//! }
//! ```
//!
//! Isolation between networks is a property of each network (`model::Isolation`), two
//! set lookups per packet however many networks exist: an open network's bridge is in
//! `open` and `shared`, an isolated one's in `shared` only, a strict one's (and an
//! internal one's) in neither. So traffic between two bridges passes when one is open
//! and the other open or isolated — netavark's semantics (its NETAVARK_ISOLATION chains)
//! — and everything else meets `oifname @bridges drop`. Between networks, as with
//! netavark, the traffic is masqueraded (the first postrouting rule: the source subnet
//! is not the output bridge's), so a server sees the gateway of its own network.
//! `no_icc` keeps containers of one icc=false bridge apart even when that bridge is
//! open (with br_netfilter a frame between two of its ports has it as input and output;
//! its isolated ports already stop such frames, this is the firewall's half).
//!
//! An overlay network (`model::overlay`) is a bridge network whose VXLAN device is a
//! second interface of the network: it is in `bridges` (and `open`/`shared` as the
//! bridge is), `bridge . vxlan` and `vxlan . bridge` are in `icc`, and `cluster subnet .
//! vxlan` is in `masq_local`, so traffic between containers of the overlay on different
//! hosts passes unmasqueraded while everything else between networks is isolated as for
//! bridges. VXLAN carries no authentication: `vxlan_in` drops VXLAN to a VTEP from any
//! address but the registered hosts' (the agent keeps `vxlan_peers` to what etcd says).
//!
//! IPv6 has sets and maps of its own beside the IPv4 ones (an element's key has one
//! layout), and the rules that look at addresses come in pairs, one per family; the
//! rules that look only at interfaces and conntrack (`forward`: isolation, internal
//! networks, published ports) hold for both families at once. IPv6 needs no `guard`:
//! ports are never published on ::1 (IPv6 has no `route_localnet`, so DNAT from ::1 to a
//! container cannot work), and the kernel itself drops packets for ::1 that arrive on
//! any interface but `lo`.
//!
//! Published ports reach containers from the wan, from the host itself (its addresses and
//! 127.0.0.1), from the container itself (hairpin) and from other containers. Traffic to
//! 127.0.0.1 leaves the host's loopback only because ctnet bridges have `route_localnet`
//! set; `guard` drops anything arriving from outside (a wan host or a container) for
//! 127.0.0.0/8 before routing, so a loopback-published port is never reachable from
//! another machine (the CVE-2020-8558 class).
//!
//! Withdrawing a port: its element is made to expire one clock tick from now (an update
//! with a 1 ms timeout), not deleted; that is why the publish maps take timeouts. Ports
//! are published with no timeout and never expire on their own. A deleted element is
//! freed by the kernel after an RCU grace period, and until then the close of any
//! nf_tables socket (every ctnet process's, at exit) waits for it holding the kernel's
//! nf_tables commit lock, so any commit of another ctnet process queues behind it: that
//! was the detach's 40–50 ms p99. An expired element matches no packet, is not listed
//! and does not clash with a new element of its key; the set's garbage collector frees it
//! later without holding anyone up. Until the tick passes (at most 10 ms, at 4 ms with
//! HZ=250) the key is still taken, so publishing it again to another address retries
//! once after it. Kernels before 6.10 cannot update an element's timeout; there ports
//! are deleted.
//!
//! `ctnet trace` follows one probe packet through these chains: it adds the probe's
//! `source . destination . protocol` to `trace` (or `trace6`) with a timeout of a few
//! seconds, so the kernel sets the packet's trace bit before any other chain sees it and
//! reports every chain and rule it meets (NFNLGRP_NFTRACE), then expires the element.
//! A trace that is killed leaves an element that expires by itself; the sets are
//! empty otherwise, and each packet pays one lookup in an empty hash set.
//!
//! With `br_netfilter` active (bridge-nf-call-iptables=1, as wherever Docker runs),
//! frames between containers on one bridge also pass these hooks, with the bridge as both
//! input and output interface: `icc` lets them through where the network allows it, and a
//! container reaching its own published port is DNATed at the bridge layer and bridged
//! back to its own port, which is why container ports are in hairpin mode. Without
//! `br_netfilter` bridged frames skip these hooks; icc=false is then enforced by isolated
//! bridge ports alone.

mod antispoof;
mod audit;
mod policy;
pub mod verified;

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;

use ctnet_kernel::IfName;
use ctnet_nft::abi::{CT_STATE_ESTABLISHED, CT_STATE_RELATED, CT_STATUS_DNAT};
use ctnet_nft::{
    BaseChain, Batch, ChainType, Element, Family, Field, Hook, Key, KeyField, NfProto, NftSocket,
    Rule, SetSpec, TableRef,
};

use crate::model::ports::PublishedPort;
use crate::model::{Isolation, Subnet};

pub use antispoof::{GuardAudit, PortGuard, GUARD_CHAIN, GUARD_LAYOUT, GUARD_TABLE, SPOOF_PORTS};
pub use audit::{Rewrite, TableAudit};
pub use policy::POLICY_SETS;

/// ctnet's table.
pub const TABLE: TableRef = TableRef::new(Family::Inet, "ctnet");
/// The table's comment, which also names the layout this code writes. A table with any
/// other comment is deleted and made again in this layout in one batch, the `user`
/// chain's rules carried over (see `audit.rs`).
pub const LAYOUT: &str = "managed by ctnet, layout 8; edits outside chain user are overwritten";
/// The chain for people's own forward rules; ctnet jumps to it first and never rewrites it.
pub const USER_CHAIN: &str = "user";

const MASQ_SUBNETS: &str = "masq_subnets";
const MASQ_LOCAL: &str = "masq_local";
const BRIDGES: &str = "bridges";
const INTERNAL: &str = "internal";
const ICC: &str = "icc";
const NO_ICC: &str = "no_icc";
const OPEN: &str = "open";
const SHARED: &str = "shared";
const PUBLISH_ANY: &str = "publish_any";
const VXLAN_LOCAL: &str = "vxlan_local";
const VXLAN_PEERS: &str = "vxlan_peers";
const PUBLISH_ADDR: &str = "publish_addr";
const MASQ_SUBNETS6: &str = "masq_subnets6";
const MASQ_LOCAL6: &str = "masq_local6";
const PUBLISH_ANY6: &str = "publish_any6";
const PUBLISH_ADDR6: &str = "publish_addr6";
/// The flows `ctnet trace` follows (source . destination . protocol).
pub const TRACE: &str = "trace";
/// The same for IPv6.
pub const TRACE6: &str = "trace6";

/// Standard hook priorities, as nft names them.
const RAW: i32 = -300;
const DSTNAT: i32 = -100;
const FILTER: i32 = 0;
const SRCNAT: i32 = 100;

/// A network as the firewall sees it.
#[derive(Debug, Clone)]
pub struct NetworkRules {
    /// The network's subnets, one per family.
    pub subnets: Vec<Subnet>,
    /// The network's bridge.
    pub bridge: IfName,
    /// Internal networks get no masquerade and nothing forwarded in or out.
    pub internal: bool,
    /// Containers on the bridge may talk to each other.
    pub icc: bool,
    /// Which other networks' bridges traffic may pass to and from.
    pub isolation: Isolation,
    /// An overlay network's VXLAN device and cluster subnet.
    pub vxlan: Option<(IfName, ipnet::Ipv4Net)>,
}

/// Who may send VXLAN to this host: each overlay VTEP's underlay address and port, and
/// the underlay addresses of the overlays' other hosts. Kept apart from the networks'
/// elements because overlays share both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VxlanSources {
    /// Underlay address and UDP port of each local VTEP.
    pub local: std::collections::BTreeSet<(Ipv4Addr, u16)>,
    /// Underlay addresses of the remote hosts.
    pub peers: std::collections::BTreeSet<Ipv4Addr>,
}

impl VxlanSources {
    fn elements(&self) -> Vec<(&'static str, Element)> {
        let local = self
            .local
            .iter()
            .map(|(ip, port)| (VXLAN_LOCAL, Element::Key(Key::new().ipv4(*ip).port(*port))));
        let peers = self
            .peers
            .iter()
            .map(|ip| (VXLAN_PEERS, Element::Key(Key::new().ipv4(*ip))));
        local.chain(peers).collect()
    }
}

/// A published port as the firewall sees it: where it goes.
#[derive(Debug, Clone, Copy)]
pub struct PortRules {
    /// The host side and protocol.
    pub port: PublishedPort,
    /// The container's address, of the family the port forwards over.
    pub container_ip: IpAddr,
}

/// Everything the table holds besides its fixed rules.
#[derive(Debug, Clone, Default)]
pub struct Contents {
    /// Networks.
    pub networks: Vec<NetworkRules>,
    /// Published ports.
    pub ports: Vec<PortRules>,
    /// What the store's policies need.
    pub policy: crate::policy::Compiled,
    /// Guarded container ports, for the anti-spoofing table (`antispoof.rs`).
    pub guards: Vec<PortGuard>,
    /// Who may send VXLAN to this host.
    pub vxlan: VxlanSources,
}

/// ctnet's table for one process; the netlink socket opens on first use.
#[derive(Default)]
pub struct Firewall {
    socket: Option<NftSocket>,
    table_checked: bool,
    /// The anti-spoofing table was found current (`antispoof.rs`).
    guard_checked: bool,
    /// The run dir, where the record of a verified ruleset is kept (`verified.rs`);
    /// `None`: no record is read or written.
    record_dir: Option<PathBuf>,
    /// What this process knows of the ruleset's generation, once asked.
    known: KnownState,
}

/// [`Firewall::known`]'s states.
#[derive(Debug, Default)]
enum KnownState {
    /// Not asked yet.
    #[default]
    Unasked,
    /// No record is kept, or the generation, the cookie or the boot id could not be read.
    Unavailable,
    Known(verified::Known),
}

impl Firewall {
    /// A handle; nothing is opened or checked until first use.
    pub fn new() -> Self {
        Firewall::default()
    }

    /// A handle that reads and keeps the record of a verified ruleset in `run_dir`: a
    /// process finding the ruleset unchanged since another one checked ctnet's tables
    /// skips the check (see `verified.rs`).
    pub fn with_record(run_dir: PathBuf) -> Self {
        Firewall {
            record_dir: Some(run_dir),
            ..Firewall::default()
        }
    }

    /// True when ctnet's table exists with this code's layout and every ctnet chain
    /// holds the layout's rules (a flushed table, a deleted chain or an inserted rule is
    /// not current). Once true, it is not asked again by this process; nor is it when
    /// the ruleset has not changed since a ctnet process found it so.
    pub fn is_current(&mut self) -> ctnet_kernel::Result<bool> {
        if !self.table_checked {
            if self.known().is_some_and(|k| k.inet) {
                self.table_checked = true;
            } else {
                self.refresh_known();
                self.table_checked = self.structure_current()?;
                if self.table_checked {
                    self.note_verified(|k| k.inet = true);
                }
            }
        }
        Ok(self.table_checked)
    }

    /// [`Firewall::is_current`], asked of the kernel again.
    pub fn is_current_now(&mut self) -> ctnet_kernel::Result<bool> {
        self.table_checked = false;
        if let KnownState::Known(k) = &mut self.known {
            k.inet = false;
        }
        self.is_current()
    }

    /// What is known of the ruleset: on first use, its generation read from the kernel
    /// with the record of what was found current at it, if the record is of this
    /// generation, boot, namespace and code.
    fn known(&mut self) -> Option<&mut verified::Known> {
        if matches!(self.known, KnownState::Unasked) {
            self.known = match self.read_known() {
                Some(k) => KnownState::Known(k),
                None => KnownState::Unavailable,
            };
        }
        match &mut self.known {
            KnownState::Known(k) => Some(k),
            _ => None,
        }
    }

    fn read_known(&mut self) -> Option<verified::Known> {
        let dir = self.record_dir.clone()?;
        let boot_id = ctnet_kernel::netns::boot_id().ok()?;
        let socket = self.socket().ok()?;
        let cookie = ctnet_kernel::netns::socket_netns_cookie(socket.as_fd()).ok()?;
        let generation = socket.generation().ok()?;
        let layouts = verified::layouts_hash(LAYOUT, antispoof::GUARD_LAYOUT);
        let fresh = verified::Known::fresh(boot_id, cookie, generation, layouts);
        Some(verified::Known::from_record(
            verified::read(&dir).as_deref(),
            fresh,
        ))
    }

    /// Reads the generation again before a check, so that what the check finds is
    /// noted at a generation no later than the tables it read (a long-lived process, or
    /// one that committed since it first asked, knows an older one).
    fn refresh_known(&mut self) {
        if !matches!(self.known, KnownState::Known(_)) {
            return;
        }
        match (self.socket().and_then(|s| s.generation()), &mut self.known) {
            (Ok(now), KnownState::Known(k)) => k.seen(now),
            _ => self.known = KnownState::Unavailable,
        }
    }

    /// Notes a table found current at the known generation, and records it.
    fn note_verified(&mut self, mark: impl FnOnce(&mut verified::Known)) {
        if let (Some(dir), KnownState::Known(k)) = (&self.record_dir, &mut self.known) {
            mark(k);
            verified::write(dir, k);
        }
    }

    /// After this process's own commit of elements: what was known carries over to the
    /// generation after it when no one else committed meanwhile, and is recorded.
    fn after_own_commit(&mut self) {
        if !matches!(self.known, KnownState::Known(_)) {
            return;
        }
        let now = self.socket().and_then(|s| s.generation());
        match (now, &self.record_dir, &mut self.known) {
            (Ok(now), Some(dir), KnownState::Known(k)) => {
                if k.after_own_commit(now) {
                    verified::write(dir, k);
                }
            }
            _ => self.known = KnownState::Unavailable,
        }
    }

    /// True when a table named like ctnet's exists, whatever its layout.
    pub fn table_exists(&mut self) -> ctnet_kernel::Result<bool> {
        Ok(self.socket()?.table_comment(TABLE)?.is_some())
    }

    /// Creates the table holding `contents` unless it exists, in one exclusive batch:
    /// when ctnet processes race, one creates it and the others carry on.
    pub fn create(&mut self, contents: &Contents) -> ctnet_kernel::Result<()> {
        let socket = self.socket()?;
        let mut batch = socket.batch();
        add_skeleton(&mut batch, true);
        add_contents(&mut batch, contents);
        match socket.commit(batch) {
            Err(e) if e.is_exists() => {}
            other => other?,
        }
        self.table_checked = true;
        Ok(())
    }

    /// Adds a network's elements. The table must exist ([`Firewall::is_current`]);
    /// adding what is already there is not an error.
    pub fn add_network(&mut self, net: &NetworkRules) -> ctnet_kernel::Result<()> {
        let socket = self.socket()?;
        let mut batch = socket.batch();
        add_network_elements(&mut batch, net);
        socket.commit(batch)
    }

    /// Makes the VXLAN source sets hold exactly `sources`, in one batch: what is missing is
    /// added, what is no longer wanted goes, the rest is left alone. The table must exist.
    pub fn set_vxlan_sources(&mut self, sources: &VxlanSources) -> ctnet_kernel::Result<()> {
        let socket = self.socket()?;
        let want = sources.elements();
        let mut batch = socket.batch();
        for set in [VXLAN_LOCAL, VXLAN_PEERS] {
            let listed = socket.list_elements(TABLE, set)?;
            for (_, element) in want.iter().filter(|(s, _)| *s == set) {
                if !element.as_listed().iter().all(|e| listed.contains(e)) {
                    batch.add_elements(TABLE, set, std::slice::from_ref(element), "VXLAN source");
                }
            }
            let wanted: Vec<_> = want
                .iter()
                .filter(|(s, _)| *s == set)
                .flat_map(|(_, e)| e.as_listed())
                .collect();
            for stale in listed.iter().filter(|e| !wanted.contains(e)) {
                let element = Element::Key(Key::from_bytes(&stale.key));
                batch.destroy_elements(TABLE, set, &[element], "stale VXLAN source");
            }
        }
        socket.commit(batch)
    }

    /// Removes a network's elements; elements or a table already gone are fine.
    pub fn remove_network(&mut self, net: &NetworkRules) -> ctnet_kernel::Result<()> {
        let socket = self.socket()?;
        let mut batch = socket.batch();
        for (set, element) in network_elements(net) {
            batch.destroy_elements(TABLE, set, &[element], &describe_network(net));
        }
        commit_tolerating_missing_table(socket, batch)
    }

    /// Publishes ports, all in one batch. The table must exist.
    ///
    /// A port withdrawn by expiring its element (see [`Firewall::remove_ports`]) still
    /// holds its key until the next clock tick, so publishing it to another address in
    /// that moment is refused with EEXIST: the batch is tried once more after a tick.
    pub fn add_ports(&mut self, ports: &[PortRules]) -> ctnet_kernel::Result<()> {
        self.add_endpoint(ports, &crate::policy::Compiled::default(), &[])
    }

    /// A new endpoint's published ports, policy entries and anti-spoofing elements (of
    /// table `bridge ctnet`), in one batch: an attach is one commit (an nf_tables
    /// transaction may span tables). Retried once after a tick, as
    /// [`Firewall::add_ports`]. The tables must exist.
    pub fn add_endpoint(
        &mut self,
        ports: &[PortRules],
        policy: &crate::policy::Compiled,
        guards: &[PortGuard],
    ) -> ctnet_kernel::Result<()> {
        if ports.is_empty() && policy.is_empty() && guards.is_empty() {
            return Ok(());
        }
        let socket = self.socket()?;
        let fill = |batch: &mut Batch| {
            add_port_elements(batch, ports);
            policy::add_policy_elements(batch, policy);
            antispoof::add_guard_elements(batch, guards);
        };
        let mut batch = socket.batch();
        fill(&mut batch);
        let added = match socket.commit(batch) {
            Err(e) if e.is_exists() && kernel_expires_elements() => {
                std::thread::sleep(LONGEST_TICK);
                let mut batch = socket.batch();
                fill(&mut batch);
                socket.commit(batch)
            }
            other => other,
        };
        if added.is_ok() {
            self.after_own_commit();
        }
        added
    }

    /// Withdraws published ports; elements or a table already gone are fine.
    ///
    /// On Linux 6.10 and later the elements are expired, not deleted (see "Withdrawing
    /// a port" above). If the kernel refuses that batch (a table of an older layout, whose
    /// maps take no timeouts, or an element that maps elsewhere), nothing of it was done
    /// and the ports are deleted instead.
    pub fn remove_ports(&mut self, ports: &[PortRules]) -> ctnet_kernel::Result<()> {
        self.remove_endpoint(ports, &crate::policy::Compiled::default(), &[])
    }

    /// A leaving endpoint's published ports, policy entries and anti-spoofing elements,
    /// withdrawn as [`Firewall::remove_ports`] withdraws ports, in one batch (one
    /// nf_tables transaction may span tables): a detach is one commit. Where that batch is refused as a whole (one of the tables
    /// is gone), each table's part is withdrawn on its own.
    pub fn remove_endpoint(
        &mut self,
        ports: &[PortRules],
        policy: &crate::policy::Compiled,
        guards: &[PortGuard],
    ) -> ctnet_kernel::Result<()> {
        // Asked before the commit, so the record can follow it (see `verified.rs`).
        self.known();
        let removed = self.remove_endpoint_elements(ports, policy, guards);
        if removed.is_ok() {
            self.after_own_commit();
        }
        removed
    }

    fn remove_endpoint_elements(
        &mut self,
        ports: &[PortRules],
        policy: &crate::policy::Compiled,
        guards: &[PortGuard],
    ) -> ctnet_kernel::Result<()> {
        if ports.is_empty() && policy.is_empty() {
            return self.remove_guards(guards);
        }
        if !guards.is_empty() && kernel_expires_elements() {
            let socket = self.socket()?;
            let mut batch = socket.batch();
            add_port_expiries(&mut batch, ports);
            policy::withdraw_policy_elements(&mut batch, policy, true);
            antispoof::expire_guard_elements(&mut batch, guards);
            if socket.commit(batch).is_ok() {
                return Ok(());
            }
        }
        self.remove_inet_endpoint(ports, policy)?;
        self.remove_guards(guards)
    }

    fn remove_inet_endpoint(
        &mut self,
        ports: &[PortRules],
        policy: &crate::policy::Compiled,
    ) -> ctnet_kernel::Result<()> {
        if ports.is_empty() && policy.is_empty() {
            return Ok(());
        }
        let socket = self.socket()?;
        let fill = |batch: &mut Batch, expire: bool| {
            for (map, elements) in port_elements_by_map(ports) {
                let what = format!("{} published ports", elements.len());
                if expire {
                    batch.expire_elements(TABLE, map, &elements, &what);
                } else {
                    batch.destroy_elements(TABLE, map, &elements, &what);
                }
            }
            policy::withdraw_policy_elements(batch, policy, expire);
        };
        if kernel_expires_elements() {
            let mut batch = socket.batch();
            fill(&mut batch, true);
            if socket.commit(batch).is_ok() {
                return Ok(());
            }
        }
        let mut batch = socket.batch();
        fill(&mut batch, false);
        commit_tolerating_missing_table(socket, batch)
    }

    /// Adds policy entries in one batch. The table must exist. An entry withdrawn a
    /// moment ago still holds its key until the next clock tick: tried once more then.
    pub fn add_policy(&mut self, compiled: &crate::policy::Compiled) -> ctnet_kernel::Result<()> {
        self.add_endpoint(&[], compiled, &[])
    }

    /// Withdraws policy entries in one batch (expired where the kernel can, as ports);
    /// entries or a table already gone are fine.
    pub fn remove_policy(
        &mut self,
        compiled: &crate::policy::Compiled,
    ) -> ctnet_kernel::Result<()> {
        self.remove_endpoint(&[], compiled, &[])
    }

    /// The published ports whose map element is missing or points elsewhere.
    pub fn missing_ports(&mut self, ports: &[PortRules]) -> ctnet_kernel::Result<Vec<PortRules>> {
        let socket = self.socket()?;
        let mut missing = Vec::new();
        for port in ports {
            let (map, element) = port_element(port);
            let Element::Mapping { key, value } = element else {
                continue;
            };
            if socket.get_element(TABLE, map, &key)?.as_deref() != Some(value.as_bytes()) {
                missing.push(*port);
            }
        }
        Ok(missing)
    }

    /// The open nf_tables socket, if this process has used one. Its last close waits
    /// for the kernel to free removed elements; see [`ctnet_kernel::reclaim`].
    pub fn open_socket(&self) -> Option<BorrowedFd<'_>> {
        self.socket.as_ref().map(|s| s.as_fd())
    }

    fn socket(&mut self) -> ctnet_kernel::Result<&mut NftSocket> {
        if self.socket.is_none() {
            self.socket = Some(NftSocket::open()?);
        }
        Ok(self.socket.as_mut().expect("socket was just opened"))
    }
}

/// Expires published ports' elements in `batch` (see "Withdrawing a port").
fn add_port_expiries(batch: &mut Batch, ports: &[PortRules]) {
    for (map, elements) in port_elements_by_map(ports) {
        let what = format!("{} published ports", elements.len());
        batch.expire_elements(TABLE, map, &elements, &what);
    }
}

/// A clock tick at the lowest `CONFIG_HZ` Linux offers (100): the longest an expired
/// element can still be seen.
const LONGEST_TICK: std::time::Duration = std::time::Duration::from_millis(10);

/// Whether this kernel withdraws ports by expiring their elements: Linux 6.10 added
/// timeout updates of existing elements. Asked once per process.
fn kernel_expires_elements() -> bool {
    static EXPIRES: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *EXPIRES.get_or_init(|| {
        nix::sys::utsname::uname()
            .is_ok_and(|u| release_updates_element_timeouts(&u.release().to_string_lossy()))
    })
}

/// True for a kernel release ("6.18.44-fc-v1098") of Linux 6.10 or later.
fn release_updates_element_timeouts(release: &str) -> bool {
    let mut numbers = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().ok());
    match (numbers.next().flatten(), numbers.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= (6, 10),
        _ => false,
    }
}

/// Destroying elements of a missing table is ENOENT; with no table there is nothing left
/// to remove.
fn commit_tolerating_missing_table(
    socket: &mut NftSocket,
    batch: Batch,
) -> ctnet_kernel::Result<()> {
    match socket.commit(batch) {
        Err(e) if e.is_not_found() && socket.table_comment(TABLE)?.is_none() => Ok(()),
        other => other,
    }
}

/// The sets and maps, each with its key (and value) fields.
fn sets() -> Vec<SetSpec> {
    use KeyField::*;
    let mut all = vec![
        SetSpec::intervals(MASQ_SUBNETS, vec![Ipv4Addr]),
        SetSpec::intervals(MASQ_LOCAL, vec![Ipv4Addr, IfName]),
        SetSpec::intervals(MASQ_SUBNETS6, vec![Ipv6Addr]),
        SetSpec::intervals(MASQ_LOCAL6, vec![Ipv6Addr, IfName]),
        SetSpec::exact(BRIDGES, vec![IfName]),
        SetSpec::exact(INTERNAL, vec![IfName]),
        SetSpec::exact(ICC, vec![IfName, IfName]),
        SetSpec::exact(NO_ICC, vec![IfName, IfName]),
        SetSpec::exact(OPEN, vec![IfName]),
        SetSpec::exact(SHARED, vec![IfName]),
        SetSpec::exact(VXLAN_LOCAL, vec![Ipv4Addr, InetService]),
        SetSpec::exact(VXLAN_PEERS, vec![Ipv4Addr]),
        SetSpec::exact(TRACE, vec![Ipv4Addr, Ipv4Addr, InetProto]).with_timeouts(),
        SetSpec::exact(TRACE6, vec![Ipv6Addr, Ipv6Addr, InetProto]).with_timeouts(),
        SetSpec::map(
            PUBLISH_ANY,
            vec![InetProto, InetService],
            vec![Ipv4Addr, InetService],
        )
        .with_timeouts(),
        SetSpec::map(
            PUBLISH_ADDR,
            vec![Ipv4Addr, InetProto, InetService],
            vec![Ipv4Addr, InetService],
        )
        .with_timeouts(),
        SetSpec::map(
            PUBLISH_ANY6,
            vec![InetProto, InetService],
            vec![Ipv6Addr, InetService],
        )
        .with_timeouts(),
        SetSpec::map(
            PUBLISH_ADDR6,
            vec![Ipv6Addr, InetProto, InetService],
            vec![Ipv6Addr, InetService],
        )
        .with_timeouts(),
    ];
    all.extend(policy::policy_sets());
    all
}

/// A rule and its comment.
type Commented = (Rule, &'static str);

/// The base chains and their rules.
fn chains() -> Vec<(&'static str, BaseChain, Vec<Commented>)> {
    let base = |kind, hook, priority| BaseChain {
        kind,
        hook,
        priority,
    };
    vec![
        (
            "trace_in",
            base(ChainType::Filter, Hook::Prerouting, RAW - 10),
            trace_rules(),
        ),
        (
            "trace_out",
            base(ChainType::Filter, Hook::Output, RAW - 10),
            trace_rules(),
        ),
        (
            "guard",
            base(ChainType::Filter, Hook::Prerouting, RAW),
            vec![(
                loopback_from_outside(),
                "127.0.0.0/8 is never reachable from another host or a container",
            )],
        ),
        (
            "vxlan_in",
            base(ChainType::Filter, Hook::Input, FILTER),
            vec![(
                vxlan_from_strangers(),
                "VXLAN only from the overlays' registered hosts",
            )],
        ),
        (
            "prerouting",
            base(ChainType::Nat, Hook::Prerouting, DSTNAT),
            publish_rules(),
        ),
        (
            "output",
            base(ChainType::Nat, Hook::Output, DSTNAT),
            publish_rules(),
        ),
        (
            "policy",
            base(ChainType::Filter, Hook::Forward, FILTER - 1),
            policy::policy_chain_rules(),
        ),
        (
            "forward",
            base(ChainType::Filter, Hook::Forward, FILTER),
            forward_rules(),
        ),
        (
            "postrouting",
            base(ChainType::Nat, Hook::Postrouting, SRCNAT),
            masquerade_rules(),
        ),
    ]
}

/// The table, the user chain, every set and base chain, flushed and filled with rules.
fn add_skeleton(batch: &mut Batch, exclusive: bool) {
    batch.add_table(TABLE, LAYOUT, exclusive);
    batch.add_chain(TABLE, USER_CHAIN, None);
    for set in sets() {
        batch.add_set(TABLE, &set);
        if !exclusive {
            batch.flush_set(TABLE, &set.name);
        }
    }
    for (name, base, rules) in chains() {
        batch.add_chain(TABLE, name, Some(base));
        if !exclusive {
            batch.flush_chain(TABLE, name);
        }
        for (rule, comment) in rules {
            batch.add_rule(TABLE, name, rule.exprs(), comment);
        }
    }
}

fn add_contents(batch: &mut Batch, contents: &Contents) {
    for net in &contents.networks {
        add_network_elements(batch, net);
    }
    add_port_elements(batch, &contents.ports);
    policy::add_policy_elements(batch, &contents.policy);
    for (set, element) in contents.vxlan.elements() {
        batch.add_elements(TABLE, set, &[element], "VXLAN sources");
    }
}

/// `ip saddr . ip daddr . meta l4proto @trace meta nftrace set 1`, and for IPv6.
fn trace_rules() -> Vec<Commented> {
    use Field::{Ip6Daddr, Ip6Saddr, IpDaddr, IpSaddr, L4Proto};
    vec![
        (
            Rule::new()
                .nfproto(NfProto::Ipv4)
                .in_set(&[IpSaddr, IpDaddr, L4Proto], TRACE)
                .set_nftrace(),
            "ctnet trace: follow this probe",
        ),
        (
            Rule::new()
                .nfproto(NfProto::Ipv6)
                .in_set(&[Ip6Saddr, Ip6Daddr, L4Proto], TRACE6)
                .set_nftrace(),
            "ctnet trace: follow this probe (IPv6)",
        ),
    ]
}

/// The element that makes `ctnet trace` follow packets from `source` to `destination`
/// of protocol `proto`, and the set it goes in; None when the families differ.
pub fn trace_element(
    source: IpAddr,
    destination: IpAddr,
    proto: u8,
) -> Option<(&'static str, Element)> {
    let set = match (source, destination) {
        (IpAddr::V4(_), IpAddr::V4(_)) => TRACE,
        (IpAddr::V6(_), IpAddr::V6(_)) => TRACE6,
        _ => return None,
    };
    Some((
        set,
        Element::Key(Key::new().ip(source).ip(destination).proto(proto)),
    ))
}

/// The comments of the rules that drop (for `ctnet trace`, which explains each).
pub fn drop_rule_comments() -> Vec<&'static str> {
    chains()
        .into_iter()
        .flat_map(|(_, _, rules)| rules)
        .filter(|(rule, _)| {
            matches!(
                rule.exprs().last(),
                Some(ctnet_nft::Expr::Verdict(ctnet_nft::Verdict::Drop))
            )
        })
        .map(|(_, comment)| comment)
        .collect()
}

/// The base chains ctnet writes, with the hook each is on (for naming where a traced
/// packet was).
pub fn chain_hooks() -> Vec<(&'static str, Hook)> {
    chains()
        .into_iter()
        .map(|(name, base, _)| (name, base.hook))
        .collect()
}

const LOOPBACK_NET: (Ipv4Addr, u8) = (Ipv4Addr::new(127, 0, 0, 0), 8);

/// `meta nfproto ipv4 meta l4proto udp ip daddr . th dport @vxlan_local
/// ip saddr != @vxlan_peers counter drop`
fn vxlan_from_strangers() -> Rule {
    Rule::new()
        .nfproto(NfProto::Ipv4)
        .l4proto(libc::IPPROTO_UDP as u8)
        .in_set(&[Field::IpDaddr, Field::Dport], VXLAN_LOCAL)
        .not_in_set(&[Field::IpSaddr], VXLAN_PEERS)
        .counter()
        .drop()
}

/// `meta nfproto ipv4 iifname != "lo" ip daddr 127.0.0.0/8 drop`
fn loopback_from_outside() -> Rule {
    Rule::new()
        .nfproto(NfProto::Ipv4)
        .iifname_neq("lo")
        .daddr_in_prefix(LOOPBACK_NET.0.into(), LOOPBACK_NET.1)
        .counter()
        .drop()
}

/// For packets to a local address: DNAT through `publish_addr` (keyed by the address
/// too), then through `publish_any`; the same through the IPv6 maps.
fn publish_rules() -> Vec<Commented> {
    let dnat_through = |proto: NfProto, map: &str, key: &[Field]| {
        Rule::new()
            .nfproto(proto)
            .fib_daddr_local()
            .dnat_map(key, map, proto)
    };
    vec![
        (
            dnat_through(
                NfProto::Ipv4,
                PUBLISH_ADDR,
                &[Field::IpDaddr, Field::L4Proto, Field::Dport],
            ),
            "ports published on one host address",
        ),
        (
            dnat_through(NfProto::Ipv4, PUBLISH_ANY, &[Field::L4Proto, Field::Dport]),
            "ports published on every host address",
        ),
        (
            dnat_through(
                NfProto::Ipv6,
                PUBLISH_ADDR6,
                &[Field::Ip6Daddr, Field::L4Proto, Field::Dport],
            ),
            "ports published on one host address (IPv6)",
        ),
        (
            dnat_through(NfProto::Ipv6, PUBLISH_ANY6, &[Field::L4Proto, Field::Dport]),
            "ports published on every host address (IPv6)",
        ),
    ]
}

fn forward_rules() -> Vec<Commented> {
    use Field::{IifName, OifName};
    let mut rules = vec![
        (Rule::new().jump(USER_CHAIN), "your rules first"),
        (
            Rule::new()
                .ct_state_any(CT_STATE_ESTABLISHED | CT_STATE_RELATED)
                .accept(),
            "replies",
        ),
    ];
    rules.extend([
        (
            Rule::new().in_set(&[IifName, OifName], ICC).accept(),
            "containers on one bridge (seen here only when br_netfilter is active)",
        ),
        (
            Rule::new().in_set(&[IifName], INTERNAL).counter().drop(),
            "internal networks reach nothing outside their bridge",
        ),
        (
            Rule::new().in_set(&[OifName], INTERNAL).counter().drop(),
            "nothing reaches into internal networks",
        ),
        (
            Rule::new()
                .ct_status_any(CT_STATUS_DNAT)
                .in_set(&[OifName], BRIDGES)
                .accept(),
            "published ports",
        ),
        (
            Rule::new()
                .in_set(&[IifName, OifName], NO_ICC)
                .counter()
                .drop(),
            "containers on one bridge with icc off",
        ),
        (
            Rule::new()
                .in_set(&[IifName], OPEN)
                .in_set(&[OifName], SHARED)
                .accept(),
            "open networks reach open and isolated ones",
        ),
        (
            Rule::new()
                .in_set(&[IifName], SHARED)
                .in_set(&[OifName], OPEN)
                .accept(),
            "open and isolated networks reach open ones",
        ),
        (
            Rule::new().in_set(&[OifName], BRIDGES).counter().drop(),
            "nothing else enters a network: not the wan, not another network",
        ),
    ]);
    rules
}

fn masquerade_rules() -> Vec<Commented> {
    use Field::{Ip6Saddr, IpSaddr, OifName};
    let ipv4 = || Rule::new().nfproto(NfProto::Ipv4);
    let ipv6 = || Rule::new().nfproto(NfProto::Ipv6);
    vec![
        (
            ipv4()
                .in_set(&[IpSaddr], MASQ_SUBNETS)
                .not_in_set(&[IpSaddr, OifName], MASQ_LOCAL)
                .counter()
                .masquerade(),
            "masquerade traffic leaving ctnet networks",
        ),
        (
            ipv4()
                .ct_status_any(CT_STATUS_DNAT)
                .in_set(&[IpSaddr, OifName], MASQ_LOCAL)
                .counter()
                .masquerade(),
            "published ports reached from the same network answer through the host",
        ),
        (
            ipv4()
                .ct_status_any(CT_STATUS_DNAT)
                .saddr_in_prefix(LOOPBACK_NET.0.into(), LOOPBACK_NET.1)
                .counter()
                .masquerade(),
            "published ports reached on 127.0.0.1 answer through the host",
        ),
        (
            ipv6()
                .in_set(&[Ip6Saddr], MASQ_SUBNETS6)
                .not_in_set(&[Ip6Saddr, OifName], MASQ_LOCAL6)
                .counter()
                .masquerade(),
            "masquerade traffic leaving ctnet networks (IPv6)",
        ),
        (
            ipv6()
                .ct_status_any(CT_STATUS_DNAT)
                .in_set(&[Ip6Saddr, OifName], MASQ_LOCAL6)
                .counter()
                .masquerade(),
            "published ports reached from the same network answer through the host (IPv6)",
        ),
    ]
}

/// `(set, element)` pairs of one network.
fn network_elements(net: &NetworkRules) -> Vec<(&'static str, Element)> {
    let bridge = Element::Key(Key::new().ifname(&net.bridge));
    let mut out = vec![(BRIDGES, bridge.clone())];
    let pair = Element::Key(Key::new().ifname(&net.bridge).ifname(&net.bridge));
    out.push((if net.icc { ICC } else { NO_ICC }, pair));
    if net.internal {
        out.push((INTERNAL, bridge));
        return out;
    }
    // An internal network reaches nothing whatever its isolation, so it is in neither.
    if net.isolation == Isolation::Open {
        out.push((OPEN, bridge.clone()));
    }
    if net.isolation != Isolation::Strict {
        out.push((SHARED, bridge.clone()));
    }
    if let Some((vxlan, cluster)) = &net.vxlan {
        let vx = Element::Key(Key::new().ifname(vxlan));
        out.push((BRIDGES, vx.clone()));
        for pair in [(&net.bridge, vxlan), (vxlan, &net.bridge)] {
            out.push((ICC, Element::Key(Key::new().ifname(pair.0).ifname(pair.1))));
        }
        if net.isolation == Isolation::Open {
            out.push((OPEN, vx.clone()));
        }
        if net.isolation != Isolation::Strict {
            out.push((SHARED, vx));
        }
        let (first, last) = ctnet_nft::ipv4_bounds(cluster.network(), cluster.prefix_len());
        out.push((
            MASQ_LOCAL,
            Element::Range {
                first: Key::new().ipv4(first).ifname(vxlan),
                last: Key::new().ipv4(last).ifname(vxlan),
            },
        ));
    }
    for subnet in &net.subnets {
        let n = subnet.net();
        let (masq, local) = match subnet {
            Subnet::V4(_) => (MASQ_SUBNETS, MASQ_LOCAL),
            Subnet::V6(_) => (MASQ_SUBNETS6, MASQ_LOCAL6),
        };
        let (first, last) = ctnet_nft::ip_bounds(n.network(), n.prefix_len());
        out.extend([
            (masq, Element::prefix(n.network(), n.prefix_len())),
            (
                local,
                Element::Range {
                    first: Key::new().ip(first).ifname(&net.bridge),
                    last: Key::new().ip(last).ifname(&net.bridge),
                },
            ),
        ]);
    }
    out
}

fn add_network_elements(batch: &mut Batch, net: &NetworkRules) {
    for (set, element) in network_elements(net) {
        batch.add_elements(TABLE, set, &[element], &describe_network(net));
    }
}

/// The map a published port goes in, and its element: the maps of the container
/// address's family (a port bound to a host address of the other family is never asked
/// for; see `driver::bridge::port_rules`).
fn port_element(p: &PortRules) -> (&'static str, Element) {
    let proto_port = |key: Key| key.proto(p.port.protocol.number()).port(p.port.host_port);
    let value = Key::new().ip(p.container_ip).port(p.port.container_port);
    let (any, addr) = match p.container_ip {
        IpAddr::V4(_) => (PUBLISH_ANY, PUBLISH_ADDR),
        IpAddr::V6(_) => (PUBLISH_ANY6, PUBLISH_ADDR6),
    };
    match p.port.host_ip {
        Some(ip) => (
            addr,
            Element::Mapping {
                key: proto_port(Key::new().ip(ip)),
                value,
            },
        ),
        None => (
            any,
            Element::Mapping {
                key: proto_port(Key::new()),
                value,
            },
        ),
    }
}

/// The map of ctnet's table a published port's element belongs in (for `inspect`).
pub fn port_map_of(p: &PortRules) -> &'static str {
    port_element(p).0
}

/// Elements grouped by map, so a thousand ports are four messages, not a thousand.
fn port_elements_by_map(ports: &[PortRules]) -> Vec<(&'static str, Vec<Element>)> {
    let mut by_map: Vec<(&'static str, Vec<Element>)> =
        [PUBLISH_ANY, PUBLISH_ADDR, PUBLISH_ANY6, PUBLISH_ADDR6]
            .into_iter()
            .map(|m| (m, Vec::new()))
            .collect();
    for p in ports {
        let (map, element) = port_element(p);
        if let Some((_, list)) = by_map.iter_mut().find(|(m, _)| *m == map) {
            list.push(element);
        }
    }
    by_map.retain(|(_, list)| !list.is_empty());
    by_map
}

fn add_port_elements(batch: &mut Batch, ports: &[PortRules]) {
    let what = |ports: &[PortRules]| match ports {
        [one] => format!("{} to {}", one.port, one.container_ip),
        many => format!("{} published ports", many.len()),
    };
    for (map, elements) in port_elements_by_map(ports) {
        batch.add_elements(TABLE, map, &elements, &what(ports));
    }
}

fn describe_network(net: &NetworkRules) -> String {
    let subnets: Vec<String> = net.subnets.iter().map(|s| s.to_string()).collect();
    format!("{} on {}", subnets.join(", "), net.bridge)
}

#[cfg(test)]
mod tests {
    use ctnet_nft::abi::{NFPROTO_IPV4, RTN_LOCAL};
    use ctnet_nft::{CmpOp, CtKey, Expr, MetaKey, PayloadBase, Register, Verdict};

    use super::*;

    /// The expressions this file wrote by hand, register by register, before the rule
    /// builder: the builder must produce them unchanged, or the IPv4 behaviour moved.
    mod by_hand {
        use super::*;

        pub const R0: Register = Register::R0;

        pub fn r(index: u32) -> Register {
            Register::r32(index).unwrap()
        }

        pub fn meta(key: MetaKey, dreg: Register) -> Expr {
            Expr::Meta { key, dreg }
        }

        pub fn lookup(set: &str, sreg: Register, invert: bool) -> Expr {
            Expr::Lookup {
                set: set.into(),
                sreg,
                invert,
            }
        }

        pub fn is_ipv4() -> Vec<Expr> {
            vec![
                meta(MetaKey::NfProto, R0),
                Expr::Cmp {
                    sreg: R0,
                    op: CmpOp::Eq,
                    data: vec![NFPROTO_IPV4],
                },
            ]
        }

        pub fn payload(base: PayloadBase, offset: u32, len: u32, dreg: Register) -> Expr {
            Expr::Payload {
                base,
                offset,
                len,
                dreg,
            }
        }

        pub fn saddr(dreg: Register) -> Expr {
            payload(PayloadBase::Network, 12, 4, dreg)
        }

        pub fn daddr(dreg: Register) -> Expr {
            payload(PayloadBase::Network, 16, 4, dreg)
        }

        pub fn dport(dreg: Register) -> Expr {
            payload(PayloadBase::Transport, 2, 2, dreg)
        }

        pub fn any_bit_set(key: CtKey, mask: u32) -> Vec<Expr> {
            vec![
                Expr::Ct { key, dreg: R0 },
                Expr::Bitwise {
                    sreg: R0,
                    dreg: R0,
                    mask: mask.to_ne_bytes().to_vec(),
                    xor: vec![0; 4],
                },
                Expr::Cmp {
                    sreg: R0,
                    op: CmpOp::Neq,
                    data: vec![0; 4],
                },
            ]
        }

        pub fn in_loopback_net(load: fn(Register) -> Expr) -> Vec<Expr> {
            vec![
                load(R0),
                Expr::Bitwise {
                    sreg: R0,
                    dreg: R0,
                    mask: vec![255, 0, 0, 0],
                    xor: vec![0; 4],
                },
                Expr::Cmp {
                    sreg: R0,
                    op: CmpOp::Eq,
                    data: vec![127, 0, 0, 0],
                },
            ]
        }

        pub fn cat(parts: Vec<Vec<Expr>>) -> Vec<Expr> {
            parts.into_iter().flatten().collect()
        }

        pub fn guard() -> Vec<Vec<Expr>> {
            let mut lo = b"lo".to_vec();
            lo.resize(16, 0);
            vec![cat(vec![
                is_ipv4(),
                vec![
                    meta(MetaKey::IifName, R0),
                    Expr::Cmp {
                        sreg: R0,
                        op: CmpOp::Neq,
                        data: lo,
                    },
                ],
                in_loopback_net(daddr),
                vec![Expr::Counter, Expr::Verdict(Verdict::Drop)],
            ])]
        }

        pub fn publish() -> Vec<Vec<Expr>> {
            let dnat_through = |map: &str, key: Vec<Expr>| {
                cat(vec![
                    is_ipv4(),
                    vec![
                        Expr::FibDaddrType { dreg: R0 },
                        Expr::Cmp {
                            sreg: R0,
                            op: CmpOp::Eq,
                            data: RTN_LOCAL.to_ne_bytes().to_vec(),
                        },
                    ],
                    key,
                    vec![
                        Expr::Map {
                            map: map.into(),
                            sreg: R0,
                            dreg: R0,
                        },
                        Expr::Dnat {
                            family: NfProto::Ipv4,
                            addr: R0,
                            port: r(1),
                        },
                    ],
                ])
            };
            vec![
                dnat_through(
                    PUBLISH_ADDR,
                    vec![daddr(R0), meta(MetaKey::L4Proto, r(1)), dport(r(2))],
                ),
                dnat_through(PUBLISH_ANY, vec![meta(MetaKey::L4Proto, R0), dport(r(1))]),
            ]
        }

        pub fn forward() -> Vec<Vec<Expr>> {
            let accept = Expr::Verdict(Verdict::Accept);
            let drop = || [Expr::Counter, Expr::Verdict(Verdict::Drop)];
            vec![
                vec![Expr::Verdict(Verdict::Jump(USER_CHAIN.into()))],
                cat(vec![
                    any_bit_set(CtKey::State, CT_STATE_ESTABLISHED | CT_STATE_RELATED),
                    vec![accept.clone()],
                ]),
                vec![
                    meta(MetaKey::IifName, R0),
                    meta(MetaKey::OifName, r(4)),
                    lookup(ICC, R0, false),
                    accept.clone(),
                ],
                cat(vec![
                    vec![meta(MetaKey::IifName, R0), lookup(INTERNAL, R0, false)],
                    drop().to_vec(),
                ]),
                cat(vec![
                    vec![meta(MetaKey::OifName, R0), lookup(INTERNAL, R0, false)],
                    drop().to_vec(),
                ]),
                cat(vec![
                    any_bit_set(CtKey::Status, CT_STATUS_DNAT),
                    vec![
                        meta(MetaKey::OifName, R0),
                        lookup(BRIDGES, R0, false),
                        accept.clone(),
                    ],
                ]),
                vec![
                    meta(MetaKey::IifName, R0),
                    meta(MetaKey::OifName, r(4)),
                    lookup(NO_ICC, R0, false),
                    Expr::Counter,
                    Expr::Verdict(Verdict::Drop),
                ],
                vec![
                    meta(MetaKey::IifName, R0),
                    lookup(OPEN, R0, false),
                    meta(MetaKey::OifName, R0),
                    lookup(SHARED, R0, false),
                    accept.clone(),
                ],
                vec![
                    meta(MetaKey::IifName, R0),
                    lookup(SHARED, R0, false),
                    meta(MetaKey::OifName, R0),
                    lookup(OPEN, R0, false),
                    accept,
                ],
                cat(vec![
                    vec![meta(MetaKey::OifName, R0), lookup(BRIDGES, R0, false)],
                    drop().to_vec(),
                ]),
            ]
        }

        pub fn masquerade() -> Vec<Vec<Expr>> {
            let masq = || vec![Expr::Counter, Expr::Masquerade];
            vec![
                cat(vec![
                    is_ipv4(),
                    vec![
                        saddr(R0),
                        lookup(MASQ_SUBNETS, R0, false),
                        meta(MetaKey::OifName, r(1)),
                        lookup(MASQ_LOCAL, R0, true),
                    ],
                    masq(),
                ]),
                cat(vec![
                    is_ipv4(),
                    any_bit_set(CtKey::Status, CT_STATUS_DNAT),
                    vec![
                        saddr(R0),
                        meta(MetaKey::OifName, r(1)),
                        lookup(MASQ_LOCAL, R0, false),
                    ],
                    masq(),
                ]),
                cat(vec![
                    is_ipv4(),
                    any_bit_set(CtKey::Status, CT_STATUS_DNAT),
                    in_loopback_net(saddr),
                    masq(),
                ]),
            ]
        }
    }

    #[test]
    fn the_builder_writes_the_ipv4_rules_that_were_written_by_hand() {
        let expected = [
            ("guard", by_hand::guard()),
            ("prerouting", by_hand::publish()),
            ("output", by_hand::publish()),
            ("forward", by_hand::forward()),
            ("postrouting", by_hand::masquerade()),
        ];
        // The trace chains only set the trace bit; they came with layout 6, the policy
        // chain with layout 7 (`policy.rs` tests it), vxlan_in with layout 8 (the skeleton
        // test shows its expressions).
        let chains: Vec<_> = chains()
            .into_iter()
            .filter(|(name, _, _)| {
                !name.starts_with("trace_") && *name != "policy" && *name != "vxlan_in"
            })
            .collect();
        assert_eq!(chains.len(), expected.len());
        for ((name, _, rules), (expected_name, expected_rules)) in chains.iter().zip(expected) {
            assert_eq!(*name, expected_name);
            // The IPv6 rules came after the hand-written ones; the IPv4 ones are unchanged.
            let built: Vec<_> = rules
                .iter()
                .filter(|(_, comment)| !comment.ends_with("(IPv6)"))
                .map(|(r, _)| r.exprs().to_vec())
                .collect();
            assert_eq!(built, expected_rules, "chain {name}");
        }
    }

    /// The skeleton as text: a change of the layout (a set, a chain, a rule's expressions
    /// or comment) shows here as a diff, and calls for a new [`LAYOUT`] number.
    fn render_skeleton() -> String {
        let mut out = format!("table {TABLE} # {LAYOUT}\n");
        for set in sets() {
            out += &format!("  {set}\n");
        }
        out += &format!("  chain {USER_CHAIN}\n");
        for (name, base, rules) in chains() {
            out += &format!("  chain {name} {{ {base} }}\n");
            for (rule, comment) in rules {
                out += &format!("    # {comment}\n");
                for expr in rule.exprs() {
                    out += &format!("      {expr}\n");
                }
            }
        }
        out
    }

    /// Registers by their kernel numbers (8 is the first 32-bit one); constants as the
    /// bytes in the register, so `ct` bits and `fib` types are in host order (this is for
    /// a little-endian host).
    const SKELETON: &str = "\
table inet ctnet # managed by ctnet, layout 8; edits outside chain user are overwritten
  set masq_subnets { type ipv4_addr; flags interval; }
  set masq_local { type ipv4_addr . ifname; flags interval; }
  set masq_subnets6 { type ipv6_addr; flags interval; }
  set masq_local6 { type ipv6_addr . ifname; flags interval; }
  set bridges { type ifname; }
  set internal { type ifname; }
  set icc { type ifname . ifname; }
  set no_icc { type ifname . ifname; }
  set open { type ifname; }
  set shared { type ifname; }
  set vxlan_local { type ipv4_addr . inet_service; }
  set vxlan_peers { type ipv4_addr; }
  set trace { type ipv4_addr . ipv4_addr . inet_proto; flags timeout; }
  set trace6 { type ipv6_addr . ipv6_addr . inet_proto; flags timeout; }
  map publish_any { type inet_proto . inet_service : ipv4_addr . inet_service; flags timeout; }
  map publish_addr { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; flags timeout; }
  map publish_any6 { type inet_proto . inet_service : ipv6_addr . inet_service; flags timeout; }
  map publish_addr6 { type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service; flags timeout; }
  set policy_selected { type ipv4_addr; flags timeout; }
  set policy_allow { type ipv4_addr . ipv4_addr . inet_proto . inet_service; flags timeout; }
  set policy_allow_ranges { type ipv4_addr . ipv4_addr . inet_proto . inet_service; flags interval,timeout; }
  set policy_deny { type ipv4_addr . ipv4_addr . inet_proto . inet_service; flags timeout; }
  set policy_deny_ranges { type ipv4_addr . ipv4_addr . inet_proto . inet_service; flags interval,timeout; }
  set policy_selected6 { type ipv6_addr; flags timeout; }
  set policy_allow6 { type ipv6_addr . ipv6_addr . inet_proto . inet_service; flags timeout; }
  set policy_allow_ranges6 { type ipv6_addr . ipv6_addr . inet_proto . inet_service; flags interval,timeout; }
  set policy_deny6 { type ipv6_addr . ipv6_addr . inet_proto . inet_service; flags timeout; }
  set policy_deny_ranges6 { type ipv6_addr . ipv6_addr . inet_proto . inet_service; flags interval,timeout; }
  chain user
  chain trace_in { type filter hook prerouting priority -310 }
    # ctnet trace: follow this probe
      [ meta load nfproto => reg 8 ]
      [ cmp eq reg 8 02 ]
      [ payload load 4b @ network header + 12 => reg 8 ]
      [ payload load 4b @ network header + 16 => reg 9 ]
      [ meta load l4proto => reg 10 ]
      [ lookup reg 8 set trace ]
      [ immediate reg 8 01 ]
      [ meta set nftrace with reg 8 ]
    # ctnet trace: follow this probe (IPv6)
      [ meta load nfproto => reg 8 ]
      [ cmp eq reg 8 0a ]
      [ payload load 16b @ network header + 8 => reg 8 ]
      [ payload load 16b @ network header + 24 => reg 12 ]
      [ meta load l4proto => reg 16 ]
      [ lookup reg 8 set trace6 ]
      [ immediate reg 8 01 ]
      [ meta set nftrace with reg 8 ]
  chain trace_out { type filter hook output priority -310 }
    # ctnet trace: follow this probe
      [ meta load nfproto => reg 8 ]
      [ cmp eq reg 8 02 ]
      [ payload load 4b @ network header + 12 => reg 8 ]
      [ payload load 4b @ network header + 16 => reg 9 ]
      [ meta load l4proto => reg 10 ]
      [ lookup reg 8 set trace ]
      [ immediate reg 8 01 ]
      [ meta set nftrace with reg 8 ]
    # ctnet trace: follow this probe (IPv6)
      [ meta load nfproto => reg 8 ]
      [ cmp eq reg 8 0a ]
      [ payload load 16b @ network header + 8 => reg 8 ]
      [ payload load 16b @ network header + 24 => reg 12 ]
      [ meta load l4proto => reg 16 ]
      [ lookup reg 8 set trace6 ]
      [ immediate reg 8 01 ]
      [ meta set nftrace with reg 8 ]
  chain guard { type filter hook prerouting priority -300 }
    # 127.0.0.0/8 is never reachable from another host or a container
      [ meta load nfproto => reg 8 ]
      [ cmp eq reg 8 02 ]
      [ meta load iifname => reg 8 ]
      [ cmp neq reg 8 6c6f0000 00000000 00000000 00000000 ]
      [ payload load 4b @ network header + 16 => reg 8 ]
      [ bitwise reg 8 = ( reg 8 & ff000000 ) ^ 00000000 ]
      [ cmp eq reg 8 7f000000 ]
      [ counter ]
      [ immediate reg 0 drop ]
  chain vxlan_in { type filter hook input priority 0 }
    # VXLAN only from the overlays' registered hosts
      [ meta load nfproto => reg 8 ]
      [ cmp eq reg 8 02 ]
      [ meta load l4proto => reg 8 ]
      [ cmp eq reg 8 11 ]
      [ payload load 4b @ network header + 16 => reg 8 ]
      [ payload load 2b @ transport header + 2 => reg 9 ]
      [ lookup reg 8 set vxlan_local ]
      [ payload load 4b @ network header + 12 => reg 8 ]
      [ lookup reg 8 set vxlan_peers inverted ]
      [ counter ]
      [ immediate reg 0 drop ]
  chain prerouting { type nat hook prerouting priority -100 }
    # ports published on one host address
      [ meta load nfproto => reg 8 ]
      [ cmp eq reg 8 02 ]
      [ fib daddr type => reg 8 ]
      [ cmp eq reg 8 02000000 ]
      [ payload load 4b @ network header + 16 => reg 8 ]
      [ meta load l4proto => reg 9 ]
      [ payload load 2b @ transport header + 2 => reg 10 ]
      [ lookup reg 8 set publish_addr dreg reg 8 ]
      [ nat dnat ip addr_min reg 8 proto_min reg 9 ]
    # ports published on every host address
      [ meta load nfproto => reg 8 ]
      [ cmp eq reg 8 02 ]
      [ fib daddr type => reg 8 ]
      [ cmp eq reg 8 02000000 ]
      [ meta load l4proto => reg 8 ]
      [ payload load 2b @ transport header + 2 => reg 9 ]
      [ lookup reg 8 set publish_any dreg reg 8 ]
      [ nat dnat ip addr_min reg 8 proto_min reg 9 ]
    # ports published on one host address (IPv6)
      [ meta load nfproto => reg 8 ]
      [ cmp eq reg 8 0a ]
      [ fib daddr type => reg 8 ]
      [ cmp eq reg 8 02000000 ]
      [ payload load 16b @ network header + 24 => reg 8 ]
      [ meta load l4proto => reg 12 ]
      [ payload load 2b @ transport header + 2 => reg 13 ]
      [ lookup reg 8 set publish_addr6 dreg reg 8 ]
      [ nat dnat ip6 addr_min reg 8 proto_min reg 12 ]
    # ports published on every host address (IPv6)
      [ meta load nfproto => reg 8 ]
      [ cmp eq reg 8 0a ]
      [ fib daddr type => reg 8 ]
      [ cmp eq reg 8 02000000 ]
      [ meta load l4proto => reg 8 ]
      [ payload load 2b @ transport header + 2 => reg 9 ]
      [ lookup reg 8 set publish_any6 dreg reg 8 ]
      [ nat dnat ip6 addr_min reg 8 proto_min reg 12 ]
  chain output { type nat hook output priority -100 }
    # ports published on one host address
      [ meta load nfproto => reg 8 ]
      [ cmp eq reg 8 02 ]
      [ fib daddr type => reg 8 ]
      [ cmp eq reg 8 02000000 ]
      [ payload load 4b @ network header + 16 => reg 8 ]
      [ meta load l4proto => reg 9 ]
      [ payload load 2b @ transport header + 2 => reg 10 ]
      [ lookup reg 8 set publish_addr dreg reg 8 ]
      [ nat dnat ip addr_min reg 8 proto_min reg 9 ]
    # ports published on every host address
      [ meta load nfproto => reg 8 ]
      [ cmp eq reg 8 02 ]
      [ fib daddr type => reg 8 ]
      [ cmp eq reg 8 02000000 ]
      [ meta load l4proto => reg 8 ]
      [ payload load 2b @ transport header + 2 => reg 9 ]
      [ lookup reg 8 set publish_any dreg reg 8 ]
      [ nat dnat ip addr_min reg 8 proto_min reg 9 ]
    # ports published on one host address (IPv6)
      [ meta load nfproto => reg 8 ]
      [ cmp eq reg 8 0a ]
      [ fib daddr type => reg 8 ]
      [ cmp eq reg 8 02000000 ]
      [ payload load 16b @ network header + 24 => reg 8 ]
      [ meta load l4proto => reg 12 ]
      [ payload load 2b @ transport header + 2 => reg 13 ]
      [ lookup reg 8 set publish_addr6 dreg reg 8 ]
      [ nat dnat ip6 addr_min reg 8 proto_min reg 12 ]
    # ports published on every host address (IPv6)
      [ meta load nfproto => reg 8 ]
      [ cmp eq reg 8 0a ]
      [ fib daddr type => reg 8 ]
      [ cmp eq reg 8 02000000 ]
      [ meta load l4proto => reg 8 ]
      [ payload load 2b @ transport header + 2 => reg 9 ]
      [ lookup reg 8 set publish_any6 dreg reg 8 ]
      [ nat dnat ip6 addr_min reg 8 proto_min reg 12 ]
  chain policy { type filter hook forward priority -1 }
    # policy: a TCP packet without SYN opens no connection
      [ meta load l4proto => reg 8 ]
      [ cmp eq reg 8 06 ]
      [ payload load 1b @ transport header + 13 => reg 8 ]
      [ bitwise reg 8 = ( reg 8 & 02 ) ^ 00 ]
      [ cmp eq reg 8 00 ]
      [ immediate reg 0 accept ]
    # policy: denied
      [ meta load nfproto => reg 8 ]
      [ cmp eq reg 8 02 ]
      [ ct load state => reg 8 ]
      [ bitwise reg 8 = ( reg 8 & 09000000 ) ^ 00000000 ]
      [ cmp neq reg 8 00000000 ]
      [ payload load 4b @ network header + 16 => reg 8 ]
      [ payload load 4b @ network header + 12 => reg 9 ]
      [ meta load l4proto => reg 10 ]
      [ payload load 2b @ transport header + 2 => reg 11 ]
      [ lookup reg 8 set policy_deny ]
      [ counter ]
      [ immediate reg 0 drop ]
    # policy: denied (ranges)
      [ meta load nfproto => reg 8 ]
      [ cmp eq reg 8 02 ]
      [ ct load state => reg 8 ]
      [ bitwise reg 8 = ( reg 8 & 09000000 ) ^ 00000000 ]
      [ cmp neq reg 8 00000000 ]
      [ payload load 4b @ network header + 16 => reg 8 ]
      [ payload load 4b @ network header + 12 => reg 9 ]
      [ meta load l4proto => reg 10 ]
      [ payload load 2b @ transport header + 2 => reg 11 ]
      [ lookup reg 8 set policy_deny_ranges ]
      [ counter ]
      [ immediate reg 0 drop ]
    # policy: not admitted by any policy that selects the container
      [ meta load nfproto => reg 8 ]
      [ cmp eq reg 8 02 ]
      [ ct load state => reg 8 ]
      [ bitwise reg 8 = ( reg 8 & 09000000 ) ^ 00000000 ]
      [ cmp neq reg 8 00000000 ]
      [ payload load 4b @ network header + 16 => reg 8 ]
      [ lookup reg 8 set policy_selected ]
      [ payload load 4b @ network header + 12 => reg 9 ]
      [ meta load l4proto => reg 10 ]
      [ payload load 2b @ transport header + 2 => reg 11 ]
      [ lookup reg 8 set policy_allow inverted ]
      [ lookup reg 8 set policy_allow_ranges inverted ]
      [ counter ]
      [ immediate reg 0 drop ]
    # policy: denied (IPv6)
      [ meta load nfproto => reg 8 ]
      [ cmp eq reg 8 0a ]
      [ ct load state => reg 8 ]
      [ bitwise reg 8 = ( reg 8 & 09000000 ) ^ 00000000 ]
      [ cmp neq reg 8 00000000 ]
      [ payload load 16b @ network header + 24 => reg 8 ]
      [ payload load 16b @ network header + 8 => reg 12 ]
      [ meta load l4proto => reg 16 ]
      [ payload load 2b @ transport header + 2 => reg 17 ]
      [ lookup reg 8 set policy_deny6 ]
      [ counter ]
      [ immediate reg 0 drop ]
    # policy: denied (ranges, IPv6)
      [ meta load nfproto => reg 8 ]
      [ cmp eq reg 8 0a ]
      [ ct load state => reg 8 ]
      [ bitwise reg 8 = ( reg 8 & 09000000 ) ^ 00000000 ]
      [ cmp neq reg 8 00000000 ]
      [ payload load 16b @ network header + 24 => reg 8 ]
      [ payload load 16b @ network header + 8 => reg 12 ]
      [ meta load l4proto => reg 16 ]
      [ payload load 2b @ transport header + 2 => reg 17 ]
      [ lookup reg 8 set policy_deny_ranges6 ]
      [ counter ]
      [ immediate reg 0 drop ]
    # policy: not admitted by any policy that selects the container (IPv6)
      [ meta load nfproto => reg 8 ]
      [ cmp eq reg 8 0a ]
      [ ct load state => reg 8 ]
      [ bitwise reg 8 = ( reg 8 & 09000000 ) ^ 00000000 ]
      [ cmp neq reg 8 00000000 ]
      [ payload load 16b @ network header + 24 => reg 8 ]
      [ lookup reg 8 set policy_selected6 ]
      [ payload load 16b @ network header + 8 => reg 12 ]
      [ meta load l4proto => reg 16 ]
      [ payload load 2b @ transport header + 2 => reg 17 ]
      [ lookup reg 8 set policy_allow6 inverted ]
      [ lookup reg 8 set policy_allow_ranges6 inverted ]
      [ counter ]
      [ immediate reg 0 drop ]
  chain forward { type filter hook forward priority 0 }
    # your rules first
      [ immediate reg 0 jump user ]
    # replies
      [ ct load state => reg 8 ]
      [ bitwise reg 8 = ( reg 8 & 06000000 ) ^ 00000000 ]
      [ cmp neq reg 8 00000000 ]
      [ immediate reg 0 accept ]
    # containers on one bridge (seen here only when br_netfilter is active)
      [ meta load iifname => reg 8 ]
      [ meta load oifname => reg 12 ]
      [ lookup reg 8 set icc ]
      [ immediate reg 0 accept ]
    # internal networks reach nothing outside their bridge
      [ meta load iifname => reg 8 ]
      [ lookup reg 8 set internal ]
      [ counter ]
      [ immediate reg 0 drop ]
    # nothing reaches into internal networks
      [ meta load oifname => reg 8 ]
      [ lookup reg 8 set internal ]
      [ counter ]
      [ immediate reg 0 drop ]
    # published ports
      [ ct load status => reg 8 ]
      [ bitwise reg 8 = ( reg 8 & 20000000 ) ^ 00000000 ]
      [ cmp neq reg 8 00000000 ]
      [ meta load oifname => reg 8 ]
      [ lookup reg 8 set bridges ]
      [ immediate reg 0 accept ]
    # containers on one bridge with icc off
      [ meta load iifname => reg 8 ]
      [ meta load oifname => reg 12 ]
      [ lookup reg 8 set no_icc ]
      [ counter ]
      [ immediate reg 0 drop ]
    # open networks reach open and isolated ones
      [ meta load iifname => reg 8 ]
      [ lookup reg 8 set open ]
      [ meta load oifname => reg 8 ]
      [ lookup reg 8 set shared ]
      [ immediate reg 0 accept ]
    # open and isolated networks reach open ones
      [ meta load iifname => reg 8 ]
      [ lookup reg 8 set shared ]
      [ meta load oifname => reg 8 ]
      [ lookup reg 8 set open ]
      [ immediate reg 0 accept ]
    # nothing else enters a network: not the wan, not another network
      [ meta load oifname => reg 8 ]
      [ lookup reg 8 set bridges ]
      [ counter ]
      [ immediate reg 0 drop ]
  chain postrouting { type nat hook postrouting priority 100 }
    # masquerade traffic leaving ctnet networks
      [ meta load nfproto => reg 8 ]
      [ cmp eq reg 8 02 ]
      [ payload load 4b @ network header + 12 => reg 8 ]
      [ lookup reg 8 set masq_subnets ]
      [ meta load oifname => reg 9 ]
      [ lookup reg 8 set masq_local inverted ]
      [ counter ]
      [ masq ]
    # published ports reached from the same network answer through the host
      [ meta load nfproto => reg 8 ]
      [ cmp eq reg 8 02 ]
      [ ct load status => reg 8 ]
      [ bitwise reg 8 = ( reg 8 & 20000000 ) ^ 00000000 ]
      [ cmp neq reg 8 00000000 ]
      [ payload load 4b @ network header + 12 => reg 8 ]
      [ meta load oifname => reg 9 ]
      [ lookup reg 8 set masq_local ]
      [ counter ]
      [ masq ]
    # published ports reached on 127.0.0.1 answer through the host
      [ meta load nfproto => reg 8 ]
      [ cmp eq reg 8 02 ]
      [ ct load status => reg 8 ]
      [ bitwise reg 8 = ( reg 8 & 20000000 ) ^ 00000000 ]
      [ cmp neq reg 8 00000000 ]
      [ payload load 4b @ network header + 12 => reg 8 ]
      [ bitwise reg 8 = ( reg 8 & ff000000 ) ^ 00000000 ]
      [ cmp eq reg 8 7f000000 ]
      [ counter ]
      [ masq ]
    # masquerade traffic leaving ctnet networks (IPv6)
      [ meta load nfproto => reg 8 ]
      [ cmp eq reg 8 0a ]
      [ payload load 16b @ network header + 8 => reg 8 ]
      [ lookup reg 8 set masq_subnets6 ]
      [ meta load oifname => reg 12 ]
      [ lookup reg 8 set masq_local6 inverted ]
      [ counter ]
      [ masq ]
    # published ports reached from the same network answer through the host (IPv6)
      [ meta load nfproto => reg 8 ]
      [ cmp eq reg 8 0a ]
      [ ct load status => reg 8 ]
      [ bitwise reg 8 = ( reg 8 & 20000000 ) ^ 00000000 ]
      [ cmp neq reg 8 00000000 ]
      [ payload load 16b @ network header + 8 => reg 8 ]
      [ meta load oifname => reg 12 ]
      [ lookup reg 8 set masq_local6 ]
      [ counter ]
      [ masq ]
";

    #[test]
    #[cfg(target_endian = "little")]
    fn the_skeleton_is_this_layout() {
        let rendered = render_skeleton();
        assert!(
            rendered == SKELETON,
            "the skeleton changed; if on purpose, bump LAYOUT and make SKELETON:\n{rendered}"
        );
    }

    #[test]
    fn element_timeouts_are_updated_from_linux_6_10() {
        for (release, expected) in [
            ("6.18.44-fc-v1098", true),
            ("6.10.0", true),
            ("7.0-rc1", true),
            ("6.9.12-arch1-1", false),
            ("5.15.0-91-generic", false),
            ("6", false),
            ("", false),
        ] {
            assert_eq!(
                release_updates_element_timeouts(release),
                expected,
                "{release}"
            );
        }
    }
}
