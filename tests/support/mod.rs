//! Test support for the agent and Kafka tests: a weir agent process, a netcat client, a tansu
//! broker per test (so a test may freeze or kill it), and two Kafka clients that read a whole
//! topic: an rdkafka consumer, and kafka-python for a reader that shares no code with the sink's.
//!
//! Without the `tansu` binary a test is skipped with a message, except under `CI=true`, where
//! it fails: CI must have the broker (`.ci/run` installs it).

#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// The consumer is rdkafka, which only a build with the `kafka` feature (the default) has.
#[cfg(feature = "kafka")]
mod consumer;
// Each test binary compiles this module; most never read from Kafka.
#[cfg(feature = "kafka")]
#[allow(unused_imports)]
pub use consumer::*;
#[cfg(feature = "kafka")]
mod kafka_python;
#[cfg(feature = "kafka")]
#[allow(unused_imports)]
pub use kafka_python::*;
// Two agents chained over RPC (tests/avro.rs, tests/thrift.rs).
mod chain;
#[allow(unused_imports)]
pub use chain::*;
// A TLS front for the broker (tests/kafka_tls.rs).
mod tls_proxy;
#[allow(unused_imports)]
pub use tls_proxy::{TlsProxy, java_stores};
// The interoperability tests' Python side (tests/interop/).
mod python;
#[allow(unused_imports)]
pub use python::{PythonServer, interop_script, python_client, python_modules, run_interop_script};

/// A port nothing listens on now, and that no other test of this process was given: the
/// kernel hands a released port out again, and tests run in parallel, so two agents could
/// otherwise be configured with the same port.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

pub fn wait_for_port(port: u16, within: Duration) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn tansu_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("WEIR_TANSU") {
        return Some(PathBuf::from(p));
    }
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin")));
    candidates.map(|d| d.join("tansu")).find(|p| p.is_file())
}

/// A tansu broker on a free loopback port with in-memory storage.
pub struct Broker {
    bin: PathBuf,
    child: Option<Child>,
    pub port: u16,
    /// The port the broker tells clients to connect to: its own, or a proxy's.
    advertised: u16,
}

impl Broker {
    /// Starts a broker, or returns `None` (test skipped) when tansu is not installed outside CI.
    pub fn start() -> Option<Broker> {
        let port = free_port();
        Broker::start_advertising(port, port)
    }

    /// A broker on `port` that tells clients to connect to `advertised` (a proxy in front).
    pub fn start_advertising(port: u16, advertised: u16) -> Option<Broker> {
        let Some(bin) = tansu_binary() else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "the tansu broker is required under CI=true: cargo install tansu --version 0.6.0 --locked --features dynostore"
                );
            }
            eprintln!(
                "SKIPPED: tansu not installed (cargo install tansu --version 0.6.0 --locked --features dynostore)"
            );
            return None;
        };
        let mut b = Broker {
            bin,
            child: None,
            port,
            advertised,
        };
        b.restart();
        Some(b)
    }

    /// The broker's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// (Re)starts the process on the same port. Memory storage starts empty.
    pub fn restart(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let advertised = format!("tcp://127.0.0.1:{}", self.advertised);
        let child = Command::new(&self.bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &advertised,
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        self.child = Some(child);
        assert!(
            wait_for_port(self.port, Duration::from_secs(20)),
            "tansu did not start"
        );
    }

    pub fn create_topic(&self, name: &str, partitions: u32) {
        let out = Command::new(&self.bin)
            .args([
                "topic",
                "create",
                name,
                "--partitions",
                &partitions.to_string(),
                "--broker",
                &format!("tcp://127.0.0.1:{}", self.port),
            ])
            .output()
            .expect("run tansu topic create");
        assert!(
            out.status.success(),
            "topic create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill")
                .args([sig, &c.id().to_string()])
                .status();
        }
    }

    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.thaw();
        self.kill();
    }
}

/// A weir agent process.
pub struct Agent {
    child: Option<Child>,
    pub config: PathBuf,
}

impl Agent {
    pub fn start(config: &Path, netcat_port: u16) -> Agent {
        Agent::start_with(config, netcat_port, &[], Stdio::inherit())
    }

    /// Starts with extra arguments and stderr going where the caller says (e.g. a log file).
    pub fn start_with(config: &Path, netcat_port: u16, args: &[&str], stderr: Stdio) -> Agent {
        let mut all = vec![
            OsStr::new("-f"),
            config.as_os_str(),
            OsStr::new("-n"),
            OsStr::new("a"),
        ];
        all.extend(args.iter().map(OsStr::new));
        Agent::start_args(config, netcat_port, &all, stderr)
    }

    /// Starts `weir agent` with exactly `args`; `config` is what [`Agent::config`] reports.
    pub fn start_args(config: &Path, netcat_port: u16, args: &[&OsStr], stderr: Stdio) -> Agent {
        Agent::start_env(config, netcat_port, args, stderr, &[])
    }

