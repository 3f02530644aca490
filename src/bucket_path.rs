//! Path templates (Flume's `formatter.output.BucketPath`), which the hdfs sink's `hdfs.path`
//! and `hdfs.filePrefix` are written in: parsing a template
//! once and expanding it per event, the way Flume's `BucketPath.escapeString` does (with
//! `TimestampRoundDownUtil` for `hdfs.round`). This module owns the escape syntax, the time
//! zone ids of `hdfs.timeZone`, and the rounding of timestamps; the sink owns everything else.
//!
//! The escapes, as Flume matches them (`%(\w|%)|%\{([\w.-]+)\}|%\[(\w+)\]`, ASCII `\w`):
//! - `%{name}`: the value of header `name`, or nothing when the event has no such header.
//! - `%[localhost]`, `%[IP]`, `%[FQDN]` (any case): this machine's host name, address and
//!   canonical name. Resolved once, when the template is parsed; any other name is refused.
//! - `%` and one word character or `%`: a time escape, the event's `timestamp` header (epoch
//!   milliseconds) or the sink's clock (`hdfs.useLocalTimeStamp`), rounded down first when
//!   `hdfs.round` is on, in `hdfs.timeZone`. `%%` is a `%`; a character Flume does not know
//!   expands to nothing.
//! - A `%` followed by anything else (or by nothing) stays as it is.
//!
//! Dates are written as Java's `SimpleDateFormat` writes them in an English locale, since
//! that is what Flume uses for each escape: `%c` is `EEE MMM d HH:mm:ss yyyy`, `%z` is `+hhmm`.

use std::fmt;
use std::net::{IpAddr, ToSocketAddrs};

use chrono::{
    DateTime, Datelike, FixedOffset, Local, NaiveDateTime, Offset as _, TimeDelta, Timelike, Utc,
};

use crate::event::Headers;

/// A template such as `hdfs://nn/flume/%{app}/%Y-%m-%d/%H` parsed once at start.
#[derive(Debug, Clone)]
pub struct BucketPath {
    template: Box<str>,
    /// Adjacent literal text (including `%%` and resolved `%[...]`) is merged into one part, so
    /// a template without per-event escapes is a single literal.
    parts: Vec<Part>,
    needs_timestamp: bool,
    /// Whether some escape needs the calendar fields, not just the epoch numbers.
    needs_calendar: bool,
    /// The bytes of literal text, a starting capacity for the expanded string.
    literal_len: usize,
}

#[derive(Debug, Clone)]
enum Part {
    Literal(Box<str>),
    Header(Box<str>),
    Time(TimeEscape),
}

/// The time escapes, each named after the `SimpleDateFormat` pattern Flume formats it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeEscape {
    /// `%a`: `EEE`.
    WeekdayShort,
    /// `%A`: `EEEE`.
    WeekdayFull,
    /// `%b`: `MMM`.
    MonthShort,
    /// `%B`: `MMMM`.
    MonthFull,
    /// `%c`: `EEE MMM d HH:mm:ss yyyy`.
    DateTime,
    /// `%d`: `dd`.
    Day2,
    /// `%e`: `d`.
    Day,
    /// `%D`: `MM/dd/yy`.
    DateShort,
    /// `%H`: `HH`.
    Hour24Padded,
    /// `%I`: `hh`.
    Hour12Padded,
    /// `%j`: `DDD`.
    DayOfYear,
    /// `%k`: `H`.
    Hour24,
    /// `%l`: `h`.
    Hour12,
    /// `%m`: `MM`.
    Month2,
    /// `%n`: `M`.
    Month,
    /// `%M`: `mm`.
    Minute2,
    /// `%p`: `a`.
    AmPm,
    /// `%s`: the (rounded) epoch seconds.
    EpochSeconds,
    /// `%S`: `ss`.
    Second2,
    /// `%t`: the timestamp header as written (or the clock's millis), not rounded.
    EpochMillis,
    /// `%y`: `yy`.
    Year2,
    /// `%Y`: `yyyy`.
    Year4,
    /// `%z`: `ZZZ`.
    Offset,
}

impl TimeEscape {
    fn from_char(c: u8) -> Option<TimeEscape> {
        use TimeEscape::*;
        Some(match c {
            b'a' => WeekdayShort,
            b'A' => WeekdayFull,
            b'b' => MonthShort,
            b'B' => MonthFull,
            b'c' => DateTime,
            b'd' => Day2,
            b'e' => Day,
            b'D' => DateShort,
            b'H' => Hour24Padded,
            b'I' => Hour12Padded,
            b'j' => DayOfYear,
            b'k' => Hour24,
            b'l' => Hour12,
            b'm' => Month2,
            b'n' => Month,
            b'M' => Minute2,
            b'p' => AmPm,
            b's' => EpochSeconds,
            b'S' => Second2,
            b't' => EpochMillis,
            b'y' => Year2,
            b'Y' => Year4,
            b'z' => Offset,
            _ => return None,
        })
    }

    fn needs_calendar(self) -> bool {
        !matches!(self, TimeEscape::EpochSeconds | TimeEscape::EpochMillis)
    }
}

/// `hdfs.roundUnit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoundUnit {
    Second,
    Minute,
    Hour,
}

impl RoundUnit {
    /// Flume's `hdfs.roundUnit` values, in any case. Flume disables rounding (with a warning)
    /// for anything else; `None` lets the caller do that or refuse the value.
    pub fn parse(unit: &str) -> Option<RoundUnit> {
        [
            ("second", RoundUnit::Second),
            ("minute", RoundUnit::Minute),
            ("hour", RoundUnit::Hour),
        ]
        .into_iter()
        .find(|(name, _)| unit.eq_ignore_ascii_case(name))
        .map(|(_, u)| u)
    }

    /// The largest `hdfs.roundValue` Flume's sink accepts for this unit (it refuses 0 too).
    pub fn max_value(self) -> u32 {
        match self {
            RoundUnit::Second | RoundUnit::Minute => 60,
            RoundUnit::Hour => 24,
        }
    }
}

