//! The Kafka sink: synchronous delivery with the broker's acknowledgement before the take
//! commits (Flume's KafkaSink, with `acks=all` and idempotence by default).
//!
//! A batch is produced (`start`), then its delivery reports are awaited (`finish`). Only if all
//! of its records are acknowledged does the runner commit its take (durably advancing the log's
//! checkpoint). Any failure rolls the take back and the whole batch is sent again after a
//! backoff, so a crash or an error can duplicate a batch but never lose an event. Each record
//! carries its log offset in the `weir.offset` header so duplicates can be recognised downstream.
//!
//! Up to `kafka.inFlightBatches` (default 8) batches are on their way at once: while the oldest
//! waits for its acknowledgements the next is already produced, so the broker is not left idle
//! during the channel's take and commit. Takes still commit one at a time, oldest first, each
//! after its own acknowledgements (on the runner's commit thread, see `sink::committer`); a
//! failure rolls back every batch not yet acknowledged. 1 gives Flume's strict one-batch
//! cycle.
//!
//! The client is rdkafka over a vendored librdkafka: the pure-Rust `kafka` crate only speaks
//! Produce v0 / message format v0, which Kafka 4.x and tansu reject. Two things rdkafka's safe
//! API cannot do are done over its FFI, each in its own module: handing librdkafka a payload
//! without a copy (`enqueue`) and waking the sink when a delivery report arrives (`reports`).

use std::borrow::Cow;
use std::collections::VecDeque;
use std::ffi::{CStr, CString};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use parking_lot::Mutex;
use rdkafka::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, DeliveryResult, Producer, ProducerContext, PurgeConfig};

mod enqueue;
mod reports;

use super::{Sink, SinkCounters};
use crate::config::{KafkaSinkConfig, UnsendablePolicy};
use crate::event::Event;
use crate::flume_event_format;
use crate::kafka_client as client_config;
use crate::kafka_client::client_log::{ClientLog, Role};
use crate::kafka_metrics::KafkaTimers;
use crate::stop::{STOP_GRACE, StopFlag, stopping};
use enqueue::{NativeHeaders, OwnsPayload, Record, Value};
use reports::ReportSignal;

/// Longest sleep between looks at the stop flag while waiting for delivery reports (a report
/// wakes the sink at once).
const REPORT_WAIT: Duration = Duration::from_millis(10);

/// Record header carrying the event's offset in the channel.
pub use crate::kafka_client::OFFSET_HEADER;
/// Event header whose value becomes the record key (as in Flume).
pub const KEY_HEADER: &str = "key";

/// Outcome of one record, filled in by the delivery callback.
#[derive(Default)]
struct BatchState {
    failures: Mutex<Vec<(usize, KafkaError)>>,
    acked: std::sync::atomic::AtomicU64,
    /// Delivery reports received, successful or not.
    reported: AtomicUsize,
}

/// A batch handed to the producer whose delivery reports are still coming in.
struct OnItsWay {
    state: Arc<BatchState>,
    /// Records handed to the producer (each gets exactly one delivery report).
    sent: usize,
    /// Records the producer refused at once: (index in the batch, error, unsendable).
    local_failures: Vec<(usize, String, bool)>,
}

/// Travels with each record to its delivery report.
struct Pending {
    batch: Arc<BatchState>,
    index: usize,
    /// The record's payload when librdkafka reads it in place, until it reports the delivery
    /// (see `enqueue`).
    payload: Option<Bytes>,
}

impl OwnsPayload for Pending {
    fn payload(&self) -> Option<&Bytes> {
        self.payload.as_ref()
    }
}

/// Payloads at least this long are read in place by librdkafka; shorter ones are copied. At
/// 1 KiB not copying was +15% end to end; at 100 B sharing was slower than the copy (see
/// `enqueue`). The log hands out bodies from this size on as views into its map too.
const IN_PLACE_MIN: usize = 256;

struct Context_ {
    /// Shared by every producer the sink starts, so that a replaced producer does not log
    /// again what its predecessor just did.
    log: Arc<ClientLog>,
}

impl ClientContext for Context_ {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.log.log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // Connection trouble is reported here and retried by librdkafka itself; the batch's
        // delivery reports decide success.
        self.log.error(&error, reason);
    }
}

impl ProducerContext for Context_ {
    type DeliveryOpaque = Box<Pending>;

