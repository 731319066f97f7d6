//! ctnet as a CNI plugin, driven the way libcni drives plugins: the command and the
//! container in the environment, the configuration on stdin, the result on stdout.

mod support;

use serde_json::{json, Value};
use support::{cni_call, Sandbox, CNI_PLUGINS, MAKE_DEFAULT_NETWORK, UPLINK_HOST, UPLINK_WAN};

fn conf(version: &str) -> Value {
    json!({
        "cniVersion": version,
        "name": "cninet",
        "type": "ctnet",
        "bridge": "cni-ctnet0",
        "ipam": { "type": "ctnet", "subnet": "10.88.0.0/16" },
        "runtimeConfig": { "portMappings": [
            { "hostPort": 8080, "containerPort": 80, "protocol": "tcp" }
        ] }
    })
}

fn expect_error(result: (bool, Value), code: u64) -> Value {
    let (ok, err) = result;
    assert!(!ok, "expected failure with code {code}, got {err}");
    assert_eq!(err["code"], code, "{err}");
    assert!(err["msg"].as_str().is_some_and(|m| !m.is_empty()), "{err}");
    err
}

#[test]
fn version_lists_both_spec_versions() {
    let sb = Sandbox::new();
    let (ok, v) = cni_call(
        &sb,
        "ctnet",
        "VERSION",
        "x",
        "",
        &json!({"cniVersion": "1.1.0"}),
    );
    assert!(ok);
    let versions = v["supportedVersions"].as_array().unwrap();
    assert!(versions.contains(&json!("1.0.0")) && versions.contains(&json!("1.1.0")));
}

#[test]
fn add_check_del_with_a_published_port() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    // The default network (made on first attach) and ctnet's table exist already,
    // so the snapshot holds them.
    sb.ok(&format!("{MAKE_DEFAULT_NETWORK} && ip netns add pod1"));
    let before = sb.snapshot();
    let (ok, result) = cni_call(
        &sb,
        "ctnet",
        "ADD",
        "pod1id",
        "/run/netns/pod1",
        &conf("1.0.0"),
    );
    assert!(ok, "{result}");
    assert_eq!(result["cniVersion"], "1.0.0");
    assert_eq!(result["ips"][0]["address"], "10.88.0.2/16");
    assert_eq!(result["ips"][0]["gateway"], "10.88.0.1");
    let container_if = result["ips"][0]["interface"].as_u64().unwrap() as usize;
    assert_eq!(result["interfaces"][container_if]["name"], "eth0");
    assert_eq!(
        result["interfaces"][container_if]["sandbox"],
        "/run/netns/pod1"
    );
    assert_eq!(result["routes"][0]["dst"], "0.0.0.0/0");
    // Real traffic: the wan reaches the published port, the container the wan.
    sb.serve(Some("pod1"), "--tcp 80");
    let seen = sb.reach(Some("wan"), "tcp", &format!("{UPLINK_HOST}:8080"));
    assert!(seen.starts_with(&format!("from {UPLINK_WAN}:")), "{seen}");

    let (ok, out) = cni_call(
        &sb,
        "ctnet",
        "CHECK",
        "pod1id",
        "/run/netns/pod1",
        &conf("1.0.0"),
    );
    assert!(ok, "{out}");
    // A published port gone from ctnet's maps is caught, and gc puts it back.
    sb.ok("nft delete element inet ctnet publish_any '{ tcp . 8080 }'");
    let err = expect_error(
        cni_call(
            &sb,
            "ctnet",
            "CHECK",
            "pod1id",
            "/run/netns/pod1",
            &conf("1.0.0"),
        ),
        3,
    );
    assert!(err["msg"].as_str().unwrap().contains("8080"), "{err}");
    sb.ok("ctnet gc");
    assert!(
        cni_call(
            &sb,
            "ctnet",
            "CHECK",
            "pod1id",
            "/run/netns/pod1",
            &conf("1.0.0")
        )
        .0
    );
    sb.ok("ip -n pod1 link set eth0 down");
    let err = expect_error(
        cni_call(
            &sb,
            "ctnet",
            "CHECK",
            "pod1id",
            "/run/netns/pod1",
            &conf("1.0.0"),
        ),
        3,
    );
    assert!(
        err["msg"].as_str().unwrap().contains("eth0 is down"),
        "{err}"
    );

    for _ in 0..2 {
        let (ok, out) = cni_call(
            &sb,
            "ctnet",
            "DEL",
            "pod1id",
            "/run/netns/pod1",
            &conf("1.0.0"),
        );
        assert!(ok, "{out}");
    }
    // DEL after the namespace is gone, and without CNI_NETNS at all, still succeeds.
    sb.ok("ip netns del pod1");
    assert!(
        cni_call(
            &sb,
            "ctnet",
            "DEL",
            "pod1id",
            "/run/netns/pod1",
            &conf("1.0.0")
        )
        .0
    );
    assert!(cni_call(&sb, "ctnet", "DEL", "pod1id", "", &conf("1.0.0")).0);
    sb.ok("ip netns add pod1");
    // Only the network made on first use remains; remove it to compare with before.
    sb.ok("ctnet network rm cninet");
    assert_eq!(sb.snapshot(), before);
}

