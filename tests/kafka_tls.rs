//! Kafka over mutual TLS with the Java key and trust stores a Flume config names: the sink
//! (JKS stores, a key password of its own) and the Kafka source (PKCS#12 stores) reach the
//! broker through a TLS front that checks client certificates (`support::TlsProxy`; tansu
//! has no TLS listener), and every line arrives. A trust store without the broker's CA, or no
//! key store, delivers nothing, and the agent's log says why.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::{
    Broker, Client, TlsProxy, agent_logs, free_port, java_stores, kafka_config, logged_events,
    metric, source_accepted, start_logged, wait_until,
};

const TOPIC: &str = "secured";

/// A broker whose every advertised connection goes through a TLS proxy.
fn broker_behind_tls() -> Option<(Broker, TlsProxy)> {
    let (port, front) = (free_port(), free_port());
    let broker = Broker::start_advertising(port, front)?;
    let proxy = TlsProxy::start(front, port);
    Some((broker, proxy))
}

fn store(name: &str) -> String {
    java_stores().join(name).display().to_string()
}

/// The Java client keys of a Flume config for TLS with `truststore` and, if given, `keystore`.
fn tls_keys(prefix: &str, truststore: &str, keystore: Option<(&str, &str)>) -> String {
    let mut keys = format!(
        "{prefix}security.protocol = SSL\n\
         {prefix}ssl.truststore.location = {}\n\
         {prefix}ssl.truststore.password = trust-pass\n",
        store(truststore)
    );
    if let Some((keystore, key_password)) = keystore {
        keys.push_str(&format!(
            "{prefix}ssl.keystore.location = {}\n\
             {prefix}ssl.keystore.password = store-pass\n\
             {prefix}ssl.key.password = {key_password}\n",
            store(keystore)
        ));
    }
    keys
}

