//! The TAILDIR source (Flume's TaildirSource): follows the files whose names match a file group's
//! pattern, turns every complete line into an event, and records in the position file how far
//! each file has been committed to the channel.
//!
//! Files are known by device and inode, not by name ([`tail`]), so:
//! - a file renamed to a name that still matches keeps its position (Flume reads it again from
//!   the start, sending it twice);
//! - a file renamed to a name that matches no group, or deleted, is read to its end through the
//!   handle already open, so lines its writer added after the rename are not lost; it is
//!   forgotten once it has been read to its end and unchanged for `idleTimeout`. After a restart
//!   such a file is found again by its inode in its directory;
//! - a file shorter than what was read, or whose bytes before the position changed, was
//!   truncated (copytruncate): it is read again from the start.
//!
//! The source polls: every `pollDelay` it lists each group's directory and looks at the files'
//! sizes, and a file with data is read without pause until it has none. Polling rather than
//! inotify (the `notify` crate) because the listing and the inode and truncation checks are
//! needed anyway (events are only hints, lost on overflow, absent on network filesystems and
//! limited per user), one thread looking at the directory at one moment keeps the rename and
//! truncation cases simple, and half a second of latency is what Flume users have.
//!
//! A batch's position advances only after the channel committed the batch; a refused batch is
//! read again and retried with backoff, never skipped. Positions are written every
//! `writePosInterval` (the first time right after the first committed batch) and at stop, so
//! after a crash the lines committed since the last write are sent again (at least once);
//! `writePosInterval = 0` writes after every batch, so at most the batch in flight is.

mod position;
mod tail;

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;

use self::position::{Loaded, Position};
use self::tail::{FileKey, Line, Tail};
use super::{ChannelProcessor, Source, SourceCounters, StopFlag, durable, stopping};
use crate::channel::ChannelError;
use crate::config::{BYTE_OFFSET_HEADER, TaildirConfig};
use crate::event::Event;
use crate::stop::sleep_unless_stopped;

/// Backoff between attempts to put a refused batch (Flume: 1 s doubling to 5 s; the channel's
/// own keep-alive wait comes on top).
const RETRY_START: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

pub struct TaildirSource {
    name: String,
    config: TaildirConfig,
    tailer: Option<Tailer>,
}

impl TaildirSource {
    pub fn new(name: &str, config: TaildirConfig) -> TaildirSource {
        TaildirSource {
            name: name.to_owned(),
            config,
            tailer: None,
        }
    }
}

impl Source for TaildirSource {
    fn start(&mut self) -> anyhow::Result<()> {
        let pf = &self.config.position_file;
        if let Some(dir) = pf.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| {
                format!(
                    "source {}: cannot create the directory of positionFile {}",
                    self.name,
                    pf.display()
                )
            })?;
        }
        let restored = load_positions(&self.name, &self.config)?;
        for g in &self.config.groups {
            if !g.dir.is_dir() {
                tracing::warn!(source = %self.name, "directory {} of filegroups.{} does not exist (yet); it is looked for again at every poll", g.dir.display(), g.name);
            }
        }
        tracing::info!(
            source = %self.name,
            groups = self.config.groups.len(),
            position_file = %pf.display(),
            "TAILDIR source ready"
        );
        self.tailer = Some(Tailer::new(&self.name, self.config.clone(), restored));
        Ok(())
    }

    fn run(self: Box<Self>, processor: ChannelProcessor, stop: StopFlag) {
        let Some(mut tailer) = self.tailer else {
            tracing::error!(source = %self.name, "TAILDIR source run before start");
            return;
        };
        tailer.counters = processor.shared_counters();
        tailer.run(&processor, &stop);
    }
}

/// Reads the position file, reporting anything unusable in it. A corrupt file is moved aside
/// (kept for inspection, not overwritten) and the source starts as if there were none.
fn load_positions(name: &str, config: &TaildirConfig) -> anyhow::Result<Vec<Position>> {
    let path = &config.position_file;
    let start = if config.skip_to_end {
        "files found now are read from their end (skipToEnd)"
    } else {
        "files are read from their start"
    };
    let loaded = position::load(path)
        .with_context(|| format!("source {name}: cannot read positionFile {}", path.display()))?;
    Ok(match loaded {
        Loaded::Missing => {
            tracing::info!(
                source = name,
                "no position file {} yet: {start}",
                path.display()
            );
            Vec::new()
        }
        Loaded::Read { positions, skipped } => {
            for why in skipped {
                tracing::warn!(
                    source = name,
                    "position file {}: {why}; that file is read as if it had no position",
                    path.display()
                );
            }
            positions
        }
        Loaded::Corrupt(why) => {
            let kept = durable::set_aside(path);
            tracing::warn!(
                source = name,
                "position file {} is unusable: {why}; starting as if there were none: {start}; {kept}",
                path.display()
            );
            Vec::new()
        }
    })
}

