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

use super::hadoop_conf::HadoopConf;
use super::{ConfigError, Section, SerializerConfig};
use crate::bucket_path::{BucketPath, RoundUnit, Zone};

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
    pub round: Option<(u32, RoundUnit)>,
    /// Flume `hdfs.useLocalTimeStamp` (false).
    pub use_local_time_stamp: bool,
    /// Flume `hdfs.timeZone` (the machine's).
    pub time_zone: Option<String>,
    /// Whether an event without a `timestamp` header cannot be written: the path or prefix has
    /// time escapes, and `hdfs.useLocalTimeStamp` is off.
    pub needs_timestamp_header: bool,
}

/// The setting under which the HDFS-only keys are ignored.
const LOCAL_PATH: &str =
    "a local hdfs.path (the files are written on this machine, as this process's user)";

/// Where an `hdfs` sink writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HdfsStore {
    /// The local filesystem: each batch is written and fdatasync'ed.
    Local,
    /// NameNodes' WebHDFS endpoints (`http://host:port` or `https://…`), with the user of
    /// simple authentication ([`hadoop_user`]) and Flume's `hdfs.proxyUser`.
    WebHdfs {
        /// More than one for an HA nameservice: the sink moves to the next when one is down
        /// or standby.
        endpoints: Vec<String>,
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
    /// `snappy` (SnappyCodec): Hadoop's block framing around raw snappy, `.snappy`.
    Snappy,
    /// `lz4` (Lz4Codec): Hadoop's block framing around raw LZ4 blocks, `.lz4`.
    Lz4,
    /// `bzip2` (BZip2Codec): bzip2 streams, `.bz2`.
    Bzip2,
    /// `zstd` (ZStandardCodec): zstd frames, `.zst`.
    Zstd,
}

