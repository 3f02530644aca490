//! The rolling file sink: events into files in a directory, a new file every `rollInterval`
//! (Flume's RollingFileSink), each event turned into bytes by the configured serializer
//! (`serializer`: TEXT, HEADER_AND_TEXT or AVRO_EVENT). A take is committed only after its bytes
//! are written — and, by default, fdatasync'ed — so a crash never loses an event whose take was
//! committed, and every file ends, after each committed batch, with a complete line or Avro
//! block.
//!
//! A batch is serialized in memory and written to the file with one write; if that fails, the
//! file is cut back to its last committed byte so the retry does not follow a partial batch (if
//! even that fails, the retry goes to a new file). A batch torn by a kill in the middle of that
//! write is cut off at the next start ([`batch_mark`]).

mod batch_mark;

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;

use super::Sink;
use super::serializer::Serializer;
use crate::config::{FileNaming, FileRollConfig};
use crate::event::Event;

/// The file being written.
struct Current {
    path: PathBuf,
    file: File,
    opened: Instant,
    /// Bytes written by committed batches (the file's length when nothing failed).
    committed: u64,
}

pub struct FileRollSink {
    name: String,
    config: FileRollConfig,
    serializer: Serializer,
    current: Option<Current>,
    /// The serialized batch, kept to reuse its allocation.
    buf: Vec<u8>,
    /// Numbers the files of this run (under ROLLTIME, of the current second).
    counter: u64,
    /// ROLLTIME: the second the counter counts in.
    counted_second: String,
    /// DEFAULT: the milliseconds since the epoch when the sink started, the same in every file
    /// name of this run (Flume's series timestamp); the counter orders the files.
    series: u64,
    /// Whether batches are marked on the file ([`batch_mark`]): off where the filesystem has no
    /// user extended attributes.
    marking: bool,
}

