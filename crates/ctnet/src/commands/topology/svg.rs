//! The topology as an SVG picture, laid out here (no Graphviz process, no layout crate):
//! three rows, as the packets see them from the host down.
//!
//! ```text
//!   host:        [bridge br-a]        [bridge br-b]      [vxlan vx0]
//!                  │        │              │
//!   veths:     [veth…]  [veth…]        [veth…]
//!                  ║        ║              ║      (veth pairs)
//!   namespaces: [c1          ]  [c2          ]
//!               eth0 10.1.0.2    eth0 10.1.0.3
//!               eth1 10.2.0.2
//!   networks and published ports, listed below
//! ```
//!
//! Each row is centred; every box is as wide as the widest line of the picture, so the
//! columns line up. Objects only the store has are drawn dashed red, those only the
//! kernel has dashed orange (ctnet's names) or grey (anyone else's). All text is
//! XML-escaped.

use std::fmt::Write as _;

use ctnet_engine::observe::topology::{Presence, Topology, VethNode};

const MARGIN: f64 = 20.0;
const GAP: f64 = 20.0;
const LINE: f64 = 16.0;
const ROW_GAP: f64 = 60.0;
/// The width of a character of the 12px monospace font, rounded up.
const CHAR: f64 = 7.3;

/// `text` with `& < > " '` escaped for XML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// One box: its lines (the first in bold) and how it is drawn.
struct Card {
    lines: Vec<String>,
    presence: Presence,
}

impl Card {
    fn height(&self) -> f64 {
        self.lines.len() as f64 * LINE + 10.0
    }
}

/// Where a placed box is.
#[derive(Clone, Copy)]
struct Place {
    x: f64,
    y: f64,
    h: f64,
}

fn stroke(presence: Presence) -> &'static str {
    match presence {
        Presence::Present => "stroke=\"#333\"",
        Presence::Missing => "stroke=\"#c00\" stroke-dasharray=\"6 3\"",
        Presence::Unrecorded => "stroke=\"#d80\" stroke-dasharray=\"6 3\"",
        Presence::Foreign => "stroke=\"#999\"",
    }
}

fn note(presence: Presence) -> Option<&'static str> {
    match presence {
        Presence::Present => None,
        Presence::Missing => Some("MISSING from the kernel"),
        Presence::Unrecorded => Some("not in ctnet's store"),
        Presence::Foreign => Some("not ctnet's"),
    }
}

fn with_note(mut lines: Vec<String>, presence: Presence) -> Vec<String> {
    if let Some(n) = note(presence) {
        lines.push(format!("[{n}]"));
    }
    lines
}

