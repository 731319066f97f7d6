//! Deleting links through a child process (`reclaim::delete_links`), against the real
//! kernel, each test in a fresh network namespace entered by its own thread.

mod common;

use std::fs::File;
use std::os::fd::AsFd;

use common::{in_fresh_netns, name};
use ctnet_kernel::link::{self, BridgeSpec, VethSpec};
use ctnet_kernel::{reclaim, IfName, RtSocket};

#[test]
fn links_are_gone_when_it_returns_and_a_veth_takes_its_peer() {
    in_fresh_netns(|| {
        let mut sock = RtSocket::open().unwrap();
        link::create_bridge(&mut sock, &bridge(&name("br-a"))).unwrap();
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
        link::create_bridge(&mut sock, &bridge(&name("br-a"))).unwrap();
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

#[test]
fn a_long_lived_caller_does_not_collect_finished_children() {
    // The children are clones sharing the caller's memory and invisible to plain wait
    // calls; each call reaps those that have finished, so a process that deletes many
    // links keeps no zombies (and no child stacks) beyond the last few.
    let left = in_fresh_netns(|| {
        let mut sock = RtSocket::open().unwrap();
        for _ in 0..6 {
            link::create_bridge(&mut sock, &bridge(&name("br-b"))).unwrap();
            reclaim::delete_links(&["br-b"], &[]).unwrap();
            // Let the child sit out the kernel's clean-up wait and exit.
            std::thread::sleep(std::time::Duration::from_millis(150));
        }
        std::fs::read_to_string("/proc/thread-self/children").unwrap()
    });
    let children = left.split_whitespace().count();
    assert!(children <= 1, "children still listed: {left:?}");
}

/// A bridge with the kernel's defaults.
fn bridge(name: &IfName) -> BridgeSpec<'_> {
    BridgeSpec {
        name,
        mtu: None,
        multicast_snooping: true,
        mac: None,
    }
}
