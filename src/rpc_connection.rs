//! The TCP side that the avro and thrift RPC pairs share: a sink connecting to its target
//! ([`connect`]), a socket reader that waits for the peer while watching the agent's stop
//! flag and a reply deadline ([`patient_reader`]), and TLS over it when `ssl = true`
//! ([`Security`], [`open`]; the contexts come from [`crate::tls`]). The framing on top differs
//! (`avro_rpc`, `thrift_rpc`); this does not.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use openssl::ssl::{SslAcceptor, SslConnector, SslStream};
use parking_lot::Mutex;

use crate::config::{RpcTarget, TlsClientConfig, TlsServerConfig};
use crate::stop::{IDLE_WAIT, STOP_GRACE, StopFlag, stopping};

/// Why a frame of an RPC connection could not be read.
#[derive(Debug)]
pub enum FrameError {
    /// The connection failed (or timed out, or the agent is stopping).
    Io(io::Error),
    /// The peer closed the connection inside a frame.
    Truncated(String),
    /// The bytes are not a frame of the protocol (a negative or too large count or length).
    Bad(String),
    /// A server's frames in progress already hold its [`FrameLimits`] memory, or this frame
    /// took longer than its time limit: the connection is closed, the client may call again.
    OverLimit(String),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Io(e) => write!(f, "{e}"),
            FrameError::Truncated(m) => write!(f, "connection closed inside a frame: {m}"),
            FrameError::Bad(m) => write!(f, "not a frame: {m}"),
            FrameError::OverLimit(m) => write!(f, "{m}"),
        }
    }
}

/// Memory for the frames a server's connections are reading, shared by all of them: a frame
/// grows with the bytes that arrive, but a thousand clients each sending most of a large frame
/// (or a few kilobytes of zlib stream that inflate into one) made one agent hold gigabytes
/// before any of it was checked (audit 22). A frame that would pass what is left fails, and its
/// connection is closed; the client calls again later, as after any failed call.
///
/// Connections that have not yet made a call the server could read ("unproven": a port
/// scanner, a client of another protocol, a zlib bomb sent before any handshake) share only
/// [`UNPROVEN_SHARE`] of it, so that such peers cannot take the whole budget and refuse every
/// large call of the upstream agents already connected (audit 24).
#[derive(Clone)]
pub struct FrameBudget {
    used: Arc<AtomicUsize>,
    unproven: Arc<AtomicUsize>,
    total: usize,
}

/// The part of a [`FrameBudget`] (one over this) that frames of unproven connections may hold
/// together: an upstream sink's first call (the Avro handshake rides on it) is read from it,
/// and calls after that from the whole. Half: a first call of the avro source's largest
/// message, 256 MiB, still fits while no other unproven connection holds anything.
pub const UNPROVEN_SHARE: usize = 2;

/// What an RPC source lets all its connections' frames in progress hold together: room for two
/// frames of the avro source's largest, 256 MiB.
pub const SOURCE_FRAME_MEMORY: usize = 512 << 20;

/// How long a server waits for the rest of a frame once its first byte came: the avro and
/// thrift sinks give up a call after their `request-timeout` (20 s by default), so a frame
/// still arriving after a minute serves no one, and a client trickling one held a connection
/// and its frame's memory for as long as it liked.
pub const SOURCE_FRAME_TIME: Duration = Duration::from_secs(60);

impl FrameBudget {
    pub fn new(total: usize) -> FrameBudget {
        FrameBudget {
            used: Arc::new(AtomicUsize::new(0)),
            unproven: Arc::new(AtomicUsize::new(0)),
            total,
        }
    }

    fn unproven_total(&self) -> usize {
        self.total / UNPROVEN_SHARE
    }

