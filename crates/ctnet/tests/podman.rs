//! Real Podman 4.3 driving ctnet: as its netavark backend, and as a CNI plugin chained with
//! the reference `tuning` plugin. Each test has its own storage, network configuration and
//! ctnet state inside its sandbox; every container it starts is removed before it ends.

mod support;

use std::path::PathBuf;

use support::{Sandbox, UPLINK_HOST};

/// A Podman set up inside a sandbox, with a busybox image imported from the host.
struct Podman<'a> {
    sb: &'a Sandbox,
    dir: String,
    podman: String,
}

impl<'a> Podman<'a> {
    /// `backend` is "netavark" (ctnet as netavark) or "cni" (ctnet as a CNI plugin).
    fn new(sb: &'a Sandbox, backend: &str) -> Self {
        let dir = format!("{}/podman", sb.ok("printf %s \"$CTNET_RUN_DIR\"").trim());
        // Podman's cleanup processes (started by conmon) do not pass ctnet's environment
        // on, so ctnet runs with its default paths here: made private to the sandbox, as
        // are /dev/shm (Podman's lock file) and /run/containers (its IPAM database).
        sb.ok(
            "mkdir -p /var/lib/ctnet /run/ctnet && mount -t tmpfs ctnet-test /var/lib/ctnet && \
               mount -t tmpfs ctnet-test /run/ctnet && mount -t tmpfs ctnet-test /dev/shm && \
               mkdir -p /run/containers && mount -t tmpfs ctnet-test /run/containers",
        );
        let ctnet = PathBuf::from(sb.ok("command -v ctnet").trim());
        sb.ok(&format!(
            "set -e; D={dir}; mkdir -p $D/bin $D/cni $D/netconf $D/rootfs/bin $D/rootfs/www; \
             ln -sf {ctnet} $D/bin/netavark; ln -sf {ctnet} $D/cni/ctnet; ln -sf /usr/lib/cni/tuning $D/cni/tuning; \
             cp /bin/busybox $D/rootfs/bin/busybox; \
             for c in sh nc httpd echo cat printf sleep; do ln -sf busybox $D/rootfs/bin/$c; done; \
             echo hello-from-podman > $D/rootfs/www/index.html; tar -C $D/rootfs -cf $D/bb.tar .; \
             printf '%s\\n' '[engine]' 'helper_binaries_dir = [\"'$D/bin'\", \"/usr/lib/podman\"]' \
               'cgroup_manager = \"cgroupfs\"' 'events_logger = \"file\"' '[network]' \
               'network_backend = \"{backend}\"' 'network_config_dir = \"'$D/netconf'\"' \
               'cni_plugin_dirs = [\"'$D/cni'\"]' > $D/containers.conf",
            ctnet = ctnet.display()
        ));
        let podman = format!(
            "env -u CTNET_STATE_DIR -u CTNET_RUN_DIR CONTAINERS_CONF={dir}/containers.conf podman --root {dir}/storage --runroot {dir}/runroot --tmpdir {dir}/tmp"
        );
        if backend == "cni" {
            // Podman writes bridge-plugin conflists of its own; ctnet's replace them.
            for (name, bridge, subnet) in [
                ("podman", "cni-podman0", "10.88.0.0/16"),
                ("mynet", "cni-podman1", "10.89.0.0/24"),
            ] {
                let conflist = serde_json::json!({
                    "cniVersion": "1.0.0", "name": name,
                    "plugins": [
                        { "type": "ctnet", "bridge": bridge,
                          "ipam": { "type": "ctnet", "subnet": subnet },
                          "capabilities": { "portMappings": true } },
                        { "type": "tuning", "mtu": 1400 }
                    ]
                });
                std::fs::write(
                    format!(
                        "{}/netconf/{name}.conflist",
                        sb.ok(&format!("printf %s {dir}")).trim()
                    ),
                    conflist.to_string(),
                )
                .expect("conflist");
            }
        }
        let p = Podman { sb, dir, podman };
        p.ok(&format!(
            "import {}/bb.tar localhost/bb:latest >/dev/null",
            p.dir
        ));
        p
    }

    fn ok(&self, args: &str) -> String {
        self.sb.ok(&format!("{} {args}", self.podman))
    }

    /// `podman run -d` with the flags this VM needs; returns the container id.
    fn run_detached(&self, args: &str) -> String {
        self.ok(&format!(
            "run -d --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 {args}"
        ))
        .trim()
        .to_string()
    }

    fn ip_of(&self, name: &str, network: &str) -> String {
        self.ok(&format!(
            "inspect -f '{{{{.NetworkSettings.Networks.{network}.IPAddress}}}}' {name}"
        ))
        .trim()
        .to_string()
    }
}

impl Drop for Podman<'_> {
    fn drop(&mut self) {
        // Containers are not in the sandbox's process tree: remove them explicitly.
        let _ = self.sb.run(&format!("{} rm -af -t 0", self.podman));
    }
}

/// `podman run -p 8080:80` reached from the wan, two containers on a user network reaching
/// each other, and nothing left of either in the kernel or in ctnet afterwards.
fn publish_and_user_network(backend: &str, user_network_opts: &str) {
    let mut sb = Sandbox::with_host_sys();
    sb.with_wan();
    let links_before = sb.ok("ip -br link | awk '{print $1}' | sort");
    {
        let podman = Podman::new(&sb, backend);
        podman.run_detached("--name web -p 8080:80 localhost/bb:latest httpd -f -p 80 -h /www");
        let page = support::wait_until(std::time::Duration::from_secs(10), || {
            sb.run(&format!(
                "ip netns exec wan curl -s --max-time 2 http://{UPLINK_HOST}:8080/"
            ))
            .stdout
            .starts_with(b"hello-from-podman")
        });
        assert!(page, "the published port never answered from the wan");

        if backend == "netavark" {
            podman.ok(&format!(
                "network create {user_network_opts} mynet >/dev/null"
            ));
        }
        podman.run_detached("--name b --network mynet localhost/bb:latest httpd -f -p 80 -h /www");
        let b_ip = podman.ip_of("b", "mynet");
        let fetched = podman.ok(&format!(
            "run --rm --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --network mynet \
             localhost/bb:latest sh -c 'printf \"GET / HTTP/1.0\\r\\n\\r\\n\" | nc {b_ip} 80'"
        ));
        assert!(fetched.contains("hello-from-podman"), "{fetched}");
        if backend == "cni" {
            // tuning ran after ctnet on the container's interface.
            let mtu = podman.ok("exec b cat /sys/class/net/eth0/mtu");
            assert_eq!(mtu.trim(), "1400");
        }
        podman.ok("rm -f -t 0 web b >/dev/null");
    }
    let ls = "env -u CTNET_STATE_DIR -u CTNET_RUN_DIR ctnet ls --format json";
    let gone = support::wait_until(std::time::Duration::from_secs(10), || {
        sb.ok(ls).trim() == "[]"
    });
    assert!(gone, "containers left attached: {}", sb.ok(ls));
    if backend == "cni" {
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
    publish_and_user_network("netavark", "--subnet 10.89.0.0/24");
}

#[test]
fn podman_with_ctnet_as_cni_plugin_chained_with_tuning() {
    publish_and_user_network("cni", "--subnet 10.89.0.0/24");
}
