//! One segment file: allocate, map, append space, seal, sync (`wal-format.md` §2).
//!
//! A segment is created fully allocated (`fallocate`, or explicit zeroes where the filesystem
//! cannot), under a temporary name, synced, then renamed into place, so the directory only ever
//! shows complete segments. The file is never truncated or resized afterwards: a mapping can
//! therefore never point past the end of its file, which is what would raise SIGBUS. Recycled
//! segments keep their size and are reused in place.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{MmapOptions, MmapRaw};

use super::durable_file::{overwrite_in_place, sync_parent_dir};
use super::error::{Result, WalError};
use super::frame::{le_u32, le_u64};
use super::log_id::LogId;

/// Bytes reserved for the segment header; frames start here.
pub const SEGMENT_HEADER_LEN: usize = 4096;
pub const SEGMENT_MAGIC: &[u8; 8] = b"WEIRWAL\0";
pub const SEGMENT_VERSION: u32 = 1;
/// Smallest allowed segment: the header page plus one page of frames.
pub const MIN_SEGMENT_LEN: u64 = 2 * SEGMENT_HEADER_LEN as u64;
const SEAL_MAGIC: &[u8; 4] = b"SEAL";

/// How appended frames reach the segment file and how `commit` makes them durable. See
/// `wal-format.md` §6 and the `wal` and `agent` benches.
///
/// The default writes with `pwrite`. Measured on this project's ext4 VM (README, "Benchmarks"):
/// frames stored through the shared mapping cost 1.5–7 ms per 100 KiB commit, growing as the
/// segment fills, whichever sync follows, because writeback of pages dirtied through a mapping
/// must write-protect them again (page-table walks and TLB shootdowns) and every next store
/// faults them writable; the same bytes written with `pwrite` sync in a steady 0.5 ms. Readers
/// still read zero-copy through the map: Linux has one page cache, so `pwrite`'s bytes are what
/// the mapping shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SyncMethod {
    /// Frames are written with `pwrite` and made durable with `fdatasync`.
    #[default]
    Pwrite,
    /// Frames are copied into the mapping and made durable with `msync(MS_SYNC)` of the dirty
    /// byte range.
    Msync,
    /// Frames are copied into the mapping and made durable with `fdatasync` of the file.
    Fdatasync,
}

impl SyncMethod {
    /// Whether appends store into the mapping (else they are written with `pwrite`).
    pub fn writes_through_map(self) -> bool {
        !matches!(self, SyncMethod::Pwrite)
    }
}

/// What a sealed segment records about its contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seal {
    /// Byte position just after the last frame.
    pub end_pos: u64,
    /// One past the offset of the last event.
    pub next_offset: u64,
}

pub fn segment_file_name(base_offset: u64) -> String {
    format!("{base_offset:020}.seg")
}

/// The base offset a segment file name encodes, if it is one.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// Encodes a segment header page (`wal-format.md` §2.1) with an empty seal. `log` is `None`
/// only to write what a weir before log ids wrote (tests).
pub fn encode_header(base_offset: u64, segment_len: u64, log: Option<LogId>) -> Vec<u8> {
    let mut h = vec![0u8; SEGMENT_HEADER_LEN];
    h[0..8].copy_from_slice(SEGMENT_MAGIC);
    h[8..12].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&(SEGMENT_HEADER_LEN as u32).to_le_bytes());
    h[16..24].copy_from_slice(&base_offset.to_le_bytes());
    h[24..32].copy_from_slice(&segment_len.to_le_bytes());
    if let Some(log) = log {
        h[32..48].copy_from_slice(&log.0);
    }
    let crc = crc32fast::hash(&h[0..60]);
    h[60..64].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Encodes the 32-byte seal block that goes at header bytes 64..96.
pub fn encode_seal(header: &[u8], seal: Seal) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[0..8].copy_from_slice(&seal.end_pos.to_le_bytes());
    s[8..16].copy_from_slice(&seal.next_offset.to_le_bytes());
    s[24..28].copy_from_slice(SEAL_MAGIC);
    let crc = seal_crc(header, &s);
    s[28..32].copy_from_slice(&crc.to_le_bytes());
    s
}

/// The seal's CRC also covers the header's first 60 bytes, binding it to this segment's identity.
fn seal_crc(header: &[u8], seal: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&header[0..60]);
    h.update(&seal[0..28]);
    h.finalize()
}

/// The fields of a valid header page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderInfo {
    pub base_offset: u64,
    pub segment_len: u64,
    /// The log the segment was made for; `None` in a segment made before logs had ids.
    pub log: Option<LogId>,
    pub seal: Option<Seal>,
}

