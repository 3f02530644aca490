//! The thrift sink and source with real agents: two weir agents chained by Thrift RPC in each
//! protocol, config errors, and interoperability with the Python `thrift` package
//! (tests/interop/flume_thrift_rpc.py) as client of the source and as server for the sink.
//!
//! Without Python's `thrift` (tests/interop/requirements.txt) the interop tests are skipped with
//! a message, except under `CI=true`, where they fail.

mod support;

use std::collections::HashSet;
use std::path::PathBuf;

use support::*;

#[test]
fn chained_agents_deliver_every_acknowledged_line_with_its_headers() {
    // The default, compact, with the key unset; then binary, set on both sides.
    let sink = "org.apache.flume.sink.ThriftSink";
    chain_delivers_every_line_with_its_headers("thrift", sink, "", "");
    chain_delivers_every_line_with_its_headers(
        "thrift",
        sink,
        "a.sources.r1.protocol = binary\n",
        "a.sinks.k1.protocol = binary\n",
    );
}

/// The downstream agent SIGKILLed and restarted three times under load: nothing acknowledged
/// upstream is lost.
#[test]
fn killing_the_downstream_agent_loses_nothing_acknowledged_upstream() {
    kill_the_downstream_agent_three_times("thrift", "org.apache.flume.sink.ThriftSink");
}

#[test]
fn config_errors_name_file_line_and_key() {
    let source = "a.sources = r1\na.channels = c1\na.sinks = k1\n\
                  a.channels.c1.type = memory\na.sinks.k1.type = null\na.sinks.k1.channel = c1\n\
                  a.sources.r1.type = thrift\na.sources.r1.channels = c1\n\
                  a.sources.r1.bind = 0.0.0.0\na.sources.r1.port = 4141\n";
    let sink = "a.sources = r1\na.channels = c1\na.sinks = k1\n\
                a.channels.c1.type = memory\na.sources.r1.type = seq\na.sources.r1.channels = c1\n\
                a.sinks.k1.type = thrift\na.sinks.k1.channel = c1\n\
                a.sinks.k1.hostname = h\na.sinks.k1.port = 4141\n";
    let (ok, out) = check_config(source, Some("a"));
    assert!(ok, "{out}");
    let (ok, out) = check_config(sink, Some("a"));
    assert!(ok, "{out}");
    for (base, change, want) in [
        (
            source,
            ("a.sources.r1.port = 4141\n", ""),
            "flume.properties:7: a.sources.r1.port: missing",
        ),
        (
            source,
            ("4141\n", "4141\na.sources.r1.ssl = true\n"),
            "flume.properties:7: a.sources.r1.keystore: missing: ssl = true needs",
        ),
        (
            source,
            ("4141\n", "4141\na.sources.r1.kerberos = true\n"),
            "flume.properties:11: a.sources.r1.kerberos: Kerberos (SASL) is not supported",
        ),
        (
            source,
            ("4141\n", "4141\na.sources.r1.protocol = json\n"),
            "flume.properties:11: a.sources.r1.protocol: 'json' is not a Thrift protocol",
        ),
        (
            sink,
            ("a.sinks.k1.port = 4141\n", ""),
            "flume.properties:7: a.sinks.k1.port: missing",
        ),
        (
            sink,
            (
                "4141\n",
                "4141\na.sinks.k1.ssl = true\na.sinks.k1.truststore = /no/such.jks\n",
            ),
            "flume.properties:12: a.sinks.k1.truststore: Java JKS truststore /no/such.jks: cannot read it",
        ),
        (
            sink,
            ("4141\n", "4141\na.sinks.k1.request-timeout = 0\n"),
            "flume.properties:11: a.sinks.k1.request-timeout: must be greater than 0",
        ),
        (
            sink,
            ("4141\n", "4141\na.sinks.k1.batch-size = 0\n"),
            "flume.properties:11: a.sinks.k1.batch-size: must be greater than 0",
        ),
    ] {
        let text = base.replacen(change.0, change.1, 1);
        let (ok, out) = check_config(&text, Some("a"));
        assert!(!ok && out.contains(want), "want {want}, got:\n{out}");
    }
}

// ---------------------------------------------------------------------------------------------
// Interoperability with the Python thrift package

fn script() -> PathBuf {
    support::interop_script("flume_thrift_rpc.py")
}

/// Whether Python's thrift package is there; outside CI its absence skips the test.
fn python_thrift() -> bool {
    support::python_modules(
        "thrift.protocol.TCompactProtocol, thrift.transport.TTransport",
        "Python's thrift package is",
    )
}

