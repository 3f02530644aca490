//! End to end: `seq` → file channel → Kafka sink → tansu, against a raw rdkafka producer
//! (acks=all, idempotent) pushing the same events straight to the broker, in one run, at 100 B
//! and 1 KiB; each timed run gets a freshly started tansu. Prints events/s, MB/s and the
//! weir/raw ratio (target ≥ 0.70).
//!
//! Both sides are timed warm: connecting, fetching metadata and getting an idempotent producer
//! id take ~0.5 s on a fresh client, which in a run of a second or two was measuring startup,
//! not throughput. So each side first delivers one batch of warm-up events (weir: a first seq
//! run through the whole pipeline; raw: produced and flushed), and only then is timed from the
//! first event of the main run to the last acknowledgement (weir: the last take committed).
//!
//! A bench binary rather than criterion: each case is one pipeline run of seconds. Needs
//! `tansu` (see README). `WEIR_BENCH_EVENTS` sets events per case (default 500,000) and
//! `WEIR_BENCH_BATCH` the sink's flumeBatchSize (default 1000), `WEIR_BENCH_IN_FLIGHT` its
//! `kafka.inFlightBatches` (default 8, as the sink's default), `WEIR_BENCH_LINGER_MS` its
//! `linger.ms` (default 2, as the sink's default), `WEIR_BENCH_BODIES` the body sizes (default
//! `100,1024`), `WEIR_BENCH_ROUNDS` the rounds per size (default 3; each side's median is
//! reported), `WEIR_BENCH_SIDES` which sides run (default `weir,raw`; one alone for profiling).
//!
//! Each size also gets a line of CPU time per 100,000 events, this process's (weir's whole
//! pipeline, or the raw producer, librdkafka's threads included) and the broker's, from
//! `/proc`: on a shared two-core machine the rates swing by a third between runs, CPU time much
//! less, and it says where a gap comes from.
//!
//! Run: `cargo bench --bench kafka`

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use weir::channel::Channel;
use weir::channel::file::FileChannel;
use weir::config::{
    FileChannelConfig, KafkaSinkConfig, ProducerProperty, SelectorConfig, SeqConfig, SinkConfig,
    SinkKind, SourceConfig, SourceKind, UnsendablePolicy,
};
use weir::sink::{SinkCounters, SinkRunner};
use weir::source::seq::{self, SeqSource};
use weir::source::{ChannelProcessor, Source, SourceCounters};
use weir::stop::Stop;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One timed run: wall time, and the CPU time this process and the broker used meanwhile.
struct Run {
    elapsed: Duration,
    cpu_self: f64,
    cpu_broker: f64,
}

/// CPU seconds (user + system) used so far by process `pid` (`None`: this one), from
/// `/proc/PID/stat`; 0 if it cannot be read.
fn cpu_seconds(pid: Option<u32>) -> f64 {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".into(),
    };
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and
    // 13th of them.
    let after_name = stat.rsplit(')').next().unwrap_or("");
    let ticks: u64 = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    ticks as f64 / rustix::param::clock_ticks_per_second() as f64
}

/// Times `timed`, with the CPU used by this process and by the broker `broker_pid` meanwhile.
fn measure(broker_pid: Option<u32>, timed: impl FnOnce()) -> Run {
    let (cpu_self, cpu_broker) = (cpu_seconds(None), cpu_seconds(broker_pid));
    let start = Instant::now();
    timed();
    Run {
        elapsed: start.elapsed(),
        cpu_self: cpu_seconds(None) - cpu_self,
        cpu_broker: broker_pid.map_or(0.0, |p| cpu_seconds(Some(p)) - cpu_broker),
    }
}

/// The raw baseline: one producer, every event produced back to back, one flush at the end.
fn raw(
    bootstrap: &str,
    broker_pid: Option<u32>,
    topic: &str,
    events: u64,
    body: usize,
    warm_up: u64,
) -> Run {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .create()
        .expect("raw producer");
    produce_all(&producer, topic, 0..warm_up, body);
    measure(broker_pid, || {
        produce_all(&producer, topic, warm_up..warm_up + events, body)
    })
}

/// Produces the seq source's events `range` with their offset header, then waits for every
/// acknowledgement.
fn produce_all(producer: &BaseProducer, topic: &str, range: std::ops::Range<u64>, body: usize) {
    for i in range {
        let payload = seq::body(i, body);
        let offset = i.to_string();
        let headers = OwnedHeaders::new().insert(Header {
            key: "weir.offset",
            value: Some(offset.as_bytes()),
        });
        let mut rec: BaseRecord<'_, [u8], [u8]> =
            BaseRecord::to(topic).payload(&payload[..]).headers(headers);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, back)) => {
                    rec = back;
                    producer.poll(Duration::ZERO);
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(120)).expect("raw flush");
}

