//! `ctnet topology`: three networks, six containers, one of them on two networks and
//! with a published port. Every bridge, veth, namespace and interface the kernel has
//! (counted with `ip`) appears exactly once in the JSON; the text tree matches the
//! golden file `tests/golden/topology.txt` (veth names, which are random, replaced by
//! `VETH`); the SVG is well-formed XML naming every object; Graphviz text names them
//! too; objects only one side has are marked; an unknown format is refused.
//!
//! After a change to the text form on purpose, write the golden file again with
//! `CTNET_UPDATE_GOLDEN=1 cargo test -p ctnet --test topology`.

mod support;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;
use support::Sandbox;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/topology.txt");

fn topology(sb: &Sandbox) -> Value {
    let out = sb.ok("ctnet topology --format json");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap().to_string())
        .collect()
}

/// The names `ip OPTIONS -o link show ARGS` lists (without the `@peer` suffix).
fn kernel_links(sb: &Sandbox, options: &str, args: &str) -> BTreeSet<String> {
    sb.ok(&format!("ip {options} -o link show {args}"))
        .lines()
        .map(|l| {
            let name = l.split(": ").nth(1).expect("ip -o link line");
            name.split('@').next().unwrap().to_string()
        })
        .collect()
}

/// Asserts that `listed` holds each name once and exactly the names of `kernel`.
fn once_each(what: &str, listed: &[String], kernel: &BTreeSet<String>) {
    let unique: BTreeSet<String> = listed.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        listed.len(),
        "{what} listed twice: {listed:?}"
    );
    assert_eq!(&unique, kernel, "{what}: topology against the kernel");
}

