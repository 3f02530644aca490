//! The http source as a client sees it: the real `weir` binary, `curl` as the client (and a
//! minimal client over TcpStream where many requests or raw bytes are needed), Flume
//! properties files, and the file channel's log read back to check headers.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Agent, check_config, free_port, output_lines, wait_until};

const CURL: &str = "/usr/bin/curl";

/// http on `port` → file channel c1 in `dir`, plus `extra` lines (sinks, limits).
fn config(dir: &Path, port: u16, extra: &str) -> PathBuf {
    let text = format!(
        "a.sources = r1\na.channels = c1\n\
         a.sources.r1.type = http\na.sources.r1.bind = 127.0.0.1\na.sources.r1.port = {port}\na.sources.r1.channels = c1\n\
         a.channels.c1.type = file\na.channels.c1.checkpointDir = {d}/ckpt\na.channels.c1.dataDirs = {d}/log\n\
         a.channels.c1.minimumRequiredSpace = 0\na.channels.c1.maxFileSize = 1048576\n{extra}",
        d = dir.display()
    );
    let path = dir.join("agent.properties");
    std::fs::write(&path, text).unwrap();
    path
}

/// A file_roll sink draining c1 into `dir/out`.
const FILE_ROLL: &str = "a.sinks = k1\na.sinks.k1.type = file_roll\na.sinks.k1.channel = c1\n\
    a.sinks.k1.sink.batchSize = 100\na.sinks.k1.sink.rollInterval = 0\n";

fn file_roll(dir: &Path) -> String {
    format!(
        "{FILE_ROLL}a.sinks.k1.sink.directory = {}/out\n",
        dir.display()
    )
}

/// POSTs (or sends with `args`) through curl; (status, response body).
fn curl(port: u16, args: &[&str]) -> (u16, String) {
    assert!(
        Path::new(CURL).exists(),
        "{CURL} is required by these tests (apt-get install curl)"
    );
    let out = Command::new(CURL)
        .args(["-sS", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}"])
        .args(args)
        .arg(format!("http://127.0.0.1:{port}/events"))
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

fn post_json(port: u16, json: &str) -> (u16, String) {
    curl(port, &["--data-binary", json])
}

/// One request over a fresh connection: the status and body of the reply, `None` when the
/// connection failed (as it does while the agent is down).
fn raw_request(port: u16, request: &[u8]) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    s.write_all(request).ok()?;
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).ok()?;
    let text = String::from_utf8_lossy(&reply).into_owned();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
}

fn post_raw(port: u16, json: &str) -> Option<(u16, String)> {
    raw_request(
        port,
        format!(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{json}",
            json.len()
        )
        .as_bytes(),
    )
}

/// Every event in the file channel's log, in order: (headers, body).
fn logged_events(dir: &Path) -> Vec<(BTreeMap<String, String>, String)> {
    support::logged_events(&dir.join("log"))
        .into_iter()
        .map(|e| {
            (
                e.headers.into_iter().collect(),
                String::from_utf8_lossy(&e.body).into_owned(),
            )
        })
        .collect()
}

