//! `${…}` references in property values, resolved as Flume resolves them (1.10+, commons-text
//! `StringSubstitutor` behind `MapResolver`), so a file written for a container with
//! `port = ${env:NC_PORT}` runs unchanged:
//!
//! - `${env:NAME}`: the environment variable `NAME`;
//! - `${sys:NAME}`: the `-DNAME=value` option given on the command line;
//! - `${NAME}`: the key `NAME` of the configuration, which may be set in any of the files
//!   given with `-f` (a later file's value wins, as for every key); with
//!   `-DpropertiesImplementation=org.apache.flume.node.EnvVarResolverProperties` (Flume 1.8/1.9's
//!   switch), else the environment variable `NAME`;
//! - `${NAME:-default}`: `default` when `NAME` is not set; `$${` is a literal `${`;
//! - references nest (`${env:${sys:which}}`), and a value that was looked up is resolved in turn;
//! - Flume 1.10's config filters: `${f1['key']}` (also `${f1["key"]}`, `${f1[key]}`) with
//!   `<agent>.configfilters = f1` and `<agent>.configfilters.f1.type` `env` (the environment
//!   variable `key`) or `external` (the first line `<command> key` prints; `command` and
//!   `charset` UTF-8), by alias or class name. The Hadoop credential store filter is refused.
//!
//! One difference, on purpose: Flume leaves a reference it cannot resolve in the value as is, so
//! `dataDirs = ${env:DATA}` becomes a directory named `${env:DATA}`. weir refuses to start and
//! names the key, its line and the reference instead.
//!
//! Hand-written: the grammar is these few forms, and a template crate would not have Flume's
//! lookups (keys of the same file, `sys:`), its `$${` escape, or errors that point at a line.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};

use super::{ConfigError, Properties};

/// The class name Flume 1.8/1.9 users set to turn bare `${NAME}` into environment lookups.
const ENV_VAR_RESOLVER: &str = "org.apache.flume.node.EnvVarResolverProperties";

/// Where references are looked up besides the configuration's own keys.
pub struct Lookups<'a> {
    /// `-Dkey=value` options: `${sys:key}`.
    pub system: &'a [(String, String)],
    /// A bare `${NAME}` that is no key of the file falls back to the environment.
    pub env_fallback: bool,
    /// The environment (a parameter so that tests need not change the process's).
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl Lookups<'_> {
    /// The lookups of a process started with the `-D` options `system`.
    pub fn process(system: &[(String, String)]) -> Lookups<'_> {
        Lookups {
            system,
            env_fallback: system
                .iter()
                .any(|(k, v)| k == "propertiesImplementation" && v == ENV_VAR_RESOLVER),
            env: &|name| std::env::var(name).ok(),
        }
    }
}

/// What a reference may be resolved with: the lookups, and the agent's config filters.
struct Context<'a, 'l> {
    lookups: &'a Lookups<'l>,
    filters: BTreeMap<String, ConfigFilter>,
    /// References the value being resolved may still resolve (see [`MAX_REFERENCES`]).
    references_left: Cell<usize>,
    /// The value being resolved is a Java replacement string, where `${name}` is a named group
    /// of the match: a bare `${name}` that nothing resolves is kept for it, as Flume keeps
    /// every reference it cannot resolve (audit 27).
    keeps_group_names: Cell<bool>,
}

/// Flume 1.10's config filters (`<agent>.configfilters = f1`, `<agent>.configfilters.f1.type`),
/// referenced as `${f1['key']}`, `${f1["key"]}` or `${f1[key]}`, mostly to keep secrets out of
/// the file.
enum ConfigFilter {
    /// `env`: the environment variable `key`.
    Env,
    /// `external`: the first line `command key` prints (`command` split at white space, as
    /// Flume splits it); a non-zero exit is an error.
    External { command: Vec<String> },
}

