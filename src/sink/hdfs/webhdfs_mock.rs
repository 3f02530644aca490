//! A WebHDFS NameNode and DataNode in the test process, for the WebHDFS client's and the hdfs
//! sink's tests: two listeners on 127.0.0.1 (ephemeral ports), a thread per connection,
//! HTTP/1.1 with keep-alive and `Content-Length` bodies, and the files in memory.
//!
//! It keeps WebHDFS's two steps apart as a real cluster does: CREATE and APPEND on the NameNode
//! answer `307` with a `Location` on the DataNode (the same path and query, plus the
//! `namenoderpcaddress` a real NameNode adds), and only the DataNode takes data. A body sent to
//! the NameNode is refused, and a DataNode request that did not come from a redirect (no
//! `namenoderpcaddress`) too, so a client that sends its data anywhere but the DataNode, or
//! more than once, fails its tests. Errors are RemoteException JSON with the status codes of
//! the WebHDFS documentation's table (IOException 403, FileNotFoundException 404, ...).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::json;

/// What a real NameNode adds to the DataNode URL it redirects to (its RPC address).
const NAMENODE_RPC: &str = "127.0.0.1:8020";

/// How often a connection thread waiting for a request looks at the stop flag.
const POLL: Duration = Duration::from_millis(50);

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Role {
    NameNode,
    DataNode,
}

#[derive(Default)]
struct Fs {
    files: HashMap<String, Vec<u8>>,
    /// Directories made by MKDIRS; the parents of files are directories without being here.
    dirs: HashSet<String>,
}

impl Fs {
    fn is_dir(&self, path: &str) -> bool {
        if path == "/" || self.dirs.contains(path) {
            return true;
        }
        let prefix = format!("{path}/");
        self.files.keys().any(|f| f.starts_with(&prefix))
            || self.dirs.iter().any(|d| d.starts_with(&prefix))
    }

    fn exists(&self, path: &str) -> bool {
        self.files.contains_key(path) || self.is_dir(path)
    }

    /// The nearest ancestor of `path` that is a file (which makes `path` impossible).
    fn file_ancestor(&self, path: &str) -> Option<String> {
        let mut at = path;
        while let Some(i) = at.rfind('/') {
            at = &at[..i];
            if self.files.contains_key(at) {
                return Some(at.to_owned());
            }
        }
        None
    }

    /// Moves `from` (a file or a directory with everything under it) to `to`.
    fn rename(&mut self, from: &str, to: &str) -> bool {
        if from == "/" || !self.exists(from) || to.starts_with(&format!("{from}/")) {
            return false;
        }
        // As HDFS does, a rename onto an existing directory moves the source into it.
        let to = if self.is_dir(to) {
            let name = from.rsplit('/').next().unwrap_or_default();
            format!("{}/{name}", to.trim_end_matches('/'))
        } else {
            to.to_owned()
        };
        if self.exists(&to) || self.file_ancestor(&to).is_some() {
            return false;
        }
        let prefix = format!("{from}/");
        let moved = |p: &str| format!("{to}{}", &p[from.len()..]);
        let files: Vec<String> = self
            .files
            .keys()
            .filter(|f| *f == from || f.starts_with(&prefix))
            .cloned()
            .collect();
        for f in files {
            if let Some(data) = self.files.remove(&f) {
                self.files.insert(moved(&f), data);
            }
        }
        let dirs: Vec<String> = self
            .dirs
            .iter()
            .filter(|d| *d == from || d.starts_with(&prefix))
            .cloned()
            .collect();
        for d in dirs {
            self.dirs.remove(&d);
            self.dirs.insert(moved(&d));
        }
        true
    }
}

struct Shared {
    fs: Mutex<Fs>,
    fail: Mutex<HashMap<(Role, String), usize>>,
    log: Mutex<Vec<String>>,
    stop: AtomicBool,
    namenode: SocketAddr,
    datanode: SocketAddr,
    connections: Mutex<Vec<JoinHandle<()>>>,
    /// Connections accepted by the NameNode and the DataNode.
    accepted: [AtomicUsize; 2],
}

