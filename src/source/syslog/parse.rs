//! One syslog message (RFC 5424 or RFC 3164) → one Flume event, with the semantics of Flume's
//! `SyslogUtils`, which users' routing and storage already depend on:
//!
//! - A message whose `<PRI>` is missing or malformed is kept whole as the body with
//!   `Facility`/`Severity` 0 and `flume.syslog.status = Invalid`.
//! - A valid `<PRI>` followed by a recognised header sets `Facility`, `Severity`, `priority`,
//!   `version` (RFC 5424), `timestamp` (epoch milliseconds) and `host`, and the body is the
//!   message *after* the header, byte for byte (for RFC 5424 that still holds APP-NAME, PROCID,
//!   MSGID and the structured data, exactly as sent); `keepFields` puts header parts back in front.
//! - A valid `<PRI>` with a header that is neither format sets only `Facility`/`Severity` and
//!   keeps the whole message as the body, without a status (as Flume does). So does a recognised
//!   header followed by nothing.
//! - A message cut at `eventSize` is parsed as far as it goes and marked `Incomplete`.
//!
//! Hand-written rather than a crate: Flume's body is the raw remainder after HOSTNAME, so the
//! parser must report *where* the header ends; the syslog crates (`syslog_loose`,
//! `syslog_rfc5424`) return decomposed fields instead (re-serialising structured data or a 3164
//! tag would not give the bytes back), and `syslog_loose` accepts nearly any input, so it cannot
//! tell Flume's Invalid and unrecognised cases apart. Dates are chrono's.
//!
//! Where weir is deliberately stricter or looser than Flume's regular expressions:
//! PRI above 191 is Invalid (Flume accepts up to 999); RFC 5424 host names may be any printable
//! ASCII (IPv6 addresses), RFC 3164 ones also allow `:`; bodies may contain line breaks (octet
//! counting carries them); a `-` stands in for a nil timestamp or host kept by `keepFields`
//! (Flume writes `null`); an RFC 3164 date takes the most recent year that does not put it more
//! than a day in the future (Flume: a window of one month ahead, eleven months back).

use bytes::Bytes;
use chrono::{DateTime, Datelike, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, Offset};
use chrono::{TimeZone, Utc};

use crate::config::KeepFields;
use crate::event::{Event, Headers};

pub const FACILITY: &str = "Facility";
pub const SEVERITY: &str = "Severity";
pub const PRIORITY: &str = "priority";
pub const VERSION: &str = "version";
/// The names `SyslogParser` (multiport) gives them: Flume's `SyslogUtils.SYSLOG_PRIORITY` and
/// `SYSLOG_VERSION`, where `SyslogUtils.buildEvent` writes the lowercase words.
pub const PARSER_PRIORITY: &str = "Priority";
pub const PARSER_VERSION: &str = "Version";
pub const TIMESTAMP: &str = "timestamp";
pub const HOST: &str = "host";
pub const STATUS: &str = "flume.syslog.status";
pub const INVALID: &str = "Invalid";
pub const INCOMPLETE: &str = "Incomplete";

/// What the parser made of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Rfc5424,
    Rfc3164,
    /// Valid `<PRI>`, but the rest is neither header format: the whole message is the body.
    Unrecognised,
    /// No valid `<PRI>`, and why: the event carries `flume.syslog.status = Invalid`.
    Invalid(&'static str),
}

/// The parts of a recognised header, as positions in the message.
struct Header<'a> {
    priority: &'a [u8],
    version: Option<&'a [u8]>,
    /// The timestamp as written; `None` is the NILVALUE `-`.
    timestamp: Option<&'a [u8]>,
    millis: Option<i64>,
    host: Option<&'a [u8]>,
    /// Where the message after the header starts.
    rest: usize,
    rfc5424: bool,
}

/// Which of Flume's two syslog parsers a source follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// `SyslogUtils` (`syslogtcp`, `syslogudp`): the module doc's rules.
    SyslogUtils,
    /// `SyslogParser` (`multiport_syslogtcp`), which differs: RFC 3164 dates (and RFC 5424 ones
    /// without an offset) are UTC, not the agent's zone; a `-` timestamp is the time the
    /// message came, a `-` host is `host = -`; the priority and version headers are
    /// `Priority` and `Version`; and a message it cannot read (no valid `<PRI>`, or a header
    /// of neither format) gets `flume.syslog.status = Invalid` alone, with no `Facility` or
    /// `Severity` (audits 27, 29).
    SyslogParser,
}

