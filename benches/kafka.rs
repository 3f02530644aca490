//! End to end: `seq` → file channel → Kafka sink → tansu, against a raw rdkafka producer
//! (acks=all, idempotent) pushing the same events straight to the same broker, in one run, at
//! 100 B and 1 KiB. Prints events/s, MB/s and the weir/raw ratio (target ≥ 0.70).
//!
//! A bench binary rather than criterion: each case is one pipeline run of seconds. Needs
//! `tansu` (see README). `WEIR_BENCH_EVENTS` sets events per case (default 200,000) and
//! `WEIR_BENCH_BATCH` the sink's flumeBatchSize (default 1000), `WEIR_BENCH_IN_FLIGHT` its
//! `kafka.inFlightBatches` (default 4, as the sink's default), `WEIR_BENCH_LINGER_MS` its
//! `linger.ms` (default 2, as the sink's default).
//!
//! Run: `cargo bench --bench kafka`

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use weir::channel::Channel;
use weir::channel::file::FileChannel;
use weir::config::{
    FileChannelConfig, KafkaSinkConfig, SelectorConfig, SeqConfig, SinkConfig, SinkKind,
    SourceConfig, SourceKind, UnsendablePolicy,
};
use weir::sink::{SinkCounters, SinkRunner};
use weir::source::seq::SeqSource;
use weir::source::{ChannelProcessor, Source, SourceCounters};
use weir::wal::{CorruptionPolicy, SyncPolicy};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The raw baseline: one producer, every event produced back to back, one flush at the end.
fn raw(bootstrap: &str, topic: &str, events: u64, body: usize) -> Duration {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .create()
        .expect("raw producer");
    let start = Instant::now();
    for i in 0..events {
        let payload = format!("{i:<body$}");
        let offset = i.to_string();
        let headers = OwnedHeaders::new().insert(Header {
            key: "weir.offset",
            value: Some(offset.as_bytes()),
        });
        let mut rec: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic)
            .payload(payload.as_bytes())
            .headers(headers);
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
    start.elapsed()
}

/// weir: seq → file channel → Kafka sink, timed until the sink has committed every event.
fn weir(bootstrap: &str, topic: &str, events: u64, body: usize, batch: usize) -> Duration {
    let dir = tempfile::tempdir_in(std::env::current_dir().unwrap_or_default().join("target"))
        .expect("temp dir");
    let channel: Arc<dyn Channel> = Arc::new(
        FileChannel::open(
            "c1",
            &FileChannelConfig {
                checkpoint_dir: dir.path().join("ckpt"),
                data_dir: dir.path().join("data"),
                capacity: 10_000_000,
                transaction_capacity: batch,
                keep_alive: Duration::from_secs(3),
                segment_size: weir::wal::DEFAULT_SEGMENT_SIZE,
                minimum_required_space: 0,
                sync: SyncPolicy::EveryCommit,
                byte_capacity: None,
                on_corruption: CorruptionPolicy::Fail,
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
    let SourceKind::Seq(seq) = source_cfg.kind.clone() else {
        unreachable!()
    };
    let processor = ChannelProcessor::new(
        &source_cfg,
        std::slice::from_ref(&channel),
        Arc::new(SourceCounters::default()),
    );
    let stop = Arc::new(AtomicBool::new(false));
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
                ("acks".into(), "all".into()),
                ("enable.idempotence".into(), "true".into()),
                (
                    "linger.ms".into(),
                    std::env::var("WEIR_BENCH_LINGER_MS").unwrap_or_else(|_| "2".into()),
                ),
            ],
            on_unsendable: UnsendablePolicy::Block,
            in_flight_batches: std::env::var("WEIR_BENCH_IN_FLIGHT")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(4),
        }),
    };
    let runner = SinkRunner {
        name: "k1".into(),
        sink: weir::sink::build(&sink_cfg, stop.clone(), counters.clone()).expect("kafka sink"),
        channel: channel.clone(),
        batch_size: batch,
        counters: counters.clone(),
    };
    let start = Instant::now();
    let s = stop.clone();
    let sink = std::thread::spawn(move || runner.run(s));
    let s = stop.clone();
    let source = Box::new(SeqSource::new("r1", seq));
    let src = std::thread::spawn(move || source.run(processor, s));
    while counters.drain_success.load(Ordering::Relaxed) < events {
        std::thread::sleep(Duration::from_millis(1));
    }
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let _ = src.join();
    let _ = sink.join();
    elapsed
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let Some(broker) = support::Broker::start() else {
        eprintln!("tansu is needed for this benchmark");
        std::process::exit(1);
    };
    let events = env_or("WEIR_BENCH_EVENTS", 200_000);
    let batch = env_or("WEIR_BENCH_BATCH", 1000) as usize;
    println!(
        "{events} events per case; weir: seq -> file channel -> kafka sink (flumeBatchSize {batch}); raw: one rdkafka producer"
    );
    println!(
        "{:<6} {:>6} {:>12} {:>9} {:>12} {:>9} {:>7}",
        "body", "", "weir ev/s", "MB/s", "raw ev/s", "MB/s", "ratio"
    );
    for (i, body) in [100usize, 1024].into_iter().enumerate() {
        let (t_raw, t_weir) = (format!("raw{i}"), format!("weir{i}"));
        broker.create_topic(&t_raw, 1);
        broker.create_topic(&t_weir, 1);
        let raw_t = raw(&broker.bootstrap(), &t_raw, events, body);
        let weir_t = weir(&broker.bootstrap(), &t_weir, events, body, batch);
        let (r, w) = (
            events as f64 / raw_t.as_secs_f64(),
            events as f64 / weir_t.as_secs_f64(),
        );
        println!(
            "{body:<6} {:>6} {w:>12.0} {:>9.1} {r:>12.0} {:>9.1} {:>7.2}",
            "B",
            w * body as f64 / 1e6,
            r * body as f64 / 1e6,
            w / r
        );
    }
}
