//! The avro source: the downstream end of a chain of agents (Flume's AvroSource). An upstream
//! Flume or weir agent's avro sink calls `appendBatch` (or `append`) over Avro RPC
//! (`avro_rpc`); each call is one put transaction, answered `OK` once it is committed and
//! `FAILED` when the channel refuses it (full, or a batch over its `transactionCapacity`), as
//! Flume answers on a ChannelException. Each connection has its own thread (as netcat's); a
//! frame that is not Avro RPC, or a handshake that cannot be read, closes that connection with
//! a log line naming the client, and nothing else.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{ChannelProcessor, Source, StopFlag, listen_tcp, serve_clients, stopping};
use crate::avro_rpc::{Call, FrameError, Responder, ServerConnection, Status, Transport};
use crate::config::{AvroSourceConfig, IpFilterRule};
use crate::rpc_connection::{
    FrameBudget, LimitedFrames, SOURCE_FRAME_MEMORY, SOURCE_FRAME_TIME, Security,
};

/// The zlib level of the source's replies under `compression-type = deflate` (Flume's
/// AvroSource has no key for it and uses Netty's default, 6).
const REPLY_LEVEL: u32 = 6;

/// How long a reply may wait for a client that does not read its replies before the connection
/// is dropped (the agent's stop waits for connection threads).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct AvroSource {
    name: String,
    config: AvroSourceConfig,
    listener: Option<TcpListener>,
    security: Security,
}