/// Parses messages for one source: which fields to keep and the time zone of RFC 3164 dates
/// (and of RFC 5424 ones without an offset).
pub struct Parser<Tz: TimeZone> {
    keep: KeepFields,
    tz: Tz,
    flavor: Flavor,
}

impl<Tz: TimeZone> Parser<Tz> {
    pub fn new(keep: KeepFields, tz: Tz) -> Self {
        Parser {
            keep,
            tz,
            flavor: Flavor::SyslogUtils,
        }
    }

    /// The same parser following `flavor`.
    pub fn with_flavor(mut self, flavor: Flavor) -> Self {
        self.flavor = flavor;
        self
    }

    /// A message `SyslogParser` cannot read: its status alone, the message whole as the body.
    fn unreadable(msg: &[u8], reason: &'static str) -> (Event, Outcome) {
        let mut fields = Fields::default();
        fields.push(STATUS, INVALID);
        let event = Event {
            headers: fields.headers(),
            body: Bytes::copy_from_slice(msg),
        };
        (event, Outcome::Invalid(reason))
    }

    /// The event for `msg` (framing already removed). `truncated` marks a message cut at
    /// `eventSize`; `now` anchors the year of RFC 3164 dates.
    pub fn event(&self, msg: &[u8], truncated: bool, now: DateTime<Utc>) -> (Event, Outcome) {
        let mut fields = Fields::default();
        let parser_flavor = self.flavor == Flavor::SyslogParser;
        let (pri_end, pri) = match priority(msg) {
            Ok(p) => p,
            Err(reason) if parser_flavor => return Self::unreadable(msg, reason),
            Err(reason) => {
                fields.push(FACILITY, "0");
                fields.push(SEVERITY, "0");
                fields.push(STATUS, INVALID);
                let event = Event {
                    headers: fields.headers(),
                    body: Bytes::copy_from_slice(msg),
                };
                return (event, Outcome::Invalid(reason));
            }
        };
        fields.push(FACILITY, SMALL_NUMBERS[usize::from(pri / 8)]);
        fields.push(SEVERITY, SMALL_NUMBERS[usize::from(pri % 8)]);
        if truncated {
            fields.push(STATUS, INCOMPLETE);
        }
        let digits = &msg[1..pri_end - 1];
        let header = if parser_flavor {
            rfc5424(msg, pri_end, digits, &Utc).or_else(|| rfc3164(msg, pri_end, digits, &Utc, now))
        } else {
            rfc5424(msg, pri_end, digits, &self.tz)
                .or_else(|| rfc3164(msg, pri_end, digits, &self.tz, now))
        };
        let Some(mut h) = header else {
            if parser_flavor {
                return Self::unreadable(msg, "neither an RFC 5424 nor an RFC 3164 header");
            }
            let event = Event {
                headers: fields.headers(),
                body: Bytes::copy_from_slice(msg),
            };
            return (event, Outcome::Unrecognised);
        };
        let mut millis = itoa::Buffer::new();
        let (priority_name, version_name) = if parser_flavor {
            // The relay's time for a nil timestamp, and the host as written.
            if h.timestamp.is_none() {
                h.millis = Some(now.timestamp_millis());
            }
            if h.host.is_none() {
                h.host = Some(b"-");
            }
            (PARSER_PRIORITY, PARSER_VERSION)
        } else {
            (PRIORITY, VERSION)
        };
        let (priority, version, host) =
            (ascii(h.priority), h.version.map(ascii), h.host.map(ascii));
        fields.push(priority_name, &priority);
        if let Some(v) = &version {
            fields.push(version_name, v);
        }
        if let Some(ms) = h.millis {
            fields.push(TIMESTAMP, millis.format(ms));
        }
        if let Some(host) = &host {
            fields.push(HOST, host);
        }
        let headers = fields.headers();
        let rest = &msg[h.rest..];
        let body = if rest.is_empty() || self.keep.all {
            // Flume keeps the whole message when nothing follows the header.
            Bytes::copy_from_slice(msg)
        } else if !self.keep.any() {
            Bytes::copy_from_slice(rest)
        } else {
            let mut b = Vec::with_capacity(msg.len() + 2);
            if self.keep.priority {
                b.push(b'<');
                b.extend_from_slice(h.priority);
                b.push(b'>');
            }
            if self.keep.version
                && let Some(v) = h.version
            {
                b.extend_from_slice(v);
                b.push(b' ');
            }
            if self.keep.timestamp {
                b.extend_from_slice(h.timestamp.unwrap_or(b"-"));
                b.push(b' ');
            }
            if self.keep.hostname {
                b.extend_from_slice(h.host.unwrap_or(b"-"));
                b.push(b' ');
            }
            b.extend_from_slice(rest);
            Bytes::from(b)
        };
        let outcome = if h.rfc5424 {
            Outcome::Rfc5424
        } else {
            Outcome::Rfc3164
        };
        (Event { headers, body }, outcome)
    }
}

