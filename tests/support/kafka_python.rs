//! Reads a topic back with kafka-python (`tests/interop/kafka_read.py`), a Kafka client that
//! shares no code with librdkafka: what it reads checks the records weir's sink produced against
//! a second implementation of the protocol, not against the library that wrote them.
//!
//! Without the Python modules a test is skipped, except under `CI=true` (see `python`).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::Record;

/// A record as kafka-python read it, with the value decoded as Flume's Avro event when asked.
#[derive(Debug)]
pub struct PythonRecord {
    pub record: Record,
    pub offset: u64,
    /// Milliseconds since the epoch, and whether the producer set it (`CreateTime`) rather
    /// than the broker (`LogAppendTime`).
    pub timestamp: i64,
    pub create_time: bool,
    /// The record's value is null (not merely empty).
    pub value_is_null: bool,
    /// For a keyed record: the partition the Java producer's default partitioner (Flume's)
    /// picks for its key, by kafka-python's port of it.
    pub java_partition: Option<i32>,
    pub flume_event: Option<weir::event::Event>,
}

pub struct KafkaPython {
    script: PathBuf,
}

impl KafkaPython {
    /// The reader, or `None` (test skipped) when Python or its modules are missing outside CI.
    pub fn find() -> Option<KafkaPython> {
        if !super::python_modules(
            "kafka, fastavro, zstandard, lz4, snappy",
            "kafka-python and its codecs are",
        ) {
            return None;
        }
        Some(KafkaPython {
            script: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/kafka_read.py"),
        })
    }

    /// Reads every partition of `topic` from the beginning until `count` records arrived;
    /// panics with the reader's own words if they do not within `within`.
    pub fn read(
        &self,
        bootstrap: &str,
        topic: &str,
        count: usize,
        flume_event_format: bool,
        within: Duration,
    ) -> Vec<PythonRecord> {
        let mut cmd = Command::new("python3");
        cmd.arg(&self.script)
            .args(["--bootstrap", bootstrap, "--topic", topic])
            .args(["--count", &count.to_string()])
            .args(["--timeout", &within.as_secs_f64().to_string()]);
        if flume_event_format {
            cmd.arg("--flume-event-format");
        }
        let out = cmd.output().expect("run python3");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "kafka-python reading {topic}: {}\n{}\nread so far:\n{stdout}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout.lines().map(parse_line).collect()
    }
}

fn parse_line(line: &str) -> PythonRecord {
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    let hex_field = |v: &serde_json::Value| v.as_str().map(unhex);
    let pairs = |v: &serde_json::Value, hex_values: bool| -> Vec<(String, String)> {
        let to_string = |s: &serde_json::Value| {
            let s = s.as_str().unwrap_or_else(|| panic!("not a string: {s}"));
            if hex_values {
                String::from_utf8_lossy(&unhex(s)).into_owned()
            } else {
                s.to_owned()
            }
        };
        match v {
            serde_json::Value::Array(items) => items
                .iter()
                .map(|kv| {
                    let key = kv[0].as_str().unwrap_or_else(|| panic!("header key: {kv}"));
                    (key.to_owned(), to_string(&kv[1]))
                })
                .collect(),
            serde_json::Value::Object(map) => {
                map.iter().map(|(k, v)| (k.clone(), to_string(v))).collect()
            }
            other => panic!("not headers: {other}"),
        }
    };
    PythonRecord {
        record: Record {
            partition: v["partition"].as_i64().expect("partition") as i32,
            key: hex_field(&v["key"]),
            body: hex_field(&v["value"]).unwrap_or_default(),
            headers: pairs(&v["headers"], true),
        },
        offset: v["offset"].as_u64().expect("offset"),
        timestamp: v["timestamp"].as_i64().expect("timestamp"),
        create_time: v["timestamp_type"].as_i64() == Some(0),
        value_is_null: v["value"].is_null(),
        java_partition: v["java_partition"].as_i64().map(|p| p as i32),
        flume_event: v.get("flume_event").map(|e| {
            let mut event = weir::event::Event::new(unhex(e["body"].as_str().expect("flume body")));
            event.headers = pairs(&e["headers"], false).into_iter().collect();
            event
        }),
    }
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|e| panic!("{e}: {s}")))
        .collect()
}
