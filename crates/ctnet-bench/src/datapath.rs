//! Data-path throughput: what a packet pays for going through ctnet's bridge, its
//! masquerade and its published-port DNAT, against a bare veth pair with nothing on it.
//!
//! Every test is one TCP stream of `iperf3 -t 2` between namespaces of this world,
//! which also holds a "wan" namespace playing the internet: host uplink 203.0.113.1/24
//! to wan 203.0.113.2/24, the host's default route via the wan. No packet leaves the
//! sandbox.
//!
//! One stream on a shared VM moves by several Gbit/s from run to run, more than the
//! differences the targets are about. So each path runs several times, and the two
//! comparisons are made to hold still: the bare pair and the bridge alternate, round by
//! round, and their ratio is the median of the rounds' ratios; the published port is
//! measured several times before and after the 10,000 extra ports.

use std::net::Ipv4Addr;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use ctnet_kernel::link::{self, BridgeSpec, VethSpec};
use ctnet_kernel::{addr, route, IfName, Netns, RtSocket};
use serde_json::Value;

use crate::child::run_timed;
use crate::layout;
use crate::sandbox::World;
use crate::systems::ctnet::Ctnet;
use crate::systems::System;

/// Seconds each iperf3 test runs.
pub const SECONDS: &str = "2";
/// Rounds of the bare pair, the bare bridge and ctnet's bridge (one run of each per
/// round).
const PAIRED_ROUNDS: usize = 6;
/// Runs of every other path.
const RUNS: usize = 3;
/// The port iperf3 servers listen on when no published port is involved.
const IPERF_PORT: u16 = 5201;
/// The wan's side of the uplink, and the host's.
pub(crate) const WAN_ADDR: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);
pub(crate) const UPLINK_ADDR: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
/// The bare veth pair's two ends.
const BARE_A: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const BARE_B: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);
/// The two namespaces on the bare bridge.
const BRIDGED_A: Ipv4Addr = Ipv4Addr::new(10, 98, 0, 1);
const BRIDGED_B: Ipv4Addr = Ipv4Addr::new(10, 98, 0, 2);
/// How many extra ports the last test publishes (one ctnet attach with a port range).
const EXTRA_PORTS: &str = "20000-29999:20000-29999";

/// One measured path: its description and the Gbit/s of each run, or why it could not
/// be measured.
pub struct PathResult {
    /// What was measured, in words.
    pub what: String,
    /// Throughput of each run in Gbit/s.
    pub runs: Result<Vec<f64>, String>,
}

impl PathResult {
    /// The median run, when there were runs.
    pub fn median(&self) -> Option<f64> {
        self.runs.as_ref().ok().and_then(|r| median(r))
    }
}

/// A target's comparison: one path against another, as a ratio (1.0: no cost).
pub struct Comparison {
    /// What is compared, in words.
    pub what: String,
    /// The ratio, when both paths were measured.
    pub ratio: Option<f64>,
}

/// Everything the data-path part measured.
pub struct DataPath {
    /// Each path with its runs, in order.
    pub paths: Vec<PathResult>,
    /// The comparisons the targets are about.
    pub comparisons: Vec<Comparison>,
}

