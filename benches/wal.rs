//! Write-ahead log benchmarks, each against a raw baseline measured in the same run, because
//! this machine is shared and noisy: only ratios mean something.
//!
//! - `append_commit/{weir_pwrite,weir_msync,weir_fdatasync,raw}/<body>x<batch>`: durable
//!   append + commit of batches of 1/100/1000 events of 100 B/1 KiB/16 KiB, with each way of
//!   writing (`SyncMethod`); raw = pwrite of the same frame bytes at an advancing offset +
//!   fdatasync.
//! - `group_commit/{weir,raw}/<threads>`: 1/8/64 threads each committing one 100 B event at a
//!   time; raw = a textbook group commit (mutex, buffer, leader pwrite + fdatasync, condvar) of
//!   records of the same size to a plain pre-zeroed file.
//! - `read/{weir,raw}`: sequential read of 256 MiB of 1 KiB events with CRC check; raw = read(2)
//!   of the same segment bytes + crc32 over them.
//! - `read_events/{owned,in_place}`: 100,000 events of 100 B with six syslog-like headers,
//!   read as owned events the way a sink gets them (`Reader::read`, headers left encoded),
//!   against the in-place views of `Reader::read_with` over the same log.
//! - `open/1GiB`: `Wal::open` + a reader, with 1 GiB of unconsumed backlog.
//!
//! After criterion, a summary table is computed from criterion's own estimates
//! (`target/criterion/**/new/estimates.json`) with the ratios and the targets.
//! Run: `cargo bench --bench wal` (about 5 minutes).

use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use weir::event::Event;
use weir::wal::frame::{encode_frame, encoded_frame_len};
use weir::wal::{SyncMethod, Wal, WalOptions};

const SIZES: [usize; 3] = [100, 1024, 16 * 1024];
const BATCHES: [usize; 3] = [1, 100, 1000];
const SEGMENT: u64 = 64 << 20;

fn scratch() -> tempfile::TempDir {
    let base = std::env::current_dir().unwrap_or_default().join("target");
    tempfile::tempdir_in(base).expect("scratch dir under target/ (same disk as the log)")
}

fn events(body: usize, n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| Event::new(vec![b'a' + (i % 26) as u8; body]))
        .collect()
}

/// A log whose consumer acknowledges everything now and then, so retention recycles segments
/// and the disk does not fill; the acks happen outside the timed region's hot path at most once
/// per segment.
struct Log {
    _dir: tempfile::TempDir,
    wal: Wal,
    reader: weir::wal::Reader,
    appended_since_ack: u64,
}

impl Log {
    fn new(method: SyncMethod) -> Log {
        let dir = scratch();
        let wal = Wal::open(
            dir.path(),
            WalOptions {
                segment_size: SEGMENT,
                sync_method: method,
                ..Default::default()
            },
        )
        .expect("open");
        let reader = wal.reader("bench").expect("reader");
        Log {
            _dir: dir,
            wal,
            reader,
            appended_since_ack: 0,
        }
    }

    fn append_commit(&mut self, batch: &[Event], bytes: u64) {
        self.wal.append_commit(batch).expect("append");
        self.appended_since_ack += bytes;
        if self.appended_since_ack > SEGMENT {
            let r = &mut self.reader;
            while r.read_with(100_000, |_, _, _| {}).expect("read") > 0 {}
            r.ack().expect("ack");
            self.appended_since_ack = 0;
        }
    }
}

/// pwrite + fdatasync of the same bytes to a plain file, appending; a new file every 256 MiB.
struct Raw {
    dir: tempfile::TempDir,
    file: std::fs::File,
    pos: u64,
    n: u32,
}

impl Raw {
    fn new() -> Raw {
        let dir = scratch();
        let file = Raw::file(dir.path(), 0);
        Raw {
            dir,
            file,
            pos: 0,
            n: 0,
        }
    }

    fn file(dir: &Path, n: u32) -> std::fs::File {
        OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(dir.join(format!("raw{n}")))
            .expect("raw file")
    }

    fn write(&mut self, bytes: &[u8]) {
        if self.pos > 256 << 20 {
            self.n += 1;
            let _ = std::fs::remove_file(self.dir.path().join(format!("raw{}", self.n - 1)));
            self.file = Raw::file(self.dir.path(), self.n);
            self.pos = 0;
        }
        self.file.write_all_at(bytes, self.pos).expect("pwrite");
        self.file.sync_data().expect("fdatasync");
        self.pos += bytes.len() as u64;
    }
}

