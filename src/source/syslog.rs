//! The syslog sources (Flume's `syslogtcp`, `multiport_syslogtcp` and `syslogudp`): listeners,
//! connections and getting messages into the channel. Framing is [`framing`]'s, turning a
//! message into an event is [`parse`]'s.
//!
//! TCP syslog has no acknowledgement, so "durable" can only mean "what the channel committed".
//! Each connection has its own thread; what one read returns is framed, parsed and put in
//! transactions of at most `batchSize` events. When the channel refuses a batch (full, disk
//! trouble) the connection keeps retrying it with backoff and reads nothing meanwhile, so the
//! client is slowed down by TCP flow control instead of losing messages. At stop, each
//! connection first takes in what has already arrived on its socket. With `ssl = true` the
//! TCP connections are TLS ([`crate::tls::ServerStream`]), handshaken on their own thread.
//!
//! UDP datagrams are gathered into transactions by [`super::datagrams`], which says what
//! happens when the channel refuses them.

pub mod framing;
pub mod parse;

use std::collections::HashMap;
use std::io::{ErrorKind, Read};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{Local, Utc};
use openssl::ssl::SslAcceptor;

use super::reporter::Reporter;
use super::{
    ChannelProcessor, Source, StopFlag, await_connection, datagrams, java_net, listen_tcp, stopping,
};
use crate::channel::ChannelError;
use crate::config::{SyslogConfig, SyslogProtocol};
use crate::event::Event;
use crate::tls::ServerStream;
use framing::{Frame, Framer};
use parse::{Flavor, Outcome, Parser};

/// How often blocked threads look at the stop flag.
const POLL: Duration = Duration::from_millis(100);
/// Bytes asked for per read.
const READ_SIZE: usize = 64 * 1024;
/// When a read fills the buffer, more of a fast client's data is usually waiting: it is taken
/// at once, without blocking, up to this much per batch. Measured with `cargo bench --bench
/// sources` at batchSize 1000: one 64 KiB read holds ~450 messages of 140 B, which capped a
/// transaction there.
const FILL_LIMIT: usize = 256 * 1024;
/// At stop, how long a connection keeps taking in what has already arrived.
const DRAIN_LIMIT: Duration = datagrams::DRAIN_LIMIT;
/// Longest wait between two attempts to put a refused batch.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// How long a resolved client host name is reused.
const HOSTNAME_TTL: Duration = Duration::from_secs(600);

pub struct SyslogSource {
    name: String,
    config: SyslogConfig,
    /// TCP listeners with the port each serves (for `portHeader`).
    tcp: Vec<(TcpListener, u16)>,
    udp: Option<UdpSocket>,
    /// TCP with `ssl = true`.
    tls: Option<SslAcceptor>,
}

impl SyslogSource {
    pub fn new(name: &str, config: SyslogConfig) -> SyslogSource {
        SyslogSource {
            name: name.to_owned(),
            config,
            tcp: Vec::new(),
            udp: None,
            tls: None,
        }
    }

    /// The addresses this source listens on, once started (tests and logs).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        let tcp = self.tcp.iter().filter_map(|(l, _)| l.local_addr().ok());
        let udp = self.udp.iter().filter_map(|u| u.local_addr().ok());
        tcp.chain(udp).collect()
    }
}

impl Source for SyslogSource {
    fn start(&mut self) -> anyhow::Result<()> {
        let kind = self.config.protocol.type_name();
        if let Some(tls) = &self.config.tls {
            let acceptor = crate::tls::silent_acceptor(tls)
                .map_err(|e| anyhow::anyhow!("source {}: cannot set up TLS: {e:#}", self.name))?;
            self.tls = Some(acceptor);
        }
        for &port in &self.config.ports {
            if self.config.protocol == SyslogProtocol::Udp {
                let socket = datagrams::bind(&self.name, kind, &self.config.host, port)?;
                self.udp = Some(socket);
            } else {
                let listener = listen_tcp(&self.name, &self.config.host, port)?;
                let local = listener.local_addr()?;
                tracing::info!(source = %self.name, addr = %local, tls = self.tls.is_some(), "{kind} source listening (TCP)");
                self.tcp.push((listener, local.port()));
            }
        }
        Ok(())
    }