/// Runs every data-path test in a fresh world.
pub fn measure(root: &Path, ctnet_bin: PathBuf, iperf3: &Path) -> Result<DataPath, String> {
    let world = World::enter(root, "datapath")?;
    let dns = match crate::systems::ctnet::has_dns_flag(&ctnet_bin) {
        true => crate::systems::ctnet::Dns::Off,
        false => crate::systems::ctnet::Dns::Unknown,
    };
    let mut ctnet = Ctnet::new(world, ctnet_bin, false, dns)?;
    let wan = make_wan(ctnet.world_mut())?;
    let (bare_a, bare_b) = make_bare_pair(ctnet.world_mut())?;
    let (plain_a, plain_b) = make_bare_bridge(ctnet.world_mut())?;
    for i in 0..2 {
        ctnet.prepare(i)?;
        ctnet.attach(i)?;
    }
    let c0 = open_netns(ctnet.world_mut(), &Ctnet::netns_name(0))?;
    let c1 = open_netns(ctnet.world_mut(), &Ctnet::netns_name(1))?;
    let c1_addr = address_in(&c1)?;
    let published = layout::host_port(0);
    let port = layout::CONTAINER_PORT;

    let bare = || {
        iperf(
            iperf3,
            (&bare_b, BARE_B, IPERF_PORT),
            (&bare_a, BARE_B, IPERF_PORT),
        )
    };
    let plain = || {
        iperf(
            iperf3,
            (&plain_b, BRIDGED_B, IPERF_PORT),
            (&plain_a, BRIDGED_B, IPERF_PORT),
        )
    };
    let bridged = || {
        iperf(
            iperf3,
            (&c1, c1_addr, IPERF_PORT),
            (&c0, c1_addr, IPERF_PORT),
        )
    };
    let dnat = || {
        iperf(
            iperf3,
            (&c0, Ipv4Addr::UNSPECIFIED, port),
            (&wan, UPLINK_ADDR, published),
        )
    };
    eprintln!(
        "data path: the bare pair, the bare bridge and ctnet's bridge, {PAIRED_ROUNDS} rounds"
    );
    let [bare_runs, plain_runs, bridged_runs] = rounds(PAIRED_ROUNDS, [&bare, &plain, &bridged]);
    let bridge_ratio = paired_ratio(&bare_runs, &bridged_runs);
    let inherent_ratio = paired_ratio(&bare_runs, &plain_runs);
    let mut paths = vec![
        PathResult {
            what: "bare veth pair (no bridge, no firewall)".into(),
            runs: bare_runs,
        },
        PathResult {
            what: "bare bridge, two veths (no ctnet, no firewall)".into(),
            runs: plain_runs,
        },
        PathResult {
            what: "container -> container, same ctnet bridge".into(),
            runs: bridged_runs,
        },
        run_path("container -> wan, masqueraded", || {
            iperf(
                iperf3,
                (&wan, WAN_ADDR, IPERF_PORT),
                (&c0, WAN_ADDR, IPERF_PORT),
            )
        }),
        run_path("wan -> published port (DNAT)", dnat),
    ];
    ctnet.prepare(2)?;
    let extra = ctnet.run_untimed(&[
        "attach",
        &Ctnet::network_name(2),
        &Ctnet::netns_name(2),
        "-p",
        EXTRA_PORTS,
    ]);
    let what = "wan -> published port, 10,000 more ports published";
    paths.push(match extra {
        Ok(_) => run_path(what, dnat),
        Err(e) => PathResult {
            what: what.into(),
            runs: Err(format!("publishing 10,000 ports failed: {e}")),
        },
    });
    let ports_ratio = match (paths[5].median(), paths[4].median()) {
        (Some(many), Some(one)) if one > 0.0 => Some(many / one),
        _ => None,
    };
    Ok(DataPath {
        paths,
        comparisons: vec![
            Comparison {
                what: "container -> container / bare veth pair (median of the rounds' ratios)"
                    .into(),
                ratio: bridge_ratio,
            },
            Comparison {
                what: "bare bridge / bare veth pair (what any bridge costs; same rounds)".into(),
                ratio: inherent_ratio,
            },
            Comparison {
                what: "published port with 10,000 more ports / with one (medians)".into(),
                ratio: ports_ratio,
            },
        ],
    })
}

/// Runs each of `paths` once per round, one after the other, `rounds` times, so that a
/// slow spell of the machine falls on all alike. A path's first failure ends its runs.
fn rounds<const N: usize>(
    rounds: usize,
    paths: [&dyn Fn() -> Result<f64, String>; N],
) -> [Result<Vec<f64>, String>; N] {
    let mut runs: [Result<Vec<f64>, String>; N] = std::array::from_fn(|_| Ok(Vec::new()));
    for _ in 0..rounds {
        for (path, done) in paths.iter().zip(runs.iter_mut()) {
            push_run(done, *path);
        }
    }
    runs
}

fn push_run(runs: &mut Result<Vec<f64>, String>, run: &dyn Fn() -> Result<f64, String>) {
    if let Ok(done) = runs {
        match run() {
            Ok(gbits) => done.push(gbits),
            Err(e) => *runs = Err(e),
        }
    }
}

/// The median of `second[i] / first[i]` over the rounds.
pub(crate) fn paired_ratio(
    first: &Result<Vec<f64>, String>,
    second: &Result<Vec<f64>, String>,
) -> Option<f64> {
    let (Ok(first), Ok(second)) = (first, second) else {
        return None;
    };
    let ratios: Vec<f64> = first
        .iter()
        .zip(second)
        .filter(|(a, _)| **a > 0.0)
        .map(|(a, b)| b / a)
        .collect();
    median(&ratios)
}

