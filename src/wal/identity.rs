//! Which log the files in a directory belong to: the rules an open applies with the log id
//! (`wal-format.md` §7 step 2; the id itself is [`LogId`], kept in `wal.meta`, every segment
//! header and every checkpoint), so that a log never takes another log's checkpoint. Taken over,
//! such a checkpoint would be written with this log's positions, and the other log would then
//! take its undelivered events for delivered.

use std::path::{Path, PathBuf};

use super::checkpoint;
use super::error::{
    AnotherLogsCheckpoint, CheckpointsOfTwoLogs, Result, UnverifiedCheckpoint, WalError,
};
use super::log_id::LogId;

/// The ids segment headers name, checked against `wal.meta`'s and against each other as the
/// segments are met: open refuses a clash, `verify` reports it.
pub(crate) struct SegmentIds {
    meta: Option<LogId>,
    first: Option<(LogId, PathBuf)>,
}

impl SegmentIds {
    pub(crate) fn new(meta: Option<LogId>) -> SegmentIds {
        SegmentIds { meta, first: None }
    }

    /// Notes the id of segment `path` (`None`: made before ids); returns why it clashes, if it
    /// names another log than `wal.meta` or an earlier segment.
    pub(crate) fn clash(&mut self, path: &Path, id: Option<LogId>) -> Option<String> {
        let id = id?;
        let (other_id, other) = match &self.first {
            None => {
                self.first = Some((id, path.to_owned()));
                (self.meta.filter(|m| *m != id)?, "wal.meta".to_owned())
            }
            Some((first, p)) if *first != id => (*first, p.display().to_string()),
            Some(_) => return None,
        };
        Some(format!(
            "the segment was made for log {id}, but {other} names log {other_id}: files of two \
             logs in one directory"
        ))
    }

    /// The id the segments name, if any does.
    pub(crate) fn id(&self) -> Option<LogId> {
        self.first.as_ref().map(|(id, _)| *id)
    }
}

/// A checkpoint as the identity rules see it.
pub(crate) struct Claim<'a> {
    pub consumer: &'a str,
    pub path: &'a Path,
    pub offset: u64,
    pub written_for: Option<LogId>,
}

/// Who the log is.
pub(crate) struct Identity {
    pub id: LogId,
    /// The log had its id from its start, so every checkpoint it wrote names it.
    pub born_with_id: bool,
}

/// The log's id, and the checks that every checkpoint is this log's (`wal-format.md` §7 step 2).
///
/// The id is `wal.meta`'s (`meta`: its payload), else the segments' (their headers keep it when
/// `wal.meta` lost its record, or a weir before ids rewrote it), else, for a log made before
/// ids, the one its checkpoints name when they agree, else a new one. Only the first two vouch
/// for a checkpoint: an id taken from the checkpoints themselves proves nothing, so such a
/// checkpoint past the end of the log (`log_end`), which would count the whole log as
/// delivered, is refused rather than taken.
pub(crate) fn resolve<'s>(
    meta: Option<&[u8]>,
    new_log: bool,
    segments: impl IntoIterator<Item = (&'s Path, Option<LogId>)>,
    claims: &[Claim<'_>],
    log_end: u64,
    dir: &Path,
) -> Result<Identity> {
    let from_meta = meta.and_then(checkpoint::decode_meta_log_id);
    let born_with_id = new_log || meta.is_some_and(checkpoint::decode_meta_born_with_id);
    let mut seen = SegmentIds::new(from_meta);
    for (path, id) in segments {
        if let Some(reason) = seen.clash(path, id) {
            return Err(WalError::Corrupt {
                path: path.to_owned(),
                pos: 32,
                reason,
            });
        }
    }
    let (id, vouched) = match (from_meta, seen.id()) {
        (Some(id), _) => (id, true),
        (None, Some(id)) => {
            tracing::info!(log = %dir.display(), %id, "wal.meta holds no log id: the segments name it");
            (id, true)
        }
        (None, None) => (agreed_by_checkpoints(claims, dir)?, false),
    };
    for c in claims {
        let foreign = match c.written_for {
            Some(written_for) => written_for != id,
            None => born_with_id,
        };
        if foreign {
            return Err(WalError::CheckpointOfAnotherLog(Box::new(
                AnotherLogsCheckpoint {
                    checkpoint: c.path.to_owned(),
                    consumer: c.consumer.to_owned(),
                    offset: c.offset,
                    written_for: c.written_for,
                    log: dir.to_owned(),
                    log_id: id,
                },
            )));
        }
        let verified = vouched && c.written_for.is_some();
        if !verified && c.offset > log_end {
            return Err(WalError::UnverifiedCheckpointPastEnd(Box::new(
                UnverifiedCheckpoint {
                    checkpoint: c.path.to_owned(),
                    consumer: c.consumer.to_owned(),
                    offset: c.offset,
                    log: dir.to_owned(),
                    log_end,
                    why_unverified: if c.written_for.is_none() {
                        "it names no log: written by a weir before log ids"
                    } else {
                        "neither wal.meta nor a segment holds this log's id"
                    },
                },
            )));
        }
    }
    Ok(Identity { id, born_with_id })
}

/// For a log none of whose files names an id: the id its checkpoints name when they all name
/// the same one (written since the log got an id), else a new one; two ids refuse the open,
/// since one of them is another log's and nothing says which.
fn agreed_by_checkpoints(claims: &[Claim<'_>], dir: &Path) -> Result<LogId> {
    let mut named = claims
        .iter()
        .filter_map(|c| c.written_for.map(|id| (c, id)));
    let Some((first, id)) = named.next() else {
        return Ok(LogId::random());
    };
    if let Some((other, other_id)) = named.find(|(_, o)| *o != id) {
        return Err(WalError::CheckpointsOfTwoLogs(Box::new(
            CheckpointsOfTwoLogs {
                first: first.path.to_owned(),
                first_log: id,
                second: other.path.to_owned(),
                second_log: other_id,
                log: dir.to_owned(),
            },
        )));
    }
    tracing::warn!(
        log = %dir.display(),
        %id,
        checkpoint = %first.path.display(),
        "neither wal.meta nor a segment holds a log id: the log takes the one its checkpoints name"
    );
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_naming_two_logs_clash() {
        let (a, b) = (LogId([1; 16]), LogId([2; 16]));
        let mut seen = SegmentIds::new(Some(a));
        assert_eq!(seen.clash(Path::new("0.seg"), None), None);
        assert_eq!(seen.clash(Path::new("1.seg"), Some(a)), None);
        let clash = seen.clash(Path::new("2.seg"), Some(b)).expect("a clash");
        assert!(clash.contains("1.seg names log"), "{clash}");
        let mut seen = SegmentIds::new(Some(a));
        let clash = seen.clash(Path::new("0.seg"), Some(b)).expect("a clash");
        assert!(clash.contains("wal.meta names log"), "{clash}");
        assert_eq!(seen.id(), Some(b));
    }
}
