//! Sources take data in and hand it to the [`ChannelProcessor`], which puts it into the source's
//! channels. A source acknowledges its client only after the processor returns, so
//! "acknowledged" always means "committed to every required channel".
//!
//! It also holds the TCP plumbing the network sources share (resolving the bind address,
//! listening, the thread-per-client accept loop), which the metrics endpoint uses too.

pub mod avro;
mod datagrams;
pub(crate) mod durable;
pub mod exec;
pub mod http;
mod java_net;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod netcat;
pub mod netcat_udp;
mod reporter;
pub mod seq;
pub mod spooldir;
pub mod stress;
pub mod syslog;
pub mod taildir;
pub mod thrift;

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::channel::refusals::RefusalLog;
use crate::channel::{Channel, ChannelError, Returned};
use crate::config::{SourceConfig, SourceKind};
use crate::event::Event;
use crate::interceptor::Chain;
use crate::log_throttle::Throttle;
use crate::selector::Selector;
use crate::stop::{IDLE_WAIT, Stop};
pub use crate::stop::{StopFlag, stopping};

/// Flume's source counters (`SOURCE.<name>` in the metrics).
#[derive(Debug, Default)]
pub struct SourceCounters {
    pub received: AtomicU64,
    pub accepted: AtomicU64,
    /// Single-event calls (`append` of the avro and thrift protocols).
    pub appends_received: AtomicU64,
    pub appends_accepted: AtomicU64,
    pub batches_received: AtomicU64,
    pub batches_accepted: AtomicU64,
    pub open_connections: AtomicU64,
    pub channel_write_fail: AtomicU64,
    pub read_fail: AtomicU64,
    /// Failures that are neither unreadable input nor a refusing channel (Flume's
    /// `GenericProcessingFail`): a file that cannot be opened, renamed or recorded, a command
    /// that cannot be started, a consumer that cannot poll.
    pub generic_fail: AtomicU64,
    /// The Kafka source's timers (see [`crate::kafka_metrics`]).
    pub kafka: crate::kafka_metrics::KafkaTimers,
}

impl SourceCounters {
    pub fn generic_failure(&self) {
        self.generic_fail.fetch_add(1, Ordering::Relaxed);
    }
}

/// How a source's calls show in Flume's append counters, which count calls rather than events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// One call carrying a batch (`AppendBatch*Count`): a request, a file's chunk, a poll.
    Batch,
    /// One call carrying one event (`Append*Count`): the avro and thrift `append`.
    Single,
    /// The source takes events one by one, not calls (netcat, syslog): Flume's versions count
    /// only events, so a batch weir groups for one transaction is not a call.
    Events,
}

/// Applies the interceptors and the selector, and puts events into the channels (Flume's
/// ChannelProcessor). One call is one put transaction per channel it touches.
pub struct ChannelProcessor {
    channels: Vec<Arc<dyn Channel>>,
    interceptors: Chain,
    selector: Selector,
    counters: Arc<SourceCounters>,
    /// What becomes of an event a channel can never store (see [`ChannelProcessor::process`]).
    unstorable: Unstorable,
    /// How [`ChannelProcessor::process`] counts its calls.
    calls: Call,
    /// The source's name, for the log lines of events it drops.
    source: String,
    /// Set when the agent stops (see [`ChannelProcessor::stopping_on`]).
    stop: Option<StopFlag>,
}

/// What became of the events of [`ChannelProcessor::process_answering_each`].
#[derive(Debug)]
pub enum Answers {
    /// One outcome for them all.
    All(Result<(), ChannelError>),
    /// One outcome per event, in order.
    Each(Vec<Result<(), ChannelError>>),
}

/// How a source deals with an event a channel refuses for good ([`ChannelError::Unstorable`]).
enum Unstorable {
    /// Its client is told (netcat's `FAILED`, HTTP 413, an RPC error), and the put fails; the
    /// operator hears of it through the log.
    Refuse(RefusalLog),
    /// Nobody could be told, and retrying would stall the source for ever (a syslog sender, a
    /// tailed file, a command's output): the event is dropped, logged and counted.
    Drop(RefusalLog),
}

impl ChannelProcessor {
    pub fn new(
        config: &SourceConfig,
        channels: &[Arc<dyn Channel>],
        counters: Arc<SourceCounters>,
    ) -> ChannelProcessor {
        let mine: Vec<Arc<dyn Channel>> = config
            .channels
            .iter()
            .filter_map(|n| channels.iter().find(|c| c.name() == n).cloned())
            .collect();
        let names: Vec<String> = mine.iter().map(|c| c.name().to_owned()).collect();
        let unstorable = match config.kind {
            SourceKind::Netcat(_)
            | SourceKind::Http(_)
            | SourceKind::Avro(_)
            | SourceKind::Thrift(_) => Unstorable::Refuse(RefusalLog::unstorable_refused()),
            _ => Unstorable::Drop(RefusalLog::unstorable_dropped()),
        };
        let calls = match config.kind {
            SourceKind::Netcat(_) | SourceKind::NetcatUdp(_) | SourceKind::Syslog(_) => {
                Call::Events
            }
            // Flume's seq source puts a batch of one as a single event.
            SourceKind::Seq(ref seq) if seq.batch_size == 1 => Call::Events,
            _ => Call::Batch,
        };
        ChannelProcessor {
            selector: Selector::new(&config.selector, &names),
            interceptors: Chain::new(&config.interceptors),
            channels: mine,
            counters,
            unstorable,
            calls,
            source: config.name.clone(),
            stop: None,
        }
    }

