//! The Kafka source against a real Kafka-protocol broker (tansu): every record reaches the
//! file channel with Flume's headers, exactly once in a clean run and at least once across a
//! SIGKILL (offsets are committed only after the channel commit), also when two agents share a
//! consumer group and partitions move between them; Flume-event values are decoded;
//! configuration mistakes are named with their key and line.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use std::sync::Arc;
use support::{Broker, check_config, logged_events, source_accepted, start_logged, wait_until};

use weir::config::{AgentConfig, Properties};
use weir::event::Event;
use weir::sink::SinkCounters;
use weir::wal::inspect::DumpedEvent;

const TOPIC: &str = "in";

fn config(dir: &Path, bootstrap: &str, extra: &str) -> PathBuf {
    let text = format!(
        "a.sources = r1\na.channels = c1\n\
         a.sources.r1.type = org.apache.flume.source.kafka.KafkaSource\na.sources.r1.channels = c1\n\
         a.sources.r1.kafka.bootstrap.servers = {bootstrap}\na.sources.r1.kafka.topics = {TOPIC}\n\
         a.sources.r1.kafka.consumer.group.id = weir-test\n\
         a.sources.r1.batchSize = 50\na.sources.r1.batchDurationMillis = 200\n\
         a.sources.r1.backoffSleepIncrement = 100\na.sources.r1.maxBackoffSleep = 300\n\
         a.channels.c1.type = file\na.channels.c1.checkpointDir = {d}/ckpt\na.channels.c1.dataDirs = {d}/log\n\
         a.channels.c1.minimumRequiredSpace = 0\na.channels.c1.maxFileSize = 4194304\n{extra}\n",
        d = dir.display()
    );
    let path = dir.join("agent.properties");
    std::fs::write(&path, text).unwrap();
    path
}

/// Produces `values[i]` with key `k{i}` (none when `i % 10 == 9`) and record headers `h = v{i}` (after an earlier `h`),
/// `weir.offset = 1000 + i` and a `partition`, `offset`, `timestamp` and `topic` of another
/// record, round-robin over
/// `partitions`, and waits until the broker has them all.
fn produce(bootstrap: &str, partitions: i32, values: &[Vec<u8>]) {
    produce_from(bootstrap, partitions, 0, values)
}

/// [`produce`] of `values` numbered from `first`.
fn produce_from(bootstrap: &str, partitions: i32, first: usize, values: &[Vec<u8>]) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        // One record per record batch. tansu 0.6 answers a fetch from an offset inside a
        // stored batch with nothing (a fetch from the batch's first offset works), so a
        // consumer group resuming from a committed offset mid-batch would stall there: seen
        // in the SIGKILL test, where the committed offset was right and the records were
        // still on the broker, readable from offset 0 but not from the committed one.
        .set("batch.num.messages", "1")
        .set("linger.ms", "0")
        .create()
        .unwrap();
    for (i, v) in (first..).zip(values) {
        let key = format!("k{i}");
        let hv = format!("v{i}");
        // `weir.offset` as an upstream weir Kafka sink sends it.
        let upstream = format!("{}", 1000 + i);
        // Headers an upstream weir sink forwards from an event read by another Kafka source:
        // they describe another record. And `h` twice: the last value counts.
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "h",
                value: Some(b"overridden".as_slice()),
            })
            .insert(Header {
                key: "partition",
                value: Some(b"99".as_slice()),
            })
            .insert(Header {
                key: "offset",
                value: Some(b"77".as_slice()),
            })
            .insert(Header {
                key: "timestamp",
                value: Some(b"1".as_slice()),
            })
            .insert(Header {
                key: "topic",
                value: Some(b"elsewhere".as_slice()),
            })
            .insert(Header {
                key: "h",
                value: Some(hv.as_bytes()),
            })
            .insert(Header {
                key: "weir.offset",
                value: Some(upstream.as_bytes()),
            })
            .insert(Header {
                key: "key",
                value: Some(b"not-the-key".as_slice()),
            });
        let record = BaseRecord::to(TOPIC)
            .payload(v)
            .partition(i as i32 % partitions)
            .headers(headers);
        // Every tenth record has no key: its `key` record header is no key either.
        let record = if i % 10 == 9 {
            record
        } else {
            record.key(&key)
        };
        producer.send(record).map_err(|(e, _)| e).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    assert_eq!(producer.in_flight_count(), 0, "records not acknowledged");
}

