//! Read-only inspection of a log directory, behind `weir wal verify|dump|stats`.
//!
//! These functions open segments read-only and take no lock, so they can look at the log of a
//! running agent; frames it is writing at that moment may show up as a torn tail, and segments
//! it retires while they run are skipped with a note (they were listed, then deleted).
//!
//! This module owns what the tools call a log directory (one holding `wal.meta` or segment
//! files) and the checks that need the whole directory rather than one segment: segments that
//! overlap, and offsets that no segment holds.

use std::io;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use super::META_FILE;
use super::checkpoint::{self, CHECKPOINT_MAGIC, META_MAGIC, VerifiedEnd, decode_verified_end};
use super::error::{Result, WalError};
use super::frame::{Frame, decode_frame};
use super::identity::SegmentIds;
use super::log_id::LogId;
use super::recovery::{check_frame, intact_frame_after_torn, resync, starts_expected_frame};
use super::segment::{
    SEGMENT_HEADER_LEN, Seal, Segment, parse_segment_file_name, segment_file_name,
};
use super::slots::{SLOT_FILE_LEN, decode_slots};

/// A problem found, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    pub pos: u64,
    pub reason: String,
    pub kind: ProblemKind,
}

/// Whether the bytes are wrong or could not be read at all (a permission or I/O error says
/// nothing about the data, and is fixed differently).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    Damage,
    Unreadable,
    /// Files that do not belong together: a checkpoint of another log, a segment of another log.
    Mismatch,
}

impl ProblemKind {
    /// How the tools label it.
    pub fn label(self) -> &'static str {
        match self {
            ProblemKind::Damage => "CORRUPT",
            ProblemKind::Unreadable => "UNREADABLE",
            ProblemKind::Mismatch => "MISMATCH",
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: byte {}: {}",
            self.path.display(),
            self.pos,
            self.reason
        )
    }
}

/// One segment as seen on disk.
#[derive(Clone, Debug)]
pub struct SegmentSummary {
    pub path: PathBuf,
    pub base_offset: u64,
    pub file_len: u64,
    pub sealed: bool,
    /// Position after the last valid frame, and one past its last offset.
    pub end_pos: u64,
    pub next_offset: u64,
    pub frames: u64,
    /// How the unsealed tail ends (torn tails are normal after a crash).
    pub tail: Option<Problem>,
}

/// Everything `verify` found.
#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    pub segments: Vec<SegmentSummary>,
    pub frames: u64,
    pub events: u64,
    pub problems: Vec<Problem>,
    pub consumers: Vec<(String, u64)>,
    /// The log's id from `wal.meta` (None before the log's first open by a weir that gives ids).
    pub log_id: Option<LogId>,
    /// Segments listed but deleted before they could be opened: the log's owner retired them
    /// (all their events were consumed). Not a problem.
    pub retired: Vec<PathBuf>,
    /// Bytes of the retired segments kept for reuse (`*.spare`), which hold no events but take
    /// disk space, as the channel's `DiskBytes` counts them.
    pub spare_bytes: u64,
}

/// Bytes of the spare segment files in `dir`.
fn spare_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).map_err(WalError::io("list", dir))? {
        let entry = entry.map_err(WalError::io("list", dir))?;
        if entry
            .path()
            .extension()
            .is_some_and(|x| x == super::SPARE_EXT)
        {
            // A spare taken for reuse meanwhile is a segment now, counted as one.
            total += entry.metadata().map(|m| m.len()).unwrap_or(0);
        }
    }
    Ok(total)
}

