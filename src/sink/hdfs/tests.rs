use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::config::SerializerConfig;

fn config(path: &str, format: HdfsFormat) -> HdfsSinkConfig {
    HdfsSinkConfig {
        store: HdfsStore::Local,
        path: path.to_owned(),
        file_prefix: "FlumeData".into(),
        file_suffix: String::new(),
        in_use_prefix: String::new(),
        in_use_suffix: ".tmp".into(),
        roll_interval: Duration::ZERO,
        roll_size: 0,
        roll_count: 0,
        idle_timeout: Duration::ZERO,
        max_open_files: 5000,
        call_timeout: Duration::from_secs(5),
        close_tries: 0,
        retry_interval: Duration::from_secs(180),
        format,
        round: None,
        use_local_time_stamp: false,
        time_zone: Some("UTC".into()),
        needs_timestamp_header: false,
    }
}

fn text() -> HdfsFormat {
    HdfsFormat::DataStream(SerializerConfig::Text {
        append_newline: true,
    })
}

/// Events with bodies `line-N`, each stamped `ts` (epoch ms) and with header app=`app`.
fn batch(from: u64, n: u64, app: &str, ts: i64) -> Vec<(u64, Event)> {
    (from..from + n)
        .map(|i| {
            let e = Event::new(format!("line-{i}"))
                .with_header("app", app)
                .with_header("timestamp", ts.to_string());
            (i, e)
        })
        .collect()
}

/// Every file under `dir`, by path relative to it, with its bytes.
fn files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8(bytes.to_vec())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

const TS: i64 = 1_700_000_000_123; // 2023-11-14 22:13:20.123 UTC

#[test]
fn buckets_by_escapes_roll_by_count_and_rename_at_close() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let mut c = config(&format!("{root}/%{{app}}/%Y-%m-%d"), text());
    c.roll_count = 3;
    let mut sink = HdfsSink::new("k1", c).unwrap();
    let mut events = batch(0, 4, "web", TS);
    events.extend(batch(4, 2, "db", TS));
    sink.deliver(&events).unwrap();

    let got = files(dir.path());
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    // web: a closed file of 3 and an open one of 1; db: an open one of 2.
    assert_eq!(names.len(), 3, "{names:?}");
    let web: Vec<&(String, Vec<u8>)> = got
        .iter()
        .filter(|(n, _)| n.starts_with("web/2023-11-14/FlumeData."))
        .collect();
    assert_eq!(web.len(), 2, "{names:?}");
    let (closed, open): (Vec<&&(String, Vec<u8>)>, Vec<_>) =
        web.iter().partition(|(n, _)| !n.ends_with(".tmp"));
    assert_eq!(lines(&closed[0].1), ["line-0", "line-1", "line-2"]);
    assert_eq!(lines(&open[0].1), ["line-3"]);
    let db: Vec<_> = got
        .iter()
        .filter(|(n, _)| n.starts_with("db/2023-11-14/"))
        .collect();
    assert!(db[0].0.ends_with(".tmp"));
    assert_eq!(lines(&db[0].1), ["line-4", "line-5"]);

    // A second batch appends to the open files; close renames them.
    sink.deliver(&batch(6, 1, "db", TS)).unwrap();
    sink.close().unwrap();
    let got = files(dir.path());
    assert!(got.iter().all(|(n, _)| !n.ends_with(".tmp")), "{got:?}");
    let db: Vec<_> = got.iter().filter(|(n, _)| n.starts_with("db/")).collect();
    assert_eq!(lines(&db[0].1), ["line-4", "line-5", "line-6"]);
    // Names: FlumeData.<counter>, counters increasing in the order files were opened.
    let counters: Vec<u64> = got
        .iter()
        .map(|(n, _)| n.rsplit('.').next().unwrap().parse().unwrap())
        .collect();
    assert!(counters.iter().all(|c| *c >= TS as u64), "{counters:?}");
}

