//! Small state files that must survive a crash whole (the file sources' positions): a file is
//! replaced by writing a temporary file, syncing it, renaming it over the old one and syncing
//! the directory, so after a crash it is the previous version or the new one, never a mix.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The temporary file [`replace`] writes before renaming it over `path`.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Replaces `path` with `bytes`, atomically and durably. A failure (a full disk) leaves `path`
/// as it was and no temporary file behind.
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = temp_path(path);
    let written = File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_parent(path)
}

/// `fsync` of the directory holding `path`: a rename, creation or removal in it is durable only
/// once the directory is synced.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// Moves an unusable state file to `<path>.corrupt`, where it is kept for inspection, so that
/// its source can start without it. Returns what became of the file, for the source's log line.
pub fn set_aside(path: &Path) -> String {
    let mut aside = path.as_os_str().to_owned();
    aside.push(".corrupt");
    let aside = PathBuf::from(aside);
    match std::fs::rename(path, &aside) {
        Ok(()) => format!("it was moved to {}", aside.display()),
        Err(e) => format!("it could not be moved aside ({e}) and will be overwritten"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_leaves_the_new_content_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        replace(&path, b"one").unwrap();
        replace(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert!(!temp_path(&path).exists());
        assert_eq!(temp_path(&path), dir.path().join("state.json.tmp"));
    }

    #[test]
    fn set_aside_keeps_the_file_beside_or_says_it_could_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, b"garbage").unwrap();
        let aside = dir.path().join("state.json.corrupt");
        assert_eq!(
            set_aside(&path),
            format!("it was moved to {}", aside.display())
        );
        assert_eq!(std::fs::read(&aside).unwrap(), b"garbage");
        assert!(!path.exists());
        let note = set_aside(&path);
        assert!(note.starts_with("it could not be moved aside ("), "{note}");
        assert!(note.ends_with(") and will be overwritten"), "{note}");
    }

    #[test]
    fn a_failed_replace_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be: the rename fails.
        let path = dir.path().join("state.json");
        std::fs::create_dir(&path).unwrap();
        assert!(replace(&path, b"new").is_err());
        assert!(!temp_path(&path).exists());
        assert!(path.is_dir());
    }
}