/// Header parts are checked to be ASCII before they get here, so this borrows.
fn ascii(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// `Facility` (0–23) and `Severity` (0–7) values, without formatting a number per event. Any
/// `u8 / 8` indexes it, whatever PRI `priority` were to let through.
const SMALL_NUMBERS: [&str; 32] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
    "17", "18", "19", "20", "21", "22", "23", "24", "25", "26", "27", "28", "29", "30", "31",
];

/// The headers of one event, gathered without allocating and then packed in one go
/// ([`Headers::from_pairs`]). At most seven: Facility, Severity, status, priority, version,
/// timestamp, host.
#[derive(Default)]
struct Fields<'a> {
    pairs: [(&'a str, &'a str); 7],
    len: usize,
}

impl<'a> Fields<'a> {
    fn push(&mut self, key: &'a str, value: &'a str) {
        self.pairs[self.len] = (key, value);
        self.len += 1;
    }

    fn headers(mut self) -> Headers {
        Headers::from_pairs(&mut self.pairs[..self.len])
    }
}

/// `<PRI>`: returns where it ends and its value.
fn priority(msg: &[u8]) -> Result<(usize, u8), &'static str> {
    if msg.is_empty() {
        return Err("empty message");
    }
    if msg[0] != b'<' {
        return Err("it does not start with <PRI>");
    }
    let digits = msg[1..]
        .iter()
        .take(4)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 {
        return Err("<PRI> holds no number");
    }
    if digits > 3 {
        return Err("<PRI> has more than 3 digits");
    }
    if msg.get(1 + digits) != Some(&b'>') {
        return Err("<PRI> is not closed by '>'");
    }
    let value = msg[1..1 + digits]
        .iter()
        .fold(0u32, |v, d| v * 10 + u32::from(d - b'0'));
    if value > 191 {
        return Err("<PRI> is above 191");
    }
    Ok((2 + digits, value as u8))
}

/// The bytes from `at` up to the next space (or the end), and where they end.
fn token(msg: &[u8], at: usize) -> (&[u8], usize) {
    let rest = msg.get(at..).unwrap_or_default();
    let len = rest.iter().position(|b| *b == b' ').unwrap_or(rest.len());
    (&rest[..len], at + len)
}

/// After the host: a space and the message, or nothing at all.
fn after_host(msg: &[u8], end: usize) -> usize {
    if end < msg.len() { end + 1 } else { end }
}

/// RFC 5424: `[VERSION SP] (TIMESTAMP | -) SP (HOSTNAME | -) [SP MSG]`. The version is optional
/// as in Flume, so RFC 3339-stamped messages without one (rsyslog's forward format) parse too.
fn rfc5424<'a, Tz: TimeZone>(
    msg: &'a [u8],
    at: usize,
    priority: &'a [u8],
    tz: &Tz,
) -> Option<Header<'a>> {
    let digits = msg[at..]
        .iter()
        .take(4)
        .take_while(|b| b.is_ascii_digit())
        .count();
    let with_version = if (1..=3).contains(&digits) && msg.get(at + digits) == Some(&b' ') {
        rfc5424_from(msg, at + digits + 1, priority, tz)
    } else {
        None
    };
    match with_version {
        Some(mut h) => {
            h.version = Some(&msg[at..at + digits]);
            Some(h)
        }
        None => rfc5424_from(msg, at, priority, tz),
    }
}