/// As Flume's bucket writer numbers them: the files a bucket rolls by count follow one
/// another (N, N + 1, N + 2, even when the next event comes later), and each bucket counts on
/// its own from the time its first file opened.
#[test]
fn a_buckets_count_rolls_are_numbered_one_after_another() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let mut c = config(&format!("{root}/%{{app}}"), text());
    c.roll_count = 2;
    let mut sink = HdfsSink::new("k1", c).unwrap();
    let opened = now_millis() as u64;
    let mut events = batch(0, 3, "web", TS);
    events.extend(batch(3, 2, "db", TS));
    sink.deliver(&events).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    sink.deliver(&batch(5, 4, "web", TS)).unwrap();
    sink.deliver(&batch(9, 3, "db", TS)).unwrap();
    sink.close().unwrap();
    let numbers = |app: &str| -> Vec<u64> {
        let mut n: Vec<u64> = files(dir.path())
            .iter()
            .filter_map(|(name, _)| {
                name.strip_prefix(&format!("{app}/FlumeData."))?
                    .parse()
                    .ok()
            })
            .collect();
        n.sort_unstable();
        n
    };
    let (web, db) = (numbers("web"), numbers("db"));
    assert_eq!(web.len(), 4, "{web:?}");
    assert_eq!(db.len(), 3, "{db:?}");
    for n in [&web, &db] {
        assert!(n[0] >= opened, "{n:?} against {opened}");
        assert!(n.windows(2).all(|w| w[1] == w[0] + 1), "{n:?}");
    }
}

#[test]
fn an_event_without_the_timestamp_its_path_needs_fails_the_batch_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let mut sink = HdfsSink::new("k1", config(&format!("{root}/%Y"), text())).unwrap();
    let mut events = batch(0, 2, "a", TS);
    events.push((2, Event::new("no stamp")));
    let err = format!("{:#}", sink.deliver(&events).unwrap_err());
    assert!(
        err.contains("sink k1") && err.contains("channel offset 2"),
        "{err}"
    );
    assert!(err.to_lowercase().contains("timestamp"), "{err}");
    // Nothing was sent: the batch is rolled back whole.
    assert!(files(dir.path()).is_empty());

    let mut c = config(&format!("{root}/%Y"), text());
    c.use_local_time_stamp = true;
    let mut sink = HdfsSink::new("k1", c).unwrap();
    sink.deliver(&events).unwrap();
    sink.close().unwrap();
    let got = files(dir.path());
    assert_eq!(got.len(), 1);
    assert_eq!(lines(&got[0].1), ["line-0", "line-1", "no stamp"]);
}

/// Reads an uncompressed SequenceFile of LongWritable keys: (key, value bytes) per record.
fn sequence_records(file: &[u8], value_class: &str) -> Vec<(i64, Vec<u8>)> {
    assert_eq!(&file[..4], b"SEQ\x06");
    let mut pos = 4;
    let mut text = || {
        let len = file[pos] as usize;
        let s = String::from_utf8(file[pos + 1..pos + 1 + len].to_vec()).unwrap();
        pos += 1 + len;
        s
    };
    assert_eq!(text(), "org.apache.hadoop.io.LongWritable");
    assert_eq!(text(), value_class);
    assert_eq!(&file[pos..pos + 6], &[0, 0, 0, 0, 0, 0]);
    let sync = &file[pos + 6..pos + 22];
    pos += 22;
    let int = |p: usize| i32::from_be_bytes(file[p..p + 4].try_into().unwrap());
    let mut out = Vec::new();
    while pos < file.len() {
        if int(pos) == -1 {
            assert_eq!(&file[pos + 4..pos + 20], sync);
            pos += 20;
            continue;
        }
        let len = int(pos) as usize;
        assert_eq!(int(pos + 4), 8);
        let key = i64::from_be_bytes(file[pos + 8..pos + 16].try_into().unwrap());
        let value = &file[pos + 16..pos + 8 + len];
        let body = if value_class.ends_with("BytesWritable") {
            assert_eq!(int(pos + 16) as usize, value.len() - 4);
            value[4..].to_vec()
        } else {
            assert_eq!(value[0] as usize, value.len() - 1);
            value[1..].to_vec()
        };
        out.push((key, body));
        pos += 8 + len;
    }
    out
}

