//! The record of a verified ruleset: lets a ctnet process skip the layout check of
//! ctnet's two tables when nothing has changed since another ctnet process checked them.
//!
//! ```text
//!   RUN_DIR/nft-verified     one line, replaced whole (written aside, then renamed):
//!   ctnet-nft-verified 1 BOOT_ID COOKIE GENERATION LAYOUTS INET GUARD end
//!                        │       │      │          │       └─ which table was found
//!                        │       │      │          │          current (1) or not (0)
//!                        │       │      │          └─ a hash of both layout comments
//!                        │       │      └─ the ruleset generation it was found at
//!                        │       └─ SO_NETNS_COOKIE of the namespace (never reused
//!                        │          within a boot, unlike its inode)
//!                        └─ /proc/sys/kernel/random/boot_id
//! ```
//!
//! Why it is sound: the kernel adds one to a namespace's ruleset generation at every
//! batch it commits, from anyone (`nft`, firewalld, another ctnet, a hand edit); a
//! refused batch adds nothing. So a process that reads the generation G and finds a
//! record of G for its boot, namespace and layouts sees the very tables that were
//! checked. It records again only what it knows:
//! - after a check that found the tables current, the generation it read *before* the
//!   check (a commit in between makes that generation a past one, which no later
//!   reader can see again);
//! - after its own commit of elements (an attach, a detach), the generation after it,
//!   and only when that is exactly one more than what it knew: then the one commit in
//!   between was its own, which adds and removes elements and changes no rule.
//!
//! Anything else (a second committer, a record that does not parse, a file that cannot
//! be read or written) means the full check, as before. The record is a cache, never the
//! truth: `ctnet gc`, doctor and the agent's repair always read the kernel.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The file's name in the run dir.
pub const FILE: &str = "nft-verified";
/// The first word of a record, and its version.
const MAGIC: &str = "ctnet-nft-verified 1";

/// What one process knows of the ruleset: the generation it last saw, and which of
/// ctnet's tables were found current at that generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    /// `/proc/sys/kernel/random/boot_id`.
    pub boot_id: String,
    /// The namespace's `SO_NETNS_COOKIE`.
    pub cookie: u64,
    /// The ruleset generation.
    pub generation: u32,
    /// A hash of the layouts this code writes ([`layouts_hash`]).
    pub layouts: u64,
    /// `inet ctnet` was found current at `generation`.
    pub inet: bool,
    /// `bridge ctnet` was found current at `generation`.
    pub guard: bool,
}

impl Known {
    /// Nothing verified yet at `generation`.
    pub fn fresh(boot_id: String, cookie: u64, generation: u32, layouts: u64) -> Known {
        Known {
            boot_id,
            cookie,
            generation,
            layouts,
            inet: false,
            guard: false,
        }
    }

    /// What a process that has just read `generation` (for this boot, namespace and
    /// layouts) may take from `record`: its findings if it was made at that generation,
    /// nothing otherwise.
    pub fn from_record(record: Option<&str>, fresh: Known) -> Known {
        match record.and_then(parse) {
            Some(r)
                if r.boot_id == fresh.boot_id
                    && r.cookie == fresh.cookie
                    && r.generation == fresh.generation
                    && r.layouts == fresh.layouts =>
            {
                r
            }
            _ => fresh,
        }
    }

    /// After this process committed one batch of elements and then read `now`: the
    /// findings carry over when `now` is the next generation (the only commit between
    /// was its own); otherwise nothing is known to be current at `now`. Says whether
    /// they carried.
    pub fn after_own_commit(&mut self, now: u32) -> bool {
        if now == self.generation {
            // Nothing was committed after all (there was nothing to change).
            return false;
        }
        let carried = now == next_generation(self.generation);
        if carried {
            self.generation = now;
        } else {
            self.seen(now);
        }
        carried && (self.inet || self.guard)
    }

    /// The generation read again: what was found at another one is not known at it.
    pub fn seen(&mut self, now: u32) {
        if now != self.generation {
            self.generation = now;
            self.inet = false;
            self.guard = false;
        }
    }

    /// The record's one line.
    pub fn to_line(&self) -> String {
        format!(
            "{MAGIC} {} {} {} {:016x} {} {} end\n",
            self.boot_id,
            self.cookie,
            self.generation,
            self.layouts,
            u8::from(self.inet),
            u8::from(self.guard)
        )
    }
}

/// The generation after `g` (the kernel skips 0 when it wraps).
fn next_generation(g: u32) -> u32 {
    match g.wrapping_add(1) {
        0 => 1,
        n => n,
    }
}

/// A record, when `text` is exactly one well-formed line (a torn or mixed write is not).
fn parse(text: &str) -> Option<Known> {
    let line = text.strip_suffix('\n')?;
    if line.contains('\n') {
        return None;
    }
    let rest = line.strip_prefix(MAGIC)?.strip_prefix(' ')?;
    let fields: Vec<&str> = rest.split(' ').collect();
    let [boot_id, cookie, generation, layouts, inet, guard, "end"] = fields[..] else {
        return None;
    };
    let flag = |f: &str| match f {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    };
    if boot_id.is_empty() || layouts.len() != 16 {
        return None;
    }
    Some(Known {
        boot_id: boot_id.to_string(),
        cookie: cookie.parse().ok()?,
        generation: generation.parse().ok()?,
        layouts: u64::from_str_radix(layouts, 16).ok()?,
        inet: flag(inet)?,
        guard: flag(guard)?,
    })
}

