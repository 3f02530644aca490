//! Thrift RPC as Flume's thrift source and sink speak it (Flume's `ThriftSource` and
//! `ThriftRpcClient`): the framed transport, the compact and binary protocols, and the calls and
//! replies of Flume's `ThriftSourceProtocol` (flume-ng-sdk's `flume.thrift`):
//!
//! ```text
//! struct ThriftFlumeEvent { 1: required map<string,string> headers, 2: required binary body }
//! enum Status { OK, FAILED, ERROR, UNKNOWN }
//! service ThriftSourceProtocol {
//!   Status append(1: ThriftFlumeEvent event),
//!   Status appendBatch(1: list<ThriftFlumeEvent> events) }
//! ```
//!
//! - A frame is a 4-byte big-endian length, then that many bytes holding one message (Flume's
//!   `TFastFramedTransport` is wire-compatible with `TFramedTransport`). Frames are capped at
//!   [`MAX_FRAME_BYTES`], Thrift's default largest frame, and read as their bytes arrive, so a
//!   false length never allocates more than what was actually sent.
//! - A call is a message (name, type CALL, sequence id) whose body is the arguments struct
//!   (field 1); the reply is a REPLY message with the same name and sequence id whose body is
//!   the result struct (field 0: the `Status` as an i32). A call of a method the server does not
//!   serve, or whose arguments cannot be read, is answered with a `TApplicationException`
//!   (message type EXCEPTION), as Thrift's generated processors answer, and the connection is
//!   kept: the frame says where the next call starts.
//! - Header keys and values are Thrift `string`s, which are UTF-8: a header that is not is a
//!   bad call (answered with a `TApplicationException` of type PROTOCOL_ERROR, nothing stored).
//! - Fields a struct does not define are skipped with Thrift's generic skip, so newer clients
//!   with more fields are served; nesting deeper than [`MAX_DEPTH`] is refused.
//!
//! Written by hand rather than with the `thrift` crate: the messages are fixed and small, and the
//! crate's generated-code runtime brings its own server and transport model (and reads
//! container sizes into allocations before checking them against the frame). Interoperability
//! is checked against the Python `thrift` package in tests/thrift.rs.

use std::io::{self, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::event::{Event, Headers};
pub use crate::rpc_connection::FrameError;
use crate::rpc_connection::{
    Deadline, FrameLimits, Halves, LimitedFrames, Security, open, read_frame_bytes, read_limited,
};
use crate::stop::StopFlag;

/// The largest frame read: the largest Flume's source reads (`TFastFramedTransport`'s
/// `DEFAULT_MAX_LENGTH`, as Flume does not set one).
pub const MAX_FRAME_BYTES: usize = 16_384_000;

/// Deepest nesting of structs and containers read or skipped.
pub const MAX_DEPTH: usize = 64;

pub use crate::config::ThriftProtocol as Protocol;

/// Flume's `Status` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Failed,
    Error,
    Unknown,
}

impl Status {
    fn value(self) -> i32 {
        match self {
            Status::Ok => 0,
            Status::Failed => 1,
            Status::Error => 2,
            Status::Unknown => 3,
        }
    }

    fn from_value(v: i32) -> Status {
        match v {
            0 => Status::Ok,
            1 => Status::Failed,
            2 => Status::Error,
            _ => Status::Unknown,
        }
    }
}

// Thrift's type ids (those of the binary protocol; the compact protocol maps them).
const T_STOP: u8 = 0;
const T_BOOL: u8 = 2;
const T_BYTE: u8 = 3;
const T_DOUBLE: u8 = 4;
const T_I16: u8 = 6;
const T_I32: u8 = 8;
const T_I64: u8 = 10;
const T_STRING: u8 = 11;
const T_STRUCT: u8 = 12;
const T_MAP: u8 = 13;
const T_SET: u8 = 14;
const T_LIST: u8 = 15;
const T_UUID: u8 = 16;

/// Message types.
pub const CALL: u8 = 1;
pub const REPLY: u8 = 2;
pub const EXCEPTION: u8 = 3;

/// `TApplicationException` types used here.
const UNKNOWN_METHOD: i32 = 1;
const PROTOCOL_ERROR: i32 = 7;

fn compact_type(t: u8) -> u8 {
    match t {
        T_BOOL => 1,
        T_BYTE => 3,
        T_I16 => 4,
        T_I32 => 5,
        T_I64 => 6,
        T_DOUBLE => 7,
        T_STRING => 8,
        T_LIST => 9,
        T_SET => 10,
        T_MAP => 11,
        T_STRUCT => 12,
        T_UUID => 13,
        _ => 0,
    }
}

fn from_compact_type(c: u8) -> Result<u8, String> {
    Ok(match c {
        0 => T_STOP,
        1 | 2 => T_BOOL,
        3 => T_BYTE,
        4 => T_I16,
        5 => T_I32,
        6 => T_I64,
        7 => T_DOUBLE,
        8 => T_STRING,
        9 => T_LIST,
        10 => T_SET,
        11 => T_MAP,
        12 => T_STRUCT,
        13 => T_UUID,
        other => return Err(format!("unknown compact type {other}")),
    })
}

