//! Background take commits for a pipelined sink runner.
//!
//! Committing a take is a disk write for the file channel: the consumer checkpoint is written
//! and `fdatasync`ed, 1–3 ms while the log itself is being synced. Done on the runner's thread,
//! that time came between one acknowledged batch and the start of the next, and the broker
//! went idle for it (measured: a third of the Kafka sink's time at 1 KiB events). Here a
//! delivered batch is handed to a committer thread and the runner goes on taking and starting
//! batches.
//!
//! Takes are committed in the order they were handed over, which is the order the runner
//! delivered them; those handed over while a commit is under way are committed together by
//! the next (for the file channel, one checkpoint write for all of them). A batch counts as on its way until its commit is done (see
//! [`Committer::pending`]), so a crash still resends at most `in_flight_batches` batches. A
//! failed commit is kept for the runner to report; its events are delivered again after a
//! restart, as when the runner committed itself.

use std::sync::Arc;
use std::sync::mpsc::{self, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::{SinkCounters, commit_delivered};
use crate::channel::{Channel, ChannelError, Taken};

pub(crate) struct Committer {
    to_commit: Sender<Taken>,
    state: Arc<State>,
    thread: JoinHandle<()>,
}

#[derive(Default)]
struct State {
    /// Batches handed over whose commit has not finished.
    pending: Mutex<usize>,
    committed: Condvar,
    /// The first commit failure the runner has not reported yet.
    failure: Mutex<Option<ChannelError>>,
}

impl Committer {
    /// Starts the commit thread of sink `sink`. Counts into `counters` as the runner would.
    pub(crate) fn start(
        sink: &str,
        channel: Arc<dyn Channel>,
        counters: Arc<SinkCounters>,
        batch_size: usize,
    ) -> std::io::Result<Committer> {
        let (to_commit, handed_over) = mpsc::channel::<Taken>();
        let state = Arc::new(State::default());
        let st = state.clone();
        let thread = std::thread::Builder::new()
            .name(format!("{sink}-commit"))
            .spawn(move || {
                while let Ok(first) = handed_over.recv() {
                    // Whatever was handed over meanwhile goes into the same commit: one
                    // checkpoint write for all of it.
                    let mut takes = vec![first];
                    takes.extend(handed_over.try_iter());
                    let n = takes.len();
                    if let Err(e) = commit_delivered(&*channel, &counters, batch_size, takes) {
                        st.failure.lock().get_or_insert(e);
                    }
                    *st.pending.lock() -= n;
                    st.committed.notify_all();
                }
            })?;
        Ok(Committer {
            to_commit,
            state,
            thread,
        })
    }

    /// Queues the take of a delivered batch for commit.
    pub(crate) fn hand_over(&self, taken: Taken) {
        *self.state.pending.lock() += 1;
        if self.to_commit.send(taken).is_err() {
            // The thread is gone (it cannot panic short of a bug): the take stays uncommitted
            // and its events come again after a restart.
            *self.state.pending.lock() -= 1;
            tracing::error!("the commit thread is gone; delivered events will be redelivered");
        }
    }

    /// Batches handed over whose commit has not finished.
    pub(crate) fn pending(&self) -> usize {
        *self.state.pending.lock()
    }

    /// Waits up to `wait` for a pending commit to finish.
    pub(crate) fn wait_for_one(&self, wait: Duration) {
        let mut pending = self.state.pending.lock();
        if *pending > 0 {
            self.state.committed.wait_for(&mut pending, wait);
        }
    }

    /// The first commit failure since the last call.
    pub(crate) fn take_failure(&self) -> Option<ChannelError> {
        self.state.failure.lock().take()
    }

    /// Commits everything handed over, stops the thread, and returns a failure not yet
    /// reported.
    pub(crate) fn finish(self) -> Option<ChannelError> {
        let Committer {
            to_commit,
            state,
            thread,
        } = self;
        // Closing the queue ends the thread's loop once it has committed what is queued.
        drop(to_commit);
        let _ = thread.join();
        state.failure.lock().take()
    }
}
