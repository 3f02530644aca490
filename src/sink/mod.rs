//! Sinks deliver taken events somewhere; the [`SinkRunner`] drives one sink: take a batch,
//! deliver it, commit the take only if delivery succeeded, else roll back and back off
//! (exponentially, capped), so delivery is at-least-once.

pub mod file_roll;
pub mod kafka;
pub mod logger;
pub mod null;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::channel::Channel;
use crate::config::{SinkConfig, SinkKind};
use crate::event::Event;
use crate::source::{StopFlag, stopping};

/// Flume's sink counters (`SINK.<name>` in the metrics).
#[derive(Debug, Default)]
pub struct SinkCounters {
    pub drain_attempt: AtomicU64,
    pub drain_success: AtomicU64,
    pub batch_complete: AtomicU64,
    pub batch_underflow: AtomicU64,
    pub batch_empty: AtomicU64,
    pub failures: AtomicU64,
    pub rollbacks: AtomicU64,
    /// Records handed to a remote producer, and those it acknowledged (Kafka).
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    /// Events the destination refused for good (see `kafka.onUnsendable`).
    pub unsendable: AtomicU64,
    pub last_error: parking_lot::Mutex<Option<String>>,
}

/// Where a sink delivers to.
pub trait Sink: Send {
    /// Delivers a batch. `Ok` means the events are safely at the destination (flushed, synced,
    /// acknowledged): the take is then committed. `Err` rolls it back for a retry.
    fn deliver(&mut self, events: &[(u64, Event)]) -> anyhow::Result<()>;

    /// Called when no events came within the poll interval (e.g. to roll files on time).
    fn idle(&mut self) -> anyhow::Result<()> {
        Ok(())
    }

    /// Called once when the agent stops, after the last delivery.
    fn close(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Builds the sink a config describes. `stop` lets a sink that waits on a remote end (Kafka)
/// give up its batch promptly at shutdown; `counters` receives sink-specific counts.
pub fn build(
    config: &SinkConfig,
    stop: StopFlag,
    counters: Arc<SinkCounters>,
) -> anyhow::Result<Box<dyn Sink>> {
    Ok(match &config.kind {
        SinkKind::Kafka(k) => Box::new(kafka::KafkaSink::new(
            &config.name,
            k.clone(),
            stop,
            counters,
        )?),
        SinkKind::Logger { max_bytes_to_log } => {
            Box::new(logger::LoggerSink::new(&config.name, *max_bytes_to_log))
        }
        SinkKind::Null => Box::new(null::NullSink),
        SinkKind::FileRoll(c) => Box::new(file_roll::FileRollSink::new(&config.name, c.clone())?),
    })
}

/// Backoff after a failed delivery: doubles from `BACKOFF_START` up to `BACKOFF_MAX`, reset by a
/// success.
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long a take waits for events before the runner calls `idle` and checks the stop flag.
const POLL: Duration = Duration::from_millis(100);

pub struct SinkRunner {
    pub name: String,
    pub sink: Box<dyn Sink>,
    pub channel: Arc<dyn Channel>,
    pub batch_size: usize,
    pub counters: Arc<SinkCounters>,
}

impl SinkRunner {
    /// Runs until `stop` is set. The batch being delivered when the stop comes is finished and
    /// committed (or rolled back) first.
    pub fn run(mut self, stop: StopFlag) {
        let c = self.counters.clone();
        let mut backoff = BACKOFF_START;
        while !stopping(&stop) {
            let taken = match self.channel.take(self.batch_size, POLL) {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!(sink = %self.name, error = %e, "take failed");
                    c.failures.fetch_add(1, Ordering::Relaxed);
                    sleep_unless_stopped(backoff, &stop);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            };
            if taken.is_empty() {
                c.batch_empty.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = self.sink.idle() {
                    tracing::warn!(sink = %self.name, error = %e, "idle work failed");
                }
                continue;
            }
            let n = taken.len();
            c.drain_attempt.fetch_add(n as u64, Ordering::Relaxed);
            match self.sink.deliver(&taken.events) {
                Ok(()) => match self.channel.commit(taken) {
                    Ok(()) => {
                        c.drain_success.fetch_add(n as u64, Ordering::Relaxed);
                        let counter = if n == self.batch_size {
                            &c.batch_complete
                        } else {
                            &c.batch_underflow
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                        backoff = BACKOFF_START;
                    }
                    Err(e) => {
                        // Delivered but not recorded: these events will be delivered again.
                        tracing::error!(sink = %self.name, error = %e, "commit of delivered events failed; they will be redelivered");
                        c.failures.fetch_add(1, Ordering::Relaxed);
                        sleep_unless_stopped(backoff, &stop);
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                    }
                },
                Err(e) => {
                    tracing::warn!(sink = %self.name, error = %format!("{e:#}"), retry_in_ms = backoff.as_millis() as u64, "delivery failed; rolled back");
                    self.channel.rollback(taken);
                    c.failures.fetch_add(1, Ordering::Relaxed);
                    c.rollbacks.fetch_add(1, Ordering::Relaxed);
                    sleep_unless_stopped(backoff, &stop);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
        if let Err(e) = self.sink.close() {
            tracing::error!(sink = %self.name, error = %e, "close failed");
        }
    }
}

fn sleep_unless_stopped(d: Duration, stop: &StopFlag) {
    let step = Duration::from_millis(20);
    let mut left = d;
    while !left.is_zero() && !stopping(stop) {
        let s = left.min(step);
        std::thread::sleep(s);
        left -= s;
    }
}