/// How time escapes read the clock: the sink's `hdfs.round*`, `hdfs.useLocalTimeStamp` and
/// `hdfs.timeZone`.
#[derive(Debug, Clone, Default)]
pub struct TimeSettings {
    /// `hdfs.round=true` with `hdfs.roundValue` / `hdfs.roundUnit`. A value of 0 rounds to
    /// one unit, as in Flume's BucketPath.
    pub round: Option<(u32, RoundUnit)>,
    /// `hdfs.useLocalTimeStamp`: the sink's clock instead of the `timestamp` header.
    pub use_local_time_stamp: bool,
    /// `hdfs.timeZone` (absent = the machine's local zone).
    pub zone: Zone,
}

/// The time zone escapes are written (and rounded) in.
#[derive(Debug, Clone, Default)]
pub enum Zone {
    /// The machine's zone (`TZ`, else `/etc/localtime`), as Java's default zone.
    #[default]
    Local,
    Fixed(FixedOffset),
    /// A zone of the system's tz database (`/usr/share/zoneinfo`), with its daylight saving.
    Named(jiff::tz::TimeZone),
}

/// The forms [`Zone::parse`] takes, for its errors.
const ZONE_FORMS: &str = "UTC, GMT, a fixed offset such as GMT+8, GMT-05:30 or GMT+0530, \
     a zone of the system's tz database such as Asia/Shanghai or America/New_York, \
     or one of Java's three-letter ids such as PST or IST";

/// Java's old three-letter zone ids (`java.time.ZoneId.SHORT_IDS`), which
/// `java.util.TimeZone.getTimeZone` still takes and the tz database does not have (or, for
/// EST, MST and HST, has with different rules than Java's fixed offsets).
const JAVA_SHORT_IDS: &[(&str, &str)] = &[
    ("ACT", "Australia/Darwin"),
    ("AET", "Australia/Sydney"),
    ("AGT", "America/Argentina/Buenos_Aires"),
    ("ART", "Africa/Cairo"),
    ("AST", "America/Anchorage"),
    ("BET", "America/Sao_Paulo"),
    ("BST", "Asia/Dhaka"),
    ("CAT", "Africa/Harare"),
    ("CNT", "America/St_Johns"),
    ("CST", "America/Chicago"),
    ("CTT", "Asia/Shanghai"),
    ("EAT", "Africa/Addis_Ababa"),
    ("ECT", "Europe/Paris"),
    ("EST", "-05:00"),
    ("HST", "-10:00"),
    ("IET", "America/Indiana/Indianapolis"),
    ("IST", "Asia/Kolkata"),
    ("JST", "Asia/Tokyo"),
    ("MIT", "Pacific/Apia"),
    ("MST", "-07:00"),
    ("NET", "Asia/Yerevan"),
    ("NST", "Pacific/Auckland"),
    ("PLT", "Asia/Karachi"),
    ("PNT", "America/Phoenix"),
    ("PRT", "America/Puerto_Rico"),
    ("PST", "America/Los_Angeles"),
    ("SST", "Pacific/Guadalcanal"),
    ("VST", "Asia/Ho_Chi_Minh"),
];

impl Zone {
    /// A Java time zone id, as `hdfs.timeZone` takes it: `UTC`, `GMT`, Java's custom ids
    /// (`GMT+8`, `GMT+08:00`, `GMT-0530`; `UTC+8` is refused, see below), tz database names
    /// (`Asia/Shanghai`) and Java's three-letter ids (`PST`). Java silently falls back to GMT
    /// for an id it does not know; this refuses it instead.
    pub fn parse(java_id: &str) -> Result<Zone, String> {
        let id = java_id.trim();
        if id == "UTC" || id == "GMT" {
            return Ok(Zone::Fixed(Utc.fix()));
        }
        if let Some(rest) = id.strip_prefix("UTC")
            && rest.starts_with(['+', '-'])
        {
            // Java's custom ids start with GMT only: TimeZone.getTimeZone("UTC+8") is UTC, so
            // Flume writes such a config's paths in UTC. Refused rather than read either way.
            return Err(format!(
                "Java (so Flume) reads this as UTC, since its fixed offsets are written GMT{rest}; \
                 write GMT{rest} for that offset, or UTC"
            ));
        }
        if let Some(rest) = id.strip_prefix("GMT")
            && rest.starts_with(['+', '-'])
        {
            return custom_offset(rest).map(Zone::Fixed).ok_or_else(|| {
                "a fixed offset is GMT+h, GMT+hh, GMT+hh:mm or GMT+hhmm (or -), hours up to \
                 23 and minutes up to 59"
                    .to_owned()
            });
        }
        let name = JAVA_SHORT_IDS
            .iter()
            .find(|(short, _)| *short == id)
            .map_or(id, |(_, long)| long);
        if name.starts_with('-') {
            // Java's EST, MST and HST: whole hours west of UTC.
            let zone = custom_offset(name).map(Zone::Fixed);
            return zone.ok_or_else(|| "bad built-in offset".to_owned());
        }
        // jiff maps this name to its "unknown" zone, which is UTC in disguise.
        let unknown = name.eq_ignore_ascii_case("Etc/Unknown");
        match jiff::tz::TimeZone::get(name) {
            Ok(tz) if !unknown && !name.is_empty() => Ok(Zone::Named(tz)),
            Ok(_) => Err(format!(
                "not a zone Java or this machine's tz database knows; use {ZONE_FORMS}"
            )),
            Err(e) => Err(format!(
                "not a zone Java or this machine's tz database knows ({e}); use {ZONE_FORMS}"
            )),
        }
    }

    /// The zone's offset from UTC, in seconds east, at `utc` (`millis` since the epoch).
    fn offset_at(&self, millis: i64, utc: &NaiveDateTime) -> Result<i32, ExpandError> {
        use chrono::TimeZone as _;
        match self {
            Zone::Local => Ok(Local.offset_from_utc_datetime(utc).local_minus_utc()),
            Zone::Fixed(offset) => Ok(offset.local_minus_utc()),
            Zone::Named(tz) => {
                let at =
                    jiff::Timestamp::from_millisecond(millis).map_err(|_| out_of_range(millis))?;
                Ok(tz.to_offset(at).seconds())
            }
        }
    }

