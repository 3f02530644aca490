//! The keys of the `hdfs` sink (Flume's HDFSEventSink): where files go (`hdfs.path` and the
//! filesystem it names), how they are named, rolled and written (`hdfs.fileType`,
//! `hdfs.writeFormat`, `hdfs.codeC`, `serializer`), and the time settings of the path's
//! escapes. Defaults are Flume's.
//!
//! `hdfs.path` picks the filesystem as Hadoop's `FileSystem.get` does: `hdfs://namenode[:port]`
//! and `webhdfs://host:port` (`swebhdfs://` with TLS) are written over WebHDFS, the NameNode's
//! HTTP interface (weir has no Hadoop RPC client); `file://` and a path without a scheme go to
//! the local filesystem, where Hadoop without an `fs.defaultFS` writes them too.

use std::time::Duration;

use super::{ConfigError, Section, SerializerConfig};

/// Hadoop 3's NameNode HTTP port, the WebHDFS endpoint of an `hdfs://` path by default.
pub const WEBHDFS_DEFAULT_PORT: u16 = 9870;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HdfsSinkConfig {
    /// Where the files go.
    pub store: HdfsStore,
    /// The directory template, escapes and all, without scheme and authority (Flume
    /// `hdfs.path`).
    pub path: String,
    /// Flume `hdfs.filePrefix` (FlumeData), escapes allowed.
    pub file_prefix: String,
    /// Flume `hdfs.fileSuffix` (none).
    pub file_suffix: String,
    /// Flume `hdfs.inUsePrefix` (none) and `hdfs.inUseSuffix` (`.tmp`; none with
    /// `hdfs.emptyInUseSuffix`): the name of a file while it is written.
    pub in_use_prefix: String,
    pub in_use_suffix: String,
    /// Flume `hdfs.rollInterval` (30 s), `hdfs.rollSize` (1024 body bytes), `hdfs.rollCount`
    /// (10 events); zero turns each off.
    pub roll_interval: Duration,
    pub roll_size: u64,
    pub roll_count: u64,
    /// Flume `hdfs.idleTimeout` (0: off): close a file nothing was written to for this long.
    pub idle_timeout: Duration,
    /// Flume `hdfs.maxOpenFiles` (5000): the least recently written file is closed past it.
    pub max_open_files: usize,
    /// Flume `hdfs.callTimeout` (30000 ms): the longest wait for one WebHDFS request.
    pub call_timeout: Duration,
    /// Flume `hdfs.closeTries` (0: for ever) and `hdfs.retryInterval` (180 s): how often a
    /// failed rename of a closed file is tried again.
    pub close_tries: u32,
    pub retry_interval: Duration,
    pub format: HdfsFormat,
    /// Flume `hdfs.round`, `hdfs.roundValue` (1), `hdfs.roundUnit` (second).
    pub round: Option<(u32, HdfsRoundUnit)>,
    /// Flume `hdfs.useLocalTimeStamp` (false).
    pub use_local_time_stamp: bool,
    /// Flume `hdfs.timeZone` (the machine's).
    pub time_zone: Option<String>,
}

/// Where an `hdfs` sink writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HdfsStore {
    /// The local filesystem: each batch is written and fdatasync'ed.
    Local,
    /// A NameNode's WebHDFS endpoint (`http://host:port` or `https://…`), with the user of
    /// simple authentication (`HADOOP_USER_NAME`, else the login name) and Flume's
    /// `hdfs.proxyUser`.
    WebHdfs {
        endpoint: String,
        user: Option<String>,
        proxy_user: Option<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HdfsFormat {
    /// `SequenceFile` (the default), `hdfs.writeFormat` Writable (the default) or Text.
    SequenceFile { text: bool },
    /// `DataStream`: the serializer's bytes as they are.
    DataStream(SerializerConfig),
    /// `CompressedStream`: the serializer's bytes through `hdfs.codeC`, one compressed member
    /// per batch.
    CompressedStream(SerializerConfig, HdfsCodec),
}

/// The `hdfs.codeC` codecs weir writes, with Hadoop's file extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HdfsCodec {
    /// `gzip` (GzipCodec): gzip members, `.gz`.
    Gzip,
    /// `deflate` / `default` (DefaultCodec): zlib streams, `.deflate`.
    Deflate,
}

