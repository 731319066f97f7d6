//! Real containerd 1.6 driven by `ctr run --cni`, with ctnet as its CNI plugin (and the
//! reference `portmap` chained after it). containerd runs inside the sandbox with its own
//! root, state and socket (see support/containerd.rs); the image is imported from a tar
//! built in the test.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::containerd::Containerd;
use support::{GroupGuard, Sandbox, UPLINK_HOST, WAN_SERVER};

/// The network ctr's conflist names.
const NETWORK: &str = "ctrnet";

/// A conflist with ctnet alone (subnet `subnet`) or followed by `chained` plugins.
fn conflist(subnet: &str, chained: &[Value]) -> Value {
    let mut plugins = vec![json!({
        "type": "ctnet", "bridge": "ctr0",
        "ipam": { "type": "ctnet", "subnet": subnet },
        "capabilities": { "portMappings": true }
    })];
    plugins.extend(chained.iter().cloned());
    json!({ "cniVersion": "1.0.0", "name": NETWORK, "plugins": plugins })
}

/// ctnet's rows for containerd's containers, as (container, address, host veth).
fn rows(sb: &Sandbox) -> Vec<(String, String, String)> {
    let ls: Value = serde_json::from_str(&sb.ok("ctnet ls --format json")).expect("ls json");
    ls.as_array()
        .expect("list")
        .iter()
        .map(|r| {
            let text = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            let ip = r["ips"][0].as_str().unwrap_or_default().to_string();
            (text("container"), ip, text("host_ifname"))
        })
        .collect()
}

/// The wan server's answer to a TCP probe from inside container `id`.
fn probe_wan(ctr: &Containerd, id: &str) -> String {
    ctr.exec_ok(
        id,
        &format!("ctnet-probe tcp {WAN_SERVER}:7000 --timeout 3"),
    )
}

/// `ctr run --cni -d`: the container has the address ctnet recorded and a default route
/// through the gateway, and reaches the wan masqueraded behind the uplink address. A
/// foreground `ctr run --rm --cni` does the same and its DEL (sent with an empty
/// CNI_NETNS) removes everything; the detached container, killed and removed with ctr,
/// leaves only its row, which `ctnet gc` releases: then the host is as before.
#[test]
fn ctr_run_cni_reaches_the_wan_and_leaves_nothing() {
    let mut sb = Sandbox::with_host_sys();
    sb.with_wan();
    sb.serve(Some("wan"), "--tcp 7000");
    sb.ok(support::MAKE_DEFAULT_NETWORK);
    let before = sb.snapshot();
    let ctr = Containerd::start(&sb, &conflist("10.99.0.0/24", &[]));

    ctr.run_detached("web", "sleep 600");
    let address = ctr.address_in("web");
    let cni_id = ctr.cni_id("web");
    let row = rows(&sb)
        .into_iter()
        .find(|r| r.0 == format!("cni:{cni_id}"))
        .unwrap_or_else(|| panic!("no row for {cni_id}: {:?}", rows(&sb)));
    assert_eq!(format!("{}/24", row.1), address, "{row:?}");
    let route = ctr.exec_ok("web", "ip -4 route show default");
    assert!(route.contains("via 10.99.0.1 dev eth0"), "{route}");
    let seen = probe_wan(&ctr, "web");
    assert!(seen.starts_with(&format!("from {UPLINK_HOST}:")), "{seen}");

    // What ctr sent: one ADD, for the task's own namespace, in the conflist's version.
    let calls = ctr.cni_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].command, "ADD");
    assert!(
        calls[0].netns.starts_with("/proc/") && calls[0].netns.ends_with("/ns/net"),
        "{calls:?}"
    );
    assert_eq!(calls[0].stdin["cniVersion"], "1.0.0");

    // Foreground: ADD, the command, DEL with no CNI_NETNS.
    let out = ctr.run_foreground(
        "once",
        &format!("ctnet-probe tcp {WAN_SERVER}:7000 --timeout 3"),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with(&format!("from {UPLINK_HOST}:")),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let once: Vec<_> = ctr
        .cni_calls()
        .into_iter()
        .filter(|c| c.container_id == ctr.cni_id("once"))
        .collect();
    assert_eq!(
        once.iter().map(|c| c.command.as_str()).collect::<Vec<_>>(),
        ["ADD", "DEL"]
    );
    assert_eq!(once[1].netns, "", "ctr sends DEL without CNI_NETNS");
    assert!(
        rows(&sb).iter().all(|r| !r.0.contains("once")),
        "{:?}",
        rows(&sb)
    );

    // The detached one: ctr never tells the plugin; its row stays until gc.
    ctr.kill_and_remove("web");
    assert_eq!(ctr.commands_for("web"), ["ADD"]);
    assert_eq!(rows(&sb).len(), 1, "{:?}", rows(&sb));
    support::gc_lets_go_of(&sb, &cni_id);
    drop(ctr);
    sb.ok(&format!("ctnet network rm {NETWORK}"));
    assert_eq!(sb.snapshot(), before);
}

