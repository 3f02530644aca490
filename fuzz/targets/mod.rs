//! Bodies of the fuzz targets, shared by the cargo-fuzz binaries (`fuzz/fuzz_targets/*.rs`) and by
//! the stable-toolchain replay test (`tests/fuzz_corpus.rs`), so a corpus input exercises exactly
//! the same code in both. Plain Rust that depends only on `weir`, so it builds without
//! libFuzzer or a nightly toolchain.
//!
//! Every function here must return normally for every input; a panic is a finding.

// Each fuzz binary includes this whole module but calls only its own target.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use weir::event::Event;
use weir::wal::checkpoint::{
    CHECKPOINT_MAGIC, META_MAGIC, decode_checkpoint, decode_meta, decode_meta_log_id,
    encode_checkpoint,
};
use weir::wal::frame::{
    EventIter, FRAME_HEADER_LEN, decode_frame, encode_frame, encoded_frame_len, peek_header,
};
use weir::wal::inspect;
use weir::wal::recovery::{ScanStop, check_frame, resync, scan_frames, starts_expected_frame};
use weir::wal::segment::{self, SEGMENT_HEADER_LEN, segment_file_name};
use weir::wal::slots::{
    MAX_SLOT_PAYLOAD, SLOT_FILE_LEN, SLOT_LEN, decode_slot, decode_slots, encode_slot,
};

/// Segment images are capped so one input cannot make an iteration slow (libFuzzer's default
/// `-max_len` of 4096 keeps them at two pages anyway).
const MAX_SEGMENT_IMAGE: usize = 1 << 20;

/// `frame_decode`: decode, validate and walk a frame, and check that a valid frame is exactly what
/// the encoder writes for its events.
pub fn frame_decode(data: &[u8]) {
    check_frame_bytes(data);
    // Mutations almost never keep a checksum right, which would leave the structural checks
    // behind it unexplored: also try the input with its CRC repaired.
    let mut fixed = data.to_vec();
    if fix_frame_crc(&mut fixed) {
        check_frame_bytes(&fixed);
    }
}

/// Rewrites the CRC of the frame at the start of `buf`, if its header is plausible and the frame
/// fits; says whether any byte changed.
fn fix_frame_crc(buf: &mut [u8]) -> bool {
    let Ok(h) = peek_header(buf) else {
        return false;
    };
    let Some(frame) = buf.get_mut(..h.frame_len()) else {
        return false;
    };
    let crc = crc32fast::hash(&frame[4..]).to_le_bytes();
    let changed = frame[0..4] != crc;
    frame[0..4].copy_from_slice(&crc);
    changed
}

/// [`fix_frame_crc`] along a chain of frames laid end to end from the start of `buf`.
fn fix_chain_crcs(buf: &mut [u8]) -> bool {
    let mut pos = 0;
    let mut changed = false;
    while let Ok(h) = peek_header(&buf[pos..]) {
        let Some(end) = pos.checked_add(h.frame_len()).filter(|e| *e <= buf.len()) else {
            break;
        };
        changed |= fix_frame_crc(&mut buf[pos..end]);
        pos = end;
    }
    changed
}