#[test]
fn errors_carry_the_spec_codes() {
    let sb = Sandbox::new();
    sb.ok("ip netns add pod1 && ip netns add pod2 && ip netns add pod3");
    let garbage = sb.run(
        "printf 'not json' | CNI_COMMAND=ADD CNI_CONTAINERID=x CNI_NETNS=/run/netns/pod1 CNI_IFNAME=eth0 ctnet",
    );
    assert!(!garbage.status.success());
    let err: Value = serde_json::from_slice(&garbage.stdout).unwrap();
    assert_eq!(err["code"], 6, "{err}");
    expect_error(
        cni_call(&sb, "ctnet", "ADD", "x", "/run/netns/pod1", &conf("9.9.9")),
        1,
    );
    expect_error(cni_call(&sb, "ctnet", "ADD", "x", "", &conf("1.0.0")), 4);
    let mut missing_ipam = conf("1.0.0");
    missing_ipam["ipam"] = json!({"type": "no-such-ipam"});
    let err = expect_error(
        cni_call(&sb, "ctnet", "ADD", "x", "/run/netns/pod1", &missing_ipam),
        7,
    );
    assert!(
        err["msg"].as_str().unwrap().contains("not in CNI_PATH"),
        "{err}"
    );
    // A /30 has one address for containers after the gateway.
    let mut tiny = conf("1.0.0");
    tiny["name"] = json!("tiny");
    tiny["bridge"] = json!("cni-tiny0");
    tiny["ipam"] = json!({"type": "ctnet", "subnet": "10.99.0.0/30"});
    tiny["runtimeConfig"] = json!({});
    assert!(cni_call(&sb, "ctnet", "ADD", "a", "/run/netns/pod2", &tiny).0);
    let err = expect_error(
        cni_call(&sb, "ctnet", "ADD", "b", "/run/netns/pod3", &tiny),
        100,
    );
    assert!(err["details"].as_str().is_some(), "{err}");
}

