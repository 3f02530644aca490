//! Flume's TLS keys of the TLS servers (avro, thrift, http and syslog TCP sources) and the RPC
//! sinks: `ssl`, a source's `keystore*`, a sink's `truststore*` and `trust-all-certs`, and the
//! protocol and cipher suite filters, with Flume 1.9's global settings (`FLUME_SSL_*` environment
//! variables) where a component sets none. The stores are read here ([`super::java_keystore`]),
//! so a wrong password or a damaged store stops the start with the key and line.

use std::path::Path;

use super::cipher_suites::CipherSuites;
use super::java_keystore::{self, KeyPem};
use super::{ConfigError, Section};

/// A TLS server's settings (`ssl = true` on a source).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsServerConfig {
    pub key: KeyPem,
    pub protocols: Protocols,
    /// `None`: the TLS context's own default suites.
    pub ciphers: Option<CipherSuites>,
}

/// A TLS client's settings (`ssl = true` on a sink).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsClientConfig {
    /// The trusted certificates (PEM); `None`: the system's (Java: its default trust store).
    pub trusted: Option<String>,
    /// `trust-all-certs`: the server's certificate is not checked at all.
    pub trust_all: bool,
    pub protocols: Protocols,
    /// `None`: the TLS context's own default suites.
    pub ciphers: Option<CipherSuites>,
}

/// The TLS versions a connection may use, after Flume's include and exclude lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Protocols {
    /// Versions not to offer, in Java's names (`TLSv1`, `TLSv1.1`, `TLSv1.2`, `TLSv1.3`).
    pub excluded: Vec<&'static str>,
}

/// The TLS versions Java names that a connection can use; SSLv3 is always excluded (Flume
/// excludes it whatever the configuration says, and OpenSSL no longer speaks it).
const VERSIONS: [&str; 4] = ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"];

/// Flume 1.9's global TLS settings, where a component sets none of its own.
fn global(name: &str) -> Option<String> {
    std::env::var(format!("FLUME_SSL_{name}"))
        .ok()
        .filter(|v| !v.trim().is_empty())
}

/// Where a component's TLS keys are read: its own keys (or the older names in
/// `aliases`, with a note), else Flume's global settings.
struct Keys<'a, 's> {
    s: &'a Section<'s>,
    aliases: &'a [(&'a str, &'a str)],
    globals: &'a dyn Fn(&str) -> Option<String>,
}

impl Keys<'_, '_> {
    /// The key actually set for `key`: itself, or its older name.
    fn name(&self, key: &str) -> String {
        match self.aliases.iter().find(|(new, _)| *new == key) {
            Some((_, old)) if self.s.string(key).is_none() && self.s.string(old).is_some() => {
                (*old).to_owned()
            }
            _ => key.to_owned(),
        }
    }

    fn get(&self, key: &str, env: &str, notes: &mut Vec<String>) -> Option<String> {
        let name = self.name(key);
        if name != key {
            return self.s.deprecated(&name, key, notes);
        }
        self.s.string(key).or_else(|| (self.globals)(env))
    }
}

/// The TLS settings of a source, if `ssl = true`.
pub fn server(
    s: &Section,
    notes: &mut Vec<String>,
) -> Result<Option<TlsServerConfig>, ConfigError> {
    server_with(s, notes, &[], &global)
}

/// [`server`] for the http source, which also reads the older names of Flume's HTTPSource
/// before 1.9: `enableSSL`, `keystorePassword`, `excludeProtocols`.
pub fn http_server(
    s: &Section,
    notes: &mut Vec<String>,
) -> Result<Option<TlsServerConfig>, ConfigError> {
    server_with(
        s,
        notes,
        &[
            ("ssl", "enableSSL"),
            ("keystore-password", "keystorePassword"),
            ("exclude-protocols", "excludeProtocols"),
        ],
        &global,
    )
}

