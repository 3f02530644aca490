//! Sink groups: several sinks driven by one runner thread that asks, every cycle, which sink to
//! run (Flume's sink processors).
//!
//! - `failover` always drives the highest-priority live sink. A sink whose cycle fails (its take
//!   is rolled back) moves to the failed set for a penalty that doubles with each consecutive
//!   failure, up to `maxpenalty`, and the next sink takes over in the same cycle. Once its
//!   penalty is over, a failed sink is tried first; a delivered batch puts it back in the live
//!   set, where its priority makes it active again. While it finds its channel empty, live
//!   sinks of that channel wait, so the next batch there is the one that proves it.
//! - `load_balance` starts each cycle at the next sink in round-robin or random order and, if
//!   that sink fails, tries the others in the same cycle. With `backoff`, a failing sink is left
//!   out of the order for a time that grows with consecutive failures, up to `maxTimeOut`.
//!
//! Each sink keeps its own channel, batch size and counters: the group only decides which sink
//! runs. Penalties are Flume's: 1 s × 2ⁿ after the n-th consecutive failure (so 2 s, 4 s, 8 s …),
//! capped. Time comes from a [`Clock`] so the processors can be tested without sleeping.

use std::time::{Duration, Instant};

use anyhow::Context;

use super::{BACKOFF_MAX, BACKOFF_START, CycleError, Outage, SinkRunner, Status};
use crate::config::{
    BalanceOrder, FailoverConfig, LoadBalanceConfig, ProcessorConfig, SinkGroupConfig,
};
use crate::stop::sleep_unless_stopped;
use crate::stop::{StopFlag, stopping};

/// A sink as a group drives it: one cycle at a time.
pub trait Member {
    fn name(&self) -> &str;
    /// The channel the sink drains.
    fn channel(&self) -> &str;
    /// One take–deliver–commit cycle (see [`SinkRunner::process`]).
    fn process(&mut self) -> Result<Status, CycleError>;
    fn close(&mut self);
    /// Has the member's stop (the agent's, as the group's) end its waits for events at once
    /// (see [`SinkRunner::wake_at_stop`]).
    fn wake_at_stop(&self) {}
}

impl Member for SinkRunner {
    fn name(&self) -> &str {
        &self.name
    }

    fn channel(&self) -> &str {
        self.channel.name()
    }

    fn process(&mut self) -> Result<Status, CycleError> {
        SinkRunner::process(self)
    }

    fn wake_at_stop(&self) {
        SinkRunner::wake_at_stop(self);
    }

    fn close(&mut self) {
        SinkRunner::close(self)
    }
}

pub trait Clock {
    fn now(&self) -> Instant;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// What one cycle of a group did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A sink delivered a batch.
    Ready,
    /// The sink driven had nothing to take (and already waited for it).
    Backoff,
    /// No sink could be driven, or every one tried failed. `next_retry`: when a penalised or
    /// excluded sink may be tried again, if that is what the group waits for.
    Unavailable { next_retry: Option<Instant> },
}

/// The unit of Flume's penalties and exclusions.
const PENALTY_UNIT: Duration = Duration::from_secs(1);
/// Flume's load-balancing selector stops doubling after this many consecutive failures.
const MAX_COUNTED_FAILURES: u32 = 16;
/// A load-balanced sink failing again within its last exclusion plus this long counts as a
/// consecutive failure (Flume's OrderSelector); later, the count starts over.
const CONSECUTIVE_GRACE: Duration = Duration::from_secs(2);

/// `PENALTY_UNIT × 2ⁿ`, at most `cap`.
fn doubling(failures: u32, cap: Duration) -> Duration {
    1u32.checked_shl(failures)
        .and_then(|f| PENALTY_UNIT.checked_mul(f))
        .unwrap_or(cap)
        .min(cap)
}

/// A failover sink in the failed set.
#[derive(Clone, Copy, Debug)]
struct Penalty {
    failures: u32,
    until: Instant,
}

struct Failover {
    max_penalty: Duration,
    /// Member indices, highest priority first.
    by_priority: Vec<usize>,
    /// Per member: `None` while live.
    failed: Vec<Option<Penalty>>,
}

