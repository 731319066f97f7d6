//! Builds the whole-process kernel floor, `floor/floor.c`: a minimal static program making
//! the kernel calls of the in-process floor, which the benchmark times as a process, as
//! it times every real system. It is compiled with `cc` from PATH (`CC` overrides, and
//! may carry arguments: `CC="ccache gcc"`) into `$OUT_DIR/ctnet-floor`, whose path goes
//! to the crate as `CTNET_FLOOR_BIN`.
//!
//! Nothing here fails the build: without a C compiler (or a static libc) the file is
//! left empty and `CTNET_FLOOR_ERROR` says why, for the benchmark to report; it is
//! empty when the program was built.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const SOURCE: &str = "floor/floor.c";
const FLAGS: [&str; 5] = ["-O2", "-static", "-Wall", "-Wextra", "-Werror"];

fn main() {
    println!("cargo:rerun-if-changed={SOURCE}");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let bin = out_dir.join("ctnet-floor");
    println!("cargo:rustc-env=CTNET_FLOOR_BIN={}", bin.display());
    match compile(&bin) {
        Ok(()) => println!("cargo:rustc-env=CTNET_FLOOR_ERROR="),
        Err((reason, detail)) => {
            // An empty program: the benchmark sees no bytes and reports the reason.
            if let Err(e) = fs::write(&bin, b"") {
                panic!("cannot write {}: {e}", bin.display());
            }
            println!("cargo:warning=the kernel floor program is not built: {reason}");
            for line in detail.lines().filter(|l| !l.trim().is_empty()).take(20) {
                println!("cargo:warning={line}");
            }
            println!("cargo:rustc-env=CTNET_FLOOR_ERROR={}", one_line(&reason));
        }
    }
}

/// Compiles the floor into `bin`; on failure, a one-line reason and the compiler's
/// output.
fn compile(bin: &Path) -> Result<(), (String, String)> {
    let cc_var = env::var("CC").ok().filter(|cc| !cc.trim().is_empty());
    let target = env::var("TARGET").unwrap_or_default();
    if cc_var.is_none() && target != env::var("HOST").unwrap_or_default() {
        // The cc on PATH makes programs for this machine, not for the target.
        return Err((
            format!("cross-compiling to {target}: set CC to a C compiler for it"),
            String::new(),
        ));
    }
    let cc = cc_var.unwrap_or_else(|| "cc".to_string());
    let mut words = cc.split_whitespace();
    let program = words.next().unwrap_or("cc");
    let output = Command::new(program)
        .current_dir(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .args(words)
        .args(FLAGS)
        .arg("-o")
        .arg(bin)
        .arg(SOURCE)
        .output()
        .map_err(|e| (format!("cannot run {program}: {e}"), String::new()))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    // The first error says most (the linker's "cannot find -lc" comes before its
    // "error: ld returned 1"); else the first line, else the exit status.
    let first = stderr
        .lines()
        .find(|l| l.contains("error:") || l.contains("cannot find"))
        .or_else(|| stderr.lines().find(|l| !l.trim().is_empty()));
    let reason = match first {
        Some(line) => format!("{cc} failed on {SOURCE}: {}", line.trim()),
        None => format!("{cc} failed on {SOURCE} ({})", output.status),
    };
    Err((reason, stderr))
}

/// `text` on one line, as a `cargo:rustc-env` value must be.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
