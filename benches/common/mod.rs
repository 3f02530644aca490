//! What the pipeline benches (`sources`, `peer`, `agent`, `hdfs`) share: a source case and its
//! load, the file or memory channel they put into, a null sink that counts what it drains, the timed run
//! of one source → file channel → sink pipeline, in-process, and the timed run of `seq` →
//! channel → sink ([`seq_pipeline`]).

#![allow(dead_code)] // Each bench uses a part.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use weir::channel::Channel;
use weir::channel::file::FileChannel;
use weir::channel::memory::MemoryChannel;
use weir::config::{
    FileChannelConfig, FileGroup, MemoryChannelConfig, SelectorConfig, SeqConfig, SourceConfig,
    SourceKind, TaildirConfig,
};
use weir::event::Event;
use weir::sink::{Sink, SinkCounters, SinkRunner};
use weir::source::seq::SeqSource;
use weir::source::taildir::TaildirSource;
use weir::source::{ChannelProcessor, Source, SourceCounters};
use weir::stop::Stop;

/// What a pipeline bench binary starts with: `None` when cargo only lists the benches
/// (`--list`), else the events per case (`WEIR_BENCH_EVENTS`, or `default`) and the directory
/// its temporary files go under (`target/`, on the disk being measured rather than a tmpfs).
pub fn bench_setup(default_events: u64) -> Option<(u64, PathBuf)> {
    if std::env::args().any(|a| a == "--list") {
        return None;
    }
    let events = std::env::var("WEIR_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_events);
    let base = std::env::current_dir()
        .unwrap_or_else(|_| ".".into())
        .join("target");
    // Absent when CARGO_TARGET_DIR points elsewhere.
    std::fs::create_dir_all(&base).expect("create target/ for the bench's files");
    Some((events, base))
}

/// A pipeline that drains nothing for this long is stuck (a lost message, a dead load thread).
const STALL: Duration = Duration::from_secs(30);

/// A source ready to run, with what feeds it.
pub struct Case {
    pub name: &'static str,
    pub config: SourceConfig,
    /// Started (bound, opened) already.
    pub source: Box<dyn Source>,
    /// Starts the load once timing begins; its threads are joined at the end.
    pub load: Box<dyn FnOnce() -> Vec<JoinHandle<()>>>,
}

/// Source `r1` putting into channel `c1` alone.
pub fn source_config(kind: SourceKind) -> SourceConfig {
    SourceConfig {
        name: "r1".into(),
        channels: vec!["c1".into()],
        selector: SelectorConfig::Replicating { optional: vec![] },
        interceptors: vec![],
        kind,
    }
}

/// TAILDIR reading one file of `events` lines, `line(i)` each, from its start, in batches of
/// `batch`. The file is written (and so in the page cache) before the case is returned.
pub fn taildir(dir: &Path, events: u64, batch: usize, line: impl Fn(u64) -> String) -> Case {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).expect("create the logs directory");
    let log = logs.join("app.log");
    let mut w = BufWriter::new(std::fs::File::create(&log).expect("create the log"));
    for i in 0..events {
        writeln!(w, "{}", line(i)).expect("write the log");
    }
    w.flush().expect("flush the log");
    drop(w);
    let cfg = TaildirConfig {
        groups: vec![FileGroup {
            name: "g1".into(),
            dir: logs,
            pattern: regex::Regex::new(r"^(?:app\.log)$").expect("file pattern"),
            headers: Default::default(),
        }],
        position_file: dir.join("taildir_position.json"),
        batch_size: batch,
        skip_to_end: false,
        idle_timeout: Duration::from_secs(120),
        write_pos_interval: Duration::from_secs(3),
        file_header: None,
        byte_offset_header: false,
        max_batch_count: u64::MAX,
        poll_delay: Duration::from_millis(500),
    };
    let mut source = TaildirSource::new("r1", cfg.clone());
    source.start().expect("TAILDIR source starts");
    Case {
        name: "TAILDIR",
        config: source_config(SourceKind::Taildir(cfg)),
        source: Box::new(source),
        load: Box::new(Vec::new),
    }
}

/// A file channel with the default fsync per commit, taking transactions of `transaction`.
pub fn file_channel(dir: &Path, transaction: usize) -> Arc<dyn Channel> {
    Arc::new(
        FileChannel::open(
            "c1",
            &FileChannelConfig {
                capacity: 1_000_000,
                transaction_capacity: transaction,
                minimum_required_space: 0,
                ..FileChannelConfig::new(dir.join("ckpt"), dir.join("data"))
            },
        )
        .expect("open file channel"),
    )
}

