//! Where the hdfs sink's files live: the operations it needs (create with the first bytes,
//! append, rename without replacing, list a directory when a final name is taken), on the
//! local filesystem or over WebHDFS. Every
//! call returns once its bytes are as safe as the store makes them: fdatasync'ed locally;
//! acknowledged by the DataNode pipeline over WebHDFS (an APPEND's response comes after its
//! stream is closed, which is what Flume's `hflush` gets).

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::Path;

use anyhow::Context;

use super::webhdfs::{WebHdfs, WebHdfsError, remote_exception};

pub trait Store: Send {
    /// Creates `path` (and its parent directories) holding `data`. `Ok(false)`: a file of that
    /// name exists, and nothing was written.
    fn create(&mut self, path: &str, data: &[u8]) -> anyhow::Result<bool>;
    fn append(&mut self, path: &str, data: &[u8]) -> anyhow::Result<()>;
    /// Renames `from` to `to`, never replacing `to`: [`Renamed::TargetTaken`] when it exists
    /// (and nothing changed).
    fn rename(&mut self, from: &str, to: &str) -> anyhow::Result<Renamed>;
    /// The names in directory `dir`; none when it does not exist.
    fn list(&mut self, dir: &str) -> anyhow::Result<Vec<String>>;
    /// Cuts `path` back to its first `keep` bytes after a write that failed part-way (removing
    /// it when `keep` is 0: nothing of it was written whole). `Ok(false)`: this store cannot,
    /// and the file keeps the torn tail.
    fn cut(&mut self, path: &str, keep: u64) -> anyhow::Result<bool>;
}

/// What [`Store::rename`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Renamed {
    /// `from` is now `to` (or was already: an earlier rename whose answer was lost, or a file
    /// removed from outside, which leaves nothing to rename).
    Done,
    /// `to` exists: nothing was renamed.
    TargetTaken,
}

/// The local filesystem (`file://` or a path without a scheme).
pub struct LocalStore;

impl LocalStore {
    fn sync_parent(path: &Path) -> anyhow::Result<()> {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(parent)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("cannot fsync directory {}", parent.display()))
    }
}

impl Store for LocalStore {
    fn create(&mut self, path: &str, data: &[u8]) -> anyhow::Result<bool> {
        let path = Path::new(path);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create directory {}", dir.display()))?;
        }
        let mut file = match OpenOptions::new().write(true).create_new(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
        };
        file.write_all(data)
            .and_then(|()| file.sync_data())
            .with_context(|| format!("cannot write {}", path.display()))?;
        Self::sync_parent(path)?;
        Ok(true)
    }

    fn append(&mut self, path: &str, data: &[u8]) -> anyhow::Result<()> {
        let mut file = OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open {path} to append"))?;
        file.write_all(data)
            .and_then(|()| file.sync_data())
            .with_context(|| format!("cannot write {path}"))
    }

    fn rename(&mut self, from: &str, to: &str) -> anyhow::Result<Renamed> {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        use rustix::io::Errno;
        match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
            Ok(()) => {}
            Err(Errno::EXIST) => return Ok(Renamed::TargetTaken),
            // A filesystem without RENAME_NOREPLACE: look first (a race needs another writer
            // of the same names, which the counter in every name rules out).
            Err(Errno::INVAL) if Path::new(to).exists() => return Ok(Renamed::TargetTaken),
            Err(Errno::INVAL) => {
                std::fs::rename(from, to)
                    .with_context(|| format!("cannot rename {from} to {to}"))?;
            }
            // An earlier rename that was done although its caller saw it fail; or the file was
            // removed from outside, and there is nothing left to rename (as in Flume).
            Err(Errno::NOENT) if !Path::new(from).exists() => {
                if !Path::new(to).exists() {
                    tracing::warn!(file = %from, "a closed file to rename is gone; nothing to rename");
                }
                return Ok(Renamed::Done);
            }
            Err(e) => {
                return Err(std::io::Error::from(e))
                    .with_context(|| format!("cannot rename {from} to {to}"));
            }
        }
        Self::sync_parent(Path::new(to))?;
        Ok(Renamed::Done)
    }

    fn cut(&mut self, path: &str, keep: u64) -> anyhow::Result<bool> {
        if keep == 0 {
            match std::fs::remove_file(path) {
                Ok(()) => Self::sync_parent(Path::new(path))?,
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("cannot remove {path}")),
            }
            return Ok(true);
        }
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("cannot open {path} to cut it"))?;
        file.set_len(keep)
            .and_then(|()| file.sync_data())
            .with_context(|| format!("cannot cut {path} back to {keep} bytes"))?;
        Ok(true)
    }

    fn list(&mut self, dir: &str) -> anyhow::Result<Vec<String>> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("cannot list {dir}")),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot list {dir}"))?;
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }
}

/// The WebHDFS endpoints of one filesystem: one NameNode, or those of an HA nameservice, of
/// which one is active. Calls go to the last one that answered; one that is down or standby
/// is passed over for the next, in order, as Hadoop's failover proxy does.
pub struct WebHdfsStore {
    namenodes: Vec<WebHdfs>,
    active: usize,
}