/// containerd's `ctr task kill` + `task rm` + `container rm` of detached containers sends
/// no DEL. What each leaves: its row in ctnet (address held), nothing in the kernel (its
/// namespace was the task's own /proc/PID/ns/net, and the veth went with it). On a /29
/// (five addresses) with three such containers, five new ones all start and get
/// distinct addresses, a lost container's id runs again, and gc releases the rest.
#[test]
fn lost_detached_containers_do_not_block_new_ones() {
    let mut sb = Sandbox::with_host_sys();
    sb.with_wan();
    sb.serve(Some("wan"), "--tcp 7000");
    sb.ok(support::MAKE_DEFAULT_NETWORK);
    let before = sb.snapshot();
    let ctr = Containerd::start(&sb, &conflist("10.99.0.0/29", &[]));

    let lost = ["c1", "c2", "c3"];
    for id in lost {
        ctr.run_detached(id, "sleep 600");
    }
    let held = rows(&sb);
    assert_eq!(held.len(), 3, "{held:?}");
    for id in lost {
        ctr.kill_and_remove(id);
        assert_eq!(
            ctr.commands_for(id),
            ["ADD"],
            "ctr sent more than ADD for {id}"
        );
    }
    // What they leave: the rows (addresses held) and nothing of theirs in the kernel.
    assert_eq!(rows(&sb), held, "the rows of lost containers changed");
    let links = sb.ok("ip -o link show");
    for (_, _, veth) in &held {
        assert!(
            !links.contains(veth.as_str()),
            "{veth} outlived its namespace: {links}"
        );
    }
    assert!(
        sb.ok("ls /run/netns").trim() == "wan",
        "no namespace file either"
    );

    // Five new containers on a subnet with two free addresses: all start.
    let fresh = ["d1", "d2", "d3", "d4", "d5"];
    let mut addresses = Vec::new();
    for id in fresh {
        ctr.run_detached(id, "sleep 600");
        addresses.push(ctr.address_in(id));
    }
    let mut distinct = addresses.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 5, "{addresses:?}");
    for id in fresh {
        let seen = probe_wan(&ctr, id);
        assert!(
            seen.starts_with(&format!("from {UPLINK_HOST}:")),
            "{id}: {seen}"
        );
    }

    // The same name again after a loss: a new namespace for the same CNI container id.
    ctr.kill_and_remove("d1");
    ctr.run_detached("d1", "sleep 600");
    let seen = probe_wan(&ctr, "d1");
    assert!(seen.starts_with(&format!("from {UPLINK_HOST}:")), "{seen}");
    assert_eq!(rows(&sb).len(), 5, "{:?}", rows(&sb));

    // Lose them all; gc lets each go, and the host is as before.
    for id in fresh {
        ctr.kill_and_remove(id);
    }
    let gc = sb.ok("ctnet gc");
    for id in fresh {
        assert!(
            gc.contains(&ctr.cni_id(id)),
            "gc did not release {id}: {gc}"
        );
    }
    assert_eq!(rows(&sb), []);
    drop(ctr);
    sb.ok(&format!("ctnet network rm {NETWORK}"));
    assert_eq!(sb.snapshot(), before);
}