/// The key [`produce`] gives record `i`.
fn record_key(i: usize) -> Option<String> {
    (i % 10 != 9).then(|| format!("k{i}"))
}

fn numbered(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("record-{i:05}").into_bytes())
        .collect()
}

/// The channel's events by body: how often each arrived.
fn counts(events: &[DumpedEvent]) -> BTreeMap<Vec<u8>, usize> {
    let mut out = BTreeMap::new();
    for e in events {
        *out.entry(e.body.clone()).or_insert(0) += 1;
    }
    out
}

/// Runs the agent until `want` more events were accepted, then stops it gracefully.
fn run_until_accepted(dir: &Path, cfg: &Path, want: u64) {
    let (mut agent, port) = start_logged(dir, cfg);
    wait_until(&format!("{want} events accepted"), || {
        source_accepted(port) >= want
    });
    assert!(agent.stop(), "agent did not stop cleanly");
}

#[test]
fn every_record_arrives_once_with_flumes_headers_and_offsets_are_committed() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.create_topic(TOPIC, 3);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = config(d, &broker.bootstrap(), "");
    let values = numbered(300);
    produce(&broker.bootstrap(), 3, &values);
    run_until_accepted(d, &cfg, 300);

    let events = logged_events(&d.join("log"));
    assert_eq!(events.len(), 300, "{}", support::agent_logs(d));
    let mut positions = BTreeSet::new();
    for e in &events {
        let body = String::from_utf8_lossy(&e.body).into_owned();
        let i: usize = body["record-".len()..].parse().unwrap();
        assert_eq!(e.header("topic"), Some(TOPIC));
        assert_eq!(e.header("key"), record_key(i).as_deref());
        assert_eq!(e.header("h"), Some(format!("v{i}").as_str()));
        // An upstream hop's offset is not made an event header.
        assert_eq!(e.header("weir.offset"), None);
        let partition = e.header("partition").unwrap();
        assert_eq!(partition, (i % 3).to_string());
        let offset: i64 = e.header("offset").unwrap().parse().unwrap();
        assert_eq!(offset, (i / 3) as i64, "record {i}");
        let ts: i64 = e.header("timestamp").unwrap().parse().unwrap();
        assert!(ts > 1_600_000_000_000, "timestamp {ts}");
        assert!(positions.insert((partition.to_owned(), offset)));
    }
    assert!(counts(&events).values().all(|n| *n == 1));

    // The offsets were committed: a restarted agent reads only what is new.
    let more: Vec<Vec<u8>> = (0..30)
        .map(|i| format!("more-{i:05}").into_bytes())
        .collect();
    produce(&broker.bootstrap(), 3, &more);
    run_until_accepted(d, &cfg, 30);
    let events = logged_events(&d.join("log"));
    let c = counts(&events);
    assert_eq!(events.len(), 330, "{}", support::agent_logs(d));
    assert!(values.iter().chain(&more).all(|v| c.get(v) == Some(&1)));
}

/// Flume 1.11's `header.<event header> = <record header>`: only the named record headers
/// become event headers, under the event's name (`weir.offset` too, when named).
#[test]
fn header_keys_choose_and_rename_the_record_headers_kept() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.create_topic(TOPIC, 1);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = config(
        d,
        &broker.bootstrap(),
        "a.sources.r1.header.origin = h\na.sources.r1.header.hop = weir.offset\n\
         a.sources.r1.header.absent = nowhere\n",
    );
    produce(&broker.bootstrap(), 1, &numbered(20));
    run_until_accepted(d, &cfg, 20);
    let events = logged_events(&d.join("log"));
    assert_eq!(events.len(), 20, "{}", support::agent_logs(d));
    for e in &events {
        let body = String::from_utf8_lossy(&e.body).into_owned();
        let i: usize = body["record-".len()..].parse().unwrap();
        assert_eq!(e.header("origin"), Some(format!("v{i}").as_str()));
        assert_eq!(e.header("hop"), Some(format!("{}", 1000 + i).as_str()));
        for absent in ["h", "weir.offset", "absent", "nowhere"] {
            assert_eq!(e.header(absent), None, "{absent} in record {i}");
        }
        assert_eq!(e.header("key"), record_key(i).as_deref());
    }
}

