//! Cutting a spooled Avro object container file into events as Flume's AVRO deserializer
//! (`org.apache.flume.serialization.AvroEventDeserializer`) does: one event per record, whose
//! body is the record's binary datum (written out again as Avro Java writes a record it read:
//! see [`crate::avro_schema`]), and a header naming the file's schema in every event:
//! `flume.avro.schema.hash` = the CRC-64-AVRO fingerprint of the schema's Parsing Canonical
//! Form in lowercase hex, least significant byte first (`deserializer.schemaType = HASH`, the
//! default), or `flume.avro.schema.literal` = the schema JSON (`LITERAL`).
//!
//! The file is read block by block with `pread`: the header (magic, metadata, sync marker),
//! then each block's record count and byte size, its bytes and its sync marker, which must be
//! the header's; the codecs are those of [`crate::avro_container`]. A position is a block's
//! offset and how many of its records come before it, so a restart resumes at the first record
//! not committed (Flume goes back to the start of the block, sending its committed records
//! again). A file that is not a valid container (bad magic or header, unknown codec, a block
//! cut short, a wrong sync marker, records that do not decode with the schema) ends with
//! [`After::Corrupt`] naming the byte offset; the records before it are events.
//!
//! Nothing is allocated beyond what the file holds: the header is read in growing pieces up to
//! [`MAX_HEADER`], a block's declared size must fit in the file and in [`MAX_BLOCK`] (also the
//! cap on its uncompressed size), and each record is read through bounds-checked cursors.

use std::fs::File;
use std::io;

use bytes::Bytes;

use super::deserializer::{After, BATCH_BYTES, Batch, Deserializer, Piece, Position};
use crate::avro_container::{MAGIC, SYNC_SIZE, codec_in_metadata, decompress};
use crate::avro_schema::{MAX_ZERO_WIDTH_ITEMS, Schema};
use crate::config::{AvroCodec, AvroSchemaType};
use crate::flume_event_format::Cursor;
use crate::source::read_full_at;

/// Flume's header names.
pub const SCHEMA_HASH_HEADER: &str = "flume.avro.schema.hash";
pub const SCHEMA_LITERAL_HEADER: &str = "flume.avro.schema.literal";

/// The largest header (its metadata holds the schema) read.
pub const MAX_HEADER: usize = 16 << 20;
/// The largest block, as stored and uncompressed. Avro's writers end a block every 16 to 64
/// KiB by default.
pub const MAX_BLOCK: usize = 256 << 20;

/// The first piece of the file read for its header.
const FIRST_HEADER_READ: usize = 64 << 10;

struct Header {
    schema: Schema,
    zero_width: bool,
    codec: AvroCodec,
    sync: [u8; SYNC_SIZE],
    /// Where the first block starts.
    end: u64,
}

/// The block being read.
struct Block {
    /// Its offset in the file, and the offset of the next block.
    start: u64,
    next: u64,
    count: u64,
    /// Records read from it so far.
    taken: u64,
    /// Its records, uncompressed, and where the next one starts in them.
    data: Vec<u8>,
    at: usize,
}

pub struct AvroReader {
    file: File,
    /// Nothing past this is read: the file's size when it was opened.
    len: u64,
    start: Position,
    schema_type: AvroSchemaType,
    /// Read at the first batch.
    header: Option<Header>,
    headers: Vec<(String, String)>,
    block: Option<Block>,
    /// Where the next block starts, when none is open.
    next_block: u64,
    /// Records of the block at `next_block` to pass over: they were committed before.
    skip: u64,
}

/// A reason the file cannot be read on, or an I/O error (to try again later).
enum Stop {
    Io(io::Error),
    Corrupt(String),
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Stop {
        Stop::Io(e)
    }
}

impl AvroReader {
    /// Reads `file` (whose size is `len`) from `start` (the start of the file, or a position
    /// of an event this reader returned before).
    pub fn new(file: File, len: u64, start: Position, schema_type: AvroSchemaType) -> AvroReader {
        AvroReader {
            file,
            len,
            start,
            schema_type,
            header: None,
            headers: Vec::new(),
            block: None,
            next_block: 0,
            skip: 0,
        }
    }

