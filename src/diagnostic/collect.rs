//! Stage 1 of reading a TOML file, shared by policies, the fleet and the config: parse
//! (every syntax error), deserialize into serde types with spans while collecting *every*
//! problem (see [`deserialize_all`]), then [`Ctx`] collects the checks of stage 2.

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::Diagnostic;
use crate::time::parse_duration;

/// A (line, col) place in a file, 1-based.
pub type Loc = (usize, usize);

/// The result of stage 1: the value (None only when the text is not TOML at all) and
/// the dotted paths of the entries that were dropped because of an error (stage 2 does
/// not report those again as "missing").
#[derive(Debug)]
pub struct Stage1<T> {
    pub value: Option<T>,
    pub diags: Vec<Diagnostic>,
    pub dropped: BTreeSet<String>,
}

/// Top-level table names found in a TOML text (empty when it does not parse). Used to
/// tell policy, fleet and config files apart.
pub fn top_level_keys(text: &str) -> Vec<String> {
    let (root, _errors) = DeTable::parse_recoverable(text);
    root.get_ref()
        .keys()
        .map(|k| k.get_ref().to_string())
        .collect()
}

/// Parses `text` and deserializes it into `T`, collecting every problem (see module docs).
/// `secret_keys` names keys that must never appear (credentials): they get a dedicated
/// message pointing to the environment variables instead of a generic "unknown key".
pub fn deserialize_all<T: DeserializeOwned>(
    text: &str,
    path: &Path,
    secret_keys: &[&str],
) -> Stage1<T> {
    let (mut root, errors) = DeTable::parse_recoverable(text);
    let mut diags: Vec<Diagnostic> = Vec::new();
    if !errors.is_empty() {
        for e in errors {
            let start = e.span().map_or(0, |s| s.start);
            diags.push(
                Diagnostic::at(text, path, start, format!("TOML syntax error: {}", first_line(e.message())))
                    .with_help("fix the TOML syntax (strings need quotes, tables are written `[name]`, one `key = value` per line)"),
            );
        }
        return Stage1 {
            value: None,
            diags,
            dropped: BTreeSet::new(),
        };
    }
    let mut dropped = BTreeSet::new();
    // Each round removes one entry, so this ends; the bound is a guard against a serde
    // error whose place cannot be found in the tree.
    for _ in 0..500 {
        match T::deserialize(toml::de::Deserializer::from(root.clone())) {
            Ok(v) => {
                return Stage1 {
                    value: Some(v),
                    diags,
                    dropped,
                };
            }
            Err(e) => {
                let pos = e.span().map(|s| s.start);
                let found = pos.and_then(|p| {
                    let mut keys = Vec::new();
                    remove_at(root.get_mut(), p, &mut keys).then_some(keys)
                });
                match found {
                    Some(keys) => {
                        let dotted = keys.join(".");
                        let (diag, suggested) = serde_diag(
                            text,
                            path,
                            pos.unwrap_or(0),
                            &dotted,
                            e.message(),
                            secret_keys,
                        );
                        diags.push(diag);
                        dropped.insert(strip_indices(&dotted));
                        // A misspelt key stands for the key it resembles: do not report
                        // that one as missing too.
                        if let Some(s) = suggested {
                            let parent = dotted
                                .rsplit_once('.')
                                .map_or(String::new(), |(p, _)| format!("{p}."));
                            dropped.insert(strip_indices(&format!("{parent}{s}")));
                        }
                    }
                    None => {
                        diags.push(
                            Diagnostic::at(
                                text,
                                path,
                                pos.unwrap_or(0),
                                humanize(first_line(e.message())),
                            )
                            .with_help("see the format reference in the README"),
                        );
                        return Stage1 {
                            value: None,
                            diags,
                            dropped,
                        };
                    }
                }
            }
        }
    }
    Stage1 {
        value: None,
        diags,
        dropped,
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s).trim()
}

/// `window[1].cron` → `window.cron` (stage 2 checks per entry, but "dropped" is coarse:
/// a dropped key is not reported missing in any entry of the array).
fn strip_indices(dotted: &str) -> String {
    let mut out = String::with_capacity(dotted.len());
    let mut skip = false;
    for c in dotted.chars() {
        match c {
            '[' => skip = true,
            ']' => skip = false,
            _ if !skip => out.push(c),
            _ => {}
        }
    }
    out
}

fn span_contains(span: &Range<usize>, pos: usize) -> bool {
    span.start <= pos && pos < span.end.max(span.start + 1)
}

