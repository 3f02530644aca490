//! Flume properties → a typed, validated agent configuration. Components never see raw property
//! strings: each gets its config struct from `components`. Every error names the file, the line
//! and the key, and says what would be valid.
//!
//! The configuration may come from several files (`-f base.properties -f site.properties`, as
//! Flume 1.10+ accepts), merged in order with a later file's key overriding an earlier one's
//! (see [`Properties::merge`]). `${…}` references resolve against the merged keys, so a value in
//! one file may name a key of another. Every entry remembers its own file, and an error or note
//! about it names that file and line; an error about something no file sets (an agent no file
//! defines) names all of them. Relative paths in values are not resolved against any file's
//! directory: as in Flume, they are relative to the working directory.

mod avro;
pub mod cipher_suites;
mod components;
mod exec;
mod hadoop_conf;
mod hdfs;
mod http;
mod http_sink;
mod interpolate;
pub mod java_keystore;
mod java_syntax;
mod kafka_channel;
mod kafka_client_keys;
mod kafka_producer;
mod kafka_security;
mod kafka_source;
mod kafka_topic;
mod pollable;
mod properties;
mod rpc_target;
mod serializer;
mod sink_group;
mod spooldir;
mod syslog;
mod taildir;
mod thrift;
mod tls;

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

pub use avro::*;
pub use components::*;
pub use exec::*;
pub use hdfs::*;
pub use http::*;
pub use http_sink::*;
pub use interpolate::Lookups;
pub use java_syntax::{
    java_date_format, java_pattern, java_regex, java_regex_whole, java_replacement,
};
pub use kafka_channel::*;
pub use kafka_producer::ProducerProperty;
pub use kafka_source::*;
pub use kafka_topic::problem as kafka_topic_problem;
pub use pollable::PollBackoff;
pub use properties::{Entry, Properties};
pub use rpc_target::RpcTarget;
use rpc_target::{parse_rpc_target, rpc_timeouts};
pub use serializer::*;
pub use sink_group::*;
pub use spooldir::*;
pub use syslog::*;
pub use taildir::*;
pub use thrift::*;
pub use tls::{Protocols, TlsClientConfig, TlsServerConfig};

/// A configuration error, printed as `FILE:LINE: KEY: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where: the one file that sets the entry the error is about (`line` is then its line);
    /// for an error about what no file sets, every file loaded, and no line.
    pub files: Vec<PathBuf>,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
    /// Errors of other components found in the same pass, each printed on a line of its own
    /// after this one: a file converted from Flume is fixed in one round, not one per error.
    pub also: Vec<ConfigError>,
}

impl ConfigError {
    /// Points the error at `entry`'s file and line.
    pub fn locate(&mut self, entry: &Entry) {
        self.files = vec![entry.file.to_path_buf()];
        self.line = Some(entry.line);
    }

    /// The first of `errors` carrying the rest, or `None` when there are none.
    fn gathered(errors: Vec<ConfigError>) -> Option<ConfigError> {
        let mut errors = errors.into_iter();
        let mut first = errors.next()?;
        first.also.extend(errors);
        Some(first)
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let files: Vec<String> = self.files.iter().map(|p| p.display().to_string()).collect();
        write!(f, "{}", files.join(", "))?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {}", Elided(key))?;
        }
        write!(f, ": {}", Elided(&self.message))?;
        for other in &self.also {
            write!(f, "\n{other}")?;
        }
        Ok(())
    }
}

/// Text shown with its middle left out past [`Elided::MAX`] bytes: an error about a
/// multi-megabyte value (a key or value pasted by mistake, a binary file given as the
/// configuration) should name the line, not fill the terminal with the value.
struct Elided<'a>(&'a str);

impl Elided<'_> {
    const MAX: usize = 1000;
    const TAIL: usize = 200;
}

impl std::fmt::Display for Elided<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.0;
        if s.len() <= Self::MAX {
            return f.write_str(s);
        }
        let mut head = Self::MAX - Self::TAIL;
        while !s.is_char_boundary(head) {
            head -= 1;
        }
        let mut tail = s.len() - Self::TAIL;
        while !s.is_char_boundary(tail) {
            tail += 1;
        }
        write!(
            f,
            "{} … [{} bytes left out] … {}",
            &s[..head],
            tail - head,
            &s[tail..]
        )
    }
}

impl std::error::Error for ConfigError {}

/// The one name of `names`, if there is exactly one (a source or sink left without a channel
/// is bound to an agent's only channel).
fn one_of(names: &[String]) -> Option<&str> {
    match names {
        [one] => Some(one.as_str()),
        _ => None,
    }
}

/// Refuses two file channels that share a directory: they would share one log (the second
/// could not lock it) or one checkpoint file (`channel.ckpt`), each overwriting the other's
/// position so that one channel's undelivered events are taken as delivered. Flume refuses
/// this too (its directories are locked). A channel's own `checkpointDir` may be its
/// `dataDirs`.
fn check_file_channel_dirs(root: &Section, channels: &[ChannelConfig]) -> Result<(), ConfigError> {
    let mut seen: Vec<(PathBuf, &str, &str)> = Vec::new();
    for c in channels {
        let ChannelKind::File(f) = &c.kind else {
            continue;
        };
        for (key, dir) in [
            ("dataDirs", &f.data_dir),
            ("checkpointDir", &f.checkpoint_dir),
        ] {
            let abs = place_of(dir);
            if let Some((_, other, other_key)) = seen
                .iter()
                .find(|(d, other, _)| *d == abs && *other != c.name)
            {
                let s = root.child(&format!("channels.{}.", c.name));
                // Unset keys mean Flume's defaults under ~/.flume: say so, or the message
                // names a directory the file never mentions.
                let set = |channel: &str, key: &str| {
                    root.child(&format!("channels.{channel}."))
                        .entry(key)
                        .is_some()
                };
                let dir = dir.display();
                let clash = match (set(&c.name, key), set(other, other_key)) {
                    (false, false) if key == *other_key => format!(
                        "neither this channel nor channel {other} sets {key}, so both use the \
                         default {dir}"
                    ),
                    (true, true) => format!("{dir} is also the {other_key} of channel {other}"),
                    (mine, theirs) => format!(
                        "{dir}{} is also the {other_key} of channel {other}{}",
                        if mine {
                            ""
                        } else {
                            " (the default: this channel does not set it)"
                        },
                        if theirs {
                            ""
                        } else {
                            " (its default: it does not set it)"
                        },
                    ),
                };
                return Err(s.error(
                    Some(key),
                    format!(
                        "{clash}; two file channels cannot share a directory (each keeps its \
                         log and its checkpoint there): give each its own `dataDirs` and \
                         `checkpointDir`"
                    ),
                ));
            }
            seen.push((abs, &c.name, key));
        }
    }
    Ok(())
}

/// Where `dir` is, so that two spellings of one directory compare equal: through symlinks
/// when it exists, else with `.` and `..` taken away by name (a directory not made yet has no
/// symlink under it that could matter, unless a parent is one; then the log's own lock still
/// refuses the second channel at start).
fn place_of(dir: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(dir) {
        return real;
    }
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    let mut out = PathBuf::new();
    for part in abs.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The validated configuration of one agent.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    pub agent: String,
    /// The files the configuration was read from, in load order.
    pub files: Vec<PathBuf>,
    pub sources: Vec<SourceConfig>,
    pub channels: Vec<ChannelConfig>,
    pub sinks: Vec<SinkConfig>,
    /// `sinkgroups`: sinks driven together by one runner; a sink in none runs on its own.
    pub sink_groups: Vec<SinkGroupConfig>,
    /// Keys accepted but without effect in weir, and keys not recognised: logged at start.
    pub notes: Vec<String>,
    /// What the configuration names but the agent runs without, as Flume runs without it (a
    /// listed component with no keys, a reference to an undefined channel or sink, a memory
    /// channel size replaced by Flume's default): logged as warnings at start.
    pub left_out: Vec<String>,
}

impl AgentConfig {
    /// Loads and merges `files` (a later file's keys override an earlier one's), resolves the
    /// `${…}` references of agent `agent`'s keys (environment, and no `-D` options) and builds
    /// its configuration.
    pub fn load(files: &[PathBuf], agent: &str) -> Result<AgentConfig, ConfigError> {
        let mut props = Properties::load_all(files)?;
        props.interpolate(&format!("{agent}."), &Lookups::process(&[]))?;
        AgentConfig::from_properties(&props, agent)
    }

