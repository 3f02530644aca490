//! Wiring and lifecycle: builds channels, sinks and sources from an [`AgentConfig`], runs them
//! on their own threads (the sinks of a sink group on one thread per group), starts a source
//! that panicked again, and shuts down in order on SIGTERM/SIGINT/SIGHUP: sources stop
//! accepting and finish their transactions, then sinks finish (commit or roll back) their
//! batch, then the channels close (the log syncs). A restart resumes exactly where it stopped.
//! A changed configuration ([`Reload`]) is applied the same way: a stop of every component,
//! then a start of the new ones.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::channel::Channel;
use crate::channel::file::FileChannel;
use crate::channel::memory::MemoryChannel;
use crate::config::{AgentConfig, ChannelKind};
use crate::metrics::{self, Registry};
use crate::sink::{self, SinkCounters, SinkRunner};
use crate::source::{self, ChannelProcessor, SourceCounters};
use crate::stop::{Stop, StopFlag};

pub struct AgentOptions {
    /// Serve metrics on this address (`--metrics-port`).
    pub metrics_addr: Option<String>,
}

/// Flume's reloading of a changed configuration file (its `PollingPropertiesFileConfigurationProvider`).
pub struct Reload {
    /// How often the files are looked at (Flume's `--poll-interval`, 30 s).
    pub every: Duration,
    /// A look at the files.
    pub look: Box<dyn FnMut() -> Look>,
}

/// What a look at the configuration files found.
pub enum Look {
    /// Nothing new: the bytes last read, or bytes already found unusable.
    Same,
    /// New bytes, which are read once they have stayed the same for [`SETTLE`]: an editor
    /// writing the file in place would otherwise have a half-written file loaded.
    Settling,
    /// The files changed: their configuration, or why it cannot be used.
    Changed(anyhow::Result<AgentConfig>),
}

/// How long new bytes must stay unchanged before they are read (or the poll interval, if
/// shorter).
pub const SETTLE: Duration = Duration::from_secs(1);

/// The longest pause between two tries of a configuration whose components could not start.
const RETRY_MAX: Duration = Duration::from_secs(300);