/// Removes the innermost entry of `table` whose key or value contains byte `pos`,
/// recording the key path. Returns false if no entry contains it.
fn remove_at(table: &mut DeTable<'_>, pos: usize, keys: &mut Vec<String>) -> bool {
    // An error at a key (e.g. an unknown key) is about that entry: remove it whole. An
    // error inside a value may be about something nested in it: look deeper first.
    if let Some(name) = table
        .keys()
        .find(|k| span_contains(&k.span(), pos))
        .map(|k| k.get_ref().to_string())
    {
        keys.push(name.clone());
        table.remove(name.as_str());
        return true;
    }
    let hit = table
        .iter()
        .find(|(_, v)| span_contains(&v.span(), pos))
        .map(|(k, _)| k.get_ref().to_string());
    let Some(name) = hit else {
        // Tables written as `[header]` sections can have a value span that does not cover
        // their entries; look inside every table as a fallback.
        let names: Vec<String> = table.keys().map(|k| k.get_ref().to_string()).collect();
        for name in names {
            let Some(v) = table.get_mut(name.as_str()) else {
                continue;
            };
            keys.push(name.clone());
            if descend(v.get_mut(), pos, keys) {
                return true;
            }
            keys.pop();
        }
        return false;
    };
    keys.push(name.clone());
    if let Some(v) = table.get_mut(name.as_str())
        && descend(v.get_mut(), pos, keys)
    {
        return true;
    }
    table.remove(name.as_str());
    true
}

fn descend(value: &mut DeValue<'_>, pos: usize, keys: &mut Vec<String>) -> bool {
    match value {
        DeValue::Table(t) => remove_at(t, pos, keys),
        DeValue::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                if let DeValue::Table(t) = item.get_mut() {
                    let saved = keys.clone();
                    if let Some(last) = keys.last_mut() {
                        last.push_str(&format!("[{i}]"));
                    }
                    if remove_at(t, pos, keys) {
                        return true;
                    }
                    *keys = saved;
                }
            }
            false
        }
        _ => false,
    }
}

/// Turns a serde error into a diagnostic, rewriting the usual messages into plain words.
/// For an unknown key, also returns the known key it most resembles.
fn serde_diag(
    text: &str,
    path: &Path,
    pos: usize,
    dotted: &str,
    message: &str,
    secret_keys: &[&str],
) -> (Diagnostic, Option<String>) {
    let message = first_line(message);
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some(end) = rest.find('`')
    {
        let field = &rest[..end];
        let expected = backticked(&rest[end + 1..]);
        let within = dotted
            .rsplit_once('.')
            .map(|(parent, _)| parent)
            .unwrap_or("");
        let place = if within.is_empty() {
            "at the top level".to_string()
        } else {
            format!("in `{within}`")
        };
        if secret_keys.iter().any(|s| field.eq_ignore_ascii_case(s)) {
            let d = Diagnostic::at(text, path, pos, format!("credentials do not belong in this file: found `{field}`"))
                .with_help(
                    "remove it; set TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY (and optionally TENCENTCLOUD_TOKEN) in the environment, or use ~/.tencentcloud/credentials",
                );
            return (d, None);
        }
        let suggested = suggest(field, expected.iter().map(String::as_str));
        let help = match suggested {
            Some(s) => format!("did you mean `{s}`?"),
            None if expected.is_empty() => format!("no keys are allowed {place}"),
            None => format!("known keys {place}: {}", join_ticks(&expected)),
        };
        let d = Diagnostic::at(text, path, pos, format!("unknown key `{field}` {place}"))
            .with_help(help);
        return (d, suggested.map(str::to_string));
    }
    let key = if dotted.is_empty() {
        String::new()
    } else {
        format!("`{dotted}`: ")
    };
    let d = Diagnostic::at(text, path, pos, format!("{key}{}", humanize(message)))
        .with_help("see the format reference in the README for the type of each key");
    (d, None)
}

