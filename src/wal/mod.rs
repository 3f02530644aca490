//! The segmented, memory-mapped write-ahead log: append, commit (group commit), named readers,
//! durable checkpoints, retention and crash recovery. It knows nothing of Flume; the channel
//! builds transactions on top of it. The bytes it writes are specified in `wal-format.md`.
//!
//! Concurrency: one `writer` mutex serialises appends (one `pwrite` of an encoded frame, or a copy
//! into the map; see [`SyncMethod`] for why `pwrite` is the default);
//! syncs run one at a time, each led by the first committer that needs it and taking everything
//! appended so far, while the other committers sleep on a futex word until it is done, so
//! concurrent committers share one sync (see `Inner::wait`). Readers never take the writer lock: they
//! read frames below each segment's `visible_end`, which only moves forward after a sync.

pub mod checkpoint;
mod durable_file;
pub mod error;
pub mod frame;
mod identity;
pub mod inspect;
pub mod log_id;
mod reader;
pub mod recovery;
pub mod segment;
pub mod slots;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};
use rustix::thread::futex;

use crate::event::Event;
pub use checkpoint::Position;
use checkpoint::{CHECKPOINT_MAGIC, Checkpoint, META_MAGIC};
pub use error::{
    AnotherLogsCheckpoint, CheckpointsOfTwoLogs, Result, UnverifiedCheckpoint, WalError,
};
use identity::{Claim, Identity};
use log_id::LogId;
pub use reader::Reader;
use recovery::{ScanStop, scan_frames};
pub use segment::SyncMethod;
use segment::{SEGMENT_HEADER_LEN, Seal, Segment};
use slots::SlotFile;

pub const DEFAULT_SEGMENT_SIZE: u64 = 64 << 20;
const LOCK_FILE: &str = "wal.lock";
const META_FILE: &str = "wal.meta";
const SPARE_EXT: &str = "spare";
/// Appended frames waiting for the commit leader's `pwrite` are written at once past this size,
/// which bounds the buffer (see `Writer::pending`).
const PENDING_FLUSH: usize = 1 << 20;
/// How far ahead of the last frame a sync of a small claim writes zeros into a fresh segment
/// (see `Inner::zero_ahead`).
const ZERO_AHEAD: usize = 256 << 10;

/// When `commit` makes data durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// Every `commit` returns only once everything appended before it is on disk (concurrent
    /// commits share one sync). The default.
    #[default]
    EveryCommit,
    /// `commit` returns at once; a background thread syncs at most this often. A crash can lose
    /// what was appended in the last interval. Readers still see only synced frames.
    Interval(Duration),
}

/// What a reader does with a frame whose CRC fails inside the committed log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CorruptionPolicy {
    /// Return an error naming the segment file and byte position; the reader stays put.
    #[default]
    Fail,
    /// Log an error, count the frame and its events as skipped, and resume at the next valid
    /// frame.
    Skip,
}

/// Settings of a log. `Default` gives the documented defaults.
#[derive(Clone, Debug)]
pub struct WalOptions {
    /// Bytes per segment file, a multiple of 4096 (default 64 MiB).
    pub segment_size: u64,
    /// Where consumer checkpoints live (default: the log directory).
    pub checkpoint_dir: Option<PathBuf>,
    pub sync: SyncPolicy,
    pub sync_method: SyncMethod,
    /// Most bytes of frames held (appended and not yet acknowledged by every consumer).
    pub max_bytes: Option<u64>,
    /// Most events held.
    pub max_events: Option<u64>,
    /// Creating a segment fails with [`WalError::DiskFull`] if it would leave less free space.
    pub min_free_bytes: u64,
    pub on_corruption: CorruptionPolicy,
    /// Retired segments kept for reuse instead of being deleted (reuse avoids allocating and
    /// lets syncs overwrite already-allocated blocks).
    pub spare_segments: usize,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size: DEFAULT_SEGMENT_SIZE,
            checkpoint_dir: None,
            sync: SyncPolicy::EveryCommit,
            sync_method: SyncMethod::default(),
            max_bytes: None,
            max_events: None,
            min_free_bytes: 0,
            on_corruption: CorruptionPolicy::Fail,
            spare_segments: 2,
        }
    }
}

/// Where an append landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    pub first_offset: u64,
    /// One past the last event's offset.
    pub next_offset: u64,
}

/// A handle on an open log. Cloning is cheap; the log closes when the last handle (and reader)
/// is dropped.
#[derive(Clone)]
pub struct Wal {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    checkpoint_dir: PathBuf,
    opts: WalOptions,
    epoch: u32,
    /// Written into every checkpoint, every new segment's header and `wal.meta` (see
    /// `identity`).
    log_id: LogId,
    /// Recorded in `wal.meta`: the log had its id from its start.
    born_with_id: bool,
    _lock: File,
    /// The checkpoint directory's lock, when it is not the log's own directory; taken again
    /// when the directory was removed and made anew (see `ack`).
    checkpoint_lock: Mutex<Option<File>>,
    segments: RwLock<BTreeMap<u64, Arc<Segment>>>,
    writer: Mutex<Writer>,
    /// How many syncs have completed (see `Writer::syncs_claimed`).
    syncs_done: AtomicU64,
    /// Futex words: committers waiting for sync `n` to complete sleep on `sync_words[n % 2]`,
    /// which is bumped when it does (see `wait`).
    sync_words: [AtomicU32; 2],
    /// Set, for good, by a failed write or sync, or a leader that panicked in its sync (see
    /// `Inner::poison`).
    poisoned: Mutex<Option<String>>,
    is_poisoned: AtomicBool,
    /// Test hook: the next sync panics after its claim, as a bug there would.
    #[cfg(test)]
    panic_next_sync: AtomicBool,
    /// Free bytes the space checks see instead of the filesystem's (tests).
    #[cfg(test)]
    fake_available: Mutex<Option<u64>>,
    durable: AtomicU64,
    consumers: Mutex<BTreeMap<String, Arc<Mutex<Consumer>>>>,
    /// Lowest checkpointed offset over all consumers, and its byte position in the log stream:
    /// what is below is no longer held.
    floor: AtomicU64,
    floor_logical: AtomicU64,
    spares: Mutex<Vec<PathBuf>>,
    skipped_frames: AtomicU64,
    skipped_events: AtomicU64,
    /// Wakes the interval syncer to stop. Shared, not owned by `Inner`, so the syncer can wait
    /// on it without keeping the log alive.
    stop_syncer: Arc<StopSignal>,
    syncer: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Default)]
struct StopSignal {
    stopped: Mutex<bool>,
    wake: Condvar,
}