/// Runs the agent until one of the stop signals comes. With `reload`, a changed
/// configuration replaces the running one as in Flume: every component stops (as for a stop
/// signal: nothing committed is lost, nothing uncommitted was acknowledged) and the new ones
/// start. A configuration that cannot be read is logged and the running one stays. One whose
/// components cannot start (a port still taken) is tried again after a pause, doubled up to
/// [`RETRY_MAX`], as Flume's supervisor retries a component; meanwhile the configuration that
/// ran before runs again, or, if it cannot start either, is tried along with it. Only a
/// configuration that cannot start at all when the agent starts ends the run.
pub fn run(
    config: &AgentConfig,
    options: &AgentOptions,
    shutdown: StopSignals,
    mut reload: Option<Reload>,
) -> anyhow::Result<()> {
    let mut current = config.clone();
    let mut running = Some(Running::start(&current, options)?);
    // A configuration of the files that is not running yet.
    let mut wanted: Option<Wanted> = None;
    loop {
        let Some(r) = reload.as_mut() else {
            shutdown.wait();
            break;
        };
        let mut wait = r.every;
        if let Some(w) = &wanted {
            wait = wait.min(w.at.saturating_duration_since(std::time::Instant::now()));
        }
        if shutdown.wait_for(wait) {
            break;
        }
        let mut look = (r.look)();
        while matches!(look, Look::Settling) {
            if shutdown.wait_for(SETTLE.min(r.every)) {
                break;
            }
            look = (r.look)();
        }
        match look {
            Look::Same | Look::Settling => {}
            Look::Changed(Err(e)) => {
                tracing::error!(agent = %current.agent, "the configuration changed but cannot be used; the running one stays");
                // One record per problem, so that line-based log shippers keep each whole.
                for problem in format!("{e:#}").lines() {
                    tracing::error!(agent = %current.agent, "{problem}");
                }
            }
            Look::Changed(Ok(new)) if same_settings(&new, &current) => {
                // Back to what runs (a change undone while the changed one could not start).
                if wanted.take().is_some() {
                    tracing::info!(agent = %new.agent, "the files hold the running configuration again; the one that could not start is no longer tried");
                }
            }
            Look::Changed(Ok(new)) => {
                tracing::info!(agent = %new.agent, "the configuration changed: stopping every component and starting them anew");
                wanted = Some(Wanted {
                    config: new,
                    pause: r.every,
                    at: std::time::Instant::now(),
                    tried: false,
                });
            }
        }
        if shutdown.is_set() {
            break;
        }
        if let Some(mut w) = wanted.take() {
            let now = std::time::Instant::now();
            let held = running.as_ref().map_or(0, Running::memory_events);
            if now < w.at {
                wanted = Some(w);
            } else if w.tried && held > 0 {
                // A retry stops what runs; the events of its memory channels would be lost on
                // every try, not once as at the change itself.
                tracing::warn!(agent = %w.config.agent, memory_events = held, "the changed configuration is tried again once the memory channels are empty: stopping them now would lose their events");
                w.at = now + r.every;
                wanted = Some(w);
            } else {
                if let Some(r) = running.take() {
                    r.stop();
                }
                match Running::start(&w.config, options) {
                    Ok(r) => {
                        running = Some(r);
                        current = w.config;
                        continue;
                    }
                    Err(e) => {
                        tracing::error!(agent = %w.config.agent, error = %format!("{e:#}"), retry_in_s = w.pause.as_secs(), "the changed configuration cannot start; starting the one that ran before, and trying the changed one again later");
                        w.at = std::time::Instant::now() + w.pause;
                        w.pause = (w.pause * 2).min(RETRY_MAX.max(r.every));
                        w.tried = true;
                        wanted = Some(w);
                    }
                }
            }
        }
        if running.is_none() {
            match Running::start(&current, options) {
                Ok(r) => running = Some(r),
                Err(e) => {
                    tracing::error!(agent = %current.agent, error = %format!("{e:#}"), retry_in_s = r.every.as_secs(), "the configuration that ran before cannot start again either: nothing runs until one of them can start")
                }
            }
        }
    }
    match stop_signal() {
        Some((signal, sender)) => tracing::info!(
            agent = %current.agent,
            signal,
            sender_pid = sender,
            "stopping on {signal}{}: sources first, then sinks, then channels",
            if sender > 0 { format!(" from pid {sender}") } else { String::new() }
        ),
        None => {
            tracing::info!(agent = %current.agent, "stopping: sources first, then sinks, then channels")
        }
    }
    if let Some(r) = running {
        r.stop();
    }
    tracing::info!(agent = %current.agent, "stopped");
    Ok(())
}

/// A configuration of the files that does not run yet: when it is (next) tried, and the
/// pause after that if it fails again.
struct Wanted {
    config: AgentConfig,
    at: std::time::Instant,
    pause: Duration,
    /// It failed to start once: the next try is a retry.
    tried: bool,
}

/// Whether `a` and `b` set up the same agent. Compared through their `Debug` text, which
/// shows every setting: the configuration types have no `PartialEq` of their own (patterns,
/// key stores), and this comparison runs once per change of the files. The notes and warnings
/// are left out: they name lines, which a comment added above them moves.
fn same_settings(a: &AgentConfig, b: &AgentConfig) -> bool {
    let settings = |c: &AgentConfig| {
        let mut c = c.clone();
        c.notes.clear();
        c.left_out.clear();
        format!("{c:?}")
    };
    settings(a) == settings(b)
}

/// The channels of `channels` that keep nothing across a stop (memory channels) and hold
/// events, with how many. Kafka channels report no size: their events stay in the topic.
fn memory_held(channels: &[Arc<dyn Channel>]) -> impl Iterator<Item = (&str, u64)> {
    channels.iter().filter_map(|c| {
        let s = c.stats();
        (!s.on_disk && s.size > 0).then(|| (c.name(), s.size))
    })
}

/// How long a stop waits for a component's thread before saying which it waits for.
const SLOW_STOP: Duration = Duration::from_secs(3);

