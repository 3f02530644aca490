//! Behaviour of the write-ahead log through its public API: the documented format, a model-based
//! property test, damage at every byte position, retention, capacity, locking and offsets.

use std::path::{Path, PathBuf};
use std::time::Duration;

use proptest::prelude::*;
use weir::event::Event;
use weir::wal::frame::{encode_frame, encoded_frame_len};
use weir::wal::inspect;
use weir::wal::segment::{SEGMENT_HEADER_LEN, segment_file_name};
use weir::wal::{CorruptionPolicy, SyncPolicy, Wal, WalError, WalOptions};

const SMALL: u64 = 16 * 1024;

fn opts(segment_size: u64) -> WalOptions {
    WalOptions {
        segment_size,
        ..Default::default()
    }
}

fn ev(i: u64, len: usize) -> Event {
    let mut body = format!("event-{i}-").into_bytes();
    body.resize(len.max(body.len()), b'a' + (i % 26) as u8);
    Event::new(body).with_header("seq", i.to_string())
}

fn read_all(wal: &Wal, name: &str) -> Vec<(u64, Event)> {
    let mut r = wal.reader(name).unwrap();
    let mut out = Vec::new();
    loop {
        let batch = r.read(1000).unwrap();
        if batch.is_empty() {
            return out;
        }
        out.extend(batch);
    }
}

fn seg_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(segment_file_name(base))
}

#[test]
fn wal_format_worked_example() {
    // The bytes printed in wal-format.md §4.1.
    let expected: Vec<u8> = "fa f9 ef 50 10 00 00 00 05 00 00 00 00 00 00 00 \
         01 00 00 00 01 00 00 00 0c 00 00 00 01 00 01 00 \
         68 01 00 00 00 76 68 69"
        .split_whitespace()
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect();
    let events = [Event::new(&b"hi"[..]).with_header("h", "v")];
    let mut buf = vec![0u8; encoded_frame_len(&events).unwrap()];
    encode_frame(&mut buf, 5, 1, &events);
    assert_eq!(buf, expected);

    // And the log writes exactly such a frame at byte 4096 of its first segment (offset 0 and
    // epoch 1 on a fresh log).
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), opts(SMALL)).unwrap();
    wal.append_commit(&events).unwrap();
    drop(wal);
    let mut first_frame = vec![0u8; expected.len()];
    encode_frame(&mut first_frame, 0, 1, &events);
    let seg = std::fs::read(seg_path(dir.path(), 0)).unwrap();
    assert_eq!(
        &seg[SEGMENT_HEADER_LEN..SEGMENT_HEADER_LEN + expected.len()],
        &first_frame[..]
    );
    assert_eq!(&seg[0..8], b"WEIRWAL\0");
    assert_eq!(seg.len() as u64, SMALL);
}

#[derive(Clone, Debug)]
enum Op {
    Append { count: usize, len: usize },
    Commit,
    Read { consumer: usize, max: usize },
    Ack { consumer: usize },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1usize..20, 0usize..900).prop_map(|(count, len)| Op::Append { count, len }),
        3 => Just(Op::Commit),
        3 => (0usize..2, 1usize..40).prop_map(|(consumer, max)| Op::Read { consumer, max }),
        2 => (0usize..2).prop_map(|consumer| Op::Ack { consumer }),
        1 => Just(Op::Reopen),
    ]
}

/// What the log must look like, kept in the simplest possible form.
struct Model {
    events: Vec<Event>,
    committed: usize,
    read_pos: [u64; 2],
    checkpoint: [u64; 2],
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random appends, commits, reads, acks and reopens against an in-memory model.
    #[test]
    fn log_agrees_with_model(ops in proptest::collection::vec(op(), 1..50)) {
        let dir = tempfile::tempdir().unwrap();
        let names = ["c0", "c1"];
        let mut wal = Wal::open(dir.path(), opts(SMALL)).unwrap();
        let mut readers: Vec<_> = names.iter().map(|n| wal.reader(n).unwrap()).collect();
        let mut m = Model { events: vec![], committed: 0, read_pos: [0; 2], checkpoint: [0; 2] };
        for op in ops {
            match op {
                Op::Append { count, len } => {
                    let batch: Vec<Event> = (0..count).map(|i| ev((m.events.len() + i) as u64, len)).collect();
                    // Batches larger than a segment get a segment of their own.
                    let a = wal.append(&batch).unwrap();
                    prop_assert_eq!(a.first_offset, m.events.len() as u64);
                    m.events.extend(batch);
                    prop_assert_eq!(a.next_offset, m.events.len() as u64);
                }
                Op::Commit => {
                    wal.commit().unwrap();
                    m.committed = m.events.len();
                }
                Op::Read { consumer, max } => {
                    let got = readers[consumer].read(max).unwrap();
                    let from = m.read_pos[consumer] as usize;
                    // Everything committed is visible; appended frames may be visible earlier
                    // (a segment roll makes them durable), never torn or out of order.
                    let at_least = (from + max).min(m.committed.max(from)) - from;
                    let at_most = (from + max).min(m.events.len()) - from;
                    prop_assert!(got.len() >= at_least && got.len() <= at_most,
                        "reader {} at {} got {} (want {}..={})", consumer, from, got.len(), at_least, at_most);
                    let to = from + got.len();
                    for (k, (offset, e)) in got.iter().enumerate() {
                        prop_assert_eq!(*offset, (from + k) as u64);
                        prop_assert_eq!(e, &m.events[from + k]);
                    }
                    m.read_pos[consumer] = to as u64;
                }
                Op::Ack { consumer } => {
                    readers[consumer].ack().unwrap();
                    m.checkpoint[consumer] = m.read_pos[consumer];
                }
                Op::Reopen => {
                    drop(readers);
                    drop(wal);
                    // A clean close syncs everything appended.
                    m.committed = m.events.len();
                    wal = Wal::open(dir.path(), opts(SMALL)).unwrap();
                    readers = names.iter().map(|n| wal.reader(n).unwrap()).collect();
                    m.read_pos = m.checkpoint;
                }
            }
            let stats = wal.stats();
            prop_assert_eq!(stats.next_offset, m.events.len() as u64);
            prop_assert!(wal.durable_offset() >= m.committed as u64);
            let floor = *m.checkpoint.iter().min().unwrap();
            prop_assert!(stats.first_offset <= floor, "retention passed a checkpoint");
            prop_assert_eq!(stats.held_events, m.events.len() as u64 - floor);
            for (i, n) in names.iter().enumerate() {
                prop_assert_eq!(wal.checkpoint(n).unwrap().offset, m.checkpoint[i]);
            }
        }
    }
}

/// A log with a few sealed segments and an active one, closed cleanly.
/// A small log of 36 committed events in 8 KiB segments, left as a crash after the last commit
/// would leave it: the tests that use it damage the active segment's tail as a crash can, and a
/// clean close would have recorded that tail's end as verified (damage below it is then
/// damage, not a torn write).
fn build_small_log(dir: &Path) -> Vec<Event> {
    let wal = Wal::open(dir, opts(8192)).unwrap();
    let meta_at_open = std::fs::read(dir.join("wal.meta")).unwrap();
    let mut all = Vec::new();
    for i in 0..12u64 {
        let batch: Vec<Event> = (0..3).map(|k| ev(i * 3 + k, 300)).collect();
        wal.append_commit(&batch).unwrap();
        all.extend(batch);
    }
    drop(wal);
    std::fs::write(dir.join("wal.meta"), meta_at_open).unwrap();
    all
}

fn corrupt_policy(policy: CorruptionPolicy) -> WalOptions {
    WalOptions {
        segment_size: 8192,
        on_corruption: policy,
        ..Default::default()
    }
}

/// Flip one bit at every byte of every segment. Whatever the position, the log must never hand
/// out an event that differs from what was written: it either returns the right events, or stops
/// with an error naming the file and position, or (active segment) treats the damage as a torn
/// tail.
#[test]
fn bit_flip_at_every_position_is_detected() {
    let pristine = tempfile::tempdir().unwrap();
    let written = build_small_log(pristine.path());
    let files = inspect::segment_files(pristine.path()).unwrap();
    assert!(
        files.len() >= 3,
        "want sealed and active segments, got {}",
        files.len()
    );
    let last_base = files.last().unwrap().0;
    let mut detected = 0;
    for (base, path) in &files {
        let image = std::fs::read(path).unwrap();
        let summary = inspect::verify(pristine.path(), None, |_, _| {}).unwrap();
        let end = summary
            .segments
            .iter()
            .find(|s| s.base_offset == *base)
            .unwrap()
            .end_pos as usize;
        let positions = (0..96).chain(SEGMENT_HEADER_LEN..end);
        for pos in positions {
            let dir = tempfile::tempdir().unwrap();
            for entry in std::fs::read_dir(pristine.path()).unwrap() {
                let e = entry.unwrap();
                std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
            }
            let mut bad = image.clone();
            bad[pos] ^= 1 << (pos % 8);
            std::fs::write(dir.path().join(path.file_name().unwrap()), &bad).unwrap();

            let report = inspect::verify(dir.path(), None, |_, _| {}).unwrap();
            let wal = match Wal::open(dir.path(), corrupt_policy(CorruptionPolicy::Fail)) {
                Ok(w) => w,
                Err(e) => {
                    // Only header damage may stop the open, and it must say where.
                    assert!(pos < 96, "open failed for frame damage at {pos}: {e}");
                    let msg = e.to_string();
                    assert!(
                        msg.contains(path.file_name().unwrap().to_str().unwrap()),
                        "{msg}"
                    );
                    assert!(
                        !report.problems.is_empty(),
                        "verify missed header damage at {pos}"
                    );
                    detected += 1;
                    continue;
                }
            };
            let mut r = wal.reader("check").unwrap();
            let mut got = Vec::new();
            let err = loop {
                match r.read(7) {
                    Ok(b) if b.is_empty() => break None,
                    Ok(b) => got.extend(b),
                    Err(e) => break Some(e),
                }
            };
            for (offset, e) in &got {
                assert_eq!(
                    e, &written[*offset as usize],
                    "wrong event at offset {offset} after flip at {base}:{pos}"
                );
            }
            let offsets: Vec<u64> = got.iter().map(|(o, _)| *o).collect();
            assert!(
                offsets.windows(2).all(|w| w[1] == w[0] + 1),
                "gap after flip at {pos}"
            );
            match err {
                Some(WalError::Corrupt {
                    path: p, pos: at, ..
                }) => {
                    assert_eq!(p.file_name(), path.file_name());
                    assert!(
                        at as usize <= pos,
                        "reported position {at} after the damage {pos}"
                    );
                    assert!(
                        !report.problems.is_empty(),
                        "verify missed damage at {base}:{pos}"
                    );
                    detected += 1;
                }
                Some(other) => panic!("unexpected error {other}"),
                None if *base == last_base && pos >= SEGMENT_HEADER_LEN => {
                    // Damage in the active segment is a torn tail to recovery: a prefix survives.
                    assert!(got.len() < written.len(), "flip at {pos} went unnoticed");
                    detected += 1;
                }
                None => {
                    // Header bytes outside the checksummed fields (or a seal that falls back to
                    // a scan) may be harmless, but then every event must be there.
                    assert_eq!(
                        got.len(),
                        written.len(),
                        "events lost after flip at {base}:{pos}"
                    );
                }
            }
        }
    }
    assert!(detected > 1000, "only {detected} flips detected");
}

