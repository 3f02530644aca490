//! The metrics endpoint as a scraper (or an attacker) sees it: the real `weir` binary started
//! with `--metrics-port`, spoken to over raw TCP so requests can be malformed, stalled or lying
//! about their length.

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use support::{Agent, free_port};

/// An agent with netcat → memory channel → null sink, metrics on the returned port.
fn start(dir: &Path) -> (Agent, u16) {
    let (port, mport) = (free_port(), free_port());
    let text = format!(
        "a.sources = r1\na.channels = c1\na.sinks = k1\n\
         a.sources.r1.type = netcat\na.sources.r1.bind = 127.0.0.1\na.sources.r1.port = {port}\n\
         a.sources.r1.channels = c1\na.channels.c1.type = memory\n\
         a.sinks.k1.type = null\na.sinks.k1.channel = c1\n"
    );
    let cfg = dir.join("agent.properties");
    std::fs::write(&cfg, text).unwrap();
    let agent = Agent::start_with(
        &cfg,
        mport,
        &[
            "--metrics-port",
            &mport.to_string(),
            "--metrics-bind",
            "127.0.0.1",
        ],
        Stdio::inherit(),
    );
    (agent, mport)
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the metrics port");
    // Generous: only a hung server gets near it, and then the test should fail, not hang.
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

struct Response {
    status: u16,
    /// Header names lower-cased.
    headers: HashMap<String, String>,
    body: String,
}

/// Reads one response framed by its Content-Length (so a kept-alive connection can carry on).
fn read_response(r: &mut impl BufRead) -> Response {
    let mut line = String::new();
    r.read_line(&mut line).expect("read the status line");
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {line:?}"));
    let mut headers = HashMap::new();
    loop {
        line.clear();
        r.read_line(&mut line).expect("read a header line");
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').expect("a header field");
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
    }
    let len: usize = headers["content-length"].parse().unwrap();
    let mut body = vec![0; len];
    r.read_exact(&mut body).expect("read the body");
    Response {
        status,
        headers,
        body: String::from_utf8(body).unwrap(),
    }
}

/// Sends `request` as it is on a new connection and reads the reply.
fn exchange(port: u16, request: &[u8]) -> Response {
    let mut s = connect(port);
    s.write_all(request).unwrap();
    read_response(&mut BufReader::new(s))
}

fn get(port: u16, path: &str) -> Response {
    exchange(
        port,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// The Flume JSON of a live agent: names its components, every value a string.
fn assert_flume_json(r: &Response) {
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers["content-type"], "application/json");
    let json: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(json["CHANNEL.c1"]["Type"], "CHANNEL");
    assert_eq!(json["SOURCE.r1"]["EventAcceptedCount"], "0");
    assert_eq!(json["SINK.k1"]["Type"], "SINK");
    // No error yet: none, at time 0.
    assert_eq!(json["SINK.k1"]["LastError"], "");
    assert_eq!(json["SINK.k1"]["LastErrorTime"], "0");
}

/// Sends `request` on a new connection and returns all the server sent until it closed (or went
/// quiet, or died; nothing if it could not be reached): whatever happens, the caller goes on to
/// ask whether the agent survived.
fn send_raw(port: u16, request: &[u8]) -> Vec<u8> {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return Vec::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

#[test]
fn a_body_declared_larger_than_memory_is_refused_and_the_agent_lives_on() {
    // tiny_http, which served metrics before, allocated the declared length when the body was
    // left unread: the first of these requests aborted the whole agent.
    let dir = tempfile::tempdir().unwrap();
    let (mut agent, mport) = start(dir.path());
    let replies: Vec<Vec<u8>> = [
        "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\nabc",
        "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\nabc",
        // A chunked body of unknown length.
        "GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nabc",
    ]
    .iter()
    .map(|req| send_raw(mport, req.as_bytes()))
    .collect();

    let after = send_raw(
        mport,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        !after.is_empty(),
        "the agent stopped answering after a request declaring a huge body"
    );
    assert_flume_json(&read_response(&mut &after[..]));

    let statuses: Vec<u16> = replies
        .iter()
        .map(|raw| {
            let r = read_response(&mut &raw[..]);
            // The body was left unread, so the stream cannot carry another request.
            assert_eq!(r.headers["connection"], "close", "{}", r.body);
            assert!(r.body.contains("no body"), "{}", r.body);
            r.status
        })
        .collect();
    assert_eq!(statuses, [413, 413, 413]);
    assert!(agent.stop(), "the agent exits cleanly");
}

#[test]
fn a_stalled_client_does_not_hold_up_a_scrape_or_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let (mut agent, mport) = start(dir.path());
    // Half a request line, then silence; and a request head that never ends.
    let mut stalled = connect(mport);
    stalled.write_all(b"GET /metr").unwrap();
    let mut silent = connect(mport);
    silent
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    assert_flume_json(&get(mport, "/metrics"));
    let prom = get(mport, "/metrics/prometheus");
    assert_eq!(prom.status, 200);
    assert!(
        prom.body.contains("weir_channel_size{name=\"c1\"} 0"),
        "{}",
        prom.body
    );
    // Their connections are still open, yet the agent stops: each notices the stop flag.
    assert!(
        agent.stop(),
        "the agent exits cleanly with stalled clients connected"
    );
    drop((stalled, silent));
}

/// Clients that open connections and send nothing (audit 32: 32 of them turned every scrape
/// away with 503 for 10 s) leave room for a scrape.
#[test]
fn idle_connections_do_not_turn_a_scrape_away() {
    let dir = tempfile::tempdir().unwrap();
    let (mut agent, mport) = start(dir.path());
    let idle: Vec<TcpStream> = (0..40).map(|_| connect(mport)).collect();
    std::thread::sleep(Duration::from_millis(200));
    assert_flume_json(&get(mport, "/metrics"));
    drop(idle);
    assert!(agent.stop());
}

#[test]
fn paths_methods_and_kept_alive_connections() {
    let dir = tempfile::tempdir().unwrap();
    let (mut agent, mport) = start(dir.path());

    let r = get(mport, "/nope");
    assert_eq!(r.status, 404);
    assert_eq!(r.body, "not found: try /metrics or /metrics/prometheus\n");
    // As Flume's metrics server: any method but TRACE and OPTIONS gets the metrics, the path
    // in any case, and `/` a page linking to them.
    for method in ["POST", "DELETE"] {
        let request = format!("{method} /METRICS HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assert_flume_json(&exchange(mport, request.as_bytes()));
    }
    let r = exchange(
        mport,
        b"TRACE /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let r = get(mport, "/");
    assert_eq!(r.status, 200);
    assert!(r.body.contains("href='./metrics'"), "{}", r.body);
    let r = exchange(mport, b"NOT HTTP AT ALL\r\n\r\n");
    assert_eq!(r.status, 400, "{}", r.body);
    assert_flume_json(&get(mport, "/metrics?pretty=1"));

    // Prometheus keeps its connection open between scrapes: two requests sent together on
    // one connection, then a third after reading, are all answered.
    let s = connect(mport);
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    w.write_all(
        b"GET /metrics/prometheus HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .unwrap();
    let prom = read_response(&mut r);
    assert_eq!(prom.status, 200);
    assert_eq!(prom.headers["content-type"], "text/plain; version=0.0.4");
    assert_eq!(prom.headers["connection"], "keep-alive");
    assert!(
        prom.body
            .contains("weir_source_events_accepted_total{name=\"r1\"} 0"),
        "{}",
        prom.body
    );
    assert_flume_json(&read_response(&mut r));
    w.write_all(b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut r).status, 404);

    assert!(agent.stop());
}

/// The attributes Flume's counters have for a netcat source and a file channel: netcat counts
/// events and no calls (weir groups lines into transactions, Flume's source does not), and the
/// file channel adds its health.
#[test]
fn netcat_and_file_channel_attributes_as_flume_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let (port, mport) = (free_port(), free_port());
    let d = dir.path().display();
    let text = format!(
        "a.sources = r1\na.channels = c1\na.sinks = k1\n\
         a.sources.r1.type = netcat\na.sources.r1.bind = 127.0.0.1\na.sources.r1.port = {port}\n\
         a.sources.r1.channels = c1\na.channels.c1.type = file\n\
         a.channels.c1.checkpointDir = {d}/ckpt\na.channels.c1.dataDirs = {d}/log\n\
         a.channels.c1.minimumRequiredSpace = 0\n\
         a.sinks.k1.type = null\na.sinks.k1.channel = c1\n"
    );
    let cfg = dir.path().join("agent.properties");
    std::fs::write(&cfg, text).unwrap();
    let mut agent = Agent::start_with(
        &cfg,
        port,
        &["--metrics-port", &mport.to_string()],
        Stdio::inherit(),
    );
    let mut client = support::Client::new(port);
    for line in ["one", "two", "three"] {
        assert!(client.send(line));
    }
    support::wait_until("three events taken", || {
        support::metric(mport, "CHANNEL.c1", "EventTakeSuccessCount") == Some(3)
    });
    let json: serde_json::Value = serde_json::from_str(&get(mport, "/metrics").body).unwrap();
    let source = &json["SOURCE.r1"];
    for (name, want) in [
        ("EventReceivedCount", "3"),
        ("EventAcceptedCount", "3"),
        ("AppendReceivedCount", "0"),
        ("AppendAcceptedCount", "0"),
        ("AppendBatchReceivedCount", "0"),
        ("AppendBatchAcceptedCount", "0"),
        ("EventReadFail", "0"),
        ("ChannelWriteFail", "0"),
        ("GenericProcessingFail", "0"),
    ] {
        assert_eq!(source[name], want, "SOURCE.r1 {name}: {source}");
    }
    let channel = &json["CHANNEL.c1"];
    for (name, want) in [
        ("Open", "true"),
        ("Unhealthy", "0"),
        ("EventPutErrorCount", "0"),
        ("EventTakeErrorCount", "0"),
        ("CheckpointWriteErrorCount", "0"),
        ("CheckpointBackupWriteErrorCount", "0"),
        ("EventPutSuccessCount", "3"),
    ] {
        assert_eq!(channel[name], want, "CHANNEL.c1 {name}: {channel}");
    }
    let prom = get(mport, "/metrics/prometheus").body;
    assert!(
        prom.lines()
            .any(|l| l.starts_with("weir_channel_open{") && l.ends_with(" 1")),
        "{prom}"
    );
    assert!(agent.stop());
}
