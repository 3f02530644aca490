//! The hdfs sink's client: the few HDFS operations Flume's HDFS sink needs (create a file with
//! data, append to it, rename it when it is rolled, make directories, read a file's status),
//! spoken over the WebHDFS REST API.
//!
//! WebHDFS rather than Hadoop RPC: there is no Hadoop RPC client in Rust (the protocol is
//! protobuf over Hadoop's own framing, SASL and data-transfer protocol, with the block pipeline
//! to DataNodes driven by the client), while WebHDFS is plain HTTP that every NameNode serves
//! (and HttpFS gateways serve the same API), so a blocking HTTP client is all it takes.
//!
//! Writing is WebHDFS's two steps (WebHDFS.md, "Create and Write to a File", "Append to a
//! File"): the request goes to the NameNode without data and without following redirects; the
//! NameNode answers `307 Temporary Redirect` with a `Location` on a DataNode; the data then goes
//! to that URL only (CREATE answers `201 Created`, APPEND `200 OK`). Redirects are never
//! followed by the HTTP client, so the data is sent exactly once, and only to the DataNode. A
//! NameNode asked with `noredirect=true` answers `200` and `{"Location": ...}` instead, which is
//! understood too.
//!
//! Errors name the operation, the HDFS path and the host:port talked to. A failed operation's
//! answer is a RemoteException JSON (`{"RemoteException": {"exception", "javaClassName",
//! "message"}}`, WebHDFS.md "Error Responses"): its exception and message go in the error,
//! which is a [`WebHdfsError`] that callers can downcast to read the exception's name (e.g. to
//! tell `FileAlreadyExistsException` from a network failure).
//!
//! Each request is bounded as a whole (connect, send, answer, body) by the timeout given, as
//! Flume's `hdfs.callTimeout` bounds each HDFS call; connections are kept alive and reused
//! through one [`ureq::Agent`].

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::bail;
use serde::Deserialize;
use ureq::Agent;

/// The prefix WebHDFS puts before an HDFS path in its URLs.
const PREFIX: &str = "/webhdfs/v1";
/// The most of an answer's body read; WebHDFS's answers to these operations are small JSON
/// objects or empty, so more is not a WebHDFS answer.
const BODY_LIMIT: u64 = 1 << 20;
/// How much of a body that is not a RemoteException goes into an error.
const SHOWN_BODY: usize = 200;

/// A WebHDFS client for one NameNode (or HttpFS gateway).
pub struct WebHdfs {
    /// `scheme://authority`, without a trailing slash.
    base: String,
    /// host:port of the NameNode, for messages.
    authority: String,
    user: Option<String>,
    proxy_user: Option<String>,
    timeout: Duration,
    agent: Agent,
}

impl std::fmt::Debug for WebHdfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebHdfs")
            .field("endpoint", &self.base)
            .field("user", &self.user)
            .field("proxy_user", &self.proxy_user)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// What GETFILESTATUS says of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStatus {
    /// Bytes in the file (0 for a directory).
    pub length: u64,
    pub is_dir: bool,
}

/// A failed WebHDFS operation.
#[derive(Debug, thiserror::Error)]
#[error("WebHDFS {op} {path} at {at}: {detail}")]
pub struct WebHdfsError {
    /// The WebHDFS operation (`CREATE`, `APPEND`, `RENAME`, ...).
    pub op: &'static str,
    /// The HDFS path (for RENAME, `from to to`).
    pub path: String,
    /// Who answered or failed to: `NameNode host:port`, or `DataNode host:port (redirected by
    /// NameNode host:port)`.
    pub at: String,
    /// What went wrong.
    pub detail: String,
    /// The HTTP status, when there was an answer.
    pub status: Option<u16>,
    /// The RemoteException's name (`FileAlreadyExistsException`), when the answer was one.
    pub exception: Option<String>,
}

/// The name of the RemoteException that failed a WebHDFS operation, if that is what `error`
/// is.
pub fn remote_exception(error: &anyhow::Error) -> Option<&str> {
    error
        .downcast_ref::<WebHdfsError>()
        .and_then(|e| e.exception.as_deref())
}

#[derive(Clone, Copy)]
enum Method {
    Get,
    Put,
    Post,
}

/// An answer, its body read (up to [`BODY_LIMIT`]) so its connection can be reused.
struct Answer {
    status: u16,
    location: Option<String>,
    body: Vec<u8>,
}

/// What went wrong with an answer: the text, and what of it a [`WebHdfsError`] keeps.
struct Refusal {
    detail: String,
    status: Option<u16>,
    exception: Option<String>,
}