/// A NameNode and its DataNode; dropping it stops every thread it started.
pub(crate) struct MockWebHdfs {
    shared: Arc<Shared>,
    acceptors: Vec<JoinHandle<()>>,
}

impl MockWebHdfs {
    pub(crate) fn start() -> MockWebHdfs {
        let namenode = TcpListener::bind("127.0.0.1:0").expect("bind the mock NameNode");
        let datanode = TcpListener::bind("127.0.0.1:0").expect("bind the mock DataNode");
        let shared = Arc::new(Shared {
            fs: Mutex::new(Fs::default()),
            fail: Mutex::new(HashMap::new()),
            log: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            namenode: namenode.local_addr().expect("the NameNode's address"),
            datanode: datanode.local_addr().expect("the DataNode's address"),
            connections: Mutex::new(Vec::new()),
            accepted: [AtomicUsize::new(0), AtomicUsize::new(0)],
        });
        let acceptors = [(namenode, Role::NameNode), (datanode, Role::DataNode)]
            .into_iter()
            .map(|(listener, role)| {
                let shared = shared.clone();
                std::thread::spawn(move || accept(listener, role, shared))
            })
            .collect();
        MockWebHdfs { shared, acceptors }
    }

    /// The NameNode's HTTP address, `http://127.0.0.1:PORT`.
    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.shared.namenode)
    }

    /// The DataNode's `127.0.0.1:PORT`, where the NameNode redirects writes.
    pub(crate) fn datanode(&self) -> String {
        self.shared.datanode.to_string()
    }

    pub(crate) fn files(&self) -> BTreeMap<String, Vec<u8>> {
        let fs = self.shared.fs.lock();
        fs.files
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub(crate) fn file(&self, path: &str) -> Option<Vec<u8>> {
        self.shared.fs.lock().files.get(path).cloned()
    }

    /// Puts a file in place, as if written earlier.
    pub(crate) fn put_file(&self, path: &str, data: &[u8]) {
        self.shared
            .fs
            .lock()
            .files
            .insert(path.to_owned(), data.to_vec());
    }

    /// The next `n` NameNode requests of `op` (e.g. "APPEND") fail with a 500 RemoteException
    /// (IOException), before anything is stored or redirected.
    pub(crate) fn fail_next(&self, op: &str, n: usize) {
        self.shared
            .fail
            .lock()
            .insert((Role::NameNode, op.to_ascii_uppercase()), n);
    }

    /// The next `n` DataNode requests of `op` fail with a 500 RemoteException (IOException):
    /// the data was sent, and is not stored.
    pub(crate) fn fail_next_on_datanode(&self, op: &str, n: usize) {
        self.shared
            .fail
            .lock()
            .insert((Role::DataNode, op.to_ascii_uppercase()), n);
    }

    /// How many connections the NameNode and the DataNode have accepted.
    pub(crate) fn connections(&self) -> (usize, usize) {
        let [namenode, datanode] = &self.shared.accepted;
        (
            namenode.load(Ordering::SeqCst),
            datanode.load(Ordering::SeqCst),
        )
    }

    /// Every request so far, oldest first: `PUT CREATE /path overwrite=false user.name=x` for
    /// the NameNode, the same after `datanode: ` for the DataNode (its query carries
    /// `namenoderpcaddress` too). The path is decoded; the parameters are in the order sent.
    pub(crate) fn requests(&self) -> Vec<String> {
        self.shared.log.lock().clone()
    }
}

impl Drop for MockWebHdfs {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // The acceptors block in accept(): a connection wakes each to see the flag.
        for addr in [self.shared.namenode, self.shared.datanode] {
            let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
        }
        for acceptor in self.acceptors.drain(..) {
            let _ = acceptor.join();
        }
        let connections = std::mem::take(&mut *self.shared.connections.lock());
        for connection in connections {
            let _ = connection.join();
        }
    }
}

fn accept(listener: TcpListener, role: Role, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        shared.accepted[role as usize].fetch_add(1, Ordering::SeqCst);
        let connection = {
            let shared = shared.clone();
            std::thread::spawn(move || serve(stream, role, &shared))
        };
        shared.connections.lock().push(connection);
    }
}

