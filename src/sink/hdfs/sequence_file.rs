//! Hadoop's SequenceFile, uncompressed (version 6, `CompressionType.NONE`), the HDFS sink's
//! default `hdfs.fileType`: what Flume's `HDFSSequenceFile` writes through Hadoop's
//! `SequenceFile.Writer`, so that `hadoop fs -text`, Hive and Spark read weir's files as
//! Flume's. Written here because no Rust crate writes the format; it is small and fixed:
//!
//! - header: `SEQ`, the version byte 6, the key and value class names (Hadoop `Text` strings:
//!   a zero-compressed vint length, then the bytes), two booleans (compressed, block
//!   compressed: both false), the metadata (a big-endian i32 count, 0), and the file's 16-byte
//!   sync marker;
//! - each record: i32 record length (key + value), i32 key length, the key, the value, all
//!   big-endian. The key is a `LongWritable` (the event's `timestamp` header, else the time
//!   of writing: Flume's serializers do the same), the value a `BytesWritable` (i32 length and
//!   the body; `hdfs.writeFormat = Writable`, Flume's default) or a `Text` (vint length and the
//!   body's bytes as they are; `Text`);
//! - before a record, once at least [`SYNC_INTERVAL`] bytes were written since the last one, and
//!   after every batch (Flume calls `Writer.sync()` at each flush), a sync entry: i32 -1 and
//!   the marker, which lets readers split the file.

/// Hadoop's `SequenceFile.SYNC_INTERVAL`: 5 KiB × (4 + 16).
pub const SYNC_INTERVAL: u64 = 5 * 1024 * 20;

/// The value class of the records (Flume `hdfs.writeFormat`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteFormat {
    /// `org.apache.hadoop.io.BytesWritable`.
    Writable,
    /// `org.apache.hadoop.io.Text`.
    Text,
}

impl WriteFormat {
    fn value_class(self) -> &'static str {
        match self {
            WriteFormat::Writable => "org.apache.hadoop.io.BytesWritable",
            WriteFormat::Text => "org.apache.hadoop.io.Text",
        }
    }
}

const KEY_CLASS: &str = "org.apache.hadoop.io.LongWritable";

/// One file's writer state: where its bytes stand and when the last sync entry was.
#[derive(Debug)]
pub struct SequenceFileWriter {
    format: WriteFormat,
    sync: [u8; 16],
    /// Bytes of the file so far, those handed out in buffers included.
    pos: u64,
    last_sync: u64,
}

impl SequenceFileWriter {
    /// A writer for a new file, with its sync marker (random per file, as Hadoop's).
    pub fn new(format: WriteFormat, sync: [u8; 16]) -> SequenceFileWriter {
        SequenceFileWriter {
            format,
            sync,
            pos: 0,
            last_sync: 0,
        }
    }

    /// Appends the file header to `out`; called once, before the first record.
    pub fn header(&mut self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(b"SEQ\x06");
        write_text(out, KEY_CLASS.as_bytes());
        write_text(out, self.format.value_class().as_bytes());
        out.push(0); // not compressed
        out.push(0); // not block-compressed
        out.extend_from_slice(&0i32.to_be_bytes()); // no metadata
        out.extend_from_slice(&self.sync);
        self.pos += (out.len() - start) as u64;
    }

    /// Appends one record (preceded by a sync entry when one is due) to `out`. A body over
    /// 2 GiB cannot be a record (Hadoop's lengths are i32): the caller checks
    /// [`fits`] first.
    pub fn append(&mut self, out: &mut Vec<u8>, key_millis: i64, body: &[u8]) {
        let start = out.len();
        if self.pos >= self.last_sync + SYNC_INTERVAL {
            out.extend_from_slice(&(-1i32).to_be_bytes());
            out.extend_from_slice(&self.sync);
            self.last_sync = self.pos + 20;
        }
        let value_len = match self.format {
            WriteFormat::Writable => 4 + body.len(),
            WriteFormat::Text => vint_len(body.len() as i64) + body.len(),
        };
        out.extend_from_slice(&((8 + value_len) as i32).to_be_bytes());
        out.extend_from_slice(&8i32.to_be_bytes());
        out.extend_from_slice(&key_millis.to_be_bytes());
        match self.format {
            WriteFormat::Writable => out.extend_from_slice(&(body.len() as i32).to_be_bytes()),
            WriteFormat::Text => write_vint(out, body.len() as i64),
        }
        out.extend_from_slice(body);
        self.pos += (out.len() - start) as u64;
    }
}

