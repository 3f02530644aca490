//! The null sink: takes and discards (Flume's NullSink), for benchmarks and tests.

use super::Sink;
use crate::event::Event;

pub struct NullSink;

impl Sink for NullSink {
    fn deliver(&mut self, _events: &[(u64, Event)]) -> anyhow::Result<()> {
        Ok(())
    }
}