/// Zero the tail of the active segment from every position (a crash that lost everything after
/// it): recovery keeps exactly the frames that end before the cut.
#[test]
fn truncated_tail_at_every_position_keeps_whole_frames() {
    let pristine = tempfile::tempdir().unwrap();
    let written = build_small_log(pristine.path());
    let files = inspect::segment_files(pristine.path()).unwrap();
    let (base, path) = files.last().unwrap().clone();
    let image = std::fs::read(&path).unwrap();
    let report = inspect::verify(pristine.path(), None, |_, _| {}).unwrap();
    let active = report.segments.last().unwrap();
    // Frame boundaries of the active segment, from a walk of the pristine image.
    let mut bounds = vec![(SEGMENT_HEADER_LEN, base)];
    let mut pos = SEGMENT_HEADER_LEN;
    while pos < active.end_pos as usize {
        let h = weir::wal::frame::peek_header(&image[pos..]).unwrap();
        pos += h.frame_len();
        bounds.push((pos, h.next_offset()));
    }
    assert!(bounds.len() >= 2);
    for cut in SEGMENT_HEADER_LEN..=active.end_pos as usize {
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(pristine.path()).unwrap() {
            let e = entry.unwrap();
            std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
        }
        let mut bad = image.clone();
        bad[cut..].fill(0);
        std::fs::write(dir.path().join(path.file_name().unwrap()), &bad).unwrap();
        let wal = Wal::open(dir.path(), opts(8192)).unwrap();
        let expect_next = bounds.iter().rev().find(|(p, _)| *p <= cut).unwrap().1;
        assert_eq!(wal.next_offset(), expect_next, "cut at {cut}");
        let got = read_all(&wal, "check");
        assert_eq!(got.len() as u64, expect_next);
        for (o, e) in &got {
            assert_eq!(e, &written[*o as usize]);
        }
    }
    // A segment file cut short is refused with a clear error, never mapped past its end.
    for cut in [0usize, 100, 4095, 4096, 5000, 8191] {
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(pristine.path()).unwrap() {
            let e = entry.unwrap();
            std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
        }
        std::fs::write(dir.path().join(path.file_name().unwrap()), &image[..cut]).unwrap();
        let err = Wal::open(dir.path(), opts(8192))
            .err()
            .expect("truncated file accepted");
        let msg = err.to_string();
        assert!(
            msg.contains(path.file_name().unwrap().to_str().unwrap()),
            "{msg}"
        );
        let report = inspect::verify(dir.path(), None, |_, _| {}).unwrap();
        assert!(
            !report.problems.is_empty(),
            "verify accepted a file cut at {cut}"
        );
    }
}

#[test]
fn skip_policy_skips_exactly_the_damaged_frame() {
    let pristine = tempfile::tempdir().unwrap();
    let written = build_small_log(pristine.path());
    let files = inspect::segment_files(pristine.path()).unwrap();
    // Damage the second frame of the first (sealed) segment.
    let (_, path) = &files[0];
    let mut image = std::fs::read(path).unwrap();
    let first = weir::wal::frame::peek_header(&image[SEGMENT_HEADER_LEN..]).unwrap();
    let second_pos = SEGMENT_HEADER_LEN + first.frame_len();
    let second = weir::wal::frame::peek_header(&image[second_pos..]).unwrap();
    image[second_pos + 40] ^= 0xff;
    std::fs::write(path, &image).unwrap();

    let report = inspect::verify(pristine.path(), None, |_, _| {}).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].pos as usize, second_pos);

    let wal = Wal::open(pristine.path(), corrupt_policy(CorruptionPolicy::Skip)).unwrap();
    let got = read_all(&wal, "check");
    let skipped: Vec<u64> = (second.first_offset..second.next_offset()).collect();
    assert_eq!(got.len(), written.len() - skipped.len());
    for (o, e) in &got {
        assert!(!skipped.contains(o));
        assert_eq!(e, &written[*o as usize]);
    }
    let stats = wal.stats();
    assert_eq!(stats.skipped_frames, 1);
    assert_eq!(stats.skipped_events, skipped.len() as u64);

    // The fail policy stops at the damage, repeatedly, without moving on.
    drop(wal);
    let wal = Wal::open(pristine.path(), corrupt_policy(CorruptionPolicy::Fail)).unwrap();
    let mut r = wal.reader("strict").unwrap();
    assert_eq!(r.read(100).unwrap().len() as u64, first.event_count as u64);
    for _ in 0..2 {
        match r.read(100) {
            Err(WalError::Corrupt { pos, .. }) => assert_eq!(pos as usize, second_pos),
            other => panic!("expected corruption error, got {other:?}"),
        }
    }
}

/// A log in `dir` written by three opens, one event each (alpha, bravo, charlie), each closed
/// cleanly: every frame is below the end recorded in wal.meta.
fn three_opens(dir: &Path) {
    for w in ["alpha", "bravo", "charlie"] {
        let wal = Wal::open(dir, opts(1 << 16)).unwrap();
        wal.append_commit(&[Event::new(w.as_bytes().to_vec())])
            .unwrap();
        wal.close().unwrap();
    }
}

/// Damage to the last frame below the verified end, with no frame after it: `weir wal verify`
/// (and `stats`, which reads the same walk) ends the segment where the open will seal it, at
/// the verified end with its next offset. It said the segment went on to offset 2^64 - 1, with
/// a lag to match (audit 26).
#[test]
fn damage_to_the_last_verified_frame_ends_the_segment_at_the_verified_end() {
    let dir = tempfile::tempdir().unwrap();
    three_opens(dir.path());
    let seg = seg_path(dir.path(), 0);
    let mut image = std::fs::read(&seg).unwrap();
    let scan = weir::wal::recovery::scan_frames(&image, SEGMENT_HEADER_LEN, 0, image.len());
    assert_eq!(scan.next_offset, 3);
    // The last byte of charlie's frame.
    image[scan.end_pos - 1] ^= 0x40;
    std::fs::write(&seg, &image).unwrap();
    let report = inspect::verify(dir.path(), None, |_, _| {}).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    let newest = report.segments.last().unwrap();
    assert_eq!(newest.next_offset, 3);
    assert_eq!(newest.end_pos as usize, scan.end_pos);
    assert_eq!(report.events, 2);
    let wal = Wal::open(dir.path(), opts(1 << 16)).unwrap();
    assert_eq!(wal.next_offset(), 3, "no offset is handed out twice");
}

/// Each open records (in `wal.meta`) the end of the log it verified and synced. Damage found
/// below it at a later open is damage to committed frames, not a torn tail: the frames after it
/// are kept, no offset is handed out again, and readers meet the damage under the corruption
/// policy. Damage past it (frames the last process appended) still reads as a torn tail.
#[test]
fn damage_below_the_end_an_open_verified_is_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    three_opens(dir.path());
    let seg = seg_path(dir.path(), 0);
    let mut image = std::fs::read(&seg).unwrap();
    // A byte of alpha's payload (its frame is the first, at 4096).
    image[SEGMENT_HEADER_LEN + 30] ^= 0x40;
    std::fs::write(&seg, &image).unwrap();
    // verify knows it too, before any open: a problem, not a torn-tail note.
    let report = inspect::verify(dir.path(), None, |_, _| {}).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(
        report.problems[0]
            .reason
            .contains("damaged below the end the log last verified"),
        "{:?}",
        report.problems
    );

    let wal = Wal::open(dir.path(), corrupt_policy(CorruptionPolicy::Fail)).unwrap();
    assert_eq!(wal.next_offset(), 3, "bravo and charlie must be kept");
    let mut r = wal.reader("strict").unwrap();
    for _ in 0..2 {
        match r.read(10) {
            Err(WalError::Corrupt { path, pos, .. }) => {
                assert_eq!(path.file_name(), seg.file_name());
                assert_eq!(pos as usize, SEGMENT_HEADER_LEN);
            }
            other => panic!("expected the damage to be reported, got {other:?}"),
        }
    }
    drop(r);
    let delta = wal.append_commit(&[Event::new(b"delta".to_vec())]).unwrap();
    assert_eq!(delta.first_offset, 3, "no offset is handed out twice");
    wal.close().unwrap();
    let report = inspect::verify(dir.path(), None, |_, _| {}).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].pos as usize, SEGMENT_HEADER_LEN);

    let wal = Wal::open(dir.path(), corrupt_policy(CorruptionPolicy::Skip)).unwrap();
    let got: Vec<(u64, Vec<u8>)> = read_all(&wal, "lenient")
        .into_iter()
        .map(|(o, e)| (o, e.body.to_vec()))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, b"bravo".to_vec()),
            (2, b"charlie".to_vec()),
            (3, b"delta".to_vec())
        ]
    );
    assert_eq!(wal.stats().skipped_events, 1);
    wal.close().unwrap();

    // Appended after the last open verified the log, and the process crashed (wal.meta as the
    // open wrote it, without the end a clean close records): a flip there reads as a torn tail.
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), opts(1 << 16)).unwrap();
    let meta_at_open = std::fs::read(dir.path().join("wal.meta")).unwrap();
    wal.append_commit(&[Event::new(b"one".to_vec())]).unwrap();
    wal.append_commit(&[Event::new(b"two".to_vec())]).unwrap();
    wal.close().unwrap();
    std::fs::write(dir.path().join("wal.meta"), meta_at_open).unwrap();
    let seg = seg_path(dir.path(), 0);
    let mut image = std::fs::read(&seg).unwrap();
    let first = weir::wal::frame::peek_header(&image[SEGMENT_HEADER_LEN..]).unwrap();
    image[SEGMENT_HEADER_LEN + first.frame_len() + 30] ^= 0x40;
    std::fs::write(&seg, &image).unwrap();
    let wal = Wal::open(dir.path(), opts(1 << 16)).unwrap();
    assert_eq!(wal.next_offset(), 1);
    assert_eq!(read_all(&wal, "c").len(), 1);
}

