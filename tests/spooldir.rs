//! The spooldir source as a user runs it: the real `weir` binary reading files dropped into a
//! directory into a file channel, stopped, killed and restarted. The events are read back from
//! the channel's log (no sink drains it), so what the channel committed is exactly what is
//! checked.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::{
    Agent, agent_logs, check_config, logged_events, python_modules, source_accepted, start_logged,
    wait_until,
};
use weir::wal::inspect::DumpedEvent;

/// spooldir on `{dir}/spool` → file channel in `{dir}/log`, plus `extra` lines.
fn config(dir: &Path, extra: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("spool")).unwrap();
    let text = format!(
        "a.sources = r1\na.channels = c1\n\
         a.sources.r1.type = spooldir\na.sources.r1.channels = c1\n\
         a.sources.r1.spoolDir = {d}/spool\na.sources.r1.pollDelay = 50\n\
         a.channels.c1.type = file\na.channels.c1.checkpointDir = {d}/ckpt\na.channels.c1.dataDirs = {d}/log\n\
         a.channels.c1.minimumRequiredSpace = 0\na.channels.c1.maxFileSize = 4194304\n{extra}\n",
        d = dir.display()
    );
    let path = dir.join("agent.properties");
    std::fs::write(&path, text).unwrap();
    path
}

/// A running agent and its metrics port; stderr goes to `{dir}/agent-N.log`.
struct Run {
    agent: Agent,
    port: u16,
}

fn start(dir: &Path, cfg: &Path) -> Run {
    let (agent, port) = start_logged(dir, cfg);
    Run { agent, port }
}

/// Drops a file into `dir/spool` (see [`support::drop_spool_file`]).
fn drop_file(dir: &Path, name: &str, bytes: &[u8], age: u64) -> PathBuf {
    support::drop_spool_file(&dir.join("spool"), name, bytes, age)
}

fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:06}")).collect()
}

fn text(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

fn bodies(events: &[DumpedEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| String::from_utf8_lossy(&e.body).into_owned())
        .collect()
}

fn exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

fn completed(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".COMPLETED");
    PathBuf::from(s)
}

#[test]
fn files_arrive_oldest_first_with_headers_and_are_renamed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = config(
        d,
        "a.sources.r1.fileHeader = true\na.sources.r1.basenameHeader = true\n\
         a.sources.r1.basenameHeaderKey = name\n\
         a.sources.r1.includePattern = .*\\.log\na.sources.r1.ignorePattern = skip.*\n",
    );
    let old = numbered("old-", 300);
    let new = numbered("new-", 50);
    let newer = numbered("newer-", 20);
    let old_path = drop_file(d, "b-old.log", text(&old).as_bytes(), 300);
    let new_path = drop_file(d, "a-new.log", text(&new).as_bytes(), 200);
    let skipped = drop_file(d, "skip-me.log", b"ignored\n", 400);
    let other = drop_file(d, "other.txt", b"not included\n", 400);
    std::fs::write(d.join("spool/.hidden.log"), b"hidden\n").unwrap();
    let mut run = start(d, &cfg);
    wait_until("both files renamed", || {
        exists(&completed(&old_path)) && exists(&completed(&new_path))
    });
    // A file dropped while the agent runs.
    let newer_path = drop_file(d, "c-newer.log", text(&newer).as_bytes(), 0);
    wait_until("the later file renamed", || exists(&completed(&newer_path)));
    assert!(run.agent.stop(), "SIGTERM must exit 0");
    let events = logged_events(&d.join("log"));
    assert_eq!(
        bodies(&events),
        [old.clone(), new.clone(), newer.clone()].concat(),
        "every line once, files oldest first, lines in order"
    );
    assert_eq!(
        events[0].header("file"),
        Some(old_path.to_string_lossy().as_ref())
    );
    assert_eq!(events[0].header("name"), Some("b-old.log"));
    assert_eq!(events[300].header("name"), Some("a-new.log"));
    assert_eq!(events[350].header("name"), Some("c-newer.log"));
    for untouched in [&skipped, &other, &d.join("spool/.hidden.log")] {
        assert!(exists(untouched), "{} was touched", untouched.display());
        assert!(!exists(&completed(untouched)));
    }
    assert!(!exists(&old_path) && !exists(&new_path));
}

