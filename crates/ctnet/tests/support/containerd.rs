//! containerd 1.6 inside a test sandbox, driven by `ctr run --cni` with ctnet as its CNI
//! plugin.
//!
//! containerd runs from Debian's package with a private configuration; what ctr and its
//! CNI library (go-cni, libcni) keep at fixed paths is covered, in the sandbox's mount
//! namespace only, by private mounts:
//!
//! ```text
//!   D = $CTNET_RUN_DIR/containerd        (the sandbox's own folder)
//!   ├── config.toml   root = D/root, state = D/state, grpc D/containerd.sock, opt D/opt,
//!   │                 the CRI plugin (and its CNI use) off
//!   ├── net.d/        ──bind──▶ /etc/cni/net.d   the conflist ctr reads (the first file)
//!   ├── cni-calls.log one line per plugin call: command, container id, netns, stdin
//!   ├── image/        an OCI layout, tarred to D/image.tar and `ctr images import`ed
//!   └── containerd.log
//!   tmpfs ▶ /opt             /opt/cni/bin/ctnet: ctr looks there first, then in
//!                            Debian's /usr/lib/cni (where portmap is found)
//!   tmpfs ▶ /var/lib/cni     libcni's result cache (read back for DEL)
//!   tmpfs ▶ /run/containerd  shim sockets, runc's state, ctr's stdio fifos
//! ```
//!
//! The machine gets at most the empty mount points /var/lib/cni and /run/containerd.
//! Containers' cgroups are the machine's (ctr puts them at /NAMESPACE/ID); the ctr
//! namespace is unique to each harness, so parallel tests never share one, and they are
//! removed when the harness drops. Shims leave the sandbox's process group (they start
//! their own session), so the harness ends them itself: every task is killed and
//! deleted, then each shim (by the pid file in containerd's state) and containerd (by
//! its pid) are killed.

use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{wait_until, Sandbox};

/// The image every container runs: a static busybox with `ctnet-probe`.
pub const IMAGE: &str = "localhost/ctnet-bb:latest";

/// The busybox applets the image links.
const APPLETS: &str = "sh sleep cat ip httpd wget nc true";

/// One plugin call ctr made, as the logging wrapper in /opt/cni/bin recorded it.
#[derive(Debug, Clone)]
pub struct CniCall {
    /// CNI_COMMAND.
    pub command: String,
    /// CNI_CONTAINERID.
    pub container_id: String,
    /// CNI_NETNS (empty when unset).
    pub netns: String,
    /// CNI_ARGS (empty when unset).
    pub args: String,
    /// The configuration on stdin.
    pub stdin: Value,
}

/// A containerd started inside a sandbox; everything it ran is ended when it drops.
pub struct Containerd<'a> {
    sb: &'a Sandbox,
    dir: String,
    namespace: String,
    pid: u32,
    starter: Child,
}

