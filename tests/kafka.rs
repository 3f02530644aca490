//! The Kafka sink against a real Kafka-protocol broker (tansu): what arrives, with which
//! headers, key and partition; and that nothing acknowledged at the source is lost when the
//! agent is killed, the broker freezes, or the broker dies and comes back.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{
    Agent, Broker, Client, KafkaPython, consume, consume_until, free_port, has_all, kafka_config,
};
use weir::config::{AgentConfig, Properties};
use weir::event::Event;
use weir::sink::{self, SinkCounters};

fn sink_from(text: &str) -> Box<dyn sink::Sink> {
    try_sink_from(text).unwrap()
}

fn try_sink_from(text: &str) -> anyhow::Result<Box<dyn sink::Sink>> {
    try_sink_stopping_on(text, weir::stop::Stop::new())
}

fn try_sink_stopping_on(
    text: &str,
    stop: weir::stop::StopFlag,
) -> anyhow::Result<Box<dyn sink::Sink>> {
    let props =
        Properties::parse(std::path::Path::new("test.properties"), text.as_bytes()).unwrap();
    // A refusal at load (Kerberos, say) counts as a refusal to build, as `weir agent` shows it.
    let cfg = AgentConfig::from_properties(&props, "a").map_err(|e| anyhow::anyhow!("{e}"))?;
    sink::build(&cfg.sinks[0], stop, Arc::new(SinkCounters::default()))
}

/// Producer settings of secured clusters, as Flume configs write them, are accepted: the
/// producer is created (it connects only when it first sends, so no broker is needed).
#[test]
fn tls_and_sasl_producer_settings_are_built_in() {
    let p = "a.sinks.k1.kafka.producer.";
    for (what, extra) in [
        ("SSL", format!("{p}security.protocol = SSL\n")),
        (
            "SASL_SSL + SCRAM-SHA-512",
            format!(
                "{p}security.protocol = SASL_SSL\n{p}sasl.mechanism = SCRAM-SHA-512\n\
                 {p}sasl.username = u\n{p}sasl.password = pw\n"
            ),
        ),
        (
            "SASL_SSL + SCRAM-SHA-256",
            format!(
                "{p}security.protocol = SASL_SSL\n{p}sasl.mechanism = SCRAM-SHA-256\n\
                 {p}sasl.username = u\n{p}sasl.password = pw\n"
            ),
        ),
        (
            "SASL_PLAINTEXT + PLAIN",
            format!(
                "{p}security.protocol = SASL_PLAINTEXT\n{p}sasl.mechanism = PLAIN\n\
                 {p}sasl.username = u\n{p}sasl.password = pw\n"
            ),
        ),
    ] {
        if let Err(e) = try_sink_from(&sink_text("127.0.0.1:9", &extra)) {
            panic!("{what}: {e:#}");
        }
    }
    // Kerberos needs Cyrus SASL, and OAUTHBEARER's OIDC needs libcurl; neither is built in,
    // and the refusal names the setting (Kerberos at load, OIDC when the producer is built).
    for (what, extra, named) in [
        (
            "GSSAPI",
            format!("{p}security.protocol = SASL_PLAINTEXT\n{p}sasl.mechanism = GSSAPI\n"),
            "GSSAPI",
        ),
        (
            "OIDC",
            format!(
                "{p}security.protocol = SASL_SSL\n{p}sasl.mechanism = OAUTHBEARER\n\
                 {p}sasl.oauthbearer.method = oidc\n{p}sasl.oauthbearer.client.id = c\n"
            ),
            "sasl.oauthbearer",
        ),
    ] {
        let err = match try_sink_from(&sink_text("127.0.0.1:9", &extra)) {
            Ok(_) => panic!("{what} was accepted, but it is not built in"),
            Err(e) => format!("{e:#}"),
        };
        assert!(
            err.contains("kafka.producer") && err.contains(named),
            "{what}: {err}"
        );
    }
}

