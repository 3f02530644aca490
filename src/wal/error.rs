//! The log's error type. Every variant names what went wrong and where (file, byte position,
//! limit), because these messages end up in an operator's terminal.

use std::io;
use std::path::PathBuf;

use super::frame::EncodeError;
use super::log_id::LogId;

/// What [`WalError::CheckpointOfAnotherLog`] names (boxed: the error type stays small).
#[derive(Debug)]
pub struct AnotherLogsCheckpoint {
    pub checkpoint: PathBuf,
    pub consumer: String,
    pub offset: u64,
    /// The log the checkpoint says it was written for (`None`: it names none, written by a
    /// weir before log ids, while this log has written its id into every checkpoint).
    pub written_for: Option<LogId>,
    pub log: PathBuf,
    /// The id of the log being opened.
    pub log_id: LogId,
}

impl AnotherLogsCheckpoint {
    fn written_for_text(&self) -> String {
        match self.written_for {
            Some(id) => format!("written for log {id}"),
            None => "that names no log (written by a weir before log ids)".to_owned(),
        }
    }
}

/// What [`WalError::UnverifiedCheckpointPastEnd`] names (boxed: the error type stays small).
#[derive(Debug)]
pub struct UnverifiedCheckpoint {
    pub checkpoint: PathBuf,
    pub consumer: String,
    pub offset: u64,
    pub log: PathBuf,
    /// One past the log's last event.
    pub log_end: u64,
    /// Why the checkpoint's log cannot be told.
    pub why_unverified: &'static str,
}

/// What [`WalError::CheckpointsOfTwoLogs`] names (boxed: the error type stays small).
#[derive(Debug)]
pub struct CheckpointsOfTwoLogs {
    pub first: PathBuf,
    pub first_log: LogId,
    pub second: PathBuf,
    pub second_log: LogId,
    pub log: PathBuf,
}

/// A variant that wraps another error prints it in its own message and does not also return
/// it from `source()`: printing the chain (`{:#}`) would otherwise say it twice.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("{op} {}: {error}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    /// An operation found no room: the filesystem is full, out of inodes, or over quota. Like
    /// [`WalError::DiskFull`] it passes once space is freed.
    #[error("{op} {}: {error} (the disk is full, out of inodes, or over quota)", path.display())]
    NoSpace {
        op: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    #[error("{}: byte {pos}: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        pos: u64,
        reason: String,
    },
    /// A capacity limit would be exceeded: the caller should apply back-pressure and retry.
    #[error("{what} held would be {would_be}, over the limit of {limit}")]
    Full {
        what: &'static str,
        would_be: u64,
        limit: u64,
    },
    /// Creating the next segment would leave less free disk space than configured.
    #[error(
        "not enough disk space in {}: {available} bytes free, need {needed} (a {segment}-byte segment plus the {min_free}-byte minimum free space)",
        path.display()
    )]
    DiskFull {
        path: PathBuf,
        available: u64,
        needed: u64,
        segment: u64,
        min_free: u64,
    },
    /// A batch larger than the byte capacity: no amount of consuming would make room for it.
    #[error("a batch of {size} bytes is larger than the log's whole byte capacity ({max} bytes)")]
    TooLarge { size: u64, max: u64 },
    #[error("cannot encode event: {0}")]
    Encode(EncodeError),
    /// A checkpoint beside a log that has never been opened: it belongs to another log (two channels' `checkpointDir` pointed at one directory, one after the
    /// other), or this log's files were deleted.
    #[error(
        "{}: a checkpoint of consumer {consumer} (at offset {offset}), but the log in {} is new \
         (no segment, no wal.meta): the checkpoint belongs to another log (a checkpoint \
         directory another channel uses or used), or this log's files were deleted; opening \
         it would write this log's positions over that log's, and its undelivered events would \
         pass for delivered. Point the channel at its own checkpoint directory, or, if this \
         log's events are really gone, delete {} to start afresh",
        checkpoint.display(),
        log.display(),
        checkpoint.display()
    )]
    ForeignCheckpoint {
        checkpoint: PathBuf,
        consumer: String,
        offset: u64,
        log: PathBuf,
    },
    #[error(
        "{}: a checkpoint of consumer {} (at offset {}) {}, but the log in {} is log {}{}: its \
         checkpoint directory is (or was) another channel's; opening it would write this log's \
         positions over that log's, and its undelivered events would pass for delivered. Point \
         the channel at its own checkpoint directory, or, if that log is gone for good, delete {}",
        .0.checkpoint.display(),
        .0.consumer,
        .0.offset,
        .0.written_for_text(),
        .0.log.display(),
        .0.log_id,
        if .0.written_for.is_none() { ", which wrote its id into every checkpoint from its start" } else { "" },
        .0.checkpoint.display()
    )]
    CheckpointOfAnotherLog(Box<AnotherLogsCheckpoint>),
    #[error(
        "{}: the checkpoint of consumer {} is at offset {}, past the end of the log in {} (offset \
         {}), and nothing ties it to this log ({}): taking it would count every event of the log \
         as delivered. If it is another channel's, point this channel at its own checkpoint \
         directory; if it is this log's and the log lost its newest events, delete {} (the \
         consumer then starts at the oldest event the log holds: duplicates, no loss)",
        .0.checkpoint.display(),
        .0.consumer,
        .0.offset,
        .0.log.display(),
        .0.log_end,
        .0.why_unverified,
        .0.checkpoint.display()
    )]
    UnverifiedCheckpointPastEnd(Box<UnverifiedCheckpoint>),
    #[error(
        "the log in {} has no id in its wal.meta, and its checkpoints name two logs: {} was \
         written for log {}, {} for log {}; one of them is another channel's (a shared \
         checkpoint directory). Move the other log's checkpoint away",
        .0.log.display(),
        .0.first.display(),
        .0.first_log,
        .0.second.display(),
        .0.second_log
    )]
    CheckpointsOfTwoLogs(Box<CheckpointsOfTwoLogs>),
    /// `what`: "log", or "checkpoint directory" when the consumers' checkpoints live apart.
    #[error("{what} {} is in use by another process (pid {pid}); stop it first", path.display())]
    Locked {
        what: &'static str,
        path: PathBuf,
        pid: String,
    },
    #[error("{}: format version {found}, but this weir reads version {supported}", path.display())]
    UnsupportedVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error(
        "log unusable after a failed write or sync ({0}); restart to recover from what is on disk"
    )]
    Poisoned(String),
    #[error("invalid consumer name {0:?}: use 1 to 64 characters from A-Z a-z 0-9 . _ -")]
    BadConsumerName(String),
    #[error("invalid log option: {0}")]
    BadOption(String),
    /// Offsets are never reused; these would pass the largest one.
    #[error(
        "offsets exhausted: the next offset is {next}, and {count} more events would pass 2^64 - 1"
    )]
    OffsetsExhausted { next: u64, count: u64 },
}

