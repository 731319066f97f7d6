//! Port publishing with real traffic: every path a published port must serve, HOST_IP
//! binding, loopback never reachable from outside, 1,000 ports costing no rules; and what
//! is refused: a HOST_IP the host does not have (or multicast, broadcast), a port a host
//! program listens on (which keeps its traffic), more ports than the cap.

mod support;

use support::{cni_call, refused, Sandbox, MAKE_DEFAULT_NETWORK, UPLINK_HOST, UPLINK_WAN};

fn from(addr: &str) -> String {
    format!("from {addr}:")
}

/// `web` on the default network publishes TCP 8080->80, UDP 5353->53 and the range
/// 9000-9001 -> 90-91, and serves all of them.
fn published_world() -> Sandbox {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.ok("ctnet netns add web && ctnet attach bridge web -p 8080:80 -p 5353:53/udp -p 9000-9001:90-91");
    sb.serve(Some("web"), "--tcp 80 --udp 53 --tcp 90 --tcp 91");
    sb
}

#[test]
fn a_published_port_answers_on_every_path() {
    let mut sb = published_world();
    let pub_tcp = format!("{UPLINK_HOST}:8080");
    // wan -> host uplink: the container sees the real client.
    assert!(sb
        .reach(Some("wan"), "tcp", &pub_tcp)
        .starts_with(&from(UPLINK_WAN)));
    let udp = sb.reach(Some("wan"), "udp", &format!("{UPLINK_HOST}:5353"));
    assert!(udp.starts_with(&from(UPLINK_WAN)), "{udp}");
    // A range maps port to port.
    for (host, _container) in [(9000, 90), (9001, 91)] {
        sb.reach(Some("wan"), "tcp", &format!("{UPLINK_HOST}:{host}"));
    }
    // The host itself, to its own address and to 127.0.0.1.
    assert!(sb
        .reach(None, "tcp", &pub_tcp)
        .starts_with(&from(UPLINK_HOST)));
    sb.reach(None, "tcp", "127.0.0.1:8080");
    sb.reach(None, "udp", "127.0.0.1:5353");
    // Hairpin: the container through the host's addresses reaches itself.
    sb.reach(Some("web"), "tcp", &pub_tcp);
    sb.reach(Some("web"), "tcp", "172.17.0.1:8080");
    sb.reach(Some("web"), "udp", &format!("{UPLINK_HOST}:5353"));
    // A neighbour on the same network, and a container on another network.
    sb.ok("ctnet netns add same && ctnet attach bridge same && \
           ctnet network create blue --subnet 10.5.0.0/24 && ctnet netns add far && ctnet attach blue far");
    sb.reach(Some("same"), "tcp", &pub_tcp);
    sb.reach(Some("far"), "tcp", &pub_tcp);
    sb.reach(Some("far"), "udp", &format!("{UPLINK_HOST}:5353"));
    // An unpublished port of the same container is not reachable through the host.
    sb.serve(Some("web"), "--tcp 81");
    assert!(sb
        .probe(Some("wan"), "tcp", &format!("{UPLINK_HOST}:81"))
        .is_err());
}

#[test]
fn host_ip_limits_a_port_and_loopback_never_leaves_the_host() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.ok(&format!(
        "ctnet netns add web && ctnet attach bridge web -p 127.0.0.1:9090:90 -p {UPLINK_HOST}:7070:70"
    ));
    sb.serve(Some("web"), "--tcp 90 --tcp 70");
    sb.reach(None, "tcp", "127.0.0.1:9090");
    assert!(sb
        .probe(None, "tcp", &format!("{UPLINK_HOST}:9090"))
        .is_err());
    sb.reach(Some("wan"), "tcp", &format!("{UPLINK_HOST}:7070"));
    assert!(sb.probe(None, "tcp", "127.0.0.1:7070").is_err());

    // A wan host routes 127.0.0.1 to us, ahead of its own loopback, and would accept
    // answers from 127.0.0.1: nothing answers.
    sb.ok(&format!(
        "ip netns exec wan sh -c 'echo 1 > /proc/sys/net/ipv4/conf/eth0/route_localnet && ip rule del pref 0 && ip rule add pref 100 lookup local && \
         ip route add 127.0.0.1/32 via {UPLINK_HOST} table 100 && ip rule add pref 10 to 127.0.0.1 lookup 100'"
    ));
    assert!(sb.probe(Some("wan"), "tcp", "127.0.0.1:9090").is_err());

    // The same from a container, whose bridge has route_localnet set for publishing: the
    // guard chain is what stops it, both for the published port and for a host service
    // that listens on loopback only.
    sb.serve(None, "--bind 127.0.0.1 --tcp 7777");
    sb.ok("ctnet netns add nosy && ctnet attach bridge nosy && ip netns exec nosy sh -c \
           'echo 1 > /proc/sys/net/ipv4/conf/eth0/route_localnet && ip rule del pref 0 && ip rule add pref 100 lookup local && \
            ip route add 127.0.0.1/32 via 172.17.0.1 table 100 && ip rule add pref 10 to 127.0.0.1 lookup 100'");
    assert!(sb.probe(Some("nosy"), "tcp", "127.0.0.1:9090").is_err());
    assert!(sb.probe(Some("nosy"), "tcp", "127.0.0.1:7777").is_err());
    // Prove the probe would get through without the guard, then that gc restores it.
    sb.ok("nft flush chain inet ctnet guard");
    sb.reach(Some("nosy"), "tcp", "127.0.0.1:7777");
    sb.ok("ctnet gc");
    assert!(sb.probe(Some("nosy"), "tcp", "127.0.0.1:7777").is_err());
}

