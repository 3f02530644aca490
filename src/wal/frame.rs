//! Frame layout, CRC and event encoding: `wal-format.md` §3 ("Frame") and §4 ("Event encoding").
//!
//! A frame is what one append writes: a 24-byte header followed by the encoded events of one put
//! transaction. The CRC covers everything after the CRC field, so a torn write, zeroed bytes or a
//! bit flip anywhere in the frame is caught. Whether a frame *belongs* at a position (offset chain,
//! epoch order) is decided by the callers that know the position: recovery and readers.
//!
//! Decoding never panics and never allocates more than the input it is given: every length is
//! checked against the bytes actually present before it is used.

use bytes::Bytes;

use crate::event::{Event, Headers};

/// Bytes in a frame header.
pub const FRAME_HEADER_LEN: usize = 24;
/// Bytes of fixed fields in front of each event (event length + header count).
const EVENT_PREFIX_LEN: usize = 6;
/// Longest header key the encoding can carry (its length is a u16).
pub const MAX_HEADER_KEY_LEN: usize = u16::MAX as usize;
/// Most headers one event can carry (the count is a u16).
pub const MAX_HEADERS: usize = u16::MAX as usize;

/// The decoded fixed fields of a frame header (`wal-format.md` §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub crc: u32,
    pub payload_len: u32,
    pub first_offset: u64,
    pub event_count: u32,
    pub epoch: u32,
}

impl FrameHeader {
    /// Total bytes of the frame, header included.
    pub fn frame_len(&self) -> usize {
        FRAME_HEADER_LEN + self.payload_len as usize
    }

    /// One past the offset of the frame's last event.
    pub fn next_offset(&self) -> u64 {
        self.first_offset + u64::from(self.event_count)
    }
}

/// Why bytes are not a valid frame or event. Callers add the file and position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("{needed} bytes needed but only {available} remain")]
    Truncated { needed: usize, available: usize },
    #[error("empty frame (zero payload length or zero events): unwritten or zeroed space")]
    Empty,
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    BadCrc { stored: u32, computed: u32 },
    #[error("event {index}: {reason}")]
    BadEvent { index: u32, reason: &'static str },
    #[error("frame declares {declared} events but its payload holds {found}")]
    EventCountMismatch { declared: u32, found: u32 },
}

/// Why events cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("header key of {0} bytes exceeds the {MAX_HEADER_KEY_LEN}-byte limit")]
    KeyTooLong(usize),
    #[error("event has {0} headers; at most {MAX_HEADERS} are allowed")]
    TooManyHeaders(usize),
    #[error("event of {0} bytes exceeds the 4 GiB event limit")]
    EventTooLarge(usize),
    #[error("frame of {0} bytes exceeds the 4 GiB frame limit")]
    FrameTooLarge(usize),
    #[error("a frame must hold at least one event")]
    NoEvents,
}

/// Encoded size of one event, length prefix included.
pub fn encoded_event_len(event: &Event) -> Result<usize, EncodeError> {
    if event.headers.count() > MAX_HEADERS {
        return Err(EncodeError::TooManyHeaders(event.headers.count()));
    }
    if let Some((k, _)) = event
        .headers
        .pairs()
        .find(|(k, _)| k.len() > MAX_HEADER_KEY_LEN)
    {
        return Err(EncodeError::KeyTooLong(k.len()));
    }
    let len = raw_event_len(event);
    // The u32 event length counts the bytes after itself.
    if len - 4 > u32::MAX as usize {
        return Err(EncodeError::EventTooLarge(len));
    }
    Ok(len)
}

/// Encoded size of one event without the limit checks of [`encoded_event_len`].
fn raw_event_len(event: &Event) -> usize {
    let headers: usize = event
        .headers
        .pairs()
        .map(|(k, v)| 6 + k.len() + v.len())
        .sum();
    EVENT_PREFIX_LEN + headers + event.body.len()
}

/// Encoded size of a frame holding `events`.
pub fn encoded_frame_len(events: &[Event]) -> Result<usize, EncodeError> {
    if events.is_empty() {
        return Err(EncodeError::NoEvents);
    }
    let mut payload = 0usize;
    for e in events {
        payload += encoded_event_len(e)?;
    }
    if payload > u32::MAX as usize {
        return Err(EncodeError::FrameTooLarge(payload));
    }
    Ok(FRAME_HEADER_LEN + payload)
}