#[test]
fn chained_with_the_reference_tuning_plugin() {
    let mut sb = Sandbox::new();
    sb.ok("ip netns add pod1 && ip netns add pod2");
    let mut first = conf("1.0.0");
    first["runtimeConfig"] = json!({});
    let (ok, result) = cni_call(&sb, "ctnet", "ADD", "p1", "/run/netns/pod1", &first);
    assert!(ok, "{result}");
    let tuning = json!({
        "cniVersion": "1.0.0", "name": "cninet", "type": "tuning",
        "mtu": 1400, "prevResult": result,
    });
    let (ok, tuned) = cni_call(
        &sb,
        &format!("{CNI_PLUGINS}/tuning"),
        "ADD",
        "p1",
        "/run/netns/pod1",
        &tuning,
    );
    assert!(ok, "tuning failed: {tuned}");
    assert_eq!(
        tuned["ips"], result["ips"],
        "tuning passes ctnet's result on"
    );
    assert!(sb.ok("ip -n pod1 link show eth0").contains("mtu 1400"));
    // ctnet after another plugin keeps that plugin's result first.
    let mut second = first.clone();
    second["prevResult"] =
        json!({"cniVersion": "1.0.0", "interfaces": [{"name": "lo0"}], "ips": []});
    let (ok, chained) = cni_call(&sb, "ctnet", "ADD", "p2", "/run/netns/pod2", &second);
    assert!(ok, "{chained}");
    assert_eq!(chained["interfaces"][0]["name"], "lo0");
    assert_eq!(chained["ips"][0]["interface"], 3);
    sb.serve(Some("pod2"), "--tcp 80");
    sb.reach(Some("pod1"), "tcp", "10.88.0.3:80");
    // DEL runs in reverse order: tuning, then ctnet.
    assert!(
        cni_call(
            &sb,
            &format!("{CNI_PLUGINS}/tuning"),
            "DEL",
            "p1",
            "/run/netns/pod1",
            &tuning
        )
        .0
    );
    assert!(cni_call(&sb, "ctnet", "DEL", "p1", "/run/netns/pod1", &first).0);
}

#[test]
fn gc_removes_attachments_not_in_the_valid_list() {
    let sb = Sandbox::new();
    sb.ok("ip netns add pod1 && ip netns add pod2");
    let mut c = conf("1.1.0");
    c["runtimeConfig"] = json!({});
    assert!(cni_call(&sb, "ctnet", "ADD", "keep", "/run/netns/pod1", &c).0);
    assert!(cni_call(&sb, "ctnet", "ADD", "stale", "/run/netns/pod2", &c).0);
    let mut gc = c.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "keep", "ifname": "eth0"}]);
    let (ok, out) = cni_call(&sb, "ctnet", "GC", "", "", &gc);
    assert!(ok, "{out}");
    let listed = sb.ok("ctnet ls");
    assert!(
        listed.contains("cni:keep") && !listed.contains("cni:stale"),
        "{listed}"
    );
    assert!(sb
        .fails("ip -n pod2 link show eth0")
        .contains("does not exist"));
    assert!(cni_call(&sb, "ctnet", "STATUS", "", "", &c).0);
}

#[test]
fn concurrent_adds_make_the_network_once() {
    let sb = Sandbox::new();
    let mut c = conf("1.0.0");
    c["runtimeConfig"] = json!({});
    let conf_text = c.to_string();
    sb.ok(&format!(
        "for i in $(seq 1 12); do ip netns add p$i; done; pids=''; for i in $(seq 1 12); do \
           printf '%s' '{conf_text}' | CNI_COMMAND=ADD CNI_CONTAINERID=c$i CNI_NETNS=/run/netns/p$i \
             CNI_IFNAME=eth0 ctnet >/dev/null & pids=\"$pids $!\"; done; \
         rc=0; for p in $pids; do wait $p || rc=1; done; exit $rc"
    ));
    let nets: Value = serde_json::from_str(&sb.ok("ctnet network ls --format json")).unwrap();
    let named: Vec<_> = nets
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["name"] == "cninet")
        .collect();
    assert_eq!(named.len(), 1, "{nets}");
    assert_eq!(named[0]["containers"].as_array().unwrap().len(), 12);
    let rows: Value = serde_json::from_str(&sb.ok("ctnet ls --format json")).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 12);
    for i in 1..=12 {
        sb.ok(&format!(
            "ip netns exec p{i} ping -c1 -W2 10.88.0.1 >/dev/null"
        ));
    }
}