    /// Gives the processor the agent's stop flag for sources. A put it had to split waits for
    /// room for each later piece until the flag is set (see `put`).
    pub fn stopping_on(mut self, stop: StopFlag) -> ChannelProcessor {
        self.stop = Some(stop);
        self
    }

    fn stopping(&self) -> bool {
        self.stop.as_ref().is_some_and(stopping)
    }

    pub fn counters(&self) -> &SourceCounters {
        &self.counters
    }

    /// The counters, for a part of the source that outlives a borrow of the processor.
    pub fn shared_counters(&self) -> Arc<SourceCounters> {
        self.counters.clone()
    }

    /// The most events one `process` call may carry: the smallest `transactionCapacity` of the
    /// channels it puts into (no channel: unlimited).
    pub fn transaction_limit(&self) -> usize {
        self.channels
            .iter()
            .map(|c| c.transaction_capacity())
            .min()
            .unwrap_or(usize::MAX)
            .max(1)
    }

    /// Intercepts `events`, routes each, and puts them into every required channel (each its
    /// own transaction, as in Flume), then the optional ones, whose failures are only logged.
    /// Events filtered out by an interceptor count as accepted, as in Flume.
    ///
    /// A put a channel refuses for good ([`ChannelError::Unstorable`]: over its byte capacity,
    /// or holding an event it can never store) is split into puts that fit, so that a batch
    /// larger than the byte capacity is stored rather than retried for ever. An event that
    /// could never be stored even alone fails the whole put to that channel before any of it is
    /// stored, for sources with a client to tell; other sources drop it (see [`Unstorable`]).
    pub fn process(&self, events: Vec<Event>) -> Result<(), ChannelError> {
        self.process_call(events, self.calls)
    }

