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
    /// Where `spoolDir` is set (`file:line: key`), for an error at start about the directory.
    pub spool_dir_at: String,
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
    /// How a file is cut into events (Flume `deserializer` and its `deserializer.*` keys).
    pub deserializer: SpoolDeserializer,
}

/// Flume `deserializer`: how a spooled file becomes events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpoolDeserializer {
    /// `LINE` (Flume's `LineDeserializer`): one event per line; a longer line than
    /// `deserializer.maxLineLength` (2048) characters is cut into events of that many.
    Line { max_line_length: usize },
    /// `BLOB` (Flume's `BlobDeserializer`, in its morphline module): the file's bytes as events
    /// of `deserializer.maxBlobLength` (100000000) bytes, the last one shorter.
    Blob { max_blob_length: usize },
    /// `AVRO` (Flume's `AvroEventDeserializer`): an Avro object container file, one event per
    /// record.
    Avro { schema_type: AvroSchemaType },
}

/// Flume `deserializer.schemaType` of the AVRO deserializer: the header naming the records'
/// schema in every event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AvroSchemaType {
    /// `flume.avro.schema.hash`: the schema's CRC-64-AVRO fingerprint in hex.
    Hash,
    /// `flume.avro.schema.literal`: the schema's JSON.
    Literal,
}

/// The `deserializer` values weir takes: Flume's alias (any case; BLOB is weir's, Flume knows
/// the class only), the builder class it stands for, and the deserializer's own keys.
const DESERIALIZERS: [(&str, &str, &[&str]); 3] = [
    (
        "LINE",
        "org.apache.flume.serialization.LineDeserializer$Builder",
        &["maxLineLength", "outputCharset"],
    ),
    (
        "AVRO",
        "org.apache.flume.serialization.AvroEventDeserializer$Builder",
        &["schemaType"],
    ),
    (
        "BLOB",
        "org.apache.flume.sink.solr.morphline.BlobDeserializer$Builder",
        &["maxBlobLength"],
    ),
];

/// Flume's `BlobDeserializer.MAX_BLOB_LENGTH_DEFAULT`.
pub const DEFAULT_MAX_BLOB_LENGTH: u64 = 100_000_000;

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
    let (deserializer, decode_error_policy) = parse_deserializer(s, notes)?;
    let why = "deprecated in Flume; the LINE deserializer's deserializer.maxLineLength applies";
    s.accept_without_effect("bufferMaxLines", why, notes);
    s.accept_without_effect("bufferMaxLineLength", why, notes);

    let file_header = if s.bool_or("fileHeader", false)? {
        Some(s.string_or("fileHeaderKey", "file"))
    } else {
        s.ignored_with("fileHeaderKey", "fileHeader = false", notes);
        None
    };
    let basename_header = if s.bool_or("basenameHeader", false)? {
        Some(s.string_or("basenameHeaderKey", "basename"))
    } else {
        s.ignored_with("basenameHeaderKey", "basenameHeader = false", notes);
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
    if delete_policy == DeletePolicy::Immediate {
        s.ignored_with("trackingPolicy", "deletePolicy = immediate", notes);
    }
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
    Ok(SpoolDirConfig {
        file_suffix: s.string_or("fileSuffix", ".COMPLETED"),
        include: whole_name_regex(s, "includePattern", "^.*$")?,
        ignore: whole_name_regex(s, "ignorePattern", "^$")?,
        spool_dir,
        spool_dir_at: s.located("spoolDir"),
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
        deserializer,
    })
}

