//! The gate for log lines about a problem that repeats: the first occurrence is logged, then at
//! most one line a minute, carrying the count of occurrences since the last line. Channels use
//! it for refused puts (`channel::refusals`), accept loops for failed accepts, netcat
//! connections for over-long lines; each writes its own line.

use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub(crate) struct Throttle {
    last_line: Option<Instant>,
    since: u64,
}

impl Throttle {
    pub(crate) const EVERY: Duration = Duration::from_secs(60);

    /// Counts an occurrence at `now`. Returns the count to report, this occurrence included,
    /// when a line is due (none yet, or the last one a minute old); `None` otherwise.
    pub(crate) fn occurred(&mut self, now: Instant) -> Option<u64> {
        self.since += 1;
        if self
            .last_line
            .is_some_and(|at| now.duration_since(at) < Self::EVERY)
        {
            return None;
        }
        self.last_line = Some(now);
        Some(std::mem::take(&mut self.since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_occurrence_then_one_a_minute_with_the_count() {
        let mut t = Throttle::default();
        let t0 = Instant::now();
        assert_eq!(t.occurred(t0), Some(1));
        assert!((1..60).all(|s| t.occurred(t0 + Duration::from_secs(s)).is_none()));
        assert_eq!(t.occurred(t0 + Throttle::EVERY), Some(60));
        assert_eq!(t.occurred(t0 + Throttle::EVERY), None);
    }
}
