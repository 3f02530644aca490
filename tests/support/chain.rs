//! Two agents chained over RPC (the avro and thrift pairs): the downstream agent's RPC source
//! feeds a file channel and a file_roll sink; the upstream agent's netcat source feeds a file
//! channel and an RPC sink. The configurations and the waits the chain tests share.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::{Agent, Client, free_port, logged_events, output_lines, wait_until};

/// The file channel `c1` of a chain agent in `dir`.
pub fn chain_file_channel(dir: &Path) -> String {
    format!(
        "a.channels.c1.type = file\na.channels.c1.checkpointDir = {d}/ckpt\n\
         a.channels.c1.dataDirs = {d}/log\na.channels.c1.minimumRequiredSpace = 0\n\
         a.channels.c1.maxFileSize = 4194304\n",
        d = dir.display()
    )
}

/// A source of type `source_type` on `port` → file channel → file_roll into `dir/out`, plus
/// `extra` lines; written to `dir/down.properties`.
pub fn chain_downstream(dir: &Path, source_type: &str, port: u16, extra: &str) -> PathBuf {
    let text = format!(
        "a.sources = r1\na.channels = c1\na.sinks = k1\n\
         a.sources.r1.type = {source_type}\na.sources.r1.bind = 127.0.0.1\na.sources.r1.port = {port}\n\
         a.sources.r1.channels = c1\n{channel}\
         a.sinks.k1.type = file_roll\na.sinks.k1.channel = c1\n\
         a.sinks.k1.sink.directory = {d}/out\na.sinks.k1.sink.rollInterval = 0\n{extra}\n",
        channel = chain_file_channel(dir),
        d = dir.display()
    );
    let path = dir.join("down.properties");
    std::fs::write(&path, text).unwrap();
    path
}

