//! Source throughput: each source → file channel → `null` sink, in-process, in the same run as a
//! `seq` baseline through an identical pipeline, so the ratio shows what the source itself costs.
//!
//! Cases:
//! - `seq`: the generator, batches of [`SOURCE_BATCH`], bodies the size of the syslog bodies.
//! - `syslogtcp`: [`CLIENTS`] client threads write pre-formatted, octet-counted RFC 5424
//!   messages of about 100 bytes over loopback TCP (formatting is done before timing starts).
//!
//! A case is a function `fn(events) -> Case` returning the started source and its load (see
//! [`syslog_tcp`]); adding one (e.g. TAILDIR: write the files in `load`, or before it) means
//! writing that function and listing it in `main`'s `cases`. `WEIR_BENCH_EVENTS` sets events per case (default 400,000).
//!
//! Run: `cargo bench --bench sources`

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use weir::channel::Channel;
use weir::channel::file::FileChannel;
use weir::config::{
    FileChannelConfig, KeepFields, SelectorConfig, SeqConfig, SourceConfig, SourceKind,
    SyslogConfig, SyslogProtocol,
};
use weir::sink::null::NullSink;
use weir::sink::{SinkCounters, SinkRunner};
use weir::source::seq::SeqSource;
use weir::source::syslog::SyslogSource;
use weir::source::{ChannelProcessor, Source, SourceCounters};
use weir::wal::{CorruptionPolicy, SyncPolicy};

/// Events per source transaction (Flume's multiport default).
const SOURCE_BATCH: usize = 100;
/// Events per sink transaction.
const SINK_BATCH: usize = 1000;
const CLIENTS: usize = 4;
/// The syslog header every benchmark message starts with; the body is what follows.
const SYSLOG_HEADER: &str = "<13>1 2024-05-01T10:00:00.000Z bench-host ";
/// Body length, so that header + body is about 100 bytes.
const BODY: usize = 100 - SYSLOG_HEADER.len();

/// A source ready to run, with what feeds it.
struct Case {
    name: &'static str,
    config: SourceConfig,
    /// Started (bound, opened) already.
    source: Box<dyn Source>,
    /// Starts the load once timing begins; its threads are joined at the end.
    load: Box<dyn FnOnce() -> Vec<JoinHandle<()>>>,
    /// Bytes per event body, for MB/s.
    body: usize,
}

fn source_config(kind: SourceKind) -> SourceConfig {
    SourceConfig {
        name: "r1".into(),
        channels: vec!["c1".into()],
        selector: SelectorConfig::Replicating { optional: vec![] },
        interceptors: vec![],
        kind,
    }
}

fn seq(events: u64) -> Case {
    let cfg = SeqConfig {
        total_events: events,
        batch_size: SOURCE_BATCH,
        body_size: BODY,
    };
    Case {
        name: "seq",
        config: source_config(SourceKind::Seq(cfg.clone())),
        source: Box::new(SeqSource::new("r1", cfg)),
        load: Box::new(Vec::new),
        body: BODY,
    }
}

/// The body of message `i` of client `c`: exactly [`BODY`] bytes.
fn syslog_body(c: usize, i: u64) -> String {
    let head = format!("app - - - c{c} m{i:09} ");
    format!("{head}{}", "x".repeat(BODY.saturating_sub(head.len())))
}