fn check_frame_bytes(data: &[u8]) {
    let peeked = peek_header(data);
    let frame = match decode_frame(data) {
        Ok(f) => f,
        Err(_) => return,
    };
    // Decoding must agree with the cheaper header-only path the readers use to hop frames.
    assert_eq!(peeked.ok(), Some(frame.header));
    let frame_len = frame.header.frame_len();
    assert_eq!(frame.payload.len() + FRAME_HEADER_LEN, frame_len);

    // Iterating must be safe whether or not the frame is valid.
    let mut decoded = Vec::new();
    let mut all_ok = true;
    for ev in frame.events() {
        let Ok(ev) = ev else {
            all_ok = false;
            continue;
        };
        for h in ev.headers() {
            all_ok &= h.is_ok();
        }
        match ev.to_event(None) {
            Ok(e) => decoded.push(e),
            Err(_) => all_ok = false,
        }
    }
    let resumed = EventIter::new(frame.payload, frame.header.event_count).count();
    assert!(resumed <= frame.header.event_count as usize + 1);

    let valid = frame.validate().is_ok();
    // `validate` promises that a later iteration cannot fail, and nothing more or less.
    let iterated_ok = all_ok && decoded.len() == frame.header.event_count as usize;
    assert_eq!(valid, iterated_ok, "validate() disagrees with iteration");
    if !valid {
        return;
    }

    let events = decoded;
    // Headers read back stay encoded and are read in place; the map built from them on demand
    // must hold exactly what they answer.
    for e in &events {
        let pairs: Vec<(String, String)> = e
            .headers
            .pairs()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(e.headers.count(), pairs.len(), "header count disagrees");
        for (k, v) in &pairs {
            assert_eq!(
                e.headers.get(k),
                Some(v.as_str()),
                "header lookup disagrees"
            );
        }
        let map = e.headers.clone().into_map();
        assert!(
            map.into_iter().eq(pairs),
            "header map disagrees with the encoding"
        );
    }
    // The decoder rejects repeated or unsorted header keys (wal-format.md §4), so every valid
    // frame is canonical and must re-encode byte for byte.
    let canonical = frame
        .events()
        .filter_map(Result::ok)
        .all(|ev| keys_strictly_ascending(ev.headers().filter_map(Result::ok).map(|(k, _)| k)));

    let len = match encoded_frame_len(&events) {
        Ok(len) => len,
        Err(e) => panic!("a decoded frame's events cannot be re-encoded: {e}"),
    };
    let mut out = vec![0u8; len];
    encode_frame(
        &mut out,
        frame.header.first_offset,
        frame.header.epoch,
        &events,
    );
    assert!(canonical, "validate() accepted non-canonical header keys");
    {
        assert_eq!(len, frame_len, "re-encoded length differs");
        assert!(
            out == data[..frame_len],
            "re-encoding a valid frame did not reproduce its bytes"
        );
    }
    // Whatever the input's encoding, the encoder's output must decode to the same events.
    let again = match decode_frame(&out) {
        Ok(f) => f,
        Err(e) => panic!("re-encoded frame does not decode: {e}"),
    };
    assert!(
        again.validate().is_ok(),
        "re-encoded frame does not validate"
    );
    let round: Vec<Event> = again
        .events()
        .filter_map(Result::ok)
        .filter_map(|ev| ev.to_event(None).ok())
        .collect();
    assert_eq!(round, events, "re-encoded events differ");
}

fn keys_strictly_ascending<'a>(mut keys: impl Iterator<Item = &'a str>) -> bool {
    let Some(mut prev) = keys.next() else {
        return true;
    };
    for k in keys {
        if k <= prev {
            return false;
        }
        prev = k;
    }
    true
}

/// `segment_recovery`: the fuzz bytes follow a valid header page; the recovery scan and the
/// resynchronising walk of `weir wal verify` must stay in bounds and agree with each other.
pub fn segment_recovery(data: &[u8]) {
    // The raw bytes double as a candidate header page.
    if let Ok(info) = segment::decode_header(data) {
        // Sealing the same page must read back as exactly that seal, the rest unchanged.
        let seal = info.seal.unwrap_or(segment::Seal {
            end_pos: SEGMENT_HEADER_LEN as u64,
            next_offset: info.base_offset,
        });
        let mut page = data[..96].to_vec();
        let block = segment::encode_seal(&page, seal);
        page[64..96].copy_from_slice(&block);
        let resealed = segment::HeaderInfo {
            seal: Some(seal),
            ..info
        };
        assert_eq!(segment::decode_header(&page), Ok(resealed));
    }

    let image_len = (SEGMENT_HEADER_LEN + data.len())
        .next_multiple_of(SEGMENT_HEADER_LEN)
        .clamp(2 * SEGMENT_HEADER_LEN, MAX_SEGMENT_IMAGE);
    let body_len = data.len().min(image_len - SEGMENT_HEADER_LEN);

    // A chain may start at 0 (a fresh log) or wherever the first frame says, so that chains near
    // the end of the offset space (overflow checks) are reachable too.
    let first = peek_header(data).map(|h| h.first_offset).unwrap_or(0);
    let mut image = segment::encode_header(first, image_len as u64, None);
    image.resize(image_len, 0);
    image[SEGMENT_HEADER_LEN..SEGMENT_HEADER_LEN + body_len].copy_from_slice(&data[..body_len]);
    // The scan never reads the header page, so one image serves both bases.
    check_scan(&image, 0);
    if first != 0 {
        check_scan(&image, first);
    }
    // As in `frame_decode`, repair the checksums so that offset, epoch and payload mutations are
    // judged by the chain rules rather than all stopping at the first CRC.
    if fix_chain_crcs(&mut image[SEGMENT_HEADER_LEN..]) {
        check_scan(&image, 0);
        if first != 0 {
            check_scan(&image, first);
        }
    }
    // Only once, on the image with the longer valid chain: it is the slow part (real files).
    check_verify(&image, first);
}

