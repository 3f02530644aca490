//! The agent as a user runs it: the real `weir` binary, real TCP clients, Flume properties files.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Agent, Client, check_config, free_port};

/// netcat on `port` → file channel in `dir` → file_roll into `dir/out`, plus `extra` lines.
fn config(dir: &Path, port: u16, extra: &str) -> std::path::PathBuf {
    let text = format!(
        "a.sources = r1\na.channels = c1\na.sinks = k1\n\
         a.sources.r1.type = netcat\na.sources.r1.bind = 127.0.0.1\na.sources.r1.port = {port}\na.sources.r1.channels = c1\n\
         a.channels.c1.type = file\na.channels.c1.checkpointDir = {d}/ckpt\na.channels.c1.dataDirs = {d}/log\n\
         a.channels.c1.minimumRequiredSpace = 0\na.channels.c1.maxFileSize = 1048576\n\
         a.sinks.k1.type = file_roll\na.sinks.k1.channel = c1\na.sinks.k1.sink.directory = {d}/out\n\
         a.sinks.k1.sink.batchSize = 50\na.sinks.k1.sink.rollInterval = 1\n{extra}",
        d = dir.display()
    );
    let path = dir.join("agent.properties");
    std::fs::write(&path, text).unwrap();
    path
}

/// Every line file_roll wrote, in file order.
fn output_lines(dir: &Path) -> Vec<Vec<u8>> {
    support::file_roll_raw_lines(&dir.join("out"))
}

fn text_lines(dir: &Path) -> Vec<String> {
    support::file_roll_lines(&dir.join("out"))
}

