//! `ctnet inspect CONTAINER`: the engine's [`Inspection`] as text (one section per
//! kernel view, in the words of the tools it replaces) or JSON.

use std::fmt::Write as _;

use ctnet_engine::observe::inspect::{Connection, Counters, EndpointView, Flow, Inspection};
use ctnet_engine::{Engine, Result};

use crate::cli::{Format, InspectArgs};
use crate::commands::endpoint::target;
use crate::output;

pub fn inspect(engine: &mut Engine, args: InspectArgs) -> Result<()> {
    let container = target(&args.target)?;
    let view = engine.inspect(&container)?;
    match args.format {
        Format::Json => output::json(&view),
        Format::Table => print!("{}", render(&view)),
    }
    Ok(())
}

/// The text form.
pub fn render(v: &Inspection) -> String {
    let mut out = String::new();
    let ns = &v.namespace;
    let _ = writeln!(out, "container {}", v.container);
    let inode = ns.inode.map_or("-".to_string(), |i| i.to_string());
    let _ = writeln!(out, "  namespace {} (inode {inode})", ns.path.display());
    if let Some(e) = &ns.error {
        let _ = writeln!(out, "    cannot look inside: {e}");
    }
    if !v.interfaces.is_empty() {
        let _ = writeln!(out, "  interfaces (ip -s addr)");
        for i in &v.interfaces {
            let _ = writeln!(
                out,
                "    {}: {} {} mtu {} {}{}",
                i.index,
                i.name,
                i.mac.as_deref().unwrap_or("-"),
                i.mtu,
                if i.up { "up" } else { "down" },
                state_note(&i.operstate),
            );
            for a in &i.addresses {
                let _ = writeln!(out, "        inet {a}");
            }
            if let Some(c) = &i.counters {
                let _ = writeln!(out, "        {}", counters(c));
            }
        }
    }
    if !v.routes.is_empty() {
        let _ = writeln!(out, "  routes (ip route)");
        for r in &v.routes {
            if r.kind != "unicast" {
                continue;
            }
            let mut line = format!("    {}", r.destination);
            if let Some(g) = r.gateway {
                let _ = write!(line, " via {g}");
            }
            if let Some(d) = &r.device {
                let _ = write!(line, " dev {d}");
            }
            if let Some(m) = r.metric {
                let _ = write!(line, " metric {m}");
            }
            let _ = writeln!(out, "{line}");
        }
    }
    if !v.neighbours.is_empty() {
        let _ = writeln!(out, "  neighbours (ip neigh)");
        for n in &v.neighbours {
            let _ = writeln!(
                out,
                "    {} dev {} lladdr {} {}",
                n.ip,
                n.device.as_deref().unwrap_or("-"),
                n.mac.as_deref().unwrap_or("-"),
                n.state
            );
        }
    }
    for ep in &v.endpoints {
        render_endpoint(&mut out, ep);
    }
    if v.differences.is_empty() {
        let _ = writeln!(out, "  the kernel matches what ctnet recorded");
    } else {
        let _ = writeln!(out, "  differences from what ctnet recorded");
        for d in &v.differences {
            let _ = writeln!(out, "    {}: {}: {}", d.object, d.detail, d.fix);
        }
    }
    out
}

