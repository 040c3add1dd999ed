//! The planner: a pure diff of one source directory listing against the
//! matching destination listing, into robocopy's classes.
//!
//! | class    | source | destination                         | copied unless       |
//! |----------|--------|-------------------------------------|---------------------|
//! | New      | file   | missing (robocopy's "Lonely")       | never skipped       |
//! | Newer    | file   | older mtime                         | `--exclude-newer`   |
//! | Older    | file   | newer mtime                         | `--exclude-older`   |
//! | Changed  | file   | same mtime, other size              | `--exclude-changed` |
//! | Same     | file   | same mtime and size                 | copied with `--include-same` |
//! | Extra    | —      | present                             | deleted by `--purge` |
//! | Mismatch | file/dir | dir/file                          | reported, never copied |
//!
//! Times are FILETIME ticks (100 ns); `--fft` allows 2 seconds of difference.
//! A destination whose size differs is never Same, whatever the times say.
//!
//! Symlinks of a local tree, listed as themselves ([`LinkKind`]), are never
//! walked into: a source link is skipped (and protects the destination entry
//! of its name), a source entry whose destination is a link is refused
//! (nothing is written through it or over it), and a destination-only link is
//! an extra file, so a purge unlinks the link and never what it points to.

use std::time::SystemTime;

use globset::GlobSet;

use crate::backend::local::LinkKind;
use crate::backend::Entry;

/// 2 seconds in FILETIME ticks.
const FFT_TOLERANCE: u64 = 20_000_000;

/// What a source file is, compared with the destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// Not in the destination (robocopy: "New File", a lonely file).
    New,
    /// Source is newer.
    Newer,
    /// Source is older.
    Older,
    /// Same time, different size.
    Changed,
    /// Same time and size.
    Same,
    /// Only in the destination.
    Extra,
    /// A file on one side, a directory on the other.
    Mismatch,
}

impl Class {
    /// The label robocopy prints in its file list.
    pub fn label(self) -> &'static str {
        match self {
            Self::New => "New File",
            Self::Newer => "Newer",
            Self::Older => "Older",
            Self::Changed => "Changed",
            Self::Same => "same",
            Self::Extra => "*EXTRA File",
            Self::Mismatch => "*Mismatch",
        }
    }
}

/// Which files and directories take part at all.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// FILE_GLOB arguments and `--include` globs without a separator: when
    /// set (or `include_paths` is), only files matching one are considered.
    pub include: Option<GlobSet>,
    /// Include globs with a separator, matched against the relative path.
    pub include_paths: Option<GlobSet>,
    /// `--files-from`: only these relative paths (`/`-separated).
    pub files_from: Option<std::sync::Arc<std::collections::HashSet<String>>>,
    /// `--include-attr`: only files with one of these attribute bits.
    pub include_attrs: Option<u32>,
    /// `--exclude-attr`: files with one of these attribute bits are skipped.
    pub exclude_attrs: u32,
    /// `--delete-excluded`: destination entries the filters exclude are extras too.
    pub delete_excluded: bool,
    /// `--exclude-file`.
    pub exclude_files: Option<GlobSet>,
    /// `--exclude-dir`.
    pub exclude_dirs: Option<GlobSet>,
    /// `--max-size`.
    pub max_size: Option<u64>,
    /// `--min-size`.
    pub min_size: Option<u64>,
    /// `--max-age`: files last written before this are skipped.
    pub oldest: Option<SystemTime>,
    /// `--min-age`: files last written after this are skipped.
    pub newest: Option<SystemTime>,
    /// `--lev`: deepest level copied (1 = the source directory itself).
    pub max_level: Option<u32>,
    /// A single-file SOURCE: only this name (compared without case when the
    /// second field is true) takes part.
    pub only: Option<(String, bool)>,
}

impl Filter {
    /// Whether a file is selected by the include side: FILE_GLOB/`--include`
    /// (its name, or its relative path for a glob with a separator; any one
    /// match is enough; always true without globs), `--files-from` and a
    /// single-file SOURCE.
    pub fn included(&self, rel: &str, name: &str) -> bool {
        let only = self.only.as_ref().map_or(true, |(n, ci)| {
            if *ci {
                n.eq_ignore_ascii_case(name)
            } else {
                n == name
            }
        });
        let globbed = match (&self.include, &self.include_paths) {
            (None, None) => true,
            (names, paths) => {
                names.as_ref().is_some_and(|g| g.is_match(name))
                    || paths.as_ref().is_some_and(|g| g.is_match(rel))
            }
        };
        let listed = self.files_from.as_ref().map_or(true, |l| l.contains(rel));
        only && globbed && listed
    }