/// Waits until `pred` holds on the output (the sink runs asynchronously).
fn wait_output(dir: &Path, pred: impl Fn(&[String]) -> bool) -> Vec<String> {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let lines = text_lines(dir);
        if pred(&lines) || Instant::now() > end {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn concurrent_clients_clean_stop_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(dir.path(), port, "");
    let mut agent = Agent::start(&cfg, port);
    let senders: Vec<_> = (0..4)
        .map(|c| {
            std::thread::spawn(move || {
                let mut client = Client::new(port);
                (0..200)
                    .map(|i| format!("conn-{c}-line-{i:04}"))
                    .filter(|l| client.send(l))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let acked: Vec<String> = senders
        .into_iter()
        .flat_map(|s| s.join().unwrap())
        .collect();
    assert_eq!(acked.len(), 800, "every line should be OK");
    // The stop lets the sink finish its batch, not drain the channel: wait for the output.
    wait_output(dir.path(), |l| l.len() >= 800);
    let start = Instant::now();
    assert!(agent.stop(), "SIGTERM must exit 0");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "stop took {:?}",
        start.elapsed()
    );
    let lines = text_lines(dir.path());
    for c in 0..4 {
        let mine: Vec<&String> = lines
            .iter()
            .filter(|l| l.starts_with(&format!("conn-{c}-")))
            .collect();
        let want: Vec<String> = (0..200).map(|i| format!("conn-{c}-line-{i:04}")).collect();
        assert_eq!(
            mine,
            want.iter().collect::<Vec<_>>(),
            "connection {c}: missing or out of order"
        );
    }

    // A restart resumes exactly where the clean stop left off: nothing again, nothing lost.
    let mut agent = Agent::start(&cfg, port);
    let mut client = Client::new(port);
    for i in 0..50 {
        assert!(client.send(&format!("after-{i}")));
    }
    let lines = wait_output(dir.path(), |l| l.len() >= 850);
    assert!(agent.stop());
    let lines = if lines.len() >= 850 {
        text_lines(dir.path())
    } else {
        lines
    };
    assert_eq!(
        lines.len(),
        850,
        "duplicates or losses across a clean restart"
    );
}

/// SIGINT (Ctrl-C) and SIGHUP (the terminal closing; the JVM running Flume stops cleanly on it
/// too) stop the agent as SIGTERM does: every acknowledged line is kept, the exit status is 0.
/// A closing terminal sends SIGHUP more than once, and a logout may follow SIGTERM with it:
/// neither forces the exit.
#[test]
fn sigint_and_sighup_stop_the_agent_cleanly() {
    for signal in ["INT", "HUP", "HUP HUP", "TERM HUP"] {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let cfg = config(dir.path(), port, "");
        let mut agent = Agent::start(&cfg, port);
        let mut client = Client::new(port);
        let lines: Vec<String> = (0..30).map(|i| format!("{signal}-{i}")).collect();
        assert!(lines.iter().all(|l| client.send(l)));
        assert!(
            agent.stop_with(signal),
            "SIG{signal} must stop the agent with 0"
        );
        let mut agent = Agent::start(&cfg, port);
        let out = wait_output(dir.path(), |l| l.len() >= lines.len());
        assert!(agent.stop());
        assert_eq!(out, lines, "after SIG{signal} and a restart");
    }
}

/// The "stopping" line names the signal and the process that sent it: an operator who did
/// not stop the agent wants to know who did.
#[test]
fn the_stop_is_logged_with_its_signal_and_sender() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), free_port(), "");
    let (mut agent, _) = support::start_logged_with(dir.path(), &cfg, &["--log-level", "info"]);
    let pid = rustix::process::Pid::from_raw(agent.pid() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
    // A second SIGHUP (sent by `kill`) neither forces the exit nor replaces the first sender.
    assert!(agent.stop_with("HUP"));
    let text = support::agent_logs(dir.path());
    let expected = format!("stopping on SIGHUP from pid {}:", std::process::id());
    assert!(text.contains(&expected), "expected {expected:?} in {text}");
}

/// A client sending over-long lines gets a FAILED reply for each, and the log a line for the
/// first only (then at most one a minute): one line per refused line flooded the log (5,000
/// lines in 0.4 s in the disk-full audit).
#[test]
fn over_long_netcat_lines_are_each_refused_and_logged_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(dir.path(), port, "a.sources.r1.max-line-length = 16\n");
    let (mut agent, _) = support::start_logged_with(dir.path(), &cfg, &["--log-level", "info"]);
    let mut client = Client::new(port);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !client.send("first") {
        assert!(
            Instant::now() < deadline,
            "the netcat source never answered"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for i in 0..50 {
        let reply = client.send_bytes(format!("{i:040}").as_bytes());
        assert!(
            reply
                .as_deref()
                .is_some_and(|r| r.starts_with("FAILED: Event exceeds")),
            "line {i}: {reply:?}"
        );
    }
    assert!(client.send("short"));
    assert!(agent.stop());
    let text = support::agent_logs(dir.path());
    assert_eq!(text.matches("line too long; refused").count(), 1, "{text}");
}

/// An agent started under `nohup` keeps running when the terminal closes (SIGHUP), as Flume's
/// JVM does: an ignored SIGHUP stays ignored.
#[test]
fn an_agent_under_nohup_ignores_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(dir.path(), port, "");
    let mut agent = Agent::start_under(&["nohup"], &cfg, port, Stdio::inherit());
    let mut client = Client::new(port);
    assert!(client.send("before"));
    let pid = agent.pid();
    let hup = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status();
    assert!(hup.unwrap().success());
    std::thread::sleep(Duration::from_millis(300));
    assert!(agent.running(), "SIGHUP must not stop an agent under nohup");
    assert!(
        client.send("after"),
        "the agent must still serve after SIGHUP"
    );
    assert_eq!(
        wait_output(dir.path(), |l| l.len() >= 2),
        ["before", "after"]
    );
    assert!(agent.stop(), "SIGTERM must exit 0");
}

/// A segment the process may not write whole (`ulimit -f` below the segment a large put needs)
/// fails that put with an error that says so, to the client and in the log; the agent serves
/// on. SIGXFSZ used to kill it, with no message and a half-made segment left behind.
#[test]
fn a_segment_over_the_file_size_limit_fails_its_put_not_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let cfg = config(d, port, "a.sources.r1.max-line-length = 20000000\n");
    let log = std::fs::File::create(d.join("agent.log")).unwrap();
    // bash counts in KiB: 10,000 KiB, above the 1 MiB segments, below a 12 MB frame's segment.
    let mport = free_port();
    let launcher = format!("ulimit -f 10000; exec \"$0\" \"$@\" --metrics-port {mport}");
    let limit = ["bash", "-c", &launcher];
    let mut agent = Agent::start_under(&limit, &cfg, port, Stdio::from(log));
    let channel = |name| support::metric(mport, "CHANNEL.c1", name);
    let mut client = Client::new(port);
    assert!(client.send("small-1"));
    let big = vec![b'x'; 12_000_000];
    let reply = client.send_bytes(&big).expect("a reply to the large line");
    assert!(
        reply.starts_with("FAILED: channel c1: allocate ")
            && reply.contains("File too large")
            && reply.contains("`ulimit -f`"),
        "{reply}"
    );
    // Flume's file channel counters: the failed put, and the log unhealthy until a put works.
    assert_eq!(channel("EventPutErrorCount"), Some(1));
    assert_eq!(channel("Unhealthy"), Some(1));
    assert!(client.send("small-2"));
    assert_eq!(wait_output(d, |l| l.len() >= 2), ["small-1", "small-2"]);
    assert_eq!(channel("Unhealthy"), Some(0));
    assert_eq!(channel("EventPutErrorCount"), Some(1));
    assert!(agent.stop(), "SIGTERM must exit 0");
    let logged = std::fs::read_to_string(d.join("agent.log")).unwrap();
    assert!(
        logged.contains("puts failed: the channel's log cannot store them")
            && logged.contains("File too large"),
        "{logged}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(d.join("log"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// file_roll under `ulimit -f` with `rollInterval = 0` (never roll): a file that reached the
/// limit is closed and the batch goes to a new one, instead of the sink retrying into the
/// full file for ever while the channel grows. Files are numbered without gaps.
#[test]
fn file_roll_moves_to_a_new_file_at_the_file_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let cfg = config(
        d,
        port,
        "a.sources.r1.max-line-length = 4000
a.sinks.k1.sink.rollInterval = 0
         a.channels.c1.maxFileSize = 65536
",
    );
    let log = std::fs::File::create(d.join("agent.log")).unwrap();
    // 200 KiB: above the 64 KiB segments, below what the lines add up to.
    let limit = ["bash", "-c", "ulimit -f 200; exec \"$0\" \"$@\""];
    let mut agent = Agent::start_under(&limit, &cfg, port, Stdio::from(log));
    let mut client = Client::new(port);
    let sent: Vec<String> = (0..300)
        .map(|i| format!("{i:05}-{}", "y".repeat(2000)))
        .collect();
    for line in &sent {
        assert!(client.send(line), "{} refused", &line[..5]);
    }
    let got = wait_output(d, |l| l.len() >= sent.len());
    assert_eq!(got, sent);
    assert!(agent.stop(), "SIGTERM must exit 0");
    let mut names: Vec<(u64, u64)> = std::fs::read_dir(d.join("out"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name.rsplit('-').next().unwrap().parse().unwrap();
            (n, e.metadata().unwrap().len())
        })
        .collect();
    names.sort();
    assert!(names.len() >= 3, "{names:?}");
    assert!(names.iter().all(|(_, len)| *len <= 200 * 1024), "{names:?}");
    let numbers: Vec<u64> = names.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, (1..=names.len() as u64).collect::<Vec<_>>());
    let logged = std::fs::read_to_string(d.join("agent.log")).unwrap();
    assert!(logged.contains("ulimit -f"), "{logged}");
}

#[test]
fn sigkill_loop_loses_no_acknowledged_line() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(dir.path(), port, "");
    let cycles: u32 = std::env::var("WEIR_AGENT_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let mut acked = Vec::new();
    let mut next = 0u32;
    for _ in 0..cycles {
        let mut agent = Agent::start(&cfg, port);
        let mut client = Client::new(port);
        let deadline = Instant::now() + Duration::from_millis(fastrand::u64(100..600));
        while Instant::now() < deadline {
            let line = format!("kill-{next:07}");
            next += 1;
            if client.send(&line) {
                acked.push(line);
            }
        }
        agent.kill9();
    }
    let mut agent = Agent::start(&cfg, port);
    let want = acked.clone();
    let lines = wait_output(dir.path(), |l| {
        let seen: std::collections::HashSet<&String> = l.iter().collect();
        want.iter().all(|w| seen.contains(w))
    });
    assert!(agent.stop());
    let mut first_seen = BTreeMap::new();
    for (i, l) in lines.iter().enumerate() {
        first_seen.entry(l.clone()).or_insert(i);
    }
    let missing: Vec<_> = acked
        .iter()
        .filter(|l| !first_seen.contains_key(*l))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged lines lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let order: Vec<usize> = acked.iter().map(|l| first_seen[l]).collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "acknowledged lines out of order"
    );
    eprintln!(
        "{cycles} kills: {} lines acknowledged, {} written, {} duplicates",
        acked.len(),
        lines.len(),
        lines.len() - first_seen.len()
    );
}