    fn delivery(&self, result: &DeliveryResult<'_>, pending: Self::DeliveryOpaque) {
        match result {
            Ok(_) => {
                pending.batch.acked.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => pending
                .batch
                .failures
                .lock()
                .push((pending.index, e.clone())),
        }
        // After the outcome is recorded: a waiter that sees the count sees the outcome.
        pending.batch.reported.fetch_add(1, Ordering::Release);
    }
}

pub struct KafkaSink {
    name: String,
    config: KafkaSinkConfig,
    client_config: ClientConfig,
    client_log: Arc<ClientLog>,
    /// Wakes the sink when reports arrive. Declared before `producer` so that it is dropped
    /// first: it holds a reference on the producer's queue.
    reports: ReportSignal,
    /// Polled by this sink itself (while it waits for reports, and when idle), not by a
    /// background thread: a ThreadedProducer's poller would take the delivery reports the sink
    /// waits for, and measured 4% slower.
    producer: BaseProducer<Context_>,
    stop: StopFlag,
    counters: Arc<SinkCounters>,
    /// Started batches, oldest first (at most `kafka.inFlightBatches`).
    on_its_way: VecDeque<OnItsWay>,
    /// `kafka.topic` as librdkafka takes it, built once rather than per record.
    topic_c: CString,
    /// When a replaced producer was last logged: through an outage one is replaced after
    /// every timed-out batch, and the sink's own outage lines already count those.
    replacement_logged: Option<Instant>,
    /// Until when reports are still waited for once the agent is stopping ([`STOP_GRACE`] from
    /// the first look that found it stopping), one deadline for all the batches on their way.
    stop_deadline: std::cell::Cell<Option<Instant>>,
}

/// `kafka.topic` with each `%{name}` replaced by the event's header `name` (empty when the event
/// has none), as Flume's sink does ("arbitrary header substitution", Flume's `BucketPath`), so
/// `kafka.topic = logs-%{app}` sends each application's events to its own topic. A topic
/// without `%{` is returned as it is, with no allocation.
fn substitute_headers<'t>(topic: &'t str, event: &Event) -> Cow<'t, str> {
    if !topic.contains("%{") {
        return Cow::Borrowed(topic);
    }
    let mut out = String::with_capacity(topic.len());
    let mut rest = topic;
    while let Some(at) = rest.find("%{") {
        out.push_str(&rest[..at]);
        match rest[at + 2..].find('}') {
            Some(end) => {
                let name = &rest[at + 2..at + 2 + end];
                out.push_str(event.headers.get(name).unwrap_or(""));
                rest = &rest[at + 2 + end + 1..];
            }
            None => {
                out.push_str(&rest[at..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Errors no retry can fix: the record or the permission is wrong, not the weather.
fn is_unsendable(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                // A partition number (partitionIdHeader, defaultPartitionId) past the topic's
                // partitions: Java's producer throws at once, as librdkafka fails it locally.
                | RDKafkaErrorCode::UnknownPartition
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::InvalidTopic
        )
    )
}

impl KafkaSink {
    pub fn new(
        name: &str,
        config: KafkaSinkConfig,
        stop: StopFlag,
        counters: Arc<SinkCounters>,
    ) -> anyhow::Result<KafkaSink> {
        let (cc, notes) = client_config::build(name, &config)?;
        for note in notes {
            tracing::warn!(sink = name, "{note}");
        }
        counters.kafka.keep();
        let last_error = counters.clone();
        let client_log = Arc::new(
            ClientLog::new(Role::Sink, name, "kafka client")
                .with_problems(move |text| last_error.record_error(text)),
        );
        let producer = create_producer(name, &cc, &client_log).map_err(|e| {
            anyhow::anyhow!(client_config::explain_refusal(&config, &format!("{e:#}")))
        })?;
        let topic_c = CString::new(config.topic.as_str()).with_context(|| {
            format!(
                "sink {name}: kafka.topic {:?} holds a NUL byte",
                config.topic
            )
        })?;
        tracing::info!(sink = name, servers = %config.bootstrap_servers, topic = %config.topic, "kafka sink ready");
        Ok(KafkaSink {
            reports: ReportSignal::new(&producer),
            name: name.to_owned(),
            config,
            client_config: cc,
            client_log,
            producer,
            stop,
            counters,
            on_its_way: VecDeque::new(),
            topic_c,
            replacement_logged: None,
            stop_deadline: std::cell::Cell::new(None),
        })
    }

    /// Where an event goes: its topic and partition, from headers as configured.
    fn route<'e>(&'e self, event: &'e Event) -> Result<(Cow<'e, str>, Option<i32>), String> {
        let topic = match event.headers.get(&self.config.topic_header) {
            Some(t) if self.config.allow_topic_override && !t.is_empty() => Cow::Borrowed(t),
            _ => substitute_headers(&self.config.topic, event),
        };
        // A topic made from headers is checked here (the configured one was at start): the
        // broker's answer to a bad name is only "unknown topic", retried for ever with the
        // whole batch.
        if *topic != *self.config.topic
            && let Some(why) = crate::config::kafka_topic_problem(&topic)
        {
            return Err(format!(
                "the topic {topic:?} this event's headers make is not a Kafka topic name: it {why}"
            ));
        }
        let partition = match self
            .config
            .partition_header
            .as_ref()
            .and_then(|h| Some((h, event.headers.get(h)?)))
        {
            Some((h, p)) => Some(
                p.parse::<i32>()
                    .ok()
                    .filter(|p| *p >= 0)
                    .ok_or_else(|| format!("header {h:?} = {p:?} is not a partition number"))?,
            ),
            None => self.config.default_partition,
        };
        Ok((topic, partition))
    }

    /// The record timestamp `timestampHeader` gives, if set and valid (counted in `bad` if
    /// not: Kafka refuses negative timestamps, and Flume stamps such records with the time
    /// they are sent, after a warning).
    fn timestamp(&self, event: &Event, bad: &mut usize) -> Option<i64> {
        let value = event.headers.get(self.config.timestamp_header.as_ref()?)?;
        let ms = value.trim().parse::<i64>().ok().filter(|ms| *ms >= 0);
        if ms.is_none() {
            *bad += 1;
        }
        ms
    }

    /// The record headers of `event`: its headers, all or as `header.*` maps them, and its
    /// offset in the channel.
    fn record_headers(&self, event: &Event, offset_text: &str) -> NativeHeaders {
        let map = &self.config.header_map;
        let mut headers = NativeHeaders::with_capacity(
            if map.is_empty() {
                event.headers.len()
            } else {
                map.len()
            } + 1,
        );
        if map.is_empty() {
            // An upstream hop's offset (an event read from Kafka with `header.*` keeping it)
            // would otherwise travel beside this one under the same name.
            for (k, v) in &event.headers {
                if k != OFFSET_HEADER {
                    headers.add(k, v.as_bytes());
                }
            }
        } else {
            for (from, to) in map {
                if let Some(v) = event.headers.get(from) {
                    headers.add(to, v.as_bytes());
                }
            }
        }
        headers.add(OFFSET_HEADER, offset_text.as_bytes());
        headers
    }

    /// Writes refused events to the dead-letter file and syncs it.
    fn dead_letter(
        &self,
        dir: &std::path::Path,
        events: &[(&(u64, Event), String)],
    ) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let path = dir.join(format!("{}.deadletter.jsonl", self.name));
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("open {}", path.display()))?;
        let mut out = Vec::new();
        for ((offset, e), error) in events {
            let mut rec = serde_json::Map::new();
            rec.insert("offset".into(), (*offset).into());
            rec.insert("error".into(), error.clone().into());
            rec.insert("headers".into(), serde_json::to_value(&e.headers)?);
            match std::str::from_utf8(&e.body) {
                Ok(s) => rec.insert("body".into(), s.into()),
                Err(_) => rec.insert(
                    "body_hex".into(),
                    e.body
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<String>()
                        .into(),
                ),
            };
            serde_json::to_writer(&mut out, &rec)?;
            out.push(b'\n');
        }
        f.write_all(&out)?;
        f.sync_data()?;
        tracing::error!(sink = %self.name, events = events.len(), file = %path.display(), "events the broker refuses for good were written to the dead-letter file");
        Ok(())
    }

    /// Starts a new producer after a failed batch when the old one may be wedged: a fatal
    /// error, or a batch that timed out. An idempotent producer whose broker lost its state (a
    /// restart) keeps retrying sequence numbers the new broker never saw, batch after batch
    /// (observed with tansu); a new producer gets a new producer id. Nothing is lost: every
    /// record of the batch has been reported, and the batch is rolled back and sent again.
    fn replace_if_wedged(&mut self, timed_out: bool) {
        let fatal = self.producer.client().fatal_error();
        if fatal.is_none() && !timed_out {
            return;
        }
        let now = Instant::now();
        if self
            .replacement_logged
            .is_none_or(|at| now.duration_since(at) >= crate::kafka_client::client_log::QUIET)
        {
            self.replacement_logged = Some(now);
            match &fatal {
                Some((code, reason)) => tracing::warn!(
                    sink = %self.name,
                    "starting a new kafka producer: the old one hit a fatal error ({code:?}: {reason})"
                ),
                None => tracing::info!(
                    sink = %self.name,
                    "starting a new kafka producer, as after every batch not acknowledged \
                     within message.timeout.ms (the lines before say why): a precaution, since \
                     a producer whose broker came back without its state stays wedged (logged \
                     once a minute)"
                ),
            }
        }
        match create_producer(&self.name, &self.client_config, &self.client_log) {
            Ok(p) => {
                let old = std::mem::replace(&mut self.producer, p);
                // The old producer's signal goes before the old producer does.
                self.reports = ReportSignal::new(&self.producer);
                drop(old);
            }
            Err(e) => {
                tracing::error!(sink = %self.name, error = %format!("{e:#}"), "cannot start a new kafka producer")
            }
        }
    }
}

