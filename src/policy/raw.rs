//! Stage 1: raw serde types with spans, as close to the TOML as possible.
//!
//! Every field is optional here (a missing required key is reported by stage 2, with a
//! help line), numbers keep their TOML type (i64/f64) so that stage 2 can say "must be
//! positive" instead of a serde range error, and every struct denies unknown keys.
//!
//! [`deserialize_all`] turns a TOML text into one of these types while collecting *every*
//! problem: all syntax errors (recoverable parsing), then each serde error (unknown key,
//! wrong type) one by one: the offending entry is removed from the parsed tree and
//! deserialization is tried again, so one typo does not hide the next.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diagnostic::Diagnostic;

/// A policy file (`policies/*.toml`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub name: Option<Spanned<String>>,
    pub proxies: Option<Spanned<Vec<Spanned<String>>>>,
    pub select: Option<Spanned<RawSelect>>,
    pub interval: Option<Spanned<String>>,
    pub cron: Option<Spanned<String>>,
    pub mode: Option<Spanned<String>>,
    pub billing_type: Option<Spanned<i64>>,
    pub signals: Option<Spanned<BTreeMap<String, Spanned<RawSignal>>>>,
    pub bandwidth: Option<Spanned<RawDimension>>,
    pub concurrent: Option<Spanned<RawDimension>>,
    pub behavior: Option<Spanned<RawBehavior>>,
    pub on_missing_data: Option<Spanned<RawMissingData>>,
    pub window: Option<Vec<Spanned<RawWindow>>>,
    /// `paused = true`: both directions paused (issue 12).
    pub paused: Option<Spanned<bool>>,
    /// `[pause] directions = ["scale_up" | "scale_down"]`.
    pub pause: Option<Spanned<RawPause>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPause {
    pub directions: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSelect {
    pub tags: Option<Spanned<BTreeMap<String, Spanned<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSignal {
    pub query: Option<Spanned<String>>,
    pub proxy_label: Option<Spanned<String>>,
    pub max_age: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDimension {
    pub signal: Option<Spanned<String>>,
    pub min: Option<Spanned<i64>>,
    pub max: Option<Spanned<i64>>,
    pub target_utilization: Option<Spanned<f64>>,
    pub steps: Option<Spanned<Vec<Spanned<RawStep>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub above: Option<Spanned<f64>>,
    pub below: Option<Spanned<f64>>,
    pub change: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBehavior {
    pub scale_up: Option<Spanned<RawDirection>>,
    pub scale_down: Option<Spanned<RawDirection>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDirection {
    pub tolerance: Option<Spanned<f64>>,
    pub stabilization: Option<Spanned<String>>,
    pub max_steps: Option<Spanned<i64>>,
    pub cooldown: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMissingData {
    pub action: Option<Spanned<String>>,
    pub after: Option<Spanned<i64>>,
    pub bandwidth: Option<Spanned<i64>>,
    pub concurrent: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWindow {
    pub cron: Option<Spanned<String>>,
    pub duration: Option<Spanned<String>>,
    pub timezone: Option<Spanned<String>>,
    pub bandwidth_min: Option<Spanned<i64>>,
    pub bandwidth_max: Option<Spanned<i64>>,
    pub concurrent_min: Option<Spanned<i64>>,
    pub concurrent_max: Option<Spanned<i64>>,
}

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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn every_serde_error_is_collected() {
        let text = "name = 5\nmode = \"live\"\nfoo = 1\n[bandwidth]\nsignal = \"bandwidth\"\nmni = 1\nmax = \"x\"\n";
        let s: Stage1<RawPolicy> = deserialize_all(text, Path::new("p.toml"), &[]);
        let rendered: Vec<String> = s.diags.iter().map(|d| d.to_string()).collect();
        assert_eq!(s.diags.len(), 4, "{rendered:#?}");
        let value = s.value.expect("the rest still deserializes");
        assert_eq!(value.mode.unwrap().into_inner(), "live");
        assert_eq!(
            value
                .bandwidth
                .unwrap()
                .into_inner()
                .signal
                .unwrap()
                .into_inner(),
            "bandwidth"
        );
        assert!(
            rendered
                .iter()
                .any(|r| r.starts_with("p.toml:1:8: `name`: invalid type")),
            "{rendered:#?}"
        );
        assert!(
            rendered
                .iter()
                .any(|r| r.starts_with("p.toml:3:1: unknown key `foo` at the top level")),
            "{rendered:#?}"
        );
        assert!(
            rendered.iter().any(
                |r| r.contains("p.toml:6:1: unknown key `mni` in `bandwidth`")
                    && r.contains("did you mean `min`?")
            ),
            "{rendered:#?}"
        );
        assert!(
            rendered.iter().any(|r| r.starts_with(
                "p.toml:7:7: `bandwidth.max`: invalid type: string \"x\", expected an integer"
            )),
            "{rendered:#?}"
        );
        assert!(s.dropped.contains("bandwidth.max") && s.dropped.contains("name"));
    }

    #[test]
    fn errors_inside_arrays_of_tables_are_found() {
        let text = "[[window]]\ncron = \"0 0 9 * * *\"\n[[window]]\ncron = 5\nbandwith_min = 3\n";
        let s: Stage1<RawPolicy> = deserialize_all(text, Path::new("p.toml"), &[]);
        let rendered: Vec<String> = s.diags.iter().map(|d| d.to_string()).collect();
        assert_eq!(s.diags.len(), 2, "{rendered:#?}");
        assert!(
            rendered.iter().any(|r| r.contains("4:8: `window[1].cron`")),
            "{rendered:#?}"
        );
        assert!(
            rendered.iter().any(
                |r| r.contains("5:1: unknown key `bandwith_min` in `window[1]`")
                    && r.contains("`bandwidth_min`")
            ),
            "{rendered:#?}"
        );
        assert_eq!(s.value.unwrap().window.unwrap().len(), 2);
    }

    #[test]
    fn syntax_errors_are_all_reported() {
        let text = "name = \"a\nmin = = 3\n";
        let s: Stage1<RawPolicy> = deserialize_all(text, Path::new("p.toml"), &[]);
        assert!(s.value.is_none());
        assert!(!s.diags.is_empty());
        assert!(
            s.diags
                .iter()
                .all(|d| d.message.starts_with("TOML syntax error") && d.line >= 1)
        );
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