impl WebHdfsStore {
    pub fn new(namenodes: Vec<WebHdfs>) -> WebHdfsStore {
        WebHdfsStore {
            namenodes,
            active: 0,
        }
    }

    fn call<T>(&mut self, op: impl Fn(&WebHdfs) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let n = self.namenodes.len();
        let mut last = None;
        for i in 0..n {
            let index = (self.active + i) % n;
            match op(&self.namenodes[index]) {
                Ok(v) => {
                    if index != self.active {
                        tracing::info!(namenode = %self.namenodes[index].endpoint(), "WebHDFS: now using this NameNode");
                        self.active = index;
                    }
                    return Ok(v);
                }
                Err(e) if n > 1 && another_namenode_may_answer(&e) => last = Some(e),
                Err(e) => {
                    // It answered: it is the one to ask first next time.
                    if index != self.active && answered(&e) {
                        self.active = index;
                    }
                    return Err(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no WebHDFS endpoint is configured")))
    }
}

/// Whether `e` came from a NameNode that did not answer or is standby. Only the NameNode step
/// is tried elsewhere: no data went out yet, so nothing can be written twice.
fn another_namenode_may_answer(e: &anyhow::Error) -> bool {
    e.downcast_ref::<WebHdfsError>().is_some_and(|w| {
        w.at.starts_with("NameNode")
            && (w.status.is_none() || w.exception.as_deref() == Some("StandbyException"))
    })
}

/// Whether a NameNode (or DataNode) sent an answer, however bad.
fn answered(e: &anyhow::Error) -> bool {
    e.downcast_ref::<WebHdfsError>()
        .is_some_and(|w| w.status.is_some())
}

impl Store for WebHdfsStore {
    fn create(&mut self, path: &str, data: &[u8]) -> anyhow::Result<bool> {
        match self.call(|nn| nn.create(path, data)) {
            Ok(()) => Ok(true),
            Err(e) if remote_exception(&e) == Some("FileAlreadyExistsException") => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn append(&mut self, path: &str, data: &[u8]) -> anyhow::Result<()> {
        self.call(|nn| nn.append(path, data))
    }

    fn rename(&mut self, from: &str, to: &str) -> anyhow::Result<Renamed> {
        if self.call(|nn| nn.rename(from, to))? {
            return Ok(Renamed::Done);
        }
        // Refused: done already (an earlier rename whose answer was lost), or really refused.
        let gone = self.call(|nn| nn.status(from))?.is_none();
        if gone {
            if self.call(|nn| nn.status(to))?.is_none() {
                // Both gone (removed from outside): nothing left to rename, as Flume does not
                // rename a file that no longer exists.
                tracing::warn!(file = %from, "a closed file to rename is gone; nothing to rename");
            }
            return Ok(Renamed::Done);
        }
        if self.call(|nn| nn.status(to))?.is_some() {
            return Ok(Renamed::TargetTaken);
        }
        anyhow::bail!(
            "WebHDFS refused to rename {from} to {to}, though {from} exists and {to} does not \
             (is its directory missing, or not writable?)"
        )
    }

    fn list(&mut self, dir: &str) -> anyhow::Result<Vec<String>> {
        Ok(self.call(|nn| nn.list(dir))?.unwrap_or_default())
    }

    /// WebHDFS has TRUNCATE, but after a failed APPEND the file may still be under
    /// construction (the DataNode's client holds its lease) and TRUNCATE refused or left to
    /// block recovery; untested against a real cluster, so not used.
    fn cut(&mut self, _path: &str, _keep: u64) -> anyhow::Result<bool> {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_create_append_and_rename_never_replace() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("sub/dir/a.tmp");
        let a = a.to_str().unwrap();
        let mut store = LocalStore;
        assert!(store.create(a, b"one\n").unwrap());
        assert!(!store.create(a, b"again\n").unwrap());
        store.append(a, b"two\n").unwrap();
        assert_eq!(std::fs::read(a).unwrap(), b"one\ntwo\n");
        let b = dir.path().join("sub/dir/b");
        let b = b.to_str().unwrap();
        std::fs::write(b, b"keep").unwrap();
        assert_eq!(store.rename(a, b).unwrap(), Renamed::TargetTaken);
        assert_eq!(std::fs::read(b).unwrap(), b"keep");
        assert_eq!(std::fs::read(a).unwrap(), b"one\ntwo\n");
        let mut names = store
            .list(dir.path().join("sub/dir").to_str().unwrap())
            .unwrap();
        names.sort();
        assert_eq!(names, ["a.tmp", "b"]);
        assert!(
            store
                .list(dir.path().join("none").to_str().unwrap())
                .unwrap()
                .is_empty()
        );
        std::fs::remove_file(b).unwrap();
        assert_eq!(store.rename(a, b).unwrap(), Renamed::Done);
        assert_eq!(std::fs::read(b).unwrap(), b"one\ntwo\n");
        // Renamed already, or gone altogether: nothing to do, without complaint.
        assert_eq!(store.rename(a, b).unwrap(), Renamed::Done);
        std::fs::remove_file(b).unwrap();
        assert_eq!(store.rename(a, b).unwrap(), Renamed::Done);
        let err = store.append(a, b"x").unwrap_err();
        assert!(format!("{err:#}").contains("a.tmp"), "{err:#}");
    }
}
