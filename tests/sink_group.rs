//! Sink groups with the real `weir` binary: a netcat client, a file channel, and file_roll sinks
//! grouped by a failover or a load_balance processor.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{Agent, Client, check_config_file, free_port, wait_until};

/// netcat on `port` → file channel in `dir` → two file_roll sinks k1 (into `dir/<out1>`) and
/// k2 (into `dir/<out2>`), grouped as `group` says.
fn config(dir: &Path, port: u16, out1: &str, out2: &str, group: &str) -> PathBuf {
    let text = format!(
        "a.sources = r1\na.channels = c1\na.sinks = k1 k2\n\
         a.sources.r1.type = netcat\na.sources.r1.bind = 127.0.0.1\na.sources.r1.port = {port}\na.sources.r1.channels = c1\n\
         a.channels.c1.type = file\na.channels.c1.checkpointDir = {d}/ckpt\na.channels.c1.dataDirs = {d}/log\n\
         a.channels.c1.minimumRequiredSpace = 0\na.channels.c1.maxFileSize = 1048576\n\
         a.sinks.k1.type = file_roll\na.sinks.k1.channel = c1\na.sinks.k1.sink.directory = {d}/{out1}\n\
         a.sinks.k1.sink.batchSize = 20\na.sinks.k1.sink.rollInterval = 1\n\
         a.sinks.k2.type = file_roll\na.sinks.k2.channel = c1\na.sinks.k2.sink.directory = {d}/{out2}\n\
         a.sinks.k2.sink.batchSize = 20\na.sinks.k2.sink.rollInterval = 1\n\
         a.sinkgroups = g1\na.sinkgroups.g1.sinks = k1 k2\n{group}",
        d = dir.display()
    );
    let path = dir.join("agent.properties");
    std::fs::write(&path, text).expect("write config");
    path
}

/// Every line file_roll wrote into `dir` (any order); none if `dir` is not a directory.
fn lines_in(dir: &Path) -> Vec<String> {
    support::file_roll_lines(dir)
}

/// How many times each line occurs across `dirs`.
fn counts(dirs: &[PathBuf]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for d in dirs {
        for l in lines_in(d) {
            *out.entry(l).or_insert(0) += 1;
        }
    }
    out
}

/// Waits (generously) until every line of `want` is somewhere in `dirs`.
fn wait_for_all(dirs: &[PathBuf], want: &[String]) -> BTreeMap<String, usize> {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let got = counts(dirs);
        if want.iter().all(|w| got.contains_key(w)) || Instant::now() > end {
            return got;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn missing<'a>(got: &BTreeMap<String, usize>, want: &'a [String]) -> Vec<&'a String> {
    want.iter().filter(|w| !got.contains_key(*w)).collect()
}

/// Sends `lines`; every one must be acknowledged (the channel accepts regardless of the sinks).
fn send_all(client: &mut Client, lines: &[String]) {
    for l in lines {
        assert!(client.send(l), "line {l} was not acknowledged");
    }
}

fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:04}")).collect()
}

/// A sink counter from `GET /metrics`; fails the test when it cannot be read.
fn sink_counter(metrics_port: u16, sink: &str, counter: &str) -> u64 {
    support::metric(metrics_port, &format!("SINK.{sink}"), counter)
        .unwrap_or_else(|| panic!("no {counter} for SINK.{sink} in the metrics"))
}