#[test]
fn full_channel_fails_clients_then_recovers_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // No sink drains c1 (k1 drains c2): c1 fills.
    let base = "a.channels = c1 c2\na.channels.c1.capacity = 20\na.channels.c1.transactionCapacity = 10\n\
                a.channels.c1.keep-alive = 1\na.channels.c2.type = memory\n";
    let cfg = config(
        dir.path(),
        port,
        &format!("{base}a.sinks.k1.channel = c2\n"),
    );
    let mut agent = Agent::start(&cfg, port);
    let mut client = Client::new(port);
    let mut acked = Vec::new();
    let mut failure = None;
    for i in 0..30 {
        let line = format!("full-{i:02}");
        match client.send_bytes(line.as_bytes()) {
            Some(r) if r == "OK\n" => acked.push(line),
            Some(r) => {
                failure = Some(r);
                break;
            }
            None => panic!("connection dropped"),
        }
    }
    let failure = failure.expect("the channel never reported full");
    assert!(
        failure.starts_with("FAILED: ") && failure.contains("full"),
        "{failure:?}"
    );
    assert_eq!(acked.len(), 20);
    assert!(agent.stop());
    // A sink now drains c1: everything accepted comes out, and new lines are accepted again.
    let cfg = config(
        dir.path(),
        port,
        &format!("{base}a.sinks.k1.channel = c1\na.sinks.k1.sink.batchSize = 10\n"),
    );
    let mut agent = Agent::start(&cfg, port);
    let mut client = Client::new(port);
    assert!(client.send("after-full"));
    let lines = wait_output(dir.path(), |l| l.len() >= 21);
    assert!(agent.stop());
    let mut want = acked.clone();
    want.push("after-full".into());
    assert_eq!(lines, want);
}

#[test]
fn bad_clients_get_clear_replies_and_do_not_disturb_others() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(dir.path(), port, "a.sources.r1.max-line-length = 64\n");
    let log = dir.path().join("agent.log");
    let mut agent = Agent::start_with(
        &cfg,
        port,
        &["--log-level", "info"],
        Stdio::from(std::fs::File::create(&log).unwrap()),
    );
    // A client that connects and says nothing, and one that leaves mid-line.
    let _silent = TcpStream::connect(("127.0.0.1", port)).unwrap();
    {
        let mut half = TcpStream::connect(("127.0.0.1", port)).unwrap();
        half.write_all(b"half a li").unwrap();
    }
    let mut client = Client::new(port);
    let long = "x".repeat(100);
    let reply = client.send_bytes(long.as_bytes()).unwrap();
    assert!(
        reply.starts_with("FAILED: ") && reply.contains("64"),
        "{reply:?}"
    );
    assert_eq!(client.send_bytes(b"still works").as_deref(), Some("OK\n"));
    let binary: &[u8] = &[0xff, 0xfe, b'b', b'i', b'n', 0x80];
    assert_eq!(client.send_bytes(binary).as_deref(), Some("OK\n"));
    let end = Instant::now() + Duration::from_secs(20);
    while output_lines(dir.path()).len() < 2 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(agent.stop());
    let out = output_lines(dir.path());
    assert_eq!(
        out,
        vec![b"still works".to_vec(), binary.to_vec()],
        "invalid UTF-8 must pass through byte for byte"
    );
    let mut text = String::new();
    std::fs::File::open(&log)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert!(
        text.contains("partial line discarded"),
        "log should mention the abandoned line:\n{text}"
    );
    assert!(text.contains("line too long"), "{text}");
    assert!(
        !text.contains('\x1b'),
        "a log written to a file must carry no colour codes:\n{text}"
    );
}

const GOOD: &str = "a.sources = r1\na.channels = c1\na.sinks = k1\n\
    a.sources.r1.type = netcat\na.sources.r1.bind = 127.0.0.1\na.sources.r1.port = 4444\na.sources.r1.channels = c1\n\
    a.channels.c1.type = memory\n\
    a.sinks.k1.type = logger\na.sinks.k1.channel = c1\n";

#[test]
fn config_errors_name_file_line_key_and_the_fix() {
    // (edit applied to GOOD, expected fragments)
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "a.sources.r1.type = netcat\n",
            "a.sources.r1.type = foo\n",
            &[
                ":4: a.sources.r1.type",
                "unknown source type 'foo'",
                "netcat, seq",
            ],
        ),
        (
            "a.channels.c1.type = memory\n",
            "a.channels.c1.type = jdbc\n",
            &[
                ":8:",
                "channel type 'jdbc' is Flume's but not weir's: use the file channel",
                "file, memory",
            ],
        ),
        (
            "a.sinks.k1.type = logger\n",
            "a.sinks.k1.type = hive\n",
            &[
                ":9:",
                "sink type 'hive' is Flume's but not weir's: weir has no Hadoop client for it",
                "logger",
            ],
        ),
        (
            "a.sources.r1.port = 4444\n",
            "a.sources.r1.port = http\n",
            &[":6: a.sources.r1.port", "'http' is not a port number"],
        ),
        (
            "a.sources.r1.port = 4444\n",
            "a.sources.r1.port = 70000\n",
            &[":6:", "is not a port number"],
        ),
        (
            "a.sources.r1.port = 4444\n",
            "",
            &["a.sources.r1.port", "missing"],
        ),
        (
            "a.channels.c1.type = memory\n",
            "a.channels.c1.type = memory\na.channels.c1.capacity = 10\na.channels.c1.transactionCapacity = 20\n",
            &[
                ":10: a.channels.c1.transactionCapacity",
                "exceeds the channel capacity 10",
            ],
        ),
        (
            "a.sinks.k1.channel = c1\n",
            "a.sinks.k1.channel = c1\na.sinks.k1.batchSize = 500\n",
            &[":11: a.sinks.k1.batchSize", "transactionCapacity 100"],
        ),
        (
            "a.sources.r1.channels = c1\n",
            "a.sources.r1.channels = c1\na.sources.r1.ack-every-event = maybe\n",
            &[":8:", "'maybe' is not true or false"],
        ),
    ];
    for (from, to, want) in cases {
        assert!(GOOD.contains(from), "bad case: {from}");
        let (ok, out) = check_config(&GOOD.replacen(from, to, 1), Some("a"));
        assert!(!ok, "accepted: {from} -> {to}");
        for w in *want {
            assert!(
                out.contains(w),
                "for {from:?} -> {to:?}: {w:?} not in\n{out}"
            );
        }
    }
    // A sink draining an undefined channel is left out with a warning, as Flume leaves it out;
    // the rest of the agent runs.
    let (ok, out) = check_config(
        &GOOD.replacen("a.sinks.k1.channel = c1\n", "a.sinks.k1.channel = c9\n", 1),
        Some("a"),
    );
    assert!(ok, "{out}");
    assert!(out.contains("\nwarning: /"), "{out}");
    assert!(
        out.contains(
            "flume.properties:10: a.sinks.k1.channel: sink k1 refers to channel 'c9', which is not one of agent a's channels (c1); left out"
        ),
        "{out}"
    );
    assert!(!out.contains("sink    k1"), "{out}");
    // A source or sink without its channel: with two channels to choose from, an error naming
    // the key and the fix; with the agent's only channel, bound to it with a note (Flume drops
    // the component, leaving an agent that does nothing).
    let two = GOOD.replace(
        "a.channels = c1\n",
        "a.channels = c1 c2\na.channels.c2.type = memory\n",
    );
    for (from, want) in [
        (
            "a.sources.r1.channels = c1\n",
            ":5: a.sources.r1.channels: source r1 has no channels: add `a.sources.r1.channels = c1`",
        ),
        (
            "a.sinks.k1.channel = c1\n",
            ":10: a.sinks.k1.channel: sink k1 has no channel: add `a.sinks.k1.channel = c1`",
        ),
    ] {
        let (ok, out) = check_config(&two.replacen(from, "", 1), Some("a"));
        assert!(!ok && out.contains(want), "{from:?}: {out}");
    }
    let unbound = GOOD
        .replacen("a.sources.r1.channels = c1\n", "", 1)
        .replacen("a.sinks.k1.channel = c1\n", "", 1);
    let (ok, out) = check_config(&unbound, Some("a"));
    assert!(ok, "{out}");
    assert!(
        out.contains("source  r1 [netcat] -> c1")
            && out.contains("sink    k1 [logger] <- c1")
            && out.contains(":4: a.sources.r1.channels: not set; the agent has one channel")
            && out.contains(":8: a.sinks.k1.channel: not set; the agent has one channel"),
        "{out}"
    );
    let (ok, out) = check_config(GOOD, Some("b"));
    assert!(
        !ok && out.contains("no agent named 'b'") && out.contains("defines agent(s) a"),
        "{out}"
    );
}

