//! The exec source as a user runs it: the real `weir` binary running real commands, output
//! read back from a file_roll sink (or the file channel's log) and the agent's own log.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{Agent, check_config_file, free_port, output_lines, wait_until};

/// exec with `source` keys → memory channel c1 → file_roll into `dir/out`, plus `extra`.
fn config(dir: &Path, source: &str, extra: &str) -> PathBuf {
    let text = format!(
        "a.sources = r1\na.channels = c1\na.sinks = k1\n\
         a.sources.r1.type = exec\na.sources.r1.channels = c1\n{source}\n\
         a.channels.c1.type = memory\na.channels.c1.capacity = 10000\na.channels.c1.transactionCapacity = 1000\n\
         a.sinks.k1.type = file_roll\na.sinks.k1.channel = c1\na.sinks.k1.sink.directory = {d}/out\n\
         a.sinks.k1.sink.rollInterval = 0\n{extra}",
        d = dir.display()
    );
    let path = dir.join("agent.properties");
    std::fs::write(&path, text).unwrap();
    path
}

/// A running agent whose log goes to `dir/agent.log`.
struct Run {
    agent: Agent,
    log: PathBuf,
    metrics: u16,
}

impl Run {
    fn start(dir: &Path, cfg: &Path) -> Run {
        let log = dir.join("agent.log");
        let port = free_port();
        let agent = Agent::start_with(
            cfg,
            port,
            &["--metrics-port", &port.to_string(), "--log-level", "info"],
            Stdio::from(std::fs::File::create(&log).unwrap()),
        );
        Run {
            agent,
            log,
            metrics: port,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_log(&self, fragment: &str) -> String {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let log = self.log();
            if log.contains(fragment) {
                return log;
            }
            assert!(
                Instant::now() < end,
                "timed out waiting for {fragment:?} in the agent log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn wait_lines(dir: &Path, n: usize) -> Vec<String> {
    wait_until(&format!("{n} output lines"), || {
        output_lines(dir).len() >= n
    });
    output_lines(dir)
}

fn numbers(range: std::ops::RangeInclusive<u32>) -> Vec<String> {
    range.map(|i| i.to_string()).collect()
}

/// Processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(marker) {
                found.push(cmd);
            }
        }
    }
    found
}

#[test]
fn every_line_of_a_command_arrives_in_order_and_the_agent_outlives_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "a.sources.r1.command = seq 1 20000\na.sources.r1.batchSize = 100",
        "",
    );
    let mut run = Run::start(dir.path(), &cfg);
    let lines = wait_lines(dir.path(), 20000);
    assert_eq!(lines, numbers(1..=20000));
    let log = run.wait_log("restart = false");
    assert!(log.contains("command exited with status 0"), "{log}");
    assert!(
        run.agent.stop(),
        "the agent runs on after the command ended"
    );
}

#[test]
fn a_shell_runs_pipelines() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "a.sources.r1.shell = /bin/sh -c\n\
         a.sources.r1.command = seq 1 100 | grep 7 | sed 's/^/n=/'",
        "",
    );
    let mut run = Run::start(dir.path(), &cfg);
    let want: Vec<String> = (1..=100)
        .filter(|i| i.to_string().contains('7'))
        .map(|i| format!("n={i}"))
        .collect();
    run.wait_log("command exited");
    assert_eq!(wait_lines(dir.path(), want.len()), want);
    assert!(run.agent.stop());
}

#[test]
fn batch_timeout_puts_a_partial_batch_and_stop_ends_the_command() {
    let dir = tempfile::tempdir().unwrap();
    // The command prints three lines, then sleeps far longer than the test waits: the lines
    // can only come out through the batch timeout.
    let marker = format!("31.{}", std::process::id());
    let cfg = config(
        dir.path(),
        &format!(
            "a.sources.r1.shell = /bin/sh -c\n\
             a.sources.r1.command = printf 'one\\ntwo\\nthree\\n'; sleep {marker}; echo never\n\
             a.sources.r1.batchSize = 100\na.sources.r1.batchTimeout = 200"
        ),
        "",
    );
    let mut run = Run::start(dir.path(), &cfg);
    assert_eq!(wait_lines(dir.path(), 3), ["one", "two", "three"]);
    assert!(
        !processes_with(&format!("sleep {marker}")).is_empty(),
        "the command should still be running"
    );
    assert!(run.agent.stop());
    // The whole process group went, not just the shell.
    wait_until("the command's sleep to end", || {
        processes_with(&format!("sleep {marker}")).is_empty()
    });
    assert_eq!(output_lines(dir.path()), ["one", "two", "three"]);
}

