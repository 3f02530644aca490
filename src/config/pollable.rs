//! The back-off keys Flume gives every pollable source (`AbstractPollableSource`): after a poll
//! that found nothing or a put the channel refused, the source sleeps one increment longer than
//! the last time, up to a cap, and starts again from zero after a success.

use std::time::Duration;

use super::Section;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollBackoff {
    /// `backoffSleepIncrement` (Flume: 1000 ms).
    pub increment: Duration,
    /// `maxBackoffSleep` (Flume: 5000 ms).
    pub max: Duration,
}

impl PollBackoff {
    pub fn parse(s: &Section, notes: &mut Vec<String>) -> Result<PollBackoff, super::ConfigError> {
        let increment = s.millis_or("backoffSleepIncrement", 1000)?;
        // Flume's key is `maxBackoffSleep`; weir's README once spelled it `maxBackOffSleep`,
        // so that spelling is still read, with a note.
        let max_key = if s.string("maxBackoffSleep").is_some() {
            s.superseded("maxBackOffSleep", "maxBackoffSleep", notes);
            "maxBackoffSleep"
        } else if s
            .deprecated("maxBackOffSleep", "maxBackoffSleep", notes)
            .is_some()
        {
            "maxBackOffSleep"
        } else {
            "maxBackoffSleep"
        };
        let max = s.millis_or(max_key, 5000)?;
        Ok(PollBackoff { increment, max })
    }

    /// The sleep after `previous`: one increment longer, capped.
    pub fn next(&self, previous: Duration) -> Duration {
        (previous + self.increment).min(self.max)
    }
}
