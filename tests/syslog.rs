//! The syslog sources as a user runs them: the real `weir` binary, util-linux `logger` and raw
//! sockets as clients, a file channel whose log is read back after the agent stops (to check
//! headers as well as bodies), and file_roll as the sink.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::{Agent, check_config, free_port, output_lines, wait_until};

const LOGGER: &str = "/usr/bin/logger";

/// One event read back from the channel's log.
#[derive(Clone, Debug)]
struct Stored {
    headers: BTreeMap<String, String>,
    body: String,
}

impl Stored {
    fn h(&self, k: &str) -> Option<&str> {
        self.headers.get(k).map(String::as_str)
    }
}

/// `sources` (the r* lines, `a.sources = …` included) → file channel c1 in `dir` → file_roll.
fn config(dir: &Path, sources: &str, extra: &str) -> PathBuf {
    let text = format!(
        "a.channels = c1\na.sinks = k1\n{sources}\n\
         a.channels.c1.type = file\na.channels.c1.checkpointDir = {d}/ckpt\na.channels.c1.dataDirs = {d}/log\n\
         a.channels.c1.minimumRequiredSpace = 0\na.channels.c1.maxFileSize = 67108864\n\
         a.sinks.k1.type = file_roll\na.sinks.k1.channel = c1\na.sinks.k1.sink.directory = {d}/out\n\
         a.sinks.k1.sink.batchSize = 100\na.sinks.k1.sink.rollInterval = 0\n{extra}",
        d = dir.display()
    );
    let path = dir.join("agent.properties");
    std::fs::write(&path, text).unwrap();
    path
}

/// Every event in the channel's log, in order (the agent must be stopped). Segments are large
/// enough in these tests that none is retired, so consumed events are still there.
fn stored(dir: &Path) -> Vec<Stored> {
    support::logged_events(&dir.join("log"))
        .into_iter()
        .map(|e| Stored {
            headers: e.headers.into_iter().collect(),
            body: String::from_utf8_lossy(&e.body).into_owned(),
        })
        .collect()
}

fn logger(args: &[&str]) {
    assert!(
        Path::new(LOGGER).exists(),
        "these tests need util-linux logger at {LOGGER} (Debian: bsdutils)"
    );
    let out = Command::new(LOGGER).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "logger {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn agent_log(path: &Path) -> String {
    let mut text = String::new();
    std::fs::File::open(path)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    text
}

fn find<'a>(events: &'a [Stored], needle: &str) -> &'a Stored {
    events
        .iter()
        .find(|e| e.body.contains(needle))
        .unwrap_or_else(|| panic!("no event with {needle:?} in {events:#?}"))
}

