//! The framing of Avro object container files (Avro 1.x specification, "Object Container
//! Files") shared by the file_roll sink's `AVRO_EVENT` serializer, which writes them, and the
//! spooldir source's `AVRO` deserializer, which reads them: the magic, the sync marker's size,
//! and the block codecs `null`, `deflate` (raw deflate, no zlib header), `snappy` (raw Snappy
//! followed by the big-endian CRC-32 of the uncompressed bytes), `bzip2` and `zstandard` (a
//! bzip2 stream or a zstd frame per block).
//!
//! Compression uses `flate2`, `snap`, `bzip2` and `zstd`, all in the build for other codecs;
//! decompression is bounded by a caller's cap so that a block claiming a huge size cannot make
//! the reader allocate it.

use std::io::{self, Read, Write};

use crate::config::AvroCodec;

/// The first four bytes of every Avro object container file.
pub const MAGIC: &[u8; 4] = b"Obj\x01";

/// The sync marker after the header and after every block.
pub const SYNC_SIZE: usize = 16;

/// The codec a container's `avro.codec` metadata names (absent means `null`).
pub fn codec_named(name: &str) -> Option<AvroCodec> {
    AvroCodec::named(name)
}

/// The codec of a container whose `avro.codec` metadata is `value` (absent means `null`), or
/// an error naming it.
pub fn codec_in_metadata(value: Option<&[u8]>) -> Result<AvroCodec, String> {
    let name = value.unwrap_or(b"null");
    std::str::from_utf8(name)
        .ok()
        .and_then(codec_named)
        .ok_or_else(|| {
            format!(
                "its codec {:?} is not one weir reads (null, deflate, snappy, bzip2, zstandard)",
                String::from_utf8_lossy(name)
            )
        })
}

/// A block's records as the codec stores them.
pub fn compress(codec: AvroCodec, block: &[u8]) -> io::Result<Vec<u8>> {
    match codec {
        AvroCodec::Null => Ok(block.to_vec()),
        AvroCodec::Deflate => {
            let mut e = flate2::write::DeflateEncoder::new(
                Vec::with_capacity(block.len() / 2 + 64),
                flate2::Compression::default(),
            );
            e.write_all(block)?;
            e.finish()
        }
        AvroCodec::Snappy => {
            let mut data = snap::raw::Encoder::new()
                .compress_vec(block)
                .map_err(io::Error::other)?;
            data.extend_from_slice(&crc32fast::hash(block).to_be_bytes());
            Ok(data)
        }
        AvroCodec::Bzip2 => {
            let mut e = bzip2::write::BzEncoder::new(
                Vec::with_capacity(block.len() / 2 + 64),
                bzip2::Compression::default(),
            );
            e.write_all(block)?;
            e.finish()
        }
        AvroCodec::Zstandard => zstd::stream::encode_all(block, zstd::DEFAULT_COMPRESSION_LEVEL),
    }
}

/// All that `reader` decompresses, or why not: bad data (`what` names the codec) or more than
/// `cap` bytes.
fn read_capped(reader: impl Read, cap: usize, hint: usize, what: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(hint.min(cap));
    reader
        .take(cap as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("bad {what} data: {e}"))?;
    if out.len() > cap {
        return Err(format!("more than {cap} bytes once uncompressed"));
    }
    Ok(out)
}

/// A block's records from what the codec stored, or why they cannot be had: bad compressed
/// data, a failed checksum, or more than `cap` bytes uncompressed.
pub fn decompress(codec: AvroCodec, data: &[u8], cap: usize) -> Result<Vec<u8>, String> {
    match codec {
        AvroCodec::Null => Ok(data.to_vec()),
        AvroCodec::Deflate => read_capped(
            flate2::read::DeflateDecoder::new(data),
            cap,
            data.len().saturating_mul(2),
            "deflate",
        ),
        AvroCodec::Bzip2 => read_capped(
            bzip2::read::BzDecoder::new(data),
            cap,
            data.len().saturating_mul(2),
            "bzip2",
        ),
        AvroCodec::Zstandard => {
            let decoder = zstd::stream::read::Decoder::new(data)
                .map_err(|e| format!("bad zstd data: {e}"))?;
            read_capped(decoder, cap, data.len().saturating_mul(2), "zstd")
        }
        AvroCodec::Snappy => {
            let Some((body, crc)) = data.split_last_chunk::<4>() else {
                return Err("a snappy block shorter than its checksum".into());
            };
            let len =
                snap::raw::decompress_len(body).map_err(|e| format!("bad snappy data: {e}"))?;
            if len > cap {
                return Err(format!("{len} bytes once uncompressed, more than {cap}"));
            }
            let out = snap::raw::Decoder::new()
                .decompress_vec(body)
                .map_err(|e| format!("bad snappy data: {e}"))?;
            if crc32fast::hash(&out).to_be_bytes() != *crc {
                return Err("the snappy block's CRC-32 does not match its data".into());
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_round_trips_and_bad_data_is_an_error() {
        let block = b"some records, some records, some records".repeat(20);
        for codec in AvroCodec::ALL {
            assert_eq!(codec_named(codec.name()), Some(codec));
            let stored = compress(codec, &block).unwrap();
            assert_eq!(decompress(codec, &stored, block.len()).unwrap(), block);
            if codec != AvroCodec::Null {
                let err = decompress(codec, &stored, block.len() - 1).unwrap_err();
                assert!(err.contains("more than"), "{err}");
            }
            if codec == AvroCodec::Snappy {
                let mut bad = stored.clone();
                let last = bad.len() - 1;
                bad[last] ^= 0xff;
                let err = decompress(codec, &bad, 1 << 20).unwrap_err();
                assert!(err.contains("CRC-32"), "{err}");
            }
        }
        assert_eq!(codec_named("xz"), None);
        assert!(decompress(AvroCodec::Snappy, b"ab", 10).is_err());
        for codec in [AvroCodec::Deflate, AvroCodec::Bzip2, AvroCodec::Zstandard] {
            assert!(decompress(codec, b"\xff\xff\xff", 10).is_err(), "{codec:?}");
        }
    }
}
