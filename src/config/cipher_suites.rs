//! Java cipher suite names mapped onto OpenSSL's, for Flume's `include-cipher-suites` and
//! `exclude-cipher-suites` (and their `FLUME_SSL_*` globals) and a Kafka client's
//! `ssl.cipher.suites`.
//!
//! Java names suites as the IANA registry does (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`), the
//! oldest ones with an `SSL_` prefix; OpenSSL has its own names for the suites of TLS 1.2 and
//! below (`ECDHE-RSA-AES128-GCM-SHA256`) and the IANA names for TLS 1.3's, which it sets
//! apart (`SSL_CTX_set_ciphersuites`). OpenSSL's own table does the mapping
//! (`OPENSSL_cipher_name`), so every suite this OpenSSL has is known by its Java name.
//!
//! Flume filters the suites its TLS engine enables by default: a suite stays if the include
//! list (when there is one) names it and the exclude list does not; names the engine does not
//! know change nothing. Here the include list selects the suites it names that OpenSSL has,
//! never one without authentication or encryption (which Java never enables by default);
//! without one, OpenSSL's default list is the start; the excluded suites are then removed.

use openssl::error::ErrorStack;
use openssl::ssl::{SslContextBuilder, SslOptions, cipher_name};

/// OpenSSL's answer for a name it does not know.
const UNKNOWN: &str = "(NONE)";

/// TLS 1.3's suites, whose names Java and OpenSSL share.
const TLS13_SUITES: [&str; 5] = [
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_AES_128_CCM_SHA256",
    "TLS_AES_128_CCM_8_SHA256",
];

/// OpenSSL's default TLS 1.3 suites (`TLS_DEFAULT_CIPHERSUITES`), the start of the TLS 1.3
/// list when only exclusions are given.
const TLS13_DEFAULT: [&str; 3] = [
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "TLS_AES_128_GCM_SHA256",
];

/// The start of the TLS 1.2 list when only exclusions are given: OpenSSL's defaults without
/// the suites the openssl crate's client leaves out as weak.
const TLS12_DEFAULT: &str =
    "DEFAULT:!aNULL:!eNULL:!MD5:!3DES:!DES:!RC4:!IDEA:!SEED:!aDSS:!SRP:!PSK";

/// One suite of a Java list, as OpenSSL knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Suite {
    /// A suite of TLS 1.2 and below, by OpenSSL's name.
    Tls12(&'static str),
    /// A TLS 1.3 suite.
    Tls13(&'static str),
}

/// Reads a list of Java suite names (separated by spaces or commas): the suites OpenSSL has,
/// and the names it does not know (signalling values such as
/// `TLS_EMPTY_RENEGOTIATION_INFO_SCSV` are neither: they name no suite).
fn parse(list: &str) -> (Vec<Suite>, Vec<String>) {
    let mut suites = Vec::new();
    let mut unknown = Vec::new();
    for name in list.split([' ', ',', '\t']).filter(|n| !n.is_empty()) {
        if name.ends_with("_SCSV") {
            continue;
        }
        if let Some(s) = TLS13_SUITES.iter().find(|s| **s == name) {
            suites.push(Suite::Tls13(s));
            continue;
        }
        // Java's SSL_-prefixed names are the IANA TLS_ ones.
        let iana = match name.strip_prefix("SSL_") {
            Some(rest) => format!("TLS_{rest}"),
            None => name.to_owned(),
        };
        match cipher_name(&iana) {
            UNKNOWN => unknown.push(name.to_owned()),
            openssl => suites.push(Suite::Tls12(openssl)),
        }
    }
    (suites, unknown)
}

/// The suites a TLS context may use, after Flume's include and exclude lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CipherSuites {
    /// OpenSSL's cipher list for TLS 1.2 and below; `None`: none of them may be used, so
    /// those versions are turned off.
    tls12: Option<String>,
    /// The TLS 1.3 suites, `:`-separated; empty: TLS 1.3 is turned off.
    tls13: String,
}