/// The median of some values (the mean of the middle two for an even count).
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// The wan namespace and the uplink to it, with the host's default route through it.
pub(crate) fn make_wan(world: &mut World) -> Result<Netns, String> {
    let wan = world.create_netns("wan")?;
    let mut sock = RtSocket::open().map_err(|e| e.to_string())?;
    let uplink = ifname("uplink")?;
    link::create_veth(
        &mut sock,
        &VethSpec {
            name: &uplink,
            peer_name: &ifname("eth0")?,
            peer_netns: wan.as_fd(),
            master: None,
            mtu: None,
            peer_mac: None,
        },
    )
    .map_err(|e| format!("wan uplink: {e}"))?;
    let index = link::index_of(&mut sock, "uplink")
        .map_err(|e| e.to_string())?
        .ok_or("the uplink vanished right after it was made")?;
    sock.execute_all(vec![addr::add_request(index, UPLINK_ADDR, 24, "uplink")])
        .map_err(|e| format!("wan uplink: {e}"))?;
    configure_inside(&wan, "eth0", WAN_ADDR)?;
    sock.execute_all(vec![route::add_default_request(WAN_ADDR)])
        .map_err(|e| format!("default route via the wan: {e}"))?;
    Ok(wan)
}

/// Two namespaces joined by one veth pair: the path with nothing on it.
fn make_bare_pair(world: &mut World) -> Result<(Netns, Netns), String> {
    let a = world.create_netns("barea")?;
    let b = world.create_netns("bareb")?;
    let (name_a, name_b) = (ifname("bare0")?, ifname("bare1")?);
    a.run(|| {
        let mut sock = RtSocket::open()?;
        link::create_veth(
            &mut sock,
            &VethSpec {
                name: &name_a,
                peer_name: &name_b,
                peer_netns: b.as_fd(),
                master: None,
                mtu: None,
                peer_mac: None,
            },
        )
    })
    .map_err(|e| format!("bare veth pair: {e}"))?;
    configure_inside(&a, "bare0", BARE_A)?;
    configure_inside(&b, "bare1", BARE_B)?;
    Ok((a, b))
}

/// A bridge in the world's host namespace with two namespaces on it, each by a veth,
/// made over rtnetlink with nothing else: what any bridged container path costs.
fn make_bare_bridge(world: &mut World) -> Result<(Netns, Netns), String> {
    let a = world.create_netns("bridgea")?;
    let b = world.create_netns("bridgeb")?;
    let mut sock = RtSocket::open().map_err(|e| e.to_string())?;
    let bridge = ifname("barebr")?;
    link::create_bridge(
        &mut sock,
        &BridgeSpec {
            name: &bridge,
            mtu: None,
            multicast_snooping: true,
            mac: None,
        },
    )
    .map_err(|e| format!("bare bridge: {e}"))?;
    let index = link::index_of(&mut sock, "barebr")
        .map_err(|e| e.to_string())?
        .ok_or("the bare bridge vanished right after it was made")?;
    for (ns, host_side, address) in [(&a, "barebra", BRIDGED_A), (&b, "barebrb", BRIDGED_B)] {
        link::create_veth(
            &mut sock,
            &VethSpec {
                name: &ifname(host_side)?,
                peer_name: &ifname("eth0")?,
                peer_netns: ns.as_fd(),
                master: Some(index),
                mtu: None,
                peer_mac: None,
            },
        )
        .map_err(|e| format!("bare bridge port {host_side}: {e}"))?;
        configure_inside(ns, "eth0", address)?;
    }
    Ok((a, b))
}

/// Inside `ns`: loopback and `dev` up, `address/24` on `dev`.
fn configure_inside(ns: &Netns, dev: &str, address: Ipv4Addr) -> Result<(), String> {
    ns.run(|| {
        let mut sock = RtSocket::open()?;
        let index = link::index_of(&mut sock, dev)?.unwrap_or(0);
        sock.execute_all(vec![
            link::set_up_request(1, "lo"),
            link::set_up_request(index, dev),
            addr::add_request(index, address, 24, dev),
        ])
    })
    .map_err(|e| format!("configure {dev} in {}: {e}", ns.path().display()))
}

fn open_netns(world: &World, name: &str) -> Result<Netns, String> {
    Netns::open(&world.netns_path(name)).map_err(|e| e.to_string())
}

/// The first IPv4 address outside 127/8 inside `ns` (the container's, chosen by ctnet).
fn address_in(ns: &Netns) -> Result<Ipv4Addr, String> {
    let addresses = ns
        .run(|| addr::list(&mut RtSocket::open()?))
        .map_err(|e| e.to_string())?;
    addresses
        .iter()
        .map(|a| a.address)
        .find(|a| !a.is_loopback())
        .ok_or_else(|| format!("no address in {} after ctnet attach", ns.path().display()))
}

fn ifname(name: &str) -> Result<IfName, String> {
    IfName::new(name).map_err(|e| e.to_string())
}

/// [`RUNS`] runs of one path.
fn run_path(what: &str, run: impl Fn() -> Result<f64, String>) -> PathResult {
    eprintln!("data path: {what}, {RUNS} runs");
    let mut runs = Ok(Vec::new());
    for _ in 0..RUNS {
        push_run(&mut runs, &run);
    }
    PathResult {
        what: what.into(),
        runs,
    }
}

