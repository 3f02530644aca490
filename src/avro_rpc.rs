//! Avro RPC as Flume's avro source and sink speak it (Avro IPC over Netty, as in Flume's
//! `NettyServer` and `NettyAvroRpcClient`): the framing of messages on the TCP stream, the
//! handshake that names each side's protocol, and the calls and replies of Flume's
//! `AvroSourceProtocol`. Both the source (server side, [`Responder`]) and the sink (client side,
//! [`Requestor`]) use it, and neither depends on the other. The format follows the Avro
//! specification's "Protocol Wire Format" and Avro's `NettyTransportCodec`:
//!
//! - A frame is `serial: i32 BE`, `count: i32 BE`, then `count` times `len: i32 BE` and `len`
//!   bytes; the message is the buffers joined. A reply carries its request's serial. Frames are
//!   capped ([`MAX_FRAME_BYTES`], [`MAX_BUFFERS`]) and read as their bytes arrive, so a false
//!   length never allocates more than what was actually sent.
//! - A call is, on a connection without a completed handshake, a `HandshakeRequest`; then the
//!   call metadata (`map<bytes>`), the message name and its parameters. A reply is, on the
//!   handshake call, a `HandshakeResponse`; then metadata, an error flag and the response (or
//!   the error, a `union{string}` for Avro's system errors). Netty connections are stateful:
//!   once a handshake matched, later calls on the connection carry none.
//! - `compression-type = deflate` wraps each direction of the whole connection in one zlib
//!   stream, flushed (sync flush) after each frame, as Netty's `ZlibEncoder`/`ZlibDecoder` do.
//!
//! The server accepts any client protocol that parses as an Avro protocol's JSON and names its
//! messages, remembers it by its hash, and dispatches calls by message name: `append` and
//! `appendBatch` are read with Flume's shapes (the lenient choice; a Java Flume client only
//! ever sends Flume's protocol, whose exact JSON text, and so hash, depends on the Avro version
//! that generated it). A call the client's protocol does not declare, or that the server does
//! not serve, gets an Avro system error and the connection stays open.
//!
//! Written by hand rather than with the `apache-avro` crate, for the reason given in
//! `flume_event_format` (whose encoder and cursor are reused here): the messages are fixed, a
//! dozen primitives of the binary encoding. The crate has no Avro RPC (protocols, handshakes,
//! Netty framing) either, so it would only have replaced those primitives. Interoperability is
//! checked against the Python `avro` package's IPC code in tests/avro.rs.

use std::collections::HashMap;
use std::io::{self, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use md5::{Digest, Md5};
use parking_lot::Mutex;

use crate::event::{Event, Headers};
use crate::flume_event_format::{
    Cursor, encode_into, encoded_size_hint, put_bytes, put_bytes_map, put_long,
};
pub use crate::rpc_connection::FrameError;
use crate::rpc_connection::{
    Deadline, FrameLimits, Halves, LimitedFrames, Security, open, read_frame_bytes, read_limited,
};
use crate::stop::StopFlag;

/// Flume's `AvroSourceProtocol` (flume-ng-sdk's `flume.avdl`) as Avro protocol JSON.
pub const PROTOCOL: &str = concat!(
    r#"{"protocol":"AvroSourceProtocol","namespace":"org.apache.flume.source.avro","#,
    r#""types":[{"type":"enum","name":"Status","symbols":["OK","FAILED","UNKNOWN"]},"#,
    r#"{"type":"record","name":"AvroFlumeEvent","fields":[{"name":"headers","type":"#,
    r#"{"type":"map","values":"string"}},{"name":"body","type":"bytes"}]}],"#,
    r#""messages":{"append":{"request":[{"name":"event","type":"AvroFlumeEvent"}],"#,
    r#""response":"Status"},"appendBatch":{"request":[{"name":"events","type":"#,
    r#"{"type":"array","items":"AvroFlumeEvent"}}],"response":"Status"}}}"#
);

/// The MD5 of a protocol's JSON text: how a handshake names a protocol.
pub fn protocol_hash(text: &str) -> [u8; 16] {
    Md5::digest(text.as_bytes()).into()
}

/// The largest message weir reads (all buffers of a frame together). Flume sets no limit;
/// a batch of 100 events of up to 2 MiB each fits.
pub const MAX_FRAME_BYTES: usize = 256 << 20;
/// The most buffers one frame may claim. Java's Avro cuts a message into 8 KiB buffers, so a
/// full-size frame has about 32,768.
pub const MAX_BUFFERS: usize = 1 << 20;

/// One framed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub serial: i32,
    pub payload: Vec<u8>,
}

