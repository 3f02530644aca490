//! The thrift source (Flume's ThriftSource): a Flume or weir thrift sink, Flume's
//! ThriftRpcClient, or any Thrift client of Flume's `ThriftSourceProtocol` calls `appendBatch`
//! (or `append`) over framed Thrift RPC (`thrift_rpc`, compact or binary per `protocol`). Each
//! call is one put transaction, answered `OK` once it is committed and `FAILED` when the channel
//! refuses it (full, or a batch over its `transactionCapacity`), as Flume answers on a
//! ChannelException. A call of another method, or whose arguments cannot be read (a header that
//! is not UTF-8 among them), is answered with a TApplicationException and a log line naming the
//! client; nothing of it is stored. A frame that is too large, cut short, or whose message
//! header is not Thrift closes that connection with a log line, and nothing else. Each
//! connection has its own thread (as netcat's).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{ChannelProcessor, Source, StopFlag, listen_tcp, serve_clients, stopping};
use crate::config::ThriftSourceConfig;
use crate::rpc_connection::{
    FrameBudget, LimitedFrames, SOURCE_FRAME_MEMORY, SOURCE_FRAME_TIME, Security,
};
use crate::thrift_rpc::{FrameError, Status, Transport, serve as serve_call};

/// How long a reply may wait for a client that does not read its replies before the connection
/// is dropped (the agent's stop waits for connection threads).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct ThriftSource {
    name: String,
    config: ThriftSourceConfig,
    listener: Option<TcpListener>,
    security: Security,
}

impl ThriftSource {
    pub fn new(name: &str, config: ThriftSourceConfig) -> ThriftSource {
        ThriftSource {
            name: name.to_owned(),
            config,
            listener: None,
            security: Security::Plain,
        }
    }

    /// The address this source listens on, once started (tests).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref()?.local_addr().ok()
    }
}

impl Source for ThriftSource {
    fn start(&mut self) -> anyhow::Result<()> {
        self.security = Security::server(self.config.tls.as_ref())
            .map_err(|e| anyhow::anyhow!("source {}: cannot set up TLS: {e:#}", self.name))?;
        let listener = listen_tcp(&self.name, &self.config.bind, self.config.port)?;
        tracing::info!(source = %self.name, addr = %listener.local_addr()?, protocol = ?self.config.protocol, tls = self.config.tls.is_some(), "thrift source listening");
        self.listener = Some(listener);
        Ok(())
    }

    fn run(self: Box<Self>, processor: ChannelProcessor, stop: StopFlag) {
        let Some(listener) = self.listener else {
            tracing::error!(source = %self.name, "thrift source run before start");
            return;
        };
        let (name, cfg, st) = (self.name.clone(), self.config.clone(), stop.clone());
        let security = self.security.clone();
        let budget = FrameBudget::new(SOURCE_FRAME_MEMORY);
        serve_clients(
            &self.name,
            "thrift",
            listener,
            self.config.max_connections,
            &stop,
            |_, _| {},
            move |stream, peer| {
                serve(
                    &name, stream, peer, &cfg, &security, &processor, &budget, &st,
                )
            },
        );
    }
}