    /// Reads and checks the header, and goes to the start position.
    fn open(&mut self) -> Result<(), Stop> {
        let (header, literal) = read_header(&self.file, self.len)?;
        self.headers = vec![match self.schema_type {
            AvroSchemaType::Hash => (
                SCHEMA_HASH_HEADER.to_owned(),
                header
                    .schema
                    .fingerprint()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect(),
            ),
            AvroSchemaType::Literal => (SCHEMA_LITERAL_HEADER.to_owned(), literal),
        }];
        if self.start.offset == 0 {
            self.next_block = header.end;
        } else if self.start.offset < header.end || self.start.offset > self.len {
            return Err(Stop::Corrupt(format!(
                "the committed position, byte {}, is not where a block starts (the blocks are from byte {} to {})",
                self.start.offset, header.end, self.len
            )));
        } else {
            self.next_block = self.start.offset;
            self.skip = self.start.records;
        }
        self.header = Some(header);
        Ok(())
    }

    /// Reads the block at `next_block` and passes over the records to skip.
    fn load_block(&mut self) -> Result<(), Stop> {
        let Some(header) = &self.header else {
            return Err(Stop::Corrupt("no header".into()));
        };
        let at = self.next_block;
        let mut head = [0u8; 20];
        let n = read_full_at(&self.file, &mut head, at)?;
        let n = n.min((self.len - at).min(20) as usize);
        let mut c = Cursor::new(&head[..n]);
        let (count, size) = match (c.long(), c.long()) {
            (Ok(count), Ok(size)) => (count, size),
            _ => {
                return Err(Stop::Corrupt(format!(
                    "the block at byte {at} is cut short: the file ends at byte {} before its record count and size",
                    self.len
                )));
            }
        };
        let data_at = at + c.position() as u64;
        let (Ok(count), Ok(size)) = (u64::try_from(count), usize::try_from(size)) else {
            return Err(Stop::Corrupt(format!(
                "the block at byte {at} declares {count} records of {size} bytes"
            )));
        };
        if size > MAX_BLOCK {
            return Err(Stop::Corrupt(format!(
                "the block at byte {at} declares {size} bytes, more than the {MAX_BLOCK} weir reads"
            )));
        }
        let next = data_at + (size + SYNC_SIZE) as u64;
        if next > self.len {
            return Err(Stop::Corrupt(format!(
                "the block at byte {at} is cut short: it declares {size} bytes and its sync marker, which would end at byte {next}, but the file ends at byte {}",
                self.len
            )));
        }
        let mut stored = vec![0; size + SYNC_SIZE];
        let got = read_full_at(&self.file, &mut stored, data_at)?;
        if got < stored.len() {
            return Err(Stop::Corrupt(format!(
                "the block at byte {at} is cut short: the file ends at byte {}",
                data_at + got as u64
            )));
        }
        if stored[size..] != header.sync {
            return Err(Stop::Corrupt(format!(
                "the sync marker after the block at byte {at} (at byte {}) is not the file's",
                data_at + size as u64
            )));
        }
        stored.truncate(size);
        let data = decompress(header.codec, &stored, MAX_BLOCK).map_err(|e| {
            Stop::Corrupt(format!(
                "the block at byte {at} cannot be uncompressed ({}): {e}",
                header.codec.name()
            ))
        })?;
        let most = if header.zero_width {
            MAX_ZERO_WIDTH_ITEMS
        } else {
            data.len() as u64
        };
        if count > most {
            return Err(Stop::Corrupt(format!(
                "the block at byte {at} declares {count} records in {} bytes",
                data.len()
            )));
        }
        self.block = Some(Block {
            start: at,
            next,
            count,
            taken: 0,
            data,
            at: 0,
        });
        let skip = std::mem::take(&mut self.skip);
        if skip >= count && skip > 0 {
            return Err(Stop::Corrupt(format!(
                "the committed position says {skip} records of the block at byte {at} were sent, but it has {count}"
            )));
        }
        let mut scratch = Vec::new();
        for _ in 0..skip {
            scratch.clear();
            self.next_record(&mut scratch)?;
        }
        Ok(())
    }

