//! The cluster's shared state in etcd: overlay definitions and which host leases which
//! block of each. ctnet writes nothing else there, all under one prefix:
//!
//! ```text
//!   /ctnet/overlay/networks/NAME         OverlayDef (JSON)          no lease
//!   /ctnet/overlay/vnis/VNI              NAME                       no lease: the VNI is taken
//!   /ctnet/overlay/blocks/NAME/A.B.C.D_P BlockLease (JSON)          the holding agent's lease
//! ```
//!
//! A block key is made with a compare-and-swap transaction (create only if absent), so
//! two hosts never hold one block; it lives as long as its agent's lease, so a host that
//! dies loses its block a TTL later and every other host removes its entries.

use std::time::{Duration, Instant};

use ctnet_etcd::{Client, Endpoints};
use ipnet::Ipv4Net;

use crate::error::{Error, ErrorKind, Result};
use crate::model::overlay::{BlockLease, OverlayDef, Vni};
use crate::model::NetworkName;

/// Everything ctnet keeps in etcd is under this prefix.
pub const PREFIX: &str = "/ctnet/overlay/";
/// The environment variable naming the etcd endpoints (as `--etcd`).
pub const ENV_ETCD: &str = "CTNET_ETCD_ENDPOINTS";
/// How long a one-shot waits for etcd before saying it is unreachable.
pub const ONE_SHOT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a host's container count in etcd may lag its detaches: its agent writes it
/// at each sync, every second (and a sync takes a few requests).
const COUNT_LAG: Duration = Duration::from_millis(2500);

/// The key of an overlay's definition.
pub fn network_key(name: &NetworkName) -> String {
    format!("{PREFIX}networks/{name}")
}

/// The prefix of every overlay definition.
pub fn networks_prefix() -> String {
    format!("{PREFIX}networks/")
}

/// The key that marks a VNI taken.
pub fn vni_key(vni: Vni) -> String {
    format!("{PREFIX}vnis/{vni}")
}

/// The prefix of one overlay's block leases.
pub fn blocks_prefix(name: &NetworkName) -> String {
    format!("{PREFIX}blocks/{name}/")
}

/// The prefix of every block lease.
pub fn all_blocks_prefix() -> String {
    format!("{PREFIX}blocks/")
}

/// The key of one block's lease (`/` of the CIDR written `_`).
pub fn block_key(name: &NetworkName, block: Ipv4Net) -> String {
    format!(
        "{}{}_{}",
        blocks_prefix(name),
        block.network(),
        block.prefix_len()
    )
}

/// The overlay name a block key belongs to.
pub fn network_of_block_key(key: &str) -> Option<&str> {
    key.strip_prefix(PREFIX)?
        .strip_prefix("blocks/")?
        .split('/')
        .next()
}

/// A block lease as read from etcd.
#[derive(Debug, Clone)]
pub struct LeaseEntry {
    /// Its key.
    pub key: String,
    /// What it says.
    pub lease: BlockLease,
    /// The key's last modification (for compare-and-swap).
    pub mod_revision: i64,
    /// The etcd lease it is bound to (0: none).
    pub lease_id: i64,
}

impl LeaseEntry {
    /// The overlay it is a block of.
    pub fn network(&self) -> Option<&str> {
        network_of_block_key(&self.key)
    }
}

/// One overlay as etcd has it: its definition and its hosts' leases.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ClusterOverlay {
    /// The definition.
    #[serde(flatten)]
    pub def: OverlayDef,
    /// The hosts' blocks.
    pub hosts: Vec<BlockLease>,
}

/// The etcd cluster, as a one-shot uses it.
pub struct Cluster {
    client: Client,
    endpoints: Endpoints,
}