#[test]
fn failover_moves_to_the_backup_without_loss_and_back_when_the_primary_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let port = free_port();
    let metrics = free_port();
    // k1 has the higher priority; a short maxpenalty keeps the recovery phase quick.
    let cfg = config(
        d,
        port,
        "primary",
        "backup",
        "a.sinkgroups.g1.processor.type = failover\n\
         a.sinkgroups.g1.processor.priority.k1 = 10\na.sinkgroups.g1.processor.priority.k2 = 5\n\
         a.sinkgroups.g1.processor.maxpenalty = 2000\n",
    );
    let (ok, shown) = check_config_file(&cfg, Some("a"));
    assert!(ok, "{shown}");
    assert!(
        shown.contains(
            "group   g1 [failover, maxpenalty 2000 ms] k1 (priority 10) > k2 (priority 5)"
        ),
        "{shown}"
    );

    let log = std::fs::File::create(d.join("agent.log")).expect("log file");
    let mut agent = Agent::start_with(
        &cfg,
        port,
        &["--metrics-port", &metrics.to_string()],
        Stdio::from(log),
    );
    let mut client = Client::new(port);
    let (primary, backup, moved) = (d.join("primary"), d.join("backup"), d.join("primary.old"));
    let all = [primary.clone(), moved.clone(), backup.clone()];

    // 1. The higher-priority sink takes everything.
    let first = numbered("first", 100);
    send_all(&mut client, &first);
    let got = wait_for_all(std::slice::from_ref(&primary), &first);
    assert!(missing(&got, &first).is_empty(), "primary lacks lines");
    assert!(
        lines_in(&backup).is_empty(),
        "the backup sink ran while the primary was fine"
    );

    // 2. The primary's directory becomes a regular file: k1 fails at its next file roll. What
    // it already wrote moves with the directory.
    std::fs::rename(&primary, &moved).expect("move the primary directory away");
    std::fs::write(&primary, b"not a directory").expect("block the primary path");
    // Lines keep coming until k1 has tried to deliver and failed.
    let mut during = Vec::new();
    wait_until("k1 has failed", || {
        let line = format!("during-{:04}", during.len());
        assert!(client.send(&line), "line {line} was not acknowledged");
        during.push(line);
        std::thread::sleep(Duration::from_millis(20));
        sink_counter(metrics, "k1", "RollbackCount") > 0
    });
    let later = numbered("later", 100);
    send_all(&mut client, &later);
    let got = wait_for_all(std::slice::from_ref(&backup), &later);
    assert!(
        missing(&got, &later).is_empty(),
        "lines sent after k1 failed must all be in the backup"
    );
    let got = wait_for_all(&all, &during);
    assert!(
        missing(&got, &during).is_empty(),
        "lines sent while k1 was failing are lost: {:?}",
        missing(&got, &during)
    );
    // A line is in the file a moment before its take commits and is counted.
    wait_until("k2 counts what it delivered", || {
        sink_counter(metrics, "k2", "EventDrainSuccessCount") >= later.len() as u64
    });

    // 3. The primary's directory is back: after its penalty k1 delivers again, and is the
    // active sink once more.
    std::fs::remove_file(&primary).expect("unblock");
    std::fs::create_dir(&primary).expect("recreate the primary directory");
    let mut recovered = Vec::new();
    let mut i = 0;
    wait_until("k1 delivers again", || {
        let line = format!("after-{i:04}");
        i += 1;
        assert!(client.send(&line), "line {line} was not acknowledged");
        recovered.push(line);
        std::thread::sleep(Duration::from_millis(20));
        !lines_in(&primary).is_empty()
    });
    let last = numbered("last", 50);
    send_all(&mut client, &last);
    let got = wait_for_all(std::slice::from_ref(&primary), &last);
    assert!(
        missing(&got, &last).is_empty(),
        "after recovering, the higher-priority sink is active again"
    );

    assert!(agent.stop(), "SIGTERM must exit 0");
    let every: Vec<String> = [first, during, later, recovered, last].concat();
    let got = counts(&all);
    assert!(
        missing(&got, &every).is_empty(),
        "{} acknowledged lines lost, e.g. {:?}",
        missing(&got, &every).len(),
        missing(&got, &every).iter().take(5).collect::<Vec<_>>()
    );
    assert_eq!(
        got.len(),
        every.len(),
        "lines nobody sent appeared in the output"
    );
    let log = std::fs::read_to_string(d.join("agent.log")).unwrap_or_default();
    assert!(log.contains("moved to the failed set"), "{log}");
    eprintln!(
        "primary {} (+{} before it failed), backup {}; agent log:\n{log}",
        lines_in(&primary).len(),
        lines_in(&moved).len(),
        lines_in(&backup).len()
    );
}

#[test]
fn load_balance_round_robin_spreads_events_and_the_union_is_exactly_what_was_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let port = free_port();
    let cfg = config(
        d,
        port,
        "lb1",
        "lb2",
        "a.sinkgroups.g1.processor.type = load_balance\na.sinkgroups.g1.processor.selector = round_robin\n",
    );
    let mut agent = Agent::start(&cfg, port);
    let sent = numbered("lb", 400);
    // Two connections, so events arrive faster than one sink cycle now and then.
    let halves: Vec<Vec<String>> = sent.chunks(200).map(<[String]>::to_vec).collect();
    let senders: Vec<_> = halves
        .into_iter()
        .map(|lines| {
            std::thread::spawn(move || {
                let mut client = Client::new(port);
                lines.iter().all(|l| client.send(l))
            })
        })
        .collect();
    for s in senders {
        assert!(
            s.join().expect("sender thread"),
            "a line was not acknowledged"
        );
    }
    let (lb1, lb2) = (d.join("lb1"), d.join("lb2"));
    let dirs = [lb1.clone(), lb2.clone()];
    let got = wait_for_all(&dirs, &sent);
    assert!(agent.stop(), "SIGTERM must exit 0");
    let got = if missing(&got, &sent).is_empty() {
        counts(&dirs)
    } else {
        got
    };
    assert!(missing(&got, &sent).is_empty(), "lines lost");
    let duplicated: Vec<_> = got.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicated.is_empty(), "duplicates: {duplicated:?}");
    assert_eq!(got.len(), sent.len(), "lines nobody sent appeared");
    let (n1, n2) = (lines_in(&lb1).len(), lines_in(&lb2).len());
    assert!(n1 > 0 && n2 > 0, "one sink got nothing: {n1} and {n2}");
    eprintln!("lb1 got {n1} lines, lb2 {n2}");
}
