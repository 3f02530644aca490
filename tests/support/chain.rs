//! Two agents chained over RPC (the avro and thrift pairs): the downstream agent's RPC source
//! feeds a file channel and a file_roll sink; the upstream agent's netcat source feeds a file
//! channel and an RPC sink. The configurations and the waits the chain tests share.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::{Agent, output_lines, wait_until};

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
