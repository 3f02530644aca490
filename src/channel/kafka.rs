//! The Kafka channel (Flume's `org.apache.flume.channel.kafka.KafkaChannel`): the events are
//! stored in a Kafka topic. A put produces them and returns only once the broker acknowledged
//! every one (`acks=all`, idempotent producer); a take reads them in the channel's consumer
//! group and commits their offsets when the take commits.
//!
//! Put. One `put` call produces each event (its `key` header as the record key, the partition
//! from `partitionIdHeader`/`defaultPartitionId`, else the producer's partitioner) and waits
//! for every delivery report, up to the producer's `message.timeout.ms` (this channel's default
//! 10 s) plus a little. Any failure fails the whole put, so its source tells its client to
//! retry; the records already acknowledged stay in the topic, so a retried put can duplicate
//! some (at least once, as in Flume). After a timeout or a fatal producer error a new producer
//! is started (an idempotent producer whose broker lost its state keeps failing otherwise).
//! The producer has its own polling thread (rdkafka's `ThreadedProducer`), unlike the Kafka
//! sink's: puts come from several source threads at once, each waiting on its own reports.
//! A put into an optional channel (no wait asked) still waits for its acknowledgements: an
//! acknowledgement is not room that may come later.
//!
//! Take. The consumer is created on the first `take`, never at start: an agent whose Kafka
//! channel has no sink (the common "source → Kafka channel" agent) must not join the group, or
//! it would be assigned partitions and starve the group's real consumers. One consumer serves
//! every sink of the channel, behind a mutex. Offsets are committed when a take commits (by
//! `kafka_client::offset_commits`, which a broker that stopped answering holds up for 5 s at
//! most), and only up to the oldest record still taken or rolled back in that partition, so
//! a take that commits while an older one is in flight never commits past it. A rolled back
//! take's records are kept in memory and handed out again, first and in order, by the next
//! take (no seek). On a rebalance the records of revoked partitions are dropped from that
//! buffer and never committed here: their new owner reads them again from the last commit.
//! A record that does not decode as a Flume event (`parseAsFlumeEvent = true`) is handed out
//! with its whole value as the body and no headers, with a warning naming topic, partition and
//! offset (Flume fails the take, again and again, on such a record).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};
use rdkafka::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use super::{
    Channel, ChannelCounters, ChannelError, ChannelStats, Returned, Taken, check_transaction,
};
use crate::config::KafkaChannelConfig;
use crate::event::{Event, Headers};
use crate::flume_event_format;
use crate::kafka_client;
use crate::kafka_client::assignment::AssignmentWatch;
use crate::kafka_client::client_log::{ClientLog, Role};
use crate::kafka_client::offset_commits::{self, Committed, CommittingConsumer};
use crate::kafka_metrics::KafkaTimers;
use crate::stop::Stop;

/// Event header whose value becomes the record key, and which a taken record's key becomes
/// (as in Flume).
const KEY_HEADER: &str = "key";

/// How long after `message.timeout.ms` a put still waits for its delivery reports (librdkafka
/// reports every record by then, give or take its timer's granularity).
const REPORT_GRACE: Duration = Duration::from_secs(5);

/// The outcome of one put's records, filled in by delivery reports.
#[derive(Default)]
struct PutState {
    outcome: Mutex<PutOutcome>,
    reported: Condvar,
}

#[derive(Default)]
struct PutOutcome {
    reports: usize,
    failures: Vec<KafkaError>,
}

struct ProduceContext {
    /// Shared with the producers that replace this one (see `KafkaChannel::producer_log`).
    log: Arc<ClientLog>,
}

impl ClientContext for ProduceContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.log.log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // librdkafka retries connections itself; each put's delivery reports decide.
        self.log.error(&error, reason);
    }
}

impl ProducerContext for ProduceContext {
    type DeliveryOpaque = Arc<PutState>;

    fn delivery(&self, result: &DeliveryResult<'_>, state: Arc<PutState>) {
        let mut o = state.outcome.lock();
        if let Err((e, _)) = result {
            o.failures.push(e.clone());
        }
        o.reports += 1;
        drop(o);
        state.reported.notify_all();
    }
}

type KafkaProducer = ThreadedProducer<ProduceContext>;

/// Records which partitions a rebalance took away, for the take that is polling (librdkafka
/// calls back from inside `poll`, while the take holds the channel's consumer lock).
struct ConsumeContext {
    channel: String,
    revoked: std::sync::Mutex<Vec<i32>>,
    log: Arc<ClientLog>,
    assignment: AssignmentWatch,
}

