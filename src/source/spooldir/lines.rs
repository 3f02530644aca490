//! Cutting a spooled file into events, as Flume's LINE deserializer does: one event per line,
//! without its `\n` (and without a `\r` just before it), a line longer than `maxLineLength`
//! characters cut into events of that many characters, and a last line without a newline still
//! an event (a file in the spool directory is finished). The bytes are decoded as UTF-8 with the
//! `decodeErrorPolicy`; the events hold UTF-8.
//!
//! Every event knows the byte offset just after it (after the newline when it ends its line), so
//! the source can record a committed position from which reading resumes exactly where the
//! next event starts, even in the middle of a cut line.
//!
//! Written here rather than taken from a crate: no line reader cuts lines at a number of
//! characters, decodes with Flume's three policies and reports the byte offset of each piece;
//! the standard library's `utf8_chunks` does the decoding.
//!
//! Two choices differ from Flume's deserializer, which keeps the `\r` of a CRLF line in the body
//! and, when a line is exactly `maxLineLength` characters long, sends an empty event after it:
//! here the `\r` is dropped (as weir's TAILDIR and netcat sources do) and no empty event follows
//! a cut that falls at the end of a line. Characters are Unicode scalar values (Java counts
//! UTF-16 units, so a character outside the BMP counts twice there).

use std::fs::File;
use std::io;

use bytes::Bytes;

use super::deserializer::{After, Batch, Deserializer, Piece, Position};
use crate::config::DecodeErrorPolicy;
use crate::source::read_full_at;

/// Bytes read per `pread`.
const CHUNK: usize = 64 * 1024;

enum Next {
    Piece(Piece),
    End,
    Invalid(u64),
}

/// Reads one file from a byte offset up to the size it had when it was opened.
pub struct LineReader {
    file: File,
    /// Nothing past this is read: the file's size when it was opened.
    len: u64,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    buf_at: u64,
    /// Index in `buf` of the first byte not consumed yet.
    at: usize,
    chunk: usize,
    /// The event being built, and its length in characters.
    cur: Vec<u8>,
    cur_chars: usize,
    max_chars: usize,
    policy: DecodeErrorPolicy,
}

impl LineReader {
    /// Reads `file` (whose size is `len`) from byte `start`.
    pub fn new(
        file: File,
        len: u64,
        start: u64,
        max_chars: usize,
        policy: DecodeErrorPolicy,
    ) -> LineReader {
        LineReader {
            file,
            len,
            buf: Vec::new(),
            buf_at: start,
            at: 0,
            chunk: CHUNK,
            cur: Vec::new(),
            cur_chars: 0,
            max_chars: max_chars.max(1),
            policy,
        }
    }

    /// The open file's metadata now.
    pub fn stat(&self) -> io::Result<std::fs::Metadata> {
        self.file.metadata()
    }

    /// The offset of the first byte not consumed yet.
    pub fn offset(&self) -> u64 {
        self.buf_at + self.at as u64
    }

    /// Up to `max` events.
    pub fn read_batch(&mut self, max: usize) -> io::Result<Batch> {
        let mut pieces = Vec::new();
        while pieces.len() < max {
            match self.next()? {
                Next::Piece(p) => pieces.push(p),
                Next::End => {
                    return Ok(Batch {
                        pieces,
                        after: After::End,
                    });
                }
                Next::Invalid(at) => {
                    return Ok(Batch {
                        pieces,
                        after: After::Invalid(at),
                    });
                }
            }
        }
        Ok(Batch {
            pieces,
            after: After::More,
        })
    }

    fn more_in_file(&self) -> bool {
        self.buf_at + (self.buf.len() as u64) < self.len
    }

    /// Reads the next bytes after those buffered; false when there are none.
    fn fill(&mut self) -> io::Result<bool> {
        let left = self.len - (self.buf_at + self.buf.len() as u64).min(self.len);
        let want = (self.chunk as u64).min(left) as usize;
        if want == 0 {
            return Ok(false);
        }
        if self.at > 0 {
            self.buf.drain(..self.at);
            self.buf_at += self.at as u64;
            self.at = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + want, 0);
        let n = read_full_at(&self.file, &mut self.buf[old..], self.buf_at + old as u64)?;
        self.buf.truncate(old + n);
        if n < want {
            // Shorter than when it was opened: read what there is. The source notices the
            // change when it looks at the file again.
            self.len = self.buf_at + self.buf.len() as u64;
        }
        Ok(n > 0)
    }

