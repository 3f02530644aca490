//! Typed configurations of each component type, with Flume's keys and defaults
//! (`shared/reference/flume.md`) and the weir-specific keys documented in README.

use std::path::PathBuf;
use std::time::Duration;

use super::kafka_producer::{self, ProducerProperty};
use super::properties::Entry;
use super::{ConfigError, Section};
use crate::wal::{CorruptionPolicy, SyncPolicy};

/// A component type: its alias and the Java class names Flume users may write instead.
struct TypeName {
    alias: &'static str,
    classes: &'static [&'static str],
}

/// Resolves a configured type (alias, case-insensitive as in Flume, or class name).
fn resolve(value: &str, known: &[TypeName]) -> Option<&'static str> {
    known
        .iter()
        .find(|t| t.alias.eq_ignore_ascii_case(value) || t.classes.contains(&value))
        .map(|t| t.alias)
}

/// The component's `type`, resolved to an alias; errors list the supported types.
fn component_type(
    s: &Section,
    what: &str,
    known: &[TypeName],
) -> Result<&'static str, ConfigError> {
    let names: Vec<&str> = known.iter().map(|t| t.alias).collect();
    let value = s.required(
        "type",
        &format!("set `{}` to one of: {}", s.full("type"), names.join(", ")),
    )?;
    resolve(&value, known).ok_or_else(|| {
        let why = match not_implemented(&value) {
            Some(why) => format!("{what} type '{value}' is Flume's but not weir's: {why}"),
            None => format!("unknown {what} type '{value}'"),
        };
        s.error(
            Some("type"),
            format!("{why}; supported: {}", names.join(", ")),
        )
    })
}

/// Flume's own component types weir does not have, and what to do instead: an error that says
/// only "unknown type" would read as a typo to a Flume user whose config names one of these.
const NOT_IMPLEMENTED: &[(&[&str], &str)] = &[
    (
        &[
            "hive",
            "org.apache.flume.sink.hive.HiveSink",
            "hbase",
            "org.apache.flume.sink.hbase.HBaseSink",
            "hbase2",
            "org.apache.flume.sink.hbase2.HBase2Sink",
            "asynchbase",
            "org.apache.flume.sink.hbase.AsyncHBaseSink",
            "org.apache.flume.sink.kite.DatasetSink",
        ],
        "weir has no Hadoop client for it (its hdfs sink writes files over WebHDFS); send the \
         events to Kafka (kafka sink) or to a Flume agent that writes them (avro or thrift \
         sink)",
    ),
    (
        &[
            "elasticsearch",
            "org.apache.flume.sink.elasticsearch.ElasticSearchSink",
            "morphline_solr",
            "org.apache.flume.sink.solr.morphline.MorphlineSolrSink",
        ],
        "weir has no search-engine client; POST the events with the http sink, or go through Kafka",
    ),
    (
        &["irc", "org.apache.flume.sink.irc.IRCSink"],
        "weir has no IRC client",
    ),
    (
        &[
            "jms",
            "org.apache.flume.source.jms.JMSSource",
            "scribe",
            "org.apache.flume.source.scribe.ScribeSource",
            "twitter",
            "org.apache.flume.source.twitter.TwitterSource",
            "avroLegacy",
            "org.apache.flume.source.avroLegacy.AvroLegacySource",
            "thriftLegacy",
            "org.apache.flume.source.thriftLegacy.ThriftLegacySource",
        ],
        "weir cannot load the Java client this source needs; bring the events in through Kafka, \
         HTTP, syslog or an avro/thrift sink of a Flume agent",
    ),
    (
        &["jdbc", "org.apache.flume.channel.jdbc.JdbcChannel"],
        "use the file channel, which is durable without a database",
    ),
    (
        &["org.apache.flume.channel.PseudoTxnMemoryChannel"],
        "use the memory channel",
    ),
    (
        &[
            "morphline",
            "org.apache.flume.sink.solr.morphline.MorphlineInterceptor$Builder",
        ],
        "weir cannot run Kite morphlines; search_replace, regex_extractor, regex_filter and \
         remove_header cover the common uses",
    ),
];

/// What to use instead of a Flume type weir does not implement, if `value` names one.
fn not_implemented(value: &str) -> Option<&'static str> {
    NOT_IMPLEMENTED
        .iter()
        .find(|(names, _)| names.iter().any(|n| n.eq_ignore_ascii_case(value)))
        .map(|(_, why)| *why)
}

const SOURCE_TYPES: &[TypeName] = &[
    TypeName {
        alias: "netcat",
        classes: &["org.apache.flume.source.NetcatSource"],
    },
    TypeName {
        alias: "seq",
        classes: &["org.apache.flume.source.SequenceGeneratorSource"],
    },
    TypeName {
        alias: "http",
        classes: &["org.apache.flume.source.http.HTTPSource"],
    },
    TypeName {
        alias: "exec",
        classes: &["org.apache.flume.source.ExecSource"],
    },
    TypeName {
        alias: "TAILDIR",
        classes: &["org.apache.flume.source.taildir.TaildirSource"],
    },
    TypeName {
        alias: "spooldir",
        classes: &["org.apache.flume.source.SpoolDirectorySource"],
    },
    TypeName {
        alias: "syslogtcp",
        classes: &["org.apache.flume.source.SyslogTcpSource"],
    },
    TypeName {
        alias: "syslogudp",
        classes: &["org.apache.flume.source.SyslogUDPSource"],
    },
    TypeName {
        alias: "multiport_syslogtcp",
        classes: &["org.apache.flume.source.MultiportSyslogTCPSource"],
    },
    TypeName {
        alias: "kafka",
        classes: &["org.apache.flume.source.kafka.KafkaSource"],
    },
    TypeName {
        alias: "avro",
        classes: &["org.apache.flume.source.AvroSource"],
    },
    TypeName {
        alias: "thrift",
        classes: &["org.apache.flume.source.ThriftSource"],
    },
    TypeName {
        alias: "netcatudp",
        classes: &["org.apache.flume.source.NetcatUdpSource"],
    },
    TypeName {
        // Flume has no alias for it, only the class name; `stress` is weir's.
        alias: "stress",
        classes: &["org.apache.flume.source.StressSource"],
    },
];

const CHANNEL_TYPES: &[TypeName] = &[
    TypeName {
        alias: "file",
        classes: &["org.apache.flume.channel.file.FileChannel"],
    },
    TypeName {
        alias: "memory",
        classes: &["org.apache.flume.channel.MemoryChannel"],
    },
    TypeName {
        alias: "kafka",
        classes: &["org.apache.flume.channel.kafka.KafkaChannel"],
    },
    TypeName {
        alias: "SPILLABLEMEMORY",
        classes: &["org.apache.flume.channel.SpillableMemoryChannel"],
    },
];

const SINK_TYPES: &[TypeName] = &[
    TypeName {
        alias: "logger",
        classes: &["org.apache.flume.sink.LoggerSink"],
    },
    TypeName {
        alias: "null",
        classes: &["org.apache.flume.sink.NullSink"],
    },
    TypeName {
        alias: "file_roll",
        classes: &["org.apache.flume.sink.RollingFileSink"],
    },
    TypeName {
        alias: "kafka",
        // The package name alone appears in widely copied Flume examples; accept it too.
        classes: &[
            "org.apache.flume.sink.kafka.KafkaSink",
            "org.apache.flume.sink.kafka",
        ],
    },
    TypeName {
        alias: "avro",
        classes: &["org.apache.flume.sink.AvroSink"],
    },
    TypeName {
        alias: "thrift",
        classes: &["org.apache.flume.sink.ThriftSink"],
    },
    TypeName {
        alias: "http",
        classes: &["org.apache.flume.sink.http.HttpSink"],
    },
    TypeName {
        alias: "hdfs",
        classes: &["org.apache.flume.sink.hdfs.HDFSEventSink"],
    },
];

// ---------------------------------------------------------------------------------------------
// Sources

#[derive(Clone, Debug)]
pub struct SourceConfig {
    pub name: String,
    pub channels: Vec<String>,
    pub selector: SelectorConfig,
    /// Applied in order to every batch before the selector.
    pub interceptors: Vec<InterceptorConfig>,
    pub kind: SourceKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SelectorConfig {
    /// Every event to every channel; a failure on an optional channel is ignored.
    Replicating { optional: Vec<String> },
    /// Channels chosen by the value of one header (Flume's multiplexing selector).
    Multiplexing {
        header: String,
        /// Header value → required channels.
        mapping: Vec<(String, Vec<String>)>,
        /// Header value → optional channels.
        optional: Vec<(String, Vec<String>)>,
        /// Required channels for values with no mapping.
        default: Vec<String>,
    },
    /// Each event to one of the channels, in turn or at random (Flume 1.10's load_balancing
    /// selector, `selector.policy`).
    LoadBalancing { random: bool },
}

impl SelectorConfig {
    /// How `--check` shows the routing: `None` for plain replicating (every event to every
    /// channel, which the source's line already says).
    pub fn describe(&self) -> Option<String> {
        let list = |l: &[String]| l.join(", ");
        match self {
            SelectorConfig::Replicating { optional } if optional.is_empty() => None,
            SelectorConfig::Replicating { optional } => {
                Some(format!("replicating, optional {}", list(optional)))
            }
            SelectorConfig::Multiplexing {
                header,
                mapping,
                optional,
                default,
            } => {
                let mut values: Vec<&str> = mapping
                    .iter()
                    .chain(optional)
                    .map(|(v, _)| v.as_str())
                    .collect();
                values.sort_unstable();
                values.dedup();
                fn find<'t>(t: &'t [(String, Vec<String>)], v: &str) -> Option<&'t [String]> {
                    t.iter().find(|(k, _)| k == v).map(|(_, l)| l.as_slice())
                }
                let mut parts: Vec<String> = values
                    .into_iter()
                    .map(|v| {
                        let shown = match find(mapping, v) {
                            Some(r) => list(r),
                            None => format!("(default) {}", list(default)),
                        };
                        match find(optional, v).filter(|o| !o.is_empty()) {
                            Some(o) => format!("'{v}' -> {shown} + optional {}", list(o)),
                            None => format!("'{v}' -> {shown}"),
                        }
                    })
                    .collect();
                parts.push(if default.is_empty() {
                    "other values -> none (not stored)".to_owned()
                } else {
                    format!("other values -> {}", list(default))
                });
                Some(format!(
                    "multiplexing on header '{header}': {}",
                    parts.join("; ")
                ))
            }
            SelectorConfig::LoadBalancing { random } => Some(format!(
                "load_balancing, {}",
                if *random { "random" } else { "round_robin" }
            )),
        }
    }
}

/// Flume's interceptors, with their keys and defaults.
#[derive(Clone, Debug)]
pub enum InterceptorConfig {
    Timestamp {
        header: String,
        preserve_existing: bool,
    },
    Host {
        header: String,
        use_ip: bool,
        preserve_existing: bool,
    },
    Static {
        key: String,
        value: String,
        preserve_existing: bool,
    },
    RegexFilter {
        regex: regex::Regex,
        exclude: bool,
    },
    Uuid {
        header: String,
        preserve_existing: bool,
        prefix: String,
    },
    /// Flume's `search_replace`: every match of `regex` in the body is replaced.
    SearchReplace {
        regex: regex::Regex,
        /// In the regex crate's syntax (`${1}`, `$$`), translated from Java's `replaceString`.
        replacement: String,
    },
    /// Flume's `remove_header`; all the criteria set apply.
    RemoveHeader {
        /// `withName`: one exact header name.
        with_name: Option<String>,
        /// `fromList`, split by `fromListSeparator`.
        from_list: Vec<String>,
        /// `matching`, anchored at both ends: a header goes when its whole name matches.
        matching: Option<regex::Regex>,
    },
    /// Flume's `regex_extractor`: group i of the first match goes to `serializers[i-1]`.
    RegexExtractor {
        regex: regex::Regex,
        serializers: Vec<ExtractorSerializer>,
    },
}

/// One of `regex_extractor`'s `serializers`: the header a group goes to, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtractorSerializer {
    pub header: String,
    pub kind: SerializerKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SerializerKind {
    /// `RegexExtractorInterceptorPassThroughSerializer` (Flume's `DEFAULT`): the group's text.
    PassThrough,
    /// `RegexExtractorInterceptorMillisSerializer`: the group's text parsed with `pattern`, as
    /// epoch milliseconds.
    Millis {
        /// The configured Java date pattern, e.g. `yyyy-MM-dd HH:mm:ss`.
        pattern: String,
        /// The same, in chrono's `strftime` syntax.
        chrono_format: String,
    },
}

const PASS_THROUGH_SERIALIZER: &str =
    "org.apache.flume.interceptor.RegexExtractorInterceptorPassThroughSerializer";
const MILLIS_SERIALIZER: &str =
    "org.apache.flume.interceptor.RegexExtractorInterceptorMillisSerializer";

