//! Process-crash test. The child is this test binary re-executed (`crash_child`): it appends and
//! commits under load, printing every commit it was granted, while a consumer reads and
//! acknowledges so that retention retires and recycles segments underneath. The parent SIGKILLs it
//! at a random moment and reopens the log: every event the child was told is committed must be
//! there, intact and at the offset it was given, and the log must be one contiguous, valid chain
//! from the consumer's checkpoint on. All cycles share one directory, so each open also recovers
//! from whatever a kill during the previous recovery left.
//!
//! `WEIR_CRASH_CYCLES` sets the number of cycles per test (default 40).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use weir::event::Event;
use weir::wal::{SyncMethod, Wal, WalOptions, inspect};

const DIR_ENV: &str = "WEIR_CRASH_CHILD_DIR";
const CYCLE_ENV: &str = "WEIR_CRASH_CHILD_CYCLE";
const THREADS_ENV: &str = "WEIR_CRASH_CHILD_THREADS";
const CONSUMER: &str = "sink";
/// Small, so that segments roll, get sealed, retired and reused many times per cycle.
const SEGMENT_SIZE: u64 = 64 * 1024;

fn opts(cycle: u32) -> WalOptions {
    WalOptions {
        segment_size: SEGMENT_SIZE,
        // Every way of writing and syncing takes the same recovery path; rotate so each sees
        // kills (including a kill during recovery after a run that used another method).
        sync_method: match cycle % 3 {
            0 => SyncMethod::Pwrite,
            1 => SyncMethod::Msync,
            _ => SyncMethod::Fdatasync,
        },
        ..Default::default()
    }
}

/// Who wrote an event: the child's cycle, its writer thread, and that thread's sequence number.
/// The event's content is a pure function of it, so the parent can rebuild any event exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Tag {
    cycle: u32,
    thread: u32,
    seq: u64,
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn fnv64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Body: cycle, thread, seq, then a payload whose length and bytes depend on the tag (mostly
/// short, sometimes a few KiB so frames span pages), then an FNV-64 of all that.
fn make_event(tag: Tag) -> Event {
    let seed = mix((u64::from(tag.cycle) << 40) ^ (u64::from(tag.thread) << 32) ^ tag.seq);
    let len = if seed.is_multiple_of(16) {
        1000 + (seed >> 8) % 2000
    } else {
        (seed >> 8) % 600
    } as usize;
    let mut body = Vec::with_capacity(16 + len + 8);
    body.extend_from_slice(&tag.cycle.to_le_bytes());
    body.extend_from_slice(&tag.thread.to_le_bytes());
    body.extend_from_slice(&tag.seq.to_le_bytes());
    let mut x = seed;
    body.extend((0..len).map(|_| {
        x = mix(x);
        x as u8
    }));
    let sum = fnv64(&body);
    body.extend_from_slice(&sum.to_le_bytes());
    Event::new(body)
        .with_header("cycle", tag.cycle.to_string())
        .with_header("thread", tag.thread.to_string())
}

/// The tag of an event, if the event is exactly what `make_event` makes for that tag.
fn decode_event(e: &Event) -> Result<Tag, String> {
    let b = &e.body;
    if b.len() < 24 {
        return Err(format!("body of {} bytes is too short", b.len()));
    }
    let (data, sum) = b.split_at(b.len() - 8);
    if fnv64(data).to_le_bytes() != sum {
        return Err("body checksum mismatch".into());
    }
    let tag = Tag {
        cycle: u32::from_le_bytes(data[0..4].try_into().unwrap()),
        thread: u32::from_le_bytes(data[4..8].try_into().unwrap()),
        seq: u64::from_le_bytes(data[8..16].try_into().unwrap()),
    };
    if *e != make_event(tag) {
        return Err(format!("event differs from the one made for {tag:?}"));
    }
    Ok(tag)
}

fn env_u32(name: &str) -> Option<u32> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The child: does nothing unless run by a parent below with `WEIR_CRASH_CHILD_DIR` set.
#[test]
#[ignore = "child process of the crash tests; only does something with WEIR_CRASH_CHILD_DIR set"]
fn crash_child() {
    let Some(dir) = std::env::var_os(DIR_ENV) else {
        return;
    };
    // Any failure in any thread must end the process where the parent can see it; a panicking
    // consumer thread would otherwise go unnoticed until the kill.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        std::process::exit(101);
    }));
    let cycle = env_u32(CYCLE_ENV).expect("cycle");
    let threads = env_u32(THREADS_ENV).unwrap_or(1);
    run_child(Path::new(&dir), cycle, threads);
}

