//! Wiring and lifecycle: builds channels, sinks and sources from an [`AgentConfig`], runs them
//! on their own threads (the sinks of a sink group on one thread per group), and shuts down in
//! order on SIGTERM/SIGINT: sources stop accepting and finish their transactions, then sinks
//! finish (commit or roll back) their batch, then the channels close (the log syncs). A restart
//! resumes exactly where it stopped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;

use crate::channel::Channel;
use crate::channel::file::FileChannel;
use crate::channel::memory::MemoryChannel;
use crate::config::{AgentConfig, ChannelKind};
use crate::metrics::{self, Registry};
use crate::sink::{self, SinkCounters, SinkRunner};
use crate::source::{self, ChannelProcessor, SourceCounters};
use crate::stop::StopFlag;

pub struct AgentOptions {
    /// Serve metrics on this address (`--metrics-port`).
    pub metrics_addr: Option<String>,
}

/// Runs the agent until `shutdown` is set (by a signal handler or a test).
pub fn run(config: &AgentConfig, options: &AgentOptions, shutdown: StopFlag) -> anyhow::Result<()> {
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
    let source_stop: StopFlag = Arc::new(AtomicBool::new(false));
    let sink_stop: StopFlag = Arc::new(AtomicBool::new(false));
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
        });
    }
    let mut sources = Vec::new();
    for s in &config.sources {
        let mut src = source::build(s);
        src.start()?;
        let counters = Arc::new(SourceCounters::default());
        registry.sources.push((s.name.clone(), counters.clone()));
        sources.push((
            s.name.clone(),
            src,
            ChannelProcessor::new(s, &channels, counters).stopping_on(source_stop.clone()),
        ));
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
            let stop = sink_stop.clone();
            std::thread::Builder::new()
                .name(format!("sink-{}", r.name))
                .spawn(move || r.run(stop))
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
        .map(|(name, src, processor)| {
            let stop = source_stop.clone();
            std::thread::Builder::new()
                .name(format!("source-{name}"))
                .spawn(move || src.run(processor, stop))
        })
        .collect::<Result<_, _>>()?;
    tracing::info!(agent = %config.agent, "agent started");

    while !shutdown.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    tracing::info!(agent = %config.agent, "stopping: sources first, then sinks, then channels");
    source_stop.store(true, Ordering::Relaxed);
    for t in source_threads {
        let _ = t.join();
    }
    sink_stop.store(true, Ordering::Relaxed);
    for t in sink_threads {
        let _ = t.join();
    }
    if let Some(t) = metrics_thread {
        let _ = t.join();
    }
    drop(registry);
    drop(channels);
    tracing::info!(agent = %config.agent, "stopped");
    Ok(())
}

/// A flag set by SIGTERM, SIGINT or SIGHUP; a second signal exits at once. SIGHUP (the
/// terminal closing) stops the agent as the JVM running Flume stops it, cleanly, rather than
/// killing it in the middle of its transactions; weir reloads nothing on it. As with the JVM,
/// a SIGHUP the agent was started ignoring (`nohup`) stays ignored.
pub fn shutdown_on_signals() -> anyhow::Result<StopFlag> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let flag: StopFlag = Arc::new(AtomicBool::new(false));
    let hangup = (!ignored(SIGHUP)).then_some(SIGHUP);
    for sig in [SIGTERM, SIGINT].into_iter().chain(hangup) {
        // Registered first, so the second signal finds the flag already set and exits.
        signal_hook::flag::register_conditional_shutdown(sig, 1, flag.clone())?;
        signal_hook::flag::register(sig, flag.clone())?;
    }
    Ok(flag)
}

/// Whether `sig` is ignored (`SIG_IGN`), as `nohup` leaves SIGHUP for the program it starts.
fn ignored(sig: libc::c_int) -> bool {
    let mut current = std::mem::MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: with a null new action, sigaction(2) changes nothing and only writes the current
    // disposition of `sig` into `current`, a valid, writable `sigaction` (zeroed beforehand, so
    // it is initialised whatever the call does).
    let rc = unsafe { libc::sigaction(sig, std::ptr::null(), current.as_mut_ptr()) };
    // SAFETY: an all-zero `sigaction` is a valid value (plain integers, a handler address of
    // 0 = SIG_DFL, an empty mask), and sigaction(2) only ever stores a valid one.
    let current = unsafe { current.assume_init() };
    rc == 0 && current.sa_sigaction == libc::SIG_IGN
}
