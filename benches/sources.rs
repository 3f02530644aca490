//! Source throughput: each source → file channel → `null` sink, in-process, in one run beside a
//! `seq` baseline through an identical pipeline, so the ratio to `seq` shows what the source
//! itself costs on top of the channel.
//!
//! Every case sends [`BODY`]-byte event bodies into a file channel with the default fsync per
//! commit, with the source putting transactions of the same batch size (each table's `batch`);
//! the null sink takes batches of [`SINK_BATCH`] and counts the body bytes it drains, so the body
//! column and MB/s are what really passed, not what was asked for. Cases:
//! - `seq`: the generator, `bodySize` = [`BODY`].
//! - `syslogtcp`: [`CLIENTS`] client threads, each on its own connection, write octet-counted
//!   RFC 5424 messages over loopback TCP; the part after the header (the event body) is
//!   [`BODY`] bytes.
//! - `TAILDIR`: one file of [`BODY`]-byte lines, read from its start.
//! - `netcat`: [`CLIENTS`] client threads, each on its own connection, write [`BODY`]-byte lines
//!   without waiting for replies (as `cat file | nc` does), and a thread per connection reads
//!   the `OK` replies and checks that every line got one. netcat has no batch size: the source
//!   puts what one read delivered, up to the channel's `transactionCapacity` (1000 here).
//! - `http`: [`HTTP_CLIENTS`] client threads, each on its own keep-alive connection, POST JSON
//!   arrays of `batch` events (Flume's JSONHandler format, [`BODY`]-byte bodies and one header)
//!   one request at a time, each waiting for its `200`: one request is one transaction, so
//!   concurrent requests share the channel's group commit.
//!
//! A last table, "connection per message", has one client open a new connection for every
//! line, send it, wait for `OK` and close, as a script, curl or `logger --tcp` does: through
//! the netcat source (file channel, fsync per commit, null sink), and through a raw server that
//! does the same I/O by hand (blocking `accept`, read the line, `write` + `fdatasync` it to a
//! file, reply `OK`). It measures what serving a connection costs the source, waking for it
//! included. `WEIR_BENCH_CONNECTIONS` sets the messages (default 3,000).
//!
//! Whatever a case needs prepared (messages formatted, the file written and in the page cache) is
//! done before timing starts; timing ends when the sink has drained every event.
//!
//! A case is a function `fn(&Setup) -> Case` returning the started source and the load that
//! feeds it (see [`syslog_tcp`]); adding one means writing that function and listing it in
//! [`CASES`].
//!
//! A bench binary rather than criterion: each case is one pipeline run of a second or more, not
//! a micro-operation to sample. `WEIR_BENCH_EVENTS` sets events per case (default 300,000).
//!
//! Run: `cargo bench --bench sources`

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Case, source_config};
use weir::config::{
    HttpHandler, HttpSourceConfig, KeepFields, NetcatConfig, SeqConfig, SourceKind, SyslogConfig,
    SyslogProtocol,
};
use weir::sink::SinkCounters;
use weir::source::Source;
use weir::source::http::HttpSource;
use weir::source::netcat::NetcatSource;
use weir::source::seq::SeqSource;
use weir::source::syslog::SyslogSource;

/// Event body bytes, the same for every case.
const BODY: usize = 100;
/// Source batch sizes: one table each. 100 is Flume's default for all three sources.
const BATCHES: [usize; 2] = [100, 1000];
/// Events per sink transaction.
const SINK_BATCH: usize = 1000;
/// Syslog and netcat client connections, each served by its own source thread.
const CLIENTS: usize = 4;
/// HTTP client connections: more than [`CLIENTS`], since each waits for its reply before
/// sending again, as HTTP clients do.
const HTTP_CLIENTS: usize = 16;
/// The RFC 5424 header of every syslog message; the parser keeps what follows as the body.
const SYSLOG_HEADER: &str = "<13>1 2024-05-01T10:00:00.000Z bench-host ";

const CASES: [fn(&Setup) -> Case; 5] = [seq, syslog_tcp, taildir, netcat, http];