/// The picture.
pub fn render(t: &Topology) -> String {
    // Row 1: bridges and VXLAN devices.
    let mut top: Vec<(String, Card)> = t
        .bridges
        .iter()
        .map(|b| {
            let mut lines = vec![format!("bridge {}", b.name)];
            if let Some(n) = &b.network {
                lines.push(format!("network {n}"));
            }
            lines.extend(
                b.addresses
                    .iter()
                    .filter(|a| !a.starts_with("fe80:"))
                    .cloned(),
            );
            (
                b.name.clone(),
                Card {
                    lines: with_note(lines, b.presence),
                    presence: b.presence,
                },
            )
        })
        .collect();
    for x in &t.vxlans {
        let mut lines = vec![format!("vxlan {}", x.name)];
        lines.extend(x.remotes.iter().map(|r| format!("remote {r}")));
        top.push((
            x.name.clone(),
            Card {
                lines,
                presence: Presence::Present,
            },
        ));
    }
    // Row 2: veths' host sides, under their bridges (in the bridges' order), so the
    // lines from the bridges do not cross.
    let mut veths: Vec<&VethNode> = t.veths.iter().collect();
    veths.sort_by_key(|v| {
        v.bridge
            .as_deref()
            .and_then(|b| top.iter().position(|(name, _)| name == b))
            .unwrap_or(usize::MAX)
    });
    let middle: Vec<Card> = veths
        .iter()
        .map(|v| Card {
            lines: with_note(vec![format!("veth {}", v.name)], v.presence),
            presence: v.presence,
        })
        .collect();
    // Row 3: namespaces with their interfaces and published ports.
    let bottom: Vec<Card> = t
        .namespaces
        .iter()
        .map(|ns| {
            let mut lines = vec![ns.name.clone()];
            for i in &ns.interfaces {
                let addresses: Vec<&str> = i
                    .addresses
                    .iter()
                    .filter(|a| !a.starts_with("fe80:"))
                    .map(String::as_str)
                    .collect();
                let mut line = format!("{} {}", i.name, addresses.join(" "));
                if i.presence == Presence::Missing {
                    line.push_str(" [MISSING]");
                }
                lines.push(line.trim_end().to_string());
            }
            for p in t.ports.iter().filter(|p| p.container == ns.name) {
                lines.push(format!("port {}", p.published));
            }
            match ns.presence {
                Presence::Missing => lines.push("[MISSING: the namespace is gone]".into()),
                Presence::Foreign => lines.push("[nothing attached]".into()),
                _ => {}
            }
            Card {
                lines,
                presence: ns.presence,
            }
        })
        .collect();
    let mut legend: Vec<String> = t
        .networks
        .iter()
        .map(|n| {
            let subnets: Vec<String> = n
                .subnets
                .iter()
                .map(|s| format!("{} gateway {}", s.subnet, s.gateway))
                .collect();
            format!(
                "network {} ({}{}): {}",
                n.name,
                n.driver,
                n.bridge
                    .as_deref()
                    .map(|b| format!(" {b}"))
                    .or_else(|| n.parent.as_deref().map(|p| format!(" on {p}")))
                    .unwrap_or_default(),
                if subnets.is_empty() {
                    "no addresses".to_string()
                } else {
                    subnets.join(", ")
                }
            )
        })
        .collect();
    legend.extend(t.ports.iter().map(|p| {
        format!(
            "published {} → {} {} (network {}){}",
            p.published,
            p.container,
            p.to,
            p.network,
            if p.in_kernel {
                ""
            } else {
                " [element MISSING]"
            }
        )
    }));

    let longest = top
        .iter()
        .map(|(_, c)| c)
        .chain(&middle)
        .chain(&bottom)
        .flat_map(|c| c.lines.iter())
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(10);
    let box_w = (longest as f64 * CHAR + 16.0).max(140.0).ceil();
    let col = box_w + GAP;
    let widest_row = top.len().max(middle.len()).max(bottom.len()).max(1);
    let legend_w = legend.iter().map(|l| l.chars().count()).max().unwrap_or(0) as f64 * CHAR;
    let width = (2.0 * MARGIN + widest_row as f64 * col - GAP)
        .max(2.0 * MARGIN + legend_w)
        .max(320.0)
        .ceil();

    let row_height =
        |cards: &mut dyn Iterator<Item = &Card>| cards.map(Card::height).fold(0.0_f64, f64::max);
    let y1 = MARGIN + 24.0;
    let h1 = row_height(&mut top.iter().map(|(_, c)| c));
    let y2 = y1 + h1 + ROW_GAP;
    let h2 = row_height(&mut middle.iter());
    let y3 = y2 + h2 + ROW_GAP;
    let h3 = row_height(&mut bottom.iter());
    let y4 = y3 + h3 + 36.0;
    let height = (y4 + legend.len() as f64 * LINE + MARGIN).ceil();

    let place = |cards: &[&Card], y: f64| -> Vec<Place> {
        let used = cards.len() as f64 * col - GAP;
        let x0 = ((width - used) / 2.0).max(MARGIN);
        cards
            .iter()
            .enumerate()
            .map(|(i, c)| Place {
                x: x0 + i as f64 * col,
                y,
                h: c.height(),
            })
            .collect()
    };
    let top_cards: Vec<&Card> = top.iter().map(|(_, c)| c).collect();
    let top_at = place(&top_cards, y1);
    let middle_at = place(&middle.iter().collect::<Vec<_>>(), y2);
    let bottom_at = place(&bottom.iter().collect::<Vec<_>>(), y3);

    let mut out = String::new();
    let _ = writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="monospace" font-size="12">"#
    );
    let _ = writeln!(out, "<title>ctnet topology</title>");
    let _ = writeln!(out, r##"<rect width="100%" height="100%" fill="#fff"/>"##);
    let _ = writeln!(
        out,
        r#"<text x="{MARGIN}" y="{}" font-weight="bold">host</text>"#,
        MARGIN + 8.0
    );

    // Edges first, under the boxes.
    let mid = |p: &Place| p.x + box_w / 2.0;
    let _ = writeln!(out, r##"<g stroke="#555" fill="none">"##);
    for (i, v) in veths.iter().enumerate() {
        let vp = middle_at[i];
        if let Some(b) = v.bridge.as_deref() {
            if let Some(j) = top.iter().position(|(name, _)| name == b) {
                let bp = top_at[j];
                let _ = writeln!(
                    out,
                    r#"<line x1="{}" y1="{}" x2="{}" y2="{}"/>"#,
                    mid(&bp),
                    bp.y + bp.h,
                    mid(&vp),
                    vp.y
                );
            }
        }
        if let Some(peer) = &v.peer {
            if let Some(k) = t.namespaces.iter().position(|n| n.name == peer.namespace) {
                let np = bottom_at[k];
                // Onto the namespace's top edge, spread by the interface's place.
                let ifaces = &t.namespaces[k].interfaces;
                let at = ifaces
                    .iter()
                    .position(|i| i.name == peer.ifname)
                    .map_or(0.5, |l| (l as f64 + 1.0) / (ifaces.len() as f64 + 1.0));
                let x = np.x + box_w * at;
                let _ = writeln!(
                    out,
                    r#"<path d="M {} {} C {} {} {x} {} {x} {}" stroke-width="2.5"><title>veth pair {} ⇄ {} {}</title></path>"#,
                    mid(&vp),
                    vp.y + vp.h,
                    mid(&vp),
                    vp.y + vp.h + ROW_GAP / 2.0,
                    np.y - ROW_GAP / 2.0,
                    np.y,
                    escape(&v.name),
                    escape(&peer.namespace),
                    escape(&peer.ifname)
                );
            }
        }
    }
    let _ = writeln!(out, "</g>");

    let draw = |out: &mut String, card: &Card, p: Place| {
        let _ = writeln!(
            out,
            r##"<g><rect x="{}" y="{}" width="{box_w}" height="{}" rx="4" fill="#f8f8f8" {}/>"##,
            p.x,
            p.y,
            p.h,
            stroke(card.presence)
        );
        for (n, line) in card.lines.iter().enumerate() {
            let _ = writeln!(
                out,
                r#"<text x="{}" y="{}"{}>{}</text>"#,
                p.x + 8.0,
                p.y + 5.0 + (n as f64 + 1.0) * LINE - 4.0,
                if n == 0 { r#" font-weight="bold""# } else { "" },
                escape(line)
            );
        }
        let _ = writeln!(out, "</g>");
    };
    for (card, p) in top_cards.iter().zip(&top_at) {
        draw(&mut out, card, *p);
    }
    for (card, p) in middle.iter().zip(&middle_at) {
        draw(&mut out, card, *p);
    }
    for (card, p) in bottom.iter().zip(&bottom_at) {
        draw(&mut out, card, *p);
    }
    for (n, line) in legend.iter().enumerate() {
        let _ = writeln!(
            out,
            r#"<text x="{MARGIN}" y="{}">{}</text>"#,
            y4 + n as f64 * LINE,
            escape(line)
        );
    }
    let _ = writeln!(out, "</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::topology::tests::sample;

    #[test]
    fn every_name_is_in_the_picture_escaped() {
        let svg = render(&sample());
        assert!(svg.starts_with("<?xml"), "{svg}");
        for name in [
            "bridge br-ab",
            "veth veth0000001",
            "c&lt;1&gt;",
            "eth0 10.1.0.2/24",
        ] {
            assert!(svg.contains(name), "{name} not in {svg}");
        }
        assert!(svg.contains("network a&amp;b"), "{svg}");
        assert!(!svg.contains("a&b"), "unescaped: {svg}");
        assert!(svg.contains("port 0.0.0.0:8080-&gt;80/tcp"), "{svg}");
        assert!(
            svg.contains("stroke=\"#c00\""),
            "the missing veth drawn red: {svg}"
        );
        // Elements open and close in pairs (the integration test parses it as XML).
        assert_eq!(svg.matches("<g").count(), svg.matches("</g>").count());
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
    }

    #[test]
    fn escape_covers_the_five_xml_characters() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;"
        );
    }

    #[test]
    fn an_empty_host_is_still_a_picture() {
        let svg = render(&Topology::default());
        assert!(svg.trim_end().ends_with("</svg>"));
    }
}
