//! The unit of data that flows through weir: a Flume event, i.e. a set of string headers and an
//! opaque byte body.
//!
//! The body is a [`Bytes`], so an event read back from the write-ahead log can point straight
//! into the segment's memory map instead of copying it. How an event is laid out on disk is part
//! of the log format (`wal-format.md`, "Event encoding") and lives in `wal::frame`.
//!
//! The headers of such an event stay in their encoded form too, read in place, until something
//! asks for them as a map ([`Headers`]): a sink that only looks at bodies, or one that walks the
//! headers once to send them on (Kafka, Avro, Thrift), then costs no allocation per header. Turning
//! every event's headers into a map of owned strings was what bounded a syslog pipeline's sink
//! thread (README, "Where a header-heavy pipeline spends its time"). On the other side, a source
//! that sets the same few headers on every event packs them ([`Headers::from_pairs`]) instead of
//! building that map: allocating it took about half of the syslog source threads' time.

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::sync::OnceLock;

use bytes::Bytes;

/// Now, in the unit of Flume's `timestamp` header: milliseconds since the Unix epoch (0 on a
/// clock set before it). Sources, sinks and the metrics page all count time this way.
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Headers as a sorted map. A sorted map keeps encodings deterministic, which makes log files
/// reproducible byte for byte (the worked example in `wal-format.md` relies on it).
pub type HeaderMap = BTreeMap<String, String>;

/// Reads the first header of an encoded header block: the key, the value and the rest of the
/// block, or `None` if the bytes are not a header. Supplied by whoever wrote the encoding.
pub type HeaderDecoder = for<'a> fn(&'a [u8]) -> Option<((&'a str, &'a str), &'a [u8])>;

/// Event headers: a [`HeaderMap`] (it dereferences to one), which an event read from the log,
/// or made by [`Headers::from_pairs`], builds only when first asked for it as a map.
/// [`Headers::pairs`] and [`Headers::count`] read the compact form in place.
#[derive(Default)]
pub struct Headers {
    /// The headers in a compact form, without a string or map node per header. `None` once the
    /// map has been borrowed mutably (it may differ from the compact form from then on).
    compact: Option<Compact>,
    map: OnceLock<HeaderMap>,
}

#[derive(Clone)]
enum Compact {
    /// As encoded where the event was read from, checked when it was read.
    Encoded {
        bytes: Bytes,
        count: u16,
        decode: HeaderDecoder,
    },
    /// Made by a source: every key and value one after the other in `text`, and where each
    /// pair's key and value end in it, sorted by key.
    Packed { text: String, ends: Vec<(u32, u32)> },
}

impl Headers {
    pub fn new() -> Headers {
        Headers::default()
    }

    /// Headers kept as `count` encoded pairs in `bytes`, read with `decode`. The caller has
    /// checked that `decode` reads `count` pairs from `bytes`, with keys in strictly ascending
    /// order, so that [`Headers::pairs`] yields what the map would hold.
    pub fn encoded(bytes: Bytes, count: u16, decode: HeaderDecoder) -> Headers {
        Headers {
            compact: Some(Compact::Encoded {
                bytes,
                count,
                decode,
            }),
            map: OnceLock::new(),
        }
    }

    /// Headers made from `pairs` (sorted here) in two allocations rather than two strings per
    /// header plus map nodes, for sources that set the same few headers on every event (the
    /// syslog source sets up to seven). A repeated key keeps its last value, as inserting into a
    /// map would.
    pub fn from_pairs(pairs: &mut [(&str, &str)]) -> Headers {
        pairs.sort_by(|a, b| a.0.cmp(b.0));
        let total: usize = pairs.iter().map(|(k, v)| k.len() + v.len()).sum();
        let unique = pairs.windows(2).all(|w| w[0].0 < w[1].0);
        if pairs.is_empty() || !unique || u32::try_from(total).is_err() {
            return pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
        }
        let mut text = String::with_capacity(total);
        let mut ends = Vec::with_capacity(pairs.len());
        for (k, v) in pairs.iter() {
            text.push_str(k);
            let key_end = text.len() as u32;
            text.push_str(v);
            ends.push((key_end, text.len() as u32));
        }
        Headers {
            compact: Some(Compact::Packed { text, ends }),
            map: OnceLock::new(),
        }
    }

    /// How many headers there are, without building the map.
    pub fn count(&self) -> usize {
        match (self.map.get(), &self.compact) {
            (Some(map), _) => map.len(),
            (None, Some(Compact::Encoded { count, .. })) => usize::from(*count),
            (None, Some(Compact::Packed { ends, .. })) => ends.len(),
            (None, None) => 0,
        }
    }

    /// The headers in key order, without building the map.
    pub fn pairs(&self) -> Pairs<'_> {
        match (self.map.get(), &self.compact) {
            (Some(map), _) => Pairs::Map(map.iter()),
            (
                None,
                Some(Compact::Encoded {
                    bytes,
                    count,
                    decode,
                }),
            ) => Pairs::Encoded {
                rest: bytes,
                left: *count,
                decode: *decode,
            },
            (None, Some(Compact::Packed { text, ends })) => Pairs::Packed {
                text,
                ends: ends.iter(),
                start: 0,
            },
            (None, None) => Pairs::Empty,
        }
    }

    /// The value of header `key`, without building the map (a scan of the few encoded pairs).
    pub fn get(&self, key: &str) -> Option<&str> {
        match self.map.get() {
            Some(map) => map.get(key).map(String::as_str),
            None => self.pairs().find(|(k, _)| *k == key).map(|(_, v)| v),
        }
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// [`Headers::count`], named as on a map.
    pub fn len(&self) -> usize {
        self.count()
    }

    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    /// [`Headers::pairs`], named as on a map.
    pub fn iter(&self) -> Pairs<'_> {
        self.pairs()
    }

    /// The map, built from the encoded form on first use.
    fn map(&self) -> &HeaderMap {
        self.map.get_or_init(|| self.owned_pairs())
    }

    /// The map, owned.
    pub fn into_map(mut self) -> HeaderMap {
        self.map.take().unwrap_or_else(|| self.owned_pairs())
    }

    fn owned_pairs(&self) -> HeaderMap {
        self.pairs()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }
}