/// A file listed under a matching name.
struct Found {
    key: FileKey,
    path: PathBuf,
    len: u64,
    mtime: Option<SystemTime>,
    group: usize,
}

/// What became of a batch handed to the channel.
enum Delivery {
    Committed,
    /// The stop flag was set before the channel took it.
    Stopped,
    /// The channel's transactionCapacity is this, smaller than the batch.
    TooLarge(usize),
}

/// The source's state, owned by its one thread.
struct Tailer {
    name: String,
    config: TaildirConfig,
    files: HashMap<FileKey, Tail>,
    /// Positions from the position file whose file is not open yet.
    restored: Vec<Position>,
    first_scan: bool,
    /// `batchSize`, lowered to the channel's transactionCapacity if that is smaller.
    batch_size: usize,
    /// Files in reading order: those no longer matched first (older data), then by age.
    order: Vec<FileKey>,
    /// Positions changed since the position file was written.
    dirty: bool,
    /// A file followed since the position file was written, which it does not name yet.
    unrecorded: bool,
    /// When the position file was last written; `None` before the first write of this run,
    /// which follows the first committed batch at once.
    last_write: Option<Instant>,
    write_failing: bool,
    last_scan: Option<Instant>,
    /// Directories and files a warning was logged for, so a lasting problem is logged once
    /// rather than at every poll.
    warned: HashSet<PathBuf>,
    /// The source's counters, for the failures found away from a put (the position file).
    counters: Arc<SourceCounters>,
}

impl Tailer {
    fn new(name: &str, config: TaildirConfig, restored: Vec<Position>) -> Tailer {
        Tailer {
            name: name.to_owned(),
            batch_size: config.batch_size,
            config,
            files: HashMap::new(),
            restored,
            first_scan: true,
            order: Vec::new(),
            dirty: false,
            unrecorded: false,
            last_write: None,
            write_failing: false,
            last_scan: None,
            warned: HashSet::new(),
            counters: Arc::default(),
        }
    }

    fn run(&mut self, processor: &ChannelProcessor, stop: &StopFlag) {
        while !stopping(stop) {
            if self
                .last_scan
                .is_none_or(|t| t.elapsed() >= self.config.poll_delay)
            {
                self.scan();
                self.record_new_files();
            }
            let Some(progressed) = self.read_all(processor, stop) else {
                break;
            };
            if !self.retire_idle(processor, stop) {
                break;
            }
            self.maybe_write_positions();
            if !progressed {
                sleep_unless_stopped(self.config.poll_delay, stop);
            }
        }
        if self.dirty {
            self.write_positions();
        }
        tracing::info!(source = %self.name, files = self.files.len(), "TAILDIR source stopped");
    }

    fn warn_once(&mut self, path: &Path, message: String) {
        if self.warned.insert(path.to_owned()) {
            tracing::warn!(source = %self.name, "{message}");
        }
    }