struct Writer {
    active: Arc<Segment>,
    write_pos: usize,
    /// Under [`SyncMethod::Pwrite`]: frames appended but not yet written to the file. They end
    /// at `write_pos`. The commit leader writes them with one `pwrite` just before it syncs, so
    /// a group of small commits costs one system call, not one each; a buffer grown past
    /// [`PENDING_FLUSH`] is written at once. Nothing reads them before they are written: readers
    /// stop at `visible_end`, which only moves after a sync.
    pending: Vec<u8>,
    /// Bytes of the active segment below this are synced (or being synced by a leader).
    synced_pos: usize,
    next_offset: u64,
    /// Bytes of the active segment below this have been written since the file was allocated
    /// (by frames or by `Inner::zero_ahead`). A segment this process did not allocate counts as
    /// written through: past a recovered end there may be a discarded tail, which must stay for
    /// the epoch rule to reject (wal-format.md §7.1), not be zeroed under it.
    written_to: usize,
    /// Syncs claimed so far. Sync `n` covers everything appended before its claim, so a frame
    /// appended now is covered by sync `syncs_claimed + 1`.
    syncs_claimed: u64,
    /// The highest sync number that has a leader.
    leaders_named: u64,
    /// When a segment could last not be created for want of space (out of inodes, over quota:
    /// what `statvfs` cannot foresee), and that error's parts. Puts waiting for room retry
    /// every few milliseconds; they get this error again until [`NO_SPACE_RETRY`] has passed,
    /// instead of each making and deleting a file under the writer lock.
    no_space: Option<(Instant, &'static str, PathBuf, i32)>,
}

/// How long a segment that could not be created for want of space is not tried again.
const NO_SPACE_RETRY: Duration = Duration::from_millis(100);

/// What a committer learns under the writer lock: which sync will cover its frames, and whether
/// it is the one to run that sync.
struct Ticket {
    /// Everything below this offset must be durable.
    target: u64,
    sync: u64,
    lead: bool,
}

struct Consumer {
    file: SlotFile,
    position: Position,
    /// The log its checkpoint file says it was written for (read at open).
    written_for: Option<LogId>,
}

/// A snapshot of the log's state, for `weir wal stats` and metrics.
#[derive(Clone, Debug)]
pub struct WalStats {
    pub segments: usize,
    pub first_offset: u64,
    pub next_offset: u64,
    pub durable_offset: u64,
    pub held_events: u64,
    pub held_bytes: u64,
    /// Bytes the segment files occupy on disk, the spares kept for reuse included.
    pub disk_bytes: u64,
    pub epoch: u32,
    pub consumers: Vec<ConsumerStats>,
    pub skipped_frames: u64,
    pub skipped_events: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerStats {
    pub name: String,
    pub offset: u64,
    pub lag: u64,
}

impl Wal {
    /// Opens (or creates) the log in `dir`, recovering from whatever state a crash left: see
    /// `wal-format.md` §7. Only an unsealed (the newest) segment is scanned, so the cost does not
    /// grow with the backlog.
    pub fn open(dir: impl AsRef<Path>, opts: WalOptions) -> Result<Wal> {
        let dir = dir.as_ref().to_owned();
        validate_options(&opts)?;
        durable_file::create_dir_all(&dir)?;
        let checkpoint_dir = opts.checkpoint_dir.clone().unwrap_or_else(|| dir.clone());
        durable_file::create_dir_all(&checkpoint_dir)?;
        let lock = lock_dir(&dir, "log")?;
        // Checkpoints kept apart are locked too: a second process with another log but the
        // same checkpoint directory would overwrite this log's consumer positions with its own
        // (a copied configuration with only `dataDirs` changed), and this log would then take
        // its undelivered events for delivered.
        let checkpoint_lock = if same_dir(&dir, &checkpoint_dir) {
            None
        } else {
            Some(lock_dir(&checkpoint_dir, "checkpoint directory")?)
        };

        let meta_path = dir.join(META_FILE);
        let meta = SlotFile::open(&meta_path, META_MAGIC)?;
        let meta_epoch = meta
            .as_ref()
            .and_then(|(_, p)| checkpoint::decode_meta(p))
            .unwrap_or(0);
        let mut max_epoch = meta_epoch;
        let verified = meta
            .as_ref()
            .and_then(|(_, p)| checkpoint::decode_verified_end(p));

        let listing = list_dir(&dir)?;
        // Every open writes wal.meta before its first frame and before a new log's first
        // segment, so segments without a valid one mean it was deleted or damaged from outside.
        let meta_lost = meta.is_none() && (meta_path.exists() || !listing.segments.is_empty());
        if meta_lost {
            tracing::error!(
                path = %meta_path.display(),
                "wal.meta is missing or holds no valid record: the epoch is worked out from the \
                 frames on disk instead, and damage below the end the log last verified can no \
                 longer be told from a torn tail"
            );
        }
        let consumers = load_consumers(&checkpoint_dir)?;
        // A log never opened before has no consumer yet: a checkpoint already there is another
        // log's (or this log's, whose files were deleted). Even one at offset 0 would be taken
        // over and written with this log's positions, which the other log then takes for its
        // own: its events below them for delivered, and hints that lead nowhere.
        let new_log = meta.is_none() && !meta_path.exists() && listing.segments.is_empty();
        if new_log && let Some((name, c)) = consumers.iter().next() {
            return Err(WalError::ForeignCheckpoint {
                checkpoint: c.file.path().to_owned(),
                consumer: name.clone(),
                offset: c.position.offset,
                log: dir.clone(),
            });
        }

        // Sealed segments are trusted as sealed; an unsealed one is scanned for its valid end.
        let mut segments: Vec<Segment> = Vec::with_capacity(listing.segments.len());
        let mut tail_next = 0u64;
        let count = listing.segments.len();
        for (i, (base, path)) in listing.segments.iter().enumerate() {
            let mut seg = Segment::open(path, true)?;
            if let Some(prev) = segments.last().and_then(|s| s.seal())
                && *base < prev.next_offset
            {
                return Err(WalError::Corrupt {
                    path: path.clone(),
                    pos: 16,
                    reason: format!(
                        "segment starts at offset {base}, inside the previous one (which ends at {})",
                        prev.next_offset
                    ),
                });
            }
            if seg.seal().is_none() {
                let len = seg.len();
                let scan = scan_frames(seg.recovery_image(), SEGMENT_HEADER_LEN, *base, len);
                max_epoch = max_epoch.max(scan.max_epoch);
                let damaged = verified
                    .filter(|v| v.base == *base && (scan.end_pos as u64) < v.end_pos)
                    .map(|v| recovery::resume_after_damage(seg.recovery_image(), &scan, v, len));
                if let Some(resume) = damaged {
                    // The previous open verified and synced the log beyond this point: the
                    // chain breaks on damage, not on a torn write. Keep every frame after it,
                    // seal the segment there, and let readers meet the damage under the
                    // corruption policy, as in any sealed segment.
                    max_epoch = max_epoch.max(resume.max_epoch);
                    tracing::error!(
                        segment = %path.display(),
                        pos = scan.end_pos,
                        reason = %scan.stop,
                        verified_end = verified.map(|v| v.end_pos).unwrap_or(0),
                        "a frame the log held as committed is damaged (not a torn tail); the \
                         segment is sealed after the frames that follow it, and readers meet the \
                         damage under the corruption policy"
                    );
                    seg.write_seal(Seal {
                        end_pos: resume.end_pos as u64,
                        next_offset: resume.next_offset,
                    })?;
                } else if i + 1 == count {
                    if meta_lost {
                        // Without the meta epoch, the new one must still be above every frame
                        // past the end that a later scan could take as continuing the chain.
                        max_epoch = max_epoch.max(recovery::max_epoch_from(
                            seg.recovery_image(),
                            scan.end_pos,
                            len,
                            scan.next_offset,
                        ));
                    }
                    let at_recorded_end = verified
                        .is_some_and(|v| v.base == *base && v.end_pos == scan.end_pos as u64);
                    // The open (or clean close) that recorded this end wrote its epoch with
                    // it, and every frame its process began there carries that epoch: one
                    // there is a torn write (the first frame after an open is the likeliest
                    // place for a tear), and anything older is left over from the segment's
                    // earlier life or a tail that open already discarded.
                    let epoch_floor = if at_recorded_end {
                        scan.max_epoch.max(meta_epoch)
                    } else {
                        scan.max_epoch
                    };
                    if let ScanStop::Invalid { reason } = &scan.stop {
                        if recovery::starts_expected_frame(
                            &seg.recovery_image()[scan.end_pos..],
                            scan.next_offset,
                            epoch_floor,
                        ) {
                            match recovery::intact_frame_after_torn(
                                seg.recovery_image(),
                                scan.end_pos,
                                scan.next_offset,
                                epoch_floor,
                            ) {
                                None => tracing::warn!(
                                    segment = %path.display(),
                                    pos = scan.end_pos,
                                    %reason,
                                    "discarding a torn tail: nothing from this byte on was committed"
                                ),
                                Some((intact_pos, intact_offset)) => tracing::warn!(
                                    segment = %path.display(),
                                    pos = scan.end_pos,
                                    %reason,
                                    intact_pos,
                                    intact_offset,
                                    "discarding a torn tail, and the intact frames written after \
                                     it (from offset {intact_offset}, at byte {intact_pos}): a \
                                     tear a crash left cannot be told from damage found later, \
                                     so if these were acknowledged, they are lost"
                                ),
                            }
                        } else if at_recorded_end {
                            tracing::debug!(segment = %path.display(), pos = scan.end_pos, %reason, "leftover bytes after the end recorded when the log was last opened or closed");
                        } else {
                            tracing::info!(
                                segment = %path.display(),
                                pos = scan.end_pos,
                                next_offset = scan.next_offset,
                                %reason,
                                "the log ends here: the bytes after it are not the next frame (left over from the segment's earlier use, or a frame whose start never reached the disk); nothing from this byte on was committed"
                            );
                        }
                    }
                    seg.set_visible_end(scan.end_pos);
                    tail_next = scan.next_offset;
                } else {
                    tracing::warn!(segment = %path.display(), "segment not sealed although a newer one exists; sealing it after its last valid frame");
                    seg.write_seal(Seal {
                        end_pos: scan.end_pos as u64,
                        next_offset: scan.next_offset,
                    })?;
                }
                // The scan read the whole segment through the map.
                seg.release_pages(0, seg.len());
            }
            segments.push(seg);
        }

        let epoch = max_epoch
            .checked_add(1)
            .ok_or_else(|| WalError::BadOption("epoch counter exhausted".into()))?;

        let (mut write_pos, mut next_offset) = match segments.last() {
            Some(s) => match s.seal() {
                Some(seal) => (seal.end_pos as usize, seal.next_offset),
                None => (s.visible_end(), tail_next),
            },
            None => (SEGMENT_HEADER_LEN, 0),
        };
        let claims: Vec<Claim> = consumers
            .iter()
            .map(|(name, c)| Claim {
                consumer: name,
                path: c.file.path(),
                offset: c.position.offset,
                written_for: c.written_for,
            })
            .collect();
        let Identity {
            id: log_id,
            born_with_id,
        } = identity::resolve(
            meta.as_ref().map(|(_, p)| p.as_slice()),
            new_log,
            segments.iter().map(|s| (s.path(), s.log_id())),
            &claims,
            next_offset,
            &dir,
        )?;
        drop(claims);
        // What recovery found may sit only in the page cache (after a process crash): make it
        // durable before anyone is told it is committed.
        if let Some(s) = segments.last() {
            s.sync(SEGMENT_HEADER_LEN, write_pos, opts.sync_method)?;
        }
        let max_checkpoint = consumers
            .values()
            .map(|c| c.position.offset)
            .max()
            .unwrap_or(0);
        let mut need_segment = segments.is_empty();
        if max_checkpoint > next_offset {
            // An error, not a warning: the log's id vouches for the checkpoint
            // (`identity::resolve`), so events the consumer had acknowledged are missing from the
            // log's end: its newest files were lost or replaced by older ones.
            tracing::error!(
                checkpoint = max_checkpoint,
                log_end = next_offset,
                log = %dir.display(),
                checkpoint_dir = %checkpoint_dir.display(),
                "a consumer checkpoint is past the end of the log: events it had acknowledged are missing from the log (its newest files lost, or older ones restored?); new events start after it so no offset is reused"
            );
            if let Some(s) = segments.last()
                && s.seal().is_none()
            {
                s.write_seal(Seal {
                    end_pos: write_pos as u64,
                    next_offset,
                })?;
            }
            next_offset = max_checkpoint;
            need_segment = true;
        }
        if need_segment {
            write_pos = SEGMENT_HEADER_LEN;
        }
        // The new epoch, and the end just verified and synced (or the empty segment about to be
        // made): before any frame is written, and before a new log's first segment, so that a
        // segment without wal.meta always means damage from outside, never a first open cut
        // short. The record names the new segment before it exists; until it does, no segment
        // has that base and the record checks nothing.
        let end = checkpoint::VerifiedEnd {
            base: match segments.last() {
                Some(s) if !need_segment => s.base_offset(),
                _ => next_offset,
            },
            end_pos: write_pos as u64,
            next_offset,
        };
        let record = checkpoint::encode_meta_verified(epoch, end, log_id, born_with_id);
        match meta {
            Some((mut f, _)) => f.write(&record)?,
            None => drop(SlotFile::create(&meta_path, META_MAGIC, &record)?),
        }
        if need_segment {
            let available =
                segment::available_space(&dir).map_err(WalError::io("statvfs", &dir))?;
            check_space(available, 0, opts.segment_size, opts.min_free_bytes, &dir)?;
            segments.push(Segment::create(
                &dir,
                next_offset,
                opts.segment_size,
                None,
                log_id,
            )?);
        }

        // Positions in the byte stream, for byte-capacity accounting.
        let mut logical = 0u64;
        let mut map = BTreeMap::new();
        for mut seg in segments {
            seg.logical_start = logical;
            let end = seg
                .seal()
                .map(|s| s.end_pos as usize)
                .unwrap_or(seg.visible_end());
            logical += (end - SEGMENT_HEADER_LEN) as u64;
            map.insert(seg.base_offset(), Arc::new(seg));
        }
        let active = match map.values().next_back() {
            Some(s) => s.clone(),
            None => unreachable!("a segment was created above when none existed"),
        };
        let written_to = if need_segment {
            SEGMENT_HEADER_LEN
        } else {
            active.len()
        };

        let inner = Arc::new(Inner {
            dir: dir.clone(),
            checkpoint_dir,
            epoch,
            log_id,
            born_with_id,
            _lock: lock,
            checkpoint_lock: Mutex::new(checkpoint_lock),
            segments: RwLock::new(map),
            writer: Mutex::new(Writer {
                active,
                write_pos,
                pending: Vec::new(),
                synced_pos: write_pos,
                next_offset,
                syncs_claimed: 0,
                leaders_named: 0,
                written_to,
                no_space: None,
            }),
            syncs_done: AtomicU64::new(0),
            sync_words: [AtomicU32::new(0), AtomicU32::new(0)],
            poisoned: Mutex::new(None),
            is_poisoned: AtomicBool::new(false),
            #[cfg(test)]
            panic_next_sync: AtomicBool::new(false),
            #[cfg(test)]
            fake_available: Mutex::new(None),
            durable: AtomicU64::new(next_offset),
            consumers: Mutex::new(
                consumers
                    .into_iter()
                    .map(|(k, v)| (k, Arc::new(Mutex::new(v))))
                    .collect(),
            ),
            floor: AtomicU64::new(0),
            floor_logical: AtomicU64::new(0),
            spares: Mutex::new(usable_spares(
                listing.spares,
                opts.segment_size,
                opts.spare_segments,
            )),
            skipped_frames: AtomicU64::new(0),
            skipped_events: AtomicU64::new(0),
            stop_syncer: Arc::new(StopSignal::default()),
            syncer: Mutex::new(None),
            opts,
        });
        inner.update_floor_and_retain()?;
        if let SyncPolicy::Interval(every) = inner.opts.sync {
            let weak = Arc::downgrade(&inner);
            let stop = inner.stop_syncer.clone();
            let handle = std::thread::Builder::new()
                .name("wal-sync".into())
                .spawn(move || interval_syncer(weak, stop, every))
                .map_err(WalError::io("start sync thread for", &dir))?;
            *inner.syncer.lock() = Some(handle);
        }
        tracing::debug!(dir = %dir.display(), epoch, next_offset, "log open");
        Ok(Wal { inner })
    }