// ---------------------------------------------------------------------------------------------
// Encoding

/// Writes one message in either protocol.
pub struct Writer {
    proto: Protocol,
    out: Vec<u8>,
    /// The compact protocol's last field id of each open struct (field ids are deltas).
    last: Vec<i16>,
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag32(v: i32) -> u64 {
    ((v << 1) ^ (v >> 31)) as u32 as u64
}

impl Writer {
    pub fn new(proto: Protocol, capacity: usize) -> Writer {
        Writer {
            proto,
            out: Vec::with_capacity(capacity),
            last: vec![0],
        }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.out
    }

    pub fn message_begin(&mut self, name: &str, kind: u8, seqid: i32) {
        match self.proto {
            Protocol::Binary => {
                self.i32(0x8001_0000u32 as i32 | kind as i32);
                self.binary(name.as_bytes());
                self.i32(seqid);
            }
            Protocol::Compact => {
                self.out.push(0x82);
                self.out.push(1 | (kind << 5));
                varint(&mut self.out, seqid as u32 as u64);
                self.binary(name.as_bytes());
            }
        }
    }

    pub fn struct_begin(&mut self) {
        self.last.push(0);
    }

    /// The field stop that ends a struct.
    pub fn struct_end(&mut self) {
        self.out.push(T_STOP);
        self.last.pop();
    }

    pub fn field(&mut self, ty: u8, id: i16) {
        match self.proto {
            Protocol::Binary => {
                self.out.push(ty);
                self.out.extend_from_slice(&id.to_be_bytes());
            }
            Protocol::Compact => {
                let last = self.last.last().copied().unwrap_or(0);
                let delta = i32::from(id) - i32::from(last);
                if (1..=15).contains(&delta) {
                    self.out.push(((delta as u8) << 4) | compact_type(ty));
                } else {
                    self.out.push(compact_type(ty));
                    varint(&mut self.out, zigzag32(i32::from(id)));
                }
                if let Some(l) = self.last.last_mut() {
                    *l = id;
                }
            }
        }
    }

    pub fn i32(&mut self, v: i32) {
        match self.proto {
            Protocol::Binary => self.out.extend_from_slice(&v.to_be_bytes()),
            Protocol::Compact => varint(&mut self.out, zigzag32(v)),
        }
    }

    pub fn binary(&mut self, b: &[u8]) {
        match self.proto {
            Protocol::Binary => self.out.extend_from_slice(&(b.len() as i32).to_be_bytes()),
            Protocol::Compact => varint(&mut self.out, b.len() as u64),
        }
        self.out.extend_from_slice(b);
    }

    pub fn map_begin(&mut self, key: u8, value: u8, n: usize) {
        match self.proto {
            Protocol::Binary => {
                self.out.push(key);
                self.out.push(value);
                self.out.extend_from_slice(&(n as i32).to_be_bytes());
            }
            Protocol::Compact if n == 0 => self.out.push(0),
            Protocol::Compact => {
                varint(&mut self.out, n as u64);
                self.out
                    .push((compact_type(key) << 4) | compact_type(value));
            }
        }
    }

    pub fn list_begin(&mut self, elem: u8, n: usize) {
        match self.proto {
            Protocol::Binary => {
                self.out.push(elem);
                self.out.extend_from_slice(&(n as i32).to_be_bytes());
            }
            Protocol::Compact if n < 15 => self.out.push(((n as u8) << 4) | compact_type(elem)),
            Protocol::Compact => {
                self.out.push(0xf0 | compact_type(elem));
                varint(&mut self.out, n as u64);
            }
        }
    }

    fn event(&mut self, e: &Event) {
        self.struct_begin();
        self.field(T_MAP, 1);
        self.map_begin(T_STRING, T_STRING, e.headers.len());
        for (k, v) in e.headers.iter() {
            self.binary(k.as_bytes());
            self.binary(v.as_bytes());
        }
        self.field(T_STRING, 2);
        self.binary(&e.body);
        self.struct_end();
    }
}

fn size_hint(e: &Event) -> usize {
    e.body.len()
        + e.headers
            .iter()
            .map(|(k, v)| k.len() + v.len() + 10)
            .sum::<usize>()
        + 16
}

/// The message of `appendBatch(events)`.
pub fn append_batch_call<'e>(
    proto: Protocol,
    seqid: i32,
    events: impl ExactSizeIterator<Item = &'e Event> + Clone,
) -> Vec<u8> {
    let size: usize = events.clone().map(size_hint).sum();
    let mut w = Writer::new(proto, size + 32);
    w.message_begin("appendBatch", CALL, seqid);
    w.struct_begin();
    w.field(T_LIST, 1);
    w.list_begin(T_STRUCT, events.len());
    for e in events {
        w.event(e);
    }
    w.struct_end();
    w.into_bytes()
}

