//! The Spooling Directory source's keys (Flume's SpoolDirectorySource): which files of the
//! directory are read and in what order, how they are cut into events, and what becomes of a
//! file once it has been read.

use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::Regex;

use super::{ConfigError, Section};

/// What happens to a file whose every line is committed (Flume `deletePolicy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeletePolicy {
    /// Kept, and marked as done as `trackingPolicy` says.
    Never,
    Immediate,
}

/// How a finished file is marked as done when it is kept (Flume `trackingPolicy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackingPolicy {
    /// Renamed to `<name><fileSuffix>`.
    Rename,
    /// An empty `<trackerDir>/<path in spoolDir><fileSuffix>` is created; the file is left
    /// alone (a read-only spool directory works).
    TrackerDir,
}

/// Which waiting file is read next (Flume `consumeOrder`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsumeOrder {
    /// Earliest modification time first; equal times by name.
    Oldest,
    /// Latest modification time first; equal times by name.
    Youngest,
    Random,
}

/// What to do with bytes that are not UTF-8 (Flume `decodeErrorPolicy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeErrorPolicy {
    /// Stop reading the file at the first invalid byte; it is left unrenamed.
    Fail,
    /// Each invalid sequence becomes U+FFFD.
    Replace,
    /// Invalid bytes are dropped.
    Ignore,
}

#[derive(Clone, Debug)]
pub struct SpoolDirConfig {
    /// Flume `spoolDir` (required), as configured.
    pub spool_dir: PathBuf,
    /// Flume `fileSuffix` (`.COMPLETED`): appended to a finished file's name; files ending in it
    /// are never read.
    pub file_suffix: String,
    pub delete_policy: DeletePolicy,
    /// The header that gets the file's absolute path, when `fileHeader = true`
    /// (`fileHeaderKey`, default `file`).
    pub file_header: Option<String>,
    /// The header that gets the file's name, when `basenameHeader = true`
    /// (`basenameHeaderKey`, default `basename`).
    pub basename_header: Option<String>,
    /// Flume `includePattern` (`^.*$`): a file name must match it entirely.
    pub include: Regex,
    /// Flume `ignorePattern` (`^$`): a file name matching it entirely is never read, even if
    /// `includePattern` matches too.
    pub ignore: Regex,
    /// Flume `trackerDir` (`.flumespool`) as configured: relative to `spoolDir` unless absolute
    /// ([`SpoolDirConfig::tracker_dir_in`]).
    pub tracker_dir: PathBuf,
    pub tracking_policy: TrackingPolicy,
    pub consume_order: ConsumeOrder,
    /// Flume `pollDelay` (500 ms): how long an empty directory is left before it is listed
    /// again; also the first backoff after a refused batch.
    pub poll_delay: Duration,
    /// Flume `recursiveDirectorySearch` (false): read files in subdirectories too.
    pub recursive: bool,
    /// Flume `maxBackoff` (4000 ms): the longest wait between attempts to put a refused batch.
    pub max_backoff: Duration,
    /// Events per put transaction (Flume `batchSize`, 100).
    pub batch_size: usize,
    pub decode_error_policy: DecodeErrorPolicy,
    /// Flume `deserializer.maxLineLength` (2048): a longer line is cut into events of this many
    /// characters.
    pub max_line_length: usize,
}

/// Flume's `deserializer` values that mean its line deserializer.
const LINE_DESERIALIZER: &[&str] = &["org.apache.flume.serialization.LineDeserializer$Builder"];

