//! Interceptors: per-source transformations applied, in configured order, to every batch before
//! the selector routes it (Flume's `timestamp`, `host`, `static`, `regex_filter`, UUID,
//! `search_replace`, `remove_header` and `regex_extractor` interceptors, with their keys and
//! defaults).
//!
//! Regular expressions are the regex crate's (no look-around or back-references, unlike Java's);
//! Java's replacement strings and date patterns are translated when the configuration is read
//! (`config::java_syntax`). Bodies are read as UTF-8. `search_replace` leaves
//! a body that is not valid UTF-8 as it is: Flume would decode it with replacement characters
//! and write those back, destroying the bytes it could not decode.

use std::borrow::Cow;
use std::net::ToSocketAddrs;

use chrono::{Datelike, TimeZone};

use crate::config::{ExtractorSerializer, InterceptorConfig, SerializerKind};
use crate::event::Event;

/// The interceptors of one source.
pub struct Chain {
    steps: Vec<Step>,
}

enum Step {
    Timestamp {
        header: String,
        preserve: bool,
    },
    /// The host value is resolved once, at start.
    Set {
        header: String,
        value: String,
        preserve: bool,
    },
    RegexFilter {
        regex: regex::Regex,
        exclude: bool,
    },
    Uuid {
        header: String,
        preserve: bool,
        prefix: String,
    },
    SearchReplace {
        regex: regex::Regex,
        /// In the regex crate's syntax.
        replacement: String,
    },
    RemoveHeader {
        with_name: Option<String>,
        from_list: Vec<String>,
        /// Anchored: matches whole names only.
        matching: Option<regex::Regex>,
    },
    RegexExtractor {
        regex: regex::Regex,
        serializers: Vec<ExtractorSerializer>,
    },
}

/// `text` parsed with `format` (from `config::java_date_format`) as epoch milliseconds, as Flume's
/// millis serializer does with Joda-Time: fields the pattern leaves out are those of
/// 1970-01-01T00:00:00.000, a time without an offset is in the local time zone (the earlier of
/// two in a DST overlap), and `yy` is the year within 80 years before and 20 after now. `None`
/// when the text does not fit the pattern.
fn parse_millis(text: &str, format: &str) -> Option<i64> {
    use chrono::format::{Parsed, StrftimeItems, parse};
    let mut p = Parsed::new();
    parse(&mut p, text, StrftimeItems::new(format)).ok()?;
    if p.year().is_none() {
        let year = match p.year_mod_100() {
            Some(yy) => {
                let lowest = chrono::Local::now().year() - 80;
                let century = lowest - lowest.rem_euclid(100);
                if century + yy >= lowest {
                    century + yy
                } else {
                    century + 100 + yy
                }
            }
            None => 1970,
        };
        p.set_year(i64::from(year)).ok()?;
    }
    if p.month().is_none() {
        p.set_month(1).ok()?;
    }
    if p.day().is_none() {
        p.set_day(1).ok()?;
    }
    if p.hour_mod_12().is_none() {
        p.set_hour12(12).ok()?;
    }
    if p.hour_div_12().is_none() {
        p.set_ampm(false).ok()?;
    }
    if p.minute().is_none() {
        p.set_minute(0).ok()?;
    }
    if p.second().is_none() {
        p.set_second(0).ok()?;
    }
    let naive = p.to_naive_datetime_with_offset(0).ok()?;
    match p.offset() {
        Some(offset) => Some(naive.and_utc().timestamp_millis() - i64::from(offset) * 1000),
        None => Some(
            chrono::Local
                .from_local_datetime(&naive)
                .earliest()?
                .timestamp_millis(),
        ),
    }
}

/// This machine's name, or its address when `use_ip` (as Flume's InetAddress.getLocalHost()).
fn local_host(use_ip: bool) -> String {
    let name = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    if !use_ip {
        return name;
    }
    (name.as_str(), 0)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "127.0.0.1".to_owned())
}

