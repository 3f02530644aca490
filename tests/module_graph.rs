//! The modules under `src/` depend on each other one way only: data flows source → channel →
//! sink, and shared pieces (events, config, the log) sit below what uses them. This test reads
//! the sources as text, collects which module names which (`crate::a` from module `b`, and
//! `super::a` or `crate::p::a` between two modules of one parent `p`), leaves out test code, and
//! fails on any cycle, naming it. A cycle crept in three times before this test existed (sink
//! and metrics, config and the thrift wire code, two pairs inside `config` and `wal`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A file's module path below `src/`: `src/sink/kafka/mod.rs` → `["sink", "kafka"]`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The file's text up to its test module, if any: tests may reach anywhere.
fn non_test_code(text: &str) -> &str {
    match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => text,
    }
}

/// Every identifier that follows `prefix` in `code`.
fn names_after<'a>(code: &'a str, prefix: &str) -> Vec<&'a str> {
    code.match_indices(prefix)
        .filter(|(at, _)| {
            // `crate::` must not be the tail of a longer path segment (`mycrate::`).
            !code[..*at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
        .map(|(at, _)| {
            let rest = &code[at + prefix.len()..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .filter(|name| !name.is_empty())
        .collect()
}

/// Two graphs: one between top-level modules, one between modules sharing a parent (named
/// `parent::child`). Sources are `src/` itself.
fn graphs() -> (Graph, Graph) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_path(&src, f)).collect();
    let tops: BTreeSet<&str> = modules
        .iter()
        .filter_map(|m| m.first().map(String::as_str))
        .collect();
    let (mut top, mut siblings) = (Graph::new(), Graph::new());
    for file in &files {
        let module = module_path(&src, file);
        let Some(me) = module.first() else {
            continue; // lib.rs, main.rs
        };
        let text = std::fs::read_to_string(file).unwrap();
        let code = non_test_code(&text);
        for to in names_after(code, "crate::") {
            if to != me && tops.contains(to) {
                top.entry(me.clone()).or_default().insert(to.to_owned());
            }
        }
        if module.len() < 2 {
            continue;
        }
        let (parent, child) = (&module[0], &module[1]);
        let is_sibling =
            |name: &str| name != child && modules.contains(&vec![parent.clone(), name.to_owned()]);
        let mut named: Vec<&str> = names_after(code, &format!("crate::{parent}::"));
        if module.len() == 2 {
            named.extend(names_after(code, "super::"));
        }
        for to in named.into_iter().filter(|n| is_sibling(n)) {
            siblings
                .entry(format!("{parent}::{child}"))
                .or_default()
                .insert(format!("{parent}::{to}"));
        }
    }
    (top, siblings)
}

/// A cycle through `from`, as the list of modules along it, if there is one.
fn cycle_through(graph: &Graph, from: &str) -> Option<Vec<String>> {
    let mut stack = vec![(from.to_owned(), vec![from.to_owned()])];
    let mut seen = BTreeSet::new();
    while let Some((at, path)) = stack.pop() {
        for next in graph.get(&at).into_iter().flatten() {
            if next == from {
                let mut cycle = path.clone();
                cycle.push(from.to_owned());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

fn cycles(graph: &Graph) -> Vec<String> {
    graph
        .keys()
        .filter_map(|m| cycle_through(graph, m))
        .map(|c| c.join(" -> "))
        .collect()
}

#[test]
fn modules_depend_on_each_other_one_way_only() {
    let (top, siblings) = graphs();
    assert!(
        top.len() > 10 && top.get("sink").is_some_and(|s| s.contains("channel")),
        "the scan found too little to judge: {top:?}"
    );
    assert!(
        siblings.keys().any(|k| k.starts_with("wal::")),
        "the scan found no edge inside wal: {siblings:?}"
    );
    let found: Vec<String> = cycles(&top).into_iter().chain(cycles(&siblings)).collect();
    assert!(found.is_empty(), "module cycles:\n{}", found.join("\n"));
}

#[test]
fn the_cycle_finder_finds_a_cycle_and_names_it() {
    let mut g = Graph::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    assert!(cycles(&g).is_empty());
    g.entry("c".into()).or_default().insert("a".into());
    assert_eq!(
        cycle_through(&g, "a").unwrap().join(" -> "),
        "a -> b -> c -> a"
    );
}
