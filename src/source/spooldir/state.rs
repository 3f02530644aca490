//! The source's durable state, `<trackerDir>/weir-spooldir.json`: the file being read and how
//! much of it the channel has committed, and the files that must not be read (again) although
//! they are still in the directory under a name that would be read.
//!
//! ```json
//! {"version":1,
//!  "current":{"file":"/spool/a.log","dev":2049,"inode":131,"size":5120,"mtime":[1700000000,0],"pos":2048},
//!  "skipped":[{"file":"/spool/b.log","dev":2049,"inode":140,"reason":"..."}]}
//! ```
//!
//! An AVRO file's position is a block's offset and, when it is not 0, `"records"`: how many of
//! that block's records are committed (a state file without it, as LINE and BLOB write it, reads
//! as 0).
//!
//! A file is known by its path, device, inode, size and modification time: resuming needs all
//! of them to be unchanged. A skipped file is known by path, device, inode and (where the file
//! system records it) creation time only, so a file that keeps changing stays skipped; one put
//! in its place is read.
//!
//! It is replaced through [`durable::replace`] after every committed batch, so after a crash it
//! holds the last batch whose position was written, never a torn mix. Flume's own
//! `.flumespool-main.meta` is read only by a source that has no state file yet
//! ([`super::flume_meta`]).

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::source::durable;

/// The state file's name inside the tracker directory.
pub const STATE_FILE: &str = "weir-spooldir.json";
/// Flume's position file, in the same directory.
pub const FLUME_META_FILE: &str = ".flumespool-main.meta";

/// A file as it was when it was opened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileId {
    pub file: PathBuf,
    pub dev: u64,
    pub inode: u64,
    pub size: u64,
    /// Seconds and nanoseconds.
    pub mtime: (i64, i64),
    /// Creation time, where the file system records it: an inode number can be given to a new
    /// file as soon as the old one is deleted, this tells them apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub born: Option<(i64, i64)>,
}

/// The file being read: bytes before `pos` are committed to the channel, and (AVRO) the first
/// `records` records of the block that starts at `pos`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Current {
    #[serde(flatten)]
    pub id: FileId,
    pub pos: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub records: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A file left in the directory that is not to be read: it could not be decoded, changed while
/// it was read, or was read but could not be renamed or deleted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub file: PathBuf,
    pub dev: u64,
    pub inode: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub born: Option<(i64, i64)>,
    pub reason: String,
}

impl Skipped {
    pub fn new(id: &FileId, reason: String) -> Skipped {
        Skipped {
            file: id.file.clone(),
            dev: id.dev,
            inode: id.inode,
            born: id.born,
            reason,
        }
    }

    /// Whether `id` is the skipped file (its size and modification time may have changed).
    pub fn is(&self, id: &FileId) -> bool {
        self.file == id.file
            && (self.dev, self.inode) == (id.dev, id.inode)
            && (self.born.is_none() || id.born.is_none() || self.born == id.born)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub current: Option<Current>,
    #[serde(default)]
    pub skipped: Vec<Skipped>,
}

/// What reading the state file found.
#[derive(Debug, PartialEq, Eq)]
pub enum Loaded {
    Missing,
    Read(State),
    /// Unusable: why.
    Corrupt(String),
}

/// Reads the state file. I/O errors other than "not found" are returned: a file that exists but
/// cannot be read would not be writable either, and starting without it would read the current
/// file again from its start.
pub fn load(path: &Path) -> io::Result<Loaded> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(match serde_json::from_slice::<State>(&bytes) {
            Ok(s) if s.version == 1 => Loaded::Read(s),
            Ok(s) => Loaded::Corrupt(format!("unknown version {}", s.version)),
            Err(e) => Loaded::Corrupt(format!("not a weir spooldir state: {e}")),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Loaded::Missing),
        Err(e) => Err(e),
    }
}

/// Replaces the state file atomically and durably.
pub fn store(path: &Path, state: &State) -> io::Result<()> {
    let state = State {
        version: 1,
        ..state.clone()
    };
    let bytes = serde_json::to_vec(&state).map_err(io::Error::other)?;
    durable::replace(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> State {
        State {
            version: 1,
            current: Some(Current {
                id: FileId {
                    file: "/spool/a \"quoted\".log".into(),
                    dev: 2049,
                    inode: 131,
                    size: 5120,
                    mtime: (1_700_000_000, 123),
                    born: None,
                },
                pos: 2048,
                records: 0,
            }),
            skipped: vec![Skipped {
                file: "/spool/b.log".into(),
                dev: 2049,
                inode: 140,
                born: Some((1_700_000_000, 5)),
                reason: "bytes at offset 7 are not UTF-8".into(),
            }],
        }
    }

    #[test]
    fn round_trip_and_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_FILE);
        assert_eq!(load(&path).unwrap(), Loaded::Missing);
        store(&path, &sample()).unwrap();
        assert_eq!(load(&path).unwrap(), Loaded::Read(sample()));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with(
                r#"{"version":1,"current":{"file":"/spool/a \"quoted\".log","dev":2049,"inode":131,"size":5120,"mtime":[1700000000,123],"pos":2048}"#
            ),
            "{text}"
        );
        // An AVRO position inside a block: the records taken from it are kept, and read back.
        let mut avro = sample();
        if let Some(c) = avro.current.as_mut() {
            c.records = 3;
        }
        store(&path, &avro).unwrap();
        assert_eq!(load(&path).unwrap(), Loaded::Read(avro));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(r#""pos":2048,"records":3}"#), "{text}");
        store(&path, &State::default()).unwrap();
        assert_eq!(
            load(&path).unwrap(),
            Loaded::Read(State {
                version: 1,
                ..State::default()
            })
        );
    }

    #[test]
    fn unusable_files_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(STATE_FILE);
        for (bytes, why) in [
            (&b""[..], "not a weir spooldir state: EOF"),
            (
                b"{\"version\":1,\"current\":{\"file\":",
                "not a weir spooldir state",
            ),
            (b"{\"version\":2}", "unknown version 2"),
            (b"[1,2]", "not a weir spooldir state"),
        ] {
            std::fs::write(&path, bytes).unwrap();
            match load(&path).unwrap() {
                Loaded::Corrupt(w) => assert!(w.starts_with(why), "{w}"),
                other => panic!("{other:?}"),
            }
        }
    }
}