/// With `wal.meta` gone, the new epoch comes from the frames on disk, including the intact
/// ones past a torn frame: otherwise a frame written at the torn one's place with the same
/// length would carry the same epoch as the discarded frame after it, and the next open would
/// take that frame back into the log.
#[test]
fn a_lost_meta_file_never_lets_a_discarded_frame_back() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), opts(1 << 16)).unwrap();
    wal.append_commit(&[Event::new(b"alpha".to_vec())]).unwrap();
    wal.close().unwrap();
    let wal = Wal::open(dir.path(), opts(1 << 16)).unwrap();
    let second_epoch = wal.stats().epoch;
    wal.append_commit(&[Event::new(b"bravo".to_vec())]).unwrap();
    wal.append_commit(&[Event::new(b"charlie".to_vec())])
        .unwrap();
    wal.close().unwrap();

    let seg = seg_path(dir.path(), 0);
    let mut image = std::fs::read(&seg).unwrap();
    let alpha = weir::wal::frame::peek_header(&image[SEGMENT_HEADER_LEN..]).unwrap();
    image[SEGMENT_HEADER_LEN + alpha.frame_len() + 30] ^= 0x40;
    std::fs::write(&seg, &image).unwrap();
    for meta in [true, false] {
        let dir_copy = tempfile::tempdir().unwrap();
        for f in std::fs::read_dir(dir.path()).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, dir_copy.path().join(f.file_name().unwrap())).unwrap();
        }
        let meta_path = dir_copy.path().join("wal.meta");
        if meta {
            // Both slots damaged.
            std::fs::write(&meta_path, vec![0xa5u8; 8192]).unwrap();
        } else {
            std::fs::remove_file(&meta_path).unwrap();
        }
        let wal = Wal::open(dir_copy.path(), opts(1 << 16)).unwrap();
        assert_eq!(wal.next_offset(), 1, "bravo is torn: only alpha is kept");
        assert!(
            wal.stats().epoch > second_epoch,
            "epoch {} must be above charlie's {second_epoch}",
            wal.stats().epoch
        );
        // Same length as bravo, so it ends where charlie begins; charlie has the next offset.
        wal.append_commit(&[Event::new(b"delta".to_vec())]).unwrap();
        wal.close().unwrap();
        let wal = Wal::open(dir_copy.path(), opts(1 << 16)).unwrap();
        let bodies: Vec<Vec<u8>> = read_all(&wal, "c")
            .into_iter()
            .map(|(_, e)| e.body.to_vec())
            .collect();
        assert_eq!(bodies, vec![b"alpha".to_vec(), b"delta".to_vec()]);
        assert_eq!(wal.next_offset(), 2);
    }
}

/// A segment file deleted from the middle of the log: the offsets it held are reported as
/// missing under the fail policy (the reader stays put), and skipped and counted under skip.
#[test]
fn a_missing_segment_is_damage_not_a_silent_jump() {
    let dir = tempfile::tempdir().unwrap();
    let written = build_small_log(dir.path());
    let files = inspect::segment_files(dir.path()).unwrap();
    assert!(files.len() >= 3, "{files:?}");
    let (gone_base, gone) = &files[1];
    let next_base = files[2].0;
    std::fs::remove_file(gone).unwrap();

    let wal = Wal::open(dir.path(), corrupt_policy(CorruptionPolicy::Fail)).unwrap();
    let mut r = wal.reader("strict").unwrap();
    let mut got = Vec::new();
    let err = loop {
        match r.read(5) {
            Ok(b) if b.is_empty() => panic!("read past the missing segment"),
            Ok(b) => got.extend(b),
            Err(e) => break e,
        }
    };
    assert_eq!(
        got.len() as u64,
        *gone_base,
        "everything before the gap is read"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("offsets {gone_base}..{next_base} are missing")),
        "{msg}"
    );
    assert!(r.read(5).is_err(), "the reader stays put");
    drop(r);
    drop(wal);

    let wal = Wal::open(dir.path(), corrupt_policy(CorruptionPolicy::Skip)).unwrap();
    let got = read_all(&wal, "lenient");
    assert_eq!(
        got.len() as u64,
        written.len() as u64 - (next_base - gone_base)
    );
    assert!(got.iter().all(|(o, _)| *o < *gone_base || *o >= next_base));
    assert_eq!(wal.stats().skipped_events, next_base - gone_base);
}

/// Offsets are never reused, so they can run out; an append that would pass the last one is
/// refused rather than wrapped (a checkpoint near 2^64 sets the log's next offset there).
#[test]
fn appends_past_the_last_offset_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), opts(1 << 16)).unwrap();
    wal.append_commit(&[Event::new(b"x".to_vec())]).unwrap();
    wal.close().unwrap();
    // A consumer's checkpoint near the end of the offset space, as a damaged or crafted file
    // could hold.
    let record = weir::wal::checkpoint::encode_checkpoint(&weir::wal::checkpoint::Checkpoint {
        name: "c".into(),
        position: weir::wal::Position {
            offset: u64::MAX - 2,
            segment: 0,
            frame_pos: SEGMENT_HEADER_LEN as u64,
        },
        // Written for this log: a checkpoint past the end that the log's id vouches for is
        // taken (events were lost under the log), and new offsets start after it.
        log: inspect::verify(dir.path(), None, |_, _| {}).unwrap().log_id,
    });
    let mut file =
        weir::wal::slots::encode_slot(weir::wal::checkpoint::CHECKPOINT_MAGIC, 1, &record).to_vec();
    file.resize(weir::wal::slots::SLOT_FILE_LEN, 0);
    std::fs::write(dir.path().join("c.ckpt"), file).unwrap();
    let wal = Wal::open(dir.path(), opts(1 << 16)).unwrap();
    assert_eq!(wal.next_offset(), u64::MAX - 2);
    let two: Vec<Event> = (0..2).map(|i| ev(i, 10)).collect();
    let a = wal.append_commit(&two).unwrap();
    assert_eq!(a.next_offset, u64::MAX);
    match wal.append_commit(&[ev(3, 10)]) {
        Err(e @ WalError::OffsetsExhausted { .. }) => {
            assert!(e.to_string().contains("offsets exhausted"), "{e}")
        }
        other => panic!("expected exhausted offsets, got {other:?}"),
    }
    assert_eq!(wal.next_offset(), u64::MAX);
}

