//! Deleting links through a child process (`reclaim::delete_links`), against the real
//! kernel, each test in a fresh network namespace entered by its own thread.

mod common;

use std::fs::File;
use std::os::fd::AsFd;

use common::in_fresh_netns;
use ctnet_kernel::link::{self, VethSpec};
use ctnet_kernel::{reclaim, IfName, RtSocket};

fn name(text: &str) -> IfName {
    IfName::new(text).expect("a valid interface name")
}

#[test]
fn links_are_gone_when_it_returns_and_a_veth_takes_its_peer() {
    in_fresh_netns(|| {
        let mut sock = RtSocket::open().unwrap();
        link::create_bridge(&mut sock, &name("br-a"), None).unwrap();
        let here = File::open("/proc/thread-self/ns/net").unwrap();
        link::create_veth(
            &mut sock,
            &VethSpec {
                name: &name("va"),
                peer_name: &name("vb"),
                peer_netns: here.as_fd(),
                master: None,
                mtu: None,
                peer_mac: None,
            },
        )
        .unwrap();
        reclaim::delete_links(&["br-a", "va"], &[]).unwrap();
        for gone in ["br-a", "va", "vb"] {
            assert_eq!(link::index_of(&mut sock, gone).unwrap(), None, "{gone}");
        }
        // The names are free again at once.
        link::create_bridge(&mut sock, &name("br-a"), None).unwrap();
    });
}

#[test]
fn a_link_already_gone_is_fine() {
    in_fresh_netns(|| reclaim::delete_links(&["nosuch0"], &[]).unwrap());
}

#[test]
fn a_refused_delete_is_an_error_naming_the_link() {
    // Loopback cannot be deleted: the kernel refuses, and the child reports it.
    let err = in_fresh_netns(|| reclaim::delete_links(&["lo"], &[]).unwrap_err());
    assert!(err.to_string().contains("delete link lo"), "{err}");
    assert_eq!(err.errno(), Some(libc::EOPNOTSUPP), "{err}");
}
