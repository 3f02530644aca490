//! Sinks deliver taken events somewhere; the [`SinkRunner`] drives one sink: take a batch,
//! deliver it, commit the take only if delivery succeeded, else roll back and back off
//! (exponentially, capped), so delivery is at-least-once. Sinks of a sink group are driven
//! cycle by cycle by their group instead ([`group`]).

pub mod avro;
mod committer;
pub mod file_roll;
pub mod group;
pub mod hdfs;
pub mod http;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod logger;
pub mod null;
pub mod serializer;
pub mod thrift;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::channel::{Channel, ChannelError, Taken};
use crate::config::{SinkConfig, SinkKind};
use crate::event::Event;
use crate::stop::{StopFlag, sleep_unless_stopped, stopping};
use committer::Committer;

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
    /// Failed takes from the channel (Flume's `ChannelReadFail`).
    pub channel_read_fail: AtomicU64,
    /// Connections to the destination opened, closed and failed to open (Flume's
    /// `ConnectionCreatedCount`, …), for the sinks that hold one (avro, thrift), which set
    /// `holds_connections`.
    pub holds_connections: std::sync::atomic::AtomicBool,
    pub connections_created: AtomicU64,
    pub connections_closed: AtomicU64,
    pub connections_failed: AtomicU64,
    /// The last error and when it happened (ms since the epoch, as Flume's `StartTime`): a
    /// monitor tells an old error from a current one by the time.
    pub last_error: parking_lot::Mutex<Option<(String, u64)>>,
    /// The Kafka sink's timer (see [`crate::kafka_metrics`]).
    pub kafka: crate::kafka_metrics::KafkaTimers,
}