fn append_commit(c: &mut Criterion) {
    let mut g = c.benchmark_group("append_commit");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    for body in SIZES {
        for batch in BATCHES {
            if body * batch > 8 << 20 {
                continue;
            }
            let evs = events(body, batch);
            let len = encoded_frame_len(&evs).expect("len");
            let mut frame = vec![0u8; len];
            encode_frame(&mut frame, 0, 1, &evs);
            g.throughput(Throughput::Bytes(len as u64));
            let id = format!("{body}x{batch}");
            for (name, method) in [
                ("weir_pwrite", SyncMethod::Pwrite),
                ("weir_msync", SyncMethod::Msync),
                ("weir_fdatasync", SyncMethod::Fdatasync),
            ] {
                let mut log = Log::new(method);
                g.bench_function(BenchmarkId::new(name, &id), |b| {
                    b.iter(|| log.append_commit(&evs, len as u64))
                });
            }
            let mut raw = Raw::new();
            g.bench_function(BenchmarkId::new("raw", &id), |b| {
                b.iter(|| raw.write(&frame))
            });
        }
    }
    g.finish();
}

/// The baseline of `group_commit`: a textbook group commit over a plain file. A committer adds
/// its record to a buffer under one mutex; the first that finds no sync running takes the
/// buffer, writes it with one pwrite and fdatasyncs, then wakes the others through a condvar.
/// The file is filled with zeros and synced beforehand and written round and round, so no sync
/// allocates blocks or changes the file size.
struct RawGroupCommit {
    state: std::sync::Mutex<RawGroup>,
    synced: std::sync::Condvar,
    file: std::fs::File,
    _dir: tempfile::TempDir,
}

struct RawGroup {
    buf: Vec<u8>,
    appended: u64,
    durable: u64,
    syncing: bool,
    pos: u64,
}

impl RawGroupCommit {
    const FILE_LEN: u64 = 64 << 20;

    fn new() -> RawGroupCommit {
        let dir = scratch();
        let file = Raw::file(dir.path(), 0);
        let zeros = vec![0u8; 1 << 20];
        for i in 0..Self::FILE_LEN / zeros.len() as u64 {
            file.write_all_at(&zeros, i * zeros.len() as u64)
                .expect("zero fill");
        }
        file.sync_all().expect("fsync");
        RawGroupCommit {
            state: std::sync::Mutex::new(RawGroup {
                buf: Vec::new(),
                appended: 0,
                durable: 0,
                syncing: false,
                pos: 0,
            }),
            synced: std::sync::Condvar::new(),
            file,
            _dir: dir,
        }
    }

    fn commit(&self, record: &[u8]) {
        let mut st = self.state.lock().expect("lock");
        st.buf.extend_from_slice(record);
        st.appended += 1;
        let mine = st.appended;
        while st.durable < mine {
            if st.syncing {
                st = self.synced.wait(st).expect("wait");
                continue;
            }
            st.syncing = true;
            let buf = std::mem::take(&mut st.buf);
            let upto = st.appended;
            if st.pos + buf.len() as u64 > Self::FILE_LEN {
                st.pos = 0;
            }
            let pos = st.pos;
            st.pos += buf.len() as u64;
            drop(st);
            self.file.write_all_at(&buf, pos).expect("pwrite");
            self.file.sync_data().expect("fdatasync");
            st = self.state.lock().expect("lock");
            st.durable = upto;
            st.syncing = false;
            self.synced.notify_all();
        }
    }
}

/// Time for `threads` threads, started together, to call `commit` `iters` times in all,
/// normalised to exactly `iters`.
fn time_committers(threads: usize, iters: u64, commit: Arc<dyn Fn() + Send + Sync>) -> Duration {
    let per_thread = (iters as usize).div_ceil(threads).max(1);
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (commit, barrier) = (commit.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for _ in 0..per_thread {
                    commit();
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for h in handles {
        h.join().expect("thread");
    }
    start
        .elapsed()
        .mul_f64(iters as f64 / (per_thread * threads) as f64)
}

fn group_commit(c: &mut Criterion) {
    let mut g = c.benchmark_group("group_commit");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    let event = [Event::new(vec![b'x'; 100])];
    let record = vec![b'x'; encoded_frame_len(&event).expect("len")];
    // One element = one commit by one thread.
    g.throughput(Throughput::Elements(1));
    for threads in [1usize, 8, 64] {
        let log = Log::new(SyncMethod::default());
        let wal = log.wal.clone();
        let event = event.clone();
        let commit: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
            wal.append_commit(&event).expect("commit");
        });
        g.bench_function(BenchmarkId::new("weir", threads), |b| {
            b.iter_custom(|iters| time_committers(threads, iters, commit.clone()))
        });
        drop(log);
        let raw = Arc::new(RawGroupCommit::new());
        let record = record.clone();
        let commit: Arc<dyn Fn() + Send + Sync> = Arc::new(move || raw.commit(&record));
        g.bench_function(BenchmarkId::new("raw", threads), |b| {
            b.iter_custom(|iters| time_committers(threads, iters, commit.clone()))
        });
    }
    g.finish();
}