/// Writes a frame into `out`, which must be exactly `encoded_frame_len(events)` long (callers
/// compute it first to reserve space in the segment, so a mismatch is a programming error).
pub fn encode_frame(out: &mut [u8], first_offset: u64, epoch: u32, events: &[Event]) {
    let mut pos = FRAME_HEADER_LEN;
    for e in events {
        let len = raw_event_len(e);
        put(out, &mut pos, &((len - 4) as u32).to_le_bytes());
        put(out, &mut pos, &(e.headers.count() as u16).to_le_bytes());
        for (k, v) in e.headers.pairs() {
            put(out, &mut pos, &(k.len() as u16).to_le_bytes());
            put(out, &mut pos, k.as_bytes());
            put(out, &mut pos, &(v.len() as u32).to_le_bytes());
            put(out, &mut pos, v.as_bytes());
        }
        put(out, &mut pos, &e.body);
    }
    assert_eq!(
        pos,
        out.len(),
        "frame buffer size must match encoded_frame_len"
    );
    let payload_len = (out.len() - FRAME_HEADER_LEN) as u32;
    out[4..8].copy_from_slice(&payload_len.to_le_bytes());
    out[8..16].copy_from_slice(&first_offset.to_le_bytes());
    out[16..20].copy_from_slice(&(events.len() as u32).to_le_bytes());
    out[20..24].copy_from_slice(&epoch.to_le_bytes());
    let crc = crc32fast::hash(&out[4..]);
    out[0..4].copy_from_slice(&crc.to_le_bytes());
}

fn put(out: &mut [u8], pos: &mut usize, bytes: &[u8]) {
    out[*pos..*pos + bytes.len()].copy_from_slice(bytes);
    *pos += bytes.len();
}

/// Reads the header at the start of `buf` without checking the CRC. Used to hop over frames whose
/// integrity is vouched for elsewhere, and by diagnostics.
pub fn peek_header(buf: &[u8]) -> Result<FrameHeader, FrameError> {
    if buf.len() < FRAME_HEADER_LEN {
        return Err(FrameError::Truncated {
            needed: FRAME_HEADER_LEN,
            available: buf.len(),
        });
    }
    let h = FrameHeader {
        crc: le_u32(&buf[0..4]),
        payload_len: le_u32(&buf[4..8]),
        first_offset: le_u64(&buf[8..16]),
        event_count: le_u32(&buf[16..20]),
        epoch: le_u32(&buf[20..24]),
    };
    if h.payload_len == 0 || h.event_count == 0 {
        return Err(FrameError::Empty);
    }
    Ok(h)
}

/// A CRC-checked frame borrowed from its bytes.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    pub header: FrameHeader,
    pub payload: &'a [u8],
}

/// Decodes and CRC-checks the frame at the start of `buf`.
pub fn decode_frame(buf: &[u8]) -> Result<Frame<'_>, FrameError> {
    let header = peek_header(buf)?;
    let len = header.frame_len();
    if buf.len() < len {
        return Err(FrameError::Truncated {
            needed: len,
            available: buf.len(),
        });
    }
    let computed = crc32fast::hash(&buf[4..len]);
    if computed != header.crc {
        return Err(FrameError::BadCrc {
            stored: header.crc,
            computed,
        });
    }
    Ok(Frame {
        header,
        payload: &buf[FRAME_HEADER_LEN..len],
    })
}

impl<'a> Frame<'a> {
    /// The frame's events, in order. Each item is checked as it is decoded.
    pub fn events(&self) -> EventIter<'a> {
        EventIter {
            rest: self.payload,
            index: 0,
            declared: self.header.event_count,
        }
    }

    /// Decodes every event once, so that a later iteration cannot fail: checks lengths, UTF-8 of
    /// headers and that the payload holds exactly `event_count` events.
    pub fn validate(&self) -> Result<(), FrameError> {
        let mut found = 0u32;
        for ev in self.events() {
            ev?.check_headers()?;
            found += 1;
        }
        if found != self.header.event_count {
            return Err(FrameError::EventCountMismatch {
                declared: self.header.event_count,
                found,
            });
        }
        Ok(())
    }
}

/// One event inside a frame, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct EventView<'a> {
    header_count: u16,
    header_bytes: &'a [u8],
    pub body: &'a [u8],
    /// `header_bytes` followed by `body`: what an owned event keeps (see `to_event`).
    headers_and_body: &'a [u8],
}

