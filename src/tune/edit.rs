//! The recommended settings written into a policy file's own text (pure): only the tuned
//! keys that change are touched, every comment and the layout are kept, and a header of
//! `# tune:` lines says what was tuned (a header from an earlier run is replaced). A key
//! set to its default (`off`) is removed by commenting its line out, so that the comment
//! lines around it still read in place.

use toml_edit::{DocumentMut, Item, Table, TableLike, Value};

use super::space::{Knob, Setting};

/// Every header line starts with this.
pub const HEADER_MARK: &str = "# tune:";

/// Why a file could not be edited.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EditError {
    #[error("not TOML: {0}")]
    Parse(String),
    #[error("`{0}` is not a table")]
    NotATable(String),
}

/// For `--by proxy`: the copy's name and the one proxy it selects.
pub struct Retarget<'a> {
    pub name: &'a str,
    pub proxy: &'a str,
}

/// `text` with `settings` written in, retargeted if asked, under `header`.
pub fn rewrite(
    text: &str,
    settings: &[(Knob, Setting)],
    retarget: Option<Retarget>,
    header: &[String],
) -> Result<String, EditError> {
    let mut body = strip_header(text).to_string();
    // Keys set to their default first, on the text: commented out where they stand.
    let mut removed = Vec::new();
    for (knob, setting) in settings {
        if setting.toml().is_none() {
            let path: Vec<&str> = knob.key().split('.').collect();
            match comment_out(&body, &path)? {
                Some(t) => body = t,
                None => removed.push(path),
            }
        }
    }
    let mut doc: DocumentMut = body
        .parse()
        .map_err(|e: toml_edit::TomlError| EditError::Parse(e.to_string()))?;
    for (knob, setting) in settings {
        if let Some(v) = setting.toml() {
            let path: Vec<&str> = knob.key().split('.').collect();
            set_path(doc.as_table_mut(), &path, v)?;
        }
    }
    // ...and those that do not stand on a line of their own (in an inline table, after a
    // dotted key), removed.
    for path in removed {
        remove_path(doc.as_table_mut(), &path);
    }
    if let Some(r) = retarget {
        let root = doc.as_table_mut();
        set_path(root, &["name"], Value::from(r.name))?;
        root.remove("select");
        let mut ids = toml_edit::Array::new();
        ids.push(r.proxy);
        set_path(root, &["proxies"], Value::Array(ids))?;
    }
    let mut out = String::new();
    for line in header {
        out.push_str(HEADER_MARK);
        if !line.is_empty() {
            out.push(' ');
            out.push_str(&line.replace(['\n', '\r'], " "));
        }
        out.push('\n');
    }
    if !header.is_empty() {
        out.push('\n');
    }
    out.push_str(&doc.to_string());
    Ok(out)
}

/// The text without a leading `# tune:` header (and the blank line after it).
pub fn strip_header(text: &str) -> &str {
    let mut rest = text;
    let mut stripped = false;
    while rest.starts_with(HEADER_MARK) {
        stripped = true;
        rest = rest.split_once('\n').map_or("", |(_, r)| r);
    }
    if stripped {
        rest = rest
            .strip_prefix("\r\n")
            .or_else(|| rest.strip_prefix('\n'))
            .unwrap_or(rest);
    }
    rest
}