/// The frames of a segment image: (byte position, first offset), read from the frame headers
/// as wal-format.md §3 lays them out, up to the first unwritten header.
fn frame_positions(image: &[u8]) -> Vec<(usize, u64)> {
    let mut out = Vec::new();
    let mut pos = SEGMENT_HEADER_LEN;
    while pos + 24 <= image.len() && image[pos..pos + 24].iter().any(|&b| b != 0) {
        let len = u32::from_le_bytes(image[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let first = u64::from_le_bytes(image[pos + 8..pos + 16].try_into().unwrap());
        out.push((pos, first));
        pos += 24 + len;
    }
    out
}

/// A checkpoint's segment and byte hints only spare a scan: where they lead to no frame holding
/// its offset, the reader finds the offset from the segment's start (wal-format.md §5.2). A
/// hint inside a frame was reported as damage, so the consumer stopped for good under the
/// `fail` policy and lost an intact event under `skip`; one past a sealed segment's end skipped
/// the rest of that segment in silence; one past the active segment's end never handed out
/// the events below it (audit 26).
#[test]
fn a_checkpoint_hint_that_leads_to_no_frame_is_not_damage() {
    let dir = tempfile::tempdir().unwrap();
    let o = corrupt_policy(CorruptionPolicy::Fail);
    let wal = Wal::open(dir.path(), o.clone()).unwrap();
    for i in 0..40u64 {
        wal.append_commit(&[ev(i, 500)]).unwrap();
    }
    let end = wal.next_offset();
    wal.close().unwrap();
    let log = inspect::verify(dir.path(), None, |_, _| {}).unwrap().log_id;
    let files = inspect::segment_files(dir.path()).unwrap();
    assert!(files.len() > 2, "{files:?}");
    let image = |i: usize| std::fs::read(&files[i].1).unwrap();
    let (sealed, active) = (image(0), image(files.len() - 1));
    let sealed_frames = frame_positions(&sealed);
    let active_frames = frame_positions(&active);
    let after = |frames: &[(usize, u64)], image: &[u8]| {
        let (pos, _) = *frames.last().unwrap();
        pos + 24 + u32::from_le_bytes(image[pos + 4..pos + 8].try_into().unwrap()) as usize + 8
    };
    let cases = [
        (
            "inside a frame",
            sealed_frames[2].1,
            files[0].0,
            sealed_frames[2].0 + 4,
        ),
        (
            "past a sealed segment's end",
            sealed_frames[1].1,
            files[0].0,
            after(&sealed_frames, &sealed),
        ),
        (
            "past the active segment's end",
            active_frames[1].1,
            files[files.len() - 1].0,
            after(&active_frames, &active),
        ),
    ];
    for (what, offset, segment, frame_pos) in cases {
        let record = weir::wal::checkpoint::encode_checkpoint(&weir::wal::checkpoint::Checkpoint {
            name: "c".into(),
            position: weir::wal::Position {
                offset,
                segment,
                frame_pos: frame_pos as u64,
            },
            log,
        });
        let mut file =
            weir::wal::slots::encode_slot(weir::wal::checkpoint::CHECKPOINT_MAGIC, 1, &record)
                .to_vec();
        file.resize(weir::wal::slots::SLOT_FILE_LEN, 0);
        std::fs::write(dir.path().join("c.ckpt"), file).unwrap();
        let wal = Wal::open(dir.path(), o.clone()).unwrap();
        let got: Vec<u64> = read_all(&wal, "c").into_iter().map(|(o, _)| o).collect();
        assert_eq!(got, (offset..end).collect::<Vec<_>>(), "{what}");
        wal.close().unwrap();
    }
}

#[test]
fn retention_deletes_or_recycles_consumed_segments_and_offsets_never_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let mut expected_next = 0u64;
    for round in 0..3 {
        let wal = Wal::open(dir.path(), opts(8192)).unwrap();
        assert_eq!(wal.next_offset(), expected_next, "round {round}");
        let mut r = wal.reader("sink").unwrap();
        for i in 0..40u64 {
            let a = wal.append_commit(&[ev(i, 500)]).unwrap();
            assert_eq!(a.first_offset, expected_next);
            expected_next += 1;
        }
        assert!(wal.stats().segments > 3);
        let got = r.read(usize::MAX).unwrap();
        assert_eq!(got.len(), 40);
        r.ack().unwrap();
        let stats = wal.stats();
        assert_eq!(stats.segments, 1, "consumed sealed segments must go");
        assert_eq!(stats.held_events, 0);
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        // 1 segment + at most 2 spares + meta + lock + checkpoint.
        assert!(files <= 6, "{files} files left");
    }
    // Spare segments were reused (old frames inside them must not resurface).
    let wal = Wal::open(dir.path(), opts(8192)).unwrap();
    let mut r = wal.reader("late").unwrap();
    let got = r.read(usize::MAX).unwrap();
    assert!(got.iter().all(|(o, _)| *o >= wal.stats().first_offset));
    assert_eq!(wal.next_offset(), expected_next);
}

/// Segment files deleted from outside before the log retires them: the acknowledgement, which
/// is durable, still succeeds (failing it made the channel deliver the batch again), and the
/// retained segment count follows.
#[test]
fn an_ack_succeeds_when_the_segments_it_frees_were_deleted_from_outside() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(
        dir.path(),
        WalOptions {
            spare_segments: 0,
            ..opts(8192)
        },
    )
    .unwrap();
    let mut r = wal.reader("sink").unwrap();
    for i in 0..40u64 {
        wal.append_commit(&[ev(i, 500)]).unwrap();
    }
    assert_eq!(r.read(usize::MAX).unwrap().len(), 40);
    let deleted: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    assert!(deleted.len() > 3);
    for p in &deleted {
        std::fs::remove_file(p).unwrap();
    }
    r.ack().unwrap();
    assert_eq!(wal.stats().segments, 1);
    drop(r);
    drop(wal);
    let wal = Wal::open(dir.path(), opts(8192)).unwrap();
    assert!(read_all(&wal, "sink").is_empty());
    assert_eq!(wal.next_offset(), 40);
}

/// The checkpoint directory removed under a running log: the next acknowledgement makes it
/// again, so a restart resumes where the consumer was instead of delivering everything again.
#[test]
fn a_checkpoint_directory_removed_while_running_is_written_again() {
    let root = tempfile::tempdir().unwrap();
    let ckpt = root.path().join("ckpt");
    let options = WalOptions {
        checkpoint_dir: Some(ckpt.clone()),
        ..opts(8192)
    };
    let log = root.path().join("log");
    {
        let wal = Wal::open(&log, options.clone()).unwrap();
        let mut r = wal.reader("sink").unwrap();
        for i in 0..30u64 {
            wal.append_commit(&[ev(i, 500)]).unwrap();
        }
        assert_eq!(r.read(10).unwrap().len(), 10);
        r.ack().unwrap();
        std::fs::remove_dir_all(&ckpt).unwrap();
        assert_eq!(r.read(10).unwrap().len(), 10);
        r.ack().unwrap();
        assert!(ckpt.join("sink.ckpt").exists());
        // Its lock is taken again too: another log cannot take the directory over.
        let err = Wal::open(root.path().join("other"), options.clone())
            .err()
            .expect("a second log on the checkpoint directory made again");
        assert!(matches!(err, WalError::Locked { .. }), "{err}");
    }
    let wal = Wal::open(&log, options).unwrap();
    assert_eq!(wal.checkpoint("sink").map(|p| p.offset), Some(20));
    let rest = read_all(&wal, "sink");
    assert_eq!(rest.first().map(|(o, _)| *o), Some(20));
    assert_eq!(rest.len(), 10);
}

/// The active segment deleted from outside (the data directory removed under the agent): the
/// next commit fails, and so do the ones after, instead of acknowledging events that would be
/// gone at the next open.
#[test]
fn a_commit_into_a_segment_deleted_from_outside_fails() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), opts(SMALL)).unwrap();
    wal.append_commit(&[ev(0, 100)]).unwrap();
    std::fs::remove_file(seg_path(dir.path(), 0)).unwrap();
    let err = wal.append_commit(&[ev(1, 100)]).unwrap_err();
    assert!(err.to_string().contains("deleted from outside"), "{err}");
    assert!(wal.append_commit(&[ev(2, 100)]).is_err());
}

#[test]
fn no_consumer_means_no_retention() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), opts(8192)).unwrap();
    for i in 0..40 {
        wal.append_commit(&[ev(i, 500)]).unwrap();
    }
    let segments = wal.stats().segments;
    assert!(segments > 3);
    drop(wal);
    let wal = Wal::open(dir.path(), opts(8192)).unwrap();
    assert_eq!(wal.stats().segments, segments);
    assert_eq!(read_all(&wal, "late").len(), 40);
}

#[test]
fn capacity_limits_give_a_distinct_full_error_until_acked() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(
        dir.path(),
        WalOptions {
            segment_size: 8192,
            max_events: Some(10),
            ..Default::default()
        },
    )
    .unwrap();
    let mut r = wal.reader("sink").unwrap();
    for i in 0..10 {
        wal.append_commit(&[ev(i, 10)]).unwrap();
    }
    let err = wal.append(&[ev(10, 10)]).unwrap_err();
    assert!(err.is_full(), "{err}");
    assert!(err.to_string().contains("over the limit of 10"), "{err}");
    assert_eq!(r.read(4).unwrap().len(), 4);
    r.ack().unwrap();
    for i in 10..14 {
        wal.append_commit(&[ev(i, 10)]).unwrap();
    }
    assert!(wal.append(&[ev(14, 10)]).unwrap_err().is_full());
    drop(r);
    drop(wal);

    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(
        dir.path(),
        WalOptions {
            segment_size: 8192,
            max_bytes: Some(3000),
            ..Default::default()
        },
    )
    .unwrap();
    let mut r = wal.reader("sink").unwrap();
    let mut n = 0;
    let err = loop {
        match wal.append_commit(&[ev(n, 200)]) {
            Ok(_) => n += 1,
            Err(e) => break e,
        }
    };
    assert!(err.is_full() && err.to_string().contains("bytes"), "{err}");
    assert!(
        (10..=14).contains(&n),
        "{n} events of ~250 bytes fit in 3000"
    );
    r.read(usize::MAX).unwrap();
    r.ack().unwrap();
    wal.append_commit(&[ev(n, 200)]).unwrap();

    // Larger than the whole byte capacity: no ack can make room, so a different error.
    let err = wal.append(&[Event::new(vec![0u8; 3000])]).unwrap_err();
    assert!(
        matches!(err, WalError::TooLarge { .. }) && !err.is_full(),
        "{err}"
    );
}

/// A reader lets go of the map's pages behind it every 64 MiB of a large segment; events it
/// handed out zero-copy before that still read the same bytes, and so does a second reader.
#[test]
fn pages_a_reader_lets_go_of_still_read_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(
        dir.path(),
        WalOptions {
            segment_size: 128 << 20,
            ..Default::default()
        },
    )
    .unwrap();
    let body = |i: u64| -> Vec<u8> {
        (0..(1usize << 20))
            .map(|j| (i as usize * 31 + j / 4096) as u8)
            .collect()
    };
    let n = 72u64;
    for i in 0..n {
        wal.append_commit(&[Event::new(body(i))]).unwrap();
    }
    let mut first = wal.reader("first").unwrap();
    let mut held = Vec::new();
    loop {
        let got = first.read(8).unwrap();
        if got.is_empty() {
            break;
        }
        held.extend(got);
    }
    assert_eq!(held.len() as u64, n);
    for (offset, e) in &held {
        assert!(e.body[..] == body(*offset)[..], "event {offset} changed");
    }
    let mut second = wal.reader("second").unwrap();
    let again = second.read(usize::MAX).unwrap();
    assert_eq!(again.len() as u64, n);
    assert!(again.iter().all(|(o, e)| e.body[..] == body(*o)[..]));
}