impl<'a> EventView<'a> {
    /// The event's headers as borrowed strings, each checked as it is decoded.
    pub fn headers(&self) -> HeaderIter<'a> {
        HeaderIter {
            rest: self.header_bytes,
            left: self.header_count,
        }
    }

    /// The encoded headers followed by the body, as one slice: what [`EventView::to_event`]
    /// keeps.
    pub fn headers_and_body(&self) -> &'a [u8] {
        self.headers_and_body
    }

    /// Checks every header (lengths, UTF-8) and that the keys are in strictly ascending order,
    /// without allocating.
    pub fn check_headers(&self) -> Result<(), FrameError> {
        let mut previous: Option<&str> = None;
        for h in self.headers() {
            let (k, _) = h?;
            // Keys are written in strictly ascending order (wal-format.md §4); anything else is
            // not a frame weir wrote, and a repeated key would silently lose a value.
            if previous.is_some_and(|p| p >= k) {
                return Err(FrameError::BadEvent {
                    index: 0,
                    reason: "header keys out of order or repeated",
                });
            }
            previous = Some(k);
        }
        Ok(())
    }

    /// An owned event. `owner` is a zero-copy handle on [`EventView::headers_and_body`] when the
    /// caller has one; otherwise those bytes are copied, once. Either way the headers stay in
    /// their encoding, read in place ([`Headers::encoded`]), and the body is a slice of the same
    /// bytes: two allocations at most, not one per header string.
    pub fn to_event(&self, owner: Option<Bytes>) -> Result<Event, FrameError> {
        self.check_headers()?;
        let whole = match owner {
            Some(b) if b.len() == self.headers_and_body.len() => b,
            _ => Bytes::copy_from_slice(self.headers_and_body),
        };
        if self.header_count == 0 {
            return Ok(Event {
                headers: Headers::new(),
                body: whole,
            });
        }
        let split = self.header_bytes.len();
        Ok(Event {
            headers: Headers::encoded(whole.slice(..split), self.header_count, decode_header),
            body: whole.slice(split..),
        })
    }
}

/// Iterator over the events of a frame.
pub struct EventIter<'a> {
    rest: &'a [u8],
    index: u32,
    declared: u32,
}

impl<'a> EventIter<'a> {
    /// Iterates `count` events starting at `payload`, which may be a suffix of a frame's payload
    /// that begins at an event boundary (readers resuming inside a frame).
    pub fn new(payload: &'a [u8], count: u32) -> Self {
        EventIter {
            rest: payload,
            index: 0,
            declared: count,
        }
    }

    /// Bytes not yet consumed.
    pub fn rest_len(&self) -> usize {
        self.rest.len()
    }
}

impl<'a> Iterator for EventIter<'a> {
    type Item = Result<EventView<'a>, FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.index >= self.declared {
            if self.rest.is_empty() {
                return None;
            }
            self.rest = &[];
            return Some(Err(FrameError::BadEvent {
                index: self.index,
                reason: "bytes left after the declared number of events",
            }));
        }
        let index = self.index;
        self.index += 1;
        let bad = |reason| FrameError::BadEvent { index, reason };
        let result = (|| {
            if self.rest.len() < EVENT_PREFIX_LEN {
                return Err(bad("event prefix runs past the payload"));
            }
            let len = le_u32(&self.rest[0..4]) as usize;
            if len < 2 || len > self.rest.len() - 4 {
                return Err(bad("event length runs past the payload"));
            }
            let event = &self.rest[4..4 + len];
            self.rest = &self.rest[4 + len..];
            let header_count = u16::from_le_bytes([event[0], event[1]]);
            // Walk the headers once to find where the body starts.
            let mut pos = 2usize;
            for _ in 0..header_count {
                let klen =
                    le_u16_at(event, pos).ok_or(bad("header key length runs past the event"))?;
                pos += 2 + klen as usize;
                let vlen = le_u32_at(event, pos).ok_or(bad("header key runs past the event"))?;
                pos = pos
                    .checked_add(4 + vlen as usize)
                    .filter(|p| *p <= event.len())
                    .ok_or(bad("header value runs past the event"))?;
            }
            Ok(EventView {
                header_count,
                header_bytes: &event[2..pos],
                body: &event[pos..],
                headers_and_body: &event[2..],
            })
        })();
        if result.is_err() {
            self.index = self.declared;
            self.rest = &[];
        }
        Some(result)
    }
}