    /// The instant a wall-clock time in this zone names, resolved as `java.util.Calendar`
    /// does: a time that occurs twice (clocks set back) is read in the offset after the
    /// change, and a time that never occurs (clocks set forward) in the offset before it.
    fn wall_to_millis(&self, wall: NaiveDateTime) -> Result<i64, ExpandError> {
        use chrono::TimeZone as _;
        use chrono::offset::LocalResult;
        let with_offset = |offset_secs: i32| -> Result<i64, ExpandError> {
            let utc = wall
                .checked_sub_signed(TimeDelta::seconds(i64::from(offset_secs)))
                .ok_or_else(|| out_of_range(wall.and_utc().timestamp_millis()))?;
            Ok(utc.and_utc().timestamp_millis())
        };
        match self {
            Zone::Fixed(offset) => with_offset(offset.local_minus_utc()),
            Zone::Local => match Local.from_local_datetime(&wall) {
                LocalResult::Single(at) => Ok(at.timestamp_millis()),
                LocalResult::Ambiguous(_, later) => Ok(later.timestamp_millis()),
                LocalResult::None => {
                    // In a gap: the offset before it, which held a day earlier (zones do
                    // not change offset twice in a day).
                    let day_before = wall
                        .checked_sub_signed(TimeDelta::days(1))
                        .ok_or_else(|| out_of_range(wall.and_utc().timestamp_millis()))?;
                    with_offset(
                        Local
                            .offset_from_utc_datetime(&day_before)
                            .local_minus_utc(),
                    )
                }
            },
            Zone::Named(tz) => {
                let millis = wall.and_utc().timestamp_millis();
                let civil = jiff::civil::DateTime::new(
                    i16::try_from(wall.year()).map_err(|_| out_of_range(millis))?,
                    wall.month() as i8,
                    wall.day() as i8,
                    wall.hour() as i8,
                    wall.minute() as i8,
                    wall.second() as i8,
                    0,
                )
                .map_err(|_| out_of_range(millis))?;
                let at = tz
                    .to_ambiguous_timestamp(civil)
                    .later()
                    .map_err(|_| out_of_range(millis))?;
                Ok(at.as_millisecond())
            }
        }
    }

    /// The wall-clock time at `millis` in this zone, and the zone's offset then.
    fn local(&self, millis: i64) -> Result<(NaiveDateTime, i32), ExpandError> {
        let utc = DateTime::from_timestamp_millis(millis)
            .ok_or_else(|| out_of_range(millis))?
            .naive_utc();
        let offset = self.offset_at(millis, &utc)?;
        let local = utc
            .checked_add_signed(TimeDelta::seconds(i64::from(offset)))
            .ok_or_else(|| out_of_range(millis))?;
        Ok((local, offset))
    }
}

/// What follows `GMT` in a Java custom zone id (`+h`, `+hh`, `+hh:mm`, `+hhmm`, or `-`), as
/// `java.util.TimeZone.parseCustomTimeZone` reads it.
fn custom_offset(rest: &str) -> Option<FixedOffset> {
    let (negative, digits) = match rest.as_bytes().first()? {
        b'+' => (false, &rest[1..]),
        b'-' => (true, &rest[1..]),
        _ => return None,
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (hours, minutes): (u32, u32) = match digits.split_once(':') {
        Some((h, m)) => {
            if !all_digits(h) || h.len() > 2 || !all_digits(m) || m.len() != 2 {
                return None;
            }
            (h.parse().ok()?, m.parse().ok()?)
        }
        None => {
            if !all_digits(digits) || digits.len() > 4 {
                return None;
            }
            let n: u32 = digits.parse().ok()?;
            if digits.len() <= 2 {
                (n, 0)
            } else {
                (n / 100, n % 100)
            }
        }
    };
    if hours > 23 || minutes > 59 {
        return None;
    }
    let secs = ((hours * 60 + minutes) * 60) as i32;
    FixedOffset::east_opt(if negative { -secs } else { secs })
}

/// Why an event's path could not be expanded. The event cannot be written until it can; Flume
/// fails the sink's transaction the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpandError {
    /// A time escape, no `hdfs.useLocalTimeStamp`, and no `timestamp` header.
    MissingTimestamp,
    /// The `timestamp` header (its value here) is not a Java long.
    BadTimestamp(String),
    /// The timestamp (epoch milliseconds) cannot be used: not positive while rounding (Flume's
    /// `TimestampRoundDownUtil` refuses those too), or beyond the calendar.
    TimestampOutOfRange(i64),
}

impl fmt::Display for ExpandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpandError::MissingTimestamp => f.write_str(
                "Expected timestamp in the Flume event headers, but it was null: the path has \
                 time escapes; set the timestamp header (for example with the timestamp \
                 interceptor) or hdfs.useLocalTimeStamp = true",
            ),
            ExpandError::BadTimestamp(value) => write!(
                f,
                "the timestamp header {value:?} is not a number of milliseconds since the \
                 epoch, which the path's time escapes need; check what sets it (for example \
                 the timestamp interceptor)"
            ),
            ExpandError::TimestampOutOfRange(millis) => write!(
                f,
                "the timestamp {millis} cannot be used for the path's time escapes: rounding \
                 (hdfs.round) needs a positive one, and dates must be within the calendar"
            ),
        }
    }
}

impl std::error::Error for ExpandError {}

fn out_of_range(millis: i64) -> ExpandError {
    ExpandError::TimestampOutOfRange(millis)
}

/// This machine's names for `%[...]`, looked up once per template.
#[derive(Default)]
struct Host {
    name: Option<String>,
    ip: Option<IpAddr>,
}

impl Host {
    /// `InetAddress.getLocalHost().getHostName()`: the name the machine calls itself.
    fn name(&mut self) -> &str {
        self.name.get_or_insert_with(|| {
            rustix::system::uname()
                .nodename()
                .to_string_lossy()
                .into_owned()
        })
    }

