//! The crash battery: `attach -p`, `detach`, `network create`, `network rm` and `run`, and
//! a macvlan network's `attach` and `detach`, are killed (SIGKILL) before each of their
//! system calls in turn, and at random moments;
//! after each kill one `ctnet gc` must leave the host exactly as before the command (or,
//! when the kill came after the command's work was done, exactly as the finished command
//! leaves it, and working), and the same container, address and port must attach again.
//!
//! How a kill point is reached: strace's fault injection counts the calls of each system
//! call separately (`-e inject=NAME:signal=KILL:when=N` kills at the Nth `NAME`), so the
//! command is traced once, and its k-th system call, the m-th of its name, becomes the
//! injection `NAME` at `m`. Only ctnet's first thread is traced (no `-f`); SIGKILL to it
//! ends the whole process, as a `kill -9` does, while a child it started (the reaper of a
//! detach, the command of a run) lives on as it would.
//!
//! Every kill point runs locally; in CI (`CI=true`) every [`CI_STEP`]th, so the battery
//! stays within its budget on two cores. `CTNET_BATTERY_STEP` overrides both, and
//! `CTNET_BATTERY_SEED` replays the random delays. Figures are in docs/reliability.md.

mod support;

use std::time::{Duration, Instant};

use support::Sandbox;

/// In CI, one kill point in this many is tried.
const CI_STEP: usize = 8;
/// Kills at random moments, per command.
const RANDOM_KILLS: usize = 10;

/// One command under test and how to tell its outcome.
struct Case {
    name: &'static str,
    /// Added to the sandbox once, before its baseline is taken (the LAN a macvlan
    /// network sits on, and the network).
    world: &'static str,
    /// Brings the baseline to the state the command starts from.
    setup: &'static str,
    /// The command killed.
    command: &'static str,
    /// Exits 0 when the object the command makes or removes exists after `gc`.
    present: &'static str,
    /// Proves a present object works and removes it (back to the baseline); `None` when
    /// the object must never survive `gc` (a killed `run`'s endpoint and namespace).
    remove: Option<&'static str>,
    /// From the baseline, uses the same container, address, port and names again and
    /// comes back to the baseline.
    again: &'static str,
}

const ATTACH: &str = "ctnet attach bridge c1 --ip 172.17.0.100 -p 8080:80";
const PRESENT_EP: &str = "ctnet ls | grep -q 172.17.0.100";
const REMOVE_EP: &str = "ip -n c1 -4 -o addr show dev eth0 | grep -q 172.17.0.100 && \
     nft list ruleset | grep -q 8080 && ctnet detach bridge c1";
const CREATE: &str = "ctnet network create blue --subnet 10.9.0.0/24 --bridge brblue";
const PRESENT_NET: &str = "ctnet network ls | grep -q blue";
const REMOVE_NET: &str = "ctnet attach blue c1 --ip 10.9.0.50 -p 8080:80 && \
     ip -n c1 -4 -o addr | grep -q 10.9.0.50 && ctnet detach blue c1 && ctnet network rm blue";

/// A LAN for macvlan: `lan0` in the host, its peer in `lanhost` holding 10.77.0.1, and a
/// macvlan network over `lan0`.
const LAN: &str = "ip netns add lanhost && ip link add lan0 type veth peer name lan1 netns lanhost && \
     ip link set lan0 up && ip -n lanhost addr add 10.77.0.1/24 dev lan1 && \
     ip -n lanhost link set lan1 up && \
     ctnet network create lan --driver macvlan --parent lan0 --subnet 10.77.0.0/24 --gateway 10.77.0.1";
const ATTACH_MACVLAN: &str = "ctnet attach lan c1 --ip 10.77.0.100";
const PRESENT_MACVLAN: &str = "ctnet ls | grep -q 10.77.0.100";
const REMOVE_MACVLAN: &str =
    "ip netns exec c1 ping -c 1 -W 2 10.77.0.1 >/dev/null && ctnet detach lan c1";
const AGAIN_MACVLAN: &str = "ctnet attach lan c1 --ip 10.77.0.100 && ctnet detach lan c1";