impl SinkCounters {
    /// Counts a failed cycle (take, delivery or commit) and records its error as the last one.
    pub(crate) fn failed(&self, error: &dyn std::fmt::Display) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.record_error(format!("{error:#}"));
    }

    /// Counts the outcome of opening a connection to the destination.
    pub(crate) fn connection_opened<T, E>(&self, result: &Result<T, E>) {
        let counter = match result {
            Ok(_) => &self.connections_created,
            Err(_) => &self.connections_failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection closed, if `conn` held one, and leaves it empty.
    pub(crate) fn close_connection<T>(&self, conn: &mut Option<T>) {
        if conn.take().is_some() {
            self.connections_closed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records `text` as the sink's last error, as of now.
    pub(crate) fn record_error(&self, text: String) {
        *self.last_error.lock() = Some((text, crate::event::now_millis()));
    }
}

/// The connection of a sink holding one to an RPC target (avro, thrift), for [`Sink::ready`]:
/// `held`, unless it is older than the target's `reset-connection-interval`, else a new one
/// from `connect` (counted as created or failed). `opened` tells when a connection was opened,
/// and to which address.
pub(crate) fn keep_connected<C>(
    sink: &str,
    counters: &SinkCounters,
    target: &crate::config::RpcTarget,
    mut held: Option<C>,
    opened: impl Fn(&C) -> (Instant, std::net::SocketAddr),
    connect: impl FnOnce() -> anyhow::Result<C>,
) -> anyhow::Result<C> {
    if let (Some(c), Some(every)) = (held.as_ref(), target.reset_connection_interval) {
        let (at, peer) = opened(c);
        if at.elapsed() >= every {
            tracing::debug!(sink, %peer, "reset-connection-interval passed; reconnecting");
            counters.close_connection(&mut held);
        }
    }
    if let Some(c) = held {
        return Ok(c);
    }
    let new = connect();
    counters.connection_opened(&new);
    anyhow::Context::with_context(new, || {
        format!("sink {sink}: connecting to {}", target.address())
    })
}

/// Where a sink delivers to.
pub trait Sink: Send {
    /// Called before each take: a sink that needs its destination at hand (a connection)
    /// makes sure of it here. `Err` skips the cycle without touching the channel, as Flume's
    /// RPC sinks connect before they take: an outage counts as connection failures, not as
    /// batches taken and rolled back.
    fn ready(&mut self) -> anyhow::Result<()> {
        Ok(())
    }

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

    /// How many batches this sink can have on their way at once through [`Sink::start`] and
    /// [`Sink::finish`]. 1 (the default): the runner only calls [`Sink::deliver`].
    fn in_flight_batches(&self) -> usize {
        1
    }

    /// Starts delivering a batch without waiting for the destination. Each started batch is
    /// later passed, oldest first, to [`Sink::finish`].
    fn start(&mut self, events: &[(u64, Event)]) -> anyhow::Result<()> {
        self.deliver(events)
    }

    /// Waits until the oldest started batch is safely at the destination (`Ok`: its take is
    /// committed) or has failed (`Err`: it and every later started batch are rolled back).
    fn finish(&mut self, events: &[(u64, Event)]) -> anyhow::Result<()> {
        let _ = events;
        Ok(())
    }

    /// Forgets every started batch: the runner rolls them back to be sent again.
    fn abandon(&mut self) {}
}

/// Builds the sink a config describes. `stop` lets a sink that waits on a remote end (Kafka)
/// give up its batch promptly at shutdown; `counters` receives sink-specific counts.
pub fn build(
    config: &SinkConfig,
    stop: StopFlag,
    counters: Arc<SinkCounters>,
) -> anyhow::Result<Box<dyn Sink>> {
    Ok(match &config.kind {
        #[cfg(feature = "kafka")]
        SinkKind::Kafka(k) => Box::new(kafka::KafkaSink::new(
            &config.name,
            k.clone(),
            stop,
            counters,
        )?),
        #[cfg(not(feature = "kafka"))]
        SinkKind::Kafka(_) => {
            let _ = (stop, counters);
            anyhow::bail!(
                "sink {}: this weir was built without the `kafka` feature \
                 (cargo build --features kafka)",
                config.name
            )
        }
        SinkKind::Logger { max_bytes_to_log } => {
            Box::new(logger::LoggerSink::new(&config.name, *max_bytes_to_log))
        }
        SinkKind::Null => Box::new(null::NullSink),
        SinkKind::FileRoll(c) => Box::new(file_roll::FileRollSink::new(&config.name, c.clone())?),
        SinkKind::Avro(c) => Box::new(avro::AvroSink::new(&config.name, c.clone(), stop, counters)),
        SinkKind::Thrift(c) => Box::new(thrift::ThriftSink::new(
            &config.name,
            c.clone(),
            stop,
            counters,
        )),
        SinkKind::Http(c) => Box::new(http::HttpSink::new(&config.name, c.clone(), stop, counters)),
        SinkKind::Hdfs(c) => Box::new(hdfs::HdfsSink::new(&config.name, c.clone())?),
    })
}

/// Checks what only building the sink can check (`weir agent --check`), without sending
/// anything; returns notes for the user.
pub fn check(config: &SinkConfig) -> anyhow::Result<Vec<String>> {
    match &config.kind {
        #[cfg(feature = "kafka")]
        SinkKind::Kafka(k) => kafka::check(&config.name, k),
        #[cfg(not(feature = "kafka"))]
        SinkKind::Kafka(_) => anyhow::bail!(
            "sink {}: this weir was built without the `kafka` feature \
             (cargo build --features kafka)",
            config.name
        ),
        SinkKind::Hdfs(c) => hdfs::check(&config.name, c),
        _ => Ok(Vec::new()),
    }
}

/// An event of a batch handed to [`Sink::deliver`], with its channel offset.
type Delivered = (u64, Event);

/// Checks, for a batch over the `limit` of bytes one call of an RPC sink may carry (`reads`
/// says who reads no more), that each of its events fits in a call of its own (`call_bytes`
/// measures the call that would carry the events given). One that does not can never be sent:
/// the batch fails before any part of it is sent, since parts sent before a failure would be
/// sent again at every retry.
pub(crate) fn each_fits(
    events: &[Delivered],
    limit: usize,
    reads: &str,
    call_bytes: impl Fn(&[Delivered]) -> usize,
) -> anyhow::Result<()> {
    for one in events.chunks(1) {
        let bytes = call_bytes(one);
        if bytes > limit {
            anyhow::bail!(
                "the event at channel offset {} takes {bytes} bytes, over the {limit} {reads}: \
                 it can never be sent, and stays in the channel (nothing of its batch was sent)",
                one[0].0
            );
        }
    }
    Ok(())
}

/// The halves of a batch that takes `bytes`, over the `limit` one call of an RPC sink may
/// carry, to be sent one after the other ([`each_fits`] has checked that every event fits).
pub(crate) fn halves<'a>(
    sink: &str,
    events: &'a [Delivered],
    bytes: usize,
    limit: usize,
) -> anyhow::Result<(&'a [Delivered], &'a [Delivered])> {
    anyhow::ensure!(
        events.len() > 1,
        "an event of {bytes} bytes is over the {limit} one call may carry"
    );
    tracing::debug!(
        sink,
        events = events.len(),
        bytes,
        limit,
        "batch over one call's limit; sending it in halves"
    );
    Ok(events.split_at(events.len() / 2))
}

/// Counts into `counters` one call of an RPC sink carrying `n` events, which the `kind` source
/// answered with `answer`; Ok only when it answered `ok` (Flume's `Status.OK`).
pub(crate) fn answered<S: std::fmt::Debug + PartialEq>(
    counters: &SinkCounters,
    n: usize,
    kind: &str,
    ok: S,
    answer: anyhow::Result<S>,
) -> anyhow::Result<()> {
    counters.sent.fetch_add(n as u64, Ordering::Relaxed);
    match answer? {
        status if status == ok => {
            counters.acked.fetch_add(n as u64, Ordering::Relaxed);
            Ok(())
        }
        status => Err(anyhow::anyhow!(
            "the {kind} source answered {status:?} for a batch of {n} events"
        )),
    }
}

/// Backoff after a failed delivery: doubles from `BACKOFF_START` up to `BACKOFF_MAX`, reset by a
/// success.
pub(crate) const BACKOFF_START: Duration = Duration::from_millis(100);
pub(crate) const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long a take waits for events before the runner calls `idle` (a sink's timed work: a
/// roll interval, client callbacks), and so how often an idle sink wakes. The agent's stop ends
/// the wait at once ([`SinkRunner::wake_at_stop`]). Flume's sink runner sleeps up to 5 s when idle.
const POLL: Duration = Duration::from_secs(1);

/// A run of failed cycles (a broker or downstream agent away), so that an outage of hours is
/// logged as its first failures, a line a minute, and its end, rather than a line per retry
/// (one every 5 s at the longest backoff).
pub(crate) struct Outage {
    since: Instant,
    /// The sink's delivered-events count when the outage began: it ends once that grows (a
    /// pipelined sink's cycle can succeed by starting a batch that then fails).
    delivered: u64,
    failures: u64,
    last_logged: Instant,
    unlogged: u64,
}

impl Outage {
    /// Failures logged one by one at the start of an outage.
    const LOGGED_IN_FULL: u64 = 3;
    /// Then one line per this long.
    const LOG_EVERY: Duration = Duration::from_secs(60);

    /// Counts a failure into `outage` (starting one); returns whether to log it, and how many
    /// failures before it were not logged.
    pub(crate) fn failed(outage: &mut Option<Outage>, now: Instant, delivered: u64) -> Option<u64> {
        let o = outage.get_or_insert(Outage {
            since: now,
            delivered,
            failures: 0,
            last_logged: now,
            unlogged: 0,
        });
        o.failures += 1;
        if o.failures <= Self::LOGGED_IN_FULL
            || now.duration_since(o.last_logged) >= Self::LOG_EVERY
        {
            o.last_logged = now;
            Some(std::mem::take(&mut o.unlogged))
        } else {
            o.unlogged += 1;
            None
        }
    }

    /// Ends `outage` if there is one and events were delivered since it began (`delivered`
    /// is the count now): how many cycles failed, over how many seconds.
    pub(crate) fn ended(outage: &mut Option<Outage>, delivered: u64) -> Option<(u64, u64)> {
        if outage.as_ref()?.delivered >= delivered {
            return None;
        }
        outage
            .take()
            .map(|o| (o.failures, o.since.elapsed().as_secs()))
    }

    /// Says, after a failure's log line, how many failures before it were not logged.
    pub(crate) fn unlogged_note(unlogged: u64) -> String {
        if unlogged == 0 {
            String::new()
        } else {
            format!(" ({unlogged} failures since the last line were not logged)")
        }
    }
}

/// What one take–deliver–commit cycle did (Flume's `Sink.Status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// A batch was delivered and its take committed.
    Ready,
    /// Nothing came to take within the poll interval, so the cycle already waited.
    Backoff,
}

/// Why a cycle failed. Nothing is lost: a failed delivery was rolled back, and events whose
/// commit failed stay unacknowledged until a later commit covers them (or are delivered again
/// after a restart).
#[derive(Debug)]
pub enum CycleError {
    /// The sink could not get ready ([`Sink::ready`]); nothing was taken.
    Unready(anyhow::Error),
    Take(ChannelError),
    Deliver(anyhow::Error),
    Commit(ChannelError),
}

impl std::fmt::Display for CycleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CycleError::Unready(e) => write!(f, "not ready; nothing taken: {e:#}"),
            CycleError::Take(e) => write!(f, "take failed: {e}"),
            CycleError::Deliver(e) => write!(f, "delivery failed; rolled back: {e:#}"),
            CycleError::Commit(e) => write!(
                f,
                "commit of delivered events failed; they are delivered again unless a later commit covers them: {e}"
            ),
        }
    }
}

