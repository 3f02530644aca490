//! The `kafka` source's keys (Flume's KafkaSource): the topics to subscribe to, the batching
//! and back-off settings, the headers to set, and the `kafka.consumer.*` properties turned into
//! librdkafka consumer properties. Which of those librdkafka knows is decided by librdkafka
//! itself when the source is built (`kafka_client::apply`).

use std::time::Duration;

use super::{ConfigError, ProducerProperty, Section, kafka_security};

/// What the source subscribes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KafkaTopics {
    /// `kafka.topics`, comma-separated.
    List(Vec<String>),
    /// `kafka.topics.regex`, given to librdkafka as `^…` (its regex subscription syntax).
    Regex(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaSourceConfig {
    pub bootstrap_servers: String,
    pub topics: KafkaTopics,
    /// `kafka.consumer.group.id` (Flume: `flume`).
    pub group_id: String,
    pub batch_size: usize,
    /// Longest time spent filling one batch (Flume `batchDurationMillis`, 1 s).
    pub batch_duration: Duration,
    /// Back-off when no records arrive or a put fails.
    pub backoff: super::PollBackoff,
    /// Record values are Flume's Avro events (headers + body).
    pub use_flume_event_format: bool,
    /// The header that names the record's topic, if any (`setTopicHeader`, `topicHeader`).
    pub topic_header: Option<String>,
    /// Flume 1.11's `header.<event header> = <record header>`: which record headers become
    /// event headers, and under which name. Empty (the default): every record header under
    /// its own name but the sink's `weir.offset` (Flume copies none then; weir's choice, so a
    /// weir → Kafka → weir chain keeps its headers).
    pub header_map: Vec<(String, String)>,
    /// librdkafka consumer properties from `kafka.consumer.*` (the producer's type is reused:
    /// a key, a value and where it was set).
    pub consumer: Vec<ProducerProperty>,
}

/// Java consumer properties with no librdkafka counterpart, and why weir does without them.
fn java_only(key: &str) -> Option<&'static str> {
    Some(match key {
        "key.deserializer" | "value.deserializer" => "records are always read as bytes",
        "interceptor.classes" | "metric.reporters" | "partition.assignment.strategy.class" => {
            "Java classes cannot be loaded"
        }
        "default.api.timeout.ms" | "request.timeout.ms" | "retry.backoff.max.ms" => {
            "a Java client timeout librdkafka has no setting for"
        }
        _ => return None,
    })
}

/// Consumer settings weir's at-least-once delivery rests on: offsets are stored and committed
/// by the source after the channel commit, never by librdkafka on its own.
const FORCED: [(&str, &str); 2] = [
    ("enable.auto.commit", "false"),
    ("enable.auto.offset.store", "false"),
];

pub(super) fn parse_kafka_source(
    s: &Section,
    notes: &mut Vec<String>,
) -> Result<KafkaSourceConfig, ConfigError> {
    // Flume reads the brokers from ZooKeeper only when no bootstrap servers are given, and
    // otherwise uses it to move the offsets an older Flume kept there into Kafka (when Kafka
    // has none for the group): configs of that era set both keys.
    const ZK_OFFSETS: &str = "Flume uses it to move offsets a Flume before 1.7 kept in \
        ZooKeeper into Kafka; weir reads the group's offsets from Kafka only";
    for zk in ["zookeeperConnect", "kafka.zookeeperConnect"] {
        if s.string(zk).is_none() {
            continue;
        }
        if s.string("kafka.bootstrap.servers").is_none() {
            return Err(s.error(
                Some(zk),
                format!(
                    "weir cannot look the brokers up in ZooKeeper (Flume does so only when \
                     `{0}` is not set): set `{0}` to the brokers, e.g. localhost:9092",
                    s.full("kafka.bootstrap.servers")
                ),
            ));
        }
        s.accept_without_effect(zk, ZK_OFFSETS, notes);
    }
    s.accept_without_effect("migrateZookeeperOffsets", ZK_OFFSETS, notes);
    let bootstrap_servers = s.required(
        "kafka.bootstrap.servers",
        &format!(
            "set `{}` to the broker list, e.g. localhost:9092",
            s.full("kafka.bootstrap.servers")
        ),
    )?;
    let regex = s.string("kafka.topics.regex");
    let list = match regex {
        // Flume lets the regex win over the list and its old name; so does weir, with a note.
        Some(_) => {
            s.superseded("kafka.topics", "kafka.topics.regex", notes);
            s.superseded("topic", "kafka.topics.regex", notes);
            None
        }
        None => s.string_or_deprecated("kafka.topics", "topic", notes),
    };
    let topics = match (list, regex) {
        (_, Some(r)) => {
            regex::Regex::new(&r).map_err(|e| {
                s.error(
                    Some("kafka.topics.regex"),
                    format!("not a valid regular expression: {e}"),
                )
            })?;
            KafkaTopics::Regex(if r.starts_with('^') {
                r
            } else {
                format!("^{r}")
            })
        }
        (Some(l), None) => {
            let names: Vec<String> = l
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect();
            if names.is_empty() {
                return Err(s.error(Some("kafka.topics"), "names no topic".into()));
            }
            let key = if s.string("kafka.topics").is_some() {
                "kafka.topics"
            } else {
                "topic"
            };
            for name in &names {
                super::kafka_topic::check(s, key, name, false)?;
            }
            KafkaTopics::List(names)
        }
        (None, None) => {
            return Err(s.error(
                Some("kafka.topics"),
                format!(
                    "missing: set `{}` to comma-separated topic names, or `{}` to a regular \
                     expression",
                    s.full("kafka.topics"),
                    s.full("kafka.topics.regex")
                ),
            ));
        }
    };
    let group_id = s
        .string_or_deprecated("kafka.consumer.group.id", "groupId", notes)
        .unwrap_or_else(|| "flume".to_owned());
    let consumer = translate_consumer(s, notes)?;
    let topic_header = if s.bool_or("setTopicHeader", true)? {
        Some(s.string_or("topicHeader", "topic"))
    } else {
        s.ignored_with("topicHeader", "setTopicHeader = false", notes);
        None
    };
    let config = KafkaSourceConfig {
        bootstrap_servers,
        topics,
        group_id,
        batch_size: s.positive_or("batchSize", 1000)? as usize,
        batch_duration: s.millis_or("batchDurationMillis", 1000)?,
        backoff: super::PollBackoff::parse(s, notes)?,
        use_flume_event_format: s.bool_or("useFlumeEventFormat", false)?,
        topic_header,
        header_map: header_map(s, notes),
        consumer,
    };
    super::kafka_client_keys::note_misplaced(s, &["consumer"], notes);
    Ok(config)
}

