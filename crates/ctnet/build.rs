//! Puts the git commit ctnet is built from into `--version` (`ctnet 0.1.0 (3f2a9c1)`).
//!
//! A build from a tarball or any folder without git history has no commit: the version
//! is then the package's alone. Only `git` is asked; nothing here fails the build.

use std::path::Path;
use std::process::Command;

fn main() {
    // Only this project's own checkout counts: a tarball unpacked inside some other
    // repository must not show that repository's commit.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let ours = git(&["rev-parse", "--show-toplevel"])
        .zip(root.canonicalize().ok())
        .is_some_and(|(top, root)| Path::new(&top).canonicalize().ok() == Some(root));
    if !ours {
        println!("cargo:rustc-env=CTNET_BUILD_COMMIT=");
        println!("cargo:rerun-if-changed=build.rs");
        return;
    }
    let commit = git(&["rev-parse", "--short=12", "HEAD"]);
    let suffix = commit
        .as_deref()
        .map_or(String::new(), |c| format!(" ({c})"));
    println!("cargo:rustc-env=CTNET_BUILD_COMMIT={suffix}");
    // Rebuilt when HEAD moves: HEAD itself (a checkout) and the ref it names (a commit).
    // In a worktree these live in the worktree's own git folder, which git tells.
    for file in ["HEAD", "packed-refs"] {
        watch(git(&["rev-parse", "--git-path", file]));
    }
    if let Some(head_ref) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch(git(&["rev-parse", "--git-path", &head_ref]));
    }
    println!("cargo:rerun-if-changed=build.rs");
}

/// The trimmed output of a successful git command; None without git or a repository.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}

fn watch(path: Option<String>) {
    if let Some(path) = path.filter(|p| Path::new(p).exists()) {
        println!("cargo:rerun-if-changed={path}");
    }
}
