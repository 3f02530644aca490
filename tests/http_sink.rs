//! The http sink with the real agent: netcat source → memory channel → http sink, against an
//! HTTP server written here (std `TcpListener` + `httparse`) that records every request and
//! answers the status codes each test scripts. A line the netcat source acknowledged is in
//! the channel, so "nothing lost" means every acknowledged line reached the server.

mod support;

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::*;

/// One request the server read.
#[derive(Clone, Debug)]
struct Request {
    /// Which connection it came on (0, 1, … in accept order).
    conn: usize,
    body: String,
    /// Header names lowercased, with their values.
    headers: Vec<(String, String)>,
    /// The status it was answered with; `None`: never answered.
    status: Option<u16>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How the server answers one request.
#[derive(Clone, Copy, Debug)]
enum Reply {
    Status(u16),
    /// Waits until the test calls [`Server::release`], then answers.
    HeldThen(u16),
    /// Reads the request and never answers (the connection stays open until the client gives
    /// up).
    Silent,
}

struct Server {
    requests: Arc<Mutex<Vec<Request>>>,
    released: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Server {
    /// Listens on `port` and answers requests with `script`, in order, then 200 to the rest.
    fn start(port: u16, script: Vec<Reply>) -> Server {
        Server::start_maybe_tls(port, script, None)
    }

    /// [`Server::start`], speaking TLS with `acceptor` when given (an https endpoint).
    fn start_maybe_tls(
        port: u16,
        script: Vec<Reply>,
        tls: Option<Arc<native_tls::TlsAcceptor>>,
    ) -> Server {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the test server");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let released = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let (reqs, rel, st) = (requests.clone(), released.clone(), stop.clone());
        std::thread::spawn(move || {
            let conns = AtomicUsize::new(0);
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let conn = conns.fetch_add(1, Ordering::Relaxed);
                        let (reqs, rel, st, script, tls) = (
                            reqs.clone(),
                            rel.clone(),
                            st.clone(),
                            script.clone(),
                            tls.clone(),
                        );
                        std::thread::spawn(move || {
                            let _ = stream.set_nonblocking(false);
                            let Some(tls) = tls else {
                                let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
                                return serve(stream, conn, &reqs, &rel, &st, &script);
                            };
                            // The handshake with a deadline, then short reads so `serve`
                            // notices the test ending.
                            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                            if let Ok(stream) = tls.accept(stream) {
                                let _ = stream
                                    .get_ref()
                                    .set_read_timeout(Some(Duration::from_millis(100)));
                                serve(stream, conn, &reqs, &rel, &st, &script);
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Server {
            requests,
            released,
            stop,
        }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// The bodies of the requests answered with `code`, in arrival order.
    fn bodies_answered(&self, code: u16) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| r.status == Some(code))
            .map(|r| r.body)
            .collect()
    }

    fn bodies(&self) -> Vec<String> {
        self.requests().into_iter().map(|r| r.body).collect()
    }

    fn release(&self) {
        self.released.store(true, Ordering::Relaxed);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Serves one keep-alive connection: reads requests (head, then a Content-Length body) and
/// answers each as the script says.
fn serve(
    mut stream: impl Read + Write,
    conn: usize,
    requests: &Mutex<Vec<Request>>,
    released: &AtomicBool,
    stop: &AtomicBool,
    script: &Mutex<VecDeque<Reply>>,
) {
    let mut buf = Vec::new();
    loop {
        // Read until a whole request is in the buffer.
        let (head_len, headers, body_len) = loop {
            let mut slots = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut slots);
            if let Ok(httparse::Status::Complete(n)) = req.parse(&buf) {
                let headers: Vec<(String, String)> = req
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                let len = headers
                    .iter()
                    .find(|(n, _)| n == "content-length")
                    .and_then(|(_, v)| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if buf.len() >= n + len {
                    break (n, headers, len);
                }
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(_) if stop.load(Ordering::Relaxed) => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return,
            }
        };
        let body = String::from_utf8_lossy(&buf[head_len..head_len + body_len]).into_owned();
        buf.drain(..head_len + body_len);
        let reply = script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Reply::Status(200));
        let index = {
            let mut reqs = requests.lock().unwrap();
            reqs.push(Request {
                conn,
                body,
                headers,
                status: None,
            });
            reqs.len() - 1
        };
        let code = match reply {
            Reply::Status(c) => c,
            Reply::HeldThen(c) => {
                while !released.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                c
            }
            Reply::Silent => {
                // Hold the connection open, unanswered, until the client closes it.
                let mut sink = [0u8; 1024];
                while !stop.load(Ordering::Relaxed) {
                    match stream.read(&mut sink) {
                        Ok(0) => return,
                        Ok(_) => {}
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) => {}
                        Err(_) => return,
                    }
                }
                return;
            }
        };
        requests.lock().unwrap()[index].status = Some(code);
        let answer = format!("HTTP/1.1 {code} Scripted\r\nContent-Length: 2\r\n\r\nok");
        if stream.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// netcat on `nc_port` → memory channel → http sink to `127.0.0.1:http_port`, with `extra`
/// sink keys. Every event gets a header `secret`, which must not reach the server.
fn config(dir: &Path, nc_port: u16, http_port: u16, extra: &str) -> PathBuf {
    let text = format!(
        "a.sources = r1\na.channels = c1\na.sinks = k1\n\
         a.sources.r1.type = netcat\na.sources.r1.bind = 127.0.0.1\na.sources.r1.port = {nc_port}\n\
         a.sources.r1.channels = c1\n\
         a.sources.r1.interceptors = i1\na.sources.r1.interceptors.i1.type = static\n\
         a.sources.r1.interceptors.i1.key = secret\na.sources.r1.interceptors.i1.value = s3cr3t\n\
         a.channels.c1.type = memory\na.channels.c1.capacity = 1000\n\
         a.sinks.k1.type = http\na.sinks.k1.channel = c1\n\
         a.sinks.k1.endpoint = http://127.0.0.1:{http_port}/in\n\
         a.sinks.k1.batchSize = 10\n{extra}"
    );
    let path = dir.join("agent.properties");
    std::fs::write(&path, text).expect("write config");
    path
}

/// Commit and go on after a 2XX, as Flume's User Guide example configures it.
const COMMIT_2XX: &str = "a.sinks.k1.rollback.2XX = false\na.sinks.k1.backoff.2XX = false\n";

/// Starts the agent (stderr to `dir/agent-0.log`, metrics on a port of its own) and waits for
/// its netcat port; returns it and the metrics port.
fn start(dir: &Path, cfg: &Path, nc_port: u16) -> (Agent, u16) {
    let metrics = free_port();
    let log = std::fs::File::create(dir.join("agent-0.log")).expect("agent log");
    let agent = Agent::start_with(
        cfg,
        nc_port,
        &["--metrics-port", &metrics.to_string()],
        std::process::Stdio::from(log),
    );
    (agent, metrics)
}

/// Sends `lines` through netcat; each must be acknowledged (committed to the channel).
fn send_all(nc_port: u16, lines: &[String]) {
    let mut client = Client::new(nc_port);
    for line in lines {
        assert!(client.send(line), "line {line} not acknowledged");
    }
}

fn lines(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("e{i:02}")).collect()
}

#[test]
fn bodies_arrive_in_order_with_the_configured_headers_and_a_503_is_redelivered_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (nc, http) = (free_port(), free_port());
    // The first request is held while every line is sent, so the next take is a full batch and
    // the 503 (the fourth request) falls in its middle.
    let server = Server::start(
        http,
        vec![
            Reply::HeldThen(200),
            Reply::Status(200),
            Reply::Status(200),
            Reply::Status(503),
        ],
    );
    let cfg = config(
        dir.path(),
        nc,
        http,
        &format!(
            "{COMMIT_2XX}a.sinks.k1.requestTimeout = 20000\n\
             a.sinks.k1.contentTypeHeader = application/json; charset=utf-8\n\
             a.sinks.k1.acceptHeader = application/x-weir-test\n"
        ),
    );
    let (mut agent, _) = start(dir.path(), &cfg, nc);
    let sent = lines(20);
    send_all(nc, &sent);
    wait_until("the first request", || !server.requests().is_empty());
    server.release();
    wait_until("every line answered 200", || {
        server.bodies_answered(200).len() >= sent.len()
    });
    assert!(agent.stop(), "the agent stopped cleanly");

    assert_eq!(
        server.bodies_answered(200),
        sent,
        "each line once, in order"
    );
    // The 503 rolled back only its own event: the events of its batch already answered 200
    // were not sent again.
    let mut expected = sent.clone();
    expected.insert(4, sent[3].clone());
    assert_eq!(server.bodies(), expected, "every request, in order");
    for r in server.requests() {
        assert_eq!(
            r.header("content-type"),
            Some("application/json; charset=utf-8"),
            "{r:?}"
        );
        assert_eq!(r.header("accept"), Some("application/x-weir-test"), "{r:?}");
        assert!(
            r.header("secret").is_none(),
            "event headers are not sent: {r:?}"
        );
        for name in ["content-type", "accept"] {
            let n = r.headers.iter().filter(|(h, _)| h == name).count();
            assert_eq!(n, 1, "one {name} header: {r:?}");
        }
    }
    // Keep-alive: the connection is reused, a 503 included.
    let conns = server.requests().iter().map(|r| r.conn).max().unwrap_or(0) + 1;
    assert!(conns < 4, "{conns} connections for 21 requests");
}

#[test]
fn a_4xx_that_rollback_says_to_commit_is_dropped_counted_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let (nc, http) = (free_port(), free_port());
    let server = Server::start(
        http,
        vec![
            Reply::Status(200),
            Reply::Status(400),
            Reply::Status(201),
            Reply::Status(404),
        ],
    );
    let cfg = config(
        dir.path(),
        nc,
        http,
        &format!("{COMMIT_2XX}a.sinks.k1.rollback.4XX = false\na.sinks.k1.backoff.4XX = false\n"),
    );
    let (mut agent, metrics) = start(dir.path(), &cfg, nc);
    let sent = lines(6);
    send_all(nc, &sent);
    wait_until("two events counted as dropped", || {
        metric(metrics, "SINK.k1", "UnsendableEventCount") == Some(2)
    });
    wait_until("the channel drained", || {
        metric(metrics, "CHANNEL.c1", "ChannelSize") == Some(0)
    });
    assert!(agent.stop(), "the agent stopped cleanly");
    // Each event sent once, in order; the two refused ones were not retried.
    assert_eq!(server.bodies(), sent);
    let log = std::fs::read_to_string(dir.path().join("agent-0.log")).unwrap();
    for code in ["400", "404"] {
        assert!(
            log.lines().any(|l| l.contains("event dropped")
                && l.contains(&format!("answered {code}"))
                && l.contains(&format!("http://127.0.0.1:{http}/in"))),
            "no drop logged for {code}:\n{log}"
        );
    }
}

/// `rollback` without `backoff` sends the event again at once; `backoff` with a commit finishes
/// the event and pauses: either way each event is answered 2XX once, nothing lost.
#[test]
fn rollback_without_backoff_retries_and_commit_with_backoff_pauses_without_resending() {
    let dir = tempfile::tempdir().unwrap();
    let (nc, http) = (free_port(), free_port());
    let server = Server::start(
        http,
        vec![
            Reply::HeldThen(200),
            Reply::Status(503),
            Reply::Status(200),
            Reply::Status(202),
        ],
    );
    let cfg = config(
        dir.path(),
        nc,
        http,
        &format!(
            "{COMMIT_2XX}a.sinks.k1.requestTimeout = 20000\n\
             a.sinks.k1.backoff.503 = false\na.sinks.k1.backoff.202 = true\n"
        ),
    );
    let (mut agent, metrics) = start(dir.path(), &cfg, nc);
    let sent = lines(8);
    send_all(nc, &sent);
    wait_until("the first request", || !server.requests().is_empty());
    server.release();
    wait_until("the channel drained", || {
        metric(metrics, "CHANNEL.c1", "ChannelSize") == Some(0)
    });
    assert!(agent.stop(), "the agent stopped cleanly");
    let mut expected = sent.clone();
    expected.insert(2, sent[1].clone());
    assert_eq!(
        server.bodies(),
        expected,
        "e01 twice (503, then 200), the rest once"
    );
    let log = std::fs::read_to_string(dir.path().join("agent-0.log")).unwrap();
    assert!(
        log.contains("answered 202: the event is done, and the sink backs off"),
        "{log}"
    );
    assert!(
        !log.contains("answered 503"),
        "no backoff for the 503:\n{log}"
    );
}

/// A self-signed certificate for `localhost` and 127.0.0.1 (openssl CLI) and a TLS acceptor
/// serving it; returns the acceptor and the certificate's PEM file.
#[cfg(feature = "https")]
fn tls_identity(dir: &Path, name: &str) -> (Arc<native_tls::TlsAcceptor>, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("run openssl (.ci/run installs it)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let identity = native_tls::Identity::from_pkcs8(
        &std::fs::read(&cert).unwrap(),
        &std::fs::read(&key).unwrap(),
    )
    .expect("identity from the generated key and certificate");
    (
        Arc::new(native_tls::TlsAcceptor::new(identity).unwrap()),
        cert,
    )
}

/// An https endpoint: the sink verifies the server against the trusted roots (here the test
/// certificate, trusted through OpenSSL's `SSL_CERT_FILE`) and delivers in order; a server whose
/// certificate is not trusted gets nothing, and the log says why.
#[cfg(feature = "https")]
#[test]
fn an_https_endpoint_is_verified_and_delivered_to() {
    let dir = tempfile::tempdir().unwrap();
    let (acceptor, cert) = tls_identity(dir.path(), "server");
    let (_, other_cert) = tls_identity(dir.path(), "other");
    for (trusted, ca) in [(true, &cert), (false, &other_cert)] {
        let (nc, http) = (free_port(), free_port());
        let server = Server::start_maybe_tls(http, Vec::new(), Some(acceptor.clone()));
        let extra = format!("{COMMIT_2XX}a.sinks.k1.endpoint = https://localhost:{http}/in\n");
        let cfg = config(dir.path(), nc, http, &extra);
        let metrics = free_port();
        let log_path = dir.path().join(format!("agent-{trusted}.log"));
        let log = std::fs::File::create(&log_path).unwrap();
        let mut agent = Agent::start_env(
            &cfg,
            nc,
            &[
                "-f".as_ref(),
                cfg.as_os_str(),
                "--metrics-port".as_ref(),
                metrics.to_string().as_ref(),
            ],
            std::process::Stdio::from(log),
            &[
                ("SSL_CERT_FILE", ca.as_os_str()),
                ("SSL_CERT_DIR", dir.path().as_os_str()),
            ],
        );
        let sent = lines(15);
        send_all(nc, &sent);
        if trusted {
            wait_until("every line delivered over https", || {
                server.bodies_answered(200).len() >= sent.len()
            });
            assert!(agent.stop(), "the agent stopped cleanly");
            assert_eq!(server.bodies(), sent);
        } else {
            wait_until("failed deliveries", || {
                metric(metrics, "SINK.k1", "EventWriteFail").is_some_and(|n| n >= 2)
            });
            assert!(agent.stop(), "the agent stopped cleanly");
            assert!(
                server.bodies().is_empty(),
                "delivered to an untrusted server"
            );
            let log = std::fs::read_to_string(&log_path).unwrap();
            assert!(
                log.contains(&format!("POST to https://localhost:{http}/in"))
                    && log.to_lowercase().contains("certificate"),
                "the failure names the endpoint and the certificate:\n{log}"
            );
        }
    }
}

/// As Flume's sink under a JVM started with `-Djavax.net.ssl.trustStore` (or Flume 1.9's
/// `FLUME_SSL_TRUSTSTORE_*`): the agent's global Java trust store replaces the system's roots.
/// Trusting the server's CA through it delivers; a trust store holding another CA delivers
/// nothing.
#[cfg(feature = "https")]
#[test]
fn the_global_java_trust_store_verifies_https_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let stores = java_stores();
    let p12 = std::fs::read(stores.join("server.p12")).unwrap();
    let identity = native_tls::Identity::from_pkcs12(&p12, "store-pass").expect("server.p12");
    let acceptor = Arc::new(native_tls::TlsAcceptor::new(identity).unwrap());
    let trust = stores.join("truststore.jks").display().to_string();
    let other = stores.join("other-truststore.jks").display().to_string();
    let by_property = [
        format!("-Djavax.net.ssl.trustStore={trust}"),
        "-Djavax.net.ssl.trustStorePassword=trust-pass".to_owned(),
    ];
    let by_environment = [
        ("FLUME_SSL_TRUSTSTORE_PATH", other.as_str()),
        ("FLUME_SSL_TRUSTSTORE_PASSWORD", "trust-pass"),
    ];
    for trusted in [true, false] {
        let (nc, http) = (free_port(), free_port());
        let server = Server::start_maybe_tls(http, Vec::new(), Some(acceptor.clone()));
        let extra = format!("{COMMIT_2XX}a.sinks.k1.endpoint = https://localhost:{http}/in\n");
        let cfg = config(dir.path(), nc, http, &extra);
        let metrics = free_port();
        let log = std::fs::File::create(dir.path().join(format!("global-{trusted}.log"))).unwrap();
        let metrics_arg = metrics.to_string();
        let mut args = vec![
            "-f".as_ref(),
            cfg.as_os_str(),
            "--metrics-port".as_ref(),
            metrics_arg.as_ref(),
        ];
        let env: Vec<(&str, &std::ffi::OsStr)> = if trusted {
            args.extend(by_property.iter().map(std::ffi::OsStr::new));
            Vec::new()
        } else {
            by_environment
                .iter()
                .map(|(k, v)| (*k, v.as_ref()))
                .collect()
        };
        let mut agent = Agent::start_env(&cfg, nc, &args, std::process::Stdio::from(log), &env);
        let sent = lines(5);
        send_all(nc, &sent);
        if trusted {
            wait_until("every line delivered over https", || {
                server.bodies_answered(200).len() >= sent.len()
            });
            assert_eq!(server.bodies(), sent);
        } else {
            wait_until("failed deliveries", || {
                metric(metrics, "SINK.k1", "EventWriteFail").is_some_and(|n| n >= 2)
            });
            assert!(
                server.bodies().is_empty(),
                "delivered to an untrusted server"
            );
        }
        assert!(agent.stop(), "the agent stopped cleanly");
    }
}

#[test]
fn with_the_server_down_at_start_everything_is_delivered_once_it_is_up() {
    let dir = tempfile::tempdir().unwrap();
    let (nc, http) = (free_port(), free_port());
    let cfg = config(dir.path(), nc, http, COMMIT_2XX);
    let (mut agent, metrics) = start(dir.path(), &cfg, nc);
    let sent = lines(10);
    send_all(nc, &sent);
    wait_until("a failed delivery", || {
        metric(metrics, "SINK.k1", "EventWriteFail").is_some_and(|n| n >= 2)
    });
    let server = Server::start(http, Vec::new());
    wait_until("every line delivered", || {
        server.bodies_answered(200).len() >= sent.len()
    });
    assert!(agent.stop(), "the agent stopped cleanly");
    // Nothing reached the server while it was down, so nothing came twice.
    assert_eq!(server.bodies(), sent);
    let log = std::fs::read_to_string(dir.path().join("agent-0.log")).unwrap();
    assert!(
        log.contains(&format!("POST to http://127.0.0.1:{http}/in")),
        "the failure names the endpoint:\n{log}"
    );
}

#[test]
fn a_server_that_never_answers_hits_request_timeout_and_the_event_is_redelivered() {
    let dir = tempfile::tempdir().unwrap();
    let (nc, http) = (free_port(), free_port());
    let server = Server::start(http, vec![Reply::Silent]);
    let cfg = config(
        dir.path(),
        nc,
        http,
        &format!("{COMMIT_2XX}a.sinks.k1.requestTimeout = 300\n"),
    );
    let (mut agent, _) = start(dir.path(), &cfg, nc);
    let sent = lines(3);
    send_all(nc, &sent);
    wait_until("every line delivered", || {
        server.bodies_answered(200).len() >= sent.len()
    });
    assert!(agent.stop(), "the agent stopped cleanly");
    assert_eq!(server.bodies_answered(200), sent);
    let requests = server.requests();
    assert_eq!(
        requests[0].status, None,
        "the first request went unanswered"
    );
    assert_eq!(requests[0].body, sent[0]);
    assert_eq!(requests[1].body, sent[0], "then the same event came again");
    let log = std::fs::read_to_string(dir.path().join("agent-0.log")).unwrap();
    assert!(
        log.contains("requestTimeout (300 ms)"),
        "the timeout is logged:\n{log}"
    );
}

#[test]
fn check_judges_the_http_sink_keys() {
    let base = "a.sources = r1\na.channels = c1\na.sinks = k1\n\
                a.sources.r1.type = seq\na.sources.r1.channels = c1\n\
                a.channels.c1.type = memory\n\
                a.sinks.k1.type = org.apache.flume.sink.http.HttpSink\na.sinks.k1.channel = c1\n\
                a.sinks.k1.endpoint = http://localhost:8080/someuri\n";
    let (ok, out) = check_config(base, Some("a"));
    assert!(ok, "{out}");
    // Flume's defaults roll back every response, 200 too: --check says so.
    assert!(out.contains("sent again and again"), "{out}");
    for (change, want) in [
        (
            ("someuri\n", "someuri\na.sinks.k1.rollback.2xx = false\n"),
            "flume.properties:10: a.sinks.k1.rollback.2xx: '2xx' is not a status code",
        ),
        (
            ("someuri\n", "someuri\na.sinks.k1.connectTimeout = 5s\n"),
            "flume.properties:10: a.sinks.k1.connectTimeout: '5s' is not a positive",
        ),
        (
            ("http://localhost:8080/someuri", "tcp://localhost:8080"),
            "flume.properties:9: a.sinks.k1.endpoint: 'tcp://localhost:8080' has scheme 'tcp'",
        ),
        (
            ("a.sinks.k1.endpoint = http://localhost:8080/someuri\n", ""),
            "a.sinks.k1.endpoint: missing",
        ),
    ] {
        let (ok, out) = check_config(&base.replace(change.0, change.1), Some("a"));
        assert!(!ok && out.contains(want), "want {want}:\n{out}");
    }
}