const CASES: [Case; 7] = [
    Case {
        world: "true",
        name: "attach -p",
        setup: "true",
        command: ATTACH,
        present: PRESENT_EP,
        remove: Some(REMOVE_EP),
        again: "ctnet attach bridge c1 --ip 172.17.0.100 -p 8080:80 && ctnet detach bridge c1",
    },
    Case {
        world: "true",
        name: "detach",
        setup: ATTACH,
        command: "ctnet detach bridge c1",
        present: PRESENT_EP,
        remove: Some(REMOVE_EP),
        again: "ctnet attach bridge c1 --ip 172.17.0.100 -p 8080:80 && ctnet detach bridge c1",
    },
    Case {
        world: "true",
        name: "network create",
        setup: "true",
        command: CREATE,
        present: PRESENT_NET,
        remove: Some(REMOVE_NET),
        again: "ctnet network create blue --subnet 10.9.0.0/24 --bridge brblue && ctnet network rm blue",
    },
    Case {
        world: "true",
        name: "network rm",
        setup: CREATE,
        command: "ctnet network rm blue",
        present: PRESENT_NET,
        remove: Some(REMOVE_NET),
        again: "ctnet network create blue --subnet 10.9.0.0/24 --bridge brblue && ctnet network rm blue",
    },
    Case {
        world: "true",
        name: "run",
        setup: "true",
        command: "ctnet run --name r1 --ip 172.17.0.100 -p 8080:80 -- true",
        present: "ctnet ls | grep -q r1 || test -e /run/netns/r1",
        remove: None,
        again: "ctnet run --name r1 --ip 172.17.0.100 -p 8080:80 -- true",
    },
    Case {
        world: LAN,
        name: "attach (macvlan)",
        setup: "true",
        command: ATTACH_MACVLAN,
        present: PRESENT_MACVLAN,
        remove: Some(REMOVE_MACVLAN),
        again: AGAIN_MACVLAN,
    },
    Case {
        world: LAN,
        name: "detach (macvlan)",
        setup: ATTACH_MACVLAN,
        command: "ctnet detach lan c1",
        present: PRESENT_MACVLAN,
        remove: Some(REMOVE_MACVLAN),
        again: AGAIN_MACVLAN,
    },
];

/// Where to kill.
#[derive(Debug, Clone)]
enum Kill {
    /// Before the `nth` (from 1) call of system call `name`.
    AtCall { name: String, nth: usize },
    /// After this long.
    After(Duration),
}

/// What the battery saw for one command.
#[derive(Default, Debug)]
struct Tally {
    syscalls: usize,
    tried: usize,
    killed: usize,
    left_something: usize,
    random: usize,
}

/// The baseline every trial starts from: a container namespace and the default network.
fn sandbox() -> Sandbox {
    let sb = Sandbox::new();
    sb.ok("ctnet netns add c1 && ctnet run -- true");
    sb
}

/// A kernel listing with what differs between identical runs made alike: interface
/// indexes, veth names and MAC addresses (random for veths).
fn normalized(listing: &str) -> String {
    let mut out = String::with_capacity(listing.len());
    let lines = listing.lines().map(|line| {
        // An address line opens with its interface's index.
        match line.split_once(": ") {
            Some((index, rest)) if index.bytes().all(|c| c.is_ascii_digit()) => rest,
            _ => line,
        }
    });
    // Sorted: the order of links and elements in a listing follows the order they
    // were made in, which is not what the battery compares.
    let mut lines: Vec<_> = lines.collect();
    lines.sort_unstable();
    let listing = lines.join("\n");
    for word in listing.split_inclusive([' ', '\n']) {
        let bare = word.trim_end();
        let is_mac = bare.len() == 17
            && bare
                .split(':')
                .all(|b| b.len() == 2 && b.bytes().all(|c| c.is_ascii_hexdigit()));
        let mut word_out = if is_mac {
            "MAC".to_string()
        } else if bare.starts_with("veth") {
            // veth + 7 random hex digits, then maybe @ifN and a colon.
            format!("vethX{}", bare.get(11..).unwrap_or(""))
        } else {
            bare.to_string()
        };
        if let Some(i) = word_out.find("@if") {
            let tail = word_out[i + 3..].trim_start_matches(|c: char| c.is_ascii_digit());
            word_out = format!("{}@ifN{tail}", &word_out[..i]);
        }
        out.push_str(&word_out);
        out.push_str(&word[bare.len()..]);
    }
    out
}

