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
//! decoder never panics on bad input and never allocates more than the input holds.
//!
//! The Avro RPC of the avro source and sink (`avro_rpc`) carries the same datums, and builds its
//! messages from the primitives here: [`put_long`], [`put_bytes`], [`put_bytes_map`],
//! [`encode_into`] and the [`Cursor`], which reads a datum or an array of them out of a longer
//! payload. The file_roll sink's `AVRO_EVENT` serializer (`sink::serializer`) writes the same
//! record into Avro object container files with them.

use crate::event::Headers;

/// The event as an `AvroFlumeEvent` datum.
pub fn encode(headers: &Headers, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_size_hint(headers, body));
    encode_into(&mut out, headers, body);
    out
}

/// About how many bytes [`encode_into`] writes for this event (for reserving room).
pub fn encoded_size_hint(headers: &Headers, body: &[u8]) -> usize {
    let size: usize = headers.iter().map(|(k, v)| k.len() + v.len() + 4).sum();
    size + body.len() + 12
}

/// Appends the event as an `AvroFlumeEvent` datum to `out`.
pub fn encode_into(out: &mut Vec<u8>, headers: &Headers, body: &[u8]) {
    if !headers.is_empty() {
        put_long(out, headers.len() as i64);
        for (k, v) in headers {
            put_bytes(out, k.as_bytes());
            put_bytes(out, v.as_bytes());
        }
    }
    put_long(out, 0);
    put_bytes(out, body);
}

/// Reads an `AvroFlumeEvent` datum back: its headers and body, or what is wrong and at which
/// byte.
pub fn decode(datum: &[u8]) -> Result<(Headers, Vec<u8>), String> {
    let mut r = Cursor::new(datum);
    let (headers, body) = r.event()?;
    let body = body.to_vec();
    r.expect_end("the event")?;
    Ok((headers, body))
}

/// Appends an Avro `long` (or `int`, `enum` index, union branch, block count): zig-zag varint.
pub fn put_long(out: &mut Vec<u8>, n: i64) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Appends an Avro `bytes` or `string`: its length, then its bytes.
pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_long(out, b.len() as i64);
    out.extend_from_slice(b);
}

/// Appends an Avro `map<bytes>` (Avro RPC's call metadata, an object container file's header
/// metadata): one block of all entries, then the zero count that ends the map.
pub fn put_bytes_map(out: &mut Vec<u8>, m: &[(impl AsRef<str>, impl AsRef<[u8]>)]) {
    if !m.is_empty() {
        put_long(out, m.len() as i64);
        for (k, v) in m {
            put_bytes(out, k.as_ref().as_bytes());
            put_bytes(out, v.as_ref());
        }
    }
    put_long(out, 0);
}

/// Reads Avro binary values from a buffer, front to back. Errors name the byte position;
/// nothing is allocated beyond what the buffer holds.
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8]) -> Cursor<'a> {
        Cursor { buf, pos: 0 }
    }

    /// The position of the next byte to read.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Fails unless every byte was read; `what` names what was read.
    pub fn expect_end(&self, what: &str) -> Result<(), String> {
        if self.pos != self.buf.len() {
            return Err(format!(
                "{} bytes after {what} at byte {}",
                self.buf.len() - self.pos,
                self.pos
            ));
        }
        Ok(())
    }

    /// An `AvroFlumeEvent` datum: its headers and body.
    pub fn event(&mut self) -> Result<(Headers, &'a [u8]), String> {
        let mut headers = Headers::new();
        self.blocks(|r| {
            let k = r.string()?;
            let v = r.string()?;
            headers.insert(k, v);
            Ok(())
        })?;
        Ok((headers, self.bytes()?))
    }

    /// An `array<AvroFlumeEvent>`. Each event takes at least two bytes of the buffer, so the
    /// list never outgrows the input whatever the counts claim.
    pub fn events(&mut self) -> Result<Vec<(Headers, &'a [u8])>, String> {
        let mut events = Vec::new();
        self.blocks(|r| {
            events.push(r.event()?);
            Ok(())
        })?;
        Ok(events)
    }

    /// A `map<bytes>` (Avro RPC's call metadata).
    pub fn bytes_map(&mut self) -> Result<Vec<(String, &'a [u8])>, String> {
        let mut map = Vec::new();
        self.blocks(|r| {
            let k = r.string()?;
            map.push((k, r.bytes()?));
            Ok(())
        })?;
        Ok(map)
    }

    /// The blocks of an array or map, calling `item` once per item: a count, that many items,
    /// until a zero count. A negative count is followed by the block's size in bytes (allowed by
    /// the spec).
    pub fn blocks(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<(), String>,
    ) -> Result<(), String> {
        loop {
            let at = self.pos;
            let count = self.long()?;
            if count == 0 {
                return Ok(());
            }
            let count = if count < 0 {
                self.long()?;
                count
                    .checked_neg()
                    .ok_or(format!("bad block count at byte {at}"))?
            } else {
                count
            };
            // Each item reads at least one byte, so a false count soon runs out of input.
            for _ in 0..count {
                item(self)?;
            }
        }
    }

    /// A `fixed` of `n` bytes.
    pub fn fixed(&mut self, n: usize) -> Result<&'a [u8], String> {
        let at = self.pos;
        let end = at
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(format!("{n}-byte fixed at byte {at} runs past the end"))?;
        self.pos = end;
        Ok(&self.buf[at..end])
    }

    /// A `boolean`: one byte, 0 or 1.
    pub fn boolean(&mut self) -> Result<bool, String> {
        let at = self.pos;
        match self.fixed(1)? {
            [0] => Ok(false),
            [1] => Ok(true),
            [b] => Err(format!("boolean at byte {at} is {b}, not 0 or 1")),
            _ => Err(format!("boolean at byte {at} missing")),
        }
    }

    /// An `int`-sized index (enum symbol, union branch) that must be below `limit`.
    pub fn index(&mut self, limit: usize, what: &str) -> Result<usize, String> {
        let at = self.pos;
        let n = self.long()?;
        usize::try_from(n)
            .ok()
            .filter(|&i| i < limit)
            .ok_or(format!("{what} at byte {at} is {n}, not below {limit}"))
    }

    pub fn long(&mut self) -> Result<i64, String> {
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

    pub fn bytes(&mut self) -> Result<&'a [u8], String> {
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

    pub fn string(&mut self) -> Result<String, String> {
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
                .get("a"),
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
