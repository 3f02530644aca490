//! The spooldir source's BLOB and AVRO deserializers as a user runs them: the real `weir` binary
//! reading files dropped into a directory into a file channel, whose log is read back (no sink
//! drains it), so what the channel committed is exactly what is checked. The Avro files are
//! written by the Python `avro` package (tests/interop/write_avro_container.py), and each event
//! body is compared with that package's binary encoding of the record.

mod support;

use std::path::{Path, PathBuf};

use support::{agent_logs, logged_events, python_modules, start_logged, wait_until};
use weir::wal::inspect::DumpedEvent;

/// spooldir sources on `{dir}/<spool>` (one per entry: its name and extra keys) → file channel
/// in `{dir}/log` holding `capacity` events.
fn config(dir: &Path, sources: &[(&str, &str)], capacity: u64) -> PathBuf {
    let names: Vec<String> = (1..=sources.len()).map(|i| format!("r{i}")).collect();
    let mut text = format!(
        "a.sources = {}\na.channels = c1\n\
         a.channels.c1.type = file\na.channels.c1.checkpointDir = {d}/ckpt\na.channels.c1.dataDirs = {d}/log\n\
         a.channels.c1.minimumRequiredSpace = 0\na.channels.c1.capacity = {capacity}\n\
         a.channels.c1.keep-alive = 0\n",
        names.join(" "),
        d = dir.display()
    );
    for (name, (spool, extra)) in names.iter().zip(sources) {
        std::fs::create_dir_all(dir.join(spool)).unwrap();
        text.push_str(&format!(
            "a.sources.{name}.type = spooldir\na.sources.{name}.channels = c1\n\
             a.sources.{name}.spoolDir = {d}/{spool}\na.sources.{name}.pollDelay = 50\n\
             a.sources.{name}.basenameHeader = true\n{extra}\n",
            d = dir.display()
        ));
    }
    let path = dir.join("agent.properties");
    std::fs::write(&path, text).unwrap();
    path
}

/// Drops a file into `dir/spool` (see [`support::drop_spool_file`]).
fn drop_file(dir: &Path, spool: &str, name: &str, bytes: &[u8], age: u64) -> PathBuf {
    support::drop_spool_file(&dir.join(spool), name, bytes, age)
}

fn completed(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".COMPLETED");
    PathBuf::from(s)
}

fn exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

/// What write_avro_container.py reports about the file it wrote.
struct Written {
    schema: String,
    fingerprint: String,
    datums: Vec<Vec<u8>>,
}

/// An Avro container of `records` records written by Python's `avro` into `spool/name`, with
/// its modification time `age` seconds ago.
fn python_avro(
    dir: &Path,
    spool: &str,
    name: &str,
    codec: &str,
    records: u32,
    sync_interval: u32,
    age: u64,
) -> (PathBuf, Written) {
    let tmp = dir.join(format!("{name}.tmp"));
    let stdout = support::run_interop_script(
        "write_avro_container.py",
        &[
            tmp.as_os_str(),
            codec.as_ref(),
            records.to_string().as_ref(),
            sync_interval.to_string().as_ref(),
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
    let written = Written {
        schema: v["schema"].as_str().unwrap().to_owned(),
        fingerprint: v["fingerprint"].as_str().unwrap().to_owned(),
        datums: v["datums"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| hex(d.as_str().unwrap()))
            .collect(),
    };
    let path = drop_file(dir, spool, name, &std::fs::read(&tmp).unwrap(), age);
    (path, written)
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn from(events: &[DumpedEvent], basename: &str) -> Vec<DumpedEvent> {
    events
        .iter()
        .filter(|e| e.header("basename") == Some(basename))
        .cloned()
        .collect()
}

fn bodies(events: &[DumpedEvent]) -> Vec<Vec<u8>> {
    events.iter().map(|e| e.body.to_vec()).collect()
}

#[test]
fn blob_cuts_binary_files_into_max_blob_length_events() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = config(
        d,
        &[(
            "spool",
            "a.sources.r1.deserializer = BLOB\na.sources.r1.deserializer.maxBlobLength = 3000\n",
        )],
        100_000,
    );
    // Every byte value, newlines and invalid UTF-8 included.
    let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + i / 256) as u8).collect();
    let exact: Vec<u8> = (0..6000u32).map(|i| (i % 251) as u8).collect();
    let big = drop_file(d, "spool", "big.bin", &data, 30);
    let even = drop_file(d, "spool", "even.bin", &exact, 20);
    let empty = drop_file(d, "spool", "empty.bin", b"", 10);
    let (mut agent, _) = start_logged(d, &cfg);
    wait_until("every file renamed", || {
        [&big, &even, &empty].iter().all(|p| exists(&completed(p)))
    });
    assert!(agent.stop(), "SIGTERM must exit 0");
    let events = logged_events(&d.join("log"));
    let big_events = from(&events, "big.bin");
    let sizes: Vec<usize> = big_events.iter().map(|e| e.body.len()).collect();
    assert_eq!(sizes, [3000, 3000, 3000, 1000]);
    assert_eq!(
        bodies(&big_events).concat(),
        data,
        "the file's bytes, in order"
    );
    let even_events = from(&events, "even.bin");
    assert_eq!(
        even_events.iter().map(|e| e.body.len()).collect::<Vec<_>>(),
        [3000, 3000],
        "an exact multiple: no empty event after it"
    );
    assert_eq!(bodies(&even_events).concat(), exact);
    assert_eq!(events.len(), 6, "the empty file makes no event");
}

