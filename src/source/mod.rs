//! Sources take data in and hand it to the [`ChannelProcessor`], which puts it into the source's
//! channels. A source acknowledges its client only after the processor returns, so
//! "acknowledged" always means "committed to every required channel".
//!
//! It also holds the TCP plumbing the network sources share (resolving the bind address,
//! listening, the thread-per-client accept loop), which the metrics endpoint uses too.

pub mod avro;
mod datagrams;
pub(crate) mod durable;
pub mod exec;
pub mod http;
mod java_net;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod netcat;
pub mod netcat_udp;
mod reporter;
pub mod seq;
pub mod spooldir;
pub mod stress;
pub mod syslog;
pub mod taildir;
pub mod thrift;

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;

use crate::channel::{Channel, ChannelError};
use crate::config::{SourceConfig, SourceKind};
use crate::event::Event;
use crate::interceptor::Chain;
use crate::selector::Selector;
pub use crate::stop::{StopFlag, stopping};

/// Flume's source counters (`SOURCE.<name>` in the metrics).
#[derive(Debug, Default)]
pub struct SourceCounters {
    pub received: AtomicU64,
    pub accepted: AtomicU64,
    pub batches_received: AtomicU64,
    pub batches_accepted: AtomicU64,
    pub open_connections: AtomicU64,
    pub channel_write_fail: AtomicU64,
    pub read_fail: AtomicU64,
}

/// Applies the interceptors and the selector, and puts events into the channels (Flume's
/// ChannelProcessor). One call is one put transaction per channel it touches.
pub struct ChannelProcessor {
    channels: Vec<Arc<dyn Channel>>,
    interceptors: Chain,
    selector: Selector,
    counters: Arc<SourceCounters>,
}

impl ChannelProcessor {
    pub fn new(
        config: &SourceConfig,
        channels: &[Arc<dyn Channel>],
        counters: Arc<SourceCounters>,
    ) -> ChannelProcessor {
        let mine: Vec<Arc<dyn Channel>> = config
            .channels
            .iter()
            .filter_map(|n| channels.iter().find(|c| c.name() == n).cloned())
            .collect();
        let names: Vec<String> = mine.iter().map(|c| c.name().to_owned()).collect();
        ChannelProcessor {
            selector: Selector::new(&config.selector, &names),
            interceptors: Chain::new(&config.interceptors),
            channels: mine,
            counters,
        }
    }

    pub fn counters(&self) -> &SourceCounters {
        &self.counters
    }

    /// The most events one `process` call may carry: the smallest `transactionCapacity` of the
    /// channels it puts into (no channel: unlimited).
    pub fn transaction_limit(&self) -> usize {
        self.channels
            .iter()
            .map(|c| c.transaction_capacity())
            .min()
            .unwrap_or(usize::MAX)
            .max(1)
    }

