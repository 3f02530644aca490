//! Loading a Flume properties file into keys, values and the line each came from, so every
//! configuration error can point at its line. Parsing itself (escapes, `\` continuations, `:` or
//! `=` separators, comments) is the `java-properties` crate's; files are read as UTF-8, which is
//! what Flume users write in practice (plain ASCII is identical in both).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::ConfigError;

/// One value and the 1-based line it was set on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub value: String,
    pub line: usize,
}

/// The key/value pairs of one properties file. A key set twice keeps the last value, as Java's
/// `Properties.load` does.
#[derive(Clone, Debug, Default)]
pub struct Properties {
    pub path: PathBuf,
    pub entries: BTreeMap<String, Entry>,
}

impl Properties {
    pub fn load(path: &Path) -> Result<Properties, ConfigError> {
        let bytes = std::fs::read(path).map_err(|e| ConfigError {
            file: path.to_owned(),
            line: None,
            key: None,
            message: format!("cannot read configuration file: {e}"),
        })?;
        Properties::parse(path, &bytes)
    }

    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Properties, ConfigError> {
        let mut entries = BTreeMap::new();
        let iter = java_properties::PropertiesIter::new_with_encoding(bytes, encoding_rs::UTF_8);
        for line in iter {
            let line = line.map_err(|e| ConfigError {
                file: path.to_owned(),
                line: e.line_number(),
                key: None,
                message: format!("not a valid properties line: {e}"),
            })?;
            let number = line.line_number();
            if let java_properties::LineContent::KVPair(key, value) = line.consume_content() {
                entries.insert(
                    key.trim().to_owned(),
                    Entry {
                        value: value.trim().to_owned(),
                        line: number,
                    },
                );
            }
        }
        Ok(Properties {
            path: path.to_owned(),
            entries,
        })
    }

    /// Agents the file defines: the `X` of every `X.sources`, `X.channels` or `X.sinks` key.
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
                line: 8
            }
        );
        assert_eq!(p.get("a.channels").unwrap().value, "c1 c2");
        assert_eq!(p.get("a.channels").unwrap().line, 5);
        assert_eq!(p.get("a.sinks").unwrap().value, "k1");
        assert_eq!(p.get("key").unwrap().value, "caf\u{e9}");
        let under: Vec<_> = p.with_prefix("a.s").map(|(k, _)| k.to_owned()).collect();
        assert_eq!(under, vec!["inks", "ources"]);
    }
}