fn check_scan(image: &[u8], base: u64) {
    let end = scan_frames(image, SEGMENT_HEADER_LEN, base, image.len());
    assert!(end.end_pos <= image.len(), "end past the image: {end:?}");
    assert!(
        end.end_pos >= SEGMENT_HEADER_LEN,
        "end inside the header: {end:?}"
    );
    assert!(end.next_offset >= base, "offsets went backwards: {end:?}");
    assert_eq!(end.frames == 0, end.end_pos == SEGMENT_HEADER_LEN);
    assert!(
        end.next_offset - base >= end.frames,
        "a frame without events"
    );
    assert_eq!(
        end.stop == ScanStop::SegmentEnd,
        end.end_pos == image.len()
            || image.len() - end.end_pos < FRAME_HEADER_LEN && {
                image[end.end_pos..].iter().all(|b| *b == 0)
            },
        "stop reason inconsistent with the position: {end:?}"
    );

    // The valid prefix is self-consistent: scanning only it finds the same chain, cleanly.
    let prefix = scan_frames(&image[..end.end_pos], SEGMENT_HEADER_LEN, base, end.end_pos);
    assert_eq!(
        (
            prefix.end_pos,
            prefix.next_offset,
            prefix.frames,
            prefix.max_epoch
        ),
        (end.end_pos, end.next_offset, end.frames, end.max_epoch),
        "re-scanning the valid prefix differs"
    );
    assert_eq!(prefix.stop, ScanStop::SegmentEnd);

    // Where the chain stopped, the frame there (if any) must not continue it.
    if end.end_pos < image.len() {
        assert!(check_frame(&image[end.end_pos..], end.next_offset, end.max_epoch).is_err());
    }

    for (after, before) in [
        (end.next_offset, u64::MAX),
        (0, u64::MAX),
        (base, end.next_offset),
    ] {
        let Some((pos, off)) = resync(image, end.end_pos, image.len(), after, before) else {
            continue;
        };
        assert!(pos > end.end_pos && pos + FRAME_HEADER_LEN <= image.len());
        assert!(
            off > after && off < before,
            "resync offset {off} out of ({after}, {before})"
        );
        let Ok(frame) = decode_frame(&image[pos..]) else {
            panic!("resync landed on a frame that does not decode at {pos}");
        };
        assert_eq!(frame.header.first_offset, off);
        assert!(frame.validate().is_ok());
        assert!(pos + frame.header.frame_len() <= image.len());
    }
}

/// Distinct scratch directories for concurrent callers (the replay test runs targets in
/// parallel threads).
static SCRATCH: AtomicU64 = AtomicU64::new(0);

