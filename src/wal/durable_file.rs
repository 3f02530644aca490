//! Filesystem steps the log's files (segments, checkpoint and meta slot files) share: making a
//! create, rename or unlink durable, and keeping later overwrites from needing new space on a
//! copy-on-write filesystem.

use std::fs::File;
use std::path::Path;

use super::error::{Result, WalError};

/// `fsync` of the directory holding `path`, so a create, rename or unlink in it survives power
/// loss.
pub fn sync_parent_dir(path: &Path) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    sync_dir(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    })
}

/// `fsync` of the directory `dir`, so the creates, renames and unlinks in it survive power loss.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(WalError::io("fsync directory", dir))
}

/// `create_dir_all`, with each directory it creates made durable (its parent fsynced): the
/// files inside are synced into it, but a power cut before the new directory's own entry
/// reached the disk would take the whole log or checkpoint with it (audit 40 F2).
pub fn create_dir_all(dir: &Path) -> Result<()> {
    let mut missing = Vec::new();
    let mut at = dir;
    while !at.exists() {
        missing.push(at);
        match at.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => at = parent,
            _ => break,
        }
    }
    std::fs::create_dir_all(dir).map_err(WalError::io("create directory", dir))?;
    for created in missing.iter().rev() {
        sync_parent_dir(created)?;
    }
    Ok(())
}

/// Asks the filesystem to overwrite the empty file `f` in place (`FS_NOCOW_FL`). On a copy-on-write
/// filesystem (btrfs) every overwrite needs new blocks, so `allocate` alone would not keep
/// later writes into the segment from failing with ENOSPC on a full disk, which would poison
/// the log (a failed write of appended frames) until a restart; journald marks its journal
/// files the same way. The flag only takes on an empty file, hence before `allocate`. It also
/// turns off btrfs's own data checksums, which the frames' CRCs make up for. Filesystems that
/// overwrite in place anyway refuse the flag, and that is fine.
pub fn overwrite_in_place(f: &File) {
    use rustix::fs::IFlags;
    if let Ok(flags) = rustix::fs::ioctl_getflags(f)
        && !flags.contains(IFlags::NOCOW)
    {
        let _ = rustix::fs::ioctl_setflags(f, flags | IFlags::NOCOW);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nested directories are all created, relative ones included; an existing one is fine.
    #[test]
    fn create_dir_all_makes_every_missing_level() {
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("a/b/c");
        create_dir_all(&deep).unwrap();
        assert!(deep.is_dir());
        create_dir_all(&deep).unwrap();
        let file = tmp.path().join("a/f");
        std::fs::write(&file, b"x").unwrap();
        let e = create_dir_all(&file.join("d")).unwrap_err().to_string();
        assert!(e.contains("create directory") && e.contains("a/f/d"), "{e}");
    }
}