#[test]
fn sequence_files_hold_timestamp_keys_and_bodies_across_batches() {
    for (text, class) in [
        (false, "org.apache.hadoop.io.BytesWritable"),
        (true, "org.apache.hadoop.io.Text"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap();
        let mut sink =
            HdfsSink::new("k1", config(root, HdfsFormat::SequenceFile { text })).unwrap();
        sink.deliver(&batch(0, 3, "a", TS)).unwrap();
        sink.deliver(&batch(3, 2, "a", TS + 1)).unwrap();
        sink.close().unwrap();
        let got = files(dir.path());
        assert_eq!(got.len(), 1);
        let records = sequence_records(&got[0].1, class);
        let want: Vec<(i64, Vec<u8>)> = (0..5)
            .map(|i| {
                (
                    if i < 3 { TS } else { TS + 1 },
                    format!("line-{i}").into_bytes(),
                )
            })
            .collect();
        assert_eq!(records, want);
    }
}

#[test]
fn compressed_streams_are_one_member_per_batch_and_read_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let format = HdfsFormat::CompressedStream(
        SerializerConfig::Text {
            append_newline: true,
        },
        HdfsCodec::Gzip,
    );
    let mut sink = HdfsSink::new("k1", config(root, format)).unwrap();
    sink.deliver(&batch(0, 3, "a", TS)).unwrap();
    sink.deliver(&batch(3, 3, "a", TS)).unwrap();
    sink.close().unwrap();
    let got = files(dir.path());
    assert_eq!(got.len(), 1);
    assert!(got[0].0.ends_with(".gz"), "{}", got[0].0);
    let mut all = String::new();
    flate2::read::MultiGzDecoder::new(&got[0].1[..])
        .read_to_string(&mut all)
        .unwrap();
    assert_eq!(all.lines().count(), 6);
    assert_eq!(all.lines().last(), Some("line-5"));
}

/// SnappyCodec files: Hadoop's block framing (uncompressed length, compressed length, raw
/// snappy), one or more blocks per batch, read back here block by block; python-snappy's
/// Hadoop reader checks the same files in `tests/hdfs.rs`.
#[test]
fn snappy_streams_are_hadoop_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let format = HdfsFormat::CompressedStream(
        SerializerConfig::Text {
            append_newline: true,
        },
        HdfsCodec::Snappy,
    );
    let mut sink = HdfsSink::new("k1", config(root, format)).unwrap();
    sink.deliver(&batch(0, 3, "a", TS)).unwrap();
    // Over one block's worth of input in one batch.
    let big: Vec<(u64, Event)> = (3..6u64)
        .map(|i| {
            let e =
                Event::new(vec![b'a' + i as u8; 100_000]).with_header("timestamp", TS.to_string());
            (i, e)
        })
        .collect();
    sink.deliver(&big).unwrap();
    sink.close().unwrap();
    let got = files(dir.path());
    assert_eq!(got.len(), 1);
    assert!(got[0].0.ends_with(".snappy"), "{}", got[0].0);
    let mut data = &got[0].1[..];
    let mut all = Vec::new();
    let mut blocks = 0;
    let word = |d: &mut &[u8]| {
        let (w, rest) = d.split_at(4);
        *d = rest;
        u32::from_be_bytes(w.try_into().unwrap()) as usize
    };
    while !data.is_empty() {
        let raw_len = word(&mut data);
        let packed_len = word(&mut data);
        assert!(raw_len <= 128 * 1024, "block of {raw_len}");
        let (packed, rest) = data.split_at(packed_len);
        data = rest;
        let raw = snap::raw::Decoder::new().decompress_vec(packed).unwrap();
        assert_eq!(raw.len(), raw_len);
        all.extend(raw);
        blocks += 1;
    }
    assert_eq!(blocks, 4, "one for the first batch, three for the second");
    let text = String::from_utf8(all).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[..3], ["line-0", "line-1", "line-2"]);
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[5], "f".repeat(100_000));
}

fn open_files(d: &std::path::Path) -> Vec<String> {
    files(d)
        .into_iter()
        .filter(|(n, _)| n.ends_with(".tmp"))
        .map(|(n, _)| n)
        .collect()
}