impl CycleError {
    /// Logs the failure of sink `sink` the way a lone sink's runner always has; `retry` is
    /// when the next attempt comes, `None` when none follows in this process (a stop).
    fn log(&self, sink: &str, retry: Option<Duration>, unlogged: u64) {
        let retry_in_ms = retry.map(|r| r.as_millis() as u64);
        let note = Outage::unlogged_note(unlogged);
        match self {
            CycleError::Unready(e) => {
                tracing::warn!(sink, error = %format!("{e:#}"), retry_in_ms, "not ready; nothing taken{note}")
            }
            CycleError::Take(e) => {
                tracing::error!(sink, error = %e, retry_in_ms, "take failed{note}")
            }
            CycleError::Deliver(e) => {
                tracing::warn!(sink, error = %format!("{e:#}"), retry_in_ms, "delivery failed; rolled back{note}")
            }
            CycleError::Commit(e) => {
                tracing::error!(sink, error = %e, retry_in_ms, "commit of delivered events failed; they are delivered again unless a later commit covers them{note}")
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
    /// The agent's stop, which also ends a take waiting in an empty channel.
    pub stop: StopFlag,
}

impl SinkRunner {
    /// Runs until the stop is set. The batch being delivered when the stop comes is finished
    /// and committed (or rolled back) first.
    pub fn run(mut self) {
        self.wake_at_stop();
        let stop = self.stop.clone();
        let depth = self.sink.in_flight_batches();
        if depth > 1 {
            return self.run_pipelined(stop, depth);
        }
        let name = self.name.clone();
        let counters = self.counters.clone();
        cycle_until_stopped(&name, &stop, &counters, || self.process());
        self.close();
    }

    /// One cycle: take up to a batch (waiting up to the poll interval), deliver it, commit the
    /// take, or roll it back if delivery failed. Counts into the sink's counters; the caller
    /// decides how to back off (alone, or as one sink of a group).
    pub fn process(&mut self) -> Result<Status, CycleError> {
        let c = &self.counters;
        if let Err(e) = contained(|| self.sink.ready()) {
            c.failed(&e);
            return Err(CycleError::Unready(e));
        }
        let taken = match self
            .channel
            .take_waiting(self.batch_size, POLL, Some(&self.stop))
        {
            Ok(t) => t,
            Err(e) => {
                c.failed(&e);
                c.channel_read_fail.fetch_add(1, Ordering::Relaxed);
                return Err(CycleError::Take(e));
            }
        };
        if taken.is_empty() {
            c.batch_empty.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = contained(|| self.sink.idle()) {
                tracing::warn!(sink = %self.name, error = %format!("{e:#}"), "idle work failed");
            }
            return Ok(Status::Backoff);
        }
        let n = taken.len();
        c.drain_attempt.fetch_add(n as u64, Ordering::Relaxed);
        match contained(|| self.sink.deliver(&taken.events)) {
            Ok(()) => self.commit_delivered(taken),
            Err(e) => {
                self.channel.rollback(taken);
                c.failed(&e);
                c.rollbacks.fetch_add(1, Ordering::Relaxed);
                Err(CycleError::Deliver(e))
            }
        }
    }

    /// Has the stop wake this runner's take when it waits in an empty channel, so that a long
    /// wait ([`POLL`]) does not delay the stop.
    pub fn wake_at_stop(&self) {
        let channel = self.channel.clone();
        self.stop.on_set(move || channel.wake_takers());
    }

    /// Commits the take of a delivered batch and counts it.
    fn commit_delivered(&self, taken: Taken) -> Result<Status, CycleError> {
        commit_delivered(&*self.channel, &self.counters, self.batch_size, vec![taken])
            .map(|()| Status::Ready)
            .map_err(CycleError::Commit)
    }

    /// [`SinkRunner::run`] for a sink that keeps up to `depth` batches on their way: while the
    /// oldest waits for the destination, the next ones are taken and started, so the
    /// destination is not left idle between batches. A delivered batch's take is committed by
    /// a [`Committer`] thread, in delivery order, while the runner goes on; the batch counts as
    /// on its way until its commit is done. A failure rolls back every batch not yet
    /// delivered. The channel's checkpoint never passes the oldest uncommitted batch, so a
    /// crash resends at most the `depth` batches that were on their way.
    fn run_pipelined(mut self, stop: StopFlag, depth: usize) {
        let committer = match Committer::start(
            &self.name,
            self.channel.clone(),
            self.counters.clone(),
            self.batch_size,
        ) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(sink = %self.name, error = %e, "cannot start a commit thread; delivering one batch at a time");
                let name = self.name.clone();
                let counters = self.counters.clone();
                cycle_until_stopped(&name, &stop, &counters, || self.process());
                return self.close();
            }
        };
        let mut on_way: VecDeque<Taken> = VecDeque::new();
        let name = self.name.clone();
        let counters = self.counters.clone();
        cycle_until_stopped(&name, &stop, &counters, || {
            self.step_pipelined(&mut on_way, &committer, depth)
        });
        // Settle what is on its way: the sink gives up soon once stopping (the Kafka sink after
        // a short grace for reports already coming), and whatever it could not confirm is
        // rolled back (and sent again after a restart). What it confirmed
        // is committed before the sink closes.
        while let Some(taken) = on_way.pop_front() {
            if let Err(e) = self.finish_oldest(taken, &mut on_way, &committer) {
                e.log(&self.name, None, 0);
            }
        }
        if let Some(e) = committer.finish() {
            CycleError::Commit(e).log(&self.name, None, 0);
        }
        self.close();
    }

    /// Starts another batch if fewer than `depth` are on their way and the channel has one;
    /// otherwise waits for the oldest (or, if every batch on its way is delivered, for a
    /// commit).
    fn step_pipelined(
        &mut self,
        on_way: &mut VecDeque<Taken>,
        committer: &Committer,
        depth: usize,
    ) -> Result<Status, CycleError> {
        if let Some(e) = committer.take_failure() {
            return Err(CycleError::Commit(e));
        }
        let c = self.counters.clone();
        if on_way.len() + committer.pending() < depth {
            let wait = if on_way.is_empty() {
                POLL
            } else {
                Duration::ZERO
            };
            let taken = match self
                .channel
                .take_waiting(self.batch_size, wait, Some(&self.stop))
            {
                Ok(t) => Some(t),
                Err(e) => {
                    c.failed(&e);
                    c.channel_read_fail.fetch_add(1, Ordering::Relaxed);
                    if on_way.is_empty() {
                        return Err(CycleError::Take(e));
                    }
                    tracing::warn!(sink = %self.name, error = %e, "take failed; finishing the batches on their way first");
                    None
                }
            };
            match taken {
                Some(taken) if !taken.is_empty() => {
                    c.drain_attempt
                        .fetch_add(taken.len() as u64, Ordering::Relaxed);
                    if let Err(e) = contained(|| self.sink.start(&taken.events)) {
                        self.channel.rollback(taken);
                        c.rollbacks.fetch_add(1, Ordering::Relaxed);
                        self.abandon(on_way);
                        c.failed(&e);
                        return Err(CycleError::Deliver(e));
                    }
                    on_way.push_back(taken);
                    if on_way.len() + committer.pending() < depth {
                        return Ok(Status::Ready);
                    }
                }
                _ if on_way.is_empty() => {
                    c.batch_empty.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = contained(|| self.sink.idle()) {
                        tracing::warn!(sink = %self.name, error = %format!("{e:#}"), "idle work failed");
                    }
                    return Ok(Status::Backoff);
                }
                _ => {}
            }
        }
        match on_way.pop_front() {
            Some(oldest) => self.finish_oldest(oldest, on_way, committer),
            None => {
                committer.wait_for_one(POLL);
                Ok(Status::Backoff)
            }
        }
    }

    /// Waits for the oldest batch on its way and hands its take to the committer, or rolls
    /// back it and every later one.
    fn finish_oldest(
        &mut self,
        oldest: Taken,
        later: &mut VecDeque<Taken>,
        committer: &Committer,
    ) -> Result<Status, CycleError> {
        match contained(|| self.sink.finish(&oldest.events)) {
            Ok(()) => {
                committer.hand_over(oldest);
                Ok(Status::Ready)
            }
            Err(e) => {
                self.channel.rollback(oldest);
                self.counters.rollbacks.fetch_add(1, Ordering::Relaxed);
                self.abandon(later);
                self.counters.failed(&e);
                Err(CycleError::Deliver(e))
            }
        }
    }

    /// The sink forgets the batches on their way and their takes roll back.
    fn abandon(&mut self, on_way: &mut VecDeque<Taken>) {
        // Called right after a failure, maybe a contained panic: the batches roll back whatever
        // the sink does.
        if let Err(e) = contained(|| {
            self.sink.abandon();
            Ok(())
        }) {
            tracing::error!(sink = %self.name, error = %format!("{e:#}"), "abandoning the batches on their way failed");
        }
        while let Some(t) = on_way.pop_back() {
            self.channel.rollback(t);
            self.counters.rollbacks.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Closes the sink, after its last cycle.
    pub fn close(&mut self) {
        if let Err(e) = contained(|| self.sink.close()) {
            tracing::error!(sink = %self.name, error = %format!("{e:#}"), "close failed");
        }
    }
}

/// Runs one call into a sink, turning a panic into an error of that call. A panic is a bug, in
/// weir or a library under it; contained this way it costs one failed delivery, which the
/// runner rolls back and retries (or a failover group hands to its next sink), as Flume's
/// runner treats an exception, instead of ending the sink's thread with its batch neither
/// committed nor rolled back while the agent runs on without it. The panic's own message and
/// location still go to stderr first.
fn contained<T>(call: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("a panic without a message");
        Err(anyhow::anyhow!("the sink panicked (a bug): {what}"))
    })
}

/// Runs `cycle` until `stop` is set, backing off after each failed cycle (doubling from
/// [`BACKOFF_START`] up to [`BACKOFF_MAX`]) and starting over after a delivered one.
fn cycle_until_stopped(
    sink: &str,
    stop: &StopFlag,
    counters: &SinkCounters,
    mut cycle: impl FnMut() -> Result<Status, CycleError>,
) {
    let mut backoff = BACKOFF_START;
    let mut outage = None;
    let delivered = || counters.drain_success.load(Ordering::Relaxed);
    while !stopping(stop) {
        let result = cycle();
        // Only during an outage: no counter read per cycle otherwise.
        if outage.is_some()
            && result.is_ok()
            && let Some((failures, seconds)) = Outage::ended(&mut outage, delivered())
        {
            tracing::info!(
                sink,
                failures,
                seconds,
                "delivering again, after {failures} failed attempts (the first failed {seconds} s ago)"
            );
        }
        match result {
            // A cycle that only took and sent a batch is ready too, while its batches are in
            // flight (the Kafka sink): the backoff starts again only once one got through, or
            // a batch failing for good was sent again ten times a second, each time
            // duplicating the records of it the broker had acknowledged (audit 25).
            Ok(Status::Ready) => {
                if backoff != BACKOFF_START && outage.is_none() {
                    backoff = BACKOFF_START;
                }
            }
            Ok(Status::Backoff) => {}
            Err(e) => {
                if let Some(unlogged) = Outage::failed(&mut outage, Instant::now(), delivered()) {
                    e.log(sink, (!stopping(stop)).then_some(backoff), unlogged);
                }
                sleep_unless_stopped(backoff, stop);
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// Commits the takes of delivered batches (with one checkpoint, for the file channel) and
/// counts them into the sink's counters.
fn commit_delivered(
    channel: &dyn Channel,
    c: &SinkCounters,
    batch_size: usize,
    takes: Vec<Taken>,
) -> Result<(), ChannelError> {
    let sizes: Vec<usize> = takes.iter().map(Taken::len).collect();
    match channel.commit_all(takes) {
        Ok(()) => {
            for n in sizes {
                c.drain_success.fetch_add(n as u64, Ordering::Relaxed);
                let counter = if n == batch_size {
                    &c.batch_complete
                } else {
                    &c.batch_underflow
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }
        Err(e) => {
            // Delivered but not recorded: these events will be delivered again.
            c.failed(&e);
            Err(e)
        }
    }
}

/// What the tests of the RPC sinks (avro, thrift) share: a scripted server for either protocol
/// and the checks both sinks must pass, each sink's tests giving how to make one.
#[cfg(test)]
pub(crate) mod rpc_test_rig {
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::thread::JoinHandle;

    use super::*;
    use crate::config::RpcTarget;

    /// What a scripted server does with one call.
    #[derive(Clone, Copy, Debug)]
    pub enum Script {
        Ok,
        Failed,
        /// No reply at all: the connection stays open, so the client has to time out.
        Silent,
    }

    /// The server side of one RPC protocol, as [`scripted_server`] drives it.
    pub trait ServerSide: Send + 'static {
        /// What a connection remembers between calls (Avro: its handshake).
        type Conn: Default;
        /// One call as read off the wire.
        type Call;
        /// The next call of a connection; `None` once the client closed it or sent garbage.
        fn read_call(stream: &mut TcpStream) -> Option<Self::Call>;
        /// The reply to `call`, answered `OK` if `ok`, else `FAILED`, and the bodies it
        /// carried.
        fn answer(
            &self,
            conn: &mut Self::Conn,
            call: Self::Call,
            ok: bool,
        ) -> (Vec<u8>, Vec<String>);
    }

    /// The calls a scripted server answered: connection number (from 0) and bodies.
    pub type Calls = Vec<(usize, Vec<String>)>;

    /// A server answering each call of each connection with the next step of `script`,
    /// recording the calls it answered. It stops after the last step.
    pub fn scripted_server<S: ServerSide>(
        side: S,
        script: Vec<Script>,
    ) -> (u16, JoinHandle<Calls>) {
        scripted_server_on(TcpListener::bind("127.0.0.1:0").unwrap(), side, script)
    }

    /// [`scripted_server`] on `listener`.
    pub fn scripted_server_on<S: ServerSide>(
        listener: TcpListener,
        side: S,
        script: Vec<Script>,
    ) -> (u16, JoinHandle<Calls>) {
        let port = listener.local_addr().unwrap().port();
        let thread = std::thread::spawn(move || {
            let mut script = script.into_iter();
            let mut got = Vec::new();
            let mut silent = Vec::new();
            'conns: for (n, stream) in listener.incoming().enumerate() {
                let mut stream = stream.unwrap();
                let mut conn = S::Conn::default();
                while let Some(call) = S::read_call(&mut stream) {
                    let ok = match script.next() {
                        None => break 'conns,
                        Some(Script::Silent) => {
                            silent.push(stream);
                            continue 'conns;
                        }
                        Some(step) => matches!(step, Script::Ok),
                    };
                    let (reply, bodies) = side.answer(&mut conn, call, ok);
                    got.push((n, bodies));
                    stream.write_all(&reply).unwrap();
                    if script.len() == 0 {
                        break 'conns;
                    }
                }
            }
            drop(silent);
            got
        });
        (port, thread)
    }

    /// A target on this host's `port`.
    pub fn target(port: u16, request_timeout: Duration) -> RpcTarget {
        RpcTarget {
            hostname: "127.0.0.1".into(),
            port,
            connect_timeout: Duration::from_secs(5),
            request_timeout,
            reset_connection_interval: None,
            tls: None,
        }
    }

    /// A stop flag that stays down.
    pub fn running() -> StopFlag {
        crate::stop::Stop::new()
    }

    /// Events with these bodies, at channel offsets 0, 1, …
    pub fn batch(bodies: &[&str]) -> Vec<(u64, Event)> {
        bodies
            .iter()
            .enumerate()
            .map(|(i, b)| (i as u64, Event::new(b.to_string())))
            .collect()
    }

    fn bodies(b: &[&str]) -> Vec<String> {
        b.iter().map(|s| s.to_string()).collect()
    }

    /// `OK` delivers; `FAILED` and no reply within the request timeout fail the delivery, and
    /// the next one goes over a new connection (with a new handshake, for Avro).
    pub fn ok_delivers_and_failed_or_silence_fail_the_delivery<S: Sink>(
        side: impl ServerSide,
        make: impl Fn(RpcTarget, Arc<SinkCounters>) -> S,
    ) {
        use Script::*;
        let (port, server) = scripted_server(side, vec![Ok, Ok, Failed, Silent, Ok]);
        let counters = Arc::new(SinkCounters::default());
        let mut sink = make(target(port, Duration::from_millis(500)), counters.clone());
        sink.deliver(&batch(&["a", "b"])).unwrap();
        sink.deliver(&batch(&["b2"])).unwrap();
        let err = format!("{:#}", sink.deliver(&batch(&["c"])).unwrap_err());
        assert!(err.contains("Failed"), "{err}");
        let err = format!("{:#}", sink.deliver(&batch(&["d"])).unwrap_err());
        assert!(err.contains("no reply"), "{err}");
        sink.deliver(&batch(&["e"])).unwrap();
        assert_eq!(
            server.join().unwrap(),
            [
                (0, bodies(&["a", "b"])),
                (0, bodies(&["b2"])),
                (0, bodies(&["c"])),
                (2, bodies(&["e"])),
            ]
        );
        assert_eq!(counters.sent.load(Ordering::Relaxed), 6);
        assert_eq!(counters.acked.load(Ordering::Relaxed), 4);
        // Flume's connection counters: the first, then the two after a failure; the two the
        // failures ended were closed.
        assert!(counters.holds_connections.load(Ordering::Relaxed));
        assert_eq!(counters.connections_created.load(Ordering::Relaxed), 3);
        assert_eq!(counters.connections_closed.load(Ordering::Relaxed), 2);
        assert_eq!(counters.connections_failed.load(Ordering::Relaxed), 0);
    }

    /// With the sink's call limit set by `limit_to_two_events` to what two short events take: a
    /// batch holding an event over the limit fails before any of it is sent (what was sent
    /// before the failure would be sent again at every retry), and a batch of five goes in
    /// halves.
    pub fn a_batch_over_one_calls_limit_goes_in_halves_and_a_lone_event_over_it_fails<S: Sink>(
        side: impl ServerSide,
        make: impl Fn(RpcTarget, Arc<SinkCounters>) -> S,
        limit_to_two_events: impl FnOnce(&mut S, &[(u64, Event)]) -> usize,
    ) {
        const FIVE: [&str; 5] = ["a1", "b2", "c3", "d4", "e5"];
        let (port, server) = scripted_server(side, vec![Script::Ok; 3]);
        let counters = Arc::new(SinkCounters::default());
        let mut sink = make(target(port, Duration::from_secs(5)), counters.clone());
        let limit = limit_to_two_events(&mut sink, &batch(&FIVE[..2]));
        let big = "x".repeat(limit);
        let err = format!(
            "{:#}",
            sink.deliver(&batch(&["z0", &big, "z2"])).unwrap_err()
        );
        assert!(
            err.contains("the event at channel offset 1 takes")
                && err.contains("it can never be sent, and stays in the channel"),
            "{err}"
        );
        sink.deliver(&batch(&FIVE)).unwrap();
        assert_eq!(counters.sent.load(Ordering::Relaxed), 5);
        assert_eq!(counters.acked.load(Ordering::Relaxed), 5);
        assert_eq!(
            server.join().unwrap(),
            [
                (0, bodies(&["a1", "b2"])),
                (0, bodies(&["c3"])),
                (0, bodies(&["d4", "e5"])),
            ]
        );
    }

    /// `reset-connection-interval`: a batch past it goes over a new connection.
    pub fn reset_connection_interval_makes_a_new_connection<S: Sink>(
        side: impl ServerSide,
        make: impl Fn(RpcTarget, Arc<SinkCounters>) -> S,
    ) {
        let (port, server) = scripted_server(side, vec![Script::Ok; 2]);
        let mut target = target(port, Duration::from_secs(5));
        // Zero: every batch is past the interval.
        target.reset_connection_interval = Some(Duration::ZERO);
        let mut sink = make(target, Arc::new(SinkCounters::default()));
        sink.deliver(&batch(&["a"])).unwrap();
        sink.deliver(&batch(&["b"])).unwrap();
        let conns: Vec<usize> = server.join().unwrap().into_iter().map(|c| c.0).collect();
        assert_eq!(conns, [0, 1]);
    }

    /// A target nobody listens on fails the delivery with an error naming it.
    pub fn nobody_listening_is_an_error_naming_the_target<S: Sink>(
        make: impl Fn(RpcTarget, Arc<SinkCounters>) -> S,
    ) {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let counters = Arc::new(SinkCounters::default());
        let mut sink = make(target(port, Duration::from_secs(1)), counters.clone());
        let err = format!("{:#}", sink.deliver(&batch(&["a"])).unwrap_err());
        assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
        assert_eq!(counters.connections_failed.load(Ordering::Relaxed), 1);
        assert_eq!(counters.connections_created.load(Ordering::Relaxed), 0);
    }

    /// A target that never completes the connection (its accept queue is full, so the kernel
    /// drops the attempts) holds a connect for its whole `connect-timeout`; the agent's stop
    /// ends the wait at once, so that a stop or a reload does not hang on it.
    pub fn a_stop_ends_a_connect_the_target_never_answers<S: Sink + 'static>(
        make: impl Fn(RpcTarget, StopFlag, Arc<SinkCounters>) -> S,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // Fill the accept queue: once full, further attempts hang.
        let mut held = Vec::new();
        while let Ok(s) = TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_millis(300),
        ) {
            held.push(s);
            assert!(held.len() < 10_000, "the accept queue never filled");
        }
        let mut t = target(port, Duration::from_secs(5));
        t.connect_timeout = Duration::from_secs(60);
        let stop: StopFlag = crate::stop::Stop::new();
        let counters = Arc::new(SinkCounters::default());
        let mut sink = make(t, stop.clone(), counters.clone());
        let setter = crate::stop::set_later(&stop, Duration::from_millis(300));
        let started = std::time::Instant::now();
        let err = format!("{:#}", sink.ready().unwrap_err());
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the stop waited {:?} for the connect",
            started.elapsed()
        );
        assert!(err.contains("stopping"), "{err}");
        setter.join().unwrap();
        drop((held, listener));
    }

    /// While the target is unreachable the runner takes nothing (Flume's RPC sinks connect
    /// before they take): the channel sees no take and no rollback, and the outage counts as
    /// connection failures, not drain attempts. Once the target listens, the events go.
    pub fn an_unreachable_target_leaves_the_channel_alone<S: Sink + 'static, V: ServerSide>(
        server: V,
        make: impl Fn(RpcTarget, Arc<SinkCounters>) -> S,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let channel: Arc<dyn Channel> = Arc::new(crate::channel::memory::MemoryChannel::new(
            "c1",
            &crate::config::MemoryChannelConfig {
                capacity: 100,
                transaction_capacity: 100,
                keep_alive: Duration::ZERO,
                byte_capacity: None,
            },
        ));
        channel
            .put(batch(&["a", "b"]).into_iter().map(|(_, e)| e).collect())
            .unwrap();
        let counters = Arc::new(SinkCounters::default());
        let mut runner = SinkRunner {
            name: "k1".into(),
            sink: Box::new(make(target(port, Duration::from_secs(5)), counters.clone())),
            channel: channel.clone(),
            batch_size: 10,
            counters: counters.clone(),
            stop: crate::stop::Stop::new(),
        };
        for _ in 0..3 {
            let Err(CycleError::Unready(e)) = runner.process() else {
                panic!("a cycle with the target away must fail before the take");
            };
            assert!(
                format!("{e:#}").contains(&format!("127.0.0.1:{port}")),
                "{e:#}"
            );
        }
        assert_eq!(counters.connections_failed.load(Ordering::Relaxed), 3);
        assert_eq!(counters.drain_attempt.load(Ordering::Relaxed), 0);
        assert_eq!(counters.failures.load(Ordering::Relaxed), 3);
        let c = channel.counters();
        assert_eq!(c.take_attempt.load(Ordering::Relaxed), 0);
        assert_eq!(c.rollbacks.load(Ordering::Relaxed), 0);
        assert_eq!(channel.stats().size, 2);

        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let (_, calls) = scripted_server_on(listener, server, vec![Script::Ok]);
        assert_eq!(runner.process().unwrap(), Status::Ready);
        assert_eq!(calls.join().unwrap(), [(0, bodies(&["a", "b"]))]);
        assert_eq!(counters.connections_created.load(Ordering::Relaxed), 1);
        assert_eq!(counters.drain_success.load(Ordering::Relaxed), 2);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use parking_lot::Mutex;

    use super::*;
    use crate::channel::memory::MemoryChannel;
    use crate::config::MemoryChannelConfig;

    /// A sink keeping `depth` batches on their way, whose `finish` fails, or panics, on chosen
    /// calls.
    struct Pipelined {
        depth: usize,
        on_way: VecDeque<Vec<String>>,
        finishes: usize,
        fail_at: Vec<usize>,
        panic_at: Vec<usize>,
        delivered: Arc<Mutex<Vec<String>>>,
        most_on_way: Arc<Mutex<usize>>,
    }

    impl Sink for Pipelined {
        fn deliver(&mut self, _: &[(u64, Event)]) -> anyhow::Result<()> {
            anyhow::bail!("a pipelined sink is driven through start and finish")
        }
        fn in_flight_batches(&self) -> usize {
            self.depth
        }
        fn start(&mut self, events: &[(u64, Event)]) -> anyhow::Result<()> {
            let bodies = events
                .iter()
                .map(|(_, e)| String::from_utf8_lossy(&e.body).into_owned())
                .collect();
            self.on_way.push_back(bodies);
            let mut most = self.most_on_way.lock();
            *most = (*most).max(self.on_way.len());
            Ok(())
        }
        fn finish(&mut self, events: &[(u64, Event)]) -> anyhow::Result<()> {
            let batch = self.on_way.pop_front().expect("a started batch");
            assert_eq!(batch.len(), events.len(), "finish gets the oldest batch");
            self.finishes += 1;
            if self.fail_at.contains(&self.finishes) {
                anyhow::bail!("refused");
            }
            if self.panic_at.contains(&self.finishes) {
                panic!("finish number {}", self.finishes);
            }
            self.delivered.lock().extend(batch);
            Ok(())
        }
        fn abandon(&mut self) {
            self.on_way.clear();
        }
    }

    /// A batch failing for good behind batches in flight: the cycles that start it again are
    /// ready, but the backoff keeps doubling until something is delivered, and only then starts
    /// over (audit 25: it was sent again ten times a second, each time duplicating its records
    /// the broker had acknowledged).
    #[test]
    fn the_backoff_starts_over_only_once_something_is_delivered() {
        let stop: StopFlag = crate::stop::Stop::new();
        let counters = SinkCounters::default();
        let mut failed_at = Vec::new();
        let mut calls = 0;
        let setter = crate::stop::set_later(&stop, Duration::from_millis(1600));
        cycle_until_stopped("k", &stop, &counters, || {
            calls += 1;
            if calls % 2 == 1 {
                return Ok(Status::Ready);
            }
            failed_at.push(Instant::now());
            Err(CycleError::Deliver(anyhow::anyhow!("refused")))
        });
        setter.join().unwrap();
        // Backoffs of 100, 200, 400 and 800 ms fit 5 failures at most into 1.6 s; at 100 ms
        // each, there were 14.
        assert!((3..=5).contains(&failed_at.len()), "{failed_at:?}");

        // Three failures (backoffs 100, 200, 400 ms), a delivery, then failures again: the one
        // after the delivery waits 100 ms, not 800.
        let stop: StopFlag = crate::stop::Stop::new();
        let mut failed_at = Vec::new();
        let mut calls = 0;
        cycle_until_stopped("k", &stop, &counters, || {
            calls += 1;
            if calls == 4 {
                counters.drain_success.fetch_add(1, Ordering::Relaxed);
                return Ok(Status::Ready);
            }
            failed_at.push(Instant::now());
            if calls == 6 {
                stop.set();
            }
            Err(CycleError::Deliver(anyhow::anyhow!("refused")))
        });
        assert_eq!(failed_at.len(), 5);
        let waits: Vec<Duration> = failed_at.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(waits[2] >= Duration::from_millis(400), "{waits:?}");
        assert!(waits[3] < Duration::from_millis(600), "{waits:?}");
    }

    /// A memory channel taking transactions of up to 5 events.
    fn small_channel() -> MemoryChannel {
        MemoryChannel::new(
            "c",
            &MemoryChannelConfig {
                capacity: 1000,
                transaction_capacity: 5,
                keep_alive: Duration::from_millis(10),
                byte_capacity: None,
            },
        )
    }

    /// Puts events `e00`, `e01`, … (`n` of them) in transactions of 5; returns their bodies.
    fn fill(channel: &dyn Channel, n: usize) -> Vec<String> {
        let sent: Vec<String> = (0..n).map(|i| format!("e{i:02}")).collect();
        for chunk in sent.chunks(5) {
            channel
                .put(chunk.iter().map(|b| Event::new(b.clone())).collect())
                .unwrap();
        }
        sent
    }

    /// A runner of a [`Pipelined`] sink (3 batches of 5 on their way) on its own thread.
    struct Running {
        delivered: Arc<Mutex<Vec<String>>>,
        most_on_way: Arc<Mutex<usize>>,
        counters: Arc<SinkCounters>,
        stop: StopFlag,
        thread: std::thread::JoinHandle<()>,
    }

    impl Running {
        fn start(channel: Arc<dyn Channel>, fail_at: Vec<usize>, panic_at: Vec<usize>) -> Running {
            let delivered = Arc::new(Mutex::new(Vec::new()));
            let most_on_way = Arc::new(Mutex::new(0));
            let counters = Arc::new(SinkCounters::default());
            let runner = SinkRunner {
                name: "k".into(),
                sink: Box::new(Pipelined {
                    depth: 3,
                    on_way: VecDeque::new(),
                    finishes: 0,
                    fail_at,
                    panic_at,
                    delivered: delivered.clone(),
                    most_on_way: most_on_way.clone(),
                }),
                channel,
                batch_size: 5,
                counters: counters.clone(),
                stop: crate::stop::Stop::new(),
            };
            let stop = runner.stop.clone();
            let thread = std::thread::spawn(move || runner.run());
            Running {
                delivered,
                most_on_way,
                counters,
                stop,
                thread,
            }
        }

        /// Waits (up to 30 s) until `done` holds.
        fn wait_until(&self, done: impl Fn(&Running) -> bool) {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !done(self) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }

        fn stop(self) -> (Vec<String>, usize, Arc<SinkCounters>) {
            self.stop.set();
            self.thread.join().unwrap();
            let delivered = self.delivered.lock().clone();
            let most_on_way = *self.most_on_way.lock();
            (delivered, most_on_way, self.counters)
        }
    }

    #[test]
    fn an_outage_logs_its_first_failures_then_one_a_minute_and_ends_with_a_delivery() {
        let t0 = Instant::now();
        let mut outage = None;
        // Delivered-events count 40 when the outage starts.
        let mut logged = Vec::new();
        for i in 0..100u32 {
            // A failure every 5 s (the longest backoff): 500 s in all.
            let at = t0 + Duration::from_secs(5 * u64::from(i));
            if let Some(unlogged) = Outage::failed(&mut outage, at, 40) {
                logged.push((i, unlogged));
            }
        }
        // The first three, then one every 60 s saying how many were not logged.
        assert_eq!(&logged[..4], &[(0, 0), (1, 0), (2, 0), (14, 11)]);
        assert_eq!(logged.len(), 3 + 8);
        assert!(logged[4..].iter().all(|&(_, n)| n == 11));
        // A cycle that succeeds without delivering (a pipelined batch merely started) does
        // not end it; one after which more events were delivered does.
        assert_eq!(Outage::ended(&mut outage, 40), None);
        assert!(outage.is_some());
        assert_eq!(Outage::ended(&mut outage, 41).map(|(f, _)| f), Some(100));
        assert!(outage.is_none());
        assert_eq!(Outage::ended(&mut outage, 42), None);
    }

    #[test]
    fn pipelined_batches_commit_in_order_and_a_failure_resends_everything_on_its_way() {
        let channel: Arc<dyn Channel> = Arc::new(small_channel());
        let sent = fill(&*channel, 60);
        let running = Running::start(channel.clone(), vec![2, 5], vec![]);
        running.wait_until(|r| r.delivered.lock().len() >= sent.len());
        let (delivered, most_on_way, counters) = running.stop();
        // Each failure rolled back the failed batch and the ones behind it, and they came back
        // in order: what was delivered (and committed) is every event once, in order.
        assert_eq!(delivered, sent);
        assert_eq!(most_on_way, 3, "the sink kept three batches on their way");
        assert_eq!(channel.stats().size, 0, "every take was committed");
        assert_eq!(counters.drain_success.load(Ordering::Relaxed), 60);
        assert!(counters.rollbacks.load(Ordering::Relaxed) >= 2);
    }

    /// Delivers to `delivered`, but panics on its first call.
    struct PanicsOnce {
        calls: usize,
        delivered: Arc<Mutex<Vec<String>>>,
    }

    impl Sink for PanicsOnce {
        fn deliver(&mut self, events: &[(u64, Event)]) -> anyhow::Result<()> {
            self.calls += 1;
            if self.calls == 1 {
                panic!("boom");
            }
            let bodies = events.iter().map(|(_, e)| String::from_utf8_lossy(&e.body));
            self.delivered.lock().extend(bodies.map(|b| b.into_owned()));
            Ok(())
        }
    }

    #[test]
    fn a_sink_that_panics_fails_that_delivery_and_its_batch_comes_back() {
        let channel: Arc<dyn Channel> = Arc::new(small_channel());
        let sent = fill(&*channel, 10);
        let counters = Arc::new(SinkCounters::default());
        let delivered = Arc::new(Mutex::new(Vec::new()));
        let mut runner = SinkRunner {
            name: "k".into(),
            sink: Box::new(PanicsOnce {
                calls: 0,
                delivered: delivered.clone(),
            }),
            channel: channel.clone(),
            batch_size: 5,
            counters: counters.clone(),
            stop: crate::stop::Stop::new(),
        };
        let Err(CycleError::Deliver(e)) = runner.process() else {
            panic!("the panic must fail the delivery");
        };
        assert_eq!(e.to_string(), "the sink panicked (a bug): boom");
        // Every sink's LastError shows it, not only the Kafka sink's.
        let last = counters.last_error.lock().clone().map(|(text, _)| text);
        assert_eq!(last.as_deref(), Some("the sink panicked (a bug): boom"));
        assert_eq!(channel.stats().size, 10, "the batch was rolled back");
        assert_eq!(runner.process().unwrap(), Status::Ready);
        assert_eq!(runner.process().unwrap(), Status::Ready);
        assert_eq!(runner.process().unwrap(), Status::Backoff);
        assert_eq!(counters.rollbacks.load(Ordering::Relaxed), 1);
        assert_eq!(counters.drain_success.load(Ordering::Relaxed), 10);
        assert_eq!(*delivered.lock(), sent);
    }

    #[test]
    fn a_pipelined_sink_that_panics_resends_everything_on_its_way() {
        let channel: Arc<dyn Channel> = Arc::new(small_channel());
        let sent = fill(&*channel, 40);
        let running = Running::start(channel.clone(), vec![], vec![3]);
        running.wait_until(|r| r.delivered.lock().len() >= sent.len());
        let (delivered, _, counters) = running.stop();
        assert_eq!(delivered, sent);
        assert_eq!(channel.stats().size, 0, "every take was committed");
        assert!(counters.rollbacks.load(Ordering::Relaxed) >= 1);
    }

    /// A memory channel whose commits wait until the test opens a gate, and whose commit number
    /// `fail_commit` (counting from 1) fails with a storage error.
    struct GatedCommits {
        inner: MemoryChannel,
        open: Mutex<bool>,
        opened: parking_lot::Condvar,
        commits: Mutex<usize>,
        fail_commit: usize,
    }

    impl Channel for GatedCommits {
        fn name(&self) -> &str {
            self.inner.name()
        }
        fn keep_alive(&self) -> Duration {
            self.inner.keep_alive()
        }
        fn put_waiting(&self, events: Vec<Event>, wait: Duration) -> Result<(), ChannelError> {
            self.inner.put_waiting(events, wait)
        }
        fn take_waiting(
            &self,
            max: usize,
            wait: Duration,
            stop: Option<&crate::stop::Stop>,
        ) -> Result<Taken, ChannelError> {
            self.inner.take_waiting(max, wait, stop)
        }
        fn commit(&self, taken: Taken) -> Result<(), ChannelError> {
            let mut open = self.open.lock();
            while !*open {
                self.opened.wait(&mut open);
            }
            drop(open);
            let mut commits = self.commits.lock();
            *commits += 1;
            if *commits == self.fail_commit {
                return Err(ChannelError::Storage {
                    channel: "c".into(),
                    error: crate::wal::WalError::Poisoned("test".into()),
                });
            }
            self.inner.commit(taken)
        }
        fn rollback(&self, taken: Taken) {
            self.inner.rollback(taken)
        }
        fn counters(&self) -> &crate::channel::ChannelCounters {
            self.inner.counters()
        }
        fn stats(&self) -> crate::channel::ChannelStats {
            self.inner.stats()
        }
        fn transaction_capacity(&self) -> usize {
            self.inner.transaction_capacity()
        }
    }

    #[test]
    fn a_delivered_batch_is_on_its_way_until_its_take_is_committed() {
        let channel = Arc::new(GatedCommits {
            inner: small_channel(),
            open: Mutex::new(false),
            opened: parking_lot::Condvar::new(),
            commits: Mutex::new(0),
            fail_commit: 4,
        });
        let sent = fill(&*channel, 50);
        let running = Running::start(channel.clone(), vec![], vec![]);
        // With every commit held back, three batches are delivered and no fourth is started:
        // a crash now would resend at most the three.
        running.wait_until(|r| r.delivered.lock().len() >= 15);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            running.delivered.lock().len(),
            15,
            "three batches, then a wait"
        );
        let counters = running.counters.clone();
        assert_eq!(counters.drain_attempt.load(Ordering::Relaxed), 15);
        assert_eq!(counters.drain_success.load(Ordering::Relaxed), 0);

        *channel.open.lock() = true;
        channel.opened.notify_all();
        running.wait_until(|_| *channel.commits.lock() >= 10);
        let (delivered, _, counters) = running.stop();
        assert_eq!(delivered, sent, "every batch delivered once, in order");
        // The fourth commit failed: counted once, and the runner went on with the rest. Takes
        // handed over together are committed together, so the failure leaves one to three
        // batches uncounted.
        assert_eq!(counters.failures.load(Ordering::Relaxed), 1);
        let drained = counters.drain_success.load(Ordering::Relaxed);
        assert!(
            drained % 5 == 0 && (35..=45).contains(&drained),
            "{drained} events counted as drained"
        );
        assert_eq!(*channel.commits.lock(), 10, "every take was committed once");
    }
}