/// A batch larger than a segment gets a segment of its own, just large enough: as the first
/// frame of a fresh log (the empty segment is sealed and replaced, and a reader waiting on it
/// moves on), after other frames, and across reopen and retention.
#[test]
fn a_batch_larger_than_a_segment_gets_a_segment_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions {
        segment_size: 8192,
        ..Default::default()
    };
    let big = |tag: u8| Event::new(vec![tag; 20_000]);
    let wal = Wal::open(dir.path(), opts.clone()).unwrap();
    let mut r = wal.reader("sink").unwrap();
    assert!(r.read(10).unwrap().is_empty());
    wal.append_commit(&[big(b'a')]).unwrap();
    wal.append_commit(&[ev(1, 100)]).unwrap();
    wal.append_commit(&[big(b'b'), big(b'c')]).unwrap();
    wal.append_commit(&[ev(4, 100)]).unwrap();
    let got: Vec<(u64, Event)> = r.read(10).unwrap();
    let expected = [big(b'a'), ev(1, 100), big(b'b'), big(b'c'), ev(4, 100)];
    let offsets: Vec<u64> = got.iter().map(|(o, _)| *o).collect();
    assert_eq!(offsets, vec![0, 1, 2, 3, 4]);
    assert!(got.iter().map(|(_, e)| e).eq(expected.iter()));
    let lens: Vec<u64> = inspect::segment_files(dir.path())
        .unwrap()
        .iter()
        .map(|(_, p)| std::fs::metadata(p).unwrap().len())
        .collect();
    assert!(lens.contains(&(4096 + 20_480)), "{lens:?}");
    assert!(lens.iter().all(|l| l % 4096 == 0), "{lens:?}");
    drop(r);
    wal.close().unwrap();

    let report = inspect::verify(dir.path(), None, |_, _| {}).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.events, 5);
    let wal = Wal::open(dir.path(), opts).unwrap();
    let all = read_all(&wal, "again");
    assert!(all.iter().map(|(_, e)| e).eq(expected.iter()));
    assert_eq!(wal.next_offset(), 5);
    // Consumed, the large segments are deleted, not kept as spares of the wrong size.
    let mut r = wal.reader("sink").unwrap();
    r.read(10).unwrap();
    r.ack().unwrap();
    wal.remove_consumer("again").unwrap();
    wal.append_commit(&[ev(5, 100)]).unwrap();
    let spares: Vec<u64> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "spare"))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .collect();
    assert!(spares.iter().all(|l| *l == 8192), "{spares:?}");
    // Only the newest segment is left (the one holding b and c, whose rounding-up left room
    // for the small frames after it).
    let left: Vec<u64> = inspect::segment_files(dir.path())
        .unwrap()
        .iter()
        .map(|(b, _)| *b)
        .collect();
    assert_eq!(left, vec![2]);
}

#[test]
fn low_disk_space_refuses_new_segments_without_losing_data() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions {
        segment_size: 8192,
        min_free_bytes: u64::MAX / 4,
        ..Default::default()
    };
    // A new log's first segment is refused the same way, with the numbers.
    let err = Wal::open(dir.path(), opts.clone()).err().unwrap();
    assert!(
        matches!(err, WalError::DiskFull { min_free, segment: 8192, .. } if min_free == u64::MAX / 4),
        "{err}"
    );
    // Made with room to spare, then reopened short of space.
    drop(
        Wal::open(
            dir.path(),
            WalOptions {
                min_free_bytes: 0,
                ..opts.clone()
            },
        )
        .unwrap(),
    );
    let wal = Wal::open(dir.path(), opts).unwrap();
    let mut n = 0;
    let err = loop {
        match wal.append_commit(&[ev(n, 500)]) {
            Ok(_) => n += 1,
            Err(e) => break e,
        }
    };
    assert!(
        matches!(err, WalError::DiskFull { .. }) && err.is_full(),
        "{err}"
    );
    assert!(err.to_string().contains("minimum free space"), "{err}");
    assert!(n > 0);
    assert_eq!(read_all(&wal, "sink").len() as u64, n);
}

#[test]
fn second_open_is_refused_naming_the_pid() {
    let dir = tempfile::tempdir().unwrap();
    let _wal = Wal::open(dir.path(), opts(SMALL)).unwrap();
    let err = Wal::open(dir.path(), opts(SMALL))
        .err()
        .expect("second open allowed");
    let msg = err.to_string();
    assert!(msg.contains(&std::process::id().to_string()), "{msg}");
    assert!(msg.contains("in use"), "{msg}");
}

/// Two logs sharing one checkpoint directory would overwrite each other's consumer
/// positions: the second open is refused, naming the directory and the pid; the same
/// directory given for both the log and its checkpoints (by another path too) is one lock.
#[test]
fn a_checkpoint_directory_in_use_by_another_log_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let ckpt = root.path().join("ckpt");
    let with_ckpt = |dir: &std::path::Path| WalOptions {
        checkpoint_dir: Some(dir.to_owned()),
        ..opts(SMALL)
    };
    let first = Wal::open(root.path().join("a"), with_ckpt(&ckpt)).unwrap();
    let err = Wal::open(root.path().join("b"), with_ckpt(&ckpt))
        .err()
        .expect("a second log on the same checkpoint directory");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("checkpoint directory {}", ckpt.display()))
            && msg.contains(&format!("pid {}", std::process::id())),
        "{msg}"
    );
    drop(first);
    drop(Wal::open(root.path().join("b"), with_ckpt(&ckpt)).unwrap());
    let log = root.path().join("c");
    std::fs::create_dir(&log).unwrap();
    Wal::open(&log, with_ckpt(&root.path().join("c/../c"))).unwrap();
}

/// One checkpoint directory used by two logs one after the other: the second, a new log,
/// would take the first's position for its own, and then write its own over it, so that the
/// first log's backlog passed for delivered at its next open. A new log finding a checkpoint
/// is refused, naming the file to delete if that is really meant.
#[test]
fn a_new_log_refuses_a_checkpoint_that_acknowledged_events() {
    let root = tempfile::tempdir().unwrap();
    let ckpt = root.path().join("ckpt");
    let with_ckpt = || WalOptions {
        checkpoint_dir: Some(ckpt.clone()),
        ..opts(SMALL)
    };
    {
        let a = Wal::open(root.path().join("a"), with_ckpt()).unwrap();
        let mut r = a.reader("c1").unwrap();
        for i in 0..20u64 {
            a.append_commit(&[ev(i, 100)]).unwrap();
        }
        assert_eq!(r.read(5).unwrap().len(), 5);
        r.ack().unwrap();
    }
    let err = Wal::open(root.path().join("b"), with_ckpt())
        .err()
        .expect("a new log took another log's checkpoint");
    assert!(
        matches!(err, WalError::ForeignCheckpoint { offset: 5, .. }),
        "{err}"
    );
    let msg = err.to_string();
    let file = ckpt.join("c1.ckpt");
    assert!(
        msg.starts_with(&format!(
            "{}: a checkpoint of consumer c1 (at offset 5)",
            file.display()
        )) && msg.ends_with(&format!("delete {} to start afresh", file.display())),
        "{msg}"
    );
    // The first log still has its backlog.
    {
        let a = Wal::open(root.path().join("a"), with_ckpt()).unwrap();
        assert_eq!(read_all(&a, "c1").len(), 15);
    }
    // Deleted on purpose: the new log starts.
    std::fs::remove_file(&file).unwrap();
    drop(Wal::open(root.path().join("b"), with_ckpt()).unwrap());
    // One that never acknowledged anything is another log's too: taken over, it would be
    // written with this log's positions, which the other log would then take for its own.
    let fresh = root.path().join("fresh-ckpt");
    drop(
        Wal::open(
            root.path().join("c"),
            WalOptions {
                checkpoint_dir: Some(fresh.clone()),
                ..opts(SMALL)
            },
        )
        .unwrap()
        .reader("c1")
        .unwrap(),
    );
    let err = Wal::open(
        root.path().join("d"),
        WalOptions {
            checkpoint_dir: Some(fresh),
            ..opts(SMALL)
        },
    )
    .err()
    .expect("a new log took an unused checkpoint of another log");
    assert!(
        matches!(err, WalError::ForeignCheckpoint { offset: 0, .. }),
        "{err}"
    );
}

/// Two logs that both hold events, the second pointed at the first's checkpoint directory
/// afterwards (a copied configuration, `checkpointDir` not changed): the second would take the
/// first's positions for its own and write its own over them, so the first log's backlog
/// passed for delivered. Each log has an id, in `wal.meta` and in every checkpoint it writes.
#[test]
fn a_log_refuses_a_checkpoint_written_for_another_log() {
    let root = tempfile::tempdir().unwrap();
    let ckpt_of = |name: &str| WalOptions {
        checkpoint_dir: Some(root.path().join(name)),
        ..opts(SMALL)
    };
    for (log, ckpt, acked) in [("a", "ckpt-a", 5usize), ("b", "ckpt-b", 2)] {
        let wal = Wal::open(root.path().join(log), ckpt_of(ckpt)).unwrap();
        let mut r = wal.reader("c1").unwrap();
        for i in 0..20u64 {
            wal.append_commit(&[ev(i, 100)]).unwrap();
        }
        assert_eq!(r.read(acked).unwrap().len(), acked);
        r.ack().unwrap();
    }
    let err = Wal::open(root.path().join("b"), ckpt_of("ckpt-a"))
        .err()
        .expect("a log took another log's checkpoint");
    let WalError::CheckpointOfAnotherLog(refused) = &err else {
        panic!("expected a refusal, got {err}");
    };
    let (written_for, log_id) = (
        &refused.written_for.expect("it names its log"),
        &refused.log_id,
    );
    assert_eq!(refused.offset, 5);
    assert_ne!(written_for, log_id);
    let file = root.path().join("ckpt-a/c1.ckpt");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "{}: a checkpoint of consumer c1 (at offset 5) written for log {written_for}, but the log in {} is log {log_id}",
            file.display(),
            root.path().join("b").display()
        )) && msg.ends_with(&format!("delete {}", file.display())),
        "{msg}"
    );
    // `verify` of log b with that directory says so too.
    let report = weir::wal::inspect::verify(
        &root.path().join("b"),
        Some(&root.path().join("ckpt-a")),
        |_, _| {},
    )
    .unwrap();
    assert_eq!(report.log_id, Some(*log_id));
    assert!(
        report.problems.iter().any(|p| p.path == file
            && p.reason.contains(&format!("written for log {written_for}"))),
        "{:?}",
        report.problems
    );
    // Both logs still have their own backlogs and positions.
    for (log, ckpt, left) in [("a", "ckpt-a", 15), ("b", "ckpt-b", 18)] {
        let wal = Wal::open(root.path().join(log), ckpt_of(ckpt)).unwrap();
        assert_eq!(read_all(&wal, "c1").len(), left, "log {log}");
    }
}

