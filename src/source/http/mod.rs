//! The http source (Flume's HTTPSource with its JSONHandler, or the BlobHandler): a client POSTs
//! a JSON array of events (or, with the BlobHandler, any body, which is one event); the whole
//! request is one transaction, answered 200 only after it is committed to
//! every required channel. A bad body gets 400 with what is wrong and where, a body over
//! `maxBodyBytes` 413, a method other than POST 405, and a channel that refuses the events 503
//! with the channel's reason, so the client knows to retry.
//!
//! Each connection has its own thread, so concurrent requests reach the channel together and
//! share its group commit. [`crate::http_wire`] speaks the HTTP; `json` reads the body.

pub mod blob;
pub mod json;

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use openssl::ssl::SslAcceptor;

use super::{ChannelProcessor, Source, StopFlag, listen_tcp, serve_clients, stopping};
use crate::channel::ChannelError;
use crate::config::{HttpHandler, HttpSourceConfig};
use crate::http_wire::{self as wire, Conn, ReadError};

pub struct HttpSource {
    name: String,
    config: HttpSourceConfig,
    listener: Option<TcpListener>,
    /// With `ssl = true`.
    tls: Option<Arc<SslAcceptor>>,
}

impl HttpSource {
    pub fn new(name: &str, config: HttpSourceConfig) -> HttpSource {
        HttpSource {
            name: name.to_owned(),
            config,
            listener: None,
            tls: None,
        }
    }

    /// The address this source listens on, once started (tests and benchmarks).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref()?.local_addr().ok()
    }
}

impl Source for HttpSource {
    fn start(&mut self) -> anyhow::Result<()> {
        if let Some(tls) = &self.config.tls {
            let acceptor = crate::tls::acceptor(tls)
                .map_err(|e| anyhow::anyhow!("source {}: cannot set up TLS: {e:#}", self.name))?;
            self.tls = Some(Arc::new(acceptor));
        }
        let listener = listen_tcp(&self.name, &self.config.bind, self.config.port)?;
        tracing::info!(source = %self.name, addr = %listener.local_addr()?, tls = self.tls.is_some(), "http source listening");
        self.listener = Some(listener);
        Ok(())
    }

    fn run(self: Box<Self>, processor: ChannelProcessor, stop: StopFlag) {
        let Some(listener) = self.listener else {
            tracing::error!(source = %self.name, "http source run before start");
            return;
        };
        let (name, cfg, st) = (self.name.clone(), self.config.clone(), stop.clone());
        let limit = self.config.max_connections;
        let tls = self.tls.clone();
        let refusals = Refusals {
            source: self.name.clone(),
            limit,
            tls: self.tls.clone(),
            in_flight: Arc::new(AtomicUsize::new(0)),
            stop: stop.clone(),
        };
        serve_clients(
            &self.name,
            "http",
            listener,
            limit,
            &stop,
            |stream, peer| refusals.refuse(stream, peer),
            move |stream, peer| serve(&name, stream, peer, &cfg, tls.as_deref(), &processor, &st),
        );
    }
}

/// Refused clients answered on threads of their own at once, at most. Each thread holds its
/// client for up to the TLS handshake timeout or the linger after the reply, so a flood of
/// clients past `maxConnections` must not turn into a flood of threads.
const REFUSALS_AT_ONCE: usize = 4;

/// Answers clients past `maxConnections` with a 503 and `Retry-After`, so a well-behaved client
/// backs off and retries instead of treating a closed connection as a failure.
struct Refusals {
    source: String,
    limit: usize,
    tls: Option<Arc<SslAcceptor>>,
    in_flight: Arc<AtomicUsize>,
    stop: StopFlag,
}

