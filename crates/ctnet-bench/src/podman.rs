//! Podman end to end: the wall clock of whole `podman run --rm` commands, with Podman's
//! own netavark and with ctnet in its place (a `netavark` symlink to ctnet in Podman's
//! helper folder: ctnet takes the netavark role from its program name), and likewise on
//! Podman's CNI back end, with the CNI reference plugins (Podman's default CNI network)
//! and with ctnet as the CNI plugin. `podman run --network none` in the same world is the
//! baseline: a run's time minus it is the network's share.
//!
//! Each back end gets a world of its own: a fresh network namespace with a sysfs of its
//! own and the machine's cgroups bound onto it (runc places every container in a
//! cgroup); private tmpfs on the places where the back ends and Podman keep state
//! outside the world's state folder (Podman's run root, ctnet's default `/var/lib/ctnet`
//! and `/run/ctnet`, libcni's cache, the image blob cache, Podman's lock segment in
//! `/dev/shm`); and Podman's storage, tmp folder, network configs and containers.conf in
//! the world's state folder. Nothing is shared with the machine's own Podman, network or
//! ctnet.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::child::{first_line_of, is_executable, run_timed, which, Finished};
use crate::sandbox::{self, World};
use crate::{quiet, systems};

/// The image every run starts, imported from a tarball (no registry needed).
pub const IMAGE: &str = "localhost/bb:latest";
/// Where the static busybox the image is made of comes from (Debian's busybox-static).
const BUSYBOX: &str = "/bin/busybox";
/// The port the published run maps (host 8080 to the container's 80/tcp).
pub const PUBLISH: &str = "8080:80";
/// Flags every `podman run` needs on the machines this was written for: crun fails on a
/// hybrid cgroup v1/v2 setup, and the ulimits keep runc from asking for more than the
/// sandbox allows.
const RUN_FLAGS: [&str; 6] = [
    "--runtime",
    "runc",
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
];
/// Podman's run root. Podman refuses one longer than 50 characters (conmon's socket
/// paths must fit), so it cannot live in the world's state folder; this is Podman's own
/// default, on a private tmpfs (see [`PRIVATE_PATHS`]).
const RUNROOT: &str = "/run/containers/storage";
/// The places Podman and the back ends write to outside the folders Podman is given,
/// each covered by a fresh private tmpfs in every world.
const PRIVATE_PATHS: [&str; 6] = [
    "/run/containers",     // holds RUNROOT
    "/var/lib/ctnet",      // ctnet's default state (Podman passes no environment on)
    "/run/ctnet",          // ctnet's default run folder
    "/var/lib/cni",        // libcni's result cache
    "/var/lib/containers", // the image blob-info cache of `podman import`
    "/dev/shm",            // Podman's lock segment, libpod_lock
];
/// How long to wait at most for a run's conmon and cleanup processes to finish.
const LEFTOVER_MAX: Duration = Duration::from_secs(10);

/// One kind of `podman run`, timed once per round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// `--network none`: no network back end is called; the baseline.
    NoNetwork,
    /// Podman's default network "podman" (a bridge, 10.88.0.0/16), no port.
    Default,
    /// The default network with one published port, `-p 8080:80`.
    Publish,
}

/// Every case, in the order each round runs them (and the tables print them).
pub const CASES: [Case; 3] = [Case::NoNetwork, Case::Default, Case::Publish];

impl Case {
    /// The `podman run` arguments that make this case.
    fn args(self) -> &'static [&'static str] {
        match self {
            Case::NoNetwork => &["--network", "none"],
            Case::Default => &[],
            Case::Publish => &["-p", PUBLISH],
        }
    }

    /// How the tables name this case.
    pub fn describe(self) -> &'static str {
        match self {
            Case::NoNetwork => "--network none",
            Case::Default => "default network",
            Case::Publish => "-p 8080:80",
        }
    }
}

/// A network back end of Podman.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Podman's own netavark.
    Netavark,
    /// ctnet called by Podman as netavark.
    CtnetAsNetavark,
    /// Podman's CNI back end with its default network: the reference plugins bridge,
    /// portmap, firewall and tuning.
    CniPlugins,
    /// Podman's CNI back end with a network whose only plugin is ctnet.
    CtnetAsCni,
}