/// weir: seq → file channel → Kafka sink, timed from the start of the main seq run until the
/// sink has committed every event.
fn weir(
    bootstrap: &str,
    broker_pid: Option<u32>,
    topic: &str,
    events: u64,
    body: usize,
    batch: usize,
    warm_up: u64,
) -> Run {
    let dir = tempfile::tempdir_in(std::env::current_dir().unwrap_or_default().join("target"))
        .expect("temp dir");
    let channel: Arc<dyn Channel> = Arc::new(
        FileChannel::open(
            "c1",
            &FileChannelConfig {
                capacity: 10_000_000,
                transaction_capacity: batch,
                minimum_required_space: 0,
                ..FileChannelConfig::new(dir.path().join("ckpt"), dir.path().join("data"))
            },
        )
        .expect("file channel"),
    );
    let source_cfg = SourceConfig {
        name: "r1".into(),
        channels: vec!["c1".into()],
        selector: SelectorConfig::Replicating { optional: vec![] },
        interceptors: vec![],
        kind: SourceKind::Seq(SeqConfig {
            total_events: events,
            batch_size: batch,
            body_size: body,
        }),
    };
    let SourceKind::Seq(main_run) = source_cfg.kind.clone() else {
        unreachable!()
    };
    let processor = || {
        ChannelProcessor::new(
            &source_cfg,
            std::slice::from_ref(&channel),
            Arc::new(SourceCounters::default()),
        )
    };
    let stop = Stop::new();
    let counters = Arc::new(SinkCounters::default());
    let sink_cfg = SinkConfig {
        name: "k1".into(),
        channel: "c1".into(),
        batch_size: batch,
        kind: SinkKind::Kafka(KafkaSinkConfig {
            bootstrap_servers: bootstrap.into(),
            topic: topic.into(),
            allow_topic_override: true,
            topic_header: "topic".into(),
            partition_header: None,
            default_partition: None,
            producer: vec![
                ProducerProperty::new("acks", "all"),
                ProducerProperty::new("enable.idempotence", "true"),
                ProducerProperty::new(
                    "linger.ms",
                    &std::env::var("WEIR_BENCH_LINGER_MS").unwrap_or_else(|_| "2".into()),
                ),
            ],
            on_unsendable: UnsendablePolicy::Block,
            in_flight_batches: std::env::var("WEIR_BENCH_IN_FLIGHT")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(8),
            use_flume_event_format: false,
            timestamp_header: None,
            header_map: Vec::new(),
        }),
    };
    let runner = SinkRunner {
        name: "k1".into(),
        sink: weir::sink::build(&sink_cfg, stop.clone(), counters.clone()).expect("kafka sink"),
        channel: channel.clone(),
        batch_size: batch,
        counters: counters.clone(),
        stop: stop.clone(),
    };
    let sink = std::thread::spawn(move || runner.run());
    let run_seq = |total_events: u64| {
        let config = SeqConfig {
            total_events,
            ..main_run.clone()
        };
        let source = Box::new(SeqSource::new("r1", config));
        let (processor, s) = (processor(), stop.clone());
        std::thread::spawn(move || source.run(processor, s))
    };
    // Checked every 5 ms: often enough for the timing (±0.2% of a run of seconds), rarely
    // enough that this thread's wake-ups do not take CPU from the pipeline it measures.
    let committed = |n: u64| {
        while counters.drain_success.load(Ordering::Relaxed) < n {
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let _ = run_seq(warm_up).join();
    committed(warm_up);
    let mut src = None;
    let run = measure(broker_pid, || {
        src = Some(run_seq(events));
        committed(warm_up + events);
    });
    stop.set();
    if let Some(src) = src {
        let _ = src.join();
    }
    let _ = sink.join();
    run
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // A fresh broker for every timed run: tansu's memory storage keeps every record, and a
    // broker already holding a few GB from earlier rounds is slower (measured: the raw
    // producer fell from ~210k to ~135k events/s at 1 KiB over three rounds), which favoured
    // whichever side ran earlier.
    let fresh_broker = |topic: &str| {
        let Some(broker) = support::Broker::start() else {
            eprintln!("tansu is needed for this benchmark");
            std::process::exit(1);
        };
        broker.create_topic(topic, 1);
        broker
    };
    let events = env_or("WEIR_BENCH_EVENTS", 500_000);
    let batch = env_or("WEIR_BENCH_BATCH", 1000) as usize;
    let rounds = env_or("WEIR_BENCH_ROUNDS", 3).max(1);
    println!(
        "{events} events per case, median of {rounds} rounds; weir: seq -> file channel -> kafka sink (flumeBatchSize {batch}); raw: one rdkafka producer"
    );
    println!(
        "{:<6} {:>6} {:>12} {:>9} {:>12} {:>9} {:>7}",
        "body", "", "weir ev/s", "MB/s", "raw ev/s", "MB/s", "ratio"
    );
    let bodies: Vec<usize> = std::env::var("WEIR_BENCH_BODIES")
        .unwrap_or_else(|_| "100,1024".into())
        .split(',')
        .filter_map(|b| b.trim().parse().ok())
        .collect();
    // Only one side, for profiling it alone: `WEIR_BENCH_SIDES=weir` (default `weir,raw`).
    let sides_env = std::env::var("WEIR_BENCH_SIDES").unwrap_or_else(|_| "weir,raw".into());
    let sides: Vec<&str> = sides_env.split(',').map(str::trim).collect();
    for body in bodies {
        // Alternating which side goes first (raw, weir, then weir, raw, ...) so that slow
        // drifts of the machine hit both; medians over the rounds, because one run on a shared
        // two-core machine swings by a third.
        let (mut raw_runs, mut weir_runs): (Vec<Run>, Vec<Run>) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let (t_raw, t_weir) = (format!("raw{body}-{round}"), format!("weir{body}-{round}"));
            let warm_up = batch as u64;
            let mut run_raw = || {
                let broker = fresh_broker(&t_raw);
                let run = raw(
                    &broker.bootstrap(),
                    broker.pid(),
                    &t_raw,
                    events,
                    body,
                    warm_up,
                );
                raw_runs.push(run);
            };
            let mut run_weir = || {
                let broker = fresh_broker(&t_weir);
                let run = weir(
                    &broker.bootstrap(),
                    broker.pid(),
                    &t_weir,
                    events,
                    body,
                    batch,
                    warm_up,
                );
                weir_runs.push(run);
            };
            let (do_raw, do_weir) = (sides.contains(&"raw"), sides.contains(&"weir"));
            if round % 2 == 0 {
                if do_raw {
                    run_raw();
                }
                if do_weir {
                    run_weir();
                }
            } else {
                if do_weir {
                    run_weir();
                }
                if do_raw {
                    run_raw();
                }
            }
        }
        // Each side's runs as events/s, and as CPU seconds per 100,000 events.
        let of = |runs: &[Run], what: &dyn Fn(&Run) -> f64| runs.iter().map(what).collect();
        let rate = |r: &Run| events as f64 / r.elapsed.as_secs_f64();
        let per_100k = |cpu: f64| cpu * 100_000.0 / events as f64;
        let (mut weir_rates, mut raw_rates): (Vec<f64>, Vec<f64>) =
            (of(&weir_runs, &rate), of(&raw_runs, &rate));
        let (w, r) = (median(&mut weir_rates), median(&mut raw_rates));
        println!(
            "{body:<6} {:>6} {w:>12.0} {:>9.1} {r:>12.0} {:>9.1} {:>7.2}   (weir {}; raw {})",
            "B",
            w * body as f64 / 1e6,
            r * body as f64 / 1e6,
            w / r,
            spread(&weir_rates),
            spread(&raw_rates),
        );
        let cpu =
            |runs: &[Run], which: fn(&Run) -> f64| median(&mut of(runs, &|r| per_100k(which(r))));
        println!(
            "{:<13} CPU s per 100k events (median): weir process {:.2}, raw process {:.2}; broker {:.2} / {:.2}",
            "",
            cpu(&weir_runs, |r| r.cpu_self),
            cpu(&raw_runs, |r| r.cpu_self),
            cpu(&weir_runs, |r| r.cpu_broker),
            cpu(&raw_runs, |r| r.cpu_broker),
        );
    }
}

fn median(rates: &mut [f64]) -> f64 {
    rates.sort_by(f64::total_cmp);
    match rates.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => rates[n / 2],
        n => (rates[n / 2 - 1] + rates[n / 2]) / 2.0,
    }
}

/// The rounds' rates in thousands of events/s, for the reader to judge the noise.
fn spread(rates: &[f64]) -> String {
    let k: Vec<String> = rates.iter().map(|r| format!("{:.0}k", r / 1e3)).collect();
    k.join(" ")
}