    /// Bytes held now by frames in progress.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

/// A server connection's share of its [`FrameBudget`] and its frame time limit: what its
/// current frame holds, given back when the next frame starts or the connection ends.
pub struct FrameLimits {
    budget: FrameBudget,
    held: usize,
    /// The connection has made a call the server read and answered.
    proven: bool,
    /// The current frame is charged to the unproven share too (it began before the proof).
    frame_unproven: bool,
    time: Duration,
    deadline: Deadline,
}

impl FrameLimits {
    /// Limits for frames read through a reader whose deadline is `deadline`.
    pub fn new(budget: FrameBudget, time: Duration, deadline: Deadline) -> FrameLimits {
        FrameLimits {
            budget,
            held: 0,
            proven: false,
            frame_unproven: true,
            time,
            deadline,
        }
    }

    /// The connection's client made a call the server read and answered: its later frames may
    /// use the whole budget.
    pub fn prove(&mut self) {
        self.proven = true;
    }

    /// A new frame: what the last one held is given back.
    fn next_frame(&mut self) {
        self.budget.used.fetch_sub(self.held, Ordering::Relaxed);
        if self.frame_unproven {
            self.budget.unproven.fetch_sub(self.held, Ordering::Relaxed);
        }
        self.held = 0;
        self.frame_unproven = !self.proven;
    }

    /// The frame's first byte came: the rest must come within the time limit, and the agent's
    /// stop ends the read at once (the client sends the call again after the restart; waiting
    /// out a slow frame held the stop for the stop's grace).
    pub fn started(&mut self) {
        self.deadline.set_server_side(self.time);
    }

    /// `e`, from reading a frame, said as what it is when it is the time limit that ran out.
    fn explain(&self, e: FrameError) -> FrameError {
        match e {
            FrameError::Io(io) if io.kind() == ErrorKind::TimedOut => {
                FrameError::OverLimit(format!(
                    "a frame was not whole {} s after its first byte; closing the connection",
                    self.time.as_secs()
                ))
            }
            other => other,
        }
    }

    /// Takes `n` more bytes of the budget for the current frame.
    fn charge(&mut self, n: usize) -> Result<(), FrameError> {
        if self.frame_unproven {
            let share = self.budget.unproven_total();
            take(&self.budget.unproven, n, share).map_err(|used| {
                FrameError::OverLimit(format!(
                    "the frames of this source's connections that have not yet made a call \
                     already hold {used} bytes of the {share} they may share; closing this \
                     connection (its client may call again)"
                ))
            })?;
        }
        let total = self.budget.total;
        if let Err(used) = take(&self.budget.used, n, total) {
            if self.frame_unproven {
                self.budget.unproven.fetch_sub(n, Ordering::Relaxed);
            }
            return Err(FrameError::OverLimit(format!(
                "the frames this source's connections are reading already hold {used} bytes \
                 of its {total}; closing this connection (its client may call again)"
            )));
        }
        self.held += n;
        Ok(())
    }
}

/// A transport whose frames a server reads under [`FrameLimits`]: the avro and thrift ones.
pub trait LimitedFrames {
    /// The transport's frame limits (none until a server sets them) and its reader's deadline.
    fn frame_limits(&mut self) -> (&mut Option<FrameLimits>, &Deadline);

    /// A server's connection: the frames it reads share `budget` with the server's other
    /// connections, and each must be whole `time` after its first byte.
    fn limit_frames(&mut self, budget: FrameBudget, time: Duration) {
        let (limits, deadline) = self.frame_limits();
        *limits = Some(FrameLimits::new(budget, time, deadline.clone()));
    }

    /// The client made a call this server read and answered: its later frames may use the
    /// whole budget, not only the share of connections that have not yet done so.
    fn client_proven(&mut self) {
        if let Some(l) = self.frame_limits().0.as_mut() {
            l.prove();
        }
    }
}

/// Adds `n` to `counter` unless that passes `cap`; the count before, if it would.
fn take(counter: &AtomicUsize, n: usize, cap: usize) -> Result<usize, usize> {
    counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
        used.checked_add(n).filter(|&after| after <= cap)
    })
}

impl Drop for FrameLimits {
    fn drop(&mut self) {
        self.next_frame();
    }
}