#[test]
fn files_roll_on_time() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let mut c = config(root, text());
    c.roll_interval = Duration::from_millis(500);
    let mut sink = HdfsSink::new("k1", c).unwrap();
    sink.deliver(&batch(0, 1, "a", TS)).unwrap();
    sink.deliver(&batch(1, 1, "a", TS)).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    sink.deliver(&batch(2, 1, "a", TS)).unwrap();
    let got = files(dir.path());
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        !got[0].0.ends_with(".tmp") && got[1].0.ends_with(".tmp"),
        "{got:?}"
    );
    assert_eq!(lines(&got[0].1), ["line-0", "line-1"]);
    assert_eq!(lines(&got[1].1), ["line-2"]);
}

#[test]
fn files_nothing_was_written_to_for_idle_timeout_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let mut c = config(&format!("{root}/%{{app}}"), text());
    c.idle_timeout = Duration::from_millis(1000);
    let mut sink = HdfsSink::new("k1", c).unwrap();
    sink.deliver(&batch(0, 1, "quiet", TS)).unwrap();
    sink.deliver(&batch(1, 1, "busy", TS)).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    sink.deliver(&batch(2, 1, "busy", TS)).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    sink.idle().unwrap();
    let open = open_files(dir.path());
    assert_eq!(open.len(), 1, "{open:?}");
    assert!(open[0].starts_with("busy/"), "{open:?}");
}

#[test]
fn past_max_open_files_the_least_recently_written_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let mut c = config(&format!("{root}/%{{app}}"), text());
    c.max_open_files = 1;
    let mut sink = HdfsSink::new("k1", c).unwrap();
    sink.deliver(&batch(0, 1, "a", TS)).unwrap();
    sink.deliver(&batch(1, 1, "b", TS)).unwrap();
    let got = files(dir.path());
    assert!(
        !got[0].0.ends_with(".tmp") && got[0].0.starts_with("a/"),
        "{got:?}"
    );
    assert!(
        got[1].0.ends_with(".tmp") && got[1].0.starts_with("b/"),
        "{got:?}"
    );
}

/// A store that fails as told, in front of the local filesystem: the next `appends` appends
/// and `renames` renames fail, each rename takes `rename_delay` first, and `rename_calls`
/// counts them.
#[derive(Clone, Default)]
struct Faults {
    creates: Arc<Mutex<usize>>,
    appends: Arc<Mutex<usize>>,
    renames: Arc<Mutex<usize>>,
    rename_delay: Duration,
    rename_calls: Arc<Mutex<usize>>,
}

struct FaultyStore(Faults, LocalStore);

fn take(n: &Mutex<usize>) -> bool {
    let mut n = n.lock().unwrap();
    let fail = *n > 0;
    *n = n.saturating_sub(1);
    fail
}

impl Store for FaultyStore {
    fn create(&mut self, path: &str, data: &[u8]) -> anyhow::Result<bool> {
        if take(&self.0.creates) {
            // The file is made and half of its bytes land before the call fails.
            std::fs::write(path, &data[..data.len() / 2])?;
            anyhow::bail!("injected create failure");
        }
        self.1.create(path, data)
    }
    fn append(&mut self, path: &str, data: &[u8]) -> anyhow::Result<()> {
        if take(&self.0.appends) {
            // Half of it lands, as a connection cut in the middle would leave it.
            self.1.append(path, &data[..data.len() / 2])?;
            anyhow::bail!("injected append failure");
        }
        self.1.append(path, data)
    }
    fn rename(&mut self, from: &str, to: &str) -> anyhow::Result<store::Renamed> {
        *self.0.rename_calls.lock().unwrap() += 1;
        std::thread::sleep(self.0.rename_delay);
        if take(&self.0.renames) {
            anyhow::bail!("injected rename failure");
        }
        self.1.rename(from, to)
    }
    fn list(&mut self, dir: &str) -> anyhow::Result<Vec<String>> {
        self.1.list(dir)
    }
    fn cut(&mut self, path: &str, keep: u64) -> anyhow::Result<bool> {
        self.1.cut(path, keep)
    }
}

fn faulty_sink(c: HdfsSinkConfig, faults: &Faults) -> HdfsSink {
    let (path, prefix, time) = templates(&c).unwrap();
    HdfsSink::with_store(
        "k1",
        c,
        Box::new(FaultyStore(faults.clone(), LocalStore)),
        path,
        prefix,
        time,
    )
}

