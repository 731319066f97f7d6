//! What the kernel tests share.

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