/// Java producer properties found in Flume configs start the sink: each is passed under
/// librdkafka's name, or left out with a note (no broker needed: the producer connects only
/// when it first sends).
#[test]
fn java_producer_properties_of_flume_configs_start_the_sink() {
    let p = "a.sinks.k1.kafka.producer.";
    for (k, v) in [
        ("acks", "1"),
        ("acks", "0"),
        ("acks", "-1"),
        ("batch.size", "16384"),
        ("buffer.memory", "33554432"),
        ("client.id", "flume"),
        ("compression.type", "snappy"),
        ("linger.ms", "1"),
        ("max.block.ms", "60000"),
        ("max.request.size", "1048576"),
        ("retries", "2147483647"),
        ("retries", "0"),
        ("retry.backoff.ms", "100"),
        ("request.timeout.ms", "30000"),
        ("delivery.timeout.ms", "120000"),
        ("max.in.flight.requests.per.connection", "1"),
        ("max.in.flight.requests.per.connection", "10"),
        ("enable.idempotence", "false"),
        ("metadata.max.age.ms", "300000"),
        ("receive.buffer.bytes", "32768"),
        ("send.buffer.bytes", "-1"),
        ("reconnect.backoff.ms", "50"),
        ("reconnect.backoff.max.ms", "1000"),
        ("connections.max.idle.ms", "540000"),
        ("ssl.endpoint.identification.algorithm", "HTTPS"),
        ("ssl.endpoint.identification.algorithm", ""),
        ("ssl.protocol", "TLSv1.2"),
        ("ssl.enabled.protocols", "TLSv1.2,TLSv1.3"),
        ("sasl.kerberos.service.name", "kafka"),
        (
            "partitioner.class",
            "org.apache.kafka.clients.producer.RoundRobinPartitioner",
        ),
        ("interceptor.classes", "com.example.Interceptor"),
        (
            "key.serializer",
            "org.apache.kafka.common.serialization.StringSerializer",
        ),
        (
            "value.serializer",
            "org.apache.kafka.common.serialization.ByteArraySerializer",
        ),
        ("transactional.id", "flume-1"),
        ("transaction.timeout.ms", "60000"),
        ("metrics.sample.window.ms", "30000"),
        ("metadata.max.idle.ms", "300000"),
        ("partitioner.ignore.keys", "false"),
        ("partitioner.adaptive.partitioning.enable", "true"),
        ("auto.include.jmx.reporter", "true"),
        ("client.dns.lookup", "use_all_dns_ips"),
        ("socket.connection.setup.timeout.ms", "10000"),
    ] {
        let extra = format!("{p}{k} = {v}\n");
        if let Err(e) = try_sink_from(&sink_text("127.0.0.1:9", &extra)) {
            panic!("{k} = {v}: {e:#}");
        }
    }
    // A value librdkafka refuses names the key and where it was set.
    let Err(e) = try_sink_from(&sink_text("127.0.0.1:9", &format!("{p}linger.ms = soon\n"))) else {
        panic!("linger.ms = soon was accepted");
    };
    let e = format!("{e:#}");
    assert!(
        e.starts_with("test.properties:11: a.sinks.k1.kafka.producer.linger.ms"),
        "{e}"
    );
}

/// The Flume user guide's Kafka sink example, as users copy it: `kafka.flumeBatchSize` (which
/// Flume ignores), `acks = 1` (weir keeps acks=all), `linger.ms` and snappy. It starts, and
/// every acknowledged line arrives.
#[test]
fn the_flume_user_guides_kafka_sink_example_runs() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.create_topic("mytopic", 1);
    let (_dir, mut agent, mut client) = agent_for(
        &broker,
        "mytopic",
        "a.sinks.k1.kafka.flumeBatchSize = 20\n\
         a.sinks.k1.kafka.producer.acks = 1\n\
         a.sinks.k1.kafka.producer.linger.ms = 1\n\
         a.sinks.k1.kafka.producer.compression.type = snappy\n",
    );
    let ok = send_lines(&mut client, "guide", 0, 100);
    assert_eq!(ok.len(), 100);
    expect_lines(
        &broker,
        "mytopic",
        1,
        &ok,
        Duration::from_secs(30),
        "with the user guide's settings",
    );
    assert!(agent.stop(), "agent did not exit 0");
}

/// The configuration of this project's seed article (`../shared/seed/`), verbatim but for
/// the port and the broker's address: it binds neither the source nor the sink to the channel,
/// and is started the article's way, `flume-ng agent -f conf`, with no agent name and a
/// directory holding `flume-conf.properties`. weir binds both to the only channel (with a
/// note) and runs it; Flume would drop both and run nothing.
#[test]
fn the_seed_articles_config_runs_from_its_conf_directory() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.create_topic("test", 4);
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf");
    std::fs::create_dir(&conf).unwrap();
    let port = free_port();
    let seed = "agent.sources = r1\n\
agent.sinks = k1\n\
agent.channels = c1\n\
\n\
agent.sources.r1.type = netcat\n\
agent.sources.r1.bind = localhost\n\
agent.sources.r1.port = 44444\n\
\n\
agent.sinks.k1.type = org.apache.flume.sink.kafka\n\
agent.sinks.k1.kafka.topic = test\n\
agent.sinks.k1.kafka.bootstrap.servers = localhost:9092\n\
\n\
agent.channels.c1.type = memory\n\
agent.channels.c1.capacity = 10000\n\
agent.channels.c1.transactionCapacity = 1000\n"
        .replace("44444", &port.to_string())
        .replace("localhost:9092", &broker.bootstrap());
    std::fs::write(conf.join("flume-conf.properties"), seed).unwrap();
    std::fs::write(conf.join("log4j.properties"), "log4j.rootLogger=INFO\n").unwrap();
    let mut agent = Agent::start_args(
        &conf,
        port,
        &[std::ffi::OsStr::new("-f"), conf.as_os_str()],
        std::process::Stdio::inherit(),
    );
    let mut client = Client::new(port);
    let ok = send_lines(&mut client, "seed", 0, 200);
    assert_eq!(ok.len(), 200);
    expect_lines(
        &broker,
        "test",
        4,
        &ok,
        Duration::from_secs(30),
        "with the seed article's configuration",
    );
    assert!(agent.stop(), "agent did not exit 0");
}

