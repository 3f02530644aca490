//! The Spooling Directory source (Flume's SpoolDirectorySource): reads the finished files an
//! application drops into a directory ([`listing`] says which), one file at a time in
//! `consumeOrder`, cut into events by the configured [`deserializer`] (one per line, [`lines`];
//! chunks of bytes, [`blob`]; the records of an Avro container file, [`avro`]), and marks each
//! file done once all of its events are committed: renamed to `<name><fileSuffix>`, recorded in
//! the tracker directory, or deleted.
//!
//! Durability: a batch is one put transaction; only after the channel committed it does the
//! file's position advance (a byte offset; for AVRO a block's offset and how many of its records
//! were taken), and the position is then written to the state file ([`state`])
//! atomically and durably before the next batch is read. So a crash loses nothing committed and
//! repeats at most the batch whose commit had not reached the state file (and a refused batch is
//! retried with backoff, never skipped). A file is marked done only after its last batch is
//! committed, and the state forgets it only after the mark is durable.
//!
//! Files are assumed complete and immutable once in the directory (Flume's contract). A file
//! found changed (size or modification time) while it is read or between runs, or that cannot be
//! decoded (LINE under `decodeErrorPolicy = FAIL`; an AVRO file that is not a valid container),
//! is logged as an error naming it and left in place
//! unmarked; it is recorded in the state file so that it is not read again, and the source goes
//! on with the other files (Flume stops the source). A file that cannot be marked done for a
//! reason that may pass (disk or inodes full) is marked later instead (`Spooler::retire`). A
//! file found under the name of the file
//! being read but with another inode replaced it while the agent was stopped: it is a new file
//! and is read from its start.
//!
//! A source that takes a directory over from Flume (it has no state file yet) reads on the
//! file Flume was reading where Flume's position file leaves it ([`flume_meta`]), so the lines
//! Flume delivered are not sent again (under AVRO, only those before the block Flume was in).
//!
//! The directory is listed at most every `pollDelay` while files are waiting (Flume lists it for
//! every file), and every `pollDelay` while it is empty: polling, as TAILDIR does, rather than
//! inotify, which network filesystems lack and which loses events on overflow.

mod avro;
mod blob;
pub mod deserializer;
pub mod flume_meta;
mod lines;
mod listing;
mod state;

use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::Context;

/// Public for the `spool_files` fuzz target.
pub use self::avro::block_after_flume_mark;
use self::deserializer::{After, Deserializer, Piece, Position};
use self::listing::{Candidate, file_id};
use self::state::{Current, FileId, Loaded, STATE_FILE, Skipped, State};
use super::{ChannelProcessor, Source, SourceCounters, StopFlag, durable, stopping};
use crate::channel::ChannelError;
use crate::config::{DeletePolicy, SpoolDeserializer, SpoolDirConfig, TrackingPolicy};
use crate::event::Event;
use crate::stop::sleep_unless_stopped;

pub struct SpoolDirSource {
    name: String,
    config: SpoolDirConfig,
    spooler: Option<Spooler>,
}

impl SpoolDirSource {
    pub fn new(name: &str, config: SpoolDirConfig) -> SpoolDirSource {
        SpoolDirSource {
            name: name.to_owned(),
            config,
            spooler: None,
        }
    }
}

impl Source for SpoolDirSource {
    fn start(&mut self) -> anyhow::Result<()> {
        let name = &self.name;
        let spool_dir = std::path::absolute(&self.config.spool_dir).with_context(|| {
            format!(
                "source {name}: spoolDir {}: cannot make the path absolute",
                self.config.spool_dir.display()
            )
        })?;
        anyhow::ensure!(
            spool_dir.is_dir(),
            "{}: source {name}: spoolDir {} does not exist or is not a directory",
            self.config.spool_dir_at,
            spool_dir.display()
        );
        let tracker_dir = self.config.tracker_dir_in(&spool_dir);
        std::fs::create_dir_all(&tracker_dir).with_context(|| {
            format!(
                "source {name}: cannot create trackerDir {}",
                tracker_dir.display()
            )
        })?;
        let state_path = tracker_dir.join(STATE_FILE);
        let had_state = state_path.exists();
        let mut state = load_state(name, &state_path)?;
        let flume_meta = tracker_dir.join(state::FLUME_META_FILE);
        // Flume's position counts only before weir has a state of its own: after that it is
        // stale.
        if !had_state && flume_meta.exists() {
            match flume_position(&self.config, &spool_dir, &flume_meta) {
                Ok(Some(current)) => {
                    tracing::info!(source = %name, "{} was being read by Flume: it is read on from byte {}, where Flume's position file {} leaves it", current.id.file.display(), current.pos, flume_meta.display());
                    state.current = Some(current);
                }
                Ok(None) => {}
                Err(why) => {
                    tracing::warn!(source = %name, "Flume's position file {}: {why}; a file Flume was reading is read again from its start", flume_meta.display());
                }
            }
        }
        for s in &state.skipped {
            tracing::warn!(source = %name, "{} (inode {}) is not read: {}", s.file.display(), s.inode, s.reason);
        }
        tracing::info!(
            source = %name,
            spool_dir = %spool_dir.display(),
            state = %state_path.display(),
            "spooldir source ready"
        );
        self.spooler = Some(Spooler {
            name: name.clone(),
            batch_size: self.config.batch_size,
            config: self.config.clone(),
            spool_dir,
            tracker_dir,
            state_path,
            state,
            queue: VecDeque::new(),
            last_listing: None,
            state_failing: false,
            retire_failing: None,
            #[cfg(test)]
            fail_marks: 0,
            warned: HashSet::new(),
            rng: fastrand::Rng::new(),
            counters: Arc::default(),
        });
        Ok(())
    }

    fn run(self: Box<Self>, processor: ChannelProcessor, stop: StopFlag) {
        let Some(mut spooler) = self.spooler else {
            tracing::error!(source = %self.name, "spooldir source run before start");
            return;
        };
        spooler.counters = processor.shared_counters();
        spooler.run(&processor, &stop);
    }
}

