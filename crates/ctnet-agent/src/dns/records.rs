//! What the agent answers, decided without any socket: given what the store says (the DNS
//! networks, their subnets and their containers' names and addresses) and one query that
//! arrived on one network's listener from one source address, either an answer of ours or
//! "forward it upstream".
//!
//! The rules (docs/agent.md):
//! - a query from inside network N's subnets, on N's listener, is answered from N's
//!   containers: `NAME` and `NAME.dns.podman` (the search domain Podman is given), A and
//!   AAAA from their addresses, PTR for their addresses; a name without the asked type is
//!   NOERROR with no answer;
//! - nothing leaks across networks: a single-label name or a `dns.podman` name that is not
//!   on N, and the PTR of an address inside any ctnet subnet that is not N's, are NXDOMAIN
//!   from us (forwarding them would only tell the upstream what we hide);
//! - a source outside N's subnets gets no container data at all, as if N were empty;
//! - everything else goes upstream unchanged.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use ipnet::IpNet;

/// The search domain the netavark front end gives Podman's containers (as aardvark-dns).
pub const SEARCH_DOMAIN: &str = "dns.podman";

/// How long a client may keep one of our answers. Short: a container that leaves must
/// stop resolving at once, and a resolver inside a container may cache.
pub const TTL: u32 = 5;

/// One container on a DNS network, as the agent answers for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Its endpoint's id in the store: what an incremental update finds it by.
    pub id: i64,
    /// Its names on the network, lower case, without a trailing dot: the container's own
    /// name first, then its aliases.
    pub names: Vec<String>,
    /// Its addresses on the network, IPv4 first.
    pub ips: Vec<IpAddr>,
}

/// One network the agent serves: its containers with DNS names, found by name and by
/// address in one hash look-up however many there are (a query scanned them all before).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Zone {
    /// The network's subnets: who may ask for its names.
    pub subnets: Vec<IpNet>,
    /// Its containers with DNS names, by endpoint id.
    hosts: BTreeMap<i64, Host>,
    /// Which hosts answer to a name (one, unless the store briefly holds two).
    by_name: HashMap<String, BTreeSet<i64>>,
    /// Which hosts hold an address.
    by_ip: HashMap<IpAddr, BTreeSet<i64>>,
    /// The names of all hosts, counted (for the status file).
    names: usize,
}

impl Zone {
    /// A zone over `subnets` holding `hosts`.
    pub fn new(subnets: Vec<IpNet>, hosts: impl IntoIterator<Item = Host>) -> Zone {
        let mut zone = Zone {
            subnets,
            ..Zone::default()
        };
        for host in hosts {
            zone.insert(host);
        }
        zone
    }

    /// Adds `host`, in place of the one with its id if there is one.
    pub fn insert(&mut self, host: Host) {
        self.remove(host.id);
        for name in &host.names {
            self.by_name
                .entry(name.clone())
                .or_default()
                .insert(host.id);
        }
        for ip in &host.ips {
            self.by_ip.entry(*ip).or_default().insert(host.id);
        }
        self.names += host.names.len();
        self.hosts.insert(host.id, host);
    }

    /// Takes out the host of endpoint `id`, if it is here.
    pub fn remove(&mut self, id: i64) -> Option<Host> {
        let host = self.hosts.remove(&id)?;
        for name in &host.names {
            unindex(&mut self.by_name, name, id);
        }
        for ip in &host.ips {
            unindex(&mut self.by_ip, ip, id);
        }
        self.names -= host.names.len();
        Some(host)
    }

    /// The host answering to `name` (the lowest endpoint id if two do).
    pub fn named(&self, name: &str) -> Option<&Host> {
        self.first_of(self.by_name.get(name))
    }

    /// The host holding `ip`.
    pub fn holding(&self, ip: IpAddr) -> Option<&Host> {
        self.first_of(self.by_ip.get(&ip))
    }

    /// The hosts, by endpoint id.
    #[cfg(test)]
    pub fn hosts(&self) -> impl Iterator<Item = &Host> {
        self.hosts.values()
    }

    /// How many names the hosts have in all.
    pub fn name_count(&self) -> usize {
        self.names
    }