/// `text` with the line of the key at `path` commented out (`# key = value   # comment`,
/// the trailing comment kept in its column when there is room), or None when the key is
/// absent or does not stand alone on its line.
fn comment_out(text: &str, path: &[&str]) -> Result<Option<String>, EditError> {
    let doc = toml_edit::Document::parse(text)
        .map_err(|e: toml_edit::TomlError| EditError::Parse(e.to_string()))?;
    let (last, parents) = path.split_last().expect("a key has a name");
    let mut table: &dyn TableLike = doc.as_table();
    for seg in parents {
        match table.get(seg).and_then(Item::as_table_like) {
            Some(t) => table = t,
            None => return Ok(None),
        }
    }
    let Some((key, item)) = table.get_key_value(last) else {
        return Ok(None);
    };
    let (Some(k), Some(v)) = (key.span(), item.span()) else {
        return Ok(None);
    };
    let line_start = text[..k.start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[v.end..].find('\n').map_or(text.len(), |i| v.end + i);
    let indent = &text[line_start..k.start];
    if !indent.chars().all(|c| c == ' ' || c == '\t') || text[k.start..v.end].contains('\n') {
        return Ok(None);
    }
    let mut rest = text[k.start..line_end].to_string();
    // Two characters more before the trailing comment: take them from its padding.
    let after = v.end - k.start;
    if let Some(hash) = rest[after..].find('#') {
        let at = after + hash;
        let pad = rest[after..at].len() - rest[after..at].trim_end_matches(' ').len();
        if pad >= 3 {
            rest.replace_range(at - 2..at, "");
        }
    }
    Ok(Some(format!(
        "{}{indent}# {rest}{}",
        &text[..line_start],
        &text[line_end..]
    )))
}

/// Removes the key at `path`, if it is there.
fn remove_path(root: &mut Table, path: &[&str]) {
    let (last, parents) = path.split_last().expect("a key has a name");
    let mut table: &mut dyn TableLike = root;
    for seg in parents {
        match table.get_mut(seg).and_then(Item::as_table_like_mut) {
            Some(t) => table = t,
            None => return,
        }
    }
    table.remove(last);
}

/// Sets `path` (missing tables are created as `[a.b]` headers) to `v`, keeping the
/// comment and spacing around the old value.
fn set_path(root: &mut Table, path: &[&str], v: Value) -> Result<(), EditError> {
    let (last, parents) = path.split_last().expect("a key has a name");
    let mut table: &mut dyn TableLike = root;
    for (i, seg) in parents.iter().enumerate() {
        if table.get(seg).is_none() {
            let mut t = Table::new();
            t.set_implicit(i + 1 < parents.len());
            table.insert(seg, Item::Table(t));
        }
        table = table
            .get_mut(seg)
            .and_then(Item::as_table_like_mut)
            .ok_or_else(|| EditError::NotATable(path[..=i].join(".")))?;
    }
    let mut v = v;
    match table.get_mut(last) {
        Some(item) => {
            if let Some(old) = item.as_value() {
                *v.decor_mut() = old.decor().clone();
                keep_comment_column(old, &mut v);
                mark_tuned(old, &mut v);
            }
            *item = Item::Value(v);
        }
        None => {
            table.insert(last, Item::Value(v));
        }
    }
    Ok(())
}

/// A value's own text, without the spaces and comment around it.
fn bare(v: &Value) -> String {
    let mut v = v.clone();
    v.decor_mut().clear();
    v.to_string()
}

/// Pads (or trims) the spaces before a trailing comment so that it stays in its column
/// when the value's text gets shorter (or longer).
fn keep_comment_column(old: &Value, new: &mut Value) {
    let (was, now) = (bare(old).chars().count(), bare(new).chars().count());
    let Some(suffix) = new
        .decor()
        .suffix()
        .and_then(|r| r.as_str())
        .map(str::to_string)
    else {
        return;
    };
    let comment = suffix.trim_start_matches(' ');
    if !comment.starts_with('#') {
        return;
    }
    let spaces = suffix.len() - comment.len();
    let want = (spaces + was).saturating_sub(now).max(1);
    new.decor_mut()
        .set_suffix(format!("{}{comment}", " ".repeat(want)));
}

/// Says in the trailing comment of a changed value what it was (`# tuned from "180m": ...`),
/// so that a comment written for the old value is not read as describing the new one.
fn mark_tuned(old: &Value, new: &mut Value) {
    let was = bare(old);
    if was == bare(new) {
        return;
    }
    let suffix = new
        .decor()
        .suffix()
        .and_then(|r| r.as_str())
        .unwrap_or("")
        .to_string();
    let comment = suffix.trim_start_matches(' ');
    let marked = match comment.strip_prefix('#') {
        Some(text) => {
            let pad = &suffix[..suffix.len() - comment.len()];
            // Tuned again: the newer mark replaces the older one.
            let text = match text.trim_start().strip_prefix("tuned from ") {
                Some(rest) => rest.split_once(':').map_or("", |(_, r)| r),
                None => text,
            };
            format!("{pad}# tuned from {was}:{}", text.trim_end_matches(' '))
        }
        None if comment.trim().is_empty() => format!("{suffix} # tuned from {was}"),
        None => return,
    };
    new.decor_mut().set_suffix(marked);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const WEB: &str = include_str!("../../policies/web.toml");
    const BATCH: &str = include_str!("../../policies/batch.toml");

    #[test]
    fn only_the_given_keys_change_and_comments_stay() {
        let settings = [
            (
                Knob::DownStabilization,
                Setting::Duration(Duration::from_secs(1800)),
            ),
            (Knob::BandwidthTarget, Setting::Ratio(0.75)),
        ];
        let out = rewrite(WEB, &settings, None, &["tuned".into()]).unwrap();
        assert!(out.starts_with("# tune: tuned\n\n# web:"));
        assert!(out.contains(
            "stabilization = \"30m\"                  # tuned from \"180m\": go down only to the highest recommendation"
        ));
        assert!(out.contains("target_utilization = 0.75"));
        // Everything else is as it was, line for line.
        let before: Vec<&str> = WEB.lines().collect();
        let after: Vec<&str> = strip_header(&out).lines().collect();
        assert_eq!(before.len(), after.len());
        let differing = before.iter().zip(&after).filter(|(a, b)| a != b).count();
        assert_eq!(differing, 2);
        // Tuning again replaces the header, not stacks it, and the newer mark replaces
        // the older one.
        let again = rewrite(&out, &[], None, &["second".into()]).unwrap();
        assert_eq!(again.matches(HEADER_MARK).count(), 1);
        let twice = rewrite(
            &out,
            &[(Knob::BandwidthTarget, Setting::Ratio(0.8))],
            None,
            &["third".into()],
        )
        .unwrap();
        assert!(
            twice.contains("target_utilization = 0.8               # tuned from 0.75: need ="),
            "{twice}"
        );
        assert_eq!(twice.matches("tuned from").count(), 2, "{twice}");
        // The result is a valid policy with the new values.
        let p = crate::policy::parse_policy(&out, std::path::Path::new("web.toml")).unwrap();
        assert_eq!(
            p.behavior.scale_down.stabilization,
            Duration::from_secs(1800)
        );
    }

    #[test]
    fn missing_keys_and_tables_are_added() {
        // batch.toml has no [behavior.scale_up] tolerance and no [predictive].
        let settings = [
            (Knob::UpTolerance, Setting::Ratio(0.2)),
            (Knob::PredictiveQuantile, Setting::Ratio(0.9)),
        ];
        let out = rewrite(BATCH, &settings, None, &[]).unwrap();
        let p = crate::policy::parse_policy(&out, std::path::Path::new("batch.toml")).unwrap();
        assert_eq!(p.behavior.scale_up.tolerance, 0.2);
        assert_eq!(p.predictive.quantile, 0.9);
        assert!(out.contains("[predictive]\nquantile = 0.9"));
    }

    #[test]
    fn a_per_proxy_copy_selects_its_proxy_alone() {
        let out = rewrite(
            WEB,
            &[],
            Some(Retarget {
                name: "web-link-abc",
                proxy: "link-abc",
            }),
            &[],
        )
        .unwrap();
        let p = crate::policy::parse_policy(&out, std::path::Path::new("x.toml")).unwrap();
        assert_eq!(p.name, "web-link-abc");
        assert_eq!(p.selector.proxies, ["link-abc"]);
        assert!(p.selector.tags.is_empty());
    }

    fn parse(text: &str) -> crate::policy::Policy {
        crate::policy::parse_policy(text, std::path::Path::new("x.toml"))
            .unwrap_or_else(|d| panic!("{}\n{text}", crate::policy::diagnostic::render(&d)))
    }

    #[test]
    fn hold_and_worth_are_written_or_commented_out() {
        use Setting::{Amount, Off, Ratio};
        let hold = "hold_utilization = 0.8                 # the scale-down window keeps a past peak at 80% utilization (the";
        let worth = "change_worth = 300                     # Mbps·h one change is worth: a scale-down freeing 300 Mbps goes";
        // (file, settings, a line that must be there, (bandwidth hold, worth), (concurrent
        // hold, worth), lines that differ from the file)
        type Row = (
            &'static str,
            Vec<(Knob, Setting)>,
            &'static str,
            [(Option<f64>, Option<f64>); 2],
            usize,
        );
        let table: Vec<Row> = vec![
            (
                WEB,
                vec![(Knob::BandwidthWorth, Amount(500.0))],
                "change_worth = 500                     # tuned from 300: Mbps·h one change is worth",
                [(Some(0.8), Some(500.0)), (None, None)],
                1,
            ),
            (
                WEB,
                vec![(Knob::BandwidthHold, Ratio(0.9))],
                "hold_utilization = 0.9                 # tuned from 0.8: the scale-down window keeps",
                [(Some(0.9), Some(300.0)), (None, None)],
                1,
            ),
            // Off: the line is commented out, its comment in its column.
            (
                WEB,
                vec![(Knob::BandwidthWorth, Off)],
                "# change_worth = 300                   # Mbps·h one change is worth",
                [(Some(0.8), None), (None, None)],
                1,
            ),
            (
                WEB,
                vec![(Knob::BandwidthHold, Off), (Knob::BandwidthWorth, Off)],
                "# hold_utilization = 0.8               # the scale-down window keeps",
                [(None, None), (None, None)],
                2,
            ),
            // Keys the file lacks are added to their table; off on a missing key is nothing.
            (
                WEB,
                vec![
                    (Knob::ConcurrentHold, Ratio(0.85)),
                    (Knob::ConcurrentWorth, Amount(5.0)),
                ],
                "max = 20\nhold_utilization = 0.85\nchange_worth = 5\n",
                [(Some(0.8), Some(300.0)), (Some(0.85), Some(5.0))],
                0,
            ),
            (
                WEB,
                vec![(Knob::ConcurrentWorth, Off)],
                hold,
                [(Some(0.8), Some(300.0)), (None, None)],
                0,
            ),
            (
                BATCH,
                vec![(Knob::BandwidthWorth, Amount(200.0))],
                "change_worth = 200",
                [(None, Some(200.0)), (None, None)],
                0,
            ),
        ];
        for (i, (file, settings, line, [bw, cc], differing)) in table.into_iter().enumerate() {
            let out = rewrite(file, &settings, None, &[]).unwrap();
            assert!(out.contains(line), "row {i}:\n{out}");
            let p = parse(&out);
            let got = |d: &Option<crate::policy::Dimension>| {
                d.as_ref()
                    .map_or((None, None), |d| (d.hold_utilization, d.change_worth))
            };
            assert_eq!([got(&p.bandwidth), got(&p.concurrent)], [bw, cc], "row {i}");
            let before: Vec<&str> = file.lines().collect();
            let after: Vec<&str> = out.lines().collect();
            if differing > 0 {
                assert_eq!(before.len(), after.len(), "row {i}");
                let n = before.iter().zip(&after).filter(|(a, b)| a != b).count();
                assert_eq!(n, differing, "row {i}");
            }
        }
        // The continuation lines of a commented-out key's comment stay under it.
        let out = rewrite(WEB, &[(Knob::BandwidthHold, Off)], None, &[]).unwrap();
        assert!(out.contains(
            "# hold_utilization = 0.8               # the scale-down window keeps a past peak at 80% utilization (the\n                                       # reading of the moment"
        ));
        assert!(out.contains(worth), "the next key is untouched");
        // A setting back on after off is added again.
        let back = rewrite(&out, &[(Knob::BandwidthHold, Ratio(0.85))], None, &[]).unwrap();
        assert_eq!(parse(&back).bandwidth.unwrap().hold_utilization, Some(0.85));
    }

    #[test]
    fn off_in_an_inline_table_removes_the_key() {
        let text = WEB.replace(
            "[concurrent]                           # units of 10,000 connections\nsignal = \"connections\"",
            "[concurrent]\nsignal = \"connections\"\nchange_worth = 4",
        );
        // A key after a dotted table name or in an inline table has no line of its own:
        // it is removed (its comment with it).
        let dotted = "a = 1\nbandwidth.change_worth = 3 # c\n";
        let doc_out = rewrite(dotted, &[(Knob::BandwidthWorth, Setting::Off)], None, &[]).unwrap();
        assert_eq!(doc_out, "a = 1\n");
        let inline = "bandwidth = { signal = \"b\", change_worth = 3 }\n";
        let out = rewrite(inline, &[(Knob::BandwidthWorth, Setting::Off)], None, &[]).unwrap();
        assert!(!out.contains("change_worth"), "{out}");
        // A concurrent worth on its own line is commented out.
        let out = rewrite(&text, &[(Knob::ConcurrentWorth, Setting::Off)], None, &[]).unwrap();
        assert!(out.contains("# change_worth = 4\n"), "{out}");
    }
}