fn rfc5424_from<'a, Tz: TimeZone>(
    msg: &'a [u8],
    at: usize,
    priority: &'a [u8],
    tz: &Tz,
) -> Option<Header<'a>> {
    let (ts, end) = token(msg, at);
    let (timestamp, millis) = if ts == b"-" {
        (None, None)
    } else {
        (Some(ts), rfc3339_millis(ts, tz)?)
    };
    if msg.get(end) != Some(&b' ') {
        return None;
    }
    let (host, end) = token(msg, end + 1);
    let host = match host {
        b"-" => None,
        h if (1..=255).contains(&h.len()) && h.iter().all(|b| (33..=126).contains(b)) => Some(h),
        _ => return None,
    };
    Some(Header {
        priority,
        version: None,
        timestamp,
        millis,
        host,
        rest: after_host(msg, end),
        rfc5424: true,
    })
}

fn number(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0u32, |v, d| v * 10 + u32::from(d - b'0')))
}

/// An RFC 3339 timestamp: `None` when it is not shaped like one (the header is then not
/// RFC 5424), `Some(None)` when it is shaped like one but names no real time (the header
/// parses, without a `timestamp` header, as in Flume).
fn rfc3339_millis<Tz: TimeZone>(ts: &[u8], tz: &Tz) -> Option<Option<i64>> {
    // YYYY-MM-DDTHH:MM:SS
    if ts.len() < 19
        || ts[4] != b'-'
        || ts[7] != b'-'
        || !matches!(ts[10], b'T' | b't')
        || ts[13] != b':'
        || ts[16] != b':'
    {
        return None;
    }
    let year = number(&ts[0..4])?;
    let month = number(&ts[5..7])?;
    let day = number(&ts[8..10])?;
    let hour = number(&ts[11..13])?;
    let minute = number(&ts[14..16])?;
    let second = number(&ts[17..19])?;
    let mut rest = &ts[19..];
    let mut milli = 0;
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|b| b.is_ascii_digit()).count();
        if !(1..=9).contains(&n) {
            return None;
        }
        milli = frac[..n]
            .iter()
            .chain(std::iter::repeat(&b'0'))
            .take(3)
            .fold(0u32, |v, d| v * 10 + u32::from(d - b'0'));
        rest = &frac[n..];
    }
    let offset = match rest {
        [] => None,
        [b'Z' | b'z'] => Some(0),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = number(&[*h1, *h2])?;
            let m = number(&[*m1, *m2])?;
            if h > 23 || m > 59 {
                return Some(None);
            }
            let secs = (h * 3600 + m * 60) as i32;
            Some(if *sign == b'-' { -secs } else { secs })
        }
        _ => return None,
    };
    // A leap second is read as the last millisecond before it.
    let (second, milli) = if second == 60 {
        (59, 999)
    } else {
        (second, milli)
    };
    let Some(naive) = NaiveDate::from_ymd_opt(year as i32, month, day)
        .and_then(|d| d.and_hms_milli_opt(hour, minute, second, milli))
    else {
        return Some(None);
    };
    Some(match offset {
        Some(secs) => FixedOffset::east_opt(secs)
            .and_then(|o| o.from_local_datetime(&naive).single())
            .map(|t| t.timestamp_millis()),
        None => Some(local_millis(&naive, tz)),
    })
}

