//! Loading Flume properties files into keys, values and the file and line each came from, so
//! every configuration error can point at its line. Parsing itself (escapes, `\` continuations,
//! `:` or `=` separators, comments) is the `java-properties` crate's; files are read as UTF-8,
//! which is what Flume users write in practice (plain ASCII is identical in both), a byte that
//! is not UTF-8 reading as U+FFFD as it does in Java.
//!
//! Several files (`-f a.properties -f b.properties`, as Flume 1.10+ accepts) are loaded in order
//! and merged: a key set in a later file overrides the same key of an earlier one, and each
//! entry keeps the file it was read from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::ConfigError;

/// One value, the file it was read from and the 1-based line it was set on there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub value: String,
    pub file: Arc<Path>,
    pub line: usize,
    /// The characters its line writes after a backslash that Java drops (see
    /// [`dropped_escapes`]), each once: `\d` in the file reads as `d`.
    pub dropped_escapes: Vec<char>,
}

impl Entry {
    /// `FILE:LINE`, as errors and notes print where the entry was set.
    pub fn at(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }
}

/// The key/value pairs of one or more properties files. A key set twice keeps the last value,
/// as Java's `Properties.load` does, also across files.
#[derive(Clone, Debug, Default)]
pub struct Properties {
    /// The files read, in the order they were loaded (a later one overrides an earlier one).
    pub files: Vec<Arc<Path>>,
    pub entries: BTreeMap<String, Entry>,
}