#[test]
fn logger_over_tcp_and_udp_in_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    let (tcp, udp) = (free_port(), free_port());
    let sources = format!(
        "a.sources = r1 r2\n\
         a.sources.r1.type = syslogtcp\na.sources.r1.host = 127.0.0.1\na.sources.r1.port = {tcp}\n\
         a.sources.r1.channels = c1\na.sources.r1.clientIPHeader = clientip\n\
         a.sources.r1.clientHostnameHeader = clienthost\n\
         a.sources.r2.type = org.apache.flume.source.SyslogUDPSource\na.sources.r2.host = 127.0.0.1\n\
         a.sources.r2.port = {udp}\na.sources.r2.channels = c1\na.sources.r2.clientIPHeader = clientip\n"
    );
    let cfg = config(dir.path(), &sources, "");
    let mut agent = Agent::start_with(&cfg, tcp, &[], Stdio::inherit());
    let (t, u) = (tcp.to_string(), udp.to_string());
    let to_tcp = ["-n", "127.0.0.1", "-P", &t, "--tcp"];
    let to_udp = ["-n", "127.0.0.1", "-P", &u, "--udp"];
    let sent_at = now_ms();
    let cases: &[(&[&str], &[&str])] = &[
        (
            &to_tcp,
            &[
                "--rfc5424",
                "-p",
                "local3.warning",
                "-t",
                "app1",
                "tcp 5424",
            ],
        ),
        (
            &to_tcp,
            &["--rfc3164", "-p", "user.err", "-t", "app2", "tcp 3164"],
        ),
        (
            &to_tcp,
            &[
                "--rfc5424",
                "--octet-count",
                "-t",
                "app3",
                "tcp octet counted",
            ],
        ),
        (
            &to_tcp,
            &[
                "--rfc5424",
                "--octet-count",
                "--sd-id",
                "zoo@123",
                "--sd-param",
                "tiger=\"hungry\"",
                "-t",
                "app4",
                "with structured data",
            ],
        ),
        (
            &to_udp,
            &["--rfc5424", "-p", "mail.info", "-t", "app5", "udp 5424"],
        ),
        (&to_udp, &["--rfc3164", "-t", "app6", "udp 3164"]),
    ];
    for (target, args) in cases {
        let mut all = target.to_vec();
        all.extend_from_slice(args);
        logger(&all);
    }
    wait_until("six events in the sink's output", || {
        output_lines(dir.path()).len() >= 6
    });
    assert!(agent.stop(), "SIGTERM must exit 0");
    let events = stored(dir.path());
    assert_eq!(events.len(), 6, "{events:#?}");

    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned();
    let short = hostname.split('.').next().unwrap().to_owned();
    let loopback_name = dns_lookup::lookup_addr(&"127.0.0.1".parse().unwrap())
        .unwrap_or_else(|_| "127.0.0.1".into());
    for e in &events {
        let ts: i64 = e.h("timestamp").expect("timestamp header").parse().unwrap();
        // Same clock, second-resolution RFC 3164 stamps: within a minute of sending.
        assert!(
            (ts - sent_at).abs() < 60_000,
            "timestamp {ts} vs sent at {sent_at}: {e:?}"
        );
        let host = e.h("host").expect("host header");
        assert!(host == hostname || host == short, "{e:?}");
        assert_eq!(e.h("clientip"), Some("127.0.0.1"), "{e:?}");
        assert_eq!(e.h("flume.syslog.status"), None, "{e:?}");
    }

    let e = find(&events, "tcp 5424");
    assert!(
        e.body.starts_with("app1 - - "),
        "body is the message after HOSTNAME: {e:?}"
    );
    assert!(e.body.ends_with("] tcp 5424"), "{e:?}");
    assert_eq!(e.h("Facility"), Some("19"));
    assert_eq!(e.h("Severity"), Some("4"));
    assert_eq!(e.h("priority"), Some("156"));
    assert_eq!(e.h("version"), Some("1"));
    assert_eq!(e.h("clienthost"), Some(loopback_name.as_str()));

    let e = find(&events, "tcp 3164");
    assert_eq!(e.body, "app2: tcp 3164");
    assert_eq!(e.h("Facility"), Some("1"));
    assert_eq!(e.h("Severity"), Some("3"));
    assert_eq!(e.h("priority"), Some("11"));
    assert_eq!(e.h("version"), None);

    let e = find(&events, "tcp octet counted");
    assert!(e.body.starts_with("app3 - - ["), "{e:?}");
    let e = find(&events, "with structured data");
    assert!(
        e.body
            .contains("[zoo@123 tiger=\"hungry\"] with structured data"),
        "{e:?}"
    );

    let e = find(&events, "udp 5424");
    assert!(
        e.body.starts_with("app5 - - ") && e.body.ends_with("] udp 5424"),
        "{e:?}"
    );
    assert_eq!(e.h("Facility"), Some("2"));
    assert_eq!(e.h("Severity"), Some("6"));
    assert_eq!(e.h("clienthost"), None, "not configured on r2");
    let e = find(&events, "udp 3164");
    assert_eq!(e.body, "app6: udp 3164");
    assert_eq!(e.h("priority"), Some("13"));
}