    /// Intercepts `events`, routes each, and puts them into every required channel (each its
    /// own transaction, as in Flume), then the optional ones, whose failures are only logged.
    /// Events filtered out by an interceptor count as accepted, as in Flume.
    pub fn process(&self, events: Vec<Event>) -> Result<(), ChannelError> {
        let n = events.len() as u64;
        self.counters.received.fetch_add(n, Ordering::Relaxed);
        self.counters
            .batches_received
            .fetch_add(1, Ordering::Relaxed);
        let events = if self.interceptors.is_empty() {
            events
        } else {
            self.interceptors.apply(events)
        };
        let mut required: Vec<Vec<Event>> = vec![Vec::new(); self.channels.len()];
        let mut optional: Vec<Vec<Event>> = vec![Vec::new(); self.channels.len()];
        let mut unrouted = 0usize;
        for e in events {
            let (req, opt) = self.selector.route(&e);
            if req.is_empty() && opt.is_empty() {
                unrouted += 1;
                continue;
            }
            // The last target takes the event itself; the others a copy (bodies are shared).
            let targets: Vec<(bool, usize)> = req
                .iter()
                .map(|i| (true, *i))
                .chain(opt.iter().map(|i| (false, *i)))
                .collect();
            let (last, rest) = targets
                .split_last()
                .map(|(l, r)| (*l, r))
                .unwrap_or(((true, 0), &[]));
            for (is_required, i) in rest {
                let list = if *is_required {
                    &mut required[*i]
                } else {
                    &mut optional[*i]
                };
                list.push(e.clone());
            }
            let list = if last.0 {
                &mut required[last.1]
            } else {
                &mut optional[last.1]
            };
            list.push(e);
        }
        if unrouted > 0 {
            tracing::warn!(
                events = unrouted,
                "events matched no channel of the multiplexing selector (no mapping and no selector.default): not stored"
            );
        }
        for (channel, batch) in self.channels.iter().zip(required) {
            if batch.is_empty() {
                continue;
            }
            if let Err(e) = channel.put(batch) {
                self.counters
                    .channel_write_fail
                    .fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        }
        // An optional channel never holds up the source: no waiting for room there.
        for (channel, batch) in self.channels.iter().zip(optional) {
            if !batch.is_empty()
                && let Err(e) = channel.put_waiting(batch, Duration::ZERO)
            {
                tracing::warn!(channel = channel.name(), error = %e, "optional channel refused events");
            }
        }
        self.counters.accepted.fetch_add(n, Ordering::Relaxed);
        self.counters
            .batches_accepted
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The addresses `host:port` names, for a source to bind; errors name the source.
pub(crate) fn resolve(source: &str, host: &str, port: u16) -> anyhow::Result<Vec<SocketAddr>> {
    let addr = format!("{host}:{port}");
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .with_context(|| format!("source {source}: cannot resolve bind address {addr}"))?
        .collect();
    anyhow::ensure!(
        !addrs.is_empty(),
        "source {source}: bind address {addr} resolves to no address"
    );
    Ok(addrs)
}

/// A non-blocking TCP listener on `host:port` (accept loops poll it to notice the stop flag).
pub(crate) fn listen_tcp(source: &str, host: &str, port: u16) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(&resolve(source, host, port)?[..])
        .with_context(|| format!("source {source}: cannot listen on TCP {host}:{port}"))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// How long an idle accept loop sleeps before it looks again: listeners are non-blocking so
/// that the loop sees the stop flag.
const ACCEPT_POLL: Duration = Duration::from_millis(25);

/// The accept loop of a TCP server that serves each client on a thread of its own (the netcat
/// and http sources, and the metrics endpoint; `kind` names the threads), until `stop`. A client past `max_connections` goes to `refuse` instead.
/// At the end it waits for every connection thread; each finishes the transaction it is in.
pub(crate) fn serve_clients<F>(
    source: &str,
    kind: &str,
    listener: TcpListener,
    max_connections: usize,
    stop: &StopFlag,
    refuse: impl Fn(TcpStream, SocketAddr),
    serve: F,
) where
    F: Fn(TcpStream, SocketAddr) + Send + Sync + 'static,
{
    let serve = Arc::new(serve);
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    while !stopping(stop) {
        match listener.accept() {
            Ok((stream, peer)) => {
                connections.retain(|h| !h.is_finished());
                if connections.len() >= max_connections {
                    refuse(stream, peer);
                    continue;
                }
                let serve = serve.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("{kind}-{peer}"))
                    .spawn(move || serve(stream, peer));
                match spawned {
                    Ok(h) => connections.push(h),
                    Err(e) => {
                        tracing::error!(source = %source, %peer, error = %e, "cannot start a connection thread")
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(ACCEPT_POLL),
            Err(e) => {
                tracing::warn!(source = %source, error = %e, "accept failed");
                std::thread::sleep(ACCEPT_POLL * 4);
            }
        }
    }
    drop(listener);
    for h in connections {
        let _ = h.join();
    }
}

/// A running source: its thread ends when the stop flag is set.
pub trait Source: Send {
    /// Binds listeners and the like; errors here stop the agent from starting.
    fn start(&mut self) -> anyhow::Result<()>;
    /// Runs until `stop` is set, finishing (or failing back to the client) every transaction it
    /// began.
    fn run(self: Box<Self>, processor: ChannelProcessor, stop: StopFlag);
}

pub fn build(config: &SourceConfig) -> Box<dyn Source> {
    match &config.kind {
        SourceKind::Netcat(c) => Box::new(netcat::NetcatSource::new(&config.name, c.clone())),
        SourceKind::NetcatUdp(c) => {
            Box::new(netcat_udp::NetcatUdpSource::new(&config.name, c.clone()))
        }
        SourceKind::Stress(c) => Box::new(stress::StressSource::new(&config.name, c.clone())),
        SourceKind::Seq(c) => Box::new(seq::SeqSource::new(&config.name, c.clone())),
        SourceKind::Http(c) => Box::new(http::HttpSource::new(&config.name, c.clone())),
        SourceKind::Exec(c) => Box::new(exec::ExecSource::new(&config.name, c.clone())),
        SourceKind::Taildir(c) => Box::new(taildir::TaildirSource::new(&config.name, c.clone())),
        SourceKind::Syslog(c) => Box::new(syslog::SyslogSource::new(&config.name, c.clone())),
        SourceKind::SpoolDir(c) => Box::new(spooldir::SpoolDirSource::new(&config.name, c.clone())),
        #[cfg(feature = "kafka")]
        SourceKind::Kafka(c) => Box::new(kafka::KafkaSource::new(&config.name, c.clone())),
        #[cfg(not(feature = "kafka"))]
        SourceKind::Kafka(_) => Box::new(WithoutKafka(config.name.clone())),
        SourceKind::Avro(c) => Box::new(avro::AvroSource::new(&config.name, c.clone())),
        SourceKind::Thrift(c) => Box::new(thrift::ThriftSource::new(&config.name, c.clone())),
    }
}

/// Checks what only building the source can check (`weir agent --check`), without starting
/// it; returns notes for the user.
pub fn check(config: &SourceConfig) -> anyhow::Result<Vec<String>> {
    match &config.kind {
        #[cfg(feature = "kafka")]
        SourceKind::Kafka(k) => kafka::check(&config.name, k),
        #[cfg(not(feature = "kafka"))]
        SourceKind::Kafka(_) => anyhow::bail!(
            "source {}: this weir was built without the `kafka` feature \
             (cargo build --features kafka)",
            config.name
        ),
        _ => Ok(Vec::new()),
    }
}

/// The Kafka source of a weir built without the `kafka` feature: refuses to start.
#[cfg(not(feature = "kafka"))]
struct WithoutKafka(String);

#[cfg(not(feature = "kafka"))]
impl Source for WithoutKafka {
    fn start(&mut self) -> anyhow::Result<()> {
        anyhow::bail!(
            "source {}: this weir was built without the `kafka` feature (cargo build --features kafka)",
            self.0
        )
    }

    fn run(self: Box<Self>, _: ChannelProcessor, _: StopFlag) {}
}

/// Reads from `offset` until `buf` is full or the file ends (`pread`, retried when interrupted);
/// returns how much was read. The file sources read at remembered positions with it.
pub(crate) fn read_full_at(
    file: &std::fs::File,
    buf: &mut [u8],
    offset: u64,
) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// What the sources' unit tests share: a memory channel and the processor the agent would build
/// for a source putting into it alone.
#[cfg(test)]
pub(crate) mod test_rig {
    use std::sync::Arc;
    use std::time::Duration;

    use super::{ChannelProcessor, SourceCounters};
    use crate::channel::Channel;
    use crate::channel::memory::MemoryChannel;
    use crate::config::{MemoryChannelConfig, SelectorConfig, SeqConfig, SourceConfig, SourceKind};

    pub fn memory_channel(
        capacity: usize,
        transaction_capacity: usize,
        keep_alive: Duration,
    ) -> Arc<dyn Channel> {
        Arc::new(MemoryChannel::new(
            "c1",
            &MemoryChannelConfig {
                capacity,
                transaction_capacity,
                keep_alive,
                byte_capacity: None,
            },
        ))
    }

    /// A processor putting into `channel` alone, as the agent would build for a source.
    pub fn processor_for(channel: &Arc<dyn Channel>) -> ChannelProcessor {
        let source = SourceConfig {
            name: "r1".into(),
            channels: vec!["c1".into()],
            selector: SelectorConfig::Replicating { optional: vec![] },
            interceptors: vec![],
            kind: SourceKind::Seq(SeqConfig {
                total_events: 0,
                batch_size: 1,
                body_size: 0,
            }),
        };
        ChannelProcessor::new(
            &source,
            std::slice::from_ref(channel),
            Arc::new(SourceCounters::default()),
        )
    }

    /// Takes up to `max` events from `channel` (waiting up to `wait` for the first), commits the
    /// take and returns the bodies as text.
    pub fn take_bodies(channel: &Arc<dyn Channel>, max: usize, wait: Duration) -> Vec<String> {
        let taken = channel.take(max, wait).unwrap();
        let got = taken
            .events
            .iter()
            .map(|(_, e)| String::from_utf8_lossy(&e.body).into_owned())
            .collect();
        channel.commit(taken).unwrap();
        got
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::sync::mpsc;

    use super::*;
    use std::sync::atomic::AtomicBool;

    /// One client at a time: the second is refused while the first is served, served once the
    /// first has left, and the loop returns at stop only after the connection threads end.
    #[test]
    fn serve_clients_refuses_past_the_limit_and_joins_at_stop() {
        let listener = listen_tcp("t", "127.0.0.1", 0).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop: StopFlag = Arc::new(AtomicBool::new(false));
        let (served_tx, served) = mpsc::channel::<u8>();
        let served_tx = std::sync::Mutex::new(served_tx);
        let s = stop.clone();
        let looper = std::thread::spawn(move || {
            serve_clients(
                "t",
                "test",
                listener,
                1,
                &s,
                |mut stream, _| {
                    let _ = stream.write_all(b"busy\n");
                },
                move |mut stream, _| {
                    // Holds the connection until the client closes it.
                    let mut b = [0u8; 1];
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
                    let n = stream.read(&mut b).unwrap_or(0);
                    let tx = served_tx.lock().map(|t| t.clone());
                    if let Ok(tx) = tx {
                        let _ = tx.send(if n == 1 { b[0] } else { 0 });
                    }
                },
            )
        });
        let reply = |c: &mut TcpStream| {
            let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
            let mut out = String::new();
            let _ = c.read_to_string(&mut out);
            out
        };
        let mut first = TcpStream::connect(addr).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let mut second = TcpStream::connect(addr).unwrap();
        assert_eq!(reply(&mut second), "busy\n");
        first.write_all(b"a").unwrap();
        assert_eq!(served.recv_timeout(Duration::from_secs(10)), Ok(b'a'));
        drop(first);
        std::thread::sleep(Duration::from_millis(200));
        let mut third = TcpStream::connect(addr).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::Relaxed);
        // The loop waits for the third client's thread, which waits for the client.
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !looper.is_finished(),
            "returned before its connection ended"
        );
        third.write_all(b"c").unwrap();
        assert_eq!(served.recv_timeout(Duration::from_secs(10)), Ok(b'c'));
        looper.join().unwrap();
    }
}
