//! `weir avro-client`: Flume's `flume-ng avro-client`, a command that sends text to an avro
//! source (weir's or Flume's) as events, one per line, in `appendBatch` calls through the avro
//! sink's client code: the lines of a file (`-F`), of standard input, or of every file of a
//! spooling directory (`--dirname`, each renamed `<name>.COMPLETED` once all its lines were
//! acknowledged). Every event carries the headers of `-R FILE` (a properties file).
//!
//! As Flume's client it sends batches of 5 (`batch-size` of a `-P` properties file, or weir's
//! `--batch-size`) and stops at the first batch the source does not acknowledge; unlike it, it
//! then exits non-zero saying how many events had been acknowledged, so a caller knows where to
//! resume (Flume logs the error and exits 0).

use crate::stop::Stop;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};

use crate::config::{AvroSinkConfig, Properties, RpcClientProps, Section, parse_rpc_client_props};
use crate::event::Event;
use crate::sink::avro::AvroSink;
use crate::sink::{Sink, SinkCounters};

/// Flume's `AvroCLIClient` batch size when no `-P` file sets one.
pub const DEFAULT_BATCH: usize = 5;

/// Where the lines come from.
#[derive(Clone, Debug)]
pub enum Input {
    Stdin,
    File(PathBuf),
    /// Every file of the directory, oldest first, each renamed `.COMPLETED` once sent.
    Dir(PathBuf),
}

/// Reads an RPC client properties file (`-P`), as Flume's `RpcClientFactory`; notes keys that
/// have no effect.
pub fn read_rpc_props(path: &Path) -> anyhow::Result<(RpcClientProps, Vec<String>)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let props = Properties::parse(path, &bytes)?;
    let section = Section::new(&props, String::new());
    let mut notes = Vec::new();
    let parsed = parse_rpc_client_props(&section, &mut notes)?;
    Ok((parsed, notes))
}

/// The headers of a `-R` file: every key and value of a properties file.
pub fn read_headers(path: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let props = Properties::parse(path, &bytes)?;
    Ok(props
        .with_prefix("")
        .map(|(k, e)| (k.to_owned(), e.value.clone()))
        .collect())
}

/// Sends events to the first target that takes them; a failed batch moves on to the next
/// target (Flume's failover client), and fails when every target has failed it.
pub struct Sender {
    sinks: Vec<(String, AvroSink)>,
    current: usize,
    batch_size: usize,
    headers: Vec<(String, String)>,
    /// Events acknowledged so far.
    pub acknowledged: u64,
}

impl Sender {
    pub fn new(props: RpcClientProps, headers: Vec<(String, String)>) -> Sender {
        let sinks = props
            .targets
            .into_iter()
            .map(|target| {
                let address = target.address();
                let config = AvroSinkConfig {
                    target,
                    deflate_level: props.deflate_level,
                };
                let stop = Stop::new();
                let sink = AvroSink::new(
                    "avro-client",
                    config,
                    stop,
                    Arc::new(SinkCounters::default()),
                );
                (address, sink)
            })
            .collect();
        Sender {
            sinks,
            current: 0,
            batch_size: props.batch_size,
            headers,
            acknowledged: 0,
        }
    }

    /// Sends every line of `reader` (without its `\n` or `\r\n`), `batch_size` at a time.
    pub fn send_lines(&mut self, reader: impl Read) -> anyhow::Result<()> {
        let mut reader = BufReader::new(reader);
        let mut batch = Vec::with_capacity(self.batch_size);
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .context("reading input")?;
            if n == 0 {
                break;
            }
            let body = line.strip_suffix(b"\n").unwrap_or(&line);
            let body = body.strip_suffix(b"\r").unwrap_or(body);
            let mut event = Event::new(body.to_vec());
            for (k, v) in &self.headers {
                event.headers.insert(k.clone(), v.clone());
            }
            batch.push((0, event));
            if batch.len() == self.batch_size {
                self.send(&batch)?;
                batch.clear();
            }
        }
        if !batch.is_empty() {
            self.send(&batch)?;
        }
        Ok(())
    }

    fn send(&mut self, batch: &[(u64, Event)]) -> anyhow::Result<()> {
        let mut failures = Vec::new();
        for _ in 0..self.sinks.len() {
            let (address, sink) = &mut self.sinks[self.current];
            match sink.deliver(batch) {
                Ok(()) => {
                    self.acknowledged += batch.len() as u64;
                    return Ok(());
                }
                Err(e) => {
                    failures.push(format!("{address}: {e:#}"));
                    self.current = (self.current + 1) % self.sinks.len();
                }
            }
        }
        bail!(
            "a batch of {} events was not acknowledged ({})",
            batch.len(),
            failures.join("; ")
        )
    }
}

/// Sends `input` through `sender`.
pub fn run(sender: &mut Sender, input: &Input) -> anyhow::Result<()> {
    match input {
        Input::Stdin => sender.send_lines(std::io::stdin().lock()),
        Input::File(path) => {
            let file =
                File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
            sender
                .send_lines(file)
                .with_context(|| format!("sending {}", path.display()))
        }
        Input::Dir(dir) => {
            for path in spooled_files(dir)? {
                let done = completed_name(&path);
                if done.exists() {
                    bail!(
                        "{} exists already: {} was sent before (rename or remove one)",
                        done.display(),
                        path.display()
                    );
                }
                let file =
                    File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
                sender
                    .send_lines(file)
                    .with_context(|| format!("sending {}", path.display()))?;
                std::fs::rename(&path, &done).with_context(|| {
                    format!(
                        "sent {}, but cannot rename it to {}",
                        path.display(),
                        done.display()
                    )
                })?;
            }
            Ok(())
        }
    }
}

fn completed_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".COMPLETED");
    PathBuf::from(name)
}

/// The files of a spooling directory to send: regular files not hidden and not already
/// `.COMPLETED`, oldest first (by modification time, then name).
fn spooled_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name.ends_with(".COMPLETED") {
            continue;
        }
        let meta = entry.metadata()?;
        if meta.is_file() {
            files.push((meta.modified()?, entry.path()));
        }
    }
    files.sort();
    Ok(files.into_iter().map(|(_, p)| p).collect())
}