    /// Every regular file under a matching name, each once (the first group that matches it).
    fn list(&mut self) -> Vec<Found> {
        let mut out = Vec::new();
        let mut keys = HashSet::new();
        let own = [
            self.config.position_file.clone(),
            position::temp_path(&self.config.position_file),
        ];
        for gi in 0..self.config.groups.len() {
            let dir = self.config.groups[gi].dir.clone();
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => {
                    self.warned.remove(&dir);
                    e
                }
                Err(e) => {
                    let g = &self.config.groups[gi].name;
                    self.warn_once(
                        &dir,
                        format!(
                            "cannot list directory {} of filegroups.{g}: {e}; trying again at every poll",
                            dir.display()
                        ),
                    );
                    continue;
                }
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if !self.config.groups[gi].matches(name) {
                    continue;
                }
                let path = entry.path();
                if own.contains(&path) {
                    continue;
                }
                // Follows symbolic links, as Flume does; a file gone since the listing is skipped.
                let Ok(meta) = std::fs::metadata(&path) else {
                    continue;
                };
                let key = (meta.dev(), meta.ino());
                if meta.is_file() && keys.insert(key) {
                    out.push(Found {
                        key,
                        path,
                        len: meta.len(),
                        mtime: meta.modified().ok(),
                        group: gi,
                    });
                }
            }
        }
        out
    }

    /// Lists the directories and brings every followed file up to date: new files, renames,
    /// truncation, files that no longer match.
    fn scan(&mut self) {
        self.last_scan = Some(Instant::now());
        let found = self.list();
        let present: HashSet<FileKey> = found.iter().map(|f| f.key).collect();
        for f in &found {
            if self.files.contains_key(&f.key) {
                self.update_matched(f);
            } else {
                self.add(f);
            }
        }
        let gone: Vec<FileKey> = self
            .files
            .keys()
            .filter(|k| !present.contains(k))
            .copied()
            .collect();
        for key in gone {
            self.update_unmatched(key);
        }
        if self.first_scan {
            self.first_scan = false;
            self.resolve_restored(&present);
        } else {
            let before = self.restored.len();
            self.restored
                .retain(|p| present.iter().any(|k| k.1 == p.inode));
            self.dirty |= self.restored.len() != before;
        }
        let mut order: Vec<&Tail> = self.files.values().collect();
        order.sort_by(|a, b| {
            (a.matched, a.seen().1, &a.path).cmp(&(b.matched, b.seen().1, &b.path))
        });
        self.order = order.iter().map(|t| t.key).collect();
    }

    /// A file listed under a matching name that was not followed yet.
    fn add(&mut self, f: &Found) {
        let restored = self
            .restored
            .iter()
            .position(|p| p.inode == f.key.1)
            .map(|i| self.restored.remove(i));
        let pos = match &restored {
            Some(p) => p.pos,
            None if self.first_scan && self.config.skip_to_end => f.len,
            None => 0,
        };
        let mut tail = match Tail::open(&f.path, f.key, f.group, pos) {
            Ok(Some(t)) => t,
            // Replaced between the listing and the open: the next scan sees the new file.
            Ok(None) => {
                self.restored.extend(restored);
                return;
            }
            // Renamed or deleted since the listing: the next scan sees where it went.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.restored.extend(restored);
                return;
            }
            Err(e) => {
                self.restored.extend(restored);
                self.warn_once(
                    &f.path,
                    format!(
                        "cannot open {}: {e}; trying again at every poll",
                        f.path.display()
                    ),
                );
                return;
            }
        };
        self.warned.remove(&f.path);
        match &restored {
            Some(p) => self.check_restored(&mut tail, p, f.len),
            None => {
                tracing::info!(source = %self.name, file = %f.path.display(), inode = f.key.1, pos, "following new file");
                self.unrecorded = true;
            }
        }
        self.dirty = true;
        self.files.insert(f.key, tail);
    }

    /// A position read from the position file is used only if it fits the file as it is now.
    fn check_restored(&self, tail: &mut Tail, p: &Position, len: u64) {
        let pf = self.config.position_file.display();
        let (file, inode, pos) = (tail.path.display(), p.inode, p.pos);
        if pos > len {
            tracing::warn!(source = %self.name, "position file {pf}: {file} (inode {inode}) is recorded at byte {pos}, past its end ({len} bytes): it was truncated while the agent was stopped, or lost an end its writer had not synced in a power cut; reading it from the start");
            tail.restart();
        } else if !tail.pos_follows_line_end() {
            tracing::warn!(source = %self.name, "position file {pf}: byte {pos} of {file} (inode {inode}) does not follow a line end: the file was rewritten while the agent was stopped, or lost an end its writer had not synced in a power cut and was written to again; reading it from the start");
            tail.restart();
        } else if p.file != tail.path {
            tracing::info!(source = %self.name, "position file {pf}: {} (inode {inode}) is now {file}: resuming at byte {pos}", p.file.display());
        } else {
            tracing::info!(source = %self.name, file = %file, inode, pos, "resuming");
        }
    }

    fn update_matched(&mut self, f: &Found) {
        let Some(t) = self.files.get_mut(&f.key) else {
            return;
        };
        if t.path != f.path {
            tracing::info!(source = %self.name, from = %t.path.display(), to = %f.path.display(), inode = f.key.1, pos = t.pos, "file renamed; still followed");
            t.path = f.path.clone();
            self.dirty = true;
        }
        t.matched = true;
        t.group = f.group;
        self.dirty |= look(&self.name, t, f.len, f.mtime);
    }

    /// A followed file not listed under a matching name any more: renamed away or deleted.
    fn update_unmatched(&mut self, key: FileKey) {
        let name = self.name.clone();
        let Some(t) = self.files.get_mut(&key) else {
            return;
        };
        if t.matched {
            t.matched = false;
            self.dirty = true;
            let old = t.path.clone();
            match locate(&old, key) {
                Some(new) => {
                    tracing::info!(source = %name, "{} (inode {}) was renamed to {}, which no file group matches: reading it to its end, then forgetting it", old.display(), key.1, new.display());
                    t.path = new;
                }
                None if t.is_open() => {
                    tracing::info!(source = %name, "{} (inode {}) was deleted or moved out of its directory: reading what is left of it through the open handle", old.display(), key.1);
                }
                None => {
                    tracing::info!(source = %name, file = %old.display(), inode = key.1, pos = t.pos, "file deleted; forgotten");
                    self.files.remove(&key);
                    return;
                }
            }
            if !t.is_open() && !matches!(t.reopen(), Ok(true)) {
                tracing::info!(source = %name, file = %t.path.display(), inode = key.1, pos = t.pos, "file no longer matches and cannot be reopened; forgotten");
                self.files.remove(&key);
                return;
            }
        }
        match t.stat_handle() {
            Some(Ok((len, mtime))) => self.dirty |= look(&name, t, len, mtime),
            Some(Err(e)) => {
                tracing::warn!(source = %name, file = %t.path.display(), error = %e, "cannot stat open file")
            }
            None => {}
        }
    }

    /// Position file entries whose inode was not listed under a matching name at the first
    /// scan: the file may have been renamed away while the agent was stopped, with lines left
    /// to read. It is looked for by inode in its old directory.
    fn resolve_restored(&mut self, present: &HashSet<FileKey>) {
        let pf = self.config.position_file.clone();
        for p in std::mem::take(&mut self.restored) {
            if present.iter().any(|k| k.1 == p.inode) {
                // Listed but not openable yet: kept for the next scans.
                self.restored.push(p);
                continue;
            }
            let found = p.file.parent().and_then(|dir| locate_inode(dir, p.inode));
            let opened = found.and_then(|(path, key, len)| {
                Tail::open(&path, key, 0, p.pos)
                    .ok()
                    .flatten()
                    .map(|t| (t, len))
            });
            match opened {
                Some((mut t, len)) => {
                    t.matched = false;
                    tracing::info!(source = %self.name, "position file {}: {} (inode {}) is now {}, which no file group matches: reading it from byte {} to its end", pf.display(), p.file.display(), p.inode, t.path.display(), p.pos);
                    self.check_restored(&mut t, &p, len);
                    self.files.insert(t.key, t);
                }
                None => {
                    tracing::info!(source = %self.name, "position file {}: {} (inode {}, byte {}) no longer exists; entry dropped", pf.display(), p.file.display(), p.inode, p.pos);
                }
            }
            self.dirty = true;
        }
    }

    /// Reads and commits batches from every open file. `Some(anything committed)`, or `None`
    /// when the stop flag cut it short.
    fn read_all(&mut self, processor: &ChannelProcessor, stop: &StopFlag) -> Option<bool> {
        let mut progressed = false;
        for key in self.order.clone() {
            let mut batches = 0u64;
            while batches < self.config.max_batch_count {
                if stopping(stop) {
                    return None;
                }
                let Some(t) = self.files.get(&key) else { break };
                if !t.is_open() {
                    break;
                }
                let batch = match t.read_batch(self.batch_size) {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!(source = %self.name, file = %t.path.display(), inode = key.1, pos = t.pos, error = %e, "cannot read file; closed, reopened at the next poll");
                        processor
                            .counters()
                            .read_fail
                            .fetch_add(1, Ordering::Relaxed);
                        if let Some(t) = self.files.get_mut(&key) {
                            t.close();
                        }
                        break;
                    }
                };
                if batch.lines.is_empty() {
                    if let Some(t) = self.files.get_mut(&key) {
                        t.keep_unfinished(batch);
                    }
                    break;
                }
                let more = batch.lines.len() >= self.batch_size;
                let outcome = deliver(&self.name, processor, stop, || {
                    events(&self.config, t, &batch.lines)
                });
                match outcome {
                    Delivery::Committed => {}
                    Delivery::Stopped => return None,
                    Delivery::TooLarge(limit) => {
                        tracing::warn!(source = %self.name, "batchSize {} exceeds the channel's transactionCapacity {limit}: reading batches of {limit}", self.batch_size);
                        self.batch_size = limit.max(1);
                        continue;
                    }
                }
                if let Some(t) = self.files.get_mut(&key) {
                    t.commit(batch);
                }
                self.dirty = true;
                progressed = true;
                batches += 1;
                self.maybe_write_positions();
                if !more {
                    break;
                }
            }
        }
        Some(progressed)
    }

    /// Closes files unchanged for `idleTimeout`, and forgets those no longer matched once they
    /// are also read to their end. The unfinished last line of a file being forgotten will never
    /// be finished, so it is sent as it is. False when the stop flag cut it short.
    fn retire_idle(&mut self, processor: &ChannelProcessor, stop: &StopFlag) -> bool {
        let idle = self.config.idle_timeout;
        let due: Vec<FileKey> = self
            .files
            .values()
            .filter(|t| t.is_open() && t.last_change.elapsed() >= idle && t.read_to() >= t.seen().0)
            .map(|t| t.key)
            .collect();
        for key in due {
            let Some(t) = self.files.get(&key) else {
                continue;
            };
            if t.matched {
                tracing::info!(source = %self.name, file = %t.path.display(), inode = key.1, pos = t.pos, "closed idle file");
                if let Some(t) = self.files.get_mut(&key) {
                    t.close();
                }
                continue;
            }
            if !t.unfinished().is_empty() {
                let line = Line {
                    offset: t.pos,
                    body: t.unfinished().clone(),
                };
                tracing::warn!(source = %self.name, "{} (inode {}) ends with {} bytes and no newline, and is being forgotten: sending them as a last line", t.path.display(), key.1, line.body.len());
                let lines = [line];
                match deliver(&self.name, processor, stop, || {
                    events(&self.config, t, &lines)
                }) {
                    Delivery::Committed => {}
                    Delivery::Stopped => return false,
                    Delivery::TooLarge(_) => continue,
                }
            }
            if let Some(t) = self.files.remove(&key) {
                tracing::info!(source = %self.name, file = %t.path.display(), inode = key.1, pos = t.read_to(), "file no longer matches and was read to its end; forgotten");
            }
            self.dirty = true;
        }
        true
    }

    fn maybe_write_positions(&mut self) {
        // The first write does not wait for the interval: an agent that keeps dying sooner than
        // that after its start would otherwise read its files again from where they were at
        // its last write, every time (in the crash-loop audit, 43,738 lines sent 445,755 times
        // in 20 kills).
        let interval = self.config.write_pos_interval;
        if self.dirty && self.last_write.is_none_or(|at| at.elapsed() >= interval) {
            self.write_positions();
        }
    }

    /// Writes the position file at once if it does not name every followed file yet, without
    /// touching the `writePosInterval` clock. If a newly followed file is rotated to a name no
    /// group matches and the agent then dies, only its entry lets the restart find it by inode
    /// and read the rest: without one its unread lines were never read (audit 43 F1).
    fn record_new_files(&mut self) {
        if self.unrecorded {
            let last_write = self.last_write;
            self.write_positions();
            self.last_write = last_write;
        }
    }

    fn write_positions(&mut self) {
        self.last_write = Some(Instant::now());
        let mut entries: Vec<Position> = self
            .files
            .values()
            .map(|t| Position {
                inode: t.key.1,
                pos: t.pos,
                file: t.path.clone(),
            })
            .chain(self.restored.iter().cloned())
            .collect();
        entries.sort_by(|a, b| (&a.file, a.inode).cmp(&(&b.file, b.inode)));
        let path = &self.config.position_file;
        match position::store(path, &entries) {
            Ok(()) => {
                self.dirty = false;
                self.unrecorded = false;
                if self.write_failing {
                    self.write_failing = false;
                    tracing::info!(source = %self.name, "position file {} written again", path.display());
                }
            }
            Err(e) => {
                self.counters.generic_failure();
                if !self.write_failing {
                    tracing::error!(source = %self.name, "cannot write position file {}: {e}; retrying; a restart now would send again the lines read since it was last written", path.display());
                }
                self.write_failing = true;
            }
        }
    }
}

