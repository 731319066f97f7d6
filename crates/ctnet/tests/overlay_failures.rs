//! Overlay networks when things fail, with real traffic and a real etcd (docs/overlay.md,
//! "Failure behaviour"): a host that dies and one whose agent comes back, etcd down for
//! longer than the lease TTL, a three-member etcd losing its leader, and bad input
//! refused with nothing changed on the host or in etcd.
//!
//! ```text
//!   h1 c1 10.50.a.2 ─ br/vx ══ VXLAN over ul0 ══ vx/br ─ c2 10.50.b.2 h2     (and h3)
//!   every host: ctnet-agent --etcd … --lease-ttl 4; per peer on vx-…: route, neigh, fdb
//! ```

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::hosts::{Cluster, Etcd, Host};
use support::{wait_until, Sandbox};

/// The lease TTL every agent here gets: short, so an expiry is seen quickly.
const TTL: Duration = Duration::from_secs(4);
/// The overlay's subnet (blocks of /24).
const SUBNET: &str = "10.50.0.0/16";
/// The port every container serves on.
const PORT: u16 = 80;

/// One host's part of ov1 as the test saw it after the join.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Member {
    /// The host's index (1 for h1).
    host: usize,
    /// The container's name on it (`cN`).
    container: String,
    /// The container's address (10.50.X.2).
    addr: String,
    /// The host's block (10.50.X.0/24), whose network address is its VTEP's.
    block: String,
    /// The host's underlay address.
    underlay: String,
}

impl Member {
    fn vtep(&self) -> &str {
        self.block.split('/').next().expect("a block is A.B.C.D/P")
    }

    /// The block's key in etcd.
    fn key(&self) -> String {
        format!("/ctnet/overlay/blocks/ov1/{}", self.block.replace('/', "_"))
    }

    fn target(&self) -> String {
        format!("{}:{PORT}", self.addr)
    }
}

/// `ctnet-agent` arguments for `host` on `etcd` (all its members' URLs).
fn agent_args(urls: &str, host: &Host) -> String {
    format!(
        "--etcd {urls} --advertise-addr {} --host-name {} --lease-ttl {}",
        host.addr(),
        host.name(),
        TTL.as_secs()
    )
}

/// Creates ov1 in etcd from h1.
fn create_ov1(cluster: &Cluster, urls: &str) {
    cluster.host(1).ok(&format!(
        "ctnet network create ov1 --driver overlay --subnet {SUBNET} --etcd {urls}"
    ));
}

/// Starts `host`'s agent, waits until it joined ov1, then attaches container `cN` and
/// serves TCP in it.
fn join(host: &Host, index: usize, urls: &str) -> Member {
    host.start_agent(&agent_args(urls, host));
    attach_container(host, index)
}

/// Waits (at most 10 s) until `host`'s agent has made ov1 on the host.
fn wait_joined(host: &Host) {
    let joined = wait_until(Duration::from_secs(10), || {
        host.run("ctnet network inspect ov1 >/dev/null 2>&1")
            .status
            .success()
    });
    assert!(
        joined,
        "{} did not join ov1 within 10 s; agent log:\n{}",
        host.name(),
        host.agent_log()
    );
}

/// Once `host` joined ov1: container `cN` attached to it, serving TCP.
fn attach_container(host: &Host, index: usize) -> Member {
    wait_joined(host);
    let container = format!("c{index}");
    host.ok(&format!(
        "ctnet netns add {container} && ctnet attach ov1 {container}"
    ));
    host.serve(Some(&container), &format!("--tcp {PORT}"));
    member_of(host, index, &container)
}

/// What `host`'s container on ov1 has: its address, and so the host's block.
fn member_of(host: &Host, index: usize, container: &str) -> Member {
    let out = host.in_container_ok(container, "ip -o -4 addr show dev eth0");
    let cidr = out
        .split_whitespace()
        .nth(3)
        .unwrap_or_else(|| panic!("no address on eth0 of {container}: {out}"));
    let addr = cidr.split('/').next().expect("A.B.C.D/P").to_string();
    assert!(cidr.ends_with("/24"), "{container} on ov1 has {cidr}");
    let octets: Vec<&str> = addr.split('.').collect();
    let block = format!("{}.{}.{}.0/24", octets[0], octets[1], octets[2]);
    Member {
        host: index,
        container: container.to_string(),
        addr,
        block,
        underlay: host.addr().to_string(),
    }
}