fn sink_text(bootstrap: &str, extra: &str) -> String {
    format!(
        "a.sources = r1\na.channels = c1\na.sinks = k1\na.sources.r1.type = seq\na.sources.r1.channels = c1\n\
         a.channels.c1.type = memory\na.sinks.k1.type = kafka\na.sinks.k1.channel = c1\n\
         a.sinks.k1.kafka.bootstrap.servers = {bootstrap}\na.sinks.k1.kafka.topic = main\n{extra}"
    )
}

#[test]
fn records_carry_body_headers_key_partition_and_topic_override() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.create_topic("main", 3);
    // defaultPartitionId applies to every topic, overridden ones included.
    broker.create_topic("other", 2);
    let mut sink = sink_from(&sink_text(
        &broker.bootstrap(),
        "a.sinks.k1.partitionIdHeader = part\na.sinks.k1.defaultPartitionId = 1\n",
    ));
    let events = vec![
        (
            10,
            Event::new(&b"b0"[..])
                .with_header("key", "k0")
                .with_header("part", "2")
                .with_header("h", "v"),
        ),
        (11, Event::new(&b"b1"[..]).with_header("topic", "other")),
        (12, Event::new(vec![0u8, 159, 255])),
    ];
    sink.deliver(&events).unwrap();

    let main = consume(&broker.bootstrap(), "main", 3, 2, Duration::from_secs(20));
    assert_eq!(main.len(), 2, "{main:?}");
    let r0 = main.iter().find(|r| r.body == b"b0").expect("b0 in main");
    assert_eq!(r0.partition, 2);
    assert_eq!(r0.key.as_deref(), Some(&b"k0"[..]));
    assert_eq!(r0.header("h"), Some("v"));
    assert_eq!(r0.header("key"), Some("k0"));
    assert_eq!(r0.offset_header(), 10);
    let r2 = main
        .iter()
        .find(|r| r.body == [0u8, 159, 255])
        .expect("binary body in main");
    assert_eq!(r2.partition, 1, "defaultPartitionId");
    assert_eq!(r2.key, None);
    assert_eq!(r2.offset_header(), 12);
    let other = consume(&broker.bootstrap(), "other", 2, 1, Duration::from_secs(20));
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].body, b"b1");
    assert_eq!(other[0].offset_header(), 11);
}

/// The agent stopping while a batch is on its way: the sink still takes the broker's
/// acknowledgement, which comes within milliseconds, instead of rolling back a batch the broker
/// stored (the restarted agent sent it again: 50 duplicates per SIGTERM in audit 20). With
/// nobody at the address the stop waits out a bounded grace, not `message.timeout.ms`.
#[test]
fn a_batch_on_its_way_at_the_stop_is_acknowledged_not_abandoned() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.create_topic("main", 1);
    let stop = weir::stop::Stop::new();
    let mut sink = try_sink_stopping_on(&sink_text(&broker.bootstrap(), ""), stop.clone()).unwrap();
    sink.deliver(&[(0, Event::new(&b"first"[..]))]).unwrap();
    let events: Vec<(u64, Event)> = (1..=50u64)
        .map(|i| (i, Event::new(format!("e{i}").into_bytes())))
        .collect();
    sink.start(&events).unwrap();
    stop.set();
    sink.finish(&events)
        .expect("the batch on its way was given up at the stop");
    let got = consume(&broker.bootstrap(), "main", 1, 51, Duration::from_secs(20));
    assert_eq!(got.len(), 51);

    let stop = weir::stop::Stop::new();
    let mut sink = try_sink_stopping_on(&sink_text("127.0.0.1:1", ""), stop.clone()).unwrap();
    sink.start(&events).unwrap();
    stop.set();
    let started = Instant::now();
    assert!(sink.finish(&events).is_err(), "acknowledged by nobody");
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(20),
        "the stop waited {waited:?}"
    );
}

