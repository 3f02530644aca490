//! One followed file: its identity (device and inode, which survive a rename), the committed
//! position, an open handle, and the bytes already read past the position. Lines are cut here:
//! only bytes up to a newline become a line; an unfinished last line stays unread until its
//! newline arrives.
//!
//! Reads use `pread` at explicit offsets, so a batch the channel refused is simply read again
//! from the committed position: nothing about the handle has to be rewound.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use bytes::{Bytes, BytesMut};

use crate::source::read_full_at;

/// A file's identity: device and inode.
pub type FileKey = (u64, u64);

/// Bytes read per `pread` (more when a single line is longer).
const CHUNK: usize = 64 * 1024;
/// How many bytes before the position are remembered to recognise a file rewritten in place
/// (copytruncate followed by more writes than the old size before the next poll).
const CHECK_LEN: usize = 32;

/// One line: where it starts in the file, and its bytes without the newline (and without a `\r`
/// before it, as Flume does).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub offset: u64,
    pub body: Bytes,
}

/// Lines read past the committed position; committing it moves the position to `end`.
#[derive(Debug)]
pub struct Batch {
    pub lines: Vec<Line>,
    pub end: u64,
    /// Bytes after `end` already read (the start of the next batch).
    rest: Bytes,
    /// The last bytes before `end`.
    check: Vec<u8>,
}

pub struct Tail {
    pub key: FileKey,
    /// Where the file is now, as far as the last scan knows.
    pub path: PathBuf,
    /// Index of the file group it belongs to (its headers).
    pub group: usize,
    /// Every byte before this is in the channel.
    pub pos: u64,
    file: Option<File>,
    /// Bytes from `pos` on, already read.
    ahead: Bytes,
    /// Up to `CHECK_LEN` bytes just before `pos`.
    check: Vec<u8>,
    /// False once the file no longer matches its group's pattern (renamed away or deleted): it
    /// is read to its end and then forgotten.
    pub matched: bool,
    /// Size and modification time at the last look, and when either last changed.
    seen: (u64, Option<SystemTime>),
    pub last_change: Instant,
}

impl Tail {
    /// Opens `path` at `pos`, if the file there is still `key`.
    pub fn open(path: &Path, key: FileKey, group: usize, pos: u64) -> io::Result<Option<Tail>> {
        let Some(file) = open_if(path, key)? else {
            return Ok(None);
        };
        let meta = file.metadata()?;
        let mut t = Tail {
            key,
            path: path.to_owned(),
            group,
            pos,
            file: Some(file),
            ahead: Bytes::new(),
            check: Vec::new(),
            matched: true,
            seen: (meta.len(), meta.modified().ok()),
            last_change: Instant::now(),
        };
        t.check = t.read_check()?;
        Ok(Some(t))
    }

    pub fn is_open(&self) -> bool {
        self.file.is_some()
    }

    /// Bytes read so far (the committed position plus what is read ahead of it).
    pub fn read_to(&self) -> u64 {
        self.pos + self.ahead.len() as u64
    }

    /// Size and modification time at the last look.
    pub fn seen(&self) -> (u64, Option<SystemTime>) {
        self.seen
    }

    /// Records a look at the file; true if it changed since the last one.
    pub fn observe(&mut self, len: u64, mtime: Option<SystemTime>) -> bool {
        if self.seen == (len, mtime) {
            return false;
        }
        self.seen = (len, mtime);
        self.last_change = Instant::now();
        true
    }

    /// Size and modification time through the open handle (for a file no longer under a
    /// matching name), or `None` when closed.
    pub fn stat_handle(&self) -> Option<io::Result<(u64, Option<SystemTime>)>> {
        self.file
            .as_ref()
            .map(|f| f.metadata().map(|m| (m.len(), m.modified().ok())))
    }

    /// Whether the bytes before the position are still those that were read: false means the
    /// file was truncated and written again.
    pub fn unchanged_before_pos(&self) -> io::Result<bool> {
        Ok(self.check.is_empty() || self.read_check()? == self.check)
    }

    /// The byte before `pos` is a newline (or `pos` is 0): a position written after a whole
    /// line, as both Flume and weir write them.
    pub fn pos_follows_line_end(&self) -> bool {
        self.check.is_empty() || self.check.last() == Some(&b'\n')
    }

