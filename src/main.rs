//! The `weir` command line. Only argument parsing and printing live here; the work is done by
//! the library.
//!
//! Printing never panics: `println!` and `eprintln!` do when their stream cannot be written (a
//! closed pipe, a full disk), which would kill the agent or a tool with exit 101. Reports go
//! through [`Out`], which returns write errors; log lines and messages to standard error are
//! dropped when it cannot take them.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgAction, Parser, Subcommand};
use weir::config::{AgentConfig, Lookups, Properties};
use weir::wal::inspect;
use weir::wal::{Wal, WalOptions};

#[derive(Parser)]
#[command(
    name = "weir",
    version,
    about = "A reliable edge agent in the style of Apache Flume"
)]
struct Cli {
    /// Log level or filter (error, warn, info, debug, trace, or a tracing filter such as
    /// `weir::wal=debug`). Default: RUST_LOG, else -Dflume.root.logger, else info.
    #[arg(long, global = true)]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run an agent from a Flume properties file (as `flume-ng agent`).
    Agent {
        /// A properties file (or a directory: its flume-conf.properties, else its only
        /// *.properties or *.conf file); repeat it to merge several in order, a later file's key
        /// overriding an earlier one's (as Flume 1.10+). Without it, the embedded default
        /// (conf/weir.properties).
        #[arg(short = 'f', long = "conf-file", action = ArgAction::Append)]
        conf_file: Vec<PathBuf>,
        /// The agent's name in the files; may be omitted when they define one agent.
        #[arg(short = 'n', long = "name")]
        name: Option<String>,
        /// Flume's configuration directory option; accepted and ignored.
        #[arg(short = 'c', long = "conf")]
        conf_dir: Option<PathBuf>,
        /// flume-ng's Java classpath option; accepted and ignored (with a warning).
        #[arg(short = 'C', long = "classpath", hide = true)]
        classpath: Option<String>,
        /// flume-ng's plugin directories option; accepted and ignored (with a warning).
        #[arg(long = "plugins-path", hide = true)]
        plugins_path: Option<String>,
        /// Run on the configuration read at start. By default, as Flume, the files are looked
        /// at every --poll-interval seconds and a changed configuration replaces the running
        /// one (every component stops and starts anew).
        #[arg(long = "no-reload-conf")]
        no_reload_conf: bool,
        /// Seconds between looks at the configuration files for a change (default 30, as
        /// Flume's).
        #[arg(short = 'i', long = "poll-interval")]
        poll_interval: Option<String>,
        /// Validate the configuration, print the wiring, start nothing (flume-ng's `--dryrun`
        /// and `-d` do the same).
        #[arg(long, visible_alias = "dryrun", short_alias = 'd')]
        check: bool,
        /// Serve metrics on this port: /metrics (Flume JSON), /metrics/prometheus.
        #[arg(long)]
        metrics_port: Option<u16>,
        /// Address the metrics server binds (default 0.0.0.0), or ADDRESS:PORT in place of
        /// --metrics-port.
        #[arg(long)]
        metrics_bind: Option<String>,
    },
    /// Send lines to an avro source as events (as `flume-ng avro-client`): a file's, standard
    /// input's, or every file's of a spooling directory. Exits 1 at the first batch not
    /// acknowledged, saying how many events were acknowledged before it.
    #[command(name = "avro-client")]
    AvroClient {
        /// Host of the avro source.
        #[arg(
            short = 'H',
            long = "host",
            requires = "port",
            conflicts_with = "rpc_props"
        )]
        host: Option<String>,
        /// Port of the avro source.
        #[arg(short = 'p', long = "port", requires = "host")]
        port: Option<u16>,
        /// Flume's RPC client properties file (hosts, hosts.<alias>, batch-size, timeouts,
        /// compression-type), instead of --host and --port.
        #[arg(short = 'P', long = "rpcProps", required_unless_present = "host")]
        rpc_props: Option<PathBuf>,
        /// The file to send, one event per line (default: standard input).
        #[arg(short = 'F', long = "filename", conflicts_with = "dirname")]
        filename: Option<PathBuf>,
        /// A spooling directory: each file is sent, then renamed <name>.COMPLETED.
        #[arg(long = "dirname")]
        dirname: Option<PathBuf>,
        /// A properties file of headers (key = value) given to every event.
        #[arg(short = 'R', long = "headerFile")]
        header_file: Option<PathBuf>,
        /// Events per call (Flume's client: 5; a -P file's batch-size wins).
        #[arg(long = "batch-size", default_value_t = weir::avro_client::DEFAULT_BATCH)]
        batch_size: usize,
        /// Flume's configuration directory option; accepted and ignored.
        #[arg(short = 'c', long = "conf", hide = true)]
        conf_dir: Option<PathBuf>,
    },
    /// Tools that read a write-ahead log directory.
    Wal {
        #[command(subcommand)]
        command: WalCommand,
    },
}