/// Where Flume's position file `meta` leaves the file Flume was reading (`None`: that file is
/// gone, so there is nothing to resume), for a source with no state of its own yet.
fn flume_position(
    config: &SpoolDirConfig,
    spool_dir: &Path,
    meta: &Path,
) -> Result<Option<Current>, String> {
    let size = std::fs::metadata(meta).map_err(|e| e.to_string())?.len();
    if size > flume_meta::MAX_META_FILE {
        return Err(format!("{size} bytes is more than a position file holds"));
    }
    let bytes = std::fs::read(meta).map_err(|e| e.to_string())?;
    let flume = flume_meta::parse(&bytes)?;
    // Flume names the file from spoolDir as configured, which may be relative to its own
    // working directory.
    let target = Path::new(&flume.target);
    // Only a file the listing could give: no `..`, nothing hidden (the tracker directory).
    let rel = target
        .strip_prefix(&config.spool_dir)
        .or_else(|_| target.strip_prefix(spool_dir))
        .ok()
        .filter(|rel| {
            rel.components().all(|c| match c {
                std::path::Component::Normal(name) => !name.as_encoded_bytes().starts_with(b"."),
                _ => false,
            })
        })
        .ok_or_else(|| {
            format!(
                "it names {}, which is not a file to read in spoolDir",
                flume.target
            )
        })?;
    let path = spool_dir.join(rel);
    let file = match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => m,
        Ok(_) => return Err(format!("it names {}, which is not a file", path.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot look at {}: {e}", path.display())),
    };
    if flume.offset > file.len() {
        return Err(format!(
            "its position {} is past the end of {} ({} bytes)",
            flume.offset,
            path.display(),
            file.len()
        ));
    }
    let pos = match config.deserializer {
        // Flume's AVRO deserializer stores where a sync marker starts, not a block.
        SpoolDeserializer::Avro { .. } => {
            let opened =
                File::open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            avro::block_after_flume_mark(&opened, file.len(), flume.offset)
                .map_err(|why| format!("{} is not an Avro container: {why}", path.display()))?
        }
        _ => flume.offset,
    };
    Ok(Some(Current {
        id: file_id(&path, &file),
        pos,
        records: 0,
    }))
}

/// Reads the state file; a corrupt one is moved aside (kept for inspection) and the source
/// starts without it.
fn load_state(name: &str, path: &Path) -> anyhow::Result<State> {
    let loaded = state::load(path)
        .with_context(|| format!("source {name}: cannot read {}", path.display()))?;
    Ok(match loaded {
        Loaded::Missing => State::default(),
        Loaded::Read(s) => s,
        Loaded::Corrupt(why) => {
            let kept = durable::set_aside(path);
            tracing::error!(
                source = name,
                "state file {} is unusable: {why}; {kept}; starting without it: a file that was being read is read again from its start",
                path.display()
            );
            State::default()
        }
    })
}

/// How reading a file ended.
enum Flow {
    /// Go on with the next file.
    Next,
    /// Try again after a pause (an I/O error).
    Pause,
    /// The stop flag is set.
    Stop,
}

/// What became of a batch handed to the channel.
enum Delivery {
    Committed,
    Stopped,
    /// The channel's transactionCapacity is this, smaller than the batch.
    TooLarge(usize),
}

/// The source's state, owned by its one thread.
struct Spooler {
    name: String,
    config: SpoolDirConfig,
    /// `spoolDir`, absolute.
    spool_dir: PathBuf,
    tracker_dir: PathBuf,
    state_path: PathBuf,
    state: State,
    /// Files from the last listing not read yet, in reading order.
    queue: VecDeque<Candidate>,
    last_listing: Option<Instant>,
    /// `batchSize`, lowered to the channel's transactionCapacity if that is smaller.
    batch_size: usize,
    state_failing: bool,
    /// The file whose marking as done failed for a reason that may pass (logged once).
    retire_failing: Option<PathBuf>,
    /// Marker creations to fail with ENOSPC (tests).
    #[cfg(test)]
    fail_marks: usize,
    /// Paths a warning was logged for, so a lasting problem is logged once.
    warned: HashSet<PathBuf>,
    rng: fastrand::Rng,
    /// The source's counters, for the failures found away from a put (a state file, a file
    /// that cannot be marked done).
    counters: Arc<SourceCounters>,
}

impl Spooler {
    fn run(&mut self, processor: &ChannelProcessor, stop: &StopFlag) {
        while !stopping(stop) {
            let flow = match self.next_file() {
                Some((file, pos)) => self.consume(&file, pos, processor, stop),
                None => Flow::Pause,
            };
            match flow {
                Flow::Next => {}
                Flow::Pause => {
                    if self.state_failing {
                        self.save();
                    }
                    sleep_unless_stopped(self.config.poll_delay, stop);
                }
                Flow::Stop => break,
            }
        }
        // A state write that failed (a full disk) is retried at the next batch, and while idle;
        // a stop must not leave it unwritten, or the restart would send again what was
        // committed since.
        if self.state_failing {
            self.save();
        }
        tracing::info!(source = %self.name, "spooldir source stopped");
    }

    fn warn_once(&mut self, path: &Path, message: String) {
        if self.warned.insert(path.to_owned()) {
            tracing::warn!(source = %self.name, "{message}");
        }
    }

    /// Writes the state file; a failure is logged (once while it lasts) and retried at the next
    /// write, when idle, and at the stop.
    fn save(&mut self) {
        match state::store(&self.state_path, &self.state) {
            Ok(()) => {
                if self.state_failing {
                    self.state_failing = false;
                    tracing::info!(source = %self.name, "state file {} written again", self.state_path.display());
                }
            }
            Err(e) => {
                self.counters.generic_failure();
                if !self.state_failing {
                    tracing::error!(source = %self.name, "cannot write state file {}: {e}; retrying at the next batch, when idle and at the stop; a restart now would send again what was committed since it was last written", self.state_path.display());
                }
                self.state_failing = true;
            }
        }
    }

    /// Records `id` as a file not to read, and forgets it as the current file.
    fn skip(&mut self, id: &FileId, reason: String) {
        self.state.skipped.retain(|s| s.file != id.file);
        self.state.skipped.push(Skipped::new(id, reason));
        self.state.current = None;
        self.save();
    }

    /// Forgets the current file.
    fn forget_current(&mut self) {
        if self.state.current.take().is_some() {
            self.save();
        }
    }

    /// The file to read next and the position to read it from: the file being read when the
    /// source last stopped (or paused), if it is still there unchanged; else the next one listed.
    fn next_file(&mut self) -> Option<(Candidate, Position)> {
        if let Some(cur) = self.state.current.clone() {
            match self.check_current(&cur) {
                Some(Ok(c)) => {
                    let pos = Position {
                        offset: cur.pos,
                        records: cur.records,
                    };
                    return Some((c, pos));
                }
                // Cannot be looked at now: try again later, before any other file.
                Some(Err(())) => return None,
                None => self.forget_current(),
            }
        }
        let due = self
            .last_listing
            .is_none_or(|t| t.elapsed() >= self.config.poll_delay);
        if self.queue.is_empty() || due {
            if self.queue.is_empty() && !due {
                return None;
            }
            self.queue = self.list().into();
            self.last_listing = Some(Instant::now());
        }
        while let Some(c) = self.queue.pop_front() {
            // Looked at again: it may have gone since the listing.
            match std::fs::metadata(&c.id.file) {
                Ok(meta) if meta.is_file() => {
                    let id = file_id(&c.id.file, &meta);
                    return Some((Candidate { id, rel: c.rel }, Position::default()));
                }
                _ => continue,
            }
        }
        None
    }

    /// The current file from the state, if it can be read on: `Some(Ok)` to resume it,
    /// `Some(Err)` when it cannot be looked at now, `None` when it is to be forgotten.
    fn check_current(&mut self, cur: &Current) -> Option<Result<Candidate, ()>> {
        let id = &cur.id;
        let path = id.file.display().to_string();
        let meta = match std::fs::metadata(&id.file) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let done = with_suffix(&id.file, &self.config.file_suffix);
                let renamed = std::fs::metadata(&done)
                    .is_ok_and(|m| (m.dev(), m.ino()) == (id.dev, id.inode));
                if renamed {
                    tracing::info!(source = %self.name, "{path} was completed (renamed to {}) before the agent stopped", done.display());
                } else if cur.pos == id.size && self.config.delete_policy == DeletePolicy::Immediate
                {
                    tracing::info!(source = %self.name, "{path} was read to its end and deleted before the agent stopped");
                } else {
                    tracing::warn!(source = %self.name, "{path} (inode {}), of which {} of {} bytes were committed, is gone: it was moved away or deleted while the agent was stopped", id.inode, cur.pos, id.size);
                }
                return None;
            }
            Err(e) => {
                self.warn_once(
                    &id.file,
                    format!("cannot look at {path}, which is being read: {e}; trying again"),
                );
                return Some(Err(()));
            }
        };
        let now = file_id(&id.file, &meta);
        if (now.dev, now.inode) != (id.dev, id.inode) {
            tracing::error!(source = %self.name, "{path} was replaced by another file (inode {} is now {}) after {} bytes of the first were committed: a file name was used twice; the new file is read from its start", id.inode, now.inode, cur.pos);
            return None;
        }
        if (now.size, now.mtime) != (id.size, id.mtime) {
            let why = format!(
                "it changed after {} bytes of it were committed (size {} -> {}, modified {}.{:09} -> {}.{:09}); files in the spool directory must not change",
                cur.pos, id.size, now.size, id.mtime.0, id.mtime.1, now.mtime.0, now.mtime.1
            );
            self.skip_loudly(&now, why);
            return None;
        }
        let name = id.file.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !self.config.wants(name) {
            tracing::warn!(source = %self.name, "{path}, read up to byte {}, no longer has a name to read (fileSuffix, includePattern, ignorePattern): not read on", cur.pos);
            return None;
        }
        let rel = id
            .file
            .strip_prefix(&self.spool_dir)
            .map(Path::to_owned)
            .unwrap_or_else(|_| PathBuf::from(name));
        // Not again for each retry of marking a file read to its end (`retire`).
        if self.retire_failing.as_ref() != Some(&id.file) {
            tracing::info!(source = %self.name, file = %path, pos = cur.pos, records = cur.records, "resuming");
        }
        Some(Ok(Candidate { id: now, rel }))
    }

    /// Logs why `id` is left alone, as an error, and records it.
    fn skip_loudly(&mut self, id: &FileId, why: String) {
        tracing::error!(source = %self.name, "{}: {why}; it is left as it is and not read again (recorded in {}); to have it read, move it away and put a corrected copy in under a new name", id.file.display(), self.state_path.display());
        self.skip(id, why);
    }

    /// Lists the directory: the files to read, in reading order. Skipped files that are gone
    /// (or replaced) are forgotten.
    fn list(&mut self) -> Vec<Candidate> {
        let found = listing::list(
            &self.config,
            &self.spool_dir,
            &self.tracker_dir,
            &self.state.skipped,
            &mut self.rng,
        );
        for dir in &found.listed {
            self.warned.remove(dir);
        }
        for (path, why) in found.problems {
            self.warn_once(&path, why);
        }
        let before = self.state.skipped.len();
        self.state
            .skipped
            .retain(|s| found.skipped_present.contains(&s.file) || still_there(s));
        if self.state.skipped.len() != before {
            self.save();
        }
        found.files
    }

    /// Reads `c` from `start` to its end, batch by batch, and marks it done.
    fn consume(
        &mut self,
        c: &Candidate,
        start: Position,
        processor: &ChannelProcessor,
        stop: &StopFlag,
    ) -> Flow {
        let path = c.id.file.display().to_string();
        let file = match File::open(&c.id.file) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound && start.offset == 0 => {
                tracing::info!(source = %self.name, "{path} disappeared before it was read");
                return Flow::Next;
            }
            Err(e) => {
                self.warn_once(
                    &c.id.file,
                    format!("cannot open {path}: {e}; trying again later"),
                );
                read_failed(processor);
                // A file being read is the next to read: wait for it. Another is listed again.
                return if start.offset > 0 {
                    Flow::Pause
                } else {
                    Flow::Next
                };
            }
        };
        self.warned.remove(&c.id.file);
        let opened = match file.metadata() {
            Ok(m) => file_id(&c.id.file, &m),
            Err(e) => {
                tracing::warn!(source = %self.name, "cannot stat {path}: {e}; trying again later");
                read_failed(processor);
                return Flow::Pause;
            }
        };
        if opened != c.id {
            // Changed between the look and the open: look again.
            return Flow::Pause;
        }
        if start.offset > c.id.size {
            self.skip_loudly(
                &c.id,
                format!(
                    "{} bytes were committed but it has {}",
                    start.offset, c.id.size
                ),
            );
            return Flow::Next;
        }
        if start.offset == 0 {
            tracing::info!(source = %self.name, file = %path, bytes = c.id.size, "reading");
        }
        let mut reader = deserializer::open(
            self.config.deserializer,
            self.config.decode_error_policy,
            file,
            c.id.size,
            start,
        );
        let mut pos = start;
        loop {
            if stopping(stop) {
                return Flow::Stop;
            }
            if let Some(flow) = self.check_unchanged(c, &*reader, pos.offset) {
                return flow;
            }
            let batch = match reader.read_batch(self.batch_size) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(source = %self.name, "cannot read {path} at byte {}: {e}; reading it again from byte {} later", reader.offset(), pos.offset);
                    read_failed(processor);
                    return Flow::Pause;
                }
            };
            if !batch.pieces.is_empty()
                && !self.deliver_all(
                    c,
                    &batch.pieces,
                    reader.headers(),
                    &mut pos,
                    processor,
                    stop,
                )
            {
                return Flow::Stop;
            }
            match batch.after {
                After::More => {}
                After::End => return self.retire(c, &*reader, pos.offset),
                After::Invalid(at) => {
                    read_failed(processor);
                    self.skip_loudly(
                        &c.id,
                        format!(
                            "the bytes at offset {at} are not UTF-8 (decodeErrorPolicy = FAIL): reading stopped there, the lines before it were sent"
                        ),
                    );
                    return Flow::Next;
                }
                After::Corrupt(why) => {
                    read_failed(processor);
                    self.skip_loudly(
                        &c.id,
                        format!("{why}: reading stopped there, the events before it were sent"),
                    );
                    return Flow::Next;
                }
            }
        }
    }

    /// Whether the file being read is still the one opened, unchanged and under its name:
    /// `None` to read on, else what to do.
    fn check_unchanged(
        &mut self,
        c: &Candidate,
        reader: &dyn Deserializer,
        pos: u64,
    ) -> Option<Flow> {
        let path = c.id.file.display().to_string();
        let now = match reader.stat() {
            Ok(m) => file_id(&c.id.file, &m),
            Err(e) => {
                tracing::warn!(source = %self.name, "cannot stat {path}: {e}; trying again later");
                return Some(Flow::Pause);
            }
        };
        if (now.size, now.mtime) != (c.id.size, c.id.mtime) {
            let why = format!(
                "it changed while it was read, after {pos} bytes of it were committed (size {} -> {}, modified {}.{:09} -> {}.{:09}); files in the spool directory must be complete when they are put there",
                c.id.size, now.size, c.id.mtime.0, c.id.mtime.1, now.mtime.0, now.mtime.1
            );
            self.skip_loudly(&now, why);
            return Some(Flow::Next);
        }
        let here = std::fs::metadata(&c.id.file).map(|m| (m.dev(), m.ino()));
        if here.ok() != Some((c.id.dev, c.id.inode)) {
            tracing::warn!(source = %self.name, "{path} disappeared (deleted, moved or replaced) while it was read, after {pos} of its {} bytes were committed: moving on to the next file", c.id.size);
            self.forget_current();
            return Some(Flow::Next);
        }
        None
    }

    /// Puts `pieces` into the channel, each with `headers` and the file headers, in batches of
    /// at most `batch_size`, recording the position after each commit. False if the stop flag
    /// cut it short.
    fn deliver_all(
        &mut self,
        c: &Candidate,
        pieces: &[Piece],
        headers: &[(String, String)],
        pos: &mut Position,
        processor: &ChannelProcessor,
        stop: &StopFlag,
    ) -> bool {
        let path = c.id.file.to_string_lossy().into_owned();
        let basename =
            c.id.file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
        let mut rest = pieces;
        while let Some(last) = rest.get(self.batch_size.min(rest.len()).saturating_sub(1)) {
            let n = self.batch_size.min(rest.len());
            let make = || {
                rest[..n]
                    .iter()
                    .map(|p| {
                        let mut e = Event::new(p.body.clone());
                        for (k, v) in headers {
                            e.headers.insert(k.clone(), v.clone());
                        }
                        if let Some(k) = &self.config.file_header {
                            e.headers.insert(k.clone(), path.clone());
                        }
                        if let Some(k) = &self.config.basename_header {
                            e.headers.insert(k.clone(), basename.clone());
                        }
                        e
                    })
                    .collect()
            };
            match self.deliver(processor, stop, make) {
                Delivery::Committed => {
                    *pos = last.end;
                    self.state.current = Some(Current {
                        id: c.id.clone(),
                        pos: pos.offset,
                        records: pos.records,
                    });
                    self.save();
                    rest = &rest[n..];
                }
                Delivery::Stopped => return false,
                Delivery::TooLarge(limit) => {
                    let smaller = limit.clamp(1, n.saturating_sub(1).max(1));
                    tracing::warn!(source = %self.name, "batchSize {} exceeds the channel's transactionCapacity {limit}: putting batches of {smaller}", self.batch_size);
                    self.batch_size = smaller;
                }
            }
        }
        true
    }

    /// Puts a batch into the channel, retrying with backoff (`pollDelay` doubling up to
    /// `maxBackoff`) until it is committed or the source stops. `make` builds the batch again
    /// for every attempt.
    fn deliver(
        &self,
        processor: &ChannelProcessor,
        stop: &StopFlag,
        make: impl Fn() -> Vec<Event>,
    ) -> Delivery {
        let mut backoff = self.config.poll_delay.min(self.config.max_backoff);
        let mut failures = 0u32;
        loop {
            match processor.process(make()) {
                Ok(()) => {
                    if failures > 0 {
                        tracing::info!(source = %self.name, attempts = failures + 1, "channel accepted the batch");
                    }
                    return Delivery::Committed;
                }
                Err(ChannelError::TransactionTooLarge { limit, .. }) => {
                    return Delivery::TooLarge(limit);
                }
                Err(e) => {
                    failures += 1;
                    if failures == 1 {
                        tracing::warn!(source = %self.name, error = %e, "channel refused a batch; retrying it until it is accepted");
                    } else {
                        tracing::debug!(source = %self.name, error = %e, attempt = failures, "channel refused the batch again");
                    }
                    if stopping(stop) {
                        return Delivery::Stopped;
                    }
                    sleep_unless_stopped(backoff, stop);
                    backoff = (backoff * 2).min(self.config.max_backoff);
                }
            }
        }
    }

    /// Marks a file whose every line is committed as done (renamed, recorded in the tracker
    /// directory, or deleted), then forgets it. A file that cannot be marked is recorded as not
    /// to be read again, unless what failed may pass by itself (a full disk, no inodes, no
    /// descriptors): then it stays the current file, read to its end, and marking it is tried
    /// again after a pause, and after a restart.
    fn retire(&mut self, c: &Candidate, reader: &dyn Deserializer, pos: u64) -> Flow {
        if let Some(flow) = self.check_unchanged(c, reader, pos) {
            return flow;
        }
        let path = &c.id.file;
        let shown = path.display();
        let done = match (self.config.delete_policy, self.config.tracking_policy) {
            (DeletePolicy::Immediate, _) => std::fs::remove_file(path)
                .and_then(|()| durable::sync_parent(path))
                .map(|()| format!("deleted {shown}"))
                .map_err(|e| {
                    let why = format!("it was read to its end but cannot be deleted: {e}");
                    (why, passes(&e))
                }),
            (DeletePolicy::Never, TrackingPolicy::Rename) => {
                let dest = with_suffix(path, &self.config.file_suffix);
                match rename_no_replace(path, &dest) {
                    Ok(()) => durable::sync_parent(path)
                        .map(|()| format!("renamed {shown} to {}", dest.display()))
                        .map_err(|e| {
                            let why = format!(
                                "renamed to {}, but the directory cannot be synced: {e}",
                                dest.display()
                            );
                            // Renamed already: the name it had is gone, nothing to retry.
                            (why, false)
                        }),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err((
                        format!(
                            "it was read to its end but cannot be renamed to {}, which exists already: a file name was used twice in the spool directory",
                            dest.display()
                        ),
                        false,
                    )),
                    Err(e) => Err((
                        format!(
                            "it was read to its end but cannot be renamed to {}: {e}",
                            dest.display()
                        ),
                        passes(&e),
                    )),
                }
            }
            (DeletePolicy::Never, TrackingPolicy::TrackerDir) => {
                let marker = listing::marker(&self.config, &self.tracker_dir, &c.rel);
                self.mark_done(&marker)
                    .map(|()| format!("{shown} is done: recorded as {}", marker.display()))
                    .map_err(|e| {
                        let why = format!(
                            "it was read to its end but {} cannot be created: {e}",
                            marker.display()
                        );
                        (why, passes(&e))
                    })
            }
        };
        match done {
            Ok(what) => {
                if self.retire_failing.take().is_some() {
                    tracing::info!(source = %self.name, "{shown} marked done after all");
                }
                tracing::info!(source = %self.name, bytes = pos, "{what}");
                self.forget_current();
                Flow::Next
            }
            Err((why, true)) => {
                self.counters.generic_failure();
                if self.retire_failing.as_ref() != Some(path) {
                    tracing::error!(source = %self.name, "{shown}: {why}; trying again every {:?} until it can be marked (the spool directory waits)", self.config.poll_delay);
                    self.retire_failing = Some(path.clone());
                }
                Flow::Pause
            }
            Err((why, false)) => {
                self.counters.generic_failure();
                self.retire_failing = None;
                tracing::error!(source = %self.name, "{shown}: {why}; it is left in place and not read again (recorded in {})", self.state_path.display());
                self.skip(&c.id, why);
                Flow::Next
            }
        }
    }

    /// [`mark_done`], or (tests) the ENOSPC of a full disk while `fail_marks` lasts.
    fn mark_done(&mut self, marker: &Path) -> io::Result<()> {
        #[cfg(test)]
        if self.fail_marks > 0 {
            self.fail_marks -= 1;
            return Err(io::Error::from_raw_os_error(
                rustix::io::Errno::NOSPC.raw_os_error(),
            ));
        }
        mark_done(marker)
    }
}