/// Python's thrift package calls `appendBatch` and `append` on weir's thrift source in the
/// compact (default) and binary protocols: the events and their headers arrive, and a method
/// Flume does not serve gets a TApplicationException UNKNOWN_METHOD on a connection that
/// keeps working.
#[test]
fn the_python_thrift_client_appends_to_the_thrift_source() {
    if !python_thrift() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (compact, binary) = (free_port(), free_port());
    let extra = format!(
        "a.sources = r1 r2\na.sources.r2.type = org.apache.flume.source.ThriftSource\n\
         a.sources.r2.bind = 127.0.0.1\na.sources.r2.port = {binary}\n\
         a.sources.r2.channels = c1\na.sources.r2.protocol = binary\n"
    );
    let cfg = chain_downstream(dir.path(), "thrift", compact, &extra);
    let mut agent = chain_start(&cfg, compact, dir.path(), "agent.log");
    assert!(wait_for_port(binary, std::time::Duration::from_secs(20)));

    let batches = support::python_client(
        &script(),
        &[
            "--port",
            &compact.to_string(),
            "--batches",
            "3",
            "--size",
            "50",
            "--header",
            "via=batch",
            "--unknown-method",
        ],
    );
    let appends = support::python_client(
        &script(),
        &[
            "--port",
            &binary.to_string(),
            "--size",
            "5",
            "--append",
            "--protocol",
            "binary",
            "--header",
            "via=append",
            "--unknown-method",
        ],
    );
    for calls in [&batches, &appends] {
        let x = &calls[0]["exception"];
        assert_eq!(x["type"], 1, "UNKNOWN_METHOD: {x}");
        assert!(x["message"].as_str().unwrap().contains("appendAll"), "{x}");
    }
    assert_eq!(batches.len(), 4);
    assert_eq!(appends.len(), 6);
    let mut want = Vec::new();
    for call in batches[1..].iter().chain(&appends[1..]) {
        assert_eq!(call["status"], "OK", "{call}");
        for b in call["bodies"].as_array().unwrap() {
            want.push(b.as_str().unwrap().to_owned());
        }
    }
    assert_eq!(want.len(), 155);
    wait_for_lines(dir.path(), &want);
    assert!(agent.stop());
    let events = logged_events(&dir.path().join("log"));
    assert_eq!(events.len(), 155);
    let via: Vec<&str> = events.iter().filter_map(|e| e.header("via")).collect();
    assert_eq!(via.iter().filter(|v| **v == "batch").count(), 150);
    assert_eq!(via.iter().filter(|v| **v == "append").count(), 5);
    let log = std::fs::read_to_string(dir.path().join("agent.log")).unwrap();
    assert!(log.contains("Invalid method name: 'appendAll'"), "{log}");
}

/// weir's thrift sink calls a Python thrift server in each protocol; the first two calls are
/// answered FAILED, so those batches are rolled back and sent again: every acknowledged line
/// reaches the server in a call it answered OK, with its headers.
#[test]
fn the_thrift_sink_delivers_to_the_python_thrift_server_and_retries_failed_batches() {
    if !python_thrift() {
        return;
    }
    for protocol in ["compact", "binary"] {
        let server =
            support::PythonServer::start(&script(), &["--fail", "2", "--protocol", protocol]);
        let dir = tempfile::tempdir().unwrap();
        let netcat_port = free_port();
        let extra = format!("a.sinks.k1.protocol = {protocol}\n");
        let _agent = chain_start(
            &chain_upstream(
                dir.path(),
                "org.apache.flume.sink.ThriftSink",
                netcat_port,
                server.port,
                &extra,
            ),
            netcat_port,
            dir.path(),
            "agent.log",
        );
        let mut client = Client::new(netcat_port);
        let lines: Vec<String> = (0..40).map(|i| format!("to-python-{i}")).collect();
        for l in &lines {
            assert!(client.send(l), "{l} not acknowledged");
        }
        let ok_bodies = || -> HashSet<String> {
            let calls = server.calls.lock().unwrap();
            calls
                .iter()
                .filter(|c| c["status"] == "OK")
                .flat_map(|c| c["events"].as_array().unwrap().clone())
                .map(|e| {
                    assert_eq!(e["headers"]["origin"], "up", "{e}");
                    e["body"].as_str().unwrap().to_owned()
                })
                .collect()
        };
        wait_until("every line answered OK by the Python server", || {
            let got = ok_bodies();
            lines.iter().all(|l| got.contains(l))
        });
        let calls = server.calls.lock().unwrap().clone();
        assert_eq!(calls[0]["status"], "FAILED");
        assert_eq!(calls[1]["status"], "FAILED");
        // The failed batch came back first once the server said OK.
        let body = |c: &serde_json::Value| c["events"][0]["body"].clone();
        assert_eq!(body(&calls[0]), body(&calls[2]), "{protocol}: {calls:?}");
    }
}