/// The overlay entries a host has on its VXLAN device: routes, neighbours, FDB.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entries {
    routes: String,
    neighbours: String,
    fdb: String,
}

/// Which of a peer's three entries a host has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PeerEntries {
    route: bool,
    neighbour: bool,
    fdb: bool,
}

impl PeerEntries {
    fn all(self) -> bool {
        self.route && self.neighbour && self.fdb
    }

    fn none(self) -> bool {
        !(self.route || self.neighbour || self.fdb)
    }
}

impl Entries {
    fn of(host: &Host) -> Entries {
        let out = host.ok(
            "vx=$(ip -o link show type vxlan | awk -F': ' '{print $2}' | cut -d@ -f1); \
             [ -n \"$vx\" ] || { echo 'no VXLAN device' >&2; exit 1; }; \
             ip route show dev $vx | sort; echo '##'; \
             ip neigh show dev $vx nud permanent | sort; echo '##'; \
             bridge fdb show dev $vx | sort",
        );
        let parts: Vec<&str> = out.split("##\n").collect();
        assert_eq!(parts.len(), 3, "{out}");
        Entries {
            routes: parts[0].to_string(),
            neighbours: parts[1].to_string(),
            fdb: parts[2].to_string(),
        }
    }

    fn of_peer(&self, peer: &Member) -> PeerEntries {
        let vtep = peer.vtep();
        PeerEntries {
            route: self
                .routes
                .lines()
                .any(|l| l.starts_with(&format!("{} via {vtep} ", peer.block))),
            neighbour: self
                .neighbours
                .lines()
                .any(|l| l.starts_with(&format!("{vtep} lladdr ")) && l.contains("PERMANENT")),
            fdb: self.fdb.lines().any(|l| {
                l.contains(&format!(" dst {} ", peer.underlay)) && l.contains("self permanent")
            }),
        }
    }
}

/// Waits (at most `within`) until `host` has all three entries of every one of `peers`.
fn wait_programmed(host: &Host, peers: &[&Member], within: Duration) {
    let mut last = None;
    let done = wait_until(within, || {
        let entries = Entries::of(host);
        let ok = peers.iter().all(|p| entries.of_peer(p).all());
        last = Some(entries);
        ok
    });
    assert!(
        done,
        "{} did not program {:?} within {within:?}: {last:?}\nagent log:\n{}",
        host.name(),
        peers.iter().map(|p| &p.block).collect::<Vec<_>>(),
        host.agent_log()
    );
}

/// Asserts that a probe from `from`'s container reaches `to`'s, and that the server saw
/// the container's own address (the overlay carries it; nothing masquerades).
fn assert_talks(cluster: &Cluster, from: &Member, to: &Member) {
    let seen = cluster
        .host(from.host)
        .reach(Some(&from.container), "tcp", &to.target());
    assert!(
        seen.starts_with(&format!("from {}:", from.addr)),
        "{} → {}: {seen}",
        from.container,
        to.container
    );
}

/// Probes between pairs of containers, again and again, until stopped: "they keep
/// talking throughout".
struct Traffic {
    probes: usize,
    failures: Vec<String>,
}

