//! The stop signal: one flag, set once (by SIGTERM/SIGINT or a test) and polled by every
//! long-running loop — sources, sinks, the metrics server. It sits apart from all of them so
//! that each can depend on it without depending on the others.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once to ask every component to stop.
pub type StopFlag = Arc<AtomicBool>;

pub fn stopping(stop: &StopFlag) -> bool {
    stop.load(Ordering::Relaxed)
}
