//! Reads records back from a topic with an rdkafka consumer, as another client of the broker
//! would.

use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::{Offset, TopicPartitionList};

/// One record read back from the broker.
#[derive(Clone, Debug)]
pub struct Record {
    pub partition: i32,
    pub key: Option<Vec<u8>>,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl Record {
    pub fn header(&self, k: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(hk, _)| hk == k)
            .map(|(_, v)| v.as_str())
    }

    pub fn offset_header(&self) -> u64 {
        self.header("weir.offset")
            .and_then(|v| v.parse().ok())
            .expect("weir.offset header")
    }
}

/// Reads every partition of `topic` from the beginning until `want` records arrived or `within`
/// passed (then returns what it has).
pub fn consume(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    want: usize,
    within: Duration,
) -> Vec<Record> {
    consume_until(
        bootstrap,
        topic,
        partitions,
        |got| got.len() >= want,
        within,
    )
}

/// Every line of `lines` has arrived (duplicates do not count twice).
pub fn has_all(lines: &[String]) -> impl Fn(&[Record]) -> bool + '_ {
    move |got: &[Record]| {
        let seen: std::collections::HashSet<&[u8]> = got.iter().map(|r| &r.body[..]).collect();
        lines.iter().all(|l| seen.contains(l.as_bytes()))
    }
}

/// Reads every partition of `topic` from the beginning until `done` holds or `within` passed.
pub fn consume_until(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    done: impl Fn(&[Record]) -> bool,
    within: Duration,
) -> Vec<Record> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("weir-test-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let end = Instant::now() + within;
    // `done` is checked only when the consumer has caught up and something new came since the
    // last check: checking at every record would be quadratic.
    let mut unchecked = true;
    while Instant::now() < end {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                unchecked = true;
                out.push(Record {
                    partition: m.partition(),
                    key: m.key().map(<[u8]>::to_vec),
                    body: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                    headers: m
                        .headers()
                        .map(|h| {
                            h.iter()
                                .map(|h| {
                                    (
                                        h.key.to_owned(),
                                        String::from_utf8_lossy(h.value.unwrap_or_default())
                                            .into_owned(),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                })
            }
            Some(Err(e)) => eprintln!("consumer: {e}"),
            None => {
                if unchecked && done(&out) {
                    break;
                }
                unchecked = false;
            }
        }
    }
    out
}