    /// Appends one frame holding `events` (one put transaction: all or nothing across a crash).
    /// The events are not visible to readers, nor durable, until a commit (or the sealing of a
    /// full segment) syncs them.
    pub fn append(&self, events: &[Event]) -> Result<Appended> {
        self.append_and_ticket(events, false).map(|(a, _)| a)
    }

    /// `append`, and if `commit` is set, the ticket for the sync that covers the new frame,
    /// taken under the same hold of the writer lock.
    fn append_and_ticket(
        &self,
        events: &[Event],
        commit: bool,
    ) -> Result<(Appended, Option<Ticket>)> {
        let inner = &*self.inner;
        let len = frame::encoded_frame_len(events)?;
        // Retrying could never succeed: refuse for good rather than as "full".
        if let Some(limit) = inner.opts.max_bytes
            && len as u64 > limit
        {
            return Err(WalError::TooLarge {
                size: len as u64,
                max: limit,
            });
        }
        inner.check_poisoned()?;
        let n = events.len() as u64;
        let mut w = inner.writer.lock();
        // Offsets are never reused, so they can run out (a checkpoint near 2^64 can set them
        // there): refuse rather than wrap.
        let next = w
            .next_offset
            .checked_add(n)
            .ok_or(WalError::OffsetsExhausted {
                next: w.next_offset,
                count: n,
            })?;
        if let Some(limit) = inner.opts.max_events {
            let would_be = next - inner.floor.load(Ordering::Acquire).min(w.next_offset);
            if would_be > limit {
                return Err(WalError::Full {
                    what: "events",
                    would_be,
                    limit,
                });
            }
        }
        if let Some(limit) = inner.opts.max_bytes {
            let end = w.active.logical_start + (w.write_pos - SEGMENT_HEADER_LEN) as u64;
            let would_be = end + len as u64 - inner.floor_logical.load(Ordering::Acquire).min(end);
            if would_be > limit {
                return Err(WalError::Full {
                    what: "bytes",
                    would_be,
                    limit,
                });
            }
        }
        if w.active.seal().is_some() || w.write_pos + len > w.active.len() {
            inner.roll(&mut w, len)?;
        }
        let first_offset = w.next_offset;
        if inner.opts.sync_method.writes_through_map() {
            // SAFETY: we hold the writer lock, so this is the only writer. The range starts at
            // `write_pos`, which is at or above the active segment's `visible_end` (visibility is
            // only ever raised to a position the writer has passed), and ends inside the segment
            // (checked just above, after any roll). No reader looks above `visible_end`.
            let buf = unsafe { w.active.writable_slice(w.write_pos, len) };
            frame::encode_frame(buf, first_offset, inner.epoch, events);
        } else {
            let start = w.pending.len();
            w.pending.resize(start + len, 0);
            frame::encode_frame(&mut w.pending[start..], first_offset, inner.epoch, events);
        }
        w.write_pos += len;
        w.next_offset = next;
        if w.pending.len() >= PENDING_FLUSH {
            inner.write_pending(&mut w)?;
        }
        let appended = Appended {
            first_offset,
            next_offset: w.next_offset,
        };
        let ticket = if commit {
            inner.ticket(&mut w, appended.next_offset)
        } else {
            None
        };
        Ok((appended, ticket))
    }

