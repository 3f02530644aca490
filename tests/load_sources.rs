//! Flume's load-generating and datagram sources, run by the real `weir` binary from configs as
//! Flume's User Guide writes them: `org.apache.flume.source.StressSource` and `netcatudp`.

mod support;

use std::net::UdpSocket;
use std::path::{Path, PathBuf};

use support::{output_lines, start_logged, wait_until};

/// `source` lines (for source `r1`) → file channel in `dir` → file_roll into `dir/out`.
fn config(dir: &Path, source: &str) -> PathBuf {
    let text = format!(
        "a.sources = r1\na.channels = c1\na.sinks = k1\na.sources.r1.channels = c1\n{source}\
         a.channels.c1.type = file\na.channels.c1.checkpointDir = {d}/ckpt\na.channels.c1.dataDirs = {d}/log\n\
         a.channels.c1.minimumRequiredSpace = 0\n\
         a.sinks.k1.type = file_roll\na.sinks.k1.channel = c1\na.sinks.k1.sink.directory = {d}/out\n\
         a.sinks.k1.sink.rollInterval = 0\n",
        d = dir.display()
    );
    let path = dir.join("agent.properties");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_user_guides_stress_source_puts_exactly_max_total_events() {
    let dir = tempfile::tempdir().unwrap();
    // The User Guide's example, with a smaller total and a batch size.
    let cfg = config(
        dir.path(),
        "a.sources.r1.type = org.apache.flume.source.StressSource\n\
         a.sources.r1.size = 10240\na.sources.r1.maxTotalEvents = 2500\n\
         a.sources.r1.batchSize = 100\n",
    );
    let (mut agent, _) = start_logged(dir.path(), &cfg);
    let body = "\u{7f}".repeat(10240);
    wait_until("2500 stress events in the sink's files", || {
        output_lines(dir.path()).len() >= 2500
    });
    // Nothing more comes: the source stops at maxTotalEvents.
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(agent.stop());
    let lines = output_lines(dir.path());
    assert_eq!(lines.len(), 2500);
    assert!(
        lines.iter().all(|l| *l == body),
        "a body is not 10240 × 0x7F"
    );
}

#[test]
fn the_stress_source_paces_itself_to_max_events_per_second() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "a.sources.r1.type = org.apache.flume.source.StressSource\n\
         a.sources.r1.size = 4\na.sources.r1.batchSize = 10\n\
         a.sources.r1.maxEventsPerSecond = 200\n",
    );
    let (mut agent, _) = start_logged(dir.path(), &cfg);
    wait_until("the first paced events", || {
        !output_lines(dir.path()).is_empty()
    });
    let start = std::time::Instant::now();
    let first = output_lines(dir.path()).len();
    std::thread::sleep(std::time::Duration::from_secs(1));
    let later = output_lines(dir.path()).len();
    let elapsed = start.elapsed().as_secs_f64();
    assert!(agent.stop());
    // 200 a second; unpaced it would be hundreds of thousands. Generous bounds: the machine
    // may be slow, and the sink commits in batches.
    let rate = (later - first) as f64 / elapsed;
    assert!(
        rate < 600.0,
        "{rate} events/s with maxEventsPerSecond = 200"
    );
}

#[test]
fn netcatudp_puts_each_datagram_with_the_senders_address() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let cfg = config(
        dir.path(),
        &format!(
            "a.sources.r1.type = netcatudp\na.sources.r1.bind = 127.0.0.1\n\
             a.sources.r1.port = {port}\na.sources.r1.remoteAddressHeader = remote\n"
        ),
    );
    let (mut agent, _) = start_logged(dir.path(), &cfg);
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    let expected: Vec<String> = (0..200).map(|i| format!("datagram {i}")).collect();
    // UDP may drop a datagram sent before the agent bound its socket: send until the first
    // arrives, then the rest.
    wait_until("the agent to take in a datagram", || {
        client
            .send_to(
                b"hello\nthe rest of the datagram is dropped",
                ("127.0.0.1", port),
            )
            .unwrap();
        output_lines(dir.path()).iter().any(|l| l == "hello")
    });
    for line in &expected {
        client
            .send_to(line.as_bytes(), ("127.0.0.1", port))
            .unwrap();
        // Loopback drops nothing while the socket buffer has room; pace a little all the same.
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    wait_until("200 datagrams in the sink's files", || {
        output_lines(dir.path())
            .iter()
            .filter(|l| l.starts_with("datagram "))
            .count()
            >= 200
    });
    assert!(agent.stop());
    let lines = output_lines(dir.path());
    assert!(
        lines
            .iter()
            .all(|l| l == "hello" || l.starts_with("datagram ")),
        "{lines:?}"
    );
    let got: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("datagram "))
        .collect();
    assert_eq!(got, expected.iter().collect::<Vec<_>>());
    // The header went into the channel with each event.
    let events = support::logged_events(&dir.path().join("log"));
    let from = format!("/{}", client.local_addr().unwrap());
    assert!(!events.is_empty());
    assert!(
        events
            .iter()
            .all(|e| e.headers.iter().any(|(k, v)| k == "remote" && *v == from)),
        "an event without remote = {from}"
    );
}