fn set(event: &mut Event, header: &str, preserve: bool, value: impl FnOnce() -> String) {
    if !(preserve && event.headers.contains_key(header)) {
        event.headers.insert(header.to_owned(), value());
    }
}

impl Chain {
    pub fn new(configs: &[InterceptorConfig]) -> Chain {
        let steps = configs
            .iter()
            .map(|c| match c {
                InterceptorConfig::Timestamp {
                    header,
                    preserve_existing,
                } => Step::Timestamp {
                    header: header.clone(),
                    preserve: *preserve_existing,
                },
                InterceptorConfig::Host {
                    header,
                    use_ip,
                    preserve_existing,
                } => Step::Set {
                    header: header.clone(),
                    value: local_host(*use_ip),
                    preserve: *preserve_existing,
                },
                InterceptorConfig::Static {
                    key,
                    value,
                    preserve_existing,
                } => Step::Set {
                    header: key.clone(),
                    value: value.clone(),
                    preserve: *preserve_existing,
                },
                InterceptorConfig::RegexFilter { regex, exclude } => Step::RegexFilter {
                    regex: regex.clone(),
                    exclude: *exclude,
                },
                InterceptorConfig::Uuid {
                    header,
                    preserve_existing,
                    prefix,
                } => Step::Uuid {
                    header: header.clone(),
                    preserve: *preserve_existing,
                    prefix: prefix.clone(),
                },
                InterceptorConfig::SearchReplace { regex, replacement } => Step::SearchReplace {
                    regex: regex.clone(),
                    replacement: replacement.clone(),
                },
                InterceptorConfig::RemoveHeader {
                    with_name,
                    from_list,
                    matching,
                } => Step::RemoveHeader {
                    with_name: with_name.clone(),
                    from_list: from_list.clone(),
                    matching: matching.clone(),
                },
                InterceptorConfig::RegexExtractor { regex, serializers } => Step::RegexExtractor {
                    regex: regex.clone(),
                    serializers: serializers.clone(),
                },
            })
            .collect();
        Chain { steps }
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Applies every interceptor in order; filtered events are removed.
    pub fn apply(&self, mut events: Vec<Event>) -> Vec<Event> {
        for step in &self.steps {
            match step {
                Step::Timestamp { header, preserve } => {
                    let now = crate::event::now_millis().to_string();
                    for e in &mut events {
                        set(e, header, *preserve, || now.clone());
                    }
                }
                Step::Set {
                    header,
                    value,
                    preserve,
                } => {
                    for e in &mut events {
                        set(e, header, *preserve, || value.clone());
                    }
                }
                Step::RegexFilter { regex, exclude } => {
                    // Bodies are matched as UTF-8 text (invalid bytes replaced), as Flume does.
                    events
                        .retain(|e| regex.is_match(&String::from_utf8_lossy(&e.body)) != *exclude);
                }
                Step::Uuid {
                    header,
                    preserve,
                    prefix,
                } => {
                    for e in &mut events {
                        set(e, header, *preserve, || {
                            format!("{prefix}{}", uuid::Uuid::new_v4())
                        });
                    }
                }
                Step::SearchReplace { regex, replacement } => {
                    for e in &mut events {
                        // Not UTF-8: left as it is (see the module documentation).
                        let Ok(text) = std::str::from_utf8(&e.body) else {
                            continue;
                        };
                        let new = match regex.replace_all(text, replacement.as_str()) {
                            Cow::Owned(new) => new,
                            Cow::Borrowed(_) => continue,
                        };
                        e.body = new.into();
                    }
                }
                Step::RemoveHeader {
                    with_name,
                    from_list,
                    matching,
                } => {
                    for e in &mut events {
                        if let Some(name) = with_name {
                            e.headers.remove(name);
                        }
                        for name in from_list {
                            e.headers.remove(name);
                        }
                        if let Some(m) = matching {
                            e.headers.retain(|name, _| !m.is_match(name));
                        }
                    }
                }
                Step::RegexExtractor { regex, serializers } => {
                    for e in &mut events {
                        // Matched as UTF-8 text (invalid bytes replaced), as Flume does.
                        let text = String::from_utf8_lossy(&e.body);
                        let Some(found) = regex.captures(&text) else {
                            continue;
                        };
                        // Group i goes to serializer i; groups beyond the serializers are
                        // ignored, and so is a group that took no part in the match.
                        for (group, serializer) in found.iter().skip(1).zip(serializers) {
                            let Some(group) = group else { continue };
                            let value = match &serializer.kind {
                                SerializerKind::PassThrough => group.as_str().to_owned(),
                                SerializerKind::Millis {
                                    pattern,
                                    chrono_format,
                                } => match parse_millis(group.as_str(), chrono_format) {
                                    Some(ms) => ms.to_string(),
                                    None => {
                                        tracing::debug!(
                                            text = group.as_str(),
                                            pattern = pattern.as_str(),
                                            header = serializer.header.as_str(),
                                            "regex_extractor: no date in the pattern, header not set"
                                        );
                                        continue;
                                    }
                                },
                            };
                            e.headers.insert(serializer.header.clone(), value);
                        }
                    }
                }
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interceptors_apply_in_order_with_flume_defaults() {
        let chain = Chain::new(&[
            InterceptorConfig::Static {
                key: "dc".into(),
                value: "eu".into(),
                preserve_existing: true,
            },
            InterceptorConfig::Timestamp {
                header: "timestamp".into(),
                preserve_existing: false,
            },
            InterceptorConfig::RegexFilter {
                regex: regex::Regex::new("^keep").unwrap(),
                exclude: false,
            },
            InterceptorConfig::Uuid {
                header: "id".into(),
                preserve_existing: true,
                prefix: "w-".into(),
            },
            InterceptorConfig::Host {
                header: "host".into(),
                use_ip: false,
                preserve_existing: false,
            },
        ]);
        let out = chain.apply(vec![
            Event::new("keep 1").with_header("dc", "us"),
            Event::new("drop 2"),
            Event::new("keep 3").with_header("id", "given"),
        ]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].headers["dc"], "us", "static preserves by default");
        assert_eq!(out[1].headers["dc"], "eu");
        assert!(out[0].headers["timestamp"].parse::<u64>().unwrap() > 1_600_000_000_000);
        assert!(out[0].headers["id"].starts_with("w-"));
        assert_eq!(out[1].headers["id"], "given");
        assert!(!out[0].headers["host"].is_empty());
    }
}

#[cfg(test)]
mod flume_body_and_header_interceptors {
    use super::*;
    use crate::config::{AgentConfig, Properties, java_date_format};
    use chrono::NaiveDate;
    use std::path::Path;

    /// The interceptor chain of source r1 configured by `lines` (keys under
    /// `a.sources.r1.interceptors.`), read as the agent reads a Flume file.
    fn chain(lines: &str) -> Chain {
        let text = format!(
            "a.sources = r1\na.channels = c1\na.sinks = k1\n\
             a.sources.r1.type = netcat\na.sources.r1.bind = 127.0.0.1\n\
             a.sources.r1.port = 4444\na.sources.r1.channels = c1\n\
             a.channels.c1.type = memory\na.sinks.k1.type = null\na.sinks.k1.channel = c1\n\
             a.sources.r1.interceptors = i1\n{}",
            lines
                .lines()
                .map(|l| format!("a.sources.r1.interceptors.i1.{}\n", l.trim()))
                .collect::<String>()
        );
        let props = Properties::parse(Path::new("t.properties"), text.as_bytes()).unwrap();
        let config = AgentConfig::from_properties(&props, "a").unwrap();
        Chain::new(&config.sources[0].interceptors)
    }

    fn one(chain: &Chain, event: Event) -> Event {
        let mut out = chain.apply(vec![event]);
        assert_eq!(out.len(), 1);
        out.remove(0)
    }

    fn headers(e: &Event) -> Vec<(&str, &str)> {
        e.headers.iter().collect()
    }

    #[test]
    fn millis_are_parsed_in_local_time_unless_the_pattern_has_an_offset() {
        let local = |y, mo, d, h, mi, s| {
            chrono::Local
                .from_local_datetime(
                    &NaiveDate::from_ymd_opt(y, mo, d)
                        .unwrap()
                        .and_hms_opt(h, mi, s)
                        .unwrap(),
                )
                .earliest()
                .unwrap()
                .timestamp_millis()
        };
        let millis = |text: &str, java: &str| parse_millis(text, &java_date_format(java).unwrap());
        assert_eq!(
            millis("2024-03-05 14:15:16", "yyyy-MM-dd HH:mm:ss"),
            Some(local(2024, 3, 5, 14, 15, 16))
        );
        assert_eq!(
            millis("2024-03-05T14:15:16.789+0100", "yyyy-MM-dd'T'HH:mm:ss.SSSZ"),
            Some(1_709_644_516_789),
            "13:15:16.789 UTC"
        );
        // Joda's `Z` reads the literal `Z` of ISO 8601 stamps as UTC (audit 27).
        assert_eq!(
            millis("2020-01-02T03:04:05.678Z", "yyyy-MM-dd'T'HH:mm:ss.SSSZ"),
            Some(1_577_934_245_678)
        );
        assert_eq!(
            millis(
                "2024-03-05T14:15:16.789+01:00",
                "yyyy-MM-dd'T'HH:mm:ss.SSSZ"
            ),
            Some(1_709_644_516_789)
        );
        // As Joda-Time: what the pattern leaves out is 1970-01-01T00:00.
        assert_eq!(millis("01:30", "HH:mm"), Some(local(1970, 1, 1, 1, 30, 0)));
        assert_eq!(
            millis("05/2024", "MM/yyyy"),
            Some(local(2024, 5, 1, 0, 0, 0))
        );
        assert_eq!(
            millis("3:04 PM", "h:mm a"),
            Some(local(1970, 1, 1, 15, 4, 0))
        );
        assert_eq!(
            millis("24-01-02", "yy-MM-dd"),
            Some(local(2024, 1, 2, 0, 0, 0))
        );
        assert_eq!(millis("2024-13-01", "yyyy-MM-dd"), None);
        assert_eq!(millis("2024-01-01 extra", "yyyy-MM-dd"), None);
        assert_eq!(millis("yesterday", "yyyy-MM-dd"), None);
    }

    #[test]
    fn search_replace_replaces_every_match_with_javas_replacement_syntax() {
        let mask = chain("type = search_replace\nsearchPattern = \\\\d\nreplaceString = #");
        let e = one(&mask, Event::new("card 1234 pin 99").with_header("h", "7"));
        assert_eq!(&e.body[..], b"card #### pin ##");
        assert_eq!(headers(&e), [("h", "7")], "headers are left alone");

        let no_match = Event::new("no digits here");
        assert_eq!(one(&mask, no_match.clone()), no_match);

        // A body that is not UTF-8 is left as it is, not decoded with U+FFFD and re-encoded.
        let binary = Event::new(&b"\xff\xfe 12"[..]);
        assert_eq!(one(&mask, binary.clone()), binary);

        // replaceString absent: matches are deleted.
        let delete = chain("type = search_replace\nsearchPattern = ^INFO:\\\\s*");
        assert_eq!(&one(&delete, Event::new("INFO: up")).body[..], b"up");

        // Java's `$1abc` and `\$`, written as Flume users write them in a properties file.
        let groups = chain(
            "type = org.apache.flume.interceptor.SearchAndReplaceInterceptor$Builder\n\
             searchPattern = (\\\\w+)=(\\\\d+)\nreplaceString = $2abc \\\\$$1",
        );
        assert_eq!(
            &one(&groups, Event::new("price=10")).body[..],
            b"10abc $price"
        );
    }

    #[test]
    fn remove_header_removes_by_name_by_list_and_by_whole_name_match() {
        let remove =
            chain("type = remove_header\nwithName = a\nfromList = b , c,d\nmatching = tmp.*");
        let e = one(
            &remove,
            ["a", "b", "c", "d", "keep", "tmp", "tmp1", "my-tmp", "d2"]
                .into_iter()
                .fold(Event::new("body"), |e, h| e.with_header(h, "v")),
        );
        // `matching` must match the whole name (Java's matches()): `my-tmp` stays.
        assert_eq!(headers(&e), [("d2", "v"), ("keep", "v"), ("my-tmp", "v")]);
        assert_eq!(&e.body[..], b"body");

        let separator = chain(
            "type = org.apache.flume.interceptor.RemoveHeaderInterceptor$Builder\n\
             fromList = x;y\nfromListSeparator = ;",
        );
        let e = one(
            &separator,
            Event::new("")
                .with_header("x", "1")
                .with_header("y", "2")
                .with_header("x;y", "3"),
        );
        assert_eq!(headers(&e), [("x;y", "3")]);

        // Nothing to remove is no error: the event passes unchanged, as in Flume.
        let nothing = chain("type = remove_header");
        let e = Event::new("b").with_header("a", "1");
        assert_eq!(one(&nothing, e.clone()), e);
    }

    #[test]
    fn regex_extractor_sets_a_header_per_group_as_flume_does() {
        // Flume's documented example: more groups than serializers, the extra one is ignored.
        let digits = chain(
            "type = regex_extractor\nregex = (\\\\d):(\\\\d):(\\\\d)\nserializers = s1 s2\n\
             serializers.s1.name = one\nserializers.s2.name = two",
        );
        let e = one(
            &digits,
            Event::new("1:2:3.4foobar5").with_header("one", "old"),
        );
        assert_eq!(headers(&e), [("one", "1"), ("two", "2")]);
        assert_eq!(&e.body[..], b"1:2:3.4foobar5");
        // Only the first match counts.
        let e = one(&digits, Event::new("x 7:8:9 then 4:5:6"));
        assert_eq!(headers(&e), [("one", "7"), ("two", "8")]);
        // No match: unchanged.
        let e = Event::new("no match").with_header("h", "v");
        assert_eq!(one(&digits, e.clone()), e);

        // A group that took no part in the match sets nothing.
        let level = chain(
            "type = org.apache.flume.interceptor.RegexExtractorInterceptor$Builder\n\
             regex = (WARN)|(ERROR)\nserializers = w e\nserializers.w.name = warn\n\
             serializers.e.name = error\nserializers.e.type = DEFAULT",
        );
        assert_eq!(
            headers(&one(&level, Event::new("an ERROR"))),
            [("error", "ERROR")]
        );

        // The millis serializer; text it cannot parse leaves its header unset.
        let millis = chain(
            "type = regex_extractor\nregex = ^(\\\\S+) (\\\\w+)\nserializers = t l\n\
             serializers.t.name = ts\n\
             serializers.t.type = org.apache.flume.interceptor.RegexExtractorInterceptorMillisSerializer\n\
             serializers.t.pattern = yyyy-MM-dd'T'HH:mm:ssZ\n\
             serializers.l.name = level\n\
             serializers.l.type = org.apache.flume.interceptor.RegexExtractorInterceptorPassThroughSerializer",
        );
        let e = one(&millis, Event::new("2024-03-05T14:15:16+0000 INFO up"));
        assert_eq!(headers(&e), [("level", "INFO"), ("ts", "1709648116000")]);
        let e = one(&millis, Event::new("yesterday WARN slow"));
        assert_eq!(headers(&e), [("level", "WARN")]);
    }
}
