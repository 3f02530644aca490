//! Flume's Avro event format for Kafka record values (`useFlumeEventFormat = true`): the event
//! as one Avro binary datum of Flume's `org.apache.flume.source.avro.AvroFlumeEvent` record,
//! `{headers: map<string>, body: bytes}`, with no schema or container around it. This is what
//! Flume's own Kafka sink writes with that setting, and what its Kafka source and Kafka channel
//! (`useFlumeEventFormat`, `parseAsFlumeEvent`) read back, headers included.
//!
//! Written by hand rather than with the `apache-avro` crate: the schema is fixed, encoding it is
//! three primitives of the Avro 1.x binary encoding (zig-zag varint longs, length-prefixed
//! strings and bytes, and a map as one block of entries closed by a zero count), and the crate
//! would add a serde-based schema machinery and its dependencies to the build for them. The
//! decoder is here for tests and tools that read such records back; it never panics on bad
//! input and never allocates more than the input holds.

use crate::event::Headers;

/// The event as an `AvroFlumeEvent` datum.
pub fn encode(headers: &Headers, body: &[u8]) -> Vec<u8> {
    let size: usize = headers.iter().map(|(k, v)| k.len() + v.len() + 4).sum();
    let mut out = Vec::with_capacity(size + body.len() + 12);
    if !headers.is_empty() {
        put_long(&mut out, headers.len() as i64);
        for (k, v) in headers {
            put_bytes(&mut out, k.as_bytes());
            put_bytes(&mut out, v.as_bytes());
        }
    }
    put_long(&mut out, 0);
    put_bytes(&mut out, body);
    out
}

/// Reads an `AvroFlumeEvent` datum back: its headers and body, or what is wrong and at which
/// byte.
pub fn decode(datum: &[u8]) -> Result<(Headers, Vec<u8>), String> {
    let mut r = Cursor { buf: datum, pos: 0 };
    let mut headers = Headers::new();
    loop {
        let at = r.pos;
        let count = r.long()?;
        if count == 0 {
            break;
        }
        let count = if count < 0 {
            // A negative count is followed by the block's size in bytes (allowed by the spec).
            r.long()?;
            count
                .checked_neg()
                .ok_or(format!("bad map block count at byte {at}"))?
        } else {
            count
        };
        for _ in 0..count {
            let k = r.string()?;
            let v = r.string()?;
            headers.insert(k, v);
        }
    }
    let body = r.bytes()?.to_vec();
    if r.pos != datum.len() {
        return Err(format!(
            "{} bytes after the event at byte {}",
            datum.len() - r.pos,
            r.pos
        ));
    }
    Ok((headers, body))
}

fn put_long(out: &mut Vec<u8>, n: i64) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_long(out, b.len() as i64);
    out.extend_from_slice(b);
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn long(&mut self) -> Result<i64, String> {
        let start = self.pos;
        let mut z: u64 = 0;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(format!("datum ends inside a number at byte {start}"));
            };
            self.pos += 1;
            z |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok((z >> 1) as i64 ^ -((z & 1) as i64));
            }
        }
        Err(format!("number longer than 10 bytes at byte {start}"))
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let at = self.pos;
        let len = self.long()?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| self.pos.checked_add(l))
            .filter(|&e| e <= self.buf.len())
            .ok_or(format!("length {len} at byte {at} runs past the datum"))?;
        let b = &self.buf[self.pos..end];
        self.pos = end;
        Ok(b)
    }

    fn string(&mut self) -> Result<String, String> {
        let at = self.pos;
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| format!("string at byte {at} is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worked from the Avro specification by hand: map block count 2 (zig-zag 4), "a" → "1",
    /// "key" → "k9", closing count 0, then body "hi".
    #[test]
    fn encoding_matches_the_avro_spec_byte_for_byte() {
        let mut h = Headers::new();
        h.insert("a".into(), "1".into());
        h.insert("key".into(), "k9".into());
        let got = encode(&h, b"hi");
        let want = [
            0x04, // 2 entries
            0x02, b'a', 0x02, b'1', // "a" → "1"
            0x06, b'k', b'e', b'y', 0x04, b'k', b'9', // "key" → "k9"
            0x00, // end of map
            0x04, b'h', b'i', // body
        ];
        assert_eq!(got, want);
        assert_eq!(encode(&Headers::new(), b""), [0x00, 0x00]);
    }

    #[test]
    fn long_lengths_use_multi_byte_varints() {
        let body = vec![7u8; 300];
        let got = encode(&Headers::new(), &body);
        // 300 zig-zags to 600 = 0b100_1011000: low seven bits first, with the continuation bit.
        assert_eq!(&got[..3], &[0x00, 0xd8, 0x04]);
        assert_eq!(decode(&got).unwrap().1, body);
    }

    #[test]
    fn decode_reads_back_what_encode_wrote_and_reports_bad_input() {
        let mut h = Headers::new();
        h.insert("héllo".into(), "wörld".into());
        h.insert("empty".into(), String::new());
        let datum = encode(&h, b"\x00\xffbody");
        assert_eq!(decode(&datum).unwrap(), (h, b"\x00\xffbody".to_vec()));
        // A negative block count with its byte size, as other writers may send.
        assert_eq!(
            decode(&[0x01, 0x08, 0x02, b'a', 0x02, b'b', 0x00, 0x00])
                .unwrap()
                .0
                .get("a")
                .map(String::as_str),
            Some("b")
        );
        for bad in [
            &[][..],
            &[0x02, 0x02][..],
            &[0x00, 0x10, b'x'][..],
            &[0x00, 0x00, 0x00][..],
            &[0x80; 11][..],
            &[0x02, 0x02, 0xff, 0x00, 0x00, 0x00][..],
        ] {
            assert!(decode(bad).is_err(), "{bad:?} accepted");
        }
    }
}