/// Flume drops a source whose batch cannot fit in one transaction of its channel; weir refuses
/// the config, naming the key. syslogtcp/udp have no batchSize in Flume, so weir's own default
/// there is cut to fit at run time instead.
#[test]
fn source_batches_larger_than_the_transaction_capacity_are_refused() {
    let with = |source: &str| {
        format!(
            "a.sources = r1\na.channels = c1\na.sinks = k1\n{source}a.sources.r1.channels = c1\n\
             a.channels.c1.type = memory\na.channels.c1.transactionCapacity = 50\n\
             a.sinks.k1.type = null\na.sinks.k1.channel = c1\na.sinks.k1.batchSize = 10\n"
        )
    };
    let load = |text: &str| {
        let props =
            weir::config::Properties::parse(std::path::Path::new("t.properties"), text.as_bytes())
                .unwrap();
        weir::config::AgentConfig::from_properties(&props, "a")
    };
    for (source, line) in [
        (
            "a.sources.r1.type = exec\na.sources.r1.command = true\na.sources.r1.batchSize = 60\n",
            6,
        ),
        (
            "a.sources.r1.type = TAILDIR\na.sources.r1.filegroups = f\na.sources.r1.filegroups.f = /tmp/x.log\na.sources.r1.batchSize = 51\n",
            7,
        ),
        (
            "a.sources.r1.type = seq\na.sources.r1.batchSize = 1000\n",
            5,
        ),
    ] {
        let err = load(&with(source))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains(&format!(":{line}: a.sources.r1.batchSize"))
                && err.contains("transactionCapacity 50 of channel c1"),
            "{source}: {err}"
        );
    }
    // multiport_syslogtcp's batchSize is Flume's (default 100), so its default is checked too.
    let err = load(&with(
        "a.sources.r1.type = multiport_syslogtcp\na.sources.r1.ports = 5140\n",
    ))
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(
        err.contains("batch size 100 (the default: `batchSize` is not set) exceeds"),
        "{err}"
    );
    assert!(
        load(&with(
            "a.sources.r1.type = syslogtcp\na.sources.r1.port = 5140\n"
        ))
        .is_ok()
    );
    assert!(
        load(&with(
            "a.sources.r1.type = exec\na.sources.r1.command = true\na.sources.r1.batchSize = 50\n"
        ))
        .is_ok()
    );
}

