//! Component counters served over HTTP: `GET /metrics` in Flume's JSON layout (every value a
//! string, components named `SOURCE.r1`, `CHANNEL.c1`, `SINK.k1`) and `GET /metrics/prometheus`
//! in the Prometheus text format. [`crate::http_wire`] speaks the HTTP.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Map, Value};

use crate::channel::Channel;
use crate::http_wire::{BodyKind, Conn, Head, ReadError};
use crate::sink::SinkCounters;
use crate::source::{SourceCounters, serve_clients};
use crate::stop::{StopFlag, stopping};

/// Everything the metrics endpoint reports.
#[derive(Default)]
pub struct Registry {
    pub sources: Vec<(String, Arc<SourceCounters>)>,
    pub channels: Vec<Arc<dyn Channel>>,
    pub sinks: Vec<(String, Arc<SinkCounters>)>,
    pub start_ms: u64,
}

/// One metric: Flume's name, a Prometheus name, and the value.
struct Metric {
    flume: &'static str,
    prom: &'static str,
    value: u64,
}

fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

impl Registry {
    fn components(&self) -> Vec<(&'static str, String, Vec<Metric>)> {
        let m = |flume, prom, value| Metric { flume, prom, value };
        let mut out = Vec::new();
        for (name, c) in &self.sources {
            out.push((
                "SOURCE",
                name.clone(),
                vec![
                    m(
                        "EventReceivedCount",
                        "events_received_total",
                        load(&c.received),
                    ),
                    m(
                        "EventAcceptedCount",
                        "events_accepted_total",
                        load(&c.accepted),
                    ),
                    m(
                        "AppendBatchReceivedCount",
                        "batches_received_total",
                        load(&c.batches_received),
                    ),
                    m(
                        "AppendBatchAcceptedCount",
                        "batches_accepted_total",
                        load(&c.batches_accepted),
                    ),
                    m(
                        "OpenConnectionCount",
                        "open_connections",
                        load(&c.open_connections),
                    ),
                    m(
                        "ChannelWriteFail",
                        "channel_write_failures_total",
                        load(&c.channel_write_fail),
                    ),
                    m("ReadFail", "read_failures_total", load(&c.read_fail)),
                ],
            ));
        }
        for ch in &self.channels {
            let c = ch.counters();
            let s = ch.stats();
            let fill = (s.size * 100).checked_div(s.capacity).unwrap_or(0);
            let mut v = vec![
                m("ChannelSize", "size", s.size),
                m("ChannelCapacity", "capacity", s.capacity),
                m("ChannelFillPercentage", "fill_percent", fill),
                m(
                    "EventPutAttemptCount",
                    "put_attempts_total",
                    load(&c.put_attempt),
                ),
                m("EventPutSuccessCount", "puts_total", load(&c.put_success)),
                m(
                    "EventTakeAttemptCount",
                    "take_attempts_total",
                    load(&c.take_attempt),
                ),
                m(
                    "EventTakeSuccessCount",
                    "takes_total",
                    load(&c.take_success),
                ),
                m("RollbackCount", "rollbacks_total", load(&c.rollbacks)),
                m("ChannelFullCount", "full_total", load(&c.full)),
                m("ConsumerLag", "consumer_lag", s.size),
            ];
            if let Some(b) = s.log_bytes {
                v.push(m("LogBytes", "log_bytes", b));
            }
            if let Some(b) = s.disk_bytes {
                v.push(m("DiskBytes", "disk_bytes", b));
            }
            out.push(("CHANNEL", ch.name().to_owned(), v));
        }
        for (name, c) in &self.sinks {
            out.push((
                "SINK",
                name.clone(),
                vec![
                    m(
                        "EventDrainAttemptCount",
                        "drain_attempts_total",
                        load(&c.drain_attempt),
                    ),
                    m(
                        "EventDrainSuccessCount",
                        "drained_total",
                        load(&c.drain_success),
                    ),
                    m(
                        "BatchCompleteCount",
                        "batches_complete_total",
                        load(&c.batch_complete),
                    ),
                    m(
                        "BatchUnderflowCount",
                        "batches_underflow_total",
                        load(&c.batch_underflow),
                    ),
                    m(
                        "BatchEmptyCount",
                        "batches_empty_total",
                        load(&c.batch_empty),
                    ),
                    m("EventWriteFail", "failures_total", load(&c.failures)),
                    m("RollbackCount", "rollbacks_total", load(&c.rollbacks)),
                    m("EventSendCount", "records_sent_total", load(&c.sent)),
                    m("EventAckCount", "records_acked_total", load(&c.acked)),
                    m(
                        "UnsendableEventCount",
                        "records_unsendable_total",
                        load(&c.unsendable),
                    ),
                ],
            ));
        }
        out
    }