    fn first_of(&self, ids: Option<&BTreeSet<i64>>) -> Option<&Host> {
        ids.and_then(|ids| ids.first())
            .and_then(|id| self.hosts.get(id))
    }
}

/// Takes `id` out of `key`'s entry in `index`, and the entry out when it is left empty.
fn unindex<K: std::hash::Hash + Eq + Clone>(
    index: &mut HashMap<K, BTreeSet<i64>>,
    key: &K,
    id: i64,
) {
    if let Some(ids) = index.get_mut(key) {
        ids.remove(&id);
        if ids.is_empty() {
            index.remove(key);
        }
    }
}

/// Everything the agent answers from: one zone per DNS network, and every subnet of every
/// ctnet network (DNS or not) whose reverse names must not be forwarded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    /// DNS networks by name.
    pub zones: BTreeMap<String, Zone>,
    /// The subnets of all ctnet networks.
    pub private: Vec<IpNet>,
}

/// What to do with one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Answer NOERROR with these records (none: the name exists without that type).
    Answer(Vec<Record>),
    /// Answer NXDOMAIN ourselves.
    NxDomain,
    /// Send the query upstream, unchanged.
    Forward,
}

impl Table {
    /// The decision for `query`, received on the listener of network `network` from
    /// `source`.
    pub fn decide(&self, network: &str, source: IpAddr, query: &Query) -> Decision {
        if query.query_class() != DNSClass::IN {
            return Decision::Forward;
        }
        // A listener for a network gone from the table (a reload in flight) or a source
        // outside the network: no container data, but the same refusals as everyone.
        let zone = self
            .zones
            .get(network)
            .filter(|z| z.subnets.iter().any(|s| s.contains(&source)));
        let name = query.name();
        if query.query_type() == RecordType::PTR {
            if let Ok(net) = name.parse_arpa_name() {
                return self.reverse(zone, net, name);
            }
        }
        let key = lookup_key(name);
        if let Some(host) = zone.and_then(|z| z.named(&key)) {
            return Decision::Answer(address_records(host, name, query.query_type()));
        }
        if is_ours(name) {
            Decision::NxDomain
        } else {
            Decision::Forward
        }
    }

    /// A PTR query for `net` (a whole address, or a prefix for a partial arpa name).
    fn reverse(&self, zone: Option<&Zone>, net: IpNet, name: &Name) -> Decision {
        let whole = net.prefix_len() == net.max_prefix_len();
        if whole {
            let ip = net.addr();
            if let Some(host) = zone.and_then(|z| z.holding(ip)) {
                return Decision::Answer(ptr_records(host, name));
            }
        }
        let private = self
            .private
            .iter()
            .any(|s| s.contains(&net) || (whole && s.contains(&net.addr())));
        if private {
            Decision::NxDomain
        } else {
            Decision::Forward
        }
    }
}

/// The name a query asks for as the store spells container names: lower case, no
/// trailing dot, the search domain taken off.
fn lookup_key(name: &Name) -> String {
    let mut text = name.to_ascii().to_ascii_lowercase();
    if text.ends_with('.') {
        text.pop();
    }
    match text.strip_suffix(SEARCH_DOMAIN) {
        Some(rest) if rest.ends_with('.') && rest.len() > 1 => rest[..rest.len() - 1].to_string(),
        _ => text,
    }
}

/// True for names only we can know: a single label (no dot: a container name, never a
/// real domain a resolver should ask the internet about) and names under `dns.podman`.
fn is_ours(name: &Name) -> bool {
    let labels = name.num_labels();
    let search = Name::from_ascii(format!("{SEARCH_DOMAIN}.")).expect("valid constant");
    labels <= 1 || search.zone_of(&name.to_lowercase())
}

/// The A or AAAA records of `host` for a query of `kind` for `name`.
fn address_records(host: &Host, name: &Name, kind: RecordType) -> Vec<Record> {
    host.ips
        .iter()
        .filter_map(|ip| match (ip, kind) {
            (IpAddr::V4(v4), RecordType::A) => Some(RData::A(A(*v4))),
            (IpAddr::V6(v6), RecordType::AAAA) => Some(RData::AAAA(AAAA(*v6))),
            _ => None,
        })
        .map(|rdata| Record::from_rdata(name.clone(), TTL, rdata))
        .collect()
}