/// An agent reading `TOPIC` with the Kafka source into a file channel in `dir`.
fn source_config(dir: &Path, bootstrap: &str, tls: &str) -> PathBuf {
    let text = format!(
        "a.sources = r1\na.channels = c1\n\
         a.sources.r1.type = org.apache.flume.source.kafka.KafkaSource\na.sources.r1.channels = c1\n\
         a.sources.r1.kafka.bootstrap.servers = {bootstrap}\na.sources.r1.kafka.topics = {TOPIC}\n\
         a.sources.r1.kafka.consumer.group.id = weir-tls\n\
         a.sources.r1.kafka.consumer.auto.offset.reset = earliest\n\
         a.sources.r1.batchSize = 50\na.sources.r1.batchDurationMillis = 200\n\
         a.channels.c1.type = file\na.channels.c1.checkpointDir = {d}/ckpt\n\
         a.channels.c1.dataDirs = {d}/log\na.channels.c1.minimumRequiredSpace = 0\n{tls}",
        d = dir.display()
    );
    let path = dir.join("agent.properties");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn java_stores_carry_the_sink_and_the_source_over_mutual_tls() {
    let Some((broker, proxy)) = broker_behind_tls() else {
        return;
    };
    broker.create_topic(TOPIC, 1);

    // netcat → file channel → Kafka sink, with JKS stores.
    let sink_dir = tempfile::tempdir().unwrap();
    let netcat = free_port();
    // Java's cipher suite names, which librdkafka takes only as OpenSSL's.
    let tls = tls_keys(
        "a.sinks.k1.kafka.producer.",
        "truststore.jks",
        Some(("keystore.jks", "key-pass")),
    ) + "a.sinks.k1.kafka.producer.ssl.cipher.suites = \
         TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_AES_256_GCM_SHA384\n";
    let cfg = kafka_config(sink_dir.path(), netcat, &proxy.bootstrap(), TOPIC, &tls);
    let (mut sink_agent, sink_metrics) = start_logged(sink_dir.path(), &cfg);
    let mut client = Client::new(netcat);
    let lines: Vec<String> = (0..200).map(|i| format!("secret-{i:04}")).collect();
    for l in &lines {
        assert!(client.send(l), "line {l} not acknowledged");
    }
    wait_until("the sink's 200 deliveries", || {
        metric(sink_metrics, "SINK.k1", "EventDrainSuccessCount").unwrap_or(0) >= 200
    });
    // Flume's KafkaSinkCounter timer: acknowledgements over TLS take some milliseconds.
    let sent = metric(sink_metrics, "SINK.k1", "KafkaEventSendTimer");
    assert!(sent.is_some_and(|ms| ms > 0), "{sent:?}");
    assert!(sink_agent.stop(), "the sink's agent did not stop cleanly");

    // Kafka source → file channel, with PKCS#12 stores.
    let source_dir = tempfile::tempdir().unwrap();
    let tls = tls_keys(
        "a.sources.r1.kafka.consumer.",
        "truststore.p12",
        Some(("keystore.p12", "store-pass")),
    ) + "a.sources.r1.kafka.consumer.ssl.cipher.suites = TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n";
    let cfg = source_config(source_dir.path(), &proxy.bootstrap(), &tls);
    let (mut source_agent, source_metrics) = start_logged(source_dir.path(), &cfg);
    wait_until("the source's 200 events", || {
        source_accepted(source_metrics) >= 200
    });
    // Flume's KafkaSourceCounter: batches wait for records (batchDurationMillis).
    let got = metric(source_metrics, "SOURCE.r1", "KafkaEventGetTimer");
    assert!(got.is_some_and(|ms| ms > 0), "{got:?}");
    for name in ["KafkaCommitTimer", "KafkaEmptyCount"] {
        assert!(
            metric(source_metrics, "SOURCE.r1", name).is_some(),
            "{name}"
        );
    }
    assert!(
        source_agent.stop(),
        "the source's agent did not stop cleanly"
    );
    let got: BTreeSet<String> = logged_events(&source_dir.path().join("log"))
        .into_iter()
        .map(|e| String::from_utf8_lossy(&e.body).into_owned())
        .collect();
    assert_eq!(got, lines.iter().cloned().collect());
    assert!(proxy.refused().is_empty(), "{:?}", proxy.refused());
}

/// The sink retries and delivers nothing; the agent's log names the reason.
fn nothing_delivered(broker_front: &TlsProxy, tls: &str, logged: &str) {
    let dir = tempfile::tempdir().unwrap();
    let netcat = free_port();
    let cfg = kafka_config(dir.path(), netcat, &broker_front.bootstrap(), TOPIC, tls);
    let (mut agent, metrics) = start_logged(dir.path(), &cfg);
    let mut client = Client::new(netcat);
    assert!(client.send("never-delivered"), "line not acknowledged");
    wait_until(&format!("{logged:?} in the agent's log"), || {
        agent_logs(dir.path()).contains(logged)
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        metric(metrics, "SINK.k1", "EventDrainSuccessCount"),
        Some(0),
        "delivered although TLS failed"
    );
    agent.kill9();
}

#[test]
fn a_broker_certificate_from_another_ca_or_no_client_certificate_delivers_nothing() {
    let Some((broker, proxy)) = broker_behind_tls() else {
        return;
    };
    broker.create_topic(TOPIC, 1);
    let p = "a.sinks.k1.kafka.producer.";
    // The broker's certificate is not signed by the CA this trust store holds.
    nothing_delivered(
        &proxy,
        &tls_keys(
            p,
            "other-truststore.jks",
            Some(("keystore.jks", "key-pass")),
        ),
        "certificate verify failed",
    );
    // The broker is trusted, but the agent presents no certificate and the proxy wants one.
    nothing_delivered(
        &proxy,
        &tls_keys(p, "truststore.jks", None),
        "certificate required",
    );
    assert!(
        proxy
            .refused()
            .iter()
            .any(|e| e.contains("peer did not return a certificate")),
        "{:?}",
        proxy.refused()
    );
}

/// Flume 1.9's global settings: with `security.protocol = SSL` and no store keys, the sink
/// takes its trust and key stores from the `FLUME_SSL_*` environment variables.
#[test]
fn the_stores_may_come_from_flumes_environment_variables() {
    use std::ffi::OsStr;
    use std::process::Stdio;
    let Some((broker, proxy)) = broker_behind_tls() else {
        return;
    };
    broker.create_topic(TOPIC, 1);
    let dir = tempfile::tempdir().unwrap();
    let netcat = free_port();
    let cfg = kafka_config(
        dir.path(),
        netcat,
        &proxy.bootstrap(),
        TOPIC,
        "a.sinks.k1.kafka.producer.security.protocol = SSL\n",
    );
    let metrics = free_port();
    let metrics_arg = metrics.to_string();
    let log = std::fs::File::create(dir.path().join("agent-0.log")).unwrap();
    let (truststore, keystore) = (store("truststore.jks"), store("keystore.p12"));
    let args = [
        OsStr::new("-f"),
        cfg.as_os_str(),
        OsStr::new("-n"),
        OsStr::new("a"),
        OsStr::new("--metrics-port"),
        OsStr::new(&metrics_arg),
    ];
    let mut agent = support::Agent::start_env(
        &cfg,
        netcat,
        &args,
        Stdio::from(log),
        &[
            ("FLUME_SSL_TRUSTSTORE_PATH", OsStr::new(&truststore)),
            ("FLUME_SSL_TRUSTSTORE_PASSWORD", OsStr::new("trust-pass")),
            ("FLUME_SSL_KEYSTORE_PATH", OsStr::new(&keystore)),
            ("FLUME_SSL_KEYSTORE_PASSWORD", OsStr::new("store-pass")),
        ],
    );
    let mut client = Client::new(netcat);
    for i in 0..20 {
        assert!(
            client.send(&format!("global-{i}")),
            "line {i} not acknowledged"
        );
    }
    wait_until("the sink's 20 deliveries", || {
        metric(metrics, "SINK.k1", "EventDrainSuccessCount").unwrap_or(0) >= 20
    });
    assert!(agent.stop(), "agent did not stop cleanly");
    assert!(proxy.refused().is_empty(), "{:?}", proxy.refused());
}
