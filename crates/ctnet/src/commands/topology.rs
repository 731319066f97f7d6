//! `ctnet topology`: the engine's [`Topology`] as a tree in the terminal, as Graphviz
//! text, as an SVG picture drawn here ([`svg`]), or as JSON. Every renderer is a pure
//! function of the value; the text form leaves out what changes from run to run on an
//! unchanged setup (MACs, interface indexes, namespace inodes, IPv6 link-local
//! addresses), so it can be compared with a golden file.

mod svg;

use std::fmt::Write as _;

use ctnet_engine::observe::topology::{NamespaceNode, Presence, Topology, VethNode};
use ctnet_engine::{Engine, Result};

use crate::cli::{TopologyArgs, TopologyFormat};
use crate::output;

pub fn topology(engine: &mut Engine, args: TopologyArgs) -> Result<()> {
    let view = engine.topology()?;
    match args.format {
        TopologyFormat::Text => print!("{}", render_text(&view)),
        TopologyFormat::Dot => print!("{}", render_dot(&view)),
        TopologyFormat::Svg => print!("{}", svg::render(&view)),
        TopologyFormat::Json => output::json(&view),
    }
    Ok(())
}

/// One line of the tree and the lines under it.
struct Node {
    label: String,
    children: Vec<Node>,
}

impl Node {
    fn leaf(label: impl Into<String>) -> Node {
        Node {
            label: label.into(),
            children: Vec::new(),
        }
    }
}

/// Draws `nodes` under `prefix` with box-drawing branches.
fn draw(out: &mut String, nodes: &[Node], prefix: &str) {
    for (i, n) in nodes.iter().enumerate() {
        let last = i + 1 == nodes.len();
        let _ = writeln!(
            out,
            "{prefix}{}{}",
            if last { "└─ " } else { "├─ " },
            n.label
        );
        let deeper = format!("{prefix}{}", if last { "   " } else { "│  " });
        draw(out, &n.children, &deeper);
    }
}

/// What the text says of an object only one side has.
fn mark(presence: Presence) -> &'static str {
    match presence {
        Presence::Present => "",
        Presence::Missing => "  [MISSING from the kernel]",
        Presence::Unrecorded => "  [not in ctnet's store]",
        Presence::Foreign => "  [not ctnet's]",
    }
}