/// The message of `append(event)`.
pub fn append_call(proto: Protocol, seqid: i32, event: &Event) -> Vec<u8> {
    let mut w = Writer::new(proto, size_hint(event) + 32);
    w.message_begin("append", CALL, seqid);
    w.struct_begin();
    w.field(T_STRUCT, 1);
    w.event(event);
    w.struct_end();
    w.into_bytes()
}

/// The REPLY to call `name`/`seqid`: the result struct with the status as field 0.
pub fn status_reply(proto: Protocol, name: &str, seqid: i32, status: Status) -> Vec<u8> {
    let mut w = Writer::new(proto, name.len() + 16);
    w.message_begin(name, REPLY, seqid);
    w.struct_begin();
    w.field(T_I32, 0);
    w.i32(status.value());
    w.struct_end();
    w.into_bytes()
}

/// An EXCEPTION message carrying a `TApplicationException { 1: message, 2: type }`.
pub fn exception_reply(
    proto: Protocol,
    name: &str,
    seqid: i32,
    kind: i32,
    message: &str,
) -> Vec<u8> {
    let mut w = Writer::new(proto, name.len() + message.len() + 24);
    w.message_begin(name, EXCEPTION, seqid);
    w.struct_begin();
    w.field(T_STRING, 1);
    w.binary(message.as_bytes());
    w.field(T_I32, 2);
    w.i32(kind);
    w.struct_end();
    w.into_bytes()
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// A message's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageHeader {
    pub name: String,
    pub kind: u8,
    pub seqid: i32,
}

/// Reads one message out of a frame, in either protocol. Every length is checked against what
/// is left of the frame before anything is allocated for it.
pub struct Reader<'a> {
    proto: Protocol,
    buf: &'a [u8],
    pos: usize,
    last: Vec<i16>,
    /// A compact bool field carries its value in the field header.
    pending_bool: Option<bool>,
}

