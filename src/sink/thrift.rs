//! The thrift sink (Flume's ThriftSink): each batch is one `appendBatch` call over framed Thrift
//! RPC (`thrift_rpc`, compact or binary per `protocol`) to a Flume or weir thrift source; the
//! take is committed only when the source answered `OK`, which it does once the batch is
//! committed to its channel. Anything else — `FAILED`, a TApplicationException, no reply within
//! `request-timeout`, a broken connection — fails the delivery, so the runner rolls the batch
//! back and backs off, and the connection is dropped and made anew for the next try. Delivery is
//! at-least-once: a reply lost after the downstream commit sends the batch again. Events sent
//! and events answered `OK` count as `EventSendCount` and `EventAckCount`.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};

use super::{Sink, SinkCounters};
use crate::config::ThriftSinkConfig;
use crate::event::Event;
use crate::rpc_connection::{self, Security};
use crate::stop::StopFlag;
use crate::thrift_rpc::{
    FrameError, MAX_FRAME_BYTES, Status, Transport, append_batch_call, read_reply,
};

pub struct ThriftSink {
    name: String,
    config: ThriftSinkConfig,
    stop: StopFlag,
    counters: Arc<SinkCounters>,
    conn: Option<Connection>,
    /// From the config's TLS settings; an error (unlikely: the stores were read with the
    /// config) fails every delivery with its message.
    security: Result<Security, String>,
    /// The most bytes one call may take: what a thrift source reads in one frame (tests lower
    /// it).
    max_call_bytes: usize,
}

struct Connection {
    transport: Transport,
    seqid: i32,
    opened: Instant,
    peer: SocketAddr,
}

impl ThriftSink {
    pub fn new(
        name: &str,
        config: ThriftSinkConfig,
        stop: StopFlag,
        counters: Arc<SinkCounters>,
    ) -> ThriftSink {
        counters
            .holds_connections
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let security = Security::client(config.target.tls.as_ref(), &config.target.hostname)
            .map_err(|e| format!("{e:#}"));
        ThriftSink {
            name: name.to_owned(),
            config,
            stop,
            counters,
            conn: None,
            security,
            max_call_bytes: MAX_FRAME_BYTES,
        }
    }

    /// Connects to the target (the first of its addresses that answers within
    /// `connect-timeout`).
    fn open_connection(&self) -> anyhow::Result<Connection> {
        let security = self
            .security
            .as_ref()
            .map_err(|e| anyhow::anyhow!("cannot set up TLS: {e}"))?;
        let (stream, addr) =
            rpc_connection::connect_unless_stopped(&self.config.target, &self.stop)?;
        let transport = Transport::new(stream, security, self.stop.clone())
            .with_context(|| format!("cannot set up the connection to {addr}"))?;
        tracing::info!(sink = %self.name, peer = %addr, "connected");
        Ok(Connection {
            transport,
            seqid: 0,
            opened: Instant::now(),
            peer: addr,
        })
    }

    /// Sends one batch and reads its status; `Ok(Err(bytes))`, sending nothing, when the batch
    /// takes more bytes than one frame may (`max_call_bytes`).
    fn call(&mut self, events: &[(u64, Event)]) -> anyhow::Result<Result<Status, usize>> {
        let (timeout, proto) = (self.config.target.request_timeout, self.config.protocol);
        // Connected by `ready`, which every delivery goes through first.
        let Some(conn) = self.conn.as_mut() else {
            bail!("not connected")
        };
        let seqid = conn.seqid.wrapping_add(1);
        let message = append_batch_call(proto, seqid, events.iter().map(|(_, e)| e));
        if message.len() > self.max_call_bytes {
            return Ok(Err(message.len()));
        }
        conn.seqid = seqid;
        conn.transport
            .send(&message)
            .with_context(|| format!("sending to {}", conn.peer))?;
        let reply = match conn.transport.receive(Some(timeout)) {
            Ok(Some(r)) => r,
            Ok(None) => bail!("{} closed the connection without a reply", conn.peer),
            Err(FrameError::Io(e)) if e.kind() == ErrorKind::TimedOut => bail!(
                "no reply from {} within request-timeout ({} ms)",
                conn.peer,
                timeout.as_millis()
            ),
            Err(e) => bail!("reading the reply from {}: {e}", conn.peer),
        };
        read_reply(proto, "appendBatch", conn.seqid, &reply)
            .map(Ok)
            .map_err(|e| anyhow::anyhow!("{}: {e}", conn.peer))
    }

