//! Turning events into the bytes of a file_roll file, as Flume's event serializers do:
//!
//! - `TEXT` (Flume's `BodyTextEventSerializer`): the body, then `\n` if `appendNewline`.
//! - `HEADER_AND_TEXT` (`HeaderAndBodyTextEventSerializer`): the header map as Java's
//!   `AbstractMap.toString()` prints it (`{k1=v1, k2=v2}`, `{}` when empty), a space, the body,
//!   then `\n` if `appendNewline`. See [`java_map_order`] for the order of the headers.
//! - `AVRO_EVENT` (`FlumeEventAvroEventSerializer`): an Avro object container file (Avro 1.x
//!   specification, "Object Container Files") of records of Flume's schema [`AVRO_SCHEMA`]:
//!   `Obj\x01`, the metadata map (`avro.schema`, `avro.codec`), a 16-byte random sync marker;
//!   then blocks, each the record count, the byte size of the (compressed) records, the records
//!   and the sync marker. A record is encoded exactly as the `AvroFlumeEvent` datum of
//!   `flume_event_format` (same fields, same types), whose encoder is reused here.
//!
//! A file is written batch by batch: [`Serializer::begin_file`] once per file, then per batch
//! [`Serializer::write`] for each event and [`Serializer::end_batch`]. After `end_batch` the
//! bytes so far are a complete file: the Avro serializer ends its block there (as Flume's
//! `DataFileWriter.flush()` does after each transaction), so a crash after the batch is synced
//! never leaves a committed event out of a readable block.
//!
//! The container is written by hand rather than with the `apache-avro` crate for the reason
//! `flume_event_format` gives (a fixed schema, a few primitives of the binary encoding, against
//! a serde-based schema machinery and its dependencies); the file layout adds only the header and
//! block framing. The magic and the codecs are in `avro_container`, shared with the spooldir
//! source's `AVRO` deserializer, which reads such files.

use std::io;

use crate::avro_container::{MAGIC as AVRO_MAGIC, compress};
use crate::config::{AvroCodec, SerializerConfig};
use crate::event::{Event, Headers};
use crate::flume_event_format::{encode_into, put_bytes_map, put_long};

/// The schema of Flume's `FlumeEventAvroEventSerializer`, as Avro's Java `Schema.toString()`
/// writes it into a container's `avro.schema`.
pub const AVRO_SCHEMA: &str = concat!(
    r#"{"type":"record","name":"Event","fields":["#,
    r#"{"name":"headers","type":{"type":"map","values":"string"}},"#,
    r#"{"name":"body","type":"bytes"}]}"#
);

/// Serializes events for one file_roll sink; see the module doc.
pub struct Serializer {
    format: Format,
}

enum Format {
    Text { append_newline: bool },
    HeaderAndText { append_newline: bool },
    Avro(AvroContainer),
}

impl Serializer {
    pub fn new(config: &SerializerConfig) -> Serializer {
        let format = match *config {
            SerializerConfig::Text { append_newline } => Format::Text { append_newline },
            SerializerConfig::HeaderAndText { append_newline } => {
                Format::HeaderAndText { append_newline }
            }
            SerializerConfig::AvroEvent {
                sync_interval_bytes,
                codec,
            } => Format::Avro(AvroContainer::new(sync_interval_bytes, codec)),
        };
        Serializer { format }
    }

    /// The whole content of a file holding `batches`, each ended as the sink ends a committed
    /// batch (for tests, fuzz seeds and tools that need such a file without a sink).
    pub fn whole_file(config: &SerializerConfig, batches: &[&[Event]]) -> io::Result<Vec<u8>> {
        let mut s = Serializer::new(config);
        let mut out = Vec::new();
        s.begin_file(&mut out);
        for batch in batches {
            for e in *batch {
                s.write(e, &mut out)?;
            }
            s.end_batch(&mut out)?;
        }
        Ok(out)
    }

    /// Starts a new, empty file: appends what opens it to `out` (the Avro header, with a sync
    /// marker of its own).
    pub fn begin_file(&mut self, out: &mut Vec<u8>) {
        if let Format::Avro(avro) = &mut self.format {
            avro.begin_file(out);
        }
    }

