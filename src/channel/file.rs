//! The durable channel: Flume's file channel over the write-ahead log.
//!
//! A put transaction is one log frame, appended and committed (synced) before `put` returns. All
//! takers share one log consumer; the channel tracks which taken batches are in flight, and the
//! consumer's durable checkpoint is the start of the oldest batch not yet committed. A crash
//! therefore redelivers at most the batches in flight, never loses a committed put, and the
//! restart cost is the log's, independent of the backlog.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::refusals::RefusalLog;
use super::{
    Channel, ChannelCounters, ChannelError, ChannelStats, Returned, Taken, check_transaction,
};
use crate::config::FileChannelConfig;
use crate::event::Event;
use crate::stop::Stop;
use crate::wal::frame::{self, FRAME_HEADER_LEN};
use crate::wal::{Position, Reader, SyncPolicy, Wal, WalError, WalOptions};

/// The log consumer that stands for all the channel's takers.
const CONSUMER: &str = "channel";

pub struct FileChannel {
    name: String,
    wal: Wal,
    capacity: u64,
    transaction_capacity: usize,
    keep_alive: Duration,
    takes: Mutex<TakeState>,
    /// Signalled when a put commits (takers wait on it with `takes`).
    arrived: Condvar,
    /// Under interval syncs, how often committed events become visible to takers without a
    /// put's signal (the sync thread makes them so): takers look again that often.
    visible_every: Option<Duration>,
    /// Signalled when a take commits and frees room (putters wait on it).
    room: (Mutex<()>, Condvar),
    counters: ChannelCounters,
    /// Puts refused for want of disk space, and for want of room under `capacity`.
    disk_full: RefusalLog,
    full: RefusalLog,
    /// Puts the log failed to store (I/O errors).
    write_failed: RefusalLog,
}

struct TakeState {
    reader: Reader,
    /// Rolled-back batches, oldest first: handed out again before anything new.
    redeliver: VecDeque<Taken>,
    /// Start of each batch in flight, keyed by its first offset.
    in_flight: BTreeMap<u64, Position>,
}

impl FileChannel {
    pub fn open(name: &str, config: &FileChannelConfig) -> Result<FileChannel, ChannelError> {
        let storage = |error: WalError| ChannelError::Storage {
            channel: name.to_owned(),
            error,
        };
        let wal = Wal::open(
            &config.data_dir,
            WalOptions {
                segment_size: config.segment_size,
                checkpoint_dir: Some(config.checkpoint_dir.clone()),
                sync: config.sync,
                max_bytes: config.byte_capacity,
                max_events: Some(config.capacity),
                min_free_bytes: config.minimum_required_space,
                on_corruption: config.on_corruption,
                ..Default::default()
            },
        )
        .map_err(storage)?;
        let reader = wal.reader(CONSUMER).map_err(storage)?;
        Ok(FileChannel {
            name: name.to_owned(),
            wal,
            capacity: config.capacity,
            transaction_capacity: config.transaction_capacity,
            keep_alive: config.keep_alive,
            takes: Mutex::new(TakeState {
                reader,
                redeliver: VecDeque::new(),
                in_flight: BTreeMap::new(),
            }),
            arrived: Condvar::new(),
            visible_every: match config.sync {
                SyncPolicy::Interval(every) => Some(every),
                SyncPolicy::EveryCommit => None,
            },
            room: (Mutex::new(()), Condvar::new()),
            counters: ChannelCounters::default(),
            disk_full: RefusalLog::disk_full(),
            full: RefusalLog::channel_full(),
            write_failed: RefusalLog::write_failed(),
        })
    }

    pub fn wal(&self) -> &Wal {
        &self.wal
    }

    fn storage(&self, error: WalError) -> ChannelError {
        ChannelError::Storage {
            channel: self.name.clone(),
            error,
        }
    }