    /// Sends `events` as one `appendBatch` call, or, when they take more bytes than a thrift
    /// source reads in one frame, as the calls of each half, halved again as needed. The
    /// downstream source commits each call on its own, so a failure after the first call sends
    /// that call's events again on the retry: at-least-once, as for a lost reply. A frame over
    /// the limit would make the source close the connection, on every retry: the sink would
    /// stop for good over `batch-size`, as Flume's does. `whole`: `events` is the whole batch,
    /// whose events are then checked to fit one by one.
    fn send(&mut self, events: &[(u64, Event)], whole: bool) -> anyhow::Result<()> {
        let status = match self.call(events) {
            Ok(Err(bytes)) => {
                if whole {
                    let proto = self.config.protocol;
                    // The largest sequence id: its encoding is the longest.
                    super::each_fits(
                        events,
                        self.max_call_bytes,
                        "a thrift source reads in one frame",
                        |one| append_batch_call(proto, i32::MAX, one.iter().map(|(_, e)| e)).len(),
                    )?;
                }
                let (first, second) =
                    super::halves(&self.name, events, bytes, self.max_call_bytes)?;
                self.send(first, false)?;
                return self.send(second, false);
            }
            Ok(Ok(status)) => Ok(status),
            Err(e) => Err(e),
        };
        let result = super::answered(&self.counters, events.len(), "thrift", Status::Ok, status);
        if result.is_err() {
            // The stream may hold a late reply or half a frame: start over on a new one.
            self.counters.close_connection(&mut self.conn);
        }
        result
    }
}

impl Sink for ThriftSink {
    /// Connects (again, once `reset-connection-interval` has passed) before the runner takes a
    /// batch, as Flume's RPC sinks do: while the target is away the channel is left alone.
    fn ready(&mut self) -> anyhow::Result<()> {
        let held = self.conn.take();
        let (name, counters, target) = (&self.name, &self.counters, &self.config.target);
        let conn = super::keep_connected(
            name,
            counters,
            target,
            held,
            |c| (c.opened, c.peer),
            || self.open_connection(),
        )?;
        self.conn = Some(conn);
        Ok(())
    }

    fn deliver(&mut self, events: &[(u64, Event)]) -> anyhow::Result<()> {
        self.ready()?;
        self.send(events, true).with_context(|| {
            format!(
                "sink {}: sending to {}",
                self.name,
                self.config.target.address()
            )
        })
    }

    fn close(&mut self) -> anyhow::Result<()> {
        self.counters.close_connection(&mut self.conn);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpStream;

    use super::*;
    use crate::config::RpcTarget;
    use crate::sink::rpc_test_rig::{self, ServerSide, running};
    use crate::thrift_rpc::{Protocol, encode_frame, read_frame, serve};

    /// The server side of Thrift's compact protocol.
    struct Compact;

    impl ServerSide for Compact {
        type Conn = ();
        type Call = Vec<u8>;
        fn read_call(stream: &mut TcpStream) -> Option<Vec<u8>> {
            read_frame(stream, MAX_FRAME_BYTES).ok().flatten()
        }
        fn answer(&self, _: &mut (), message: Vec<u8>, ok: bool) -> (Vec<u8>, Vec<String>) {
            let mut bodies = Vec::new();
            let served = serve(Protocol::Compact, &message, |events, _| {
                bodies = events
                    .iter()
                    .map(|e| String::from_utf8_lossy(&e.body).into_owned())
                    .collect();
                if ok { Status::Ok } else { Status::Failed }
            })
            .unwrap();
            (encode_frame(&served.reply), bodies)
        }
    }

    fn sink(target: RpcTarget, counters: Arc<SinkCounters>) -> ThriftSink {
        let config = ThriftSinkConfig {
            target,
            protocol: Protocol::Compact,
        };
        ThriftSink::new("k1", config, running(), counters)
    }

    #[test]
    fn ok_delivers_and_failed_or_silence_fail_the_delivery() {
        rpc_test_rig::ok_delivers_and_failed_or_silence_fail_the_delivery(Compact, sink);
    }

    #[test]
    fn a_batch_over_one_calls_limit_goes_in_halves_and_a_lone_event_over_it_fails() {
        rpc_test_rig::a_batch_over_one_calls_limit_goes_in_halves_and_a_lone_event_over_it_fails(
            Compact,
            sink,
            |sink, two| {
                sink.max_call_bytes =
                    append_batch_call(Protocol::Compact, 1, two.iter().map(|(_, e)| e)).len();
                sink.max_call_bytes
            },
        );
    }

    #[test]
    fn reset_connection_interval_makes_a_new_connection() {
        rpc_test_rig::reset_connection_interval_makes_a_new_connection(Compact, sink);
    }

    #[test]
    fn nobody_listening_is_an_error_naming_the_target() {
        rpc_test_rig::nobody_listening_is_an_error_naming_the_target(sink);
    }

    #[test]
    fn a_stop_ends_a_connect_the_target_never_answers() {
        rpc_test_rig::a_stop_ends_a_connect_the_target_never_answers(|target, stop, counters| {
            ThriftSink::new(
                "k1",
                ThriftSinkConfig {
                    target,
                    protocol: Protocol::Compact,
                },
                stop,
                counters,
            )
        });
    }

    #[test]
    fn an_unreachable_target_leaves_the_channel_alone() {
        rpc_test_rig::an_unreachable_target_leaves_the_channel_alone(Compact, sink);
    }
}
