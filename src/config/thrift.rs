//! The keys of the `thrift` source (Flume's ThriftSource) and the `thrift` sink (Flume's
//! ThriftSink), which carry events over Thrift RPC (`thrift_rpc`).

use super::tls::{self, TlsServerConfig};
use super::{ConfigError, RpcTarget, Section, parse_rpc_target};

/// Which Thrift protocol encodes the messages (Flume `protocol`, `compact` by default); the
/// wire code is `thrift_rpc`, which calls it `Protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThriftProtocol {
    Compact,
    Binary,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThriftSourceConfig {
    pub bind: String,
    pub port: u16,
    /// Most connections served at once (weir's `max-connections`, 1000; see
    /// [`super::avro::rpc_source_max_connections`]). A connection past it is closed at once.
    pub max_connections: usize,
    pub protocol: ThriftProtocol,
    /// `ssl = true`: connections are TLS.
    pub tls: Option<TlsServerConfig>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThriftSinkConfig {
    pub target: RpcTarget,
    pub protocol: ThriftProtocol,
}

/// `protocol`: `compact` (Flume's default) or `binary`, in any case.
fn protocol(s: &Section) -> Result<ThriftProtocol, ConfigError> {
    match s.string_or("protocol", "compact").to_ascii_lowercase().as_str() {
        "compact" => Ok(ThriftProtocol::Compact),
        "binary" => Ok(ThriftProtocol::Binary),
        other => Err(s.error(
            Some("protocol"),
            format!("'{other}' is not a Thrift protocol weir or Flume speaks; supported: compact, binary"),
        )),
    }
}

/// Refuses `kerberos = true`; the keys that only mean something with it are accepted without
/// effect.
fn refuse_kerberos(
    s: &Section,
    what: &str,
    keys: &[&str],
    notes: &mut Vec<String>,
) -> Result<(), ConfigError> {
    if s.bool_or("kerberos", false)? {
        return Err(s.error(
            Some("kerberos"),
            format!(
                "Kerberos (SASL) is not supported by weir's thrift {what}: remove this key or \
                 set it to false (use ssl = true to protect the connection)"
            ),
        ));
    }
    for key in keys {
        s.ignored_with(key, "kerberos = false", notes);
    }
    Ok(())
}

pub fn parse_thrift_source(
    s: &Section,
    notes: &mut Vec<String>,
) -> Result<ThriftSourceConfig, ConfigError> {
    let port = s.port("port")?;
    let bind = s.required(
        "bind",
        &format!(
            "set `{}` to the address to listen on, e.g. 0.0.0.0",
            s.full("bind")
        ),
    )?;
    refuse_kerberos(s, "source", &["agent-principal", "agent-keytab"], notes)?;
    let tls = tls::server(s, notes)?;
    Ok(ThriftSourceConfig {
        bind,
        port,
        max_connections: super::avro::rpc_source_max_connections(s, notes)?,
        protocol: protocol(s)?,
        tls,
    })
}

/// The sink's config and its batch size (Flume `batch-size`).
pub fn parse_thrift_sink(
    s: &Section,
    notes: &mut Vec<String>,
) -> Result<(ThriftSinkConfig, usize), ConfigError> {
    refuse_kerberos(
        s,
        "sink",
        &["client-principal", "client-keytab", "server-principal"],
        notes,
    )?;
    let target = parse_rpc_target(s, "thrift", notes)?;
    s.accept_without_effect(
        "maxConnections",
        "each thrift sink has one connection, used by the sink's own thread",
        notes,
    );
    Ok((
        ThriftSinkConfig {
            target,
            protocol: protocol(s)?,
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

    fn props(text: &str) -> Properties {
        Properties::parse(Path::new("t.properties"), text.as_bytes()).unwrap()
    }

    #[test]
    fn defaults_are_flumes() {
        let p = props("a.sinks.k1.hostname = h\na.sinks.k1.port = 4141\n");
        let s = Section::new(&p, "a.sinks.k1.".into());
        let (c, batch) = parse_thrift_sink(&s, &mut Vec::new()).unwrap();
        assert_eq!(batch, 100);
        assert_eq!(
            c,
            ThriftSinkConfig {
                target: RpcTarget {
                    hostname: "h".into(),
                    port: 4141,
                    connect_timeout: Duration::from_secs(20),
                    request_timeout: Duration::from_secs(20),
                    reset_connection_interval: None,
                    tls: None,
                },
                protocol: ThriftProtocol::Compact,
            }
        );
        let p = props("a.sources.r1.bind = 0.0.0.0\na.sources.r1.port = 1\n");
        let s = Section::new(&p, "a.sources.r1.".into());
        let c = parse_thrift_source(&s, &mut Vec::new()).unwrap();
        assert_eq!(c.protocol, ThriftProtocol::Compact);
        assert_eq!(c.max_connections, 1000);
    }

    #[test]
    fn protocol_and_reset_interval_keys() {
        let p = props(
            "a.sinks.k1.hostname = h\na.sinks.k1.port = 1\na.sinks.k1.protocol = BINARY\n\
             a.sinks.k1.connection-reset-interval = 30\n",
        );
        let s = Section::new(&p, "a.sinks.k1.".into());
        let (c, _) = parse_thrift_sink(&s, &mut Vec::new()).unwrap();
        assert_eq!(c.protocol, ThriftProtocol::Binary);
        assert_eq!(
            c.target.reset_connection_interval,
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        for (text, prefix, want) in [
            (
                "a.sinks.k1.hostname = h\n",
                "a.sinks.k1.",
                "t.properties:1: a.sinks.k1.port: missing",
            ),
            (
                "a.sinks.k1.hostname = h\na.sinks.k1.port = 1\na.sinks.k1.kerberos = true\n",
                "a.sinks.k1.",
                "t.properties:3: a.sinks.k1.kerberos: Kerberos (SASL) is not supported",
            ),
            (
                "a.sources.r1.bind = h\na.sources.r1.port = 1\na.sources.r1.ssl = true\n",
                "a.sources.r1.",
                "t.properties:1: a.sources.r1.keystore: missing: ssl = true needs",
            ),
            (
                "a.sources.r1.bind = h\na.sources.r1.port = 1\na.sources.r1.protocol = json\n",
                "a.sources.r1.",
                "t.properties:3: a.sources.r1.protocol: 'json' is not a Thrift protocol",
            ),
        ] {
            let p = props(text);
            let s = Section::new(&p, prefix.into());
            let err = if prefix.contains("sinks") {
                parse_thrift_sink(&s, &mut Vec::new())
                    .map(|_| ())
                    .unwrap_err()
            } else {
                parse_thrift_source(&s, &mut Vec::new())
                    .map(|_| ())
                    .unwrap_err()
            }
            .to_string();
            assert!(err.starts_with(want), "{err}");
        }
    }
}