/// `kafka.topic = logs-%{app}`: each event goes to the topic named by its header, as Flume's
/// "arbitrary header substitution" does; the `topic` header still overrides.
#[test]
fn the_topic_may_name_event_headers() {
    let Some(broker) = Broker::start() else {
        return;
    };
    for t in ["logs-web", "logs-db", "logs-", "direct"] {
        broker.create_topic(t, 1);
    }
    let mut sink = sink_from(&sink_text(
        &broker.bootstrap(),
        "a.sinks.k1.kafka.topic = logs-%{app}\n",
    ));
    sink.deliver(&[
        (1, Event::new(&b"w"[..]).with_header("app", "web")),
        (2, Event::new(&b"d"[..]).with_header("app", "db")),
        (3, Event::new(&b"none"[..])),
        (
            4,
            Event::new(&b"o"[..])
                .with_header("app", "web")
                .with_header("topic", "direct"),
        ),
    ])
    .unwrap();
    for (topic, body) in [
        ("logs-web", "w"),
        ("logs-db", "d"),
        ("logs-", "none"),
        ("direct", "o"),
    ] {
        let got = consume(&broker.bootstrap(), topic, 1, 1, Duration::from_secs(20));
        let bodies: Vec<&[u8]> = got.iter().map(|r| &r.body[..]).collect();
        assert_eq!(bodies, [body.as_bytes()], "{topic}");
    }

    // A header that makes a name Kafka refuses: the record is refused for good, with the
    // reason, rather than retried for ever against "unknown topic".
    let bad = [(5, Event::new(&b"b"[..]).with_header("app", "we b"))];
    let err = sink.deliver(&bad).unwrap_err().to_string();
    assert!(
        err.contains("the topic \"logs-we b\" this event's headers make is not a Kafka topic name"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut dead = sink_from(&sink_text(
        &broker.bootstrap(),
        &format!(
            "a.sinks.k1.kafka.topic = logs-%{{app}}
a.sinks.k1.kafka.onUnsendable = deadletter
             a.sinks.k1.kafka.deadLetterDir = {}
",
            dir.path().display()
        ),
    ));
    dead.deliver(&bad).unwrap();
    let text = std::fs::read_to_string(dir.path().join("k1.deadletter.jsonl")).unwrap();
    assert!(text.contains("not a Kafka topic name"), "{text}");
}

/// `useFlumeEventFormat = true`: the value is Flume's Avro event datum, headers inside, so a
/// Flume Kafka source or channel reading with the same setting gets the whole event back.
#[test]
fn flume_event_format_puts_headers_and_body_in_the_value() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.create_topic("main", 1);
    let mut sink = sink_from(&sink_text(
        &broker.bootstrap(),
        "a.sinks.k1.useFlumeEventFormat = true\n",
    ));
    let event = Event::new(&b"payload"[..])
        .with_header("key", "k1")
        .with_header("host", "edge-7");
    sink.deliver(&[(5, event.clone())]).unwrap();
    let got = consume(&broker.bootstrap(), "main", 1, 1, Duration::from_secs(20));
    assert_eq!(got.len(), 1, "{got:?}");
    let (headers, body) = weir::flume_event_format::decode(&got[0].body).unwrap();
    assert_eq!(headers, event.headers);
    assert_eq!(body, b"payload");
    // The record itself still carries the key, the headers and the offset.
    assert_eq!(got[0].key.as_deref(), Some(&b"k1"[..]));
    assert_eq!(got[0].header("host"), Some("edge-7"));
    assert_eq!(got[0].offset_header(), 5);
}

/// A broker and the kafka-python reader, or `None` (the test is skipped) as `Broker::start`
/// and `KafkaPython::find` decide.
fn broker_and_reader() -> Option<(Broker, KafkaPython)> {
    let broker = Broker::start()?;
    Some((broker, KafkaPython::find()?))
}

/// Events with binary, empty and large bodies, non-ASCII headers, a stale `weir.offset`
/// header, and each way of choosing a partition: a `key` header, a `part` header, neither.
fn interop_events() -> Vec<(u64, Event)> {
    (0..200u64)
        .map(|i| {
            let body: Vec<u8> = match i % 7 {
                0 => Vec::new(),
                1 => (0..=255u8).collect(),
                2 if i == 2 => vec![b'x'; 200 * 1024],
                _ => format!("line {i} \u{e9}t\u{e9} \u{1f600}").into_bytes(),
            };
            let mut e = Event::new(body)
                .with_header("seq", i.to_string())
                .with_header("h\u{f6}st", "edge-\u{e4}");
            if i % 5 == 0 {
                // As an event read from Kafka keeps an upstream hop's offset: never forwarded.
                e = e.with_header("weir.offset", "upstream");
            }
            e = match i % 3 {
                0 => e.with_header("key", format!("user-{}", i % 11)),
                1 => e.with_header("part", (i % 4).to_string()),
                _ => e,
            };
            (1000 + i, e)
        })
        .collect()
}

/// What the sink wrote is read back by kafka-python, a client that shares no code with
/// librdkafka, under every codec a Flume config may name: each record once, with its body
/// (empty is empty, not null), key, headers and channel offset; in the partition its `part`
/// header named, or for a keyed record the one Java's producer (Flume's) picks for the key;
/// and in channel order within each partition.
#[test]
fn a_client_sharing_no_code_with_librdkafka_reads_what_the_sink_wrote() {
    let Some((broker, reader)) = broker_and_reader() else {
        return;
    };
    let events = interop_events();
    let by_offset: BTreeMap<u64, &Event> = events.iter().map(|(o, e)| (*o, e)).collect();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("interop-{codec}");
        broker.create_topic(&topic, 4);
        let mut sink = sink_from(&sink_text(
            &broker.bootstrap(),
            &format!(
                "a.sinks.k1.kafka.topic = {topic}\na.sinks.k1.partitionIdHeader = part\n\
                 a.sinks.k1.kafka.producer.compression.type = {codec}\n"
            ),
        ));
        for batch in events.chunks(50) {
            sink.deliver(batch).unwrap();
        }
        let got = reader.read(
            &broker.bootstrap(),
            &topic,
            events.len(),
            false,
            Duration::from_secs(60),
        );
        assert_eq!(got.len(), events.len(), "{codec}");
        let mut last_in_partition: BTreeMap<i32, (u64, u64)> = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for r in &got {
            let offset = r.record.offset_header();
            assert!(seen.insert(offset), "{codec}: offset {offset} read twice");
            let event = by_offset[&offset];
            assert_eq!(r.record.body, event.body, "{codec}: body of {offset}");
            assert!(!r.value_is_null, "{codec}: {offset} has a null value");
            assert_eq!(
                r.record.key.as_deref(),
                event.headers.get("key").map(|k| k.as_bytes()),
                "{codec}: key of {offset}"
            );
            let mut want: Vec<(String, String)> = event
                .headers
                .iter()
                .filter(|(k, _)| *k != "weir.offset")
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            want.push(("weir.offset".into(), offset.to_string()));
            let mut headers = r.record.headers.clone();
            headers.sort();
            want.sort();
            assert_eq!(headers, want, "{codec}: headers of {offset}");
            match (event.headers.get("part"), r.java_partition) {
                (Some(p), _) => assert_eq!(r.record.partition.to_string(), *p, "{codec}"),
                (None, Some(java)) => assert_eq!(
                    r.record.partition, java,
                    "{codec}: keyed record {offset} not where Java's producer puts its key"
                ),
                (None, None) => assert!((0..4).contains(&r.record.partition)),
            }
            if let Some((prev_offset, prev_kafka)) =
                last_in_partition.insert(r.record.partition, (offset, r.offset))
            {
                assert!(
                    prev_offset < offset && prev_kafka < r.offset,
                    "{codec}: partition {} out of channel order",
                    r.record.partition
                );
            }
        }
    }
}

