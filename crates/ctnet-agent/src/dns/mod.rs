//! Container-name DNS: what the store says ([`load`], [`Loaded::apply`]), what to answer
//! ([`records`]), the listeners ([`server`]) and the upstreams ([`forward`]).
//!
//! ```text
//!   whole read (start, "changed", timer)     one endpoint ("endpoint ID")
//!   networks + every ready endpoint's        that endpoint's row, if ready
//!   names and addresses, one transaction           │
//!          │                                       ▼
//!          └──▶ from_store ──▶ Loaded ◀── apply: its host leaves its zone, and comes
//!                              │              back with what the row says now
//!                              ▼
//!                     table (zones, hosts), listeners, counts
//! ```

pub mod forward;
pub mod fresh;
pub mod records;
pub mod server;

use std::collections::BTreeMap;

use ctnet_engine::model::{Driver, NamedEndpoint, RowState};
use ctnet_engine::{Engine, Network};

use records::{Host, Table, Zone};
use server::Want;

/// What the store gives the DNS side.
#[derive(Debug, Default)]
pub struct Loaded {
    /// What to answer from.
    pub table: Table,
    /// The listeners to run: every gateway of every ready DNS network.
    pub listeners: Vec<Want>,
    /// Names registered per DNS network (for the status file).
    pub names: BTreeMap<String, usize>,
    /// The ready endpoints on DNS networks, named or not (each may send queries), by id,
    /// with their network.
    pub members: BTreeMap<i64, String>,
}

/// What [`Loaded::apply`] could do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The table now says what the row says.
    Done,
    /// The endpoint is on a network the table does not know (made since the last whole
    /// read, or not a DNS network): only a whole read can tell.
    NeedsWholeRead,
}

impl Loaded {
    /// True when some DNS network has a ready endpoint: an agent started on demand is
    /// still needed.
    pub fn busy(&self) -> bool {
        !self.members.is_empty()
    }

    /// Brings endpoint `id` up to date from its row as read now (`None`: gone or not
    /// ready), without reading anything else: what an attach or a detach costs the agent
    /// is one row, however many containers there are.
    pub fn apply(&mut self, id: i64, row: Option<&NamedEndpoint>) -> Applied {
        let network = row.map(|r| r.network.as_str().to_string());
        if let Some(net) = &network {
            if !self.table.zones.contains_key(net) {
                return Applied::NeedsWholeRead;
            }
        }
        if let Some(old) = self.members.remove(&id) {
            if let Some(zone) = self.table.zones.get_mut(&old) {
                zone.remove(id);
                self.names.insert(old.clone(), zone.name_count());
            }
        }
        if let (Some(row), Some(net)) = (row, network) {
            let zone = self.table.zones.get_mut(&net).expect("checked above");
            if let Some(host) = host_of(row) {
                zone.insert(host);
            }
            self.names.insert(net.clone(), zone.name_count());
            self.members.insert(id, net);
        }
        Applied::Done
    }
}

/// Reads the networks and the ready endpoints' names and addresses, as of one moment
/// (the engine's public reads only).
pub fn load(engine: &mut Engine) -> ctnet_engine::Result<Loaded> {
    let (networks, endpoints) = engine.dns_snapshot()?;
    Ok(from_store(&networks, &endpoints))
}

/// The DNS networks are the ready bridge networks with `dns` on: a bridge's gateway is
/// the host's own address on it, where the agent can listen (a macvlan network's gateway
/// is a router elsewhere). Every network's subnets, DNS or not, are private: their
/// reverse names are never forwarded.
pub fn from_store(networks: &[Network], endpoints: &[NamedEndpoint]) -> Loaded {
    let mut loaded = Loaded::default();
    for net in networks {
        loaded
            .table
            .private
            .extend(net.subnets.iter().map(|s| s.subnet.net()));
        if !(net.dns && net.state == RowState::Ready && net.driver == Driver::Bridge) {
            continue;
        }
        let name = net.name.as_str().to_string();
        let ready = endpoints.iter().filter(|e| e.network == net.name);
        let mut hosts = Vec::new();
        for endpoint in ready {
            loaded.members.insert(endpoint.id, name.clone());
            hosts.extend(host_of(endpoint));
        }
        let zone = Zone::new(net.subnets.iter().map(|s| s.subnet.net()).collect(), hosts);
        loaded.names.insert(name.clone(), zone.name_count());
        loaded
            .listeners
            .extend(net.subnets.iter().map(|s| (name.clone(), s.gateway)));
        loaded.table.zones.insert(name, zone);
    }
    loaded
}

