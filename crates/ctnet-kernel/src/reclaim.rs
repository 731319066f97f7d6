//! Deleting links without waiting for the kernel to reclaim them.
//!
//! Deleting a network device is quick to see: the kernel unlists it, tells netlink
//! listeners `RTM_DELLINK`, and the name is free. But the deleting `sendmsg` does not
//! return until an RCU barrier has passed (`netdev_run_todo`), about 20 ms, while the
//! kernel makes sure nothing still uses the device's memory. Closing an nf_tables socket
//! that removed elements waits for a grace period in the same way. A detach that waits
//! for both is an order of magnitude slower than all its real work.
//!
//! So a short-lived child process sends the delete and sits out those waits, holding
//! the nf_tables socket so that it, not the caller, closes it last; the caller returns
//! as soon as the kernel has announced each link gone. The kernel state the caller
//! reports is final when it returns: only memory reclamation is left, and nobody needs
//! to wait for that.

use std::collections::BTreeSet;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use netlink_packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_REQUEST};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket};

use crate::error::{Error, Result};
use crate::link;
use crate::netlink::{bound_socket, kernel_socket, messages, RtSocket};
use crate::reclaim::reaper::Job;

mod reaper;

/// `RTNLGRP_LINK`: link notifications.
const RTNLGRP_LINK: u32 = 1;

/// How long the kernel may take to announce a delete before we call it failed.
const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(10);

/// Deletes links by name in the calling thread's network namespace and returns once
/// each is gone (a veth takes its peer with it). A link already gone is fine.
///
/// `hold` are sockets whose last close would wait for the kernel (nf_tables sockets
/// that removed elements): the child keeps a copy, so the caller's close is not the
/// last. Safe in a multi-threaded process too: the child (see [`reaper`]) only makes raw
/// system calls on descriptors opened before it started, and never allocates, so no
/// lock another thread holds can stop it.
pub fn delete_links(names: &[&str], hold: &[BorrowedFd<'_>]) -> Result<()> {
    start_deleting_links(names, hold)?.wait()
}

/// Starts deleting links as [`delete_links`] does and returns at once: the caller can
/// do its own work (record the deletion in its state) while the kernel deletes, then
/// [`Deletion::wait`] for the kernel's answer.
pub fn start_deleting_links<'a>(
    names: &'a [&'a str],
    hold: &[BorrowedFd<'_>],
) -> Result<Deletion<'a>> {
    if names.is_empty() {
        return Ok(Deletion { names, watch: None });
    }
    let monitor = link_monitor()?;
    let sender = kernel_socket(NETLINK_ROUTE, "rtnetlink socket")?;
    let request = dellink_requests(names);
    let (report_read, report_write) = pipe()?;
    let mut keep: Vec<RawFd> = hold.iter().map(|fd| fd.as_raw_fd()).collect();
    keep.extend([sender.as_raw_fd(), report_write.as_raw_fd()]);
    let job = Job::new(&sender, &report_write, &request, names.len(), &keep);
    let spawned = job.and_then(|job| reaper::spawn(&job));
    drop(report_write);
    if spawned.is_err() {
        // No process to spare (a pid limit), or a request too large for a child: delete
        // here and wait, as a plain delete does.
        delete_and_wait(names)?;
        return Ok(Deletion { names, watch: None });
    }
    Ok(Deletion {
        names,
        watch: Some((monitor, report_read)),
    })
}

/// Links a child is deleting (see [`start_deleting_links`]).
#[must_use = "a deletion is confirmed only by waiting for it"]
pub struct Deletion<'a> {
    names: &'a [&'a str],
    /// The link monitor and the child's report pipe; `None` once nothing is left to
    /// wait for (no names, or deleted here already).
    watch: Option<(Socket, OwnedFd)>,
}

impl Deletion<'_> {
    /// Returns once the kernel has announced every link gone, or with the error the
    /// kernel gave for one of them.
    pub fn wait(self) -> Result<()> {
        match &self.watch {
            Some((monitor, report)) => wait_until_gone(monitor, report, self.names),
            None => Ok(()),
        }
    }
}

/// Deletes the links from this process, waiting out the kernel's clean-up.
fn delete_and_wait(names: &[&str]) -> Result<()> {
    let mut sock = RtSocket::open()?;
    for name in names {
        link::delete(&mut sock, name)?;
    }
    Ok(())
}

/// A route socket listening for link notifications.
fn link_monitor() -> Result<Socket> {
    let socket = bound_socket(NETLINK_ROUTE, "rtnetlink monitor socket")?;
    socket
        .add_membership(RTNLGRP_LINK)
        .map_err(|e| Error::io("listen for link notifications", e))?;
    socket
        .set_non_blocking(true)
        .map_err(|e| Error::io("make the monitor socket non-blocking", e))?;
    Ok(socket)
}