/// Flume 1.11's `timestampHeader` stamps the record with the header's epoch milliseconds (the
/// send time when it is missing or not a number), and `header.<event> = <record>` sends only
/// the mapped event headers, renamed, besides `weir.offset`.
#[test]
fn timestamp_header_and_header_mapping_follow_flume_1_11() {
    let Some((broker, reader)) = broker_and_reader() else {
        return;
    };
    broker.create_topic("main", 1);
    let mut sink = sink_from(&sink_text(
        &broker.bootstrap(),
        "a.sinks.k1.timestampHeader = timestamp\n\
         a.sinks.k1.header.host = origin\na.sinks.k1.header.dc = datacenter\n",
    ));
    let stamped = 1_500_000_000_123i64;
    let events = vec![
        (
            1,
            Event::new(&b"stamped"[..])
                .with_header("timestamp", stamped.to_string())
                .with_header("host", "edge-1")
                .with_header("dc", "west")
                .with_header("other", "not sent"),
        ),
        (
            2,
            Event::new(&b"not a number"[..])
                .with_header("timestamp", "yesterday")
                .with_header("host", "edge-2"),
        ),
        (3, Event::new(&b"no header"[..])),
    ];
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    sink.deliver(&events).unwrap();
    let got = reader.read(
        &broker.bootstrap(),
        "main",
        3,
        false,
        Duration::from_secs(60),
    );
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| r.create_time), "{got:?}");
    assert_eq!(got[0].timestamp, stamped);
    for r in &got[1..] {
        assert!(
            (before - 1_000..before + 120_000).contains(&r.timestamp),
            "{} not stamped with the send time: {}",
            String::from_utf8_lossy(&r.record.body),
            r.timestamp
        );
    }
    let headers = |r: &support::PythonRecord| {
        let mut h = r.record.headers.clone();
        h.sort();
        h
    };
    let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    assert_eq!(
        headers(&got[0]),
        [
            pair("datacenter", "west"),
            pair("origin", "edge-1"),
            pair("weir.offset", "1")
        ]
    );
    assert_eq!(
        headers(&got[1]),
        [pair("origin", "edge-2"), pair("weir.offset", "2")]
    );
    assert_eq!(headers(&got[2]), [pair("weir.offset", "3")]);
}