impl From<String> for Refusal {
    fn from(detail: String) -> Refusal {
        Refusal {
            detail,
            status: None,
            exception: None,
        }
    }
}

#[derive(Deserialize)]
struct RemoteExceptionJson {
    #[serde(rename = "RemoteException")]
    remote: RemoteException,
}

#[derive(Deserialize)]
struct RemoteException {
    exception: Option<String>,
    #[serde(rename = "javaClassName")]
    java_class_name: Option<String>,
    message: Option<String>,
}

#[derive(Deserialize)]
struct BooleanJson {
    boolean: bool,
}

#[derive(Deserialize)]
struct FileStatusJson {
    #[serde(rename = "FileStatus")]
    status: FileStatusFields,
}

#[derive(Deserialize)]
struct FileStatusFields {
    length: u64,
    #[serde(rename = "type")]
    kind: String,
}

/// `{"FileStatuses": {"FileStatus": [{"pathSuffix": "name", …}, …]}}`: LISTSTATUS's answer.
#[derive(Deserialize)]
struct ListingJson {
    #[serde(rename = "FileStatuses")]
    statuses: ListingStatuses,
}

#[derive(Deserialize)]
struct ListingStatuses {
    #[serde(rename = "FileStatus", default)]
    status: Vec<ListedStatus>,
}

#[derive(Deserialize)]
struct ListedStatus {
    #[serde(rename = "pathSuffix")]
    path_suffix: String,
}

/// `{"Location": "..."}`: a NameNode's answer to a CREATE or APPEND with `noredirect=true`.
#[derive(Deserialize)]
struct LocationJson {
    #[serde(rename = "Location")]
    location: String,
}

impl WebHdfs {
    /// A client for the NameNode at `endpoint` (`http://host:port` or `https://host:port`, its
    /// HTTP address), acting as `user` (`user.name=`, simple authentication) on behalf of
    /// `proxy_user` (`doas=`, Flume's `hdfs.proxyUser`); `timeout` bounds each request.
    pub fn new(
        endpoint: &str,
        user: Option<String>,
        proxy_user: Option<String>,
        timeout: Duration,
    ) -> anyhow::Result<WebHdfs> {
        WebHdfs::with_trusted(endpoint, user, proxy_user, timeout, None)
    }

