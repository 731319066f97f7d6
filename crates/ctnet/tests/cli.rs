//! The command line as a user meets it: read-only commands that leave the host alone,
//! the default network made on first attach, arguments that are not UTF-8, the root
//! check, swapped arguments, Docker's verbs, completions, the man page, `--version`,
//! and networks at the edges of what the kernel accepts (MTU, bridge names).

mod support;

use serde_json::{json, Value};
use support::{cni_call, netavark, refused, Sandbox};

/// What a fresh host's network configuration looks like: links, nftables tables and
/// IPv4 forwarding (read inside the sandbox, so the sandbox's own).
fn host_state(sb: &Sandbox) -> String {
    sb.ok(
        "ip -o link show | cut -d' ' -f2; echo '## tables'; nft list tables; \
           echo '## ip_forward'; cat /proc/sys/net/ipv4/ip_forward",
    )
}

#[test]
fn looking_leaves_a_fresh_host_alone_and_the_default_network_comes_with_the_first_attach() {
    let sb = Sandbox::new();
    let fresh = host_state(&sb);
    assert!(
        fresh.starts_with("lo:\n## tables\n## ip_forward\n"),
        "{fresh}"
    );
    // Nothing to report on a host without networks, though ip_forward is 0.
    assert!(fresh.ends_with("## ip_forward\n0\n"), "{fresh}");
    sb.ok("ctnet doctor");
    let listed = sb.ok("ctnet network ls");
    assert!(
        listed.contains("bridge") && listed.contains("(on first attach)"),
        "{listed}"
    );
    let listed: Value = serde_json::from_str(&sb.ok("ctnet network ls --format json")).unwrap();
    assert_eq!(listed[0]["name"], "bridge", "{listed}");
    assert_eq!(listed[0]["state"], "virtual", "{listed}");
    let shown = sb.ok("ctnet network inspect bridge");
    assert!(shown.contains("not created yet"), "{shown}");
    let shown: Value =
        serde_json::from_str(&sb.ok("ctnet network inspect bridge --format json")).unwrap();
    assert_eq!(shown["bridge"], "ctnet0", "{shown}");
    assert_eq!(sb.ok("ctnet ls --format json").trim(), "[]");
    sb.ok("ctnet doctor");
    // Refused creates: one refused by the type, one only after the store is consulted.
    sb.fails("ctnet network create x --subnet 10.0.0/33");
    sb.fails("ctnet network create x --subnet 10.1.0.0/24 --gateway 10.2.0.1");
    sb.fails("ctnet network create x --bridge 'br%d'");
    sb.fails("ctnet network inspect nosuch");
    let err = sb.fails("ctnet network create bridge");
    assert!(err.contains("is the default network"), "{err}");
    assert_eq!(
        host_state(&sb),
        fresh,
        "a read or a refusal changed the host"
    );
    let rows: Value = serde_json::from_str(&sb.ok("ctnet network ls --format json")).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(rows[0]["state"], "virtual", "no row was written: {rows}");

    // A network made first leaves the default network's usual subnet to it.
    sb.ok("ctnet network create blue && ctnet netns add c1 && ctnet attach bridge c1");
    let made: Value =
        serde_json::from_str(&sb.ok("ctnet network inspect bridge --format json")).unwrap();
    assert_eq!(made["subnets"][0]["subnet"], "172.17.0.0/16", "{made}");
    assert_eq!(made["state"], "ready", "{made}");
    sb.ok("ip netns exec c1 ping -c1 -W2 172.17.0.1");
    let now = host_state(&sb);
    assert!(
        now.contains("ctnet0:") && now.contains("table inet ctnet") && now.ends_with("1\n"),
        "{now}"
    );
}