/// What every case is built from.
struct Setup<'a> {
    events: u64,
    batch: usize,
    /// A fresh directory for the case's own files.
    dir: &'a Path,
}

fn seq(setup: &Setup) -> Case {
    let cfg = SeqConfig {
        total_events: setup.events,
        batch_size: setup.batch,
        body_size: BODY,
    };
    Case {
        name: "seq",
        config: source_config(SourceKind::Seq(cfg.clone())),
        source: Box::new(SeqSource::new("r1", cfg)),
        load: Box::new(Vec::new),
    }
}

/// `head` padded with `x` to exactly [`BODY`] bytes.
fn body(head: String) -> String {
    format!("{head:x<BODY$}")
}

fn syslog_tcp(setup: &Setup) -> Case {
    let cfg = SyslogConfig {
        protocol: SyslogProtocol::Tcp,
        host: "127.0.0.1".into(),
        ports: vec![0],
        event_size: 2500,
        keep_fields: KeepFields::NONE,
        client_ip_header: None,
        client_hostname_header: None,
        port_header: None,
        batch_size: setup.batch,
        max_connections: 100,
        tls: None,
    };
    let mut source = SyslogSource::new("r1", cfg.clone());
    source.start().expect("syslog source listens");
    let addr = source.local_addrs()[0];
    // Every client's whole stream, formatted before timing starts.
    let per_client = setup.events / CLIENTS as u64;
    let streams: Vec<Vec<u8>> = (0..CLIENTS)
        .map(|c| {
            let n = per_client + u64::from(c == 0) * (setup.events % CLIENTS as u64);
            let mut out = Vec::with_capacity(n as usize * (SYSLOG_HEADER.len() + BODY + 5));
            for i in 0..n {
                let msg = format!(
                    "{SYSLOG_HEADER}{}",
                    body(format!("app - - - c{c} m{i:09} "))
                );
                out.extend_from_slice(format!("{} {msg}", msg.len()).as_bytes());
            }
            out
        })
        .collect();
    Case {
        name: "syslogtcp",
        config: source_config(SourceKind::Syslog(cfg)),
        source: Box::new(source),
        load: Box::new(move || {
            streams
                .into_iter()
                .map(|bytes| {
                    std::thread::spawn(move || {
                        let mut s = TcpStream::connect(addr).expect("connect to the source");
                        for chunk in bytes.chunks(64 * 1024) {
                            s.write_all(chunk).expect("write to the source");
                        }
                    })
                })
                .collect()
        }),
    }
}

fn taildir(setup: &Setup) -> Case {
    common::taildir(setup.dir, setup.events, setup.batch, |i| {
        body(format!("{i} GET /api/v1/items "))
    })
}

/// A netcat source listening on a loopback port of its own, with its config and address.
fn started_netcat() -> (NetcatSource, NetcatConfig, SocketAddr) {
    let cfg = NetcatConfig {
        bind: "127.0.0.1".into(),
        port: 0,
        max_line_length: 512,
        ack_every_event: true,
        max_connections: 100,
    };
    let mut source = NetcatSource::new("r1", cfg.clone());
    source.start().expect("netcat source listens");
    let addr = source.local_addr().expect("netcat source address");
    (source, cfg, addr)
}

fn netcat(setup: &Setup) -> Case {
    let (source, cfg, addr) = started_netcat();
    let per_client = setup.events / CLIENTS as u64;
    let streams: Vec<(u64, Vec<u8>)> = (0..CLIENTS)
        .map(|c| {
            let n = per_client + u64::from(c == 0) * (setup.events % CLIENTS as u64);
            let mut out = Vec::with_capacity(n as usize * (BODY + 1));
            for i in 0..n {
                out.extend_from_slice(body(format!("c{c} m{i:09} ")).as_bytes());
                out.push(b'\n');
            }
            (n, out)
        })
        .collect();
    Case {
        name: "netcat",
        config: source_config(SourceKind::Netcat(cfg)),
        source: Box::new(source),
        load: Box::new(move || {
            let mut threads = Vec::new();
            for (lines, bytes) in streams {
                let mut s = TcpStream::connect(addr).expect("connect to the source");
                let replies = s.try_clone().expect("clone the connection");
                threads.push(std::thread::spawn(move || {
                    let mut oks = 0u64;
                    for reply in std::io::BufReader::new(replies).lines() {
                        let reply = reply.expect("read a reply");
                        assert_eq!(reply, "OK", "netcat refused a line");
                        oks += 1;
                        if oks == lines {
                            break;
                        }
                    }
                    assert_eq!(oks, lines, "a line got no reply");
                }));
                threads.push(std::thread::spawn(move || {
                    for chunk in bytes.chunks(64 * 1024) {
                        s.write_all(chunk).expect("write to the source");
                    }
                }));
            }
            threads
        }),
    }
}