/// The configuration file a directory given as `--conf-file` stands for: `flume-conf.properties`
/// (the name Flume's template suggests), else its only `*.properties` or `*.conf` file other
/// than a `log4j*` one (Flume's conf directory holds its logging configuration). Flume
/// fails on a directory; guides show `flume-ng agent -f conf` all the same (this project's seed
/// article does).
fn file_in_dir(dir: &Path) -> Result<PathBuf, String> {
    let conventional = dir.join("flume-conf.properties");
    if conventional.is_file() {
        return Ok(conventional);
    }
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read directory: {e}"))?;
    let mut candidates: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let logging = p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("log4j"));
            p.is_file()
                && !logging
                && p.extension()
                    .is_some_and(|x| x == "properties" || x == "conf")
        })
        .collect();
    candidates.sort();
    match candidates.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(
            "a directory with no flume-conf.properties and no *.properties or *.conf \
                   file: give the configuration file itself"
                .into(),
        ),
        many => Err(format!(
            "a directory with several configuration files ({}): give the one to run",
            many.iter()
                .filter_map(|p| p.file_name())
                .map(|n| n.to_string_lossy())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

impl Properties {
    /// Reads and parses one file. A directory stands for the configuration file in it (see
    /// [`file_in_dir`]).
    pub fn load(path: &Path) -> Result<Properties, ConfigError> {
        let error = |path: &Path, message: String| ConfigError {
            files: vec![path.to_owned()],
            line: None,
            key: None,
            message,
            also: Vec::new(),
        };
        let path = if path.is_dir() {
            &file_in_dir(path).map_err(|m| error(path, m))?
        } else {
            path
        };
        let bytes = std::fs::read(path)
            .map_err(|e| error(path, format!("cannot read configuration file: {e}")))?;
        Properties::parse(path, &bytes)
    }

    /// Loads `paths` in order and merges them, later keys winning (Flume 1.10+'s repeated
    /// `--conf-file`). No paths give no entries.
    pub fn load_all(paths: &[PathBuf]) -> Result<Properties, ConfigError> {
        let mut merged = Properties::default();
        for path in paths {
            merged = merged.merge(Properties::load(path)?);
        }
        Ok(merged)
    }

    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Properties, ConfigError> {
        let file: Arc<Path> = Arc::from(path);
        let mut entries = BTreeMap::new();
        // Bytes that are not UTF-8 become U+FFFD, as Java's UTF-8 reader makes them. Decoded
        // here rather than by the parser: java-properties 2.0.0 panics ("Must not use a decoder
        // that has finished") on a file that ends inside a multi-byte sequence (found by the
        // `config_parse` fuzz target).
        let text = String::from_utf8_lossy(bytes);
        // Numbered as the parser numbers lines, unless a lone `\r` ends a line somewhere (old
        // Mac files): then the lines are not looked at again.
        let raw_lines: Option<Vec<&str>> = (!text.replace("\r\n", "").contains('\r')).then(|| {
            text.split('\n')
                .map(|l| l.strip_suffix('\r').unwrap_or(l))
                .collect()
        });
        let iter =
            java_properties::PropertiesIter::new_with_encoding(text.as_bytes(), encoding_rs::UTF_8);
        for line in iter {
            let line = line.map_err(|e| ConfigError {
                files: vec![path.to_owned()],
                line: e.line_number(),
                key: None,
                message: format!("not a valid properties line: {e}"),
                also: Vec::new(),
            })?;
            let number = line.line_number();
            if let java_properties::LineContent::KVPair(key, value) = line.consume_content() {
                entries.insert(
                    key.trim().to_owned(),
                    Entry {
                        value: value.trim().to_owned(),
                        file: file.clone(),
                        line: number,
                        dropped_escapes: raw_lines
                            .as_deref()
                            .map(|lines| dropped_escapes(lines.get(number.saturating_sub(1)..)))
                            .unwrap_or_default(),
                    },
                );
            }
        }
        Ok(Properties {
            files: vec![file],
            entries,
        })
    }

    /// `self` with the entries of `later` added, a key of both taking `later`'s value (and file
    /// and line).
    pub fn merge(mut self, later: Properties) -> Properties {
        self.files.extend(later.files);
        self.entries.extend(later.entries);
        self
    }

    /// The files, as messages name them: `a.properties, b.properties`.
    pub fn file_list(&self) -> String {
        let names: Vec<String> = self.files.iter().map(|f| f.display().to_string()).collect();
        names.join(", ")
    }

    /// "the file" or "the files", for messages about the configuration as a whole.
    pub fn the_files(&self) -> &'static str {
        if self.files.len() > 1 {
            "the files"
        } else {
            "the file"
        }
    }

    /// "the file defines" or "the files define".
    pub fn the_files_define(&self) -> &'static str {
        if self.files.len() > 1 {
            "the files define"
        } else {
            "the file defines"
        }
    }

    /// Where `entry` stands in the merged configuration: its file's place in the load order,
    /// then its line. Orders entries by where they were written.
    pub fn position(&self, entry: &Entry) -> (usize, usize) {
        let file = self
            .files
            .iter()
            .position(|f| Arc::ptr_eq(f, &entry.file))
            .unwrap_or(usize::MAX);
        (file, entry.line)
    }

    /// Agents the files define: the `X` of every `X.sources`, `X.channels` or `X.sinks` key.
    pub fn agent_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .entries
            .keys()
            .filter_map(|k| k.split_once('.'))
            .filter(|(_, rest)| matches!(*rest, "sources" | "channels" | "sinks"))
            .map(|(a, _)| a.to_owned())
            .collect();
        names.dedup();
        names
    }

    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// Entries whose key starts with `prefix`, with the prefix removed.
    pub fn with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a Entry)> + 'a {
        self.entries
            .range(prefix.to_owned()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(move |(k, v)| (&k[prefix.len()..], v))
    }
}