#[test]
fn avro_files_from_python_become_their_records_datums_with_the_schema_header() {
    if !python_modules("avro", "the Python avro package") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = config(
        d,
        &[
            ("hash", "a.sources.r1.deserializer = AVRO\n"),
            (
                "literal",
                "a.sources.r2.deserializer = org.apache.flume.serialization.AvroEventDeserializer$Builder\n\
                 a.sources.r2.deserializer.schemaType = LITERAL\n",
            ),
        ],
        100_000,
    );
    let broken = drop_file(
        d,
        "hash",
        "broken.avro",
        b"Obj\x01 this is no Avro header",
        40,
    );
    let (null_path, null) = python_avro(d, "hash", "null.avro", "null", 300, 1000, 30);
    let (deflate_path, deflate) = python_avro(d, "hash", "deflate.avro", "deflate", 300, 1000, 20);
    let (literal_path, literal) = python_avro(d, "literal", "literal.avro", "deflate", 50, 500, 10);
    let (mut agent, _) = start_logged(d, &cfg);
    wait_until("the valid files renamed", || {
        [&null_path, &deflate_path, &literal_path]
            .iter()
            .all(|p| exists(&completed(p)))
    });
    assert!(agent.stop(), "SIGTERM must exit 0");
    let events = logged_events(&d.join("log"));
    for (name, written) in [("null.avro", &null), ("deflate.avro", &deflate)] {
        let got = from(&events, name);
        assert_eq!(
            bodies(&got),
            written.datums,
            "{name}: the records' datums, in order"
        );
        for e in &got {
            assert_eq!(
                e.header("flume.avro.schema.hash"),
                Some(written.fingerprint.as_str()),
                "{name}"
            );
            assert_eq!(e.header("flume.avro.schema.literal"), None);
        }
    }
    let got = from(&events, "literal.avro");
    assert_eq!(bodies(&got), literal.datums);
    assert!(
        got.iter()
            .all(|e| e.header("flume.avro.schema.literal") == Some(literal.schema.as_str()))
    );
    assert_eq!(events.len(), 650);
    // The invalid file is left as it is, and the log names it and the byte offset.
    assert!(exists(&broken) && !exists(&completed(&broken)));
    let logs = agent_logs(d);
    assert!(
        logs.contains(&format!(
            "{}: the container's metadata (from byte 4) is cut short or bad",
            broken.display()
        )),
        "{logs}"
    );
}

/// The first field of the records is their `long` id: the body's first bytes, zig-zag varint.
fn record_id(body: &[u8]) -> u64 {
    let mut z = 0u64;
    for (i, b) in body.iter().enumerate().take(10) {
        z |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            break;
        }
    }
    z >> 1
}

/// The agent is killed with SIGKILL while the source holds a file in the middle of its first
/// block (the channel full after 1000 records: batches of 20, capacity 1010), and restarted
/// with room: every record is in the channel, in order; only the batch whose commit had not
/// reached the state file may come twice.
#[test]
fn sigkill_in_the_middle_of_an_avro_block_loses_no_record() {
    if !python_modules("avro", "the Python avro package") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keys = "a.sources.r1.deserializer = AVRO\na.sources.r1.batchSize = 20\na.channels.c1.transactionCapacity = 20\n";
    let cfg = config(d, &[("spool", keys)], 1010);
    // Blocks of about 100000 bytes: some 1700 records each.
    let (path, written) = python_avro(d, "spool", "big.avro", "deflate", 4000, 100_000, 10);
    let (mut agent, port) = start_logged(d, &cfg);
    let state = d.join("spool/.flumespool/weir-spooldir.json");
    wait_until("the channel full", || {
        support::source_accepted(port) >= 1000
            && support::metric(port, "CHANNEL.c1", "ChannelSize") == Some(1000)
    });
    agent.kill9();
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(saved["current"]["records"], 1000, "{saved}");
    assert!(!exists(&completed(&path)));
    let cfg = config(d, &[("spool", keys)], 100_000);
    let (mut agent, _) = start_logged(d, &cfg);
    wait_until("the file renamed", || exists(&completed(&path)));
    assert!(agent.stop());
    let got = bodies(&logged_events(&d.join("log")));
    let ids: Vec<u64> = got.iter().map(|b| record_id(b)).collect();
    let mut next = 0u64;
    let mut rewinds = 0;
    for (k, &id) in ids.iter().enumerate() {
        assert_eq!(
            got[k], written.datums[id as usize],
            "event {k}, record {id}"
        );
        if id == next {
            next += 1;
            continue;
        }
        // Only a step back of at most one batch, once, to a record already seen.
        assert!(
            id < next && next - id <= 20,
            "event {k} is record {id}, expected {next} (or a repeat of at most 20)"
        );
        rewinds += 1;
        next = id + 1;
    }
    assert_eq!(next, 4000, "records from {next} on are missing");
    assert!(rewinds <= 1, "{rewinds} repeated stretches for one kill");
}
