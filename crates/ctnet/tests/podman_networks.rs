//! Podman 4.3 itself in front of ctnet as its netavark (issue 13's must-show list, with
//! the real engine rather than netavark calls made by hand): a container on an internal
//! and a public network, in both name orders and through `podman network connect`,
//! reaches the wan through the public one only; Podman's networks without options reach
//! each other, `-o isolate=true` ones do not, a `ctnet network create` one (strict) is
//! reached by none; `--ipam-driver none` gives interfaces without addresses; with
//! /proc/sys read-only (the right values set ahead) a published port answers from the wan.
//! Every test ends with the snapshot as before.

mod support;

use std::time::Duration;

use support::podman::{page_answers, Backend, Podman, PodmanOptions, IMAGE, PAGE};
use support::{wait_until, Sandbox, MAKE_DEFAULT_NETWORK, UPLINK_HOST, WAN_SERVER};

/// A Podman whose ctnet uses the sandbox's state dir, so the snapshot (`ctnet ls`,
/// `ctnet network ls`) sees what it made, and `ctnet network create` networks are
/// beside Podman's.
fn podman(sb: &Sandbox) -> Podman<'_> {
    Podman::with_options(
        sb,
        PodmanOptions {
            ctnet_env: true,
            ..PodmanOptions::new(Backend::Netavark)
        },
    )
}

/// The wan server on port 80 and ctnet's table made ahead (it stays), so a snapshot
/// taken next holds everything that must be there at the end.
fn host(sb: &mut Sandbox) {
    sb.with_wan();
    sb.serve(Some("wan"), &format!("--bind {WAN_SERVER} --tcp 80"));
    sb.ok(MAKE_DEFAULT_NETWORK);
}

/// A busybox httpd container serving [`PAGE`] on port 80, with these `podman run`
/// network flags; returns its pid (its network namespace is `/proc/PID/ns/net`).
fn web(podman: &Podman, name: &str, flags: &str) -> String {
    podman.run_detached(&format!(
        "--name {name} {flags} {IMAGE} httpd -f -p 80 -h /www"
    ));
    let pid = podman.ok(&format!("inspect -f '{{{{.State.Pid}}}}' {name}"));
    let pid = pid.trim().to_string();
    // httpd listening (state 0A on port 0050, in its namespace's tables), so a fetch
    // that fails is the network's doing, not a server not yet up.
    let listening = wait_until(Duration::from_secs(5), || {
        let out = inside(podman.sb, &pid, "cat /proc/net/tcp /proc/net/tcp6");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.contains(":0050 ") && l.split_whitespace().nth(3) == Some("0A"))
    });
    assert!(listening, "httpd in {name} does not listen");
    pid
}

/// Runs `cmd` in the network namespace of process `pid` (a container's).
fn inside(sb: &Sandbox, pid: &str, cmd: &str) -> std::process::Output {
    sb.run(&format!("nsenter --net=/proc/{pid}/ns/net {cmd}"))
}

/// Whether the container of `pid` fetches [`PAGE`] from `ip`:80 (within 2 s).
fn fetches(sb: &Sandbox, pid: &str, ip: &str) -> bool {
    let out = inside(sb, pid, &format!("curl -s --max-time 2 http://{ip}/"));
    out.stdout.starts_with(PAGE.as_bytes())
}

/// What the wan server saw of a TCP connect from the container of `pid`, or the error.
fn to_wan(sb: &Sandbox, pid: &str) -> Result<String, String> {
    let out = inside(
        sb,
        pid,
        &format!("ctnet-probe tcp {WAN_SERVER}:80 --timeout 2"),
    );
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
    if out.status.success() {
        Ok(text(&out.stdout))
    } else {
        Err(text(&out.stderr))
    }
}

/// The container of `pid` reaches the wan server, which sees the masqueraded uplink.
fn reaches_wan(sb: &Sandbox, pid: &str, who: &str) {
    let seen = to_wan(sb, pid).unwrap_or_else(|e| panic!("{who} does not reach the wan: {e}"));
    assert!(
        seen.starts_with(&format!("from {UPLINK_HOST}:")),
        "{who}: {seen}"
    );
}

