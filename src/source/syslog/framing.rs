//! Splitting a TCP byte stream into syslog messages. Each message chooses its framing by its
//! first byte (RFC 6587 §3.4): a digit starts an octet count (`<len> <msg>`), anything else is a
//! newline-terminated message (Flume's only framing). A message longer than the event size is
//! cut into pieces of at most that size, as Flume cuts it: the first flagged `Incomplete`, the
//! rest further messages (which the parser will mostly find Invalid), so that nothing is lost
//! from a client that never sends a newline (Python's `SysLogHandler` ends TCP messages with a
//! NUL) and nothing is buffered beyond the event size. What the framer cannot make sense of is
//! reported, never silently dropped: a malformed octet count makes the rest of its line one
//! message (which the parser will find Invalid).

use std::ops::Range;

/// Longest octet count accepted: nine digits (just under 1 GB).
const MAX_COUNT_DIGITS: usize = 9;

/// One message found in the buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub range: Range<usize>,
    /// Cut at the event size (or by the client closing mid-message): `Incomplete`.
    pub truncated: bool,
    /// What follows a cut: a piece of a message already reported as too long, which is not
    /// itself worth a line about not being syslog.
    pub continued: bool,
}

/// Something about the stream worth telling the operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Digits that do not make an RFC 6587 octet count (shown escaped).
    BadOctetCount(String),
    /// An octet count of more than [`MAX_COUNT_DIGITS`] digits (shown escaped).
    OctetCountTooLarge(String),
    /// A message longer than the event size: cut into pieces of at most that size.
    TooLong { limit: usize },
    /// The client closed the connection before an octet-counted message was complete.
    ClosedMidMessage { expected: usize, got: usize },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::BadOctetCount(s) => write!(
                f,
                "'{s}' is not an RFC 6587 octet count (digits, then a space): the rest of the line is kept as one message"
            ),
            Problem::OctetCountTooLarge(s) => write!(
                f,
                "'{s}' starts with an octet count of more than {MAX_COUNT_DIGITS} digits, larger than the 1 GB weir accepts: the line is kept as one message"
            ),
            Problem::TooLong { limit } => write!(
                f,
                "message longer than eventSize ({limit} bytes): cut into events of at most {limit} bytes, the first with flume.syslog.status=Incomplete, as Flume cuts it"
            ),
            Problem::ClosedMidMessage { expected, got } => write!(
                f,
                "connection closed {got} bytes into a message whose octet count said {expected}: kept what arrived, with flume.syslog.status=Incomplete"
            ),
        }
    }
}

/// What the next bytes are, when they continue a message already cut at the event size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rest {
    None,
    /// This many bytes are left of an over-long octet-counted message.
    Bytes(usize),
    /// The rest of an over-long line: framed as a line whatever its first byte (a digit there
    /// is not an octet count).
    Line,
}

/// Per-connection framing state (the rest of a cut message).
pub struct Framer {
    max: usize,
    rest: Rest,
}

impl Framer {
    pub fn new(event_size: usize) -> Framer {
        Framer {
            max: event_size.max(1),
            rest: Rest::None,
        }
    }