#[test]
fn multiport_keep_fields_port_header_and_batches() {
    let dir = tempfile::tempdir().unwrap();
    let (p1, p2) = (free_port(), free_port());
    let sources = format!(
        "a.sources = r1\n\
         a.sources.r1.type = multiport_syslogtcp\na.sources.r1.host = 127.0.0.1\n\
         a.sources.r1.ports = {p1} {p2}\na.sources.r1.channels = c1\na.sources.r1.portHeader = port\n\
         a.sources.r1.keepFields = priority hostname\na.sources.r1.batchSize = 7\n"
    );
    let cfg = config(dir.path(), &sources, "");
    let mut agent = Agent::start_with(&cfg, p1, &[], Stdio::inherit());
    assert!(support::wait_for_port(p2, Duration::from_secs(10)));
    let mut want = Vec::new();
    for (k, port) in [p1, p2].into_iter().enumerate() {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut bytes = Vec::new();
        for i in 0..50 {
            let msg = format!("<165>1 2003-10-11T22:14:15.003Z host{k} app - - - m{k}-{i:02}");
            want.push((port, format!("<165>host{k} app - - - m{k}-{i:02}")));
            // Alternate the two framings on one connection.
            if i % 2 == 0 {
                bytes.extend_from_slice(format!("{} {msg}", msg.len()).as_bytes());
            } else {
                bytes.extend_from_slice(format!("{msg}\n").as_bytes());
            }
        }
        s.write_all(&bytes).unwrap();
    }
    wait_until("100 events out", || output_lines(dir.path()).len() >= 100);
    assert!(agent.stop());
    let events = stored(dir.path());
    let got: Vec<(u16, String)> = events
        .iter()
        .map(|e| (e.h("port").unwrap().parse().unwrap(), e.body.clone()))
        .collect();
    for port in [p1, p2] {
        let mine = |v: &[(u16, String)]| -> Vec<String> {
            v.iter()
                .filter(|(p, _)| *p == port)
                .map(|(_, b)| b.clone())
                .collect()
        };
        assert_eq!(
            mine(&got),
            mine(&want),
            "port {port}: lost, extra or out of order"
        );
    }
    for e in &events {
        assert_eq!(
            e.h("timestamp"),
            Some("1065910455003"),
            "headers stay when fields are kept in the body"
        );
    }
}

