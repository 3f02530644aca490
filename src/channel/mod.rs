//! Flume's channel semantics over a store. A put transaction is one `put` call: its events
//! become visible to takers together, at commit, and survive a crash together (file channel).
//! A take transaction is `take` followed by `commit` (the events are done) or `rollback` (they
//! return to the head of the channel, in order, for the next taker). Several sinks may take from
//! one channel concurrently; each event goes to one of them.

pub mod file;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod memory;
pub(crate) mod refusals;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::config::{ChannelConfig, ChannelKind};
use crate::event::Event;
use crate::stop::Stop;
use crate::wal::{Position, WalError};

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// No room within `keep-alive`: the source should tell its client to retry later.
    #[error("channel {channel} is full: {reason}")]
    Full { channel: String, reason: String },
    #[error(
        "channel {channel}: a transaction of {size} events exceeds its transactionCapacity of {limit}"
    )]
    TransactionTooLarge {
        channel: String,
        size: usize,
        limit: usize,
    },
    /// The Kafka channel's broker did not take a put (or could not be read): the source should
    /// tell its client to retry later.
    #[error("channel {channel}: Kafka unavailable: {reason}")]
    KafkaUnavailable { channel: String, reason: String },
    /// Prints the log's error in its message rather than returning it from `source()`, so a
    /// printed chain does not say it twice.
    #[error("channel {channel}: {error}")]
    Storage { channel: String, error: WalError },
    /// The channel can never store this put, however long the source waits: it is larger than
    /// the channel's byte capacity, or an event breaks a limit of the channel's encoding. The
    /// channel gives the events back, so that the source's processor can store the ones that
    /// fit (see [`Channel::storable_size`]).
    #[error("channel {channel}: {reason}")]
    Unstorable {
        channel: String,
        reason: String,
        events: Returned,
    },
}

/// The events of a put a channel refused for good, given back to the putter (its `Debug` says
/// how many, not what they hold).
#[derive(Default)]
pub struct Returned(pub Vec<Event>);

impl std::fmt::Debug for Returned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} events", self.0.len())
    }
}

impl ChannelError {
    pub fn is_full(&self) -> bool {
        matches!(self, ChannelError::Full { .. })
    }
}

/// Events handed out by one take transaction, with their offsets in the channel (log offsets
/// for the file channel, a sequence number for the memory channel). Give it back to
/// [`Channel::commit`] or [`Channel::rollback`].
#[derive(Debug)]
pub struct Taken {
    pub events: Vec<(u64, Event)>,
    /// Where this batch starts, for the file channel's checkpoint.
    pub(crate) start: Option<Position>,
}

impl Taken {
    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    fn key(&self) -> u64 {
        self.events.first().map(|(o, _)| *o).unwrap_or(u64::MAX)
    }
}

/// Flume's channel counters (`CHANNEL.<name>` in the metrics).
#[derive(Debug, Default)]
pub struct ChannelCounters {
    pub put_attempt: AtomicU64,
    pub put_success: AtomicU64,
    pub take_attempt: AtomicU64,
    pub take_success: AtomicU64,
    pub rollbacks: AtomicU64,
    pub full: AtomicU64,
    /// Storage failures of the file channel's log (Flume's `FileChannelCounter`): events of
    /// puts it could not store, takes it could not read, and consumer checkpoints it could not
    /// write.
    pub put_errors: AtomicU64,
    pub take_errors: AtomicU64,
    pub checkpoint_errors: AtomicU64,
    /// Set while the log's last put, take or checkpoint failed (Flume's `Unhealthy`).
    pub unhealthy: std::sync::atomic::AtomicBool,
    /// The Kafka channel's timers (see [`crate::kafka_metrics`]).
    pub kafka: crate::kafka_metrics::KafkaTimers,
}

impl ChannelCounters {
    pub(crate) fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// A take of up to `max` events handed out `taken`. Flume counts a take attempt per event
    /// asked for, the one that found the channel empty included, so attempts are never fewer
    /// than successes; successes count at commit (`EventTakeSuccessCount`), not here.
    pub(crate) fn took(&self, taken: usize, max: usize) {
        Self::add(&self.take_attempt, taken + usize::from(taken < max));
    }

    /// A storage operation failed: counted in `counter`, and the channel is unhealthy until
    /// one succeeds ([`ChannelCounters::stored`]).
    pub(crate) fn storage_failed(&self, counter: &AtomicU64, n: usize) {
        Self::add(counter, n);
        self.unhealthy.store(true, Ordering::Relaxed);
    }

    pub(crate) fn stored(&self) {
        if self.unhealthy.load(Ordering::Relaxed) {
            self.unhealthy.store(false, Ordering::Relaxed);
        }
    }
}