impl Backend {
    /// For ctnet's two roles, the back end it stands in for: the ratios' denominator.
    pub fn stands_in_for(self) -> Option<Backend> {
        match self {
            Backend::CtnetAsNetavark => Some(Backend::Netavark),
            Backend::CtnetAsCni => Some(Backend::CniPlugins),
            Backend::Netavark | Backend::CniPlugins => None,
        }
    }
}

/// A back end to measure: its label and the program or plugin folder it runs, or why
/// it cannot be measured.
pub struct Entry {
    /// Which back end.
    pub backend: Backend,
    /// The name printed in the tables.
    pub label: String,
    /// netavark's or ctnet's binary, or the reference plugins' folder.
    pub program: Result<PathBuf, String>,
}

/// What every Podman measurement needs from the machine.
pub struct Tools {
    podman: PathBuf,
    busybox: PathBuf,
    /// "podman version 4.3.1".
    pub version: String,
}

/// Finds podman, runc and a static busybox; the error says what to install.
pub fn find_tools() -> Result<Tools, String> {
    let podman = which("podman").ok_or("podman not installed (apt-get install podman); skipped")?;
    if which("runc").is_none() {
        return Err("runc not installed (apt-get install runc); skipped".into());
    }
    let busybox = PathBuf::from(BUSYBOX);
    if !is_executable(&busybox) || !is_static(&busybox) {
        return Err(format!(
            "no static busybox at {BUSYBOX} to make the image from (apt-get install busybox-static); skipped"
        ));
    }
    let version = first_line_of(&podman, &["--version"]).unwrap_or_else(|| "podman".into());
    Ok(Tools {
        podman,
        busybox,
        version,
    })
}

/// The four back ends, in table order, each ready or with the reason it is skipped.
pub fn entries(ctnet: &Path, netavark: &Path, cni_dir: &Path) -> Vec<Entry> {
    let ctnet_version = first_line_of(ctnet, &["--version"]).unwrap_or_else(|| "ctnet".into());
    let iptables = which("iptables").is_some();
    let netavark_program = if !is_executable(netavark) {
        Err(format!(
            "not installed at {} (apt-get install netavark); skipped",
            netavark.display()
        ))
    } else if !iptables {
        Err("iptables not installed (apt-get install iptables); skipped".into())
    } else {
        Ok(netavark.to_path_buf())
    };
    let plugins = ["bridge", "host-local", "portmap", "firewall", "tuning"];
    let cni_program = if let Some(missing) =
        plugins.iter().find(|p| !is_executable(&cni_dir.join(p)))
    {
        Err(format!(
            "not installed: no {missing} in {} (apt-get install containernetworking-plugins); skipped",
            cni_dir.display()
        ))
    } else if !iptables {
        Err("iptables not installed (apt-get install iptables); skipped".into())
    } else {
        Ok(cni_dir.to_path_buf())
    };
    let cni_label = match systems::cni::plugins_version() {
        Some(v) => format!("cni plugins {v}"),
        None => "cni plugins".into(),
    };
    vec![
        Entry {
            backend: Backend::Netavark,
            label: first_line_of(netavark, &["--version"]).unwrap_or_else(|| "netavark".into()),
            program: netavark_program,
        },
        Entry {
            backend: Backend::CtnetAsNetavark,
            label: format!("{ctnet_version} as netavark"),
            program: Ok(ctnet.to_path_buf()),
        },
        Entry {
            backend: Backend::CniPlugins,
            label: cni_label,
            program: cni_program,
        },
        Entry {
            backend: Backend::CtnetAsCni,
            label: format!("{ctnet_version} as CNI plugin"),
            program: Ok(ctnet.to_path_buf()),
        },
    ]
}

/// One back end's outcome.
pub struct Row {
    /// Which back end.
    pub backend: Backend,
    /// The back end's label.
    pub label: String,
    /// Wall clock of each run, one list per case in [`CASES`] order; or why there are
    /// none (not installed, failed).
    pub outcome: Result<[Vec<Duration>; 3], String>,
}