    /// Makes every frame appended before this call durable and visible to readers (frames can
    /// also become durable and visible earlier, when a full segment is sealed). Under
    /// [`SyncPolicy::EveryCommit`] it returns once they are on disk, sharing one sync with
    /// concurrent callers; under [`SyncPolicy::Interval`] it returns at once.
    pub fn commit(&self) -> Result<()> {
        match self.inner.opts.sync {
            SyncPolicy::Interval(_) => self.inner.check_poisoned(),
            SyncPolicy::EveryCommit => self.inner.sync_all(),
        }
    }

    /// `append` then `commit`.
    pub fn append_commit(&self, events: &[Event]) -> Result<Appended> {
        match self.inner.opts.sync {
            SyncPolicy::Interval(_) => {
                let a = self.append(events)?;
                self.inner.check_poisoned()?;
                Ok(a)
            }
            // Only this append needs to be covered: no second trip through the writer lock.
            SyncPolicy::EveryCommit => {
                let (a, ticket) = self.append_and_ticket(events, true)?;
                if let Some(ticket) = ticket {
                    self.inner.wait(ticket)?;
                }
                Ok(a)
            }
        }
    }

    /// Syncs now whatever the policy (used at close and by the interval syncer).
    pub fn sync(&self) -> Result<()> {
        self.inner.sync_all()
    }

    /// A reader for consumer `name`, positioned at its checkpoint. A consumer seen for the first
    /// time is registered (durably) at the oldest retained event, and from then on holds back
    /// retention until it acknowledges.
    pub fn reader(&self, name: &str) -> Result<Reader> {
        let position = self.inner.register(name)?;
        Ok(Reader::new(self.inner.clone(), name.to_owned(), position))
    }

    /// Durably records that consumer `name` is done with every event before `position.offset`,
    /// then retires segments no consumer needs. Positions never move backwards: an older one
    /// is ignored.
    pub fn ack(&self, name: &str, position: Position) -> Result<()> {
        self.inner.ack(name, position)
    }

    /// Forgets a consumer, so it no longer holds back retention.
    pub fn remove_consumer(&self, name: &str) -> Result<()> {
        let removed = self.inner.consumers.lock().remove(name);
        if let Some(c) = removed {
            let path = c.lock().file.path().to_owned();
            std::fs::remove_file(&path).map_err(WalError::io("remove", &path))?;
            durable_file::sync_parent_dir(&path)?;
        }
        self.inner.update_floor_and_retain()
    }

    /// The checkpointed position of a consumer, if it is registered.
    pub fn checkpoint(&self, name: &str) -> Option<Position> {
        let c = self.inner.consumers.lock().get(name).cloned();
        c.map(|c| c.lock().position)
    }

    /// The offset the next appended event will get.
    pub fn next_offset(&self) -> u64 {
        self.inner.writer.lock().next_offset
    }

    /// Every event below this offset is durable and visible to readers.
    pub fn durable_offset(&self) -> u64 {
        self.inner.durable.load(Ordering::Acquire)
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub fn options(&self) -> &WalOptions {
        &self.inner.opts
    }

    pub fn stats(&self) -> WalStats {
        let inner = &*self.inner;
        let (next_offset, write_end) = {
            let w = inner.writer.lock();
            (
                w.next_offset,
                w.active.logical_start + (w.write_pos - SEGMENT_HEADER_LEN) as u64,
            )
        };
        let (segments, first_offset, disk_bytes) = {
            let segs = inner.segments.read();
            (
                segs.len(),
                segs.keys().next().copied().unwrap_or(next_offset),
                segs.values().map(|s| s.len() as u64).sum::<u64>(),
            )
        };
        // Spares are kept only at the configured segment size (`usable_spares`).
        let spare_bytes = inner.spares.lock().len() as u64 * inner.opts.segment_size;
        let disk_bytes = disk_bytes + spare_bytes;
        let consumers: Vec<ConsumerStats> = {
            let cs = inner.consumers.lock();
            cs.iter()
                .map(|(name, c)| {
                    let offset = c.lock().position.offset;
                    ConsumerStats {
                        name: name.clone(),
                        offset,
                        lag: next_offset.saturating_sub(offset),
                    }
                })
                .collect()
        };
        let floor = inner.floor.load(Ordering::Acquire).min(next_offset);
        WalStats {
            segments,
            first_offset,
            next_offset,
            durable_offset: self.durable_offset(),
            held_events: next_offset - floor,
            held_bytes: write_end.saturating_sub(inner.floor_logical.load(Ordering::Acquire)),
            disk_bytes,
            epoch: inner.epoch,
            consumers,
            skipped_frames: inner.skipped_frames.load(Ordering::Relaxed),
            skipped_events: inner.skipped_events.load(Ordering::Relaxed),
        }
    }

    /// Syncs and closes this handle. The log stays open while other handles or readers exist.
    pub fn close(self) -> Result<()> {
        self.sync()
    }
}

impl Inner {
    /// Refuses every write and commit from now on, and wakes every sleeping committer to see it
    /// (a leader that finds the log poisoned returns without running its sync).
    /// Returns the error every later call gets, for the call that failed: whatever `e` was (a
    /// disk full is no longer back-pressure once the log refuses everything).
    fn poison(&self, what: &str, e: &WalError) -> WalError {
        tracing::error!(error = %e, "{what}; the log refuses further writes");
        *self.poisoned.lock() = Some(e.to_string());
        self.is_poisoned.store(true, Ordering::SeqCst);
        self.sync_words.iter().for_each(wake_all);
        WalError::Poisoned(e.to_string())
    }

    fn check_poisoned(&self) -> Result<()> {
        if !self.is_poisoned.load(Ordering::Acquire) {
            return Ok(());
        }
        let why = self.poisoned.lock().clone().unwrap_or_default();
        Err(WalError::Poisoned(why))
    }

    /// The ticket of a committer that needs everything below `target` durable, or `None` if it
    /// already is. Called under the writer lock, which orders it with the claims of syncs.
    fn ticket(&self, w: &mut Writer, target: u64) -> Option<Ticket> {
        if self.durable.load(Ordering::Acquire) >= target {
            return None;
        }
        let sync = w.syncs_claimed + 1;
        let lead = w.leaders_named < sync;
        if lead {
            w.leaders_named = sync;
        }
        Some(Ticket { target, sync, lead })
    }

    /// Makes everything appended so far durable.
    fn sync_all(&self) -> Result<()> {
        let ticket = {
            let mut w = self.writer.lock();
            let target = w.next_offset;
            self.ticket(&mut w, target)
        };
        match ticket {
            Some(ticket) => self.wait(ticket),
            None => self.check_poisoned(),
        }
    }

