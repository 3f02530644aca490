//! Agents chained over TLS (`ssl = true`) with the Java key and trust stores a Flume config
//! names: the avro and thrift pairs deliver every line, the source with a JKS or PKCS#12 key
//! store, the sink with a JKS trust store, or with `trust-all-certs`, or with the global
//! `FLUME_SSL_TRUSTSTORE_*` settings. A sink trusting another CA, or speaking plain TCP to a
//! TLS source, delivers nothing, and the logs say why. A standard TLS client (OpenSSL's
//! `s_client`) completes a handshake with the source, and only with the cipher suites the
//! source's `include-cipher-suites` / `exclude-cipher-suites` leave.

mod support;

use std::ffi::OsStr;
use std::process::Stdio;
use std::time::Duration;

use support::*;

fn store(name: &str) -> String {
    java_stores().join(name).display().to_string()
}

fn source_tls(keystore: &str) -> String {
    format!(
        "a.sources.r1.ssl = true\na.sources.r1.keystore = {}\n\
         a.sources.r1.keystore-password = store-pass\n",
        store(keystore)
    )
}

fn sink_tls(truststore: &str) -> String {
    format!(
        "a.sinks.k1.ssl = true\na.sinks.k1.truststore = {}\n\
         a.sinks.k1.truststore-password = trust-pass\n",
        store(truststore)
    )
}

#[test]
fn avro_agents_chained_over_tls_deliver_every_line() {
    chain_delivers_every_line_with_its_headers(
        "avro",
        "org.apache.flume.sink.AvroSink",
        &source_tls("server.jks"),
        &sink_tls("truststore.jks"),
    );
}

#[test]
fn avro_over_tls_with_compression_and_a_pkcs12_key_store() {
    chain_delivers_every_line_with_its_headers(
        "avro",
        "avro",
        &format!(
            "{}a.sources.r1.keystore-type = PKCS12\na.sources.r1.compression-type = deflate\n",
            source_tls("server.p12")
        ),
        "a.sinks.k1.ssl = true\na.sinks.k1.trust-all-certs = true\n\
         a.sinks.k1.compression-type = deflate\n",
    );
}

#[test]
fn thrift_agents_chained_over_tls_deliver_every_line() {
    chain_delivers_every_line_with_its_headers(
        "thrift",
        "org.apache.flume.sink.ThriftSink",
        &source_tls("server.jks"),
        &sink_tls("truststore.jks"),
    );
}