#[derive(Subcommand)]
enum WalCommand {
    /// Check every frame and checkpoint; report each problem with file and byte position; exit 1
    /// if any.
    Verify {
        /// The log's directory (a file channel's dataDirs).
        dir: PathBuf,
        /// Where the consumers' checkpoints are, when not in DIR (a file channel's
        /// checkpointDir).
        #[arg(long)]
        checkpoint_dir: Option<PathBuf>,
    },
    /// Print events: offset, headers, body.
    Dump {
        /// The log's directory (a file channel's dataDirs).
        dir: PathBuf,
        /// The first offset to print.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Print at most this many events.
        #[arg(long, default_value_t = u64::MAX)]
        limit: u64,
    },
    /// Segments, offsets, bytes, and consumers with their checkpoint and lag.
    Stats {
        /// The log's directory (a file channel's dataDirs).
        dir: PathBuf,
        /// Where the consumers' checkpoints are, when not in DIR (a file channel's
        /// checkpointDir).
        #[arg(long)]
        checkpoint_dir: Option<PathBuf>,
    },
    /// Append N demo events to a log (creating it), so the other tools have something to show.
    Demo {
        /// The log's directory; created if missing.
        dir: PathBuf,
        /// How many events to append.
        #[arg(long, default_value_t = 1000)]
        events: u64,
    },
}

/// The embedded default configuration, used by `weir agent` without `-f`.
const DEFAULT_CONFIG: &str = include_str!("../conf/weir.properties");

/// What flume-ng hands to the JVM rather than to Flume, taken out of the argument list before
/// clap sees it: Java system properties (`-Dkey=value`, or `-Dkey` for an empty value) and JVM
/// options (`-X…`, `-agentlib…`, `-agentpath…`, `-javaagent…`), so a Flume launch line runs as is.
struct JavaArgs {
    properties: Vec<(String, String)>,
    jvm_options: Vec<String>,
}