/// Serves one client until it leaves, sends something that is not framed Thrift, or the agent
/// stops.
#[allow(clippy::too_many_arguments)]
fn serve(
    name: &str,
    stream: TcpStream,
    peer: SocketAddr,
    cfg: &ThriftSourceConfig,
    security: &Security,
    processor: &ChannelProcessor,
    budget: &FrameBudget,
    stop: &StopFlag,
) {
    let counters = processor.counters();
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let mut transport = match Transport::new(stream, security, stop.clone()) {
        Ok(t) => t,
        Err(e) => {
            security.report_setup_failure(name, peer, &e);
            return;
        }
    };
    transport.limit_frames(budget.clone(), SOURCE_FRAME_TIME);
    counters.open_connections.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(source = name, %peer, "client connected");
    let mut first = true;
    loop {
        let message = match transport.receive(None) {
            Ok(Some(m)) => m,
            Ok(None) => break,
            Err(_) if stopping(stop) => break,
            Err(e @ FrameError::OverLimit(_)) => {
                counters.read_fail.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(source = name, %peer, error = %e, "frame refused");
                break;
            }
            Err(FrameError::Io(e)) => {
                tracing::info!(source = name, %peer, error = %e, "connection error");
                break;
            }
            Err(e) if first => {
                counters.read_fail.fetch_add(1, Ordering::Relaxed);
                let hint = security.first_frame_hint(None);
                tracing::warn!(source = name, %peer, error = %e, "closing the connection: {hint}");
                break;
            }
            Err(e) => {
                counters.read_fail.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(source = name, %peer, error = %e, "closing the connection");
                break;
            }
        };
        first = false;
        let served = serve_call(cfg.protocol, &message, |events, batch| {
            let n = events.len();
            let call = if batch {
                super::Call::Batch
            } else {
                super::Call::Single
            };
            match processor.process_call(events, call) {
                Ok(()) => Status::Ok,
                Err(e) => {
                    tracing::debug!(source = name, %peer, events = n, error = %e, "events refused");
                    Status::Failed
                }
            }
        });
        let served = match served {
            Ok(s) => s,
            Err(e) => {
                counters.read_fail.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(source = name, %peer, protocol = ?cfg.protocol, error = %e, "not a Thrift call; closing the connection");
                break;
            }
        };
        if let Some(problem) = &served.problem {
            counters.read_fail.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(source = name, %peer, error = %problem, "bad call; answered with a TApplicationException");
        }
        if let Err(e) = transport.send(&served.reply) {
            tracing::info!(source = name, %peer, error = %e, "client went away before its reply");
            break;
        }
        if served.problem.is_none() {
            transport.client_proven();
        }
        // The call that was in progress at the stop is answered; the next is not read, so a
        // client calling back to back (an upstream sink draining its backlog) cannot keep the
        // agent from stopping. Its unanswered call is sent again after the restart.
        if stopping(stop) {
            tracing::debug!(source = name, %peer, "closing the connection at the stop");
            break;
        }
    }
    counters.open_connections.fetch_sub(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::sync::Arc;
    use std::thread::JoinHandle;

    use super::*;
    use crate::channel::Channel;
    use crate::event::Event;
    use crate::source::test_rig::{memory_channel, processor_for, take_bodies};
    use crate::thrift_rpc::{
        MAX_FRAME_BYTES, Protocol, append_batch_call, encode_frame, read_frame, read_reply,
    };

    struct Running {
        addr: SocketAddr,
        stop: StopFlag,
        thread: Option<JoinHandle<()>>,
    }

    impl Running {
        fn start(channel: &Arc<dyn Channel>, protocol: Protocol) -> Running {
            let config = ThriftSourceConfig {
                bind: "127.0.0.1".into(),
                port: 0,
                max_connections: 4,
                protocol,
                tls: None,
            };
            let mut source = Box::new(ThriftSource::new("r1", config));
            source.start().unwrap();
            let addr = source.local_addr().unwrap();
            let stop: StopFlag = crate::stop::Stop::new();
            let processor = processor_for(channel);
            let s = stop.clone();
            let thread = std::thread::spawn(move || source.run(processor, s));
            Running {
                addr,
                stop,
                thread: Some(thread),
            }
        }

        fn connect(&self) -> TcpStream {
            let s = TcpStream::connect(self.addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s
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

    fn call(s: &mut TcpStream, proto: Protocol, seqid: i32, bodies: &[&str]) -> Status {
        let events: Vec<Event> = bodies.iter().map(|b| Event::new(b.to_string())).collect();
        s.write_all(&encode_frame(&append_batch_call(
            proto,
            seqid,
            events.iter(),
        )))
        .unwrap();
        let reply = read_frame(s, MAX_FRAME_BYTES).unwrap().unwrap();
        read_reply(proto, "appendBatch", seqid, &reply).unwrap()
    }

    /// The server closed the connection without a reply (a reset counts; a timeout does not).
    fn assert_closed(s: &mut TcpStream) {
        let mut rest = Vec::new();
        match s.read_to_end(&mut rest) {
            Ok(_) => assert!(rest.is_empty(), "a reply: {rest:?}"),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        }
    }

    #[test]
    fn batches_are_committed_before_ok_and_refused_batches_fail() {
        for proto in [Protocol::Compact, Protocol::Binary] {
            let channel = memory_channel(3, 100, Duration::ZERO);
            let source = Running::start(&channel, proto);
            let mut s = source.connect();
            assert_eq!(call(&mut s, proto, 1, &["a", "b"]), Status::Ok);
            // Two more do not fit in a channel of three: FAILED, and neither is stored.
            assert_eq!(call(&mut s, proto, 2, &["c", "d"]), Status::Failed);
            assert_eq!(
                take_bodies(&channel, 10, Duration::from_secs(5)),
                ["a", "b"]
            );
            assert_eq!(call(&mut s, proto, 3, &["e"]), Status::Ok);
            assert_eq!(take_bodies(&channel, 10, Duration::from_secs(5)), ["e"]);
        }
    }

    /// A client calling back to back does not hold the agent's stop; a full channel's FAILED
    /// answers do not either (audit 22: 90 s after SIGTERM).
    #[test]
    fn a_client_calling_without_pause_does_not_hold_the_stop() {
        for (capacity, expected) in [(1_000_000, Status::Ok), (0, Status::Failed)] {
            let channel = memory_channel(capacity.max(1), 100, Duration::from_millis(200));
            if capacity == 0 {
                channel.put(vec![Event::new("filler")]).unwrap();
            }
            let mut source = Running::start(&channel, Protocol::Compact);
            let mut s = source.connect();
            let client = std::thread::spawn(move || {
                let give_up = std::time::Instant::now() + Duration::from_secs(20);
                let mut answered = 0usize;
                for seqid in 1.. {
                    let event = Event::new(format!("e{seqid}"));
                    let call = append_batch_call(Protocol::Compact, seqid, [&event].into_iter());
                    if std::time::Instant::now() > give_up
                        || s.write_all(&encode_frame(&call)).is_err()
                    {
                        break;
                    }
                    match read_frame(&mut s, MAX_FRAME_BYTES) {
                        Ok(Some(reply)) => {
                            let status =
                                read_reply(Protocol::Compact, "appendBatch", seqid, &reply);
                            assert_eq!(status.unwrap(), expected);
                            answered += 1;
                        }
                        _ => break,
                    }
                }
                answered
            });
            std::thread::sleep(Duration::from_millis(500));
            let stopped_at = std::time::Instant::now();
            source.stop.set();
            source.thread.take().unwrap().join().unwrap();
            let took = stopped_at.elapsed();
            assert!(client.join().unwrap() > 0);
            assert!(took < Duration::from_secs(5), "the stop took {took:?}");
        }
    }

    #[test]
    fn bad_frames_close_only_their_connection() {
        let channel = memory_channel(100, 100, Duration::ZERO);
        let source = Running::start(&channel, Protocol::Compact);
        for bad_bytes in [
            // A frame over the limit.
            ((MAX_FRAME_BYTES + 1) as u32).to_be_bytes().to_vec(),
            // A frame holding a binary-protocol message where compact is configured.
            encode_frame(&append_batch_call(
                Protocol::Binary,
                1,
                [&Event::new("x")].into_iter(),
            )),
        ] {
            let mut bad = source.connect();
            bad.write_all(&bad_bytes).unwrap();
            assert_closed(&mut bad);
        }
        let mut good = source.connect();
        assert_eq!(call(&mut good, Protocol::Compact, 1, &["x"]), Status::Ok);
        assert_eq!(take_bodies(&channel, 10, Duration::from_secs(5)), ["x"]);
    }
}