/// `useFlumeEventFormat = true` values decode with Flume's Avro schema for `AvroFlumeEvent`
/// in fastavro, an Avro implementation independent of weir's encoder.
#[test]
fn flume_event_format_values_decode_with_flumes_schema_elsewhere() {
    let Some((broker, reader)) = broker_and_reader() else {
        return;
    };
    broker.create_topic("main", 1);
    let mut sink = sink_from(&sink_text(
        &broker.bootstrap(),
        "a.sinks.k1.useFlumeEventFormat = true\n",
    ));
    let mut events = interop_events();
    events.truncate(30);
    events.push((2000, Event::new(&b"no headers"[..])));
    sink.deliver(&events).unwrap();
    let got = reader.read(
        &broker.bootstrap(),
        "main",
        events.len(),
        true,
        Duration::from_secs(60),
    );
    assert_eq!(got.len(), events.len());
    for (r, (offset, event)) in got.iter().zip(&events) {
        assert_eq!(r.record.offset_header(), *offset);
        assert_eq!(r.flume_event.as_ref(), Some(event), "event at {offset}");
    }
}

#[test]
fn records_the_broker_refuses_block_or_go_to_the_dead_letter_file() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.create_topic("main", 1);
    let big = vec![(1, Event::new(vec![b'x'; 5000]))];
    let limit = "a.sinks.k1.kafka.producer.message.max.bytes = 2000\n";

    let mut blocking = sink_from(&sink_text(&broker.bootstrap(), limit));
    let err = blocking.deliver(&big).unwrap_err().to_string();
    // The brokers and the topic are named, for the operator to look at the right place.
    assert!(
        err.contains(&format!(
            "not acknowledged by {} (first: offset 1 to topic main: ",
            broker.bootstrap()
        )),
        "{err}"
    );
    assert!(
        err.contains(
            "the broker will never accept these records; retrying (kafka.onUnsendable = block)"
        ),
        "{err}"
    );

    // With a record that a retry may yet get through (its topic does not exist yet), that one
    // is named first: it holds the batch back, and the refused one waits for it.
    let mut mixed = sink_from(&sink_text(
        &broker.bootstrap(),
        &format!("{limit}a.sinks.k1.kafka.producer.message.timeout.ms = 2000\n"),
    ));
    let err = mixed
        .deliver(&[
            (1, Event::new(vec![b'x'; 5000])),
            (
                2,
                Event::new(&b"later"[..]).with_header("topic", "not-created-yet"),
            ),
        ])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("2 of 2 records not acknowledged")
            && err.contains("(first: offset 2 to topic not-created-yet: ")
            && err.contains("; 1 of them the broker will never accept (offset 1: "),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let mut dead = sink_from(&sink_text(
        &broker.bootstrap(),
        &format!(
            "{limit}a.sinks.k1.kafka.onUnsendable = deadletter\na.sinks.k1.kafka.deadLetterDir = {}\n",
            dir.path().display()
        ),
    ));
    dead.deliver(&big).unwrap();
    let text = std::fs::read_to_string(dir.path().join("k1.deadletter.jsonl")).unwrap();
    let rec: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(rec["offset"], 1);
    assert_eq!(rec["body"].as_str().map(str::len), Some(5000));

    // A partition the topic does not have (partitionIdHeader) is refused for good too: Java's
    // producer throws for it at once. The batch's other record is delivered.
    let mut dead = sink_from(&sink_text(
        &broker.bootstrap(),
        &format!(
            "a.sinks.k1.partitionIdHeader = p\na.sinks.k1.kafka.onUnsendable = deadletter\na.sinks.k1.kafka.deadLetterDir = {}\n",
            dir.path().display()
        ),
    ));
    dead.deliver(&[
        (
            7,
            Event::new(&b"no such partition"[..]).with_header("p", "5"),
        ),
        (8, Event::new(&b"partition 0"[..]).with_header("p", "0")),
    ])
    .unwrap();
    let text = std::fs::read_to_string(dir.path().join("k1.deadletter.jsonl")).unwrap();
    let rec: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(rec["offset"], 7, "{text}");
    let got = consume(&broker.bootstrap(), "main", 1, 1, Duration::from_secs(20));
    assert_eq!(got.len(), 1);
    assert_eq!(&got[0].body[..], b"partition 0");
}