/// A wall-clock time in `tz`: the earlier instant when the clock went back, and the offset in
/// force before a gap when the clock went forward over it.
fn local_millis<Tz: TimeZone>(naive: &NaiveDateTime, tz: &Tz) -> i64 {
    match tz.from_local_datetime(naive) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.timestamp_millis(),
        LocalResult::None => {
            let offset = tz.offset_from_utc_datetime(naive).fix();
            (*naive - offset).and_utc().timestamp_millis()
        }
    }
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// RFC 3164: `Mmm dd hh:mm:ss SP HOSTNAME [SP MSG]`, the day space-padded or not.
fn rfc3164<'a, Tz: TimeZone>(
    msg: &'a [u8],
    at: usize,
    priority: &'a [u8],
    tz: &Tz,
    now: DateTime<Utc>,
) -> Option<Header<'a>> {
    let m = msg.get(at..at + 3)?;
    if !(m[0].is_ascii_uppercase() && m[1].is_ascii_lowercase() && m[2].is_ascii_lowercase()) {
        return None;
    }
    let mut p = at + 3;
    if msg.get(p) != Some(&b' ') {
        return None;
    }
    p += 1;
    if msg.get(p) == Some(&b' ') {
        p += 1;
    }
    let day_len = msg[p..]
        .iter()
        .take(3)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if !(1..=2).contains(&day_len) {
        return None;
    }
    let day = number(&msg[p..p + day_len])?;
    p += day_len;
    // " hh:mm:ss "
    let t = msg.get(p..p + 10)?;
    if t[0] != b' ' || t[3] != b':' || t[6] != b':' || t[9] != b' ' {
        return None;
    }
    let hour = number(&t[1..3])?;
    let minute = number(&t[4..6])?;
    let second = number(&t[7..9])?;
    let ts_end = p + 9;
    let (host, end) = token(msg, p + 10);
    let host_ok = (1..=255).contains(&host.len())
        && host
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@:%".contains(b))
        // "tag:" is a TAG, not a host: this message has no HOSTNAME.
        && host.last() != Some(&b':');
    if !host_ok {
        return None;
    }
    let month = MONTHS
        .iter()
        .position(|name| &name[..] == m)
        .map(|i| i as u32 + 1);
    let millis = month.and_then(|month| rfc3164_millis(month, day, hour, minute, second, tz, now));
    Some(Header {
        priority,
        version: None,
        timestamp: Some(&msg[at..ts_end]),
        millis,
        host: Some(host),
        rest: after_host(msg, end),
        rfc5424: false,
    })
}

