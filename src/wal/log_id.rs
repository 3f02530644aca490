//! The log id (`wal-format.md` §5.3): a random value drawn when a log is made and written into
//! `wal.meta`, every segment header (§2.1) and every checkpoint (§5.2), so that files can say
//! which log they belong to. The rules that use it are `identity`'s.

/// A log's id: random, drawn when the log is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LogId(pub [u8; 16]);

impl LogId {
    pub fn random() -> LogId {
        LogId(*uuid::Uuid::new_v4().as_bytes())
    }

    /// The id stored at the start of `bytes`: `None` when there are fewer than 16 bytes, or all
    /// 16 are zero (a record written before logs had ids).
    pub(crate) fn read(bytes: &[u8]) -> Option<LogId> {
        let id: [u8; 16] = bytes.get(..16)?.try_into().ok()?;
        (id != [0; 16]).then_some(LogId(id))
    }
}

impl std::fmt::Display for LogId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        uuid::Uuid::from_bytes(self.0).hyphenated().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_back_and_zeros_are_none() {
        let id = LogId::random();
        assert_eq!(LogId::read(&id.0), Some(id));
        assert_eq!(LogId::read(&[0; 16]), None);
        assert_eq!(LogId::read(&id.0[..15]), None);
        assert_ne!(LogId::random(), id);
        assert_eq!(id.to_string().len(), 36);
    }
}