    /// Starts over from the beginning of the file (it was truncated).
    pub fn restart(&mut self) {
        self.pos = 0;
        self.ahead = Bytes::new();
        self.check.clear();
    }

    /// Opens the file again at `self.path`, if it is still the same file.
    pub fn reopen(&mut self) -> io::Result<bool> {
        let Some(file) = open_if(&self.path, self.key)? else {
            return Ok(false);
        };
        self.file = Some(file);
        self.ahead = Bytes::new();
        Ok(true)
    }

    /// Closes the handle; what was read ahead is read again after `reopen`.
    pub fn close(&mut self) {
        self.file = None;
        self.ahead = Bytes::new();
    }

    fn read_check(&self) -> io::Result<Vec<u8>> {
        let Some(file) = &self.file else {
            return Ok(self.check.clone());
        };
        let n = (self.pos as usize).min(CHECK_LEN);
        let mut buf = vec![0u8; n];
        let got = read_full_at(file, &mut buf, self.pos - n as u64)?;
        buf.truncate(got);
        Ok(buf)
    }

    /// Reads up to `max` complete lines after the committed position. Changes nothing: give the
    /// batch to `commit` once the channel has it, or drop it to read the same lines again.
    pub fn read_batch(&self, max: usize) -> io::Result<Batch> {
        let mut buf = self.ahead.clone();
        let mut base = self.pos;
        let mut prev = self.check.clone();
        let mut at = 0usize;
        let mut lines = Vec::new();
        loop {
            while lines.len() < max {
                let Some(i) = memchr::memchr(b'\n', &buf[at..]) else {
                    break;
                };
                let mut end = at + i;
                if end > at && buf[end - 1] == b'\r' {
                    end -= 1;
                }
                lines.push(Line {
                    offset: base + at as u64,
                    body: buf.slice(at..end),
                });
                at += i + 1;
            }
            let Some(file) = &self.file else { break };
            if lines.len() >= max {
                break;
            }
            // Keep the unfinished line and read what follows it.
            let carry = &buf[at..];
            let want = CHUNK.max(carry.len());
            let mut next = BytesMut::with_capacity(carry.len() + want);
            next.extend_from_slice(carry);
            next.resize(carry.len() + want, 0);
            let n = read_full_at(file, &mut next[carry.len()..], base + buf.len() as u64)?;
            if n == 0 {
                break;
            }
            next.truncate(carry.len() + n);
            prev = last_bytes(&prev, &buf[..at]);
            base += at as u64;
            at = 0;
            // Lines point into the buffer; a short read should not pin a mostly empty one.
            buf = if next.len() < next.capacity() / 2 {
                Bytes::copy_from_slice(&next)
            } else {
                next.freeze()
            };
        }
        Ok(Batch {
            end: base + at as u64,
            check: last_bytes(&prev, &buf[..at]),
            rest: buf.slice(at..),
            lines,
        })
    }

    /// The batch's lines are in the channel: move past them.
    pub fn commit(&mut self, batch: Batch) {
        self.pos = batch.end;
        self.ahead = batch.rest;
        self.check = batch.check;
    }

    /// A batch with no complete line: keep what it read, so the next look reads only what is
    /// new.
    pub fn keep_unfinished(&mut self, batch: Batch) {
        if batch.lines.is_empty() && batch.end == self.pos {
            self.ahead = batch.rest;
        }
    }

    /// The bytes after the last newline read so far (an unfinished last line).
    pub fn unfinished(&self) -> &Bytes {
        &self.ahead
    }
}

/// Opens `path` if the file there is `key` (it may have been replaced since it was listed).
fn open_if(path: &Path, key: FileKey) -> io::Result<Option<File>> {
    let file = File::open(path)?;
    let meta = file.metadata()?;
    Ok(((meta.dev(), meta.ino()) == key).then_some(file))
}