#[test]
fn arguments_that_are_not_utf8_pass_through_or_are_refused_by_name() {
    let sb = Sandbox::new();
    // The command's own arguments reach it byte for byte (0xff is never UTF-8).
    let out = sb.run("ctnet run --network none -- printf '%s' \"$(printf 'a\\377b')\"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"a\xffb");
    sb.ok("ctnet netns add c1");
    let out = sb.run("ctnet netns exec c1 printf '%s' \"$(printf '\\376')\"");
    assert!(out.status.success());
    assert_eq!(out.stdout, b"\xfe");
    // Names: the argument, the cause and the fix, and nothing made.
    refused(
        &sb,
        "ctnet netns add \"$(printf 'a\\377')\"",
        &["name \"a\\xFF\"", "not valid UTF-8", "letters, digits"],
    );
    refused(
        &sb,
        "ctnet attach \"$(printf '\\377')\" c1",
        &["network name \"\\xFF\"", "not valid UTF-8"],
    );
    refused(
        &sb,
        "ctnet run --name \"$(printf '\\377')\" -- true",
        &["--name \"\\xFF\"", "not valid UTF-8"],
    );
    // Invoked as netavark: netavark's JSON error, not a panic (exit 134).
    let out = sb.run(
        "mkdir -p \"$CTNET_RUN_DIR/bin\" && ln -sf \"$(command -v ctnet)\" \"$CTNET_RUN_DIR/bin/netavark\" && \
         \"$CTNET_RUN_DIR/bin/netavark\" setup \"/run/netns/$(printf '\\377')\" </dev/null",
    );
    assert_eq!(out.status.code(), Some(1));
    let err: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(err["error"].to_string().contains("UTF-8"), "{err}");
    refused(
        &sb,
        "ctnet network create x --subnet \"$(printf '\\377')\"",
        &["--subnet \"\\xFF\"", "not valid UTF-8", "UTF-8 text"],
    );
}

#[test]
fn only_root_runs_ctnet_and_the_error_says_so_before_any_file_is_made() {
    let sb = Sandbox::new();
    let nobody = "setpriv --reuid 65534 --regid 65534 --clear-groups";
    for command in ["ls", "network ls", "doctor", "netns add c1"] {
        let err = sb.fails(&format!("{nobody} ctnet {command}"));
        assert!(
            err.contains("uid 65534") && err.contains("ctnet must run as root"),
            "{command}: {err}"
        );
        assert!(err.contains("sudo"), "{err}");
    }
    sb.ok("test ! -e \"$CTNET_STATE_DIR/ctnet.db\"");
    // What needs no privileges works for anyone.
    let script = sb.ok(&format!("{nobody} ctnet completion bash"));
    assert!(script.contains("_ctnet"), "{script}");
    sb.ok(&format!("{nobody} ctnet --version"));
}

#[test]
fn swapped_arguments_are_named_as_such() {
    let sb = Sandbox::new();
    sb.ok("ctnet network create demo --subnet 10.6.0.0/24 && ctnet netns add app3");
    for verb in ["attach", "detach"] {
        refused(
            &sb,
            &format!("ctnet {verb} app3 demo"),
            &[
                "app3 is a namespace and demo a network",
                &format!("ctnet {verb} demo app3"),
            ],
        );
    }
    // The default network, before it exists, is still a network.
    refused(
        &sb,
        "ctnet attach app3 bridge",
        &["app3 is a namespace and bridge a network"],
    );
    // Only when both are so: a plain missing namespace keeps its own message.
    refused(
        &sb,
        "ctnet attach demo nosuch",
        &["\"nosuch\"", "does not exist", "ctnet netns add nosuch"],
    );
}

/// Docker's `network connect NETWORK CONTAINER` (and plain `connect`) is `attach`.
#[test]
fn dockers_connect_and_disconnect_are_attach_and_detach() {
    let sb = Sandbox::new();
    sb.ok("ctnet network create demo --subnet 10.6.0.0/24 && ctnet netns add c1 && ctnet netns add c2");
    sb.ok("ctnet network connect demo c1 && ctnet connect demo c2");
    sb.ok("ip netns exec c1 ping -c1 -W2 10.6.0.3");
    sb.ok("ctnet network disconnect demo c1 && ctnet disconnect demo c2");
    assert_eq!(sb.ok("ctnet ls --format json").trim(), "[]");
    let help = sb.ok("ctnet --help");
    assert!(help.contains("[alias: connect]"), "{help}");
}

#[test]
fn usage_lines_do_not_show_directory_flags_as_required() {
    // The sandbox sets CTNET_STATE_DIR and CTNET_RUN_DIR, which clap's `env` took as given.
    let sb = Sandbox::new();
    for line in [
        "attach blue",
        "detach",
        "run",
        "network create",
        "netns exec",
    ] {
        let err = sb.fails(&format!("ctnet {line}"));
        let usage = err
            .lines()
            .find(|l| l.starts_with("Usage:"))
            .unwrap_or_else(|| panic!("{line}: {err}"));
        assert!(
            !usage.contains("--state-dir") && !usage.contains("--run-dir"),
            "{line}: {usage}"
        );
    }
    // The environment still chooses the folders.
    sb.ok("ctnet netns add c1 && test -e \"$CTNET_STATE_DIR/ctnet.db\"");
}

#[test]
fn completions_man_pages_and_the_version_come_from_the_cli_definition() {
    let sb = Sandbox::new();
    let bash = sb.ok("ctnet completion bash");
    assert!(
        bash.contains("attach") && bash.contains("--subnet"),
        "{bash}"
    );
    sb.ok("ctnet completion bash > /tmp/c.bash && bash -n /tmp/c.bash");
    assert!(sb.ok("ctnet completion zsh").contains("#compdef ctnet"));
    assert!(sb.ok("ctnet completion fish").contains("complete -c ctnet"));
    let man = sb.ok("ctnet man");
    assert!(
        man.contains(".TH ctnet 1") && man.contains("network"),
        "{man}"
    );
    sb.ok(
        "d=$(mktemp -d) && ctnet man --dir $d && test -s $d/ctnet.1 && \
           test -s $d/ctnet-network-create.1 && test -s $d/ctnet-attach.1",
    );
    let version = sb.ok("ctnet --version");
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match commit {
        Some(commit) => assert_eq!(
            version.trim(),
            format!("ctnet {} ({commit})", env!("CARGO_PKG_VERSION"))
        ),
        // Built outside a git checkout: the package version alone.
        None => assert_eq!(
            version.trim(),
            format!("ctnet {}", env!("CARGO_PKG_VERSION"))
        ),
    }
}

#[test]
fn a_published_range_is_one_entry_in_the_ports_column() {
    let sb = Sandbox::new();
    sb.ok(
        "ctnet network create demo --subnet 10.6.0.0/24 && ctnet netns add c1 && \
           ctnet attach demo c1 -p 8000-8100:80-180 -p 9000:90/udp",
    );
    let listed = sb.ok("ctnet ls");
    let row = listed.lines().find(|l| l.starts_with("c1")).unwrap();
    assert!(
        row.contains(" 0.0.0.0:8000-8100->80-180/tcp,0.0.0.0:9000->90/udp "),
        "{row}"
    );
    assert!(row.len() < 200, "{row}");
}

/// An IPv4-only network below IPv6's minimum MTU works (its devices simply have no
/// IPv6); the MTU is really in force. With IPv6 such an MTU is refused with the reason.
#[test]
fn a_small_mtu_works_for_ipv4_and_is_refused_for_ipv6() {
    let sb = Sandbox::new();
    sb.ok("ctnet network create small --subnet 10.6.0.0/24 --mtu 1000 && \
           ctnet netns add c1 && ctnet netns add c2 && ctnet attach small c1 && ctnet attach small c2");
    sb.ok("ip netns exec c1 ping -c1 -W2 -M do -s 972 10.6.0.3");
    sb.ok("ip netns exec c1 ping -c1 -W2 10.6.0.1");
    let too_big = sb.run("ip netns exec c1 ping -c1 -W2 -M do -s 973 10.6.0.3");
    assert!(!too_big.status.success(), "the MTU of 1000 is not in force");
    sb.ok("ctnet network create tiny --subnet 10.5.0.0/24 --mtu 68 && ctnet attach tiny c1");
    sb.ok("ip netns exec c1 ping -c1 -W2 -s 20 10.5.0.1");
    for ipv6 in ["--ipv6", "--ipv6 --ipv4 false"] {
        refused(
            &sb,
            &format!("ctnet network create x {ipv6} --mtu 1279"),
            &["network \"x\"", "MTU 1279 is below 1280", "leave IPv6 off"],
        );
    }
    sb.ok("ctnet network create v6 --ipv6 --mtu 1280");
}

/// `%` makes the kernel take a name as a template (`br%d` becomes `br0`): every front
/// end refuses it, and no device is made.
#[test]
fn a_percent_in_a_bridge_name_is_refused_by_every_front_end() {
    let sb = Sandbox::new();
    sb.ok("ip netns add pod1 && ip -n pod1 link set lo up");
    refused(
        &sb,
        "ctnet network create x --bridge 'br%d'",
        &["interface name \"br%d\"", "template", "letters, digits"],
    );
    let before = sb.snapshot();
    let conf = json!({
        "cniVersion": "1.0.0", "name": "cninet", "type": "ctnet", "bridge": "br%d",
        "ipam": { "type": "ctnet", "subnet": "10.88.0.0/16" }
    });
    let (ok, err) = cni_call(&sb, "ctnet", "ADD", "pod1id", "/run/netns/pod1", &conf);
    assert!(!ok, "{err}");
    assert_eq!(err["code"], 7, "{err}");
    assert!(
        err["msg"].to_string().contains("template")
            || err["details"].to_string().contains("template"),
        "{err}"
    );
    let options = json!({
        "container_id": "c1id", "container_name": "c1",
        "networks": { "podnet": { "static_ips": ["10.89.0.5"], "interface_name": "eth0" } },
        "network_info": { "podnet": {
            "name": "podnet", "id": "e".repeat(64), "driver": "bridge",
            "network_interface": "br%d", "created": "2026-11-22T00:00:00Z",
            "subnets": [{ "subnet": "10.89.0.0/24", "gateway": "10.89.0.1" }],
            "ipv6_enabled": false, "internal": false, "dns_enabled": false
        } }
    });
    let (ok, err) = netavark(&sb, "setup /run/netns/pod1", &options);
    assert!(!ok, "{err}");
    assert!(err["error"].to_string().contains("template"), "{err}");
    assert_eq!(sb.snapshot(), before, "a front end left something");
    sb.fails("ip link show br0");
}