#[test]
fn bad_input_is_logged_kept_and_does_not_disturb_others() {
    let dir = tempfile::tempdir().unwrap();
    let (tcp, udp) = (free_port(), free_port());
    let sources = format!(
        "a.sources = r1 r2\n\
         a.sources.r1.type = syslogtcp\na.sources.r1.host = 127.0.0.1\na.sources.r1.port = {tcp}\n\
         a.sources.r1.channels = c1\na.sources.r1.eventSize = 200\n\
         a.sources.r2.type = syslogudp\na.sources.r2.host = 127.0.0.1\na.sources.r2.port = {udp}\n\
         a.sources.r2.channels = c1\na.sources.r2.eventSize = 200\n"
    );
    let cfg = config(dir.path(), &sources, "");
    let log = dir.path().join("agent.log");
    let mut agent = Agent::start_with(
        &cfg,
        tcp,
        &[],
        Stdio::from(std::fs::File::create(&log).unwrap()),
    );
    let good = |text: &str| format!("<13>1 - goodhost app - - - {text}");
    // A client that connects and says nothing, kept open throughout.
    let _silent = TcpStream::connect(("127.0.0.1", tcp)).unwrap();

    // Garbage bytes, then a digit run that is no octet count, then a good message.
    let mut a = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    let garbage_addr = a.local_addr().unwrap();
    a.write_all(b"\x00\xffgarbage\n12x not a count\n").unwrap();
    a.write_all(format!("{}\n", good("after garbage")).as_bytes())
        .unwrap();
    drop(a);
    // An octet count longer than what follows, then close.
    let mut b = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    let short_addr = b.local_addr().unwrap();
    b.write_all(b"100 <13>1 - h app - - - short").unwrap();
    b.shutdown(Shutdown::Write).unwrap();
    // The agent closes its side once it has taken the message in.
    let mut rest = Vec::new();
    b.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    assert_eq!(b.read_to_end(&mut rest).unwrap(), 0);
    // An over-long line and an over-long octet-counted message, each followed by a good one.
    let mut c = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    let long_line = good(&"L".repeat(300));
    let long_counted = good(&"C".repeat(300));
    c.write_all(format!("{long_line}\n").as_bytes()).unwrap();
    c.write_all(format!("{}\n", good("after long line")).as_bytes())
        .unwrap();
    c.write_all(format!("{} {long_counted}", long_counted.len()).as_bytes())
        .unwrap();
    c.write_all(format!("{}\n", good("after long count")).as_bytes())
        .unwrap();
    drop(c);
    // An oversized datagram, then a good one.
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    let long_datagram = good(&"D".repeat(500));
    u.send_to(long_datagram.as_bytes(), ("127.0.0.1", udp))
        .unwrap();
    u.send_to(good("udp after long").as_bytes(), ("127.0.0.1", udp))
        .unwrap();
    // A well-behaved client afterwards.
    logger(&[
        "-n",
        "127.0.0.1",
        "-P",
        &tcp.to_string(),
        "--tcp",
        "--octet-count",
        "--rfc5424",
        "-t",
        "wellbehaved",
        "still served",
    ]);
    let end = Instant::now() + Duration::from_secs(30);
    while !output_lines(dir.path())
        .iter()
        .any(|l| l.ends_with("still served"))
    {
        assert!(
            Instant::now() < end,
            "the well-behaved client's message did not arrive; output {:#?} in {:?}\nlog:\n{}",
            output_lines(dir.path()),
            std::fs::read_dir(dir.path().join("out")).map(|d| d.count()),
            agent_log(&log)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_until("all thirteen events", || {
        output_lines(dir.path()).len() >= 13
    });
    assert!(agent.stop());

    let events = stored(dir.path());
    assert_eq!(events.len(), 13, "{events:#?}");
    let status = |e: &Stored| e.h("flume.syslog.status").map(str::to_owned);
    let invalid: Vec<&Stored> = events
        .iter()
        .filter(|e| status(e).as_deref() == Some("Invalid"))
        .collect();
    assert_eq!(invalid.len(), 4, "{events:#?}");
    assert_eq!(invalid[0].body, "\u{0}\u{fffd}garbage");
    assert_eq!(invalid[1].body, "12x not a count");
    // What follows the cut of an over-long message is a further event, as in Flume, which
    // has no <PRI>: nothing of the client's bytes is dropped.
    for rest in [
        "L".repeat(long_line.len() - 200),
        "C".repeat(long_counted.len() - 200),
    ] {
        assert!(invalid.iter().any(|e| e.body == rest), "{events:#?}");
    }
    assert_eq!(invalid[0].h("Facility"), Some("0"));
    let e = find(&events, "short");
    assert_eq!(status(e).as_deref(), Some("Incomplete"));
    assert_eq!(e.body, "app - - - short");
    for (prefix, want_len) in [("LLL", 200), ("CCC", 200), ("DDD", 200)] {
        let e = find(&events, prefix);
        assert_eq!(status(e).as_deref(), Some("Incomplete"), "{e:?}");
        assert_eq!(e.h("host"), Some("goodhost"));
        // The body is what follows the header within the first eventSize bytes.
        assert_eq!(e.body.len(), want_len - "<13>1 - goodhost ".len(), "{e:?}");
    }
    for text in [
        "after garbage",
        "after long line",
        "after long count",
        "udp after long",
    ] {
        let e = find(&events, text);
        assert_eq!(e.body, format!("app - - - {text}"));
        assert_eq!(status(e), None);
    }
    assert!(find(&events, "still served").h("priority").is_some());

    let text = agent_log(&log);
    for needle in [
        format!("{garbage_addr}"),
        "is not syslog (it does not start with <PRI>)".into(),
        "'12x not a count' is not an RFC 6587 octet count".into(),
        format!("{short_addr}"),
        "connection closed 25 bytes into a message whose octet count said 100".into(),
        "message longer than eventSize (200 bytes)".into(),
        format!(
            "datagram of {} bytes is longer than eventSize (200 bytes)",
            long_datagram.len()
        ),
    ] {
        assert!(text.contains(&needle), "log lacks {needle:?}:\n{text}");
    }
}

#[test]
fn full_channel_holds_the_connection_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let tcp = free_port();
    let sources = format!(
        "a.sources = r1\n\
         a.sources.r1.type = syslogtcp\na.sources.r1.host = 127.0.0.1\na.sources.r1.port = {tcp}\n\
         a.sources.r1.channels = c1\na.sources.r1.batchSize = 5\n"
    );
    let cfg = config(
        dir.path(),
        &sources,
        "a.channels.c1.capacity = 20\na.channels.c1.transactionCapacity = 10\na.channels.c1.keep-alive = 1\n\
         a.sinks.k1.sink.batchSize = 10\n",
    );
    let log = dir.path().join("agent.log");
    let mut agent = Agent::start_with(
        &cfg,
        tcp,
        &["--log-level", "info"],
        Stdio::from(std::fs::File::create(&log).unwrap()),
    );
    // Block the sink: its output directory becomes a plain file, so it cannot open a file
    // there and rolls back every batch.
    let out = dir.path().join("out");
    std::fs::remove_dir(&out).unwrap();
    std::fs::write(&out, b"").unwrap();
    let mut s = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    let want: Vec<String> = (0..60).map(|i| format!("app - - - held-{i:02}")).collect();
    for w in &want {
        s.write_all(format!("<13>1 - h {w}\n").as_bytes()).unwrap();
    }
    wait_until("the source to hold its batch", || {
        agent_log(&log).contains("channel refused a batch; holding the connection")
    });
    // Unblock the sink: the channel drains, the held batch goes in, and the rest follows.
    std::fs::remove_file(&out).unwrap();
    std::fs::create_dir(&out).unwrap();
    wait_until("all 60 messages out", || {
        output_lines(dir.path()).len() >= 60
    });
    assert!(agent.stop());
    let lines: Vec<String> = output_lines(dir.path());
    assert_eq!(
        lines, want,
        "lost, duplicated or reordered under back-pressure"
    );
    assert!(
        agent_log(&log).contains("channel accepted the held batch"),
        "{}",
        agent_log(&log)
    );
}

/// A message larger than the whole channel (its `byteCapacity`) is dropped with an error line,
/// and the messages around it arrive: before, the source held the connection and retried the
/// batch for ever, and nothing after it ever arrived.
#[test]
fn a_message_larger_than_the_channel_is_dropped_not_retried_for_ever() {
    let dir = tempfile::tempdir().unwrap();
    let tcp = free_port();
    let sources = format!(
        "a.sources = r1\n\
         a.sources.r1.type = syslogtcp\na.sources.r1.host = 127.0.0.1\na.sources.r1.port = {tcp}\n\
         a.sources.r1.channels = c1\na.sources.r1.eventSize = 100000\n"
    );
    let cfg = config(dir.path(), &sources, "a.channels.c1.byteCapacity = 20000\n");
    let log = dir.path().join("agent.log");
    let mut agent = Agent::start_with(
        &cfg,
        tcp,
        &["--log-level", "info"],
        Stdio::from(std::fs::File::create(&log).unwrap()),
    );
    let mut s = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    let want: Vec<String> = (0..40)
        .map(|i| format!("app - - - around-{i:02}"))
        .collect();
    let mut stream = String::new();
    for (i, w) in want.iter().enumerate() {
        stream.push_str(&format!("<13>1 - h {w}\n"));
        if i == 20 {
            stream.push_str(&format!("<13>1 - h app - - - {}\n", "x".repeat(30_000)));
        }
    }
    s.write_all(stream.as_bytes()).unwrap();
    wait_until("the 40 messages around the large one", || {
        output_lines(dir.path()).len() >= 40
    });
    assert!(agent.stop());
    assert_eq!(output_lines(dir.path()), want);
    let text = agent_log(&log);
    assert!(
        text.contains("ERROR")
            && text.contains("source r1: an event of 30087 bytes")
            && text.contains("can never fit in byteCapacity 20000"),
        "{text}"
    );
}

/// One client connection of the crash test: sends octet-counted RFC 5424 messages numbered
/// from 0 until told to stop or the agent goes away; returns how many it wrote.
fn stream_messages(port: u16, cycle: usize, conn: usize, limit: usize, paced: bool) -> usize {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return 0;
    };
    let _ = s.set_nodelay(true);
    let mut sent = 0;
    while sent < limit {
        let msg = crash_message(cycle, conn, sent);
        if s.write_all(format!("{} {msg}", msg.len()).as_bytes())
            .is_err()
        {
            break;
        }
        sent += 1;
        if paced && sent % 10 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    // Kept open: a graceful stop must take in what is already on the socket.
    std::mem::forget(s);
    sent
}

fn crash_message(cycle: usize, conn: usize, seq: usize) -> String {
    let pri = 8 * (seq % 24) + seq % 8;
    format!(
        "<{pri}>1 2024-05-01T10:00:00.000Z host{conn} {}",
        crash_body(cycle, conn, seq)
    )
}

/// What each message's event body must be: the message after its header.
fn crash_body(cycle: usize, conn: usize, seq: usize) -> String {
    format!("app - - - {}", crash_id(cycle, conn, seq))
}

fn crash_id(cycle: usize, conn: usize, seq: usize) -> String {
    format!("c{cycle}-k{conn}-{seq:06} {}", "p".repeat(40))
}

#[test]
fn sigkill_cycles_keep_every_committed_message_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let tcp = free_port();
    let sources = format!(
        "a.sources = r1\n\
         a.sources.r1.type = syslogtcp\na.sources.r1.host = 127.0.0.1\na.sources.r1.port = {tcp}\n\
         a.sources.r1.channels = c1\n"
    );
    let cfg = config(dir.path(), &sources, "");
    const CONNS: usize = 2;
    const KILLS: usize = 4;
    const KILL_LIMIT: usize = 3000;
    // Messages each (cycle, connection) wrote to its socket.
    let mut sent: HashMap<(usize, usize), usize> = HashMap::new();
    for cycle in 0..=KILLS {
        let mut agent = Agent::start_with(&cfg, tcp, &[], Stdio::inherit());
        let last = cycle == KILLS;
        let clients: Vec<_> = (0..CONNS)
            .map(|k| {
                std::thread::spawn(move || {
                    // Paced so that a kill (at most 600 ms in) lands mid-stream.
                    let limit = if last { 400 } else { KILL_LIMIT };
                    stream_messages(tcp, cycle, k, limit, !last)
                })
            })
            .collect();
        if last {
            // Everything is written (connections left open), then a graceful stop at once.
            for (k, c) in clients.into_iter().enumerate() {
                sent.insert((cycle, k), c.join().unwrap());
            }
            assert!(agent.stop(), "SIGTERM must exit 0");
        } else {
            std::thread::sleep(Duration::from_millis(fastrand::u64(200..600)));
            agent.kill9();
            for (k, c) in clients.into_iter().enumerate() {
                sent.insert((cycle, k), c.join().unwrap());
            }
        }
    }
    assert!(
        (0..CONNS).all(|k| sent[&(KILLS, k)] == 400),
        "the last cycle's clients could not write everything: {sent:?}"
    );
    let interrupted = (0..KILLS)
        .flat_map(|c| (0..CONNS).map(move |k| (c, k)))
        .filter(|ck| sent[ck] < KILL_LIMIT)
        .count();
    assert!(
        interrupted > 0,
        "no kill landed mid-stream, the test proves little: {sent:?}"
    );

    let events = stored(dir.path());
    // Per (cycle, connection): the sequence numbers stored, in log order.
    let mut seqs: HashMap<(usize, usize), Vec<usize>> = HashMap::new();
    for e in &events {
        let id = e.body.split(' ').nth(4).unwrap_or_default();
        let parts: Vec<&str> = id.split('-').collect();
        let [c, k, n] = parts[..] else {
            panic!("corrupted event: {e:?}")
        };
        let (cycle, conn, seq): (usize, usize, usize) = (
            c[1..].parse().unwrap(),
            k[1..].parse().unwrap(),
            n.parse().unwrap(),
        );
        assert_eq!(
            e.body,
            crash_body(cycle, conn, seq),
            "corrupted body: {e:?}"
        );
        let pri = 8 * (seq % 24) + seq % 8;
        assert_eq!(e.h("priority"), Some(pri.to_string().as_str()), "{e:?}");
        assert_eq!(e.h("Facility"), Some((seq % 24).to_string().as_str()));
        assert_eq!(e.h("Severity"), Some((seq % 8).to_string().as_str()));
        assert_eq!(e.h("host"), Some(format!("host{conn}").as_str()));
        assert_eq!(e.h("timestamp"), Some("1714557600000"));
        seqs.entry((cycle, conn)).or_default().push(seq);
    }
    for ((cycle, conn), got) in &seqs {
        assert!(
            got.len() <= sent[&(*cycle, *conn)],
            "cycle {cycle} connection {conn}: more stored than sent"
        );
        // Batches of one connection are committed in order and never retried after a commit:
        // what survives is exactly a prefix of what the connection sent.
        let prefix: Vec<usize> = (0..got.len()).collect();
        assert_eq!(
            got, &prefix,
            "cycle {cycle} connection {conn}: not a prefix, in order, without duplicates"
        );
    }
    for k in 0..CONNS {
        assert_eq!(
            seqs.get(&(KILLS, k)).map(Vec::len),
            Some(400),
            "graceful stop: connection {k} lost messages that were already on its socket"
        );
    }
    let killed: usize = (0..KILLS)
        .flat_map(|c| (0..CONNS).map(move |k| (c, k)))
        .map(|ck| seqs.get(&ck).map_or(0, Vec::len))
        .sum();
    assert!(
        killed > 0,
        "the kill cycles stored nothing: the test proves nothing"
    );

    // Every stored event is delivered by the sink after a restart (some twice: at-least-once).
    let want: BTreeSet<String> = events.iter().map(|e| e.body.clone()).collect();
    let mut agent = Agent::start_with(&cfg, tcp, &[], Stdio::inherit());
    wait_until("every stored event delivered", || {
        let got: BTreeSet<String> = output_lines(dir.path()).into_iter().collect();
        want.is_subset(&got)
    });
    assert!(agent.stop());
    let got: BTreeSet<String> = output_lines(dir.path()).into_iter().collect();
    assert_eq!(got, want, "the sink delivered something never stored");
    eprintln!(
        "{KILLS} kills ({interrupted} streams cut mid-way): {} events stored ({killed} in the killed cycles), {} lines delivered",
        events.len(),
        output_lines(dir.path()).len()
    );
}