impl<'a> Containerd<'a> {
    /// Starts containerd in `sb` with `conflist` as the CNI configuration ctr reads, and
    /// imports [`IMAGE`]. ctnet (through a wrapper that logs each call) is the plugin
    /// `ctnet`; every other plugin comes from Debian's /usr/lib/cni.
    pub fn start(sb: &'a Sandbox, conflist: &Value) -> Containerd<'a> {
        let dir = format!(
            "{}/containerd",
            sb.ok("printf %s \"$CTNET_RUN_DIR\"").trim()
        );
        let namespace = format!("ctnet-test-{}", sb.pid());
        std::fs::create_dir_all(&dir).expect("containerd dir");
        let ctnet = sb.ok("command -v ctnet");
        std::fs::write(
            format!("{dir}/ctnet-plugin"),
            plugin_wrapper(&dir, ctnet.trim()),
        )
        .expect("plugin wrapper");
        sb.ok(&private_mounts(&dir));
        std::fs::write(format!("{dir}/config.toml"), config(&dir)).expect("config.toml");
        write_conflist(&dir, conflist);
        let (starter, pid) = start_daemon(sb, &dir);
        let containerd = Containerd {
            sb,
            dir,
            namespace,
            pid,
            starter,
        };
        containerd.ok("version >/dev/null");
        sb.ok(&build_image(&containerd.dir));
        containerd.ok(&format!(
            "images import --snapshotter native {}/image.tar >/dev/null",
            containerd.dir
        ));
        containerd
    }

    /// Replaces the conflist ctr reads (it reads /etc/cni/net.d on every `ctr run`).
    pub fn set_conflist(&self, conflist: &Value) {
        write_conflist(&self.dir, conflist);
    }

    /// `ctr` with this containerd's socket and namespace, as a shell word list.
    pub fn ctr(&self) -> String {
        format!(
            "timeout 60 ctr --address {}/containerd.sock --namespace {}",
            self.dir, self.namespace
        )
    }

    /// Runs `ctr ARGS` inside the sandbox, which must succeed; returns its stdout.
    pub fn ok(&self, args: &str) -> String {
        self.sb.ok(&format!("{} {args}", self.ctr()))
    }

    /// Runs `ctr ARGS` inside the sandbox.
    pub fn run(&self, args: &str) -> Output {
        self.sb.run(&format!("{} {args}", self.ctr()))
    }

    /// The container id ctr gives the CNI plugin for container `id`: NAMESPACE-ID.
    pub fn cni_id(&self, id: &str) -> String {
        format!("{}-{id}", self.namespace)
    }

    /// `ctr run --cni -d IMAGE ID CMD`: a detached container, its network set up (ctr
    /// returns after the ADD).
    pub fn run_detached(&self, id: &str, cmd: &str) {
        self.ok(&format!(
            "run --snapshotter native --cni -d {IMAGE} {id} {cmd} >/dev/null"
        ));
    }

    /// `ctr run --cni --rm IMAGE ID CMD` in the foreground: ctr sets the network up,
    /// waits for the command, sends DEL (with an empty CNI_NETNS) and removes the
    /// container. Returns ctr's output.
    pub fn run_foreground(&self, id: &str, cmd: &str) -> Output {
        self.run(&format!(
            "run --snapshotter native --cni --rm {IMAGE} {id} {cmd}"
        ))
    }

    /// The same as [`Containerd::run_foreground`], started in the background; returns the
    /// child (its own process group) once the command's first line of output is
    /// `first_line`.
    pub fn start_foreground(&self, id: &str, cmd: &str, first_line: &str) -> Child {
        self.sb.start_until(
            &format!(
                "exec {} run --snapshotter native --cni --rm {IMAGE} {id} {cmd}",
                self.ctr()
            ),
            first_line,
        )
    }

    /// `ctr task exec` of `cmd` in container `id`.
    pub fn exec(&self, id: &str, cmd: &str) -> Output {
        self.run(&format!(
            "task exec --exec-id x{} {id} {cmd}",
            unique_exec_id()
        ))
    }

    /// Like [`Containerd::exec`], but it must succeed; returns its stdout.
    pub fn exec_ok(&self, id: &str, cmd: &str) -> String {
        let out = self.exec(id, cmd);
        assert!(
            out.status.success(),
            "`{cmd}` in {id} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The IPv4 address (with prefix) on `eth0` inside container `id`, read there.
    pub fn address_in(&self, id: &str) -> String {
        let out = self.exec_ok(id, "ip -4 -o addr show dev eth0");
        out.split_whitespace()
            .nth(3)
            .unwrap_or_else(|| panic!("no address on eth0 in {id}: {out}"))
            .to_string()
    }

    /// The status of container `id`'s task (RUNNING, STOPPED, ...), None without one.
    pub fn task_status(&self, id: &str) -> Option<String> {
        self.ok("task ls").lines().skip(1).find_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            (cols.first() == Some(&id)).then(|| cols.last().unwrap_or(&"").to_string())
        })
    }

    /// What `ctr` offers to remove a detached container: `task kill -s KILL`, then
    /// `task rm` once it stopped, then `container rm`. None of them calls the plugin.
    pub fn kill_and_remove(&self, id: &str) {
        self.ok(&format!("task kill -s KILL {id}"));
        let stopped = wait_until(Duration::from_secs(10), || {
            self.task_status(id).as_deref() == Some("STOPPED")
        });
        assert!(
            stopped,
            "task {id} did not stop: {:?}",
            self.task_status(id)
        );
        self.ok(&format!("task rm {id} >/dev/null"));
        self.ok(&format!("container rm {id}"));
    }

    /// Every plugin call ctr made so far, in order.
    pub fn cni_calls(&self) -> Vec<CniCall> {
        let log =
            std::fs::read_to_string(format!("{}/cni-calls.log", self.dir)).unwrap_or_default();
        log.lines()
            .map(|line| {
                let v: Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("cni-calls.log: {e}: {line}"));
                let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
                CniCall {
                    command: text("command"),
                    container_id: text("containerId"),
                    netns: text("netns"),
                    args: text("args"),
                    stdin: v["stdin"].clone(),
                }
            })
            .collect()
    }