    /// Group commit: returns once the sync named by `ticket` (or a sealed segment) has made its
    /// frames durable.
    ///
    /// Syncs are numbered and run one at a time, in order, each claiming everything appended
    /// before it starts. The first committer to need sync `n` leads it: it sleeps until sync
    /// `n - 1` is done, then runs `n`. The others that need `n` sleep until `n` is done. Both
    /// sleep on the futex word of the sync they wait for, so one `FUTEX_WAKE` wakes exactly the
    /// committers a sync covered together with the next leader, while those already waiting
    /// for the sync after sleep on the other word. Waking them one by one instead (one system
    /// call each, as parking_lot does) let the threads it woke preempt the waking leader dozens
    /// of times per sync, and the next sync waited for all of it (README, "Group commit").
    fn wait(&self, ticket: Ticket) -> Result<()> {
        if !ticket.lead {
            return self.await_sync(ticket.sync, ticket.target);
        }
        let _unwinding = PoisonOnUnwind::new(self);
        self.await_sync(ticket.sync - 1, u64::MAX)?;
        // Let the committers the previous sync just woke append before this one claims:
        // on a busy machine this raises the commits per sync; alone it costs a no-op syscall.
        std::thread::yield_now();
        match self.sync_appended(ticket.sync) {
            Ok(()) => {
                self.syncs_done.store(ticket.sync, Ordering::SeqCst);
                wake_all(&self.sync_words[(ticket.sync % 2) as usize]);
                Ok(())
            }
            // A failed write of the pending frames has poisoned the log already.
            Err(e) if self.is_poisoned.load(Ordering::Acquire) => Err(e),
            // After a failed fsync the kernel may have dropped the dirty pages: retrying could
            // report success for data that is gone. Refuse everything from now on.
            Err(e) => Err(self.poison("sync failed", &e)),
        }
    }

    /// Sleeps until sync `n` is done, or everything below `target` is durable (sealing a full
    /// segment syncs it outside the numbered syncs), or the log is poisoned.
    fn await_sync(&self, n: u64, target: u64) -> Result<()> {
        let word = &self.sync_words[(n % 2) as usize];
        loop {
            // The word before the conditions: what a waker stored before bumping it is then
            // seen below, and a bump after this load makes the futex wait return at once.
            let seen = word.load(Ordering::SeqCst);
            self.check_poisoned()?;
            if self.syncs_done.load(Ordering::SeqCst) >= n
                || self.durable.load(Ordering::Acquire) >= target
            {
                return Ok(());
            }
            // Woken, EAGAIN (the word moved) or EINTR: look again.
            let _ = futex::wait(word, futex::Flags::PRIVATE, seen, None);
        }
    }

    /// Writes the frames waiting in `pending` to the active segment. A failed write poisons the
    /// log: those frames were appended (their offsets handed out) and can no longer be stored.
    fn write_pending(&self, w: &mut Writer) -> Result<()> {
        if w.pending.is_empty() {
            return Ok(());
        }
        let at = w.write_pos - w.pending.len();
        if let Err(e) = w.active.write_at(at, &w.pending) {
            return Err(self.poison("writing appended frames failed", &e));
        }
        w.pending.clear();
        if w.pending.capacity() > 2 * PENDING_FLUSH {
            w.pending = Vec::new();
        }
        Ok(())
    }

    /// Writes zeros ahead of the last frame when a sync's claim is small and the blocks ahead
    /// were never written.
    ///
    /// `fallocate` leaves a new segment's blocks *unwritten*; the first write to a block turns
    /// it into a written one, and the `fdatasync` that follows must then also write the
    /// file's block map. A group commit of ~50 small events crossed into new blocks on every
    /// sync and paid that each time: 255-290 us per `fdatasync` of ~6.5 KiB against 140-185
    /// us on blocks written before (README, "Group commit"). Zeroing a stretch ahead pays it
    /// once per stretch. Large claims convert plenty of blocks per sync already, and a writer
    /// at full speed would only write everything twice, so they skip this. A reused spare's
    /// blocks are all written. The zeros lie past the last frame, where recovery reads them as
    /// unwritten space, as it reads a fresh segment. Only an optimisation: if the write fails,
    /// the frames will convert the blocks themselves.
    fn zero_ahead(&self, w: &mut Writer) {
        static ZEROS: [u8; ZERO_AHEAD] = [0; ZERO_AHEAD];
        w.written_to = w.written_to.max(w.write_pos);
        let small = w.write_pos - w.synced_pos < ZERO_AHEAD / 4;
        if !small || w.written_to >= w.write_pos + ZERO_AHEAD / 2 {
            return;
        }
        let end = (w.write_pos + ZERO_AHEAD).min(w.active.len());
        if end > w.written_to {
            if let Err(e) = w
                .active
                .write_at(w.written_to, &ZEROS[..end - w.written_to])
            {
                tracing::warn!(error = %e, "writing zeros ahead of the log failed; carrying on");
            }
            w.written_to = end;
        }
    }

    /// Runs sync number `n`: syncs what the writer has appended so far and raises the durable
    /// watermark.
    fn sync_appended(&self, n: u64) -> Result<()> {
        let (seg, from, to, upto) = {
            let mut w = self.writer.lock();
            debug_assert_eq!(w.syncs_claimed + 1, n, "syncs are claimed in order");
            w.syncs_claimed = n;
            self.write_pending(&mut w)?;
            self.zero_ahead(&mut w);
            let claim = (w.active.clone(), w.synced_pos, w.write_pos, w.next_offset);
            w.synced_pos = w.write_pos;
            claim
        };
        #[cfg(test)]
        if self.panic_next_sync.swap(false, Ordering::SeqCst) {
            panic!("injected panic in sync {n}");
        }
        seg.sync(from, to, self.opts.sync_method)?;
        // A segment deleted from outside (the data directory removed under the agent) takes
        // writes and syncs as if nothing happened, and loses them at the next open: such a
        // commit must fail, and the log (poisoned by the caller) refuse further puts, rather
        // than acknowledge events that cannot survive a restart.
        if seg.unlinked() {
            return Err(WalError::io("sync", seg.path())(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the segment file was deleted from outside the log, with what was appended \
                 to it",
            )));
        }
        // Watermark first: a reader that sees the newly visible frames may ack them at once.
        self.durable.fetch_max(upto, Ordering::Release);
        seg.set_visible_end(to);
        Ok(())
    }

    /// Seals the full active segment and starts the next one at the writer's next offset,
    /// with room for a frame of `frame_len` bytes.
    ///
    /// A frame larger than a whole segment gets a segment of its own, just large enough
    /// (wal-format.md §2): a put transaction is one frame, and refusing it would leave its
    /// source retrying for ever over a sizing setting. Flume's own log files likewise pass
    /// `maxFileSize` by the batch that crosses it. Such a segment is deleted, not kept as a
    /// spare, once consumed.
    fn roll(&self, w: &mut Writer, frame_len: usize) -> Result<()> {
        if w.active.seal().is_none() {
            self.write_pending(w)?;
            // fdatasync of the whole file, not just [synced_pos, write_pos): a commit leader may
            // have claimed a range it has not finished syncing. After this everything appended
            // is durable; raise the watermark before the seal makes those frames visible.
            // A failed sync here poisons the log, for the reason given in `wait`.
            let synced = w
                .active
                .sync(SEGMENT_HEADER_LEN, w.write_pos, SyncMethod::Fdatasync);
            if let Err(e) = synced {
                return Err(self.poison("sync before sealing a segment failed", &e));
            }
            self.durable.fetch_max(w.next_offset, Ordering::Release);
            let sealed = w.active.write_seal(Seal {
                end_pos: w.write_pos as u64,
                next_offset: w.next_offset,
            });
            if let Err(e) = sealed {
                return Err(self.poison("sealing a segment failed", &e));
            }
            w.synced_pos = w.write_pos;
        }
        let size = self
            .opts
            .segment_size
            .max(((SEGMENT_HEADER_LEN + frame_len) as u64).div_ceil(4096) * 4096);
        let min_free = self.opts.min_free_bytes;
        let spare = if size == self.opts.segment_size {
            self.spares.lock().pop()
        } else {
            None
        };
        if spare.is_none() {
            if let Some((at, op, path, errno)) = &w.no_space
                && at.elapsed() < NO_SPACE_RETRY
            {
                return Err(WalError::NoSpace {
                    op,
                    path: path.clone(),
                    error: std::io::Error::from_raw_os_error(*errno),
                });
            }
            // A segment every consumer is done with is retired once it is no longer the newest,
            // which this roll makes it: its space counts as free. Otherwise a drained log whose
            // only segment is full would need room for two segments, and refuse every put for
            // good on a disk with less.
            let consumed = self.floor.load(Ordering::Acquire) >= w.next_offset;
            let reclaimed = if consumed { w.active.len() as u64 } else { 0 };
            check_space(
                self.available_space()?,
                reclaimed,
                size,
                min_free,
                &self.dir,
            )?;
        }
        let mut reused = spare.is_some();
        let created = match Segment::create(
            &self.dir,
            w.next_offset,
            size,
            spare.as_deref(),
            self.log_id,
        ) {
            Err(e) if spare.is_some() => {
                tracing::warn!(error = %e, "could not reuse a spare segment; allocating a new one");
                reused = false;
                Segment::create(&self.dir, w.next_offset, size, None, self.log_id)
            }
            other => other,
        };
        let mut seg = match created {
            Ok(seg) => {
                w.no_space = None;
                seg
            }
            Err(e) => {
                if let WalError::NoSpace { op, path, error } = &e
                    && let Some(errno) = error.raw_os_error()
                {
                    w.no_space = Some((Instant::now(), *op, path.clone(), errno));
                }
                return Err(e);
            }
        };
        seg.logical_start = w.active.logical_start + (w.write_pos - SEGMENT_HEADER_LEN) as u64;
        let seg = Arc::new(seg);
        self.segments.write().insert(seg.base_offset(), seg.clone());
        w.active = seg;
        w.write_pos = SEGMENT_HEADER_LEN;
        w.synced_pos = SEGMENT_HEADER_LEN;
        w.written_to = if reused {
            w.active.len()
        } else {
            SEGMENT_HEADER_LEN
        };
        Ok(())
    }