    /// Reads the open block's next record into `out`; the position after it.
    fn next_record(&mut self, out: &mut Vec<u8>) -> Result<Position, Stop> {
        let (Some(header), Some(block)) = (&self.header, &mut self.block) else {
            return Err(Stop::Corrupt("no block".into()));
        };
        let mut c = Cursor::new(&block.data[block.at..]);
        header.schema.copy_datum(&mut c, out).map_err(|e| {
            Stop::Corrupt(format!(
                "record {} of the block at byte {} does not decode with the file's schema: {e} (counting from the record's first byte)",
                block.taken, block.start
            ))
        })?;
        block.at += c.position();
        block.taken += 1;
        if block.taken < block.count {
            return Ok(Position {
                offset: block.start,
                records: block.taken,
            });
        }
        if block.at != block.data.len() {
            return Err(Stop::Corrupt(format!(
                "the block at byte {} has {} bytes after its {} records",
                block.start,
                block.data.len() - block.at,
                block.count
            )));
        }
        Ok(Position::at(block.next))
    }

    fn read(&mut self, max: usize, pieces: &mut Vec<Piece>) -> Result<After, Stop> {
        if self.header.is_none() {
            self.open()?;
        }
        let mut bytes = 0usize;
        while pieces.len() < max && bytes < BATCH_BYTES {
            match &self.block {
                Some(b) if b.taken < b.count => {}
                Some(b) => {
                    self.next_block = b.next;
                    self.block = None;
                    continue;
                }
                None if self.next_block >= self.len => return Ok(After::End),
                None => {
                    self.load_block()?;
                    continue;
                }
            }
            let mut body = Vec::new();
            let end = self.next_record(&mut body)?;
            bytes += body.len();
            pieces.push(Piece {
                body: Bytes::from(body),
                end,
            });
        }
        // Say End as soon as the last record is taken, so that the file is finished at once.
        match &self.block {
            Some(b) if b.taken == b.count && b.next >= self.len => Ok(After::End),
            None if self.header.is_some() && self.next_block >= self.len => Ok(After::End),
            _ => Ok(After::More),
        }
    }
}

impl Deserializer for AvroReader {
    fn read_batch(&mut self, max: usize) -> io::Result<Batch> {
        let mut pieces = Vec::new();
        let after = match self.read(max, &mut pieces) {
            Ok(after) => after,
            Err(Stop::Corrupt(why)) => After::Corrupt(why),
            // Nothing read is lost: the batch is read again from the committed position.
            Err(Stop::Io(e)) => return Err(e),
        };
        Ok(Batch { pieces, after })
    }

    fn stat(&self) -> io::Result<std::fs::Metadata> {
        self.file.metadata()
    }

    fn offset(&self) -> u64 {
        self.block.as_ref().map_or(self.next_block, |b| b.start)
    }

    fn headers(&self) -> &[(String, String)] {
        &self.headers
    }
}

/// Reads and checks the header of `file` (whose size is `len`); also the schema's JSON text.
fn read_header(file: &File, len: u64) -> Result<(Header, String), Stop> {
    let mut want = FIRST_HEADER_READ;
    loop {
        let size = (want as u64).min(len) as usize;
        let mut buf = vec![0; size];
        let n = read_full_at(file, &mut buf, 0)?;
        buf.truncate(n);
        match parse_header(&buf) {
            Ok(h) => return Ok(h),
            // Perhaps the metadata goes on past what was read.
            Err(_) if n == size && (n as u64) < len && want < MAX_HEADER => {
                want = (want * 8).min(MAX_HEADER);
            }
            Err(why) if n == MAX_HEADER => {
                return Err(Stop::Corrupt(format!(
                    "{why} (the header is read up to {MAX_HEADER} bytes)"
                )));
            }
            Err(why) => return Err(Stop::Corrupt(why)),
        }
    }
}

