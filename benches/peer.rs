//! The topology of the one published Flume file-channel benchmark (shared/reference/flume.md:
//! 2 vCPU, NVMe, TAILDIR → file channel → Avro sink, batches of 1000: ~48,800 events/s with
//! 1-byte bodies and ~36,000 with 512-byte bodies), run by weir in-process, for comparison.
//!
//! For each body size, two pipelines over the same prepared log file, in one run:
//! - `null`: TAILDIR → file channel → null sink, the same I/O without the network hop;
//! - `avro`: TAILDIR → file channel → avro sink, whose server here is a minimal Avro RPC
//!   responder in this process that acknowledges every `appendBatch` (weir's own handshake
//!   code, counting events, storing nothing), so the number is the agent's sending side.
//!
//! TAILDIR puts transactions of 1000 and both sinks take 1000. The file channel syncs every
//! commit (weir's default and Flume's). Flume's figures were measured on other hardware, so the
//! "vs Flume" column is indicative only; the ratio to `null` is measured here.
//!
//! A bench binary rather than criterion: each case is one pipeline run of a second or more.
//! `WEIR_BENCH_EVENTS` sets events per case (default 500,000).
//!
//! Run: `cargo bench --bench peer`

mod common;

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use weir::avro_rpc::{self, Responder, ServerConnection, Status};
use weir::config::{AvroSinkConfig, RpcTarget};
use weir::sink::avro::AvroSink;
use weir::sink::{Sink, SinkCounters};

/// Events per transaction, at the source and at the sink.
const BATCH: usize = 1000;
/// Body sizes of the published benchmark, and Flume's events/s for each.
const PUBLISHED: [(usize, f64); 2] = [(1, 48_800.0), (512, 36_000.0)];

/// Serves Avro RPC connections until `stop`, acknowledging every call; counts the events.
fn null_avro_server(stop: Arc<AtomicBool>) -> (u16, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the Avro server");
    let port = listener.local_addr().expect("server address").port();
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    let received = Arc::new(AtomicU64::new(0));
    let counted = received.clone();
    std::thread::spawn(move || {
        let responder = Arc::new(Responder::new());
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((stream, _)) => {
                    let (responder, counted) = (responder.clone(), counted.clone());
                    std::thread::spawn(move || serve(stream, &responder, &counted));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    (port, received)
}

fn serve(stream: TcpStream, responder: &Responder, counted: &AtomicU64) {
    use std::io::Write;
    stream.set_nonblocking(false).expect("blocking connection");
    let _ = stream.set_nodelay(true);
    let mut reader = std::io::BufReader::new(stream.try_clone().expect("clone the connection"));
    let mut writer = stream;
    let mut conn = ServerConnection::default();
    while let Ok(Some(frame)) = avro_rpc::read_frame(&mut reader) {
        let reply = responder
            .respond(&mut conn, &frame.payload, |call| {
                counted.fetch_add(call.into_events().len() as u64, Ordering::Relaxed);
                Status::Ok
            })
            .expect("a well-formed request from weir's avro sink");
        if writer
            .write_all(&avro_rpc::encode_frame(frame.serial, &reply.payload))
            .is_err()
        {
            return;
        }
    }
}

fn avro_sink(port: u16, counters: Arc<SinkCounters>) -> Box<dyn Sink> {
    let config = AvroSinkConfig {
        target: RpcTarget {
            hostname: "127.0.0.1".into(),
            port,
            connect_timeout: Duration::from_secs(20),
            request_timeout: Duration::from_secs(20),
            reset_connection_interval: None,
            tls: None,
        },
        deflate_level: None,
    };
    Box::new(AvroSink::new(
        "k1",
        config,
        weir::stop::Stop::new(),
        counters,
    ))
}

/// A log line whose body is exactly `size` bytes (at least the event number, for 1 byte a
/// letter).
fn line(i: u64, size: usize) -> String {
    if size < 8 {
        return "x".repeat(size);
    }
    format!("{i:<size$}")
}

fn main() {
    let Some((events, base)) = common::bench_setup(500_000) else {
        return;
    };
    let stop = Arc::new(AtomicBool::new(false));
    let (port, received) = null_avro_server(stop.clone());
    println!(
        "TAILDIR -> file channel (fsync per commit) -> sink, batches of {BATCH}, {events} events per case"
    );
    println!(
        "{:<5} {:>6} {:>8} {:>10} {:>7} {:>8} {:>9}",
        "sink", "body B", "seconds", "events/s", "MB/s", "vs null", "vs Flume"
    );
    for (size, flume) in PUBLISHED {
        let mut null_rate = None;
        for sink_kind in ["null", "avro"] {
            let dir = tempfile::tempdir_in(&base).expect("temp dir under target/");
            let case = common::taildir(dir.path(), events, BATCH, |i| line(i, size));
            let channel = common::file_channel(&dir.path().join("channel"), BATCH);
            let counters = Arc::new(SinkCounters::default());
            let before = received.load(Ordering::Relaxed);
            let sink: Box<dyn Sink> = match sink_kind {
                "null" => Box::new(common::CountingNull(Arc::new(AtomicU64::new(0)))),
                _ => avro_sink(port, counters.clone()),
            };
            let t = common::measure(case, channel, events, sink, BATCH, counters);
            if sink_kind == "avro" {
                let got = received.load(Ordering::Relaxed) - before;
                assert!(
                    got >= events,
                    "the Avro server received {got} of {events} events"
                );
            }
            let secs = t.as_secs_f64();
            let eps = events as f64 / secs;
            let null = *null_rate.get_or_insert(eps);
            println!(
                "{sink_kind:<5} {size:>6} {secs:>8.2} {eps:>10.0} {:>7.1} {:>8.2} {:>9.1}",
                eps * size as f64 / 1e6,
                eps / null,
                eps / flume
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
}
