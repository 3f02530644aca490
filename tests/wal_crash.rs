//! Crash safety of the write-ahead log.
//!
//! - A child process appends and commits in a loop, printing each committed offset; the parent
//!   SIGKILLs it at random moments, reopens, and checks that everything reported committed is
//!   there, intact and in order — many cycles on the same directory.
//! - Power loss: segment images are built from the state at the last sync and the state at the
//!   crash, with every 512-byte sector written in between either old or new (sectors wholly past
//!   the synced end may also hold garbage); recovery must yield the committed prefix plus a
//!   prefix of whole later frames, never garbage.
//! - The stale-frame case the per-open epoch exists for, a crash between sealing a segment and
//!   creating the next, and a torn checkpoint slot.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use weir::event::Event;
use weir::wal::inspect;
use weir::wal::segment::{SEGMENT_HEADER_LEN, segment_file_name};
use weir::wal::{Wal, WalOptions};

const SEGMENT: u64 = 64 * 1024;

fn opts() -> WalOptions {
    WalOptions {
        segment_size: SEGMENT,
        ..Default::default()
    }
}

/// The body every event at `offset` must have: verifiable without remembering anything.
fn body_for(offset: u64) -> Vec<u8> {
    let len = 20 + (offset % 200) as usize;
    let mut b = format!("{offset}:").into_bytes();
    b.extend((0..len).map(|i| b'a' + ((offset as usize + i) % 26) as u8));
    b
}

/// Reads everything from the oldest retained event with a throwaway consumer; checks contiguity
/// and content. Returns (first, next) offsets seen.
fn check_log(wal: &Wal) -> (u64, u64) {
    let mut r = wal.reader("check").unwrap();
    let first = r.position().offset;
    let mut next = first;
    loop {
        let batch = r.read(10_000).unwrap();
        if batch.is_empty() {
            break;
        }
        for (offset, e) in batch {
            assert_eq!(offset, next, "gap or reorder");
            assert_eq!(&e.body[..], &body_for(offset)[..], "event {offset} damaged");
            next += 1;
        }
    }
    drop(r);
    wal.remove_consumer("check").unwrap();
    (first, next)
}

/// The child: appends batches forever, printing `COMMITTED <next offset>` after each commit, and
/// consumes and acknowledges now and then so retention deletes and recycles segments under load.
#[test]
#[ignore = "child process of wal_survives_sigkill_loops"]
fn crash_child() {
    let Ok(dir) = std::env::var("WEIR_CRASH_CHILD_DIR") else {
        return;
    };
    let wal = Wal::open(&dir, opts()).unwrap();
    let mut sink = wal.reader("sink").unwrap();
    let mut round = 0u64;
    loop {
        let first = wal.next_offset();
        let n = 1 + (round % 40);
        let batch: Vec<Event> = (first..first + n)
            .map(|o| Event::new(body_for(o)))
            .collect();
        wal.append_commit(&batch).unwrap();
        println!("COMMITTED {}", first + n);
        round += 1;
        if round.is_multiple_of(25) {
            while !sink.read(1000).unwrap().is_empty() {}
            sink.ack().unwrap();
        }
    }
}

