//! Network namespaces: named ones kept where iproute2 keeps them, and handles to any.
//!
//! A named namespace is a file under the netns dir (`/run/netns` by default) with the
//! namespace bind-mounted onto it, exactly as `ip netns add` makes it, so `ip netns`,
//! `nsenter --net=/run/netns/NAME` and ctnet all see the same set.
//!
//! Identity: a namespace's inode number names it only while it lives. The kernel hands
//! a freed number to the next namespace at once (the lowest free one), so a record
//! keyed by inode can outlive its namespace and then seem to describe a stranger. What
//! is never reused while the system runs is the namespace's *cookie*: a 64-bit number
//! taken from a counter when the namespace is made, read from any socket inside it
//! (`SO_NETNS_COOKIE`, Linux 5.14). Across a reboot the counter starts again, so a
//! stored cookie is only meaningful together with the boot id it was read under
//! ([`boot_id`]).
//!
//! ```text
//!   namespace  ── inode 4026532249 (reused at once when freed)
//!      └─ any socket ── SO_NETNS_COOKIE = 28 (never reused until reboot)
//!   boot id (/proc/sys/kernel/random/boot_id) ── new at every boot
//! ```

use std::fs::{self, File, OpenOptions};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use crate::error::{Error, Result};
use crate::names::NetnsName;

/// An open network namespace. Holding it keeps the namespace alive.
#[derive(Debug)]
pub struct Netns {
    fd: OwnedFd,
    path: PathBuf,
}

impl Netns {
    /// Opens the namespace at a path (`/run/netns/NAME`, `/proc/PID/ns/net`, ...).
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::NotFound {
                    what: format!("network namespace {}", path.display()),
                }
            } else {
                Error::io(format!("open network namespace {}", path.display()), e)
            }
        })?;
        let fd = OwnedFd::from(file);
        check_is_netns(&fd, path)?;
        Ok(Netns {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// Opens the network namespace of a running process.
    pub fn of_pid(pid: u32) -> Result<Self> {
        let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
        Netns::open(&path).map_err(|e| match e {
            Error::NotFound { .. } => Error::NotFound {
                what: format!("process {pid}"),
            },
            other => other,
        })
    }

    /// A new, empty network namespace with no name, as `unshare -n` makes: nothing in
    /// /run/netns refers to it, so it is gone with the last process or handle in it,
    /// whoever is killed when. Made on the calling thread, which then goes back to its
    /// own namespace.
    pub fn create_anonymous() -> Result<Self> {
        let home = open_home()?;
        let path = Path::new("(a namespace with no name)");
        unshare(CloneFlags::CLONE_NEWNET)
            .map_err(|e| Error::io("create network namespace", e.into()))?;
        let opened = File::open("/proc/thread-self/ns/net")
            .map_err(|e| Error::io("open the new network namespace", e));
        return_home(&home, "creating", path);
        Ok(Netns {
            fd: OwnedFd::from(opened?),
            path: path.to_path_buf(),
        })
    }

    /// The namespace the calling thread is in now.
    pub fn current() -> Result<Self> {
        Netns::open(Path::new("/proc/thread-self/ns/net"))
    }

    /// The path this handle was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The namespace's inode number, which identifies it (what `ls -l /proc/PID/ns/net` shows).
    pub fn inode(&self) -> Result<u64> {
        let st = nix::sys::stat::fstat(self.fd.as_fd())
            .map_err(|e| Error::io(format!("stat {}", self.path.display()), e.into()))?;
        Ok(st.st_ino)
    }

    /// The namespace's cookie, which no other namespace gets while the system runs
    /// (see the module's notes). Costs a visit to the namespace (two `setns` calls) to
    /// make a socket there: where a socket inside is opened anyway, ask it instead
    /// ([`socket_netns_cookie`]).
    pub fn cookie(&self) -> Result<u64> {
        let sock = self.within(|| {
            // A datagram socket of the local family: no protocol state, nothing to bind.
            // SAFETY: plain socket(2) call; the returned descriptor is checked and owned below.
            let fd =
                unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
            if fd < 0 {
                return Err(Error::io(
                    format!("open a socket in {}", self.path.display()),
                    std::io::Error::last_os_error(),
                ));
            }
            // SAFETY: `fd` is a fresh descriptor nothing else owns.
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        })?;
        socket_netns_cookie(sock.as_fd())
    }

    /// Runs `f` on a short-lived thread that has entered this namespace.
    ///
    /// The caller's own thread never changes namespace, so nothing can leave it stranded
    /// in the wrong one; sockets opened inside `f` stay bound to this namespace.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    self.enter_current_thread()?;
                    f()
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Runs `f` on the calling thread while that thread is inside this namespace, then
    /// moves the thread back to the namespace it was in.
    ///
    /// Meant for opening sockets (they stay bound to the namespace they were made in):
    /// it costs two `setns` calls where [`Netns::run`] starts and joins a thread, a
    /// measurable share of an attach. Keep `f` short and free of other threads' work:
    /// until it returns, everything this thread does happens in the container.
    pub fn within<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let home = open_home()?;
        self.enter_current_thread()?;
        let result = f();
        return_home(&home, "entering", &self.path);
        result
    }

    /// Moves the calling thread into this namespace.
    ///
    /// Meant for a thread about to do one job there (see [`Netns::run`]) or for a
    /// `pre_exec` hook in a child process.
    pub fn enter_current_thread(&self) -> Result<()> {
        setns(self.fd.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| {
            Error::io(
                format!("enter network namespace {}", self.path.display()),
                e.into(),
            )
        })
    }
}