/// The container's IPv4 default routes, one per line.
fn default_routes(sb: &Sandbox, pid: &str) -> String {
    let out = inside(sb, pid, "ip -4 route show default");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// An internal network and a public one, named `internal` and `public` (one sorting
/// before the other): a container on both reaches the wan (masqueraded) and its
/// neighbour on the internal network, with exactly one default route, via the public
/// network's gateway. Before issue 13, with the internal network sorting first, the
/// container's default route went by it and the wan was unreachable. `networks` is how
/// `podman run` is given both (Podman 4.3 takes `--network I --network P` and
/// `--network I,P`).
fn internal_and_public(internal: &str, public: &str, networks: &str) {
    let mut sb = Sandbox::with_host_sys();
    host(&mut sb);
    let sb = sb;
    let podman = podman(&sb);
    let before = sb.snapshot();
    podman.ok(&format!(
        "network create --internal --subnet 10.89.10.0/24 {internal} >/dev/null"
    ));
    podman.ok(&format!(
        "network create --subnet 10.89.11.0/24 {public} >/dev/null"
    ));
    web(&podman, "neighbour", &format!("--network {internal}"));
    let both = web(&podman, "both", networks);
    let routes = default_routes(&sb, &both);
    assert_eq!(routes.lines().count(), 1, "{routes}");
    assert!(routes.starts_with("default via 10.89.11.1 "), "{routes}");
    reaches_wan(&sb, &both, "the container on both networks");
    let neighbour = podman.ip_of("neighbour", internal);
    assert!(neighbour.starts_with("10.89.10."), "{neighbour}");
    assert!(
        fetches(&sb, &both, &neighbour),
        "the neighbour on {internal} is not reached"
    );

    // Started on the internal network only: no default route, no wan; `network connect`
    // of the public one gives both.
    let late = web(&podman, "late", &format!("--network {internal}"));
    assert_eq!(default_routes(&sb, &late), "");
    assert!(to_wan(&sb, &late).is_err());
    podman.ok(&format!("network connect {public} late"));
    let routes = default_routes(&sb, &late);
    assert_eq!(routes.lines().count(), 1, "{routes}");
    assert!(routes.starts_with("default via 10.89.11.1 "), "{routes}");
    reaches_wan(&sb, &late, "the container connected to the public network");
    assert!(fetches(&sb, &late, &neighbour));

    podman.ok("rm -f -t 0 neighbour both late >/dev/null");
    podman.ok(&format!("network rm {internal} {public} >/dev/null"));
    assert_eq!(sb.snapshot(), before, "podman rm left something");
}

#[test]
fn internal_network_sorting_first_leaves_the_egress_to_the_public_one() {
    internal_and_public("aint", "zpub", "--network aint --network zpub");
}

#[test]
fn internal_network_sorting_last_leaves_the_egress_to_the_public_one() {
    internal_and_public("zint", "apub", "--network zint,apub");
}

/// Whether the containers of `a` and `b` (pid, address) fetch each other's page; both
/// directions must agree.
fn talk(sb: &Sandbox, (a, a_ip): (&str, &str), (b, b_ip): (&str, &str), what: &str) -> bool {
    let there = fetches(sb, a, b_ip);
    let back = fetches(sb, b, a_ip);
    assert_eq!(
        there, back,
        "{what}: one way only ({there} there, {back} back)"
    );
    there
}

/// Podman's networks as netavark 1.4 isolates them: two made without options talk (TCP
/// both ways), two made with `-o isolate=true` do not but each talks to an open one; a
/// network made by `ctnet network create` (strict by default) is not reached from a
/// Podman one, nor reaches it, while one made with `--isolate false` is. Before issue 13
/// every network was isolated from every other: the open pair did not talk.
#[test]
fn podman_networks_isolate_as_netavark_does() {
    let mut sb = Sandbox::with_host_sys();
    host(&mut sb);
    let before = sb.snapshot();
    // ctnet's own networks, each with a server (a CLI container).
    sb.ok("ctnet network create cstrict --subnet 10.89.30.0/24 && \
         ctnet network create copen --subnet 10.89.31.0/24 --isolate false && \
         ctnet netns add s && ctnet attach cstrict s && \
         ctnet netns add o && ctnet attach copen o");
    sb.serve(Some("s"), "--tcp 80");
    sb.serve(Some("o"), "--tcp 80");
    let (s_ip, o_ip) = (sb.addr_of("s", "eth0"), sb.addr_of("o", "eth0"));
    let sb = sb;
    let podman = podman(&sb);
    podman.ok("network create --subnet 10.89.20.0/24 open1 >/dev/null");
    podman.ok("network create --subnet 10.89.21.0/24 open2 >/dev/null");
    podman.ok("network create --subnet 10.89.22.0/24 -o isolate=true iso1 >/dev/null");
    podman.ok("network create --subnet 10.89.23.0/24 -o isolate=true iso2 >/dev/null");
    // Podman 4.3 parses `isolate` as a boolean itself ("strconv.ParseBool: parsing
    // \"strict\": invalid syntax"): `strict` never reaches netavark from it.
    let err = podman.fails("network create --subnet 10.89.24.0/24 -o isolate=strict st");
    assert!(err.contains("ParseBool: parsing \"strict\""), "{err}");

    let mut c = Vec::new();
    for net in ["open1", "open2", "iso1", "iso2"] {
        let pid = web(&podman, net, &format!("--network {net}"));
        c.push((pid, podman.ip_of(net, net)));
    }
    let c: Vec<(&str, &str)> = c.iter().map(|(p, i)| (p.as_str(), i.as_str())).collect();
    let (open1, open2, iso1, iso2) = (c[0], c[1], c[2], c[3]);
    assert!(
        talk(&sb, open1, open2, "open1 <-> open2"),
        "two networks without options"
    );
    assert!(
        !talk(&sb, iso1, iso2, "iso1 <-> iso2"),
        "two isolate=true networks"
    );
    assert!(
        talk(&sb, iso1, open1, "iso1 <-> open1"),
        "isolate=true and an open one"
    );
    assert!(
        talk(&sb, iso2, open2, "iso2 <-> open2"),
        "isolate=true and an open one"
    );

    // ctnet's CLI networks, by ctnet-probe (its servers) one way and curl the other.
    let probe = |pid: &str, ip: &str| {
        inside(&sb, pid, &format!("ctnet-probe tcp {ip}:80 --timeout 1"))
            .status
            .success()
    };
    let from_ns = |ns: &str, ip: &str| {
        let out = sb.run(&format!(
            "ip netns exec {ns} curl -s --max-time 1 http://{ip}/"
        ));
        out.stdout.starts_with(PAGE.as_bytes())
    };
    for (pod, name) in [(open1, "open1"), (iso1, "iso1")] {
        assert!(
            !probe(pod.0, &s_ip),
            "{name} reaches the strict CLI network"
        );
        assert!(
            !from_ns("s", pod.1),
            "the strict CLI network reaches {name}"
        );
    }
    assert!(
        probe(open1.0, &o_ip),
        "open1 does not reach an --isolate false network"
    );
    assert!(
        from_ns("o", open1.1),
        "an --isolate false network does not reach open1"
    );

    podman.ok("rm -f -t 0 open1 open2 iso1 iso2 >/dev/null");
    podman.ok("network rm open1 open2 iso1 iso2 >/dev/null");
    sb.ok(
        "ctnet detach cstrict s && ctnet detach copen o && ctnet netns rm s && \
         ctnet netns rm o && ctnet network rm cstrict copen",
    );
    assert_eq!(sb.snapshot(), before, "something was left");
}

/// IPv4 and global IPv6 addresses of `ifname` in the container of `pid` (None: the host).
fn addresses(sb: &Sandbox, pid: Option<&str>, ifname: &str) -> String {
    let cmd = format!(
        "sh -c 'ip -o -4 addr show dev {ifname}; ip -o -6 addr show dev {ifname} scope global'"
    );
    let out = match pid {
        Some(pid) => inside(sb, pid, &cmd),
        None => sb.run(&cmd),
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `podman network create --ipam-driver none`: the containers' interfaces and the
/// bridge have no IPv4 address (read from the kernel) and no default route; given
/// addresses by hand, two containers talk over the bridge; `podman rm` leaves nothing.
/// Before issue 13 ctnet refused the setup (no subnet) and `podman run` failed.
#[test]
fn podman_ipam_none_gives_interfaces_without_addresses() {
    let mut sb = Sandbox::with_host_sys();
    host(&mut sb);
    let sb = sb;
    let podman = podman(&sb);
    let before = sb.snapshot();
    podman.ok("network create --ipam-driver none n >/dev/null");
    let bridge = podman.ok("network inspect -f '{{.NetworkInterface}}' n");
    let bridge = bridge.trim();
    let a = web(&podman, "a", "--network n");
    let b = web(&podman, "b", "--network n");
    for (pid, name) in [(&a, "a"), (&b, "b")] {
        assert_eq!(addresses(&sb, Some(pid), "eth0"), "", "{name}");
        assert_eq!(default_routes(&sb, pid), "", "{name}");
    }
    assert_eq!(addresses(&sb, None, bridge), "", "the bridge {bridge}");
    let add = |pid: &str, ip: &str| {
        let out = inside(&sb, pid, &format!("ip addr add {ip}/24 dev eth0"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    add(&a, "192.0.2.1");
    add(&b, "192.0.2.2");
    assert!(talk(&sb, (&a, "192.0.2.1"), (&b, "192.0.2.2"), "a <-> b"));
    podman.ok("rm -f -t 0 a b >/dev/null");
    podman.ok("network rm n >/dev/null");
    assert_eq!(sb.snapshot(), before, "podman rm left something");
}

/// /proc/sys bind-mounted read-only in the sandbox (a Podman inside a container),
/// `ip_forward` set ahead: `podman run -d -p 8080:80 --network a` works and the page
/// answers from the wan and the container reaches the wan; `rm -f`
/// leaves nothing.
#[test]
fn podman_publishes_with_a_read_only_proc_sys_set_ahead() {
    let mut sb = Sandbox::with_host_sys();
    host(&mut sb);
    sb.ok("sysctl -qw net.ipv4.ip_forward=1");
    sb.ok("mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys");
    let err = sb.fails("echo 1 > /proc/sys/net/ipv4/ip_forward");
    assert!(err.contains("Read-only file system"), "{err}");
    let sb = sb;
    let podman = podman(&sb);
    let before = sb.snapshot();
    podman.ok("network create --subnet 10.89.40.0/24 a >/dev/null");
    let pid = web(&podman, "web", "-p 8080:80 --network a");
    let addr = format!("{UPLINK_HOST}:8080");
    assert!(
        page_answers(&sb, "wan", &addr, Duration::from_secs(10)),
        "the published port does not answer from the wan"
    );
    reaches_wan(&sb, &pid, "the container");
    podman.ok("rm -f -t 0 web >/dev/null");
    podman.ok("network rm a >/dev/null");
    assert_eq!(sb.snapshot(), before, "podman rm left something");
}
