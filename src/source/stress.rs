//! Flume's stress source (`org.apache.flume.source.StressSource`): a load generator putting
//! identical events (`size` bytes of 0x7F, no headers) in batches, until it has offered
//! `maxTotalEvents` or the channel has accepted `maxSuccessfulEvents`, optionally paced to
//! `maxEventsPerSecond`.
//!
//! As in Flume, a batch the channel refuses counts towards `maxTotalEvents` and is not offered
//! again: the source backs off (`backoffSleepIncrement`, `maxBackoffSleep`) and goes on with the
//! next batch. Unlike `seq`, which retries a refused batch, the events here carry nothing that
//! could be missed.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{ChannelProcessor, Source, StopFlag, stopping};
use crate::config::StressConfig;
use crate::event::Event;
use crate::stop::sleep_unless_stopped;

pub struct StressSource {
    name: String,
    config: StressConfig,
}

impl StressSource {
    pub fn new(name: &str, config: StressConfig) -> StressSource {
        StressSource {
            name: name.to_owned(),
            config,
        }
    }
}

/// Paces batches to at most `per_second` events a second on average (Guava's RateLimiter in
/// Flume): each batch waits for the time its predecessors' events were allotted.
struct Pacer {
    per_second: u64,
    next: Option<Instant>,
}

impl Pacer {
    /// How long to wait before sending `n` events now (zero: go at once).
    fn wait_for(&mut self, n: u64, now: Instant) -> Duration {
        if self.per_second == 0 {
            return Duration::ZERO;
        }
        let start = self.next.map_or(now, |t| t.max(now));
        self.next = Some(start + Duration::from_secs_f64(n as f64 / self.per_second as f64));
        start - now
    }
}

impl Source for StressSource {
    fn start(&mut self) -> anyhow::Result<()> {
        Ok(())
    }

    fn run(self: Box<Self>, processor: ChannelProcessor, stop: StopFlag) {
        let c = &self.config;
        let body = Bytes::from(vec![0x7F; c.size]);
        let mut pacer = Pacer {
            per_second: c.max_events_per_second,
            next: None,
        };
        let (mut total, mut successful, mut failed) = (0u64, 0u64, 0u64);
        let mut backoff = Duration::ZERO;
        while !stopping(&stop) {
            if c.max_total_events.is_some_and(|max| total >= max)
                || c.max_successful_events.is_some_and(|max| successful >= max)
            {
                break;
            }
            let n = c.max_total_events.map_or(c.batch_size as u64, |max| {
                (max - total).min(c.batch_size as u64)
            });
            let wait = pacer.wait_for(n, Instant::now());
            if !wait.is_zero() && !sleep_unless_stopped(wait, &stop) {
                break;
            }
            let batch = (0..n).map(|_| Event::new(body.clone())).collect();
            total += n;
            match processor.process(batch) {
                Ok(()) => {
                    successful += n;
                    backoff = Duration::ZERO;
                }
                Err(e) => {
                    failed += n;
                    backoff = c.backoff.next(backoff);
                    tracing::debug!(source = %self.name, error = %e, "stress: batch refused, not offered again");
                    if !sleep_unless_stopped(backoff, &stop) {
                        break;
                    }
                }
            }
        }
        tracing::info!(source = %self.name, total, successful, failed, "stress source finished");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::Channel;
    use crate::config::PollBackoff;
    use crate::source::test_rig::{memory_channel, processor_for};
    use std::sync::Arc;

    fn config(batch: usize, total: Option<u64>, successful: Option<u64>) -> StressConfig {
        StressConfig {
            size: 10,
            max_total_events: total,
            max_successful_events: successful,
            batch_size: batch,
            max_events_per_second: 0,
            backoff: PollBackoff {
                increment: Duration::from_millis(1),
                max: Duration::from_millis(2),
            },
        }
    }

    fn channel(capacity: usize, transaction_capacity: usize) -> Arc<dyn Channel> {
        memory_channel(capacity, transaction_capacity, Duration::ZERO)
    }

    fn run(config: StressConfig, channel: &Arc<dyn Channel>) {
        let stop: StopFlag = crate::stop::Stop::new();
        Box::new(StressSource::new("s", config)).run(processor_for(channel), stop);
    }

    /// Takes everything in `channel`, checking each event is the stress source's.
    fn drain(channel: &Arc<dyn Channel>) -> usize {
        let taken = channel.take(1000, Duration::ZERO).unwrap();
        let n = taken.events.len();
        for (_, e) in &taken.events {
            assert_eq!(e.body[..], [0x7F; 10]);
            assert!(e.headers.is_empty());
        }
        channel.commit(taken).unwrap();
        assert!(channel.take(1, Duration::ZERO).unwrap().is_empty());
        n
    }

    #[test]
    fn offers_max_total_events_in_batches_with_a_short_last_one() {
        let c = channel(1000, 1000);
        run(config(7, Some(30), None), &c);
        assert_eq!(drain(&c), 30);
    }

    #[test]
    fn refused_batches_count_towards_the_total_and_are_not_offered_again() {
        // Room for 20: of 50 offered in batches of 10, 20 land and 30 are refused.
        let c = channel(20, 1000);
        run(config(10, Some(50), None), &c);
        assert_eq!(drain(&c), 20);
    }

    #[test]
    fn stops_after_max_successful_events() {
        let c = channel(1000, 1000);
        run(config(4, None, Some(10)), &c);
        // Batches of 4 until at least 10 were accepted, as in Flume.
        assert_eq!(drain(&c), 12);
    }

    #[test]
    fn pacing_spreads_batches_over_time() {
        let mut p = Pacer {
            per_second: 100,
            next: None,
        };
        let t0 = Instant::now();
        assert_eq!(p.wait_for(50, t0), Duration::ZERO);
        assert_eq!(p.wait_for(50, t0), Duration::from_millis(500));
        // Time that passed counts: a source that fell behind does not wait.
        assert_eq!(p.wait_for(10, t0 + Duration::from_secs(2)), Duration::ZERO);
        let mut unpaced = Pacer {
            per_second: 0,
            next: None,
        };
        assert_eq!(unpaced.wait_for(1000, t0), Duration::ZERO);
    }
}