impl ConfigFilter {
    fn apply(&self, key: &str, lookups: &Lookups) -> Result<String, String> {
        match self {
            ConfigFilter::Env => {
                (lookups.env)(key).ok_or_else(|| format!("env: no environment variable {key}"))
            }
            ConfigFilter::External { command } => {
                let shown = command.join(" ");
                let out = std::process::Command::new(&command[0])
                    .args(&command[1..])
                    .arg(key)
                    .stdin(std::process::Stdio::null())
                    .output()
                    .map_err(|e| format!("external: cannot run `{shown}`: {e}"))?;
                if !out.status.success() {
                    return Err(format!(
                        "external: `{shown} {key}` failed ({}): {}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr).trim()
                    ));
                }
                let stdout = String::from_utf8(out.stdout)
                    .map_err(|_| format!("external: `{shown} {key}` printed non-UTF-8 output"))?;
                match stdout.lines().next() {
                    Some(line) => Ok(line.to_owned()),
                    None => Err(format!("external: `{shown} {key}` printed nothing")),
                }
            }
        }
    }
}

/// The config filters the agent under `prefix` defines. Types by alias (any case) or Flume's
/// class name; the Hadoop credential store filter is refused (it needs Hadoop).
fn config_filters(
    props: &Properties,
    prefix: &str,
) -> Result<BTreeMap<String, ConfigFilter>, ConfigError> {
    let mut filters = BTreeMap::new();
    let Some(list) = props.get(&format!("{prefix}configfilters")) else {
        return Ok(filters);
    };
    let error = |key: &str, message: String| {
        let entry = props.get(key).unwrap_or(list);
        ConfigError {
            files: vec![entry.file.to_path_buf()],
            line: Some(entry.line),
            key: Some(key.to_owned()),
            message,
            also: Vec::new(),
        }
    };
    for name in list.value.split_whitespace() {
        let key = |k: &str| format!("{prefix}configfilters.{name}.{k}");
        let ty = props
            .get(&key("type"))
            .map(|e| e.value.clone())
            .unwrap_or_default();
        let filter = match ty.to_ascii_lowercase().as_str() {
            "env" | "org.apache.flume.configfilter.environmentvariableconfigfilter" => {
                ConfigFilter::Env
            }
            "external" | "org.apache.flume.configfilter.externalprocessconfigfilter" => {
                let command: Vec<String> = props
                    .get(&key("command"))
                    .map(|e| e.value.split_whitespace().map(str::to_owned).collect())
                    .unwrap_or_default();
                if command.is_empty() {
                    return Err(error(
                        &key("command"),
                        "missing: the external config filter needs the command that prints a \
                         value"
                            .into(),
                    ));
                }
                if let Some(charset) = props.get(&key("charset"))
                    && !charset.value.eq_ignore_ascii_case("UTF-8")
                {
                    return Err(error(
                        &key("charset"),
                        format!("'{}': only UTF-8 is supported", charset.value),
                    ));
                }
                ConfigFilter::External { command }
            }
            _ => {
                return Err(error(
                    &key("type"),
                    format!(
                        "config filter type '{ty}' is not supported; supported: env, external \
                         (Hadoop's credential store needs Hadoop)"
                    ),
                ));
            }
        };
        filters.insert(name.to_owned(), filter);
    }
    Ok(filters)
}

/// `name['key']`, `name["key"]` or `name[key]` naming one of the agent's config filters: the
/// filter and the key.
fn filter_reference<'n, 'c>(
    name: &'n str,
    ctx: &'c Context,
) -> Option<(&'c ConfigFilter, &'n str)> {
    let (filter, rest) = name.split_once('[')?;
    let inner = rest.strip_suffix(']')?;
    let key = ["'", "\""]
        .iter()
        .find_map(|q| inner.strip_prefix(q)?.strip_suffix(q))
        .unwrap_or(inner);
    let valid = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return None;
    }
    Some((ctx.filters.get(filter)?, key))
}