#[test]
fn ipam_delegated_to_host_local() {
    let mut sb = Sandbox::new();
    sb.ok("ip netns add pod1 && ip netns add pod2");
    let data = format!("{}/ipam", sb.ok("printf %s \"$CTNET_RUN_DIR\"").trim());
    let mut c = conf("1.0.0");
    c["name"] = json!("hl");
    c["bridge"] = json!("cni-hl0");
    c["runtimeConfig"] = json!({});
    c["ipam"] = json!({
        "type": "host-local", "subnet": "10.90.0.0/24", "gateway": "10.90.0.1",
        "dataDir": data,
    });
    let (ok, r1) = cni_call(&sb, "ctnet", "ADD", "a", "/run/netns/pod1", &c);
    assert!(ok, "{r1}");
    let (ok, r2) = cni_call(&sb, "ctnet", "ADD", "b", "/run/netns/pod2", &c);
    assert!(ok, "{r2}");
    let a = r1["ips"][0]["address"].as_str().unwrap().to_string();
    let b = r2["ips"][0]["address"].as_str().unwrap().to_string();
    assert!(
        a.starts_with("10.90.0.") && b.starts_with("10.90.0.") && a != b,
        "{a} {b}"
    );
    // The address host-local leased is the one on the interface, and traffic flows.
    assert_eq!(format!("{}/24", sb.addr_of("pod2", "eth0")), b);
    sb.serve(Some("pod2"), "--tcp 80");
    let b_ip = b.split('/').next().unwrap();
    sb.reach(Some("pod1"), "tcp", &format!("{b_ip}:80"));
    // DEL releases the lease in host-local's store too.
    let leases = format!("ls {data}/hl");
    assert!(sb.ok(&leases).contains(b_ip));
    assert!(cni_call(&sb, "ctnet", "DEL", "b", "/run/netns/pod2", &c).0);
    assert!(!sb.ok(&leases).contains(b_ip), "{}", sb.ok(&leases));
}

/// A network with ctnet's DNS (`"ctnetDns": true`): the result's `dns` has the gateway
/// first among the configuration's own nameservers (the rest of its `dns` as given), the
/// pods resolve each other by `K8S_POD_NAME` and by the `aliases` capability from their
/// namespaces, and DEL takes the name away. Without the key the configuration's `dns`
/// passes through unchanged and an alias is refused, nothing made.
#[test]
fn a_dns_network_names_its_gateway_in_the_result_and_serves_pod_names() {
    let sb = Sandbox::new();
    sb.ok("ip netns add pa && ip netns add pb && ip netns add pc");
    let dns = json!({ "nameservers": ["10.0.0.53"], "search": ["corp.example"] });
    let mut c = conf("1.0.0");
    c["name"] = json!("dnsnet");
    c["bridge"] = json!("cni-dns0");
    c["ipam"] = json!({ "type": "ctnet", "subnet": "10.92.0.0/24" });
    c["ctnetDns"] = json!(true);
    c["dns"] = dns.clone();
    c["runtimeConfig"] = json!({ "aliases": { "dnsnet": ["alias-a"] } });
    let args = |pod: &str| format!("CNI_ARGS='IgnoreUnknown=1;K8S_POD_NAME={pod}' ctnet");
    let (ok, ra) = cni_call(&sb, &args("pa"), "ADD", "ida", "/run/netns/pa", &c);
    assert!(ok, "{ra}");
    assert_eq!(
        ra["dns"],
        json!({ "nameservers": ["10.92.0.1", "10.0.0.53"], "search": ["corp.example"] })
    );
    c["runtimeConfig"] = json!({});
    let (ok, rb) = cni_call(&sb, &args("pb"), "ADD", "idb", "/run/netns/pb", &c);
    assert!(ok, "{rb}");
    let ip_a = sb.addr_of("pa", "eth0");
    let ip_b = sb.addr_of("pb", "eth0");
    let dig = |from: &str, name: &str| {
        sb.run(&format!(
            "ip netns exec {from} dig +short +time=1 +tries=2 @10.92.0.1 {name} A"
        ))
    };
    let answers = |from: &str, name: &str, ip: &str| {
        support::wait_until(std::time::Duration::from_secs(3), || {
            String::from_utf8_lossy(&dig(from, name).stdout).trim() == ip
        })
    };
    assert!(answers("pb", "pa", &ip_a), "pa from pb");
    assert!(answers("pa", "pb", &ip_b), "pb from pa");
    assert!(answers("pb", "alias-a", &ip_a), "alias-a from pb");
    assert!(cni_call(&sb, "ctnet", "DEL", "ida", "/run/netns/pa", &c).0);
    assert!(
        support::wait_until(std::time::Duration::from_secs(3), || {
            String::from_utf8_lossy(&dig("pb", "pa").stdout)
                .trim()
                .is_empty()
        }),
        "pa still resolves after its DEL"
    );

    // No ctnetDns: the configuration's dns as it is; an alias is refused, nothing made.
    let mut plain = conf("1.0.0");
    plain["name"] = json!("plainnet");
    plain["bridge"] = json!("cni-plain0");
    plain["ipam"] = json!({ "type": "ctnet", "subnet": "10.93.0.0/24" });
    plain["dns"] = dns.clone();
    plain["runtimeConfig"] = json!({});
    let (ok, rc) = cni_call(&sb, &args("pc"), "ADD", "idc", "/run/netns/pc", &plain);
    assert!(ok, "{rc}");
    assert_eq!(rc["dns"], dns);
    assert!(cni_call(&sb, "ctnet", "DEL", "idc", "/run/netns/pc", &plain).0);
    let before = sb.snapshot();
    plain["runtimeConfig"] = json!({ "aliases": { "plainnet": ["web"] } });
    let err = expect_error(
        cni_call(&sb, "ctnet", "ADD", "idc", "/run/netns/pc", &plain),
        7,
    );
    assert!(err["msg"].as_str().unwrap().contains("DNS off"), "{err}");
    assert!(
        err["details"].as_str().unwrap().contains("ctnetDns"),
        "{err}"
    );
    assert_eq!(sb.snapshot(), before);
}

