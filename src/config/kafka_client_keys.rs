//! Kafka client settings written one level too high: `kafka.security.protocol` on a Kafka
//! sink, where the producer's is `kafka.producer.security.protocol`. Flume hands only
//! `kafka.producer.*` to the producer and `kafka.consumer.*` to the consumer, so such a key
//! does nothing, in Flume as in weir, and a client meant to use TLS or SASL connects without
//! it; a note that says where the key belongs beats "unknown key".

use super::Section;

/// Notes each `kafka.*` key of the Kafka component read from `s` that no reader asked for
/// (nor one it looks like a misspelling of) and that is under neither client's prefix, with
/// the key it would be under each prefix in `clients` (`"producer"`, `"consumer"`); such a key
/// counts as read then. Called once the component's keys are read.
pub(super) fn note_misplaced(s: &Section, clients: &[&str], notes: &mut Vec<String>) {
    let under = s.full("kafka.");
    for (rest, entry) in s.props().with_prefix(&under) {
        let key = format!("kafka.{rest}");
        let in_client = ["producer.", "consumer."]
            .iter()
            .any(|p| rest.starts_with(p));
        if in_client || !s.unaccounted(&key) {
            continue;
        }
        s.entry(&key);
        let listed = |f: &dyn Fn(&str) -> String| -> String {
            clients
                .iter()
                .map(|c| f(c))
                .collect::<Vec<_>>()
                .join(" and ")
        };
        let reaches = if clients.len() > 1 {
            "reach the clients"
        } else {
            "reaches the client"
        };
        notes.push(format!(
            "{}: {under}{rest}: ignored, as in Flume: only {} {reaches}; as a client setting it \
             is {}",
            entry.at(),
            listed(&|c| format!("`kafka.{c}.*`")),
            listed(&|c| format!("`{under}{c}.{rest}`"))
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{AgentConfig, Properties};
    use std::path::Path;

    fn notes(component: &str) -> Vec<String> {
        let text = format!(
            "a.sources = r1\na.channels = c1\na.sinks = k1\n\
             a.sources.r1.type = seq\na.sources.r1.channels = c1\n\
             a.channels.c1.type = memory\n\
             a.sinks.k1.type = null\na.sinks.k1.channel = c1\n{component}"
        );
        let props = Properties::parse(Path::new("t.properties"), text.as_bytes()).unwrap();
        AgentConfig::from_properties(&props, "a").unwrap().notes
    }

    /// A client setting without its client's prefix is named with the key it belongs under;
    /// a misspelt key of the component itself keeps its misspelling hint instead, and a key
    /// of weir's read only in some cases is not taken for a client's.
    #[test]
    fn client_settings_one_level_too_high_are_named_with_their_place() {
        let sink = "a.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink\n\
                    a.sinks.k1.kafka.bootstrap.servers = 127.0.0.1:9092\n\
                    a.sinks.k1.kafka.security.protocol = SSL\n\
                    a.sinks.k1.kafka.topik = t\n\
                    a.sinks.k1.kafka.deadLetterDir = /tmp/dead\n";
        assert_eq!(
            notes(sink),
            [
                "t.properties:13: a.sinks.k1.kafka.deadLetterDir: ignored with \
                 kafka.onUnsendable = block",
                "t.properties:11: a.sinks.k1.kafka.security.protocol: ignored, as in Flume: only \
                 `kafka.producer.*` reaches the client; as a client setting it is \
                 `a.sinks.k1.kafka.producer.security.protocol`",
                "t.properties:12: a.sinks.k1.kafka.topik: unknown key, ignored (it looks like a \
                 misspelling of a.sinks.k1.kafka.topic)"
            ]
        );
        let channel = "a.channels.c1.type = kafka\n\
                       a.channels.c1.kafka.bootstrap.servers = 127.0.0.1:9092\n\
                       a.channels.c1.kafka.sasl.mechanism = PLAIN\n";
        assert_eq!(
            notes(channel),
            [
                "t.properties:11: a.channels.c1.kafka.sasl.mechanism: ignored, as in Flume: only \
                 `kafka.producer.*` and `kafka.consumer.*` reach the clients; as a client \
                 setting it is `a.channels.c1.kafka.producer.sasl.mechanism` and \
                 `a.channels.c1.kafka.consumer.sasl.mechanism`"
            ]
        );
        let source = "a.sources.r1.type = kafka\n\
                      a.sources.r1.kafka.bootstrap.servers = 127.0.0.1:9092\n\
                      a.sources.r1.kafka.topics = t\n\
                      a.sources.r1.kafka.auto.offset.reset = earliest\n\
                      a.sources.r1.batchSize = 100\n";
        assert_eq!(
            notes(source),
            [
                "t.properties:12: a.sources.r1.kafka.auto.offset.reset: ignored, as in Flume: \
                 only `kafka.consumer.*` reaches the client; as a client setting it is \
                 `a.sources.r1.kafka.consumer.auto.offset.reset`"
            ]
        );
    }
}
