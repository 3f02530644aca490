//! The file_roll sink's serializers (`sink.serializer` TEXT, HEADER_AND_TEXT, AVRO_EVENT) in
//! the real `weir` binary: netcat → channel → file_roll, the files read back as a Flume user
//! would, the Avro ones with the Python `avro` package's reader (tests/interop/
//! read_avro_container.py), which shares no code with weir's writer.
//!
//! Events carry per-event headers (a regex_extractor interceptor turns body fields into
//! headers) and a static one, so every header of every event can be checked.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use support::{Agent, Client, free_port, python_modules, wait_until};

/// The Avro schema Flume's FlumeEventAvroEventSerializer writes.
const FLUME_SCHEMA: &str = r#"{"type":"record","name":"Event","fields":[{"name":"headers","type":{"type":"map","values":"string"}},{"name":"body","type":"bytes"}]}"#;

/// netcat on `port` (interceptors: `user` and `seq` from the body, `datacenter` = NYC) →
/// replicating to one channel per sink → the sinks `k1`, `k2`, … each a file_roll into
/// `dir/<sink>` with its `sink.` keys from `sinks`. `channel` is `memory` or `file`.
fn config(dir: &Path, port: u16, channel: &str, sinks: &[&str]) -> PathBuf {
    let names: Vec<String> = (1..=sinks.len()).map(|i| format!("k{i}")).collect();
    let channels: Vec<String> = (1..=sinks.len()).map(|i| format!("c{i}")).collect();
    let mut text = format!(
        "a.sources = r1\na.channels = {c}\na.sinks = {k}\n\
         a.sources.r1.type = netcat\na.sources.r1.bind = 127.0.0.1\na.sources.r1.port = {port}\n\
         a.sources.r1.channels = {c}\n\
         a.sources.r1.interceptors = fields dc\n\
         a.sources.r1.interceptors.fields.type = regex_extractor\n\
         a.sources.r1.interceptors.fields.regex = user=(\\\\w+) seq=(\\\\d+)\n\
         a.sources.r1.interceptors.fields.serializers = u s\n\
         a.sources.r1.interceptors.fields.serializers.u.name = user\n\
         a.sources.r1.interceptors.fields.serializers.s.name = seq\n\
         a.sources.r1.interceptors.dc.type = static\n\
         a.sources.r1.interceptors.dc.key = datacenter\n\
         a.sources.r1.interceptors.dc.value = NYC\n",
        c = channels.join(" "),
        k = names.join(" "),
    );
    for ((k, c), keys) in names.iter().zip(&channels).zip(sinks) {
        match channel {
            "memory" => text.push_str(&format!("a.channels.{c}.type = memory\n")),
            _ => text.push_str(&format!(
                "a.channels.{c}.type = file\na.channels.{c}.checkpointDir = {d}/{c}/ckpt\n\
                 a.channels.{c}.dataDirs = {d}/{c}/log\na.channels.{c}.minimumRequiredSpace = 0\n",
                d = dir.display()
            )),
        }
        text.push_str(&format!(
            "a.sinks.{k}.type = file_roll\na.sinks.{k}.channel = {c}\n\
             a.sinks.{k}.sink.directory = {d}/{k}\na.sinks.{k}.sink.rollInterval = 0\n{keys}\n",
            d = dir.display(),
            keys = keys
                .lines()
                .map(|l| format!("a.sinks.{k}.sink.{}", l.trim()))
                .collect::<Vec<_>>()
                .join("\n"),
        ));
    }
    let path = dir.join("agent.properties");
    std::fs::write(&path, text).unwrap();
    path
}

/// The body of event `seq`, and the headers the interceptors give it. The extractor's `\w` is
/// Java's, ASCII only, so `zoë` does not match it and that event gets no `user` or `seq`.
fn event(seq: usize) -> (String, BTreeMap<String, String>) {
    let user = ["alice", "bob", "zoë", "_x9"][seq % 4];
    let body = format!("user={user} seq={seq} payload {}", "p".repeat(seq % 13));
    let mut headers = BTreeMap::from([("datacenter".to_string(), "NYC".to_string())]);
    if user.is_ascii() {
        headers.insert("seq".into(), seq.to_string());
        headers.insert("user".into(), user.to_string());
    }
    (body, headers)
}

fn send(client: &mut Client, seqs: std::ops::Range<usize>) {
    for seq in seqs {
        assert!(client.send(&event(seq).0), "event {seq} not acknowledged");
    }
}

/// The bytes of every file in `dir`, in name order (the counter orders one run's files).
fn file_bytes(dir: &Path) -> Vec<Vec<u8>> {
    support::file_roll_files(dir)
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect()
}