/// Runs `during` while a thread probes every pair in `pairs` (each way given) every
/// 200 ms; returns what `during` returned and the probes' tally.
fn with_traffic<T>(
    cluster: &Cluster,
    pairs: &[(&Member, &Member)],
    during: impl FnOnce() -> T,
) -> (T, Traffic) {
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let prober = s.spawn(|| {
            let mut traffic = Traffic {
                probes: 0,
                failures: Vec::new(),
            };
            while !stop.load(Ordering::SeqCst) {
                for (from, to) in pairs {
                    let got =
                        cluster
                            .host(from.host)
                            .probe(Some(&from.container), "tcp", &to.target());
                    traffic.probes += 1;
                    match got {
                        Ok(seen) if seen.starts_with(&format!("from {}:", from.addr)) => {}
                        other => traffic
                            .failures
                            .push(format!("{} → {}: {other:?}", from.container, to.container)),
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            traffic
        });
        // The flag must be set even when `during` panics, or the scope waits forever.
        struct Stop<'a>(&'a AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let result = {
            let _stop = Stop(&stop);
            during()
        };
        (result, prober.join().expect("the prober panicked"))
    })
}

fn assert_kept_talking(traffic: &Traffic, at_least: usize) {
    assert!(
        traffic.failures.is_empty(),
        "{} of {} probes failed: {:?}",
        traffic.failures.len(),
        traffic.probes,
        traffic.failures
    );
    assert!(
        traffic.probes >= at_least,
        "only {} probes ran, not {at_least}",
        traffic.probes
    );
}

/// Waits (at most `deadline` after `since`) until none of `hosts` has any entry of
/// `gone`; returns when the last one lost them, measured from `since`.
fn wait_removed(hosts: &[&Host], gone: &Member, since: Instant, deadline: Duration) -> Duration {
    let mut pending: BTreeSet<usize> = (0..hosts.len()).collect();
    let mut last = Vec::new();
    let mut elapsed = Duration::ZERO;
    while !pending.is_empty() && since.elapsed() < deadline {
        last.clear();
        for i in pending.clone() {
            let entries = Entries::of(hosts[i]);
            if entries.of_peer(gone).none() {
                pending.remove(&i);
                elapsed = since.elapsed();
            } else {
                last.push((hosts[i].name().to_string(), entries));
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        pending.is_empty(),
        "h{}'s entries (block {}) were still on {:?} {deadline:?} after it went: {last:?}",
        gone.host,
        gone.block,
        pending.iter().map(|i| hosts[*i].name()).collect::<Vec<_>>()
    );
    elapsed
}

/// Probes from `container` on `host` to `to` with short time-outs (each a new
/// connection: one sent before the route was there is not waited for) until one is
/// answered, at most `within` after `since`; Ok with when it was, or the last failure.
fn reachable_within(
    host: &Host,
    container: &str,
    to: &Member,
    since: Instant,
    within: Duration,
) -> Result<Duration, String> {
    let mut last = String::from("no probe ran");
    while since.elapsed() < within {
        let out = host.in_container(
            container,
            &format!("ctnet-probe tcp {} --timeout 0.3", to.target()),
        );
        if out.status.success() {
            return Ok(since.elapsed());
        }
        last = String::from_utf8_lossy(&out.stderr).trim().to_string();
    }
    Err(format!("{last} (after {:?})", since.elapsed()))
}

/// The agent log lines that say a peer was removed.
fn removed_lines(host: &Host) -> Vec<String> {
    host.agent_log()
        .lines()
        .filter(|l| l.contains(" removed"))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_dead_host_is_removed_within_the_ttl_and_a_restarted_agent_takes_its_block_back() {
    let sb = Sandbox::new();
    let cluster = Cluster::new(&sb, 3);
    let etcd = Etcd::start(&cluster, 1);
    let urls = etcd.urls();
    let members = three_on_ov1(&cluster, &urls);
    let (m1, m2, m3) = (&members[0], &members[1], &members[2]);
    let (h1, h2, h3) = (cluster.host(1), cluster.host(2), cluster.host(3));

    // The cluster subnet's unreachable route, deleted by hand, is back with h1's agent's
    // next sync.
    let cluster_route = || h1.ok("ip route show type unreachable 10.50.0.0/16");
    assert!(!cluster_route().trim().is_empty());
    h1.ok("ip route del unreachable 10.50.0.0/16");
    assert!(
        wait_until(Duration::from_secs(3), || !cluster_route()
            .trim()
            .is_empty()),
        "h1's agent did not put the unreachable route back:\n{}",
        h1.agent_log()
    );

    // h3 dies: its agent SIGKILLed (no goodbye), then the machine gone.
    let (lost, traffic) = with_traffic(&cluster, &[(m1, m2), (m2, m1)], || {
        h3.kill_agent();
        let killed = Instant::now();
        h3.remove();
        wait_removed(&[h1, h2], m3, killed, TTL + Duration::from_secs(2))
    });
    eprintln!("h3's entries gone from h1 and h2 {lost:?} after its agent was killed");
    // Not before its lease could have expired (its last keep-alive was up to a third
    // of the TTL before the kill): the entries went because the lease did.
    assert!(lost >= TTL / 2, "removed after {lost:?}");
    assert_kept_talking(&traffic, 10);
    assert!(!etcd.get_prefix("/ctnet/overlay/").contains(&m3.key()));
    for host in [h1, h2] {
        let removed = removed_lines(host);
        assert!(
            removed.len() == 1 && removed[0].contains("peer h3 (192.0.2.13)"),
            "{}: {removed:?}",
            host.name()
        );
        // h1 and h2 still have each other.
        let entries = Entries::of(host);
        let other = if host.name() == "h1" { m2 } else { m1 };
        assert!(entries.of_peer(other).all(), "{entries:?}");
    }

    // h2's agent dies but the machine lives on, its container with it: after its lease
    // expired h1 drops it; the agent started again takes the same block back.
    let key_before = etcd.get_prefix(&m2.key());
    assert!(key_before.contains("\"host\":\"h2\""), "{key_before}");
    h2.kill_agent();
    let killed = Instant::now();
    wait_removed(&[h1], m2, killed, TTL + Duration::from_secs(2));
    assert!(!etcd.get_prefix("/ctnet/overlay/").contains(&m2.key()));
    // With h2's entries gone, h1 refuses traffic to its block at once (the cluster
    // subnet's unreachable route), so none of it leaves by the default route to the wan.
    let leak = cluster.capture_underlay(&format!("dst net {}", m2.block));
    let refused = h1.probe(Some("c1"), "tcp", &m2.target());
    let leaked = leak.stop();
    let refusal = refused.expect_err("c1 reached c2 with h2's entries gone");
    assert!(
        refusal.contains("unreachable") || refusal.contains("No route to host"),
        "{refusal}"
    );
    assert!(
        leaked.trim().is_empty(),
        "traffic to h2's block left h1 while h2 was not a peer:\n{leaked}"
    );
    h2.start_agent(&agent_args(&urls, h2));
    let started = Instant::now();
    let back = reachable_within(h1, "c1", m2, started, Duration::from_secs(2));
    assert!(
        back.is_ok(),
        "c1 on h1 did not reach c2 on h2 within 2 s of h2's agent starting: {back:?}\n\
         h1's agent:\n{}\nh2's agent:\n{}",
        h1.agent_log(),
        h2.agent_log()
    );
    eprintln!("c2 reachable again {back:?} after h2's agent started");
    assert_talks(&cluster, m1, m2);
    assert_talks(&cluster, m2, m1);
    // The same block, in etcd and in the container.
    assert_eq!(member_of(h2, 2, "c2"), *m2);
    let key_after = etcd.get_prefix(&m2.key());
    assert!(
        key_after.contains(&format!("\"block\":\"{}\"", m2.block))
            && key_after.contains("\"host\":\"h2\""),
        "{key_after}"
    );
    let blocks_now = etcd.ctl_ok("get --prefix --keys-only /ctnet/overlay/blocks/ov1/");
    assert_eq!(
        blocks_now.split_whitespace().collect::<BTreeSet<_>>(),
        [m1.key(), m2.key()].iter().map(String::as_str).collect(),
    );
}

/// Three hosts on ov1, each with a container serving, every one programmed with the
/// others and talking to them.
fn three_on_ov1(cluster: &Cluster, urls: &str) -> Vec<Member> {
    create_ov1(cluster, urls);
    let members: Vec<Member> = (1..=3).map(|i| join(cluster.host(i), i, urls)).collect();
    let blocks: BTreeSet<&String> = members.iter().map(|m| &m.block).collect();
    assert_eq!(blocks.len(), 3, "{members:?}");
    for (i, member) in members.iter().enumerate() {
        let others: Vec<&Member> = members.iter().filter(|m| *m != member).collect();
        wait_programmed(cluster.host(i + 1), &others, Duration::from_secs(5));
    }
    for from in &members {
        for to in members.iter().filter(|m| *m != from) {
            assert_talks(cluster, from, to);
        }
    }
    members
}

#[test]
fn etcd_down_for_longer_than_the_ttl_changes_nothing_and_a_host_lost_meanwhile_goes_after() {
    let sb = Sandbox::new();
    let cluster = Cluster::new(&sb, 3);
    let mut etcd = Etcd::start(&cluster, 1);
    let urls = etcd.urls();
    let members = three_on_ov1(&cluster, &urls);
    let (m1, m2, m3) = (&members[0], &members[1], &members[2]);
    let (h1, h2, h3) = (cluster.host(1), cluster.host(2), cluster.host(3));
    let hosts = [h1, h2, h3];
    let before: Vec<Entries> = hosts.iter().map(|h| Entries::of(h)).collect();
    let blocks_before = etcd.get_prefix("/ctnet/overlay/blocks/");

    let pairs = [(m1, m2), (m2, m1), (m1, m3), (m3, m2)];
    let ((), outage) = with_traffic(&cluster, &pairs, || {
        etcd.stop();
        std::thread::sleep(TTL + Duration::from_secs(3));
        // The agent says why its syncs fail.
        let status = h1.ok("ctnet agent status");
        assert!(
            status.contains("etcd at http://192.0.2.101:2379") && status.contains("unreachable"),
            "{status}"
        );
    });
    assert_kept_talking(&outage, 20);
    for (host, was) in hosts.iter().zip(&before) {
        assert_eq!(
            &Entries::of(host),
            was,
            "{}'s entries changed while etcd was down",
            host.name()
        );
        assert!(removed_lines(host).is_empty(), "{:?}", removed_lines(host));
    }

    // h3 dies while etcd is still down; h1 and h2 keep talking through etcd's return and
    // h3's expiry, a TTL after etcd's leader came back.
    let ((), after) = with_traffic(&cluster, &[(m1, m2), (m2, m1)], || {
        h3.remove();
        etcd.restart();
        let back = Instant::now();
        let lost = wait_removed(&[h1, h2], m3, back, TTL + Duration::from_secs(4));
        eprintln!("h3's entries gone {lost:?} after etcd returned");
    });
    assert_kept_talking(&after, 10);
    for (host, peer) in [(h1, m2), (h2, m1)] {
        assert!(Entries::of(host).of_peer(peer).all(), "{}", host.name());
        let removed = removed_lines(host);
        assert!(
            removed.len() == 1 && removed[0].contains("peer h3 (192.0.2.13)"),
            "{}: {removed:?}",
            host.name()
        );
    }
    // The survivors kept their blocks through it (their keys are as they were but h3's).
    let blocks_now = etcd.get_prefix("/ctnet/overlay/blocks/");
    for m in [m1, m2] {
        assert!(
            blocks_now.contains(&m.key()) && blocks_before.contains(&m.key()),
            "{blocks_now}"
        );
    }
    assert!(!blocks_now.contains(&m3.key()), "{blocks_now}");
    assert_talks(&cluster, m1, m2);
    assert_talks(&cluster, m2, m1);
}

#[test]
fn an_etcd_member_lost_changes_nothing_for_the_hosts_and_a_new_host_still_joins() {
    let sb = Sandbox::new();
    let cluster = Cluster::new(&sb, 3);
    let mut etcd = Etcd::start(&cluster, 3);
    let urls = etcd.urls();
    create_ov1(&cluster, &urls);
    let (h1, h2, h3) = (cluster.host(1), cluster.host(2), cluster.host(3));
    let m1 = join(h1, 1, &urls);
    let m2 = join(h2, 2, &urls);
    wait_programmed(h1, &[&m2], Duration::from_secs(5));
    wait_programmed(h2, &[&m1], Duration::from_secs(5));
    let before = [Entries::of(h1), Entries::of(h2)];

    // The leader made e1, the first URL every agent tries: its loss is both an election
    // and a fail-over for the agents' clients.
    let leader = make_e1_leader(&etcd);
    let ((), traffic) = with_traffic(&cluster, &[(&m1, &m2), (&m2, &m1)], || {
        etcd.kill_member(leader);
        let elected = etcd.wait_leader();
        assert_ne!(elected, leader);
        // Longer than a TTL: a lease nobody kept alive would have expired.
        std::thread::sleep(TTL + Duration::from_secs(2));
    });
    assert_kept_talking(&traffic, 10);
    for (host, was) in [h1, h2].iter().zip(&before) {
        assert_eq!(&Entries::of(host), was, "{}", host.name());
        assert!(
            removed_lines(host).is_empty(),
            "{}: {:?}",
            host.name(),
            removed_lines(host)
        );
    }
    let blocks = etcd.ctl_ok("get --prefix --keys-only /ctnet/overlay/blocks/ov1/");
    assert_eq!(
        blocks.split_whitespace().collect::<BTreeSet<_>>(),
        [m1.key(), m2.key()].iter().map(String::as_str).collect(),
        "leader e{leader} killed"
    );

    // A host joining now, given every URL (the dead member's too), is programmed
    // everywhere and talks both ways.
    let m3 = join(h3, 3, &urls);
    wait_programmed(h1, &[&m2, &m3], Duration::from_secs(5));
    wait_programmed(h2, &[&m1, &m3], Duration::from_secs(5));
    wait_programmed(h3, &[&m1, &m2], Duration::from_secs(5));
    for (from, to) in [(&m1, &m3), (&m3, &m1), (&m2, &m3), (&m3, &m2), (&m1, &m2)] {
        assert_talks(&cluster, from, to);
    }
}

/// Moves etcd's leadership to e1 (the first URL of `Etcd::urls`); returns 1.
fn make_e1_leader(etcd: &Etcd) -> usize {
    let was = etcd.wait_leader();
    if was != 1 {
        let list: serde_json::Value =
            serde_json::from_str(&etcd.ctl_ok("member list -w json")).expect("member list");
        let id = list["members"]
            .as_array()
            .expect("members")
            .iter()
            .find(|m| m["name"] == "e1")
            .and_then(|m| m["ID"].as_u64())
            .unwrap_or_else(|| panic!("no member e1: {list}"));
        etcd.ctl_ok(&format!("move-leader {id:x}"));
    }
    let leader = etcd.wait_leader();
    assert_eq!(leader, 1, "leadership did not move to e1 from e{was}");
    eprintln!("e{was} led; e1 leads now");
    leader
}

/// What a host has that a refused command must leave alone: ctnet's networks and
/// containers, links (without flags and carrier, which follow timing), addresses,
/// routes, ctnet's firewall (stateless listing) and its container namespaces.
fn local_state(host: &Host) -> String {
    host.ok(
        "links='s/^[0-9]+: //; s/<[^>]*>//; s/ qlen.*//; s/state [A-Z]+//'; \
         echo '## networks'; ctnet network ls --format json; \
         echo '## containers'; ctnet ls --format json; \
         echo '## links'; ip -o link show | sed -E \"$links\"; \
         echo '## addresses'; ip -o -4 addr show; \
         echo '## routes'; ip route show table all | grep -v '^local\\|^broadcast' | sed 's/ linkdown//'; \
         echo '## neighbours'; ip neigh show nud permanent; \
         echo '## fdb'; bridge fdb show | grep ' dst '; \
         echo '## nft'; nft -s list ruleset; \
         echo '## netns'; ls \"$CTNET_NETNS_DIR\"",
    )
}

/// Runs `script` on `host`, which must fail within `within` with a message holding every
/// one of `pieces`, leaving the host and etcd as they were. Returns the message.
fn refused_on(host: &Host, etcd: &Etcd, script: &str, pieces: &[&str], within: Duration) -> String {
    let local = local_state(host);
    let stored = etcd.get_prefix("/ctnet/");
    let started = Instant::now();
    let err = host.fails(script);
    let took = started.elapsed();
    assert!(took < within, "`{script}` took {took:?}: {err}");
    for piece in pieces {
        assert!(err.contains(piece), "`{script}`: {err:?} lacks {piece:?}");
    }
    assert_eq!(
        local_state(host),
        local,
        "`{script}` changed {}",
        host.name()
    );
    assert_eq!(
        etcd.get_prefix("/ctnet/"),
        stored,
        "`{script}` changed etcd"
    );
    err
}

/// A one-shot's refusal: at most a few seconds.
const QUICK: Duration = Duration::from_secs(5);

#[test]
fn bad_input_is_refused_naming_the_cause_and_the_fix_with_nothing_changed() {
    let sb = Sandbox::new();
    let cluster = Cluster::new(&sb, 2);
    let etcd = Etcd::start(&cluster, 1);
    let urls = etcd.urls();
    let (h1, h2) = (cluster.host(1), cluster.host(2));
    h1.ok(&format!(
        "ctnet network create ov1 --driver overlay --subnet {SUBNET} --vni 7 --etcd {urls}"
    ));
    let m1 = join(h1, 1, &urls);
    h2.start_agent(&agent_args(&urls, h2));
    wait_joined(h2);
    // h1's lease says it has a container (`network rm` reads that).
    let counted = wait_until(Duration::from_secs(5), || {
        etcd.get_prefix(&m1.key()).contains("\"containers\":1")
    });
    assert!(counted, "{}", etcd.get_prefix("/ctnet/"));

    let create = |args: &str| format!("ctnet network create ov2 --driver overlay {args}");
    let with_etcd = |args: &str| create(&format!("{args} --etcd {urls}"));
    // Blocks that do not fit the subnet.
    refused_on(
        h1,
        &etcd,
        &with_etcd("--subnet 10.60.0.0/30"),
        &["ov2", "10.60.0.0/30", "too small", "/24", "--host-prefix"],
        QUICK,
    );
    for (args, subnet) in [
        ("--subnet 10.60.0.0/24 --host-prefix 24", "/24"),
        ("--subnet 10.60.0.0/16 --host-prefix 16", "/16"),
    ] {
        refused_on(
            h1,
            &etcd,
            &with_etcd(args),
            &["ov2", subnet, "one host's block", "--host-prefix"],
            QUICK,
        );
    }
    // VNIs out of range, and taken.
    for vni in ["0", "16777216"] {
        refused_on(
            h1,
            &etcd,
            &with_etcd(&format!("--subnet 10.60.0.0/16 --vni {vni}")),
            &[&format!("VNI {vni}"), "out of range", "1 to 16777215"],
            QUICK,
        );
    }
    refused_on(
        h1,
        &etcd,
        &with_etcd("--subnet 10.60.0.0/16 --vni 7"),
        &["ov2", "VNI 7", "in use", "\"ov1\"", "another --vni"],
        QUICK,
    );
    // Options that mean nothing for an overlay.
    for (flag, named) in [
        ("--gateway 10.60.0.1", "--gateway"),
        ("--internal", "--internal"),
        ("--ipv6", "--ipv6"),
    ] {
        refused_on(
            h1,
            &etcd,
            &with_etcd(&format!("--subnet 10.60.0.0/16 {flag}")),
            &["ov2", named, "not supported on overlay", "drop"],
            QUICK,
        );
    }
    // etcd URLs: malformed, TLS, and nobody there (in bounded time).
    refused_on(
        h1,
        &etcd,
        &create("--subnet 10.60.0.0/16 --etcd notaurl"),
        &["notaurl", "no scheme", "http://notaurl"],
        QUICK,
    );
    refused_on(
        h1,
        &etcd,
        &create("--subnet 10.60.0.0/16 --etcd https://192.0.2.101:2379"),
        &[
            "https://192.0.2.101:2379",
            "TLS is not supported",
            "use http://",
        ],
        QUICK,
    );
    let err = refused_on(
        h1,
        &etcd,
        &create("--subnet 10.60.0.0/16 --etcd http://192.0.2.250:2379"),
        &["etcd at http://192.0.2.250:2379", "check that etcd runs"],
        Duration::from_secs(10),
    );
    eprintln!("unreachable etcd: {err}");
    assert_eq!(err.matches("check that etcd runs").count(), 1, "{err}");
    assert_eq!(err.matches("192.0.2.250").count(), 2, "{err}");

    // `network rm` while a host has containers on it, from that host and from another.
    refused_on(
        h1,
        &etcd,
        &format!("ctnet network rm ov1 --etcd {urls}"),
        &["ov1", "1 container(s) on this host", "detach"],
        QUICK,
    );
    refused_on(
        h2,
        &etcd,
        &format!("ctnet network rm ov1 --etcd {urls}"),
        &["ov1", "h1 (192.0.2.11): 1 container(s)", "ctnet detach"],
        QUICK,
    );

    // h2 joined, but its agent is dead (and, a TTL later, its lease and h1's entries
    // for it gone, so nothing moves underneath): an attach is refused.
    h2.kill_agent();
    let blocks = "/ctnet/overlay/blocks/ov1/";
    let expired = wait_until(TTL + Duration::from_secs(3), || {
        !etcd.get_prefix(blocks).contains("\"host\":\"h2\"")
    });
    assert!(expired, "{}", etcd.get_prefix(blocks));
    let h1_settled = wait_until(Duration::from_secs(3), || {
        Entries::of(h1)
            .fdb
            .lines()
            .all(|l| !l.contains("dst 192.0.2.12 "))
    });
    assert!(h1_settled, "{:?}", Entries::of(h1));
    h2.ok("ctnet netns add c9");
    refused_on(
        h2,
        &etcd,
        "ctnet attach ov1 c9",
        &[
            "ov1",
            "no ctnet-agent runs on this host",
            "ctnet-agent --etcd",
        ],
        QUICK,
    );
    // An agent told an address that is not this host's does not start.
    let err = refused_on(
        h2,
        &etcd,
        &format!("timeout 10 ctnet-agent --etcd {urls} --advertise-addr 192.0.2.99"),
        &["192.0.2.99", "not an address of this host", "192.0.2.12"],
        QUICK,
    );
    assert!(!err.contains("192.0.2.11"), "{err}");
    h2.ok("ctnet netns rm c9");

    // With h2's agent back and every container detached, `network rm` removes ov1 from
    // etcd, and each agent its host's part.
    h2.start_agent(&agent_args(&urls, h2));
    let m2 = attach_container(h2, 2);
    wait_programmed(h1, &[&m2], Duration::from_secs(5));
    assert_talks(&cluster, &m1, &m2);
    h1.ok("ctnet detach ov1 c1");
    h2.ok("ctnet detach ov1 c2");
    h2.ok(&format!("ctnet network rm ov1 --etcd {urls}"));
    let left = etcd.get_prefix("/ctnet/overlay/");
    assert!(!left.contains("ov1"), "{left}");
    for host in [h1, h2] {
        let mut links = String::new();
        let gone = wait_until(Duration::from_secs(5), || {
            links = host.ok("ip -o link show");
            !links.contains("vx-") && !links.contains("br-")
        });
        assert!(gone, "{} kept its part of ov1: {links}", host.name());
        let routes = host.ok("ip route show type unreachable");
        assert!(routes.trim().is_empty(), "{}: {routes}", host.name());
        let nets = host.ok("ctnet network ls --format json");
        assert!(!nets.contains("ov1"), "{nets}");
    }
    // And nothing came back in etcd since (an agent's sync racing the removal).
    std::thread::sleep(Duration::from_secs(2));
    let left = etcd.get_prefix("/ctnet/overlay/");
    assert!(left.is_empty(), "{left}");
}
