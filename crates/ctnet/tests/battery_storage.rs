//! The storage-fault battery: the state dir read-only, its file system full, the database
//! file damaged (garbage, truncated). Each refusal names the file, the cause and the fix,
//! exits non-zero without a panic, and changes nothing in the kernel; freeing the fault
//! (remount, free space, restore the backup) and one `ctnet gc` bring the host back.
//! A missing or emptied database is another matter (docs/reliability.md).

mod support;

use support::Sandbox;

/// The database file inside the sandbox.
fn db(sb: &Sandbox) -> String {
    format!("{}/ctnet.db", sb.ok("printf %s \"$CTNET_STATE_DIR\""))
}

/// Runs `cmd`: it either succeeds, or fails naming the database with every piece of
/// `expected`, without a panic and without touching the kernel. Returns whether it failed.
fn succeeds_or_refuses(sb: &Sandbox, cmd: &str, expected: &[&str]) -> bool {
    let before = sb.kernel_snapshot();
    let out = sb.run(cmd);
    if out.status.success() {
        return false;
    }
    let err = String::from_utf8_lossy(&out.stderr);
    // 101 is Rust's exit code for a panic; a signal (None) would be a crash.
    assert!(
        out.status.code().is_some_and(|c| c != 101),
        "`{cmd}` crashed: {}: {err}",
        out.status
    );
    assert!(!err.contains("panicked"), "`{cmd}`: {err}");
    let file = db(sb);
    assert!(err.contains(&file), "`{cmd}`: {err:?} does not name {file}");
    for piece in expected {
        assert!(err.contains(piece), "`{cmd}`: {err:?} lacks {piece:?}");
    }
    assert_eq!(
        sb.kernel_snapshot(),
        before,
        "`{cmd}` failed but changed the kernel: {err}"
    );
    true
}

/// Like [`succeeds_or_refuses`], but the command must be refused.
fn refuses(sb: &Sandbox, cmd: &str, expected: &[&str]) {
    assert!(
        succeeds_or_refuses(sb, cmd, expected),
        "`{cmd}` should have been refused"
    );
}

/// Commands that write: each must be refused while the store cannot be written.
const WRITERS: &[&str] = &[
    "ctnet attach bridge c2 -p 8081:80",
    "ctnet detach bridge c1",
    "ctnet network create blue --subnet 10.9.0.0/24",
    "ctnet run -p 8082:80 -- true",
];

/// A host with one container attached and a port published.
fn populated() -> Sandbox {
    let sb = Sandbox::new();
    sb.ok("ctnet netns add c1 && ctnet netns add c2 && ctnet attach bridge c1 -p 8080:80");
    sb
}

/// After recovery: everything recorded works, and the next attach does too.
fn works_again(sb: &Sandbox, before: &str) {
    sb.ok("ctnet gc");
    assert_eq!(sb.snapshot(), before, "not back as before the fault");
    sb.ok(
        "ctnet attach bridge c2 -p 8081:80 && ip -n c2 -4 -o addr | grep -q 172.17 && \
           ctnet detach bridge c2",
    );
    assert_eq!(sb.snapshot(), before);
}

#[test]
fn a_read_only_state_dir_is_named_with_the_fix() {
    let sb = populated();
    let before = sb.snapshot();
    sb.ok("mount --bind \"$CTNET_STATE_DIR\" \"$CTNET_STATE_DIR\" && \
           mount -o remount,bind,ro \"$CTNET_STATE_DIR\"");
    for cmd in WRITERS {
        refuses(&sb, cmd, &["read-only", "remount the state dir read-write"]);
    }
    // Reading may still work; it must not crash or change anything either way.
    succeeds_or_refuses(&sb, "ctnet ls", &["read-only"]);
    succeeds_or_refuses(&sb, "ctnet gc", &["read-only"]);
    sb.ok("umount \"$CTNET_STATE_DIR\"");
    works_again(&sb, &before);
}

