//! The hdfs sink's own cost, writing to the local filesystem: `seq` → memory channel → sink,
//! the file_roll sink (TEXT, fdatasync per batch) as the baseline doing the same I/O, against the
//! hdfs sink's DataStream (the same bytes, one create or append and fdatasync per batch),
//! SequenceFile and CompressedStream (gzip). Prints events/s and each hdfs case's ratio to
//! file_roll, the median of rounds that alternate the order of the cases.
//!
//! A bench binary rather than criterion: each case is one pipeline run of seconds.
//! `WEIR_BENCH_EVENTS` sets events per case (default 1,000,000); `WEIR_BENCH_ROUNDS` (3).
//!
//! Run: `cargo bench --no-default-features --bench hdfs`

mod common;

use std::path::Path;
use std::time::Duration;

use weir::config::{
    FileNaming, FileRollConfig, HdfsCodec, HdfsFormat, HdfsSinkConfig, HdfsStore, SerializerConfig,
};
use weir::sink::Sink;
use weir::sink::file_roll::FileRollSink;
use weir::sink::hdfs::HdfsSink;

const BATCH: usize = 1000;
const BODY: usize = 100;

fn text() -> SerializerConfig {
    SerializerConfig::Text {
        append_newline: true,
    }
}

fn hdfs(dir: &Path, format: HdfsFormat) -> Box<dyn Sink> {
    let config = HdfsSinkConfig {
        store: HdfsStore::Local,
        path: dir.display().to_string(),
        file_prefix: "FlumeData".into(),
        file_suffix: String::new(),
        in_use_prefix: String::new(),
        in_use_suffix: ".tmp".into(),
        roll_interval: Duration::ZERO,
        roll_size: 0,
        roll_count: 0,
        idle_timeout: Duration::ZERO,
        max_open_files: 5000,
        call_timeout: Duration::from_secs(30),
        close_tries: 0,
        retry_interval: Duration::from_secs(180),
        format,
        round: None,
        use_local_time_stamp: true,
        time_zone: None,
        needs_timestamp_header: false,
    };
    Box::new(HdfsSink::new("k1", config).expect("hdfs sink"))
}

fn file_roll(dir: &Path) -> Box<dyn Sink> {
    let config = FileRollConfig {
        directory: dir.to_owned(),
        roll_interval: Duration::ZERO,
        prefix: String::new(),
        extension: String::new(),
        naming: FileNaming::Default,
        fsync: true,
        serializer: text(),
    };
    Box::new(FileRollSink::new("k1", config).expect("file_roll sink"))
}

fn run(sink: Box<dyn Sink>, events: u64) -> Duration {
    let channel = common::memory_channel(BATCH);
    common::seq_pipeline(channel, sink, events, BODY, BATCH)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let Some((events, base)) = common::bench_setup(1_000_000) else {
        return;
    };
    let rounds: usize = std::env::var("WEIR_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    type Make = fn(&Path) -> Box<dyn Sink>;
    let cases: [(&str, Make); 4] = [
        ("file_roll TEXT", file_roll),
        ("hdfs DataStream", |d| {
            hdfs(d, HdfsFormat::DataStream(text()))
        }),
        ("hdfs SequenceFile", |d| {
            hdfs(d, HdfsFormat::SequenceFile { text: false })
        }),
        ("hdfs gzip", |d| {
            hdfs(d, HdfsFormat::CompressedStream(text(), HdfsCodec::Gzip))
        }),
    ];
    println!(
        "seq -> memory -> sink (local files), {events} events of {BODY} B per case, batches of \
         {BATCH}, {rounds} rounds"
    );
    let mut rates = vec![Vec::new(); cases.len()];
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..cases.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let dir = tempfile::tempdir_in(&base).expect("temp dir under target/");
            let t = run(cases[i].1(dir.path()), events);
            rates[i].push(events as f64 / t.as_secs_f64());
        }
    }
    let baseline = median(rates[0].clone());
    println!("{:<20} {:>12} {:>14}", "sink", "events/s", "/ file_roll");
    for (i, (name, _)) in cases.iter().enumerate() {
        let r = median(rates[i].clone());
        println!("{name:<20} {r:>12.0} {:>14.2}", r / baseline);
    }
}
