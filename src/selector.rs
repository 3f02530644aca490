//! Channel selectors: which of a source's channels each event goes to, and which of them are
//! optional (a failure there does not fail the source's transaction).

use std::collections::HashMap;

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
        }
    }
}
