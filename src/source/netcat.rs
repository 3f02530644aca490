//! The netcat source: one line of text is one event; the client gets `OK` once the event is
//! committed, or `FAILED: reason` (Flume's NetcatSource). Each connection has its own thread;
//! concurrent connections share the channel's group commit.
//!
//! Flume puts each line in a transaction of its own. weir puts the complete lines that one
//! read of the socket delivered as one transaction (up to the channels' `transactionCapacity`),
//! then replies to each. A client that waits for each `OK` sends one line per read, so it sees
//! Flume's behaviour; a client that streams (`cat file | nc`) gets one commit, and one fsync of
//! a file channel, per read instead of per line: ~850k against 9k lines per second with four
//! streaming clients (`cargo bench --bench sources`). Every `OK` still follows the commit of
//! its line. When the channel refuses a transaction because it is full, every line of it gets
//! `FAILED`, not only those past the point where the channel filled up; when it refuses it
//! because a line can never be stored, the lines are put again one by one, so that only that
//! line fails, as in Flume.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Answers, ChannelProcessor, Source, StopFlag, listen_tcp, serve_clients, stopping};
use crate::channel::ChannelError;
use crate::config::NetcatConfig;
use crate::event::Event;
use crate::log_throttle::Throttle;
use crate::stop::IDLE_WAIT;

/// How often blocked threads look at the stop flag.
const POLL: Duration = Duration::from_millis(100);

/// How long replies may wait for a client that reads none of them before the connection is
/// dropped (as the avro and thrift sources drop theirs): a client that streams lines and never
/// reads its `OK`s would otherwise hold its thread, and the agent's stop, for as long as it
/// stays connected.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

pub struct NetcatSource {
    name: String,
    config: NetcatConfig,
    listener: Option<TcpListener>,
}

impl NetcatSource {
    pub fn new(name: &str, config: NetcatConfig) -> NetcatSource {
        NetcatSource {
            name: name.to_owned(),
            config,
            listener: None,
        }
    }

    /// The address this source listens on, once started (tests and benchmarks).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref()?.local_addr().ok()
    }
}

impl Source for NetcatSource {
    fn start(&mut self) -> anyhow::Result<()> {
        let listener = listen_tcp(&self.name, &self.config.bind, self.config.port)?;
        tracing::info!(source = %self.name, addr = %listener.local_addr()?, "netcat source listening");
        self.listener = Some(listener);
        Ok(())
    }

    fn run(self: Box<Self>, processor: ChannelProcessor, stop: StopFlag) {
        let Some(listener) = self.listener else {
            tracing::error!(source = %self.name, "netcat source run before start");
            return;
        };
        let (name, cfg, st) = (self.name.clone(), self.config.clone(), stop.clone());
        serve_clients(
            &self.name,
            "netcat",
            listener,
            self.config.max_connections,
            &stop,
            |mut stream, _| {
                let _ = stream.write_all(b"FAILED: too many connections\n");
            },
            move |stream, peer| serve(&name, stream, peer, &cfg, &processor, &st),
        );
    }
}

/// Serves one client until it leaves or the agent stops.
fn serve(
    name: &str,
    mut stream: TcpStream,
    peer: SocketAddr,
    cfg: &NetcatConfig,
    processor: &ChannelProcessor,
    stop: &StopFlag,
) {
    let counters = processor.counters();
    counters.open_connections.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(source = name, %peer, "client connected");
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(POLL));
    // Replies are written in steps of this too (see `write_replies`).
    let _ = stream.set_write_timeout(Some(POLL));
    let _ = stream.set_nodelay(true);
    let mut lines = Lines::new(cfg.max_line_length);
    // A client sending nothing but over-long lines would otherwise get a log line for each.
    let mut too_long = Throttle::default();
    let mut buf = vec![0u8; 64 * 1024];
    let limit = processor.transaction_limit();
    while !stopping(stop) {
        // Asleep until the client sends or the agent stops, rather than woken by each read
        // timeout to look at the stop (10 times a second for every idle client).
        if !stop.wait_readable(&[stream.as_fd()], IDLE_WAIT) {
            continue;
        }
        let n = match stream.read(&mut buf) {
            Ok(0) => {
                if lines.mid_line() {
                    tracing::info!(source = name, %peer, "client closed mid-line; partial line discarded");
                }
                break;
            }
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                tracing::info!(source = name, %peer, error = %e, "connection error");
                counters.read_fail.fetch_add(1, Ordering::Relaxed);
                break;
            }
        };
        // Complete lines of this read, put as one transaction (see the module doc), and the
        // replies, written with one system call once the transaction is over.
        let mut batch: Vec<Event> = Vec::new();
        let mut replies: Vec<u8> = Vec::new();
        lines.split(Bytes::copy_from_slice(&buf[..n]), |line| match line {
            Line::Complete(body) => {
                batch.push(Event::new(body));
                if batch.len() >= limit {
                    put_batch(name, peer, cfg, processor, &mut batch, &mut replies);
                }
            }
            Line::TooLong => {
                // Replies keep the order of the lines: the lines before this one first.
                put_batch(name, peer, cfg, processor, &mut batch, &mut replies);
                counters.read_fail.fetch_add(1, Ordering::Relaxed);
                if let Some(lines) = too_long.occurred(Instant::now()) {
                    tracing::info!(
                        source = name,
                        %peer,
                        limit = cfg.max_line_length,
                        lines,
                        "line too long; refused (logged at most once a minute per connection, \
                         with the lines refused since)"
                    );
                }
                replies.extend_from_slice(
                    format!(
                        "FAILED: Event exceeds the maximum length ({} bytes, including newline)\n",
                        cfg.max_line_length
                    )
                    .as_bytes(),
                );
            }
        });
        put_batch(name, peer, cfg, processor, &mut batch, &mut replies);
        if let Err(e) = write_replies(&mut stream, &replies, stop) {
            tracing::info!(source = name, %peer, error = %e, "replies not delivered; closing the connection");
            break;
        }
    }
    counters.open_connections.fetch_sub(1, Ordering::Relaxed);
}