fn backticked(s: &str) -> Vec<String> {
    s.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

fn join_ticks(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rewrites serde's type vocabulary ("expected i64", "expected struct RawWindow") into TOML's.
pub(crate) fn humanize(message: &str) -> String {
    let mut m = message.to_string();
    for (from, to) in [
        ("expected i64", "expected an integer"),
        ("expected u32", "expected an integer"),
        ("expected f64", "expected a number"),
        ("expected a sequence", "expected an array"),
        ("expected a map", "expected a table"),
        ("expected a string", "expected a string (in quotes)"),
        ("invalid type: sequence", "invalid type: array"),
        ("invalid type: map", "invalid type: table"),
        ("floating point", "float"),
    ] {
        m = m.replace(from, to);
    }
    if let Some(idx) = m.find("expected struct ") {
        m.truncate(idx);
        m.push_str("expected a table");
    }
    m
}

/// The closest candidate to `word` by edit distance, if close enough to be a likely typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let w = word.to_ascii_lowercase();
    let limit = (w.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&w, &c.to_ascii_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over chars.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Collects diagnostics for one file.
pub(crate) struct Ctx<'a> {
    pub text: &'a str,
    pub path: &'a Path,
    pub diags: Vec<Diagnostic>,
    /// Dotted key paths dropped by stage 1 (already reported).
    pub dropped: BTreeSet<String>,
}

impl<'a> Ctx<'a> {
    pub fn new<T>(text: &'a str, path: &'a Path, stage1: Stage1<T>) -> (Ctx<'a>, Option<T>) {
        let ctx = Ctx {
            text,
            path,
            diags: stage1.diags,
            dropped: stage1.dropped,
        };
        (ctx, stage1.value)
    }
    pub fn loc(&self, at: usize) -> Loc {
        Diagnostic::line_col(self.text, at)
    }
    pub fn err(&mut self, at: usize, message: impl Into<String>, help: impl Into<String>) {
        let d = Diagnostic::at(self.text, self.path, at, message).with_help(help);
        self.diags.push(d);
    }
    pub fn warn(&mut self, at: usize, message: impl Into<String>, help: impl Into<String>) {
        let d = Diagnostic::at(self.text, self.path, at, message)
            .with_help(help)
            .as_warning();
        self.diags.push(d);
    }
    /// Reports a missing required key, unless stage 1 dropped it (already reported).
    pub fn missing(
        &mut self,
        dotted: &str,
        at: usize,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        if !self.dropped.contains(dotted) {
            self.err(at, message, help);
        }
    }
    /// The diagnostics in the order of the file (stable for the same place).
    pub fn finish(mut self) -> Vec<Diagnostic> {
        self.diags.sort_by_key(|d| (d.line, d.col));
        self.diags
    }
    pub fn has_errors(&self) -> bool {
        self.diags.iter().any(Diagnostic::is_error)
    }
    /// A duration key; zero is an error unless `allow_zero`.
    pub fn duration(
        &mut self,
        v: &Spanned<String>,
        key: &str,
        allow_zero: bool,
    ) -> Option<Duration> {
        if v.get_ref().trim().starts_with('-') {
            self.err(
                v.span().start,
                format!("`{key}` = `{}` is negative", v.get_ref()),
                if allow_zero {
                    "use `0s` or a positive duration"
                } else {
                    "use a positive duration, e.g. `30s`"
                },
            );
            return None;
        }
        match parse_duration(v.get_ref()) {
            Ok(d) if d.is_zero() && !allow_zero => {
                self.err(
                    v.span().start,
                    format!("`{key}` must be longer than 0s"),
                    "write e.g. `30s`, `5m` or `1h`",
                );
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.err(
                    v.span().start,
                    format!("`{key}`: {e}"),
                    "durations are a number with a unit: ms, s, m, h, d or w (e.g. `90s`, `1h30m`)",
                );
                None
            }
        }
    }
    /// An integer key that must be at least `min` and fit in u32.
    pub fn uint(&mut self, v: &Spanned<i64>, key: &str, min: i64) -> Option<u32> {
        let n = *v.get_ref();
        if n < min {
            let what = if min <= 0 {
                "must not be negative".to_string()
            } else {
                format!("must be at least {min}")
            };
            self.err(
                v.span().start,
                format!("`{key}` = {n} {what}"),
                format!("use a whole number >= {min}"),
            );
            None
        } else if n > i64::from(u32::MAX) {
            self.err(
                v.span().start,
                format!("`{key}` = {n} is too large"),
                format!("use a whole number <= {}", u32::MAX),
            );
            None
        } else {
            Some(n as u32)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[test]
    fn suggestions_pick_the_closest_known_key() {
        let keys = ["min", "max", "signal", "target_utilization", "steps"];
        let cases: &[(&str, Option<&str>)] = &[
            ("mni", Some("min")),
            ("singal", Some("signal")),
            ("target_utilisation", Some("target_utilization")),
            ("step", Some("steps")),
            ("completely_different", None),
        ];
        for (word, want) in cases {
            assert_eq!(suggest(word, keys), *want, "suggest({word})");
        }
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn secret_keys_get_a_pointer_to_the_environment() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct T {
            #[allow(dead_code)]
            endpoint: Option<String>,
        }
        let s: Stage1<T> = deserialize_all(
            "secret_key = \"abc\"\n",
            Path::new("c.toml"),
            &["secret_key"],
        );
        let d = &s.diags[0];
        assert!(d.message.contains("credentials"));
        assert!(
            d.help
                .as_deref()
                .unwrap()
                .contains("TENCENTCLOUD_SECRET_KEY")
        );
        assert!(!d.to_string().contains("abc"));
    }
}