/// FNV-1a of both tables' layout comments: a record made by a ctnet writing other
/// layouts (before an upgrade) is not this code's.
pub fn layouts_hash(inet: &str, guard: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in inet.bytes().chain([0]).chain(guard.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The record in `dir`, if one can be read.
pub fn read(dir: &Path) -> Option<String> {
    std::fs::read_to_string(dir.join(FILE)).ok()
}

/// Replaces the record in `dir` (created 0755 if needed, as the agent makes it) by
/// `known`'s: written to a file of this process's own, then renamed over it, so a reader
/// sees the old record or the new one whole. A failure leaves the next process to check
/// the tables itself, which is what it did before there were records.
pub fn write(dir: &Path, known: &Known) {
    use std::os::unix::fs::DirBuilderExt;
    let aside: PathBuf = dir.join(format!(".{FILE}.{}", std::process::id()));
    let written = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .and_then(|()| std::fs::File::create(&aside))
        .and_then(|mut f| f.write_all(known.to_line().as_bytes()))
        .and_then(|()| std::fs::rename(&aside, dir.join(FILE)));
    if written.is_err() {
        let _ = std::fs::remove_file(&aside);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(generation: u32) -> Known {
        Known {
            boot_id: "b0a1".into(),
            cookie: 4097,
            generation,
            layouts: layouts_hash("inet layout", "guard layout"),
            inet: true,
            guard: false,
        }
    }

    #[test]
    fn a_record_round_trips_and_is_taken_only_at_its_generation() {
        let line = known(41).to_line();
        assert_eq!(parse(&line), Some(known(41)));
        let fresh = |g| Known::fresh("b0a1".into(), 4097, g, known(0).layouts);
        assert_eq!(Known::from_record(Some(&line), fresh(41)), known(41));
        // A commit since (anyone's) means nothing is known.
        assert_eq!(Known::from_record(Some(&line), fresh(42)), fresh(42));
    }

    #[test]
    fn another_boot_namespace_or_layout_is_not_taken() {
        let line = known(41).to_line();
        let layouts = known(0).layouts;
        for fresh in [
            Known::fresh("other".into(), 4097, 41, layouts),
            Known::fresh("b0a1".into(), 4098, 41, layouts),
            Known::fresh(
                "b0a1".into(),
                4097,
                41,
                layouts_hash("inet layout 9", "guard layout"),
            ),
        ] {
            assert_eq!(Known::from_record(Some(&line), fresh.clone()), fresh);
        }
        assert_ne!(layouts_hash("a", "bc"), layouts_hash("ab", "c"));
    }

    #[test]
    fn torn_mixed_or_foreign_text_is_no_record() {
        let line = known(41).to_line();
        for bad in [
            String::new(),
            line[..line.len() - 1].to_string(),
            line[..line.len() / 2].to_string(),
            format!("{line}{}", &line[10..]),
            line.replace(" end", " 7 end"),
            line.replace(" 1 0 end", " 2 0 end"),
            line.replace("ctnet-nft-verified 1", "ctnet-nft-verified 2"),
        ] {
            assert_eq!(parse(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn findings_carry_over_one_own_commit_and_no_more() {
        let mut k = known(41);
        assert!(
            !k.after_own_commit(41),
            "no commit: nothing to write, nothing lost"
        );
        assert!(k.inet);
        assert!(k.after_own_commit(42));
        assert_eq!((k.generation, k.inet), (42, true));
        // Someone else committed too: nothing is known at 44.
        assert!(!k.after_own_commit(44));
        assert_eq!((k.generation, k.inet, k.guard), (44, false, false));
        // Nothing was known: nothing to record.
        assert!(!k.after_own_commit(45));
        let mut seen = known(41);
        seen.seen(41);
        assert!(seen.inet, "the same generation keeps what was found");
        seen.seen(43);
        assert_eq!((seen.generation, seen.inet), (43, false));
        let mut wrap = known(u32::MAX);
        assert!(wrap.after_own_commit(1), "the kernel skips 0");
    }

    #[test]
    fn a_written_record_is_read_back_and_a_missing_dir_is_made() {
        let dir = std::env::temp_dir().join(format!("ctnet-verified-{}", std::process::id()));
        let run = dir.join("run");
        write(&run, &known(7));
        assert_eq!(read(&run).as_deref(), Some(known(7).to_line().as_str()));
        write(&run, &known(8));
        assert_eq!(read(&run).and_then(|t| parse(&t)), Some(known(8)));
        assert_eq!(
            std::fs::read_dir(&run).unwrap().count(),
            1,
            "no file left aside"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