/// Reads one frame with `read`, under `limits` when a server set them: what the last frame
/// held is given back first, and a timeout is said as the frame time limit it is.
pub fn read_limited<T>(
    limits: &mut Option<FrameLimits>,
    read: impl FnOnce(Option<&mut FrameLimits>) -> Result<T, FrameError>,
) -> Result<T, FrameError> {
    match limits.as_mut() {
        None => read(None),
        Some(l) => {
            l.next_frame();
            let frame = read(Some(&mut *l));
            frame.map_err(|e| l.explain(e))
        }
    }
}

/// Appends `len` bytes from `r` to `payload` as they arrive (never allocating for bytes not
/// sent), charging them to `limits` first when given. Returns how many came before the end of
/// the stream.
pub fn read_frame_bytes(
    r: &mut impl Read,
    len: usize,
    payload: &mut Vec<u8>,
    mut limits: Option<&mut FrameLimits>,
) -> Result<usize, FrameError> {
    const STEP: usize = 64 << 10;
    let mut got = 0;
    while got < len {
        let step = (len - got).min(STEP);
        if let Some(l) = limits.as_deref_mut() {
            l.charge(step)?;
        }
        let n = r
            .by_ref()
            .take(step as u64)
            .read_to_end(payload)
            .map_err(FrameError::Io)?;
        got += n;
        if n < step {
            break;
        }
    }
    Ok(got)
}

/// How often a blocked read looks at the stop flag and its deadline.
const POLL: Duration = Duration::from_millis(100);

/// [`connect`], given up when the agent stops: a target that drops connection attempts holds
/// the attempt for its whole `connect-timeout` (20 s by default), which a stop or a reload
/// should not wait for. The attempt goes on in a thread of its own, which the stop leaves to
/// end within that timeout (its connection, if any, is then closed unused).
pub fn connect_unless_stopped(
    target: &RpcTarget,
    stop: &StopFlag,
) -> anyhow::Result<(TcpStream, SocketAddr)> {
    let (tx, rx) = std::sync::mpsc::channel();
    let target = target.clone();
    std::thread::Builder::new()
        .name("rpc-connect".into())
        .spawn(move || {
            let _ = tx.send(connect(&target));
        })
        .context("cannot start a thread to connect")?;
    loop {
        match rx.recv_timeout(POLL) {
            Ok(result) => return result,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) if stopping(stop) => {
                anyhow::bail!("the agent is stopping")
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                anyhow::bail!("the connecting thread ended without a result")
            }
        }
    }
}

/// Connects to the first address of the target that answers within its `connect-timeout`;
/// writes time out after its `request-timeout`.
fn connect(target: &RpcTarget) -> anyhow::Result<(TcpStream, SocketAddr)> {
    let address = target.address();
    let addrs: Vec<SocketAddr> = address
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {address}"))?
        .collect();
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, target.connect_timeout) {
            Ok(stream) => {
                let _ = stream.set_write_timeout(Some(target.request_timeout));
                return Ok((stream, addr));
            }
            Err(e) => last = Some(anyhow::Error::new(e).context(format!("connect to {addr}"))),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("{address} resolves to no address")))
}

/// When the reply being read is due; `None` while no reply is awaited.
#[derive(Clone, Default)]
pub struct Deadline(Arc<Mutex<DeadlineState>>);

#[derive(Default)]
struct DeadlineState {
    at: Option<Instant>,
    /// A server's read (its TLS handshake, a frame from its client): it ends as soon as the
    /// agent stops, even while bytes keep arriving. The client has no answer for it yet, so it
    /// sends it again after the restart: nothing is lost, and the stop does not wait.
    server_side: bool,
    /// When a wait for a reply first found the agent stopping (kept across calls, so the
    /// grace is counted once).
    stop_seen: Option<Instant>,
}

