//! Real Podman 4.3 driving ctnet: as its netavark backend, and as a CNI plugin chained with
//! the reference `tuning` plugin. Each test has its own storage, network configuration and
//! ctnet state inside its sandbox; every container it starts is removed before it ends.

mod support;

use std::time::Duration;

use support::podman::{page_answers, Backend, Podman, IMAGE, PAGE};
use support::{Sandbox, UPLINK_HOST};

/// The CNI backend's networks: Podman writes bridge-plugin conflists of its own; ctnet's
/// replace them.
fn write_ctnet_conflists(podman: &Podman) {
    for (name, bridge, subnet) in [
        ("podman", "cni-podman0", "10.88.0.0/16"),
        ("mynet", "cni-podman1", "10.89.0.0/24"),
    ] {
        podman.write_conflist(
            name,
            &serde_json::json!({
                "cniVersion": "1.0.0", "name": name,
                "plugins": [
                    { "type": "ctnet", "bridge": bridge,
                      "ipam": { "type": "ctnet", "subnet": subnet },
                      "capabilities": { "portMappings": true } },
                    { "type": "tuning", "mtu": 1400 }
                ]
            }),
        );
    }
}

/// `podman run -p 8080:80` reached from the wan, two containers on a user network reaching
/// each other, and nothing left of either in the kernel or in ctnet afterwards.
fn publish_and_user_network(backend: Backend, user_network_opts: &str) {
    let mut sb = Sandbox::with_host_sys();
    sb.with_wan();
    let links_before = sb.ok("ip -br link | awk '{print $1}' | sort");
    {
        let podman = Podman::new(&sb, backend);
        if backend == Backend::Cni {
            write_ctnet_conflists(&podman);
        }
        podman.run_detached(&format!(
            "--name web -p 8080:80 {IMAGE} httpd -f -p 80 -h /www"
        ));
        let page = page_answers(
            &sb,
            "wan",
            &format!("{UPLINK_HOST}:8080"),
            Duration::from_secs(10),
        );
        assert!(page, "the published port never answered from the wan");

        if backend == Backend::Netavark {
            podman.ok(&format!(
                "network create {user_network_opts} mynet >/dev/null"
            ));
        }
        podman.run_detached(&format!(
            "--name b --network mynet {IMAGE} httpd -f -p 80 -h /www"
        ));
        let b_ip = podman.ip_of("b", "mynet");
        let fetched = podman.run_once(&format!(
            "--network mynet {IMAGE} sh -c 'printf \"GET / HTTP/1.0\\r\\n\\r\\n\" | nc {b_ip} 80'"
        ));
        assert!(fetched.contains(PAGE), "{fetched}");
        if backend == Backend::Cni {
            // tuning ran after ctnet on the container's interface.
            let mtu = podman.ok("exec b cat /sys/class/net/eth0/mtu");
            assert_eq!(mtu.trim(), "1400");
        }
        podman.ok("rm -f -t 0 web b >/dev/null");
    }
    let ls = "env -u CTNET_STATE_DIR -u CTNET_RUN_DIR ctnet ls --format json";
    let gone = support::wait_until(Duration::from_secs(10), || sb.ok(ls).trim() == "[]");
    assert!(gone, "containers left attached: {}", sb.ok(ls));
    if backend == Backend::Cni {
        // CNI networks outlive their containers (as the reference bridge plugin's do).
        sb.ok("env -u CTNET_STATE_DIR -u CTNET_RUN_DIR ctnet network rm podman mynet");
    }
    assert_eq!(
        sb.ok("ip -br link | awk '{print $1}' | sort"),
        links_before,
        "links left behind"
    );
    let published = sb.ok("nft list map inet ctnet publish_any");
    assert!(!published.contains("8080"), "{published}");
}

#[test]
fn podman_with_ctnet_as_netavark() {
    publish_and_user_network(Backend::Netavark, "--subnet 10.89.0.0/24");
}

#[test]
fn podman_with_ctnet_as_cni_plugin_chained_with_tuning() {
    publish_and_user_network(Backend::Cni, "--subnet 10.89.0.0/24");
}
