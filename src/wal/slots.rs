//! A small record kept durably in a file of two CRC-protected 512-byte slots
//! (`wal-format.md` §5). Consumer checkpoints and the log's meta record both use it.
//!
//! Each write goes to the slot that does *not* hold the newest valid record and is followed by
//! `fdatasync`, so a write torn by a crash damages at most the slot being written and the reader
//! falls back to the other one. Slots are sector-aligned, so a torn 512-byte sector cannot touch
//! both. This costs one `pwrite` + `fdatasync`, versus write + fsync + rename + directory fsync.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::durable_file::{self, overwrite_in_place, sync_parent_dir};
use super::error::{Result, WalError};
use super::frame::{le_u32, le_u64};

pub const SLOT_LEN: usize = 512;
pub const SLOT_FILE_LEN: usize = 2 * SLOT_LEN;
const SLOT_HEADER_LEN: usize = 16;
/// Largest payload a slot can hold (header and trailing CRC take the rest).
pub const MAX_SLOT_PAYLOAD: usize = SLOT_LEN - SLOT_HEADER_LEN - 4;
pub const SLOT_VERSION: u16 = 1;

/// The newest valid record found in a slot file's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRecord<'a> {
    pub slot: usize,
    pub sequence: u64,
    pub payload: &'a [u8],
}

/// Why a slot is not valid, for diagnostics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    #[error("slot truncated")]
    Truncated,
    #[error("wrong magic")]
    BadMagic,
    #[error("format version {0} is not supported")]
    BadVersion(u16),
    #[error("payload length {0} exceeds the slot")]
    BadLength(usize),
    #[error("checksum mismatch")]
    BadCrc,
}

/// Decodes one slot.
pub fn decode_slot<'a>(slot: &'a [u8], magic: &[u8; 4]) -> Result<(u64, &'a [u8]), SlotError> {
    if slot.len() < SLOT_HEADER_LEN + 4 {
        return Err(SlotError::Truncated);
    }
    if &slot[0..4] != magic {
        return Err(SlotError::BadMagic);
    }
    let version = u16::from_le_bytes([slot[4], slot[5]]);
    if version != SLOT_VERSION {
        return Err(SlotError::BadVersion(version));
    }
    let len = u16::from_le_bytes([slot[6], slot[7]]) as usize;
    if len > MAX_SLOT_PAYLOAD || SLOT_HEADER_LEN + len + 4 > slot.len() {
        return Err(SlotError::BadLength(len));
    }
    let end = SLOT_HEADER_LEN + len;
    if crc32fast::hash(&slot[..end]) != le_u32(&slot[end..end + 4]) {
        return Err(SlotError::BadCrc);
    }
    Ok((le_u64(&slot[8..16]), &slot[SLOT_HEADER_LEN..end]))
}

/// Picks the newest valid record of a two-slot file image; `None` if neither slot is valid.
pub fn decode_slots<'a>(bytes: &'a [u8], magic: &[u8; 4]) -> Option<SlotRecord<'a>> {
    (0..2)
        .filter_map(|slot| {
            let b = bytes.get(slot * SLOT_LEN..(slot + 1) * SLOT_LEN)?;
            let (sequence, payload) = decode_slot(b, magic).ok()?;
            Some(SlotRecord {
                slot,
                sequence,
                payload,
            })
        })
        .max_by_key(|r| r.sequence)
}

/// Encodes one slot image.
pub fn encode_slot(magic: &[u8; 4], sequence: u64, payload: &[u8]) -> [u8; SLOT_LEN] {
    assert!(payload.len() <= MAX_SLOT_PAYLOAD, "slot payload too long");
    let mut s = [0u8; SLOT_LEN];
    s[0..4].copy_from_slice(magic);
    s[4..6].copy_from_slice(&SLOT_VERSION.to_le_bytes());
    s[6..8].copy_from_slice(&(payload.len() as u16).to_le_bytes());
    s[8..16].copy_from_slice(&sequence.to_le_bytes());
    let end = SLOT_HEADER_LEN + payload.len();
    s[SLOT_HEADER_LEN..end].copy_from_slice(payload);
    let crc = crc32fast::hash(&s[..end]);
    s[end..end + 4].copy_from_slice(&crc.to_le_bytes());
    s
}

/// An open two-slot file.
#[derive(Debug)]
pub struct SlotFile {
    file: File,
    path: PathBuf,
    magic: [u8; 4],
    sequence: u64,
    /// Slot holding the newest valid record; the next write goes to the other one.
    current: usize,
}

