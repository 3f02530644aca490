//! The receive loop of the UDP sources (`syslogudp`, `netcatudp`): datagrams already queued on
//! the socket are gathered into one transaction (up to a batch size), so a burst costs one
//! commit rather than one per datagram.
//!
//! UDP cannot push back: a datagram the channel refuses is lost. The loop logs it (rate-limited)
//! and the processor counts it (`channel_write_fail`); waiting would only make the kernel drop
//! newer datagrams instead. At stop, what has already arrived is still taken in, for at most
//! [`DRAIN_LIMIT`].

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::reporter::Reporter;
use super::{ChannelProcessor, StopFlag, resolve, stopping};
use crate::event::Event;

/// How long a receive blocks (the loop waits for a datagram before it receives, so this only
/// bounds a receive that found none), and the pause after a failed one.
const POLL: Duration = Duration::from_millis(100);
/// At stop, how long the loop keeps taking in what has already arrived.
pub(crate) const DRAIN_LIMIT: Duration = Duration::from_secs(2);
/// Larger than any datagram, so the kernel never cuts one: the source decides what to keep.
const DATAGRAM_MAX: usize = 65536;

/// A UDP socket bound to `host:port` whose receives time out, so the loop sees the stop flag.
pub(crate) fn bind(source: &str, kind: &str, host: &str, port: u16) -> anyhow::Result<UdpSocket> {
    let socket = UdpSocket::bind(&resolve(source, host, port)?[..])
        .with_context(|| format!("source {source}: cannot listen on UDP {host}:{port}"))?;
    socket.set_read_timeout(Some(POLL))?;
    tracing::info!(source = %source, addr = %socket.local_addr()?, "{kind} source listening (UDP)");
    Ok(socket)
}

/// Receives datagrams until `stop`, turning each into events with `to_events` (which reports
/// problems with the datagram through the reporter it is given) and putting them in
/// transactions of at most `batch_size` events.
pub(crate) fn receive(
    source: &str,
    socket: &UdpSocket,
    processor: &ChannelProcessor,
    stop: &StopFlag,
    batch_size: usize,
    mut to_events: impl FnMut(&[u8], SocketAddr, &mut Reporter, &mut Vec<Event>),
) {
    let mut reporter = Reporter::new(source, None);
    let mut buf = vec![0u8; DATAGRAM_MAX];
    let mut events: Vec<Event> = Vec::new();
    let mut stopping_since: Option<Instant> = None;
    // Blocking (with the poll timeout) while idle; non-blocking while gathering what is
    // already queued into one transaction, and while draining at stop.
    let mut nonblocking = false;
    let set_mode = |nb: bool, current: &mut bool| {
        if *current != nb {
            let _ = socket.set_nonblocking(nb);
            *current = nb;
        }
    };
    loop {
        if stopping_since.is_none() && stopping(stop) {
            stopping_since = Some(Instant::now());
        }
        // Idle: asleep until a datagram or the stop, rather than woken by each receive
        // timeout (10 times a second).
        if stopping_since.is_none()
            && !nonblocking
            && !stop.wait_readable(&[socket.as_fd()], crate::stop::IDLE_WAIT)
        {
            continue;
        }
        let got = match socket.recv_from(&mut buf) {
            Ok((n, peer)) => {
                reporter.for_client(peer);
                to_events(&buf[..n], peer, &mut reporter, &mut events);
                true
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                false
            }
            Err(e) => {
                processor
                    .counters()
                    .read_fail
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(source = %source, error = %e, "UDP receive failed");
                std::thread::sleep(POLL);
                false
            }
        };
        if got && events.len() < batch_size {
            set_mode(true, &mut nonblocking);
            continue;
        }
        if !events.is_empty() {
            let n = events.len();
            if let Err(e) = processor.process(std::mem::take(&mut events)) {
                reporter.report(format_args!(
                    "channel refused {n} datagrams, which are lost: UDP cannot make the sender wait ({e})"
                ));
            }
        }
        match stopping_since {
            Some(t) if !got || t.elapsed() > DRAIN_LIMIT => break,
            Some(_) => set_mode(true, &mut nonblocking),
            None if !got => set_mode(false, &mut nonblocking),
            None => {}
        }
    }
    reporter.finish();
}