impl<'a> Reader<'a> {
    pub fn new(proto: Protocol, buf: &'a [u8]) -> Reader<'a> {
        Reader {
            proto,
            buf,
            pos: 0,
            last: vec![0],
            pending_bool: None,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.buf.len() - self.pos < n {
            return Err(format!(
                "{n} bytes wanted at byte {} of a {}-byte message",
                self.pos,
                self.buf.len()
            ));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self, max_bytes: usize) -> Result<u64, String> {
        let mut v = 0u64;
        for i in 0..max_bytes {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!(
            "varint longer than {max_bytes} bytes at byte {}",
            self.pos
        ))
    }

    fn be_i32(&mut self) -> Result<i32, String> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn i32(&mut self) -> Result<i32, String> {
        match self.proto {
            Protocol::Binary => self.be_i32(),
            Protocol::Compact => {
                let z = self.varint(5)? as u32;
                Ok((z >> 1) as i32 ^ -((z & 1) as i32))
            }
        }
    }

    /// A size or length: non-negative and (each element taking at least a byte) no more than
    /// what is left of the message.
    fn size(&mut self, what: &str) -> Result<usize, String> {
        let n: i64 = match self.proto {
            Protocol::Binary => i64::from(self.be_i32()?),
            Protocol::Compact => self.varint(5)? as i64,
        };
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.buf.len() - self.pos)
            .ok_or_else(|| {
                format!(
                    "{what} {n} at byte {} is negative or longer than the rest of the message",
                    self.pos
                )
            })
    }

    pub fn binary(&mut self) -> Result<&'a [u8], String> {
        let n = self.size("length")?;
        self.take(n)
    }

    fn string(&mut self, what: &str) -> Result<String, String> {
        let at = self.pos;
        let b = self.binary()?;
        String::from_utf8(b.to_vec()).map_err(|_| format!("{what} at byte {at} is not UTF-8"))
    }

    pub fn message_begin(&mut self) -> Result<MessageHeader, String> {
        match self.proto {
            Protocol::Binary => {
                let first = self.be_i32()?;
                if first < 0 {
                    if (first as u32) & 0xffff_0000 != 0x8001_0000 {
                        return Err(format!(
                            "not a binary-protocol message (version word {:#010x})",
                            first as u32
                        ));
                    }
                    let kind = (first & 0xff) as u8;
                    let name = self.string("the method name")?;
                    let seqid = self.be_i32()?;
                    Ok(MessageHeader { name, kind, seqid })
                } else {
                    // The old, unversioned form: the name's length comes first.
                    self.pos -= 4;
                    let name = self.string("the method name")?;
                    let kind = self.byte()?;
                    let seqid = self.be_i32()?;
                    Ok(MessageHeader { name, kind, seqid })
                }
            }
            Protocol::Compact => {
                let id = self.byte()?;
                if id != 0x82 {
                    return Err(format!(
                        "not a compact-protocol message (protocol id {id:#04x})"
                    ));
                }
                let vt = self.byte()?;
                if vt & 0x1f != 1 {
                    return Err(format!("compact protocol version {} is not 1", vt & 0x1f));
                }
                let seqid = self.varint(5)? as u32 as i32;
                let name = self.string("the method name")?;
                Ok(MessageHeader {
                    name,
                    kind: vt >> 5,
                    seqid,
                })
            }
        }
    }

    fn struct_begin(&mut self, depth: usize) -> Result<(), String> {
        if depth >= MAX_DEPTH {
            return Err(format!(
                "nested deeper than {MAX_DEPTH} at byte {}",
                self.pos
            ));
        }
        self.last.push(0);
        Ok(())
    }

    /// The next field's type and id; `None` at the struct's end.
    fn field(&mut self) -> Result<Option<(u8, i16)>, String> {
        match self.proto {
            Protocol::Binary => {
                let ty = self.byte()?;
                if ty == T_STOP {
                    self.last.pop();
                    return Ok(None);
                }
                let b = self.take(2)?;
                Ok(Some((ty, i16::from_be_bytes([b[0], b[1]]))))
            }
            Protocol::Compact => {
                let b = self.byte()?;
                if b == 0 {
                    self.last.pop();
                    return Ok(None);
                }
                let ty = from_compact_type(b & 0x0f)?;
                let delta = b >> 4;
                let id = if delta != 0 {
                    self.last
                        .last()
                        .copied()
                        .unwrap_or(0)
                        .wrapping_add(i16::from(delta))
                } else {
                    let z = self.varint(3)? as u32;
                    ((z >> 1) as i32 ^ -((z & 1) as i32)) as i16
                };
                if let Some(l) = self.last.last_mut() {
                    *l = id;
                }
                if ty == T_BOOL {
                    self.pending_bool = Some(b & 0x0f == 1);
                }
                Ok(Some((ty, id)))
            }
        }
    }

    /// A map's key and value types and size.
    fn map_begin(&mut self) -> Result<(u8, u8, usize), String> {
        match self.proto {
            Protocol::Binary => {
                let (k, v) = (self.byte()?, self.byte()?);
                Ok((k, v, self.size("map size")?))
            }
            Protocol::Compact => {
                let n = self.size("map size")?;
                if n == 0 {
                    return Ok((T_STRING, T_STRING, 0));
                }
                let kv = self.byte()?;
                Ok((
                    from_compact_type(kv >> 4)?,
                    from_compact_type(kv & 0x0f)?,
                    n,
                ))
            }
        }
    }

    /// A list's (or set's) element type and size.
    fn list_begin(&mut self) -> Result<(u8, usize), String> {
        match self.proto {
            Protocol::Binary => {
                let t = self.byte()?;
                Ok((t, self.size("list size")?))
            }
            Protocol::Compact => {
                let b = self.byte()?;
                let t = from_compact_type(b & 0x0f)?;
                let n = if b >> 4 == 15 {
                    self.size("list size")?
                } else {
                    usize::from(b >> 4)
                };
                Ok((t, n))
            }
        }
    }

    /// Skips one value of type `ty` (Thrift's generic skip).
    pub fn skip(&mut self, ty: u8, depth: usize) -> Result<(), String> {
        if depth >= MAX_DEPTH {
            return Err(format!(
                "nested deeper than {MAX_DEPTH} at byte {}",
                self.pos
            ));
        }
        let compact = self.proto == Protocol::Compact;
        match ty {
            T_BOOL => {
                // A compact bool field's value was in its header; in a container it is a byte.
                if self.pending_bool.take().is_none() || !compact {
                    self.take(1)?;
                }
            }
            T_BYTE => {
                self.take(1)?;
            }
            T_I16 | T_I32 | T_I64 if compact => {
                self.varint(10)?;
            }
            T_I16 => {
                self.take(2)?;
            }
            T_I32 => {
                self.take(4)?;
            }
            T_I64 | T_DOUBLE => {
                self.take(8)?;
            }
            T_UUID => {
                self.take(16)?;
            }
            T_STRING => {
                self.binary()?;
            }
            T_STRUCT => {
                self.struct_begin(depth)?;
                while let Some((t, _)) = self.field()? {
                    self.skip(t, depth + 1)?;
                }
            }
            T_MAP => {
                let (k, v, n) = self.map_begin()?;
                for _ in 0..n {
                    self.skip_elem(k, depth + 1)?;
                    self.skip_elem(v, depth + 1)?;
                }
            }
            T_SET | T_LIST => {
                let (t, n) = self.list_begin()?;
                for _ in 0..n {
                    self.skip_elem(t, depth + 1)?;
                }
            }
            other => return Err(format!("unknown type {other} at byte {}", self.pos)),
        }
        Ok(())
    }

    fn skip_elem(&mut self, ty: u8, depth: usize) -> Result<(), String> {
        self.pending_bool = None;
        self.skip(ty, depth)
    }

    /// Skips a field of the wrong type, or reports it if the field is one this side needs.
    fn expect(&self, got: u8, want: u8, what: &str) -> Result<(), String> {
        if got == want {
            Ok(())
        } else {
            Err(format!("{what} has type {got}, not {want}"))
        }
    }

    fn event(&mut self, depth: usize) -> Result<(Headers, &'a [u8]), String> {
        self.struct_begin(depth)?;
        let (mut headers, mut body) = (None, None);
        while let Some((ty, id)) = self.field()? {
            match id {
                1 => {
                    self.expect(ty, T_MAP, "ThriftFlumeEvent.headers")?;
                    let (k, v, n) = self.map_begin()?;
                    if n > 0 {
                        self.expect(k, T_STRING, "a header key")?;
                        self.expect(v, T_STRING, "a header value")?;
                    }
                    let mut h = Headers::new();
                    for _ in 0..n {
                        let key = self.string("a header key")?;
                        let value = self.string(&format!("the value of header '{key}'"))?;
                        h.insert(key, value);
                    }
                    headers = Some(h);
                }
                2 => {
                    self.expect(ty, T_STRING, "ThriftFlumeEvent.body")?;
                    body = Some(self.binary()?);
                }
                _ => self.skip(ty, depth + 1)?,
            }
        }
        match (headers, body) {
            (Some(h), Some(b)) => Ok((h, b)),
            (None, _) => Err("a ThriftFlumeEvent without its required headers".into()),
            (_, None) => Err("a ThriftFlumeEvent without its required body".into()),
        }
    }

    fn expect_end(&self) -> Result<(), String> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(format!(
                "{} bytes after the message's end",
                self.buf.len() - self.pos
            ))
        }
    }
}