/// Records a look at a followed file (size and modification time) and acts on a change:
/// reopens a closed file, and starts a truncated one over. True if the position moved.
fn look(name: &str, t: &mut Tail, len: u64, mtime: Option<SystemTime>) -> bool {
    if !t.observe(len, mtime) {
        return false;
    }
    if !t.is_open() {
        match t.reopen() {
            Ok(true) => {}
            // Another file has its name now; the next scan sorts that out.
            Ok(false) => return false,
            Err(e) => {
                tracing::warn!(source = name, file = %t.path.display(), error = %e, "cannot reopen file; trying again at the next poll");
                return false;
            }
        }
    }
    let why = if len < t.pos {
        Some(format!(
            "it is {len} bytes long, shorter than the position {}",
            t.pos
        ))
    } else if len < t.read_to() {
        Some(format!(
            "it is {len} bytes long, shorter than the {} bytes already read",
            t.read_to()
        ))
    } else {
        match t.unchanged_before_pos() {
            Ok(true) => None,
            Ok(false) => Some(format!(
                "the bytes before position {} are not those read there",
                t.pos
            )),
            Err(e) => {
                tracing::warn!(source = name, file = %t.path.display(), error = %e, "cannot check file for truncation");
                None
            }
        }
    };
    let Some(why) = why else { return false };
    tracing::info!(
        source = name,
        "{} (inode {}) was truncated: {why}; reading it again from the start",
        t.path.display(),
        t.key.1
    );
    t.restart();
    true
}