#[test]
fn delete_policy_immediate_removes_each_file_once_read() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = config(d, "a.sources.r1.deletePolicy = immediate\n");
    let lines = numbered("x-", 120);
    let path = drop_file(d, "x.log", text(&lines).as_bytes(), 10);
    let mut run = start(d, &cfg);
    wait_until("the file deleted", || !exists(&path));
    assert!(run.agent.stop());
    assert_eq!(bodies(&logged_events(&d.join("log"))), lines);
    assert!(!exists(&completed(&path)));
}

#[test]
fn long_lines_are_cut_crlf_is_dropped_and_a_last_line_needs_no_newline() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = config(d, "a.sources.r1.deserializer.maxLineLength = 8\n");
    let path = drop_file(
        d,
        "cuts.log",
        "short\r\n0123456789abcdefXYZ\nexactly8\r\n\nüüüüüüüüüü\nlast line".as_bytes(),
        10,
    );
    let mut run = start(d, &cfg);
    wait_until("the file renamed", || exists(&completed(&path)));
    assert!(run.agent.stop());
    assert_eq!(
        bodies(&logged_events(&d.join("log"))),
        vec![
            "short",
            "01234567",
            "89abcdef",
            "XYZ",
            "exactly8",
            "",
            "üüüüüüüü",
            "üü",
            "last lin",
            "e",
        ]
    );
}

/// The lines of `want` in the channel after kills: each line at least once, in order except
/// where a kill made the source send again the batch whose commit had not reached its position
/// file. Returns how many lines were repeated.
fn assert_in_order_with_repeated_batches(
    got: &[String],
    want: &[String],
    kills: usize,
    batch: usize,
) -> usize {
    let index: std::collections::HashMap<&str, usize> = want
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), i))
        .collect();
    let mut next = 0usize;
    let mut rewinds = 0usize;
    let mut repeated = 0usize;
    for (k, line) in got.iter().enumerate() {
        let Some(&i) = index.get(line.as_str()) else {
            panic!("event {k} is not a line of the file: {line:?}");
        };
        if i == next {
            next += 1;
            continue;
        }
        // Only a step back of at most one batch, once per kill, to a line already seen.
        assert!(
            i < next && next - i <= batch,
            "event {k} is line {i}, expected line {next} (or a repeat of at most {batch} lines)"
        );
        rewinds += 1;
        repeated += next - i;
        next = i + 1;
    }
    assert_eq!(next, want.len(), "lines from {next} on are missing");
    assert!(
        rewinds <= kills,
        "{rewinds} repeated stretches for {kills} kills"
    );
    repeated
}

/// Kills the agent with SIGKILL twice in the middle of a 200,000-line file and restarts it. With
/// the file channel holding what was committed, the channel must hold every line of the file, in
/// order, where each kill may add one repeat of at most one batch (the batch committed to the
/// channel whose position had not been written when the process died) and nothing else.
#[test]
fn sigkill_in_the_middle_of_a_large_file_loses_nothing_and_repeats_at_most_a_batch_per_kill() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let batch = 100;
    let cfg = config(d, &format!("a.sources.r1.batchSize = {batch}\n"));
    let lines = numbered("line-", 200_000);
    let path = drop_file(d, "big.log", text(&lines).as_bytes(), 10);
    let kills = 2;
    for threshold in [30_000u64, 50_000] {
        let mut run = start(d, &cfg);
        let end = Instant::now() + Duration::from_secs(60);
        while source_accepted(run.port) < threshold && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            !exists(&completed(&path)),
            "the file was finished before the kill: the test proves nothing"
        );
        run.agent.kill9();
    }
    let mut run = start(d, &cfg);
    let end = Instant::now() + Duration::from_secs(120);
    while !exists(&completed(&path)) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        exists(&completed(&path)),
        "the file was not finished in time"
    );
    assert!(run.agent.stop());
    let got = bodies(&logged_events(&d.join("log")));
    let repeated = assert_in_order_with_repeated_batches(&got, &lines, kills, batch);
    eprintln!(
        "{} events for {} lines after {kills} kills: {repeated} repeated",
        got.len(),
        lines.len()
    );
    assert_eq!(got.len(), lines.len() + repeated);
}