#[test]
fn an_automatic_port_is_chosen_and_reported() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.ok("ctnet netns add web");
    let out = sb.ok("ctnet attach bridge web -p 80");
    let published = out
        .lines()
        .find_map(|l| l.strip_prefix("published 0.0.0.0:"))
        .unwrap_or_else(|| panic!("no published port reported: {out}"));
    let port: u16 = published.split("->").next().unwrap().parse().unwrap();
    assert!(port >= 1024, "{out}");
    sb.serve(Some("web"), "--tcp 80");
    sb.reach(Some("wan"), "tcp", &format!("{UPLINK_HOST}:{port}"));
    let listed = sb.ok("ctnet ls");
    assert!(
        listed.contains(&format!("0.0.0.0:{port}->80/tcp")),
        "{listed}"
    );
}

#[test]
fn ctnet_run_publishes_and_withdraws() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.ok(MAKE_DEFAULT_NETWORK);
    let before = sb.snapshot();
    let mut child = sb.start_until(
        "exec ctnet run --name svc -p 8080:80 -- sh -c 'echo started; exec ctnet-probe serve --tcp 80 --max-seconds 60 >/dev/null'",
        "started",
    );
    // The server prints "ready" once it listens; give it a moment by retrying.
    let ok = (0..20).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        sb.probe(Some("wan"), "tcp", &format!("{UPLINK_HOST}:8080"))
            .is_ok()
    });
    assert!(ok, "the published port never answered");
    sb.ok(&format!("kill -TERM {}", child.id()));
    child.wait().unwrap();
    let rules = sb.ok("nft list map inet ctnet publish_any");
    assert!(!rules.contains("8080"), "{rules}");
    assert_eq!(sb.snapshot(), before);
    assert!(sb
        .probe(Some("wan"), "tcp", &format!("{UPLINK_HOST}:8080"))
        .is_err());
}

/// Rules in ctnet's table (not elements), from nft's JSON listing.
fn rule_count(sb: &Sandbox) -> usize {
    let json: serde_json::Value =
        serde_json::from_str(&sb.ok("nft -j list table inet ctnet")).unwrap();
    json["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o.get("rule").is_some())
        .count()
}

#[test]
fn a_thousand_published_ports_add_elements_not_rules() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.ok("ctnet netns add one && ctnet attach bridge one -p 8080:80");
    let with_one = rule_count(&sb);
    sb.ok("ctnet netns add many && ctnet attach bridge many -p 20000-20999:20000-20999");
    assert_eq!(rule_count(&sb), with_one, "publishing added rules");
    let map = sb.ok("nft list map inet ctnet publish_any");
    assert_eq!(map.matches(" : 172.17.0.3 . ").count(), 1000, "{map}");
    sb.serve(Some("many"), "--tcp 20500 --tcp 20999");
    sb.reach(Some("wan"), "tcp", &format!("{UPLINK_HOST}:20500"));
    sb.reach(Some("wan"), "tcp", &format!("{UPLINK_HOST}:20999"));
    // Detach takes all 1,000 out again.
    sb.ok("ctnet detach bridge many");
    let map = sb.ok("nft list map inet ctnet publish_any");
    assert!(!map.contains("172.17.0.3"), "{map}");
    assert_eq!(rule_count(&sb), with_one);
}