impl AvroSource {
    pub fn new(name: &str, config: AvroSourceConfig) -> AvroSource {
        AvroSource {
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

impl Source for AvroSource {
    fn start(&mut self) -> anyhow::Result<()> {
        self.security = Security::server(self.config.tls.as_ref())
            .map_err(|e| anyhow::anyhow!("source {}: cannot set up TLS: {e:#}", self.name))?;
        let listener = listen_tcp(&self.name, &self.config.bind, self.config.port)?;
        tracing::info!(source = %self.name, addr = %listener.local_addr()?, tls = self.config.tls.is_some(), "avro source listening");
        self.listener = Some(listener);
        Ok(())
    }

    fn run(self: Box<Self>, processor: ChannelProcessor, stop: StopFlag) {
        let Some(listener) = self.listener else {
            tracing::error!(source = %self.name, "avro source run before start");
            return;
        };
        let (name, cfg, st) = (self.name.clone(), self.config.clone(), stop.clone());
        let security = self.security.clone();
        let responder = Arc::new(Responder::new());
        let budget = FrameBudget::new(SOURCE_FRAME_MEMORY);
        serve_clients(
            &self.name,
            "avro",
            listener,
            self.config.max_connections,
            &stop,
            |_, _| {},
            move |stream, peer| {
                if let Some(rule) = denied_by(&cfg.ip_filter, peer) {
                    tracing::warn!(source = %name, %peer, rule, "connection refused by ipFilterRules");
                    return;
                }
                serve(
                    &name, stream, peer, &cfg, &security, &processor, &responder, &budget, &st,
                )
            },
        );
    }
}

/// The rule that denies `ip`, if any: the first rule that matches decides, and a client no rule
/// matches is let in (Netty's IpFilterRuleHandler, which Flume uses).
fn denied_by(rules: &[IpFilterRule], peer: SocketAddr) -> Option<&str> {
    // Flume matches `ip:` patterns against Java's spelling of the address.
    let text = super::java_net::host_address(peer);
    let ip = super::java_net::canonical_ip(peer.ip());
    let rule = rules
        .iter()
        .find(|r| r.matches(&text, || dns_lookup::lookup_addr(&ip).ok()))?;
    (!rule.allow).then_some(rule.text.as_str())
}

/// Serves one client until it leaves, sends something that is not Avro RPC, or the agent stops.
#[allow(clippy::too_many_arguments)]
fn serve(
    name: &str,
    stream: TcpStream,
    peer: SocketAddr,
    cfg: &AvroSourceConfig,
    security: &Security,
    processor: &ChannelProcessor,
    responder: &Responder,
    budget: &FrameBudget,
    stop: &StopFlag,
) {
    let counters = processor.counters();
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let mut transport = match Transport::new(
        stream,
        security,
        cfg.deflate.then_some(REPLY_LEVEL),
        stop.clone(),
    ) {
        Ok(t) => t,
        Err(e) => {
            security.report_setup_failure(name, peer, &e);
            return;
        }
    };
    transport.limit_frames(budget.clone(), SOURCE_FRAME_TIME);
    counters.open_connections.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(source = name, %peer, "client connected");
    let mut conn = ServerConnection::default();
    let mut first = true;
    loop {
        let frame = match transport.receive(None) {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(_) if stopping(stop) => break,
            Err(e @ FrameError::OverLimit(_)) => {
                counters.read_fail.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(source = name, %peer, error = %e, "frame refused");
                break;
            }
            // Not a zlib stream from the start: a sink that does not compress.
            Err(FrameError::Io(e))
                if first && cfg.deflate && e.kind() == ErrorKind::InvalidData =>
            {
                counters.read_fail.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(source = name, %peer, error = %e, "closing the connection: this source has compression-type = deflate; does the client's sink not?");
                break;
            }
            Err(FrameError::Io(e)) => {
                tracing::info!(source = name, %peer, error = %e, "connection error");
                break;
            }
            Err(e) if first => {
                counters.read_fail.fetch_add(1, Ordering::Relaxed);
                let hint = security.first_frame_hint(Some(cfg.deflate));
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
        let reply = responder.respond(&mut conn, &frame.payload, |call| {
            let kind = match call {
                Call::Append(_) => super::Call::Single,
                Call::AppendBatch(_) => super::Call::Batch,
            };
            let events = call.into_events();
            let n = events.len();
            match processor.process_call(events, kind) {
                Ok(()) => Status::Ok,
                Err(e) => {
                    tracing::debug!(source = name, %peer, events = n, error = %e, "events refused");
                    Status::Failed
                }
            }
        });
        let reply = match reply {
            Ok(r) => r,
            Err(e) => {
                counters.read_fail.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(source = name, %peer, error = %e, "not an Avro RPC client; closing the connection");
                break;
            }
        };
        if let Some(problem) = &reply.problem {
            counters.read_fail.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(source = name, %peer, error = %problem, "bad call; answered with an Avro error");
        }
        if let Err(e) = transport.send(frame.serial, &reply.payload) {
            tracing::info!(source = name, %peer, error = %e, "client went away before its reply");
            break;
        }
        if reply.problem.is_none() {
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
    use std::thread::JoinHandle;

    use super::*;
    use crate::avro_rpc::{Answer, Requestor, append_batch_call, encode_frame, read_frame};
    use crate::channel::Channel;
    use crate::event::Event;
    use crate::source::test_rig::{memory_channel, processor_for, take_bodies};

    struct Running {
        addr: SocketAddr,
        stop: StopFlag,
        thread: Option<JoinHandle<()>>,
    }

    impl Running {
        fn start(channel: &Arc<dyn Channel>) -> Running {
            Running::start_with(channel, "")
        }

        /// With `rules` as `ipFilterRules` (none if empty).
        fn start_with(channel: &Arc<dyn Channel>, rules: &str) -> Running {
            Running::start_on(channel, "127.0.0.1", rules)
        }

        fn start_on(channel: &Arc<dyn Channel>, bind: &str, rules: &str) -> Running {
            let props = crate::config::Properties::parse(
                std::path::Path::new("t.properties"),
                format!(
                    "a.sources.r1.bind = {bind}\na.sources.r1.port = 0\n\
                     a.sources.r1.threads = 4\na.sources.r1.ipFilter = {}\n\
                     a.sources.r1.ipFilterRules = {rules}\n",
                    !rules.is_empty()
                )
                .as_bytes(),
            )
            .unwrap();
            let section = crate::config::Section::new(&props, "a.sources.r1.".into());
            let config = crate::config::parse_avro_source(&section, &mut Vec::new()).unwrap();
            let mut source = Box::new(AvroSource::new("r1", config));
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
    }

    impl Drop for Running {
        fn drop(&mut self) {
            self.stop.set();
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    fn call(s: &mut TcpStream, client: &mut Requestor, serial: i32, bodies: &[&str]) -> Answer {
        let events: Vec<Event> = bodies.iter().map(|b| Event::new(b.to_string())).collect();
        let request = client.request(&append_batch_call(events.iter()));
        s.write_all(&encode_frame(serial, &request)).unwrap();
        let frame = read_frame(s).unwrap().unwrap();
        assert_eq!(frame.serial, serial);
        client.read_reply(&frame.payload).unwrap()
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
        let channel = memory_channel(3, 100, Duration::ZERO);
        let source = Running::start(&channel);
        let mut s = TcpStream::connect(source.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut client = Requestor::new();
        assert_eq!(
            call(&mut s, &mut client, 1, &["a", "b"]),
            Answer::Status(Status::Ok)
        );
        // Two more do not fit in a channel of three: FAILED, and neither is stored.
        assert_eq!(
            call(&mut s, &mut client, 2, &["c", "d"]),
            Answer::Status(Status::Failed)
        );
        assert_eq!(
            take_bodies(&channel, 10, Duration::from_secs(5)),
            ["a", "b"]
        );
        assert_eq!(
            call(&mut s, &mut client, 3, &["e"]),
            Answer::Status(Status::Ok)
        );
        assert_eq!(take_bodies(&channel, 10, Duration::from_secs(5)), ["e"]);
    }

    /// A client calling back to back does not hold the agent's stop: its connection closes
    /// after the call in progress, and every call it was answered OK for is stored (audit 22:
    /// an upstream sink draining a backlog kept an agent running 40 s after SIGTERM).
    #[test]
    fn a_client_calling_without_pause_does_not_hold_the_stop() {
        let channel = memory_channel(1_000_000, 100, Duration::ZERO);
        let mut source = Running::start(&channel);
        let addr = source.addr;
        let client = std::thread::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut requestor = Requestor::new();
            let give_up = std::time::Instant::now() + Duration::from_secs(20);
            let mut answered_ok = 0usize;
            for serial in 1.. {
                let event = Event::new(format!("e{serial}"));
                let request = requestor.request(&append_batch_call([&event].into_iter()));
                if std::time::Instant::now() > give_up
                    || s.write_all(&encode_frame(serial, &request)).is_err()
                {
                    break;
                }
                match read_frame(&mut s) {
                    Ok(Some(frame)) => {
                        let answer = requestor.read_reply(&frame.payload).unwrap();
                        assert_eq!(answer, Answer::Status(Status::Ok));
                        answered_ok += 1;
                    }
                    _ => break,
                }
            }
            answered_ok
        });
        std::thread::sleep(Duration::from_millis(300));
        let stopped_at = std::time::Instant::now();
        source.stop.set();
        source.thread.take().unwrap().join().unwrap();
        let took = stopped_at.elapsed();
        let answered_ok = client.join().unwrap();
        assert!(took < Duration::from_secs(5), "the stop took {took:?}");
        assert!(answered_ok > 0);
        let stored = channel.stats().size;
        assert!(stored >= answered_ok as u64, "{stored} < {answered_ok}");
    }

    #[test]
    fn a_garbage_frame_closes_only_its_connection() {
        let channel = memory_channel(100, 100, Duration::ZERO);
        let source = Running::start(&channel);
        let mut bad = TcpStream::connect(source.addr).unwrap();
        bad.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        bad.write_all(&[0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff])
            .unwrap();
        assert_closed(&mut bad);
        let mut good = TcpStream::connect(source.addr).unwrap();
        good.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        assert_eq!(
            call(&mut good, &mut Requestor::new(), 1, &["x"]),
            Answer::Status(Status::Ok)
        );
    }

    #[test]
    fn ip_filter_rules_decide_in_order() {
        let channel = memory_channel(100, 100, Duration::ZERO);
        let denied = Running::start_with(&channel, "allow:ip:10.*,deny:ip:127.0.*,allow:ip:*");
        let mut s = TcpStream::connect(denied.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let request = Requestor::new().request(&append_batch_call([&Event::new("x")].into_iter()));
        // The server may close before or after the request arrives.
        let _ = s.write_all(&encode_frame(1, &request));
        assert_closed(&mut s);

        let allowed = Running::start_with(&channel, "deny:ip:10.*,allow:ip:127.*,deny:ip:*");
        let mut s = TcpStream::connect(allowed.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        assert_eq!(
            call(&mut s, &mut Requestor::new(), 1, &["y"]),
            Answer::Status(Status::Ok)
        );
        assert_eq!(take_bodies(&channel, 10, Duration::from_secs(5)), ["y"]);
    }

    /// `threads = 4` (the rig's) turns no client away, as Flume's worker pool does not: six
    /// connections open at once are all served.
    #[test]
    fn more_connections_than_threads_are_all_served() {
        let channel = memory_channel(100, 100, Duration::ZERO);
        let source = Running::start(&channel);
        let mut conns: Vec<(TcpStream, Requestor)> = (0..6)
            .map(|_| {
                let s = TcpStream::connect(source.addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                (s, Requestor::new())
            })
            .collect();
        for (i, (s, client)) in conns.iter_mut().enumerate() {
            let body = format!("conn {i}");
            assert_eq!(
                call(s, client, 1, &[&body]),
                Answer::Status(Status::Ok),
                "{body}"
            );
        }
        let mut got = take_bodies(&channel, 10, Duration::from_secs(5));
        got.sort();
        let want: Vec<String> = (0..6).map(|i| format!("conn {i}")).collect();
        assert_eq!(got, want);
    }

    /// On a socket bound to `::`, an IPv4 client arrives as `::ffff:127.0.0.1`; Flume's rules
    /// see `127.0.0.1` (Java hands out IPv4 addresses), and IPv6 in full (`0:0:0:0:0:0:0:1`).
    #[test]
    fn ip_filter_rules_see_addresses_as_java_spells_them() {
        let channel = memory_channel(100, 100, Duration::ZERO);
        let rules = "allow:ip:127.0.0.1,allow:ip:0:0:0:0:0:0:0:1,deny:ip:*";
        let source = Running::start_on(&channel, "::", rules);
        let port = source.addr.port();
        for (i, host) in ["127.0.0.1", "::1"].into_iter().enumerate() {
            let mut s = TcpStream::connect((host, port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let body = format!("from {host}");
            assert_eq!(
                call(&mut s, &mut Requestor::new(), i as i32, &[&body]),
                Answer::Status(Status::Ok),
                "{host}"
            );
            assert_eq!(take_bodies(&channel, 10, Duration::from_secs(5)), [body]);
        }
    }
}
