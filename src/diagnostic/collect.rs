//! Stage 1 of reading a TOML file, shared by policies, the fleet and the config: parse
//! (every syntax error), deserialize into serde types with spans while collecting *every*
//! problem (see [`deserialize_all`]), then [`Ctx`] collects the checks of stage 2.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::{Diagnostic, LineIndex, Omitted, Severity, Sink};
use crate::time::parse_duration;
use std::borrow::Cow;

/// A (line, col) place in a file, 1-based.
pub type Loc = (usize, usize);

/// The result of stage 1: the value (None only when the text is not TOML at all) and
/// the dotted paths of the entries that were dropped because of an error (stage 2 does
/// not report those again as "missing").
#[derive(Debug)]
pub struct Stage1<T> {
    pub value: Option<T>,
    /// In the order of the file (all of them, or the first `limit` of
    /// [`deserialize_capped`]).
    pub diags: Vec<Diagnostic>,
    /// Diagnostics counted beyond the limit.
    pub omitted: Omitted,
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

/// Parses `text` and deserializes it into `T`, collecting every problem: all syntax
/// errors (recoverable parsing), then every serde error (unknown key, wrong type).
///
/// In one pass over the tree: when the whole file does not deserialize, each entry is
/// deserialized alone (in a root that holds only the path to it: every field of the raw
/// types is optional, so an entry's errors do not depend on its siblings). An entry that
/// fails at its key, or whose value holds no failing part, is reported and removed; a
/// failing table (or array of tables) is looked into, entry by entry. Then the cleaned
/// tree is deserialized once. The cost is the file's size times its depth, not the number
/// of errors times the file's size.
///
/// Measured with `validate FILE` (release build, `scripts/big-policy.py`, 2 cores at load
/// 6): 349k wrong-typed values (698k diagnostics) 3.6–4.4 s, 2.5 s of CPU (8.2 s and 4.1 s
/// when an emptied or cleaned table was deserialized again, every diagnostic was built
/// and each unknown key's table listed anew); 349k unknown keys 2.0 s (5.1 s). See the
/// README's Performance table.
pub fn deserialize_all<T: DeserializeOwned>(
    text: &str,
    path: &Path,
    secret_keys: &[&str],
) -> Stage1<T> {
    deserialize_capped(text, path, secret_keys, usize::MAX)
}

/// As [`deserialize_all`], keeping the first `limit` diagnostics in the order of the file
/// and counting the others (which are not built: a message and its help cost more than
/// the check).
pub fn deserialize_capped<T: DeserializeOwned>(
    text: &str,
    path: &Path,
    secret_keys: &[&str],
    limit: usize,
) -> Stage1<T> {
    let lines = LineIndex::new(text);
    let (root, errors) = DeTable::parse_recoverable(text);
    let mut sink = Sink::new(limit);
    let done = |value: Option<T>, sink: Sink, dropped: BTreeSet<String>| {
        let (diags, omitted) = sink.finish();
        Stage1 {
            value,
            diags,
            omitted,
            dropped,
        }
    };
    if !errors.is_empty() {
        for e in errors {
            let start = e.span().map_or(0, |s| s.start);
            let (line, col) = lines.line_col(start);
            if !sink.admits(line, col) {
                sink.count(Severity::Error);
                continue;
            }
            sink.push(
                Diagnostic::error(path, line, col, format!("TOML syntax error: {}", first_line(e.message())))
                    .with_help("fix the TOML syntax (strings need quotes, tables are written `[name]`, one `key = value` per line)"),
            );
        }
        return done(None, sink, BTreeSet::new());
    }
    if let Ok(v) = T::deserialize(toml::de::Deserializer::from(root.clone())) {
        return done(Some(v), sink, BTreeSet::new());
    }
    let root_span = root.span();
    let mut table = root.into_inner();
    let mut c = Collector::<T> {
        path,
        lines: &lines,
        secret_keys,
        root_span: root_span.clone(),
        sink,
        dropped: BTreeSet::new(),
        known: HashMap::new(),
        _t: std::marker::PhantomData,
    };
    c.table(&mut Vec::new(), &mut table, &mut Vec::new());
    let Collector {
        mut sink, dropped, ..
    } = c;
    match T::deserialize(toml::de::Deserializer::from(Spanned::new(root_span, table))) {
        Ok(v) => done(Some(v), sink, dropped),
        // Not expected (every failing entry was removed): reported as it is.
        Err(e) => {
            let pos = e.span().map_or(0, |s| s.start);
            sink.push(
                lines
                    .diag(path, pos, humanize(first_line(e.message())))
                    .with_help("see the format reference in the README"),
            );
            done(None, sink, dropped)
        }
    }
}

/// One step of the path from the root to a table being checked: the key, the span of its
/// value, and (for an array of tables) the span of the element.
struct Level<'i> {
    key: Spanned<Cow<'i, str>>,
    value_span: Range<usize>,
    element: Option<Range<usize>>,
}