fn http(setup: &Setup) -> Case {
    let cfg = HttpSourceConfig {
        bind: "127.0.0.1".into(),
        port: 0,
        handler: HttpHandler::Json,
        max_body_bytes: 16 * 1024 * 1024,
        max_connections: 100,
        tls: None,
    };
    let mut source = HttpSource::new("r1", cfg.clone());
    source.start().expect("http source listens");
    let addr = source.local_addr().expect("http source address");
    // Every client's requests, formatted before timing starts.
    let per_client = setup.events / HTTP_CLIENTS as u64;
    let clients: Vec<Vec<Vec<u8>>> = (0..HTTP_CLIENTS)
        .map(|c| {
            let n = per_client + u64::from(c == 0) * (setup.events % HTTP_CLIENTS as u64);
            let events: Vec<String> = (0..n)
                .map(|i| {
                    let body = body(format!("c{c} m{i:09} "));
                    format!(r#"{{"headers":{{"host":"bench-{c}"}},"body":"{body}"}}"#)
                })
                .collect();
            events
                .chunks(setup.batch)
                .map(|chunk| {
                    let json = format!("[{}]", chunk.join(","));
                    let mut req = format!(
                        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\n\r\n",
                        json.len()
                    )
                    .into_bytes();
                    req.extend_from_slice(json.as_bytes());
                    req
                })
                .collect()
        })
        .collect();
    Case {
        name: "http",
        config: source_config(SourceKind::Http(cfg)),
        source: Box::new(source),
        load: Box::new(move || {
            clients
                .into_iter()
                .map(|requests| {
                    std::thread::spawn(move || {
                        let s = TcpStream::connect(addr).expect("connect to the source");
                        let mut replies = std::io::BufReader::new(s.try_clone().expect("clone"));
                        let mut s = s;
                        for req in requests {
                            s.write_all(&req).expect("write a request");
                            let status = read_reply(&mut replies);
                            assert!(status.starts_with("HTTP/1.1 200"), "http refused: {status}");
                        }
                    })
                })
                .collect()
        }),
    }
}

/// Reads one HTTP reply (status line, headers, `Content-Length` bytes of body); the status line.
fn read_reply(r: &mut impl BufRead) -> String {
    let mut status = String::new();
    r.read_line(&mut status).expect("read the status line");
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).expect("read a header");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().expect("a Content-Length");
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).expect("read the body");
    status.trim_end().to_owned()
}

fn main() {
    let Some((events, base)) = common::bench_setup(300_000) else {
        return;
    };
    println!(
        "source -> file channel (fsync per commit) -> null (batches of {SINK_BATCH}), \
         {events} events per case, {BODY} B bodies, {CLIENTS} syslog TCP clients"
    );
    println!(
        "{:<10} {:>5} {:>6} {:>9} {:>8} {:>10} {:>7} {:>6}",
        "case", "batch", "body B", "events", "seconds", "events/s", "MB/s", "vs seq"
    );
    for batch in BATCHES {
        let mut baseline = None;
        for make in CASES {
            let dir = tempfile::tempdir_in(&base).expect("temp dir under target/");
            let case = make(&Setup {
                events,
                batch,
                dir: dir.path(),
            });
            let name = case.name;
            let channel = common::file_channel(&dir.path().join("channel"), batch.max(SINK_BATCH));
            let bytes = Arc::new(AtomicU64::new(0));
            let sink = Box::new(common::CountingNull(bytes.clone()));
            let counters = Arc::new(SinkCounters::default());
            let t = common::measure(case, channel, events, sink, SINK_BATCH, counters);
            let bytes = bytes.load(Ordering::Relaxed);
            let secs = t.as_secs_f64();
            let eps = events as f64 / secs;
            let baseline = *baseline.get_or_insert(eps);
            println!(
                "{name:<10} {batch:>5} {:>6.1} {events:>9} {secs:>8.2} {eps:>10.0} {:>7.1} {:>6.2}",
                bytes as f64 / events as f64,
                bytes as f64 / secs / 1e6,
                eps / baseline
            );
        }
    }
    connection_per_message(&base);
}