/// Flume 1.11's `header.<event header> = <record header>` pairs of a Kafka sink or source, in
/// the file's order; an empty value is left out with a note, as Flume drops it.
pub(super) fn header_map(s: &Section, notes: &mut Vec<String>) -> Vec<(String, String)> {
    let mut map = Vec::new();
    for (event_header, entry) in s.props().with_prefix(&s.full("header.")) {
        s.entry(&format!("header.{event_header}"));
        if entry.value.is_empty() {
            notes.push(format!(
                "{}: {}: empty value, not used (as in Flume)",
                entry.at(),
                s.full(&format!("header.{event_header}"))
            ));
            continue;
        }
        map.push((event_header.to_owned(), entry.value.clone()));
    }
    map
}

/// `kafka.consumer.*` as librdkafka consumer properties; `group.id` is read separately, the
/// settings in [`FORCED`] always win.
pub(super) fn translate_consumer(
    s: &Section,
    notes: &mut Vec<String>,
) -> Result<Vec<ProducerProperty>, ConfigError> {
    let prefix = "kafka.consumer.";
    let mut out = Vec::new();
    let full_prefix = s.full(prefix);
    let user: Vec<(&str, &super::Entry)> = s.props().with_prefix(&full_prefix).collect();
    // Flume 1.9's global key and trust stores, for what a TLS client leaves unset.
    let globals = kafka_security::globals_for(&user);
    let value_of = |key: &str| kafka_security::value_in(&user, &globals, key);
    for &(key, entry) in &user {
        s.entry(&format!("{prefix}{key}"));
        let at = format!("{}: {}", entry.at(), s.full(&format!("{prefix}{key}")));
        let value = entry.value.trim();
        if key == "group.id" {
            continue;
        }
        if value.is_empty() {
            notes.push(format!("{at}: empty value, not used (as in Flume)"));
            continue;
        }
        let k = kafka_security::Key {
            prefix,
            key,
            value,
            origin: Some(at.clone()),
        };
        if kafka_security::translate(s, &k, &value_of, &mut out, notes)? {
            continue;
        }
        if let Some(why) = java_only(key) {
            notes.push(format!(
                "{at}: Java-only consumer property, not used: {why}"
            ));
            continue;
        }
        if let Some((_, forced)) = FORCED.iter().find(|(k, _)| *k == key) {
            if value != *forced {
                notes.push(format!(
                    "{at}: not used: weir commits each batch's offsets itself, only after the \
                     batch is in the channel (at-least-once)"
                ));
            }
            continue;
        }
        out.push(ProducerProperty {
            key: key.to_owned(),
            value: value.to_owned(),
            origin: Some(at),
        });
    }
    kafka_security::translate_globals(s, prefix, &globals, &value_of, &mut out, notes)?;
    out.extend(FORCED.iter().map(|(k, v)| ProducerProperty::new(k, v)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Properties;
    use std::path::Path;

    fn parse(text: &str) -> Result<(KafkaSourceConfig, Vec<String>), String> {
        let props = Properties::parse(Path::new("t.properties"), text.as_bytes()).unwrap();
        let s = Section::new(&props, "a.sources.r1.".into());
        let mut notes = Vec::new();
        parse_kafka_source(&s, &mut notes)
            .map(|c| (c, notes))
            .map_err(|e| e.to_string())
    }

    /// Configs written for Flume 1.7–1.9 give ZooKeeper beside the brokers, for the offset
    /// migration: they run, with a note per key.
    #[test]
    fn zookeeper_beside_the_brokers_is_accepted_with_a_note() {
        let (c, notes) = parse(
            "a.sources.r1.kafka.bootstrap.servers = b:9092\na.sources.r1.kafka.topics = t\n\
             a.sources.r1.zookeeperConnect = zk:2181\na.sources.r1.migrateZookeeperOffsets = true\n",
        )
        .unwrap();
        assert_eq!(c.bootstrap_servers, "b:9092");
        for (line, key) in [(3, "zookeeperConnect"), (4, "migrateZookeeperOffsets")] {
            assert!(
                notes.iter().any(|n| n.contains(&format!(
                    "t.properties:{line}: a.sources.r1.{key}: accepted, no effect"
                ))),
                "{notes:?}"
            );
        }
    }

    #[test]
    fn a_topic_kafka_refuses_is_refused_at_its_line() {
        let e = parse(
            "a.sources.r1.kafka.bootstrap.servers = b:9092
a.sources.r1.kafka.topics = t1, t/2
",
        )
        .unwrap_err();
        assert!(
            e.starts_with(
                "t.properties:2: a.sources.r1.kafka.topics: 't/2' is not a Kafka topic name"
            ),
            "{e}"
        );
        // A pattern is a pattern, not a name.
        assert!(
            parse(
                "a.sources.r1.kafka.bootstrap.servers = b:9092
a.sources.r1.kafka.topics.regex = t.*
"
            )
            .is_ok()
        );
    }

    #[test]
    fn flume_defaults() {
        let (c, notes) = parse(
            "a.sources.r1.kafka.bootstrap.servers = b:9092\na.sources.r1.kafka.topics = t1, t2\n",
        )
        .unwrap();
        assert_eq!(c.topics, KafkaTopics::List(vec!["t1".into(), "t2".into()]));
        assert_eq!(c.group_id, "flume");
        assert_eq!(c.batch_size, 1000);
        assert_eq!(c.batch_duration, Duration::from_secs(1));
        assert_eq!(c.backoff.increment, Duration::from_secs(1));
        assert_eq!(c.backoff.max, Duration::from_secs(5));
        assert!(!c.use_flume_event_format);
        assert_eq!(c.topic_header.as_deref(), Some("topic"));
        assert!(notes.is_empty(), "{notes:?}");
        assert!(
            c.consumer
                .iter()
                .any(|p| p.key == "enable.auto.commit" && p.value == "false")
        );
    }

    #[test]
    fn consumer_keys_group_regex_and_legacy_keys() {
        let (c, notes) = parse(
            "a.sources.r1.kafka.bootstrap.servers = b:9092\n\
             a.sources.r1.kafka.topics.regex = logs-.*\n\
             a.sources.r1.groupId = old\n\
             a.sources.r1.setTopicHeader = false\n\
             a.sources.r1.kafka.consumer.auto.offset.reset = earliest\n\
             a.sources.r1.kafka.consumer.key.deserializer = org.x.Y\n\
             a.sources.r1.kafka.consumer.enable.auto.commit = true\n",
        )
        .unwrap();
        assert_eq!(c.topics, KafkaTopics::Regex("^logs-.*".into()));
        assert_eq!(c.group_id, "old");
        assert_eq!(c.topic_header, None);
        assert!(
            c.consumer
                .iter()
                .any(|p| p.key == "auto.offset.reset" && p.value == "earliest")
        );
        assert!(!c.consumer.iter().any(|p| p.key == "key.deserializer"));
        assert!(
            !c.consumer
                .iter()
                .any(|p| p.key == "enable.auto.commit" && p.value == "true")
        );
        let all = notes.join("\n");
        assert!(all.contains("groupId: deprecated"), "{all}");
        assert!(all.contains("key.deserializer: Java-only"), "{all}");
        assert!(all.contains("enable.auto.commit: not used"), "{all}");

        let (c, notes) = parse(
            "a.sources.r1.kafka.bootstrap.servers = b:9092\na.sources.r1.topic = t\n\
             a.sources.r1.kafka.consumer.group.id = g\n",
        )
        .unwrap();
        assert_eq!(c.topics, KafkaTopics::List(vec!["t".into()]));
        assert_eq!(c.group_id, "g");
        assert!(notes.join("\n").contains("topic: deprecated"), "{notes:?}");
    }

    #[test]
    fn errors_name_the_key_and_line() {
        let e = parse("a.sources.r1.kafka.topics = t\n").unwrap_err();
        assert!(e.contains("a.sources.r1.kafka.bootstrap.servers"), "{e}");
        assert!(e.contains("missing"), "{e}");
        let e = parse("a.sources.r1.kafka.bootstrap.servers = b:9092\n").unwrap_err();
        assert!(e.contains("a.sources.r1.kafka.topics"), "{e}");
        let e = parse("a.sources.r1.kafka.topics = t\na.sources.r1.zookeeperConnect = zk:2181\n")
            .unwrap_err();
        assert!(e.contains("t.properties:2"), "{e}");
        assert!(e.contains("zookeeperConnect"), "{e}");
        assert!(e.contains("look the brokers up in ZooKeeper"), "{e}");
        let e = parse(
            "a.sources.r1.kafka.bootstrap.servers = b:9092\n\
             a.sources.r1.kafka.topics.regex = (\n",
        )
        .unwrap_err();
        assert!(e.contains("t.properties:2"), "{e}");
    }

    #[test]
    fn max_backoff_sleep_in_flumes_spelling_and_the_old_one() {
        let base = "a.sources.r1.kafka.bootstrap.servers = b:9092\na.sources.r1.kafka.topics = t\n";
        let (c, notes) = parse(&format!("{base}a.sources.r1.maxBackoffSleep = 300\n")).unwrap();
        assert_eq!(c.backoff.max, Duration::from_millis(300));
        assert!(notes.is_empty(), "{notes:?}");
        let (c, notes) = parse(&format!("{base}a.sources.r1.maxBackOffSleep = 200\n")).unwrap();
        assert_eq!(c.backoff.max, Duration::from_millis(200));
        assert!(
            notes.iter().any(|n| n.contains("maxBackoffSleep")),
            "{notes:?}"
        );
        let e = parse(&format!("{base}a.sources.r1.maxBackoffSleep = soon\n")).unwrap_err();
        assert!(e.contains("maxBackoffSleep") && e.contains("soon"), "{e}");
    }

    /// The consumer takes the same Java TLS and SASL keys as the producer (a Flume Kafka
    /// source or channel reading from a secured cluster).
    #[test]
    fn java_tls_and_sasl_keys_of_the_consumer_are_translated() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/java-stores");
        let (c, notes) = parse(&format!(
            "a.sources.r1.kafka.bootstrap.servers = b:9093\na.sources.r1.kafka.topics = t\n\
             a.sources.r1.kafka.consumer.security.protocol = SASL_SSL\n\
             a.sources.r1.kafka.consumer.ssl.truststore.location = {}\n\
             a.sources.r1.kafka.consumer.ssl.truststore.password = trust-pass\n\
             a.sources.r1.kafka.consumer.sasl.mechanism = SCRAM-SHA-512\n\
             a.sources.r1.kafka.consumer.sasl.jaas.config = org.apache.kafka.common.security.\
             scram.ScramLoginModule required username=\"u\" password=\"p\";\n",
            dir.join("truststore.jks").display()
        ))
        .unwrap();
        let get = |key: &str| {
            c.consumer
                .iter()
                .rev()
                .find(|p| p.key == key)
                .map(|p| p.value.as_str())
        };
        let ca = std::fs::read_to_string(dir.join("ca.pem")).unwrap();
        assert_eq!(get("ssl.ca.pem"), Some(ca.as_str()));
        assert_eq!(get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(get("sasl.username"), Some("u"));
        assert_eq!(get("sasl.password"), Some("p"));
        for java in [
            "ssl.truststore.location",
            "ssl.truststore.password",
            "sasl.jaas.config",
        ] {
            assert!(get(java).is_none(), "{java} passed on");
        }
        assert!(notes.is_empty(), "{notes:?}");
    }

    /// Kerberos is refused at its own line, in weir's words, not by librdkafka at client
    /// creation with advice to recompile it.
    #[test]
    fn kerberos_is_refused_at_its_key() {
        let e = parse(
            "a.sources.r1.kafka.bootstrap.servers = b:9093\na.sources.r1.kafka.topics = t\n\
             a.sources.r1.kafka.consumer.security.protocol = SASL_PLAINTEXT\n\
             a.sources.r1.kafka.consumer.sasl.mechanism = GSSAPI\n",
        )
        .unwrap_err();
        assert!(
            e.starts_with(
                "t.properties:4: a.sources.r1.kafka.consumer.sasl.mechanism: Kerberos (GSSAPI) is \
                 not supported by weir"
            ),
            "{e}"
        );
    }
}
