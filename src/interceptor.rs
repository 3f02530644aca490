//! Interceptors: per-source transformations applied, in configured order, to every batch before
//! the selector routes it (Flume's `timestamp`, `host`, `static`, `regex_filter` and UUID
//! interceptors, with their keys and defaults).

use std::net::ToSocketAddrs;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::InterceptorConfig;
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
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map(|d| d.as_millis())
                        .unwrap_or(0)
                        .to_string();
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