impl CipherSuites {
    /// Filters by the include list (if any) and the exclude list. Returns the result with
    /// the names OpenSSL does not know, or an error when no suite is left.
    pub fn filter(
        include: Option<&str>,
        exclude: Option<&str>,
    ) -> Result<(CipherSuites, Vec<String>), String> {
        let (excluded, mut unknown) = exclude.map(parse).unwrap_or_default();
        let mut tls12: Vec<String> = Vec::new();
        let mut tls13: Vec<&str> = Vec::new();
        match include {
            Some(list) => {
                let (included, mut unknown_included) = parse(list);
                unknown.append(&mut unknown_included);
                for suite in included.iter().filter(|s| !excluded.contains(s)) {
                    match suite {
                        Suite::Tls12(name) if !tls12.iter().any(|n| n == name) => {
                            tls12.push((*name).to_owned())
                        }
                        Suite::Tls13(name) if !tls13.contains(name) => tls13.push(name),
                        _ => {}
                    }
                }
                if !tls12.is_empty() {
                    // Never a suite without authentication or encryption, whatever was named.
                    tls12.push("!aNULL:!eNULL".to_owned());
                }
            }
            None => {
                tls12.push(TLS12_DEFAULT.to_owned());
                tls13.extend(TLS13_DEFAULT);
                tls13.retain(|name| !excluded.contains(&Suite::Tls13(name)));
            }
        }
        for suite in &excluded {
            if let Suite::Tls12(name) = suite {
                tls12.push(format!("!{name}"));
            }
        }
        let suites = CipherSuites {
            tls12: (!tls12.is_empty()).then(|| tls12.join(":")),
            tls13: tls13.join(":"),
        };
        // OpenSSL decides what its list selects (an include list of NULL suites selects
        // nothing): try it on a context of its own.
        let usable = SslContextBuilder::new(openssl::ssl::SslMethod::tls())
            .and_then(|mut b| suites.apply(&mut b))
            .is_ok();
        if !usable || (suites.tls12.is_none() && suites.tls13.is_empty()) {
            return Err("no cipher suite that OpenSSL can use is left".into());
        }
        Ok((suites, unknown))
    }

    /// Whether only TLS 1.3 suites are left.
    pub fn tls13_only(&self) -> bool {
        self.tls12.is_none()
    }

    /// Whether no TLS 1.3 suite is left.
    pub fn no_tls13(&self) -> bool {
        self.tls13.is_empty()
    }

    /// Sets these suites on `b`, turning off the TLS versions none of them can be used with.
    pub fn apply(&self, b: &mut SslContextBuilder) -> Result<(), ErrorStack> {
        match &self.tls12 {
            Some(list) => b.set_cipher_list(list)?,
            None => {
                b.set_options(
                    SslOptions::NO_TLSV1 | SslOptions::NO_TLSV1_1 | SslOptions::NO_TLSV1_2,
                );
            }
        }
        b.set_ciphersuites(&self.tls13)?;
        if self.tls13.is_empty() {
            b.set_options(SslOptions::NO_TLSV1_3);
        }
        Ok(())
    }
}