impl SequenceFileWriter {
    /// Ends a batch as Flume's `HDFSSequenceFile.sync` does, with `Writer.sync()`: a sync entry
    /// unless one was just written, so that each flushed batch ends at a sync point.
    pub fn end_batch(&mut self, out: &mut Vec<u8>) {
        if self.pos != self.last_sync {
            out.extend_from_slice(&(-1i32).to_be_bytes());
            out.extend_from_slice(&self.sync);
            self.pos += 20;
            self.last_sync = self.pos;
        }
    }
}

/// Whether a body of `len` bytes can be one record: the record length, an i32, covers the key
/// (8), the value's length prefix (at most 5) and the body.
pub fn fits(len: usize) -> bool {
    len <= i32::MAX as usize - 8 - 5
}

/// A Hadoop `Text` string: vint length, then the bytes.
fn write_text(out: &mut Vec<u8>, bytes: &[u8]) {
    write_vint(out, bytes.len() as i64);
    out.extend_from_slice(bytes);
}

/// Hadoop's zero-compressed encoding (`WritableUtils.writeVLong`): -112..=127 in one byte;
/// otherwise a first byte telling sign and length (-113..=-120 positive, -121..=-128 negative,
/// for 1 to 8 bytes), then the magnitude (one's complement when negative), big-endian, without
/// leading zero bytes.
fn write_vint(out: &mut Vec<u8>, value: i64) {
    if (-112..=127).contains(&value) {
        out.push(value as i8 as u8);
        return;
    }
    let (magnitude, base) = if value < 0 {
        (!value as u64, -120i64)
    } else {
        (value as u64, -112i64)
    };
    let bytes = 8 - (magnitude.leading_zeros() / 8) as usize;
    out.push((base - bytes as i64) as i8 as u8);
    out.extend_from_slice(&magnitude.to_be_bytes()[8 - bytes..]);
}

