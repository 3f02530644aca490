//! TLS contexts built from the configuration's TLS settings (`config::tls`): the acceptor a
//! source presents its key with (avro, thrift, http, syslog TCP) and the connector an RPC
//! sink checks its target with; and [`ServerStream`], a served connection that is plain TCP
//! or TLS, for the sources that poll their sockets (http, syslog). OpenSSL, the library
//! librdkafka's TLS links too. The RPC pairs' connections are `rpc_connection`'s. Also the TLS
//! settings of the HTTP clients (the http and hdfs sinks' `ureq` agents): [`http_client_tls`].

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::Context;
use openssl::pkey::PKey;
use openssl::ssl::{
    ErrorCode, HandshakeError, SslAcceptor, SslConnector, SslMethod, SslOptions, SslStream,
    SslVerifyMode,
};
use openssl::x509::X509;
use openssl::x509::store::X509StoreBuilder;
use rustix::event::{PollFd, PollFlags, Timespec};

use crate::config::{Protocols, TlsClientConfig, TlsServerConfig};
use crate::stop::{StopFlag, stopping};

/// How long a server-side TLS handshake may take.
#[cfg(not(test))]
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Unit tests wait out the handshake limit.
#[cfg(test)]
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(1);

/// A server presenting the key and certificate chain of `tls`.
pub fn acceptor(tls: &TlsServerConfig) -> anyhow::Result<SslAcceptor> {
    Ok(acceptor_builder(tls)?.build())
}

/// [`acceptor`] for a server that never writes to its clients (syslog over TLS): it sends no
/// TLS 1.3 session tickets. Such a client never reads, so the tickets wait unread in its
/// socket, and its `close()` then sends a reset instead of a FIN, which makes the server's
/// kernel drop what it had received and not yet handed over: a client sending 20,000 lines
/// and closing lost all but 2,185 of them (audit 18). Without tickets the client can only do
/// full handshakes, which costs a syslog sender little.
pub fn silent_acceptor(tls: &TlsServerConfig) -> anyhow::Result<SslAcceptor> {
    let mut b = acceptor_builder(tls)?;
    b.set_num_tickets(0)?;
    Ok(b.build())
}

fn acceptor_builder(tls: &TlsServerConfig) -> anyhow::Result<openssl::ssl::SslAcceptorBuilder> {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    let key = PKey::private_key_from_pem(tls.key.key.as_bytes())?;
    let mut chain = X509::stack_from_pem(tls.key.chain.as_bytes())?.into_iter();
    let leaf = chain
        .next()
        .context("the key store's key has no certificate")?;
    b.set_private_key(&key)?;
    b.set_certificate(&leaf)?;
    for cert in chain {
        b.add_extra_chain_cert(cert)?;
    }
    b.check_private_key()
        .context("the key store's key does not match its certificate")?;
    b.set_options(exclusions(&tls.protocols));
    if let Some(ciphers) = &tls.ciphers {
        ciphers.apply(&mut b)?;
    }
    Ok(b)
}

/// A client checking servers against the trust store of `tls` (which replaces the system's
/// roots, as a Java trust store does), the system's roots without one, or nothing with
/// `trust-all-certs`. The host name is checked by the caller's connection, if at all.
pub fn connector(tls: &TlsClientConfig) -> anyhow::Result<SslConnector> {
    let mut b = SslConnector::builder(SslMethod::tls_client())?;
    if tls.trust_all {
        b.set_verify(SslVerifyMode::NONE);
    } else if let Some(pem) = &tls.trusted {
        let mut store = X509StoreBuilder::new()?;
        for cert in X509::stack_from_pem(pem.as_bytes())? {
            store.add_cert(cert)?;
        }
        b.set_cert_store(store.build());
    }
    b.set_options(exclusions(&tls.protocols));
    if let Some(ciphers) = &tls.ciphers {
        ciphers.apply(&mut b)?;
    }
    Ok(b.build())
}

