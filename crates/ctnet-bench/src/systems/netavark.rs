//! netavark, driven as podman drives it: `netavark --config DIR --rootless=false setup
//! NETNS` with the container's network options as JSON on stdin, and `teardown` with the
//! same JSON.
//!
//! The JSON follows netavark's `NetworkOptions` (src/network/types.rs; the shape of
//! test/testfiles/bridge-port-tcp-udp.json): one bridge network with one IPv4 subnet, a
//! static address per container (podman's IPAM chooses it before calling netavark), no
//! DNS, one published TCP port.
//!
//! Per setup, netavark 1.x creates the bridge if needed, the veth pair, the address and
//! route, sets sysctls, and adds the network's and the port's iptables chains and rules
//! by running `iptables` several times; netavark 2.x with `NETAVARK_FW=nftables` does the
//! same in one `nft` run. Teardown removes the rules and the veth.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use super::{Cost, System};
use crate::child::{first_line_of, run_timed};
use crate::layout;
use crate::sandbox::World;

/// Which firewall driver to ask netavark for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firewall {
    /// `NETAVARK_FW` unset: netavark 1.x's only driver, iptables.
    Iptables,
    /// `NETAVARK_FW=nftables` (netavark 2.x).
    Nftables,
}

/// netavark in one world.
pub struct Netavark {
    label: String,
    bin: PathBuf,
    firewall: Firewall,
    world: World,
    config_dir: PathBuf,
    prepared: BTreeSet<usize>,
}

impl Netavark {
    /// netavark at `bin` with the given firewall driver, its config folder inside `world`.
    pub fn new(world: World, bin: PathBuf, firewall: Firewall) -> Result<Netavark, String> {
        let config_dir = world.subdir("netavark")?;
        Ok(Netavark {
            label: label(&bin, firewall),
            bin,
            firewall,
            world,
            config_dir,
            prepared: BTreeSet::new(),
        })
    }

    fn netns_name(i: usize) -> String {
        format!("nv{i}")
    }

    /// Runs `netavark … setup|teardown NETNS` for container `i`.
    fn run(&self, verb: &str, i: usize) -> Result<Cost, String> {
        let netns = self.world.netns_path(&Netavark::netns_name(i));
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--config")
            .arg(&self.config_dir)
            .arg("--rootless=false")
            .arg(verb)
            .arg(&netns);
        match self.firewall {
            Firewall::Iptables => cmd.env_remove("NETAVARK_FW"),
            Firewall::Nftables => cmd.env("NETAVARK_FW", "nftables"),
        };
        let input = network_options(i).to_string();
        let what = format!("netavark {verb} {}", netns.display());
        let done = run_timed(&what, &mut cmd, Some(input.as_bytes()))?;
        Ok(Cost {
            wall: done.wall,
            max_rss_kib: Some(done.max_rss_kib),
        })
    }
}

/// "netavark 1.4.0 (iptables)".
fn label(bin: &Path, firewall: Firewall) -> String {
    let version = first_line_of(bin, &["--version"]).unwrap_or_else(|| "netavark".into());
    let driver = match firewall {
        Firewall::Iptables => "iptables",
        Firewall::Nftables => "nftables",
    };
    format!("{version} ({driver})")
}

/// The `NetworkOptions` JSON for container `i`.
fn network_options(i: usize) -> Value {
    let j = layout::network_of(i);
    let network = format!("bench{j}");
    json!({
        "container_id": format!("{:064x}", i + 1),
        "container_name": format!("bench-{i}"),
        "networks": {
            &network: {
                "interface_name": "eth0",
                "static_ips": [layout::address(i).to_string()],
            }
        },
        "network_info": {
            &network: {
                "dns_enabled": false,
                "driver": "bridge",
                "id": format!("{:064x}", 0xbe0c_0000_u64 + j as u64),
                "internal": false,
                "ipv6_enabled": false,
                "name": network,
                "network_interface": format!("nvbr{j}"),
                "subnets": [{
                    "gateway": layout::gateway(j).to_string(),
                    "subnet": layout::subnet(j),
                }],
            }
        },
        "port_mappings": [{
            "host_ip": "",
            "container_port": layout::CONTAINER_PORT,
            "host_port": layout::host_port(i),
            "range": 1,
            "protocol": "tcp",
        }],
    })
}

impl System for Netavark {
    fn label(&self) -> &str {
        &self.label
    }

    fn prepare(&mut self, i: usize) -> Result<(), String> {
        if self.prepared.insert(i) {
            self.world.create_netns(&Netavark::netns_name(i))?;
        }
        Ok(())
    }

    fn attach(&mut self, i: usize) -> Result<Cost, String> {
        self.run("setup", i)
    }

    fn detach(&mut self, i: usize) -> Result<Cost, String> {
        self.run("teardown", i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_match_netavark_schema() {
        let v = network_options(1024);
        assert_eq!(v["networks"]["bench1"]["static_ips"][0], "10.201.0.3");
        assert_eq!(
            v["network_info"]["bench1"]["subnets"][0]["subnet"],
            "10.201.0.0/16"
        );
        assert_eq!(v["port_mappings"][0]["host_port"], 11024);
        assert_eq!(v["container_id"].as_str().map(str::len), Some(64));
        assert_eq!(
            v["network_info"]["bench1"]["id"].as_str().map(str::len),
            Some(64)
        );
    }
}