fn headers(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn events_arrive_with_headers_and_bad_requests_get_clear_replies() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // No sink: the events stay in the log, where their headers can be read back.
    let cfg = config(
        dir.path(),
        port,
        "a.sinks =\na.sources.r1.maxBodyBytes = 2000\n",
    );
    let mut agent = Agent::start(&cfg, port);

    let (status, body) = post_json(
        port,
        r#"[{"headers":{"host":"web-1","level":"warn"},"body":"disk almost full"},
            {"body":"no headers here"},
            {"headers":{"ts":1700000000000},"body":"caf\u00e9 \u2603 \"quoted\""}]"#,
    );
    assert_eq!((status, body.as_str()), (200, ""));
    let (status, _) = post_json(port, "[]");
    assert_eq!(status, 200, "an empty list is accepted and stores nothing");
    // Chunked transfer coding, and Expect: 100-continue.
    let (status, body) = curl(
        port,
        &[
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            r#"[{"headers":{"via":"chunked"},"body":"sent in chunks"}]"#,
        ],
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = curl(
        port,
        &[
            "-H",
            "Expect: 100-continue",
            "--data-binary",
            r#"[{"body":"after 100-continue"}]"#,
        ],
    );
    assert_eq!(status, 200, "{body}");

    let (status, body) = post_json(port, r#"[{"body":"unfinished"}, {"body": tru"#);
    assert_eq!(status, 400);
    assert!(
        body.contains("invalid JSON") && body.contains("line 1 column"),
        "{body}"
    );
    let (status, body) = post_json(port, r#"{"body":"an object, not a list"}"#);
    assert_eq!(status, 400);
    assert!(body.contains("expected a JSON array of events"), "{body}");
    let (status, body) = post_json(port, "[{\"body\":\"ok\"},\n {\"headers\":{\"k\":[1]}}]");
    assert_eq!(status, 400);
    assert!(
        body.contains("line 2") && body.contains("in event 1"),
        "{body}"
    );

    let (status, body) = curl(port, &[]);
    assert_eq!(status, 405, "GET: {body}");
    assert!(body.contains("POST"), "{body}");
    let (status, _) = curl(port, &["-X", "PUT", "--data-binary", "[]"]);
    assert_eq!(status, 405);

    let big = format!(r#"[{{"body":"{}"}}]"#, "x".repeat(3000));
    let (status, body) = post_json(port, &big);
    assert_eq!(status, 413, "{body}");
    assert!(
        body.contains("2000") && body.contains("maxBodyBytes"),
        "{body}"
    );
    let (status, body) = curl(port, &["-H", "Expect: 100-continue", "--data-binary", &big]);
    assert_eq!(
        status, 413,
        "with Expect the body is refused unsent: {body}"
    );
    let (status, body) = curl(
        port,
        &["-H", "Transfer-Encoding: chunked", "--data-binary", &big],
    );
    assert_eq!(status, 413, "chunked: {body}");
    let (status, body) = curl(
        port,
        &[
            "-H",
            "Content-Type: application/json; charset=UTF-16",
            "--data-binary",
            "[]",
        ],
    );
    assert_eq!(status, 415, "{body}");
    // A declared length no process could hold is refused without a byte of it being read.
    let reply = raw_request(
        port,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n[",
    );
    assert_eq!(reply.map(|r| r.0), Some(413));

    // The agent is still serving after all that.
    let (status, _) = post_json(port, r#"[{"body":"still here"}]"#);
    assert_eq!(status, 200);
    assert!(agent.stop(), "SIGTERM must exit 0");

    let events = logged_events(dir.path());
    assert_eq!(
        events,
        vec![
            (
                headers(&[("host", "web-1"), ("level", "warn")]),
                "disk almost full".into()
            ),
            (BTreeMap::new(), "no headers here".into()),
            (
                headers(&[("ts", "1700000000000")]),
                "café ☃ \"quoted\"".into()
            ),
            (headers(&[("via", "chunked")]), "sent in chunks".into()),
            (BTreeMap::new(), "after 100-continue".into()),
            (BTreeMap::new(), "still here".into()),
        ],
        "exactly the accepted events, nothing from refused requests"
    );
}

#[test]
fn full_channel_gets_503_then_200_once_there_is_room() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(
        dir.path(),
        port,
        &format!(
            "{}a.sinks.k1.sink.batchSize = 3\na.channels.c1.capacity = 6\na.channels.c1.transactionCapacity = 3\na.channels.c1.keep-alive = 0\n",
            file_roll(dir.path())
        ),
    );
    let mut agent = Agent::start(&cfg, port);
    // The sink cannot write: its directory is now a plain file.
    let out = dir.path().join("out");
    std::fs::remove_dir(&out).unwrap();
    std::fs::write(&out, b"not a directory").unwrap();

    let mut acked = Vec::new();
    let mut refusal = None;
    for i in 0..10 {
        let json = format!(r#"[{{"body":"full-{i}a"}},{{"body":"full-{i}b"}}]"#);
        let (status, body) = post_json(port, &json);
        match status {
            200 => acked.extend([format!("full-{i}a"), format!("full-{i}b")]),
            503 => {
                refusal = Some((i, body));
                break;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    let (i, body) = refusal.expect("the channel never reported full");
    assert!(body.contains("channel c1 is full"), "{body}");
    assert_eq!(acked.len(), 6, "the channel holds 6 events");
    let (status, body) = post_json(
        port,
        r#"[{"body":"1"},{"body":"2"},{"body":"3"},{"body":"4"}]"#,
    );
    assert_eq!(status, 413, "more than one transaction may hold: {body}");
    assert!(body.contains("transactionCapacity"), "{body}");

    // Room again: the sink can write, drains, and new requests are accepted.
    std::fs::remove_file(&out).unwrap();
    std::fs::create_dir(&out).unwrap();
    let retry = format!(r#"[{{"body":"full-{i}a"}},{{"body":"full-{i}b"}}]"#);
    wait_until("the channel to accept again", || {
        let (status, body) = post_json(port, &retry);
        assert!(status == 200 || status == 503, "{status}: {body}");
        status == 200
    });
    acked.extend([format!("full-{i}a"), format!("full-{i}b")]);
    wait_until("every acknowledged event in the output", || {
        output_lines(dir.path()).len() >= acked.len()
    });
    assert!(agent.stop());
    assert_eq!(
        output_lines(dir.path()),
        acked,
        "everything acknowledged, in order, once"
    );
}

/// A request larger than the channel's byteCapacity is stored in puts that fit (it used to be
/// refused with 503 for ever); an event that could never fit is refused with 413, and nothing of
/// its request is stored.
#[test]
fn a_request_over_the_byte_capacity_is_stored_and_an_event_over_it_gets_413() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(
        dir.path(),
        port,
        &format!(
            "{}a.channels.c1.byteCapacity = 4096\n",
            file_roll(dir.path())
        ),
    );
    let mut agent = Agent::start(&cfg, port);
    let bodies: Vec<String> = (0..6).map(|i| format!("{i}{}", "b".repeat(1999))).collect();
    let json = format!(
        "[{}]",
        bodies
            .iter()
            .map(|b| format!(r#"{{"body":"{b}"}}"#))
            .collect::<Vec<_>>()
            .join(",")
    );
    let (status, body) = post_json(port, &json);
    assert_eq!(status, 200, "{body}");

    let big = format!(
        r#"[{{"body":"refused-small"}},{{"body":"{}"}}]"#,
        "x".repeat(5000)
    );
    let (status, body) = post_json(port, &big);
    assert_eq!(status, 413, "{body}");
    assert!(
        body.contains("can never fit in byteCapacity 4096"),
        "{body}"
    );

    wait_until("the six events in the output", || {
        output_lines(dir.path()).len() >= 6
    });
    assert!(agent.stop());
    assert_eq!(output_lines(dir.path()), bodies, "all six, in order, once");
}

#[test]
fn a_stalled_client_does_not_hold_up_others() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(dir.path(), port, "a.sinks =\n");
    let mut agent = Agent::start(&cfg, port);
    // One client sends a head announcing a body it never sends...
    let mut stalled = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stalled
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n[{\"body\":")
        .unwrap();
    // ...while others are answered; a keep-alive connection carries several requests.
    let (status, _) = post_json(port, r#"[{"body":"other client"}]"#);
    assert_eq!(status, 200);
    let mut keep = TcpStream::connect(("127.0.0.1", port)).unwrap();
    keep.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    for i in 0..3 {
        let json = format!(r#"[{{"body":"keep-alive {i}"}}]"#);
        write!(
            keep,
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{json}",
            json.len()
        )
        .unwrap();
        let mut reply = [0u8; 512];
        let n = keep.read(&mut reply).unwrap();
        let text = String::from_utf8_lossy(&reply[..n]);
        assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
        assert!(text.contains("Connection: keep-alive"), "{text}");
    }
    // Stopping does not wait for the stalled client: it is told to retry.
    let start = Instant::now();
    assert!(agent.stop());
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "stop took {:?}",
        start.elapsed()
    );
    let mut reply = String::new();
    stalled
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = stalled.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 503 "), "{reply:?}");
    let bodies: Vec<String> = logged_events(dir.path())
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    assert_eq!(
        bodies,
        [
            "other client",
            "keep-alive 0",
            "keep-alive 1",
            "keep-alive 2"
        ]
    );
}

#[test]
fn sigkill_during_concurrent_posts_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(dir.path(), port, &file_roll(dir.path()));
    let cycles: u32 = std::env::var("WEIR_HTTP_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let mut acked: Vec<String> = Vec::new();
    for cycle in 0..cycles {
        let mut agent = Agent::start(&cfg, port);
        let kill_at = Instant::now() + Duration::from_millis(fastrand::u64(200..800));
        let clients: Vec<_> = (0..4)
            .map(|c| {
                std::thread::spawn(move || {
                    let mut mine = Vec::new();
                    let mut r = 0u64;
                    loop {
                        r += 1;
                        let events: Vec<String> =
                            (0..3).map(|e| format!("c{cycle}-{c}-{r}-{e}")).collect();
                        let json = format!(
                            "[{}]",
                            events
                                .iter()
                                .map(|b| format!(r#"{{"headers":{{"n":"{r}"}},"body":"{b}"}}"#))
                                .collect::<Vec<_>>()
                                .join(",")
                        );
                        match post_raw(port, &json) {
                            Some((200, _)) => mine.extend(events),
                            Some((status, body)) => panic!("{status}: {body}"),
                            // The agent is gone.
                            None => return mine,
                        }
                    }
                })
            })
            .collect();
        while Instant::now() < kill_at {
            std::thread::sleep(Duration::from_millis(10));
        }
        agent.kill9();
        for c in clients {
            acked.extend(c.join().unwrap());
        }
    }
    let mut agent = Agent::start(&cfg, port);
    let want: HashSet<String> = acked.iter().cloned().collect();
    wait_until("every acknowledged event in the output", || {
        let seen: HashSet<String> = output_lines(dir.path()).into_iter().collect();
        want.is_subset(&seen)
    });
    assert!(agent.stop());
    let lines = output_lines(dir.path());
    eprintln!(
        "{cycles} kills: {} events acknowledged, {} written",
        acked.len(),
        lines.len()
    );
    assert!(
        acked.len() > 100,
        "too few requests got through: {}",
        acked.len()
    );
}

#[test]
fn config_accepts_flume_http_keys_and_refuses_what_weir_cannot_do() {
    let check = |text: &str| check_config(text, Some("a"));
    let base = "a.sources = r1\na.channels = c1\na.channels.c1.type = memory\n\
        a.sources.r1.channels = c1\na.sources.r1.port = 5140\n";
    let (ok, out) = check(&format!(
        "{base}a.sources.r1.type = org.apache.flume.source.http.HTTPSource\n\
         a.sources.r1.handler = org.apache.flume.source.http.JSONHandler\n\
         a.sources.r1.ssl = false\na.sources.r1.QueuedThreadPool.MaxThreads = 50\n\
         a.sources.r1.keystore = /etc/ks.jks\n"
    ));
    assert!(ok, "{out}");
    assert!(out.contains("source  r1 [http] -> c1"), "{out}");
    assert!(
        out.contains("QueuedThreadPool.MaxThreads: accepted, no effect"),
        "{out}"
    );
    assert!(out.contains("keystore: ignored with ssl = false"), "{out}");
    let (ok, out) = check(&format!(
        "{base}a.sources.r1.type = http\na.sources.r1.handler = JSONHandler\n"
    ));
    assert!(ok, "{out}");

    let (ok, out) = check(&format!(
        "{base}a.sources.r1.type = http\na.sources.r1.handler = org.example.XmlHandler\n"
    ));
    assert!(!ok, "{out}");
    assert!(
        out.contains("a.sources.r1.handler")
            && out.contains("org.example.XmlHandler")
            && out.contains("org.apache.flume.source.http.JSONHandler"),
        "{out}"
    );
    let (ok, out) = check(&format!(
        "{base}a.sources.r1.type = http\na.sources.r1.enableSSL = true\n"
    ));
    // Flume's older name for `ssl`; TLS then needs a key store.
    assert!(
        !ok && out.contains("a.sources.r1.keystore: missing: ssl = true needs"),
        "{out}"
    );
    let (ok, out) = check(
        &format!("{base}a.sources.r1.type = http\n").replace("a.sources.r1.port = 5140\n", ""),
    );
    assert!(
        !ok && out.contains("a.sources.r1.port") && out.contains("missing"),
        "{out}"
    );
    let (ok, out) = check(&format!(
        "{base}a.sources.r1.type = http\na.sources.r1.maxBodyBytes = 0\n"
    ));
    assert!(!ok && out.contains("maxBodyBytes"), "{out}");
}

/// Flume's BlobHandler: the body (any bytes) is one event with the query parameters and
/// Content-Type as headers; a body over `handler.maxBlobLength` gets 413 naming the key.
#[test]
fn the_blob_handler_takes_a_whole_body_with_its_query_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = config(
        dir.path(),
        port,
        "a.sources.r1.handler = org.apache.flume.sink.solr.morphline.BlobHandler\n\
         a.sources.r1.handler.maxBlobLength = 1000\n",
    );
    let mut agent = Agent::start_with(&cfg, port, &[], Stdio::null());
    let blob: Vec<u8> = (0..=255u8).chain(0..=255u8).collect();
    std::fs::write(dir.path().join("blob.bin"), &blob).unwrap();
    let data = format!("@{}", dir.path().join("blob.bin").display());
    let out = Command::new(CURL)
        .args([
            "-sS",
            "--max-time",
            "20",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .args([
            "--data-binary",
            &data,
            "-H",
            "Content-Type: application/octet-stream",
        ])
        .arg(format!(
            "http://127.0.0.1:{port}/?resourceName=sample%20one.avro&team=ops"
        ))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
    let (status, body) = curl(port, &["--data-binary", &"x".repeat(1001)]);
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("handler.maxBlobLength"), "{body}");
    assert!(agent.stop());
    let events = support::logged_events(&dir.path().join("log"));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].body, blob);
    let headers: BTreeMap<&str, &str> = events[0]
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        headers,
        BTreeMap::from([
            ("Content-Type", "application/octet-stream"),
            ("resourceName", "sample one.avro"),
            ("team", "ops"),
        ])
    );
}

/// `ssl = true` (here by Flume's older names, `enableSSL` and `keystorePassword`) serves
/// HTTPS with the Java key store's key: curl, checking the certificate against the CA,
/// delivers events over keep-alive; a plain-HTTP request gets nothing stored.
#[test]
fn https_with_a_java_key_store() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let stores = support::java_stores();
    let cfg = config(
        dir.path(),
        port,
        &format!(
            "a.sinks =\na.sources.r1.enableSSL = true\na.sources.r1.keystore = {}\n\
             a.sources.r1.keystorePassword = store-pass\n",
            stores.join("server.jks").display()
        ),
    );
    let mut agent = Agent::start(&cfg, port);
    let ca = stores.join("ca.pem").display().to_string();
    let https = format!("https://127.0.0.1:{port}/events");
    let out = Command::new(CURL)
        .args([
            "-sS",
            "--max-time",
            "20",
            "--cacert",
            &ca,
            "-w",
            "%{http_code}\n",
        ])
        .args([
            "--data-binary",
            r#"[{"headers":{"h":"1"},"body":"over tls"}]"#,
            &https,
        ])
        .args(["--next", "--cacert", &ca, "-w", "%{http_code}\n"])
        .args([
            "--data-binary",
            r#"[{"body":"second, same connection"}]"#,
            &https,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        ["200", "200"],
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Plain HTTP to the TLS port: no reply, nothing stored.
    assert_eq!(post_raw(port, r#"[{"body":"plain"}]"#), None);
    assert!(agent.stop(), "agent exit status");
    let events = logged_events(dir.path());
    let bodies: Vec<&str> = events.iter().map(|(_, b)| b.as_str()).collect();
    assert_eq!(bodies, ["over tls", "second, same connection"]);
    assert_eq!(events[0].0, headers(&[("h", "1")]));
}

/// A client past `maxConnections` gets a 503 with `Retry-After`, over plain HTTP and over TLS
/// (where the reply needs a handshake first), and is served once a connection is free.
#[test]
fn clients_past_max_connections_get_503_then_are_served() {
    let stores = support::java_stores();
    let ca = stores.join("ca.pem").display().to_string();
    let tls_keys = format!(
        "a.sources.r1.ssl = true\na.sources.r1.keystore = {}\n\
         a.sources.r1.keystore-password = store-pass\n",
        stores.join("server.jks").display()
    );
    for tls in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let extra = format!(
            "a.sinks =\na.sources.r1.maxConnections = 2\n{}",
            if tls { tls_keys.as_str() } else { "" }
        );
        let mut agent = Agent::start(&config(dir.path(), port, &extra), port);
        let scheme = if tls { "https" } else { "http" };
        let post = |body: &str| {
            let out = Command::new(CURL)
                .args(["-sS", "--max-time", "20", "--cacert", &ca, "-D", "-"])
                .args(["--data-binary", body])
                .arg(format!("{scheme}://127.0.0.1:{port}/events"))
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        // Two clients that connect and say nothing hold both connections. The thread of the
        // start-up probe's connection may still count for a moment, so a client refused then
        // (answered or closed at once) tries again.
        let hold = || loop {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            match s.read(&mut [0u8; 1]) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return s,
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        let idle = [hold(), hold()];
        let refused = post(r#"[{"body":"refused"}]"#);
        assert!(refused.starts_with("HTTP/1.1 503"), "{scheme}: {refused}");
        assert!(refused.contains("Retry-After: 1"), "{scheme}: {refused}");
        assert!(
            refused.contains("too many connections (maxConnections = 2)"),
            "{scheme}: {refused}"
        );
        drop(idle);
        wait_until("a 200 once the idle clients left", || {
            post(r#"[{"body":"served"}]"#).starts_with("HTTP/1.1 200")
        });
        assert!(agent.stop(), "agent exit status");
        let events = logged_events(dir.path());
        let bodies: Vec<&str> = events.iter().map(|(_, b)| b.as_str()).collect();
        assert_eq!(bodies, ["served"], "{scheme}");
    }
}