/// The PTR records for one of `host`'s addresses: each of its names under the search
/// domain (an absolute name that also resolves forward), its own name first.
fn ptr_records(host: &Host, name: &Name) -> Vec<Record> {
    host.names
        .iter()
        .filter_map(|n| Name::from_ascii(format!("{n}.{SEARCH_DOMAIN}.")).ok())
        .map(|target| Record::from_rdata(name.clone(), TTL, RData::PTR(PTR(target))))
        .collect()
}

/// Our reply to `request` (None: forward it). Malformed or unusual requests (no question,
/// an opcode other than QUERY, a response) get FORMERR or NOTIMP from us, never a
/// forward of something we could not read.
pub fn respond(table: &Table, network: &str, source: IpAddr, request: &Message) -> Option<Message> {
    if request.message_type() != MessageType::Query {
        return Some(reply(request, ResponseCode::FormErr));
    }
    if request.op_code() != OpCode::Query {
        return Some(reply(request, ResponseCode::NotImp));
    }
    let [query] = request.queries() else {
        return Some(reply(request, ResponseCode::FormErr));
    };
    match table.decide(network, source, query) {
        Decision::Forward => None,
        Decision::NxDomain => Some(reply(request, ResponseCode::NXDomain)),
        Decision::Answer(records) => {
            let mut msg = reply(request, ResponseCode::NoError);
            for record in records {
                msg.add_answer(record);
            }
            Some(msg)
        }
    }
}

/// An empty reply to `request` with `code`: same id and question, authoritative (the
/// names are ours), recursion available (we forward the rest).
pub fn reply(request: &Message, code: ResponseCode) -> Message {
    let mut msg = Message::new();
    msg.set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_op_code(request.op_code())
        .set_recursion_desired(request.recursion_desired())
        .set_recursion_available(true)
        .set_authoritative(code != ResponseCode::ServFail)
        .set_response_code(code);
    for query in request.queries() {
        msg.add_query(query.clone());
    }
    msg
}