impl SlotFile {
    /// Opens `path`, returning the file and its newest valid payload, or `None` for the payload
    /// when the file does not exist or holds no valid slot.
    pub fn open(path: &Path, magic: &[u8; 4]) -> Result<Option<(SlotFile, Vec<u8>)>> {
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(WalError::io("open", path)(e)),
        };
        let mut bytes = vec![0u8; SLOT_FILE_LEN];
        let n = read_up_to(&file, &mut bytes).map_err(WalError::io("read", path))?;
        let Some(rec) = decode_slots(&bytes[..n], magic) else {
            return Ok(None);
        };
        let payload = rec.payload.to_vec();
        Ok(Some((
            SlotFile {
                file,
                path: path.to_owned(),
                magic: *magic,
                sequence: rec.sequence,
                current: rec.slot,
            },
            payload,
        )))
    }

    /// Creates (or replaces) `path` holding `payload`, durably: written to a temporary file,
    /// synced, renamed into place and the directory synced.
    pub fn create(path: &Path, magic: &[u8; 4], payload: &[u8]) -> Result<SlotFile> {
        let tmp = path.with_extension("tmp");
        let mut image = vec![0u8; SLOT_FILE_LEN];
        image[..SLOT_LEN].copy_from_slice(&encode_slot(magic, 1, payload));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(WalError::io("create", &tmp))?;
        // Slots are rewritten in place, for ever: on btrfs, without this, each rewrite would
        // need new blocks and fail on a full disk.
        overwrite_in_place(&file);
        file.write_all_at(&image, 0)
            .map_err(WalError::io("write", &tmp))?;
        file.sync_all().map_err(WalError::io("fsync", &tmp))?;
        std::fs::rename(&tmp, path).map_err(WalError::io("rename", &tmp))?;
        sync_parent_dir(path)?;
        Ok(SlotFile {
            file,
            path: path.to_owned(),
            magic: *magic,
            sequence: 1,
            current: 0,
        })
    }

    /// Durably replaces the record: writes the other slot and `fdatasync`s. A file deleted
    /// from outside (its directory removed under a running agent) is made again at its path,
    /// directory and all: written on into the unlinked file, the record would be lost at the
    /// next open, and everything after the oldest retained event delivered again.
    pub fn write(&mut self, payload: &[u8]) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        let next = 1 - self.current;
        let image = encode_slot(&self.magic, self.sequence + 1, payload);
        self.file
            .write_all_at(&image, (next * SLOT_LEN) as u64)
            .map_err(WalError::io("write", &self.path))?;
        self.file
            .sync_data()
            .map_err(WalError::io("fdatasync", &self.path))?;
        self.sequence += 1;
        self.current = next;
        if self.file.metadata().is_ok_and(|m| m.nlink() == 0) {
            tracing::error!(file = %self.path.display(), "this file was deleted from outside while in use; writing it again");
            if let Some(dir) = self.path.parent() {
                durable_file::create_dir_all(dir)?;
            }
            *self = SlotFile::create(&self.path, &self.magic, payload)?;
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn read_up_to(file: &File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], n as u64)? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_valid_slot_wins_and_torn_write_falls_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.ckpt");
        let mut f = SlotFile::create(&path, b"TEST", b"one").unwrap();
        f.write(b"two").unwrap();
        f.write(b"three").unwrap();
        let (_, p) = SlotFile::open(&path, b"TEST").unwrap().unwrap();
        assert_eq!(p, b"three");

        // Tear the slot holding "three" (slot 0: written 1st and 3rd): the older "two" survives.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[SLOT_HEADER_LEN + 2] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let (mut f, p) = SlotFile::open(&path, b"TEST").unwrap().unwrap();
        assert_eq!(p, b"two");
        // The next write overwrites the damaged slot, not the good one.
        f.write(b"four").unwrap();
        let (_, p) = SlotFile::open(&path, b"TEST").unwrap().unwrap();
        assert_eq!(p, b"four");
    }

    #[test]
    fn garbage_and_missing_files_have_no_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.ckpt");
        assert!(SlotFile::open(&path, b"TEST").unwrap().is_none());
        std::fs::write(&path, vec![0xAB; 700]).unwrap();
        assert!(SlotFile::open(&path, b"TEST").unwrap().is_none());
        assert!(decode_slots(&[], b"TEST").is_none());
    }
}
