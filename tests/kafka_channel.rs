//! The Kafka channel against a real Kafka-protocol broker (tansu): the widely copied agent with
//! no sink puts every acknowledged line into the topic and never joins the consumer group;
//! Flume-event values keep their headers through the channel to a sink, once each in a clean
//! run; a SIGKILL while a sink drains loses nothing (offsets follow the sink's commits); a put
//! fails cleanly while the broker is frozen and works again after; configuration mistakes are
//! named with file, line and key.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use support::{
    Agent, Broker, Client, check_config, check_config_file, consume, consume_until, free_port,
    has_all, output_lines, start_logged, wait_until,
};

/// The consumer groups the broker knows.
fn groups(bootstrap: &str) -> Vec<String> {
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let list = client
        .fetch_group_list(None, Duration::from_secs(10))
        .expect("list consumer groups");
    list.groups().iter().map(|g| g.name().to_owned()).collect()
}

fn write(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("agent.properties");
    std::fs::write(&path, text).unwrap();
    path
}

/// Netcat on `port` into Kafka channel `c1` on `topic`, no sink; `extra` lines appended.
fn no_sink_config(dir: &Path, port: u16, bootstrap: &str, topic: &str, extra: &str) -> PathBuf {
    write(
        dir,
        &format!(
            "a.sources = r1\na.channels = c1\n\
             a.sources.r1.type = netcat\na.sources.r1.bind = 127.0.0.1\n\
             a.sources.r1.port = {port}\na.sources.r1.channels = c1\n\
             a.channels.c1.type = org.apache.flume.channel.kafka.KafkaChannel\n\
             a.channels.c1.kafka.bootstrap.servers = {bootstrap}\n\
             a.channels.c1.kafka.topic = {topic}\n\
             a.channels.c1.parseAsFlumeEvent = false\n{extra}"
        ),
    )
}

fn send_lines(client: &mut Client, prefix: &str, n: u32) -> Vec<String> {
    (0..n)
        .map(|i| format!("{prefix}-{i:05}"))
        .filter(|l| client.send(l))
        .collect()
}

fn counts<'a>(bodies: impl Iterator<Item = &'a [u8]>) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for b in bodies {
        *m.entry(String::from_utf8_lossy(b).into_owned())
            .or_default() += 1;
    }
    m
}

/// The canonical "source → Kafka channel, no sink" agent: every line acknowledged OK is in
/// the topic as its bare body, and the agent never joined the consumer group (no group exists
/// on the broker; test 3 shows the same look does see a group once a sink takes).
#[test]
fn an_agent_without_sink_writes_bare_bodies_and_joins_no_group() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.create_topic("topic_log", 2);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = no_sink_config(dir.path(), port, &broker.bootstrap(), "topic_log", "");
    let (ok, passed) = check_config_file(&cfg, None);
    assert!(ok, "{passed}");
    let mut agent = Agent::start(&cfg, port);
    let mut client = Client::new(port);
    let ok = send_lines(&mut client, "line", 300);
    assert_eq!(ok.len(), 300, "every line should be acknowledged");
    let got = consume_until(
        &broker.bootstrap(),
        "topic_log",
        2,
        has_all(&ok),
        Duration::from_secs(30),
    );
    let c = counts(got.iter().map(|r| &r.body[..]));
    for line in &ok {
        assert_eq!(
            c.get(line),
            Some(&1),
            "{line} not in the topic exactly once"
        );
    }
    assert!(got.iter().all(|r| r.headers.is_empty()));
    let g = groups(&broker.bootstrap());
    assert!(
        !g.iter().any(|g| g == "flume"),
        "the agent joined group flume without a sink: {g:?}"
    );
    assert!(agent.stop(), "agent did not exit 0 on SIGTERM");
}