    fn piece(&mut self) -> Next {
        self.cur_chars = 0;
        Next::Piece(Piece {
            body: Bytes::from(std::mem::take(&mut self.cur)),
            end: Position::at(self.offset()),
        })
    }

    fn next(&mut self) -> io::Result<Next> {
        loop {
            let eof = !self.more_in_file();
            if self.cur_chars == self.max_chars {
                // A full event: it ends its line if a line end follows, otherwise the line goes
                // on in the next event.
                let avail = &self.buf[self.at..];
                if self.policy == DecodeErrorPolicy::Ignore {
                    let line = memchr::memchr(b'\n', avail).unwrap_or(avail.len());
                    let last = line == avail.len() && !eof;
                    let held = if last { held_back(&avail[..line]) } else { 0 };
                    let dropped = leading_invalid(&avail[..line - held]);
                    if dropped > 0 {
                        self.at += dropped;
                        continue;
                    }
                    if held > 0 && held == line {
                        self.fill()?;
                        continue;
                    }
                }
                match avail {
                    [b'\n', ..] => self.at += 1,
                    [b'\r', b'\n', ..] => self.at += 2,
                    [] | [b'\r'] if !eof => {
                        self.fill()?;
                        continue;
                    }
                    _ => {}
                }
                return Ok(self.piece());
            }
            let avail = &self.buf[self.at..];
            if avail.is_empty() {
                if !eof {
                    self.fill()?;
                    continue;
                }
                // A last line without a newline is an event too, if it has a character (as
                // Flume: bytes dropped by IGNORE alone make none).
                if self.cur_chars > 0 {
                    return Ok(self.piece());
                }
                return Ok(Next::End);
            }
            let newline = memchr::memchr(b'\n', avail);
            let (mut line, ends) = match newline {
                Some(i) => (i, true),
                None => (avail.len(), false),
            };
            let mut cr = 0;
            if ends && line > 0 && avail[line - 1] == b'\r' {
                line -= 1;
                cr = 1;
            }
            let held = if ends || eof {
                0
            } else {
                held_back(&avail[..line])
            };
            let work = line - held;
            let (used, invalid) = decode(
                &avail[..work],
                &mut self.cur,
                &mut self.cur_chars,
                self.max_chars,
                self.policy,
            );
            self.at += used;
            if invalid {
                self.cur.clear();
                self.cur_chars = 0;
                return Ok(Next::Invalid(self.offset()));
            }
            if self.cur_chars == self.max_chars {
                continue;
            }
            if ends {
                self.at += cr + 1;
                return Ok(self.piece());
            }
            if !eof {
                self.fill()?;
            }
        }
    }
}

impl Deserializer for LineReader {
    fn read_batch(&mut self, max: usize) -> io::Result<Batch> {
        LineReader::read_batch(self, max)
    }

    fn stat(&self) -> io::Result<std::fs::Metadata> {
        LineReader::stat(self)
    }

    fn offset(&self) -> u64 {
        LineReader::offset(self)
    }
}

/// Bytes at the end of `seg` (which more bytes of the same line follow in the file) that
/// cannot be decoded yet: a `\r` that may come before a newline, or the start of a character
/// whose other bytes are still to be read.
fn held_back(seg: &[u8]) -> usize {
    if seg.last() == Some(&b'\r') {
        return 1;
    }
    for k in seg.len().saturating_sub(3)..seg.len() {
        if let Err(e) = std::str::from_utf8(&seg[k..])
            && e.valid_up_to() == 0
            && e.error_len().is_none()
        {
            return seg.len() - k;
        }
    }
    0
}

/// How many bytes at the start of `bytes` are not UTF-8.
fn leading_invalid(bytes: &[u8]) -> usize {
    let mut n = 0;
    for chunk in bytes.utf8_chunks() {
        if !chunk.valid().is_empty() {
            break;
        }
        n += chunk.invalid().len();
    }
    n
}

/// Decodes `bytes` onto the event being built until it has `max` characters. Returns how many
/// bytes were used, and whether it stopped at bytes that are not UTF-8 under FAIL.
fn decode(
    bytes: &[u8],
    cur: &mut Vec<u8>,
    chars: &mut usize,
    max: usize,
    policy: DecodeErrorPolicy,
) -> (usize, bool) {
    let mut used = 0;
    for chunk in bytes.utf8_chunks() {
        let valid = chunk.valid();
        let (take, n) = prefix_chars(valid, max - *chars);
        cur.extend_from_slice(&valid.as_bytes()[..take]);
        *chars += n;
        used += take;
        if take < valid.len() || *chars == max {
            return (used, false);
        }
        let invalid = chunk.invalid();
        if invalid.is_empty() {
            continue;
        }
        match policy {
            DecodeErrorPolicy::Fail => return (used, true),
            DecodeErrorPolicy::Ignore => {}
            DecodeErrorPolicy::Replace => {
                cur.extend_from_slice("\u{FFFD}".as_bytes());
                *chars += 1;
            }
        }
        used += invalid.len();
    }
    (used, false)
}

