//! A TLS front for the plaintext test broker (tansu has no TLS listener): it accepts TLS with
//! the fixture server certificate (`tests/fixtures/java-stores`), requires a client
//! certificate signed by the fixture CA, and forwards the bytes to the broker. The broker
//! advertises the proxy's address, so every connection a client makes goes through it.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod, SslStream, SslVerifyMode};

pub fn java_stores() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/java-stores")
}

pub struct TlsProxy {
    pub port: u16,
    stop: Arc<AtomicBool>,
    /// Why each refused handshake failed, as OpenSSL says it.
    refused: Arc<Mutex<Vec<String>>>,
    accepting: Option<JoinHandle<()>>,
}

impl TlsProxy {
    /// Listens on `port` and forwards to 127.0.0.1:`to`.
    pub fn start(port: u16, to: u16) -> TlsProxy {
        let dir = java_stores();
        let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).expect("acceptor");
        b.set_certificate_chain_file(dir.join("server.pem"))
            .expect("server certificate");
        b.set_private_key_file(dir.join("server.key.pem"), SslFiletype::PEM)
            .expect("server key");
        b.set_ca_file(dir.join("ca.pem")).expect("CA");
        b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
        let acceptor = Arc::new(b.build());
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the TLS proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let refused = Arc::new(Mutex::new(Vec::new()));
        let accepting = {
            let (stop, refused) = (stop.clone(), refused.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let tcp = match listener.accept() {
                        Ok((tcp, _)) => tcp,
                        Err(_) => {
                            std::thread::sleep(Duration::from_millis(10));
                            continue;
                        }
                    };
                    let (acceptor, stop, refused) =
                        (acceptor.clone(), stop.clone(), refused.clone());
                    std::thread::spawn(move || {
                        let _ = tcp.set_nonblocking(false);
                        let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
                        match acceptor.accept(tcp) {
                            Ok(tls) => forward(tls, to, &stop),
                            Err(e) => refused.lock().unwrap().push(e.to_string()),
                        }
                    });
                }
            })
        };
        TlsProxy {
            port,
            stop,
            refused,
            accepting: Some(accepting),
        }
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Why the handshakes refused so far failed.
    pub fn refused(&self) -> Vec<String> {
        self.refused.lock().unwrap().clone()
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.accepting.take() {
            let _ = h.join();
        }
    }
}

/// Copies both ways until either side closes. One thread polls both sockets with short read
/// timeouts: an `SslStream` cannot be split between two threads.
fn forward(mut tls: SslStream<TcpStream>, to: u16, stop: &AtomicBool) {
    let Ok(mut plain) = TcpStream::connect(("127.0.0.1", to)) else {
        return;
    };
    let tick = Some(Duration::from_millis(1));
    if tls.get_ref().set_read_timeout(tick).is_err() || plain.set_read_timeout(tick).is_err() {
        return;
    }
    let mut buf = vec![0u8; 64 << 10];
    let idle = |e: &std::io::Error| matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut);
    while !stop.load(Ordering::Relaxed) {
        match tls.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if plain.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if idle(&e) => {}
            Err(_) => return,
        }
        match plain.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if tls.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if idle(&e) => {}
            Err(_) => return,
        }
    }
}
