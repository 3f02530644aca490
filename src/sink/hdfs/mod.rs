//! The hdfs sink (Flume's HDFSEventSink): events into files under a directory chosen per event
//! (`hdfs.path` with escapes such as `%Y-%m-%d` or `%{app}`), each file named
//! `filePrefix.<counter><fileSuffix>`, written under its in-use name (`.tmp` by default) and
//! renamed once it is rolled (`rollInterval`, `rollSize`, `rollCount`, `idleTimeout`), as a
//! SequenceFile, the serializer's bytes (`DataStream`), or those compressed
//! (`CompressedStream`).
//!
//! A batch's bytes go to each file it touches with one create or append, and the take is
//! committed only after every one of them returned: a crash or a failed call loses nothing,
//! and at worst writes a batch again. A file whose write failed (so that it may end in part of
//! a record) is not written to again: it is closed and the retry goes to a new file, so a torn
//! record can only be at the end of a file; on the local filesystem it is cut off before the
//! file is closed (and a file whose create failed part-way is removed). A file whose write succeeded in a batch that failed
//! elsewhere stays open, and the retry writes those events to it again (as in Flume).

mod sequence_file;
mod store;
pub mod webhdfs;
#[cfg(test)]
pub(crate) mod webhdfs_mock;

use std::collections::HashMap;
use std::io::Write;
use std::time::Instant;

use anyhow::Context;

use super::Sink;
use super::serializer::Serializer;
use crate::bucket_path::{BucketPath, TimeSettings, Zone};
use crate::config::{HdfsCodec, HdfsFormat, HdfsSinkConfig, HdfsStore};
use crate::event::Event;
use sequence_file::{SequenceFileWriter, WriteFormat};
use store::{LocalStore, Renamed, Store, WebHdfsStore};

/// How often to try a new name when a file of the chosen one exists already.
const NAME_TRIES: usize = 10;

/// How a file's bytes are made.
enum Encoder {
    Sequence(SequenceFileWriter),
    Stream(Serializer),
    Compressed(Serializer, HdfsCodec),
}

/// A file being written.
struct OpenFile {
    /// The expanded directory and file prefix it belongs to.
    dir: String,
    prefix: String,
    in_use: String,
    target: String,
    /// The number in its name.
    number: u64,
    /// Whether the store holds it (its first bytes went out with a create).
    created: bool,
    opened: Instant,
    last_written: Instant,
    events: u64,
    /// Body bytes written, which `rollSize` counts (as Flume does).
    body_bytes: u64,
    encoder: Encoder,
    /// The bytes of the batch being delivered, not yet sent.
    pending: Vec<u8>,
    /// Events in `pending`.
    pending_events: usize,
    /// A call sending its bytes failed (or is under way): it may end in part of a batch.
    torn: bool,
    /// Bytes its successful calls wrote: where a torn batch begins.
    written: u64,
}

/// A closed file whose rename failed, tried again every `retryInterval`.
struct Closing {
    from: String,
    to: String,
    /// The expanded directory and file prefix `to` was named from, to name it anew when `to`
    /// is taken.
    dir: String,
    prefix: String,
    tries: u32,
    next: Instant,
}

pub struct HdfsSink {
    name: String,
    config: HdfsSinkConfig,
    store: Box<dyn Store>,
    path: BucketPath,
    prefix: BucketPath,
    time: TimeSettings,
    /// Open files by directory and prefix (Flume's bucket).
    files: HashMap<String, OpenFile>,
    /// The directory, prefix and bucket of templates without escapes.
    constant: Option<(String, String, String)>,
    /// Numbers up to this one were found taken (by an earlier run that numbered its files
    /// past this run's clock): a new file takes a higher one.
    floor: u64,
    closing: Vec<Closing>,
}

fn now_millis() -> i64 {
    crate::event::now_millis() as i64
}

