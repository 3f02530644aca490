//! Flume properties → a typed, validated agent configuration. Components never see raw property
//! strings: each gets its config struct from `components`. Every error names the file, the line
//! and the key, and says what would be valid.

mod components;
mod exec;
mod http;
mod interpolate;
mod properties;
mod sink_group;
mod syslog;
mod taildir;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use components::*;
pub use exec::*;
pub use http::*;
pub use interpolate::Lookups;
pub use properties::{Entry, Properties};
pub use sink_group::*;
pub use syslog::*;
pub use taildir::*;

/// A configuration error, printed as `FILE:LINE: KEY: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// The validated configuration of one agent.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    pub agent: String,
    pub file: PathBuf,
    pub sources: Vec<SourceConfig>,
    pub channels: Vec<ChannelConfig>,
    pub sinks: Vec<SinkConfig>,
    /// `sinkgroups`: sinks driven together by one runner; a sink in none runs on its own.
    pub sink_groups: Vec<SinkGroupConfig>,
    /// Keys accepted but without effect in weir, and keys not recognised: logged at start.
    pub notes: Vec<String>,
}

impl AgentConfig {
    /// Loads `file`, resolves the `${…}` references of agent `agent`'s keys (environment, and no
    /// `-D` options) and builds its configuration.
    pub fn load(file: &Path, agent: &str) -> Result<AgentConfig, ConfigError> {
        let mut props = Properties::load(file)?;
        props.interpolate(&format!("{agent}."), &Lookups::process(&[]))?;
        AgentConfig::from_properties(&props, agent)
    }