/// The characters that follow a backslash in the logical line starting at `lines[0]` (its
/// continuation lines included) which Java's `Properties.load` drops the backslash of, each
/// once: `\d` reads as `d`, `C:\logs` as `C:logs`. A regular expression written for Java
/// source (`\\d` there) but with one backslash in the file is the usual cause, and Flume then
/// matches something else silently. Not counted: the escapes with a meaning (`\t \n \r \f
/// \uXXXX \\`), those that keep a separator or comment character (`\: \= \# \! \ `), and a
/// backslash ending a line (a continuation).
fn dropped_escapes(lines: Option<&[&str]>) -> Vec<char> {
    let mut dropped = Vec::new();
    for line in lines.unwrap_or_default() {
        let mut chars = line.chars();
        let mut continued = false;
        while let Some(c) = chars.next() {
            if c != '\\' {
                continue;
            }
            match chars.next() {
                None => continued = true,
                Some('t' | 'n' | 'r' | 'f' | 'u' | '\\' | ':' | '=' | '#' | '!' | ' ' | '\t') => {}
                Some(other) => {
                    if !dropped.contains(&other) {
                        dropped.push(other);
                    }
                }
            }
        }
        if !continued {
            break;
        }
    }
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_continuations_comments_and_last_wins() {
        let text = "# comment\n! also a comment\na.sources = r1\n\na.channels = c1 \\\n  c2\na.sinks : k1\na.sources = r2\nkey=caf\u{e9}\n";
        let p = Properties::parse(Path::new("x.properties"), text.as_bytes()).unwrap();
        assert_eq!(
            p.get("a.sources").unwrap(),
            &Entry {
                value: "r2".into(),
                file: Arc::from(Path::new("x.properties")),
                line: 8,
                dropped_escapes: Vec::new(),
            }
        );
        assert_eq!(p.get("a.sources").unwrap().at(), "x.properties:8");
        assert_eq!(p.get("a.channels").unwrap().value, "c1 c2");
        assert_eq!(p.get("a.channels").unwrap().line, 5);
        assert_eq!(p.get("a.sinks").unwrap().value, "k1");
        assert_eq!(p.get("key").unwrap().value, "caf\u{e9}");
        let under: Vec<_> = p.with_prefix("a.s").map(|(k, _)| k.to_owned()).collect();
        assert_eq!(under, vec!["inks", "ources"]);
    }

    /// Latin-1 bytes in an old file, and a file cut inside a multi-byte character (which made
    /// the parser panic): U+FFFD, as Java reads them, and the rest of the file intact.
    #[test]
    fn bytes_that_are_not_utf8_read_as_replacement_characters() {
        let text = b"# caf\xe9\na.x = caf\xe9\na.y = r\xc3\xa9sum\xc3\xa9\na.z = \xe6";
        let p = Properties::parse(Path::new("x.properties"), text).unwrap();
        assert_eq!(p.get("a.x").unwrap().value, "caf\u{fffd}");
        assert_eq!(p.get("a.y").unwrap().value, "r\u{e9}sum\u{e9}");
        assert_eq!(p.get("a.z").unwrap().value, "\u{fffd}");
        assert_eq!(p.get("a.z").unwrap().line, 4);
    }

    /// A backslash Java drops (`\d` reads as `d`) is recorded with its entry, over
    /// continuation lines too; meaningful escapes, escaped separators and continuations are not.
    #[test]
    fn backslashes_java_drops_are_recorded_with_the_entry() {
        let text = "a.regex = ^\\d+\\s\\d+\\.log$\n\
                    a.path = C:\\logs\\new\n\
                    a.kept = tab\\there\\u0041\\\\x\\:y\\=z\\#\\!\\ end\n\
                    a.list = one \\\n  tw\\o\n\
                    a.crlf = \\w\r\n";
        let p = parse("e.properties", text);
        let dropped = |key: &str| p.get(key).unwrap().dropped_escapes.clone();
        assert_eq!(dropped("a.regex"), ['d', 's', '.']);
        assert_eq!(p.get("a.regex").unwrap().value, "^d+sd+.log$");
        // `\n` is a newline, and `C:\logs` loses its backslash.
        assert_eq!(dropped("a.path"), ['l']);
        assert_eq!(dropped("a.kept"), [] as [char; 0]);
        assert_eq!(
            p.get("a.kept").unwrap().value,
            "tab\there\u{41}\\x:y=z#! end"
        );
        assert_eq!(dropped("a.list"), ['o']);
        assert_eq!(p.get("a.list").unwrap().value, "one two");
        assert_eq!(dropped("a.crlf"), ['w']);
        // Lines ended by a lone `\r` are not looked at again (their numbering could differ).
        let p = parse("m.properties", "a.x = \\d\ra.y = 1\r");
        assert_eq!(p.get("a.x").unwrap().dropped_escapes, [] as [char; 0]);
    }

    fn parse(name: &str, text: &str) -> Properties {
        Properties::parse(Path::new(name), text.as_bytes()).unwrap()
    }

    /// `-f base -f override`: a key of both takes the later file's value, file and line; the
    /// others keep where they were set; the files are remembered in load order.
    #[test]
    fn merge_later_files_win_and_entries_keep_their_file() {
        let base = parse("base.properties", "a.x = 1\na.y = 2\na.z = 3\n");
        let over = parse("over.properties", "# override\na.y = 20\na.w = 40\n");
        let last = parse("last.properties", "a.y = 200\n");
        let p = base.merge(over).merge(last);
        let got: Vec<(&str, &str, String)> = p
            .entries
            .iter()
            .map(|(k, e)| (k.as_str(), e.value.as_str(), e.at()))
            .collect();
        assert_eq!(
            got,
            [
                ("a.w", "40", "over.properties:3".to_owned()),
                ("a.x", "1", "base.properties:1".to_owned()),
                ("a.y", "200", "last.properties:1".to_owned()),
                ("a.z", "3", "base.properties:3".to_owned()),
            ]
        );
        assert_eq!(
            p.file_list(),
            "base.properties, over.properties, last.properties"
        );
        assert_eq!(p.the_files_define(), "the files define");
        // Entries order by file, then line: a later file's line 1 comes after an earlier's 3.
        let (x, y, z) = (p.get("a.x"), p.get("a.y"), p.get("a.z"));
        let at = |e: Option<&Entry>| e.map(|e| p.position(e));
        assert!(
            at(x) < at(z) && at(z) < at(y),
            "{:?}",
            (at(x), at(y), at(z))
        );
    }

    #[test]
    fn load_all_reads_files_in_order_and_names_the_one_it_cannot_read() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("first.properties");
        let second = dir.path().join("second.properties");
        std::fs::write(&first, "a.x = 1\na.y = 1\n").unwrap();
        std::fs::write(&second, "a.y = 2\n").unwrap();
        let both = [first.clone(), second.clone()];
        let p = Properties::load_all(&both).unwrap();
        assert_eq!(p.get("a.x").unwrap().value, "1");
        assert_eq!(
            p.get("a.y").unwrap().at(),
            format!("{}:1", second.display())
        );
        assert_eq!(p.get("a.y").unwrap().value, "2");
        // The other order: the first file's value wins now.
        let p = Properties::load_all(&[second.clone(), first.clone()]).unwrap();
        assert_eq!(p.get("a.y").unwrap().value, "1");

        let missing = dir.path().join("missing.properties");
        let err = Properties::load_all(&[first, missing.clone()]).unwrap_err();
        assert_eq!(err.files, [missing]);
        assert!(err.message.contains("cannot read"), "{err}");
        // A line that is no valid properties line, in the second file, names that file and line.
        std::fs::write(&second, "a.y = 2\na.z = \\u12\n").unwrap();
        let err = Properties::load_all(&both).unwrap_err();
        assert_eq!(
            (err.files, err.line),
            (vec![second], Some(2)),
            "{}",
            err.message
        );
    }

    /// `-f conf` (a directory): its `flume-conf.properties`, else its only configuration file
    /// besides log4j's; none or several is an error naming the directory (and the candidates).
    #[test]
    fn a_directory_stands_for_its_one_configuration_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let load = || Properties::load(d);
        std::fs::write(d.join("log4j.properties"), "log4j.rootLogger = INFO\n").unwrap();
        std::fs::write(d.join("flume-env.sh"), "JAVA_OPTS=\n").unwrap();
        let err = load().unwrap_err();
        assert_eq!(err.files, [d.to_owned()]);
        assert!(err.message.contains("no flume-conf.properties"), "{err}");

        std::fs::write(d.join("tail.conf"), "a.sources = t\n").unwrap();
        let p = load().unwrap();
        assert_eq!(&*p.files[0], d.join("tail.conf"));
        assert_eq!(p.get("a.sources").map(|e| e.value.as_str()), Some("t"));

        std::fs::write(d.join("net.properties"), "a.sources = n\n").unwrap();
        let err = load().unwrap_err();
        assert!(err.message.contains("net.properties, tail.conf"), "{err}");

        std::fs::write(d.join("flume-conf.properties"), "a.sources = f\n").unwrap();
        let p = load().unwrap();
        assert_eq!(p.get("a.sources").map(|e| e.value.as_str()), Some("f"));
    }
}
