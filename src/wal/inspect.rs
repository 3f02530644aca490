//! Read-only inspection of a log directory, behind `weir wal verify|dump|stats`.
//!
//! These functions open segments read-only and take no lock, so they can look at the log of a
//! running agent; frames it is writing at that moment may show up as a torn tail.

use std::path::{Path, PathBuf};

use super::checkpoint::{self, CHECKPOINT_MAGIC};
use super::error::{Result, WalError};
use super::frame::{Frame, decode_frame};
use super::recovery::{ScanStop, check_frame, resync};
use super::segment::{SEGMENT_HEADER_LEN, Seal, Segment, parse_segment_file_name};
use super::slots::{SLOT_FILE_LEN, decode_slots};

/// A problem found, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    pub pos: u64,
    pub reason: String,
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

/// Walks the frames of one segment image from the header to `limit`, calling `on_frame` for each
/// valid frame and `on_problem` for each damaged stretch, which it skips by resynchronising on
/// the next valid frame. Returns the summary of the walk.
fn walk(
    path: &Path,
    image: &[u8],
    base: u64,
    seal: Option<Seal>,
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
            Err(stop) if seal.is_some() => {
                on_problem(Problem {
                    path: path.to_owned(),
                    pos: pos as u64,
                    reason: format!("sealed segment damaged: {}", describe(&stop)),
                });
                let before = seal.map(|s| s.next_offset).unwrap_or(u64::MAX);
                match resync(image, pos, limit, expected, before) {
                    Some((p, off)) => {
                        pos = p;
                        expected = off;
                    }
                    None => {
                        pos = limit;
                        expected = before;
                    }
                }
            }
            Err(stop) => {
                if !stop.is_clean() {
                    tail = Some(Problem {
                        path: path.to_owned(),
                        pos: pos as u64,
                        reason: format!(
                            "torn tail, discarded at the next open: {}",
                            describe(&stop)
                        ),
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

fn describe(stop: &ScanStop) -> String {
    match stop {
        ScanStop::SegmentEnd => "frame runs past the end".into(),
        ScanStop::Unwritten => "zeroed bytes where a frame should be".into(),
        ScanStop::Stale {
            first_offset,
            epoch,
        } => format!("out-of-sequence frame (offset {first_offset}, epoch {epoch})"),
        ScanStop::Invalid { reason } => reason.clone(),
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
    let total: u64 = files
        .iter()
        .map(|(_, p)| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    let mut report = VerifyReport::default();
    let mut done = 0u64;
    let mut prev_next: Option<u64> = None;
    for (base, path) in &files {
        let mut seg = match Segment::open(path, false) {
            Ok(s) => s,
            Err(WalError::Corrupt { path, pos, reason }) => {
                report.problems.push(Problem { path, pos, reason });
                continue;
            }
            Err(e) => {
                report.problems.push(Problem {
                    path: path.clone(),
                    pos: 0,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        if let Some(p) = prev_next.filter(|p| base < p) {
            report.problems.push(Problem {
                path: path.clone(),
                pos: 16,
                reason: format!(
                    "segment starts at offset {base}, inside the previous one (ends at {p})"
                ),
            });
        }
        let seal = seg.seal();
        let mut events = 0u64;
        let mut problems = Vec::new();
        let summary = walk(
            path,
            seg.recovery_image(),
            *base,
            seal,
            |_, f| events += u64::from(f.header.event_count),
            |p| problems.push(p),
        );
        report.problems.extend(problems);
        report.frames += summary.frames;
        report.events += events;
        prev_next = Some(summary.next_offset);
        done += summary.file_len;
        progress(done, total);
        report.segments.push(summary);
    }
    let ckpt_dir = checkpoint_dir.unwrap_or(dir);
    for entry in std::fs::read_dir(ckpt_dir).map_err(WalError::io("list", ckpt_dir))? {
        let entry = entry.map_err(WalError::io("list", ckpt_dir))?;
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("ckpt") {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(WalError::io("read", &path))?;
        let rec = decode_slots(&bytes[..bytes.len().min(SLOT_FILE_LEN)], CHECKPOINT_MAGIC);
        match rec.map(|r| checkpoint::decode_checkpoint(r.payload)) {
            Some(Ok(c)) => report.consumers.push((c.name, c.position.offset)),
            Some(Err(e)) => report.problems.push(Problem {
                path,
                pos: 0,
                reason: format!("checkpoint payload invalid: {e}"),
            }),
            None => report.problems.push(Problem {
                path,
                pos: 0,
                reason: "checkpoint has no valid slot".into(),
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
    mut visit: impl FnMut(DumpedEvent),
    mut on_problem: impl FnMut(Problem),
) -> Result<u64> {
    let files = segment_files(dir)?;
    // Start at the last segment whose base is at or below `from`.
    let start = files.iter().rposition(|(b, _)| *b <= from).unwrap_or(0);
    let mut seen = 0u64;
    for (base, path) in &files[start..] {
        if seen >= limit {
            break;
        }
        let mut seg = Segment::open(path, false)?;
        let seal = seg.seal();
        walk(
            path,
            seg.recovery_image(),
            *base,
            seal,
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
    }
    Ok(seen)
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