    pub fn from_properties(props: &Properties, agent: &str) -> Result<AgentConfig, ConfigError> {
        let root = Section::new(props, format!("{agent}."));
        // A name listed twice is one component, as in Flume (which reads the list as a set).
        let list = |what: &str| -> Vec<String> {
            let mut names: Vec<String> = Vec::new();
            for name in root.string(what).iter().flat_map(|v| v.split_whitespace()) {
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_owned());
                }
            }
            names
        };
        let source_names = list("sources");
        let channel_names = list("channels");
        let sink_names = list("sinks");
        if source_names.is_empty() && channel_names.is_empty() && sink_names.is_empty() {
            let agents = props.agent_names();
            let define = props.the_files_define();
            let hint = if agents.is_empty() {
                format!("{define} no agent (expected keys like `a.sources = r1`)")
            } else {
                format!("{define} agent(s) {}; pass one with -n", agents.join(", "))
            };
            return Err(root.error(None, format!("no agent named '{agent}': {hint}")));
        }
        let mut notes = Vec::new();
        let mut left_out = Vec::new();
        // Flume leaves out, with a warning, a listed component that has no keys at all, and
        // runs the rest: real configurations carry such leftovers (a name kept after its lines
        // were deleted, an inline `#` comment read as more names).
        let configured = |list: &str, names: Vec<String>, left_out: &mut Vec<String>| {
            let at = root.entry(list).map(|e| e.at()).unwrap_or_default();
            names
                .into_iter()
                .filter(|name| {
                    let prefix = root.full(&format!("{list}.{name}."));
                    let any = props.with_prefix(&prefix).next().is_some();
                    if !any {
                        left_out.push(format!(
                            "{at}: {agent}.{list}: '{name}' has no keys (no `{prefix}type`); left \
                             out, as Flume leaves it out"
                        ));
                    }
                    any
                })
                .collect::<Vec<String>>()
        };
        let listed_sources = source_names.clone();
        let listed_channels = channel_names.clone();
        let listed_sinks = sink_names.clone();
        let channel_names = configured("channels", channel_names, &mut left_out);
        let source_names = configured("sources", source_names, &mut left_out);
        let sink_names = configured("sinks", sink_names, &mut left_out);
        if channel_names.is_empty() {
            let why = if listed_channels.is_empty() {
                format!(
                    "agent '{agent}' has no channels: add `{agent}.channels = c1` and define c1"
                )
            } else {
                // Every listed channel was left out for having no keys: say so, and name the
                // channels that do have keys but are not listed (a list and its keys that
                // drifted apart).
                let prefix = root.full("channels.");
                let mut unlisted: Vec<&str> = props
                    .with_prefix(&prefix)
                    .filter_map(|(rest, _)| rest.split_once('.').map(|(name, _)| name))
                    .filter(|name| !listed_channels.iter().any(|l| l == name))
                    .collect();
                unlisted.dedup();
                let keys_elsewhere = match unlisted.as_slice() {
                    [] => String::new(),
                    names => format!(
                        "; keys are given for {}, which `{agent}.channels` does not list",
                        names
                            .iter()
                            .map(|n| format!("'{n}'"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                format!(
                    "agent '{agent}' has no channel left: {} listed, but given no keys \
                     (`{}<name>.type` and the rest){keys_elsewhere}",
                    listed_channels.join(" "),
                    root.full("channels.")
                )
            };
            return Err(root.error(Some("channels"), why));
        }

        // Each component is read even after another failed, so that one run names every
        // component weir cannot use (a converted Flume file often has several).
        let mut errors = Vec::new();
        let mut channels = Vec::new();
        for name in &channel_names {
            let s = root.child(&format!("channels.{name}.")).gathering();
            match first_read(
                &s,
                ChannelConfig::parse(name, &s, &mut notes, &mut left_out),
            ) {
                Ok(c) => channels.push(c),
                Err(e) => errors.push(e),
            }
            s.note_unused(&mut notes);
        }
        if let Err(e) = check_file_channel_dirs(&root, &channels) {
            errors.push(e);
        }
        let mut sources = Vec::new();
        for name in &source_names {
            let s = root.child(&format!("sources.{name}.")).gathering();
            let parsed =
                SourceConfig::parse(agent, name, &s, &channel_names, &mut notes, &mut left_out);
            let src = match first_read(&s, parsed) {
                Ok(src) => src,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            s.note_unused(&mut notes);
            // It names no defined channel: Flume leaves the source out.
            if !src.channels.iter().any(|ch| channel_names.contains(ch)) {
                left_out.push(format!(
                    "{}: {}: source {name} refers to no channel in `{agent}.channels` ({}); \
                     left out, as Flume leaves it out",
                    s.entry("channels").map(|e| e.at()).unwrap_or_default(),
                    s.full("channels"),
                    channel_names.join(" ")
                ));
                continue;
            }
            sources.push(src);
        }
        let mut sinks = Vec::new();
        for name in &sink_names {
            let s = root.child(&format!("sinks.{name}.")).gathering();
            let parsed = SinkConfig::parse(agent, name, &s, one_of(&channel_names), &mut notes);
            let sink = match first_read(&s, parsed) {
                Ok(sink) => sink,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            s.note_unused(&mut notes);
            if !channel_names.contains(&sink.channel) {
                left_out.push(format!(
                    "{}: {}: sink {name} refers to channel '{}', which is not one of agent \
                     {agent}'s channels ({}); left out, as Flume leaves it out",
                    s.entry("channel").map(|e| e.at()).unwrap_or_default(),
                    s.full("channel"),
                    sink.channel,
                    channel_names.join(" ")
                ));
                continue;
            }
            sinks.push(sink);
        }
        let tx_capacity = |name: &str| {
            channels
                .iter()
                .find(|c| c.name == name)
                .map(|c| c.kind.transaction_capacity())
                .unwrap_or(usize::MAX)
        };
        // Checked before any error is returned, so that one run names these together with
        // the values that cannot be read (for the components that could be read).
        for sink in &sinks {
            let cap = tx_capacity(&sink.channel);
            if sink.batch_size > cap {
                let s = root.child(&format!("sinks.{}.", sink.name));
                // The key the file sets (the Kafka sink also reads Flume 1.6's `batchSize`), or
                // the current one when the batch size is the default.
                let keys: &[&str] = match sink.kind {
                    SinkKind::FileRoll(_) => &["sink.batchSize"],
                    SinkKind::Hdfs(_) => &["hdfs.batchSize"],
                    SinkKind::Kafka(_) => &["flumeBatchSize", "batchSize"],
                    SinkKind::Avro(_) | SinkKind::Thrift(_) => &["batch-size"],
                    _ => &["batchSize"],
                };
                let set = keys.iter().copied().find(|k| s.entry(k).is_some());
                let key = set.unwrap_or(keys[0]);
                let default = if set.is_none() {
                    format!(" (the default: `{key}` is not set)")
                } else {
                    String::new()
                };
                errors.push(s.error(
                    Some(key),
                    format!(
                        "batch size {}{default} exceeds the transactionCapacity {cap} of channel \
                         {}: lower `{key}` or raise the channel's transactionCapacity",
                        sink.batch_size, sink.channel
                    ),
                ));
            }
        }
        // As Flume does at startup (it drops such a source): a batch must fit in one put
        // transaction of every channel the source feeds.
        for src in &sources {
            if let Some(batch) = src.kind.checked_batch_size()
                && let Some(ch) = src.channels.iter().find(|c| batch > tx_capacity(c))
            {
                let s = root.child(&format!("sources.{}.", src.name));
                let default = if s.entry("batchSize").is_none() {
                    " (the default: `batchSize` is not set)"
                } else {
                    ""
                };
                errors.push(s.error(
                    Some("batchSize"),
                    format!(
                        "batch size {batch}{default} exceeds the transactionCapacity {} of \
                         channel {ch}: lower `batchSize` or raise the channel's \
                         transactionCapacity",
                        tx_capacity(ch)
                    ),
                ));
            }
        }
        if let Some(e) = ConfigError::gathered(errors) {
            return Err(e);
        }
        if sources.is_empty() && sinks.is_empty() && !left_out.is_empty() {
            return Err(root.error(
                None,
                format!(
                    "agent '{agent}' has no source or sink left to run; left out:\n  {}",
                    left_out.join("\n  ")
                ),
            ));
        }
        for sink in &sinks {
            if let SinkKind::Hdfs(h) = &sink.kind
                && h.needs_timestamp_header
            {
                let feeding = sources
                    .iter()
                    .filter(|src| src.channels.contains(&sink.channel))
                    .filter(|src| {
                        !src.interceptors.iter().any(|i| match i {
                            InterceptorConfig::Timestamp { header, .. } => header == "timestamp",
                            InterceptorConfig::Static { key, .. } => key == "timestamp",
                            _ => false,
                        })
                    })
                    // The Kafka source stamps every event (the record's time, else now).
                    .filter(|src| !matches!(src.kind, SourceKind::Kafka(_)));
                let (partly, unstamped): (Vec<&SourceConfig>, Vec<&SourceConfig>) = feeding
                    .partition(|src| {
                        matches!(src.kind, SourceKind::Syslog(_))
                            || src.interceptors.iter().any(|i| {
                                matches!(i, InterceptorConfig::RegexExtractor { serializers, .. }
                                    if serializers.iter().any(|s| s.header == "timestamp"))
                            })
                    });
                let (syslog, extracted): (Vec<&SourceConfig>, Vec<&SourceConfig>) = partly
                    .into_iter()
                    .partition(|src| matches!(src.kind, SourceKind::Syslog(_)));
                let names = |list: &[&SourceConfig]| {
                    list.iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let head = format!(
                    "sink {}: hdfs.path or hdfs.filePrefix has time escapes, so every event needs \
                     a `timestamp` header; an event without one stops the sink, as in Flume",
                    sink.name
                );
                if !unstamped.is_empty() {
                    notes.push(format!(
                        "{head}, and source(s) {} feeding channel {} add none (no timestamp \
                         interceptor): unless their clients set it, add a timestamp interceptor, \
                         or set hdfs.useLocalTimeStamp = true",
                        names(&unstamped),
                        sink.channel
                    ));
                }
                if !syslog.is_empty() {
                    notes.push(format!(
                        "{head}, and syslog source(s) {} feeding channel {} stamp only the \
                         messages they can parse (and syslogtcp and syslogudp not those whose \
                         RFC 5424 date is `-`, which multiport_syslogtcp stamps with the time \
                         they came, as in Flume): add a timestamp interceptor with preserveExisting = \
                         true, or set hdfs.useLocalTimeStamp = true",
                        names(&syslog),
                        sink.channel
                    ));
                }
                if !extracted.is_empty() {
                    notes.push(format!(
                        "{head}, and source(s) {} feeding channel {} set it only from a \
                         regex_extractor interceptor, on the events its regex matches: if some \
                         may not match, add a timestamp interceptor with preserveExisting = true \
                         after it, or set hdfs.useLocalTimeStamp = true",
                        names(&extracted),
                        sink.channel
                    ));
                }
            }
        }
        let kept_sinks: Vec<String> = sinks.iter().map(|k| k.name.clone()).collect();
        let sink_groups = parse_sink_groups(
            &root,
            agent,
            (&kept_sinks, &listed_sinks),
            &mut notes,
            &mut left_out,
        )?;
        // Config filters were applied when the references were resolved (`interpolate`).
        let filter_names: Vec<&str> = props
            .get(&format!("{agent}.configfilters"))
            .map(|e| e.value.split_whitespace().collect())
            .unwrap_or_default();
        let listed_groups = list("sinkgroups");
        for (key, entry) in props.with_prefix(&format!("{agent}.")) {
            let known = [
                "sources",
                "channels",
                "sinks",
                "sinkgroups",
                "configfilters",
            ];
            let top = key.split('.').next().unwrap_or("");
            let defined = match top {
                "sources" => key
                    .split('.')
                    .nth(1)
                    .is_some_and(|n| listed_sources.iter().any(|s| s == n)),
                "channels" => key
                    .split('.')
                    .nth(1)
                    .is_some_and(|n| listed_channels.iter().any(|s| s == n)),
                "sinks" => key
                    .split('.')
                    .nth(1)
                    .is_some_and(|n| listed_sinks.iter().any(|s| s == n)),
                "sinkgroups" => key
                    .split('.')
                    .nth(1)
                    .is_some_and(|n| listed_groups.iter().any(|g| g == n)),
                "configfilters" => key
                    .split('.')
                    .nth(1)
                    .is_some_and(|n| filter_names.contains(&n)),
                _ => false,
            };
            if !known.contains(&key) && !defined {
                let why = if known.contains(&top) {
                    format!("it belongs to no component listed in `{agent}.{top}`")
                } else {
                    format!(
                        "`{top}` is none of {}",
                        known.map(|k| format!("`{agent}.{k}`")).join(", ")
                    )
                };
                notes.push(format!("{}: {agent}.{key}: ignored: {why}", entry.at()));
            }
        }
        // Java properties have no comment after a value: a `# …` there is part of the value.
        // Lists are left out here (their extra names are reported as components without
        // keys), and so are values the component refused (the error says it then).
        for (key, entry) in props.with_prefix(&format!("{agent}.")) {
            let is_list = ["sources", "channels", "sinks", "sinkgroups", "interceptors"]
                .iter()
                .any(|l| key == *l || key.ends_with(&format!(".{l}")));
            if !is_list && (entry.value.contains(" #") || entry.value.contains("\t#")) {
                notes.push(format!(
                    "{}: {agent}.{key}: the value '{}' holds a `#` after a space: Java properties \
                     have no comments after a value, so it is part of the value (put a comment \
                     on a line of its own)",
                    entry.at(),
                    entry.value
                ));
            }
            if !entry.dropped_escapes.is_empty() {
                let written: Vec<String> = entry
                    .dropped_escapes
                    .iter()
                    .map(|c| format!("`\\{c}`"))
                    .collect();
                let read: Vec<String> = entry
                    .dropped_escapes
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect();
                notes.push(format!(
                    "{}: {agent}.{key}: {} in the file reads as {}: Java properties drop a \
                     backslash that starts no escape, and Flume reads the file so; write two \
                     backslashes for one (`\\\\{}`)",
                    entry.at(),
                    written.join(", "),
                    read.join(", "),
                    entry.dropped_escapes[0]
                ));
            }
            // Neither Java nor weir expands `~`: such a path is relative, under a directory
            // named `~` in the working directory, and shows only at start if at all.
            let value = entry.value.trim();
            if value == "~" || value.starts_with("~/") || value.contains(",~/") {
                notes.push(format!(
                    "{}: {agent}.{key}: '{value}' starts with `~`, which is not expanded (nor by \
                     Flume): it names a directory `~` under the working directory; write the \
                     home directory's absolute path",
                    entry.at()
                ));
            }
            // `dataDirs` is comma-separated: two paths apart by a space are one directory.
            if key.ends_with(".dataDirs")
                && value
                    .split(',')
                    .any(|d| d.trim().contains(char::is_whitespace))
            {
                notes.push(format!(
                    "{}: {agent}.{key}: '{value}' holds a space inside a directory name: dataDirs \
                     is comma-separated (and weir uses its first directory), so this is one \
                     directory with a space in its name",
                    entry.at()
                ));
            }
        }
        Ok(AgentConfig {
            agent: agent.to_owned(),
            files: props.files.iter().map(|f| f.to_path_buf()).collect(),
            sources,
            channels,
            sinks,
            sink_groups,
            notes,
            left_out,
        })
    }

    /// A human-readable wiring diagram, for `weir agent --check`.
    pub fn describe(&self) -> String {
        let files: Vec<String> = self.files.iter().map(|f| f.display().to_string()).collect();
        let mut out = format!("agent {} ({})\n", self.agent, files.join(", "));
        for s in &self.sources {
            out.push_str(&format!(
                "  source  {} [{}] -> {}\n",
                s.name,
                s.kind.type_name(),
                s.channels.join(", ")
            ));
            if let Some(selector) = s.selector.describe() {
                out.push_str(&format!("          selector {selector}\n"));
            }
        }
        for c in &self.channels {
            out.push_str(&format!("  channel {} [{}]\n", c.name, c.kind.type_name()));
        }
        for k in &self.sinks {
            out.push_str(&format!(
                "  sink    {} [{}] <- {}\n",
                k.name,
                k.kind.type_name(),
                k.channel
            ));
        }
        for g in &self.sink_groups {
            out.push_str(&format!("  group   {}\n", g.describe()));
        }
        out
    }
}

/// What reading a component from the gathering section `s` gave, unless some of its values
/// could not be read: then those, all of them, since the reading went on with defaults in
/// their place and its outcome (a check failing on such a default) says nothing certain.
fn first_read<T>(s: &Section, read: Result<T, ConfigError>) -> Result<T, ConfigError> {
    match ConfigError::gathered(s.take_deferred()) {
        Some(e) => Err(e),
        None => read,
    }
}

/// The full keys the readers of a configuration asked for, set or not, and those already
/// noted as unknown. Only a key asked for itself counts as read: counting `X.*` once `X` is
/// would hide a misspelt key under a value with settings of its own
/// (`processor.selector.maxTimeout`).
#[derive(Default)]
struct KeysRead {
    asked: BTreeSet<String>,
    noted: BTreeSet<String>,
}

/// Whether the key `written` looks like a misspelling of `meant`: the same in another case, or
/// one edit away (two for keys longer than six characters), counting a swap of two
/// neighbouring letters as one. Java properties are case-sensitive and Flume ignores keys it
/// does not know, so such a typo does nothing, silently.
fn looks_like(written: &str, meant: &str) -> bool {
    let most = if meant.chars().count() > 6 { 2 } else { 1 };
    written.eq_ignore_ascii_case(meant) || strsim::damerau_levenshtein(written, meant) <= most
}

/// Whether keys `a` and `b` have as many parts but differ before the last one: then the
/// difference is most likely in a name the user chose (`serializers.s2.type` beside
/// `serializers.s1.type`), not a misspelling.
fn other_parent(a: &str, b: &str) -> bool {
    let parent = |k: &str| k.rsplit_once('.').map(|(p, _)| p.to_owned());
    a.matches('.').count() == b.matches('.').count() && parent(a) != parent(b)
}

/// The keys under one prefix (`a.sources.r1.`), with typed accessors whose errors carry the
/// file, line and full key. Remembers which keys were read, so the rest can be reported.
pub struct Section<'a> {
    props: &'a Properties,
    prefix: String,
    /// The keys read, shared by the sections [`Section::child`] makes from one root, so that
    /// a component's check covers what its parts (an interceptor, a serializer) read.
    read: Rc<RefCell<KeysRead>>,
    /// When gathering ([`Section::gathering`]): the values this section and its children could
    /// not read, each given its default meanwhile so that the component's other keys are read
    /// too, and one run names every bad value (audit 17, audit 23).
    deferred: Option<Rc<RefCell<Vec<ConfigError>>>>,
    /// Set while [`Section::strictly`] runs: errors are returned, not gathered.
    strict: Cell<bool>,
}

impl<'a> Section<'a> {
    pub fn new(props: &'a Properties, prefix: String) -> Self {
        Section {
            props,
            prefix,
            read: Rc::default(),
            deferred: None,
            strict: Cell::new(false),
        }
    }

    pub fn props(&self) -> &'a Properties {
        self.props
    }

    pub fn child(&self, sub: &str) -> Section<'a> {
        let mut child = Section::new(self.props, format!("{}{sub}", self.prefix));
        child.read = Rc::clone(&self.read);
        child.deferred = self.deferred.clone();
        child
    }

    /// This section, gathering the values its accessors cannot read instead of failing at the
    /// first: the caller takes them with [`Section::take_deferred`] after reading the
    /// component, and when there are any, reports them instead of what the reading gave (which
    /// rests on defaults put in their place).
    pub fn gathering(mut self) -> Self {
        self.deferred = Some(Rc::default());
        self
    }

    /// The values that could not be read while gathering, in the order they were read.
    pub fn take_deferred(&self) -> Vec<ConfigError> {
        self.deferred
            .as_ref()
            .map(|d| std::mem::take(&mut *d.borrow_mut()))
            .unwrap_or_default()
    }

    /// Runs `read` with errors returned, not gathered: for a caller that handles a value it
    /// cannot read itself (the memory channel's fallbacks to Flume's defaults).
    pub fn strictly<T>(&self, read: impl FnOnce() -> T) -> T {
        let was = self.strict.replace(true);
        let out = read();
        self.strict.set(was);
        out
    }

    /// `error` about a value, or, while gathering, `default` with the error kept for later.
    fn value_error<T>(&self, error: ConfigError, default: T) -> Result<T, ConfigError> {
        match &self.deferred {
            Some(d) if !self.strict.get() => {
                d.borrow_mut().push(error);
                Ok(default)
            }
            _ => Err(error),
        }
    }

    /// The full key for `key`.
    pub fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub fn entry(&self, key: &str) -> Option<&'a Entry> {
        let full = self.full(key);
        let entry = self.props.get(&full);
        self.read.borrow_mut().asked.insert(full);
        entry
    }

    /// An error about `key` (or the section when `None`), at the key's file and line if it is
    /// set.
    pub fn error(&self, key: Option<&str>, message: String) -> ConfigError {
        let full = key.map(|k| self.full(k));
        let entry = self.entry_or_first(full.as_deref());
        let mut message = message;
        if let Some(value) = full
            .as_deref()
            .and_then(|k| self.props.get(k))
            .map(|e| &e.value)
            && (value.contains(" #") || value.contains("\t#"))
        {
            message.push_str(
                " (Java properties have no comments after a value: the `#` and what follows \
                 are part of it)",
            );
        }
        let mut error = ConfigError {
            files: self.props.files.iter().map(|f| f.to_path_buf()).collect(),
            line: None,
            key: full,
            message,
            also: Vec::new(),
        };
        if let Some(e) = entry {
            error.locate(e);
        }
        error
    }

    /// The entry of `full` (a full key), else (a key not set) where this component is first
    /// configured (first file, then first line), else none.
    fn entry_or_first(&self, full: Option<&str>) -> Option<&Entry> {
        full.and_then(|k| self.props.get(k)).or_else(|| {
            self.props
                .with_prefix(&self.prefix)
                .map(|(_, e)| e)
                .min_by_key(|e| self.props.position(e))
        })
    }

    /// `FILE:LINE: KEY` for a note about `key`, located as [`Section::error`] locates errors.
    pub fn located(&self, key: &str) -> String {
        let full = self.full(key);
        match self.entry_or_first(Some(&full)) {
            Some(e) => format!("{}: {full}", e.at()),
            None => full,
        }
    }

    pub fn string(&self, key: &str) -> Option<String> {
        self.entry(key)
            .map(|e| e.value.clone())
            .filter(|v| !v.is_empty())
    }

    /// The value of `key`, else that of Flume's deprecated name for it, `old`, with a note
    /// saying so (and a note that `old` is ignored when both are set).
    pub fn string_or_deprecated(
        &self,
        key: &str,
        old: &str,
        notes: &mut Vec<String>,
    ) -> Option<String> {
        match self.string(key) {
            Some(v) => {
                self.superseded(old, key, notes);
                Some(v)
            }
            None => self.deprecated(old, key, notes),
        }
    }

    /// Notes `old`, another name of `new`, as ignored when both are set: the reader took
    /// `new` (as Flume does), and `old` is a known key, not an unknown one.
    pub fn superseded(&self, old: &str, new: &str, notes: &mut Vec<String>) {
        if self.string(old).is_some() {
            notes.push(format!(
                "{}: ignored, {} is set",
                self.located(old),
                self.full(new)
            ));
        }
    }

    /// Notes `key` as ignored `with` a setting of this component (`selector.type =
    /// multiplexing`): a key of another type or mode of it, which that setting does not read,
    /// rather than an unknown one.
    pub fn ignored_with(&self, key: &str, with: &str, notes: &mut Vec<String>) {
        if let Some(e) = self.entry(key) {
            notes.push(format!(
                "{}: {}: ignored with {with}",
                e.at(),
                self.full(key)
            ));
        }
    }

    /// [`Section::ignored_with`] for every key set under `prefix.` (`selector.mapping.`).
    pub fn ignored_with_under(&self, prefix: &str, with: &str, notes: &mut Vec<String>) {
        let under = format!("{}{prefix}.", self.prefix);
        for (rel, _) in self.props.with_prefix(&under) {
            self.ignored_with(&format!("{prefix}.{rel}"), with, notes);
        }
    }

    /// [`Section::ignored_with`] for the keys `reader` asks for that no reader of this section
    /// did: the keys of a part this setting leaves out (a spillable channel's file part), named
    /// by the code that reads them rather than by a copy of its list. `reader` runs on a section
    /// of its own, so what it reads and notes counts for nothing else.
    pub fn ignored_with_keys_of<T>(
        &self,
        reader: impl FnOnce(&Section<'a>) -> T,
        with: &str,
        notes: &mut Vec<String>,
    ) {
        let probe = Section::new(self.props, self.prefix.clone());
        let _ = reader(&probe);
        let probed = std::mem::take(&mut probe.read.borrow_mut().asked);
        for full in probed {
            let asked = self.read.borrow().asked.contains(&full);
            if let Some(key) = full.strip_prefix(&self.prefix)
                && !asked
            {
                self.ignored_with(key, with, notes);
            }
        }
    }

    /// The value of Flume's deprecated key `old`, with a note that it is read as `new`.
    pub fn deprecated(&self, old: &str, new: &str, notes: &mut Vec<String>) -> Option<String> {
        let v = self.string(old)?;
        notes.push(format!(
            "{}: {}: deprecated Flume key, read as {}",
            self.entry(old).map(|e| e.at()).unwrap_or_default(),
            self.full(old),
            self.full(new)
        ));
        Some(v)
    }

    pub fn string_or(&self, key: &str, default: &str) -> String {
        self.string(key).unwrap_or_else(|| default.to_owned())
    }

    pub fn required(&self, key: &str, hint: &str) -> Result<String, ConfigError> {
        self.string(key).ok_or_else(|| {
            let mut message = format!("missing: {hint}");
            if let Some((typo, at)) = self.misspelling_of(key) {
                message.push_str(&format!(
                    " ({at}: {}{typo} looks like a misspelling of it)",
                    self.prefix
                ));
            }
            self.error(Some(key), message)
        })
    }

    /// A key of this section that [`looks_like`] a misspelling of `key`: without this, `prot`
    /// for `port` shows only as "port missing".
    fn misspelling_of(&self, key: &str) -> Option<(String, String)> {
        self.props
            .with_prefix(&self.prefix)
            .find(|(k, _)| *k != key && looks_like(k, key))
            .map(|(k, entry)| (k.to_owned(), entry.at()))
    }

    pub fn parse_or<T: std::str::FromStr>(
        &self,
        key: &str,
        default: T,
        what: &str,
    ) -> Result<T, ConfigError> {
        match self.string(key) {
            None => Ok(default),
            Some(v) => match v.replace('_', "").parse() {
                Ok(parsed) => Ok(parsed),
                Err(_) => self.value_error(
                    self.error(Some(key), format!("'{v}' is not {what}")),
                    default,
                ),
            },
        }
    }

    /// A required TCP/UDP port number.
    pub fn port(&self, key: &str) -> Result<u16, ConfigError> {
        let value = self.required(
            key,
            &format!("set `{}` to the port to listen on", self.full(key)),
        )?;
        self.port_number(key, &value)
    }

    /// `value` (read from `key`) as a port number.
    pub fn port_number(&self, key: &str, value: &str) -> Result<u16, ConfigError> {
        match value.parse::<u16>() {
            Ok(port) => Ok(port),
            Err(_) => self.value_error(
                self.error(
                    Some(key),
                    format!("'{value}' is not a port number (0-65535)"),
                ),
                0,
            ),
        }
    }

    pub fn u64_or(&self, key: &str, default: u64) -> Result<u64, ConfigError> {
        self.parse_or(key, default, "a non-negative whole number")
    }

    pub fn usize_or(&self, key: &str, default: usize) -> Result<usize, ConfigError> {
        self.parse_or(key, default, "a non-negative whole number")
    }

    pub fn positive_or(&self, key: &str, default: u64) -> Result<u64, ConfigError> {
        let v = self.u64_or(key, default)?;
        if v == 0 {
            return self.value_error(
                self.error(Some(key), "must be greater than 0".into()),
                default,
            );
        }
        Ok(v)
    }

    /// What `read` (an accessor's result for one key) gave, or else `default` with a warning
    /// naming the key and `default_shown`: for the keys Flume reads with a fallback instead of
    /// a failure. Flume's memory channel catches a number it cannot parse (or a size ≤ 0),
    /// warns and uses its default, so a file whose `capacity` carries an inline `# comment`
    /// runs there; other components refuse such values, in Flume as here.
    pub fn or_flume_fallback<T>(
        &self,
        read: Result<T, ConfigError>,
        default: T,
        default_shown: &str,
        warnings: &mut Vec<String>,
    ) -> T {
        read.unwrap_or_else(|e| {
            warnings.push(format!(
                "{e}; {default_shown} is used instead, as Flume's memory channel does"
            ));
            default
        })
    }

    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.string(key).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if v == "true" => Ok(true),
            Some(v) if v == "false" => Ok(false),
            Some(v) => self.value_error(
                self.error(Some(key), format!("'{v}' is not true or false")),
                default,
            ),
        }
    }

    pub fn millis_or(&self, key: &str, default_ms: u64) -> Result<Duration, ConfigError> {
        Ok(Duration::from_millis(self.u64_or(key, default_ms)?))
    }

    pub fn seconds_or(&self, key: &str, default_s: u64) -> Result<Duration, ConfigError> {
        Ok(Duration::from_secs(self.u64_or(key, default_s)?))
    }

    /// Records a note for a Flume key weir accepts but does not need.
    pub fn accept_without_effect(&self, key: &str, why: &str, notes: &mut Vec<String>) {
        if let Some(e) = self.entry(key) {
            notes.push(format!(
                "{}: {}: accepted, no effect in weir: {why}",
                e.at(),
                self.full(key)
            ));
        }
    }

    /// The key of this section that `key` looks like a misspelling of, among those a reader
    /// asked for and the file does not set (a key set beside it was meant as written, or is
    /// another component's), and in the same place ([`other_parent`]).
    fn meant_by<'r>(&self, read: &'r KeysRead, key: &str) -> Option<&'r String> {
        read.asked
            .range::<str, _>((Bound::Included(self.prefix.as_str()), Bound::Unbounded))
            .map_while(|k| Some((k, k.strip_prefix(&self.prefix)?)))
            .filter(|(k, rel)| {
                self.props.get(k).is_none() && looks_like(key, rel) && !other_parent(key, rel)
            })
            .min_by_key(|(_, rel)| strsim::damerau_levenshtein(key, rel))
            .map(|(k, _)| k)
    }

    /// Whether no reader asked for `key`, nor for a key it looks like a misspelling of: what
    /// [`Section::note_unused`] would note as unknown without a hint, for a component that
    /// can say more about such a key.
    pub fn unaccounted(&self, key: &str) -> bool {
        let read = self.read.borrow();
        !read.asked.contains(&self.full(key)) && self.meant_by(&read, key).is_none()
    }

    /// Notes every key of this section that no accessor (of it or of a child) asked for:
    /// Flume ignores unknown keys too, but a typo should be visible. The note names the key
    /// it looks like a misspelling of ([`Section::meant_by`]). A key is noted once, though an
    /// enclosing section is checked after this one.
    pub fn note_unused(&self, notes: &mut Vec<String>) {
        let mut read = self.read.borrow_mut();
        for (key, entry) in self.props.with_prefix(&self.prefix) {
            let full = self.full(key);
            if read.asked.contains(&full) || read.noted.contains(&full) {
                continue;
            }
            let hint = self
                .meant_by(&read, key)
                .map(|k| format!(" (it looks like a misspelling of {k})"))
                .unwrap_or_default();
            notes.push(format!(
                "{}: {full}: unknown key, ignored{hint}",
                entry.at()
            ));
            read.noted.insert(full);
        }
    }
}

