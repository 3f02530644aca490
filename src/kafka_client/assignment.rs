//! How long a group consumer has held no partition, so that the Kafka source or channel
//! reading through it can say so. With the group coordinator not answering, or a rebalance
//! that does not finish, a consumer reads nothing and librdkafka logs nothing, which looks like
//! an idle topic: audit 39 saw 20–24 s of such silence with a backlog waiting. A rebalance that
//! assigns nothing is logged where it happens ([`super::NOTHING_ASSIGNED`]); this covers the
//! case where no assignment comes at all.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// How long a consumer may hold no partition before that is logged.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Logged (a warning) once a consumer has held no partition for [`PATIENCE`].
pub const NO_PARTITION_YET: &str = "kafka: this consumer has held no partition for 30 s, so it \
    reads nothing: the group has not assigned it any (the broker or the group's coordinator not \
    answering, a rebalance that does not finish, or more consumers in the group than partitions)";

/// The partitions a consumer holds, counted from its rebalance callbacks, and since when it
/// has held none.
#[derive(Debug)]
pub struct AssignmentWatch {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    partitions: usize,
    /// When the consumer last went without partitions (or started).
    empty_since: Instant,
    /// Whether this stretch without partitions was logged already.
    told: bool,
}

impl AssignmentWatch {
    /// A consumer that has just subscribed: no partition yet.
    pub fn new(now: Instant) -> AssignmentWatch {
        AssignmentWatch {
            state: Mutex::new(State {
                partitions: 0,
                empty_since: now,
                told: false,
            }),
        }
    }

    /// `n` partitions assigned: all of them with the eager protocol (librdkafka's default),
    /// those added with the cooperative one. An empty assignment is logged by the caller,
    /// which counts as telling.
    pub fn assigned(&self, n: usize, now: Instant) {
        let mut s = self.state.lock();
        s.partitions += n;
        if s.partitions == 0 {
            s.empty_since = now;
            s.told = true;
        }
    }

    /// `n` partitions revoked.
    pub fn revoked(&self, n: usize, now: Instant) {
        let mut s = self.state.lock();
        let had = s.partitions;
        s.partitions = had.saturating_sub(n);
        if had > 0 && s.partitions == 0 {
            s.empty_since = now;
            s.told = false;
        }
    }

    /// True once per stretch without partitions, when it has lasted [`PATIENCE`]: the caller
    /// then logs [`NO_PARTITION_YET`]. Called from the consumer's poll loop.
    pub fn overdue(&self, now: Instant) -> bool {
        let mut s = self.state.lock();
        let overdue = s.partitions == 0 && !s.told && now.duration_since(s.empty_since) >= PATIENCE;
        if overdue {
            s.told = true;
        }
        overdue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stretch_without_partitions_is_told_once_after_the_patience() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let w = AssignmentWatch::new(t0);
        assert!(!w.overdue(at(29)));
        assert!(w.overdue(at(30)));
        assert!(!w.overdue(at(31)), "told once per stretch");
        // Assigned, then all revoked (eager): a new stretch, told again after its patience.
        w.assigned(3, at(40));
        assert!(!w.overdue(at(100)));
        w.revoked(3, at(100));
        assert!(!w.overdue(at(129)));
        assert!(w.overdue(at(130)));
        // Cooperative: partitions come and go one by one; holding one is not a stretch.
        w.assigned(1, at(140));
        w.assigned(1, at(141));
        w.revoked(1, at(142));
        assert!(!w.overdue(at(500)));
        w.revoked(1, at(500));
        assert!(w.overdue(at(530)));
        // An empty assignment was logged where it came: not told again.
        let w = AssignmentWatch::new(t0);
        w.assigned(0, at(1));
        assert!(!w.overdue(at(100)));
    }
}
