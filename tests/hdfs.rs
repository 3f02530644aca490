//! The hdfs sink as a Flume user runs it: a Flume properties file naming
//! `org.apache.flume.sink.hdfs.HDFSEventSink`, the real `weir` binary, netcat clients. The files
//! go to the local filesystem (a path without a scheme, as Hadoop without `fs.defaultFS`); the
//! WebHDFS path is covered against a mock NameNode in the sink's unit tests.

mod support;

use std::path::{Path, PathBuf};

use support::{Agent, Client, free_port};

/// netcat → timestamp interceptor → file channel → hdfs sink into `dir/hdfs/%Y-%m-%d/%H`, in
/// Flume's words, plus `extra` lines.
fn config(dir: &Path, port: u16, extra: &str) -> PathBuf {
    let text = format!(
        "a.sources = src\na.channels = ch\na.sinks = hdfsSink\n\
         a.sources.src.type = netcat\na.sources.src.bind = 127.0.0.1\n\
         a.sources.src.port = {port}\na.sources.src.channels = ch\n\
         a.sources.src.interceptors = ts\na.sources.src.interceptors.ts.type = timestamp\n\
         a.channels.ch.type = file\na.channels.ch.checkpointDir = {d}/ckpt\n\
         a.channels.ch.dataDirs = {d}/log\na.channels.ch.minimumRequiredSpace = 0\n\
         a.channels.ch.maxFileSize = 1048576\n\
         a.sinks.hdfsSink.type = org.apache.flume.sink.hdfs.HDFSEventSink\n\
         a.sinks.hdfsSink.channel = ch\n\
         a.sinks.hdfsSink.hdfs.path = file://{d}/hdfs/%Y-%m-%d/%H\n\
         a.sinks.hdfsSink.hdfs.filePrefix = events\n\
         a.sinks.hdfsSink.hdfs.fileType = DataStream\n\
         a.sinks.hdfsSink.hdfs.writeFormat = Text\n\
         a.sinks.hdfsSink.hdfs.batchSize = 10\n\
         a.sinks.hdfsSink.hdfs.rollSize = 0\n\
         a.sinks.hdfsSink.hdfs.rollInterval = 0\n\
         a.sinks.hdfsSink.hdfs.rollCount = 100\n{extra}",
        d = dir.display()
    );
    let path = dir.join("flume.conf");
    std::fs::write(&path, text).unwrap();
    path
}

/// Every file under `dir/hdfs`, sorted by name (the counter in each name orders them).
fn files(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&dir.join("hdfs"), &mut out);
    out.sort_by_key(|p| p.file_name().map(|n| n.to_owned()));
    out
}