#[test]
fn a_sigkill_mid_stream_loses_no_record() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.create_topic(TOPIC, 3);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The killed agent's consumer stays in the group until its session times out; the
    // restarted one gets the partitions only then (librdkafka's default: 45 s).
    let cfg = config(
        d,
        &broker.bootstrap(),
        "a.sources.r1.kafka.consumer.session.timeout.ms = 6000
",
    );
    let values = numbered(3000);
    produce(&broker.bootstrap(), 3, &values);

    let (mut agent, port) = start_logged(d, &cfg);
    wait_until("some events accepted", || source_accepted(port) >= 200);
    agent.kill9();
    let before = counts(&logged_events(&d.join("log")));
    assert!(
        before.len() < values.len(),
        "all arrived before the kill; the test proves nothing"
    );

    assert_none_lost(d, &cfg, &values, before);
}

/// Runs the agent until every one of `values` is in the channel (`got` so far), then fails
/// naming those that never came. Each run accepts at least what is missing (duplicates of a
/// batch in flight at a kill count too, so a run may end short; the next one, after a graceful
/// stop, has none).
fn assert_none_lost(d: &Path, cfg: &Path, values: &[Vec<u8>], mut got: BTreeMap<Vec<u8>, usize>) {
    for _ in 0..5 {
        let missing = values.iter().filter(|v| !got.contains_key(*v)).count() as u64;
        if missing == 0 {
            break;
        }
        run_until_accepted(d, cfg, missing);
        got = counts(&logged_events(&d.join("log")));
    }
    let lost: Vec<String> = values
        .iter()
        .filter(|v| !got.contains_key(*v))
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    assert!(
        lost.is_empty(),
        "lost {} records: {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
}

/// A stop while the broker is frozen ends within the stop's wait (15 s), though the source is
/// putting records its consumer fetched before the freeze and commits, after each batch,
/// offsets the broker cannot answer (audit 36 F1: the commit waited for the broker, minutes);
/// once the broker is back, a restart brings in every record (duplicates allowed).
#[test]
fn a_stop_while_the_broker_is_frozen_ends_and_loses_nothing() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.create_topic(TOPIC, 3);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = config(
        d,
        &broker.bootstrap(),
        "a.sources.r1.kafka.consumer.session.timeout.ms = 6000\na.sources.r1.batchSize = 10\n",
    );
    let values = numbered(3000);
    produce(&broker.bootstrap(), 3, &values);

    let (agent, port) = start_logged(d, &cfg);
    wait_until("some events accepted", || source_accepted(port) >= 100);
    support::stop_with_the_broker_frozen(agent, &broker, d);
    assert_none_lost(d, &cfg, &values, counts(&logged_events(&d.join("log"))));
}

/// A channel that refuses a batch: the source retries that same batch and commits nothing past
/// it, so once there is room (here: a restart with a larger channel) every record arrives.
#[test]
fn a_full_channel_holds_the_batch_back_uncommitted() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.create_topic(TOPIC, 3);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let small = "a.channels.c1.capacity = 100\na.channels.c1.transactionCapacity = 50\n\
                 a.channels.c1.keep-alive = 0\n";
    let cfg = config(d, &broker.bootstrap(), small);
    let values = numbered(300);
    produce(&broker.bootstrap(), 3, &values);

    let (mut agent, port) = start_logged(d, &cfg);
    wait_until("the channel to fill and refuse a batch", || {
        source_accepted(port) >= 100 && support::agent_logs(d).contains("refused the batch")
    });
    assert_eq!(source_accepted(port), 100);
    assert!(agent.stop(), "agent did not stop cleanly");
    assert_eq!(logged_events(&d.join("log")).len(), 100);

    let cfg = config(
        d,
        &broker.bootstrap(),
        "a.channels.c1.capacity = 1000\na.channels.c1.transactionCapacity = 50\n",
    );
    run_until_accepted(d, &cfg, 200);
    let events = logged_events(&d.join("log"));
    let c = counts(&events);
    assert_eq!(events.len(), 300, "{}", support::agent_logs(d));
    assert!(values.iter().all(|v| c.get(v) == Some(&1)));
}