/// The events of a call the source serves, each still pointing into the request.
pub type Events<'a> = Vec<(Headers, &'a [u8])>;

/// Reads the arguments of `append` (`batch == false`) or `appendBatch`.
fn read_args<'a>(r: &mut Reader<'a>, batch: bool) -> Result<Events<'a>, String> {
    r.struct_begin(0)?;
    let mut events = None;
    while let Some((ty, id)) = r.field()? {
        match (id, batch) {
            (1, false) => {
                r.expect(ty, T_STRUCT, "append's event")?;
                events = Some(vec![r.event(1)?]);
            }
            (1, true) => {
                r.expect(ty, T_LIST, "appendBatch's events")?;
                let (t, n) = r.list_begin()?;
                if n > 0 {
                    r.expect(t, T_STRUCT, "an element of appendBatch's events")?;
                }
                // `n` is bounded by the message's length; each event takes 2 bytes or more.
                let mut v = Vec::with_capacity(n.min(r.buf.len() / 2));
                for _ in 0..n {
                    v.push(r.event(2)?);
                }
                events = Some(v);
            }
            _ => r.skip(ty, 1)?,
        }
    }
    r.expect_end()?;
    // Thrift leaves a missing argument null; Flume's handler would then fail on it.
    events.ok_or_else(|| "the call has no events argument (field 1)".into())
}

/// What a server made of one request.
pub struct Served {
    /// The reply to send.
    pub reply: Vec<u8>,
    /// Why the call was answered with an exception, for the log.
    pub problem: Option<String>,
}

/// Answers one request message: `handle` gets the events of an `append` or `appendBatch`
/// (with `true` for the batch) and returns their status. `Err` if the message's header cannot be read: then there is no name
/// or sequence id to answer to, and the connection should be closed.
pub fn serve(
    proto: Protocol,
    message: &[u8],
    handle: impl FnOnce(Vec<Event>, bool) -> Status,
) -> Result<Served, String> {
    let mut r = Reader::new(proto, message);
    let head = r.message_begin()?;
    // Flume's methods are not oneway: a ONEWAY message is not one of its calls either.
    if head.kind != CALL {
        return Err(format!(
            "message '{}' has type {}, not CALL",
            head.name, head.kind
        ));
    }
    let batch = match head.name.as_str() {
        "appendBatch" => true,
        "append" => false,
        other => {
            let problem = format!("Invalid method name: '{other}'");
            return Ok(Served {
                reply: exception_reply(proto, other, head.seqid, UNKNOWN_METHOD, &problem),
                problem: Some(problem),
            });
        }
    };
    match read_args(&mut r, batch) {
        Ok(events) => {
            let events = events
                .into_iter()
                .map(|(headers, body)| Event {
                    headers,
                    body: bytes::Bytes::copy_from_slice(body),
                })
                .collect();
            let status = handle(events, batch);
            Ok(Served {
                reply: status_reply(proto, &head.name, head.seqid, status),
                problem: None,
            })
        }
        Err(e) => {
            let problem = format!("{}: {e}", head.name);
            Ok(Served {
                reply: exception_reply(proto, &head.name, head.seqid, PROTOCOL_ERROR, &problem),
                problem: Some(problem),
            })
        }
    }
}