fn exclusions(p: &Protocols) -> SslOptions {
    let mut o = SslOptions::NO_SSLV3;
    for v in &p.excluded {
        o |= match *v {
            "TLSv1" => SslOptions::NO_TLSV1,
            "TLSv1.1" => SslOptions::NO_TLSV1_1,
            "TLSv1.2" => SslOptions::NO_TLSV1_2,
            _ => SslOptions::NO_TLSV1_3,
        };
    }
    o
}

/// A failed server-side handshake as an I/O error naming OpenSSL's reason: of kind
/// `UnexpectedEof` when the peer closed before finishing it (a port probe or a health check,
/// not worth a warning), else `Other`.
pub fn handshake_failure<S: std::fmt::Debug>(e: HandshakeError<S>) -> std::io::Error {
    /// OpenSSL 3's reason for a peer that closed mid-handshake (`sslerr.h`).
    const UNEXPECTED_EOF_WHILE_READING: std::ffi::c_int = 294;
    let closed = match &e {
        HandshakeError::Failure(mid) => {
            let err = mid.error();
            // OpenSSL 1.1 said it as a SYSCALL error without an errno.
            (err.code() == ErrorCode::SYSCALL && err.io_error().is_none())
                || err.ssl_error().is_some_and(|stack| {
                    stack
                        .errors()
                        .iter()
                        .any(|x| x.reason_code() == UNEXPECTED_EOF_WHILE_READING)
                })
        }
        _ => false,
    };
    let kind = if closed {
        ErrorKind::UnexpectedEof
    } else {
        ErrorKind::Other
    };
    std::io::Error::new(kind, format!("TLS handshake: {e}"))
}

/// A served connection's bytes: plain TCP, or TLS over it. Its reads are polled through the
/// socket's read timeout: a timeout reaches a TLS read as `WouldBlock`, after which OpenSSL
/// resumes the record where it left off, so both kinds are polled the same way, and a TLS
/// stream made non-blocking through [`ServerStream::tcp`] reads what has arrived as a plain
/// one does.
pub enum ServerStream {
    Plain(TcpStream),
    Tls(Box<SslStream<TcpStream>>),
}

impl ServerStream {
    /// `stream` as is without `acceptor`, else once the TLS handshake has succeeded, within
    /// [`HANDSHAKE_TIMEOUT`] unless the agent stops first. `stream` must have a read timeout
    /// (the polling interval). A peer that closed before sending anything (a port probe, a
    /// health check) gives an `UnexpectedEof` error, one that sent no handshake in time
    /// `TimedOut`.
    pub fn accept(
        stream: TcpStream,
        acceptor: Option<&SslAcceptor>,
        stop: &StopFlag,
    ) -> std::io::Result<ServerStream> {
        let Some(acceptor) = acceptor else {
            return Ok(ServerStream::Plain(stream));
        };
        let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
        // Non-blocking while the handshake runs, so that OpenSSL hands control back whenever
        // the bytes that arrived are used up and the deadline is looked at then: with the
        // polling read timeout alone, a client trickling a byte every 40 ms kept one handshake
        // going for minutes, and the agent's stop waiting for it (audit 18).
        stream.set_nonblocking(true)?;
        let mut attempt = acceptor.accept(stream);
        loop {
            match attempt {
                Ok(tls) => {
                    tls.get_ref().set_nonblocking(false)?;
                    return Ok(ServerStream::Tls(Box::new(tls)));
                }
                Err(HandshakeError::WouldBlock(mid)) => {
                    let now = Instant::now();
                    if stopping(stop) || now >= deadline {
                        return Err(std::io::Error::new(
                            ErrorKind::TimedOut,
                            "TLS handshake: not complete in time",
                        ));
                    }
                    let flags = if mid.error().code() == ErrorCode::WANT_WRITE {
                        PollFlags::OUT
                    } else {
                        PollFlags::IN
                    };
                    // Short enough to see a stop in time, never past the deadline.
                    let wait = (deadline - now).min(Duration::from_millis(100));
                    let timeout = Timespec::try_from(wait).unwrap_or(Timespec {
                        tv_sec: 0,
                        tv_nsec: 100_000_000,
                    });
                    let mut fds = [PollFd::new(mid.get_ref(), flags)];
                    match rustix::event::poll(&mut fds, Some(&timeout)) {
                        Ok(_) | Err(rustix::io::Errno::INTR) => {}
                        Err(e) => return Err(e.into()),
                    }
                    attempt = mid.handshake();
                }
                Err(e) => return Err(handshake_failure(e)),
            }
        }
    }