/// The escapes and time settings of `config`, checked: what `weir agent --check` reports.
fn templates(config: &HdfsSinkConfig) -> anyhow::Result<(BucketPath, BucketPath, TimeSettings)> {
    let path = BucketPath::parse(&config.path)
        .map_err(|e| anyhow::anyhow!("hdfs.path '{}': {e}", config.path))?;
    let prefix = BucketPath::parse(&config.file_prefix)
        .map_err(|e| anyhow::anyhow!("hdfs.filePrefix '{}': {e}", config.file_prefix))?;
    let zone = match &config.time_zone {
        None => Zone::Local,
        Some(id) => Zone::parse(id).map_err(|e| anyhow::anyhow!("hdfs.timeZone '{id}': {e}"))?,
    };
    let time = TimeSettings {
        round: config.round,
        use_local_time_stamp: config.use_local_time_stamp,
        zone,
    };
    Ok((path, prefix, time))
}

/// Checks what the config alone cannot: that the templates and time zone still parse here
/// (the host escapes resolve this machine's names).
pub fn check(name: &str, config: &HdfsSinkConfig) -> anyhow::Result<Vec<String>> {
    templates(config).with_context(|| format!("sink {name}"))?;
    Ok(Vec::new())
}

impl HdfsSink {
    pub fn new(name: &str, config: HdfsSinkConfig) -> anyhow::Result<HdfsSink> {
        let (path, prefix, time) = templates(&config).with_context(|| format!("sink {name}"))?;
        let store: Box<dyn Store> = match &config.store {
            HdfsStore::Local => Box::new(LocalStore),
            HdfsStore::WebHdfs {
                endpoints,
                user,
                proxy_user,
            } => {
                let namenodes = endpoints
                    .iter()
                    .map(|e| {
                        webhdfs::WebHdfs::new(
                            e,
                            user.clone(),
                            proxy_user.clone(),
                            config.call_timeout,
                        )
                    })
                    .collect::<anyhow::Result<Vec<_>>>()
                    .with_context(|| format!("sink {name}"))?;
                match user {
                    Some(user) => tracing::info!(sink = %name, namenodes = ?endpoints, %user,
                        proxy_user = proxy_user.as_deref().unwrap_or(""), "writing over WebHDFS"),
                    None => tracing::warn!(sink = %name, namenodes = ?endpoints,
                        "writing over WebHDFS without a user name (no HADOOP_USER_NAME, no \
                         password entry for this process's uid, no USER): the NameNode takes \
                         the requests as its anonymous user"),
                }
                Box::new(WebHdfsStore::new(namenodes))
            }
        };
        Ok(Self::with_store(name, config, store, path, prefix, time))
    }

    fn with_store(
        name: &str,
        config: HdfsSinkConfig,
        store: Box<dyn Store>,
        path: BucketPath,
        prefix: BucketPath,
        time: TimeSettings,
    ) -> HdfsSink {
        // Templates without escapes name one bucket: worked out once, not per event.
        let constant = (path.is_constant() && prefix.is_constant())
            .then(|| {
                let none = crate::event::Headers::new();
                let dir = path.expand(&none, 0, &time).ok()?;
                let prefix = prefix.expand(&none, 0, &time).ok()?;
                let key = format!("{dir}/{prefix}");
                Some((dir, prefix, key))
            })
            .flatten();
        HdfsSink {
            name: name.to_owned(),
            constant,
            config,
            store,
            path,
            prefix,
            time,
            files: HashMap::new(),
            floor: 0,
            closing: Vec::new(),
        }
    }