/// netcat on `netcat_port` → file channel → a sink of type `sink_type` to `rpc_port` (batches
/// of 10, 5 s request timeout), plus `extra` lines; every event gets the headers
/// `origin = up` and `timestamp`. Written to `dir/up.properties`.
pub fn chain_upstream(
    dir: &Path,
    sink_type: &str,
    netcat_port: u16,
    rpc_port: u16,
    extra: &str,
) -> PathBuf {
    let text = format!(
        "a.sources = r1\na.channels = c1\na.sinks = k1\n\
         a.sources.r1.type = netcat\na.sources.r1.bind = 127.0.0.1\na.sources.r1.port = {netcat_port}\n\
         a.sources.r1.channels = c1\na.sources.r1.interceptors = s t\n\
         a.sources.r1.interceptors.s.type = static\na.sources.r1.interceptors.s.key = origin\n\
         a.sources.r1.interceptors.s.value = up\na.sources.r1.interceptors.t.type = timestamp\n\
         {channel}\
         a.sinks.k1.type = {sink_type}\na.sinks.k1.channel = c1\n\
         a.sinks.k1.hostname = 127.0.0.1\na.sinks.k1.port = {rpc_port}\n\
         a.sinks.k1.batch-size = 10\na.sinks.k1.request-timeout = 5000\n{extra}\n",
        channel = chain_file_channel(dir),
    );
    let path = dir.join("up.properties");
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts a chain agent waiting on `port`, its stderr in `dir/<log>`.
pub fn chain_start(config: &Path, port: u16, dir: &Path, log: &str) -> Agent {
    let log = std::fs::File::create(dir.join(log)).unwrap();
    Agent::start_with(config, port, &[], Stdio::from(log))
}

/// Every line of `dir/out`, as a set.
pub fn delivered(dir: &Path) -> HashSet<String> {
    output_lines(dir).into_iter().collect()
}

/// Waits until every one of `lines` is in `dir/out`.
pub fn wait_for_lines(dir: &Path, lines: &[String]) {
    wait_until(
        &format!("{} lines in {}", lines.len(), dir.display()),
        || {
            let got = delivered(dir);
            lines.iter().all(|l| got.contains(l))
        },
    );
}

/// A chain of a `sink_type` sink into a `source_type` source, a netcat client sending all the
/// while; the downstream agent is SIGKILLed and restarted three times, each time after 30 more
/// lines went through. Every line acknowledged upstream arrives (duplicates allowed), and the
/// upstream agent's log shows the rolled-back deliveries.
pub fn kill_the_downstream_agent_three_times(source_type: &str, sink_type: &str) {
    let (up_dir, down_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (netcat_port, rpc_port) = (free_port(), free_port());
    let down_cfg = chain_downstream(down_dir.path(), source_type, rpc_port, "");
    let mut down = chain_start(&down_cfg, rpc_port, down_dir.path(), "down-0.log");
    let up_cfg = chain_upstream(up_dir.path(), sink_type, netcat_port, rpc_port, "");
    let _up = chain_start(&up_cfg, netcat_port, up_dir.path(), "up.log");
    let acked = Arc::new(Mutex::new(Vec::new()));
    let done = Arc::new(AtomicBool::new(false));
    let sender = {
        let (acked, done) = (acked.clone(), done.clone());
        std::thread::spawn(move || {
            let mut client = Client::new(netcat_port);
            let mut i = 0;
            while !done.load(Ordering::Relaxed) {
                let line = format!("ev-{i}");
                if client.send(&line) {
                    acked.lock().unwrap().push(line);
                }
                i += 1;
            }
        })
    };
    for round in 1..=3 {
        // Let events flow through the new downstream agent before killing it again.
        let before = output_lines(down_dir.path()).len();
        wait_until("events through the downstream agent", || {
            output_lines(down_dir.path()).len() >= before + 30
        });
        down.kill9();
        down = chain_start(
            &down_cfg,
            rpc_port,
            down_dir.path(),
            &format!("down-{round}.log"),
        );
    }
    done.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    // At least the lines of the first round (later rounds may count replayed duplicates).
    assert!(acked.len() >= 30, "only {} lines acknowledged", acked.len());
    wait_for_lines(down_dir.path(), &acked);
    drop(down);
    // The kills were felt upstream: batches failed, were rolled back and sent again.
    let up_log = std::fs::read_to_string(up_dir.path().join("up.log")).unwrap();
    assert!(up_log.contains("delivery failed; rolled back"), "{up_log}");
}

/// A chain of a `sink_type` sink into a `source_type` source (each agent also given its
/// `*_extra` lines): 200 lines, each acknowledged upstream, all reach `dir/out` downstream, and
/// the downstream channel holds each once, with the upstream interceptors' headers.
pub fn chain_delivers_every_line_with_its_headers(
    source_type: &str,
    sink_type: &str,
    down_extra: &str,
    up_extra: &str,
) {
    let (up_dir, down_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (netcat_port, rpc_port) = (free_port(), free_port());
    let down_cfg = chain_downstream(down_dir.path(), source_type, rpc_port, down_extra);
    let mut down = chain_start(&down_cfg, rpc_port, down_dir.path(), "down.log");
    let up_cfg = chain_upstream(up_dir.path(), sink_type, netcat_port, rpc_port, up_extra);
    let _up = chain_start(&up_cfg, netcat_port, up_dir.path(), "up.log");
    let mut client = Client::new(netcat_port);
    let lines: Vec<String> = (0..200).map(|i| format!("line-{i}")).collect();
    for l in &lines {
        assert!(client.send(l), "{l} not acknowledged");
    }
    wait_for_lines(down_dir.path(), &lines);
    assert!(down.stop(), "downstream agent exit status");
    // The downstream channel's log holds each event as the RPC source stored it.
    let events = logged_events(&down_dir.path().join("log"));
    assert_eq!(
        events.len(),
        200,
        "{sink_type} ⇒ {source_type}: each batch stored once"
    );
    for e in &events {
        assert_eq!(e.header("origin"), Some("up"), "{e:?}");
        let ts = e.header("timestamp").unwrap_or_default();
        assert!(
            ts.parse::<u64>().is_ok_and(|t| t > 1_600_000_000_000),
            "{e:?}"
        );
    }
    let stored: BTreeSet<Vec<u8>> = events.into_iter().map(|e| e.body).collect();
    assert_eq!(stored.len(), 200);
}