    /// [`Agent::start_args`] with extra environment variables for the agent.
    pub fn start_env(
        config: &Path,
        netcat_port: u16,
        args: &[&OsStr],
        stderr: Stdio,
        env: &[(&str, &OsStr)],
    ) -> Agent {
        let child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .arg("agent")
            .args(args)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start weir");
        Agent::listening(child, config, netcat_port)
    }

    /// Starts `weir agent -f config -n a` through `launcher` (a program and its arguments,
    /// which must end by exec'ing the agent: `nohup`, or `bash -c '…; exec "$0" "$@"'`), so
    /// that signals sent to the child reach the agent.
    pub fn start_under(launcher: &[&str], config: &Path, netcat_port: u16, stderr: Stdio) -> Agent {
        let child = Command::new(launcher[0])
            .args(&launcher[1..])
            .arg(env!("CARGO_BIN_EXE_weir"))
            .arg("agent")
            .arg("-f")
            .arg(config)
            .args(["-n", "a"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start the launcher of weir");
        Agent::listening(child, config, netcat_port)
    }

    /// The agent `child` once its netcat source listens on `netcat_port`.
    fn listening(mut child: Child, config: &Path, netcat_port: u16) -> Agent {
        let listening = wait_for_port(netcat_port, Duration::from_secs(20));
        // The port may answer for another process (ports come from `free_port`, which cannot
        // reserve them): make sure it is this agent that runs.
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the agent exited at start ({status}); port {netcat_port}");
        }
        assert!(listening, "agent did not start listening");
        Agent {
            child: Some(child),
            config: config.to_owned(),
        }
    }

    /// Whether the agent process is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The agent's process id; panics once it was stopped or killed.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("the agent runs")
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait; returns whether it exited 0.
    pub fn stop(&mut self) -> bool {
        self.stop_with("TERM")
    }

    /// Sends `signals` (names `kill` knows, separated by spaces, sent back to back: "TERM",
    /// "HUP HUP") and waits up to 15 s; returns whether the agent exited 0.
    pub fn stop_with(&mut self, signals: &str) -> bool {
        let Some(mut c) = self.child.take() else {
            return true;
        };
        for signal in signals.split(' ') {
            let _ = Command::new("kill")
                .args([&format!("-{signal}"), &c.id().to_string()])
                .status();
        }
        let end = Instant::now() + Duration::from_secs(15);
        while Instant::now() < end {
            if let Ok(Some(st)) = c.try_wait() {
                return st.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        false
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Freezes `broker` while the agent (logging to `dir`) works with it, sends SIGTERM a second
/// later, and thaws the broker; fails unless the agent exited 0 within the stop's 15 s.
pub fn stop_with_the_broker_frozen(mut agent: Agent, broker: &Broker, dir: &Path) {
    broker.freeze();
    std::thread::sleep(Duration::from_secs(1));
    let stopped = agent.stop();
    broker.thaw();
    assert!(
        stopped,
        "no clean exit within 15 s of SIGTERM with the broker frozen\n{}",
        agent_logs(dir)
    );
}

/// Writes an agent config: netcat on `port` → file channel in `dir` → Kafka sink.
pub fn kafka_config(dir: &Path, port: u16, bootstrap: &str, topic: &str, extra: &str) -> PathBuf {
    let text = format!(
        "a.sources = r1\na.channels = c1\na.sinks = k1\n\
         a.sources.r1.type = netcat\na.sources.r1.bind = 127.0.0.1\na.sources.r1.port = {port}\na.sources.r1.channels = c1\n\
         a.channels.c1.type = file\na.channels.c1.checkpointDir = {d}/ckpt\na.channels.c1.dataDirs = {d}/log\n\
         a.channels.c1.minimumRequiredSpace = 0\na.channels.c1.maxFileSize = 1048576\n\
         a.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink\na.sinks.k1.channel = c1\n\
         a.sinks.k1.kafka.bootstrap.servers = {bootstrap}\na.sinks.k1.kafka.topic = {topic}\n{extra}\n",
        d = dir.display()
    );
    let path = dir.join("agent.properties");
    std::fs::write(&path, text).expect("write config");
    path
}

/// A netcat client that sends numbered lines and records which were acknowledged with OK.
pub struct Client {
    stream: Option<(TcpStream, BufReader<TcpStream>)>,
    port: u16,
}

impl Client {
    pub fn new(port: u16) -> Client {
        Client { stream: None, port }
    }

    /// Sends one line; true if the agent answered OK. Reconnects as needed; false on any failure.
    pub fn send(&mut self, line: &str) -> bool {
        self.send_bytes(line.as_bytes()).as_deref() == Some("OK\n")
    }

    /// Sends one line of raw bytes; the agent's reply line, or `None` if the connection failed.
    pub fn send_bytes(&mut self, line: &[u8]) -> Option<String> {
        if self.stream.is_none() {
            let s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let r = s.try_clone().ok()?;
            self.stream = Some((s, BufReader::new(r)));
        }
        let (s, r) = self.stream.as_mut()?;
        let mut msg = line.to_vec();
        msg.push(b'\n');
        let mut reply = String::new();
        let ok = s.write_all(&msg).is_ok() && r.read_line(&mut reply).is_ok_and(|n| n > 0);
        if !ok {
            self.stream = None;
            return None;
        }
        Some(reply)
    }
}

/// The files a file_roll sink wrote into `out`, oldest first (they are named
/// `<millis>-<counter>`); none if `out` does not exist yet.
pub fn file_roll_files(out: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(out) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
    files.sort_by_key(|p| {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let (ms, n) = name.split_once('-').unwrap_or((&name, "0"));
        (
            ms.parse::<u64>().unwrap_or(0),
            n.parse::<u64>().unwrap_or(0),
        )
    });
    files
}

/// Every non-empty line a file_roll sink wrote into `out`, in file order, as bytes. A line torn
/// by a kill in the middle of a write shows up as a fragment.
pub fn file_roll_raw_lines(out: &Path) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    for f in file_roll_files(out) {
        let bytes = std::fs::read(f).unwrap();
        lines.extend(
            bytes
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .map(<[u8]>::to_vec),
        );
    }
    lines
}

/// [`file_roll_raw_lines`] as text (invalid UTF-8 replaced).
pub fn file_roll_lines(out: &Path) -> Vec<String> {
    file_roll_raw_lines(out)
        .into_iter()
        .map(|l| String::from_utf8_lossy(&l).into_owned())
        .collect()
}

/// Every event in a stopped agent's file channel log (`dataDirs` = `log`), in order; panics on
/// damage. Consumed events are still there as long as no segment was retired.
pub fn logged_events(log: &Path) -> Vec<weir::wal::inspect::DumpedEvent> {
    let mut events = Vec::new();
    weir::wal::inspect::dump(
        log,
        0,
        u64::MAX,
        |e| events.push(e),
        |p| panic!("damaged channel log {}: {p}", log.display()),
    )
    .unwrap();
    events
}

/// `weir agent --check -f <path>` (with `-n name` if given): whether it succeeded, and what it
/// printed (stderr, then stdout).
pub fn check_config_file(path: &Path, name: Option<&str>) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.args(["agent", "--check", "-f"]).arg(path);
    if let Some(n) = name {
        cmd.args(["-n", n]);
    }
    let out = cmd.output().expect("run weir agent --check");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        ),
    )
}

/// [`check_config_file`] for a properties text.
pub fn check_config(text: &str, name: Option<&str>) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("flume.properties");
    std::fs::write(&path, text).expect("write properties");
    check_config_file(&path, name)
}

