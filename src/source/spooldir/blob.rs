//! Cutting a spooled file into events as Flume's BLOB deserializer
//! (`org.apache.flume.sink.solr.morphline.BlobDeserializer`) does: the file's bytes, as they
//! are, in events of `deserializer.maxBlobLength` bytes, the last one shorter. A file of an
//! exact multiple of that length ends with a full event (no empty one follows), and an empty
//! file makes no event. No headers of its own.
//!
//! Each event's end is a byte offset, so a restart resumes at the first byte not committed.
//! Flume reads the same chunks (it logs "truncating BLOB event" at each full one, and the rest
//! of the file comes in the following events).

use std::fs::File;
use std::io;

use bytes::Bytes;

use super::deserializer::{After, BATCH_BYTES, Batch, Deserializer, Piece, Position};
use crate::source::read_full_at;

pub struct BlobReader {
    file: File,
    /// Nothing past this is read: the file's size when it was opened.
    len: u64,
    /// The first byte not read yet.
    at: u64,
    max: usize,
}

impl BlobReader {
    /// Reads `file` (whose size is `len`) from byte `start` in events of `max` bytes.
    pub fn new(file: File, len: u64, start: u64, max: usize) -> BlobReader {
        BlobReader {
            file,
            len,
            at: start,
            max: max.max(1),
        }
    }
}

impl Deserializer for BlobReader {
    fn read_batch(&mut self, max: usize) -> io::Result<Batch> {
        let mut pieces = Vec::new();
        let mut bytes = 0usize;
        loop {
            if self.at >= self.len {
                return Ok(Batch {
                    pieces,
                    after: After::End,
                });
            }
            if pieces.len() >= max || bytes >= BATCH_BYTES {
                return Ok(Batch {
                    pieces,
                    after: After::More,
                });
            }
            let want = (self.len - self.at).min(self.max as u64) as usize;
            let mut body = vec![0; want];
            let n = read_full_at(&self.file, &mut body, self.at)?;
            if n < want {
                // Shorter than when it was opened: read what there is. The source notices the
                // change when it looks at the file again.
                body.truncate(n);
                self.len = self.at + n as u64;
                if n == 0 {
                    continue;
                }
            }
            self.at += n as u64;
            bytes += n;
            pieces.push(Piece {
                body: Bytes::from(body),
                end: Position::at(self.at),
            });
        }
    }

    fn stat(&self) -> io::Result<std::fs::Metadata> {
        self.file.metadata()
    }

    fn offset(&self) -> u64 {
        self.at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every event of `data` read from `start` in batches of `batch`, with their end offsets.
    fn read_all(data: &[u8], start: u64, max: usize, batch: usize) -> Vec<(Vec<u8>, u64)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, data).unwrap();
        let mut r = BlobReader::new(File::open(&path).unwrap(), data.len() as u64, start, max);
        let mut out = Vec::new();
        loop {
            let b = r.read_batch(batch).unwrap();
            assert!(b.pieces.len() <= batch);
            for p in b.pieces {
                assert_eq!(p.end.records, 0);
                out.push((p.body.to_vec(), p.end.offset));
            }
            match b.after {
                After::More => {}
                After::End => return out,
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn chunks_of_max_bytes_the_last_shorter() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let got = read_all(&data, 0, 300, 2);
        let ends: Vec<u64> = got.iter().map(|(_, e)| *e).collect();
        assert_eq!(ends, [300, 600, 900, 1000]);
        assert_eq!(got.concat_bodies(), data);
        // One event for a file shorter than the maximum.
        assert_eq!(
            read_all(b"\x00\xffbinary", 0, 100, 10),
            [(b"\x00\xffbinary".to_vec(), 8)]
        );
    }

    #[test]
    fn an_exact_multiple_ends_with_a_full_event_and_an_empty_file_makes_none() {
        let data = vec![7u8; 600];
        let got = read_all(&data, 0, 200, 10);
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|(b, _)| b.len() == 200));
        assert!(read_all(b"", 0, 200, 10).is_empty());
    }

    #[test]
    fn resumes_at_a_committed_offset() {
        let data: Vec<u8> = (0..100u8).collect();
        let got = read_all(&data, 40, 25, 10);
        assert_eq!(got[0], ((40..65u8).collect::<Vec<_>>(), 65));
        assert_eq!(got.concat_bodies(), data[40..]);
        assert!(
            read_all(&data, 100, 25, 10).is_empty(),
            "at the end: nothing"
        );
    }

    #[test]
    fn a_file_that_shrank_is_read_to_its_new_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        let mut r = BlobReader::new(File::open(&path).unwrap(), 100, 0, 4);
        let b = r.read_batch(100).unwrap();
        let bodies: Vec<&[u8]> = b.pieces.iter().map(|p| &p.body[..]).collect();
        assert_eq!(bodies, [&b"0123"[..], b"4567", b"89"]);
        assert_eq!(b.after, After::End);
    }

    trait Concat {
        fn concat_bodies(&self) -> Vec<u8>;
    }

    impl Concat for Vec<(Vec<u8>, u64)> {
        fn concat_bodies(&self) -> Vec<u8> {
            self.iter().flat_map(|(b, _)| b.iter().copied()).collect()
        }
    }
}