fn syslog_tcp(events: u64) -> Case {
    let cfg = SyslogConfig {
        protocol: SyslogProtocol::Tcp,
        host: "127.0.0.1".into(),
        ports: vec![0],
        event_size: 2500,
        keep_fields: KeepFields::NONE,
        client_ip_header: None,
        client_hostname_header: None,
        port_header: None,
        batch_size: SOURCE_BATCH,
        max_connections: 100,
    };
    let mut source = SyslogSource::new("r1", cfg.clone());
    source.start().expect("syslog source listens");
    let addr = source.local_addrs()[0];
    // Every client's whole stream, formatted before timing starts.
    let per_client = events / CLIENTS as u64;
    let streams: Vec<Vec<u8>> = (0..CLIENTS)
        .map(|c| {
            let n = per_client + u64::from(c == 0) * (events % CLIENTS as u64);
            let mut out = Vec::with_capacity(n as usize * 110);
            for i in 0..n {
                let msg = format!("{SYSLOG_HEADER}{}", syslog_body(c, i));
                out.extend_from_slice(format!("{} {msg}", msg.len()).as_bytes());
            }
            out
        })
        .collect();
    Case {
        name: "syslogtcp",
        config: source_config(SourceKind::Syslog(cfg)),
        source: Box::new(source),
        load: Box::new(move || {
            streams
                .into_iter()
                .map(|bytes| {
                    std::thread::spawn(move || {
                        let mut s = TcpStream::connect(addr).expect("connect to the source");
                        for chunk in bytes.chunks(64 * 1024) {
                            s.write_all(chunk).expect("write to the source");
                        }
                    })
                })
                .collect()
        }),
        body: BODY,
    }
}

fn file_channel(dir: &Path) -> Arc<dyn Channel> {
    Arc::new(
        FileChannel::open(
            "c1",
            &FileChannelConfig {
                checkpoint_dir: dir.join("ckpt"),
                data_dir: dir.join("data"),
                capacity: 1_000_000,
                transaction_capacity: SINK_BATCH,
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

/// Runs `case` into `channel` until the null sink has drained `events`.
fn measure(case: Case, channel: Arc<dyn Channel>, events: u64) -> Duration {
    let processor = ChannelProcessor::new(
        &case.config,
        std::slice::from_ref(&channel),
        Arc::new(SourceCounters::default()),
    );
    let counters = Arc::new(SinkCounters::default());
    let runner = SinkRunner {
        name: "k1".into(),
        sink: Box::new(NullSink),
        channel,
        batch_size: SINK_BATCH,
        counters: counters.clone(),
    };
    let source_stop = Arc::new(AtomicBool::new(false));
    let sink_stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let s = sink_stop.clone();
    let sink = std::thread::spawn(move || runner.run(s));
    let s = source_stop.clone();
    let source = case.source;
    let src = std::thread::spawn(move || source.run(processor, s));
    let load = (case.load)();
    while counters.drain_success.load(Ordering::Relaxed) < events {
        std::thread::sleep(Duration::from_micros(200));
    }
    let elapsed = start.elapsed();
    for l in load {
        let _ = l.join();
    }
    source_stop.store(true, Ordering::Relaxed);
    let _ = src.join();
    sink_stop.store(true, Ordering::Relaxed);
    let _ = sink.join();
    elapsed
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let events: u64 = std::env::var("WEIR_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400_000);
    let base = std::env::current_dir()
        .unwrap_or_else(|_| ".".into())
        .join("target");
    println!(
        "source -> file channel -> null, {events} events per case, source batches of {SOURCE_BATCH}, \
         {CLIENTS} syslog clients, ~100 B messages"
    );
    println!(
        "{:<10} {:>6} {:>14} {:>10} {:>10}",
        "source", "body", "events/s", "MB/s", "seconds"
    );
    let cases: [fn(u64) -> Case; 2] = [seq, syslog_tcp];
    let mut rates = Vec::new();
    for make in cases {
        let dir = tempfile::tempdir_in(&base).expect("temp dir under target/");
        let case = make(events);
        let (name, body) = (case.name, case.body);
        let t = measure(case, file_channel(dir.path()), events);
        let eps = events as f64 / t.as_secs_f64();
        println!(
            "{name:<10} {body:>6} {eps:>14.0} {:>10.1} {:>10.2}",
            eps * body as f64 / 1e6,
            t.as_secs_f64()
        );
        rates.push((name, eps));
    }
    let baseline = rates[0].1;
    for (name, eps) in &rates[1..] {
        println!("           {name}/seq ratio: {:.2}", eps / baseline);
    }
}