/// Writes `replies` on `stream`, whose writes time out after [`POLL`], giving up when the
/// agent stops or the client has taken none of them for [`REPLY_TIMEOUT`]. The events they
/// answer are committed whatever happens here.
fn write_replies(stream: &mut TcpStream, mut replies: &[u8], stop: &StopFlag) -> io::Result<()> {
    let mut last_progress = Instant::now();
    while !replies.is_empty() {
        match stream.write(replies) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => {
                replies = &replies[n..];
                last_progress = Instant::now();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                if stopping(stop) {
                    return Err(io::Error::other("the agent is stopping"));
                }
                if last_progress.elapsed() >= REPLY_TIMEOUT {
                    return Err(io::Error::new(
                        ErrorKind::TimedOut,
                        format!("the client read no reply for {} s", REPLY_TIMEOUT.as_secs()),
                    ));
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One line of the stream, as [`Lines::split`] finds it.
#[derive(Debug, PartialEq)]
enum Line {
    /// A line within `max-line-length` (newline counted), without its newline or a `\r`
    /// before it.
    Complete(Bytes),
    /// A line over `max-line-length`: refused, its bytes discarded.
    TooLong,
}

/// Splits a connection's byte stream into lines, whatever the reads' boundaries.
///
/// A line that lies wholly inside one read is a slice of that read's buffer: no allocation per
/// line, and a copy of the batch (see `ChannelProcessor::process_answering_each`) costs a
/// reference count per line. Only a line that spans reads is gathered into a buffer of its own,
/// and an over-long line is not gathered at all.
struct Lines {
    max_line_length: usize,
    /// The start of a line that an earlier read began.
    partial: Vec<u8>,
    /// True while discarding the rest of an over-long line.
    overflow: bool,
}

impl Lines {
    fn new(max_line_length: usize) -> Lines {
        Lines {
            max_line_length,
            partial: Vec::new(),
            overflow: false,
        }
    }

    /// True if the stream stopped inside a line.
    fn mid_line(&self) -> bool {
        !self.partial.is_empty() || self.overflow
    }

    /// Calls `each` with every line that `data` completes, in order.
    fn split(&mut self, data: Bytes, mut each: impl FnMut(Line)) {
        let mut at = 0;
        while at < data.len() {
            let Some(i) = memchr::memchr(b'\n', &data[at..]) else {
                // The rest starts a line that the next read goes on with.
                if !self.overflow && self.partial.len() + (data.len() - at) > self.max_line_length {
                    self.overflow = true;
                    self.partial.clear();
                }
                if !self.overflow {
                    self.partial.extend_from_slice(&data[at..]);
                }
                return;
            };
            let chunk = at..at + i;
            at += i + 1;
            // The limit counts the newline, as Flume's does.
            if self.overflow || self.partial.len() + chunk.len() + 1 > self.max_line_length {
                self.overflow = false;
                self.partial.clear();
                each(Line::TooLong);
                continue;
            }
            let mut body = if self.partial.is_empty() {
                data.slice(chunk)
            } else {
                self.partial.extend_from_slice(&data[chunk]);
                Bytes::from(std::mem::take(&mut self.partial))
            };
            if body.last() == Some(&b'\r') {
                body.truncate(body.len() - 1);
            }
            each(Line::Complete(body));
        }
    }
}

/// Puts `batch` (emptied) as one transaction and adds a reply per event to `replies`: `OK`
/// (if `ack-every-event`) once it is committed, or `FAILED: reason` if it was refused (line by
/// line when a line can never be stored; see the module doc).
fn put_batch(
    name: &str,
    peer: SocketAddr,
    cfg: &NetcatConfig,
    processor: &ChannelProcessor,
    batch: &mut Vec<Event>,
    replies: &mut Vec<u8>,
) {
    if batch.is_empty() {
        return;
    }
    let n = batch.len();
    let mut answer = |outcome: &Result<(), ChannelError>, lines: usize| match outcome {
        Ok(()) if cfg.ack_every_event => replies.extend_from_slice(&b"OK\n".repeat(lines)),
        Ok(()) => {}
        Err(e) => {
            tracing::debug!(source = name, %peer, events = lines, error = %e, "events refused");
            replies.extend_from_slice(format!("FAILED: {e}\n").repeat(lines).as_bytes());
        }
    };
    match processor.process_answering_each(std::mem::take(batch)) {
        Answers::All(outcome) => answer(&outcome, n),
        Answers::Each(outcomes) => outcomes.iter().for_each(|o| answer(o, 1)),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};
    use std::sync::Arc;
    use std::thread::JoinHandle;

    use super::*;
    use crate::channel::Channel;
    use crate::channel::memory::MemoryChannel;
    use crate::config::{MemoryChannelConfig, SourceKind};
    use crate::source::test_rig::{memory_channel, processor_of, take_bodies};

    /// A started netcat source feeding `channel` on its own thread; stopped and joined on drop.
    struct Running {
        addr: SocketAddr,
        stop: StopFlag,
        counters: Arc<crate::source::SourceCounters>,
        thread: Option<JoinHandle<()>>,
    }

    impl Running {
        fn start(channel: &Arc<dyn Channel>, max_line_length: usize) -> Running {
            let config = NetcatConfig {
                bind: "127.0.0.1".into(),
                port: 0,
                max_line_length,
                ack_every_event: true,
                max_connections: 4,
            };
            let mut source = Box::new(NetcatSource::new("r1", config.clone()));
            source.start().unwrap();
            let addr = source.local_addr().unwrap();
            let stop: StopFlag = crate::stop::Stop::new();
            let mut processor = processor_of(channel, SourceKind::Netcat(config));
            // Flume counts no netcat calls; counted as batches here, they count transactions.
            processor.calls = crate::source::Call::Batch;
            let counters = processor.counters.clone();
            let s = stop.clone();
            let thread = std::thread::spawn(move || source.run(processor, s));
            Running {
                addr,
                stop,
                counters,
                thread: Some(thread),
            }
        }

        /// Sends `text` with one write and reads `replies` reply lines.
        fn send(&self, text: &str, replies: usize) -> Vec<String> {
            let mut s = TcpStream::connect(self.addr).unwrap();
            s.write_all(text.as_bytes()).unwrap();
            let mut r = BufReader::new(s);
            (0..replies)
                .map(|_| {
                    let mut l = String::new();
                    r.read_line(&mut l).unwrap();
                    l.trim_end().to_owned()
                })
                .collect()
        }
    }

    impl Drop for Running {
        fn drop(&mut self) {
            self.stop.set();
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    /// A client that streams lines and reads none of the replies fills the socket buffers
    /// until its connection thread blocks writing them; the agent's stop must still end that
    /// thread (it used to wait for the client to go away).
    #[test]
    fn a_client_that_reads_no_replies_does_not_hold_up_the_stop() {
        let channel = memory_channel(1000, 100, Duration::ZERO);
        // Lines over the limit: nothing is stored, and each gets a long FAILED reply, so the
        // replies fill the buffers after a few megabytes.
        let mut netcat = Running::start(&channel, 4);
        let mut client = TcpStream::connect(netcat.addr).unwrap();
        client
            .set_write_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let chunk = "too long\n".repeat(1000);
        let start = Instant::now();
        loop {
            match client.write_all(chunk.as_bytes()) {
                Ok(()) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    break;
                }
                Err(e) => panic!("{e}"),
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the source kept taking lines"
            );
        }
        let stopping = Instant::now();
        netcat.stop.set();
        netcat.thread.take().unwrap().join().unwrap();
        assert!(
            stopping.elapsed() < Duration::from_secs(5),
            "the stop took {:?}",
            stopping.elapsed()
        );
        drop(client);
    }

    #[test]
    fn streamed_lines_share_transactions_within_the_transaction_capacity() {
        let channel = memory_channel(10_000, 100, Duration::ZERO);
        let netcat = Running::start(&channel, 512);
        let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        let replies = netcat.send(&text, 1000);
        assert!(replies.iter().all(|r| r == "OK"), "{replies:?}");
        let mut got = Vec::new();
        while got.len() < 1000 {
            let more = take_bodies(&channel, 100, Duration::from_secs(5));
            assert!(!more.is_empty(), "only {} lines stored", got.len());
            got.extend(more);
        }
        let want: Vec<String> = (0..1000).map(|i| format!("line {i}")).collect();
        assert_eq!(got, want);
        let puts = netcat.counters.batches_accepted.load(Ordering::Relaxed);
        assert!(
            (10..500).contains(&puts),
            "1000 streamed lines took {puts} transactions of at most 100"
        );
    }

    #[test]
    fn an_over_long_line_fails_alone_and_replies_keep_the_order_of_the_lines() {
        let channel = memory_channel(100, 100, Duration::ZERO);
        let netcat = Running::start(&channel, 8);
        let replies = netcat.send("a\nbbbbbbbbbbbb\nc\r\n", 3);
        assert_eq!(replies[0], "OK");
        assert!(
            replies[1].starts_with("FAILED: ") && replies[1].contains("8 bytes"),
            "{replies:?}"
        );
        assert_eq!(replies[2], "OK");
        assert_eq!(
            take_bodies(&channel, 10, Duration::from_secs(5)),
            ["a", "c"]
        );
    }

    #[test]
    fn every_line_of_a_refused_transaction_fails_and_none_is_stored() {
        let channel = memory_channel(2, 100, Duration::ZERO);
        let netcat = Running::start(&channel, 512);
        let replies = netcat.send("x\ny\nz\n", 3);
        assert!(
            replies
                .iter()
                .all(|r| r.starts_with("FAILED: ") && r.contains("full")),
            "{replies:?}"
        );
        assert_eq!(netcat.send("w\n", 1), ["OK"]);
        assert_eq!(take_bodies(&channel, 10, Duration::from_secs(5)), ["w"]);
    }

    #[test]
    fn a_line_the_channel_can_never_store_fails_alone_among_streamed_lines() {
        let channel: Arc<dyn Channel> = Arc::new(MemoryChannel::new(
            "c1",
            &MemoryChannelConfig {
                capacity: 100,
                transaction_capacity: 100,
                keep_alive: Duration::ZERO,
                byte_capacity: Some(20),
            },
        ));
        let netcat = Running::start(&channel, 512);
        let long = "b".repeat(30);
        let replies = netcat.send(&format!("a\n{long}\nc\n"), 3);
        assert_eq!(replies[0], "OK", "{replies:?}");
        assert!(
            replies[1].starts_with("FAILED: ") && replies[1].contains("byteCapacity 20"),
            "{replies:?}"
        );
        assert_eq!(replies[2], "OK", "{replies:?}");
        assert_eq!(
            take_bodies(&channel, 10, Duration::from_secs(5)),
            ["a", "c"]
        );
        // Counted as Flume counts lines put one by one.
        let c = &netcat.counters;
        assert_eq!(c.received.load(Ordering::Relaxed), 3);
        assert_eq!(c.accepted.load(Ordering::Relaxed), 2);
        assert_eq!(c.channel_write_fail.load(Ordering::Relaxed), 1);
    }

    proptest::proptest! {
        /// The lines found are those of the plain split of the whole stream, whatever the
        /// reads' sizes: a `\r` before the newline dropped, a line over the limit refused.
        #[test]
        fn lines_are_those_of_the_whole_stream_whatever_the_reads(
            raw in proptest::collection::vec(
                proptest::collection::vec(proptest::sample::select(b"ab\r".to_vec()), 0..12),
                0..20,
            ),
            tail in proptest::collection::vec(proptest::sample::select(b"ab\r".to_vec()), 0..12),
            max in 1usize..10,
            reads in proptest::collection::vec(1usize..9, 1..20),
        ) {
            let mut stream: Vec<u8> = raw.iter().flat_map(|l| l.iter().copied().chain([b'\n'])).collect();
            stream.extend_from_slice(&tail);
            let want: Vec<Line> = raw
                .iter()
                .map(|l| {
                    if l.len() + 1 > max {
                        Line::TooLong
                    } else {
                        Line::Complete(Bytes::copy_from_slice(l.strip_suffix(b"\r").unwrap_or(l)))
                    }
                })
                .collect();
            let mut lines = Lines::new(max);
            let mut got = Vec::new();
            let (mut at, mut k) = (0, 0);
            while at < stream.len() {
                let n = reads[k % reads.len()].min(stream.len() - at);
                lines.split(Bytes::copy_from_slice(&stream[at..at + n]), |l| got.push(l));
                (at, k) = (at + n, k + 1);
            }
            proptest::prop_assert_eq!(got, want);
            proptest::prop_assert_eq!(lines.mid_line(), !tail.is_empty());
        }
    }
}