impl HdfsCodec {
    pub fn extension(self) -> &'static str {
        match self {
            HdfsCodec::Gzip => ".gz",
            HdfsCodec::Deflate => ".deflate",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HdfsRoundUnit {
    Second,
    Minute,
    Hour,
}

/// The sink's config and its batch size (Flume `hdfs.batchSize`, 100).
pub fn parse_hdfs_sink(
    s: &Section,
    notes: &mut Vec<String>,
) -> Result<(HdfsSinkConfig, usize), ConfigError> {
    let raw = s.required(
        "hdfs.path",
        &format!(
            "set `{}` to the directory to write into, e.g. hdfs://namenode:8020/flume/%Y-%m-%d",
            s.full("hdfs.path")
        ),
    )?;
    let (store, path) = store(s, &raw)?;
    for key in ["hdfs.kerberosPrincipal", "hdfs.kerberosKeytab"] {
        if s.string(key).is_some() {
            return Err(s.error(
                Some(key),
                "Kerberos is not supported by weir's WebHDFS client (simple authentication \
                 only, as user HADOOP_USER_NAME or the login name, with hdfs.proxyUser)"
                    .into(),
            ));
        }
    }
    for key in ["hdfs.threadsPoolSize", "hdfs.rollTimerPoolSize"] {
        s.accept_without_effect(key, "one thread writes and rolls every file", notes);
    }
    s.accept_without_effect(
        "hdfs.minBlockReplicas",
        "WebHDFS reports no block replication to its writer",
        notes,
    );
    s.accept_without_effect(
        "hdfs.useRawLocalFileSystem",
        "local files are written directly and fdatasync'ed after every batch",
        notes,
    );

    let codec = s.string("hdfs.codeC").map(|c| codec(s, &c)).transpose()?;
    let file_type = s.string_or("hdfs.fileType", "SequenceFile");
    let format = if file_type.eq_ignore_ascii_case("SequenceFile") {
        if codec.is_some() {
            return Err(s.error(
                Some("hdfs.codeC"),
                "a compressed SequenceFile is not supported by weir; use hdfs.fileType = \
                 CompressedStream, or remove hdfs.codeC"
                    .into(),
            ));
        }
        let write_format = s.string_or("hdfs.writeFormat", "Writable");
        let text = if write_format.eq_ignore_ascii_case("Writable") {
            false
        } else if write_format.eq_ignore_ascii_case("Text") {
            true
        } else {
            return Err(s.error(
                Some("hdfs.writeFormat"),
                format!("'{write_format}' is not Writable or Text"),
            ));
        };
        HdfsFormat::SequenceFile { text }
    } else if file_type.eq_ignore_ascii_case("DataStream") {
        if codec.is_some() {
            // Flume refuses it too, so that no file has a compression extension it lacks.
            return Err(s.error(
                Some("hdfs.codeC"),
                "hdfs.fileType = DataStream writes no compressed output: remove hdfs.codeC, or \
                 set hdfs.fileType = CompressedStream"
                    .into(),
            ));
        }
        s.accept_without_effect("hdfs.writeFormat", "it applies to SequenceFile only", notes);
        HdfsFormat::DataStream(super::parse_serializer_at(s, "serializer", notes)?)
    } else if file_type.eq_ignore_ascii_case("CompressedStream") {
        let Some(codec) = codec else {
            return Err(s.error(
                Some("hdfs.codeC"),
                "missing: hdfs.fileType = CompressedStream needs a codec, e.g. hdfs.codeC = gzip"
                    .into(),
            ));
        };
        s.accept_without_effect("hdfs.writeFormat", "it applies to SequenceFile only", notes);
        HdfsFormat::CompressedStream(super::parse_serializer_at(s, "serializer", notes)?, codec)
    } else {
        return Err(s.error(
            Some("hdfs.fileType"),
            format!("'{file_type}' is not SequenceFile, DataStream or CompressedStream"),
        ));
    };

    let round = if s.bool_or("hdfs.round", false)? {
        let unit = s.string_or("hdfs.roundUnit", "second");
        let (unit, max) = match unit.to_ascii_lowercase().as_str() {
            "second" => (HdfsRoundUnit::Second, 60),
            "minute" => (HdfsRoundUnit::Minute, 60),
            "hour" => (HdfsRoundUnit::Hour, 24),
            _ => {
                return Err(s.error(
                    Some("hdfs.roundUnit"),
                    format!("'{unit}' is not second, minute or hour"),
                ));
            }
        };
        let value = s.u64_or("hdfs.roundValue", 1)?;
        if value == 0 || value > max {
            return Err(s.error(
                Some("hdfs.roundValue"),
                format!("{value} is not between 1 and {max}"),
            ));
        }
        Some((value as u32, unit))
    } else {
        for key in ["hdfs.roundUnit", "hdfs.roundValue"] {
            s.accept_without_effect(key, "hdfs.round is not true", notes);
        }
        None
    };

    let in_use_suffix = if s.bool_or("hdfs.emptyInUseSuffix", false)? {
        s.accept_without_effect("hdfs.inUseSuffix", "hdfs.emptyInUseSuffix is true", notes);
        String::new()
    } else {
        s.entry("hdfs.inUseSuffix")
            .map(|e| e.value.clone())
            .unwrap_or_else(|| ".tmp".into())
    };
    let config = HdfsSinkConfig {
        store,
        path,
        file_prefix: s.string_or("hdfs.filePrefix", "FlumeData"),
        file_suffix: s
            .entry("hdfs.fileSuffix")
            .map(|e| e.value.clone())
            .unwrap_or_default(),
        in_use_prefix: s
            .entry("hdfs.inUsePrefix")
            .map(|e| e.value.clone())
            .unwrap_or_default(),
        in_use_suffix,
        roll_interval: s.seconds_or("hdfs.rollInterval", 30)?,
        roll_size: s.u64_or("hdfs.rollSize", 1024)?,
        roll_count: s.u64_or("hdfs.rollCount", 10)?,
        idle_timeout: s.seconds_or("hdfs.idleTimeout", 0)?,
        max_open_files: s.positive_or("hdfs.maxOpenFiles", 5000)? as usize,
        call_timeout: Duration::from_millis(s.positive_or("hdfs.callTimeout", 30_000)?),
        close_tries: u32::try_from(s.u64_or("hdfs.closeTries", 0)?).unwrap_or(0),
        retry_interval: Duration::from_secs(s.positive_or("hdfs.retryInterval", 180)?),
        format,
        round,
        use_local_time_stamp: s.bool_or("hdfs.useLocalTimeStamp", false)?,
        time_zone: s.string("hdfs.timeZone"),
    };
    for (key, value) in [("hdfs.filePrefix", &config.file_prefix)] {
        if value.contains('/') {
            return Err(s.error(
                Some(key),
                format!("'{value}' contains '/': put directories in hdfs.path"),
            ));
        }
    }
    Ok((config, s.positive_or("hdfs.batchSize", 100)? as usize))
}

/// The filesystem `hdfs.path` names, and the path in it.
fn store(s: &Section, raw: &str) -> Result<(HdfsStore, String), ConfigError> {
    let bad = |why: String| s.error(Some("hdfs.path"), format!("'{raw}' {why}"));
    let Some((scheme, rest)) = raw.split_once("://") else {
        if s.string("hdfs.webhdfsAddress").is_some() {
            return Err(s.error(
                Some("hdfs.webhdfsAddress"),
                format!(
                    "hdfs.path '{raw}' is a local path; write it as hdfs://namenode{raw} to \
                         send it to HDFS"
                ),
            ));
        }
        return Ok((HdfsStore::Local, raw.to_owned()));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let scheme = scheme.to_ascii_lowercase();
    if scheme == "file" {
        if !authority.is_empty() && authority != "localhost" {
            return Err(bad(format!(
                "names host '{authority}': a file:// path is on this machine (file:///dir)"
            )));
        }
        return Ok((HdfsStore::Local, path.to_owned()));
    }
    let endpoint = match (scheme.as_str(), s.string("hdfs.webhdfsAddress")) {
        ("hdfs" | "webhdfs" | "swebhdfs", Some(address)) => webhdfs_address(s, &address)?,
        ("hdfs", None) => {
            if authority.is_empty() {
                return Err(bad(format!(
                    "names no NameNode: write hdfs://namenode:8020{path}, or set \
                     hdfs.webhdfsAddress to the NameNode's HTTP address"
                )));
            }
            let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
            format!("http://{host}:{WEBHDFS_DEFAULT_PORT}")
        }
        ("webhdfs" | "swebhdfs", None) => {
            if authority.is_empty() {
                return Err(bad("names no host".into()));
            }
            let tls = scheme == "swebhdfs";
            if tls && !cfg!(feature = "https") {
                return Err(bad(
                    "is swebhdfs (TLS), and this weir was built without the `https` feature".into(),
                ));
            }
            format!("{}://{authority}", if tls { "https" } else { "http" })
        }
        (other, _) => {
            return Err(bad(format!(
                "has scheme '{other}': weir writes hdfs://, webhdfs://, swebhdfs:// and \
                 file:// paths, or a local path"
            )));
        }
    };
    let user = std::env::var("HADOOP_USER_NAME")
        .or_else(|_| std::env::var("USER"))
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty());
    Ok((
        HdfsStore::WebHdfs {
            endpoint,
            user,
            proxy_user: s.string("hdfs.proxyUser"),
        },
        path.to_owned(),
    ))
}

/// weir `hdfs.webhdfsAddress`: `host:port` or an `http(s)://host:port` URL.
fn webhdfs_address(s: &Section, address: &str) -> Result<String, ConfigError> {
    let url = if address.contains("://") {
        address.trim_end_matches('/').to_owned()
    } else {
        format!("http://{address}")
    };
    let ok = match url.split_once("://") {
        Some(("http", host)) => !host.is_empty() && !host.contains('/'),
        Some(("https", host)) if cfg!(feature = "https") => !host.is_empty() && !host.contains('/'),
        _ => false,
    };
    if !ok {
        return Err(s.error(
            Some("hdfs.webhdfsAddress"),
            format!(
                "'{address}' is not the NameNode's HTTP address, e.g. namenode:9870 or \
                 http://namenode:9870{}",
                if cfg!(feature = "https") {
                    ""
                } else {
                    " (https needs the `https` feature)"
                }
            ),
        ));
    }
    Ok(url)
}

/// Flume `hdfs.codeC`: a codec by Hadoop class name, simple name, or that name without
/// `Codec`, in any case.
fn codec(s: &Section, name: &str) -> Result<HdfsCodec, ConfigError> {
    let simple = name.rsplit('.').next().unwrap_or(name).to_ascii_lowercase();
    let simple = simple.strip_suffix("codec").unwrap_or(&simple);
    match simple {
        "gzip" => Ok(HdfsCodec::Gzip),
        "deflate" | "default" => Ok(HdfsCodec::Deflate),
        _ => Err(s.error(
            Some("hdfs.codeC"),
            format!(
                "codec '{name}' is not supported by weir; supported: gzip (GzipCodec), deflate \
                 (DefaultCodec)"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Properties;

    fn parse(lines: &str) -> Result<(HdfsSinkConfig, usize, Vec<String>), String> {
        let props = Properties::parse(std::path::Path::new("t.properties"), lines.as_bytes())
            .map_err(|e| e.to_string())?;
        let s = Section::new(&props, "a.sinks.k1.".into());
        let mut notes = Vec::new();
        let (c, batch) = parse_hdfs_sink(&s, &mut notes).map_err(|e| e.to_string())?;
        s.note_unused(&mut notes);
        Ok((c, batch, notes))
    }

    #[test]
    fn flume_defaults() {
        let (c, batch, notes) = parse("a.sinks.k1.hdfs.path = hdfs://nn:8020/flume/%Y\n").unwrap();
        assert_eq!(batch, 100);
        assert!(notes.is_empty(), "{notes:?}");
        assert!(
            matches!(&c.store, HdfsStore::WebHdfs { endpoint, .. } if endpoint == "http://nn:9870")
        );
        assert_eq!(c.path, "/flume/%Y");
        assert_eq!(c.file_prefix, "FlumeData");
        assert_eq!(
            (c.in_use_prefix.as_str(), c.in_use_suffix.as_str()),
            ("", ".tmp")
        );
        assert_eq!(c.roll_interval, Duration::from_secs(30));
        assert_eq!((c.roll_size, c.roll_count), (1024, 10));
        assert_eq!(c.format, HdfsFormat::SequenceFile { text: false });
        assert_eq!(c.round, None);
        assert_eq!(c.max_open_files, 5000);
        assert_eq!(c.call_timeout, Duration::from_secs(30));
    }

    #[test]
    fn the_path_picks_the_filesystem() {
        let store_of = |path: &str, extra: &str| {
            parse(&format!("a.sinks.k1.hdfs.path = {path}\n{extra}"))
                .map(|(c, ..)| (c.store, c.path))
        };
        let web = |e: &str| HdfsStore::WebHdfs {
            endpoint: e.into(),
            user: std::env::var("HADOOP_USER_NAME")
                .or_else(|_| std::env::var("USER"))
                .or_else(|_| std::env::var("LOGNAME"))
                .ok()
                .filter(|u| !u.is_empty()),
            proxy_user: None,
        };
        assert_eq!(
            store_of("/data/x", "").unwrap(),
            (HdfsStore::Local, "/data/x".into())
        );
        assert_eq!(
            store_of("file:///data/x", "").unwrap(),
            (HdfsStore::Local, "/data/x".into())
        );
        assert_eq!(
            store_of("hdfs://nn/x", "").unwrap(),
            (web("http://nn:9870"), "/x".into())
        );
        assert_eq!(
            store_of("hdfs://nn:8020", "").unwrap(),
            (web("http://nn:9870"), "/".into())
        );
        assert_eq!(
            store_of("webhdfs://nn:50070/x", "").unwrap(),
            (web("http://nn:50070"), "/x".into())
        );
        assert_eq!(
            store_of(
                "hdfs://nn:8020/x",
                "a.sinks.k1.hdfs.webhdfsAddress = nn:50070\n"
            )
            .unwrap(),
            (web("http://nn:50070"), "/x".into())
        );
        let err = store_of("hdfs:///x", "").unwrap_err();
        assert!(
            err.contains("names no NameNode") && err.contains("t.properties:1"),
            "{err}"
        );
        let err = store_of("s3a://bucket/x", "").unwrap_err();
        assert!(err.contains("scheme 's3a'"), "{err}");
        let err = store_of("file://otherhost/x", "").unwrap_err();
        assert!(err.contains("this machine"), "{err}");
    }

    #[test]
    fn file_types_codecs_and_serializers() {
        let format = |extra: &str| {
            parse(&format!("a.sinks.k1.hdfs.path = /x\n{extra}"))
                .map(|(c, _, notes)| (c.format, notes))
        };
        assert_eq!(
            format("a.sinks.k1.hdfs.fileType = DataStream\na.sinks.k1.hdfs.writeFormat = Text\n")
                .unwrap()
                .0,
            HdfsFormat::DataStream(SerializerConfig::Text {
                append_newline: true
            })
        );
        assert_eq!(
            format("a.sinks.k1.hdfs.writeFormat = Text\n").unwrap().0,
            HdfsFormat::SequenceFile { text: true }
        );
        assert_eq!(
            format(
                "a.sinks.k1.hdfs.fileType = CompressedStream\na.sinks.k1.hdfs.codeC = \
                 org.apache.hadoop.io.compress.GzipCodec\na.sinks.k1.serializer = \
                 HEADER_AND_TEXT\na.sinks.k1.serializer.appendNewline = false\n"
            )
            .unwrap()
            .0,
            HdfsFormat::CompressedStream(
                SerializerConfig::HeaderAndText {
                    append_newline: false
                },
                HdfsCodec::Gzip
            )
        );
        let err = format("a.sinks.k1.hdfs.fileType = CompressedStream\n").unwrap_err();
        assert!(
            err.contains("hdfs.codeC") && err.contains("needs a codec"),
            "{err}"
        );
        let err = format("a.sinks.k1.hdfs.fileType = DataStream\na.sinks.k1.hdfs.codeC = gzip\n")
            .unwrap_err();
        assert!(
            err.contains("t.properties:3") && err.contains("DataStream"),
            "{err}"
        );
        let err =
            format("a.sinks.k1.hdfs.fileType = CompressedStream\na.sinks.k1.hdfs.codeC = lzo\n")
                .unwrap_err();
        assert!(err.contains("'lzo' is not supported"), "{err}");
        let err = format("a.sinks.k1.hdfs.fileType = Parquet\n").unwrap_err();
        assert!(
            err.contains("'Parquet'") && err.contains("hdfs.fileType"),
            "{err}"
        );
    }

    #[test]
    fn rounding_kerberos_and_suffixes() {
        let (c, _, notes) = parse(
            "a.sinks.k1.hdfs.path = /x\na.sinks.k1.hdfs.round = true\na.sinks.k1.hdfs.roundValue \
             = 10\na.sinks.k1.hdfs.roundUnit = MINUTE\na.sinks.k1.hdfs.emptyInUseSuffix = \
             true\na.sinks.k1.hdfs.inUseSuffix = .x\na.sinks.k1.hdfs.batchSize = 500\n\
             a.sinks.k1.hdfs.threadsPoolSize = 20\n",
        )
        .unwrap();
        assert_eq!(c.round, Some((10, HdfsRoundUnit::Minute)));
        assert_eq!(c.in_use_suffix, "");
        assert_eq!(notes.len(), 2, "{notes:?}");
        let err = parse("a.sinks.k1.hdfs.path = /x\na.sinks.k1.hdfs.round = true\na.sinks.k1.hdfs.roundValue = 61\n")
            .unwrap_err();
        assert!(
            err.contains("t.properties:3") && err.contains("between 1 and 60"),
            "{err}"
        );
        let err =
            parse("a.sinks.k1.hdfs.path = /x\na.sinks.k1.hdfs.kerberosPrincipal = flume/_HOST@X\n")
                .unwrap_err();
        assert!(
            err.contains("Kerberos") && err.contains("t.properties:2"),
            "{err}"
        );
        let err = parse("a.sinks.k1.type = hdfs\n").unwrap_err();
        assert!(err.contains("hdfs.path"), "{err}");
    }
}