fn lines(files: &[PathBuf]) -> Vec<String> {
    files
        .iter()
        .flat_map(|f| {
            String::from_utf8_lossy(&std::fs::read(f).unwrap())
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn a_flume_hdfs_config_writes_rolled_files_and_closes_them_at_the_stop() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut agent = Agent::start(&config(dir.path(), port, ""), port);
    let mut client = Client::new(port);
    let sent: Vec<String> = (0..250).map(|i| format!("line-{i:04}")).collect();
    for line in &sent {
        assert!(client.send(line), "{line} was refused");
    }
    support::wait_until("250 lines in the files", || {
        lines(&files(dir.path())).len() == 250
    });
    assert!(agent.stop(), "SIGTERM must exit 0");

    let files = files(dir.path());
    let names: Vec<String> = files
        .iter()
        .map(|f| f.strip_prefix(dir.path()).unwrap().display().to_string())
        .collect();
    assert_eq!(files.len(), 3, "{names:?}");
    for name in &names {
        // hdfs/YYYY-MM-DD/HH/events.<counter>, renamed from .tmp at the roll or the stop.
        let parts: Vec<&str> = name.split('/').collect();
        assert_eq!(parts.len(), 4, "{name}");
        assert_eq!(parts[1].len(), 10, "{name}");
        assert_eq!(parts[2].len(), 2, "{name}");
        assert!(
            parts[3].starts_with("events.") && !name.ends_with(".tmp"),
            "{name}"
        );
    }
    let counts: Vec<usize> = files
        .iter()
        .map(|f| lines(std::slice::from_ref(f)).len())
        .collect();
    assert_eq!(counts, [100, 100, 50], "{names:?}");
    assert_eq!(lines(&files), sent);
}

/// `hdfs.fileType = CompressedStream` with `hdfs.codeC = codec`, as Flume configs write it:
/// files ending in `extension`, which `reader` (Python code reading the file named by
/// `sys.argv[1]` and writing what it decompressed to stdout, with a library that shares no
/// code with weir) turns back into the lines. Needs the Python `modules` (`install` names
/// them for pip).
fn compressed_streams_are_read_by_another_reader(
    codec: &str,
    extension: &str,
    modules: &str,
    install: &str,
    reader: &str,
) {
    if !support::python_modules(modules, install) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(
        dir.path(),
        port,
        &format!(
            "a.sinks.hdfsSink.hdfs.fileType = CompressedStream\n\
             a.sinks.hdfsSink.hdfs.codeC = {codec}\n"
        ),
    );
    let metrics = free_port();
    let metrics_arg = metrics.to_string();
    let mut agent = Agent::start_with(
        &cfg,
        port,
        &["--metrics-port", &metrics_arg],
        std::process::Stdio::inherit(),
    );
    let mut client = Client::new(port);
    let sent: Vec<String> = (0..150).map(|i| format!("line-{i:04}")).collect();
    for line in &sent {
        assert!(client.send(line), "{line} was refused");
    }
    // A stop does not drain the channel (what is left waits there for the restart), and a
    // compressed file cannot be read before it is closed: wait for the sink's count instead.
    support::wait_until("150 events delivered", || {
        support::metric(metrics, "SINK.hdfsSink", "EventDrainSuccessCount") == Some(150)
    });
    assert!(agent.stop(), "SIGTERM must exit 0");
    let files = files(dir.path());
    // Rolled at 100 events: two files, each made of one member per batch of 10.
    assert_eq!(files.len(), 2, "{files:?}");
    let mut got = Vec::new();
    for f in &files {
        assert!(f.to_string_lossy().ends_with(extension), "{f:?}");
        let out = std::process::Command::new("python3")
            .args(["-c", reader])
            .arg(f)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{f:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        got.extend(
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(String::from),
        );
    }
    assert_eq!(got, sent);
}

/// CDH-era configs: `.snappy` files in Hadoop's SnappyCodec framing, read by python-snappy's
/// Hadoop stream reader.
#[test]
fn snappy_compressed_streams_are_read_by_another_hadoop_snappy_reader() {
    compressed_streams_are_read_by_another_reader(
        "org.apache.hadoop.io.compress.SnappyCodec",
        ".snappy",
        "snappy",
        "python-snappy",
        "import sys, snappy\n\
         data = open(sys.argv[1], 'rb').read()\n\
         sys.stdout.buffer.write(snappy.HadoopStreamDecompressor().decompress(data))",
    );
}

/// Hadoop's Lz4Codec: the same block framing around raw LZ4 blocks, read here by a reader of
/// that framing over the `lz4` package's block decoder.
#[test]
fn lz4_compressed_streams_are_hadoop_blocks_of_raw_lz4() {
    compressed_streams_are_read_by_another_reader(
        "lz4",
        ".lz4",
        "lz4.block",
        "lz4",
        "import sys, struct, lz4.block\n\
         data = open(sys.argv[1], 'rb').read()\n\
         at = 0\n\
         while at < len(data):\n\
         \x20   (raw,) = struct.unpack('>I', data[at:at + 4]); at += 4\n\
         \x20   done = 0\n\
         \x20   while done < raw:\n\
         \x20       (n,) = struct.unpack('>I', data[at:at + 4]); at += 4\n\
         \x20       out = lz4.block.decompress(data[at:at + n], uncompressed_size=raw - done)\n\
         \x20       at += n; done += len(out)\n\
         \x20       sys.stdout.buffer.write(out)",
    );
}

/// Hadoop's BZip2Codec: bzip2 streams one after another, read by Python's `bz2`.
#[test]
fn bzip2_compressed_streams_are_read_by_pythons_bz2() {
    compressed_streams_are_read_by_another_reader(
        "org.apache.hadoop.io.compress.BZip2Codec",
        ".bz2",
        "bz2",
        "bz2 (Python's standard library)",
        "import sys, bz2\n\
         sys.stdout.buffer.write(bz2.decompress(open(sys.argv[1], 'rb').read()))",
    );
}

/// Hadoop's ZStandardCodec: zstd frames one after another, read by the `zstandard` package.
#[test]
fn zstd_compressed_streams_are_read_by_pythons_zstandard() {
    compressed_streams_are_read_by_another_reader(
        "org.apache.hadoop.io.compress.ZStandardCodec",
        ".zst",
        "zstandard",
        "zstandard",
        "import sys, io, zstandard\n\
         data = open(sys.argv[1], 'rb').read()\n\
         r = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True)\n\
         sys.stdout.buffer.write(r.read())",
    );
}

/// SIGKILL while lines arrive: after a restart every acknowledged line is in the files (some
/// perhaps twice, in a file the killed agent left under its in-use name), none torn apart.
#[test]
fn a_killed_agent_loses_no_acknowledged_line() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(dir.path(), port, "");
    let mut acked = Vec::new();
    for round in 0..3 {
        let mut agent = Agent::start(&cfg, port);
        let mut client = Client::new(port);
        for i in 0..300 {
            let line = format!("round-{round}-line-{i:04}");
            if client.send(&line) {
                acked.push(line);
            }
            if i == 150 + round * 40 {
                agent.kill9();
                break;
            }
        }
    }
    let mut agent = Agent::start(&cfg, port);
    support::wait_until("every acknowledged line in the files", || {
        let got = lines(&files(dir.path()));
        acked.iter().all(|l| got.contains(l))
    });
    assert!(agent.stop());
    let got = lines(&files(dir.path()));
    // Only whole lines: a torn one can only end a file the killed agent was writing.
    let torn: Vec<&String> = got.iter().filter(|l| !acked.contains(l)).collect();
    assert!(torn.len() <= 3, "{torn:?}");
    let tmp = files(dir.path())
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "tmp"))
        .count();
    assert!(tmp <= 3, "at most one in-use file per kill: {tmp}");
}