impl JavaArgs {
    /// The value of `-Dkey`; the last one given wins, as in Java.
    fn property(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn split_java_args(args: Vec<String>) -> (Vec<String>, JavaArgs) {
    let mut rest = Vec::new();
    let mut java = JavaArgs {
        properties: Vec::new(),
        jvm_options: Vec::new(),
    };
    // The program name is never an option.
    let mut args = args.into_iter();
    rest.extend(args.next());
    let mut property_follows = false;
    for a in args {
        // Flume's Windows launcher (flume-ng.ps1) spells the long options with one dash, which
        // clap would read as bundled short ones (`-conf` as `-c onf`).
        let a = match a.as_str() {
            "-conf" | "-conf-file" | "-name" => format!("-{a}"),
            "-property" => {
                property_follows = true;
                continue;
            }
            _ => a,
        };
        if std::mem::take(&mut property_follows) {
            // `-property "k=v;k2=v2"`: Java system properties, as `-D` gives them.
            for kv in a.split(';').filter(|kv| !kv.is_empty()) {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                java.properties.push((k.to_owned(), v.to_owned()));
            }
        } else if let Some(kv) = a.strip_prefix("-D").filter(|kv| !kv.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            java.properties.push((k.to_owned(), v.to_owned()));
        } else if ["-X", "-agentlib", "-agentpath", "-javaagent"]
            .iter()
            .any(|p| a.starts_with(p))
        {
            java.jvm_options.push(a);
        } else {
            rest.push(a);
        }
    }
    (rest, java)
}

/// Flume 1.9's global TLS settings as Java system properties, and the environment variables
/// that stand for them (the property wins, as in Flume's `SSLUtil`).
const GLOBAL_TLS_PROPERTIES: [(&str, &str); 10] = [
    ("javax.net.ssl.keyStore", "FLUME_SSL_KEYSTORE_PATH"),
    (
        "javax.net.ssl.keyStorePassword",
        "FLUME_SSL_KEYSTORE_PASSWORD",
    ),
    ("javax.net.ssl.keyStoreType", "FLUME_SSL_KEYSTORE_TYPE"),
    ("javax.net.ssl.trustStore", "FLUME_SSL_TRUSTSTORE_PATH"),
    (
        "javax.net.ssl.trustStorePassword",
        "FLUME_SSL_TRUSTSTORE_PASSWORD",
    ),
    ("javax.net.ssl.trustStoreType", "FLUME_SSL_TRUSTSTORE_TYPE"),
    ("flume.ssl.include.protocols", "FLUME_SSL_INCLUDE_PROTOCOLS"),
    ("flume.ssl.exclude.protocols", "FLUME_SSL_EXCLUDE_PROTOCOLS"),
    (
        "flume.ssl.include.cipherSuites",
        "FLUME_SSL_INCLUDE_CIPHERSUITES",
    ),
    (
        "flume.ssl.exclude.cipherSuites",
        "FLUME_SSL_EXCLUDE_CIPHERSUITES",
    ),
];

fn main() -> ExitCode {
    // A write past the file-size limit (`ulimit -f`) must fail with EFBIG, which the code
    // writing reports with the file's path, rather than kill the process with SIGXFSZ: no
    // message, a core dump, a segment left half made (PostgreSQL ignores it for the same reason).
    // The commands the exec source runs inherit the disposition: past the limit, their writes
    // fail with EFBIG too, instead of killing them.
    // SAFETY: SIG_IGN installs no handler, so no code runs in signal context; no other thread
    // exists yet to race the change of disposition.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let (args, java) = split_java_args(std::env::args().collect());
    // The configuration reads the global TLS settings from the environment (`config::tls`,
    // `config::kafka_security`); a flume-ng launch line gives them as -D properties.
    for (property, variable) in GLOBAL_TLS_PROPERTIES {
        if let Some(value) = java.property(property) {
            // SAFETY: nothing else runs yet (no thread has been started and no library that
            // reads the environment has been initialised), so no read can race this write.
            unsafe { std::env::set_var(variable, value) };
        }
    }
    // flume.root.logger=LEVEL,console sets the level when RUST_LOG does not.
    let flume_level = java
        .property("flume.root.logger")
        .and_then(|v| v.split(',').next())
        .map(|l| l.trim().to_ascii_lowercase());
    let mut cli = Cli::parse_from(args);
    let filter = match (
        &cli.log_level,
        std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty()),
    ) {
        (Some(flag), _) => flag.clone(),
        (None, Some(env)) => env,
        (None, None) => flume_level.unwrap_or_else(|| "info".to_owned()),
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&filter).unwrap_or_else(|e| {
        to_stderr(format_args!(
            "warning: log level '{filter}' not understood ({e}); using info"
        ));
        tracing_subscriber::EnvFilter::new("info")
    });
    // Colour only on a terminal: logs sent to a file or journald must not carry escape codes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    // The fmt layer's own fallback for a failed write (or a field that fails to format) is an
    // `eprintln!`, which panics when stderr is unwritable and kills whichever thread logged:
    // so its writer never fails, and it is told not to report its errors.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LossyStderr)
        .with_ansi(ansi)
        .log_internal_errors(false)
        .init();
    if let Err(e) = apply_flume_launch_options(&mut cli.command, &java) {
        to_stderr(format_args!("error: {e}"));
        return ExitCode::FAILURE;
    }
    match run(cli, &java.properties) {
        Ok(code) => code,
        Err(e) => {
            to_stderr(format_args!("error: {e:#}"));
            ExitCode::FAILURE
        }
    }
}

/// Standard error for log lines. A line that cannot be written (stderr a full disk, a closed
/// pipe) is lost, never the agent: the write reports success either way.
struct LossyStderr;

impl Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // One `write_all` per line, under stderr's lock, so lines of concurrent threads do not
        // interleave.
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// Writes a message line to standard error, or drops it if stderr cannot be written (the exit
/// code still tells what happened).
fn to_stderr(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The tools' standard output: buffered and locked. A closed pipe (`| head`) ends the output
/// quietly; any other write error (a full disk) is kept and returned by [`Out::finish`]. After
/// the first error nothing more is written.
struct Out {
    out: std::io::BufWriter<std::io::StdoutLock<'static>>,
    failed: Option<std::io::Error>,
}

impl Out {
    fn new() -> Out {
        Out {
            out: std::io::BufWriter::new(std::io::stdout().lock()),
            failed: None,
        }
    }

    /// True once a write failed: callers can stop producing output.
    fn is_failed(&self) -> bool {
        self.failed.is_some()
    }

    fn print(&mut self, text: std::fmt::Arguments<'_>) {
        if self.failed.is_none()
            && let Err(e) = self.out.write_fmt(text)
        {
            self.failed = Some(e);
        }
    }

    fn line(&mut self, text: std::fmt::Arguments<'_>) {
        self.print(format_args!("{text}\n"));
    }

    /// Sends what is buffered now, so a slow step after it does not hold earlier output back.
    fn flush(&mut self) {
        if self.failed.is_none()
            && let Err(e) = self.out.flush()
        {
            self.failed = Some(e);
        }
    }

    fn finish(mut self) -> anyhow::Result<()> {
        self.flush();
        match self.failed.take() {
            Some(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            Some(e) => Err(anyhow::Error::new(e).context("write to standard output")),
            None => Ok(()),
        }
    }
}

/// What a flume-ng launch line means for `weir agent`: warnings for the options weir ignores,
/// and the metrics port from `-Dflume.monitoring.*` unless `--metrics-port` was given.
fn apply_flume_launch_options(command: &mut Command, java: &JavaArgs) -> Result<(), String> {
    let Command::Agent {
        metrics_port,
        classpath,
        plugins_path,
        ..
    } = command
    else {
        return Ok(());
    };
    if !java.jvm_options.is_empty() {
        tracing::warn!(options = %java.jvm_options.join(" "), "JVM options have no meaning for weir; ignored");
    }
    if let Some(cp) = classpath {
        tracing::warn!(classpath = %cp, "--classpath: weir loads no Java classes; ignored");
    }
    if let Some(p) = plugins_path {
        tracing::warn!(plugins_path = %p, "--plugins-path: weir loads no Flume plugins; ignored");
    }
    let monitoring = java.property("flume.monitoring.type");
    if let Some(t) = monitoring.filter(|t| !t.eq_ignore_ascii_case("http")) {
        tracing::warn!(
            monitoring = %t,
            "-Dflume.monitoring.type: weir serves metrics over http only (JSON as Flume's, and \
             Prometheus); no metrics server started"
        );
    }
    if metrics_port.is_none() && monitoring.is_some_and(|t| t.eq_ignore_ascii_case("http")) {
        let port = java.property("flume.monitoring.port").unwrap_or("41414");
        *metrics_port = Some(
            port.parse()
                .map_err(|_| format!("-Dflume.monitoring.port={port} is not a TCP port"))?,
        );
    }
    Ok(())
}

/// How often the configuration files are looked at for a change (`None`: never), from
/// `--no-reload-conf` and `--poll-interval` (seconds; Flume's default 30).
fn reload_interval(no_reload: bool, seconds: Option<&str>) -> Result<Option<Duration>, String> {
    if no_reload {
        return Ok(None);
    }
    let Some(text) = seconds else {
        return Ok(Some(Duration::from_secs(30)));
    };
    match text.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(Some(Duration::from_secs(n))),
        _ => Err(format!(
            "--poll-interval {text}: not a whole number of seconds greater than 0"
        )),
    }
}

/// The address the metrics server listens on, from `--metrics-bind` (an address, or
/// ADDRESS:PORT) and `--metrics-port`; `None` for no server. A bind address with no port
/// anywhere is an error rather than a silent "no metrics".
fn metrics_address(bind: Option<&str>, port: Option<u16>) -> Result<Option<String>, String> {
    let Some(bind) = bind else {
        return Ok(port.map(|p| format!("0.0.0.0:{p}")));
    };
    let (host, bind_port) = match bind.parse::<std::net::SocketAddr>() {
        Ok(addr) => (bind.to_owned(), Some(addr.port())),
        Err(_) => match bind.rsplit_once(':') {
            // host:port; a bare IPv6 address has colons in its host part too.
            Some((host, p)) if !host.contains(':') && !p.is_empty() => {
                let p = p.parse::<u16>().map_err(|_| {
                    format!("--metrics-bind {bind}: '{p}' is not a port number (0-65535)")
                })?;
                (bind.to_owned(), Some(p))
            }
            _ if bind.contains(':') && !bind.starts_with('[') => (format!("[{bind}]"), None),
            _ => (bind.to_owned(), None),
        },
    };
    match (bind_port, port) {
        (Some(a), Some(b)) if a != b => Err(format!(
            "--metrics-bind {bind} names port {a} and --metrics-port {b}: give the port once"
        )),
        (Some(_), _) => Ok(Some(host)),
        (None, Some(p)) => Ok(Some(format!("{host}:{p}"))),
        (None, None) => Err(format!(
            "--metrics-bind {bind} names no port, so no metrics server would start: add \
             --metrics-port PORT, or write --metrics-bind {bind}:PORT"
        )),
    }
}

fn run(cli: Cli, java_props: &[(String, String)]) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Agent {
            conf_file,
            name,
            conf_dir: _,
            classpath: _,
            plugins_path: _,
            no_reload_conf,
            poll_interval,
            check,
            metrics_port,
            metrics_bind,
        } => agent(
            conf_file,
            name,
            check,
            reload_interval(no_reload_conf, poll_interval.as_deref())
                .map_err(anyhow::Error::msg)?,
            metrics_address(metrics_bind.as_deref(), metrics_port).map_err(anyhow::Error::msg)?,
            java_props,
        ),
        Command::AvroClient {
            host,
            port,
            rpc_props,
            filename,
            dirname,
            header_file,
            batch_size,
            conf_dir: _,
        } => avro_client(
            host.zip(port),
            rpc_props,
            filename,
            dirname,
            header_file,
            batch_size,
        ),
        Command::Wal { command } => match command {
            WalCommand::Verify {
                dir,
                checkpoint_dir,
            } => verify(dir, checkpoint_dir),
            WalCommand::Dump { dir, from, limit } => dump(dir, from, limit),
            WalCommand::Stats {
                dir,
                checkpoint_dir,
            } => stats(dir, checkpoint_dir),
            WalCommand::Demo { dir, events } => demo(dir, events),
        },
    }
}

