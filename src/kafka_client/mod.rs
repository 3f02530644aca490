//! The librdkafka configuration of weir's Kafka clients — the sink's producer, built from its
//! producer properties (`config::kafka_producer`), and the source's consumer — with librdkafka
//! itself as the judge of each property. Shared by `sink::kafka`, `source::kafka` and
//! `channel::kafka`, so it belongs to none: a key it does not know (a Java-only property the
//! translation table does not list, or a misspelling) is left out with a note, as Java's producer warns about and ignores unknown keys; a value it refuses
//! is an error naming the configuration file, line and key it came from. The Kafka source's
//! and channel's consumer properties, and the channel's producer ones, are judged the same way
//! ([`apply`]). [`client_log`] passes what the clients report on to weir's log, and
//! [`offset_commits`] commits the source's and the channel's consumer offsets without letting
//! a broker that stopped answering hold them up. [`assignment`] tells when a consumer has gone
//! long without partitions.

pub mod assignment;
pub mod client_log;
pub mod offset_commits;

/// The record header in which the Kafka sink sends each event's channel offset, so that a
/// consumer can recognise a batch delivered twice. It belongs to one hop: the sink never
/// forwards an event header of that name, and the source does not make it an event header
/// unless `header.*` asks for it.
pub const OFFSET_HEADER: &str = "weir.offset";

/// Logged (a warning) when a rebalance gives a consumer no partition: it then reads nothing,
/// which looks like an idle topic unless said (audit 36: after a SIGKILL the group waits out
/// the killed member's session before anything is reassigned).
pub const NOTHING_ASSIGNED: &str = "kafka: the group gave this consumer no partition, so it \
    reads nothing until the next rebalance: more consumers in the group than partitions, or a \
    member that died still counted until its session times out (kafka.consumer.session.timeout.ms)";

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaConfRes;

use crate::config::{KafkaSinkConfig, ProducerProperty};

/// The client configuration for sink `name`, and notes about the properties left out.
pub fn build(name: &str, config: &KafkaSinkConfig) -> anyhow::Result<(ClientConfig, Vec<String>)> {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", &config.bootstrap_servers);
    let mut notes = Vec::new();
    apply(
        &mut cc,
        &format!("sink {name}"),
        &config.producer,
        &mut notes,
    )?;
    cc.set_log_level(RDKafkaLogLevel::Warning);
    Ok((cc, notes))
}

/// Sets each of `properties` in `cc` that librdkafka accepts on its own; one it does not know
/// is left out with a note (a user's) or refused (weir's own), a value it refuses is an error
/// naming where it was set. `component` (e.g. `sink k1`) names weir's defaults in messages.
/// The Kafka source's consumer properties go through here too.
pub fn apply(
    cc: &mut ClientConfig,
    component: &str,
    properties: &[ProducerProperty],
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    for p in properties {
        let alone = ClientConfig::new()
            .set(&p.key, &p.value)
            .create_native_config();
        match alone {
            Ok(_) => {
                cc.set(&p.key, &p.value);
            }
            Err(KafkaError::ClientConfig(RDKafkaConfRes::RD_KAFKA_CONF_UNKNOWN, ..))
                if p.origin.is_some() =>
            {
                notes.push(format!(
                    "{}: not a librdkafka property (Java-only?), not used",
                    where_set(component, p)
                ));
            }
            Err(KafkaError::ClientConfig(_, description, ..)) => {
                anyhow::bail!("{}: {description}", where_set(component, p))
            }
            Err(e) => anyhow::bail!("{}: {e}", where_set(component, p)),
        }
    }
    Ok(())
}

/// Explains a refusal at client creation, which judges the properties together (`acks` against
/// `enable.idempotence`, a SASL mechanism not built in): names where each property the message
/// mentions was set.
pub fn explain_refusal(config: &KafkaSinkConfig, message: &str) -> String {
    explain_refusal_of(&config.producer, message)
}

/// [`explain_refusal`] for any client's properties (the Kafka channel's producer and consumer).
pub fn explain_refusal_of(properties: &[ProducerProperty], message: &str) -> String {
    let mentioned: Vec<&str> = properties
        .iter()
        .filter(|p| message.contains(&format!("`{}`", p.key)) || message.contains(&p.key))
        .filter_map(|p| p.origin.as_deref())
        .collect();
    if mentioned.is_empty() {
        message.to_owned()
    } else {
        format!("{} ({})", message, mentioned.join("; "))
    }
}

fn where_set(component: &str, p: &ProducerProperty) -> String {
    match &p.origin {
        // Named differently in librdkafka than in the configuration: say both.
        Some(origin) if !origin.ends_with(&format!(".{}", p.key)) => {
            format!("{origin} (librdkafka's {})", p.key)
        }
        Some(origin) => origin.clone(),
        None => format!("{component}: weir's default {} = {}", p.key, p.value),
    }
}

/// A client context that logs nothing. `weir agent --check` creates clients only to have
/// librdkafka judge their configuration; what their first connection attempts report before
/// they are dropped (an unresolvable broker, say) is not the check's business and would follow
/// "configuration OK" on the terminal.
pub struct QuietContext;

impl rdkafka::ClientContext for QuietContext {
    fn log(&self, _: RDKafkaLogLevel, _: &str, _: &str) {}
    fn error(&self, _: KafkaError, _: &str) {}
}

impl rdkafka::consumer::ConsumerContext for QuietContext {}

impl rdkafka::producer::ProducerContext for QuietContext {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::producer::DeliveryResult<'_>, _: ()) {}
}