/// A SIGTERM in the middle of a file: the batch in flight is committed or abandoned, and the
/// restart resumes at the last committed line, so every line is in the channel exactly once.
#[test]
fn sigterm_in_the_middle_of_a_file_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = config(d, "");
    let lines = numbered("line-", 60_000);
    let path = drop_file(d, "big.log", text(&lines).as_bytes(), 10);
    let mut run = start(d, &cfg);
    let end = Instant::now() + Duration::from_secs(60);
    while source_accepted(run.port) < 10_000 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(run.agent.stop(), "SIGTERM must exit 0");
    assert!(!exists(&completed(&path)), "finished before the stop");
    let mut run = start(d, &cfg);
    wait_until("the file renamed", || exists(&completed(&path)));
    assert!(run.agent.stop());
    assert_eq!(bodies(&logged_events(&d.join("log"))), lines);
}

#[test]
fn an_unusable_state_file_is_set_aside_and_the_spool_is_read_all_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = config(d, "");
    let state = d.join("spool/.flumespool/weir-spooldir.json");
    std::fs::create_dir_all(state.parent().unwrap()).unwrap();
    std::fs::write(&state, b"{\"version\": 1, \"cur").unwrap();
    let lines = numbered("s-", 100);
    let path = drop_file(d, "a.log", text(&lines).as_bytes(), 10);
    let mut run = start(d, &cfg);
    wait_until("the file renamed", || exists(&completed(&path)));
    assert!(run.agent.stop());
    assert_eq!(bodies(&logged_events(&d.join("log"))), lines);
    let logs = agent_logs(d);
    assert!(
        logs.contains(&format!("state file {} is unusable", state.display())),
        "{logs}"
    );
    let aside = d.join("spool/.flumespool/weir-spooldir.json.corrupt");
    assert!(
        logs.contains(&format!("it was moved to {}", aside.display())),
        "{logs}"
    );
    assert_eq!(std::fs::read(&aside).unwrap(), b"{\"version\": 1, \"cur");
}

/// An agent taking a spool directory over from Flume: the file Flume was in the middle of goes
/// on at the byte Flume's channel last committed, read from Flume's position file (written
/// here by the Python `avro` package's DataFileWriter, as Flume's tracker writes it with
/// Java's), then the next file; nothing Flume delivered is sent again.
#[test]
fn an_agent_taking_over_from_flume_goes_on_where_flume_stopped() {
    if !python_modules("avro", "the Python avro package") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = config(d, "");
    let first = numbered("first-", 500);
    let second = numbered("second-", 50);
    let first_path = drop_file(d, "a.log", text(&first).as_bytes(), 200);
    let second_path = drop_file(d, "b.log", text(&second).as_bytes(), 100);
    // Flume committed 100, then 320 lines of a.log (each line is 13 bytes).
    std::fs::create_dir_all(d.join("spool/.flumespool")).unwrap();
    support::run_interop_script(
        "write_flume_position.py",
        &[
            d.join("spool/.flumespool/.flumespool-main.meta")
                .as_os_str(),
            first_path.as_os_str(),
            "1300".as_ref(),
            (320 * 13).to_string().as_ref(),
        ],
    );
    let (agent, port) = support::start_logged_with(
        d,
        &cfg,
        &["--log-level", "warn,weir::source::spooldir=info"],
    );
    let mut run = Run { agent, port };
    wait_until("both files renamed", || {
        exists(&completed(&first_path)) && exists(&completed(&second_path))
    });
    assert!(run.agent.stop(), "SIGTERM must exit 0");
    assert_eq!(
        bodies(&logged_events(&d.join("log"))),
        [&first[320..], &second[..]].concat()
    );
    let logs = agent_logs(d);
    assert!(
        logs.contains("was being read by Flume: it is read on from byte 4160"),
        "{logs}"
    );
}

