//! The throwaway world the benchmark runs in, so it never touches the machine's own
//! network: the process re-executes itself under `unshare --net --mount` (as
//! `scripts/demo` does), mounts private tmpfs on `/run/netns` and on its state folder,
//! and then gives every measured system a *fresh* network namespace of its own (a
//! [`World`]), so no system pays for rules or devices another one left behind.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use ctnet_kernel::{link, Netns, NetnsDir, NetnsName, RtSocket};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use crate::child::which;

/// Set in the re-executed process, so it knows it is inside the sandbox.
const INSIDE_ENV: &str = "CTNET_BENCH_INSIDE";
/// The private state folder, chosen by the outer process.
const ROOT_ENV: &str = "CTNET_BENCH_ROOT";
/// Where named namespaces live; also what ctnet is told (`CTNET_NETNS_DIR`).
pub const NETNS_DIR: &str = "/run/netns";

/// Where the benchmark is running.
pub enum Place {
    /// In the machine's own namespaces: the caller must re-execute into the sandbox.
    Outside,
    /// Inside the sandbox, with the private state folder.
    Inside(PathBuf),
}

/// Tells the outer run from the re-executed one.
pub fn place() -> Place {
    match (std::env::var_os(INSIDE_ENV), std::env::var_os(ROOT_ENV)) {
        (Some(flag), Some(root)) if flag == "1" => Place::Inside(PathBuf::from(root)),
        _ => Place::Outside,
    }
}

/// Re-runs this program with the same arguments inside new network and mount
/// namespaces, waits for it and returns its exit code.
///
/// The state folder is made here (an empty directory on the host's /tmp, needed as a
/// mount point) and removed once the sandbox is gone; everything written into it lives
/// on a tmpfs only the sandbox sees.
pub fn reexec_inside() -> Result<i32, String> {
    if !nix::unistd::geteuid().is_root() {
        return Err(
            "ctnet-bench must run as root: it creates network namespaces, bridges and firewall rules (inside its own sandbox); run it with sudo".into(),
        );
    }
    let unshare_bin = which("unshare")
        .ok_or("unshare not found in PATH; install it with: apt-get install -y util-linux")?;
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find this program's own path to re-run it: {e}"))?;
    let root = std::env::temp_dir().join(format!("ctnet-bench.{}", std::process::id()));
    std::fs::create_dir(&root)
        .map_err(|e| format!("create the state folder {}: {e}", root.display()))?;
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let status = Command::new(unshare_bin)
        .args([
            "--net",
            "--mount",
            "--propagation",
            "private",
            "--fork",
            "--",
        ])
        .arg(&exe)
        .args(&args)
        .env(INSIDE_ENV, "1")
        .env(ROOT_ENV, &root)
        .status();
    let _ = std::fs::remove_dir(&root);
    let status = status.map_err(|e| format!("run {} under unshare: {e}", exe.display()))?;
    Ok(status.code().unwrap_or(1))
}

/// Inside the sandbox: private tmpfs on the state folder and on `/run/netns`.
pub fn prepare_inside(root: &Path) -> Result<(), String> {
    mount_tmpfs(root)?;
    std::fs::create_dir_all(NETNS_DIR).map_err(|e| format!("create {NETNS_DIR}: {e}"))?;
    mount_tmpfs(Path::new(NETNS_DIR))
}

/// Mounts a fresh, private tmpfs on `dir` (this sandbox's mount namespace only).
pub fn mount_tmpfs(dir: &Path) -> Result<(), String> {
    mount(
        Some("ctnet-bench"),
        dir,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0755"),
    )
    .map_err(|e| format!("mount a tmpfs on {}: {e}", dir.display()))
}

/// Where [`keep_host_cgroups`] keeps the machine's cgroup mounts, inside the state folder.
const HOST_CGROUPS: &str = "host-cgroup";

/// Keeps a recursive bind of the machine's `/sys/fs/cgroup` inside the state folder.
///
/// Every [`World`] replaces /sys with a sysfs of its own namespace, and that sysfs has
/// no cgroup hierarchies mounted on it; container engines need them (Podman and runc
/// place every container in a cgroup). So before the first world, while /sys is still
/// the machine's, its cgroup tree is bound here, to be bound back onto each fresh
/// sysfs by [`mount_host_cgroups`]. The bind lives only in the sandbox's mount
/// namespace. Call it once, before the first [`World::enter`].
pub fn keep_host_cgroups(root: &Path) -> Result<(), String> {
    let kept = root.join(HOST_CGROUPS);
    std::fs::create_dir_all(&kept).map_err(|e| format!("create {}: {e}", kept.display()))?;
    mount(
        Some("/sys/fs/cgroup"),
        &kept,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| format!("bind the machine's /sys/fs/cgroup in the sandbox: {e}"))
}