    /// The calls for container `id` (its CNI id), as their commands.
    pub fn commands_for(&self, id: &str) -> Vec<String> {
        let cni_id = self.cni_id(id);
        self.cni_calls()
            .into_iter()
            .filter(|c| c.container_id == cni_id)
            .map(|c| c.command)
            .collect()
    }

    /// containerd's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(format!("{}/containerd.log", self.dir)).unwrap_or_default()
    }
}

impl Drop for Containerd<'_> {
    fn drop(&mut self) {
        let ns = &self.namespace;
        let ctr = self.ctr();
        let shims = format!("{}/state/io.containerd.runtime.v2.task/{ns}", self.dir);
        // Bounded throughout: every ctr call has its timeout, every loop a count.
        let _ = self.sb.run(&format!(
            "for t in $({ctr} task ls -q); do {ctr} task kill -s KILL $t; done; \
             i=0; while [ $i -lt 50 ] && {ctr} task ls | grep -q RUNNING; do sleep 0.1; i=$((i+1)); done; \
             for t in $({ctr} task ls -q); do {ctr} task rm -f $t; done; \
             for c in $({ctr} containers ls -q); do {ctr} containers rm $c; done; \
             for p in {shims}/*/shim.pid; do [ -f \"$p\" ] && kill -KILL $(cat \"$p\"); done; \
             for f in /sys/fs/cgroup/*/{ns}/*/cgroup.procs; do \
               [ -f \"$f\" ] && for p in $(cat \"$f\"); do kill -KILL $p; done; done; \
             kill {pid}; i=0; while [ $i -lt 50 ] && kill -0 {pid} 2>/dev/null; do sleep 0.1; i=$((i+1)); done; \
             kill -KILL {pid} 2>/dev/null; \
             i=0; while [ $i -lt 50 ] && ls -d /sys/fs/cgroup/*/{ns} >/dev/null 2>&1; do \
               rmdir /sys/fs/cgroup/*/{ns}/* /sys/fs/cgroup/*/{ns} 2>/dev/null; sleep 0.1; i=$((i+1)); done",
            pid = self.pid
        ));
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.starter.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.starter.wait();
    }
}

fn write_conflist(dir: &str, conflist: &Value) {
    std::fs::write(
        format!("{dir}/net.d/10-ctnet.conflist"),
        serde_json::to_string_pretty(conflist).expect("json"),
    )
    .expect("conflist");
}

/// The script making the private folders and mounts (see the module's drawing) and
/// installing the plugin wrapper written to `dir`/ctnet-plugin.
fn private_mounts(dir: &str) -> String {
    format!(
        "set -e; D={dir}; mkdir -p $D/net.d $D/root $D/state $D/opt; \
         mkdir -p /var/lib/cni /run/containerd; \
         mount -t tmpfs ctnet-test /var/lib/cni; mount -t tmpfs ctnet-test /run/containerd; \
         mount -t tmpfs ctnet-test /opt; mkdir -p /opt/cni/bin; \
         mount --bind $D/net.d /etc/cni/net.d; \
         install -m 0755 $D/ctnet-plugin /opt/cni/bin/ctnet"
    )
}

/// The plugin ctr runs as `ctnet`: it appends one JSON line per call (command, container
/// id, netns, CNI_ARGS, the configuration on stdin) to `dir`/cni-calls.log and hands the
/// same stdin to ctnet, whose exit status and output are ctr's answer.
fn plugin_wrapper(dir: &str, ctnet: &str) -> String {
    format!(
        "#!/bin/sh\n\
         in=$(cat)\n\
         printf '{{\"command\":\"%s\",\"containerId\":\"%s\",\"netns\":\"%s\",\"args\":\"%s\",\"stdin\":%s}}\\n' \
           \"$CNI_COMMAND\" \"$CNI_CONTAINERID\" \"$CNI_NETNS\" \"$CNI_ARGS\" \"$in\" >> {dir}/cni-calls.log\n\
         printf %s \"$in\" | exec {ctnet}\n"
    )
}