/// Whether a failed filesystem operation may succeed later by itself: the disk or its inodes
/// full, a quota reached, the process or system out of descriptors or memory.
fn passes(e: &io::Error) -> bool {
    use rustix::io::Errno;
    [
        Errno::NOSPC,
        Errno::DQUOT,
        Errno::MFILE,
        Errno::NFILE,
        Errno::NOMEM,
    ]
    .iter()
    .any(|errno| e.raw_os_error() == Some(errno.raw_os_error()))
}

/// Whether a skipped file is still at its path.
fn still_there(s: &Skipped) -> bool {
    std::fs::metadata(&s.file).is_ok_and(|m| s.is(&file_id(&s.file, &m)))
}

/// `path` with `suffix` appended to its name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Renames `from` to `to` unless `to` exists (then `AlreadyExists`), atomically where the file
/// system can (`renameat2` with `RENAME_NOREPLACE`), else by looking first.
fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {
            if std::fs::symlink_metadata(to).is_ok() {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            std::fs::rename(from, to)
        }
        Err(e) => Err(io::Error::from(e)),
    }
}

/// Creates the tracker directory's empty mark for a done file, durably.
fn mark_done(marker: &Path) -> io::Result<()> {
    if let Some(dir) = marker.parent() {
        std::fs::create_dir_all(dir)?;
    }
    File::create(marker)?.sync_all()?;
    durable::sync_parent(marker)
}

