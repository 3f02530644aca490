//! The netcat source: one line of text is one event and one transaction; the client gets `OK`
//! once the event is committed, or `FAILED: reason` (Flume's NetcatSource). Each connection has
//! its own thread; concurrent connections share the channel's group commit.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{ChannelProcessor, Source, StopFlag, listen_tcp, serve_clients, stopping};
use crate::config::NetcatConfig;
use crate::event::Event;

/// How often blocked threads look at the stop flag.
const POLL: Duration = Duration::from_millis(100);

pub struct NetcatSource {
    name: String,
    config: NetcatConfig,
    listener: Option<TcpListener>,
}

impl NetcatSource {
    pub fn new(name: &str, config: NetcatConfig) -> NetcatSource {
        NetcatSource {
            name: name.to_owned(),
            config,
            listener: None,
        }
    }
}

impl Source for NetcatSource {
    fn start(&mut self) -> anyhow::Result<()> {
        let listener = listen_tcp(&self.name, &self.config.bind, self.config.port)?;
        tracing::info!(source = %self.name, addr = %listener.local_addr()?, "netcat source listening");
        self.listener = Some(listener);
        Ok(())
    }

    fn run(self: Box<Self>, processor: ChannelProcessor, stop: StopFlag) {
        let Some(listener) = self.listener else {
            tracing::error!(source = %self.name, "netcat source run before start");
            return;
        };
        let (name, cfg, st) = (self.name.clone(), self.config.clone(), stop.clone());
        serve_clients(
            &self.name,
            "netcat",
            listener,
            self.config.max_connections,
            &stop,
            |mut stream, peer| {
                tracing::warn!(source = %self.name, %peer, "refusing connection: max-connections reached");
                let _ = stream.write_all(b"FAILED: too many connections\n");
            },
            move |stream, peer| serve(&name, stream, peer, &cfg, &processor, &st),
        );
    }
}

/// Serves one client until it leaves or the agent stops.
fn serve(
    name: &str,
    mut stream: TcpStream,
    peer: SocketAddr,
    cfg: &NetcatConfig,
    processor: &ChannelProcessor,
    stop: &StopFlag,
) {
    let counters = processor.counters();
    counters.open_connections.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(source = name, %peer, "client connected");
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(POLL));
    let _ = stream.set_nodelay(true);
    let mut line: Vec<u8> = Vec::with_capacity(cfg.max_line_length.min(64 * 1024));
    // True while discarding the rest of an over-long line.
    let mut overflow = false;
    let mut buf = vec![0u8; 64 * 1024];
    'conn: while !stopping(stop) {
        let n = match stream.read(&mut buf) {
            Ok(0) => {
                if !line.is_empty() || overflow {
                    tracing::info!(source = name, %peer, bytes = line.len(), "client closed mid-line; partial line discarded");
                }
                break;
            }
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(e) => {
                tracing::info!(source = name, %peer, error = %e, "connection error");
                counters.read_fail.fetch_add(1, Ordering::Relaxed);
                break;
            }
        };
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            let (chunk, complete) = match rest.iter().position(|b| *b == b'\n') {
                Some(i) => (&rest[..i], Some(i + 1)),
                None => (rest, None),
            };
            // The limit counts the newline, as Flume's does.
            if !overflow
                && line.len() + chunk.len() + usize::from(complete.is_some()) > cfg.max_line_length
            {
                overflow = true;
                line.clear();
            }
            if !overflow {
                line.extend_from_slice(chunk);
            }
            let Some(used) = complete else { break };
            rest = &rest[used..];
            let reply = if overflow {
                overflow = false;
                counters.read_fail.fetch_add(1, Ordering::Relaxed);
                tracing::info!(source = name, %peer, limit = cfg.max_line_length, "line too long; refused");
                Some(format!(
                    "FAILED: Event exceeds the maximum length ({} bytes, including newline)\n",
                    cfg.max_line_length
                ))
            } else {
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                let event = Event::new(std::mem::take(&mut line));
                match processor.process(vec![event]) {
                    Ok(()) => cfg.ack_every_event.then(|| "OK\n".to_owned()),
                    Err(e) => {
                        tracing::debug!(source = name, %peer, error = %e, "event refused");
                        Some(format!("FAILED: {e}\n"))
                    }
                }
            };
            if let Some(reply) = reply
                && let Err(e) = stream.write_all(reply.as_bytes())
            {
                tracing::info!(source = name, %peer, error = %e, "client went away before its reply");
                break 'conn;
            }
        }
    }
    counters.open_connections.fetch_sub(1, Ordering::Relaxed);
}
