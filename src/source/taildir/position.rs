//! The position file: how far each followed file has been read and committed, in Flume's format
//! (a JSON array of `{"inode":N,"pos":N,"file":"path"}`), so the file a Flume agent left behind
//! is taken over as it is.
//!
//! Flume rewrites the file in place, so a crash can leave it torn; weir replaces it through
//! [`durable::replace`] (temporary file, fsync, rename, fsync of the directory): after a crash
//! the file is the previous version or the new one, never a mix.

use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::source::durable;

/// One entry: bytes before `pos` of the file with this inode are in the channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    pub inode: u64,
    pub pos: u64,
    /// Where the file was when the entry was written (it may have been renamed since).
    pub file: PathBuf,
}

/// What reading the position file found.
#[derive(Debug, PartialEq, Eq)]
pub enum Loaded {
    /// There is none (a first start).
    Missing,
    /// The entries, and a description of each entry that was unusable and left out.
    Read {
        positions: Vec<Position>,
        skipped: Vec<String>,
    },
    /// The file cannot be understood at all: why.
    Corrupt(String),
}

/// Reads the position file. I/O errors other than "not found" are returned: a file that exists
/// but cannot be read would also not be writable, and starting without it would send every
/// file again.
pub fn load(path: &Path) -> io::Result<Loaded> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(match parse(&bytes) {
            Ok((positions, skipped)) => Loaded::Read { positions, skipped },
            Err(why) => Loaded::Corrupt(why),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Loaded::Missing),
        Err(e) => Err(e),
    }
}

/// Parses the file's bytes: the usable entries and a description of each unusable one, or why
/// the whole file is unusable.
pub fn parse(bytes: &[u8]) -> Result<(Vec<Position>, Vec<String>), String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("the file is empty".into());
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
    let Value::Array(items) = value else {
        return Err(format!(
            "expected a JSON array of {{\"inode\",\"pos\",\"file\"}} objects, found {}",
            kind(&value)
        ));
    };
    let mut positions: Vec<Position> = Vec::new();
    let mut skipped = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let field = |name: &str| item.get(name);
        let entry = match (
            field("inode").and_then(Value::as_u64),
            field("pos").and_then(Value::as_u64),
            field("file").and_then(Value::as_str),
        ) {
            (Some(inode), Some(pos), Some(file)) => Position {
                inode,
                pos,
                file: PathBuf::from(file),
            },
            _ => {
                skipped.push(format!(
                    "entry {i} ({item}) lacks a whole-number \"inode\" and \"pos\" or a string \"file\""
                ));
                continue;
            }
        };
        if positions.iter().any(|p| p.inode == entry.inode) {
            skipped.push(format!(
                "entry {i} ({item}) repeats inode {}; the first entry is used",
                entry.inode
            ));
            continue;
        }
        positions.push(entry);
    }
    Ok((positions, skipped))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The file's bytes for `positions`: compact, in the order given, with Flume's key order.
pub fn encode(positions: &[Position]) -> Vec<u8> {
    let items: Vec<String> = positions
        .iter()
        .map(|p| {
            format!(
                "{{\"inode\":{},\"pos\":{},\"file\":{}}}",
                p.inode,
                p.pos,
                Value::String(p.file.to_string_lossy().into_owned())
            )
        })
        .collect();
    format!("[{}]", items.join(",")).into_bytes()
}

/// The temporary file `store` writes before renaming it over `path`.
pub fn temp_path(path: &Path) -> PathBuf {
    durable::temp_path(path)
}

/// Replaces the position file atomically and durably.
pub fn store(path: &Path, positions: &[Position]) -> io::Result<()> {
    durable::replace(path, &encode(positions))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_in_flumes_format() {
        let ps = vec![
            Position {
                inode: 42,
                pos: 1234,
                file: "/var/log/app.log".into(),
            },
            Position {
                inode: 7,
                pos: 0,
                file: "/var/log/\"quoted\".log".into(),
            },
        ];
        let bytes = encode(&ps);
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"[{"inode":42,"pos":1234,"file":"/var/log/app.log"},{"inode":7,"pos":0,"file":"/var/log/\"quoted\".log"}]"#
        );
        assert_eq!(parse(&bytes).unwrap(), (ps, vec![]));
        // As Flume (Gson) writes it: key order and spacing do not matter.
        let flume = br#"[{"inode":2883788,"pos":10,"file":"/tmp/a.log"}]"#;
        assert_eq!(parse(flume).unwrap().0[0].inode, 2883788);
    }

    #[test]
    fn corrupt_files_say_what_is_wrong() {
        let err = |b: &[u8]| parse(b).unwrap_err();
        assert_eq!(err(b""), "the file is empty");
        assert!(err(b"[{\"inode\":1,").starts_with("not valid JSON: EOF while parsing"));
        assert!(err(b"{\"inode\":1}").contains("found an object"));
        assert!(err(b"\x00\xff").starts_with("not valid JSON"));
    }

    #[test]
    fn bad_entries_are_skipped_alone() {
        let (ps, skipped) = parse(
            br#"[{"inode":1,"pos":5,"file":"/a"},{"inode":"x","pos":1,"file":"/b"},{"inode":3,"pos":-1,"file":"/c"},{"inode":1,"pos":9,"file":"/d"},{"inode":4,"pos":2,"file":"/e"}]"#,
        )
        .unwrap();
        assert_eq!(ps.iter().map(|p| p.inode).collect::<Vec<_>>(), vec![1, 4]);
        assert_eq!(skipped.len(), 3, "{skipped:?}");
        assert!(skipped[0].starts_with("entry 1 "));
        assert!(skipped[2].contains("repeats inode 1"));
    }

    #[test]
    fn store_replaces_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pos.json");
        assert_eq!(load(&path).unwrap(), Loaded::Missing);
        let p = |pos| Position {
            inode: 1,
            pos,
            file: "/x".into(),
        };
        store(&path, &[p(1)]).unwrap();
        store(&path, &[p(2)]).unwrap();
        assert_eq!(
            load(&path).unwrap(),
            Loaded::Read {
                positions: vec![p(2)],
                skipped: vec![]
            }
        );
        assert!(!temp_path(&path).exists());
        std::fs::write(&path, b"garbage").unwrap();
        assert!(matches!(load(&path).unwrap(), Loaded::Corrupt(_)));
    }
}