    fn register(&self, name: &str) -> Result<Position> {
        if !checkpoint::valid_consumer_name(name) {
            return Err(WalError::BadConsumerName(name.to_owned()));
        }
        let mut consumers = self.consumers.lock();
        if let Some(c) = consumers.get(name) {
            return Ok(c.lock().position);
        }
        let position = {
            let segs = self.segments.read();
            let first = segs.values().next();
            Position {
                offset: first.map(|s| s.base_offset()).unwrap_or(0),
                segment: first.map(|s| s.base_offset()).unwrap_or(0),
                frame_pos: SEGMENT_HEADER_LEN as u64,
            }
        };
        let path = self.checkpoint_dir.join(format!("{name}.ckpt"));
        let end = self.durable.load(Ordering::Acquire);
        if end > position.offset {
            // A log holding events but no checkpoint for this consumer: a new consumer, or a
            // checkpoint lost (deleted, or a checkpoint directory that changed). Either way,
            // everything retained is read again, which the operator should hear of.
            tracing::warn!(
                consumer = name,
                checkpoint = %path.display(),
                log = %self.dir.display(),
                from = position.offset,
                to = end,
                "no checkpoint for this consumer: it starts at the oldest retained event, so \
                 the {} events retained are delivered (again, if it had a checkpoint before)",
                end - position.offset
            );
        }
        let file = SlotFile::create(
            &path,
            CHECKPOINT_MAGIC,
            &checkpoint::encode_checkpoint(&Checkpoint {
                name: name.to_owned(),
                position,
                log: Some(self.log_id),
            }),
        )?;
        consumers.insert(
            name.to_owned(),
            Arc::new(Mutex::new(Consumer {
                file,
                position,
                written_for: Some(self.log_id),
            })),
        );
        drop(consumers);
        self.update_floor_and_retain()?;
        Ok(position)
    }

    fn ack(&self, name: &str, position: Position) -> Result<()> {
        let consumer = self
            .consumers
            .lock()
            .get(name)
            .cloned()
            .ok_or_else(|| WalError::BadConsumerName(name.to_owned()))?;
        {
            let mut c = consumer.lock();
            if position.offset <= c.position.offset {
                return Ok(());
            }
            let durable = self.durable.load(Ordering::Acquire);
            if position.offset > durable {
                return Err(WalError::BadOption(format!(
                    "consumer {name} acknowledged offset {} beyond the committed end {durable}",
                    position.offset
                )));
            }
            c.file.write(&checkpoint::encode_checkpoint(&Checkpoint {
                name: name.to_owned(),
                position,
                log: Some(self.log_id),
            }))?;
            c.position = position;
        }
        self.relock_checkpoint_dir();
        // The acknowledgement is durable now: a segment that could not be deleted costs disk
        // space, not correctness, and failing the ack would make the caller deliver again
        // what the checkpoint already covers. The file is retired at the next open.
        if let Err(e) = self.update_floor_and_retain() {
            tracing::error!(error = %e, dir = %self.dir.display(), "a segment every consumer is past could not be retired; it stays on disk until the next open");
        }
        Ok(())
    }

    /// Takes the checkpoint directory's lock again if its file was deleted (the directory
    /// removed under the log and made again by the checkpoint write): without it, a second
    /// log could take the same directory. One `fstat` per acknowledgement.
    fn relock_checkpoint_dir(&self) {
        use std::os::unix::fs::MetadataExt;
        let mut held = self.checkpoint_lock.lock();
        let Some(lock) = held.as_ref() else { return };
        if lock.metadata().is_ok_and(|m| m.nlink() > 0) {
            return;
        }
        match lock_dir(&self.checkpoint_dir, "checkpoint directory") {
            Ok(file) => *held = Some(file),
            Err(e) => {
                // Said once: the next acknowledgements would only repeat it.
                *held = None;
                tracing::error!(error = %e, dir = %self.checkpoint_dir.display(), "the checkpoint directory's lock file was deleted and cannot be taken again")
            }
        }
    }