fn server_with(
    s: &Section,
    notes: &mut Vec<String>,
    aliases: &[(&str, &str)],
    globals: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<TlsServerConfig>, ConfigError> {
    let keys = Keys {
        s,
        aliases,
        globals,
    };
    for (new, old) in aliases {
        if s.string(new).is_some() {
            s.superseded(old, new, notes);
        }
    }
    let ssl = keys.name("ssl");
    if ssl != "ssl" {
        s.deprecated(&ssl, "ssl", notes);
    }
    if !s.bool_or(&ssl, false)? {
        for key in [
            "keystore",
            "keystore-password",
            "keystore-type",
            "exclude-protocols",
            "include-protocols",
            "exclude-cipher-suites",
            "include-cipher-suites",
            "keymanager-type",
        ] {
            s.ignored_with(&keys.name(key), "ssl = false", notes);
        }
        return Ok(None);
    }
    s.accept_without_effect(
        "keymanager-type",
        "the key store is read by weir itself, not by a Java key manager",
        notes,
    );
    let Some(path) = keys.get("keystore", "KEYSTORE_PATH", notes) else {
        return Err(s.error(
            Some("keystore"),
            format!(
                "missing: ssl = true needs `{}` (the server's Java key store) or \
                 FLUME_SSL_KEYSTORE_PATH",
                s.full("keystore")
            ),
        ));
    };
    let password = keys.get("keystore-password", "KEYSTORE_PASSWORD", notes);
    let configured = keys.get("keystore-type", "KEYSTORE_TYPE", notes);
    let store_type = store_type(configured.as_deref());
    let pem = java_keystore::read(Path::new(&path), &store_type, password.as_deref(), None)
        .map_err(|e| {
            s.error(
                Some("keystore"),
                format!("Java {store_type} keystore {path}: {e}"),
            )
        })?;
    let Some(key) = pem.key else {
        return Err(s.error(
            Some("keystore"),
            format!("Java {store_type} keystore {path} holds no private key"),
        ));
    };
    let protocols = protocols(&keys, notes)?;
    Ok(Some(TlsServerConfig {
        key,
        ciphers: cipher_suites(&keys, &protocols, notes)?,
        protocols,
    }))
}

/// The TLS settings of a sink, if `ssl = true`.
pub fn client(
    s: &Section,
    notes: &mut Vec<String>,
) -> Result<Option<TlsClientConfig>, ConfigError> {
    client_with(s, notes, &global)
}

fn client_with(
    s: &Section,
    notes: &mut Vec<String>,
    globals: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<TlsClientConfig>, ConfigError> {
    if !s.bool_or("ssl", false)? {
        for key in [
            "truststore",
            "truststore-password",
            "truststore-type",
            "trust-all-certs",
            "exclude-protocols",
            "include-protocols",
            "exclude-cipher-suites",
            "include-cipher-suites",
        ] {
            s.ignored_with(key, "ssl = false", notes);
        }
        return Ok(None);
    }
    let keys = Keys {
        s,
        aliases: &[],
        globals,
    };
    let trust_all = s.bool_or("trust-all-certs", false)?;
    let trusted = match keys.get("truststore", "TRUSTSTORE_PATH", notes) {
        _ if trust_all => {
            for key in ["truststore", "truststore-password", "truststore-type"] {
                s.ignored_with(key, "trust-all-certs = true", notes);
            }
            None
        }
        None => None,
        Some(path) => {
            let password = keys.get("truststore-password", "TRUSTSTORE_PASSWORD", notes);
            let configured = keys.get("truststore-type", "TRUSTSTORE_TYPE", notes);
            let store_type = store_type(configured.as_deref());
            let pem = java_keystore::read(Path::new(&path), &store_type, password.as_deref(), None)
                .map_err(|e| {
                    s.error(
                        Some("truststore"),
                        format!("Java {store_type} truststore {path}: {e}"),
                    )
                })?;
            if pem.trusted.is_empty() {
                return Err(s.error(
                    Some("truststore"),
                    format!("Java {store_type} truststore {path} holds no trusted certificate"),
                ));
            }
            Some(pem.trusted)
        }
    };
    let protocols = protocols(&keys, notes)?;
    Ok(Some(TlsClientConfig {
        trusted,
        trust_all,
        ciphers: cipher_suites(&keys, &protocols, notes)?,
        protocols,
    }))
}

/// The JVM-wide trust store of a Flume agent (`-Djavax.net.ssl.trustStore`, or Flume 1.9's
/// `FLUME_SSL_TRUSTSTORE_*`), which Java clients without a trust store of their own, such as
/// the http sink's `HttpURLConnection`, verify servers with: its certificates as PEM, or
/// `None` when none is set. Errors are put on `key`.
pub fn global_trust_store(s: &Section, key: &str) -> Result<Option<String>, ConfigError> {
    let Some(path) = global("TRUSTSTORE_PATH") else {
        return Ok(None);
    };
    let store_type = store_type(global("TRUSTSTORE_TYPE").as_deref());
    let password = global("TRUSTSTORE_PASSWORD");
    let pem = java_keystore::read(Path::new(&path), &store_type, password.as_deref(), None)
        .map_err(|e| {
            s.error(
                Some(key),
                format!("the global trust store (FLUME_SSL_TRUSTSTORE_PATH or -Djavax.net.ssl.trustStore) {path}: {e}"),
            )
        })?;
    if pem.trusted.is_empty() {
        return Err(s.error(
            Some(key),
            format!("the global trust store {path} holds no trusted certificate"),
        ));
    }
    Ok(Some(pem.trusted))
}

/// Flume's store types: JKS by default; PKCS12 and JKS are read.
fn store_type(configured: Option<&str>) -> String {
    configured.unwrap_or("JKS").trim().to_ascii_uppercase()
}

/// `include-protocols` and `exclude-protocols` (space-separated Java names).
fn protocols(keys: &Keys, notes: &mut Vec<String>) -> Result<Protocols, ConfigError> {
    let s = keys.s;
    let exclude_key = keys.name("exclude-protocols");
    let mut list = |key: &str, env: &str| -> Result<Option<Vec<&'static str>>, ConfigError> {
        let Some(text) = keys.get(key, env, notes) else {
            return Ok(None);
        };
        let key = keys.name(key);
        let mut out = Vec::new();
        for name in text.split([' ', ',']).filter(|n| !n.is_empty()) {
            match name {
                "SSLv3" | "SSLv2Hello" | "SSLv2" => {}
                _ => match VERSIONS.iter().find(|v| v.eq_ignore_ascii_case(name)) {
                    Some(v) => out.push(*v),
                    None => {
                        return Err(s.error(
                            Some(&key),
                            format!(
                                "'{name}' is not a TLS version; Java's names are {}",
                                VERSIONS.join(", ")
                            ),
                        ));
                    }
                },
            }
        }
        Ok(Some(out))
    };
    let include = list("include-protocols", "INCLUDE_PROTOCOLS")?;
    let exclude = list("exclude-protocols", "EXCLUDE_PROTOCOLS")?.unwrap_or_default();
    let excluded: Vec<&'static str> = VERSIONS
        .into_iter()
        .filter(|v| exclude.contains(v) || include.as_ref().is_some_and(|i| !i.contains(v)))
        .collect();
    if excluded.len() == VERSIONS.len() {
        return Err(s.error(
            Some(if include.is_some() {
                "include-protocols"
            } else {
                &exclude_key
            }),
            "no TLS version is left to use".into(),
        ));
    }
    Ok(Protocols { excluded })
}

/// `include-cipher-suites` and `exclude-cipher-suites` (space-separated Java names), if either
/// is set; they must leave a suite that one of the TLS versions in `protocols` can use.
fn cipher_suites(
    keys: &Keys,
    protocols: &Protocols,
    notes: &mut Vec<String>,
) -> Result<Option<CipherSuites>, ConfigError> {
    let s = keys.s;
    let include = keys.get("include-cipher-suites", "INCLUDE_CIPHERSUITES", notes);
    let exclude = keys.get("exclude-cipher-suites", "EXCLUDE_CIPHERSUITES", notes);
    if include.is_none() && exclude.is_none() {
        return Ok(None);
    }
    // Errors go on the list that decides: the include list if there is one.
    let key = if include.is_some() {
        "include-cipher-suites"
    } else {
        "exclude-cipher-suites"
    };
    let (suites, unknown) = CipherSuites::filter(include.as_deref(), exclude.as_deref())
        .map_err(|e| s.error(Some(key), e))?;
    for (key, env, list) in [
        ("include-cipher-suites", "INCLUDE_CIPHERSUITES", &include),
        ("exclude-cipher-suites", "EXCLUDE_CIPHERSUITES", &exclude),
    ] {
        let Some(list) = list else { continue };
        let named: Vec<&str> = list
            .split([' ', ',', '\t'])
            .filter(|n| unknown.iter().any(|u| u == n))
            .collect();
        if named.is_empty() {
            continue;
        }
        let from = match s.entry(key) {
            Some(e) => format!("{}: {}", e.at(), s.full(key)),
            None => format!("FLUME_SSL_{env}"),
        };
        notes.push(format!(
            "{from}: not cipher suites this OpenSSL has, so they change nothing (as in Java): {}",
            named.join(" ")
        ));
    }
    let excluded = |v: &str| protocols.excluded.contains(&v);
    let tls12_or_older_left = ["TLSv1", "TLSv1.1", "TLSv1.2"]
        .into_iter()
        .any(|v| !excluded(v));
    if (suites.tls13_only() && excluded("TLSv1.3")) || (suites.no_tls13() && !tls12_or_older_left) {
        return Err(s.error(
            Some(key),
            "no cipher suite left is one the allowed TLS versions can use (TLS 1.3 has \
             suites of its own: TLS_AES_*, TLS_CHACHA20_*)"
                .into(),
        ));
    }
    Ok(Some(suites))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Properties;

    fn stores() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/java-stores")
    }

    /// `server_with` or `client_with`.
    type Reader<T> =
        fn(&Section, &mut Vec<String>, &dyn Fn(&str) -> Option<String>) -> Result<T, ConfigError>;

    fn server_with(
        s: &Section,
        notes: &mut Vec<String>,
        globals: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<TlsServerConfig>, ConfigError> {
        super::server_with(s, notes, &[], globals)
    }

    fn parse<T>(
        text: &str,
        globals: &[(&str, &str)],
        f: Reader<T>,
    ) -> Result<(T, Vec<String>), String> {
        let props = Properties::parse(Path::new("t.properties"), text.as_bytes()).unwrap();
        let s = Section::new(&props, "a.sources.r1.".into());
        let mut notes = Vec::new();
        let g = |name: &str| {
            globals
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        };
        f(&s, &mut notes, &g)
            .map(|c| (c, notes))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_server_reads_its_key_store() {
        let text = format!(
            "a.sources.r1.ssl = true\na.sources.r1.keystore = {}\n\
             a.sources.r1.keystore-password = store-pass\na.sources.r1.keystore-type = PKCS12\n\
             a.sources.r1.exclude-protocols = SSLv3 TLSv1 TLSv1.1\n",
            stores().join("keystore.p12").display()
        );
        let (c, notes) = parse(&text, &[], server_with).unwrap();
        let c = c.expect("ssl = true");
        assert!(c.key.key.contains("PRIVATE KEY"));
        assert_eq!(c.protocols.excluded, ["TLSv1", "TLSv1.1"]);
        assert!(notes.is_empty(), "{notes:?}");
        // Off: the keys are noted, nothing is read.
        let (c, notes) = parse("a.sources.r1.keystore = /nowhere.jks\n", &[], server_with).unwrap();
        assert!(c.is_none());
        assert!(notes[0].contains("ignored with ssl = false"), "{notes:?}");
    }

    #[test]
    fn the_global_settings_stand_in_for_missing_keys() {
        let ks = stores().join("keystore.p12").display().to_string();
        let globals = [
            ("KEYSTORE_PATH", ks.as_str()),
            ("KEYSTORE_PASSWORD", "store-pass"),
            ("KEYSTORE_TYPE", "pkcs12"),
            ("INCLUDE_PROTOCOLS", "TLSv1.3"),
        ];
        let (c, _) = parse("a.sources.r1.ssl = true\n", &globals, server_with).unwrap();
        let c = c.expect("ssl = true");
        assert_eq!(c.protocols.excluded, ["TLSv1", "TLSv1.1", "TLSv1.2"]);
        // The component's own key wins.
        let e = parse(
            "a.sources.r1.ssl = true\na.sources.r1.keystore-password = wrong\n",
            &globals,
            server_with,
        )
        .unwrap_err();
        assert!(
            e.starts_with("t.properties:1: a.sources.r1.keystore: Java PKCS12 keystore")
                && e.contains("PKCS#12"),
            "{e}"
        );
    }

    #[test]
    fn a_client_reads_its_trust_store_or_trusts_all() {
        let text = format!(
            "a.sources.r1.ssl = true\na.sources.r1.truststore = {}\n\
             a.sources.r1.truststore-password = trust-pass\n",
            stores().join("truststore.jks").display()
        );
        let (c, _) = parse(&text, &[], client_with).unwrap();
        let c = c.expect("ssl = true");
        let ca = std::fs::read_to_string(stores().join("ca.pem")).unwrap();
        assert_eq!(c.trusted.as_deref(), Some(ca.as_str()));
        assert!(!c.trust_all);
        let (c, _) = parse("a.sources.r1.ssl = true\n", &[], client_with).unwrap();
        assert_eq!(c.expect("ssl").trusted, None, "the system's trust store");
        let (c, notes) = parse(
            &format!("{text}a.sources.r1.trust-all-certs = true\n"),
            &[],
            client_with,
        )
        .unwrap();
        let c = c.expect("ssl = true");
        assert!(c.trust_all && c.trusted.is_none());
        assert!(
            notes
                .iter()
                .any(|n| n.contains("ignored with trust-all-certs = true"))
        );
    }

    #[test]
    fn mistakes_are_named() {
        let e = parse("a.sources.r1.ssl = true\n", &[], server_with).unwrap_err();
        assert!(e.contains("keystore: missing"), "{e}");
        let text = format!(
            "a.sources.r1.ssl = true\na.sources.r1.keystore = {}\n\
             a.sources.r1.keystore-password = trust-pass\n",
            stores().join("truststore.jks").display()
        );
        let e = parse(&text, &[], server_with).unwrap_err();
        assert!(e.ends_with("holds no private key"), "{e}");
        let e = parse(
            "a.sources.r1.ssl = true\na.sources.r1.include-protocols = TLSv1.4\n",
            &[],
            client_with,
        )
        .unwrap_err();
        assert!(e.contains("'TLSv1.4' is not a TLS version"), "{e}");
        let e = parse(
            "a.sources.r1.ssl = true\n\
             a.sources.r1.exclude-protocols = TLSv1 TLSv1.1 TLSv1.2 TLSv1.3\n",
            &[],
            client_with,
        )
        .unwrap_err();
        assert!(e.contains("no TLS version is left"), "{e}");
    }

    #[test]
    fn cipher_suite_lists_are_read_with_unknown_names_noted() {
        let (c, notes) = parse(
            "a.sources.r1.ssl = true\n\
             a.sources.r1.exclude-cipher-suites = TLS_RSA_WITH_RC4_128_MD5 \
             TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n",
            &[],
            client_with,
        )
        .unwrap();
        let (expected, _) = CipherSuites::filter(
            None,
            Some("TLS_RSA_WITH_RC4_128_MD5 TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
        )
        .unwrap();
        assert_eq!(c.expect("ssl").ciphers, Some(expected));
        assert!(
            notes.iter().any(|n| n
                == "t.properties:2: a.sources.r1.exclude-cipher-suites: not cipher suites this \
                    OpenSSL has, so they change nothing (as in Java): TLS_RSA_WITH_RC4_128_MD5"),
            "{notes:?}"
        );
        // Without lists, the context's defaults.
        let (c, _) = parse("a.sources.r1.ssl = true\n", &[], client_with).unwrap();
        assert_eq!(c.expect("ssl").ciphers, None);
        // Flume 1.9's global lists, where the component sets none.
        let (c, _) = parse(
            "a.sources.r1.ssl = true\n",
            &[("INCLUDE_CIPHERSUITES", "TLS_AES_256_GCM_SHA384")],
            client_with,
        )
        .unwrap();
        let c = c.expect("ssl").ciphers.expect("the global include list");
        assert!(c.tls13_only());
    }

    #[test]
    fn cipher_suite_lists_leaving_nothing_usable_are_named() {
        let e = parse(
            "a.sources.r1.ssl = true\na.sources.r1.include-cipher-suites = TLS_NO_SUCH_SUITE\n",
            &[],
            client_with,
        )
        .unwrap_err();
        assert!(
            e.starts_with("t.properties:2: a.sources.r1.include-cipher-suites: no cipher suite"),
            "{e}"
        );
        // Only TLS 1.3 suites, or only older ones, with the versions they need excluded.
        for versions in ["exclude-protocols = TLSv1.3", "include-protocols = TLSv1.3"] {
            let suite = if versions.starts_with("exclude") {
                "TLS_AES_256_GCM_SHA384"
            } else {
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
            };
            let e = parse(
                &format!(
                    "a.sources.r1.ssl = true\n\
                     a.sources.r1.include-cipher-suites = {suite}\n\
                     a.sources.r1.{versions}\n"
                ),
                &[],
                client_with,
            )
            .unwrap_err();
            assert!(
                e.starts_with(
                    "t.properties:2: a.sources.r1.include-cipher-suites: no cipher \
                     suite left is one the allowed TLS versions can use"
                ),
                "{versions}: {e}"
            );
        }
    }
}
