//! An attach or a network create that fails after its kernel work undoes it. The fault is
//! real: strace fails one of the process's writes (`pwrite64`, which SQLite writes the
//! database and its WAL with) with ENOSPC, as a full disk would, at each write in turn,
//! from the first until a run passes every write. After each failed run, before any other
//! ctnet command (whose start would clean up after a dead process and hide a leak), the
//! kernel and the database are read directly: no interface in the container, no nftables
//! element, no row. After each run that succeeded, the object works and is removed again.

mod support;

use support::Sandbox;

/// Runs `cmd` under strace with the `n`th `pwrite64` failing; returns whether the command
/// succeeded, whether the fault was injected at all (the run had `n` writes), and stderr.
fn with_write_fault(sb: &Sandbox, cmd: &str, n: u32) -> (bool, bool, String) {
    let trace = "$CTNET_RUN_DIR/fault.trace";
    let out = sb.run(&format!(
        "mkdir -p $CTNET_RUN_DIR && strace -qq -o {trace} -e trace=pwrite64 \
         -e inject=pwrite64:error=ENOSPC:when={n} {cmd}"
    ));
    let injected = sb.ok(&format!("grep -c INJECTED {trace} || true"));
    (
        out.status.success(),
        injected.trim() != "0",
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn rows(sb: &Sandbox, sql: &str) -> String {
    sb.ok(&format!("sqlite3 $CTNET_STATE_DIR/ctnet.db \"{sql}\""))
        .trim()
        .to_string()
}

#[test]
fn an_attach_failing_at_any_write_leaves_nothing() {
    let sb = Sandbox::new();
    sb.ok("ctnet network create blue --subnet 10.9.0.0/24 && ctnet netns add c");
    let mut failed = 0;
    for n in 1..=300 {
        let (ok, injected, err) =
            with_write_fault(&sb, "ctnet attach blue c -p 8080:80 -p 5353:53/udp", n);
        if ok {
            sb.ok("ip -n c link show eth0 >/dev/null && ctnet detach blue c");
        } else {
            failed += 1;
            assert!(!err.contains("panicked"), "write {n}: {err}");
            let left = sb.run("ip -n c link show eth0");
            assert!(
                !left.status.success(),
                "write {n} failed ({err}) and left the container configured"
            );
            let map = sb.ok("nft list map inet ctnet publish_any 2>/dev/null || true");
            assert!(
                !map.contains("8080"),
                "write {n} left port 8080 published: {map}"
            );
            assert_eq!(
                rows(&sb, "SELECT count(*) FROM endpoints"),
                "0",
                "write {n} left a row"
            );
        }
        if !injected {
            assert!(ok, "a run without a fault failed: {err}");
            break;
        }
    }
    assert!(failed > 0, "no injected write made the attach fail");
    // And the same container, address and port attach afterwards.
    sb.ok("ctnet attach blue c -p 8080:80 -p 5353:53/udp && ip -n c link show eth0");
}

#[test]
fn a_network_create_failing_at_any_write_leaves_nothing() {
    let sb = Sandbox::new();
    sb.ok("ctnet network ls >/dev/null");
    let mut failed = 0;
    for n in 1..=300 {
        let (ok, injected, err) = with_write_fault(
            &sb,
            "ctnet network create blue --subnet 10.9.0.0/24 --bridge br-blue",
            n,
        );
        if ok {
            sb.ok("ip link show br-blue >/dev/null && ctnet network rm blue");
        } else {
            failed += 1;
            assert!(!err.contains("panicked"), "write {n}: {err}");
            let left = sb.run("ip link show br-blue");
            assert!(
                !left.status.success(),
                "write {n} failed ({err}) and left the bridge"
            );
            let nets = sb.ok("nft list table inet ctnet 2>/dev/null || true");
            assert!(
                !nets.contains("10.9.0.0"),
                "write {n} left the subnet in the firewall: {nets}"
            );
            assert_eq!(
                rows(&sb, "SELECT count(*) FROM networks WHERE name = 'blue'"),
                "0",
                "write {n} left a row"
            );
        }
        if !injected {
            assert!(ok, "a run without a fault failed: {err}");
            break;
        }
    }
    assert!(failed > 0, "no injected write made the create fail");
}
