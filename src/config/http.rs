//! The `http` source's keys (Flume's HTTPSource with its JSONHandler).

use super::{ConfigError, Section};

/// The handler Flume uses by default, and the only one weir has.
pub const JSON_HANDLER: &str = "org.apache.flume.source.http.JSONHandler";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpSourceConfig {
    pub bind: String,
    pub port: u16,
    /// weir `maxBodyBytes`: longest request body accepted; longer ones get 413.
    pub max_body_bytes: u64,
    /// weir `maxConnections`: most connections served at once; more get 503 and are closed.
    pub max_connections: usize,
}

/// weir's default `maxBodyBytes`: 16 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 16 * 1024 * 1024;

/// Flume's TLS keys: without `ssl = true` (which is refused) they mean nothing.
const TLS_KEYS: &[&str] = &[
    "keystore",
    "keystore-password",
    "keystorePassword",
    "keystore-type",
    "exclude-protocols",
    "excludeProtocols",
    "include-protocols",
    "exclude-cipher-suites",
    "include-cipher-suites",
];

/// Prefixes of Jetty bean properties Flume passes through (`QueuedThreadPool.MaxThreads`...).
const JETTY_PREFIXES: &[&str] = &[
    "QueuedThreadPool.",
    "HttpConfiguration.",
    "SslContextFactory.",
    "ServerConnector.",
];

pub(super) fn parse_http(
    s: &Section,
    notes: &mut Vec<String>,
) -> Result<HttpSourceConfig, ConfigError> {
    let port = s.port("port")?;
    let handler = s.string_or("handler", JSON_HANDLER);
    if handler.trim() != JSON_HANDLER && handler.trim() != "JSONHandler" {
        return Err(s.error(
            Some("handler"),
            format!(
                "handler '{handler}' is not supported; supported: {JSON_HANDLER} (JSONHandler)"
            ),
        ));
    }
    // Flume's handler.* keys configure a custom handler; the JSONHandler takes none.
    for (key, entry) in s.props().with_prefix(&s.full("handler.")) {
        s.entry(&format!("handler.{key}"));
        notes.push(format!(
            "{}: {}: accepted, no effect in weir: the JSON handler has no settings",
            entry.at(),
            s.full(&format!("handler.{key}"))
        ));
    }
    // `enableSSL` is Flume's older name for `ssl`.
    for key in ["ssl", "enableSSL"] {
        if s.bool_or(key, false)? {
            return Err(s.error(
                Some(key),
                "TLS is not supported by weir's http source: terminate TLS in a reverse proxy in front of it, and remove this key or set it to false".into(),
            ));
        }
    }
    for key in TLS_KEYS {
        s.accept_without_effect(
            key,
            "weir serves plain HTTP only (ssl = true is refused)",
            notes,
        );
    }
    for prefix in JETTY_PREFIXES {
        for (key, entry) in s.props().with_prefix(&s.full(prefix)) {
            s.entry(&format!("{prefix}{key}"));
            notes.push(format!(
                "{}: {}: accepted, no effect in weir: weir does not run Jetty (see maxConnections)",
                entry.at(),
                s.full(&format!("{prefix}{key}"))
            ));
        }
    }
    Ok(HttpSourceConfig {
        bind: s.string_or("bind", "0.0.0.0"),
        port,
        max_body_bytes: s.positive_or("maxBodyBytes", DEFAULT_MAX_BODY_BYTES)?,
        max_connections: s.positive_or("maxConnections", 200)? as usize,
    })
}