fn run_child(dir: &Path, cycle: u32, threads: u32) {
    // Only an orphan (a parent that died) ever gets here; the parent kills well before.
    let deadline = Instant::now() + Duration::from_secs(20);
    let wal = Wal::open(dir, opts(cycle)).expect("child: open");
    let mut reader = wal.reader(CONSUMER).expect("child: reader");
    let consumer = std::thread::spawn(move || {
        let mut rng = fastrand::Rng::with_seed(u64::from(cycle) * 7919 + 1);
        while Instant::now() < deadline {
            let batch = reader.read(rng.usize(1..400)).expect("child: read");
            for (offset, e) in &batch {
                if let Err(why) = decode_event(e) {
                    panic!("child read a bad event at offset {offset}: {why}");
                }
            }
            if batch.is_empty() {
                std::thread::sleep(Duration::from_millis(1));
            } else if rng.u32(0..3) == 0 {
                reader.ack().expect("child: ack");
            }
        }
    });
    let writers: Vec<_> = (0..threads)
        .map(|thread| {
            let wal = wal.clone();
            std::thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed((u64::from(cycle) << 8) | u64::from(thread));
                let mut seq = 0u64;
                while Instant::now() < deadline {
                    let want = rng.u64(1..=50);
                    let mut events = Vec::new();
                    let mut bytes = 0;
                    // Bounded so a frame always fits in a segment.
                    while (events.len() as u64) < want && bytes < 40_000 {
                        let e = make_event(Tag {
                            cycle,
                            thread,
                            seq: seq + events.len() as u64,
                        });
                        bytes += e.body.len();
                        events.push(e);
                    }
                    let a = wal.append(&events).expect("child: append");
                    wal.commit().expect("child: commit");
                    // One write per line: a kill can cut the stream only between lines, and a
                    // line is printed only after its commit returned.
                    let line = format!(
                        "COMMITTED {} {} {cycle} {thread} {seq}\n",
                        a.next_offset, a.first_offset
                    );
                    let mut out = std::io::stdout().lock();
                    out.write_all(line.as_bytes()).expect("child: stdout");
                    out.flush().expect("child: stdout");
                    seq += events.len() as u64;
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("child: writer");
    }
    consumer.join().expect("child: consumer");
}

/// One commit the child reported: events `first..next` are `seq..` of `thread` in `cycle`.
#[derive(Clone, Copy, Debug)]
struct Committed {
    next: u64,
    first: u64,
    cycle: u32,
    thread: u32,
    seq: u64,
}

fn parse_committed(stdout: &[u8]) -> Vec<Committed> {
    let text = String::from_utf8_lossy(stdout);
    // The harness may print its own text around ours, on the same line; only whole lines
    // (ended by a newline) are taken.
    let whole = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    whole
        .lines()
        .filter_map(|l| l.find("COMMITTED ").map(|i| &l[i + "COMMITTED ".len()..]))
        .map(|rest| {
            let f: Vec<u64> = rest
                .split_whitespace()
                .map(|x| x.parse().unwrap_or_else(|_| panic!("bad line {rest:?}")))
                .collect();
            assert_eq!(f.len(), 5, "bad line {rest:?}");
            Committed {
                next: f[0],
                first: f[1],
                cycle: f[2] as u32,
                thread: f[3] as u32,
                seq: f[4],
            }
        })
        .collect()
}

/// Kills the child if the parent unwinds, so a failing test leaves no writer behind.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        v
    })
}

/// Runs the child on `dir` for `delay`, SIGKILLs it, and returns what it reported committing.
fn run_and_kill(dir: &Path, cycle: u32, threads: u32, delay: Duration) -> Vec<Committed> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--ignored", "--nocapture"])
        .env(DIR_ENV, dir)
        .env(CYCLE_ENV, cycle.to_string())
        .env(THREADS_ENV, threads.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drained concurrently: a child committing faster than we read would block on a full pipe.
    let stdout = drain(child.stdout.take().unwrap());
    let stderr = drain(child.stderr.take().unwrap());
    let mut child = KillOnDrop(child);
    std::thread::sleep(delay);
    if let Some(status) = child.0.try_wait().unwrap() {
        let err = stderr.join().unwrap();
        panic!(
            "cycle {cycle}: the child exited by itself ({status}):\n{}",
            String::from_utf8_lossy(&err)
        );
    }
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    drop(child);
    let _ = stderr.join();
    parse_committed(&stdout.join().unwrap())
}