#[test]
fn flume_class_names_notes_continuations_and_defaults_are_accepted() {
    let text = "# a Flume file\na.sources = r1\na.channels = c1 c2\na.sinks = k1 k2\n\
        a.sources.r1.type = org.apache.flume.source.NetcatSource\na.sources.r1.bind = 127.0.0.1\n\
        a.sources.r1.port : 4444\na.sources.r1.channels = c1 \\\n   c2\n\
        a.channels.c1.type = org.apache.flume.channel.file.FileChannel\na.channels.c1.checkpointInterval = 1000\n\
        a.channels.c1.useDualCheckpoints = true\n\
        a.channels.c2.type = org.apache.flume.channel.MemoryChannel\n\
        a.sinks.k1.type = org.apache.flume.sink.LoggerSink\na.sinks.k1.channel = c1\n\
        a.sinks.k2.type = org.apache.flume.sink.RollingFileSink\na.sinks.k2.channel = c2\na.sinks.k2.sink.directory = /tmp/x\n";
    let (ok, out) = check_config(text, None);
    assert!(ok, "{out}");
    assert!(out.contains("source  r1 [netcat] -> c1, c2"), "{out}");
    assert!(
        out.contains("note:") && out.contains("checkpointInterval"),
        "{out}"
    );
    let (ok, out) = check_config(
        &text.replace(
            "org.apache.flume.sink.RollingFileSink",
            "org.apache.flume.sink.NullSink",
        ),
        Some("a"),
    );
    assert!(ok, "{out}");
    // The embedded default.
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["agent", "--check"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// GET over a raw TCP connection (no HTTP client dependency needed for two requests).
fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

#[test]
fn metrics_in_flume_json_and_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mport = free_port();
    let cfg = config(dir.path(), port, "");
    let mut agent = Agent::start_with(
        &cfg,
        port,
        &[
            "-Dflume.monitoring.type=http",
            &format!("-Dflume.monitoring.port={mport}"),
        ],
        Stdio::inherit(),
    );
    assert!(support::wait_for_port(mport, Duration::from_secs(10)));
    let mut client = Client::new(port);
    for i in 0..3 {
        assert!(client.send(&format!("m{i}")));
    }
    wait_output(dir.path(), |l| l.len() >= 3);
    // The lines reach the file before the sink commits its take and counts them: wait for the
    // commit rather than race it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let json = loop {
        let json: serde_json::Value = serde_json::from_str(&http_get(mport, "/metrics")).unwrap();
        if json["SINK.k1"]["EventDrainSuccessCount"] == "3" || Instant::now() > deadline {
            break json;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(json["CHANNEL.c1"]["EventPutSuccessCount"], "3");
    assert_eq!(json["SOURCE.r1"]["EventAcceptedCount"], "3");
    assert_eq!(json["SINK.k1"]["EventDrainSuccessCount"], "3");
    assert_eq!(json["CHANNEL.c1"]["ChannelSize"], "0");
    let prom = http_get(mport, "/metrics/prometheus");
    assert!(
        prom.contains("weir_channel_puts_total{name=\"c1\"} 3"),
        "{prom}"
    );
    assert!(agent.stop());
}

/// A Flume launch line and a Flume 1.10+ style config run as they are: JVM options and flume-ng's
/// own options are accepted (and warned about), `${sys:…}` reads a `-D` option, `${env:…}` the
/// environment, a bare `${…}` another key of the file; and an unset variable stops the start
/// with its key and line instead of becoming part of a path.
#[test]
fn flume_launch_lines_and_config_references_run_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let out = dir.path().join("from-env");
    let text = format!(
        "base = {d}\n\
         a.sources = r1\na.channels = c1\na.sinks = k1\n\
         a.sources.r1.type = netcat\na.sources.r1.bind = 127.0.0.1\n\
         a.sources.r1.port = ${{sys:nc.port}}\na.sources.r1.channels = c1\n\
         a.channels.c1.type = file\na.channels.c1.checkpointDir = ${{base}}/ckpt\n\
         a.channels.c1.dataDirs = ${{base}}/log\na.channels.c1.minimumRequiredSpace = 0\n\
         a.sinks.k1.type = file_roll\na.sinks.k1.channel = c1\n\
         a.sinks.k1.sink.directory = ${{env:WEIR_TEST_OUT}}\na.sinks.k1.sink.rollInterval = 1\n",
        d = dir.path().display()
    );
    let cfg = dir.path().join("flume.properties");
    std::fs::write(&cfg, &text).unwrap();
    let launch = |env_out: Option<&Path>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
        cmd.args(["agent", "--conf", "conf", "--conf-file"])
            .arg(&cfg)
            .args([
                "--name",
                "a",
                "--no-reload-conf",
                "-Xmx512m",
                "-DXms64m",
                "-C",
                "/opt/lib",
            ])
            .arg(format!("-Dnc.port={port}"))
            .arg("-Dflume.root.logger=INFO,console")
            .env_remove("RUST_LOG")
            .env_remove("WEIR_TEST_OUT")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(o) = env_out {
            cmd.env("WEIR_TEST_OUT", o);
        }
        cmd.spawn().expect("start weir")
    };

    // Without the variable: a clear error, nothing started, no directory named after it.
    let failed = launch(None).wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success());
    assert!(
        stderr.contains(
            "flume.properties:15: a.sinks.k1.sink.directory: `${env:WEIR_TEST_OUT}` cannot be \
             resolved: the environment variable WEIR_TEST_OUT is not set"
        ),
        "{stderr}"
    );
    assert!(!dir.path().join("${env:WEIR_TEST_OUT}").exists());

    let mut child = launch(Some(&out));
    assert!(
        support::wait_for_port(port, Duration::from_secs(20)),
        "the agent did not listen on the port given by -Dnc.port"
    );
    let mut client = Client::new(port);
    assert!(client.send("through the references"));
    let end = Instant::now() + Duration::from_secs(20);
    let lines = loop {
        let lines = support::file_roll_lines(&out);
        if !lines.is_empty() || Instant::now() > end {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(dir.path().join("log").is_dir() && dir.path().join("ckpt").is_dir());
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    assert_eq!(lines, ["through the references"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("JVM options have no meaning for weir; ignored options=-Xmx512m"),
        "{stderr}"
    );
    assert!(stderr.contains("--classpath"), "{stderr}");
}

/// A file channel that cannot open its log stops the agent with one line that names the
/// channel, the file and the system's reason, each once (the error chain used to repeat them).
#[test]
fn a_log_that_cannot_be_opened_is_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    // The data directory lies under a regular file, so it cannot be created.
    std::fs::write(dir.path().join("file"), b"").unwrap();
    let extra = format!(
        "a.channels.c1.dataDirs = {}/file/log\n",
        dir.path().display()
    );
    let path = config(dir.path(), free_port(), &extra);
    let (ok, out) = run_to_exit(&["-f".as_ref(), path.as_os_str()]);
    assert!(!ok, "started with an impossible data directory:\n{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line:\n{out}"));
    assert!(line.contains("channel c1: "), "{line}");
    assert!(
        line.contains(&format!("{}/file/log", dir.path().display())),
        "{line}"
    );
    for once in ["channel c1", "Not a directory (os error 20)"] {
        assert_eq!(
            line.matches(once).count(),
            1,
            "{once:?} not exactly once in: {line}"
        );
    }
}

/// Runs `weir agent` with `args` and waits (at most 20 s, then kills it and fails) for it to
/// exit: whether it succeeded, and its stderr then stdout.
fn run_to_exit(args: &[&std::ffi::OsStr]) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("agent")
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start weir");
    let end = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("weir agent {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        ),
    )
}

/// Flume 1.10+'s repeated `--conf-file`: the files merge in order, a later file's key wins, and
/// a `${…}` of the second file may name a key of the first. The agent listens on the second
/// file's port and writes where the second file says, not where the first does.
#[test]
fn several_conf_files_merge_and_the_later_file_wins() {
    let dir = tempfile::tempdir().unwrap();
    let (base_port, port) = (free_port(), free_port());
    let site = dir.path().join("site");
    let base = config(
        dir.path(),
        base_port,
        &format!("site.dir = {}\n", site.display()),
    );
    let over = dir.path().join("override.properties");
    std::fs::write(
        &over,
        format!(
            "# this site's port and output\na.sources.r1.port = {port}\n\
             a.sinks.k1.sink.directory = ${{site.dir}}/out\n"
        ),
    )
    .unwrap();

    let (ok, out) = run_to_exit(&[
        "--check".as_ref(),
        "-f".as_ref(),
        base.as_os_str(),
        "--conf-file".as_ref(),
        over.as_os_str(),
    ]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("agent a ({}, {})", base.display(), over.display())),
        "{out}"
    );

    let over_arg = over.to_str().unwrap();
    let mut agent = Agent::start_with(&base, port, &["-f", over_arg], Stdio::inherit());
    let mut client = Client::new(port);
    assert!(client.send("to the overriding directory"));
    let lines = wait_output(&site, |l| !l.is_empty());
    assert!(agent.stop());
    assert_eq!(lines, ["to the overriding directory"]);
    assert!(
        text_lines(dir.path()).is_empty(),
        "the first file's sink.directory was used"
    );
}