/// parseAsFlumeEvent = true with a sink draining the channel: the values in the channel's
/// topic are Flume events with the interceptor's header, and the sink (a Kafka sink to another
/// topic, which sends every event header as a record header) gets each event once, headers
/// included.
#[test]
fn flume_events_keep_their_headers_through_the_channel() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.create_topic("chan", 1);
    broker.create_topic("out", 1);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let b = broker.bootstrap();
    let cfg = write(
        dir.path(),
        &format!(
            "a.sources = r1\na.channels = c1\na.sinks = k1\n\
             a.sources.r1.type = netcat\na.sources.r1.bind = 127.0.0.1\n\
             a.sources.r1.port = {port}\na.sources.r1.channels = c1\n\
             a.sources.r1.interceptors = i1\na.sources.r1.interceptors.i1.type = static\n\
             a.sources.r1.interceptors.i1.key = origin\na.sources.r1.interceptors.i1.value = edge-7\n\
             a.channels.c1.type = kafka\na.channels.c1.kafka.bootstrap.servers = {b}\n\
             a.channels.c1.kafka.topic = chan\na.channels.c1.kafka.consumer.group.id = drain\n\
             a.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink\na.sinks.k1.channel = c1\n\
             a.sinks.k1.kafka.bootstrap.servers = {b}\na.sinks.k1.kafka.topic = out\n\
             a.sinks.k1.flumeBatchSize = 20\n"
        ),
    );
    let mut agent = Agent::start(&cfg, port);
    let mut client = Client::new(port);
    let ok = send_lines(&mut client, "event", 200);
    assert_eq!(ok.len(), 200);

    let out = consume_until(&b, "out", 1, has_all(&ok), Duration::from_secs(30));
    let c = counts(out.iter().map(|r| &r.body[..]));
    for line in &ok {
        assert_eq!(c.get(line), Some(&1), "{line} not delivered exactly once");
    }
    assert!(
        out.iter().all(|r| r.header("origin") == Some("edge-7")),
        "a header was lost: {:?}",
        out.first()
    );
    // In the channel's topic the value is the Flume event, header and all.
    let stored = consume(&b, "chan", 1, 200, Duration::from_secs(30));
    assert_eq!(stored.len(), 200);
    for r in &stored {
        let (headers, body) = weir::flume_event_format::decode(&r.body).expect("a Flume event");
        assert_eq!(headers.get("origin").map(String::as_str), Some("edge-7"));
        assert!(body.starts_with(b"event-"));
    }
    assert!(agent.stop());
}

/// A Kafka channel with no source, drained by a file_roll sink, killed with SIGKILL while it
/// drains: after a restart every record still arrives (duplicates allowed), because offsets
/// are committed only after the sink's commit.
#[test]
fn a_sigkill_while_the_sink_drains_loses_nothing() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.create_topic("backlog", 2);
    let b = broker.bootstrap();
    const N: usize = 1500;
    let values: Vec<String> = (0..N).map(|i| format!("rec-{i:05}")).collect();
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &b)
        .set("acks", "all")
        // One record per batch: tansu 0.6 answers a fetch from inside a stored batch with
        // nothing (see tests/kafka_source.rs), and the restart resumes mid-stream.
        .set("batch.num.messages", "1")
        .set("linger.ms", "0")
        .create()
        .unwrap();
    for (i, v) in values.iter().enumerate() {
        let record: BaseRecord<'_, (), _> = BaseRecord::to("backlog")
            .payload(v.as_bytes())
            .partition(i as i32 % 2);
        producer.send(record).map_err(|(e, _)| e).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = write(
        d,
        &format!(
            "a.channels = c1\na.sinks = k1\n\
             a.channels.c1.type = org.apache.flume.channel.kafka.KafkaChannel\n\
             a.channels.c1.kafka.bootstrap.servers = {b}\na.channels.c1.kafka.topic = backlog\n\
             a.channels.c1.parseAsFlumeEvent = false\n\
             a.channels.c1.kafka.consumer.session.timeout.ms = 6000\n\
             a.sinks.k1.type = file_roll\na.sinks.k1.channel = c1\n\
             a.sinks.k1.sink.directory = {out}\na.sinks.k1.sink.rollInterval = 0\n\
             a.sinks.k1.sink.batchSize = 5\n",
            out = d.join("out").display()
        ),
    );
    let (mut agent, _) = start_logged(d, &cfg);
    wait_until("the sink to write its first lines", || {
        !output_lines(d).is_empty()
    });
    // The look of the first test sees the group when a sink takes.
    assert!(
        groups(&b).iter().any(|g| g == "flume"),
        "group flume not listed while a sink takes"
    );
    agent.kill9();
    let at_kill = output_lines(d).len();
    assert!(
        at_kill < N,
        "the sink drained everything before the kill ({at_kill} lines): make the backlog longer"
    );

    let (mut agent, _) = start_logged(d, &cfg);
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let lines = output_lines(d);
        let seen = counts(lines.iter().map(|l| l.as_bytes()));
        let missing: Vec<&String> = values.iter().filter(|v| !seen.contains_key(*v)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < end,
            "{} of {N} records never arrived after the restart (killed at {at_kill} lines), \
             e.g. {:?}\n{}",
            missing.len(),
            &missing[..missing.len().min(5)],
            support::agent_logs(d)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(agent.stop());
}

/// While the broker is frozen a put fails within the delivery timeout (the client hears
/// FAILED, not OK); once the broker is back puts work again and reach the topic.
#[test]
fn a_put_fails_while_the_broker_is_frozen_and_works_after() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.create_topic("frozen", 1);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = no_sink_config(
        dir.path(),
        port,
        &broker.bootstrap(),
        "frozen",
        "a.channels.c1.kafka.producer.message.timeout.ms = 2000\n",
    );
    let mut agent = Agent::start(&cfg, port);
    let mut client = Client::new(port);
    let mut ok = send_lines(&mut client, "before", 20);
    assert_eq!(ok.len(), 20);

    broker.freeze();
    // The client's read timeout (10 s) bounds the wait: a put hanging on the frozen broker
    // fails the test with no reply.
    let reply = client.send_bytes(b"during-00000");
    broker.thaw();
    let reply = reply.expect("no reply while the broker was frozen");
    assert!(
        reply.starts_with("FAILED"),
        "a put to a frozen broker was answered {reply:?}"
    );

    let mut after = 0u32;
    wait_until("a put to succeed after the thaw", || {
        after += 1;
        client.send(&format!("retry-{after:05}"))
    });
    ok.push(format!("retry-{after:05}"));
    ok.extend(send_lines(&mut client, "after", 20));
    assert_eq!(ok.len(), 41);
    let got = consume_until(
        &broker.bootstrap(),
        "frozen",
        1,
        has_all(&ok),
        Duration::from_secs(30),
    );
    let c = counts(got.iter().map(|r| &r.body[..]));
    let missing: Vec<&String> = ok.iter().filter(|l| !c.contains_key(*l)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not in the topic: {missing:?}"
    );
    assert!(agent.stop());
}