/// What `weir agent --check` reports of a Kafka sink: the client is configured and created as
/// at start (then dropped before it sends anything), so a setting librdkafka refuses fails the
/// check, not the start. Returns the notes about properties left out.
pub fn check(name: &str, config: &KafkaSinkConfig) -> anyhow::Result<Vec<String>> {
    let (cc, notes) = client_config::build(name, config)?;
    let _: BaseProducer<crate::kafka_client::QuietContext> = cc
        .create_with_context(crate::kafka_client::QuietContext)
        .map_err(|e| anyhow::anyhow!(client_config::explain_refusal(config, &e.to_string())))?;
    Ok(notes)
}

fn create_producer(
    name: &str,
    cc: &ClientConfig,
    log: &Arc<ClientLog>,
) -> anyhow::Result<BaseProducer<Context_>> {
    cc.create_with_context(Context_ { log: log.clone() }).with_context(|| {
        format!("sink {name}: the Kafka producer configuration was refused (check the kafka.producer.* keys)")
    })
}

impl Sink for KafkaSink {
    fn deliver(&mut self, events: &[(u64, Event)]) -> anyhow::Result<()> {
        self.start(events)?;
        self.finish(events)
    }

    fn in_flight_batches(&self) -> usize {
        self.config.in_flight_batches
    }

