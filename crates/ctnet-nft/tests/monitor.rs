//! nf_tables notifications from the real kernel, each test in a fresh network namespace
//! (entered by the test's own thread; `nft` plays "someone else" there).

mod common;

use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

use common::in_fresh_netns;
use ctnet_nft::monitor::{Change, Event, Monitor, ObjectKind, Received};
use ctnet_nft::Family;

/// Runs `nft script` in the calling thread's namespace; returns its pid.
fn nft(script: &str) -> u32 {
    let child = Command::new("nft")
        .arg(script)
        .spawn()
        .expect("nft (package nftables) plays the other process");
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "nft {script} failed");
    pid
}

/// Every event until `done` says stop or two seconds pass.
fn collect(monitor: &mut Monitor, done: impl Fn(&[Event]) -> bool) -> Vec<Event> {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut events = Vec::new();
    while !done(&events) && Instant::now() < deadline {
        match monitor.receive(Some(Duration::from_millis(200))).unwrap() {
            Received::Events(e) => events.extend(e),
            Received::Lost => panic!("lost events with a large buffer"),
            Received::Timeout => {}
        }
    }
    events
}

fn gens(events: &[Event]) -> usize {
    events.iter().filter(|e| e.kind == ObjectKind::Gen).count()
}

#[test]
fn sees_another_process_add_and_delete_a_table() {
    in_fresh_netns(|| {
        let mut monitor = Monitor::open().unwrap();
        assert_eq!(
            monitor.receive(Some(Duration::from_millis(50))).unwrap(),
            Received::Timeout
        );
        let add = nft("add table inet x");
        let delete = nft("delete table inet x");
        let events = collect(&mut monitor, |e| gens(e) >= 2);
        let tables: Vec<_> = events
            .iter()
            .filter(|e| e.kind == ObjectKind::Table)
            .map(|e| (e.change, e.family, e.table.clone()))
            .collect();
        let x = Some("x".to_string());
        assert_eq!(
            tables,
            vec![
                (Change::New, Some(Family::Inet), x.clone()),
                (Change::Delete, Some(Family::Inet), x)
            ],
            "{events:#?}"
        );
        let generations: Vec<_> = events.iter().filter_map(|e| e.generation.clone()).collect();
        assert_eq!(generations.len(), 2, "{events:#?}");
        for (g, pid) in generations.iter().zip([add, delete]) {
            assert_eq!(g.proc_name, "nft");
            assert_eq!(g.pid, pid);
        }
        assert_eq!(generations[1].id, generations[0].id.wrapping_add(1));
        // Each batch ends with its generation: the table event comes first.
        assert_eq!(events[0].kind, ObjectKind::Table);
        assert_eq!(events.last().unwrap().kind, ObjectKind::Gen);
    });
}

#[test]
fn a_flush_ruleset_names_every_table_it_deletes() {
    in_fresh_netns(|| {
        nft("add table inet ctnet; add set inet ctnet s { type ifname; }; add element inet ctnet s { \"br-1\" }; add table ip other");
        let mut monitor = Monitor::open().unwrap();
        nft("flush ruleset");
        let events = collect(&mut monitor, |e| gens(e) >= 1);
        let deleted: Vec<_> = events
            .iter()
            .filter(|e| e.kind == ObjectKind::Table && e.change == Change::Delete)
            .map(|e| e.to_owned())
            .collect();
        assert!(
            deleted.iter().any(|e| e.touches(Family::Inet, "ctnet")),
            "{events:#?}"
        );
        assert!(
            deleted.iter().any(|e| e.touches(Family::Ip, "other")),
            "{events:#?}"
        );
        assert!(events
            .iter()
            .any(|e| e.kind == ObjectKind::Set && e.change == Change::Delete));
    });
}

#[test]
fn an_overrun_buffer_reports_lost_events() {
    in_fresh_netns(|| {
        let mut monitor = Monitor::open().unwrap();
        // The smallest buffer the kernel allows (it doubles and floors the value),
        // so a few hundred notifications overflow it while nobody reads.
        set_receive_buffer(&monitor, 0);
        let mut script = String::from("add table inet big; add chain inet big c;");
        for i in 0..300 {
            script += &format!(" add rule inet big c tcp dport {} accept;", 1000 + i);
        }
        nft(&script);
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut lost = false;
        while !lost && Instant::now() < deadline {
            match monitor.receive(Some(Duration::from_millis(200))).unwrap() {
                Received::Lost => lost = true,
                Received::Events(_) => {}
                Received::Timeout => break,
            }
        }
        assert!(lost, "300 rules into a tiny buffer must overflow it");
        // The socket works on afterwards: drain it, give it room, and change something.
        set_receive_buffer(&monitor, 1 << 20);
        while monitor.receive(Some(Duration::from_millis(100))).unwrap() != Received::Timeout {}
        let pid = nft("delete table inet big");
        let events = collect(&mut monitor, |e| {
            e.iter()
                .any(|e| e.generation.as_ref().is_some_and(|g| g.pid == pid))
        });
        assert!(events
            .iter()
            .any(|e| e.kind == ObjectKind::Table && e.change == Change::Delete));
    });
}

fn set_receive_buffer(monitor: &Monitor, bytes: libc::c_int) {
    // SAFETY: the fd is the monitor's live socket; the value is an initialised c_int
    // that outlives the call, and its size is passed.
    let rc = unsafe {
        libc::setsockopt(
            monitor.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
}
