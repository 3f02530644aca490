//! The exec source as a user runs it: the real `weir` binary running real commands, output
//! read back from a file_roll sink (or the file channel's log) and the agent's own log.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{Agent, free_port};

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
        Run { agent, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_log(&self, fragment: &str) -> String {
        wait_until(&format!("{fragment:?} in the agent log"), || {
            self.log().contains(fragment)
        });
        self.log()
    }
}

/// Every line file_roll wrote into `dir/out` (one file: rollInterval = 0).
fn output_lines(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir.join("out")) else {
        return vec![];
    };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
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
    let mut bodies = Vec::new();
    weir::wal::inspect::dump(
        &dir.path().join("log"),
        0,
        u64::MAX,
        |e| bodies.push(String::from_utf8_lossy(&e.body).into_owned()),
        |p| panic!("damaged log: {p}"),
    )
    .unwrap();
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
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["agent", "--check", "-n", "a", "-f"])
            .arg(&cfg)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "accepted: {source}");
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
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["agent", "--check", "-n", "a", "-f"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("source  r1 [exec] -> c1"));
}