/// SERVFAIL for a request we could only read the header of (the upstream did not answer):
/// the 12 header bytes and the question copied, so the client matches it to its query.
pub fn servfail(request: &[u8]) -> Option<Vec<u8>> {
    match Message::from_vec(request) {
        Ok(msg) => reply(&msg, ResponseCode::ServFail).to_vec().ok(),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn table() -> Table {
        let user = Zone::new(
            vec![
                "10.89.0.0/24".parse().unwrap(),
                "fd00:89::/64".parse().unwrap(),
            ],
            [
                Host {
                    id: 1,
                    names: vec!["a".into(), "web".into()],
                    ips: vec!["10.89.0.2".parse().unwrap(), "fd00:89::2".parse().unwrap()],
                },
                Host {
                    id: 2,
                    names: vec!["b".into()],
                    ips: vec!["10.89.0.3".parse().unwrap()],
                },
            ],
        );
        let other = Zone::new(
            vec!["10.90.0.0/24".parse().unwrap()],
            [Host {
                id: 3,
                names: vec!["secret".into(), "db.corp".into()],
                ips: vec!["10.90.0.2".parse().unwrap()],
            }],
        );
        Table {
            zones: [("user".to_string(), user), ("other".to_string(), other)].into(),
            private: vec![
                "10.89.0.0/24".parse().unwrap(),
                "fd00:89::/64".parse().unwrap(),
                "10.90.0.0/24".parse().unwrap(),
                "172.17.0.0/16".parse().unwrap(),
            ],
        }
    }

    fn query(name: &str, kind: RecordType) -> Query {
        Query::query(Name::from_str(name).unwrap(), kind)
    }

    fn ask(net: &str, from: &str, name: &str, kind: RecordType) -> Decision {
        table().decide(net, from.parse().unwrap(), &query(name, kind))
    }

    fn rdata(decision: Decision) -> Vec<String> {
        match decision {
            Decision::Answer(records) => records.iter().map(|r| r.data().to_string()).collect(),
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    fn host(id: i64, names: &[&str], ips: &[&str]) -> Host {
        Host {
            id,
            names: names.iter().map(|n| n.to_string()).collect(),
            ips: ips.iter().map(|ip| ip.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn a_zone_finds_hosts_by_name_and_address_and_forgets_what_it_replaces() {
        let mut zone = Zone::new(Vec::new(), [host(2, &["b"], &["10.0.0.2"])]);
        zone.insert(host(1, &["a", "web"], &["10.0.0.1"]));
        assert_eq!(zone.named("web").map(|h| h.id), Some(1));
        assert_eq!(
            zone.holding("10.0.0.2".parse().unwrap()).map(|h| h.id),
            Some(2)
        );
        assert_eq!(zone.hosts().map(|h| h.id).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(zone.name_count(), 3);
        // The same endpoint again, renamed and moved: the old name and address are gone.
        zone.insert(host(1, &["a2"], &["10.0.0.9"]));
        assert!(zone.named("web").is_none() && zone.named("a").is_none());
        assert!(zone.holding("10.0.0.1".parse().unwrap()).is_none());
        assert_eq!(zone.named("a2").map(|h| h.id), Some(1));
        assert_eq!(zone.name_count(), 2);
        // Two hosts with one name (never for long): the lower id answers, then the other.
        zone.insert(host(5, &["b"], &["10.0.0.5"]));
        assert_eq!(zone.named("b").map(|h| h.id), Some(2));
        assert_eq!(zone.remove(2).map(|h| h.id), Some(2));
        assert_eq!(zone.named("b").map(|h| h.id), Some(5));
        assert!(zone.remove(2).is_none());
        zone.remove(5);
        zone.remove(1);
        assert_eq!(zone, Zone::default(), "nothing left in the indexes");
    }

    #[test]
    fn names_and_aliases_resolve_on_their_network() {
        assert_eq!(
            rdata(ask("user", "10.89.0.3", "a.", RecordType::A)),
            ["10.89.0.2"]
        );
        assert_eq!(
            rdata(ask("user", "10.89.0.3", "WEB.", RecordType::A)),
            ["10.89.0.2"]
        );
        assert_eq!(
            rdata(ask("user", "10.89.0.2", "b.dns.podman.", RecordType::A)),
            ["10.89.0.3"]
        );
        assert_eq!(
            rdata(ask("user", "fd00:89::3", "a.", RecordType::AAAA)),
            ["fd00:89::2"]
        );
    }

    #[test]
    fn a_name_without_the_type_is_noerror_without_answer() {
        assert_eq!(
            ask("user", "10.89.0.2", "b.", RecordType::AAAA),
            Decision::Answer(vec![])
        );
        assert_eq!(
            ask("user", "10.89.0.2", "b.", RecordType::MX),
            Decision::Answer(vec![])
        );
    }

    #[test]
    fn names_of_other_networks_do_not_leak() {
        assert_eq!(
            ask("user", "10.89.0.2", "secret.", RecordType::A),
            Decision::NxDomain
        );
        assert_eq!(
            ask("user", "10.89.0.2", "secret.dns.podman.", RecordType::A),
            Decision::NxDomain
        );
        // A dotted name that is not N's is just a domain: the upstream knows nothing of it.
        assert_eq!(
            ask("user", "10.89.0.2", "db.corp.", RecordType::A),
            Decision::Forward
        );
        assert_eq!(
            rdata(ask("other", "10.90.0.9", "db.corp.", RecordType::A)),
            ["10.90.0.2"]
        );
    }

    #[test]
    fn a_source_outside_the_network_gets_no_container_data() {
        assert_eq!(
            ask("user", "10.90.0.2", "a.", RecordType::A),
            Decision::NxDomain
        );
        assert_eq!(
            ask("user", "203.0.113.1", "a.", RecordType::A),
            Decision::NxDomain
        );
        assert_eq!(
            ask(
                "user",
                "10.90.0.2",
                "2.0.89.10.in-addr.arpa.",
                RecordType::PTR
            ),
            Decision::NxDomain
        );
    }

    #[test]
    fn a_listener_of_a_network_gone_answers_nothing() {
        assert_eq!(
            ask("gone", "10.89.0.2", "a.", RecordType::A),
            Decision::NxDomain
        );
    }

    #[test]
    fn ptr_answers_own_addresses_and_hides_other_subnets() {
        assert_eq!(
            rdata(ask(
                "user",
                "10.89.0.3",
                "2.0.89.10.in-addr.arpa.",
                RecordType::PTR
            )),
            ["a.dns.podman.", "web.dns.podman."]
        );
        let v6 = Name::from(IpAddr::from_str("fd00:89::2").unwrap()).to_ascii();
        assert_eq!(
            rdata(ask("user", "10.89.0.3", &v6, RecordType::PTR)),
            ["a.dns.podman.", "web.dns.podman."]
        );
        // Another network's container, a free address of our own, the default network.
        for arpa in [
            "2.0.90.10.in-addr.arpa.",
            "77.0.89.10.in-addr.arpa.",
            "5.0.17.172.in-addr.arpa.",
        ] {
            assert_eq!(
                ask("user", "10.89.0.3", arpa, RecordType::PTR),
                Decision::NxDomain,
                "{arpa}"
            );
        }
        // A partial name inside a ctnet subnet is ours too; the internet's go upstream.
        assert_eq!(
            ask(
                "user",
                "10.89.0.3",
                "0.90.10.in-addr.arpa.",
                RecordType::PTR
            ),
            Decision::NxDomain
        );
        assert_eq!(
            ask(
                "user",
                "10.89.0.3",
                "77.113.0.203.in-addr.arpa.",
                RecordType::PTR
            ),
            Decision::Forward
        );
    }

    #[test]
    fn everything_else_goes_upstream() {
        assert_eq!(
            ask("user", "10.89.0.2", "wan.example.", RecordType::A),
            Decision::Forward
        );
        assert_eq!(
            ask("user", "10.89.0.2", "a.example.", RecordType::A),
            Decision::Forward
        );
        let chaos = Query::query(Name::from_str("version.bind.").unwrap(), RecordType::TXT);
        let mut chaos = chaos;
        chaos.set_query_class(DNSClass::CH);
        assert_eq!(
            table().decide("user", "10.89.0.2".parse().unwrap(), &chaos),
            Decision::Forward
        );
    }

    #[test]
    fn single_labels_are_never_forwarded() {
        assert_eq!(
            ask("user", "10.89.0.2", "nosuch.", RecordType::A),
            Decision::NxDomain
        );
        assert_eq!(
            ask("user", "10.89.0.2", "dns.podman.", RecordType::A),
            Decision::NxDomain
        );
    }

    #[test]
    fn replies_keep_the_id_and_question() {
        let mut request = Message::new();
        request.set_id(4242).set_recursion_desired(true);
        request.add_query(query("a.", RecordType::A));
        let ours = respond(&table(), "user", "10.89.0.3".parse().unwrap(), &request).unwrap();
        assert_eq!(ours.id(), 4242);
        assert_eq!(ours.response_code(), ResponseCode::NoError);
        assert!(ours.authoritative() && ours.recursion_available());
        assert_eq!(ours.queries(), request.queries());
        assert_eq!(ours.answers().len(), 1);

        let bytes = request.to_vec().unwrap();
        let failed = Message::from_vec(&servfail(&bytes).unwrap()).unwrap();
        assert_eq!(
            (failed.id(), failed.response_code()),
            (4242, ResponseCode::ServFail)
        );

        let mut update = request.clone();
        update.set_op_code(OpCode::Update);
        let ours = respond(&table(), "user", "10.89.0.3".parse().unwrap(), &update).unwrap();
        assert_eq!(ours.response_code(), ResponseCode::NotImp);
        let mut empty = Message::new();
        empty.set_id(1);
        let ours = respond(&table(), "user", "10.89.0.3".parse().unwrap(), &empty).unwrap();
        assert_eq!(ours.response_code(), ResponseCode::FormErr);
    }
}