impl Deadline {
    /// From now on, reads give up after `within` (`None`: they wait as long as the agent runs).
    pub fn set(&self, within: Option<Duration>) {
        let mut state = self.0.lock();
        state.at = within.map(|w| Instant::now() + w);
        state.server_side = false;
    }

    /// A server's read from now on must end within `within`, and at once at the agent's stop.
    fn set_server_side(&self, within: Duration) {
        let mut state = self.0.lock();
        state.at = Some(Instant::now() + within);
        state.server_side = true;
    }

    /// Whether the agent's stop ends the wait now: at once when no reply is awaited (an idle
    /// connection) or in a server's read; a reply to a call already sent is waited for
    /// until [`STOP_GRACE`] after the stop was first seen, since it is most likely on its way
    /// and giving it up makes the batch go again after the restart.
    fn stop_ends_wait(&self, stop: &StopFlag) -> bool {
        if !stopping(stop) {
            return false;
        }
        let mut state = self.0.lock();
        if state.at.is_none() || state.server_side {
            return true;
        }
        let seen = *state.stop_seen.get_or_insert_with(Instant::now);
        seen.elapsed() >= STOP_GRACE
    }

    fn passed(&self) -> bool {
        self.0.lock().at.is_some_and(|d| Instant::now() >= d)
    }

    /// How long until the deadline, if one is set.
    fn left(&self) -> Option<Duration> {
        self.0
            .lock()
            .at
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// The read must end now: the deadline passed, or a server's read meets the agent's stop.
    fn ends_read(&self, stop: &StopFlag) -> bool {
        let state = self.0.lock();
        state.at.is_some_and(|d| Instant::now() >= d) || (state.server_side && stopping(stop))
    }
}

/// A socket reader that sits out read timeouts (used to poll) until the agent stops or the
/// deadline passes.
pub struct PatientReader {
    stream: TcpStream,
    stop: StopFlag,
    deadline: Deadline,
}

impl Read for PatientReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // Looked at before every read too, not only when one times out: a peer trickling a
            // byte every few tens of milliseconds never lets a read time out, and held a TLS
            // handshake (and the agent's stop) for minutes (audit 18). A handshake also ends
            // at the stop here: a trickling client held the stop for up to its limit.
            if self.deadline.ends_read(&self.stop) {
                return Err(io::Error::new(ErrorKind::TimedOut, "no reply in time"));
            }
            // Until the stop, asleep until the peer sends, the agent stops or the deadline,
            // rather than woken by each read timeout (10 times a second for every idle
            // connection). From the stop on, the read timeouts pace the grace's checks.
            if !stopping(&self.stop) {
                let wait = self.deadline.left().unwrap_or(IDLE_WAIT);
                if !wait.is_zero() && !self.stop.wait_readable(&[self.stream.as_fd()], wait) {
                    continue;
                }
            }
            match self.stream.read(buf) {
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) =>
                {
                    if self.deadline.stop_ends_wait(&self.stop) {
                        return Err(io::Error::other("the agent is stopping"));
                    }
                    if self.deadline.passed() {
                        return Err(io::Error::new(ErrorKind::TimedOut, "no reply in time"));
                    }
                }
                other => return other,
            }
        }
    }
}

/// Sets `stream` up for an RPC connection (blocking, polling reads, no Nagle delay) and
/// returns a reader of it that gives up when `stop` is set or its deadline passes, with the
/// handle that sets the deadline.
pub fn patient_reader(stream: &TcpStream, stop: StopFlag) -> io::Result<(PatientReader, Deadline)> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(POLL))?;
    stream.set_nodelay(true)?;
    let deadline = Deadline::default();
    let reader = PatientReader {
        stream: stream.try_clone()?,
        stop,
        deadline: deadline.clone(),
    };
    Ok((reader, deadline))
}

/// How a connection's bytes travel: plain TCP, or TLS as the server or the client.
#[derive(Clone)]
pub enum Security {
    Plain,
    Server(Arc<SslAcceptor>),
    Client {
        connector: Arc<SslConnector>,
        /// Sent as the server name (SNI) when it is a DNS name.
        host: String,
    },
}