#[test]
fn after_a_failed_append_the_retry_goes_to_a_new_file_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let faults = Faults::default();
    let mut sink = faulty_sink(config(root, text()), &faults);
    sink.deliver(&batch(0, 2, "a", TS)).unwrap();
    *faults.appends.lock().unwrap() = 1;
    let second = batch(2, 2, "a", TS);
    assert!(sink.deliver(&second).is_err());
    // The runner rolls back and delivers the batch again.
    sink.deliver(&second).unwrap();
    sink.deliver(&batch(4, 1, "a", TS)).unwrap();
    sink.close().unwrap();
    let got = files(dir.path());
    assert_eq!(got.len(), 2, "{got:?}");
    // The first file: its batch, the torn half of the failed one cut off, never written after.
    assert_eq!(lines(&got[0].1), ["line-0", "line-1"]);
    assert!(!got[0].0.ends_with(".tmp"), "{got:?}");
    assert_eq!(lines(&got[1].1), ["line-2", "line-3", "line-4"]);
}

/// A create that failed part-way leaves no file behind: the retry writes the batch whole to a
/// file of the next number.
#[test]
fn a_file_whose_create_failed_part_way_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let faults = Faults::default();
    let mut sink = faulty_sink(config(root, text()), &faults);
    *faults.creates.lock().unwrap() = 1;
    let first = batch(0, 3, "a", TS);
    assert!(sink.deliver(&first).is_err());
    assert!(files(dir.path()).is_empty(), "{:?}", files(dir.path()));
    sink.deliver(&first).unwrap();
    sink.close().unwrap();
    let got = files(dir.path());
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(lines(&got[0].1), ["line-0", "line-1", "line-2"]);
}

#[test]
fn a_failed_rename_is_tried_again_and_at_the_stop() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let faults = Faults::default();
    let mut c = config(root, text());
    c.roll_count = 1;
    c.retry_interval = Duration::from_millis(50);
    let mut sink = faulty_sink(c, &faults);
    *faults.renames.lock().unwrap() = 2;
    sink.deliver(&batch(0, 1, "a", TS)).unwrap();
    sink.deliver(&batch(1, 1, "a", TS)).unwrap(); // rolls the first: rename fails
    sink.idle().unwrap(); // too early to retry
    assert_eq!(sink.closing.len(), 1);
    std::thread::sleep(Duration::from_millis(60));
    sink.idle().unwrap(); // fails again
    std::thread::sleep(Duration::from_millis(60));
    sink.idle().unwrap(); // renamed
    assert!(sink.closing.is_empty());
    let got = files(dir.path());
    assert_eq!(
        got.iter().filter(|(n, _)| n.ends_with(".tmp")).count(),
        1,
        "{got:?}"
    );
    *faults.renames.lock().unwrap() = 1;
    sink.close().unwrap(); // fails, then the stop's last try renames it
    assert!(files(dir.path()).iter().all(|(n, _)| !n.ends_with(".tmp")));
}

#[test]
fn webhdfs_end_to_end_against_the_mock() {
    let mock = webhdfs_mock::MockWebHdfs::start();
    let mut c = config("/flume/%{app}", text());
    c.store = HdfsStore::WebHdfs {
        endpoints: vec![mock.endpoint()],
        user: Some("flume".into()),
        proxy_user: None,
    };
    c.roll_count = 3;
    let mut sink = HdfsSink::new("k1", c).unwrap();
    sink.deliver(&batch(0, 2, "web", TS)).unwrap();
    sink.deliver(&batch(2, 2, "web", TS)).unwrap();
    mock.fail_next("APPEND", 1);
    assert!(sink.deliver(&batch(4, 2, "web", TS)).is_err());
    sink.deliver(&batch(4, 2, "web", TS)).unwrap();
    sink.close().unwrap();
    let files = mock.files();
    let names: Vec<&String> = files.keys().collect();
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("/flume/web/FlumeData.") && !n.ends_with(".tmp")),
        "{names:?}"
    );
    let all: Vec<String> = files.values().flat_map(|b| lines(b)).collect();
    assert_eq!(
        all,
        ["line-0", "line-1", "line-2", "line-3", "line-4", "line-5"]
    );
}