    /// `getHostAddress()`: what the host name resolves to, an IPv4 address first as Java
    /// prefers by default. Flume fails every event when the name does not resolve; refusing
    /// the template says so once, at start.
    fn ip(&mut self) -> Result<IpAddr, String> {
        if let Some(ip) = self.ip {
            return Ok(ip);
        }
        let name = self.name().to_owned();
        let addrs: Vec<IpAddr> = (name.as_str(), 0)
            .to_socket_addrs()
            .map_err(|e| format!("this machine's name {name:?} does not resolve: {e}"))?
            .map(|a| a.ip())
            .collect();
        let ip = addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or_else(|| addrs.first())
            .copied()
            .ok_or_else(|| format!("this machine's name {name:?} resolves to no address"))?;
        self.ip = Some(ip);
        Ok(ip)
    }

    /// `getCanonicalHostName()`: the name the address resolves back to, if that name resolves
    /// to the address again; else the address, as Java gives it.
    fn fqdn(&mut self) -> Result<String, String> {
        let ip = self.ip()?;
        let confirmed = dns_lookup::lookup_addr(&ip).ok().filter(|name| {
            (name.as_str(), 0)
                .to_socket_addrs()
                .is_ok_and(|mut addrs| addrs.any(|a| a.ip() == ip))
        });
        Ok(confirmed.unwrap_or_else(|| ip.to_string()))
    }
}

/// Java's `\w`: ASCII letters, digits and `_`.
fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl BucketPath {
    /// Parses a template. Refuses a `%[...]` other than localhost, IP and FQDN (Flume fails
    /// every event on one), and `%[IP]` / `%[FQDN]` on a machine whose name does not resolve.
    /// Positions in errors count characters from 1.
    pub fn parse(template: &str) -> Result<BucketPath, String> {
        let bytes = template.as_bytes();
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut host = Host::default();
        let mut needs_timestamp = false;
        let mut needs_calendar = false;
        let mut literal_len = 0;
        let position = |at: usize| template[..at].chars().count() + 1;
        let flush = |literal: &mut String, parts: &mut Vec<Part>, len: &mut usize| {
            if !literal.is_empty() {
                *len += literal.len();
                parts.push(Part::Literal(std::mem::take(literal).into_boxed_str()));
            }
        };
        let mut i = 0;
        while i < bytes.len() {
            let Some(offset) = memchr::memchr(b'%', &bytes[i..]) else {
                literal.push_str(&template[i..]);
                break;
            };
            let at = i + offset;
            literal.push_str(&template[i..at]);
            i = at + 1;
            match bytes.get(at + 1).copied() {
                Some(b'%') => {
                    literal.push('%');
                    i = at + 2;
                }
                Some(c) if is_word(c) => {
                    i = at + 2;
                    match TimeEscape::from_char(c) {
                        Some(escape) => {
                            flush(&mut literal, &mut parts, &mut literal_len);
                            parts.push(Part::Time(escape));
                            needs_timestamp = true;
                            needs_calendar |= escape.needs_calendar();
                        }
                        None => tracing::warn!(
                            "hdfs path template {template:?}: %{} at character {} is not an escape Flume \
                             knows; it expands to nothing, as in Flume",
                            char::from(c),
                            position(at)
                        ),
                    }
                }
                Some(b'{') => {
                    let name_len = bytes[at + 2..]
                        .iter()
                        .take_while(|&&b| is_word(b) || b == b'.' || b == b'-')
                        .count();
                    let end = at + 2 + name_len;
                    if name_len > 0 && bytes.get(end) == Some(&b'}') {
                        flush(&mut literal, &mut parts, &mut literal_len);
                        parts.push(Part::Header(template[at + 2..end].into()));
                        i = end + 1;
                    } else {
                        literal.push('%');
                    }
                }
                Some(b'[') => {
                    let key_len = bytes[at + 2..].iter().take_while(|&&b| is_word(b)).count();
                    let end = at + 2 + key_len;
                    if key_len > 0 && bytes.get(end) == Some(&b']') {
                        let key = &template[at + 2..end];
                        let value = if key.eq_ignore_ascii_case("localhost") {
                            Ok(host.name().to_owned())
                        } else if key.eq_ignore_ascii_case("ip") {
                            host.ip().map(|ip| ip.to_string())
                        } else if key.eq_ignore_ascii_case("fqdn") {
                            host.fqdn()
                        } else {
                            Err("is not one of localhost, IP and FQDN".to_owned())
                        }
                        .map_err(|why| format!("%[{key}] at character {}: {why}", position(at)))?;
                        literal.push_str(&value);
                        i = end + 1;
                    } else {
                        literal.push('%');
                    }
                }
                _ => literal.push('%'),
            }
        }
        flush(&mut literal, &mut parts, &mut literal_len);
        Ok(BucketPath {
            template: template.into(),
            parts,
            needs_timestamp,
            needs_calendar,
            literal_len,
        })
    }

    /// The template as written.
    pub fn template(&self) -> &str {
        &self.template
    }

    /// Whether any time escape is present, so that events need a timestamp (unless
    /// `hdfs.useLocalTimeStamp`). Flume also reads (and fails an event without) the timestamp
    /// for `%%` and for an escape it does not know, though neither writes it; here they do not
    /// need one, so that such a path cannot hold events back for a value it never uses.
    pub fn needs_timestamp(&self) -> bool {
        self.needs_timestamp
    }

    /// Whether the expansion is the same for every event at every time: no header or time
    /// escape (`%%` and `%[...]` are resolved when parsing).
    pub fn is_constant(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    /// The path for one event. `now_millis` is used when `use_local_time_stamp`, else the
    /// event's `timestamp` header (epoch ms).
    pub fn expand(
        &self,
        headers: &Headers,
        now_millis: i64,
        time: &TimeSettings,
    ) -> Result<String, ExpandError> {
        if let [Part::Literal(text)] = self.parts.as_slice() {
            return Ok(String::from(&**text));
        }
        let stamp = if self.needs_timestamp {
            Some(Stamp::new(headers, now_millis, time, self.needs_calendar)?)
        } else {
            None
        };
        let mut out = String::with_capacity(self.literal_len + 16 * self.parts.len());
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Header(name) => out.push_str(headers.get(name).unwrap_or("")),
                Part::Time(escape) => {
                    if let Some(stamp) = &stamp {
                        stamp.write(*escape, &mut out);
                    }
                }
            }
        }
        Ok(out)
    }
}

