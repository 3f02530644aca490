//! The http sink (Flume's HttpSink): each event's body is POSTed to `endpoint`, one request per
//! event, with the configured Content-Type and Accept and without the event's headers. The
//! response's status decides, through `rollback.CODE` and `backoff.CODE` (exact code over class
//! over default, see [`StatusRule`](crate::config::StatusRule)), whether the event is done and
//! whether the sink backs off.
//!
//! Flume takes one event per transaction; weir's runner takes a batch, which is committed or
//! rolled back whole. The sink walks the batch in order. When an event must be rolled back, or
//! the sink must back off, it stops there and fails the delivery, so the runner rolls the whole
//! take back and backs off — but it remembers which events at the head of that take were
//! already done (answered with a status that commits them, or skipped as empty). Rolled-back
//! events return to the head of the channel in order, so the next take of this sink starts with
//! them: those are recognised (same channel offset, same event) and not sent again. If another
//! taker got them, or the agent stopped in between, they are sent again: at-least-once, never
//! lost.
//!
//! Cases, as in Flume's `HttpSink.process`:
//! - no response (connect failure, timeout, broken connection, unreadable response): the event
//!   is rolled back and the sink backs off;
//! - an event with an empty body: consumed without a request;
//! - rollback and no backoff: sent again at once (Flume rolls back and its next `process`
//!   takes the same event);
//! - committed with a status outside 2XX (e.g. `rollback.4XX = false`): the event is dropped,
//!   counted as unsendable (`UnsendableEventCount`) and logged with its status and the
//!   endpoint, rate-limited.
//!
//! Connections are kept alive and reused between requests (the client's pool); a response body
//! is read (up to [`DRAIN_LIMIT`]) and discarded so the connection can be reused.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::bail;
use ureq::Agent;

use super::{Sink, SinkCounters};
use crate::config::HttpSinkConfig;
use crate::event::Event;
use crate::stop::{StopFlag, stopping};

/// The most of a response body read to keep its connection reusable; past it the connection is
/// closed instead.
const DRAIN_LIMIT: u64 = 1 << 20;

/// At most this many dropped events are logged one by one per [`DROP_LOG_WINDOW`]; the rest
/// are summed up in the next line logged.
const DROP_LOGS_PER_WINDOW: u32 = 10;
const DROP_LOG_WINDOW: Duration = Duration::from_secs(10);

pub struct HttpSink {
    name: String,
    config: HttpSinkConfig,
    agent: Agent,
    stop: StopFlag,
    counters: Arc<SinkCounters>,
    /// The events at the head of the last failed delivery that were already done, to be
    /// skipped when the same events come again.
    done: Vec<(u64, Event)>,
    drops: DropLog,
}

/// What one request came to.
enum Outcome {
    Status(u16),
    /// No usable response; the message says why.
    Failed(String),
}

impl HttpSink {
    pub fn new(
        name: &str,
        config: HttpSinkConfig,
        stop: StopFlag,
        counters: Arc<SinkCounters>,
    ) -> HttpSink {
        let agent = client(&config);
        HttpSink {
            name: name.to_owned(),
            config,
            agent,
            stop,
            counters,
            done: Vec::new(),
            drops: DropLog::default(),
        }
    }

    /// POSTs one body and reads the status.
    fn post(&self, body: &[u8]) -> Outcome {
        let result = self
            .agent
            .post(&self.config.endpoint)
            .header("Content-Type", &self.config.content_type)
            .header("Accept", &self.config.accept)
            .send(body);
        let mut response = match result {
            Ok(r) => r,
            Err(ureq::Error::Timeout(phase)) => {
                let limit = match phase {
                    ureq::Timeout::Resolve | ureq::Timeout::Connect => {
                        format!(
                            "connectTimeout ({} ms)",
                            self.config.connect_timeout.as_millis()
                        )
                    }
                    _ => format!(
                        "requestTimeout ({} ms)",
                        self.config.request_timeout.as_millis()
                    ),
                };
                return Outcome::Failed(format!("timed out ({phase}) after {limit}"));
            }
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let status = response.status().as_u16();
        // Read what the server sent so the connection goes back to the pool; a body that cannot
        // be read only costs the connection, the status is what counts.
        let drained = response
            .body_mut()
            .with_config()
            .limit(DRAIN_LIMIT)
            .reader()
            .read_to_end(&mut Vec::new());
        if let Err(e) = drained {
            tracing::debug!(sink = %self.name, endpoint = %self.config.endpoint, status, error = %e, "response body not read; its connection is closed");
        }
        Outcome::Status(status)
    }

    /// Fails the delivery at event `index`; the events before it are done.
    fn stop_at(
        &mut self,
        events: &[(u64, Event)],
        index: usize,
        why: String,
    ) -> anyhow::Result<()> {
        self.done = events[..index].to_vec();
        bail!("sink {}: {why}", self.name)
    }
}

impl Sink for HttpSink {
    fn deliver(&mut self, events: &[(u64, Event)]) -> anyhow::Result<()> {
        // The head of the batch that a failed delivery already did, come back after the
        // rollback.
        let skip = self
            .done
            .iter()
            .zip(events)
            .take_while(|(done, now)| done == now)
            .count();
        if skip < self.done.len() {
            tracing::debug!(sink = %self.name, forgotten = self.done.len() - skip, "events done before a rollback were not taken back by this sink");
        }
        self.done.clear();
        let endpoint = self.config.endpoint.clone();
        for (i, (_, event)) in events.iter().enumerate().skip(skip) {
            if event.body.is_empty() {
                // As Flume: an empty event is consumed without a request.
                tracing::debug!(sink = %self.name, "event with an empty body consumed without a request");
                continue;
            }
            loop {
                self.counters.sent.fetch_add(1, Ordering::Relaxed);
                let code = match self.post(&event.body) {
                    Outcome::Status(code) => code,
                    Outcome::Failed(why) => {
                        return self.stop_at(events, i, format!("POST to {endpoint}: {why}"));
                    }
                };
                let rollback = self.config.rollback.resolve(code);
                let backoff = self.config.backoff.resolve(code);
                if rollback {
                    if backoff || stopping(&self.stop) {
                        return self.stop_at(
                            events,
                            i,
                            format!("{endpoint} answered {code}: the event is rolled back"),
                        );
                    }
                    // Rolled back without backoff: Flume's next cycle takes the same event
                    // again at once.
                    tracing::debug!(sink = %self.name, %endpoint, code, "rolled back for an immediate retry");
                    continue;
                }
                if (200..300).contains(&code) {
                    self.counters.acked.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.counters.unsendable.fetch_add(1, Ordering::Relaxed);
                    let _ = self.drops.dropped(&self.name, &endpoint, code);
                }
                if backoff {
                    return self.stop_at(
                        events,
                        i + 1,
                        format!(
                            "{endpoint} answered {code}: the event is done, and the sink backs off \
                             as `backoff` says for {code}"
                        ),
                    );
                }
                break;
            }
        }
        Ok(())
    }