fn read_failed(processor: &ChannelProcessor) {
    processor
        .counters()
        .read_fail
        .fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::Duration;

    use super::*;
    use crate::channel::Channel;
    use crate::config::{AvroCodec, ConsumeOrder, DecodeErrorPolicy, SpoolDeserializer};
    use crate::source::spooldir::lines::LineReader;
    use crate::source::test_rig::{self, processor_for, take_bodies};

    struct Rig {
        dir: tempfile::TempDir,
        channel: Arc<dyn Channel>,
        processor: ChannelProcessor,
        stop: StopFlag,
    }

    fn memory_channel(capacity: usize, transaction_capacity: usize) -> Arc<dyn Channel> {
        test_rig::memory_channel(capacity, transaction_capacity, Duration::from_millis(5))
    }

    fn rig() -> Rig {
        let channel = memory_channel(100_000, 100);
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("spool")).unwrap();
        Rig {
            processor: processor_for(&channel),
            dir,
            channel,
            stop: crate::stop::Stop::new(),
        }
    }

    impl Rig {
        fn spool(&self) -> PathBuf {
            self.dir.path().join("spool")
        }

        fn path(&self, name: &str) -> PathBuf {
            self.spool().join(name)
        }

        fn config(&self) -> SpoolDirConfig {
            SpoolDirConfig {
                spool_dir: self.spool(),
                spool_dir_at: "test.properties:1: a.sources.r1.spoolDir".into(),
                file_suffix: ".COMPLETED".into(),
                delete_policy: DeletePolicy::Never,
                file_header: Some("file".into()),
                basename_header: Some("basename".into()),
                include: regex::Regex::new("^(?:.*)$").unwrap(),
                ignore: regex::Regex::new("^(?:.*\\.tmp)$").unwrap(),
                tracker_dir: ".flumespool".into(),
                tracking_policy: TrackingPolicy::Rename,
                consume_order: ConsumeOrder::Oldest,
                poll_delay: Duration::ZERO,
                recursive: false,
                max_backoff: Duration::from_millis(20),
                batch_size: 10,
                decode_error_policy: DecodeErrorPolicy::Fail,
                deserializer: SpoolDeserializer::Line {
                    max_line_length: 2048,
                },
            }
        }

        /// Runs the source, as configured by default, on its own thread into `channel`
        /// until `stop` is set; the files to read must be in place first.
        fn run_into(&self, channel: &Arc<dyn Channel>) -> std::thread::JoinHandle<()> {
            let processor = processor_for(channel);
            let mut s = self.spooler(self.config());
            let stop = self.stop.clone();
            std::thread::spawn(move || s.run(&processor, &stop))
        }

        fn spooler(&self, config: SpoolDirConfig) -> Spooler {
            let mut source = SpoolDirSource::new("r1", config);
            source.start().unwrap();
            source.spooler.unwrap()
        }

        /// Reads every file there is now, as the source's loop does.
        fn drain(&self, s: &mut Spooler) {
            while let Some((c, pos)) = s.next_file() {
                if let Flow::Stop = s.consume(&c, pos, &self.processor, &self.stop) {
                    break;
                }
            }
        }

        fn take_all(&self) -> Vec<Event> {
            let mut out = Vec::new();
            loop {
                let taken = self.channel.take(100, Duration::ZERO).unwrap();
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

        fn state(&self) -> State {
            match state::load(&self.spool().join(".flumespool").join(STATE_FILE)).unwrap() {
                Loaded::Read(s) => s,
                other => panic!("{other:?}"),
            }
        }
    }

    fn numbered(prefix: &str, range: std::ops::Range<u32>) -> String {
        range.map(|i| format!("{prefix}{i}\n")).collect()
    }

    fn want(prefix: &str, range: std::ops::Range<u32>) -> Vec<String> {
        range.map(|i| format!("{prefix}{i}")).collect()
    }

    /// Writes `text` to `path` and sets its modification time `age` seconds in the past.
    fn put(path: &Path, text: &[u8], age: u64) {
        std::fs::write(path, text).unwrap();
        let t = std::time::SystemTime::now() - Duration::from_secs(age);
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }

    fn exists(p: &Path) -> bool {
        std::fs::symlink_metadata(p).is_ok()
    }

    /// Flume's position file in the rig's tracker directory.
    fn flume_meta(r: &Rig, bytes: &[u8]) {
        let tracker = r.spool().join(".flumespool");
        std::fs::create_dir_all(&tracker).unwrap();
        std::fs::write(tracker.join(state::FLUME_META_FILE), bytes).unwrap();
    }

    /// A state write that failed (a full disk) is done again at the stop, once it can be: a
    /// clean stop leaves nothing to send again.
    /// A spool directory that is not there stops the start naming the line that sets it.
    #[test]
    fn a_missing_spool_dir_is_named_with_its_line() {
        let r = rig();
        let mut config = r.config();
        config.spool_dir = r.dir.path().join("no-such-dir");
        let e = SpoolDirSource::new("r1", config).start().unwrap_err();
        assert!(
            e.to_string()
                .starts_with("test.properties:1: a.sources.r1.spoolDir: source r1: spoolDir ")
                && e.to_string()
                    .ends_with("no-such-dir does not exist or is not a directory"),
            "{e}"
        );
    }

    #[test]
    fn a_state_write_that_failed_is_done_at_the_stop() {
        let r = rig();
        put(&r.path("a.log"), numbered("a", 0..25).as_bytes(), 10);
        let mut s = r.spooler(r.config());
        let writable = s.state_path.clone();
        s.state_path = r.dir.path().join("no such dir").join(STATE_FILE);
        r.drain(&mut s);
        assert_eq!(r.bodies(), want("a", 0..25));
        assert!(s.state_failing);
        assert!(!exists(&writable), "nothing was written yet");
        // Room again; the agent stops.
        s.state_path = writable;
        r.stop.set();
        s.run(&r.processor, &r.stop);
        assert!(!s.state_failing);
        let stored = r.state();
        assert_eq!((stored.current, stored.skipped), (None, vec![]));
    }

    /// Taking a directory over from Flume: the file Flume was reading goes on where Flume's
    /// position file leaves it, then the others; once weir has a state of its own, Flume's
    /// stale file no longer counts.
    #[test]
    fn the_file_flume_was_reading_goes_on_from_flumes_position() {
        use flume_meta::written::meta_file;
        let r = rig();
        put(&r.path("old.log"), numbered("o", 0..10).as_bytes(), 20);
        put(&r.path("new.log"), numbered("n", 0..3).as_bytes(), 10);
        let target = r.path("old.log").display().to_string();
        // Flume committed o0..o3 ("o0\n" is 3 bytes), in two commits.
        flume_meta(&r, &meta_file(AvroCodec::Null, &target, &[6, 12]));
        let mut s = r.spooler(r.config());
        r.drain(&mut s);
        assert_eq!(r.bodies(), [want("o", 4..10), want("n", 0..3)].concat());

        // Flume's file is still there, naming a file now read to its end: it counts no more.
        put(&r.path("later.log"), numbered("l", 0..2).as_bytes(), 0);
        put(&r.path("old.log"), numbered("x", 0..6).as_bytes(), 0);
        let mut s = r.spooler(r.config());
        r.drain(&mut s);
        let mut got = r.bodies();
        got.sort();
        assert_eq!(got, [want("l", 0..2), want("x", 0..6)].concat());
    }

    /// A position file that cannot be used leaves every file to be read from its start.
    #[test]
    fn an_unusable_flume_position_reads_from_the_start() {
        use flume_meta::written::meta_file;
        let cases: [(&str, Vec<u8>); 6] = [
            ("not a position file", b"garbage".to_vec()),
            (
                "a file that is gone",
                meta_file(AvroCodec::Null, "/gone/a.log", &[3]),
            ),
            ("past the end", Vec::new()),
            ("a file outside spoolDir", Vec::new()),
            ("a way out of spoolDir", Vec::new()),
            ("a hidden file", Vec::new()),
        ];
        for (what, bytes) in cases {
            let r = rig();
            put(&r.path("a.log"), numbered("a", 0..5).as_bytes(), 20);
            let target = r.path("a.log").display().to_string();
            let bytes = match what {
                "past the end" => meta_file(AvroCodec::Null, &target, &[1000]),
                "a file outside spoolDir" => meta_file(AvroCodec::Null, "/elsewhere/a.log", &[3]),
                // Names a.log by a path that leaves spoolDir and comes back.
                "a way out of spoolDir" => {
                    let out_and_back = r.spool().join("../spool/a.log");
                    meta_file(AvroCodec::Null, &out_and_back.display().to_string(), &[3])
                }
                "a hidden file" => {
                    std::fs::create_dir_all(r.spool().join(".hidden")).unwrap();
                    put(&r.path(".hidden/a.log"), b"hidden\n", 20);
                    let hidden = r.spool().join(".hidden/a.log");
                    meta_file(AvroCodec::Null, &hidden.display().to_string(), &[3])
                }
                _ => bytes,
            };
            flume_meta(&r, &bytes);
            let mut s = r.spooler(r.config());
            r.drain(&mut s);
            assert_eq!(r.bodies(), want("a", 0..5), "{what}");
        }
        // Under AVRO, a file that is not an Avro container.
        let r = rig();
        let target = r.path("a.log").display().to_string();
        flume_meta(&r, &meta_file(AvroCodec::Null, &target, &[3]));
        let mut config = r.config();
        config.deserializer = SpoolDeserializer::Avro {
            schema_type: crate::config::AvroSchemaType::Hash,
        };
        put(&r.path("a.log"), b"not avro", 20);
        let s = r.spooler(config);
        assert_eq!(s.state.current, None);
    }

    #[test]
    fn files_oldest_first_with_headers_then_renamed() {
        let r = rig();
        put(&r.path("new.log"), numbered("n", 0..3).as_bytes(), 10);
        put(&r.path("old.log"), numbered("o", 0..25).as_bytes(), 20);
        put(&r.path("skip.tmp"), b"ignored\n", 30);
        put(&r.path(".hidden"), b"hidden\n", 30);
        put(&r.path("done.COMPLETED"), b"done\n", 30);
        let mut s = r.spooler(r.config());
        r.drain(&mut s);
        let events = r.take_all();
        let bodies: Vec<String> = events
            .iter()
            .map(|e| String::from_utf8_lossy(&e.body).into_owned())
            .collect();
        assert_eq!(bodies, [want("o", 0..25), want("n", 0..3)].concat());
        assert_eq!(
            events[0].headers["file"],
            r.path("old.log").to_string_lossy()
        );
        assert_eq!(events[0].headers["basename"], "old.log");
        assert_eq!(events[27].headers["basename"], "new.log");
        assert!(exists(&r.path("old.log.COMPLETED")) && !exists(&r.path("old.log")));
        assert!(exists(&r.path("new.log.COMPLETED")) && !exists(&r.path("new.log")));
        assert!(exists(&r.path("skip.tmp")));
        assert_eq!(r.state().current, None);
        // A file arriving later is read at the next look.
        put(&r.path("later.log"), b"late", 0);
        r.drain(&mut s);
        assert_eq!(r.bodies(), vec!["late"]);
    }

    #[test]
    fn youngest_first_and_equal_times_by_name() {
        let r = rig();
        put(&r.path("b"), b"b\n", 10);
        put(&r.path("a"), b"a\n", 10);
        put(&r.path("c"), b"c\n", 5);
        let mut config = r.config();
        config.consume_order = ConsumeOrder::Youngest;
        let mut s = r.spooler(config);
        r.drain(&mut s);
        assert_eq!(r.bodies(), vec!["c", "a", "b"]);
    }

    #[test]
    fn a_restart_resumes_at_the_committed_position() {
        let r = rig();
        put(&r.path("a.log"), numbered("a", 0..30).as_bytes(), 10);
        let mut s = r.spooler(r.config());
        let (c, pos) = s.next_file().unwrap();
        // Commit one batch by hand, as the loop does, then "crash".
        let mut reader = LineReader::new(
            File::open(&c.id.file).unwrap(),
            c.id.size,
            pos.offset,
            100,
            DecodeErrorPolicy::Fail,
        );
        let batch = reader.read_batch(10).unwrap();
        let mut at = Position::default();
        assert!(s.deliver_all(&c, &batch.pieces, &[], &mut at, &r.processor, &r.stop));
        assert_eq!(r.bodies(), want("a", 0..10));
        assert_eq!(r.state().current.unwrap().pos, at.offset);
        drop(s);
        let mut s = r.spooler(r.config());
        r.drain(&mut s);
        assert_eq!(r.bodies(), want("a", 10..30));
        assert!(exists(&r.path("a.log.COMPLETED")));
    }

    /// Commits the first batch of the oldest file and drops the spooler, as a crash would.
    fn first_batch_then_crash(r: &Rig) -> u64 {
        let mut s = r.spooler(r.config());
        let (c, _) = s.next_file().unwrap();
        let mut reader = LineReader::new(
            File::open(&c.id.file).unwrap(),
            c.id.size,
            0,
            100,
            DecodeErrorPolicy::Fail,
        );
        let batch = reader.read_batch(10).unwrap();
        let mut at = Position::default();
        assert!(s.deliver_all(&c, &batch.pieces, &[], &mut at, &r.processor, &r.stop));
        r.take_all();
        at.offset
    }

    #[test]
    fn a_file_changed_while_stopped_is_skipped_and_remembered() {
        let r = rig();
        put(&r.path("a.log"), numbered("a", 0..30).as_bytes(), 10);
        put(&r.path("b.log"), b"b\n", 5);
        first_batch_then_crash(&r);
        put(&r.path("a.log"), numbered("x", 0..30).as_bytes(), 10);
        let mut s = r.spooler(r.config());
        r.drain(&mut s);
        assert_eq!(r.bodies(), vec!["b"], "the changed file is not read on");
        assert!(exists(&r.path("a.log")), "left in place");
        let state = r.state();
        assert_eq!(state.skipped.len(), 1);
        assert!(
            state.skipped[0]
                .reason
                .contains("it changed after 30 bytes")
        );
        // Not read again after another restart either.
        let mut s = r.spooler(r.config());
        r.drain(&mut s);
        assert!(r.bodies().is_empty());
        // A new file put in its place is read, even when it gets the old one's inode.
        std::fs::remove_file(r.path("a.log")).unwrap();
        put(&r.path("a.log"), b"fixed\n", 0);
        r.drain(&mut s);
        assert_eq!(r.bodies(), vec!["fixed"]);
        assert!(r.state().skipped.is_empty(), "the entry is forgotten");
    }

    #[test]
    fn a_file_replaced_while_stopped_is_read_from_its_start() {
        let r = rig();
        put(&r.path("a.log"), numbered("a", 0..30).as_bytes(), 10);
        first_batch_then_crash(&r);
        // A new file (another inode) under the same name.
        put(&r.path("tmp"), numbered("new", 0..3).as_bytes(), 10);
        std::fs::rename(r.path("tmp"), r.path("a.log")).unwrap();
        let mut s = r.spooler(r.config());
        r.drain(&mut s);
        assert_eq!(r.bodies(), want("new", 0..3));
    }

    #[test]
    fn a_file_growing_while_read_is_skipped() {
        let r = rig();
        // Room for one batch: the source waits for the taker below between batches.
        let small = memory_channel(10, 10);
        put(&r.path("a.log"), numbered("a", 0..30).as_bytes(), 10);
        put(&r.path("b.log"), b"b\n", 5);
        let runner = r.run_into(&small);
        let take = |wait: u64| take_bodies(&small, 10, Duration::from_millis(wait));
        let first = take(10_000);
        assert_eq!(first, want("a", 0..10));
        std::fs::OpenOptions::new()
            .append(true)
            .open(r.path("a.log"))
            .unwrap()
            .write_all(b"late\n")
            .unwrap();
        // The batches read (or waiting for room in the channel) before the append is noticed
        // may still come, whole; then b.log.
        let mut rest = Vec::new();
        let end = Instant::now() + Duration::from_secs(20);
        while !rest.contains(&"b".to_owned()) && Instant::now() < end {
            rest.extend(take(50));
        }
        r.stop.set();
        runner.join().unwrap();
        assert!(
            rest == vec!["b"]
                || rest == [want("a", 10..20), vec!["b".into()]].concat()
                || rest == [want("a", 10..30), vec!["b".into()]].concat(),
            "{rest:?}"
        );
        assert!(exists(&r.path("a.log")), "left in place");
        let state = r.state();
        assert!(
            state.skipped[0]
                .reason
                .contains("it changed while it was read"),
            "{state:?}"
        );
    }

    #[test]
    fn a_file_deleted_while_read_is_left_and_the_next_one_read() {
        let r = rig();
        let small = memory_channel(10, 10);
        put(&r.path("a.log"), numbered("a", 0..50).as_bytes(), 10);
        put(&r.path("b.log"), b"b\n", 5);
        let runner = r.run_into(&small);
        let take = |wait: u64| take_bodies(&small, 10, Duration::from_millis(wait));
        assert_eq!(take(10_000), want("a", 0..10));
        std::fs::remove_file(r.path("a.log")).unwrap();
        let mut rest = Vec::new();
        let end = Instant::now() + Duration::from_secs(20);
        while !rest.contains(&"b".to_owned()) && Instant::now() < end {
            rest.extend(take(50));
        }
        r.stop.set();
        runner.join().unwrap();
        assert!(
            rest == vec!["b"]
                || rest == [want("a", 10..20), vec!["b".into()]].concat()
                || rest == [want("a", 10..30), vec!["b".into()]].concat(),
            "{rest:?}"
        );
        let state = r.state();
        assert!(
            state.skipped.is_empty() && state.current.is_none(),
            "{state:?}"
        );
        assert!(exists(&r.path("b.log.COMPLETED")));
    }

    #[test]
    fn a_crash_between_the_rename_and_the_state_write_repeats_nothing() {
        let r = rig();
        put(&r.path("a.log"), numbered("a", 0..10).as_bytes(), 10);
        let at = first_batch_then_crash(&r);
        assert_eq!(r.state().current.unwrap().pos, at);
        // The whole file was committed and renamed; the state still names it.
        std::fs::rename(r.path("a.log"), r.path("a.log.COMPLETED")).unwrap();
        let mut s = r.spooler(r.config());
        r.drain(&mut s);
        assert!(r.bodies().is_empty());
        assert_eq!(r.state().current, None);
    }

    #[test]
    fn a_taken_completed_name_leaves_the_file_unrenamed_and_unread() {
        let r = rig();
        put(&r.path("a.log"), b"second use\n", 10);
        put(&r.path("a.log.COMPLETED"), b"first use\n", 10);
        let mut s = r.spooler(r.config());
        r.drain(&mut s);
        assert_eq!(r.bodies(), vec!["second use"]);
        assert!(exists(&r.path("a.log")));
        assert_eq!(
            std::fs::read(r.path("a.log.COMPLETED")).unwrap(),
            b"first use\n"
        );
        let state = r.state();
        assert!(
            state.skipped[0].reason.contains("exists already"),
            "{state:?}"
        );
        let mut s = r.spooler(r.config());
        r.drain(&mut s);
        assert!(r.bodies().is_empty(), "not read again after a restart");
    }

    #[test]
    fn tracker_dir_marks_and_delete_policy() {
        let r = rig();
        std::fs::create_dir(r.path("sub")).unwrap();
        put(&r.path("a.log"), b"a\n", 10);
        put(&r.path("sub/b.log"), b"b\n", 5);
        let mut config = r.config();
        config.tracking_policy = TrackingPolicy::TrackerDir;
        config.recursive = true;
        let mut s = r.spooler(config.clone());
        r.drain(&mut s);
        assert_eq!(r.bodies(), vec!["a", "b"]);
        assert!(exists(&r.path("a.log")) && exists(&r.path("sub/b.log")));
        assert!(exists(&r.path(".flumespool/a.log.COMPLETED")));
        assert!(exists(&r.path(".flumespool/sub/b.log.COMPLETED")));
        let mut s = r.spooler(config);
        r.drain(&mut s);
        assert!(r.bodies().is_empty(), "marked files are not read again");
        // A new file under a name marked done is not read either (as in Flume), but said.
        assert!(s.warned.is_empty(), "{:?}", s.warned);
        std::fs::write(r.path("a.log"), b"a2\n").unwrap();
        r.drain(&mut s);
        assert!(r.bodies().is_empty());
        assert!(s.warned.contains(&r.path("a.log")), "{:?}", s.warned);

        let r = rig();
        put(&r.path("a.log"), b"a\n", 10);
        let mut config = r.config();
        config.delete_policy = DeletePolicy::Immediate;
        let mut s = r.spooler(config);
        r.drain(&mut s);
        assert_eq!(r.bodies(), vec!["a"]);
        assert!(!exists(&r.path("a.log")) && !exists(&r.path("a.log.COMPLETED")));
    }

    /// A marker that cannot be made for a reason that may pass (here ENOSPC, as a full disk
    /// gives) leaves the file current at its end, not skipped: marking is tried again, after
    /// a restart too, and nothing is sent twice (the disk-full audit's M1).
    #[test]
    fn a_marker_that_cannot_be_made_for_now_is_tried_again_not_skipped() {
        let r = rig();
        put(&r.path("a.log"), b"a\n", 10);
        let mut config = r.config();
        config.tracking_policy = TrackingPolicy::TrackerDir;
        let marker = r.path(".flumespool/a.log.COMPLETED");
        let mut s = r.spooler(config.clone());
        s.fail_marks = 2;
        let (c, pos) = s.next_file().unwrap();
        assert!(matches!(
            s.consume(&c, pos, &r.processor, &r.stop),
            Flow::Pause
        ));
        assert!(!exists(&marker));
        drop(s);

        let mut s = r.spooler(config);
        s.fail_marks = 1;
        let (c, pos) = s
            .next_file()
            .expect("still the current file after a restart");
        assert_eq!(pos.offset, 2);
        assert!(matches!(
            s.consume(&c, pos, &r.processor, &r.stop),
            Flow::Pause
        ));
        r.drain(&mut s);
        assert!(exists(&marker));
        assert_eq!(r.bodies(), vec!["a"]);
        let state = r.state();
        assert!(
            state.skipped.is_empty() && state.current.is_none(),
            "{state:?}"
        );
    }

    #[test]
    fn an_undecodable_file_is_sent_up_to_the_bad_byte_and_remembered() {
        let r = rig();
        put(&r.path("a.log"), b"one\ntw\xffo\nthree\n", 10);
        let mut s = r.spooler(r.config());
        r.drain(&mut s);
        assert_eq!(r.bodies(), vec!["one"]);
        assert!(exists(&r.path("a.log")));
        let state = r.state();
        assert!(
            state.skipped[0].reason.contains("offset 6 are not UTF-8"),
            "{state:?}"
        );
        assert_eq!(r.processor.counters().read_fail.load(Ordering::Relaxed), 1);
        let mut s = r.spooler(r.config());
        r.drain(&mut s);
        assert!(r.bodies().is_empty());
    }

    #[test]
    fn a_full_channel_delays_but_loses_and_repeats_nothing() {
        let r = rig();
        let small = memory_channel(15, 10);
        put(&r.path("a.log"), numbered("a", 0..200).as_bytes(), 10);
        let runner = r.run_into(&small);
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
        }
        // Renamed once the last batch is committed.
        while !exists(&r.path("a.log.COMPLETED")) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
        r.stop.set();
        runner.join().unwrap();
        assert_eq!(got, want("a", 0..200));
        assert!(small.counters().full.load(Ordering::Relaxed) > 0);
        assert!(exists(&r.path("a.log.COMPLETED")));
    }

    #[test]
    fn oversized_batches_shrink_to_the_transaction_capacity() {
        let mut r = rig();
        r.channel = memory_channel(1000, 4);
        r.processor = processor_for(&r.channel);
        put(&r.path("a.log"), numbered("a", 0..23).as_bytes(), 10);
        let mut s = r.spooler(r.config());
        r.drain(&mut s);
        assert_eq!(s.batch_size, 4);
        let mut got = Vec::new();
        loop {
            let taken = r.channel.take(4, Duration::ZERO).unwrap();
            if taken.is_empty() {
                break;
            }
            got.extend(
                taken
                    .events
                    .iter()
                    .map(|(_, e)| String::from_utf8_lossy(&e.body).into_owned()),
            );
            r.channel.commit(taken).unwrap();
        }
        assert_eq!(got, want("a", 0..23));
    }

    /// Commits the first batch of the oldest file with the configured deserializer and drops
    /// the spooler, as a crash would; the events of that batch.
    fn first_batch_with(r: &Rig, config: SpoolDirConfig) -> Vec<Event> {
        let mut s = r.spooler(config.clone());
        let (c, pos) = s.next_file().unwrap();
        let mut reader = deserializer::open(
            config.deserializer,
            config.decode_error_policy,
            File::open(&c.id.file).unwrap(),
            c.id.size,
            pos,
        );
        let batch = reader.read_batch(config.batch_size).unwrap();
        let mut at = pos;
        assert!(s.deliver_all(
            &c,
            &batch.pieces,
            reader.headers(),
            &mut at,
            &r.processor,
            &r.stop
        ));
        r.take_all()
    }

    #[test]
    fn blob_chunks_resume_at_the_committed_offset() {
        let r = rig();
        let data: Vec<u8> = (0..=255u8).cycle().take(2500).collect();
        put(&r.path("a.bin"), &data, 10);
        let mut config = r.config();
        config.deserializer = SpoolDeserializer::Blob {
            max_blob_length: 100,
        };
        config.batch_size = 7;
        let first = first_batch_with(&r, config.clone());
        assert_eq!(first.len(), 7);
        assert_eq!(r.state().current.unwrap().pos, 700);
        let mut s = r.spooler(config);
        r.drain(&mut s);
        let rest = r.take_all();
        assert_eq!(rest.len(), 18);
        let bodies: Vec<u8> = first
            .iter()
            .chain(&rest)
            .flat_map(|e| e.body.iter().copied())
            .collect();
        assert_eq!(bodies, data, "every byte once, in order");
        assert!(first.iter().chain(&rest).all(|e| e.body.len() == 100));
        assert_eq!(rest[0].headers["basename"], "a.bin");
        assert!(exists(&r.path("a.bin.COMPLETED")));
    }

    /// An Avro container of Flume events (the file_roll sink's AVRO_EVENT writer), blocks of
    /// `blocks` records; the records' datums.
    fn avro_file(path: &Path, blocks: &[u32]) -> Vec<Vec<u8>> {
        use crate::config::{AvroCodec, SerializerConfig};
        let mut w = crate::sink::serializer::Serializer::new(&SerializerConfig::AvroEvent {
            sync_interval_bytes: 1 << 20,
            codec: AvroCodec::Deflate,
        });
        let mut out = Vec::new();
        let mut datums = Vec::new();
        w.begin_file(&mut out);
        let mut first = 0;
        for &n in blocks {
            for i in first..first + n {
                let e =
                    Event::new(format!("record {i}").into_bytes()).with_header("i", i.to_string());
                datums.push(crate::flume_event_format::encode(&e.headers, &e.body));
                w.write(&e, &mut out).unwrap();
            }
            w.end_batch(&mut out).unwrap();
            first += n;
        }
        put(path, &out, 10);
        datums
    }

    /// Flume's AVRO deserializer stores `previousSync() - 16`, where the sync marker before
    /// the block it was reading starts; Flume goes on after the first marker at or after it.
    #[test]
    fn avro_taken_over_from_flume_goes_on_at_the_block_flume_was_reading() {
        use flume_meta::written::meta_file;
        let r = rig();
        let datums = avro_file(&r.path("a.avro"), &[5, 7, 4]);
        let bytes = std::fs::read(r.path("a.avro")).unwrap();
        let sync = &bytes[bytes.len() - 16..];
        // The header's marker, then one after each block.
        let markers: Vec<u64> = (0..=bytes.len() - 16)
            .filter(|&i| &bytes[i..i + 16] == sync)
            .map(|i| i as u64)
            .collect();
        assert_eq!(markers.len(), 4, "{markers:?}");
        let cases = [
            ("nothing committed", 0, 0),
            ("at the header's marker", markers[0], 0),
            ("in the second block", markers[1], 5),
            ("inside the second block's bytes", markers[1] + 20, 12),
            ("after the last block", markers[3], 16),
        ];
        for (what, mark, from) in cases {
            let r = rig();
            avro_file(&r.path("a.avro"), &[5, 7, 4]);
            let target = r.path("a.avro").display().to_string();
            flume_meta(&r, &meta_file(AvroCodec::Null, &target, &[mark as i64]));
            let mut config = r.config();
            config.deserializer = SpoolDeserializer::Avro {
                schema_type: crate::config::AvroSchemaType::Hash,
            };
            let mut s = r.spooler(config);
            r.drain(&mut s);
            let bodies: Vec<Vec<u8>> = r.take_all().iter().map(|e| e.body.to_vec()).collect();
            assert_eq!(bodies, datums[from..], "{what}");
        }
    }

    #[test]
    fn avro_resumes_inside_a_block_at_the_first_record_not_committed() {
        let r = rig();
        let datums = avro_file(&r.path("a.avro"), &[5, 7]);
        let mut config = r.config();
        config.deserializer = SpoolDeserializer::Avro {
            schema_type: crate::config::AvroSchemaType::Hash,
        };
        config.batch_size = 3;
        let first = first_batch_with(&r, config.clone());
        let current = r.state().current.unwrap();
        assert_eq!(current.records, 3, "{current:?}");
        let mut s = r.spooler(config);
        r.drain(&mut s);
        let rest = r.take_all();
        let bodies: Vec<Vec<u8>> = first.iter().chain(&rest).map(|e| e.body.to_vec()).collect();
        assert_eq!(bodies, datums, "every record once, in order");
        let hash = &first[0].headers["flume.avro.schema.hash"];
        assert_eq!(hash.len(), 16);
        assert!(
            rest.iter()
                .all(|e| &e.headers["flume.avro.schema.hash"] == hash)
        );
        assert!(exists(&r.path("a.avro.COMPLETED")));
        assert_eq!(r.state().current, None);
    }

    #[test]
    fn an_invalid_avro_file_is_left_and_remembered_and_the_others_read() {
        let r = rig();
        put(&r.path("a.avro"), b"just some text\n", 30);
        let datums = avro_file(&r.path("b.avro"), &[3]);
        let mut cut = std::fs::read(r.path("b.avro")).unwrap();
        cut.truncate(cut.len() - 3);
        put(&r.path("c.avro"), &cut, 5);
        let mut config = r.config();
        config.deserializer = SpoolDeserializer::Avro {
            schema_type: crate::config::AvroSchemaType::Literal,
        };
        let mut s = r.spooler(config.clone());
        r.drain(&mut s);
        let events = r.take_all();
        assert_eq!(events.len(), 3, "b.avro only");
        assert_eq!(
            events.iter().map(|e| e.body.to_vec()).collect::<Vec<_>>(),
            datums
        );
        assert_eq!(
            events[0].headers["flume.avro.schema.literal"],
            crate::sink::serializer::AVRO_SCHEMA
        );
        assert!(exists(&r.path("a.avro")) && exists(&r.path("c.avro")));
        let state = r.state();
        let reasons: Vec<&str> = state.skipped.iter().map(|s| s.reason.as_str()).collect();
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(
            reasons[0].contains("not an Avro object container file"),
            "{reasons:?}"
        );
        assert!(reasons[1].contains("is cut short"), "{reasons:?}");
        assert_eq!(r.processor.counters().read_fail.load(Ordering::Relaxed), 2);
        let mut s = r.spooler(config);
        r.drain(&mut s);
        assert!(r.take_all().is_empty(), "not read again after a restart");
    }
}