/// Waits (up to 30 s, failing the test after) until `done` is true.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every line the file_roll sink of a test agent wrote into `dir/out`, in file order. A line
/// torn by SIGKILL in the middle of a write shows up as a fragment, which matches no expected
/// line.
pub fn output_lines(dir: &Path) -> Vec<String> {
    file_roll_lines(&dir.join("out"))
}

/// Starts the agent with a metrics port, its stderr going to `{dir}/agent-N.log` (N counting
/// the agents started in `dir` so far, so restarts keep every log); returns it and the port.
pub fn start_logged(dir: &Path, cfg: &Path) -> (Agent, u16) {
    start_logged_with(dir, cfg, &[])
}

/// [`start_logged`] with more arguments for `weir agent` (e.g. `--log-level`).
pub fn start_logged_with(dir: &Path, cfg: &Path, args: &[&str]) -> (Agent, u16) {
    let port = free_port();
    let n = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().starts_with("agent-"))
        })
        .count();
    let log = std::fs::File::create(dir.join(format!("agent-{n}.log"))).unwrap();
    let port_arg = port.to_string();
    let args: Vec<&str> = ["--metrics-port", port_arg.as_str()]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    let agent = Agent::start_with(cfg, port, &args, Stdio::from(log));
    (agent, port)
}

/// Everything the agents of `start_logged` wrote to stderr so far, oldest first.
pub fn agent_logs(dir: &Path) -> String {
    use std::io::Read;
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("agent-")
        })
        .collect();
    names.sort();
    let mut text = String::new();
    for n in names {
        std::fs::File::open(n)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
    }
    text
}

/// A counter of `component` (e.g. `SINK.k1`) from the agent's metrics on `port` (Flume's JSON,
/// every value a string); `None` if they cannot be read.
pub fn metric(port: u16, component: &str, name: &str) -> Option<u64> {
    use std::io::Read;
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).ok()?;
    let body = reply.split("\r\n\r\n").nth(1)?;
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v[component][name].as_str()?.parse().ok()
}

/// `SOURCE.r1`'s EventAcceptedCount from the metrics on `port`, or 0 if they cannot be read.
pub fn source_accepted(port: u16) -> u64 {
    metric(port, "SOURCE.r1", "EventAcceptedCount").unwrap_or(0)
}

/// Writes `bytes` to `spool/name` through a hidden temporary name, as an application should (a
/// file is complete once it has its name), with its modification time `age` seconds ago (the
/// spooldir source reads the oldest first).
pub fn drop_spool_file(spool: &Path, name: &str, bytes: &[u8], age: u64) -> PathBuf {
    let tmp = spool.join(format!(".{name}.part"));
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&tmp)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(age))
        .unwrap();
    let path = spool.join(name);
    std::fs::rename(&tmp, &path).unwrap();
    path
}