    /// Flume's JSON: `{"CHANNEL.c1": {"ChannelSize": "3", …}, …}`.
    pub fn flume_json(&self) -> String {
        let mut root = Map::new();
        for (kind, name, metrics) in self.components() {
            let mut obj = Map::new();
            obj.insert("Type".into(), Value::String(kind.into()));
            obj.insert("StartTime".into(), Value::String(self.start_ms.to_string()));
            obj.insert("StopTime".into(), Value::String("0".into()));
            for m in metrics {
                obj.insert(m.flume.into(), Value::String(m.value.to_string()));
            }
            if kind == "SINK"
                && let Some((_, c)) = self.sinks.iter().find(|(n, _)| *n == name)
            {
                let (last, at) = c.last_error.lock().clone().unwrap_or_default();
                obj.insert("LastError".into(), Value::String(last));
                obj.insert("LastErrorTime".into(), Value::String(at.to_string()));
            }
            root.insert(format!("{kind}.{name}"), Value::Object(obj));
        }
        Value::Object(root).to_string()
    }

    /// Prometheus text exposition: `weir_channel_size{name="c1"} 3`.
    pub fn prometheus(&self) -> String {
        let mut out = String::new();
        for (kind, name, metrics) in self.components() {
            let kind = kind.to_ascii_lowercase();
            for m in metrics {
                let _ = writeln!(
                    out,
                    "weir_{kind}_{}{{name=\"{}\"}} {}",
                    m.prom,
                    name.replace('"', "'"),
                    m.value
                );
            }
        }
        out
    }
}

/// Most connections served at once; one more is answered 503 and closed, so a pile of stalled
/// clients costs a bounded number of threads.
const MAX_CONNECTIONS: usize = 32;
/// A client that sends nothing for this long is dropped: a scrape is one small request.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
const PROMETHEUS_TYPE: &str = "text/plain; version=0.0.4";

/// Serves the registry on `addr` until `stop` is set: `GET /metrics` and
/// `GET /metrics/prometheus`. Each connection has its own thread (at most
/// [`MAX_CONNECTIONS`]), so a slow or stalled client cannot hold up another scrape. A request
/// body is never read: requests carry none, and one that announces one is refused.
pub fn serve(
    registry: Arc<Registry>,
    addr: &str,
    stop: StopFlag,
) -> anyhow::Result<JoinHandle<()>> {
    let listener =
        TcpListener::bind(addr).with_context(|| format!("metrics: cannot listen on {addr}"))?;
    listener
        .set_nonblocking(true)
        .with_context(|| format!("metrics: cannot set up the listener on {addr}"))?;
    tracing::info!(%addr, "metrics at /metrics (Flume JSON) and /metrics/prometheus");
    let handle = std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || accept_loop(listener, registry, stop))?;
    Ok(handle)
}

fn accept_loop(listener: TcpListener, registry: Arc<Registry>, stop: StopFlag) {
    // Each connection notices the stop flag within a read poll; the loop joins them, so nothing
    // holds the registry (and through it the channels) once this thread has ended.
    let st = stop.clone();
    serve_clients(
        "metrics",
        "metrics",
        listener,
        MAX_CONNECTIONS,
        &stop,
        |stream, _| {
            if let Ok(mut conn) = Conn::with_idle_timeout(stream, IDLE_TIMEOUT) {
                let _ = conn.respond(
                    503,
                    &format!(
                        "too many metrics connections (at most {MAX_CONNECTIONS}); retry later"
                    ),
                    false,
                    &[("Retry-After", "1")],
                );
            }
        },
        move |stream, peer| serve_connection(&registry, stream, peer, &st),
    );
}

