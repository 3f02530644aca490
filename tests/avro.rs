//! The avro sink and source with real agents: two weir agents chained by Avro RPC, the
//! downstream one killed and restarted under load, config errors, and interoperability with
//! the Python `avro` package's IPC (tests/interop/flume_avro_rpc.py) as client of the source
//! and as server for the sink.
//!
//! Without Python's `avro` (tests/interop/requirements.txt) the interop tests are skipped with
//! a message, except under `CI=true`, where they fail.

mod support;

use std::collections::HashSet;
use std::path::PathBuf;

use support::*;

#[test]
fn chained_agents_deliver_every_acknowledged_line_with_its_headers() {
    chain_delivers_every_line_with_its_headers("avro", "org.apache.flume.sink.AvroSink", "", "");
}

#[test]
fn killing_the_downstream_agent_loses_nothing_acknowledged_upstream() {
    kill_the_downstream_agent_three_times("avro", "org.apache.flume.sink.AvroSink");
}

#[test]
fn config_errors_name_file_line_and_key() {
    let source = "a.sources = r1\na.channels = c1\na.sinks = k1\n\
                  a.channels.c1.type = memory\na.sinks.k1.type = null\na.sinks.k1.channel = c1\n\
                  a.sources.r1.type = avro\na.sources.r1.channels = c1\n\
                  a.sources.r1.bind = 0.0.0.0\na.sources.r1.port = 4141\n";
    let sink = "a.sources = r1\na.channels = c1\na.sinks = k1\n\
                a.channels.c1.type = memory\na.sources.r1.type = seq\na.sources.r1.channels = c1\n\
                a.sinks.k1.type = avro\na.sinks.k1.channel = c1\n\
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
            ("4141\n", "4141\na.sources.r1.compression-type = snappy\n"),
            "flume.properties:11: a.sources.r1.compression-type: 'snappy' is not supported; supported: none, deflate",
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
            ("4141\n", "4141\na.sinks.k1.compression-type = gzip\n"),
            "flume.properties:11: a.sinks.k1.compression-type: 'gzip' is not supported",
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
// Interoperability with the Python avro package

fn script() -> PathBuf {
    support::interop_script("flume_avro_rpc.py")
}

/// Whether Python's avro package is there; outside CI its absence skips the test.
fn python_avro() -> bool {
    support::python_modules("avro.ipc, avro.protocol", "Python's avro package is")
}

/// Python's avro.ipc calls `appendBatch` and `append` on weir's avro source, plain and
/// deflated: the handshake (NONE, then its protocol), the stateful calls after it and the
/// events with their headers all work across the two implementations.
#[test]
fn the_python_avro_client_appends_to_the_avro_source() {
    if !python_avro() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (plain, deflated) = (free_port(), free_port());
    let extra = format!(
        "a.sources = r1 r2\na.sources.r2.type = org.apache.flume.source.AvroSource\n\
         a.sources.r2.bind = 127.0.0.1\na.sources.r2.port = {deflated}\n\
         a.sources.r2.channels = c1\na.sources.r2.compression-type = deflate\n"
    );
    let cfg = chain_downstream(dir.path(), "avro", plain, &extra);
    let mport = free_port();
    let mut agent = Agent::start_with(
        &cfg,
        plain,
        &["--metrics-port", &mport.to_string()],
        std::process::Stdio::from(std::fs::File::create(dir.path().join("agent.log")).unwrap()),
    );
    assert!(wait_for_port(deflated, std::time::Duration::from_secs(20)));

    let batches = support::python_client(
        &script(),
        &[
            "--port",
            &plain.to_string(),
            "--batches",
            "3",
            "--size",
            "50",
            "--header",
            "via=batch",
        ],
    );
    let appends = support::python_client(
        &script(),
        &[
            "--port",
            &deflated.to_string(),
            "--size",
            "5",
            "--append",
            "--deflate",
            "--header",
            "via=append",
        ],
    );
    assert_eq!(batches.len(), 3);
    assert_eq!(appends.len(), 5);
    let mut want = Vec::new();
    for call in batches.iter().chain(&appends) {
        assert_eq!(call["status"], "OK", "{call}");
        for b in call["bodies"].as_array().unwrap() {
            want.push(b.as_str().unwrap().to_owned());
        }
    }
    assert_eq!(want.len(), 155);
    wait_for_lines(dir.path(), &want);
    // Flume's avro source counts `appendBatch` and `append` calls apart.
    for (source, appends, batches, events) in [("r1", 0, 3, 150), ("r2", 5, 0, 5)] {
        let component = format!("SOURCE.{source}");
        let count = |name| metric(mport, &component, name);
        assert_eq!(count("AppendReceivedCount"), Some(appends), "{source}");
        assert_eq!(count("AppendAcceptedCount"), Some(appends), "{source}");
        assert_eq!(count("AppendBatchReceivedCount"), Some(batches), "{source}");
        assert_eq!(count("AppendBatchAcceptedCount"), Some(batches), "{source}");
        assert_eq!(count("EventAcceptedCount"), Some(events), "{source}");
    }
    assert!(agent.stop());
    let events = logged_events(&dir.path().join("log"));
    assert_eq!(events.len(), 155);
    let via: Vec<&str> = events.iter().filter_map(|e| e.header("via")).collect();
    assert_eq!(via.iter().filter(|v| **v == "batch").count(), 150);
    assert_eq!(via.iter().filter(|v| **v == "append").count(), 5);
}

/// weir's avro sink calls Python's avro.ipc responder, plain and deflated; the first two calls
/// are answered FAILED, so those batches are rolled back and sent again: every acknowledged
/// line reaches the server in a call it answered OK, with its headers.
#[test]
fn the_avro_sink_delivers_to_the_python_avro_server_and_retries_failed_batches() {
    if !python_avro() {
        return;
    }
    for deflate in [false, true] {
        let server = if deflate {
            support::PythonServer::start(&script(), &["--fail", "2", "--deflate"])
        } else {
            support::PythonServer::start(&script(), &["--fail", "2"])
        };
        let dir = tempfile::tempdir().unwrap();
        let netcat_port = free_port();
        let extra = if deflate {
            "a.sinks.k1.compression-type = deflate\na.sinks.k1.compression-level = 9\n"
        } else {
            ""
        };
        let _agent = chain_start(
            &chain_upstream(
                dir.path(),
                "org.apache.flume.sink.AvroSink",
                netcat_port,
                server.port,
                extra,
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
        assert_eq!(
            body(&calls[0]),
            body(&calls[2]),
            "deflate {deflate}: {calls:?}"
        );
    }
}

/// `weir avro-client` as `flume-ng avro-client` is used: a file's lines with the headers of a
/// `-R` file, a spooling directory whose files are renamed `.COMPLETED`, standard input, and a
/// `-P` RPC properties file whose first host is down (the next one takes the batches).
#[test]
fn avro_client_sends_files_directories_and_stdin_to_an_avro_source() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let cfg = chain_downstream(d, "avro", port, "");
    let mut agent = Agent::start_with(&cfg, port, &[], std::process::Stdio::null());
    let client = |args: &[&str], stdin: &[u8]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .arg("avro-client")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let p = port.to_string();

    // -F with -R, and Windows line ends.
    std::fs::write(d.join("app.log"), "one\r\ntwo\nthree\n").unwrap();
    std::fs::write(d.join("headers.properties"), "host = web-1\ndc : eu\n").unwrap();
    let (ok, err) = client(
        &[
            "--conf",
            "conf",
            "-H",
            "127.0.0.1",
            "-p",
            &p,
            "-F",
            d.join("app.log").to_str().unwrap(),
            "-R",
            d.join("headers.properties").to_str().unwrap(),
        ],
        b"",
    );
    assert!(ok, "{err}");
    assert!(err.contains("3 events acknowledged"), "{err}");

    // --dirname: every file, renamed once sent.
    let spool = d.join("spool");
    std::fs::create_dir(&spool).unwrap();
    std::fs::write(spool.join("a.log"), "a1\na2\n").unwrap();
    std::fs::write(spool.join("b.log"), "b1\n").unwrap();
    let (ok, err) = client(
        &[
            "-H",
            "127.0.0.1",
            "-p",
            &p,
            "--dirname",
            spool.to_str().unwrap(),
        ],
        b"",
    );
    assert!(ok, "{err}");
    let mut names: Vec<String> = std::fs::read_dir(&spool)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["a.log.COMPLETED", "b.log.COMPLETED"]);

    // Standard input, through a -P file whose first host refuses connections.
    let dead = free_port();
    std::fs::write(
        d.join("rpc.properties"),
        format!(
            "client.type = default_failover\nhosts = h1 h2\nhosts.h1 = 127.0.0.1:{dead}\n\
             hosts.h2 = 127.0.0.1:{port}\nbatch-size = 2\nconnect-timeout = 2000\n"
        ),
    )
    .unwrap();
    let stdin: String = (0..7).map(|i| format!("in{i}\n")).collect();
    let (ok, err) = client(
        &["-P", d.join("rpc.properties").to_str().unwrap()],
        stdin.as_bytes(),
    );
    assert!(ok, "{err}");
    assert!(err.contains("7 events acknowledged"), "{err}");

    let mut expected: Vec<String> = ["one", "two", "three", "a1", "a2", "b1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    expected.extend((0..7).map(|i| format!("in{i}")));
    wait_for_lines(d, &expected);
    assert!(agent.stop());
    assert_eq!(output_lines(d), expected);
    let events = logged_events(&d.join("log"));
    let first = &events[0];
    assert_eq!(
        first
            .headers
            .iter()
            .filter(|(k, _)| k == "host" || k == "dc")
            .count(),
        2
    );
    assert!(
        first.headers.iter().any(|(k, v)| k == "dc" && v == "eu"),
        "{first:?}"
    );
    assert!(events[3].headers.is_empty(), "{:?}", events[3]);

    // Nothing listening: exit 1, naming the address.
    let (ok, err) = client(&["-H", "127.0.0.1", "-p", &dead.to_string()], b"x\n");
    assert!(!ok);
    assert!(
        err.contains(&format!("127.0.0.1:{dead}")) && err.contains("0 events acknowledged"),
        "{err}"
    );
}
