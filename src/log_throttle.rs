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

    /// The occurrences no line has reported yet, once a line for them is due (a minute after
    /// the last one), or at once when `final_count`: for a caller that looks now and then
    /// (and at its end), so that the count of the last burst is not left unsaid until an
    /// occurrence that may never come. Counts as a line.
    pub(crate) fn unreported(&mut self, now: Instant, final_count: bool) -> Option<u64> {
        let due = final_count
            || self
                .last_line
                .is_none_or(|at| now.duration_since(at) >= Self::EVERY);
        if self.since == 0 || !due {
            return None;
        }
        self.last_line = Some(now);
        Some(std::mem::take(&mut self.since))
    }

    /// When [`Throttle::unreported`] will next have a count to report (None: nothing unsaid),
    /// for a caller that sleeps until then.
    pub(crate) fn report_due(&self) -> Option<Instant> {
        if self.since == 0 {
            return None;
        }
        Some(
            self.last_line
                .map_or_else(Instant::now, |at| at + Self::EVERY),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_occurrence_then_one_a_minute_with_the_count() {
        let mut t = Throttle::default();
        let t0 = Instant::now();
        assert_eq!(t.report_due(), None);
        assert_eq!(t.occurred(t0), Some(1));
        assert_eq!(t.report_due(), None);
        assert!((1..60).all(|s| t.occurred(t0 + Duration::from_secs(s)).is_none()));
        assert_eq!(t.report_due(), Some(t0 + Throttle::EVERY));
        assert_eq!(t.occurred(t0 + Throttle::EVERY), Some(60));
        assert_eq!(t.occurred(t0 + Throttle::EVERY), None);
    }

    #[test]
    fn the_count_since_the_last_line_is_reported_when_due_or_at_the_end() {
        let mut t = Throttle::default();
        let t0 = Instant::now();
        assert_eq!(t.unreported(t0, true), None, "nothing occurred");
        assert_eq!(t.occurred(t0), Some(1));
        assert_eq!(t.unreported(t0, true), None, "the line reported it");
        t.occurred(t0 + Duration::from_secs(1));
        t.occurred(t0 + Duration::from_secs(2));
        assert_eq!(t.unreported(t0 + Duration::from_secs(59), false), None);
        assert_eq!(t.unreported(t0 + Throttle::EVERY, false), Some(2));
        assert_eq!(t.unreported(t0 + Throttle::EVERY * 2, false), None);
        // A line was just given: the next occurrence waits a minute, unless it is the end.
        let t1 = t0 + Throttle::EVERY;
        assert_eq!(t.occurred(t1 + Duration::from_secs(1)), None);
        assert_eq!(t.unreported(t1 + Duration::from_secs(2), true), Some(1));
    }
}
