//! The TAILDIR source as a user runs it: the real `weir` binary following files that a writer
//! appends to, rotates and truncates, while the agent is stopped, killed and restarted.
//! Events go TAILDIR → file channel → file_roll, whose output files are read back.

mod support;

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::{Agent, agent_logs, free_port, output_lines, source_accepted, start_logged};

/// TAILDIR following `{dir}/logs/{pattern}` → file channel → file_roll into `{dir}/out`, plus
/// `extra` lines. Without `sink`, events stay in the channel.
fn config(dir: &Path, pattern: &str, sink: bool, extra: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let sink = if sink {
        format!(
            "a.sinks = k1\na.sinks.k1.type = file_roll\na.sinks.k1.channel = c1\n\
             a.sinks.k1.sink.directory = {d}/out\na.sinks.k1.sink.batchSize = 50\n\
             a.sinks.k1.sink.rollInterval = 1\n",
            d = dir.display()
        )
    } else {
        String::new()
    };
    let text = format!(
        "a.sources = r1\na.channels = c1\n{sink}\
         a.sources.r1.type = TAILDIR\na.sources.r1.channels = c1\n\
         a.sources.r1.filegroups = g1\na.sources.r1.filegroups.g1 = {d}/logs/{pattern}\n\
         a.sources.r1.positionFile = {d}/pos/taildir_position.json\n\
         a.sources.r1.pollDelay = 50\n\
         a.channels.c1.type = file\na.channels.c1.checkpointDir = {d}/ckpt\na.channels.c1.dataDirs = {d}/log\n\
         a.channels.c1.minimumRequiredSpace = 0\na.channels.c1.maxFileSize = 1048576\n{extra}\n",
        d = dir.display()
    );
    let path = dir.join("agent.properties");
    std::fs::write(&path, text).unwrap();
    path
}

fn counts(lines: &[String]) -> HashMap<&str, usize> {
    let mut m = HashMap::new();
    for l in lines {
        *m.entry(l.as_str()).or_insert(0) += 1;
    }
    m
}