    /// A new file for `dir`/`prefix`; nothing is sent until its first batch. Numbered as
    /// Flume's bucket writer numbers them: the file that follows a count or size roll takes
    /// the number after `previous` (its bucket's last file), a bucket opened afresh the time in
    /// milliseconds.
    fn open(&mut self, dir: String, prefix: String, previous: Option<u64>) -> OpenFile {
        let number = match previous {
            Some(n) => n + 1,
            None => now_millis().max(0) as u64,
        }
        .max(self.floor + 1);
        let (in_use, target) = self.names(&dir, &prefix, number);
        let encoder = match &self.config.format {
            HdfsFormat::SequenceFile { text } => {
                let format = if *text {
                    WriteFormat::Text
                } else {
                    WriteFormat::Writable
                };
                Encoder::Sequence(SequenceFileWriter::new(
                    format,
                    fastrand::u128(..).to_be_bytes(),
                ))
            }
            HdfsFormat::DataStream(s) => Encoder::Stream(Serializer::new(s)),
            HdfsFormat::CompressedStream(s, codec) => {
                Encoder::Compressed(Serializer::new(s), *codec)
            }
        };
        let now = Instant::now();
        OpenFile {
            dir,
            prefix,
            in_use,
            target,
            number,
            created: false,
            opened: now,
            last_written: now,
            events: 0,
            body_bytes: 0,
            encoder,
            pending: Vec::new(),
            pending_events: 0,
            torn: false,
            written: 0,
        }
    }

    /// The in-use and final paths of file number `number`.
    fn names(&self, dir: &str, prefix: &str, number: u64) -> (String, String) {
        let c = &self.config;
        let mut name = format!("{prefix}.{number}");
        if !c.file_suffix.is_empty() {
            name.push_str(&c.file_suffix);
        } else if let HdfsFormat::CompressedStream(_, codec) = &c.format {
            name.push_str(codec.extension());
        }
        (
            normalize(&format!(
                "{dir}/{}{name}{}",
                c.in_use_prefix, c.in_use_suffix
            )),
            normalize(&format!("{dir}/{name}")),
        )
    }

    /// Adds `event` to `key`'s file, opening it (or the next one, once it is due to roll).
    /// `now` is the batch's time: what `idleTimeout` counts from.
    fn write(
        &mut self,
        key: &str,
        dir: &str,
        prefix: &str,
        (offset, event): (u64, &Event),
        now: Instant,
    ) -> anyhow::Result<()> {
        // The common case, one lookup: the bucket's file is open and not due to roll.
        if let Some(f) = self.files.get_mut(key)
            && !due_to_roll(&self.config, f)
        {
            return encode(f, offset, event, now);
        }
        let previous = self.files.get(key).map(|f| f.number);
        if previous.is_some() {
            self.send(key)?;
            self.close_file(key);
        }
        let mut f = self.open(dir.to_owned(), prefix.to_owned(), previous);
        let encoded = encode(&mut f, offset, event, now);
        self.files.insert(key.to_owned(), f);
        encoded
    }

    /// Sends `key`'s pending bytes: a create with the file's first bytes, an append after.
    fn send(&mut self, key: &str) -> anyhow::Result<()> {
        let Some(f) = self.files.get_mut(key) else {
            return Ok(());
        };
        if f.pending_events == 0 && f.pending.is_empty() {
            return Ok(());
        }
        match &mut f.encoder {
            Encoder::Sequence(w) => w.end_batch(&mut f.pending),
            Encoder::Stream(s) => s.end_batch(&mut f.pending)?,
            Encoder::Compressed(s, codec) => {
                s.end_batch(&mut f.pending)?;
                f.pending = compress(*codec, &f.pending)?;
            }
        }
        // Taken out while the store writes it, and given back emptied so that its allocation
        // serves the next batch.
        let mut data = std::mem::take(&mut f.pending);
        f.pending_events = 0;
        // Until the call succeeds, the file may hold part of these bytes.
        f.torn = true;
        if f.created {
            self.store.append(&f.in_use, &data)?;
            f.torn = false;
            f.written += data.len() as u64;
            data.clear();
            f.pending = data;
            return Ok(());
        }
        for _ in 0..NAME_TRIES {
            let Some(f) = self.files.get_mut(key) else {
                unreachable!("looked up above")
            };
            if self.store.create(&f.in_use, &data)? {
                f.created = true;
                f.torn = false;
                f.written = data.len() as u64;
                tracing::info!(sink = %self.name, file = %f.in_use, "created");
                data.clear();
                f.pending = data;
                return Ok(());
            }
            // Taken (by a run that numbered its files past this one's clock): the next number.
            let (dir, prefix) = (f.dir.clone(), f.prefix.clone());
            self.floor = self.floor.max(f.number);
            let number = self.floor + 1;
            let (in_use, target) = self.names(&dir, &prefix, number);
            let Some(f) = self.files.get_mut(key) else {
                unreachable!("looked up above")
            };
            (f.in_use, f.target, f.number) = (in_use, target, number);
        }
        anyhow::bail!("{NAME_TRIES} file names in a row were taken under {key}")
    }