/// Checks a header page (at least 96 bytes). Errors name the byte position and what is wrong.
pub fn decode_header(h: &[u8]) -> Result<HeaderInfo, (u64, String)> {
    if h.len() < 96 {
        return Err((0, format!("header truncated: {} bytes", h.len())));
    }
    if &h[0..8] != SEGMENT_MAGIC {
        return Err((0, "not a weir segment (bad magic)".into()));
    }
    let version = le_u32(&h[8..12]);
    if version != SEGMENT_VERSION {
        return Err((8, format!("unsupported segment format version {version}")));
    }
    if le_u32(&h[12..16]) as usize != SEGMENT_HEADER_LEN {
        return Err((12, "unexpected header length".into()));
    }
    let crc = crc32fast::hash(&h[0..60]);
    if crc != le_u32(&h[60..64]) {
        return Err((60, "segment header checksum mismatch".into()));
    }
    let seal_bytes = &h[64..96];
    let seal = (&seal_bytes[24..28] == SEAL_MAGIC
        && seal_crc(h, seal_bytes) == le_u32(&seal_bytes[28..32]))
    .then(|| Seal {
        end_pos: le_u64(&seal_bytes[0..8]),
        next_offset: le_u64(&seal_bytes[8..16]),
    });
    Ok(HeaderInfo {
        base_offset: le_u64(&h[16..24]),
        segment_len: le_u64(&h[24..32]),
        log: LogId::read(&h[32..48]),
        seal,
    })
}

/// An open, mapped segment.
#[derive(Debug)]
pub struct Segment {
    path: PathBuf,
    base_offset: u64,
    file: File,
    map: MmapRaw,
    len: usize,
    writable: bool,
    seal: OnceLock<Seal>,
    /// The log id in the header (`None`: made before logs had ids).
    log: Option<LogId>,
    /// Frames in `[SEGMENT_HEADER_LEN, visible_end)` are complete and will never change again
    /// while this mapping lives; readers may look only there.
    visible_end: AtomicU64,
    /// Position of this segment's first frame in the log's byte stream since open, for
    /// byte-capacity accounting.
    pub logical_start: u64,
}