impl Refusals {
    /// The answer goes out on a thread of its own: a TLS handshake, and the linger that lets
    /// the client read the reply before the close, could otherwise hold up the accepting
    /// thread. With [`REFUSALS_AT_ONCE`] such threads busy, a plain client is answered on the
    /// accepting thread without the linger (the reply fits in the socket's buffer), and a TLS
    /// client's connection is only closed.
    fn refuse(&self, stream: TcpStream, peer: SocketAddr) {
        let (source, limit) = (self.source.as_str(), self.limit);
        let Some(slot) = RefusalSlot::take(&self.in_flight) else {
            if self.tls.is_none()
                && let Ok(mut conn) = Conn::new(stream)
            {
                let _ = answer_busy(&mut conn, limit);
            }
            return;
        };
        let (tls, stop) = (self.tls.clone(), self.stop.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("http-refuse-{peer}"))
            .spawn(move || {
                let _slot = slot;
                let conn = match &tls {
                    None => Conn::new(stream),
                    Some(acceptor) => Conn::accept_tls(stream, acceptor, &stop),
                };
                if let Ok(mut conn) = conn
                    && answer_busy(&mut conn, limit).is_ok()
                {
                    conn.linger_close(&stop);
                }
            });
        // The closure, and the slot and stream in it, are dropped with the error.
        if let Err(e) = spawned {
            tracing::debug!(source, %peer, error = %e, "refused connection closed without a reply");
        }
    }
}

/// One of the [`REFUSALS_AT_ONCE`] threads, given back when dropped, also by a thread that
/// panicked.
struct RefusalSlot(Arc<AtomicUsize>);