/// Iterator over an event's headers.
pub struct HeaderIter<'a> {
    rest: &'a [u8],
    left: u16,
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = Result<(&'a str, &'a str), FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        match split_header(self.rest) {
            Ok((pair, rest)) => {
                self.rest = rest;
                Some(Ok(pair))
            }
            Err(reason) => {
                self.left = 0;
                Some(Err(FrameError::BadEvent { index: 0, reason }))
            }
        }
    }
}

/// Splits the first header off an encoded header block (`wal-format.md` §4): key, value and the
/// rest. Lengths were bounds-checked when the event was split off; they are checked again so
/// this stands on its own.
fn split_header(b: &[u8]) -> Result<((&str, &str), &[u8]), &'static str> {
    let klen = le_u16_at(b, 0).ok_or("header key length truncated")? as usize;
    let key = b.get(2..2 + klen).ok_or("header key truncated")?;
    let vlen = le_u32_at(b, 2 + klen).ok_or("header value length truncated")? as usize;
    let vstart = 2 + klen + 4;
    let value = b
        .get(vstart..vstart.saturating_add(vlen))
        .ok_or("header value truncated")?;
    let key = std::str::from_utf8(key).map_err(|_| "header key is not UTF-8")?;
    let value = std::str::from_utf8(value).map_err(|_| "header value is not UTF-8")?;
    Ok(((key, value), &b[vstart + vlen..]))
}

/// [`split_header`] as the decoder of an event's [`Headers::encoded`] form, which
/// [`EventView::to_event`] checked first.
fn decode_header(b: &[u8]) -> Option<((&str, &str), &[u8])> {
    split_header(b).ok()
}

pub(crate) fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

pub(crate) fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