/// What one check of the log found.
#[derive(Debug)]
struct Found {
    checkpoint: u64,
    next: u64,
    first_retained: u64,
    torn_tail: bool,
}

/// Opens the log and checks it against everything the children reported committing: events from
/// the consumer's checkpoint to the end are contiguous, each is exactly what its tag makes, each
/// writer's events appear in its order with no gap or repeat, every committed event at or after
/// the checkpoint is at its reported offset, nothing committed is missing, and `verify` finds no
/// problem before or after the open. Returns `Err` rather than panicking so the harness itself
/// can be tested.
fn check_log(
    dir: &Path,
    committed: &[Committed],
    max_committed: u64,
    prev_checkpoint: u64,
) -> Result<Found, String> {
    // A child killed inside the very first open before it wrote wal.meta leaves no log, which
    // verify rightly reports; the open below must make one. Only then, while nothing was ever
    // committed, is that not a failure. (The open writes wal.meta before the first segment, so
    // a segment without it is always a failure.)
    let first_open_cut = |e: &str| max_committed == 0 && e.contains("holds no write-ahead log");
    let torn_tail = match inspect::verify(dir, None, |_, _| {}) {
        Err(e) if first_open_cut(&e.to_string()) => false,
        Err(e) => return Err(e.to_string()),
        Ok(before) => {
            if !before.problems.is_empty() {
                return Err(format!("verify before open: {:?}", before.problems));
            }
            before.segments.last().is_some_and(|s| s.tail.is_some())
        }
    };
    let wal = Wal::open(dir, opts(0)).map_err(|e| format!("open: {e}"))?;
    let next = wal.next_offset();
    if next < max_committed {
        return Err(format!(
            "log ends before {next}, but the child was told offsets below {max_committed} were committed"
        ));
    }
    if wal.durable_offset() != next {
        return Err(format!(
            "durable offset {} != next offset {next} after recovery",
            wal.durable_offset()
        ));
    }
    let first_retained = wal.stats().first_offset;
    let checkpoint = wal
        .checkpoint(CONSUMER)
        .map(|p| p.offset)
        .unwrap_or(first_retained);
    if checkpoint < prev_checkpoint {
        return Err(format!(
            "checkpoint went back from {prev_checkpoint} to {checkpoint}"
        ));
    }
    if checkpoint > next {
        return Err(format!(
            "checkpoint {checkpoint} is past the log end {next}"
        ));
    }
    // Reading as the child's consumer without acknowledging moves nothing.
    let mut reader = wal.reader(CONSUMER).map_err(|e| e.to_string())?;
    let mut tags = Vec::with_capacity((next - checkpoint) as usize);
    let mut last_seq: HashMap<(u32, u32), u64> = HashMap::new();
    let mut last_cycle = 0;
    loop {
        let batch = reader
            .read(1000)
            .map_err(|e| format!("read at {}: {e}", checkpoint + tags.len() as u64))?;
        if batch.is_empty() {
            break;
        }
        for (offset, e) in batch {
            let expect = checkpoint + tags.len() as u64;
            if offset != expect {
                return Err(format!("offset {offset} where {expect} was expected"));
            }
            let tag = decode_event(&e).map_err(|why| format!("offset {offset}: {why}"))?;
            if tag.cycle < last_cycle {
                return Err(format!(
                    "offset {offset}: cycle {} after cycle {last_cycle}",
                    tag.cycle
                ));
            }
            last_cycle = tag.cycle;
            if let Some(prev) = last_seq.insert((tag.cycle, tag.thread), tag.seq)
                && tag.seq != prev + 1
            {
                return Err(format!(
                    "offset {offset}: {tag:?} follows seq {prev} of the same writer"
                ));
            }
            tags.push(tag);
        }
    }
    let end = checkpoint + tags.len() as u64;
    if end != next {
        return Err(format!(
            "reader stopped before {end}, log ends before {next}"
        ));
    }
    for c in committed {
        for offset in c.first.max(checkpoint)..c.next {
            let want = Tag {
                cycle: c.cycle,
                thread: c.thread,
                seq: c.seq + (offset - c.first),
            };
            let got = tags.get((offset - checkpoint) as usize);
            if got != Some(&want) {
                return Err(format!(
                    "committed offset {offset} should hold {want:?}, holds {got:?}"
                ));
            }
        }
    }
    drop(reader);
    drop(wal);
    let after = inspect::verify(dir, None, |_, _| {}).map_err(|e| e.to_string())?;
    if !after.problems.is_empty() {
        return Err(format!("verify after open: {:?}", after.problems));
    }
    if !after.consumers.contains(&(CONSUMER.to_owned(), checkpoint)) {
        return Err(format!(
            "verify sees consumers {:?}, expected {CONSUMER} at {checkpoint}",
            after.consumers
        ));
    }
    Ok(Found {
        checkpoint,
        next,
        first_retained,
        torn_tail,
    })
}

