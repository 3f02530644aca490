//! Finding where the valid log ends: the frame-chain scan used at open, by `weir wal verify`, and by
//! the fuzz target (`wal-format.md` §7, "Recovery").
//!
//! A frame continues the chain only if its CRC holds, it is structurally sound, its first offset
//! is exactly the one expected, and its epoch is not older than the previous frame's. The first
//! position where that fails is the end of the valid log: what lies beyond is unwritten space, a
//! stale frame from a recycled segment or an earlier torn tail, or a frame torn by the crash.

use super::checkpoint::VerifiedEnd;
use super::frame::{FrameError, decode_frame, peek_header};
use super::segment::SEGMENT_HEADER_LEN;

/// Why a scan stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScanStop {
    /// The end of the segment was reached.
    SegmentEnd,
    /// Zeroed (never written) space.
    Unwritten,
    /// A valid frame that belongs to an earlier life of the space: a recycled segment or a tail
    /// discarded by an earlier recovery.
    Stale { first_offset: u64, epoch: u32 },
    /// Bytes that are not a valid frame: a write torn by a crash, or damage.
    Invalid { reason: String },
}

impl ScanStop {
    /// True when the stop is what a cleanly written log looks like.
    pub fn is_clean(&self) -> bool {
        !matches!(self, ScanStop::Invalid { .. })
    }
}

impl std::fmt::Display for ScanStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScanStop::SegmentEnd => f.write_str("frame runs past the end"),
            ScanStop::Unwritten => f.write_str("zeroed bytes where a frame should be"),
            ScanStop::Stale {
                first_offset,
                epoch,
            } => write!(
                f,
                "out-of-sequence frame (offset {first_offset}, epoch {epoch})"
            ),
            ScanStop::Invalid { reason } => f.write_str(reason),
        }
    }
}

/// The result of walking a segment's frame chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanEnd {
    /// Byte position just after the last valid frame.
    pub end_pos: usize,
    /// One past the last valid event's offset.
    pub next_offset: u64,
    pub frames: u64,
    /// Highest epoch of a valid frame (0 if none).
    pub max_epoch: u32,
    pub stop: ScanStop,
}

/// Walks frames in `segment` (the whole file image) from `start`, expecting the first to begin at
/// `expected_offset`, stopping at `limit` bytes. Never panics on any input.
pub fn scan_frames(segment: &[u8], start: usize, expected_offset: u64, limit: usize) -> ScanEnd {
    let limit = limit.min(segment.len());
    let mut end = ScanEnd {
        end_pos: start.max(SEGMENT_HEADER_LEN),
        next_offset: expected_offset,
        frames: 0,
        max_epoch: 0,
        stop: ScanStop::SegmentEnd,
    };
    loop {
        let pos = end.end_pos;
        if pos >= limit {
            end.stop = ScanStop::SegmentEnd;
            return end;
        }
        let bytes = &segment[pos..limit];
        match check_frame(bytes, end.next_offset, end.max_epoch) {
            Ok((len, next, epoch)) => {
                end.end_pos += len;
                end.next_offset = next;
                end.frames += 1;
                end.max_epoch = end.max_epoch.max(epoch);
            }
            Err(stop) => {
                end.stop = stop;
                return end;
            }
        }
    }
}

/// Checks that `bytes` starts with the frame that continues a chain at `expected_offset` whose
/// newest epoch so far is `min_epoch`. Returns the frame's length, next offset and epoch.
pub fn check_frame(
    bytes: &[u8],
    expected_offset: u64,
    min_epoch: u32,
) -> Result<(usize, u64, u32), ScanStop> {
    let head = &bytes[..bytes.len().min(24)];
    if head.len() < 24 {
        return Err(if head.iter().all(|b| *b == 0) {
            ScanStop::SegmentEnd
        } else {
            ScanStop::Invalid {
                reason: format!("{} trailing bytes too short for a frame header", head.len()),
            }
        });
    }
    if head.iter().all(|b| *b == 0) {
        return Err(ScanStop::Unwritten);
    }
    let frame = decode_frame(bytes).map_err(|e| ScanStop::Invalid {
        reason: match e {
            FrameError::Truncated { .. } => format!("frame runs past the end of the segment: {e}"),
            _ => e.to_string(),
        },
    })?;
    let h = frame.header;
    if h.first_offset < expected_offset {
        return Err(ScanStop::Stale {
            first_offset: h.first_offset,
            epoch: h.epoch,
        });
    }
    if h.first_offset != expected_offset {
        return Err(ScanStop::Invalid {
            reason: format!(
                "frame claims offset {} where {} was expected",
                h.first_offset, expected_offset
            ),
        });
    }
    if h.epoch < min_epoch {
        return Err(ScanStop::Stale {
            first_offset: h.first_offset,
            epoch: h.epoch,
        });
    }
    frame.validate().map_err(|e| ScanStop::Invalid {
        reason: e.to_string(),
    })?;
    if h.first_offset
        .checked_add(u64::from(h.event_count))
        .is_none()
    {
        return Err(ScanStop::Invalid {
            reason: "offsets overflow".into(),
        });
    }
    Ok((h.frame_len(), h.next_offset(), h.epoch))
}