    /// [`ChannelProcessor::process`] for a source whose calls differ in kind (an avro or
    /// thrift `append` against an `appendBatch`), counted as `call`.
    pub fn process_call(&self, events: Vec<Event>, call: Call) -> Result<(), ChannelError> {
        let n = events.len() as u64;
        self.counters.received.fetch_add(n, Ordering::Relaxed);
        if let Some((received, _)) = self.call_counters(call) {
            received.fetch_add(1, Ordering::Relaxed);
        }
        let events = if self.interceptors.is_empty() {
            events
        } else {
            self.interceptors.apply(events)
        };
        let mut required: Vec<Vec<Event>> = vec![Vec::new(); self.channels.len()];
        let mut optional: Vec<Vec<Event>> = vec![Vec::new(); self.channels.len()];
        let mut unrouted = 0usize;
        for e in events {
            let (req, opt) = self.selector.route(&e);
            if req.is_empty() && opt.is_empty() {
                unrouted += 1;
                continue;
            }
            // The last target takes the event itself; the others a copy (bodies are shared).
            let targets: Vec<(bool, usize)> = req
                .iter()
                .map(|i| (true, *i))
                .chain(opt.iter().map(|i| (false, *i)))
                .collect();
            let (last, rest) = targets
                .split_last()
                .map(|(l, r)| (*l, r))
                .unwrap_or(((true, 0), &[]));
            for (is_required, i) in rest {
                let list = if *is_required {
                    &mut required[*i]
                } else {
                    &mut optional[*i]
                };
                list.push(e.clone());
            }
            let list = if last.0 {
                &mut required[last.1]
            } else {
                &mut optional[last.1]
            };
            list.push(e);
        }
        if unrouted > 0 {
            tracing::warn!(
                events = unrouted,
                "events matched no channel of the multiplexing selector (no mapping and no selector.default): not stored"
            );
        }
        if let Unstorable::Refuse(log) = &self.unstorable
            && required.iter().filter(|b| !b.is_empty()).count() > 1
        {
            // Several channels each take their own put: one refusing an event for good after
            // another stored the request would break "nothing of a refused request is stored".
            for (channel, batch) in self.channels.iter().zip(&required) {
                if let Some(reason) = batch.iter().find_map(|e| channel.storable_size(e).err()) {
                    self.counters
                        .channel_write_fail
                        .fetch_add(1, Ordering::Relaxed);
                    return Err(self.refuse(channel.as_ref(), reason, log));
                }
            }
        }
        let mut dropped = 0u64;
        for (channel, batch) in self.channels.iter().zip(required) {
            if batch.is_empty() {
                continue;
            }
            match self.put(channel.as_ref(), batch, channel.keep_alive()) {
                // An event dropped by several channels is one event not accepted.
                Ok(lost) => dropped = dropped.max(lost),
                Err(e) => {
                    self.counters
                        .channel_write_fail
                        .fetch_add(1, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
        // An optional channel never holds up the source: no waiting for room there.
        for (channel, batch) in self.channels.iter().zip(optional) {
            if !batch.is_empty()
                && let Err(e) = self.put(channel.as_ref(), batch, Duration::ZERO)
            {
                tracing::warn!(channel = channel.name(), error = %e, "optional channel refused events");
            }
        }
        // Events dropped as unstorable were not accepted (they count as channel write fails).
        self.counters
            .accepted
            .fetch_add(n.saturating_sub(dropped), Ordering::Relaxed);
        if let Some((_, accepted)) = self.call_counters(call) {
            accepted.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The received and accepted counters of `call`, if Flume counts such calls.
    fn call_counters(&self, call: Call) -> Option<(&AtomicU64, &AtomicU64)> {
        let c = &self.counters;
        match call {
            Call::Batch => Some((&c.batches_received, &c.batches_accepted)),
            Call::Single => Some((&c.appends_received, &c.appends_accepted)),
            Call::Events => None,
        }
    }

    /// `process` for a source that answers each event on its own (netcat replies per line).
    /// The events still go in one transaction per channel; but if a channel refuses it for good
    /// because some event can never be stored (nothing of it is stored then, see `process`),
    /// they are put again one per transaction, as Flume puts netcat lines, so that only the
    /// events that cannot be stored fail.
    pub fn process_answering_each(&self, events: Vec<Event>) -> Answers {
        if events.len() < 2 {
            return Answers::All(self.process(events));
        }
        // A reference count per event when the bodies are slices of one buffer, as netcat's
        // are; no body is copied.
        let alone = events.clone();
        match self.process(events) {
            Err(ChannelError::Unstorable { .. }) => {
                // Counted again below, event by event, as if the refused put had not been made.
                let c = &self.counters;
                c.received.fetch_sub(alone.len() as u64, Ordering::Relaxed);
                if let Some((received, _)) = self.call_counters(self.calls) {
                    received.fetch_sub(1, Ordering::Relaxed);
                }
                c.channel_write_fail.fetch_sub(1, Ordering::Relaxed);
                Answers::Each(alone.into_iter().map(|e| self.process(vec![e])).collect())
            }
            other => Answers::All(other),
        }
    }

    /// One put into `channel`, split when the channel refuses it for good (see `process`).
    /// Returns how many events it dropped as unstorable.
    fn put(
        &self,
        channel: &dyn Channel,
        events: Vec<Event>,
        wait: Duration,
    ) -> Result<u64, ChannelError> {
        let events = match channel.put_waiting(events, wait) {
            Err(ChannelError::Unstorable { events, .. }) if !events.0.is_empty() => events.0,
            other => return other.map(|()| 0),
        };
        let mut dropped = 0;
        // Rare (a misfit put): measure each event, then store the ones that can be stored in
        // puts that fit, in order.
        let limit = channel.transaction_byte_limit().unwrap_or(u64::MAX);
        let mut puts: Vec<Vec<Event>> = vec![Vec::new()];
        let mut bytes = 0u64;
        for event in events {
            let size = match channel.storable_size(&event) {
                Ok(size) => size,
                Err(reason) => match &self.unstorable {
                    Unstorable::Refuse(log) => return Err(self.refuse(channel, reason, log)),
                    Unstorable::Drop(log) => {
                        dropped += 1;
                        self.counters
                            .channel_write_fail
                            .fetch_add(1, Ordering::Relaxed);
                        self.log_unstorable(log, channel, &reason);
                        continue;
                    }
                },
            };
            let current = puts
                .last_mut()
                .filter(|p| p.is_empty() || bytes.saturating_add(size) <= limit);
            match current {
                Some(p) => {
                    p.push(event);
                    bytes = bytes.saturating_add(size);
                }
                None => {
                    puts.push(vec![event]);
                    bytes = size;
                }
            }
        }
        let mut puts = puts.into_iter().filter(|p| !p.is_empty());
        if let Some(first) = puts.next() {
            channel.put_waiting(first, wait)?;
        }
        // Once a piece is stored, giving up on a later one as "full" would have the source
        // retry the whole batch and store the first pieces again, and again for as long as the
        // sinks take more than keep-alive to make room for a piece. A required channel waits
        // for room instead (back-pressure, as the source's own retry would apply), until the
        // agent stops; an optional one is never waited for.
        for piece in puts {
            loop {
                match channel.put_waiting(piece.clone(), wait) {
                    Ok(()) => break,
                    Err(e) if e.is_full() && !wait.is_zero() && !self.stopping() => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(dropped)
    }

    /// The error that refuses a put holding an event `channel` can never store, logged for the
    /// operator (the client is told too).
    fn refuse(&self, channel: &dyn Channel, reason: String, log: &RefusalLog) -> ChannelError {
        self.log_unstorable(log, channel, &reason);
        ChannelError::Unstorable {
            channel: channel.name().to_owned(),
            reason,
            events: Returned::default(),
        }
    }

    /// Counts in `log` an event `channel` can never store, naming this source.
    fn log_unstorable(&self, log: &RefusalLog, channel: &dyn Channel, reason: &str) {
        let reason = format_args!("source {}: {reason}", self.source);
        log.refused(channel.name(), &reason, Instant::now());
    }
}

/// The addresses `host:port` names, for a source to bind; errors name the source.
pub(crate) fn resolve(source: &str, host: &str, port: u16) -> anyhow::Result<Vec<SocketAddr>> {
    let addr = format!("{host}:{port}");
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .with_context(|| format!("source {source}: cannot resolve bind address {addr}"))?
        .collect();
    anyhow::ensure!(
        !addrs.is_empty(),
        "source {source}: bind address {addr} resolves to no address"
    );
    Ok(addrs)
}

/// A non-blocking TCP listener on `host:port` (accept loops wait on it with [`await_connection`]
/// and look at their stop flag in between).
pub(crate) fn listen_tcp(source: &str, host: &str, port: u16) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(&resolve(source, host, port)?[..])
        .with_context(|| format!("source {source}: cannot listen on TCP {host}:{port}"))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// How long an accept loop waits for a connection before it looks at its stop flag again, when
/// the flag cannot be waited on (its descriptor could not be made), and between failed accepts.
pub(crate) const ACCEPT_WAIT: Duration = Duration::from_millis(100);

/// How long an accept loop with no connection waiting may sleep: until the count of refused
/// connections is due in the log, if there is one to report.
pub(crate) fn accept_wait(refused: &crate::log_throttle::Throttle) -> Duration {
    refused.report_due().map_or(IDLE_WAIT, |due| {
        due.saturating_duration_since(Instant::now())
    })
}

/// Waits until one of `listeners` has a connection to accept, `stop` is set, or `timeout`
/// passes.
///
/// Accept loops wait here rather than sleep between `accept` calls: a client that opens a
/// connection per message (curl, `logger --tcp`, a script) found the loop asleep each time and
/// waited out the whole interval, 25 ms per connection, so such a client got at most 40
/// messages through per second (`cargo bench --bench sources`, "connection per message").
/// Listeners stay non-blocking so that a connection the client reset after `poll` saw it
/// cannot block the loop in `accept`. The stop's descriptor is in the same `poll`, so an idle
/// loop does not wake to look at the flag.
pub(crate) fn await_connection(listeners: &[&TcpListener], stop: &Stop, timeout: Duration) {
    use std::os::fd::AsFd;
    let fds: Vec<_> = listeners.iter().map(|l| l.as_fd()).collect();
    stop.wait_readable(&fds, timeout);
}

/// Failed `accept`s of one accept loop, logged as the first one, then at most a line a minute
/// with the count since. Out of descriptors, the failure repeats every [`ACCEPT_WAIT`] for as
/// long as clients hold them: a line each time was 70 lines a second for an agent of seven
/// listeners (audit 8).
#[derive(Default)]
pub(crate) struct AcceptFailures(Throttle);

impl AcceptFailures {
    /// Counts a failure; logs it unless a line went out in the last minute, and then returns
    /// the failures that line counts (this one included).
    pub(crate) fn failed(&mut self, source: &str, error: &std::io::Error) -> Option<u64> {
        let failures = self.0.occurred(Instant::now())?;
        tracing::warn!(
            source,
            %error,
            failures,
            "accept failed; new clients wait in the listen queue (logged at most once a minute, \
             with the failures since)"
        );
        Some(failures)
    }
}

/// The accept loop of a TCP server that serves each client on a thread of its own (the netcat
/// and http sources, and the metrics endpoint; `kind` names the threads), until `stop`. A client past `max_connections` goes to `refuse` instead.
/// At the end it waits for every connection thread; each finishes the transaction it is in.
pub(crate) fn serve_clients<F>(
    source: &str,
    kind: &str,
    listener: TcpListener,
    max_connections: usize,
    stop: &StopFlag,
    refuse: impl Fn(TcpStream, SocketAddr),
    serve: F,
) where
    F: Fn(TcpStream, SocketAddr) + Send + Sync + 'static,
{
    let serve = Arc::new(serve);
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    let mut failures = AcceptFailures::default();
    // A flood of clients past the limit is logged once a minute, not once a client.
    let mut refused = crate::log_throttle::Throttle::default();
    while !stopping(stop) {
        match listener.accept() {
            Ok((stream, peer)) => {
                connections.retain(|h| !h.is_finished());
                if connections.len() >= max_connections {
                    refused_connection(source, peer, max_connections, &mut refused);
                    refuse(stream, peer);
                    continue;
                }
                let serve = serve.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("{kind}-{peer}"))
                    .spawn(move || serve(stream, peer));
                match spawned {
                    Ok(h) => connections.push(h),
                    Err(e) => {
                        tracing::error!(source = %source, %peer, error = %e, "cannot start a connection thread")
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                await_connection(&[&listener], stop, accept_wait(&refused));
                report_refused_since(source, max_connections, &mut refused, false);
            }
            Err(e) => {
                let _ = failures.failed(source, &e);
                // The pending connection (or the lack of descriptors) is still there: waiting
                // on the listener would return at once.
                std::thread::sleep(ACCEPT_WAIT);
            }
        }
    }
    report_refused_since(source, max_connections, &mut refused, true);
    drop(listener);
    for h in connections {
        let _ = h.join();
    }
}

/// Logs a connection refused for the connection limit: the first, then at most one line a
/// minute with the count (2,000 clients in a second wrote 2,000 lines, audit 18).
pub(crate) fn refused_connection(
    source: &str,
    peer: SocketAddr,
    limit: usize,
    throttle: &mut crate::log_throttle::Throttle,
) {
    if let Some(refused) = throttle.occurred(std::time::Instant::now()) {
        tracing::warn!(
            source,
            %peer,
            limit,
            refused,
            "refusing connections: the connection limit is reached (logged at most once a \
             minute, with the connections refused since)"
        );
    }
}

/// Logs the connections refused for the connection limit since the last line about them, a
/// minute after it (`final_count`: at once, as the accept loop ends), so that the count of a
/// burst is told even when no refusal follows it.
pub(crate) fn report_refused_since(
    source: &str,
    limit: usize,
    throttle: &mut crate::log_throttle::Throttle,
    final_count: bool,
) {
    if let Some(refused) = throttle.unreported(std::time::Instant::now(), final_count) {
        tracing::warn!(
            source,
            limit,
            refused,
            "connections refused for the connection limit since the last line about them"
        );
    }
}

/// A running source: its thread ends when the stop flag is set.
pub trait Source: Send {
    /// Binds listeners and the like; errors here stop the agent from starting.
    fn start(&mut self) -> anyhow::Result<()>;
    /// Runs until `stop` is set, finishing (or failing back to the client) every transaction it
    /// began.
    fn run(self: Box<Self>, processor: ChannelProcessor, stop: StopFlag);
}

pub fn build(config: &SourceConfig) -> Box<dyn Source> {
    match &config.kind {
        SourceKind::Netcat(c) => Box::new(netcat::NetcatSource::new(&config.name, c.clone())),
        SourceKind::NetcatUdp(c) => {
            Box::new(netcat_udp::NetcatUdpSource::new(&config.name, c.clone()))
        }
        SourceKind::Stress(c) => Box::new(stress::StressSource::new(&config.name, c.clone())),
        SourceKind::Seq(c) => Box::new(seq::SeqSource::new(&config.name, c.clone())),
        SourceKind::Http(c) => Box::new(http::HttpSource::new(&config.name, c.clone())),
        SourceKind::Exec(c) => Box::new(exec::ExecSource::new(&config.name, c.clone())),
        SourceKind::Taildir(c) => Box::new(taildir::TaildirSource::new(&config.name, c.clone())),
        SourceKind::Syslog(c) => Box::new(syslog::SyslogSource::new(&config.name, c.clone())),
        SourceKind::SpoolDir(c) => Box::new(spooldir::SpoolDirSource::new(&config.name, c.clone())),
        #[cfg(feature = "kafka")]
        SourceKind::Kafka(c) => Box::new(kafka::KafkaSource::new(&config.name, c.clone())),
        #[cfg(not(feature = "kafka"))]
        SourceKind::Kafka(_) => Box::new(WithoutKafka(config.name.clone())),
        SourceKind::Avro(c) => Box::new(avro::AvroSource::new(&config.name, c.clone())),
        SourceKind::Thrift(c) => Box::new(thrift::ThriftSource::new(&config.name, c.clone())),
    }
}

/// Checks what only building the source can check (`weir agent --check`), without starting
/// it; returns notes for the user.
pub fn check(config: &SourceConfig) -> anyhow::Result<Vec<String>> {
    match &config.kind {
        #[cfg(feature = "kafka")]
        SourceKind::Kafka(k) => kafka::check(&config.name, k),
        #[cfg(not(feature = "kafka"))]
        SourceKind::Kafka(_) => anyhow::bail!(
            "source {}: this weir was built without the `kafka` feature \
             (cargo build --features kafka)",
            config.name
        ),
        _ => Ok(Vec::new()),
    }
}

/// The Kafka source of a weir built without the `kafka` feature: refuses to start.
#[cfg(not(feature = "kafka"))]
struct WithoutKafka(String);

#[cfg(not(feature = "kafka"))]
impl Source for WithoutKafka {
    fn start(&mut self) -> anyhow::Result<()> {
        anyhow::bail!(
            "source {}: this weir was built without the `kafka` feature (cargo build --features kafka)",
            self.0
        )
    }

    fn run(self: Box<Self>, _: ChannelProcessor, _: StopFlag) {}
}

/// Reads from `offset` until `buf` is full or the file ends (`pread`, retried when interrupted);
/// returns how much was read. The file sources read at remembered positions with it.
pub(crate) fn read_full_at(
    file: &std::fs::File,
    buf: &mut [u8],
    offset: u64,
) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// What the sources' unit tests share: a memory channel and the processor the agent would build
/// for a source putting into it alone.
#[cfg(test)]
pub(crate) mod test_rig {
    use std::sync::Arc;
    use std::time::Duration;

    use super::{ChannelProcessor, SourceCounters};
    use crate::channel::Channel;
    use crate::channel::memory::MemoryChannel;
    use crate::config::{MemoryChannelConfig, SelectorConfig, SeqConfig, SourceConfig, SourceKind};

    pub fn memory_channel(
        capacity: usize,
        transaction_capacity: usize,
        keep_alive: Duration,
    ) -> Arc<dyn Channel> {
        Arc::new(MemoryChannel::new(
            "c1",
            &MemoryChannelConfig {
                capacity,
                transaction_capacity,
                keep_alive,
                byte_capacity: None,
            },
        ))
    }

    /// A processor putting into `channel` alone, as the agent would build for a source.
    pub fn processor_for(channel: &Arc<dyn Channel>) -> ChannelProcessor {
        processor_of(
            channel,
            SourceKind::Seq(SeqConfig {
                total_events: 0,
                batch_size: 1,
                body_size: 0,
            }),
        )
    }

    /// The processor the agent would build for a source of `kind` putting into `channel` alone.
    pub fn processor_of(channel: &Arc<dyn Channel>, kind: SourceKind) -> ChannelProcessor {
        let source = SourceConfig {
            name: "r1".into(),
            channels: vec!["c1".into()],
            selector: SelectorConfig::Replicating { optional: vec![] },
            interceptors: vec![],
            kind,
        };
        ChannelProcessor::new(
            &source,
            std::slice::from_ref(channel),
            Arc::new(SourceCounters::default()),
        )
    }

    /// Takes up to `max` events from `channel` (waiting up to `wait` for the first), commits the
    /// take and returns the bodies as text.
    pub fn take_bodies(channel: &Arc<dyn Channel>, max: usize, wait: Duration) -> Vec<String> {
        let taken = channel.take(max, wait).unwrap();
        let got = taken
            .events
            .iter()
            .map(|(_, e)| String::from_utf8_lossy(&e.body).into_owned())
            .collect();
        channel.commit(taken).unwrap();
        got
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::sync::mpsc;

    use super::*;
    use crate::channel::file::FileChannel;
    use crate::channel::memory::MemoryChannel;
    use crate::config::{FileChannelConfig, MemoryChannelConfig, NetcatConfig, SeqConfig};

    fn memory_channel_of_bytes(byte_capacity: u64) -> Arc<dyn Channel> {
        Arc::new(MemoryChannel::new(
            "c1",
            &MemoryChannelConfig {
                capacity: 1000,
                transaction_capacity: 1000,
                keep_alive: Duration::from_millis(20),
                byte_capacity: Some(byte_capacity),
            },
        ))
    }

    fn seq_kind() -> SourceKind {
        SourceKind::Seq(SeqConfig {
            total_events: 0,
            batch_size: 1,
            body_size: 0,
        })
    }

    fn netcat_kind() -> SourceKind {
        SourceKind::Netcat(NetcatConfig {
            bind: "127.0.0.1".into(),
            port: 0,
            max_line_length: 512,
            ack_every_event: true,
            max_connections: 1,
        })
    }

    /// Bodies `name0`, `name1`, … of `len` bytes each (the index, then padding).
    fn events(n: usize, len: usize) -> Vec<Event> {
        (0..n)
            .map(|i| Event::new(format!("{i:0>len$}").into_bytes()))
            .collect()
    }

    fn bodies(channel: &Arc<dyn Channel>) -> Vec<String> {
        test_rig::take_bodies(channel, 1000, Duration::from_millis(10))
    }

    /// Runs `put` while a taker drains `channel` (so that puts in turn find room); returns what
    /// `put` returned and the bodies taken, all `n` of them or what came within 10 s.
    fn put_while_draining(
        channel: &Arc<dyn Channel>,
        n: usize,
        put: impl FnOnce() -> Result<(), ChannelError>,
    ) -> (Result<(), ChannelError>, Vec<String>) {
        std::thread::scope(|s| {
            let taker = s.spawn(|| {
                let deadline = Instant::now() + Duration::from_secs(10);
                let mut got = Vec::new();
                while got.len() < n && Instant::now() < deadline {
                    got.extend(bodies(channel));
                }
                got
            });
            let put = put();
            (put, taker.join().unwrap_or_default())
        })
    }

    /// Ten 300-byte events against a byte capacity of 1000: once a put of all ten is refused
    /// for good, the processor stores them in puts of three, in order, and counts no failure.
    #[test]
    fn a_put_over_the_byte_capacity_is_stored_in_puts_that_fit() {
        let channel = memory_channel_of_bytes(1000);
        let processor = test_rig::processor_of(&channel, seq_kind());
        let sent = events(10, 300);
        let want: Vec<String> = sent
            .iter()
            .map(|e| String::from_utf8_lossy(&e.body).into_owned())
            .collect();
        // The channel alone refuses it, for good and without waiting.
        let started = Instant::now();
        let refused = channel.put(sent.clone());
        assert!(
            matches!(&refused, Err(ChannelError::Unstorable { events, .. }) if events.0.len() == 10),
            "{refused:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(1));
        // Puts of three fill the channel (900 of 1000 bytes): the taker makes room.
        let (put, got) = put_while_draining(&channel, 10, || processor.process(sent));
        put.expect("stored");
        assert_eq!(got, want);
        assert_eq!(
            processor
                .counters()
                .channel_write_fail
                .load(Ordering::Relaxed),
            0
        );
        assert_eq!(processor.counters().accepted.load(Ordering::Relaxed), 10);
    }

    /// A split put whose later pieces find the channel full within keep-alive (a slow sink):
    /// the processor waits for room for them. It used to give up, and the source's retry of
    /// the whole batch stored the first pieces again, for ever.
    #[test]
    fn the_later_pieces_of_a_split_put_wait_for_room() {
        let channel: Arc<dyn Channel> = Arc::new(MemoryChannel::new(
            "c1",
            &MemoryChannelConfig {
                capacity: 1000,
                transaction_capacity: 1000,
                keep_alive: Duration::from_millis(1),
                byte_capacity: Some(1000),
            },
        ));
        let stop: StopFlag = crate::stop::Stop::new();
        let processor = test_rig::processor_of(&channel, seq_kind()).stopping_on(stop);
        let sent = events(10, 300);
        let want: Vec<String> = sent
            .iter()
            .map(|e| String::from_utf8_lossy(&e.body).into_owned())
            .collect();
        let (put, got) = std::thread::scope(|s| {
            let taker = s.spawn(|| {
                let deadline = Instant::now() + Duration::from_secs(10);
                let mut got = Vec::new();
                while got.len() < 10 && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(30));
                    got.extend(bodies(&channel));
                }
                got
            });
            let put = processor.process(sent);
            (put, taker.join().unwrap_or_default())
        });
        put.expect("stored");
        assert_eq!(got, want, "each event once, in order");
    }

    /// A refusing source putting into two channels: an event one of them can never store
    /// fails the put before the other stores anything.
    #[test]
    fn a_refused_put_stores_nothing_in_any_channel() {
        let roomy = memory_channel_of_bytes(100_000);
        let small = Arc::new(MemoryChannel::new(
            "c2",
            &MemoryChannelConfig {
                capacity: 1000,
                transaction_capacity: 1000,
                keep_alive: Duration::from_millis(20),
                byte_capacity: Some(1000),
            },
        )) as Arc<dyn Channel>;
        let source = SourceConfig {
            name: "r1".into(),
            channels: vec!["c1".into(), "c2".into()],
            selector: crate::config::SelectorConfig::Replicating { optional: vec![] },
            interceptors: vec![],
            kind: netcat_kind(),
        };
        let processor = ChannelProcessor::new(
            &source,
            &[roomy.clone(), small.clone()],
            Arc::new(SourceCounters::default()),
        );
        let e = processor
            .process(vec![Event::new("fits"), Event::new(vec![b'x'; 2000])])
            .expect_err("refused");
        assert!(e.to_string().contains("channel c2:"), "{e}");
        assert!(bodies(&roomy).is_empty(), "c1 stored part of a refused put");
        assert!(bodies(&small).is_empty());
    }

    /// An event larger than the whole byte capacity: a source with no client to tell (seq)
    /// drops it and stores the others in order; a source with one (netcat) fails the put and
    /// stores nothing of it.
    #[test]
    fn an_event_over_the_byte_capacity_is_dropped_or_refused_by_the_source_kind() {
        let mut batch = events(3, 100);
        batch.insert(1, Event::new(vec![b'x'; 2000]));

        let channel = memory_channel_of_bytes(1000);
        let dropping = test_rig::processor_of(&channel, seq_kind());
        dropping.process(batch.clone()).expect("the others stored");
        assert_eq!(
            bodies(&channel),
            vec![
                "0".repeat(100),
                format!("{:0>100}", 1),
                format!("{:0>100}", 2)
            ]
        );
        assert_eq!(
            dropping
                .counters()
                .channel_write_fail
                .load(Ordering::Relaxed),
            1
        );
        assert_eq!(dropping.counters().accepted.load(Ordering::Relaxed), 3);

        let channel = memory_channel_of_bytes(1000);
        let refusing = test_rig::processor_of(&channel, netcat_kind());
        let e = refusing.process(batch).expect_err("refused");
        assert!(
            e.to_string()
                .contains("an event body of 2000 bytes can never fit in byteCapacity 1000"),
            "{e}"
        );
        assert!(bodies(&channel).is_empty(), "nothing of the put is stored");
    }

    /// The file channel: a put over `byteCapacity` is split in frames that fit; an event whose
    /// header key the frame format cannot encode is refused for good (it used to be a storage
    /// error, which sources retry for ever) and, from a dropping source, dropped alone.
    #[test]
    fn the_file_channel_refuses_for_good_what_it_can_never_store() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = FileChannelConfig::new(dir.path().join("ckpt"), dir.path().join("data"));
        config.byte_capacity = Some(4096);
        config.minimum_required_space = 0;
        config.keep_alive = Duration::from_millis(20);
        let channel: Arc<dyn Channel> = Arc::new(FileChannel::open("c1", &config).unwrap());
        let processor = test_rig::processor_of(&channel, seq_kind());

        let sent = events(10, 1000);
        let e = channel.put(sent.clone()).expect_err("over byteCapacity");
        assert!(matches!(e, ChannelError::Unstorable { .. }), "{e:?}");
        let want: Vec<String> = (0..10).map(|i| format!("{i:0>1000}")).collect();
        let (put, got) = put_while_draining(&channel, 10, || processor.process(sent));
        put.expect("stored in frames that fit");
        assert_eq!(got, want);

        let bad = Event::new("bad").with_header("k".repeat(70_000), "v");
        let e = channel.put(vec![bad.clone()]).expect_err("unencodable");
        assert!(
            matches!(&e, ChannelError::Unstorable { reason, .. } if reason.contains("header key of 70000 bytes")),
            "{e:?}"
        );
        processor
            .process(vec![Event::new("before"), bad, Event::new("after")])
            .expect("the others stored");
        assert_eq!(bodies(&channel), vec!["before", "after"]);
    }

    /// Out of descriptors, every accept fails until clients leave: the first failure is
    /// logged, the rest of the minute only counted.
    #[test]
    fn accept_failures_are_logged_once_a_minute_with_a_count() {
        let mut failures = AcceptFailures::default();
        let e = std::io::Error::from_raw_os_error(24);
        assert_eq!(failures.failed("r1", &e), Some(1));
        assert!((0..100).all(|_| failures.failed("r1", &e).is_none()));
        // A minute later the next one is logged, counting the 100 unlogged ones (the throttle's
        // own test moves its clock; here the minute is not waited out).
        let later = Instant::now() + crate::log_throttle::Throttle::EVERY;
        assert_eq!(failures.0.occurred(later), Some(101));
    }

    #[test]
    fn waiting_for_a_connection_ends_when_one_arrives_on_any_listener() {
        let first = listen_tcp("t", "127.0.0.1", 0).unwrap();
        let second = listen_tcp("t", "127.0.0.1", 0).unwrap();
        let addr = second.local_addr().unwrap();
        let client = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            TcpStream::connect(addr).unwrap()
        });
        // A wait that ran to its limit would take 60 s: the connection must end it.
        let stop = Stop::new();
        let started = Instant::now();
        await_connection(&[&first, &second], &stop, Duration::from_secs(60));
        let waited = started.elapsed();
        let _client = client.join().unwrap();
        assert!(
            waited < Duration::from_secs(30),
            "woke only after {waited:?}"
        );
        assert!(second.accept().is_ok(), "woken without a connection");
        assert_eq!(
            first.accept().map(|_| ()).map_err(|e| e.kind()),
            Err(ErrorKind::WouldBlock)
        );
        // Nothing pending: the wait ends at its limit, and accept still does not block.
        await_connection(&[&first, &second], &stop, Duration::from_millis(20));
        assert_eq!(
            second.accept().map(|_| ()).map_err(|e| e.kind()),
            Err(ErrorKind::WouldBlock)
        );
        // The stop ends a wait at once, set before it or while it waits.
        let setter = crate::stop::set_later(&stop, Duration::from_millis(200));
        let started = Instant::now();
        await_connection(&[&first], &stop, Duration::from_secs(60));
        assert!(started.elapsed() < Duration::from_secs(30));
        setter.join().unwrap();
        let started = Instant::now();
        await_connection(&[&first], &stop, Duration::from_secs(60));
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    /// One client at a time: the second is refused while the first is served, served once the
    /// first has left, and the loop returns at stop only after the connection threads end.
    #[test]
    fn serve_clients_refuses_past_the_limit_and_joins_at_stop() {
        let listener = listen_tcp("t", "127.0.0.1", 0).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop: StopFlag = crate::stop::Stop::new();
        let (served_tx, served) = mpsc::channel::<u8>();
        let served_tx = std::sync::Mutex::new(served_tx);
        let s = stop.clone();
        let logs = LogCapture::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .finish();
        let looper = std::thread::spawn(move || {
            let _logging = tracing::subscriber::set_default(subscriber);
            serve_clients(
                "t",
                "test",
                listener,
                1,
                &s,
                |mut stream, _| {
                    let _ = stream.write_all(b"busy\n");
                },
                move |mut stream, _| {
                    // Holds the connection until the client closes it.
                    let mut b = [0u8; 1];
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
                    let n = stream.read(&mut b).unwrap_or(0);
                    let tx = served_tx.lock().map(|t| t.clone());
                    if let Ok(tx) = tx {
                        let _ = tx.send(if n == 1 { b[0] } else { 0 });
                    }
                },
            )
        });
        let reply = |c: &mut TcpStream| {
            let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
            let mut out = String::new();
            let _ = c.read_to_string(&mut out);
            out
        };
        let mut first = TcpStream::connect(addr).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let mut second = TcpStream::connect(addr).unwrap();
        assert_eq!(reply(&mut second), "busy\n");
        // Two more refused within the minute: counted, not logged, until the loop ends.
        for _ in 0..2 {
            let mut more = TcpStream::connect(addr).unwrap();
            assert_eq!(reply(&mut more), "busy\n");
        }
        first.write_all(b"a").unwrap();
        assert_eq!(served.recv_timeout(Duration::from_secs(10)), Ok(b'a'));
        drop(first);
        std::thread::sleep(Duration::from_millis(200));
        let mut third = TcpStream::connect(addr).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        stop.set();
        // The loop waits for the third client's thread, which waits for the client.
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !looper.is_finished(),
            "returned before its connection ended"
        );
        third.write_all(b"c").unwrap();
        assert_eq!(served.recv_timeout(Duration::from_secs(10)), Ok(b'c'));
        looper.join().unwrap();
        let logs = logs.text();
        let lines: Vec<&str> = logs.lines().filter(|l| l.contains("refused=")).collect();
        assert_eq!(lines.len(), 2, "{logs}");
        assert!(lines[0].contains("refused=1") && lines[0].contains("limit is reached"));
        assert!(lines[1].contains("refused=2") && lines[1].contains("since the last line"));
    }

    /// Log lines written while it is the subscriber's writer.
    #[derive(Clone, Default)]
    struct LogCapture(Arc<std::sync::Mutex<Vec<u8>>>);

    impl LogCapture {
        fn text(&self) -> String {
            let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
            String::from_utf8_lossy(&bytes).into_owned()
        }
    }

    impl Write for LogCapture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut b) = self.0.lock() {
                b.extend_from_slice(buf);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogCapture {
        type Writer = LogCapture;
        fn make_writer(&'a self) -> LogCapture {
            self.clone()
        }
    }
}
