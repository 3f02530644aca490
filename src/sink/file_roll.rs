//! The rolling file sink: one event body per line into files in a directory, a new file every
//! `rollInterval` (Flume's RollingFileSink with the TEXT serializer). A take is committed only
//! after its lines are flushed — and, by default, fdatasync'ed — so a crash never loses a line
//! whose take was committed.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;

use super::Sink;
use crate::config::{FileNaming, FileRollConfig};
use crate::event::Event;

pub struct FileRollSink {
    name: String,
    config: FileRollConfig,
    current: Option<(PathBuf, BufWriter<File>, Instant)>,
    /// Numbers the files of this run (under ROLLTIME, of the current second).
    counter: u64,
    /// ROLLTIME: the second the counter counts in.
    counted_second: String,
    /// DEFAULT: the milliseconds since the epoch when the sink started, the same in every file
    /// name of this run (Flume's series timestamp); the counter orders the files.
    series: u128,
}

impl FileRollSink {
    pub fn new(name: &str, config: FileRollConfig) -> anyhow::Result<FileRollSink> {
        std::fs::create_dir_all(&config.directory).with_context(|| {
            format!("sink {name}: cannot create {}", config.directory.display())
        })?;
        Ok(FileRollSink {
            name: name.to_owned(),
            config,
            current: None,
            counter: 0,
            counted_second: String::new(),
            series: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0),
        })
    }

    /// The next file's name, as Flume's path managers make them.
    fn next_name(&mut self) -> String {
        let stamp = match self.config.naming {
            FileNaming::Default => self.series.to_string(),
            FileNaming::RollTime => {
                let second = chrono::Local::now().format("%Y%m%d%H%M%S").to_string();
                if second != self.counted_second {
                    self.counter = 0;
                    self.counted_second.clone_from(&second);
                }
                second
            }
        };
        self.counter += 1;
        let mut name = format!("{}{stamp}-{}", self.config.prefix, self.counter);
        if !self.config.extension.is_empty() {
            name.push('.');
            name.push_str(&self.config.extension);
        }
        name
    }

    fn roll_due(&self) -> bool {
        match &self.current {
            Some((_, _, opened)) => {
                !self.config.roll_interval.is_zero()
                    && opened.elapsed() >= self.config.roll_interval
            }
            None => false,
        }
    }

    fn close_current(&mut self) -> anyhow::Result<()> {
        if let Some((path, mut w, _)) = self.current.take() {
            w.flush()
                .with_context(|| format!("flush {}", path.display()))?;
            tracing::debug!(sink = %self.name, file = %path.display(), "closed file");
        }
        Ok(())
    }

    fn writer(&mut self) -> anyhow::Result<&mut BufWriter<File>> {
        if self.roll_due() {
            self.close_current()?;
        }
        if self.current.is_none() {
            let name = self.next_name();
            let path = self.config.directory.join(name);
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .with_context(|| format!("sink {}: cannot open {}", self.name, path.display()))?;
            self.current = Some((
                path,
                BufWriter::with_capacity(256 * 1024, file),
                Instant::now(),
            ));
        }
        match &mut self.current {
            Some((_, w, _)) => Ok(w),
            None => unreachable!("a file was opened just above"),
        }
    }
}

impl Sink for FileRollSink {
    fn deliver(&mut self, events: &[(u64, Event)]) -> anyhow::Result<()> {
        let fsync = self.config.fsync;
        let result = (|| {
            let w = self.writer()?;
            for (_, e) in events {
                w.write_all(&e.body)?;
                w.write_all(b"\n")?;
            }
            w.flush()?;
            if fsync {
                w.get_ref().sync_data()?;
            }
            anyhow::Ok(())
        })();
        if result.is_err() {
            // The file may hold part of the batch: start a fresh file for the retry, so no line
            // is ever half written into the middle of another.
            self.current = None;
        }
        result.with_context(|| {
            format!(
                "sink {}: writing to {}",
                self.name,
                self.config.directory.display()
            )
        })
    }

    fn idle(&mut self) -> anyhow::Result<()> {
        if self.roll_due() {
            self.close_current()?;
        }
        Ok(())
    }

    fn close(&mut self) -> anyhow::Result<()> {
        self.close_current()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sink(dir: &std::path::Path, naming: FileNaming, prefix: &str, ext: &str) -> FileRollSink {
        FileRollSink::new(
            "k1",
            FileRollConfig {
                directory: dir.to_owned(),
                roll_interval: Duration::ZERO,
                prefix: prefix.into(),
                extension: ext.into(),
                naming,
                fsync: false,
            },
        )
        .unwrap()
    }

    /// Names as Flume's DEFAULT and ROLLTIME path managers make them: prefix, time (DEFAULT: the
    /// sink's start, for every file), `-`, counter, and `.extension` when one is set.
    #[test]
    fn file_names_follow_flumes_path_managers() {
        let dir = tempfile::tempdir().unwrap();
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis();
        let mut s = sink(dir.path(), FileNaming::Default, "app-", "log");
        let (first, second) = (s.next_name(), s.next_name());
        let re = regex::Regex::new(r"^app-(\d{13})-(\d+)\.log$").unwrap();
        let caps = re.captures(&first).unwrap_or_else(|| panic!("{first}"));
        assert!(caps[1].parse::<u128>().unwrap() >= before, "{first}");
        assert_eq!(&caps[2], "1");
        assert_eq!(
            second,
            format!("app-{}-2.log", &caps[1]),
            "one series per run"
        );

        let mut s = sink(dir.path(), FileNaming::RollTime, "", "");
        let name = s.next_name();
        let re = regex::Regex::new(r"^(20\d{12})-(\d+)$").unwrap();
        let caps = re.captures(&name).unwrap_or_else(|| panic!("{name}"));
        // The counter restarts when the second changes, so it is 1 unless the second is the same.
        let next = s.next_name();
        let next_caps = re.captures(&next).unwrap_or_else(|| panic!("{next}"));
        if next_caps[1] == caps[1] {
            assert_eq!(&next_caps[2], "2");
        } else {
            assert_eq!(&next_caps[2], "1");
        }
    }

    #[test]
    fn lines_land_in_a_file_named_with_prefix_and_extension() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sink(dir.path(), FileNaming::Default, "pre", "txt");
        s.deliver(&[(0, Event::new(&b"one"[..])), (1, Event::new(&b"two"[..]))])
            .unwrap();
        s.close().unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        assert!(
            files[0].starts_with("pre") && files[0].ends_with("-1.txt"),
            "{files:?}"
        );
        let text = std::fs::read_to_string(dir.path().join(&files[0])).unwrap();
        assert_eq!(text, "one\ntwo\n");
    }
}