#[test]
fn decode_error_policy_fail_stops_at_the_bad_byte_and_the_file_stays() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = config(d, "");
    let bad = drop_file(d, "bad.log", b"one\ntwo\nth\xffree\nfour\n", 20);
    let good = drop_file(d, "good.log", b"fine\n", 10);
    let mut run = start(d, &cfg);
    wait_until("the good file renamed", || exists(&completed(&good)));
    assert!(run.agent.stop());
    assert_eq!(
        bodies(&logged_events(&d.join("log"))),
        vec!["one", "two", "fine"]
    );
    assert!(exists(&bad) && !exists(&completed(&bad)), "left in place");
    let logs = agent_logs(d);
    assert!(
        logs.contains(&format!(
            "{}: the bytes at offset 10 are not UTF-8 (decodeErrorPolicy = FAIL)",
            bad.display()
        )),
        "{logs}"
    );
    // Not read again after a restart.
    let mut run = start(d, &cfg);
    let later = drop_file(d, "later.log", b"later\n", 0);
    wait_until("the later file renamed", || exists(&completed(&later)));
    assert!(run.agent.stop());
    assert_eq!(
        bodies(&logged_events(&d.join("log"))),
        vec!["one", "two", "fine", "later"]
    );
}

#[test]
fn decode_error_policy_replace_puts_the_replacement_character() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = config(d, "a.sources.r1.decodeErrorPolicy = REPLACE\n");
    let path = drop_file(d, "bad.log", b"one\nth\xffree\n\xe2\x82\n", 20);
    let mut run = start(d, &cfg);
    wait_until("the file renamed", || exists(&completed(&path)));
    assert!(run.agent.stop());
    assert_eq!(
        bodies(&logged_events(&d.join("log"))),
        vec!["one", "th\u{FFFD}ree", "\u{FFFD}"]
    );
}

#[test]
fn a_reused_name_is_an_error_naming_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = config(d, "");
    let earlier = drop_file(d, "day.log.COMPLETED", b"first day\n", 30);
    let path = drop_file(d, "day.log", b"second day\n", 20);
    let next = drop_file(d, "next.log", b"next\n", 10);
    let mut run = start(d, &cfg);
    wait_until("the next file renamed", || exists(&completed(&next)));
    assert!(run.agent.stop());
    assert_eq!(
        bodies(&logged_events(&d.join("log"))),
        vec!["second day", "next"]
    );
    assert_eq!(std::fs::read(&earlier).unwrap(), b"first day\n");
    assert!(exists(&path), "left in place");
    let logs = agent_logs(d);
    assert!(
        logs.contains(&format!(
            "{}: it was read to its end but cannot be renamed to {}, which exists already",
            path.display(),
            earlier.display()
        )),
        "{logs}"
    );
}

#[test]
fn configuration_errors_name_the_key_and_line() {
    let base = "a.sources = r1\na.channels = c1\na.channels.c1.type = memory\n\
                a.sources.r1.type = spooldir\na.sources.r1.channels = c1\n";
    let cases = [
        ("", "flume.properties:4: a.sources.r1.spoolDir: missing"),
        (
            "a.sources.r1.spoolDir = /tmp\na.sources.r1.deserializer = FLUME\n",
            "flume.properties:7: a.sources.r1.deserializer: 'FLUME' is not supported: the spooldir source has LINE",
        ),
        (
            "a.sources.r1.spoolDir = /tmp\na.sources.r1.inputCharset = ISO-8859-1\n",
            "flume.properties:7: a.sources.r1.inputCharset: 'ISO-8859-1' (windows-1252) is not supported",
        ),
        (
            "a.sources.r1.spoolDir = /tmp\na.sources.r1.batchSize = 500\n",
            "flume.properties:7: a.sources.r1.batchSize: batch size 500 exceeds the transactionCapacity 100 of channel c1",
        ),
    ];
    for (extra, want) in cases {
        let (ok, out) = check_config(&format!("{base}{extra}"), Some("a"));
        assert!(!ok, "accepted: {extra:?}");
        assert!(out.contains(want), "{extra:?}: {out}");
    }
    let (ok, out) = check_config(&format!("{base}a.sources.r1.spoolDir = /tmp\n"), Some("a"));
    assert!(ok, "{out}");
    assert!(out.contains("source  r1 [spooldir] -> c1"), "{out}");
}