    /// As [`WebHdfs::new`]; for an https endpoint, the certificates of `trusted` (PEM, the
    /// agent's global trust store) replace the system's roots, as `javax.net.ssl.trustStore`
    /// does in Java. The DataNodes a NameNode redirects to are trusted the same way.
    pub fn with_trusted(
        endpoint: &str,
        user: Option<String>,
        proxy_user: Option<String>,
        timeout: Duration,
        trusted: Option<&str>,
    ) -> anyhow::Result<WebHdfs> {
        let base = endpoint.trim_end_matches('/');
        let uri: ureq::http::Uri = match base.parse() {
            Ok(uri) => uri,
            Err(e) => bail!("WebHDFS endpoint '{endpoint}' is not a URL: {e}"),
        };
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") if cfg!(feature = "https") => true,
            Some("https") => bail!(
                "WebHDFS endpoint '{endpoint}' is https, and this weir was built without the \
                 `https` feature (cargo build --features https)"
            ),
            _ => bail!(
                "WebHDFS endpoint '{endpoint}' is not an http:// or https:// URL \
                 (the NameNode's HTTP address, e.g. http://namenode:9870)"
            ),
        };
        let Some(host) = uri.host().filter(|h| !h.is_empty()) else {
            bail!("WebHDFS endpoint '{endpoint}' has no host");
        };
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            bail!(
                "WebHDFS endpoint '{endpoint}' has a path or query: give only \
                 scheme://host:port, {PREFIX} and the HDFS path are added to it"
            );
        }
        if timeout.is_zero() {
            bail!("WebHDFS endpoint '{endpoint}': the call timeout must be positive");
        }
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        Ok(WebHdfs {
            base: base.to_owned(),
            authority: format!("{host}:{port}"),
            user,
            proxy_user,
            timeout,
            agent: client(timeout, trusted),
        })
    }

    /// The NameNode's `scheme://host:port`, as given.
    pub fn endpoint(&self) -> &str {
        &self.base
    }

    /// Creates `path` (which must not exist: `overwrite=false`) with `data` as its content; the
    /// NameNode creates missing parent directories.
    pub fn create(&self, path: &str, data: &[u8]) -> anyhow::Result<()> {
        self.write(Method::Put, "CREATE", path, &[("overwrite", "false")], data)
    }

    /// Appends `data` to the existing file `path`.
    pub fn append(&self, path: &str, data: &[u8]) -> anyhow::Result<()> {
        self.write(Method::Post, "APPEND", path, &[], data)
    }

    /// Renames `from` to `to`; `Ok(false)` when the NameNode answers `{"boolean": false}`
    /// (HDFS's rename fails that way when `from` is missing or `to` exists).
    pub fn rename(&self, from: &str, to: &str) -> anyhow::Result<bool> {
        let path = format!("{from} to {to}");
        if let Err(why) = check_path(to) {
            return Err(self.error("RENAME", &path, self.at_namenode(), why.into()));
        }
        let url = self.url("RENAME", from, &[("destination", to)])?;
        let answer = self.on_namenode(Method::Put, "RENAME", &path, &url)?;
        self.boolean("RENAME", &path, &answer)
    }

    /// Makes `path` and its missing parents a directory.
    pub fn mkdirs(&self, path: &str) -> anyhow::Result<()> {
        let url = self.url("MKDIRS", path, &[])?;
        let answer = self.on_namenode(Method::Put, "MKDIRS", path, &url)?;
        if self.boolean("MKDIRS", path, &answer)? {
            Ok(())
        } else {
            Err(self.error(
                "MKDIRS",
                path,
                self.at_namenode(),
                "the NameNode answered {\"boolean\": false}"
                    .to_owned()
                    .into(),
            ))
        }
    }

    /// The names of the entries of directory `path` (LISTSTATUS); `Ok(None)` when it does not
    /// exist (a FileNotFoundException).
    pub fn list(&self, path: &str) -> anyhow::Result<Option<Vec<String>>> {
        let url = self.url("LISTSTATUS", path, &[])?;
        let answer = match self.on_namenode(Method::Get, "LISTSTATUS", path, &url) {
            Ok(answer) => answer,
            Err(e) if remote_exception(&e) == Some("FileNotFoundException") => return Ok(None),
            Err(e) => return Err(e),
        };
        match serde_json::from_slice::<ListingJson>(&answer.body) {
            Ok(json) => Ok(Some(
                json.statuses
                    .status
                    .into_iter()
                    .map(|s| s.path_suffix)
                    .collect(),
            )),
            Err(e) => {
                let why = format!(
                    "HTTP 200 with no FileStatuses JSON ({e}): {}",
                    shown(&answer.body)
                );
                Err(self.error("LISTSTATUS", path, self.at_namenode(), why.into()))
            }
        }
    }

    /// The status of `path`; `Ok(None)` when it does not exist (a FileNotFoundException).
    pub fn status(&self, path: &str) -> anyhow::Result<Option<FileStatus>> {
        let url = self.url("GETFILESTATUS", path, &[])?;
        let at = self.at_namenode();
        let answer = self
            .exchange(Method::Get, &url, None)
            .map_err(|why| self.error("GETFILESTATUS", path, at.clone(), why.into()))?;
        match answer.status {
            200 => match serde_json::from_slice::<FileStatusJson>(&answer.body) {
                Ok(json) => Ok(Some(FileStatus {
                    length: json.status.length,
                    is_dir: json.status.kind == "DIRECTORY",
                })),
                Err(e) => Err(self.error(
                    "GETFILESTATUS",
                    path,
                    at,
                    format!(
                        "HTTP 200 with no FileStatus JSON ({e}): {}",
                        shown(&answer.body)
                    )
                    .into(),
                )),
            },
            _ => {
                let refusal = refusal(answer.status, &answer.body);
                // Only a FileNotFoundException means a missing file: a bare 404 is more likely
                // a server that does not serve WebHDFS there.
                if answer.status == 404
                    && refusal.exception.as_deref() == Some("FileNotFoundException")
                {
                    Ok(None)
                } else {
                    Err(self.error("GETFILESTATUS", path, at, refusal))
                }
            }
        }
    }

    /// CREATE or APPEND: the NameNode step without data, then the data to the DataNode it
    /// names.
    fn write(
        &self,
        method: Method,
        op: &'static str,
        path: &str,
        extra: &[(&str, &str)],
        data: &[u8],
    ) -> anyhow::Result<()> {
        let url = self.url(op, path, extra)?;
        let namenode = self.at_namenode();
        let first = self
            .exchange(method, &url, None)
            .map_err(|why| self.error(op, path, namenode.clone(), why.into()))?;
        let location = match first.status {
            // 307 is WebHDFS's; 308 keeps the method and body as well.
            307 | 308 => match first.location {
                Some(location) => location,
                None => {
                    let why = format!("HTTP {} without a Location header", first.status);
                    return Err(self.error(op, path, namenode, why.into()));
                }
            },
            200 | 201 => match serde_json::from_slice::<LocationJson>(&first.body) {
                Ok(json) => json.location,
                // A gateway that did the operation without a redirect: nothing was sent, so
                // only an empty write is done.
                Err(_) if data.is_empty() => return Ok(()),
                Err(_) => {
                    let why = format!(
                        "HTTP {} to the first step, with no redirect to a DataNode: the {} \
                         bytes were not written{}",
                        first.status,
                        data.len(),
                        if op == "CREATE" {
                            " (the file may now exist, empty)"
                        } else {
                            ""
                        }
                    );
                    return Err(self.error(op, path, namenode, why.into()));
                }
            },
            status if (300..400).contains(&status) => {
                let why = format!(
                    "HTTP {status} to {}: a redirect that may not keep the method, not \
                     WebHDFS's 307",
                    first.location.as_deref().unwrap_or("no Location")
                );
                return Err(self.error(op, path, namenode, why.into()));
            }
            status => return Err(self.error(op, path, namenode, refusal(status, &first.body))),
        };
        let target = self.resolve(&location);
        let datanode = format!(
            "DataNode {} (redirected by NameNode {})",
            authority_of(&target),
            self.authority
        );
        let second = self
            .exchange(method, &target, Some(data))
            .map_err(|why| self.error(op, path, datanode.clone(), why.into()))?;
        // 201 for CREATE, 200 for APPEND; any success is one.
        if (200..300).contains(&second.status) {
            Ok(())
        } else {
            Err(self.error(op, path, datanode, refusal(second.status, &second.body)))
        }
    }

    /// A NameNode operation that answers 200 when done.
    fn on_namenode(
        &self,
        method: Method,
        op: &'static str,
        path: &str,
        url: &str,
    ) -> anyhow::Result<Answer> {
        let answer = self
            .exchange(method, url, None)
            .map_err(|why| self.error(op, path, self.at_namenode(), why.into()))?;
        if answer.status == 200 {
            Ok(answer)
        } else {
            let refusal = refusal(answer.status, &answer.body);
            Err(self.error(op, path, self.at_namenode(), refusal))
        }
    }

    /// The `{"boolean": ...}` of an answer.
    fn boolean(&self, op: &'static str, path: &str, answer: &Answer) -> anyhow::Result<bool> {
        match serde_json::from_slice::<BooleanJson>(&answer.body) {
            Ok(json) => Ok(json.boolean),
            Err(e) => {
                let why = format!(
                    "HTTP {} with no {{\"boolean\": ...}} JSON ({e}): {}",
                    answer.status,
                    shown(&answer.body)
                );
                Err(self.error(op, path, self.at_namenode(), why.into()))
            }
        }
    }

    /// The NameNode URL of `op` on `path`, with `extra` parameters and the user's.
    fn url(&self, op: &'static str, path: &str, extra: &[(&str, &str)]) -> anyhow::Result<String> {
        if let Err(why) = check_path(path) {
            return Err(self.error(op, path, self.at_namenode(), why.into()));
        }
        let mut url = format!("{}{PREFIX}{}?op={op}", self.base, encode(path, true));
        let user = [("user.name", &self.user), ("doas", &self.proxy_user)];
        let user = user
            .iter()
            .filter_map(|(k, v)| v.as_deref().map(|v| (*k, v)));
        for (name, value) in extra.iter().copied().chain(user) {
            let _ = write!(url, "&{name}={}", encode(value, true));
        }
        Ok(url)
    }

    /// A Location made absolute: a relative one is on the NameNode.
    fn resolve(&self, location: &str) -> String {
        if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            location.to_owned()
        }
    }

    fn at_namenode(&self) -> String {
        format!("NameNode {}", self.authority)
    }

    fn error(&self, op: &'static str, path: &str, at: String, refusal: Refusal) -> anyhow::Error {
        anyhow::Error::new(WebHdfsError {
            op,
            path: path.to_owned(),
            at,
            detail: refusal.detail,
            status: refusal.status,
            exception: refusal.exception,
        })
    }

    /// One request, its body read; `Err` says why there is no answer.
    fn exchange(&self, method: Method, url: &str, body: Option<&[u8]>) -> Result<Answer, String> {
        let sent = match method {
            Method::Get => self.agent.get(url).call(),
            Method::Put => send(self.agent.put(url), body),
            Method::Post => send(self.agent.post(url), body),
        };
        let mut response = sent.map_err(|e| self.describe(e))?;
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .read_to_vec()
            .map_err(|e| {
                format!(
                    "HTTP {status}, and its body could not be read: {}",
                    self.describe(e)
                )
            })?;
        Ok(Answer {
            status,
            location,
            body,
        })
    }

    fn describe(&self, error: ureq::Error) -> String {
        let timed_out = || {
            format!(
                "timed out: no answer within the call timeout ({} ms)",
                self.timeout.as_millis()
            )
        };
        match error {
            // Only the global timeout is set: the phase adds nothing.
            ureq::Error::Timeout(ureq::Timeout::Global) => timed_out(),
            ureq::Error::Timeout(phase) => format!("{} ({phase})", timed_out()),
            ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => timed_out(),
            ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                "connection refused".to_owned()
            }
            ureq::Error::ConnectionFailed => "could not connect".to_owned(),
            ureq::Error::HostNotFound => "host not found".to_owned(),
            ureq::Error::BodyExceedsLimit(limit) => {
                format!("an answer over {limit} bytes, which is not a WebHDFS answer")
            }
            other => other.to_string(),
        }
    }
}