/// A Java client's `ssl.cipher.suites` (comma-separated Java names) as librdkafka's
/// `ssl.cipher.suites`, an OpenSSL cipher list, which covers TLS 1.2 and below only. Returns
/// the list (`None` if only TLS 1.3 suites are named) and the TLS 1.3 suites it leaves out, or
/// an error naming the suites OpenSSL does not know (the Java client refuses those too).
pub fn openssl_cipher_list(java: &str) -> Result<(Option<String>, Vec<&'static str>), String> {
    let (suites, unknown) = parse(java);
    if !unknown.is_empty() {
        return Err(format!(
            "not a cipher suite OpenSSL has: {}",
            unknown.join(", ")
        ));
    }
    let mut tls12: Vec<&str> = Vec::new();
    let mut tls13 = Vec::new();
    for suite in suites {
        match suite {
            Suite::Tls12(name) => tls12.push(name),
            Suite::Tls13(name) => tls13.push(name),
        }
    }
    Ok(((!tls12.is_empty()).then(|| tls12.join(":")), tls13))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_names_map_onto_openssl_names() {
        let (suites, unknown) = parse(
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, TLS_AES_128_GCM_SHA256 \
             TLS_EMPTY_RENEGOTIATION_INFO_SCSV SSL_RSA_WITH_NULL_SHA256 NO_SUCH_SUITE",
        );
        assert_eq!(
            suites,
            [
                Suite::Tls12("ECDHE-RSA-AES256-GCM-SHA384"),
                Suite::Tls13("TLS_AES_128_GCM_SHA256"),
                Suite::Tls12("NULL-SHA256"),
            ]
        );
        assert_eq!(unknown, ["NO_SUCH_SUITE"]);
    }

    #[test]
    fn an_include_list_selects_its_suites_less_the_excluded() {
        let (s, unknown) = CipherSuites::filter(
            Some(
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 \
                 TLS_AES_256_GCM_SHA384 TLS_BOGUS",
            ),
            Some("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
        )
        .unwrap();
        assert_eq!(
            s.tls12.as_deref(),
            Some("ECDHE-RSA-AES256-GCM-SHA384:!aNULL:!eNULL:!ECDHE-RSA-AES128-GCM-SHA256")
        );
        assert_eq!(s.tls13, "TLS_AES_256_GCM_SHA384");
        assert_eq!(unknown, ["TLS_BOGUS"]);
    }

    #[test]
    fn an_exclude_list_alone_filters_openssls_defaults() {
        let (s, unknown) = CipherSuites::filter(
            None,
            Some("TLS_AES_128_GCM_SHA256 TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"),
        )
        .unwrap();
        assert_eq!(
            s.tls12,
            Some(format!("{TLS12_DEFAULT}:!ECDHE-ECDSA-AES128-SHA256"))
        );
        assert_eq!(
            s.tls13,
            "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
        );
        assert!(unknown.is_empty());
        assert!(!s.tls13_only() && !s.no_tls13());
    }

    #[test]
    fn tls13_suites_alone_turn_the_older_versions_off() {
        let (s, _) = CipherSuites::filter(Some("TLS_AES_256_GCM_SHA384"), None).unwrap();
        assert!(s.tls13_only());
        let mut b = SslContextBuilder::new(openssl::ssl::SslMethod::tls()).unwrap();
        s.apply(&mut b).unwrap();
        assert!(b.options().contains(SslOptions::NO_TLSV1_2));
        assert!(!b.options().contains(SslOptions::NO_TLSV1_3));
    }

    #[test]
    fn nothing_left_is_an_error() {
        for (include, exclude) in [
            (Some("TLS_BOGUS"), None),
            // Named, but without encryption: never selected.
            (Some("TLS_RSA_WITH_NULL_SHA256"), None),
            (
                Some("TLS_AES_256_GCM_SHA384"),
                Some("TLS_AES_256_GCM_SHA384"),
            ),
        ] {
            let e = CipherSuites::filter(include, exclude).unwrap_err();
            assert!(
                e.contains("no cipher suite"),
                "{include:?} {exclude:?}: {e}"
            );
        }
    }

    #[test]
    fn kafka_lists_become_openssl_cipher_lists() {
        let (list, tls13) = openssl_cipher_list(
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_AES_256_GCM_SHA384,\
             TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        )
        .unwrap();
        assert_eq!(
            list.as_deref(),
            Some("ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305")
        );
        assert_eq!(tls13, ["TLS_AES_256_GCM_SHA384"]);
        let e = openssl_cipher_list("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_NOPE").unwrap_err();
        assert!(e.contains("TLS_NOPE"), "{e}");
    }
}
