//! Named readers: walk the committed frames in order, zero-copy from the segment maps
//! (`wal-format.md` §7.3 for how a checkpoint is resumed).
//!
//! A reader only looks below each segment's `visible_end`, so it sees exactly the frames a
//! commit has made durable. It holds an `Arc` on its current segment: retention may unlink the
//! file meanwhile, which leaves the mapping valid.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::checkpoint::Position;
use super::error::{Result, WalError};
use super::frame::{EventIter, EventView, FRAME_HEADER_LEN, decode_frame};
use super::recovery::resync;
use super::segment::{SEGMENT_HEADER_LEN, Segment};
use super::{CorruptionPolicy, Inner};
use crate::event::Event;

/// Events whose body is at least this long are handed out as views into the map; shorter ones
/// are copied, which is cheaper than sharing and does not pin the segment.
const ZERO_COPY_MIN: usize = 256;
/// How far a reader goes into a segment between two releases of the pages it has passed.
const RELEASE_CHUNK: usize = 64 << 20;

/// A consumer's cursor over the log.
pub struct Reader {
    inner: Arc<Inner>,
    name: String,
    seg: Arc<Segment>,
    /// Start of the frame holding `next`, or where the next frame will start.
    frame_pos: usize,
    next: u64,
    cur: Option<Current>,
    /// The segment (by base offset) and byte below which this reader has let go of the map's
    /// pages (see `release_passed_pages`).
    released: (u64, usize),
    /// `frame_pos` came from a checkpoint's hint and no frame has been read there yet: bytes
    /// that are not a frame there mean a wrong hint, not damage (`wal-format.md` §5.2).
    hinted: bool,
}

/// The CRC-checked frame at `frame_pos`, partly consumed.
#[derive(Clone, Copy)]
struct Current {
    first: u64,
    count: u32,
    len: usize,
    /// Events of the frame already passed.
    index: u32,
    /// Payload bytes already passed.
    byte: usize,
}