/// Iterator over [`Headers::pairs`].
pub enum Pairs<'a> {
    Map(std::collections::btree_map::Iter<'a, String, String>),
    Encoded {
        rest: &'a [u8],
        left: u16,
        decode: HeaderDecoder,
    },
    Packed {
        text: &'a str,
        ends: std::slice::Iter<'a, (u32, u32)>,
        start: usize,
    },
    Empty,
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Pairs::Map(it) => it.next().map(|(k, v)| (k.as_str(), v.as_str())),
            Pairs::Encoded { rest, left, decode } => {
                if *left == 0 {
                    return None;
                }
                *left -= 1;
                match decode(rest) {
                    Some((pair, after)) => {
                        *rest = after;
                        Some(pair)
                    }
                    // Checked when the headers were read, so not reached; ending is the safe
                    // answer if it were.
                    None => {
                        *left = 0;
                        None
                    }
                }
            }
            Pairs::Packed { text, ends, start } => {
                let &(key_end, value_end) = ends.next()?;
                let (key_end, value_end) = (key_end as usize, value_end as usize);
                // Ends that `from_pairs` recorded between the strings it joined: always char
                // boundaries, so `get` only fails if that were broken, and then ends safely.
                let pair = text.get(*start..key_end).zip(text.get(key_end..value_end));
                *start = value_end;
                pair
            }
            Pairs::Empty => None,
        }
    }
}

impl Deref for Headers {
    type Target = HeaderMap;

    fn deref(&self) -> &HeaderMap {
        self.map()
    }
}

impl DerefMut for Headers {
    fn deref_mut(&mut self) -> &mut HeaderMap {
        self.map();
        self.compact = None;
        self.map
            .get_mut()
            .unwrap_or_else(|| unreachable!("the map was built just above"))
    }
}

