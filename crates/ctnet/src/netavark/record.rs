//! Where a Podman container's ctnet state lives, recorded by setup for its teardown.
//!
//! Podman calls `netavark teardown` from whichever of its processes cleans the container
//! up first: `podman rm`/`stop` (with the user's environment) or `podman container
//! cleanup`, which conmon starts when the container exits and which does not pass
//! `CTNET_STATE_DIR` on. Without a record, a teardown from the cleanup process looked in
//! the default state dir, found nothing and answered success: the endpoint, its published
//! port and the bridge stayed (issue 13's silent teardown).
//!
//! So every setup writes the paths it used into the `--config` dir Podman gives netavark
//! (`/run/containers/networks` for rootful Podman, a tmpfs, whatever `--root` is):
//!
//! ```text
//! <config>/ctnet/<container id>.paths   "ctnet-paths-1\0" STATE "\0" RUN "\0" NETNS "\0"
//! ```
//!
//! A setup or teardown run with none of the `CTNET_*` path variables set uses the
//! container's record when there is one; a variable that is set wins. The teardown that
//! leaves the container on no network removes the record.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use ctnet_engine::paths::{ENV_NETNS_DIR, ENV_RUN_DIR, ENV_STATE_DIR};
use ctnet_engine::Paths;

const MAGIC: &[u8] = b"ctnet-paths-1";

/// How the paths in use were chosen, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// At least one `CTNET_*` path variable was set.
    Environment,
    /// The container's record from its setup.
    Record(PathBuf),
    /// ctnet's defaults; `looked_at` is the record that was not there (None: Podman
    /// gave no `--config` dir).
    Default { looked_at: Option<PathBuf> },
}

impl Source {
    /// How the state dir was found, in words.
    pub fn describe(&self) -> String {
        match self {
            Source::Environment => format!("from {ENV_STATE_DIR} and the other CTNET_* variables"),
            Source::Record(path) => format!("recorded by the container's setup in {}", path.display()),
            Source::Default { looked_at: Some(path) } => format!(
                "ctnet's default: no CTNET_* variable is set and there is no record of a setup of this container at {}",
                path.display()
            ),
            Source::Default { looked_at: None } => {
                "ctnet's default: no CTNET_* variable is set and no --config dir was given to look for a record in".into()
            }
        }
    }
}

/// The record file of `container_id` under Podman's `--config` dir.
pub fn record_path(config: &Path, container_id: &str) -> PathBuf {
    config.join("ctnet").join(format!("{container_id}.paths"))
}

/// Chooses the paths: the environment's when any variable is set, else the record's,
/// else the defaults. Pure: the caller reads the environment and the record.
pub fn choose(
    env_set: bool,
    from_env: Paths,
    record: Option<(PathBuf, Paths)>,
    looked_at: Option<PathBuf>,
) -> (Paths, Source) {
    if env_set {
        return (from_env, Source::Environment);
    }
    match record {
        Some((path, paths)) => (paths, Source::Record(path)),
        None => (Paths::default(), Source::Default { looked_at }),
    }
}

/// Whether any of ctnet's path variables is set.
pub fn env_set() -> bool {
    [ENV_STATE_DIR, ENV_RUN_DIR, ENV_NETNS_DIR]
        .iter()
        .any(|v| std::env::var_os(v).is_some())
}

/// The paths for a container, with how they were found (see the module's text).
pub fn resolve(config: Option<&Path>, container_id: &str) -> (Paths, Source) {
    let path = config.map(|c| record_path(c, container_id));
    let record = path.as_ref().and_then(|p| Some((p.clone(), read(p)?)));
    choose(env_set(), Paths::from_env(), record, path)
}

/// The paths a record holds; None when there is none or it is damaged.
pub fn read(path: &Path) -> Option<Paths> {
    decode(&std::fs::read(path).ok()?)
}

/// Writes the record of the paths a setup used; atomic (a reader sees the old record or
/// the new one). Returns the path written.
pub fn write(config: &Path, container_id: &str, paths: &Paths) -> std::io::Result<PathBuf> {
    let path = record_path(config, container_id);
    let dir = path.parent().expect("a record has a folder");
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{container_id}.{}", std::process::id()));
    std::fs::write(&tmp, encode(paths))?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Removes a container's record; one already gone is fine.
pub fn remove(config: &Path, container_id: &str) {
    let _ = std::fs::remove_file(record_path(config, container_id));
}

fn encode(paths: &Paths) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.push(0);
    for p in [&paths.state_dir, &paths.run_dir, &paths.netns_dir] {
        out.extend_from_slice(p.as_os_str().as_bytes());
        out.push(0);
    }
    out
}

/// The paths of a record; None for anything but a whole record of this format.
fn decode(bytes: &[u8]) -> Option<Paths> {
    let fields: Vec<&[u8]> = bytes.strip_suffix(&[0])?.split(|b| *b == 0).collect();
    let [magic, state, run, netns] = fields.as_slice() else {
        return None;
    };
    let path = |b: &[u8]| (!b.is_empty()).then(|| PathBuf::from(OsStr::from_bytes(b)));
    (*magic == MAGIC).then_some(())?;
    Some(Paths {
        state_dir: path(state)?,
        run_dir: path(run)?,
        netns_dir: path(netns)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(state: &str) -> Paths {
        Paths {
            state_dir: state.into(),
            run_dir: "/tmp/run".into(),
            netns_dir: "/run/netns".into(),
        }
    }

    #[test]
    fn a_record_round_trips_with_any_bytes_but_nul() {
        let p = Paths {
            state_dir: PathBuf::from(OsStr::from_bytes(b"/tmp/st\xffate\nx")),
            ..paths("/x")
        };
        let back = decode(&encode(&p)).unwrap();
        assert_eq!(back.state_dir, p.state_dir);
        assert_eq!(back.run_dir, p.run_dir);
        assert_eq!(back.netns_dir, p.netns_dir);
    }

    #[test]
    fn a_damaged_record_is_no_record() {
        let good = encode(&paths("/tmp/state"));
        for bad in [
            &good[..good.len() - 1],
            &good[..5],
            b"ctnet-paths-2\0/a\0/b\0/c\0".as_slice(),
            b"ctnet-paths-1\0\0/b\0/c\0".as_slice(),
            b"ctnet-paths-1\0/a\0/b\0/c\0/d\0".as_slice(),
            b"".as_slice(),
        ] {
            assert!(decode(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn the_environment_wins_then_the_record_then_the_defaults() {
        let rec = Some((PathBuf::from("/cfg/ctnet/x.paths"), paths("/tmp/rec")));
        let (p, s) = choose(true, paths("/tmp/env"), rec.clone(), None);
        assert_eq!((p.state_dir, s), ("/tmp/env".into(), Source::Environment));
        let (p, s) = choose(false, paths("/tmp/env"), rec, None);
        assert_eq!(p.state_dir, PathBuf::from("/tmp/rec"));
        assert_eq!(s, Source::Record("/cfg/ctnet/x.paths".into()));
        let looked = Some(PathBuf::from("/cfg/ctnet/y.paths"));
        let (p, s) = choose(false, paths("/tmp/env"), None, looked.clone());
        assert_eq!(p.state_dir, Paths::default().state_dir);
        assert_eq!(s, Source::Default { looked_at: looked });
    }
}