    fn start(&mut self, events: &[(u64, Event)]) -> anyhow::Result<()> {
        let started = Instant::now();
        let result = self.produce_batch(events);
        KafkaTimers::add(&self.counters.kafka.send_ms, started);
        if result.is_err() {
            self.abandon();
        }
        result
    }

    fn finish(&mut self, events: &[(u64, Event)]) -> anyhow::Result<()> {
        let started = Instant::now();
        let result = self.await_oldest(events);
        KafkaTimers::add(&self.counters.kafka.send_ms, started);
        if let Err(e) = &result {
            // Every later batch is rolled back with this one. Let their reports come in rather
            // than purge them (purging in-flight records can upset an idempotent producer's
            // sequence), so the producer is idle before a wedged one is replaced.
            self.settle_on_its_way();
            let timed_out = e.to_string().contains("MessageTimedOut");
            self.replace_if_wedged(timed_out);
        }
        result
    }

    fn abandon(&mut self) {
        if self.on_its_way.is_empty() {
            return;
        }
        self.producer
            .purge(PurgeConfig::default().queue().inflight());
        // Serve the purge reports so they do not land on a later batch's poll.
        self.producer.poll(Duration::ZERO);
        self.on_its_way.clear();
    }

    fn idle(&mut self) -> anyhow::Result<()> {
        // Serve client callbacks (connection errors, logs) while there is nothing to send.
        self.producer.poll(Duration::ZERO);
        Ok(())
    }

    fn close(&mut self) -> anyhow::Result<()> {
        // Nothing is pending: the runner finishes or abandons every started batch first.
        Ok(())
    }
}

