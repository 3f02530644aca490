//! The mark a file_roll sink puts on the file it writes before each batch, and the repair at
//! start of a batch that a kill (or a crash) tore.
//!
//! A batch is one `write`, but a write of more than a page can be cut short by SIGKILL (the
//! kernel stops copying between pages when a fatal signal is pending), leaving part of a batch
//! whose take was never committed at the end of the file. With a durable channel the batch is
//! delivered again after the restart, so the part is garbage: a torn line, or a torn Avro block
//! that makes the rest of the file unreadable. Crash loops of 150 kills (2 MB batches) left 3, 5
//! and 1 such lines (`tests/file_roll_crash.rs`).
//!
//! Before each write the sink records, in an extended attribute of the file
//! (`user.weir.batch`, the text `START END`), the file's length before the batch and after it.
//! At start, a file of this sink's naming whose length lies strictly between the two was cut
//! short in that write, so it is cut back to `START`, and a file left empty is removed. After a
//! kill, or a power loss with `sink.fsync` on, the take of that batch was not committed (commit
//! follows the whole write, and its fdatasync), so nothing committed is cut. After a power loss
//! with `sink.fsync = false`, a batch that was committed but only partly written back is cut too:
//! a loss that setting accepts, which would otherwise leave a torn line. Any other length means
//! the write finished (its batch may come again: at least once) or never began, and the file is
//! left as it is. A stale mark is harmless: a file's length never falls below the end of a batch
//! that was written whole, so an older mark never lies strictly around the length. While a sink
//! writes a file it holds an `flock` on it, so a second agent writing into the same directory
//! never cuts a file that is being written.
//!
//! An attribute, not a record file beside the output: readers of the directory (another agent's
//! spooling directory, `avro-tools`, a script reading every file) see only the sink's files.
//! Where the filesystem has no user attributes (`ENOTSUP`, some network filesystems), or refuses
//! to set one for any other reason, marking is off for the rest of the run, as Flume has it, and
//! a note says so once; the sink goes on writing.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use rustix::fs::XattrFlags;
use rustix::io::Errno;

const ATTR: &str = "user.weir.batch";

/// Marks `file` as about to grow from `start` to `end` bytes. On an error the sink writes on
/// without marks (see [`why_unmarked`]): a filesystem that refuses attributes must not stop it.
pub fn mark(file: &File, start: u64, end: u64) -> Result<(), Errno> {
    let value = format!("{start} {end}");
    rustix::fs::fsetxattr(file, ATTR, value.as_bytes(), XattrFlags::empty())
}

/// Why batches cannot be marked after [`mark`] failed with `e`, for the log.
pub fn why_unmarked(e: Errno) -> String {
    if unsupported(e) {
        "the filesystem has no user extended attributes".to_owned()
    } else {
        format!("the extended attribute {ATTR} cannot be set ({e})")
    }
}

/// Removes the mark from `file` (at `path`), closed with its last batch committed.
pub fn unmark(file: &File, path: &Path) {
    match rustix::fs::fremovexattr(file, ATTR) {
        Ok(()) => {}
        Err(e) if e == Errno::NODATA || unsupported(e) => {}
        Err(e) => tracing::debug!(file = %path.display(), "cannot remove the batch mark: {e}"),
    }
}

fn unsupported(e: Errno) -> bool {
    e == Errno::NOTSUP || e == Errno::OPNOTSUPP || e == Errno::NOSYS
}

/// What [`repair`] did to one file.
#[derive(Debug, PartialEq, Eq)]
pub enum Repair {
    /// Cut back from `from` to `to` bytes.
    Cut { from: u64, to: u64 },
    /// Held nothing committed: removed.
    Removed { from: u64 },
}

impl std::fmt::Display for Repair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Repair::Cut { from, to } => write!(f, "cut from {from} back to {to} bytes"),
            Repair::Removed { from } => {
                write!(f, "removed ({from} bytes, all of them from the torn batch)")
            }
        }
    }
}

/// Looks at every file in `dir` whose name `is_ours`, and cuts off a batch torn while it was
/// written (see the module doc); `sync`: fdatasync the cut (the sink's `sink.fsync`). Returns
/// what it cut, by file name; a file it cannot read or repair is logged and left alone.
pub fn repair(dir: &Path, is_ours: impl Fn(&str) -> bool, sync: bool) -> Vec<(String, Repair)> {
    let mut repaired = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::warn!(
                directory = %dir.display(),
                "cannot list the directory to look for batches torn by a crash: {e}"
            );
            return repaired;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                tracing::warn!(directory = %dir.display(), "cannot list the directory: {e}");
                break;
            }
        };
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if !is_ours(&name) || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path();
        // Most files carry no mark: find out without opening them for writing.
        match rustix::fs::lgetxattr_query(&path, ATTR) {
            Ok(_) => {}
            Err(e) if e == Errno::NODATA || unsupported(e) => continue,
            Err(e) => {
                tracing::debug!(file = %path.display(), "cannot read the batch mark: {e}");
                continue;
            }
        }
        match repair_file(&path, sync) {
            Ok(Some(done)) => repaired.push((name, done)),
            Ok(None) => {}
            Err(e) => tracing::warn!(
                file = %path.display(),
                "cannot check the file for a batch torn by a crash: {e}"
            ),
        }
    }
    repaired
}

fn repair_file(path: &Path, sync: bool) -> std::io::Result<Option<Repair>> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    match file.try_lock() {
        Ok(()) => {}
        // Another sink is writing it.
        Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
        Err(std::fs::TryLockError::Error(e)) => return Err(e),
    }
    let mut value = [0u8; 64];
    let n = match rustix::fs::fgetxattr(&file, ATTR, &mut value) {
        Ok(n) => n,
        // Removed meanwhile.
        Err(Errno::NODATA) => return Ok(None),
        Err(Errno::RANGE) => value.len(),
        Err(e) => return Err(e.into()),
    };
    let Some((start, end)) = parse(&value[..n]) else {
        tracing::warn!(
            file = %path.display(),
            mark = %String::from_utf8_lossy(&value[..n]),
            "removing a batch mark ({ATTR}) that is not `START END`"
        );
        unmark(&file, path);
        return Ok(None);
    };
    let meta = file.metadata()?;
    let len = meta.len();
    if !(start < len && len < end) {
        // Nothing torn: the mark is spent.
        unmark(&file, path);
        return Ok(None);
    }
    if start == 0 {
        // Unlink only the file examined: the name is only what it was when listed, and only a
        // holder of the lock unlinks, so the same inode under the name means the same file.
        let named = std::fs::symlink_metadata(path)?;
        if (named.dev(), named.ino()) != (meta.dev(), meta.ino()) {
            return Ok(None);
        }
        std::fs::remove_file(path)?;
        if sync && let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        return Ok(Some(Repair::Removed { from: len }));
    }
    file.set_len(start)?;
    if sync {
        file.sync_data()?;
    }
    unmark(&file, path);
    Ok(Some(Repair::Cut {
        from: len,
        to: start,
    }))
}

fn parse(value: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(value).ok()?;
    let (start, end) = text.split_once(' ')?;
    let (start, end) = (start.parse().ok()?, end.parse().ok()?);
    (start <= end).then_some((start, end))
}
