//! The Kafka sink's producer settings: Flume's `kafka.producer.*` keys are Java producer
//! properties, and the sink's client is librdkafka. This module turns the first into the
//! second: weir's defaults first, then each key under librdkafka's name for the same setting,
//! Java-only keys noted and left out, the TLS stores and JAAS lines librdkafka cannot read
//! turned into what it can (or refused with the command that converts them), and the settings
//! weir's delivery guarantee rests on kept.
//!
//! A key librdkafka does not know at all is not decided here: the sink asks librdkafka itself
//! (`sink::kafka::validate_producer`), so this table need not list every Java property.

use super::{ConfigError, Section, kafka_security};

/// One librdkafka producer property and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerProperty {
    pub key: String,
    pub value: String,
    /// `FILE:LINE: KEY` of the configuration entry it came from, for messages; `None` for
    /// weir's own defaults.
    pub origin: Option<String>,
}

impl ProducerProperty {
    pub fn new(key: &str, value: &str) -> ProducerProperty {
        ProducerProperty {
            key: key.to_owned(),
            value: value.to_owned(),
            origin: None,
        }
    }
}

/// `kafka.bootstrap.servers` (or Flume's deprecated `brokerList`) of a producing component,
/// required.
pub(super) fn bootstrap_servers(
    s: &Section,
    notes: &mut Vec<String>,
) -> Result<String, ConfigError> {
    s.string_or_deprecated("kafka.bootstrap.servers", "brokerList", notes)
        .ok_or_else(|| {
            s.error(
                Some("kafka.bootstrap.servers"),
                format!(
                    "missing: set `{}` to the broker list, e.g. localhost:9092",
                    s.full("kafka.bootstrap.servers")
                ),
            )
        })
}

/// weir's defaults, which `kafka.producer.*` may override (except `acks`, see `translate`).
///
/// linger.ms = 2 (librdkafka: 5): the sink waits for every batch's acknowledgements, so part
/// of the linger is paid per batch; measured with `cargo bench --bench kafka`, 100 B events
/// ~520k events/s against ~390k with 5. message.timeout.ms = 30 s (librdkafka: 5 min) so a
/// batch stuck on a broker that went away is rolled back, counted and retried (with a fresh
/// producer) within seconds. partitioner = murmur2_random (librdkafka: consistent_random, a
/// CRC32 of the key): the Java producer Flume's sink uses puts a keyed record in
/// murmur2(key) % partitions, so a Flume agent replaced by weir keeps sending each key to the
/// same partition and per-key order holds across the switch; keyless records are spread, as
/// Java's are.
const DEFAULTS: [(&str, &str); 5] = [
    ("acks", "all"),
    ("enable.idempotence", "true"),
    ("linger.ms", "2"),
    ("message.timeout.ms", "30000"),
    ("partitioner", "murmur2_random"),
];

/// Java producer properties with no librdkafka counterpart, and why weir can do without them.
fn java_only(key: &str) -> Option<&'static str> {
    Some(match key {
        "key.serializer" | "value.serializer" => "records are always bytes",
        "buffer.memory" => "librdkafka sizes its queue with queue.buffering.max.kbytes",
        "max.block.ms" => "weir never blocks on a full producer queue past shutdown",
        "partitioner.class" => {
            "Java classes cannot be loaded; keyed records go where Java's default partitioner \
             puts them (murmur2 of the key), and kafka.producer.partitioner picks another of \
             librdkafka's"
        }
        "interceptor.classes" | "metric.reporters" | "ssl.engine.factory.class" => {
            "Java classes cannot be loaded"
        }
        "ssl.protocol" | "ssl.enabled.protocols" => {
            "librdkafka negotiates the highest TLS version both sides support (1.2 or 1.3)"
        }
        // Flume 1.10+ wraps each batch in a Kafka transaction when this is set. librdkafka
        // would refuse every record of a transactional producer used without its transaction
        // calls, so the sink would never deliver; and the test broker has no transactions to
        // test them against. Records still reach read_committed consumers, at least once.
        "transactional.id" => {
            "weir's sink does not produce in Kafka transactions; each batch is acknowledged \
             (acks=all, idempotent) before its take commits, and read_committed consumers see \
             the records as they arrive, not batch by batch"
        }
        _ => return None,
    })
}

