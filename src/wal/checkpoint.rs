//! Durable consumer offsets and the log's meta record: the payloads kept in slot files
//! (`wal-format.md` §5.2 and §5.3).
//!
//! A checkpoint says "consumer NAME has acknowledged every event before OFFSET", plus a hint of
//! where the frame holding OFFSET starts, so a restart resumes without scanning the backlog.

use super::frame::{le_u32, le_u64};
use super::log_id::LogId;

/// Magic of a consumer checkpoint file (`NAME.ckpt`).
pub const CHECKPOINT_MAGIC: &[u8; 4] = b"WCKP";
/// Magic of the log's meta file (`wal.meta`).
pub const META_MAGIC: &[u8; 4] = b"WMTA";
pub const MAX_CONSUMER_NAME: usize = 64;

/// A consumer's durable position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    /// First offset not yet acknowledged: the next event this consumer will read.
    pub offset: u64,
    /// Base offset of the segment holding the frame that holds `offset` (a hint).
    pub segment: u64,
    /// Byte position of that frame inside the segment (a hint).
    pub frame_pos: u64,
}

/// A decoded checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub name: String,
    pub position: Position,
    /// The log it was written for; `None` in a checkpoint written before logs had ids.
    pub log: Option<LogId>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint payload is {0} bytes, shorter than its fixed fields")]
    Truncated(usize),
    #[error("consumer name length {0} runs past the payload")]
    BadNameLength(usize),
    #[error("consumer name is not valid")]
    BadName,
}

/// Consumer names become file names, so they are kept to a safe alphabet.
pub fn valid_consumer_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_CONSUMER_NAME
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The consumer whose checkpoint file `path` is (`{name}.ckpt`, wal-format.md §1), or `None`
/// for any other file: the one rule open and `verify` both read the checkpoint directory by.
pub fn consumer_of_file(path: &std::path::Path) -> Option<&str> {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".ckpt"))
        .filter(|n| valid_consumer_name(n))
}

pub fn encode_checkpoint(c: &Checkpoint) -> Vec<u8> {
    let mut p = Vec::with_capacity(26 + c.name.len() + 16);
    p.extend_from_slice(&c.position.offset.to_le_bytes());
    p.extend_from_slice(&c.position.segment.to_le_bytes());
    p.extend_from_slice(&c.position.frame_pos.to_le_bytes());
    p.extend_from_slice(&(c.name.len() as u16).to_le_bytes());
    p.extend_from_slice(c.name.as_bytes());
    if let Some(log) = c.log {
        p.extend_from_slice(&log.0);
    }
    p
}

pub fn decode_checkpoint(p: &[u8]) -> Result<Checkpoint, CheckpointError> {
    if p.len() < 26 {
        return Err(CheckpointError::Truncated(p.len()));
    }
    let name_len = u16::from_le_bytes([p[24], p[25]]) as usize;
    let name = p
        .get(26..26 + name_len)
        .ok_or(CheckpointError::BadNameLength(name_len))?;
    let name = std::str::from_utf8(name).map_err(|_| CheckpointError::BadName)?;
    if !valid_consumer_name(name) {
        return Err(CheckpointError::BadName);
    }
    Ok(Checkpoint {
        name: name.to_owned(),
        position: Position {
            offset: le_u64(&p[0..8]),
            segment: le_u64(&p[8..16]),
            frame_pos: le_u64(&p[16..24]),
        },
        log: LogId::read(&p[26 + name_len..]),
    })
}

/// The log's meta record: the epoch of the newest open (`wal-format.md` §5.3).
pub fn encode_meta(epoch: u32) -> Vec<u8> {
    epoch.to_le_bytes().to_vec()
}

/// Where the newest open found the log's end, after syncing it: every frame of segment `base`
/// below byte `end_pos` (up to offset `next_offset`) was valid and durable then, so damage
/// found there later is damage, not a torn tail (`wal-format.md` §5.3, §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifiedEnd {
    pub base: u64,
    pub end_pos: u64,
    pub next_offset: u64,
}

