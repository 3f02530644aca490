//! The keys of the `avro` source (Flume's AvroSource) and the `avro` sink (Flume's AvroSink),
//! which chain agents with Avro RPC (`avro_rpc`).

use super::tls::{self, TlsServerConfig};
use super::{ConfigError, RpcTarget, Section, parse_rpc_target, rpc_timeouts};

#[derive(Clone, Debug)]
pub struct AvroSourceConfig {
    pub bind: String,
    pub port: u16,
    /// Most connections served at once (weir's `max-connections`, 1000; Flume has no such
    /// limit). A connection past it is closed at once.
    pub max_connections: usize,
    /// `compression-type = deflate`: both directions of each connection are zlib streams.
    pub deflate: bool,
    /// `ipFilter = true`: the `ipFilterRules`, first match decides; a client no rule matches is
    /// served (Netty's IpFilterRuleHandler). Empty: no filter.
    pub ip_filter: Vec<IpFilterRule>,
    /// `ssl = true`: connections are TLS.
    pub tls: Option<TlsServerConfig>,
}

/// One of Flume's `ipFilterRules`: `allow|deny:ip|name:pattern`, `*` matching any run of
/// characters.
#[derive(Clone, Debug)]
pub struct IpFilterRule {
    pub allow: bool,
    /// Matched against the client's host name (reverse lookup) rather than its address.
    pub by_name: bool,
    pub pattern: regex::Regex,
    /// The rule as written, for the log.
    pub text: String,
}