/// The producer properties for the sink configured in `s`. `legacy_acks` is Flume 1.6's
/// `requiredAcks`, if set.
pub fn translate(
    s: &Section,
    legacy_acks: Option<&str>,
    notes: &mut Vec<String>,
) -> Result<Vec<ProducerProperty>, ConfigError> {
    let mut out: Vec<ProducerProperty> = DEFAULTS
        .iter()
        .map(|(k, v)| ProducerProperty::new(k, v))
        .collect();
    let prefix = "kafka.producer.";
    let full_prefix = s.full(prefix);
    let user: Vec<(&str, &super::Entry)> = s.props().with_prefix(&full_prefix).collect();
    // Flume 1.9's global key and trust stores, for what a TLS client leaves unset.
    let globals = kafka_security::globals_for(&user);
    let value_of = |key: &str| kafka_security::value_in(&user, &globals, key);
    let origin = |key: &str, entry: &super::Entry| {
        Some(format!(
            "{}: {}",
            entry.at(),
            s.full(&format!("{prefix}{key}"))
        ))
    };
    let push = |out: &mut Vec<ProducerProperty>, key: &str, value: &str, from: Option<String>| {
        out.push(ProducerProperty {
            key: key.to_owned(),
            value: value.to_owned(),
            origin: from,
        })
    };

    if let (Some(acks), Some(entry)) = (legacy_acks, s.entry("requiredAcks")) {
        check_acks(
            &format!("{}: {}", entry.at(), s.full("requiredAcks")),
            acks,
            notes,
        );
    }
    for (key, entry) in &user {
        s.entry(&format!("{prefix}{key}"));
        let value = entry.value.trim();
        let from = origin(key, entry);
        let at = from.clone().unwrap_or_default();
        // Flume drops a property whose value is empty before any component sees it, so the
        // producer's default holds (an empty ssl.endpoint.identification.algorithm does not
        // turn host name checking off there, and must not here).
        if value.is_empty() {
            notes.push(format!("{at}: empty value, not used (as in Flume)"));
            continue;
        }
        if let Some(why) = java_only(key) {
            notes.push(format!(
                "{at}: Java-only producer property, not used: {why}"
            ));
            continue;
        }
        let k = kafka_security::Key {
            prefix,
            key,
            value,
            origin: from.clone(),
        };
        if kafka_security::translate(s, &k, &value_of, &mut out, notes)? {
            continue;
        }
        match *key {
            "acks" => check_acks(&at, value, notes),
            // Same meaning, librdkafka's name.
            "max.request.size" => push(&mut out, "message.max.bytes", value, from),
            // Java's -1 is "the system's default", librdkafka's 0.
            "receive.buffer.bytes" | "send.buffer.bytes" => {
                let v = if value == "-1" { "0" } else { value };
                push(&mut out, &format!("socket.{key}"), v, from)
            }
            _ => push(&mut out, key, value, from),
        }
    }

    kafka_security::translate_globals(s, prefix, &globals, &value_of, &mut out, notes)?;
    // Java's producer (3.2+) turns idempotence off when settings that contradict it are given
    // and idempotence was not asked for; librdkafka would refuse to start instead.
    let conflict = [
        ("retries", value_of("retries").is_some_and(|v| v == "0")),
        (
            "max.in.flight.requests.per.connection",
            value_of("max.in.flight.requests.per.connection")
                .and_then(|v| v.parse::<u32>().ok())
                .is_some_and(|v| v > 5),
        ),
    ]
    .into_iter()
    .find(|(_, yes)| *yes)
    .map(|(k, _)| k);
    if let Some(key) = conflict {
        let asked = value_of("enable.idempotence").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if asked {
            return Err(s.error(
                Some(&format!("{prefix}{key}")),
                format!(
                    "contradicts `{}enable.idempotence = true` (an idempotent producer needs \
                     retries >= 1 and at most 5 requests in flight)",
                    s.full(prefix)
                ),
            ));
        }
        if value_of("enable.idempotence").is_none() {
            let at = user
                .iter()
                .find(|(k, _)| *k == key)
                .and_then(|(k, e)| origin(k, e))
                .unwrap_or_default();
            notes.push(format!(
                "{at}: idempotence turned off, as Java's producer does for this setting: a \
                 retried send may then duplicate records"
            ));
            push(&mut out, "enable.idempotence", "false", None);
        }
    }
    Ok(out)
}