    fn run(self: Box<Self>, processor: ChannelProcessor, stop: StopFlag) {
        let SyslogSource {
            name,
            config,
            tcp,
            udp,
            tls,
        } = *self;
        let shared = Arc::new(Shared {
            parser: Parser::new(config.keep_fields, Local).with_flavor(
                if config.protocol == SyslogProtocol::MultiportTcp {
                    Flavor::SyslogParser
                } else {
                    Flavor::SyslogUtils
                },
            ),
            name,
            config,
            processor,
            stop,
            hostnames: HostNames::default(),
            tls,
        });
        match udp {
            Some(socket) => run_udp(&shared, socket),
            None if tcp.is_empty() => {
                tracing::error!(source = %shared.name, "syslog source run before start");
            }
            None => run_tcp(&shared, tcp),
        }
    }
}

/// What every connection of one source shares.
struct Shared {
    name: String,
    config: SyslogConfig,
    parser: Parser<Local>,
    processor: ChannelProcessor,
    stop: StopFlag,
    hostnames: HostNames,
    tls: Option<SslAcceptor>,
}

impl Shared {
    fn stopping(&self) -> bool {
        stopping(&self.stop)
    }

    /// The headers naming the client (and, for multiport, the port), per `clientIPHeader`,
    /// `clientHostnameHeader` and `portHeader`.
    fn client_headers(&self, peer: SocketAddr, port: u16) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(h) = &self.config.client_ip_header {
            out.push((h.clone(), java_net::host_address(peer)));
        }
        if let Some(h) = &self.config.client_hostname_header {
            out.push((h.clone(), self.hostnames.lookup(peer)));
        }
        if let Some(h) = &self.config.port_header {
            out.push((h.clone(), port.to_string()));
        }
        out
    }

    /// One event per frame of `data`. Problems are reported only through `reporter` (given on
    /// the first attempt, not on retries of the same batch).
    fn events(
        &self,
        data: &[u8],
        frames: &[Frame],
        extra: &[(String, String)],
        mut reporter: Option<&mut Reporter>,
    ) -> Vec<Event> {
        let now = Utc::now();
        frames
            .iter()
            .map(|f| {
                let (mut event, outcome) =
                    self.parser.event(&data[f.range.clone()], f.truncated, now);
                // The pieces after a cut are Invalid as in Flume, and already reported as
                // part of their message.
                if let (Outcome::Invalid(why), Some(r), false) =
                    (outcome, reporter.as_deref_mut(), f.continued)
                {
                    r.report(format_args!(
                        "message is not syslog ({why}): kept whole with flume.syslog.status=Invalid"
                    ));
                }
                for (k, v) in extra {
                    event.headers.insert(k.clone(), v.clone());
                }
                event
            })
            .collect()
    }
}

/// Client host names, resolved once per address and reused for a while: a reverse lookup can
/// take seconds, and UDP clients send many datagrams.
#[derive(Default)]
struct HostNames {
    cache: parking_lot::Mutex<HashMap<IpAddr, (String, Instant)>>,
}

impl HostNames {
    fn lookup(&self, peer: SocketAddr) -> String {
        let ip = java_net::canonical_ip(peer.ip());
        if let Some((name, at)) = self.cache.lock().get(&ip)
            && at.elapsed() < HOSTNAME_TTL
        {
            return name.clone();
        }
        // As Java's InetSocketAddress.getHostName: the address itself when it has no name.
        let name = dns_lookup::lookup_addr(&ip).unwrap_or_else(|e| {
            tracing::debug!(%ip, error = %e, "no host name for client address");
            java_net::host_address(peer)
        });
        let mut cache = self.cache.lock();
        if cache.len() >= 4096 {
            cache.clear();
        }
        cache.insert(ip, (name.clone(), Instant::now()));
        name
    }
}