/// Reads the reply to call `name`/`seqid`: its status, or what was wrong with it.
pub fn read_reply(
    proto: Protocol,
    name: &str,
    seqid: i32,
    message: &[u8],
) -> Result<Status, String> {
    let mut r = Reader::new(proto, message);
    let head = r.message_begin()?;
    if head.seqid != seqid || head.name != name {
        return Err(format!(
            "a reply to {} #{} while {name} #{seqid} was waiting",
            head.name, head.seqid
        ));
    }
    r.struct_begin(0)?;
    match head.kind {
        REPLY => {
            let mut status = None;
            while let Some((ty, id)) = r.field()? {
                if id == 0 && ty == T_I32 {
                    status = Some(Status::from_value(r.i32()?));
                } else {
                    r.skip(ty, 1)?;
                }
            }
            status.ok_or_else(|| format!("the reply to {name} has no status"))
        }
        EXCEPTION => {
            let (mut message, mut kind) = (String::new(), 0);
            while let Some((ty, id)) = r.field()? {
                match (id, ty) {
                    (1, T_STRING) => message = String::from_utf8_lossy(r.binary()?).into_owned(),
                    (2, T_I32) => kind = r.i32()?,
                    _ => r.skip(ty, 1)?,
                }
            }
            Err(format!(
                "the server answered with a TApplicationException (type {kind}): {message}"
            ))
        }
        other => Err(format!("a message of type {other} where a reply was due")),
    }
}

// ---------------------------------------------------------------------------------------------
// Framing and the connection

pub fn encode_frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 4);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// Reads the next frame; `None` if the stream ended cleanly before it.
pub fn read_frame(r: &mut impl Read, max: usize) -> Result<Option<Vec<u8>>, FrameError> {
    read_frame_limited(r, max, None)
}

