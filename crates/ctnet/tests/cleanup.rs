//! Leaving nothing behind: detach, `network rm`, `netns rm`, and repair after a kill -9.

mod support;

use support::Sandbox;

#[test]
fn detach_and_network_rm_leave_nothing() {
    let sb = Sandbox::new();
    sb.ok("ctnet network ls >/dev/null && ctnet netns add c1 && ctnet netns add c2");
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
    sb.ok("ctnet network ls >/dev/null");
    let before = sb.snapshot();
    sb.ok("ctnet network create blue --subnet 10.4.0.0/24 && ctnet netns add c1 && ctnet attach blue c1 && ctnet attach bridge c1");
    sb.ok("ctnet netns rm c1 && ctnet network rm blue");
    assert_eq!(sb.snapshot(), before);
}

#[test]
fn a_killed_run_is_repaired_by_gc() {
    let sb = Sandbox::new();
    sb.ok("ctnet network ls >/dev/null");
    let before = sb.snapshot();
    let mut child = sb.start_until(
        "exec ctnet run --name doomed -- sh -c 'echo started; exec sleep 60'",
        "started",
    );
    sb.ok(&format!("kill -KILL {}", child.id()));
    child.wait().unwrap();
    // The command outlives ctnet (as with any killed supervisor); end it by its pid.
    sb.ok("for p in $(ip netns pids doomed); do kill -KILL $p; done");
    assert!(
        sb.ok("ctnet ls").contains("doomed"),
        "the endpoint should still be recorded"
    );
    let report = sb.ok("ctnet gc --format json");
    assert!(report.contains("doomed"), "{report}");
    assert_eq!(sb.snapshot(), before);
}