/// The host an endpoint answers as; None when it has no name.
fn host_of(endpoint: &NamedEndpoint) -> Option<Host> {
    let names: Vec<String> = endpoint
        .names
        .iter()
        .map(|n| n.as_str().to_ascii_lowercase())
        .collect();
    (!names.is_empty()).then(|| Host {
        id: endpoint.id,
        names,
        ips: endpoint.ips.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ctnet_engine::model::DnsName;
    use ctnet_engine::NetworkName;

    fn endpoint(id: i64, network: &str, names: &[&str], ip: &str) -> NamedEndpoint {
        NamedEndpoint {
            id,
            network: NetworkName::new(network).unwrap(),
            names: names.iter().map(|n| DnsName::alias(n).unwrap()).collect(),
            ips: vec![ip.parse().unwrap()],
        }
    }

    /// A loaded view with DNS network `user` holding `rows` (no store involved: the zone
    /// is made as a whole read would make it).
    fn loaded(rows: &[NamedEndpoint]) -> Loaded {
        let mut loaded = Loaded::default();
        loaded.table.zones.insert(
            "user".into(),
            Zone::new(vec!["10.89.0.0/24".parse().unwrap()], []),
        );
        for row in rows {
            assert_eq!(loaded.apply(row.id, Some(row)), Applied::Done);
        }
        loaded
    }

    #[test]
    fn an_attach_adds_its_host_in_id_order_and_a_detach_removes_it() {
        let a = endpoint(1, "user", &["a"], "10.89.0.2");
        let c = endpoint(3, "user", &["c", "web"], "10.89.0.4");
        let mut view = loaded(&[a.clone(), c.clone()]);
        let b = endpoint(2, "user", &["b"], "10.89.0.3");
        assert_eq!(view.apply(2, Some(&b)), Applied::Done);
        let ids: Vec<i64> = view.table.zones["user"].hosts().map(|h| h.id).collect();
        assert_eq!(ids, [1, 2, 3]);
        assert_eq!(view.names["user"], 4);
        assert_eq!(view.apply(3, None), Applied::Done);
        let ids: Vec<i64> = view.table.zones["user"].hosts().map(|h| h.id).collect();
        assert_eq!(ids, [1, 2]);
        assert_eq!((view.names["user"], view.members.len()), (2, 2));
        // Told twice, or about an endpoint it never had: nothing changes.
        assert_eq!(view.apply(3, None), Applied::Done);
        assert_eq!(view.apply(99, None), Applied::Done);
        assert_eq!(view.members.len(), 2);
    }

    #[test]
    fn an_unnamed_endpoint_keeps_the_agent_busy_without_a_host() {
        let mut view = loaded(&[]);
        assert!(!view.busy());
        let anonymous = endpoint(5, "user", &[], "10.89.0.9");
        assert_eq!(view.apply(5, Some(&anonymous)), Applied::Done);
        assert!(view.busy());
        assert_eq!(view.table.zones["user"].hosts().count(), 0);
        assert_eq!(view.apply(5, None), Applied::Done);
        assert!(!view.busy());
    }

    #[test]
    fn a_changed_row_replaces_the_old_host() {
        let mut view = loaded(&[endpoint(1, "user", &["a"], "10.89.0.2")]);
        let renamed = endpoint(1, "user", &["a", "alias"], "10.89.0.7");
        assert_eq!(view.apply(1, Some(&renamed)), Applied::Done);
        let hosts: Vec<&Host> = view.table.zones["user"].hosts().collect();
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0].names, ["a", "alias"]);
        assert_eq!(
            hosts[0].ips,
            ["10.89.0.7".parse::<std::net::IpAddr>().unwrap()]
        );
    }

    #[test]
    fn an_endpoint_on_a_network_not_in_the_table_asks_for_a_whole_read() {
        let mut view = loaded(&[endpoint(1, "user", &["a"], "10.89.0.2")]);
        let elsewhere = endpoint(2, "new", &["x"], "10.91.0.2");
        assert_eq!(view.apply(2, Some(&elsewhere)), Applied::NeedsWholeRead);
        assert_eq!(view.members.len(), 1, "nothing changed");
    }

    #[test]
    fn apply_gives_what_a_whole_read_gives() {
        let rows = [
            endpoint(1, "user", &["a"], "10.89.0.2"),
            endpoint(4, "user", &["d"], "10.89.0.5"),
            endpoint(2, "user", &[], "10.89.0.3"),
        ];
        let view = loaded(&rows);
        let mut sorted = rows.to_vec();
        sorted.sort_by_key(|r| r.id);
        let hosts: Vec<Host> = sorted.iter().filter_map(host_of).collect();
        let held: Vec<Host> = view.table.zones["user"].hosts().cloned().collect();
        assert_eq!(held, hosts);
        assert_eq!(view.members.keys().copied().collect::<Vec<_>>(), [1, 2, 4]);
    }
}
