//! The exec source (Flume's ExecSource): runs a command and makes each line of its standard
//! output an event. Lines are put into the channel in batches of `batchSize`, or sooner when a
//! partial batch has waited `batchTimeout`.
//!
//! A full channel never loses lines: the batch is retried with back-off, and meanwhile the
//! reader stops reading, the command's pipe fills and the command blocks on its next write.
//! (Flume's ExecSource drops the batch instead.) A command that cannot start or that exits is
//! logged with its status, and run again after `restartThrottle` when `restart` is set; else
//! the source stays idle while the agent runs on.
//!
//! The command runs in its own process group, so that stopping the source also ends what it
//! started (the processes of a pipeline); standard input is empty.

use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process_group};

use super::{ChannelProcessor, Source, StopFlag, stopping};
use crate::channel::ChannelError;
use crate::config::ExecSourceConfig;
use crate::event::Event;
use crate::stop::sleep_unless_stopped;

/// A longer line is cut into events of this many bytes (with a warning), so a command that
/// never prints a newline cannot exhaust memory.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;
/// How long the command has to exit after SIGTERM before it gets SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(2);
/// How often waiting threads look at the stop flag.
const POLL: Duration = Duration::from_millis(100);
/// Back-off between attempts to put a refused batch, doubling up to the maximum.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(1);

pub struct ExecSource {
    name: String,
    config: ExecSourceConfig,
}

impl ExecSource {
    pub fn new(name: &str, config: ExecSourceConfig) -> ExecSource {
        ExecSource {
            name: name.to_owned(),
            config,
        }
    }
}

/// How one run of the command ended.
enum RunEnd {
    CannotStart(std::io::Error),
    Exited(ExitStatus),
    /// Its output ended but it could not be waited for.
    Lost(std::io::Error),
    Stopped,
}

impl Source for ExecSource {
    /// The command starts in `run`: one that cannot start is logged (and retried with
    /// `restart`) without keeping the agent from starting, as in Flume.
    fn start(&mut self) -> anyhow::Result<()> {
        Ok(())
    }

    fn run(self: Box<Self>, processor: ChannelProcessor, stop: StopFlag) {
        let mut put = Putter {
            name: &self.name,
            processor: &processor,
            stop: &stop,
            batch_size: self.config.batch_size,
            lost_at_stop: 0,
        };
        let command = &self.config.command;
        loop {
            match run_once(&self.name, &self.config, &mut put, &stop) {
                RunEnd::Stopped => break,
                RunEnd::CannotStart(e) => {
                    processor.counters().generic_failure();
                    tracing::error!(
                    source = %self.name, command = %command, program = %self.config.argv[0], error = %e,
                    "exec: cannot start the command"
                    )
                }
                RunEnd::Exited(status) if status.success() => {
                    tracing::info!(source = %self.name, command = %command, "exec: command exited with status 0")
                }
                RunEnd::Exited(status) => tracing::warn!(
                    source = %self.name, command = %command, status = %status,
                    "exec: command exited with a failure"
                ),
                RunEnd::Lost(e) => {
                    processor.counters().generic_failure();
                    tracing::error!(
                        source = %self.name, command = %command, error = %e,
                        "exec: cannot learn how the command ended"
                    )
                }
            }
            if !self.config.restart {
                tracing::info!(source = %self.name, "exec: restart = false, so the source is idle until the agent stops");
                while !stopping(&stop) {
                    std::thread::sleep(POLL);
                }
                break;
            }
            tracing::info!(
                source = %self.name, after_ms = self.config.restart_throttle.as_millis() as u64,
                "exec: restarting the command (restartThrottle)"
            );
            if !sleep_unless_stopped(self.config.restart_throttle, &stop) {
                break;
            }
        }
    }
}

