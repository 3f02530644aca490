//! The avro sink: the upstream end of a chain of agents (Flume's AvroSink). Each batch is one
//! `appendBatch` call over Avro RPC (`avro_rpc`) to a Flume or weir avro source; the take is
//! committed only when the source answered `OK`, which it does once the batch is committed to
//! its channel. Anything else — `FAILED`, an Avro error, no reply within `request-timeout`, a
//! broken connection — fails the delivery, so the runner rolls the batch back and backs off,
//! and the connection is dropped and made anew for the next try. Delivery is at-least-once: a
//! reply lost after the downstream commit sends the batch again. Events sent and events
//! answered `OK` count as `EventSendCount` and `EventAckCount` in the sink's metrics.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};

use super::{Sink, SinkCounters};
use crate::avro_rpc::{
    Answer, FrameError, MAX_FRAME_BYTES, Requestor, Status, Transport, append_batch_call,
};
use crate::config::AvroSinkConfig;
use crate::event::Event;
use crate::rpc_connection::{self, Security};
use crate::stop::StopFlag;

/// Bytes kept free in a call for the handshake sent with a connection's first call (the
/// protocol's JSON and two MD5 hashes: a few KiB).
const HANDSHAKE_ROOM: usize = 64 * 1024;

pub struct AvroSink {
    name: String,
    config: AvroSinkConfig,
    stop: StopFlag,
    counters: Arc<SinkCounters>,
    conn: Option<Connection>,
    /// From the config's TLS settings; an error (unlikely: the stores were read with the
    /// config) fails every delivery with its message.
    security: Result<Security, String>,
    /// The most bytes one call may take: what weir's avro source reads, less room for the
    /// handshake (tests lower it).
    max_call_bytes: usize,
}

struct Connection {
    transport: Transport,
    requestor: Requestor,
    serial: i32,
    opened: Instant,
    peer: SocketAddr,
}

impl AvroSink {
    pub fn new(
        name: &str,
        config: AvroSinkConfig,
        stop: StopFlag,
        counters: Arc<SinkCounters>,
    ) -> AvroSink {
        counters
            .holds_connections
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let security = Security::client(config.target.tls.as_ref(), &config.target.hostname)
            .map_err(|e| format!("{e:#}"));
        AvroSink {
            name: name.to_owned(),
            config,
            stop,
            counters,
            conn: None,
            security,
            // Room for the handshake that goes with the first call of a connection.
            max_call_bytes: MAX_FRAME_BYTES - HANDSHAKE_ROOM,
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
        let transport = Transport::new(
            stream,
            security,
            self.config.deflate_level,
            self.stop.clone(),
        )
        .with_context(|| format!("cannot set up the connection to {addr}"))?;
        tracing::info!(sink = %self.name, peer = %addr, "connected");
        Ok(Connection {
            transport,
            requestor: Requestor::new(),
            serial: 0,
            opened: Instant::now(),
            peer: addr,
        })
    }

    /// Sends one call and reads its status, re-sending it once if the server asked for the
    /// client's protocol (a handshake NONE).
    fn call(&mut self, call: &[u8]) -> anyhow::Result<Status> {
        let timeout = self.config.target.request_timeout;
        // Connected by `ready`, which every delivery goes through first.
        let Some(conn) = self.conn.as_mut() else {
            bail!("not connected")
        };
        for _ in 0..2 {
            conn.serial = conn.serial.wrapping_add(1);
            let request = conn.requestor.request(call);
            conn.transport
                .send(conn.serial, &request)
                .with_context(|| format!("sending to {}", conn.peer))?;
            let frame = match conn.transport.receive(Some(timeout)) {
                Ok(Some(f)) => f,
                Ok(None) => bail!("{} closed the connection without a reply", conn.peer),
                Err(FrameError::Io(e)) if e.kind() == ErrorKind::TimedOut => bail!(
                    "no reply from {} within request-timeout ({} ms)",
                    conn.peer,
                    timeout.as_millis()
                ),
                Err(e) => bail!("reading the reply from {}: {e}", conn.peer),
            };
            if frame.serial != conn.serial {
                bail!(
                    "{} replied to call {} while call {} was waiting",
                    conn.peer,
                    frame.serial,
                    conn.serial
                );
            }
            match conn
                .requestor
                .read_reply(&frame.payload)
                .map_err(|e| anyhow::anyhow!("{}: {e}", conn.peer))?
            {
                Answer::Status(s) => return Ok(s),
                Answer::Resend => continue,
            }
        }
        bail!(
            "{} does not accept weir's AvroSourceProtocol (handshake NONE twice)",
            conn.peer
        )
    }

    /// Sends `events` as one `appendBatch` call, or, when they take more bytes than a call may
    /// (`max_call_bytes`), as the calls of each half, halved again as needed. The downstream
    /// source commits each call on its own, so a failure after the first call sends that call's
    /// events again on the retry: at-least-once, as for a lost reply. Refusing the batch instead
    /// would fail it on every retry: the sink would stop for good over `batch-size`. `whole`:
    /// `events` is the whole batch, whose events are then checked to fit one by one.
    fn send(&mut self, events: &[(u64, Event)], whole: bool) -> anyhow::Result<()> {
        const READS: &str = "an avro source reads in one call";
        let call = append_batch_call(events.iter().map(|(_, e)| e));
        if call.len() > self.max_call_bytes {
            if whole {
                super::each_fits(events, self.max_call_bytes, READS, |one| {
                    append_batch_call(one.iter().map(|(_, e)| e)).len()
                })?;
            }
            let (bytes, limit) = (call.len(), self.max_call_bytes);
            drop(call);
            let (first, second) = super::halves(&self.name, events, bytes, limit)?;
            self.send(first, false)?;
            return self.send(second, false);
        }
        let answer = self.call(&call);
        let result = super::answered(&self.counters, events.len(), "avro", Status::Ok, answer);
        if result.is_err() {
            // The stream may hold a late reply or half a frame: start over on a new one.
            self.counters.close_connection(&mut self.conn);
        }
        result
    }
}

impl Sink for AvroSink {
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
    use crate::avro_rpc::{Frame, Responder, ServerConnection, encode_frame, read_frame};
    use crate::config::RpcTarget;
    use crate::sink::rpc_test_rig::{self, ServerSide, running};