/// Sends a PUT or POST: with no body at all on the NameNode step (so no data can go there),
/// with the data on the DataNode step. HttpFS takes data only as `application/octet-stream`;
/// a DataNode ignores the type.
fn send(
    request: ureq::RequestBuilder<ureq::typestate::WithBody>,
    body: Option<&[u8]>,
) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
    match body {
        None => request.send_empty(),
        Some(data) => request
            .header("Content-Type", "application/octet-stream")
            .send(data),
    }
}

/// The error text of an answer that is not a success: the RemoteException's name and message,
/// or else the status and the start of the body.
fn refusal(status: u16, body: &[u8]) -> Refusal {
    if let Ok(json) = serde_json::from_slice::<RemoteExceptionJson>(body) {
        let remote = json.remote;
        let name = remote
            .exception
            .or_else(|| {
                let class = remote.java_class_name?;
                Some(class.rsplit('.').next().unwrap_or_default().to_owned())
            })
            .unwrap_or_else(|| "RemoteException".to_owned());
        let message = remote.message.unwrap_or_default();
        return Refusal {
            detail: format!("{name}: {message} (HTTP {status})"),
            status: Some(status),
            exception: Some(name),
        };
    }
    let detail = if body.iter().all(u8::is_ascii_whitespace) {
        format!("HTTP {status} with an empty body")
    } else {
        format!("HTTP {status}: {}", shown(body))
    };
    Refusal {
        detail,
        status: Some(status),
        exception: None,
    }
}

