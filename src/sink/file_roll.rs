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
use crate::config::FileRollConfig;
use crate::event::Event;

pub struct FileRollSink {
    name: String,
    config: FileRollConfig,
    current: Option<(PathBuf, BufWriter<File>, Instant)>,
    /// Distinguishes files opened in the same millisecond.
    counter: u64,
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
        })
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
            let ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0);
            self.counter += 1;
            let path = self
                .config
                .directory
                .join(format!("{}{ms}-{}", self.config.prefix, self.counter));
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
