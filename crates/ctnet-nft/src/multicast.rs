//! What the two multicast listeners (`monitor.rs`: nf_tables changes, `trace.rs`: trace
//! events) share: waiting for a datagram, a large receive buffer, and reading
//! attribute values.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use std::os::fd::AsRawFd;

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

use ctnet_kernel::{Error, Result};

/// A NETLINK_NETFILTER socket in the calling thread's namespace that joined multicast
/// `group` (named `group_name` in errors), with a receive buffer of `buffer` bytes;
/// `what` names the socket in errors.
pub(crate) fn subscribe(group: u32, group_name: &str, buffer: usize, what: &str) -> Result<Socket> {
    let mut socket =
        Socket::new(NETLINK_NETFILTER).map_err(|e| Error::io(format!("open {what}"), e))?;
    socket
        .bind(&SocketAddr::new(0, 0))
        .map_err(|e| Error::io(format!("bind {what}"), e))?;
    socket
        .add_membership(group)
        .map_err(|e| Error::io(format!("join group {group_name} on {what}"), e))?;
    grow_receive_buffer(socket.as_raw_fd(), buffer, what)?;
    Ok(socket)
}

/// Waits until `fd` has something to read, at most `timeout` (None: for ever; a part
/// of a millisecond rounds up, so a short timeout still waits); false on timeout or a
/// signal. `what` names the wait in an error.
pub(crate) fn wait_readable(fd: RawFd, timeout: Option<Duration>, what: &str) -> Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.map_or(-1, |t| {
        libc::c_int::try_from(t.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
    });
    // SAFETY: `pfd` is one initialised pollfd that outlives the call, and 1 says so.
    let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINTR) {
            return Ok(false);
        }
        return Err(Error::io(format!("wait for {what}"), e));
    }
    // POLLERR is how a pending ENOBUFS shows; the receive reports it.
    Ok(rc > 0)
}

/// Grows the socket's receive buffer to `bytes` (SO_RCVBUFFORCE, else SO_RCVBUF up to
/// rmem_max); `what` names the socket in an error.
pub(crate) fn grow_receive_buffer(fd: RawFd, bytes: usize, what: &str) -> Result<()> {
    let size = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    let set = |option| {
        // SAFETY: `fd` is a live socket; the option value is an initialised c_int that
        // outlives the call, and its size is passed.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                option,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        }
    };
    // Without CAP_NET_ADMIN, FORCE fails; the plain option still grows it to rmem_max.
    if set(libc::SO_RCVBUFFORCE) != 0 && set(libc::SO_RCVBUF) != 0 {
        return Err(Error::io(
            format!("grow the {what}'s receive buffer"),
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// An attribute's string value, without its NUL.
pub(crate) fn text(v: &[u8]) -> String {
    String::from_utf8_lossy(v.strip_suffix(&[0]).unwrap_or(v)).into_owned()
}
