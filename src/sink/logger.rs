//! The logger sink: logs each event at INFO as Flume's LoggerSink does,
//! `Event: { headers:{k=v, …} body: <hex dump> }`, the body cut at `maxBytesToLog`. The dump is
//! the one Flume prints (commons-io's `HexDump` without the first line's offset): rows of 16
//! bytes in upper-case hex, padded, then the bytes as text with `.` for the unprintable; so
//! scripts and eyes used to Flume's log read weir's the same way.

use std::fmt::Write;

use super::Sink;
use crate::event::Event;

pub struct LoggerSink {
    name: String,
    max_bytes: usize,
}

impl LoggerSink {
    pub fn new(name: &str, max_bytes: usize) -> LoggerSink {
        LoggerSink {
            name: name.to_owned(),
            max_bytes,
        }
    }
}

/// `{ headers:{…} body:… }`, as Flume's `EventHelper.dumpEvent(event, max_bytes)`.
pub fn dump_event(event: &Event, max_bytes: usize) -> String {
    let headers: Vec<String> = event
        .headers
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let shown = &event.body[..event.body.len().min(max_bytes)];
    let mut body = String::new();
    for (row, chunk) in shown.chunks(16).enumerate() {
        if row > 0 {
            // Every row but the first keeps its offset, as in Flume.
            let _ = write!(body, "\n{:08X}", row * 16);
        }
        body.push(' ');
        for i in 0..16 {
            match chunk.get(i) {
                Some(b) => {
                    let _ = write!(body, "{b:02X} ");
                }
                None => body.push_str("   "),
            }
        }
        body.extend(chunk.iter().map(|&b| {
            if (b' '..0x7f).contains(&b) {
                b as char
            } else {
                '.'
            }
        }));
    }
    format!("{{ headers:{{{}}} body:{body} }}", headers.join(", "))
}

impl Sink for LoggerSink {
    fn deliver(&mut self, events: &[(u64, Event)]) -> anyhow::Result<()> {
        for (offset, e) in events {
            tracing::info!(
                sink = %self.name,
                offset,
                "Event: {}",
                dump_event(e, self.max_bytes)
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text Flume 1.x's LoggerSink logs for the same events.
    #[test]
    fn events_are_dumped_as_flume_dumps_them() {
        let e = Event::new(&b"hello"[..]);
        assert_eq!(
            dump_event(&e, 16),
            format!(
                "{{ headers:{{}} body: 68 65 6C 6C 6F {}hello }}",
                " ".repeat(33)
            )
        );
        let e = Event::new(&b"0123456789abcdef\tXYZ\xff"[..])
            .with_header("host", "edge")
            .with_header("a", "1");
        assert_eq!(
            dump_event(&e, 100),
            format!(
                "{{ headers:{{a=1, host=edge}} body: 30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 \
                 66 0123456789abcdef\n00000010 09 58 59 5A FF {}.XYZ. }}",
                " ".repeat(33)
            )
        );
        // Cut at maxBytesToLog; an empty body dumps as nothing.
        assert!(dump_event(&e, 3).starts_with("{ headers:{a=1, host=edge} body: 30 31 32    "));
        assert!(dump_event(&e, 3).ends_with(" 012 }"));
        assert_eq!(
            dump_event(&Event::new(&b""[..]), 16),
            "{ headers:{} body: }"
        );
    }
}