/// Where Flume's AVRO deserializer goes on from a position it stored, `mark`: as
/// `DataFileReader.sync(mark)` does, the byte after the first sync marker that starts at or
/// after `mark`, or the file's end (`len`) when none does. Flume stores `previousSync() - 16`,
/// the start of the marker before the block it was reading, so this is the start of that
/// block: its records that were committed are sent again, as Flume would send them. A marker
/// inside the header's metadata (by chance) counts as the header's own.
pub fn block_after_flume_mark(file: &File, len: u64, mark: u64) -> Result<u64, String> {
    let header = match read_header(file, len) {
        Ok((header, _)) => header,
        Err(Stop::Io(e)) => return Err(e.to_string()),
        Err(Stop::Corrupt(why)) => return Err(why),
    };
    let finder = memchr::memmem::Finder::new(&header.sync);
    let mut at = mark;
    let mut buf = vec![0; FIRST_HEADER_READ];
    while len.saturating_sub(at) >= SYNC_SIZE as u64 {
        let want = buf.len().min((len - at) as usize);
        let n = read_full_at(file, &mut buf[..want], at).map_err(|e| e.to_string())?;
        if let Some(i) = finder.find(&buf[..n]) {
            return Ok((at + (i + SYNC_SIZE) as u64).max(header.end));
        }
        if n < SYNC_SIZE {
            break;
        }
        // The next piece overlaps this one, so a marker across the boundary is found.
        at += (n - (SYNC_SIZE - 1)) as u64;
    }
    Ok(len)
}

