//! The log's error type. Every variant names what went wrong and where (file, byte position,
//! limit), because these messages end up in an operator's terminal.

use std::io;
use std::path::PathBuf;

use super::frame::EncodeError;

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
    #[error("log {} is in use by another process (pid {pid}); stop it first", path.display())]
    Locked { path: PathBuf, pid: String },
    #[error("{}: format version {found}, but this weir reads version {supported}", path.display())]
    UnsupportedVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("log unusable after a failed sync ({0}); restart to recover from what is on disk")]
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
        matches!(self, WalError::Full { .. } | WalError::DiskFull { .. })
    }

    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> WalError {
        let path = path.into();
        move |error| WalError::Io { op, path, error }
    }
}

impl From<EncodeError> for WalError {
    fn from(e: EncodeError) -> WalError {
        WalError::Encode(e)
    }
}

pub type Result<T, E = WalError> = std::result::Result<T, E>;