/// A bad value in the second file stops the start with that file's name and line; one in the
/// first file, with the second file valid, with the first file's.
#[test]
fn an_error_in_one_of_several_conf_files_names_that_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = config(dir.path(), port, "");
    let over = dir.path().join("override.properties");
    std::fs::write(
        &over,
        "a.sinks.k1.sink.rollInterval = 2\n\na.sources.r1.port = 99999\n",
    )
    .unwrap();
    let (ok, out) = run_to_exit(&[
        "-f".as_ref(),
        base.as_os_str(),
        "-f".as_ref(),
        over.as_os_str(),
        "-n".as_ref(),
        "a".as_ref(),
    ]);
    assert!(!ok, "started with port 99999:\n{out}");
    assert!(
        out.contains(&format!(
            "{}:3: a.sources.r1.port: '99999' is not a port number",
            over.display()
        )),
        "{out}"
    );

    // A bad value in the first file that the second file does not override.
    std::fs::write(&over, "a.sinks.k1.sink.rollInterval = 2\n").unwrap();
    let text = std::fs::read_to_string(&base).unwrap();
    std::fs::write(
        &base,
        text.replace(
            "a.sinks.k1.sink.batchSize = 50",
            "a.sinks.k1.sink.batchSize = many",
        ),
    )
    .unwrap();
    let line = text
        .lines()
        .position(|l| l.starts_with("a.sinks.k1.sink.batchSize"))
        .unwrap()
        + 1;
    let (ok, out) = run_to_exit(&[
        "-f".as_ref(),
        base.as_os_str(),
        "-f".as_ref(),
        over.as_os_str(),
    ]);
    assert!(!ok, "started with batchSize = many:\n{out}");
    assert!(
        out.contains(&format!(
            "{}:{line}: a.sinks.k1.sink.batchSize: 'many' is not",
            base.display()
        )),
        "{out}"
    );
    assert!(!dir.path().join("out").exists(), "the sink started");
}

/// The agent raises its soft open-file limit to the hard one (the sources accept 1000
/// connections each by default, the usual soft limit is 1024), and warns when even the hard
/// limit leaves too little room for the connections its sources accept.
#[test]
fn the_open_file_limit_is_raised_and_one_too_small_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(dir.path(), port, "");
    let warning = "more than the open-file limit of 256 leaves room for";
    for (limits, expected, warned) in [("256:4096", "4096", false), ("256:256", "256", true)] {
        let log = dir.path().join(format!("agent-{expected}.log"));
        let mut agent = Agent::start_under(
            &["prlimit", &format!("--nofile={limits}"), "--"],
            &cfg,
            port,
            Stdio::from(std::fs::File::create(&log).unwrap()),
        );
        let proc_limits = std::fs::read_to_string(format!("/proc/{}/limits", agent.pid())).unwrap();
        let line = proc_limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .unwrap();
        let soft = line.split_whitespace().nth(3);
        assert_eq!(soft, Some(expected), "{limits}: {line}");
        assert!(agent.stop(), "{limits}: no clean stop");
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(text.contains(warning), warned, "{limits}: {text}");
        if warned {
            assert!(text.contains("up to 1000 connections"), "{text}");
        }
    }
}

/// A file that defines no agent says so, with or without `-n`: asking for `-n` would not help.
#[test]
fn a_file_without_agents_says_so_with_or_without_a_name() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("empty.properties");
    std::fs::write(&conf, "# only a comment\n").unwrap();
    for name in [None, Some("a")] {
        let mut args: Vec<&std::ffi::OsStr> = vec!["-f".as_ref(), conf.as_os_str()];
        if let Some(n) = name {
            args.extend([std::ffi::OsStr::new("-n"), std::ffi::OsStr::new(n)]);
        }
        let (ok, out) = run_to_exit(&args);
        assert!(!ok, "accepted (-n {name:?}):\n{out}");
        assert!(
            out.contains("defines no agent (expected keys like `a.sources = r1`)"),
            "-n {name:?}: {out}"
        );
        assert!(!out.contains("give the agent's name"), "{out}");
    }
}

/// A weir built without the `kafka` feature refuses a Kafka sink at its `type` line, both at
/// `--check` and at start, as it refuses anything else it cannot run; nothing starts.
#[cfg(not(feature = "kafka"))]
#[test]
fn a_build_without_kafka_refuses_a_kafka_sink_at_its_type_line() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("kafka.properties");
    std::fs::write(
        &conf,
        "a.sources = r1\na.channels = c1\na.sinks = k1\n\
         a.sources.r1.type = seq\na.sources.r1.channels = c1\n\
         a.channels.c1.type = memory\n\n\
         a.sinks.k1.channel = c1\n\
         a.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink\n\
         a.sinks.k1.kafka.bootstrap.servers = localhost:9092\n",
    )
    .unwrap();
    for check in [true, false] {
        let mut args = vec!["-f".as_ref(), conf.as_os_str()];
        if check {
            args.push("--check".as_ref());
        }
        let (ok, out) = run_to_exit(&args);
        assert!(!ok, "accepted (check: {check}):\n{out}");
        assert!(
            out.contains(&format!(
                "{}:9: a.sinks.k1.type: a Kafka sink, and this weir was built without the \
                 `kafka` feature",
                conf.display()
            )),
            "{out}"
        );
    }
}

/// Flume's search_replace, regex_extractor and remove_header interceptors, chained as a Flume
/// file writes them: the card number is masked (Java's `$1` followed by letters in
/// replaceString), fields of the masked body become headers, and the one not wanted downstream
/// is removed again, before the event reaches the channel.
#[test]
fn search_replace_regex_extractor_and_remove_header_chain_before_the_channel() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(
        dir.path(),
        port,
        r#"a.sources.r1.interceptors = mask fields drop
a.sources.r1.interceptors.mask.type = search_replace
a.sources.r1.interceptors.mask.searchPattern = (card=)\\d{12}(\\d{4})
a.sources.r1.interceptors.mask.replaceString = $1XXXXXXXXXXXX$2
a.sources.r1.interceptors.fields.type = org.apache.flume.interceptor.RegexExtractorInterceptor$Builder
a.sources.r1.interceptors.fields.regex = user=(\\w+) card=(\\S+) amount=(\\d+)
a.sources.r1.interceptors.fields.serializers = u c a
a.sources.r1.interceptors.fields.serializers.u.name = user
a.sources.r1.interceptors.fields.serializers.c.name = card
a.sources.r1.interceptors.fields.serializers.a.name = amount
a.sources.r1.interceptors.drop.type = remove_header
a.sources.r1.interceptors.drop.matching = car.
"#,
    );
    let mut agent = Agent::start(&cfg, port);
    let mut client = Client::new(port);
    assert!(client.send("user=alice card=4111222233334444 amount=42"));
    assert!(client.send("user=bob card=5500 amount=7"));
    assert!(client.send("no fields 1234123412341234"));
    // The stop lets the sink finish its batch, not drain the channel: wait for the output.
    wait_output(dir.path(), |l| l.len() >= 3);
    assert!(agent.stop());

    let events: Vec<(BTreeMap<String, String>, String)> =
        support::logged_events(&dir.path().join("log"))
            .into_iter()
            .map(|e| {
                (
                    e.headers.into_iter().collect(),
                    String::from_utf8_lossy(&e.body).into_owned(),
                )
            })
            .collect();
    let headers = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        events,
        [
            (
                headers(&[("amount", "42"), ("user", "alice")]),
                "user=alice card=XXXXXXXXXXXX4444 amount=42".to_owned()
            ),
            // Too short to mask; the card header is removed all the same.
            (
                headers(&[("amount", "7"), ("user", "bob")]),
                "user=bob card=5500 amount=7".to_owned()
            ),
            (headers(&[]), "no fields 1234123412341234".to_owned()),
        ]
    );
    assert_eq!(
        text_lines(dir.path()),
        [
            "user=alice card=XXXXXXXXXXXX4444 amount=42",
            "user=bob card=5500 amount=7",
            "no fields 1234123412341234",
        ]
    );
}

