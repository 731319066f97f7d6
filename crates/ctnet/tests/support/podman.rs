//! A real Podman 4.3 inside a sandbox: its own storage, runroot, tmpdir and network
//! configuration under the sandbox's run dir, a busybox image imported from the host's
//! busybox-static, and `podman run` with the flags this machine needs (runc, ulimits).
//! The sandbox must keep the machine's /sys for cgroups ([`Sandbox::with_host_sys`]).
//!
//! ctnet's default paths (/var/lib/ctnet, /run/ctnet), /dev/shm (Podman's lock file),
//! /run/containers and /var/lib/cni (libcni's result cache, written when Podman drives
//! ctnet as a CNI plugin) are made private tmpfs mounts first: whatever a Podman process runs
//! with (its cleanup processes, started by conmon, do not pass ctnet's environment on),
//! nothing of the machine's own is read or written.

use std::time::Duration;

use super::{wait_until, Sandbox};

/// How Podman talks to its network backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `network_backend = "netavark"`, with ctnet (or [`PodmanOptions::netavark`]) as
    /// `netavark` in the first `helper_binaries_dir`.
    Netavark,
    /// `network_backend = "cni"`, with ctnet as the `ctnet` plugin and the reference
    /// `tuning` plugin in `cni_plugin_dirs`.
    Cni,
}

/// What a [`Podman`] is set up with.
#[derive(Debug, Clone)]
pub struct PodmanOptions {
    pub backend: Backend,
    /// Whether `podman` runs with the sandbox's `CTNET_STATE_DIR` and `CTNET_RUN_DIR`
    /// (a disk folder under /tmp, as a user setting them would have), rather than with
    /// ctnet's default paths.
    pub ctnet_env: bool,
    /// The program installed as `netavark` (default: ctnet itself), e.g. a logging
    /// wrapper script or the reference /usr/lib/podman/netavark.
    pub netavark: Option<String>,
}

impl PodmanOptions {
    pub fn new(backend: Backend) -> PodmanOptions {
        PodmanOptions {
            backend,
            ctnet_env: false,
            netavark: None,
        }
    }
}

/// The flags every container started here needs on this machine.
pub const RUN_FLAGS: &str = "--runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024";

/// The image every test container runs: busybox with `sh nc httpd echo cat printf sleep
/// nslookup` and `/www/index.html` saying [`PAGE`].
pub const IMAGE: &str = "localhost/bb:latest";

/// What busybox httpd serves from /www.
pub const PAGE: &str = "hello-from-podman";

/// A Podman set up inside a sandbox. Dropping it removes every container it has.
pub struct Podman<'a> {
    pub sb: &'a Sandbox,
    /// Its folder: storage, runroot, tmpdir, bin (helper binaries), netconf, cni.
    pub dir: String,
    /// The command line that runs `podman` with this set-up.
    pub podman: String,
}

impl<'a> Podman<'a> {
    /// A Podman with ctnet as its `backend`, at ctnet's (private) default paths.
    pub fn new(sb: &'a Sandbox, backend: Backend) -> Self {
        Podman::with_options(sb, PodmanOptions::new(backend))
    }

    pub fn with_options(sb: &'a Sandbox, options: PodmanOptions) -> Self {
        let dir = format!("{}/podman", sb.ok("printf %s \"$CTNET_RUN_DIR\"").trim());
        make_defaults_private(sb);
        let ctnet = sb.ok("command -v ctnet").trim().to_string();
        let netavark = options.netavark.clone().unwrap_or_else(|| ctnet.clone());
        let backend = match options.backend {
            Backend::Netavark => "netavark",
            Backend::Cni => "cni",
        };
        sb.ok(&format!(
            "set -e; D={dir}; mkdir -p $D/bin $D/cni $D/netconf $D/rootfs/bin $D/rootfs/www; \
             ln -sf {netavark} $D/bin/netavark; ln -sf {ctnet} $D/cni/ctnet; \
             ln -sf /usr/lib/cni/tuning $D/cni/tuning; \
             cp /bin/busybox $D/rootfs/bin/busybox; \
             for c in sh nc httpd echo cat printf sleep nslookup; do ln -sf busybox $D/rootfs/bin/$c; done; \
             echo {PAGE} > $D/rootfs/www/index.html; tar -C $D/rootfs -cf $D/bb.tar .; \
             printf '%s\\n' '[engine]' 'helper_binaries_dir = [\"'$D/bin'\", \"/usr/lib/podman\"]' \
               'cgroup_manager = \"cgroupfs\"' 'events_logger = \"file\"' '[network]' \
               'network_backend = \"{backend}\"' 'network_config_dir = \"'$D/netconf'\"' \
               'cni_plugin_dirs = [\"'$D/cni'\"]' > $D/containers.conf"
        ));
        let env = if options.ctnet_env {
            "env"
        } else {
            "env -u CTNET_STATE_DIR -u CTNET_RUN_DIR"
        };
        let podman = format!(
            "{env} CONTAINERS_CONF={dir}/containers.conf podman --root {dir}/storage \
             --runroot {dir}/runroot --tmpdir {dir}/tmp"
        );
        let p = Podman { sb, dir, podman };
        p.ok(&format!("import {}/bb.tar {IMAGE} >/dev/null", p.dir));
        p
    }