/// A memory channel of 100,000 events, taking transactions of `transaction`.
pub fn memory_channel(transaction: usize) -> Arc<dyn Channel> {
    Arc::new(MemoryChannel::new(
        "c1",
        &MemoryChannelConfig {
            capacity: 100_000,
            transaction_capacity: transaction,
            keep_alive: Duration::from_secs(3),
            byte_capacity: None,
        },
    ))
}

/// The null sink, counting the body bytes it discards.
pub struct CountingNull(pub Arc<AtomicU64>);

impl Sink for CountingNull {
    fn deliver(&mut self, events: &[(u64, Event)]) -> anyhow::Result<()> {
        let n: usize = events.iter().map(|(_, e)| e.body.len()).sum();
        self.0.fetch_add(n as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// Runs `case` into `channel`, drained by `sink` in batches of `sink_batch` (its runner counting
/// in `counters`), until `events` were drained; returns the time taken.
pub fn measure(
    case: Case,
    channel: Arc<dyn Channel>,
    events: u64,
    sink: Box<dyn Sink>,
    sink_batch: usize,
    counters: Arc<SinkCounters>,
) -> Duration {
    let processor = ChannelProcessor::new(
        &case.config,
        std::slice::from_ref(&channel),
        Arc::new(SourceCounters::default()),
    );
    let runner = SinkRunner {
        name: "k1".into(),
        sink,
        channel,
        batch_size: sink_batch,
        counters: counters.clone(),
        stop: Stop::new(),
    };
    let source_stop = Stop::new();
    let sink_stop = runner.stop.clone();
    let start = Instant::now();
    let sink = std::thread::spawn(move || runner.run());
    let s = source_stop.clone();
    let source = case.source;
    let src = std::thread::spawn(move || source.run(processor, s));
    let load = (case.load)();
    let (mut seen, mut progress_at) = (0, Instant::now());
    loop {
        let drained = counters.drain_success.load(Ordering::Relaxed);
        if drained >= events {
            break;
        }
        if drained > seen {
            (seen, progress_at) = (drained, Instant::now());
        }
        assert!(
            progress_at.elapsed() < STALL,
            "{}: stuck at {drained} of {events} events drained",
            case.name
        );
        std::thread::sleep(Duration::from_micros(200));
    }
    let elapsed = start.elapsed();
    for l in load {
        let _ = l.join();
    }
    source_stop.set();
    let _ = src.join();
    sink_stop.set();
    let _ = sink.join();
    elapsed
}

/// `seq` (`events` bodies of `body` bytes, in batches of `batch`) → `channel` → `sink`, until
/// the sink has drained every event; returns the time that took.
pub fn seq_pipeline(
    channel: Arc<dyn Channel>,
    sink: Box<dyn Sink>,
    events: u64,
    body: usize,
    batch: usize,
) -> Duration {
    let seq = SeqConfig {
        total_events: events,
        batch_size: batch,
        body_size: body,
    };
    let source_cfg = SourceConfig {
        name: "r1".into(),
        channels: vec![channel.name().to_owned()],
        selector: SelectorConfig::Replicating { optional: vec![] },
        interceptors: vec![],
        kind: SourceKind::Seq(seq.clone()),
    };
    let processor = ChannelProcessor::new(
        &source_cfg,
        std::slice::from_ref(&channel),
        Arc::new(SourceCounters::default()),
    );
    let source = Box::new(SeqSource::new("r1", seq));
    let counters = Arc::new(SinkCounters::default());
    let runner = SinkRunner {
        name: "k1".into(),
        sink,
        channel,
        batch_size: batch,
        counters: counters.clone(),
        stop: Stop::new(),
    };
    let stop = runner.stop.clone();
    let start = Instant::now();
    let sink = std::thread::spawn(move || runner.run());
    let source_stop = stop.clone();
    let src = std::thread::spawn(move || source.run(processor, source_stop));
    while counters.drain_success.load(Ordering::Relaxed) < events {
        std::thread::sleep(Duration::from_micros(200));
    }
    let elapsed = start.elapsed();
    stop.set();
    let _ = src.join();
    let _ = sink.join();
    elapsed
}