struct Collector<'a, T> {
    path: &'a Path,
    lines: &'a LineIndex<'a>,
    secret_keys: &'a [&'a str],
    root_span: Range<usize>,
    sink: Sink,
    dropped: BTreeSet<String>,
    /// The known keys of each table type met with an unknown key.
    known: HashMap<String, Known>,
    _t: std::marker::PhantomData<T>,
}

impl<T: DeserializeOwned> Collector<'_, T> {
    /// Deserializes `T` from a root holding only `levels` down to the entry `key = value`.
    fn try_entry<'i>(
        &self,
        levels: &[Level<'i>],
        key: &Spanned<Cow<'i, str>>,
        value: Spanned<DeValue<'i>>,
    ) -> Option<toml::de::Error> {
        let mut cur = DeTable::new();
        cur.insert(key.clone(), value);
        for l in levels.iter().rev() {
            let inner = match &l.element {
                Some(es) => {
                    let mut a = toml::de::DeArray::new();
                    a.push(Spanned::new(es.clone(), DeValue::Table(cur)));
                    DeValue::Array(a)
                }
                None => DeValue::Table(cur),
            };
            let mut t = DeTable::new();
            t.insert(l.key.clone(), Spanned::new(l.value_span.clone(), inner));
            cur = t;
        }
        let root = Spanned::new(self.root_span.clone(), cur);
        T::deserialize(toml::de::Deserializer::from(root)).err()
    }

    /// Checks every entry of `table` (at `levels`) alone, reporting and removing the
    /// failing ones; looks into failing tables and arrays of tables.
    fn table<'i>(
        &mut self,
        levels: &mut Vec<Level<'i>>,
        table: &mut DeTable<'i>,
        keys: &mut Vec<String>,
    ) {
        let names: Vec<Spanned<Cow<'i, str>>> = table.keys().cloned().collect();
        for name in names {
            let Some((k, mut v)) = table.remove_entry(&name) else {
                continue;
            };
            let Some(e) = self.try_entry(levels, &k, v.clone()) else {
                table.insert(k, v);
                continue;
            };
            let pos = e.span().map(|s| s.start);
            keys.push(k.get_ref().to_string());
            let at_key = pos.is_some_and(|p| span_contains(&k.span(), p));
            let mut err = Some(e);
            // A table or array that fails even when empty has the wrong type itself:
            // reported whole. Otherwise the problems are inside: look there.
            let empty = match v.get_ref() {
                DeValue::Table(_) => Some(DeValue::Table(DeTable::new())),
                DeValue::Array(_) => Some(DeValue::Array(toml::de::DeArray::new())),
                _ => None,
            };
            let wrong_type = empty.is_some_and(|empty| {
                self.try_entry(levels, &k, Spanned::new(v.span(), empty))
                    .is_some()
            });
            if !at_key && !wrong_type {
                let value_span = v.span();
                let before = self.sink.reported();
                match v.get_mut() {
                    DeValue::Table(t) => {
                        levels.push(Level {
                            key: k.clone(),
                            value_span,
                            element: None,
                        });
                        self.table(levels, t, keys);
                        levels.pop();
                    }
                    DeValue::Array(items) => {
                        for (i, item) in items.iter_mut().enumerate() {
                            let element = item.span();
                            if let DeValue::Table(t) = item.get_mut() {
                                levels.push(Level {
                                    key: k.clone(),
                                    value_span: value_span.clone(),
                                    element: Some(element),
                                });
                                let saved = keys.len();
                                let last = keys.pop().unwrap_or_default();
                                keys.push(format!("{last}[{i}]"));
                                self.table(levels, t, keys);
                                keys.truncate(saved - 1);
                                keys.push(last);
                                levels.pop();
                            }
                        }
                    }
                    _ => {}
                }
                if self.sink.reported() > before {
                    err = match v.get_ref() {
                        // Its failing entries are out and each one left passed alone: as
                        // an entry's errors do not depend on its siblings, the table
                        // stands (an emptied one too: the empty table passed above). Not
                        // deserialized again: a 349k-entry table would be copied whole.
                        DeValue::Table(_) => None,
                        // Its failing tables are out: the rest may stand (or fail
                        // otherwise: its other elements were not looked at).
                        _ => self.try_entry(levels, &k, v.clone()),
                    };
                }
            }
            match err {
                None => {
                    table.insert(k, v);
                }
                Some(e) => {
                    let at = e.span().map_or(k.span().start, |s| s.start);
                    self.record(at, keys, e.message());
                }
            }
            keys.pop();
        }
    }

    fn record(&mut self, pos: usize, keys: &[String], message: &str) {
        let dotted = keys.join(".");
        let (line, col) = self.lines.line_col(pos);
        let place = self.sink.admits(line, col).then_some((line, col));
        let (diag, suggested) = serde_diag(
            self.path,
            place,
            &dotted,
            message,
            self.secret_keys,
            &mut self.known,
        );
        match diag {
            Some(d) => self.sink.push(d),
            None => self.sink.count(Severity::Error),
        }
        self.dropped.insert(strip_indices(&dotted));
        // A misspelt key stands for the key it resembles: do not report that one as
        // missing too.
        if let Some(s) = suggested {
            let parent = dotted
                .rsplit_once('.')
                .map_or(String::new(), |(p, _)| format!("{p}."));
            self.dropped.insert(strip_indices(&format!("{parent}{s}")));
        }
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

/// Turns a serde error into a diagnostic at `place` (None: counted, not kept, so not
/// built), rewriting the usual messages into plain words. For an unknown key, also
/// returns the known key it most resembles (which is not reported missing then).
fn serde_diag(
    path: &Path,
    place: Option<(usize, usize)>,
    dotted: &str,
    message: &str,
    secret_keys: &[&str],
    known: &mut HashMap<String, Known>,
) -> (Option<Diagnostic>, Option<String>) {
    let message = first_line(message);
    let at = |message: String| place.map(|(line, col)| Diagnostic::error(path, line, col, message));
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some(end) = rest.find('`')
    {
        let field = &rest[..end];
        if secret_keys.iter().any(|s| field.eq_ignore_ascii_case(s)) {
            let d = place.map(|_| {
                at(format!("credentials do not belong in this file: found `{field}`"))
                    .expect("a place")
                    .with_help(
                        "remove it; set TENCENTCLOUD_SECRET_ID / TENCENTCLOUD_SECRET_KEY (and optionally TENCENTCLOUD_TOKEN) in the environment, or use ~/.tencentcloud/credentials",
                    )
            });
            return (d, None);
        }
        let expected = Known::of(known, &rest[end + 1..]);
        let suggested = suggest(field, expected.names.iter().map(String::as_str));
        let d = place.map(|_| {
            let within = dotted
                .rsplit_once('.')
                .map(|(parent, _)| parent)
                .unwrap_or("");
            let place = if within.is_empty() {
                "at the top level".to_string()
            } else {
                format!("in `{within}`")
            };
            let help = match suggested {
                Some(s) => format!("did you mean `{s}`?"),
                None if expected.names.is_empty() => format!("no keys are allowed {place}"),
                None => format!("known keys {place}: {}", expected.listed),
            };
            at(format!("unknown key `{field}` {place}"))
                .expect("a place")
                .with_help(help)
        });
        return (d, suggested.map(str::to_string));
    }
    let d = place.map(|_| {
        let key = if dotted.is_empty() {
            String::new()
        } else {
            format!("`{dotted}`: ")
        };
        at(format!("{key}{}", humanize(message)))
            .expect("a place")
            .with_help("see the format reference in the README for the type of each key")
    });
    (d, None)
}

/// The keys a table knows, read from serde's "expected one of `a`, `b`" once per table
/// type: 349k unknown keys in one table read and list them once, not 349k times.
struct Known {
    names: Vec<String>,
    /// "`a`, `b`", for the help line.
    listed: String,
}

impl Known {
    fn of<'c>(cache: &'c mut HashMap<String, Known>, expected: &str) -> &'c Known {
        if !cache.contains_key(expected) {
            let names = backticked(expected);
            let listed = join_ticks(&names);
            cache.insert(expected.to_string(), Known { names, listed });
        }
        &cache[expected]
    }
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
        // Most messages hold one of these: only those are rewritten (a copy each).
        if m.contains(from) {
            m = m.replace(from, to);
        }
    }
    if let Some(idx) = m.find("expected struct ") {
        m.truncate(idx);
        m.push_str("expected a table");
    }
    m
}

