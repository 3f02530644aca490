//! The keys of the `http` sink (Flume's HttpSink): where events are POSTed, the timeouts and
//! headers of the request, and the rules that turn a response's status code into the fate of
//! the event (commit or roll back) and of the sink (go on or back off).

use std::collections::BTreeMap;
use std::time::Duration;

use super::{ConfigError, Section};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpSinkConfig {
    /// The `http://` or `https://` URL each event's body is POSTed to (Flume `endpoint`).
    pub endpoint: String,
    /// Flume `connectTimeout` (5000 ms).
    pub connect_timeout: Duration,
    /// Flume `requestTimeout` (5000 ms): the longest wait for the response.
    pub request_timeout: Duration,
    /// Flume `contentTypeHeader` (text/plain).
    pub content_type: String,
    /// Flume `acceptHeader` (text/plain).
    pub accept: String,
    /// Whether a status makes the sink back off (`defaultBackoff` true, `backoff.CODE`).
    pub backoff: StatusRule,
    /// Whether a status rolls the event back to be sent again (`defaultRollback` true,
    /// `rollback.CODE`); otherwise the event's take is committed.
    pub rollback: StatusRule,
    /// `defaultIncrementMetrics` false, `incrementMetrics.CODE`: read and checked, no effect in
    /// weir (its EventDrainSuccessCount counts every event whose take is committed).
    pub increment_metrics: StatusRule,
    /// For an https endpoint, the agent's global trust store (PEM), which replaces the
    /// system's roots as the JVM's `javax.net.ssl.trustStore` does for Flume's sink.
    pub trusted: Option<String>,
}

/// A yes/no decision per HTTP status: an exact code (`503`) wins over its class (`5XX`), which
/// wins over the default (Flume's `findOverrideValue`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusRule {
    pub default: bool,
    /// `NNN` overrides.
    pub exact: BTreeMap<u16, bool>,
    /// `NXX` overrides, by the class digit N.
    pub class: BTreeMap<u16, bool>,
}

impl StatusRule {
    pub fn new(default: bool) -> StatusRule {
        StatusRule {
            default,
            exact: BTreeMap::new(),
            class: BTreeMap::new(),
        }
    }

    /// The decision for status `code`.
    pub fn resolve(&self, code: u16) -> bool {
        self.exact
            .get(&code)
            .or_else(|| self.class.get(&(code / 100)))
            .copied()
            .unwrap_or(self.default)
    }
}

/// A status pattern as written after `backoff.`: `NNN` (100-599) or `NXX` (N 1-5).
enum Pattern {
    Exact(u16),
    Class(u16),
}

fn pattern(text: &str) -> Option<Pattern> {
    let b = text.as_bytes();
    if b.len() != 3 || !(b'1'..=b'5').contains(&b[0]) {
        return None;
    }
    if &b[1..] == b"XX" {
        return Some(Pattern::Class(u16::from(b[0] - b'0')));
    }
    if b[1..].iter().all(u8::is_ascii_digit) {
        return text.parse().ok().map(Pattern::Exact);
    }
    None
}

/// `default_key` (default `default`) and the `prefix.CODE` overrides.
fn status_rule(
    s: &Section,
    default_key: &str,
    default: bool,
    prefix: &str,
) -> Result<StatusRule, ConfigError> {
    let mut rule = StatusRule::new(s.bool_or(default_key, default)?);
    let codes: Vec<String> = s
        .props()
        .with_prefix(&s.full(&format!("{prefix}.")))
        .map(|(k, _)| k.to_owned())
        .collect();
    for code in codes {
        let key = format!("{prefix}.{code}");
        let Some(p) = pattern(&code) else {
            return Err(s.error(
                Some(&key),
                format!(
                    "'{code}' is not a status code (100-599, e.g. 503) or a class of them \
                     (1XX-5XX, capital X, e.g. 5XX)"
                ),
            ));
        };
        // Read through the section, so the key counts as known.
        let value = s.bool_or(&key, rule.default)?;
        match p {
            Pattern::Exact(c) => rule.exact.insert(c, value),
            Pattern::Class(c) => rule.class.insert(c, value),
        };
    }
    Ok(rule)
}

/// Checks that `value` (of `key`) can be sent as an HTTP header value.
fn header(s: &Section, key: &str, default: &str) -> Result<String, ConfigError> {
    let value = s.string_or(key, default);
    if ureq::http::HeaderValue::from_str(&value).is_err() {
        return Err(s.error(
            Some(key),
            format!("'{value}' cannot be sent as an HTTP header value (control characters?)"),
        ));
    }
    Ok(value)
}