#[test]
fn flume_class_names_and_config_errors() {
    let check = |text: &str| check_config(text, Some("a"));
    let base = "a.sources = r1 r2 r3\na.channels = c1\n\
        a.sources.r1.type = org.apache.flume.source.SyslogTcpSource\na.sources.r1.port = 5140\na.sources.r1.channels = c1\n\
        a.sources.r2.type = org.apache.flume.source.SyslogUDPSource\na.sources.r2.port = 5140\na.sources.r2.channels = c1\n\
        a.sources.r3.type = org.apache.flume.source.MultiportSyslogTCPSource\na.sources.r3.ports = 10001 10002\n\
        a.sources.r3.channels = c1\na.sources.r3.charset.default = UTF-8\n\
        a.channels.c1.type = memory\n";
    let (ok, out) = check(base);
    assert!(ok, "{out}");
    for want in [
        "[syslogtcp]",
        "[syslogudp]",
        "[multiport_syslogtcp]",
        "charset.default",
    ] {
        assert!(out.contains(want), "{want:?} not in\n{out}");
    }
    let (ok, out) = check(&format!(
        "{base}a.sources.r1.keepFields = hostname tmestamp\n"
    ));
    assert!(!ok);
    assert!(
        out.contains("a.sources.r1.keepFields") && out.contains("'tmestamp'"),
        "{out}"
    );
    let (ok, out) = check(&base.replace("ports = 10001 10002", "ports = 10001 x"));
    assert!(
        !ok && out.contains("a.sources.r3.ports") && out.contains("'x'"),
        "{out}"
    );
}