/// A frame holding `payload` as one buffer (none if it is empty; several if it is over 1 GiB,
/// since a buffer's length is an `i32`).
pub fn encode_frame(serial: i32, payload: &[u8]) -> Vec<u8> {
    const MAX_BUFFER: usize = 1 << 30;
    let count = payload.len().div_ceil(MAX_BUFFER);
    let mut out = Vec::with_capacity(payload.len() + 8 + 4 * count);
    out.extend_from_slice(&serial.to_be_bytes());
    out.extend_from_slice(&(count as i32).to_be_bytes());
    for chunk in payload.chunks(MAX_BUFFER) {
        out.extend_from_slice(&(chunk.len() as i32).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

/// Reads into `buf` until it is full or the stream ends; how many bytes were read.
fn fill(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn read_i32(r: &mut impl Read, what: &str) -> Result<i32, FrameError> {
    let mut b = [0u8; 4];
    let n = fill(r, &mut b).map_err(FrameError::Io)?;
    if n < 4 {
        return Err(FrameError::Truncated(format!("inside the {what}")));
    }
    Ok(i32::from_be_bytes(b))
}

/// Reads the next frame; `None` if the stream ended cleanly before it.
pub fn read_frame(r: &mut impl Read) -> Result<Option<Frame>, FrameError> {
    read_frame_within(r, MAX_FRAME_BYTES, None)
}

/// [`read_frame`] with a cap of `max` bytes on the message, and a server's `limits`.
fn read_frame_within(
    r: &mut impl Read,
    max: usize,
    mut limits: Option<&mut FrameLimits>,
) -> Result<Option<Frame>, FrameError> {
    let mut first = [0u8; 1];
    if fill(r, &mut first).map_err(FrameError::Io)? == 0 {
        return Ok(None);
    }
    if let Some(l) = limits.as_deref_mut() {
        l.started();
    }
    let mut rest = [0u8; 3];
    if fill(r, &mut rest).map_err(FrameError::Io)? < 3 {
        return Err(FrameError::Truncated("inside the serial".into()));
    }
    let serial = i32::from_be_bytes([first[0], rest[0], rest[1], rest[2]]);
    let count = read_i32(r, "buffer count")?;
    let count = usize::try_from(count)
        .ok()
        .filter(|&c| c <= MAX_BUFFERS)
        .ok_or_else(|| {
            FrameError::Bad(format!(
                "buffer count {count} (serial {serial}) is not between 0 and {MAX_BUFFERS}"
            ))
        })?;
    let mut payload = Vec::new();
    for i in 0..count {
        let len = read_i32(r, "buffer length")?;
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| payload.len() + l <= max)
            .ok_or_else(|| {
                FrameError::Bad(format!(
                    "buffer {i} of {count} has length {len}: negative, or the frame would pass \
                     {max} bytes"
                ))
            })?;
        // Grows with the bytes that actually arrive, whatever `len` claims.
        let got = read_frame_bytes(r, len, &mut payload, limits.as_deref_mut())?;
        if got < len {
            return Err(FrameError::Truncated(format!(
                "buffer {i} of {count}: {got} of {len} bytes"
            )));
        }
    }
    Ok(Some(Frame { serial, payload }))
}

// ---------------------------------------------------------------------------------------------
// The handshake

/// A handshake's `meta`: a `map<bytes>`, kept in order.
pub type Meta = Vec<(String, Vec<u8>)>;

/// Avro's `HandshakeRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeRequest {
    pub client_hash: [u8; 16],
    pub client_protocol: Option<String>,
    pub server_hash: [u8; 16],
    pub meta: Option<Meta>,
}

/// Avro's `HandshakeMatch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeMatch {
    /// Each side knows the other's protocol.
    Both,
    /// The server knows the client's protocol; the client learns the server's from the reply.
    Client,
    /// The server does not know the client's protocol: no call was made; send it again with
    /// the client's protocol.
    None,
}

/// Avro's `HandshakeResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeResponse {
    pub matched: HandshakeMatch,
    pub server_protocol: Option<String>,
    pub server_hash: Option<[u8; 16]>,
    pub meta: Option<Meta>,
}

fn put_meta(out: &mut Vec<u8>, meta: &Option<Meta>) {
    match meta {
        None => put_long(out, 0),
        Some(m) => {
            put_long(out, 1);
            put_bytes_map(out, m);
        }
    }
}

fn read_meta(c: &mut Cursor) -> Result<Option<Meta>, String> {
    Ok(match c.index(2, "meta union branch")? {
        0 => None,
        _ => Some(
            c.bytes_map()?
                .into_iter()
                .map(|(k, v)| (k, v.to_vec()))
                .collect(),
        ),
    })
}

fn read_hash(c: &mut Cursor) -> Result<[u8; 16], String> {
    let mut h = [0u8; 16];
    h.copy_from_slice(c.fixed(16)?);
    Ok(h)
}

fn read_optional_string(c: &mut Cursor, what: &str) -> Result<Option<String>, String> {
    Ok(match c.index(2, what)? {
        0 => None,
        _ => Some(c.string()?),
    })
}

impl HandshakeRequest {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.client_hash);
        match &self.client_protocol {
            None => put_long(out, 0),
            Some(p) => {
                put_long(out, 1);
                put_bytes(out, p.as_bytes());
            }
        }
        out.extend_from_slice(&self.server_hash);
        put_meta(out, &self.meta);
    }

    pub fn decode(c: &mut Cursor) -> Result<HandshakeRequest, String> {
        Ok(HandshakeRequest {
            client_hash: read_hash(c)?,
            client_protocol: read_optional_string(c, "clientProtocol union branch")?,
            server_hash: read_hash(c)?,
            meta: read_meta(c)?,
        })
    }
}

impl HandshakeResponse {
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_long(
            out,
            match self.matched {
                HandshakeMatch::Both => 0,
                HandshakeMatch::Client => 1,
                HandshakeMatch::None => 2,
            },
        );
        match &self.server_protocol {
            None => put_long(out, 0),
            Some(p) => {
                put_long(out, 1);
                put_bytes(out, p.as_bytes());
            }
        }
        match &self.server_hash {
            None => put_long(out, 0),
            Some(h) => {
                put_long(out, 1);
                out.extend_from_slice(h);
            }
        }
        put_meta(out, &self.meta);
    }

    pub fn decode(c: &mut Cursor) -> Result<HandshakeResponse, String> {
        let matched = match c.index(3, "HandshakeMatch symbol")? {
            0 => HandshakeMatch::Both,
            1 => HandshakeMatch::Client,
            _ => HandshakeMatch::None,
        };
        let server_protocol = read_optional_string(c, "serverProtocol union branch")?;
        let server_hash = match c.index(2, "serverHash union branch")? {
            0 => None,
            _ => Some(read_hash(c)?),
        };
        Ok(HandshakeResponse {
            matched,
            server_protocol,
            server_hash,
            meta: read_meta(c)?,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Flume's messages

/// Flume's `Status` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Failed,
    Unknown,
}

impl Status {
    fn index(self) -> i64 {
        match self {
            Status::Ok => 0,
            Status::Failed => 1,
            Status::Unknown => 2,
        }
    }
}

/// The call of `appendBatch(events)` after any handshake: empty metadata, the message name,
/// the events as `array<AvroFlumeEvent>`.
pub fn append_batch_call<'e>(events: impl ExactSizeIterator<Item = &'e Event> + Clone) -> Vec<u8> {
    let size: usize = events
        .clone()
        .map(|e| encoded_size_hint(&e.headers, &e.body))
        .sum();
    let mut out = Vec::with_capacity(size + 32);
    put_long(&mut out, 0);
    put_bytes(&mut out, b"appendBatch");
    if events.len() > 0 {
        put_long(&mut out, events.len() as i64);
        for e in events {
            encode_into(&mut out, &e.headers, &e.body);
        }
    }
    put_long(&mut out, 0);
    out
}

/// The call of `append(event)` after any handshake.
pub fn append_call(event: &Event) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_size_hint(&event.headers, &event.body) + 16);
    put_long(&mut out, 0);
    put_bytes(&mut out, b"append");
    encode_into(&mut out, &event.headers, &event.body);
    out
}