/// Whether `bytes`, where a scan stopped, begin the frame the chain expected next: a header
/// (whatever its CRC) naming `expected_offset`, with an epoch not older than `epoch_floor`.
/// After a crash such a frame is one the process was writing (a torn write, or damage to a
/// frame it wrote). Any other bytes there are not a frame of this log at that place: what a
/// reused segment held in its earlier life, or old bytes under a frame whose first sector never
/// reached the disk. Either way nothing from there on was committed; the two are told apart
/// only so that a restart does not report a torn write that did not happen (wal-format.md §7.1).
pub fn starts_expected_frame(bytes: &[u8], expected_offset: u64, epoch_floor: u32) -> bool {
    peek_header(bytes).is_ok_and(|h| h.first_offset == expected_offset && h.epoch >= epoch_floor)
}

/// After a torn frame at `from` (expected to hold `expected_offset`), the first intact frame of
/// the same process after it, if any: its position and first offset. Such frames are discarded
/// with the tail (a tear a crash left cannot be told from damage found later,
/// wal-format.md §8), and the warning says so, since they may have been acknowledged.
pub fn intact_frame_after_torn(
    segment: &[u8],
    from: usize,
    expected_offset: u64,
    epoch_floor: u32,
) -> Option<(usize, u64)> {
    let found = resync(segment, from, segment.len(), expected_offset, u64::MAX)?;
    peek_header(&segment[found.0..])
        .is_ok_and(|h| h.epoch >= epoch_floor)
        .then_some(found)
}

/// After a stop at `from`, looks for the next position in `segment[from+1..limit]` holding a
/// CRC-valid frame with an offset in `(after_offset, before_offset)`: where a reader may resume
/// after skipping damage. Returns that position and the frame's first offset.
pub fn resync(
    segment: &[u8],
    from: usize,
    limit: usize,
    after_offset: u64,
    before_offset: u64,
) -> Option<(usize, u64)> {
    let limit = limit.min(segment.len());
    let mut pos = from + 1;
    while pos + 24 <= limit {
        if let Ok(h) = peek_header(&segment[pos..limit])
            && h.first_offset > after_offset
            && h.first_offset < before_offset
            && h.first_offset
                .checked_add(u64::from(h.event_count))
                .is_some()
            && pos + h.frame_len() <= limit
            && decode_frame(&segment[pos..limit]).is_ok_and(|f| f.validate().is_ok())
        {
            return Some((pos, h.first_offset));
        }
        pos += 1;
    }
    None
}

/// The highest epoch of a CRC-valid frame in `segment[from..limit]` whose offset is at least
/// `next_offset`: the frames past a scan's end that a later scan could still take as continuing
/// the chain (an intact frame after a torn one, say). Open uses it when `wal.meta` is lost, to
/// choose an epoch above all of them (wal-format.md §7, step 5); the offset window keeps the
/// byte-wise search from paying a CRC for every position that merely looks like a header.
pub fn max_epoch_from(segment: &[u8], from: usize, limit: usize, next_offset: u64) -> u32 {
    let limit = limit.min(segment.len());
    let window = next_offset.saturating_add(limit as u64);
    let mut max_epoch = 0;
    let mut pos = from.saturating_sub(1);
    while let Some((at, _)) = resync(segment, pos, limit, next_offset.saturating_sub(1), window) {
        if let Ok(h) = peek_header(&segment[at..limit]) {
            max_epoch = max_epoch.max(h.epoch);
        }
        pos = at;
    }
    max_epoch
}