/// The header at the start of `buf`: the schema, codec and sync marker, and the schema's text
/// as the file holds it.
fn parse_header(buf: &[u8]) -> Result<(Header, String), String> {
    if buf.is_empty() {
        return Err("not an Avro object container file: it is empty".into());
    }
    if !buf.starts_with(MAGIC) {
        return Err(format!(
            "not an Avro object container file: it does not start with {:?} (byte 0)",
            String::from_utf8_lossy(MAGIC)
        ));
    }
    let mut c = Cursor::new(buf);
    c.fixed(MAGIC.len())?;
    let meta = c
        .bytes_map()
        .map_err(|e| format!("the container's metadata (from byte 4) is cut short or bad: {e}"))?;
    let sync: [u8; SYNC_SIZE] = c
        .fixed(SYNC_SIZE)
        .ok()
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| {
            format!(
                "the header's sync marker at byte {} is cut short",
                c.position()
            )
        })?;
    let get = |key: &str| meta.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
    let literal = get("avro.schema")
        .ok_or("the header has no avro.schema")
        .and_then(|s| {
            std::str::from_utf8(s).map_err(|_| "the header's avro.schema is not UTF-8")
        })?;
    let schema = Schema::parse(literal).map_err(|e| format!("the header's avro.schema: {e}"))?;
    let codec = codec_in_metadata(get("avro.codec"))?;
    Ok((
        Header {
            zero_width: schema.zero_width(),
            schema,
            codec,
            sync,
            end: c.position() as u64,
        },
        literal.to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avro_container::compress;
    use crate::flume_event_format::{put_bytes, put_bytes_map, put_long};

    const SCHEMA: &str = r#"{"type":"record","name":"User","namespace":"t","fields":[{"name":"name","type":"string"},{"name":"n","type":"long"}]}"#;

    fn record(i: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_bytes(&mut out, format!("user-{i}").as_bytes());
        put_long(&mut out, i as i64 * 1000);
        out
    }

    /// A container of `blocks` blocks of `per` records each (numbered from 0).
    fn container(codec: AvroCodec, blocks: u64, per: u64) -> Vec<u8> {
        let sync = *b"0123456789abcdef";
        let mut out = MAGIC.to_vec();
        put_bytes_map(
            &mut out,
            &[
                ("avro.schema", SCHEMA.as_bytes()),
                ("avro.codec", codec.name().as_bytes()),
            ],
        );
        out.extend_from_slice(&sync);
        for b in 0..blocks {
            let mut data = Vec::new();
            for r in 0..per {
                data.extend(record(b * per + r));
            }
            let stored = compress(codec, &data).unwrap();
            put_long(&mut out, per as i64);
            put_long(&mut out, stored.len() as i64);
            out.extend(stored);
            out.extend_from_slice(&sync);
        }
        out
    }

    struct Read {
        bodies: Vec<Vec<u8>>,
        ends: Vec<Position>,
        after: After,
        headers: Vec<(String, String)>,
    }

    fn read_all(data: &[u8], start: Position, schema_type: AvroSchemaType, batch: usize) -> Read {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.avro");
        std::fs::write(&path, data).unwrap();
        let mut r = AvroReader::new(
            File::open(&path).unwrap(),
            data.len() as u64,
            start,
            schema_type,
        );
        let mut out = Read {
            bodies: Vec::new(),
            ends: Vec::new(),
            after: After::More,
            headers: Vec::new(),
        };
        loop {
            let b = r.read_batch(batch).unwrap();
            assert!(b.pieces.len() <= batch);
            for p in b.pieces {
                out.bodies.push(p.body.to_vec());
                out.ends.push(p.end);
            }
            out.headers = r.headers().to_vec();
            if b.after != After::More {
                out.after = b.after;
                return out;
            }
        }
    }

    #[test]
    fn every_record_with_the_schema_hash_and_every_codec() {
        for codec in [AvroCodec::Null, AvroCodec::Deflate, AvroCodec::Snappy] {
            let file = container(codec, 3, 4);
            let got = read_all(&file, Position::default(), AvroSchemaType::Hash, 5);
            assert_eq!(got.after, After::End, "{codec:?}");
            assert_eq!(got.bodies, (0..12).map(record).collect::<Vec<_>>());
            let hash = Schema::parse(SCHEMA).unwrap().fingerprint();
            let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(got.headers, [(SCHEMA_HASH_HEADER.to_owned(), hex)]);
            // Within a block: its start and the records taken; after its last: the next block.
            assert_eq!(got.ends[0].records, 1);
            assert_eq!(got.ends[3], Position::at(got.ends[4].offset));
            assert_eq!(got.ends[11], Position::at(file.len() as u64));
        }
        let got = read_all(
            &container(AvroCodec::Null, 1, 1),
            Position::default(),
            AvroSchemaType::Literal,
            5,
        );
        assert_eq!(
            got.headers,
            [(SCHEMA_LITERAL_HEADER.to_owned(), SCHEMA.to_owned())]
        );
    }

    #[test]
    fn resumes_at_any_position_it_gave() {
        let file = container(AvroCodec::Deflate, 3, 4);
        let all = read_all(&file, Position::default(), AvroSchemaType::Hash, 100);
        for (i, end) in all.ends.iter().enumerate() {
            let rest = read_all(&file, *end, AvroSchemaType::Hash, 3);
            assert_eq!(rest.bodies, all.bodies[i + 1..], "resumed at {end:?}");
            assert_eq!(rest.after, After::End);
        }
        // A position that is not a block start, or past the records of a block.
        let got = read_all(&file, Position::at(3), AvroSchemaType::Hash, 100);
        assert!(
            matches!(&got.after, After::Corrupt(w) if w.contains("byte 3, is not where a block starts")),
            "{:?}",
            got.after
        );
        let first = all.ends[0].offset;
        let got = read_all(
            &file,
            Position {
                offset: first,
                records: 4,
            },
            AvroSchemaType::Hash,
            100,
        );
        assert!(
            matches!(&got.after, After::Corrupt(w) if w.contains("says 4 records")),
            "{:?}",
            got.after
        );
    }

    fn corrupt(data: &[u8]) -> (usize, String) {
        let got = read_all(data, Position::default(), AvroSchemaType::Hash, 100);
        match got.after {
            After::Corrupt(why) => (got.bodies.len(), why),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn files_that_are_not_valid_containers_say_where() {
        let good = container(AvroCodec::Null, 2, 3);
        let second = read_all(&good, Position::default(), AvroSchemaType::Hash, 1).ends[2].offset;
        assert_eq!(
            corrupt(b"").1,
            "not an Avro object container file: it is empty"
        );
        assert!(
            corrupt(b"line one\nline two\n")
                .1
                .contains("does not start with \"Obj\\u{1}\" (byte 0)")
        );
        assert!(
            corrupt(&good[..10])
                .1
                .contains("metadata (from byte 4) is cut short")
        );
        // A wrong sync marker after the second block: the first block's records are events.
        let mut bad = good.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let (sent, why) = corrupt(&bad);
        assert_eq!(sent, 3);
        assert!(
            why.contains(&format!("the sync marker after the block at byte {second}")),
            "{why}"
        );
        // Cut short in the second block.
        let (sent, why) = corrupt(&good[..good.len() - 5]);
        assert_eq!(sent, 3);
        assert!(
            why.contains(&format!("the block at byte {second} is cut short")),
            "{why}"
        );
        // A record that does not decode: a string length past the block's end.
        let mut bad = good.clone();
        let first_record = second as usize + 2;
        bad[first_record] = 0x7e;
        let (sent, why) = corrupt(&bad);
        assert_eq!(sent, 3);
        assert!(
            why.contains(&format!(
                "record 0 of the block at byte {second} does not decode"
            )),
            "{why}"
        );
        // Declared sizes larger than the file: refused before anything is allocated.
        let mut huge = good[..second as usize].to_vec();
        put_long(&mut huge, 1);
        put_long(&mut huge, 1 << 40);
        let (_, why) = corrupt(&huge);
        assert!(why.contains("more than the 268435456 weir reads"), "{why}");
        let mut huge = good[..second as usize].to_vec();
        put_long(&mut huge, 1 << 40);
        put_long(&mut huge, 3);
        huge.extend_from_slice(b"abc0123456789abcdef");
        let (_, why) = corrupt(&huge);
        assert!(
            why.contains("declares 1099511627776 records in 3 bytes"),
            "{why}"
        );
        // An unknown codec.
        let mut other = MAGIC.to_vec();
        put_bytes_map(
            &mut other,
            &[("avro.schema", &b"\"int\""[..]), ("avro.codec", b"xz")],
        );
        other.extend_from_slice(b"0123456789abcdef");
        assert!(
            corrupt(&other)
                .1
                .contains("codec \"xz\" is not one weir reads")
        );
    }

    #[test]
    fn a_container_without_blocks_makes_no_event() {
        let file = container(AvroCodec::Null, 0, 0);
        let got = read_all(&file, Position::default(), AvroSchemaType::Hash, 10);
        assert_eq!(got.after, After::End);
        assert!(got.bodies.is_empty());
    }

    #[test]
    fn a_large_header_is_read_in_growing_pieces() {
        let doc = "x".repeat(200_000);
        let schema = format!(r#"{{"type":"string","doc":"{doc}"}}"#);
        let mut file = MAGIC.to_vec();
        put_bytes_map(&mut file, &[("avro.schema", schema.as_bytes())]);
        file.extend_from_slice(b"0123456789abcdef");
        let mut data = Vec::new();
        put_bytes(&mut data, b"hello");
        put_long(&mut file, 1);
        put_long(&mut file, data.len() as i64);
        file.extend(data.clone());
        file.extend_from_slice(b"0123456789abcdef");
        let got = read_all(&file, Position::default(), AvroSchemaType::Hash, 10);
        assert_eq!(got.after, After::End);
        assert_eq!(got.bodies, [data]);
    }
}