/// Runs the command once, putting its lines into the channel until its output ends or the
/// agent stops.
fn run_once(name: &str, config: &ExecSourceConfig, put: &mut Putter, stop: &StopFlag) -> RunEnd {
    let mut cmd = Command::new(&config.argv[0]);
    cmd.args(&config.argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(if config.log_stderr {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => EndedOnUnwind { name, child: c },
        Err(e) => return RunEnd::CannotStart(e),
    };
    tracing::info!(source = name, command = %config.command, pid = child.id(), "exec: command started");
    let Some(stdout) = child.stdout.take() else {
        terminate(name, &mut child);
        return RunEnd::Lost(std::io::Error::other("no pipe for the command's stdout"));
    };
    // Room for one batch while the previous is being put: beyond that the reader waits, and
    // the command with it.
    let (tx, rx) = sync_channel(config.batch_size.max(16));
    let reader = std::thread::Builder::new()
        .name(format!("exec-{name}-stdout"))
        .spawn({
            let name = name.to_owned();
            move || read_lines(&name, stdout, tx)
        });
    if let Err(e) = reader {
        terminate(name, &mut child);
        return RunEnd::CannotStart(e);
    }
    if let Some(stderr) = child.stderr.take() {
        let owned = name.to_owned();
        let spawned = std::thread::Builder::new()
            .name(format!("exec-{name}-stderr"))
            .spawn(move || log_stderr(&owned, stderr));
        if let Err(e) = spawned {
            tracing::warn!(source = name, error = %e, "exec: cannot read the command's stderr");
        }
    }

    let mut batch = Batcher::new(put.batch_size, config.batch_timeout);
    loop {
        if stopping(stop) {
            // What was read is put first; then the command goes, and what it printed while
            // going is put too.
            put.put_all(batch.take());
            terminate(name, &mut child);
            drain(&rx, &mut batch, Instant::now() + TERM_GRACE);
            put.put_all(batch.take());
            if put.lost_at_stop > 0 {
                tracing::error!(
                    source = name,
                    lines = put.lost_at_stop,
                    "exec: lines lost at the stop, the channel refusing them"
                );
            }
            return RunEnd::Stopped;
        }
        let now = Instant::now();
        match rx.recv_timeout(batch.wait(now)) {
            Ok(line) => {
                if let Some(full) = batch.push(line, Instant::now()) {
                    put.put(full);
                    batch.size = put.batch_size;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                if let Some(due) = batch.due(Instant::now()) {
                    put.put(due);
                    batch.size = put.batch_size;
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                put.put_all(batch.take());
                return wait_for_exit(name, &mut child, stop);
            }
        }
    }
}

/// The running command, ended (see [`terminate`]) if the source's thread unwinds while it
/// runs: a source that panicked is started again (`agent::run_supervised`), and must not leave
/// its command behind, running beside the new one and outliving the agent.
struct EndedOnUnwind<'a> {
    name: &'a str,
    child: Child,
}

impl std::ops::Deref for EndedOnUnwind<'_> {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.child
    }
}

impl std::ops::DerefMut for EndedOnUnwind<'_> {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for EndedOnUnwind<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            terminate(self.name, &mut self.child);
        }
    }
}

/// Waits for a command whose output has ended; stops it if the agent stops first.
fn wait_for_exit(name: &str, child: &mut Child, stop: &StopFlag) -> RunEnd {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return RunEnd::Exited(status),
            Ok(None) if stopping(stop) => {
                terminate(name, child);
                return RunEnd::Stopped;
            }
            Ok(None) => std::thread::sleep(POLL),
            Err(e) => return RunEnd::Lost(e),
        }
    }
}

/// Moves lines still queued by the reader into `batch`, until the reader is done or `until`.
fn drain(rx: &Receiver<Vec<u8>>, batch: &mut Batcher, until: Instant) {
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                batch.lines.push(Event::new(line));
            }
            Err(_) => return,
        }
    }
}