#[test]
fn check_reports_the_hdfs_sinks_own_mistakes_with_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        free_port(),
        "a.sinks.hdfsSink.hdfs.codeC = snappy\n",
    );
    let (ok, out) = support::check_config_file(&cfg, None);
    assert!(!ok, "{out}");
    assert!(
        out.contains("flume.conf:25") && out.contains("hdfs.codeC"),
        "{out}"
    );
    // A bad escape in the path is found by --check too, naming the key.
    let cfg = config(dir.path(), free_port(), "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("%Y-%m-%d/%H", "%[nosuch]");
    std::fs::write(&cfg, text).unwrap();
    let (ok, out) = support::check_config_file(&cfg, None);
    assert!(!ok, "{out}");
    assert!(out.contains("hdfs.path") && out.contains("nosuch"), "{out}");
    // A path without a scheme goes where fs.defaultFS says; with no Hadoop configuration
    // (none here: HADOOP_CONF_DIR points at an empty directory, and this machine has no
    // /etc/hadoop/conf), to the local filesystem, which --check says.
    let cfg = config(dir.path(), free_port(), "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("file://", "");
    std::fs::write(&cfg, text).unwrap();
    let empty = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["agent", "--check", "-n", "a", "-f"])
        .arg(&cfg)
        .env("HADOOP_CONF_DIR", empty.path())
        .env_remove("HADOOP_HOME")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    if !Path::new("/etc/hadoop/conf/core-site.xml").exists() {
        assert!(
            text.contains("flume.conf:17") && text.contains("this machine's filesystem"),
            "{text}"
        );
    }
    // Without a timestamp interceptor, a path with time escapes gets a warning.
    let cfg = config(dir.path(), free_port(), "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("a.sources.src.interceptors = ts\n", "");
    std::fs::write(&cfg, text).unwrap();
    let (ok, out) = support::check_config_file(&cfg, None);
    assert!(ok, "{out}");
    assert!(
        out.contains("source(s) src feeding channel ch add none")
            && out.contains("useLocalTimeStamp"),
        "{out}"
    );
    // With the interceptor (as in every other test here), no such note.
    let (ok, out) = support::check_config_file(&config(dir.path(), free_port(), ""), None);
    assert!(ok && !out.contains("useLocalTimeStamp"), "{out}");
}