/// The system calls of `case.command`'s first thread, in order.
fn trace(sb: &Sandbox, case: &Case) -> (Vec<String>, Duration) {
    restore_baseline_store(sb);
    sb.ok(case.setup);
    let started = Instant::now();
    sb.ok(&format!(
        "mkdir -p \"$CTNET_RUN_DIR\" && strace -qq -o \"$CTNET_RUN_DIR/trace\" {} >/dev/null 2>&1",
        case.command
    ));
    let took = started.elapsed();
    let text = sb.ok("cat \"$CTNET_RUN_DIR/trace\"");
    undo_finished(sb, case);
    // A call the kernel restarted (ERESTARTNOINTR: a sysctl write that found the rtnl
    // lock taken, by this host's namespace clean-up or anyone's) is one call of the
    // command, however often it spins: only the command's own calls are kill points.
    let calls = text
        .lines()
        .filter(|l| !l.starts_with("+++") && !l.starts_with("---"))
        .filter(|l| !l.contains("= ? ERESTART"))
        .filter_map(|l| l.split('(').next())
        .filter(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_'))
        .map(str::to_string)
        .collect();
    (calls, took)
}

/// Puts back the store files as they were at the baseline. The store then holds the
/// same rows as before (the trial before this one was checked to have left the host at
/// the baseline), but its write-ahead log is as long as when the command was traced: how
/// many reads a command makes follows the log's length, and the kill points are counted
/// in system calls of each name.
///
/// It first waits (at most 2 s) for every ctnet process of the sandbox to end: a detach
/// returns before the kernel has finished deleting its links, and its child finishes
/// that meanwhile, holding the kernel's rtnl lock, against which the next command's
/// first sysctl write spins (the kernel restarts it: hundreds of `write` calls).
fn restore_baseline_store(sb: &Sandbox) {
    sb.ok(SETTLE);
    sb.ok("rm -rf \"$CTNET_STATE_DIR\" && cp -a \"$CTNET_RUN_DIR/baseline-state\" \"$CTNET_STATE_DIR\"");
}

/// Waits until no process named ctnet runs in the sandbox's network namespace.
const SETTLE: &str = "me=$(readlink /proc/self/ns/net); for _ in $(seq 100); do busy=; \
     for p in /proc/[0-9]*; do read -r c < $p/comm 2>/dev/null || continue; \
       if [ \"$c\" = ctnet ] && [ \"$(readlink $p/ns/net 2>/dev/null)\" = \"$me\" ]; then busy=1; break; fi; \
     done; [ -z \"$busy\" ] && break; sleep 0.02; done";

/// From the state a finished command leaves back to the baseline.
fn undo_finished(sb: &Sandbox, case: &Case) {
    if let Some(remove) = case.remove {
        if sb.run(case.present).status.success() {
            sb.ok(remove);
        }
    }
}

/// Kill points: the k-th system call as (name, how many of that name up to it).
fn kill_points(calls: &[String], step: usize) -> Vec<Kill> {
    let mut seen = std::collections::HashMap::<&str, usize>::new();
    let mut points = Vec::new();
    for (k, name) in calls.iter().enumerate() {
        let nth = seen.entry(name).or_default();
        *nth += 1;
        if k % step == 0 {
            points.push(Kill::AtCall {
                name: name.clone(),
                nth: *nth,
            });
        }
    }
    points
}

/// One trial: setup, the killed command, one gc, then the checks. Returns whether the
/// command was killed and whether it left something that was neither the state before
/// it nor the state after it.
fn trial(sb: &Sandbox, case: &Case, kill: &Kill, before: &str, done: &str) -> (bool, bool) {
    restore_baseline_store(sb);
    sb.ok(case.setup);
    let killing = match kill {
        Kill::AtCall { name, nth } => format!(
            "strace -qq -o /dev/null -e inject={name}:signal=KILL:when={nth} {} >/dev/null 2>&1; \
             echo $?",
            case.command
        ),
        Kill::After(delay) => format!(
            "{} >/dev/null 2>&1 & p=$!; sleep {:.4}; kill -KILL $p 2>/dev/null; wait $p; echo $?",
            case.command,
            delay.as_secs_f64()
        ),
    };
    let code = sb.ok(&killing);
    let killed = code.trim() == "137";
    let left = normalized(&sb.kernel_snapshot());
    let left_something = left != before && left != done;
    if left_something && std::env::var_os("CTNET_BATTERY_VERBOSE").is_some() {
        let new: Vec<_> = left
            .lines()
            .filter(|l| !before.contains(l) && !done.contains(l))
            .collect();
        let gone: Vec<_> = before
            .lines()
            .filter(|l| !left.contains(l) && done.contains(l))
            .collect();
        eprintln!(
            "{}: a kill at {kill:?} left {new:?}, without {gone:?}",
            case.name
        );
    }
    let gc = sb.run("ctnet gc");
    assert!(
        gc.status.success(),
        "{}: gc after a kill at {kill:?} failed: {}",
        case.name,
        String::from_utf8_lossy(&gc.stderr)
    );
    if sb.run(case.present).status.success() {
        let remove = case.remove.unwrap_or_else(|| {
            panic!(
                "{}: a kill at {kill:?} left {} after gc",
                case.name,
                sb.ok("ctnet ls; ls /run/netns")
            )
        });
        let out = sb.run(remove);
        assert!(
            out.status.success(),
            "{}: after a kill at {kill:?} and gc, the finished object does not work: {}",
            case.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (killed, left_something)
}

fn battery(case: &Case) -> Tally {
    let sb = sandbox();
    sb.ok(case.world);
    let step = match std::env::var("CTNET_BATTERY_STEP") {
        Ok(s) => s.parse().expect("CTNET_BATTERY_STEP is a number"),
        Err(_) if std::env::var("CI").is_ok_and(|v| v == "true") => CI_STEP,
        Err(_) => 1,
    };
    let seed = std::env::var("CTNET_BATTERY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    let baseline = sb.snapshot();
    sb.ok("mkdir -p \"$CTNET_RUN_DIR\" && cp -a \"$CTNET_STATE_DIR\" \"$CTNET_RUN_DIR/baseline-state\"");
    // A run before the traced one, so the traced one meets the host as the trials do: an
    // attach to a DNS network starts the on-demand agent and waits for its socket, a
    // wait as long as the agent takes to start (hundreds of calls on a busy machine) that
    // the trials, finding the agent up, never make.
    restore_baseline_store(&sb);
    sb.ok(case.setup);
    sb.ok(&format!("{} >/dev/null", case.command));
    undo_finished(&sb, case);
    let (calls, took) = trace(&sb, case);
    assert_eq!(sb.snapshot(), baseline, "{}: the traced run", case.name);
    // What the host looks like before the command (after its setup) and after it.
    restore_baseline_store(&sb);
    sb.ok(case.setup);
    let before = normalized(&sb.kernel_snapshot());
    sb.ok(&format!("{} >/dev/null", case.command));
    let done = normalized(&sb.kernel_snapshot());
    undo_finished(&sb, case);

    let mut kills = kill_points(&calls, step);
    // One past the last call: the command runs to its end under strace.
    kills.push(Kill::AtCall {
        name: "exit_group".into(),
        nth: 2,
    });
    let mut rng = seed;
    for _ in 0..RANDOM_KILLS {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let micros = rng % (took.as_micros() as u64 + 1);
        kills.push(Kill::After(Duration::from_micros(micros)));
    }
    let mut tally = Tally {
        syscalls: calls.len(),
        ..Tally::default()
    };
    for kill in &kills {
        let (killed, left) = trial(&sb, case, kill, &before, &done);
        let snapshot = sb.snapshot();
        assert_eq!(
            snapshot, baseline,
            "{}: a kill at {kill:?} (seed {seed}) left something after gc",
            case.name
        );
        let out = sb.run(case.again);
        assert!(
            out.status.success(),
            "{}: after a kill at {kill:?} and gc, the same container, address and port \
             cannot be used again: {}",
            case.name,
            String::from_utf8_lossy(&out.stderr)
        );
        match kill {
            Kill::AtCall { .. } => tally.tried += 1,
            Kill::After(_) => tally.random += 1,
        }
        tally.killed += usize::from(killed);
        tally.left_something += usize::from(left);
    }
    assert_eq!(sb.snapshot(), baseline, "{}: at the end", case.name);
    eprintln!(
        "battery {}: {} system calls, {} kill points (every {step}) + {} random delays \
         (seed {seed}); {} killed, {} left something before gc, 0 after",
        case.name, tally.syscalls, tally.tried, tally.random, tally.killed, tally.left_something
    );
    // Kill points must kill (a few may shift when the kernel makes a call restart).
    assert!(
        tally.killed >= tally.tried.saturating_sub(1) * 3 / 4,
        "{}: only {} of {} kill points killed the command (is strace working?)",
        case.name,
        tally.killed,
        tally.tried
    );
    tally
}

#[test]
fn kill_attach_at_every_step() {
    battery(&CASES[0]);
}

#[test]
fn kill_detach_at_every_step() {
    battery(&CASES[1]);
}

#[test]
fn kill_network_create_at_every_step() {
    battery(&CASES[2]);
}

#[test]
fn kill_network_rm_at_every_step() {
    battery(&CASES[3]);
}

#[test]
fn kill_run_at_every_step() {
    battery(&CASES[4]);
}

#[test]
fn kill_macvlan_attach_at_every_step() {
    battery(&CASES[5]);
}

#[test]
fn kill_macvlan_detach_at_every_step() {
    battery(&CASES[6]);
}

#[test]
fn normalized_makes_runs_alike() {
    let a = "veth12b8a09@if3: mtu 1500 master ctnet0 link/ether f6:40:7e:f6:a2:e1 brd ff:ff:ff:ff:ff:ff\n\
             3: eth0    inet 172.17.0.100/16";
    let b = "vethaaaaaaa@if4: mtu 1500 master ctnet0 link/ether 02:40:7e:f6:a2:e1 brd ff:ff:ff:ff:ff:ff\n\
             31: eth0    inet 172.17.0.100/16";
    assert_eq!(normalized(a), normalized(b));
    assert_ne!(normalized(a), normalized(&a.replace("1500", "1400")));
}