impl ClientContext for ConsumeContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        self.log.log(level, fac, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(&error, reason);
    }
}

impl ConsumerContext for ConsumeContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(list) => {
                let parts: Vec<i32> = list.elements().iter().map(|e| e.partition()).collect();
                tracing::info!(channel = %self.channel, partitions = ?parts, "kafka: partitions revoked");
                self.assignment.revoked(parts.len(), Instant::now());
                if let Ok(mut r) = self.revoked.lock() {
                    r.extend(parts);
                }
            }
            Rebalance::Assign(list) => {
                let parts: Vec<i32> = list.elements().iter().map(|e| e.partition()).collect();
                self.assignment.assigned(parts.len(), Instant::now());
                if parts.is_empty() {
                    tracing::warn!(channel = %self.channel, "{}", kafka_client::NOTHING_ASSIGNED);
                } else {
                    tracing::info!(channel = %self.channel, partitions = ?parts, "kafka: partitions assigned");
                }
            }
            Rebalance::Error(e) => {
                tracing::warn!(channel = %self.channel, error = %e, "kafka: rebalance failed")
            }
        }
    }
}

type KafkaConsumer = CommittingConsumer<ConsumeContext>;

/// Where a handed-out record came from.
#[derive(Clone, Copy, Debug)]
struct Origin {
    seq: u64,
    partition: i32,
    /// The partition's assignment it was read under (see [`Partition::epoch`]).
    epoch: u64,
    offset: i64,
}

/// The channel's view of one partition it reads.
struct Partition {
    /// Changes each time the partition is assigned anew: a record read under an older
    /// assignment is its new owner's business, and its offsets are not committed here.
    epoch: u64,
    /// Offsets handed out and not committed (in a take or rolled back).
    outstanding: BTreeSet<i64>,
    /// One past the highest offset handed out.
    next: i64,
    /// The last offset committed, or where the channel started reading it.
    committed: i64,
}

/// Everything the take side holds, behind one lock.
#[derive(Default)]
struct TakeSide {
    /// Created by the first take.
    consumer: Option<KafkaConsumer>,
    partitions: HashMap<i32, Partition>,
    next_epoch: u64,
    next_seq: u64,
    /// Rolled back records, to be handed out again first, oldest first.
    returned: VecDeque<(Origin, Event)>,
    /// Takes not yet committed or rolled back, by the sequence number of their first record.
    in_flight: HashMap<u64, Vec<Origin>>,
}

impl TakeSide {
    /// Forgets the partitions revoked since the last look: their rolled back records and those
    /// of the take being filled are dropped (their new owner reads them again).
    fn apply_revocations(&mut self, filling: &mut Vec<(Origin, Event)>) {
        let Some(consumer) = &self.consumer else {
            return;
        };
        let revoked: Vec<i32> = match consumer.context().revoked.lock() {
            Ok(mut r) => std::mem::take(&mut *r),
            Err(_) => return,
        };
        if revoked.is_empty() {
            return;
        }
        for p in &revoked {
            self.partitions.remove(p);
        }
        self.returned
            .retain(|(o, _)| !revoked.contains(&o.partition));
        filling.retain(|(o, _)| !revoked.contains(&o.partition));
    }

    /// The records of a committed take are done: returns, for each partition they came from,
    /// the offset to commit now, if it moved. That is up to the oldest record of the partition
    /// still out (taken or rolled back), so that a crash delivers it again; else past
    /// everything handed out. Records of a partition revoked meanwhile count for nothing.
    fn settle(&mut self, origins: &[Origin]) -> Vec<(i32, i64)> {
        let mut touched = BTreeSet::new();
        for o in origins {
            if let Some(p) = self.partitions.get_mut(&o.partition)
                && p.epoch == o.epoch
            {
                p.outstanding.remove(&o.offset);
                touched.insert(o.partition);
            }
        }
        touched
            .into_iter()
            .filter_map(|partition| {
                let p = self.partitions.get(&partition)?;
                let to = p.outstanding.first().copied().unwrap_or(p.next);
                (to > p.committed).then_some((partition, to))
            })
            .collect()
    }