/// [`read_frame`] under a server's `limits`.
fn read_frame_limited(
    r: &mut impl Read,
    max: usize,
    mut limits: Option<&mut FrameLimits>,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(FrameError::Truncated("inside the frame length".into())),
            Ok(n) => {
                if got == 0
                    && let Some(l) = limits.as_deref_mut()
                {
                    l.started();
                }
                got += n;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    let n = i32::from_be_bytes(len);
    let n = usize::try_from(n)
        .ok()
        .filter(|&n| n <= max)
        .ok_or_else(|| {
            FrameError::Bad(format!(
                "frame length {n} is negative or over the {max}-byte limit"
            ))
        })?;
    let mut message = Vec::new();
    // Grows with the bytes that actually arrive, whatever the length claims.
    let read = read_frame_bytes(r, n, &mut message, limits)?;
    if read < n {
        return Err(FrameError::Truncated(format!("{read} of {n} bytes")));
    }
    Ok(Some(message))
}

/// One framed Thrift connection.
pub struct Transport {
    reader: BufReader<Box<dyn Read + Send>>,
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
    /// Inside TLS when `security` says so; reads give up when `stop` is set.
    pub fn new(stream: TcpStream, security: &Security, stop: StopFlag) -> io::Result<Transport> {
        let Halves {
            reader,
            writer,
            deadline,
        } = open(stream, security, stop)?;
        Ok(Transport {
            reader: BufReader::new(reader),
            writer,
            deadline,
            limits: None,
        })
    }

    pub fn send(&mut self, message: &[u8]) -> io::Result<()> {
        self.writer.write_all(&encode_frame(message))
    }

    /// The next frame's message; `None` if the peer closed the connection between frames. With
    /// `within`, gives up (an `Io` error of kind `TimedOut`) once that much time has passed.
    pub fn receive(&mut self, within: Option<Duration>) -> Result<Option<Vec<u8>>, FrameError> {
        self.deadline.set(within);
        let reader = &mut self.reader;
        read_limited(&mut self.limits, |limits| {
            read_frame_limited(reader, MAX_FRAME_BYTES, limits)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc_connection::FrameBudget;

    fn event(headers: &[(&str, &str)], body: &str) -> Event {
        let mut e = Event::new(body.to_string());
        for (k, v) in headers {
            e.headers.insert(k.to_string(), v.to_string());
        }
        e
    }

    /// `appendBatch([{headers: {"k": "v"}, body: "hi"}])`, seqid 1, worked out from the
    /// compact protocol spec:
    ///
    /// ```text
    /// 82                 protocol id
    /// 21                 version 1 | CALL (1) << 5
    /// 01                 seqid 1, varint
    /// 0b "appendBatch"   name: varint length 11, bytes
    /// 19                 field 1 (delta 1) << 4 | LIST (9)
    /// 1c                 list: size 1 << 4 | STRUCT (12)
    /// 1b                 field 1 (delta 1) << 4 | MAP (11)
    /// 01 88              map: size 1, varint; key STRING (8) << 4 | value STRING (8)
    /// 01 "k" 01 "v"      key, value
    /// 18                 field 2 (delta 1) << 4 | BINARY (8)
    /// 02 "hi"            body
    /// 00                 end of the event
    /// 00                 end of the arguments
    /// ```
    const COMPACT_BATCH: &[u8] =
        b"\x82\x21\x01\x0bappendBatch\x19\x1c\x1b\x01\x88\x01k\x01v\x18\x02hi\x00\x00";

    /// The same call in the binary protocol (strict, as Java and Python write it):
    ///
    /// ```text
    /// 80 01 00 01        version 1 | CALL
    /// 00 00 00 0b "appendBatch"
    /// 00 00 00 01        seqid 1
    /// 0f 00 01           field 1, LIST (15)
    /// 0c 00 00 00 01     elements STRUCT (12), size 1
    /// 0d 00 01           field 1, MAP (13)
    /// 0b 0b 00 00 00 01  key STRING (11), value STRING (11), size 1
    /// 00 00 00 01 "k" 00 00 00 01 "v"
    /// 0b 00 02           field 2, STRING (11)
    /// 00 00 00 02 "hi"
    /// 00                 end of the event
    /// 00                 end of the arguments
    /// ```
    const BINARY_BATCH: &[u8] = b"\x80\x01\x00\x01\x00\x00\x00\x0bappendBatch\x00\x00\x00\x01\
\x0f\x00\x01\x0c\x00\x00\x00\x01\x0d\x00\x01\x0b\x0b\x00\x00\x00\x01\x00\x00\x00\x01k\
\x00\x00\x00\x01v\x0b\x00\x02\x00\x00\x00\x02hi\x00\x00";

    fn served(proto: Protocol, message: &[u8]) -> (Vec<Event>, Served) {
        let mut got = Vec::new();
        let s = serve(proto, message, |events, _| {
            got = events;
            Status::Ok
        })
        .unwrap();
        (got, s)
    }

    #[test]
    fn append_batch_matches_the_specs_byte_for_byte() {
        let e = event(&[("k", "v")], "hi");
        for (proto, want) in [
            (Protocol::Compact, COMPACT_BATCH),
            (Protocol::Binary, BINARY_BATCH),
        ] {
            assert_eq!(
                append_batch_call(proto, 1, [&e].into_iter()),
                want,
                "{proto:?}"
            );
            let (events, s) = served(proto, want);
            assert!(s.problem.is_none());
            assert_eq!(events, std::slice::from_ref(&e));
            assert_eq!(
                read_reply(proto, "appendBatch", 1, &s.reply),
                Ok(Status::Ok)
            );
        }
    }

    #[test]
    fn replies_match_the_specs() {
        // REPLY, seqid 7, "append"; field 0 (long form: type I32 5, zigzag id 0), FAILED
        // (zigzag 2), stop, as Java writes a result struct.
        assert_eq!(
            status_reply(Protocol::Compact, "append", 7, Status::Failed),
            b"\x82\x41\x07\x06append\x05\x00\x02\x00"
        );
        assert_eq!(
            status_reply(Protocol::Binary, "append", 7, Status::Failed),
            b"\x80\x01\x00\x02\x00\x00\x00\x06append\x00\x00\x00\x07\x08\x00\x00\x00\x00\x00\x01\x00"
        );
    }

    #[test]
    fn append_and_unknown_methods() {
        for proto in [Protocol::Compact, Protocol::Binary] {
            let e = event(&[("a", "1"), ("b", "2")], "body");
            let (events, s) = served(proto, &append_call(proto, 3, &e));
            assert!(s.problem.is_none());
            assert_eq!(events, [e]);
            let mut w = Writer::new(proto, 64);
            w.message_begin("nope", CALL, 9);
            w.struct_begin();
            w.struct_end();
            let s = serve(proto, &w.into_bytes(), |_, _| panic!("not a Flume call")).unwrap();
            assert!(s.problem.is_some());
            let err = read_reply(proto, "nope", 9, &s.reply).unwrap_err();
            assert!(err.contains("type 1") && err.contains("nope"), "{err}");
        }
    }

    #[test]
    fn unknown_fields_are_skipped() {
        for proto in [Protocol::Compact, Protocol::Binary] {
            let mut w = Writer::new(proto, 256);
            w.message_begin("appendBatch", CALL, 1);
            w.struct_begin();
            // An unknown argument before the events: a struct holding every kind of value.
            w.field(T_STRUCT, 5);
            w.struct_begin();
            w.field(T_BOOL, 1);
            if proto == Protocol::Binary {
                w.out.push(1);
            } else {
                // The compact protocol's bool field: the value is the type nibble.
                let last = w.out.len() - 1;
                w.out[last] = (w.out[last] & 0xf0) | 1;
            }
            w.field(T_LIST, 40);
            w.list_begin(T_I32, 20);
            for i in 0..20 {
                w.i32(-i);
            }
            w.field(T_MAP, 2);
            w.map_begin(T_STRING, T_LIST, 1);
            w.binary(b"x");
            w.list_begin(T_STRING, 1);
            w.binary(b"y");
            w.struct_end();
            w.field(T_LIST, 1);
            w.list_begin(T_STRUCT, 1);
            w.struct_begin();
            w.field(T_STRING, 2);
            w.binary(b"body");
            w.field(T_I32, 3);
            w.i32(77);
            w.field(T_MAP, 1);
            w.map_begin(T_STRING, T_STRING, 0);
            w.struct_end();
            w.field(T_STRING, 9);
            w.binary(b"later");
            w.struct_end();
            let (events, s) = served(proto, &w.into_bytes());
            assert!(s.problem.is_none(), "{proto:?}: {:?}", s.problem);
            assert_eq!(events, [event(&[], "body")], "{proto:?}");
        }
    }

    #[test]
    fn bad_arguments_are_answered_with_an_exception() {
        for proto in [Protocol::Compact, Protocol::Binary] {
            let mut w = Writer::new(proto, 64);
            w.message_begin("appendBatch", CALL, 2);
            w.struct_begin();
            w.field(T_LIST, 1);
            w.list_begin(T_STRUCT, 1);
            w.struct_begin();
            w.field(T_MAP, 1);
            w.map_begin(T_STRING, T_STRING, 1);
            w.binary(b"k");
            w.binary(b"\xff\xfe");
            w.field(T_STRING, 2);
            w.binary(b"b");
            w.struct_end();
            w.struct_end();
            let s = serve(proto, &w.into_bytes(), |_, _| panic!("nothing to store")).unwrap();
            let problem = s.problem.unwrap();
            assert!(
                problem.contains("header 'k'") && problem.contains("UTF-8"),
                "{problem}"
            );
            let err = read_reply(proto, "appendBatch", 2, &s.reply).unwrap_err();
            assert!(err.contains("type 7"), "{err}");
        }
    }

    #[test]
    fn frames_truncated_or_oversized_are_errors() {
        let f = encode_frame(b"abc");
        assert_eq!(read_frame(&mut &f[..], 10).unwrap(), Some(b"abc".to_vec()));
        assert!(read_frame(&mut &b""[..], 10).unwrap().is_none());
        assert!(matches!(
            read_frame(&mut &f[..5], 10),
            Err(FrameError::Truncated(_))
        ));
        assert!(matches!(
            read_frame(&mut &f[..2], 10),
            Err(FrameError::Truncated(_))
        ));
        assert!(matches!(
            read_frame(&mut &f[..], 2),
            Err(FrameError::Bad(_))
        ));
        let huge = [0xff, 0xff, 0xff, 0xf0, 1];
        assert!(matches!(
            read_frame(&mut &huge[..], MAX_FRAME_BYTES),
            Err(FrameError::Bad(_))
        ));
        let over = ((MAX_FRAME_BYTES + 1) as u32).to_be_bytes();
        assert!(matches!(
            read_frame(&mut &over[..], MAX_FRAME_BYTES),
            Err(FrameError::Bad(_))
        ));
    }

    #[test]
    fn random_and_mangled_messages_never_panic() {
        // A small xorshift generator: reproducible, no dependency.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let e = event(&[("host", "h1"), ("k", "v")], "some body");
        for proto in [Protocol::Compact, Protocol::Binary] {
            let good = append_batch_call(proto, 5, [&e, &e].into_iter());
            for _ in 0..3000 {
                let mut m = good.clone();
                match next() % 3 {
                    0 => m.truncate((next() as usize) % m.len()),
                    1 => {
                        for _ in 0..1 + next() % 4 {
                            let i = (next() as usize) % m.len();
                            m[i] = next() as u8;
                        }
                    }
                    _ => {
                        let n = (next() % 64) as usize;
                        m = (0..n).map(|_| next() as u8).collect();
                    }
                }
                let _ = serve(proto, &m, |events, _| {
                    assert!(events.len() <= 2);
                    Status::Ok
                });
                let _ = read_reply(proto, "appendBatch", 5, &m);
                let _ = read_frame(&mut &m[..], 1024);
            }
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut m = b"\x82\x21\x01\x0bappendBatch".to_vec();
        // An unknown field 2 of type STRUCT, holding another, and so on.
        m.extend(std::iter::repeat_n(0x2c, 10_000));
        let s = serve(Protocol::Compact, &m, |_, _| Status::Ok).unwrap();
        assert!(s.problem.unwrap().contains("deeper"));
    }

    /// A server connection's frames are charged to the shared budget and given back (the
    /// rules themselves are tested with the avro transport, which shares them).
    #[test]
    fn server_frames_are_charged_to_the_shared_budget() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let stop: crate::stop::StopFlag = crate::stop::Stop::new();
        let mut server = Transport::new(server, &Security::Plain, stop).unwrap();
        let budget = FrameBudget::new(100 << 10);
        server.limit_frames(budget.clone(), Duration::from_secs(10));
        // Before its first call is answered, a client's frame may hold half.
        client.write_all(&encode_frame(&[1u8; 20 << 10])).unwrap();
        assert_eq!(server.receive(None).unwrap().unwrap().len(), 20 << 10);
        assert_eq!(budget.used(), 20 << 10, "held while the call is served");
        server.client_proven();
        client.write_all(&encode_frame(&[1u8; 60 << 10])).unwrap();
        assert_eq!(server.receive(None).unwrap().unwrap().len(), 60 << 10);
        assert_eq!(budget.used(), 60 << 10, "held while the call is served");
        client.write_all(&encode_frame(&[2u8; 150 << 10])).unwrap();
        let e = server.receive(None).unwrap_err();
        assert!(
            matches!(&e, FrameError::OverLimit(m) if m.contains("of its 102400")),
            "{e}"
        );
        drop(server);
        assert_eq!(budget.used(), 0);
    }
}
