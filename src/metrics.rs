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
    value: Number,
}

/// A metric's value: a count, a ratio that Flume computes as a Java `double`, or a state that
/// Flume reports as a Java `boolean`.
#[derive(Clone, Copy)]
enum Number {
    Count(u64),
    Double(f64),
    Bool(bool),
}

impl Number {
    /// As Flume's JSON writes it: a count as its digits, a double as Java's
    /// `Double.toString` (`42.857142857142854`, `0.0`, `100.0`, `5.0E-4`), so that a
    /// scraper written against Flume parses the same text.
    fn flume(self) -> String {
        match self {
            Number::Count(n) => n.to_string(),
            Number::Double(x) => java_double(x),
            Number::Bool(b) => b.to_string(),
        }
    }

    fn prometheus(self) -> String {
        match self {
            Number::Count(n) => n.to_string(),
            Number::Double(x) => x.to_string(),
            Number::Bool(b) => u8::from(b).to_string(),
        }
    }
}

/// Java's `Double.toString` for a finite `x`: the shortest digits that read back as `x`, in
/// plain notation from 10^-3 up to 10^7 (always with a fractional part), else as `d.dddE±n`.
fn java_double(x: f64) -> String {
    let a = x.abs();
    if x == 0.0 || (1e-3..1e7).contains(&a) {
        let s = x.to_string();
        if s.contains('.') { s } else { format!("{s}.0") }
    } else {
        let s = format!("{x:e}");
        let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = if mantissa.contains('.') {
            mantissa.to_owned()
        } else {
            format!("{mantissa}.0")
        };
        format!("{mantissa}E{exponent}")
    }
}

fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

impl Registry {
    fn components(&self) -> Vec<(&'static str, String, Vec<Metric>)> {
        let m = |flume, prom, value| Metric {
            flume,
            prom,
            value: Number::Count(value),
        };
        let mut out = Vec::new();
        let timer = |flume, prom, timer: &AtomicU64| Metric {
            flume,
            prom,
            value: Number::Count(load(timer)),
        };
        for (name, c) in &self.sources {
            let mut v = vec![
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
                    "AppendReceivedCount",
                    "appends_received_total",
                    load(&c.appends_received),
                ),
                m(
                    "AppendAcceptedCount",
                    "appends_accepted_total",
                    load(&c.appends_accepted),
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
                m("EventReadFail", "read_failures_total", load(&c.read_fail)),
                m(
                    "GenericProcessingFail",
                    "generic_failures_total",
                    load(&c.generic_fail),
                ),
            ];
            let k = &c.kafka;
            if k.kept() {
                v.extend([
                    timer("KafkaEventGetTimer", "kafka_get_ms_total", &k.get_ms),
                    timer("KafkaCommitTimer", "kafka_commit_ms_total", &k.commit_ms),
                    timer("KafkaEmptyCount", "kafka_empty_polls_total", &k.empty),
                ]);
            }
            out.push(("SOURCE", name.clone(), v));
        }
        for ch in &self.channels {
            let c = ch.counters();
            let s = ch.stats();
            // As Flume's ChannelCounter: a double, not rounded (a backlog of 50 in a channel of
            // a million is 0.005%, not 0).
            let fill = if s.capacity == 0 {
                0.0
            } else {
                s.size as f64 * 100.0 / s.capacity as f64
            };
            let mut v = vec![
                m("ChannelSize", "size", s.size),
                m("ChannelCapacity", "capacity", s.capacity),
                Metric {
                    flume: "ChannelFillPercentage",
                    prom: "fill_percent",
                    value: Number::Double(fill),
                },
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
            let k = &c.kafka;
            if k.kept() {
                v.extend([
                    timer("KafkaEventGetTimer", "kafka_get_ms_total", &k.get_ms),
                    timer("KafkaEventSendTimer", "kafka_send_ms_total", &k.send_ms),
                    timer("KafkaCommitTimer", "kafka_commit_ms_total", &k.commit_ms),
                ]);
            }
            if s.on_disk {
                // Flume's FileChannelCounter. The channel is open whenever it is reported: one
                // that cannot open stops the agent's start. weir writes no separate backup
                // checkpoint (each checkpoint file has two slots, see wal-format.md), so
                // there is no backup write to fail.
                v.extend([
                    Metric {
                        flume: "Open",
                        prom: "open",
                        value: Number::Bool(true),
                    },
                    m(
                        "Unhealthy",
                        "unhealthy",
                        u64::from(c.unhealthy.load(Ordering::Relaxed)),
                    ),
                    m(
                        "EventPutErrorCount",
                        "put_errors_total",
                        load(&c.put_errors),
                    ),
                    m(
                        "EventTakeErrorCount",
                        "take_errors_total",
                        load(&c.take_errors),
                    ),
                    m(
                        "CheckpointWriteErrorCount",
                        "checkpoint_write_errors_total",
                        load(&c.checkpoint_errors),
                    ),
                    m(
                        "CheckpointBackupWriteErrorCount",
                        "checkpoint_backup_write_errors_total",
                        0,
                    ),
                ]);
            }
            out.push(("CHANNEL", ch.name().to_owned(), v));
        }
        for (name, c) in &self.sinks {
            let mut v = vec![
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
                m(
                    "ChannelReadFail",
                    "channel_read_failures_total",
                    load(&c.channel_read_fail),
                ),
            ];
            if c.kafka.kept() {
                v.push(timer(
                    "KafkaEventSendTimer",
                    "kafka_send_ms_total",
                    &c.kafka.send_ms,
                ));
            }
            // Flume's connection counters, where the sink holds a connection.
            if c.holds_connections.load(Ordering::Relaxed) {
                v.extend([
                    m(
                        "ConnectionCreatedCount",
                        "connections_created_total",
                        load(&c.connections_created),
                    ),
                    m(
                        "ConnectionClosedCount",
                        "connections_closed_total",
                        load(&c.connections_closed),
                    ),
                    m(
                        "ConnectionFailedCount",
                        "connections_failed_total",
                        load(&c.connections_failed),
                    ),
                ]);
            }
            out.push(("SINK", name.clone(), v));
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
                obj.insert(m.flume.into(), Value::String(m.value.flume()));
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
                    m.value.prometheus()
                );
            }
        }
        out
    }
}