/// Flume 1.9's global settings: the sink's trust store from the environment, or from the
/// Java system properties of a flume-ng launch line (which win).
#[test]
fn the_sink_takes_its_trust_store_from_flumes_global_settings() {
    let truststore = store("truststore.jks");
    let other = store("other-truststore.jks");
    for (how, env, props) in [
        (
            "environment",
            vec![
                ("FLUME_SSL_TRUSTSTORE_PATH", truststore.clone()),
                ("FLUME_SSL_TRUSTSTORE_PASSWORD", "trust-pass".to_owned()),
            ],
            vec![],
        ),
        (
            "-D properties over the environment",
            vec![
                ("FLUME_SSL_TRUSTSTORE_PATH", other.clone()),
                ("FLUME_SSL_TRUSTSTORE_PASSWORD", "trust-pass".to_owned()),
            ],
            vec![
                format!("-Djavax.net.ssl.trustStore={truststore}"),
                "-Djavax.net.ssl.trustStorePassword=trust-pass".to_owned(),
            ],
        ),
    ] {
        let (up_dir, down_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (netcat_port, rpc_port) = (free_port(), free_port());
        let down_cfg =
            chain_downstream(down_dir.path(), "avro", rpc_port, &source_tls("server.jks"));
        let _down = chain_start(&down_cfg, rpc_port, down_dir.path(), "down.log");
        let up_cfg = chain_upstream(
            up_dir.path(),
            "avro",
            netcat_port,
            rpc_port,
            "a.sinks.k1.ssl = true\n",
        );
        let log = std::fs::File::create(up_dir.path().join("up.log")).unwrap();
        let mut args = vec![
            OsStr::new("-f"),
            up_cfg.as_os_str(),
            OsStr::new("-n"),
            OsStr::new("a"),
        ];
        args.extend(props.iter().map(OsStr::new));
        let env: Vec<(&str, &OsStr)> = env.iter().map(|(k, v)| (*k, OsStr::new(v))).collect();
        let _up = Agent::start_env(&up_cfg, netcat_port, &args, Stdio::from(log), &env);
        let mut client = Client::new(netcat_port);
        let lines: Vec<String> = (0..20).map(|i| format!("global-{i}")).collect();
        for l in &lines {
            assert!(client.send(l), "{how}: {l} not acknowledged");
        }
        wait_for_lines(down_dir.path(), &lines);
    }
}

/// The upstream agent retries and delivers nothing; its log (and the downstream one's) says why.
fn nothing_delivered(source_extra: &str, sink_extra: &str, up_logged: &str, down_logged: &str) {
    let (up_dir, down_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (netcat_port, rpc_port) = (free_port(), free_port());
    let down_cfg = chain_downstream(down_dir.path(), "avro", rpc_port, source_extra);
    let _down = chain_start(&down_cfg, rpc_port, down_dir.path(), "down.log");
    let up_cfg = chain_upstream(up_dir.path(), "avro", netcat_port, rpc_port, sink_extra);
    let _up = chain_start(&up_cfg, netcat_port, up_dir.path(), "up.log");
    let mut client = Client::new(netcat_port);
    assert!(client.send("never-delivered"), "line not acknowledged");
    let read = |dir: &std::path::Path, log: &str| {
        std::fs::read_to_string(dir.join(log)).unwrap_or_default()
    };
    wait_until(&format!("{up_logged:?} in the upstream log"), || {
        read(up_dir.path(), "up.log").contains(up_logged)
    });
    wait_until(&format!("{down_logged:?} in the downstream log"), || {
        read(down_dir.path(), "down.log").contains(down_logged)
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        delivered(down_dir.path()).is_empty(),
        "delivered although TLS failed"
    );
    // The start-up probe of the source's port (connect, close) is no warning.
    let down = read(down_dir.path(), "down.log");
    assert!(!down.contains("unexpected EOF"), "{down}");
}

#[test]
fn a_sink_trusting_another_ca_delivers_nothing() {
    nothing_delivered(
        &source_tls("server.jks"),
        &sink_tls("other-truststore.jks"),
        "certificate verify failed",
        "alert unknown ca",
    );
}

#[test]
fn a_plain_sink_gets_nothing_through_a_tls_source() {
    nothing_delivered(
        &source_tls("server.jks"),
        "",
        "reading the reply from",
        "TLS handshake: the handshake failed",
    );
}

/// The opposite mismatch: the source, reading a TLS handshake as a frame, names the settings
/// the sink may have and it has not (the crash-loop audit found only "not a frame: buffer 0 of
/// 65537 has length -66911463" there).
#[test]
fn a_tls_sink_gets_nothing_through_a_plain_source_and_the_source_says_why() {
    nothing_delivered(
        "",
        &sink_tls("truststore.jks"),
        "TLS handshake",
        "does the client's sink set ssl = true or compression-type = deflate (this source does not)?",
    );
}

/// A source expecting zlib that gets plain frames says so at warning level, not as a connection
/// error at info.
#[test]
fn a_plain_sink_gets_nothing_through_a_deflate_source_and_the_source_says_why() {
    nothing_delivered(
        "a.sources.r1.compression-type = deflate\n",
        "",
        "delivery failed",
        "this source has compression-type = deflate; does the client's sink not?",
    );
}

/// Any TLS client can talk to the source: OpenSSL's own client, verifying the certificate
/// against the CA, completes a handshake.
#[test]
fn a_standard_tls_client_completes_a_handshake_with_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = chain_downstream(dir.path(), "thrift", port, &source_tls("server.p12"));
    let cfg_text = std::fs::read_to_string(&cfg).unwrap().replace(
        "keystore-password",
        "keystore-type = PKCS12\na.sources.r1.keystore-password",
    );
    std::fs::write(&cfg, cfg_text).unwrap();
    let _agent = chain_start(&cfg, port, dir.path(), "down.log");
    let (connected, text) = s_client_connects(port, &[]);
    assert!(connected && text.contains("Verification: OK"), "{text}");
}

/// Whether `openssl s_client` with `args` completes a handshake with the source on `port`.
fn s_client_connects(port: u16, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args([
            "-CAfile",
            &store("ca.pem"),
            "-verify_return_error",
            "-brief",
        ])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl s_client (the openssl CLI is needed)");
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    (text.contains("CONNECTION ESTABLISHED"), text)
}

/// Starts a TLS avro source with the cipher suite list `lists` (Java's names) and checks, for
/// each `openssl s_client` option list, whether its handshake succeeds.
fn handshakes_with_cipher_lists(lists: &str, cases: &[(&[&str], bool)]) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let extra = format!("{}{lists}", source_tls("server.jks"));
    let cfg = chain_downstream(dir.path(), "avro", port, &extra);
    let _agent = chain_start(&cfg, port, dir.path(), "down.log");
    for (args, connects) in cases {
        let (connected, text) = s_client_connects(port, args);
        assert_eq!(connected, *connects, "{lists}s_client {args:?}:\n{text}");
    }
}

/// The source's cipher suite lists, in Java's names, hold for any client: an excluded suite
/// (here all of TLS 1.3's, and one of TLS 1.2) cannot be negotiated, another one can; an
/// include list keeps only what it names.
#[test]
fn the_sources_cipher_suite_lists_hold_for_any_client() {
    handshakes_with_cipher_lists(
        "a.sources.r1.exclude-cipher-suites = TLS_AES_128_GCM_SHA256 TLS_AES_256_GCM_SHA384 \
         TLS_CHACHA20_POLY1305_SHA256 TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n",
        &[
            (&["-tls1_3"], false),
            (
                &["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"],
                false,
            ),
            (&["-tls1_2", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384"], true),
        ],
    );
    handshakes_with_cipher_lists(
        "a.sources.r1.include-cipher-suites = TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 \
         TLS_AES_256_GCM_SHA384\n",
        &[
            (
                &["-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"],
                false,
            ),
            (
                &["-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384"],
                true,
            ),
            (
                &["-tls1_2", "-cipher", "ECDHE-RSA-AES256-GCM-SHA384"],
                false,
            ),
            (&["-tls1_2", "-cipher", "ECDHE-RSA-CHACHA20-POLY1305"], true),
        ],
    );
}

/// A sink's include list is what it offers: a sink offering only a suite the source excludes
/// delivers nothing; offering one the source keeps, everything.
#[test]
fn a_sink_offering_only_a_suite_the_source_excludes_delivers_nothing() {
    let source = format!(
        "{}a.sources.r1.exclude-cipher-suites = TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\n",
        source_tls("server.jks")
    );
    let sink = |suite: &str| {
        format!(
            "{}a.sinks.k1.include-cipher-suites = {suite}\n",
            sink_tls("truststore.jks")
        )
    };
    nothing_delivered(
        &source,
        &sink("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
        "handshake failure",
        "no shared cipher",
    );
    chain_delivers_every_line_with_its_headers(
        "avro",
        "avro",
        &source,
        &sink("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
    );
}

/// `weir avro-client -P` with a Flume RPC client properties file that sets `ssl = true` and a
/// trust store sends to a TLS avro source.
#[test]
fn avro_client_sends_over_tls_with_an_rpc_properties_file() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let port = free_port();
    let cfg = chain_downstream(d, "avro", port, &source_tls("server.jks"));
    let mut agent = chain_start(&cfg, port, d, "down.log");
    std::fs::write(
        d.join("rpc.properties"),
        format!(
            "hosts = h1\nhosts.h1 = 127.0.0.1:{port}\nbatch-size = 3\nssl = true\n\
             truststore = {}\ntruststore-password = trust-pass\n",
            store("truststore.jks")
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["avro-client", "-P"])
        .arg(d.join("rpc.properties"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines: Vec<String> = (0..10).map(|i| format!("tls-client-{i}")).collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.join("\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("10 events acknowledged"), "{err}");
    wait_for_lines(d, &lines);
    assert!(agent.stop());
}
