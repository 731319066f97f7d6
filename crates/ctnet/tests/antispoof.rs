//! Anti-spoofing (issue 17), with real frames: a container forges its source address, its
//! MAC, ARP replies and IPv6 neighbour and router advertisements with scapy from inside
//! its namespace, and the neighbour and the wan never see them (tcpdump in the target
//! proves it), while the same frames with the container's own addresses do arrive, so
//! every assertion here can fail. The drops are counted per container in `ctnet inspect`;
//! a flushed ruleset comes back with `ctnet gc` or the agent; a detach leaves no element.

mod support;

use std::time::Duration;

use support::{wait_until, Sandbox, UPLINK_HOST, UPLINK_HOST6, WAN_SERVER, WAN_SERVER6};

/// The system Python, which has python3-scapy (a pyenv shim on PATH may not).
const PYTHON: &str = "/usr/bin/python3";

/// Sends `frames` (scapy expressions, e.g. `Ether(dst=...)/IP(...)/UDP(...)`) out of
/// `eth0` in namespace `ns`, one after another.
fn send(sb: &Sandbox, ns: &str, frames: &[String]) {
    let script = format!(
        "from scapy.all import *\nconf.verb = 0\nsendp([{}], iface='eth0')\n",
        frames.join(", ")
    );
    sb.ok(&format!(
        "ip netns exec {ns} {PYTHON} - <<'EOF'\n{script}EOF"
    ));
}

/// What tcpdump in namespace `ns` saw on `eth0` matching `filter` while `during` ran:
/// one line a packet (`-n -e`: addresses and MACs as numbers). Bounded: tcpdump ends
/// after 8 s whatever happens.
fn captured(sb: &Sandbox, ns: &str, filter: &str, during: &str) -> String {
    sb.ok(&format!(
        "out=$(mktemp); err=$(mktemp); \
         ip netns exec {ns} timeout 8 tcpdump -i eth0 -n -e -l -U '{filter}' >$out 2>$err & t=$!; \
         for i in $(seq 100); do grep -q 'listening on' $err && break; sleep 0.05; done; \
         {during}; sleep 0.3; kill $t; wait $t; cat $out"
    ))
}

/// The scapy script of [`send`] as one shell command, for [`captured`]'s `during`.
fn sending(ns: &str, frames: &[String]) -> String {
    format!(
        "ip netns exec {ns} {PYTHON} -c \"from scapy.all import *; conf.verb = 0; sendp([{}], iface='eth0')\"",
        frames.join(", ")
    )
}

/// The MAC of `eth0` in namespace `ns`.
fn mac_of(sb: &Sandbox, ns: &str) -> String {
    sb.ok(&format!(
        "ip netns exec {ns} cat /sys/class/net/eth0/address"
    ))
    .trim()
    .to_string()
}

/// The MAC of the bridge whose gateway address is `gateway` (the host's side).
fn gateway_mac(sb: &Sandbox, gateway: &str) -> String {
    sb.ok(&format!(
        "br=$(ip -o addr show to {gateway} | awk '{{print $2}}'); cat /sys/class/net/$br/address"
    ))
    .trim()
    .to_string()
}

/// What namespace `ns` has in its neighbour cache for `ip`: its MAC, or "" for none.
fn neighbour(sb: &Sandbox, ns: &str, ip: &str) -> String {
    let out = sb.ok(&format!("ip -n {ns} neigh show {ip}"));
    out.split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .unwrap_or("")
        .to_string()
}

/// The count `ctnet inspect` gives for the container's spoofed frames, on network `net`.
fn dropped_for(sb: &Sandbox, container: &str) -> u64 {
    let out = sb.ok(&format!("ctnet inspect {container}"));
    let line = out
        .lines()
        .find(|l| l.contains("spoofed frame(s) dropped"))
        .unwrap_or_else(|| panic!("inspect shows no anti-spoofing count:\n{out}"));
    line.split_whitespace().next().unwrap().parse().unwrap()
}