fn render_endpoint(out: &mut String, ep: &EndpointView) {
    let ips: Vec<String> = ep.ips.iter().map(|ip| ip.to_string()).collect();
    let _ = writeln!(
        out,
        "  network {} ({}): {} {} {}",
        ep.network,
        ep.state.as_str(),
        ep.ifname,
        ips.join(" "),
        ep.mac
    );
    if !ep.labels.is_empty() {
        let _ = writeln!(out, "    labels: {}", ep.labels.text());
    }
    for role in &ep.policies {
        let action = match role.action {
            ctnet_engine::model::policy::Action::Allow => "allow",
            ctnet_engine::model::policy::Action::Deny => "deny",
        };
        let what = match (role.selects, role.source) {
            (true, true) => "governs traffic to it, and names it as a source",
            (true, false) => "governs traffic to it",
            _ => "names it as a source",
        };
        let _ = writeln!(out, "    policy {} ({action}): {what}", role.name);
    }
    match (&ep.host_side, &ep.bridge) {
        (Some(h), _) => {
            let _ = writeln!(
                out,
                "    veth peer on the host: {}: {} (peer of index {}), bridge {}, port {}, {}{}",
                h.index,
                h.name,
                h.peer_index.map_or("-".to_string(), |i| i.to_string()),
                h.bridge.as_deref().unwrap_or("none"),
                h.port_state.as_deref().unwrap_or("-"),
                if h.up { "up" } else { "down" },
                state_note(&h.operstate),
            );
            if let Some(c) = &h.counters {
                let _ = writeln!(out, "        {}", counters(c));
            }
        }
        (None, Some(_)) => {
            let _ = writeln!(out, "    veth peer on the host: missing");
        }
        (None, None) => {}
    }
    if let Some(bridge) = &ep.bridge {
        let _ = writeln!(out, "    bridge {bridge} forwarding entries (bridge fdb)");
        if ep.fdb.is_empty() {
            let _ = writeln!(out, "      none for {}", ep.mac);
        }
        for f in &ep.fdb {
            let _ = writeln!(
                out,
                "      {} dev {}{}",
                f.mac,
                f.port.as_deref().unwrap_or("-"),
                if f.learned { "" } else { " permanent" }
            );
        }
    }
    if !ep.ports.is_empty() {
        let _ = writeln!(out, "    published ports (nft map elements)");
        for p in &ep.ports {
            let packets = p
                .packets
                .map(|n| format!(", {n} packets"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "      {} to {}: map {}{}, {} connection(s) now{packets}",
                p.published,
                p.to,
                p.map,
                if p.in_kernel { "" } else { ", element MISSING" },
                p.connections,
            );
        }
    }
    if let Some(a) = &ep.antispoof {
        let allowed: Vec<String> = a.allowed.iter().map(|ip| ip.to_string()).collect();
        let _ = writeln!(
            out,
            "    anti-spoofing on port {} (table bridge ctnet): {} only, from {}",
            a.port,
            ep.mac,
            allowed.join(" ")
        );
        let _ = match a.dropped_frames {
            Some(n) => writeln!(out, "      {n} spoofed frame(s) dropped"),
            None => writeln!(
                out,
                "      element MISSING: nothing is checked (`ctnet gc` puts it back)"
            ),
        };
    }
    if !ep.connections.is_empty() {
        let _ = writeln!(out, "    connections (conntrack)");
        for c in &ep.connections {
            let _ = writeln!(out, "      {}", connection(c));
        }
    }
}

fn state_note(operstate: &str) -> String {
    match operstate {
        "up" | "unknown" => String::new(),
        other => format!(" ({other})"),
    }
}

fn counters(c: &Counters) -> String {
    format!(
        "rx {} packets {} bytes {} dropped, tx {} packets {} bytes {} dropped",
        c.rx_packets, c.rx_bytes, c.rx_dropped, c.tx_packets, c.tx_bytes, c.tx_dropped
    )
}

/// `IP:PORT` (`[IP]:PORT` for IPv6), or the bare address without a port.
fn end(ip: std::net::IpAddr, port: Option<u16>) -> String {
    match (ip, port) {
        (std::net::IpAddr::V6(v6), Some(p)) => format!("[{v6}]:{p}"),
        (ip, Some(p)) => format!("{ip}:{p}"),
        (ip, None) => ip.to_string(),
    }
}

fn flow(f: &Flow) -> String {
    format!("{} -> {}", end(f.src, f.src_port), end(f.dst, f.dst_port))
}

/// One connection: as the first packet had it, then where NAT really sent it (the
/// reply comes from the real destination) and as whom it left.
fn connection(c: &Connection) -> String {
    let mut line = format!("{} {}", c.protocol, flow(&c.original));
    if let Some(state) = c.state {
        let _ = write!(line, " {state}");
    }
    if c.dnat {
        let _ = write!(line, ", DNAT to {}", end(c.reply.src, c.reply.src_port));
    }
    if c.snat {
        let _ = write!(line, ", masqueraded as {}", c.reply.dst);
    }
    line
}