    impl ServerSide for Responder {
        type Conn = ServerConnection;
        type Call = Frame;
        fn read_call(stream: &mut TcpStream) -> Option<Frame> {
            read_frame(stream).ok().flatten()
        }
        fn answer(
            &self,
            conn: &mut ServerConnection,
            frame: Frame,
            ok: bool,
        ) -> (Vec<u8>, Vec<String>) {
            let mut bodies = Vec::new();
            let reply = self
                .respond(conn, &frame.payload, |call| {
                    bodies = call
                        .into_events()
                        .iter()
                        .map(|e| String::from_utf8_lossy(&e.body).into_owned())
                        .collect();
                    if ok { Status::Ok } else { Status::Failed }
                })
                .unwrap();
            (encode_frame(frame.serial, &reply.payload), bodies)
        }
    }

    fn sink(target: RpcTarget, counters: Arc<SinkCounters>) -> AvroSink {
        let config = AvroSinkConfig {
            target,
            deflate_level: None,
        };
        AvroSink::new("k1", config, running(), counters)
    }

    #[test]
    fn ok_delivers_and_failed_or_silence_fail_the_delivery() {
        rpc_test_rig::ok_delivers_and_failed_or_silence_fail_the_delivery(Responder::new(), sink);
    }

    #[test]
    fn a_batch_over_one_calls_limit_goes_in_halves_and_a_lone_event_over_it_fails() {
        rpc_test_rig::a_batch_over_one_calls_limit_goes_in_halves_and_a_lone_event_over_it_fails(
            Responder::new(),
            sink,
            |sink, two| {
                sink.max_call_bytes = append_batch_call(two.iter().map(|(_, e)| e)).len();
                sink.max_call_bytes
            },
        );
    }

    #[test]
    fn reset_connection_interval_makes_a_new_connection() {
        rpc_test_rig::reset_connection_interval_makes_a_new_connection(Responder::new(), sink);
    }

    #[test]
    fn nobody_listening_is_an_error_naming_the_target() {
        rpc_test_rig::nobody_listening_is_an_error_naming_the_target(sink);
    }

    #[test]
    fn a_stop_ends_a_connect_the_target_never_answers() {
        rpc_test_rig::a_stop_ends_a_connect_the_target_never_answers(|target, stop, counters| {
            AvroSink::new(
                "k1",
                AvroSinkConfig {
                    target,
                    deflate_level: None,
                },
                stop,
                counters,
            )
        });
    }

    #[test]
    fn an_unreachable_target_leaves_the_channel_alone() {
        rpc_test_rig::an_unreachable_target_leaves_the_channel_alone(Responder::new(), sink);
    }
}