    /// The socket under the connection.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            ServerStream::Plain(s) => s,
            ServerStream::Tls(s) => s.get_ref(),
        }
    }

    /// Whether bytes already taken from the socket wait to be read (TLS decrypts a whole
    /// record at a time): a reader must read them before it waits on the socket.
    pub fn has_buffered(&self) -> bool {
        match self {
            ServerStream::Plain(_) => false,
            ServerStream::Tls(s) => s.ssl().pending() > 0,
        }
    }

    /// Sends TLS's close_notify, so the client knows nothing was cut off; nothing for plain TCP.
    pub fn close_tls(&mut self) {
        if let ServerStream::Tls(tls) = self {
            let _ = tls.shutdown();
        }
    }
}

impl Read for ServerStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            ServerStream::Plain(s) => s.read(buf),
            ServerStream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for ServerStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            ServerStream::Plain(s) => s.write(buf),
            ServerStream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            ServerStream::Plain(s) => s.flush(),
            ServerStream::Tls(s) => s.flush(),
        }
    }
}

/// The TLS settings of an HTTP client (`ureq`, over native-tls: the system OpenSSL): the
/// system's trusted roots, or, when the agent has a global trust store (`trusted`, PEM checked
/// when the configuration was read), those roots instead, as `javax.net.ssl.trustStore`
/// replaces them in Java.
#[cfg(feature = "https")]
pub fn http_client_tls(trusted: Option<&str>) -> ureq::tls::TlsConfig {
    let roots = match trusted {
        None => ureq::tls::RootCerts::PlatformVerifier,
        Some(pem) => {
            let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(pem.as_bytes())
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            ureq::tls::RootCerts::new_with_certs(&certs)
        }
    };
    ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::NativeTls)
        .root_certs(roots)
        .build()
}

/// The test fixtures' server key (`tests/fixtures/java-stores/`), for handshakes in tests.
#[cfg(test)]
pub(crate) fn fixture_acceptor() -> SslAcceptor {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/java-stores/");
    let read = |name: &str| std::fs::read_to_string(format!("{dir}{name}")).unwrap();
    acceptor(&TlsServerConfig {
        key: crate::config::java_keystore::KeyPem {
            alias: "server".into(),
            key: read("server.key.pem"),
            chain: read("server.pem"),
        },
        protocols: Protocols::default(),
        ciphers: None,
    })
    .unwrap()
}

/// A client of `addr` that sends a TLS record header announcing 16 KiB and then one byte of
/// it every 40 ms, so that no read of the server's ever times out, until `done` is set.
#[cfg(test)]
pub(crate) fn trickling_client(
    addr: std::net::SocketAddr,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut c = TcpStream::connect(addr).unwrap();
        let _ = c.write_all(&[0x16, 0x03, 0x01, 0x40, 0x00]);
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            if c.write_all(&[0]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(40));
        }
    })
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// A client trickling its handshake never lets a read time out: the handshake still ends
    /// at its limit.
    #[test]
    fn a_trickling_handshake_ends_at_its_limit() {
        let acceptor = fixture_acceptor();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let trickle = trickling_client(listener.local_addr().unwrap(), done.clone());
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let stop: StopFlag = crate::stop::Stop::new();
        let started = Instant::now();
        let err = match ServerStream::accept(stream, Some(&acceptor), &stop) {
            Ok(_) => panic!("a handshake of zeros succeeded"),
            Err(e) => e,
        };
        let took = started.elapsed();
        done.store(true, Ordering::Relaxed);
        trickle.join().unwrap();
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
        assert!(
            took >= HANDSHAKE_TIMEOUT && took < HANDSHAKE_TIMEOUT + Duration::from_secs(2),
            "{took:?}"
        );
    }
}