/// The host side of a container's veth, from `ctnet inspect`.
fn port_of(sb: &Sandbox, container: &str) -> String {
    let out = sb.ok(&format!("ctnet inspect {container}"));
    out.lines()
        .find_map(|l| l.trim().strip_prefix("anti-spoofing on port "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no anti-spoofing line:\n{out}"))
        .to_string()
}

/// The UDP destination ports of the datagrams a capture holds (tcpdump writes `a.b.c.d.PORT:`
/// or `addr.PORT:` for the destination).
fn udp_ports(capture: &str) -> Vec<u16> {
    capture
        .lines()
        .filter(|l| l.contains("UDP"))
        .filter_map(|l| {
            // `-e` puts `MAC > MAC` first: the addresses are after the last ` > `.
            let dst = l.rsplit(" > ").next()?.split(": ").next()?;
            dst.rsplit('.').next()?.parse().ok()
        })
        .collect()
}

/// Network `blue` (10.60.0.0/24, no DNS: no agent) with a (10.60.0.2), b (10.60.0.3) and
/// c (10.60.0.4 with a static MAC), and the wan.
fn blue() -> Sandbox {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.ok(
        "ctnet network create blue --subnet 10.60.0.0/24 --dns false && \
         ctnet netns add a && ctnet attach blue a --ip 10.60.0.2 && \
         ctnet netns add b && ctnet attach blue b --ip 10.60.0.3 -p 8080:80 && \
         ctnet netns add c && ctnet attach blue c --ip 10.60.0.4 --mac 02:aa:bb:cc:dd:04",
    );
    sb
}

#[test]
fn forged_ipv4_sources_and_macs_are_dropped_and_counted_while_the_real_ones_arrive() {
    let mut sb = blue();
    let (a_mac, b_mac) = (mac_of(&sb, "a"), mac_of(&sb, "b"));
    assert_eq!(mac_of(&sb, "c"), "02:aa:bb:cc:dd:04");
    let gw_mac = gateway_mac(&sb, "10.60.0.1");
    let udp = |src_mac: &str, dst_mac: &str, src: &str, dst: &str, port: u16| {
        format!(
            "Ether(src='{src_mac}', dst='{dst_mac}')/IP(src='{src}', dst='{dst}')/UDP(sport=999, dport={port})/b'x'"
        )
    };
    let to_b = [
        udp(&a_mac, &b_mac, "10.60.0.2", "10.60.0.3", 4001), // its own: arrives
        udp(&a_mac, &b_mac, "10.60.0.4", "10.60.0.3", 4002), // the neighbour's address
        udp(&a_mac, &b_mac, "192.0.2.99", "10.60.0.3", 4003), // outside the subnet
        udp("02:00:00:00:00:99", &b_mac, "10.60.0.2", "10.60.0.3", 4004), // forged MAC
        udp(&b_mac, &b_mac, "10.60.0.2", "10.60.0.3", 4005), // the neighbour's MAC
    ];
    let seen = captured(&sb, "b", "udp", &sending("a", &to_b));
    assert_eq!(udp_ports(&seen), [4001], "b saw:\n{seen}");
    let to_wan = [
        udp(&a_mac, &gw_mac, "10.60.0.2", WAN_SERVER, 5001),
        udp(&a_mac, &gw_mac, "192.0.2.99", WAN_SERVER, 5002),
        udp(&a_mac, &gw_mac, "10.60.0.4", WAN_SERVER, 5003),
    ];
    let seen = captured(&sb, "wan", "udp", &sending("a", &to_wan));
    assert_eq!(udp_ports(&seen), [5001], "the wan saw:\n{seen}");
    assert!(
        seen.contains(&format!("{UPLINK_HOST}.999 > {WAN_SERVER}.5001")),
        "masqueraded as the host: {seen}"
    );
    // Counted per container: a's six forgeries, nothing for the others.
    assert_eq!(dropped_for(&sb, "a"), 6);
    assert_eq!(dropped_for(&sb, "b"), 0);
    // A VLAN-tagged frame (its inner addresses a's own) is not let through either.
    let tagged = format!(
        "Ether(src='{a_mac}', dst='{b_mac}')/Dot1Q(vlan=7)/IP(src='10.60.0.2', dst='10.60.0.3')/UDP(dport=4006)/b'x'"
    );
    let seen = captured(&sb, "b", "", &sending("a", &[tagged]));
    assert!(!seen.contains("4006") && !seen.contains("vlan 7"), "{seen}");
    assert_eq!(dropped_for(&sb, "a"), 7);

    // Normal traffic: between containers (c has a static MAC), to the wan, and a
    // published port from the wan.
    sb.serve(Some("b"), "--tcp 80");
    sb.serve(Some("wan"), &format!("--bind {WAN_SERVER} --tcp 80"));
    assert!(sb
        .reach(Some("a"), "tcp", "10.60.0.3:80")
        .starts_with("from 10.60.0.2:"));
    assert!(sb
        .reach(Some("c"), "tcp", "10.60.0.3:80")
        .starts_with("from 10.60.0.4:"));
    assert!(sb
        .reach(Some("c"), "tcp", &format!("{WAN_SERVER}:80"))
        .starts_with(&format!("from {UPLINK_HOST}:")));
    sb.reach(Some("wan"), "tcp", &format!("{UPLINK_HOST}:8080"));
    assert_eq!(dropped_for(&sb, "c"), 0);
    assert_eq!(dropped_for(&sb, "a"), 7, "normal traffic is never counted");
    let doctor = sb.ok("ctnet doctor");
    assert!(
        doctor.contains("in force: table bridge ctnet") && doctor.contains("3 container port(s)"),
        "{doctor}"
    );
}

#[test]
fn an_arp_reply_claiming_the_gateway_does_not_poison_a_neighbour_while_a_genuine_one_updates_it() {
    let sb = blue();
    let (a_mac, b_mac) = (mac_of(&sb, "a"), mac_of(&sb, "b"));
    let gw_mac = gateway_mac(&sb, "10.60.0.1");
    sb.ok("ip netns exec b ping -c1 -W1 10.60.0.1 >/dev/null");
    assert_eq!(neighbour(&sb, "b", "10.60.0.1"), gw_mac);
    // Linux takes an unasked-for reply over an entry only a second after its last
    // update (`locktime`); so the forgeries below would poison b's cache.
    std::thread::sleep(Duration::from_millis(1200));
    let reply = |hwsrc: &str, psrc: &str| {
        format!(
            "Ether(src='{a_mac}', dst='{b_mac}')/ARP(op=2, hwsrc='{hwsrc}', psrc='{psrc}', hwdst='{b_mac}', pdst='10.60.0.3')"
        )
    };
    let gratuitous = format!(
        "Ether(src='{a_mac}', dst='ff:ff:ff:ff:ff:ff')/ARP(op=1, hwsrc='{a_mac}', psrc='10.60.0.1', pdst='10.60.0.1')"
    );
    send(&sb, "a", &[reply(&a_mac, "10.60.0.1"), gratuitous]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        neighbour(&sb, "b", "10.60.0.1"),
        gw_mac,
        "{}",
        sb.ok("ip -n b neigh")
    );
    assert_eq!(dropped_for(&sb, "a"), 2);

    // A genuine reply (a's own address and MAC) is taken: b's stale entry for a is put
    // right. A reply naming another MAC for a's own address is not.
    sb.ok("ip -n b neigh replace 10.60.0.2 lladdr 02:00:00:00:00:77 dev eth0 nud stale");
    std::thread::sleep(Duration::from_millis(1200));
    send(&sb, "a", &[reply("02:00:00:00:00:66", "10.60.0.2")]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(neighbour(&sb, "b", "10.60.0.2"), "02:00:00:00:00:77");
    send(&sb, "a", &[reply(&a_mac, "10.60.0.2")]);
    assert!(
        wait_until(Duration::from_secs(2), || neighbour(&sb, "b", "10.60.0.2")
            == a_mac),
        "{}",
        sb.ok("ip -n b neigh")
    );
    assert_eq!(dropped_for(&sb, "a"), 3);
    // An ARP probe (sender 0.0.0.0, RFC 5227) passes: it claims nothing.
    let probe = format!(
        "Ether(src='{a_mac}', dst='ff:ff:ff:ff:ff:ff')/ARP(op=1, hwsrc='{a_mac}', psrc='0.0.0.0', pdst='10.60.0.9')"
    );
    let seen = captured(&sb, "b", "arp", &sending("a", &[probe]));
    assert!(seen.contains("who-has 10.60.0.9 tell 0.0.0.0"), "{seen}");
    assert_eq!(dropped_for(&sb, "a"), 3);
}

/// Dual-stack network `ds` with a, b and c, and the wan.
fn dual_stack() -> Sandbox {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.ok(
        "ctnet network create ds --ipv6 --subnet fd00:63::/64 --subnet 10.63.0.0/24 --dns false && \
         ctnet netns add a && ctnet attach ds a --ip6 fd00:63::a && \
         ctnet netns add b && ctnet attach ds b --ip6 fd00:63::b && \
         ctnet netns add c && ctnet attach ds c --ip6 fd00:63::c",
    );
    sb
}

/// The link-local address of `eth0` in namespace `ns`.
fn link_local(sb: &Sandbox, ns: &str) -> String {
    let out = sb.ok(&format!("ip -n {ns} -6 -o addr show dev eth0 scope link"));
    out.split_whitespace()
        .nth(3)
        .and_then(|cidr| cidr.split('/').next())
        .unwrap_or_else(|| panic!("no link-local address in {ns}: {out}"))
        .to_string()
}

#[test]
fn forged_ipv6_sources_neighbour_and_router_advertisements_are_dropped() {
    let mut sb = dual_stack();
    let (a_mac, b_mac) = (mac_of(&sb, "a"), mac_of(&sb, "b"));
    let a_ll = link_local(&sb, "a");
    // The link-local address is the EUI-64 one anti-spoofing lets out.
    let inspect = sb.ok("ctnet inspect a");
    assert!(inspect.contains(&a_ll), "{a_ll} not allowed:\n{inspect}");
    let udp6 = |src_mac: &str, src: &str, port: u16| {
        format!(
            "Ether(src='{src_mac}', dst='{b_mac}')/IPv6(src='{src}', dst='fd00:63::b')/UDP(sport=999, dport={port})/b'x'"
        )
    };
    let frames = [
        udp6(&a_mac, "fd00:63::a", 6001),              // its own: arrives
        udp6(&a_mac, &a_ll, 6002),                     // its link-local: arrives
        udp6(&a_mac, "fd00:63::c", 6003),              // the neighbour's address
        udp6(&a_mac, "2001:db8:99::1", 6004),          // outside the subnet
        udp6("02:00:00:00:00:99", "fd00:63::a", 6005), // forged MAC
        udp6(&a_mac, "::", 6006),                      // UDP from ::
    ];
    let seen = captured(&sb, "b", "udp", &sending("a", &frames));
    assert_eq!(udp_ports(&seen), [6001, 6002], "b saw:\n{seen}");
    assert_eq!(dropped_for(&sb, "a"), 4);

    // A neighbour advertisement claiming the gateway leaves b's cache alone; a genuine
    // one (a's own address) puts b's stale entry for a right.
    sb.ok("ip netns exec b ping -6 -c1 -W1 fd00:63::1 >/dev/null");
    let gw_mac = neighbour(&sb, "b", "fd00:63::1");
    assert!(!gw_mac.is_empty());
    sb.ok("ip -n b neigh replace fd00:63::a lladdr 02:00:00:00:00:77 dev eth0 nud stale");
    std::thread::sleep(Duration::from_millis(1200));
    let advert = |target: &str| {
        format!(
            "Ether(src='{a_mac}', dst='{b_mac}')/IPv6(src='{a_ll}', dst='fd00:63::b', hlim=255)/ICMPv6ND_NA(tgt='{target}', R=0, S=0, O=1)/ICMPv6NDOptDstLLAddr(lladdr='{a_mac}')"
        )
    };
    send(&sb, "a", &[advert("fd00:63::1")]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(neighbour(&sb, "b", "fd00:63::1"), gw_mac);
    assert_eq!(dropped_for(&sb, "a"), 5);
    send(&sb, "a", &[advert("fd00:63::a")]);
    assert!(
        wait_until(Duration::from_secs(2), || neighbour(&sb, "b", "fd00:63::a")
            == a_mac),
        "{}",
        sb.ok("ip -n b -6 neigh")
    );

    // A router advertisement and a redirect never reach b; the echo request sent with
    // them (a's own addresses) does, so the capture sees what comes.
    let ra = format!(
        "Ether(src='{a_mac}', dst='33:33:00:00:00:01')/IPv6(src='{a_ll}', dst='ff02::1', hlim=255)/ICMPv6ND_RA()/ICMPv6NDOptPrefixInfo(prefix='2001:db8:bad::', prefixlen=64)"
    );
    let redirect = format!(
        "Ether(src='{a_mac}', dst='{b_mac}')/IPv6(src='{a_ll}', dst='fd00:63::b', hlim=255)/ICMPv6ND_Redirect(tgt='{a_ll}', dst='{WAN_SERVER6}')"
    );
    let echo = format!(
        "Ether(src='{a_mac}', dst='{b_mac}')/IPv6(src='fd00:63::a', dst='fd00:63::b')/ICMPv6EchoRequest(id=77)"
    );
    let seen = captured(&sb, "b", "icmp6", &sending("a", &[ra, redirect, echo]));
    assert!(seen.contains("echo request"), "{seen}");
    assert!(
        !seen.contains("router advertisement") && !seen.contains("redirect"),
        "{seen}"
    );
    assert_eq!(dropped_for(&sb, "a"), 7);
    assert_eq!(dropped_for(&sb, "b"), 0);

    // Normal IPv6 traffic: between containers and to the wan (NAT66).
    sb.serve(Some("b"), "--tcp 80");
    sb.serve(Some("wan"), &format!("--bind {WAN_SERVER6} --tcp 80"));
    assert!(sb
        .reach(Some("a"), "tcp", "[fd00:63::b]:80")
        .starts_with("from [fd00:63::a]:"));
    assert!(sb
        .reach(Some("c"), "tcp", &format!("[{WAN_SERVER6}]:80"))
        .starts_with(&format!("from [{UPLINK_HOST6}]:")));
    assert!(sb
        .reach(Some("a"), "tcp", "10.63.0.3:80")
        .starts_with("from 10.63.0.2:"));
    assert_eq!(dropped_for(&sb, "c"), 0);
}

/// The anti-spoofing table as nft lists it.
fn guard_table(sb: &Sandbox) -> String {
    sb.ok("nft list table bridge ctnet")
}

#[test]
fn a_flushed_ruleset_comes_back_with_gc_and_a_detach_leaves_no_element() {
    let sb = blue();
    let (a_mac, b_mac) = (mac_of(&sb, "a"), mac_of(&sb, "b"));
    let a_port = port_of(&sb, "a");
    let table = guard_table(&sb);
    assert!(
        table.contains(&format!("\"{a_port}\" . {a_mac}")),
        "{table}"
    );
    assert!(
        table.contains(&format!("\"{a_port}\" . 10.60.0.2")),
        "{table}"
    );

    sb.ok("nft flush ruleset");
    assert!(!sb.ok("nft list tables").contains("bridge ctnet"));
    let spoofed = format!(
        "Ether(src='{a_mac}', dst='{b_mac}')/IP(src='10.60.0.4', dst='10.60.0.3')/UDP(sport=999, dport=4002)/b'x'"
    );
    // Without the table the forgery gets through: the capture can see it.
    let seen = captured(
        &sb,
        "b",
        "udp",
        &sending("a", std::slice::from_ref(&spoofed)),
    );
    assert_eq!(udp_ports(&seen), [4002], "{seen}");
    let doctor = sb.run("ctnet doctor");
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(!doctor.status.success());
    assert!(
        text.contains("anti-spoofing") && text.contains("table bridge ctnet is missing"),
        "{text}"
    );

    let gc = sb.ok("ctnet gc");
    assert!(gc.contains("table bridge ctnet is missing"), "{gc}");
    assert_eq!(guard_table(&sb), table, "put back as it was");
    let seen = captured(&sb, "b", "udp", &sending("a", &[spoofed]));
    assert!(udp_ports(&seen).is_empty(), "{seen}");
    assert_eq!(dropped_for(&sb, "a"), 1);

    // An element removed by hand is missing to doctor, and gc puts it back.
    sb.ok(&format!(
        "nft delete element bridge ctnet spoof_mac '{{ \"{a_port}\" . {a_mac} }}'"
    ));
    assert!(sb
        .run("ctnet doctor")
        .stdout
        .windows(7)
        .any(|w| w == b"missing"));
    sb.ok("ctnet gc");
    assert!(guard_table(&sb).contains(&format!("\"{a_port}\" . {a_mac}")));

    // Detach: nothing of a is left; the others' elements stay.
    sb.ok("ctnet detach blue a");
    let table = guard_table(&sb);
    assert!(
        !table.contains(&a_port) && !table.contains(&a_mac),
        "{table}"
    );
    assert!(table.contains(&mac_of(&sb, "b")));
    sb.ok("ctnet detach blue b && ctnet detach blue c");
    let table = guard_table(&sb);
    assert!(!table.contains("elements"), "elements left: {table}");
}

/// With the agent running (a DNS network), a deleted table and a flushed set come back
/// with no ctnet command.
#[test]
fn the_agent_puts_the_anti_spoofing_table_back() {
    let sb = Sandbox::new();
    sb.ok("ctnet network create green --subnet 10.64.0.0/24 && \
         ctnet netns add a && ctnet attach green a --ip 10.64.0.2");
    assert!(
        sb.agent_pid().is_some(),
        "a DNS network's attach starts the agent"
    );
    let table = guard_table(&sb);
    assert!(table.contains("10.64.0.2"), "{table}");
    sb.ok("nft delete table bridge ctnet");
    assert!(
        wait_until(Duration::from_secs(5), || sb
            .run("nft list table bridge ctnet")
            .stdout
            == table.as_bytes()),
        "not put back: {}",
        String::from_utf8_lossy(&sb.run("nft list ruleset").stdout)
    );
    sb.ok("nft flush set bridge ctnet spoof_ip4");
    assert!(
        wait_until(Duration::from_secs(5), || guard_table(&sb)
            .contains("10.64.0.2")),
        "spoof_ip4 not refilled"
    );
}
