//! The kernel floor as a whole process: `floor/floor.c`, a minimal statically linked C
//! program making the kernel calls of the in-process floor (floor.rs), built by build.rs
//! and carried inside this binary. Every real operation is a process (the CNI and
//! netavark protocols call one per operation), so this is the honest floor: process
//! start and exit included, nothing else.
//!
//! Attach: `ctnet-floor attach NETNS HOST_VETH BRIDGE_INDEX ADDRESS PREFIX GATEWAY` (the
//! veth with its peer in the namespace, enslaved and up; IPv6 off on the host side; lo,
//! eth0, address and route in one pipelined round trip from inside). Detach:
//! `ctnet-floor detach HOST_VETH`, which returns once the kernel announces the veth gone
//! and leaves the kernel's ~20 ms clean-up wait to a child, as ctnet's detach does (the
//! in-process floor's detach waits for it, as any simple program does).

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use ctnet_kernel::link::{self, BridgeSpec};
use ctnet_kernel::{addr, IfName, RtSocket};

use super::{Cost, System};
use crate::child::{run_timed, Finished};
use crate::layout;
use crate::sandbox::World;

/// The program, as build.rs made it (empty when it could not be built).
const PROGRAM: &[u8] = include_bytes!(env!("CTNET_FLOOR_BIN"));
/// Why it could not be built; empty when it was.
const BUILD_ERROR: &str = env!("CTNET_FLOOR_ERROR");

/// The floor program, written out to a file of the benchmark's sandbox.
#[derive(Debug, Clone)]
pub struct FloorProgram {
    path: PathBuf,
}

impl FloorProgram {
    /// Writes the program into `dir`, or says why there is none.
    pub fn install(dir: &Path) -> Result<FloorProgram, String> {
        if PROGRAM.is_empty() {
            let why = if BUILD_ERROR.is_empty() {
                "the build made an empty program"
            } else {
                BUILD_ERROR
            };
            return Err(format!(
                "not built ({why}); install a C compiler and static C library (apt-get install gcc libc6-dev) and rebuild"
            ));
        }
        let path = dir.join("ctnet-floor");
        std::fs::write(&path, PROGRAM)
            .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)))
            .map_err(|e| format!("write {}: {e}", path.display()))?;
        Ok(FloorProgram { path })
    }

    /// The command line of an attach.
    pub fn attach_command(
        &self,
        netns: &Path,
        host_veth: &str,
        bridge_index: u32,
        address: Ipv4Addr,
        prefix_len: u8,
        gateway: Ipv4Addr,
    ) -> Command {
        let mut cmd = Command::new(&self.path);
        cmd.arg("attach").arg(netns).args([
            host_veth.to_string(),
            bridge_index.to_string(),
            address.to_string(),
            prefix_len.to_string(),
            gateway.to_string(),
        ]);
        cmd
    }

    /// The command line of a detach (returning on the kernel's announcement).
    pub fn detach_command(&self, host_veth: &str) -> Command {
        let mut cmd = Command::new(&self.path);
        cmd.args(["detach", host_veth]);
        cmd
    }
}

/// Runs one floor command, timed; `what` names it in errors.
pub fn timed(what: &str, mut cmd: Command) -> Result<Finished, String> {
    run_timed(&format!("ctnet-floor {what}"), &mut cmd, None)
}

/// The whole-process floor as a row of the main table.
pub struct FloorProcess {
    world: World,
    program: FloorProgram,
    sock: RtSocket,
    bridges: Vec<u32>,
    prepared: BTreeSet<usize>,
}

impl FloorProcess {
    /// The floor program in `world`.
    pub fn new(world: World, program: FloorProgram) -> Result<FloorProcess, String> {
        let sock = RtSocket::open().map_err(|e| format!("kernel floor (whole process): {e}"))?;
        Ok(FloorProcess {
            world,
            program,
            sock,
            bridges: Vec::new(),
            prepared: BTreeSet::new(),
        })
    }

    /// The namespace of container `i`.
    pub fn netns_name(i: usize) -> String {
        format!("fp{i}")
    }

    /// Host-side veth name of container `i`.
    pub fn host_veth(i: usize) -> String {
        format!("vfp{i}")
    }

    /// The bridge of network `j` (made up to it on first use), up with its gateway.
    pub fn bridge(&mut self, j: usize) -> Result<u32, String> {
        while self.bridges.len() <= j {
            let k = self.bridges.len();
            let index = make_bridge(&mut self.sock, &format!("fpbr{k}"), layout::gateway(k))?;
            self.bridges.push(index);
        }
        Ok(self.bridges[j])
    }

    /// Makes container `i`'s namespace and its network's bridge (untimed); idempotent.
    pub fn prepare_container(&mut self, i: usize) -> Result<(), String> {
        self.bridge(layout::network_of(i))?;
        if self.prepared.insert(i) {
            self.world.create_netns(&FloorProcess::netns_name(i))?;
        }
        Ok(())
    }

    /// Container `i`'s attach command, for the churn's threads.
    pub fn attach_command(&self, i: usize) -> Command {
        let j = layout::network_of(i);
        self.program.attach_command(
            &self.world.netns_path(&FloorProcess::netns_name(i)),
            &FloorProcess::host_veth(i),
            self.bridges.get(j).copied().unwrap_or(0),
            layout::address(i),
            layout::PREFIX_LEN,
            layout::gateway(j),
        )
    }

    /// Container `i`'s detach command.
    pub fn detach_command(&self, i: usize) -> Command {
        self.program.detach_command(&FloorProcess::host_veth(i))
    }
}

/// A bridge named `name`, multicast snooping off as ctnet makes them, up with `gateway`.
pub fn make_bridge(sock: &mut RtSocket, name: &str, gateway: Ipv4Addr) -> Result<u32, String> {
    let ifname = IfName::new(name).map_err(|e| e.to_string())?;
    link::create_bridge(
        sock,
        &BridgeSpec {
            name: &ifname,
            mtu: None,
            multicast_snooping: false,
            mac: None,
        },
    )
    .map_err(|e| format!("bridge {name}: {e}"))?;
    let index = link::index_of(sock, name)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("bridge {name} vanished right after it was made"))?;
    addr::add(sock, index, gateway, layout::PREFIX_LEN, name)
        .map_err(|e| format!("bridge {name}: {e}"))?;
    Ok(index)
}

impl System for FloorProcess {
    fn label(&self) -> &str {
        "kernel floor, whole process"
    }

    fn prepare(&mut self, i: usize) -> Result<(), String> {
        self.prepare_container(i)
    }

    fn attach(&mut self, i: usize) -> Result<Cost, String> {
        let what = format!("attach {}", FloorProcess::host_veth(i));
        timed(&what, self.attach_command(i)).map(|done| cost(&done))
    }

    fn detach(&mut self, i: usize) -> Result<Cost, String> {
        let what = format!("detach {}", FloorProcess::host_veth(i));
        timed(&what, self.detach_command(i)).map(|done| cost(&done))
    }
}

fn cost(done: &Finished) -> Cost {
    Cost {
        wall: done.wall,
        max_rss_kib: Some(done.max_rss_kib),
    }
}
