//! `ctnet run` never leaves its command, endpoint or namespace behind, whatever ends it:
//! a kill -9 takes the command with it (parent-death signal) and `ctnet gc` removes the
//! rest; every other signal that would end ctnet is passed on to the command, and ctnet
//! cleans up after it as it does when the command exits by itself.

mod support;

use std::time::Duration;

use support::{process_ended, wait_until, GroupGuard, Sandbox};

/// The command: says its pid (the shell execs sleep, so it is sleep's), then sleeps.
const COMMAND: &str = "sh -c 'echo $$; exec sleep 60'";

/// A sandbox whose default network exists already, so a run that cleans up fully gives
/// back exactly the listing taken before it.
fn sandbox() -> Sandbox {
    let sb = Sandbox::new();
    sb.ok("ctnet run -- true");
    sb
}

/// Starts `ctnet run` with published ports and returns it with its command's pid.
fn start_run(sb: &Sandbox, name: &str) -> (std::process::Child, u32) {
    let (child, line) = sb.start_with_first_line(&format!(
        "ulimit -c 0; exec ctnet run --name {name} -p 8080:80 -- {COMMAND}"
    ));
    let pid = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("ctnet run did not start its command: {line:?}"));
    (child, pid)
}

#[test]
fn a_killed_run_takes_its_command_with_it() {
    let sb = sandbox();
    let before = sb.snapshot();
    for trial in 0..3 {
        let (mut child, command) = start_run(&sb, &format!("doomed{trial}"));
        let _group = GroupGuard(child.id());
        assert!(!process_ended(command));
        sb.ok(&format!("kill -KILL {}", child.id()));
        child.wait().unwrap();
        assert!(
            wait_until(Duration::from_secs(2), || process_ended(command)),
            "the command (pid {command}) outlived ctnet run"
        );
        let report = sb.ok("ctnet gc --format json");
        assert!(report.contains(&format!("doomed{trial}")), "{report}");
        assert_eq!(sb.snapshot(), before, "trial {trial}");
    }
    // The same name, address and port are free again.
    let mut child = sb.start_until(
        "exec ctnet run --name doomed0 -p 8080:80 -- sh -c 'echo ok; exec sleep 60'",
        "ok",
    );
    let _group = GroupGuard(child.id());
    assert!(sb.ok("ctnet ls").contains("172.17.0."));
    sb.ok(&format!("kill -TERM {}", child.id()));
    child.wait().unwrap();
    assert_eq!(sb.snapshot(), before);
}

/// Every signal whose default action ends a process, and that comes from outside.
const ENDING: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("USR1", libc::SIGUSR1),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
];

#[test]
fn every_ending_signal_is_passed_on_and_cleaned_up_after() {
    let sb = sandbox();
    let before = sb.snapshot();
    let rt = [
        ("RTMIN+1".to_string(), libc::SIGRTMIN() + 1),
        ("RTMAX".to_string(), libc::SIGRTMAX()),
    ];
    let all = ENDING.iter().map(|(n, s)| (n.to_string(), *s)).chain(rt);
    for (name, number) in all {
        let (mut child, command) = start_run(&sb, "sig");
        let _group = GroupGuard(child.id());
        sb.ok(&format!("kill -{number} {}", child.id()));
        let status = child.wait().unwrap();
        // The command died of the signal and ctnet passed its status on, as a shell would.
        assert_eq!(
            status.code(),
            Some(128 + number),
            "SIG{name}: ctnet run ended with {status}"
        );
        assert!(
            process_ended(command),
            "SIG{name}: the command is still running"
        );
        assert_eq!(sb.snapshot(), before, "SIG{name} left something behind");
    }
}

#[test]
fn a_command_that_handles_a_signal_keeps_ctnet_running() {
    let sb = sandbox();
    let before = sb.snapshot();
    // The command traps USR1 and ends by itself afterwards: ctnet must not die of it.
    let mut child = sb.start_until(
        "exec ctnet run -- sh -c 'trap \"exit 3\" USR1; echo ready; \
         while :; do sleep 0.1; done'",
        "ready",
    );
    let _group = GroupGuard(child.id());
    sb.ok(&format!("kill -USR1 {}", child.id()));
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3), "{status}");
    assert_eq!(sb.snapshot(), before);
}

#[test]
fn a_command_that_ignores_sigterm_is_killed_after_the_stop_timeout() {
    let sb = sandbox();
    let before = sb.snapshot();
    // The shell ignores TERM and waits for its sleep, which ignores it too.
    let mut child = sb.start_until(
        "exec ctnet run -- sh -c 'trap \"\" TERM; echo ready; sleep 60; echo survived'",
        "ready",
    );
    let _group = GroupGuard(child.id());
    let sent = std::time::Instant::now();
    sb.ok(&format!("kill -TERM {}", child.id()));
    let status = child.wait().unwrap();
    let took = sent.elapsed();
    // Killed (SIGKILL, 128 + 9) 10 s after the TERM, not when the sleep ends at 60 s.
    assert_eq!(status.code(), Some(137), "{status}");
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(30),
        "killed after {took:?}"
    );
    assert_eq!(sb.snapshot(), before);
}
