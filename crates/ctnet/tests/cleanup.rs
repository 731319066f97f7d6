//! Leaving nothing behind: detach, `network rm`, `netns rm`, and repair after a kill -9.

mod support;

use std::time::Duration;

use support::{wait_until, Sandbox, MAKE_DEFAULT_NETWORK, UPLINK_HOST};

#[test]
fn detach_and_network_rm_leave_nothing() {
    let sb = Sandbox::new();
    sb.ok(&format!(
        "{MAKE_DEFAULT_NETWORK} && ctnet netns add c1 && ctnet netns add c2"
    ));
    let before = sb.snapshot();
    sb.ok("ctnet network create blue --subnet 10.3.0.0/24 && ctnet attach blue c1 && ctnet attach blue c2 && \
           ctnet attach bridge c1");
    let during = sb.snapshot();
    assert!(
        during.contains("10.3.0.2/24") && during.contains("veth"),
        "{during}"
    );
    sb.ok("ctnet detach blue c1 && ctnet detach blue c2 && ctnet detach bridge c1 && ctnet network rm blue");
    assert_eq!(sb.snapshot(), before);
    // The released addresses are handed out again.
    sb.ok("ctnet network create blue --subnet 10.3.0.0/24 && ctnet attach blue c2");
    assert_eq!(sb.addr_of("c2", "eth0"), "10.3.0.2");
}

#[test]
fn netns_rm_detaches_first() {
    let sb = Sandbox::new();
    sb.ok(MAKE_DEFAULT_NETWORK);
    let before = sb.snapshot();
    sb.ok("ctnet network create blue --subnet 10.4.0.0/24 && ctnet netns add c1 && ctnet attach blue c1 && ctnet attach bridge c1");
    sb.ok("ctnet netns rm c1 && ctnet network rm blue");
    assert_eq!(sb.snapshot(), before);
}

#[test]
fn a_killed_run_is_repaired_by_gc() {
    let sb = Sandbox::new();
    sb.ok(MAKE_DEFAULT_NETWORK);
    let before = sb.snapshot();
    let mut child = sb.start_until(
        "exec ctnet run --name doomed -- sh -c 'echo started; exec sleep 60'",
        "started",
    );
    sb.ok(&format!("kill -KILL {}", child.id()));
    child.wait().unwrap();
    // The command dies with ctnet (its parent-death signal): nothing runs in the namespace.
    assert!(
        wait_until(Duration::from_secs(2), || sb
            .ok("ip netns pids doomed")
            .trim()
            .is_empty()),
        "the command outlived ctnet run"
    );
    assert!(
        sb.ok("ctnet ls").contains("doomed"),
        "the endpoint should still be recorded"
    );
    let report = sb.ok("ctnet gc --format json");
    assert!(report.contains("doomed"), "{report}");
    assert_eq!(sb.snapshot(), before);
}

#[test]
fn detach_no_wait_cuts_off_at_once_and_finishes_in_the_background() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.ok(&format!(
        "{MAKE_DEFAULT_NETWORK} && ctnet netns add c1 && ctnet netns add c2"
    ));
    let before = sb.snapshot();
    sb.ok("ctnet attach bridge c1 -p 8080:80");
    sb.serve(Some("c1"), "--tcp 80");
    let published = format!("{UPLINK_HOST}:8080");
    sb.reach(Some("wan"), "tcp", &published);
    sb.ok("ctnet detach --no-wait bridge c1");
    // Cut off when the command returns, whatever the background process has done yet.
    assert!(sb.probe(Some("wan"), "tcp", &published).is_err());
    assert!(
        wait_until(Duration::from_secs(10), || sb
            .ok("ctnet ls --format json")
            .trim()
            == "[]"),
        "the background detach never finished: {}",
        sb.ok("ctnet ls")
    );
    assert_eq!(sb.snapshot(), before);
    // The address is free again, and a network can go right after a background detach.
    sb.ok(
        "ctnet network create blue --subnet 10.3.0.0/24 && ctnet attach blue c2 && \
           ctnet detach --no-wait blue c2 && ctnet network rm blue",
    );
    // Allocation moves on to the next address (as Docker's does), so ask for the
    // released one by name: taking it proves it was given back.
    sb.ok("ctnet attach bridge c2 --ip 172.17.0.2");
    assert_eq!(sb.addr_of("c2", "eth0"), "172.17.0.2");
}