/// The last `CHECK_LEN` bytes of `prev` followed by `data`.
fn last_bytes(prev: &[u8], data: &[u8]) -> Vec<u8> {
    if data.len() >= CHECK_LEN {
        return data[data.len() - CHECK_LEN..].to_vec();
    }
    let keep = CHECK_LEN - data.len();
    let mut out = prev[prev.len().saturating_sub(keep)..].to_vec();
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn key_of(path: &Path) -> FileKey {
        let m = std::fs::metadata(path).unwrap();
        (m.dev(), m.ino())
    }

    fn bodies(b: &Batch) -> Vec<&[u8]> {
        b.lines.iter().map(|l| &l.body[..]).collect()
    }

    #[test]
    fn complete_lines_only_with_offsets_and_crlf() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"one\r\ntwo\n\nthree").unwrap();
        let mut t = Tail::open(&path, key_of(&path), 0, 0).unwrap().unwrap();
        let b = t.read_batch(10).unwrap();
        assert_eq!(bodies(&b), vec![&b"one"[..], b"two", b""]);
        assert_eq!(
            b.lines.iter().map(|l| l.offset).collect::<Vec<_>>(),
            vec![0, 5, 9]
        );
        assert_eq!(b.end, 10);
        t.commit(b);
        assert_eq!(t.unfinished(), &Bytes::from_static(b"three"));
        // The unfinished line waits for its newline, then comes whole.
        assert!(t.read_batch(10).unwrap().lines.is_empty());
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b" and more\nfour\n")
            .unwrap();
        let b = t.read_batch(10).unwrap();
        assert_eq!(bodies(&b), vec![&b"three and more"[..], b"four"]);
        assert_eq!(b.lines[0].offset, 10);
        t.commit(b);
        assert_eq!(t.pos, 30);
        assert!(t.pos_follows_line_end());
    }

    #[test]
    fn batches_are_bounded_and_an_uncommitted_batch_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let text: String = (0..10_000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, &text).unwrap();
        let mut t = Tail::open(&path, key_of(&path), 0, 0).unwrap().unwrap();
        let first = t.read_batch(100).unwrap();
        let again = t.read_batch(100).unwrap();
        assert_eq!(first.lines, again.lines);
        let mut n = 0;
        loop {
            let b = t.read_batch(777).unwrap();
            if b.lines.is_empty() {
                break;
            }
            for l in &b.lines {
                assert_eq!(&l.body[..], format!("line {n}").as_bytes());
                n += 1;
            }
            t.commit(b);
        }
        assert_eq!(n, 10_000);
        assert_eq!(t.pos, text.len() as u64);
    }

    #[test]
    fn a_line_longer_than_a_read_is_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let long = vec![b'x'; CHUNK * 3 + 17];
        let mut data = long.clone();
        data.extend_from_slice(b"\nshort\n");
        std::fs::write(&path, &data).unwrap();
        let t = Tail::open(&path, key_of(&path), 0, 0).unwrap().unwrap();
        let b = t.read_batch(10).unwrap();
        assert_eq!(bodies(&b), vec![&long[..], b"short"]);
    }

    #[test]
    fn a_rewritten_file_is_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"aaaa 1\naaaa 2\n").unwrap();
        let mut t = Tail::open(&path, key_of(&path), 0, 0).unwrap().unwrap();
        let b = t.read_batch(10).unwrap();
        t.commit(b);
        assert!(t.unchanged_before_pos().unwrap());
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"aaaa 3\n")
            .unwrap();
        assert!(
            t.unchanged_before_pos().unwrap(),
            "appending changes nothing"
        );
        // copytruncate, then more than the old size written before anyone looked.
        std::fs::write(&path, b"bbbb 1\nbbbb 2\nbbbb 3\nbbbb 4\n").unwrap();
        assert!(!t.unchanged_before_pos().unwrap());
        t.restart();
        let b = t.read_batch(10).unwrap();
        assert_eq!(b.lines.len(), 4);
    }

    #[test]
    fn check_bytes_span_batches() {
        assert_eq!(last_bytes(b"abc", b"de"), b"abcde");
        let long = [b'z'; 40];
        assert_eq!(last_bytes(b"abc", &long).len(), CHECK_LEN);
        let prev = [b'p'; CHECK_LEN];
        let got = last_bytes(&prev, b"xy");
        assert_eq!(got.len(), CHECK_LEN);
        assert!(got.ends_with(b"pxy"));
    }
}