/// A point-in-time view of a channel for metrics.
#[derive(Debug, Clone, Default)]
pub struct ChannelStats {
    pub size: u64,
    pub capacity: u64,
    /// Bytes held in the log, consumer lag and log size (file channel only).
    pub log_bytes: Option<u64>,
    pub disk_bytes: Option<u64>,
    /// The channel keeps a log on disk, so the storage counters of [`ChannelCounters`] and
    /// Flume's file channel attributes apply.
    pub on_disk: bool,
}

pub trait Channel: Send + Sync {
    fn name(&self) -> &str;

    /// One put transaction: all of `events` become visible (and, for the file channel, durable)
    /// at once, or none does. Waits up to the channel's `keep-alive` for room, then fails with
    /// [`ChannelError::Full`].
    fn put(&self, events: Vec<Event>) -> Result<(), ChannelError> {
        self.put_waiting(events, self.keep_alive())
    }

    /// [`Channel::put`], waiting up to `wait` for room instead of the `keep-alive` (zero for a
    /// put that must never block, as into an optional channel).
    fn put_waiting(&self, events: Vec<Event>, wait: Duration) -> Result<(), ChannelError>;

    /// How long a put waits for room (Flume's `keep-alive`).
    fn keep_alive(&self) -> Duration;

    /// Begins a take transaction of up to `max` events, waiting up to `wait` for the first one.
    /// An empty result means nothing arrived in time.
    fn take(&self, max: usize, wait: Duration) -> Result<Taken, ChannelError> {
        self.take_waiting(max, wait, None)
    }

    /// [`Channel::take`], whose wait for the first event also ends when `stop` is set: at once
    /// if the caller has `stop`'s hook call [`Channel::wake_takers`] (the channel looks at
    /// `stop` under the lock that call takes), so an idle sink can wait long and still see the
    /// agent's stop at once.
    fn take_waiting(
        &self,
        max: usize,
        wait: Duration,
        stop: Option<&Stop>,
    ) -> Result<Taken, ChannelError>;

    /// The taken events are done: they will not be handed out again, even after a crash.
    fn commit(&self, taken: Taken) -> Result<(), ChannelError>;

    /// Commits several takes at once, as if one after the other; a failure is reported after
    /// the others were tried. The file channel records them with one checkpoint write instead
    /// of one each.
    fn commit_all(&self, takes: Vec<Taken>) -> Result<(), ChannelError> {
        let mut first_failure = None;
        for t in takes {
            if let Err(e) = self.commit(t) {
                first_failure.get_or_insert(e);
            }
        }
        first_failure.map_or(Ok(()), Err)
    }

    /// The taken events go back to the head of the channel, in order.
    fn rollback(&self, taken: Taken);

    /// Wakes every take waiting for events, which looks again at what it waits for.
    fn wake_takers(&self) {}

    fn counters(&self) -> &ChannelCounters;

    fn stats(&self) -> ChannelStats;

    fn transaction_capacity(&self) -> usize;

    /// The bytes `event` takes of a put transaction's byte allowance
    /// ([`Channel::transaction_byte_limit`]), or why this channel could never store it, not
    /// even alone in an empty channel.
    fn storable_size(&self, event: &Event) -> Result<u64, String> {
        let _ = event;
        Ok(0)
    }

    /// The most bytes (as [`Channel::storable_size`] counts them) one put transaction may hold:
    /// a larger one is refused as [`ChannelError::Unstorable`]. None: no such limit.
    fn transaction_byte_limit(&self) -> Option<u64> {
        None
    }
}

/// What `weir agent --check` reports of a channel beyond its keys: the Kafka channel's clients
/// are created as at start, so a property librdkafka refuses fails the check. Returns notes.
pub fn check(config: &ChannelConfig) -> anyhow::Result<Vec<String>> {
    match &config.kind {
        #[cfg(feature = "kafka")]
        ChannelKind::Kafka(k) => kafka::check(&config.name, k),
        #[cfg(not(feature = "kafka"))]
        ChannelKind::Kafka(_) => anyhow::bail!(
            "channel {}: this weir was built without the `kafka` feature \
             (cargo build --features kafka)",
            config.name
        ),
        _ => Ok(Vec::new()),
    }
}

/// Rejects a transaction larger than the channel allows (Flume's `transactionCapacity`).
fn check_transaction(channel: &str, size: usize, limit: usize) -> Result<(), ChannelError> {
    if size > limit {
        return Err(ChannelError::TransactionTooLarge {
            channel: channel.to_owned(),
            size,
            limit,
        });
    }
    Ok(())
}
