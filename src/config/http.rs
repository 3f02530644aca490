//! The `http` source's keys (Flume's HTTPSource with its JSONHandler or BlobHandler).

use super::tls::{self, TlsServerConfig};
use super::{ConfigError, Section};

/// The handler Flume uses by default.
pub const JSON_HANDLER: &str = "org.apache.flume.source.http.JSONHandler";
/// Flume's handler taking a request's whole body as one event (it ships with the morphline
/// sink, hence the package).
pub const BLOB_HANDLER: &str = "org.apache.flume.sink.solr.morphline.BlobHandler";

/// How a request's body becomes events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpHandler {
    /// A JSON array of `{"headers": {…}, "body": "…"}`.
    Json,
    /// The whole body is one event; its headers are the query parameters and `Content-Type`.
    /// `handler.maxBlobLength`: the longest body (Flume: 100,000,000 bytes).
    Blob { max_blob_length: u64 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpSourceConfig {
    pub bind: String,
    pub port: u16,
    pub handler: HttpHandler,
    /// Longest request body accepted; longer ones get 413. weir's `maxBodyBytes` for the JSON
    /// handler, the BlobHandler's `handler.maxBlobLength`.
    pub max_body_bytes: u64,
    /// weir `maxConnections`: most connections served at once; more get 503 and are closed.
    pub max_connections: usize,
    /// `ssl = true`: HTTPS.
    pub tls: Option<TlsServerConfig>,
}

/// weir's default `maxBodyBytes`: 16 MiB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 16 * 1024 * 1024;

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
    let name = s.string_or("handler", JSON_HANDLER);
    let (handler, max_body_bytes) = match name.trim() {
        JSON_HANDLER | "JSONHandler" => {
            // Flume's handler.* keys configure a custom handler; the JSONHandler takes none.
            for (key, entry) in s.props().with_prefix(&s.full("handler.")) {
                s.entry(&format!("handler.{key}"));
                notes.push(format!(
                    "{}: {}: accepted, no effect in weir: the JSON handler has no settings",
                    entry.at(),
                    s.full(&format!("handler.{key}"))
                ));
            }
            let max = s.positive_or("maxBodyBytes", DEFAULT_MAX_BODY_BYTES)?;
            (HttpHandler::Json, max)
        }
        BLOB_HANDLER | "BlobHandler" => {
            let max = s.positive_or("handler.maxBlobLength", 100_000_000)?;
            s.accept_without_effect(
                "maxBodyBytes",
                "the BlobHandler's limit is handler.maxBlobLength",
                notes,
            );
            (
                HttpHandler::Blob {
                    max_blob_length: max,
                },
                max,
            )
        }
        other => {
            return Err(s.error(
                Some("handler"),
                format!(
                    "handler '{other}' is not supported; supported: {JSON_HANDLER} (JSONHandler), \
                     {BLOB_HANDLER} (BlobHandler)"
                ),
            ));
        }
    };
    let tls = tls::http_server(s, notes)?;
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
        handler,
        max_body_bytes,
        max_connections: s.positive_or("maxConnections", 200)? as usize,
        tls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_blob_handler_and_its_limit() {
        use crate::config::Properties;
        use std::path::Path;
        let parse = |extra: &str| {
            let text = format!("a.sources.r1.port = 80\n{extra}");
            let props = Properties::parse(Path::new("t.properties"), text.as_bytes()).unwrap();
            let s = Section::new(&props, "a.sources.r1.".into());
            parse_http(&s, &mut Vec::new()).map_err(|e| e.to_string())
        };
        let c = parse("a.sources.r1.handler = org.apache.flume.sink.solr.morphline.BlobHandler\n")
            .unwrap();
        assert_eq!(
            c.handler,
            HttpHandler::Blob {
                max_blob_length: 100_000_000
            }
        );
        assert_eq!(c.max_body_bytes, 100_000_000);
        let c =
            parse("a.sources.r1.handler = BlobHandler\na.sources.r1.handler.maxBlobLength = 5\n")
                .unwrap();
        assert_eq!(c.max_body_bytes, 5);
        let e =
            parse("a.sources.r1.handler = BlobHandler\na.sources.r1.handler.maxBlobLength = 0\n")
                .unwrap_err();
        assert!(
            e.contains("t.properties:3: a.sources.r1.handler.maxBlobLength"),
            "{e}"
        );
        let e = parse("a.sources.r1.handler = com.example.MyHandler\n").unwrap_err();
        assert!(
            e.contains("BlobHandler") && e.contains("com.example.MyHandler"),
            "{e}"
        );
        assert_eq!(parse("").unwrap().handler, HttpHandler::Json);
    }
}