/// The reference `portmap` chained after ctnet, with a static `runtimeConfig.portMappings`
/// in its configuration: the container's port answers from the wan (ctnet's firewall
/// lets portmap's DNAT through), and the foreground run's DEL, through the chain,
/// withdraws it.
#[test]
fn portmap_chained_after_ctnet_answers_from_the_wan() {
    let mut sb = Sandbox::with_host_sys();
    sb.with_wan();
    let portmap = json!({
        "type": "portmap", "capabilities": { "portMappings": true },
        "runtimeConfig": { "portMappings": [
            { "hostPort": 8080, "containerPort": 80, "protocol": "tcp" } ] }
    });
    sb.ok(support::MAKE_DEFAULT_NETWORK);
    let before = sb.snapshot();
    {
        let ctr = Containerd::start(&sb, &conflist("10.99.0.0/24", &[portmap]));
        let server = ctr.start_foreground(
            "web",
            "ctnet-probe serve --tcp 80 --max-seconds 60",
            "ready",
        );
        let _guard = GroupGuard(server.id());
        // The container sees the wan client's own address: DNAT, no masquerade.
        let seen = sb.reach(Some("wan"), "tcp", &format!("{UPLINK_HOST}:8080"));
        assert!(seen.starts_with("from 203.0.113.2:"), "{seen}");
        let add = ctr.cni_calls();
        assert_eq!(add.len(), 1, "{add:?}");
        // portmap found ctnet's result (the container's address) in the chain.
        let nat = sb.ok("iptables -t nat -S");
        let ip = rows(&sb)[0].1.clone();
        assert!(nat.contains(&format!("{ip}:80")), "{nat}");

        ctr.ok("task kill -s KILL web");
        let mut server = server;
        let ended = support::wait_until(Duration::from_secs(20), || {
            matches!(server.try_wait(), Ok(Some(_)))
        });
        assert!(ended, "ctr run did not return after its task was killed");
        assert_eq!(ctr.commands_for("web"), ["ADD", "DEL"]);
        assert!(
            sb.probe(Some("wan"), "tcp", &format!("{UPLINK_HOST}:8080"))
                .is_err(),
            "the port still answers after DEL"
        );
        let nat = sb.ok("iptables -t nat -S");
        assert!(!nat.contains(&format!("{ip}:80")), "{nat}");
        assert_eq!(rows(&sb), []);
    }
    sb.ok(&format!("ctnet network rm {NETWORK}"));
    let after = sb.snapshot();
    // portmap's own chains (CNI-HOSTPORT-*, emptied) stay in iptables' nat tables, as
    // they do with the reference bridge plugin; ctnet's part of the host is as before.
    let without_portmap = |s: &str| -> String {
        let mut s = s.to_string();
        for table in ["table ip nat {", "table ip6 nat {"] {
            if let Some(start) = s.find(table) {
                let end = s[start..].find("\n}\n").map_or(s.len(), |e| start + e + 3);
                s.replace_range(start..end, "");
            }
        }
        s
    };
    assert_eq!(without_portmap(&after), without_portmap(&before), "{after}");
}

/// A port ctnet publishes itself (a static `runtimeConfig.portMappings` in ctnet's own
/// entry) passes from a container ctr lost without DEL to the next one: the clash on the
/// port releases the lost container's row, and the wan reaches the newcomer.
#[test]
fn a_lost_containers_published_port_passes_to_the_next() {
    let mut sb = Sandbox::with_host_sys();
    sb.with_wan();
    let mut conf = conflist("10.99.0.0/24", &[]);
    conf["plugins"][0]["runtimeConfig"] =
        json!({ "portMappings": [{ "hostPort": 9090, "containerPort": 80, "protocol": "tcp" }] });
    let ctr = Containerd::start(&sb, &conf);
    let serve = "ctnet-probe serve --tcp 80 --max-seconds 60";
    let answers = |id: &str| {
        let ip = ctr.address_in(id);
        let ip = ip.split('/').next().unwrap_or_default().to_string();
        support::wait_until(Duration::from_secs(5), || {
            sb.probe(Some("wan"), "tcp", &format!("{UPLINK_HOST}:9090"))
                .is_ok_and(|a| a.starts_with("from 203.0.113.2:"))
        }) && sb
            .ok("nft list map inet ctnet publish_any")
            .contains(&format!("{ip} . 80"))
    };
    ctr.run_detached("first", serve);
    assert!(
        answers("first"),
        "the port never answered for the first container"
    );
    let first = ctr.cni_id("first");
    ctr.kill_and_remove("first");
    assert_eq!(ctr.commands_for("first"), ["ADD"]);
    assert!(
        rows(&sb).iter().any(|r| r.0 == format!("cni:{first}")),
        "{:?}",
        rows(&sb)
    );

    ctr.run_detached("second", serve);
    assert!(
        answers("second"),
        "the port did not pass to the second container"
    );
    let left = rows(&sb);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].0, format!("cni:{}", ctr.cni_id("second")));
}