pub(super) fn parse_spooldir(
    s: &Section,
    notes: &mut Vec<String>,
) -> Result<SpoolDirConfig, ConfigError> {
    let spool_dir = PathBuf::from(s.required(
        "spoolDir",
        &format!(
            "set `{}` to the directory where finished files are dropped, e.g. /var/spool/app",
            s.full("spoolDir")
        ),
    )?);
    let tracker_dir = PathBuf::from(s.string_or("trackerDir", ".flumespool"));
    let deserializer = s.string_or("deserializer", "LINE");
    if !deserializer.eq_ignore_ascii_case("LINE")
        && !LINE_DESERIALIZER.contains(&deserializer.as_str())
    {
        return Err(s.error(
            Some("deserializer"),
            format!(
                "'{deserializer}' is not supported: only LINE (org.apache.flume.serialization.LineDeserializer$Builder) is, one event per line"
            ),
        ));
    }
    utf8_only(s, "inputCharset")?;
    utf8_only(s, "deserializer.outputCharset")?;
    let max_line_length = s.positive_or("deserializer.maxLineLength", 2048)? as usize;
    // `deserializer.*` counts as read once `deserializer` is; other keys under it would be
    // silently taken for used, so they are named here.
    for (rest, entry) in s.props().with_prefix(&s.full("deserializer.")) {
        if rest != "maxLineLength" && rest != "outputCharset" {
            notes.push(format!(
                "{}: {}: unknown key of the LINE deserializer, ignored (it has maxLineLength and outputCharset)",
                entry.at(),
                s.full(&format!("deserializer.{rest}"))
            ));
        }
    }
    let why = "deprecated in Flume; the LINE deserializer's deserializer.maxLineLength applies";
    s.accept_without_effect("bufferMaxLines", why, notes);
    s.accept_without_effect("bufferMaxLineLength", why, notes);

    let file_header = if s.bool_or("fileHeader", false)? {
        Some(s.string_or("fileHeaderKey", "file"))
    } else {
        s.entry("fileHeaderKey");
        None
    };
    let basename_header = if s.bool_or("basenameHeader", false)? {
        Some(s.string_or("basenameHeaderKey", "basename"))
    } else {
        s.entry("basenameHeaderKey");
        None
    };
    let delete_policy = choice(
        s,
        "deletePolicy",
        "never",
        &[
            ("never", DeletePolicy::Never),
            ("immediate", DeletePolicy::Immediate),
        ],
    )?;
    let tracking_policy = choice(
        s,
        "trackingPolicy",
        "rename",
        &[
            ("rename", TrackingPolicy::Rename),
            ("tracker_dir", TrackingPolicy::TrackerDir),
        ],
    )?;
    let consume_order = choice(
        s,
        "consumeOrder",
        "oldest",
        &[
            ("oldest", ConsumeOrder::Oldest),
            ("youngest", ConsumeOrder::Youngest),
            ("random", ConsumeOrder::Random),
        ],
    )?;
    let decode_error_policy = choice(
        s,
        "decodeErrorPolicy",
        "FAIL",
        &[
            ("FAIL", DecodeErrorPolicy::Fail),
            ("REPLACE", DecodeErrorPolicy::Replace),
            ("IGNORE", DecodeErrorPolicy::Ignore),
        ],
    )?;
    Ok(SpoolDirConfig {
        file_suffix: s.string_or("fileSuffix", ".COMPLETED"),
        include: whole_name_regex(s, "includePattern", "^.*$")?,
        ignore: whole_name_regex(s, "ignorePattern", "^$")?,
        spool_dir,
        tracker_dir,
        delete_policy,
        file_header,
        basename_header,
        tracking_policy,
        consume_order,
        poll_delay: Duration::from_millis(s.positive_or("pollDelay", 500)?),
        recursive: s.bool_or("recursiveDirectorySearch", false)?,
        max_backoff: Duration::from_millis(s.positive_or("maxBackoff", 4000)?),
        batch_size: s.positive_or("batchSize", 100)? as usize,
        decode_error_policy,
        max_line_length,
    })
}

/// A charset key that must name UTF-8 (any of its labels) if set.
fn utf8_only(s: &Section, key: &str) -> Result<(), ConfigError> {
    let Some(label) = s.string(key) else {
        return Ok(());
    };
    match encoding_rs::Encoding::for_label(label.trim().as_bytes()) {
        Some(e) if e == encoding_rs::UTF_8 => Ok(()),
        Some(e) => Err(s.error(
            Some(key),
            format!(
                "{} is not supported: the spooldir source reads and writes UTF-8 only",
                e.name()
            ),
        )),
        None => Err(s.error(
            Some(key),
            format!(
                "'{label}' is not a character set name, and only UTF-8 is supported here anyway"
            ),
        )),
    }
}

/// One of `options` (case-insensitive, as Flume's enum lookups), naming them all on error.
fn choice<T: Copy>(
    s: &Section,
    key: &str,
    default: &str,
    options: &[(&str, T)],
) -> Result<T, ConfigError> {
    let value = s.string_or(key, default);
    options
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(value.trim()))
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
            s.error(
                Some(key),
                format!("'{value}' is not one of: {}", names.join(", ")),
            )
        })
}

/// A file name pattern that must match the whole name (Java's `Matcher.matches()`).
fn whole_name_regex(s: &Section, key: &str, default: &str) -> Result<Regex, ConfigError> {
    let value = s.string_or(key, default);
    Regex::new(&format!("^(?:{value})$")).map_err(|e| {
        s.error(
            Some(key),
            format!("'{value}' is not a valid regular expression: {e}"),
        )
    })
}