/// Where a segment's log really ends when its chain, `broken`, stops below the end an earlier
/// open verified and synced (`verified`): what stopped it is damage, not a torn write, and the
/// frames after it were committed. The chain is picked up at the next valid frame after the
/// damage and followed to its end; if that end (or the damage) lies short of the verified end,
/// the verified end stands, so that nothing the log once held is given up or written over.
pub fn resume_after_damage(
    segment: &[u8],
    broken: &ScanEnd,
    verified: VerifiedEnd,
    limit: usize,
) -> ScanEnd {
    let at_verified_end = ScanEnd {
        end_pos: (verified.end_pos as usize).min(limit.min(segment.len())),
        next_offset: verified.next_offset,
        frames: 0,
        max_epoch: 0,
        stop: broken.stop.clone(),
    };
    match resync(segment, broken.end_pos, limit, broken.next_offset, u64::MAX) {
        Some((pos, first)) => {
            let rest = scan_frames(segment, pos, first, limit);
            if (rest.end_pos as u64) < verified.end_pos {
                ScanEnd {
                    max_epoch: rest.max_epoch,
                    ..at_verified_end
                }
            } else {
                rest
            }
        }
        None => at_verified_end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::wal::frame::{encode_frame, encoded_frame_len};

    fn image(frames: &[(u64, u32, usize)]) -> Vec<u8> {
        let mut seg = vec![0u8; SEGMENT_HEADER_LEN + 4096];
        let mut pos = SEGMENT_HEADER_LEN;
        for &(first, epoch, n) in frames {
            let events: Vec<Event> = (0..n).map(|i| Event::new(vec![i as u8; 10])).collect();
            let len = encoded_frame_len(&events).unwrap();
            encode_frame(&mut seg[pos..pos + len], first, epoch, &events);
            pos += len;
        }
        seg
    }

    #[test]
    fn scan_follows_chain_and_stops_on_zeroes() {
        let seg = image(&[(5, 1, 2), (7, 1, 3), (10, 2, 1)]);
        let end = scan_frames(&seg, SEGMENT_HEADER_LEN, 5, seg.len());
        assert_eq!(end.next_offset, 11);
        assert_eq!(end.frames, 3);
        assert_eq!(end.max_epoch, 2);
        assert_eq!(end.stop, ScanStop::Unwritten);
    }

    #[test]
    fn stale_offsets_and_older_epochs_end_the_chain() {
        // Offset 7 appears twice: a newer epoch's frame followed by an older epoch's leftover.
        let seg = image(&[(5, 3, 2), (7, 2, 1)]);
        let end = scan_frames(&seg, SEGMENT_HEADER_LEN, 5, seg.len());
        assert_eq!(end.next_offset, 7);
        assert!(matches!(end.stop, ScanStop::Stale { .. }));
        // A recycled segment: the old frames have offsets below the new base.
        let end = scan_frames(&seg, SEGMENT_HEADER_LEN, 100, seg.len());
        assert_eq!((end.frames, end.next_offset), (0, 100));
        assert!(end.stop.is_clean());
    }

    #[test]
    fn max_epoch_from_sees_intact_frames_past_a_torn_one_but_not_older_offsets() {
        // Offsets 0 (epoch 1), 1 (epoch 5, torn below), 2 (epoch 5), then a leftover at offset 0
        // with epoch 9 from a recycled life of the space.
        let mut seg = image(&[(0, 1, 1), (1, 5, 1), (2, 5, 1), (0, 9, 1)]);
        let first = peek_header(&seg[SEGMENT_HEADER_LEN..]).unwrap().frame_len();
        seg[SEGMENT_HEADER_LEN + first + 30] ^= 0x40;
        let end = scan_frames(&seg, SEGMENT_HEADER_LEN, 0, seg.len());
        assert_eq!((end.next_offset, end.max_epoch), (1, 1));
        assert_eq!(
            max_epoch_from(&seg, end.end_pos, seg.len(), end.next_offset),
            5
        );
        assert_eq!(max_epoch_from(&seg, seg.len(), seg.len(), 1), 0);
    }

    #[test]
    fn torn_frame_is_invalid_and_resync_finds_the_next() {
        let mut seg = image(&[(0, 1, 1), (1, 1, 1), (2, 1, 1)]);
        seg[SEGMENT_HEADER_LEN + 30] ^= 0x40;
        let end = scan_frames(&seg, SEGMENT_HEADER_LEN, 0, seg.len());
        assert_eq!(end.frames, 0);
        assert!(!end.stop.is_clean());
        let (pos, off) = resync(&seg, SEGMENT_HEADER_LEN, seg.len(), 0, u64::MAX).unwrap();
        assert_eq!(off, 1);
        assert!(pos > SEGMENT_HEADER_LEN);
    }
}