impl RefusalSlot {
    fn take(in_flight: &Arc<AtomicUsize>) -> Option<RefusalSlot> {
        if in_flight.fetch_add(1, Ordering::SeqCst) >= REFUSALS_AT_ONCE {
            in_flight.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(RefusalSlot(in_flight.clone()))
    }
}

impl Drop for RefusalSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn answer_busy(conn: &mut Conn, limit: usize) -> std::io::Result<()> {
    conn.respond(
        503,
        &format!("too many connections (maxConnections = {limit}); retry later"),
        false,
        &[("Retry-After", "1")],
    )
}

/// Serves one client's requests until it leaves, a request leaves the stream unusable, or the
/// agent stops.
fn serve(
    name: &str,
    stream: TcpStream,
    peer: SocketAddr,
    cfg: &HttpSourceConfig,
    tls: Option<&SslAcceptor>,
    processor: &ChannelProcessor,
    stop: &StopFlag,
) {
    let counters = processor.counters();
    counters.open_connections.fetch_add(1, Ordering::Relaxed);
    let conn = match tls {
        None => Conn::new(stream),
        Some(acceptor) => Conn::accept_tls(stream, acceptor, stop),
    };
    match conn {
        Ok(mut conn) => {
            while serve_one(name, &mut conn, peer, cfg, processor, stop) {}
            conn.linger_close(stop);
        }
        // A client that fails the TLS handshake is set up wrongly (or speaks plain HTTP);
        // one that connected and left without a byte is a probe.
        Err(e) if tls.is_some() && e.kind() != ErrorKind::UnexpectedEof => {
            tracing::warn!(source = name, %peer, error = %e, "cannot set up the connection")
        }
        Err(e) => tracing::info!(source = name, %peer, error = %e, "cannot set up the connection"),
    }
    counters.open_connections.fetch_sub(1, Ordering::Relaxed);
}

/// Reads, handles and answers one request; true if the connection may carry another.
fn serve_one(
    name: &str,
    conn: &mut Conn,
    peer: SocketAddr,
    cfg: &HttpSourceConfig,
    processor: &ChannelProcessor,
    stop: &StopFlag,
) -> bool {
    let counters = processor.counters();
    let head = conn.read_head(stop).and_then(|head| {
        if head.method != "POST" {
            let what = match cfg.handler {
                HttpHandler::Json => "a JSON array of events",
                HttpHandler::Blob { .. } => "the event's body",
            };
            return Err(ReadError::Refused(
                405,
                format!("method {} not allowed: POST {what}", head.method),
            ));
        }
        if cfg.handler == HttpHandler::Json
            && let Some(cs) = head.charset.as_deref()
            && cs != "utf-8"
            && cs != "utf8"
        {
            return Err(ReadError::Refused(
                415,
                format!("charset {cs} is not supported: send the JSON as UTF-8"),
            ));
        }
        Ok(head)
    });
    let head = match head {
        Ok(h) => h,
        Err(e) => return fail(name, conn, peer, e, counters),
    };
    let body = match conn.read_body(&head, cfg.max_body_bytes, stop) {
        Ok(b) => b,
        // Name the key that sets the limit, so the client's operator knows what to raise.
        Err(ReadError::Refused(413, m)) => {
            let key = match cfg.handler {
                HttpHandler::Json => "maxBodyBytes",
                HttpHandler::Blob { .. } => "handler.maxBlobLength",
            };
            let e = ReadError::Refused(413, format!("{m} ({key})"));
            return fail(name, conn, peer, e, counters);
        }
        Err(e) => return fail(name, conn, peer, e, counters),
    };
    let parsed = match cfg.handler {
        HttpHandler::Json => json::parse_events(&body),
        HttpHandler::Blob { .. } => Ok(vec![blob::event(
            &head.path,
            head.content_type.as_deref(),
            body,
        )]),
    };
    let (status, message) = match parsed {
        Err(e) => {
            counters.read_fail.fetch_add(1, Ordering::Relaxed);
            tracing::info!(source = name, %peer, path = %head.path, error = %e, "bad request body");
            (400, e.0)
        }
        // Nothing to store: no transaction needed.
        Ok(events) if events.is_empty() => (200, String::new()),
        Ok(events) => match processor.process(events) {
            Ok(()) => (200, String::new()),
            Err(e) => {
                tracing::debug!(source = name, %peer, error = %e, "events refused");
                (refusal_status(&e), e.to_string())
            }
        },
    };
    let extra: &[(&str, &str)] = if status == 503 {
        &[("Retry-After", "1")]
    } else {
        &[]
    };
    let keep_alive = head.keep_alive && !stopping(stop);
    if let Err(e) = conn.respond(status, &message, keep_alive, extra) {
        tracing::info!(source = name, %peer, status, error = %e, "client went away before its reply");
        return false;
    }
    keep_alive
}

/// 503 when retrying later can succeed (the channel is full or its storage failed); 413 when
/// the request holds more events than one transaction of the channel may, or an event the
/// channel can never store.
fn refusal_status(e: &ChannelError) -> u16 {
    match e {
        ChannelError::TransactionTooLarge { .. } | ChannelError::Unstorable { .. } => 413,
        ChannelError::Full { .. }
        | ChannelError::Storage { .. }
        | ChannelError::KafkaUnavailable { .. } => 503,
    }
}

/// Answers (where the client can still hear it) a request that could not be read; the
/// connection then ends.
fn fail(
    name: &str,
    conn: &mut Conn,
    peer: SocketAddr,
    e: ReadError,
    counters: &super::SourceCounters,
) -> bool {
    let reply = match e {
        ReadError::Closed | ReadError::Stopping { mid_request: false } => None,
        ReadError::Stopping { mid_request: true } => {
            Some((503, "the agent is stopping; retry later".to_owned()))
        }
        ReadError::TimedOut => {
            tracing::info!(source = name, %peer, "request incomplete after the idle timeout; closing");
            Some((
                408,
                format!(
                    "no data for {} s in the middle of a request, or a request head not whole that long after its first byte",
                    wire::IDLE_TIMEOUT.as_secs()
                ),
            ))
        }
        ReadError::Io(e) => {
            tracing::info!(source = name, %peer, error = %e, "connection failed mid-request");
            None
        }
        ReadError::Refused(status, message) => {
            counters.read_fail.fetch_add(1, Ordering::Relaxed);
            tracing::info!(source = name, %peer, status, reason = %message, "request refused");
            Some((status, message))
        }
    };
    if let Some((status, message)) = reply {
        let allow: &[(&str, &str)] = if status == 405 {
            &[("Allow", "POST")]
        } else {
            &[]
        };
        let _ = conn.respond(status, &message, false, allow);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_threads_are_bounded_and_their_slots_come_back() {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let mut slots: Vec<RefusalSlot> = (0..REFUSALS_AT_ONCE)
            .map(|_| RefusalSlot::take(&in_flight).unwrap())
            .collect();
        assert!(RefusalSlot::take(&in_flight).is_none());
        assert_eq!(in_flight.load(Ordering::SeqCst), REFUSALS_AT_ONCE);
        // A thread that panics gives its slot back too.
        let slot = slots.pop().unwrap();
        let _ = std::thread::spawn(move || {
            let _slot = slot;
            panic!("refusal thread failed");
        })
        .join();
        assert_eq!(in_flight.load(Ordering::SeqCst), REFUSALS_AT_ONCE - 1);
        let again = RefusalSlot::take(&in_flight);
        assert!(again.is_some());
        assert!(RefusalSlot::take(&in_flight).is_none());
        drop((slots, again));
        assert_eq!(in_flight.load(Ordering::SeqCst), 0);
    }
}
