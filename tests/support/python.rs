//! The Python side of the interoperability tests (`tests/interop/`): whether the modules a
//! test needs are installed. Without them a test is skipped with a message, except under
//! `CI=true`, where it fails: `.ci/run` installs `tests/interop/requirements.txt`.

use std::process::Command;

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