fn avro_client(
    host_port: Option<(String, u16)>,
    rpc_props: Option<PathBuf>,
    filename: Option<PathBuf>,
    dirname: Option<PathBuf>,
    header_file: Option<PathBuf>,
    batch_size: usize,
) -> anyhow::Result<ExitCode> {
    use weir::avro_client::{Input, Sender, read_headers, read_rpc_props};
    anyhow::ensure!(batch_size > 0, "--batch-size must be at least 1");
    let props = match (host_port, rpc_props) {
        (_, Some(path)) => {
            let (props, notes) = read_rpc_props(&path)?;
            for n in notes {
                tracing::warn!("{n}");
            }
            props
        }
        (Some((hostname, port)), None) => weir::config::RpcClientProps {
            targets: vec![weir::config::RpcTarget {
                hostname,
                port,
                connect_timeout: std::time::Duration::from_secs(20),
                request_timeout: std::time::Duration::from_secs(20),
                reset_connection_interval: None,
                tls: None,
            }],
            deflate_level: None,
            batch_size,
        },
        (None, None) => anyhow::bail!("give --host and --port, or --rpcProps"),
    };
    let headers = match header_file {
        Some(path) => read_headers(&path)?,
        None => Vec::new(),
    };
    let input = match (filename, dirname) {
        (Some(f), _) => Input::File(f),
        (None, Some(d)) => Input::Dir(d),
        (None, None) => Input::Stdin,
    };
    let mut sender = Sender::new(props, headers);
    let result = weir::avro_client::run(&mut sender, &input);
    to_stderr(format_args!("{} events acknowledged", sender.acknowledged));
    result.map(|()| ExitCode::SUCCESS)
}