struct Request {
    method: String,
    /// The request target's path, still percent-encoded.
    path: String,
    query: String,
    close: bool,
    chunked: bool,
    body: Vec<u8>,
}

struct Response {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

/// Answers requests on one connection until the client closes it or the mock stops.
fn serve(mut stream: TcpStream, role: Role, shared: &Shared) {
    if stream.set_read_timeout(Some(POLL)).is_err() {
        return;
    }
    let mut buf = Vec::new();
    loop {
        let request = match read_request(&mut stream, &mut buf, shared) {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(why) => {
                let mut answer = remote(400, "IllegalArgumentException", &why);
                answer.headers.push(("Connection", "close".into()));
                let _ = write_response(&mut stream, &answer);
                return;
            }
        };
        let mut answer = handle(role, &request, shared);
        if request.close {
            answer.headers.push(("Connection", "close".into()));
        }
        if write_response(&mut stream, &answer).is_err() || request.close {
            return;
        }
    }
}

/// The next request from `buf` and the stream: `Ok(None)` when the connection ends (or the
/// mock stops) between requests, `Err` for one that cannot be read.
fn read_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    shared: &Shared,
) -> Result<Option<Request>, String> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(buf) {
            Ok(httparse::Status::Complete(head)) => {
                let method = parsed.method.unwrap_or_default().to_owned();
                let target = parsed.path.unwrap_or_default().to_owned();
                let header = |name: &str| {
                    parsed
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
                };
                let close = header("connection").as_deref() == Some("close");
                let chunked = header("transfer-encoding").is_some();
                let length = match header("content-length") {
                    None => 0,
                    Some(v) => v
                        .parse::<usize>()
                        .map_err(|_| format!("Content-Length {v}"))?,
                };
                if chunked {
                    // Only the headers are taken: the mock answers and closes.
                    buf.clear();
                } else {
                    while buf.len() < head + length {
                        if !fill(stream, buf, shared)? {
                            return Ok(None);
                        }
                    }
                }
                let body = if chunked {
                    Vec::new()
                } else {
                    buf[head..head + length].to_vec()
                };
                if !chunked {
                    buf.drain(..head + length);
                }
                let (path, query) = match target.split_once('?') {
                    Some((p, q)) => (p.to_owned(), q.to_owned()),
                    None => (target, String::new()),
                };
                return Ok(Some(Request {
                    method,
                    path,
                    query,
                    close: close || chunked,
                    chunked,
                    body,
                }));
            }
            Ok(httparse::Status::Partial) => {
                if !fill(stream, buf, shared)? {
                    return if buf.is_empty() {
                        Ok(None)
                    } else {
                        Err("the connection ended inside a request".into())
                    };
                }
            }
            Err(e) => return Err(format!("unreadable request: {e}")),
        }
    }
}

/// Reads more into `buf`; false when the connection ended or the mock stopped.
fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>, shared: &Shared) -> Result<bool, String> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return Ok(false);
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(true);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Ok(false),
        }
    }
}

fn write_response(stream: &mut TcpStream, r: &Response) -> std::io::Result<()> {
    let reason = match r.status {
        200 => "OK",
        201 => "Created",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        _ => "Internal Server Error",
    };
    let mut out = format!("HTTP/1.1 {} {reason}\r\n", r.status);
    for (name, value) in &r.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", r.body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&r.body);
    stream.write_all(&bytes)?;
    stream.flush()
}

fn json_response(status: u16, value: serde_json::Value) -> Response {
    Response {
        status,
        headers: vec![("Content-Type", "application/json".into())],
        body: value.to_string().into_bytes(),
    }
}

/// A RemoteException, with the status the WebHDFS documentation maps its exception to (given).
fn remote(status: u16, exception: &str, message: &str) -> Response {
    let class = match exception {
        "FileNotFoundException" => "java.io.FileNotFoundException".to_owned(),
        "IOException" => "java.io.IOException".to_owned(),
        "IllegalArgumentException" => "java.lang.IllegalArgumentException".to_owned(),
        other => format!("org.apache.hadoop.fs.{other}"),
    };
    json_response(
        status,
        json!({"RemoteException": {
            "exception": exception,
            "javaClassName": class,
            "message": message,
        }}),
    )
}