#[test]
fn stop_puts_the_pending_partial_batch_into_the_channel() {
    let dir = tempfile::tempdir().unwrap();
    // A file channel and no sink: what the source put is read back from the log after stop.
    let text = format!(
        "a.sources = r1\na.channels = c1\na.sinks =\n\
         a.sources.r1.type = exec\na.sources.r1.channels = c1\na.sources.r1.shell = /bin/sh -c\n\
         a.sources.r1.command = seq 1 5; exec sleep 60\n\
         a.sources.r1.batchSize = 100\na.sources.r1.batchTimeout = 600000\n\
         a.channels.c1.type = file\na.channels.c1.checkpointDir = {d}/ckpt\na.channels.c1.dataDirs = {d}/log\n\
         a.channels.c1.minimumRequiredSpace = 0\na.channels.c1.maxFileSize = 1048576\n",
        d = dir.path().display()
    );
    let cfg = dir.path().join("agent.properties");
    std::fs::write(&cfg, text).unwrap();
    let mut run = Run::start(dir.path(), &cfg);
    run.wait_log("command started");
    // The five lines sit in the partial batch (600 s timeout), or still in the pipe, until
    // the agent stops: either way they must reach the channel.
    assert!(run.agent.stop());
    let bodies: Vec<String> = support::logged_events(&dir.path().join("log"))
        .iter()
        .map(|e| String::from_utf8_lossy(&e.body).into_owned())
        .collect();
    assert_eq!(bodies, numbers(1..=5));
}

#[test]
fn a_command_that_cannot_start_is_reported_and_the_agent_keeps_running() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "a.sources.r1.command = /nonexistent/weir-test-command --flag\n\
         a.sources.r1.restart = true\na.sources.r1.restartThrottle = 50",
        "",
    );
    let mut run = Run::start(dir.path(), &cfg);
    let log = run.wait_log("cannot start the command");
    assert!(
        log.contains("/nonexistent/weir-test-command") && log.contains("No such file"),
        "{log}"
    );
    // It keeps trying (restart = true) and the agent keeps running.
    wait_until("a second attempt", || {
        run.log().matches("cannot start the command").count() >= 2
    });
    // Each failed start is one of Flume's GenericProcessingFail.
    let failed = support::metric(run.metrics, "SOURCE.r1", "GenericProcessingFail");
    assert!(failed.is_some_and(|n| n >= 2), "{failed:?}");
    assert!(
        run.agent.stop(),
        "the agent must still be running and stop cleanly"
    );
}

#[test]
fn restart_runs_the_command_again_after_it_exits() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "a.sources.r1.shell = /bin/sh -c\na.sources.r1.command = echo run; exit 3\n\
         a.sources.r1.restart = true\na.sources.r1.restartThrottle = 100",
        "",
    );
    let mut run = Run::start(dir.path(), &cfg);
    let lines = wait_lines(dir.path(), 3);
    assert!(lines.iter().all(|l| l == "run"), "{lines:?}");
    assert!(run.agent.stop());
    let log = run.log();
    assert!(
        log.contains("command exited with a failure") && log.contains("exit status: 3"),
        "{log}"
    );
    assert!(log.contains("restarting the command"), "{log}");
}

#[test]
fn stderr_is_logged_only_with_log_std_err() {
    for log_stderr in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(
            dir.path(),
            &format!(
                "a.sources.r1.shell = /bin/sh -c\n\
                 a.sources.r1.command = echo to-stdout; echo complaint-$((40 + 2)) >&2\n\
                 a.sources.r1.logStdErr = {log_stderr}"
            ),
            "",
        );
        let mut run = Run::start(dir.path(), &cfg);
        run.wait_log("command exited");
        assert_eq!(wait_lines(dir.path(), 1), ["to-stdout"]);
        assert!(run.agent.stop());
        let log = run.log();
        // The shell computes the text, so only the stderr line itself can contain it.
        assert_eq!(
            log.contains("complaint-42"),
            log_stderr,
            "logStdErr = {log_stderr}:\n{log}"
        );
    }
}

