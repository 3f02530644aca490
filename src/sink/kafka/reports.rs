//! Waking the sink when delivery reports arrive, instead of polling for them on a timer.
//!
//! rdkafka's `BaseProducer::poll(timeout)` keeps polling until its timeout even once the
//! reports are in, so the sink used to poll without blocking and sleep 0.1 ms in between:
//! ~10,000 wake-ups a second while a batch waits for its acknowledgements, each a context switch
//! taken from the broker's and librdkafka's threads on a small machine. librdkafka can instead
//! call a function when something is put on the (empty) queue the reports arrive on; that
//! function only raises a flag here and wakes the sink, which then polls. rdkafka does not
//! expose this, hence the FFI.

use std::ffi::c_void;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use rdkafka::bindings as rd;
use rdkafka::producer::{BaseProducer, Producer, ProducerContext};

/// Set by librdkafka's thread when a report (or any event) lands on the empty main queue.
#[derive(Default)]
struct Flag {
    raised: Mutex<bool>,
    wake: Condvar,
}

/// A handle on a producer's main queue that wakes [`ReportSignal::wait`] when it gets an event.
/// Must be dropped before its producer (it holds a reference on the producer's queue).
pub struct ReportSignal {
    queue: *mut rd::rd_kafka_queue_t,
    flag: Arc<Flag>,
}

// SAFETY: the queue handle is only used through librdkafka's thread-safe queue API
// (`rd_kafka_queue_length`, `rd_kafka_queue_cb_event_enable`, `rd_kafka_queue_destroy`).
unsafe impl Send for ReportSignal {}

unsafe extern "C" fn on_event(_rk: *mut rd::rd_kafka_t, opaque: *mut c_void) {
    // SAFETY: `opaque` is the `Flag` that the `ReportSignal` keeps alive (an `Arc`) for as long
    // as this callback is registered; it is unregistered before the `Arc` is released, and
    // librdkafka calls the callback under the queue's lock, which unregistering also takes.
    let flag = unsafe { &*(opaque as *const Flag) };
    *flag.raised.lock() = true;
    flag.wake.notify_one();
}

impl ReportSignal {
    pub fn new<C: ProducerContext>(producer: &BaseProducer<C>) -> ReportSignal {
        let flag = Arc::new(Flag::default());
        // SAFETY: the client pointer is live (we borrow the producer); the returned queue
        // reference is ours until `rd_kafka_queue_destroy` in Drop. The opaque points into the
        // `Arc` we keep, see `on_event`.
        let queue = unsafe {
            let queue = rd::rd_kafka_queue_get_main(producer.client().native_ptr());
            rd::rd_kafka_queue_cb_event_enable(
                queue,
                Some(on_event),
                Arc::as_ptr(&flag) as *mut c_void,
            );
            queue
        };
        ReportSignal { queue, flag }
    }

    /// Events waiting to be served by the producer's `poll`.
    pub fn queued(&self) -> usize {
        // SAFETY: live queue reference (see `new`).
        unsafe { rd::rd_kafka_queue_length(self.queue) }
    }

    /// Waits until an event arrived on the empty queue since the last wait, or `timeout`.
    /// Callers serve the queue (`poll` until [`queued`](Self::queued) is 0) before waiting: the
    /// signal only comes when the queue goes from empty to not empty.
    pub fn wait(&self, timeout: Duration) {
        let mut raised = self.flag.raised.lock();
        if !*raised {
            self.flag.wake.wait_for(&mut raised, timeout);
        }
        *raised = false;
    }
}

impl Drop for ReportSignal {
    fn drop(&mut self) {
        // SAFETY: unregistering takes the queue's lock, so no callback runs after it returns
        // and the flag may go; then our queue reference is released, once.
        unsafe {
            rd::rd_kafka_queue_cb_event_enable(self.queue, None, std::ptr::null_mut());
            rd::rd_kafka_queue_destroy(self.queue);
        }
    }
}