/// A syslogtcp source on `port` with `ssl = true` and the fixtures' PKCS#12 server key.
fn tls_source(port: u16, stores: &std::path::Path) -> String {
    format!(
        "a.sources = r1\n\
         a.sources.r1.type = syslogtcp\na.sources.r1.host = 127.0.0.1\n\
         a.sources.r1.port = {port}\na.sources.r1.channels = c1\n\
         a.sources.r1.ssl = true\na.sources.r1.keystore = {}\n\
         a.sources.r1.keystore-password = store-pass\na.sources.r1.keystore-type = PKCS12\n",
        stores.join("server.p12").display()
    )
}

/// A syslog client over TLS 1.3 never reads: it sends its lines and closes the socket at once,
/// without TLS's close. Session tickets the server sent after the handshake would sit unread
/// in its socket and turn that close into a reset, and the server's kernel would drop every
/// line not yet read (2,185 of 20,000 arrived in audit 18). Every line must arrive.
#[test]
fn syslog_over_tls_loses_nothing_when_the_client_closes_without_reading() {
    use openssl::ssl::{SslConnector, SslMethod, SslVersion};
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let stores = support::java_stores();
    let cfg = config(dir.path(), &tls_source(port, &stores), "");
    let mut agent = Agent::start_with(&cfg, port, &[], Stdio::inherit());
    let mut connector = SslConnector::builder(SslMethod::tls_client()).unwrap();
    connector.set_ca_file(stores.join("ca.pem")).unwrap();
    connector
        .set_min_proto_version(Some(SslVersion::TLS1_3))
        .unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut tls = connector.build().connect("127.0.0.1", tcp).unwrap();
    let mut batch = String::new();
    for i in 0..20_000 {
        batch.push_str(&format!(
            "<165>1 2003-10-11T22:14:15.003Z tlshost app - - - line-{i:05}\n"
        ));
    }
    tls.write_all(batch.as_bytes()).unwrap();
    // No shutdown, no read: the socket closes as the stream drops.
    drop(tls);
    wait_until("20,000 events out", || {
        output_lines(dir.path()).len() >= 20_000
    });
    assert!(agent.stop());
    assert_eq!(stored(dir.path()).len(), 20_000);
}