    /// Records that `offset` of `partition` is handed out, returning its origin.
    fn hand_out(&mut self, partition: i32, offset: i64) -> Origin {
        let epoch = match self.partitions.get(&partition) {
            Some(p) => p.epoch,
            None => {
                self.next_epoch += 1;
                self.partitions.insert(
                    partition,
                    Partition {
                        epoch: self.next_epoch,
                        outstanding: BTreeSet::new(),
                        next: offset,
                        committed: offset,
                    },
                );
                self.next_epoch
            }
        };
        if let Some(p) = self.partitions.get_mut(&partition) {
            p.outstanding.insert(offset);
            p.next = p.next.max(offset + 1);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        Origin {
            seq,
            partition,
            epoch,
            offset,
        }
    }
}

pub struct KafkaChannel {
    name: String,
    config: KafkaChannelConfig,
    producer_config: ClientConfig,
    /// Replaced when it may be wedged (see `put_waiting`); each put holds its own reference.
    producer: RwLock<Arc<KafkaProducer>>,
    /// What the producers and the consumer report, each throttled across the clients that
    /// replace one another, so a replacement does not log again what its predecessor just did.
    producer_log: Arc<ClientLog>,
    consumer_log: Arc<ClientLog>,
    take_side: Mutex<TakeSide>,
    counters: ChannelCounters,
    /// The producer's `message.max.bytes`: a larger record is refused before anything of its put
    /// is sent (see `KafkaChannel::oversized`).
    max_record: u64,
}

/// librdkafka's largest per-record overhead in a v2 record batch
/// (`RD_KAFKAP_MESSAGE_V2_MAX_OVERHEAD`: the varints of length, timestamp and offset deltas,
/// key and value lengths and header count, and the attributes byte), which it adds to key and
/// value before comparing with `message.max.bytes`.
const RECORD_OVERHEAD: u64 = 5 + 1 + 10 + 5 + 5 + 5 + 5;

/// librdkafka's default `message.max.bytes`.
const DEFAULT_MAX_RECORD: u64 = 1_000_000;

/// The client configuration of channel `name`: its producer's (no `group`) or its consumer's
/// (in `group`) from `properties`, with notes about properties left out.
fn client_config(
    name: &str,
    config: &KafkaChannelConfig,
    properties: &[crate::config::ProducerProperty],
    group: Option<&str>,
) -> anyhow::Result<(ClientConfig, Vec<String>)> {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", &config.bootstrap_servers);
    if let Some(group) = group {
        cc.set("group.id", group);
    }
    let mut notes = Vec::new();
    kafka_client::apply(&mut cc, &format!("channel {name}"), properties, &mut notes)?;
    cc.set_log_level(RDKafkaLogLevel::Warning);
    Ok((cc, notes))
}

fn producer_config(
    name: &str,
    config: &KafkaChannelConfig,
) -> anyhow::Result<(ClientConfig, Vec<String>)> {
    client_config(name, config, &config.producer, None)
}

fn consumer_config(
    name: &str,
    config: &KafkaChannelConfig,
) -> anyhow::Result<(ClientConfig, Vec<String>)> {
    client_config(name, config, &config.consumer, Some(&config.group_id))
}

fn create_producer(
    name: &str,
    config: &KafkaChannelConfig,
    cc: &ClientConfig,
    log: &Arc<ClientLog>,
) -> anyhow::Result<KafkaProducer> {
    cc.create_with_context(ProduceContext { log: log.clone() })
        .map_err(|e| {
            anyhow::anyhow!(
                "channel {name}: the Kafka producer configuration was refused (check the \
             kafka.producer.* keys): {}",
                kafka_client::explain_refusal_of(&config.producer, &e.to_string())
            )
        })
}

fn create_consumer(
    name: &str,
    config: &KafkaChannelConfig,
    cc: &ClientConfig,
    log: &Arc<ClientLog>,
) -> anyhow::Result<BaseConsumer<ConsumeContext>> {
    cc.create_with_context(ConsumeContext {
        channel: name.to_owned(),
        revoked: std::sync::Mutex::default(),
        log: log.clone(),
        assignment: AssignmentWatch::new(Instant::now()),
    })
    .map_err(|e| consumer_refused(name, config, &e))
}

fn consumer_refused(name: &str, config: &KafkaChannelConfig, e: &KafkaError) -> anyhow::Error {
    anyhow::anyhow!(
        "channel {name}: the Kafka consumer configuration was refused (check the \
         kafka.consumer.* keys): {}",
        kafka_client::explain_refusal_of(&config.consumer, &e.to_string())
    )
}

/// What `weir agent --check` reports of a Kafka channel: its producer and consumer are
/// configured and created as at start (the consumer is not subscribed, so nothing joins the
/// group), so a property librdkafka refuses fails the check. Returns the notes about
/// properties left out.
pub fn check(name: &str, config: &KafkaChannelConfig) -> anyhow::Result<Vec<String>> {
    let (pc, mut notes) = producer_config(name, config)?;
    let _: rdkafka::producer::BaseProducer<kafka_client::QuietContext> = pc
        .create_with_context(kafka_client::QuietContext)
        .map_err(|e| {
            anyhow::anyhow!(
                "channel {name}: the Kafka producer configuration was refused (check the \
                 kafka.producer.* keys): {}",
                kafka_client::explain_refusal_of(&config.producer, &e.to_string())
            )
        })?;
    let (cc, consumer_notes) = consumer_config(name, config)?;
    let _: BaseConsumer<kafka_client::QuietContext> = cc
        .create_with_context(kafka_client::QuietContext)
        .map_err(|e| consumer_refused(name, config, &e))?;
    notes.extend(consumer_notes);
    Ok(notes)
}

impl KafkaChannel {
    /// The channel with its producer (which connects when it first sends); the consumer is
    /// only created by the first take. Refused properties are errors naming where they were
    /// set.
    pub fn new(name: &str, config: &KafkaChannelConfig) -> anyhow::Result<KafkaChannel> {
        let (producer_config, notes) = producer_config(name, config)?;
        for note in notes {
            tracing::warn!(channel = name, "{note}");
        }
        // Judged now, so a refused consumer property stops the start rather than the first take.
        let (_, notes) = consumer_config(name, config)?;
        for note in notes {
            tracing::warn!(channel = name, "{note}");
        }
        let producer_log = Arc::new(ClientLog::new(Role::Channel, name, "kafka producer"));
        let producer = create_producer(name, config, &producer_config, &producer_log)?;
        tracing::info!(
            channel = name, servers = %config.bootstrap_servers, topic = %config.topic,
            group = %config.group_id, "kafka channel ready"
        );
        Ok(KafkaChannel {
            name: name.to_owned(),
            config: config.clone(),
            producer: RwLock::new(Arc::new(producer)),
            producer_log,
            consumer_log: Arc::new(ClientLog::new(Role::Channel, name, "kafka consumer")),
            take_side: Mutex::new(TakeSide::default()),
            counters: {
                let c = ChannelCounters::default();
                c.kafka.keep();
                c
            },
            max_record: producer_config
                .get("message.max.bytes")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(DEFAULT_MAX_RECORD),
            producer_config,
        })
    }