/// A log holding about `bytes` of 1 KiB events, committed, with a consumer at offset 0.
fn filled_log(dir: &Path, bytes: u64, body: usize) -> u64 {
    let wal = Wal::open(dir, WalOptions::default()).expect("open");
    drop(wal.reader("bench").expect("register"));
    let batch = events(body, 1000);
    let per = encoded_frame_len(&batch).expect("len") as u64;
    let mut written = 0;
    while written < bytes {
        wal.append(&batch).expect("append");
        written += per;
    }
    wal.commit().expect("commit");
    written
}

fn read(c: &mut Criterion) {
    let dir = scratch();
    let bytes = filled_log(dir.path(), 256 << 20, 1024);
    let wal = Wal::open(dir.path(), WalOptions::default()).expect("open");
    let mut g = c.benchmark_group("read");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("weir", |b| {
        b.iter(|| {
            let mut r = wal.reader("bench").expect("reader");
            r.seek(0);
            let mut total = 0usize;
            while r
                .read_with(100_000, |_, e, _| total += e.body.len())
                .expect("read")
                > 0
            {}
            total
        })
    });
    let files: Vec<PathBuf> = weir::wal::inspect::segment_files(dir.path())
        .expect("list")
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    g.bench_function("raw", |b| {
        let mut buf = vec![0u8; 1 << 20];
        b.iter(|| {
            let mut left = bytes as usize;
            let mut h = crc32fast::Hasher::new();
            for p in &files {
                let mut f = std::fs::File::open(p).expect("open");
                while left > 0 {
                    let n = f.read(&mut buf[..left.min(1 << 20)]).expect("read");
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                    left -= n;
                }
            }
            h.finalize()
        })
    });
    g.finish();
}

/// Events read back per `read_events` iteration.
const READ_EVENTS: u64 = 100_000;

fn read_events(c: &mut Criterion) {
    let dir = scratch();
    let wal = Wal::open(dir.path(), WalOptions::default()).expect("open");
    drop(wal.reader("bench").expect("register"));
    let batch: Vec<Event> = (0..1000)
        .map(|i| {
            let mut e = Event::new(format!("{i:0>100}").into_bytes());
            for (k, v) in [
                ("Facility", "1"),
                ("Severity", "5"),
                ("host", "bench-host"),
                ("priority", "13"),
                ("timestamp", "1714557600000"),
                ("version", "1"),
            ] {
                e.headers.insert(k.into(), v.into());
            }
            e
        })
        .collect();
    for _ in 0..READ_EVENTS / 1000 {
        wal.append(&batch).expect("append");
    }
    wal.commit().expect("commit");
    let mut g = c.benchmark_group("read_events");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(READ_EVENTS));
    // Both sum the body bytes and header counts, as a sink passing events on would look at them.
    g.bench_function("owned", |b| {
        b.iter(|| {
            let mut r = wal.reader("bench").expect("reader");
            r.seek(0);
            let mut total = 0usize;
            loop {
                let evs = r.read(1000).expect("read");
                if evs.is_empty() {
                    break total;
                }
                total += evs
                    .iter()
                    .map(|(_, e)| e.body.len() + e.headers.len())
                    .sum::<usize>();
            }
        })
    });
    g.bench_function("in_place", |b| {
        b.iter(|| {
            let mut r = wal.reader("bench").expect("reader");
            r.seek(0);
            let mut total = 0usize;
            while r
                .read_with(1000, |_, e, _| {
                    total += e.body.len() + e.headers().filter(Result::is_ok).count()
                })
                .expect("read")
                > 0
            {}
            total
        })
    });
    g.finish();
}

fn open(c: &mut Criterion) {
    let dir = scratch();
    filled_log(dir.path(), 1 << 30, 1024);
    let mut g = c.benchmark_group("open");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    g.bench_function("1GiB", |b| {
        b.iter(|| {
            let wal = Wal::open(dir.path(), WalOptions::default()).expect("open");
            let r = wal.reader("bench").expect("reader");
            (r.position(), wal.next_offset())
        })
    });
    g.finish();
}

