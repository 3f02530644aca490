//! file_roll under a SIGKILL loop: no torn line survives the next start. A test binary of its
//! own, since it keeps the disk busy for a minute or two and would slow the agent tests beside it.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::{Agent, file_roll_files, free_port};

const SIZE: usize = 4000;

/// The lines of `files` that are not a whole stress event (`SIZE` bytes of 0x7F), by length.
fn torn_lines(files: &[std::path::PathBuf]) -> Vec<usize> {
    let mut torn = Vec::new();
    for f in files {
        let bytes = std::fs::read(f).unwrap();
        let body = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
        if body.is_empty() {
            continue;
        }
        torn.extend(
            body.split(|b| *b == b'\n')
                .filter(|l| l.len() != SIZE || l.iter().any(|&b| b != 0x7f))
                .map(<[u8]>::len),
        );
    }
    torn
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// A file's DEFAULT-naming series: the millisecond its run's sink started.
fn series(path: &Path) -> u128 {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    name.split_once('-').unwrap().0.parse().unwrap()
}

/// A kill in the middle of file_roll's write leaves part of a batch at the end of its file; the
/// take was not committed, so the batch comes again, and the next start cuts the torn part off.
/// The stress source keeps the sink writing 2 MB batches back to back, and the agent is killed
/// every 0.2–0.4 s. After each kill, the files of the runs before it (which that run's start
/// repaired) must hold whole lines only; they are then deleted, so the disk holds one run's
/// output. Kills land inside a write about once in fifty: without the repair, three runs of 150
/// kills left 3, 5 and 1 torn lines (with it, runs cut 1 and 6 torn batches), so a regression
/// fails this test with a probability of about 95% (`WEIR_TORN_KILLS` sets the count, 150;
/// about 100 s).
#[test]
fn no_line_torn_by_sigkill_survives_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let port = free_port();
    // The idle netcat source r2 is only there to tell when the agent has started.
    let text = format!(
        "a.sources = r1 r2\na.channels = c1\na.sinks = k1\n\
         a.sources.r2.type = netcat\na.sources.r2.bind = 127.0.0.1\na.sources.r2.port = {port}\n\
         a.sources.r2.channels = c1\n\
         a.sources.r1.type = stress\na.sources.r1.size = {SIZE}\na.sources.r1.batchSize = 100\n\
         a.sources.r1.channels = c1\n\
         a.channels.c1.type = file\na.channels.c1.checkpointDir = {d}/ckpt\n\
         a.channels.c1.dataDirs = {d}/log\na.channels.c1.minimumRequiredSpace = 0\n\
         a.sinks.k1.type = file_roll\na.sinks.k1.channel = c1\na.sinks.k1.sink.directory = {d}/out\n\
         a.sinks.k1.sink.batchSize = 500\na.sinks.k1.sink.fsync = false\n\
         a.sinks.k1.sink.rollInterval = 0\n"
    );
    let cfg = dir.path().join("agent.properties");
    std::fs::write(&cfg, text).unwrap();
    let log_path = dir.path().join("agent.log");
    let log = || {
        Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .unwrap(),
        )
    };
    let kills: u32 = std::env::var("WEIR_TORN_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150);
    let out = dir.path().join("out");
    let (mut lines, mut torn) = (0usize, Vec::new());
    let mut check_runs_before = |run_start: u128| {
        let done: Vec<_> = file_roll_files(&out)
            .into_iter()
            .filter(|f| series(f) < run_start)
            .collect();
        torn.extend(torn_lines(&done));
        for f in done {
            lines += std::fs::metadata(&f).unwrap().len() as usize / (SIZE + 1);
            std::fs::remove_file(f).unwrap();
        }
    };
    for _ in 0..kills {
        let started = now_ms();
        let mut agent = Agent::start_with(&cfg, port, &[], log());
        std::thread::sleep(Duration::from_millis(fastrand::u64(200..400)));
        agent.kill9();
        check_runs_before(started);
    }
    // The last kill's torn batch is cut by one more start.
    let started = now_ms();
    let mut agent = Agent::start_with(&cfg, port, &[], log());
    std::thread::sleep(Duration::from_millis(300));
    assert!(agent.stop());
    check_runs_before(started + 1_000_000);
    let logged = std::fs::read_to_string(&log_path).unwrap();
    let cut = logged.matches("cut off a batch torn").count();
    eprintln!(
        "{kills} kills: {lines} lines checked, {} torn, {cut} torn batches cut off at a start",
        torn.len()
    );
    assert!(lines > 0, "the sink wrote nothing");
    assert!(torn.is_empty(), "torn lines (lengths): {torn:?}");
}