/// Most connections served at once; one more is answered 503 and closed, so a pile of stalled
/// clients costs a bounded number of threads.
const MAX_CONNECTIONS: usize = 128;
/// A client that sends nothing for this long is dropped: a scrape is one small request, and
/// clients holding connections open without asking (audit 32: 32 of them turned every scrape
/// away for 10 s) let go of their slots soon.
const IDLE_TIMEOUT: Duration = Duration::from_secs(3);
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
            conn.respond(status, &message, keep_alive, &[])
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
///
/// As Flume's `HTTPMetricsServer`: `/metrics` in any case, with any method but TRACE and
/// OPTIONS (403), and `/` a page that links to it.
fn route(registry: &Registry, head: &Head) -> Result<(&'static str, String), (u16, String)> {
    let path = head.path.split('?').next().unwrap_or("");
    if head.method.eq_ignore_ascii_case("TRACE") || head.method.eq_ignore_ascii_case("OPTIONS") {
        return Err((403, format!("method {} is not served", head.method)));
    }
    let (render, content_type): (fn(&Registry) -> String, _) = match path {
        "/" => (|_: &Registry| INDEX_PAGE.to_owned(), "text/html"),
        p if p.eq_ignore_ascii_case("/metrics") => (Registry::flume_json, "application/json"),
        "/metrics/prometheus" => (Registry::prometheus, PROMETHEUS_TYPE),
        _ => {
            return Err((
                404,
                "not found: try /metrics or /metrics/prometheus".to_owned(),
            ));
        }
    };
    if head.body != BodyKind::Length(0) {
        return Err((413, "a metrics request takes no body".to_owned()));
    }
    Ok((content_type, render(registry)))
}

/// What `GET /` shows, as Flume's metrics server shows a page that links to the metrics.
const INDEX_PAGE: &str = "<html><body><a href='./metrics'>Metrics</a></body></html>\n";

pub fn start_time_ms() -> u64 {
    crate::event::now_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ChannelFillPercentage` is written as Java writes a double, as Flume's JSON has it.
    #[test]
    fn doubles_are_written_as_java_writes_them() {
        for (x, java) in [
            (0.0, "0.0"),
            (100.0, "100.0"),
            (300.0 / 7.0, "42.857142857142854"),
            (0.005, "0.005"),
            (1e-4, "1.0E-4"),
            (1.25e-4, "1.25E-4"),
            (12_345_678.0, "1.2345678E7"),
        ] {
            assert_eq!(java_double(x), java, "{x}");
        }
    }
}