fn empty(status: u16) -> Response {
    Response {
        status,
        headers: Vec::new(),
        body: Vec::new(),
    }
}

/// Decodes a percent-encoded path; None for a bad escape or a path that is not UTF-8.
fn decode_path(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// An absolute path without a trailing slash ("/" for the root).
fn normalise(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_owned()
    } else {
        trimmed.to_owned()
    }
}

fn handle(role: Role, request: &Request, shared: &Shared) -> Response {
    let Some(raw) = request.path.strip_prefix("/webhdfs/v1") else {
        return Response {
            status: 404,
            headers: vec![("Content-Type", "text/html".into())],
            body: b"<html><body>Not a WebHDFS URL</body></html>".to_vec(),
        };
    };
    let Some(path) = decode_path(raw) else {
        return remote(400, "IllegalArgumentException", "bad percent-encoding");
    };
    let path = normalise(&path);
    let params: Vec<(String, String)> = form_urlencoded::parse(request.query.as_bytes())
        .into_owned()
        .collect();
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let op = param("op").unwrap_or_default().to_ascii_uppercase();
    let mut line = match role {
        Role::NameNode => String::new(),
        Role::DataNode => "datanode: ".to_owned(),
    };
    line.push_str(&format!("{} {op} {path}", request.method));
    for (k, v) in params.iter().filter(|(k, _)| k != "op") {
        line.push_str(&format!(" {k}={v}"));
    }
    shared.log.lock().push(line);

    if role == Role::NameNode && (!request.body.is_empty() || request.chunked) {
        return remote(
            400,
            "IllegalArgumentException",
            &format!(
                "mock NameNode: {op} sent a body ({} bytes{}) to the NameNode; data goes \
                 only to the DataNode its redirect names",
                request.body.len(),
                if request.chunked { ", chunked" } else { "" }
            ),
        );
    }
    if request.chunked {
        return remote(
            400,
            "IllegalArgumentException",
            "mock DataNode: only Content-Length bodies are read",
        );
    }
    if let Some(left) = shared.fail.lock().get_mut(&(role, op.clone()))
        && *left > 0
    {
        *left -= 1;
        return remote(
            500,
            "IOException",
            &format!("injected failure of {op} {path}"),
        );
    }
    match role {
        Role::NameNode => namenode(request, &op, &path, &params, shared),
        Role::DataNode => {
            if param("namenoderpcaddress").is_none() {
                return remote(
                    400,
                    "IllegalArgumentException",
                    "mock DataNode: no namenoderpcaddress: not a URL from a NameNode redirect",
                );
            }
            datanode(request, &op, &path, overwrite(&params), shared)
        }
    }
}

fn already_exists(path: &str) -> Response {
    remote(
        403,
        "FileAlreadyExistsException",
        &format!("{path} for client 127.0.0.1 already exists"),
    )
}

fn not_found(path: &str) -> Response {
    remote(
        404,
        "FileNotFoundException",
        &format!("File does not exist: {path}"),
    )
}

/// Whether the query asks CREATE to replace an existing file (WebHDFS's default: false).
fn overwrite(params: &[(String, String)]) -> bool {
    params
        .iter()
        .any(|(k, v)| k == "overwrite" && v.eq_ignore_ascii_case("true"))
}

