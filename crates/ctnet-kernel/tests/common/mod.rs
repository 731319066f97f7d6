//! What the kernel tests share. Not every test file uses every helper, hence the
//! `dead_code` allowances.

use ctnet_kernel::{IfName, Netns};

/// Runs `f` on a thread that has its own, empty network namespace, so nothing a test
/// does reaches the machine's own network.
pub fn in_fresh_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .expect("unshare(CLONE_NEWNET): run the tests as root");
        f()
    })
    .join()
    .expect("test thread panicked")
}

/// A new, empty network namespace, kept alive by the handle (made by a thread that
/// leaves at once).
#[allow(dead_code)]
pub fn fresh_netns() -> Netns {
    std::thread::spawn(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .expect("unshare(CLONE_NEWNET): run the tests as root");
        Netns::current().unwrap()
    })
    .join()
    .unwrap()
}

/// An interface name the test knows to be valid.
#[allow(dead_code)]
pub fn name(text: &str) -> IfName {
    IfName::new(text).expect("a valid interface name")
}