/// Rewrites a log's files as a weir before log ids wrote them: `wal.meta` without the id,
/// segment headers without it (sealed ones sealed again, since the seal's checksum covers the
/// header), and the checkpoints in `ckpt` without it.
fn make_legacy(log: &Path, ckpt: &Path) {
    use weir::wal::checkpoint::{CHECKPOINT_MAGIC, META_MAGIC};
    use weir::wal::segment::{decode_header, encode_header, encode_seal};
    let strip = |path: &Path, magic: &[u8; 4], keep: &dyn Fn(&[u8]) -> usize| {
        let bytes = std::fs::read(path).unwrap();
        let rec = weir::wal::slots::decode_slots(&bytes, magic).unwrap();
        let payload = rec.payload[..keep(rec.payload)].to_vec();
        let mut file = weir::wal::slots::encode_slot(magic, rec.sequence + 1, &payload).to_vec();
        file.resize(weir::wal::slots::SLOT_FILE_LEN, 0);
        std::fs::write(path, file).unwrap();
    };
    strip(&log.join("wal.meta"), META_MAGIC, &|_| 28);
    for entry in std::fs::read_dir(ckpt).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "ckpt") {
            strip(&path, CHECKPOINT_MAGIC, &|p| p.len() - 16);
        }
    }
    for (_, path) in inspect::segment_files(log).unwrap() {
        let mut bytes = std::fs::read(&path).unwrap();
        let info = decode_header(&bytes[..SEGMENT_HEADER_LEN]).unwrap();
        let mut header = encode_header(info.base_offset, info.segment_len, None);
        if let Some(seal) = info.seal {
            let block = encode_seal(&header, seal);
            header[64..96].copy_from_slice(&block);
        }
        bytes[..96].copy_from_slice(&header[..96]);
        std::fs::write(&path, bytes).unwrap();
    }
}

fn log_id_of(log: &Path, ckpt: Option<&Path>) -> Option<weir::wal::log_id::LogId> {
    inspect::verify(log, ckpt, |_, _| {}).unwrap().log_id
}

/// A log whose `wal.meta` lost its record keeps its id: the segment headers hold it too, so
/// its own checkpoints are still its own and another log's are still refused (audit 21 lost
/// 20 acknowledged events when the id was taken from the checkpoints instead). A log made
/// before logs had ids gets one at its next open and keeps its positions.
#[test]
fn the_log_id_survives_a_lost_meta_and_old_logs_get_one() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    for (log, consumer, acked) in [(&a, "c1", 4usize), (&b, "c2", 8)] {
        let wal = Wal::open(log, opts(SMALL)).unwrap();
        let mut r = wal.reader(consumer).unwrap();
        for i in 0..10u64 {
            wal.append_commit(&[ev(i, 100)]).unwrap();
        }
        assert_eq!(r.read(acked).unwrap().len(), acked);
        r.ack().unwrap();
    }
    let id = log_id_of(&a, None).expect("a log without an id");
    std::fs::remove_file(a.join("wal.meta")).unwrap();
    // Another log's checkpoint beside it: refused, though wal.meta is gone.
    let foreign = a.join("c2.ckpt");
    std::fs::copy(b.join("c2.ckpt"), &foreign).unwrap();
    match Wal::open(&a, opts(SMALL)) {
        Err(WalError::CheckpointOfAnotherLog(refused)) => {
            assert_eq!(
                (refused.checkpoint.as_path(), refused.log_id),
                (foreign.as_path(), id)
            )
        }
        Err(e) => panic!("expected a refusal of c2.ckpt, got {e}"),
        Ok(_) => panic!("a log without wal.meta took another log's checkpoint"),
    }
    std::fs::remove_file(&foreign).unwrap();
    {
        let wal = Wal::open(&a, opts(SMALL)).unwrap();
        assert_eq!(read_all(&wal, "c1").len(), 6);
    }
    assert_eq!(
        log_id_of(&a, None),
        Some(id),
        "the id changed after wal.meta was lost"
    );

    make_legacy(&a, &a);
    let report = inspect::verify(&a, None, |_, _| {}).unwrap();
    assert_eq!(report.log_id, None);
    assert_eq!(report.consumers, vec![("c1".to_owned(), 4)]);
    {
        let wal = Wal::open(&a, opts(SMALL)).unwrap();
        let mut r = wal.reader("c1").unwrap();
        assert_eq!(r.read(2).unwrap().len(), 2);
        r.ack().unwrap();
    }
    let report = inspect::verify(&a, None, |_, _| {}).unwrap();
    let new_id = report.log_id.expect("an old log got no id");
    assert_ne!(new_id, id);
    assert_eq!(report.consumers, vec![("c1".to_owned(), 6)]);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

/// A log that had its id from its start wrote it into every checkpoint, so a checkpoint naming
/// no log (another log's, written by a weir before ids) is not its own.
#[test]
fn a_log_made_with_an_id_refuses_a_checkpoint_naming_no_log() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    for log in [&a, &b] {
        let wal = Wal::open(log, opts(SMALL)).unwrap();
        let mut r = wal.reader("c1").unwrap();
        wal.append_commit(&[ev(0, 10), ev(1, 10)]).unwrap();
        assert_eq!(r.read(1).unwrap().len(), 1);
        r.ack().unwrap();
    }
    make_legacy(&b, &b);
    let err = Wal::open(
        &a,
        WalOptions {
            checkpoint_dir: Some(b.clone()),
            ..opts(SMALL)
        },
    )
    .err()
    .expect("a log made with an id took a checkpoint naming no log");
    let WalError::CheckpointOfAnotherLog(refused) = &err else {
        panic!("expected a refusal, got {err}");
    };
    assert_eq!(refused.written_for, None);
    assert!(err.to_string().contains("names no log"), "{err}");
    // The old log itself takes it.
    let wal = Wal::open(&b, opts(SMALL)).unwrap();
    assert_eq!(read_all(&wal, "c1").len(), 1);
}

/// A checkpoint nothing ties to the log (the log and it from before ids, or an id taken from
/// the checkpoints themselves) past the end of the log would count every event as delivered:
/// refused, naming the file. One the log's id vouches for is taken, with a warning (events
/// were lost under the log), as before.
#[test]
fn an_unverified_checkpoint_past_the_end_of_the_log_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    for (log, n) in [(&a, 5u64), (&b, 12)] {
        let wal = Wal::open(log, opts(SMALL)).unwrap();
        let mut r = wal.reader("c1").unwrap();
        for i in 0..n {
            wal.append_commit(&[ev(i, 10)]).unwrap();
        }
        assert_eq!(r.read(n as usize).unwrap().len(), n as usize);
        r.ack().unwrap();
    }
    make_legacy(&a, &a);
    make_legacy(&b, &b);
    std::fs::remove_file(a.join("wal.meta")).unwrap();
    std::fs::copy(b.join("c1.ckpt"), a.join("c1.ckpt")).unwrap();
    let err = Wal::open(&a, opts(SMALL))
        .err()
        .expect("a checkpoint at 12 taken by a log ending at 5");
    let WalError::UnverifiedCheckpointPastEnd(refused) = &err else {
        panic!("expected a refusal, got {err}");
    };
    assert_eq!((refused.offset, refused.log_end), (12, 5));
    let msg = err.to_string();
    assert!(
        msg.contains("past the end of the log") && msg.contains("delete"),
        "{msg}"
    );
    let report = inspect::verify(&a, None, |_, _| {}).unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.reason.contains("past the end of the log")),
        "{:?}",
        report.problems
    );
}

/// A checkpoint of another log copied in beside the log's own: refused by name; and when
/// neither `wal.meta` nor a segment holds the log's id (a log from before ids whose
/// checkpoints were written since), nothing says which of the two is this log's, so the open
/// is refused rather than guess.
#[test]
fn checkpoints_of_two_logs_in_one_directory_are_refused() {
    let root = tempfile::tempdir().unwrap();
    for (log, consumer) in [("a", "c1"), ("b", "c2")] {
        let wal = Wal::open(root.path().join(log), opts(SMALL)).unwrap();
        let mut r = wal.reader(consumer).unwrap();
        wal.append_commit(&[ev(0, 10), ev(1, 10)]).unwrap();
        assert_eq!(r.read(1).unwrap().len(), 1);
        r.ack().unwrap();
    }
    let a = root.path().join("a");
    let copied = a.join("c2.ckpt");
    std::fs::copy(root.path().join("b/c2.ckpt"), &copied).unwrap();
    match Wal::open(&a, opts(SMALL)) {
        Err(WalError::CheckpointOfAnotherLog(refused)) => assert_eq!(
            (refused.checkpoint, refused.consumer.as_str()),
            (copied.clone(), "c2")
        ),
        Err(e) => panic!("expected a refusal of c2.ckpt, got {e}"),
        Ok(_) => panic!("log a took log b's checkpoint"),
    }
    let no_checkpoints = root.path().join("none");
    std::fs::create_dir(&no_checkpoints).unwrap();
    make_legacy(&a, &no_checkpoints);
    let err = Wal::open(&a, opts(SMALL))
        .err()
        .expect("checkpoints of two logs taken");
    assert!(matches!(err, WalError::CheckpointsOfTwoLogs(_)), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&a.join("c1.ckpt").display().to_string())
            && msg.contains(&copied.display().to_string()),
        "{msg}"
    );
    std::fs::remove_file(&copied).unwrap();
    let wal = Wal::open(&a, opts(SMALL)).unwrap();
    assert_eq!(read_all(&wal, "c1").len(), 1);
}