/// `deserializer` and its keys, and `decodeErrorPolicy` (which only LINE decodes with). Keys
/// under `deserializer.` that belong to another deserializer, or to none, are noted.
fn parse_deserializer(
    s: &Section,
    notes: &mut Vec<String>,
) -> Result<(SpoolDeserializer, DecodeErrorPolicy), ConfigError> {
    let value = s.string_or("deserializer", "LINE");
    let name = value.trim();
    let Some(&(alias, _, keys)) = DESERIALIZERS
        .iter()
        .find(|(alias, class, _)| alias.eq_ignore_ascii_case(name) || *class == name)
    else {
        let known: Vec<String> = DESERIALIZERS
            .iter()
            .map(|(alias, class, _)| format!("{alias} ({class})"))
            .collect();
        return Err(s.error(
            Some("deserializer"),
            format!(
                "'{value}' is not supported: the spooldir source has {}",
                known.join(", ")
            ),
        ));
    };
    let deserializer = match alias {
        "LINE" => {
            utf8_only(s, "inputCharset")?;
            utf8_only(s, "deserializer.outputCharset")?;
            SpoolDeserializer::Line {
                max_line_length: s.positive_or("deserializer.maxLineLength", 2048)? as usize,
            }
        }
        "BLOB" => {
            let max = s.positive_or("deserializer.maxBlobLength", DEFAULT_MAX_BLOB_LENGTH)?;
            // A Java int in Flume.
            if max > i32::MAX as u64 {
                return Err(s.error(
                    Some("deserializer.maxBlobLength"),
                    format!("{max} is more than {}", i32::MAX),
                ));
            }
            SpoolDeserializer::Blob {
                max_blob_length: max as usize,
            }
        }
        _ => SpoolDeserializer::Avro {
            schema_type: choice(
                s,
                "deserializer.schemaType",
                "HASH",
                &[
                    ("HASH", AvroSchemaType::Hash),
                    ("LITERAL", AvroSchemaType::Literal),
                ],
            )?,
        },
    };
    let decode_error_policy = if alias == "LINE" {
        choice(
            s,
            "decodeErrorPolicy",
            "FAIL",
            &[
                ("FAIL", DecodeErrorPolicy::Fail),
                ("REPLACE", DecodeErrorPolicy::Replace),
                ("IGNORE", DecodeErrorPolicy::Ignore),
            ],
        )?
    } else {
        let why = format!("the {alias} deserializer hands on bytes, it decodes no characters");
        s.accept_without_effect("inputCharset", &why, notes);
        s.accept_without_effect("decodeErrorPolicy", &why, notes);
        DecodeErrorPolicy::Fail
    };
    // A key under `deserializer.` this deserializer does not read is named here with the
    // deserializer it belongs to, where the source's check would only call it unknown; it
    // counts as read then, so that it is named once.
    for (rest, entry) in s.props().with_prefix(&s.full("deserializer.")) {
        if keys.contains(&rest) {
            continue;
        }
        let key = s.full(&format!("deserializer.{rest}"));
        s.entry(&format!("deserializer.{rest}"));
        match DESERIALIZERS.iter().find(|(_, _, k)| k.contains(&rest)) {
            Some((other, _, _)) => notes.push(format!(
                "{}: {key}: a key of the {other} deserializer, unused with deserializer = {alias}",
                entry.at()
            )),
            None => notes.push(format!(
                "{}: {key}: unknown key of the {alias} deserializer, ignored (it has {})",
                entry.at(),
                keys.join(" and ")
            )),
        }
    }
    Ok((deserializer, decode_error_policy))
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
                "'{}' ({}) is not supported: the spooldir source reads and writes UTF-8 only",
                label.trim(),
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
    super::java_regex_whole(&value).map_err(|e| {
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
        assert_eq!(
            c.deserializer,
            SpoolDeserializer::Line {
                max_line_length: 2048
            }
        );
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
        assert_eq!(
            c.deserializer,
            SpoolDeserializer::Line {
                max_line_length: 10
            }
        );
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
        assert!(
            joined.contains(
                "t.properties:10: a.sources.r1.trackingPolicy: ignored with deletePolicy = \
                 immediate"
            ),
            "{joined}"
        );
        assert_eq!(notes.len(), 4, "{joined}");
    }

    #[test]
    fn errors_name_the_key_and_line() {
        let cases = [
            ("", "t.properties:1: a.sources.r1.spoolDir: missing"),
            (
                "a.sources.r1.spoolDir = /s\na.sources.r1.deserializer = FLUME\n",
                "t.properties:3: a.sources.r1.deserializer: 'FLUME' is not supported: the spooldir source has LINE (org.apache.flume.serialization.LineDeserializer$Builder), AVRO (org.apache.flume.serialization.AvroEventDeserializer$Builder), BLOB (org.apache.flume.sink.solr.morphline.BlobDeserializer$Builder)",
            ),
            (
                "a.sources.r1.spoolDir = /s\na.sources.r1.deserializer = org.apache.flume.sink.solr.morphline.blobdeserializer$Builder\n",
                "'org.apache.flume.sink.solr.morphline.blobdeserializer$Builder' is not supported",
            ),
            (
                "a.sources.r1.spoolDir = /s\na.sources.r1.deserializer = blob\na.sources.r1.deserializer.maxBlobLength = 0\n",
                "t.properties:4: a.sources.r1.deserializer.maxBlobLength: must be greater than 0",
            ),
            (
                "a.sources.r1.spoolDir = /s\na.sources.r1.deserializer = BLOB\na.sources.r1.deserializer.maxBlobLength = 2147483648\n",
                "t.properties:4: a.sources.r1.deserializer.maxBlobLength: 2147483648 is more than 2147483647",
            ),
            (
                "a.sources.r1.spoolDir = /s\na.sources.r1.deserializer = Avro\na.sources.r1.deserializer.schemaType = FULL\n",
                "t.properties:4: a.sources.r1.deserializer.schemaType: 'FULL' is not one of: HASH, LITERAL",
            ),
            (
                "a.sources.r1.spoolDir = /s\na.sources.r1.inputCharset = ISO-8859-1\n",
                "t.properties:3: a.sources.r1.inputCharset: 'ISO-8859-1' (windows-1252) is not supported: the spooldir source reads and writes UTF-8 only",
            ),
            (
                "a.sources.r1.spoolDir = /s\na.sources.r1.inputCharset = klingon\n",
                "t.properties:3: a.sources.r1.inputCharset: 'klingon' is not a character set name",
            ),
            (
                "a.sources.r1.spoolDir = /s\na.sources.r1.deserializer.outputCharset = UTF-16\n",
                "t.properties:3: a.sources.r1.deserializer.outputCharset: 'UTF-16' (UTF-16LE) is not supported",
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
    fn blob_and_avro_by_alias_or_class_with_their_keys() {
        let base = "a.sources.r1.spoolDir = /s\n";
        let (c, notes) = parse(&format!("{base}a.sources.r1.deserializer = blob\n"));
        assert_eq!(
            c.unwrap().deserializer,
            SpoolDeserializer::Blob {
                max_blob_length: 100_000_000
            }
        );
        assert!(notes.is_empty(), "{notes:?}");
        let (c, notes) = parse(&format!(
            "{base}a.sources.r1.deserializer = org.apache.flume.sink.solr.morphline.BlobDeserializer$Builder\n\
             a.sources.r1.deserializer.maxBlobLength = 4096\n\
             a.sources.r1.deserializer.maxLineLength = 10\n\
             a.sources.r1.deserializer.maxBlob = 1\n\
             a.sources.r1.decodeErrorPolicy = REPLACE\n"
        ));
        assert_eq!(
            c.unwrap().deserializer,
            SpoolDeserializer::Blob {
                max_blob_length: 4096
            }
        );
        let joined = notes.join("\n");
        assert!(
            joined.contains("t.properties:4: a.sources.r1.deserializer.maxLineLength: a key of the LINE deserializer, unused with deserializer = BLOB"),
            "{joined}"
        );
        assert!(
            joined.contains("t.properties:5: a.sources.r1.deserializer.maxBlob: unknown key of the BLOB deserializer, ignored (it has maxBlobLength)"),
            "{joined}"
        );
        assert!(
            joined.contains("t.properties:6: a.sources.r1.decodeErrorPolicy: accepted, no effect in weir: the BLOB deserializer hands on bytes"),
            "{joined}"
        );
        assert_eq!(notes.len(), 3, "{joined}");

        let (c, notes) = parse(&format!("{base}a.sources.r1.deserializer = AVRO\n"));
        assert_eq!(
            c.unwrap().deserializer,
            SpoolDeserializer::Avro {
                schema_type: AvroSchemaType::Hash
            }
        );
        assert!(notes.is_empty(), "{notes:?}");
        let (c, notes) = parse(&format!(
            "{base}a.sources.r1.deserializer = org.apache.flume.serialization.AvroEventDeserializer$Builder\n\
             a.sources.r1.deserializer.schemaType = literal\n\
             a.sources.r1.deserializer.maxBlobLength = 5\n\
             a.sources.r1.inputCharset = ISO-8859-1\n"
        ));
        assert_eq!(
            c.unwrap().deserializer,
            SpoolDeserializer::Avro {
                schema_type: AvroSchemaType::Literal
            }
        );
        let joined = notes.join("\n");
        assert!(
            joined.contains("t.properties:4: a.sources.r1.deserializer.maxBlobLength: a key of the BLOB deserializer, unused with deserializer = AVRO"),
            "{joined}"
        );
        assert!(
            joined.contains("a.sources.r1.inputCharset: accepted, no effect in weir"),
            "{joined}"
        );
        assert_eq!(notes.len(), 2, "{joined}");
        // A LINE key under LINE is its own; AVRO's under LINE is noted.
        let (_, notes) = parse(&format!(
            "{base}a.sources.r1.deserializer = line\na.sources.r1.deserializer.schemaType = HASH\n"
        ));
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].contains("a key of the AVRO deserializer, unused with deserializer = LINE")
        );
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