/// The User Guide's spillable memory channel runs, and (being a file channel in weir) keeps
/// every acknowledged line across a SIGKILL: first with a sink that cannot deliver (an avro
/// sink with no server), so the lines wait in the channel, then with a file_roll sink.
#[test]
fn a_spillable_memory_channel_keeps_acknowledged_lines_across_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let d = dir.path().display();
    let write = |name: &str, sink: &str| {
        let text = format!(
            "a.sources = r1\na.channels = c1\na.sinks = k1\n\
             a.sources.r1.type = netcat\na.sources.r1.bind = 127.0.0.1\na.sources.r1.port = {port}\n\
             a.sources.r1.channels = c1\n\
             a.channels.c1.type = SPILLABLEMEMORY\na.channels.c1.memoryCapacity = 10000\n\
             a.channels.c1.overflowCapacity = 1000000\na.channels.c1.byteCapacity = 800000\n\
             a.channels.c1.checkpointDir = {d}/ckpt\na.channels.c1.dataDirs = {d}/log\n\
             a.channels.c1.minimumRequiredSpace = 0\na.sinks.k1.channel = c1\n{sink}"
        );
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let stuck = write(
        "stuck.properties",
        &format!(
            "a.sinks.k1.type = avro\na.sinks.k1.hostname = 127.0.0.1\na.sinks.k1.port = {}\n",
            free_port()
        ),
    );
    let draining = write(
        "draining.properties",
        &format!("a.sinks.k1.type = file_roll\na.sinks.k1.sink.directory = {d}/out\n"),
    );
    let (ok, out) = support::check_config_file(&draining, Some("a"));
    assert!(ok, "{out}");
    assert!(
        out.contains("1010000 events"),
        "the check says what the channel became: {out}"
    );

    let mut agent = Agent::start_with(&stuck, port, &[], Stdio::null());
    let mut client = Client::new(port);
    let lines: Vec<String> = (0..200).map(|i| format!("spilled {i}")).collect();
    for l in &lines {
        assert!(client.send(l), "{l} not acknowledged");
    }
    agent.kill9();
    let mut agent = Agent::start_with(&draining, port, &[], Stdio::null());
    let got = wait_output(dir.path(), |l| l.len() >= lines.len());
    assert!(agent.stop());
    assert_eq!(got, lines);
}

/// Each thread's name and voluntary context switches (how often it went to sleep), from
/// /proc.
fn sleeps_per_thread(pid: u32) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let task = task.unwrap().path();
        let (Ok(name), Ok(status)) = (
            std::fs::read_to_string(task.join("comm")),
            std::fs::read_to_string(task.join("status")),
        ) else {
            continue; // the thread ended meanwhile
        };
        let switches = status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .map(|v| v.trim().parse::<u64>().unwrap())
            .unwrap();
        *out.entry(name.trim().to_owned()).or_default() += switches;
    }
    out
}

/// An idle agent sleeps until something happens instead of waking to look at its stop flag:
/// over 3 idle seconds, the main thread, the source's accept loop and an idle client's
/// connection do not wake at all (they woke 20, 10 and 10 times a second before) and the sink
/// about once a second (its poll for timed work; 20 a second before). A wake-up is a voluntary
/// context switch, counted by the kernel, so a busy machine does not add any. The idle
/// connection still serves its client, and the stop still takes effect at once.
#[test]
fn an_idle_agent_does_not_poll() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(dir.path(), port, "");
    let mut agent = Agent::start(&cfg, port);
    let mut client = Client::new(port);
    assert!(client.send("one"));
    wait_output(dir.path(), |l| l.len() == 1);
    std::thread::sleep(Duration::from_millis(500));
    let before = sleeps_per_thread(agent.pid());
    std::thread::sleep(Duration::from_secs(3));
    let after = sleeps_per_thread(agent.pid());
    let woke = |prefix: &str| -> u64 {
        let sum = |m: &BTreeMap<String, u64>| -> u64 {
            m.iter()
                .filter(|(name, _)| name.starts_with(prefix))
                .map(|(_, n)| n)
                .sum()
        };
        sum(&after) - sum(&before)
    };
    assert!(woke("weir") <= 1, "main thread: {before:?} → {after:?}");
    assert!(
        woke("source-r1") <= 1,
        "accept loop: {before:?} → {after:?}"
    );
    assert!(woke("netcat-") <= 1, "connection: {before:?} → {after:?}");
    assert!(woke("sink-k1") <= 8, "sink: {before:?} → {after:?}");
    assert!(client.send("two"), "the idle connection no longer serves");
    wait_output(dir.path(), |l| l.len() == 2);
    let stopping = Instant::now();
    assert!(agent.stop());
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "the stop took {:?}",
        stopping.elapsed()
    );
    assert_eq!(text_lines(dir.path()), ["one", "two"]);
}

/// As Flume, a changed configuration file replaces the running one: every component stops (as
/// for SIGTERM) and the new ones start, and no acknowledged line is lost. A change that cannot
/// be used is logged with its line and the running configuration stays.
#[test]
fn a_changed_configuration_file_is_reloaded_as_flume_does() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (first_port, second_port) = (free_port(), free_port());
    let cfg = config(d, first_port, "");
    let (mut agent, _) =
        support::start_logged_with(d, &cfg, &["--poll-interval", "1", "--log-level", "info"]);
    assert!(support::wait_for_port(first_port, Duration::from_secs(20)));
    let mut client = Client::new(first_port);
    let mut want = Vec::new();
    for i in 0..20 {
        want.push(format!("first-{i}"));
        assert!(client.send(want.last().unwrap()));
    }

    // The same file, the source on another port.
    config(d, second_port, "");
    assert!(
        support::wait_for_port(second_port, Duration::from_secs(20)),
        "{}",
        support::agent_logs(d)
    );
    assert!(
        TcpStream::connect(("127.0.0.1", first_port)).is_err(),
        "the first configuration's source still listens"
    );
    let mut client = Client::new(second_port);
    for i in 0..20 {
        want.push(format!("second-{i}"));
        assert!(client.send(want.last().unwrap()));
    }
    assert_eq!(wait_output(d, |l| l.len() >= want.len()), want);

    // A value that cannot be used: the error names it, and the running configuration serves on.
    config(d, second_port, "a.sinks.k1.sink.batchSize = zero\n");
    support::wait_until("the refused change in the log", || {
        support::agent_logs(d).contains("cannot be used")
    });
    let logs = support::agent_logs(d);
    assert!(
        logs.contains("agent.properties:18: a.sinks.k1.sink.batchSize"),
        "{logs}"
    );
    assert!(client.send("third"));
    want.push("third".into());
    assert_eq!(wait_output(d, |l| l.len() >= want.len()), want);
    assert!(agent.stop(), "SIGTERM must exit 0");
    let logs = support::agent_logs(d);
    assert_eq!(
        logs.matches("the configuration changed: stopping every component")
            .count(),
        1,
        "{logs}"
    );
}