impl Security {
    /// A TLS server with the source's key (`None`: plain TCP).
    pub fn server(tls: Option<&TlsServerConfig>) -> anyhow::Result<Security> {
        Ok(match tls {
            None => Security::Plain,
            Some(tls) => Security::Server(Arc::new(crate::tls::acceptor(tls)?)),
        })
    }

    /// A TLS client of `host` (`None`: plain TCP). As Flume's sinks (Netty's SSLEngine with
    /// no endpoint identification), the server's certificate chain is checked against the
    /// trust store, not its host name: certificates that work with Flume work here.
    pub fn client(tls: Option<&TlsClientConfig>, host: &str) -> anyhow::Result<Security> {
        Ok(match tls {
            None => Security::Plain,
            Some(tls) => Security::Client {
                connector: Arc::new(crate::tls::connector(tls)?),
                host: host.to_owned(),
            },
        })
    }

    /// For a client whose first bytes were no frame at all: the settings its sink may use and
    /// this source does not, since a sink with TLS (or, for Avro, compression) talking to a
    /// source without it sends bytes that read as a nonsensical frame. `deflate`: whether this
    /// source decompresses (`None`: the protocol has no compression).
    pub fn first_frame_hint(&self, deflate: Option<bool>) -> String {
        let mut causes = Vec::new();
        if matches!(self, Security::Plain) {
            causes.push("ssl = true");
        }
        if deflate == Some(false) {
            causes.push("compression-type = deflate");
        }
        match causes.as_slice() {
            [] => "the client does not speak this source's protocol".to_owned(),
            causes => format!(
                "does the client's sink set {} (this source does not)?",
                causes.join(" or ")
            ),
        }
    }

    /// Logs why a client's connection could not be set up (a source's side). A failed TLS
    /// handshake is a client set up wrongly, or not speaking TLS at all: worth the operator's
    /// eye, unlike a socket option that could not be set or a probe that connected and left.
    pub fn report_setup_failure(&self, source: &str, peer: SocketAddr, e: &io::Error) {
        if matches!(self, Security::Server(_)) && e.kind() != ErrorKind::UnexpectedEof {
            tracing::warn!(source, %peer, error = %e, "cannot set up the connection");
        } else {
            tracing::info!(source, %peer, error = %e, "cannot set up the connection");
        }
    }
}

/// A connection's two ends as the transports use them, and the handle of its reply deadline.
pub struct Halves {
    pub reader: Box<dyn Read + Send>,
    pub writer: Box<dyn Write + Send>,
    pub deadline: Deadline,
}

/// Sets `stream` up for an RPC connection ([`patient_reader`]) and, with TLS, runs the
/// handshake (for at most [`crate::tls::HANDSHAKE_TIMEOUT`]).
pub fn open(stream: TcpStream, security: &Security, stop: StopFlag) -> io::Result<Halves> {
    let (patient, deadline) = patient_reader(&stream, stop)?;
    let plain = PatientStream {
        reader: patient,
        writer: stream,
    };
    let tls = match security {
        Security::Plain => {
            return Ok(Halves {
                reader: Box::new(plain.reader),
                writer: Box::new(plain.writer),
                deadline,
            });
        }
        Security::Server(acceptor) => {
            deadline.set_server_side(crate::tls::HANDSHAKE_TIMEOUT);
            acceptor
                .accept(plain)
                .map_err(crate::tls::handshake_failure)?
        }
        Security::Client { connector, host } => {
            deadline.set(Some(crate::tls::HANDSHAKE_TIMEOUT));
            connector
                .configure()
                .map_err(io::Error::other)?
                .verify_hostname(false)
                .use_server_name_indication(host.parse::<std::net::IpAddr>().is_err())
                .connect(host, plain)
                .map_err(|e| io::Error::other(format!("TLS handshake with {host}: {e}")))?
        }
    };
    deadline.set(None);
    let shared = Arc::new(Mutex::new(tls));
    Ok(Halves {
        reader: Box::new(TlsHalf(shared.clone())),
        writer: Box::new(TlsHalf(shared)),
        deadline,
    })
}

