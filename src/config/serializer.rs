//! The keys of the file_roll and hdfs sinks' serializer: `sink.serializer` (hdfs: `serializer`;
//! Flume's `EventSerializerType` names, in any case, or the Java class names of their builders)
//! and the serializer's own keys under it (Flume hands that sub-context to the serializer's
//! builder).

use super::{ConfigError, Section};

/// How the file_roll sink turns events into file bytes (Flume `sink.serializer`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SerializerConfig {
    /// `TEXT`: the body, then a newline if `appendNewline` (default true).
    Text { append_newline: bool },
    /// `HEADER_AND_TEXT`: the headers as Java prints a map (`{k1=v1, k2=v2}`), a space, the
    /// body, then a newline if `appendNewline` (default true).
    HeaderAndText { append_newline: bool },
    /// `AVRO_EVENT`: an Avro object container file of Flume's `Event` records.
    AvroEvent {
        /// End a block once its uncompressed records reach this many bytes (Flume
        /// `syncIntervalBytes`, 2048000). A block also ends with every batch.
        sync_interval_bytes: usize,
        codec: AvroCodec,
    },
}

impl Default for SerializerConfig {
    fn default() -> Self {
        SerializerConfig::Text {
            append_newline: true,
        }
    }
}

/// The Avro container codecs weir writes (Flume `compressionCodec`, Avro's codec names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AvroCodec {
    Null,
    /// Raw deflate at zlib's default level, as Avro's `deflate` codec with its default level.
    Deflate,
    /// Snappy, each block followed by the CRC-32 of its uncompressed bytes.
    Snappy,
    /// A bzip2 stream per block.
    Bzip2,
    /// A zstd frame per block, at zstd's default level (3, Avro's too).
    Zstandard,
}

impl AvroCodec {
    /// The name written to the container's `avro.codec` metadata.
    pub fn name(self) -> &'static str {
        match self {
            AvroCodec::Null => "null",
            AvroCodec::Deflate => "deflate",
            AvroCodec::Snappy => "snappy",
            AvroCodec::Bzip2 => "bzip2",
            AvroCodec::Zstandard => "zstandard",
        }
    }

    /// The codec Avro names `name` (as in a container's `avro.codec`), if weir has it.
    pub fn named(name: &str) -> Option<AvroCodec> {
        AvroCodec::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Every codec weir reads and writes; Avro's `xz` is not one of them.
    pub const ALL: [AvroCodec; 5] = [
        AvroCodec::Null,
        AvroCodec::Deflate,
        AvroCodec::Snappy,
        AvroCodec::Bzip2,
        AvroCodec::Zstandard,
    ];
}

/// The serializer names weir accepts: Flume's aliases, then the builder classes they stand for.
const TEXT: (&str, &str) = (
    "TEXT",
    "org.apache.flume.serialization.BodyTextEventSerializer$Builder",
);
const HEADER_AND_TEXT: (&str, &str) = (
    "HEADER_AND_TEXT",
    "org.apache.flume.serialization.HeaderAndBodyTextEventSerializer$Builder",
);
const AVRO_EVENT: (&str, &str) = (
    "AVRO_EVENT",
    "org.apache.flume.serialization.FlumeEventAvroEventSerializer$Builder",
);

/// Avro's `DataFileWriter.setSyncInterval` refuses values outside this range.
const SYNC_INTERVAL_RANGE: std::ops::RangeInclusive<i64> = 32..=(1 << 30);

/// `sink.serializer` and its keys, read from the file_roll sink's section `s`. Keys under
/// `sink.serializer.` that the chosen serializer does not read are noted.
pub fn parse_serializer(
    s: &Section,
    notes: &mut Vec<String>,
) -> Result<SerializerConfig, ConfigError> {
    parse_serializer_at(s, "sink.serializer", notes)
}