/// The sink hands payloads to librdkafka without copying them (`sink::kafka::enqueue`), so each
/// record must keep its body alive until its delivery report. Here the events are dropped as
/// soon as `start` returns and their memory is written over while librdkafka still lingers
/// over the batch: every record must still arrive with its own body.
#[test]
fn payloads_outlive_the_events_they_came_from() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.create_topic("main", 1);
    let mut sink = sink_from(&sink_text(
        &broker.bootstrap(),
        "a.sinks.k1.kafka.producer.linger.ms = 200\n",
    ));
    // Bodies of ~100 B and ~1 KiB, each a `Bytes` that alone owns its memory, which the
    // scribbling below then reuses if nothing else holds it.
    let body = |i: u64| format!("{i:05}|").repeat(if i.is_multiple_of(2) { 17 } else { 171 });
    let events: Vec<(u64, Event)> = (0..300)
        .map(|i| (i, Event::new(body(i).into_bytes())))
        .collect();
    // `finish` only names events in error messages: give it copies that share no memory.
    let copies: Vec<(u64, Event)> = events
        .iter()
        .map(|(o, e)| (*o, Event::new(e.body.to_vec())))
        .collect();
    sink.start(&events).unwrap();
    drop(events);
    let scribble: Vec<Vec<u8>> = (0..3000)
        .map(|i| vec![b'#'; if i % 2 == 0 { 102 } else { 1026 }])
        .collect();
    sink.finish(&copies).unwrap();
    drop(scribble);

    let got = consume(&broker.bootstrap(), "main", 1, 300, Duration::from_secs(20));
    assert_eq!(got.len(), 300);
    for r in &got {
        assert_eq!(
            r.body,
            body(r.offset_header()).as_bytes(),
            "record {}",
            r.offset_header()
        );
    }
}

/// Sends `lines` numbered lines from `from`, returning those acknowledged with OK.
fn send_lines(client: &mut Client, prefix: &str, from: u32, lines: u32) -> Vec<String> {
    (from..from + lines)
        .map(|i| format!("{prefix}-{i:06}"))
        .filter(|l| client.send(l))
        .collect()
}

fn bodies(records: &[support::Record]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in records {
        *m.entry(String::from_utf8_lossy(&r.body).into_owned())
            .or_default() += 1;
    }
    m
}

/// An agent (netcat source, file channel, Kafka sink to `topic`, plus `extra` config lines)
/// started in a fresh directory, and a client for its source. Keep the directory as long as
/// the agent.
fn agent_for(broker: &Broker, topic: &str, extra: &str) -> (tempfile::TempDir, Agent, Client) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = kafka_config(dir.path(), port, &broker.bootstrap(), topic, extra);
    let agent = Agent::start(&cfg, port);
    (dir, agent, Client::new(port))
}

/// Reads `topic` until every line of `want` has arrived or `within` passed, and fails naming
/// how many lines (and a few of them) are missing, `when`. Returns the records read.
fn expect_lines(
    broker: &Broker,
    topic: &str,
    partitions: i32,
    want: &[String],
    within: Duration,
    when: &str,
) -> Vec<support::Record> {
    let got = consume_until(
        &broker.bootstrap(),
        topic,
        partitions,
        has_all(want),
        within,
    );
    let seen = bodies(&got);
    let missing: Vec<_> = want.iter().filter(|l| !seen.contains_key(*l)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} lines missing {when}, e.g. {:?}",
        missing.len(),
        want.len(),
        &missing[..missing.len().min(5)]
    );
    got
}

#[test]
fn every_acknowledged_line_arrives() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.create_topic("lines", 2);
    let (_dir, mut agent, mut client) =
        agent_for(&broker, "lines", "a.sinks.k1.flumeBatchSize = 50\n");
    let ok = send_lines(&mut client, "line", 0, 500);
    assert_eq!(ok.len(), 500);
    let got = expect_lines(
        &broker,
        "lines",
        2,
        &ok,
        Duration::from_secs(30),
        "from the topic",
    );
    // Offsets in the headers are the channel's: unique and covering 0..500.
    let offsets: BTreeSet<u64> = got.iter().map(|r| r.offset_header()).collect();
    assert_eq!(offsets, (0..500).collect());
    assert!(agent.stop(), "agent did not exit 0 on SIGTERM");
}

#[test]
fn every_compression_codec_a_flume_config_may_name_is_built_in() {
    let Some(broker) = Broker::start() else {
        return;
    };
    for codec in ["gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("codec-{codec}");
        broker.create_topic(&topic, 1);
        let extra = format!("a.sinks.k1.kafka.producer.compression.type = {codec}\n");
        let (_dir, mut agent, mut client) = agent_for(&broker, &topic, &extra);
        let ok = send_lines(&mut client, codec, 0, 50);
        assert_eq!(ok.len(), 50, "{codec}");
        expect_lines(
            &broker,
            &topic,
            1,
            &ok,
            Duration::from_secs(30),
            &format!("with compression.type = {codec}"),
        );
        assert!(agent.stop(), "{codec}: agent did not exit 0");
    }
}