    /// Appends `event` to `out` (the Avro serializer buffers it into the current block, and
    /// writes the block out once it reaches the sync interval).
    pub fn write(&mut self, event: &Event, out: &mut Vec<u8>) -> io::Result<()> {
        match &mut self.format {
            Format::Text { append_newline } => {
                out.extend_from_slice(&event.body);
                if *append_newline {
                    out.push(b'\n');
                }
            }
            Format::HeaderAndText { append_newline } => {
                put_java_map(out, &event.headers);
                out.push(b' ');
                out.extend_from_slice(&event.body);
                if *append_newline {
                    out.push(b'\n');
                }
            }
            Format::Avro(avro) => avro.append(event, out)?,
        }
        Ok(())
    }

    /// Ends the batch: appends to `out` whatever makes the file complete up to the last event
    /// written (the Avro serializer's open block).
    pub fn end_batch(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        if let Format::Avro(avro) = &mut self.format {
            avro.write_block(out)?;
        }
        Ok(())
    }

    /// Forgets what the batch being written buffered, for a batch that will not reach the file.
    pub fn abandon_batch(&mut self) {
        if let Format::Avro(avro) = &mut self.format {
            avro.block.clear();
            avro.count = 0;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HEADER_AND_TEXT

/// Java's `String.hashCode()`: over the UTF-16 code units, `h = 31 * h + unit`, wrapping.
fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The headers in the order Java's `HashMap` iterates them, for a map that received its entries
/// one by one from empty with the default capacity and load factor (16 buckets, doubled while
/// more than three quarters full): by bucket, the bucket being `(h ^ (h >>> 16)) & (buckets - 1)`
/// of the key's `String.hashCode()` `h`. This is the map Flume's file channel hands a sink, and
/// what line sources (netcat, exec, spooling directory, TAILDIR) and interceptors build.
///
/// Where Flume's order can differ: keys in the same bucket come in insertion order in Java,
/// which weir does not keep (they come by name here); a map made by copying another
/// (`EventBuilder.withBody(body, headers)`, used e.g. by the avro and http sources, and passed on
/// unchanged by a memory channel) has fewer buckets when it has fewer than 6 headers; a map that
/// once held more headers than it has now keeps its larger table; and a bucket of 8 or more keys
/// makes Java resize or turn it into a tree.
pub fn java_map_order(headers: &Headers) -> Vec<(&str, &str)> {
    let mut buckets = 16usize;
    while headers.len() > buckets / 4 * 3 {
        buckets *= 2;
    }
    let bucket = |key: &str| {
        let h = java_string_hash(key) as u32;
        (h ^ (h >> 16)) as usize & (buckets - 1)
    };
    let mut entries: Vec<(&str, &str)> = headers.iter().collect();
    // Stable: keys of one bucket stay in name order.
    entries.sort_by_key(|(k, _)| bucket(k));
    entries
}

/// Appends the headers as Java's `AbstractMap.toString()` prints them: `{k1=v1, k2=v2}`.
fn put_java_map(out: &mut Vec<u8>, headers: &Headers) {
    out.push(b'{');
    for (i, (k, v)) in java_map_order(headers).into_iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        out.extend_from_slice(v.as_bytes());
    }
    out.push(b'}');
}

// ---------------------------------------------------------------------------------------------
// AVRO_EVENT

/// One container file's writer state: its sync marker and the block being filled.
struct AvroContainer {
    sync_interval: usize,
    codec: AvroCodec,
    sync: [u8; 16],
    /// The records of the open block, uncompressed.
    block: Vec<u8>,
    count: i64,
}

impl AvroContainer {
    fn new(sync_interval: usize, codec: AvroCodec) -> AvroContainer {
        AvroContainer {
            sync_interval,
            codec,
            sync: [0; 16],
            block: Vec::new(),
            count: 0,
        }
    }

    fn begin_file(&mut self, out: &mut Vec<u8>) {
        // Random, as Avro's writers make it: a marker that appears inside the data would make a
        // reader that resynchronises on it misread.
        self.sync = uuid::Uuid::new_v4().into_bytes();
        self.block.clear();
        self.count = 0;
        out.extend_from_slice(AVRO_MAGIC);
        put_bytes_map(
            out,
            &[
                ("avro.schema", AVRO_SCHEMA.as_bytes()),
                ("avro.codec", self.codec.name().as_bytes()),
            ],
        );
        out.extend_from_slice(&self.sync);
    }

    fn append(&mut self, event: &Event, out: &mut Vec<u8>) -> io::Result<()> {
        encode_into(&mut self.block, &event.headers, &event.body);
        self.count += 1;
        // As Avro's DataFileWriter: the block ends once its records reach the interval.
        if self.block.len() >= self.sync_interval {
            self.write_block(out)?;
        }
        Ok(())
    }

    /// Appends the open block (if it has records) to `out` and starts an empty one.
    fn write_block(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        if self.count == 0 {
            return Ok(());
        }
        let data = compress(self.codec, &self.block)?;
        put_long(out, self.count);
        put_long(out, data.len() as i64);
        out.extend_from_slice(&data);
        out.extend_from_slice(&self.sync);
        self.block.clear();
        self.count = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flume_event_format::Cursor;

    fn serialize(config: SerializerConfig, batches: &[&[Event]]) -> Vec<u8> {
        Serializer::whole_file(&config, batches).unwrap()
    }

    #[test]
    fn text_writes_bodies_with_or_without_newlines() {
        let events = [
            Event::new(&b"one"[..]).with_header("h", "v"),
            Event::new(&b""[..]),
        ];
        let text =
            |append_newline| serialize(SerializerConfig::Text { append_newline }, &[&events]);
        assert_eq!(text(true), b"one\n\n");
        assert_eq!(text(false), b"one");
    }

    #[test]
    fn header_and_text_prints_the_map_as_java_does() {
        let events = [
            Event::new(&b"body 1"[..])
                .with_header("timestamp", "1700000000000")
                .with_header("host", "web-1"),
            Event::new(&b"no headers"[..]),
        ];
        let out = serialize(
            SerializerConfig::HeaderAndText {
                append_newline: true,
            },
            &[&events],
        );
        // "host".hashCode() = 3208616 (bucket 8 of 16), "timestamp".hashCode() = 55126294
        // (bucket 15): a HashMap iterates host first whatever the insertion order.
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{host=web-1, timestamp=1700000000000} body 1\n{} no headers\n"
        );
        let out = serialize(
            SerializerConfig::HeaderAndText {
                append_newline: false,
            },
            &[&events[1..]],
        );
        assert_eq!(out, b"{} no headers");
    }

    /// Known `String.hashCode()` values (as Java computes them), and the bucket order a Java
    /// `HashMap` of these keys iterates in, worked out by hand from them.
    #[test]
    fn header_order_follows_java_hash_buckets() {
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("host"), 3_208_616);
        assert_eq!(java_string_hash("timestamp"), 55_126_294);
        // Wraps past i32::MAX, as Java's int arithmetic does.
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        // Outside the BMP a character is two UTF-16 units: U+1F600 is D83D DE00.
        assert_eq!(java_string_hash("😀"), 0xD83D * 31 + 0xDE00);

        // a=97 (bucket 1), b=98 (2), c=99 (3), p=112 (0), q=113 (1, after a by name).
        let headers: Headers = ["a", "b", "c", "p", "q"]
            .iter()
            .map(|k| (k.to_string(), "v".to_string()))
            .collect();
        let keys: Vec<&str> = java_map_order(&headers).iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ["p", "a", "q", "b", "c"]);

        // 13 headers do not fit 16 buckets three quarters full: 32 buckets, where q=113 is in
        // bucket 17 and p=112 in 16, after a..l (97..108, buckets 1..12).
        let headers: Headers = "abcdefghijklpq"
            .chars()
            .filter(|c| *c != 'l')
            .map(|k| (k.to_string(), "v".to_string()))
            .collect();
        assert_eq!(headers.len(), 13);
        let keys: String = java_map_order(&headers).iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, "abcdefghijkpq");
    }

    /// Maps as OpenJDK 17's `HashMap.toString()` printed them (tests/interop/
    /// JavaHashMapOrder.java made the file): 0 to 28 keys (so 16, 32 and 64 buckets), keys of
    /// one bucket ("Aa" and "BB" share a hash code) put in name order, non-ASCII keys.
    #[test]
    fn header_maps_print_as_javas_hash_map_prints_them() {
        let cases = include_str!("../../tests/interop/java_hashmap_order.txt");
        assert_eq!(cases.lines().count(), 40);
        for line in cases.lines() {
            let (keys, java) = line.split_once('\t').unwrap();
            let headers: Headers = keys
                .split(' ')
                .filter(|k| !k.is_empty())
                .map(|k| (k.to_string(), format!("v{}", k.encode_utf16().count())))
                .collect();
            let mut out = Vec::new();
            put_java_map(&mut out, &headers);
            assert_eq!(String::from_utf8(out).unwrap(), java, "keys: {keys}");
        }
    }

    /// Reads a container back with the shared Avro cursor: the header, then every block's
    /// records; checks each block's sync marker.
    fn read_container(bytes: &[u8], codec: AvroCodec) -> (Vec<(String, Vec<u8>)>, Vec<Event>) {
        assert_eq!(&bytes[..4], AVRO_MAGIC);
        let mut c = Cursor::new(&bytes[4..]);
        let meta: Vec<(String, Vec<u8>)> = c
            .bytes_map()
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, v.to_vec()))
            .collect();
        let sync = c.fixed(16).unwrap().to_vec();
        let mut events = Vec::new();
        while c.position() < bytes.len() - 4 {
            let count = c.long().unwrap();
            let data = c.bytes().unwrap();
            assert_eq!(c.fixed(16).unwrap(), &sync[..]);
            let records = match codec {
                AvroCodec::Null => data.to_vec(),
                AvroCodec::Deflate => {
                    let mut out = Vec::new();
                    std::io::Read::read_to_end(
                        &mut flate2::read::DeflateDecoder::new(data),
                        &mut out,
                    )
                    .unwrap();
                    out
                }
                AvroCodec::Snappy => {
                    let (body, crc) = data.split_at(data.len() - 4);
                    let out = snap::raw::Decoder::new().decompress_vec(body).unwrap();
                    assert_eq!(crc, crc32fast::hash(&out).to_be_bytes());
                    out
                }
                AvroCodec::Bzip2 => {
                    let mut out = Vec::new();
                    std::io::Read::read_to_end(&mut bzip2::read::BzDecoder::new(data), &mut out)
                        .unwrap();
                    out
                }
                AvroCodec::Zstandard => zstd::stream::decode_all(data).unwrap(),
            };
            let mut r = Cursor::new(&records);
            for _ in 0..count {
                let (headers, body) = r.event().unwrap();
                events.push(Event {
                    headers,
                    body: body.to_vec().into(),
                });
            }
            r.expect_end("the block").unwrap();
        }
        c.expect_end("the file").unwrap();
        (meta, events)
    }

    /// A one-event file byte for byte, laid out as the Avro specification's "Object Container
    /// Files" says.
    #[test]
    fn a_one_event_avro_file_byte_for_byte() {
        let event = Event::new(&b"hi"[..]).with_header("k", "v");
        let out = serialize(
            SerializerConfig::AvroEvent {
                sync_interval_bytes: 2_048_000,
                codec: AvroCodec::Null,
            },
            &[&[event]],
        );
        let mut expected = b"Obj\x01".to_vec();
        // The metadata: one block of 2 entries (zig-zag 2 = 0x04), then the closing 0.
        expected.push(0x04);
        // "avro.schema" (11 chars: 0x16), then the schema (133 bytes: zig-zag 266 as a varint,
        // 0x8a 0x02).
        assert_eq!(AVRO_SCHEMA.len(), 133);
        expected.push(0x16);
        expected.extend_from_slice(b"avro.schema");
        expected.extend_from_slice(&[0x8a, 0x02]);
        expected.extend_from_slice(AVRO_SCHEMA.as_bytes());
        // "avro.codec" (10: 0x14) = "null" (4: 0x08).
        expected.push(0x14);
        expected.extend_from_slice(b"avro.codec");
        expected.push(0x08);
        expected.extend_from_slice(b"null");
        expected.push(0x00);
        let sync = &out[expected.len()..expected.len() + 16];
        expected.extend_from_slice(sync);
        // The block: 1 record (0x02), of 9 bytes (0x12): headers {k: v} as one block of 1
        // entry (0x02, "k" 0x02 'k', "v" 0x02 'v', end 0x00), body "hi" (0x04 'h' 'i').
        expected.extend_from_slice(&[0x02, 0x12]);
        expected.extend_from_slice(&[0x02, 0x02, b'k', 0x02, b'v', 0x00, 0x04, b'h', b'i']);
        expected.extend_from_slice(sync);
        assert_eq!(out, expected);
        assert_ne!(sync, [0u8; 16], "the sync marker is random");
    }

    #[test]
    fn avro_files_read_back_with_every_codec_and_end_a_block_per_batch() {
        let events: Vec<Event> = (0..50)
            .map(|i| {
                Event::new(format!("event {i} ").repeat(i % 7).into_bytes())
                    .with_header("n", i.to_string())
                    .with_header("héader", "välue")
            })
            .collect();
        for codec in AvroCodec::ALL {
            let config = SerializerConfig::AvroEvent {
                sync_interval_bytes: 2_048_000,
                codec,
            };
            let out = serialize(config, &[&events[..20], &events[20..], &[]]);
            let (meta, read) = read_container(&out, codec);
            assert_eq!(
                meta,
                [
                    ("avro.schema".to_string(), AVRO_SCHEMA.as_bytes().to_vec()),
                    ("avro.codec".to_string(), codec.name().as_bytes().to_vec()),
                ]
            );
            assert_eq!(read, events, "{codec:?}");
            // Two batches, two blocks (an empty batch writes none): the file ends with the
            // sync marker after each batch.
            let sync = &out[out.len() - 16..];
            assert_eq!(out.windows(16).filter(|w| *w == sync).count(), 3);
        }
    }

    #[test]
    fn a_block_ends_once_its_records_reach_the_sync_interval() {
        let events: Vec<Event> = (0..10).map(|_| Event::new(vec![b'x'; 30])).collect();
        // Each record is 32 bytes (empty map 0x00, length 0x3c, 30 bytes): 64 bytes make a
        // block of 2 records.
        let out = serialize(
            SerializerConfig::AvroEvent {
                sync_interval_bytes: 64,
                codec: AvroCodec::Null,
            },
            &[&events[..5], &events[5..]],
        );
        let (_, read) = read_container(&out, AvroCodec::Null);
        assert_eq!(read, events);
        // Blocks of 2, 2, 1 (batch end), 2, 2, 1 records: six sync markers after the header's.
        let sync = &out[out.len() - 16..];
        assert_eq!(out.windows(16).filter(|w| *w == sync).count(), 7);
    }

    #[test]
    fn each_file_gets_its_own_header_and_sync_marker_and_abandoned_records_are_dropped() {
        let mut s = Serializer::new(&SerializerConfig::AvroEvent {
            sync_interval_bytes: 2_048_000,
            codec: AvroCodec::Null,
        });
        let mut first = Vec::new();
        s.begin_file(&mut first);
        s.write(&Event::new(&b"lost"[..]), &mut first).unwrap();
        s.abandon_batch();
        s.write(&Event::new(&b"kept"[..]), &mut first).unwrap();
        s.end_batch(&mut first).unwrap();
        let mut second = Vec::new();
        s.begin_file(&mut second);
        s.write(&Event::new(&b"next"[..]), &mut second).unwrap();
        s.end_batch(&mut second).unwrap();
        let (_, a) = read_container(&first, AvroCodec::Null);
        let (_, b) = read_container(&second, AvroCodec::Null);
        assert_eq!(a, [Event::new(&b"kept"[..])]);
        assert_eq!(b, [Event::new(&b"next"[..])]);
        assert_ne!(first[first.len() - 16..], second[second.len() - 16..]);
    }
}