/// The closest candidate to `word` by edit distance, if close enough to be a likely typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let w: Vec<char> = word.chars().map(|c| c.to_ascii_lowercase()).collect();
    let limit = (w.len() / 3).max(2);
    let mut best: Option<(usize, &str)> = None;
    let mut cand: Vec<char> = Vec::new();
    let mut rows = (Vec::new(), Vec::new());
    for c in candidates {
        // The first of the closest: only a strictly closer one replaces it.
        let bound = match best {
            None => limit,
            Some((0, _)) => break,
            Some((b, _)) => b - 1,
        };
        cand.clear();
        cand.extend(c.chars().map(|c| c.to_ascii_lowercase()));
        // The distance is at least the difference in length: a candidate that far off
        // cannot be within the bound (349k unknown keys cost no distance at all then).
        if w.len().abs_diff(cand.len()) > bound {
            continue;
        }
        if let Some(d) = distance_within(&w, &cand, bound, &mut rows) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// Levenshtein distance over chars.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    distance_within(&a, &b, usize::MAX, &mut (Vec::new(), Vec::new())).unwrap_or(usize::MAX)
}

/// The Levenshtein distance of `a` and `b` if it is at most `bound`, else None: a row
/// whose smallest entry exceeds the bound ends the computation (rows never decrease).
/// `rows` are reused buffers.
fn distance_within(
    a: &[char],
    b: &[char],
    bound: usize,
    rows: &mut (Vec<usize>, Vec<usize>),
) -> Option<usize> {
    let (prev, cur) = rows;
    prev.clear();
    prev.extend(0..=b.len());
    cur.clear();
    cur.resize(b.len() + 1, 0);
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        let mut row_min = cur[0];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
            row_min = row_min.min(cur[j + 1]);
        }
        if row_min > bound {
            return None;
        }
        std::mem::swap(prev, cur);
    }
    Some(prev[b.len()]).filter(|d| *d <= bound)
}

