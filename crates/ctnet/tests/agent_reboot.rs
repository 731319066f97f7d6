//! A host that reboots with `ctnet-agent` as a service (issue 14): a fresh network
//! namespace reusing the old state dir, the agent started in it, and before any ctnet
//! command the networks' bridges and ctnet's table are back (endpoints whose namespaces
//! died with the old host dropped), and a new container works: TCP through the bridge,
//! to the wan (masqueraded) and on a published port.

mod support;

use std::time::Duration;

use ctnet_engine::agent;
use support::{wait_until, Sandbox, UPLINK_HOST, WAN_SERVER};

/// Starts `ctnet-agent` as a service in the sandbox (killed with the sandbox) and waits
/// until its firewall watch runs, which is after its repair at start.
fn start_agent(sb: &mut Sandbox) {
    sb.spawn_ready(
        "ctnet-agent --state-dir \"$CTNET_STATE_DIR\" --run-dir \"$CTNET_RUN_DIR\" & echo started; wait",
    );
    let watching = || agent::read_status(&sb.paths()).is_some_and(|s| s.firewall.watching);
    assert!(
        wait_until(Duration::from_secs(10), watching),
        "the agent did not start watching (is ctnet-agent built? `cargo build -p ctnet-agent`): {:?}",
        agent::read_status(&sb.paths())
    );
}

/// The bridge of network `name`, from `ctnet network ls`.
fn bridge_of(sb: &Sandbox, name: &str) -> String {
    let nets: serde_json::Value =
        serde_json::from_str(&sb.ok("ctnet network ls --format json")).unwrap();
    nets.as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .and_then(|n| n["bridge"].as_str())
        .unwrap_or_else(|| panic!("no network {name}: {nets}"))
        .to_string()
}

#[test]
fn after_a_reboot_the_agent_brings_networks_and_the_table_back_before_any_ctnet_command() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    start_agent(&mut sb);
    sb.ok("ctnet network create red --subnet 10.63.0.0/24 && ctnet network create blue --subnet 10.64.0.0/24 \
           && ctnet netns add r1 && ctnet attach red r1 -p 8080:80");
    let (red, blue) = (bridge_of(&sb, "red"), bridge_of(&sb, "blue"));
    sb.serve(Some("r1"), "--tcp 80");
    sb.reach(Some("wan"), "tcp", &format!("{UPLINK_HOST}:8080"));

    sb.reboot();
    sb.with_wan();
    // The new host has nothing of ctnet's: no bridge, no table.
    assert!(sb.run(&format!("ip link show {red}")).status.code() != Some(0));
    assert!(!sb.ok("nft list tables").contains("ctnet"));

    start_agent(&mut sb);
    // No ctnet command has run: only the agent can have made these.
    let link = sb.ok(&format!("ip -o -4 addr show dev {red}"));
    assert!(link.contains("10.63.0.1/24"), "{link}");
    sb.ok(&format!("ip link show {blue}"));
    let table = sb.ok("nft list table inet ctnet");
    for bridge in [&red, &blue] {
        assert!(table.contains(bridge.as_str()), "{table}");
    }
    assert!(
        !table.contains("8080"),
        "r1 died with the old host: its port is gone\n{table}"
    );

    // The table is as the store says, the agent runs, and a new container works.
    let doctor = sb.ok("ctnet doctor --format json");
    let findings: serde_json::Value = serde_json::from_str(&doctor).unwrap();
    let agent = findings
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "agent")
        .expect("doctor reports the agent");
    assert_eq!(agent["severity"], "ok", "{agent}");
    assert!(agent["detail"]
        .as_str()
        .unwrap()
        .contains("watching the firewall"));
    sb.ok("ctnet netns add r2 && ctnet attach red r2 -p 8080:80 && ctnet netns add r3 && ctnet attach red r3");
    sb.serve(Some("r2"), "--tcp 80");
    sb.serve(Some("wan"), &format!("--bind {WAN_SERVER} --tcp 80"));
    let r2 = sb.addr_of("r2", "eth0");
    let r3 = sb.addr_of("r3", "eth0");
    // Through the bridge, unmasqueraded: r2 sees r3's own address.
    assert!(sb
        .reach(Some("r3"), "tcp", &format!("{r2}:80"))
        .starts_with(&format!("from {r3}:")));
    assert!(sb
        .reach(Some("r2"), "tcp", &format!("{WAN_SERVER}:80"))
        .starts_with(&format!("from {UPLINK_HOST}:")));
    assert!(sb
        .reach(Some("wan"), "tcp", &format!("{UPLINK_HOST}:8080"))
        .starts_with("from "));
}