/// Segment files of `dir` in offset order.
pub fn segment_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(WalError::io("list", dir))? {
        let entry = entry.map_err(WalError::io("list", dir))?;
        if let Some(base) = entry.file_name().to_str().and_then(parse_segment_file_name) {
            out.push((base, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Fails unless `dir` holds a log: `wal.meta` or at least one segment file. Without this an
/// empty directory, or a wrong one, would verify as a clean log of no segments.
fn ensure_log_dir(dir: &Path, segments: &[(u64, PathBuf)]) -> Result<()> {
    if !segments.is_empty() {
        return Ok(());
    }
    match std::fs::symlink_metadata(dir.join(META_FILE)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(WalError::Io {
            op: "find a log in",
            path: dir.to_owned(),
            error: io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "it holds no write-ahead log (no {META_FILE}, no segment file such as {}); \
                     give the log's directory (a file channel's dataDirs)",
                    segment_file_name(0)
                ),
            ),
        }),
        Err(e) => Err(WalError::io("stat", dir.join(META_FILE))(e)),
    }
}

/// What opening a listed segment found.
enum Opened {
    Segment(Segment),
    /// The file is gone (`NotFound`) although it was listed: the log's owner retired it since.
    Retired,
    Failed(WalError),
}

/// Opens a listed segment read-only, telling a segment deleted since it was listed (retired by
/// the running agent that owns the log) from one that cannot be read.
fn open_listed(path: &Path) -> Opened {
    match Segment::open(path, false) {
        Ok(s) => Opened::Segment(s),
        Err(WalError::Io { error, .. }) if error.kind() == io::ErrorKind::NotFound => {
            Opened::Retired
        }
        Err(e) => Opened::Failed(e),
    }
}

/// One step of [`each_segment`].
enum Listed {
    Open {
        base: u64,
        path: PathBuf,
        seg: Segment,
    },
    Retired(PathBuf),
    Failed {
        path: PathBuf,
        error: WalError,
    },
}

/// Opens the segments `files` lists (those of `dir`, in offset order), one at a time, and hands
/// each to `visit`. A segment deleted after the listing was retired by the log's owner, which
/// never retires the newest one: so if the last listed is gone, newer segments were created
/// after the listing, and the directory is listed once more to find them.
fn each_segment(
    dir: &Path,
    mut files: Vec<(u64, PathBuf)>,
    mut visit: impl FnMut(Listed) -> ControlFlow<()>,
) -> Result<()> {
    let mut relisted = false;
    let mut i = 0;
    while i < files.len() {
        let (base, path) = files[i].clone();
        i += 1;
        let step = match open_listed(&path) {
            Opened::Segment(seg) => Listed::Open { base, path, seg },
            Opened::Retired if i < files.len() => Listed::Retired(path),
            Opened::Retired => {
                let newer: Vec<_> = if relisted {
                    Vec::new()
                } else {
                    relisted = true;
                    segment_files(dir)?
                        .into_iter()
                        .filter(|(b, _)| *b > base)
                        .collect()
                };
                if newer.is_empty() {
                    Listed::Failed {
                        error: WalError::Io {
                            op: "open",
                            path: path.clone(),
                            error: io::Error::new(
                                io::ErrorKind::NotFound,
                                "the newest segment was deleted while being read and no newer \
                                 one exists (a log's owner never retires its newest segment: \
                                 was the log removed?)",
                            ),
                        },
                        path,
                    }
                } else {
                    files.extend(newer);
                    Listed::Retired(path)
                }
            }
            Opened::Failed(error) => Listed::Failed { path, error },
        };
        if visit(step).is_break() {
            break;
        }
    }
    Ok(())
}

/// Walks the frames of one segment image from the header to `limit`, calling `on_frame` for each
/// valid frame and `on_problem` for each damaged stretch, which it skips by resynchronising on
/// the next valid frame. Returns the summary of the walk.
///
/// `recorded`: for the newest segment, the end up to which the last open (or clean close) found
/// and synced valid frames (from `wal.meta`): damage below it is a problem, as in a sealed
/// segment, not a torn tail.
fn walk(
    path: &Path,
    image: &[u8],
    base: u64,
    seal: Option<Seal>,
    recorded: Option<RecordedEnd>,
    mut on_frame: impl FnMut(usize, Frame<'_>),
    mut on_problem: impl FnMut(Problem),
) -> SegmentSummary {
    let limit = seal
        .map(|s| s.end_pos as usize)
        .unwrap_or(image.len())
        .min(image.len());
    let mut pos = SEGMENT_HEADER_LEN;
    let mut expected = base;
    let mut epoch = 0;
    let mut frames = 0;
    let mut tail = None;
    while pos < limit {
        match check_frame(&image[pos..limit], expected, epoch) {
            Ok((len, next, e)) => {
                if let Ok(frame) = decode_frame(&image[pos..limit]) {
                    on_frame(pos, frame);
                }
                frames += 1;
                pos += len;
                expected = next;
                epoch = e;
            }
            Err(stop)
                if seal.is_some() || recorded.is_some_and(|r| (pos as u64) < r.end.end_pos) =>
            {
                let what = if seal.is_some() {
                    "sealed segment damaged"
                } else {
                    "damaged below the end the log last verified, at an open or a clean close \
                     (the next open keeps the frames after it and seals the segment)"
                };
                on_problem(Problem {
                    path: path.to_owned(),
                    pos: pos as u64,
                    reason: format!("{what}: {stop}"),
                    kind: ProblemKind::Damage,
                });
                let before = seal.map(|s| s.next_offset).unwrap_or(u64::MAX);
                match (resync(image, pos, limit, expected, before), recorded) {
                    (Some((p, off)), _) => {
                        pos = p;
                        expected = off;
                    }
                    // No frame after the damage: the open seals the segment at the recorded
                    // end, whose offsets it keeps (none is handed out twice).
                    (None, Some(r)) if seal.is_none() => {
                        pos = r.end.end_pos as usize;
                        expected = r.end.next_offset;
                    }
                    (None, _) => {
                        pos = limit;
                        expected = before;
                    }
                }
            }
            Err(stop) => {
                // Only the start of the expected frame is a torn write; other bytes are what a
                // reused segment held in its earlier life, as open logs them. At the recorded
                // end, a frame begun by the process that recorded it carries that open's epoch;
                // older ones there are leftovers (or a tail that open already discarded).
                let floor = match recorded {
                    Some(r) if r.end.end_pos == pos as u64 => epoch.max(r.epoch),
                    _ => epoch,
                };
                let torn = starts_expected_frame(&image[pos..limit], expected, floor);
                if !stop.is_clean() && torn {
                    let after = intact_frame_after_torn(&image[..limit], pos, expected, floor)
                        .map(|(p, off)| {
                            format!(
                                " (with the intact frames after it, from offset {off} at byte \
                                 {p}: lost if they were acknowledged)"
                            )
                        })
                        .unwrap_or_default();
                    tail = Some(Problem {
                        path: path.to_owned(),
                        pos: pos as u64,
                        reason: format!("torn tail, discarded at the next open{after}: {stop}"),
                        kind: ProblemKind::Damage,
                    });
                }
                break;
            }
        }
    }
    if let Some(s) = seal
        && expected != s.next_offset
    {
        on_problem(Problem {
            path: path.to_owned(),
            pos: limit as u64,
            reason: format!(
                "seal says the segment ends before offset {} but its frames end before {expected}",
                s.next_offset
            ),
            kind: ProblemKind::Damage,
        });
    }
    SegmentSummary {
        path: path.to_owned(),
        base_offset: base,
        file_len: image.len() as u64,
        sealed: seal.is_some(),
        end_pos: pos as u64,
        next_offset: expected,
        frames,
        tail,
    }
}

/// What is wrong between a segment and the one before it, whose offsets end before
/// `prev_end`: `base` must be exactly `prev_end`. Below it the two overlap; above it offsets
/// are missing, which retention never causes (it deletes whole segments from the oldest on, so
/// the only allowed gap is below the first segment).
fn continuity(prev: &Path, prev_end: u64, path: &Path, base: u64) -> Option<Problem> {
    let name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| p.display().to_string())
    };
    let reason = if base < prev_end {
        format!("segment starts at offset {base}, inside the previous one (ends at {prev_end})")
    } else if base > prev_end {
        format!(
            "offsets {prev_end}..{base} are missing: no segment holds them (between {} and {})",
            name(prev),
            name(path)
        )
    } else {
        return None;
    };
    // Byte 16 of the header holds the segment's base offset.
    Some(Problem {
        path: path.to_owned(),
        pos: 16,
        reason,
        kind: ProblemKind::Damage,
    })
}

/// The end recorded in `wal.meta` for the newest segment, and the epoch of the open that
/// recorded it (which the frames it wrote after that end carry).
#[derive(Clone, Copy)]
struct RecordedEnd {
    end: VerifiedEnd,
    epoch: u32,
}

/// What the tools read from `wal.meta`.
#[derive(Default)]
struct MetaRecord {
    /// The epoch of the newest open.
    epoch: u32,
    /// The end the log's newest open verified and synced (None if the record predates
    /// verified ends: then the newest segment is judged as before they existed).
    verified_end: Option<VerifiedEnd>,
    /// The log's id, and whether the log had it from its start.
    log_id: Option<LogId>,
    born_with_id: bool,
}

impl MetaRecord {
    fn recorded_end(&self) -> Option<RecordedEnd> {
        self.verified_end.map(|end| RecordedEnd {
            end,
            epoch: self.epoch,
        })
    }
}

/// The record of `wal.meta`, or the problem with it when `segments` exist without a readable,
/// valid one (every open writes it before its first frame).
fn meta_record(dir: &Path, segments: bool) -> std::result::Result<MetaRecord, Problem> {
    let path = dir.join(META_FILE);
    let problem = |reason: String, kind| Problem {
        path: path.clone(),
        pos: 0,
        reason,
        kind,
    };
    match std::fs::read(&path) {
        Ok(bytes) => match decode_slots(&bytes, META_MAGIC) {
            Some(record) => Ok(MetaRecord {
                epoch: checkpoint::decode_meta(record.payload).unwrap_or(0),
                verified_end: decode_verified_end(record.payload),
                log_id: checkpoint::decode_meta_log_id(record.payload),
                born_with_id: checkpoint::decode_meta_born_with_id(record.payload),
            }),
            None => Err(problem(
                "no valid record in either slot: the log's epoch and verified end are lost \
                 (the next open works the epoch out from the frames on disk)"
                    .into(),
                ProblemKind::Damage,
            )),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !segments => {
            Ok(MetaRecord::default())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(problem(
            "missing, though segments exist: the log's epoch and verified end are lost (the \
             next open works the epoch out from the frames on disk)"
                .into(),
            ProblemKind::Damage,
        )),
        Err(e) => Err(problem(
            format!("cannot be read: {e}"),
            ProblemKind::Unreadable,
        )),
    }
}

/// Checks every frame of every segment and every checkpoint. `progress(done, total)` is called
/// with bytes of segment files.
pub fn verify(
    dir: &Path,
    checkpoint_dir: Option<&Path>,
    mut progress: impl FnMut(u64, u64),
) -> Result<VerifyReport> {
    let files = segment_files(dir)?;
    ensure_log_dir(dir, &files)?;
    let total: u64 = files
        .iter()
        .map(|(_, p)| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    let mut report = VerifyReport {
        spare_bytes: spare_bytes(dir)?,
        ..VerifyReport::default()
    };
    let mut done = 0u64;
    let meta = meta_record(dir, !files.is_empty()).unwrap_or_else(|problem| {
        report.problems.push(problem);
        MetaRecord::default()
    });
    let recorded = meta.recorded_end();
    // The previous segment read, and where its offsets end; None after one that could not be
    // read, whose end is unknown.
    let mut prev: Option<(PathBuf, u64)> = None;
    let mut segment_ids = SegmentIds::new(meta.log_id);
    each_segment(dir, files, |step| {
        let (base, path, mut seg) = match step {
            Listed::Open { base, path, seg } => (base, path, seg),
            Listed::Retired(path) => {
                report.retired.push(path);
                prev = None;
                return ControlFlow::Continue(());
            }
            Listed::Failed { path, error } => {
                report.problems.push(match error {
                    WalError::Corrupt { path, pos, reason } => Problem {
                        path,
                        pos,
                        reason,
                        kind: ProblemKind::Damage,
                    },
                    e => Problem {
                        path,
                        pos: 0,
                        kind: match e {
                            WalError::Io { .. } => ProblemKind::Unreadable,
                            _ => ProblemKind::Damage,
                        },
                        reason: e.to_string(),
                    },
                });
                prev = None;
                return ControlFlow::Continue(());
            }
        };
        if let Some(problem) = prev
            .as_ref()
            .and_then(|(p, end)| continuity(p, *end, &path, base))
        {
            report.problems.push(problem);
        }
        if let Some(clash) = segment_ids.clash(&path, seg.log_id()) {
            report.problems.push(Problem {
                path: path.clone(),
                pos: 32,
                reason: format!("{clash}; the next open refuses the log"),
                kind: ProblemKind::Mismatch,
            });
        }
        let seal = seg.seal();
        let mut events = 0u64;
        let mut problems = Vec::new();
        let summary = walk(
            &path,
            seg.recovery_image(),
            base,
            seal,
            recorded.filter(|r| r.end.base == base),
            |_, f| events += u64::from(f.header.event_count),
            |p| problems.push(p),
        );
        report.problems.extend(problems);
        report.frames += summary.frames;
        report.events += events;
        prev = Some((path, summary.next_offset));
        done += summary.file_len;
        progress(done, total);
        report.segments.push(summary);
        ControlFlow::Continue(())
    })?;
    // Only the newest segment is written to; an older one without a valid seal had it damaged
    // from outside (open warns and seals it again). A live log may have sealed it since it was
    // read, when it rolled to a segment listed after a retirement: that is looked at again.
    let sealed_now = |path: &Path| match open_listed(path) {
        Opened::Segment(seg) => seg.seal().is_some(),
        Opened::Retired | Opened::Failed(_) => true,
    };
    if let Some((_, older)) = report.segments.split_last() {
        for s in older.iter().filter(|s| !s.sealed && !sealed_now(&s.path)) {
            report.problems.push(Problem {
                path: s.path.clone(),
                pos: 64,
                reason: "not sealed (a damaged or missing seal), though a newer segment exists; \
                         the next open seals it after its last valid frame"
                    .into(),
                kind: ProblemKind::Damage,
            });
        }
    }
    let ckpt_dir = checkpoint_dir.unwrap_or(dir);
    let log_id = meta.log_id.or(segment_ids.id());
    let born_with_id = meta.born_with_id;
    report.log_id = log_id;
    let log_end = report.segments.last().map(|s| s.next_offset);
    let entries = match std::fs::read_dir(ckpt_dir) {
        // A checkpoint directory not made yet holds no checkpoint.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && checkpoint_dir.is_some() => {
            return Ok(report);
        }
        other => other.map_err(WalError::io("list", ckpt_dir))?,
    };
    for entry in entries {
        let entry = entry.map_err(WalError::io("list", ckpt_dir))?;
        let path = entry.path();
        // Only the files open reads as checkpoints (`load_consumers`).
        let Some(stem) = checkpoint::consumer_of_file(&path).map(str::to_owned) else {
            continue;
        };
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                report.problems.push(Problem {
                    path,
                    pos: 0,
                    reason: format!("cannot be read: {e}"),
                    kind: ProblemKind::Unreadable,
                });
                continue;
            }
        };
        let rec = decode_slots(&bytes[..bytes.len().min(SLOT_FILE_LEN)], CHECKPOINT_MAGIC);
        match rec.map(|r| checkpoint::decode_checkpoint(r.payload)) {
            Some(Ok(c)) if c.name == stem => {
                let foreign = match (c.log, log_id) {
                    (Some(theirs), Some(ours)) if theirs != ours => {
                        Some(format!("written for log {theirs}, but this log is {ours}"))
                    }
                    (None, Some(ours)) if born_with_id => Some(format!(
                        "that names no log (written by a weir before log ids), but this log \
                         is {ours} and wrote its id into every checkpoint from its start"
                    )),
                    _ => None,
                };
                let past_end = log_end.filter(|end| c.position.offset > *end);
                if let Some(what) = foreign {
                    report.problems.push(Problem {
                        path,
                        pos: 0,
                        reason: format!(
                            "checkpoint of consumer {stem} {what}: another log's checkpoint (a \
                             shared checkpoint directory); the next open refuses it"
                        ),
                        kind: ProblemKind::Mismatch,
                    });
                } else if let Some(end) = past_end {
                    report.problems.push(Problem {
                        path,
                        pos: 0,
                        reason: format!(
                            "checkpoint of consumer {stem} at offset {}, past the end of the log \
                             ({end}): events the log held were lost, or it is another log's",
                            c.position.offset
                        ),
                        kind: ProblemKind::Mismatch,
                    });
                } else {
                    report.consumers.push((c.name, c.position.offset));
                }
            }
            Some(Ok(c)) => report.problems.push(Problem {
                path,
                pos: 0,
                reason: format!(
                    "checkpoint of consumer {:?} in the file of consumer {stem:?} (copied or \
                     renamed?): the next open discards it, and {stem} restarts from the oldest \
                     retained event",
                    c.name
                ),
                kind: ProblemKind::Damage,
            }),
            Some(Err(e)) => report.problems.push(Problem {
                path,
                pos: 0,
                reason: format!("checkpoint payload invalid: {e}"),
                kind: ProblemKind::Damage,
            }),
            None => report.problems.push(Problem {
                path,
                pos: 0,
                reason: "checkpoint has no valid slot".into(),
                kind: ProblemKind::Damage,
            }),
        }
    }
    Ok(report)
}

/// One decoded event, for `dump`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DumpedEvent {
    pub offset: u64,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl DumpedEvent {
    /// The value of header `key`, if the event has it.
    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Calls `visit` for up to `limit` events from offset `from` on, in order. Damaged frames are
/// reported through `on_problem` and skipped.
pub fn dump(
    dir: &Path,
    from: u64,
    limit: u64,
    visit: impl FnMut(DumpedEvent),
    on_problem: impl FnMut(Problem),
) -> Result<u64> {
    dump_noting(dir, from, limit, visit, on_problem, |_| {})
}

/// [`dump`], also calling `on_retired` for each segment skipped because the log's owner deleted
/// it after it was listed (its events were consumed; not a problem).
pub fn dump_noting(
    dir: &Path,
    from: u64,
    limit: u64,
    mut visit: impl FnMut(DumpedEvent),
    mut on_problem: impl FnMut(Problem),
    mut on_retired: impl FnMut(&Path),
) -> Result<u64> {
    let mut files = segment_files(dir)?;
    ensure_log_dir(dir, &files)?;
    // As in `verify`: damage below the end the last open verified is damage, reported and
    // passed over, not the end of the log (the frames after it are kept).
    let recorded = match meta_record(dir, !files.is_empty()) {
        Ok(meta) => meta.recorded_end(),
        Err(problem) => {
            on_problem(problem);
            None
        }
    };
    // Start at the last segment whose base is at or below `from`.
    let start = files.iter().rposition(|(b, _)| *b <= from).unwrap_or(0);
    files.drain(..start);
    let mut seen = 0u64;
    let mut failed = None;
    // As in `verify`: the previous segment read and where its offsets end.
    let mut prev: Option<(PathBuf, u64)> = None;
    each_segment(dir, files, |step| {
        if seen >= limit {
            return ControlFlow::Break(());
        }
        let (base, path, mut seg) = match step {
            Listed::Open { base, path, seg } => (base, path, seg),
            Listed::Retired(path) => {
                on_retired(&path);
                prev = None;
                return ControlFlow::Continue(());
            }
            Listed::Failed { error, .. } => {
                failed = Some(error);
                return ControlFlow::Break(());
            }
        };
        if let Some(problem) = prev
            .as_ref()
            .and_then(|(p, end)| continuity(p, *end, &path, base))
        {
            on_problem(problem);
        }
        let seal = seg.seal();
        let summary = walk(
            &path,
            seg.recovery_image(),
            base,
            seal,
            recorded.filter(|r| r.end.base == base),
            |_, frame| {
                for (i, ev) in frame.events().enumerate() {
                    let offset = frame.header.first_offset + i as u64;
                    if offset < from || seen >= limit {
                        continue;
                    }
                    let Ok(ev) = ev else { break };
                    let headers = ev
                        .headers()
                        .filter_map(|h| h.ok())
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect();
                    visit(DumpedEvent {
                        offset,
                        headers,
                        body: ev.body.to_vec(),
                    });
                    seen += 1;
                }
            },
            &mut on_problem,
        );
        prev = Some((path, summary.next_offset));
        ControlFlow::Continue(())
    })?;
    match failed {
        Some(e) => Err(e),
        None => Ok(seen),
    }
}

/// Renders bytes for a terminal: printable ASCII as is, the rest as `\xNN`.
pub fn escape_bytes(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s
}

/// `t` for a line of `weir wal dump` inside double quotes: as [`escape_bytes`], but characters
/// past ASCII are printed as they are (header keys and values are UTF-8, wal-format.md §4).
pub fn escape_text(t: &str) -> String {
    let mut s = String::with_capacity(t.len());
    for c in t.chars() {
        match c {
            '\\' | '"' | '\n' | '\t' => s.push_str(&escape_bytes(&[c as u8])),
            c if c.is_control() => s.push_str(&c.escape_unicode().to_string()),
            c => s.push(c),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::wal::{Wal, WalOptions};

    #[test]
    fn dumped_text_is_quoted_unambiguously() {
        assert_eq!(escape_text("a=b"), "a=b");
        assert_eq!(escape_text("x, y}"), "x, y}");
        assert_eq!(escape_text("q\"\\\n\t"), "q\\\"\\\\\\n\\t");
        assert_eq!(escape_text("ü\u{1}"), "ü\\u{1}");
    }

    /// A log of four or more 8 KiB segments, and its listing.
    fn small_log() -> (tempfile::TempDir, Vec<(u64, PathBuf)>) {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(
            dir.path(),
            WalOptions {
                segment_size: 8192,
                ..Default::default()
            },
        )
        .unwrap();
        for i in 0..16u64 {
            wal.append_commit(&[Event::new(format!("{i:-<1000}"))])
                .unwrap();
        }
        wal.close().unwrap();
        let files = segment_files(dir.path()).unwrap();
        assert!(files.len() >= 4, "{files:?}");
        (dir, files)
    }

    /// What `each_segment` hands out, as (kind, file name).
    fn steps(dir: &Path, files: Vec<(u64, PathBuf)>) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        each_segment(dir, files, |step| {
            let (kind, path) = match step {
                Listed::Open { path, .. } => ("open", path),
                Listed::Retired(path) => ("retired", path),
                Listed::Failed { path, .. } => ("failed", path),
            };
            out.push((
                kind,
                path.file_name().unwrap().to_string_lossy().into_owned(),
            ));
            ControlFlow::Continue(())
        })
        .unwrap();
        out
    }

    fn name(p: &Path) -> String {
        p.file_name().unwrap().to_string_lossy().into_owned()
    }

    #[test]
    fn a_segment_gone_when_opened_was_retired() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join(segment_file_name(0));
        assert!(matches!(open_listed(&gone), Opened::Retired));
        // A file that is there but is no segment is a failure, not a retirement.
        std::fs::write(&gone, b"not a segment").unwrap();
        assert!(matches!(open_listed(&gone), Opened::Failed(_)));
    }

    #[test]
    fn segments_deleted_after_the_listing_are_skipped_as_retired() {
        let (dir, files) = small_log();
        // Listed, then retired (oldest first) before being opened.
        std::fs::remove_file(&files[0].1).unwrap();
        std::fs::remove_file(&files[1].1).unwrap();
        let got = steps(dir.path(), files.clone());
        let mut want = vec![
            ("retired", name(&files[0].1)),
            ("retired", name(&files[1].1)),
        ];
        want.extend(files[2..].iter().map(|(_, p)| ("open", name(p))));
        assert_eq!(got, want);
    }

    #[test]
    fn when_the_last_listed_segment_is_gone_the_directory_is_listed_again() {
        let (dir, files) = small_log();
        // Listed when segment 1 was the newest; since then it was sealed, newer ones were
        // created, and it was retired.
        std::fs::remove_file(&files[1].1).unwrap();
        let got = steps(dir.path(), files[..2].to_vec());
        let mut want = vec![("open", name(&files[0].1)), ("retired", name(&files[1].1))];
        want.extend(files[2..].iter().map(|(_, p)| ("open", name(p))));
        assert_eq!(got, want);

        // The newest segment gone with no newer one: not a retirement (the owner never retires
        // its newest segment).
        let last = &files[files.len() - 1].1;
        std::fs::remove_file(last).unwrap();
        let got = steps(dir.path(), files[2..].to_vec());
        assert_eq!(got.last(), Some(&("failed", name(last))));
        assert!(got[..got.len() - 1].iter().all(|(k, _)| *k == "open"));
    }

    #[test]
    fn verify_reports_missing_offsets_between_segments_only() {
        let (dir, files) = small_log();
        let report = verify(dir.path(), None, |_, _| {}).unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        std::fs::remove_file(&files[2].1).unwrap();
        let report = verify(dir.path(), None, |_, _| {}).unwrap();
        let reasons: Vec<String> = report.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            reasons,
            vec![format!(
                "{}: byte 16: offsets {}..{} are missing: no segment holds them (between {} and {})",
                files[3].1.display(),
                files[2].0,
                files[3].0,
                name(&files[1].1),
                name(&files[3].1)
            )]
        );
        // Retention's gap, below the first segment, is no problem.
        std::fs::remove_file(&files[0].1).unwrap();
        std::fs::remove_file(&files[1].1).unwrap();
        let report = verify(dir.path(), None, |_, _| {}).unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }

    #[test]
    fn a_directory_without_a_log_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = verify(dir.path(), None, |_, _| {}).unwrap_err().to_string();
        assert!(err.contains("holds no write-ahead log"), "{err}");
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
        let err = dump(dir.path(), 0, u64::MAX, |_| {}, |_| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("holds no write-ahead log"), "{err}");
        // A log whose segments are all gone still has its meta file: it is a log.
        std::fs::write(dir.path().join(META_FILE), b"").unwrap();
        assert!(verify(dir.path(), None, |_, _| {}).is_ok());
    }
}