/// One record of an Avro file, as the Python reader saw it.
#[derive(Debug, PartialEq)]
struct Record {
    headers: BTreeMap<String, String>,
    body: String,
}

/// Reads every file of `dir` (oldest first) with Python's avro reader; per file its codec and
/// records. Panics if a file is not a valid container up to its last byte, or has the wrong
/// schema.
fn read_avro(dir: &Path) -> Vec<(String, Vec<Record>)> {
    let files = support::file_roll_files(dir);
    assert!(!files.is_empty(), "no files in {}", dir.display());
    let stdout = support::run_interop_script("read_avro_container.py", &files);
    let schema: serde_json::Value = serde_json::from_str(FLUME_SCHEMA).unwrap();
    let mut result: Vec<(String, Vec<Record>)> = Vec::new();
    for line in String::from_utf8(stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(codec) = v["codec"].as_str() {
            assert_eq!(v["schema"], schema, "{}", v["file"]);
            result.push((codec.to_owned(), Vec::new()));
        } else {
            result.last_mut().unwrap().1.push(Record {
                headers: serde_json::from_value(v["headers"].clone()).unwrap(),
                body: v["body"].as_str().unwrap().to_owned(),
            });
        }
    }
    assert_eq!(result.len(), files.len());
    result
}

fn expected_records(seqs: std::ops::Range<usize>) -> Vec<Record> {
    seqs.map(|seq| {
        let (body, headers) = event(seq);
        Record { headers, body }
    })
    .collect()
}

/// HEADER_AND_TEXT writes each event as Flume does: the header map as Java prints a HashMap of
/// these keys (bucket order: datacenter, user, seq, as OpenJDK 17 prints it), a space, the body, a newline. TEXT with
/// `appendNewline = false` writes the bodies back to back.
#[test]
fn header_and_text_and_text_without_newlines() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(
        dir.path(),
        port,
        "memory",
        &[
            "serializer = HEADER_AND_TEXT",
            "serializer = org.apache.flume.serialization.BodyTextEventSerializer$Builder\n\
             serializer.appendNewline = false",
        ],
    );
    let mut agent = Agent::start(&cfg, port);
    let mut client = Client::new(port);
    send(&mut client, 0..20);

    let expected_text: String = (0..20)
        .map(|seq| {
            let (body, h) = event(seq);
            match (h.get("user"), h.get("seq")) {
                (Some(user), Some(seq)) => {
                    format!("{{datacenter=NYC, user={user}, seq={seq}}} {body}\n")
                }
                _ => format!("{{datacenter=NYC}} {body}\n"),
            }
        })
        .collect();
    let expected_bodies: String = (0..20).map(|seq| event(seq).0).collect();
    wait_until("both sinks wrote every event", || {
        file_bytes(&dir.path().join("k1")).concat().len() >= expected_text.len()
            && file_bytes(&dir.path().join("k2")).concat().len() >= expected_bodies.len()
    });
    assert!(agent.stop());
    assert_eq!(
        String::from_utf8(file_bytes(&dir.path().join("k1")).concat()).unwrap(),
        expected_text
    );
    assert_eq!(
        String::from_utf8(file_bytes(&dir.path().join("k2")).concat()).unwrap(),
        expected_bodies
    );
}