/// A reload reads a file once it has stopped changing (an editor writing in place is not
/// caught half-way), a configuration whose source cannot listen yet is tried again until it
/// can while the previous one serves, and a file deleted for a moment and put back as it was
/// reloads nothing.
#[test]
fn a_reload_waits_for_a_whole_file_and_retries_what_cannot_start_yet() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (first_port, second_port, passing_port) = (free_port(), free_port(), free_port());
    let cfg = config(d, first_port, "");
    let (mut agent, _) =
        support::start_logged_with(d, &cfg, &["--poll-interval", "1", "--log-level", "info"]);
    assert!(support::wait_for_port(first_port, Duration::from_secs(20)));
    let reloads = || {
        support::agent_logs(d)
            .matches("the configuration changed: stopping every component")
            .count()
    };

    // The port the new configuration wants is taken; the file passes through another text
    // first, faster than a reload reads it.
    let blocker = std::net::TcpListener::bind(("127.0.0.1", second_port)).unwrap();
    config(d, passing_port, "");
    std::thread::sleep(Duration::from_millis(600));
    config(d, second_port, "");
    support::wait_until("the new configuration failing to start", || {
        support::agent_logs(d).contains("the changed configuration cannot start")
    });
    // That line comes before the previous configuration has started again.
    assert!(support::wait_for_port(first_port, Duration::from_secs(20)));
    let mut client = Client::new(first_port);
    assert!(client.send("while-blocked"), "{}", support::agent_logs(d));
    assert!(TcpStream::connect(("127.0.0.1", passing_port)).is_err());

    // Once the port is free, the new configuration starts.
    drop(blocker);
    assert!(
        support::wait_for_port(second_port, Duration::from_secs(20)),
        "{}",
        support::agent_logs(d)
    );
    let mut client = Client::new(second_port);
    assert!(client.send("after-retry"));
    assert_eq!(
        wait_output(d, |l| l.len() >= 2),
        ["while-blocked", "after-retry"]
    );
    assert_eq!(reloads(), 1, "{}", support::agent_logs(d));

    // Deleted for a moment, then put back byte for byte: an error, and no reload.
    let text = std::fs::read(&cfg).unwrap();
    std::fs::remove_file(&cfg).unwrap();
    support::wait_until("the missing file in the log", || {
        support::agent_logs(d).contains("cannot be used")
    });
    std::fs::write(&cfg, &text).unwrap();
    std::thread::sleep(Duration::from_millis(3000));
    assert_eq!(reloads(), 1, "{}", support::agent_logs(d));
    assert!(
        client.send("same-connection"),
        "the restored file restarted the source"
    );

    // A change that cannot start, undone while it waits for its retry: the retries end, and
    // the running configuration is not restarted for the undoing.
    let failures = || {
        support::agent_logs(d)
            .matches("the changed configuration cannot start")
            .count()
    };
    let starts = || support::agent_logs(d).matches("agent started").count();
    let (failed, started) = (failures(), starts());
    let blocker = std::net::TcpListener::bind(("127.0.0.1", passing_port)).unwrap();
    config(d, passing_port, "");
    support::wait_until(
        "a failed start, and the running configuration started again",
        || failures() > failed && starts() > started,
    );
    let started = starts();
    std::fs::write(&cfg, &text).unwrap();
    support::wait_until("the undone change in the log", || {
        support::agent_logs(d).contains("the files hold the running configuration again")
    });
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(starts(), started, "{}", support::agent_logs(d));
    drop(blocker);
    assert!(agent.stop(), "SIGTERM must exit 0");
}

/// `--no-reload-conf` keeps the configuration read at start, as in Flume.
#[test]
fn no_reload_conf_keeps_the_first_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (first_port, second_port) = (free_port(), free_port());
    let cfg = config(d, first_port, "");
    let (mut agent, _) =
        support::start_logged_with(d, &cfg, &["--no-reload-conf", "--poll-interval", "1"]);
    assert!(support::wait_for_port(first_port, Duration::from_secs(20)));
    config(d, second_port, "");
    std::thread::sleep(Duration::from_millis(2500));
    let mut client = Client::new(first_port);
    assert!(client.send("still here"));
    assert!(TcpStream::connect(("127.0.0.1", second_port)).is_err());
    assert_eq!(wait_output(d, |l| !l.is_empty()), ["still here"]);
    assert!(agent.stop());
}

/// A changed configuration that cannot start is not retried while the running one holds
/// events in a memory channel: each retry stops what runs, and the memory channel would lose
/// its events every time (the change itself loses them once, as in Flume, with a warning).
#[test]
fn a_retry_waits_for_the_memory_channels_to_empty() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (port, blocked, nobody) = (free_port(), free_port(), free_port());
    let cfg = d.join("agent.properties");
    let write = |source_port: u16| {
        let text = format!(
            "a.sources = r1\na.channels = c1\na.sinks = k1\n\
             a.sources.r1.type = netcat\na.sources.r1.bind = 127.0.0.1\n\
             a.sources.r1.port = {source_port}\na.sources.r1.channels = c1\n\
             a.channels.c1.type = memory\n\
             a.sinks.k1.type = avro\na.sinks.k1.channel = c1\n\
             a.sinks.k1.hostname = 127.0.0.1\na.sinks.k1.port = {nobody}\n"
        );
        std::fs::write(&cfg, text).unwrap();
    };
    write(port);
    let (mut agent, metrics) =
        support::start_logged_with(d, &cfg, &["--poll-interval", "1", "--log-level", "info"]);
    assert!(support::wait_for_port(port, Duration::from_secs(20)));
    let _blocker = std::net::TcpListener::bind(("127.0.0.1", blocked)).unwrap();
    write(blocked);
    support::wait_until("the failed start", || {
        support::agent_logs(d).contains("the changed configuration cannot start")
    });
    assert!(support::wait_for_port(port, Duration::from_secs(20)));
    let mut client = Client::new(port);
    for i in 0..3 {
        assert!(client.send(&format!("held-{i}")));
    }
    support::wait_until("the postponed retry", || {
        support::agent_logs(d).contains("tried again once the memory channels are empty")
    });
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        support::metric(metrics, "CHANNEL.c1", "ChannelSize"),
        Some(3),
        "{}",
        support::agent_logs(d)
    );
    assert!(agent.stop());
    let logs = support::agent_logs(d);
    assert!(
        logs.contains("the memory channel closes holding events") && logs.contains("events=3"),
        "{logs}"
    );
}