/// The meta record with the end the open verified, the log's id, and whether the log had
/// that id from its start (`born_with_id`: then every checkpoint it ever wrote names it).
pub fn encode_meta_verified(
    epoch: u32,
    end: VerifiedEnd,
    log: LogId,
    born_with_id: bool,
) -> Vec<u8> {
    let mut p = encode_meta(epoch);
    p.extend_from_slice(&end.base.to_le_bytes());
    p.extend_from_slice(&end.end_pos.to_le_bytes());
    p.extend_from_slice(&end.next_offset.to_le_bytes());
    p.extend_from_slice(&log.0);
    p.push(u8::from(born_with_id));
    p
}

pub fn decode_meta(p: &[u8]) -> Option<u32> {
    (p.len() >= 4).then(|| le_u32(&p[0..4]))
}

/// The verified end of a meta record, if it has one (records written before it existed hold
/// only the epoch).
pub fn decode_verified_end(p: &[u8]) -> Option<VerifiedEnd> {
    (p.len() >= 28).then(|| VerifiedEnd {
        base: le_u64(&p[4..12]),
        end_pos: le_u64(&p[12..20]),
        next_offset: le_u64(&p[20..28]),
    })
}

/// The log's id in a meta record, if it has one (records written before logs had ids do not).
pub fn decode_meta_log_id(p: &[u8]) -> Option<LogId> {
    LogId::read(p.get(28..)?)
}

/// Whether a meta record says its log had its id from the start, so that a checkpoint naming
/// no log cannot be this log's.
pub fn decode_meta_born_with_id(p: &[u8]) -> bool {
    decode_meta_log_id(p).is_some() && p.get(44) == Some(&1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_round_trip_and_rejects() {
        let c = Checkpoint {
            name: "sink-1".into(),
            position: Position {
                offset: 9,
                segment: 0,
                frame_pos: 4096,
            },
            log: Some(LogId([7; 16])),
        };
        assert_eq!(decode_checkpoint(&encode_checkpoint(&c)).unwrap(), c);
        // Written before logs had ids: no id, and sixteen zeros read as none too.
        let old = Checkpoint {
            log: None,
            ..c.clone()
        };
        let old_bytes = encode_checkpoint(&old);
        assert_eq!(old_bytes.len(), 26 + 6);
        assert_eq!(decode_checkpoint(&old_bytes).unwrap(), old);
        let mut zeros = old_bytes.clone();
        zeros.extend_from_slice(&[0; 16]);
        assert_eq!(decode_checkpoint(&zeros).unwrap(), old);
        assert!(decode_checkpoint(&[0; 10]).is_err());
        let mut bad = encode_checkpoint(&c);
        bad[24] = 200;
        assert_eq!(
            decode_checkpoint(&bad),
            Err(CheckpointError::BadNameLength(200))
        );
        for name in ["", "../x", "a/b", ".hidden", &"x".repeat(65)] {
            assert!(!valid_consumer_name(name), "{name:?} accepted");
        }
        assert!(valid_consumer_name("channel-c1.sink_k1"));
    }

    #[test]
    fn meta_carries_the_log_id_after_the_verified_end() {
        let end = VerifiedEnd {
            base: 1,
            end_pos: 4096,
            next_offset: 1,
        };
        let id = LogId::random();
        let p = encode_meta_verified(3, end, id, true);
        assert_eq!(p.len(), 45);
        assert!(decode_meta_born_with_id(&p));
        assert!(!decode_meta_born_with_id(&encode_meta_verified(
            3, end, id, false
        )));
        assert!(!decode_meta_born_with_id(&p[..44]));
        assert_eq!(decode_meta(&p), Some(3));
        assert_eq!(decode_verified_end(&p), Some(end));
        assert_eq!(decode_meta_log_id(&p), Some(id));
        assert_eq!(
            decode_meta_log_id(&p[..28]),
            None,
            "a record from before ids"
        );
        assert_eq!(decode_meta_log_id(&encode_meta(3)), None);
    }
}