/// The year RFC 3164 leaves out: the most recent of next, this and last year (in `tz`) that
/// does not put the time more than a day after `now`. A day absorbs senders' clock skew; next
/// year covers a sender slightly ahead at midnight on 31 December.
fn rfc3164_millis<Tz: TimeZone>(
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    tz: &Tz,
    now: DateTime<Utc>,
) -> Option<i64> {
    let year = now.with_timezone(tz).year();
    let limit = now.timestamp_millis() + 86_400_000;
    [year + 1, year, year - 1].into_iter().find_map(|y| {
        let naive = NaiveDate::from_ymd_opt(y, month, day)?.and_hms_opt(hour, minute, second)?;
        let ms = local_millis(&naive, tz);
        (ms <= limit).then_some(ms)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn ms(rfc3339: &str) -> String {
        at(rfc3339).timestamp_millis().to_string()
    }

    fn parse_with(keep: KeepFields, msg: &str, now: &str) -> (Event, Outcome) {
        Parser::new(keep, Utc).event(msg.as_bytes(), false, at(now))
    }

    /// `multiport_syslogtcp` follows Flume's `SyslogParser`, not `SyslogUtils` (audit 27): the
    /// relay's time for a nil timestamp (so an hdfs sink with time escapes does not stop on
    /// it), RFC 3164 dates in UTC whatever the agent's zone, `Priority` and `Version`, `host`
    /// `-` for a nil host, and a message it cannot read marked Invalid with no Facility or
    /// Severity.
    #[test]
    fn the_multiport_flavor_follows_flumes_syslog_parser() {
        let now = "2026-11-29T02:30:00Z";
        // The agent's zone is UTC+5 here: SyslogUtils would read 3164 dates in it.
        let zone = FixedOffset::east_opt(5 * 3600).unwrap();
        let multiport = |msg: &str| {
            Parser::new(KeepFields::NONE, zone)
                .with_flavor(Flavor::SyslogParser)
                .event(msg.as_bytes(), false, at(now))
        };
        let headers = |e: &Event| -> Vec<(String, String)> {
            e.headers
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        };
        let (e, o) = multiport("<165>1 - myhost app - - - nil timestamp");
        assert_eq!(o, Outcome::Rfc5424);
        assert_eq!(e.headers.get(TIMESTAMP), Some(ms(now).as_str()));
        assert_eq!(e.headers.get(PRIORITY), None);
        assert_eq!(e.headers.get(PARSER_PRIORITY), Some("165"));
        assert_eq!(e.headers.get(PARSER_VERSION), Some("1"));
        assert_eq!(e.headers.get(HOST), Some("myhost"));
        let (e, _) = multiport("<165>1 - - app - - - no host either");
        assert_eq!(e.headers.get(HOST), Some("-"));
        let (e, _) = multiport("<34>Nov 29 02:00:00 h1 msg");
        assert_eq!(
            e.headers.get(TIMESTAMP),
            Some(ms("2026-11-29T02:00:00Z").as_str())
        );
        assert_eq!(&e.body[..], b"msg");
        for unreadable in ["<14>hello no header", "no priority", "<999>x"] {
            let (e, o) = multiport(unreadable);
            assert!(matches!(o, Outcome::Invalid(_)), "{unreadable}: {o:?}");
            assert_eq!(
                headers(&e),
                [(STATUS.to_owned(), INVALID.to_owned())],
                "{unreadable}"
            );
            assert_eq!(&e.body[..], unreadable.as_bytes());
        }
        // SyslogUtils, for comparison: the zone's reading, and no timestamp for `-`.
        let utils = Parser::new(KeepFields::NONE, zone);
        let (e, _) = utils.event(b"<34>Nov 29 02:00:00 h1 msg", false, at(now));
        assert_eq!(
            e.headers.get(TIMESTAMP),
            Some(ms("2026-11-28T21:00:00Z").as_str())
        );
        let (e, _) = utils.event(b"<165>1 - myhost app - - - x", false, at(now));
        assert_eq!(e.headers.get(TIMESTAMP), None);
    }

    fn parse(msg: &str) -> (Event, Outcome) {
        parse_with(KeepFields::NONE, msg, "2026-06-15T12:00:00Z")
    }

    fn h<'a>(e: &'a Event, k: &str) -> Option<&'a str> {
        e.headers.get(k)
    }

    fn body(e: &Event) -> &str {
        std::str::from_utf8(&e.body).unwrap()
    }

    #[test]
    fn rfc5424_with_structured_data() {
        let (e, o) = parse(
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\"] An application event",
        );
        assert_eq!(o, Outcome::Rfc5424);
        assert_eq!(h(&e, FACILITY), Some("20"));
        assert_eq!(h(&e, SEVERITY), Some("5"));
        assert_eq!(h(&e, PRIORITY), Some("165"));
        assert_eq!(h(&e, VERSION), Some("1"));
        assert_eq!(
            h(&e, TIMESTAMP),
            Some(ms("2003-10-11T22:14:15.003Z").as_str())
        );
        assert_eq!(h(&e, HOST), Some("mymachine.example.com"));
        assert_eq!(h(&e, STATUS), None);
        assert_eq!(
            body(&e),
            "evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\"] An application event"
        );
        assert_eq!(e.headers.len(), 6);
    }

    #[test]
    fn rfc5424_without_structured_data_and_with_offsets() {
        let (e, o) =
            parse("<34>1 2003-10-11T22:14:15.003-07:00 host.example su - ID47 - 'su root' failed");
        assert_eq!(o, Outcome::Rfc5424);
        assert_eq!(
            h(&e, TIMESTAMP),
            Some(ms("2003-10-12T05:14:15.003Z").as_str())
        );
        assert_eq!(h(&e, HOST), Some("host.example"));
        assert_eq!(body(&e), "su - ID47 - 'su root' failed");
        // Microseconds are cut to milliseconds; no fraction at all; a lower-case zone letter.
        let (e, _) = parse("<13>1 2003-08-24T05:14:15.000003+05:30 h m");
        assert_eq!(h(&e, TIMESTAMP), Some(ms("2003-08-23T23:44:15Z").as_str()));
        let (e, _) = parse("<13>1 2003-08-24T05:14:15z h m");
        assert_eq!(h(&e, TIMESTAMP), Some(ms("2003-08-24T05:14:15Z").as_str()));
        // No offset: the source's time zone (UTC here).
        let (e, _) = parse("<13>1 2003-08-24T05:14:15.5 h m");
        assert_eq!(
            h(&e, TIMESTAMP),
            Some(ms("2003-08-24T05:14:15.5Z").as_str())
        );
        // An IPv6 host, as logger sends when it has no name.
        let (e, _) = parse("<13>1 2003-08-24T05:14:15Z ::1 app - - - hi");
        assert_eq!(h(&e, HOST), Some("::1"));
        assert_eq!(body(&e), "app - - - hi");
    }

    #[test]
    fn rfc5424_nil_values() {
        let (e, o) = parse("<13>1 - - - - - - msg");
        assert_eq!(o, Outcome::Rfc5424);
        assert_eq!(h(&e, TIMESTAMP), None);
        assert_eq!(h(&e, HOST), None);
        assert_eq!(h(&e, VERSION), Some("1"));
        assert_eq!(body(&e), "- - - - msg");
        // Without a version (rsyslog's forward format).
        let (e, o) = parse("<13>2024-02-29T10:00:00+00:00 web1 nginx: GET /");
        assert_eq!(o, Outcome::Rfc5424);
        assert_eq!(h(&e, VERSION), None);
        assert_eq!(h(&e, HOST), Some("web1"));
        assert_eq!(body(&e), "nginx: GET /");
        // Shaped like a date, but not one: parsed without a timestamp, as Flume does.
        let (e, o) = parse("<13>1 2003-13-11T22:14:15Z host app - - - hi");
        assert_eq!(o, Outcome::Rfc5424);
        assert_eq!(h(&e, TIMESTAMP), None);
        assert_eq!(body(&e), "app - - - hi");
    }

    #[test]
    fn rfc3164_in_the_sources_time_zone() {
        let (e, o) = parse("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick");
        assert_eq!(o, Outcome::Rfc3164);
        assert_eq!(h(&e, FACILITY), Some("4"));
        assert_eq!(h(&e, SEVERITY), Some("2"));
        assert_eq!(h(&e, PRIORITY), Some("34"));
        assert_eq!(h(&e, VERSION), None);
        // October is more than a day after 15 June 2026: last year.
        assert_eq!(h(&e, TIMESTAMP), Some(ms("2025-10-11T22:14:15Z").as_str()));
        assert_eq!(h(&e, HOST), Some("mymachine"));
        assert_eq!(body(&e), "su: 'su root' failed for lonvick");
        // Space-padded day, in a zone two hours east of UTC.
        let tz = FixedOffset::east_opt(7200).unwrap();
        let (e, _) = Parser::new(KeepFields::NONE, tz).event(
            b"<13>Feb  5 10:00:00 10.0.0.1 app[12]: x",
            false,
            at("2026-06-15T12:00:00Z"),
        );
        assert_eq!(h(&e, TIMESTAMP), Some(ms("2026-02-05T08:00:00Z").as_str()));
        assert_eq!(h(&e, HOST), Some("10.0.0.1"));
        assert_eq!(body(&e), "app[12]: x");
    }

    #[test]
    fn rfc3164_year_across_new_year() {
        let stamp = |msg: &str, now: &str| {
            let (e, _) = parse_with(KeepFields::NONE, msg, now);
            h(&e, TIMESTAMP).map(str::to_owned)
        };
        // Received just after midnight: yesterday was last year.
        assert_eq!(
            stamp("<13>Dec 31 23:59:50 h m", "2027-01-01T00:00:30Z"),
            Some(ms("2026-12-31T23:59:50Z"))
        );
        // A sender a little ahead, just before midnight: next year.
        assert_eq!(
            stamp("<13>Jan  1 00:00:05 h m", "2026-12-31T23:59:59Z"),
            Some(ms("2027-01-01T00:00:05Z"))
        );
        // Less than a day ahead stays this year; more than a day ahead is last year's.
        assert_eq!(
            stamp("<13>Jun 16 10:00:00 h m", "2026-06-15T12:00:00Z"),
            Some(ms("2026-06-16T10:00:00Z"))
        );
        assert_eq!(
            stamp("<13>Jun 17 10:00:00 h m", "2026-06-15T12:00:00Z"),
            Some(ms("2025-06-17T10:00:00Z"))
        );
        // Not a month: the header still parses, without a timestamp.
        assert_eq!(
            stamp("<13>Foo 17 10:00:00 h m", "2026-06-15T12:00:00Z"),
            None
        );
    }

    #[test]
    fn rfc3164_without_a_host_is_unrecognised() {
        let (e, o) = parse("<13>Oct 11 22:14:15 su: no host here");
        assert_eq!(o, Outcome::Unrecognised);
        assert_eq!(h(&e, TIMESTAMP), None);
        assert_eq!(body(&e), "<13>Oct 11 22:14:15 su: no host here");
    }

    #[test]
    fn bad_pri_is_invalid_and_kept_whole() {
        for (msg, why) in [
            ("hello world", "does not start with <PRI>"),
            ("<abc>1 - - - - - x", "holds no number"),
            ("<>x", "holds no number"),
            ("<1234>x", "more than 3 digits"),
            ("<13 x", "not closed"),
            ("<192>1 - - - - - x", "above 191"),
            ("", "empty"),
        ] {
            let (e, o) = parse(msg);
            match o {
                Outcome::Invalid(reason) => assert!(reason.contains(why), "{msg:?}: {reason}"),
                other => panic!("{msg:?}: {other:?}"),
            }
            assert_eq!(h(&e, STATUS), Some(INVALID), "{msg:?}");
            assert_eq!(h(&e, FACILITY), Some("0"));
            assert_eq!(h(&e, SEVERITY), Some("0"));
            assert_eq!(h(&e, PRIORITY), None);
            assert_eq!(body(&e), msg);
        }
        // Non-UTF-8 bytes pass through untouched.
        let raw = b"\xff\xfe<13>";
        let (e, _) = Parser::new(KeepFields::NONE, Utc).event(raw, false, Utc::now());
        assert_eq!(&e.body[..], raw);
    }

    #[test]
    fn valid_pri_with_an_unknown_header_keeps_the_whole_message() {
        let (e, o) = parse("<13>hello world");
        assert_eq!(o, Outcome::Unrecognised);
        assert_eq!(h(&e, FACILITY), Some("1"));
        assert_eq!(h(&e, SEVERITY), Some("5"));
        assert_eq!(h(&e, STATUS), None);
        assert_eq!(h(&e, PRIORITY), None);
        assert_eq!(body(&e), "<13>hello world");
        let (e, o) = parse("<0>");
        assert_eq!(o, Outcome::Unrecognised);
        assert_eq!(body(&e), "<0>");
    }

    #[test]
    fn empty_message_after_the_header_keeps_the_whole_message() {
        for msg in [
            "<13>1 2024-01-01T00:00:00Z host",
            "<13>1 2024-01-01T00:00:00Z host ",
            "<13>Jan  1 00:00:00 host ",
        ] {
            let (e, o) = parse(msg);
            assert!(matches!(o, Outcome::Rfc5424 | Outcome::Rfc3164), "{msg}");
            assert_eq!(h(&e, HOST), Some("host"), "{msg}");
            assert_eq!(body(&e), msg);
        }
    }

    #[test]
    fn keep_fields_variants() {
        let m5424 = "<165>1 2003-10-11T22:14:15.003Z mymachine app - - - hello";
        let m3164 = "<13>Oct  1 22:14:15 mymachine app: hello";
        let now = "2026-06-15T12:00:00Z";
        let keep = |v: &str| KeepFields::parse(v).unwrap();
        let cases = [
            ("none", m5424, "app - - - hello"),
            ("all", m5424, m5424),
            ("true", m3164, m3164),
            ("priority", m5424, "<165>app - - - hello"),
            ("version", m5424, "1 app - - - hello"),
            (
                "timestamp",
                m5424,
                "2003-10-11T22:14:15.003Z app - - - hello",
            ),
            ("hostname", m5424, "mymachine app - - - hello"),
            ("priority version timestamp hostname", m5424, m5424),
            ("priority version", m3164, "<13>app: hello"),
            (
                "timestamp hostname",
                m3164,
                "Oct  1 22:14:15 mymachine app: hello",
            ),
            (
                "hostname timestamp",
                "<13>1 - - app - - - x",
                "- - app - - - x",
            ),
        ];
        for (k, msg, want) in cases {
            let (e, _) = parse_with(keep(k), msg, now);
            assert_eq!(body(&e), want, "keepFields={k} on {msg}");
            assert!(e.headers.contains_key(PRIORITY), "headers stay: {k}");
        }
        // Invalid messages are whole whatever is kept.
        let (e, _) = parse_with(keep("priority"), "junk", now);
        assert_eq!(body(&e), "junk");
    }

    #[test]
    fn truncated_messages_are_incomplete_unless_invalid() {
        let p = Parser::new(KeepFields::NONE, Utc);
        let (e, o) = p.event(b"<13>1 - host app - - - cut he", true, Utc::now());
        assert_eq!(o, Outcome::Rfc5424);
        assert_eq!(h(&e, STATUS), Some(INCOMPLETE));
        assert_eq!(h(&e, HOST), Some("host"));
        assert_eq!(body(&e), "app - - - cut he");
        let (e, _) = p.event(b"no pri, cut he", true, Utc::now());
        assert_eq!(h(&e, STATUS), Some(INVALID));
    }
}