impl Reader {
    pub(super) fn new(inner: Arc<Inner>, name: String, position: Position) -> Reader {
        let seg = inner
            .segments
            .read()
            .values()
            .next()
            .cloned()
            .unwrap_or_else(|| inner.writer.lock().active.clone());
        let mut r = Reader {
            inner,
            name,
            seg,
            frame_pos: SEGMENT_HEADER_LEN,
            next: 0,
            cur: None,
            released: (0, 0),
            hinted: false,
        };
        r.seek_position(position);
        r
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The position of the next event this reader will return; acknowledging it means "done
    /// with everything before".
    pub fn position(&self) -> Position {
        Position {
            offset: self.next,
            segment: self.seg.base_offset(),
            frame_pos: self.frame_pos as u64,
        }
    }

    /// Durably acknowledges everything this reader has returned so far.
    pub fn ack(&self) -> Result<()> {
        self.inner.ack(&self.name, self.position())
    }

    /// Moves to `position`, trusting its segment/frame hint when it is plausible (the frame is
    /// checked when read), else scanning the segment that holds the offset.
    pub fn seek_position(&mut self, position: Position) {
        let hinted = self.inner.segments.read().get(&position.segment).cloned();
        match hinted {
            Some(seg)
                if position.frame_pos as usize >= SEGMENT_HEADER_LEN
                    && (position.frame_pos as usize) < seg.len()
                    && position.offset >= seg.base_offset() =>
            {
                self.seg = seg;
                self.frame_pos = position.frame_pos as usize;
                self.next = position.offset;
                self.cur = None;
                self.hinted = true;
            }
            _ => self.seek(position.offset),
        }
    }

    /// Moves to `offset` (or the oldest retained event, if it is older), scanning from the
    /// start of the segment that holds it.
    pub fn seek(&mut self, offset: u64) {
        let seg = {
            let segs = self.inner.segments.read();
            segs.range(..=offset)
                .next_back()
                .or_else(|| segs.iter().next())
                .map(|(_, s)| s.clone())
        };
        if let Some(seg) = seg {
            self.next = offset.max(seg.base_offset());
            self.seg = seg;
        }
        self.frame_pos = SEGMENT_HEADER_LEN;
        self.cur = None;
        self.hinted = false;
    }

    /// Calls `f(offset, event, segment)` for up to `max` committed events in order and returns
    /// how many it saw. `event` borrows from the segment's map.
    pub fn read_with<F>(&mut self, max: usize, mut f: F) -> Result<usize>
    where
        F: FnMut(u64, &EventView<'_>, &Arc<Segment>),
    {
        let mut n = 0;
        while n < max {
            let cur = match self.cur {
                Some(c) => c,
                None => match self.load() {
                    Ok(Some(c)) => c,
                    Ok(None) => break,
                    // Hand out what was read before the damage; the next call reports it (the
                    // reader has not moved past it).
                    Err(_) if n > 0 => break,
                    Err(e) => return Err(e),
                },
            };
            let seg = self.seg.clone();
            let frame = seg.readable(self.frame_pos, self.frame_pos + cur.len);
            let payload = frame.get(FRAME_HEADER_LEN..).unwrap_or(&[]);
            let mut it = EventIter::new(
                payload.get(cur.byte..).unwrap_or(&[]),
                cur.count - cur.index,
            );
            let mut c = cur;
            let mut failed = None;
            while n < max && c.index < c.count {
                match it.next() {
                    Some(Ok(ev)) => {
                        let offset = c.first + u64::from(c.index);
                        c.index += 1;
                        c.byte = payload.len() - it.rest_len();
                        if offset >= self.next {
                            f(offset, &ev, &seg);
                            self.next = offset + 1;
                            n += 1;
                        }
                    }
                    Some(Err(e)) => {
                        failed = Some(e.to_string());
                        break;
                    }
                    None => {
                        failed = Some("fewer events than the frame declares".into());
                        break;
                    }
                }
            }
            if let Some(reason) = failed {
                self.cur = None;
                if n > 0 && self.inner.opts.on_corruption == CorruptionPolicy::Fail {
                    break;
                }
                self.corrupt(reason)?;
                continue;
            }
            if c.index == c.count {
                self.frame_pos += c.len;
                self.cur = None;
                // At once rather than at the next read: a reader left on a segment it has
                // finished keeps it referenced, so the ack that retires it could only delete
                // it, not keep it as a spare. Missing offsets after it (an error under the
                // fail policy) are reported by the next `load`, after these events are handed
                // out.
                let _ = self.move_past_sealed_segment();
            } else {
                self.cur = Some(c);
            }
        }
        self.release_passed_pages();
        Ok(n)
    }

    /// Lets go of the map's pages this reader has passed, a [`RELEASE_CHUNK`] at a time: only
    /// a segment larger than that ever gets here (Flume's `maxFileSize` of up to 2 GiB), whose
    /// pages would otherwise stay resident until the segment is retired.
    fn release_passed_pages(&mut self) {
        let (base, pos) = (self.seg.base_offset(), self.frame_pos);
        if self.released.0 != base || self.released.1 > pos {
            // Another segment, or moved back (a seek): start counting again.
            self.released = (base, 0);
        }
        if pos - self.released.1 >= RELEASE_CHUNK {
            self.seg.release_pages(self.released.1, pos);
            self.released.1 = pos;
        }
    }

    /// Up to `max` committed events with their offsets, as owned events whose headers stay
    /// encoded (`event::Headers`). An event with a long body points into the map (zero-copy,
    /// headers and body); the segment stays mapped while any of them lives. Others are copied,
    /// headers and body in one piece.
    pub fn read(&mut self, max: usize) -> Result<Vec<(u64, Event)>> {
        let mut out = Vec::with_capacity(max.min(1024));
        let mut bad = None;
        self.read_with(max, |offset, ev, seg| {
            let owner = (ev.body.len() >= ZERO_COPY_MIN).then(|| share(seg, ev.headers_and_body()));
            match ev.to_event(owner) {
                Ok(e) => out.push((offset, e)),
                Err(e) => bad = bad.take().or(Some(e)),
            }
        })?;
        match bad {
            // Frames are validated before use, so this is damage the CRC did not catch.
            Some(e) => Err(WalError::Corrupt {
                path: self.seg.path().to_owned(),
                pos: self.frame_pos as u64,
                reason: e.to_string(),
            }),
            None => Ok(out),
        }
    }

    /// If the current segment is sealed and read to its end, moves to the next one (if it exists
    /// yet) and says so. Offsets between the two that this reader still needs are missing (a
    /// segment file deleted from under the log): the corruption policy decides, as for a
    /// damaged frame.
    fn move_past_sealed_segment(&mut self) -> Result<bool> {
        let Some(seal) = self.seg.seal() else {
            return Ok(false);
        };
        if self.frame_pos < seal.end_pos as usize {
            return Ok(false);
        }
        // The next segment usually starts above this one's base. A segment sealed without a
        // frame is followed by one with the same base, which took its place in the map and on
        // disk: one made large enough for a frame that did not fit (`Inner::roll`).
        let base = self.seg.base_offset();
        let next_seg = self
            .inner
            .segments
            .read()
            .range(base..)
            .map(|(_, s)| s)
            .find(|s| !Arc::ptr_eq(s, &self.seg))
            .cloned();
        let Some(s) = next_seg else {
            return Ok(false);
        };
        let from = self.next.max(seal.next_offset);
        if from < s.base_offset() {
            let reason = format!(
                "offsets {from}..{} are missing: no segment file holds them (the next one, {}, \
                 starts at {})",
                s.base_offset(),
                s.path().display(),
                s.base_offset()
            );
            if self.inner.opts.on_corruption == CorruptionPolicy::Fail {
                return Err(WalError::Corrupt {
                    path: self.seg.path().to_owned(),
                    pos: self.frame_pos as u64,
                    reason,
                });
            }
            let skipped = s.base_offset() - from;
            self.inner
                .skipped_events
                .fetch_add(skipped, Ordering::Relaxed);
            tracing::error!(
                segment = %self.seg.path().display(),
                %reason,
                skipped_events = skipped,
                "MISSING EVENTS SKIPPED (on_corruption = skip): these events are lost"
            );
        }
        self.next = self.next.max(s.base_offset());
        self.seg = s;
        self.frame_pos = SEGMENT_HEADER_LEN;
        self.hinted = false;
        Ok(true)
    }

    /// Loads the frame holding `next`, moving across segment boundaries. `None`: nothing more
    /// is committed yet.
    fn load(&mut self) -> Result<Option<Current>> {
        let mut rescanned = false;
        loop {
            let visible = self.seg.visible_end();
            if self.frame_pos >= visible {
                let end = match self.seg.seal() {
                    Some(seal) => seal.next_offset,
                    None => self.inner.durable.load(Ordering::Acquire),
                };
                if self.hinted && self.next < end {
                    // A hint past the segment's end for an offset still in it: passing on
                    // would skip events, waiting would never hand them out.
                    let next = self.next;
                    self.seek(next);
                    continue;
                }
                if self.move_past_sealed_segment()? {
                    continue;
                }
                return Ok(None);
            }
            let bytes = self.seg.readable(self.frame_pos, visible);
            let decoded = decode_frame(bytes);
            if self.hinted && decoded.is_err() {
                // The hint leads to no frame: find the offset from the segment's start, where
                // damage, if that is what it is, is met at its own position.
                let next = self.next;
                self.seek(next);
                continue;
            }
            self.hinted = false;
            let header = match decoded {
                Ok(frame)
                    if frame
                        .header
                        .first_offset
                        .checked_add(u64::from(frame.header.event_count))
                        .is_some() =>
                {
                    frame.header
                }
                Ok(_) => {
                    self.corrupt("frame offsets overflow".into())?;
                    continue;
                }
                Err(e) => {
                    self.corrupt(e.to_string())?;
                    continue;
                }
            };
            if header.next_offset() <= self.next {
                self.frame_pos += header.frame_len();
                continue;
            }
            if header.first_offset > self.next {
                if !rescanned && self.frame_pos != SEGMENT_HEADER_LEN {
                    // A stale position hint: find the offset from the segment's start.
                    rescanned = true;
                    let next = self.next;
                    self.seek(next);
                    continue;
                }
                self.next = header.first_offset;
            }
            let c = Current {
                first: header.first_offset,
                count: header.event_count,
                len: header.frame_len(),
                index: 0,
                byte: 0,
            };
            self.cur = Some(c);
            return Ok(Some(c));
        }
    }

    /// A frame in the committed log failed its checks: apply the corruption policy.
    fn corrupt(&mut self, reason: String) -> Result<()> {
        let path = self.seg.path().to_owned();
        let pos = self.frame_pos as u64;
        if self.inner.opts.on_corruption == CorruptionPolicy::Fail {
            return Err(WalError::Corrupt { path, pos, reason });
        }
        let visible = self.seg.visible_end();
        let seal = self.seg.seal();
        let before = seal.map(|s| s.next_offset).unwrap_or(u64::MAX);
        // `resync` takes coordinates relative to the slice it is given: shift by the header.
        let frames = self.seg.readable(SEGMENT_HEADER_LEN, visible);
        let rel = self.frame_pos - SEGMENT_HEADER_LEN;
        let found = resync(frames, rel, frames.len(), self.next, before);
        let (new_pos, new_next) = match found {
            Some((p, off)) => (p + SEGMENT_HEADER_LEN, off),
            None => (
                visible,
                seal.map(|s| s.next_offset)
                    .unwrap_or_else(|| self.inner.durable.load(Ordering::Acquire)),
            ),
        };
        let skipped = new_next.saturating_sub(self.next);
        self.inner.skipped_frames.fetch_add(1, Ordering::Relaxed);
        self.inner
            .skipped_events
            .fetch_add(skipped, Ordering::Relaxed);
        tracing::error!(
            segment = %path.display(),
            pos,
            %reason,
            skipped_events = skipped,
            resume_pos = new_pos,
            "CORRUPT FRAME SKIPPED (on_corruption = skip): these events are lost"
        );
        self.frame_pos = new_pos;
        self.next = new_next.max(self.next);
        self.cur = None;
        Ok(())
    }
}

/// A zero-copy handle on `part`, which must lie inside `seg`'s visible frames.
fn share(seg: &Arc<Segment>, part: &[u8]) -> Bytes {
    struct Slice {
        seg: Arc<Segment>,
        start: usize,
        len: usize,
    }
    impl AsRef<[u8]> for Slice {
        fn as_ref(&self) -> &[u8] {
            self.seg.readable(self.start, self.start + self.len)
        }
    }
    let Some(start) = seg.position_of(part) else {
        return Bytes::copy_from_slice(part);
    };
    Bytes::from_owner(Slice {
        seg: seg.clone(),
        start,
        len: part.len(),
    })
}
