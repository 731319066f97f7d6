//! Container-name DNS: what the store says ([`load`]), what to answer ([`records`]), the
//! listeners ([`server`]) and the upstreams ([`forward`]).

pub mod forward;
pub mod records;
pub mod server;

use std::collections::BTreeMap;

use ctnet_engine::model::{Driver, RowState};
use ctnet_engine::{Endpoint, Engine, Network};

use records::{Host, Table, Zone};
use server::Want;

/// What one read of the store gives the DNS side.
#[derive(Debug, Default)]
pub struct Loaded {
    /// What to answer from.
    pub table: Table,
    /// The listeners to run: every gateway of every ready DNS network.
    pub listeners: Vec<Want>,
    /// Names registered per DNS network (for the status file).
    pub names: BTreeMap<String, usize>,
    /// Ready endpoints on DNS networks, named or not (each may send queries).
    pub endpoints: usize,
}

impl Loaded {
    /// True when some DNS network has a ready endpoint: an agent started on demand is
    /// still needed.
    pub fn busy(&self) -> bool {
        self.endpoints > 0
    }
}

/// Reads the networks and endpoints (the engine's public reads only).
pub fn load(engine: &mut Engine) -> ctnet_engine::Result<Loaded> {
    let networks = engine.networks()?;
    let endpoints = engine.endpoints()?;
    Ok(from_store(&networks, &endpoints))
}

/// The DNS networks are the ready bridge networks with `dns` on: a bridge's gateway is
/// the host's own address on it, where the agent can listen (a macvlan network's gateway
/// is a router elsewhere). Every network's subnets, DNS or not, are private: their
/// reverse names are never forwarded.
pub fn from_store(networks: &[Network], endpoints: &[Endpoint]) -> Loaded {
    let mut loaded = Loaded::default();
    for net in networks {
        loaded
            .table
            .private
            .extend(net.subnets.iter().map(|s| s.subnet.net()));
        if !(net.dns && net.state == RowState::Ready && net.driver == Driver::Bridge) {
            continue;
        }
        let ready: Vec<&Endpoint> = endpoints
            .iter()
            .filter(|e| e.network == net.name && e.state == RowState::Ready)
            .collect();
        loaded.endpoints += ready.len();
        let hosts: Vec<Host> = ready
            .iter()
            .map(|e| Host {
                names: e
                    .dns_names()
                    .map(|n| n.as_str().to_ascii_lowercase())
                    .collect(),
                ips: e.ips.clone(),
            })
            .filter(|h| !h.names.is_empty())
            .collect();
        let name = net.name.as_str().to_string();
        loaded
            .names
            .insert(name.clone(), hosts.iter().map(|h| h.names.len()).sum());
        loaded
            .listeners
            .extend(net.subnets.iter().map(|s| (name.clone(), s.gateway)));
        let zone = Zone {
            subnets: net.subnets.iter().map(|s| s.subnet.net()).collect(),
            hosts,
        };
        loaded.table.zones.insert(name, zone);
    }
    loaded
}