    fn unavailable(&self, reason: String) -> ChannelError {
        ChannelError::KafkaUnavailable {
            channel: self.name.clone(),
            reason,
        }
    }

    /// The partition `event` goes to: its `partitionIdHeader` value, else `defaultPartitionId`.
    fn partition(&self, event: &Event) -> Option<i32> {
        let header = self.config.partition_header.as_ref();
        match header.and_then(|h| event.headers.get(h)) {
            Some(v) => match v.trim().parse::<i32>() {
                Ok(p) if p >= 0 => Some(p),
                _ => {
                    tracing::warn!(
                        channel = %self.name, header = header.map_or("", String::as_str), value = %v,
                        "not a partition number; the record goes to defaultPartitionId or where the producer puts it"
                    );
                    self.config.default_partition
                }
            },
            None => self.config.default_partition,
        }
    }

    /// Starts a new producer after a failed put when the old one may be wedged.
    fn replace_producer_if_wedged(&self, producer: &Arc<KafkaProducer>, timed_out: bool) {
        let fatal = producer.client().fatal_error();
        if fatal.is_none() && !timed_out {
            return;
        }
        let mut current = self.producer.write();
        if !Arc::ptr_eq(&current, producer) {
            return; // another put replaced it already
        }
        tracing::warn!(channel = %self.name, fatal = ?fatal, timed_out, "starting a new kafka producer");
        match create_producer(
            &self.name,
            &self.config,
            &self.producer_config,
            &self.producer_log,
        ) {
            Ok(p) => *current = Arc::new(p),
            Err(e) => {
                tracing::error!(channel = %self.name, error = %format!("{e:#}"), "cannot start a new kafka producer")
            }
        }
    }