impl Segment {
    /// Creates segment `base_offset` of log `log` in `dir`, reusing `spare` (a retired segment
    /// of the same length) when given, else allocating a new file.
    pub fn create(
        dir: &Path,
        base_offset: u64,
        len: u64,
        spare: Option<&Path>,
        log: LogId,
    ) -> Result<Segment> {
        let path = dir.join(segment_file_name(base_offset));
        let header = encode_header(base_offset, len, Some(log));
        match spare {
            Some(spare) => {
                let f = OpenOptions::new()
                    .write(true)
                    .open(spare)
                    .map_err(WalError::io("open spare segment", spare))?;
                // Checked before the header is rewritten and the file renamed into place: a
                // segment file whose header disagrees with its length is refused at open.
                let spare_len = f
                    .metadata()
                    .map_err(WalError::io("stat spare segment", spare))?
                    .len();
                if spare_len != len {
                    return Err(WalError::io("reuse spare segment", spare)(
                        std::io::Error::other(format!(
                            "it has {spare_len} bytes, the segment needs {len}"
                        )),
                    ));
                }
                f.write_all_at(&header, 0)
                    .map_err(WalError::io("write header", spare))?;
                f.sync_data().map_err(WalError::io("fdatasync", spare))?;
                std::fs::rename(spare, &path).map_err(WalError::io("rename", spare))?;
            }
            None => {
                let tmp = dir.join(format!("{}.tmp", segment_file_name(base_offset)));
                let f = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&tmp)
                    .map_err(WalError::io("create", &tmp))?;
                overwrite_in_place(&f);
                if let Err(e) = allocate(&f, len).and_then(|_| f.write_all_at(&header, 0)) {
                    let _ = std::fs::remove_file(&tmp);
                    if e.raw_os_error() == Some(rustix::io::Errno::FBIG.raw_os_error()) {
                        return Err(WalError::io("allocate", &tmp)(std::io::Error::new(
                            e.kind(),
                            format!(
                                "{e}: a segment of {len} bytes is larger than this process may \
                                 write (`ulimit -f`) or the filesystem allows"
                            ),
                        )));
                    }
                    return Err(WalError::io("allocate", &tmp)(e));
                }
                let placed = f
                    .sync_all()
                    .map_err(WalError::io("fsync", &tmp))
                    .and_then(|()| {
                        std::fs::rename(&tmp, &path).map_err(WalError::io("rename", &tmp))
                    });
                if let Err(e) = placed {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e);
                }
            }
        }
        sync_parent_dir(&path)?;
        let seg = Segment::open(&path, true)?;
        seg.visible_end
            .store(SEGMENT_HEADER_LEN as u64, Ordering::Release);
        Ok(seg)
    }

    /// Opens and validates an existing segment. A read-only open (for inspection tools) treats the
    /// whole file as readable; a writable one exposes nothing until recovery says where the valid
    /// frames end (or the seal does).
    pub fn open(path: &Path, writable: bool) -> Result<Segment> {
        let file = OpenOptions::new()
            .read(true)
            .write(writable)
            .open(path)
            .map_err(WalError::io("open", path))?;
        let file_len = file.metadata().map_err(WalError::io("stat", path))?.len();
        let corrupt = |pos: u64, reason: String| WalError::Corrupt {
            path: path.to_owned(),
            pos,
            reason,
        };
        let mut header = vec![0u8; SEGMENT_HEADER_LEN];
        if file_len < MIN_SEGMENT_LEN {
            return Err(corrupt(
                0,
                format!("file is {file_len} bytes, smaller than any segment (truncated?)"),
            ));
        }
        file.read_exact_at(&mut header, 0)
            .map_err(WalError::io("read header", path))?;
        let info = decode_header(&header).map_err(|(pos, reason)| {
            if pos == 8 {
                WalError::UnsupportedVersion {
                    path: path.to_owned(),
                    found: le_u32(&header[8..12]),
                    supported: SEGMENT_VERSION,
                }
            } else {
                corrupt(pos, reason)
            }
        })?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if parse_segment_file_name(name) != Some(info.base_offset) {
            return Err(corrupt(
                16,
                format!(
                    "header says base offset {} but the file name does not",
                    info.base_offset
                ),
            ));
        }
        if info.segment_len != file_len {
            return Err(corrupt(
                24,
                format!(
                    "header says {} bytes but the file has {file_len} (truncated or extended by something else)",
                    info.segment_len
                ),
            ));
        }
        let len = usize::try_from(file_len)
            .map_err(|_| corrupt(24, "segment larger than the address space".into()))?;
        let opts = {
            let mut o = MmapOptions::new();
            o.len(len);
            o
        };
        let map = if writable {
            opts.map_raw(&file)
        } else {
            opts.map_raw_read_only(&file)
        }
        .map_err(WalError::io("mmap", path))?;
        let seal = OnceLock::new();
        let mut visible = if writable {
            SEGMENT_HEADER_LEN as u64
        } else {
            file_len
        };
        if let Some(s) = info.seal {
            if s.end_pos < SEGMENT_HEADER_LEN as u64
                || s.end_pos > file_len
                || s.next_offset < info.base_offset
            {
                return Err(corrupt(64, format!("seal is out of range: {s:?}")));
            }
            visible = s.end_pos;
            let _ = seal.set(s);
        }
        Ok(Segment {
            path: path.to_owned(),
            base_offset: info.base_offset,
            file,
            map,
            len,
            writable,
            seal,
            log: info.log,
            visible_end: AtomicU64::new(visible),
            logical_start: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn base_offset(&self) -> u64 {
        self.base_offset
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The log the segment was made for (`None`: before logs had ids).
    pub fn log_id(&self) -> Option<LogId> {
        self.log
    }

    pub fn seal(&self) -> Option<Seal> {
        self.seal.get().copied()
    }

    pub fn visible_end(&self) -> usize {
        self.visible_end.load(Ordering::Acquire) as usize
    }

    /// Publishes `[.., end)` to readers. Callers guarantee those bytes are complete frames that
    /// will not be written again.
    pub fn set_visible_end(&self, end: usize) {
        self.visible_end.fetch_max(end as u64, Ordering::Release);
    }

    /// The readable bytes `[start, end)`, clamped to what is visible. Empty if `start` is not in
    /// the frame area.
    pub fn readable(&self, start: usize, end: usize) -> &[u8] {
        let end = end.min(self.visible_end()).min(self.len);
        if start < SEGMENT_HEADER_LEN || start >= end {
            return &[];
        }
        // SAFETY: the mapping is `self.len` bytes of a file that is never truncated or shrunk
        // (see the module doc), and `start..end` lies inside it. Bytes below `visible_end` are
        // complete frames that this process never writes again: appends only go above it and the
        // header page (the one rewritten place) is excluded by `start >= SEGMENT_HEADER_LEN`. The
        // Acquire load of `visible_end` pairs with the Release store made after the bytes were
        // written, so they are seen whole. A read-only inspection map may race with another
        // process still appending; it only ever sees bytes that then fail their CRC.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(start), end - start) }
    }

    /// Where `part` (a slice previously obtained from [`Segment::readable`]) starts in the file.
    pub fn position_of(&self, part: &[u8]) -> Option<usize> {
        let start = (part.as_ptr() as usize).checked_sub(self.map.as_ptr() as usize)?;
        (start + part.len() <= self.len).then_some(start)
    }

    /// The whole file image, for the open-time recovery scan. Taking `&mut self` proves the
    /// segment is not shared yet, so no writer can be filling any part of it.
    pub fn recovery_image(&mut self) -> &[u8] {
        // SAFETY: the mapping covers `self.len` bytes of a file that is never shrunk, and the
        // exclusive borrow means no `writable_slice` of this segment can be alive.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr(), self.len) }
    }

    /// Lets go of this process's hold on the map's pages in `[from, to)` (whole pages within
    /// it). Pages read through the map count in the process's resident memory for as long as
    /// the segment stays mapped: with Flume's 2 GiB `maxFileSize`, an agent read 1.26 GB
    /// resident after a restart (the recovery scan) and would grow as much while a sink reads
    /// a large active segment. Only advice: if it fails, the pages just stay.
    pub fn release_pages(&self, from: usize, to: usize) {
        const PAGE: usize = 4096;
        let from = from.div_ceil(PAGE) * PAGE;
        let to = to.min(self.len) / PAGE * PAGE;
        if to <= from {
            return;
        }
        // SAFETY: the mapping is a shared mapping of a file (never private or anonymous), so
        // MADV_DONTNEED drops only this process's page-table entries: a dirty page's state
        // passes to the page cache, and the next access maps the very same bytes again from the
        // page cache or the file. Slices still borrowed from the range (events handed out
        // zero-copy, other readers) therefore see no change, which is what the unchecked
        // advice requires; nothing is zeroed, as it would be in a private mapping. The range
        // lies inside the mapping (`to` is capped at `self.len`).
        let released = unsafe {
            self.map
                .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, from, to - from)
        };
        if let Err(e) = released {
            tracing::debug!(segment = %self.path.display(), error = %e, "madvise(DONTNEED) failed");
        }
    }

    /// The bytes `[pos, pos + len)` for the writer to fill.
    ///
    /// # Safety
    /// The caller must be the log's only writer (hold the append lock), and the range must lie
    /// at or above `visible_end` and inside the segment, so no reader can be looking at it and no
    /// other `&mut` to it exists.
    // The whole point is handing out `&mut` from a shared segment; exclusivity is the caller's
    // documented obligation (the writer lock), which is why this is `unsafe`.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn writable_slice(&self, pos: usize, len: usize) -> &mut [u8] {
        debug_assert!(self.writable);
        debug_assert!(pos >= self.visible_end() && pos + len <= self.len);
        // SAFETY: delegated to the caller as documented above; the range is inside the mapping.
        unsafe { std::slice::from_raw_parts_mut(self.map.as_mut_ptr().add(pos), len) }
    }

    /// Writes `bytes` at `pos` with `pwrite`. Same contract as [`Segment::writable_slice`]: the
    /// caller is the only writer and the range lies at or above `visible_end`, inside the
    /// segment, so no reader looks at these bytes while they change.
    pub fn write_at(&self, pos: usize, bytes: &[u8]) -> Result<()> {
        debug_assert!(self.writable);
        debug_assert!(pos >= self.visible_end() && pos + bytes.len() <= self.len);
        self.file
            .write_all_at(bytes, pos as u64)
            .map_err(WalError::io("write", &self.path))
    }

    /// Makes bytes `[from, to)` durable.
    /// Whether the file no longer has a name (deleted from outside while mapped): what is
    /// written to it is gone at the next open.
    pub fn unlinked(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        self.file.metadata().is_ok_and(|m| m.nlink() == 0)
    }

    pub fn sync(&self, from: usize, to: usize, method: SyncMethod) -> Result<()> {
        if from >= to {
            return Ok(());
        }
        match method {
            SyncMethod::Msync => self
                .map
                .flush_range(from, to - from)
                .map_err(WalError::io("msync", &self.path)),
            SyncMethod::Pwrite | SyncMethod::Fdatasync => self
                .file
                .sync_data()
                .map_err(WalError::io("fdatasync", &self.path)),
        }
    }

    /// Records in the header that the segment ends at `seal` and syncs it. The frames up to
    /// `seal.end_pos` must already be durable, so a sealed segment never vouches for bytes that a
    /// crash could still tear.
    pub fn write_seal(&self, seal: Seal) -> Result<()> {
        // Frames first, then the seal that vouches for them: two syncs, once per segment.
        self.file
            .sync_data()
            .map_err(WalError::io("fdatasync", &self.path))?;
        let header = encode_header(self.base_offset, self.len as u64, self.log);
        let block = encode_seal(&header, seal);
        self.file
            .write_all_at(&block, 64)
            .map_err(WalError::io("write seal", &self.path))?;
        self.file
            .sync_data()
            .map_err(WalError::io("fdatasync", &self.path))?;
        let _ = self.seal.set(seal);
        self.set_visible_end(seal.end_pos as usize);
        Ok(())
    }
}

/// Reserves `len` bytes of real disk space for `f`, so that no later store through the mapping
/// can hit a hole (and SIGBUS on a full disk).
fn allocate(f: &File, len: u64) -> std::io::Result<()> {
    match rustix::fs::fallocate(f, rustix::fs::FallocateFlags::empty(), 0, len) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::OPNOTSUPP || e == rustix::io::Errno::NOSYS => {
            // Filesystems without fallocate: write real zeroes (never a sparse set_len).
            let zeros = vec![0u8; 1 << 20];
            let mut pos = 0u64;
            while pos < len {
                let n = (len - pos).min(zeros.len() as u64) as usize;
                f.write_all_at(&zeros[..n], pos)?;
                pos += n as u64;
            }
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Bytes available to unprivileged users on the filesystem holding `dir`.
pub fn available_space(dir: &Path) -> std::io::Result<u64> {
    let st = rustix::fs::statvfs(dir)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_sort_and_parse() {
        assert_eq!(segment_file_name(42), "00000000000000000042.seg");
        assert_eq!(
            parse_segment_file_name("00000000000000000042.seg"),
            Some(42)
        );
        assert_eq!(parse_segment_file_name("42.seg"), None);
        assert_eq!(
            parse_segment_file_name("00000000000000000042.seg.tmp"),
            None
        );
        assert_eq!(parse_segment_file_name("99999999999999999999.seg"), None);
    }

    #[test]
    fn create_open_seal() {
        let dir = tempfile::tempdir().unwrap();
        let seg = Segment::create(dir.path(), 7, MIN_SEGMENT_LEN, None, LogId([1; 16])).unwrap();
        assert_eq!(seg.base_offset(), 7);
        assert_eq!(seg.len() as u64, MIN_SEGMENT_LEN);
        assert!(seg.seal().is_none());
        let seal = Seal {
            end_pos: 4096,
            next_offset: 7,
        };
        seg.write_seal(seal).unwrap();
        drop(seg);
        let seg = Segment::open(&dir.path().join(segment_file_name(7)), false).unwrap();
        // The seal's checksum covers the header with its log id.
        assert_eq!(seg.seal(), Some(seal));
        assert_eq!(seg.log_id(), Some(LogId([1; 16])));
        // No leftovers from creation.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_spare_of_another_length_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        drop(Segment::create(dir.path(), 0, MIN_SEGMENT_LEN, None, LogId([1; 16])).unwrap());
        let spare = dir.path().join("00000000000000000000.spare");
        std::fs::rename(dir.path().join(segment_file_name(0)), &spare).unwrap();
        let before = std::fs::read(&spare).unwrap();
        let Err(e) = Segment::create(
            dir.path(),
            5,
            2 * MIN_SEGMENT_LEN,
            Some(&spare),
            LogId([1; 16]),
        ) else {
            panic!("a spare of another length was reused");
        };
        assert!(e.to_string().contains("the segment needs"), "{e}");
        assert_eq!(std::fs::read(&spare).unwrap(), before);
        assert!(!dir.path().join(segment_file_name(5)).exists());
    }

    #[test]
    fn damaged_headers_are_named() {
        let dir = tempfile::tempdir().unwrap();
        drop(Segment::create(dir.path(), 0, MIN_SEGMENT_LEN, None, LogId([1; 16])).unwrap());
        let path = dir.path().join(segment_file_name(0));
        let good = std::fs::read(&path).unwrap();
        for (pos, needle) in [(0usize, "magic"), (17, "checksum"), (9, "version")] {
            let mut b = good.clone();
            b[pos] ^= 1;
            std::fs::write(&path, &b).unwrap();
            let err = Segment::open(&path, false).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
        std::fs::write(&path, &good[..5000]).unwrap();
        let err = Segment::open(&path, false).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
    }
}
