//! The overlay half of `ctnet network create|rm|inspect`: what is written to and read
//! from etcd. This host's part of an overlay is made by ctnet-agent, never here.

use std::time::Duration;

use ctnet_engine::cluster::{self, Cluster, ClusterOverlay};
use ctnet_engine::model::overlay::{OverlayDef, Vni, DEFAULT_HOST_PREFIX};
use ctnet_engine::model::Subnet;
use ctnet_engine::{Error, ErrorKind, NetworkName, Result};

use crate::cli::NetworkCreateArgs;

/// The etcd cluster named by `--etcd` or CTNET_ETCD_ENDPOINTS; None when neither is set.
pub fn cluster_from(flag: Option<&str>) -> Result<Option<Cluster>> {
    let text = match flag {
        Some(text) => text.to_string(),
        None => match std::env::var(cluster::ENV_ETCD) {
            Ok(text) if !text.is_empty() => text,
            _ => return Ok(None),
        },
    };
    let endpoints = cluster::parse_endpoints(&text)?;
    Ok(Some(Cluster::new(endpoints, cluster::ONE_SHOT_TIMEOUT)))
}

fn required(flag: Option<&str>, object: &str) -> Result<Cluster> {
    cluster_from(flag)?.ok_or_else(|| {
        Error::invalid(
            object,
            "is an overlay network, which lives in etcd, and no etcd was given",
            format!("give --etcd URL[,URL...] or set {}", cluster::ENV_ETCD),
        )
    })
}

/// `ctnet network create NAME --driver overlay --subnet CIDR [--vni N] [--host-prefix P]`.
pub fn create(args: &NetworkCreateArgs) -> Result<()> {
    let object = format!("overlay network {:?}", args.name);
    refuse_bridge_options(args, &object)?;
    let name = NetworkName::new(&args.name)?;
    let subnet = match args.subnet.as_slice() {
        [one] => match Subnet::parse(one)? {
            Subnet::V4(net) => net,
            Subnet::V6(_) => {
                return Err(Error::invalid(
                    &object,
                    "overlay networks are IPv4 only for now",
                    "give an IPv4 --subnet, e.g. 10.50.0.0/16",
                ))
            }
        },
        [] => {
            return Err(Error::invalid(
                &object,
                "has no --subnet: an overlay's subnet is shared by every host and chosen once",
                "give one, e.g. --subnet 10.50.0.0/16",
            ))
        }
        _ => {
            return Err(Error::invalid(
                &object,
                "has more than one --subnet",
                "give exactly one IPv4 subnet",
            ))
        }
    };
    let host_prefix = args.host_prefix.unwrap_or(DEFAULT_HOST_PREFIX);
    let vni = args.vni.map(Vni::new).transpose()?;
    if let Some(mtu) = args.mtu {
        if !(576..=9000).contains(&mtu) {
            return Err(Error::invalid(
                &object,
                format!("MTU {mtu} is out of range"),
                "use an MTU from 576 to 9000, or leave it out for the underlay's minus 50",
            ));
        }
    }
    // The shape is checked before etcd is asked, so bad input fails the same without it.
    let mut def = OverlayDef {
        name,
        subnet,
        vni: vni.unwrap_or(Vni::new(1)?),
        host_prefix,
        mtu: args.mtu,
        created: now(),
    };
    def.check()?;
    let cluster = required(args.etcd.as_deref(), &object)?;
    cluster.check()?;
    if vni.is_none() {
        def.vni = cluster.free_vni()?;
    }
    cluster.create_overlay(&def)?;
    println!("{}", def.name);
    eprintln!(
        "ctnet: overlay {:?} (VNI {}, {} in blocks of /{}) is in etcd; each host's ctnet-agent --etcd joins it",
        def.name.as_str(),
        def.vni,
        def.subnet,
        def.host_prefix
    );
    Ok(())
}

/// Options of `network create` that mean nothing for an overlay: refused, never
/// ignored.
fn refuse_bridge_options(args: &NetworkCreateArgs, object: &str) -> Result<()> {
    let given: Vec<&str> = [
        (!args.gateway.is_empty(), "--gateway"),
        (args.ipv6, "--ipv6"),
        (!args.ipv4, "--ipv4 false"),
        (args.bridge.is_some(), "--bridge"),
        (args.internal, "--internal"),
        (!args.icc, "--icc false"),
        (args.parent.is_some(), "--parent"),
        (args.macvlan_mode.is_some(), "--macvlan-mode"),
        (args.isolate != "strict", "--isolate"),
        (args.metric.is_some(), "--metric"),
        (args.ipam != "ctnet", "--ipam"),
    ]
    .into_iter()
    .filter_map(|(set, flag)| set.then_some(flag))
    .collect();
    if given.is_empty() {
        return Ok(());
    }
    Err(Error::invalid(
        object,
        format!(
            "{} not supported on overlay networks (each host's gateway is the first address of its block; overlays are isolated from every other network)",
            if given.len() == 1 {
                format!("{} is", given[0])
            } else {
                format!("{} are", given.join(", "))
            }
        ),
        "drop them",
    ))
}

/// Removes an overlay from etcd (refused while any host has containers on it).
pub fn remove(flag: Option<&str>, name: &NetworkName) -> Result<()> {
    let object = format!("overlay network {:?}", name.as_str());
    let cluster = required(flag, &object)?;
    cluster.remove_overlay(name)
}

/// Whether etcd has an overlay of this name (false when no etcd is given).
pub fn exists(flag: Option<&str>, name: &NetworkName) -> Result<bool> {
    match cluster_from(flag)? {
        Some(cluster) => Ok(cluster.definition(name)?.is_some()),
        None => Ok(false),
    }
}

/// The cluster's view of one overlay for `network inspect`: its hosts and blocks, or why
/// etcd could not say.
#[derive(serde::Serialize)]
#[serde(untagged)]
pub enum ClusterView {
    /// What etcd has.
    Known(ClusterOverlay),
    /// Why it is not shown.
    Unknown {
        /// The reason.
        cluster_unavailable: String,
    },
}

/// The cluster view of `name`, if an etcd is given.
pub fn view(flag: Option<&str>, name: &NetworkName) -> Option<ClusterView> {
    let cluster = match cluster_from(flag) {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Some(ClusterView::Unknown {
                cluster_unavailable: format!(
                    "no etcd given (--etcd or {}): showing this host's view only",
                    cluster::ENV_ETCD
                ),
            })
        }
        Err(e) => {
            return Some(ClusterView::Unknown {
                cluster_unavailable: e.to_string(),
            })
        }
    };
    match cluster.overlays() {
        Ok(all) => all
            .into_iter()
            .find(|o| o.def.name == *name)
            .map(ClusterView::Known)
            .or(Some(ClusterView::Unknown {
                cluster_unavailable: "etcd has no overlay of this name (removed?)".into(),
            })),
        Err(e) => Some(ClusterView::Unknown {
            cluster_unavailable: e.to_string(),
        }),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs() as i64
}

/// The error for an overlay that etcd has but this host has not joined.
pub fn not_joined(name: &NetworkName) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        format!("overlay network {:?}", name.as_str()),
        "is in etcd but this host has not joined it",
        "start ctnet-agent --etcd URL --advertise-addr UNDERLAY_IP on this host",
    )
}