/// One iperf3 test: a one-shot server in `server.0` listening on `server.1:server.2`,
/// a client in `client.0` sending to `client.1:client.2` for [`SECONDS`].
fn iperf(
    iperf3: &Path,
    server: (&Netns, Ipv4Addr, u16),
    client: (&Netns, Ipv4Addr, u16),
) -> Result<f64, String> {
    iperf_for(iperf3, server, client, &["-t", SECONDS])
}

/// [`iperf`] with the client's length given: `["-t", SECONDS]` or `["-n", BYTES]`.
pub(crate) fn iperf_for(
    iperf3: &Path,
    (server_ns, bind, listen): (&Netns, Ipv4Addr, u16),
    (client_ns, target, port): (&Netns, Ipv4Addr, u16),
    length: &[&str],
) -> Result<f64, String> {
    let mut server_cmd = Command::new(iperf3);
    server_cmd.args(["-s", "-1", "-p", &listen.to_string()]);
    if !bind.is_unspecified() {
        server_cmd.args(["-B", &bind.to_string()]);
    }
    in_netns(&mut server_cmd, server_ns);
    let mut server = server_cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("start {}: {e}", iperf3.display()))?;
    let outcome = client_with_retries(iperf3, client_ns, target, port, length);
    // Only our own child, by its handle (its pid), and only if still running.
    if matches!(server.try_wait(), Ok(None)) {
        let _ = server.kill();
    }
    let _ = server.wait();
    outcome
}

/// Runs the client until the server is listening: up to 20 tries, 100 ms apart.
fn client_with_retries(
    iperf3: &Path,
    ns: &Netns,
    target: Ipv4Addr,
    port: u16,
    length: &[&str],
) -> Result<f64, String> {
    let mut last_error = String::new();
    for _ in 0..20 {
        let mut cmd = Command::new(iperf3);
        cmd.args(["-c", &target.to_string(), "-p", &port.to_string()])
            .args(length)
            .arg("-J");
        in_netns(&mut cmd, ns);
        let what = format!("iperf3 -c {target} -p {port}");
        match run_timed(&what, &mut cmd, None).and_then(|done| received_gbits(&done.stdout)) {
            Ok(gbits) => return Ok(gbits),
            Err(e) if server_not_ready(&e) => {
                last_error = e;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(e),
        }
    }
    Err(last_error)
}

/// True for the errors of a client that came before its server was listening.
fn server_not_ready(error: &str) -> bool {
    ["refused", "unable to connect", "busy"]
        .iter()
        .any(|sign| error.contains(sign))
}

/// `end.sum_received.bits_per_second` of iperf3's JSON report, in Gbit/s.
fn received_gbits(json: &[u8]) -> Result<f64, String> {
    let report: Value = serde_json::from_slice(json)
        .map_err(|e| format!("iperf3 printed a report that is not JSON: {e}"))?;
    if let Some(error) = report["error"].as_str() {
        return Err(format!("iperf3: {error}"));
    }
    report["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .map(|bps| bps / 1e9)
        .ok_or_else(|| "iperf3's report has no end.sum_received.bits_per_second".into())
}

/// Makes `cmd` start inside `ns` (setns between fork and exec).
pub(crate) fn in_netns(cmd: &mut Command, ns: &Netns) {
    let fd = ns.as_raw_fd();
    // SAFETY: the hook runs in the forked child before exec and only calls setns, which
    // is async-signal-safe; `fd` stays open in the parent (the Netns outlives the spawn)
    // and so is inherited by the child.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_paired_ratios() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        // Each round's ratio first: a slow round slows both paths alike.
        let bare = Ok(vec![10.0, 5.0, 10.0]);
        let bridged = Ok(vec![9.0, 4.5, 8.0]);
        assert_eq!(paired_ratio(&bare, &bridged), Some(0.9));
        assert_eq!(paired_ratio(&Err("x".into()), &bridged), None);
    }

    #[test]
    fn rounds_interleave_paths_and_stop_a_failing_one() {
        let calls = std::cell::RefCell::new(Vec::new());
        let first = || {
            calls.borrow_mut().push('a');
            Ok(1.0)
        };
        let second = || {
            calls.borrow_mut().push('b');
            Err("gone".to_string())
        };
        let [a, b] = rounds(3, [&first, &second]);
        assert_eq!(a, Ok(vec![1.0, 1.0, 1.0]));
        assert_eq!(b, Err("gone".to_string()));
        assert_eq!(*calls.borrow(), vec!['a', 'b', 'a', 'a']);
    }
}