#[test]
fn a_full_disk_is_named_and_leaves_nothing_half_made() {
    let sb = Sandbox::new();
    // A tiny file system of its own for the state dir, inside the sandbox's mounts.
    sb.ok("mkdir -p \"$CTNET_STATE_DIR\" && mount -t tmpfs -o size=1m ctnet-full \"$CTNET_STATE_DIR\"");
    sb.ok("ctnet netns add c1 && ctnet netns add c2 && ctnet attach bridge c1 -p 8080:80");
    let before = sb.snapshot();
    sb.ok("dd if=/dev/zero of=\"$CTNET_STATE_DIR/filler\" bs=4k 2>/dev/null; true");
    // A write that still fits in the write-ahead log succeeds; the first that does not
    // must be refused cleanly. Each runs from the state the one before left.
    let mut refused = 0;
    for round in 0..3 {
        for cmd in WRITERS {
            if succeeds_or_refuses(&sb, cmd, &["is full", "free space"]) {
                refused += 1;
            } else {
                eprintln!("round {round}: `{cmd}` fitted in the space left");
            }
        }
    }
    assert!(refused > 0, "nothing was refused on a full disk");
    sb.ok("rm \"$CTNET_STATE_DIR/filler\"");
    sb.ok("ctnet gc");
    // Whatever fitted before the disk was full is undone by hand: back to the start.
    sb.ok(
        "ctnet detach bridge c2 2>/dev/null; ctnet network rm blue 2>/dev/null; \
           ctnet ls | grep -q c1 || ctnet attach bridge c1 -p 8080:80 --ip 172.17.0.2; true",
    );
    works_again(&sb, &before);
    eprintln!(
        "battery: full disk: {refused} of {} writes refused",
        3 * WRITERS.len()
    );
}

/// Every command, readers and `gc` included: none may act on a database it cannot read.
const EVERY: &[&str] = &[
    "ctnet ls",
    "ctnet network ls",
    "ctnet gc",
    "ctnet attach bridge c2 -p 8081:80",
    "ctnet detach bridge c1",
    "ctnet network create blue --subnet 10.9.0.0/24",
    "ctnet run -- true",
];

const DAMAGED: &[&str] = &["not a ctnet database or is damaged", "backup"];

/// Copies the store aside as a backup must be taken: the database with its -wal file.
fn back_up(sb: &Sandbox) {
    sb.ok("cp -a \"$CTNET_STATE_DIR\" \"$CTNET_RUN_DIR.backup\"");
}

fn restore(sb: &Sandbox) {
    sb.ok("rm -rf \"$CTNET_STATE_DIR\" && cp -a \"$CTNET_RUN_DIR.backup\" \"$CTNET_STATE_DIR\"");
}

#[test]
fn a_database_overwritten_with_garbage_is_refused_by_every_command() {
    let sb = populated();
    let before = sb.snapshot();
    back_up(&sb);
    sb.ok(
        "cd \"$CTNET_STATE_DIR\" && yes garbage | head -c 65536 > ctnet.db && \
           yes garbage | head -c 65536 > ctnet.db-wal",
    );
    for cmd in EVERY {
        refuses(&sb, cmd, DAMAGED);
    }
    restore(&sb);
    works_again(&sb, &before);
}

/// A host whose database file holds the state itself: enough writes that SQLite has
/// copied the write-ahead log back into the file (before that, the log alone holds
/// it, and damage to the file is not seen).
fn checkpointed() -> Sandbox {
    let sb = populated();
    sb.ok("for i in $(seq 1 40); do ctnet attach bridge c2 >/dev/null && ctnet detach bridge c2; done");
    let size: u64 = sb
        .ok("stat -c %s \"$CTNET_STATE_DIR/ctnet.db\"")
        .trim()
        .parse()
        .unwrap();
    assert!(size > 4096, "no checkpoint yet: the file has {size} bytes");
    sb
}

#[test]
fn a_damaged_database_file_is_refused_not_acted_on() {
    for damage in [
        "yes garbage | head -c $(stat -c %s ctnet.db) > ctnet.db.new && mv ctnet.db.new ctnet.db",
        "truncate -s $(( $(stat -c %s ctnet.db) / 2 )) ctnet.db",
    ] {
        let sb = checkpointed();
        let before = sb.snapshot();
        back_up(&sb);
        sb.ok(&format!("cd \"$CTNET_STATE_DIR\" && {damage}"));
        // Pages still in the write-ahead log read fine, so a reader may succeed; `gc`
        // reads every table and must refuse.
        for cmd in ["ctnet ls", "ctnet network ls"] {
            succeeds_or_refuses(&sb, cmd, DAMAGED);
        }
        refuses(&sb, "ctnet gc", DAMAGED);
        restore(&sb);
        works_again(&sb, &before);
    }
}