/// An HA pair whose first NameNode is down: the sink writes through the second, and stays
/// with it.
#[test]
fn a_namenode_that_is_down_is_passed_over_for_the_next() {
    let mock = webhdfs_mock::MockWebHdfs::start();
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let mut c = config("/flume", text());
    c.store = HdfsStore::WebHdfs {
        endpoints: vec![down, mock.endpoint()],
        user: Some("flume".into()),
        proxy_user: None,
    };
    let mut sink = HdfsSink::new("k1", c).unwrap();
    sink.deliver(&batch(0, 2, "a", TS)).unwrap();
    sink.deliver(&batch(2, 1, "a", TS)).unwrap();
    sink.close().unwrap();
    let files = mock.files();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(
        lines(files.values().next().unwrap()),
        ["line-0", "line-1", "line-2"]
    );
}

/// A store that does not answer holds the stop for STOP_FAILURES renames, not one per open
/// file.
#[test]
fn the_stop_gives_up_renaming_after_three_failures_in_a_row() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let faults = Faults::default();
    *faults.renames.lock().unwrap() = usize::MAX;
    let mut sink = faulty_sink(config(&format!("{root}/%{{app}}"), text()), &faults);
    for i in 0..20 {
        sink.deliver(&batch(i, 1, &format!("app{i}"), TS)).unwrap();
    }
    sink.close().unwrap();
    // Three files, each tried twice, then the store is taken to be away.
    assert_eq!(*faults.rename_calls.lock().unwrap(), 6);
    assert_eq!(open_files(dir.path()).len(), 20);
}

#[test]
fn paths_are_normalised_as_hadoop_does() {
    for (raw, want) in [
        ("/flume//a/./b/", "/flume/a/b"),
        ("/flume/../x", "/x"),
        ("/../../x", "/x"),
        ("/", "/"),
        ("rel/../../x", "../x"),
        ("./a", "a"),
    ] {
        assert_eq!(normalize(raw), want, "{raw}");
    }
}

/// A header value of `..` or `.` in the path is a path WebHDFS takes, not an event that stops
/// the sink for ever.
#[test]
fn a_header_of_dots_does_not_stop_the_sink() {
    let mock = webhdfs_mock::MockWebHdfs::start();
    let mut c = config("/flume/%{app}/x", text());
    c.store = HdfsStore::WebHdfs {
        endpoints: vec![mock.endpoint()],
        user: None,
        proxy_user: None,
    };
    let mut sink = HdfsSink::new("k1", c).unwrap();
    sink.deliver(&batch(0, 1, "..", TS)).unwrap();
    sink.deliver(&batch(1, 1, ".", TS)).unwrap();
    sink.close().unwrap();
    let names: Vec<String> = mock.files().into_keys().collect();
    assert_eq!(names.len(), 2, "{names:?}");
    // `/flume/../x` is `/x`, as Hadoop's Path makes it; `/flume/./x` is `/flume/x`.
    assert!(names[0].starts_with("/flume/x/FlumeData."), "{names:?}");
    assert!(names[1].starts_with("/x/FlumeData."), "{names:?}");
}

/// A store that is healthy but takes a moment per rename (a NameNode across a WAN,
/// or one under load) renames every file at a graceful stop, each call with its own
/// hdfs.callTimeout, as Flume closes them.
#[test]
fn a_healthy_but_slow_store_keeps_files_renamed_at_stop() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let mut c = config(&format!("{root}/%{{app}}"), text());
    c.call_timeout = Duration::from_millis(200);
    // Each rename answers well within hdfs.callTimeout.
    let faults = Faults {
        rename_delay: Duration::from_millis(30),
        ..Faults::default()
    };
    let mut sink = faulty_sink(c, &faults);
    for i in 0..20 {
        sink.deliver(&batch(i, 1, &format!("app{i}"), TS)).unwrap();
    }
    sink.close().unwrap();
    let left = open_files(dir.path());
    assert!(
        left.is_empty(),
        "{} of 20 files kept their in-use name: {left:?}",
        left.len()
    );
}