const INTERCEPTOR_TYPES: &[TypeName] = &[
    TypeName {
        alias: "timestamp",
        classes: &["org.apache.flume.interceptor.TimestampInterceptor$Builder"],
    },
    TypeName {
        alias: "host",
        classes: &["org.apache.flume.interceptor.HostInterceptor$Builder"],
    },
    TypeName {
        alias: "static",
        classes: &["org.apache.flume.interceptor.StaticInterceptor$Builder"],
    },
    TypeName {
        alias: "regex_filter",
        classes: &["org.apache.flume.interceptor.RegexFilteringInterceptor$Builder"],
    },
    TypeName {
        alias: "uuid",
        classes: &["org.apache.flume.sink.solr.morphline.UUIDInterceptor$Builder"],
    },
    TypeName {
        alias: "search_replace",
        classes: &["org.apache.flume.interceptor.SearchAndReplaceInterceptor$Builder"],
    },
    TypeName {
        alias: "remove_header",
        classes: &["org.apache.flume.interceptor.RemoveHeaderInterceptor$Builder"],
    },
    TypeName {
        alias: "regex_extractor",
        classes: &["org.apache.flume.interceptor.RegexExtractorInterceptor$Builder"],
    },
];

fn names_list(v: Option<String>) -> Vec<String> {
    v.map(|v| v.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The channels of a selector's list value, each once: a channel named twice gets the event
/// once.
fn channel_list(v: Option<String>) -> Vec<String> {
    let mut names = names_list(v);
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

fn parse_interceptors(
    s: &Section,
    notes: &mut Vec<String>,
) -> Result<Vec<InterceptorConfig>, ConfigError> {
    let mut out = Vec::new();
    let listed = names_list(s.string("interceptors"));
    // Keys of an interceptor the list leaves out (a name forgotten there) do nothing: one note
    // per such interceptor, where the source's check would name each key; they count as read.
    let mut unlisted: Vec<(&str, &Entry)> = Vec::new();
    let under = s.full("interceptors.");
    for (key, e) in s.props().with_prefix(&under) {
        let name = key.split('.').next().unwrap_or(key);
        if listed.iter().any(|l| l == name) {
            continue;
        }
        s.entry(&format!("interceptors.{key}"));
        match unlisted.iter_mut().find(|(n, _)| *n == name) {
            // Named at the line the file configures it first.
            Some((_, first)) if e.file == first.file && e.line < first.line => *first = e,
            Some(_) => {}
            None => unlisted.push((name, e)),
        }
    }
    for (name, e) in unlisted {
        let list = if listed.is_empty() {
            "which is not set".to_owned()
        } else {
            format!("({})", listed.join(" "))
        };
        notes.push(format!(
            "{}: {under}{name}: interceptor '{name}' is not in `{}` {list}; its keys are ignored",
            e.at(),
            s.full("interceptors"),
        ));
    }
    for name in listed.iter() {
        let i = s.child(&format!("interceptors.{name}."));
        let ty = component_type(&i, "interceptor", INTERCEPTOR_TYPES)?;
        out.push(match ty {
            "timestamp" => InterceptorConfig::Timestamp {
                header: i.string_or("headerName", "timestamp"),
                preserve_existing: i.bool_or("preserveExisting", false)?,
            },
            "host" => InterceptorConfig::Host {
                header: i.string_or("hostHeader", "host"),
                use_ip: i.bool_or("useIP", true)?,
                preserve_existing: i.bool_or("preserveExisting", false)?,
            },
            "static" => InterceptorConfig::Static {
                key: i.string_or("key", "key"),
                value: i.string_or("value", "value"),
                preserve_existing: i.bool_or("preserveExisting", true)?,
            },
            "regex_filter" => {
                let pattern = i.string_or("regex", ".*");
                // Flume matches with Matcher.find(), anywhere in the body, as is_match does.
                let regex = super::java_regex(&pattern).map_err(|e| {
                    i.error(
                        Some("regex"),
                        format!("not a valid regular expression: {e}"),
                    )
                })?;
                InterceptorConfig::RegexFilter {
                    regex,
                    exclude: i.bool_or("excludeEvents", false)?,
                }
            }
            "uuid" => InterceptorConfig::Uuid {
                header: i.string_or("headerName", "id"),
                preserve_existing: i.bool_or("preserveExisting", true)?,
                prefix: i.string_or("prefix", ""),
            },
            "search_replace" => parse_search_replace(&i)?,
            "remove_header" => parse_remove_header(&i, notes)?,
            "regex_extractor" => parse_regex_extractor(&i, notes)?,
            _ => unreachable!("component_type returns only listed aliases"),
        });
        // Checked here, so that the notes of an interceptor come together.
        i.note_unused(notes);
    }
    Ok(out)
}

/// `key`'s value compiled as a Java regular expression (translated, see
/// [`super::java_pattern`]; the regex crate has no look-around or back-references, unlike Java).
fn regex_at(i: &Section, key: &str, value: &str) -> Result<regex::Regex, ConfigError> {
    super::java_regex(value)
        .map_err(|e| i.error(Some(key), format!("not a valid regular expression: {e}")))
}

fn parse_search_replace(i: &Section) -> Result<InterceptorConfig, ConfigError> {
    let pattern = i.required(
        "searchPattern",
        &format!(
            "set `{}` to the regular expression to replace",
            i.full("searchPattern")
        ),
    )?;
    let regex = regex_at(i, "searchPattern", &pattern)?;
    // Flume: an absent or empty replaceString replaces with nothing.
    let java = i.string_or("replaceString", "");
    let replacement =
        super::java_replacement(&java, &regex).map_err(|e| i.error(Some("replaceString"), e))?;
    let charset = i.string_or("charset", "UTF-8");
    if !charset.eq_ignore_ascii_case("UTF-8") {
        return Err(i.error(
            Some("charset"),
            format!("charset '{charset}' is not supported; supported: UTF-8"),
        ));
    }
    Ok(InterceptorConfig::SearchReplace { regex, replacement })
}

fn parse_remove_header(
    i: &Section,
    notes: &mut Vec<String>,
) -> Result<InterceptorConfig, ConfigError> {
    let with_name = i.string("withName");
    let from_list = match i.string("fromList") {
        Some(list) => {
            // As Flume, the separator is only compiled when there is a list to split.
            let separator = i.string_or("fromListSeparator", r"\s*,\s*");
            regex_at(i, "fromListSeparator", &separator)?
                .split(&list)
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect()
        }
        None => {
            i.ignored_with("fromListSeparator", "no fromList", notes);
            Vec::new()
        }
    };
    let matching = match i.string("matching") {
        // Checked alone first: wrapped, `a)|(b` would compile to something else.
        Some(p) => {
            regex_at(i, "matching", &p)?;
            // Java's matcher(name).matches(): the whole name must match.
            Some(regex_at(i, "matching", &format!(r"\A(?:{p})\z"))?)
        }
        None => None,
    };
    Ok(InterceptorConfig::RemoveHeader {
        with_name,
        from_list,
        matching,
    })
}

fn parse_regex_extractor(
    i: &Section,
    notes: &mut Vec<String>,
) -> Result<InterceptorConfig, ConfigError> {
    let pattern = i.required(
        "regex",
        &format!(
            "set `{}` to a regular expression whose groups become headers",
            i.full("regex")
        ),
    )?;
    let regex = regex_at(i, "regex", &pattern)?;
    let names = names_list(i.string("serializers"));
    if names.is_empty() {
        return Err(i.error(
            Some("serializers"),
            format!(
                "missing: set `{}` to one name per group, e.g. `s1 s2`, and \
                 `{}` to the header of each",
                i.full("serializers"),
                i.full("serializers.s1.name")
            ),
        ));
    }
    let mut serializers = Vec::new();
    for name in &names {
        let s = i.child(&format!("serializers.{name}."));
        let header = match s.string("name") {
            Some(h) => h,
            None => {
                let mut e = s.error(
                    Some("name"),
                    "missing: set it to the header this group is stored in".into(),
                );
                // Nothing set for this serializer: point at the list that names it.
                if s.props().with_prefix(&s.full("")).next().is_none()
                    && let Some(list) = i.entry("serializers")
                {
                    e.locate(list);
                }
                return Err(e);
            }
        };
        let kind = match s.string("type").as_deref() {
            None | Some("DEFAULT") | Some(PASS_THROUGH_SERIALIZER) => {
                s.ignored_with("pattern", "the pass-through serializer (DEFAULT)", notes);
                SerializerKind::PassThrough
            }
            Some(MILLIS_SERIALIZER) => {
                let pattern = s.required(
                    "pattern",
                    &format!(
                        "the millis serializer needs `{}`, a date pattern like \
                         yyyy-MM-dd HH:mm:ss",
                        s.full("pattern")
                    ),
                )?;
                let chrono_format =
                    super::java_date_format(&pattern).map_err(|e| s.error(Some("pattern"), e))?;
                SerializerKind::Millis {
                    pattern,
                    chrono_format,
                }
            }
            Some(other) => {
                return Err(s.error(
                    Some("type"),
                    format!(
                        "serializer '{other}' is not supported; supported: DEFAULT, \
                         {PASS_THROUGH_SERIALIZER}, {MILLIS_SERIALIZER}"
                    ),
                ));
            }
        };
        // Checked here, so that the notes of a serializer come together.
        s.note_unused(notes);
        serializers.push(ExtractorSerializer { header, kind });
    }
    Ok(InterceptorConfig::RegexExtractor { regex, serializers })
}

fn parse_selector(
    s: &Section,
    channels: &[String],
    notes: &mut Vec<String>,
) -> Result<SelectorConfig, ConfigError> {
    let check = |key: &str, list: &[String]| -> Result<(), ConfigError> {
        match list.iter().find(|c| !channels.contains(c)) {
            Some(bad) => Err(s.error(
                Some(key),
                format!(
                    "channel '{bad}' is not one of this source's channels ({})",
                    channels.join(" ")
                ),
            )),
            None => Ok(()),
        }
    };
    let written = s.string_or("selector.type", "replicating");
    // Flume takes the alias in any case, or the selector's class name.
    let kind = match written.as_str() {
        "org.apache.flume.channel.ReplicatingChannelSelector" => "replicating".to_owned(),
        "org.apache.flume.channel.MultiplexingChannelSelector" => "multiplexing".to_owned(),
        "org.apache.flume.channel.LoadBalancingChannelSelector" => "load_balancing".to_owned(),
        other => other.to_ascii_lowercase(),
    };
    // The keys of the other selectors: this one does not read them (nor does Flume's).
    let with = format!("selector.type = {kind}");
    let others: &[&str] = match kind.as_str() {
        "replicating" => &["header", "default", "policy", "mapping.", "optional."],
        "multiplexing" => &["optional", "policy"],
        "load_balancing" => &["header", "default", "optional", "mapping.", "optional."],
        _ => &[],
    };
    for key in others {
        match key.strip_suffix('.') {
            Some(prefix) => s.ignored_with_under(&format!("selector.{prefix}"), &with, notes),
            None => s.ignored_with(&format!("selector.{key}"), &with, notes),
        }
    }
    match kind.as_str() {
        "replicating" => {
            let optional = channel_list(s.string("selector.optional"));
            check("selector.optional", &optional)?;
            Ok(SelectorConfig::Replicating { optional })
        }
        "multiplexing" => {
            let table = |prefix: &str| -> Result<Vec<(String, Vec<String>)>, ConfigError> {
                let mut out = Vec::new();
                for (value, entry) in s.props().with_prefix(&s.full(prefix)) {
                    let key = format!("{prefix}{value}");
                    s.entry(&key);
                    // Flume drops empty values: such a header value falls to the default.
                    if entry.value.is_empty() {
                        continue;
                    }
                    let list = channel_list(Some(entry.value.clone()));
                    check(&key, &list)?;
                    out.push((value.to_owned(), list));
                }
                Ok(out)
            };
            let default = channel_list(s.string("selector.default"));
            check("selector.default", &default)?;
            let mapping = table("selector.mapping.")?;
            let mut optional = table("selector.optional.")?;
            // A channel required for a value is not also optional for it (Flume drops it from
            // the optional list): it would get the event twice.
            for (value, list) in optional.iter_mut() {
                let required = mapping
                    .iter()
                    .find(|(v, _)| v == value)
                    .map_or(default.as_slice(), |(_, l)| l.as_slice());
                list.retain(|c| !required.contains(c));
            }
            Ok(SelectorConfig::Multiplexing {
                header: s.string_or("selector.header", "flume.selector.header"),
                mapping,
                optional,
                default,
            })
        }
        "load_balancing" => {
            let policy = s.string_or("selector.policy", "round_robin");
            let random = match policy.to_ascii_lowercase().as_str() {
                "round_robin" => false,
                "random" => true,
                _ => {
                    return Err(s.error(
                        Some("selector.policy"),
                        format!("'{policy}' is not round_robin or random"),
                    ));
                }
            };
            Ok(SelectorConfig::LoadBalancing { random })
        }
        _ if written.contains('.') => Err(s.error(
            Some("selector.type"),
            format!(
                "'{written}' looks like a Java class: custom channel selectors cannot be loaded \
                 in weir; use replicating, multiplexing or load_balancing"
            ),
        )),
        _ => Err(s.error(
            Some("selector.type"),
            format!(
                "unknown selector '{written}'; supported: replicating, multiplexing, \
                 load_balancing"
            ),
        )),
    }
}

#[derive(Clone, Debug)]
pub enum SourceKind {
    Netcat(NetcatConfig),
    NetcatUdp(NetcatUdpConfig),
    Stress(StressConfig),
    Seq(SeqConfig),
    Http(super::HttpSourceConfig),
    Exec(super::ExecSourceConfig),
    Taildir(super::TaildirConfig),
    Syslog(super::SyslogConfig),
    SpoolDir(super::SpoolDirConfig),
    Kafka(super::KafkaSourceConfig),
    Avro(super::AvroSourceConfig),
    Thrift(super::ThriftSourceConfig),
}

impl SourceKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            SourceKind::Netcat(_) => "netcat",
            SourceKind::NetcatUdp(_) => "netcatudp",
            SourceKind::Stress(_) => "stress",
            SourceKind::Seq(_) => "seq",
            SourceKind::Http(_) => "http",
            SourceKind::Exec(_) => "exec",
            SourceKind::Taildir(_) => "TAILDIR",
            SourceKind::Syslog(c) => c.protocol.type_name(),
            SourceKind::SpoolDir(_) => "spooldir",
            SourceKind::Kafka(_) => "kafka",
            SourceKind::Avro(_) => "avro",
            SourceKind::Thrift(_) => "thrift",
        }
    }

    /// The most client connections the source holds open at once, each on a file descriptor
    /// (`max-connections`, `maxConnections`), for the sources that accept connections.
    pub fn max_connections(&self) -> Option<usize> {
        match self {
            SourceKind::Netcat(c) => Some(c.max_connections),
            SourceKind::Http(c) => Some(c.max_connections),
            SourceKind::Avro(c) => Some(c.max_connections),
            SourceKind::Thrift(c) => Some(c.max_connections),
            SourceKind::Syslog(c) if c.protocol != super::SyslogProtocol::Udp => {
                Some(c.max_connections)
            }
            _ => None,
        }
    }

    /// The `batchSize` that must fit in each of the source's channels' `transactionCapacity`,
    /// for the sources Flume checks at startup (its `BatchSizeSupported` ones). weir's own
    /// batch for syslogtcp/syslogudp (not a Flume key there) is instead cut to fit at run time.
    pub fn checked_batch_size(&self) -> Option<usize> {
        match self {
            SourceKind::Seq(c) => Some(c.batch_size),
            SourceKind::Stress(c) => Some(c.batch_size),
            SourceKind::Exec(c) => Some(c.batch_size),
            SourceKind::Taildir(c) => Some(c.batch_size),
            SourceKind::SpoolDir(c) => Some(c.batch_size),
            SourceKind::Kafka(c) => Some(c.batch_size),
            SourceKind::Syslog(c) if c.protocol == super::SyslogProtocol::MultiportTcp => {
                Some(c.batch_size)
            }
            SourceKind::Netcat(_)
            | SourceKind::NetcatUdp(_)
            | SourceKind::Http(_)
            | SourceKind::Syslog(_)
            | SourceKind::Avro(_)
            | SourceKind::Thrift(_) => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetcatConfig {
    pub bind: String,
    pub port: u16,
    /// Longest accepted line in bytes, newline included (Flume: `max-line-length`, 512).
    pub max_line_length: usize,
    pub ack_every_event: bool,
    /// weir: most concurrent connections; more are refused with a FAILED line.
    pub max_connections: usize,
}

/// Flume's `netcatudp`: one datagram is one event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetcatUdpConfig {
    /// `bind`; Flume listens on every address when it is not set.
    pub bind: String,
    pub port: u16,
    /// `remoteAddressHeader`: the header that gets the sender's address, if set.
    pub remote_address_header: Option<String>,
}

/// Flume's `org.apache.flume.source.StressSource`: a load generator of identical events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StressConfig {
    /// `size`: bytes in each body (Flume: 500), all 0x7F as in Flume.
    pub size: usize,
    /// `maxTotalEvents`: events offered to the channel, refused ones included, as in Flume
    /// (negative, the default -1: no limit).
    pub max_total_events: Option<u64>,
    /// `maxSuccessfulEvents`: events the channel accepted (-1: no limit).
    pub max_successful_events: Option<u64>,
    /// `batchSize` (Flume: 1).
    pub batch_size: usize,
    /// `maxEventsPerSecond` (0, the default: no limit).
    pub max_events_per_second: u64,
    pub backoff: super::PollBackoff,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeqConfig {
    pub total_events: u64,
    pub batch_size: usize,
    /// weir `bodySize`: pad each body (the decimal number) with spaces to this many bytes, for
    /// benchmarks with realistic event sizes. 0 (default) leaves the number alone.
    pub body_size: usize,
}

/// The note for a source or sink whose channel is not set, bound to the agent's only channel.
/// Flume drops such a component with a warning and runs without it, which leaves an agent of
/// one source, one channel and one sink (the usual first config, this project's seed article's
/// among them) doing nothing.
fn unbound_note(s: &Section, key: &str, what: &str, name: &str, only: &str) -> String {
    format!(
        "{}: not set; the agent has one channel, so {what} {name} uses {only} \
         (Flume would drop {what} {name})",
        s.located(key)
    )
}

impl SourceConfig {
    /// `defined`: the agent's channels. A source without `channels` puts into the agent's
    /// channel if it has exactly one. Channels it names that are not defined are left out, as
    /// Flume leaves them out, each with a line in `left_out`, unless it names no defined
    /// channel at all: then they are kept, and the caller leaves the whole source out (as
    /// Flume does).
    pub(super) fn parse(
        agent: &str,
        name: &str,
        s: &Section,
        defined: &[String],
        notes: &mut Vec<String>,
        left_out: &mut Vec<String>,
    ) -> Result<Self, ConfigError> {
        let only_channel = super::one_of(defined);
        let ty = component_type(s, "source", SOURCE_TYPES)?;
        let mut channels: Vec<String> = Vec::new();
        // Flume reads the list into a set: a channel named twice gets each event once.
        for c in s
            .string("channels")
            .iter()
            .flat_map(|v| v.split_whitespace())
        {
            if channels.iter().any(|known| known == c) {
                notes.push(format!(
                    "{}: {}: channel '{c}' is named twice; source {name} puts each event into \
                     it once (as Flume does)",
                    s.entry("channels").map(|e| e.at()).unwrap_or_default(),
                    s.full("channels"),
                ));
            } else {
                channels.push(c.to_owned());
            }
        }
        // Named here, with a hint for `channels.selector.*` (Flume's channel selector sits
        // beside the list, not under it); they count as read then, so each is named once.
        let under_channels = s.full("channels.");
        for (key, e) in s.props().with_prefix(&under_channels) {
            s.entry(&format!("channels.{key}"));
            let hint = match key.strip_prefix("selector.") {
                Some(rest) => format!(
                    " (a source's selector is `{}`)",
                    s.full(&format!("selector.{rest}"))
                ),
                None => String::new(),
            };
            notes.push(format!(
                "{}: {under_channels}{key}: unknown key, ignored{hint}",
                e.at()
            ));
        }
        if channels.iter().any(|c| defined.contains(c)) {
            let at = s.entry("channels").map(|e| e.at()).unwrap_or_default();
            channels.retain(|c| {
                let known = defined.contains(c);
                if !known {
                    left_out.push(format!(
                        "{at}: {}: channel '{c}' is not one of agent {agent}'s channels ({}); \
                         source {name} puts into the others only (as in Flume)",
                        s.full("channels"),
                        defined.join(" ")
                    ));
                }
                known
            });
        }
        if channels.is_empty()
            && let Some(only) = only_channel
        {
            notes.push(unbound_note(s, "channels", "source", name, only));
            channels.push(only.to_owned());
        }
        if channels.is_empty() {
            return Err(s.error(
                Some("channels"),
                format!(
                    "source {name} has no channels: add `{agent}.sources.{name}.channels = c1`"
                ),
            ));
        }
        let selector = parse_selector(s, &channels, notes)?;
        if let SelectorConfig::Multiplexing {
            mapping, default, ..
        } = &selector
            && default.is_empty()
        {
            let at = s.entry("selector.type").map(|e| e.at()).unwrap_or_default();
            let (list, consequence) = if mapping.is_empty() {
                (
                    &mut *left_out,
                    "no `selector.mapping.*` and no `selector.default`: no event of this source \
                     is stored (Flume drops them too); add",
                )
            } else {
                (
                    &mut *notes,
                    "no `selector.default`: events whose header matches no mapping are not \
                     stored (as in Flume); to keep them, add",
                )
            };
            list.push(format!(
                "{at}: {}: {consequence} `{} = {}`",
                s.full("selector.type"),
                s.full("selector.default"),
                channels[0]
            ));
        }
        let interceptors = parse_interceptors(s, notes)?;
        let kind = match ty {
            "netcat" => {
                let port = s.port("port")?;
                SourceKind::Netcat(NetcatConfig {
                    bind: s.required(
                        "bind",
                        &format!(
                            "set `{}` to the address to listen on, e.g. 0.0.0.0",
                            s.full("bind")
                        ),
                    )?,
                    port,
                    max_line_length: s.positive_or("max-line-length", 512)? as usize,
                    ack_every_event: s.bool_or("ack-every-event", true)?,
                    max_connections: s.positive_or("max-connections", 1000)? as usize,
                })
            }
            "netcatudp" => SourceKind::NetcatUdp(NetcatUdpConfig {
                bind: s.string_or("bind", "0.0.0.0"),
                port: s.port("port")?,
                remote_address_header: s.string("remoteAddressHeader"),
            }),
            "stress" => {
                // Flume reads these as Java longs and treats any negative value as no limit.
                let limit = |key: &str| -> Result<Option<u64>, ConfigError> {
                    let v: i64 = s.parse_or(key, -1, "a whole number (-1: no limit)")?;
                    Ok(u64::try_from(v).ok())
                };
                SourceKind::Stress(StressConfig {
                    size: s.usize_or("size", 500)?,
                    max_total_events: limit("maxTotalEvents")?,
                    max_successful_events: limit("maxSuccessfulEvents")?,
                    batch_size: s.positive_or("batchSize", 1)? as usize,
                    max_events_per_second: s.u64_or("maxEventsPerSecond", 0)?,
                    backoff: super::PollBackoff::parse(s, notes)?,
                })
            }
            "seq" => SourceKind::Seq(SeqConfig {
                total_events: s.u64_or("totalEvents", u64::MAX)?,
                batch_size: s.positive_or("batchSize", 1)? as usize,
                body_size: s.usize_or("bodySize", 0)?,
            }),
            "http" => SourceKind::Http(super::http::parse_http(s, notes)?),
            "exec" => SourceKind::Exec(super::exec::parse_exec(s, notes)?),
            "TAILDIR" => SourceKind::Taildir(super::taildir::parse_taildir(s, notes)?),
            "spooldir" => SourceKind::SpoolDir(super::spooldir::parse_spooldir(s, notes)?),
            "kafka" => SourceKind::Kafka(super::kafka_source::parse_kafka_source(s, notes)?),
            "avro" => SourceKind::Avro(super::avro::parse_avro_source(s, notes)?),
            "thrift" => SourceKind::Thrift(super::thrift::parse_thrift_source(s, notes)?),
            "syslogtcp" | "syslogudp" | "multiport_syslogtcp" => {
                SourceKind::Syslog(super::parse_syslog(ty, s, notes)?)
            }
            _ => unreachable!("resolve() returns only listed aliases"),
        };
        let _ = notes;
        Ok(SourceConfig {
            name: name.to_owned(),
            channels,
            selector,
            interceptors,
            kind,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Channels

#[derive(Clone, Debug)]
pub struct ChannelConfig {
    pub name: String,
    pub kind: ChannelKind,
}

#[derive(Clone, Debug)]
pub enum ChannelKind {
    File(FileChannelConfig),
    Memory(MemoryChannelConfig),
    Kafka(super::KafkaChannelConfig),
}

impl ChannelKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            ChannelKind::File(_) => "file",
            ChannelKind::Memory(_) => "memory",
            ChannelKind::Kafka(_) => "kafka",
        }
    }

    pub fn transaction_capacity(&self) -> usize {
        match self {
            ChannelKind::File(c) => c.transaction_capacity,
            ChannelKind::Memory(c) => c.transaction_capacity,
            ChannelKind::Kafka(c) => c.transaction_capacity,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileChannelConfig {
    pub checkpoint_dir: PathBuf,
    pub data_dir: PathBuf,
    /// Most events held (Flume `capacity`).
    pub capacity: u64,
    pub transaction_capacity: usize,
    /// How long a put waits for space before failing with "channel full" (Flume `keep-alive`).
    pub keep_alive: Duration,
    /// Segment size (Flume `maxFileSize`; weir's default is 64 MiB, see README).
    pub segment_size: u64,
    pub minimum_required_space: u64,
    pub sync: SyncPolicy,
    /// weir `byteCapacity`: most bytes of frames held.
    pub byte_capacity: Option<u64>,
    /// weir `onCorruption`: `fail` (default) or `skip`.
    pub on_corruption: CorruptionPolicy,
}

impl FileChannelConfig {
    /// A file channel in these directories with Flume's defaults for everything else: what a
    /// properties file that sets only `checkpointDir` and `dataDirs` gets.
    pub fn new(checkpoint_dir: PathBuf, data_dir: PathBuf) -> Self {
        FileChannelConfig {
            checkpoint_dir,
            data_dir,
            capacity: 1_000_000,
            transaction_capacity: 10_000,
            keep_alive: Duration::from_secs(3),
            segment_size: crate::wal::DEFAULT_SEGMENT_SIZE,
            minimum_required_space: 524_288_000,
            sync: SyncPolicy::EveryCommit,
            byte_capacity: None,
            on_corruption: CorruptionPolicy::Fail,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryChannelConfig {
    pub capacity: usize,
    pub transaction_capacity: usize,
    pub keep_alive: Duration,
    /// Most bytes of event bodies held (Flume `byteCapacity`; unlimited when unset).
    pub byte_capacity: Option<u64>,
}

/// `transactionCapacity` (default `default`), which must not exceed `capacity` (named
/// `capacity_name` in the error).
fn transaction_capacity(
    s: &Section,
    default: u64,
    capacity: u64,
    capacity_name: &str,
) -> Result<u64, ConfigError> {
    let transaction_capacity = s.positive_or("transactionCapacity", default)?;
    if transaction_capacity > capacity {
        return Err(s.error(
            Some("transactionCapacity"),
            format!("{transaction_capacity} exceeds {capacity_name} {capacity}"),
        ));
    }
    Ok(transaction_capacity)
}

/// A memory channel of `capacity` events (named `capacity_name` in errors), with the memory
/// channel's other keys; `transactionCapacity` defaults to `default_transaction`.
///
/// `read` (the value of `key`), refused when a Java `int` cannot hold it: Flume's memory
/// channel reads its sizes with `Context.getInteger`, whose failure it catches, warning and
/// taking the default, so `capacity = 3000000000` is a channel of 100 there.
fn java_int(s: &Section, key: &str, read: Result<u64, ConfigError>) -> Result<u64, ConfigError> {
    let v = read?;
    if v > i32::MAX as u64 {
        return Err(s.error(
            Some(key),
            format!("{v} is more than a Java int holds (2147483647)"),
        ));
    }
    Ok(v)
}

/// A size or `keep-alive` that is not a number gives the default and a warning, as Flume's
/// `MemoryChannel` does (see [`Section::or_flume_fallback`]); a `transactionCapacity` over the
/// capacity is refused, as Flume refuses it.
fn memory_channel(
    s: &Section,
    notes: &mut Vec<String>,
    warnings: &mut Vec<String>,
    capacity: u64,
    capacity_name: &str,
    default_transaction: u64,
) -> Result<MemoryChannelConfig, ConfigError> {
    let read = java_int(
        s,
        "transactionCapacity",
        s.strictly(|| s.positive_or("transactionCapacity", default_transaction)),
    );
    let fell_back = read.is_err();
    let transaction_capacity = s.or_flume_fallback(
        read,
        default_transaction,
        &format!("the default {default_transaction}"),
        warnings,
    );
    if transaction_capacity > capacity {
        let what = if fell_back {
            format!("the default {transaction_capacity} (the value given is not a positive number)")
        } else {
            transaction_capacity.to_string()
        };
        return Err(s.error(
            Some("transactionCapacity"),
            format!("{what} exceeds {capacity_name} {capacity}"),
        ));
    }
    s.accept_without_effect(
        "byteCapacityBufferPercentage",
        "weir counts body bytes exactly, with no allowance for headers",
        notes,
    );
    let keep_alive = s.or_flume_fallback(
        s.strictly(|| s.seconds_or("keep-alive", 3)),
        Duration::from_secs(3),
        "the default 3 s",
        warnings,
    );
    let byte_capacity = s.string("byteCapacity").and_then(|_| {
        s.or_flume_fallback(
            s.strictly(|| s.positive_or("byteCapacity", 1)).map(Some),
            None,
            "no byte limit (Flume's default is 80% of the JVM's heap)",
            warnings,
        )
    });
    Ok(MemoryChannelConfig {
        capacity: capacity as usize,
        transaction_capacity: transaction_capacity as usize,
        keep_alive,
        byte_capacity,
    })
}

/// Flume's file channel caps `maxFileSize` here (its log offsets are 32-bit); weir caps it the
/// same, which also keeps segment sizes far from overflow.
const FLUME_MAX_FILE_SIZE: u64 = 2_146_435_071;

/// A file channel's keys; `spill_capacity` is the capacity of a spillable memory channel
/// stored as a file channel, which replaces the `capacity` key.
fn parse_file_channel(
    s: &Section,
    notes: &mut Vec<String>,
    spill_capacity: Option<u64>,
) -> Result<FileChannelConfig, ConfigError> {
    let defaults = FileChannelConfig::new(PathBuf::new(), PathBuf::new());
    let capacity = match spill_capacity {
        None => s.positive_or("capacity", defaults.capacity)?,
        Some(c) => {
            s.accept_without_effect(
                "capacity",
                "a spillable memory channel holds memoryCapacity + overflowCapacity",
                notes,
            );
            c
        }
    };
    // A small spillable channel gets a transaction capacity that fits it.
    let default_transaction = (defaults.transaction_capacity as u64).min(capacity);
    let transaction_capacity =
        transaction_capacity(s, default_transaction, capacity, "the channel capacity")?;
    let data_dirs: Vec<PathBuf> = match s.entry("dataDirs") {
        None => vec![super::home_path(".flume/file-channel/data")],
        Some(e) => e
            .value
            .split(',')
            .map(|d| PathBuf::from(d.trim()))
            .filter(|d| !d.as_os_str().is_empty())
            .collect(),
    };
    // Flume fails on these too; falling back to the default would put the log where nobody
    // looks for it.
    if data_dirs.is_empty() {
        return Err(s.error(
            Some("dataDirs"),
            "names no directory: give one, or leave the key out for the default \
             ~/.flume/file-channel/data"
                .into(),
        ));
    }
    if data_dirs.len() > 1 {
        notes.push(format!(
            "{}: weir keeps the log in the first data directory ({}); the others are not used",
            s.located("dataDirs"),
            data_dirs[0].display()
        ));
    }
    let given = s.u64_or("maxFileSize", 0)?;
    let segment_size = match given {
        0 => {
            if s.entry("maxFileSize").is_some() {
                notes.push(format!(
                    "{}: 0 means the default, {} bytes",
                    s.located("maxFileSize"),
                    defaults.segment_size
                ));
            }
            defaults.segment_size
        }
        n if n > FLUME_MAX_FILE_SIZE => {
            let used = FLUME_MAX_FILE_SIZE.div_ceil(4096) * 4096;
            notes.push(format!(
                "{}: {n} is more than Flume's largest maxFileSize; {FLUME_MAX_FILE_SIZE} is used, \
                 as in Flume, made whole 4 KiB pages: {used}",
                s.located("maxFileSize")
            ));
            used
        }
        n => {
            let used = n.max(crate::wal::segment::MIN_SEGMENT_LEN).div_ceil(4096) * 4096;
            if used != n {
                notes.push(format!(
                    "{}: {n} is used as {used}: a segment is whole 4 KiB pages, at least {} \
                     bytes",
                    s.located("maxFileSize"),
                    crate::wal::segment::MIN_SEGMENT_LEN
                ));
            }
            used
        }
    };
    let sync = if s.bool_or("fsyncPerTransaction", true)? {
        s.ignored_with("fsyncInterval", "fsyncPerTransaction = true", notes);
        SyncPolicy::EveryCommit
    } else {
        SyncPolicy::Interval(
            s.seconds_or("fsyncInterval", 5)?
                .max(Duration::from_millis(1)),
        )
    };
    let on_corruption = match s
        .string_or("onCorruption", "fail")
        .to_ascii_lowercase()
        .as_str()
    {
        "fail" => CorruptionPolicy::Fail,
        "skip" => CorruptionPolicy::Skip,
        other => {
            return Err(s.error(
                Some("onCorruption"),
                format!("'{other}' is not fail or skip"),
            ));
        }
    };
    // Flume encrypts the file channel's data with these; weir cannot, and storing
    // events in the clear that the user asked to have encrypted is not a note.
    let full_prefix = s.full("encryption.");
    if let Some((key, _)) = s.props().with_prefix(&full_prefix).next() {
        return Err(s.error(
            Some(&format!("encryption.{key}")),
            "file channel encryption is not supported: weir would store these \
                 events unencrypted. Encrypt the file system holding checkpointDir and \
                 dataDirs instead, and remove the encryption.* keys"
                .into(),
        ));
    }
    let why_deprecated = "a deprecated Flume key; a put waits keep-alive for space";
    s.accept_without_effect("write-timeout", why_deprecated, notes);
    s.accept_without_effect("checkpoint-timeout", why_deprecated, notes);
    let why_ckpt = "weir checkpoints consumer offsets durably at every take commit";
    s.accept_without_effect("checkpointInterval", why_ckpt, notes);
    s.accept_without_effect("checkpointOnClose", why_ckpt, notes);
    let why_dual =
        "weir's checkpoint files hold two slots, so a torn write falls back to the previous one";
    s.accept_without_effect("useDualCheckpoints", why_dual, notes);
    s.accept_without_effect("backupCheckpointDir", why_dual, notes);
    let why_replay = "weir does not replay the log at start";
    s.accept_without_effect("use-log-replay-v1", why_replay, notes);
    s.accept_without_effect("use-fast-replay", why_replay, notes);
    s.accept_without_effect("maxCheckpointSize", why_ckpt, notes);
    let checkpoint_dir = match s.entry("checkpointDir") {
        None => super::home_path(".flume/file-channel/checkpoint"),
        Some(e) if e.value.trim().is_empty() => {
            return Err(s.error(
                Some("checkpointDir"),
                "names no directory: give one, or leave the key out for the default \
                 ~/.flume/file-channel/checkpoint"
                    .into(),
            ));
        }
        Some(e) => PathBuf::from(e.value.trim()),
    };
    // Found now, so the error names the key and line rather than only the path at start.
    for (key, dir) in [
        ("dataDirs", &data_dirs[0]),
        ("checkpointDir", &checkpoint_dir),
    ] {
        if std::fs::metadata(dir).is_ok_and(|m| !m.is_dir()) {
            return Err(s.error(
                Some(key),
                format!("{} is a file, not a directory", dir.display()),
            ));
        }
    }
    Ok(FileChannelConfig {
        checkpoint_dir,
        data_dir: data_dirs[0].clone(),
        capacity,
        transaction_capacity: transaction_capacity as usize,
        keep_alive: s.seconds_or("keep-alive", defaults.keep_alive.as_secs())?,
        segment_size,
        minimum_required_space: s
            .u64_or("minimumRequiredSpace", defaults.minimum_required_space)?,
        sync,
        // A spillable memory channel's byteCapacity bounds its memory queue, which weir
        // does not have (see parse_spillable_memory).
        byte_capacity: match spill_capacity {
            None => s
                .string("byteCapacity")
                .map(|_| s.positive_or("byteCapacity", 1))
                .transpose()?,
            Some(_) => None,
        },
        on_corruption,
    })
}

/// Flume's spillable memory channel (`SPILLABLEMEMORY`): a memory queue of `memoryCapacity`
/// events that spills into a file channel of `overflowCapacity` when full.
///
/// weir's file channel already keeps up with sources at memory-channel rates (a million 100 B
/// events a second here, README "Benchmarks"), so the two-tier queue is not built: with an
/// overflow, the channel is a file channel holding `memoryCapacity + overflowCapacity` events,
/// every one of them durable (Flume loses the memory part in a crash); with
/// `overflowCapacity = 0` it is a memory channel of `memoryCapacity`, as Flume documents.
fn parse_spillable_memory(
    s: &Section,
    notes: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Result<ChannelKind, ConfigError> {
    let memory = s.u64_or("memoryCapacity", 10_000)?;
    let overflow = s.u64_or("overflowCapacity", 100_000_000)?;
    let memory_only = "weir has no separate memory queue (see the channel's note)";
    s.accept_without_effect("overflowTimeout", memory_only, notes);
    s.accept_without_effect("overflowDeactivationThreshold", memory_only, notes);
    s.accept_without_effect("avgEventSize", memory_only, notes);
    match (memory, overflow) {
        (0, 0) => Err(s.error(
            Some("overflowCapacity"),
            "memoryCapacity and overflowCapacity are both 0: the channel could hold nothing".into(),
        )),
        (memory, 0) => {
            notes.push(format!(
                "{}: overflowCapacity = 0, so a memory channel of {memory} events, as in Flume",
                s.located("type")
            ));
            let channel = memory_channel(
                s,
                notes,
                warnings,
                memory,
                "memoryCapacity",
                100.min(memory),
            )?;
            s.ignored_with_keys_of(
                |file| parse_file_channel(file, &mut Vec::new(), Some(memory)),
                "overflowCapacity = 0 (a memory channel only, without the file part)",
                notes,
            );
            Ok(ChannelKind::Memory(channel))
        }
        (memory, overflow) => {
            let why = "it bounds the memory queue, and weir keeps every event in the log";
            s.accept_without_effect("byteCapacity", why, notes);
            s.accept_without_effect("byteCapacityBufferPercentage", why, notes);
            notes.push(format!(
                "{}: {}: stored as a file channel of memoryCapacity + overflowCapacity = {} \
                 events, each one durable (Flume keeps up to memoryCapacity of them only in \
                 memory)",
                s.entry("type").map(|e| e.at()).unwrap_or_default(),
                s.full("type"),
                memory + overflow
            ));
            Ok(ChannelKind::File(parse_file_channel(
                s,
                notes,
                Some(memory + overflow),
            )?))
        }
    }
}

impl ChannelConfig {
    /// `warnings`: values replaced by Flume's defaults (the memory channel's), which Flume
    /// logs as warnings too.
    pub(super) fn parse(
        name: &str,
        s: &Section,
        notes: &mut Vec<String>,
        warnings: &mut Vec<String>,
    ) -> Result<Self, ConfigError> {
        let ty = component_type(s, "channel", CHANNEL_TYPES)?;
        let kind = match ty {
            "file" => ChannelKind::File(parse_file_channel(s, notes, None)?),
            "SPILLABLEMEMORY" => parse_spillable_memory(s, notes, warnings)?,
            "memory" => {
                let capacity = s.or_flume_fallback(
                    java_int(s, "capacity", s.strictly(|| s.positive_or("capacity", 100))),
                    100,
                    "the default 100",
                    warnings,
                );
                // Flume's default of 100 applies even to a smaller channel, which is an error.
                let channel =
                    memory_channel(s, notes, warnings, capacity, "the channel capacity", 100)?;
                ChannelKind::Memory(channel)
            }
            "kafka" => ChannelKind::Kafka(super::kafka_channel::parse_kafka_channel(s, notes)?),
            _ => unreachable!("resolve() returns only listed aliases"),
        };
        Ok(ChannelConfig {
            name: name.to_owned(),
            kind,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Sinks

#[derive(Clone, Debug)]
pub struct SinkConfig {
    pub name: String,
    pub channel: String,
    pub kind: SinkKind,
    /// Events taken per transaction.
    pub batch_size: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SinkKind {
    Logger { max_bytes_to_log: usize },
    Null,
    FileRoll(FileRollConfig),
    Kafka(KafkaSinkConfig),
    Avro(super::AvroSinkConfig),
    Thrift(super::ThriftSinkConfig),
    Http(super::HttpSinkConfig),
    Hdfs(super::HdfsSinkConfig),
}

impl SinkKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            SinkKind::Logger { .. } => "logger",
            SinkKind::Null => "null",
            SinkKind::FileRoll(_) => "file_roll",
            SinkKind::Kafka(_) => "kafka",
            SinkKind::Avro(_) => "avro",
            SinkKind::Thrift(_) => "thrift",
            SinkKind::Http(_) => "http",
            SinkKind::Hdfs(_) => "hdfs",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRollConfig {
    pub directory: PathBuf,
    /// Start a new file this often; zero never rolls (Flume `sink.rollInterval`, 30 s).
    pub roll_interval: Duration,
    /// File name prefix (Flume `sink.pathManager.prefix`).
    pub prefix: String,
    /// File name extension, without the dot; empty: none (Flume `sink.pathManager.extension`).
    pub extension: String,
    /// How files are named (Flume `sink.pathManager`).
    pub naming: FileNaming,
    /// weir `sink.fsync`: fdatasync the file before committing the take (default true). With
    /// false the lines are only flushed to the OS, as in Flume, and a machine crash can lose
    /// committed lines.
    pub fsync: bool,
    /// How events become file bytes (Flume `sink.serializer` and its keys).
    pub serializer: super::SerializerConfig,
}

/// Flume's file_roll path managers: the part of a file's name between prefix and extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileNaming {
    /// `DEFAULT`: the sink's start in milliseconds since the epoch, `-`, a counter.
    Default,
    /// `ROLLTIME`: the local time as `yyyyMMddHHmmss`, `-`, a counter that restarts each second.
    RollTime,
}

/// What the Kafka sink does with events the broker will never accept (too large, not
/// authorised, invalid): weir `kafka.onUnsendable`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnsendablePolicy {
    /// Keep retrying with backoff, logging an error each time: the channel fills and applies
    /// back-pressure until an operator fixes the cause. Nothing is dropped. The default.
    Block,
    /// Append such events (with the error) to a JSON-lines file in this directory, synced,
    /// then commit them.
    DeadLetter(PathBuf),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaSinkConfig {
    pub bootstrap_servers: String,
    pub topic: String,
    pub allow_topic_override: bool,
    pub topic_header: String,
    pub partition_header: Option<String>,
    pub default_partition: Option<i32>,
    /// librdkafka producer properties: weir's defaults first, then `kafka.producer.*` as
    /// librdkafka names them (see `config::kafka_producer`).
    pub producer: Vec<ProducerProperty>,
    pub on_unsendable: UnsendablePolicy,
    /// weir `kafka.inFlightBatches` (default 8): batches taken and not yet committed (sent,
    /// or acknowledged with the commit of their take still under way). Each is committed only
    /// after all its records are acknowledged, in order; 1 is Flume's strictly
    /// one-batch-at-a-time cycle.
    pub in_flight_batches: usize,
    /// Flume's `useFlumeEventFormat`: record values are Avro `AvroFlumeEvent` datums (headers
    /// and body) instead of the bare body.
    pub use_flume_event_format: bool,
    /// Flume 1.11's `timestampHeader`: the event header whose value (epoch milliseconds)
    /// becomes the record's timestamp. Without it, or when the value is not a number, the
    /// record is stamped with the time it is produced.
    pub timestamp_header: Option<String>,
    /// Flume 1.11's `header.<event header> = <record header>`: which event headers become record
    /// headers, and under which name. Empty (the default): every event header, under its own
    /// name (Flume sends none then; weir's choice, so nothing is dropped on the way). Either
    /// way the record also carries `weir.offset`.
    pub header_map: Vec<(String, String)>,
}

fn parse_kafka(
    s: &Section,
    notes: &mut Vec<String>,
) -> Result<(KafkaSinkConfig, usize), ConfigError> {
    let servers = super::kafka_producer::bootstrap_servers(s, notes)?;
    let topic = s
        .string_or_deprecated("kafka.topic", "topic", notes)
        .unwrap_or_else(|| "default-flume-topic".to_owned());
    super::kafka_topic::check(s, super::kafka_topic::key(s), &topic, true)?;
    let batch_size = match s.string("flumeBatchSize") {
        Some(_) => {
            s.superseded("batchSize", "flumeBatchSize", notes);
            s.positive_or("flumeBatchSize", 100)?
        }
        None if s.deprecated("batchSize", "flumeBatchSize", notes).is_some() => {
            s.positive_or("batchSize", 100)?
        }
        None => 100,
    } as usize;
    // The Flume user guide's Kafka sink example sets `kafka.flumeBatchSize`, which Flume never
    // reads (only `kafka.producer.*` reaches the producer); say so rather than "unknown key".
    if let Some(e) = s.entry("kafka.flumeBatchSize") {
        notes.push(format!(
            "{}: {}: ignored, as in Flume; the sink's batch size is `{}` (now {batch_size})",
            e.at(),
            s.full("kafka.flumeBatchSize"),
            s.full("flumeBatchSize")
        ));
    }
    let use_flume_event_format = s.bool_or("useFlumeEventFormat", false)?;
    let legacy_acks = s.deprecated("requiredAcks", "kafka.producer.acks", notes);
    let producer = kafka_producer::translate(s, legacy_acks.as_deref(), notes)?;
    let header_map = super::kafka_source::header_map(s, notes);
    let default_partition = match s.string("defaultPartitionId") {
        Some(v) => Some(v.parse::<i32>().ok().filter(|p| *p >= 0).ok_or_else(|| {
            s.error(
                Some("defaultPartitionId"),
                format!("'{v}' is not a partition number"),
            )
        })?),
        None => None,
    };
    let on_unsendable = match s
        .string_or("kafka.onUnsendable", "block")
        .to_ascii_lowercase()
        .as_str()
    {
        "block" => {
            s.ignored_with("kafka.deadLetterDir", "kafka.onUnsendable = block", notes);
            UnsendablePolicy::Block
        }
        "deadletter" => UnsendablePolicy::DeadLetter(PathBuf::from(s.required(
            "kafka.deadLetterDir",
            &format!(
                "kafka.onUnsendable = deadletter needs `{}`",
                s.full("kafka.deadLetterDir")
            ),
        )?)),
        other => {
            return Err(s.error(
                Some("kafka.onUnsendable"),
                format!("'{other}' is not block or deadletter"),
            ));
        }
    };
    let allow_topic_override = s.bool_or("allowTopicOverride", true)?;
    if !allow_topic_override {
        s.ignored_with("topicHeader", "allowTopicOverride = false", notes);
    }
    let config = (
        KafkaSinkConfig {
            bootstrap_servers: servers,
            topic,
            allow_topic_override,
            topic_header: s.string_or("topicHeader", "topic"),
            partition_header: s.string("partitionIdHeader"),
            default_partition,
            producer,
            on_unsendable,
            in_flight_batches: s.positive_or("kafka.inFlightBatches", 8)? as usize,
            use_flume_event_format,
            timestamp_header: s.string("timestampHeader").filter(|h| !h.is_empty()),
            header_map,
        },
        batch_size,
    );
    super::kafka_client_keys::note_misplaced(s, &["producer"], notes);
    Ok(config)
}

impl SinkConfig {
    /// `only_channel`: as for [`SourceConfig::parse`], the channel a sink without `channel`
    /// then drains.
    pub(super) fn parse(
        agent: &str,
        name: &str,
        s: &Section,
        only_channel: Option<&str>,
        notes: &mut Vec<String>,
    ) -> Result<Self, ConfigError> {
        let ty = component_type(s, "sink", SINK_TYPES)?;
        let unbound = || {
            only_channel.map(|only| {
                notes.push(unbound_note(s, "channel", "sink", name, only));
                only.to_owned()
            })
        };
        let channel = s.string("channel").or_else(unbound).ok_or_else(|| {
            s.error(
                Some("channel"),
                format!("sink {name} has no channel: add `{agent}.sinks.{name}.channel = c1`"),
            )
        })?;
        if channel.split_whitespace().count() > 1 {
            return Err(s.error(Some("channel"), "a sink drains exactly one channel".into()));
        }
        let (kind, batch_size) = match ty {
            "logger" => (
                SinkKind::Logger {
                    max_bytes_to_log: s.usize_or("maxBytesToLog", 16)?,
                },
                s.positive_or("batchSize", 100)? as usize,
            ),
            "null" => (SinkKind::Null, s.positive_or("batchSize", 100)? as usize),
            "file_roll" => {
                let serializer = super::parse_serializer(s, notes)?;
                (
                    SinkKind::FileRoll(FileRollConfig {
                        directory: PathBuf::from(s.required(
                            "sink.directory",
                            &format!(
                                "set `{}` to the directory to write files into",
                                s.full("sink.directory")
                            ),
                        )?),
                        roll_interval: s.seconds_or("sink.rollInterval", 30)?,
                        prefix: s.string_or("sink.pathManager.prefix", ""),
                        extension: s.string_or("sink.pathManager.extension", ""),
                        naming: match s
                            .string_or("sink.pathManager", "DEFAULT")
                            .to_ascii_uppercase()
                            .as_str()
                        {
                            "DEFAULT" => FileNaming::Default,
                            "ROLLTIME" => FileNaming::RollTime,
                            other => {
                                return Err(s.error(
                                    Some("sink.pathManager"),
                                    format!("'{other}' is not DEFAULT or ROLLTIME"),
                                ));
                            }
                        },
                        fsync: s.bool_or("sink.fsync", true)?,
                        serializer,
                    }),
                    s.positive_or("sink.batchSize", 100)? as usize,
                )
            }
            "kafka" => {
                let (k, batch) = parse_kafka(s, notes)?;
                (SinkKind::Kafka(k), batch)
            }
            "avro" => {
                let (c, batch) = super::avro::parse_avro_sink(s, notes)?;
                (SinkKind::Avro(c), batch)
            }
            "thrift" => {
                let (c, batch) = super::thrift::parse_thrift_sink(s, notes)?;
                (SinkKind::Thrift(c), batch)
            }
            "http" => {
                let (c, batch) = super::http_sink::parse_http_sink(s, notes)?;
                (SinkKind::Http(c), batch)
            }
            "hdfs" => {
                let (c, batch) = super::hdfs::parse_hdfs_sink(s, notes)?;
                (SinkKind::Hdfs(c), batch)
            }
            _ => unreachable!("resolve() returns only listed aliases"),
        };
        Ok(SinkConfig {
            name: name.to_owned(),
            channel,
            kind,
            batch_size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Properties;
    use std::path::Path;

    #[test]
    fn a_file_channel_given_only_its_directories_gets_the_documented_defaults() {
        let text = "a.channels.c1.type = file\na.channels.c1.checkpointDir = /ck\n\
                    a.channels.c1.dataDirs = /data\n";
        let props = Properties::parse(Path::new("t.properties"), text.as_bytes()).unwrap();
        let s = Section::new(&props, "a.channels.c1.".into());
        let parsed = ChannelConfig::parse("c1", &s, &mut Vec::new(), &mut Vec::new()).unwrap();
        let ChannelKind::File(parsed) = parsed.kind else {
            panic!("not a file channel: {parsed:?}");
        };
        let defaults = FileChannelConfig::new("/ck".into(), "/data".into());
        assert_eq!(parsed, defaults);
        // Flume's documented values, so that `new` cannot drift from them unnoticed.
        assert_eq!(defaults.capacity, 1_000_000);
        assert_eq!(defaults.transaction_capacity, 10_000);
        assert_eq!(defaults.keep_alive, Duration::from_secs(3));
        assert_eq!(defaults.minimum_required_space, 524_288_000);
        assert_eq!(defaults.sync, SyncPolicy::EveryCommit);
    }

    #[test]
    fn a_file_channel_directory_key_left_empty_is_refused_with_its_line() {
        let parse = |dirs: &str| {
            let text = format!("a.channels.c1.type = file\n{dirs}");
            let props = Properties::parse(Path::new("t.properties"), text.as_bytes()).unwrap();
            let s = Section::new(&props, "a.channels.c1.".into());
            ChannelConfig::parse("c1", &s, &mut Vec::new(), &mut Vec::new())
                .map_err(|e| e.to_string())
        };
        for (dirs, key) in [
            ("a.channels.c1.dataDirs =\n", "dataDirs"),
            ("a.channels.c1.dataDirs = , ,\n", "dataDirs"),
            (
                "a.channels.c1.dataDirs = /d\na.channels.c1.checkpointDir =   \n",
                "checkpointDir",
            ),
        ] {
            let e = parse(dirs).unwrap_err();
            let line = if key == "dataDirs" { 2 } else { 3 };
            assert!(
                e.starts_with(&format!(
                    "t.properties:{line}: a.channels.c1.{key}: names no directory"
                )),
                "{dirs:?}: {e}"
            );
        }
        assert!(parse("a.channels.c1.dataDirs = /d, /e\n").is_ok());
    }

    /// Flume's file channel encryption keys are refused: weir would store the events in the
    /// clear. Its deprecated timeouts are accepted with a note.
    #[test]
    fn file_channel_encryption_is_refused_and_old_timeouts_are_noted() {
        let base = "a.channels.c1.type = file\na.channels.c1.checkpointDir = /ck\n\
                    a.channels.c1.dataDirs = /data\n";
        let parse = |extra: &str| {
            let text = format!("{base}{extra}");
            let props = Properties::parse(Path::new("t.properties"), text.as_bytes()).unwrap();
            let s = Section::new(&props, "a.channels.c1.".into());
            let mut notes = Vec::new();
            ChannelConfig::parse("c1", &s, &mut notes, &mut Vec::new())
                .map(|_| notes)
                .map_err(|e| e.to_string())
        };
        let e = parse(
            "a.channels.c1.encryption.activeKey = key-0\n\
             a.channels.c1.encryption.cipherProvider = AESCTRNOPADDING\n",
        )
        .unwrap_err();
        assert!(
            e.starts_with("t.properties:4: a.channels.c1.encryption.activeKey: file channel encryption is not supported"),
            "{e}"
        );
        let notes = parse("a.channels.c1.write-timeout = 10\n").unwrap();
        assert!(
            notes[0].contains("write-timeout: accepted, no effect in weir"),
            "{notes:?}"
        );
    }

    /// A misspelt interceptor key is noted, as any other unknown key is.
    #[test]
    fn unknown_interceptor_keys_are_noted() {
        let text = "a.sources = r1\na.channels = c1\na.sinks = k1\na.sources.r1.type = seq\n\
                    a.sources.r1.channels = c1\na.sources.r1.interceptors = i1\n\
                    a.sources.r1.interceptors.i1.type = remove_header\n\
                    a.sources.r1.interceptors.i1.withname = x\n\
                    a.channels.c1.type = memory\na.sinks.k1.type = null\na.sinks.k1.channel = c1\n";
        let props = Properties::parse(Path::new("t.properties"), text.as_bytes()).unwrap();
        let cfg = crate::config::AgentConfig::from_properties(&props, "a").unwrap();
        assert_eq!(
            cfg.notes,
            [
                "t.properties:8: a.sources.r1.interceptors.i1.withname: unknown key, ignored (it \
                 looks like a misspelling of a.sources.r1.interceptors.i1.withName)"
            ]
        );
        // An interceptor configured but left out of the list (audit 37): one note for it.
        let listed_one = text.replace(
            "a.channels.c1.type",
            "a.sources.r1.interceptors.i2.type = timestamp\n\
             a.sources.r1.interceptors.i2.headerName = t\na.channels.c1.type",
        );
        let unlisted = "t.properties:9: a.sources.r1.interceptors.i2: interceptor 'i2' is not in \
                        `a.sources.r1.interceptors` (i1); its keys are ignored";
        let props = Properties::parse(Path::new("t.properties"), listed_one.as_bytes()).unwrap();
        let cfg = crate::config::AgentConfig::from_properties(&props, "a").unwrap();
        assert_eq!(cfg.sources[0].interceptors.len(), 1);
        assert_eq!(
            cfg.notes.iter().filter(|n| *n == unlisted).count(),
            1,
            "{:?}",
            cfg.notes
        );
        let none_listed = listed_one.replace("a.sources.r1.interceptors = i1\n", "");
        let props = Properties::parse(Path::new("t.properties"), none_listed.as_bytes()).unwrap();
        let cfg = crate::config::AgentConfig::from_properties(&props, "a").unwrap();
        assert!(
            cfg.notes.iter().any(|n| n.ends_with(
                "a.sources.r1.interceptors.i1: interceptor 'i1' is not in \
                 `a.sources.r1.interceptors` which is not set; its keys are ignored"
            )),
            "{:?}",
            cfg.notes
        );
    }

    /// Keys under a source's `channels` (Flume reads none) are noted, and a selector key put
    /// there is pointed to its place; a value with what looks like a comment after it says
    /// that Java keeps the comment in the value.
    #[test]
    fn keys_under_a_sources_channels_are_noted_and_inline_comments_explained() {
        let text = "a.sources = r1\na.channels = c1 c2\na.sinks = k1\na.sources.r1.type = seq\n\
                    a.sources.r1.channels = c1 c2\n\
                    a.sources.r1.channels.selector.type = multiplexing\n\
                    a.channels.c1.type = memory\na.channels.c2.type = memory\n\
                    a.sinks.k1.type = null\na.sinks.k1.channel = c1\n";
        let props = Properties::parse(Path::new("t.properties"), text.as_bytes()).unwrap();
        let cfg = crate::config::AgentConfig::from_properties(&props, "a").unwrap();
        assert_eq!(
            cfg.notes,
            [
                "t.properties:6: a.sources.r1.channels.selector.type: unknown key, ignored \
              (a source's selector is `a.sources.r1.selector.type`)"
            ]
        );

        let text = text.replace("a.sinks.k1.type = null", "a.sinks.k1.type = null # the end");
        let props = Properties::parse(Path::new("t.properties"), text.as_bytes()).unwrap();
        let err = crate::config::AgentConfig::from_properties(&props, "a")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("t.properties:9: a.sinks.k1.type: ")
                && err.ends_with(
                    "(Java properties have no comments after a value: the `#` and what \
                     follows are part of it)"
                ),
            "{err}"
        );
    }

    /// An empty mapping is dropped, as Flume drops empty values: that header value goes to the
    /// default channels.
    #[test]
    fn an_empty_selector_mapping_falls_to_the_default() {
        let text = "a.sources = r1\na.channels = c1 c2\na.sinks = k1\na.sources.r1.type = seq\n\
                    a.sources.r1.channels = c1 c2\na.sources.r1.selector.type = multiplexing\n\
                    a.sources.r1.selector.header = s\na.sources.r1.selector.mapping.CA =\n\
                    a.sources.r1.selector.mapping.AZ = c2\na.sources.r1.selector.default = c1\n\
                    a.channels.c1.type = memory\na.channels.c2.type = memory\n\
                    a.sinks.k1.type = null\na.sinks.k1.channel = c1\n";
        let props = Properties::parse(Path::new("t.properties"), text.as_bytes()).unwrap();
        let cfg = crate::config::AgentConfig::from_properties(&props, "a").unwrap();
        let SelectorConfig::Multiplexing { mapping, .. } = &cfg.sources[0].selector else {
            panic!("{:?}", cfg.sources[0].selector);
        };
        assert_eq!(mapping, &[("AZ".to_owned(), vec!["c2".to_owned()])]);
    }

    /// A multiplexing selector without a default: a warning when it can store nothing at all,
    /// a note when only unmapped header values are dropped.
    #[test]
    fn a_multiplexing_selector_without_a_default_is_reported() {
        let load = |extra: &str| {
            let text = format!(
                "a.sources = r1\na.channels = c1\na.sinks = k1\na.sources.r1.type = seq\n\
                 a.sources.r1.channels = c1\na.sources.r1.selector.type = multiplexing\n{extra}\
                 a.channels.c1.type = memory\na.sinks.k1.type = null\na.sinks.k1.channel = c1\n"
            );
            let props = Properties::parse(Path::new("t.properties"), text.as_bytes()).unwrap();
            crate::config::AgentConfig::from_properties(&props, "a").unwrap()
        };
        let cfg = load("");
        assert!(
            cfg.left_out.iter().any(|w| w.starts_with(
                "t.properties:6: a.sources.r1.selector.type: no `selector.mapping.*` and no \
                 `selector.default`: no event of this source is stored"
            ) && w
                .ends_with("add `a.sources.r1.selector.default = c1`")),
            "{:?}",
            cfg.left_out
        );
        let cfg = load("a.sources.r1.selector.mapping.x = c1\n");
        assert!(cfg.left_out.is_empty(), "{:?}", cfg.left_out);
        assert!(
            cfg.notes.iter().any(
                |n| n.contains("no `selector.default`: events whose header matches no mapping")
            ),
            "{:?}",
            cfg.notes
        );
        let cfg = load("a.sources.r1.selector.default = c1\n");
        assert!(cfg.left_out.is_empty() && cfg.notes.is_empty(), "{cfg:?}");
    }

    /// Selectors by alias (any case) or by the class name Flume users also write.
    #[test]
    fn selectors_are_named_by_alias_or_class() {
        for (ty, multiplexing) in [
            ("replicating", false),
            ("REPLICATING", false),
            ("org.apache.flume.channel.ReplicatingChannelSelector", false),
            ("multiplexing", true),
            ("org.apache.flume.channel.MultiplexingChannelSelector", true),
            ("load_balancing", false),
        ] {
            let text = format!(
                "a.sources = r1\na.channels = c1\na.sinks = k1\na.sources.r1.type = seq\n\
                 a.sources.r1.channels = c1\na.sources.r1.selector.type = {ty}\n\
                 a.channels.c1.type = memory\na.sinks.k1.type = null\na.sinks.k1.channel = c1\n"
            );
            let props = Properties::parse(Path::new("t.properties"), text.as_bytes()).unwrap();
            let cfg = crate::config::AgentConfig::from_properties(&props, "a").unwrap();
            let selector = &cfg.sources[0].selector;
            assert_eq!(
                matches!(selector, SelectorConfig::Multiplexing { .. }),
                multiplexing,
                "{ty}: {selector:?}"
            );
        }
        // Refusals quote the value as written.
        for (ty, expected) in [
            (
                "org.apache.flume.channel.MyChannelSelector",
                "'org.apache.flume.channel.MyChannelSelector' looks like a Java class",
            ),
            ("Fanout", "unknown selector 'Fanout'"),
        ] {
            let text = format!(
                "a.sources = r1\na.channels = c1\na.sources.r1.type = seq\n\
                 a.sources.r1.channels = c1\na.sources.r1.selector.type = {ty}\n\
                 a.channels.c1.type = memory\n"
            );
            let props = Properties::parse(Path::new("t.properties"), text.as_bytes()).unwrap();
            let e = crate::config::AgentConfig::from_properties(&props, "a")
                .unwrap_err()
                .to_string();
            assert!(e.contains(expected), "{e}");
        }
    }

    fn kafka_sink(text: &str) -> (KafkaSinkConfig, usize, Vec<String>) {
        let props = Properties::parse(Path::new("t.properties"), text.as_bytes()).unwrap();
        let s = Section::new(&props, "a.sinks.k1.".into());
        let mut notes = Vec::new();
        let (config, batch) = parse_kafka(&s, &mut notes).unwrap();
        (config, batch, notes)
    }

    /// Flume 1.6's Kafka sink keys, still found in many configs, are read as their successors,
    /// with a note each; a successor that is also set wins, as in Flume 1.7+.
    #[test]
    fn the_kafka_sinks_flume_1_6_keys_are_read_as_their_successors() {
        let (c, batch, notes) = kafka_sink(
            "a.sinks.k1.brokerList = b1:9092,b2:9092\na.sinks.k1.topic = old\n\
             a.sinks.k1.batchSize = 20\na.sinks.k1.requiredAcks = 1\n",
        );
        assert_eq!(c.bootstrap_servers, "b1:9092,b2:9092");
        assert_eq!(c.topic, "old");
        assert_eq!(batch, 20);
        // acks stays all (see config::kafka_producer), with a note.
        let acks: Vec<_> = c.producer.iter().filter(|p| p.key == "acks").collect();
        assert_eq!(
            acks.last().map(|p| p.value.as_str()),
            Some("all"),
            "{acks:?}"
        );
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with("t.properties:4: a.sinks.k1.requiredAcks: 1 not used")),
            "{notes:?}"
        );
        for (line, old) in ["brokerList", "topic", "batchSize", "requiredAcks"]
            .into_iter()
            .enumerate()
        {
            assert!(
                notes.iter().any(|n| n.starts_with(&format!(
                    "t.properties:{}: a.sinks.k1.{old}: deprecated Flume key, read as",
                    line + 1
                ))),
                "{old}: {notes:?}"
            );
        }

        let (c, batch, _) = kafka_sink(
            "a.sinks.k1.kafka.bootstrap.servers = new:9092\na.sinks.k1.brokerList = old:9092\n\
             a.sinks.k1.kafka.topic = new\na.sinks.k1.topic = old\n\
             a.sinks.k1.flumeBatchSize = 50\na.sinks.k1.batchSize = 20\n",
        );
        assert_eq!(
            (c.bootstrap_servers.as_str(), c.topic.as_str()),
            ("new:9092", "new")
        );
        assert_eq!(batch, 50);
    }

    /// A topic Kafka would refuse stops the start at its line, whichever key names it; header
    /// placeholders are left to the events.
    #[test]
    fn a_kafka_sink_topic_kafka_refuses_is_refused_at_its_line() {
        let refused = |text: &str| {
            let props = Properties::parse(Path::new("t.properties"), text.as_bytes()).unwrap();
            let s = Section::new(&props, "a.sinks.k1.".into());
            parse_kafka(&s, &mut Vec::new()).unwrap_err().to_string()
        };
        let e = refused(
            "a.sinks.k1.kafka.bootstrap.servers = b:9092
             a.sinks.k1.kafka.topic = web-logs     # or web-errors
",
        );
        assert!(
            e.starts_with("t.properties:2: a.sinks.k1.kafka.topic: 'web-logs     # or web-errors' is not a Kafka topic name"),
            "{e}"
        );
        let e = refused(
            "a.sinks.k1.brokerList = b:9092
a.sinks.k1.topic = a b
",
        );
        assert!(
            e.starts_with("t.properties:2: a.sinks.k1.topic: 'a b'"),
            "{e}"
        );
        let (c, _, _) = kafka_sink(
            "a.sinks.k1.kafka.bootstrap.servers = b:9092
a.sinks.k1.kafka.topic = logs-%{app}
",
        );
        assert_eq!(c.topic, "logs-%{app}");
    }

    /// Flume 1.11's record timestamp and header mapping keys; Flume 1.10's transactional id is
    /// noted and left out (the producer would refuse every record without transaction calls).
    #[test]
    fn the_kafka_sinks_flume_1_11_keys_are_read() {
        let (c, _, notes) = kafka_sink(
            "a.sinks.k1.kafka.bootstrap.servers = b:9092\na.sinks.k1.timestampHeader = ts\n\
             a.sinks.k1.header.host = origin\na.sinks.k1.header.dc = datacenter\n",
        );
        assert_eq!(c.timestamp_header.as_deref(), Some("ts"));
        assert_eq!(
            c.header_map,
            [
                ("dc".to_owned(), "datacenter".to_owned()),
                ("host".to_owned(), "origin".to_owned())
            ]
        );
        assert!(notes.is_empty(), "{notes:?}");

        let (c, _, notes) = kafka_sink(
            "a.sinks.k1.kafka.bootstrap.servers = b:9092\n\
             a.sinks.k1.kafka.producer.transactional.id = flume-1\n",
        );
        assert!(!c.producer.iter().any(|p| p.key == "transactional.id"));
        assert!(
            notes[0].starts_with(
                "t.properties:2: a.sinks.k1.kafka.producer.transactional.id: Java-only producer \
                 property, not used: weir's sink does not produce in Kafka transactions"
            ),
            "{notes:?}"
        );

        let (c, _, _) = kafka_sink("a.sinks.k1.kafka.bootstrap.servers = b:9092\n");
        assert_eq!((c.timestamp_header, c.header_map), (None, vec![]));

        // An empty mapping is dropped, as Flume drops every empty value.
        let (c, _, notes) =
            kafka_sink("a.sinks.k1.kafka.bootstrap.servers = b:9092\na.sinks.k1.header.host =\n");
        assert!(c.header_map.is_empty());
        assert_eq!(
            notes,
            ["t.properties:2: a.sinks.k1.header.host: empty value, not used (as in Flume)"]
        );
    }

    /// The Flume user guide's example sets `kafka.flumeBatchSize`, which Flume never reads: weir
    /// ignores it too, and the note names the key that sets the batch size.
    #[test]
    fn the_user_guides_kafka_flume_batch_size_is_ignored_with_a_pointer_to_the_real_key() {
        let (_, batch, notes) = kafka_sink(
            "a.sinks.k1.kafka.bootstrap.servers = b:9092\na.sinks.k1.kafka.flumeBatchSize = 20\n",
        );
        assert_eq!(batch, 100);
        assert_eq!(
            notes,
            [
                "t.properties:2: a.sinks.k1.kafka.flumeBatchSize: ignored, as in Flume; the sink's \
              batch size is `a.sinks.k1.flumeBatchSize` (now 100)"
            ]
        );
    }

    /// Interceptors of source r1 from `lines` (each a key under
    /// `a.sources.r1.interceptors.i1.`, from line 2 on; line 1 lists i1).
    fn interceptors(lines: &str) -> Result<Vec<InterceptorConfig>, String> {
        let text = lines
            .lines()
            .map(|l| format!("a.sources.r1.interceptors.i1.{}\n", l.trim()))
            .fold("a.sources.r1.interceptors = i1\n".to_owned(), |t, l| t + &l);
        let props = Properties::parse(Path::new("t.properties"), text.as_bytes()).unwrap();
        parse_interceptors(
            &Section::new(&props, "a.sources.r1.".into()),
            &mut Vec::new(),
        )
        .map_err(|e| e.to_string())
    }

    fn interceptor(lines: &str) -> InterceptorConfig {
        let mut all = interceptors(lines).unwrap();
        assert_eq!(all.len(), 1);
        all.remove(0)
    }

    fn refused(lines: &str, prefix: &str) {
        let e = interceptors(lines).unwrap_err();
        assert!(
            e.starts_with(prefix),
            "{lines}\n  gave: {e}\n  want: {prefix}…"
        );
    }

    const I1: &str = "t.properties:{}: a.sources.r1.interceptors.i1.";

    fn at(line: usize, key: &str) -> String {
        format!("{}{key}", I1.replace("{}", &line.to_string()))
    }

    #[test]
    fn search_replace_has_flumes_keys_and_defaults() {
        for ty in [
            "search_replace",
            "org.apache.flume.interceptor.SearchAndReplaceInterceptor$Builder",
        ] {
            let InterceptorConfig::SearchReplace { regex, replacement } =
                interceptor(&format!("type = {ty}\nsearchPattern = \\\\d+"))
            else {
                panic!("{ty}: not search_replace");
            };
            assert_eq!(regex.as_str(), r"[0-9]+", "Java's ASCII \\d");
            assert_eq!(
                replacement, "",
                "replaceString defaults to the empty string"
            );
        }
        let InterceptorConfig::SearchReplace { replacement, .. } = interceptor(
            "type = search_replace\nsearchPattern = (a)(b)\nreplaceString = $2$1x \\\\$\n\
             charset = utf-8",
        ) else {
            panic!("not search_replace");
        };
        assert_eq!(replacement, "${2}${1}x $$");
        assert!(interceptors("type = search_replace\nsearchPattern = a\ncharset = UTF-8").is_ok());

        refused(
            "type = search_replace\nreplaceString = x",
            &format!("{}: missing", at(2, "searchPattern")),
        );
        refused(
            "type = search_replace\nsearchPattern = (",
            &format!("{}: not a valid regular expression", at(3, "searchPattern")),
        );
        refused(
            "type = search_replace\nsearchPattern = a\nreplaceString = $x",
            &format!("{}: `$x` is not a group reference", at(4, "replaceString")),
        );
        refused(
            "type = search_replace\nsearchPattern = (a)\nreplaceString = $2",
            &format!("{}: `$2` refers to group 2", at(4, "replaceString")),
        );
        refused(
            "type = search_replace\nsearchPattern = a\ncharset = ISO-8859-1",
            &format!(
                "{}: charset 'ISO-8859-1' is not supported; supported: UTF-8",
                at(4, "charset")
            ),
        );
    }

    #[test]
    fn remove_header_has_flumes_keys_and_defaults() {
        for ty in [
            "remove_header",
            "org.apache.flume.interceptor.RemoveHeaderInterceptor$Builder",
        ] {
            let InterceptorConfig::RemoveHeader {
                with_name,
                from_list,
                matching,
            } = interceptor(&format!("type = {ty}"))
            else {
                panic!("{ty}: not remove_header");
            };
            assert_eq!((with_name, from_list), (None, vec![]));
            assert!(matching.is_none());
        }
        // The default separator is `\s*,\s*`.
        let InterceptorConfig::RemoveHeader {
            with_name,
            from_list,
            matching,
        } = interceptor("type = remove_header\nwithName = w\nfromList = a , b,c\nmatching = x|y")
        else {
            panic!("not remove_header");
        };
        assert_eq!(with_name.as_deref(), Some("w"));
        assert_eq!(from_list, ["a", "b", "c"]);
        let matching = matching.unwrap();
        assert!(matching.is_match("x") && matching.is_match("y"));
        assert!(
            !matching.is_match("xy") && !matching.is_match("ay"),
            "whole names only"
        );

        let InterceptorConfig::RemoveHeader { from_list, .. } =
            interceptor("type = remove_header\nfromList = a|b c\nfromListSeparator = \\\\|")
        else {
            panic!("not remove_header");
        };
        assert_eq!(from_list, ["a", "b c"]);

        refused(
            "type = remove_header\nfromList = a\nfromListSeparator = [",
            &format!(
                "{}: not a valid regular expression",
                at(4, "fromListSeparator")
            ),
        );
        // As in Flume, the separator is only compiled when there is a list.
        assert!(interceptors("type = remove_header\nfromListSeparator = [").is_ok());
        refused(
            "type = remove_header\nmatching = a)|(b",
            &format!("{}: not a valid regular expression", at(3, "matching")),
        );
    }

    #[test]
    fn regex_extractor_has_flumes_keys_and_defaults() {
        for ty in [
            "regex_extractor",
            "org.apache.flume.interceptor.RegexExtractorInterceptor$Builder",
        ] {
            let InterceptorConfig::RegexExtractor { regex, serializers } = interceptor(&format!(
                "type = {ty}\nregex = (\\\\d):(\\\\d)\nserializers = s1  s2\n\
                 serializers.s1.name = one\nserializers.s2.name = two\n\
                 serializers.s2.type = DEFAULT"
            )) else {
                panic!("{ty}: not regex_extractor");
            };
            assert_eq!(regex.as_str(), r"([0-9]):([0-9])", "Java's ASCII \\d");
            let pass = |h: &str| ExtractorSerializer {
                header: h.into(),
                kind: SerializerKind::PassThrough,
            };
            assert_eq!(serializers, [pass("one"), pass("two")]);
        }
        let InterceptorConfig::RegexExtractor { serializers, .. } = interceptor(&format!(
            "type = regex_extractor\nregex = (.+)\nserializers = t p\n\
             serializers.t.name = ts\nserializers.t.type = {MILLIS_SERIALIZER}\n\
             serializers.t.pattern = yyyy-MM-dd HH:mm:ss\n\
             serializers.p.name = raw\nserializers.p.type = {PASS_THROUGH_SERIALIZER}"
        )) else {
            panic!("not regex_extractor");
        };
        assert_eq!(
            serializers,
            [
                ExtractorSerializer {
                    header: "ts".into(),
                    kind: SerializerKind::Millis {
                        pattern: "yyyy-MM-dd HH:mm:ss".into(),
                        chrono_format: "%Y-%m-%d %H:%M:%S".into(),
                    },
                },
                ExtractorSerializer {
                    header: "raw".into(),
                    kind: SerializerKind::PassThrough,
                },
            ]
        );

        refused(
            "type = regex_extractor\nserializers = s1\nserializers.s1.name = one",
            &format!("{}: missing", at(2, "regex")),
        );
        refused(
            "type = regex_extractor\nregex = (a",
            &format!("{}: not a valid regular expression", at(3, "regex")),
        );
        refused(
            "type = regex_extractor\nregex = (a)",
            &format!("{}: missing", at(2, "serializers")),
        );
        // A serializer with no keys at all: the error points at the list naming it.
        refused(
            "type = regex_extractor\nregex = (a)(b)\nserializers = s1 s2\nserializers.s1.name = one",
            &format!("{}: missing", at(4, "serializers.s2.name")),
        );
        refused(
            "type = regex_extractor\nregex = (a)\nserializers = s1\nserializers.s1.type = DEFAULT",
            &format!("{}: missing", at(5, "serializers.s1.name")),
        );
        refused(
            "type = regex_extractor\nregex = (a)\nserializers = s1\nserializers.s1.name = h\n\
             serializers.s1.type = com.example.MySerializer",
            &format!(
                "{}: serializer 'com.example.MySerializer' is not supported",
                at(6, "serializers.s1.type")
            ),
        );
        refused(
            &format!(
                "type = regex_extractor\nregex = (a)\nserializers = s1\nserializers.s1.name = h\n\
                 serializers.s1.type = {MILLIS_SERIALIZER}"
            ),
            &format!("{}: missing", at(5, "serializers.s1.pattern")),
        );
        refused(
            &format!(
                "type = regex_extractor\nregex = (a)\nserializers = s1\nserializers.s1.name = h\n\
                 serializers.s1.type = {MILLIS_SERIALIZER}\nserializers.s1.pattern = yyyy-ww"
            ),
            &format!(
                "{}: 'yyyy-ww': `ww` is not supported",
                at(7, "serializers.s1.pattern")
            ),
        );
    }

    fn source(text: &str) -> Result<(SourceConfig, Vec<String>), String> {
        let text = format!("a.sources.r1.channels = c1\n{text}");
        let props = Properties::parse(Path::new("t.properties"), text.as_bytes()).unwrap();
        let s = Section::new(&props, "a.sources.r1.".into());
        let mut notes = Vec::new();
        SourceConfig::parse("a", "r1", &s, &[], &mut notes, &mut Vec::new())
            .map(|c| (c, notes))
            .map_err(|e| e.to_string())
    }

    /// A multiplexing selector's lists name each channel once, and a channel required for a
    /// value is not optional for it too (Flume drops it from the optional list): either would
    /// put the event into that channel twice.
    #[test]
    fn selector_lists_name_each_channel_once_and_required_is_not_optional() {
        let text = "a.sources.r1.type = seq\na.sources.r1.channels = c1 c2\n\
                    a.sources.r1.selector.type = multiplexing\na.sources.r1.selector.header = h\n\
                    a.sources.r1.selector.mapping.x = c1 c2 c1\n\
                    a.sources.r1.selector.optional.x = c2 c2\n\
                    a.sources.r1.selector.optional.y = c1 c2\n\
                    a.sources.r1.selector.default = c2 c2\n";
        let props = Properties::parse(Path::new("t.properties"), text.as_bytes()).unwrap();
        let s = Section::new(&props, "a.sources.r1.".into());
        let defined = ["c1".to_owned(), "c2".to_owned()];
        let c =
            SourceConfig::parse("a", "r1", &s, &defined, &mut Vec::new(), &mut Vec::new()).unwrap();
        let SelectorConfig::Multiplexing {
            mapping,
            optional,
            default,
            ..
        } = c.selector
        else {
            panic!("{:?}", c.selector)
        };
        let names = |l: &[&str]| l.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(mapping, [("x".to_owned(), names(&["c1", "c2"]))]);
        assert_eq!(default, names(&["c2"]));
        // x: both required; y: no mapping, so the default's c2 is required.
        assert_eq!(
            optional,
            [
                ("x".to_owned(), names(&[])),
                ("y".to_owned(), names(&["c1"]))
            ]
        );
    }

    /// Flume reads `channels` into a set: a channel listed twice must not get each event twice.
    #[test]
    fn a_channel_named_twice_is_put_into_once() {
        let text = "a.sources.r1.type = seq\n\
                    a.sources.r1.channels = c1 c2 c1\n";
        let props = Properties::parse(Path::new("t.properties"), text.as_bytes()).unwrap();
        let s = Section::new(&props, "a.sources.r1.".into());
        let mut notes = Vec::new();
        let defined = ["c1".to_owned(), "c2".to_owned()];
        let c = SourceConfig::parse("a", "r1", &s, &defined, &mut notes, &mut Vec::new()).unwrap();
        assert_eq!(c.channels, ["c1", "c2"]);
        assert_eq!(
            notes,
            [
                "t.properties:2: a.sources.r1.channels: channel 'c1' is named twice; source r1 puts \
              each event into it once (as Flume does)"
            ]
        );
    }

    #[test]
    fn stress_source_keys_defaults_and_negative_limits() {
        let (c, _) = source("a.sources.r1.type = org.apache.flume.source.StressSource\n").unwrap();
        let SourceKind::Stress(c) = c.kind else {
            panic!("not a stress source: {c:?}");
        };
        assert_eq!(
            (
                c.size,
                c.max_total_events,
                c.max_successful_events,
                c.batch_size
            ),
            (500, None, None, 1)
        );
        assert_eq!(c.max_events_per_second, 0);
        assert_eq!(c.backoff.increment, Duration::from_secs(1));
        let (c, _) = source(
            "a.sources.r1.type = stress\na.sources.r1.maxTotalEvents = 1000\n\
             a.sources.r1.maxSuccessfulEvents = -5\na.sources.r1.size = 0\n",
        )
        .unwrap();
        let SourceKind::Stress(c) = c.kind else {
            panic!("not a stress source: {c:?}");
        };
        assert_eq!(
            (c.max_total_events, c.max_successful_events, c.size),
            (Some(1000), None, 0)
        );
        let e =
            source("a.sources.r1.type = stress\na.sources.r1.maxTotalEvents = lots\n").unwrap_err();
        assert!(
            e.contains("a.sources.r1.maxTotalEvents") && e.contains("lots"),
            "{e}"
        );
    }

    #[test]
    fn netcatudp_source_keys() {
        let (c, _) = source(
            "a.sources.r1.type = org.apache.flume.source.NetcatUdpSource\n\
             a.sources.r1.port = 5140\na.sources.r1.remoteAddressHeader = from\n",
        )
        .unwrap();
        let SourceKind::NetcatUdp(c) = c.kind else {
            panic!("not a netcatudp source: {c:?}");
        };
        assert_eq!(
            c,
            NetcatUdpConfig {
                bind: "0.0.0.0".into(),
                port: 5140,
                remote_address_header: Some("from".into()),
            }
        );
        let e = source("a.sources.r1.type = netcatudp\n").unwrap_err();
        assert!(e.contains("a.sources.r1.port"), "{e}");
    }

    fn channel(text: &str) -> Result<(ChannelKind, Vec<String>), String> {
        let props = Properties::parse(Path::new("t.properties"), text.as_bytes()).unwrap();
        let s = Section::new(&props, "a.channels.c1.".into());
        let (mut notes, mut warnings) = (Vec::new(), Vec::new());
        ChannelConfig::parse("c1", &s, &mut notes, &mut warnings)
            .map(|c| (c.kind, [notes, warnings].concat()))
            .map_err(|e| e.to_string())
    }

    /// The User Guide's three spillable memory channel examples.
    #[test]
    fn spillable_memory_channels_become_file_or_memory_channels() {
        let (kind, notes) = channel(
            "a.channels.c1.type = SPILLABLEMEMORY\na.channels.c1.memoryCapacity = 10000\n\
             a.channels.c1.overflowCapacity = 1000000\na.channels.c1.byteCapacity = 800000\n\
             a.channels.c1.checkpointDir = /mnt/flume/checkpoint\n\
             a.channels.c1.dataDirs = /mnt/flume/data\n",
        )
        .unwrap();
        let ChannelKind::File(f) = kind else {
            panic!("not a file channel: {kind:?}");
        };
        assert_eq!(f.capacity, 1_010_000);
        assert_eq!(f.transaction_capacity, 10_000);
        assert_eq!(f.byte_capacity, None);
        assert_eq!(f.data_dir, Path::new("/mnt/flume/data"));
        assert!(
            notes.iter().any(|n| n.contains("1010000 events")),
            "{notes:?}"
        );
        assert!(
            notes.iter().any(|n| n.contains("byteCapacity")),
            "{notes:?}"
        );

        // "function like a file channel"
        let (kind, _) = channel(
            "a.channels.c1.type = org.apache.flume.channel.SpillableMemoryChannel\n\
             a.channels.c1.memoryCapacity = 0\na.channels.c1.overflowCapacity = 1000\n\
             a.channels.c1.checkpointDir = /c\na.channels.c1.dataDirs = /d\n",
        )
        .unwrap();
        let ChannelKind::File(f) = kind else {
            panic!("not a file channel: {kind:?}");
        };
        assert_eq!((f.capacity, f.transaction_capacity), (1000, 1000));

        // "function purely as an in-memory channel"
        let (kind, notes) = channel(
            "a.channels.c1.type = SPILLABLEMEMORY\na.channels.c1.memoryCapacity = 100000\n\
             a.channels.c1.overflowCapacity = 0\n",
        )
        .unwrap();
        let ChannelKind::Memory(m) = kind else {
            panic!("not a memory channel: {kind:?}");
        };
        assert_eq!((m.capacity, m.transaction_capacity), (100_000, 100));
        assert!(
            notes.iter().any(|n| n.contains("memory channel")),
            "{notes:?}"
        );

        let e = channel(
            "a.channels.c1.type = SPILLABLEMEMORY\na.channels.c1.memoryCapacity = 0\n\
             a.channels.c1.overflowCapacity = 0\n",
        )
        .unwrap_err();
        assert!(e.contains("a.channels.c1.overflowCapacity"), "{e}");
        let e = channel(
            "a.channels.c1.type = SPILLABLEMEMORY\na.channels.c1.memoryCapacity = 10\n\
             a.channels.c1.overflowCapacity = 0\na.channels.c1.transactionCapacity = 20\n",
        )
        .unwrap_err();
        assert!(
            e.contains("transactionCapacity") && e.contains("memoryCapacity 10"),
            "{e}"
        );
    }

    /// A memory channel size that is not a number runs with the default and a note, as in
    /// Flume (a blog's `capacity = 10000  #通道容量`); a file channel refuses it, as Flume does.
    #[test]
    fn memory_channel_numbers_flume_cannot_read_fall_back_to_its_defaults() {
        let (kind, notes) = channel(
            "a.channels.c1.type = memory\na.channels.c1.capacity = 10000  #通道容量\n\
             a.channels.c1.transactionCapacity = 0\na.channels.c1.keep-alive = 5s\n\
             a.channels.c1.byteCapacity = 8m\n",
        )
        .unwrap();
        let ChannelKind::Memory(m) = kind else {
            panic!("not a memory channel: {kind:?}");
        };
        assert_eq!(
            (
                m.capacity,
                m.transaction_capacity,
                m.keep_alive,
                m.byte_capacity
            ),
            (100, 100, Duration::from_secs(3), None)
        );
        for expected in [
            "t.properties:2: a.channels.c1.capacity: '10000  #通道容量' is not a non-negative \
             whole number (Java properties have no comments after a value: the `#` and what \
             follows are part of it); the default 100 is used instead, as Flume's memory \
             channel does",
            "t.properties:3: a.channels.c1.transactionCapacity: must be greater than 0; the \
             default 100 is used instead",
            "t.properties:4: a.channels.c1.keep-alive: '5s' is not a non-negative whole \
             number; the default 3 s is used instead",
            "t.properties:5: a.channels.c1.byteCapacity: '8m' is not a non-negative whole \
             number; no byte limit",
        ] {
            assert!(
                notes.iter().any(|n| n.starts_with(expected)),
                "{expected}\n{notes:#?}"
            );
        }
        // Good values are still read, and the default is no excuse to pass the capacity.
        let (kind, notes) = channel(
            "a.channels.c1.type = memory\na.channels.c1.capacity = 500\n\
             a.channels.c1.transactionCapacity = 50\na.channels.c1.byteCapacity = 800\n",
        )
        .unwrap();
        let ChannelKind::Memory(m) = kind else {
            panic!("not a memory channel: {kind:?}");
        };
        assert_eq!(
            (m.capacity, m.transaction_capacity, m.byte_capacity),
            (500, 50, Some(800))
        );
        assert!(notes.is_empty(), "{notes:?}");
        // Past what a Java int holds: Flume's getInteger fails, and the default is used.
        let (kind, notes) =
            channel("a.channels.c1.type = memory\na.channels.c1.capacity = 3000000000\n").unwrap();
        let ChannelKind::Memory(m) = kind else {
            panic!("not a memory channel: {kind:?}");
        };
        assert_eq!(m.capacity, 100);
        assert!(
            notes.iter().any(|n| n.starts_with(
                "t.properties:2: a.channels.c1.capacity: 3000000000 is more than a Java int \
                 holds (2147483647); the default 100 is used instead"
            )),
            "{notes:?}"
        );
        let e = channel(
            "a.channels.c1.type = memory\na.channels.c1.capacity = 50\n\
             a.channels.c1.transactionCapacity = x\n",
        )
        .unwrap_err();
        assert!(
            e.contains(
                "transactionCapacity: the default 100 (the value given is not a positive number) exceeds \
                 the channel capacity 50"
            ),
            "{e}"
        );
        let e = channel(
            "a.channels.c1.type = file\na.channels.c1.capacity = 10000 # events\n\
             a.channels.c1.checkpointDir = /c\na.channels.c1.dataDirs = /d\n",
        )
        .unwrap_err();
        assert!(
            e.starts_with("t.properties:2: a.channels.c1.capacity:"),
            "{e}"
        );
    }

    /// Flume types weir does not have are named as such, with what to use instead.
    #[test]
    fn flumes_own_types_weir_lacks_say_what_to_use_instead() {
        let e = source("a.sources.r1.type = org.apache.flume.source.jms.JMSSource\n").unwrap_err();
        assert!(
            e.contains("is Flume's but not weir's") && e.contains("Kafka"),
            "{e}"
        );
        let e = source("a.sources.r1.type = nosuch\n").unwrap_err();
        assert!(
            e.contains("unknown source type 'nosuch'; supported: netcat"),
            "{e}"
        );
        let props = Properties::parse(
            Path::new("t.properties"),
            b"a.channels.c1.type = jdbc\n".as_slice(),
        )
        .unwrap();
        let e = ChannelConfig::parse(
            "c1",
            &Section::new(&props, "a.channels.c1.".into()),
            &mut Vec::new(),
            &mut Vec::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("t.properties:1: a.channels.c1.type") && e.contains("file channel"),
            "{e}"
        );
        assert_eq!(
            not_implemented("HIVE").map(|w| w.contains("Hadoop")),
            Some(true)
        );
    }
}