/// What TLS runs over: reads that sit out the socket's polling timeouts, so OpenSSL never
/// sees one mid-record, and plain writes.
struct PatientStream {
    reader: PatientReader,
    writer: TcpStream,
}

// Handshake errors print their stream.
impl std::fmt::Debug for PatientStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatientStream")
            .field("peer", &self.writer.peer_addr().ok())
            .finish()
    }
}

impl Read for PatientStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buf)
    }
}

impl Write for PatientStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

/// The reading or the writing end of one TLS stream. A connection is read and written by
/// one thread at a time (a request, then its reply), so the lock is never contended.
struct TlsHalf(Arc<Mutex<SslStream<PatientStream>>>);

impl Read for TlsHalf {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.lock().read(buf)
    }
}

impl Write for TlsHalf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.lock().flush()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// Runs a server handshake against a client trickling zeros, with the agent stopping
    /// (`stopping`) or not; returns whether it failed and how long it took.
    fn trickled_handshake(stopping: bool) -> (bool, Duration) {
        let security = Security::Server(Arc::new(crate::tls::fixture_acceptor()));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let trickle = crate::tls::trickling_client(listener.local_addr().unwrap(), done.clone());
        let (stream, _) = listener.accept().unwrap();
        let started = Instant::now();
        let failed = open(
            stream,
            &security,
            if stopping {
                crate::stop::Stop::stopped()
            } else {
                crate::stop::Stop::new()
            },
        )
        .is_err();
        let took = started.elapsed();
        done.store(true, Ordering::Relaxed);
        trickle.join().unwrap();
        (failed, took)
    }

    /// The avro and thrift sources' handshake ends at its limit for a client trickling it too
    /// (its reads never time out, so the limit is looked at before each read).
    #[test]
    fn a_trickling_handshake_ends_at_its_limit() {
        let (failed, took) = trickled_handshake(false);
        assert!(failed, "a handshake of zeros succeeded");
        let limit = crate::tls::HANDSHAKE_TIMEOUT;
        assert!(
            took >= limit && took < limit + Duration::from_secs(2),
            "{took:?}"
        );
    }

    /// At the agent's stop, a reply already on its way is still read (the sink's batch is
    /// then committed, not sent again after the restart), for up to the stop's grace; an idle
    /// connection, awaiting no reply, ends at once.
    #[test]
    fn a_reply_on_its_way_at_the_stop_is_still_read() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (stream, _) = listener.accept().unwrap();
        let stop = crate::stop::Stop::stopped();
        let (mut reader, deadline) = patient_reader(&stream, stop).unwrap();
        let mut buf = [0u8; 8];
        let started = Instant::now();
        let idle = reader.read(&mut buf);
        assert!(idle.is_err() && started.elapsed() < STOP_GRACE, "{idle:?}");

        deadline.set(Some(Duration::from_secs(30)));
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            peer.write_all(b"reply").unwrap();
            peer
        });
        assert_eq!(reader.read(&mut buf).expect("the reply was given up"), 5);
        let _peer = writer.join().unwrap();
        // No more reply comes: the wait ends at the grace, counted from the first look.
        let started = Instant::now();
        assert!(reader.read(&mut buf).is_err());
        assert!(started.elapsed() < STOP_GRACE + Duration::from_secs(1));
    }

    /// The agent's stop ends a trickling handshake at once, not at its limit (the avro and
    /// thrift sources' stop waited up to the limit for such a client, audit 19).
    #[test]
    fn a_trickling_handshake_ends_at_the_stop() {
        let (failed, took) = trickled_handshake(true);
        assert!(failed, "a handshake of zeros succeeded");
        assert!(took < crate::tls::HANDSHAKE_TIMEOUT / 2, "{took:?}");
    }
}
