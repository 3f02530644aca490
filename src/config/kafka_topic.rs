//! Kafka topic names in a configuration: the Kafka sink's, channel's and source's topics are
//! checked against the names a broker accepts, so that a name Kafka refuses stops the start
//! with its line, instead of a sink that retries for ever with only librdkafka's
//! "Message timed out" to show for it (a topic written `web-logs   # comment`: Java reads the
//! comment as part of the value).
//!
//! Hand-written: the rule is Kafka's own (`org.apache.kafka.common.internals.Topic`: ASCII
//! letters, digits, `.`, `_` and `-`, at most 249 of them, and neither `.` nor `..`), a few
//! lines that no client crate exposes as a function.

use super::{ConfigError, Section};

/// The longest topic name Kafka accepts.
const MAX_LENGTH: usize = 249;

/// Why `name` is not a topic name Kafka accepts, if it is not one (said to follow "it"). The
/// Kafka sink asks it of each topic an event's headers make.
pub fn problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("is empty".into());
    }
    if name == "." || name == ".." {
        return Some(format!("is '{name}', a name Kafka reserves"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Some(format!("holds {c:?}"));
    }
    if name.len() > MAX_LENGTH {
        return Some(format!(
            "is {} characters long, over Kafka's {MAX_LENGTH}",
            name.len()
        ));
    }
    None
}

/// The key a Kafka sink or channel read its topic from: `kafka.topic`, or Flume's deprecated
/// `topic` when only that is set.
pub(super) fn key(s: &Section) -> &'static str {
    if s.string("kafka.topic").is_none() && s.string("topic").is_some() {
        "topic"
    } else {
        "kafka.topic"
    }
}

/// Refuses `topic`, read from `key`, unless Kafka accepts it as a topic name. With
/// `placeholders` (the sink's `%{header}` substitutions), only the text outside them is
/// checked, as what the headers hold is known only per event.
pub(super) fn check(
    s: &Section,
    key: &str,
    topic: &str,
    placeholders: bool,
) -> Result<(), ConfigError> {
    let (text, whole) = if placeholders && topic.contains("%{") {
        (without_placeholders(topic), false)
    } else {
        (topic.to_owned(), true)
    };
    let problem = if whole {
        problem(&text)
    } else {
        // Only characters can be judged here: lengths and `.`/`..` depend on the headers.
        text.chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
            .map(|c| format!("holds {c:?}"))
    };
    match problem {
        None => Ok(()),
        Some(why) => Err(s.error(
            Some(key),
            format!(
                "'{topic}' is not a Kafka topic name: it {why}; a topic name holds only ASCII \
                 letters, digits, '.', '_' and '-' (at most {MAX_LENGTH})"
            ),
        )),
    }
}

/// `topic` with each complete `%{name}` removed.
fn without_placeholders(topic: &str) -> String {
    let mut out = String::new();
    let mut rest = topic;
    while let Some(at) = rest.find("%{") {
        match rest[at..].find('}') {
            Some(end) => {
                out.push_str(&rest[..at]);
                rest = &rest[at + end + 1..];
            }
            None => break,
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Properties;

    fn checked(value: &str, placeholders: bool) -> Result<(), String> {
        let text = format!("a.sinks.k1.type = kafka\na.sinks.k1.kafka.topic = {value}\n");
        let props = Properties::parse(Path::new("t.properties"), text.as_bytes()).unwrap();
        let s = Section::new(&props, "a.sinks.k1.".into());
        check(&s, "kafka.topic", value, placeholders).map_err(|e| e.to_string())
    }

    #[test]
    fn kafkas_topic_rule_is_applied_with_the_line() {
        for ok in ["web-logs", "a.b_c-D9", &"x".repeat(249)] {
            assert_eq!(checked(ok, false), Ok(()), "{ok}");
        }
        let e = checked("web-logs     # route by selector", false).unwrap_err();
        assert!(
            e.starts_with(
                "t.properties:2: a.sinks.k1.kafka.topic: 'web-logs     # route by selector' is \
                 not a Kafka topic name: it holds ' '"
            ) && e.contains("the `#` and what follows are part of it"),
            "{e}"
        );
        assert!(
            checked("..", false)
                .unwrap_err()
                .contains("not a Kafka topic name: it is '..', a name Kafka reserves;")
        );
        assert!(
            checked(&"x".repeat(250), false)
                .unwrap_err()
                .contains("250 characters long")
        );
        assert!(
            checked("logs/app", false)
                .unwrap_err()
                .contains("holds '/'")
        );
    }

    #[test]
    fn header_placeholders_are_left_to_the_events() {
        assert_eq!(checked("logs-%{app}", true), Ok(()));
        assert_eq!(checked("%{topic}", true), Ok(()));
        assert!(
            checked("logs %{app}", true)
                .unwrap_err()
                .contains("holds ' '")
        );
        // Without substitution (the channel, the source), `%{` is just two bad characters.
        assert!(
            checked("logs-%{app}", false)
                .unwrap_err()
                .contains("holds '%'")
        );
        // An unclosed placeholder is sent as written, so it is checked as written.
        assert!(
            checked("odd-%{app", true)
                .unwrap_err()
                .contains("holds '%'")
        );
    }
}
