//! The bounded in-memory channel: Flume's memory channel, with the same transaction semantics
//! as the file channel and no durability.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::refusals::RefusalLog;
use super::{
    Channel, ChannelCounters, ChannelError, ChannelStats, Returned, Taken, check_transaction,
};
use crate::config::MemoryChannelConfig;
use crate::event::Event;
use crate::stop::Stop;

pub struct MemoryChannel {
    name: String,
    config: MemoryChannelConfig,
    state: Mutex<State>,
    /// Signalled on every change of the queue: a put (for takers), a commit (for putters).
    changed: Condvar,
    counters: ChannelCounters,
    full: RefusalLog,
}

#[derive(Default)]
struct State {
    /// Events ready to take, with their sequence numbers, oldest first.
    queue: VecDeque<(u64, Event)>,
    /// Events taken but not committed, per batch (keyed by first sequence number): they still
    /// count against capacity, as in Flume.
    in_flight: BTreeMap<u64, (usize, u64)>,
    held: usize,
    held_bytes: u64,
    next_seq: u64,
}

impl MemoryChannel {
    pub fn new(name: &str, config: &MemoryChannelConfig) -> MemoryChannel {
        MemoryChannel {
            name: name.to_owned(),
            config: config.clone(),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            counters: ChannelCounters::default(),
            full: RefusalLog::channel_full(),
        }
    }
}

fn body_bytes(events: &[Event]) -> u64 {
    events.iter().map(|e| e.body.len() as u64).sum()
}

impl Channel for MemoryChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn keep_alive(&self) -> Duration {
        self.config.keep_alive
    }

    fn put_waiting(&self, events: Vec<Event>, wait: Duration) -> Result<(), ChannelError> {
        if events.is_empty() {
            return Ok(());
        }
        check_transaction(&self.name, events.len(), self.config.transaction_capacity)?;
        ChannelCounters::add(&self.counters.put_attempt, events.len());
        let bytes = body_bytes(&events);
        if let Some(cap) = self.config.byte_capacity
            && bytes > cap
        {
            return Err(ChannelError::Unstorable {
                channel: self.name.clone(),
                reason: format!(
                    "a put of {} events with {bytes} bytes of bodies can never fit in byteCapacity {cap}",
                    events.len()
                ),
                events: Returned(events),
            });
        }
        let deadline = Instant::now() + wait;
        let mut st = self.state.lock();
        loop {
            let events_fit = st.held + events.len() <= self.config.capacity;
            let bytes_fit = self
                .config
                .byte_capacity
                .is_none_or(|cap| st.held_bytes + bytes <= cap);
            if events_fit && bytes_fit {
                break;
            }
            if self.changed.wait_until(&mut st, deadline).timed_out() {
                drop(st);
                ChannelCounters::add(&self.counters.full, 1);
                let reason = if events_fit {
                    format!(
                        "byteCapacity {} reached",
                        self.config.byte_capacity.unwrap_or(0)
                    )
                } else {
                    format!("capacity of {} events reached", self.config.capacity)
                };
                self.full.refused(&self.name, &reason, Instant::now());
                return Err(ChannelError::Full {
                    channel: self.name.clone(),
                    reason,
                });
            }
        }
        let n = events.len();
        st.held += n;
        st.held_bytes += bytes;
        for e in events {
            let seq = st.next_seq;
            st.next_seq += 1;
            st.queue.push_back((seq, e));
        }
        ChannelCounters::add(&self.counters.put_success, n);
        drop(st);
        self.changed.notify_all();
        Ok(())
    }

    fn take_waiting(
        &self,
        max: usize,
        wait: Duration,
        stop: Option<&Stop>,
    ) -> Result<Taken, ChannelError> {
        check_transaction(&self.name, max, self.config.transaction_capacity)?;
        let deadline = Instant::now() + wait;
        let mut st = self.state.lock();
        while st.queue.is_empty() && !stop.is_some_and(Stop::is_set) {
            if self.changed.wait_until(&mut st, deadline).timed_out() {
                break;
            }
        }
        let n = max.min(st.queue.len());
        let events: Vec<(u64, Event)> = st.queue.drain(..n).collect();
        if let Some((first, _)) = events.first() {
            let bytes = events.iter().map(|(_, e)| e.body.len() as u64).sum();
            st.in_flight.insert(*first, (events.len(), bytes));
        }
        self.counters.took(events.len(), max);
        Ok(Taken {
            events,
            start: None,
        })
    }

    fn commit(&self, taken: Taken) -> Result<(), ChannelError> {
        let mut st = self.state.lock();
        if let Some((n, bytes)) = st.in_flight.remove(&taken.key()) {
            st.held -= n;
            st.held_bytes -= bytes;
            ChannelCounters::add(&self.counters.take_success, n);
        }
        drop(st);
        self.changed.notify_all();
        Ok(())
    }

    fn rollback(&self, taken: Taken) {
        if taken.is_empty() {
            return;
        }
        ChannelCounters::add(&self.counters.rollbacks, 1);
        let mut st = self.state.lock();
        st.in_flight.remove(&taken.key());
        // Back in front of anything newer, keeping sequence order.
        let at = st.queue.partition_point(|(seq, _)| *seq < taken.key());
        for (i, ev) in taken.events.into_iter().enumerate() {
            st.queue.insert(at + i, ev);
        }
        // The events still count: they are held again, not in flight.
        drop(st);
        self.changed.notify_all();
    }

    fn wake_takers(&self) {
        drop(self.state.lock());
        self.changed.notify_all();
    }

    fn counters(&self) -> &ChannelCounters {
        &self.counters
    }

    fn stats(&self) -> ChannelStats {
        let st = self.state.lock();
        ChannelStats {
            size: st.held as u64,
            capacity: self.config.capacity as u64,
            log_bytes: None,
            disk_bytes: None,
            on_disk: false,
        }
    }

    fn transaction_capacity(&self) -> usize {
        self.config.transaction_capacity
    }

    fn storable_size(&self, event: &Event) -> Result<u64, String> {
        let bytes = event.body.len() as u64;
        match self.config.byte_capacity {
            Some(cap) if bytes > cap => Err(format!(
                "an event body of {bytes} bytes can never fit in byteCapacity {cap}"
            )),
            _ => Ok(bytes),
        }
    }

    fn transaction_byte_limit(&self) -> Option<u64> {
        self.config.byte_capacity
    }
}
