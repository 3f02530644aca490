//! What the spooldir source asks of a deserializer (Flume `deserializer`): events read from a
//! file batch by batch, each with the position just after it, from which reading resumes
//! exactly at the next event, and what ended the batch. [`open`] gives the configured one:
//! LINE ([`super::lines`]), BLOB ([`super::blob`]) or AVRO ([`super::avro`]).

use std::fs::File;
use std::io;

use bytes::Bytes;

use super::avro::AvroReader;
use super::blob::BlobReader;
use super::lines::LineReader;
use crate::config::{DecodeErrorPolicy, SpoolDeserializer};

/// A batch stops growing once its bodies reach this many bytes (it holds at least one event):
/// BLOB events may be up to 2 GiB each, and a batch is held in memory until it is committed.
pub const BATCH_BYTES: usize = 64 << 20;

/// A place in a file that reading can resume from: `offset` is a byte offset; for AVRO it is
/// where a block starts and `records` of that block's records come before the place (0 for LINE
/// and BLOB, and for AVRO at a block boundary).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    pub offset: u64,
    pub records: u64,
}

impl Position {
    pub fn at(offset: u64) -> Position {
        Position { offset, records: 0 }
    }
}

/// One event's body, and the position where the next one starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    pub body: Bytes,
    pub end: Position,
}

/// What came after the events of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum After {
    /// More events may follow.
    More,
    /// The end of the file.
    End,
    /// LINE: bytes at this offset are not UTF-8 and the policy is FAIL: the file cannot be
    /// read on.
    Invalid(u64),
    /// The file cannot be read on: why, naming the byte offset.
    Corrupt(String),
}

#[derive(Debug)]
pub struct Batch {
    pub pieces: Vec<Piece>,
    pub after: After,
}

/// A file being cut into events.
pub trait Deserializer: Send {
    /// Up to `max` events.
    fn read_batch(&mut self, max: usize) -> io::Result<Batch>;

    /// The open file's metadata now.
    fn stat(&self) -> io::Result<std::fs::Metadata>;

    /// The offset of the first byte not read yet (for messages).
    fn offset(&self) -> u64;

    /// Headers every event of the file gets (AVRO's schema header).
    fn headers(&self) -> &[(String, String)] {
        &[]
    }
}

/// The configured deserializer reading `file` (whose size is `len`) from `start`.
pub fn open(
    kind: SpoolDeserializer,
    policy: DecodeErrorPolicy,
    file: File,
    len: u64,
    start: Position,
) -> Box<dyn Deserializer> {
    match kind {
        SpoolDeserializer::Line { max_line_length } => Box::new(LineReader::new(
            file,
            len,
            start.offset,
            max_line_length,
            policy,
        )),
        SpoolDeserializer::Blob { max_blob_length } => {
            Box::new(BlobReader::new(file, len, start.offset, max_blob_length))
        }
        SpoolDeserializer::Avro { schema_type } => {
            Box::new(AvroReader::new(file, len, start, schema_type))
        }
    }
}