/// How deep references may chain (`${a}` → `${b}` → …) before it is taken for a loop.
const MAX_DEPTH: usize = 32;
/// How many references one value may resolve, counting those inside the values it refers to,
/// and how long it may grow. The depth limit alone does not bound the work: a key whose value
/// names the next key ten times, twelve keys deep, stands for 10^12 references (a "billion
/// laughs"), which would otherwise hang the agent while its memory grows without end. Real
/// configurations resolve a handful of references into values of a few hundred bytes.
const MAX_REFERENCES: usize = 10_000;
const MAX_VALUE_LEN: usize = 1 << 20;

impl Properties {
    /// Resolves the references in the values of every key under `prefix` (the agent being
    /// started: another agent's keys in the same file are left alone, so that its unset
    /// variables do not stop this one).
    pub fn interpolate(&mut self, prefix: &str, lookups: &Lookups) -> Result<(), ConfigError> {
        let ctx = Context {
            lookups,
            filters: config_filters(self, prefix)?,
            references_left: Cell::new(0),
            keeps_group_names: Cell::new(false),
        };
        let mut resolved = Vec::new();
        for (key, entry) in self.entries.range(prefix.to_owned()..) {
            if !key.starts_with(prefix) {
                break;
            }
            if !entry.value.contains("${") {
                continue;
            }
            let mut chain = vec![key.as_str()];
            ctx.references_left.set(MAX_REFERENCES);
            ctx.keeps_group_names
                .set(key.contains(".interceptors.") && key.ends_with(".replaceString"));
            let value =
                resolve(&entry.value, self, &ctx, &mut chain).map_err(|message| ConfigError {
                    files: vec![entry.file.to_path_buf()],
                    line: Some(entry.line),
                    key: Some(key.clone()),
                    message,
                    also: Vec::new(),
                })?;
            resolved.push((key.clone(), value));
        }
        for (key, value) in resolved {
            if let Some(e) = self.entries.get_mut(&key) {
                e.value = value;
            }
        }
        Ok(())
    }
}

/// `text` with every reference replaced. `chain` holds the file keys being resolved, to name a
/// loop. The error is the message for the key that started the chain.
fn resolve<'p>(
    text: &str,
    props: &'p Properties,
    ctx: &Context,
    chain: &mut Vec<&'p str>,
) -> Result<String, String> {
    if chain.len() > MAX_DEPTH {
        return Err(format!(
            "references nest deeper than {MAX_DEPTH}: {}",
            keys_of(chain)
        ));
    }
    let ends = reference_ends(text);
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    while let Some(found) = text[pos..].find('$') {
        let at = pos + found;
        out.push_str(&text[pos..at]);
        if text[at..].starts_with("$${") {
            out.push_str("${");
            pos = at + 3;
        } else if let Some(&close) = ends.get(&at) {
            let Some(left) = ctx.references_left.get().checked_sub(1) else {
                return Err(format!(
                    "resolving it takes more than {MAX_REFERENCES} references (a key used \
                     many times over, at several levels): {}",
                    keys_of(chain)
                ));
            };
            ctx.references_left.set(left);
            let inner = &text[at + 2..close];
            pos = close + 1;
            let (name, default) = split_default(inner);
            // A reference inside the name is resolved first, as StringSubstitutor does with
            // substitution in variables enabled; the default only when it is needed. Both count
            // towards the depth limit, so no nesting can exhaust the stack.
            chain.push("…");
            let name = resolve(name, props, ctx, chain)?;
            let found = lookup(&name, props, ctx, chain)?;
            let value = match (found, default) {
                (Some(v), _) => v,
                (None, Some(d)) => resolve(d, props, ctx, chain)?,
                (None, None) if ctx.keeps_group_names.get() && is_group_name(&name) => {
                    format!("${{{name}}}")
                }
                (None, None) => return Err(unresolved(&name, props, ctx)),
            };
            chain.pop();
            if out.len() + value.len() > MAX_VALUE_LEN {
                return Err(format!(
                    "the value grows past {} MiB once its references are resolved: {}",
                    MAX_VALUE_LEN >> 20,
                    keys_of(chain)
                ));
            }
            out.push_str(&value);
        } else {
            // A `$` that starts no reference, or an unclosed `${`: literal, as in Flume.
            out.push('$');
            pos = at + 1;
        }
    }
    out.push_str(&text[pos..]);
    Ok(out)
}

