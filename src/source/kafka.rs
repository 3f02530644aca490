//! The Kafka source (Flume's KafkaSource): consumes records from Kafka topics in a consumer
//! group and puts them into the channel in batches, one put transaction per batch.
//!
//! It owns the at-least-once hand-over from Kafka to the channel. librdkafka neither commits nor
//! stores offsets on its own (`enable.auto.commit` and `enable.auto.offset.store` are forced
//! off); the source commits a batch's offsets (the next offset of each partition, waiting for
//! the broker's answer up to [`offset_commits::PATIENCE`]) only after the channel has committed
//! the batch. So a crash, a stop or a failed offset commit
//! after the put re-delivers that batch (duplicates), and nothing is ever committed past a
//! record not yet in the channel (no loss):
//! - a full channel: the same batch is put again after a back-off, offsets untouched;
//! - a rebalance: the records of revoked partitions are dropped from the batch being filled
//!   (their new owner reads them again from the last commit) and never committed here;
//! - stop: the batch being filled or retried is abandoned without committing its offsets.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::Message;
use rdkafka::config::ClientConfig;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::Headers as _;

use super::{ChannelProcessor, Source, SourceCounters, StopFlag, stopping};
use crate::config::{KafkaSourceConfig, KafkaTopics};
use crate::event::{Event, Headers};
use crate::flume_event_format;
use crate::kafka_client as client_config;
use crate::kafka_client::OFFSET_HEADER;
use crate::kafka_client::assignment::{self, AssignmentWatch};
use crate::kafka_client::client_log::{ClientLog, Role};
use crate::kafka_client::offset_commits::{self, Committed, CommittingConsumer};
use crate::kafka_metrics::KafkaTimers;
use crate::stop::sleep_unless_stopped;

/// The longest single wait in `poll`, so that the stop flag is seen promptly.
const POLL: Duration = Duration::from_millis(100);

/// Holds the batch being filled, so that a rebalance (librdkafka calls back from inside `poll`)
/// drops the records of revoked partitions at once, before any record of a new assignment
/// (possibly of the same partition, read again from its last commit) arrives.
struct Context {
    source: String,
    filling: Mutex<Vec<Pending>>,
    log: ClientLog,
    assignment: AssignmentWatch,
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.log.log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(&error, reason);
    }
}

impl ConsumerContext for Context {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(list) => {
                let parts: Vec<(String, i32)> = list
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_owned(), e.partition()))
                    .collect();
                tracing::info!(source = %self.source, partitions = ?parts, "kafka: partitions revoked");
                self.assignment.revoked(parts.len(), Instant::now());
                // Not ours any more: never committed here, read again by the new owner.
                if let Ok(mut batch) = self.filling.lock() {
                    let before = batch.len();
                    batch.retain(|p| {
                        !parts
                            .iter()
                            .any(|(t, part)| *t == p.topic && *part == p.partition)
                    });
                    if batch.len() < before {
                        tracing::info!(
                            source = %self.source, dropped = before - batch.len(),
                            "kafka: uncommitted records of revoked partitions left to their new owner"
                        );
                    }
                }
            }
            Rebalance::Assign(list) => {
                let parts: Vec<(String, i32)> = list
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_owned(), e.partition()))
                    .collect();
                self.assignment.assigned(parts.len(), Instant::now());
                if parts.is_empty() {
                    tracing::warn!(source = %self.source, "{}", client_config::NOTHING_ASSIGNED);
                } else {
                    tracing::info!(source = %self.source, partitions = ?parts, "kafka: partitions assigned");
                }
            }
            Rebalance::Error(e) => {
                tracing::warn!(source = %self.source, error = %e, "kafka: rebalance failed")
            }
        }
    }
}

type KafkaConsumer = CommittingConsumer<Context>;

/// One record on its way to the channel, and where it came from (for the offset commit).
struct Pending {
    event: Event,
    topic: String,
    partition: i32,
    offset: i64,
}

pub struct KafkaSource {
    name: String,
    config: KafkaSourceConfig,
    consumer: Option<KafkaConsumer>,
}

impl KafkaSource {
    pub fn new(name: &str, config: KafkaSourceConfig) -> KafkaSource {
        KafkaSource {
            name: name.to_owned(),
            config,
            consumer: None,
        }
    }
}