/// The first [`SHOWN_BODY`] bytes of a body, on one line.
fn shown(body: &[u8]) -> String {
    let cut = &body[..body.len().min(SHOWN_BODY)];
    let mut text: String = String::from_utf8_lossy(cut)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if body.len() > SHOWN_BODY {
        text.push_str("...");
    }
    text
}

/// Checks an HDFS path: absolute, and without `.` or `..` components, which an HTTP stack may
/// resolve on the way and so write somewhere else than named (HDFS refuses them anyway).
fn check_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err("not an absolute HDFS path (it must start with /)".to_owned());
    }
    if path.split('/').any(|part| part == "." || part == "..") {
        return Err("a path with . or .. components".to_owned());
    }
    Ok(())
}

/// Percent-encodes everything but RFC 3986's unreserved characters (and `/` if `keep_slash`),
/// so a path or value reaches the server exactly as given: spaces, `%`, `#`, `?`, `&`, `+` and
/// non-ASCII (as UTF-8 bytes) included.
fn encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The host:port of a URL, for messages.
fn authority_of(url: &str) -> String {
    match url.parse::<ureq::http::Uri>() {
        Ok(uri) => match (uri.host(), uri.port_u16()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) if uri.scheme_str() == Some("https") => format!("{host}:443"),
            (Some(host), None) => format!("{host}:80"),
            _ => url.to_owned(),
        },
        Err(_) => url.to_owned(),
    }
}