/// Where the file `key`, last seen at `old`, is now in the same directory.
fn locate(old: &Path, key: FileKey) -> Option<PathBuf> {
    let (path, found, _) = locate_inode(old.parent()?, key.1)?;
    (found == key).then_some(path)
}

/// A regular file with inode `inode` in `dir`: its path, key and size. Every entry is
/// stat'ed (rather than trusting the directory entry's inode, which overlayfs may report
/// differently); this runs only when a followed file disappears from its name.
fn locate_inode(dir: &Path, inode: u64) -> Option<(PathBuf, FileKey, u64)> {
    std::fs::read_dir(dir).ok()?.flatten().find_map(|e| {
        let meta = std::fs::metadata(e.path()).ok()?;
        (meta.is_file() && meta.ino() == inode)
            .then(|| (e.path(), (meta.dev(), meta.ino()), meta.len()))
    })
}

/// The events for `lines` of `t`: the group's headers, then the file and offset headers.
fn events(config: &TaildirConfig, t: &Tail, lines: &[Line]) -> Vec<Event> {
    let group = &config.groups[t.group].headers;
    let path = config
        .file_header
        .as_ref()
        .map(|k| (k, t.path.to_string_lossy().into_owned()));
    lines
        .iter()
        .map(|l| {
            let mut e = Event::new(l.body.clone());
            if !group.is_empty() {
                e.headers = group.clone();
            }
            if let Some((k, v)) = &path {
                e.headers.insert((*k).clone(), v.clone());
            }
            if config.byte_offset_header {
                e.headers
                    .insert(BYTE_OFFSET_HEADER.to_owned(), l.offset.to_string());
            }
            e
        })
        .collect()
}

