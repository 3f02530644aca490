//! Flume's position file, `<trackerDir>/.flumespool-main.meta`, read so that an agent taking
//! over a spool directory from Flume resumes the file Flume was reading where Flume's channel
//! last committed it, instead of sending that file's committed lines again.
//!
//! Flume's `DurablePositionTracker` keeps it as an Avro object container file: the metadata
//! entry `file` names the file being read (the path as Flume built it from `spoolDir`), and
//! every commit appends a block holding one `TransferStateFileMeta` record, `{offset: long}`,
//! the byte offset of the first byte not yet committed. The last complete record is the
//! position; a block cut short by a crash is left out, as Flume's reader leaves it out.
//!
//! Hand-written over [`crate::avro_container`] and the Avro cursor the source's AVRO reader
//! uses: the file is a header and a run of one-record blocks, and a whole Avro library would
//! add nothing but a dependency.

use crate::avro_container::{MAGIC, SYNC_SIZE, codec_in_metadata, decompress};
use crate::flume_event_format::Cursor;

/// The largest position file read: each commit adds ~20 bytes, so this is millions of them.
pub const MAX_META_FILE: u64 = 64 << 20;

/// What Flume's position file says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlumePosition {
    /// The file being read, as Flume named it.
    pub target: String,
    /// Bytes of it before this are committed.
    pub offset: u64,
}

/// Reads a position file's bytes. Errors say what is wrong and at which byte.
pub fn parse(buf: &[u8]) -> Result<FlumePosition, String> {
    if !buf.starts_with(MAGIC) {
        return Err("not an Avro object container file (byte 0)".into());
    }
    let mut c = Cursor::new(buf);
    c.fixed(MAGIC.len())?;
    let meta = c
        .bytes_map()
        .map_err(|e| format!("the metadata (from byte 4) is cut short or bad: {e}"))?;
    let sync = c
        .fixed(SYNC_SIZE)
        .map_err(|_| format!("the sync marker at byte {} is cut short", c.position()))?;
    let get = |key: &str| meta.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
    let schema = get("avro.schema").unwrap_or_default();
    if !String::from_utf8_lossy(schema).contains("TransferStateFileMeta") {
        return Err("its schema is not Flume's TransferStateFileMeta".into());
    }
    let target = get("file")
        .ok_or("it names no file (no \"file\" metadata)")
        .and_then(|f| std::str::from_utf8(f).map_err(|_| "the file it names is not UTF-8"))?
        .to_owned();
    let codec = codec_in_metadata(get("avro.codec"))?;
    let mut offset = 0;
    // Block by block; the first that does not read whole ends the file (a torn append).
    while c.position() < buf.len() {
        let at = c.position();
        let block = (|| -> Result<Option<i64>, String> {
            let count = c.long()?;
            let data = c.bytes()?;
            if c.fixed(SYNC_SIZE)? != sync {
                return Err("its sync marker is not the header's".into());
            }
            let records = decompress(codec, data, buf.len().max(1 << 10))?;
            let mut r = Cursor::new(&records);
            let mut last = None;
            for _ in 0..count {
                last = Some(r.long()?);
            }
            Ok(last)
        })();
        match block {
            Ok(Some(n)) => {
                offset = u64::try_from(n)
                    .map_err(|_| format!("the block at byte {at} holds a negative offset {n}"))?;
            }
            Ok(None) => {}
            Err(_) => break,
        }
    }
    Ok(FlumePosition { target, offset })
}

/// Position files as Flume's tracker writes them, for tests here and in the source's.
#[cfg(test)]
pub mod written {
    use super::*;
    use crate::avro_container::compress;
    use crate::config::AvroCodec;
    use crate::flume_event_format::{put_bytes, put_bytes_map, put_long};

    const SCHEMA: &str = r#"{"type":"record","name":"TransferStateFileMeta","namespace":"org.apache.flume.serialization","fields":[{"name":"offset","type":"long"}]}"#;
    const SYNC: [u8; 16] = *b"0123456789abcdef";

    /// A position file as Flume's tracker writes it: one block per stored position.
    pub fn meta_file(codec: AvroCodec, target: &str, offsets: &[i64]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        put_bytes_map(
            &mut out,
            &[
                ("avro.schema", SCHEMA.as_bytes()),
                ("avro.codec", codec.name().as_bytes()),
                ("file", target.as_bytes()),
            ],
        );
        out.extend_from_slice(&SYNC);
        for &o in offsets {
            let mut record = Vec::new();
            put_long(&mut record, o);
            put_long(&mut out, 1);
            put_bytes(&mut out, &compress(codec, &record).unwrap());
            out.extend_from_slice(&SYNC);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::written::meta_file;
    use super::*;
    use crate::config::AvroCodec;

    #[test]
    fn the_last_stored_position_counts() {
        for codec in [AvroCodec::Null, AvroCodec::Deflate, AvroCodec::Snappy] {
            let file = meta_file(codec, "/spool/a.log", &[0, 120, 4096]);
            assert_eq!(
                parse(&file).unwrap(),
                FlumePosition {
                    target: "/spool/a.log".into(),
                    offset: 4096
                },
                "{codec:?}"
            );
        }
        let fresh = meta_file(AvroCodec::Null, "spool/b.log", &[]);
        assert_eq!(parse(&fresh).unwrap().offset, 0);
    }

    #[test]
    fn a_block_cut_short_is_left_out() {
        let whole = meta_file(AvroCodec::Null, "/spool/a.log", &[10, 20]);
        let one = meta_file(AvroCodec::Null, "/spool/a.log", &[10]).len();
        for cut in one..whole.len() {
            assert_eq!(parse(&whole[..cut]).unwrap().offset, 10, "cut at {cut}");
        }
        assert_eq!(parse(&whole).unwrap().offset, 20);
    }

    #[test]
    fn other_files_are_refused_saying_why() {
        let good = meta_file(AvroCodec::Null, "/spool/a.log", &[10]);
        assert!(parse(b"").unwrap_err().contains("byte 0"));
        assert!(parse(&good[..6]).unwrap_err().contains("metadata"));
        let at = good
            .windows(5)
            .position(|w| w == b"Trans")
            .expect("the schema's name");
        let mut other = good.clone();
        other[at] = b'X';
        assert!(parse(&other).unwrap_err().contains("schema"));
        let mut negative = meta_file(AvroCodec::Null, "/spool/a.log", &[-5]);
        assert!(parse(&negative).unwrap_err().contains("negative offset -5"));
        negative.truncate(10);
        assert!(parse(&negative).is_err());
    }
}
