//! Which files of the spool directory are to be read, and in which order: regular files (or
//! links to them) whose name is not hidden, does not end in `fileSuffix`, matches
//! `includePattern` and not `ignorePattern`, that are not recorded as skipped nor marked done in
//! the tracker directory; in subdirectories too with `recursiveDirectorySearch` (hidden ones and
//! links to directories, which could loop, are not entered), never in the tracker directory.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::state::{FileId, Skipped};
use crate::config::{ConsumeOrder, DeletePolicy, SpoolDirConfig, TrackingPolicy};

/// A file to read: where it is, and what it was when looked at.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub id: FileId,
    /// Its path below the spool directory (its name, unless `recursiveDirectorySearch`).
    pub rel: PathBuf,
}

/// What one look at the directory found.
#[derive(Debug, Default)]
pub struct Listing {
    /// The files to read, in reading order.
    pub files: Vec<Candidate>,
    /// The paths of the skipped files that are still there.
    pub skipped_present: HashSet<PathBuf>,
    /// Directories listed without error.
    pub listed: Vec<PathBuf>,
    /// Paths that could not be looked at, and why.
    pub problems: Vec<(PathBuf, String)>,
}

/// Lists `spool_dir` (absolute) as `config` says.
pub fn list(
    config: &SpoolDirConfig,
    spool_dir: &Path,
    tracker_dir: &Path,
    skipped: &[Skipped],
    rng: &mut fastrand::Rng,
) -> Listing {
    let mut out = Listing::default();
    let mut dirs = vec![(spool_dir.to_owned(), PathBuf::new())];
    while let Some((dir, rel_dir)) = dirs.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                let why = format!(
                    "cannot list {}: {e}; trying again at every poll",
                    dir.display()
                );
                out.problems.push((dir, why));
                continue;
            }
        };
        out.listed.push(dir);
        for entry in entries.flatten() {
            let path = entry.path();
            if path == tracker_dir {
                continue;
            }
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str() else {
                let why = format!("{} is not read: its name is not UTF-8", path.display());
                out.problems.push((path, why));
                continue;
            };
            // Follows symbolic links to files, as Flume does; a file gone since the listing is
            // passed over.
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                let link = entry.file_type().is_ok_and(|t| t.is_symlink());
                if config.recursive && !name.starts_with('.') && !link {
                    dirs.push((path, rel_dir.join(name)));
                }
                continue;
            }
            if !meta.is_file() || !config.wants(name) {
                continue;
            }
            let id = file_id(&path, &meta);
            if let Some(s) = skipped.iter().find(|s| s.is(&id)) {
                out.skipped_present.insert(s.file.clone());
                continue;
            }
            let rel = rel_dir.join(name);
            if config.delete_policy == DeletePolicy::Never
                && config.tracking_policy == TrackingPolicy::TrackerDir
            {
                let done = marker(config, tracker_dir, &rel);
                if let Ok(mark) = std::fs::metadata(&done) {
                    // Marked files stay where they are, so a file put in later under a name
                    // already marked done is passed over (as in Flume); say so, as the rename
                    // policy does when the name it would rename to exists.
                    if id.mtime > (mark.mtime(), mark.mtime_nsec()) {
                        let why = format!(
                            "{} was modified after {} marked it done: it is not read (a file \
                             name used twice?); delete the marker to have it read",
                            path.display(),
                            done.display()
                        );
                        out.problems.push((path, why));
                    }
                    continue;
                }
            }
            out.files.push(Candidate { id, rel });
        }
    }
    let files = &mut out.files;
    match config.consume_order {
        ConsumeOrder::Oldest => {
            files.sort_by(|a, b| (a.id.mtime, &a.rel).cmp(&(b.id.mtime, &b.rel)))
        }
        ConsumeOrder::Youngest => {
            files.sort_by(|a, b| b.id.mtime.cmp(&a.id.mtime).then_with(|| a.rel.cmp(&b.rel)))
        }
        ConsumeOrder::Random => rng.shuffle(files),
    }
    out
}

/// The tracker directory's mark that the file at `rel` is done (`trackingPolicy = tracker_dir`).
pub fn marker(config: &SpoolDirConfig, tracker_dir: &Path, rel: &Path) -> PathBuf {
    let mut name = rel.as_os_str().to_owned();
    name.push(&config.file_suffix);
    tracker_dir.join(name)
}

/// The identity of the file at `path` from its metadata.
pub fn file_id(path: &Path, meta: &std::fs::Metadata) -> FileId {
    FileId {
        file: path.to_owned(),
        dev: meta.dev(),
        inode: meta.ino(),
        size: meta.len(),
        mtime: (meta.mtime(), meta.mtime_nsec()),
        born: meta.created().ok().and_then(|t| {
            let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
            Some((
                i64::try_from(d.as_secs()).ok()?,
                i64::from(d.subsec_nanos()),
            ))
        }),
    }
}