/// Addresses worth reading: not the IPv6 link-local ones the kernel derives from a MAC.
fn shown_addresses(addresses: &[String]) -> String {
    addresses
        .iter()
        .filter(|a| !a.starts_with("fe80:"))
        .cloned()
        .collect::<Vec<_>>()
        .join(" ")
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn veth_line(v: &VethNode) -> String {
    let peer = match &v.peer {
        Some(p) => format!(" ⇄ {} {}", p.namespace, p.ifname),
        None => String::new(),
    };
    format!("veth {}{peer}{}", v.name, mark(v.presence))
}

fn namespace_node(ns: &NamespaceNode) -> Node {
    let mut label = ns.name.clone();
    if ns.path.to_str() != Some(ns.name.as_str()) {
        let _ = write!(label, " ({})", ns.path.display());
    }
    label.push_str(match ns.presence {
        Presence::Missing => "  [MISSING: the namespace is gone]",
        Presence::Foreign => "  [nothing attached]",
        _ => "",
    });
    let mut children: Vec<Node> = ns
        .interfaces
        .iter()
        .map(|i| {
            let mut line = i.name.clone();
            let addresses = shown_addresses(&i.addresses);
            if !addresses.is_empty() {
                let _ = write!(line, " {addresses}");
            }
            if let Some(net) = &i.network {
                let _ = write!(line, " (network {net})");
            }
            if i.presence == Presence::Missing {
                line.push_str(mark(Presence::Missing));
            }
            Node::leaf(line)
        })
        .collect();
    if let Some(e) = &ns.error {
        if ns.presence != Presence::Missing {
            children.push(Node::leaf(format!("cannot look inside: {e}")));
        }
    }
    Node { label, children }
}

/// The tree: the host namespace's devices (bridges with their veth ports), the
/// namespaces with their interfaces, the networks and the published ports.
pub fn render_text(t: &Topology) -> String {
    let mut out = String::new();
    let attached = t
        .namespaces
        .iter()
        .filter(|n| n.presence != Presence::Foreign)
        .count();
    let _ = writeln!(
        out,
        "{}, {}, {}, {} ({} attached), {}",
        plural(t.networks.len(), "network", "networks"),
        plural(t.bridges.len(), "bridge", "bridges"),
        plural(t.veths.len(), "veth", "veths"),
        plural(t.namespaces.len(), "namespace", "namespaces"),
        attached,
        plural(t.ports.len(), "published port", "published ports"),
    );

    let mut host = Vec::new();
    for b in &t.bridges {
        let mut label = format!("bridge {}", b.name);
        if let Some(net) = &b.network {
            let _ = write!(label, " (network {net})");
        }
        let addresses = shown_addresses(&b.addresses);
        if !addresses.is_empty() {
            let _ = write!(label, " {addresses}");
        }
        label.push_str(mark(b.presence));
        let mut children: Vec<Node> = t
            .veths
            .iter()
            .filter(|v| v.bridge.as_deref() == Some(b.name.as_str()))
            .map(|v| Node::leaf(veth_line(v)))
            .collect();
        children.extend(
            t.vxlans
                .iter()
                .filter(|x| x.bridge.as_deref() == Some(b.name.as_str()))
                .map(|x| Node::leaf(vxlan_line(x))),
        );
        host.push(Node { label, children });
    }
    let on_a_bridge =
        |name: Option<&str>| name.is_some_and(|n| t.bridges.iter().any(|b| b.name == n));
    host.extend(
        t.veths
            .iter()
            .filter(|v| !on_a_bridge(v.bridge.as_deref()))
            .map(|v| Node::leaf(veth_line(v))),
    );
    host.extend(
        t.vxlans
            .iter()
            .filter(|x| !on_a_bridge(x.bridge.as_deref()))
            .map(|x| Node::leaf(vxlan_line(x))),
    );
    let _ = writeln!(out, "host");
    draw(&mut out, &host, "");

    let _ = writeln!(out, "namespaces");
    let namespaces: Vec<Node> = t.namespaces.iter().map(namespace_node).collect();
    draw(&mut out, &namespaces, "");

    let _ = writeln!(out, "networks");
    let networks: Vec<Node> = t
        .networks
        .iter()
        .map(|n| {
            let mut label = format!("{} ({}", n.name, n.driver);
            if let Some(b) = &n.bridge {
                let _ = write!(label, " {b}");
            }
            if let Some(p) = &n.parent {
                let _ = write!(label, " on {p}");
            }
            label.push(')');
            if n.internal {
                label.push_str(" internal");
            }
            for s in &n.subnets {
                let _ = write!(label, " {} gateway {}", s.subnet, s.gateway);
            }
            if n.subnets.is_empty() {
                label.push_str(" no addresses (ipam none)");
            }
            if n.state.as_str() != "ready" {
                let _ = write!(label, " [{}]", n.state.as_str());
            }
            Node::leaf(label)
        })
        .collect();
    draw(&mut out, &networks, "");

    if !t.ports.is_empty() {
        let _ = writeln!(out, "published ports");
        let ports: Vec<Node> = t
            .ports
            .iter()
            .map(|p| {
                Node::leaf(format!(
                    "{} → {} {} (network {}){}",
                    p.published,
                    p.container,
                    p.to,
                    p.network,
                    if p.in_kernel {
                        ""
                    } else {
                        "  [element MISSING from ctnet's table]"
                    }
                ))
            })
            .collect();
        draw(&mut out, &ports, "");
    }
    out
}

fn vxlan_line(x: &ctnet_engine::observe::topology::VxlanNode) -> String {
    let mut line = format!("vxlan {}", x.name);
    if !x.remotes.is_empty() {
        let remotes: Vec<String> = x.remotes.iter().map(|r| r.to_string()).collect();
        let _ = write!(line, " remotes {}", remotes.join(" "));
    }
    line
}

/// A Graphviz string: quoted, with `"` and `\` escaped.
fn dot_quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn dot_style(presence: Presence) -> &'static str {
    match presence {
        Presence::Present => "",
        Presence::Missing => ", style=dashed, color=red",
        Presence::Unrecorded => ", style=dashed, color=orange",
        Presence::Foreign => ", color=gray",
    }
}