fn le_u16_at(b: &[u8], pos: usize) -> Option<u16> {
    let s = b.get(pos..pos.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

fn le_u32_at(b: &[u8], pos: usize) -> Option<u32> {
    let s = b.get(pos..pos.checked_add(4)?)?;
    Some(le_u32(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Event> {
        vec![
            Event::new(&b"hello"[..]).with_header("host", "edge-1"),
            Event::new(&b""[..]),
            Event::new(vec![0u8, 255, 10])
                .with_header("a", "")
                .with_header("", "v"),
        ]
    }

    fn encode(events: &[Event], first: u64, epoch: u32) -> Vec<u8> {
        let mut buf = vec![0u8; encoded_frame_len(events).unwrap()];
        encode_frame(&mut buf, first, epoch, events);
        buf
    }

    #[test]
    fn headers_read_back_stay_encoded_and_answer_as_the_map_would() {
        let e = Event::new(&b"body"[..])
            .with_header("b", "2")
            .with_header("a", "1")
            .with_header("c", "");
        let buf = encode(std::slice::from_ref(&e), 0, 1);
        let frame = decode_frame(&buf).unwrap();
        let view = frame.events().next().unwrap().unwrap();
        // With and without a zero-copy owner of the event's bytes.
        let owned = Bytes::copy_from_slice(view.headers_and_body());
        for back in [
            view.to_event(None).unwrap(),
            view.to_event(Some(owned)).unwrap(),
        ] {
            assert_eq!(back, e);
            assert_eq!(&back.body[..], b"body");
            assert_eq!(back.headers.count(), 3);
            assert_eq!(back.headers.get("a"), Some("1"));
            assert_eq!(back.headers.get("c"), Some(""));
            assert_eq!(back.headers.get("d"), None);
            assert!(back.headers.contains_key("b"));
            let pairs: Vec<_> = back.headers.pairs().collect();
            assert_eq!(pairs, [("a", "1"), ("b", "2"), ("c", "")]);
            assert_eq!(format!("{:?}", back.headers), format!("{:?}", e.headers));
            assert_eq!(
                serde_json::to_string(&back.headers).unwrap(),
                r#"{"a":"1","b":"2","c":""}"#
            );
            // Read back, an event encodes to the same bytes.
            assert_eq!(encode(std::slice::from_ref(&back), 0, 1), buf);
            // The map view (built on demand) holds the same; a change through it is the
            // event's from then on, and not its copy's.
            assert_eq!(back.headers.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
            let mut changed = back.clone();
            changed.headers.insert("a".into(), "9".into());
            changed.headers.remove("c");
            assert_eq!(changed.headers.get("a"), Some("9"));
            assert_eq!(changed.headers.count(), 2);
            assert_eq!(back.headers.get("a"), Some("1"));
            assert_ne!(changed, back);
            assert_eq!(
                back.headers.clone().into_map(),
                e.headers.clone().into_map()
            );
        }
    }

    /// Headers a source packed (`Headers::from_pairs`) encode exactly as the same map does.
    #[test]
    fn packed_headers_encode_as_the_map() {
        let pairs = [
            ("timestamp", "1700000000000"),
            ("Facility", "1"),
            ("host", "h"),
        ];
        let packed = Event {
            headers: Headers::from_pairs(&mut pairs.clone()),
            body: Bytes::from_static(b"x"),
        };
        let mapped = pairs
            .iter()
            .fold(Event::new(&b"x"[..]), |e, (k, v)| e.with_header(*k, *v));
        assert_eq!(
            encoded_frame_len(std::slice::from_ref(&packed)),
            encoded_frame_len(std::slice::from_ref(&mapped))
        );
        assert_eq!(encode(&[packed], 3, 1), encode(&[mapped], 3, 1));
    }

    #[test]
    fn round_trip() {
        let events = sample();
        let buf = encode(&events, 42, 7);
        let frame = decode_frame(&buf).unwrap();
        assert_eq!(frame.header.first_offset, 42);
        assert_eq!(frame.header.event_count, 3);
        assert_eq!(frame.header.epoch, 7);
        assert_eq!(frame.header.next_offset(), 45);
        frame.validate().unwrap();
        let decoded: Vec<Event> = frame
            .events()
            .map(|e| e.unwrap().to_event(None).unwrap())
            .collect();
        assert_eq!(decoded, events);
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let buf = encode(&sample(), 1, 1);
        for byte in 0..buf.len() {
            for bit in 0..8 {
                let mut b = buf.clone();
                b[byte] ^= 1 << bit;
                let ok = decode_frame(&b)
                    .map(|f| f.validate().is_ok())
                    .unwrap_or(false);
                assert!(!ok, "flip of bit {bit} at byte {byte} went unnoticed");
            }
        }
    }

    #[test]
    fn every_truncation_is_detected() {
        let buf = encode(&sample(), 1, 1);
        for len in 0..buf.len() {
            assert!(
                decode_frame(&buf[..len]).is_err(),
                "truncation to {len} accepted"
            );
        }
    }

    #[test]
    fn zeroes_are_not_a_frame() {
        assert_eq!(decode_frame(&[0u8; 64]).unwrap_err(), FrameError::Empty);
    }

    #[test]
    fn crc_valid_garbage_payload_is_rejected_not_panicking() {
        // A frame whose CRC is right but whose payload lies about lengths.
        let mut buf = vec![0u8; FRAME_HEADER_LEN + 8];
        buf[4..8].copy_from_slice(&8u32.to_le_bytes());
        buf[16..20].copy_from_slice(&1u32.to_le_bytes());
        buf[FRAME_HEADER_LEN..FRAME_HEADER_LEN + 4].copy_from_slice(&1000u32.to_le_bytes());
        let crc = crc32fast::hash(&buf[4..]);
        buf[0..4].copy_from_slice(&crc.to_le_bytes());
        let frame = decode_frame(&buf).unwrap();
        assert!(frame.validate().is_err());
    }

    #[test]
    fn repeated_or_unsorted_header_keys_are_rejected() {
        // One event with headers "b" then "a": CRC-valid but not canonical.
        let mut payload = Vec::new();
        let ev: &[u8] = &[2, 0, 1, 0, b'b', 0, 0, 0, 0, 1, 0, b'a', 0, 0, 0, 0];
        payload.extend_from_slice(&(ev.len() as u32).to_le_bytes());
        payload.extend_from_slice(ev);
        let mut buf = vec![0u8; FRAME_HEADER_LEN];
        buf.extend_from_slice(&payload);
        buf[4..8].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        buf[16..20].copy_from_slice(&1u32.to_le_bytes());
        let crc = crc32fast::hash(&buf[4..]);
        buf[0..4].copy_from_slice(&crc.to_le_bytes());
        let frame = decode_frame(&buf).unwrap();
        assert!(frame.validate().is_err());
        let ev = frame.events().next().unwrap().unwrap();
        assert!(ev.to_event(None).is_err());
    }

    #[test]
    fn oversized_key_is_refused() {
        let e = Event::new(&b"x"[..]).with_header("k".repeat(70_000), "v");
        assert_eq!(encoded_event_len(&e), Err(EncodeError::KeyTooLong(70_000)));
        assert_eq!(encoded_frame_len(&[]), Err(EncodeError::NoEvents));
    }
}
