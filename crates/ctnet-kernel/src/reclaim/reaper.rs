//! The child that sends the deletes and sits out the kernel's clean-up wait.
//!
//! It is made with `clone(CLONE_VM)`: it runs in the caller's memory, on a stack of its
//! own, instead of in a copy of it. A `fork` cost a detach twice: the copy itself, and
//! then a copy-on-write fault for every page the caller wrote afterwards (its database
//! work after the delete), about a third of a millisecond together.
//!
//! Sharing memory with a running caller is safe only if the child stays inside a small
//! fence, and this module is that fence:
//! - everything the child reads (the requests, the descriptors to keep) is copied into a
//!   [`Job`] in a mapping made for it, which the caller never touches again and unmaps
//!   only once the child has exited;
//! - the child makes system calls directly ([`raw`]): the C library's wrappers would
//!   set `errno` in the caller's thread-local storage, which the child shares;
//! - it never allocates, takes no lock and cannot panic;
//! - its descriptor table is its own (no `CLONE_FILES`): closing what it does not need
//!   leaves the caller's alone.
//!
//! With no exit signal the child is invisible to the caller's plain `wait` calls. If the
//! caller lives on, [`spawn`] reaps earlier children and frees their mappings; if it
//! exits first, the child is adopted by init (or a subreaper) like any orphan.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

use netlink_sys::Socket;

use crate::error::{Error, Result};
use crate::netlink::{header_u16, header_u32, messages, NLMSG_ERROR};

/// Descriptors a child may keep open (the requests' socket, the report pipe, sockets
/// to hold).
const MAX_KEEP: usize = 16;
/// Bytes of requests a child may send: about a hundred link deletes.
const MAX_REQUEST: usize = 4096;
/// The child's stack: it holds one 8 KiB receive buffer and a few frames.
const STACK_BYTES: usize = 64 * 1024;

/// What the child needs, copied into its own mapping.
#[derive(Clone, Copy)]
#[repr(C)]
pub(super) struct Job {
    sender: RawFd,
    report: RawFd,
    acks: usize,
    keep_len: usize,
    keep: [RawFd; MAX_KEEP],
    request_len: usize,
    request: [u8; MAX_REQUEST],
}

impl Job {
    /// A job for `request` (holding `acks` requests, each acknowledged) on `sender`,
    /// reporting refusals to `report`, keeping `keep` open. Err when it does not fit.
    pub(super) fn new(
        sender: &Socket,
        report: &OwnedFd,
        request: &[u8],
        acks: usize,
        keep: &[RawFd],
    ) -> Result<Job> {
        let mut keep = keep.to_vec();
        keep.sort_unstable();
        keep.dedup();
        if keep.len() > MAX_KEEP || request.len() > MAX_REQUEST {
            return Err(Error::io(
                "prepare the deleting child",
                io::Error::other("too many links or sockets for one child"),
            ));
        }
        let mut job = Job {
            sender: sender.as_raw_fd(),
            report: report.as_raw_fd(),
            acks,
            keep_len: keep.len(),
            keep: [-1; MAX_KEEP],
            request_len: request.len(),
            request: [0; MAX_REQUEST],
        };
        job.keep[..keep.len()].copy_from_slice(&keep);
        job.request[..request.len()].copy_from_slice(request);
        Ok(job)
    }
}

/// A child's mapping: a guard page, its stack, then its [`Job`].
struct Area {
    base: *mut libc::c_void,
    len: usize,
}

// SAFETY: an Area is only a pointer to a private mapping that no Rust reference points
// into; moving it between threads (inside the REAPERS mutex) is fine.
unsafe impl Send for Area {}

impl Area {
    fn map(job: &Job) -> Result<Area> {
        let page = page_size();
        let job_bytes = std::mem::size_of::<Job>().next_multiple_of(page);
        let len = page + STACK_BYTES + job_bytes;
        // SAFETY: a fresh anonymous mapping; no existing memory is affected.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(Error::io(
                "map memory for the deleting child",
                io::Error::last_os_error(),
            ));
        }
        let area = Area { base, len };
        // A stack overflow faults on the guard page instead of writing past the mapping.
        // SAFETY: the first page of the mapping made above.
        if unsafe { libc::mprotect(base, page, libc::PROT_NONE) } != 0 {
            return Err(Error::io(
                "protect the deleting child's guard page",
                io::Error::last_os_error(),
            ));
        }
        // SAFETY: the job slot lies inside the mapping, is page aligned and is not
        // referenced by anything else yet.
        unsafe { area.job().write(*job) };
        Ok(area)
    }

    /// Where the job sits: after the guard page and the stack.
    fn job(&self) -> *mut Job {
        // SAFETY: the offset stays inside the mapping (see `map`).
        unsafe { self.base.cast::<u8>().add(page_size() + STACK_BYTES).cast() }
    }

    /// The top of the child's stack (stacks grow down, from the job's start).
    fn stack_top(&self) -> *mut libc::c_void {
        self.job().cast()
    }
}