/// The agent's configuration from `conf_files` (none: the embedded default), and the files it
/// was read from.
fn load_config(
    conf_files: &[PathBuf],
    name: Option<&str>,
    java_props: &[(String, String)],
) -> anyhow::Result<(AgentConfig, Vec<PathBuf>)> {
    let mut props = if conf_files.is_empty() {
        Properties::parse(
            std::path::Path::new("<embedded conf/weir.properties>"),
            DEFAULT_CONFIG.as_bytes(),
        )?
    } else {
        Properties::load_all(conf_files)?
    };
    let name = match name {
        Some(n) => n.to_owned(),
        None => {
            let agents = props.agent_names();
            match agents.as_slice() {
                [one] => one.clone(),
                [] => anyhow::bail!(
                    "{}: {} no agent (expected keys like `a.sources = r1`)",
                    props.file_list(),
                    props.the_files_define(),
                ),
                _ => anyhow::bail!(
                    "{}: give the agent's name with -n ({}: {})",
                    props.file_list(),
                    props.the_files_define(),
                    agents.join(", ")
                ),
            }
        }
    };
    props.interpolate(&format!("{name}."), &Lookups::process(java_props))?;
    let config = AgentConfig::from_properties(&props, &name)?;
    #[cfg(not(feature = "kafka"))]
    refuse_kafka_components(&props, &name, &config)?;
    let files = if conf_files.is_empty() {
        Vec::new()
    } else {
        props.files.iter().map(|f| f.to_path_buf()).collect()
    };
    Ok((config, files))
}

/// What the configuration files hold now (a file that cannot be read: `None`), to tell a
/// change. Flume looks at modification times; the bytes tell a real change from a `touch`.
fn file_contents(files: &[PathBuf]) -> Vec<Option<Vec<u8>>> {
    files.iter().map(|f| std::fs::read(f).ok()).collect()
}

