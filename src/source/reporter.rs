//! Rate-limited logging of problems with what clients send (malformed messages, over-long
//! lines, datagrams the channel refused), so that a client sending garbage as fast as it can
//! cannot flood the agent's log.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Logs problems with what one client (or one UDP socket) sends: the first few in full, then at
/// most one line per interval carrying how many were not logged.
pub(crate) struct Reporter {
    source: String,
    client: Option<SocketAddr>,
    burst: u32,
    suppressed: u64,
    next: Instant,
}

const REPORT_BURST: u32 = 5;
const REPORT_INTERVAL: Duration = Duration::from_secs(10);

impl Reporter {
    pub(crate) fn new(source: &str, client: Option<SocketAddr>) -> Reporter {
        Reporter {
            source: source.to_owned(),
            client,
            burst: REPORT_BURST,
            suppressed: 0,
            next: Instant::now(),
        }
    }

    /// The client the next reports are about (a UDP socket hears from many).
    pub(crate) fn for_client(&mut self, client: SocketAddr) {
        self.client = Some(client);
    }

    fn client(&self) -> String {
        self.client.map_or_else(|| "-".into(), |c| c.to_string())
    }

    pub(crate) fn report(&mut self, what: std::fmt::Arguments<'_>) {
        let now = Instant::now();
        if self.burst > 0 {
            self.burst -= 1;
            tracing::warn!(source = %self.source, client = %self.client(), "{what}");
            if self.burst == 0 {
                self.next = now + REPORT_INTERVAL;
            }
        } else if now >= self.next {
            tracing::warn!(source = %self.source, client = %self.client(), not_logged = self.suppressed, "{what} (and more problems not logged since the last report)");
            self.suppressed = 0;
            self.next = now + REPORT_INTERVAL;
        } else {
            self.suppressed += 1;
        }
    }

    /// Logs how many problems went unlogged since the last line, if any.
    pub(crate) fn finish(&mut self) {
        if self.suppressed > 0 {
            tracing::warn!(source = %self.source, client = %self.client(), not_logged = self.suppressed, "further problems with this client's messages were not logged individually");
            self.suppressed = 0;
        }
    }
}
