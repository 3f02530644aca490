//! Java key and trust stores read for librdkafka, which takes only PEM and PKCS#12 files: a
//! Flume config's `ssl.truststore.location` and `ssl.keystore.location` name Java stores,
//! JKS (Java 8's default) or PKCS#12 (keytool's default since Java 9), and this module turns
//! them into the PEM text librdkafka's `ssl.ca.pem`, `ssl.certificate.pem` and `ssl.key.pem`
//! take, so such a config runs unchanged and no key is written back to disk.
//!
//! JKS is read here by hand: it is a small fixed binary format (below), no maintained crate
//! reads it, and its two digests are SHA-1 over the password and the bytes. The layout, as
//! Java's `sun.security.provider.JavaKeyStore` writes it (big-endian):
//!
//! ```text
//! u32 magic 0xFEEDFEED   u32 version (1 or 2)   u32 entry count
//! entry: u32 tag (1 = private key, 2 = trusted certificate), alias (u16 length + modified
//!        UTF-8), u64 creation time in ms, then
//!   tag 1: u32 length + EncryptedPrivateKeyInfo (DER), u32 chain length, chain certificates
//!   tag 2: one certificate
//!   certificate: (version 2 only) type as u16 length + UTF-8, then u32 length + DER
//! SHA-1(password as UTF-16BE ‖ "Mighty Aphrodite" ‖ every byte above), 20 bytes
//! ```
//!
//! A private key's `encryptedData` is salt (20) ‖ key ^ keystream ‖ SHA-1(password ‖ key),
//! where the keystream is d1 = SHA-1(password ‖ salt), d(n+1) = SHA-1(password ‖ d(n)).
//! PKCS#12 is read with OpenSSL (the library librdkafka's TLS links), which needs its legacy
//! provider for the RC2-40 certificate bags Java 8's keytool wrote; it is loaded on demand.
//! OpenSSL also checks every certificate and key found, and writes the PEM.

use std::fmt;
use std::path::Path;
use std::sync::OnceLock;

use openssl::hash::{MessageDigest, hash};
use openssl::pkcs12::Pkcs12;
use openssl::pkey::PKey;
use openssl::provider::Provider;
use openssl::x509::X509;

const JKS_MAGIC: u32 = 0xFEED_FEED;
const JCEKS_MAGIC: u32 = 0xCECE_CECE;
/// Sun's key protection algorithm, 1.3.6.1.4.1.42.2.17.1.1, as a DER object identifier body.
const SUN_KEY_PROTECTOR: [u8; 10] = [0x2b, 0x06, 0x01, 0x04, 0x01, 0x2a, 0x02, 0x11, 0x01, 0x01];
const SHA1_LEN: usize = 20;
/// The largest file read as a store: real ones hold a few certificates, kilobytes each.
const MAX_STORE_BYTES: u64 = 16 << 20;

/// A store's contents as PEM text.
#[derive(Debug, Default)]
pub struct Pem {
    /// Each trusted certificate (a trust store's content).
    pub trusted: String,
    /// The private key entry, if the store holds one.
    pub key: Option<KeyPem>,
}

/// A private key and its certificate chain, leaf first.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPem {
    pub alias: String,
    /// PKCS#8, not encrypted.
    pub key: String,
    pub chain: String,
}

/// Without the key: a debug print must not put a private key in a log.
impl fmt::Debug for KeyPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPem")
            .field("alias", &self.alias)
            .field("key", &"<private key>")
            .field("chain", &self.chain)
            .finish()
    }
}