fn well_formed_xml(svg: &str) -> Result<(), String> {
    let mut python = Command::new("python3")
        .args([
            "-c",
            "import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.stdin)",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    python
        .stdin
        .take()
        .unwrap()
        .write_all(svg.as_bytes())
        .unwrap();
    let out = python.wait_with_output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn xml_escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[test]
fn topology_of_three_networks_and_six_containers_shows_every_kernel_object_once() {
    let sb = Sandbox::new();
    sb.ok("set -e; \
         ctnet network create blue --subnet 10.71.1.0/24 --bridge br-blue >/dev/null; \
         ctnet network create green --subnet 10.71.2.0/24 --bridge br-green >/dev/null; \
         ctnet network create red --subnet 10.71.3.0/24 --bridge br-red >/dev/null; \
         for c in c1 c2 c3 c4 c5 c6; do ctnet netns add $c >/dev/null; done; \
         ctnet attach blue c1 -p 8080:80 >/dev/null; ctnet attach blue c2 >/dev/null; \
         ctnet attach green c3 >/dev/null; ctnet attach green c4 >/dev/null; \
         ctnet attach red c5 >/dev/null; ctnet attach red c6 >/dev/null; \
         ctnet attach green c1 >/dev/null");
    let t = topology(&sb);

    // Every kernel object once, the same as `ip` counts them.
    once_each(
        "bridges",
        &names(&t["bridges"]),
        &kernel_links(&sb, "", "type bridge"),
    );
    once_each(
        "veths",
        &names(&t["veths"]),
        &kernel_links(&sb, "", "type veth"),
    );
    let netns: BTreeSet<String> = sb
        .ok("ip netns list")
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    once_each("namespaces", &names(&t["namespaces"]), &netns);
    assert_eq!(netns.len(), 6);
    assert_eq!(t["veths"].as_array().unwrap().len(), 7);
    let mut interfaces = 0;
    for ns in t["namespaces"].as_array().unwrap() {
        let name = ns["name"].as_str().unwrap();
        once_each(
            &format!("interfaces of {name}"),
            &names(&ns["interfaces"]),
            &kernel_links(&sb, &format!("-n {name}"), ""),
        );
        interfaces += ns["interfaces"].as_array().unwrap().len();
    }
    // And all of them at once, as `ip -all netns exec` walks the namespaces.
    let all = sb.ok("ip -all netns exec ip -o link show");
    assert_eq!(
        all.lines()
            .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
            .count(),
        interfaces,
        "{all}"
    );

    // c1, on two networks, is one namespace with two interfaces.
    let c1 = &t["namespaces"][0];
    assert_eq!(c1["name"], "c1");
    let nets: Vec<&str> = c1["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["network"].as_str())
        .collect();
    assert_eq!(nets, ["blue", "green"], "{c1:#}");
    // Each veth's peer is the interface the kernel pairs it with (IFLA_LINK).
    for v in t["veths"].as_array().unwrap() {
        assert_eq!(v["presence"], "present", "{v:#}");
        let peer = &v["peer"];
        let ns = t["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == peer["namespace"])
            .unwrap();
        let iface = ns["interfaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == peer["ifname"])
            .unwrap();
        assert_eq!(v["peer_index"], iface["index"], "{v:#} {iface:#}");
        assert_eq!(iface["host_side"], v["name"]);
    }
    assert_eq!(t["ports"][0]["published"], "0.0.0.0:8080->80/tcp");
    assert_eq!(t["ports"][0]["container"], "c1");
    assert_eq!(t["ports"][0]["in_kernel"], true);

    // The text form, against the golden file (veth names are random).
    let mut text = sb.ok("ctnet topology");
    assert_eq!(
        text,
        sb.ok("ctnet topology --format text"),
        "text is the default"
    );
    for v in names(&t["veths"]) {
        assert_eq!(text.matches(&v).count(), 1, "{v} not once in:\n{text}");
        text = text.replace(&v, "VETH");
    }
    if std::env::var_os("CTNET_UPDATE_GOLDEN").is_some() {
        std::fs::write(GOLDEN, &text).unwrap();
    }
    let golden = std::fs::read_to_string(GOLDEN).expect("the golden file");
    assert_eq!(
        text, golden,
        "the text form changed; the golden file is {GOLDEN}"
    );

    // The SVG: well-formed, naming every object.
    let svg = sb.ok("ctnet topology --format svg");
    well_formed_xml(&svg).unwrap_or_else(|e| panic!("not well-formed XML: {e}\n{svg}"));
    let dot = sb.ok("ctnet topology --format dot");
    assert!(dot.starts_with("graph topology {"), "{dot}");
    let mut every: Vec<String> = Vec::new();
    for list in ["networks", "bridges", "veths", "namespaces"] {
        every.extend(names(&t[list]));
    }
    for ns in t["namespaces"].as_array().unwrap() {
        for i in ns["interfaces"].as_array().unwrap() {
            for a in i["addresses"].as_array().unwrap() {
                every.push(a.as_str().unwrap().to_string());
            }
        }
    }
    every.push("0.0.0.0:8080->80/tcp".into());
    for name in &every {
        assert!(
            svg.contains(&xml_escaped(name)),
            "{name} not in the SVG:\n{svg}"
        );
        if !name.starts_with("0.0.0.0") {
            assert!(dot.contains(name.as_str()), "{name} not in the dot:\n{dot}");
        }
    }
}

#[test]
fn topology_marks_what_only_the_store_or_only_the_kernel_has_and_refuses_an_unknown_format() {
    let sb = Sandbox::new();
    sb.ok(
        "set -e; ctnet network create blue --subnet 10.72.1.0/24 --bridge br-blue >/dev/null; \
         ctnet netns add c1 >/dev/null; ctnet netns add c2 >/dev/null; \
         ctnet attach blue c1 >/dev/null; ctnet attach blue c2 >/dev/null",
    );
    let t = topology(&sb);
    let c2_veth = t["veths"][1]["name"].as_str().unwrap().to_string();
    assert_eq!(t["veths"][1]["peer"]["namespace"], "c2");
    // By hand: c2's veth deleted, a ctnet-named bridge and a namespace nobody attached.
    sb.ok(&format!(
        "ip link del {c2_veth} && ip link add br-0123456789ab type bridge && ip netns add lonely"
    ));
    let t = topology(&sb);
    let find = |list: &str, name: &str| -> Value {
        t[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in {list}: {t:#}"))
            .clone()
    };
    assert_eq!(find("veths", &c2_veth)["presence"], "missing");
    assert_eq!(find("bridges", "br-0123456789ab")["presence"], "unrecorded");
    assert_eq!(find("bridges", "br-blue")["presence"], "present");
    assert_eq!(find("namespaces", "lonely")["presence"], "foreign");
    let c2 = find("namespaces", "c2");
    let eth0 = c2["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "eth0")
        .unwrap();
    assert_eq!(
        eth0["presence"], "missing",
        "the peer went with the veth: {c2:#}"
    );
    let text = sb.ok("ctnet topology");
    for piece in [
        format!("veth {c2_veth} ⇄ c2 eth0  [MISSING from the kernel]"),
        "bridge br-0123456789ab  [not in ctnet's store]".to_string(),
        "lonely (/run/netns/lonely)  [nothing attached]".to_string(),
        "eth0 10.72.1.3/24 (network blue)  [MISSING from the kernel]".to_string(),
    ] {
        assert!(text.contains(&piece), "{piece:?} not in:\n{text}");
    }
    let svg = sb.ok("ctnet topology --format svg");
    well_formed_xml(&svg).unwrap();
    assert!(svg.contains("MISSING"), "{svg}");

    let err = sb.fails("ctnet topology --format png");
    assert!(
        err.contains("invalid value 'png'") && err.contains("text, dot, svg, json"),
        "{err}"
    );
}

#[test]
fn topology_only_reads_even_on_a_fresh_host() {
    let sb = Sandbox::new();
    let before = sb.snapshot();
    let text = sb.ok(
        "ctnet topology && ctnet topology --format dot >/dev/null && \
         ctnet topology --format svg >/dev/null && ctnet topology --format json >/dev/null",
    );
    assert!(
        text.starts_with("0 networks, 0 bridges, 0 veths, 0 namespaces (0 attached)"),
        "{text}"
    );
    assert_eq!(sb.snapshot(), before, "ctnet topology changed something");
}