#[test]
fn a_full_channel_holds_the_command_back_without_losing_lines() {
    let dir = tempfile::tempdir().unwrap();
    // A small channel that fails puts at once, and a sink that cannot write at first.
    // The command waits for `go`, so the sink is broken before the first line.
    let go = dir.path().join("go");
    let cfg = config(
        dir.path(),
        &format!(
            "a.sources.r1.shell = /bin/sh -c\n\
             a.sources.r1.command = while [ ! -e {} ]; do sleep 0.05; done; seq 1 3000\n\
             a.sources.r1.batchSize = 20",
            go.display()
        ),
        "a.channels.c1.capacity = 50\na.channels.c1.transactionCapacity = 20\n\
         a.channels.c1.keep-alive = 0\na.sinks.k1.sink.batchSize = 20\n",
    );
    let mut run = Run::start(dir.path(), &cfg);
    let out = dir.path().join("out");
    std::fs::remove_dir(&out).unwrap();
    std::fs::write(&out, b"not a directory").unwrap();
    std::fs::write(&go, b"").unwrap();
    run.wait_log("channel refused a batch; retrying");
    std::fs::remove_file(&out).unwrap();
    std::fs::create_dir(&out).unwrap();
    assert_eq!(wait_lines(dir.path(), 3000), numbers(1..=3000));
    assert!(run.agent.stop());
}

#[test]
fn config_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &[&str])] = &[
        ("", &["a.sources.r1.command", "missing"]),
        (
            "a.sources.r1.command = true\na.sources.r1.charset = UTF-16",
            &["a.sources.r1.charset", "ASCII-compatible"],
        ),
        (
            "a.sources.r1.command = true\na.sources.r1.charset = klingon",
            &["a.sources.r1.charset", "klingon"],
        ),
        (
            "a.sources.r1.command = true\na.sources.r1.batchSize = 0",
            &["a.sources.r1.batchSize", "greater than 0"],
        ),
        (
            "a.sources.r1.command = true\na.sources.r1.restart = sometimes",
            &["a.sources.r1.restart", "true or false"],
        ),
    ];
    for (source, want) in cases {
        let cfg = config(dir.path(), source, "");
        let (ok, text) = check_config_file(&cfg, Some("a"));
        assert!(!ok, "accepted: {source}");
        for w in *want {
            assert!(text.contains(w), "{source}: {w:?} not in {text}");
        }
    }
    let cfg = config(
        dir.path(),
        "a.sources.r1.type = org.apache.flume.source.ExecSource\n\
         a.sources.r1.command = tail -F /var/log/x\na.sources.r1.charset = ISO-8859-1",
        "",
    );
    let (ok, text) = check_config_file(&cfg, Some("a"));
    assert!(ok, "{text}");
    assert!(text.contains("source  r1 [exec] -> c1"), "{text}");
}

/// How an agent life ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Kill,
    Stop,
}

/// Lines `sigkill_cycles_keep_every_committed_line` parses: `line N run R PAD`.
fn parse_numbered(line: &str, pad: &str) -> Option<(u64, usize)> {
    let rest = line.strip_prefix("line ")?;
    let (n, rest) = rest.split_once(" run ")?;
    let (r, p) = rest.split_once(' ')?;
    let (n, r): (u64, usize) = (n.parse().ok()?, r.parse().ok()?);
    // The canonical form only: no sign, no leading zero, the pad exactly.
    (p == pad && line == format!("line {n} run {r} {pad}")).then_some((n, r))
}

/// Whether process `pid` still runs (a zombie, left unreaped by a dead parent, does not).
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
}

/// Kills, when dropped, the process group of every command run recorded in `runs` that still
/// runs, so that a failing test leaves no shell loop behind. A pid is only signalled if its
/// command line still names `marker` (the test's own directory), in case it was reused.
struct KillCommandsOnDrop {
    runs: PathBuf,
    marker: String,
}