impl HdfsCodec {
    pub fn extension(self) -> &'static str {
        match self {
            HdfsCodec::Gzip => ".gz",
            HdfsCodec::Deflate => ".deflate",
            HdfsCodec::Snappy => ".snappy",
            HdfsCodec::Lz4 => ".lz4",
            HdfsCodec::Bzip2 => ".bz2",
            HdfsCodec::Zstd => ".zst",
        }
    }
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
    let (store, path) = store(s, &raw, Box::new(HadoopConf::locate), notes)?;
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
        // Flume builds a serializer only for the two stream types.
        let with = "hdfs.fileType = SequenceFile";
        s.ignored_with("serializer", with, notes);
        s.ignored_with_under("serializer", with, notes);
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
        s.ignored_with("hdfs.writeFormat", "hdfs.fileType = DataStream", notes);
        HdfsFormat::DataStream(super::parse_serializer_at(s, "serializer", notes)?)
    } else if file_type.eq_ignore_ascii_case("CompressedStream") {
        let Some(codec) = codec else {
            return Err(s.error(
                Some("hdfs.codeC"),
                "missing: hdfs.fileType = CompressedStream needs a codec, e.g. hdfs.codeC = gzip"
                    .into(),
            ));
        };
        s.ignored_with(
            "hdfs.writeFormat",
            "hdfs.fileType = CompressedStream",
            notes,
        );
        HdfsFormat::CompressedStream(super::parse_serializer_at(s, "serializer", notes)?, codec)
    } else {
        return Err(s.error(
            Some("hdfs.fileType"),
            format!("'{file_type}' is not SequenceFile, DataStream or CompressedStream"),
        ));
    };

    let round = if s.bool_or("hdfs.round", false)? {
        let name = s.string_or("hdfs.roundUnit", "second");
        match RoundUnit::parse(&name) {
            Some(unit) => {
                let max = unit.max_value();
                let value = s.u64_or("hdfs.roundValue", 1)?;
                if value == 0 || value > u64::from(max) {
                    return Err(s.error(
                        Some("hdfs.roundValue"),
                        format!("{value} is not between 1 and {max}"),
                    ));
                }
                Some((value as u32, unit))
            }
            None => {
                // Flume warns and writes without rounding.
                notes.push(format!(
                    "{}: {}: '{name}' is not second, minute or hour: no rounding, as in Flume",
                    s.entry("hdfs.roundUnit")
                        .map(|e| e.at())
                        .unwrap_or_default(),
                    s.full("hdfs.roundUnit")
                ));
                s.accept_without_effect("hdfs.roundValue", "hdfs.roundUnit is not valid", notes);
                None
            }
        }
    } else {
        for key in ["hdfs.roundUnit", "hdfs.roundValue"] {
            s.ignored_with(key, "hdfs.round = false", notes);
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
    // Flume: closeTries <= 0 tries for ever; retryInterval <= 0 tries once.
    let retry = s.parse_or::<i64>("hdfs.retryInterval", 180, "a whole number of seconds")?;
    if retry <= 0 {
        s.ignored_with(
            "hdfs.closeTries",
            "hdfs.retryInterval <= 0 (one try)",
            notes,
        );
    }
    let close_tries = match s.parse_or::<i64>("hdfs.closeTries", 0, "a whole number")? {
        _ if retry <= 0 => 1,
        n if n <= 0 => 0,
        n => u32::try_from(n).unwrap_or(u32::MAX),
    };
    let retry_interval = Duration::from_secs(retry.max(1) as u64);
    let mut config = HdfsSinkConfig {
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
        roll_interval: Duration::from_secs(off_if_not_positive(s, "hdfs.rollInterval", 30)?),
        roll_size: off_if_not_positive(s, "hdfs.rollSize", 1024)?,
        roll_count: off_if_not_positive(s, "hdfs.rollCount", 10)?,
        idle_timeout: Duration::from_secs(off_if_not_positive(s, "hdfs.idleTimeout", 0)?),
        max_open_files: s.positive_or("hdfs.maxOpenFiles", 5000)? as usize,
        call_timeout: Duration::from_millis(s.positive_or("hdfs.callTimeout", 30_000)?),
        close_tries,
        retry_interval,
        format,
        round,
        use_local_time_stamp: s.bool_or("hdfs.useLocalTimeStamp", false)?,
        time_zone: s.string("hdfs.timeZone"),
        needs_timestamp_header: false,
    };
    let mut needs_timestamp = false;
    for (key, template) in [
        ("hdfs.path", &config.path),
        ("hdfs.filePrefix", &config.file_prefix),
    ] {
        let parsed = BucketPath::parse(template)
            .map_err(|e| s.error(Some(key), format!("'{template}': {e}")))?;
        needs_timestamp |= parsed.needs_timestamp();
    }
    config.needs_timestamp_header = needs_timestamp && !config.use_local_time_stamp;
    if let Some(id) = &config.time_zone {
        Zone::parse(id).map_err(|e| s.error(Some("hdfs.timeZone"), format!("'{id}': {e}")))?;
    }
    Ok((config, s.positive_or("hdfs.batchSize", 100)? as usize))
}

/// A count or duration that Flume turns off when it is zero or negative (it tests `> 0`).
fn off_if_not_positive(s: &Section, key: &str, default: u64) -> Result<u64, ConfigError> {
    let v = s.parse_or::<i64>(key, default as i64, "a whole number")?;
    Ok(v.max(0) as u64)
}

/// A URI's scheme (lower-cased), authority (None without `//`) and path; no scheme unless
/// `scheme:` is followed by `/` (so that a local name such as `logs:old` stays a name).
fn split_uri(raw: &str) -> (Option<String>, Option<&str>, &str) {
    let scheme_len = raw
        .char_indices()
        .take_while(|&(i, c)| {
            if i == 0 {
                c.is_ascii_alphabetic()
            } else {
                c.is_ascii_alphanumeric() || "+.-".contains(c)
            }
        })
        .count();
    let Some(rest) = raw[scheme_len..]
        .strip_prefix(':')
        .filter(|r| scheme_len > 0 && r.starts_with('/'))
    else {
        return (None, None, raw);
    };
    let scheme = raw[..scheme_len].to_ascii_lowercase();
    match rest.strip_prefix("//") {
        Some(after) => {
            let (authority, path) = match after.find('/') {
                Some(i) => (&after[..i], &after[i..]),
                None => (after, "/"),
            };
            (Some(scheme), Some(authority), path)
        }
        None => (Some(scheme), None, rest),
    }
}

/// The filesystem `hdfs.path` names, and the path in it, as Hadoop's `Path` qualifies it:
/// `hdfs://nn/p`, `hdfs:/p` and `hdfs:///p` (the NameNode of `fs.defaultFS`), a path without
/// a scheme (`fs.defaultFS`; a relative one under `/user/<user>` on HDFS), `file:` paths.
/// `hadoop` is the machine's Hadoop client configuration, read only when needed.
fn store(
    s: &Section,
    raw: &str,
    hadoop: Box<dyn FnOnce() -> Result<HadoopConf, String> + '_>,
    notes: &mut Vec<String>,
) -> Result<(HdfsStore, String), ConfigError> {
    let bad = |why: String| s.error(Some("hdfs.path"), format!("'{raw}' {why}"));
    let mut hadoop = Some(hadoop);
    // Each branch reads the configuration at most once.
    let mut load = || -> Result<HadoopConf, ConfigError> {
        let read = hadoop
            .take()
            .map_or_else(|| Ok(HadoopConf::default()), |read| read());
        read.map_err(|e| s.error(Some("hdfs.path"), format!("Hadoop configuration: {e}")))
    };
    let (scheme, authority, path) = split_uri(raw);
    let webhdfs_override = s.string("hdfs.webhdfsAddress");
    let endpoints = match scheme.as_deref() {
        None => {
            let c = load()?;
            let default_fs = c.default_fs();
            let dir = c.dir.clone();
            match default_fs.as_deref().map(split_uri) {
                Some((Some(fs_scheme), fs_authority, _)) if fs_scheme != "file" => {
                    let absolute = if path.starts_with('/') {
                        path.to_owned()
                    } else {
                        // Hadoop's working directory on HDFS: the user's home.
                        let user = hadoop_user().ok_or_else(|| {
                            bad("is relative, and no user name is known to put it under \
                                 /user/<name> as Hadoop does: write an absolute path"
                                .into())
                        })?;
                        format!("/user/{user}/{path}")
                    };
                    let qualified =
                        format!("{fs_scheme}://{}{absolute}", fs_authority.unwrap_or(""));
                    return store(s, &qualified, Box::new(move || Ok(c)), notes);
                }
                _ => {
                    // On HDFS a relative path lies under the user's home (see above).
                    let on_hdfs = if raw.starts_with('/') {
                        raw.to_owned()
                    } else {
                        format!("/user/<user>/{raw}")
                    };
                    notes.push(format!(
                        "{}: {}: '{raw}' has no scheme and {}: the files go to this machine's \
                         filesystem, as Hadoop writes them then; write \
                         hdfs://namenode:8020{on_hdfs} to send them to HDFS",
                        s.entry("hdfs.path").map(|e| e.at()).unwrap_or_default(),
                        s.full("hdfs.path"),
                        match (default_fs, dir) {
                            (Some(fs), _) => format!("fs.defaultFS is {fs}"),
                            (None, Some(d)) => format!("{} sets no fs.defaultFS", d.display()),
                            (None, None) => "no Hadoop configuration names fs.defaultFS \
                                             (HADOOP_CONF_DIR, $HADOOP_HOME/etc/hadoop, \
                                             /etc/hadoop/conf)"
                                .to_owned(),
                        }
                    ));
                    if webhdfs_override.is_some() {
                        return Err(s.error(
                            Some("hdfs.webhdfsAddress"),
                            format!(
                                "hdfs.path '{raw}' is a local path; write it as \
                                 hdfs://namenode{on_hdfs} to send it to HDFS"
                            ),
                        ));
                    }
                    s.ignored_with("hdfs.proxyUser", LOCAL_PATH, notes);
                    return Ok((HdfsStore::Local, raw.to_owned()));
                }
            }
        }
        Some("file") => {
            if authority.is_some_and(|a| !a.is_empty() && a != "localhost") {
                return Err(bad(format!(
                    "names host '{}': a file: path is on this machine (file:///dir)",
                    authority.unwrap_or("")
                )));
            }
            s.ignored_with("hdfs.proxyUser", LOCAL_PATH, notes);
            s.ignored_with("hdfs.webhdfsAddress", LOCAL_PATH, notes);
            return Ok((HdfsStore::Local, path.to_owned()));
        }
        Some(scheme @ ("hdfs" | "webhdfs" | "swebhdfs")) => {
            let mut conf = None;
            let authority = match authority.filter(|a| !a.is_empty()) {
                Some(a) => a.to_owned(),
                // hdfs:/p and hdfs:///p: the default filesystem's NameNode.
                None => match conf.insert(load()?).default_fs().as_deref().map(split_uri) {
                    Some((Some(fs_scheme), Some(a), _)) if fs_scheme == scheme && !a.is_empty() => {
                        a.to_owned()
                    }
                    _ => {
                        return Err(bad(format!(
                            "names no host, and fs.defaultFS is not a {scheme}:// filesystem to \
                             take it from: write {scheme}://namenode:8020{path}"
                        )));
                    }
                },
            };
            match (scheme, webhdfs_override) {
                (_, Some(addresses)) => addresses
                    .split(',')
                    .map(|a| webhdfs_address(s, a.trim()))
                    .collect::<Result<Vec<_>, _>>()?,
                ("hdfs", None) => match conf {
                    Some(c) => c,
                    None => load()?,
                }
                .webhdfs_endpoints(&authority),
                (_, None) => {
                    let tls = scheme == "swebhdfs";
                    if tls && !cfg!(feature = "https") {
                        return Err(bad(
                            "is swebhdfs (TLS), and this weir was built without the `https` \
                             feature"
                                .into(),
                        ));
                    }
                    vec![format!(
                        "{}://{authority}",
                        if tls { "https" } else { "http" }
                    )]
                }
            }
        }
        Some(other) => {
            return Err(bad(format!(
                "has scheme '{other}': weir writes hdfs://, webhdfs://, swebhdfs:// and \
                 file:// paths, or a local path"
            )));
        }
    };
    // The start would refuse them with no line to point at (a template left in the path:
    // `hdfs://{{namenode}}/…`).
    for endpoint in &endpoints {
        let host = endpoint
            .parse::<ureq::http::Uri>()
            .ok()
            .and_then(|u| u.host().map(str::to_owned));
        if host.is_none_or(|h| h.is_empty()) {
            let key = if s.entry("hdfs.webhdfsAddress").is_some() {
                "hdfs.webhdfsAddress"
            } else {
                "hdfs.path"
            };
            return Err(s.error(
                Some(key),
                format!(
                    "the NameNode's HTTP address made from it, '{endpoint}', is not a URL with \
                     a host name"
                ),
            ));
        }
    }
    Ok((
        HdfsStore::WebHdfs {
            endpoints,
            user: hadoop_user(),
            proxy_user: s.string("hdfs.proxyUser"),
        },
        path.to_owned(),
    ))
}

/// The user of Hadoop's simple authentication, as its client finds it: `HADOOP_USER_NAME`,
/// else the name of the process's user (Java's `user.name`: the password entry of the real
/// uid), else `USER`.
pub fn hadoop_user() -> Option<String> {
    let set = |v: String| Some(v).filter(|v| !v.is_empty());
    std::env::var("HADOOP_USER_NAME")
        .ok()
        .and_then(set)
        .or_else(passwd_name)
        .or_else(|| std::env::var("USER").ok().and_then(set))
}

fn passwd_name() -> Option<String> {
    // SAFETY: getuid(2) cannot fail and touches no memory.
    let uid = unsafe { libc::getuid() };
    let mut buf = vec![0u8; 1024];
    loop {
        let mut entry = std::mem::MaybeUninit::<libc::passwd>::zeroed();
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: getpwuid_r(3) writes the entry into `entry` and its strings into `buf` (whose
        // length it is given), and sets `found` to `entry` or to null; all three are valid and
        // writable for the call, and nothing else holds them.
        let rc = unsafe {
            libc::getpwuid_r(
                uid,
                entry.as_mut_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut found,
            )
        };
        if rc == libc::ERANGE && buf.len() < (1 << 20) {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 || found.is_null() {
            return None;
        }
        // SAFETY: on success `found` points at `entry`, now initialised.
        let name_ptr = unsafe { (*found).pw_name };
        if name_ptr.is_null() {
            return None;
        }
        // SAFETY: a non-null `pw_name` points at a NUL-terminated string inside `buf`, which
        // outlives this use.
        let name = unsafe { std::ffi::CStr::from_ptr(name_ptr) };
        return name
            .to_str()
            .ok()
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
    }
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
        "snappy" => Ok(HdfsCodec::Snappy),
        "lz4" => Ok(HdfsCodec::Lz4),
        "bzip2" => Ok(HdfsCodec::Bzip2),
        "zstd" | "zstandard" => Ok(HdfsCodec::Zstd),
        _ => Err(s.error(
            Some("hdfs.codeC"),
            format!(
                "codec '{name}' is not supported by weir; supported: gzip (GzipCodec), deflate \
                 (DefaultCodec), snappy (SnappyCodec), lz4 (Lz4Codec), bzip2 (BZip2Codec), \
                 zstd (ZStandardCodec)"
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
            matches!(&c.store, HdfsStore::WebHdfs { endpoints, .. } if endpoints == &["http://nn:9870"])
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

    /// This process runs as a user with a password entry (root in CI), whatever the
    /// environment says.
    #[test]
    fn the_hadoop_user_is_the_process_users_name_without_hadoop_user_name() {
        // A uid without a password entry (some container platforms) has no name to compare.
        let Some(name) = passwd_name() else {
            return;
        };
        let uid = String::from_utf8(
            std::process::Command::new("id")
                .arg("-un")
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        assert_eq!(name, uid.trim());
        if std::env::var_os("HADOOP_USER_NAME").is_none() {
            assert_eq!(hadoop_user(), Some(name));
        }
    }

    #[test]
    fn the_path_picks_the_filesystem() {
        let store_of = |path: &str, extra: &str| {
            parse(&format!("a.sinks.k1.hdfs.path = {path}\n{extra}"))
                .map(|(c, ..)| (c.store, c.path))
        };
        let web = |e: &str| HdfsStore::WebHdfs {
            endpoints: vec![e.into()],
            user: hadoop_user(),
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
            err.contains("names no host") && err.contains("t.properties:1"),
            "{err}"
        );
        let err = store_of("s3a://bucket/x", "").unwrap_err();
        assert!(err.contains("scheme 's3a'"), "{err}");
        let err = store_of("file://otherhost/x", "").unwrap_err();
        assert!(err.contains("this machine"), "{err}");
        // A template placeholder left in the host: refused here, at its line, not at the start.
        let err = store_of("hdfs://{{namenode}}/flume/%y-%m-%d", "").unwrap_err();
        assert!(
            err.starts_with("t.properties:1: a.sinks.k1.hdfs.path: ")
                && err.contains("'http://{{namenode}}:9870', is not a URL with a host name"),
            "{err}"
        );
        let err = store_of(
            "hdfs://nn/x",
            "a.sinks.k1.hdfs.webhdfsAddress = http://a b:1\n",
        )
        .unwrap_err();
        assert!(
            err.starts_with("t.properties:2: a.sinks.k1.hdfs.webhdfsAddress: "),
            "{err}"
        );
    }

    /// A path without a scheme is qualified with the Hadoop configuration's fs.defaultFS (and
    /// an HA nameservice's NameNodes found there); without one it is local, with a note.
    #[test]
    fn a_path_without_a_scheme_goes_where_fs_default_fs_says() {
        let props = Properties::parse(
            std::path::Path::new("t.properties"),
            b"a.sinks.k1.hdfs.path = /flume/%Y\n",
        )
        .unwrap();
        let s = Section::new(&props, "a.sinks.k1.".into());
        let dir = tempfile::tempdir().unwrap();
        let prop =
            |n: &str, v: &str| format!("<property><name>{n}</name><value>{v}</value></property>");
        std::fs::write(
            dir.path().join("core-site.xml"),
            format!(
                "<configuration>{}</configuration>",
                prop("fs.defaultFS", "hdfs://prod")
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("hdfs-site.xml"),
            format!(
                "<configuration>{}{}{}{}</configuration>",
                prop("dfs.nameservices", "prod"),
                prop("dfs.ha.namenodes.prod", "nn1,nn2"),
                prop("dfs.namenode.http-address.prod.nn1", "a:9870"),
                prop("dfs.namenode.http-address.prod.nn2", "b:9870")
            ),
        )
        .unwrap();
        let mut notes = Vec::new();
        let (st, path) = store(
            &s,
            "/flume/%Y",
            Box::new(|| HadoopConf::read(dir.path())),
            &mut notes,
        )
        .unwrap();
        assert_eq!(path, "/flume/%Y");
        assert!(
            matches!(&st, HdfsStore::WebHdfs { endpoints, .. } if endpoints == &["http://a:9870", "http://b:9870"]),
            "{st:?}"
        );
        assert!(notes.is_empty(), "{notes:?}");

        let (st, path) = store(
            &s,
            "/flume/%Y",
            Box::new(|| Ok(HadoopConf::default())),
            &mut notes,
        )
        .unwrap();
        assert_eq!((st, path.as_str()), (HdfsStore::Local, "/flume/%Y"));
        assert!(
            notes.len() == 1
                && notes[0].contains("t.properties:1")
                && notes[0].contains("this machine's")
                && notes[0].contains("write hdfs://namenode:8020/flume/%Y to"),
            "{notes:?}"
        );
        // A relative path would lie under the user's home on HDFS, and the hint says so.
        notes.clear();
        store(
            &s,
            "group/Flagged",
            Box::new(|| Ok(HadoopConf::default())),
            &mut notes,
        )
        .unwrap();
        assert!(
            notes[0].contains("write hdfs://namenode:8020/user/<user>/group/Flagged to"),
            "{notes:?}"
        );
        let err = store(
            &s,
            "/x",
            Box::new(|| Err("bad.xml: broken".into())),
            &mut notes,
        )
        .unwrap_err();
        assert!(err.to_string().contains("bad.xml"), "{err}");
    }

    #[test]
    fn file_types_codecs_and_serializers() {
        let format = |extra: &str| {
            parse(&format!("a.sinks.k1.hdfs.path = file:///x\n{extra}"))
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
        // A SequenceFile has no serializer: its keys are noted as such, not as unknown.
        let (_, notes) =
            format("a.sinks.k1.serializer = TEXT\na.sinks.k1.serializer.appendNewline = false\n")
                .unwrap();
        assert_eq!(
            notes,
            [
                "t.properties:2: a.sinks.k1.serializer: ignored with hdfs.fileType = \
                 SequenceFile",
                "t.properties:3: a.sinks.k1.serializer.appendNewline: ignored with \
                 hdfs.fileType = SequenceFile"
            ]
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
            "a.sinks.k1.hdfs.path = file:///x\na.sinks.k1.hdfs.round = true\na.sinks.k1.hdfs.roundValue \
             = 10\na.sinks.k1.hdfs.roundUnit = MINUTE\na.sinks.k1.hdfs.emptyInUseSuffix = \
             true\na.sinks.k1.hdfs.inUseSuffix = .x\na.sinks.k1.hdfs.batchSize = 500\n\
             a.sinks.k1.hdfs.threadsPoolSize = 20\n",
        )
        .unwrap();
        assert_eq!(c.round, Some((10, RoundUnit::Minute)));
        assert_eq!(c.in_use_suffix, "");
        assert_eq!(notes.len(), 2, "{notes:?}");
        let err = parse("a.sinks.k1.hdfs.path = file:///x\na.sinks.k1.hdfs.round = true\na.sinks.k1.hdfs.roundValue = 61\n")
            .unwrap_err();
        assert!(
            err.contains("t.properties:3") && err.contains("between 1 and 60"),
            "{err}"
        );
        let err = parse(
            "a.sinks.k1.hdfs.path = file:///x\na.sinks.k1.hdfs.kerberosPrincipal = flume/_HOST@X\n",
        )
        .unwrap_err();
        assert!(
            err.contains("Kerberos") && err.contains("t.properties:2"),
            "{err}"
        );
        let err = parse("a.sinks.k1.type = hdfs\n").unwrap_err();
        assert!(err.contains("hdfs.path"), "{err}");
    }

    /// Values Flume takes and weir used to refuse: non-positive rolls turn them off, an unknown
    /// round unit turns rounding off with a note, retryInterval <= 0 means one try,
    /// closeTries <= 0 for ever, and a `/` in filePrefix makes a subdirectory.
    #[test]
    fn flumes_lenient_values_mean_what_they_mean_in_flume() {
        let (c, _, notes) = parse(
            "a.sinks.k1.hdfs.path = file:///x\na.sinks.k1.hdfs.rollInterval = -1\n\
             a.sinks.k1.hdfs.rollSize = 0\na.sinks.k1.hdfs.rollCount = -5\n\
             a.sinks.k1.hdfs.round = true\na.sinks.k1.hdfs.roundUnit = day\n\
             a.sinks.k1.hdfs.closeTries = -1\na.sinks.k1.hdfs.filePrefix = %{host}/events\n",
        )
        .unwrap();
        assert_eq!(
            (c.roll_interval, c.roll_size, c.roll_count),
            (Duration::ZERO, 0, 0)
        );
        assert_eq!(c.round, None);
        assert!(
            notes
                .iter()
                .any(|n| n.contains("t.properties:6") && n.contains("no rounding")),
            "{notes:?}"
        );
        assert_eq!(
            (c.close_tries, c.retry_interval),
            (0, Duration::from_secs(180))
        );
        assert_eq!(c.file_prefix, "%{host}/events");
        let (c, ..) =
            parse("a.sinks.k1.hdfs.path = file:///x\na.sinks.k1.hdfs.retryInterval = 0\n").unwrap();
        assert_eq!(c.close_tries, 1);
    }

    #[test]
    fn bad_escapes_and_time_zones_are_refused_at_their_line() {
        let err =
            parse("a.sinks.k1.hdfs.path = file:///x\na.sinks.k1.hdfs.timeZone = Nowhere/City\n")
                .unwrap_err();
        assert!(
            err.contains("t.properties:2") && err.contains("Nowhere/City"),
            "{err}"
        );
        let err = parse("a.sinks.k1.hdfs.path = file:///x/%[nosuch]\n").unwrap_err();
        assert!(
            err.contains("t.properties:1") && err.contains("nosuch"),
            "{err}"
        );
        let err = parse("a.sinks.k1.hdfs.path = file:///x\na.sinks.k1.hdfs.filePrefix = %[bad]\n")
            .unwrap_err();
        assert!(
            err.contains("t.properties:2: a.sinks.k1.hdfs.filePrefix"),
            "{err}"
        );
    }
}

/// The Hadoop-side path rules (from the second review of the hdfs sink).
#[cfg(test)]
mod hadoop_paths {
    use super::*;
    use crate::config::Properties;

    fn section(props: &Properties) -> Section<'_> {
        Section::new(props, "a.sinks.k1.".into())
    }

    fn prod() -> Result<HadoopConf, String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("core-site.xml"),
            "<configuration><property><name>fs.defaultFS</name><value>hdfs://nn.example:8020</value></property></configuration>",
        )
        .unwrap();
        HadoopConf::read(dir.path())
    }

    /// Hadoop qualifies a relative path against the filesystem's working directory, which is
    /// the user's home (/user/<name>) on HDFS; so does weir.
    #[test]
    fn a_relative_path_is_under_the_users_home_directory() {
        let props = Properties::parse(
            std::path::Path::new("t.properties"),
            b"a.sinks.k1.hdfs.path = flume/%Y\n",
        )
        .unwrap();
        let s = section(&props);
        let mut notes = Vec::new();
        let (_, path) = store(&s, "flume/%Y", Box::new(prod), &mut notes).unwrap();
        let user = hadoop_user().unwrap_or_default();
        assert_eq!(path, format!("/user/{user}/flume/%Y"));
    }

    /// `file:/dir` (one slash, as Hadoop's Path prints local paths) is the local /dir, whatever
    /// fs.defaultFS says.
    #[test]
    fn one_slash_uris() {
        let props = Properties::parse(
            std::path::Path::new("t.properties"),
            b"a.sinks.k1.hdfs.path = x\n",
        )
        .unwrap();
        let s = section(&props);
        let mut notes = Vec::new();
        let (st, path) = store(&s, "file:/var/log/flume", Box::new(prod), &mut notes).unwrap();
        assert_eq!(
            (&st, path.as_str()),
            (&HdfsStore::Local, "/var/log/flume"),
            "{st:?}"
        );
        let (st, path) = store(
            &s,
            "file:/var/log/flume",
            Box::new(|| Ok(HadoopConf::default())),
            &mut notes,
        )
        .unwrap();
        assert_eq!((st, path.as_str()), (HdfsStore::Local, "/var/log/flume"));
    }
}