/// The "connection per message" table (see the module doc).
fn connection_per_message(base: &Path) {
    let messages: u64 = std::env::var("WEIR_BENCH_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000);
    let dir = tempfile::tempdir_in(base).expect("temp dir under target/");
    let raw = raw_connection_server(&dir.path().join("raw.log"), messages);
    let weir = {
        let (source, cfg, addr) = started_netcat();
        let case = Case {
            name: "netcat, connection per message",
            config: source_config(SourceKind::Netcat(cfg)),
            source: Box::new(source),
            load: Box::new(move || {
                vec![std::thread::spawn(move || {
                    connect_per_message(addr, messages)
                })]
            }),
        };
        let channel = common::file_channel(&dir.path().join("channel"), SINK_BATCH);
        let sink = Box::new(common::CountingNull(Arc::new(AtomicU64::new(0))));
        let counters = Arc::new(SinkCounters::default());
        common::measure(case, channel, messages, sink, SINK_BATCH, counters)
    };
    println!();
    println!("connection per message: one client, {messages} messages, each on a new connection");
    println!("{:<10} {:>8} {:>11}", "server", "seconds", "messages/s");
    let rate = |t: Duration| messages as f64 / t.as_secs_f64();
    println!(
        "{:<10} {:>8.2} {:>11.0}",
        "raw",
        raw.as_secs_f64(),
        rate(raw)
    );
    println!(
        "{:<10} {:>8.2} {:>11.0}",
        "netcat",
        weir.as_secs_f64(),
        rate(weir)
    );
    println!("netcat/raw: {:.2}", rate(weir) / rate(raw));
}

/// The raw side of "connection per message": serves `messages` connections one at a time,
/// each line written and `fdatasync`ed to `path` before its `OK`; returns the client's time.
fn raw_connection_server(path: &Path, messages: u64) -> Duration {
    let listener = TcpListener::bind("127.0.0.1:0").expect("raw server listens");
    let addr = listener.local_addr().expect("raw server address");
    let mut file = std::fs::File::create(path).expect("raw server's file");
    let server = std::thread::spawn(move || {
        for _ in 0..messages {
            let (stream, _) = listener.accept().expect("raw server accepts");
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = Vec::new();
            reader
                .read_until(b'\n', &mut line)
                .expect("raw server reads");
            file.write_all(&line).expect("raw server writes");
            file.sync_data().expect("raw server syncs");
            (&stream).write_all(b"OK\n").expect("raw server replies");
        }
    });
    let started = Instant::now();
    connect_per_message(addr, messages);
    let took = started.elapsed();
    server.join().expect("raw server thread");
    took
}

/// One client sending `messages` lines of [`BODY`] bytes, each on a connection of its own,
/// waiting for each `OK`.
fn connect_per_message(addr: SocketAddr, messages: u64) {
    for i in 0..messages {
        let mut s = TcpStream::connect(addr).expect("connect");
        let mut line = body(format!("m{i:09} ")).into_bytes();
        line.push(b'\n');
        s.write_all(&line).expect("send a line");
        let mut reply = String::new();
        BufReader::new(&s)
            .read_line(&mut reply)
            .expect("read the reply");
        assert_eq!(reply, "OK\n", "message {i} refused");
    }
}