    /// Closes `key`'s file: its bytes are all sent, so only the rename to its final name is
    /// left (tried again later if it fails).
    fn close_file(&mut self, key: &str) {
        let Some(f) = self.files.remove(key) else {
            return;
        };
        if !f.created || f.in_use == f.target {
            return;
        }
        self.rename(Closing {
            from: f.in_use,
            to: f.target,
            dir: f.dir,
            prefix: f.prefix,
            tries: 0,
            next: Instant::now(),
        });
    }

    fn rename(&mut self, mut c: Closing) {
        match self.try_rename(&mut c) {
            Ok(()) => tracing::info!(sink = %self.name, file = %c.to, "closed"),
            Err(e) => {
                c.tries += 1;
                let tries = self.config.close_tries;
                if tries > 0 && c.tries >= tries {
                    tracing::error!(sink = %self.name, file = %c.from, error = %format!("{e:#}"), tries = c.tries,
                        "giving up renaming a closed file (hdfs.closeTries); its data is complete under this name");
                    return;
                }
                tracing::warn!(sink = %self.name, file = %c.from, error = %format!("{e:#}"),
                    retry_in_s = self.config.retry_interval.as_secs(), "cannot rename a closed file; will try again");
                c.next = Instant::now() + self.config.retry_interval;
                self.closing.push(c);
            }
        }
    }

    /// Renames `c.from` to `c.to`, or, when that name is taken, to the next free number.
    ///
    /// A name is taken when an earlier run numbered its files past this run's clock: the
    /// numbers start at the clock's milliseconds (as Flume's do) and a run rolling more than
    /// a file a millisecond (draining a backlog with a small `rollCount`) runs ahead of it.
    /// Flume's rename then fails without a word and the file stays in use for ever; here the
    /// floor moves past every number in the directory, so this and the later files of the
    /// run take free names.
    fn try_rename(&mut self, c: &mut Closing) -> anyhow::Result<()> {
        if self.store.rename(&c.from, &c.to)? == Renamed::Done {
            return Ok(());
        }
        let dir = match c.to.rfind('/') {
            Some(0) => "/".to_owned(),
            Some(i) => c.to[..i].to_owned(),
            None => ".".to_owned(),
        };
        let base = c.prefix.rsplit('/').next().unwrap_or(&c.prefix);
        let in_use_prefix = self.config.in_use_prefix.as_str();
        let highest = self
            .store
            .list(&dir)?
            .iter()
            .filter_map(|name| {
                let name = name.strip_prefix(in_use_prefix).unwrap_or(name);
                let rest = name.strip_prefix(base)?.strip_prefix('.')?;
                let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                rest[..digits].parse::<u64>().ok()
            })
            .max()
            .unwrap_or(0);
        self.floor = self.floor.max(highest);
        for _ in 0..NAME_TRIES {
            self.floor += 1;
            let (_, to) = self.names(&c.dir, &c.prefix, self.floor);
            tracing::info!(sink = %self.name, file = %c.from, taken = %c.to, to = %to,
                "the final name is taken (an earlier run numbered its files past this run's \
                 clock): renaming to the next free number");
            c.to = to;
            if self.store.rename(&c.from, &c.to)? == Renamed::Done {
                return Ok(());
            }
        }
        anyhow::bail!(
            "cannot rename {} to a free name: {NAME_TRIES} names in a row past the highest \
             number in {dir} were taken",
            c.from
        )
    }