/// `rel` under the user's home directory (the current directory without `HOME`), where Flume's
/// defaults put the file channel's directories and TAILDIR's position file.
fn home_path(rel: &str) -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(rel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const BASE: &str = "a.sources = r1\na.channels = c1\na.sinks = k1\n\
        a.sources.r1.type = netcat\na.sources.r1.bind = 127.0.0.1\na.sources.r1.port = 4444\n\
        a.sources.r1.channels = c1\n\
        a.channels.c1.type = memory\n\
        a.sinks.k1.type = logger\na.sinks.k1.channel = c1\n";

    /// `base.properties` holding `base`, merged with `over.properties` holding `over`, with
    /// the references of agent `a` resolved.
    fn merged(base: &str, over: &str) -> Properties {
        let base = Properties::parse(Path::new("base.properties"), base.as_bytes()).unwrap();
        let over = Properties::parse(Path::new("over.properties"), over.as_bytes()).unwrap();
        base.merge(over)
    }

    fn load(base: &str, over: &str) -> Result<AgentConfig, ConfigError> {
        let mut props = merged(base, over);
        props.interpolate(
            "a.",
            &Lookups {
                system: &[],
                env_fallback: false,
                env: &|_| None,
            },
        )?;
        AgentConfig::from_properties(&props, "a")
    }

    fn error(base: &str, over: &str) -> String {
        match load(base, over) {
            Ok(c) => panic!("accepted: {}", c.describe()),
            Err(e) => e.to_string(),
        }
    }

    /// `--check` shows how each source routes: mappings, optional channels (less those
    /// required for the same value), the default; plain replicating adds no line.
    #[test]
    fn check_shows_each_sources_selector() {
        let text = "a.sources = r1 r2 r3\na.channels = c1 c2 c3\na.sinks = k1\n\
            a.sources.r1.type = seq\na.sources.r1.channels = c1 c2 c3\n\
            a.sources.r1.selector.type = multiplexing\na.sources.r1.selector.header = state\n\
            a.sources.r1.selector.mapping.CZ = c1\na.sources.r1.selector.mapping.US = c2 c3\n\
            a.sources.r1.selector.optional.US = c1 c2\na.sources.r1.selector.optional.DE = c3\n\
            a.sources.r1.selector.default = c3\n\
            a.sources.r2.type = seq\na.sources.r2.channels = c1 c2\n\
            a.sources.r2.selector.optional = c2\n\
            a.sources.r3.type = seq\na.sources.r3.channels = c1\n\
            a.channels.c1.type = memory\na.channels.c2.type = memory\na.channels.c3.type = memory\n\
            a.sinks.k1.type = logger\na.sinks.k1.channel = c1\n";
        let described = load(text, "").unwrap().describe();
        let lines: Vec<&str> = described.lines().skip(1).take(6).collect();
        assert_eq!(
            lines,
            [
                "  source  r1 [seq] -> c1, c2, c3",
                "          selector multiplexing on header 'state': 'CZ' -> c1; 'DE' -> \
                 (default) c3; 'US' -> c2, c3 + optional c1; other values -> c3",
                "  source  r2 [seq] -> c1, c2",
                "          selector replicating, optional c2",
                "  source  r3 [seq] -> c1",
                "  channel c1 [memory]",
            ]
        );
    }

    /// Every component weir cannot use is named in one run, each with its own file and line,
    /// in the order channels, sources, sinks; the components that parse are not named.
    #[test]
    fn every_refused_component_is_named_at_once() {
        let text = "a.sources = r1 r2\na.channels = c1 c2\na.sinks = k1 k2 k3\n\
            a.sources.r1.type = com.example.Src\na.sources.r1.channels = c1\n\
            a.sources.r2.type = seq\na.sources.r2.channels = c1\n\
            a.channels.c1.type = memory\na.channels.c2.type = jdbc\n\
            a.sinks.k1.type = hbase\na.sinks.k1.channel = c1\n\
            a.sinks.k2.type = logger\na.sinks.k2.channel = c1\n\
            a.sinks.k3.type = elasticsearch\na.sinks.k3.channel = c1\n";
        let e = error(text, "");
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(lines.len(), 4, "{e}");
        for (line, want) in lines.iter().zip([
            "base.properties:9: a.channels.c2.type: ",
            "base.properties:4: a.sources.r1.type: ",
            "base.properties:10: a.sinks.k1.type: ",
            "base.properties:14: a.sinks.k3.type: ",
        ]) {
            assert!(line.starts_with(want), "{line:?} is not {want:?}…\n{e}");
        }
    }

    /// Every value of a component that cannot be read is named in one run, not only the first
    /// (a converted file with inline `# comments` has them on several lines); a check that
    /// would have judged a default standing in for one of them is not reported.
    #[test]
    fn every_bad_value_of_a_component_is_named_at_once() {
        let text = "a.sources = r1\na.channels = c1\na.sinks = k1\n\
            a.sources.r1.type = netcat\na.sources.r1.bind = 0.0.0.0\n\
            a.sources.r1.port = 44444 # the port\na.sources.r1.channels = c1\n\
            a.sources.r1.max-line-length = lots\n\
            a.channels.c1.type = file\na.channels.c1.capacity = 1000 # x\n\
            a.channels.c1.transactionCapacity = 100 # y\n\
            a.sinks.k1.type = logger\na.sinks.k1.channel = c1\n";
        let e = error(text, "");
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(lines.len(), 4, "{e}");
        for (line, want) in lines.iter().zip([
            "base.properties:10: a.channels.c1.capacity: '1000 # x' is not",
            "base.properties:11: a.channels.c1.transactionCapacity: '100 # y' is not",
            "base.properties:6: a.sources.r1.port: '44444 # the port' is not a port number",
            "base.properties:8: a.sources.r1.max-line-length: 'lots' is not",
        ]) {
            assert!(line.starts_with(want), "{line:?} is not {want:?}…\n{e}");
        }
        // The memory channel still falls back to Flume's defaults, with notes: only the
        // source's values are named.
        let e = error(&text.replace("c1.type = file", "c1.type = memory"), "");
        assert_eq!(e.lines().count(), 2, "{e}");
        assert!(!e.contains("channels.c1"), "{e}");
    }

    /// A required key left out next to a key that looks like its misspelling: the error names
    /// that key and its line. A key merely alike (`host` for `port`) is not taken for one.
    #[test]
    fn a_missing_key_points_at_its_likely_misspelling() {
        let no_port = BASE.replace("a.sources.r1.port = 4444\n", "");
        let e = error(&no_port, "a.sources.r1.prot = 4444\n");
        assert!(
            e.starts_with("base.properties:4: a.sources.r1.port: missing")
                && e.ends_with(
                    "(over.properties:1: a.sources.r1.prot looks like a misspelling of it)"
                ),
            "{e}"
        );
        let e = error(&no_port, "a.sources.r1.Port = 4444\n");
        assert!(
            e.contains("a.sources.r1.Port looks like a misspelling"),
            "{e}"
        );
        let syslog = no_port.replace("type = netcat", "type = syslogtcp");
        let e = error(&syslog, "a.sources.r1.host = h\n");
        assert!(e.contains("a.sources.r1.port: missing"), "{e}");
        assert!(!e.contains("misspelling"), "{e}");
        // Keys longer than six characters allow two edits.
        let spool = BASE.replace("type = netcat", "type = spooldir");
        let e = error(&spool, "a.sources.r1.spolDirr = /var/spool\n");
        assert!(
            e.contains("a.sources.r1.spoolDir: missing")
                && e.contains("a.sources.r1.spolDirr looks like a misspelling"),
            "{e}"
        );
    }

    /// A megabyte value in an error is shown by its ends; multi-byte characters are not cut.
    #[test]
    fn an_error_about_a_huge_value_leaves_its_middle_out() {
        let huge = format!("é{}z", "9".repeat(1 << 20));
        let e = error(BASE, &format!("a.sources.r1.port = {huge}\n"));
        assert!(e.len() < 1500, "{} bytes", e.len());
        assert!(
            e.starts_with("over.properties:1: a.sources.r1.port: 'é99"),
            "{e}"
        );
        assert!(
            e.contains("99 … [1047") && e.contains(" bytes left out] … 99"),
            "{e}"
        );
        assert!(e.ends_with("99z' is not a port number (0-65535)"), "{e}");
        let short = error(BASE, "a.sources.r1.port = 99999999\n");
        assert!(!short.contains("left out"), "{short}");
    }

    #[test]
    fn a_later_file_overrides_and_the_config_names_both_files() {
        let c = load(
            BASE,
            "a.sources.r1.port = 5555\na.channels.c1.capacity = 700\n",
        )
        .unwrap();
        let SourceKind::Netcat(n) = &c.sources[0].kind else {
            panic!("{:?}", c.sources[0].kind)
        };
        assert_eq!(n.port, 5555);
        assert!(
            c.describe()
                .starts_with("agent a (base.properties, over.properties)\n"),
            "{}",
            c.describe()
        );
        // A bad value of the first file that the second replaces is no error.
        let bad_base = BASE.replace("port = 4444", "port = http");
        assert!(load(&bad_base, "a.sources.r1.port = 4444\n").is_ok());
    }

    #[test]
    fn an_error_names_the_file_and_line_of_its_entry() {
        // In the second file: its name and its line, not the first file's.
        let err = error(BASE, "# site\na.sources.r1.port = 70000\n");
        assert!(
            err.starts_with("over.properties:2: a.sources.r1.port: '70000' is not a port"),
            "{err}"
        );
        // In the first file, with a second file that sets other keys: the first file.
        let err = error(
            &BASE.replace("port = 4444", "port = http"),
            "a.sinks.k1.type = null\n",
        );
        assert!(
            err.starts_with("base.properties:6: a.sources.r1.port: 'http' is not a port"),
            "{err}"
        );
        // A missing key: where the component is first configured, the first file's line.
        let err = error(
            &BASE.replace("a.sources.r1.port = 4444\n", ""),
            "a.sources.r1.max-line-length = 8\n",
        );
        assert!(
            err.starts_with("base.properties:4: a.sources.r1.port: "),
            "{err}"
        );
        // A component only the second file configures: the second file.
        let err = error(
            &BASE.replace("a.sinks = k1", "a.sinks = k1 k2"),
            "\na.sinks.k2.type = file_roll\n",
        );
        assert!(
            err.starts_with("over.properties:2: a.sinks.k2.sink.directory: "),
            "{err}"
        );
        // What no file sets: every file, no line.
        let props = merged(BASE, "a.sinks.k1.type = null\n");
        let err = AgentConfig::from_properties(&props, "b")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.starts_with(
                "base.properties, over.properties: no agent named 'b': the files define agent(s) a"
            ),
            "{err}"
        );
    }

    /// A sink group defined in one file and a sink regrouped in another: the error is at the
    /// second file's line and names where the first group was set, file and line; a group
    /// listed in one file and given no keys anywhere points at the list's file and line.
    #[test]
    fn sink_group_notes_across_files_name_both_places() {
        let base = format!(
            "{}a.sinkgroups = g1 g2\na.sinkgroups.g1.sinks = k1 k2\n\
             a.sinkgroups.g1.processor.type = failover\n",
            BASE.replace("a.sinks = k1", "a.sinks = k1 k2")
        );
        let base = format!("{base}a.sinks.k2.type = null\na.sinks.k2.channel = c1\n");
        let c = load(&base, "\na.sinkgroups.g2.sinks = k2\n").unwrap();
        assert!(
            c.left_out.iter().any(|n| n.starts_with(
                "over.properties:2: a.sinkgroups.g2.sinks: sink k2 is already in sink group g1 (base.properties:12)"
            )),
            "{:?}",
            c.left_out
        );
        let c = load(&base, "a.sinkgroups = g1 g3\n").unwrap();
        assert!(
            c.left_out.iter().any(|n| n.starts_with(
                "over.properties:1: a.sinkgroups.g3.sinks: sink group g3 has no sink to drive"
            )),
            "{:?}",
            c.left_out
        );
    }

    /// As Flume, an agent runs without what a configuration lists but does not define, and
    /// without what refers only to such things, each left out with a note naming the line.
    #[test]
    fn what_flume_leaves_out_of_an_agent_is_noted() {
        let note = |c: &AgentConfig, want: &str| {
            assert!(
                c.left_out.iter().any(|n| n.contains(want)),
                "no line holds {want:?}: {:#?}",
                c.left_out
            );
        };
        let names = |c: &AgentConfig| {
            (
                c.sources.iter().map(|x| x.name.clone()).collect::<Vec<_>>(),
                c.channels
                    .iter()
                    .map(|x| x.name.clone())
                    .collect::<Vec<_>>(),
                c.sinks.iter().map(|x| x.name.clone()).collect::<Vec<_>>(),
            )
        };
        // A listed sink without keys, and an inline comment read as a channel name.
        let c = load(BASE, "a.sinks = k1 logger\na.channels = c1 #c2\n").unwrap();
        note(
            &c,
            "over.properties:1: a.sinks: 'logger' has no keys (no `a.sinks.logger.type`); left out",
        );
        note(&c, "over.properties:2: a.channels: '#c2' has no keys");
        assert_eq!(
            names(&c),
            (vec!["r1".into()], vec!["c1".into()], vec!["k1".into()])
        );
        // A source naming a channel that is not defined puts into the others only.
        let c = load(BASE, "a.sources.r1.channels = c1 c7\n").unwrap();
        note(
            &c,
            "over.properties:1: a.sources.r1.channels: channel 'c7' is not one of agent a's channels (c1)",
        );
        assert_eq!(c.sources[0].channels, vec!["c1".to_owned()]);
        // A source naming no defined channel, and a sink draining an undefined one, are left
        // out; the rest runs.
        let c = load(
            BASE,
            "a.sources = r1 r2\na.sources.r2.type = seq\na.sources.r2.channels = c7\n\
             a.sinks = k1 k2\na.sinks.k2.type = null\na.sinks.k2.channel = c8\n",
        )
        .unwrap();
        note(
            &c,
            "over.properties:3: a.sources.r2.channels: source r2 refers to no channel in `a.channels` (c1); left out",
        );
        note(
            &c,
            "over.properties:6: a.sinks.k2.channel: sink k2 refers to channel 'c8', which is not one of agent a's channels (c1); left out",
        );
        assert_eq!(
            names(&c),
            (vec!["r1".into()], vec!["c1".into()], vec!["k1".into()])
        );
        // Nothing left to run is an error.
        let err = error(
            BASE,
            "a.sources.r1.channels = c7\na.sinks.k1.channel = c7\n",
        );
        assert!(
            err.contains("agent 'a' has no source or sink left to run"),
            "{err}"
        );
        // The channel list and the channels' keys drifted apart: the error says so, not "add
        // a.channels = c1" to a file that has it.
        let err = error(
            BASE,
            "a.channels = c2
a.sources.r1.channels = c2
",
        );
        assert!(
            err.contains(
                "over.properties:1: a.channels: agent 'a' has no channel left: c2 listed, but \
                 given no keys (`a.channels.<name>.type` and the rest); keys are given for 'c1', \
                 which `a.channels` does not list"
            ),
            "{err}"
        );
    }

    /// A sink batch larger than its channel's transactions is refused at the key the file
    /// sets: the Kafka sink's Flume 1.6 `batchSize` as well as its `flumeBatchSize`.
    #[test]
    fn a_sink_batch_over_the_transaction_capacity_names_the_key_given() {
        let kafka = "a.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink\n\
                     a.sinks.k1.kafka.bootstrap.servers = b:9092\n";
        for (key, line) in [("batchSize", 3), ("flumeBatchSize", 3)] {
            let err = error(BASE, &format!("{kafka}a.sinks.k1.{key} = 1000\n"));
            assert!(
                err.contains(&format!(
                    "over.properties:{line}: a.sinks.k1.{key}: batch size 1000 exceeds the \
                     transactionCapacity 100 of channel c1"
                )),
                "{err}"
            );
        }
        // Not set: the message says the batch size is the default, rather than point at a
        // key the file does not have as if it did.
        let err = error(BASE, "a.channels.c1.transactionCapacity = 50\n");
        assert!(
            err.contains(
                "a.sinks.k1.batchSize: batch size 100 (the default: `batchSize` is not set) \
                 exceeds the transactionCapacity 50 of channel c1: lower `batchSize` or raise"
            ),
            "{err}"
        );
    }

    /// The same for a source: a default batch size is called one (audit 23: a Kafka source's
    /// default 1000 against a default memory channel was reported at its `type` line).
    #[test]
    fn a_source_batch_over_the_transaction_capacity_says_when_it_is_the_default() {
        let source = "a.sources.r1.type = org.apache.flume.source.kafka.KafkaSource\n\
                      a.sources.r1.kafka.bootstrap.servers = b:9092\na.sources.r1.kafka.topics = t\n";
        let err = error(BASE, source);
        assert!(
            err.contains(
                "a.sources.r1.batchSize: batch size 1000 (the default: `batchSize` is not set) \
                 exceeds the transactionCapacity 100 of channel c1: lower `batchSize` or raise"
            ),
            "{err}"
        );
        let err = error(BASE, &format!("{source}a.sources.r1.batchSize = 500\n"));
        assert!(
            err.contains("over.properties:4: a.sources.r1.batchSize: batch size 500 exceeds"),
            "{err}"
        );
    }

    /// An unknown key names the key it looks like a misspelling of, among those the component
    /// reads and the file leaves unset; one set beside it gets no such hint.
    #[test]
    fn an_unknown_key_names_the_key_it_misspells() {
        let note = |over: &str, key: &str| {
            let c = load(BASE, over).unwrap();
            let found: Vec<String> = c
                .notes
                .iter()
                .filter(|n| n.contains(&format!("{key}: unknown key")))
                .cloned()
                .collect();
            assert_eq!(found.len(), 1, "{key} in {:#?}", c.notes);
            found[0]
                .split_once(": unknown key, ignored")
                .map(|(_, hint)| hint.to_owned())
        };
        assert_eq!(
            note("a.sinks.k1.batchsize = 10\n", "a.sinks.k1.batchsize").as_deref(),
            Some(" (it looks like a misspelling of a.sinks.k1.batchSize)")
        );
        assert_eq!(
            note(
                "a.sinks.k1.batchSize = 5\na.sinks.k1.batchsize = 10\n",
                "a.sinks.k1.batchsize"
            )
            .as_deref(),
            Some("")
        );
        assert_eq!(
            note("a.sinks.k1.bogus = 1\n", "a.sinks.k1.bogus").as_deref(),
            Some("")
        );
        // A dot left out is a slip; a serializer of another name is not.
        assert_eq!(
            note(
                "a.sources.r1.selector.type = multiplexing\na.sources.r1.selector.default = c1\n\
                 a.sources.r1.selectorheader = h\n",
                "a.sources.r1.selectorheader"
            )
            .as_deref(),
            Some(" (it looks like a misspelling of a.sources.r1.selector.header)")
        );
        let extractor = "a.sources.r1.interceptors = e\n\
                         a.sources.r1.interceptors.e.type = regex_extractor\n\
                         a.sources.r1.interceptors.e.regex = (a)\n\
                         a.sources.r1.interceptors.e.serializers = s1\n\
                         a.sources.r1.interceptors.e.serializers.s1.name = n\n\
                         a.sources.r1.interceptors.e.serializers.s2.type = DEFAULT\n";
        assert_eq!(
            note(extractor, "a.sources.r1.interceptors.e.serializers.s2.type").as_deref(),
            Some("")
        );
    }

    /// A misspelt key under a key whose own settings sit below it (`processor.selector`,
    /// `handler`, `sink.pathManager`, `selector.optional`, a regex_extractor's serializer) is
    /// noted like any unknown key, not taken for one of those settings (audit 37).
    #[test]
    fn misspelt_keys_below_a_read_key_are_noted() {
        let cases: &[(&str, &str)] = &[
            (
                "a.sinks = k1 k2\na.sinks.k2.type = null\na.sinks.k2.channel = c1\n\
                 a.sinkgroups = g\na.sinkgroups.g.sinks = k1 k2\n\
                 a.sinkgroups.g.processor.type = load_balance\n\
                 a.sinkgroups.g.processor.selector = random\n\
                 a.sinkgroups.g.processor.selector.maxTimeout = 5000\n",
                "a.sinkgroups.g.processor.selector.maxTimeout: unknown key, ignored (it looks \
                 like a misspelling of a.sinkgroups.g.processor.selector.maxTimeOut)",
            ),
            (
                "a.sources.r1.type = http\n\
                 a.sources.r1.handler = org.apache.flume.sink.solr.morphline.BlobHandler\n\
                 a.sources.r1.handler.maxBloblength = 10\n",
                "a.sources.r1.handler.maxBloblength: unknown key, ignored",
            ),
            (
                "a.sinks.k1.type = file_roll\na.sinks.k1.sink.directory = /tmp/out\n\
                 a.sinks.k1.sink.pathManager.prefx = ev-\n",
                "a.sinks.k1.sink.pathManager.prefx: unknown key, ignored",
            ),
            (
                "a.sources.r1.selector.optional.x = c1\n",
                "a.sources.r1.selector.optional.x: ignored with selector.type = replicating",
            ),
            (
                "a.sources.r1.interceptors = e\na.sources.r1.interceptors.e.type = regex_extractor\n\
                 a.sources.r1.interceptors.e.regex = (\\\\d+)\n\
                 a.sources.r1.interceptors.e.serializers = s1\n\
                 a.sources.r1.interceptors.e.serializers.s1.name = n\n\
                 a.sources.r1.interceptors.e.serializers.s1.typ = DEFAULT\n",
                "a.sources.r1.interceptors.e.serializers.s1.typ: unknown key, ignored",
            ),
        ];
        for (over, wanted) in cases {
            let c = load(BASE, over).unwrap();
            let noted: Vec<&String> = c.notes.iter().filter(|n| n.contains(wanted)).collect();
            assert_eq!(noted.len(), 1, "{wanted}\nin {:#?}", c.notes);
        }
        // The settings themselves are not noted.
        let c = load(
            BASE,
            "a.sinks.k1.type = file_roll\na.sinks.k1.sink.directory = /tmp/out\n\
             a.sinks.k1.sink.pathManager.prefix = ev-\na.sinks.k1.sink.pathManager.extension = log\n",
        )
        .unwrap();
        assert!(c.notes.is_empty(), "{:#?}", c.notes);
    }

    /// A key that only another type or mode of a component reads, or an older name of a key
    /// also set under its current name, is a known key: its note says what setting leaves it
    /// out, and no note calls it unknown (audit 41).
    #[test]
    fn keys_of_another_setting_are_noted_with_that_setting() {
        let cases: &[(&str, &[&str])] = &[
            (
                "a.sources.r1.selector.header = h\na.sources.r1.selector.mapping.x = c1\n\
                 a.sources.r1.selector.policy = random\n",
                &[
                    "over.properties:1: a.sources.r1.selector.header: ignored with selector.type = replicating",
                    "over.properties:2: a.sources.r1.selector.mapping.x: ignored with selector.type = \
                     replicating",
                    "over.properties:3: a.sources.r1.selector.policy: ignored with selector.type = replicating",
                ],
            ),
            (
                "a.sources.r1.selector.type = multiplexing\na.sources.r1.selector.default = c1\n\
                 a.sources.r1.selector.optional = c1\n",
                &[
                    "over.properties:3: a.sources.r1.selector.optional: ignored with selector.type = multiplexing",
                ],
            ),
            (
                "a.channels.c1.type = SPILLABLEMEMORY\na.channels.c1.overflowCapacity = 0\n\
                 a.channels.c1.capacity = 5\na.channels.c1.checkpointDir = /tmp/ck\n\
                 a.channels.c1.fsyncInterval = 3\n",
                &[
                    "over.properties:3: a.channels.c1.capacity: ignored with overflowCapacity = 0",
                    "over.properties:4: a.channels.c1.checkpointDir: ignored with overflowCapacity = 0",
                    "over.properties:5: a.channels.c1.fsyncInterval: ignored with overflowCapacity = 0",
                ],
            ),
            (
                "a.sources.r1.type = syslogudp\na.sources.r1.host = 127.0.0.1\n\
                 a.sources.r1.ports = 5140 5141\na.sources.r1.keystore = /tmp/ks.p12\n\
                 a.sources.r1.charset.port.5140 = UTF-8\n",
                &[
                    "over.properties:3: a.sources.r1.ports: ignored with type = syslogudp (a key of \
                     multiport_syslogtcp)",
                    "over.properties:4: a.sources.r1.keystore: ignored with type = syslogudp (syslog over UDP \
                     has no TLS)",
                    "over.properties:5: a.sources.r1.charset.port.5140: ignored with type = syslogudp",
                ],
            ),
            (
                "a.sources.r1.type = exec\na.sources.r1.command = true\n\
                 a.sources.r1.restartThrottle = 100\n",
                &["over.properties:3: a.sources.r1.restartThrottle: ignored with restart = false"],
            ),
            (
                "a.sinks.k1.type = file_roll\na.sinks.k1.sink.directory = /tmp/out\n\
                 a.sinks.k1.sink.serializer = avro_event\n\
                 a.sinks.k1.sink.serializer.appendNewline = false\n",
                &[
                    "over.properties:4: a.sinks.k1.sink.serializer.appendNewline: ignored with \
                     a.sinks.k1.sink.serializer = avro_event",
                ],
            ),
            (
                "a.sinks.k1.type = avro\na.sinks.k1.hostname = localhost\na.sinks.k1.port = 4141\n\
                 a.sinks.k1.reset-connection-interval = 5\n\
                 a.sinks.k1.connection-reset-interval = 7\n",
                &[
                    "over.properties:5: a.sinks.k1.connection-reset-interval: ignored, \
                     a.sinks.k1.reset-connection-interval is set",
                ],
            ),
            (
                "a.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink\n\
                 a.sinks.k1.kafka.bootstrap.servers = b1:9092\na.sinks.k1.brokerList = b0:9092\n\
                 a.sinks.k1.kafka.topic = t1\na.sinks.k1.topic = t0\n\
                 a.sinks.k1.allowTopicOverride = false\na.sinks.k1.topicHeader = t\n",
                &[
                    "over.properties:3: a.sinks.k1.brokerList: ignored, \
                     a.sinks.k1.kafka.bootstrap.servers is set",
                    "over.properties:5: a.sinks.k1.topic: ignored, a.sinks.k1.kafka.topic is set",
                    "over.properties:7: a.sinks.k1.topicHeader: ignored with allowTopicOverride = \
                     false",
                ],
            ),
            (
                "a.sources.r1.type = org.apache.flume.source.kafka.KafkaSource\n\
                 a.sources.r1.kafka.bootstrap.servers = b1:9092\n\
                 a.sources.r1.kafka.topics.regex = ^t.*\na.sources.r1.topic = t0\n\
                 a.sources.r1.batchSize = 100\n",
                &["over.properties:4: a.sources.r1.topic: ignored, \
                   a.sources.r1.kafka.topics.regex is set"],
            ),
        ];
        for (over, wanted) in cases {
            let c = load(BASE, over).unwrap_or_else(|e| panic!("{over}: {e}"));
            for w in *wanted {
                let noted = c.notes.iter().filter(|n| n.contains(w)).count();
                assert_eq!(noted, 1, "{w}\nin {:#?}", c.notes);
            }
            // BASE's netcat keys are unknown to the other source types; the keys set here are
            // not.
            assert!(
                !c.notes
                    .iter()
                    .any(|n| n.starts_with("over.properties") && n.contains("unknown key")),
                "{over}: {:#?}",
                c.notes
            );
        }
    }

    /// A key that a component names in a note of its own (an unlisted interceptor, taildir
    /// group or `channels.*` key, another deserializer's key) is named once: the section's
    /// check of unread keys counts it as read. And a key below a value that is read (an avro
    /// sink's `hosts`, a timestamp interceptor) is noted when nothing reads it, since reading
    /// `X` no longer counts `X.*` as read.
    #[test]
    fn each_ignored_key_is_named_in_one_note() {
        let taildir = "a.sources.r1.type = TAILDIR\na.sources.r1.positionFile = /tmp/p.json\n\
                       a.sources.r1.filegroups = f1\na.sources.r1.filegroups.f1 = /tmp/x.log\n";
        let cases: &[(String, &str)] = &[
            (
                "a.sources.r1.interceptors = i1\na.sources.r1.interceptors.i1.type = timestamp\n\
                 a.sources.r1.interceptors.i2.type = host\n\
                 a.sources.r1.interceptors.i2.useIP = false\n"
                    .into(),
                "a.sources.r1.interceptors.i2",
            ),
            (
                "a.sources.r1.interceptors = i1\na.sources.r1.interceptors.i1.type = timestamp\n\
                 a.sources.r1.interceptors.i1.serializers.s1.name = n\n"
                    .into(),
                "a.sources.r1.interceptors.i1.serializers.s1.name",
            ),
            (
                "a.sources.r1.channels.selector.type = replicating\n".into(),
                "a.sources.r1.channels.selector.type",
            ),
            (
                format!("{taildir}a.sources.r1.filegroups.f2 = /tmp/y.log\n"),
                "a.sources.r1.filegroups.f2",
            ),
            (
                "a.sources.r1.type = spooldir\na.sources.r1.spoolDir = /tmp/spool\n\
                 a.sources.r1.deserializer.maxBlobLength = 10\n"
                    .into(),
                "a.sources.r1.deserializer.maxBlobLength",
            ),
            (
                "a.sinks.k1.type = avro\na.sinks.k1.hostname = 127.0.0.1\n\
                 a.sinks.k1.port = 4545\na.sinks.k1.hostname.x = 1\n"
                    .into(),
                "a.sinks.k1.hostname.x",
            ),
        ];
        for (over, key) in cases {
            let c = load(BASE, over).unwrap();
            let naming: Vec<&String> = c
                .notes
                .iter()
                .chain(&c.left_out)
                .filter(|n| n.contains(&format!("{key}:")))
                .collect();
            assert_eq!(naming.len(), 1, "{key}\nin {:#?}", naming);
        }
    }

    /// A backslash Java drops from a value (a regular expression's `\d` written with one
    /// backslash) is a note naming the line, what was written and what is read.
    #[test]
    fn a_backslash_java_drops_is_noted() {
        let c = load(
            BASE,
            "a.sources.r1.interceptors = f\na.sources.r1.interceptors.f.type = regex_filter\n\
             a.sources.r1.interceptors.f.regex = ^\\d+\\s\n",
        )
        .unwrap();
        let noted: Vec<&String> = c.notes.iter().filter(|n| n.contains("backslash")).collect();
        assert_eq!(
            noted,
            [
                "over.properties:3: a.sources.r1.interceptors.f.regex: `\\d`, `\\s` in the file \
              reads as `d`, `s`: Java properties drop a backslash that starts no escape, and \
              Flume reads the file so; write two backslashes for one (`\\\\d`)"
            ],
            "{:#?}",
            c.notes
        );
        let c = load(
            BASE,
            "a.sources.r1.interceptors = f\na.sources.r1.interceptors.f.type = regex_filter\n\
             a.sources.r1.interceptors.f.regex = ^\\\\d+\\\\s\n",
        )
        .unwrap();
        assert!(
            !c.notes.iter().any(|n| n.contains("backslash")),
            "{:#?}",
            c.notes
        );
    }

    /// A memory channel size Flume replaces by its default is a warning, as Flume logs it.
    #[test]
    fn a_memory_channel_size_replaced_by_the_default_is_a_warning() {
        let c = load(BASE, "a.channels.c1.capacity = 10000  # events\n").unwrap();
        let named = |lines: &[String]| {
            lines
                .iter()
                .filter(|l| l.contains("a.channels.c1.capacity: '10000  # events'"))
                .count()
        };
        assert_eq!(
            (named(&c.left_out), named(&c.notes)),
            (1, 0),
            "{:#?}\n{:#?}",
            c.left_out,
            c.notes
        );
    }

    /// One run names every batch too large for its channel, a source's and a sink's, together
    /// with the values that cannot be read (audit 35: the source's came only in a second run).
    #[test]
    fn batches_over_the_transaction_capacity_are_named_with_the_other_errors() {
        let err = error(
            "a.sources = r1 r2\na.channels = c1\na.sinks = k1\n\
             a.sources.r1.type = seq\na.sources.r1.batchSize = 20\na.sources.r1.channels = c1\n\
             a.sources.r2.type = netcat\na.sources.r2.bind = 127.0.0.1\n\
             a.sources.r2.port = 99999\na.sources.r2.channels = c1\n\
             a.channels.c1.type = memory\na.channels.c1.transactionCapacity = 10\n\
             a.sinks.k1.type = null\na.sinks.k1.channel = c1\n",
            "",
        );
        for wanted in [
            "base.properties:9: a.sources.r2.port: '99999' is not a port number",
            "base.properties:5: a.sources.r1.batchSize: batch size 20 exceeds the \
             transactionCapacity 10 of channel c1",
            "a.sinks.k1.batchSize: batch size 100 (the default: `batchSize` is not set) exceeds \
             the transactionCapacity 10 of channel c1",
        ] {
            assert!(err.contains(wanted), "{wanted}\nnot in:\n{err}");
        }
    }

    /// A value with an inline `# comment` is used whole, as Java reads it, with a note saying
    /// so; list keys are reported their own way and get no such note.
    #[test]
    fn a_comment_after_a_value_is_noted() {
        let c = load(
            BASE,
            "a.sinks = k1 # the sink\n\
             a.sinks.k1.type = file_roll\na.sinks.k1.sink.directory = /tmp/out #output\n",
        )
        .unwrap();
        let noted: Vec<&String> = c
            .notes
            .iter()
            .filter(|n| n.contains("holds a `#`"))
            .collect();
        assert_eq!(noted.len(), 1, "{:#?}", c.notes);
        assert!(
            noted[0].starts_with(
                "over.properties:3: a.sinks.k1.sink.directory: the value '/tmp/out #output' holds"
            ),
            "{}",
            noted[0]
        );
    }

    /// Flume caps `maxFileSize`; so does weir, with a note, and no value can overflow.
    #[test]
    fn max_file_size_is_capped_as_in_flume() {
        for (value, want) in [
            ("18446744073709551615", 2_146_435_072u64),
            ("1099511627776", 2_146_435_072),
            ("1000000", 1_003_520),
        ] {
            let c = load(
                BASE,
                &format!("a.channels.c1.type = file\na.channels.c1.maxFileSize = {value}\n"),
            )
            .unwrap();
            let ChannelKind::File(f) = &c.channels[0].kind else {
                panic!("{:?}", c.channels[0].kind)
            };
            assert_eq!(f.segment_size, want, "{value}");
            assert_eq!(
                c.notes.iter().any(|n| n.starts_with(&format!(
                    "over.properties:2: a.channels.c1.maxFileSize: {value}"
                )) && n.contains("more than Flume's largest maxFileSize")
                    && n.ends_with(&format!("made whole 4 KiB pages: {want}"))),
                want == 2_146_435_072,
                "{value}: {:?}",
                c.notes
            );
        }
        // Values weir changes are noted with what is used instead; a value it keeps is not.
        for (value, note) in [
            ("0", Some("0 means the default, 67108864 bytes")),
            (
                "100",
                Some("100 is used as 8192: a segment is whole 4 KiB pages"),
            ),
            ("1000000", Some("1000000 is used as 1003520")),
            ("1048576", None),
        ] {
            let c = load(
                BASE,
                &format!("a.channels.c1.type = file\na.channels.c1.maxFileSize = {value}\n"),
            )
            .unwrap();
            let noted: Vec<&String> = c
                .notes
                .iter()
                .filter(|n| n.starts_with("over.properties:2: a.channels.c1.maxFileSize: "))
                .collect();
            match note {
                Some(text) => assert!(
                    noted.len() == 1 && noted[0].contains(text),
                    "{value}: {noted:?}"
                ),
                None => assert!(noted.is_empty(), "{value}: {noted:?}"),
            }
        }
    }

    /// Two file channels on one directory would overwrite each other's checkpoint (and one
    /// loses its undelivered events): refused, naming both.
    #[test]
    fn file_channels_sharing_a_directory_are_refused() {
        let two = |c1: &str, c2: &str| {
            format!(
                "a.sources = r1\na.channels = c1 c2\na.sinks = k1\n\
                 a.sources.r1.type = seq\na.sources.r1.channels = c1 c2\n\
                 a.channels.c1.type = file\n{c1}\
                 a.channels.c2.type = file\n{c2}\
                 a.sinks.k1.type = null\na.sinks.k1.channel = c1\n"
            )
        };
        let err = error(
            &two(
                "a.channels.c1.dataDirs = /d/a\na.channels.c1.checkpointDir = /d/ck\n",
                "a.channels.c2.dataDirs = /d/b\na.channels.c2.checkpointDir = /d/ck\n",
            ),
            "",
        );
        assert!(
            err.starts_with(
                "base.properties:11: a.channels.c2.checkpointDir: /d/ck is also the checkpointDir of channel c1"
            ),
            "{err}"
        );
        let err = error(
            &two(
                "a.channels.c1.dataDirs = /d/a\na.channels.c1.checkpointDir = /d/a\n",
                "a.channels.c2.dataDirs = /d/b\na.channels.c2.checkpointDir = /d/a/\n",
            ),
            "",
        );
        assert!(
            err.contains("/d/a/ is also the dataDirs of channel c1"),
            "{err}"
        );
        // Other spellings of one directory: `..`, and a symlink to it (audit 21).
        let err = error(
            &two(
                "a.channels.c1.dataDirs = /d/a\na.channels.c1.checkpointDir = /d/ck\n",
                "a.channels.c2.dataDirs = /d/b\na.channels.c2.checkpointDir = /d/x/../ck\n",
            ),
            "",
        );
        assert!(
            err.contains("/d/x/../ck is also the checkpointDir of channel c1"),
            "{err}"
        );
        let root = tempfile::tempdir().unwrap();
        let real = root.path().join("ck");
        std::fs::create_dir(&real).unwrap();
        let link = root.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = error(
            &two(
                &format!(
                    "a.channels.c1.dataDirs = /d/a\na.channels.c1.checkpointDir = {}\n",
                    real.display()
                ),
                &format!(
                    "a.channels.c2.dataDirs = /d/b\na.channels.c2.checkpointDir = {}\n",
                    link.display()
                ),
            ),
            "",
        );
        assert!(
            err.contains(&format!(
                "{} is also the checkpointDir of channel c1",
                link.display()
            )),
            "{err}"
        );
        // Both on the defaults under ~/.flume: the message says they are the defaults.
        let err = error(&two("", ""), "");
        assert!(
            err.contains("a.channels.c2.dataDirs: neither this channel nor channel c1 sets dataDirs, so both use the default "),
            "{err}"
        );
        let err = error(
            &two(
                "",
                &format!(
                    "a.channels.c2.checkpointDir = /d/ck\na.channels.c2.dataDirs = {}\n",
                    home_path(".flume/file-channel/data").display()
                ),
            ),
            "",
        );
        assert!(
            err.contains("is also the dataDirs of channel c1 (its default: it does not set it)"),
            "{err}"
        );
        // A directory key naming a file is refused at load, with its key and line.
        let file = tempfile::NamedTempFile::new().unwrap();
        let err = error(
            &two(
                &format!("a.channels.c1.dataDirs = {}\n", file.path().display()),
                "a.channels.c2.dataDirs = /d/b\n",
            ),
            "",
        );
        assert!(
            err.starts_with("base.properties:7: a.channels.c1.dataDirs: ")
                && err.ends_with("is a file, not a directory"),
            "{err}"
        );
        // A channel's checkpoints may live in its own data directory.
        load(
            &two(
                "a.channels.c1.dataDirs = /d/a\na.channels.c1.checkpointDir = /d/a\n",
                "a.channels.c2.dataDirs = /d/b\na.channels.c2.checkpointDir = /d/b\n",
            ),
            "",
        )
        .unwrap();
    }

    /// Notes about a key (unknown, without effect) name its own file and line.
    #[test]
    fn notes_name_the_file_of_their_key() {
        let c = load(BASE, "\na.sources.r1.bogus = 1\n").unwrap();
        assert!(
            c.notes
                .iter()
                .any(|n| n == "over.properties:2: a.sources.r1.bogus: unknown key, ignored"),
            "{:?}",
            c.notes
        );
        // A misspelt list name is named as such.
        let c = load(BASE, "a.source.r1.selector.type = multiplexing\n").unwrap();
        assert!(
            c.notes.iter().any(|n| n.starts_with(
                "over.properties:1: a.source.r1.selector.type: ignored: `source` is none of `a.sources`, `a.channels`"
            )),
            "{:?}",
            c.notes
        );
    }

    /// Paths that cannot mean what they look like: `~` (expanded by neither Java nor weir)
    /// and space-separated `dataDirs` (the list is comma-separated), each with a note.
    #[test]
    fn tilde_paths_and_space_separated_data_dirs_get_a_note() {
        let over = "a.channels.c1.type = file\n\
                    a.channels.c1.checkpointDir = ~/flume/checkpoint\n\
                    a.channels.c1.dataDirs = /data1/flume/data /data2/flume/data\n";
        let c = load(BASE, over).unwrap();
        for expected in [
            "over.properties:2: a.channels.c1.checkpointDir: '~/flume/checkpoint' starts with `~`",
            "over.properties:3: a.channels.c1.dataDirs: '/data1/flume/data /data2/flume/data' \
             holds a space inside a directory name",
        ] {
            assert!(
                c.notes.iter().any(|n| n.starts_with(expected)),
                "{expected}\n{:#?}",
                c.notes
            );
        }
        let over = "a.channels.c1.type = file\na.channels.c1.checkpointDir = /c/~x\n\
                    a.channels.c1.dataDirs = /d1, /d2\n";
        let c = load(BASE, over).unwrap();
        assert!(
            !c.notes
                .iter()
                .any(|n| n.contains("`~`") || n.contains("holds a space")),
            "{:#?}",
            c.notes
        );
    }

    /// `${key}` resolves against the merged keys: a value of the second file may name a key of
    /// the first, and the reverse; a reference overridden in the second file takes its value;
    /// what cannot be resolved names the file of the value holding the reference.
    #[test]
    fn references_resolve_across_files() {
        let base = format!("{BASE}nc.port = 6000\nnc.bind = ${{bind.addr}}\nbind.addr = 0.0.0.0\n");
        let over = "a.sources.r1.port = ${nc.port}\na.sources.r1.bind = ${nc.bind}\nbind.addr = 10.0.0.2\n";
        let c = load(&base, over).unwrap();
        let SourceKind::Netcat(n) = &c.sources[0].kind else {
            panic!("{:?}", c.sources[0].kind)
        };
        assert_eq!((n.port, n.bind.as_str()), (6000, "10.0.0.2"));
        // The first file refers to a key only the second file sets.
        let c = load(
            &BASE.replace("port = 4444", "port = ${site.port}"),
            "site.port = 7000\n",
        )
        .unwrap();
        let SourceKind::Netcat(n) = &c.sources[0].kind else {
            panic!("{:?}", c.sources[0].kind)
        };
        assert_eq!(n.port, 7000);
        let err = error(BASE, "\n\na.sources.r1.port = ${nope}\n");
        assert!(
            err.starts_with(
                "over.properties:3: a.sources.r1.port: `${nope}` cannot be resolved: no key nope in the files"
            ),
            "{err}"
        );
    }
}