/// For every `${` in `text` that a `}` closes, counting nested references: where it starts ->
/// where its `}` is. One pass, so that a value full of unclosed `${` is not rescanned to its
/// end from each of them (quadratic: seconds for a 200 KB line).
fn reference_ends(text: &str) -> HashMap<usize, usize> {
    let bytes = text.as_bytes();
    let mut open = Vec::new();
    let mut ends = HashMap::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"${") {
            open.push(i);
            i += 2;
            continue;
        }
        if bytes[i] == b'}'
            && let Some(start) = open.pop()
        {
            ends.insert(start, i);
        }
        i += 1;
    }
    ends
}

/// `name:-default` split at its first `:-` outside a nested reference.
fn split_default(inner: &str) -> (&str, Option<&str>) {
    match find_top_level(inner, b":-") {
        Some(i) => (&inner[..i], Some(&inner[i + 2..])),
        None => (inner, None),
    }
}

/// Where `pattern` first occurs in `text` outside any nested `${…}`.
fn find_top_level(text: &str, pattern: &[u8]) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"${") {
            depth += 1;
            i += 2;
            continue;
        }
        if depth == 0 && bytes[i..].starts_with(pattern) {
            return Some(i);
        }
        if bytes[i] == b'}' {
            depth = depth.saturating_sub(1);
        }
        i += 1;
    }
    None
}

/// The value `name` stands for, itself resolved; `None` if it is not set anywhere.
fn lookup<'p>(
    name: &str,
    props: &'p Properties,
    ctx: &Context,
    chain: &mut Vec<&'p str>,
) -> Result<Option<String>, String> {
    let lookups = ctx.lookups;
    let found = if let Some((filter, key)) = filter_reference(name, ctx) {
        Some(
            filter
                .apply(key, lookups)
                .map_err(|why| format!("`${{{name}}}` cannot be resolved: config filter {why}"))?,
        )
    } else if let Some(var) = name.strip_prefix("env:") {
        (lookups.env)(var)
    } else if let Some(prop) = name.strip_prefix("sys:") {
        lookups
            .system
            .iter()
            .rev()
            .find(|(k, _)| k == prop)
            .map(|(_, v)| v.clone())
    } else if let Some((prefix, _)) = name.split_once(':')
        && matches!(prefix, "java" | "date")
    {
        return Err(format!(
            "`${{{name}}}`: Flume's `{prefix}:` lookup is not supported by weir \
             (supported: env:, sys:, and keys of the file)"
        ));
    } else if let Some((key, entry)) = props.entries.get_key_value(name) {
        if chain.contains(&key.as_str()) {
            return Err(format!(
                "references form a loop: {} -> {key}",
                keys_of(chain)
            ));
        }
        chain.push(key.as_str());
        let value = resolve(&entry.value, props, ctx, chain)?;
        chain.pop();
        return Ok(Some(value));
    } else if lookups.env_fallback {
        (lookups.env)(name)
    } else {
        None
    };
    match found {
        Some(v) if v.contains("${") => {
            // A looked-up value is resolved in turn (no file key in `chain` stands for it, so
            // only the depth limit stops a loop through the environment).
            chain.push("…");
            let v = resolve(&v, props, ctx, chain);
            chain.pop();
            v.map(Some)
        }
        other => Ok(other),
    }
}

/// Whether `name` can be a Java regex group's name (a letter, then letters and digits), as a
/// `${name}` of a replacement string refers to one.
fn is_group_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric())
}

/// The file keys in `chain`, as `a -> b -> c` (without the depth markers of nested references).
fn keys_of(chain: &[&str]) -> String {
    let keys: Vec<&str> = chain.iter().copied().filter(|k| *k != "…").collect();
    keys.join(" -> ")
}