/// Answers one client's requests until it leaves, sends something unusable, or the agent stops.
fn serve_connection(registry: &Registry, stream: TcpStream, peer: SocketAddr, stop: &StopFlag) {
    match Conn::with_idle_timeout(stream, IDLE_TIMEOUT) {
        Ok(mut conn) => {
            while serve_one(registry, &mut conn, peer, stop) {}
            conn.linger_close(stop);
        }
        Err(e) => tracing::info!(%peer, error = %e, "metrics: cannot set up the connection"),
    }
}

/// Reads and answers one request; true if the connection may carry another.
fn serve_one(registry: &Registry, conn: &mut Conn, peer: SocketAddr, stop: &StopFlag) -> bool {
    let head = match conn.read_head(stop) {
        Ok(h) => h,
        Err(e) => {
            let reply = match e {
                ReadError::Closed | ReadError::Stopping { mid_request: false } => None,
                ReadError::Stopping { mid_request: true } => {
                    Some((503, "the agent is stopping".to_owned()))
                }
                ReadError::TimedOut => {
                    tracing::info!(%peer, "metrics: request incomplete after the idle timeout; closing");
                    Some((
                        408,
                        format!(
                            "no data for {} s in the middle of a request, or a request head not whole that long after its first byte",
                            IDLE_TIMEOUT.as_secs()
                        ),
                    ))
                }
                ReadError::Io(e) => {
                    tracing::debug!(%peer, error = %e, "metrics: connection failed mid-request");
                    None
                }
                ReadError::Refused(status, message) => {
                    tracing::info!(%peer, status, reason = %message, "metrics: request refused");
                    Some((status, message))
                }
            };
            if let Some((status, message)) = reply {
                let _ = conn.respond(status, &message, false, &[]);
            }
            return false;
        }
    };
    let reply = route(registry, &head);
    // An unread body leaves the stream unusable for a next request.
    let keep_alive = head.keep_alive && head.body == BodyKind::Length(0) && !stopping(stop);
    let sent = match reply {
        Ok((content_type, body)) => {
            conn.respond_with(200, content_type, body.as_bytes(), keep_alive, &[])
        }
        Err((status, message)) => {
            tracing::debug!(%peer, method = %head.method, path = %head.path, status, "metrics: request refused");
            let allow: &[(&str, &str)] = if status == 405 {
                &[("Allow", "GET")]
            } else {
                &[]
            };
            conn.respond(status, &message, keep_alive, allow)
        }
    };
    if let Err(e) = sent {
        tracing::debug!(%peer, error = %e, "metrics: client went away before its reply");
        return false;
    }
    keep_alive
}

/// The content type and body a request gets, or the status and reason it is refused with. A
/// request body is refused before anything of it is read, whatever length it declares.
fn route(registry: &Registry, head: &Head) -> Result<(&'static str, String), (u16, String)> {
    let path = head.path.split('?').next().unwrap_or("");
    let (render, content_type): (fn(&Registry) -> String, _) = match path {
        "/metrics" => (Registry::flume_json, "application/json"),
        "/metrics/prometheus" => (Registry::prometheus, PROMETHEUS_TYPE),
        _ => {
            return Err((
                404,
                "not found: try /metrics or /metrics/prometheus".to_owned(),
            ));
        }
    };
    if head.method != "GET" {
        return Err((
            405,
            format!(
                "method {} not allowed: metrics are read with GET",
                head.method
            ),
        ));
    }
    if head.body != BodyKind::Length(0) {
        return Err((413, "a metrics request takes no body".to_owned()));
    }
    Ok((content_type, render(registry)))
}

pub fn start_time_ms() -> u64 {
    crate::event::now_millis()
}
