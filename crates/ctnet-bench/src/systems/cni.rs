//! The CNI reference plugins, driven as libcni drives a two-plugin list (bridge, then
//! portmap): one process per plugin, the operation in `CNI_COMMAND`, the container in
//! `CNI_CONTAINERID`/`CNI_NETNS`/`CNI_IFNAME`, the plugin's network config JSON on stdin.
//!
//! ADD runs `bridge` (with `host-local` IPAM, which the bridge plugin runs as a third
//! process) and then `portmap` with the bridge's result as `prevResult` and the port in
//! `runtimeConfig.portMappings`. DEL runs them in reverse, each with the cached ADD
//! result as `prevResult`, as libcni does. The bridge plugin makes the veth, the address
//! and routes and (ipMasq) an iptables masquerade chain per container; portmap adds a
//! DNAT chain per container, all by running `iptables`.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::{json, Value};

use super::{Cost, System};
use crate::child::{first_line_of, run_timed, Finished};
use crate::layout;
use crate::sandbox::World;

/// The plugins in one world.
pub struct Cni {
    label: String,
    plugin_dir: PathBuf,
    world: World,
    ipam_dir: PathBuf,
    /// Each attached container's bridge ADD result, for portmap and for DEL.
    results: HashMap<usize, Value>,
    prepared: BTreeSet<usize>,
}

impl Cni {
    /// Plugins from `plugin_dir` (bridge, host-local, portmap), IPAM data inside `world`.
    pub fn new(world: World, plugin_dir: PathBuf) -> Result<Cni, String> {
        let ipam_dir = world.subdir("cni-ipam")?;
        Ok(Cni {
            label: label(),
            plugin_dir,
            world,
            ipam_dir,
            results: HashMap::new(),
            prepared: BTreeSet::new(),
        })
    }

    fn netns_name(i: usize) -> String {
        format!("cni{i}")
    }

    /// Runs one plugin for container `i` with `config` on stdin.
    fn plugin(&self, plugin: &str, op: &str, i: usize, config: &Value) -> Result<Finished, String> {
        let netns = self.world.netns_path(&Cni::netns_name(i));
        let mut cmd = Command::new(self.plugin_dir.join(plugin));
        cmd.env("CNI_COMMAND", op)
            .env("CNI_CONTAINERID", format!("bench-{i}"))
            .env("CNI_NETNS", &netns)
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", &self.plugin_dir)
            .env("CNI_ARGS", "");
        let what = format!("CNI {plugin} {op} {}", netns.display());
        run_timed(&what, &mut cmd, Some(config.to_string().as_bytes()))
    }
}

/// "cni bridge+portmap 1.1.1" when the Debian package says its version.
fn label() -> String {
    match plugins_version() {
        Some(v) => format!("cni bridge+portmap {v}"),
        None => "cni bridge+portmap".to_string(),
    }
}

/// The reference plugins' upstream version ("1.1.1"), from the Debian package, if any.
pub fn plugins_version() -> Option<String> {
    first_line_of(
        Path::new("dpkg-query"),
        &["-W", "-f", "${Version}\n", "containernetworking-plugins"],
    )
    .and_then(|v| v.split(['+', '-']).next().map(str::to_string))
}

/// The bridge plugin's config for network `j` (host-local IPAM with its own data dir).
fn bridge_config(j: usize, ipam_dir: &Path) -> Value {
    json!({
        "cniVersion": "1.0.0",
        "name": format!("bench{j}"),
        "type": "bridge",
        "bridge": format!("cnibr{j}"),
        "isGateway": true,
        "ipMasq": true,
        "ipam": {
            "type": "host-local",
            "ranges": [[{
                "subnet": layout::subnet(j),
                "gateway": layout::gateway(j).to_string(),
            }]],
            "dataDir": ipam_dir,
        },
    })
}

/// The portmap plugin's config for container `i`, chained after the bridge's `result`.
fn portmap_config(i: usize, result: &Value) -> Value {
    json!({
        "cniVersion": "1.0.0",
        "name": format!("bench{}", layout::network_of(i)),
        "type": "portmap",
        "capabilities": {"portMappings": true},
        "runtimeConfig": {
            "portMappings": [{
                "hostPort": layout::host_port(i),
                "containerPort": layout::CONTAINER_PORT,
                "protocol": "tcp",
            }],
        },
        "prevResult": result,
    })
}

/// A config with `prevResult` added, as libcni sends it on DEL.
fn with_prev_result(mut config: Value, result: &Value) -> Value {
    if let Some(map) = config.as_object_mut() {
        map.insert("prevResult".into(), result.clone());
    }
    config
}

impl System for Cni {
    fn label(&self) -> &str {
        &self.label
    }

    fn prepare(&mut self, i: usize) -> Result<(), String> {
        if self.prepared.insert(i) {
            self.world.create_netns(&Cni::netns_name(i))?;
        }
        Ok(())
    }

    fn attach(&mut self, i: usize) -> Result<Cost, String> {
        let j = layout::network_of(i);
        let start = Instant::now();
        let bridge = self.plugin("bridge", "ADD", i, &bridge_config(j, &self.ipam_dir))?;
        let result: Value = serde_json::from_slice(&bridge.stdout)
            .map_err(|e| format!("CNI bridge ADD printed a result that is not JSON: {e}"))?;
        let portmap = self.plugin("portmap", "ADD", i, &portmap_config(i, &result))?;
        let wall = start.elapsed();
        self.results.insert(i, result);
        Ok(Cost {
            wall,
            max_rss_kib: Some(bridge.max_rss_kib.max(portmap.max_rss_kib)),
        })
    }

    fn detach(&mut self, i: usize) -> Result<Cost, String> {
        let j = layout::network_of(i);
        let result = self
            .results
            .remove(&i)
            .ok_or_else(|| format!("CNI DEL for container {i}, which was never added"))?;
        let start = Instant::now();
        let portmap = self.plugin("portmap", "DEL", i, &portmap_config(i, &result))?;
        let bridge_del = with_prev_result(bridge_config(j, &self.ipam_dir), &result);
        let bridge = self.plugin("bridge", "DEL", i, &bridge_del)?;
        Ok(Cost {
            wall: start.elapsed(),
            max_rss_kib: Some(bridge.max_rss_kib.max(portmap.max_rss_kib)),
        })
    }
}