/// Why a store could not be read. The message names what was wrong and where in the file.
#[derive(Debug, PartialEq, Eq)]
pub struct StoreError(String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

fn error(message: impl Into<String>) -> StoreError {
    StoreError(message.into())
}

/// Reads the store at `path` of type `store_type` (`JKS` or `PKCS12`, upper-case). The
/// password checks the store's integrity (a JKS store is read without it, as Java does, but
/// its key needs one); `key_password` (Kafka's `ssl.key.password`) defaults to it.
pub fn read(
    path: &Path,
    store_type: &str,
    password: Option<&str>,
    key_password: Option<&str>,
) -> Result<Pem, StoreError> {
    if !matches!(store_type, "JKS" | "PKCS12") {
        return Err(error(format!(
            "a {store_type} store, which weir cannot read: convert it to PKCS#12 \
             (`keytool -importkeystore -srckeystore {p} -destkeystore {p}.p12 \
             -deststoretype PKCS12`) and name that file with type PKCS12",
            p = path.display()
        )));
    }
    // A path naming something else entirely should not be read into memory whole.
    let meta = regular_file(path)?;
    if meta.len() > MAX_STORE_BYTES {
        return Err(error(format!(
            "cannot read it: {} bytes, more than a key store holds (at most {MAX_STORE_BYTES})",
            meta.len()
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| error(format!("cannot read it: {e}")))?;
    read_bytes(&bytes, store_type, password, key_password)
}

/// The metadata of `path` if it is a regular file: opening a FIFO named as a store would
/// block the start until a writer came.
fn regular_file(path: &Path) -> Result<std::fs::Metadata, StoreError> {
    let meta = std::fs::metadata(path).map_err(|e| error(format!("cannot read it: {e}")))?;
    if !meta.is_file() {
        return Err(error("cannot read it: not a regular file"));
    }
    Ok(meta)
}

/// What the file at `path` holds, by its first bytes: `JKS`, `PKCS12` (a DER SEQUENCE, the
/// PFX) or `PEM` (its armour); `None` for anything else, or a path that is not a readable
/// regular file.
pub fn sniff(path: &Path) -> Option<&'static str> {
    regular_file(path).ok()?;
    let mut head = [0u8; 11];
    let mut file = std::fs::File::open(path).ok()?;
    let n = std::io::Read::read(&mut file, &mut head).ok()?;
    match &head[..n] {
        h if h.starts_with(&JKS_MAGIC.to_be_bytes()) => Some("JKS"),
        [0x30, ..] => Some("PKCS12"),
        h if h.starts_with(b"-----BEGIN") => Some("PEM"),
        _ => None,
    }
}

/// [`read`] of a store's bytes (also the `java_keystore` fuzz target's entry point).
pub fn read_bytes(
    bytes: &[u8],
    store_type: &str,
    password: Option<&str>,
    key_password: Option<&str>,
) -> Result<Pem, StoreError> {
    // Java (9+, `keystore.type.compat`) reads a JKS store named as PKCS12 and the other way
    // round: keytool writes PKCS#12 by default whatever the configuration calls it. So the
    // content decides between the two.
    let is_jks = bytes.starts_with(&JKS_MAGIC.to_be_bytes())
        || (store_type == "JKS" && !bytes.starts_with(&[0x30]));
    match store_type {
        "JKS" | "PKCS12" if is_jks => read_jks(bytes, password, key_password.or(password)),
        "JKS" | "PKCS12" => read_pkcs12(bytes, password.unwrap_or("")),
        other => Err(error(format!("a {other} store, which weir cannot read"))),
    }
}

/// A cursor over a JKS file that names the byte offset of whatever it cannot read.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], StoreError> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len());
        let Some(end) = end else {
            return Err(error(format!(
                "cut short at byte {}: {what} needs {n} bytes, {} are left",
                self.at,
                self.bytes.len() - self.at
            )));
        };
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u16(&mut self, what: &str) -> Result<u16, StoreError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &str) -> Result<u32, StoreError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Java's `writeUTF`: a u16 length and modified UTF-8 (read lossily: aliases and
    /// certificate types are ASCII in practice).
    fn utf(&mut self, what: &str) -> Result<String, StoreError> {
        let n = self.u16(what)?;
        Ok(String::from_utf8_lossy(self.take(n.into(), what)?).into_owned())
    }

    fn certificate(&mut self, version: u32, what: &str) -> Result<X509, StoreError> {
        if version == 2 {
            let kind = self.utf(what)?;
            if kind != "X.509" {
                return Err(error(format!(
                    "{what} at byte {} is of type {kind:?}; only X.509 is supported",
                    self.at
                )));
            }
        }
        let n = self.u32(what)?;
        let at = self.at;
        let der = self.take(n as usize, what)?;
        X509::from_der(der).map_err(|e| {
            error(format!(
                "{what} at byte {at} is not a valid certificate: {e}"
            ))
        })
    }
}

fn sha1(parts: &[&[u8]]) -> [u8; SHA1_LEN] {
    let joined = parts.concat();
    let mut out = [0; SHA1_LEN];
    // SHA-1 is always available in OpenSSL's default provider; should it ever fail, the
    // all-zero digest below matches nothing and the store is refused as altered.
    if let Ok(d) = hash(MessageDigest::sha1(), &joined) {
        out.copy_from_slice(&d);
    }
    out
}

/// A password as Java's stores use it in their digests: its UTF-16 code units, big-endian.
fn utf16_be(password: &str) -> Vec<u8> {
    password.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

fn read_jks(
    bytes: &[u8],
    password: Option<&str>,
    key_password: Option<&str>,
) -> Result<Pem, StoreError> {
    let mut c = Cursor { bytes, at: 0 };
    match c.u32("the magic number")? {
        JKS_MAGIC => {}
        JCEKS_MAGIC => {
            return Err(error(
                "a JCEKS store, which weir cannot read: convert it to PKCS#12 with \
                 `keytool -importkeystore … -deststoretype PKCS12`",
            ));
        }
        m => return Err(error(format!("not a JKS store: magic number {m:#010x}"))),
    }
    let version = c.u32("the version")?;
    if version != 1 && version != 2 {
        return Err(error(format!("JKS version {version} at byte 4 is unknown")));
    }
    let count = c.u32("the entry count")?;
    let mut pem = Pem::default();
    let mut keys = Vec::new();
    for i in 0..count {
        let at = c.at;
        let tag = c.u32("an entry's tag")?;
        let alias = c.utf("an entry's alias")?;
        c.take(8, "an entry's date")?;
        match tag {
            1 => {
                let n = c.u32("a private key")?;
                let key_at = c.at;
                let protected = c.take(n as usize, "a private key")?;
                let chain_len = c.u32("a certificate chain's length")?;
                let mut chain = Vec::new();
                for _ in 0..chain_len {
                    chain.push(c.certificate(version, "a chain certificate")?);
                }
                keys.push((alias, key_at, protected, chain));
            }
            2 => {
                let cert = c.certificate(version, "a trusted certificate")?;
                pem.trusted.push_str(&to_pem(&cert)?);
            }
            t => {
                return Err(error(format!(
                    "entry {i} at byte {at} has tag {t}; JKS knows 1 (private key) and 2 \
                     (trusted certificate)"
                )));
            }
        }
    }
    let body_end = c.at;
    let stored = c.take(SHA1_LEN, "the integrity digest")?;
    if c.at != bytes.len() {
        return Err(error(format!(
            "{} bytes follow the integrity digest at byte {body_end}",
            bytes.len() - c.at
        )));
    }
    if let Some(pw) = password {
        let digest = sha1(&[&utf16_be(pw), b"Mighty Aphrodite", &bytes[..body_end]]);
        if digest != stored {
            return Err(error(
                "its integrity check failed: the password is wrong or the file was altered",
            ));
        }
    }
    if keys.len() > 1 {
        let aliases: Vec<&str> = keys.iter().map(|k| k.0.as_str()).collect();
        return Err(error(format!(
            "it holds {} private keys ({}); a TLS endpoint presents one, so keep only the one \
             it should present",
            keys.len(),
            aliases.join(", ")
        )));
    }
    if let Some((alias, key_at, protected, chain)) = keys.pop() {
        let Some(pw) = key_password else {
            return Err(error(format!(
                "its private key '{alias}' needs a password: the store's (a source's \
                 keystore-password), or for a Kafka client ssl.key.password or \
                 ssl.keystore.password"
            )));
        };
        let pkcs8 = unprotect_key(protected, pw)
            .map_err(|why| error(format!("private key '{alias}' at byte {key_at}: {why}")))?;
        let key = PKey::private_key_from_pkcs8(&pkcs8)
            .and_then(|k| k.private_key_to_pem_pkcs8())
            .map_err(|e| error(format!("private key '{alias}' is not a valid key: {e}")))?;
        let mut chain_pem = String::new();
        for cert in &chain {
            chain_pem.push_str(&to_pem(cert)?);
        }
        pem.key = Some(KeyPem {
            alias,
            key: String::from_utf8_lossy(&key).into_owned(),
            chain: chain_pem,
        });
    }
    Ok(pem)
}

/// The PKCS#8 key inside a JKS `EncryptedPrivateKeyInfo` (see the module doc).
fn unprotect_key(der: &[u8], password: &str) -> Result<Vec<u8>, String> {
    let mut outer = Der::new(der);
    let mut info = Der::new(outer.expect(0x30, "EncryptedPrivateKeyInfo")?);
    let mut algorithm = Der::new(info.expect(0x30, "its algorithm")?);
    let oid = algorithm.expect(0x06, "its algorithm's identifier")?;
    if oid != SUN_KEY_PROTECTOR {
        return Err(format!(
            "protected with algorithm {oid:02x?}, not Sun's JKS key protector"
        ));
    }
    let data = info.expect(0x04, "its encrypted data")?;
    if data.len() < 2 * SHA1_LEN {
        return Err("its encrypted data is shorter than its salt and check".into());
    }
    let pw = utf16_be(password);
    let (salt, rest) = data.split_at(SHA1_LEN);
    let (encrypted, check) = rest.split_at(rest.len() - SHA1_LEN);
    let mut key = Vec::with_capacity(encrypted.len());
    let mut block = [0; SHA1_LEN];
    block.copy_from_slice(salt);
    for chunk in encrypted.chunks(SHA1_LEN) {
        block = sha1(&[&pw, &block]);
        key.extend(chunk.iter().zip(block).map(|(b, k)| b ^ k));
    }
    if sha1(&[&pw, &key]) != check {
        return Err(
            "the key password is wrong (the store's password: a source's \
                    keystore-password; for a Kafka client ssl.key.password, or else \
                    ssl.keystore.password)"
                .into(),
        );
    }
    Ok(key)
}

/// Just enough DER to walk an `EncryptedPrivateKeyInfo`: tag, length, value.
struct Der<'a> {
    rest: &'a [u8],
}

impl<'a> Der<'a> {
    fn new(bytes: &'a [u8]) -> Der<'a> {
        Der { rest: bytes }
    }

    /// The value of the next element, which must have `tag`.
    fn expect(&mut self, tag: u8, what: &str) -> Result<&'a [u8], String> {
        let bad = || format!("{what} is not well-formed DER");
        let (&t, rest) = self.rest.split_first().ok_or_else(bad)?;
        if t != tag {
            return Err(format!(
                "{what}: DER tag {t:#04x} where {tag:#04x} was expected"
            ));
        }
        let (&first, mut rest) = rest.split_first().ok_or_else(bad)?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return Err(bad());
            }
            let (len_bytes, after) = rest.split_at(n);
            rest = after;
            len_bytes.iter().fold(0, |l, b| (l << 8) | usize::from(*b))
        };
        if rest.len() < len {
            return Err(bad());
        }
        let (value, after) = rest.split_at(len);
        self.rest = after;
        Ok(value)
    }
}