/// A load-balanced sink's failure history (used only with `backoff`).
#[derive(Clone, Copy, Debug, Default)]
struct Exclusion {
    failures: u32,
    last_failure: Option<Instant>,
    until: Option<Instant>,
}

struct LoadBalance {
    order: BalanceOrder,
    backoff: bool,
    max_timeout: Duration,
    /// Round robin: the member the next cycle starts at.
    next: usize,
    rng: fastrand::Rng,
    excluded: Vec<Exclusion>,
}

enum Policy {
    Failover(Failover),
    LoadBalance(LoadBalance),
}

/// A group of sinks and the processor that picks among them.
pub struct SinkGroup<M: Member = SinkRunner, C: Clock = SystemClock> {
    pub name: String,
    members: Vec<M>,
    policy: Policy,
    clock: C,
}

impl<M: Member, C: Clock> SinkGroup<M, C> {
    /// A failover group. Members without a priority in `config` rank below all others.
    pub fn failover(name: &str, members: Vec<M>, config: &FailoverConfig, clock: C) -> Self {
        let priority = |m: &M| {
            config
                .priorities
                .iter()
                .find(|(k, _)| k == m.name())
                .map(|(_, p)| *p)
                .unwrap_or(i32::MIN)
        };
        let mut by_priority: Vec<usize> = (0..members.len()).collect();
        // Stable: members without a priority (a sink whose priority another has, see
        // `config::sink_group`) keep their listing order, below the others.
        by_priority.sort_by_key(|&i| std::cmp::Reverse(priority(&members[i])));
        SinkGroup {
            name: name.to_owned(),
            policy: Policy::Failover(Failover {
                max_penalty: config.max_penalty,
                by_priority,
                failed: vec![None; members.len()],
            }),
            members,
            clock,
        }
    }

    /// A load-balancing group; `seed` seeds the random order.
    pub fn load_balance(
        name: &str,
        members: Vec<M>,
        config: &LoadBalanceConfig,
        clock: C,
        seed: u64,
    ) -> Self {
        SinkGroup {
            name: name.to_owned(),
            policy: Policy::LoadBalance(LoadBalance {
                order: config.order,
                backoff: config.backoff,
                max_timeout: config.max_timeout,
                next: 0,
                rng: fastrand::Rng::with_seed(seed),
                excluded: vec![Exclusion::default(); members.len()],
            }),
            members,
            clock,
        }
    }

    pub fn members(&self) -> &[M] {
        &self.members
    }

    pub fn members_mut(&mut self) -> &mut [M] {
        &mut self.members
    }

    /// One cycle: the processor picks a sink and drives it.
    pub fn process(&mut self) -> Outcome {
        match &mut self.policy {
            Policy::Failover(f) => f.process(&self.name, &mut self.members, &self.clock),
            Policy::LoadBalance(lb) => lb.process(&self.name, &mut self.members, &self.clock),
        }
    }