    /// The error of a put the log could not store, logged for the operator (its client hears
    /// of it, but the cause is on this machine).
    fn put_failed(&self, error: WalError, events: usize) -> ChannelError {
        self.counters
            .storage_failed(&self.counters.put_errors, events);
        let e = self.storage(error);
        self.write_failed.refused(&self.name, &e, Instant::now());
        e
    }

    /// A put of `n` events refused for want of room was counted as `n` attempts; Flume's file
    /// channel counts its events one by one and stops at the first with no room, so only the
    /// events that fit under `capacity` and the one after them count.
    fn count_refused_attempts(&self, n: usize) {
        let room = self.capacity.saturating_sub(self.wal.stats().held_events);
        let attempted = (n as u64).min(room + 1);
        self.counters
            .put_attempt
            .fetch_sub(n as u64 - attempted, std::sync::atomic::Ordering::Relaxed);
    }

    /// Hands out the oldest rolled-back batch (or its first `max` events), else new events.
    fn take_now(&self, st: &mut TakeState, max: usize) -> Result<Taken, ChannelError> {
        if let Some(mut batch) = st.redeliver.pop_front() {
            if batch.events.len() > max {
                let rest_events = batch.events.split_off(max);
                let rest_start = batch.start.map(|p| Position {
                    offset: rest_events[0].0,
                    ..p
                });
                st.redeliver.push_front(Taken {
                    events: rest_events,
                    start: rest_start,
                });
            }
            if let Some(start) = batch.start {
                st.in_flight.insert(batch.key(), start);
            }
            return Ok(batch);
        }
        let start = st.reader.position();
        let events = st.reader.read(max).map_err(|e| {
            self.counters.storage_failed(&self.counters.take_errors, 1);
            self.storage(e)
        })?;
        if !events.is_empty() {
            st.in_flight.insert(events[0].0, start);
        }
        Ok(Taken {
            events,
            start: Some(start),
        })
    }
}