    /// Whether the attribute filters skip a file with these attributes.
    pub fn attributes_excluded(&self, attributes: u32) -> bool {
        attributes & self.exclude_attrs != 0
            || self.include_attrs.is_some_and(|m| attributes & m == 0)
    }

    /// Whether `--exclude-file` matches the name or the relative path.
    pub fn file_excluded_by_name(&self, rel: &str, name: &str) -> bool {
        self.exclude_files
            .as_ref()
            .is_some_and(|g| g.is_match(name) || g.is_match(rel))
    }

    /// Whether a source file is filtered out (name, size or age).
    pub fn file_excluded(&self, rel: &str, e: &Entry) -> bool {
        if self.file_excluded_by_name(rel, &e.name) {
            return true;
        }
        if self.max_size.is_some_and(|m| e.size > m) || self.min_size.is_some_and(|m| e.size < m) {
            return true;
        }
        if self.attributes_excluded(e.attributes) {
            return true;
        }
        let mtime = e.mtime.to_system_time();
        self.oldest.is_some_and(|t| mtime < t) || self.newest.is_some_and(|t| mtime > t)
    }

    /// Whether `--exclude-dir` matches the directory's name or relative path.
    pub fn dir_excluded(&self, rel: &str, name: &str) -> bool {
        self.exclude_dirs
            .as_ref()
            .is_some_and(|g| g.is_match(name) || g.is_match(rel))
    }

    /// Whether directories at `level` (1 = the root) are still copied.
    pub fn level_allowed(&self, level: u32) -> bool {
        self.max_level.map_or(true, |m| level <= m)
    }
}

/// How classes turn into copy decisions (`--exclude-older` etc.).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Selection {
    /// `--exclude-older`.
    pub exclude_older: bool,
    /// `--exclude-newer`.
    pub exclude_newer: bool,
    /// `--exclude-changed`.
    pub exclude_changed: bool,
    /// `--exclude-extra`.
    pub exclude_extra: bool,
    /// `--include-same`.
    pub include_same: bool,
    /// `--fft`.
    pub fft: bool,
    /// Match names case-insensitively (an SMB destination: `File.txt` and
    /// `file.txt` are one file there, so they must never be "new" + "extra").
    pub case_insensitive: bool,
    /// Source entries marked as symlinks ([`LinkKind::of`]) are links: a
    /// local source.
    pub src_links: bool,
    /// Destination entries marked as symlinks are links: a local destination.
    pub dst_links: bool,
}

impl Selection {
    /// Whether a file of this class is copied.
    pub fn copies(&self, class: Class) -> bool {
        match class {
            Class::New => true,
            Class::Newer => !self.exclude_newer,
            Class::Older => !self.exclude_older,
            Class::Changed => !self.exclude_changed,
            Class::Same => self.include_same,
            Class::Extra | Class::Mismatch => false,
        }
    }
}

/// Classifies a source file against what the destination has under its name.
pub fn classify(src: &Entry, dst: Option<&Entry>, fft: bool) -> Class {
    let Some(dst) = dst else { return Class::New };
    if dst.is_dir != src.is_dir {
        return Class::Mismatch;
    }
    let (s, d) = (src.mtime.0, dst.mtime.0);
    let tolerance = if fft { FFT_TOLERANCE } else { 0 };
    if s.abs_diff(d) <= tolerance {
        if src.size == dst.size {
            Class::Same
        } else {
            Class::Changed
        }
    } else if s > d {
        Class::Newer
    } else {
        Class::Older
    }
}

/// One source file and what to do with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileItem {
    /// The source entry.
    pub src: Entry,
    /// What the destination holds now, if anything.
    pub dst: Option<Entry>,
    /// Its class.
    pub class: Class,
    /// Copy it (otherwise it is skipped).
    pub copy: bool,
}

/// A subdirectory to descend into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubDir {
    /// The source entry.
    pub src: Entry,
    /// The destination already has a directory of that name.
    pub dst_exists: bool,
}