    pub fn from_properties(props: &Properties, agent: &str) -> Result<AgentConfig, ConfigError> {
        let root = Section::new(props, format!("{agent}."));
        let list = |what: &str| -> Vec<String> {
            root.string(what)
                .map(|v| v.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default()
        };
        let source_names = list("sources");
        let channel_names = list("channels");
        let sink_names = list("sinks");
        if source_names.is_empty() && channel_names.is_empty() && sink_names.is_empty() {
            let agents = props.agent_names();
            let hint = if agents.is_empty() {
                "the file defines no agent (expected keys like `a.sources = r1`)".to_owned()
            } else {
                format!(
                    "the file defines agent(s) {}; pass one with -n",
                    agents.join(", ")
                )
            };
            return Err(root.error(None, format!("no agent named '{agent}': {hint}")));
        }
        if channel_names.is_empty() {
            return Err(root.error(
                Some("channels"),
                format!(
                    "agent '{agent}' has no channels: add `{agent}.channels = c1` and define c1"
                ),
            ));
        }
        let mut notes = Vec::new();

        let mut channels = Vec::new();
        for name in &channel_names {
            let s = root.child(&format!("channels.{name}."));
            channels.push(ChannelConfig::parse(name, &s, &mut notes)?);
            s.note_unused(&mut notes);
        }
        let mut sources = Vec::new();
        for name in &source_names {
            let s = root.child(&format!("sources.{name}."));
            let src = SourceConfig::parse(agent, name, &s, &mut notes)?;
            for ch in &src.channels {
                if !channel_names.contains(ch) {
                    return Err(s.error(
                        Some("channels"),
                        format!(
                            "source {name} refers to channel '{ch}', which is not in `{agent}.channels` ({})",
                            channel_names.join(" ")
                        ),
                    ));
                }
            }
            s.note_unused(&mut notes);
            sources.push(src);
        }
        let mut sinks = Vec::new();
        for name in &sink_names {
            let s = root.child(&format!("sinks.{name}."));
            let sink = SinkConfig::parse(agent, name, &s, &mut notes)?;
            if !channel_names.contains(&sink.channel) {
                return Err(s.error(
                    Some("channel"),
                    format!(
                        "sink {name} refers to channel '{}', which is not in `{agent}.channels` ({})",
                        sink.channel,
                        channel_names.join(" ")
                    ),
                ));
            }
            s.note_unused(&mut notes);
            sinks.push(sink);
        }
        let tx_capacity = |name: &str| {
            channels
                .iter()
                .find(|c| c.name == name)
                .map(|c| c.kind.transaction_capacity())
                .unwrap_or(usize::MAX)
        };
        for sink in &sinks {
            let cap = tx_capacity(&sink.channel);
            if sink.batch_size > cap {
                let s = root.child(&format!("sinks.{}.", sink.name));
                let key = match sink.kind {
                    SinkKind::FileRoll(_) => "sink.batchSize",
                    SinkKind::Kafka(_) => "flumeBatchSize",
                    _ => "batchSize",
                };
                return Err(s.error(
                    Some(key),
                    format!(
                        "batch size {} exceeds the transactionCapacity {cap} of channel {}",
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
                return Err(s.error(
                    Some("batchSize"),
                    format!(
                        "batch size {batch} exceeds the transactionCapacity {} of channel {ch}",
                        tx_capacity(ch)
                    ),
                ));
            }
        }
        let sink_groups = parse_sink_groups(&root, agent, &sink_names, &mut notes)?;
        for (key, entry) in props.with_prefix(&format!("{agent}.")) {
            let known = ["sources", "channels", "sinks", "sinkgroups"];
            let top = key.split('.').next().unwrap_or("");
            let defined = match top {
                "sources" => key
                    .split('.')
                    .nth(1)
                    .is_some_and(|n| source_names.iter().any(|s| s == n)),
                "channels" => key
                    .split('.')
                    .nth(1)
                    .is_some_and(|n| channel_names.iter().any(|s| s == n)),
                "sinks" => key
                    .split('.')
                    .nth(1)
                    .is_some_and(|n| sink_names.iter().any(|s| s == n)),
                "sinkgroups" => key
                    .split('.')
                    .nth(1)
                    .is_some_and(|n| sink_groups.iter().any(|g| g.name == n)),
                _ => false,
            };
            if !known.contains(&key) && !defined {
                notes.push(format!(
                    "{}:{}: {agent}.{key}: ignored: it belongs to no component listed in `{agent}.{top}`",
                    props.path.display(),
                    entry.line
                ));
            }
        }
        Ok(AgentConfig {
            agent: agent.to_owned(),
            file: props.path.clone(),
            sources,
            channels,
            sinks,
            sink_groups,
            notes,
        })
    }

    /// A human-readable wiring diagram, for `weir agent --check`.
    pub fn describe(&self) -> String {
        let mut out = format!("agent {} ({})\n", self.agent, self.file.display());
        for s in &self.sources {
            out.push_str(&format!(
                "  source  {} [{}] -> {}\n",
                s.name,
                s.kind.type_name(),
                s.channels.join(", ")
            ));
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

/// The keys under one prefix (`a.sources.r1.`), with typed accessors whose errors carry the
/// file, line and full key. Remembers which keys were read, so the rest can be reported.
pub struct Section<'a> {
    props: &'a Properties,
    prefix: String,
    used: RefCell<BTreeSet<String>>,
}

impl<'a> Section<'a> {
    pub fn new(props: &'a Properties, prefix: String) -> Self {
        Section {
            props,
            prefix,
            used: RefCell::new(BTreeSet::new()),
        }
    }

    pub fn props(&self) -> &'a Properties {
        self.props
    }

    pub fn child(&self, sub: &str) -> Section<'a> {
        Section::new(self.props, format!("{}{sub}", self.prefix))
    }

    /// The full key for `key`.
    pub fn full(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub fn entry(&self, key: &str) -> Option<&'a Entry> {
        self.used.borrow_mut().insert(key.to_owned());
        self.props.get(&self.full(key))
    }

    /// An error about `key` (or the section when `None`), at the key's line if it is set.
    pub fn error(&self, key: Option<&str>, message: String) -> ConfigError {
        let full = key.map(|k| self.full(k));
        // The key's own line, else (a missing key) where this component is first configured.
        let line = full
            .as_deref()
            .and_then(|k| self.props.get(k))
            .map(|e| e.line)
            .or_else(|| {
                self.props
                    .with_prefix(&self.prefix)
                    .map(|(_, e)| e.line)
                    .min()
            });
        ConfigError {
            file: self.props.path.clone(),
            line,
            key: full,
            message,
        }
    }

    pub fn string(&self, key: &str) -> Option<String> {
        self.entry(key)
            .map(|e| e.value.clone())
            .filter(|v| !v.is_empty())
    }

    pub fn string_or(&self, key: &str, default: &str) -> String {
        self.string(key).unwrap_or_else(|| default.to_owned())
    }

    pub fn required(&self, key: &str, hint: &str) -> Result<String, ConfigError> {
        self.string(key)
            .ok_or_else(|| self.error(Some(key), format!("missing: {hint}")))
    }

    pub fn parse_or<T: std::str::FromStr>(
        &self,
        key: &str,
        default: T,
        what: &str,
    ) -> Result<T, ConfigError> {
        match self.string(key) {
            None => Ok(default),
            Some(v) => v
                .replace('_', "")
                .parse()
                .map_err(|_| self.error(Some(key), format!("'{v}' is not {what}"))),
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
        value.parse::<u16>().map_err(|_| {
            self.error(
                Some(key),
                format!("'{value}' is not a port number (0-65535)"),
            )
        })
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
            return Err(self.error(Some(key), "must be greater than 0".into()));
        }
        Ok(v)
    }

    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.string(key).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if v == "true" => Ok(true),
            Some(v) if v == "false" => Ok(false),
            Some(v) => Err(self.error(Some(key), format!("'{v}' is not true or false"))),
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
                "{}:{}: {}: accepted, no effect in weir: {why}",
                self.props.path.display(),
                e.line,
                self.full(key)
            ));
        }
    }

    /// Notes every key of this section that no accessor asked for (Flume ignores unknown keys
    /// too, but a typo should be visible).
    pub fn note_unused(&self, notes: &mut Vec<String>) {
        let used = self.used.borrow();
        for (key, entry) in self.props.with_prefix(&self.prefix) {
            let is_used = used
                .iter()
                .any(|u| key == u || key.starts_with(&format!("{u}.")));
            if !is_used {
                notes.push(format!(
                    "{}:{}: {}{key}: unknown key, ignored",
                    self.props.path.display(),
                    entry.line,
                    self.prefix
                ));
            }
        }
    }
}