// ---------------------------------------------------------------------------------------------
// TCP

fn run_tcp(shared: &Arc<Shared>, listeners: Vec<(TcpListener, u16)>) {
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    let waiting: Vec<&TcpListener> = listeners.iter().map(|(l, _)| l).collect();
    let mut failures = super::AcceptFailures::default();
    let mut refused = crate::log_throttle::Throttle::default();
    while !shared.stopping() {
        let mut accepted = false;
        for (listener, port) in &listeners {
            match listener.accept() {
                Ok((stream, peer)) => {
                    accepted = true;
                    connections.retain(|h| !h.is_finished());
                    if connections.len() >= shared.config.max_connections {
                        super::refused_connection(
                            &shared.name,
                            peer,
                            shared.config.max_connections,
                            &mut refused,
                        );
                        continue;
                    }
                    connections.extend(spawn_connection(shared, stream, peer, *port));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => {
                    let _ = failures.failed(&shared.name, &e);
                    std::thread::sleep(POLL);
                }
            }
        }
        if !accepted {
            await_connection(&waiting, &shared.stop, super::accept_wait(&refused));
            super::report_refused_since(
                &shared.name,
                shared.config.max_connections,
                &mut refused,
                false,
            );
        }
    }
    super::report_refused_since(
        &shared.name,
        shared.config.max_connections,
        &mut refused,
        true,
    );
    // Connections the clients opened before the stop but not yet accepted hold messages
    // already sent: take them in too (their threads see the stop and only drain).
    for (listener, port) in &listeners {
        while let Ok((stream, peer)) = listener.accept() {
            connections.extend(spawn_connection(shared, stream, peer, *port));
        }
    }
    drop(listeners);
    for h in connections {
        let _ = h.join();
    }
}

fn spawn_connection(
    shared: &Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    port: u16,
) -> Option<JoinHandle<()>> {
    let s = shared.clone();
    std::thread::Builder::new()
        .name(format!("syslog-{peer}"))
        .spawn(move || serve_tcp(&s, stream, peer, port))
        .map_err(|e| {
            tracing::error!(source = %shared.name, client = %peer, error = %e, "cannot start a connection thread");
        })
        .ok()
}

/// Serves one TCP client until it leaves or the agent stops.
fn serve_tcp(shared: &Shared, stream: TcpStream, peer: SocketAddr, port: u16) {
    let counters = shared.processor.counters();
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(POLL));
    let mut stream = match ServerStream::accept(stream, shared.tls.as_ref(), &shared.stop) {
        Ok(s) => s,
        // A client set up wrongly, or not speaking TLS; one that left without a byte is a probe.
        Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
            tracing::info!(source = %shared.name, client = %peer, error = %e, "cannot set up the connection");
            return;
        }
        Err(e) => {
            tracing::warn!(source = %shared.name, client = %peer, error = %e, "cannot set up the connection");
            return;
        }
    };
    counters.open_connections.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(source = %shared.name, client = %peer, "client connected");
    let extra = shared.client_headers(peer, port);
    let mut reporter = Reporter::new(&shared.name, Some(peer));
    let mut framer = Framer::new(shared.config.event_size);
    let mut batch_limit = shared.config.batch_size;
    let mut buf = vec![0u8; READ_SIZE];
    let mut pending: Vec<u8> = Vec::with_capacity(READ_SIZE);
    let mut frames = Vec::new();
    let mut problems = Vec::new();
    let mut draining: Option<Instant> = None;
    loop {
        if draining.is_none() && shared.stopping() {
            // Take in what has already arrived, without waiting for more.
            draining = Some(Instant::now());
            let _ = stream.tcp().set_nonblocking(true);
        }
        // Asleep until the client sends or the agent stops, rather than woken by each read
        // timeout (10 times a second for every idle client).
        if draining.is_none()
            && !stream.has_buffered()
            && !shared
                .stop
                .wait_readable(&[stream.tcp().as_fd()], crate::stop::IDLE_WAIT)
        {
            continue;
        }
        let mut eof = false;
        match stream.read(&mut buf) {
            Ok(0) => eof = true,
            Ok(n) => {
                pending.extend_from_slice(&buf[..n]);
                if n == buf.len()
                    && draining.is_none()
                    && !take_waiting(&mut stream, &mut buf, &mut pending)
                {
                    // The socket could not be put back in blocking mode: reads would spin.
                    // Store what was read and end the connection; the client reconnects.
                    eof = true;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                if draining.is_none() {
                    continue;
                }
                eof = true;
            }
            Err(e) => {
                tracing::info!(source = %shared.name, client = %peer, error = %e, "connection error");
                counters.read_fail.fetch_add(1, Ordering::Relaxed);
                eof = true;
            }
        }
        if draining.is_some_and(|t| t.elapsed() > DRAIN_LIMIT) {
            eof = true;
        }
        frames.clear();
        problems.clear();
        let used = framer.split(&pending, eof, &mut frames, &mut problems);
        for p in &problems {
            counters.read_fail.fetch_add(1, Ordering::Relaxed);
            reporter.report(format_args!("{p}"));
        }
        if !frames.is_empty()
            && !deliver(
                shared,
                &pending,
                &frames,
                &extra,
                &mut reporter,
                &mut batch_limit,
                peer,
            )
        {
            break;
        }
        pending.drain(..used);
        if eof {
            break;
        }
    }
    reporter.finish();
    counters.open_connections.fetch_sub(1, Ordering::Relaxed);
    tracing::debug!(source = %shared.name, client = %peer, "client disconnected");
}