impl KafkaSink {
    /// Waits until every batch on its way has all its delivery reports (each comes within
    /// `message.timeout.ms`), or abandons them at once when stopping, then forgets them.
    fn settle_on_its_way(&mut self) {
        let on_its_way = std::mem::take(&mut self.on_its_way);
        let settled = self.serve_reports_until(|| {
            on_its_way
                .iter()
                .all(|b| b.state.reported.load(Ordering::Acquire) >= b.sent)
        });
        if !settled {
            self.on_its_way = on_its_way;
            self.abandon();
        }
    }

    /// Serves delivery reports until `done` holds (true), or until [`STOP_GRACE`] after the
    /// agent began stopping (false). Not
    /// `flush`, and no blocking `poll`: in rdkafka 0.39 both keep polling until their timeout
    /// even once the reports are in (measured: a batch took exactly the poll timeout). So the
    /// queue is served without blocking and the sink sleeps until librdkafka signals a new
    /// report (see `reports`); the bounded wait keeps a shutdown prompt.
    fn serve_reports_until(&self, done: impl Fn() -> bool) -> bool {
        loop {
            self.producer.poll(Duration::ZERO);
            // One event per non-blocking poll: serve them all, or the signal (sent when the
            // queue goes from empty to not empty) would not come again.
            while self.reports.queued() > 0 {
                self.producer.poll(Duration::ZERO);
            }
            if done() {
                return true;
            }
            if stopping(&self.stop) {
                let deadline = self.stop_deadline.get().unwrap_or_else(|| {
                    let at = Instant::now() + STOP_GRACE;
                    self.stop_deadline.set(Some(at));
                    at
                });
                if Instant::now() >= deadline {
                    return false;
                }
            }
            self.reports.wait(REPORT_WAIT);
        }
    }

