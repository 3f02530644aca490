//! The Python side of the interoperability tests (`tests/interop/`): whether the modules a
//! test needs are installed, and running a script as an RPC client or server. Without them a test is skipped with a message, except under
//! `CI=true`, where it fails: `.ci/run` installs `tests/interop/requirements.txt`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

const INSTALL: &str = "python3 -m pip install -r tests/interop/requirements.txt";

/// Whether `python3 -c "import <modules>"` works; `what` names them in the messages. Panics
/// under `CI=true` when it does not.
pub fn python_modules(modules: &str, what: &str) -> bool {
    let probe = Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output();
    let missing = match probe {
        Ok(out) if out.status.success() => return true,
        Ok(out) => String::from_utf8_lossy(&out.stderr).into_owned(),
        Err(e) => format!("python3: {e}"),
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what} required under CI=true ({INSTALL}): {missing}");
    }
    eprintln!("SKIPPED: {what} not installed ({INSTALL}): {missing}");
    false
}

/// `tests/interop/<name>`.
pub fn interop_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(name)
}

/// Runs `tests/interop/<name>` with `args` to its end; its standard output. Panics with its
/// standard error if it fails.
pub fn run_interop_script<S: AsRef<std::ffi::OsStr>>(name: &str, args: &[S]) -> Vec<u8> {
    let script = interop_script(name);
    let out = Command::new("python3")
        .arg(&script)
        .args(args)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{name} {:?}: {}\n{}",
        args.iter().map(|a| a.as_ref()).collect::<Vec<_>>(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs `script client ARGS` (an RPC client of a weir source) to its end; its JSON lines.
pub fn python_client(script: &Path, args: &[&str]) -> Vec<serde_json::Value> {
    let name = script
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a script in tests/interop");
    let args: Vec<&str> = std::iter::once("client")
        .chain(args.iter().copied())
        .collect();
    String::from_utf8_lossy(&run_interop_script(name, &args))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// `script server ARGS` (an RPC server for a weir sink), running: its first line names its
/// port, and each further JSON line (a call it answered) is collected as it comes. Killed on
/// drop.
pub struct PythonServer {
    child: Child,
    pub port: u16,
    pub calls: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl PythonServer {
    pub fn start(script: &Path, args: &[&str]) -> PythonServer {
        let mut child = Command::new("python3")
            .arg(script)
            .arg("server")
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("run python3");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let first = lines
            .next()
            .expect("the server's port")
            .expect("read a line");
        let port: serde_json::Value = serde_json::from_str(&first).expect("a JSON line");
        let port = port["port"].as_u64().expect("port") as u16;
        let calls = Arc::new(Mutex::new(Vec::new()));
        let c = calls.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let v: serde_json::Value =
                    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
                c.lock().expect("calls lock").push(v);
            }
        });
        PythonServer { child, port, calls }
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