#[test]
fn inspect_and_ls_show_published_ports() {
    let sb = Sandbox::new();
    sb.ok("ctnet netns add web && ctnet attach bridge web -p 127.0.0.1:8080:80 -p 5353:53/udp");
    let table = sb.ok("ctnet network inspect bridge");
    assert!(
        table.contains("published 127.0.0.1:8080->80/tcp"),
        "{table}"
    );
    assert!(table.contains("published 0.0.0.0:5353->53/udp"), "{table}");
    let json: serde_json::Value =
        serde_json::from_str(&sb.ok("ctnet network inspect bridge --format json")).unwrap();
    let ports = &json["containers"][0]["ports"];
    assert_eq!(ports[0]["host_ip"], "127.0.0.1");
    assert_eq!(ports[0]["host_port"], 8080);
    assert_eq!(ports[0]["protocol"], "tcp");
    let ls = sb.ok("ctnet ls");
    assert!(
        ls.contains("127.0.0.1:8080->80/tcp,0.0.0.0:5353->53/udp"),
        "{ls}"
    );
}

/// The host port `ctnet attach` reported for container port `container`.
fn reported_port(out: &str, container: u16) -> u16 {
    out.lines()
        .find_map(|l| {
            let rest = l.strip_prefix("published 0.0.0.0:")?;
            let (host, to) = rest.split_once("->")?;
            to.starts_with(&format!("{container}/"))
                .then(|| host.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no published port for {container} reported: {out}"))
}

#[test]
fn a_host_ip_the_host_does_not_have_is_refused_with_nothing_changed() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.ok(&format!("ctnet netns add web && {MAKE_DEFAULT_NETWORK}"));
    refused(
        &sb,
        "ctnet attach bridge web -p 198.51.100.99:8480:80",
        &[
            "198.51.100.99",
            "not an address of this host",
            UPLINK_HOST,
            "leave HOST_IP out",
        ],
    );
    refused(
        &sb,
        "ctnet attach bridge web -p [2001:db8:1::99]:8480:80",
        &["2001:db8:1::99", "not an address of this host"],
    );
    refused(
        &sb,
        "ctnet attach bridge web -p 224.0.0.251:5353:53/udp",
        &["224.0.0.251", "multicast"],
    );
    refused(
        &sb,
        "ctnet attach bridge web -p 255.255.255.255:80:80",
        &["255.255.255.255", "broadcast"],
    );
    // The host's own addresses are fine, loopback included.
    sb.ok(&format!(
        "ctnet attach bridge web -p {UPLINK_HOST}:8480:80 -p 127.0.0.1:8481:80"
    ));
}

#[test]
fn a_port_a_host_program_listens_on_is_refused_and_the_program_keeps_its_traffic() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.serve(None, "--tcp 8500 --udp 5300");
    sb.serve(None, "--bind 127.0.0.1 --tcp 8600");
    sb.ok(&format!("ctnet netns add web && {MAKE_DEFAULT_NETWORK}"));
    for (cmd, port) in [
        ("ctnet attach bridge web -p 8500:80", "8500/tcp"),
        ("ctnet attach bridge web -p 8490-8510:80-100", "8500/tcp"),
        ("ctnet attach bridge web -p 5300:53/udp", "5300/udp"),
        ("ctnet attach bridge web -p 127.0.0.1:8600:80", "8600/tcp"),
        ("ctnet attach bridge web -p 8600:80", "8600/tcp"),
    ] {
        refused(
            &sb,
            cmd,
            &[
                port,
                "in use on this host",
                "ctnet-probe",
                "pid ",
                "socket inode",
            ],
        );
    }
    // The program still gets the wan's traffic (with the port published it would go to
    // the container, where nothing listens).
    sb.reach(Some("wan"), "tcp", &format!("{UPLINK_HOST}:8500"));
    sb.reach(Some("wan"), "udp", &format!("{UPLINK_HOST}:5300"));
    // Another address than the program's, and the other protocol, are free.
    sb.ok(&format!(
        "ctnet attach bridge web -p {UPLINK_HOST}:8600:80 -p 8500:80/udp"
    ));
    sb.serve(Some("web"), "--tcp 80");
    sb.reach(Some("wan"), "tcp", &format!("{UPLINK_HOST}:8600"));
    sb.reach(None, "tcp", "127.0.0.1:8600");
}

#[test]
fn automatic_ports_skip_ports_host_programs_listen_on() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.ok("echo '40000 40002' > /proc/sys/net/ipv4/ip_local_port_range");
    sb.serve(None, "--tcp 40000 --udp 40001");
    sb.ok("ctnet netns add web");
    let out = sb.ok("ctnet attach bridge web -p 80 -p 53/udp");
    assert_eq!(reported_port(&out, 80), 40001, "{out}");
    assert_eq!(reported_port(&out, 53), 40000, "{out}");
    sb.reach(Some("wan"), "tcp", &format!("{UPLINK_HOST}:40000"));
    sb.serve(Some("web"), "--tcp 80");
    sb.reach(Some("wan"), "tcp", &format!("{UPLINK_HOST}:40001"));
}