/// Every result version ctr 1.6's libcni reads (0.3.0, 0.3.1, 0.4.0, 1.0.0): ctnet's
/// result, in the conflist's version, is read by ctr and by portmap chained after it
/// (the port answers from the wan), and DEL goes through. A 1.1.0 conflist is refused
/// by ctr itself after ctnet's ADD ("unsupported CNI result version"): alone, ctr's DEL
/// removes what it made; chained with portmap, the DEL stops at portmap and the row it
/// leaves is released by gc once the failed container is removed.
#[test]
fn conflist_versions_through_ctr() {
    let mut sb = Sandbox::with_host_sys();
    sb.with_wan();
    let portmap = json!({
        "type": "portmap", "capabilities": { "portMappings": true },
        "runtimeConfig": { "portMappings": [
            { "hostPort": 8080, "containerPort": 80, "protocol": "tcp" } ] }
    });
    let ctr = Containerd::start(
        &sb,
        &conflist("10.99.0.0/24", std::slice::from_ref(&portmap)),
    );
    for version in ["0.3.0", "0.3.1", "0.4.0", "1.0.0"] {
        let mut conf = conflist("10.99.0.0/24", std::slice::from_ref(&portmap));
        conf["cniVersion"] = json!(version);
        ctr.set_conflist(&conf);
        let id = format!("v{}", version.replace('.', ""));
        let mut server =
            ctr.start_foreground(&id, "ctnet-probe serve --tcp 80 --max-seconds 60", "ready");
        let _guard = GroupGuard(server.id());
        let seen = sb.reach(Some("wan"), "tcp", &format!("{UPLINK_HOST}:8080"));
        assert!(seen.starts_with("from 203.0.113.2:"), "{version}: {seen}");
        ctr.ok(&format!("task kill -s KILL {id}"));
        let ended = support::wait_until(Duration::from_secs(20), || {
            matches!(server.try_wait(), Ok(Some(_)))
        });
        assert!(ended, "{version}: ctr run did not return");
        assert_eq!(ctr.commands_for(&id), ["ADD", "DEL"], "{version}");
        let add = ctr
            .cni_calls()
            .into_iter()
            .find(|c| c.container_id == ctr.cni_id(&id))
            .expect("ADD");
        assert_eq!(add.stdin["cniVersion"], version);
        assert_eq!(rows(&sb), [], "{version}");
    }
    let mut conf = conflist("10.99.0.0/24", &[]);
    conf["cniVersion"] = json!("1.1.0");
    ctr.set_conflist(&conf);
    let out = ctr.run_foreground("v110", "true");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("unsupported CNI result version \"1.1.0\""),
        "{err}"
    );
    // ctr gives up on the result and sends DEL, which removes what the ADD made.
    assert_eq!(ctr.commands_for("v110"), ["ADD", "DEL"]);
    assert_eq!(rows(&sb), []);
    // With portmap chained, that DEL stops at portmap (which does not speak 1.1.0)
    // before it reaches ctnet: the row is left, and gc releases it.
    let mut conf = conflist("10.99.0.0/24", &[portmap]);
    conf["cniVersion"] = json!("1.1.0");
    ctr.set_conflist(&conf);
    let out = ctr.run_foreground("v110pm", "true");
    assert!(!out.status.success());
    assert_eq!(ctr.commands_for("v110pm"), ["ADD"]);
    // ctr leaves the failed container's task created (its namespace alive) until it is
    // removed by hand.
    assert_eq!(ctr.task_status("v110pm").as_deref(), Some("CREATED"));
    ctr.ok("task rm -f v110pm >/dev/null");
    ctr.ok("container rm v110pm");
    support::gc_lets_go_of(&sb, &ctr.cni_id("v110pm"));
    assert_eq!(rows(&sb), []);
}

/// Runs ctnet's ADD as containerd's CRI does (its CNI_ARGS and a runtimeConfig) for
/// namespace `pod`; returns success and the JSON on stdout.
fn cri_add(sb: &Sandbox, cni_args: &str, runtime_config: &Value) -> (bool, Value) {
    let mut conf = conflist("10.99.0.0/24", &[])["plugins"][0].clone();
    conf["cniVersion"] = json!("1.0.0");
    conf["name"] = json!(NETWORK);
    conf["runtimeConfig"] = runtime_config.clone();
    let out = sb.run(&format!(
        "printf '%s' '{conf}' | CNI_COMMAND=ADD CNI_CONTAINERID=0123abcd CNI_NETNS=/run/netns/pod \
         CNI_IFNAME=eth0 CNI_PATH={} CNI_ARGS='{cni_args}' ctnet",
        support::CNI_PLUGINS
    ));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let value = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.success(), value)
}

