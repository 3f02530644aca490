//! The stop signal: one flag per agent phase, set once (the agent's stop, or a test) and
//! looked at by every long-running loop — sources, sinks, the metrics server. It sits apart
//! from all of them so that each can depend on it without depending on the others.
//!
//! A loop with nothing to do waits on the flag itself rather than waking now and then to look
//! at it: the flag has an eventfd that becomes readable when it is set, which a sleeper polls
//! alone ([`Stop::wait_for`]) and a loop waiting on sockets polls beside them
//! ([`Stop::wait_readable`]); a wait on another condition (a sink's take, on its channel) is
//! ended by a hook run at the set ([`Stop::on_set`]). An idle agent so wakes only for what its
//! configuration asks (a poll delay, a roll interval), and a stop is seen at once.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Set once to ask every component of a phase to stop.
pub type StopFlag = Arc<Stop>;

/// A flag that can be waited on. See the module doc.
pub struct Stop {
    set: AtomicBool,
    /// Readable once the flag is set. `None` if the descriptor could not be made (out of
    /// descriptors): waits then look at the flag every [`UNWAITABLE_POLL`].
    fd: Option<OwnedFd>,
    /// Run once when the flag is set: wake-ups for waits on other conditions (a sink's take
    /// waits on its channel's).
    hooks: Mutex<Vec<Hook>>,
}

type Hook = Box<dyn Fn() + Send + Sync>;

impl Stop {
    /// A new, clear flag.
    pub fn new() -> StopFlag {
        use rustix::event::{EventfdFlags, eventfd};
        let fd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).ok();
        Arc::new(Stop {
            set: AtomicBool::new(false),
            fd,
            hooks: Mutex::new(Vec::new()),
        })
    }

    /// A flag that is already set.
    pub fn stopped() -> StopFlag {
        let stop = Stop::new();
        stop.set();
        stop
    }

    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }

    /// Sets the flag and wakes every thread waiting on it. Setting it again does nothing more.
    pub fn set(&self) {
        if self.set.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(fd) = &self.fd {
            // An eventfd's counter only fails to take 1 when it is near u64::MAX; it is
            // written once. The descriptor stays readable: nothing reads it.
            let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
        }
        let hooks = std::mem::take(&mut *self.hooks.lock());
        for hook in hooks {
            hook();
        }
    }

    /// Runs `hook` when the flag is set (at once if it is already). A thread waiting on a
    /// condition of its own uses it to be woken at the stop: it looks at the flag under that
    /// condition's lock, and the hook takes the lock before it notifies.
    pub fn on_set(&self, hook: impl Fn() + Send + Sync + 'static) {
        let mut hooks = self.hooks.lock();
        // `set` stores the flag before it takes the hooks: a flag still clear here means the
        // hook will be among those it takes.
        if self.is_set() {
            drop(hooks);
            hook();
        } else {
            hooks.push(Box::new(hook));
        }
    }

    /// Waits until the flag is set or `d` has passed; true if it is set.
    pub fn wait_for(&self, d: Duration) -> bool {
        let end = Instant::now().checked_add(d);
        loop {
            if self.is_set() {
                return true;
            }
            let left = end.map_or(IDLE_WAIT, |end| {
                end.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                return false;
            }
            self.wait_readable(&[], left);
        }
    }

    /// Waits until one of `fds` has something to read (or an error, or its peer closed it),
    /// the flag is set, or `timeout` passes; true if one of `fds` is ready. A connection's
    /// reader waits here before a read, and an accept loop before an accept, instead of waking
    /// at each timeout of its socket to look at the flag. Without the flag's descriptor the
    /// wait is cut to [`UNWAITABLE_POLL`].
    pub fn wait_readable(&self, fds: &[BorrowedFd<'_>], timeout: Duration) -> bool {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        let mut polled: Vec<PollFd<'_>> = fds
            .iter()
            .map(|fd| PollFd::from_borrowed_fd(*fd, PollFlags::IN))
            .collect();
        let timeout = match self.as_fd() {
            Some(stop) => {
                polled.push(PollFd::from_borrowed_fd(stop, PollFlags::IN));
                timeout
            }
            None => timeout.min(UNWAITABLE_POLL),
        };
        let limit = Timespec::try_from(timeout).unwrap_or(Timespec {
            tv_sec: 1,
            tv_nsec: 0,
        });
        match poll(&mut polled, Some(&limit)) {
            Ok(_) => polled[..fds.len()].iter().any(|p| !p.revents().is_empty()),
            // Interrupted: the caller looks again.
            Err(rustix::io::Errno::INTR) => false,
            // Not expected of sockets. "Ready" sends the caller to its read or accept, which
            // reports what is wrong; the pause keeps a failing poll from spinning.
            Err(e) => {
                tracing::debug!(error = %e, "poll failed");
                std::thread::sleep(timeout.min(UNWAITABLE_POLL));
                true
            }
        }
    }

    /// A descriptor that polls readable once the flag is set, for loops that wait on sockets.
    pub fn as_fd(&self) -> Option<BorrowedFd<'_>> {
        self.fd.as_ref().map(|fd| fd.as_fd())
    }
}