#[test]
fn lock_is_released_on_drop() {
    let dir = tempfile::tempdir().unwrap();
    drop(Wal::open(dir.path(), opts(SMALL)).unwrap());
    Wal::open(dir.path(), opts(SMALL)).unwrap();
}

#[test]
fn readers_see_only_committed_frames() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), opts(SMALL)).unwrap();
    let mut r = wal.reader("sink").unwrap();
    wal.append(&[ev(0, 10), ev(1, 10)]).unwrap();
    assert!(r.read(10).unwrap().is_empty(), "uncommitted frame visible");
    wal.commit().unwrap();
    assert_eq!(r.read(10).unwrap().len(), 2);
}

#[test]
fn interval_sync_makes_data_visible_within_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(
        dir.path(),
        WalOptions {
            segment_size: SMALL,
            sync: SyncPolicy::Interval(Duration::from_millis(20)),
            ..Default::default()
        },
    )
    .unwrap();
    let mut r = wal.reader("sink").unwrap();
    wal.append_commit(&[ev(0, 10)]).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut got = Vec::new();
    while got.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
        got = r.read(10).unwrap();
    }
    assert_eq!(got.len(), 1);
}

#[test]
fn concurrent_committers_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), opts(64 * 1024)).unwrap();
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let wal = wal.clone();
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                for i in 0..50u64 {
                    let a = wal.append_commit(&[ev(t * 1000 + i, 50)]).unwrap();
                    assert!(wal.durable_offset() >= a.next_offset);
                    mine.push(a.first_offset);
                }
                mine
            })
        })
        .collect();
    let mut offsets: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    offsets.sort();
    assert_eq!(offsets, (0..800).collect::<Vec<_>>());
    let got = read_all(&wal, "sink");
    assert_eq!(got.len(), 800);
}

/// Many more committers than cores, mixing `append_commit` with `append` then `commit`, over
/// small segments so that rolls (which also make frames durable) interleave with group
/// commits. Every commit must return covered, and none may sleep through its wake-up: a
/// watchdog turns a hang into a failure.
#[test]
fn many_committers_never_hang_and_all_land() {
    const THREADS: u64 = 64;
    const EACH: u64 = 500;
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), opts(64 * 1024)).unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (wal, done_tx) = (wal.clone(), done_tx.clone());
            std::thread::spawn(move || {
                let mut events = 0;
                for i in 0..EACH {
                    let batch: Vec<Event> = (0..1 + (t + i) % 3)
                        .map(|k| ev(t * 10_000 + i * 10 + k, 40))
                        .collect();
                    let a = if (t + i) % 2 == 0 {
                        wal.append_commit(&batch).unwrap()
                    } else {
                        let a = wal.append(&batch).unwrap();
                        wal.commit().unwrap();
                        a
                    };
                    assert!(wal.durable_offset() >= a.next_offset);
                    events += batch.len() as u64;
                }
                done_tx.send(events).unwrap();
            })
        })
        .collect();
    drop(done_tx);
    let mut total = 0;
    for _ in 0..THREADS {
        total += done_rx
            .recv_timeout(Duration::from_secs(120))
            .expect("a committer never returned: group commit lost a wake-up");
    }
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(wal.durable_offset(), total);
    assert_eq!(read_all(&wal, "sink").len() as u64, total);
}

#[test]
fn resume_from_checkpoint_inside_a_frame() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = Wal::open(dir.path(), opts(SMALL)).unwrap();
        let batch: Vec<Event> = (0..10).map(|i| ev(i, 20)).collect();
        wal.append_commit(&batch).unwrap();
        let mut r = wal.reader("sink").unwrap();
        assert_eq!(r.read(4).unwrap().len(), 4);
        r.ack().unwrap();
    }
    let wal = Wal::open(dir.path(), opts(SMALL)).unwrap();
    let mut r = wal.reader("sink").unwrap();
    let got = r.read(100).unwrap();
    assert_eq!(got.first().map(|(o, _)| *o), Some(4));
    assert_eq!(got.len(), 6);
}

#[test]
fn bad_consumer_names_and_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), opts(SMALL)).unwrap();
    assert!(matches!(
        wal.reader("../x"),
        Err(WalError::BadConsumerName(_))
    ));
    let err = Wal::open(tempfile::tempdir().unwrap().path(), opts(5000))
        .err()
        .unwrap();
    assert!(err.to_string().contains("multiple of 4096"), "{err}");
}

#[test]
fn future_format_version_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    drop(Wal::open(dir.path(), opts(SMALL)).unwrap());
    let path = seg_path(dir.path(), 0);
    let mut image = std::fs::read(&path).unwrap();
    image[8] = 2;
    let crc = crc32fast::hash(&image[0..60]);
    image[60..64].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, &image).unwrap();
    let err = Wal::open(dir.path(), opts(SMALL)).err().unwrap();
    assert!(
        matches!(err, WalError::UnsupportedVersion { found: 2, .. }),
        "{err}"
    );
}

#[test]
fn interval_mode_closes_promptly_and_keeps_appended_data() {
    let dir = tempfile::tempdir().unwrap();
    let o = WalOptions {
        segment_size: SMALL,
        sync: SyncPolicy::Interval(Duration::from_secs(30)),
        ..Default::default()
    };
    let wal = Wal::open(dir.path(), o.clone()).unwrap();
    wal.append_commit(&[ev(0, 10)]).unwrap();
    drop(wal);
    // The lock must be free at once, not after the 30 s interval, and the close synced.
    let wal = Wal::open(dir.path(), o).unwrap();
    assert_eq!(read_all(&wal, "sink").len(), 1);
}

/// Syncs of small batches write zeros ahead of the last frame in a fresh segment (so the file
/// system converts its unwritten blocks once per stretch, not on every sync); large batches do
/// not. Neither may ever touch a frame: after many of both, across segment rolls, everything
/// reads back in order, before and after reopening.
#[test]
fn zeros_written_ahead_never_touch_frames() {
    let dir = tempfile::tempdir().unwrap();
    let mut expected = Vec::new();
    {
        let wal = Wal::open(dir.path(), opts(1 << 20)).unwrap();
        let mut i = 0;
        for _ in 0..4 {
            for _ in 0..700 {
                let e = ev(i, 200);
                wal.append_commit(std::slice::from_ref(&e)).unwrap();
                expected.push(e);
                i += 1;
            }
            let big: Vec<Event> = (i..i + 300).map(|k| ev(k, 1000)).collect();
            wal.append_commit(&big).unwrap();
            i += 300;
            expected.extend(big);
        }
        let got: Vec<Event> = read_all(&wal, "live").into_iter().map(|(_, e)| e).collect();
        assert!(got == expected, "read back while writing");
        assert!(
            wal.stats().segments >= 2,
            "the test must cross a segment roll"
        );
    }
    let wal = Wal::open(dir.path(), opts(1 << 20)).unwrap();
    let got: Vec<(u64, Event)> = read_all(&wal, "after");
    assert_eq!(got.len(), expected.len());
    for (k, ((offset, e), want)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(*offset, k as u64);
        assert!(e == want, "event {k} differs after reopening");
    }
}

/// A reused spare segment still holds its earlier life's frames past the new ones, and a scan
/// ends in the middle of one. After a clean close that is not a torn write: the close records
/// the end in wal.meta, and neither the next open nor `weir wal verify` says anything of a torn
/// tail (the open used to warn at every start after a clean stop, verify to print a note).
#[test]
fn a_clean_close_leaves_no_torn_tail_in_a_reused_segment() {
    let dir = tempfile::tempdir().unwrap();
    let o = reusing_spares();
    let (wal, end) = ending_in_a_reused_spare(dir.path(), &o);
    drop(wal);

    // The setup is what it should be: the scan ends on leftovers that read as a torn frame.
    let (base, newest) = inspect::segment_files(dir.path()).unwrap().pop().unwrap();
    let bytes = std::fs::read(&newest).unwrap();
    let scan = weir::wal::recovery::scan_frames(&bytes, SEGMENT_HEADER_LEN, base, bytes.len());
    assert_eq!(scan.next_offset, end);
    assert!(
        !scan.stop.is_clean(),
        "no leftovers after the end: {}",
        scan.stop
    );

    // `weir wal verify` agrees: no torn tail, and nothing wrong.
    let logs = verify_then_open_untorn(dir.path(), &o, end);
    assert!(
        logs.contains("leftover bytes after the end recorded when the log was last opened"),
        "{logs}"
    );
}

/// Small segments, two spares kept.
fn reusing_spares() -> WalOptions {
    let mut o = opts(64 * 1024);
    o.spare_segments = 2;
    o
}

/// `disk_bytes` (the channel's `DiskBytes`) is what the segment files take on disk, the spares
/// kept for reuse included.
#[test]
fn disk_bytes_counts_every_segment_file_spares_included() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = ending_in_a_reused_spare(dir.path(), &reusing_spares());
    let mut reader = wal.reader("r").unwrap();
    while reader.read_with(1000, |_, _, _| {}).unwrap() > 0 {}
    reader.ack().unwrap();
    assert!(!spare_lengths(dir.path()).is_empty(), "no spare to count");
    let on_disk: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg" || x == "spare"))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert_eq!(wal.stats().disk_bytes, on_disk);
    // `weir wal stats` counts them too (it printed only the segments').
    let report = inspect::verify(dir.path(), None, |_, _| {}).unwrap();
    assert_eq!(
        report.spare_bytes,
        spare_lengths(dir.path()).iter().sum::<u64>()
    );
    let segments: u64 = report.segments.iter().map(|s| s.file_len).sum();
    assert_eq!(segments + report.spare_bytes, on_disk);
}