    /// Hands every event of the batch to the producer and records the batch as on its way.
    fn produce_batch(&mut self, events: &[(u64, Event)]) -> anyhow::Result<()> {
        let batch = Arc::new(BatchState::default());
        let mut local_failures: Vec<(usize, String, bool)> = Vec::new();
        let mut sent = 0usize;
        let mut bad_timestamps = 0usize;
        for (index, (offset, event)) in events.iter().enumerate() {
            let (topic, partition) = match self.route(event) {
                Ok(r) => r,
                Err(why) => {
                    local_failures.push((index, why, true));
                    continue;
                }
            };
            let topic_c;
            let topic: &CStr = if *topic == *self.config.topic {
                &self.topic_c
            } else {
                match CString::new(topic.as_bytes()) {
                    Ok(t) => {
                        topic_c = t;
                        &topic_c
                    }
                    Err(_) => {
                        local_failures.push((
                            index,
                            format!("topic {topic:?} holds a NUL byte"),
                            true,
                        ));
                        continue;
                    }
                }
            };
            let avro = self
                .config
                .use_flume_event_format
                .then(|| Bytes::from(flume_event_format::encode(&event.headers, &event.body)));
            let payload = avro.as_ref().unwrap_or(&event.body);
            let in_place = payload.len() >= IN_PLACE_MIN;
            let mut opaque = Box::new(Pending {
                batch: batch.clone(),
                index,
                payload: in_place.then(|| payload.clone()),
            });
            let mut offset_text = itoa::Buffer::new();
            let offset_text = offset_text.format(*offset);
            let timestamp = self.timestamp(event, &mut bad_timestamps);
            loop {
                let headers = self.record_headers(event, offset_text);
                let record = Record {
                    topic,
                    partition,
                    value: if in_place {
                        Value::InOpaque
                    } else {
                        Value::Copy(payload)
                    },
                    key: event.headers.get(KEY_HEADER).map(|k| k.as_bytes()),
                    headers,
                    timestamp,
                };
                match enqueue::enqueue(&self.producer, record, opaque) {
                    Ok(()) => {
                        self.counters.sent.fetch_add(1, Ordering::Relaxed);
                        sent += 1;
                        break;
                    }
                    Err((RDKafkaErrorCode::QueueFull, back)) => {
                        // The local queue is full (broker slow or away): wait for room.
                        if stopping(&self.stop) {
                            bail!("stopping: batch abandoned, it will be sent again after restart");
                        }
                        opaque = back;
                        self.producer.poll(Duration::ZERO);
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err((code, _)) => {
                        let e = KafkaError::MessageProduction(code);
                        local_failures.push((index, e.to_string(), is_unsendable(&e)));
                        break;
                    }
                }
            }
        }
        if bad_timestamps > 0 {
            tracing::warn!(
                sink = %self.name,
                events = bad_timestamps,
                header = self.config.timestamp_header.as_deref().unwrap_or_default(),
                "timestampHeader value is not a time in epoch milliseconds; those records are stamped with the time they are sent"
            );
        }
        self.on_its_way.push_back(OnItsWay {
            state: batch,
            sent,
            local_failures,
        });
        Ok(())
    }

    /// Waits for every delivery report of the oldest batch on its way and decides its fate.
    fn await_oldest(&mut self, events: &[(u64, Event)]) -> anyhow::Result<()> {
        let Some(OnItsWay {
            state: batch,
            sent,
            local_failures,
        }) = self.on_its_way.pop_front()
        else {
            bail!("sink {}: no batch on its way to finish", self.name);
        };
        if !self.serve_reports_until(|| batch.reported.load(Ordering::Acquire) >= sent) {
            bail!(
                "stopping: batch abandoned before the broker acknowledged it; it will be sent again after restart"
            );
        }
        self.counters
            .acked
            .fetch_add(batch.acked.load(Ordering::Relaxed), Ordering::Relaxed);
        let mut failures: Vec<(usize, String, bool)> = batch
            .failures
            .lock()
            .drain(..)
            .map(|(i, e)| {
                let unsendable = is_unsendable(&e);
                (i, e.to_string(), unsendable)
            })
            .collect();
        failures.extend(local_failures);
        if failures.is_empty() {
            return Ok(());
        }
        failures.sort_by_key(|f| f.0);
        let unsendable: Vec<_> = failures.iter().filter(|f| f.2).collect();
        // Named first: a failure that holds the batch back (a retry may get it through), not
        // one of the records the broker will never accept, which wait for it (audit 25).
        let blocking = failures.iter().find(|f| !f.2);
        let shown = blocking.unwrap_or(&failures[0]);
        // The topic and brokers, so that an "unknown topic" names the topic to create.
        let topic = self
            .route(&events[shown.0].1)
            .map(|(t, _)| format!(" to topic {t}"))
            .unwrap_or_default();
        let mut summary = format!(
            "{} of {} records not acknowledged by {} (first: offset {}{topic}: {})",
            failures.len(),
            events.len(),
            self.config.bootstrap_servers,
            events[shown.0].0,
            shown.1
        );
        if blocking.is_none() {
            self.counters
                .unsendable
                .fetch_add(unsendable.len() as u64, Ordering::Relaxed);
            if let UnsendablePolicy::DeadLetter(dir) = &self.config.on_unsendable {
                self.counters.record_error(summary);
                let refused: Vec<_> = unsendable
                    .iter()
                    .map(|f| (&events[f.0], f.1.clone()))
                    .collect();
                self.dead_letter(dir, &refused)?;
                return Ok(());
            }
            summary.push_str(
                ": the broker will never accept these records; retrying (kafka.onUnsendable = \
                 block) until the cause is fixed, or set kafka.onUnsendable = deadletter",
            );
        } else if let Some(refused) = unsendable.first() {
            let then = match &self.config.on_unsendable {
                UnsendablePolicy::DeadLetter(_) => {
                    "they go to the dead-letter file once the others are acknowledged"
                }
                UnsendablePolicy::Block => "kafka.onUnsendable = block",
            };
            summary.push_str(&format!(
                "; {} of them the broker will never accept (offset {}: {}; {then})",
                unsendable.len(),
                events[refused.0].0,
                refused.1
            ));
        }
        self.counters.record_error(summary.clone());
        bail!("{summary}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_header_substitution_follows_flume() {
        let e = Event::new(&b"x"[..])
            .with_header("app", "billing")
            .with_header("env", "prod");
        assert!(matches!(
            substitute_headers("plain", &e),
            Cow::Borrowed("plain")
        ));
        assert_eq!(substitute_headers("logs-%{app}", &e), "logs-billing");
        assert_eq!(
            substitute_headers("%{env}.%{app}.%{missing}x", &e),
            "prod.billing.x"
        );
        assert_eq!(substitute_headers("odd-%{app", &e), "odd-%{app");
    }
}
