//! Component counters served over HTTP: `GET /metrics` in Flume's JSON layout (every value a
//! string, components named `SOURCE.r1`, `CHANNEL.c1`, `SINK.k1`) and `GET /metrics/prometheus`
//! in the Prometheus text format.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::channel::Channel;
use crate::sink::SinkCounters;
use crate::source::{SourceCounters, StopFlag, stopping};

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

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
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
                let last = c.last_error.lock().clone().unwrap_or_default();
                obj.insert("LastError".into(), Value::String(last));
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

/// Serves the registry on `addr` until `stop` is set.
pub fn serve(
    registry: Arc<Registry>,
    addr: &str,
    stop: StopFlag,
) -> anyhow::Result<JoinHandle<()>> {
    let server = tiny_http::Server::http(addr)
        .map_err(|e| anyhow::anyhow!("metrics: cannot listen on {addr}: {e}"))?;
    tracing::info!(%addr, "metrics at /metrics (Flume JSON) and /metrics/prometheus");
    let handle = std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            while !stopping(&stop) {
                let req = match server.recv_timeout(Duration::from_millis(100)) {
                    Ok(Some(r)) => r,
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "metrics: receive failed");
                        continue;
                    }
                };
                let path = req.url().split('?').next().unwrap_or("").to_owned();
                let (status, body, ctype) = match (req.method(), path.as_str()) {
                    (tiny_http::Method::Get, "/metrics") => {
                        (200, registry.flume_json(), "application/json")
                    }
                    (tiny_http::Method::Get, "/metrics/prometheus") => {
                        (200, registry.prometheus(), "text/plain; version=0.0.4")
                    }
                    _ => (
                        404,
                        "not found: try /metrics or /metrics/prometheus\n".to_owned(),
                        "text/plain",
                    ),
                };
                let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], ctype.as_bytes());
                let mut resp = tiny_http::Response::from_string(body).with_status_code(status);
                if let Ok(h) = header {
                    resp = resp.with_header(h);
                }
                if let Err(e) = req.respond(resp) {
                    tracing::debug!(error = %e, "metrics: client went away");
                }
            }
        })?;
    Ok(handle)
}

pub fn start_time_ms() -> u64 {
    now_ms()
}
