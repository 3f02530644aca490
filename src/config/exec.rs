//! The `exec` source's keys (Flume's ExecSource).

use std::time::Duration;

use super::{ConfigError, Section};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecSourceConfig {
    /// The program and its arguments. With a `shell` this is the shell, its flags, and the
    /// command as one last argument; without, the command split on whitespace.
    pub argv: Vec<String>,
    /// The command as configured, for log lines.
    pub command: String,
    pub restart: bool,
    /// Wait between the command ending and its restart (Flume `restartThrottle`, 10 s).
    pub restart_throttle: Duration,
    /// Log the command's stderr lines at info (Flume `logStdErr`, false: discarded).
    pub log_stderr: bool,
    pub batch_size: usize,
    /// A partial batch is put into the channel this long after its first line arrived.
    pub batch_timeout: Duration,
}

pub(super) fn parse_exec(
    s: &Section,
    notes: &mut Vec<String>,
) -> Result<ExecSourceConfig, ConfigError> {
    let command = s.required(
        "command",
        &format!(
            "set `{}` to the command to run, e.g. tail -F /var/log/app.log",
            s.full("command")
        ),
    )?;
    let mut argv: Vec<String> = match s.string("shell") {
        Some(shell) => shell.split_whitespace().map(str::to_owned).collect(),
        None => Vec::new(),
    };
    if argv.is_empty() {
        argv = command.split_whitespace().map(str::to_owned).collect();
    } else {
        argv.push(command.clone());
    }
    if argv.is_empty() {
        return Err(s.error(Some("command"), "the command is blank".into()));
    }
    let label = s.string_or("charset", "UTF-8");
    let charset = encoding_rs::Encoding::for_label(label.trim().as_bytes()).ok_or_else(|| {
        s.error(
            Some("charset"),
            format!("'{label}' is not a character set name (e.g. UTF-8, ISO-8859-1)"),
        )
    })?;
    // Flume decodes each line and encodes it back in the same charset, which gives back the
    // bytes the command wrote; weir keeps those bytes. It finds lines by their newline byte,
    // which only ASCII-compatible charsets share.
    if !charset.is_ascii_compatible() {
        return Err(s.error(
            Some("charset"),
            format!(
                "{} is not supported: weir splits the output into lines at the newline byte, so the charset must be ASCII-compatible (UTF-8, ISO-8859-x, windows-125x, ...)",
                charset.name()
            ),
        ));
    }
    let restart = s.bool_or("restart", false)?;
    if !restart {
        s.ignored_with("restartThrottle", "restart = false", notes);
    }
    Ok(ExecSourceConfig {
        argv,
        command,
        restart,
        restart_throttle: s.millis_or("restartThrottle", 10_000)?,
        log_stderr: s.bool_or("logStdErr", false)?,
        batch_size: s.positive_or("batchSize", 20)? as usize,
        batch_timeout: s.millis_or("batchTimeout", 3_000)?,
    })
}