/// A call the source serves, its events still pointing into the request.
#[derive(Debug, PartialEq, Eq)]
pub enum Call<'a> {
    Append((Headers, &'a [u8])),
    AppendBatch(Vec<(Headers, &'a [u8])>),
}

impl Call<'_> {
    /// The events of the call, each body copied out of the request.
    pub fn into_events(self) -> Vec<Event> {
        let to_event = |(headers, body): (Headers, &[u8])| Event {
            headers,
            body: bytes::Bytes::copy_from_slice(body),
        };
        match self {
            Call::Append(e) => vec![to_event(e)],
            Call::AppendBatch(es) => es.into_iter().map(to_event).collect(),
        }
    }
}

/// A reply carrying `status` (after any handshake): empty metadata, no error, the enum index.
fn put_status_reply(out: &mut Vec<u8>, status: Status) {
    put_long(out, 0);
    out.push(0);
    put_long(out, status.index());
}

/// A reply carrying an Avro system error (branch 0, a string, of the error union).
fn put_error_reply(out: &mut Vec<u8>, message: &str) {
    put_long(out, 0);
    out.push(1);
    put_long(out, 0);
    put_bytes(out, message.as_bytes());
}

// ---------------------------------------------------------------------------------------------
// The server side

/// A client protocol the server accepted: the message names it declares.
#[derive(Debug)]
struct RemoteProtocol {
    messages: Vec<String>,
}

impl RemoteProtocol {
    fn parse(text: &str) -> Result<RemoteProtocol, String> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("client protocol is not JSON: {e}"))?;
        if !v.get("protocol").is_some_and(serde_json::Value::is_string) {
            return Err("client protocol has no \"protocol\" name".into());
        }
        let messages = match v.get("messages") {
            None => Vec::new(),
            Some(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
            Some(_) => return Err("client protocol's \"messages\" is not an object".into()),
        };
        Ok(RemoteProtocol { messages })
    }
}

/// The most client protocols one source remembers; a client past it is still served, its
/// protocol just not remembered for the next connection.
const MAX_KNOWN_PROTOCOLS: usize = 64;

/// The server side of Avro RPC for Flume's protocol (Java's `Responder`), shared by every
/// connection of a source: the client protocols seen so far, by hash.
pub struct Responder {
    local_hash: [u8; 16],
    known: Mutex<HashMap<[u8; 16], Arc<RemoteProtocol>>>,
}

/// One connection's handshake state: the client's protocol once a handshake matched.
#[derive(Default)]
pub struct ServerConnection {
    remote: Option<Arc<RemoteProtocol>>,
}

/// The reply to one request, and what was wrong with the request, if anything (for the log).
#[derive(Debug)]
pub struct Reply {
    pub payload: Vec<u8>,
    pub problem: Option<String>,
}

impl Default for Responder {
    fn default() -> Self {
        Responder::new()
    }
}

impl Responder {
    pub fn new() -> Responder {
        let local_hash = protocol_hash(PROTOCOL);
        let mut known = HashMap::new();
        known.insert(
            local_hash,
            Arc::new(RemoteProtocol {
                messages: vec!["append".into(), "appendBatch".into()],
            }),
        );
        Responder {
            local_hash,
            known: Mutex::new(known),
        }
    }

    /// Answers one request of `conn`. A call is handed to `handle`, which puts its events and
    /// says the status to reply. `Err`: the request's handshake is unreadable, so the stream
    /// cannot be trusted and the connection should close.
    pub fn respond(
        &self,
        conn: &mut ServerConnection,
        request: &[u8],
        handle: impl FnOnce(Call) -> Status,
    ) -> Result<Reply, String> {
        let mut c = Cursor::new(request);
        let mut out = Vec::new();
        let remote = match &conn.remote {
            Some(r) => r.clone(),
            None => {
                let hs = HandshakeRequest::decode(&mut c)
                    .map_err(|e| format!("unreadable handshake: {e}"))?;
                let (response, remote, problem) = self.handshake(&hs);
                response.encode(&mut out);
                match remote {
                    Some(r) => {
                        conn.remote = Some(r.clone());
                        r
                    }
                    // Java's Responder answers NONE with the handshake alone: no call is made.
                    None => {
                        return Ok(Reply {
                            payload: out,
                            problem,
                        });
                    }
                }
            }
        };
        let name = match c.bytes_map().and_then(|_| c.string()) {
            Ok(n) => n,
            Err(e) => return Ok(error_reply(out, format!("unreadable call: {e}"))),
        };
        // An empty name is a handshake ping: the reply is the handshake alone.
        if name.is_empty() {
            return Ok(Reply {
                payload: out,
                problem: None,
            });
        }
        if !remote.messages.contains(&name) {
            return Ok(error_reply(out, format!("No such remote message: {name}")));
        }
        let call = match name.as_str() {
            "append" => c.event().map(Call::Append),
            "appendBatch" => c.events().map(Call::AppendBatch),
            other => {
                return Ok(error_reply(
                    out,
                    format!("No message named {other} in AvroSourceProtocol"),
                ));
            }
        };
        let call = match call.and_then(|call| c.expect_end("the parameters").map(|()| call)) {
            Ok(call) => call,
            Err(e) => return Ok(error_reply(out, format!("unreadable {name} call: {e}"))),
        };
        put_status_reply(&mut out, handle(call));
        Ok(Reply {
            payload: out,
            problem: None,
        })
    }

    /// Java's `Responder.handshake`: the response, the client's protocol if known now, and
    /// what was wrong with the protocol it sent, if anything.
    fn handshake(
        &self,
        hs: &HandshakeRequest,
    ) -> (
        HandshakeResponse,
        Option<Arc<RemoteProtocol>>,
        Option<String>,
    ) {
        let mut known = self.known.lock();
        let mut remote = known.get(&hs.client_hash).cloned();
        let mut problem = None;
        if remote.is_none()
            && let Some(text) = &hs.client_protocol
        {
            match RemoteProtocol::parse(text) {
                Ok(p) => {
                    let p = Arc::new(p);
                    if known.len() < MAX_KNOWN_PROTOCOLS {
                        known.insert(hs.client_hash, p.clone());
                    }
                    remote = Some(p);
                }
                Err(e) => problem = Some(e),
            }
        }
        let matched = match &remote {
            None => HandshakeMatch::None,
            Some(_) if hs.server_hash == self.local_hash => HandshakeMatch::Both,
            Some(_) => HandshakeMatch::Client,
        };
        let tell = matched != HandshakeMatch::Both;
        let response = HandshakeResponse {
            matched,
            server_protocol: tell.then(|| PROTOCOL.to_owned()),
            server_hash: tell.then_some(self.local_hash),
            meta: None,
        };
        (response, remote, problem)
    }
}

fn error_reply(mut out: Vec<u8>, message: String) -> Reply {
    put_error_reply(&mut out, &message);
    Reply {
        payload: out,
        problem: Some(message),
    }
}

// ---------------------------------------------------------------------------------------------
// The client side

/// The client side of Avro RPC for one connection (Java's `Requestor` on a Netty transceiver):
/// the first call carries a handshake with weir's protocol, so any server can answer it at
/// once; once the server matched, calls carry none.
pub struct Requestor {
    local_hash: [u8; 16],
    /// The server's protocol hash, once it told it.
    remote_hash: Option<[u8; 16]>,
    connected: bool,
}

/// How the server answered a call.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    Status(Status),
    /// The server did not know the client's protocol and made no call: send it again.
    Resend,
}