/// The error for etcd failing. ctnet-etcd's own texts already name the member and
/// say what to do, so only an unreachable cluster gets its parts rearranged.
pub fn etcd_error(endpoints: &Endpoints, e: ctnet_etcd::Error) -> Error {
    match e {
        ctnet_etcd::Error::Unreachable { failures } => Error::new(
            ErrorKind::Unavailable,
            format!("etcd at {endpoints}"),
            format!(
                "is unreachable (no member answered): {}",
                failures
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "check that etcd runs there, that these are its client URLs (--etcd or CTNET_ETCD_ENDPOINTS) and that this host reaches them",
        ),
        other => Error::new(ErrorKind::Unavailable, "etcd", other.to_string(), ""),
    }
}

/// Parses the endpoints given by `--etcd` or CTNET_ETCD_ENDPOINTS.
pub fn parse_endpoints(text: &str) -> Result<Endpoints> {
    Endpoints::parse(text).map_err(|e| match e {
        ctnet_etcd::Error::BadEndpoints { text, cause, fix } => {
            Error::invalid(format!("etcd endpoints {text:?}"), cause, fix)
        }
        other => Error::invalid(
            format!("etcd endpoints {text:?}"),
            other.to_string(),
            "give client URLs like http://192.0.2.100:2379, comma-separated",
        ),
    })
}

impl Cluster {
    /// A client of `endpoints` that fails in bounded time.
    pub fn new(endpoints: Endpoints, timeout: Duration) -> Cluster {
        Cluster {
            client: Client::new(endpoints.clone(), timeout),
            endpoints,
        }
    }

    /// The client, for the agent's own requests.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The endpoints.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    fn err(&self, e: ctnet_etcd::Error) -> Error {
        etcd_error(&self.endpoints, e)
    }

    /// Fails in bounded time when no endpoint answers.
    pub fn check(&self) -> Result<()> {
        self.client.check().map_err(|e| self.err(e))
    }

    /// Every overlay definition and the revision they were read at.
    pub fn definitions(&self) -> Result<(Vec<OverlayDef>, i64)> {
        let (kvs, rev) = self
            .client
            .range_prefix(&networks_prefix())
            .map_err(|e| self.err(e))?;
        Ok((
            kvs.iter()
                .filter_map(|kv| serde_json::from_slice(&kv.value).ok())
                .collect(),
            rev,
        ))
    }

    /// Every block lease, and the revision they were read at.
    pub fn leases(&self) -> Result<(Vec<LeaseEntry>, i64)> {
        let (kvs, rev) = self
            .client
            .range_prefix(&all_blocks_prefix())
            .map_err(|e| self.err(e))?;
        Ok((
            kvs.into_iter()
                .filter_map(|kv| {
                    let lease: BlockLease = serde_json::from_slice(&kv.value).ok()?;
                    Some(LeaseEntry {
                        key: kv.key,
                        lease,
                        mod_revision: kv.mod_revision,
                        lease_id: kv.lease,
                    })
                })
                .collect(),
            rev,
        ))
    }

    /// One overlay's definition, if etcd has it.
    pub fn definition(&self, name: &NetworkName) -> Result<Option<OverlayDef>> {
        let (kv, _) = self
            .client
            .range(&network_key(name))
            .map_err(|e| self.err(e))?;
        Ok(kv.and_then(|kv| serde_json::from_slice(&kv.value).ok()))
    }

    /// The overlays with their hosts.
    pub fn overlays(&self) -> Result<Vec<ClusterOverlay>> {
        let (defs, _) = self.definitions()?;
        let (leases, _) = self.leases()?;
        Ok(defs
            .into_iter()
            .map(|def| {
                let hosts = leases
                    .iter()
                    .filter(|e| e.network() == Some(def.name.as_str()))
                    .map(|e| e.lease.clone())
                    .collect();
                ClusterOverlay { def, hosts }
            })
            .collect())
    }

    /// The lowest VNI no overlay has.
    pub fn free_vni(&self) -> Result<Vni> {
        let (defs, _) = self.definitions()?;
        let mut n = 1;
        while defs.iter().any(|d| d.vni.get() == n) {
            n += 1;
        }
        Vni::new(n)
    }

    /// Writes a new overlay: its VNI is taken first (compare-and-swap), then its name; if
    /// the name is taken the VNI is let go again, so a refused create leaves etcd as it
    /// was.
    pub fn create_overlay(&self, def: &OverlayDef) -> Result<()> {
        let object = format!("overlay network {:?}", def.name.as_str());
        let (defs, _) = self.definitions()?;
        if defs.iter().any(|d| d.name == def.name) {
            return Err(Error::new(
                ErrorKind::Conflict,
                &object,
                "already exists in etcd",
                format!(
                    "choose another name, or remove it with `ctnet network rm {}`",
                    def.name
                ),
            ));
        }
        if let Some(other) = defs.iter().find(|d| d.vni == def.vni) {
            return Err(vni_taken(&object, def.vni, other.name.as_str()));
        }
        if let Some(other) = defs.iter().find(|d| overlaps(d.subnet, def.subnet)) {
            return Err(Error::new(
                ErrorKind::Conflict,
                &object,
                format!(
                    "subnet {} overlaps overlay {:?}'s {}",
                    def.subnet,
                    other.name.as_str(),
                    other.subnet
                ),
                "choose a subnet no other overlay uses",
            ));
        }
        let vni_key = vni_key(def.vni);
        if !self
            .client
            .create(&vni_key, def.name.as_str().as_bytes(), None)
            .map_err(|e| self.err(e))?
        {
            return Err(vni_taken(&object, def.vni, "another overlay being created"));
        }
        let value = serde_json::to_vec(def).expect("an overlay definition serializes");
        match self.client.create(&network_key(&def.name), &value, None) {
            Ok(true) => Ok(()),
            Ok(false) => {
                let _ = self.client.delete(&vni_key);
                Err(Error::new(
                    ErrorKind::Conflict,
                    &object,
                    "was created in etcd by someone else just now",
                    "choose another name",
                ))
            }
            Err(e) => {
                let _ = self.client.delete(&vni_key);
                Err(self.err(e))
            }
        }
    }

    /// Removes an overlay from etcd; refused while any host has containers on it (each
    /// agent then removes its host's part).
    pub fn remove_overlay(&self, name: &NetworkName) -> Result<()> {
        let object = format!("overlay network {:?}", name.as_str());
        let Some(def) = self.definition(name)? else {
            return Err(Error::new(
                ErrorKind::NotFound,
                &object,
                "is not in etcd",
                "see `ctnet network ls` for the networks there are",
            ));
        };
        // A count is its agent's report at its last sync: a detach made just now shows
        // a sync later, so a host still counted is asked again until that has passed.
        let deadline = Instant::now() + COUNT_LAG;
        let busy = loop {
            let busy = self.busy_hosts(name)?;
            if busy.is_empty() || Instant::now() >= deadline {
                break busy;
            }
            std::thread::sleep(Duration::from_millis(250));
        };
        if !busy.is_empty() {
            return Err(Error::new(
                ErrorKind::InUse,
                &object,
                format!("has containers on {}", busy.join(", ")),
                "detach them (`ctnet detach` on each host), then remove it",
            ));
        }
        self.client
            .delete(&network_key(name))
            .map_err(|e| self.err(e))?;
        self.client
            .delete(&vni_key(def.vni))
            .map_err(|e| self.err(e))?;
        self.client
            .delete_prefix(&blocks_prefix(name))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The hosts whose leases of `name` count containers, for people.
    fn busy_hosts(&self, name: &NetworkName) -> Result<Vec<String>> {
        Ok(self
            .overlays()?
            .into_iter()
            .filter(|o| o.def.name == *name)
            .flat_map(|o| o.hosts)
            .filter(|h| h.containers > 0)
            .map(|h| format!("{} ({}): {} container(s)", h.host, h.underlay, h.containers))
            .collect())
    }
}

fn vni_taken(object: &str, vni: Vni, holder: &str) -> Error {
    Error::new(
        ErrorKind::Conflict,
        object,
        format!("VNI {vni} is in use by {holder:?}"),
        "give another --vni, or leave it out for a free one",
    )
}

fn overlaps(a: Ipv4Net, b: Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_under_the_prefix_and_name_their_network() {
        let name = NetworkName::new("ov1").unwrap();
        let key = block_key(&name, "10.50.3.0/24".parse().unwrap());
        assert_eq!(key, "/ctnet/overlay/blocks/ov1/10.50.3.0_24");
        assert_eq!(network_of_block_key(&key), Some("ov1"));
        assert_eq!(network_of_block_key("/ctnet/overlay/networks/ov1"), None);
        assert_eq!(vni_key(Vni::new(7).unwrap()), "/ctnet/overlay/vnis/7");
    }

    #[test]
    fn overlapping_subnets() {
        let n = |s: &str| s.parse::<Ipv4Net>().unwrap();
        assert!(overlaps(n("10.50.0.0/16"), n("10.50.3.0/24")));
        assert!(overlaps(n("10.50.3.0/24"), n("10.50.0.0/16")));
        assert!(!overlaps(n("10.50.0.0/16"), n("10.51.0.0/16")));
    }
}