    /// The records' values when they are not the bodies: the events in Flume's Avro event
    /// format (`parseAsFlumeEvent`).
    fn encode(&self, events: &[Event]) -> Vec<Vec<u8>> {
        if self.config.parse_as_flume_event {
            events
                .iter()
                .map(|e| flume_event_format::encode(&e.headers, &e.body))
                .collect()
        } else {
            Vec::new()
        }
    }

    /// Why the producer would refuse `event`'s record, whose value is `value` (else its body),
    /// as too large: the check librdkafka makes when a record is produced. Made before a put
    /// sends anything, so that a put is not half sent, then sent again by the source's retry.
    fn oversized(&self, event: &Event, value: Option<&Vec<u8>>) -> Option<String> {
        let value = value.map_or(event.body.len(), Vec::len) as u64;
        let key = event.headers.get(KEY_HEADER).map_or(0, str::len) as u64;
        let size = RECORD_OVERHEAD + key + value;
        (size > self.max_record).then(|| {
            format!(
                "a record of {size} bytes (value {value}, key {key}, at most {RECORD_OVERHEAD} \
                 of framing) is larger than the producer's message.max.bytes {}",
                self.max_record
            )
        })
    }

    /// Produces `events` (with record values `avro`, when not their bodies) and waits for
    /// every report; the error says what failed.
    fn produce_all(
        &self,
        producer: &KafkaProducer,
        events: &[Event],
        avro: &[Vec<u8>],
    ) -> Result<(), String> {
        let state = Arc::new(PutState::default());
        let deadline = Instant::now() + self.config.delivery_timeout + REPORT_GRACE;
        let mut sent = 0usize;
        let mut refused = None;
        for (i, event) in events.iter().enumerate() {
            let payload: &[u8] = avro.get(i).map_or(&event.body[..], |v| &v[..]);
            let mut record =
                BaseRecord::with_opaque_to(&self.config.topic, state.clone()).payload(payload);
            if let Some(k) = event.headers.get(KEY_HEADER) {
                record = record.key(k.as_bytes());
            }
            if let Some(p) = self.partition(event) {
                record = record.partition(p);
            }
            loop {
                match producer.send(record) {
                    Ok(()) => {
                        sent += 1;
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                        if Instant::now() < deadline =>
                    {
                        // The local queue is full (broker slow or away): wait for room.
                        record = back;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err((e, _)) => {
                        refused = Some(e);
                        break;
                    }
                }
            }
            if refused.is_some() {
                break;
            }
        }
        let mut outcome = state.outcome.lock();
        while outcome.reports < sent {
            if state
                .reported
                .wait_until(&mut outcome, deadline)
                .timed_out()
            {
                break;
            }
        }
        let unreported = sent - outcome.reports.min(sent);
        let failed = outcome.failures.len() + unreported + usize::from(refused.is_some());
        if failed == 0 && sent == events.len() {
            return Ok(());
        }
        let first = refused
            .map(|e| format!("refused by the producer: {e}"))
            .or_else(|| outcome.failures.first().map(|e| e.to_string()))
            .unwrap_or_else(|| "no delivery report in time".to_owned());
        Err(format!(
            "{} of {} events not acknowledged by the broker at {} (first: {first})",
            events.len() - (sent - outcome.failures.len() - unreported),
            events.len(),
            self.config.bootstrap_servers
        ))
    }
}

impl Channel for KafkaChannel {
    fn name(&self) -> &str {
        &self.name
    }

    /// Not a wait for room (a topic has no room to wait for): shown as the longest a put waits
    /// for its acknowledgements.
    fn keep_alive(&self) -> Duration {
        self.config.delivery_timeout
    }

    /// `wait` is ignored: a put always waits for the broker's acknowledgements, up to the
    /// producer's `message.timeout.ms`; an acknowledgement is not room that may come later.
    fn put_waiting(&self, events: Vec<Event>, _wait: Duration) -> Result<(), ChannelError> {
        if events.is_empty() {
            return Ok(());
        }
        check_transaction(&self.name, events.len(), self.config.transaction_capacity)?;
        ChannelCounters::add(&self.counters.put_attempt, events.len());
        let avro = self.encode(&events);
        let oversized = events
            .iter()
            .enumerate()
            .find_map(|(i, e)| self.oversized(e, avro.get(i)));
        if let Some(reason) = oversized {
            return Err(ChannelError::Unstorable {
                channel: self.name.clone(),
                reason,
                events: Returned(events),
            });
        }
        let producer = self.producer.read().clone();
        let started = Instant::now();
        let produced = self.produce_all(&producer, &events, &avro);
        KafkaTimers::add(&self.counters.kafka.send_ms, started);
        match produced {
            Ok(()) => {
                ChannelCounters::add(&self.counters.put_success, events.len());
                Ok(())
            }
            Err(why) => {
                let timed_out = why.contains("timed out") || why.contains("no delivery report");
                self.replace_producer_if_wedged(&producer, timed_out);
                Err(self.unavailable(why))
            }
        }
    }

    fn storable_size(&self, event: &Event) -> Result<u64, String> {
        let avro = self.encode(std::slice::from_ref(event));
        match self.oversized(event, avro.first()) {
            Some(reason) => Err(reason),
            None => Ok(0),
        }
    }

    fn take_waiting(
        &self,
        max: usize,
        wait: Duration,
        _stop: Option<&Stop>,
    ) -> Result<Taken, ChannelError> {
        check_transaction(&self.name, max, self.config.transaction_capacity)?;
        let mut side = self.take_side.lock();
        if side.consumer.is_none() {
            side.consumer = Some(
                self.connect()
                    .map_err(|e| self.unavailable(format!("{e:#}")))?,
            );
        }
        let mut events: Vec<(Origin, Event)> = Vec::new();
        side.apply_revocations(&mut events);
        while events.len() < max {
            match side.returned.pop_front() {
                Some(r) => events.push(r),
                None => break,
            }
        }
        let started = Instant::now();
        let deadline = started + wait.min(self.config.poll_timeout);
        if events.len() >= max {
            // All from the rolled back records: still poll once, or a sink that keeps rolling
            // back would leave the consumer unpolled past max.poll.interval.ms and librdkafka
            // would leave the group. What arrives waits behind the rolled back records.
            let mut arrived = Vec::new();
            if let Some(Ok((partition, offset, event))) = self.poll_one(&side, Duration::ZERO) {
                let origin = side.hand_out(partition, offset);
                arrived.push((origin, event));
            }
            side.apply_revocations(&mut events);
            side.apply_revocations(&mut arrived);
            side.returned.extend(arrived);
        }
        while events.len() < max {
            // Wait only for the first record; then take what has already arrived.
            let timeout = if events.is_empty() {
                deadline.saturating_duration_since(Instant::now())
            } else {
                Duration::ZERO
            };
            let polled = self.poll_one(&side, timeout);
            side.apply_revocations(&mut events);
            match polled {
                Some(Ok((partition, offset, event))) => {
                    let origin = side.hand_out(partition, offset);
                    events.push((origin, event));
                }
                Some(Err(e)) => {
                    self.consumer_log.returned("consumer error", &e);
                    if !events.is_empty() || Instant::now() >= deadline {
                        break;
                    }
                }
                None => {
                    if !events.is_empty() || Instant::now() >= deadline {
                        break;
                    }
                }
            }
        }
        KafkaTimers::add(&self.counters.kafka.get_ms, started);
        if let Some((first, _)) = events.first() {
            let origins = events.iter().map(|(o, _)| *o).collect();
            side.in_flight.insert(first.seq, origins);
        }
        self.counters.took(events.len(), max);
        Ok(Taken {
            events: events.into_iter().map(|(o, e)| (o.seq, e)).collect(),
            start: None,
        })
    }

    fn commit(&self, taken: Taken) -> Result<(), ChannelError> {
        if taken.is_empty() {
            return Ok(());
        }
        let mut side = self.take_side.lock();
        let Some(origins) = side.in_flight.remove(&taken.key()) else {
            return Ok(());
        };
        // Done whatever becomes of the offset commit below.
        ChannelCounters::add(&self.counters.take_success, taken.events.len());
        let commits = side.settle(&origins);
        if commits.is_empty() {
            return Ok(());
        }
        let Some(consumer) = &side.consumer else {
            return Ok(());
        };
        let offsets = commits
            .iter()
            .map(|(partition, to)| (self.config.topic.clone(), *partition, *to))
            .collect();
        let started = Instant::now();
        let committed = consumer.commit_offsets(offsets, offset_commits::PATIENCE);
        KafkaTimers::add(&self.counters.kafka.commit_ms, started);
        match committed {
            Committed::Answered(Ok(())) => {
                for (partition, to) in commits {
                    if let Some(p) = side.partitions.get_mut(&partition) {
                        p.committed = p.committed.max(to);
                    }
                }
            }
            // As in Flume: the events are delivered; a failed offset commit only means they
            // may come again after a restart or a rebalance (a later commit covers them).
            Committed::Answered(Err(e)) => tracing::warn!(
                channel = %self.name, error = %e, offsets = ?commits,
                "kafka: offset commit failed; these events may be delivered again"
            ),
            Committed::Unanswered => tracing::warn!(
                channel = %self.name, offsets = ?commits, waited_s = offset_commits::PATIENCE.as_secs(),
                "kafka: the broker has not answered the offset commit; going on without it (it may still land; if not, these events may be delivered again)"
            ),
        }
        Ok(())
    }

    fn rollback(&self, taken: Taken) {
        if taken.is_empty() {
            return;
        }
        ChannelCounters::add(&self.counters.rollbacks, 1);
        let mut side = self.take_side.lock();
        let Some(origins) = side.in_flight.remove(&taken.key()) else {
            return;
        };
        let side = &mut *side;
        let back: Vec<(Origin, Event)> = origins
            .into_iter()
            .zip(taken.events.into_iter().map(|(_, e)| e))
            // Records of a partition revoked meanwhile belong to its new owner.
            .filter(|(o, _)| {
                side.partitions
                    .get(&o.partition)
                    .is_some_and(|p| p.epoch == o.epoch)
            })
            .collect();
        // Back in front of anything newer, in the order they were read.
        let first = back.first().map_or(0, |(o, _)| o.seq);
        let at = side.returned.partition_point(|(o, _)| o.seq < first);
        for (i, r) in back.into_iter().enumerate() {
            side.returned.insert(at + i, r);
        }
    }

    fn counters(&self) -> &ChannelCounters {
        &self.counters
    }

    /// The topic's backlog is not counted (it would cost a request to the broker per look):
    /// size and capacity are reported as 0.
    fn stats(&self) -> ChannelStats {
        ChannelStats::default()
    }

    fn transaction_capacity(&self) -> usize {
        self.config.transaction_capacity
    }
}

impl KafkaChannel {
    /// The consumer, subscribed to the channel's topic: only now does the channel join its
    /// consumer group.
    fn connect(&self) -> anyhow::Result<KafkaConsumer> {
        let (cc, _) = consumer_config(&self.name, &self.config)?;
        let consumer = create_consumer(&self.name, &self.config, &cc, &self.consumer_log)?;
        consumer
            .subscribe(&[self.config.topic.as_str()])
            .map_err(|e| anyhow::anyhow!("cannot subscribe to {}: {e}", self.config.topic))?;
        tracing::info!(channel = %self.name, group = %self.config.group_id, topic = %self.config.topic, "kafka: consumer subscribed; it reads once the group assigns it partitions");
        CommittingConsumer::new(consumer, &self.name)
            .map_err(|e| anyhow::anyhow!("cannot start the consumer's offset-commit thread: {e}"))
    }

    /// One record from the consumer, as (partition, offset, event), waiting up to `timeout`.
    fn poll_one(
        &self,
        side: &TakeSide,
        timeout: Duration,
    ) -> Option<Result<(i32, i64, Event), KafkaError>> {
        let consumer = side.consumer.as_ref()?;
        let polled = consumer.poll(timeout);
        // Only an idle poll asks: records coming means partitions held.
        if polled.is_none() && consumer.context().assignment.overdue(Instant::now()) {
            tracing::warn!(channel = %self.name, "{}", kafka_client::assignment::NO_PARTITION_YET);
        }
        polled.map(|r| {
            r.map(|m| {
                let event = self.to_event(m.topic(), m.partition(), m.offset(), &m);
                (m.partition(), m.offset(), event)
            })
        })
    }

    /// The record as an event: the Flume event it holds (`parseAsFlumeEvent`), else its value
    /// as the body; its key as the `key` header.
    fn to_event(&self, topic: &str, partition: i32, offset: i64, m: &impl Message) -> Event {
        let value = m.payload().unwrap_or_default();
        let (mut headers, body) = if self.config.parse_as_flume_event {
            match flume_event_format::decode(value) {
                Ok((h, b)) => (h, b),
                Err(e) => {
                    tracing::warn!(
                        channel = %self.name, topic, partition, offset, error = %e,
                        "kafka: value is not a Flume event (parseAsFlumeEvent = true); handed out whole as the body"
                    );
                    (Headers::new(), value.to_vec())
                }
            }
        } else {
            (Headers::new(), value.to_vec())
        };
        if let Some(key) = m.key() {
            headers.insert(
                KEY_HEADER.to_owned(),
                String::from_utf8_lossy(key).into_owned(),
            );
        }
        Event {
            headers,
            body: body.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out `offsets` of `partition` as one take; returns its origins.
    fn take(side: &mut TakeSide, partition: i32, offsets: std::ops::Range<i64>) -> Vec<Origin> {
        offsets.map(|o| side.hand_out(partition, o)).collect()
    }

    /// Two sinks take from one partition; the newer take commits first. Its offsets must wait
    /// for the older take: committing past it would lose it if it then rolled back and the
    /// agent died.
    #[test]
    fn a_commit_never_passes_an_older_take_still_out() {
        let mut side = TakeSide::default();
        let a = take(&mut side, 0, 100..105);
        let b = take(&mut side, 0, 105..110);
        let c = take(&mut side, 1, 7..9);
        assert_eq!(side.settle(&b), vec![]);
        assert_eq!(side.settle(&c), vec![(1, 9)]);
        assert_eq!(side.settle(&a), vec![(0, 110)]);
    }

    /// A rolled back take stays out until it is taken again and committed.
    #[test]
    fn rolled_back_records_hold_the_commit_back() {
        let mut side = TakeSide::default();
        let a = take(&mut side, 0, 0..3);
        let b = take(&mut side, 0, 3..6);
        // `a` rolled back: still outstanding, so `b`'s commit moves nothing.
        assert_eq!(side.settle(&b), vec![]);
        assert_eq!(side.settle(&a), vec![(0, 6)]);
    }

    fn channel(parse_as_flume_event: bool) -> KafkaChannel {
        let text = format!(
            "a.channels = c1\na.channels.c1.type = kafka\n\
             a.channels.c1.kafka.bootstrap.servers = 127.0.0.1:1\n\
             a.channels.c1.parseAsFlumeEvent = {parse_as_flume_event}\n"
        );
        let props =
            crate::config::Properties::parse(std::path::Path::new("t.properties"), text.as_bytes())
                .unwrap();
        let config = crate::config::AgentConfig::from_properties(&props, "a").unwrap();
        let crate::config::ChannelKind::Kafka(c) = &config.channels[0].kind else {
            panic!("not a kafka channel")
        };
        KafkaChannel::new("c1", c).unwrap()
    }

    fn record(value: &[u8], key: Option<&str>) -> rdkafka::message::OwnedMessage {
        rdkafka::message::OwnedMessage::new(
            Some(value.to_vec()),
            key.map(|k| k.as_bytes().to_vec()),
            "t".into(),
            rdkafka::Timestamp::NotAvailable,
            3,
            42,
            None,
        )
    }

    /// Flume events come out with their headers; a value that is not one is handed out whole
    /// (never an error that would stall the channel on it); the record key becomes `key`.
    #[test]
    fn values_become_events_as_flume_reads_them() {
        let ch = channel(true);
        let headers: Headers = [("h".to_owned(), "v".to_owned())].into();
        let datum = flume_event_format::encode(&headers, b"body");
        let e = ch.to_event("t", 3, 42, &record(&datum, Some("k1")));
        assert_eq!(&e.body[..], b"body");
        assert_eq!(e.headers.get("h"), Some("v"));
        assert_eq!(e.headers.get("key"), Some("k1"));
        let e = ch.to_event("t", 3, 42, &record(b"\xffnot avro", None));
        assert_eq!(&e.body[..], b"\xffnot avro");
        assert!(e.headers.is_empty());

        let ch = channel(false);
        let e = ch.to_event("t", 3, 42, &record(&datum, None));
        assert_eq!(&e.body[..], &datum[..]);
        assert!(e.headers.is_empty());
    }

    /// After a revocation the partition's old records are its new owner's: committing them
    /// here does nothing, and a new assignment starts afresh.
    #[test]
    fn records_of_a_revoked_partition_are_not_committed() {
        let mut side = TakeSide::default();
        let old = take(&mut side, 0, 10..12);
        side.partitions.remove(&0);
        let new = take(&mut side, 0, 10..11);
        assert_eq!(side.settle(&old), vec![]);
        assert_eq!(side.settle(&new), vec![(0, 11)]);
    }
}