#[test]
fn a_large_automatic_range_is_published_and_one_over_the_cap_refused() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.ok("ctnet netns add big && ctnet netns add huge");
    sb.ok("ctnet attach bridge big -p 1-2000");
    let map = sb.ok("nft list map inet ctnet publish_any");
    assert_eq!(map.matches(" : 172.17.0.2 . ").count(), 2000);
    let ls = sb.ok("ctnet ls --format json");
    let json: serde_json::Value = serde_json::from_str(&ls).unwrap();
    let ports = json[0]["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 2000, "{ls}");
    let port = |i: usize| ports[i]["host_port"].as_u64().unwrap();
    sb.serve(Some("big"), "--tcp 1999");
    let host_1999 = (0..2000)
        .find(|i| ports[*i]["container_port"] == 1999)
        .map(port)
        .unwrap();
    sb.reach(Some("wan"), "tcp", &format!("{UPLINK_HOST}:{host_1999}"));
    refused(
        &sb,
        "ctnet attach bridge huge -p 1-4097",
        &["4097 ports", "at most 4096", "--network host"],
    );
    refused(
        &sb,
        "ctnet attach bridge huge -p 1-4000 -p 5000-5100:5000-5100/udp",
        &["4101 ports", "at most 4096"],
    );
}

#[test]
fn cni_port_mappings_get_the_same_refusals() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.serve(None, "--tcp 8500");
    sb.ok("ctnet netns add c");
    let conf = |host_ip: &str, port: u16| {
        serde_json::json!({
            "cniVersion": "1.0.0", "name": "cninet", "type": "ctnet", "bridge": "cni-ctnet0",
            "ipam": { "type": "ctnet", "subnet": "10.88.0.0/16" },
            "runtimeConfig": { "portMappings": [
                { "hostPort": port, "containerPort": 80, "protocol": "tcp", "hostIP": host_ip }
            ] }
        })
    };
    // The network exists (a refused ADD that makes it leaves it: a front end's matter).
    sb.ok("ctnet netns add c0");
    let (ok, out) = cni_call(&sb, "ctnet", "ADD", "c0", "/run/netns/c0", &conf("", 9000));
    assert!(ok, "{out}");
    let before = sb.snapshot();
    for (host_ip, port, code, piece) in [
        ("198.51.100.99", 8480, 7, "not an address of this host"),
        ("224.0.0.1", 8480, 7, "multicast"),
        ("", 8500, 101, "ctnet-probe"),
    ] {
        let (ok, err) = cni_call(
            &sb,
            "ctnet",
            "ADD",
            "c1",
            "/run/netns/c",
            &conf(host_ip, port),
        );
        assert!(!ok, "{err}");
        assert_eq!(err["code"], code, "{err}");
        assert!(err.to_string().contains(piece), "{err}");
        assert_eq!(
            sb.snapshot(),
            before,
            "a refused ADD changed something: {err}"
        );
    }
    sb.reach(Some("wan"), "tcp", &format!("{UPLINK_HOST}:8500"));
}

/// A withdrawn port's map element is expired, not deleted (see datapath/nft): the port
/// must stop answering once the detach returns, and the same host port must go to
/// another container straight away, even while the old element's clock tick has not
/// passed (then the publish waits the tick and tries again).
#[test]
fn a_withdrawn_port_stops_at_once_and_can_go_straight_to_another_container() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    let target = format!("{UPLINK_HOST}:8080");
    // `a` answers on 80 only and `b` on 81 only, so an answer proves where the port went.
    sb.ok("ctnet netns add a && ctnet netns add b && ctnet attach bridge a -p 8080:80");
    sb.serve(Some("a"), "--tcp 80");
    sb.serve(Some("b"), "--tcp 81");
    sb.reach(Some("wan"), "tcp", &target);
    for _ in 0..10 {
        sb.ok("ctnet detach bridge a && ctnet attach bridge b -p 8080:81");
        sb.reach(Some("wan"), "tcp", &target);
        sb.ok("ctnet detach bridge b && ctnet attach bridge a -p 8080:80");
        sb.reach(Some("wan"), "tcp", &target);
    }
    sb.ok("ctnet detach bridge a");
    let gone = sb.probe(Some("wan"), "tcp", &target);
    assert!(
        gone.is_err(),
        "port 8080 still answers after the detach: {gone:?}"
    );
    let map = sb.ok("nft list map inet ctnet publish_any");
    assert!(!map.contains("8080"), "{map}");
}