/// Puts a batch into the channel, retrying with backoff until it is committed or the source
/// stops. `make` builds the batch again for every attempt.
fn deliver(
    name: &str,
    processor: &ChannelProcessor,
    stop: &StopFlag,
    make: impl Fn() -> Vec<Event>,
) -> Delivery {
    let mut backoff = RETRY_START;
    let mut failures = 0u32;
    loop {
        match processor.process(make()) {
            Ok(()) => {
                if failures > 0 {
                    tracing::info!(
                        source = name,
                        attempts = failures + 1,
                        "channel accepted the batch"
                    );
                }
                return Delivery::Committed;
            }
            Err(ChannelError::TransactionTooLarge { limit, .. }) => {
                return Delivery::TooLarge(limit);
            }
            Err(e) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!(source = name, error = %e, "channel refused a batch; retrying it until it is accepted");
                } else {
                    tracing::debug!(source = name, error = %e, attempt = failures, "channel refused the batch again");
                }
                if stopping(stop) {
                    return Delivery::Stopped;
                }
                sleep_unless_stopped(backoff, stop);
                backoff = (backoff * 2).min(RETRY_MAX);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Arc;

    use super::*;
    use crate::channel::Channel;
    use crate::config::FileGroup;
    use crate::event::Headers;
    use crate::source::test_rig::{memory_channel, processor_for};

    struct Rig {
        dir: tempfile::TempDir,
        channel: Arc<dyn Channel>,
        processor: ChannelProcessor,
        stop: StopFlag,
    }

    fn rig(transaction_capacity: usize) -> Rig {
        let channel = memory_channel(100_000, transaction_capacity, Duration::from_millis(10));
        Rig {
            processor: processor_for(&channel),
            dir: tempfile::tempdir().unwrap(),
            channel,
            stop: crate::stop::Stop::new(),
        }
    }

    impl Rig {
        fn config(&self, pattern: &str) -> TaildirConfig {
            TaildirConfig {
                groups: vec![FileGroup {
                    name: "g".into(),
                    dir: self.dir.path().to_owned(),
                    pattern: regex::Regex::new(&format!("^(?:{pattern})$")).unwrap(),
                    headers: Headers::from([("group".to_owned(), "g".to_owned())]),
                }],
                position_file: self.dir.path().join("pos/positions.json"),
                batch_size: 10,
                skip_to_end: false,
                idle_timeout: Duration::from_secs(120),
                write_pos_interval: Duration::ZERO,
                file_header: Some("file".into()),
                byte_offset_header: true,
                max_batch_count: u64::MAX,
                poll_delay: Duration::from_millis(10),
            }
        }

        fn tailer(&self, config: TaildirConfig) -> Tailer {
            let mut source = TaildirSource::new("r1", config);
            source.start().unwrap();
            source.tailer.unwrap()
        }

        /// One poll: look at the directory, read everything, retire idle files.
        fn poll(&self, t: &mut Tailer) {
            t.scan();
            t.record_new_files();
            assert!(t.read_all(&self.processor, &self.stop).is_some());
            assert!(t.retire_idle(&self.processor, &self.stop));
            t.maybe_write_positions();
        }

        fn take_all(&self) -> Vec<Event> {
            let mut out = Vec::new();
            loop {
                let max = self.channel.transaction_capacity();
                let taken = self.channel.take(max, Duration::ZERO).unwrap();
                if taken.is_empty() {
                    return out;
                }
                out.extend(taken.events.iter().map(|(_, e)| e.clone()));
                self.channel.commit(taken).unwrap();
            }
        }

        fn bodies(&self) -> Vec<String> {
            self.take_all()
                .iter()
                .map(|e| String::from_utf8_lossy(&e.body).into_owned())
                .collect()
        }

        fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }
    }

    fn append(path: &Path, text: &str) {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }

    fn numbered(prefix: &str, range: std::ops::Range<u32>) -> String {
        range.map(|i| format!("{prefix}{i}\n")).collect()
    }

    fn want(prefix: &str, range: std::ops::Range<u32>) -> Vec<String> {
        range.map(|i| format!("{prefix}{i}")).collect()
    }

    /// The first committed batch after a start writes the position file at once, later ones
    /// wait for `writePosInterval`: an agent killed soon after each start still moves on.
    #[test]
    fn the_first_batch_after_a_start_writes_the_position_file_at_once() {
        let r = rig(100);
        append(&r.path("app.log"), &numbered("a", 0..5));
        let mut config = r.config(r"app\.log");
        config.write_pos_interval = Duration::from_secs(3600);
        let saved = |config: &TaildirConfig| match position::load(&config.position_file) {
            Ok(position::Loaded::Read { positions, .. }) => positions[0].pos,
            _ => panic!("no position file"),
        };
        let mut t = r.tailer(config.clone());
        r.poll(&mut t);
        assert_eq!(r.bodies(), want("a", 0..5));
        assert_eq!(saved(&config), 15);
        append(&r.path("app.log"), &numbered("b", 0..5));
        r.poll(&mut t);
        assert_eq!(r.bodies(), want("b", 0..5));
        assert_eq!(saved(&config), 15, "the interval has not passed");
        // A crash now: the restart sends the lines since the first write again, not the file.
        drop(t);
        let mut t = r.tailer(config);
        r.poll(&mut t);
        assert_eq!(r.bodies(), want("b", 0..5));
    }

    /// A newly followed file is named in the position file before it is read, whatever
    /// `writePosInterval`: rotated to a name no group matches and the agent then killed, it is
    /// found again by its inode and read to its end (audit 43 F1 lost its unread lines).
    #[test]
    fn a_new_file_rotated_away_before_a_crash_is_read_after_the_restart() {
        let r = rig(100);
        append(&r.path("app.log"), &numbered("a", 0..5));
        let mut config = r.config(r"app\.log");
        config.write_pos_interval = Duration::from_secs(3600);
        let mut t = r.tailer(config.clone());
        r.poll(&mut t);
        assert_eq!(r.bodies(), want("a", 0..5));
        std::fs::rename(r.path("app.log"), r.path("app.log.1")).unwrap();
        append(&r.path("app.log"), &numbered("b", 0..3));
        r.poll(&mut t);
        assert_eq!(r.bodies(), want("b", 0..3));
        // Rotated again, written to through the writer's old handle, and the agent dies before
        // it reads those lines.
        std::fs::rename(r.path("app.log"), r.path("app.log.2")).unwrap();
        append(&r.path("app.log.2"), &numbered("b", 3..6));
        drop(t);
        let mut t = r.tailer(config);
        r.poll(&mut t);
        assert_eq!(
            r.bodies(),
            want("b", 0..6),
            "read again from its recorded start"
        );
    }

    #[test]
    fn headers_batches_and_files_that_appear_later() {
        let r = rig(100);
        append(&r.path("app.log"), &numbered("a", 0..25));
        append(&r.path("other.txt"), "ignored\n");
        let mut t = r.tailer(r.config(r"app\.log.*"));
        r.poll(&mut t);
        let events = r.take_all();
        assert_eq!(events.len(), 25);
        let e = &events[3];
        assert_eq!(&e.body[..], b"a3");
        assert_eq!(e.headers["group"], "g");
        assert_eq!(e.headers["file"], r.path("app.log").to_string_lossy());
        assert_eq!(e.headers["byteoffset"], "9");
        append(&r.path("app.log.2"), "late\n");
        r.poll(&mut t);
        assert_eq!(r.bodies(), vec!["late"]);
    }

    #[test]
    fn renamed_away_file_is_read_to_its_end_including_later_writes() {
        let r = rig(100);
        let mut config = r.config(r"app\.log");
        config.idle_timeout = Duration::ZERO;
        let mut writer = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(r.path("app.log"))
            .unwrap();
        writer.write_all(numbered("x", 0..5).as_bytes()).unwrap();
        let mut t = r.tailer(config);
        r.poll(&mut t);
        assert_eq!(r.bodies(), want("x", 0..5));
        // Rotation: the writer keeps its handle a little while after the rename.
        std::fs::rename(r.path("app.log"), r.path("app.log.1")).unwrap();
        writer.write_all(numbered("x", 5..9).as_bytes()).unwrap();
        writer.write_all(b"unfinished").unwrap();
        append(&r.path("app.log"), &numbered("y", 0..3));
        r.poll(&mut t);
        let mut got = r.bodies();
        got.sort();
        let mut expected = [want("x", 5..9), want("y", 0..3), vec!["unfinished".into()]].concat();
        expected.sort();
        assert_eq!(got, expected);
        assert_eq!(t.files.len(), 1, "the rotated file is forgotten");
        let positions = std::fs::read_to_string(&t.config.position_file).unwrap();
        assert!(!positions.contains("app.log.1"), "{positions}");
    }

    #[test]
    fn truncation_and_rewrite_start_over() {
        let r = rig(100);
        let mut t = r.tailer(r.config(r"app\.log"));
        append(&r.path("app.log"), &numbered("a", 0..50));
        r.poll(&mut t);
        assert_eq!(r.bodies().len(), 50);
        // copytruncate, noticed while the file is still short.
        std::fs::write(r.path("app.log"), numbered("b", 0..3)).unwrap();
        r.poll(&mut t);
        assert_eq!(r.bodies(), want("b", 0..3));
        // Truncated and written past the old size before the next look.
        std::fs::write(r.path("app.log"), numbered("longer-c", 0..40)).unwrap();
        r.poll(&mut t);
        assert_eq!(r.bodies(), want("longer-c", 0..40));
    }

    #[test]
    fn restart_resumes_and_finds_a_file_renamed_meanwhile() {
        let r = rig(100);
        append(&r.path("app.log"), &numbered("a", 0..30));
        let mut t = r.tailer(r.config(r"app\.log"));
        r.poll(&mut t);
        assert_eq!(r.bodies().len(), 30);
        drop(t);
        // While stopped: more lines, then rotation to a name the group does not match.
        append(&r.path("app.log"), &numbered("a", 30..35));
        std::fs::rename(r.path("app.log"), r.path("app.log.1")).unwrap();
        append(&r.path("app.log"), &numbered("b", 0..2));
        let mut t = r.tailer(r.config(r"app\.log"));
        r.poll(&mut t);
        let mut got = r.bodies();
        got.sort();
        let mut expected = [want("a", 30..35), want("b", 0..2)].concat();
        expected.sort();
        assert_eq!(got, expected);
    }

    #[test]
    fn skip_to_end_applies_to_files_found_at_start_only() {
        let r = rig(100);
        append(&r.path("app.log"), "old\n");
        let mut config = r.config(r".*\.log");
        config.skip_to_end = true;
        let mut t = r.tailer(config);
        r.poll(&mut t);
        assert!(r.bodies().is_empty());
        append(&r.path("app.log"), "new\n");
        append(&r.path("later.log"), "later\n");
        r.poll(&mut t);
        let mut got = r.bodies();
        got.sort();
        assert_eq!(got, vec!["later", "new"]);
    }

    #[test]
    fn oversized_batches_shrink_to_the_transaction_capacity() {
        let r = rig(4);
        append(&r.path("app.log"), &numbered("a", 0..23));
        let mut t = r.tailer(r.config(r"app\.log"));
        r.poll(&mut t);
        assert_eq!(t.batch_size, 4);
        assert_eq!(r.bodies(), want("a", 0..23));
    }

    #[test]
    fn a_full_channel_delays_but_loses_and_repeats_nothing() {
        let r = rig(100);
        // Room for 15 events: the source must wait for the consumer below.
        let small = memory_channel(15, 10, Duration::from_millis(5));
        let processor = processor_for(&small);
        append(&r.path("app.log"), &numbered("a", 0..200));
        let mut t = r.tailer(r.config(r"app\.log"));
        let stop = r.stop.clone();
        let runner = std::thread::spawn(move || t.run(&processor, &stop));
        // Let the source fill the channel and be refused before anything is taken.
        let end = Instant::now() + Duration::from_secs(20);
        while small.counters().full.load(Ordering::Relaxed) == 0 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut got = Vec::new();
        while got.len() < 200 && Instant::now() < end {
            let taken = small.take(7, Duration::from_millis(50)).unwrap();
            got.extend(
                taken
                    .events
                    .iter()
                    .map(|(_, e)| String::from_utf8_lossy(&e.body).into_owned()),
            );
            small.commit(taken).unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
        r.stop.set();
        runner.join().unwrap();
        assert_eq!(got, want("a", 0..200));
        assert!(
            small.counters().full.load(Ordering::Relaxed) > 0,
            "the channel never filled"
        );
        let pos = std::fs::read_to_string(r.dir.path().join("pos/positions.json")).unwrap();
        let size = std::fs::metadata(r.path("app.log")).unwrap().len();
        assert!(pos.contains(&format!("\"pos\":{size}")), "{pos}");
    }
}