impl Clone for Headers {
    fn clone(&self) -> Headers {
        match (&self.compact, self.map.get()) {
            // Still compact: so is the copy (for encoded headers a reference count, no copy).
            (Some(c), _) => Headers {
                compact: Some(c.clone()),
                map: OnceLock::new(),
            },
            (None, Some(map)) => Headers::from(map.clone()),
            (None, None) => Headers::new(),
        }
    }
}

impl PartialEq for Headers {
    fn eq(&self, other: &Headers) -> bool {
        self.count() == other.count() && self.pairs().eq(other.pairs())
    }
}

impl Eq for Headers {}

impl PartialEq<HeaderMap> for Headers {
    fn eq(&self, other: &HeaderMap) -> bool {
        self.count() == other.len()
            && self
                .pairs()
                .eq(other.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

impl std::fmt::Debug for Headers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.pairs()).finish()
    }
}

impl From<HeaderMap> for Headers {
    fn from(map: HeaderMap) -> Headers {
        Headers {
            compact: None,
            map: OnceLock::from(map),
        }
    }
}

impl<const N: usize> From<[(String, String); N]> for Headers {
    fn from(pairs: [(String, String); N]) -> Headers {
        Headers::from(HeaderMap::from(pairs))
    }
}

impl serde::Serialize for Headers {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.pairs())
    }
}

impl FromIterator<(String, String)> for Headers {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Headers {
        Headers::from(iter.into_iter().collect::<HeaderMap>())
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = (&'a str, &'a str);
    type IntoIter = Pairs<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.pairs()
    }
}

impl IntoIterator for Headers {
    type Item = (String, String);
    type IntoIter = std::collections::btree_map::IntoIter<String, String>;

    fn into_iter(self) -> Self::IntoIter {
        self.into_map().into_iter()
    }
}

/// A Flume event: headers plus body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Event {
    pub headers: Headers,
    pub body: Bytes,
}

impl Event {
    /// An event with a body and no headers.
    pub fn new(body: impl Into<Bytes>) -> Self {
        Event {
            headers: Headers::new(),
            body: body.into(),
        }
    }

    /// Builder-style header setter.
    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(key.into(), value.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// Packed headers answer as the map of the same pairs does, before and after the map is
    /// built, and a change through the map is the event's from then on.
    #[test]
    fn packed_headers_answer_as_the_map_would() {
        let given = [
            ("host", "h1"),
            ("Facility", "3"),
            ("k\u{e9}y", "v\u{2603}"),
            ("e", ""),
        ];
        let expected = map(&given);
        let h = Headers::from_pairs(&mut given.clone());
        assert_eq!(h.count(), 4);
        assert_eq!(h.get("host"), Some("h1"));
        assert_eq!(h.get("e"), Some(""));
        assert_eq!(h.get("k\u{e9}y"), Some("v\u{2603}"));
        assert_eq!(h.get("nope"), None);
        let pairs: Vec<_> = h.pairs().collect();
        let sorted: Vec<_> = expected
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(pairs, sorted);
        assert_eq!(h, expected);
        assert_eq!(h.clone(), Headers::from(expected.clone()));
        assert_eq!(format!("{h:?}"), format!("{expected:?}"));
        // The map view, built on demand, holds the same; the compact form still answers.
        assert_eq!(h.keys().count(), 4);
        assert_eq!(h.get("Facility"), Some("3"));
        let mut changed = h.clone();
        changed.insert("host".into(), "h2".into());
        assert_eq!(changed.get("host"), Some("h2"));
        assert_eq!(h.get("host"), Some("h1"));
        assert_eq!(h.into_map(), expected);
    }

    #[test]
    fn packed_headers_keep_the_last_of_a_repeated_key_and_may_be_empty() {
        let h = Headers::from_pairs(&mut [("a", "1"), ("b", "2"), ("a", "3")]);
        assert_eq!(h, map(&[("a", "3"), ("b", "2")]));
        let none = Headers::from_pairs(&mut []);
        assert!(none.is_empty());
        assert_eq!(none.pairs().count(), 0);
    }
}