    /// Rolls the files whose time is up (`rollInterval`, `idleTimeout`) and retries renames
    /// that are due.
    fn roll_on_time(&mut self) {
        let c = &self.config;
        let due: Vec<String> = self
            .files
            .iter()
            .filter(|(_, f)| {
                (!c.roll_interval.is_zero() && f.opened.elapsed() >= c.roll_interval)
                    || (!c.idle_timeout.is_zero() && f.last_written.elapsed() >= c.idle_timeout)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            self.close_file(&key);
        }
        let now = Instant::now();
        let (due, later): (Vec<Closing>, Vec<Closing>) = std::mem::take(&mut self.closing)
            .into_iter()
            .partition(|c| c.next <= now);
        self.closing = later;
        for c in due {
            self.rename(c);
        }
    }

    /// After a failed batch: every file whose write failed, or that was still to be sent, is
    /// given up (closed, if the store has it), so no file is written to after a failed write.
    fn abandon_pending(&mut self) {
        let torn: Vec<String> = self
            .files
            .iter()
            .filter(|(_, f)| f.torn || f.pending_events > 0 || !f.pending.is_empty())
            .map(|(k, _)| k.clone())
            .collect();
        for key in torn {
            self.cut_torn(&key);
            self.close_file(&key);
        }
    }

    /// Cuts the part of a failed batch off `key`'s file where the store can (locally), so that
    /// the file it leaves ends with a whole batch; a create that failed part-way leaves no file.
    fn cut_torn(&mut self, key: &str) {
        let Some(f) = self.files.get_mut(key) else {
            return;
        };
        if !f.torn {
            return;
        }
        match self.store.cut(&f.in_use, f.written) {
            Ok(true) => {
                f.torn = false;
                if !f.created {
                    tracing::info!(sink = %self.name, file = %f.in_use,
                        "removed the file whose creation failed part-way");
                }
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(sink = %self.name, file = %f.in_use, error = %format!("{e:#}"),
                "cannot cut a failed batch off the file; it ends in part of that batch")
            }
        }
    }

    /// Closes the least recently written files past `maxOpenFiles`.
    fn limit_open_files(&mut self) {
        while self.files.len() > self.config.max_open_files {
            let Some(oldest) = self
                .files
                .iter()
                .min_by_key(|(_, f)| f.last_written)
                .map(|(k, _)| k.clone())
            else {
                return;
            };
            self.close_file(&oldest);
        }
    }

    fn deliver_batch(&mut self, events: &[(u64, Event)]) -> anyhow::Result<()> {
        let now = now_millis();
        let batch_time = Instant::now();
        let mut touched: Vec<String> = Vec::new();
        for (offset, event) in events {
            if let Some((dir, prefix, key)) = self.constant.take() {
                let written = self.write(&key, &dir, &prefix, (*offset, event), batch_time);
                self.constant = Some((dir, prefix, key));
                written?;
                if touched.is_empty() {
                    touched.push(
                        self.constant
                            .as_ref()
                            .map(|c| c.2.clone())
                            .unwrap_or_default(),
                    );
                }
                continue;
            }
            let expand = |t: &BucketPath, what: &str| {
                t.expand(&event.headers, now, &self.time).map_err(|e| {
                    anyhow::anyhow!("the event at channel offset {offset}: {what}: {e}")
                })
            };
            let dir = expand(&self.path, "hdfs.path")?;
            let prefix = expand(&self.prefix, "hdfs.filePrefix")?;
            let key = format!("{dir}/{prefix}");
            self.write(&key, &dir, &prefix, (*offset, event), batch_time)?;
            if !touched.contains(&key) {
                touched.push(key);
            }
        }
        for key in &touched {
            self.send(key)?;
        }
        Ok(())
    }
}

/// A file's path as Hadoop's `Path` makes it (URI normalisation): empty and `.` segments
/// dropped, and `..` taking the segment before it away, never above the root. A header
/// expanded into the path (`%{app}` = `..`) then names a path WebHDFS takes (it refuses `..`,
/// which would stop the sink on that event for ever) and the local filesystem writes alike.
fn normalize(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            ".." if absolute => {}
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    match (absolute, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Whether `f` is full: Flume checks before it appends an event, so a file holds exactly
/// `rollCount` events, or the events up to the one that made it reach `rollSize`.
fn due_to_roll(c: &HdfsSinkConfig, f: &OpenFile) -> bool {
    (c.roll_count > 0 && f.events >= c.roll_count)
        || (c.roll_size > 0 && f.body_bytes >= c.roll_size)
}

/// Adds `event`'s bytes to `f`'s pending ones (after the file's header, for its first).
fn encode(f: &mut OpenFile, offset: u64, event: &Event, now: Instant) -> anyhow::Result<()> {
    let fresh = !f.created && f.pending.is_empty();
    match &mut f.encoder {
        Encoder::Sequence(w) => {
            if !sequence_file::fits(event.body.len()) {
                anyhow::bail!(
                    "the event at channel offset {offset} has a body of {} bytes, more than a \
                     SequenceFile record holds",
                    event.body.len()
                );
            }
            if fresh {
                w.header(&mut f.pending);
            }
            let key_millis = event
                .headers
                .get("timestamp")
                .and_then(|t| t.trim().parse::<i64>().ok())
                .unwrap_or_else(now_millis);
            w.append(&mut f.pending, key_millis, &event.body);
        }
        Encoder::Stream(s) | Encoder::Compressed(s, _) => {
            if fresh {
                s.begin_file(&mut f.pending);
            }
            s.write(event, &mut f.pending)?;
        }
    }
    f.events += 1;
    f.body_bytes += event.body.len() as u64;
    f.pending_events += 1;
    f.last_written = now;
    Ok(())
}

/// One compressed member holding `data`: a gzip member (GzipCodec), a zlib stream
/// (DefaultCodec), snappy or LZ4 blocks (SnappyCodec, Lz4Codec: [`hadoop_blocks`]), a bzip2
/// stream (BZip2Codec) or a zstd frame (ZStandardCodec). Hadoop's decompressing streams,
/// `zcat`, `bzcat` and `zstd -d` read such members one after another as one stream, which is
/// what Flume's CompressedStream writes too (it finishes the codec's stream at every flush).
fn compress(codec: HdfsCodec, data: &[u8]) -> anyhow::Result<Vec<u8>> {
    use flate2::Compression;
    let out = Vec::with_capacity(data.len() / 4 + 64);
    Ok(match codec {
        HdfsCodec::Gzip => {
            let mut z = flate2::write::GzEncoder::new(out, Compression::default());
            z.write_all(data)?;
            z.finish()?
        }
        HdfsCodec::Deflate => {
            let mut z = flate2::write::ZlibEncoder::new(out, Compression::default());
            z.write_all(data)?;
            z.finish()?
        }
        HdfsCodec::Snappy => {
            let mut encoder = snap::raw::Encoder::new();
            hadoop_blocks(data, out, |block, chunk| {
                chunk.resize(snap::raw::max_compress_len(block.len()), 0);
                Ok(encoder.compress(block, chunk)?)
            })?
        }
        HdfsCodec::Lz4 => hadoop_blocks(data, out, |block, chunk| {
            chunk.resize(lz4_flex::block::get_maximum_output_size(block.len()), 0);
            Ok(lz4_flex::block::compress_into(block, chunk)?)
        })?,
        HdfsCodec::Bzip2 => {
            let mut z = bzip2::write::BzEncoder::new(out, bzip2::Compression::default());
            z.write_all(data)?;
            z.finish()?
        }
        HdfsCodec::Zstd => zstd::stream::encode_all(data, zstd::DEFAULT_COMPRESSION_LEVEL)?,
    })
}

/// How much input one snappy or LZ4 block holds: Hadoop's reader decompresses a chunk into a
/// buffer of `io.compression.codec.snappy.buffersize` (or `….lz4.buffersize`, both 256 KiB by
/// default), and its own writer puts at most 256 KiB less the codec's worst-case overhead into
/// one.
const HADOOP_BLOCK: usize = 128 * 1024;

/// `data` as Hadoop's SnappyCodec and Lz4Codec frame it (`BlockCompressorStream`): per block,
/// the uncompressed length and then one chunk, its compressed length and the raw compressed
/// bytes, both lengths 4-byte big-endian. `compress` turns a block into a chunk (the `snap` and
/// `lz4_flex` crates); Hadoop's framing has no crate of its own, and is two length words.
fn hadoop_blocks(
    data: &[u8],
    mut out: Vec<u8>,
    mut compress: impl FnMut(&[u8], &mut Vec<u8>) -> anyhow::Result<usize>,
) -> anyhow::Result<Vec<u8>> {
    let mut chunk = Vec::new();
    for block in data.chunks(HADOOP_BLOCK) {
        let n = compress(block, &mut chunk)?;
        out.extend_from_slice(&(block.len() as u32).to_be_bytes());
        out.extend_from_slice(&(n as u32).to_be_bytes());
        out.extend_from_slice(&chunk[..n]);
    }
    Ok(out)
}

impl Sink for HdfsSink {
    fn deliver(&mut self, events: &[(u64, Event)]) -> anyhow::Result<()> {
        self.roll_on_time();
        let result = self.deliver_batch(events);
        if result.is_err() {
            self.abandon_pending();
        }
        self.limit_open_files();
        result.with_context(|| format!("sink {}", self.name))
    }

    fn idle(&mut self) -> anyhow::Result<()> {
        self.roll_on_time();
        Ok(())
    }

    fn close(&mut self) -> anyhow::Result<()> {
        // Every file is renamed, each call with its own hdfs.callTimeout, as Flume closes
        // them (and a failed one once more at once); but after STOP_FAILURES files in a row
        // could not be renamed, the store is taken to be away and
        // the rest keep their in-use names, so an unreachable NameNode does not hold the stop
        // for a timeout per open file. A rename that failed before the stop is tried once more.
        const STOP_FAILURES: usize = 3;
        let earlier = std::mem::take(&mut self.closing);
        let keys: Vec<String> = self.files.keys().cloned().collect();
        let mut failures = 0;
        let mut left = 0;
        for key in keys {
            if failures >= STOP_FAILURES {
                left += 1;
                continue;
            }
            let pending = self.closing.len();
            self.close_file(&key);
            // A failed rename is tried once more at once: this is its last chance.
            let retried = match self.closing.pop() {
                Some(mut c) if self.closing.len() == pending => {
                    let again = self.try_rename(&mut c);
                    if let Err(e) = &again {
                        tracing::error!(sink = %self.name, file = %c.from, error = %format!("{e:#}"),
                            "cannot rename a closed file at stop");
                        self.closing.push(c);
                    }
                    again.is_ok()
                }
                Some(c) => {
                    self.closing.push(c);
                    true
                }
                None => true,
            };
            if retried {
                failures = 0;
            } else {
                failures += 1;
            }
        }
        left += self.closing.len();
        for mut c in earlier {
            if failures >= STOP_FAILURES {
                left += 1;
                continue;
            }
            match self.try_rename(&mut c) {
                Ok(()) => failures = 0,
                Err(e) => {
                    failures += 1;
                    left += 1;
                    tracing::error!(sink = %self.name, file = %c.from, error = %format!("{e:#}"),
                        "cannot rename a closed file at stop");
                }
            }
        }
        if left > 0 {
            tracing::error!(sink = %self.name, files = left,
                "stopping with files under their in-use names (renames failed, or were not tried \
                 after {STOP_FAILURES} failures in a row); their data is complete");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