/// The serializer named by `key` (file_roll: `sink.serializer`; the hdfs sink: `serializer`)
/// and its keys under `key.`.
pub fn parse_serializer_at(
    s: &Section,
    key: &str,
    notes: &mut Vec<String>,
) -> Result<SerializerConfig, ConfigError> {
    let name = s.string_or(key, "TEXT");
    let keys = s.child(&format!("{key}."));
    // Flume looks the alias up upper-cased, and a class by its exact (Java) name.
    let is = |(alias, class): (&str, &str)| name.eq_ignore_ascii_case(alias) || name == class;
    // The keys of the other serializers, which this one does not read (nor does Flume's).
    let with = format!("{} = {name}", s.full(key));
    if is(AVRO_EVENT) {
        keys.ignored_with("appendNewline", &with, notes);
    } else if is(TEXT) || is(HEADER_AND_TEXT) {
        keys.ignored_with("syncIntervalBytes", &with, notes);
        keys.ignored_with("compressionCodec", &with, notes);
    }
    let config = if is(TEXT) {
        SerializerConfig::Text {
            append_newline: keys.bool_or("appendNewline", true)?,
        }
    } else if is(HEADER_AND_TEXT) {
        SerializerConfig::HeaderAndText {
            append_newline: keys.bool_or("appendNewline", true)?,
        }
    } else if is(AVRO_EVENT) {
        let interval =
            keys.parse_or::<i64>("syncIntervalBytes", 2_048_000, "a whole number of bytes")?;
        if !SYNC_INTERVAL_RANGE.contains(&interval) {
            return Err(keys.error(
                Some("syncIntervalBytes"),
                format!(
                    "{interval} is outside the range Avro allows ({} to {})",
                    SYNC_INTERVAL_RANGE.start(),
                    SYNC_INTERVAL_RANGE.end()
                ),
            ));
        }
        let name = keys.string_or("compressionCodec", "null");
        let codec = match AvroCodec::named(&name) {
            Some(codec) => codec,
            None => {
                let other = name.as_str();
                return Err(keys.error(
                    Some("compressionCodec"),
                    format!(
                        "'{other}' is not an Avro codec weir writes; supported: null, deflate, \
                         snappy, bzip2, zstandard"
                    ),
                ));
            }
        };
        SerializerConfig::AvroEvent {
            sync_interval_bytes: interval as usize,
            codec,
        }
    } else {
        let supported: Vec<String> = [TEXT, HEADER_AND_TEXT, AVRO_EVENT]
            .iter()
            .map(|(alias, class)| format!("{alias} ({class})"))
            .collect();
        return Err(s.error(
            Some(key),
            format!(
                "serializer '{name}' is not supported; supported: {}",
                supported.join(", ")
            ),
        ));
    };
    keys.note_unused(notes);
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Properties;
    use std::path::Path;

    fn parse(keys: &str) -> (Result<SerializerConfig, ConfigError>, Vec<String>) {
        let props = Properties::parse(Path::new("f.properties"), keys.as_bytes()).unwrap();
        let s = Section::new(&props, "a.sinks.k1.".into());
        let mut notes = Vec::new();
        (parse_serializer(&s, &mut notes), notes)
    }

    fn ok(keys: &str) -> SerializerConfig {
        parse(keys).0.unwrap()
    }

    fn err(keys: &str) -> String {
        parse(keys).0.unwrap_err().to_string()
    }

    #[test]
    fn defaults_are_flumes() {
        assert_eq!(ok(""), SerializerConfig::default());
        assert_eq!(
            ok("a.sinks.k1.sink.serializer = header_and_text\n"),
            SerializerConfig::HeaderAndText {
                append_newline: true
            }
        );
        assert_eq!(
            ok("a.sinks.k1.sink.serializer = AVRO_EVENT\n"),
            SerializerConfig::AvroEvent {
                sync_interval_bytes: 2_048_000,
                codec: AvroCodec::Null
            }
        );
    }

    #[test]
    fn builder_class_names_and_serializer_keys_are_read() {
        assert_eq!(
            ok("a.sinks.k1.sink.serializer = \
                org.apache.flume.serialization.BodyTextEventSerializer$Builder\n\
                a.sinks.k1.sink.serializer.appendNewline = false\n"),
            SerializerConfig::Text {
                append_newline: false
            }
        );
        assert_eq!(
            ok("a.sinks.k1.sink.serializer = \
                org.apache.flume.serialization.HeaderAndBodyTextEventSerializer$Builder\n\
                a.sinks.k1.sink.serializer.appendNewline = FALSE\n"),
            SerializerConfig::HeaderAndText {
                append_newline: false
            }
        );
        for (codec, expected) in [
            ("null", AvroCodec::Null),
            ("deflate", AvroCodec::Deflate),
            ("snappy", AvroCodec::Snappy),
            ("bzip2", AvroCodec::Bzip2),
            ("zstandard", AvroCodec::Zstandard),
        ] {
            assert_eq!(
                ok(&format!(
                    "a.sinks.k1.sink.serializer = \
                     org.apache.flume.serialization.FlumeEventAvroEventSerializer$Builder\n\
                     a.sinks.k1.sink.serializer.syncIntervalBytes = 4096\n\
                     a.sinks.k1.sink.serializer.compressionCodec = {codec}\n"
                )),
                SerializerConfig::AvroEvent {
                    sync_interval_bytes: 4096,
                    codec: expected
                }
            );
        }
    }

    #[test]
    fn errors_name_file_line_and_key_and_list_what_is_supported() {
        let e = err("a.sinks.k1.type = file_roll\na.sinks.k1.sink.serializer = JSON\n");
        assert!(
            e.starts_with("f.properties:2: a.sinks.k1.sink.serializer: serializer 'JSON'"),
            "{e}"
        );
        for name in [
            "TEXT",
            "HEADER_AND_TEXT",
            "AVRO_EVENT",
            "HeaderAndBodyTextEventSerializer$Builder",
        ] {
            assert!(e.contains(name), "{e}");
        }

        let e = err("a.sinks.k1.sink.serializer = avro_event\n\
                     a.sinks.k1.sink.serializer.compressionCodec = xz\n");
        assert_eq!(
            e,
            "f.properties:2: a.sinks.k1.sink.serializer.compressionCodec: 'xz' is not an Avro \
             codec weir writes; supported: null, deflate, snappy, bzip2, zstandard"
        );

        let e = err("a.sinks.k1.sink.serializer = avro_event\n\
                     a.sinks.k1.sink.serializer.syncIntervalBytes = 16\n");
        assert!(
            e.starts_with("f.properties:2: a.sinks.k1.sink.serializer.syncIntervalBytes: 16 is"),
            "{e}"
        );
        let e = err("a.sinks.k1.sink.serializer = avro_event\n\
                     a.sinks.k1.sink.serializer.syncIntervalBytes = 2MB\n");
        assert!(e.contains("'2MB' is not a whole number of bytes"), "{e}");

        let e = err("a.sinks.k1.sink.serializer.appendNewline = yes\n");
        assert!(
            e.starts_with("f.properties:1: a.sinks.k1.sink.serializer.appendNewline: 'yes'"),
            "{e}"
        );
    }

    /// A key the chosen serializer does not read is noted, as Flume would silently ignore it:
    /// another serializer's key with that serializer named, a typo as unknown.
    #[test]
    fn keys_the_serializer_does_not_read_are_noted() {
        let (config, notes) = parse(
            "a.sinks.k1.sink.serializer = AVRO_EVENT\n\
             a.sinks.k1.sink.serializer.appendNewline = false\n\
             a.sinks.k1.sink.serializer.syncIntervalByte = 4096\n",
        );
        assert!(config.is_ok());
        assert_eq!(
            notes,
            [
                "f.properties:2: a.sinks.k1.sink.serializer.appendNewline: ignored with \
                 a.sinks.k1.sink.serializer = AVRO_EVENT",
                "f.properties:3: a.sinks.k1.sink.serializer.syncIntervalByte: unknown key, \
                 ignored (it looks like a misspelling of \
                 a.sinks.k1.sink.serializer.syncIntervalBytes)"
            ]
        );
    }
}