fn unresolved(name: &str, props: &Properties, ctx: &Context) -> String {
    let lookups = ctx.lookups;
    let the_files = props.the_files();
    let hint = if let Some(var) = name.strip_prefix("env:") {
        format!("the environment variable {var} is not set")
    } else if let Some(prop) = name.strip_prefix("sys:") {
        format!("no -D{prop}=… option was given")
    } else if lookups.env_fallback {
        format!("no key {name} in {the_files} and no environment variable {name}")
    } else {
        format!(
            "no key {name} in {the_files} (for the environment variable write ${{env:{name}}}, \
             or start with -DpropertiesImplementation={ENV_VAR_RESOLVER})"
        )
    };
    format!(
        "`${{{name}}}` cannot be resolved: {hint}; give a default with `${{{name}:-value}}`, \
         or write `$${{` for a literal `${{`"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn env(name: &str) -> Option<String> {
        match name {
            "NC_PORT" => Some("44444".into()),
            "DATA" => Some("/var/lib/weir".into()),
            "WHICH" => Some("NC_PORT".into()),
            "SELF" => Some("${env:SELF}".into()),
            _ => None,
        }
    }

    fn interpolate(text: &str, system: &[(&str, &str)], env_fallback: bool) -> Properties {
        try_interpolate(text, system, env_fallback).unwrap()
    }

    /// In an interceptor's `replaceString`, `${name}` is Java's reference to a named group: one
    /// that nothing resolves is kept for the regex, as Flume keeps it. Anywhere else it stops
    /// the start, and a key of that name is still used.
    #[test]
    fn a_replacement_keeps_named_groups_nothing_resolves() {
        let replacement = |text: &str| {
            let p = interpolate(text, &[], false);
            let key = "a.sources.r1.interceptors.i1.replaceString";
            p.get(key).unwrap().value.clone()
        };
        assert_eq!(
            replacement(
                "a.sources.r1.interceptors.i1.replaceString = ${v}:${user} ${env:NC_PORT}\n"
            ),
            "${v}:${user} 44444"
        );
        assert_eq!(
            replacement("v = seven\na.sources.r1.interceptors.i1.replaceString = ${v}\n"),
            "seven"
        );
        for unresolved in [
            "a.sources.r1.port = ${v}\n",
            "a.sources.r1.interceptors.i1.replaceString = ${env:NOPE}\n",
        ] {
            assert!(
                try_interpolate(unresolved, &[], false).is_err(),
                "{unresolved}"
            );
        }
    }

    fn try_interpolate(
        text: &str,
        system: &[(&str, &str)],
        env_fallback: bool,
    ) -> Result<Properties, ConfigError> {
        let system: Vec<(String, String)> = system
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut props = Properties::parse(Path::new("t.properties"), text.as_bytes()).unwrap();
        props.interpolate(
            "a.",
            &Lookups {
                system: &system,
                env_fallback,
                env: &env,
            },
        )?;
        Ok(props)
    }

    /// The error for `text` with no `-D` options and no environment fallback.
    fn error(text: &str) -> String {
        try_interpolate(text, &[], false).unwrap_err().to_string()
    }

    /// Checks each `(key, resolved value)` pair.
    fn assert_values(props: &Properties, expected: &[(&str, &str)]) {
        for (key, want) in expected {
            assert_eq!(value(props, key), *want, "{key}");
        }
    }

    fn value<'p>(props: &'p Properties, key: &str) -> &'p str {
        &props.get(key).unwrap().value
    }

    /// Flume 1.10's config filters: `env` and `external`, by alias or class name, with the
    /// three quotings of the key; a filter that cannot answer is an error naming the key.
    #[test]
    fn config_filters_resolve_env_and_external_references() {
        let props = interpolate(
            "a.configfilters = e x\n\
             a.configfilters.e.type = env\n\
             a.configfilters.x.type = org.apache.flume.configfilter.ExternalProcessConfigFilter\n\
             a.configfilters.x.command = /usr/bin/printf secret-%s\n\
             a.p1 = ${e['NC_PORT']}\na.p2 = ${e[\"NC_PORT\"]}\na.p3 = ${e[NC_PORT]}\n\
             a.pw = ${x['db-password']}!\na.other = ${f['k']:-kept}\n",
            &[],
            false,
        );
        assert_values(
            &props,
            &[
                ("a.p1", "44444"),
                ("a.p2", "44444"),
                ("a.p3", "44444"),
                ("a.pw", "secret-db-password!"),
                ("a.other", "kept"),
            ],
        );
        let e = error("a.configfilters = e\na.configfilters.e.type = env\na.x = ${e['NOPE']}\n");
        assert!(
            e.starts_with(
                "t.properties:3: a.x: `${e['NOPE']}` cannot be resolved: config filter env"
            ),
            "{e}"
        );
        let e = error(
            "a.configfilters = x\na.configfilters.x.type = external\n\
             a.configfilters.x.command = /bin/false\na.x = ${x[k]}\n",
        );
        assert!(e.contains("external: `/bin/false k` failed"), "{e}");
        let e = error("a.configfilters = h\na.configfilters.h.type = hadoop\n");
        assert!(
            e.starts_with("t.properties:2: a.configfilters.h.type: config filter type 'hadoop'"),
            "{e}"
        );
        let e = error("a.configfilters = x\na.configfilters.x.type = external\n");
        assert!(e.contains("a.configfilters.x.command: missing"), "{e}");
    }

    #[test]
    fn env_sys_and_file_keys_are_resolved() {
        let p = interpolate(
            "base = /srv\n\
             a.port = ${env:NC_PORT}\n\
             a.dir = ${env:DATA}/log\n\
             a.bind = ${sys:bind.addr}\n\
             a.path = ${base}/in-${sys:bind.addr}\n",
            &[("bind.addr", "10.0.0.1")],
            false,
        );
        assert_values(
            &p,
            &[
                ("a.port", "44444"),
                ("a.dir", "/var/lib/weir/log"),
                ("a.bind", "10.0.0.1"),
                ("a.path", "/srv/in-10.0.0.1"),
            ],
        );
    }

    #[test]
    fn defaults_escapes_nesting_and_chains() {
        let p = interpolate(
            "a.x = ${env:UNSET:-fallback}\n\
             a.y = $${env:NC_PORT} costs $5\n\
             a.z = ${env:${env:WHICH}}\n\
             a.first = ${a.second}\n\
             a.second = ${env:NC_PORT}!\n\
             a.open = ${env:NC_PORT\n\
             a.empty = ${sys:missing:-}\n\
             a.lazy = ${env:NC_PORT:-${env:NOPE}}\n\
             a.nested = ${env:NOPE:-${env:DATA:-x}/y}\n\
             a.inner = ${env:${sys:missing:-NC_PORT}}\n",
            &[],
            false,
        );
        assert_values(
            &p,
            &[
                ("a.x", "fallback"),
                ("a.y", "${env:NC_PORT} costs $5"),
                ("a.z", "44444"),
                ("a.first", "44444!"),
                ("a.open", "${env:NC_PORT"),
                ("a.empty", ""),
                // The default is resolved only when needed, and may hold references and `:-`.
                ("a.lazy", "44444"),
                ("a.nested", "/var/lib/weir/y"),
                ("a.inner", "44444"),
            ],
        );
    }

    /// Flume 1.8/1.9's `-DpropertiesImplementation=…EnvVarResolverProperties`: a bare name is an
    /// environment variable when the file has no such key; without it, it must be a key.
    #[test]
    fn bare_names_reach_the_environment_only_with_the_flume_switch() {
        let text = "a.port = ${NC_PORT}\n";
        assert_eq!(value(&interpolate(text, &[], true), "a.port"), "44444");
        let err = error(text);
        assert_eq!(
            err,
            "t.properties:1: a.port: `${NC_PORT}` cannot be resolved: no key NC_PORT in the \
             file (for the environment variable write ${env:NC_PORT}, or start with \
             -DpropertiesImplementation=org.apache.flume.node.EnvVarResolverProperties); give \
             a default with `${NC_PORT:-value}`, or write `$${` for a literal `${`"
        );
        // A key of the file wins over the environment, as in Flume.
        let p = interpolate("NC_PORT = 1\na.port = ${NC_PORT}\n", &[], true);
        assert_eq!(value(&p, "a.port"), "1");
    }

    #[test]
    fn what_cannot_be_resolved_is_an_error_naming_key_line_and_reference() {
        let err = error("# c\na.dir = ${env:NOPE}/x\n");
        assert!(
            err.starts_with(
                "t.properties:2: a.dir: `${env:NOPE}` cannot be resolved: the environment \
                 variable NOPE is not set;"
            ),
            "{err}"
        );
        let err = error("a.b = ${sys:port}\n");
        assert!(err.contains("no -Dport=… option was given"), "{err}");
        let err = error("a.b = ${date:yyyy}\n");
        assert!(err.contains("`date:` lookup is not supported"), "{err}");
    }

    #[test]
    fn loops_are_errors_not_hangs() {
        let err = error("a.x = ${a.y}\na.y = ${a.x}\n");
        assert!(
            err.contains("references form a loop: a.x -> a.y -> a.x"),
            "{err}"
        );
        let err = error("a.x = ${env:SELF}\n");
        assert!(err.contains("nest deeper than 32"), "{err}");
    }

    proptest::proptest! {
        /// Whatever a value holds, resolving it ends with a value or an error, never a panic
        /// or a hang (the alphabet is the syntax's own characters, so nesting is dense).
        #[test]
        fn any_value_resolves_or_fails_cleanly(value in "[$:{}a-z.\\-]{0,40}") {
            let text = format!("a.x = {value}\na.y = ${{a.x}}\nx = ${{a.y}}-$\n");
            let props = Properties::parse(Path::new("t.properties"), text.as_bytes());
            if let Ok(mut props) = props {
                let _ = props.interpolate(
                    "a.",
                    &Lookups { system: &[], env_fallback: true, env: &env },
                );
            }
        }
    }

    /// Ten references to the next key, twelve keys deep: 10^12 references if expanded.
    #[test]
    fn references_that_multiply_are_an_error_not_a_hang() {
        let mut text = String::new();
        for i in 0..12 {
            text.push_str(&format!(
                "a.v{i} = {}\n",
                format!("${{a.v{}}}", i + 1).repeat(10)
            ));
        }
        text.push_str("a.v12 = \n");
        let err = error(&text);
        assert!(
            err.contains("t.properties:1: a.v0: resolving it takes more than 10000 references"),
            "{err}"
        );
        // A few levels fewer stay under the limit and resolve.
        let p = interpolate(
            "a.x = ${a.y}${a.y}\na.y = ${a.z}${a.z}-\na.z = ab\n",
            &[],
            false,
        );
        assert_eq!(value(&p, "a.x"), "abab-abab-");
    }

    #[test]
    fn a_value_that_grows_past_the_limit_is_an_error() {
        let big = "x".repeat(200 << 10);
        let err = error(&format!("a.x = {}\na.y = {big}\n", "${a.y}".repeat(6)));
        assert!(err.contains("a.x: the value grows past 1 MiB"), "{err}");
        let p = interpolate(
            &format!("a.x = {}\na.y = {big}\n", "${a.y}".repeat(5)),
            &[],
            false,
        );
        assert_eq!(value(&p, "a.x").len(), 5 * big.len());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("a.x = {}x{}\n", "${".repeat(100_000), "}".repeat(100_000));
        assert!(error(&deep).contains("nest deeper than 32"));
    }

    /// Another agent's keys are not this agent's business: its unset variables stay as written.
    #[test]
    fn only_the_started_agents_keys_are_resolved() {
        let p = interpolate("a.x = ${env:NC_PORT}\nb.x = ${env:NOPE}\n", &[], false);
        assert_eq!(value(&p, "a.x"), "44444");
        assert_eq!(value(&p, "b.x"), "${env:NOPE}");
    }
}
