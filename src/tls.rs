//! TLS contexts built from the configuration's TLS settings (`config::tls`): the acceptor a
//! source presents its key with (avro, thrift, http) and the connector an RPC sink checks its
//! target with. OpenSSL, the library librdkafka's TLS links too. The connections themselves
//! are `rpc_connection`'s and `http_wire`'s.

use anyhow::Context;
use openssl::pkey::PKey;
use openssl::ssl::{SslAcceptor, SslConnector, SslMethod, SslOptions, SslVerifyMode};
use openssl::x509::X509;
use openssl::x509::store::X509StoreBuilder;

use crate::config::{Protocols, TlsClientConfig, TlsServerConfig};

/// A server presenting the key and certificate chain of `tls`.
pub fn acceptor(tls: &TlsServerConfig) -> anyhow::Result<SslAcceptor> {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    let key = PKey::private_key_from_pem(tls.key.key.as_bytes())?;
    let mut chain = X509::stack_from_pem(tls.key.chain.as_bytes())?.into_iter();
    let leaf = chain
        .next()
        .context("the key store's key has no certificate")?;
    b.set_private_key(&key)?;
    b.set_certificate(&leaf)?;
    for cert in chain {
        b.add_extra_chain_cert(cert)?;
    }
    b.check_private_key()
        .context("the key store's key does not match its certificate")?;
    b.set_options(exclusions(&tls.protocols));
    Ok(b.build())
}

/// A client checking servers against the trust store of `tls` (which replaces the system's
/// roots, as a Java trust store does), the system's roots without one, or nothing with
/// `trust-all-certs`. The host name is checked by the caller's connection, if at all.
pub fn connector(tls: &TlsClientConfig) -> anyhow::Result<SslConnector> {
    let mut b = SslConnector::builder(SslMethod::tls_client())?;
    if tls.trust_all {
        b.set_verify(SslVerifyMode::NONE);
    } else if let Some(pem) = &tls.trusted {
        let mut store = X509StoreBuilder::new()?;
        for cert in X509::stack_from_pem(pem.as_bytes())? {
            store.add_cert(cert)?;
        }
        b.set_cert_store(store.build());
    }
    b.set_options(exclusions(&tls.protocols));
    Ok(b.build())
}

fn exclusions(p: &Protocols) -> SslOptions {
    let mut o = SslOptions::NO_SSLV3;
    for v in &p.excluded {
        o |= match *v {
            "TLSv1" => SslOptions::NO_TLSV1,
            "TLSv1.1" => SslOptions::NO_TLSV1_1,
            "TLSv1.2" => SslOptions::NO_TLSV1_2,
            _ => SslOptions::NO_TLSV1_3,
        };
    }
    o
}