fn agent(
    conf_files: Vec<PathBuf>,
    name: Option<String>,
    check: bool,
    reload_every: Option<Duration>,
    metrics_addr: Option<String>,
    java_props: &[(String, String)],
) -> anyhow::Result<ExitCode> {
    let (config, files) = load_config(&conf_files, name.as_deref(), java_props)?;
    if check {
        let mut out = Out::new();
        out.print(format_args!("{}", config.describe()));
        for note in &config.notes {
            out.line(format_args!("note: {note}"));
        }
        for line in &config.left_out {
            out.line(format_args!("warning: {line}"));
        }
        // The checks may take a while (a Kafka check asks the brokers): show the wiring first.
        out.flush();
        let mut checked = || -> anyhow::Result<()> {
            let notes = config
                .channels
                .iter()
                .map(weir::channel::check)
                .chain(config.sources.iter().map(weir::source::check))
                .chain(config.sinks.iter().map(weir::sink::check));
            for n in notes {
                for note in n? {
                    out.line(format_args!("note: {note}"));
                }
            }
            Ok(())
        };
        let checked = checked();
        if checked.is_ok() {
            out.line(format_args!("configuration OK"));
        }
        // A failed check is the news; the output written up to it still goes out first.
        let written = out.finish();
        checked?;
        written?;
        return Ok(ExitCode::SUCCESS);
    }
    let open_files = weir::agent::raise_open_file_limit();
    weir::agent::check_open_file_limit(&config, open_files);
    let shutdown = weir::agent::shutdown_on_signals()?;
    // The embedded default has no file to change.
    let reload = reload_every.filter(|_| !files.is_empty()).map(|every| {
        use weir::agent::Look;
        // The bytes of the configuration last read, and of the last that could not be read,
        // so that neither is read again (restoring a file deleted for a moment reloads
        // nothing); new bytes wait for one more look (see `Look::Settling`).
        let mut read = file_contents(&files);
        let mut refused: Option<Vec<Option<Vec<u8>>>> = None;
        let mut settling: Option<Vec<Option<Vec<u8>>>> = None;
        let name = config.agent.clone();
        let java_props = java_props.to_vec();
        weir::agent::Reload {
            every,
            look: Box::new(move || {
                let now = file_contents(&files);
                if now == read {
                    refused = None;
                    settling = None;
                    return Look::Same;
                }
                if refused.as_ref() == Some(&now) {
                    return Look::Same;
                }
                if settling.as_ref() != Some(&now) {
                    settling = Some(now);
                    return Look::Settling;
                }
                settling = None;
                match load_config(&conf_files, Some(&name), &java_props) {
                    Ok((config, _)) => {
                        read = now;
                        refused = None;
                        Look::Changed(Ok(config))
                    }
                    Err(e) => {
                        refused = Some(now);
                        Look::Changed(Err(e))
                    }
                }
            }),
        }
    });
    weir::agent::run(
        &config,
        &weir::agent::AgentOptions { metrics_addr },
        shutdown,
        reload,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// A weir built without the `kafka` feature still parses Kafka components, so that their keys
/// are checked as in any build, but cannot run them. The first one is refused at its `type`
/// line, as every other refusal names file, line and key (the components' own refusals at
/// start only know their names).
#[cfg(not(feature = "kafka"))]
fn refuse_kafka_components(
    props: &Properties,
    agent: &str,
    config: &AgentConfig,
) -> anyhow::Result<()> {
    use weir::config::{ChannelKind, ConfigError, SinkKind, SourceKind};
    let sources = (config.sources.iter())
        .filter(|c| matches!(c.kind, SourceKind::Kafka(_)))
        .map(|c| ("sources", "source", &c.name));
    let channels = (config.channels.iter())
        .filter(|c| matches!(c.kind, ChannelKind::Kafka(_)))
        .map(|c| ("channels", "channel", &c.name));
    let sinks = (config.sinks.iter())
        .filter(|c| matches!(c.kind, SinkKind::Kafka(_)))
        .map(|c| ("sinks", "sink", &c.name));
    let Some((group, what, component)) = sources.chain(channels).chain(sinks).next() else {
        return Ok(());
    };
    let key = format!("{agent}.{group}.{component}.type");
    let mut error = ConfigError {
        files: props.files.iter().map(|f| f.to_path_buf()).collect(),
        line: None,
        key: Some(key.clone()),
        message: format!(
            "a Kafka {what}, and this weir was built without the `kafka` feature \
             (cargo build --features kafka)"
        ),
        also: Vec::new(),
    };
    if let Some(entry) = props.get(&key) {
        error.locate(entry);
    }
    Err(error.into())
}

fn verify(dir: PathBuf, checkpoint_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let bar = indicatif::ProgressBar::new(0);
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let report = inspect::verify(&dir, checkpoint_dir.as_deref(), |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    let mut out = Out::new();
    retired_notes(&mut out, &report);
    for s in &report.segments {
        if let Some(t) = &s.tail {
            out.line(format_args!("note: {t}"));
        }
    }
    no_consumer_note(&mut out, &dir, checkpoint_dir.as_deref(), &report);
    for p in &report.problems {
        out.line(format_args!("{}: {p}", p.kind.label()));
    }
    out.line(format_args!(
        "{} segments, {} frames, {} events, {} consumers: {}",
        report.segments.len(),
        report.frames,
        report.events,
        report.consumers.len(),
        if report.problems.is_empty() {
            "ok".to_string()
        } else {
            format!("{} problems", report.problems.len())
        }
    ));
    out.finish()?;
    Ok(if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn dump(dir: PathBuf, from: u64, limit: u64) -> anyhow::Result<ExitCode> {
    let mut out = Out::new();
    let mut problems = 0;
    inspect::dump_noting(
        &dir,
        from,
        limit,
        |e| {
            if out.is_failed() {
                return;
            }
            let headers: Vec<String> = e
                .headers
                .iter()
                .map(|(k, v)| {
                    // Quoted as the body is, so that no key or value can pass for the
                    // separators around it.
                    format!(
                        "\"{}\"=\"{}\"",
                        inspect::escape_text(k),
                        inspect::escape_text(v)
                    )
                })
                .collect();
            out.line(format_args!(
                "{}\t{{{}}}\t\"{}\"",
                e.offset,
                headers.join(", "),
                inspect::escape_bytes(&e.body)
            ));
        },
        |p| {
            problems += 1;
            to_stderr(format_args!("{}: {p}", p.kind.label()));
        },
        |path| to_stderr(format_args!("note: {}", retired_note(path))),
    )?;
    out.finish()?;
    Ok(if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Why a listed segment was skipped; see `inspect::VerifyReport::retired`.
fn retired_note(path: &std::path::Path) -> String {
    format!(
        "{}: retired while reading (the log's owner deleted it after it was listed: its events \
         were consumed); skipped",
        path.display()
    )
}

fn retired_notes(out: &mut Out, report: &inspect::VerifyReport) {
    for path in &report.retired {
        out.line(format_args!("note: {}", retired_note(path)));
    }
}

/// A file channel keeps its checkpoints apart from its log, so a report of no consumer often
/// only means the checkpoints were looked for in the wrong place: say where they are.
fn no_consumer_note(
    out: &mut Out,
    dir: &std::path::Path,
    checkpoint_dir: Option<&std::path::Path>,
    report: &inspect::VerifyReport,
) {
    let damaged_checkpoint = report
        .problems
        .iter()
        .any(|p| p.path.extension().is_some_and(|e| e == "ckpt"));
    if checkpoint_dir.is_none() && report.consumers.is_empty() && !damaged_checkpoint {
        out.line(format_args!(
            "note: no consumers in {}; a file channel keeps its checkpoint in its \
             checkpointDir: pass --checkpoint-dir",
            dir.display()
        ));
    }
}

fn stats(dir: PathBuf, checkpoint_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let report = inspect::verify(&dir, checkpoint_dir.as_deref(), |_, _| {})?;
    let first = report.segments.first().map(|s| s.base_offset).unwrap_or(0);
    let next = report.segments.last().map(|s| s.next_offset).unwrap_or(0);
    let bytes: u64 = report.segments.iter().map(|s| s.file_len).sum();
    let used: u64 = report
        .segments
        .iter()
        .map(|s| s.end_pos.saturating_sub(4096))
        .sum();
    let mut out = Out::new();
    retired_notes(&mut out, &report);
    out.line(format_args!("log:        {}", dir.display()));
    match report.log_id {
        Some(id) => out.line(format_args!("log id:     {id}")),
        None => out.line(format_args!(
            "log id:     none yet (the next open gives it one)"
        )),
    }
    out.line(format_args!("segments:   {}", report.segments.len()));
    // Offsets missing between segments, or in damaged frames, are no events.
    let span = next.saturating_sub(first);
    if span == report.events {
        out.line(format_args!(
            "offsets:    {first} .. {next} ({span} events)"
        ));
    } else {
        out.line(format_args!(
            "offsets:    {first} .. {next} ({} events; {} offsets in no readable frame)",
            report.events,
            span.saturating_sub(report.events)
        ));
    }
    if report.spare_bytes == 0 {
        out.line(format_args!("disk bytes: {bytes} ({used} bytes of frames)"));
    } else {
        out.line(format_args!(
            "disk bytes: {} ({used} bytes of frames, {} in spare segments kept for reuse)",
            bytes + report.spare_bytes,
            report.spare_bytes
        ));
    }
    let newest = report.segments.len().saturating_sub(1);
    for (i, s) in report.segments.iter().enumerate() {
        out.line(format_args!(
            "  {}  offsets {}..{}  {} frames  {} bytes used  {}",
            s.path.file_name().and_then(|n| n.to_str()).unwrap_or("?"),
            s.base_offset,
            s.next_offset,
            s.frames,
            s.end_pos.saturating_sub(4096),
            match (s.sealed, i == newest) {
                (true, _) => "sealed",
                (false, true) => "active",
                (false, false) => "not sealed (damaged seal?)",
            }
        ));
    }
    out.line(format_args!("consumers:  {}", report.consumers.len()));
    for (name, offset) in &report.consumers {
        out.line(format_args!(
            "  {name}: checkpoint {offset}, lag {}",
            next.saturating_sub(*offset)
        ));
    }
    no_consumer_note(&mut out, &dir, checkpoint_dir.as_deref(), &report);
    if !report.problems.is_empty() {
        out.line(format_args!(
            "problems:   {} (run `weir wal verify`)",
            report.problems.len()
        ));
    }
    out.finish()?;
    Ok(ExitCode::SUCCESS)
}

fn demo(dir: PathBuf, events: u64) -> anyhow::Result<ExitCode> {
    let wal = Wal::open(&dir, WalOptions::default())?;
    let start = wal.next_offset();
    let mut batch = Vec::with_capacity(100);
    for i in 0..events {
        batch.push(
            weir::event::Event::new(format!("demo event {}", start + i))
                .with_header("source", "demo"),
        );
        if batch.len() == 100 || i + 1 == events {
            wal.append(&batch)?;
            batch.clear();
        }
    }
    wal.commit()?;
    let mut out = Out::new();
    out.line(format_args!(
        "appended {events} events to {} (offsets {start}..{})",
        dir.display(),
        wal.next_offset()
    ));
    out.finish()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::{metrics_address, split_java_args};

    /// A launch line for Flume's Windows launcher runs as the Unix one does.
    #[test]
    fn the_windows_launchers_single_dash_options_are_read() {
        let args = "weir agent -conf ../conf -conf-file x.properties -name a1 -property \
                    flume.root.logger=INFO,console;flume.monitoring.type=http -Dk=v";
        let (rest, java) = split_java_args(args.split(' ').map(String::from).collect());
        assert_eq!(
            rest,
            [
                "weir",
                "agent",
                "--conf",
                "../conf",
                "--conf-file",
                "x.properties",
                "--name",
                "a1"
            ]
        );
        assert_eq!(java.property("flume.root.logger"), Some("INFO,console"));
        assert_eq!(java.property("flume.monitoring.type"), Some("http"));
        assert_eq!(java.property("k"), Some("v"));
    }

    #[test]
    fn the_metrics_address_takes_its_port_from_either_option_but_not_two() {
        assert_eq!(metrics_address(None, None), Ok(None));
        assert_eq!(
            metrics_address(None, Some(41414)),
            Ok(Some("0.0.0.0:41414".into()))
        );
        for (bind, port, want) in [
            ("127.0.0.1", Some(9), "127.0.0.1:9"),
            ("127.0.0.1:9", None, "127.0.0.1:9"),
            ("127.0.0.1:9", Some(9), "127.0.0.1:9"),
            ("localhost:9", None, "localhost:9"),
            ("::1", Some(9), "[::1]:9"),
            ("[::1]:9", None, "[::1]:9"),
        ] {
            assert_eq!(
                metrics_address(Some(bind), port),
                Ok(Some(want.into())),
                "{bind} {port:?}"
            );
        }
        for (bind, port, want) in [
            ("127.0.0.1", None, "names no port"),
            (
                "127.0.0.1:9",
                Some(10),
                "names port 9 and --metrics-port 10",
            ),
            ("host:99999", None, "'99999' is not a port number"),
        ] {
            let err = metrics_address(Some(bind), port).unwrap_err();
            assert!(err.contains(want), "{bind} {port:?}: {err}");
        }
    }
}
