//! Sinks deliver taken events somewhere; the [`SinkRunner`] drives one sink: take a batch,
//! deliver it, commit the take only if delivery succeeded, else roll back and back off
//! (exponentially, capped), so delivery is at-least-once. Sinks of a sink group are driven
//! cycle by cycle by their group instead ([`group`]).

pub mod file_roll;
pub mod group;
pub mod kafka;
pub mod logger;
pub mod null;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::channel::{Channel, ChannelError};
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
pub(crate) const BACKOFF_START: Duration = Duration::from_millis(100);
pub(crate) const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long a take waits for events before the runner calls `idle` and checks the stop flag.
const POLL: Duration = Duration::from_millis(100);

/// What one take–deliver–commit cycle did (Flume's `Sink.Status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// A batch was delivered and its take committed.
    Ready,
    /// Nothing came to take within the poll interval, so the cycle already waited.
    Backoff,
}

/// Why a cycle failed. Nothing is lost: a failed delivery was rolled back, and events whose
/// commit failed will be taken and delivered again.
#[derive(Debug)]
pub enum CycleError {
    Take(ChannelError),
    Deliver(anyhow::Error),
    Commit(ChannelError),
}

impl std::fmt::Display for CycleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CycleError::Take(e) => write!(f, "take failed: {e}"),
            CycleError::Deliver(e) => write!(f, "delivery failed; rolled back: {e:#}"),
            CycleError::Commit(e) => write!(
                f,
                "commit of delivered events failed; they will be redelivered: {e}"
            ),
        }
    }
}

impl CycleError {
    /// Logs the failure of sink `sink` the way a lone sink's runner always has.
    fn log(&self, sink: &str, retry: Duration) {
        let retry_in_ms = retry.as_millis() as u64;
        match self {
            CycleError::Take(e) => {
                tracing::error!(sink, error = %e, retry_in_ms, "take failed")
            }
            CycleError::Deliver(e) => {
                tracing::warn!(sink, error = %format!("{e:#}"), retry_in_ms, "delivery failed; rolled back")
            }
            CycleError::Commit(e) => {
                tracing::error!(sink, error = %e, retry_in_ms, "commit of delivered events failed; they will be redelivered")
            }
        }
    }
}

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
        let mut backoff = BACKOFF_START;
        while !stopping(&stop) {
            match self.process() {
                Ok(Status::Ready) => backoff = BACKOFF_START,
                Ok(Status::Backoff) => {}
                Err(e) => {
                    e.log(&self.name, backoff);
                    sleep_unless_stopped(backoff, &stop);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
        self.close();
    }

    /// One cycle: take up to a batch (waiting up to the poll interval), deliver it, commit the
    /// take, or roll it back if delivery failed. Counts into the sink's counters; the caller
    /// decides how to back off (alone, or as one sink of a group).
    pub fn process(&mut self) -> Result<Status, CycleError> {
        let c = &self.counters;
        let taken = match self.channel.take(self.batch_size, POLL) {
            Ok(t) => t,
            Err(e) => {
                c.failures.fetch_add(1, Ordering::Relaxed);
                return Err(CycleError::Take(e));
            }
        };
        if taken.is_empty() {
            c.batch_empty.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = self.sink.idle() {
                tracing::warn!(sink = %self.name, error = %e, "idle work failed");
            }
            return Ok(Status::Backoff);
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
                    Ok(Status::Ready)
                }
                Err(e) => {
                    // Delivered but not recorded: these events will be delivered again.
                    c.failures.fetch_add(1, Ordering::Relaxed);
                    Err(CycleError::Commit(e))
                }
            },
            Err(e) => {
                self.channel.rollback(taken);
                c.failures.fetch_add(1, Ordering::Relaxed);
                c.rollbacks.fetch_add(1, Ordering::Relaxed);
                Err(CycleError::Deliver(e))
            }
        }
    }

    /// Closes the sink, after its last cycle.
    pub fn close(&mut self) {
        if let Err(e) = self.sink.close() {
            tracing::error!(sink = %self.name, error = %e, "close failed");
        }
    }
}

pub(crate) fn sleep_unless_stopped(d: Duration, stop: &StopFlag) {
    let step = Duration::from_millis(20);
    let mut left = d;
    while !left.is_zero() && !stopping(stop) {
        let s = left.min(step);
        std::thread::sleep(s);
        left -= s;
    }
}
