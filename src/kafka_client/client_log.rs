//! What librdkafka says about a client (its log lines and its error events), passed on to
//! weir's log without the flood.
//!
//! While a broker is away, librdkafka retries the connection every few hundred milliseconds
//! and reports each attempt twice or three times (a `FAIL` log line, a transport error, "1/1
//! brokers are down"); rdkafka 0.39 also hands each of a producer's error events to the
//! context twice (`Client::poll_event` handles it, then `BaseProducer::poll` again). An edge
//! agent buffering through an outage of hours wrote ~9 lines a second. Here each *kind* of
//! message (its broker and its text with numbers and the trailing detail in parentheses left
//! out, see [`kind_of`]) is logged the first time, then held for [`QUIET`]; the next one after
//! that says how many were held. A new kind (a TLS failure after refused connections, another
//! broker) is logged at once. Hand-written because the throttle is keyed by librdkafka's own
//! message shapes; `tracing` has no rate limiting of its own.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;

/// How long a kind of message stays quiet after it was logged.
pub const QUIET: Duration = Duration::from_secs(60);
/// The very same text again this soon is rdkafka's second delivery of one event, not news.
const ECHO: Duration = Duration::from_millis(20);
/// Kinds remembered at most; past it, those quiet for longer than [`QUIET`] are forgotten.
const MAX_KINDS: usize = 256;

/// Which component a client belongs to: it names the log field, as on the component's other
/// lines (`sink=k1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Sink,
    Source,
    Channel,
}

/// Emits one event at a fixed level under the role's field name.
macro_rules! emit {
    ($level:ident, $role:expr, $name:expr, $($rest:tt)+) => {
        match $role {
            Role::Sink => tracing::$level!(sink = %$name, $($rest)+),
            Role::Source => tracing::$level!(source = %$name, $($rest)+),
            Role::Channel => tracing::$level!(channel = %$name, $($rest)+),
        }
    };
}

/// The log of one client: `what` names it in each line ("kafka client", "kafka consumer").
pub struct ClientLog {
    role: Role,
    name: String,
    what: &'static str,
    kinds: Mutex<HashMap<String, Kind>>,
    /// Told every error and serious log line, held back from the log or not (a sink's
    /// `LastError`, so that it names a refused or silent broker from the first attempt on,
    /// not only once a batch times out).
    problems: Option<Box<dyn Fn(String) + Send + Sync>>,
}

struct Kind {
    logged_at: Instant,
    /// Messages of this kind since `logged_at` that were not logged.
    held: u64,
    last_text: String,
    last_at: Instant,
}

/// What to do with a message.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Log it, saying how many of its kind were held since the last one logged.
    Log {
        held: u64,
    },
    Hold,
    /// rdkafka's second delivery of the same event: neither logged nor counted.
    Echo,
}

impl ClientLog {
    pub fn new(role: Role, name: &str, what: &'static str) -> ClientLog {
        ClientLog {
            role,
            name: name.to_owned(),
            what,
            kinds: Mutex::new(HashMap::new()),
            problems: None,
        }
    }

    /// Also tells `problems` of every error and serious log line.
    pub fn with_problems(mut self, problems: impl Fn(String) + Send + Sync + 'static) -> Self {
        self.problems = Some(Box::new(problems));
        self
    }

    fn tell(&self, text: impl FnOnce() -> String) {
        if let Some(p) = &self.problems {
            p(text());
        }
    }

    /// An error event (connection trouble, which librdkafka retries by itself).
    pub fn error(&self, error: &KafkaError, reason: &str) {
        // librdkafka raises AllBrokersDown as "0/1 brokers are down" too, once it counts a
        // broker it learned of besides the bootstrap one: read alone, the line says the broker
        // is fine in the middle of an outage. The "1/1" events and the refused connections
        // say what is going on.
        if reason.starts_with("0/") && reason.ends_with("brokers are down") {
            let what = self.what;
            emit!(debug, self.role, self.name, %error, "{what}: {reason}");
            return;
        }
        // "1/1 brokers are down" comes several times a second in an outage and names no
        // broker: told, it would hide the refused connection that does.
        if !reason.ends_with("brokers are down") {
            self.tell(|| format!("{}: {reason}", self.what));
        }
        if let Verdict::Log { held } = self.judge(reason, Instant::now()) {
            let what = self.what;
            emit!(warn, self.role, self.name, %error, "{what}: {reason}{}", held_note(held));
        }
    }

    /// An error a client call returned (a consumer's `poll`), judged like an error event.
    pub fn returned(&self, context: &str, error: &KafkaError) {
        let text = error.to_string();
        if let Verdict::Log { held } = self.judge(&text, Instant::now()) {
            emit!(warn, self.role, self.name, error = %text, "kafka: {context}{}", held_note(held));
        }
    }