impl Channel for FileChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn keep_alive(&self) -> Duration {
        self.keep_alive
    }

    fn put_waiting(&self, events: Vec<Event>, wait: Duration) -> Result<(), ChannelError> {
        if events.is_empty() {
            return Ok(());
        }
        check_transaction(&self.name, events.len(), self.transaction_capacity)?;
        ChannelCounters::add(&self.counters.put_attempt, events.len());
        let deadline = Instant::now() + wait;
        loop {
            match self.wal.append(&events) {
                Ok(_) => break,
                Err(e) if e.is_full() => {
                    let now = Instant::now();
                    if now >= deadline {
                        ChannelCounters::add(&self.counters.full, 1);
                        self.count_refused_attempts(events.len());
                        let log = if e.is_disk_full() {
                            &self.disk_full
                        } else {
                            &self.full
                        };
                        log.refused(&self.name, &e, now);
                        return Err(ChannelError::Full {
                            channel: self.name.clone(),
                            reason: e.to_string(),
                        });
                    }
                    // Bounded waits: a take committing between our append and the wait would
                    // otherwise be missed until the deadline.
                    let mut guard = self.room.0.lock();
                    self.room
                        .1
                        .wait_for(&mut guard, (deadline - now).min(Duration::from_millis(10)));
                }
                Err(e @ (WalError::TooLarge { .. } | WalError::Encode(_))) => {
                    return Err(ChannelError::Unstorable {
                        channel: self.name.clone(),
                        reason: e.to_string(),
                        events: Returned(events),
                    });
                }
                Err(e) => return Err(self.put_failed(e, events.len())),
            }
        }
        self.wal
            .commit()
            .map_err(|e| self.put_failed(e, events.len()))?;
        self.counters.stored();
        ChannelCounters::add(&self.counters.put_success, events.len());
        self.wake_takers();
        Ok(())
    }

    fn take_waiting(
        &self,
        max: usize,
        wait: Duration,
        stop: Option<&Stop>,
    ) -> Result<Taken, ChannelError> {
        check_transaction(&self.name, max, self.transaction_capacity)?;
        let deadline = Instant::now() + wait;
        let mut st = self.takes.lock();
        loop {
            let taken = self.take_now(&mut st, max)?;
            let now = Instant::now();
            if !taken.is_empty() || now >= deadline || stop.is_some_and(Stop::is_set) {
                self.counters.took(taken.len(), max);
                return Ok(taken);
            }
            let mut wait = deadline - now;
            if let Some(every) = self.visible_every {
                wait = wait.min(every.max(Duration::from_millis(1)));
            }
            self.arrived.wait_for(&mut st, wait);
        }
    }

    fn commit(&self, taken: Taken) -> Result<(), ChannelError> {
        self.commit_all(vec![taken])
    }

    fn commit_all(&self, takes: Vec<Taken>) -> Result<(), ChannelError> {
        let takes: Vec<Taken> = takes.into_iter().filter(|t| !t.is_empty()).collect();
        if takes.is_empty() {
            return Ok(());
        }
        let ack = {
            let mut st = self.takes.lock();
            for taken in &takes {
                st.in_flight.remove(&taken.key());
            }
            // Everything before the oldest batch still out (or back for redelivery) is done.
            let oldest_out = st.in_flight.values().copied().min();
            let oldest_back = st.redeliver.front().and_then(|b| b.start);
            oldest_out
                .into_iter()
                .chain(oldest_back)
                .min()
                .unwrap_or_else(|| st.reader.position())
        };
        let events = takes.iter().map(|t| t.events.len()).sum();
        // The events go before the ack: their bodies may be views into a segment the ack
        // retires, and a segment still referenced can only be deleted, not kept as a spare
        // (reusing spares makes the source's syncs faster, see wal `spare_segments`).
        drop(takes);
        self.wal.ack(CONSUMER, ack).map_err(|e| {
            self.counters
                .storage_failed(&self.counters.checkpoint_errors, 1);
            self.storage(e)
        })?;
        self.counters.stored();
        ChannelCounters::add(&self.counters.take_success, events);
        self.room.1.notify_all();
        Ok(())
    }

    fn rollback(&self, taken: Taken) {
        if taken.is_empty() {
            return;
        }
        ChannelCounters::add(&self.counters.rollbacks, 1);
        let mut st = self.takes.lock();
        st.in_flight.remove(&taken.key());
        let at = st.redeliver.partition_point(|b| b.key() < taken.key());
        st.redeliver.insert(at, taken);
        drop(st);
        self.arrived.notify_all();
    }

    fn wake_takers(&self) {
        // Under the takers' lock: a taker that found nothing is then already waiting, so the
        // signal is not lost (puts commit without that lock).
        drop(self.takes.lock());
        self.arrived.notify_all();
    }

    fn counters(&self) -> &ChannelCounters {
        &self.counters
    }

    fn stats(&self) -> ChannelStats {
        let s = self.wal.stats();
        ChannelStats {
            size: s.held_events,
            capacity: self.capacity,
            log_bytes: Some(s.held_bytes),
            disk_bytes: Some(s.disk_bytes),
            on_disk: true,
        }
    }

    fn transaction_capacity(&self) -> usize {
        self.transaction_capacity
    }

    /// An event's encoded length in a frame; an event too large for the byte capacity even
    /// alone in its frame, or one the frame format cannot encode, is refused.
    fn storable_size(&self, event: &Event) -> Result<u64, String> {
        let len = frame::encoded_event_len(event)
            .map_err(|e| format!("cannot store an event: {e}"))? as u64;
        match self.wal.options().max_bytes {
            Some(max) if len + FRAME_HEADER_LEN as u64 > max => Err(format!(
                "an event of {len} bytes (encoded, {FRAME_HEADER_LEN} more for its frame) can \
                 never fit in byteCapacity {max}"
            )),
            _ => Ok(len),
        }
    }

    /// The byte capacity less one frame header: what the events of one frame may take.
    fn transaction_byte_limit(&self) -> Option<u64> {
        self.wal
            .options()
            .max_bytes
            .map(|max| max.saturating_sub(FRAME_HEADER_LEN as u64))
    }
}
