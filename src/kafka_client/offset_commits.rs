//! Offset commits that a broker which stopped answering cannot hold up for long.
//!
//! The Kafka source commits a batch's offsets once the channel holds it, and the Kafka channel
//! commits a take's offsets once its sink delivered it. librdkafka's synchronous commit returns
//! when the group coordinator answers: with the broker frozen or gone that took 94 to 319 s
//! (audit 36), and the agent's stop waited all that time, logging nothing. An asynchronous
//! commit reports back through the consumer's poll, which both use to fetch records, so its
//! answer would come mixed in with them. So a thread of its own per consumer makes the
//! synchronous calls, and the caller waits for an answer only [`PATIENCE`] long.
//!
//! Giving up loses nothing: the records a commit covers are already in the channel (source)
//! or delivered (channel), and a commit that never lands only means they come again after a
//! restart or a rebalance, as with a failed commit. The commit itself goes on, and its outcome
//! is logged when it comes. Commits queued behind one the broker has not answered are merged
//! (the highest offset of each partition), so the broker gets one commit when it is back.
//!
//! The thread holds the consumer only while it commits: otherwise the owner's drop is the
//! last, and closes the consumer (leaving the group) on the owner's thread as before. When the
//! owner lets go while a commit is stuck, the thread still sends the commits queued behind it
//! once it returns (merged, as above: they were asked for, and landing them spares the
//! duplicates), and then closes the consumer, so the stop does not wait for either.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Weak};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

/// How long a caller waits for the broker to answer an offset commit.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// What became of an offset commit.
#[derive(Debug)]
pub enum Committed {
    /// The broker answered (an error only means the records may come again).
    Answered(KafkaResult<()>),
    /// No answer within the time given: the commit goes on without the caller.
    Unanswered,
}

struct Request {
    offsets: Vec<(String, i32, i64)>,
    answer: SyncSender<KafkaResult<()>>,
}

/// A consumer with its committing thread. Derefs to the consumer for everything else.
pub struct CommittingConsumer<C: ConsumerContext + 'static> {
    consumer: Arc<BaseConsumer<C>>,
    requests: Sender<Request>,
}

impl<C: ConsumerContext + 'static> CommittingConsumer<C> {
    /// Starts the committing thread of `consumer`, which belongs to `owner` (for the log).
    pub fn new(consumer: BaseConsumer<C>, owner: &str) -> std::io::Result<Self> {
        let consumer = Arc::new(consumer);
        let (requests, queue) = mpsc::channel();
        let weak = Arc::downgrade(&consumer);
        let owner = owner.to_owned();
        std::thread::Builder::new()
            .name(format!("kafka-commit-{owner}"))
            .spawn(move || commit_loop(&weak, &queue, &owner))?;
        Ok(CommittingConsumer { consumer, requests })
    }

    /// Commits `offsets` (topic, partition, next offset to read), waiting for the broker's
    /// answer up to `patience`.
    pub fn commit_offsets(
        &self,
        offsets: Vec<(String, i32, i64)>,
        patience: Duration,
    ) -> Committed {
        // Without the thread (it panicked) nothing was committed.
        let no_thread =
            || Committed::Answered(Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::Fail)));
        let (answer, answered) = mpsc::sync_channel(1);
        if self.requests.send(Request { offsets, answer }).is_err() {
            return no_thread();
        }
        match answered.recv_timeout(patience) {
            Ok(result) => Committed::Answered(result),
            Err(RecvTimeoutError::Timeout) => Committed::Unanswered,
            Err(RecvTimeoutError::Disconnected) => no_thread(),
        }
    }
}

impl<C: ConsumerContext + 'static> Deref for CommittingConsumer<C> {
    type Target = BaseConsumer<C>;

    fn deref(&self) -> &BaseConsumer<C> {
        &self.consumer
    }
}

fn commit_loop<C: ConsumerContext + 'static>(
    consumer: &Weak<BaseConsumer<C>>,
    queue: &Receiver<Request>,
    owner: &str,
) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        // Queued while the previous commit waited: one commit covers them all.
        batch.extend(queue.try_iter());
        let Some(consumer) = consumer.upgrade() else {
            // The owner closed the consumer between asking and this thread's turn.
            let next = merged(&batch);
            tracing::warn!(
                owner, offsets = ?next,
                "kafka: offset commit not sent: the consumer was closed first; those records may be delivered again"
            );
            return;
        };
        // Held until no commit is queued, so that those asked for while one was stuck are
        // sent even when the owner has let go meanwhile.
        while !batch.is_empty() {
            commit_batch(&consumer, std::mem::take(&mut batch), owner);
            batch.extend(queue.try_iter());
        }
        // Dropped here, outside a commit: if the owner let go meanwhile, this closes it.
        drop(consumer);
    }
}

/// The highest offset asked for each partition across `batch`.
fn merged(batch: &[Request]) -> BTreeMap<(String, i32), i64> {
    let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for request in batch {
        for (topic, partition, offset) in &request.offsets {
            let e = next.entry((topic.clone(), *partition)).or_insert(*offset);
            *e = (*e).max(*offset);
        }
    }
    next
}

/// Commits the merged offsets of `batch` and answers each request still waited for; the
/// outcome of one no caller waits for any more is logged.
fn commit_batch<C: ConsumerContext + 'static>(
    consumer: &BaseConsumer<C>,
    batch: Vec<Request>,
    owner: &str,
) {
    let next = merged(&batch);
    let mut list = TopicPartitionList::new();
    for ((topic, partition), offset) in &next {
        if let Err(e) = list.add_partition_offset(topic, *partition, Offset::Offset(*offset)) {
            tracing::warn!(owner, topic, partition, error = %e, "kafka: bad offset");
        }
    }
    let result = consumer.commit(&list, CommitMode::Sync);
    let mut waited_for = false;
    for request in batch {
        waited_for |= request.answer.try_send(result.clone()).is_ok();
    }
    if !waited_for {
        match &result {
            Ok(()) => {
                tracing::info!(
                    owner, offsets = ?next,
                    "kafka: the offset commit given up on was answered: committed"
                )
            }
            Err(e) => {
                tracing::warn!(owner, error = %e, offsets = ?next, "kafka: the offset commit given up on failed; those records may be delivered again")
            }
        }
    }
}