fn vint_len(value: i64) -> usize {
    let mut v = Vec::with_capacity(9);
    write_vint(&mut v, value);
    v.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vint(v: i64) -> Vec<u8> {
        let mut out = Vec::new();
        write_vint(&mut out, v);
        out
    }

    /// Values worked out by hand from `WritableUtils.writeVLong`.
    #[test]
    fn vints_are_hadoops_zero_compressed_encoding() {
        assert_eq!(vint(0), [0]);
        assert_eq!(vint(127), [127]);
        assert_eq!(vint(-112), [0x90]);
        assert_eq!(vint(128), [0x8F, 0x80]); // -113: one byte follows
        assert_eq!(vint(255), [0x8F, 0xFF]);
        assert_eq!(vint(256), [0x8E, 0x01, 0x00]);
        assert_eq!(vint(-113), [0x87, 0x70]); // -121: one byte, !(-113) = 112
        assert_eq!(
            vint(i64::MAX),
            [0x88, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
        );
        for v in [0, 1, 127, 128, 300, 70_000, 1 << 40, -1, -500] {
            assert_eq!(vint_len(v), vint(v).len());
        }
    }

    /// The header and one record byte by byte, as Hadoop's writer lays them out.
    #[test]
    fn header_and_record_layout() {
        let sync = [0xAB; 16];
        let mut w = SequenceFileWriter::new(WriteFormat::Writable, sync);
        let mut out = Vec::new();
        w.header(&mut out);
        let mut expected = b"SEQ\x06".to_vec();
        expected.push(33);
        expected.extend_from_slice(b"org.apache.hadoop.io.LongWritable");
        expected.push(34);
        expected.extend_from_slice(b"org.apache.hadoop.io.BytesWritable");
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        expected.extend_from_slice(&sync);
        assert_eq!(out, expected);

        let header_len = out.len();
        w.append(&mut out, 1_700_000_000_123, b"hello");
        let record = &out[header_len..];
        let mut expected = Vec::new();
        expected.extend_from_slice(&17i32.to_be_bytes()); // 8 + 4 + 5
        expected.extend_from_slice(&8i32.to_be_bytes());
        expected.extend_from_slice(&1_700_000_000_123i64.to_be_bytes());
        expected.extend_from_slice(&5i32.to_be_bytes());
        expected.extend_from_slice(b"hello");
        assert_eq!(record, expected);

        let mut w = SequenceFileWriter::new(WriteFormat::Text, sync);
        let mut out = Vec::new();
        w.header(&mut out);
        assert!(out.windows(25).any(|x| x == b"org.apache.hadoop.io.Text"));
        let header_len = out.len();
        w.append(&mut out, 7, b"hi");
        assert_eq!(
            &out[header_len..],
            [
                &11i32.to_be_bytes()[..],
                &8i32.to_be_bytes(),
                &7i64.to_be_bytes(),
                &[2],
                b"hi"
            ]
            .concat()
        );
    }

    /// A batch ends with a sync entry, once: a second end_batch adds nothing, and the next
    /// record's interval counts from it.
    #[test]
    fn a_batch_ends_at_a_sync_entry() {
        let sync = [7; 16];
        let mut w = SequenceFileWriter::new(WriteFormat::Writable, sync);
        let mut out = Vec::new();
        w.header(&mut out);
        w.append(&mut out, 1, b"a");
        let before = out.len();
        w.end_batch(&mut out);
        assert_eq!(&out[before..], [&[0xFF; 4][..], &sync].concat());
        w.end_batch(&mut out);
        assert_eq!(out.len(), before + 20);
        assert_eq!(w.pos, out.len() as u64);
    }

    /// A reader of the records, as Hadoop's: sync entries are skipped where they come.
    fn records(file: &[u8], header_len: usize, sync: [u8; 16]) -> Vec<(i64, Vec<u8>)> {
        let mut pos = header_len;
        let mut out = Vec::new();
        let int = |p: usize| i32::from_be_bytes(file[p..p + 4].try_into().unwrap());
        while pos < file.len() {
            let len = int(pos);
            if len == -1 {
                assert_eq!(file[pos + 4..pos + 20], sync);
                pos += 20;
                continue;
            }
            assert_eq!(int(pos + 4), 8);
            let key = i64::from_be_bytes(file[pos + 8..pos + 16].try_into().unwrap());
            let value_len = int(pos + 16) as usize;
            assert_eq!(len as usize, 8 + 4 + value_len);
            out.push((key, file[pos + 20..pos + 20 + value_len].to_vec()));
            pos += 8 + len as usize;
        }
        out
    }

    /// Sync entries come once SYNC_INTERVAL bytes were written since the last, never inside a
    /// record, and every record reads back; split over several buffers (batches), the bytes
    /// are the same as in one.
    #[test]
    fn sync_entries_every_interval_and_records_read_back() {
        let sync = *b"0123456789abcdef";
        let body = vec![b'x'; 1000];
        let mut one = Vec::new();
        let mut w = SequenceFileWriter::new(WriteFormat::Writable, sync);
        w.header(&mut one);
        let header_len = one.len();
        let mut split = one.clone();
        let mut w2 = SequenceFileWriter::new(WriteFormat::Writable, sync);
        w2.pos = header_len as u64;
        for i in 0..500 {
            w.append(&mut one, i, &body);
            let mut batch = Vec::new();
            w2.append(&mut batch, i, &body);
            split.extend_from_slice(&batch);
        }
        assert_eq!(one, split);
        let got = records(&one, header_len, sync);
        assert_eq!(got.len(), 500);
        assert!(
            got.iter()
                .enumerate()
                .all(|(i, (k, v))| *k == i as i64 && *v == body)
        );
        let syncs = one
            .windows(20)
            .filter(|w| w[..4] == [0xFF; 4] && w[4..] == sync)
            .count();
        // ~1,020 bytes a record, 500 records: a sync entry about every 100 records.
        assert_eq!(syncs, (one.len() as u64 / SYNC_INTERVAL) as usize);
        assert!(fits(1 << 20) && !fits(i32::MAX as usize));
    }
}