    /// Recomputes the lowest checkpoint and retires the sealed segments wholly below it. With no
    /// consumer registered nothing is retired.
    fn update_floor_and_retain(&self) -> Result<()> {
        let floor = {
            let cs = self.consumers.lock();
            cs.values().map(|c| c.lock().position).min()
        };
        let victims: Vec<Arc<Segment>> = {
            let mut segs = self.segments.write();
            let first = segs.values().next().map(|s| s.base_offset()).unwrap_or(0);
            let floor = floor.unwrap_or(Position {
                offset: first,
                segment: first,
                frame_pos: SEGMENT_HEADER_LEN as u64,
            });
            let last = segs.keys().next_back().copied();
            let doomed: Vec<u64> = segs
                .values()
                .filter(|s| {
                    Some(s.base_offset()) != last
                        && s.seal()
                            .is_some_and(|seal| seal.next_offset <= floor.offset)
                })
                .map(|s| s.base_offset())
                .collect();
            let victims = doomed.iter().filter_map(|b| segs.remove(b)).collect();
            // Byte position of the floor in the log stream.
            let logical = match segs.get(&floor.segment) {
                Some(s) if floor.frame_pos as usize >= SEGMENT_HEADER_LEN => {
                    s.logical_start + (floor.frame_pos as usize - SEGMENT_HEADER_LEN) as u64
                }
                _ => segs.values().next().map(|s| s.logical_start).unwrap_or(0),
            };
            self.floor.store(floor.offset.max(first), Ordering::Release);
            self.floor_logical.store(logical, Ordering::Release);
            victims
        };
        let mut deleted = false;
        for seg in victims {
            deleted |= self.retire(seg)?;
        }
        // One fsync for the batch: unlinks left unsynced come back after a power cut, as
        // segments already consumed that hold their space until the next open (audit 40 F1).
        if deleted {
            durable_file::sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Free bytes on the log's filesystem, for this user.
    fn available_space(&self) -> Result<u64> {
        #[cfg(test)]
        if let Some(free) = *self.fake_available.lock() {
            return Ok(free);
        }
        segment::available_space(&self.dir).map_err(WalError::io("statvfs", &self.dir))
    }

    /// Deletes a segment file, or keeps it as a spare if nothing still maps it. A segment still
    /// referenced (a reader, or an event body borrowed from its map) is only unlinked: its
    /// mapping stays valid until the last reference goes. Returns whether it unlinked a file,
    /// which the caller makes durable (a spare's rename is made durable here).
    fn retire(&self, seg: Arc<Segment>) -> Result<bool> {
        let path = seg.path().to_owned();
        let len = seg.len() as u64;
        let mut spares = self.spares.lock();
        // A spare keeps its space taken: on a disk already under the minimum free space (a roll
        // that counted this segment's space as free, above) it is deleted instead.
        let reusable = len == self.opts.segment_size
            && spares.len() < self.opts.spare_segments
            && self
                .available_space()
                .is_ok_and(|free| free >= self.opts.min_free_bytes);
        match Arc::try_unwrap(seg) {
            Ok(seg) if reusable => {
                drop(seg);
                let spare = path.with_extension(SPARE_EXT);
                if let Err(e) = std::fs::rename(&path, &spare) {
                    if e.kind() == std::io::ErrorKind::NotFound {
                        tracing::warn!(segment = %path.display(), "segment to retire was already deleted from outside the log");
                        return Ok(false);
                    }
                    return Err(WalError::io("rename", &path)(e));
                }
                // The new name must be durable before the spare's header can be rewritten for
                // reuse: otherwise a power cut could leave a file named as the old segment with
                // the new segment's header, which open refuses (found by tests/power_loss.rs).
                durable_file::sync_parent_dir(&spare)?;
                spares.push(spare);
                tracing::debug!(segment = %path.display(), "segment retired as a spare");
                Ok(false)
            }
            _ => match std::fs::remove_file(&path) {
                Ok(()) => {
                    tracing::debug!(segment = %path.display(), "segment deleted");
                    Ok(true)
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    tracing::warn!(segment = %path.display(), "segment to retire was already deleted from outside the log");
                    Ok(false)
                }
                Err(e) => Err(WalError::io("remove", &path)(e)),
            },
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        *self.stop_syncer.stopped.lock() = true;
        self.stop_syncer.wake.notify_all();
        if let Some(h) = self.syncer.lock().take()
            && h.thread().id() != std::thread::current().id()
        {
            let _ = h.join();
        }
        if let Err(e) = self.sync_all() {
            tracing::error!(error = %e, dir = %self.dir.display(), "final sync at close failed");
            return;
        }
        self.record_clean_end();
    }
}

impl Inner {
    /// Records in `wal.meta`, after the final sync of a clean close, the end of the log as the
    /// verified end (wal-format.md §5.3): every frame below it is durable, as after an open's
    /// step 6. The next open then knows that bytes past it which are not a frame are leftovers
    /// (a reused spare holds its earlier life's frames there), not a torn write, and that a scan
    /// stopping short of it met damage. Best effort: without it the next open logs such bytes
    /// as a torn tail, as after a crash.
    fn record_clean_end(&self) {
        if self.is_poisoned.load(Ordering::Acquire) {
            return;
        }
        let end = {
            let w = self.writer.lock();
            checkpoint::VerifiedEnd {
                base: w.active.base_offset(),
                end_pos: w.write_pos as u64,
                next_offset: w.next_offset,
            }
        };
        let path = self.dir.join(META_FILE);
        let record =
            checkpoint::encode_meta_verified(self.epoch, end, self.log_id, self.born_with_id);
        let written = SlotFile::open(&path, META_MAGIC).and_then(|meta| match meta {
            Some((mut f, _)) => f.write(&record),
            None => Ok(()),
        });
        if let Err(e) = written {
            tracing::debug!(error = %e, path = %path.display(), "could not record the end at close");
        }
    }
}

/// Poisons the log if a commit leader unwinds out of `Inner::wait`: the committers waiting
/// for its sync, and every later leader, would otherwise sleep for ever. Whether the claimed
/// frames reached the disk is then unknown, as after a failed sync.
struct PoisonOnUnwind<'a> {
    inner: &'a Inner,
    /// A leader already unwinding when it started (a commit from a destructor) is not the
    /// leader's failure.
    was_panicking: bool,
}

impl<'a> PoisonOnUnwind<'a> {
    fn new(inner: &'a Inner) -> Self {
        PoisonOnUnwind {
            inner,
            was_panicking: std::thread::panicking(),
        }
    }
}

impl Drop for PoisonOnUnwind<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.was_panicking {
            let e = WalError::Io {
                op: "sync",
                path: self.inner.dir.clone(),
                error: std::io::Error::other("the committing thread panicked during the sync"),
            };
            self.inner.poison("a commit leader panicked", &e);
        }
    }
}

/// Bumps a futex word and wakes everyone sleeping on it.
fn wake_all(word: &AtomicU32) {
    word.fetch_add(1, Ordering::SeqCst);
    // The count is an `int` to the kernel: "all" is i32::MAX, not u32::MAX.
    let _ = futex::wake(word, futex::Flags::PRIVATE, i32::MAX as u32);
}

fn interval_syncer(inner: Weak<Inner>, stop: Arc<StopSignal>, every: Duration) {
    loop {
        {
            let mut stopped = stop.stopped.lock();
            if !*stopped {
                stop.wake.wait_for(&mut stopped, every);
            }
            if *stopped {
                return;
            }
        }
        // Hold the log only while syncing, so dropping the last handle closes it promptly.
        let Some(strong) = inner.upgrade() else {
            return;
        };
        if let Err(e) = strong.sync_all() {
            tracing::error!(error = %e, "periodic sync failed");
            return;
        }
    }
}

fn validate_options(opts: &WalOptions) -> Result<()> {
    if opts.segment_size < segment::MIN_SEGMENT_LEN || !opts.segment_size.is_multiple_of(4096) {
        return Err(WalError::BadOption(format!(
            "segment size {} must be a multiple of 4096 and at least {}",
            opts.segment_size,
            segment::MIN_SEGMENT_LEN
        )));
    }
    if let SyncPolicy::Interval(d) = opts.sync
        && d.is_zero()
    {
        return Err(WalError::BadOption("sync interval must be positive".into()));
    }
    Ok(())
}

/// Whether `a` and `b` name one directory (through symlinks or `..` too).
fn same_dir(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Takes the directory's lock file, naming the holder's pid if another process has it; `what`
/// says what the directory holds, for that error.
fn lock_dir(dir: &Path, what: &'static str) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(WalError::io("open lock file", &path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            return Err(WalError::Locked {
                what,
                path: dir.to_owned(),
                pid: if pid.is_empty() {
                    "unknown".into()
                } else {
                    pid.to_owned()
                },
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(WalError::io("lock", &path)(e)),
    }
    file.set_len(0)
        .and_then(|_| file.write_all(format!("{}\n", std::process::id()).as_bytes()))
        .map_err(WalError::io("write lock file", &path))?;
    Ok(file)
}

struct Listing {
    segments: Vec<(u64, PathBuf)>,
    spares: Vec<PathBuf>,
}

/// Segment files in base-offset order, spare segments, and leftovers of an interrupted segment
/// creation (removed: they were never part of the log).
fn list_dir(dir: &Path) -> Result<Listing> {
    let mut segments = Vec::new();
    let mut spares = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(WalError::io("list", dir))? {
        let entry = entry.map_err(WalError::io("list", dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let path = entry.path();
        if let Some(base) = segment::parse_segment_file_name(name) {
            segments.push((base, path));
        } else if name.ends_with(".seg.tmp") {
            std::fs::remove_file(&path).map_err(WalError::io("remove", &path))?;
        } else if name.ends_with(&format!(".{SPARE_EXT}")) {
            spares.push(path);
        }
    }
    segments.sort();
    Ok(Listing { segments, spares })
}

/// Refuses a new segment of `size` bytes that would leave less than `min_free` bytes free,
/// counting `reclaimed` bytes about to be released as free. The segment itself must fit in
/// what is free now: the bytes to reclaim are released only after it exists (an allocation
/// tried without room would fill the disk for a moment and fail).
fn check_space(available: u64, reclaimed: u64, size: u64, min_free: u64, dir: &Path) -> Result<()> {
    if available < size || available.saturating_add(reclaimed) < size.saturating_add(min_free) {
        return Err(WalError::DiskFull {
            path: dir.to_owned(),
            available,
            needed: size.saturating_add(min_free),
            segment: size,
            min_free,
        });
    }
    Ok(())
}

/// The spares this log can reuse: those of the configured segment size, up to the configured
/// number. The others, left by a run with another `segment_size` or more spares, hold no data
/// (every event in them was consumed) and are deleted; reusing one would give a segment whose
/// length disagrees with its header.
fn usable_spares(spares: Vec<PathBuf>, segment_size: u64, keep: usize) -> Vec<PathBuf> {
    let mut usable = Vec::new();
    for path in spares {
        let len = std::fs::metadata(&path).map(|m| m.len()).ok();
        if len == Some(segment_size) && usable.len() < keep {
            usable.push(path);
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::info!(
                spare = %path.display(),
                bytes = len.unwrap_or(0),
                segment_size,
                "removed a spare segment of another size, or one more than spare segments allows"
            ),
            Err(e) => tracing::warn!(
                spare = %path.display(),
                error = %e,
                "cannot remove a spare segment this log will not reuse"
            ),
        }
    }
    usable
}

fn load_consumers(dir: &Path) -> Result<BTreeMap<String, Consumer>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(WalError::io("list", dir))? {
        let entry = entry.map_err(WalError::io("list", dir))?;
        let path = entry.path();
        let Some(name) = checkpoint::consumer_of_file(&path) else {
            continue;
        };
        let loaded = SlotFile::open(&path, CHECKPOINT_MAGIC)?;
        let decoded = loaded.map(|(f, p)| (f, checkpoint::decode_checkpoint(&p)));
        let why = match decoded {
            Some((file, Ok(c))) if c.name == name => {
                out.insert(
                    c.name,
                    Consumer {
                        file,
                        position: c.position,
                        written_for: c.log,
                    },
                );
                continue;
            }
            Some((_, Ok(c))) => format!(
                "it holds the checkpoint of consumer {:?} (copied or renamed?)",
                c.name
            ),
            Some((_, Err(e))) => format!("its payload is invalid: {e}"),
            None => "it has no valid slot".to_owned(),
        };
        // Losing nothing matters more than avoiding duplicates: restart this consumer from the
        // oldest retained event rather than guess.
        tracing::error!(
            file = %path.display(),
            "checkpoint file discarded: {why}; consumer {name} restarts from the oldest retained event"
        );
        std::fs::remove_file(&path).map_err(WalError::io("remove", &path))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Poisoning happens while syncs are in flight, with committers asleep in every state
    /// (covered by the running sync, waiting to lead the next, covered by the next). Each must
    /// wake and see the error: a leader that finds the log poisoned returns without running its
    /// sync, so nobody else would wake the committers that were waiting for it.
    #[test]
    fn poisoning_wakes_every_sleeping_committer() {
        const THREADS: usize = 32;
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
        let (tx, rx) = mpsc::channel();
        for _ in 0..THREADS {
            let (wal, tx) = (wal.clone(), tx.clone());
            std::thread::spawn(move || {
                let ev = [Event::new(vec![b'x'; 64])];
                let mut commits = 0u64;
                let err = loop {
                    match wal.append_commit(&ev) {
                        Ok(_) => commits += 1,
                        Err(e) => break e,
                    }
                };
                tx.send((commits, err)).unwrap();
            });
        }
        drop(tx);
        std::thread::sleep(Duration::from_millis(300));
        wal.inner
            .poison("test", &WalError::BadOption("injected".into()));
        let mut commits = 0;
        for _ in 0..THREADS {
            let (n, err) = rx
                .recv_timeout(Duration::from_secs(20))
                .expect("a committer slept through the poisoning");
            assert!(
                matches!(&err, WalError::Poisoned(why) if why.contains("injected")),
                "{err}"
            );
            commits += n;
        }
        assert!(
            commits > 0,
            "the committers were running when the log was poisoned"
        );
        assert!(matches!(wal.commit(), Err(WalError::Poisoned(_))));
    }

    /// A new log's first open writes wal.meta before it makes the first segment: a first open
    /// cut short there leaves a log the next open takes as it is, not a segment without
    /// wal.meta, which means damage from outside. The segment is made impossible with a size no
    /// filesystem has room for.
    #[test]
    fn a_new_log_has_wal_meta_before_its_first_segment() {
        let dir = tempfile::tempdir().unwrap();
        let huge = WalOptions {
            segment_size: 1 << 62,
            ..WalOptions::default()
        };
        let err = Wal::open(dir.path(), huge).err().expect("a 4 EiB segment");
        assert!(
            err.to_string()
                .contains("need 4611686018427387904 (a 4611686018427387904-byte segment"),
            "{err}"
        );
        let (_, record) = SlotFile::open(&dir.path().join(META_FILE), META_MAGIC)
            .unwrap()
            .expect("wal.meta was written before the segment");
        assert_eq!(checkpoint::decode_meta(&record), Some(1));
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.contains(".seg")), "{names:?}");

        let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
        assert_eq!(
            wal.append_commit(&[Event::new(b"a".to_vec())])
                .unwrap()
                .first_offset,
            0
        );
        drop(wal);
        let report = inspect::verify(dir.path(), None, |_, _| {}).unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }

    /// A drained log whose only segment is full moves on to a new one on a disk with room for
    /// one segment only (above the minimum free space): the drained segment's space counts as
    /// free, and it is then deleted, not kept as a spare, since the disk is under the minimum.
    /// Counting it only once it is drained: before, the roll is refused.
    #[test]
    fn a_drained_full_segment_makes_room_for_the_next() {
        const SEGMENT: u64 = 64 * 1024;
        const MIN_FREE: u64 = 1 << 20;
        let dir = tempfile::tempdir().unwrap();
        let opts = WalOptions {
            segment_size: SEGMENT,
            min_free_bytes: MIN_FREE,
            ..WalOptions::default()
        };
        let wal = Wal::open(dir.path(), opts).unwrap();
        *wal.inner.fake_available.lock() = Some(MIN_FREE + SEGMENT / 2);
        let mut reader = wal.reader("sink").unwrap();
        let event = Event::new(vec![b'x'; 1000]);
        let mut appended = 0;
        let refused = loop {
            match wal.append_commit(std::slice::from_ref(&event)) {
                Ok(_) => appended += 1,
                Err(e) => break e,
            }
        };
        assert!(
            matches!(refused, WalError::DiskFull { available, .. } if available == MIN_FREE + SEGMENT / 2),
            "{refused}"
        );
        let mut read_back = 0;
        loop {
            let n = reader.read(1000).unwrap().len();
            if n == 0 {
                break;
            }
            read_back += n;
        }
        assert_eq!(read_back, appended);
        reader.ack().unwrap();

        let next = wal.append_commit(std::slice::from_ref(&event)).unwrap();
        assert_eq!(next.first_offset, appended as u64);
        // What the new segment's allocation left.
        *wal.inner.fake_available.lock() = Some(MIN_FREE - SEGMENT / 2);
        let got = reader.read(1000).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, appended as u64);
        reader.ack().unwrap();
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".seg") || n.contains(SPARE_EXT))
            .collect();
        assert_eq!(names, [segment::segment_file_name(appended as u64)]);
    }

    /// A write that fails for want of space poisons the log (its frames' offsets were handed
    /// out): the call that failed must then say so, not "full, try again".
    #[test]
    fn a_failure_that_poisons_the_log_is_reported_as_poisoned_not_full() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
        let no_space = WalError::io("write", dir.path())(std::io::Error::from_raw_os_error(
            rustix::io::Errno::NOSPC.raw_os_error(),
        ));
        assert!(no_space.is_full());
        let reported = wal
            .inner
            .poison("writing appended frames failed", &no_space);
        assert!(matches!(reported, WalError::Poisoned(_)), "{reported}");
        assert!(!reported.is_full());
        let next = wal.append(&[Event::new("x")]).unwrap_err();
        assert!(matches!(next, WalError::Poisoned(_)), "{next}");
    }

    #[test]
    fn a_leader_that_panics_poisons_the_log_instead_of_stranding_committers() {
        const THREADS: usize = 16;
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
        wal.append_commit(&[Event::new(b"before".to_vec())])
            .unwrap();
        wal.inner.panic_next_sync.store(true, Ordering::SeqCst);
        let (tx, rx) = mpsc::channel();
        let mut committers = Vec::new();
        for _ in 0..THREADS {
            let (wal, tx) = (wal.clone(), tx.clone());
            committers.push(std::thread::spawn(move || {
                let ev = [Event::new(vec![b'x'; 64])];
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    wal.append_commit(&ev)
                }));
                tx.send(outcome.map(|r| r.map_err(|e| e.to_string())))
                    .unwrap();
            }));
        }
        drop(tx);
        let (mut panicked, mut poisoned) = (0, 0);
        for _ in 0..THREADS {
            match rx
                .recv_timeout(Duration::from_secs(20))
                .expect("a committer was stranded by the panicking leader")
            {
                Err(_) => panicked += 1,
                Ok(Err(e)) if e.contains("panicked") => poisoned += 1,
                Ok(other) => panic!("unexpected outcome {other:?}"),
            }
        }
        assert_eq!(panicked, 1, "exactly one leader hit the injected panic");
        assert_eq!(poisoned, THREADS - 1);
        assert!(matches!(wal.commit(), Err(WalError::Poisoned(_))));
        // What was committed before is still there after a restart. Each
        // committer reports before it drops its handle (and so the lock file),
        // so wait for all of them before reopening.
        for committer in committers {
            committer.join().unwrap();
        }
        drop(wal);
        let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
        let mut r = wal.reader("check").unwrap();
        let mut bodies = Vec::new();
        r.read_with(10, |_, ev, _| bodies.push(ev.body.to_vec()))
            .unwrap();
        assert_eq!(bodies.first().map(Vec::as_slice), Some(&b"before"[..]));
    }
}