/// The client: keep-alive pool, each request bounded as a whole by `timeout`, no redirects
/// followed (the two steps are done by hand, so data goes only to the DataNode), no proxy from
/// the environment, and every status returned rather than turned into an error (so a
/// RemoteException's body can be read).
fn client(timeout: Duration, trusted: Option<&str>) -> Agent {
    let builder = Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .user_agent(concat!("weir/", env!("CARGO_PKG_VERSION")))
        .timeout_global(Some(timeout));
    #[cfg(feature = "https")]
    let builder = builder.tls_config(crate::tls::http_client_tls(trusted));
    #[cfg(not(feature = "https"))]
    let _ = trusted;
    builder.build().into()
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::time::Instant;

    use super::*;
    use crate::sink::hdfs::webhdfs_mock::MockWebHdfs;

    const TIMEOUT: Duration = Duration::from_secs(10);

    fn client(mock: &MockWebHdfs) -> WebHdfs {
        WebHdfs::new(&mock.endpoint(), Some("flume".into()), None, TIMEOUT).unwrap()
    }

    fn authority(mock: &MockWebHdfs) -> String {
        mock.endpoint().trim_start_matches("http://").to_owned()
    }

    #[test]
    fn create_then_two_appends_make_the_concatenation_each_in_two_steps() {
        let mock = MockWebHdfs::start();
        let hdfs = client(&mock);
        let path = "/flume/2026-11-28/FlumeData.1234.tmp";
        hdfs.create(path, b"one\n").unwrap();
        hdfs.append(path, b"two\n").unwrap();
        hdfs.append(path, b"three\n").unwrap();
        assert_eq!(mock.file(path).unwrap(), b"one\ntwo\nthree\n");
        assert_eq!(mock.files().len(), 1);
        let requests = mock.requests();
        let expected = [
            format!("PUT CREATE {path} overwrite=false user.name=flume"),
            format!("datanode: PUT CREATE {path} overwrite=false user.name=flume"),
            format!("POST APPEND {path} user.name=flume"),
            format!("datanode: POST APPEND {path} user.name=flume"),
            format!("POST APPEND {path} user.name=flume"),
            format!("datanode: POST APPEND {path} user.name=flume"),
        ];
        assert_eq!(requests.len(), expected.len(), "{requests:#?}");
        for (request, expected) in requests.iter().zip(&expected) {
            assert!(
                request.starts_with(expected.as_str()),
                "{request} vs {expected}"
            );
        }
        assert_eq!(
            hdfs.status(path).unwrap(),
            Some(FileStatus {
                length: 14,
                is_dir: false
            })
        );
    }

    #[test]
    fn connections_are_kept_alive_and_reused() {
        let mock = MockWebHdfs::start();
        let hdfs = client(&mock);
        hdfs.create("/a", b"1").unwrap();
        for _ in 0..5 {
            hdfs.append("/a", b"2").unwrap();
            hdfs.status("/a").unwrap();
        }
        assert_eq!(
            mock.connections(),
            (1, 1),
            "(NameNode, DataNode) connections"
        );
    }

    #[test]
    fn creating_an_existing_file_fails_naming_the_exception_path_and_endpoint() {
        let mock = MockWebHdfs::start();
        let hdfs = client(&mock);
        mock.put_file("/flume/a.log", b"old");
        let err = hdfs.create("/flume/a.log", b"new").unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("FileAlreadyExistsException"), "{text}");
        assert!(text.contains("CREATE /flume/a.log"), "{text}");
        assert!(
            text.contains(&format!("NameNode {}", authority(&mock))),
            "{text}"
        );
        assert!(text.contains("HTTP 403"), "{text}");
        assert_eq!(remote_exception(&err), Some("FileAlreadyExistsException"));
        assert_eq!(mock.file("/flume/a.log").unwrap(), b"old");
        assert!(
            !mock.requests().iter().any(|r| r.starts_with("datanode")),
            "no data was sent"
        );
    }

    #[test]
    fn appending_to_a_missing_file_names_file_not_found() {
        let mock = MockWebHdfs::start();
        let hdfs = client(&mock);
        let err = hdfs.append("/flume/missing", b"x").unwrap_err();
        let text = format!("{err}");
        assert!(text.contains("FileNotFoundException"), "{text}");
        assert!(text.contains("APPEND /flume/missing"), "{text}");
        assert!(text.contains(&authority(&mock)), "{text}");
        assert_eq!(remote_exception(&err), Some("FileNotFoundException"));
        assert!(mock.files().is_empty());
    }

    #[test]
    fn rename_moves_and_answers_false_when_it_cannot() {
        let mock = MockWebHdfs::start();
        let hdfs = client(&mock);
        hdfs.create("/flume/a.tmp", b"data").unwrap();
        assert!(hdfs.rename("/flume/a.tmp", "/flume/a").unwrap());
        assert_eq!(mock.file("/flume/a").unwrap(), b"data");
        assert_eq!(mock.file("/flume/a.tmp"), None);
        assert!(
            !hdfs.rename("/flume/a.tmp", "/flume/b").unwrap(),
            "source gone"
        );
        mock.put_file("/flume/c", b"c");
        assert!(
            !hdfs.rename("/flume/a", "/flume/c").unwrap(),
            "target exists"
        );
        assert_eq!(mock.file("/flume/a").unwrap(), b"data");
        assert!(
            mock.requests()
                .contains(&"PUT RENAME /flume/a.tmp destination=/flume/a user.name=flume".into()),
            "{:#?}",
            mock.requests()
        );
    }

    #[test]
    fn status_is_none_when_missing_and_gives_length_and_kind() {
        let mock = MockWebHdfs::start();
        let hdfs = client(&mock);
        assert_eq!(hdfs.status("/nothing/here").unwrap(), None);
        hdfs.create("/d/f", b"12345").unwrap();
        assert_eq!(
            hdfs.status("/d/f").unwrap(),
            Some(FileStatus {
                length: 5,
                is_dir: false
            })
        );
        hdfs.mkdirs("/e/f/g").unwrap();
        for dir in ["/d", "/e/f/g", "/"] {
            assert_eq!(
                hdfs.status(dir).unwrap(),
                Some(FileStatus {
                    length: 0,
                    is_dir: true
                }),
                "{dir}"
            );
        }
    }

    #[test]
    fn odd_characters_in_paths_and_values_round_trip_exactly() {
        let mock = MockWebHdfs::start();
        let hdfs =
            WebHdfs::new(&mock.endpoint(), Some("fl ume&x=1".into()), None, TIMEOUT).unwrap();
        let path = "/flume/a b/100% #1?x=y&z+ü.tmp";
        let moved = "/flume/done/ü 100%+#?.log";
        hdfs.create(path, b"a").unwrap();
        hdfs.append(path, b"b").unwrap();
        assert_eq!(hdfs.status(path).unwrap().map(|s| s.length), Some(2));
        assert_eq!(mock.file(path).unwrap(), b"ab");
        assert!(hdfs.rename(path, moved).unwrap());
        assert_eq!(
            mock.files().into_iter().collect::<Vec<_>>(),
            vec![(moved.to_owned(), b"ab".to_vec())]
        );
        assert!(
            mock.requests()
                .iter()
                .all(|r| r.contains(" user.name=fl ume&x=1")),
            "{:#?}",
            mock.requests()
        );
    }

    #[test]
    fn user_and_proxy_user_go_with_every_request() {
        let mock = MockWebHdfs::start();
        let hdfs = WebHdfs::new(
            &mock.endpoint(),
            Some("flume".into()),
            Some("alice".into()),
            TIMEOUT,
        )
        .unwrap();
        hdfs.create("/f", b"x").unwrap();
        hdfs.status("/f").unwrap();
        let requests = mock.requests();
        assert_eq!(requests.len(), 3);
        assert!(
            requests
                .iter()
                .all(|r| r.contains(" user.name=flume doas=alice")),
            "{requests:#?}"
        );
        // Without a user, no user.name at all (the server's default web user applies).
        let anonymous = WebHdfs::new(&mock.endpoint(), None, None, TIMEOUT).unwrap();
        anonymous.status("/f").unwrap();
        assert_eq!(mock.requests().last().unwrap(), "GET GETFILESTATUS /f");
    }

    #[test]
    fn an_injected_failure_fails_the_append_and_stores_nothing() {
        let mock = MockWebHdfs::start();
        let hdfs = client(&mock);
        hdfs.create("/f", b"base").unwrap();
        mock.fail_next("APPEND", 1);
        let err = hdfs.append("/f", b"lost").unwrap_err();
        let text = format!("{err}");
        assert!(
            text.contains("IOException") && text.contains("HTTP 500"),
            "{text}"
        );
        assert!(
            text.contains(&format!("NameNode {}", authority(&mock))),
            "{text}"
        );
        assert_eq!(mock.file("/f").unwrap(), b"base");

        // Failed on the DataNode, after the data went: the error names the DataNode.
        mock.fail_next_on_datanode("APPEND", 1);
        let err = hdfs.append("/f", b"lost").unwrap_err();
        let text = format!("{err}");
        assert!(text.contains("IOException"), "{text}");
        assert!(
            text.contains(&format!("DataNode {}", mock.datanode())),
            "{text}"
        );
        assert_eq!(mock.file("/f").unwrap(), b"base");

        hdfs.append("/f", b"+more").unwrap();
        assert_eq!(mock.file("/f").unwrap(), b"base+more");
    }

    #[test]
    fn a_closed_port_is_connection_refused_naming_the_endpoint() {
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let hdfs = WebHdfs::new(&format!("http://127.0.0.1:{port}"), None, None, TIMEOUT).unwrap();
        let err = hdfs.create("/f", b"x").unwrap_err();
        let text = format!("{err}");
        assert!(
            text.contains(&format!("NameNode 127.0.0.1:{port}")),
            "{text}"
        );
        assert!(text.contains("refused"), "{text}");
        assert_eq!(remote_exception(&err), None);
    }

    #[test]
    fn a_server_that_never_answers_times_out_within_the_call_timeout() {
        // Connections complete in the kernel's backlog; nothing ever reads or answers them.
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = silent.local_addr().unwrap();
        let hdfs = WebHdfs::new(
            &format!("http://{addr}"),
            None,
            None,
            Duration::from_millis(300),
        )
        .unwrap();
        let started = Instant::now();
        let err = hdfs.status("/f").unwrap_err();
        let took = started.elapsed();
        let text = format!("{err}");
        assert!(text.contains("timed out"), "{text}");
        assert!(text.contains("300 ms"), "{text}");
        assert!(text.contains(&format!("NameNode {addr}")), "{text}");
        assert!(
            took >= Duration::from_millis(250) && took < Duration::from_secs(2),
            "{took:?}"
        );
    }

    #[test]
    fn the_mock_refuses_data_sent_to_the_namenode() {
        let mock = MockWebHdfs::start();
        let agent = super::client(TIMEOUT, None);
        let url = format!("{}/webhdfs/v1/f?op=CREATE&user.name=x", mock.endpoint());
        let mut response = agent.put(&url).send(&b"data"[..]).unwrap();
        assert_eq!(response.status().as_u16(), 400);
        let body = response.body_mut().read_to_string().unwrap();
        assert!(
            body.contains("sent a body (4 bytes) to the NameNode"),
            "{body}"
        );
        assert!(mock.files().is_empty());
    }

    #[test]
    fn refusals_name_the_remote_exception_or_show_the_start_of_the_body() {
        let json = br#"{"RemoteException":{"exception":"AccessControlException",
            "javaClassName":"org.apache.hadoop.security.AccessControlException",
            "message":"Permission denied: user=flume"}}"#;
        let r = refusal(403, json);
        assert_eq!(
            r.detail,
            "AccessControlException: Permission denied: user=flume (HTTP 403)"
        );
        assert_eq!(r.exception.as_deref(), Some("AccessControlException"));
        // Only the class name given: its simple name stands for the exception.
        let r = refusal(
            500,
            br#"{"RemoteException":{"javaClassName":"java.io.IOException","message":"m"}}"#,
        );
        assert_eq!(r.detail, "IOException: m (HTTP 500)");
        let html = format!("<html>\n<body>{}</body></html>", "x".repeat(500));
        let r = refusal(502, html.as_bytes());
        assert!(
            r.detail.starts_with("HTTP 502: <html> <body>xxx"),
            "{}",
            r.detail
        );
        assert_eq!(
            r.detail.len(),
            "HTTP 502: ".len() + SHOWN_BODY + "...".len()
        );
        assert_eq!(r.exception, None);
        assert_eq!(refusal(503, b"").detail, "HTTP 503 with an empty body");
    }

    #[test]
    fn endpoints_and_paths_are_checked() {
        for bad in [
            "namenode:9870",
            "ftp://namenode:9870",
            "http://namenode:9870/webhdfs/v1",
            "http://namenode:9870?x=1",
            "http://:9870",
        ] {
            assert!(WebHdfs::new(bad, None, None, TIMEOUT).is_err(), "{bad}");
        }
        let hdfs = WebHdfs::new("http://namenode:9870/", None, None, TIMEOUT).unwrap();
        assert_eq!(hdfs.endpoint(), "http://namenode:9870");
        let hdfs = WebHdfs::new("http://namenode", None, None, TIMEOUT).unwrap();
        let err = hdfs.create("relative/path", b"x").unwrap_err();
        assert!(
            format!("{err}")
                .contains("CREATE relative/path at NameNode namenode:80: not an absolute"),
            "{err}"
        );
        let err = hdfs.rename("/a", "/b/../c").unwrap_err();
        assert!(format!("{err}").contains(". or .."), "{err}");
        assert_eq!(
            encode("/a b/%/#?&+ü~", true),
            "/a%20b/%25/%23%3F%26%2B%C3%BC~"
        );
        assert_eq!(encode("a/b", false), "a%2Fb");
    }

    #[cfg(feature = "https")]
    #[test]
    fn https_endpoints_are_taken_with_their_default_port() {
        let hdfs = WebHdfs::new("https://namenode", None, None, TIMEOUT).unwrap();
        assert_eq!(hdfs.authority, "namenode:443");
    }

    #[cfg(not(feature = "https"))]
    #[test]
    fn https_needs_the_https_feature() {
        let err = WebHdfs::new("https://namenode:9871", None, None, TIMEOUT).unwrap_err();
        assert!(format!("{err}").contains("`https` feature"), "{err}");
    }
}