impl WalError {
    /// True for the errors that mean "no room now, try again later" (back-pressure), as opposed
    /// to failures.
    pub fn is_full(&self) -> bool {
        matches!(
            self,
            WalError::Full { .. } | WalError::DiskFull { .. } | WalError::NoSpace { .. }
        )
    }

    /// True for the "full" errors that a lack of disk space caused.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, WalError::DiskFull { .. } | WalError::NoSpace { .. })
    }

    /// The error of I/O operation `op` on `path`: [`WalError::NoSpace`] for ENOSPC and EDQUOT
    /// (back-pressure: wherever a write or the creation of a file hits them), else
    /// [`WalError::Io`].
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> WalError {
        let path = path.into();
        move |error| {
            let no_space = [rustix::io::Errno::NOSPC, rustix::io::Errno::DQUOT]
                .map(|e| Some(e.raw_os_error()))
                .contains(&error.raw_os_error());
            if no_space {
                WalError::NoSpace { op, path, error }
            } else {
                WalError::Io { op, path, error }
            }
        }
    }
}

impl From<EncodeError> for WalError {
    fn from(e: EncodeError) -> WalError {
        WalError::Encode(e)
    }
}

pub type Result<T, E = WalError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::io::Errno;

    fn io_error(errno: Errno) -> WalError {
        WalError::io("create", "/d/x.seg.tmp")(io::Error::from_raw_os_error(errno.raw_os_error()))
    }

    #[test]
    fn no_space_and_quota_are_back_pressure_other_io_errors_are_not() {
        for errno in [Errno::NOSPC, Errno::DQUOT] {
            let e = io_error(errno);
            assert!(matches!(e, WalError::NoSpace { .. }), "{e:?}");
            assert!(e.is_full() && e.is_disk_full(), "{e}");
            assert!(e.to_string().starts_with("create /d/x.seg.tmp: "), "{e}");
        }
        for errno in [Errno::IO, Errno::ROFS, Errno::FBIG] {
            let e = io_error(errno);
            assert!(matches!(e, WalError::Io { .. }), "{e:?}");
            assert!(!e.is_full(), "{e}");
        }
    }
}