impl Default for Requestor {
    fn default() -> Self {
        Requestor::new()
    }
}

impl Requestor {
    pub fn new() -> Requestor {
        Requestor {
            local_hash: protocol_hash(PROTOCOL),
            remote_hash: None,
            connected: false,
        }
    }

    /// The request for `call` (from [`append_batch_call`] or [`append_call`]), with a
    /// handshake in front until one matched.
    pub fn request(&self, call: &[u8]) -> Vec<u8> {
        if self.connected {
            return call.to_vec();
        }
        let mut out = Vec::with_capacity(call.len() + PROTOCOL.len() + 48);
        HandshakeRequest {
            client_hash: self.local_hash,
            client_protocol: Some(PROTOCOL.to_owned()),
            server_hash: self.remote_hash.unwrap_or(self.local_hash),
            meta: None,
        }
        .encode(&mut out);
        out.extend_from_slice(call);
        out
    }

    /// Reads the server's reply to a request from [`Requestor::request`]; `Err` says what
    /// went wrong (an Avro error the server sent, or an unreadable reply).
    pub fn read_reply(&mut self, reply: &[u8]) -> Result<Answer, String> {
        let mut c = Cursor::new(reply);
        if !self.connected {
            let hs = HandshakeResponse::decode(&mut c)
                .map_err(|e| format!("unreadable handshake response: {e}"))?;
            if let Some(h) = hs.server_hash {
                self.remote_hash = Some(h);
            }
            match hs.matched {
                HandshakeMatch::None => return Ok(Answer::Resend),
                HandshakeMatch::Both | HandshakeMatch::Client => self.connected = true,
            }
        }
        let unreadable = |e: String| format!("unreadable reply: {e}");
        c.bytes_map().map_err(unreadable)?;
        if c.boolean().map_err(unreadable)? {
            let message = match c
                .index(usize::MAX, "error union branch")
                .map_err(unreadable)?
            {
                0 => c.string().map_err(unreadable)?,
                n => format!("a declared error (union branch {n})"),
            };
            return Err(format!("the server answered with an error: {message}"));
        }
        let status = match c.index(3, "Status symbol").map_err(unreadable)? {
            0 => Status::Ok,
            1 => Status::Failed,
            _ => Status::Unknown,
        };
        c.expect_end("the reply").map_err(unreadable)?;
        Ok(Answer::Status(status))
    }
}

// ---------------------------------------------------------------------------------------------
// The connection

/// Reads a zlib stream, handing out each part as soon as it arrives. `flate2`'s own reader
/// asks its source for more bytes before it hands out what it already inflated, which blocks
/// a request–reply protocol whose peer sync-flushed a message and now waits for the reply.
struct Inflater<R> {
    inner: R,
    z: flate2::Decompress,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl<R: Read> Inflater<R> {
    fn new(inner: R) -> Inflater<R> {
        Inflater {
            inner,
            z: flate2::Decompress::new(true),
            buf: vec![0u8; 64 * 1024].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }
}

impl<R: Read> Read for Inflater<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            let (in_before, out_before) = (self.z.total_in(), self.z.total_out());
            let status = self
                .z
                .decompress(
                    &self.buf[self.start..self.end],
                    out,
                    flate2::FlushDecompress::None,
                )
                .map_err(|e| io::Error::new(ErrorKind::InvalidData, format!("zlib: {e}")))?;
            self.start += (self.z.total_in() - in_before) as usize;
            let produced = (self.z.total_out() - out_before) as usize;
            if produced > 0 || status == flate2::Status::StreamEnd {
                return Ok(produced);
            }
            if self.start == self.end {
                (self.start, self.end) = (0, 0);
            } else if self.end == self.buf.len() {
                if self.start == 0 {
                    return Err(io::Error::new(
                        ErrorKind::InvalidData,
                        "zlib: no progress on a full input buffer",
                    ));
                }
                self.buf.copy_within(self.start..self.end, 0);
                (self.start, self.end) = (0, self.end - self.start);
            }
            let n = self.inner.read(&mut self.buf[self.end..])?;
            if n == 0 {
                // The peer closed; a frame cut short shows up as a truncated frame.
                return Ok(0);
            }
            self.end += n;
        }
    }
}

/// One Avro RPC connection: frames in and out, plain or in zlib streams.
pub struct Transport {
    reader: Box<dyn Read + Send>,
    writer: Box<dyn Write + Send>,
    deadline: Deadline,
    limits: Option<FrameLimits>,
}

impl LimitedFrames for Transport {
    fn frame_limits(&mut self) -> (&mut Option<FrameLimits>, &Deadline) {
        (&mut self.limits, &self.deadline)
    }
}