/// Checks the endpoint: an absolute `http://` or `https://` URL with a host.
fn endpoint(s: &Section) -> Result<String, ConfigError> {
    let url = s.required(
        "endpoint",
        &format!(
            "set `{}` to the URL to POST events to, e.g. http://localhost:8080/events",
            s.full("endpoint")
        ),
    )?;
    let bad = |why: &str| s.error(Some("endpoint"), format!("'{url}' {why}"));
    let uri: ureq::http::Uri = url
        .parse()
        .map_err(|e| bad(&format!("is not a URL: {e}")))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") if cfg!(feature = "https") => {}
        Some("https") => {
            return Err(bad(
                "is https, and this weir was built without the `https` feature \
                 (cargo build --features https)",
            ));
        }
        Some(other) => {
            return Err(bad(&format!(
                "has scheme '{other}': the http sink POSTs to http:// or https:// URLs"
            )));
        }
        None => return Err(bad("is not an absolute http:// or https:// URL")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    Ok(url)
}

/// A timeout in milliseconds, which Flume requires to be positive.
fn timeout(s: &Section, key: &str) -> Result<Duration, ConfigError> {
    match s.string(key) {
        None => Ok(Duration::from_millis(5000)),
        Some(v) => match v.parse::<u64>() {
            Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
            _ => Err(s.error(
                Some(key),
                format!("'{v}' is not a positive whole number of milliseconds"),
            )),
        },
    }
}

/// The sink's config and its batch size (weir `batchSize`, 100: events per take transaction;
/// each is still one request).
pub fn parse_http_sink(
    s: &Section,
    notes: &mut Vec<String>,
) -> Result<(HttpSinkConfig, usize), ConfigError> {
    let endpoint = endpoint(s)?;
    let trusted = if endpoint.starts_with("https:") {
        super::tls::global_trust_store(s, "endpoint")?
    } else {
        None
    };
    let config = HttpSinkConfig {
        endpoint,
        trusted,
        connect_timeout: timeout(s, "connectTimeout")?,
        request_timeout: timeout(s, "requestTimeout")?,
        content_type: header(s, "contentTypeHeader", "text/plain")?,
        accept: header(s, "acceptHeader", "text/plain")?,
        backoff: status_rule(s, "defaultBackoff", true, "backoff")?,
        rollback: status_rule(s, "defaultRollback", true, "rollback")?,
        increment_metrics: status_rule(s, "defaultIncrementMetrics", false, "incrementMetrics")?,
    };
    let why = "EventDrainSuccessCount counts every event whose take is committed";
    s.accept_without_effect("defaultIncrementMetrics", why, notes);
    for (code, _) in s.props().with_prefix(&s.full("incrementMetrics.")) {
        s.accept_without_effect(&format!("incrementMetrics.{code}"), why, notes);
    }
    // One note for both defaults that make a 200 response a failure, naming every key to set:
    // one at a time, a fixed configuration would only reveal the next.
    let (rollback, backoff) = (config.rollback.resolve(200), config.backoff.resolve(200));
    if rollback || backoff {
        let mut what = Vec::new();
        let mut fix = Vec::new();
        if rollback {
            what.push(
                "rolls the event back, so it is sent again and again (Flume's default, \
                       defaultRollback = true)",
            );
            fix.push(format!("`{}` = false", s.full("rollback.2XX")));
        }
        if backoff {
            what.push(
                "makes the sink back off, up to 5 s per event (Flume's default, \
                       defaultBackoff = true)",
            );
            fix.push(format!("`{}` = false", s.full("backoff.2XX")));
        }
        let key = if rollback {
            "defaultRollback"
        } else {
            "defaultBackoff"
        };
        notes.push(format!(
            "{}: a 200 response {}; set {}",
            s.located(key),
            what.join(" and "),
            fix.join(" and ")
        ));
    }
    Ok((config, s.positive_or("batchSize", 100)? as usize))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Properties;

    fn parse(text: &str) -> Result<(HttpSinkConfig, usize, Vec<String>), String> {
        let props = Properties::parse(Path::new("agent.properties"), text.as_bytes())
            .map_err(|e| e.to_string())?;
        let s = Section::new(&props, "a.sinks.k1.".into());
        let mut notes = Vec::new();
        parse_http_sink(&s, &mut notes)
            .map(|(c, b)| (c, b, notes))
            .map_err(|e| e.to_string())
    }

    fn error(text: &str) -> String {
        match parse(text) {
            Ok(c) => panic!("accepted: {:?}", c.0),
            Err(e) => e,
        }
    }

    const ENDPOINT: &str = "a.sinks.k1.endpoint = http://localhost:8080/someuri\n";

    #[test]
    fn only_an_endpoint_gives_flumes_defaults() {
        let (c, batch, notes) = parse(ENDPOINT).unwrap();
        assert_eq!(c.endpoint, "http://localhost:8080/someuri");
        assert_eq!(c.connect_timeout, Duration::from_millis(5000));
        assert_eq!(c.request_timeout, Duration::from_millis(5000));
        assert_eq!(
            (c.content_type.as_str(), c.accept.as_str()),
            ("text/plain", "text/plain")
        );
        assert_eq!(c.backoff, StatusRule::new(true));
        assert_eq!(c.rollback, StatusRule::new(true));
        assert_eq!(c.increment_metrics, StatusRule::new(false));
        assert_eq!(batch, 100);
        // Every response, 200 too, rolls back and backs off: worth telling the user, in one
        // note naming both keys to set, at the sink's first line.
        let note = notes
            .iter()
            .find(|n| n.contains("sent again and again"))
            .unwrap_or_else(|| panic!("{notes:?}"));
        assert!(
            note.starts_with("agent.properties:1: a.sinks.k1.defaultRollback: a 200 response")
                && note.contains("back off")
                && note.ends_with(
                    "set `a.sinks.k1.rollback.2XX` = false and `a.sinks.k1.backoff.2XX` = false"
                ),
            "{note}"
        );
    }

    #[test]
    fn an_exact_code_wins_over_its_class_which_wins_over_the_default() {
        let (c, _, notes) = parse(&format!(
            "{ENDPOINT}a.sinks.k1.defaultRollback = true\n\
             a.sinks.k1.rollback.4XX = false\n\
             a.sinks.k1.rollback.429 = true\n\
             a.sinks.k1.rollback.200 = false\n\
             a.sinks.k1.backoff.2XX = false\n\
             a.sinks.k1.incrementMetrics.200 = true\n"
        ))
        .unwrap();
        let r = &c.rollback;
        assert!(!r.resolve(400) && !r.resolve(404) && !r.resolve(499));
        assert!(r.resolve(429), "the exact code over its class");
        assert!(!r.resolve(200));
        assert!(
            r.resolve(201) && r.resolve(503) && r.resolve(302),
            "the default"
        );
        assert!(!c.backoff.resolve(200) && !c.backoff.resolve(204));
        assert!(c.backoff.resolve(503));
        assert!(c.increment_metrics.resolve(200) && !c.increment_metrics.resolve(201));
        assert!(
            notes.iter().all(|n| !n.contains("again and again")),
            "{notes:?}"
        );
        assert!(
            notes
                .iter()
                .any(|n| n.contains("incrementMetrics") && n.contains("no effect")),
            "{notes:?}"
        );
        let (c, _, _) = parse(&format!("{ENDPOINT}a.sinks.k1.defaultBackoff = false\n")).unwrap();
        assert!(!c.backoff.resolve(503) && !c.backoff.resolve(200));
    }

    #[test]
    fn bad_values_name_file_line_and_key() {
        let err = error(&format!("{ENDPOINT}a.sinks.k1.connectTimeout = 2s\n"));
        assert!(
            err.starts_with(
                "agent.properties:2: a.sinks.k1.connectTimeout: '2s' is not a positive"
            ),
            "{err}"
        );
        let err = error(&format!("{ENDPOINT}\na.sinks.k1.requestTimeout = 0\n"));
        assert!(
            err.starts_with("agent.properties:3: a.sinks.k1.requestTimeout: '0' is not a positive"),
            "{err}"
        );
        for code in ["2xx", "20", "2000", "600", "6XX", "0XX", "5X0", "abc"] {
            let err = error(&format!("{ENDPOINT}a.sinks.k1.rollback.{code} = false\n"));
            assert!(
                err.starts_with(&format!(
                    "agent.properties:2: a.sinks.k1.rollback.{code}: '{code}' is not a status code"
                )),
                "{err}"
            );
        }
        let err = error(&format!("{ENDPOINT}a.sinks.k1.backoff.503 = maybe\n"));
        assert!(
            err.starts_with(
                "agent.properties:2: a.sinks.k1.backoff.503: 'maybe' is not true or false"
            ),
            "{err}"
        );
        let err = error("a.sinks.k1.channel = c1\n");
        assert!(
            err.starts_with("agent.properties:1: a.sinks.k1.endpoint: missing: set"),
            "{err}"
        );
        for url in [
            "ftp://host/x",
            "localhost:8080/x",
            "/events",
            "http://",
            "not a url",
        ] {
            let err = error(&format!("a.sinks.k1.endpoint = {url}\n"));
            assert!(
                err.starts_with(&format!(
                    "agent.properties:1: a.sinks.k1.endpoint: '{url}' "
                )),
                "{err}"
            );
        }
        let err = error(&format!("{ENDPOINT}a.sinks.k1.acceptHeader = a\\u0007b\n"));
        assert!(
            err.starts_with("agent.properties:2: a.sinks.k1.acceptHeader: "),
            "{err}"
        );
    }

    #[test]
    fn https_is_accepted_only_with_the_https_feature() {
        let r = parse("a.sinks.k1.endpoint = https://logs.example.com/in\n");
        if cfg!(feature = "https") {
            assert!(r.is_ok(), "{r:?}");
        } else {
            assert!(r.unwrap_err().contains("`https` feature"));
        }
    }
}
