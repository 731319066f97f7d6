//! The concurrency battery: many ctnet processes at once on one store and one table.
//! 64 attaches started together get 64 distinct addresses and host ports, every one
//! reachable by real traffic; 4 loops churning attach/detach with published ports on two
//! networks finish without an error and leave nothing behind. Latencies are printed
//! (p50, p99, max), not asserted: CI machines vary too much. Figures in docs/reliability.md.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use support::{Sandbox, UPLINK_HOST};

const AT_ONCE: usize = 64;
const LOOPS: usize = 4;
const CYCLES: usize = 50;

#[test]
fn sixty_four_attaches_at_once_are_distinct_and_reachable() {
    let mut sb = Sandbox::new();
    sb.with_wan();
    sb.ok(&format!(
        "ctnet network create blue --subnet 10.20.0.0/24 && \
         for i in $(seq 0 {}); do ctnet netns add c$i; done",
        AT_ONCE - 1
    ));
    let before = sb.snapshot();
    let started = Instant::now();
    // All started before any is waited for; each one's output and status in files.
    let out = sb.ok(&format!(
        "d=\"$CTNET_RUN_DIR/at-once\"; mkdir -p \"$d\"; \
         for i in $(seq 0 {last}); do \
           (ctnet attach blue c$i -p 80 >\"$d/$i\" 2>&1; echo $? >\"$d/$i.rc\") & \
         done; wait; \
         for i in $(seq 0 {last}); do echo \"$i $(cat \"$d/$i.rc\") $(tr '\\n' ' ' <\"$d/$i\")\"; done",
        last = AT_ONCE - 1
    ));
    let took = started.elapsed();
    let mut addresses = BTreeSet::new();
    let mut ports = BTreeSet::new();
    for line in out.lines() {
        let mut words = line.split_whitespace();
        let (i, rc) = (words.next().unwrap(), words.next().unwrap());
        assert_eq!(rc, "0", "attach of c{i} failed: {line}");
        let rest: Vec<&str> = words.collect();
        // "c1 blue eth0 10.20.0.2 vethXXXX published 0.0.0.0:32768->80/tcp"
        let address = rest.get(3).unwrap_or_else(|| panic!("c{i}: {line}"));
        let port = rest
            .iter()
            .find_map(|w| w.strip_prefix("0.0.0.0:"))
            .and_then(|w| w.split("->").next())
            .unwrap_or_else(|| panic!("c{i} published nothing: {line}"));
        assert_eq!(sb.addr_of(&format!("c{i}"), "eth0"), *address);
        addresses.insert(address.to_string());
        ports.insert(port.to_string());
    }
    assert_eq!(addresses.len(), AT_ONCE, "addresses: {addresses:?}");
    assert_eq!(ports.len(), AT_ONCE, "host ports: {ports:?}");
    // Real traffic: each container answers a ping from the host, and its published port
    // answers from the wan.
    for address in &addresses {
        sb.ok(&format!("ping -c1 -W2 {address} >/dev/null"));
    }
    for i in 0..AT_ONCE {
        sb.serve(Some(&format!("c{i}")), "--tcp 80");
    }
    for port in &ports {
        sb.reach(Some("wan"), "tcp", &format!("{UPLINK_HOST}:{port}"));
    }
    eprintln!(
        "battery: {AT_ONCE} attaches at once took {:.2} s: {} addresses, {} host ports, all reachable",
        took.as_secs_f64(),
        addresses.len(),
        ports.len()
    );
    sb.ok(&format!(
        "for i in $(seq 0 {}); do ctnet detach blue c$i & done; wait",
        AT_ONCE - 1
    ));
    assert_eq!(sb.snapshot(), before);
}

#[test]
fn four_loops_of_attach_detach_churn_leave_nothing() {
    let sb = Sandbox::new();
    sb.ok(&format!(
        "ctnet network create blue --subnet 10.21.0.0/24 && \
         ctnet network create green --subnet 10.22.0.0/24 && \
         for i in $(seq 0 {}); do ctnet netns add w$i; done && ctnet run -- true",
        LOOPS - 1
    ));
    let before = sb.snapshot();
    let started = Instant::now();
    let latencies: Vec<Duration> = std::thread::scope(|scope| {
        let loops: Vec<_> = (0..LOOPS)
            .map(|i| {
                let sb = &sb;
                scope.spawn(move || {
                    let mut took = Vec::new();
                    for cycle in 0..CYCLES {
                        let network = ["blue", "green"][(cycle + i) % 2];
                        for command in [
                            format!("ctnet attach {network} w{i} -p {}:80 -p 53/udp", 9000 + i),
                            format!("ctnet detach {network} w{i}"),
                        ] {
                            let t = Instant::now();
                            let out = sb.run(&format!("{command} >/dev/null"));
                            took.push(t.elapsed());
                            assert!(
                                out.status.success(),
                                "loop {i} cycle {cycle}: `{command}` failed: {}",
                                String::from_utf8_lossy(&out.stderr)
                            );
                        }
                    }
                    took
                })
            })
            .collect();
        loops
            .into_iter()
            .flat_map(|l| l.join().expect("a churn loop panicked"))
            .collect()
    });
    let wall = started.elapsed();
    assert_eq!(sb.snapshot(), before, "the churn left something behind");
    let mut sorted = latencies.clone();
    sorted.sort();
    let at = |q: f64| sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)];
    eprintln!(
        "battery: churn of {} commands from {LOOPS} loops on 2 networks in {:.1} s, 0 errors, \
         0 leaks; latency p50 {:?}, p99 {:?}, max {:?} (each through nsenter and sh)",
        sorted.len(),
        wall.as_secs_f64(),
        at(0.5),
        at(0.99),
        sorted[sorted.len() - 1]
    );
}
