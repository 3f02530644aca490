//! Sink groups (`a.sinkgroups`): which sinks one runner drives together, and the processor that
//! picks among them each cycle (Flume's `default`, `failover` and `load_balance` sink
//! processors, with their keys and defaults). The processors themselves are `sink::group`.
//!
//! weir is stricter than Flume here: Flume logs and drops a group that names an unknown sink,
//! and silently leaves out a failover sink whose priority repeats another's; weir refuses the
//! file and says which key to fix.

use std::time::Duration;

use super::{ConfigError, Entry, Section};

/// One `a.sinkgroups.<name>` group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkGroupConfig {
    pub name: String,
    /// Member sinks, in the order listed.
    pub sinks: Vec<String>,
    pub processor: ProcessorConfig,
}

impl SinkGroupConfig {
    /// One line for `weir agent --check`: the processor and its members, failover members in
    /// the order they are tried.
    pub fn describe(&self) -> String {
        match &self.processor {
            ProcessorConfig::Default => format!("{} [default] {}", self.name, self.sinks.join(" ")),
            ProcessorConfig::Failover(f) => {
                let mut by_priority = f.priorities.clone();
                by_priority.sort_by_key(|(_, p)| std::cmp::Reverse(*p));
                let mut order: Vec<String> = by_priority
                    .iter()
                    .map(|(k, p)| format!("{k} (priority {p})"))
                    .collect();
                // A sink whose priority another has comes last (see `parse_processor`).
                order.extend(
                    self.sinks
                        .iter()
                        .filter(|k| !f.priorities.iter().any(|(p, _)| p == *k))
                        .map(|k| format!("{k} (priority taken, tried last)")),
                );
                format!(
                    "{} [failover, maxpenalty {} ms] {}",
                    self.name,
                    f.max_penalty.as_millis(),
                    order.join(" > ")
                )
            }
            ProcessorConfig::LoadBalance(lb) => {
                let order = match lb.order {
                    BalanceOrder::RoundRobin => "round_robin",
                    BalanceOrder::Random => "random",
                };
                let backoff = if lb.backoff {
                    format!("backoff up to {} ms", lb.max_timeout.as_millis())
                } else {
                    "no backoff".to_owned()
                };
                format!(
                    "{} [load_balance, {order}, {backoff}] {}",
                    self.name,
                    self.sinks.join(" ")
                )
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcessorConfig {
    /// Flume's DefaultSinkProcessor: its one sink runs exactly as a sink in no group.
    Default,
    Failover(FailoverConfig),
    LoadBalance(LoadBalanceConfig),
}

impl ProcessorConfig {
    pub fn type_name(&self) -> &'static str {
        match self {
            ProcessorConfig::Default => "default",
            ProcessorConfig::Failover(_) => "failover",
            ProcessorConfig::LoadBalance(_) => "load_balance",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailoverConfig {
    /// Every member with its priority (higher is tried first), in the order listed. A sink
    /// without `processor.priority.<sink>` gets -1, -2, … in listing order, as in Flume.
    pub priorities: Vec<(String, i32)>,
    /// Longest a failed sink waits before it is tried again (`processor.maxpenalty`, ms).
    pub max_penalty: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BalanceOrder {
    RoundRobin,
    Random,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadBalanceConfig {
    /// `processor.selector`: round_robin (default) or random.
    pub order: BalanceOrder,
    /// `processor.backoff`: exclude a failing sink for a growing time.
    pub backoff: bool,
    /// `processor.selector.maxTimeOut` (ms): the longest exclusion.
    pub max_timeout: Duration,
}

/// Flume's processor types: alias (matched case-insensitively, as Flume upper-cases it) and
/// class name.
const PROCESSOR_TYPES: &[(&str, &str)] = &[
    ("default", "org.apache.flume.sink.DefaultSinkProcessor"),
    ("failover", "org.apache.flume.sink.FailoverSinkProcessor"),
    (
        "load_balance",
        "org.apache.flume.sink.LoadBalancingSinkProcessor",
    ),
];

const DEFAULT_MAX_PENALTY_MS: u64 = 30_000;
const DEFAULT_MAX_TIMEOUT_MS: u64 = 30_000;

/// Parses `<agent>.sinkgroups` and every group it lists. `sink_names` are the agent's sinks that
/// run; `listed` every name in `<agent>.sinks`, some perhaps left out.
///
/// As Flume does, what a group cannot have is left out of it (a line in `left_out`) rather
/// than refused:
/// a sink that is not one of the agent's (or was left out), a sink already in another group (a
/// sink named twice stays in once, with a line too); and a group left with no sinks (or with
/// no keys) is left out whole, its sinks then running on their own.
pub(super) fn parse_sink_groups(
    root: &Section,
    agent: &str,
    (sink_names, listed): (&[String], &[String]),
    notes: &mut Vec<String>,
    left_out: &mut Vec<String>,
) -> Result<Vec<SinkGroupConfig>, ConfigError> {
    let Some(list) = root.string("sinkgroups") else {
        return Ok(Vec::new());
    };
    let list_at = root.entry("sinkgroups").map(|e| e.at()).unwrap_or_default();
    let mut groups: Vec<SinkGroupConfig> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    // sink → (group, that group's `sinks` entry), to report a sink in two groups.
    let mut owners: Vec<(String, String, Option<&Entry>)> = Vec::new();
    for name in list.split_whitespace() {
        if seen.contains(&name) {
            left_out.push(format!(
                "{list_at}: {agent}.sinkgroups: sink group '{name}' is listed twice; read once"
            ));
            continue;
        }
        seen.push(name);
        let s = root.child(&format!("sinkgroups.{name}."));
        let listed_sinks: Vec<String> = s
            .string("sinks")
            .map(|v| v.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        let sinks_entry = s.entry("sinks");
        let at = sinks_entry
            .map(|e| e.at())
            .unwrap_or_else(|| list_at.clone());
        let mut sinks: Vec<String> = Vec::new();
        for sink in &listed_sinks {
            let leave_out = |why: String, left_out: &mut Vec<String>| {
                left_out.push(format!(
                    "{at}: {}: {why}; left out of group {name}, as Flume leaves it out",
                    s.full("sinks")
                ));
            };
            if !sink_names.contains(sink) {
                let why = if listed.contains(sink) {
                    format!("sink {sink} does not run (see its note)")
                } else {
                    format!(
                        "sink '{sink}' is not in `{agent}.sinks` ({})",
                        sink_names.join(" ")
                    )
                };
                leave_out(why, left_out);
                continue;
            }
            if sinks.contains(sink) {
                // Flume reads the list as a set: the sink stays in the group, once.
                left_out.push(format!(
                    "{at}: {}: sink {sink} is named twice; it is in group {name} once, as Flume \
                     reads the list as a set",
                    s.full("sinks")
                ));
                continue;
            }
            if let Some((_, group, owner)) = owners.iter().find(|(k, _, _)| k == sink) {
                // The line, or the file and line when the other group is set in another file.
                let other_at = match (owner, sinks_entry) {
                    (Some(o), Some(here)) if o.file == here.file => format!(" (line {})", o.line),
                    (Some(o), _) => format!(" ({})", o.at()),
                    (None, _) => String::new(),
                };
                leave_out(
                    format!("sink {sink} is already in sink group {group}{other_at}"),
                    left_out,
                );
                continue;
            }
            sinks.push(sink.clone());
        }
        if sinks.is_empty() {
            left_out.push(format!(
                "{at}: {}: sink group {name} has no sink to drive (set it to two or more of: \
                 {}); the group is left out, as Flume leaves it out",
                s.full("sinks"),
                sink_names.join(" ")
            ));
            continue;
        }
        for sink in &sinks {
            owners.push((sink.clone(), name.to_owned(), sinks_entry));
        }
        let processor = parse_processor(name, &s, &sinks, left_out, notes)?;
        s.note_unused(notes);
        groups.push(SinkGroupConfig {
            name: name.to_owned(),
            sinks,
            processor,
        });
    }
    Ok(groups)
}

/// The group's processor. A failover group ranks a sink whose priority another sink has
/// already below all others (it has no entry in `priorities`).
fn parse_processor(
    group: &str,
    s: &Section,
    sinks: &[String],
    left_out: &mut Vec<String>,
    notes: &mut Vec<String>,
) -> Result<ProcessorConfig, ConfigError> {
    let aliases: Vec<&str> = PROCESSOR_TYPES.iter().map(|(a, _)| *a).collect();
    let configured = s.string("processor.type");
    let ty = match &configured {
        None => "default",
        Some(v) => PROCESSOR_TYPES
            .iter()
            .find(|(alias, class)| alias.eq_ignore_ascii_case(v) || class == v)
            .map(|(alias, _)| *alias)
            .ok_or_else(|| {
                s.error(
                    Some("processor.type"),
                    format!(
                        "unknown sink processor type '{v}'; supported: {}",
                        aliases.join(", ")
                    ),
                )
            })?,
    };
    // The keys of the other processors, which this one does not read (nor does Flume's).
    let with = format!("processor.type = {ty}");
    if ty != "failover" {
        s.ignored_with("processor.maxpenalty", &with, notes);
        s.ignored_with_under("processor.priority", &with, notes);
    }
    if ty != "load_balance" {
        for key in [
            "processor.selector",
            "processor.backoff",
            "processor.selector.maxTimeOut",
        ] {
            s.ignored_with(key, &with, notes);
        }
    }
    match ty {
        "default" => {
            if sinks.len() != 1 {
                let key = if configured.is_some() {
                    "processor.type"
                } else {
                    "sinks"
                };
                return Err(s.error(
                    Some(key),
                    format!(
                        "the default sink processor drives exactly one sink, and group {group} has {}: set `{}` to failover or load_balance",
                        sinks.len(),
                        s.full("processor.type")
                    ),
                ));
            }
            Ok(ProcessorConfig::Default)
        }
        "failover" => {
            let max_penalty = s.millis_or("processor.maxpenalty", DEFAULT_MAX_PENALTY_MS)?;
            let mut priorities: Vec<(String, i32)> = Vec::new();
            let mut implicit = 0i32;
            for sink in sinks {
                let key = format!("processor.priority.{sink}");
                let (priority, explicit) = match s.string(&key) {
                    Some(v) => (
                        v.parse::<i32>().map_err(|_| {
                            s.error(
                                Some(&key),
                                format!(
                                    "'{v}' is not a whole number; a sink with a higher priority is used first"
                                ),
                            )
                        })?,
                        true,
                    ),
                    None => {
                        implicit -= 1;
                        (implicit, false)
                    }
                };
                if let Some((other, _)) = priorities.iter().find(|(_, p)| *p == priority) {
                    let why = if explicit {
                        String::new()
                    } else {
                        format!(" (given to {sink} because it has no `{}`)", s.full(&key))
                    };
                    let at = s
                        .entry(if explicit { &key } else { "sinks" })
                        .map(|e| e.at())
                        .unwrap_or_default();
                    left_out.push(format!(
                        "{at}: {}: priority {priority}{why} is also {other}'s; sink {sink} is \
                         tried after every other sink of failover group {group} (Flume never \
                         tries it; give each sink its own priority)",
                        s.full(&key)
                    ));
                    continue;
                }
                priorities.push((sink.clone(), priority));
            }
            for (rest, entry) in s.props().with_prefix(&s.full("processor.priority.")) {
                if !sinks.iter().any(|k| k == rest) {
                    s.entry(&format!("processor.priority.{rest}"));
                    left_out.push(format!(
                        "{}: {}: '{rest}' is not a sink of group {group} ({}); ignored, as Flume \
                         ignores it",
                        entry.at(),
                        s.full(&format!("processor.priority.{rest}")),
                        sinks.join(" ")
                    ));
                }
            }
            Ok(ProcessorConfig::Failover(FailoverConfig {
                priorities,
                max_penalty,
            }))
        }
        "load_balance" => {
            if sinks.len() < 2 {
                return Err(s.error(
                    Some("sinks"),
                    format!(
                        "a load_balance group needs at least two sinks; group {group} has only {}",
                        sinks.join(" ")
                    ),
                ));
            }
            let selector = s.string_or("processor.selector", "round_robin");
            let order = match selector.to_ascii_lowercase().as_str() {
                "round_robin" => BalanceOrder::RoundRobin,
                "random" => BalanceOrder::Random,
                _ if selector.contains('.') => {
                    return Err(s.error(
                        Some("processor.selector"),
                        format!(
                            "'{selector}' looks like a Java class: custom sink selectors cannot be loaded in weir; use round_robin or random"
                        ),
                    ));
                }
                _ => {
                    return Err(s.error(
                        Some("processor.selector"),
                        format!("unknown selector '{selector}'; supported: round_robin, random"),
                    ));
                }
            };
            // Flume reads 0 as "not set".
            let max_timeout = match s.u64_or("processor.selector.maxTimeOut", 0)? {
                0 => DEFAULT_MAX_TIMEOUT_MS,
                ms => ms,
            };
            let backoff = s.bool_or("processor.backoff", false)?;
            if !backoff {
                s.ignored_with(
                    "processor.selector.maxTimeOut",
                    "processor.backoff = false",
                    notes,
                );
            }
            Ok(ProcessorConfig::LoadBalance(LoadBalanceConfig {
                order,
                backoff,
                max_timeout: Duration::from_millis(max_timeout),
            }))
        }
        _ => unreachable!("only listed aliases are resolved"),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{AgentConfig, ConfigError, Properties};

    use super::*;

    /// Three sinks on one channel; groups are appended by each test.
    const BASE: &str = "a.sources = r1\na.channels = c1\na.sinks = k1 k2 k3\n\
        a.sources.r1.type = seq\na.sources.r1.channels = c1\n\
        a.channels.c1.type = memory\n\
        a.sinks.k1.type = null\na.sinks.k1.channel = c1\n\
        a.sinks.k2.type = null\na.sinks.k2.channel = c1\n\
        a.sinks.k3.type = logger\na.sinks.k3.channel = c1\n";
    /// Lines in BASE, so a test can name the line of its first appended key.
    const BASE_LINES: usize = 12;

    fn load(groups: &str) -> Result<AgentConfig, ConfigError> {
        let text = format!("{BASE}{groups}");
        assert_eq!(BASE.lines().count(), BASE_LINES);
        let props = Properties::parse(Path::new("g.properties"), text.as_bytes())?;
        AgentConfig::from_properties(&props, "a")
    }

    fn groups(text: &str) -> Vec<SinkGroupConfig> {
        match load(text) {
            Ok(c) => c.sink_groups,
            Err(e) => panic!("rejected: {e}"),
        }
    }

    /// The error for `text`, printed as the user sees it.
    fn error(text: &str) -> String {
        match load(text) {
            Ok(c) => panic!("accepted: {:?}", c.sink_groups),
            Err(e) => e.to_string(),
        }
    }

    fn line(n: usize) -> String {
        format!("g.properties:{}: ", BASE_LINES + n)
    }

    #[test]
    fn failover_priorities_defaults_and_class_names() {
        let g = groups(
            "a.sinkgroups = g1\na.sinkgroups.g1.sinks = k1 k2 k3\n\
             a.sinkgroups.g1.processor.type = org.apache.flume.sink.FailoverSinkProcessor\n\
             a.sinkgroups.g1.processor.priority.k1 = 5\na.sinkgroups.g1.processor.priority.k2 = 10\n",
        );
        assert_eq!(
            g,
            vec![SinkGroupConfig {
                name: "g1".into(),
                sinks: vec!["k1".into(), "k2".into(), "k3".into()],
                processor: ProcessorConfig::Failover(FailoverConfig {
                    // k3 has no priority: -1, as Flume numbers them.
                    priorities: vec![("k1".into(), 5), ("k2".into(), 10), ("k3".into(), -1)],
                    max_penalty: Duration::from_secs(30),
                }),
            }]
        );
        let g = groups(
            "a.sinkgroups = g1\na.sinkgroups.g1.sinks = k1 k2\n\
             a.sinkgroups.g1.processor.type = FAILOVER\na.sinkgroups.g1.processor.maxpenalty = 10000\n",
        );
        assert_eq!(
            g[0].processor,
            ProcessorConfig::Failover(FailoverConfig {
                priorities: vec![("k1".into(), -1), ("k2".into(), -2)],
                max_penalty: Duration::from_secs(10),
            })
        );
    }

    #[test]
    fn load_balance_and_default_groups() {
        let g = groups(
            "a.sinkgroups = g1 g2\na.sinkgroups.g1.sinks = k1 k2\n\
             a.sinkgroups.g1.processor.type = load_balance\n\
             a.sinkgroups.g2.sinks = k3\n",
        );
        assert_eq!(
            g[0].processor,
            ProcessorConfig::LoadBalance(LoadBalanceConfig {
                order: BalanceOrder::RoundRobin,
                backoff: false,
                max_timeout: Duration::from_secs(30),
            })
        );
        assert_eq!(g[1].processor, ProcessorConfig::Default);
        let g = groups(
            "a.sinkgroups = g1\na.sinkgroups.g1.sinks = k1 k2\n\
             a.sinkgroups.g1.processor.type = org.apache.flume.sink.LoadBalancingSinkProcessor\n\
             a.sinkgroups.g1.processor.selector = RANDOM\na.sinkgroups.g1.processor.backoff = true\n\
             a.sinkgroups.g1.processor.selector.maxTimeOut = 5000\n",
        );
        assert_eq!(
            g[0].processor,
            ProcessorConfig::LoadBalance(LoadBalanceConfig {
                order: BalanceOrder::Random,
                backoff: true,
                max_timeout: Duration::from_secs(5),
            })
        );
        let c = load(
            "a.sinkgroups = g1\na.sinkgroups.g1.sinks = k1\n\
             a.sinkgroups.g1.processor.type = org.apache.flume.sink.DefaultSinkProcessor\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.sink_groups[0].processor, ProcessorConfig::Default);
        assert!(
            c.describe().contains("group   g1 [default] k1"),
            "{}",
            c.describe()
        );
    }

    #[test]
    fn errors_name_file_line_and_key() {
        // (groups appended to BASE, fragments the message must contain)
        let cases: &[(&str, &[&str])] = &[
            (
                "a.sinkgroups = g1\na.sinkgroups.g1.sinks = k1 k2\na.sinkgroups.g1.processor.type = roundrobin\n",
                &[
                    &line(3),
                    "a.sinkgroups.g1.processor.type",
                    "unknown sink processor type 'roundrobin'",
                    "default, failover, load_balance",
                ],
            ),
            (
                "a.sinkgroups = g1\na.sinkgroups.g1.sinks = k1 k2\na.sinkgroups.g1.processor.type = failover\n\
                 a.sinkgroups.g1.processor.priority.k1 = high\n",
                &[
                    &line(4),
                    "a.sinkgroups.g1.processor.priority.k1",
                    "'high' is not a whole number",
                ],
            ),
            (
                "a.sinkgroups = g1\na.sinkgroups.g1.sinks = k1 k2\na.sinkgroups.g1.processor.type = failover\n\
                 a.sinkgroups.g1.processor.maxpenalty = 10s\n",
                &[&line(4), "a.sinkgroups.g1.processor.maxpenalty", "'10s'"],
            ),
            (
                "a.sinkgroups = g1\na.sinkgroups.g1.sinks = k1 k2\na.sinkgroups.g1.processor.type = load_balance\n\
                 a.sinkgroups.g1.processor.selector = com.example.MySelector\n",
                &[
                    &line(4),
                    "a.sinkgroups.g1.processor.selector",
                    "custom sink selectors cannot be loaded",
                ],
            ),
            (
                "a.sinkgroups = g1\na.sinkgroups.g1.sinks = k1 k2\na.sinkgroups.g1.processor.type = load_balance\n\
                 a.sinkgroups.g1.processor.selector = fastest\n",
                &[
                    &line(4),
                    "unknown selector 'fastest'",
                    "round_robin, random",
                ],
            ),
            (
                "a.sinkgroups = g1\na.sinkgroups.g1.sinks = k1 k2\na.sinkgroups.g1.processor.type = load_balance\n\
                 a.sinkgroups.g1.processor.backoff = yes\n",
                &[&line(4), "a.sinkgroups.g1.processor.backoff", "'yes'"],
            ),
            (
                "a.sinkgroups = g1\na.sinkgroups.g1.sinks = k1\na.sinkgroups.g1.processor.type = load_balance\n",
                &[&line(2), "at least two sinks"],
            ),
            (
                "a.sinkgroups = g1\na.sinkgroups.g1.sinks = k1 k2\n",
                &[
                    &line(2),
                    "a.sinkgroups.g1.sinks",
                    "drives exactly one sink",
                    "failover or load_balance",
                ],
            ),
        ];
        for (text, want) in cases {
            let e = error(text);
            for w in *want {
                assert!(e.contains(w), "for\n{text}\n{w:?} not in: {e}");
            }
        }
    }

    /// What Flume leaves out of a group with a warning (and runs the rest) is left out with a
    /// note naming the file, line and key.
    #[test]
    fn what_flume_leaves_out_of_a_group_is_noted() {
        // (groups appended to BASE, fragments one note must contain, the groups left: name
        // and sinks)
        let fo = "a.sinkgroups.g1.processor.type = failover\n";
        type Groups<'a> = &'a [(&'a str, &'a [&'a str])];
        let cases: &[(String, &[&str], Groups)] = &[
            (
                "a.sinkgroups = g1\na.sinkgroups.g1.sinks = k1 k9\n".into(),
                &[
                    &line(2),
                    "a.sinkgroups.g1.sinks",
                    "sink 'k9' is not in `a.sinks` (k1 k2 k3); left out of group g1",
                ],
                &[("g1", &["k1"])],
            ),
            (
                format!(
                    "a.sinkgroups = g1 g2\na.sinkgroups.g1.sinks = k1 k2\n{fo}\
                     a.sinkgroups.g2.sinks = k2 k3\na.sinkgroups.g2.processor.type = failover\n"
                ),
                &[
                    &line(4),
                    "a.sinkgroups.g2.sinks",
                    "sink k2 is already in sink group g1 (line 14); left out of group g2",
                ],
                &[("g1", &["k1", "k2"]), ("g2", &["k3"])],
            ),
            (
                format!("a.sinkgroups = g1\n{fo}"),
                &[
                    &line(1),
                    "a.sinkgroups.g1.sinks",
                    "sink group g1 has no sink to drive",
                    "the group is left out",
                ],
                &[],
            ),
            (
                "a.sinkgroups = g1\n".into(),
                &[&line(1), "a.sinkgroups.g1.sinks", "has no sink to drive"],
                &[],
            ),
            (
                "a.sinkgroups = g1\na.sinkgroups.g1.sinks =\n".into(),
                &[&line(2), "a.sinkgroups.g1.sinks", "has no sink to drive"],
                &[],
            ),
            (
                format!(
                    "a.sinkgroups = g1\na.sinkgroups.g1.sinks = k1 k2\n{fo}\
                     a.sinkgroups.g1.processor.priority.k1 = 5\na.sinkgroups.g1.processor.priority.k2 = 5\n"
                ),
                &[
                    &line(5),
                    "a.sinkgroups.g1.processor.priority.k2",
                    "priority 5 is also k1's; sink k2 is tried after every other sink",
                ],
                &[("g1", &["k1", "k2"])],
            ),
            (
                format!(
                    "a.sinkgroups = g1\na.sinkgroups.g1.sinks = k1 k2\n{fo}\
                     a.sinkgroups.g1.processor.priority.k1 = -1\n"
                ),
                &[
                    &line(2),
                    "priority -1 (given to k2 because it has no `a.sinkgroups.g1.processor.priority.k2`) is also k1's",
                ],
                &[("g1", &["k1", "k2"])],
            ),
            (
                format!(
                    "a.sinkgroups = g1\na.sinkgroups.g1.sinks = k1 k2\n{fo}\
                     a.sinkgroups.g1.processor.priority.k3 = 5\n"
                ),
                &[
                    &line(4),
                    "a.sinkgroups.g1.processor.priority.k3",
                    "'k3' is not a sink of group g1 (k1 k2); ignored",
                ],
                &[("g1", &["k1", "k2"])],
            ),
            (
                format!("a.sinkgroups = g1\na.sinkgroups.g1.sinks = k1 k1\n{fo}"),
                &[&line(2), "sink k1 is named twice; it is in group g1 once"],
                &[("g1", &["k1"])],
            ),
            (
                "a.sinkgroups = g1 g1\na.sinkgroups.g1.sinks = k1\n".into(),
                &[
                    &line(1),
                    "a.sinkgroups",
                    "sink group 'g1' is listed twice; read once",
                ],
                &[("g1", &["k1"])],
            ),
        ];
        for (text, want, left) in cases {
            let c = load(text).unwrap_or_else(|e| panic!("for\n{text}\nrefused: {e}"));
            let notes = c.left_out.join("\n");
            assert!(
                c.left_out
                    .iter()
                    .any(|n| want.iter().all(|w| n.contains(w))),
                "for\n{text}\nno note holds all of {want:?}:\n{notes}"
            );
            let got: Vec<(&str, Vec<&str>)> = c
                .sink_groups
                .iter()
                .map(|g| {
                    (
                        g.name.as_str(),
                        g.sinks.iter().map(String::as_str).collect(),
                    )
                })
                .collect();
            let want_groups: Vec<(&str, Vec<&str>)> =
                left.iter().map(|(g, k)| (*g, k.to_vec())).collect();
            assert_eq!(got, want_groups, "for\n{text}");
        }
        // The duplicate has no priority, so failover tries it last.
        let c = load(&format!(
            "a.sinkgroups = g1\na.sinkgroups.g1.sinks = k2 k1\n{fo}\
             a.sinkgroups.g1.processor.priority.k1 = 5\na.sinkgroups.g1.processor.priority.k2 = 5\n"
        ))
        .unwrap();
        let ProcessorConfig::Failover(f) = &c.sink_groups[0].processor else {
            panic!("{:?}", c.sink_groups[0].processor)
        };
        assert_eq!(f.priorities, vec![("k2".to_owned(), 5)]);
        assert!(
            c.describe().contains(
                "[failover, maxpenalty 30000 ms] k2 (priority 5) > k1 (priority taken, tried last)"
            ),
            "{}",
            c.describe()
        );
    }

    #[test]
    fn stray_keys_are_noted() {
        let c = load(
            "a.sinkgroups = g1\na.sinkgroups.g1.sinks = k1 k2\na.sinkgroups.g1.processor.type = load_balance\n\
             a.sinkgroups.g1.processor.priority.k1 = 3\na.sinkgroups.g9.sinks = k3\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let notes = c.notes.join("\n");
        assert!(
            notes.contains(
                ":16: a.sinkgroups.g1.processor.priority.k1: ignored with processor.type = \
                 load_balance"
            ),
            "{notes}"
        );
        assert!(
            notes.contains(":17: a.sinkgroups.g9.sinks: ignored"),
            "{notes}"
        );
        assert!(!notes.contains("not supported"), "{notes}");
    }
}
