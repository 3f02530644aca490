//! A Java Kafka client's TLS and SASL keys as librdkafka properties, for producers
//! (`kafka.producer.*`) and consumers (`kafka.consumer.*`) alike. Java names stores where
//! librdkafka names PEM files and strings, and takes SASL credentials as a JAAS line where
//! librdkafka takes a user name and a password; the stores themselves are read by
//! [`super::java_keystore`].

use std::path::Path;

use super::{ConfigError, Entry, ProducerProperty, Section};
use super::{cipher_suites, java_keystore};

/// One of a client's `kafka.producer.*` / `kafka.consumer.*` keys.
pub(super) struct Key<'a> {
    /// `kafka.producer.` or `kafka.consumer.`
    pub prefix: &'a str,
    pub key: &'a str,
    pub value: &'a str,
    /// `FILE:LINE: FULL.KEY`, for messages.
    pub origin: Option<String>,
}

/// Translates `k` if it is one of a Java client's TLS or SASL settings, into `out`. Returns
/// false for any other key. `value_of` gives another key's value under the same prefix (an
/// empty one counts as unset).
pub(super) fn translate<'v>(
    s: &Section,
    k: &Key,
    value_of: &dyn Fn(&str) -> Option<&'v str>,
    out: &mut Vec<ProducerProperty>,
    notes: &mut Vec<String>,
) -> Result<bool, ConfigError> {
    let push = |out: &mut Vec<ProducerProperty>, key: &str, value: &str| {
        out.push(ProducerProperty {
            key: key.to_owned(),
            value: value.to_owned(),
            origin: k.origin.clone(),
        })
    };
    let fail = |message: String| s.error(Some(&format!("{}{}", k.prefix, k.key)), message);
    // Java's client reads no TLS key without TLS and no SASL key without SASL: reading a store
    // named here would only refuse a configuration that Flume runs.
    let protocol = value_of("security.protocol")
        .unwrap_or("PLAINTEXT")
        .to_ascii_uppercase();
    let family = [
        (
            "ssl.",
            "SSL",
            "a TLS setting: it applies with SSL or SASL_SSL",
        ),
        (
            "sasl.",
            "SASL",
            "a SASL setting: it applies with SASL_PLAINTEXT or SASL_SSL",
        ),
    ]
    .into_iter()
    .find(|(prefix, _, _)| k.key.starts_with(prefix));
    if let Some((_, needs, what)) = family
        && !protocol.contains(needs)
    {
        notes.push(format!(
            "{}: ignored with security.protocol = {protocol} ({what})",
            k.origin.as_deref().unwrap_or(k.key)
        ));
        return Ok(true);
    }
    let keystore_named = value_of("ssl.keystore.location").is_some();
    match k.key {
        // Read with the store's location below.
        "ssl.truststore.type" | "ssl.truststore.password" | "ssl.keystore.type" => {}
        // The same, when a Java keystore is named; otherwise librdkafka's own keys (for its
        // ssl.key.location, and its PKCS#12 ssl.keystore.location).
        "ssl.keystore.password" | "ssl.key.password" if keystore_named => {}
        "ssl.endpoint.identification.algorithm" => push(
            out,
            "ssl.endpoint.identification.algorithm",
            &k.value.to_ascii_lowercase(),
        ),
        "ssl.truststore.location" => {
            let store_type = store_type(value_of("ssl.truststore.type"), k.value);
            if store_type == "PEM" {
                push(out, "ssl.ca.location", k.value);
            } else {
                let pem = java_keystore::read(
                    Path::new(k.value),
                    &store_type,
                    value_of("ssl.truststore.password"),
                    None,
                )
                .map_err(|e| fail(format!("Java {store_type} truststore {}: {e}", k.value)))?;
                if pem.trusted.is_empty() {
                    return Err(fail(format!(
                        "Java {store_type} truststore {} holds no trusted certificate",
                        k.value
                    )));
                }
                push(out, "ssl.ca.pem", &pem.trusted);
            }
        }
        // Java names the suites, librdkafka takes an OpenSSL cipher list (which has no say
        // over TLS 1.3's suites: OpenSSL's defaults, all strong, stay on).
        "ssl.cipher.suites" => {
            let (list, tls13) = cipher_suites::openssl_cipher_list(k.value).map_err(fail)?;
            let at = k.origin.as_deref().unwrap_or(k.key);
            if !tls13.is_empty() {
                notes.push(format!(
                    "{at}: {} not used: librdkafka sets no TLS 1.3 suites, and OpenSSL's \
                     default ones apply",
                    tls13.join(", ")
                ));
            }
            match list {
                Some(list) => push(out, "ssl.cipher.suites", &list),
                None => notes.push(format!(
                    "{at}: names no suite of TLS 1.2 or older, so librdkafka's default \
                     cipher list applies to those versions"
                )),
            }
        }
        // Java 2.7+'s PEM certificates and key given inline.
        "ssl.truststore.certificates" => push(out, "ssl.ca.pem", k.value),
        "ssl.keystore.certificate.chain" => push(out, "ssl.certificate.pem", k.value),
        "ssl.keystore.key" => push(out, "ssl.key.pem", k.value),
        "ssl.keystore.location" => {
            let store_type = store_type(value_of("ssl.keystore.type"), k.value);
            if store_type == "PEM" {
                push(out, "ssl.certificate.location", k.value);
                push(out, "ssl.key.location", k.value);
                if let Some(pw) = value_of("ssl.key.password") {
                    push(out, "ssl.key.password", pw);
                }
            } else {
                let pem = java_keystore::read(
                    Path::new(k.value),
                    &store_type,
                    value_of("ssl.keystore.password"),
                    value_of("ssl.key.password"),
                )
                .map_err(|e| fail(format!("Java {store_type} keystore {}: {e}", k.value)))?;
                let Some(key) = pem.key else {
                    return Err(fail(format!(
                        "Java {store_type} keystore {} holds no private key",
                        k.value
                    )));
                };
                push(out, "ssl.certificate.pem", &key.chain);
                push(out, "ssl.key.pem", &key.key);
            }
        }
        // librdkafka would refuse it only when the client is created, in words about
        // recompiling it, and without saying which key.
        "sasl.mechanism" | "sasl.mechanisms"
            if k.value
                .split(',')
                .any(|m| m.trim().eq_ignore_ascii_case("GSSAPI")) =>
        {
            return Err(fail(
                "Kerberos (GSSAPI) is not supported by weir (its librdkafka is built without \
                 Cyrus SASL): use PLAIN or SCRAM-SHA-256/512 with sasl.jaas.config, or a TLS \
                 client certificate"
                    .into(),
            ));
        }
        "sasl.jaas.config" => {
            let (user_name, password) = jaas_credentials(k.value).ok_or_else(|| {
                fail(
                    "no username=\"…\" and password=\"…\" in it: weir reads those of \
                     PlainLoginModule and ScramLoginModule; Kerberos (GSSAPI) is not supported"
                        .into(),
                )
            })?;
            push(out, "sasl.username", &user_name);
            push(out, "sasl.password", &password);
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// The Java client keys Flume 1.9 fills from its global TLS settings (`KafkaSSLUtil`), with
/// the `FLUME_SSL_*` environment variable each comes from.
const GLOBAL_KEYS: [(&str, &str); 6] = [
    ("ssl.keystore.location", "KEYSTORE_PATH"),
    ("ssl.keystore.password", "KEYSTORE_PASSWORD"),
    ("ssl.keystore.type", "KEYSTORE_TYPE"),
    ("ssl.truststore.location", "TRUSTSTORE_PATH"),
    ("ssl.truststore.password", "TRUSTSTORE_PASSWORD"),
    ("ssl.truststore.type", "TRUSTSTORE_TYPE"),
];

/// A key filled from Flume's global TLS settings.
pub(super) struct GlobalKey {
    pub key: &'static str,
    pub value: String,
    /// `FLUME_SSL_… (environment)`, for messages.
    pub origin: String,
}

/// As Flume 1.9: when `security.protocol` is SSL or SASL_SSL, each key store and trust store
/// key the client does not set (`is_set`) comes from the `FLUME_SSL_*` environment variables,
/// where they are set.
pub(super) fn global_keys(protocol: Option<&str>, is_set: &dyn Fn(&str) -> bool) -> Vec<GlobalKey> {
    global_keys_with(protocol, is_set, &|name| {
        std::env::var(format!("FLUME_SSL_{name}"))
            .ok()
            .filter(|v| !v.trim().is_empty())
    })
}

fn global_keys_with(
    protocol: Option<&str>,
    is_set: &dyn Fn(&str) -> bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<GlobalKey> {
    let tls = protocol
        .is_some_and(|p| p.eq_ignore_ascii_case("SSL") || p.eq_ignore_ascii_case("SASL_SSL"));
    if !tls {
        return Vec::new();
    }
    GLOBAL_KEYS
        .iter()
        .filter(|(key, _)| !is_set(key))
        .filter_map(|(key, name)| {
            env(name).map(|value| GlobalKey {
                key,
                value,
                origin: format!("FLUME_SSL_{name} (environment)"),
            })
        })
        .collect()
}

/// The value of `key` among a client's keys `user` (an empty one counts as unset, as Flume
/// drops it), else among Flume's global stores.
pub(super) fn value_in<'v>(
    user: &[(&'v str, &'v Entry)],
    globals: &'v [GlobalKey],
    key: &str,
) -> Option<&'v str> {
    user.iter()
        .find(|(k, _)| *k == key)
        .map(|(_, e)| e.value.trim())
        .filter(|v| !v.is_empty())
        .or_else(|| {
            globals
                .iter()
                .find(|g| g.key == key)
                .map(|g| g.value.as_str())
        })
}

/// Flume's global stores for what the client with keys `user` leaves unset ([`global_keys`]).
pub(super) fn globals_for(user: &[(&str, &Entry)]) -> Vec<GlobalKey> {
    let set = |key: &str| value_in(user, &[], key);
    global_keys(set("security.protocol"), &|k| set(k).is_some())
}

/// Translates the store locations among `globals` as if the client had set them (after its
/// own keys, which they never replace).
pub(super) fn translate_globals<'v>(
    s: &Section,
    prefix: &str,
    globals: &[GlobalKey],
    value_of: &dyn Fn(&str) -> Option<&'v str>,
    out: &mut Vec<ProducerProperty>,
    notes: &mut Vec<String>,
) -> Result<(), ConfigError> {
    for g in globals.iter().filter(|g| g.key.ends_with(".location")) {
        let k = Key {
            prefix,
            key: g.key,
            value: &g.value,
            origin: Some(g.origin.clone()),
        };
        translate(s, &k, value_of, out, notes)?;
    }
    Ok(())
}

/// A Java key or trust store's type, upper-cased: the configured one, else (Java's default is
/// JKS) what the file holds, since keytool writes PKCS#12 by default since Java 9 whatever the
/// file's name, and PEM files are recognised by their armour ([`java_keystore::sniff`]). A
/// file that cannot be read counts as JKS here; reading it then names the problem.
fn store_type(configured: Option<&str>, path: &str) -> String {
    if let Some(t) = configured {
        return t.to_ascii_uppercase();
    }
    java_keystore::sniff(Path::new(path))
        .unwrap_or("JKS")
        .to_owned()
}

/// `username` and `password` of a JAAS line such as
/// `org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";`.
fn jaas_credentials(jaas: &str) -> Option<(String, String)> {
    let option = |name: &str| {
        let mut rest = jaas;
        while let Some(at) = rest.find(name) {
            let before_ok = rest[..at]
                .chars()
                .next_back()
                .is_none_or(char::is_whitespace);
            let after = rest[at + name.len()..].trim_start();
            if let (true, Some(value)) = (before_ok, after.strip_prefix('=')) {
                let value = value.trim_start();
                return match value.strip_prefix('"') {
                    Some(quoted) => quoted.find('"').map(|end| quoted[..end].to_owned()),
                    None => Some(
                        value
                            .split(|c: char| c.is_whitespace() || c == ';')
                            .next()
                            .unwrap_or_default()
                            .to_owned(),
                    ),
                };
            }
            rest = &rest[at + name.len()..];
        }
        None
    };
    Some((option("username")?, option("password")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a configured type (Java's default, JKS), the file tells: keytool writes PKCS#12
    /// by default since Java 9, whatever the file is called.
    #[test]
    fn a_store_without_a_type_is_recognised_by_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            path.display().to_string()
        };
        let p12 = write(
            "client.keystore.jks",
            &[0x30, 0x82, 0x0a, 0x1c, 0x02, 0x01, 0x03],
        );
        let jks = write("old.jks", &[0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2]);
        let pem = write("ca.crt", b"-----BEGIN CERTIFICATE-----\nMIIB\n");
        assert_eq!(store_type(None, &p12), "PKCS12");
        assert_eq!(store_type(None, &jks), "JKS");
        assert_eq!(store_type(None, &pem), "PEM");
        assert_eq!(store_type(None, "/no/such/file"), "JKS");
        assert_eq!(store_type(Some("pkcs12"), &jks), "PKCS12");
        // Not a regular file: not opened (java_keystore's tests use a FIFO), so JKS.
        assert_eq!(store_type(None, &dir.path().display().to_string()), "JKS");
    }

    #[test]
    fn jaas_options_are_read_quoted_or_bare() {
        assert_eq!(
            jaas_credentials(
                "org.apache.kafka.common.security.plain.PlainLoginModule required \
                 username=\"u\" password=\"p w\";"
            ),
            Some(("u".into(), "p w".into()))
        );
        assert_eq!(
            jaas_credentials("x required password=pw username = bob;"),
            Some(("bob".into(), "pw".into()))
        );
        assert_eq!(jaas_credentials("x required myusername=\"u\";"), None);
    }

    #[test]
    fn flumes_global_stores_fill_what_an_ssl_client_leaves_unset() {
        let env = |name: &str| match name {
            "TRUSTSTORE_PATH" => Some("/g/trust.jks".to_owned()),
            "TRUSTSTORE_PASSWORD" => Some("gpw".to_owned()),
            "KEYSTORE_TYPE" => Some("PKCS12".to_owned()),
            _ => None,
        };
        let set = |k: &str| k == "ssl.truststore.password";
        let got: Vec<(&str, String)> = global_keys_with(Some("SASL_SSL"), &set, &env)
            .into_iter()
            .map(|g| (g.key, g.value))
            .collect();
        assert_eq!(
            got,
            [
                ("ssl.keystore.type", "PKCS12".to_owned()),
                ("ssl.truststore.location", "/g/trust.jks".to_owned()),
            ]
        );
        assert!(global_keys_with(Some("PLAINTEXT"), &set, &env).is_empty());
        assert!(global_keys_with(None, &set, &env).is_empty());
    }
}