/// Everything decided about one directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirPlan {
    /// Source files considered (not filtered by FILE_GLOB), in name order.
    pub files: Vec<FileItem>,
    /// Files excluded by a filter (counted as skipped).
    pub excluded_files: Vec<Entry>,
    /// Subdirectories to walk.
    pub subdirs: Vec<SubDir>,
    /// Subdirectories excluded by `--exclude-dir` or `--lev`.
    pub excluded_dirs: u64,
    /// Destination-only entries (empty with `--exclude-extra`).
    pub extras: Vec<Entry>,
    /// Names that are a file on one side and a directory on the other.
    pub mismatches: Vec<Entry>,
    /// Source symlinks that are not walked or copied (skipped).
    pub links: Vec<Entry>,
    /// Source files and directories whose destination is a symlink: never
    /// written through or over (failures).
    pub blocked: Vec<Entry>,
    /// Source entries whose names differ only in case from another one's,
    /// with a case-insensitive destination (an SMB share): there they would
    /// be one file, the last copy overwriting the others, so none of them is
    /// copied or walked into (failures, `NAME_COLLISION`).
    pub collisions: Vec<Collision>,
}

/// A source entry that shares its destination name with others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collision {
    /// The source entry.
    pub src: Entry,
    /// The other source names it collides with.
    pub with: Vec<String>,
}

/// Joins a directory's relative path and a name with `/`.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Diffs one directory. `level` is the directory's own level (1 = root);
/// `descend` is false without `--subdirs`.
pub fn plan_dir(
    dir: &str,
    level: u32,
    src: Vec<Entry>,
    dst: Vec<Entry>,
    filter: &Filter,
    sel: &Selection,
    descend: bool,
) -> DirPlan {
    let src = keyed(src, sel.case_insensitive);
    let dst = keyed(dst, sel.case_insensitive);
    let mut plan = DirPlan::default();
    let descend = descend && filter.level_allowed(level + 1);
    let mut collide = if sel.case_insensitive {
        collisions(dir, &src, filter, sel, descend)
    } else {
        Vec::new()
    };
    collide.resize(src.len(), None);
    let mut di = dst.into_iter().peekable();
    for (ks, with) in src.into_iter().zip(collide) {
        // Walk the sorted destination alongside: entries before `s` are extras.
        let mut matched = None;
        while let Some(d) = di.peek() {
            match d.key().cmp(ks.key()) {
                std::cmp::Ordering::Less => {
                    let Some(d) = di.next() else { break };
                    extra(&mut plan, dir, d.entry, filter, sel, descend);
                }
                std::cmp::Ordering::Equal => {
                    matched = di.next().map(|d| d.entry);
                    break;
                }
                std::cmp::Ordering::Greater => break,
            }
        }
        let s = ks.entry;
        if let Some(with) = with {
            // The destination entry of this name (matched above) stays as it is.
            plan.collisions.push(Collision { src: s, with });
            continue;
        }
        let rel = join(dir, &s.name);
        let dst_is_link =
            sel.dst_links && matched.as_ref().is_some_and(|d| LinkKind::of(d).is_some());
        if sel.src_links && LinkKind::of(&s).is_some() {
            // The destination entry of this name was matched: left alone.
            if filter.included(&rel, &s.name) && !filter.file_excluded_by_name(&rel, &s.name) {
                plan.links.push(s);
            }
            continue;
        }
        if s.is_dir {
            if !descend {
                continue;
            }
            if filter.dir_excluded(&rel, &s.name) {
                plan.excluded_dirs += 1;
                excluded_extra(&mut plan, matched, filter, sel);
                continue;
            }
            if dst_is_link {
                plan.blocked.push(s);
                continue;
            }
            match matched {
                Some(d) if !d.is_dir => plan.mismatches.push(s),
                d => plan.subdirs.push(SubDir {
                    src: s,
                    dst_exists: d.is_some(),
                }),
            }
            continue;
        }
        if !filter.included(&rel, &s.name) {
            excluded_extra(&mut plan, matched, filter, sel);
            continue;
        }
        if filter.file_excluded(&rel, &s) {
            plan.excluded_files.push(s);
            excluded_extra(&mut plan, matched, filter, sel);
            continue;
        }
        if dst_is_link {
            plan.blocked.push(s);
            continue;
        }
        let class = classify(&s, matched.as_ref(), sel.fft);
        if class == Class::Mismatch {
            plan.mismatches.push(s);
            continue;
        }
        plan.files.push(FileItem {
            copy: sel.copies(class),
            src: s,
            dst: matched,
            class,
        });
    }
    for d in di {
        extra(&mut plan, dir, d.entry, filter, sel, descend);
    }
    plan
}