/// The note on sources that add no timestamp.
#[cfg(test)]
mod timestamp_note {
    use super::*;

    fn notes(source: &str) -> Vec<String> {
        let text = format!(
            "a.sources = s1\na.channels = c1\na.sinks = k1\n\
             a.channels.c1.type = memory\na.channels.c1.transactionCapacity = 1000\na.channels.c1.capacity = 10000\n\
             {source}a.sources.s1.channels = c1\n\
             a.sinks.k1.type = hdfs\na.sinks.k1.channel = c1\n\
             a.sinks.k1.hdfs.path = file:///tmp/x/%Y-%m-%d\n"
        );
        let props =
            Properties::parse(std::path::Path::new("t.properties"), text.as_bytes()).unwrap();
        AgentConfig::from_properties(&props, "a").unwrap().notes
    }

    /// The Kafka source stamps every event (the record's time, else now): naming it is a
    /// false alarm.
    #[test]
    fn kafka_source_is_not_named() {
        let n = notes(
            "a.sources.s1.type = org.apache.flume.source.kafka.KafkaSource\n\
             a.sources.s1.kafka.bootstrap.servers = b:9092\na.sources.s1.kafka.topics = t\n",
        );
        assert!(!n.iter().any(|n| n.contains("add none")), "{n:#?}");
    }