/// Joins `threads`; those still running after [`SLOW_STOP`] are named in one line, since a
/// stop can wait on a broker that does not answer (a Kafka channel's put waits up to its
/// delivery timeout) and would otherwise look hung (audit 39: 8-9 s without a line).
fn join_saying_what_waits(threads: Vec<JoinHandle<()>>) {
    let started = Instant::now();
    let mut told = false;
    while !told && threads.iter().any(|t| !t.is_finished()) {
        if started.elapsed() >= SLOW_STOP {
            let waiting: Vec<&str> = threads
                .iter()
                .filter(|t| !t.is_finished())
                .filter_map(|t| t.thread().name())
                .collect();
            tracing::info!(
                waiting = ?waiting,
                "stopping: still waiting for these to finish the transaction or batch in progress (one waiting on a broker or a server that does not answer ends at its timeout)"
            );
            told = true;
        } else {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    for t in threads {
        let _ = t.join();
    }
}

/// The components of one configuration, on their threads.
struct Running {
    source_stop: StopFlag,
    sink_stop: StopFlag,
    source_threads: Vec<JoinHandle<()>>,
    sink_threads: Vec<JoinHandle<()>>,
    metrics_thread: Option<JoinHandle<()>>,
    registry: Arc<Registry>,
    channels: Vec<Arc<dyn Channel>>,
}

impl Running {
    fn start(config: &AgentConfig, options: &AgentOptions) -> anyhow::Result<Running> {
        for note in &config.notes {
            tracing::info!("config: {note}");
        }
        for line in &config.left_out {
            tracing::warn!("config: {line}");
        }
        let mut channels: Vec<Arc<dyn Channel>> = Vec::new();
        for c in &config.channels {
            let ch: Arc<dyn Channel> = match &c.kind {
                ChannelKind::File(f) => Arc::new(
                    // The channel's own error names it: "channel c1: <what failed>".
                    FileChannel::open(&c.name, f).context("cannot open a file channel's log")?,
                ),
                ChannelKind::Memory(m) => Arc::new(MemoryChannel::new(&c.name, m)),
                #[cfg(feature = "kafka")]
                ChannelKind::Kafka(k) => {
                    Arc::new(crate::channel::kafka::KafkaChannel::new(&c.name, k)?)
                }
                #[cfg(not(feature = "kafka"))]
                ChannelKind::Kafka(_) => anyhow::bail!(
                    "channel {}: this weir was built without the `kafka` feature (cargo build --features kafka)",
                    c.name
                ),
            };
            tracing::info!(channel = %c.name, kind = c.kind.type_name(), size = ch.stats().size, "channel ready");
            channels.push(ch);
        }
        let channel = |name: &str| channels.iter().find(|c| c.name() == name).cloned();

        let mut registry = Registry {
            start_ms: metrics::start_time_ms(),
            channels: channels.clone(),
            ..Default::default()
        };
        let source_stop = Stop::new();
        let sink_stop = Stop::new();
        let mut runners = Vec::new();
        for k in &config.sinks {
            let ch = channel(&k.channel)
                .with_context(|| format!("sink {}: no channel {}", k.name, k.channel))?;
            let counters = Arc::new(SinkCounters::default());
            registry.sinks.push((k.name.clone(), counters.clone()));
            runners.push(SinkRunner {
                name: k.name.clone(),
                sink: sink::build(k, sink_stop.clone(), counters.clone())?,
                channel: ch,
                batch_size: k.batch_size,
                counters,
                stop: sink_stop.clone(),
            });
        }
        let mut sources = Vec::new();
        for s in &config.sources {
            let mut src = source::build(s);
            src.start()?;
            let counters = Arc::new(SourceCounters::default());
            registry.sources.push((s.name.clone(), counters.clone()));
            let name = s.name.clone();
            let (s, channels, stop) = (s.clone(), channels.clone(), source_stop.clone());
            let processor = move || {
                ChannelProcessor::new(&s, &channels, counters.clone()).stopping_on(stop.clone())
            };
            sources.push((name, src, processor));
        }

        let registry = Arc::new(registry);
        let metrics_thread = match &options.metrics_addr {
            Some(addr) => Some(metrics::serve(registry.clone(), addr, sink_stop.clone())?),
            None => None,
        };
        // Sinks of a failover or load_balance group run on their group's one thread.
        let (groups, runners) = sink::group::assemble(&config.sink_groups, runners)?;
        let sink_threads: Vec<JoinHandle<()>> = runners
            .into_iter()
            .map(|r| {
                std::thread::Builder::new()
                    .name(format!("sink-{}", r.name))
                    .spawn(move || r.run())
            })
            .chain(groups.into_iter().map(|g| {
                let stop = sink_stop.clone();
                std::thread::Builder::new()
                    .name(format!("sinkgroup-{}", g.name))
                    .spawn(move || g.run(stop))
            }))
            .collect::<Result<_, _>>()?;
        let source_threads: Vec<JoinHandle<()>> = sources
            .into_iter()
            .zip(&config.sources)
            .map(|((name, src, processor), s)| {
                let stop = source_stop.clone();
                let s = s.clone();
                std::thread::Builder::new()
                    .name(format!("source-{name}"))
                    .spawn(move || {
                        run_supervised(&name, src, || source::build(&s), processor, &stop)
                    })
            })
            .collect::<Result<_, _>>()?;
        tracing::info!(agent = %config.agent, "agent started");
        Ok(Running {
            source_stop,
            sink_stop,
            source_threads,
            sink_threads,
            metrics_thread,
            registry,
            channels,
        })
    }

    /// Events held in channels that keep nothing across a stop (memory channels).
    fn memory_events(&self) -> u64 {
        memory_held(&self.channels).map(|(_, n)| n).sum()
    }

    /// Stops in order: the sources finish their transactions, then the sinks their batches, then
    /// the channels close (the log syncs and lets go of its lock, so a restart may open it).
    fn stop(self) {
        self.source_stop.set();
        join_saying_what_waits(self.source_threads);
        self.sink_stop.set();
        join_saying_what_waits(self.sink_threads);
        if let Some(t) = self.metrics_thread {
            let _ = t.join();
        }
        for (channel, events) in memory_held(&self.channels) {
            tracing::warn!(
                channel,
                events,
                "the memory channel closes holding events: they are lost, as in Flume (a memory channel keeps nothing across a stop or a reload; the file channel does)"
            );
        }
        drop(self.registry);
        drop(self.channels);
    }
}

/// The first pause before a source that panicked is started again, doubled after each
/// restart that fails or panics again within [`RESTART_PAUSE_MAX`], up to it.
const RESTART_PAUSE: Duration = Duration::from_secs(1);
const RESTART_PAUSE_MAX: Duration = Duration::from_secs(60);

/// Runs source `name` until `stop`. A panic in it (a bug, in weir or a library under it) is
/// logged and the source is built and started anew after a pause, as Flume's supervisor
/// restarts a failed component, instead of the agent running on without it. What the source
/// had committed is safe; what it had not is what a crash would lose, and its client is told
/// by its connection closing (a file source reads again from its last recorded position).
fn run_supervised(
    name: &str,
    first: Box<dyn source::Source>,
    build: impl Fn() -> Box<dyn source::Source>,
    processor: impl Fn() -> ChannelProcessor,
    stop: &StopFlag,
) {
    let mut source = first;
    let mut pause = RESTART_PAUSE;
    loop {
        let started = std::time::Instant::now();
        let run = std::panic::AssertUnwindSafe(|| source.run(processor(), stop.clone()));
        if std::panic::catch_unwind(run).is_ok() || stop.is_set() {
            return;
        }
        if started.elapsed() > RESTART_PAUSE_MAX {
            pause = RESTART_PAUSE;
        }
        tracing::error!(
            source = name,
            pause_ms = pause.as_millis() as u64,
            "the source panicked (a bug; its message is above); starting it again after a pause"
        );
        source = loop {
            if !crate::stop::sleep_unless_stopped(pause, stop) {
                return;
            }
            pause = (pause * 2).min(RESTART_PAUSE_MAX);
            let start = std::panic::AssertUnwindSafe(|| {
                let mut fresh = build();
                fresh.start().map(|()| fresh)
            });
            match std::panic::catch_unwind(start) {
                Ok(Ok(fresh)) => break fresh,
                Ok(Err(e)) => {
                    tracing::error!(source = name, error = %format!("{e:#}"), pause_ms = pause.as_millis() as u64, "the source cannot start again; trying after a pause")
                }
                Err(_) => {
                    tracing::error!(
                        source = name,
                        pause_ms = pause.as_millis() as u64,
                        "the source panicked starting again; trying after a pause"
                    )
                }
            }
        };
        tracing::info!(source = name, "source started again");
    }
}

/// Set by SIGTERM, SIGINT or SIGHUP; a second SIGTERM or SIGINT exits at once. SIGHUP
/// (the terminal closing) stops the agent as the JVM running Flume stops it, cleanly, rather
/// than killing it in the middle of its transactions; weir reloads nothing on it. A closing
/// terminal sends it more than once, and a logout may send it after SIGTERM, so it never forces
/// the exit. As with the JVM, a SIGHUP the agent was started ignoring (`nohup`) stays ignored.
pub struct StopSignals {
    /// Set in the signal handler (signal-hook's flag, which its conditional shutdown reads).
    flag: Arc<AtomicBool>,
    /// The read end of a self-pipe the handler writes a byte into, after setting `flag`: the
    /// main thread sleeps in a read of it instead of waking to look at the flag.
    bell: UnixStream,
}

impl StopSignals {
    /// Whether a stop signal has come.
    fn is_set(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Returns once a stop signal has come, or after `timeout`: whether one came.
    fn wait_for(&self, timeout: Duration) -> bool {
        let end = std::time::Instant::now() + timeout;
        let mut bytes = [0u8; 64];
        while !self.flag.load(Ordering::SeqCst) {
            let left = end.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            // A timeout of zero would mean none at all. Spurious wakeups are fine: the flag
            // decides. A failing read (not expected of a socket pair held open here) is not
            // let spin.
            let left = left.max(Duration::from_millis(1));
            if let Err(e) = self
                .bell
                .set_read_timeout(Some(left))
                .and_then(|()| (&self.bell).read(&mut bytes).map(drop))
                && !matches!(
                    e.kind(),
                    std::io::ErrorKind::Interrupted
                        | std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                )
            {
                tracing::debug!(error = %e, "reading the signal pipe failed");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        true
    }

    /// Returns once a stop signal has come.
    fn wait(&self) {
        while !self.wait_for(Duration::from_secs(3600)) {}
    }
}

/// Installs the handlers of the stop signals (see [`StopSignals`]).
pub fn shutdown_on_signals() -> anyhow::Result<StopSignals> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let flag = Arc::new(AtomicBool::new(false));
    let (bell, ringer) = UnixStream::pair()?;
    // Registered in this order for each signal, and signal-hook runs a signal's actions in
    // their order: the byte comes after the flag is set.
    let register = |sig| -> anyhow::Result<()> {
        record_stop_signal(sig)?;
        signal_hook::flag::register(sig, flag.clone())?;
        signal_hook::low_level::pipe::register(sig, ringer.try_clone()?)?;
        Ok(())
    };
    for sig in [SIGTERM, SIGINT] {
        // Registered first, so the second signal finds the flag already set and exits, saying
        // so first (a stop that hangs is what makes an operator send it twice).
        let already = flag.clone();
        // SAFETY: the action reads an atomic and makes one write(2) of a static message to
        // standard error: both async-signal-safe, no allocation, no lock.
        unsafe {
            signal_hook::low_level::register(sig, move || {
                if already.load(Ordering::SeqCst) {
                    const SAID: &[u8] = b"weir: a second stop signal: exiting now, without \
                        finishing the stop (exit status 1)\n";
                    let _ = libc::write(2, SAID.as_ptr().cast(), SAID.len());
                }
            })?;
        }
        signal_hook::flag::register_conditional_shutdown(sig, 1, flag.clone())?;
        register(sig)?;
    }
    if !ignored(SIGHUP) {
        register(SIGHUP)?;
    }
    Ok(StopSignals { flag, bell })
}

/// The first stop signal received (0: none), and the pid of its sender (0: the kernel, as
/// for Ctrl-C on a terminal), for the "stopping" log line: an operator who did not send it
/// wants to know who did.
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);
static STOP_SENDER: AtomicI32 = AtomicI32::new(0);

/// Records in [`STOP_SIGNAL`] and [`STOP_SENDER`] the first stop signal and its sender.
fn record_stop_signal(sig: libc::c_int) -> std::io::Result<()> {
    // SAFETY: the action only reads the siginfo the kernel filled in for this delivery and
    // stores integers into atomics: no allocation, no lock, nothing that is not
    // async-signal-safe. `si_pid` reads the union member that kill(2), tgkill(2) and
    // sigqueue(3) fill; for a signal the kernel sends itself it reads 0 there.
    unsafe {
        signal_hook_registry::register_sigaction(sig, move |info: &libc::siginfo_t| {
            if STOP_SIGNAL
                .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                STOP_SENDER.store(info.si_pid(), Ordering::SeqCst);
            }
        })
    }?;
    Ok(())
}

/// The stop signal received and its sender's pid (0 if the kernel sent it), if any.
fn stop_signal() -> Option<(&'static str, i32)> {
    let sig = STOP_SIGNAL.load(Ordering::SeqCst);
    if sig == 0 {
        return None;
    }
    let name = signal_hook::low_level::signal_name(sig).unwrap_or("a signal");
    Some((name, STOP_SENDER.load(Ordering::SeqCst)))
}

/// File descriptors kept out of the sources' connection budget in [`check_open_file_limit`]:
/// segment and checkpoint files, sink files and sockets, the metrics server, listeners.
const RESERVED_FDS: u64 = 128;

/// Raises the soft limit on open files to the hard one, and returns the soft limit now in
/// force. Every connection a source holds is a descriptor, and the usual soft limit (1024) is
/// below what the sources accept by default (1000 connections each): idle clients could take
/// every descriptor, and the channel could then not create its next segment, nor a sink its
/// next file (audit 8). The hard limit is what the administrator allows; raising the soft one
/// to it is what servers do (Go's runtime does it for every program).
pub fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    // `None` is unlimited: nothing to raise, and nothing to warn about.
    let current = limit.current?;
    let Some(maximum) = limit.maximum.filter(|&m| m > current) else {
        return Some(current);
    };
    let raised = Rlimit {
        current: Some(maximum),
        maximum: Some(maximum),
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => {
            tracing::debug!(from = current, to = maximum, "raised the open-file limit");
            Some(maximum)
        }
        Err(e) => {
            tracing::debug!(error = %e, "could not raise the open-file limit");
            Some(current)
        }
    }
}

/// Warns when the sources together may hold more connections than the open-file limit leaves
/// room for, once [`RESERVED_FDS`] are kept for the rest of the agent: a flood of idle clients
/// could then leave the channels and sinks without descriptors.
pub fn check_open_file_limit(config: &AgentConfig, limit: Option<u64>) {
    let Some(limit) = limit else { return };
    let connections: u64 = (config.sources.iter())
        .filter_map(|s| s.kind.max_connections())
        .map(|n| n as u64)
        .sum();
    if connections + RESERVED_FDS > limit {
        tracing::warn!(
            connections,
            open_file_limit = limit,
            "the sources accept up to {connections} connections, more than the open-file limit \
             of {limit} leaves room for: idle clients could leave the channels and sinks without \
             files; raise the limit (ulimit -n, LimitNOFILE=) or lower max-connections"
        );
    }
}

/// Whether `sig` is ignored (`SIG_IGN`), as `nohup` leaves SIGHUP for the program it starts.
fn ignored(sig: libc::c_int) -> bool {
    let mut current = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: with a null new action, sigaction(2) changes nothing and only writes the current
    // disposition of `sig` into `current`, a valid, writable `sigaction` (zeroed beforehand, so
    // it is initialised whatever the call does).
    let rc = unsafe { libc::sigaction(sig, std::ptr::null(), current.as_mut_ptr()) };
    // SAFETY: an all-zero `sigaction` is a valid value (plain integers and pointers: a handler
    // address of 0 = SIG_DFL, an empty mask, no flags, a null `sa_restorer`), and sigaction(2)
    // only ever stores a valid one.
    let current = unsafe { current.assume_init() };
    rc == 0 && current.sa_sigaction == libc::SIG_IGN
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Instant;

    use super::*;
    use crate::event::Event;
    use crate::source::test_rig::{memory_channel, processor_for, take_bodies};
    use crate::stop::stopping;

    /// A source that panics in `run` or in `start` as told, and otherwise puts one event naming
    /// its run and waits for the stop.
    struct Flaky {
        panics_in_run: bool,
        panics_in_start: bool,
        runs: Arc<AtomicUsize>,
    }

    impl source::Source for Flaky {
        fn start(&mut self) -> anyhow::Result<()> {
            assert!(!self.panics_in_start, "start panics");
            Ok(())
        }
        fn run(self: Box<Self>, processor: ChannelProcessor, stop: StopFlag) {
            let run = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
            assert!(!self.panics_in_run, "run {run} panics");
            processor
                .process(vec![Event::new(format!("run {run}"))])
                .unwrap();
            while !stopping(&stop) {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    /// The first run panics, then the first start again panics too: the source is started a
    /// third time, after the two pauses, and runs.
    #[test]
    fn a_source_that_panics_is_started_again_after_a_pause() {
        let channel = memory_channel(100, 10, Duration::from_millis(10));
        let runs = Arc::new(AtomicUsize::new(0));
        let builds = Arc::new(AtomicUsize::new(0));
        let stop: StopFlag = crate::stop::Stop::new();
        let started = Instant::now();
        let supervisor = {
            let (channel, runs, stop) = (channel.clone(), runs.clone(), stop.clone());
            let builds = builds.clone();
            std::thread::spawn(move || {
                let first = Box::new(Flaky {
                    panics_in_run: true,
                    panics_in_start: false,
                    runs: runs.clone(),
                });
                let build = || -> Box<dyn source::Source> {
                    let n = builds.fetch_add(1, Ordering::SeqCst) + 1;
                    Box::new(Flaky {
                        panics_in_run: false,
                        panics_in_start: n == 1,
                        runs: runs.clone(),
                    })
                };
                run_supervised("r1", first, build, || processor_for(&channel), &stop);
            })
        };
        assert_eq!(
            take_bodies(&channel, 10, Duration::from_secs(20)),
            ["run 2"]
        );
        assert!(
            started.elapsed() >= RESTART_PAUSE * 3,
            "paused 1 s, then 2 s"
        );
        stop.set();
        supervisor.join().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert_eq!(builds.load(Ordering::SeqCst), 2);
    }

    /// A reload restarts the agent only when a setting changed: not for a comment, even one
    /// that moves every line (and with them the lines the notes name).
    #[test]
    fn only_a_changed_setting_counts_as_a_change() {
        let config = |text: &str| {
            let props = crate::config::Properties::parse(
                std::path::Path::new("a.properties"),
                text.as_bytes(),
            )
            .unwrap();
            AgentConfig::from_properties(&props, "a").unwrap()
        };
        // `keep-alive` on a null sink is noted as unused: a note naming its line.
        let text = "a.sources = r1\na.channels = c1\na.sinks = k1\n\
                    a.sources.r1.type = seq\na.sources.r1.channels = c1\n\
                    a.channels.c1.type = memory\n\
                    a.sinks.k1.type = null\na.sinks.k1.channel = c1\na.sinks.k1.unused = 1\n";
        let running = config(text);
        assert!(
            !running.notes.is_empty(),
            "the test needs a note naming a line"
        );
        let commented = config(&format!("# moved down a line\n{text}# and one more\n"));
        assert_ne!(running.notes, commented.notes);
        assert!(same_settings(&running, &commented));
        let changed = config(&text.replace(
            "type = memory",
            "type = memory\na.channels.c1.capacity = 500",
        ));
        assert!(!same_settings(&running, &changed));
    }
}
