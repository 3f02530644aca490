//! Source throughput: each source → file channel → `null` sink, in-process, in one run beside a
//! `seq` baseline through an identical pipeline, so the ratio to `seq` shows what the source
//! itself costs on top of the channel.
//!
//! Every case sends [`BODY`]-byte event bodies into a file channel with the default fsync per
//! commit, with the source putting transactions of the same batch size (each table's `batch`);
//! the null sink takes batches of [`SINK_BATCH`] and counts the body bytes it drains, so the body
//! column and MB/s are what really passed, not what was asked for. Cases:
//! - `seq`: the generator, `bodySize` = [`BODY`].
//! - `syslogtcp`: [`CLIENTS`] client threads, each on its own connection, write octet-counted
//!   RFC 5424 messages over loopback TCP; the part after the header (the event body) is
//!   [`BODY`] bytes.
//! - `TAILDIR`: one file of [`BODY`]-byte lines, read from its start.
//! - `netcat`: [`CLIENTS`] client threads, each on its own connection, write [`BODY`]-byte lines
//!   without waiting for replies (as `cat file | nc` does), and a thread per connection reads
//!   the `OK` replies and checks that every line got one. netcat has no batch size: the source
//!   puts what one read delivered, up to the channel's `transactionCapacity` (1000 here).
//!
//! Whatever a case needs prepared (messages formatted, the file written and in the page cache) is
//! done before timing starts; timing ends when the sink has drained every event.
//!
//! A case is a function `fn(&Setup) -> Case` returning the started source and the load that
//! feeds it (see [`syslog_tcp`]); adding one means writing that function and listing it in
//! [`CASES`].
//!
//! A bench binary rather than criterion: each case is one pipeline run of a second or more, not
//! a micro-operation to sample. `WEIR_BENCH_EVENTS` sets events per case (default 300,000).
//!
//! Run: `cargo bench --bench sources`

use std::io::{BufRead, BufWriter, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use weir::channel::Channel;
use weir::channel::file::FileChannel;
use weir::config::{
    FileChannelConfig, FileGroup, KeepFields, NetcatConfig, SelectorConfig, SeqConfig,
    SourceConfig, SourceKind, SyslogConfig, SyslogProtocol, TaildirConfig,
};
use weir::event::Event;
use weir::sink::{Sink, SinkCounters, SinkRunner};
use weir::source::netcat::NetcatSource;
use weir::source::seq::SeqSource;
use weir::source::syslog::SyslogSource;
use weir::source::taildir::TaildirSource;
use weir::source::{ChannelProcessor, Source, SourceCounters};

/// Event body bytes, the same for every case.
const BODY: usize = 100;
/// Source batch sizes: one table each. 100 is Flume's default for all three sources.
const BATCHES: [usize; 2] = [100, 1000];
/// Events per sink transaction.
const SINK_BATCH: usize = 1000;
/// Syslog client connections, each served by its own source thread.
const CLIENTS: usize = 4;
/// The RFC 5424 header of every syslog message; the parser keeps what follows as the body.
const SYSLOG_HEADER: &str = "<13>1 2024-05-01T10:00:00.000Z bench-host ";
/// A pipeline that drains nothing for this long is stuck (a lost message, a dead load thread).
const STALL: Duration = Duration::from_secs(30);

const CASES: [fn(&Setup) -> Case; 4] = [seq, syslog_tcp, taildir, netcat];

/// What every case is built from.
struct Setup<'a> {
    events: u64,
    batch: usize,
    /// A fresh directory for the case's own files.
    dir: &'a Path,
}