    /// A syslog source leaves `timestamp` out of every message it cannot parse, an RFC 5424
    /// message with `-` as its time, or an RFC 3164 one whose month is not a month
    /// (syslog/parse.rs tests rfc5424_nil_values, rfc3164_without_a_host_is_unrecognised):
    /// one such message stops the sink, and the note says so.
    #[test]
    fn syslog_source_is_named() {
        let n = notes("a.sources.s1.type = syslogtcp\na.sources.s1.port = 5140\n");
        assert!(
            n.iter()
                .any(|n| n.contains("syslog source(s) s1") && n.contains("preserveExisting")),
            "{n:#?}"
        );
    }

    /// A regex_extractor whose serializer is named `timestamp` stamps the events it matches
    /// (audit 23's config: a date taken from each log line); a static interceptor setting
    /// `timestamp` stamps them all.
    #[test]
    fn interceptors_that_set_timestamp_are_seen() {
        let source = "a.sources.s1.type = netcat\na.sources.s1.bind = localhost\n\
                      a.sources.s1.port = 4444\na.sources.s1.interceptors = i1\n";
        let n = notes(&format!(
            "{source}a.sources.s1.interceptors.i1.type = regex_extractor\n\
             a.sources.s1.interceptors.i1.regex = ^(\\\\d+)\n\
             a.sources.s1.interceptors.i1.serializers = tt\n\
             a.sources.s1.interceptors.i1.serializers.tt.name = timestamp\n"
        ));
        assert!(!n.iter().any(|n| n.contains("add none")), "{n:#?}");
        assert!(
            n.iter()
                .any(|n| n.contains("source(s) s1") && n.contains("regex_extractor")),
            "{n:#?}"
        );
        let n = notes(&format!(
            "{source}a.sources.s1.interceptors.i1.type = static\n\
             a.sources.s1.interceptors.i1.key = timestamp\n\
             a.sources.s1.interceptors.i1.value = 0\n"
        ));
        assert!(!n.iter().any(|n| n.contains("time escapes")), "{n:#?}");
        let n = notes(
            "a.sources.s1.type = netcat\na.sources.s1.bind = localhost\n\
                       a.sources.s1.port = 4444\n",
        );
        assert!(n.iter().any(|n| n.contains("add none")), "{n:#?}");
    }
}