    fn idle(&mut self) -> anyhow::Result<()> {
        self.drops.flush_old(&self.name, &self.config.endpoint);
        Ok(())
    }

    fn close(&mut self) -> anyhow::Result<()> {
        self.drops.flush(&self.name, &self.config.endpoint);
        Ok(())
    }
}

/// The client: keep-alive pool, the configured timeouts, no redirects followed (a 3XX is a
/// status like any other, as the rules see it), no proxy from the environment (Flume's
/// `HttpURLConnection` reads none either), and every status returned rather than turned into an
/// error.
fn client(config: &HttpSinkConfig) -> Agent {
    let connect = Some(config.connect_timeout);
    let request = Some(config.request_timeout);
    let builder = Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .user_agent(concat!("weir/", env!("CARGO_PKG_VERSION")))
        .timeout_resolve(connect)
        .timeout_connect(connect)
        .timeout_send_request(request)
        .timeout_send_body(request)
        .timeout_recv_response(request)
        .timeout_recv_body(request);
    #[cfg(feature = "https")]
    let builder = builder.tls_config(crate::tls::http_client_tls(config.trusted.as_deref()));
    builder.build().into()
}

/// Logs dropped events one by one, up to [`DROP_LOGS_PER_WINDOW`] per [`DROP_LOG_WINDOW`];
/// past that, counts them and reports the count with the next line.
#[derive(Default)]
struct DropLog {
    window_start: Option<Instant>,
    logged: u32,
    not_logged: u64,
}

impl DropLog {
    /// Counts a dropped event; whether it was logged.
    fn dropped(&mut self, sink: &str, endpoint: &str, code: u16) -> bool {
        let now = Instant::now();
        if self
            .window_start
            .is_none_or(|start| now.duration_since(start) >= DROP_LOG_WINDOW)
        {
            self.window_start = Some(now);
            self.logged = 0;
        }
        if self.logged < DROP_LOGS_PER_WINDOW {
            self.logged += 1;
            let not_logged = std::mem::take(&mut self.not_logged);
            if not_logged == 0 {
                tracing::warn!(
                    sink,
                    endpoint,
                    code,
                    "event dropped: the endpoint answered {code}, and `rollback` says to commit it"
                );
            } else {
                tracing::warn!(
                    sink,
                    endpoint,
                    code,
                    not_logged,
                    "event dropped: the endpoint answered {code}, and `rollback` says to commit it ({not_logged} more dropped before this and not logged)"
                );
            }
            true
        } else {
            self.not_logged += 1;
            false
        }
    }

    /// Reports drops not logged yet once their window is over.
    fn flush_old(&mut self, sink: &str, endpoint: &str) {
        if self
            .window_start
            .is_some_and(|start| start.elapsed() >= DROP_LOG_WINDOW)
        {
            self.flush(sink, endpoint);
        }
    }

    /// Reports drops not logged yet.
    fn flush(&mut self, sink: &str, endpoint: &str) {
        if self.not_logged > 0 {
            let not_logged = std::mem::take(&mut self.not_logged);
            tracing::warn!(
                sink,
                endpoint,
                not_logged,
                "{not_logged} more events were dropped on non-2XX responses and not logged one by one"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_are_logged_one_by_one_up_to_the_limit_then_summed_up() {
        let mut log = DropLog::default();
        let logged = (0..25)
            .filter(|_| log.dropped("k1", "http://h/", 400))
            .count();
        assert_eq!(logged, DROP_LOGS_PER_WINDOW as usize);
        assert_eq!(log.not_logged, 15);
        // Within the window nothing is reported early; once it is over, the rest is.
        log.flush_old("k1", "http://h/");
        assert_eq!(log.not_logged, 15);
        log.window_start = Some(Instant::now() - DROP_LOG_WINDOW);
        log.flush_old("k1", "http://h/");
        assert_eq!(log.not_logged, 0);
        // A new window logs again.
        assert!(log.dropped("k1", "http://h/", 404));
    }
}
