//! Flume's Kafka timers and counts (`KafkaEventGetTimer`, `KafkaEventSendTimer`,
//! `KafkaCommitTimer`, `KafkaEmptyCount`): kept by the Kafka source, channel and sink next to
//! their component counters, and shown by the metrics endpoint for the components that keep
//! them. Built with or without the `kafka` feature, so that the counters need no gate.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

#[derive(Debug, Default)]
pub struct KafkaTimers {
    /// Set by a Kafka component when it is built: only then are the timers shown.
    kept: AtomicBool,
    /// Milliseconds spent polling the consumer for events.
    pub get_ms: AtomicU64,
    /// Milliseconds spent producing events and waiting for their acknowledgements.
    pub send_ms: AtomicU64,
    /// Milliseconds spent committing consumer offsets.
    pub commit_ms: AtomicU64,
    /// Polls for a batch that brought no event (the source's `KafkaEmptyCount`).
    pub empty: AtomicU64,
}

impl KafkaTimers {
    /// Marks the component as a Kafka one, whose timers the metrics show.
    pub fn keep(&self) {
        self.kept.store(true, Ordering::Relaxed);
    }

    pub fn kept(&self) -> bool {
        self.kept.load(Ordering::Relaxed)
    }

    /// Adds the milliseconds since `start` to `timer`.
    pub fn add(timer: &AtomicU64, start: Instant) {
        timer.fetch_add(start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}