/// A log in `dir` whose newest segment is a reused spare: 1 KB frames fill and retire a few
/// segments (consumed by reader "r"), then more roll into a spare, and three small frames end
/// the log there, in the middle of what the spare held before. Returns the open log and its
/// next offset.
fn ending_in_a_reused_spare(dir: &Path, o: &WalOptions) -> (Wal, u64) {
    let wal = Wal::open(dir, o.clone()).unwrap();
    let mut reader = wal.reader("r").unwrap();
    let old = vec![Event::new(vec![b'y'; 1000])];
    while wal.next_offset() < 200 {
        wal.append_commit(&old).unwrap();
        while reader.read_with(1000, |_, _, _| {}).unwrap() > 0 {}
        reader.ack().unwrap();
    }
    assert!(
        !spare_lengths(dir).is_empty(),
        "no segment was kept as a spare"
    );
    let before = wal.next_offset();
    while wal.next_offset() < before + 70 {
        wal.append_commit(&old).unwrap();
    }
    for _ in 0..3 {
        wal.append_commit(&[Event::new("small")]).unwrap();
    }
    let end = wal.next_offset();
    (wal, end)
}

/// Checks that `weir wal verify` finds the log in `dir` ending at `end` with no torn tail and no
/// problem, and that opening it reaches `end` without logging a torn tail; returns the open's log.
fn verify_then_open_untorn(dir: &Path, o: &WalOptions, end: u64) -> String {
    let report = inspect::verify(dir, None, |_, _| {}).unwrap();
    let newest = report.segments.last().unwrap();
    assert_eq!(newest.next_offset, end);
    assert!(newest.tail.is_none(), "{:?}", newest.tail);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let logs = captured_logs(|| {
        let wal = Wal::open(dir, o.clone()).unwrap();
        assert_eq!(wal.next_offset(), end);
    });
    assert!(!logs.contains("torn tail"), "{logs}");
    logs
}

/// The files of `from` copied into `to`: taken while a log is open, what a crash leaves.
fn copy_files(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// The reused segment of the test above after a crash, so that no close recorded the end: the
/// open does not call the earlier life's bytes a torn tail (it used to warn at every restart
/// onto a reused segment), and neither does `weir wal verify`; a frame torn at the end is still
/// a torn tail.
#[test]
fn after_a_crash_a_reused_segments_leftovers_are_not_called_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let o = reusing_spares();
    let (wal, end) = ending_in_a_reused_spare(dir.path(), &o);
    let crashed = tempfile::tempdir().unwrap();
    copy_files(dir.path(), crashed.path());
    let torn = tempfile::tempdir().unwrap();
    copy_files(dir.path(), torn.path());
    drop(wal);

    let logs = verify_then_open_untorn(crashed.path(), &o, end);
    assert!(logs.contains("the log ends here"), "{logs}");

    // The last frame's last byte lost, as if its last sector had not reached the disk.
    let (base, newest) = inspect::segment_files(torn.path()).unwrap().pop().unwrap();
    let mut bytes = std::fs::read(&newest).unwrap();
    let scan = weir::wal::recovery::scan_frames(&bytes, SEGMENT_HEADER_LEN, base, bytes.len());
    assert_eq!(scan.next_offset, end);
    bytes[scan.end_pos - 1] ^= 0xff;
    std::fs::write(&newest, &bytes).unwrap();
    let report = inspect::verify(torn.path(), None, |_, _| {}).unwrap();
    assert!(
        report.segments.last().unwrap().tail.is_some(),
        "no torn tail reported"
    );
    let logs = captured_logs(|| {
        let wal = Wal::open(torn.path(), o).unwrap();
        assert_eq!(wal.next_offset(), end - 1);
    });
    assert!(logs.contains("discarding a torn tail"), "{logs}");
}

/// The first frame a process writes after an open starts exactly at the end that open
/// recorded in wal.meta, so that is where a crash most often tears one. A torn frame there is a
/// torn tail, warned about by the open and reported by `weir wal verify`; it used to be taken
/// for leftovers of the segment's earlier life and dropped, with every frame after it, at debug
/// level (audit 26). The next open, which finds the same bytes at the end it recorded itself,
/// knows them by their older epoch for the tail already discarded.
#[test]
fn a_torn_first_frame_after_an_open_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(64 * 1024);
    // Frames of equal length, so that the second one's place is known.
    let batch = |from: u64| {
        (from..from + 5)
            .map(|i| Event::new(format!("event {i:03}")))
            .collect::<Vec<_>>()
    };
    let wal = Wal::open(dir.path(), o.clone()).unwrap();
    wal.append_commit(&batch(0)).unwrap();
    drop(wal);
    let wal = Wal::open(dir.path(), o.clone()).unwrap();
    wal.append_commit(&batch(5)).unwrap();
    wal.append_commit(&batch(10)).unwrap();
    let crashed = tempfile::tempdir().unwrap();
    copy_files(dir.path(), crashed.path());
    drop(wal);

    // The last byte of the open's first frame lost, as if its last sector had not reached the
    // disk; the frame after it is whole.
    let (base, newest) = inspect::segment_files(crashed.path())
        .unwrap()
        .pop()
        .unwrap();
    let mut bytes = std::fs::read(&newest).unwrap();
    let first = weir::wal::recovery::scan_frames(&bytes, SEGMENT_HEADER_LEN, base, bytes.len());
    assert_eq!(first.next_offset, 15);
    let frame_len = (first.end_pos - SEGMENT_HEADER_LEN) / 3;
    let torn_at = SEGMENT_HEADER_LEN + frame_len;
    bytes[torn_at + frame_len - 1] ^= 0xff;
    std::fs::write(&newest, &bytes).unwrap();

    let report = inspect::verify(crashed.path(), None, |_, _| {}).unwrap();
    let tail = report.segments.last().unwrap().tail.as_ref();
    assert!(
        tail.is_some_and(|t| t.pos == torn_at as u64
            && t.reason.contains("torn tail")
            && t.reason
                .contains("with the intact frames after it, from offset 10")),
        "{tail:?}"
    );
    let reopened = tempfile::tempdir().unwrap();
    let logs = captured_logs(|| {
        let wal = Wal::open(crashed.path(), o.clone()).unwrap();
        assert_eq!(wal.next_offset(), 5);
        // A crash right after this open: the next finds the torn frame again, at the end
        // this open recorded.
        copy_files(crashed.path(), reopened.path());
    });
    // The frame after the torn one is whole: the warning says it goes too.
    assert!(
        logs.contains(
            "discarding a torn tail, and the intact frames written after it (from offset 10"
        ),
        "{logs}"
    );

    let report = inspect::verify(reopened.path(), None, |_, _| {}).unwrap();
    assert!(report.segments.last().unwrap().tail.is_none());
    let logs = captured_logs(|| {
        let wal = Wal::open(reopened.path(), o).unwrap();
        assert_eq!(wal.next_offset(), 5);
    });
    assert!(!logs.contains("torn tail"), "{logs}");
    assert!(
        logs.contains("leftover bytes after the end recorded when the log was last opened"),
        "{logs}"
    );
}

/// Spares left by a run with another segment size (`maxFileSize` changed between restarts) or
/// more spares than now configured are deleted at open. Reusing one used to fail at every roll
/// with a warning that the file was "truncated or extended by something else", after its
/// header had been rewritten and the file renamed into place: a crash at that moment left a
/// segment the next open refused.
#[test]
fn spares_of_another_size_are_removed_at_open_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    let fill_and_consume = |o: WalOptions, until: u64| {
        let wal = Wal::open(dir.path(), o).unwrap();
        let mut reader = wal.reader("r").unwrap();
        let event = vec![Event::new(vec![b'z'; 1000])];
        while wal.next_offset() < until {
            wal.append_commit(&event).unwrap();
            while reader.read_with(1000, |_, _, _| {}).unwrap() > 0 {}
            reader.ack().unwrap();
        }
    };
    let mut small = opts(64 * 1024);
    small.spare_segments = 3;
    fill_and_consume(small.clone(), 400);
    assert!(spare_lengths(dir.path()).contains(&(64 * 1024)));

    // Twice the segment size: the old spares cannot serve, and rolls must not try them.
    let mut large = opts(128 * 1024);
    large.spare_segments = 3;
    let logs = captured_logs(|| fill_and_consume(large.clone(), 1200));
    assert!(!logs.contains("could not reuse"), "{logs}");
    assert!(logs.contains("removed a spare segment"), "{logs}");
    let spares = spare_lengths(dir.path());
    assert!(
        !spares.is_empty(),
        "the new size's spares are kept: {spares:?}"
    );
    assert!(spares.iter().all(|len| *len == 128 * 1024), "{spares:?}");

    // Fewer spares allowed: the surplus goes at open.
    large.spare_segments = 1;
    drop(Wal::open(dir.path(), large.clone()).unwrap());
    assert!(spare_lengths(dir.path()).len() <= 1);
    let report = inspect::verify(dir.path(), None, |_, _| {}).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

/// The lengths of the spare segments in `dir`.
fn spare_lengths(dir: &Path) -> Vec<u64> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "spare"))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .collect()
}

/// What `f` logs (debug level and up), as text.
fn captured_logs(f: impl FnOnce()) -> String {
    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(buffer.clone())
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let bytes = buffer.0.lock().unwrap().clone();
    String::from_utf8_lossy(&bytes).into_owned()
}