/// The bytes and characters of the longest start of `s` with at most `room` characters.
fn prefix_chars(s: &str, room: usize) -> (usize, usize) {
    if s.len() <= room {
        return (s.len(), s.chars().count());
    }
    let mut n = 0;
    for (i, _) in s.char_indices() {
        if n == room {
            return (i, n);
        }
        n += 1;
    }
    (s.len(), n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every event of `data` read from `start`, with `chunk`-byte reads, and what ended it.
    fn read_all(
        data: &[u8],
        start: u64,
        max: usize,
        policy: DecodeErrorPolicy,
        chunk: usize,
    ) -> (Vec<Piece>, After) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, data).unwrap();
        let mut r = LineReader::new(
            File::open(&path).unwrap(),
            data.len() as u64,
            start,
            max,
            policy,
        );
        r.chunk = chunk;
        let mut out = Vec::new();
        loop {
            let b = r.read_batch(3).unwrap();
            out.extend(b.pieces);
            if b.after != After::More {
                return (out, b.after);
            }
        }
    }

    fn bodies(pieces: &[Piece]) -> Vec<String> {
        pieces
            .iter()
            .map(|p| String::from_utf8(p.body.to_vec()).unwrap())
            .collect()
    }

    fn lines(data: &[u8], max: usize) -> Vec<String> {
        let (p, after) = read_all(data, 0, max, DecodeErrorPolicy::Replace, CHUNK);
        assert_eq!(after, After::End);
        bodies(&p)
    }

    #[test]
    fn lines_crlf_empty_lines_and_a_last_line_without_newline() {
        assert_eq!(
            lines(b"one\r\ntwo\n\n\r\nlast", 100),
            vec!["one", "two", "", "", "last"]
        );
        assert_eq!(lines(b"a\rb\n", 100), vec!["a\rb"], "a lone \\r stays");
        assert_eq!(lines(b"", 100), Vec::<String>::new());
        let (p, _) = read_all(b"ab\r\ncd", 0, 100, DecodeErrorPolicy::Fail, CHUNK);
        assert_eq!(
            p.iter().map(|p| p.end.offset).collect::<Vec<_>>(),
            vec![4, 6],
            "offsets after each event"
        );
    }

    #[test]
    fn long_lines_are_cut_at_max_characters() {
        assert_eq!(
            lines(b"abcdefghij\nxy\n", 4),
            vec!["abcd", "efgh", "ij", "xy"]
        );
        // A cut at the end of the line makes no empty event, with LF or CRLF.
        assert_eq!(lines(b"abcdefgh\nxy\n", 4), vec!["abcd", "efgh", "xy"]);
        assert_eq!(lines(b"abcd\r\nxy", 4), vec!["abcd", "xy"]);
        // Characters, not bytes: é is two bytes, € three.
        assert_eq!(lines("ééé€€\n".as_bytes(), 2), vec!["éé", "é€", "€"]);
        let (p, _) = read_all(b"abcdef\n", 0, 4, DecodeErrorPolicy::Fail, CHUNK);
        assert_eq!(p[0].end.offset, 4, "a cut line resumes in its middle");
        assert_eq!(p[1].end.offset, 7);
        let (rest, _) = read_all(b"abcdef\n", 4, 4, DecodeErrorPolicy::Fail, CHUNK);
        assert_eq!(bodies(&rest), vec!["ef"]);
    }

    #[test]
    fn decode_error_policies() {
        let data = b"good\nba\xffd\xe2\x82\nafter\n";
        let (p, after) = read_all(data, 0, 100, DecodeErrorPolicy::Replace, CHUNK);
        assert_eq!(bodies(&p), vec!["good", "ba\u{FFFD}d\u{FFFD}", "after"]);
        assert_eq!(after, After::End);
        let (p, _) = read_all(data, 0, 100, DecodeErrorPolicy::Ignore, CHUNK);
        assert_eq!(bodies(&p), vec!["good", "bad", "after"]);
        let (p, after) = read_all(data, 0, 100, DecodeErrorPolicy::Fail, CHUNK);
        assert_eq!(bodies(&p), vec!["good"]);
        assert_eq!(after, After::Invalid(7), "the offset of the \\xff");
        // An event already full when the bad byte comes is still sent.
        let (p, after) = read_all(b"abcd\xff\n", 0, 4, DecodeErrorPolicy::Fail, CHUNK);
        assert_eq!(bodies(&p), vec!["abcd"]);
        assert_eq!(after, After::Invalid(4));
        // Dropped bytes after a full event do not make an empty one.
        let (p, _) = read_all(b"abcd\xff\nx", 0, 4, DecodeErrorPolicy::Ignore, 1);
        assert_eq!(bodies(&p), vec!["abcd", "x"]);
        // A line of dropped bytes alone is an empty event; at the end of the file, none.
        let (p, _) = read_all(b"\xff\n\xfe", 0, 4, DecodeErrorPolicy::Ignore, CHUNK);
        assert_eq!(bodies(&p), vec![""]);
    }

    #[test]
    fn a_file_that_shrank_is_read_to_its_new_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"one\ntwo\n").unwrap();
        let mut r = LineReader::new(
            File::open(&path).unwrap(),
            100,
            0,
            10,
            DecodeErrorPolicy::Fail,
        );
        let b = r.read_batch(10).unwrap();
        assert_eq!(bodies(&b.pieces), vec!["one", "two"]);
        assert_eq!(b.after, After::End);
    }

    /// What the reader must produce, computed the plain way: the whole file split at newlines,
    /// each line decoded at once and cut into `max`-character events.
    fn model(data: &[u8], max: usize, policy: DecodeErrorPolicy) -> (Vec<String>, After) {
        let mut out = Vec::new();
        let mut offset = 0u64;
        let mut rest = data;
        while !rest.is_empty() {
            let (mut line, next) = match memchr::memchr(b'\n', rest) {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &rest[rest.len()..]),
            };
            let terminated = next.len() < rest.len() - line.len();
            if terminated && line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            let mut chars: Vec<char> = Vec::new();
            let mut at = offset;
            for chunk in line.utf8_chunks() {
                chars.extend(chunk.valid().chars());
                at += chunk.valid().len() as u64;
                if !chunk.invalid().is_empty() {
                    match policy {
                        DecodeErrorPolicy::Fail => {
                            // Whole events before the bad byte are sent.
                            let whole = chars.len() / max;
                            out.extend(chars.chunks(max).take(whole).map(String::from_iter));
                            return (out, After::Invalid(at));
                        }
                        DecodeErrorPolicy::Replace => chars.push('\u{FFFD}'),
                        DecodeErrorPolicy::Ignore => {}
                    }
                    at += chunk.invalid().len() as u64;
                }
            }
            if chars.is_empty() {
                if terminated {
                    out.push(String::new());
                }
            } else {
                out.extend(chars.chunks(max).map(String::from_iter));
            }
            offset += (rest.len() - next.len()) as u64;
            rest = next;
        }
        (out, After::End)
    }

    fn policy() -> impl Strategy<Value = DecodeErrorPolicy> {
        prop_oneof![
            Just(DecodeErrorPolicy::Fail),
            Just(DecodeErrorPolicy::Replace),
            Just(DecodeErrorPolicy::Ignore),
        ]
    }

    /// Bytes biased towards what matters here: newlines, `\r`, multi-byte characters cut
    /// anywhere, invalid bytes.
    fn content() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(b"\n".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b"\r".to_vec()),
            Just(b"abc".to_vec()),
            Just(b"x".to_vec()),
            Just("é".as_bytes().to_vec()),
            Just("€".as_bytes().to_vec()),
            Just("😀".as_bytes().to_vec()),
            Just(b"\xe2\x82".to_vec()),
            Just(b"\xff".to_vec()),
            Just(b"\x80".to_vec()),
        ];
        proptest::collection::vec(piece, 0..40).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn events_are_those_of_the_plain_split_whatever_the_read_size(
            data in content(),
            max in 1usize..6,
            chunk in 1usize..9,
            policy in policy(),
        ) {
            let (want, want_after) = model(&data, max, policy);
            let (got, after) = read_all(&data, 0, max, policy, chunk);
            prop_assert_eq!(bodies(&got), want);
            prop_assert_eq!(after, want_after);
            // Resuming at any event's end offset gives the events after it.
            for (i, p) in got.iter().enumerate() {
                let (rest, _) = read_all(&data, p.end.offset, max, policy, chunk);
                prop_assert_eq!(bodies(&rest), bodies(&got[i + 1..]), "resumed at {}", p.end.offset);
            }
        }
    }
}
