//! Logging of puts a channel refuses for want of room, or for good. A refusal for want of room
//! is answered to its client (`FAILED`, HTTP 503, a held connection), but the operator must hear
//! of it too, without a line per refused put: the first refusal is logged, then one line a
//! minute with the count since. Events refused for good by a source with no client to tell are
//! dropped, and logged the same way as errors.

use std::time::Instant;

use parking_lot::Mutex;

use crate::log_throttle::Throttle;

/// One kind of refusal (a full channel, a full disk): what to tell the operator, when it was
/// last logged and how many refusals came since.
pub(crate) struct RefusalLog {
    what: &'static str,
    /// Logged as an error, not a warning: the refused events are lost, or the store is failing.
    as_error: bool,
    state: Mutex<Throttle>,
}

impl RefusalLog {
    /// Refusals for want of room under the channel's capacity.
    pub(crate) fn channel_full() -> RefusalLog {
        RefusalLog::new(
            "puts refused: the channel is full (its sinks are not delivering, or not keeping \
             up); clients are told to retry",
        )
    }

    /// Refusals for want of disk space (or inodes, or quota) under a file channel's log.
    pub(crate) fn disk_full() -> RefusalLog {
        RefusalLog::new(
            "puts refused for want of disk space, inodes or quota (the reason says which); free \
             some under the channel's dataDirs (or lower its minimumRequiredSpace or maxFileSize)",
        )
    }

    /// Events a source dropped because a channel can never store them and the source has no
    /// client to refuse them to.
    pub(crate) fn unstorable_dropped() -> RefusalLog {
        RefusalLog {
            as_error: true,
            ..RefusalLog::new(
                "events dropped: the channel can never store them (raise its byteCapacity, or \
                 fix what produces them), and this source cannot hand them back",
            )
        }
    }

    /// Puts a source with a client refused because a channel can never store one of their
    /// events (the client is told why).
    pub(crate) fn unstorable_refused() -> RefusalLog {
        RefusalLog::new(
            "puts refused for good: the channel can never store an event in them (raise its \
             byteCapacity, or fix what produces them); the clients are told",
        )
    }

    /// Puts that failed because a file channel's log could not store them: an I/O error (a
    /// segment over the file-size limit, a failing or read-only disk, a failed sync). Unlike a
    /// full channel this does not pass by itself, so it is an error; the clients are told.
    pub(crate) fn write_failed() -> RefusalLog {
        RefusalLog {
            as_error: true,
            ..RefusalLog::new(
                "puts failed: the channel's log cannot store them (see the error); the clients \
                 are told",
            )
        }
    }

    fn new(what: &'static str) -> RefusalLog {
        RefusalLog {
            what,
            as_error: false,
            state: Mutex::new(Throttle::default()),
        }
    }

    /// Counts a refusal of a put to `channel` for `reason`; logs it (and says so) when the
    /// last line is a minute old.
    pub(crate) fn refused(
        &self,
        channel: &str,
        reason: &dyn std::fmt::Display,
        now: Instant,
    ) -> bool {
        let Some(refused_puts) = self.state.lock().occurred(now) else {
            return false;
        };
        if self.as_error {
            tracing::error!(channel, %reason, refused_puts, "{}", self.what);
        } else {
            tracing::warn!(channel, %reason, refused_puts, "{}", self.what);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn refusals_are_logged_once_a_minute() {
        let log = RefusalLog::channel_full();
        let t0 = Instant::now();
        let logged: Vec<bool> = (0..130u64)
            .map(|s| log.refused("c1", &"stand-in", t0 + Duration::from_secs(s)))
            .collect();
        let at: Vec<usize> = (0..logged.len()).filter(|&i| logged[i]).collect();
        assert_eq!(at, vec![0, 60, 120]);
    }
}
