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
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(WalError::io("fsync directory", dir))
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