/// Measures every back end, one after another, each in a world of its own.
pub fn measure(
    root: &Path,
    tools: &Tools,
    entries: &[Entry],
    runs: usize,
    ok: &mut bool,
) -> Vec<Row> {
    let image = build_image(root, &tools.busybox);
    if let Err(e) = &image {
        eprintln!("podman: {e}");
    }
    entries
        .iter()
        .map(|entry| {
            let outcome = match (&entry.program, &image) {
                (Err(why), _) => Err(why.clone()),
                (Ok(_), Err(e)) => {
                    *ok = false;
                    Err(format!("failed: {e}"))
                }
                (Ok(program), Ok(image)) => {
                    measure_backend(root, tools, image, entry, program, runs).map_err(|e| {
                        *ok = false;
                        eprintln!("podman, {}: {e}", entry.label);
                        format!("failed: {e}")
                    })
                }
            };
            Row {
                backend: entry.backend,
                label: entry.label.clone(),
                outcome,
            }
        })
        .collect()
}

/// Sets up one back end's Podman, warms it up and times `runs` rounds of every case.
fn measure_backend(
    root: &Path,
    tools: &Tools,
    image: &Path,
    entry: &Entry,
    program: &Path,
    runs: usize,
) -> Result<[Vec<Duration>; 3], String> {
    let podman = Podman::set_up(root, tools, entry, program)?;
    podman.import(image)?;
    eprintln!(
        "podman, {}: one untimed run of each kind, then {runs} rounds of {}",
        entry.label,
        CASES.map(Case::describe).join(", ")
    );
    // The first runs create the network, its bridge and firewall tables, and fill the
    // page cache with Podman's and the runtime's files.
    for case in CASES {
        podman.run_container(case)?;
    }
    quiet::wait_for_quiet(crate::QUIET_MAX, &format!("podman with {}", entry.label));
    time_rounds(&podman, runs)
}

/// `runs` rounds, each one run of every case in turn, so a slow spell of the machine
/// falls on all cases alike rather than on one.
fn time_rounds(podman: &Podman, runs: usize) -> Result<[Vec<Duration>; 3], String> {
    let mut samples: [Vec<Duration>; 3] = Default::default();
    for _ in 0..runs {
        for (k, case) in CASES.into_iter().enumerate() {
            samples[k].push(podman.run_container(case)?);
        }
    }
    Ok(samples)
}

/// Makes the image's tarball once for every back end: a root file system of a static
/// busybox and the applets the runs call.
fn build_image(root: &Path, busybox: &Path) -> Result<PathBuf, String> {
    let dir = root.join("podman-image");
    let bin = dir.join("rootfs/bin");
    std::fs::create_dir_all(&bin).map_err(|e| format!("create {}: {e}", bin.display()))?;
    std::fs::copy(busybox, bin.join("busybox"))
        .map_err(|e| format!("copy {} into the image: {e}", busybox.display()))?;
    for applet in ["sh", "true"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet))
            .map_err(|e| format!("link {applet} to busybox in the image: {e}"))?;
    }
    let tarball = dir.join("bb.tar");
    let mut tar = Command::new("tar");
    tar.arg("-C")
        .arg(dir.join("rootfs"))
        .arg("-cf")
        .arg(&tarball)
        .arg(".");
    run_timed("tar the image's root file system", &mut tar, None)?;
    Ok(tarball)
}

/// One back end's Podman, in a world of its own, with folders and config of its own.
struct Podman<'a> {
    podman: &'a Path,
    /// This Podman's folder; every process of it names the folder in its command line.
    dir: PathBuf,
    config: PathBuf,
    /// Held so the namespace lives as long as this Podman; dropped after `Drop::drop`.
    _world: World,
}