/// Mean time per iteration (ns) of a benchmark, from criterion's saved estimates.
fn mean_ns(id: &str) -> Option<f64> {
    let path = std::env::current_dir()
        .ok()?
        .join("target/criterion")
        .join(id)
        .join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

fn summary() {
    println!("\n== weir WAL vs raw baseline (same run) ==");
    println!(
        "{:<34} {:>12} {:>12} {:>7}",
        "durable append+commit (MB/s)", "weir", "raw", "ratio"
    );
    let mut worst_100: f64 = f64::MAX;
    // How often each way of writing was the fastest, to back the default's choice.
    let mut fastest = [0usize; 3];
    for body in SIZES {
        for batch in BATCHES {
            if body * batch > 8 << 20 {
                continue;
            }
            let id = format!("{body}x{batch}");
            let evs = events(body, batch);
            let len = encoded_frame_len(&evs).unwrap_or(0) as f64;
            let get = |n: &str| mean_ns(&format!("append_commit/{n}/{id}"));
            let (Some(p), Some(m), Some(f), Some(r)) = (
                get("weir_pwrite"),
                get("weir_msync"),
                get("weir_fdatasync"),
                get("raw"),
            ) else {
                continue;
            };
            let best = [p, m, f]
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(i, _)| i);
            fastest[best] += 1;
            // The ratio is the default's (pwrite); the other two are shown for comparison.
            let ratio = r / p;
            if batch >= 100 {
                worst_100 = worst_100.min(ratio);
            }
            println!(
                "{:<34} {:>12.1} {:>12.1} {:>7.2}   (map+msync {:.1}, map+fdatasync {:.1})",
                id,
                len / p * 1e3,
                len / r * 1e3,
                ratio,
                len / m * 1e3,
                len / f * 1e3
            );
        }
    }
    println!(
        "fastest: pwrite in {} cases, map+msync in {}, map+fdatasync in {}",
        fastest[0], fastest[1], fastest[2]
    );
    let pass = |ok: bool| if ok { "PASS" } else { "FAIL" };
    println!(
        "target: durable append at batch >= 100 reaches >= 90% of raw bytes/s (default pwrite): worst {:.2}  {}",
        worst_100,
        pass(worst_100 >= 0.9)
    );
    let rates = |side: &str| {
        [1, 8, 64].map(|t| 1e9 / mean_ns(&format!("group_commit/{side}/{t}")).unwrap_or(f64::NAN))
    };
    let (weir, raw) = (rates("weir"), rates("raw"));
    if weir.iter().chain(&raw).all(|r| r.is_finite()) {
        println!(
            "group commit commits/s at 1/8/64 threads: weir {:.0}/{:.0}/{:.0}, raw {:.0}/{:.0}/{:.0}",
            weir[0], weir[1], weir[2], raw[0], raw[1], raw[2]
        );
        println!(
            "group commit 64 threads / 1 thread: weir {:.1}x, raw {:.1}x (target >= 20x)  {}",
            weir[2] / weir[0],
            raw[2] / raw[0],
            pass(weir[2] / weir[0] >= 20.0)
        );
    }
    if let (Some(w), Some(r)) = (mean_ns("read/weir"), mean_ns("read/raw")) {
        let bytes = 256u64 << 20;
        let gbs = bytes as f64 / w;
        println!(
            "sequential read with CRC: weir {:.2} GB/s, raw read+crc {:.2} GB/s, ratio {:.2} (target >= 1 GB/s)  {}",
            gbs,
            bytes as f64 / r,
            r / w,
            pass(gbs >= 1.0)
        );
    }
    if let (Some(o), Some(i)) = (
        mean_ns("read_events/owned"),
        mean_ns("read_events/in_place"),
    ) {
        let rate = |ns: f64| READ_EVENTS as f64 / ns * 1e3;
        println!(
            "events with 6 headers read as owned events: {:.2}M ev/s, in place {:.2}M ev/s, ratio {:.2}",
            rate(o),
            rate(i),
            i / o
        );
    }
    if let Some(o) = mean_ns("open/1GiB") {
        println!(
            "open with 1 GiB backlog: {:.2} ms (target <= 50 ms)  {}",
            o / 1e6,
            pass(o / 1e6 <= 50.0)
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    append_commit(&mut c);
    group_commit(&mut c);
    read(&mut c);
    read_events(&mut c);
    open(&mut c);
    c.final_summary();
    if !std::env::args().any(|a| a == "--list") {
        summary();
    }
}
