//! The stop signal: one flag, set once (by SIGTERM/SIGINT or a test) and polled by every
//! long-running loop — sources, sinks, the metrics server. It sits apart from all of them so
//! that each can depend on it without depending on the others.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Set once to ask every component to stop.
pub type StopFlag = Arc<AtomicBool>;

pub fn stopping(stop: &StopFlag) -> bool {
    stop.load(Ordering::Relaxed)
}

/// Sleeps for `d`, waking every 20 ms to look at `stop`; false if the agent began stopping
/// before `d` was over. Backoffs and polls use it so that a stop never waits out a long sleep.
pub fn sleep_unless_stopped(d: Duration, stop: &StopFlag) -> bool {
    const STEP: Duration = Duration::from_millis(20);
    let end = Instant::now() + d;
    loop {
        if stopping(stop) {
            return false;
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(STEP));
    }
}