impl Drop for Area {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are the mapping made in `map`, and no child runs on it
        // any more (an Area is dropped only before its child starts or after it exited).
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// Children started by this process that may still run, with their mappings.
static REAPERS: Mutex<Vec<(libc::pid_t, Area)>> = Mutex::new(Vec::new());

/// Starts a child that runs `job`. It shares this process's memory, not its
/// descriptor table or signal handlers, and nobody waits for it.
pub(super) fn spawn(job: &Job) -> Result<()> {
    if !raw::AVAILABLE {
        return Err(Error::io(
            "start a process to finish deleting links",
            io::Error::from_raw_os_error(libc::ENOSYS),
        ));
    }
    let mut reapers = REAPERS.lock().unwrap_or_else(|e| e.into_inner());
    reapers.retain(|(pid, _)| still_running(*pid));
    let area = Area::map(job)?;
    // No exit signal in the flags: plain wait() calls never see the child.
    let flags = libc::CLONE_VM;
    // SAFETY: `run_job` runs on the area's stack and reads only the area's job; it makes
    // raw system calls only, never allocates, locks or unwinds (see the module docs).
    // The area outlives the child: it is unmapped only once `still_running` has seen the
    // child exit, or never if this process exits first.
    let pid = unsafe { libc::clone(run_job, area.stack_top(), flags, area.job().cast()) };
    if pid == -1 {
        return Err(Error::io(
            "start a process to finish deleting links",
            io::Error::last_os_error(),
        ));
    }
    reapers.push((pid, area));
    Ok(())
}

/// False once the child has exited (it is reaped here) or is no longer ours.
fn still_running(pid: libc::pid_t) -> bool {
    let mut status = 0;
    // SAFETY: a non-blocking wait for our own clone child; `status` is a valid int.
    let got = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG | libc::__WCLONE) };
    got == 0
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096).max(4096)
}

/// The child: closes everything but the job's descriptors (so pipes such as a caller's
/// stdout see their end when the caller exits, not 20 ms later), sends the requests
/// and writes `(index, errno)` for each one the kernel refused (other than "no such
/// device"). Its `sendmsg` returns only after the kernel's clean-up wait; then it exits,
/// closing the sockets it holds.
extern "C" fn run_job(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the job `spawn` placed in this child's area, alive until it exits.
    let job = unsafe { &*arg.cast::<Job>() };
    let keep = job.keep.get(..job.keep_len).unwrap_or(&[]);
    close_all_except(keep);
    let request = job.request.get(..job.request_len).unwrap_or(&[]);
    let sent = raw::write(job.sender, request);
    if sent < 0 {
        report_failure(job.report, 0, -sent as i32);
        return 0;
    }
    let mut acked = 0;
    let mut buf = [0u8; 8192];
    while acked < job.acks {
        let n = raw::read(job.sender, &mut buf);
        if n <= 0 {
            return 0;
        }
        let data = buf.get(..n as usize).unwrap_or(&[]);
        for (offset, len) in messages(data) {
            let message = data.get(offset..offset + len).unwrap_or(&[]);
            if header_u16(message, 4) == Some(NLMSG_ERROR) {
                acked += 1;
                let code = header_u32(message, 16).map_or(0, |v| v as i32);
                let seq = header_u32(message, 8).unwrap_or(0);
                if code != 0 && -code != libc::ENODEV {
                    report_failure(job.report, seq.wrapping_sub(1), -code);
                }
            }
        }
    }
    0
}

fn close_all_except(keep: &[RawFd]) {
    let mut from: u32 = 0;
    for &fd in keep {
        let fd = fd as u32;
        if fd > from {
            raw::close_range(from, fd - 1);
        }
        from = fd.saturating_add(1);
    }
    raw::close_range(from, u32::MAX);
}

fn report_failure(report: RawFd, index: u32, errno: i32) {
    let mut record = [0u8; 8];
    record[..4].copy_from_slice(&index.to_ne_bytes());
    record[4..].copy_from_slice(&errno.to_ne_bytes());
    raw::write(report, &record);
}

/// System calls without the C library: nothing here touches `errno` or any other
/// thread-local state. Each returns the kernel's result (a negative errno on failure).
mod raw {
    use std::os::fd::RawFd;

    /// Whether this architecture has raw system calls here; without them no child is
    /// started and links are deleted by the caller, waiting.
    pub(super) const AVAILABLE: bool = cfg!(any(target_arch = "x86_64", target_arch = "aarch64"));

    pub(super) fn write(fd: RawFd, buf: &[u8]) -> isize {
        // SAFETY: the kernel only reads `buf.len()` bytes from `buf`.
        unsafe {
            syscall3(
                libc::SYS_write,
                fd as usize,
                buf.as_ptr() as usize,
                buf.len(),
            )
        }
    }

    pub(super) fn read(fd: RawFd, buf: &mut [u8]) -> isize {
        // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
        unsafe {
            syscall3(
                libc::SYS_read,
                fd as usize,
                buf.as_mut_ptr() as usize,
                buf.len(),
            )
        }
    }

    pub(super) fn close_range(first: u32, last: u32) -> isize {
        // SAFETY: closing descriptors touches no memory.
        unsafe { syscall3(libc::SYS_close_range, first as usize, last as usize, 0) }
    }

    #[cfg(target_arch = "x86_64")]
    unsafe fn syscall3(number: libc::c_long, a: usize, b: usize, c: usize) -> isize {
        let ret: isize;
        // SAFETY: the x86_64 Linux system call convention: number in rax, arguments in
        // rdi, rsi, rdx; the kernel clobbers rcx and r11. The caller vouches for the
        // arguments.
        unsafe {
            std::arch::asm!(
                "syscall",
                inlateout("rax") number as isize => ret,
                in("rdi") a,
                in("rsi") b,
                in("rdx") c,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        ret
    }

    #[cfg(target_arch = "aarch64")]
    unsafe fn syscall3(number: libc::c_long, a: usize, b: usize, c: usize) -> isize {
        let ret: isize;
        // SAFETY: the aarch64 Linux system call convention: number in x8, arguments in
        // x0..x2, result in x0. The caller vouches for the arguments.
        unsafe {
            std::arch::asm!(
                "svc 0",
                in("x8") number,
                inlateout("x0") a as isize => ret,
                in("x1") b,
                in("x2") c,
                options(nostack),
            );
        }
        ret
    }

    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    unsafe fn syscall3(_number: libc::c_long, _a: usize, _b: usize, _c: usize) -> isize {
        -(libc::ENOSYS as isize)
    }
}
