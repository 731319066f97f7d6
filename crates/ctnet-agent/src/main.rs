//! PLACEHOLDER for H2's agent (branch `agent`): only the firewall watch, so the repair
//! can be tested before the real binary lands. On merge, H2's main.rs and Cargo.toml win;
//! only `firewall.rs` is H3's.
//!
//! `ctnet-agent [--state-dir D] [--run-dir D] [--netns-dir D] [--on-demand]`: takes
//! `agent.lock` (pid inside), runs `gc` at start (reboot repair), starts the watch, and
//! keeps `agent.json` (`firewall.repairs`, `last_cause`, ...) current.

mod firewall;

use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ctnet_engine::{Engine, Paths};

fn main() {
    if let Err(e) = run() {
        eprintln!("ctnet-agent: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let mut paths = Paths::from_env();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().map(PathBuf::from).ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--state-dir" => paths.state_dir = value()?,
            "--run-dir" => paths.run_dir = value()?,
            "--netns-dir" => paths.netns_dir = value()?,
            "--on-demand" => {}
            other => return Err(format!("unknown argument {other}")),
        }
    }
    std::fs::create_dir_all(&paths.run_dir)
        .map_err(|e| format!("run dir {}: {e}", paths.run_dir.display()))?;
    let _lock = lock(&paths.run_dir.join("agent.lock"))?;
    let mut engine = Engine::open(paths.clone()).map_err(|e| e.to_string())?;
    engine.gc().map_err(|e| e.to_string())?;
    drop(engine);
    let status = Arc::new(Mutex::new(serde_json::json!({
        "pid": std::process::id(), "started": now(), "updated": now(), "mode": "service",
        "dns": [], "upstreams": [], "last_errors": [],
        "firewall": {"watching": false, "repairs": 0, "last_repair": null, "last_cause": null},
    })));
    let status_path = paths.run_dir.join("agent.json");
    let (s, p) = (status.clone(), status_path.clone());
    let handle = firewall::watch(
        paths,
        Box::new(move |repair| {
            eprintln!("ctnet-agent: firewall: {} => {:?}", repair.cause, repair.outcome);
            let mut st = s.lock().unwrap();
            let fw = &mut st["firewall"];
            if repair.outcome.is_ok() {
                fw["repairs"] = (fw["repairs"].as_u64().unwrap_or(0) + 1).into();
            }
            fw["last_repair"] = repair.time.into();
            fw["last_cause"] = repair.cause.into();
            write_status(&p, &mut st);
        }),
    )
    .map_err(|e| e.to_string())?;
    status.lock().unwrap()["firewall"]["watching"] = true.into();
    loop {
        write_status(&status_path, &mut status.lock().unwrap());
        if handle.is_finished() {
            return Err("the firewall watch ended".into());
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn write_status(path: &Path, status: &mut serde_json::Value) {
    status["updated"] = now().into();
    let tmp = path.with_extension("json.tmp");
    if let Ok(mut f) = std::fs::File::create(&tmp) {
        let _ = f.write_all(status.to_string().as_bytes());
        let _ = std::fs::rename(&tmp, path);
    }
}

fn lock(path: &Path) -> Result<std::fs::File, String> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    // SAFETY: the fd is the open file `file` owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let pid = std::fs::read_to_string(path).unwrap_or_default();
        return Err(format!("another agent (pid {}) is running", pid.trim()));
    }
    file.set_len(0).map_err(|e| e.to_string())?;
    writeln!(file, "{}", std::process::id()).map_err(|e| e.to_string())?;
    Ok(file)
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