/// containerd's configuration: everything under `dir`, no CRI (which would read the
/// machine's CNI configuration and serve on TCP), no debug or metrics listeners.
fn config(dir: &str) -> String {
    format!(
        "version = 2\n\
         root = \"{dir}/root\"\n\
         state = \"{dir}/state\"\n\
         disabled_plugins = [\"io.containerd.grpc.v1.cri\", \"io.containerd.snapshotter.v1.btrfs\", \
           \"io.containerd.snapshotter.v1.zfs\", \"io.containerd.snapshotter.v1.devmapper\", \
           \"io.containerd.snapshotter.v1.aufs\"]\n\
         [grpc]\n  address = \"{dir}/containerd.sock\"\n\
         [ttrpc]\n  address = \"{dir}/containerd.sock.ttrpc\"\n\
         [debug]\n  address = \"\"\n\
         [metrics]\n  address = \"\"\n\
         [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{dir}/opt\"\n"
    )
}

/// Starts containerd (its own process group) and waits, at most 20 s, for its socket
/// (killing it if none comes, so the first line never hangs); returns the starting shell
/// and containerd's pid.
fn start_daemon(sb: &Sandbox, dir: &str) -> (Child, u32) {
    let (child, line) = sb.start_with_first_line(&format!(
        "containerd --config {dir}/config.toml >{dir}/containerd.log 2>&1 & pid=$!; \
         i=0; while [ $i -lt 200 ] && ! [ -S {dir}/containerd.sock ]; do sleep 0.1; i=$((i+1)); done; \
         if [ -S {dir}/containerd.sock ]; then echo $pid; else kill -KILL $pid; exit 1; fi; wait $pid"
    ));
    let pid = line.trim().parse().unwrap_or_else(|_| {
        panic!(
            "containerd did not start: {}",
            std::fs::read_to_string(format!("{dir}/containerd.log")).unwrap_or_default()
        )
    });
    (child, pid)
}

/// The script writing [`IMAGE`] as an OCI layout tar (one uncompressed layer; every
/// digest is the sha256 of its blob) to `dir`/image.tar.
fn build_image(dir: &str) -> String {
    format!(
        "set -e; D={dir}/image; R={dir}/rootfs; rm -rf $D $R; mkdir -p $D/blobs/sha256 $R/bin $R/www $R/tmp; \
         cp /bin/busybox $R/bin/busybox; for a in {APPLETS}; do ln -s busybox $R/bin/$a; done; \
         cp \"$(command -v ctnet-probe)\" $R/bin/ctnet-probe; \
         echo hello-from-containerd > $R/www/index.html; \
         blob() {{ d=$(sha256sum \"$1\" | cut -d' ' -f1); s=$(stat -c %s \"$1\"); mv \"$1\" $D/blobs/sha256/$d; echo $d $s; }}; \
         tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C $R -cf $D/layer . ; \
         set -- $(blob $D/layer); L=$1; LS=$2; \
         printf '{{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{{\"Cmd\":[\"sh\"]}},\"rootfs\":{{\"type\":\"layers\",\"diff_ids\":[\"sha256:%s\"]}}}}' $L > $D/config; \
         set -- $(blob $D/config); C=$1; CS=$2; \
         printf '{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:%s\",\"size\":%s}},\"layers\":[{{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:%s\",\"size\":%s}}]}}' $C $CS $L $LS > $D/manifest; \
         set -- $(blob $D/manifest); M=$1; MS=$2; \
         printf '{{\"schemaVersion\":2,\"manifests\":[{{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:%s\",\"size\":%s,\"annotations\":{{\"io.containerd.image.name\":\"{IMAGE}\"}},\"platform\":{{\"architecture\":\"amd64\",\"os\":\"linux\"}}}}]}}' $M $MS > $D/index.json; \
         echo '{{\"imageLayoutVersion\":\"1.0.0\"}}' > $D/oci-layout; \
         tar -C $D -cf {dir}/image.tar oci-layout index.json blobs"
    )
}

fn unique_exec_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::SeqCst)
}