/// A listing entry with its merge key, computed once (the merge compares
/// keys many times per entry): the name itself, or its lowercase form on a
/// case-insensitive destination — kept only when lowercasing changes it, so
/// an all-lowercase name costs no allocation at all.
#[derive(Debug)]
struct Keyed {
    folded: Option<String>,
    entry: Entry,
}

impl Keyed {
    fn key(&self) -> &str {
        self.folded.as_deref().unwrap_or(&self.entry.name)
    }
}

/// `entries` with their keys, sorted by key (stably: names equal but for
/// case keep their listing order).
fn keyed(entries: Vec<Entry>, case_insensitive: bool) -> Vec<Keyed> {
    let unchanged = |name: &str| {
        name.chars().all(|c| {
            let mut l = c.to_lowercase();
            l.next() == Some(c) && l.next().is_none()
        })
    };
    let mut v: Vec<Keyed> = entries
        .into_iter()
        .map(|entry| Keyed {
            folded: (case_insensitive && !unchanged(&entry.name))
                .then(|| entry.name.to_lowercase()),
            entry,
        })
        .collect();
    v.sort_by(|a, b| a.key().cmp(b.key()));
    v
}

/// For `src` sorted by lowercased name (its keys): for each entry that would be copied
/// or walked into, the names of the others that would land on the same
/// case-insensitive destination name (`None` when it has that name alone).
/// Filtered-out entries and skipped links take no part.
fn collisions(
    dir: &str,
    src: &[Keyed],
    filter: &Filter,
    sel: &Selection,
    descend: bool,
) -> Vec<Option<Vec<String>>> {
    let takes_part = |e: &Entry| {
        let rel = join(dir, &e.name);
        if sel.src_links && LinkKind::of(e).is_some() {
            false
        } else if e.is_dir {
            descend && !filter.dir_excluded(&rel, &e.name)
        } else {
            filter.included(&rel, &e.name) && !filter.file_excluded(&rel, e)
        }
    };
    let mut out = vec![None; src.len()];
    let mut start = 0;
    while start < src.len() {
        let end = (start..src.len())
            .find(|&i| src[i].key() != src[start].key())
            .unwrap_or(src.len());
        if end - start < 2 {
            // A name alone: no filter needs to be asked.
            start = end;
            continue;
        }
        let members: Vec<usize> = (start..end)
            .filter(|&i| takes_part(&src[i].entry))
            .collect();
        if members.len() > 1 {
            for &i in &members {
                let others = members.iter().filter(|&&j| j != i);
                out[i] = Some(others.map(|&j| src[j].entry.name.clone()).collect());
            }
        }
        start = end;
    }
    out
}

/// Records a destination-only entry unless it is protected by a filter.
fn extra(plan: &mut DirPlan, dir: &str, d: Entry, filter: &Filter, sel: &Selection, descend: bool) {
    if sel.exclude_extra {
        return;
    }
    let rel = join(dir, &d.name);
    let protected = if d.is_dir {
        !descend || (filter.dir_excluded(&rel, &d.name) && !filter.delete_excluded)
    } else {
        (!filter.included(&rel, &d.name)
            || filter.file_excluded_by_name(&rel, &d.name)
            || filter.attributes_excluded(d.attributes))
            && !filter.delete_excluded
    };
    if !protected {
        plan.extras.push(d);
    }
}