/// Graphviz text (`ctnet topology --format dot | dot -Tpng`): the host namespace and
/// each container namespace a cluster; edges for bridge ports and veth pairs.
pub fn render_dot(t: &Topology) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "graph topology {{");
    let _ = writeln!(out, "  rankdir=TB;");
    let _ = writeln!(out, "  node [shape=box, fontname=\"monospace\"];");
    let _ = writeln!(out, "  subgraph cluster_host {{");
    let _ = writeln!(out, "    label=\"host\";");
    for b in &t.bridges {
        let mut label = format!("bridge {}", b.name);
        if let Some(n) = &b.network {
            let _ = write!(label, "\nnetwork {n}");
        }
        for a in b.addresses.iter().filter(|a| !a.starts_with("fe80:")) {
            let _ = write!(label, "\n{a}");
        }
        let _ = writeln!(
            out,
            "    {} [label={}{}];",
            dot_quote(&format!("bridge:{}", b.name)),
            dot_quote(&label),
            dot_style(b.presence)
        );
    }
    for v in &t.veths {
        let _ = writeln!(
            out,
            "    {} [label={}{}];",
            dot_quote(&format!("veth:{}", v.name)),
            dot_quote(&format!("veth {}", v.name)),
            dot_style(v.presence)
        );
    }
    for x in &t.vxlans {
        let _ = writeln!(
            out,
            "    {} [label={}];",
            dot_quote(&format!("vxlan:{}", x.name)),
            dot_quote(&format!("vxlan {}", x.name))
        );
    }
    let _ = writeln!(out, "  }}");
    for (i, ns) in t.namespaces.iter().enumerate() {
        let _ = writeln!(out, "  subgraph cluster_ns{i} {{");
        let _ = writeln!(out, "    label={};", dot_quote(&ns.name));
        if ns.presence != Presence::Present {
            let _ = writeln!(out, "    style=dashed;");
        }
        for iface in &ns.interfaces {
            let mut label = iface.name.clone();
            for a in iface.addresses.iter().filter(|a| !a.starts_with("fe80:")) {
                let _ = write!(label, "\n{a}");
            }
            let _ = writeln!(
                out,
                "    {} [label={}{}];",
                dot_quote(&format!("if:{}:{}", ns.name, iface.name)),
                dot_quote(&label),
                dot_style(if iface.presence == Presence::Foreign {
                    Presence::Present
                } else {
                    iface.presence
                })
            );
        }
        let _ = writeln!(out, "  }}");
    }
    for v in &t.veths {
        let id = dot_quote(&format!("veth:{}", v.name));
        if let Some(b) = &v.bridge {
            if t.bridges.iter().any(|x| &x.name == b) {
                let _ = writeln!(out, "  {} -- {id};", dot_quote(&format!("bridge:{b}")));
            }
        }
        if let Some(p) = &v.peer {
            let _ = writeln!(
                out,
                "  {id} -- {} [style=bold, label=\"veth pair\"];",
                dot_quote(&format!("if:{}:{}", p.namespace, p.ifname))
            );
        }
    }
    for x in &t.vxlans {
        let id = dot_quote(&format!("vxlan:{}", x.name));
        if let Some(b) = &x.bridge {
            let _ = writeln!(out, "  {} -- {id};", dot_quote(&format!("bridge:{b}")));
        }
        for r in &x.remotes {
            let remote = dot_quote(&format!("remote:{r}"));
            let _ = writeln!(
                out,
                "  {remote} [label={}, shape=ellipse];",
                dot_quote(&format!("remote {r}"))
            );
            let _ = writeln!(out, "  {id} -- {remote} [style=dashed];");
        }
    }
    for p in &t.ports {
        let port = dot_quote(&format!("port:{}:{}", p.published, p.to));
        let _ = writeln!(
            out,
            "  {port} [label={}, shape=note];",
            dot_quote(&format!("{} → {}", p.published, p.to))
        );
        if let Some(iface) = t
            .namespaces
            .iter()
            .find(|n| n.name == p.container)
            .and_then(|n| {
                n.interfaces
                    .iter()
                    .find(|i| i.network.as_deref() == Some(p.network.as_str()))
            })
        {
            let _ = writeln!(
                out,
                "  {port} -- {} [style=dotted];",
                dot_quote(&format!("if:{}:{}", p.container, iface.name))
            );
        }
    }
    let _ = writeln!(out, "}}");
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ctnet_engine::observe::topology::{
        BridgeNode, InterfaceNode, NetworkNode, PeerRef, PortNode, SubnetNode,
    };

    /// One network `a&b`, a container `c<1>` on it, a veth missing from the kernel.
    pub(crate) fn sample() -> Topology {
        Topology {
            networks: vec![NetworkNode {
                name: "a&b".into(),
                driver: "bridge",
                subnets: vec![SubnetNode {
                    subnet: "10.1.0.0/24".into(),
                    gateway: "10.1.0.1".parse().unwrap(),
                }],
                bridge: Some("br-ab".into()),
                parent: None,
                internal: false,
                state: ctnet_engine::model::RowState::Ready,
            }],
            bridges: vec![BridgeNode {
                name: "br-ab".into(),
                network: Some("a&b".into()),
                index: Some(2),
                mac: None,
                up: true,
                addresses: vec!["10.1.0.1/24".into(), "fe80::1/64".into()],
                presence: Presence::Present,
            }],
            veths: vec![VethNode {
                name: "veth0000001".into(),
                index: None,
                bridge: Some("br-ab".into()),
                network: Some("a&b".into()),
                peer: Some(PeerRef {
                    namespace: "c<1>".into(),
                    ifname: "eth0".into(),
                }),
                peer_index: None,
                up: false,
                presence: Presence::Missing,
            }],
            vxlans: Vec::new(),
            namespaces: vec![NamespaceNode {
                name: "c<1>".into(),
                path: "/run/netns/c<1>".into(),
                inode: Some(9),
                interfaces: vec![InterfaceNode {
                    name: "eth0".into(),
                    index: Some(2),
                    kind: Some("veth".into()),
                    mac: None,
                    up: true,
                    addresses: vec!["10.1.0.2/24".into()],
                    network: Some("a&b".into()),
                    host_side: Some("veth0000001".into()),
                    presence: Presence::Present,
                }],
                presence: Presence::Present,
                error: None,
            }],
            ports: vec![PortNode {
                published: "0.0.0.0:8080->80/tcp".into(),
                container: "c<1>".into(),
                network: "a&b".into(),
                to: "10.1.0.2".parse().unwrap(),
                map: "publish_any",
                in_kernel: true,
            }],
        }
    }

    #[test]
    fn the_text_is_a_tree_with_what_is_missing_marked_and_no_link_local_addresses() {
        let text = render_text(&sample());
        assert_eq!(
            text,
            "1 network, 1 bridge, 1 veth, 1 namespace (1 attached), 1 published port\n\
             host\n\
             └─ bridge br-ab (network a&b) 10.1.0.1/24\n   \
             └─ veth veth0000001 ⇄ c<1> eth0  [MISSING from the kernel]\n\
             namespaces\n\
             └─ c<1> (/run/netns/c<1>)\n   \
             └─ eth0 10.1.0.2/24 (network a&b)\n\
             networks\n\
             └─ a&b (bridge br-ab) 10.1.0.0/24 gateway 10.1.0.1\n\
             published ports\n\
             └─ 0.0.0.0:8080->80/tcp → c<1> 10.1.0.2 (network a&b)\n"
        );
    }

    #[test]
    fn dot_quotes_names_and_draws_the_veth_pair() {
        let dot = render_dot(&sample());
        assert!(dot.starts_with("graph topology {"), "{dot}");
        assert!(
            dot.contains("\"bridge:br-ab\" -- \"veth:veth0000001\";"),
            "{dot}"
        );
        assert!(
            dot.contains("\"veth:veth0000001\" -- \"if:c<1>:eth0\" [style=bold"),
            "{dot}"
        );
        assert!(
            dot.contains("style=dashed, color=red"),
            "the missing veth: {dot}"
        );
        assert_eq!(dot_quote("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
        assert_eq!(dot.matches('{').count(), dot.matches('}').count());
    }
}
