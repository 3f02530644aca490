//! Agent throughput: `seq` → channel → `null`, through the file channel and the memory channel
//! in the same run, at 100 B and 1 KiB events. Prints events/s and MB/s and the file/memory ratio.
//!
//! A bench binary rather than criterion: each case is one long pipeline run (seconds), not a
//! micro-operation to sample. `WEIR_BENCH_EVENTS` sets events per case (default 2,000,000).
//!
//! Run: `cargo bench --bench agent`

mod common;

use std::sync::Arc;
use std::time::Duration;

use weir::channel::Channel;
use weir::channel::file::FileChannel;
use weir::config::FileChannelConfig;
use weir::sink::null::NullSink;

const BATCH: usize = 1000;

fn run_pipeline(channel: Arc<dyn Channel>, events: u64, body: usize) -> Duration {
    common::seq_pipeline(channel, Box::new(NullSink), events, body, BATCH)
}

fn main() {
    let Some((events, base)) = common::bench_setup(2_000_000) else {
        return;
    };
    println!("seq -> channel -> null, {events} events per case, batches of {BATCH}");
    println!(
        "{:<8} {:>6} {:>14} {:>10} {:>10}",
        "channel", "body", "events/s", "MB/s", "seconds"
    );
    for body in [100usize, 1024] {
        let dir = tempfile::tempdir_in(&base).expect("temp dir under target/");
        let file: Arc<dyn Channel> = Arc::new(
            FileChannel::open(
                "c1",
                &FileChannelConfig {
                    capacity: 1_000_000,
                    transaction_capacity: BATCH,
                    minimum_required_space: 0,
                    ..FileChannelConfig::new(dir.path().join("ckpt"), dir.path().join("data"))
                },
            )
            .expect("open file channel"),
        );
        let memory = common::memory_channel(BATCH);
        let mut rates = Vec::new();
        for (kind, ch) in [("file", file), ("memory", memory)] {
            let t = run_pipeline(ch, events, body);
            let eps = events as f64 / t.as_secs_f64();
            let mbs = eps * body as f64 / 1e6;
            println!(
                "{kind:<8} {body:>6} {eps:>14.0} {mbs:>10.1} {:>10.2}",
                t.as_secs_f64()
            );
            rates.push(eps);
        }
        println!(
            "         file/memory ratio at {body} B: {:.2}",
            rates[0] / rates[1]
        );
    }
}