    /// Runs cycles until `stop` is set, then closes every sink. When no sink can deliver, waits
    /// (doubling, as a lone sink's runner does) but never less than until the next penalised
    /// sink may be retried.
    pub fn run(mut self, stop: StopFlag) {
        for m in &self.members {
            m.wake_at_stop();
        }
        let mut backoff = BACKOFF_START;
        let mut outage = None;
        while !stopping(&stop) {
            match self.process() {
                Outcome::Ready => {
                    backoff = BACKOFF_START;
                    // Members deliver and commit within their cycle: a ready one delivered.
                    if let Some((failures, seconds)) = Outage::ended(&mut outage, u64::MAX) {
                        tracing::info!(group = %self.name, failures, seconds, "a sink of the group delivers again, after {failures} failed attempts (the first failed {seconds} s ago)");
                    }
                }
                Outcome::Backoff => {}
                Outcome::Unavailable { next_retry } => {
                    let until_retry = next_retry
                        .map(|t| t.saturating_duration_since(self.clock.now()))
                        .unwrap_or_default();
                    let wait = backoff.max(until_retry);
                    if let Some(unlogged) = Outage::failed(&mut outage, Instant::now(), 0) {
                        let note = Outage::unlogged_note(unlogged);
                        tracing::error!(group = %self.name, retry_in_ms = wait.as_millis() as u64, "no sink of the group could deliver; events stay in their channels{note}");
                    }
                    sleep_unless_stopped(wait, &stop);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
        for m in &mut self.members {
            m.close();
        }
    }
}

impl Failover {
    fn active(&self) -> Option<usize> {
        self.by_priority
            .iter()
            .copied()
            .find(|&i| self.failed[i].is_none())
    }

    fn process<M: Member>(
        &mut self,
        group: &str,
        members: &mut [M],
        clock: &impl Clock,
    ) -> Outcome {
        // Failed sinks whose penalty is over are tried first, earliest (then highest priority)
        // first: a delivered batch is the proof of recovery.
        let now = clock.now();
        let mut due: Vec<(Instant, usize, usize)> = self
            .by_priority
            .iter()
            .enumerate()
            .filter_map(|(rank, &i)| {
                self.failed[i]
                    .filter(|p| p.until <= now)
                    .map(|p| (p.until, rank, i))
            })
            .collect();
        due.sort();
        let mut nothing_to_take = false;
        // Channels a due sink found empty: the active sink would find them empty too.
        let mut found_empty: Vec<usize> = Vec::new();
        for (_, _, i) in due {
            match members[i].process() {
                Ok(Status::Ready) => {
                    self.failed[i] = None;
                    tracing::info!(
                        group,
                        sink = members[i].name(),
                        "sink recovered; back in the live set"
                    );
                    return Outcome::Ready;
                }
                // Nothing to take proves nothing: it stays failed, without a longer penalty, and
                // it is tried first again next cycle, so the next batch on its channel goes to
                // it (as in Flume, which ends the cycle here). Live sinks draining another
                // channel still get their turn: ending the cycle would starve them.
                Ok(Status::Backoff) => {
                    nothing_to_take = true;
                    found_empty.push(i);
                }
                Err(e) => {
                    let failures = self.failed[i].map_or(1, |p| p.failures.saturating_add(1));
                    let penalty = doubling(failures, self.max_penalty);
                    self.failed[i] = Some(Penalty {
                        failures,
                        until: clock.now() + penalty,
                    });
                    tracing::warn!(group, sink = members[i].name(), error = %e, failures, retry_in_ms = penalty.as_millis() as u64, "failed sink is still failing");
                }
            }
        }
        while let Some(i) = self.active() {
            if found_empty
                .iter()
                .any(|&e| members[e].channel() == members[i].channel())
            {
                return Outcome::Backoff;
            }
            match members[i].process() {
                Ok(Status::Ready) => return Outcome::Ready,
                Ok(Status::Backoff) => return Outcome::Backoff,
                Err(e) => {
                    let penalty = doubling(1, self.max_penalty);
                    self.failed[i] = Some(Penalty {
                        failures: 1,
                        until: clock.now() + penalty,
                    });
                    let next = self.active().map_or("none", |n| members[n].name());
                    tracing::warn!(group, sink = members[i].name(), error = %e, retry_in_ms = penalty.as_millis() as u64, failover_to = next, "sink failed; moved to the failed set");
                }
            }
        }
        if nothing_to_take {
            // Every sink is failed, but the one tried merely found its channel empty.
            return Outcome::Backoff;
        }
        Outcome::Unavailable {
            next_retry: self.failed.iter().flatten().map(|p| p.until).min(),
        }
    }
}

impl LoadBalance {
    fn available(&self, i: usize, now: Instant) -> bool {
        !self.backoff || self.excluded[i].until.is_none_or(|t| t <= now)
    }

    /// Flume's OrderSelector: the n-th consecutive failure excludes the sink for
    /// `min(maxTimeOut, 1 s × 2ⁿ)`.
    fn exclude(&mut self, i: usize, now: Instant) -> Duration {
        let e = &mut self.excluded[i];
        let last_exclusion = doubling(e.failures, self.max_timeout);
        let consecutive = e
            .last_failure
            .is_some_and(|t| now.saturating_duration_since(t) < last_exclusion + CONSECUTIVE_GRACE);
        e.failures = if consecutive {
            (e.failures + 1).min(MAX_COUNTED_FAILURES)
        } else {
            1
        };
        e.last_failure = Some(now);
        let d = doubling(e.failures, self.max_timeout);
        e.until = Some(now + d);
        d
    }

    fn process<M: Member>(
        &mut self,
        group: &str,
        members: &mut [M],
        clock: &impl Clock,
    ) -> Outcome {
        let now = clock.now();
        let n = members.len();
        let mut order: Vec<usize> = match self.order {
            BalanceOrder::RoundRobin => (0..n).map(|k| (self.next + k) % n).collect(),
            BalanceOrder::Random => (0..n).collect(),
        };
        order.retain(|&i| self.available(i, now));
        match self.order {
            BalanceOrder::RoundRobin => {
                if let Some(&first) = order.first() {
                    self.next = (first + 1) % n;
                }
            }
            BalanceOrder::Random => self.rng.shuffle(&mut order),
        }
        for i in order {
            match members[i].process() {
                Ok(Status::Ready) => return Outcome::Ready,
                Ok(Status::Backoff) => return Outcome::Backoff,
                Err(e) => {
                    if self.backoff {
                        let d = self.exclude(i, clock.now());
                        tracing::warn!(group, sink = members[i].name(), error = %e, excluded_for_ms = d.as_millis() as u64, "sink failed; trying the next sink of the group");
                    } else {
                        tracing::warn!(group, sink = members[i].name(), error = %e, "sink failed; trying the next sink of the group");
                    }
                }
            }
        }
        Outcome::Unavailable {
            next_retry: if self.backoff {
                self.excluded.iter().filter_map(|e| e.until).min()
            } else {
                None
            },
        }
    }
}

/// Takes the members of every failover and load_balance group out of `runners`; what is left
/// (sinks in no group, or alone in a `default` group) runs on its own, as before.
pub fn assemble(
    groups: &[SinkGroupConfig],
    mut runners: Vec<SinkRunner>,
) -> anyhow::Result<(Vec<SinkGroup>, Vec<SinkRunner>)> {
    let mut out = Vec::new();
    for g in groups {
        if g.processor == ProcessorConfig::Default {
            continue;
        }
        let mut members = Vec::new();
        for name in &g.sinks {
            let at = runners
                .iter()
                .position(|r| &r.name == name)
                .with_context(|| format!("sink group {}: no sink {name}", g.name))?;
            members.push(runners.remove(at));
        }
        out.push(match &g.processor {
            ProcessorConfig::Failover(f) => SinkGroup::failover(&g.name, members, f, SystemClock),
            ProcessorConfig::LoadBalance(lb) => {
                SinkGroup::load_balance(&g.name, members, lb, SystemClock, fastrand::u64(..))
            }
            ProcessorConfig::Default => unreachable!("skipped above"),
        });
    }
    Ok((out, runners))
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::channel::Channel;
    use crate::channel::memory::MemoryChannel;
    use crate::config::MemoryChannelConfig;
    use crate::event::Event;
    use crate::sink::{Sink, SinkCounters};

    #[derive(Clone)]
    struct FakeClock(Rc<Cell<Instant>>);

    impl FakeClock {
        fn new() -> FakeClock {
            FakeClock(Rc::new(Cell::new(Instant::now())))
        }

        fn advance(&self, d: Duration) {
            self.0.set(self.0.get() + d);
        }
    }

    impl Clock for FakeClock {
        fn now(&self) -> Instant {
            self.0.get()
        }
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Does {
        Deliver,
        /// Nothing to take.
        Empty,
        Fail,
    }

    /// A sink that does what its test says and records, in a journal shared by the group,
    /// that it was driven.
    struct Fake {
        name: &'static str,
        channel: &'static str,
        does: Does,
        journal: Rc<RefCell<Vec<&'static str>>>,
        closed: bool,
    }

    impl Member for Fake {
        fn name(&self) -> &str {
            self.name
        }

        fn channel(&self) -> &str {
            self.channel
        }

        fn process(&mut self) -> Result<Status, CycleError> {
            self.journal.borrow_mut().push(self.name);
            match self.does {
                Does::Deliver => Ok(Status::Ready),
                Does::Empty => Ok(Status::Backoff),
                Does::Fail => Err(CycleError::Deliver(anyhow::anyhow!(
                    "{} cannot write",
                    self.name
                ))),
            }
        }

        fn close(&mut self) {
            self.closed = true;
        }
    }

    type Group = SinkGroup<Fake, FakeClock>;

    struct Harness {
        group: Group,
        clock: FakeClock,
        journal: Rc<RefCell<Vec<&'static str>>>,
    }

    impl Harness {
        fn members(names: &[&'static str]) -> (Vec<Fake>, Rc<RefCell<Vec<&'static str>>>) {
            let journal = Rc::new(RefCell::new(Vec::new()));
            let members = names
                .iter()
                .map(|&name| Fake {
                    name,
                    channel: "c1",
                    does: Does::Deliver,
                    journal: journal.clone(),
                    closed: false,
                })
                .collect();
            (members, journal)
        }

        fn failover(priorities: &[(&'static str, i32)], max_penalty: Duration) -> Harness {
            let names: Vec<&'static str> = priorities.iter().map(|(n, _)| *n).collect();
            let (members, journal) = Harness::members(&names);
            let clock = FakeClock::new();
            let config = FailoverConfig {
                priorities: priorities
                    .iter()
                    .map(|(n, p)| (n.to_string(), *p))
                    .collect(),
                max_penalty,
            };
            Harness {
                group: SinkGroup::failover("g", members, &config, clock.clone()),
                clock,
                journal,
            }
        }

        fn load_balance(names: &[&'static str], order: BalanceOrder, backoff: bool) -> Harness {
            let (members, journal) = Harness::members(names);
            let clock = FakeClock::new();
            let config = LoadBalanceConfig {
                order,
                backoff,
                max_timeout: Duration::from_secs(30),
            };
            Harness {
                group: SinkGroup::load_balance("g", members, &config, clock.clone(), 7),
                clock,
                journal,
            }
        }

        fn member(&mut self, name: &str) -> &mut Fake {
            let m = self.group.members_mut().iter_mut().find(|m| m.name == name);
            m.unwrap_or_else(|| panic!("no member {name}"))
        }

        fn set(&mut self, name: &str, does: Does) {
            self.member(name).does = does;
        }

        /// One cycle: its outcome and the sinks it drove, in order.
        fn cycle(&mut self) -> (Outcome, Vec<&'static str>) {
            let outcome = self.group.process();
            (outcome, self.journal.borrow_mut().drain(..).collect())
        }

        /// The sinks driven over `n` cycles, which must all deliver.
        fn cycles(&mut self, n: usize) -> Vec<&'static str> {
            let mut all = Vec::new();
            for _ in 0..n {
                let (outcome, drove) = self.cycle();
                assert_eq!(outcome, Outcome::Ready, "drove {drove:?}");
                all.extend(drove);
            }
            all
        }
    }

    const MS: Duration = Duration::from_millis(1);
    const S: Duration = Duration::from_secs(1);

    #[test]
    fn failover_drives_the_highest_priority_sink() {
        let mut h = Harness::failover(&[("k1", 5), ("k2", 10), ("k3", -1)], 30 * S);
        assert_eq!(h.cycles(3), ["k2", "k2", "k2"]);
        h.set("k2", Does::Empty);
        assert_eq!(h.cycle(), (Outcome::Backoff, vec!["k2"]));
        assert_eq!(
            h.cycle(),
            (Outcome::Backoff, vec!["k2"]),
            "empty is no failure"
        );
    }

    #[test]
    fn failover_moves_on_in_the_same_cycle_and_returns_after_the_penalty() {
        let mut h = Harness::failover(&[("k1", 5), ("k2", 10)], 30 * S);
        h.set("k2", Does::Fail);
        assert_eq!(h.cycle(), (Outcome::Ready, vec!["k2", "k1"]));
        assert_eq!(h.cycles(2), ["k1", "k1"], "k2 waits out its penalty");
        h.clock.advance(2 * S - MS);
        assert_eq!(h.cycles(1), ["k1"]);
        h.clock.advance(MS);
        // Retried first; still failing: a longer penalty, and k1 delivers in the same cycle.
        assert_eq!(h.cycle(), (Outcome::Ready, vec!["k2", "k1"]));
        h.clock.advance(4 * S);
        h.set("k2", Does::Empty);
        // Nothing to take proves nothing: k2 stays failed. k1 drains the same channel, so it
        // would find nothing either: the cycle ends, and the next batch goes to k2.
        assert_eq!(h.cycle(), (Outcome::Backoff, vec!["k2"]));
        assert_eq!(h.cycle(), (Outcome::Backoff, vec!["k2"]));
        h.set("k2", Does::Deliver);
        assert_eq!(h.cycle(), (Outcome::Ready, vec!["k2"]), "recovered");
        assert_eq!(h.cycles(2), ["k2", "k2"], "and active again");
    }

    /// A due sink whose own channel is empty does not starve a live sink draining another one.
    #[test]
    fn failover_live_sink_of_another_channel_gets_its_turn_while_a_due_one_finds_nothing() {
        let mut h = Harness::failover(&[("k1", 5), ("k2", 10)], 30 * S);
        h.member("k1").channel = "c2";
        h.set("k2", Does::Fail);
        assert_eq!(h.cycle(), (Outcome::Ready, vec!["k2", "k1"]));
        h.clock.advance(2 * S);
        h.set("k2", Does::Empty);
        assert_eq!(h.cycle(), (Outcome::Ready, vec!["k2", "k1"]));
        assert_eq!(h.cycle(), (Outcome::Ready, vec!["k2", "k1"]));
        h.set("k2", Does::Deliver);
        assert_eq!(h.cycle(), (Outcome::Ready, vec!["k2"]), "recovered");
    }

    #[test]
    fn failover_penalty_doubles_per_consecutive_failure_up_to_maxpenalty() {
        let mut h = Harness::failover(&[("k1", 1), ("k2", 2)], 10 * S);
        h.set("k2", Does::Fail);
        assert_eq!(h.cycle(), (Outcome::Ready, vec!["k2", "k1"]));
        for penalty in [2 * S, 4 * S, 8 * S, 10 * S, 10 * S] {
            h.clock.advance(penalty - MS);
            assert_eq!(h.cycles(1), ["k1"], "k2 retried before {penalty:?}");
            h.clock.advance(MS);
            assert_eq!(h.cycles(1), ["k2", "k1"], "k2 not retried at {penalty:?}");
        }
        // A success resets the count: the next failure costs the first penalty again.
        h.clock.advance(10 * S);
        h.set("k2", Does::Deliver);
        assert_eq!(h.cycles(1), ["k2"]);
        h.set("k2", Does::Fail);
        assert_eq!(h.cycles(1), ["k2", "k1"]);
        h.clock.advance(2 * S);
        assert_eq!(h.cycles(1), ["k2", "k1"]);
    }

    #[test]
    fn failover_with_every_sink_failing_waits_for_the_first_penalty_to_end() {
        let mut h = Harness::failover(&[("k1", 1), ("k2", 2)], 30 * S);
        h.set("k1", Does::Fail);
        h.set("k2", Does::Fail);
        let start = h.clock.now();
        assert_eq!(
            h.cycle(),
            (
                Outcome::Unavailable {
                    next_retry: Some(start + 2 * S)
                },
                vec!["k2", "k1"]
            )
        );
        // Nothing is driven until a penalty ends.
        assert_eq!(h.cycle().1, Vec::<&str>::new());
        h.clock.advance(2 * S);
        // An empty channel is no news: not a failure, and no cause for alarm.
        h.set("k2", Does::Empty);
        assert_eq!(h.cycle(), (Outcome::Backoff, vec!["k2", "k1"]));
        h.set("k2", Does::Fail);
        h.clock.advance(4 * S);
        h.set("k1", Does::Deliver);
        assert_eq!(h.cycle(), (Outcome::Ready, vec!["k2", "k1"]));
        assert_eq!(h.cycles(2), ["k1", "k1"]);
    }

    #[test]
    fn round_robin_takes_turns_and_moves_past_a_failing_sink_within_the_cycle() {
        let mut h = Harness::load_balance(&["k1", "k2", "k3"], BalanceOrder::RoundRobin, false);
        assert_eq!(h.cycles(6), ["k1", "k2", "k3", "k1", "k2", "k3"]);
        h.set("k2", Does::Fail);
        // Without backoff k2 is tried at its every turn, and k3 delivers in the same cycle.
        assert_eq!(
            h.cycles(6),
            ["k1", "k2", "k3", "k3", "k1", "k2", "k3", "k3"]
        );
        h.set("k1", Does::Fail);
        h.set("k3", Does::Fail);
        assert_eq!(
            h.cycle().0,
            Outcome::Unavailable { next_retry: None },
            "every sink failed"
        );
    }

    #[test]
    fn round_robin_backoff_excludes_a_failing_sink_for_a_growing_time() {
        let mut h = Harness::load_balance(&["k1", "k2", "k3"], BalanceOrder::RoundRobin, true);
        assert_eq!(h.cycles(1), ["k1"]);
        h.set("k2", Does::Fail);
        assert_eq!(h.cycles(1), ["k2", "k3"]);
        let excluded = h.cycles(20);
        assert!(!excluded.contains(&"k2"), "{excluded:?}");
        assert_eq!(excluded.iter().filter(|k| **k == "k1").count(), 10);
        // The first exclusion is 2 s; a failure at the retry doubles it.
        h.clock.advance(2 * S - MS);
        assert!(!h.cycles(4).contains(&"k2"));
        h.clock.advance(MS);
        assert!(h.cycles(3).contains(&"k2"), "retried after 2 s");
        h.clock.advance(4 * S - MS);
        assert!(!h.cycles(4).contains(&"k2"), "excluded for 4 s now");
        h.clock.advance(MS);
        h.set("k2", Does::Deliver);
        assert_eq!(h.cycles(6).iter().filter(|k| **k == "k2").count(), 2);
        // Every sink excluded: the group says when the first may be tried again.
        for k in ["k1", "k2", "k3"] {
            h.set(k, Does::Fail);
        }
        let (outcome, _) = h.cycle();
        assert_eq!(
            outcome,
            Outcome::Unavailable {
                next_retry: Some(h.clock.now() + 2 * S)
            }
        );
        assert_eq!(h.cycle().1, Vec::<&str>::new(), "none is tried");
    }

    #[test]
    fn load_balance_backoff_count_starts_over_after_a_quiet_spell() {
        let mut h = Harness::load_balance(&["k1", "k2"], BalanceOrder::RoundRobin, true);
        h.set("k1", Does::Fail);
        assert_eq!(h.cycles(1), ["k1", "k2"], "first failure: 2 s");
        h.clock.advance(2 * S);
        assert_eq!(h.cycles(2), ["k2", "k1", "k2"], "second failure: 4 s");
        h.clock.advance(4 * S - MS);
        assert!(!h.cycles(2).contains(&"k1"));
        h.clock.advance(MS);
        h.set("k1", Does::Deliver);
        assert!(h.cycles(2).contains(&"k1"));
        // Failing again more than the last exclusion + 2 s after the last failure is a fresh
        // failure: 2 s, not 8 s.
        h.clock.advance(10 * S);
        h.set("k1", Does::Fail);
        let drove = h.cycles(2);
        assert_eq!(drove.iter().filter(|k| **k == "k1").count(), 1, "{drove:?}");
        h.clock.advance(2 * S);
        assert!(h.cycles(2).contains(&"k1"));
    }

    #[test]
    fn random_order_spreads_load_and_selects_only_live_sinks() {
        let mut h = Harness::load_balance(&["k1", "k2", "k3"], BalanceOrder::Random, true);
        let drove = h.cycles(300);
        for k in ["k1", "k2", "k3"] {
            let n = drove.iter().filter(|d| **d == k).count();
            assert!(n > 60, "{k} driven {n} times in 300 cycles");
        }
        h.set("k2", Does::Fail);
        // Until k2 is drawn and fails; then it is excluded.
        let mut first = Vec::new();
        while !first.contains(&"k2") {
            first.extend(h.cycles(1));
        }
        let drove = h.cycles(300);
        assert!(!drove.contains(&"k2"), "an excluded sink was selected");
        for k in ["k1", "k3"] {
            let n = drove.iter().filter(|d| **d == k).count();
            assert!(n > 90, "{k} driven {n} times in 300 cycles");
        }
    }

    /// A fake that sets the stop flag on its `stop_at`-th cycle and records its close.
    struct Stopper {
        fake: Fake,
        stop_at: usize,
        stop: StopFlag,
        closed: Rc<RefCell<Vec<&'static str>>>,
    }

    impl Member for Stopper {
        fn name(&self) -> &str {
            self.fake.name
        }

        fn channel(&self) -> &str {
            self.fake.channel
        }

        fn process(&mut self) -> Result<Status, CycleError> {
            let r = self.fake.process();
            if self.fake.journal.borrow().len() == self.stop_at {
                self.stop.set();
            }
            r
        }

        fn close(&mut self) {
            self.closed.borrow_mut().push(self.fake.name);
        }
    }

    #[test]
    fn run_drives_until_stopped_then_closes_every_sink() {
        let (fakes, journal) = Harness::members(&["k1", "k2"]);
        let stop: StopFlag = crate::stop::Stop::new();
        let closed = Rc::new(RefCell::new(Vec::new()));
        let members = fakes
            .into_iter()
            .map(|fake| Stopper {
                fake,
                stop_at: 5,
                stop: stop.clone(),
                closed: closed.clone(),
            })
            .collect();
        let config = LoadBalanceConfig {
            order: BalanceOrder::RoundRobin,
            backoff: false,
            max_timeout: 30 * S,
        };
        SinkGroup::load_balance("g", members, &config, FakeClock::new(), 1).run(stop);
        assert_eq!(*journal.borrow(), ["k1", "k2", "k1", "k2", "k1"]);
        assert_eq!(*closed.borrow(), ["k1", "k2"]);
    }

    /// A sink whose destination is down.
    struct Broken;

    impl Sink for Broken {
        fn deliver(&mut self, _events: &[(u64, Event)]) -> anyhow::Result<()> {
            anyhow::bail!("destination down")
        }
    }

    #[test]
    fn real_sinks_roll_back_and_the_next_sink_delivers_the_same_events() {
        let channel: Arc<dyn Channel> = Arc::new(MemoryChannel::new(
            "c1",
            &MemoryChannelConfig {
                capacity: 100,
                transaction_capacity: 100,
                keep_alive: Duration::from_millis(10),
                byte_capacity: None,
            },
        ));
        let runner = |name: &str, sink: Box<dyn Sink>| SinkRunner {
            name: name.to_owned(),
            sink,
            channel: channel.clone(),
            batch_size: 10,
            counters: Arc::new(SinkCounters::default()),
            stop: crate::stop::Stop::new(),
        };
        let k1 = runner("k1", Box::new(Broken));
        let k2 = runner("k2", Box::new(crate::sink::null::NullSink));
        let (c1, c2) = (k1.counters.clone(), k2.counters.clone());
        let config = FailoverConfig {
            priorities: vec![("k1".into(), 10), ("k2".into(), 5)],
            max_penalty: 30 * S,
        };
        let mut group = SinkGroup::failover("g", vec![k1, k2], &config, SystemClock);
        channel
            .put((0..3).map(|i| Event::new(format!("e{i}"))).collect())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(group.process(), Outcome::Ready);
        assert_eq!(c1.rollbacks.load(Ordering::Relaxed), 1);
        assert_eq!(c1.drain_success.load(Ordering::Relaxed), 0);
        assert_eq!(c2.drain_success.load(Ordering::Relaxed), 3);
        assert_eq!(channel.stats().size, 0);
        // The channel is empty now: the next cycle drives k2 (k1 is penalised) and backs off.
        assert_eq!(group.process(), Outcome::Backoff);
        assert_eq!(c2.batch_empty.load(Ordering::Relaxed), 1);
    }
}