/// A source ready to run, with what feeds it.
struct Case {
    name: &'static str,
    config: SourceConfig,
    /// Started (bound, opened) already.
    source: Box<dyn Source>,
    /// Starts the load once timing begins; its threads are joined at the end.
    load: Box<dyn FnOnce() -> Vec<JoinHandle<()>>>,
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

fn seq(setup: &Setup) -> Case {
    let cfg = SeqConfig {
        total_events: setup.events,
        batch_size: setup.batch,
        body_size: BODY,
    };
    Case {
        name: "seq",
        config: source_config(SourceKind::Seq(cfg.clone())),
        source: Box::new(SeqSource::new("r1", cfg)),
        load: Box::new(Vec::new),
    }
}

/// `head` padded with `x` to exactly [`BODY`] bytes.
fn body(head: String) -> String {
    format!("{head:x<BODY$}")
}

fn syslog_tcp(setup: &Setup) -> Case {
    let cfg = SyslogConfig {
        protocol: SyslogProtocol::Tcp,
        host: "127.0.0.1".into(),
        ports: vec![0],
        event_size: 2500,
        keep_fields: KeepFields::NONE,
        client_ip_header: None,
        client_hostname_header: None,
        port_header: None,
        batch_size: setup.batch,
        max_connections: 100,
    };
    let mut source = SyslogSource::new("r1", cfg.clone());
    source.start().expect("syslog source listens");
    let addr = source.local_addrs()[0];
    // Every client's whole stream, formatted before timing starts.
    let per_client = setup.events / CLIENTS as u64;
    let streams: Vec<Vec<u8>> = (0..CLIENTS)
        .map(|c| {
            let n = per_client + u64::from(c == 0) * (setup.events % CLIENTS as u64);
            let mut out = Vec::with_capacity(n as usize * (SYSLOG_HEADER.len() + BODY + 5));
            for i in 0..n {
                let msg = format!(
                    "{SYSLOG_HEADER}{}",
                    body(format!("app - - - c{c} m{i:09} "))
                );
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
    }
}

fn taildir(setup: &Setup) -> Case {
    let logs = setup.dir.join("logs");
    std::fs::create_dir_all(&logs).expect("create the logs directory");
    let log = logs.join("app.log");
    let mut w = BufWriter::new(std::fs::File::create(&log).expect("create the log"));
    for i in 0..setup.events {
        writeln!(w, "{}", body(format!("{i} GET /api/v1/items "))).expect("write the log");
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
        position_file: setup.dir.join("taildir_position.json"),
        batch_size: setup.batch,
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

fn netcat(setup: &Setup) -> Case {
    let cfg = NetcatConfig {
        bind: "127.0.0.1".into(),
        port: 0,
        max_line_length: 512,
        ack_every_event: true,
        max_connections: 100,
    };
    let mut source = NetcatSource::new("r1", cfg.clone());
    source.start().expect("netcat source listens");
    let addr = source.local_addr().expect("netcat source address");
    let per_client = setup.events / CLIENTS as u64;
    let streams: Vec<(u64, Vec<u8>)> = (0..CLIENTS)
        .map(|c| {
            let n = per_client + u64::from(c == 0) * (setup.events % CLIENTS as u64);
            let mut out = Vec::with_capacity(n as usize * (BODY + 1));
            for i in 0..n {
                out.extend_from_slice(body(format!("c{c} m{i:09} ")).as_bytes());
                out.push(b'\n');
            }
            (n, out)
        })
        .collect();
    Case {
        name: "netcat",
        config: source_config(SourceKind::Netcat(cfg)),
        source: Box::new(source),
        load: Box::new(move || {
            let mut threads = Vec::new();
            for (lines, bytes) in streams {
                let mut s = TcpStream::connect(addr).expect("connect to the source");
                let replies = s.try_clone().expect("clone the connection");
                threads.push(std::thread::spawn(move || {
                    let mut oks = 0u64;
                    for reply in std::io::BufReader::new(replies).lines() {
                        let reply = reply.expect("read a reply");
                        assert_eq!(reply, "OK", "netcat refused a line");
                        oks += 1;
                        if oks == lines {
                            break;
                        }
                    }
                    assert_eq!(oks, lines, "a line got no reply");
                }));
                threads.push(std::thread::spawn(move || {
                    for chunk in bytes.chunks(64 * 1024) {
                        s.write_all(chunk).expect("write to the source");
                    }
                }));
            }
            threads
        }),
    }
}

fn file_channel(dir: &Path, batch: usize) -> Arc<dyn Channel> {
    Arc::new(
        FileChannel::open(
            "c1",
            &FileChannelConfig {
                capacity: 1_000_000,
                transaction_capacity: batch.max(SINK_BATCH),
                minimum_required_space: 0,
                ..FileChannelConfig::new(dir.join("ckpt"), dir.join("data"))
            },
        )
        .expect("open file channel"),
    )
}

/// The null sink, counting the body bytes it discards.
struct CountingNull(Arc<AtomicU64>);

impl Sink for CountingNull {
    fn deliver(&mut self, events: &[(u64, Event)]) -> anyhow::Result<()> {
        let n: usize = events.iter().map(|(_, e)| e.body.len()).sum();
        self.0.fetch_add(n as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// Runs `case` into `channel` until the sink has drained `events`: the time and the body bytes
/// drained.
fn measure(case: Case, channel: Arc<dyn Channel>, events: u64) -> (Duration, u64) {
    let processor = ChannelProcessor::new(
        &case.config,
        std::slice::from_ref(&channel),
        Arc::new(SourceCounters::default()),
    );
    let counters = Arc::new(SinkCounters::default());
    let bytes = Arc::new(AtomicU64::new(0));
    let runner = SinkRunner {
        name: "k1".into(),
        sink: Box::new(CountingNull(bytes.clone())),
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
    source_stop.store(true, Ordering::Relaxed);
    let _ = src.join();
    sink_stop.store(true, Ordering::Relaxed);
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
        .unwrap_or(300_000);
    let base: PathBuf = std::env::current_dir()
        .unwrap_or_else(|_| ".".into())
        .join("target");
    println!(
        "source -> file channel (fsync per commit) -> null (batches of {SINK_BATCH}), \
         {events} events per case, {BODY} B bodies, {CLIENTS} syslog TCP clients"
    );
    println!(
        "{:<10} {:>5} {:>6} {:>9} {:>8} {:>10} {:>7} {:>6}",
        "case", "batch", "body B", "events", "seconds", "events/s", "MB/s", "vs seq"
    );
    for batch in BATCHES {
        let mut baseline = None;
        for make in CASES {
            let dir = tempfile::tempdir_in(&base).expect("temp dir under target/");
            let case = make(&Setup {
                events,
                batch,
                dir: dir.path(),
            });
            let name = case.name;
            let channel = file_channel(&dir.path().join("channel"), batch);
            let (t, bytes) = measure(case, channel, events);
            let secs = t.as_secs_f64();
            let eps = events as f64 / secs;
            let baseline = *baseline.get_or_insert(eps);
            println!(
                "{name:<10} {batch:>5} {:>6.1} {events:>9} {secs:>8.2} {eps:>10.0} {:>7.1} {:>6.2}",
                bytes as f64 / events as f64,
                bytes as f64 / secs / 1e6,
                eps / baseline
            );
        }
    }
}