/// Waits (generously) until every line of `want` is in the output; returns the output.
fn wait_for(dir: &Path, want: &[String]) -> Vec<String> {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let out = output_lines(dir);
        let seen = counts(&out);
        if want.iter().all(|w| seen.contains_key(w.as_str())) || Instant::now() > end {
            return out;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Asserts each line of `want` appears exactly once and nothing else appears.
fn assert_exactly_once(out: &[String], want: &[String]) {
    let seen = counts(out);
    let missing: Vec<&String> = want
        .iter()
        .filter(|w| !seen.contains_key(w.as_str()))
        .collect();
    let repeated: Vec<(&&str, &usize)> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        missing.is_empty(),
        "{} lines lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(
        repeated.is_empty(),
        "{} lines repeated, e.g. {:?}",
        repeated.len(),
        &repeated[..repeated.len().min(5)]
    );
    assert_eq!(out.len(), want.len(), "unexpected lines in the output");
}

fn append(path: &Path, text: &str) {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

fn lines(prefix: &str, range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i:06}")).collect()
}

fn text(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// A thread appending numbered lines to `path` through one handle, as a logging library does;
/// `rotate` makes it open the file at `path` again (after the test renamed the old one).
struct Writer {
    stop: Arc<AtomicBool>,
    rotate: Arc<AtomicBool>,
    /// Lines written so far, and the number of the first line written after the last reopen.
    written: Arc<AtomicU64>,
    first_in_current: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Writes `line-NNNNNNN` lines, `burst` at a time with a short pause between bursts.
    fn start(path: &Path, burst: u64) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let rotate = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let first_in_current = Arc::new(AtomicU64::new(0));
        let (s, r, w, f) = (
            stop.clone(),
            rotate.clone(),
            written.clone(),
            first_in_current.clone(),
        );
        let path = path.to_owned();
        let thread = std::thread::spawn(move || {
            let open = || {
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .unwrap()
            };
            let mut file = open();
            let mut i = 0u64;
            while !s.load(Ordering::Relaxed) {
                if r.load(Ordering::SeqCst) {
                    file = open();
                    // Published before the flag clears: the test reads it once the flag is
                    // clear, and a stale value let it rename the new file away before the agent
                    // had seen it (a file that matched for less than one poll is never read).
                    f.store(i, Ordering::SeqCst);
                    r.store(false, Ordering::SeqCst);
                }
                let mut chunk = String::new();
                for _ in 0..burst {
                    chunk.push_str(&format!("line-{i:07}\n"));
                    i += 1;
                }
                file.write_all(chunk.as_bytes()).unwrap();
                w.store(i, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        Writer {
            stop,
            rotate,
            written,
            first_in_current,
            thread: Some(thread),
        }
    }

    fn finish(&mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        (0..self.written.load(Ordering::SeqCst))
            .map(|i| format!("line-{i:07}"))
            .collect()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn lines_before_and_after_start_and_files_that_appear_later() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = config(d, r".*\.log", true, "");
    let before = lines("a-", 0..100);
    append(&d.join("logs/a.log"), &text(&before));
    append(&d.join("logs/ignored.txt"), "not mine\n");
    let mut agent = start_logged(d, &cfg).0;
    let after = lines("a-", 100..200);
    append(&d.join("logs/a.log"), &text(&after));
    // A file that appears later, and a line written in two pieces.
    let later = lines("b-", 0..50);
    append(&d.join("logs/b.log"), &text(&later));
    append(&d.join("logs/b.log"), "b-half");
    std::thread::sleep(Duration::from_millis(300));
    append(&d.join("logs/b.log"), "-and-half\n");
    let mut want = [before, after, later].concat();
    want.push("b-half-and-half".into());
    let out = wait_for(d, &want);
    assert!(agent.stop(), "SIGTERM must exit 0");
    let out = if out.len() < want.len() {
        out
    } else {
        output_lines(d)
    };
    assert_exactly_once(&out, &want);
    // Lines of one file arrive in order.
    let a: Vec<&String> = out.iter().filter(|l| l.starts_with("a-")).collect();
    assert!(a.windows(2).all(|w| w[0] < w[1]), "a.log out of order");
}

#[test]
fn headers_are_set_per_group_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = config(
        d,
        r"app\.log",
        false,
        "a.sources.r1.fileHeader = true\na.sources.r1.fileHeaderKey = path\n\
         a.sources.r1.byteOffsetHeader = true\na.sources.r1.headers.g1.env = prod\n\
         a.sources.r1.headers.g1.dc = west\n",
    );
    let log = d.join("logs/app.log");
    append(&log, "first\r\nsecond\n");
    let port = free_port();
    let mut agent = Agent::start_with(
        &cfg,
        port,
        &["--metrics-port", &port.to_string()],
        Stdio::inherit(),
    );
    let end = Instant::now() + Duration::from_secs(20);
    while source_accepted(port) < 2 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(agent.stop());
    let events = support::logged_events(&d.join("log"));
    assert_eq!(events.len(), 2, "{events:?}");
    let header = |i: usize, k: &str| -> Option<String> {
        let e: &weir::wal::inspect::DumpedEvent = &events[i];
        e.headers
            .iter()
            .find(|(hk, _)| hk == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        events[0].body, b"first",
        "the \\r before the newline is dropped, as Flume does"
    );
    assert_eq!(events[1].body, b"second");
    for i in 0..2 {
        assert_eq!(header(i, "env").as_deref(), Some("prod"));
        assert_eq!(header(i, "dc").as_deref(), Some("west"));
        assert_eq!(header(i, "path"), Some(log.to_string_lossy().into_owned()));
    }
    assert_eq!(header(0, "byteoffset").as_deref(), Some("0"));
    assert_eq!(header(1, "byteoffset").as_deref(), Some("7"));
}

/// Lets the agent catch up, stops the writer and then the agent; returns every line written and
/// the sink's output (taken once the agent has stopped, unless lines are still missing).
fn finish_run(d: &Path, writer: &mut Writer, agent: &mut Agent) -> (Vec<String>, Vec<String>) {
    std::thread::sleep(Duration::from_millis(200));
    let want = writer.finish();
    let out = stop_when_written(d, &want, agent);
    (want, out)
}

/// Waits for `want` in the sink's output, stops the agent, and returns the output (read again
/// after the stop, unless lines are still missing).
fn stop_when_written(d: &Path, want: &[String], agent: &mut Agent) -> Vec<String> {
    let out = wait_for(d, want);
    assert!(agent.stop());
    if out.len() < want.len() {
        out
    } else {
        output_lines(d)
    }
}

/// Renames `app.log` to `app.log.N` several times while a writer appends as fast as it can,
/// each time after the agent has read from the current file.
fn rotate_under_load(pattern: &str) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = config(d, pattern, true, "a.sources.r1.idleTimeout = 1000\n");
    let log = d.join("logs/app.log");
    let mut writer = Writer::start(&log, 20);
    let mut agent = start_logged(d, &cfg).0;
    for k in 1..=5 {
        while writer.rotate.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let first = format!("line-{:07}", writer.first_in_current.load(Ordering::SeqCst));
        let out = wait_for(d, std::slice::from_ref(&first));
        assert!(out.contains(&first), "the agent never read {first}");
        std::thread::sleep(Duration::from_millis(fastrand::u64(20..200)));
        std::fs::rename(&log, d.join(format!("logs/app.log.{k}"))).unwrap();
        // The writer keeps writing to the renamed file until it notices.
        std::thread::sleep(Duration::from_millis(fastrand::u64(0..30)));
        writer.rotate.store(true, Ordering::SeqCst);
    }
    let (want, out) = finish_run(d, &mut writer, &mut agent);
    eprintln!("{pattern}: {} lines through 5 rotations", want.len());
    assert_exactly_once(&out, &want);
}

#[test]
fn rotation_under_load_with_rotated_names_matched() {
    rotate_under_load(r"app\.log.*");
}

#[test]
fn rotation_under_load_with_only_the_live_name_matched() {
    rotate_under_load(r"app\.log");
}

#[test]
fn copytruncate_starts_the_file_over() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = config(d, r"app\.log", true, "");
    let log = d.join("logs/app.log");
    // The application's handle, opened for appending, stays open through the truncations.
    let mut app = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    let mut agent = start_logged(d, &cfg).0;
    let first = lines("one-", 0..100);
    app.write_all(text(&first).as_bytes()).unwrap();
    wait_for(d, &first);
    // logrotate copytruncate: copy (to a name the group does not match), then truncate.
    std::fs::copy(&log, d.join("logs/app.log.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    let second = lines("two-", 0..10);
    app.write_all(text(&second).as_bytes()).unwrap();
    wait_for(d, &second);
    // Truncated, then written past the old size before the agent looks again.
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    let third = lines("three-", 0..300);
    app.write_all(text(&third).as_bytes()).unwrap();
    let want = [first, second, third].concat();
    let out = stop_when_written(d, &want, &mut agent);
    assert_exactly_once(&out, &want);
}

#[test]
fn sigterm_restarts_mid_stream_lose_and_repeat_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = config(d, r"app\.log", true, "");
    let mut writer = Writer::start(&d.join("logs/app.log"), 5);
    for _ in 0..3 {
        let mut agent = start_logged(d, &cfg).0;
        std::thread::sleep(Duration::from_millis(fastrand::u64(200..600)));
        assert!(agent.stop(), "SIGTERM must exit 0");
        std::thread::sleep(Duration::from_millis(fastrand::u64(0..200)));
    }
    let mut agent = start_logged(d, &cfg).0;
    let (want, out) = finish_run(d, &mut writer, &mut agent);
    eprintln!("{} lines through 4 clean stops", want.len());
    assert_exactly_once(&out, &want);
    assert!(out.windows(2).all(|w| w[0] < w[1]), "lines out of order");
}

#[test]
fn sigkill_cycles_lose_nothing_and_repeat_at_most_the_batches_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Positions written after every batch: a kill can repeat only the batch whose commit the
    // position file had not recorded yet (and the sink's batch, likewise).
    let (source_batch, sink_batch) = (100, 50);
    let cfg = config(
        d,
        r"app\.log",
        true,
        "a.sources.r1.writePosInterval = 0\na.sources.r1.batchSize = 100\n",
    );
    let mut writer = Writer::start(&d.join("logs/app.log"), 10);
    let cycles = 5;
    for _ in 0..cycles {
        let mut agent = start_logged(d, &cfg).0;
        std::thread::sleep(Duration::from_millis(fastrand::u64(200..700)));
        agent.kill9();
    }
    let mut agent = start_logged(d, &cfg).0;
    let (want, out) = finish_run(d, &mut writer, &mut agent);
    let seen = counts(&out);
    let missing = want
        .iter()
        .filter(|w| !seen.contains_key(w.as_str()))
        .count();
    assert_eq!(missing, 0, "lines lost across SIGKILL");
    let repeats: usize = want
        .iter()
        .map(|w| seen.get(w.as_str()).copied().unwrap_or(0).saturating_sub(1))
        .sum();
    eprintln!(
        "{cycles} kills: {} lines written, {} repeated",
        want.len(),
        repeats
    );
    assert!(
        repeats <= cycles * (source_batch + sink_batch),
        "{repeats} repeats: more than the batches in flight at {cycles} kills"
    );
}

#[test]
fn corrupt_position_file_is_reported_and_reading_starts_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = config(d, r"app\.log", true, "");
    let pf = d.join("pos/taildir_position.json");
    std::fs::create_dir_all(pf.parent().unwrap()).unwrap();
    std::fs::write(&pf, b"[{\"inode\": 12, \"pos\": ").unwrap();
    let want = lines("x-", 0..20);
    append(&d.join("logs/app.log"), &text(&want));
    let mut agent = start_logged(d, &cfg).0;
    let out = wait_for(d, &want);
    assert!(agent.stop());
    assert_exactly_once(&out, &want);
    let logs = agent_logs(d);
    assert!(
        logs.contains(&format!(
            "position file {} is unusable: not valid JSON",
            pf.display()
        )),
        "{logs}"
    );
    let aside = d.join("pos/taildir_position.json.corrupt");
    assert_eq!(std::fs::read(aside).unwrap(), b"[{\"inode\": 12, \"pos\": ");
    // The new position file is valid and records the whole file.
    let positions: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&pf).unwrap()).unwrap();
    let len = std::fs::metadata(d.join("logs/app.log")).unwrap().len();
    assert_eq!(positions[0]["pos"].as_u64(), Some(len), "{positions}");
}

#[test]
fn position_past_the_end_reads_the_truncated_file_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = config(d, r"app\.log", true, "");
    let log = d.join("logs/app.log");
    let want = lines("y-", 0..10);
    append(&log, &text(&want));
    let inode = std::fs::metadata(&log).unwrap().ino();
    let pf = d.join("pos/taildir_position.json");
    std::fs::create_dir_all(pf.parent().unwrap()).unwrap();
    std::fs::write(
        &pf,
        format!(
            "[{{\"inode\":{inode},\"pos\":100000,\"file\":\"{}\"}}]",
            log.display()
        ),
    )
    .unwrap();
    let mut agent = start_logged(d, &cfg).0;
    let out = wait_for(d, &want);
    assert!(agent.stop());
    assert_exactly_once(&out, &want);
    let logs = agent_logs(d);
    assert!(
        logs.contains(&format!(
            "position file {}: {} (inode {inode}) is recorded at byte 100000, past its end",
            pf.display(),
            log.display()
        )),
        "{logs}"
    );
}