impl<'a> Podman<'a> {
    /// Enters a fresh world for `entry` and writes the Podman config for it.
    fn set_up(
        root: &Path,
        tools: &'a Tools,
        entry: &Entry,
        program: &Path,
    ) -> Result<Podman<'a>, String> {
        let world = World::enter(root, &format!("podman {}", entry.label))?;
        sandbox::mount_host_cgroups(root)?;
        mount_private_paths()?;
        let dir = world.subdir("podman")?;
        let config = write_config(&dir, entry.backend, program)?;
        Ok(Podman {
            podman: &tools.podman,
            dir,
            config,
            _world: world,
        })
    }

    /// A `podman` command on this Podman's storage and config. ctnet's own variables are
    /// removed, as Podman's cleanup processes would not pass them on anyway: ctnet then
    /// uses its default paths, which are private tmpfs here.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.podman);
        cmd.arg("--root")
            .arg(self.dir.join("storage"))
            .arg("--runroot")
            .arg(RUNROOT)
            .arg("--tmpdir")
            .arg(self.dir.join("tmp"))
            .args(args)
            .env("CONTAINERS_CONF", &self.config)
            .env_remove("CONTAINERS_STORAGE_CONF")
            .env_remove("CTNET_STATE_DIR")
            .env_remove("CTNET_RUN_DIR")
            .env_remove("CTNET_NETNS_DIR");
        cmd
    }

    fn run(&self, args: &[&str]) -> Result<Finished, String> {
        run_timed(
            &format!("podman {}", args.join(" ")),
            &mut self.command(args),
            None,
        )
    }

    /// Imports the image (untimed).
    fn import(&self, tarball: &Path) -> Result<(), String> {
        let tarball = tarball.to_string_lossy();
        self.run(&["import", &tarball, IMAGE]).map(drop)
    }

    /// Times one `podman run --rm … true` of `case`, then waits (untimed) until what the
    /// run left running has finished, so every timed run has the machine to itself.
    fn run_container(&self, case: Case) -> Result<Duration, String> {
        let mut args = vec!["run", "--rm"];
        args.extend(RUN_FLAGS);
        args.extend(case.args());
        args.extend([IMAGE, "true"]);
        let done = self.run(&args)?;
        self.wait_for_leftovers();
        Ok(done.wall)
    }

    /// Waits, at most [`LEFTOVER_MAX`], until no process names this Podman's folder in
    /// its command line. conmon, and the `podman container cleanup` it starts when the
    /// container exits, can outlive `podman run --rm`; they are not our children, so
    /// they are found in /proc.
    fn wait_for_leftovers(&self) {
        let deadline = Instant::now() + LEFTOVER_MAX;
        while any_process_mentions(self.dir.as_os_str().as_bytes()) {
            if Instant::now() >= deadline {
                eprintln!(
                    "note: processes of the Podman in {} still running after {} s",
                    self.dir.display(),
                    LEFTOVER_MAX.as_secs()
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Podman<'_> {
    fn drop(&mut self) {
        // Every run was --rm; this removes whatever a failed run may have left.
        if let Err(e) = self.run(&["rm", "-af", "-t", "0"]) {
            eprintln!("note: {e}");
        }
        self.wait_for_leftovers();
    }
}

/// Mounts a fresh private tmpfs on each of [`PRIVATE_PATHS`].
///
/// They are never unmounted: the next world mounts fresh ones on top, and all of them
/// go with the sandbox's mount namespace. So a straggling process can only ever write
/// to a tmpfs, never to the machine's own folders underneath.
fn mount_private_paths() -> Result<(), String> {
    for path in PRIVATE_PATHS {
        std::fs::create_dir_all(path).map_err(|e| format!("create {path}: {e}"))?;
        sandbox::mount_tmpfs(Path::new(path))?;
    }
    Ok(())
}

/// Writes the folders, links and containers.conf of `backend` into `dir`; returns the
/// config's path.
fn write_config(dir: &Path, backend: Backend, program: &Path) -> Result<PathBuf, String> {
    for sub in ["storage", "tmp", "netconf", "helpers", "cni"] {
        let path = dir.join(sub);
        std::fs::create_dir_all(&path).map_err(|e| format!("create {}: {e}", path.display()))?;
    }
    let link = |target: &Path, name: &Path| {
        std::os::unix::fs::symlink(target, name)
            .map_err(|e| format!("link {} to {}: {e}", name.display(), target.display()))
    };
    // Podman looks netavark up by name in helper_binaries_dir, and CNI plugins by their
    // "type" in cni_plugin_dirs.
    let (network_backend, plugin_dir) = match backend {
        Backend::Netavark | Backend::CtnetAsNetavark => {
            link(program, &dir.join("helpers/netavark"))?;
            ("netavark", dir.join("cni"))
        }
        Backend::CniPlugins => ("cni", program.to_path_buf()),
        Backend::CtnetAsCni => {
            link(program, &dir.join("cni/ctnet"))?;
            let conflist = dir.join("netconf/podman.conflist");
            std::fs::write(&conflist, ctnet_conflist().to_string())
                .map_err(|e| format!("write {}: {e}", conflist.display()))?;
            ("cni", dir.join("cni"))
        }
    };
    let text = containers_conf(dir, network_backend, &plugin_dir);
    let config = dir.join("containers.conf");
    std::fs::write(&config, text).map_err(|e| format!("write {}: {e}", config.display()))?;
    Ok(config)
}

/// The containers.conf of one back end's Podman.
fn containers_conf(dir: &Path, network_backend: &str, plugin_dir: &Path) -> String {
    let helpers = toml_string(&dir.join("helpers"));
    let tmp = toml_string(&dir.join("tmp"));
    let netconf = toml_string(&dir.join("netconf"));
    let plugins = toml_string(plugin_dir);
    format!(
        "[engine]\n\
         helper_binaries_dir = [{helpers}, \"/usr/lib/podman\"]\n\
         cgroup_manager = \"cgroupfs\"\n\
         events_logger = \"file\"\n\
         image_copy_tmp_dir = {tmp}\n\
         [network]\n\
         network_backend = \"{network_backend}\"\n\
         network_config_dir = {netconf}\n\
         cni_plugin_dirs = [{plugins}]\n"
    )
}

/// A path as a TOML basic string (JSON's string escapes are valid TOML).
fn toml_string(path: &Path) -> String {
    Value::String(path.to_string_lossy().into_owned()).to_string()
}

/// Podman's default network "podman" as a CNI network with ctnet as its only plugin:
/// the bridge and subnet Podman's own CNI default uses, ports published by ctnet.
fn ctnet_conflist() -> Value {
    json!({
        "cniVersion": "1.0.0",
        "name": "podman",
        "plugins": [{
            "type": "ctnet",
            "bridge": "cni-podman0",
            "ipam": { "type": "ctnet", "subnet": "10.88.0.0/16" },
            "capabilities": { "portMappings": true }
        }]
    })
}

/// True if any process other than this one has `needle` in its command line.
fn any_process_mentions(needle: &[u8]) -> bool {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return false;
    };
    let me = std::process::id().to_string();
    procs
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.as_bytes();
            !name.is_empty() && name.iter().all(u8::is_ascii_digit) && name != me.as_bytes()
        })
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .any(|cmdline| cmdline.windows(needle.len()).any(|w| w == needle))
}

