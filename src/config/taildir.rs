//! The TAILDIR source's keys (Flume's TaildirSource, `shared/reference/flume.md`): which files to
//! follow, where positions are kept, and how events are batched and labelled.

use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;

use super::home_path;
use super::{ConfigError, Section};
use crate::event::Headers;

/// Flume's header for `byteOffsetHeader = true`.
pub const BYTE_OFFSET_HEADER: &str = "byteoffset";

#[derive(Clone, Debug)]
pub struct TaildirConfig {
    /// The groups in the order `filegroups` lists them; a file matched by several belongs to the
    /// first.
    pub groups: Vec<FileGroup>,
    /// Flume `positionFile` (~/.flume/taildir_position.json).
    pub position_file: PathBuf,
    /// Lines per put transaction (Flume `batchSize`, 100).
    pub batch_size: usize,
    /// Files found at start-up with no position start at their end (Flume `skipToEnd`).
    pub skip_to_end: bool,
    /// A file not written for this long is closed, and reopened when it grows (Flume
    /// `idleTimeout`, 120 s). A file that no longer matches is forgotten after this long.
    pub idle_timeout: Duration,
    /// How often the position file is rewritten (Flume `writePosInterval`, 3 s). Zero (which
    /// Flume refuses) means after every committed batch.
    pub write_pos_interval: Duration,
    /// The header that gets the file's absolute path, when `fileHeader = true`
    /// (`fileHeaderKey`, default `file`).
    pub file_header: Option<String>,
    /// Put each line's byte offset in the `byteoffset` header (Flume `byteOffsetHeader`).
    pub byte_offset_header: bool,
    /// Batches read from one file before turning to the next (Flume `maxBatchCount`).
    pub max_batch_count: u64,
    /// weir `pollDelay` (500 ms): how often directories are listed and files checked for growth.
    pub poll_delay: Duration,
}

/// One `filegroups.<name>`: a literal directory and a regular expression that a file name in it
/// must match entirely (Java's `Matcher.matches()`).
#[derive(Clone, Debug)]
pub struct FileGroup {
    pub name: String,
    pub dir: PathBuf,
    pub pattern: Regex,
    /// `headers.<name>.<key> = value`.
    pub headers: Headers,
}

impl FileGroup {
    pub fn matches(&self, file_name: &str) -> bool {
        self.pattern.is_match(file_name)
    }
}