/// AVRO_EVENT files are Avro containers that Python's avro package reads, with Flume's schema,
/// every header and body, for the null codec (blocks cut at a 100-byte sync interval),
/// deflate, snappy, bzip2 and zstandard.
#[test]
fn avro_event_files_read_back_with_python_avro_for_each_codec() {
    if !python_modules(
        "avro, snappy, zstandard",
        "the Python avro package, python-snappy and zstandard",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(
        dir.path(),
        port,
        "memory",
        &[
            "serializer = avro_event\nserializer.syncIntervalBytes = 100",
            "serializer = AVRO_EVENT\nserializer.compressionCodec = deflate\nbatchSize = 7",
            "serializer = org.apache.flume.serialization.FlumeEventAvroEventSerializer$Builder\n\
             serializer.compressionCodec = snappy",
            "serializer = avro_event\nserializer.compressionCodec = bzip2",
            "serializer = avro_event\nserializer.compressionCodec = zstandard\nbatchSize = 9",
        ],
    );
    let metrics = free_port();
    let mut agent = start_with_metrics(&cfg, port, metrics);
    let mut client = Client::new(port);
    send(&mut client, 0..60);
    // A stop does not drain the channels (as in Flume): wait until every sink has committed
    // all 60 events, so the files are complete.
    wait_until("every sink committed 60 events", || {
        ["k1", "k2", "k3", "k4", "k5"]
            .iter()
            .all(|k| sink_drained(metrics, k) == 60)
    });
    assert!(agent.stop());

    for (sink, codec) in [
        ("k1", "null"),
        ("k2", "deflate"),
        ("k3", "snappy"),
        ("k4", "bzip2"),
        ("k5", "zstandard"),
    ] {
        let files = read_avro(&dir.path().join(sink));
        assert_eq!(files.len(), 1, "{sink}: one file (rollInterval = 0)");
        let (file_codec, records) = &files[0];
        assert_eq!(file_codec, codec, "{sink}");
        assert_eq!(records, &expected_records(0..60), "{sink}");
    }
}

/// Every delivery leaves the Avro file complete: after SIGKILL (no close, no shutdown) the
/// files read to their last byte and hold every event the sink took. The restarted agent writes
/// a new file with a header of its own, after the events the file channel kept.
#[test]
fn avro_files_survive_sigkill_and_a_restart_starts_a_new_file() {
    if !python_modules("avro", "the Python avro package") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(
        dir.path(),
        port,
        "file",
        &["serializer = AVRO_EVENT\nserializer.compressionCodec = deflate\nbatchSize = 5"],
    );
    let out = dir.path().join("k1");
    let metrics = free_port();
    let mut agent = start_with_metrics(&cfg, port, metrics);
    let mut client = Client::new(port);
    send(&mut client, 0..23);
    // Killed only once every take is committed, so the restart has none to deliver again.
    wait_until("the sink committed 23 events", || {
        sink_drained(metrics, "k1") == 23
    });
    agent.kill9();

    let files = read_avro(&out);
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].1, expected_records(0..23));

    let mut agent = start_with_metrics(&cfg, port, metrics);
    let mut client = Client::new(port);
    send(&mut client, 23..30);
    wait_until("the restarted sink committed 7 events", || {
        sink_drained(metrics, "k1") == 7
    });
    assert!(agent.stop());
    let files = read_avro(&out);
    assert_eq!(files.len(), 2, "the restart writes a new file");
    assert_eq!(
        files[0].1,
        expected_records(0..23),
        "the first file is left as it was"
    );
    assert_eq!(files[1].1, expected_records(23..30));
}

/// The agent of `cfg` (netcat on `port`) serving metrics on `metrics`.
fn start_with_metrics(cfg: &Path, port: u16, metrics: u16) -> Agent {
    let metrics = metrics.to_string();
    Agent::start_with(cfg, port, &["--metrics-port", &metrics], Stdio::inherit())
}

/// A sink's EventDrainSuccessCount (events whose take was committed) from the metrics on
/// `port`, or 0 if they cannot be read.
fn sink_drained(port: u16, sink: &str) -> u64 {
    support::metric(port, &format!("SINK.{sink}"), "EventDrainSuccessCount").unwrap_or(0)
}

/// A serializer weir does not have, and an Avro codec it does not write, are refused when the
/// agent starts, naming the file, the line and the key, and listing what is supported.
#[test]
fn unknown_serializers_and_codecs_are_refused_at_start() {
    let (ok, out) = support::check_config(
        "a.sources = r1\na.channels = c1\na.sinks = k1\n\
         a.sources.r1.type = seq\na.sources.r1.channels = c1\na.channels.c1.type = memory\n\
         a.sinks.k1.type = file_roll\na.sinks.k1.channel = c1\na.sinks.k1.sink.directory = /tmp/x\n\
         a.sinks.k1.sink.serializer = org.apache.flume.sink.hdfs.AvroEventSerializer$Builder\n",
        Some("a"),
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains(
            "flume.properties:10: a.sinks.k1.sink.serializer: serializer \
             'org.apache.flume.sink.hdfs.AvroEventSerializer$Builder' is not supported; \
             supported: TEXT (org.apache.flume.serialization.BodyTextEventSerializer$Builder), \
             HEADER_AND_TEXT ("
        ),
        "{out}"
    );
    let (ok, out) = support::check_config(
        "a.sources = r1\na.channels = c1\na.sinks = k1\n\
         a.sources.r1.type = seq\na.sources.r1.channels = c1\na.channels.c1.type = memory\n\
         a.sinks.k1.type = file_roll\na.sinks.k1.channel = c1\na.sinks.k1.sink.directory = /tmp/x\n\
         a.sinks.k1.sink.serializer = AVRO_EVENT\n\
         a.sinks.k1.sink.serializer.compressionCodec = xz\n",
        Some("a"),
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains(
            "flume.properties:11: a.sinks.k1.sink.serializer.compressionCodec: 'xz' is not an \
             Avro codec weir writes; supported: null, deflate, snappy, bzip2, zstandard"
        ),
        "{out}"
    );
}