impl SpoolDirConfig {
    /// Whether a file named `name` (no directory) is one to read: not hidden, not finished,
    /// included and not ignored.
    pub fn wants(&self, name: &str) -> bool {
        !name.starts_with('.')
            && !name.ends_with(&self.file_suffix)
            && self.include.is_match(name)
            && !self.ignore.is_match(name)
    }

    /// The tracker directory for the spool directory `spool_dir` (made absolute by the caller).
    pub fn tracker_dir_in(&self, spool_dir: &Path) -> PathBuf {
        spool_dir.join(&self.tracker_dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Properties;

    fn parse(text: &str) -> (Result<SpoolDirConfig, ConfigError>, Vec<String>) {
        let props = Properties::parse(Path::new("t.properties"), text.as_bytes()).unwrap();
        let s = Section::new(&props, "a.sources.r1.".into());
        let mut notes = Vec::new();
        let r = parse_spooldir(&s, &mut notes);
        s.note_unused(&mut notes);
        (r, notes)
    }

    #[test]
    fn flumes_defaults() {
        let (c, notes) = parse("a.sources.r1.spoolDir = /var/spool/app\n");
        let c = c.unwrap();
        assert_eq!(c.spool_dir, Path::new("/var/spool/app"));
        assert_eq!(c.file_suffix, ".COMPLETED");
        assert_eq!(c.delete_policy, DeletePolicy::Never);
        assert_eq!(c.file_header, None);
        assert_eq!(c.basename_header, None);
        assert_eq!(
            c.tracker_dir_in(&c.spool_dir),
            Path::new("/var/spool/app/.flumespool")
        );
        assert_eq!(c.tracking_policy, TrackingPolicy::Rename);
        assert_eq!(c.consume_order, ConsumeOrder::Oldest);
        assert_eq!(c.poll_delay, Duration::from_millis(500));
        assert!(!c.recursive);
        assert_eq!(c.max_backoff, Duration::from_millis(4000));
        assert_eq!(c.batch_size, 100);
        assert_eq!(c.decode_error_policy, DecodeErrorPolicy::Fail);
        assert_eq!(c.max_line_length, 2048);
        assert!(c.wants("app.log"));
        assert!(c.wants("x"));
        assert!(
            !c.wants(""),
            "the default ignorePattern ^$ matches only the empty name"
        );
        assert!(!c.wants(".hidden"));
        assert!(!c.wants("app.log.COMPLETED"));
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn every_key_read() {
        let (c, notes) = parse(
            "a.sources.r1.spoolDir = /s\na.sources.r1.fileSuffix = .done\n\
             a.sources.r1.deletePolicy = IMMEDIATE\na.sources.r1.fileHeader = true\n\
             a.sources.r1.fileHeaderKey = path\na.sources.r1.basenameHeader = true\n\
             a.sources.r1.includePattern = .*\\.log\na.sources.r1.ignorePattern = skip.*\n\
             a.sources.r1.trackerDir = /meta\na.sources.r1.trackingPolicy = tracker_dir\n\
             a.sources.r1.consumeOrder = Youngest\na.sources.r1.pollDelay = 20\n\
             a.sources.r1.recursiveDirectorySearch = true\na.sources.r1.maxBackoff = 800\n\
             a.sources.r1.batchSize = 7\na.sources.r1.inputCharset = utf8\n\
             a.sources.r1.decodeErrorPolicy = replace\n\
             a.sources.r1.deserializer = org.apache.flume.serialization.LineDeserializer$Builder\n\
             a.sources.r1.deserializer.maxLineLength = 10\n\
             a.sources.r1.deserializer.outputCharset = UTF-8\n\
             a.sources.r1.deserializer.bogus = 1\n\
             a.sources.r1.bufferMaxLines = 10\na.sources.r1.bufferMaxLineLength = 10\n",
        );
        let c = c.unwrap();
        assert_eq!(c.file_suffix, ".done");
        assert_eq!(c.delete_policy, DeletePolicy::Immediate);
        assert_eq!(c.file_header.as_deref(), Some("path"));
        assert_eq!(c.basename_header.as_deref(), Some("basename"));
        assert!(c.wants("a.log"));
        assert!(!c.wants("a.log.1"), "includePattern matches the whole name");
        assert!(
            !c.wants("skip.log"),
            "ignorePattern wins over includePattern"
        );
        assert!(!c.wants("a.done"));
        assert_eq!(c.tracker_dir_in(Path::new("/s")), Path::new("/meta"));
        assert_eq!(c.tracking_policy, TrackingPolicy::TrackerDir);
        assert_eq!(c.consume_order, ConsumeOrder::Youngest);
        assert_eq!(c.poll_delay, Duration::from_millis(20));
        assert!(c.recursive);
        assert_eq!(c.max_backoff, Duration::from_millis(800));
        assert_eq!(c.batch_size, 7);
        assert_eq!(c.decode_error_policy, DecodeErrorPolicy::Replace);
        assert_eq!(c.max_line_length, 10);
        let joined = notes.join("\n");
        assert!(
            joined.contains("t.properties:21: a.sources.r1.deserializer.bogus: unknown key"),
            "{joined}"
        );
        assert!(
            joined.contains("bufferMaxLines: accepted, no effect in weir: deprecated"),
            "{joined}"
        );
        assert!(joined.contains("bufferMaxLineLength: accepted"), "{joined}");
        assert_eq!(notes.len(), 3, "{joined}");
    }

    #[test]
    fn errors_name_the_key_and_line() {
        let cases = [
            ("", "t.properties:1: a.sources.r1.spoolDir: missing"),
            (
                "a.sources.r1.spoolDir = /s\na.sources.r1.deserializer = AVRO\n",
                "t.properties:3: a.sources.r1.deserializer: 'AVRO' is not supported: only LINE",
            ),
            (
                "a.sources.r1.spoolDir = /s\na.sources.r1.deserializer = org.apache.flume.sink.solr.morphline.BlobDeserializer$Builder\n",
                "t.properties:3: a.sources.r1.deserializer: 'org.apache.flume.sink.solr.morphline.BlobDeserializer$Builder' is not supported",
            ),
            (
                "a.sources.r1.spoolDir = /s\na.sources.r1.inputCharset = ISO-8859-1\n",
                "t.properties:3: a.sources.r1.inputCharset: windows-1252 is not supported: the spooldir source reads and writes UTF-8 only",
            ),
            (
                "a.sources.r1.spoolDir = /s\na.sources.r1.inputCharset = klingon\n",
                "t.properties:3: a.sources.r1.inputCharset: 'klingon' is not a character set name",
            ),
            (
                "a.sources.r1.spoolDir = /s\na.sources.r1.deserializer.outputCharset = UTF-16\n",
                "t.properties:3: a.sources.r1.deserializer.outputCharset: UTF-16LE is not supported",
            ),
            (
                "a.sources.r1.spoolDir = /s\na.sources.r1.deletePolicy = later\n",
                "t.properties:3: a.sources.r1.deletePolicy: 'later' is not one of: never, immediate",
            ),
            (
                "a.sources.r1.spoolDir = /s\na.sources.r1.trackingPolicy = move\n",
                "a.sources.r1.trackingPolicy: 'move' is not one of: rename, tracker_dir",
            ),
            (
                "a.sources.r1.spoolDir = /s\na.sources.r1.consumeOrder = newest\n",
                "a.sources.r1.consumeOrder: 'newest' is not one of: oldest, youngest, random",
            ),
            (
                "a.sources.r1.spoolDir = /s\na.sources.r1.decodeErrorPolicy = skip\n",
                "a.sources.r1.decodeErrorPolicy: 'skip' is not one of: FAIL, REPLACE, IGNORE",
            ),
            (
                "a.sources.r1.spoolDir = /s\na.sources.r1.ignorePattern = (\n",
                "t.properties:3: a.sources.r1.ignorePattern: '(' is not a valid regular expression",
            ),
            (
                "a.sources.r1.spoolDir = /s\na.sources.r1.deserializer.maxLineLength = 0\n",
                "a.sources.r1.deserializer.maxLineLength: must be greater than 0",
            ),
            (
                "a.sources.r1.spoolDir = /s\na.sources.r1.batchSize = x\n",
                "t.properties:3: a.sources.r1.batchSize: 'x' is not a non-negative whole number",
            ),
        ];
        for (text, want) in cases {
            let err = parse(&format!("a.sources.r1.type = spooldir\n{text}"))
                .0
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn a_relative_tracker_dir_is_inside_the_spool_dir() {
        let (c, _) = parse("a.sources.r1.spoolDir = spool\na.sources.r1.trackerDir = meta\n");
        let c = c.unwrap();
        assert_eq!(
            c.tracker_dir_in(Path::new("/w/spool")),
            Path::new("/w/spool/meta")
        );
    }
}