impl IpFilterRule {
    /// Whether the rule is about a client with this address and (for a `name` rule) the name
    /// `name()` looks up.
    pub fn matches(&self, ip: &str, name: impl FnOnce() -> Option<String>) -> bool {
        if self.by_name {
            name().is_some_and(|n| self.pattern.is_match(&n))
        } else {
            self.pattern.is_match(ip)
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvroSinkConfig {
    pub target: RpcTarget,
    /// `compression-type = deflate`: the `compression-level` (0-9) of what the sink sends.
    pub deflate_level: Option<u32>,
}

/// `compression-type`: whether it is `deflate` (else `none`).
fn deflate(s: &Section) -> Result<bool, ConfigError> {
    match s
        .string_or("compression-type", "none")
        .to_ascii_lowercase()
        .as_str()
    {
        "none" => Ok(false),
        "deflate" => Ok(true),
        other => Err(s.error(
            Some("compression-type"),
            format!("'{other}' is not supported; supported: none, deflate"),
        )),
    }
}

pub fn parse_avro_source(
    s: &Section,
    notes: &mut Vec<String>,
) -> Result<AvroSourceConfig, ConfigError> {
    let port = s.port("port")?;
    let bind = s.required(
        "bind",
        &format!(
            "set `{}` to the address to listen on, e.g. 0.0.0.0",
            s.full("bind")
        ),
    )?;
    let tls = tls::server(s, notes)?;
    let ip_filter = if s.bool_or("ipFilter", false)? {
        let rules = s.required(
            "ipFilterRules",
            &format!(
                "ipFilter = true needs `{}`, e.g. allow:ip:127.*,deny:ip:*",
                s.full("ipFilterRules")
            ),
        )?;
        rules
            .split(',')
            .map(|r| parse_rule(r.trim()))
            .collect::<Result<Vec<_>, String>>()
            .map_err(|e| s.error(Some("ipFilterRules"), e))?
    } else {
        s.ignored_with("ipFilterRules", "ipFilter = false", notes);
        Vec::new()
    };
    Ok(AvroSourceConfig {
        bind,
        port,
        max_connections: rpc_source_max_connections(s, notes)?,
        deflate: deflate(s)?,
        ip_filter,
        tls,
    })
}

/// The avro and thrift sources' `max-connections` (weir's key, default 1000). Flume's `threads`
/// sizes a pool of worker threads that share the connections, so it never turns a client
/// away: an agent with `threads = 2` serves ten upstream agents. weir serves each connection
/// on a thread of its own, so `threads` (a whole number; 0 or less is Flume's "no limit") is
/// checked and noted, and caps nothing.
pub(super) fn rpc_source_max_connections(
    s: &Section,
    notes: &mut Vec<String>,
) -> Result<usize, ConfigError> {
    s.parse_or::<i64>("threads", 0, "a whole number")?;
    s.accept_without_effect(
        "threads",
        "each connection has a thread of its own, and no client is turned away below max-connections (1000 unless set)",
        notes,
    );
    Ok(s.positive_or("max-connections", 1000)? as usize)
}

fn parse_rule(rule: &str) -> Result<IpFilterRule, String> {
    let mut parts = rule.splitn(3, ':');
    let (Some(action), Some(kind), Some(pattern)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(format!(
            "rule '{rule}' is not <allow|deny>:<ip|name>:<pattern>"
        ));
    };
    let allow = match action.trim() {
        "allow" => true,
        "deny" => false,
        other => return Err(format!("rule '{rule}': '{other}' is not allow or deny")),
    };
    let by_name = match kind.trim() {
        "ip" => false,
        "name" => true,
        other => return Err(format!("rule '{rule}': '{other}' is not ip or name")),
    };
    let glob: String = pattern
        .trim()
        .split('*')
        .map(regex::escape)
        .collect::<Vec<_>>()
        .join(".*");
    let pattern = regex::Regex::new(&format!("^(?i:{glob})$"))
        .map_err(|e| format!("rule '{rule}': bad pattern: {e}"))?;
    Ok(IpFilterRule {
        allow,
        by_name,
        pattern,
        text: rule.to_owned(),
    })
}

/// `compression-type` and `compression-level` of a sending side: the zlib level to deflate
/// with, or `None`.
fn deflate_level(s: &Section, notes: &mut Vec<String>) -> Result<Option<u32>, ConfigError> {
    if !deflate(s)? {
        s.ignored_with(
            "compression-level",
            "a compression-type other than deflate",
            notes,
        );
        return Ok(None);
    }
    let level = s.u64_or("compression-level", 6)?;
    if level > 9 {
        return Err(s.error(
            Some("compression-level"),
            format!("{level} is not a zlib level (0-9)"),
        ));
    }
    Ok(Some(level as u32))
}

/// Flume's RPC client properties (`flume-ng avro-client -P FILE`): where to send, and how.
#[derive(Clone, Debug)]
pub struct RpcClientProps {
    /// `hosts` (aliases, in order) with each `hosts.<alias>` = `host:port`: the first is used,
    /// the next ones after a failure (as Flume's failover client).
    pub targets: Vec<RpcTarget>,
    pub deflate_level: Option<u32>,
    /// `batch-size` (Flume: 100).
    pub batch_size: usize,
}

/// Reads an RPC client properties file's keys (no prefix).
pub fn parse_rpc_client_props(
    s: &Section,
    notes: &mut Vec<String>,
) -> Result<RpcClientProps, ConfigError> {
    match s.string_or("client.type", "default").as_str() {
        "default" | "default_failover" | "default_loadbalance" => {}
        other => {
            return Err(s.error(
                Some("client.type"),
                format!(
                    "'{other}' is not supported; supported: default, default_failover, \
                     default_loadbalance (weir tries the hosts in order)"
                ),
            ));
        }
    }
    let aliases: Vec<String> = s
        .required(
            "hosts",
            "set `hosts` to the aliases of the avro sources, e.g. h1",
        )?
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let (connect_timeout, request_timeout) = rpc_timeouts(s)?;
    // Flume's RPC client takes the avro sink's TLS keys (`ssl`, `truststore`, …).
    let tls = tls::client(s, notes)?;
    let mut targets = Vec::new();
    for alias in &aliases {
        let key = format!("hosts.{alias}");
        let value = s.required(&key, &format!("set `{key}` to host:port"))?;
        let Some((host, port)) = value.rsplit_once(':') else {
            return Err(s.error(Some(&key), format!("'{value}' is not host:port")));
        };
        targets.push(RpcTarget {
            hostname: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port: s.port_number(&key, port)?,
            connect_timeout,
            request_timeout,
            reset_connection_interval: None,
            tls: tls.clone(),
        });
    }
    for key in ["backoff", "maxBackoff", "host-selector", "max-attempts"] {
        s.accept_without_effect(key, "weir tries the hosts once each, in order", notes);
    }
    Ok(RpcClientProps {
        targets,
        deflate_level: deflate_level(s, notes)?,
        batch_size: s.positive_or("batch-size", 100)? as usize,
    })
}

/// The sink's config and its batch size (Flume `batch-size`).
pub fn parse_avro_sink(
    s: &Section,
    notes: &mut Vec<String>,
) -> Result<(AvroSinkConfig, usize), ConfigError> {
    let target = parse_rpc_target(s, "avro", notes)?;
    let deflate_level = deflate_level(s, notes)?;
    s.accept_without_effect(
        "maxIoWorkers",
        "each avro sink has one connection, served by the sink's own thread",
        notes,
    );
    Ok((
        AvroSinkConfig {
            target,
            deflate_level,
        },
        s.positive_or("batch-size", 100)? as usize,
    ))
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::config::Properties;

    fn section(text: &str) -> Properties {
        Properties::parse(Path::new("t.properties"), text.as_bytes()).unwrap()
    }

    #[test]
    fn sink_defaults_are_flumes() {
        let props = section("a.sinks.k1.hostname = h\na.sinks.k1.port = 4141\n");
        let s = Section::new(&props, "a.sinks.k1.".into());
        let (c, batch) = parse_avro_sink(&s, &mut Vec::new()).unwrap();
        assert_eq!(batch, 100);
        assert_eq!(
            c,
            AvroSinkConfig {
                target: RpcTarget {
                    hostname: "h".into(),
                    port: 4141,
                    connect_timeout: Duration::from_secs(20),
                    request_timeout: Duration::from_secs(20),
                    reset_connection_interval: None,
                    tls: None,
                },
                deflate_level: None,
            }
        );
    }

    #[test]
    fn bad_sink_values_name_their_key() {
        for (text, want) in [
            (
                "a.sinks.k1.hostname = h\n",
                "t.properties:1: a.sinks.k1.port: missing",
            ),
            (
                "a.sinks.k1.hostname = h\na.sinks.k1.port = 1\na.sinks.k1.ssl = true\n\
                 a.sinks.k1.truststore-type = BKS\na.sinks.k1.truststore = /etc/t.bks\n",
                "t.properties:5: a.sinks.k1.truststore: Java BKS truststore /etc/t.bks: a BKS \
                 store, which weir cannot read",
            ),
            (
                "a.sinks.k1.hostname = h\na.sinks.k1.port = 1\na.sinks.k1.compression-type = lz4\n",
                "t.properties:3: a.sinks.k1.compression-type: 'lz4' is not supported",
            ),
            (
                "a.sinks.k1.hostname = h\na.sinks.k1.port = 1\na.sinks.k1.compression-type = deflate\na.sinks.k1.compression-level = 10\n",
                "t.properties:4: a.sinks.k1.compression-level: 10 is not a zlib level",
            ),
        ] {
            let props = section(text);
            let s = Section::new(&props, "a.sinks.k1.".into());
            let err = parse_avro_sink(&s, &mut Vec::new())
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(want), "{err}");
        }
    }

    /// Flume's `threads` sizes a shared worker pool and turns no client away, so it caps
    /// nothing here; `max-connections` does. Both avro and thrift sources read them alike.
    #[test]
    fn threads_is_noted_and_max_connections_is_the_cap() {
        let prefix = "a.sources.r1.";
        for kind in ["avro", "thrift"] {
            let parse = |text: &str, notes: &mut Vec<String>| {
                let props = section(&format!("{prefix}bind = 0.0.0.0\n{prefix}port = 1\n{text}"));
                let s = Section::new(&props, prefix.into());
                match kind {
                    "avro" => parse_avro_source(&s, notes).map(|c| c.max_connections),
                    _ => super::super::thrift::parse_thrift_source(&s, notes)
                        .map(|c| c.max_connections),
                }
            };
            let mut notes = Vec::new();
            assert_eq!(
                parse(&format!("{prefix}threads = 2\n"), &mut notes).unwrap(),
                1000
            );
            assert!(
                notes
                    .iter()
                    .any(|n| n.contains("a.sources.r1.threads: accepted, no effect")),
                "{kind}: {notes:?}"
            );
            let mut notes = Vec::new();
            let cap = format!("{prefix}threads = 0\n{prefix}max-connections = 3\n");
            assert_eq!(parse(&cap, &mut notes).unwrap(), 3, "{kind}");
            let err = parse(&format!("{prefix}threads = many\n"), &mut Vec::new())
                .unwrap_err()
                .to_string();
            assert!(err.contains("a.sources.r1.threads"), "{kind}: {err}");
        }
    }

    #[test]
    fn ip_filter_rules_parse_as_flume_writes_them() {
        let props = section(
            "a.sources.r1.bind = 0.0.0.0\na.sources.r1.port = 1\na.sources.r1.ipFilter = true\n\
             a.sources.r1.ipFilterRules = allow:ip:127.*, allow:name:localhost,deny:ip:*\n",
        );
        let s = Section::new(&props, "a.sources.r1.".into());
        let c = parse_avro_source(&s, &mut Vec::new()).unwrap();
        let rules = &c.ip_filter;
        assert_eq!(rules.len(), 3);
        assert!(rules[0].allow && rules[0].matches("127.0.0.1", || None));
        assert!(!rules[0].matches("10.127.0.1", || None));
        assert!(rules[1].matches("10.0.0.1", || Some("LOCALHOST".into())));
        assert!(!rules[1].matches("127.0.0.1", || None));
        assert!(!rules[2].allow && rules[2].matches("10.0.0.1", || None));

        let props = section(
            "a.sources.r1.bind = 0.0.0.0\na.sources.r1.port = 1\na.sources.r1.ipFilter = true\n\
             a.sources.r1.ipFilterRules = allow:127.*\n",
        );
        let s = Section::new(&props, "a.sources.r1.".into());
        let err = parse_avro_source(&s, &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("t.properties:4: a.sources.r1.ipFilterRules: rule 'allow:127.*'"),
            "{err}"
        );
    }

    #[test]
    fn rpc_client_properties() {
        let parse = |text: &str| {
            let props = Properties::parse(Path::new("rpc.properties"), text.as_bytes()).unwrap();
            let s = Section::new(&props, String::new());
            parse_rpc_client_props(&s, &mut Vec::new()).map_err(|e| e.to_string())
        };
        let p = parse(
            "hosts = h1 h2\nhosts.h1 = a.example:4141\nhosts.h2 = [::1]:4142\n\
             request-timeout = 500\ncompression-type = deflate\n",
        )
        .unwrap();
        let targets: Vec<String> = p.targets.iter().map(RpcTarget::address).collect();
        assert_eq!(targets, ["a.example:4141", "[::1]:4142"]);
        assert_eq!(p.targets[0].request_timeout, Duration::from_millis(500));
        assert_eq!(p.targets[0].connect_timeout, Duration::from_secs(20));
        assert_eq!((p.batch_size, p.deflate_level), (100, Some(6)));
        for (text, want) in [
            ("batch-size = 5\n", "rpc.properties:1: hosts: missing"),
            ("hosts = h1\n", "hosts.h1: missing"),
            (
                "hosts = h1\nhosts.h1 = nowhere\n",
                "rpc.properties:2: hosts.h1: 'nowhere' is not host:port",
            ),
            (
                "hosts = h1\nhosts.h1 = h:99999\n",
                "hosts.h1: '99999' is not a port number",
            ),
            (
                "client.type = thrift\nhosts = h1\nhosts.h1 = h:1\n",
                "rpc.properties:1: client.type: 'thrift' is not supported",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }
}