impl Transport {
    /// `deflate`: the zlib compression level of what this side sends (`None`: no compression
    /// either way), inside TLS when `security` says so. Reads give up when `stop` is set.
    pub fn new(
        stream: TcpStream,
        security: &Security,
        deflate: Option<u32>,
        stop: StopFlag,
    ) -> io::Result<Transport> {
        let Halves {
            reader,
            writer,
            deadline,
        } = open(stream, security, stop)?;
        let (reader, writer): (Box<dyn Read + Send>, Box<dyn Write + Send>) = match deflate {
            None => (Box::new(BufReader::new(reader)), writer),
            Some(level) => (
                Box::new(Inflater::new(reader)),
                Box::new(flate2::write::ZlibEncoder::new(
                    writer,
                    flate2::Compression::new(level),
                )),
            ),
        };
        Ok(Transport {
            reader,
            writer,
            deadline,
            limits: None,
        })
    }

    /// Sends one frame (with a sync flush when deflating, so the peer can read it whole).
    pub fn send(&mut self, serial: i32, payload: &[u8]) -> io::Result<()> {
        self.writer.write_all(&encode_frame(serial, payload))?;
        self.writer.flush()
    }

    /// The next frame; `None` if the peer closed the connection between frames. With
    /// `within`, gives up (an `Io` error of kind `TimedOut`) once that much time has passed.
    pub fn receive(&mut self, within: Option<Duration>) -> Result<Option<Frame>, FrameError> {
        self.deadline.set(within);
        let reader = &mut self.reader;
        read_limited(&mut self.limits, |limits| {
            read_frame_within(reader, MAX_FRAME_BYTES, limits)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc_connection::FrameBudget;

    fn frame_bytes(serial: i32, buffers: &[&[u8]]) -> Vec<u8> {
        let mut out = serial.to_be_bytes().to_vec();
        out.extend_from_slice(&(buffers.len() as i32).to_be_bytes());
        for b in buffers {
            out.extend_from_slice(&(b.len() as i32).to_be_bytes());
            out.extend_from_slice(b);
        }
        out
    }

    #[test]
    fn frames_round_trip_and_several_buffers_join() {
        let bytes = encode_frame(7, b"hello");
        assert_eq!(bytes, frame_bytes(7, &[b"hello"]));
        let mut r = &bytes[..];
        assert_eq!(
            read_frame(&mut r).unwrap(),
            Some(Frame {
                serial: 7,
                payload: b"hello".to_vec()
            })
        );
        assert!(read_frame(&mut r).unwrap().is_none(), "clean end");
        let empty = encode_frame(-3, b"");
        assert_eq!(empty, frame_bytes(-3, &[]));
        assert_eq!(read_frame(&mut &empty[..]).unwrap().unwrap().payload, b"");
        // As Java's Avro sends it: the message cut into several buffers.
        let java = frame_bytes(1, &[b"ab", b"", b"cde"]);
        assert_eq!(
            read_frame(&mut &java[..]).unwrap().unwrap().payload,
            b"abcde"
        );
    }

    #[test]
    fn truncated_oversized_and_garbage_frames_are_errors() {
        let whole = frame_bytes(1, &[b"abcdef"]);
        for cut in 1..whole.len() {
            match read_frame(&mut &whole[..cut]) {
                Err(FrameError::Truncated(_)) => {}
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
        let mut negative_count = 1i32.to_be_bytes().to_vec();
        negative_count.extend_from_slice(&(-1i32).to_be_bytes());
        let mut huge_count = 1i32.to_be_bytes().to_vec();
        huge_count.extend_from_slice(&i32::MAX.to_be_bytes());
        let mut negative_len = frame_bytes(1, &[]);
        negative_len[4..8].copy_from_slice(&1i32.to_be_bytes());
        negative_len.extend_from_slice(&(-5i32).to_be_bytes());
        // A length past the cap is refused before anything is read or allocated.
        let mut huge_len = frame_bytes(1, &[]);
        huge_len[4..8].copy_from_slice(&1i32.to_be_bytes());
        huge_len.extend_from_slice(&i32::MAX.to_be_bytes());
        // Two buffers that pass the cap together (a cap of 10 bytes here).
        let over_total = frame_bytes(1, &[b"123456", b"78901"]);
        assert!(read_frame_within(&mut &over_total[..], 11, None).is_ok());
        for (what, bytes, cap) in [
            ("negative count", negative_count, MAX_FRAME_BYTES),
            ("huge count", huge_count, MAX_FRAME_BYTES),
            ("negative length", negative_len, MAX_FRAME_BYTES),
            ("huge length", huge_len, MAX_FRAME_BYTES),
            ("over the total", over_total, 10),
        ] {
            match read_frame_within(&mut &bytes[..], cap, None) {
                Err(FrameError::Bad(m)) => assert!(m.contains("buffer"), "{what}: {m}"),
                other => panic!("{what}: {other:?}"),
            }
        }
        // A length within the cap whose bytes never come: only what came is held.
        let mut short = frame_bytes(1, &[]);
        short[4..8].copy_from_slice(&1i32.to_be_bytes());
        short.extend_from_slice(&(100_000_000i32).to_be_bytes());
        short.extend_from_slice(b"xyz");
        match read_frame(&mut &short[..]) {
            Err(FrameError::Truncated(m)) => assert!(m.contains("3 of 100000000"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn random_bytes_never_panic_the_frame_reader_or_the_responder() {
        let responder = Responder::new();
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..2000 {
            let len = rng.usize(0..64);
            let bytes: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            let _ = read_frame(&mut &bytes[..]);
            let mut conn = ServerConnection::default();
            let _ = responder.respond(&mut conn, &bytes, |_| Status::Ok);
            let mut connected = ServerConnection {
                remote: Some(Arc::new(RemoteProtocol {
                    messages: vec!["append".into(), "appendBatch".into()],
                })),
            };
            let _ = responder.respond(&mut connected, &bytes, |_| Status::Ok);
            let _ = Requestor::new().read_reply(&bytes);
        }
    }

    #[test]
    fn handshake_records_encode_as_the_spec_lays_them_out() {
        let req = HandshakeRequest {
            client_hash: [1; 16],
            client_protocol: Some("P".into()),
            server_hash: [2; 16],
            meta: None,
        };
        let mut out = Vec::new();
        req.encode(&mut out);
        // clientHash (16 bytes), union branch 1 (zig-zag 2) + "P", serverHash, meta branch 0.
        let mut want = vec![1u8; 16];
        want.extend_from_slice(&[0x02, 0x02, b'P']);
        want.extend_from_slice(&[2u8; 16]);
        want.push(0x00);
        assert_eq!(out, want);
        assert_eq!(HandshakeRequest::decode(&mut Cursor::new(&out)), Ok(req));

        let resp = HandshakeResponse {
            matched: HandshakeMatch::Client,
            server_protocol: Some("S".into()),
            server_hash: Some([3; 16]),
            meta: Some(vec![("k".into(), b"v".to_vec())]),
        };
        let mut out = Vec::new();
        resp.encode(&mut out);
        // match CLIENT (1 → 0x02), protocol branch 1 + "S", hash branch 1 + 16 bytes, meta
        // branch 1 + a map of one entry "k" → "v".
        let mut want = vec![0x02, 0x02, 0x02, b'S', 0x02];
        want.extend_from_slice(&[3u8; 16]);
        want.extend_from_slice(&[0x02, 0x02, 0x02, b'k', 0x02, b'v', 0x00]);
        assert_eq!(out, want);
        assert_eq!(HandshakeResponse::decode(&mut Cursor::new(&out)), Ok(resp));
        let both = HandshakeResponse {
            matched: HandshakeMatch::Both,
            server_protocol: None,
            server_hash: None,
            meta: None,
        };
        let mut out = Vec::new();
        both.encode(&mut out);
        assert_eq!(out, [0x00, 0x00, 0x00, 0x00]);
    }

    /// One `appendBatch` of one event {headers {"h": "v"}, body "hi"} on a fresh connection,
    /// worked by hand from the Avro spec:
    ///
    /// ```text
    /// HandshakeRequest  clientHash: 16 bytes MD5(PROTOCOL)
    ///                   clientProtocol: branch 1 (zig-zag 0x02), string: len, PROTOCOL
    ///                   serverHash: the same 16 bytes (the server's is not known yet)
    ///                   meta: branch 0 (null) → 0x00
    /// call metadata     empty map → 0x00
    /// message name      "appendBatch": len 11 (zig-zag 0x16), then the 11 bytes
    /// events            block of 1 (0x02); event: map block of 1 (0x02), "h" (0x02 'h'),
    ///                   "v" (0x02 'v'), end of map (0x00), body "hi" (0x04 'h' 'i');
    ///                   end of array (0x00)
    /// ```
    ///
    /// and framed with serial 5, one buffer.
    #[test]
    fn an_append_batch_call_matches_the_spec_byte_for_byte() {
        let event = Event::new(&b"hi"[..]).with_header("h", "v");
        let call = append_batch_call([&event].into_iter());
        let request = Requestor::new().request(&call);
        let hash = protocol_hash(PROTOCOL);
        let mut want = hash.to_vec();
        want.push(0x02);
        // PROTOCOL is 509 bytes: zig-zag 1018 = 0b111_1111010 → 0xfa 0x07.
        assert_eq!(PROTOCOL.len(), 509);
        want.extend_from_slice(&[0xfa, 0x07]);
        want.extend_from_slice(PROTOCOL.as_bytes());
        want.extend_from_slice(&hash);
        want.push(0x00);
        want.push(0x00);
        want.push(0x16);
        want.extend_from_slice(b"appendBatch");
        want.extend_from_slice(&[
            0x02, 0x02, 0x02, b'h', 0x02, b'v', 0x00, 0x04, b'h', b'i', 0x00,
        ]);
        assert_eq!(request, want);
        let framed = encode_frame(5, &request);
        assert_eq!(&framed[..8], &[0, 0, 0, 5, 0, 0, 0, 1]);
        assert_eq!(&framed[8..12], &(want.len() as i32).to_be_bytes());
        assert_eq!(&framed[12..], &want[..]);
    }

    #[test]
    fn a_client_with_weirs_protocol_is_served_at_once_and_the_next_call_needs_no_handshake() {
        let responder = Responder::new();
        let mut conn = ServerConnection::default();
        let mut client = Requestor::new();
        let events = [
            Event::new(&b"a"[..]),
            Event::new(&b"b"[..]).with_header("k", "v"),
        ];
        let call = append_batch_call(events.iter());
        let mut got = Vec::new();
        let reply = responder
            .respond(&mut conn, &client.request(&call), |c| {
                got.extend(c.into_events());
                Status::Ok
            })
            .unwrap();
        assert_eq!(
            client.read_reply(&reply.payload),
            Ok(Answer::Status(Status::Ok))
        );
        assert_eq!(got, events);
        // Connected: the request is the bare call, the reply the bare response.
        assert_eq!(client.request(&call), call);
        let reply = responder
            .respond(&mut conn, &call, |_| Status::Failed)
            .unwrap();
        assert_eq!(reply.payload, [0x00, 0x00, 0x02]);
        assert_eq!(
            client.read_reply(&reply.payload),
            Ok(Answer::Status(Status::Failed))
        );
    }

    #[test]
    fn an_unknown_client_without_its_protocol_gets_none_then_is_served_when_it_sends_it() {
        let responder = Responder::new();
        let mut conn = ServerConnection::default();
        let other = r#"{"protocol":"P","messages":{"appendBatch":{}}}"#;
        let mut req = Vec::new();
        HandshakeRequest {
            client_hash: protocol_hash(other),
            client_protocol: None,
            server_hash: [0; 16],
            meta: None,
        }
        .encode(&mut req);
        req.extend_from_slice(&append_batch_call([].into_iter()));
        let reply = responder
            .respond(&mut conn, &req, |_| panic!("no call on NONE"))
            .unwrap();
        let mut c = Cursor::new(&reply.payload);
        let hs = HandshakeResponse::decode(&mut c).unwrap();
        assert_eq!(hs.matched, HandshakeMatch::None);
        assert_eq!(hs.server_protocol.as_deref(), Some(PROTOCOL));
        assert_eq!(hs.server_hash, Some(protocol_hash(PROTOCOL)));
        c.expect_end("the handshake").unwrap();

        // Again with its protocol and the server's hash, now known: BOTH, and the call made.
        let mut req = Vec::new();
        HandshakeRequest {
            client_hash: protocol_hash(other),
            client_protocol: Some(other.into()),
            server_hash: protocol_hash(PROTOCOL),
            meta: None,
        }
        .encode(&mut req);
        req.extend_from_slice(&append_batch_call([].into_iter()));
        let mut called = false;
        let reply = responder
            .respond(&mut conn, &req, |c| {
                called = c == Call::AppendBatch(Vec::new());
                Status::Ok
            })
            .unwrap();
        assert!(called);
        assert_eq!(reply.payload, [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);
        // Its protocol declares no `append`: an Avro error, and the connection goes on.
        let reply = responder
            .respond(&mut conn, &append_call(&Event::new("x")), |_| Status::Ok)
            .unwrap();
        assert!(
            reply
                .problem
                .unwrap()
                .contains("No such remote message: append")
        );
        let mut client = Requestor {
            connected: true,
            ..Requestor::new()
        };
        let err = client.read_reply(&reply.payload).unwrap_err();
        assert!(err.contains("No such remote message"), "{err}");

        // A second connection of the same client is known at once; with another server hash
        // it is CLIENT, with the server's protocol.
        let mut conn2 = ServerConnection::default();
        let mut req = Vec::new();
        HandshakeRequest {
            client_hash: protocol_hash(other),
            client_protocol: None,
            server_hash: [9; 16],
            meta: None,
        }
        .encode(&mut req);
        req.extend_from_slice(&append_batch_call([].into_iter()));
        let reply = responder.respond(&mut conn2, &req, |_| Status::Ok).unwrap();
        let mut c = Cursor::new(&reply.payload);
        let hs = HandshakeResponse::decode(&mut c).unwrap();
        assert_eq!(hs.matched, HandshakeMatch::Client);
        assert_eq!(hs.server_protocol.as_deref(), Some(PROTOCOL));
    }

    #[test]
    fn bad_calls_get_avro_errors_and_bad_handshakes_close() {
        let responder = Responder::new();
        let mut conn = ServerConnection::default();
        assert!(
            responder
                .respond(&mut conn, b"short", |_| Status::Ok)
                .is_err()
        );
        let mut client = Requestor::new();
        let mut unknown = Vec::new();
        put_long(&mut unknown, 0);
        put_bytes(&mut unknown, b"launch");
        let reply = responder
            .respond(&mut conn, &client.request(&unknown), |_| Status::Ok)
            .unwrap();
        let err = client.read_reply(&reply.payload).unwrap_err();
        assert!(err.contains("launch"), "{err}");
        // Still connected: a truncated batch is an error too, then a good call is served.
        let mut call = append_batch_call([&Event::new("abc")].into_iter());
        call.truncate(call.len() - 3);
        let reply = responder.respond(&mut conn, &call, |_| Status::Ok).unwrap();
        assert!(reply.problem.is_some());
        assert!(client.read_reply(&reply.payload).is_err());
        let reply = responder
            .respond(&mut conn, &append_call(&Event::new("x")), |c| {
                assert_eq!(c.into_events(), [Event::new("x")]);
                Status::Ok
            })
            .unwrap();
        assert_eq!(
            client.read_reply(&reply.payload),
            Ok(Answer::Status(Status::Ok))
        );
        // A client protocol that is not a protocol: NONE, and the reason for the log.
        let mut conn = ServerConnection::default();
        let mut req = Vec::new();
        HandshakeRequest {
            client_hash: [5; 16],
            client_protocol: Some("not json".into()),
            server_hash: [0; 16],
            meta: None,
        }
        .encode(&mut req);
        let reply = responder.respond(&mut conn, &req, |_| Status::Ok).unwrap();
        assert!(reply.problem.unwrap().contains("not JSON"));
        assert_eq!(
            Requestor::new().read_reply(&reply.payload),
            Ok(Answer::Resend)
        );
    }

    /// Deflated both ways, each message is readable as soon as it was sent, while its sender
    /// waits for the reply: small ones and ones larger than zlib's window and the read buffer.
    #[test]
    fn deflated_transports_deliver_each_frame_without_waiting_for_more() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (b, _) = listener.accept().unwrap();
        let stop: StopFlag = crate::stop::Stop::new();
        let mut a = Transport::new(a, &Security::Plain, Some(6), stop.clone()).unwrap();
        let mut b = Transport::new(b, &Security::Plain, Some(1), stop).unwrap();
        let mut rng = fastrand::Rng::with_seed(3);
        let big: Vec<u8> = (0..1_000_000).map(|_| rng.u8(..16)).collect();
        let within = Some(Duration::from_secs(10));
        for (serial, payload) in [(1, &b"hello"[..]), (2, &big[..]), (3, &b"x"[..])] {
            a.send(serial, payload).unwrap();
            let got = b.receive(within).unwrap().unwrap();
            assert_eq!((got.serial, got.payload.len()), (serial, payload.len()));
            assert!(got.payload == payload);
            b.send(serial, b"ok").unwrap();
            assert_eq!(a.receive(within).unwrap().unwrap().payload, b"ok");
        }
        drop(a);
        assert!(b.receive(within).unwrap().is_none(), "a clean close");
    }

    /// Sends `bytes` through `client` one at a time, `every` apart, until done or refused.
    fn trickle(
        mut client: Transport,
        bytes: Vec<u8>,
        every: Duration,
    ) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            for byte in bytes.chunks(1) {
                let sent = client.writer.write_all(byte);
                if sent.and_then(|()| client.writer.flush()).is_err() {
                    break;
                }
                std::thread::sleep(every);
            }
        })
    }

    /// Client and server transports connected through one listener, the server reading under
    /// one shared frame budget and time limit.
    struct Pairs {
        listener: std::net::TcpListener,
        budget: FrameBudget,
        time: Duration,
        stop: StopFlag,
    }

    impl Pairs {
        fn new(budget: usize, time: Duration) -> Pairs {
            Pairs {
                listener: std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
                budget: FrameBudget::new(budget),
                time,
                stop: crate::stop::Stop::new(),
            }
        }

        /// A connected (client, server) pair.
        fn pair(&self, deflate: Option<u32>) -> (Transport, Transport) {
            let client = TcpStream::connect(self.listener.local_addr().unwrap()).unwrap();
            let (server, _) = self.listener.accept().unwrap();
            let mut server =
                Transport::new(server, &Security::Plain, deflate, self.stop.clone()).unwrap();
            server.limit_frames(self.budget.clone(), self.time);
            let client =
                Transport::new(client, &Security::Plain, deflate, self.stop.clone()).unwrap();
            (client, server)
        }

        /// A pair whose client has made a first call, which the server read and answered: its
        /// later frames may use the whole budget.
        fn proven_pair(&self, deflate: Option<u32>) -> (Transport, Transport) {
            let (mut client, mut server) = self.pair(deflate);
            client.send(1, b"first call").unwrap();
            assert!(server.receive(None).unwrap().is_some());
            server.client_proven();
            (client, server)
        }
    }

    /// A server's frames share one memory budget, charged as bytes arrive (after inflating),
    /// and each must be whole within its time: a zlib stream of zeros declaring a large
    /// buffer, and a frame trickled past its time, are refused, and what they held is given
    /// back (audit 22: 8 deflated connections of 256 KB held 2 GB).
    #[test]
    fn server_frames_keep_within_the_shared_budget_and_their_time() {
        let pairs = Pairs::new(300 << 10, Duration::from_secs(1));
        let Pairs {
            listener,
            budget,
            stop,
            ..
        } = &pairs;
        // Within the budget, frames come through, and each gives its share back (once the
        // client made a call: before that, its frames may hold half of the budget).
        let (mut client, mut server) = pairs.proven_pair(None);
        for _ in 0..3 {
            client.send(1, &[7u8; 200 << 10]).unwrap();
            assert_eq!(
                server.receive(None).unwrap().unwrap().payload.len(),
                200 << 10
            );
        }
        // A second connection's frame over what the first one holds is refused...
        let (mut other, mut other_server) = pairs.proven_pair(Some(6));
        other.send(2, &vec![0u8; 1 << 20]).unwrap();
        let e = other_server.receive(None).unwrap_err();
        assert!(
            matches!(&e, FrameError::OverLimit(m) if m.contains("of its 307200")),
            "{e}"
        );
        // ...and once the first one's frame is done, the budget holds nothing.
        drop(server);
        drop(other_server);
        assert_eq!(budget.used(), 0);
        // A frame trickled in: refused at its time limit, counted from its first byte.
        let (client, mut server) = pairs.pair(None);
        let writer = trickle(
            client,
            encode_frame(3, b"trickled"),
            Duration::from_millis(300),
        );
        let started = std::time::Instant::now();
        let e = server.receive(None).unwrap_err();
        assert!(
            matches!(&e, FrameError::OverLimit(m) if m.contains("not whole 1 s after its first byte")),
            "{e}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(server);
        writer.join().unwrap();
        assert_eq!(budget.used(), 0);

        // At the agent's stop a frame in progress ends at once: the client has no answer for
        // it and sends it again after the restart (waiting for it held the stop 5 s).
        let stopping: StopFlag = crate::stop::Stop::new();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let mut server = Transport::new(server, &Security::Plain, None, stopping.clone()).unwrap();
        server.limit_frames(budget.clone(), Duration::from_secs(60));
        let client = Transport::new(client, &Security::Plain, None, stop.clone()).unwrap();
        let writer = trickle(
            client,
            encode_frame(4, b"cut short by the stop"),
            Duration::from_millis(50),
        );
        let setter = crate::stop::set_later(&stopping, Duration::from_millis(300));
        let started = std::time::Instant::now();
        assert!(server.receive(None).is_err());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        drop(server);
        writer.join().unwrap();
        setter.join().unwrap();
    }

    /// Connections that have made no call yet share half of the budget: zlib bombs sent
    /// without a handshake (audit 24) fill that half and no more, so a connected client's
    /// large call still passes, and a new client's small first call too.
    #[test]
    fn unproven_connections_cannot_take_the_whole_budget() {
        let pairs = Pairs::new(400 << 10, Duration::from_secs(60));
        let pair = |deflate| pairs.pair(deflate);
        let budget = &pairs.budget;
        let (mut known, mut known_server) = pairs.proven_pair(None);

        // A bomb: a frame declaring 1 MiB of zeros, cut short so it stays in progress.
        let (mut bomb, mut bomb_server) = pair(Some(6));
        let mut frame = encode_frame(9, &vec![0u8; 1 << 20]);
        frame.truncate(200 << 10);
        bomb.writer.write_all(&frame).unwrap();
        bomb.writer.flush().unwrap();
        let e = bomb_server.receive(None).unwrap_err();
        assert!(
            matches!(&e, FrameError::OverLimit(m) if m.contains("not yet made a call") && m.contains("of the 204800")),
            "{e}"
        );
        // The source closes a refused connection, which gives back what its frame held.
        drop(bomb_server);
        // While another unproven connection holds most of the share, a proven client's call
        // larger than what is left of it passes, and so does a new client's small first call.
        let (mut holder, mut holder_server) = pair(None);
        let mut partial = encode_frame(5, &[1u8; 90 << 10]);
        partial.truncate(80 << 10);
        holder.writer.write_all(&partial).unwrap();
        holder.writer.flush().unwrap();
        let holder_reader = std::thread::spawn(move || holder_server.receive(None));
        while budget.used() < 90 << 10 {
            std::thread::sleep(Duration::from_millis(5));
        }
        known.send(2, &[3u8; 150 << 10]).unwrap();
        assert_eq!(
            known_server.receive(None).unwrap().unwrap().payload.len(),
            150 << 10
        );
        let (mut newcomer, mut newcomer_server) = pair(None);
        newcomer.send(1, &[4u8; 8 << 10]).unwrap();
        assert_eq!(
            newcomer_server
                .receive(None)
                .unwrap()
                .unwrap()
                .payload
                .len(),
            8 << 10
        );
        // A second unproven frame past the share is refused.
        let (mut late, mut late_server) = pair(None);
        late.send(1, &[5u8; 120 << 10]).unwrap();
        let e = late_server.receive(None).unwrap_err();
        assert!(
            matches!(&e, FrameError::OverLimit(m) if m.contains("not yet made a call")),
            "{e}"
        );
        drop(holder);
        assert!(holder_reader.join().unwrap().is_err());
        drop((known_server, newcomer_server, late_server));
        assert_eq!(budget.used(), 0);
    }
}