fn crash_cycles(threads: u32, seed: u64) {
    let cycles = env_u32("WEIR_CRASH_CYCLES").unwrap_or(40);
    let dir = tempfile::tempdir().unwrap();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut committed: Vec<Committed> = Vec::new();
    let mut max_committed = 0u64;
    let mut checkpoint = 0u64;
    let mut total_commits = 0usize;
    let mut cycles_with_commits = 0;
    let mut torn_tails = 0;
    let mut retained_from = 0u64;
    let mut beyond_committed = 0;
    let started = Instant::now();
    for cycle in 0..cycles {
        // Some kills aimed at the child's start-up, to land inside open and recovery.
        let delay = Duration::from_millis(if rng.u32(0..5) == 0 {
            rng.u64(5..=10)
        } else {
            rng.u64(5..=150)
        });
        let reported = run_and_kill(dir.path(), cycle, threads, delay);
        total_commits += reported.len();
        cycles_with_commits += usize::from(!reported.is_empty());
        for c in &reported {
            assert_eq!(c.cycle, cycle);
            assert!(c.first < c.next);
            max_committed = max_committed.max(c.next);
        }
        committed.extend(reported);
        let found = check_log(dir.path(), &committed, max_committed, checkpoint)
            .unwrap_or_else(|e| panic!("cycle {cycle} (killed after {delay:?}): {e}"));
        checkpoint = found.checkpoint;
        torn_tails += usize::from(found.torn_tail);
        retained_from = retained_from.max(found.first_retained);
        beyond_committed += usize::from(found.next > max_committed);
        // What lies below the checkpoint may be gone; nothing to check there any more.
        committed.retain(|c| c.next > checkpoint);
    }
    eprintln!(
        "{threads} writer thread(s), {cycles} cycles in {:.1?}: {total_commits} commits, \
         log end {max_committed}, checkpoint {checkpoint}, oldest retained {retained_from}, \
         {torn_tails} torn tails found, {beyond_committed} recoveries kept uncommitted frames, \
         {} children killed before their first commit",
        started.elapsed(),
        cycles as usize - cycles_with_commits
    );
    assert!(
        cycles_with_commits * 2 >= cycles as usize,
        "only {cycles_with_commits} of {cycles} children committed anything before the kill"
    );
    assert!(
        retained_from > 0,
        "retention never retired a segment: the recycling paths were not exercised"
    );
}

#[test]
fn sigkill_at_random_moments_loses_nothing_committed() {
    crash_cycles(1, 0xC4A5_0001);
}

/// Four writers commit concurrently, so most commits ride on another thread's sync.
#[test]
fn sigkill_during_group_commit_loses_nothing_committed() {
    crash_cycles(4, 0xC4A5_0002);
}

/// A first open cut short by the kill before it wrote wal.meta (nothing but the lock file) passes
/// the checker while nothing was ever committed, and only then; a segment without wal.meta never
/// does.
#[test]
fn the_checker_accepts_a_first_open_cut_short_only_before_any_commit() {
    for max_committed in [0, 1] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("wal.lock"), b"1\n").unwrap();
        let checked = check_log(dir.path(), &[], max_committed, 0);
        match max_committed {
            0 => checked.map(drop).unwrap(),
            _ => assert!(checked.is_err_and(|e| e.contains("holds no write-ahead log"))),
        }
    }
    let dir = tempfile::tempdir().unwrap();
    drop(Wal::open(dir.path(), opts(0)).unwrap());
    std::fs::remove_file(dir.path().join("wal.meta")).unwrap();
    let err = check_log(dir.path(), &[], 0, 0).unwrap_err();
    assert!(err.contains("wal.meta"), "{err}");
}