/// Configuration mistakes name file, line and key; `--check` passes on the canonical no-sink
/// configuration (also checked in the first test against a live broker).
#[test]
fn configuration_errors_name_file_line_and_key() {
    let canonical = "a1.sources = r1\na1.channels = c1\n\
         a1.sources.r1.type = TAILDIR\na1.sources.r1.positionFile = /tmp/weir-kc-pos.json\n\
         a1.sources.r1.filegroups = f1\na1.sources.r1.filegroups.f1 = /var/log/app/.*log\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = org.apache.flume.channel.kafka.KafkaChannel\n\
         a1.channels.c1.kafka.bootstrap.servers = 127.0.0.1:1\n\
         a1.channels.c1.kafka.topic = topic_log\na1.channels.c1.parseAsFlumeEvent = false\n";
    let (ok, out) = check_config(canonical, None);
    assert!(ok, "{out}");
    assert!(out.contains("channel c1 [kafka]"), "{out}");

    let missing = canonical.replace("a1.channels.c1.kafka.bootstrap.servers = 127.0.0.1:1\n", "");
    let (ok, out) = check_config(&missing, None);
    assert!(!ok);
    assert!(
        out.contains("flume.properties")
            && out.contains("a1.channels.c1.kafka.bootstrap.servers")
            && out.contains("missing"),
        "{out}"
    );

    // librdkafka refuses the value: line 12 of the file, with the key as written.
    let (ok, out) = check_config(
        &format!("{canonical}a1.channels.c1.kafka.producer.linger.ms = soon\n"),
        None,
    );
    assert!(!ok);
    assert!(
        out.contains("flume.properties:12: a1.channels.c1.kafka.producer.linger.ms"),
        "{out}"
    );
    let (ok, out) = check_config(
        &format!("{canonical}a1.channels.c1.kafka.consumer.fetch.min.bytes = lots\n"),
        None,
    );
    assert!(!ok);
    assert!(
        out.contains("flume.properties:12: a1.channels.c1.kafka.consumer.fetch.min.bytes"),
        "{out}"
    );
}
