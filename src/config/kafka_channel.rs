//! The `kafka` channel's keys (Flume's `org.apache.flume.channel.kafka.KafkaChannel`): the
//! topic, the consumer group, whether record values are Flume Avro events, the partition
//! settings, and the `kafka.producer.*` / `kafka.consumer.*` properties, turned into librdkafka
//! properties by the Kafka sink's and source's translations (`kafka_producer::translate`,
//! `kafka_source::translate_consumer`), so both are judged the same way everywhere.

use std::time::Duration;

use super::kafka_producer::{self, ProducerProperty};
use super::kafka_source::translate_consumer;
use super::{ConfigError, Section};

/// Flume's KafkaChannel has no transaction bound; weir's channels do (a source's `batchSize`
/// and a sink's batch size are checked against it at start). The file channel's default, so
/// that no Flume configuration is refused for it.
pub const KAFKA_CHANNEL_TRANSACTION_CAPACITY: u64 = 10_000;

/// How long a put waits for the broker's acknowledgements when `kafka.producer.*` does not
/// say (librdkafka's `message.timeout.ms`, Java's `delivery.timeout.ms`): a put holds its
/// source's client until then, so it is seconds, not librdkafka's five minutes.
pub const KAFKA_CHANNEL_DELIVERY_TIMEOUT_MS: u64 = 10_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaChannelConfig {
    pub bootstrap_servers: String,
    /// `kafka.topic` (Flume: `flume-channel`).
    pub topic: String,
    /// `kafka.consumer.group.id` (Flume: `flume`).
    pub group_id: String,
    /// Record values are Flume Avro events with headers (Flume: true); false: the bare body.
    pub parse_as_flume_event: bool,
    /// Longest wait of one take for records (Flume `kafka.pollTimeout`, 500 ms).
    pub poll_timeout: Duration,
    /// Partition for every record (Flume `defaultPartitionId`); else the producer chooses.
    pub default_partition: Option<i32>,
    /// Event header naming a record's partition, over `defaultPartitionId` (Flume
    /// `partitionIdHeader`).
    pub partition_header: Option<String>,
    /// librdkafka producer properties: weir's defaults (acks=all, idempotence) first, then
    /// `kafka.producer.*`.
    pub producer: Vec<ProducerProperty>,
    /// librdkafka consumer properties from `kafka.consumer.*` (auto commit forced off).
    pub consumer: Vec<ProducerProperty>,
    /// Most events in one put or take (see [`KAFKA_CHANNEL_TRANSACTION_CAPACITY`]).
    pub transaction_capacity: usize,
    /// How long a put waits for every acknowledgement: the producer's `message.timeout.ms`.
    pub delivery_timeout: Duration,
}