impl FileRollSink {
    pub fn new(name: &str, config: FileRollConfig) -> anyhow::Result<FileRollSink> {
        std::fs::create_dir_all(&config.directory).with_context(|| {
            format!("sink {name}: cannot create {}", config.directory.display())
        })?;
        let repaired = batch_mark::repair(
            &config.directory,
            |file| is_named_by(&config, file),
            config.fsync,
        );
        for (file, done) in repaired {
            tracing::warn!(
                sink = %name,
                directory = %config.directory.display(),
                %file,
                "cut off a batch torn by a kill or crash in the middle of its write: {done} \
                 (from a durable channel, such a batch had not been committed, and comes again)"
            );
        }
        Ok(FileRollSink {
            name: name.to_owned(),
            serializer: Serializer::new(&config.serializer),
            config,
            current: None,
            buf: Vec::new(),
            counter: 0,
            counted_second: String::new(),
            series: crate::event::now_millis(),
            marking: true,
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

    /// Whether the current file is due to be closed. A file still empty (its first batch failed:
    /// a full disk, say) is kept, so that a long outage does not leave an empty file per
    /// `rollInterval`.
    fn roll_due(&self) -> bool {
        match &self.current {
            Some(c) => {
                c.committed > 0
                    && !self.config.roll_interval.is_zero()
                    && c.opened.elapsed() >= self.config.roll_interval
            }
            None => false,
        }
    }

    fn close_current(&mut self) {
        // Every committed batch is already complete in the file (and synced if `fsync`).
        if let Some(c) = self.current.take() {
            if c.committed == 0 {
                // Its first batch never went in (a full disk): an empty file is not even a valid
                // Avro file.
                if c.file.metadata().is_ok_and(|m| m.len() == 0) {
                    let _ = std::fs::remove_file(&c.path);
                }
            } else if self.marking {
                batch_mark::unmark(&c.file, &c.path);
            }
            tracing::debug!(sink = %self.name, file = %c.path.display(), "closed file");
        }
    }

    /// Opens the next file. A name already taken (a restart within the same second under
    /// ROLLTIME, say) is skipped rather than appended to: an Avro file cannot be continued
    /// without its sync marker, and a text file should not mix runs.
    fn open_next(&mut self) -> anyhow::Result<Current> {
        let mut recreated = false;
        for _ in 0..1000 {
            let name = self.next_name();
            let path = self.config.directory.join(name);
            let opened = match OpenOptions::new().create_new(true).append(true).open(&path) {
                // The directory was removed while the sink ran: made again, as at start.
                Err(e) if e.kind() == ErrorKind::NotFound && !recreated => {
                    recreated = true;
                    match std::fs::create_dir_all(&self.config.directory) {
                        Ok(()) => tracing::warn!(
                            sink = %self.name,
                            directory = %self.config.directory.display(),
                            "the output directory was removed while the sink ran; created it again"
                        ),
                        Err(e) => {
                            tracing::debug!(sink = %self.name, error = %e, "cannot create the output directory again")
                        }
                    }
                    OpenOptions::new().create_new(true).append(true).open(&path)
                }
                opened => opened,
            };
            match opened {
                Ok(file) => {
                    // Held while the file is written, so that another agent's start-up repair
                    // (batch_mark) leaves it alone.
                    if let Err(e) = file.try_lock() {
                        tracing::warn!(
                            sink = %self.name,
                            file = %path.display(),
                            "cannot lock the new file ({e}): another agent starting with this \
                             directory could cut a batch torn in it while it is written"
                        );
                    }
                    if self.config.fsync {
                        // The new name must survive a crash with the data synced into it.
                        let synced = File::open(&self.config.directory).and_then(|d| d.sync_all());
                        if let Err(e) = synced {
                            // Nothing is in it, and the retry opens a file of another name:
                            // an empty file left here would stay for good (out of
                            // descriptors, audit 8 found nine).
                            drop(file);
                            let _ = std::fs::remove_file(&path);
                            self.counter -= 1;
                            return Err(e).with_context(|| {
                                format!("sync directory {}", self.config.directory.display())
                            });
                        }
                    }
                    return Ok(Current {
                        path,
                        file,
                        opened: Instant::now(),
                        committed: 0,
                    });
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    // The number is still free: the retry's file takes it, so the files of a
                    // run stay numbered without gaps.
                    self.counter -= 1;
                    return Err(e).with_context(|| format!("cannot create {}", path.display()));
                }
            }
        }
        anyhow::bail!(
            "no free file name in {} after 1000 tries",
            self.config.directory.display()
        )
    }

    /// Serializes `events` (after the file header if the file is new) into `self.buf`.
    fn serialize(&mut self, events: &[(u64, Event)], new_file: bool) -> std::io::Result<()> {
        self.buf.clear();
        if new_file {
            self.serializer.begin_file(&mut self.buf);
        }
        for (_, e) in events {
            self.serializer.write(e, &mut self.buf)?;
        }
        self.serializer.end_batch(&mut self.buf)
    }

    fn write_batch(&mut self, events: &[(u64, Event)]) -> anyhow::Result<()> {
        if self.roll_due() {
            self.close_current();
        }
        let mut current = match self.current.take() {
            Some(c) => c,
            None => self.open_next()?,
        };
        if let Err(e) = self.serialize(events, current.committed == 0) {
            self.serializer.abandon_batch();
            self.current = Some(current);
            return Err(e).context("serializing the batch");
        }
        if self.marking {
            let end = current.committed + self.buf.len() as u64;
            if let Err(e) = batch_mark::mark(&current.file, current.committed, end) {
                self.marking = false;
                tracing::warn!(
                    sink = %self.name,
                    file = %current.path.display(),
                    "{}: from now on, a batch torn by a kill in the middle of its write stays \
                     at the end of its file (as in Flume)",
                    batch_mark::why_unmarked(e)
                );
            }
        }
        if let Err(e) = current.file.write_all(&self.buf) {
            let path = current.path.clone();
            let committed = current.committed;
            // Cut the partial batch off so the retry continues a well-formed file.
            self.current = self.cut_back(current);
            if e.raw_os_error() == Some(libc_efbig()) {
                // The file reached the largest size this process may write (`ulimit -f`,
                // RLIMIT_FSIZE): more cannot go into it, so the retry starts a new file rather
                // than wait for `rollInterval` (for ever, with 0).
                let bytes = self.buf.len();
                if committed > 0 {
                    self.close_current();
                    return Err(e).with_context(|| {
                        format!(
                            "{} is as large as this process may write a file (ulimit -f); the \
                             batch goes to a new file",
                            path.display()
                        )
                    });
                }
                return Err(e).with_context(|| {
                    format!(
                        "a batch of {bytes} bytes is larger than this process may write into \
                         one file (ulimit -f); raise the limit, or make batches smaller"
                    )
                });
            }
            return Err(e).with_context(|| format!("writing the batch to {}", path.display()));
        }
        if self.config.fsync
            && let Err(e) = current.file.sync_data()
        {
            // After a failed fdatasync the kernel's copy of the file cannot be trusted to reach
            // the disk: cut the batch off all the same, but retry into a new file.
            let _ = self.cut_back(current);
            return Err(e).context("fdatasync");
        }
        if current.committed == 0 {
            // The roll interval counts from the file's first batch, not from an outage before it.
            current.opened = Instant::now();
        }
        current.committed += self.buf.len() as u64;
        self.current = Some(current);
        Ok(())
    }

    /// Cuts `current` back to its committed bytes; the file to go on with, or none (a new file
    /// for the retry) if it cannot be cut and so ends in a partial batch.
    fn cut_back(&self, current: Current) -> Option<Current> {
        match current.file.set_len(current.committed) {
            Ok(()) => Some(current),
            Err(e) => {
                tracing::error!(
                    sink = %self.name,
                    file = %current.path.display(),
                    at = current.committed,
                    "cannot cut a failed batch off the file ({e}): it ends in a partial batch, \
                     and the retry goes to a new file"
                );
                None
            }
        }
    }
}

/// Linux's EFBIG: a write past RLIMIT_FSIZE (SIGXFSZ is ignored, see `main`).
fn libc_efbig() -> i32 {
    rustix::io::Errno::FBIG.raw_os_error()
}

/// Whether `file` has a name this sink's path manager makes: prefix, digits (the DEFAULT series
/// or the ROLLTIME second), `-`, the counter, and `.extension` when one is set.
fn is_named_by(config: &FileRollConfig, file: &str) -> bool {
    let Some(rest) = file.strip_prefix(config.prefix.as_str()) else {
        return false;
    };
    let rest = if config.extension.is_empty() {
        rest
    } else {
        match rest
            .strip_suffix(config.extension.as_str())
            .and_then(|r| r.strip_suffix('.'))
        {
            Some(r) => r,
            None => return false,
        }
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    rest.split_once('-')
        .is_some_and(|(stamp, counter)| digits(stamp) && digits(counter))
}

impl Sink for FileRollSink {
    fn deliver(&mut self, events: &[(u64, Event)]) -> anyhow::Result<()> {
        self.write_batch(events).with_context(|| {
            format!(
                "sink {}: writing to {}",
                self.name,
                self.config.directory.display()
            )
        })
    }

    fn idle(&mut self) -> anyhow::Result<()> {
        if self.roll_due() {
            self.close_current();
        }
        Ok(())
    }

    fn close(&mut self) -> anyhow::Result<()> {
        self.close_current();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sink(dir: &std::path::Path, naming: FileNaming, prefix: &str, ext: &str) -> FileRollSink {
        sink_with(dir, naming, prefix, ext, Default::default())
    }

    fn sink_with(
        dir: &std::path::Path,
        naming: FileNaming,
        prefix: &str,
        ext: &str,
        serializer: crate::config::SerializerConfig,
    ) -> FileRollSink {
        FileRollSink::new(
            "k1",
            FileRollConfig {
                directory: dir.to_owned(),
                roll_interval: Duration::ZERO,
                prefix: prefix.into(),
                extension: ext.into(),
                naming,
                fsync: true,
                serializer,
            },
        )
        .unwrap()
    }

    /// Names as Flume's DEFAULT and ROLLTIME path managers make them: prefix, time (DEFAULT: the
    /// sink's start, for every file), `-`, counter, and `.extension` when one is set.
    #[test]
    fn file_names_follow_flumes_path_managers() {
        let dir = tempfile::tempdir().unwrap();
        let before = crate::event::now_millis();
        let mut s = sink(dir.path(), FileNaming::Default, "app-", "log");
        let (first, second) = (s.next_name(), s.next_name());
        let re = regex::Regex::new(r"^app-(\d{13})-(\d+)\.log$").unwrap();
        let caps = re.captures(&first).unwrap_or_else(|| panic!("{first}"));
        assert!(caps[1].parse::<u64>().unwrap() >= before, "{first}");
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

    /// The output directory removed while the sink runs is made again at the next file; a
    /// create that fails (here: the directory replaced by a file) uses up no file number.
    #[test]
    fn a_removed_directory_is_made_again_and_failed_creates_leave_no_gap() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("out");
        let mut s = sink(&dir, FileNaming::Default, "", "");
        let batch = |i: u64| [(i, Event::new(format!("line-{i}").into_bytes()))];
        s.deliver(&batch(0)).unwrap();
        s.close().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::write(&dir, b"not a directory").unwrap();
        for i in 1..3 {
            let err = s.deliver(&batch(i)).unwrap_err();
            assert!(format!("{err:#}").contains("cannot create"), "{err:#}");
        }
        std::fs::remove_file(&dir).unwrap();
        s.deliver(&batch(1)).unwrap();
        s.close().unwrap();
        let mut numbers: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .map(|n| n.rsplit('-').next().unwrap().to_owned())
            .collect();
        numbers.sort();
        assert_eq!(numbers, ["2"], "the first file went with the old directory");
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

    fn files(dir: &std::path::Path) -> Vec<String> {
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        files.sort();
        files
    }

    /// A file that already has the next name (a restart within the same ROLLTIME second) is left
    /// alone: the sink moves on to the next counter instead of appending to it.
    #[test]
    fn a_taken_name_is_skipped_not_appended_to() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sink(dir.path(), FileNaming::Default, "", "");
        let taken = format!("{}-1", s.series);
        std::fs::write(dir.path().join(&taken), "earlier run\n").unwrap();
        s.deliver(&[(0, Event::new(&b"new"[..]))]).unwrap();
        s.close().unwrap();
        let next = format!("{}-2", s.series);
        assert_eq!(files(dir.path()), [taken.clone(), next.clone()]);
        assert_eq!(
            std::fs::read_to_string(dir.path().join(taken)).unwrap(),
            "earlier run\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join(next)).unwrap(),
            "new\n"
        );
    }

    /// After every delivery the Avro file ends with a complete block (its last 16 bytes are the
    /// header's sync marker), and a rolled file starts with a header and a marker of its own.
    #[test]
    fn avro_files_end_with_a_complete_block_after_every_batch_and_rolls_start_anew() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sink_with(
            dir.path(),
            FileNaming::Default,
            "",
            "avro",
            crate::config::SerializerConfig::AvroEvent {
                sync_interval_bytes: 2_048_000,
                codec: crate::config::AvroCodec::Null,
            },
        );
        // Magic 4, metadata 1 + (1 + 11 + 2 + 133) + (1 + 10 + 1 + 4) + 1: the marker at 169.
        let marker = |bytes: &[u8]| bytes[169..185].to_vec();
        let mut sizes = Vec::new();
        for i in 0..3 {
            s.deliver(&[(i, Event::new(format!("event {i}").into_bytes()))])
                .unwrap();
            let bytes = std::fs::read(dir.path().join(&files(dir.path())[0])).unwrap();
            assert_eq!(&bytes[..4], b"Obj\x01");
            assert_eq!(bytes[bytes.len() - 16..], marker(&bytes));
            sizes.push(bytes.len());
        }
        // Each batch: 1 record, its size, the record (empty map, "event i") and the marker.
        assert_eq!(sizes, [185 + 27, 185 + 2 * 27, 185 + 3 * 27]);

        s.close_current();
        s.deliver(&[(3, Event::new(&b"after the roll"[..]))])
            .unwrap();
        let names = files(dir.path());
        assert_eq!(names.len(), 2, "{names:?}");
        let first = std::fs::read(dir.path().join(&names[0])).unwrap();
        let second = std::fs::read(dir.path().join(&names[1])).unwrap();
        assert_eq!(
            first.len(),
            185 + 3 * 27,
            "the closed file is left as it was"
        );
        assert_eq!(second[..169], first[..169], "the same header");
        assert_ne!(marker(&second), marker(&first), "a new sync marker");
        assert_eq!(second[second.len() - 16..], marker(&second));
    }

    /// A batch that cannot be written fails the delivery (the take rolls back), and the retry
    /// does not continue a file it could not cut back: it starts a new one, with its own Avro
    /// header, while the old file still ends with its last committed block.
    #[test]
    fn a_failed_write_is_retried_into_a_well_formed_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sink_with(
            dir.path(),
            FileNaming::Default,
            "",
            "",
            crate::config::SerializerConfig::AvroEvent {
                sync_interval_bytes: 2_048_000,
                codec: crate::config::AvroCodec::Deflate,
            },
        );
        s.deliver(&[(0, Event::new(&b"committed"[..]))]).unwrap();
        let first = dir.path().join(&files(dir.path())[0]);
        let committed = std::fs::read(&first).unwrap();
        // A read-only descriptor for the same file: writing, and cutting back, both fail.
        s.current.as_mut().unwrap().file = File::open(&first).unwrap();
        let err = s.deliver(&[(1, Event::new(&b"retried"[..]))]).unwrap_err();
        assert!(format!("{err:#}").contains("writing the batch"), "{err:#}");
        assert!(
            s.current.is_none(),
            "the retry must not go to the uncut file"
        );
        s.deliver(&[(1, Event::new(&b"retried"[..]))]).unwrap();
        let names = files(dir.path());
        assert_eq!(names.len(), 2, "{names:?}");
        assert_eq!(std::fs::read(&first).unwrap(), committed);
        let second = std::fs::read(dir.path().join(&names[1])).unwrap();
        assert_eq!(&second[..4], b"Obj\x01");
        assert_eq!(second[second.len() - 16..], second[172..188]);
    }

    fn has_mark(path: &std::path::Path) -> bool {
        rustix::fs::getxattr_query(path, "user.weir.batch").is_ok()
    }

    /// Appends `bytes` to `path` as a write cut short by a kill would have left them, after the
    /// mark the sink puts before a batch of `whole` bytes.
    fn tear(path: &std::path::Path, bytes: &[u8], whole: u64) {
        let mut f = OpenOptions::new().append(true).open(path).unwrap();
        let len = f.metadata().unwrap().len();
        batch_mark::mark(&f, len, len + whole).unwrap();
        f.write_all(bytes).unwrap();
    }

    /// A run killed in the middle of a batch's write (the sink dropped without closing, the file
    /// left with part of a batch and its mark) is repaired by the next start: the file is cut back
    /// to its committed lines, its mark removed, and the next batch goes to a new file.
    #[test]
    fn a_batch_torn_by_a_kill_is_cut_off_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sink(dir.path(), FileNaming::Default, "", "");
        s.deliver(&[(0, Event::new(&b"one"[..])), (1, Event::new(&b"two"[..]))])
            .unwrap();
        let first = dir.path().join(&files(dir.path())[0]);
        assert!(has_mark(&first), "a batch is marked while its file is open");
        drop(s);
        tear(&first, b"three\nfo", 11);

        let mut s = sink(dir.path(), FileNaming::Default, "", "");
        assert_eq!(std::fs::read_to_string(&first).unwrap(), "one\ntwo\n");
        assert!(!has_mark(&first));
        s.deliver(&[
            (2, Event::new(&b"three"[..])),
            (3, Event::new(&b"four"[..])),
        ])
        .unwrap();
        s.close().unwrap();
        let names = files(dir.path());
        assert_eq!(names.len(), 2, "{names:?}");
        let second = std::fs::read_to_string(dir.path().join(&names[1])).unwrap();
        assert_eq!(second, "three\nfour\n");
        assert!(
            !has_mark(&dir.path().join(&names[1])),
            "closing removes the mark"
        );
    }

    /// A torn first batch of an Avro file leaves a file with nothing committed (not even a whole
    /// header): it is removed rather than left as a file no Avro reader opens.
    #[test]
    fn a_file_torn_in_its_first_batch_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1700000000000-1.avro");
        std::fs::write(&path, b"").unwrap();
        tear(&path, b"Obj\x01\x04\x14avro.co", 400);
        let _s = sink(dir.path(), FileNaming::Default, "", "avro");
        assert!(!path.exists());
    }

    /// Marks that do not lie around the file's length are left alone: a batch written whole and
    /// not committed (it comes again: at least once, not a torn line), and a stale mark. A file
    /// another agent is writing (it holds the lock) and a file of another naming are not touched
    /// either.
    #[test]
    fn only_a_torn_batch_in_an_unlocked_file_of_this_sink_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let whole = dir.path().join("app-1-1.log");
        std::fs::write(&whole, b"a\n").unwrap();
        tear(&whole, b"b\n", 2);
        let stale = dir.path().join("app-1-2.log");
        std::fs::write(&stale, b"a\nb\nc\n").unwrap();
        let f = File::open(&stale).unwrap();
        batch_mark::mark(&f, 0, 2).unwrap();
        let locked = dir.path().join("app-1-3.log");
        std::fs::write(&locked, b"a\n").unwrap();
        tear(&locked, b"b", 2);
        let writer = File::open(&locked).unwrap();
        writer.try_lock().unwrap();
        let other = dir.path().join("other-1-1.log");
        std::fs::write(&other, b"a\n").unwrap();
        tear(&other, b"b", 2);

        drop(sink(dir.path(), FileNaming::Default, "app-", "log"));
        assert_eq!(std::fs::read(&whole).unwrap(), b"a\nb\n");
        assert!(!has_mark(&whole), "a spent mark is removed");
        assert_eq!(std::fs::read(&stale).unwrap(), b"a\nb\nc\n");
        assert_eq!(std::fs::read(&locked).unwrap(), b"a\nb");
        assert!(has_mark(&locked));
        assert_eq!(std::fs::read(&other).unwrap(), b"a\nb");

        drop(writer);
        drop(sink(dir.path(), FileNaming::Default, "app-", "log"));
        assert_eq!(std::fs::read(&locked).unwrap(), b"a\n", "cut once unlocked");
    }

