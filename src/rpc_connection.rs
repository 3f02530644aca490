//! The TCP side that the avro and thrift RPC pairs share: a sink connecting to its target
//! ([`connect`]), and a socket reader that waits for the peer while watching the agent's stop
//! flag and a reply deadline ([`patient_reader`]). The framing on top differs (`avro_rpc`,
//! `thrift_rpc`); this does not.

use std::io::{self, ErrorKind, Read};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use parking_lot::Mutex;

use crate::config::RpcTarget;
use crate::stop::{StopFlag, stopping};

/// Why a frame of an RPC connection could not be read.
#[derive(Debug)]
pub enum FrameError {
    /// The connection failed (or timed out, or the agent is stopping).
    Io(io::Error),
    /// The peer closed the connection inside a frame.
    Truncated(String),
    /// The bytes are not a frame of the protocol (a negative or too large count or length).
    Bad(String),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Io(e) => write!(f, "{e}"),
            FrameError::Truncated(m) => write!(f, "connection closed inside a frame: {m}"),
            FrameError::Bad(m) => write!(f, "not a frame: {m}"),
        }
    }
}

/// How often a blocked read looks at the stop flag and its deadline.
const POLL: Duration = Duration::from_millis(100);

/// Connects to the first address of the target that answers within its `connect-timeout`;
/// writes time out after its `request-timeout`.
pub fn connect(target: &RpcTarget) -> anyhow::Result<(TcpStream, SocketAddr)> {
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
pub struct Deadline(Arc<Mutex<Option<Instant>>>);

impl Deadline {
    /// From now on, reads give up after `within` (`None`: they wait as long as the agent runs).
    pub fn set(&self, within: Option<Duration>) {
        *self.0.lock() = within.map(|w| Instant::now() + w);
    }

    fn passed(&self) -> bool {
        self.0.lock().is_some_and(|d| Instant::now() >= d)
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
            match self.stream.read(buf) {
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) =>
                {
                    if stopping(&self.stop) {
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