/// The longest an idle accept loop or client connection sleeps: it wakes for a connection or
/// data, or at the stop, so this only bounds what a missed wake-up could cost.
pub const IDLE_WAIT: Duration = Duration::from_secs(60);

/// The longest a wait on a socket lasts when the flag has no descriptor to wait on with it.
pub const UNWAITABLE_POLL: Duration = Duration::from_millis(100);

/// How long, from the agent's stop, a sink still waits for the answer to what it already sent
/// (the Kafka sink's acknowledgements, the avro and thrift sinks' replies). A live peer answers
/// within milliseconds; giving the answer up rolled back a batch the peer had stored, and the
/// restarted agent sent it again (50 duplicates per SIGTERM in the soak of audit 20). A peer
/// that is away bounds the stop by this much.
#[cfg(not(test))]
pub const STOP_GRACE: Duration = Duration::from_secs(5);
#[cfg(test)]
pub const STOP_GRACE: Duration = Duration::from_secs(1);

pub fn stopping(stop: &StopFlag) -> bool {
    stop.is_set()
}

/// Sleeps for `d`; false if the agent began stopping before `d` was over (the sleep then ends
/// at once). Backoffs and polls use it so that a stop never waits out a long sleep.
pub fn sleep_unless_stopped(d: Duration, stop: &StopFlag) -> bool {
    !stop.wait_for(d)
}

/// Sets `stop` from another thread after `after`, for tests of waits that end at the stop.
#[cfg(test)]
pub(crate) fn set_later(stop: &StopFlag, after: Duration) -> std::thread::JoinHandle<()> {
    let stop = stop.clone();
    std::thread::spawn(move || {
        std::thread::sleep(after);
        stop.set();
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sleep_ends_when_the_flag_is_set_not_when_it_is_over() {
        let stop = Stop::new();
        let setter = set_later(&stop, Duration::from_millis(50));
        let started = Instant::now();
        assert!(!sleep_unless_stopped(Duration::from_secs(600), &stop));
        assert!(started.elapsed() < Duration::from_secs(300));
        setter.join().unwrap();
        // Set: no sleep at all.
        assert!(!sleep_unless_stopped(Duration::from_secs(600), &stop));
        // Clear: the whole sleep.
        assert!(sleep_unless_stopped(
            Duration::from_millis(20),
            &Stop::new()
        ));
    }

    #[test]
    fn hooks_run_once_at_the_set_or_at_once_when_set_already() {
        use std::sync::atomic::AtomicUsize;
        let stop = Stop::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        stop.on_set(move || {
            counted.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        stop.set();
        stop.set();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let counted = runs.clone();
        stop.on_set(move || {
            counted.fetch_add(10, Ordering::SeqCst);
        });
        assert_eq!(runs.load(Ordering::SeqCst), 11);
    }

    #[test]
    fn waiting_for_a_socket_ends_when_it_has_data_or_at_the_stop() {
        use std::io::Write;
        use std::os::unix::net::UnixStream;
        let (mut tx, rx) = UnixStream::pair().unwrap();
        let stop = Stop::new();
        assert!(!stop.wait_readable(&[rx.as_fd()], Duration::from_millis(10)));
        tx.write_all(b"x").unwrap();
        assert!(stop.wait_readable(&[rx.as_fd()], Duration::from_secs(600)));
        let (_tx, idle) = UnixStream::pair().unwrap();
        // Any one of several.
        assert!(stop.wait_readable(&[idle.as_fd(), rx.as_fd()], Duration::from_secs(600)));
        let setter = set_later(&stop, Duration::from_millis(50));
        let started = Instant::now();
        assert!(!stop.wait_readable(&[idle.as_fd()], Duration::from_secs(600)));
        assert!(started.elapsed() < Duration::from_secs(300));
        setter.join().unwrap();
    }

    #[test]
    fn the_descriptor_polls_readable_once_the_flag_is_set() {
        use rustix::event::{PollFd, PollFlags, Timespec, poll};
        let stop = Stop::new();
        let readable = |stop: &Stop| {
            let fd = stop.as_fd().unwrap();
            let mut fds = [PollFd::new(&fd, PollFlags::IN)];
            poll(&mut fds, Some(&Timespec::default())).unwrap() == 1
        };
        assert!(!readable(&stop));
        stop.set();
        stop.set();
        assert!(readable(&stop));
        // Level-triggered: still readable for every later poll.
        assert!(readable(&stop));
        assert!(stop.is_set());
    }
}