fn namenode(
    request: &Request,
    op: &str,
    path: &str,
    params: &[(String, String)],
    shared: &Shared,
) -> Response {
    let destination = params
        .iter()
        .find(|(k, _)| k == "destination")
        .map(|(_, v)| v.as_str());
    let mut fs = shared.fs.lock();
    match (request.method.as_str(), op) {
        ("PUT", "CREATE") | ("POST", "APPEND") => {
            if op == "CREATE" {
                if fs.is_dir(path) || (!overwrite(params) && fs.files.contains_key(path)) {
                    return already_exists(path);
                }
                if let Some(parent) = fs.file_ancestor(path) {
                    return remote(
                        403,
                        "ParentNotDirectoryException",
                        &format!("Parent path is not a directory: {parent}"),
                    );
                }
            } else if !fs.files.contains_key(path) {
                return not_found(path);
            }
            let location = format!(
                "http://{}{}?{}&namenoderpcaddress={NAMENODE_RPC}",
                shared.datanode, request.path, request.query
            );
            Response {
                status: 307,
                headers: vec![
                    ("Location", location),
                    ("Content-Type", "application/octet-stream".into()),
                ],
                body: Vec::new(),
            }
        }
        ("PUT", "RENAME") => {
            let Some(to) = destination.filter(|d| d.starts_with('/')) else {
                return remote(
                    400,
                    "IllegalArgumentException",
                    "Invalid value for webhdfs parameter \"destination\"",
                );
            };
            let moved = fs.rename(path, &normalise(to));
            json_response(200, json!({ "boolean": moved }))
        }
        ("PUT", "MKDIRS") => {
            if fs.files.contains_key(path) {
                return already_exists(path);
            }
            if let Some(parent) = fs.file_ancestor(path) {
                return remote(
                    403,
                    "ParentNotDirectoryException",
                    &format!("Parent path is not a directory: {parent}"),
                );
            }
            if path != "/" {
                fs.dirs.insert(path.to_owned());
            }
            json_response(200, json!({ "boolean": true }))
        }
        ("GET", "LISTSTATUS") => {
            if fs.files.contains_key(path) || !fs.is_dir(path) {
                return not_found(path);
            }
            let prefix = if path == "/" {
                "/".to_owned()
            } else {
                format!("{path}/")
            };
            let mut names: Vec<&str> = fs
                .files
                .keys()
                .chain(fs.dirs.iter())
                .filter_map(|p| p.strip_prefix(&prefix))
                .map(|rest| rest.split('/').next().unwrap_or(rest))
                .filter(|n| !n.is_empty())
                .collect();
            names.sort_unstable();
            names.dedup();
            let statuses: Vec<serde_json::Value> = names
                .into_iter()
                .map(|n| json!({"pathSuffix": n, "type": "FILE", "length": 0}))
                .collect();
            json_response(200, json!({"FileStatuses": {"FileStatus": statuses}}))
        }
        ("GET", "GETFILESTATUS") => {
            let (length, kind) = if let Some(data) = fs.files.get(path) {
                (data.len(), "FILE")
            } else if fs.is_dir(path) {
                (0, "DIRECTORY")
            } else {
                return not_found(path);
            };
            json_response(
                200,
                json!({"FileStatus": {
                    "accessTime": 0,
                    "blockSize": 134217728,
                    "group": "supergroup",
                    "length": length,
                    "modificationTime": 0,
                    "owner": "flume",
                    "pathSuffix": "",
                    "permission": "644",
                    "replication": 3,
                    "type": kind,
                }}),
            )
        }
        (method, op) => remote(
            400,
            "IllegalArgumentException",
            &format!("Invalid value for webhdfs parameter \"op\": {method} {op}"),
        ),
    }
}

fn datanode(request: &Request, op: &str, path: &str, overwrite: bool, shared: &Shared) -> Response {
    let mut fs = shared.fs.lock();
    match (request.method.as_str(), op) {
        ("PUT", "CREATE") => {
            if fs.is_dir(path) || (!overwrite && fs.files.contains_key(path)) {
                return already_exists(path);
            }
            fs.files.insert(path.to_owned(), request.body.clone());
            let mut created = empty(201);
            created.headers.push((
                "Location",
                format!("webhdfs://{}{}", shared.namenode, request.path),
            ));
            created
        }
        ("POST", "APPEND") => match fs.files.get_mut(path) {
            Some(data) => {
                data.extend_from_slice(&request.body);
                empty(200)
            }
            None => not_found(path),
        },
        (method, op) => remote(
            400,
            "IllegalArgumentException",
            &format!("mock DataNode: {method} {op} is not a DataNode operation"),
        ),
    }
}