pub(super) fn parse_taildir(
    s: &Section,
    notes: &mut Vec<String>,
) -> Result<TaildirConfig, ConfigError> {
    let names: Vec<String> = s
        .required(
            "filegroups",
            &format!(
                "set `{}` to space-separated group names, and `{}` to a path for each",
                s.full("filegroups"),
                s.full("filegroups.<name>")
            ),
        )?
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let mut groups = Vec::new();
    for name in &names {
        let key = format!("filegroups.{name}");
        let value = s.required(
            &key,
            &format!(
                "group {name} is listed in `{}` but has no path: set `{}` to e.g. /var/log/app/.*\\.log",
                s.full("filegroups"),
                s.full(&key)
            ),
        )?;
        let path = Path::new(&value);
        let (Some(dir), Some(file)) = (path.parent(), path.file_name().and_then(|f| f.to_str()))
        else {
            return Err(s.error(
                Some(&key),
                format!("'{value}' has no file name part (expected /directory/regex)"),
            ));
        };
        // A relative path is the working directory's, as Java's `File` reads it in Flume.
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let dir = std::path::absolute(dir).map_err(|e| {
            s.error(
                Some(&key),
                format!(
                    "cannot resolve the directory of '{value}' against the working directory: {e}"
                ),
            )
        })?;
        let pattern = super::java_regex_whole(file).map_err(|e| {
            s.error(
                Some(&key),
                format!("the file name part '{file}' is not a valid regular expression: {e}"),
            )
        })?;
        groups.push(FileGroup {
            name: name.clone(),
            dir,
            pattern,
            headers: Headers::new(),
        });
    }
    // Paths and headers of groups `filegroups` does not list are ignored, as in Flume; say so
    // (once: the key counts as read then).
    let props = s.props();
    for (rest, entry) in props.with_prefix(&s.full("filegroups.")) {
        if !names.iter().any(|n| n == rest) {
            s.entry(&format!("filegroups.{rest}"));
            notes.push(format!(
                "{}: {}: ignored: group '{rest}' is not listed in {}",
                entry.at(),
                s.full(&format!("filegroups.{rest}")),
                s.full("filegroups")
            ));
        }
    }
    for (rest, entry) in props.with_prefix(&s.full("headers.")) {
        let key = format!("headers.{rest}");
        s.entry(&key);
        let group = rest
            .split_once('.')
            .and_then(|(g, k)| groups.iter_mut().find(|x| x.name == g).map(|x| (x, k)));
        match group {
            // Flume drops empty values, so such a header is not set.
            Some(_) if entry.value.is_empty() => {}
            Some((g, header)) if !header.is_empty() => {
                g.headers.insert(header.to_owned(), entry.value.clone());
            }
            _ => notes.push(format!(
                "{}: {}: ignored: expected headers.<group>.<header> with a group listed in {}{}",
                entry.at(),
                s.full(&key),
                s.full("filegroups"),
                // Flume's TaildirSource splits the key at its first dot and reads the second
                // part: with none it fails, and the agent starts without the source.
                if rest.contains('.') {
                    ""
                } else {
                    " (Flume fails on this key and starts the agent without this source; weir \
                     runs the source without the header)"
                }
            )),
        }
    }

    let file_header = if s.bool_or("fileHeader", false)? {
        Some(s.string_or("fileHeaderKey", "file"))
    } else {
        s.ignored_with("fileHeaderKey", "fileHeader = false", notes);
        None
    };
    let max_batch_count = match s.u64_or("maxBatchCount", u64::MAX)? {
        // Flume falls back to its default for a non-positive value.
        0 => u64::MAX,
        n => n,
    };
    let why_poll = "weir polls every pollDelay (500 ms) instead of backing off when idle";
    s.accept_without_effect("backoffSleepIncrement", why_poll, notes);
    s.accept_without_effect("maxBackoffSleep", why_poll, notes);
    s.accept_without_effect(
        "cachePatternMatching",
        "weir lists each group's directory at every poll",
        notes,
    );
    Ok(TaildirConfig {
        groups,
        position_file: s
            .string("positionFile")
            .map(PathBuf::from)
            .unwrap_or_else(|| home_path(".flume/taildir_position.json")),
        batch_size: s.positive_or("batchSize", 100)? as usize,
        skip_to_end: s.bool_or("skipToEnd", false)?,
        idle_timeout: s.millis_or("idleTimeout", 120_000)?,
        write_pos_interval: s.millis_or("writePosInterval", 3000)?,
        file_header,
        byte_offset_header: s.bool_or("byteOffsetHeader", false)?,
        max_batch_count,
        poll_delay: Duration::from_millis(s.positive_or("pollDelay", 500)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Properties;

    fn parse(text: &str) -> (Result<TaildirConfig, ConfigError>, Vec<String>) {
        let props = Properties::parse(Path::new("t.properties"), text.as_bytes()).unwrap();
        let s = Section::new(&props, "a.sources.r1.".into());
        let mut notes = Vec::new();
        let r = parse_taildir(&s, &mut notes);
        s.note_unused(&mut notes);
        (r, notes)
    }

    #[test]
    fn defaults_groups_and_headers() {
        let (c, notes) = parse(
            "a.sources.r1.filegroups = g1 g2\n\
             a.sources.r1.filegroups.g1 = /var/log/app/app\\.log.*\n\
             a.sources.r1.filegroups.g2 = /srv/x.log\n\
             a.sources.r1.filegroups.g3 = /srv/unused\n\
             a.sources.r1.headers.g1.topic = logs\n\
             a.sources.r1.headers.g1.a.b = dotted\n\
             a.sources.r1.headers.zz.k = v\n\
             a.sources.r1.headers.host = web01\n\
             a.sources.r1.cachePatternMatching = false\n",
        );
        let c = c.unwrap();
        assert_eq!(c.groups.len(), 2);
        assert_eq!(c.groups[0].dir, Path::new("/var/log/app"));
        assert!(c.groups[0].matches("app.log"));
        assert!(c.groups[0].matches("app.log.1"));
        assert!(
            !c.groups[0].matches("xapp.log"),
            "the regex must match the whole name"
        );
        assert!(c.groups[1].matches("x.log"));
        assert!(!c.groups[1].matches("x.log.1"));
        assert_eq!(c.groups[0].headers["topic"], "logs");
        assert_eq!(c.groups[0].headers["a.b"], "dotted");
        assert!(c.groups[1].headers.is_empty());
        assert_eq!(c.batch_size, 100);
        assert!(!c.skip_to_end);
        assert_eq!(c.idle_timeout, Duration::from_secs(120));
        assert_eq!(c.write_pos_interval, Duration::from_secs(3));
        assert_eq!(c.poll_delay, Duration::from_millis(500));
        assert_eq!(c.file_header, None);
        assert!(!c.byte_offset_header);
        assert_eq!(c.max_batch_count, u64::MAX);
        assert!(c.position_file.ends_with(".flume/taildir_position.json"));
        let joined = notes.join("\n");
        assert!(joined.contains("filegroups.g3: ignored"), "{joined}");
        assert!(joined.contains("headers.zz.k: ignored"), "{joined}");
        // Flume drops the whole source for a header key without a group; weir only the key.
        assert!(
            notes
                .iter()
                .any(|n| n.contains("headers.host: ignored")
                    && n.contains("Flume fails on this key")),
            "{joined}"
        );
        assert!(
            !notes
                .iter()
                .any(|n| n.contains("headers.zz.k") && n.contains("Flume fails")),
            "{joined}"
        );
        assert!(
            joined.contains("cachePatternMatching: accepted, no effect"),
            "{joined}"
        );
        assert!(!joined.contains("unknown key"), "{joined}");
    }

    #[test]
    fn file_header_key_and_numbers() {
        let (c, _) = parse(
            "a.sources.r1.filegroups = g\na.sources.r1.filegroups.g = /l/.*\n\
             a.sources.r1.fileHeader = true\na.sources.r1.fileHeaderKey = path\n\
             a.sources.r1.writePosInterval = 0\na.sources.r1.maxBatchCount = 0\n\
             a.sources.r1.positionFile = /p/pos.json\na.sources.r1.pollDelay = 20\n",
        );
        let c = c.unwrap();
        assert_eq!(c.file_header.as_deref(), Some("path"));
        assert_eq!(c.write_pos_interval, Duration::ZERO);
        assert_eq!(c.max_batch_count, u64::MAX);
        assert_eq!(c.position_file, Path::new("/p/pos.json"));
        assert_eq!(c.poll_delay, Duration::from_millis(20));
    }

    #[test]
    fn relative_paths_are_the_working_directorys_as_in_flume() {
        let cwd = std::env::current_dir().unwrap();
        for (value, dir) in [
            ("./test.log", cwd.clone()),
            ("logs/app-.*\\.log", cwd.join("logs")),
            ("flume/data/", cwd.join("flume")),
            ("test.log", cwd.clone()),
        ] {
            let (c, _) = parse(&format!(
                "a.sources.r1.type = TAILDIR\na.sources.r1.filegroups = g\n\
                 a.sources.r1.filegroups.g = {value}\n"
            ));
            let c = c.unwrap_or_else(|e| panic!("{value}: {e}"));
            assert_eq!(c.groups[0].dir, dir, "{value}");
        }
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("", "filegroups: missing"),
            ("a.sources.r1.filegroups = g\n", "filegroups.g: missing"),
            (
                "a.sources.r1.filegroups = g\na.sources.r1.filegroups.g = /l/(unclosed\n",
                "not a valid regular expression",
            ),
            (
                "a.sources.r1.filegroups = g\na.sources.r1.filegroups.g = /l/.*\na.sources.r1.batchSize = 0\n",
                "batchSize: must be greater than 0",
            ),
        ];
        for (text, want) in cases {
            let err = parse(&format!("a.sources.r1.type = TAILDIR\n{text}"))
                .0
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }
}