    /// A log line of librdkafka's (weir sets its level to warnings and worse).
    pub fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        let serious = matches!(
            level,
            RDKafkaLogLevel::Emerg
                | RDKafkaLogLevel::Alert
                | RDKafkaLogLevel::Critical
                | RDKafkaLogLevel::Error
                | RDKafkaLogLevel::Warning
        );
        if !serious {
            emit!(
                debug,
                self.role,
                self.name,
                facility,
                "librdkafka: {message}"
            );
            return;
        }
        self.tell(|| format!("{}: {message}{}", self.what, explained(message)));
        let Verdict::Log { held } = self.judge(message, Instant::now()) else {
            return;
        };
        let note = format!("{}{}", explained(message), held_note(held));
        // librdkafka logs a failed broker connection ("FAIL": refused, reset, timed out) at
        // its error level, but the client connects again by itself and weir retries what it
        // did not deliver: a warning, as the rest of an outage's lines (audit 20 found these
        // as the only ERROR lines of outages ridden out without loss).
        if matches!(level, RDKafkaLogLevel::Warning) || facility == "FAIL" {
            emit!(
                warn,
                self.role,
                self.name,
                facility,
                "librdkafka: {message}{note}"
            );
        } else {
            emit!(
                error,
                self.role,
                self.name,
                facility,
                "librdkafka: {message}{note}"
            );
        }
    }

    fn judge(&self, text: &str, now: Instant) -> Verdict {
        let mut kinds = self.kinds.lock();
        if kinds.len() >= MAX_KINDS {
            kinds.retain(|_, k| now.duration_since(k.logged_at) < QUIET);
            if kinds.len() >= MAX_KINDS {
                kinds.clear();
            }
        }
        let key = kind_of(text);
        let Some(kind) = kinds.get_mut(&key) else {
            kinds.insert(
                key,
                Kind {
                    logged_at: now,
                    held: 0,
                    last_text: text.to_owned(),
                    last_at: now,
                },
            );
            return Verdict::Log { held: 0 };
        };
        if kind.last_text == text && now.duration_since(kind.last_at) < ECHO {
            return Verdict::Echo;
        }
        if kind.last_text != text {
            text.clone_into(&mut kind.last_text);
        }
        kind.last_at = now;
        if now.duration_since(kind.logged_at) < QUIET {
            kind.held += 1;
            return Verdict::Hold;
        }
        kind.logged_at = now;
        Verdict::Log {
            held: std::mem::take(&mut kind.held),
        }
    }
}

/// weir's reading of a librdkafka message whose own hint misleads, to go after it.
fn explained(message: &str) -> &'static str {
    if message.contains("ApiVersionRequest failed") && message.contains("Timed out") {
        // librdkafka guesses at a broker older than 0.10 whenever its first request times
        // out; a broker that answered before, or a modern one, is far more likely hung.
        "; weir: the broker accepted the connection but did not answer in time: it is \
         frozen, overloaded, or not a Kafka broker (the version hint applies only to a broker \
         that never answered, and older than 0.10)"
    } else {
        ""
    }
}

fn held_note(held: u64) -> String {
    if held == 0 {
        String::new()
    } else {
        format!(
            " ({held} more like this in the last {} s were not logged)",
            QUIET.as_secs()
        )
    }
}

