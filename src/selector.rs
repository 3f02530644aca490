//! Channel selectors: which of a source's channels each event goes to, and which of them are
//! optional (a failure there does not fail the source's transaction).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::config::SelectorConfig;
use crate::event::Event;

/// A selector over a source's channels, by index into the list given at construction.
pub enum Selector {
    Replicating {
        required: Vec<usize>,
        optional: Vec<usize>,
    },
    Multiplexing {
        header: String,
        mapping: HashMap<String, Vec<usize>>,
        optional: HashMap<String, Vec<usize>>,
        default: Vec<usize>,
    },
    /// One channel per event: the next in turn, or one at random.
    LoadBalancing {
        channels: Vec<usize>,
        next: AtomicUsize,
        random: bool,
    },
}

impl Selector {
    /// `channels` are the source's channel names, in the order the caller holds them.
    pub fn new(config: &SelectorConfig, channels: &[String]) -> Selector {
        let index = |names: &[String]| -> Vec<usize> {
            names
                .iter()
                .filter_map(|n| channels.iter().position(|c| c == n))
                .collect()
        };
        let table = |t: &[(String, Vec<String>)]| -> HashMap<String, Vec<usize>> {
            t.iter()
                .map(|(v, names)| (v.clone(), index(names)))
                .collect()
        };
        match config {
            SelectorConfig::Replicating { optional } => {
                let optional = index(optional);
                Selector::Replicating {
                    required: (0..channels.len())
                        .filter(|i| !optional.contains(i))
                        .collect(),
                    optional,
                }
            }
            SelectorConfig::Multiplexing {
                header,
                mapping,
                optional,
                default,
            } => Selector::Multiplexing {
                header: header.clone(),
                mapping: table(mapping),
                optional: table(optional),
                default: index(default),
            },
            SelectorConfig::LoadBalancing { random } => Selector::LoadBalancing {
                channels: (0..channels.len()).collect(),
                next: AtomicUsize::new(0),
                random: *random,
            },
        }
    }

    /// The required and optional channels for `event`.
    pub fn route<'a>(&'a self, event: &Event) -> (&'a [usize], &'a [usize]) {
        match self {
            Selector::Replicating { required, optional } => (required, optional),
            Selector::Multiplexing {
                header,
                mapping,
                optional,
                default,
            } => {
                let value = event.headers.get(header);
                let required = value.and_then(|v| mapping.get(v)).unwrap_or(default);
                let optional = value
                    .and_then(|v| optional.get(v))
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                (required, optional)
            }
            Selector::LoadBalancing {
                channels,
                next,
                random,
            } => {
                if channels.is_empty() {
                    return (&[], &[]);
                }
                let i = if *random {
                    fastrand::usize(..channels.len())
                } else {
                    next.fetch_add(1, Ordering::Relaxed) % channels.len()
                };
                (std::slice::from_ref(&channels[i]), &[])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Flume 1.10's load_balancing selector: each event to one channel, in turn or at random,
    /// none optional.
    #[test]
    fn load_balancing_sends_each_event_to_one_channel() {
        let names: Vec<String> = ["c1", "c2", "c3"].map(String::from).to_vec();
        let event = Event::new(&b"x"[..]);
        let turn = Selector::new(&SelectorConfig::LoadBalancing { random: false }, &names);
        let picks: Vec<usize> = (0..6)
            .map(|_| {
                let (required, optional) = turn.route(&event);
                assert!(optional.is_empty());
                assert_eq!(required.len(), 1);
                required[0]
            })
            .collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        let random = Selector::new(&SelectorConfig::LoadBalancing { random: true }, &names);
        let mut seen = [0usize; 3];
        for _ in 0..300 {
            let (required, _) = random.route(&event);
            seen[required[0]] += 1;
        }
        assert!(seen.iter().all(|n| *n > 30), "{seen:?}");
    }
}
