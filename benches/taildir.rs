//! TAILDIR throughput: a pre-written file of 1,000,000 lines of about 100 bytes, read by the
//! TAILDIR source → file channel → `null`, in-process; `seq` → file channel → `null` beside it in
//! the same run, to show what the source costs on top of the channel. Prints events/s and MB/s
//! of event bodies.
//!
//! A bench binary rather than criterion: each case is one long pipeline run (seconds), not a
//! micro-operation to sample. `WEIR_BENCH_EVENTS` sets the number of lines/events (default
//! 1,000,000).
//!
//! Run: `cargo bench --bench taildir`

use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use weir::channel::Channel;
use weir::channel::file::FileChannel;
use weir::config::{
    FileChannelConfig, FileGroup, SelectorConfig, SeqConfig, SourceConfig, SourceKind,
    TaildirConfig,
};
use weir::event::Event;
use weir::sink::{Sink, SinkCounters, SinkRunner};
use weir::source::seq::SeqSource;
use weir::source::taildir::TaildirSource;
use weir::source::{ChannelProcessor, Source, SourceCounters};
use weir::wal::{CorruptionPolicy, SyncPolicy};

const BATCH: usize = 1000;

/// The null sink, counting the body bytes it discards so MB/s is what really passed.
struct CountingNull(Arc<AtomicU64>);

impl Sink for CountingNull {
    fn deliver(&mut self, events: &[(u64, Event)]) -> anyhow::Result<()> {
        let n: usize = events.iter().map(|(_, e)| e.body.len()).sum();
        self.0.fetch_add(n as u64, Ordering::Relaxed);
        Ok(())
    }
}
const LINE: usize = 100;

fn file_channel(dir: &Path) -> Arc<dyn Channel> {
    Arc::new(
        FileChannel::open(
            "c1",
            &FileChannelConfig {
                checkpoint_dir: dir.join("ckpt"),
                data_dir: dir.join("data"),
                capacity: 2_000_000,
                transaction_capacity: BATCH,
                keep_alive: Duration::from_secs(3),
                segment_size: weir::wal::DEFAULT_SEGMENT_SIZE,
                minimum_required_space: 0,
                sync: SyncPolicy::EveryCommit,
                byte_capacity: None,
                on_corruption: CorruptionPolicy::Fail,
            },
        )
        .expect("open file channel"),
    )
}

/// Runs `source` into `channel` and a null sink until `events` were drained: the time and the
/// body bytes drained.
fn run_pipeline(
    channel: Arc<dyn Channel>,
    kind: SourceKind,
    mut source: Box<dyn Source>,
    events: u64,
) -> (Duration, u64) {
    let source_cfg = SourceConfig {
        name: "r1".into(),
        channels: vec![channel.name().to_owned()],
        selector: SelectorConfig::Replicating { optional: vec![] },
        interceptors: vec![],
        kind,
    };
    let processor = ChannelProcessor::new(
        &source_cfg,
        std::slice::from_ref(&channel),
        Arc::new(SourceCounters::default()),
    );
    let counters = Arc::new(SinkCounters::default());
    let bytes = Arc::new(AtomicU64::new(0));
    let runner = SinkRunner {
        name: "k1".into(),
        sink: Box::new(CountingNull(bytes.clone())),
        channel: channel.clone(),
        batch_size: BATCH,
        counters: counters.clone(),
    };
    source.start().expect("start source");
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let sink_stop = stop.clone();
    let sink = std::thread::spawn(move || runner.run(sink_stop));
    let source_stop = stop.clone();
    let src = std::thread::spawn(move || source.run(processor, source_stop));
    while counters.drain_success.load(Ordering::Relaxed) < events {
        std::thread::sleep(Duration::from_micros(200));
    }
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let _ = src.join();
    let _ = sink.join();
    (elapsed, bytes.load(Ordering::Relaxed))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let events: u64 = std::env::var("WEIR_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let base = std::env::current_dir()
        .unwrap_or_else(|_| ".".into())
        .join("target");
    let dir = tempfile::tempdir_in(&base).expect("temp dir under target/");
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).expect("logs dir");

    // Lines of LINE bytes including the newline: a number, padded.
    let log = logs.join("app.log");
    let mut w = BufWriter::new(std::fs::File::create(&log).expect("create log"));
    for i in 0..events {
        writeln!(
            w,
            "{:<width$}",
            format!("{i} GET /api/v1/items"),
            width = LINE - 1
        )
        .expect("write log");
    }
    w.flush().expect("flush log");
    drop(w);

    println!("source -> file channel -> null, {events} events, batches of {BATCH}");
    println!(
        "{:<8} {:>6} {:>14} {:>10} {:>10}",
        "source", "body", "events/s", "MB/s", "seconds"
    );
    let report = |name: &str, t: Duration, bytes: u64| {
        let eps = events as f64 / t.as_secs_f64();
        let mbs = bytes as f64 / t.as_secs_f64() / 1e6;
        println!(
            "{name:<8} {:>6} {eps:>14.0} {mbs:>10.1} {:>10.2}",
            bytes / events,
            t.as_secs_f64()
        );
        eps
    };

    let taildir = TaildirConfig {
        groups: vec![FileGroup {
            name: "g1".into(),
            dir: logs.clone(),
            pattern: regex::Regex::new(r"^(?:app\.log)$").expect("regex"),
            headers: Default::default(),
        }],
        position_file: dir.path().join("taildir_position.json"),
        batch_size: BATCH,
        skip_to_end: false,
        idle_timeout: Duration::from_secs(120),
        write_pos_interval: Duration::from_secs(3),
        file_header: None,
        byte_offset_header: false,
        max_batch_count: u64::MAX,
        poll_delay: Duration::from_millis(500),
    };
    let (t, bytes) = run_pipeline(
        file_channel(&dir.path().join("c-taildir")),
        SourceKind::Taildir(taildir.clone()),
        Box::new(TaildirSource::new("r1", taildir)),
        events,
    );
    let taildir_eps = report("TAILDIR", t, bytes);

    // Bodies of the same size, if seq pads them as `bodySize` asks (the body column shows
    // what it really sent).
    let seq = SeqConfig {
        total_events: events,
        batch_size: BATCH,
        body_size: LINE - 1,
    };
    let (t, bytes) = run_pipeline(
        file_channel(&dir.path().join("c-seq")),
        SourceKind::Seq(seq.clone()),
        Box::new(SeqSource::new("r1", seq)),
        events,
    );
    let seq_eps = report("seq", t, bytes);
    println!(
        "         TAILDIR/seq events ratio: {:.2}",
        taildir_eps / seq_eps
    );
}