/// The time an event's escapes are written with, worked out once per expansion.
struct Stamp<'h> {
    /// What `%t` writes: the header as the event has it, or the clock, never rounded.
    raw: Raw<'h>,
    /// The rounded epoch millis.
    millis: i64,
    /// The rounded time on the zone's clock, and the zone's offset (seconds east) then.
    local: NaiveDateTime,
    offset: i32,
}

enum Raw<'h> {
    Header(&'h str),
    Clock(i64),
}

impl<'h> Stamp<'h> {
    fn new(
        headers: &'h Headers,
        now_millis: i64,
        time: &TimeSettings,
        calendar: bool,
    ) -> Result<Stamp<'h>, ExpandError> {
        let (raw, mut millis) = if time.use_local_time_stamp {
            (Raw::Clock(now_millis), now_millis)
        } else {
            let header = headers
                .get("timestamp")
                .ok_or(ExpandError::MissingTimestamp)?;
            // Java's Long.valueOf: an optional sign, digits, nothing else.
            let millis = header
                .parse::<i64>()
                .map_err(|_| ExpandError::BadTimestamp(header.to_owned()))?;
            (Raw::Header(header), millis)
        };
        if let Some((value, unit)) = time.round {
            millis = round_down(millis, value, unit, &time.zone)?;
        }
        let (local, offset) = if calendar {
            time.zone.local(millis)?
        } else {
            (NaiveDateTime::default(), 0)
        };
        Ok(Stamp {
            raw,
            millis,
            local,
            offset,
        })
    }

    fn write(&self, escape: TimeEscape, out: &mut String) {
        use TimeEscape::*;
        let t = &self.local;
        match escape {
            WeekdayShort => out.push_str(&weekday(t)[..3]),
            WeekdayFull => out.push_str(weekday(t)),
            MonthShort => out.push_str(&month(t)[..3]),
            MonthFull => out.push_str(month(t)),
            DateTime => {
                out.push_str(&weekday(t)[..3]);
                out.push(' ');
                out.push_str(&month(t)[..3]);
                out.push(' ');
                push_num(out, t.day(), 1);
                out.push(' ');
                push_num(out, t.hour(), 2);
                out.push(':');
                push_num(out, t.minute(), 2);
                out.push(':');
                push_num(out, t.second(), 2);
                out.push(' ');
                push_num(out, year_of_era(t), 4);
            }
            Day2 => push_num(out, t.day(), 2),
            Day => push_num(out, t.day(), 1),
            DateShort => {
                push_num(out, t.month(), 2);
                out.push('/');
                push_num(out, t.day(), 2);
                out.push('/');
                push_num(out, year_of_era(t) % 100, 2);
            }
            Hour24Padded => push_num(out, t.hour(), 2),
            Hour12Padded => push_num(out, hour12(t), 2),
            DayOfYear => push_num(out, t.ordinal(), 3),
            Hour24 => push_num(out, t.hour(), 1),
            Hour12 => push_num(out, hour12(t), 1),
            Month2 => push_num(out, t.month(), 2),
            Month => push_num(out, t.month(), 1),
            Minute2 => push_num(out, t.minute(), 2),
            AmPm => out.push_str(if t.hour() < 12 { "AM" } else { "PM" }),
            // Java's long division truncates toward zero, as Rust's does.
            EpochSeconds => out.push_str(itoa::Buffer::new().format(self.millis / 1000)),
            Second2 => push_num(out, t.second(), 2),
            EpochMillis => match self.raw {
                Raw::Header(text) => out.push_str(text),
                Raw::Clock(millis) => out.push_str(itoa::Buffer::new().format(millis)),
            },
            Year2 => push_num(out, year_of_era(t) % 100, 2),
            Year4 => push_num(out, year_of_era(t), 4),
            Offset => {
                // SimpleDateFormat's Z: whole minutes (seconds dropped), as +hhmm.
                let minutes = self.offset / 60;
                out.push(if minutes < 0 { '-' } else { '+' });
                let minutes = minutes.unsigned_abs();
                push_num(out, minutes / 60 * 100 + minutes % 60, 4);
            }
        }
    }
}

/// `TimestampRoundDownUtil`: the unit's field on the zone's clock goes down to a multiple of
/// `value`, the smaller fields to 0, and the result is read back in the zone. Rounding on the
/// zone's clock rather than in epoch time matters for hours in zones with a half-hour offset.
fn round_down(millis: i64, value: u32, unit: RoundUnit, zone: &Zone) -> Result<i64, ExpandError> {
    if millis <= 0 {
        return Err(out_of_range(millis));
    }
    let value = value.max(1);
    let (local, _) = zone.local(millis)?;
    let (h, m, s) = (local.hour(), local.minute(), local.second());
    let (h, m, s) = match unit {
        RoundUnit::Second => (h, m, s - s % value),
        RoundUnit::Minute => (h, m - m % value, 0),
        RoundUnit::Hour => (h - h % value, 0, 0),
    };
    let wall = local
        .date()
        .and_hms_opt(h, m, s)
        .ok_or_else(|| out_of_range(millis))?;
    zone.wall_to_millis(wall)
}

const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn weekday(t: &NaiveDateTime) -> &'static str {
    WEEKDAYS[t.weekday().num_days_from_sunday() as usize]
}

fn month(t: &NaiveDateTime) -> &'static str {
    MONTHS[t.month0() as usize]
}

fn hour12(t: &NaiveDateTime) -> u32 {
    match t.hour() % 12 {
        0 => 12,
        h => h,
    }
}

/// Java writes the year of the era: 1 BC for year 0.
fn year_of_era(t: &NaiveDateTime) -> u32 {
    let year = t.year();
    if year <= 0 {
        (1 - year).unsigned_abs()
    } else {
        year.unsigned_abs()
    }
}