/// The consumer's configuration for source `name`, and notes for the user about
/// `kafka.consumer.*` keys left out; errors name the property at fault.
fn consumer_config(
    name: &str,
    config: &KafkaSourceConfig,
) -> anyhow::Result<(ClientConfig, Vec<String>)> {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", &config.bootstrap_servers);
    cc.set("group.id", &config.group_id);
    // Flume's KafkaSource default (librdkafka's and Java's is `latest`); kafka.consumer.*
    // may override it.
    cc.set("auto.offset.reset", "earliest");
    let mut notes = Vec::new();
    client_config::apply(
        &mut cc,
        &format!("source {name}"),
        &config.consumer,
        &mut notes,
    )?;
    cc.set_log_level(RDKafkaLogLevel::Warning);
    Ok((cc, notes))
}

/// Creates the consumer of source `name`, not yet subscribed.
fn create_consumer(name: &str, cc: &ClientConfig) -> anyhow::Result<BaseConsumer<Context>> {
    cc.create_with_context(Context {
        source: name.to_owned(),
        filling: Mutex::default(),
        log: ClientLog::new(Role::Source, name, "kafka consumer"),
        assignment: AssignmentWatch::new(Instant::now()),
    })
    .map_err(|e| anyhow::anyhow!("source {name}: cannot create the Kafka consumer: {e}"))
}

/// Checks what only building the consumer can check (`weir agent --check`), without
/// subscribing; returns notes for the user.
pub fn check(name: &str, config: &KafkaSourceConfig) -> anyhow::Result<Vec<String>> {
    let (cc, notes) = consumer_config(name, config)?;
    let _: BaseConsumer<client_config::QuietContext> = cc
        .create_with_context(client_config::QuietContext)
        .map_err(|e| anyhow::anyhow!("source {name}: cannot create the Kafka consumer: {e}"))?;
    Ok(notes)
}

/// The consumer for source `name`, subscribed; errors name the property at fault.
fn connect(name: &str, config: &KafkaSourceConfig) -> anyhow::Result<KafkaConsumer> {
    let (cc, notes) = consumer_config(name, config)?;
    for note in notes {
        tracing::warn!(source = name, "{note}");
    }
    let consumer = create_consumer(name, &cc)?;
    let topics: Vec<&str> = match &config.topics {
        KafkaTopics::List(l) => l.iter().map(String::as_str).collect(),
        KafkaTopics::Regex(r) => vec![r.as_str()],
    };
    consumer
        .subscribe(&topics)
        .map_err(|e| anyhow::anyhow!("source {name}: cannot subscribe to {topics:?}: {e}"))?;
    CommittingConsumer::new(consumer, name)
        .map_err(|e| anyhow::anyhow!("source {name}: cannot start its offset-commit thread: {e}"))
}

impl Source for KafkaSource {
    fn start(&mut self) -> anyhow::Result<()> {
        self.consumer = Some(connect(&self.name, &self.config)?);
        Ok(())
    }

    fn run(self: Box<Self>, processor: ChannelProcessor, stop: StopFlag) {
        let Some(consumer) = self.consumer else {
            tracing::error!(source = %self.name, "kafka: run without start");
            return;
        };
        let config = &self.config;
        processor.counters().kafka.keep();
        let mut idle = Duration::ZERO;
        while !stopping(&stop) {
            let Some(batch) = fill(&self.name, config, &consumer, processor.counters(), &stop)
            else {
                break;
            };
            if batch.is_empty() {
                // Flume's PollableSource back-off: longer and longer naps while idle.
                idle = config.backoff.next(idle);
                if !sleep_unless_stopped(idle, &stop) {
                    break;
                }
                continue;
            }
            idle = Duration::ZERO;
            if !put(&self.name, config, &processor, &batch, &stop) {
                break;
            }
            commit(&self.name, &consumer, processor.counters(), &batch);
        }
        // Dropping the consumer leaves the group without committing anything more.
        tracing::info!(source = %self.name, "kafka: stopped");
    }
}