/// Binds the cgroup tree kept by [`keep_host_cgroups`] onto the current world's
/// `/sys/fs/cgroup`. It goes away with that sysfs when the next world replaces /sys.
pub fn mount_host_cgroups(root: &Path) -> Result<(), String> {
    let kept = root.join(HOST_CGROUPS);
    mount(
        Some(&kept),
        "/sys/fs/cgroup",
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| format!("bind the machine's cgroups on /sys/fs/cgroup in the sandbox: {e}"))
}

/// One system's private network namespace and state folder.
///
/// Entering a world moves this process (its main thread, which every child inherits)
/// into a brand-new network namespace; the previous world's namespace, and with it
/// every bridge, veth and firewall rule made there, vanishes once nothing holds it.
/// Named namespaces made for containers are unmounted when the world is dropped.
pub struct World {
    /// This world's own state folder (ctnet state, netavark config, CNI IPAM data).
    pub dir: PathBuf,
    netns: NetnsDir,
    names: Vec<NetnsName>,
}

/// Counts worlds, so each gets its own folder.
static WORLDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl World {
    /// Enters a fresh network namespace with loopback up and a sysfs of its own (some
    /// plugins read `/sys/class/net`, which shows the namespace of whoever mounted it).
    ///
    /// Must be called from the main thread with no other thread running, so every
    /// child started afterwards lands in the new namespace.
    pub fn enter(root: &Path, label: &str) -> Result<World, String> {
        unshare(CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("create a network namespace for {label}: {e}"))?;
        remount_sysfs()?;
        let mut sock = RtSocket::open().map_err(|e| format!("{label}: {e}"))?;
        // Loopback is always index 1 in a new namespace.
        link::set_up(&mut sock, 1, "lo").map_err(|e| format!("{label}: {e}"))?;
        let seq = WORLDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let slug: String = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let dir = root.join(format!("{seq:02}-{slug}"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        Ok(World {
            dir,
            netns: NetnsDir::new(NETNS_DIR),
            names: Vec::new(),
        })
    }

    /// A folder inside this world's state folder, created.
    pub fn subdir(&self, name: &str) -> Result<PathBuf, String> {
        let dir = self.dir.join(name);
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        Ok(dir)
    }

    /// Creates a named namespace in `/run/netns`, to be removed with the world.
    pub fn create_netns(&mut self, name: &str) -> Result<Netns, String> {
        let name = netns_name(name)?;
        let ns = self
            .netns
            .create(&name)
            .map_err(|e| format!("create network namespace {name}: {e}"))?;
        self.names.push(name);
        Ok(ns)
    }

    /// Records a namespace someone else made (`ctnet netns add`), to be removed with
    /// the world.
    pub fn adopt_netns(&mut self, name: &str) -> Result<(), String> {
        self.names.push(netns_name(name)?);
        Ok(())
    }

    /// Deletes a named namespace now (the floor's detach does this).
    pub fn delete_netns(&mut self, name: &str) -> Result<(), String> {
        let name = netns_name(name)?;
        self.netns
            .delete(&name)
            .map_err(|e| format!("delete network namespace {name}: {e}"))?;
        self.names.retain(|n| *n != name);
        Ok(())
    }

    /// The file of a named namespace.
    pub fn netns_path(&self, name: &str) -> PathBuf {
        Path::new(NETNS_DIR).join(name)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // The kernel dismantles deleted namespaces on a work queue, after this returns;
        // the next measurement waits for the machine to go quiet (see crate::quiet).
        for name in std::mem::take(&mut self.names) {
            let _ = self.netns.delete(&name);
        }
    }
}

fn netns_name(name: &str) -> Result<NetnsName, String> {
    NetnsName::new(name).map_err(|e| e.to_string())
}

/// Replaces this process's /sys with a sysfs of the current network namespace.
fn remount_sysfs() -> Result<(), String> {
    // The first time this unmounts the host's /sys from our private mount namespace
    // (the host keeps its own); later times the sysfs of the previous world.
    match umount2("/sys", MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) => {}
        Err(e) => return Err(format!("unmount /sys in the sandbox: {e}")),
    }
    mount(
        Some("sysfs"),
        "/sys",
        Some("sysfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|e| format!("mount sysfs on /sys in the sandbox: {e}"))
}