/// What containerd's CRI sends (`IgnoreUnknown=1;K8S_POD_*` labels, `IP=`, capabilities
/// with nothing in them) is read: the address asked for, the port published. A key
/// ctnet does not read without IgnoreUnknown (code 4), and a capability ctnet does not
/// do that asks for something (`bandwidth`, code 7), are refused with nothing made,
/// where they were passed over before.
#[test]
fn containerd_cri_arguments_read_or_refused() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.ok("ip netns add pod");
    let before = sb.snapshot();
    let ports = json!([{ "hostPort": 8080, "containerPort": 80, "protocol": "tcp" }]);
    for (args, rc, code, piece) in [
        ("K8S_POD_NAME=web;FOO=1", json!({}), 4, "FOO"),
        (
            "IgnoreUnknown=1",
            json!({ "portMappings": ports, "bandwidth": { "ingressRate": 1000 } }),
            7,
            "runtimeConfig.bandwidth",
        ),
        ("IgnoreUnknown=maybe", json!({}), 4, "IgnoreUnknown"),
    ] {
        let (ok, out) = cri_add(&sb, args, &rc);
        assert!(!ok, "{args} {rc}: accepted: {out}");
        assert_eq!(out["code"], code, "{args} {rc}: {out}");
        assert!(
            out["msg"].as_str().unwrap_or_default().contains(piece),
            "{out}"
        );
        assert_eq!(sb.snapshot(), before, "{args} {rc} changed something");
    }
    let cri = "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;\
               K8S_POD_INFRA_CONTAINER_ID=0123abcd;K8S_POD_UID=1f2e;IP=10.99.0.9";
    let (ok, out) = cri_add(
        &sb,
        cri,
        &json!({ "portMappings": ports, "bandwidth": {}, "dns": {} }),
    );
    assert!(ok, "{out}");
    assert_eq!(sb.addr_of("pod", "eth0"), "10.99.0.9");
    sb.serve(Some("pod"), "--tcp 80");
    let seen = sb.reach(Some("wan"), "tcp", &format!("{UPLINK_HOST}:8080"));
    assert!(seen.starts_with("from 203.0.113.2:"), "{seen}");
}

/// CHECK as libcni (go-cni's `Check`) sends it, with the ADD's result as prevResult:
/// passes while the interface has the result's address, and fails (code 3, naming both)
/// when the result gives another, where the result was not looked at before.
#[test]
fn check_with_prev_result_compares_the_addresses() {
    let sb = Sandbox::new();
    sb.ok("ip netns add pod");
    let (ok, result) = cri_add(&sb, "IgnoreUnknown=1", &json!({}));
    assert!(ok, "{result}");
    let check = |prev: &Value| {
        let mut conf = conflist("10.99.0.0/24", &[])["plugins"][0].clone();
        conf["cniVersion"] = json!("1.0.0");
        conf["name"] = json!(NETWORK);
        conf["prevResult"] = prev.clone();
        let out = sb.run(&format!(
            "printf '%s' '{conf}' | CNI_COMMAND=CHECK CNI_CONTAINERID=0123abcd \
             CNI_NETNS=/run/netns/pod CNI_IFNAME=eth0 CNI_PATH={} ctnet",
            support::CNI_PLUGINS
        ));
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        (out.status.success(), stdout)
    };
    let (ok, out) = check(&result);
    assert!(ok, "{out}");
    let mut moved = result.clone();
    moved["ips"][0]["address"] = json!("10.99.0.77/24");
    let (ok, out) = check(&moved);
    assert!(!ok, "a CHECK whose prevResult gives another address passed");
    let err: Value = serde_json::from_str(&out).expect("error json");
    assert_eq!(err["code"], 3, "{err}");
    let msg = err["msg"].as_str().unwrap_or_default();
    assert!(
        msg.contains("10.99.0.2") && msg.contains("10.99.0.77"),
        "{msg}"
    );
}
