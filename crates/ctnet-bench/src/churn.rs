//! Attach and detach under churn, as a container engine stopping and starting many
//! containers at once sees them: `background` containers are attached and stay so, then
//! [`LOOPS`] threads each attach and detach containers of their own over and over, all
//! at the same time, every operation a timed process. The tail (p99) is the figure: a
//! detach whose commit queues behind another process's kernel work shows there.
//!
//! Measured for ctnet (DNS off) and for the whole-process kernel floor, each in a world
//! of its own; the peers are left out (netavark and the CNI plugins take the iptables
//! lock per rule, so four loops of them measure that lock).

use std::process::Command;
use std::time::Duration;

use crate::child::run_timed;
use crate::layout;
use crate::sandbox::World;
use crate::systems::ctnet::{has_dns_flag, Ctnet, Dns};
use crate::systems::floor_process::{FloorProcess, FloorProgram};
use crate::systems::System;

/// Parallel attach/detach loops.
pub const LOOPS: usize = 4;

/// How much churn.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    /// Containers attached before the loops start, and left attached.
    pub background: usize,
    /// Containers of each loop.
    pub per_loop: usize,
    /// Times each loop attaches and detaches each of its containers.
    pub rounds: usize,
}

/// One system's samples, or why it has none.
pub struct Row {
    pub label: String,
    pub outcome: Result<Samples, String>,
}

/// Every attach and every detach of the loops.
#[derive(Default)]
pub struct Samples {
    pub attach: Vec<Duration>,
    pub detach: Vec<Duration>,
}

/// A container's attach and detach commands, made before the loops start.
struct Pair {
    attach: Command,
    detach: Command,
}

/// Both systems, one after the other.
pub fn measure(
    root: &std::path::Path,
    ctnet_bin: &std::path::Path,
    floor: Result<FloorProgram, String>,
    size: Size,
) -> Vec<Row> {
    let mut rows = Vec::new();
    let ctnet = churn_ctnet(root, ctnet_bin, size);
    rows.push(ctnet);
    rows.push(match floor {
        Ok(program) => churn_floor(root, program, size),
        Err(why) => Row {
            label: "kernel floor, whole process".into(),
            outcome: Err(why),
        },
    });
    rows
}

fn churn_ctnet(root: &std::path::Path, bin: &std::path::Path, size: Size) -> Row {
    let dns = if has_dns_flag(bin) {
        Dns::Off
    } else {
        Dns::Unknown
    };
    let outcome = World::enter(root, "churn ctnet")
        .and_then(|world| Ctnet::new(world, bin.to_path_buf(), false, dns))
        .and_then(|mut ctnet| {
            let pairs = |ctnet: &Ctnet, i: usize| {
                let (net, ns) = (Ctnet::network_name(i), Ctnet::netns_name(i));
                let publish = format!("{}:{}", layout::host_port(i), layout::CONTAINER_PORT);
                Pair {
                    attach: ctnet.command(&["attach", &net, &ns, "-p", &publish]),
                    detach: ctnet.command(&["detach", &net, &ns]),
                }
            };
            run_churn(&mut ctnet, size, pairs)
        });
    Row {
        label: "ctnet (DNS off)".into(),
        outcome,
    }
}

fn churn_floor(root: &std::path::Path, program: FloorProgram, size: Size) -> Row {
    let outcome = World::enter(root, "churn floor")
        .and_then(|world| FloorProcess::new(world, program))
        .and_then(|mut floor| {
            run_churn(&mut floor, size, |floor: &FloorProcess, i| Pair {
                attach: floor.attach_command(i),
                detach: floor.detach_command(i),
            })
        });
    Row {
        label: "kernel floor, whole process".into(),
        outcome,
    }
}

/// Prepares every container, attaches the background ones, then runs the loops.
fn run_churn<S: System>(
    system: &mut S,
    size: Size,
    pair_of: impl Fn(&S, usize) -> Pair,
) -> Result<Samples, String> {
    let total = size.background + LOOPS * size.per_loop;
    for i in 0..total {
        system.prepare(i)?;
    }
    for i in 0..size.background {
        system.attach(i)?;
    }
    let mut loops: Vec<Vec<(usize, Pair)>> = (0..LOOPS).map(|_| Vec::new()).collect();
    for i in size.background..total {
        loops[(i - size.background) % LOOPS].push((i, pair_of(system, i)));
    }
    crate::quiet::wait_for_quiet(crate::QUIET_MAX, &format!("{}'s churn", system.label()));
    let results: Vec<Result<Samples, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = loops
            .into_iter()
            .map(|mine| scope.spawn(move || one_loop(mine, size.rounds)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a churn loop panicked".into()))
            })
            .collect()
    });
    let mut all = Samples::default();
    for result in results {
        let samples = result?;
        all.attach.extend(samples.attach);
        all.detach.extend(samples.detach);
    }
    Ok(all)
}

/// One loop: each of its containers attached and detached again, `rounds` times.
fn one_loop(mut mine: Vec<(usize, Pair)>, rounds: usize) -> Result<Samples, String> {
    let mut samples = Samples::default();
    for _ in 0..rounds {
        for (i, pair) in &mut mine {
            let attach = run_timed(&format!("attach of container {i}"), &mut pair.attach, None)?;
            samples.attach.push(attach.wall);
            let detach = run_timed(&format!("detach of container {i}"), &mut pair.detach, None)?;
            samples.detach.push(detach.wall);
        }
    }
    Ok(samples)
}