    /// Finds the messages in `buf` (bytes not yet consumed), appending them to `frames` and any
    /// trouble to `problems`; returns how many bytes of `buf` are consumed. The rest is an
    /// unfinished message to present again with more bytes behind it. At `eof` everything is
    /// consumed.
    pub fn split(
        &mut self,
        buf: &[u8],
        eof: bool,
        frames: &mut Vec<Frame>,
        problems: &mut Vec<Problem>,
    ) -> usize {
        let mut pos = 0;
        loop {
            if pos == buf.len() {
                if eof {
                    self.rest = Rest::None;
                }
                return pos;
            }
            match self.rest {
                Rest::None => {}
                Rest::Bytes(left) => {
                    let want = left.min(self.max);
                    let have = buf.len() - pos;
                    if have < want && !eof {
                        return pos;
                    }
                    let piece = want.min(have);
                    frames.push(Frame {
                        range: pos..pos + piece,
                        truncated: piece < left,
                        continued: true,
                    });
                    pos += piece;
                    self.rest = match left - piece {
                        0 => Rest::None,
                        more => Rest::Bytes(more),
                    };
                    continue;
                }
                Rest::Line => match self.line(buf, pos, eof, frames, problems) {
                    Some(next) => {
                        pos = next;
                        continue;
                    }
                    None => return pos,
                },
            }
            if buf[pos] == b'\n' {
                // Empty lines separate nothing (Flume ignores them too).
                pos += 1;
                continue;
            }
            let reported = problems.len();
            if buf[pos].is_ascii_digit() {
                match self.octet_counted(buf, pos, eof, frames, problems) {
                    Counted::Done(next) => {
                        pos = next;
                        continue;
                    }
                    Counted::NeedMore => return pos,
                    Counted::NotACount => {}
                }
            }
            match self.line(buf, pos, eof, frames, problems) {
                Some(next) => pos = next,
                // The line is looked at again when more has arrived: report it then, once.
                None => {
                    problems.truncate(reported);
                    return pos;
                }
            }
        }
    }

    fn octet_counted(
        &mut self,
        buf: &[u8],
        pos: usize,
        eof: bool,
        frames: &mut Vec<Frame>,
        problems: &mut Vec<Problem>,
    ) -> Counted {
        let avail = &buf[pos..];
        let digits = avail
            .iter()
            .take(MAX_COUNT_DIGITS + 1)
            .take_while(|b| b.is_ascii_digit())
            .count();
        let shown = || {
            let line = avail.split(|b| *b == b'\n').next().unwrap_or_default();
            line[..line.len().min(24)].escape_ascii().to_string()
        };
        if digits > MAX_COUNT_DIGITS {
            problems.push(Problem::OctetCountTooLarge(shown()));
            return Counted::NotACount;
        }
        match avail.get(digits) {
            None if !eof => return Counted::NeedMore,
            Some(b' ') if avail[0] != b'0' => {}
            _ => {
                problems.push(Problem::BadOctetCount(shown()));
                return Counted::NotACount;
            }
        }
        let len = avail[..digits]
            .iter()
            .fold(0usize, |v, d| v * 10 + usize::from(d - b'0'));
        let start = pos + digits + 1;
        let have = buf.len() - start;
        if have >= len.min(self.max) {
            if len <= self.max {
                frames.push(Frame {
                    range: start..start + len,
                    truncated: false,
                    continued: false,
                });
                return Counted::Done(start + len);
            }
            frames.push(Frame {
                range: start..start + self.max,
                truncated: true,
                continued: false,
            });
            problems.push(Problem::TooLong { limit: self.max });
            self.rest = Rest::Bytes(len - self.max);
            return Counted::Done(start + self.max);
        }
        if eof {
            frames.push(Frame {
                range: start..buf.len(),
                truncated: true,
                continued: false,
            });
            problems.push(Problem::ClosedMidMessage {
                expected: len,
                got: have,
            });
            return Counted::Done(buf.len());
        }
        Counted::NeedMore
    }

    /// A newline-terminated message at `pos`: where the next one starts, or `None` to wait
    /// for more bytes.
    fn line(
        &mut self,
        buf: &[u8],
        pos: usize,
        eof: bool,
        frames: &mut Vec<Frame>,
        problems: &mut Vec<Problem>,
    ) -> Option<usize> {
        let avail = &buf[pos..];
        // Only the first max + 2 bytes matter: enough for a full message and its "\r\n".
        let window = &avail[..avail.len().min(self.max + 2)];
        let (end, next) = match memchr(b'\n', window) {
            Some(i) => (pos + i, pos + i + 1),
            None if avail.len() > self.max + 1 => return Some(self.cut(pos, frames, problems)),
            // The last message of a stream may lack its newline: it is still a message.
            None if eof => (buf.len(), buf.len()),
            None => return None,
        };
        let end = if end > pos && buf[end - 1] == b'\r' {
            end - 1
        } else {
            end
        };
        if end - pos > self.max {
            // One byte over: the piece after the cut ends at this newline.
            return Some(self.cut(pos, frames, problems));
        }
        if end > pos {
            frames.push(Frame {
                range: pos..end,
                truncated: false,
                continued: self.rest == Rest::Line,
            });
        }
        self.rest = Rest::None;
        Some(next)
    }