#[test]
fn flume_event_format_values_are_decoded() {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.create_topic(TOPIC, 1);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = config(
        d,
        &broker.bootstrap(),
        "a.sources.r1.useFlumeEventFormat = true\n",
    );
    // The weir Kafka sink writes the records, with useFlumeEventFormat = true.
    let sink_config = format!(
        "a.sources = r0\na.channels = c0\na.sinks = k1\na.sources.r0.type = seq\n\
         a.sources.r0.channels = c0\na.channels.c0.type = memory\n\
         a.sinks.k1.type = kafka\na.sinks.k1.channel = c0\n\
         a.sinks.k1.kafka.bootstrap.servers = {}\na.sinks.k1.kafka.topic = {TOPIC}\n\
         a.sinks.k1.useFlumeEventFormat = true\n",
        broker.bootstrap()
    );
    let props = Properties::parse(Path::new("sink.properties"), sink_config.as_bytes()).unwrap();
    let agent_config = AgentConfig::from_properties(&props, "a").unwrap();
    let mut sink = weir::sink::build(
        &agent_config.sinks[0],
        weir::stop::Stop::new(),
        Arc::new(SinkCounters::default()),
    )
    .unwrap();
    let events: Vec<(u64, Event)> = (0..20)
        .map(|i| {
            let event = Event::new(format!("body-{i}").into_bytes())
                .with_header("key", format!("k{i}"))
                .with_header("origin", format!("o{i}"));
            (i, event)
        })
        .collect();
    sink.deliver(&events).unwrap();
    run_until_accepted(d, &cfg, 20);
    let events = logged_events(&d.join("log"));
    assert_eq!(events.len(), 20);
    for e in &events {
        let body = String::from_utf8_lossy(&e.body).into_owned();
        let i: usize = body
            .strip_prefix("body-")
            .unwrap_or_else(|| panic!("not decoded: {body:?}"))
            .parse()
            .unwrap();
        assert_eq!(e.header("origin"), Some(format!("o{i}").as_str()));
        assert_eq!(e.header("key"), Some(format!("k{i}").as_str()));
        assert_eq!(e.header("topic"), Some(TOPIC));
    }
}

#[test]
fn configuration_errors_name_key_and_line() {
    let base = "a.sources = r1\na.channels = c1\n\
        a.channels.c1.type = memory\n\
        a.sources.r1.type = kafka\na.sources.r1.channels = c1\n";
    for (extra, key, line) in [
        (
            "a.sources.r1.kafka.topics = t\n",
            "a.sources.r1.kafka.bootstrap.servers",
            4,
        ),
        (
            "a.sources.r1.kafka.bootstrap.servers = b:9092\n",
            "a.sources.r1.kafka.topics",
            4,
        ),
        (
            "a.sources.r1.kafka.topics = t\na.sources.r1.zookeeperConnect = zk:2181\n",
            "a.sources.r1.zookeeperConnect",
            7,
        ),
        (
            "a.sources.r1.kafka.bootstrap.servers = b:9092\na.sources.r1.kafka.topics = t\n\
             a.sources.r1.batchSize = 500\na.channels.c1.transactionCapacity = 100\n",
            "a.sources.r1.batchSize",
            8,
        ),
        // librdkafka refuses the value: `--check` builds the consumer to find out.
        (
            "a.sources.r1.kafka.bootstrap.servers = b:9092\na.sources.r1.kafka.topics = t\n\
             a.sources.r1.batchSize = 100\na.sources.r1.kafka.consumer.fetch.min.bytes = lots\n",
            "a.sources.r1.kafka.consumer.fetch.min.bytes",
            9,
        ),
    ] {
        let (ok, out) = check_config(&format!("{base}{extra}"), Some("a"));
        assert!(!ok, "accepted: {extra:?}");
        assert!(out.contains(key), "{extra:?}: {out}");
        assert!(
            out.contains(&format!(":{line}")),
            "{extra:?}: line {line}: {out}"
        );
    }
    let (ok, out) = check_config(
        &format!(
            "{base}a.sources.r1.kafka.bootstrap.servers = b:9092\na.sources.r1.kafka.topics = t\n\
             a.sources.r1.batchSize = 100\na.sources.r1.kafka.consumer.no.such.java.key = 1\n"
        ),
        Some("a"),
    );
    assert!(ok, "{out}");
    assert!(out.contains("source  r1 [kafka] -> c1"), "{out}");
    assert!(
        out.contains("note: ") && out.contains("no.such.java.key"),
        "an unknown consumer key is noted: {out}"
    );
}