#[test]
fn wal_survives_sigkill_loops() {
    let dir = tempfile::tempdir().unwrap();
    let cycles: u32 = std::env::var("WEIR_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let exe = std::env::current_exe().unwrap();
    let mut last_committed = 0u64;
    for cycle in 0..cycles {
        let mut child = Command::new(&exe)
            .args([
                "crash_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("WEIR_CRASH_CHILD_DIR", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut last = None;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line
                    .strip_prefix("COMMITTED ")
                    .and_then(|n| n.parse::<u64>().ok())
                {
                    last = Some(n);
                }
            }
            last
        });
        std::thread::sleep(Duration::from_millis(fastrand::u64(20..200)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if let Some(n) = reader.join().unwrap() {
            last_committed = n;
        }
        let wal = Wal::open(dir.path(), opts()).unwrap();
        assert!(
            wal.next_offset() >= last_committed,
            "cycle {cycle}: committed {last_committed} but log ends at {}",
            wal.next_offset()
        );
        let (first, next) = check_log(&wal);
        assert!(
            next >= last_committed,
            "cycle {cycle}: read up to {next}, committed {last_committed}"
        );
        let sink = wal.checkpoint("sink").map(|p| p.offset).unwrap_or(0);
        assert!(
            first <= sink,
            "retention removed events the consumer had not acknowledged"
        );
        drop(wal);
        let report = inspect::verify(dir.path(), None, |_, _| {}).unwrap();
        assert!(
            report.problems.is_empty(),
            "cycle {cycle}: {:?}",
            report.problems
        );
    }
    assert!(last_committed > 0, "the child never committed anything");
    eprintln!("{cycles} SIGKILL cycles, {last_committed} events committed");
}

/// Frames appended in a log, with their byte ranges in the (single) segment.
struct Written {
    dir: tempfile::TempDir,
    /// (start, end, first offset, count) per frame.
    frames: Vec<(usize, usize, u64, u64)>,
    /// The segment's bytes when the last commit returned, and at the "crash".
    synced: Vec<u8>,
    crashed: Vec<u8>,
    committed_frames: usize,
}

fn seg_path(dir: &Path, base: u64) -> std::path::PathBuf {
    dir.join(segment_file_name(base))
}

/// Commits `committed` frames, then appends `pending` more without committing.
fn write_frames(committed: usize, pending: usize) -> Written {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), opts()).unwrap();
    let mut frames = Vec::new();
    let mut pos = SEGMENT_HEADER_LEN;
    let mut synced = Vec::new();
    for i in 0..committed + pending {
        let first = wal.next_offset();
        let n = 1 + (i as u64 % 5);
        let batch: Vec<Event> = (first..first + n)
            .map(|o| Event::new(body_for(o)))
            .collect();
        let len = weir::wal::frame::encoded_frame_len(&batch).unwrap();
        wal.append(&batch).unwrap();
        frames.push((pos, pos + len, first, n));
        pos += len;
        if i + 1 == committed {
            wal.commit().unwrap();
            synced = std::fs::read(seg_path(dir.path(), 0)).unwrap();
        }
    }
    let crashed = std::fs::read(seg_path(dir.path(), 0)).unwrap();
    drop(wal);
    Written {
        dir,
        frames,
        synced,
        crashed,
        committed_frames: committed,
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn power_loss_images_recover_exactly_a_committed_prefix() {
    let w = write_frames(6, 10);
    let sync_end = w.frames[w.committed_frames - 1].1;
    let crash_end = w.frames.last().unwrap().1;
    let first_sector = sync_end / 512;
    let last_sector = crash_end.div_ceil(512);
    let mut rng = fastrand::Rng::with_seed(7);
    let mut kept_counts = std::collections::BTreeMap::new();
    for round in 0..300 {
        let mut image = w.synced.clone();
        for s in first_sector..last_sector {
            let r = s * 512..(s + 1) * 512;
            // A sector is written atomically: after the crash it holds its synced or its new
            // content. Only a sector wholly past the synced end may hold anything else; garbage
            // there checks that no damage is ever taken for a frame.
            let wholly_unsynced = r.start >= sync_end;
            match rng.u8(0..if wholly_unsynced { 3 } else { 2 }) {
                0 => {}
                1 => image[r.clone()].copy_from_slice(&w.crashed[r]),
                _ => rng.fill(&mut image[r]),
            }
        }
        let dir = tempfile::tempdir().unwrap();
        copy_dir(w.dir.path(), dir.path());
        std::fs::write(seg_path(dir.path(), 0), &image).unwrap();
        let wal = Wal::open(dir.path(), opts()).unwrap();
        let (first, next) = check_log(&wal);
        assert_eq!(first, 0);
        // The result must end exactly at a frame boundary at or after the committed end, and
        // every frame up to it must be whole in the image.
        let committed_next =
            w.frames[w.committed_frames - 1].2 + w.frames[w.committed_frames - 1].3;
        assert!(
            next >= committed_next,
            "round {round}: committed events lost ({next} < {committed_next})"
        );
        let kept = w.frames.iter().take_while(|f| f.2 + f.3 <= next).count();
        assert_eq!(
            w.frames[kept - 1].2 + w.frames[kept - 1].3,
            next,
            "round {round}: ended inside a frame"
        );
        for f in &w.frames[..kept] {
            assert_eq!(
                image[f.0..f.1],
                w.crashed[f.0..f.1],
                "round {round}: a kept frame is not intact"
            );
        }
        *kept_counts.entry(kept).or_insert(0) += 1;
    }
    // The harness must produce both outcomes: only the committed frames, and more.
    assert!(kept_counts.len() > 2, "too little variety: {kept_counts:?}");
}

#[test]
fn a_stale_frame_beyond_a_discarded_tail_is_not_resurrected() {
    // Frames: 4 committed, then X1 and X2 appended but not committed.
    let w = write_frames(4, 2);
    let (x1, x2) = (w.frames[4], w.frames[5]);
    // Power loss: X1 torn (its first bytes lost), X2 on disk whole.
    let mut image = w.crashed.clone();
    image[x1.0..x1.0 + 8].fill(0);
    let dir = tempfile::tempdir().unwrap();
    copy_dir(w.dir.path(), dir.path());
    std::fs::write(seg_path(dir.path(), 0), &image).unwrap();
    {
        let wal = Wal::open(dir.path(), opts()).unwrap();
        assert_eq!(
            wal.next_offset(),
            x1.2,
            "X1 and everything after it must be discarded"
        );
        // A new frame exactly as long as X1, so it ends where the stale X2 begins, with X2's
        // offset expected next.
        let batch: Vec<Event> = (x1.2..x1.2 + x1.3)
            .map(|o| Event::new(body_for(o)))
            .collect();
        wal.append_commit(&batch).unwrap();
        assert_eq!(wal.next_offset(), x2.2);
    }
    let on_disk = std::fs::read(seg_path(dir.path(), 0)).unwrap();
    assert_eq!(
        on_disk[x2.0..x2.1],
        w.crashed[x2.0..x2.1],
        "the stale X2 is still there"
    );
    let wal = Wal::open(dir.path(), opts()).unwrap();
    assert_eq!(wal.next_offset(), x2.2, "stale frame X2 was resurrected");
    let (_, next) = check_log(&wal);
    assert_eq!(next, x2.2);
}

#[test]
fn crash_between_sealing_and_creating_the_next_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut next = 0;
    {
        let wal = Wal::open(dir.path(), opts()).unwrap();
        while wal.stats().segments < 2 {
            wal.append_commit(&[Event::new(body_for(next))]).unwrap();
            next += 1;
        }
    }
    // Remove the newest segment and the events in it: as if the crash came right after the seal.
    let files = inspect::segment_files(dir.path()).unwrap();
    let (newest_base, newest) = files.last().unwrap().clone();
    std::fs::remove_file(newest).unwrap();
    let wal = Wal::open(dir.path(), opts()).unwrap();
    assert_eq!(wal.next_offset(), newest_base);
    let a = wal
        .append_commit(&[Event::new(body_for(newest_base))])
        .unwrap();
    assert_eq!(a.first_offset, newest_base);
    let (first, end) = check_log(&wal);
    assert_eq!((first, end), (0, newest_base + 1));
}

#[test]
fn a_torn_checkpoint_slot_falls_back_to_the_previous_position() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = Wal::open(dir.path(), opts()).unwrap();
        let batch: Vec<Event> = (0..10).map(|o| Event::new(body_for(o))).collect();
        wal.append_commit(&batch).unwrap();
        let mut r = wal.reader("sink").unwrap();
        r.read(3).unwrap();
        r.ack().unwrap(); // slot 1: offset 3
        r.read(4).unwrap();
        r.ack().unwrap(); // slot 0: offset 7
    }
    let path = dir.path().join("sink.ckpt");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[20] ^= 0xff; // tear slot 0, the newest
    std::fs::write(&path, &bytes).unwrap();
    let wal = Wal::open(dir.path(), opts()).unwrap();
    assert_eq!(
        wal.checkpoint("sink").unwrap().offset,
        3,
        "previous checkpoint expected"
    );
    let mut r = wal.reader("sink").unwrap();
    let got = r.read(100).unwrap();
    assert_eq!(
        got.first().map(|(o, _)| *o),
        Some(3),
        "events after the older checkpoint are redelivered"
    );
}