    /// Cuts the line at `pos` at the event size: its first `max` bytes are a message flagged
    /// `Incomplete`, and what follows continues the line. Only the first cut of a message is
    /// reported.
    fn cut(&mut self, pos: usize, frames: &mut Vec<Frame>, problems: &mut Vec<Problem>) -> usize {
        frames.push(Frame {
            range: pos..pos + self.max,
            truncated: true,
            continued: self.rest == Rest::Line,
        });
        if self.rest != Rest::Line {
            problems.push(Problem::TooLong { limit: self.max });
        }
        self.rest = Rest::Line;
        pos + self.max
    }
}

enum Counted {
    Done(usize),
    NeedMore,
    NotACount,
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|b| *b == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` one after another as a connection would, returning the messages (with
    /// their truncation flag) and the problems.
    fn run(max: usize, chunks: &[&[u8]]) -> (Vec<(String, bool)>, Vec<Problem>) {
        let mut f = Framer::new(max);
        let mut pending: Vec<u8> = Vec::new();
        let mut out = Vec::new();
        let mut problems = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            pending.extend_from_slice(c);
            let eof = i + 1 == chunks.len();
            let mut frames = Vec::new();
            let used = f.split(&pending, eof, &mut frames, &mut problems);
            for fr in frames {
                out.push((
                    String::from_utf8_lossy(&pending[fr.range]).into_owned(),
                    fr.truncated,
                ));
            }
            pending.drain(..used);
            if eof {
                assert!(pending.is_empty(), "eof consumes everything");
            }
        }
        (out, problems)
    }

    fn msgs(v: &[(String, bool)]) -> Vec<&str> {
        v.iter().map(|(m, _)| m.as_str()).collect()
    }

    #[test]
    fn newline_and_octet_counting_mix_per_message() {
        let (out, p) = run(
            100,
            &[b"<1>a\n5 <2>b\n<3>c\r\n\n", b"13 <4>multi\nl", b"ine<5>x\n"],
        );
        assert_eq!(
            msgs(&out),
            ["<1>a", "<2>b\n", "<3>c", "<4>multi\nline", "<5>x"]
        );
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn messages_split_anywhere_across_reads() {
        let stream = b"11 <13>1 - h x<13>1 - h y\n7 <1>zzzz";
        let whole = run(50, &[stream]).0;
        for cut in 0..stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(run(50, &[a, b, b""]).0, whole, "cut at {cut}");
        }
        assert_eq!(msgs(&whole), ["<13>1 - h x", "<13>1 - h y", "<1>zzzz"]);
    }

    /// As Flume cuts them: pieces of at most the event size, the ones cut flagged; nothing of
    /// the message is dropped, and a digit after a cut is not an octet count.
    #[test]
    fn over_long_messages_are_cut_into_pieces() {
        let stream = b"<1>abcdefgh\n<2>ok\n11 <3>45678901<4>z\n<5>12345 7 x\n";
        let (out, p) = run(5, &[stream]);
        assert_eq!(
            out,
            vec![
                ("<1>ab".into(), true),
                ("cdefg".into(), true),
                ("h".into(), false),
                ("<2>ok".into(), false),
                ("<3>45".into(), true),
                ("67890".into(), true),
                ("1".into(), false),
                ("<4>z".into(), false),
                ("<5>12".into(), true),
                ("345 7".into(), true),
                (" x".into(), false),
            ]
        );
        // One report per message, not per piece.
        assert_eq!(p, vec![Problem::TooLong { limit: 5 }; 3]);
        let mut f = Framer::new(5);
        let mut frames = Vec::new();
        f.split(stream, true, &mut frames, &mut Vec::new());
        let continued: Vec<bool> = frames.iter().map(|fr| fr.continued).collect();
        assert_eq!(
            continued,
            [
                false, true, true, false, false, true, true, false, false, true, true
            ]
        );
        // The same, arriving a byte at a time.
        let chunks: Vec<&[u8]> = stream.chunks(1).collect();
        let (bytewise, _) = run(5, &chunks);
        assert_eq!(bytewise, out);
        // Python's SysLogHandler over TCP: NUL-terminated messages and no newline ever. Every
        // byte arrives in some piece.
        let mut nul_ended = Vec::new();
        for i in 0..100 {
            nul_ended.extend_from_slice(format!("<14>python message {i:04}\0").as_bytes());
        }
        for eof_chunk in [&b""[..], b"\n"] {
            let chunks: Vec<&[u8]> = nul_ended.chunks(777).chain([eof_chunk]).collect();
            let (out, p) = run(100, &chunks);
            let joined: String = out.iter().map(|(m, _)| m.as_str()).collect();
            assert_eq!(joined.as_bytes(), &nul_ended[..]);
            assert!(out.iter().all(|(m, _)| m.len() <= 100));
            assert_eq!(p, vec![Problem::TooLong { limit: 100 }]);
        }
        // A message one byte over (also before a "\r\n") loses no byte either.
        let (out, _) = run(5, &[b"<1>abc\r\n<2>x\n"]);
        assert_eq!(msgs(&out), ["<1>ab", "c", "<2>x"]);
        // A cut right before the newline leaves no empty piece.
        let (out, _) = run(5, &[b"<1>abcdefghij\r\n<2>y\n"]);
        assert_eq!(msgs(&out), ["<1>ab", "cdefg", "hij", "<2>y"]);
        // The rest of an octet-counted message cut off by the close is kept, flagged.
        let (out, _) = run(5, &[b"20 <3>4567890"]);
        assert_eq!(out, vec![("<3>45".into(), true), ("67890".into(), true)]);
    }

    #[test]
    fn bad_octet_counts_become_a_line() {
        let (out, p) = run(100, &[b"12x junk\n0 <1>zero\n1234567890 big\n<2>ok\n"]);
        assert_eq!(
            msgs(&out),
            ["12x junk", "0 <1>zero", "1234567890 big", "<2>ok"]
        );
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(matches!(&p[0], Problem::BadOctetCount(s) if s.starts_with("12x")));
        assert!(matches!(&p[2], Problem::OctetCountTooLarge(s) if s.starts_with("1234567890 big")));
        // Reported once, also when the line arrives in pieces.
        let (out, p) = run(100, &[b"2147483647 <13>M22", b" huge", b"\n<2>ok\n"]);
        assert_eq!(msgs(&out), ["2147483647 <13>M22 huge", "<2>ok"]);
        assert_eq!(
            p,
            vec![Problem::OctetCountTooLarge(
                "2147483647 <13>M22 huge".into()
            )]
        );
    }

    #[test]
    fn close_mid_message() {
        let (out, p) = run(100, &[b"100 <13>short"]);
        assert_eq!(out, vec![("<13>short".into(), true)]);
        assert_eq!(
            p,
            vec![Problem::ClosedMidMessage {
                expected: 100,
                got: 9
            }]
        );
        // A last line without its newline is a whole message; digits alone are not a count.
        let (out, p) = run(100, &[b"<1>last"]);
        assert_eq!(out, vec![("<1>last".into(), false)]);
        assert!(p.is_empty());
        let (out, p) = run(100, &[b"<1>a\n12"]);
        assert_eq!(msgs(&out), ["<1>a", "12"]);
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn garbage_is_kept_as_lines() {
        let (out, p) = run(8, &[b"\x00\xff\xfe garbage that is long\n<1>ok\n"]);
        assert_eq!(out.len(), 4, "{out:?}");
        assert!(out[0].1 && out[1].1 && !out[2].1, "cut at 8 bytes: {out:?}");
        assert_eq!(out[3], ("<1>ok".into(), false));
        assert_eq!(p, vec![Problem::TooLong { limit: 8 }]);
    }
}