    /// Runs `podman ARGS`, which must succeed; returns its stdout.
    pub fn ok(&self, args: &str) -> String {
        self.sb.ok(&format!("{} {args}", self.podman))
    }

    /// Runs `podman ARGS`, which must fail; returns its stderr.
    pub fn fails(&self, args: &str) -> String {
        self.sb.fails(&format!("{} {args}", self.podman))
    }

    /// Runs `podman ARGS` whatever it answers.
    pub fn run(&self, args: &str) -> std::process::Output {
        self.sb.run(&format!("{} {args}", self.podman))
    }

    /// `podman run -d` with [`RUN_FLAGS`]; returns the container id.
    pub fn run_detached(&self, args: &str) -> String {
        self.ok(&format!("run -d {RUN_FLAGS} {args}"))
            .trim()
            .to_string()
    }

    /// `podman run --rm` with [`RUN_FLAGS`] (in the foreground); returns its stdout.
    pub fn run_once(&self, args: &str) -> String {
        self.ok(&format!("run --rm {RUN_FLAGS} {args}"))
    }

    /// The container's IPv4 address on `network`, as `podman inspect` has it.
    pub fn ip_of(&self, name: &str, network: &str) -> String {
        self.ok(&format!(
            "inspect -f '{{{{.NetworkSettings.Networks.{network}.IPAddress}}}}' {name}"
        ))
        .trim()
        .to_string()
    }

    /// The address busybox's `nslookup NAME` in container `from` gets for `name` from
    /// the first nameserver of its resolv.conf (the search domains applied), or None when
    /// it gets none.
    pub fn lookup(&self, from: &str, name: &str) -> Option<String> {
        let out = self.run(&format!("exec {from} nslookup {name}"));
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        // "Server: GW / Address: GW:53", then per answer "Name: N / Address: IP".
        text.split("Name:").skip(1).find_map(|answer| {
            answer
                .lines()
                .find_map(|l| l.trim().strip_prefix("Address:"))
                .map(|a| a.trim().to_string())
        })
    }

    /// The pids of `aardvark-dns` processes in the sandbox's own network namespace
    /// (processes of the machine's other namespaces, e.g. another test's, do not count).
    pub fn aardvark_pids(&self) -> Vec<String> {
        let out = self.sb.ok(
            "me=$(readlink /proc/self/ns/net); for d in /proc/[0-9]*; do \
               [ \"$(cat $d/comm 2>/dev/null)\" = aardvark-dns ] || continue; \
               [ \"$(readlink $d/ns/net 2>/dev/null)\" = \"$me\" ] && echo ${d#/proc/}; \
             done; true",
        );
        out.split_whitespace().map(str::to_string).collect()
    }

    /// Writes `conflist` as network `name`'s configuration (the CNI backend).
    pub fn write_conflist(&self, name: &str, conflist: &serde_json::Value) {
        let dir = self.sb.ok(&format!("printf %s {}", self.dir));
        std::fs::write(
            format!("{}/netconf/{name}.conflist", dir.trim()),
            conflist.to_string(),
        )
        .expect("conflist");
    }
}

impl Drop for Podman<'_> {
    fn drop(&mut self) {
        // Containers are not in the sandbox's process tree: remove them explicitly.
        let _ = self.sb.run(&format!("{} rm -af -t 0", self.podman));
    }
}

/// Private tmpfs mounts on ctnet's default paths, /dev/shm, /run/containers and
/// /var/lib/cni (see the
/// module's text); once per sandbox.
pub fn make_defaults_private(sb: &Sandbox) {
    sb.ok(
        "[ \"$(findmnt -n -o SOURCE /var/lib/ctnet)\" = ctnet-test ] && exit 0; \
         mkdir -p /var/lib/ctnet /run/ctnet /run/containers /var/lib/cni && \
         mount -t tmpfs ctnet-test /var/lib/ctnet && mount -t tmpfs ctnet-test /run/ctnet && \
         mount -t tmpfs ctnet-test /dev/shm && mount -t tmpfs ctnet-test /run/containers && \
         mount -t tmpfs ctnet-test /var/lib/cni",
    );
}

/// Whether `http://ADDR/` answers with [`PAGE`] from namespace `ns` within `timeout`.
pub fn page_answers(sb: &Sandbox, ns: &str, addr: &str, timeout: Duration) -> bool {
    wait_until(timeout, || {
        sb.run(&format!(
            "ip netns exec {ns} curl -s -g --max-time 2 'http://{addr}/'"
        ))
        .stdout
        .starts_with(PAGE.as_bytes())
    })
}
