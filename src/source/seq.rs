//! The sequence generator: events whose bodies are increasing numbers, for tests and benchmarks
//! (Flume's `seq` source). A full channel makes it wait and retry the same batch.

use std::time::Duration;

use super::{ChannelProcessor, Source, StopFlag, stopping};
use crate::config::SeqConfig;
use crate::event::Event;

pub struct SeqSource {
    name: String,
    config: SeqConfig,
}

impl SeqSource {
    pub fn new(name: &str, config: SeqConfig) -> SeqSource {
        SeqSource {
            name: name.to_owned(),
            config,
        }
    }
}

/// The body of event `i`: the decimal number, padded with spaces to `size` bytes (a longer
/// number is left whole). Public so that benchmarks can produce the same events without weir.
pub fn body(i: u64, size: usize) -> Vec<u8> {
    let mut b = i.to_string().into_bytes();
    if b.len() < size {
        b.resize(size, b' ');
    }
    b
}

impl Source for SeqSource {
    fn start(&mut self) -> anyhow::Result<()> {
        Ok(())
    }

    fn run(self: Box<Self>, processor: ChannelProcessor, stop: StopFlag) {
        let mut next = 0u64;
        while next < self.config.total_events && !stopping(&stop) {
            let n = (self.config.total_events - next).min(self.config.batch_size as u64);
            let batch: Vec<Event> = (next..next + n)
                .map(|i| Event::new(body(i, self.config.body_size)))
                .collect();
            match processor.process(batch) {
                Ok(()) => next += n,
                Err(e) => {
                    tracing::debug!(source = %self.name, error = %e, "seq: batch refused; retrying");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
        tracing::info!(source = %self.name, events = next, "seq source finished");
    }
}

#[cfg(test)]
mod tests {
    use super::body;

    #[test]
    fn bodies_are_padded_to_the_configured_size() {
        assert_eq!(body(42, 0), b"42");
        assert_eq!(body(42, 5), b"42   ");
        assert_eq!(body(123456, 3), b"123456");
        assert_eq!(body(7, 100).len(), 100);
    }
}