/// A rename whose source is gone and whose target does not exist either (the .tmp removed by
/// an operator or a cleanup job) is dropped, not retried for ever: Flume's renameBucket checks
/// fs.exists(src) first and does nothing.
#[test]
fn a_rename_with_both_names_missing_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let mut c = config(root, text());
    c.roll_count = 1;
    c.retry_interval = Duration::from_millis(10);
    let mut sink = HdfsSink::new("k1", c).unwrap();
    sink.deliver(&batch(0, 1, "a", TS)).unwrap();
    for f in open_files(dir.path()) {
        std::fs::remove_file(dir.path().join(f)).unwrap();
    }
    sink.deliver(&batch(1, 1, "a", TS)).unwrap(); // rolls the first file: its rename fails
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(15));
        sink.idle().unwrap();
    }
    assert!(
        sink.closing.is_empty(),
        "still retrying: tries = {}",
        sink.closing[0].tries
    );
}

/// The number this sink's next file takes, far ahead of the clock, so that the final names
/// of an "earlier run" can be laid in its way.
const AHEAD: u64 = 9_000_000_000_000;

/// An earlier run that rolled faster than a file a millisecond left final names ahead of the
/// clock, which this run's counter reaches: a file whose final name is taken is renamed to a
/// number past the highest in the directory (and the later files follow from there), instead
/// of staying in use for ever with a rename retried every `retryInterval`. The earlier files
/// are not touched.
#[test]
fn a_final_name_taken_by_an_earlier_run_is_passed_over_for_a_free_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    for n in AHEAD..AHEAD + 3 {
        std::fs::write(out.join(format!("FlumeData.{n}")), "earlier\n").unwrap();
    }
    std::fs::write(
        out.join(format!("FlumeData.{}.tmp", AHEAD + 5)),
        "earlier\n",
    )
    .unwrap();
    let mut c = config(out.to_str().unwrap(), text());
    c.roll_count = 2;
    let mut sink = HdfsSink::new("k1", c).unwrap();
    sink.floor = AHEAD - 1;
    sink.deliver(&batch(0, 2, "a", TS)).unwrap();
    sink.deliver(&batch(2, 2, "a", TS)).unwrap();
    sink.close().unwrap();

    let got = files(dir.path());
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            format!("out/FlumeData.{AHEAD}"),
            format!("out/FlumeData.{}", AHEAD + 1),
            format!("out/FlumeData.{}", AHEAD + 2),
            format!("out/FlumeData.{}.tmp", AHEAD + 5),
            format!("out/FlumeData.{}", AHEAD + 6),
            format!("out/FlumeData.{}", AHEAD + 7),
        ]
    );
    for (name, bytes) in &got[..4] {
        assert_eq!(bytes, b"earlier\n", "{name}");
    }
    assert_eq!(lines(&got[4].1), ["line-0", "line-1"]);
    assert_eq!(lines(&got[5].1), ["line-2", "line-3"]);
}

/// The same over WebHDFS: RENAME answers false, GETFILESTATUS finds the target, LISTSTATUS
/// gives the numbers to pass.
#[test]
fn over_webhdfs_a_taken_final_name_is_passed_over_too() {
    let mock = webhdfs_mock::MockWebHdfs::start();
    for n in AHEAD..AHEAD + 2 {
        mock.put_file(&format!("/flume/FlumeData.{n}"), b"earlier\n");
    }
    let mut c = config("/flume", text());
    c.store = HdfsStore::WebHdfs {
        endpoints: vec![mock.endpoint()],
        user: Some("flume".into()),
        proxy_user: None,
    };
    let mut sink = HdfsSink::new("k1", c).unwrap();
    sink.floor = AHEAD - 1;
    sink.deliver(&batch(0, 2, "a", TS)).unwrap();
    sink.close().unwrap();
    let files = mock.files();
    let names: Vec<&String> = files.keys().collect();
    assert_eq!(
        names,
        [
            &format!("/flume/FlumeData.{AHEAD}"),
            &format!("/flume/FlumeData.{}", AHEAD + 1),
            &format!("/flume/FlumeData.{}", AHEAD + 2),
        ]
    );
    assert_eq!(files[names[0]], b"earlier\n");
    assert_eq!(files[names[1]], b"earlier\n");
    assert_eq!(lines(&files[names[2]]), ["line-0", "line-1"]);
}