/// The checker must be able to fail: a lost committed event, a damaged one, or a commit claimed
/// at the wrong place are all reported.
#[test]
fn the_checker_notices_lost_or_damaged_commits() {
    let dir = tempfile::tempdir().unwrap();
    let mut committed = Vec::new();
    // wal.meta as the open wrote it, before the clean close recorded the end: put back, it makes
    // the log look as a crash would have left it.
    let meta_at_open;
    {
        let wal = Wal::open(dir.path(), opts(0)).unwrap();
        meta_at_open = std::fs::read(dir.path().join("wal.meta")).unwrap();
        drop(wal.reader(CONSUMER).unwrap());
        let mut seq = 0;
        while wal.stats().segments < 3 {
            let events: Vec<Event> = (0..20)
                .map(|i| {
                    make_event(Tag {
                        cycle: 0,
                        thread: 0,
                        seq: seq + i,
                    })
                })
                .collect();
            let a = wal.append_commit(&events).unwrap();
            committed.push(Committed {
                next: a.next_offset,
                first: a.first_offset,
                cycle: 0,
                thread: 0,
                seq,
            });
            seq += 20;
        }
    }
    let max = committed.last().unwrap().next;
    let pristine = tempfile::tempdir().unwrap();
    let copy = |from: &Path, to: &Path| {
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    };
    copy(dir.path(), pristine.path());
    check_log(dir.path(), &committed, max, 0).unwrap();

    let fresh = || {
        let d = tempfile::tempdir().unwrap();
        copy(pristine.path(), d.path());
        d
    };
    let segments = |d: &Path| inspect::segment_files(d).unwrap();

    // A flipped bit in a committed frame of a sealed segment.
    let d = fresh();
    let (_, sealed) = segments(d.path())[0].clone();
    let mut bytes = std::fs::read(&sealed).unwrap();
    bytes[weir::wal::segment::SEGMENT_HEADER_LEN + 200] ^= 0x04;
    std::fs::write(&sealed, &bytes).unwrap();
    let err = check_log(d.path(), &committed, max, 0).unwrap_err();
    assert!(err.contains("verify before open"), "{err}");

    // The last committed frame of the active segment damaged after a crash: recovery drops it
    // as a torn tail, and the checker finds committed events missing.
    let damage_last = |d: &Path| {
        let report = inspect::verify(d, None, |_, _| {}).unwrap();
        let active = report.segments.last().unwrap();
        let mut bytes = std::fs::read(&active.path).unwrap();
        bytes[active.end_pos as usize - 3] ^= 0x80;
        std::fs::write(&active.path, &bytes).unwrap();
    };
    let d = fresh();
    std::fs::write(d.path().join("wal.meta"), &meta_at_open).unwrap();
    damage_last(d.path());
    let err = check_log(d.path(), &committed, max, 0).unwrap_err();
    assert!(err.contains("were committed"), "{err}");
    // The same after a clean close, which recorded where the log ends: the damage is reported
    // as damage before any open.
    let d = fresh();
    damage_last(d.path());
    let err = check_log(d.path(), &committed, max, 0).unwrap_err();
    assert!(
        err.contains("verify before open") && err.contains("damaged below the end"),
        "{err}"
    );

    // A commit claimed at offsets that hold other events.
    let d = fresh();
    let mut wrong = committed.clone();
    wrong[1].seq += 1;
    let err = check_log(d.path(), &wrong, max, 0).unwrap_err();
    assert!(err.contains("should hold"), "{err}");

    // A checkpoint that went backwards.
    let d = fresh();
    let err = check_log(d.path(), &committed, max, 5).unwrap_err();
    assert!(err.contains("went back"), "{err}");

    // Events that are not what their tag makes.
    let mut e = make_event(Tag {
        cycle: 1,
        thread: 2,
        seq: 3,
    });
    assert!(decode_event(&e).is_ok());
    e.headers.insert("thread".into(), "9".into());
    assert!(decode_event(&e).is_err());
}