impl KillCommandsOnDrop {
    /// `(pid, first number)` of each run of the command so far, in order.
    fn runs(&self) -> Vec<(i32, u64)> {
        std::fs::read_to_string(&self.runs)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let (pid, start) = l.split_once(' ').unwrap_or_else(|| panic!("runs: {l:?}"));
                (pid.parse().unwrap(), start.parse().unwrap())
            })
            .collect()
    }

    fn kill(&self, pid: i32) {
        let ours = std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&self.marker));
        if ours
            && running(pid)
            && let Some(group) = rustix::process::Pid::from_raw(pid)
        {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
    }
}

impl Drop for KillCommandsOnDrop {
    fn drop(&mut self) {
        // No panic here: this may run while a failed assertion unwinds.
        let runs = std::fs::read_to_string(&self.runs).unwrap_or_default();
        for pid in runs
            .lines()
            .filter_map(|l| l.split(' ').next()?.parse().ok())
        {
            self.kill(pid);
        }
    }
}

/// SIGKILL mid-stream, restart, repeat; then a clean stop, and a last life that only drains.
///
/// The exec source acknowledges nothing to its command, so "acknowledged" here means "in the
/// channel's log": after the last clean stop the log is read back with the library, and it is
/// what was committed (a batch whose frame reached the log counts, even if the kill came
/// before its put returned: recovery keeps it). The command numbers its lines from a counter
/// file outside the agent, so each run goes on where the previous one stopped printing. It
/// appends to that file after printing each line (an append cannot be left half written by a
/// kill); it records `pid first-number` per run in `runs` and tags its lines with its run
/// number, so the test knows where every run started and ended. The batch timeout is off, so
/// every batch put before a kill is exactly `batchSize` lines and a split batch is visible.
///
/// Guaranteed, and asserted:
/// - Every line in the log is delivered by the sink, and nothing else is: the output, with
///   re-deliveries dropped, is the log in order. Re-deliveries are at most one sink batch per
///   kill. A kill can tear the line the sink was writing: that shows only as a fragment at the
///   end of the killed life's file, a prefix of a committed line (which is delivered again).
/// - No line in the log or in the output is corrupted.
/// - Within a run, the committed lines are the command's lines in order, none left out: only
///   the end of a run can lose lines.
/// - A committed batch is never split: a run ended by SIGKILL committed whole batches.
/// - A clean stop loses nothing the command printed.
/// - A kill loses only what the agent held uncommitted: the batch being filled or put
///   (`batchSize`), the reader's queue (`batchSize`, at least 16) and the line in its hand, its
///   64 KiB read buffer, and the pipe (16 pages).
///
/// Not guaranteed: that a kill loses at most `batchSize` lines. The agent reads the command's
/// output ahead of its commits and cannot tell the command what was committed, so what it had
/// read and what sat in the pipe at the kill are gone; with the channel slower than the
/// command (an fsync per 10-line batch) that is hundreds of lines per kill here. Nor is a line
/// delivered exactly once (re-deliveries after a kill), nor printed once: a command killed
/// between printing a line and counting it prints that number again in its next run.
#[test]
fn sigkill_cycles_keep_every_committed_line() {
    const BATCH: usize = 10;
    const SINK_BATCH: usize = 50;
    const KILLS: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pad = "x".repeat(200);
    std::fs::write(d.join("next"), "0\n").unwrap();
    std::fs::write(d.join("runs"), "").unwrap();
    let dd = d.display();
    // `done` makes the last run print nothing, so that it only drains the channel.
    let command = format!(
        "[ -e {dd}/done ] && exit 0; n=$(tail -n 1 {dd}/next); echo $$ $n >> {dd}/runs; \
         r=$(wc -l < {dd}/runs); \
         while :; do echo \"line $n run $r {pad}\" || exit 1; n=$((n + 1)); echo $n >> {dd}/next; done"
    );
    let text = format!(
        "a.sources = r1\na.channels = c1\na.sinks = k1\n\
         a.sources.r1.type = exec\na.sources.r1.channels = c1\na.sources.r1.shell = /bin/sh -c\n\
         a.sources.r1.command = {command}\n\
         a.sources.r1.restart = true\na.sources.r1.restartThrottle = 1000\n\
         a.sources.r1.batchSize = {BATCH}\na.sources.r1.batchTimeout = 600000\n\
         a.channels.c1.type = file\na.channels.c1.checkpointDir = {dd}/ckpt\na.channels.c1.dataDirs = {dd}/log\n\
         a.channels.c1.minimumRequiredSpace = 0\n\
         a.sinks.k1.type = file_roll\na.sinks.k1.channel = c1\na.sinks.k1.sink.directory = {dd}/out\n\
         a.sinks.k1.sink.rollInterval = 0\na.sinks.k1.sink.batchSize = {SINK_BATCH}\n"
    );
    let cfg = d.join("agent.properties");
    std::fs::write(&cfg, text).unwrap();
    let commands = KillCommandsOnDrop {
        runs: d.join("runs"),
        marker: dd.to_string(),
    };

    // Each life: start, wait for the command, let it run a random while, end it.
    let mut ends = Vec::new();
    let lives = std::iter::repeat_n(End::Kill, KILLS).chain([End::Stop]);
    for (i, end) in lives.enumerate() {
        let before = commands.runs().len();
        let port = free_port();
        let mut agent = Agent::start_with(
            &cfg,
            port,
            &["--metrics-port", &port.to_string(), "--log-level", "info"],
            Stdio::from(std::fs::File::create(d.join(format!("agent-{i}.log"))).unwrap()),
        );
        wait_until("the command to start", || commands.runs().len() > before);
        std::thread::sleep(Duration::from_millis(fastrand::u64(200..700)));
        match end {
            End::Kill => agent.kill9(),
            End::Stop => assert!(agent.stop(), "SIGTERM must exit 0"),
        }
        let runs = commands.runs();
        assert_eq!(
            runs.len(),
            before + 1,
            "one run of the command per agent life"
        );
        let (pid, _) = runs[before];
        // Its next write finds the pipe closed; a stop ends its process group anyway.
        let gone = {
            let deadline = Instant::now() + Duration::from_secs(10);
            while running(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            !running(pid)
        };
        if !gone {
            commands.kill(pid);
            panic!("the command (pid {pid}) outlived its agent ({end:?})");
        }
        ends.push(end);
    }
    // Where the command would go on: the end of the last run.
    let next: u64 = std::fs::read_to_string(d.join("next"))
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .parse()
        .unwrap();

    let committed = || support::logged_events(&d.join("log"));
    let log = committed();
    assert!(!log.is_empty(), "nothing was committed");
    assert_eq!(
        log.first().map(|e| e.offset),
        Some(0),
        "the log no longer holds its first events: raise maxFileSize"
    );
    let log: Vec<String> = log
        .into_iter()
        .map(|e| String::from_utf8_lossy(&e.body).into_owned())
        .collect();

    // The last life prints nothing and drains the channel into the sink.
    std::fs::write(d.join("done"), "").unwrap();
    let port = free_port();
    let mut agent = Agent::start_with(
        &cfg,
        port,
        &["--metrics-port", &port.to_string(), "--log-level", "info"],
        Stdio::from(std::fs::File::create(d.join("agent-drain.log")).unwrap()),
    );
    let want: std::collections::HashSet<&str> = log.iter().map(String::as_str).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let got = output_lines(d);
        let got: std::collections::HashSet<&str> = got.iter().map(String::as_str).collect();
        if want.is_subset(&got) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(agent.stop(), "SIGTERM must exit 0");
    assert_eq!(
        commands.runs().len(),
        KILLS + 1,
        "the draining life ran the command"
    );
    let after: Vec<String> = committed()
        .into_iter()
        .map(|e| String::from_utf8_lossy(&e.body).into_owned())
        .collect();
    assert!(
        after == log,
        "the draining life committed lines: {} in the log, {} before",
        after.len(),
        log.len()
    );

    // The log: uncorrupted, each run's lines in order from where it started, none left out.
    let runs = commands.runs();
    let mut per_run = vec![0usize; runs.len()];
    let mut last_run = 0;
    for (offset, body) in log.iter().enumerate() {
        let Some((n, r)) = parse_numbered(body, &pad) else {
            panic!("corrupted line at log offset {offset}: {body:?}");
        };
        assert!(
            (1..=runs.len()).contains(&r) && r >= last_run,
            "log offset {offset}: run {r} after run {last_run}"
        );
        let expected = runs[r - 1].1 + per_run[r - 1] as u64;
        assert_eq!(
            n, expected,
            "log offset {offset}: run {r} committed line {n} where {expected} was next"
        );
        per_run[r - 1] += 1;
        last_run = r;
    }
    // What each run printed and did not commit: its end is where the next run began (or the
    // counter, for the last). A run killed between printing a line and counting it prints that
    // line again in the next run, so a run may have committed one line past its end.
    let page: usize = String::from_utf8(
        std::process::Command::new("getconf")
            .arg("PAGESIZE")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    let shortest = format!("line 0 run 1 {pad}\n").len();
    let read_ahead = 64 * 1024 + 16 * page;
    let most_lost = (BATCH + BATCH.max(16) + 1 + read_ahead.div_ceil(shortest) + 1) as u64;
    let mut lost = Vec::new();
    for (i, ((_, start), end)) in runs.iter().zip(&ends).enumerate() {
        let run_end = runs.get(i + 1).map_or(next, |r| r.1);
        let done = start + per_run[i] as u64;
        assert!(
            done <= run_end + 1,
            "run {} committed up to {done} but printed only up to {run_end}",
            i + 1
        );
        let gap = run_end.saturating_sub(done);
        match end {
            End::Kill => {
                assert_eq!(
                    per_run[i] % BATCH,
                    0,
                    "run {} (killed) committed {} lines: a batch was split",
                    i + 1,
                    per_run[i]
                );
                assert!(
                    gap <= most_lost,
                    "run {} lost {gap} lines at its kill, more than the agent can hold \
                     uncommitted ({most_lost}: a batch, the reader's queue and buffer, the pipe)",
                    i + 1
                );
            }
            End::Stop => assert_eq!(gap, 0, "run {} lost lines at a clean stop", i + 1),
        }
        lost.push(gap);
    }

    // The output: the log in order once re-deliveries are dropped.
    let mut files: Vec<PathBuf> = std::fs::read_dir(d.join("out"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort_by_key(|p| {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let (ms, n) = name.split_once('-').unwrap_or((&name, "0"));
        (
            ms.parse::<u64>().unwrap_or(0),
            n.parse::<u64>().unwrap_or(0),
        )
    });
    let mut delivered = Vec::new();
    let mut fragments = 0;
    for (i, f) in files.iter().enumerate() {
        let text = String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned();
        // A kill mid-write leaves a part of the sink's batch: whole lines, then a fragment.
        let (whole, tail) = text.split_at(text.rfind('\n').map_or(0, |end| end + 1));
        if !tail.is_empty() {
            assert!(
                i + 1 < files.len() && log.iter().any(|l| l.starts_with(tail)),
                "{}: ends in {tail:?}, not a line torn by a kill",
                f.display()
            );
            fragments += 1;
        }
        for line in whole.split_terminator('\n') {
            assert!(
                parse_numbered(line, &pad).is_some(),
                "{}: corrupted line {line:?}",
                f.display()
            );
            delivered.push(line.to_owned());
        }
    }
    let mut seen = std::collections::HashSet::new();
    let first: Vec<&String> = delivered.iter().filter(|l| seen.insert(*l)).collect();
    let missing: Vec<&str> = log
        .iter()
        .filter(|l| !seen.contains(l))
        .map(|l| l.trim_end_matches('x'))
        .collect();
    assert!(
        missing.is_empty(),
        "{} committed lines never delivered, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(3)]
    );
    let extra = first.len() - log.len();
    assert_eq!(extra, 0, "{extra} delivered lines were never committed");
    if let Some(i) = first.iter().zip(&log).position(|(a, b)| *a != b) {
        panic!(
            "delivered out of order: {:?} where the log has {:?}",
            first[i].trim_end_matches('x'),
            log[i].trim_end_matches('x')
        );
    }
    let repeats = delivered.len() - first.len();
    assert!(
        repeats <= KILLS * SINK_BATCH,
        "{repeats} re-deliveries: more than a sink batch per kill"
    );
    eprintln!(
        "{KILLS} kills: {} lines committed, lost at each kill {:?} (at most {most_lost}), \
         {repeats} re-delivered, {fragments} torn by a kill",
        log.len(),
        &lost[..KILLS]
    );
}