/// One `RTM_DELLINK` per name, with sequence numbers 1..=n, in one buffer.
fn dellink_requests(names: &[&str]) -> Vec<u8> {
    let mut buf = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let mut message = LinkMessage::default();
        message
            .attributes
            .push(LinkAttribute::IfName(name.to_string()));
        crate::netlink::encode_into(
            &mut buf,
            RouteNetlinkMessage::DelLink(message),
            NLM_F_REQUEST | NLM_F_ACK,
            i as u32 + 1,
        );
    }
    buf
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Error::io("create a pipe", io::Error::last_os_error()));
    }
    // SAFETY: pipe2 succeeded, so both fds are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Waits for `RTM_DELLINK` of every name, or for the child to report a failure. If the
/// kernel dropped notifications (a full socket buffer on a busy host), it asks the
/// kernel between short waits instead.
fn wait_until_gone(monitor: &Socket, report: &OwnedFd, names: &[&str]) -> Result<()> {
    let mut pending: BTreeSet<&str> = names.iter().copied().collect();
    let deadline = Instant::now() + ANNOUNCE_TIMEOUT;
    let mut asking: Option<RtSocket> = None;
    loop {
        if let Some(sock) = asking.as_mut() {
            let mut still = BTreeSet::new();
            for name in &pending {
                if link::index_of(sock, name)?.is_some() {
                    still.insert(*name);
                }
            }
            pending = still;
        }
        if pending.is_empty() {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::io(
                format!("delete link {}", pending.iter().next().expect("pending")),
                io::Error::from(io::ErrorKind::TimedOut),
            ));
        }
        let wait = if asking.is_some() {
            left.min(Duration::from_millis(1))
        } else {
            left
        };
        let (monitor_ready, report_ready) =
            poll_two(monitor.as_raw_fd(), report.as_raw_fd(), wait)?;
        if report_ready {
            if let Some((index, errno)) = read_failure(report)? {
                let name = names.get(index as usize).copied().unwrap_or("?");
                return Err(Error::Netlink {
                    op: format!("delete link {name}"),
                    source: io::Error::from_raw_os_error(errno),
                });
            }
            // The child is done and the kernel refused nothing: check, and return.
            return confirm_gone(&pending);
        }
        if monitor_ready && asking.is_none() && !drain_deleted(monitor, &mut pending) {
            asking = Some(RtSocket::open()?);
        }
    }
}

/// Polls two descriptors for input; returns which are ready.
fn poll_two(a: RawFd, b: RawFd, timeout: Duration) -> Result<(bool, bool)> {
    let mut fds = [
        libc::pollfd {
            fd: a,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: b,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: `fds` is a valid array of two pollfd structs.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms.max(1)) };
    if n < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            return Ok((false, false));
        }
        return Err(Error::io("wait for link notifications", err));
    }
    Ok((fds[0].revents != 0, fds[1].revents != 0))
}

/// Reads one failure record; `None` when the child closed the pipe (it is done).
fn read_failure(report: &OwnedFd) -> Result<Option<(u32, i32)>> {
    let mut record = [0u8; 8];
    // SAFETY: `record` is a valid writable buffer; `report` is the pipe's read end.
    let n = unsafe { libc::read(report.as_raw_fd(), record.as_mut_ptr().cast(), record.len()) };
    match n {
        8 => Ok(Some((
            u32::from_ne_bytes(record[..4].try_into().expect("4 bytes")),
            i32::from_ne_bytes(record[4..].try_into().expect("4 bytes")),
        ))),
        0 => Ok(None),
        _ => Err(Error::io(
            "read the delete's outcome",
            io::Error::last_os_error(),
        )),
    }
}

/// Takes every queued notification, crossing off deleted names. False if the kernel
/// dropped notifications (the socket's buffer overran on a busy host).
fn drain_deleted(monitor: &Socket, pending: &mut BTreeSet<&str>) -> bool {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match monitor.recv(&mut &mut buf[..], libc::MSG_DONTWAIT) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(_) => return false, // ENOBUFS: notifications were lost
        };
        let data = &buf[..n];
        for (offset, len) in messages(data) {
            if let Ok(msg) =
                NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[offset..offset + len])
            {
                if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link)) =
                    msg.payload
                {
                    for attr in &link.attributes {
                        if let LinkAttribute::IfName(name) = attr {
                            pending.remove(name.as_str());
                        }
                    }
                }
            }
        }
    }
}

/// Asks the kernel whether the links are gone.
fn confirm_gone(pending: &BTreeSet<&str>) -> Result<()> {
    let mut sock = RtSocket::open()?;
    for name in pending {
        if link::index_of(&mut sock, name)?.is_some() {
            return Err(Error::io(
                format!("delete link {name}"),
                io::Error::other("the link still exists after its delete"),
            ));
        }
    }
    Ok(())
}
