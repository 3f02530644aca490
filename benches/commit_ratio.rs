//! Group commit's scaling, measured as one ratio: commits/s of 64 threads over commits/s of one
//! thread, each thread committing one 100 B event at a time (as `group_commit/weir/{1,64}` in
//! the `wal` bench).
//!
//! Why a second measurement of the same thing: the `wal` bench times one thread, then 8, then
//! 64, minutes apart, and this VM's `fdatasync` latency drifts by 20% over minutes, so the ratio
//! of two rates taken at different times moves with the drift more than with the code. Here the
//! two are measured in alternating windows of a few seconds (the order swapped every round),
//! each round gives a ratio of two neighbouring windows, and the median of the rounds is
//! printed with the spread. Each thread count has its own log, as in the `wal` bench.
//!
//! Run: `cargo bench --bench commit_ratio` (about a minute). `WEIR_RATIO_ROUNDS` (default 10)
//! and `WEIR_RATIO_SECS` (seconds per window, default 2) change the length.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use weir::event::Event;
use weir::wal::{Wal, WalOptions};

const MANY: usize = 64;
const WARM_UP: Duration = Duration::from_millis(300);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Commits/s of `threads` threads committing one event at a time into `wal`, over `window`
/// after a short warm-up.
fn rate(wal: &Wal, threads: usize, window: Duration) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let event = [Event::new(vec![b'x'; 100])];
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (wal, stop, commits, event) =
                (wal.clone(), stop.clone(), commits.clone(), event.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    wal.append_commit(&event).expect("commit");
                    commits.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(WARM_UP);
    let (c0, t0) = (commits.load(Ordering::Relaxed), Instant::now());
    std::thread::sleep(window);
    let (c1, t1) = (commits.load(Ordering::Relaxed), Instant::now());
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().expect("committer");
    }
    (c1 - c0) as f64 / (t1 - t0).as_secs_f64()
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and must not run
    // a minute of syncs.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rounds = env_or("WEIR_RATIO_ROUNDS", 10).max(1);
    let window = Duration::from_secs(env_or("WEIR_RATIO_SECS", 2).max(1));
    let base = std::env::current_dir().unwrap_or_default().join("target");
    let open = || {
        let dir = tempfile::tempdir_in(&base).expect("scratch dir under target/");
        let wal = Wal::open(dir.path(), WalOptions::default()).expect("open");
        (dir, wal)
    };
    let (_one_dir, one) = open();
    let (_many_dir, many) = open();
    println!("round  1 thread (commits/s)  {MANY} threads (commits/s)  ratio");
    let mut ratios = Vec::new();
    for round in 0..rounds {
        let (r1, rn) = if round % 2 == 0 {
            let r1 = rate(&one, 1, window);
            (r1, rate(&many, MANY, window))
        } else {
            let rn = rate(&many, MANY, window);
            (rate(&one, 1, window), rn)
        };
        let ratio = rn / r1;
        println!("{:>5}  {r1:>21.0}  {rn:>22.0}  {ratio:>5.1}", round + 1);
        ratios.push(ratio);
    }
    ratios.sort_by(f64::total_cmp);
    let median = if ratios.len() % 2 == 1 {
        ratios[ratios.len() / 2]
    } else {
        (ratios[ratios.len() / 2 - 1] + ratios[ratios.len() / 2]) / 2.0
    };
    let below = ratios.iter().filter(|r| **r < 20.0).count();
    println!(
        "median {median:.1}x (min {:.1}, max {:.1}); {below} of {} rounds below the 20x target",
        ratios[0],
        ratios[ratios.len() - 1],
        ratios.len()
    );
}
