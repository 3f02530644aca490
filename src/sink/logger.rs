//! The logger sink: logs each event's headers and the start of its body at INFO (Flume's
//! LoggerSink, with its `maxBytesToLog`).

use super::Sink;
use crate::event::Event;
use crate::wal::inspect::escape_bytes;

pub struct LoggerSink {
    name: String,
    max_bytes: usize,
}

impl LoggerSink {
    pub fn new(name: &str, max_bytes: usize) -> LoggerSink {
        LoggerSink {
            name: name.to_owned(),
            max_bytes,
        }
    }
}

impl Sink for LoggerSink {
    fn deliver(&mut self, events: &[(u64, Event)]) -> anyhow::Result<()> {
        for (offset, e) in events {
            let shown = &e.body[..e.body.len().min(self.max_bytes)];
            tracing::info!(
                sink = %self.name,
                offset,
                headers = ?e.headers,
                body = %escape_bytes(shown),
                body_len = e.body.len(),
                "event"
            );
        }
        Ok(())
    }
}