/// Polls records until `batchSize` of them or `batchDurationMillis` after the first poll.
/// Records of partitions revoked meanwhile are dropped. `None` when stopping (the batch is
/// abandoned uncommitted).
fn fill(
    name: &str,
    config: &KafkaSourceConfig,
    consumer: &KafkaConsumer,
    counters: &SourceCounters,
    stop: &StopFlag,
) -> Option<Vec<Pending>> {
    let started = Instant::now();
    let end = started + config.batch_duration;
    let filling = &consumer.context().filling;
    let len = || filling.lock().map(|b| b.len()).unwrap_or(0);
    let mut ok = true;
    while len() < config.batch_size {
        if stopping(stop) {
            ok = false;
            break;
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match consumer.poll(left.min(POLL)) {
            Some(Ok(m)) => {
                let pending = to_pending(name, config, &m);
                match filling.lock() {
                    Ok(mut b) => b.push(pending),
                    // Only a panic elsewhere poisons it; the record is simply not committed.
                    Err(_) => {
                        ok = false;
                        break;
                    }
                }
            }
            Some(Err(e)) => {
                counters.generic_failure();
                consumer.context().log.returned("consumer error", &e)
            }
            // Only an idle poll asks: records coming means partitions held.
            None => {
                if consumer.context().assignment.overdue(Instant::now()) {
                    tracing::warn!(source = name, "{}", assignment::NO_PARTITION_YET);
                }
            }
        }
    }
    let batch = filling
        .lock()
        .map(|mut b| std::mem::take(&mut *b))
        .unwrap_or_default();
    KafkaTimers::add(&counters.kafka.get_ms, started);
    if batch.is_empty() {
        counters.kafka.empty.fetch_add(1, Ordering::Relaxed);
    }
    ok.then_some(batch)
}

/// The record as an event: Flume's headers (topic, partition, offset, timestamp, key), the
/// record's own headers (all but `weir.offset`, or those `header.*` names), and the value (or, with `useFlumeEventFormat`, the Flume event it
/// holds).
fn to_pending(
    name: &str,
    config: &KafkaSourceConfig,
    m: &rdkafka::message::BorrowedMessage,
) -> Pending {
    let mut headers = Headers::new();
    let mut body: Vec<u8> = m.payload().unwrap_or_default().to_vec();
    if config.use_flume_event_format {
        match flume_event_format::decode(&body) {
            Ok((h, b)) => {
                headers = h;
                body = b;
            }
            // Kept as it came rather than dropped: the data is the user's.
            Err(e) => tracing::warn!(
                source = name, topic = m.topic(), partition = m.partition(), offset = m.offset(),
                error = %e, "kafka: value is not a Flume event (useFlumeEventFormat = true); kept as the body"
            ),
        }
    }
    if let Some(rh) = m.headers() {
        // A name given twice takes its last value, as Kafka's `Headers.lastHeader` reads it.
        let mut from_record = Headers::new();
        for h in rh.iter() {
            let mut keep = |name: &str| {
                let value = h.value.map(String::from_utf8_lossy).unwrap_or_default();
                from_record.insert(name.to_owned(), value.into_owned());
            };
            if config.header_map.is_empty() {
                // Copied unasked (Flume copies none without `header.*` keys): the headers
                // that say where the record is come from the record itself, so a record
                // header of such a name (a weir sink one hop before sends its event's) is
                // not taken for them (audit 25).
                let describes_record = [OFFSET_HEADER, "offset", "partition", "timestamp", "key"]
                    .contains(&h.key)
                    || config.topic_header.as_deref() == Some(h.key);
                if !describes_record {
                    keep(h.key);
                }
            } else {
                for (event_header, _) in config.header_map.iter().filter(|(_, r)| r == h.key) {
                    keep(event_header);
                }
            }
        }
        for (k, v) in from_record {
            headers.entry(k).or_insert(v);
        }
    }
    let mut set = |k: &str, v: String| {
        headers.entry(k.to_owned()).or_insert(v);
    };
    if let Some(topic_header) = &config.topic_header {
        set(topic_header, m.topic().to_owned());
    }
    set("partition", m.partition().to_string());
    set("offset", m.offset().to_string());
    let millis = m
        .timestamp()
        .to_millis()
        .unwrap_or_else(|| crate::event::now_millis() as i64);
    set("timestamp", millis.to_string());
    if let Some(key) = m.key() {
        headers.insert("key".into(), String::from_utf8_lossy(key).into_owned());
    }
    Pending {
        event: Event {
            headers,
            body: body.into(),
        },
        topic: m.topic().to_owned(),
        partition: m.partition(),
        offset: m.offset(),
    }
}

/// Puts the batch in one transaction, again and again with a growing back-off while the
/// channel refuses it. `false` when stopped first (nothing committed to Kafka).
fn put(
    name: &str,
    config: &KafkaSourceConfig,
    processor: &ChannelProcessor,
    batch: &[Pending],
    stop: &StopFlag,
) -> bool {
    let mut wait = Duration::ZERO;
    loop {
        let events: Vec<Event> = batch.iter().map(|p| p.event.clone()).collect();
        match processor.process(events) {
            Ok(()) => return true,
            Err(e) => {
                wait = config.backoff.next(wait);
                tracing::warn!(
                    source = name, events = batch.len(), error = %e, retry_in_ms = wait.as_millis() as u64,
                    "kafka: the channel refused the batch; retrying it (offsets not committed)"
                );
                // A batch held for long may outlive the group's patience
                // (max.poll.interval.ms): librdkafka rejoins at the next poll, and the offset
                // commit for partitions lost meanwhile fails, which only means duplicates.
                if !sleep_unless_stopped(wait, stop) {
                    return false;
                }
            }
        }
    }
}

/// Commits, for each partition of the batch, the offset after its last record: what the
/// channel now holds. A failed or unanswered commit only means those records come again
/// (duplicates).
fn commit(name: &str, consumer: &KafkaConsumer, counters: &SourceCounters, batch: &[Pending]) {
    let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
    for p in batch {
        let e = next.entry((p.topic.as_str(), p.partition)).or_insert(0);
        *e = (*e).max(p.offset + 1);
    }
    let offsets = next
        .iter()
        .map(|((topic, partition), offset)| (topic.to_string(), *partition, *offset))
        .collect();
    let started = Instant::now();
    let committed = consumer.commit_offsets(offsets, offset_commits::PATIENCE);
    KafkaTimers::add(&counters.kafka.commit_ms, started);
    match committed {
        Committed::Answered(Ok(())) => {}
        Committed::Answered(Err(e)) => {
            counters.generic_failure();
            tracing::warn!(
                source = name, error = %e, offsets = ?next,
                "kafka: offset commit failed; the batch (already in the channel) may be delivered again"
            );
        }
        Committed::Unanswered => {
            counters.generic_failure();
            tracing::warn!(
                source = name,
                offsets = ?next,
                waited_s = offset_commits::PATIENCE.as_secs(),
                "kafka: the broker has not answered the offset commit; going on without it (it may still land; if not, the batch, already in the channel, comes again)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProducerProperty;

    fn config(consumer: Vec<ProducerProperty>) -> KafkaSourceConfig {
        KafkaSourceConfig {
            bootstrap_servers: "127.0.0.1:1".into(),
            topics: KafkaTopics::List(vec!["t".into()]),
            group_id: "g".into(),
            batch_size: 10,
            batch_duration: Duration::from_millis(10),
            backoff: crate::config::PollBackoff {
                increment: Duration::from_millis(10),
                max: Duration::from_millis(10),
            },
            use_flume_event_format: false,
            topic_header: Some("topic".into()),
            header_map: Vec::new(),
            consumer,
        }
    }

    fn set_at(key: &str, value: &str) -> ProducerProperty {
        ProducerProperty {
            origin: Some(format!("f.properties:7: a.sources.r1.kafka.consumer.{key}")),
            ..ProducerProperty::new(key, value)
        }
    }

    /// librdkafka judges `kafka.consumer.*`: a value it refuses stops the source from starting
    /// with the file, line and key; a key it does not know is left out (noted in the log).
    #[test]
    fn consumer_properties_are_judged_by_librdkafka() {
        let e = connect("r1", &config(vec![set_at("fetch.min.bytes", "lots")]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("f.properties:7: a.sources.r1.kafka.consumer.fetch.min.bytes"),
            "{e}"
        );
        assert!(connect("r1", &config(vec![set_at("no.such.java.key", "1")])).is_ok());
        let ok = connect(
            "r1",
            &config(vec![
                set_at("session.timeout.ms", "6000"),
                ProducerProperty::new("enable.auto.commit", "false"),
            ]),
        );
        assert!(ok.is_ok());
    }
}