/// SIGTERM to the command's process group, then SIGKILL if the command has not exited after
/// [`TERM_GRACE`]; reaps it.
fn terminate(name: &str, child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let group = Pid::from_child(child);
    if let Err(e) = kill_process_group(group, Signal::TERM) {
        tracing::debug!(source = name, error = %e, "exec: SIGTERM to the command's group failed");
    }
    let end = Instant::now() + TERM_GRACE;
    while Instant::now() < end {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    tracing::warn!(
        source = name,
        pid = child.id(),
        "exec: command still running after SIGTERM; sending SIGKILL"
    );
    let _ = kill_process_group(group, Signal::KILL);
    let _ = child.kill();
    let _ = child.wait();
}

/// Sends each line of `out` to `tx` until the output ends or the source stops listening.
fn read_lines(name: &str, out: impl Read, tx: SyncSender<Vec<u8>>) {
    let mut lines = Lines::new(out);
    loop {
        match lines.next_line() {
            Ok(Some(line)) => {
                if line.cut {
                    tracing::warn!(
                        source = name,
                        limit = MAX_LINE_BYTES,
                        "exec: line longer than the limit; cut into several events"
                    );
                }
                if tx.send(line.bytes).is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(source = name, error = %e, "exec: reading the command's output failed");
                return;
            }
        }
    }
}

/// Logs each line the command writes to stderr (`logStdErr = true`).
fn log_stderr(name: &str, err: impl Read) {
    let mut lines = BufReader::new(err);
    let mut line = Vec::new();
    loop {
        line.clear();
        match lines.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                tracing::info!(source = name, line = %text.trim_end_matches(['\n', '\r']), "exec: command stderr");
            }
        }
    }
}

/// One line of output, without its line ending.
#[derive(Debug, PartialEq, Eq)]
struct Line {
    bytes: Vec<u8>,
    /// The line went on past [`MAX_LINE_BYTES`]: the rest comes as the next line(s).
    cut: bool,
}

/// Splits a byte stream into lines the way Java's `readLine` does for `\n` and `\r\n`
/// endings, a last line without an ending included.
struct Lines<R> {
    inner: BufReader<R>,
    max: usize,
    /// The previous line was cut exactly before its ending, which must not make an empty line.
    after_cut: bool,
}

impl<R: Read> Lines<R> {
    fn new(inner: R) -> Lines<R> {
        Lines::with_max(inner, MAX_LINE_BYTES)
    }

    fn with_max(inner: R, max: usize) -> Lines<R> {
        Lines {
            inner: BufReader::with_capacity(64 * 1024, inner),
            max,
            after_cut: false,
        }
    }

    fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        let mut line = Vec::new();
        loop {
            let buf = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                self.after_cut = false;
                return Ok((!line.is_empty()).then_some(Line {
                    bytes: line,
                    cut: false,
                }));
            }
            let room = self.max - line.len();
            match buf.iter().position(|b| *b == b'\n') {
                Some(i) if i <= room => {
                    line.extend_from_slice(&buf[..i]);
                    self.inner.consume(i + 1);
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    if line.is_empty() && std::mem::take(&mut self.after_cut) {
                        continue;
                    }
                    self.after_cut = false;
                    return Ok(Some(Line {
                        bytes: line,
                        cut: false,
                    }));
                }
                _ => {
                    let take = buf.len().min(room);
                    line.extend_from_slice(&buf[..take]);
                    self.inner.consume(take);
                    if line.len() == self.max {
                        self.after_cut = true;
                        return Ok(Some(Line {
                            bytes: line,
                            cut: true,
                        }));
                    }
                }
            }
        }
    }
}

/// Collects lines into batches: full at `size` lines, or due `timeout` after its first line.
struct Batcher {
    size: usize,
    timeout: Duration,
    lines: Vec<Event>,
    first_at: Option<Instant>,
}

impl Batcher {
    fn new(size: usize, timeout: Duration) -> Batcher {
        Batcher {
            size,
            timeout,
            lines: Vec::new(),
            first_at: None,
        }
    }

    /// Adds a line; returns the batch if it is now full.
    fn push(&mut self, line: Vec<u8>, now: Instant) -> Option<Vec<Event>> {
        self.first_at.get_or_insert(now);
        self.lines.push(Event::new(line));
        (self.lines.len() >= self.size).then(|| self.take())
    }

    /// The partial batch, if it has waited its `timeout`.
    fn due(&mut self, now: Instant) -> Option<Vec<Event>> {
        let first = self.first_at?;
        (now.duration_since(first) >= self.timeout).then(|| self.take())
    }

    /// How long to wait for the next line before looking again.
    fn wait(&self, now: Instant) -> Duration {
        match self.first_at {
            Some(first) => (first + self.timeout)
                .saturating_duration_since(now)
                .min(POLL),
            None => POLL,
        }
    }

    fn take(&mut self) -> Vec<Event> {
        self.first_at = None;
        std::mem::take(&mut self.lines)
    }
}