impl AsFd for Netns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Netns {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

/// `SO_NETNS_COOKIE` (include/uapi/asm-generic/socket.h; not in every libc crate).
const SO_NETNS_COOKIE: libc::c_int = 71;

/// The cookie of the network namespace a socket was made in (see the module's notes).
pub fn socket_netns_cookie(fd: BorrowedFd<'_>) -> Result<u64> {
    let mut cookie: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cookie`, a live u64 whose size
    // `len` holds, and reads only the descriptor, which `fd` keeps open.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        let what = if e.raw_os_error() == Some(libc::ENOPROTOOPT) {
            "read the namespace cookie (SO_NETNS_COOKIE needs Linux 5.14 or later)"
        } else {
            "read the namespace cookie"
        };
        return Err(Error::io(what, e));
    }
    Ok(cookie)
}

/// This boot's id: a random UUID the kernel makes at every boot. A namespace cookie
/// read under one boot says nothing about the next. Read once per process.
pub fn boot_id() -> Result<String> {
    static BOOT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    if let Some(id) = BOOT.get() {
        return Ok(id.clone());
    }
    let path = "/proc/sys/kernel/random/boot_id";
    // One read into a buffer (a UUID and a newline, 37 bytes): no size look-up first.
    let mut buf = [0u8; 64];
    let n = File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut buf))
        .map_err(|e| Error::io(format!("read {path}"), e))?;
    let text = String::from_utf8_lossy(&buf[..n]).trim().to_string();
    Ok(BOOT.get_or_init(|| text).clone())
}

fn check_is_netns(fd: &OwnedFd, path: &Path) -> Result<()> {
    // NS_GET_NSTYPE tells a namespace file from any other file (it fails on plain files).
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
    // SAFETY: the ioctl takes no argument and only reads the fd, which is valid and owned.
    let kind = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE as _) };
    if kind == libc::CLONE_NEWNET {
        Ok(())
    } else {
        Err(Error::io(
            format!("{} is not a network namespace", path.display()),
            std::io::Error::from_raw_os_error(libc::EINVAL),
        ))
    }
}

/// The folder holding named namespaces (`/run/netns` unless relocated).
#[derive(Debug, Clone)]
pub struct NetnsDir {
    dir: PathBuf,
}

impl NetnsDir {
    /// A netns dir at `dir`; it is created on first use.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        NetnsDir { dir: dir.into() }
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The file a named namespace lives at.
    pub fn path_of(&self, name: &NetnsName) -> PathBuf {
        self.dir.join(name.as_str())
    }

    /// True when a namespace of this name exists.
    pub fn exists(&self, name: &NetnsName) -> bool {
        self.path_of(name).exists()
    }

    /// Creates a new, empty network namespace named `name`, like `ip netns add`.
    ///
    /// Fails with EEXIST when the name is taken; leaves nothing behind on failure.
    pub fn create(&self, name: &NetnsName) -> Result<Netns> {
        self.prepare_dir()?;
        let path = self.path_of(name);
        // Opened before the file is made: a failure here leaves nothing to remove.
        let home = open_home()?;
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o444)
            .open(&path)
            .map_err(|e| {
                Error::io(
                    format!("create network namespace file {}", path.display()),
                    e,
                )
            })?;
        // On the calling thread, then back, as [`Netns::within`]: a thread started and
        // joined for it costs more than the namespace (its creation, and the TLB
        // shootdowns every later fork and exit of a process that ran on two CPUs pays).
        let bound = unshare(CloneFlags::CLONE_NEWNET)
            .map_err(|e| Error::io("create network namespace", e.into()))
            .and_then(|()| {
                let made = mount(
                    Some("/proc/thread-self/ns/net"),
                    &path,
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(|e| {
                    Error::io(
                        format!("bind network namespace to {}", path.display()),
                        e.into(),
                    )
                });
                return_home(&home, "creating", &path);
                made
            });
        if let Err(e) = bound {
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        Netns::open(&path)
    }

    /// Deletes a named namespace, like `ip netns delete`. Its interfaces go with it once
    /// no process is left inside.
    pub fn delete(&self, name: &NetnsName) -> Result<()> {
        let path = self.path_of(name);
        if !path.exists() {
            return Err(Error::NotFound {
                what: format!("network namespace {}", path.display()),
            });
        }
        match umount2(&path, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL) => {}
            Err(e) => return Err(Error::io(format!("unmount {}", path.display()), e.into())),
        }
        fs::remove_file(&path).map_err(|e| Error::io(format!("remove {}", path.display()), e))
    }

    /// The names of all namespaces in the folder, sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("read {}", self.dir.display()), e)),
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Makes the folder a shared mount point, as iproute2 does, so namespaces mounted
    /// here are seen from every mount namespace that shares it.
    fn prepare_dir(&self) -> Result<()> {
        fs::create_dir_all(&self.dir)
            .map_err(|e| Error::io(format!("create {}", self.dir.display()), e))?;
        let lock = File::open(&self.dir)
            .map_err(|e| Error::io(format!("open {}", self.dir.display()), e))?;
        // Two first-time creators must not both bind the folder onto itself: the second
        // mount would hide namespaces the first made.
        // SAFETY: flock on a valid, owned descriptor; the lock is released when `lock` drops.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(Error::io(
                format!("lock {}", self.dir.display()),
                std::io::Error::last_os_error(),
            ));
        }
        let shared = MsFlags::MS_SHARED | MsFlags::MS_REC;
        if is_shared_mount_point(&self.dir) {
            return Ok(());
        }
        if mount(None::<&str>, &self.dir, None::<&str>, shared, None::<&str>).is_ok() {
            return Ok(());
        }
        mount(
            Some(&self.dir),
            &self.dir,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| Error::io(format!("bind {} onto itself", self.dir.display()), e.into()))?;
        mount(None::<&str>, &self.dir, None::<&str>, shared, None::<&str>).map_err(|e| {
            Error::io(
                format!("make {} a shared mount", self.dir.display()),
                e.into(),
            )
        })
    }
}

/// True when `dir` is a mount point with shared propagation in this mount namespace.
fn is_shared_mount_point(dir: &Path) -> bool {
    let Ok(dir) = dir.canonicalize() else {
        return false;
    };
    let Ok(info) = fs::read_to_string("/proc/thread-self/mountinfo") else {
        return false;
    };
    info.lines().any(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        fields.len() > 6
            && Path::new(fields[4]) == dir
            && fields[6..]
                .iter()
                .take_while(|f| **f != "-")
                .any(|f| f.starts_with("shared:"))
    })
}

/// The calling thread's network namespace, to come back to with [`return_home`].
fn open_home() -> Result<File> {
    File::open("/proc/thread-self/ns/net")
        .map_err(|e| Error::io("open this thread's network namespace", e))
}

/// Moves the calling thread back into `home` after `doing` (entering, creating) the
/// namespace at `path`. Carrying on there would make host changes inside it; nothing
/// sane can follow (the state database records the operation as unfinished), so a
/// failure aborts.
fn return_home(home: &File, doing: &str, path: &Path) {
    if let Err(e) = setns(home.as_fd(), CloneFlags::CLONE_NEWNET) {
        eprintln!(
            "ctnet: cannot return to the host network namespace after {doing} {}: {e}",
            path.display()
        );
        std::process::abort();
    }
}