/// `--delete-excluded`: the destination entry of a source entry the filters
/// exclude is an extra (deleted with `--purge`).
fn excluded_extra(plan: &mut DirPlan, matched: Option<Entry>, filter: &Filter, sel: &Selection) {
    if let Some(d) = matched.filter(|_| filter.delete_excluded && !sel.exclude_extra) {
        plan.extras.push(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smb_core::FileTime;

    const SEC: u64 = 10_000_000;

    fn f(name: &str, size: u64, secs: u64) -> Entry {
        Entry {
            name: name.into(),
            is_dir: false,
            size,
            mtime: FileTime(secs * SEC),
            attributes: 0x20,
            created: None,
        }
    }
    fn d(name: &str) -> Entry {
        Entry {
            name: name.into(),
            is_dir: true,
            size: 0,
            mtime: FileTime(0),
            attributes: 0x10,
            created: None,
        }
    }
    fn glob(p: &[&str]) -> Option<GlobSet> {
        let mut b = globset::GlobSetBuilder::new();
        for p in p {
            b.add(globset::Glob::new(p).unwrap());
        }
        Some(b.build().unwrap())
    }

    #[test]
    fn classes() {
        let s = f("a", 10, 100);
        assert_eq!(classify(&s, None, false), Class::New);
        assert_eq!(classify(&s, Some(&f("a", 10, 100)), false), Class::Same);
        assert_eq!(classify(&s, Some(&f("a", 11, 100)), false), Class::Changed);
        assert_eq!(classify(&s, Some(&f("a", 0, 100)), false), Class::Changed);
        assert_eq!(classify(&s, Some(&f("a", 10, 99)), false), Class::Newer);
        assert_eq!(classify(&s, Some(&f("a", 10, 101)), false), Class::Older);
        assert_eq!(classify(&s, Some(&d("a")), false), Class::Mismatch);
        // --fft: two seconds of slack, but a size mismatch is never Same.
        assert_eq!(classify(&s, Some(&f("a", 10, 102)), true), Class::Same);
        assert_eq!(classify(&s, Some(&f("a", 10, 103)), true), Class::Older);
        assert_eq!(classify(&s, Some(&f("a", 0, 101)), true), Class::Changed);
    }

    #[test]
    fn selection() {
        let def = Selection::default();
        assert!(def.copies(Class::New) && def.copies(Class::Newer) && def.copies(Class::Older));
        assert!(
            def.copies(Class::Changed) && !def.copies(Class::Same) && !def.copies(Class::Extra)
        );
        let s = Selection {
            exclude_older: true,
            exclude_newer: true,
            exclude_changed: true,
            include_same: true,
            ..def
        };
        assert!(!s.copies(Class::Older) && !s.copies(Class::Newer) && !s.copies(Class::Changed));
        assert!(s.copies(Class::Same) && s.copies(Class::New));
    }

    #[test]
    fn delete_excluded_makes_excluded_destination_entries_extras() {
        let filter = Filter {
            exclude_files: glob(&["*.tmp"]),
            exclude_dirs: glob(&["cache"]),
            ..Filter::default()
        };
        let src = vec![f("a.tmp", 1, 5), f("k.txt", 1, 5), d("cache")];
        let dst = vec![
            f("a.tmp", 1, 5),
            f("b.tmp", 1, 5),
            f("k.txt", 1, 5),
            d("cache"),
        ];
        let extras = |filter: &Filter| {
            let p = plan_dir(
                "",
                1,
                src.clone(),
                dst.clone(),
                filter,
                &Selection::default(),
                true,
            );
            let mut v: Vec<String> = p.extras.into_iter().map(|e| e.name).collect();
            v.sort();
            v
        };
        assert!(extras(&filter).is_empty(), "excluded entries are protected");
        let all = Filter {
            delete_excluded: true,
            ..filter
        };
        assert_eq!(extras(&all), ["a.tmp", "b.tmp", "cache"]);
    }

    #[test]
    fn diff_of_a_directory() {
        let src = vec![
            f("b", 1, 5),
            f("a", 1, 5),
            d("sub"),
            d("newdir"),
            f("m", 1, 1),
        ];
        let dst = vec![f("a", 1, 5), f("c", 3, 5), d("sub"), d("gone"), d("m")];
        let p = plan_dir(
            "",
            1,
            src,
            dst,
            &Filter::default(),
            &Selection::default(),
            true,
        );
        let classes: Vec<_> = p
            .files
            .iter()
            .map(|i| (i.src.name.as_str(), i.class, i.copy))
            .collect();
        assert_eq!(
            classes,
            [("a", Class::Same, false), ("b", Class::New, true)]
        );
        let subs: Vec<_> = p
            .subdirs
            .iter()
            .map(|s| (s.src.name.as_str(), s.dst_exists))
            .collect();
        assert_eq!(subs, [("newdir", false), ("sub", true)]);
        let extras: Vec<_> = p.extras.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(extras, ["c", "gone"]);
        assert_eq!(p.mismatches.len(), 1);
    }

    #[test]
    fn no_subdirs_means_no_descent_and_no_extra_dirs() {
        let p = plan_dir(
            "",
            1,
            vec![d("s")],
            vec![d("x")],
            &Filter::default(),
            &Selection::default(),
            false,
        );
        assert!(p.subdirs.is_empty() && p.extras.is_empty());
    }

    #[test]
    fn filters() {
        let filter = Filter {
            include: glob(&["*.txt", "*.bin"]),
            exclude_files: glob(&["skip*"]),
            exclude_dirs: glob(&["tmp", "a/deep"]),
            max_size: Some(100),
            min_size: Some(2),
            max_level: Some(2),
            ..Filter::default()
        };
        let src = vec![
            f("x.txt", 10, 1),
            f("x.doc", 10, 1),
            f("skip.txt", 10, 1),
            f("big.bin", 101, 1),
            f("tiny.bin", 1, 1),
            d("tmp"),
            d("deep"),
            d("ok"),
        ];
        let dst = vec![
            f("skip.txt", 1, 1),
            f("other.doc", 1, 1),
            f("old.txt", 1, 1),
            d("tmp"),
        ];
        let p = plan_dir("a", 1, src, dst, &filter, &Selection::default(), true);
        assert_eq!(
            p.files
                .iter()
                .map(|i| i.src.name.as_str())
                .collect::<Vec<_>>(),
            ["x.txt"]
        );
        let mut excluded: Vec<_> = p.excluded_files.iter().map(|e| e.name.as_str()).collect();
        excluded.sort_unstable();
        assert_eq!(excluded, ["big.bin", "skip.txt", "tiny.bin"]);
        assert_eq!(
            p.subdirs
                .iter()
                .map(|s| s.src.name.as_str())
                .collect::<Vec<_>>(),
            ["ok"]
        );
        assert_eq!(p.excluded_dirs, 2);
        // Excluded and non-matching names are protected from deletion.
        assert_eq!(
            p.extras.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
            ["old.txt"]
        );
        // Level 2 may not descend further.
        let p = plan_dir(
            "ok",
            2,
            vec![d("z")],
            vec![],
            &filter,
            &Selection::default(),
            true,
        );
        assert_eq!(p.excluded_dirs, 0);
        assert!(p.subdirs.is_empty());
    }

    #[test]
    fn ages() {
        use std::time::{Duration, UNIX_EPOCH};
        let epoch = UNIX_EPOCH - Duration::from_secs(11_644_473_600);
        let filter = Filter {
            oldest: Some(epoch + Duration::from_secs(10)),
            newest: Some(epoch + Duration::from_secs(20)),
            ..Filter::default()
        };
        assert!(filter.file_excluded("a", &f("a", 1, 5)));
        assert!(!filter.file_excluded("a", &f("a", 1, 15)));
        assert!(filter.file_excluded("a", &f("a", 1, 25)));
    }

    #[test]
    fn merge_keys_are_computed_once_and_only_folded_when_needed() {
        let names = ["b", "A", "a", "Ä", "c", "straße"];
        let v = keyed(names.iter().map(|n| f(n, 1, 1)).collect(), true);
        let keys: Vec<&str> = v.iter().map(Keyed::key).collect();
        // Stable: "A" and "a" keep their listing order.
        assert_eq!(keys, ["a", "a", "b", "c", "straße", "ä"]);
        let order: Vec<&str> = v.iter().map(|k| k.entry.name.as_str()).collect();
        assert_eq!(order, ["A", "a", "b", "c", "straße", "Ä"]);
        let folded: Vec<bool> = v.iter().map(|k| k.folded.is_some()).collect();
        assert_eq!(folded, [true, false, false, false, false, true]);
        // Case-sensitive: never folded, byte order.
        let v = keyed(names.iter().map(|n| f(n, 1, 1)).collect(), false);
        assert!(v.iter().all(|k| k.folded.is_none()));
        let order: Vec<&str> = v.iter().map(Keyed::key).collect();
        assert_eq!(order, ["A", "a", "b", "c", "straße", "Ä"]);
    }

    #[test]
    fn case_insensitive_destinations_match_names() {
        let src = vec![f("File.TXT", 1, 5), f("b", 1, 5)];
        let dst = vec![f("file.txt", 1, 5), f("B", 1, 5), f("c", 1, 5)];
        let ci = Selection {
            case_insensitive: true,
            ..Selection::default()
        };
        let p = plan_dir(
            "",
            1,
            src.clone(),
            dst.clone(),
            &Filter::default(),
            &ci,
            true,
        );
        assert!(p.files.iter().all(|i| i.class == Class::Same), "{p:?}");
        assert_eq!(
            p.extras.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
            ["c"]
        );
        let p = plan_dir(
            "",
            1,
            src,
            dst,
            &Filter::default(),
            &Selection::default(),
            true,
        );
        assert!(p.files.iter().all(|i| i.class == Class::New), "{p:?}");
        assert_eq!(p.extras.len(), 3);
    }

    #[test]
    fn names_that_differ_only_in_case_collide_on_a_case_insensitive_destination() {
        let ci = Selection {
            case_insensitive: true,
            ..Selection::default()
        };
        let src = vec![
            f("Report.txt", 1, 5),
            f("report.TXT", 2, 5),
            f("other", 1, 5),
            d("Dir"),
            f("dir", 3, 5),
            f("skip.LOG", 1, 5),
            f("skip.log", 1, 5),
        ];
        // The destination's entry of a colliding name is neither overwritten
        // nor an extra.
        let dst = vec![f("REPORT.TXT", 9, 1)];
        let filter = Filter {
            exclude_files: glob(&["skip.LOG"]),
            ..Filter::default()
        };
        let p = plan_dir("", 1, src.clone(), dst.clone(), &filter, &ci, true);
        let mut names: Vec<(&str, Vec<String>)> = p
            .collisions
            .iter()
            .map(|c| (c.src.name.as_str(), c.with.clone()))
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                ("Dir", vec!["dir".to_string()]),
                ("Report.txt", vec!["report.TXT".to_string()]),
                ("dir", vec!["Dir".to_string()]),
                ("report.TXT", vec!["Report.txt".to_string()]),
            ]
        );
        // An excluded name takes no part: skip.log alone is copied.
        let files: Vec<&str> = p.files.iter().map(|i| i.src.name.as_str()).collect();
        assert_eq!(files, ["other", "skip.log"]);
        assert!(p.subdirs.is_empty() && p.extras.is_empty(), "{p:?}");
        // Without --subdirs the directory is not copied, so `dir` is alone.
        let p = plan_dir("", 1, src.clone(), dst.clone(), &filter, &ci, false);
        assert!(p
            .collisions
            .iter()
            .all(|c| c.src.name.starts_with(['R', 'r'])));
        assert!(p.files.iter().any(|i| i.src.name == "dir"));
        // A case-sensitive destination holds them all.
        let p = plan_dir("", 1, src, dst, &filter, &Selection::default(), true);
        assert!(p.collisions.is_empty());
    }

    #[test]
    fn exclude_extra_hides_extras() {
        let sel = Selection {
            exclude_extra: true,
            ..Selection::default()
        };
        let p = plan_dir(
            "",
            1,
            vec![],
            vec![f("x", 1, 1), d("y")],
            &Filter::default(),
            &sel,
            true,
        );
        assert!(p.extras.is_empty());
    }

    fn link(name: &str) -> Entry {
        Entry {
            attributes: crate::backend::local::ATTR_REPARSE_POINT,
            ..f(name, 0, 1)
        }
    }

    #[test]
    fn symlinks_are_never_walked_replaced_or_purged_through() {
        let local = Selection {
            src_links: true,
            dst_links: true,
            ..Selection::default()
        };
        let src = vec![link("slink"), d("sub"), f("file", 1, 5), link("skip.tmp")];
        let dst = vec![
            d("slink"),
            link("sub"),
            link("file"),
            link("extra"),
            f("skip.tmp", 1, 1),
        ];
        let filter = Filter {
            exclude_files: glob(&["*.tmp"]),
            ..Filter::default()
        };
        let p = plan_dir("", 1, src, dst, &filter, &local, true);
        let names = |v: &[Entry]| v.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
        // The source link is skipped, and its destination namesake is no extra.
        assert_eq!(names(&p.links), ["slink"]);
        // Nothing goes into or over a destination link...
        assert_eq!(names(&p.blocked), ["file", "sub"]);
        assert!(p.files.is_empty() && p.subdirs.is_empty(), "{p:?}");
        // ...and a destination-only link is an extra *file* (unlinked, not purged into).
        assert_eq!(names(&p.extras), ["extra"]);
        assert!(!p.extras[0].is_dir);
        // An excluded name is neither reported nor an extra.
        assert!(p.mismatches.is_empty());
        // An SMB side's entries are never taken for links, whatever their bits.
        let p = plan_dir(
            "",
            1,
            vec![link("x")],
            vec![link("y")],
            &Filter::default(),
            &Selection::default(),
            true,
        );
        assert!(p.links.is_empty() && p.blocked.is_empty());
        assert_eq!(p.files.len(), 1);
    }
}