/// Runs `weir wal verify`'s walk over the image written as a real segment file, unsealed and then
/// sealed over its whole length (which turns every damaged stretch into a resync).
fn check_verify(image: &[u8], base: u64) {
    let dir = std::env::temp_dir().join(format!(
        "weir-fuzz-{}-{}",
        std::process::id(),
        SCRATCH.fetch_add(1, Ordering::Relaxed)
    ));
    let _cleanup = RemoveOnDrop(dir.clone());
    if std::fs::create_dir(&dir).is_err() {
        // The scratch space is the environment's, not the code under test's; skip rather than
        // report a finding that is not one.
        return;
    }
    let path = dir.join(segment_file_name(base));
    if std::fs::write(&path, image).is_err() {
        return;
    }
    let Ok(report) = inspect::verify(&dir, None, |_, _| {}) else {
        panic!("verify failed on a well-formed segment file");
    };
    assert_eq!(report.segments.len(), 1, "{:?}", report.problems);
    let seg = &report.segments[0];
    let scan = scan_frames(image, SEGMENT_HEADER_LEN, base, image.len());
    // Unsealed, verify's walk is the recovery scan and must reach the same end.
    assert_eq!(
        (seg.end_pos, seg.next_offset, seg.frames),
        (scan.end_pos as u64, scan.next_offset, scan.frames),
        "verify and recovery disagree on an unsealed segment"
    );
    // A torn tail is an invalid stop on the start of the frame the chain expected; other bytes
    // there are a reused segment's leftovers, which verify passes over as open does.
    let torn = starts_expected_frame(&image[scan.end_pos..], scan.next_offset, scan.max_epoch);
    assert_eq!(seg.tail.is_some(), !scan.stop.is_clean() && torn);

    // A seal that vouches for the whole file and no offset limit makes the walk treat every
    // damaged stretch as damage to skip, resynchronising on any later frame.
    let mut sealed = image.to_vec();
    let seal = segment::Seal {
        end_pos: image.len() as u64,
        next_offset: u64::MAX,
    };
    let block = segment::encode_seal(&sealed[..SEGMENT_HEADER_LEN], seal);
    sealed[64..96].copy_from_slice(&block);
    if std::fs::write(&path, &sealed).is_err() {
        return;
    }
    let Ok(report) = inspect::verify(&dir, None, |_, _| {}) else {
        panic!("verify failed on a well-formed sealed segment file");
    };
    assert_eq!(report.segments.len(), 1, "{:?}", report.problems);
    let seg = &report.segments[0];
    assert!(seg.sealed);
    assert!(seg.end_pos <= image.len() as u64);
    assert!(seg.frames >= scan.frames);
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `checkpoint_decode`: slot files and the checkpoint and meta records they hold.
pub fn checkpoint_decode(data: &[u8]) {
    check_slot_file(data);
    // As in `frame_decode`: repair slot checksums so mutations reach the payload decoders.
    let mut fixed = data.to_vec();
    let mut changed = fix_slot_crc(&mut fixed);
    if let Some(second) = fixed.get_mut(SLOT_LEN..) {
        changed |= fix_slot_crc(second);
    }
    if changed {
        check_slot_file(&fixed);
    }
}

/// Rewrites the CRC of the slot at the start of `buf` when its length field fits; says whether
/// any byte changed.
fn fix_slot_crc(buf: &mut [u8]) -> bool {
    let Some(len) = buf
        .get(6..8)
        .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    else {
        return false;
    };
    let end = 16 + len;
    if len > MAX_SLOT_PAYLOAD || end + 4 > buf.len().min(SLOT_LEN) {
        return false;
    }
    let crc = crc32fast::hash(&buf[..end]).to_le_bytes();
    let changed = buf[end..end + 4] != crc;
    buf[end..end + 4].copy_from_slice(&crc);
    changed
}

fn check_slot_file(data: &[u8]) {
    for magic in [CHECKPOINT_MAGIC, META_MAGIC] {
        let slots: Vec<_> = (0..2)
            .filter_map(|i| {
                let bytes = data.get(i * SLOT_LEN..(i + 1) * SLOT_LEN)?;
                let (seq, payload) = decode_slot(bytes, magic).ok()?;
                check_slot(bytes, magic, seq, payload);
                Some((i, seq, payload))
            })
            .collect();
        let newest = decode_slots(data, magic);
        match &newest {
            None => assert!(slots.is_empty()),
            Some(r) => {
                assert!(slots.contains(&(r.slot, r.sequence, r.payload)));
                assert!(slots.iter().all(|(_, s, _)| *s <= r.sequence));
            }
        }
        // A whole file read of more than two slots must pick the same record.
        if data.len() > SLOT_FILE_LEN {
            assert_eq!(decode_slots(&data[..SLOT_FILE_LEN], magic), newest);
        }
        // A short or long single slot is decoded on its own terms too.
        if let Ok((seq, payload)) = decode_slot(data, magic) {
            check_slot(data, magic, seq, payload);
        }
        for (_, _, payload) in &slots {
            check_checkpoint(payload);
            let _ = decode_meta(payload);
            let _ = decode_meta_log_id(payload);
        }
    }
    check_checkpoint(data);
    if let Some(epoch) = decode_meta(data) {
        assert_eq!(decode_meta(&epoch.to_le_bytes()), Some(epoch));
    }
}

fn check_slot(bytes: &[u8], magic: &[u8; 4], seq: u64, payload: &[u8]) {
    assert!(payload.len() <= MAX_SLOT_PAYLOAD);
    // A valid slot is exactly what the encoder writes for its contents, up to its CRC.
    let encoded = encode_slot(magic, seq, payload);
    let used = 16 + payload.len() + 4;
    assert_eq!(&encoded[..used], &bytes[..used], "slot is not canonical");
    assert_eq!(decode_slot(&encoded, magic), Ok((seq, payload)));
}

fn check_checkpoint(payload: &[u8]) {
    let Ok(c) = decode_checkpoint(payload) else {
        return;
    };
    let encoded = encode_checkpoint(&c);
    assert_eq!(decode_checkpoint(&encoded).as_ref(), Ok(&c));
    assert_eq!(
        &payload[..encoded.len()],
        &encoded[..],
        "checkpoint is not canonical"
    );
    assert!(
        encoded.len() <= MAX_SLOT_PAYLOAD,
        "a valid checkpoint must fit a slot"
    );
}

// ---------------------------------------------------------------------------------------------
// What network peers send: the RPC sources' requests, the RPC sinks' replies, and the text the
// line and HTTP sources parse. Each must yield an event, an error, or a reply, never a panic.

/// `rpc_messages`: the Avro and Thrift RPC decoders. The first byte picks one; the rest is the
/// bytes a peer sent.
pub fn rpc_messages(data: &[u8]) {
    use weir::avro_rpc::{self, Requestor, Responder, ServerConnection, Status};
    use weir::thrift_rpc::{self, Protocol};
    let Some((&which, msg)) = data.split_first() else {
        return;
    };
    let take = |call: avro_rpc::Call| {
        let _ = call.into_events();
        Status::Ok
    };
    match which % 7 {
        // An avro source's first request on a connection (handshake, then the call), then a
        // second one on the same connection if the first left it usable.
        0 => {
            let responder = Responder::new();
            let mut conn = ServerConnection::default();
            if responder.respond(&mut conn, msg, take).is_ok() {
                let _ = responder.respond(&mut conn, msg, take);
            }
        }
        // The call behind a handshake weir's own sink sends, so the call decoder sees the input.
        1 => {
            let responder = Responder::new();
            let mut conn = ServerConnection::default();
            let request = Requestor::new().request(msg);
            let reply = responder.respond(&mut conn, &request, take);
            assert!(reply.is_ok(), "weir's own handshake was refused");
        }
        // An avro sink reading a server's replies.
        2 => {
            let mut requestor = Requestor::new();
            let _ = requestor.read_reply(msg);
            let _ = requestor.read_reply(msg);
        }
        // Netty's framing, frame after frame.
        3 => {
            let mut stream = msg;
            while let Ok(Some(_)) = avro_rpc::read_frame(&mut stream) {}
        }
        // A thrift source's request, in each protocol; a served call's reply must be one the
        // sink side reads back.
        4 | 5 => {
            let proto = if which % 7 == 4 {
                Protocol::Compact
            } else {
                Protocol::Binary
            };
            let _ = thrift_rpc::serve(proto, msg, |_, _| thrift_rpc::Status::Ok);
        }
        // A thrift sink reading a reply, and the framed transport.
        _ => {
            for proto in [Protocol::Compact, Protocol::Binary] {
                let _ = thrift_rpc::read_reply(proto, "appendBatch", 1, msg);
            }
            let mut stream = msg;
            while let Ok(Some(_)) = thrift_rpc::read_frame(&mut stream, 16_384_000) {}
        }
    }
}

/// `source_messages`: the text decoders of the line and HTTP sources, and the Flume event
/// format read from Kafka records. The first byte picks one; the rest is the input.
pub fn source_messages(data: &[u8]) {
    use weir::config::KeepFields;
    use weir::source::http::{blob, json};
    use weir::source::syslog::framing::Framer;
    use weir::source::syslog::parse::Parser;
    let Some((&which, input)) = data.split_first() else {
        return;
    };
    match which % 4 {
        // A syslog TCP stream: framed (newlines and octet counting), each message parsed.
        0 => {
            let now = chrono::Utc::now();
            for (size, keep) in [(2500, KeepFields::NONE), (16, KeepFields::ALL)] {
                let mut framer = Framer::new(size);
                let (mut frames, mut problems) = (Vec::new(), Vec::new());
                let used = framer.split(input, true, &mut frames, &mut problems);
                assert_eq!(used, input.len(), "at eof every byte is consumed");
                let parser = Parser::new(keep, chrono::Utc);
                for f in &frames {
                    let msg = &input[f.range.clone()];
                    let _ = parser.event(msg, f.truncated, now);
                }
            }
        }
        // An http source's JSON body.
        1 => {
            let _ = json::parse_events(input);
        }
        // A Flume event in Avro (Kafka's useFlumeEventFormat / parseAsFlumeEvent): what decodes
        // re-encodes to the same event.
        2 => {
            if let Ok((headers, body)) = weir::flume_event_format::decode(input) {
                let again = weir::flume_event_format::encode(&headers, &body);
                let decoded = weir::flume_event_format::decode(&again);
                assert_eq!(
                    decoded.ok(),
                    Some((headers, body)),
                    "re-encoding changed the event"
                );
            }
        }
        // The BlobHandler's query string.
        _ => {
            let path = String::from_utf8_lossy(input);
            let _ = blob::event(&path, Some("text/plain"), Vec::new());
        }
    }
}

/// `spool_files`: the spooldir source's file readers (LINE, BLOB, AVRO) over a file holding the
/// input. Reading stops at the end or at a fault, never panics; positions only move forward and
/// stay inside the file; and reading resumed from the first event's end position gives exactly
/// the events read after it from the start. The input is also read as Flume's position file
/// (`flume_meta`): never a panic, and a file it names comes from the input's bytes.
pub fn spool_files(data: &[u8]) {
    if let Ok(p) = weir::source::spooldir::flume_meta::parse(data) {
        assert!(
            p.target.is_empty()
                || data
                    .windows(p.target.len())
                    .any(|w| w == p.target.as_bytes()),
            "a file name that is not in the input: {:?}",
            p.target
        );
    }
    use weir::config::{AvroSchemaType, DecodeErrorPolicy, SpoolDeserializer};
    use weir::source::spooldir::deserializer::{self, After, Position};
    let dir = std::env::temp_dir().join(format!(
        "weir-fuzz-{}-{}",
        std::process::id(),
        SCRATCH.fetch_add(1, Ordering::Relaxed)
    ));
    let _cleanup = RemoveOnDrop(dir.clone());
    let path = dir.join("spooled.log");
    // The scratch space is the environment's: skip rather than report a finding.
    if std::fs::create_dir(&dir).is_err() || std::fs::write(&path, data).is_err() {
        return;
    }
    let len = data.len() as u64;
    let kinds = [
        (
            SpoolDeserializer::Avro {
                schema_type: AvroSchemaType::Hash,
            },
            DecodeErrorPolicy::Fail,
        ),
        (
            SpoolDeserializer::Line {
                max_line_length: 16,
            },
            DecodeErrorPolicy::Fail,
        ),
        (
            SpoolDeserializer::Line {
                max_line_length: 2048,
            },
            DecodeErrorPolicy::Replace,
        ),
        (
            SpoolDeserializer::Blob { max_blob_length: 7 },
            DecodeErrorPolicy::Fail,
        ),
    ];
    // Every event with the position after it, from `start`, in batches of 3.
    let read_all = |kind, policy, start: Position| {
        let Ok(file) = std::fs::File::open(&path) else {
            return Vec::new();
        };
        let mut d = deserializer::open(kind, policy, file, len, start);
        let mut pieces = Vec::new();
        for _ in 0..10_000 {
            let Ok(batch) = d.read_batch(3) else { break };
            pieces.extend(batch.pieces);
            if batch.after != After::More {
                break;
            }
        }
        pieces
    };
    // Where a mark of Flume's AVRO deserializer leads: inside the file, and from a mark before
    // the first block, to the first block.
    if let Ok(file) = std::fs::File::open(&path) {
        let resume = |mark| weir::source::spooldir::block_after_flume_mark(&file, len, mark);
        for mark in [len / 3, len.saturating_sub(17), len, len + 5, u64::MAX] {
            if let Ok(at) = resume(mark) {
                assert!(at <= len, "Flume's mark {mark} leads past the end: {at}");
            }
        }
        if let Ok(first) = resume(0) {
            let (kind, policy) = kinds[0];
            assert_eq!(
                read_all(kind, policy, Position::at(first)),
                read_all(kind, policy, Position::default()),
                "Flume's mark 0 does not lead to the first block"
            );
        }
    }
    for (kind, policy) in kinds {
        let pieces = read_all(kind, policy, Position::default());
        let mut last = Position::default();
        for p in &pieces {
            assert!(p.end.offset <= len, "a position past the end of the file");
            assert!(
                (p.end.offset, p.end.records) > (last.offset, last.records)
                    || (p.end.offset > last.offset),
                "a position that does not move forward: {:?} after {:?}",
                p.end,
                last
            );
            last = p.end;
        }
        if let Some(first) = pieces.first() {
            let resumed = read_all(kind, policy, first.end);
            assert_eq!(
                resumed,
                pieces[1..],
                "resuming after the first event differs"
            );
        }
    }
}

/// `config_parse`: a Flume properties file as `weir agent` reads it: parsed, its `${…}`
/// references resolved and each agent it defines built into a configuration. Bad input is an
/// error naming the file (and, when it names a line, one inside the file), never a panic or a
/// hang; a configuration that builds is wired consistently.
pub fn config_parse(data: &[u8]) {
    use weir::config::{AgentConfig, ConfigError, Lookups, Properties};
    let lines = 1 + data.iter().filter(|&&b| b == b'\n' || b == b'\r').count();
    let check_error = |e: &ConfigError| {
        let shown = e.to_string();
        assert!(
            shown.starts_with("fuzz.properties"),
            "an error that names no file: {shown}"
        );
        if let Some(line) = e.line {
            assert!(
                (1..=lines).contains(&line),
                "line {line} of a {lines}-line file: {shown}"
            );
        }
    };
    let props = match Properties::parse(std::path::Path::new("fuzz.properties"), data) {
        Ok(props) => props,
        Err(e) => return check_error(&e),
    };
    for (key, entry) in &props.entries {
        assert!(
            (1..=lines).contains(&entry.line),
            "{key} on line {}",
            entry.line
        );
    }
    // An `external` config filter runs the command the file names: not something to fuzz.
    let filters = props.entries.keys().any(|k| k.contains("configfilters"));
    let env = |name: &str| match name {
        "PORT" => Some("4141".to_owned()),
        "DIR" => Some("/var/lib/weir".to_owned()),
        "SELF" => Some("${env:SELF}".to_owned()),
        _ => None,
    };
    let system = [("port".to_owned(), "5140".to_owned())];
    let mut agents = props.agent_names();
    if agents.is_empty() {
        agents.push("a".to_owned());
    }
    for agent in agents.into_iter().take(3) {
        let mut props = props.clone();
        if !filters {
            let lookups = Lookups {
                system: &system,
                env_fallback: true,
                env: &env,
            };
            if let Err(e) = props.interpolate(&format!("{agent}."), &lookups) {
                check_error(&e);
                continue;
            }
        }
        let config = match AgentConfig::from_properties(&props, &agent) {
            Ok(config) => config,
            Err(e) => {
                check_error(&e);
                continue;
            }
        };
        let channels: Vec<&str> = config.channels.iter().map(|c| c.name.as_str()).collect();
        let sinks: Vec<&str> = config.sinks.iter().map(|s| s.name.as_str()).collect();
        for source in &config.sources {
            run_interceptors(&source.interceptors, data);
            assert!(
                !source.channels.is_empty(),
                "source {} feeds nothing",
                source.name
            );
            for c in &source.channels {
                assert!(
                    channels.contains(&c.as_str()),
                    "source {} -> unknown {c}",
                    source.name
                );
            }
        }
        for sink in &config.sinks {
            assert!(
                channels.contains(&sink.channel.as_str()),
                "sink {} <- unknown {}",
                sink.name,
                sink.channel
            );
            assert!(
                sink.batch_size >= 1,
                "sink {} takes batches of 0",
                sink.name
            );
        }
        for group in &config.sink_groups {
            for s in &group.sinks {
                assert!(
                    sinks.contains(&s.as_str()),
                    "group {} has unknown {s}",
                    group.name
                );
            }
        }
        assert!(!config.describe().is_empty());
    }
}

/// Runs a source's interceptor chain, as configured by the fuzzed file, over a few events (one
/// of them made of the input's last bytes): the patterns, replacement templates and date
/// formats the file gave must not panic on any event. Filters only drop events, and every
/// event's headers read back consistently. A chain with a `host` interceptor is skipped: it
/// resolves this machine's name when built.
fn run_interceptors(configs: &[weir::config::InterceptorConfig], data: &[u8]) {
    use weir::config::InterceptorConfig;
    use weir::interceptor::Chain;
    if configs
        .iter()
        .any(|c| matches!(c, InterceptorConfig::Host { .. }))
    {
        return;
    }
    let tail = &data[data.len().saturating_sub(120)..];
    let events = vec![
        Event::new(&b"user=alice 12:34 DEBUG 2026-11-27T10:00:00.000+0000 ok"[..]),
        Event::new(&b""[..])
            .with_header("a", "1")
            .with_header("b", "x y"),
        Event::new(&b"\xff\xfe not utf-8 \xe6"[..]),
        Event::new(tail.to_vec()).with_header("timestamp", "1700000000000"),
    ];
    let n = events.len();
    let out = Chain::new(configs).apply(events);
    assert!(out.len() <= n, "interceptors made events out of nothing");
    for e in &out {
        assert_eq!(e.headers.count(), e.headers.pairs().count());
    }
}

// ---------------------------------------------------------------------------------------------
// What the user's files hold beyond the properties file: the Java key and trust stores that
// Kafka clients' ssl.* keys name.

/// The passwords of the fixture stores the seeds are made from.
const STORE_PASSWORD: &str = "store-pass";
const KEY_PASSWORD: &str = "key-pass";

/// `java_keystore`: a key or trust store's bytes, read as JKS (weir's own parser) with and
/// without the passwords, and as PKCS#12 (OpenSSL's). Never a panic; a byte offset in an error
/// lies inside the input; what is read back is valid PEM.
pub fn java_keystore(data: &[u8]) {
    check_store(data);
    // As the CRC repairs above: mutations almost never keep the store's SHA-1 digest right, and
    // without it the entries behind it are reached only without a password.
    if let Some(body) = data.len().checked_sub(20) {
        let mut fixed = data.to_vec();
        let digest = jks_digest(STORE_PASSWORD, &fixed[..body]);
        if fixed[body..] != digest {
            fixed[body..].copy_from_slice(&digest);
            check_store(&fixed);
        }
    }
}

/// A JKS store's integrity digest: SHA-1 of the password's UTF-16BE bytes, "Mighty Aphrodite"
/// and the store's bytes before the digest.
pub fn jks_digest(password: &str, body: &[u8]) -> [u8; 20] {
    let mut h = openssl::sha::Sha1::new();
    let pw: Vec<u8> = password.encode_utf16().flat_map(u16::to_be_bytes).collect();
    h.update(&pw);
    h.update(b"Mighty Aphrodite");
    h.update(body);
    h.finish()
}

fn check_store(data: &[u8]) {
    use weir::config::java_keystore::read_bytes;
    for (password, key_password) in [
        (Some(STORE_PASSWORD), Some(KEY_PASSWORD)),
        (None, Some(KEY_PASSWORD)),
        (None, None),
    ] {
        match read_bytes(data, "JKS", password, key_password) {
            Ok(pem) => {
                if !pem.trusted.is_empty() {
                    assert!(openssl::x509::X509::stack_from_pem(pem.trusted.as_bytes()).is_ok());
                }
                if let Some(key) = pem.key {
                    assert!(openssl::pkey::PKey::private_key_from_pem(key.key.as_bytes()).is_ok());
                    assert!(openssl::x509::X509::stack_from_pem(key.chain.as_bytes()).is_ok());
                }
            }
            Err(e) => {
                let shown = e.to_string();
                if let Some(rest) = shown.strip_prefix("cut short at byte ") {
                    let at: usize = rest
                        .split(':')
                        .next()
                        .and_then(|n| n.parse().ok())
                        .expect("an offset");
                    assert!(
                        at <= data.len(),
                        "offset {at} past a {}-byte store",
                        data.len()
                    );
                }
            }
        }
    }
    let _ = read_bytes(data, "PKCS12", Some(STORE_PASSWORD), None);
}

/// `bucket_path`: a first byte choosing the time settings, then a path template (Flume's
/// `hdfs.path` escapes), a newline, the event's `timestamp` header, a newline, and the value of
/// its `app` header. Parsing and expanding never panic, whatever the template, zone, rounding
/// or timestamp (a header comes from the network); a constant template expands to the same
/// text for any event and time; one that needs no timestamp never asks for it, and neither
/// does any template under `useLocalTimeStamp`.
pub fn bucket_path(data: &[u8]) {
    use weir::bucket_path::{BucketPath, ExpandError, RoundUnit, TimeSettings, Zone};
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let mut parts = text.splitn(3, '\n');
    let template = parts.next().unwrap_or("");
    let stamp = parts.next();
    let app = parts.next().unwrap_or("");
    // Host escapes resolve this machine's names at parse: keep the fuzzer off the resolver.
    if template.contains("%[") {
        return;
    }
    let Ok(path) = BucketPath::parse(template) else {
        return;
    };
    let zones = [
        "UTC",
        "GMT+05:30",
        "GMT-8",
        "Asia/Kolkata",
        "America/New_York",
    ];
    let zone = match usize::from(choice & 7) {
        i if i < zones.len() => match Zone::parse(zones[i]) {
            Ok(z) => z,
            Err(e) => panic!("{}: {e}", zones[i]),
        },
        _ => Zone::Local,
    };
    let round = match (choice >> 3) & 3 {
        0 => None,
        1 => Some((10, RoundUnit::Minute)),
        2 => Some((2, RoundUnit::Hour)),
        _ => Some((15, RoundUnit::Second)),
    };
    let settings = |use_local_time_stamp| TimeSettings {
        round,
        use_local_time_stamp,
        zone: zone.clone(),
    };
    let mut event = Event::new(Vec::new()).with_header("app", app);
    if let Some(stamp) = stamp {
        event = event.with_header("timestamp", stamp);
    }
    let now = i64::from_le_bytes(*b"\x00\x10\x8e\xc8\x9a\x01\x00\x00"); // 2026-ish, in ms
    let expanded = path.expand(&event.headers, now, &settings(false));
    let local = path.expand(&event.headers, now, &settings(true));
    assert!(
        !matches!(local, Err(ExpandError::MissingTimestamp)),
        "useLocalTimeStamp asked for a timestamp: {template:?}"
    );
    let bare = Event::new(Vec::new());
    if !path.needs_timestamp() {
        assert!(
            !matches!(
                path.expand(&bare.headers, now, &settings(false)),
                Err(ExpandError::MissingTimestamp)
            ),
            "{template:?} needs no timestamp but asked for one"
        );
    }
    if path.is_constant() {
        let other = Event::new(Vec::new())
            .with_header("app", "other")
            .with_header("timestamp", "1");
        let again = path.expand(&other.headers, now / 3, &settings(false));
        assert_eq!(
            expanded.as_ref().ok(),
            again.as_ref().ok(),
            "constant {template:?} expanded differently"
        );
    }
}
