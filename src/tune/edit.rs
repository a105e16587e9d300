//! The recommended settings written into a policy file's own text (pure): only the tuned
//! keys that change are touched, every comment and the layout are kept, and a header of
//! `# tune:` lines says what was tuned (a header from an earlier run is replaced).

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
    let body = strip_header(text);
    let mut doc: DocumentMut = body
        .parse()
        .map_err(|e: toml_edit::TomlError| EditError::Parse(e.to_string()))?;
    for (knob, setting) in settings {
        let path: Vec<&str> = knob.key().split('.').collect();
        set_path(doc.as_table_mut(), &path, setting.toml())?;
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
            }
            *item = Item::Value(v);
        }
        None => {
            table.insert(last, Item::Value(v));
        }
    }
    Ok(())
}

/// Pads (or trims) the spaces before a trailing comment so that it stays in its column
/// when the value's text gets shorter (or longer).
fn keep_comment_column(old: &Value, new: &mut Value) {
    let bare = |v: &Value| {
        let mut v = v.clone();
        v.decor_mut().clear();
        v.to_string().chars().count()
    };
    let (was, now) = (bare(old), bare(new));
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
            "stabilization = \"30m\"                  # go down only to the highest recommendation"
        ));
        assert!(out.contains("target_utilization = 0.75"));
        // Everything else is as it was, line for line.
        let before: Vec<&str> = WEB.lines().collect();
        let after: Vec<&str> = strip_header(&out).lines().collect();
        assert_eq!(before.len(), after.len());
        let differing = before.iter().zip(&after).filter(|(a, b)| a != b).count();
        assert_eq!(differing, 2);
        // Tuning again replaces the header, not stacks it.
        let again = rewrite(&out, &[], None, &["second".into()]).unwrap();
        assert_eq!(again.matches(HEADER_MARK).count(), 1);
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
}