/// The kind of a librdkafka message: the broker it is about (the text before the first ": ",
/// after librdkafka's `[thrd:…]: ` prefix), kept as it is, and the rest without its trailing
/// detail in parentheses ("(after 0ms in state CONNECT, 1 identical error(s) suppressed)") and
/// with every run of digits as `#`, except counts written as a fraction: "0/1 brokers are
/// down" and "1/1 brokers are down" are different news, and as one kind the once-a-minute
/// line showed whichever came last, "0/1" in the middle of an outage.
fn kind_of(text: &str) -> String {
    let text = text
        .strip_prefix("[thrd:")
        .and_then(|rest| rest.split_once("]: "))
        .map_or(text, |(_, rest)| rest);
    let (subject, rest) = match text.split_once(": ") {
        Some((subject, rest)) if !subject.contains(' ') => (subject, rest),
        _ => ("", text),
    };
    let rest = match rest.rfind(" (") {
        Some(at) if rest.ends_with(')') => &rest[..at],
        _ => rest,
    };
    let mut key = String::with_capacity(subject.len() + rest.len() + 1);
    key.push_str(subject);
    key.push('|');
    let bytes = rest.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        if !bytes[at].is_ascii_digit() {
            let next = rest[at..]
                .find(|c: char| c.is_ascii_digit())
                .map_or(rest.len(), |n| at + n);
            key.push_str(&rest[at..next]);
            at = next;
            continue;
        }
        let end = rest[at..]
            .find(|c: char| !c.is_ascii_digit())
            .map_or(rest.len(), |n| at + n);
        let digit_at = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_digit);
        let fraction = (bytes.get(end) == Some(&b'/') && digit_at(end + 1))
            || (at >= 2 && bytes[at - 1] == b'/' && digit_at(at - 2));
        key.push_str(if fraction { &rest[at..end] } else { "#" });
        at = end;
    }
    key
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const REFUSED: &str = "127.0.0.1:19092/bootstrap: Connect to ipv4#127.0.0.1:19092 failed: \
                           Connection refused (after 0ms in state CONNECT)";

    #[test]
    fn kinds_ignore_numbers_and_trailing_detail_but_keep_the_broker() {
        assert_ne!(
            kind_of("0/1 brokers are down"),
            kind_of("1/1 brokers are down")
        );
        assert_eq!(kind_of("12/30 brokers are down"), "|12/30 brokers are down");
        let later = "127.0.0.1:19092/bootstrap: Connect to ipv4#127.0.0.1:19092 failed: \
                     Connection refused (after 1ms in state CONNECT, 3 identical error(s) suppressed)";
        assert_eq!(kind_of(REFUSED), kind_of(later));
        let logged = format!("[thrd:127.0.0.1:19092/bootstrap]: {REFUSED}");
        assert_eq!(kind_of(&logged), kind_of(REFUSED));
        assert_eq!(
            kind_of(REFUSED),
            "127.0.0.1:19092/bootstrap|Connect to ipv###.#.#.#:# failed: Connection refused"
        );
        let other_broker = REFUSED.replace("127.0.0.1:19092/bootstrap:", "10.0.0.2:9092/2:");
        assert_ne!(kind_of(REFUSED), kind_of(&other_broker));
        let tls = "127.0.0.1:19092/bootstrap: SSL handshake failed: certificate verify failed";
        assert_ne!(kind_of(REFUSED), kind_of(tls));
    }

    #[test]
    fn a_kind_is_logged_once_per_quiet_period_with_the_count_held() {
        let log = ClientLog::new(Role::Sink, "k1", "kafka client");
        let t0 = Instant::now();
        assert_eq!(log.judge(REFUSED, t0), Verdict::Log { held: 0 });
        // rdkafka's second delivery of the same event.
        assert_eq!(log.judge(REFUSED, t0 + ECHO / 2), Verdict::Echo);
        let mut held = 0;
        let mut at = t0;
        while at < t0 + QUIET - Duration::from_millis(500) {
            at += Duration::from_millis(400);
            assert_eq!(log.judge(REFUSED, at), Verdict::Hold);
            held += 1;
        }
        // Another kind is not held back by the first.
        assert_eq!(
            log.judge("1/1 brokers are down", at),
            Verdict::Log { held: 0 }
        );
        assert_eq!(log.judge(REFUSED, t0 + QUIET), Verdict::Log { held });
        assert_eq!(
            log.judge(REFUSED, t0 + QUIET + Duration::from_secs(1)),
            Verdict::Hold
        );
    }

    /// Every error and serious line reaches the problem hook, also those the log holds back;
    /// librdkafka's "N/M brokers are down", which names no broker, and its debug lines do not.
    #[test]
    fn problems_are_told_whether_logged_or_held() {
        let told = Arc::new(Mutex::new(Vec::new()));
        let sink = told.clone();
        let log = ClientLog::new(Role::Sink, "k1", "kafka client")
            .with_problems(move |t| sink.lock().push(t));
        let down = KafkaError::Global(rdkafka::types::RDKafkaErrorCode::AllBrokersDown);
        log.log(RDKafkaLogLevel::Error, "FAIL", REFUSED);
        log.log(RDKafkaLogLevel::Error, "FAIL", REFUSED);
        log.log(RDKafkaLogLevel::Debug, "CONNECT", "connecting");
        log.error(&down, "1/1 brokers are down");
        log.error(&down, "0/1 brokers are down");
        let told = told.lock();
        assert_eq!(told.len(), 2, "{told:?}");
        assert!(
            told.iter()
                .all(|t| *t == format!("kafka client: {REFUSED}"))
        );
    }

    #[test]
    fn a_timed_out_first_request_is_explained_and_other_messages_are_not() {
        let hung = "127.0.0.1:19201/bootstrap: ApiVersionRequest failed: Local: Timed out: \
                    probably due to broker version < 0.10 (see api.version.request \
                    configuration) (after 10014ms in state APIVERSION_QUERY)";
        assert!(explained(hung).contains("did not answer in time"));
        assert_eq!(explained(REFUSED), "");
    }

    #[test]
    fn the_kinds_remembered_are_bounded() {
        let log = ClientLog::new(Role::Source, "r1", "kafka consumer");
        let t0 = Instant::now();
        for i in 0..(3 * MAX_KINDS) {
            let text = format!("broker{i}/1: Disconnected");
            assert_eq!(log.judge(&text, t0), Verdict::Log { held: 0 });
        }
        assert!(log.kinds.lock().len() <= MAX_KINDS);
    }
}