/// `ssl = true` (Flume 1.9+): syslog over TLS with a Java key store. A client checking the
/// certificate against the CA sends both framings over several TLS records; every message
/// arrives in order with its headers. A plain-TCP client's bytes are not stored.
#[test]
fn syslog_over_tls_with_a_java_key_store() {
    use openssl::ssl::{SslConnector, SslMethod};
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let stores = support::java_stores();
    let cfg = config(dir.path(), &tls_source(port, &stores), "");
    let mut agent = Agent::start_with(&cfg, port, &[], Stdio::inherit());

    // Plain TCP to the TLS port: the handshake fails and nothing is stored.
    let mut plain = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let _ = plain.write_all(b"<13>Oct 11 22:14:15 host app: plain text\n");
    let _ = plain.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = plain.read(&mut [0u8; 64]);

    let mut connector = SslConnector::builder(SslMethod::tls_client()).unwrap();
    connector.set_ca_file(stores.join("ca.pem")).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut tls = connector.build().connect("127.0.0.1", tcp).unwrap();
    let mut want = Vec::new();
    for i in 0..300 {
        let msg = format!("<165>1 2003-10-11T22:14:15.003Z tlshost app - - - secret-{i:03}");
        want.push(format!("secret-{i:03}"));
        let framed = if i % 2 == 0 {
            format!("{} {msg}", msg.len())
        } else {
            format!("{msg}\n")
        };
        // One record per message: the framer sees messages cut across reads.
        tls.write_all(framed.as_bytes()).unwrap();
    }
    tls.shutdown().unwrap();
    wait_until("300 events out", || output_lines(dir.path()).len() >= 300);
    assert!(agent.stop());
    let events = stored(dir.path());
    let bodies: Vec<String> = events
        .iter()
        .map(|e| e.body.rsplit(' ').next().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(bodies, want, "lost, extra or out of order");
    assert!(events.iter().all(|e| e.h("host") == Some("tlshost")));
}