    /// While the first batch of a file keeps failing (a full disk), the empty file is kept past
    /// `rollInterval` instead of a new empty file being made at every roll; the interval then
    /// counts from its first batch; and an empty file is removed when it is closed.
    #[test]
    fn an_empty_file_is_not_rolled_and_not_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sink(dir.path(), FileNaming::Default, "", "");
        s.config.roll_interval = Duration::from_secs(60);
        let path = dir.path().join("1-1");
        std::fs::write(&path, b"").unwrap();
        let an_hour_ago = Instant::now() - Duration::from_secs(3600);
        // A read-only descriptor: writes fail, and cutting back to 0 bytes of a 0-byte file too.
        s.current = Some(Current {
            path: path.clone(),
            file: File::open(&path).unwrap(),
            opened: an_hour_ago,
            committed: 0,
        });
        assert!(!s.roll_due());
        s.idle().unwrap();
        assert!(s.current.is_some(), "the empty file is kept");
        // The disk has room again.
        s.current = Some(Current {
            path: path.clone(),
            file: OpenOptions::new().append(true).open(&path).unwrap(),
            opened: an_hour_ago,
            committed: 0,
        });
        s.deliver(&[(0, Event::new(&b"goes in"[..]))]).unwrap();
        assert!(!s.roll_due(), "the interval counts from the first batch");
        s.current.as_mut().unwrap().opened = an_hour_ago;
        assert!(s.roll_due(), "a file holding a batch rolls");
        s.close().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"goes in\n");

        let empty = dir.path().join("1-2");
        std::fs::write(&empty, b"").unwrap();
        s.current = Some(Current {
            path: empty.clone(),
            file: File::open(&empty).unwrap(),
            opened: an_hour_ago,
            committed: 0,
        });
        s.close().unwrap();
        assert!(!empty.exists(), "an empty file is removed at close");
    }

    /// Only names the path managers make are looked at by the start-up repair.
    #[test]
    fn the_repair_looks_only_at_names_of_the_sinks_path_manager() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = sink(dir.path(), FileNaming::Default, "app-", "log").config;
        for name in ["app-1700000000000-1.log", "app-20261128061500-12.log"] {
            assert!(is_named_by(&c, name), "{name}");
        }
        for name in [
            "app-1-1.log.bak",
            "app-1.log",
            "app-x-1.log",
            "app--1.log",
            "app-1-.log",
            "other-1-1.log",
            "app-1-1log",
            "app-1-1",
        ] {
            assert!(!is_named_by(&c, name), "{name}");
        }
        c.prefix.clear();
        c.extension.clear();
        assert!(is_named_by(&c, "1700000000000-3"));
        assert!(!is_named_by(&c, "1700000000000-3.log"));
        assert!(!is_named_by(&c, ".1700000000000-3"));
    }

    /// A mark that is not `START END` is reported and removed, and the file left as it is.
    #[test]
    fn a_garbage_mark_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1-1");
        std::fs::write(&path, b"a\nb").unwrap();
        rustix::fs::setxattr(
            &path,
            "user.weir.batch",
            b"3 x",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        drop(sink(dir.path(), FileNaming::Default, "", ""));
        assert_eq!(std::fs::read(&path).unwrap(), b"a\nb");
        assert!(!has_mark(&path));
    }

    /// A file that refuses the mark (user attributes are not allowed on a device node) does not
    /// stop the sink: the batch is written, and marking is off for the rest of the run.
    #[test]
    fn a_file_that_refuses_the_mark_is_written_all_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sink(dir.path(), FileNaming::Default, "", "");
        s.config.fsync = false;
        s.current = Some(Current {
            path: "/dev/null".into(),
            file: OpenOptions::new().write(true).open("/dev/null").unwrap(),
            opened: Instant::now(),
            committed: 1,
        });
        s.deliver(&[(0, Event::new(&b"one"[..]))]).unwrap();
        assert!(!s.marking);
        assert_eq!(s.current.as_ref().unwrap().committed, 5);
    }
}