/// Labels by the CNI `args` convention (`args.cni.labels`) are the container's, and a
/// policy selects it by them: only the labelled client reaches the selected server,
/// over the bridge, with the namespace's br_netfilter sysctl off.
#[test]
fn labels_from_args_are_selected_by_policies() {
    let mut sb = Sandbox::new();
    sb.ok("echo 0 > /proc/sys/net/bridge/bridge-nf-call-iptables && \
           ip netns add srv && ip netns add cli && ip netns add other");
    let with_labels = |labels: Value| {
        let mut c = conf("1.1.0");
        c["runtimeConfig"] = json!({});
        c["args"] = json!({ "cni": { "labels": labels } });
        c
    };
    let add = |id: &str, labels: Value| {
        let (ok, out) = cni_call(
            &sb,
            "ctnet",
            "ADD",
            id,
            &format!("/run/netns/{id}"),
            &with_labels(labels),
        );
        assert!(ok, "{id}: {out}");
        out["ips"][0]["address"]
            .as_str()
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string()
    };
    let server = add("srv", json!([{ "key": "app", "value": "db" }]));
    let client = add(
        "cli",
        json!([{ "key": "app", "value": "web" }, { "key": "tier", "value": "1" }]),
    );
    add("other", json!([]));
    let rows: Value = serde_json::from_str(&sb.ok("ctnet ls --format json")).unwrap();
    let cli = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["container"] == "cni:cli")
        .unwrap();
    assert_eq!(
        cli["labels"],
        json!({ "app": "web", "tier": "1" }),
        "{rows}"
    );
    sb.serve(Some("srv"), "--tcp 5432");
    let target = format!("{server}:5432");
    sb.reach(Some("other"), "tcp", &target);
    sb.ok("ctnet policy add db-in --network cninet --to app=db --from app=web,tier=1 --port 5432");
    let seen = sb.reach(Some("cli"), "tcp", &target);
    assert!(
        seen.starts_with(&format!("from {client}:")),
        "the server sees the client's own address: {seen}"
    );
    assert!(
        sb.probe(Some("other"), "tcp", &target).is_err(),
        "other is not admitted"
    );
    let (ok, err) = cni_call(
        &sb,
        "ctnet",
        "ADD",
        "bad",
        "/run/netns/other",
        &with_labels(json!([{ "key": "my key", "value": "v" }])),
    );
    assert!(
        !ok && err["msg"].as_str().unwrap_or("").contains("label key"),
        "{err}"
    );
}