/// weir always produces with `acks=all`: a batch leaves the channel only once every in-sync
/// replica has it. Any other value is noted and not used.
fn check_acks(full_key: &str, value: &str, notes: &mut Vec<String>) {
    if value.eq_ignore_ascii_case("all") || value == "-1" {
        return;
    }
    notes.push(format!(
        "{full_key}: {value} not used: weir produces with acks=all, so a batch leaves the channel \
         only once every in-sync replica has it (with acks={value} the broker may acknowledge \
         records it then loses)"
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Properties;
    use std::path::Path;

    /// librdkafka's (key, value) pairs, in order.
    type Pairs = Vec<(String, String)>;

    fn producer(text: &str) -> Result<(Pairs, Vec<String>), String> {
        let props = Properties::parse(Path::new("t.properties"), text.as_bytes()).unwrap();
        let s = Section::new(&props, "a.sinks.k1.".into());
        let mut notes = Vec::new();
        let out = translate(&s, None, &mut notes).map_err(|e| e.to_string())?;
        Ok((out.into_iter().map(|p| (p.key, p.value)).collect(), notes))
    }

    /// [`producer`] of `text` with TLS and SASL on (its last line, so that the lines of
    /// `text` keep their numbers).
    fn secured(text: &str) -> Result<(Pairs, Vec<String>), String> {
        producer(&format!(
            "{text}a.sinks.k1.kafka.producer.security.protocol = SASL_SSL\n"
        ))
    }

    /// The last value librdkafka would be given for `key`.
    fn last<'a>(props: &'a [(String, String)], key: &str) -> Option<&'a str> {
        props
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The Flume user guide's Kafka sink example sets acks = 1; weir keeps acks=all and says so.
    #[test]
    fn acks_other_than_all_are_noted_and_not_used() {
        for acks in ["1", "0"] {
            let (p, notes) =
                producer(&format!("a.sinks.k1.kafka.producer.acks = {acks}\n")).unwrap();
            assert_eq!(last(&p, "acks"), Some("all"));
            assert_eq!(last(&p, "enable.idempotence"), Some("true"));
            assert!(
                notes[0].starts_with(&format!(
                    "t.properties:1: a.sinks.k1.kafka.producer.acks: {acks} not used: weir \
                     produces with acks=all"
                )),
                "{notes:?}"
            );
        }
        let (p, notes) = producer("a.sinks.k1.kafka.producer.acks = -1\n").unwrap();
        assert_eq!(last(&p, "acks"), Some("all"));
        assert!(notes.is_empty(), "{notes:?}");
    }

    /// Java names suites, librdkafka takes OpenSSL's cipher list; TLS 1.3 suites have no
    /// librdkafka key and are noted, a name OpenSSL does not have is an error on its key.
    #[test]
    fn cipher_suites_become_an_openssl_cipher_list() {
        let (p, notes) = secured(
            "a.sinks.k1.kafka.producer.ssl.cipher.suites = \
             TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_AES_256_GCM_SHA384\n",
        )
        .unwrap();
        assert_eq!(
            last(&p, "ssl.cipher.suites"),
            Some("ECDHE-RSA-AES256-GCM-SHA384")
        );
        assert!(
            notes.iter().any(|n| n.starts_with(
                "t.properties:1: a.sinks.k1.kafka.producer.ssl.cipher.suites: \
                 TLS_AES_256_GCM_SHA384 not used"
            )),
            "{notes:?}"
        );
        let (p, _) =
            secured("a.sinks.k1.kafka.producer.ssl.cipher.suites = TLS_AES_256_GCM_SHA384\n")
                .unwrap();
        assert_eq!(last(&p, "ssl.cipher.suites"), None);
        let e = secured("a.sinks.k1.kafka.producer.ssl.cipher.suites = TLS_NOPE\n").unwrap_err();
        assert!(
            e.starts_with(
                "t.properties:1: a.sinks.k1.kafka.producer.ssl.cipher.suites: not a \
                 cipher suite OpenSSL has: TLS_NOPE"
            ),
            "{e}"
        );
    }

    #[test]
    fn java_names_become_librdkafka_names() {
        let (p, notes) = secured(
            "a.sinks.k1.kafka.producer.max.request.size = 2097152\n\
             a.sinks.k1.kafka.producer.receive.buffer.bytes = -1\n\
             a.sinks.k1.kafka.producer.send.buffer.bytes = 131072\n\
             a.sinks.k1.kafka.producer.ssl.endpoint.identification.algorithm = HTTPS\n\
             a.sinks.k1.kafka.producer.linger.ms = 7\n\
             a.sinks.k1.kafka.producer.ssl.truststore.location = /etc/ca.pem\n\
             a.sinks.k1.kafka.producer.ssl.truststore.type = PEM\n\
             a.sinks.k1.kafka.producer.ssl.keystore.location = /etc/client.pem\n\
             a.sinks.k1.kafka.producer.ssl.keystore.type = PEM\n\
             a.sinks.k1.kafka.producer.ssl.key.password = pw\n\
             a.sinks.k1.kafka.producer.sasl.jaas.config = org.apache.kafka.common.security.\
             scram.ScramLoginModule required username=\"alice\" password=\"s3 cret\";\n",
        )
        .unwrap();
        for (key, value) in [
            ("message.max.bytes", "2097152"),
            ("socket.receive.buffer.bytes", "0"),
            ("socket.send.buffer.bytes", "131072"),
            ("ssl.endpoint.identification.algorithm", "https"),
            ("linger.ms", "7"),
            ("ssl.ca.location", "/etc/ca.pem"),
            ("ssl.certificate.location", "/etc/client.pem"),
            ("ssl.key.location", "/etc/client.pem"),
            ("ssl.key.password", "pw"),
            ("sasl.username", "alice"),
            ("sasl.password", "s3 cret"),
        ] {
            assert_eq!(last(&p, key), Some(value), "{key} in {p:?}");
        }
        for java in [
            "max.request.size",
            "receive.buffer.bytes",
            "ssl.truststore.location",
            "ssl.truststore.type",
            "ssl.keystore.type",
            "ssl.keystore.location",
            "sasl.jaas.config",
        ] {
            assert!(last(&p, java).is_none(), "{java} passed on: {p:?}");
        }
        assert!(notes.is_empty(), "{notes:?}");
    }

    /// Flume drops empty values: the producer's default stays, with a note.
    #[test]
    fn empty_values_are_not_used() {
        let (p, notes) =
            producer("a.sinks.k1.kafka.producer.ssl.endpoint.identification.algorithm =\n")
                .unwrap();
        assert!(
            last(&p, "ssl.endpoint.identification.algorithm").is_none(),
            "{p:?}"
        );
        assert_eq!(
            notes,
            [
                "t.properties:1: a.sinks.k1.kafka.producer.ssl.endpoint.identification.algorithm: \
              empty value, not used (as in Flume)"
            ]
        );
    }

    fn fixture(name: &str) -> String {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/java-stores")
            .join(name)
            .display()
            .to_string()
    }

    /// librdkafka reads neither JKS nor PKCS#12 trust stores, nor JKS key stores: weir reads
    /// them and hands librdkafka PEM, so a Flume config's stores work unchanged.
    #[test]
    fn java_stores_become_pem() {
        let pem = |f: &str| std::fs::read_to_string(fixture(f)).unwrap();
        for (truststore, keystore) in [
            ("truststore.jks", "keystore.jks"),
            ("truststore.p12", "keystore.p12"),
        ] {
            let (p, notes) = producer(&format!(
                "a.sinks.k1.kafka.producer.security.protocol = SSL\n\
                 a.sinks.k1.kafka.producer.ssl.truststore.location = {}\n\
                 a.sinks.k1.kafka.producer.ssl.truststore.password = trust-pass\n\
                 a.sinks.k1.kafka.producer.ssl.keystore.location = {}\n\
                 a.sinks.k1.kafka.producer.ssl.keystore.password = store-pass\n\
                 a.sinks.k1.kafka.producer.ssl.key.password = key-pass\n",
                fixture(truststore),
                fixture(keystore),
            ))
            .unwrap();
            assert_eq!(last(&p, "ssl.ca.pem"), Some(pem("ca.pem").as_str()));
            let chain = pem("client.pem") + &pem("ca.pem");
            assert_eq!(last(&p, "ssl.certificate.pem"), Some(chain.as_str()));
            assert!(last(&p, "ssl.key.pem").is_some_and(|k| k.contains("BEGIN PRIVATE KEY")));
            for java in [
                "ssl.truststore.location",
                "ssl.truststore.password",
                "ssl.keystore.location",
                "ssl.keystore.password",
                "ssl.key.password",
            ] {
                assert!(last(&p, java).is_none(), "{java} passed on for {keystore}");
            }
            assert!(notes.is_empty(), "{notes:?}");
        }
    }

    #[test]
    fn stores_that_cannot_be_read_are_named_with_the_key() {
        let e = secured(&format!(
            "a.sinks.k1.kafka.producer.security.protocol = SSL\n\
             a.sinks.k1.kafka.producer.ssl.truststore.location = {}\n\
             a.sinks.k1.kafka.producer.ssl.truststore.password = wrong\n",
            fixture("truststore.jks")
        ))
        .unwrap_err();
        assert!(
            e.starts_with(
                "t.properties:2: a.sinks.k1.kafka.producer.ssl.truststore.location: Java JKS \
                 truststore /"
            ) && e.contains("integrity check failed"),
            "{e}"
        );
        let e =
            secured("a.sinks.k1.kafka.producer.ssl.keystore.location = /etc/ks.jks\n").unwrap_err();
        assert!(
            e.contains("keystore.location: Java JKS keystore /etc/ks.jks: cannot read it"),
            "{e}"
        );
        // A trust store given as the key store: no key in it.
        let e = secured(&format!(
            "a.sinks.k1.kafka.producer.ssl.keystore.location = {}\n",
            fixture("truststore.jks")
        ))
        .unwrap_err();
        assert!(e.ends_with("holds no private key"), "{e}");
        let e = secured(
            "a.sinks.k1.kafka.producer.sasl.jaas.config = com.sun.security.auth.module.\
             Krb5LoginModule required useKeyTab=true;\n",
        )
        .unwrap_err();
        assert!(e.contains("no username="), "{e}");
    }

    /// Java's client reads no TLS key without TLS and no SASL key without SASL, so neither is
    /// read here (a store that is not there refuses nothing), and each is noted.
    #[test]
    fn tls_and_sasl_keys_without_their_protocol_are_noted_not_read() {
        let (p, notes) = producer(
            "a.sinks.k1.kafka.producer.sasl.mechanism = GSSAPI\n\
             a.sinks.k1.kafka.producer.security.protocol = SSL\n",
        )
        .unwrap();
        assert!(last(&p, "sasl.mechanism").is_none(), "{p:?}");
        assert_eq!(
            notes,
            [
                "t.properties:1: a.sinks.k1.kafka.producer.sasl.mechanism: ignored with \
              security.protocol = SSL (a SASL setting: it applies with SASL_PLAINTEXT or \
              SASL_SSL)"
            ]
        );
        let (p, notes) =
            producer("a.sinks.k1.kafka.producer.ssl.truststore.location = /nowhere/t.jks\n")
                .unwrap();
        assert!(last(&p, "ssl.ca.pem").is_none(), "{p:?}");
        assert_eq!(
            notes,
            [
                "t.properties:1: a.sinks.k1.kafka.producer.ssl.truststore.location: ignored with \
              security.protocol = PLAINTEXT (a TLS setting: it applies with SSL or SASL_SSL)"
            ]
        );
    }

    /// As Java's producer: settings that contradict idempotence turn it off unless it was
    /// asked for, and then they are an error.
    #[test]
    fn settings_that_contradict_idempotence_turn_it_off_unless_it_was_asked_for() {
        for (key, value) in [
            ("retries", "0"),
            ("max.in.flight.requests.per.connection", "10"),
        ] {
            let (p, notes) =
                producer(&format!("a.sinks.k1.kafka.producer.{key} = {value}\n")).unwrap();
            assert_eq!(last(&p, "enable.idempotence"), Some("false"), "{key}");
            assert!(notes[0].contains("idempotence turned off"), "{notes:?}");
            let e = producer(&format!(
                "a.sinks.k1.kafka.producer.enable.idempotence = true\n\
                 a.sinks.k1.kafka.producer.{key} = {value}\n"
            ))
            .unwrap_err();
            assert!(
                e.starts_with(&format!("t.properties:2: a.sinks.k1.kafka.producer.{key}")),
                "{e}"
            );
        }
        let (p, notes) = producer("a.sinks.k1.kafka.producer.retries = 5\n").unwrap();
        assert_eq!(last(&p, "enable.idempotence"), Some("true"));
        assert!(notes.is_empty());
    }
}
