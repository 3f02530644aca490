//! The unit of data that flows through weir: a Flume event, i.e. a set of string headers and an
//! opaque byte body.
//!
//! The body is a [`Bytes`], so an event read back from the write-ahead log can point straight
//! into the segment's memory map instead of copying it. How an event is laid out on disk is part
//! of the log format (`wal-format.md`, "Event encoding") and lives in `wal::frame`.

use std::collections::BTreeMap;

use bytes::Bytes;

/// Event headers. A sorted map keeps encodings deterministic, which makes log files
/// reproducible byte for byte (the worked example in `wal-format.md` relies on it).
pub type Headers = BTreeMap<String, String>;

/// A Flume event: headers plus body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Event {
    pub headers: Headers,
    pub body: Bytes,
}

impl Event {
    /// An event with a body and no headers.
    pub fn new(body: impl Into<Bytes>) -> Self {
        Event {
            headers: Headers::new(),
            body: body.into(),
        }
    }

    /// Builder-style header setter.
    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(key.into(), value.into());
        self
    }
}
