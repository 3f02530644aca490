//! The stop signal: one flag, set once (by SIGTERM/SIGINT or a test) and polled by every
//! long-running loop — sources, sinks, the metrics server. It sits apart from all of them so
//! that each can depend on it without depending on the others.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Set once to ask every component to stop.
pub type StopFlag = Arc<AtomicBool>;

/// How long, from the agent's stop, a sink still waits for the answer to what it already sent
/// (the Kafka sink's acknowledgements, the avro and thrift sinks' replies). A live peer answers
/// within milliseconds; giving the answer up rolled back a batch the peer had stored, and the
/// restarted agent sent it again (50 duplicates per SIGTERM in the soak of audit 20). A peer
/// that is away bounds the stop by this much.
#[cfg(not(test))]
pub const STOP_GRACE: Duration = Duration::from_secs(5);
#[cfg(test)]
pub const STOP_GRACE: Duration = Duration::from_secs(1);

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