/// Puts batches into the channel, retrying until they are taken or the agent stops.
struct Putter<'a> {
    name: &'a str,
    processor: &'a ChannelProcessor,
    stop: &'a StopFlag,
    /// Lowered to the channel's transactionCapacity if `batchSize` turns out to exceed it.
    batch_size: usize,
    /// Lines given up since the channel refused a batch while the agent stops: the later
    /// batches of the stop are not tried, or each would wait out the channel's keep-alive (a
    /// full channel held a stop for 114 s in the disk-full audit).
    lost_at_stop: usize,
}

impl Putter<'_> {
    /// Puts `events` in batches of at most the batch size (a flush at stop can hold more).
    fn put_all(&mut self, mut events: Vec<Event>) {
        while !events.is_empty() {
            let rest = events.split_off(events.len().min(self.batch_size));
            self.put(events);
            events = rest;
        }
    }

    /// Puts one batch, waiting out a full channel. Once the agent is stopping, a refusal is
    /// final and the lines are reported lost.
    fn put(&mut self, batch: Vec<Event>) {
        if batch.is_empty() {
            return;
        }
        if self.lost_at_stop > 0 {
            self.lost_at_stop += batch.len();
            return;
        }
        let mut failures = 0u32;
        let mut backoff = RETRY_FIRST;
        loop {
            // A clone shares the bodies; the processor consumes what it is given.
            match self.processor.process(batch.clone()) {
                Ok(()) => {
                    if failures > 0 {
                        tracing::info!(
                            source = self.name,
                            failures,
                            "exec: channel accepted the batch again"
                        );
                    }
                    return;
                }
                Err(ChannelError::TransactionTooLarge { limit, .. }) if limit > 0 => {
                    tracing::warn!(
                        source = self.name,
                        batch_size = self.batch_size,
                        limit,
                        "exec: batchSize exceeds the channel's transactionCapacity; putting smaller batches"
                    );
                    self.batch_size = self.batch_size.min(limit);
                    return self.put_all(batch);
                }
                Err(e) => {
                    failures += 1;
                    if stopping(self.stop) {
                        tracing::error!(
                            source = self.name, lines = batch.len(), error = %e,
                            "exec: the channel refused lines while the agent stops; they are lost, and so are the lines after them (counted when the command is gone)"
                        );
                        self.lost_at_stop = batch.len();
                        return;
                    }
                    if failures == 1 {
                        tracing::warn!(source = self.name, error = %e, "exec: channel refused a batch; retrying (the command waits meanwhile)");
                    } else {
                        tracing::debug!(source = self.name, failures, error = %e, "exec: batch still refused");
                    }
                    sleep_unless_stopped(backoff, self.stop);
                    backoff = (backoff * 2).min(RETRY_MAX);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn lines(input: &[u8], max: usize) -> Vec<(String, bool)> {
        let mut l = Lines::with_max(Cursor::new(input.to_vec()), max);
        let mut out = Vec::new();
        while let Some(line) = l.next_line().unwrap() {
            out.push((String::from_utf8_lossy(&line.bytes).into_owned(), line.cut));
        }
        out
    }

    fn plain(v: &[&str]) -> Vec<(String, bool)> {
        v.iter().map(|s| (s.to_string(), false)).collect()
    }

    #[test]
    fn lines_end_at_lf_or_crlf_and_the_last_needs_no_ending() {
        assert_eq!(
            lines(b"a\nb\r\n\nc\rd\nlast", 100),
            plain(&["a", "b", "", "c\rd", "last"])
        );
        assert_eq!(lines(b"", 100), plain(&[]));
        assert_eq!(lines(b"\n", 100), plain(&[""]));
        assert_eq!(lines(b"x\n", 100), plain(&["x"]));
    }

    #[test]
    fn long_lines_are_cut_without_losing_bytes() {
        let got = lines(b"0123456789\nabcd\n0123\nxy", 4);
        assert_eq!(
            got,
            vec![
                ("0123".into(), true),
                ("4567".into(), true),
                ("89".into(), false),
                ("abcd".into(), false),
                ("0123".into(), false),
                ("xy".into(), false),
            ]
        );
        // A cut exactly at the ending does not make an empty event.
        assert_eq!(
            lines(b"abcdefgh\r\nz\n", 4),
            vec![
                ("abcd".into(), true),
                ("efgh".into(), true),
                ("z".into(), false)
            ]
        );
    }

    #[test]
    fn lines_across_reads_and_binary_bytes() {
        // A reader that returns one byte at a time.
        struct Trickle(Vec<u8>, usize);
        impl Read for Trickle {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.1 >= self.0.len() || buf.is_empty() {
                    return Ok(0);
                }
                buf[0] = self.0[self.1];
                self.1 += 1;
                Ok(1)
            }
        }
        let mut l = Lines::with_max(Trickle(b"\xff\xfe\r\nok\n".to_vec(), 0), 100);
        assert_eq!(l.next_line().unwrap().unwrap().bytes, b"\xff\xfe");
        assert_eq!(l.next_line().unwrap().unwrap().bytes, b"ok");
        assert!(l.next_line().unwrap().is_none());
    }

    fn bodies(events: &[Event]) -> Vec<&[u8]> {
        events.iter().map(|e| e.body.as_ref()).collect()
    }

    #[test]
    fn batches_fill_to_size_or_wait_for_the_timeout() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut b = Batcher::new(3, ms(1000));
        assert_eq!(b.wait(t0), POLL, "nothing pending: just poll");
        assert!(b.push(b"1".to_vec(), t0).is_none());
        assert!(b.push(b"2".to_vec(), t0 + ms(10)).is_none());
        let full = b.push(b"3".to_vec(), t0 + ms(20)).unwrap();
        assert_eq!(bodies(&full), vec![b"1", b"2", b"3"]);
        assert!(
            b.due(t0 + ms(5000)).is_none(),
            "nothing left after a full batch"
        );

        assert!(b.push(b"4".to_vec(), t0 + ms(100)).is_none());
        assert!(b.due(t0 + ms(1099)).is_none(), "not yet due");
        assert_eq!(b.wait(t0 + ms(1050)), ms(50), "waits only until it is due");
        assert!(b.push(b"5".to_vec(), t0 + ms(1000)).is_none());
        // Measured from the first line of the batch, not the last.
        let due = b.due(t0 + ms(1100)).unwrap();
        assert_eq!(bodies(&due), vec![b"4", b"5"]);
        assert!(b.due(t0 + ms(9000)).is_none());
    }

    #[test]
    fn zero_timeout_puts_what_has_arrived_at_once() {
        let t0 = Instant::now();
        let mut b = Batcher::new(10, Duration::ZERO);
        b.push(b"a".to_vec(), t0);
        assert_eq!(b.wait(t0), Duration::ZERO);
        assert_eq!(bodies(&b.due(t0).unwrap()), vec![b"a"]);
    }

    #[test]
    fn a_command_is_ended_when_the_source_unwinds() {
        let child = Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = Pid::from_child(&child);
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _running = EndedOnUnwind { name: "r1", child };
            panic!("a bug while the command runs");
        }));
        assert!(unwound.is_err());
        // Ended and reaped: no process has that id any more.
        assert!(rustix::process::test_kill_process(pid).is_err());
    }

    /// Once the channel refuses a batch during the stop, the batches after it are given up
    /// without being tried: each try would wait out the channel's keep-alive.
    #[test]
    fn a_refusal_during_the_stop_gives_up_the_rest_at_once() {
        use crate::source::test_rig::{memory_channel, processor_for};
        let channel = memory_channel(10, 10, Duration::from_millis(100));
        let processor = processor_for(&channel);
        let full: Vec<Event> = (0..10).map(|i| Event::new(format!("{i}"))).collect();
        processor.process(full).unwrap();
        let stop: StopFlag = crate::stop::Stop::stopped();
        let mut put = Putter {
            name: "r1",
            processor: &processor,
            stop: &stop,
            batch_size: 10,
            lost_at_stop: 0,
        };
        put.put_all((0..100).map(|i| Event::new(format!("{i}"))).collect());
        assert_eq!(put.lost_at_stop, 100);
        let refusals = channel
            .counters()
            .full
            .load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(refusals, 1, "only the first batch was tried");
    }
}