pub(super) fn parse_kafka_channel(
    s: &Section,
    notes: &mut Vec<String>,
) -> Result<KafkaChannelConfig, ConfigError> {
    let bootstrap_servers = super::kafka_producer::bootstrap_servers(s, notes)?;
    let topic = s
        .string_or_deprecated("kafka.topic", "topic", notes)
        .unwrap_or_else(|| "flume-channel".to_owned());
    super::kafka_topic::check(s, super::kafka_topic::key(s), &topic, false)?;
    let group_id = s
        .string_or_deprecated("kafka.consumer.group.id", "groupId", notes)
        .unwrap_or_else(|| "flume".to_owned());
    // ZooKeeper only ever served Flume's channel to migrate offsets stored there by Flume 1.6
    // (the consumer itself talks to the brokers): without it, a group with no offsets in
    // Kafka starts at `auto.offset.reset`.
    let why_zk = "weir does not migrate consumer offsets from ZooKeeper (Flume 1.6); a group \
                  with no offsets in Kafka starts at kafka.consumer.auto.offset.reset";
    s.accept_without_effect("zookeeperConnect", why_zk, notes);
    s.accept_without_effect("migrateZookeeperOffsets", why_zk, notes);
    let why_store = "the events are stored in the Kafka topic, which bounds nothing here";
    s.accept_without_effect("capacity", why_store, notes);
    s.accept_without_effect(
        "keep-alive",
        "a put waits for the broker's acknowledgements up to the producer's message.timeout.ms",
        notes,
    );

    let mut producer = kafka_producer::translate(s, None, notes)?;
    // Java's name is an alias in librdkafka; the last one set wins either way.
    let timeout_keys = ["message.timeout.ms", "delivery.timeout.ms"];
    let user_timeout = producer
        .iter()
        .rev()
        .find(|p| p.origin.is_some() && timeout_keys.contains(&p.key.as_str()))
        .map(|p| (p.value.clone(), p.origin.clone()));
    let delivery_timeout_ms = match user_timeout {
        Some((v, origin)) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|ms| *ms > 0)
            .ok_or_else(|| {
                let key = origin
                    .as_deref()
                    .and_then(|o| o.rsplit(": ").next())
                    .and_then(|full| full.strip_prefix(&s.full("")))
                    .unwrap_or("kafka.producer.message.timeout.ms")
                    .to_owned();
                s.error(
                    Some(&key),
                    format!("'{v}' is not a positive number of milliseconds"),
                )
            })?,
        None => {
            producer.retain(|p| p.key != "message.timeout.ms");
            producer.push(ProducerProperty::new(
                "message.timeout.ms",
                &KAFKA_CHANNEL_DELIVERY_TIMEOUT_MS.to_string(),
            ));
            KAFKA_CHANNEL_DELIVERY_TIMEOUT_MS
        }
    };

    let mut consumer = translate_consumer(s, notes)?;
    // Flume's channel reads from the earliest offset a new group finds (the consumer's own
    // default is `latest`); `readSmallestOffset` is Flume 1.6's way of saying it.
    let user_reset = consumer.iter().any(|p| p.key == "auto.offset.reset");
    let reset = match s.string("readSmallestOffset") {
        Some(_) if !user_reset => {
            let smallest = s.bool_or("readSmallestOffset", false)?;
            notes.push(format!(
                "{}: {}: deprecated Flume key, read as {} = {}",
                s.entry("readSmallestOffset")
                    .map(|e| e.at())
                    .unwrap_or_default(),
                s.full("readSmallestOffset"),
                s.full("kafka.consumer.auto.offset.reset"),
                if smallest { "earliest" } else { "latest" }
            ));
            Some(if smallest { "earliest" } else { "latest" })
        }
        Some(_) => {
            s.entry("readSmallestOffset");
            notes.push(format!(
                "{}: ignored, {} is set",
                s.located("readSmallestOffset"),
                s.full("kafka.consumer.auto.offset.reset")
            ));
            None
        }
        None if !user_reset => Some("earliest"),
        None => None,
    };
    if let Some(r) = reset {
        consumer.insert(0, ProducerProperty::new("auto.offset.reset", r));
    }

    // Flume reads `kafka.pollTimeout`; its user guide calls it `pollTimeout`.
    let poll_timeout = if s.string("kafka.pollTimeout").is_some() {
        s.superseded("pollTimeout", "kafka.pollTimeout", notes);
        s.millis_or("kafka.pollTimeout", 500)?
    } else {
        s.millis_or("pollTimeout", 500)?
    };
    let default_partition = match s.string("defaultPartitionId") {
        Some(v) => Some(
            v.trim()
                .parse::<i32>()
                .ok()
                .filter(|p| *p >= 0)
                .ok_or_else(|| {
                    s.error(
                        Some("defaultPartitionId"),
                        format!("'{v}' is not a partition number"),
                    )
                })?,
        ),
        None => None,
    };
    let config = KafkaChannelConfig {
        bootstrap_servers,
        topic,
        group_id,
        parse_as_flume_event: s.bool_or("parseAsFlumeEvent", true)?,
        poll_timeout,
        default_partition,
        partition_header: s.string("partitionIdHeader").filter(|h| !h.is_empty()),
        producer,
        consumer,
        transaction_capacity: s
            .positive_or("transactionCapacity", KAFKA_CHANNEL_TRANSACTION_CAPACITY)?
            as usize,
        delivery_timeout: Duration::from_millis(delivery_timeout_ms),
    };
    super::kafka_client_keys::note_misplaced(s, &["producer", "consumer"], notes);
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Properties;
    use std::path::Path;

    fn parse(text: &str) -> Result<(KafkaChannelConfig, Vec<String>), String> {
        let props = Properties::parse(Path::new("t.properties"), text.as_bytes()).unwrap();
        let s = Section::new(&props, "a.channels.c1.".into());
        let mut notes = Vec::new();
        let c = parse_kafka_channel(&s, &mut notes).map_err(|e| e.to_string())?;
        s.note_unused(&mut notes);
        Ok((c, notes))
    }

    fn value<'a>(props: &'a [ProducerProperty], key: &str) -> Option<&'a str> {
        props
            .iter()
            .rev()
            .find(|p| p.key == key)
            .map(|p| p.value.as_str())
    }

    #[test]
    fn flume_defaults() {
        let (c, notes) = parse("a.channels.c1.kafka.bootstrap.servers = b:9092\n").unwrap();
        assert_eq!(c.topic, "flume-channel");
        assert_eq!(c.group_id, "flume");
        assert!(c.parse_as_flume_event);
        assert_eq!(c.poll_timeout, Duration::from_millis(500));
        assert_eq!(c.default_partition, None);
        assert_eq!(c.partition_header, None);
        assert_eq!(c.transaction_capacity, 10_000);
        assert_eq!(c.delivery_timeout, Duration::from_secs(10));
        assert_eq!(value(&c.producer, "acks"), Some("all"));
        assert_eq!(value(&c.producer, "enable.idempotence"), Some("true"));
        assert_eq!(value(&c.producer, "message.timeout.ms"), Some("10000"));
        assert_eq!(value(&c.consumer, "auto.offset.reset"), Some("earliest"));
        assert_eq!(value(&c.consumer, "enable.auto.commit"), Some("false"));
        assert!(notes.is_empty(), "{notes:?}");
    }

    /// Flume's user guide secures the channel's producer and consumer separately; both read
    /// Java stores.
    #[test]
    fn producer_and_consumer_read_java_stores() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/java-stores");
        let mut text = "a.channels.c1.kafka.bootstrap.servers = b:9093\n".to_owned();
        for side in ["producer", "consumer"] {
            text.push_str(&format!(
                "a.channels.c1.kafka.{side}.security.protocol = SSL\n\
                 a.channels.c1.kafka.{side}.ssl.truststore.location = {}\n\
                 a.channels.c1.kafka.{side}.ssl.truststore.password = trust-pass\n\
                 a.channels.c1.kafka.{side}.ssl.keystore.location = {}\n\
                 a.channels.c1.kafka.{side}.ssl.keystore.password = store-pass\n\
                 a.channels.c1.kafka.{side}.ssl.key.password = key-pass\n",
                dir.join("truststore.jks").display(),
                dir.join("keystore.jks").display(),
            ));
        }
        let (c, notes) = parse(&text).unwrap();
        let ca = std::fs::read_to_string(dir.join("ca.pem")).unwrap();
        for props in [&c.producer, &c.consumer] {
            assert_eq!(value(props, "security.protocol"), Some("SSL"));
            assert_eq!(value(props, "ssl.ca.pem"), Some(ca.as_str()));
            assert!(value(props, "ssl.key.pem").is_some_and(|k| k.contains("PRIVATE KEY")));
            assert!(value(props, "ssl.certificate.pem").is_some());
            assert!(value(props, "ssl.keystore.location").is_none());
        }
        assert!(notes.is_empty(), "{notes:?}");
    }

    /// The widely copied "TAILDIR → Kafka channel" block, with Flume 1.11's keys.
    #[test]
    fn keys_of_the_usual_configuration() {
        let (c, notes) = parse(
            "a.channels.c1.kafka.bootstrap.servers = k1:9092,k2:9092\n\
             a.channels.c1.kafka.topic = topic_log\n\
             a.channels.c1.parseAsFlumeEvent = false\n\
             a.channels.c1.kafka.consumer.group.id = g1\n\
             a.channels.c1.kafka.consumer.auto.offset.reset = latest\n\
             a.channels.c1.kafka.producer.acks = 1\n\
             a.channels.c1.kafka.producer.delivery.timeout.ms = 4000\n\
             a.channels.c1.pollTimeout = 200\n\
             a.channels.c1.defaultPartitionId = 2\n\
             a.channels.c1.partitionIdHeader = p\n\
             a.channels.c1.capacity = 1000\n\
             a.channels.c1.transactionCapacity = 500\n",
        )
        .unwrap();
        assert_eq!(c.bootstrap_servers, "k1:9092,k2:9092");
        assert_eq!(c.topic, "topic_log");
        assert_eq!(c.group_id, "g1");
        assert!(!c.parse_as_flume_event);
        assert_eq!(c.poll_timeout, Duration::from_millis(200));
        assert_eq!(c.default_partition, Some(2));
        assert_eq!(c.partition_header.as_deref(), Some("p"));
        assert_eq!(c.transaction_capacity, 500);
        assert_eq!(c.delivery_timeout, Duration::from_secs(4));
        assert_eq!(value(&c.producer, "acks"), Some("all"));
        assert_eq!(value(&c.consumer, "auto.offset.reset"), Some("latest"));
        assert!(!c.consumer.iter().any(|p| p.key == "group.id"));
        let all = notes.join("\n");
        assert!(all.contains("kafka.producer.acks: 1 not used"), "{all}");
        assert!(
            all.contains("a.channels.c1.capacity: accepted, no effect"),
            "{all}"
        );
        assert_eq!(notes.len(), 2, "{all}");
    }

    #[test]
    fn flume_1_6_keys_are_read_as_their_successors() {
        let (c, notes) = parse(
            "a.channels.c1.brokerList = old:9092\na.channels.c1.topic = t\n\
             a.channels.c1.groupId = g\na.channels.c1.readSmallestOffset = false\n\
             a.channels.c1.zookeeperConnect = zk:2181\n\
             a.channels.c1.migrateZookeeperOffsets = true\n",
        )
        .unwrap();
        assert_eq!(c.bootstrap_servers, "old:9092");
        assert_eq!(c.topic, "t");
        assert_eq!(c.group_id, "g");
        assert_eq!(value(&c.consumer, "auto.offset.reset"), Some("latest"));
        let all = notes.join("\n");
        for key in ["brokerList", "topic", "groupId", "readSmallestOffset"] {
            assert!(
                all.contains(&format!("a.channels.c1.{key}: deprecated Flume key")),
                "{key}: {all}"
            );
        }
        assert!(
            all.contains("t.properties:5: a.channels.c1.zookeeperConnect: accepted, no effect"),
            "{all}"
        );
    }

    #[test]
    fn errors_name_the_key_and_line() {
        let e = parse(
            "a.channels.c1.kafka.bootstrap.servers = b:9092
             a.channels.c1.kafka.topic = channel #1
",
        )
        .unwrap_err();
        assert!(
            e.starts_with(
                "t.properties:2: a.channels.c1.kafka.topic: 'channel #1' is not a Kafka topic name"
            ),
            "{e}"
        );
        let e = parse("a.channels.c1.kafka.topic = t\n").unwrap_err();
        assert!(
            e.contains("a.channels.c1.kafka.bootstrap.servers") && e.contains("missing"),
            "{e}"
        );
        let e = parse(
            "a.channels.c1.kafka.bootstrap.servers = b:9092\n\
             a.channels.c1.defaultPartitionId = x\n",
        )
        .unwrap_err();
        assert!(
            e.starts_with("t.properties:2: a.channels.c1.defaultPartitionId"),
            "{e}"
        );
        let e = parse(
            "a.channels.c1.kafka.bootstrap.servers = b:9092\n\
             a.channels.c1.kafka.producer.message.timeout.ms = soon\n",
        )
        .unwrap_err();
        assert!(
            e.starts_with("t.properties:2: a.channels.c1.kafka.producer.message.timeout.ms"),
            "{e}"
        );
    }
}