/// Collects diagnostics for one file.
pub(crate) struct Ctx<'a> {
    pub path: &'a Path,
    /// Line starts of `text`: a place costs a binary search, not a scan from the start.
    pub lines: LineIndex<'a>,
    /// Every diagnostic counted, the first ones (in the order of the file) kept.
    sink: Sink,
    /// Dotted key paths dropped by stage 1 (already reported).
    pub dropped: BTreeSet<String>,
    /// Put before each message that does not start with it (`` `bandwidth.steps` ``).
    pub prefix: Option<String>,
}

impl<'a> Ctx<'a> {
    /// Keeps every diagnostic.
    pub fn new<T>(text: &'a str, path: &'a Path, stage1: Stage1<T>) -> (Ctx<'a>, Option<T>) {
        Ctx::capped(text, path, stage1, usize::MAX)
    }
    /// Keeps the first `limit` diagnostics in the order of the file, counts the others.
    pub fn capped<T>(
        text: &'a str,
        path: &'a Path,
        stage1: Stage1<T>,
        limit: usize,
    ) -> (Ctx<'a>, Option<T>) {
        let mut sink = Sink::new(limit);
        for d in stage1.diags {
            sink.push(d);
        }
        sink.add_omitted(stage1.omitted);
        let ctx = Ctx {
            path,
            lines: LineIndex::new(text),
            sink,
            dropped: stage1.dropped,
            prefix: None,
        };
        (ctx, stage1.value)
    }
    pub fn loc(&self, at: usize) -> Loc {
        self.lines.line_col(at)
    }
    pub fn err(&mut self, at: usize, message: impl Into<String>, help: impl Into<String>) {
        self.report(Severity::Error, at, || (message.into(), help.into()));
    }
    pub fn warn(&mut self, at: usize, message: impl Into<String>, help: impl Into<String>) {
        self.report(Severity::Warning, at, || (message.into(), help.into()));
    }
    /// An error whose message and help are only written if it is kept (for a costly
    /// help, such as a suggestion among hundreds of names).
    pub fn err_with(&mut self, at: usize, text: impl FnOnce() -> (String, String)) {
        self.report(Severity::Error, at, text);
    }
    fn report(&mut self, severity: Severity, at: usize, text: impl FnOnce() -> (String, String)) {
        let (line, col) = self.lines.line_col(at);
        if !self.sink.admits(line, col) {
            self.sink.count(severity);
            return;
        }
        let (mut message, help) = text();
        if let Some(p) = &self.prefix
            && !message.starts_with(p.as_str())
        {
            message = format!("{p}: {message}");
        }
        let mut d = Diagnostic::error(self.path, line, col, message).with_help(help);
        d.severity = severity;
        self.sink.push(d);
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
    pub fn finish(self) -> Vec<Diagnostic> {
        self.finish_capped().0
    }
    /// The diagnostics kept, in the order of the file, and how many more there were.
    pub fn finish_capped(self) -> (Vec<Diagnostic>, Omitted) {
        self.sink.finish()
    }
    pub fn has_errors(&self) -> bool {
        self.sink.has_errors()
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

    /// Skipping candidates by their length changes no answer: the same pick as the first
    /// of the closest by full distance, for words of every length against keys of every
    /// length (ties included: `max`/`min` for `mxn`).
    #[test]
    fn suggestions_skip_only_what_could_not_be_picked() {
        let keys = [
            "min",
            "max",
            "name",
            "proxies",
            "interval",
            "on_missing_data",
            "target_utilization",
            "é",
            "ÉÉÉ",
            "",
        ];
        let words = [
            "",
            "m",
            "mxn",
            "nmae",
            "proxy",
            "intervall",
            "on_missing",
            "unknown_key_number_000001",
            "target_utilisation",
            "éé",
            "x".repeat(40).as_str(),
        ]
        .map(str::to_string);
        for word in &words {
            let w = word.to_ascii_lowercase();
            let limit = (w.chars().count() / 3).max(2);
            let naive = keys
                .iter()
                .map(|c| (edit_distance(&w, &c.to_ascii_lowercase()), *c))
                .filter(|(d, _)| *d <= limit)
                .min_by_key(|(d, _)| *d)
                .map(|(_, c)| c);
            assert_eq!(suggest(word, keys), naive, "suggest({word:?})");
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
