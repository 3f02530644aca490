//! Flume's JSONHandler: a request body `[{"headers":{"k":"v"},"body":"text"}, …]` becomes one
//! event per element, the body string stored as its UTF-8 bytes.
//!
//! Like Flume (which reads it with Gson), `headers` and `body` may be missing or null (no
//! headers, empty body), other keys of an event are ignored, and a number or `true`/`false` where a string is expected is taken as its JSON text,
//! exactly as written (`1.50` stays `1.50`, a 30-digit integer keeps its digits). Anything else
//! (not an array, an element that is not an object, an array or object as a header value) is
//! refused with serde's description and the line and column where it was found.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Unexpected, Visitor};
use serde_json::value::RawValue;

use crate::event::{Event, Headers};

/// Why a body is not a list of events, ready to send back to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadBody(pub String);

impl fmt::Display for BadBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a JSONHandler body into events.
pub fn parse_events(body: &[u8]) -> Result<Vec<Event>, BadBody> {
    // Which element the parser was in when it failed, for the message.
    let current = Cell::new(None);
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = de
        .deserialize_seq(EventsVisitor { current: &current })
        .and_then(|events| de.end().map(|()| events));
    parsed.map_err(|e| {
        let place = match (e.classify(), current.get()) {
            (serde_json::error::Category::Eof, _) if body.iter().all(u8::is_ascii_whitespace) => {
                return BadBody(
                    "empty body: expected a JSON array of events like [{\"headers\":{},\"body\":\"text\"}]"
                        .to_owned(),
                );
            }
            (_, Some(i)) => format!(" (in event {i}, counting from 0)"),
            _ => String::new(),
        };
        BadBody(format!("invalid JSON event list: {e}{place}"))
    })
}

struct EventsVisitor<'a> {
    current: &'a Cell<Option<usize>>,
}

impl<'de> Visitor<'de> for EventsVisitor<'_> {
    type Value = Vec<Event>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON array of events like [{\"headers\":{},\"body\":\"text\"}]")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Event>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        loop {
            self.current.set(Some(out.len()));
            let Some(e) = seq.next_element::<JsonEvent>()? else {
                break;
            };
            out.push(Event {
                headers: e
                    .headers
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0))
                    .collect::<Headers>(),
                body: e.body.map(|b| b.0.into_bytes()).unwrap_or_default().into(),
            });
        }
        self.current.set(None);
        Ok(out)
    }
}

/// One element of the list: a JSON object only. A derived `Deserialize` would also take an
/// array as the fields in order, so `[[{"k":"v"},"text"]]` was stored as an event where Gson,
/// and so Flume, refuses it.
struct JsonEvent {
    headers: Option<BTreeMap<String, Text>>,
    body: Option<Text>,
}

impl<'de> Deserialize<'de> for JsonEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<JsonEvent, D::Error> {
        d.deserialize_map(JsonEventVisitor)
    }
}

struct JsonEventVisitor;

impl<'de> Visitor<'de> for JsonEventVisitor {
    type Value = JsonEvent;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event object like {\"headers\":{\"k\":\"v\"},\"body\":\"text\"}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonEvent, A::Error> {
        let mut event = JsonEvent {
            headers: None,
            body: None,
        };
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            // As Gson fills Flume's JSONEvent: a field given twice takes the last value.
            match key.as_ref() {
                "headers" => event.headers = map.next_value::<Option<HeaderMap>>()?.map(|h| h.0),
                "body" => event.body = map.next_value()?,
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        Ok(event)
    }
}

/// The `headers` object. A header named twice is refused, as Gson refuses a duplicate key of
/// the map it fills (`duplicate key`), so Flume answers 400 too.
struct HeaderMap(BTreeMap<String, Text>);

impl<'de> Deserialize<'de> for HeaderMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<HeaderMap, D::Error> {
        d.deserialize_map(HeaderMapVisitor)
    }
}

struct HeaderMapVisitor;

impl<'de> Visitor<'de> for HeaderMapVisitor {
    type Value = HeaderMap;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of header names and values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<HeaderMap, A::Error> {
        let mut headers = BTreeMap::new();
        while let Some(name) = map.next_key::<String>()? {
            let value = map.next_value::<Text>()?;
            if headers.contains_key(&name) {
                return Err(de::Error::custom(format_args!("duplicate header `{name}`")));
            }
            headers.insert(name, value);
        }
        Ok(HeaderMap(headers))
    }
}

