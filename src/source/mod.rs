//! Sources take data in and hand it to the [`ChannelProcessor`], which puts it into the source's
//! channels. A source acknowledges its client only after the processor returns, so
//! "acknowledged" always means "committed to every required channel".

pub mod netcat;
pub mod seq;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::channel::{Channel, ChannelError};
use crate::config::{SelectorConfig, SourceConfig, SourceKind};
use crate::event::Event;

/// Set once to ask every component to stop.
pub type StopFlag = Arc<AtomicBool>;

pub fn stopping(stop: &StopFlag) -> bool {
    stop.load(Ordering::Relaxed)
}

/// Flume's source counters (`SOURCE.<name>` in the metrics).
#[derive(Debug, Default)]
pub struct SourceCounters {
    pub received: AtomicU64,
    pub accepted: AtomicU64,
    pub batches_received: AtomicU64,
    pub batches_accepted: AtomicU64,
    pub open_connections: AtomicU64,
    pub channel_write_fail: AtomicU64,
    pub read_fail: AtomicU64,
}

/// Applies the selector and puts events into the channels (Flume's ChannelProcessor). One call
/// is one put transaction per channel.
pub struct ChannelProcessor {
    required: Vec<Arc<dyn Channel>>,
    optional: Vec<Arc<dyn Channel>>,
    counters: Arc<SourceCounters>,
}

impl ChannelProcessor {
    pub fn new(
        config: &SourceConfig,
        channels: &[Arc<dyn Channel>],
        counters: Arc<SourceCounters>,
    ) -> ChannelProcessor {
        let SelectorConfig::Replicating { optional } = &config.selector;
        let find = |n: &String| channels.iter().find(|c| c.name() == n).cloned();
        let (opt, req): (Vec<&String>, Vec<&String>) =
            config.channels.iter().partition(|c| optional.contains(c));
        ChannelProcessor {
            required: req.into_iter().filter_map(find).collect(),
            optional: opt.into_iter().filter_map(find).collect(),
            counters,
        }
    }

    pub fn counters(&self) -> &SourceCounters {
        &self.counters
    }

    /// Puts `events` into every required channel (each its own transaction, as in Flume), then
    /// the optional ones, whose failures are only logged.
    pub fn process(&self, events: Vec<Event>) -> Result<(), ChannelError> {
        let n = events.len() as u64;
        self.counters.received.fetch_add(n, Ordering::Relaxed);
        self.counters
            .batches_received
            .fetch_add(1, Ordering::Relaxed);
        let mut targets = self.required.iter().chain(self.optional.iter()).peekable();
        let mut events = Some(events);
        while let Some(channel) = targets.next() {
            let is_optional = !self.required.iter().any(|r| Arc::ptr_eq(r, channel));
            // The last channel gets the original; the others a copy (bodies are shared).
            let batch = if targets.peek().is_some() {
                events.clone().unwrap_or_default()
            } else {
                events.take().unwrap_or_default()
            };
            if let Err(e) = channel.put(batch) {
                if is_optional {
                    tracing::warn!(channel = channel.name(), error = %e, "optional channel refused events");
                    continue;
                }
                self.counters
                    .channel_write_fail
                    .fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        }
        self.counters.accepted.fetch_add(n, Ordering::Relaxed);
        self.counters
            .batches_accepted
            .fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// A running source: its thread ends when the stop flag is set.
pub trait Source: Send {
    /// Binds listeners and the like; errors here stop the agent from starting.
    fn start(&mut self) -> anyhow::Result<()>;
    /// Runs until `stop` is set, finishing (or failing back to the client) every transaction it
    /// began.
    fn run(self: Box<Self>, processor: ChannelProcessor, stop: StopFlag);
}

pub fn build(config: &SourceConfig) -> Box<dyn Source> {
    match &config.kind {
        SourceKind::Netcat(c) => Box::new(netcat::NetcatSource::new(&config.name, c.clone())),
        SourceKind::Seq(c) => Box::new(seq::SeqSource::new(&config.name, c.clone())),
    }
}