/// `n` in decimal, zero-padded to `width` digits.
fn push_num(out: &mut String, n: u32, width: usize) {
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(n);
    for _ in digits.len()..width {
        out.push('0');
    }
    out.push_str(digits);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    /// 2023-11-14T22:13:20.123Z, a Tuesday, day 318 of the year.
    const TS: i64 = 1_700_000_000_123;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        let mut event = Event::new("");
        for (k, v) in pairs {
            event = event.with_header(*k, *v);
        }
        event.headers
    }

    fn zone(id: &str) -> Zone {
        Zone::parse(id).unwrap()
    }

    fn settings(id: &str) -> TimeSettings {
        TimeSettings {
            zone: zone(id),
            ..TimeSettings::default()
        }
    }

    fn rounded(id: &str, value: u32, unit: RoundUnit) -> TimeSettings {
        TimeSettings {
            round: Some((value, unit)),
            ..settings(id)
        }
    }

    fn expand_at(template: &str, millis: i64, time: &TimeSettings) -> String {
        let ts = millis.to_string();
        BucketPath::parse(template)
            .unwrap()
            .expand(&headers(&[("timestamp", &ts)]), 0, time)
            .unwrap()
    }

    const EVERY_ESCAPE: &[char] = &[
        't', 'a', 'A', 'b', 'B', 'c', 'd', 'e', 'D', 'H', 'I', 'j', 'k', 'l', 'm', 'n', 'M', 'p',
        's', 'S', 'y', 'Y', 'z',
    ];

    fn each_escape(millis: i64, time: &TimeSettings) -> Vec<String> {
        EVERY_ESCAPE
            .iter()
            .map(|c| expand_at(&format!("%{c}"), millis, time))
            .collect()
    }

    #[test]
    fn every_escape_in_utc() {
        let expected = [
            "1700000000123",
            "Tue",
            "Tuesday",
            "Nov",
            "November",
            "Tue Nov 14 22:13:20 2023",
            "14",
            "14",
            "11/14/23",
            "22",
            "10",
            "318",
            "22",
            "10",
            "11",
            "11",
            "13",
            "PM",
            "1700000000",
            "20",
            "23",
            "2023",
            "+0000",
        ];
        assert_eq!(each_escape(TS, &settings("UTC")), expected);
        assert_eq!(each_escape(TS, &settings("GMT")), expected);
    }

    #[test]
    fn every_escape_in_gmt_plus_8() {
        let expected = [
            "1700000000123",
            "Wed",
            "Wednesday",
            "Nov",
            "November",
            "Wed Nov 15 06:13:20 2023",
            "15",
            "15",
            "11/15/23",
            "06",
            "06",
            "319",
            "6",
            "6",
            "11",
            "11",
            "13",
            "AM",
            "1700000000",
            "20",
            "23",
            "2023",
            "+0800",
        ];
        assert_eq!(each_escape(TS, &settings("GMT+8")), expected);
        assert_eq!(each_escape(TS, &settings("GMT+08:00")), expected);
        assert_eq!(each_escape(TS, &settings("Asia/Shanghai")), expected);
        assert_eq!(each_escape(TS, &settings("CTT")), expected);
    }

    #[test]
    fn unpadded_forms_and_padding() {
        // 2024-03-05T07:08:09Z, a Tuesday, day 65.
        let t = 1_709_622_489_000;
        let utc = settings("UTC");
        assert_eq!(
            expand_at("%e|%d|%n|%m|%k|%H|%l|%I|%j|%D|%p|%c", t, &utc),
            "5|05|3|03|7|07|7|07|065|03/05/24|AM|Tue Mar 5 07:08:09 2024"
        );
        // Midnight and noon are 12 on the 12-hour clock.
        assert_eq!(expand_at("%I %l %p", 1_700_006_400_000, &utc), "12 12 AM");
        assert_eq!(expand_at("%I %l %p", 1_700_049_600_000, &utc), "12 12 PM");
        // Before the epoch, and %s truncates toward zero as Java does.
        assert_eq!(
            expand_at("%Y-%m-%d %H:%M:%S %s", -1_500, &utc),
            "1969-12-31 23:59:58 -1"
        );
    }

    #[test]
    fn negative_and_odd_offsets() {
        assert_eq!(
            expand_at("%z %H:%M", TS, &settings("GMT-0530")),
            "-0530 16:43"
        );
        assert_eq!(
            expand_at("%z %H:%M", TS, &settings("GMT-5:30")),
            "-0530 16:43"
        );
        assert_eq!(expand_at("%z", TS, &settings("GMT+0")), "+0000");
        assert_eq!(expand_at("%z %H", TS, &settings("EST")), "-0500 17");
        assert_eq!(
            expand_at("%z %H", TS, &settings("America/New_York")),
            "-0500 17"
        );
        assert_eq!(
            expand_at("%z %H", TS, &settings("Asia/Kolkata")),
            "+0530 03"
        );
    }

    #[test]
    fn local_zone_is_the_machines() {
        use chrono::TimeZone as _;
        let offset = Local.timestamp_millis_opt(TS).unwrap().offset().fix();
        let fixed = TimeSettings {
            zone: Zone::Fixed(offset),
            ..TimeSettings::default()
        };
        let all = "%c %z %j %s";
        assert_eq!(
            expand_at(all, TS, &TimeSettings::default()),
            expand_at(all, TS, &fixed)
        );
    }

    #[test]
    fn rounds_down_to_ten_minutes_and_two_hours() {
        let template = "%Y%m%d/%H%M%S/%s/%t";
        assert_eq!(
            expand_at(template, TS, &rounded("UTC", 10, RoundUnit::Minute)),
            "20231114/221000/1699999800/1700000000123"
        );
        assert_eq!(
            expand_at(template, TS, &rounded("UTC", 2, RoundUnit::Hour)),
            "20231114/220000/1699999200/1700000000123"
        );
        assert_eq!(
            expand_at(template, TS, &rounded("GMT+8", 2, RoundUnit::Hour)),
            "20231115/060000/1699999200/1700000000123"
        );
        assert_eq!(
            expand_at("%H%M%S", TS, &rounded("UTC", 15, RoundUnit::Second)),
            "221315"
        );
        // 0 rounds to one unit, as in Flume.
        assert_eq!(
            expand_at("%H%M%S %s", TS, &rounded("UTC", 0, RoundUnit::Second)),
            "221320 1700000000"
        );
    }

    #[test]
    fn rounds_on_the_zones_clock() {
        // 03:43 in India is 02:00 after rounding to 2 hours, i.e. 20:30Z; rounding in epoch
        // time would have given 22:00Z.
        for id in ["GMT+05:30", "Asia/Kolkata"] {
            assert_eq!(
                expand_at("%H:%M %s", TS, &rounded(id, 2, RoundUnit::Hour)),
                "02:00 1699993800",
                "{id}"
            );
        }
    }

    #[test]
    fn rounding_across_daylight_saving_changes_as_java_calendar() {
        let ny = |value| rounded("America/New_York", value, RoundUnit::Hour);
        // 03:30 EST on the day clocks go back: 4-hour rounding gives midnight, still EDT.
        assert_eq!(
            expand_at("%H:%M %z %s", 1_699_173_000_000, &ny(4)),
            "00:00 -0400 1699156800"
        );
        // 01:30 happens twice; 01:00 is read as standard time (the later instant), even from
        // the first 01:30.
        for first_or_second in [1_699_162_200_000, 1_699_165_800_000] {
            assert_eq!(
                expand_at("%H:%M %z %s", first_or_second, &ny(1)),
                "01:00 -0500 1699164000"
            );
        }
        // 03:30 EDT on the day clocks go forward: 02:00 never happened; read in EST it is
        // 03:00 EDT.
        assert_eq!(
            expand_at("%H:%M %z %s", 1_710_055_800_000, &ny(2)),
            "03:00 -0400 1710054000"
        );
    }

    #[test]
    fn rounding_needs_a_positive_timestamp() {
        let path = BucketPath::parse("%H").unwrap();
        let round = rounded("UTC", 1, RoundUnit::Hour);
        assert_eq!(
            path.expand(&headers(&[("timestamp", "0")]), 0, &round),
            Err(ExpandError::TimestampOutOfRange(0))
        );
        assert_eq!(expand_at("%H", 0, &settings("UTC")), "00");
    }

    #[test]
    fn local_time_stamp_uses_now() {
        let path = BucketPath::parse("/%Y/%H%M/%t/%s").unwrap();
        let local = TimeSettings {
            use_local_time_stamp: true,
            ..settings("UTC")
        };
        assert_eq!(
            path.expand(&headers(&[]), TS, &local).unwrap(),
            "/2023/2213/1700000000123/1700000000"
        );
        // The header is not read at all, even when it is not a number.
        assert_eq!(
            path.expand(&headers(&[("timestamp", "junk")]), TS, &local)
                .unwrap(),
            "/2023/2213/1700000000123/1700000000"
        );
        let local_rounded = TimeSettings {
            round: Some((10, RoundUnit::Minute)),
            ..local
        };
        assert_eq!(
            path.expand(&headers(&[]), TS, &local_rounded).unwrap(),
            "/2023/2210/1700000000123/1699999800"
        );
    }

    #[test]
    fn missing_timestamp_only_matters_with_time_escapes() {
        let utc = settings("UTC");
        let none = headers(&[("app", "web")]);
        let plain = BucketPath::parse("/logs/%{app}/%%/%Q").unwrap();
        assert!(!plain.needs_timestamp());
        assert_eq!(plain.expand(&none, TS, &utc).unwrap(), "/logs/web/%/");
        let timed = BucketPath::parse("/logs/%{app}/%Y").unwrap();
        assert!(timed.needs_timestamp());
        let err = timed.expand(&none, TS, &utc).unwrap_err();
        assert_eq!(err, ExpandError::MissingTimestamp);
        assert!(
            err.to_string()
                .contains("Expected timestamp in the Flume event headers, but it was null")
        );
    }

    #[test]
    fn bad_timestamp_names_the_value() {
        let path = BucketPath::parse("%s").unwrap();
        let utc = settings("UTC");
        for bad in ["abc", "", " 1", "1.5", "99999999999999999999"] {
            let err = path
                .expand(&headers(&[("timestamp", bad)]), 0, &utc)
                .unwrap_err();
            assert_eq!(err, ExpandError::BadTimestamp(bad.to_owned()));
            assert!(err.to_string().contains(&format!("{bad:?}")));
        }
        // Long.valueOf takes a sign; %t writes the header as it is.
        assert_eq!(
            path.expand(&headers(&[("timestamp", "+1000")]), 0, &utc),
            Ok("1".to_owned())
        );
        assert_eq!(expand_at("%t", 1000, &utc), "1000");
        let t = BucketPath::parse("%t").unwrap();
        assert_eq!(
            t.expand(&headers(&[("timestamp", "+01000")]), 0, &utc),
            Ok("+01000".to_owned())
        );
    }

    #[test]
    fn header_escapes() {
        let h = headers(&[("app", "web"), ("a.b-c_d", "x"), ("money", "$1\\2")]);
        let utc = settings("UTC");
        let expand = |t: &str| BucketPath::parse(t).unwrap().expand(&h, 0, &utc).unwrap();
        assert_eq!(expand("/%{app}/%{missing}/end"), "/web//end");
        assert_eq!(expand("%{a.b-c_d}"), "x");
        // Values go in verbatim ($ and \ are not special).
        assert_eq!(expand("%{money}"), "$1\\2");
        // Not a header name Flume matches: the text stays.
        assert_eq!(expand("%{my app}|%{}|%{app"), "%{my app}|%{}|%{app");
        // After a `%` that starts nothing, matching resumes at the next character.
        assert_eq!(expand("%{a%{app}}"), "%{aweb}");
    }

    #[test]
    fn percent_unknown_and_lone() {
        let utc = settings("UTC");
        let h = headers(&[("timestamp", "1700000000123")]);
        let expand = |t: &str| BucketPath::parse(t).unwrap().expand(&h, 0, &utc).unwrap();
        assert_eq!(expand("100%%"), "100%");
        assert_eq!(expand("%%Y"), "%Y");
        assert_eq!(expand("a%Qb%0c%_d%Ze"), "abcde");
        assert_eq!(expand("trailing%"), "trailing%");
        assert_eq!(expand("50% off %-x %é"), "50% off %-x %é");
        assert_eq!(expand("%Y%"), "2023%");
    }

    #[test]
    fn static_host_escapes() {
        let name = rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned();
        let path = BucketPath::parse("/h/%[localhost]/%[LocalHost]").unwrap();
        assert!(path.is_constant());
        assert!(!path.needs_timestamp());
        assert_eq!(
            path.expand(&headers(&[]), 0, &TimeSettings::default())
                .unwrap(),
            format!("/h/{name}/{name}")
        );
        // Where the machine's name resolves, %[IP] is an address and %[FQDN] a name or
        // that address.
        if let Ok(path) = BucketPath::parse("%[IP] %[fqdn]") {
            let out = path
                .expand(&headers(&[]), 0, &TimeSettings::default())
                .unwrap();
            let (ip, fqdn) = out.split_once(' ').unwrap();
            assert!(ip.parse::<IpAddr>().is_ok(), "{out}");
            assert!(!fqdn.is_empty());
        }
    }

    #[test]
    fn unknown_static_escape_is_refused_with_its_position() {
        let err = BucketPath::parse("/é/%[nope]").unwrap_err();
        assert!(err.contains("%[nope]"), "{err}");
        assert!(err.contains("character 4"), "{err}");
        assert!(err.contains("localhost, IP and FQDN"), "{err}");
        // Not the %[\w+] shape: plain text, as in Flume.
        assert!(BucketPath::parse("%[a b]").unwrap().is_constant());
    }

    #[test]
    fn constant_and_timestamp_flags() {
        let constant = BucketPath::parse("hdfs://nn/flume/events").unwrap();
        assert!(constant.is_constant());
        assert!(!constant.needs_timestamp());
        assert_eq!(constant.template(), "hdfs://nn/flume/events");
        assert_eq!(
            constant
                .expand(&headers(&[]), 0, &TimeSettings::default())
                .unwrap(),
            "hdfs://nn/flume/events"
        );
        let header = BucketPath::parse("/x/%{app}").unwrap();
        assert!(!header.is_constant());
        assert!(!header.needs_timestamp());
        let timed = BucketPath::parse("/x/%t").unwrap();
        assert!(!timed.is_constant());
        assert!(timed.needs_timestamp());
        assert!(BucketPath::parse("").unwrap().is_constant());
    }

    #[test]
    fn full_template() {
        let h = headers(&[("timestamp", "1700000000123"), ("app", "web")]);
        let path = BucketPath::parse("hdfs://nn/flume/%{app}/%Y-%m-%d/%H").unwrap();
        assert_eq!(
            path.expand(&h, 0, &settings("GMT+8")).unwrap(),
            "hdfs://nn/flume/web/2023-11-15/06"
        );
    }

    #[test]
    fn zone_ids() {
        let secs = |id: &str| match zone(id) {
            Zone::Fixed(offset) => offset.local_minus_utc(),
            other => panic!("{id}: {other:?}"),
        };
        assert_eq!(secs("UTC"), 0);
        assert_eq!(secs("GMT"), 0);
        assert_eq!(secs("GMT+8"), 8 * 3600);
        assert_eq!(secs("GMT+08"), 8 * 3600);
        assert_eq!(secs("GMT+08:00"), 8 * 3600);
        assert_eq!(secs("GMT+8:30"), 8 * 3600 + 1800);
        assert_eq!(secs("GMT+0830"), 8 * 3600 + 1800);
        assert_eq!(secs("GMT+830"), 8 * 3600 + 1800);
        assert_eq!(secs("GMT-05:30"), -(5 * 3600 + 1800));
        for utc in ["UTC+8", "UTC-3"] {
            let err = Zone::parse(utc).unwrap_err();
            assert!(
                err.contains("reads this as UTC") && err.contains("GMT"),
                "{utc}: {err}"
            );
        }
        assert_eq!(secs("MST"), -7 * 3600);
        for bad in [
            "GMT+24",
            "GMT+8:60",
            "GMT+8:3",
            "GMT+123:00",
            "GMT+",
            "GMT+x",
        ] {
            let err = Zone::parse(bad).unwrap_err();
            assert!(err.contains("hh:mm"), "{bad}: {err}");
        }
        assert!(matches!(zone("America/New_York"), Zone::Named(_)));
        assert!(matches!(zone("Etc/GMT+8"), Zone::Named(_)));
        assert!(matches!(zone("PST"), Zone::Named(_)));
        for bad in ["Nowhere/City", "", "Etc/Unknown", "+08:00"] {
            let err = Zone::parse(bad).unwrap_err();
            assert!(err.contains("Asia/Shanghai"), "{bad}: {err}");
        }
        // tz database names with their POSIX-inverted sign.
        assert_eq!(expand_at("%z", TS, &settings("Etc/GMT+8")), "-0800");
    }

    #[test]
    fn round_units() {
        assert_eq!(RoundUnit::parse("HOUR"), Some(RoundUnit::Hour));
        assert_eq!(RoundUnit::parse("minute"), Some(RoundUnit::Minute));
        assert_eq!(RoundUnit::parse("Second"), Some(RoundUnit::Second));
        assert_eq!(RoundUnit::parse("day"), None);
        assert_eq!(RoundUnit::Hour.max_value(), 24);
        assert_eq!(RoundUnit::Minute.max_value(), 60);
    }

    #[test]
    fn out_of_calendar_timestamps_are_errors_not_panics() {
        let path = BucketPath::parse("%Y").unwrap();
        for zone in ["UTC", "America/New_York"] {
            for round in [None, Some((1, RoundUnit::Hour))] {
                let time = TimeSettings {
                    round,
                    ..settings(zone)
                };
                let max = i64::MAX.to_string();
                assert_eq!(
                    path.expand(&headers(&[("timestamp", &max)]), 0, &time),
                    Err(ExpandError::TimestampOutOfRange(i64::MAX))
                );
            }
        }
    }
}