/// False for an ELF file that names a program interpreter (a dynamic loader): a
/// dynamically linked busybox cannot run in an image that has no C library.
fn is_static(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|bytes| !has_interpreter(&bytes))
}

/// True if `elf` is a 64-bit little-endian ELF image with a PT_INTERP program header.
/// Anything else is taken as static: Podman says so clearly enough if it is not.
fn has_interpreter(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    if elf.get(..6) != Some(b"\x7fELF\x02\x01".as_slice()) {
        return false;
    }
    let u16_at = |o: usize| {
        elf.get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let phoff = elf
        .get(0x20..0x28)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .and_then(|o| usize::try_from(o).ok());
    let (Some(phoff), Some(size), Some(count)) = (phoff, u16_at(0x36), u16_at(0x38)) else {
        return false;
    };
    (0..count).any(|k| {
        let at = phoff + k * size;
        elf.get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            == Some(PT_INTERP)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamically_linked_program_is_not_static() {
        // Debian's /bin/sh (dash) links the C library dynamically.
        assert!(!is_static(Path::new("/bin/sh")));
    }

    #[test]
    fn non_elf_counts_as_static() {
        assert!(!has_interpreter(b"#!/bin/sh\n"));
        assert!(!has_interpreter(b""));
    }

    #[test]
    fn every_ctnet_role_has_a_counterpart() {
        assert_eq!(
            Backend::CtnetAsNetavark.stands_in_for(),
            Some(Backend::Netavark)
        );
        assert_eq!(
            Backend::CtnetAsCni.stands_in_for(),
            Some(Backend::CniPlugins)
        );
        assert_eq!(Backend::Netavark.stands_in_for(), None);
    }

    #[test]
    fn config_quotes_paths() {
        let text = containers_conf(Path::new("/r/p"), "netavark", Path::new("/r/p/cni"));
        assert!(text.contains("helper_binaries_dir = [\"/r/p/helpers\", \"/usr/lib/podman\"]"));
        assert!(text.contains("network_backend = \"netavark\""));
        assert!(text.contains("cni_plugin_dirs = [\"/r/p/cni\"]"));
    }
}
