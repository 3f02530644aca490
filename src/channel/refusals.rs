//! Logging of puts a channel refuses for want of room. Each refusal is answered to its client
//! (`FAILED`, HTTP 503, a held connection), but the operator must hear of it too, without a
//! line per refused put: the first refusal is logged, then one line a minute with the count
//! since.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// One kind of refusal (a full channel, a full disk): when it was last logged and how many
/// refusals came since.
#[derive(Default)]
pub(crate) struct RefusalLog(Mutex<(Option<Instant>, u64)>);

impl RefusalLog {
    const EVERY: Duration = Duration::from_secs(60);

    /// Counts a refusal of a put to `channel` for `reason`; logs `what` (and says so) when the
    /// last line is a minute old.
    pub(crate) fn refused(
        &self,
        channel: &str,
        reason: &dyn std::fmt::Display,
        what: &'static str,
        now: Instant,
    ) -> bool {
        let mut state = self.0.lock();
        let (last, since) = &mut *state;
        *since += 1;
        if last.is_some_and(|t| now.duration_since(t) < Self::EVERY) {
            return false;
        }
        tracing::warn!(channel, %reason, refused_puts = *since, "{what}");
        *last = Some(now);
        *since = 0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_logged_once_a_minute() {
        let log = RefusalLog::default();
        let t0 = Instant::now();
        let logged: Vec<bool> = (0..130u64)
            .map(|s| log.refused("c1", &"stand-in", "refused", t0 + Duration::from_secs(s)))
            .collect();
        let at: Vec<usize> = (0..logged.len()).filter(|&i| logged[i]).collect();
        assert_eq!(at, vec![0, 60, 120]);
    }
}