/// Appends to `pending` what the client has already sent, up to [`FILL_LIMIT`], without
/// waiting for more. An end of stream or an error is left for the next (blocking) read to see.
/// False if the socket could not be made blocking again.
fn take_waiting(stream: &mut ServerStream, buf: &mut [u8], pending: &mut Vec<u8>) -> bool {
    if stream.tcp().set_nonblocking(true).is_err() {
        return true;
    }
    while pending.len() < FILL_LIMIT {
        match stream.read(buf) {
            Ok(n) if n > 0 => pending.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            _ => break,
        }
    }
    stream.tcp().set_nonblocking(false).is_ok()
}

/// Puts the events of `frames` in transactions of at most `batch_limit`, retrying a refused
/// one (without reading from the client meanwhile) until it is committed. Returns false when
/// the agent is stopping and a batch could not be stored: the connection then ends.
fn deliver(
    shared: &Shared,
    data: &[u8],
    frames: &[Frame],
    extra: &[(String, String)],
    reporter: &mut Reporter,
    batch_limit: &mut usize,
    peer: SocketAddr,
) -> bool {
    let mut i = 0;
    while i < frames.len() {
        let n = (*batch_limit).min(frames.len() - i);
        let chunk = &frames[i..i + n];
        let mut attempt = 0u32;
        let mut backoff = Duration::from_millis(10);
        let committed = loop {
            let first = attempt == 0;
            let events = shared.events(data, chunk, extra, first.then_some(&mut *reporter));
            match shared.processor.process(events) {
                Ok(()) => {
                    if attempt > 0 {
                        tracing::info!(source = %shared.name, client = %peer, attempts = attempt + 1, "channel accepted the held batch; reading from the client again");
                    }
                    break true;
                }
                Err(ChannelError::TransactionTooLarge { limit, .. }) if n > 1 => {
                    tracing::warn!(source = %shared.name, limit, batch_size = n, "batchSize exceeds the channel's transactionCapacity: putting at most {limit} events per transaction");
                    *batch_limit = limit.clamp(1, n - 1);
                    break false;
                }
                Err(e) => {
                    if shared.stopping() {
                        let lost = frames.len() - i;
                        tracing::warn!(source = %shared.name, client = %peer, events = lost, error = %e, "stopping: messages read from this client could not be stored and are lost (TCP syslog cannot tell the client)");
                        return false;
                    }
                    attempt += 1;
                    if attempt == 1 || attempt.is_multiple_of(30) {
                        tracing::warn!(source = %shared.name, client = %peer, events = n, attempt, error = %e, "channel refused a batch; holding the connection (the client is slowed down) and retrying");
                    }
                    let until = Instant::now() + backoff;
                    while Instant::now() < until && !shared.stopping() {
                        std::thread::sleep(POLL.min(backoff));
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        };
        if committed {
            i += n;
        }
    }
    true
}

// ---------------------------------------------------------------------------------------------
// UDP

fn run_udp(shared: &Shared, socket: UdpSocket) {
    let max = shared.config.event_size;
    let to_events = |datagram: &[u8], peer, reporter: &mut Reporter, events: &mut Vec<Event>| {
        // One datagram is one message; a trailing line break is not part of it.
        let mut msg = datagram.strip_suffix(b"\n").unwrap_or(datagram);
        msg = msg.strip_suffix(b"\r").unwrap_or(msg);
        let truncated = msg.len() > max;
        if truncated {
            reporter.report(format_args!(
                "datagram of {} bytes is longer than eventSize ({max} bytes): kept its first {max} bytes with flume.syslog.status=Incomplete",
                msg.len()
            ));
            msg = &msg[..max];
        }
        let frame = Frame {
            range: 0..msg.len(),
            truncated,
            continued: false,
        };
        let extra = shared.client_headers(peer, 0);
        events.extend(shared.events(msg, std::slice::from_ref(&frame), &extra, Some(reporter)));
    };
    datagrams::receive(
        &shared.name,
        &socket,
        &shared.processor,
        &shared.stop,
        shared.config.batch_size,
        to_events,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::Channel;
    use crate::channel::memory::MemoryChannel;
    use crate::config::{
        KeepFields, MemoryChannelConfig, SelectorConfig, SourceConfig, SourceKind,
    };
    use crate::source::SourceCounters;
    use std::io::Write;

    fn config(protocol: SyslogProtocol) -> SyslogConfig {
        SyslogConfig {
            protocol,
            host: "127.0.0.1".into(),
            ports: vec![0],
            event_size: 2500,
            keep_fields: KeepFields::NONE,
            client_ip_header: Some("ip".into()),
            client_hostname_header: None,
            port_header: None,
            batch_size: 100,
            max_connections: 10,
            tls: None,
        }
    }

    /// Starts a source on an ephemeral port; returns it, its address and the channel it feeds.
    fn started(
        protocol: SyslogProtocol,
    ) -> (
        Box<SyslogSource>,
        SocketAddr,
        ChannelProcessor,
        Arc<MemoryChannel>,
    ) {
        let (source, addr, processor, channel, _) = started_with(protocol, 100);
        (source, addr, processor, channel)
    }

    /// [`started`] with `batch` as both the source's batchSize and the channel's
    /// transactionCapacity, also returning the source's counters.
    fn started_with(
        protocol: SyslogProtocol,
        batch: usize,
    ) -> (
        Box<SyslogSource>,
        SocketAddr,
        ChannelProcessor,
        Arc<MemoryChannel>,
        Arc<SourceCounters>,
    ) {
        let cfg = SyslogConfig {
            batch_size: batch,
            ..config(protocol)
        };
        let source_cfg = SourceConfig {
            name: "r1".into(),
            channels: vec!["c1".into()],
            selector: SelectorConfig::Replicating { optional: vec![] },
            interceptors: vec![],
            kind: SourceKind::Syslog(cfg.clone()),
        };
        let channel = Arc::new(MemoryChannel::new(
            "c1",
            &MemoryChannelConfig {
                capacity: 10_000,
                transaction_capacity: batch,
                keep_alive: Duration::from_millis(100),
                byte_capacity: None,
            },
        ));
        let as_dyn: Arc<dyn Channel> = channel.clone();
        let counters = Arc::new(SourceCounters::default());
        let mut processor = ChannelProcessor::new(&source_cfg, &[as_dyn], counters.clone());
        // Flume counts no syslog calls; counted as batches here, they count transactions.
        processor.calls = crate::source::Call::Batch;
        let mut source = Box::new(SyslogSource::new("r1", cfg));
        source.start().unwrap();
        let addr = source.local_addrs()[0];
        (source, addr, processor, channel, counters)
    }

    fn bodies(channel: &MemoryChannel) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let taken = channel.take(100, Duration::ZERO).unwrap();
            if taken.is_empty() {
                return out;
            }
            for (_, e) in &taken.events {
                assert_eq!(e.headers.get("ip"), Some("127.0.0.1"));
                out.push(String::from_utf8_lossy(&e.body).into_owned());
            }
            channel.commit(taken).unwrap();
        }
    }

    /// What clients sent before the stop is stored, even when the source has not read (or
    /// accepted) it yet: here the stop comes before the source runs at all.
    #[test]
    fn tcp_stop_takes_in_what_already_arrived() {
        let (source, addr, processor, channel) = started(SyslogProtocol::Tcp);
        let mut want = Vec::new();
        let mut clients = Vec::new();
        for k in 0..3 {
            let mut s = TcpStream::connect(addr).unwrap();
            for i in 0..200 {
                let body = format!("app - - - k{k}-{i:03}");
                let msg = format!("<13>1 - h {body}");
                s.write_all(format!("{} {msg}", msg.len()).as_bytes())
                    .unwrap();
                want.push(body);
            }
            // Left open: the source must not wait for the client to close.
            clients.push(s);
        }
        let stop: StopFlag = crate::stop::Stop::stopped();
        source.run(processor, stop);
        let mut got = bodies(&channel);
        assert_eq!(got.len(), want.len(), "messages lost at stop");
        got.sort();
        want.sort();
        assert_eq!(got, want);
    }

    /// A fast client's messages fill transactions of up to batchSize, not one read's worth:
    /// here ~85 KB already waiting (more than one 64 KiB read) goes into a single transaction.
    #[test]
    fn tcp_batches_take_everything_already_waiting() {
        let (source, addr, processor, channel, counters) = started_with(SyslogProtocol::Tcp, 1000);
        let mut client = TcpStream::connect(addr).unwrap();
        let mut want = Vec::new();
        let mut bytes = Vec::new();
        for i in 0..500 {
            let body = format!("app - - - {i:03} {}", "x".repeat(140));
            let msg = format!("<13>1 - h {body}");
            bytes.extend_from_slice(format!("{} {msg}", msg.len()).as_bytes());
            want.push(body);
        }
        assert!(bytes.len() > READ_SIZE * 5 / 4);
        client.write_all(&bytes).unwrap();
        // Let it all reach the source's socket before the source reads anything.
        std::thread::sleep(Duration::from_millis(300));
        let stop: StopFlag = crate::stop::Stop::new();
        let s = stop.clone();
        let runner = std::thread::spawn(move || source.run(processor, s));
        let deadline = Instant::now() + Duration::from_secs(20);
        while counters.accepted.load(Ordering::Relaxed) < 500 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        stop.set();
        runner.join().unwrap();
        assert_eq!(bodies(&channel), want);
        assert_eq!(
            counters.batches_accepted.load(Ordering::Relaxed),
            1,
            "what was waiting should make one transaction"
        );
    }

    #[test]
    fn udp_stop_takes_in_what_already_arrived() {
        let (source, addr, processor, channel) = started(SyslogProtocol::Udp);
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        let want: Vec<String> = (0..250).map(|i| format!("app - - - d{i:03}")).collect();
        for body in &want {
            client
                .send_to(format!("<13>1 - h {body}\n").as_bytes(), addr)
                .unwrap();
        }
        let stop: StopFlag = crate::stop::Stop::stopped();
        source.run(processor, stop);
        let got = bodies(&channel);
        assert_eq!(got.len(), want.len(), "datagrams lost at stop");
        assert_eq!(got, want, "in order, trailing newline removed");
    }
}