#[test]
fn agent_killed_repeatedly_loses_nothing_acknowledged() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.create_topic("crash", 1);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = kafka_config(
        dir.path(),
        port,
        &broker.bootstrap(),
        "crash",
        "a.sinks.k1.flumeBatchSize = 20\na.sinks.k1.kafka.inFlightBatches = 3\n",
    );
    let cycles: u32 = std::env::var("WEIR_KAFKA_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let mut acked = Vec::new();
    let mut next = 0u32;
    for _ in 0..cycles {
        let mut agent = Agent::start(&cfg, port);
        let mut client = Client::new(port);
        let deadline = Instant::now() + Duration::from_millis(fastrand::u64(300..1500));
        while Instant::now() < deadline {
            let line = format!("crash-{next:06}");
            next += 1;
            if client.send(&line) {
                acked.push(line);
            }
        }
        agent.kill9();
    }
    // A last clean run drains what the kills left in the channel.
    let mut agent = Agent::start(&cfg, port);
    let got = expect_lines(
        &broker,
        "crash",
        1,
        &acked,
        Duration::from_secs(60),
        "after the kills",
    );
    // A duplicate is the same event sent twice: same body, same offset header.
    let mut by_offset: BTreeMap<u64, &[u8]> = BTreeMap::new();
    for r in &got {
        if let Some(prev) = by_offset.insert(r.offset_header(), &r.body) {
            assert_eq!(prev, &r.body[..], "one offset, two different events");
        }
    }
    let dups = got.len() - by_offset.len();
    eprintln!(
        "{cycles} kills, {} lines acknowledged, {} records, {dups} duplicates",
        acked.len(),
        got.len()
    );
    // At most the batches on their way at each kill (3 batches of 20, one sink).
    assert!(
        dups <= cycles as usize * 3 * 20,
        "{dups} duplicates for {cycles} kills"
    );
    assert!(agent.stop());
}

#[test]
fn frozen_broker_delays_but_loses_nothing() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.create_topic("frozen", 1);
    let (_dir, mut agent, mut client) = agent_for(&broker, "frozen", "");
    let mut ok = send_lines(&mut client, "before", 0, 100);
    broker.freeze();
    // The source keeps accepting into the channel while the broker cannot answer.
    ok.extend(send_lines(&mut client, "during", 0, 300));
    assert_eq!(
        ok.len(),
        400,
        "the source must keep accepting while the broker is frozen"
    );
    std::thread::sleep(Duration::from_secs(2));
    broker.thaw();
    ok.extend(send_lines(&mut client, "after", 0, 100));
    expect_lines(
        &broker,
        "frozen",
        1,
        &ok,
        Duration::from_secs(60),
        "after the thaw",
    );
    assert!(agent.stop());
}

#[test]
fn broker_killed_and_restarted_loses_nothing_acknowledged() {
    let Some(mut broker) = Broker::start() else {
        return;
    };
    broker.create_topic("restart", 1);
    // A short delivery timeout so the wedged idempotent producer is replaced within the test.
    let (_dir, mut agent, mut client) = agent_for(
        &broker,
        "restart",
        "a.sinks.k1.kafka.producer.message.timeout.ms = 5000\n",
    );
    let before = send_lines(&mut client, "before", 0, 200);
    // What the broker acknowledged before it dies (memory storage forgets it on restart).
    expect_lines(
        &broker,
        "restart",
        1,
        &before,
        Duration::from_secs(30),
        "before the kill",
    );

    broker.kill();
    let during = send_lines(&mut client, "during", 0, 200);
    assert_eq!(
        during.len(),
        200,
        "the source must keep accepting while the broker is down"
    );
    std::thread::sleep(Duration::from_secs(1));
    broker.restart();
    broker.create_topic("restart", 1);
    let after = send_lines(&mut client, "after", 0, 100);
    let want: Vec<String> = during.iter().chain(after.iter()).cloned().collect();
    expect_lines(
        &broker,
        "restart",
        1,
        &want,
        Duration::from_secs(90),
        "after the broker restart",
    );
    assert!(agent.stop());
}

#[test]
fn broker_away_at_start() {
    let Some(mut broker) = Broker::start() else {
        return;
    };
    broker.kill();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = kafka_config(dir.path(), port, &broker.bootstrap(), "late", "");
    let log_path = dir.path().join("agent.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut agent = Agent::start_with(&cfg, port, &[], log.into());
    let mut client = Client::new(port);
    let ok = send_lines(&mut client, "early", 0, 100);
    assert_eq!(
        ok.len(),
        100,
        "the agent must accept while the broker is away"
    );
    // librdkafka retries the connection every few hundred milliseconds and reports each
    // attempt; the agent logged ~9 lines a second of it. Each kind is now logged once a minute.
    std::thread::sleep(Duration::from_secs(8));
    let text = std::fs::read_to_string(&log_path).unwrap();
    let client_lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("librdkafka:") || l.contains("kafka client:"))
        .collect();
    assert!(
        !client_lines.is_empty() && client_lines.len() <= 6,
        "{} lines about the missing broker in 8 s:\n{}",
        client_lines.len(),
        client_lines.join("\n")
    );
    broker.restart();
    broker.create_topic("late", 1);
    expect_lines(
        &broker,
        "late",
        1,
        &ok,
        Duration::from_secs(90),
        "after the broker came up",
    );
    assert!(agent.stop());
}