/// Two agents in one consumer group: the second joins while records are still being produced
/// (the first gives up partitions), then the first stops (the second takes them all). Every
/// record ends up in one of the two channels.
#[test]
fn two_agents_share_a_group_across_rebalances_and_lose_nothing() {
    two_agents_in_a_group(false);
}

/// As above, but the first agent is killed (SIGKILL): the second gets its partitions once the
/// session times out, from the last offsets committed, so a batch the first had put but not
/// yet committed to Kafka may arrive twice; nothing is lost.
#[test]
fn two_agents_in_a_group_lose_nothing_when_one_is_killed() {
    two_agents_in_a_group(true);
}

fn two_agents_in_a_group(kill_first: bool) {
    let Some(broker) = Broker::start() else {
        return;
    };
    broker.create_topic(TOPIC, 4);
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (dir_a.path(), dir_b.path());
    // A leaving member is seen at once (LeaveGroup); the timeout only bounds a stuck one.
    let group = "a.sources.r1.kafka.consumer.session.timeout.ms = 6000\n\
                 a.sources.r1.batchSize = 20\na.sources.r1.batchDurationMillis = 100\n";
    let (cfg_a, cfg_b) = (
        config(a, &broker.bootstrap(), group),
        config(b, &broker.bootstrap(), group),
    );
    let values = numbered(4000);
    let bootstrap = broker.bootstrap();
    let produced = values.clone();
    // In 20 rounds over ~4 s, so that both rebalances happen while records keep coming.
    let producer = std::thread::spawn(move || {
        for (round, chunk) in produced.chunks(200).enumerate() {
            produce_from(&bootstrap, 4, round * 200, chunk);
            std::thread::sleep(Duration::from_millis(200));
        }
    });

    // Rebalances are logged at info.
    let log_level = ["--log-level", "warn,weir::source::kafka=info"];
    let (mut agent_a, port_a) = support::start_logged_with(a, &cfg_a, &log_level);
    wait_until("the first agent to accept records", || {
        source_accepted(port_a) >= 300
    });
    let (mut agent_b, port_b) = support::start_logged_with(b, &cfg_b, &log_level);
    wait_until(
        "the second agent to get partitions and accept records",
        || source_accepted(port_b) >= 100,
    );
    let a_before_stop = source_accepted(port_a);
    if kill_first {
        agent_a.kill9();
    } else {
        assert!(agent_a.stop(), "first agent did not stop cleanly");
    }
    producer.join().unwrap();
    let from_a = counts(&logged_events(&a.join("log")));
    wait_until("the second agent to have the rest", || {
        let got = source_accepted(port_b);
        got as usize + from_a.len() >= values.len()
            && counts(&logged_events(&b.join("log")))
                .keys()
                .chain(from_a.keys())
                .collect::<BTreeSet<_>>()
                .len()
                >= values.len()
    });
    assert!(agent_b.stop(), "second agent did not stop cleanly");

    let from_b = counts(&logged_events(&b.join("log")));
    let logs = format!("{}\n{}", support::agent_logs(a), support::agent_logs(b));
    assert!(
        logs.contains("partitions revoked"),
        "the first agent gave up partitions: {logs}"
    );
    assert!(
        (a_before_stop as usize) < values.len() && !from_b.is_empty(),
        "both agents must have consumed: {a_before_stop} and {}",
        from_b.len()
    );
    let lost: Vec<_> = values
        .iter()
        .filter(|v| !from_a.contains_key(*v) && !from_b.contains_key(*v))
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    assert!(
        lost.is_empty(),
        "lost {}: {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    let twice = values
        .iter()
        .filter(|v| from_a.get(*v).unwrap_or(&0) + from_b.get(*v).unwrap_or(&0) > 1)
        .count();
    eprintln!(
        "first agent: {} records, second: {}, in both: {twice}",
        from_a.len(),
        from_b.len()
    );
    // Only batches put into a channel whose offsets were not committed before their partition
    // moved (a kill, or a commit refused mid-rebalance) come twice: a few batches of 20, not
    // whole partitions. (Runs here: 0 both ways.)
    assert!(twice <= 200, "{twice} records delivered more than once");
}