/// A string, or a number or boolean taken as its JSON text as written (Gson reads those as
/// strings too, keeping the token's text: `1.0e3`, `0.10` and integers past 64 bits are not
/// rewritten, as a round trip through a number would rewrite them).
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        let raw = <&'de RawValue>::deserialize(d)?;
        let json = raw.get();
        match json.as_bytes().first() {
            // Without escapes, the text between the quotes is the string (the scan that found
            // the value has checked it).
            Some(b'"') if !json.contains('\\') => Ok(Text(json[1..json.len() - 1].to_owned())),
            Some(b'"') => serde_json::from_str(json)
                .map(Text)
                .map_err(de::Error::custom),
            Some(b'-' | b'0'..=b'9' | b't' | b'f') => Ok(Text(json.to_owned())),
            Some(b'{') => Err(de::Error::invalid_type(Unexpected::Map, &"a string")),
            Some(b'[') => Err(de::Error::invalid_type(Unexpected::Seq, &"a string")),
            _ => Err(de::Error::invalid_type(Unexpected::Unit, &"a string")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: &str) -> Vec<Event> {
        match parse_events(body.as_bytes()) {
            Ok(v) => v,
            Err(e) => panic!("{body}: {e}"),
        }
    }

    fn bad(body: &str) -> String {
        match parse_events(body.as_bytes()) {
            Ok(v) => panic!("{body} accepted as {v:?}"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn events_with_headers_and_bodies() {
        let events = ok(r#"[{"headers":{"a":"b","c":"d"},"body":"random_body"},
                             {"headers":{"e":"f"},"body":"random_body2"}]"#);
        assert_eq!(
            events,
            vec![
                Event::new("random_body")
                    .with_header("a", "b")
                    .with_header("c", "d"),
                Event::new("random_body2").with_header("e", "f"),
            ]
        );
    }

    #[test]
    fn flume_leniency_missing_parts_scalars_and_unknown_keys() {
        let events = ok(
            r#"[{"body":"no headers"}, {"headers":{"k":"v"}}, {"headers":null,"body":null},
                {"headers":{"ts":1700000000000,"neg":-3,"f":1.5,"ok":true},"body":42,"extra":[1,{}]}]"#,
        );
        assert_eq!(events[0], Event::new("no headers"));
        assert_eq!(events[1], Event::new("").with_header("k", "v"));
        assert_eq!(events[2], Event::new(""));
        assert_eq!(events[3].body.as_ref(), b"42");
        assert_eq!(events[3].headers["ts"], "1700000000000");
        assert_eq!(events[3].headers["neg"], "-3");
        assert_eq!(events[3].headers["f"], "1.5");
        assert_eq!(events[3].headers["ok"], "true");
        // Numbers keep the text they were written with, as Gson keeps a number token's text.
        let events = ok(
            r#"[{"headers":{"big":123456789012345678901234567890,"e":1.0e3,"z":0.10,"m":-0},"body":1.50}]"#,
        );
        assert_eq!(events[0].headers["big"], "123456789012345678901234567890");
        assert_eq!(events[0].headers["e"], "1.0e3");
        assert_eq!(events[0].headers["z"], "0.10");
        assert_eq!(events[0].headers["m"], "-0");
        assert_eq!(events[0].body.as_ref(), b"1.50");
        assert!(ok("[]").is_empty());
        assert!(ok(" \n[ ]\n").is_empty());
    }

    #[test]
    fn unicode_and_escapes_are_stored_as_utf8() {
        let events =
            ok(r#"[{"headers":{"k\u00e9":"\u2603"},"body":"line1\nline2 \"q\" \ud83d\ude00 ü"}]"#);
        assert_eq!(events[0].headers["ké"], "☃");
        assert_eq!(
            events[0].body.as_ref(),
            "line1\nline2 \"q\" 😀 ü".as_bytes()
        );
    }

    #[test]
    fn errors_say_what_and_where() {
        let e = bad(r#"[{"body":"x"},"#);
        assert!(
            e.contains("EOF while parsing") && e.contains("line 1 column 14"),
            "{e}"
        );
        let e = bad("[{\"body\":\"x\"}\n {\"body\": }]");
        assert!(e.contains("line 2"), "{e}");
        let e = bad(r#"{"body":"x"}"#);
        assert!(e.contains("a JSON array of events"), "{e}");
        assert!(e.contains("line 1 column"), "{e}");
        let e = bad(r#"[{"body":"ok"}, "just a string"]"#);
        assert!(
            e.contains("an event object") && e.contains("in event 1"),
            "{e}"
        );
        let e = bad(r#"[{"headers":{"k":{"nested":1}},"body":"x"}]"#);
        assert!(e.contains("a string") && e.contains("in event 0"), "{e}");
        let e = bad(r#"[{"headers":["k","v"]}]"#);
        assert!(e.contains("invalid type: sequence"), "{e}");
        let e = bad(r#"[{"body":"x"}] trailing"#);
        assert!(e.contains("trailing characters"), "{e}");
        // Duplicates as Gson reads them: a header named twice is refused, a field given twice
        // takes the last value.
        let e = bad(r#"[{"headers":{"k":"1","k":"2"}}]"#);
        assert!(e.contains("duplicate header `k`"), "{e}");
        assert_eq!(ok(r#"[{"body":"x","body":"y"}]"#)[0].body.as_ref(), b"y");
        // An event given as an array (the fields in order) is not an event: Gson refuses it.
        for body in [r#"[[{"k":"v"},"text"]]"#, r#"[[{"body":"J09"}]]"#] {
            let e = bad(body);
            assert!(
                e.contains("invalid type: sequence, expected an event object"),
                "{e}"
            );
        }
        let e = bad(r#"[{"headers":{"k":null}}]"#);
        assert!(
            e.contains("invalid type: null") && e.contains("a string"),
            "{e}"
        );
        let e = bad("");
        assert!(e.contains("empty body"), "{e}");
        let e = bad("[{\"body\":\"\u{0}\"");
        assert!(e.contains("control character"), "{e}");
        let e = bad("[{\"body\":\"a\u{1}b\"}]");
        assert!(e.contains("control character"), "{e}");
    }

    #[test]
    fn invalid_utf8_is_refused() {
        let e = parse_events(b"[{\"body\":\"\xff\"}]").unwrap_err().0;
        assert!(e.contains("invalid unicode") || e.contains("UTF-8"), "{e}");
    }
}