fn to_pem(cert: &X509) -> Result<String, StoreError> {
    let pem = cert
        .to_pem()
        .map_err(|e| error(format!("a certificate cannot be written as PEM: {e}")))?;
    Ok(String::from_utf8_lossy(&pem).into_owned())
}

/// OpenSSL 3 reads Java 8's PKCS#12 algorithms (RC2-40, 3DES bags) only through its legacy
/// provider. Loaded once, for the whole process, only when a store needs it; kept loaded.
fn legacy_provider() -> bool {
    static LEGACY: OnceLock<Option<Provider>> = OnceLock::new();
    LEGACY
        .get_or_init(|| Provider::try_load(None, "legacy", true).ok())
        .is_some()
}

/// A certificate's subject as `CN=…, O=…`, for messages.
fn subject_text(cert: &X509) -> String {
    cert.subject_name()
        .entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let value = e.data().to_string().unwrap_or_default();
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn read_pkcs12(bytes: &[u8], password: &str) -> Result<Pem, StoreError> {
    if password.contains('\0') {
        return Err(error("its password contains a NUL character"));
    }
    let parse = || Pkcs12::from_der(bytes).and_then(|p| p.parse2(password));
    let parsed = match parse() {
        Ok(p) => p,
        Err(first) => {
            if !legacy_provider() {
                return Err(error(format!("cannot read it as PKCS#12: {first}")));
            }
            parse().map_err(|e| {
                error(format!(
                    "cannot read it as PKCS#12 (is the password right?): {e}"
                ))
            })?
        }
    };
    let mut pem = Pem::default();
    let chain: Vec<X509> = parsed.ca.into_iter().flatten().collect();
    match (parsed.pkey, parsed.cert) {
        (Some(key), Some(cert)) => {
            // OpenSSL hands over the first key and puts every other certificate beside it. One
            // issued by the key's own issuer is another key entry's (a JKS store with two keys
            // is refused the same way): presenting the first key would be a guess.
            let siblings: Vec<String> = chain
                .iter()
                .filter(|c| {
                    c.issuer_name().to_der().ok() == cert.issuer_name().to_der().ok()
                        && c.subject_name().to_der().ok() != cert.issuer_name().to_der().ok()
                })
                .map(subject_text)
                .collect();
            if !siblings.is_empty() {
                return Err(error(format!(
                    "it holds the certificates of more than one key ({} besides {}); a TLS \
                     endpoint presents one, so keep only the one it should present",
                    siblings.join(", "),
                    subject_text(&cert)
                )));
            }
            let key = key
                .private_key_to_pem_pkcs8()
                .map_err(|e| error(format!("its private key cannot be written as PEM: {e}")))?;
            let mut chain_pem = to_pem(&cert)?;
            for c in &chain {
                chain_pem.push_str(&to_pem(c)?);
            }
            pem.key = Some(KeyPem {
                alias: String::new(),
                key: String::from_utf8_lossy(&key).into_owned(),
                chain: chain_pem,
            });
        }
        // Certificates without a key are a trust store's (Java marks them trusted).
        (None, cert) => {
            for c in cert.iter().chain(&chain) {
                pem.trusted.push_str(&to_pem(c)?);
            }
        }
        (Some(_), None) => return Err(error("it holds a private key without its certificate")),
    }
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/java-stores")
            .join(name)
    }

    /// A PKCS#12 store holding, beside its key, another certificate of the key's issuer (what
    /// OpenSSL makes of a store with two key entries) is refused, as a JKS store with two keys
    /// is, naming both; the same store with the CA as the extra certificate is read.
    #[test]
    fn a_pkcs12_store_with_the_certificates_of_two_keys_is_refused() {
        let read_pem = |name: &str| std::fs::read(fixture(name)).unwrap();
        let key = PKey::private_key_from_pem(&read_pem("server.key.pem")).unwrap();
        let cert = X509::from_pem(&read_pem("server.pem")).unwrap();
        let store = |extra: &str| {
            let mut ca = openssl::stack::Stack::new().unwrap();
            ca.push(X509::from_pem(&read_pem(extra)).unwrap()).unwrap();
            let mut b = Pkcs12::builder();
            b.name("server").pkey(&key).cert(&cert).ca(ca);
            let der = b.build2("pw").unwrap().to_der().unwrap();
            let file = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(file.path(), der).unwrap();
            file
        };
        let two = store("client.pem");
        let e = read(two.path(), "PKCS12", Some("pw"), None).unwrap_err();
        assert!(
            e.0.contains("more than one key (CN=weir test client besides CN=127.0.0.1)"),
            "{e}"
        );
        let one = store("ca.pem");
        let pem = read(one.path(), "PKCS12", Some("pw"), None).unwrap();
        assert!(pem.key.is_some());
    }

    fn der_of_pems(text: &str) -> Vec<Vec<u8>> {
        X509::stack_from_pem(text.as_bytes())
            .expect("PEM")
            .iter()
            .map(|c| c.to_der().expect("DER"))
            .collect()
    }

    fn pem_file(name: &str) -> Vec<Vec<u8>> {
        der_of_pems(&std::fs::read_to_string(fixture(name)).expect("fixture"))
    }

    fn same_key(pem: &str, file: &str) -> bool {
        let a = PKey::private_key_from_pem(pem.as_bytes()).expect("key");
        let b = PKey::private_key_from_pem(&std::fs::read(fixture(file)).expect("fixture"))
            .expect("key");
        a.public_eq(&b)
    }

    #[test]
    fn trust_stores_of_every_kind_give_the_ca() {
        for (file, kind) in [
            ("truststore.jks", "JKS"),
            ("truststore.p12", "PKCS12"),
            ("truststore-legacy.p12", "PKCS12"),
        ] {
            let pem = read(&fixture(file), kind, Some("trust-pass"), None)
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(der_of_pems(&pem.trusted), pem_file("ca.pem"), "{file}");
            assert!(pem.key.is_none(), "{file}");
        }
        // Java reads a JKS trust store without its password (no integrity check).
        let pem = read(&fixture("truststore.jks"), "JKS", None, None).expect("no password");
        assert_eq!(der_of_pems(&pem.trusted), pem_file("ca.pem"));
    }

    #[test]
    fn key_stores_give_the_key_and_its_chain() {
        let jks = read(
            &fixture("keystore.jks"),
            "JKS",
            Some("store-pass"),
            Some("key-pass"),
        )
        .expect("jks");
        let p12 = read(&fixture("keystore.p12"), "PKCS12", Some("store-pass"), None).expect("p12");
        for pem in [jks, p12] {
            let key = pem.key.expect("a key entry");
            assert!(same_key(&key.key, "client.key.pem"));
            let mut chain = pem_file("client.pem");
            chain.extend(pem_file("ca.pem"));
            assert_eq!(der_of_pems(&key.chain), chain);
            assert!(key.key.starts_with("-----BEGIN PRIVATE KEY-----"));
        }
    }

    #[test]
    fn wrong_passwords_are_named() {
        let e = read(&fixture("truststore.jks"), "JKS", Some("nope"), None).unwrap_err();
        assert!(e.0.contains("integrity check failed"), "{e}");
        // The store password is right, the key's is not (it has one of its own).
        let e = read(&fixture("keystore.jks"), "JKS", Some("store-pass"), None).unwrap_err();
        assert!(
            e.0.starts_with("private key 'client' at byte ")
                && e.0.contains("key password is wrong"),
            "{e}"
        );
        let e = read(&fixture("keystore.jks"), "JKS", None, None).unwrap_err();
        assert!(e.0.contains("needs a password"), "{e}");
        let e = read(&fixture("truststore.p12"), "PKCS12", Some("nope"), None).unwrap_err();
        assert!(e.0.contains("PKCS#12"), "{e}");
        let e = read(&fixture("truststore.p12"), "PKCS12", Some("a\0b"), None).unwrap_err();
        assert!(e.0.contains("NUL"), "{e}");
    }

    #[test]
    fn every_cut_and_every_flipped_byte_of_a_jks_store_is_an_error_not_a_panic() {
        let bytes = std::fs::read(fixture("keystore.jks")).expect("fixture");
        for n in 0..bytes.len() {
            let r = read_jks(&bytes[..n], Some("store-pass"), Some("key-pass"));
            let e = r
                .err()
                .unwrap_or_else(|| panic!("a store cut at {n} was read"));
            assert!(!e.0.is_empty());
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            // With the password, the digest catches every change.
            assert!(
                read_jks(&b, Some("store-pass"), Some("key-pass")).is_err(),
                "byte {i}"
            );
            // Without it, reading must still not panic.
            let _ = read_jks(&b, None, Some("key-pass"));
        }
        let e = read_jks(&bytes[..30], None, None).unwrap_err();
        assert!(e.0.starts_with("cut short at byte "), "{e}");
    }

    /// As Java 9+ (`keystore.type.compat`): the file's content decides between JKS and
    /// PKCS#12, whatever type the configuration names.
    #[test]
    fn the_content_decides_between_jks_and_pkcs12() {
        let as_p12 = read(
            &fixture("truststore.jks"),
            "PKCS12",
            Some("trust-pass"),
            None,
        )
        .expect("a JKS store named PKCS12");
        let as_jks = read(&fixture("truststore.p12"), "JKS", Some("trust-pass"), None)
            .expect("a PKCS#12 store named JKS");
        assert_eq!(as_p12.trusted, as_jks.trusted);
    }

    #[test]
    fn other_formats_are_named() {
        let e = read_jks(&[0xce, 0xce, 0xce, 0xce, 0, 0, 0, 2], None, None).unwrap_err();
        assert!(e.0.contains("JCEKS"), "{e}");
        let e = read_jks(b"-----BEGIN", None, None).unwrap_err();
        assert!(e.0.contains("not a JKS store"), "{e}");
        let e = read(&fixture("truststore.jks"), "BKS", None, None).unwrap_err();
        assert!(
            e.0.contains("a BKS store") && e.0.contains("keytool"),
            "{e}"
        );
        let e = read(&fixture("no-such-store.jks"), "JKS", None, None).unwrap_err();
        assert!(e.0.starts_with("cannot read it"), "{e}");
        // A FIFO would block the start if it were opened; a directory is no store either.
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        for path in [fifo.as_path(), dir.path()] {
            let e = read(path, "JKS", None, None).unwrap_err();
            assert_eq!(e.0, "cannot read it: not a regular file");
            assert_eq!(sniff(path), None, "not opened, so nothing recognised");
        }
    }
}
