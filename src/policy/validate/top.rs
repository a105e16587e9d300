//! The top level's own keys: `name`, `mode`, `billing_type`, `manual_hold`,
//! `manual_hold_allows_saturation`, `hold_paid_capacity`.

use toml::Spanned;

use super::{Ctx, PolicySpans};
use crate::core::ManualHold;
use crate::policy::Mode;
use crate::policy::raw::{self, RawPolicy};

const NAME_HELP: &str =
    "use 1 to 64 letters, digits, `.`, `_` or `-` (the name appears in logs and decision ids)";

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
}

/// `name`: defaults to the file name without `.toml`.
pub(super) fn name(ctx: &mut Ctx<'_>, raw: &RawPolicy, spans: &mut PolicySpans) -> String {
    match &raw.name {
        Some(n) => {
            spans.name = ctx.loc(n.span().start);
            if !valid_name(n.get_ref()) {
                ctx.err(
                    n.span().start,
                    format!("invalid policy name `{}`", n.get_ref()),
                    NAME_HELP,
                );
            }
            n.get_ref().clone()
        }
        None => {
            spans.name = (1, 1);
            let stem = ctx
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !valid_name(&stem) && !ctx.dropped.contains("name") {
                ctx.err(
                    0,
                    format!("no `name`, and the file name `{stem}` is not a valid policy name"),
                    format!("add `name = \"...\"`; {NAME_HELP}"),
                );
            }
            stem
        }
    }
}

/// `mode`: `live` (the default) or `dry-run`.
pub(super) fn mode(ctx: &mut Ctx<'_>, raw: &RawPolicy) -> Mode {
    let Some(m) = &raw.mode else {
        return Mode::Live;
    };
    match m.get_ref().as_str() {
        "live" => Mode::Live,
        "dry-run" => Mode::DryRun,
        other => {
            let hint = raw::suggest(other, ["live", "dry-run"])
                .map_or(String::new(), |s| format!("did you mean `{s}`? "));
            ctx.err(
                m.span().start,
                format!("unknown mode `{other}`"),
                format!(
                    "{hint}use `live` (apply changes) or `dry-run` (log decisions, never apply)"
                ),
            );
            Mode::Live
        }
    }
}

/// `billing_type`: 0 or 1, sent with every modify call.
pub(super) fn billing_type(ctx: &mut Ctx<'_>, raw: &RawPolicy) -> Option<i64> {
    raw.billing_type.as_ref().and_then(|b| match *b.get_ref() {
        v @ (0 | 1) => Some(v),
        v => {
            ctx.err(
                b.span().start,
                format!("`billing_type` = {v} is not a GAAP billing type"),
                "use 0 (billed by bandwidth) or 1 (billed by traffic), or leave it out",
            );
            None
        }
    })
}

/// A boolean key, false when left out.
pub(super) fn flag(v: &Option<Spanned<bool>>) -> bool {
    v.as_ref().is_some_and(|b| *b.get_ref())
}

/// `manual_hold`: a duration, `"0"` (no hold) or `"forever"` (until resumed).
pub(super) fn manual_hold(ctx: &mut Ctx<'_>, raw: &RawPolicy) -> ManualHold {
    let Some(v) = &raw.manual_hold else {
        return ManualHold::default();
    };
    match v.get_ref().trim() {
        "forever" => ManualHold::Forever,
        "0" => ManualHold::Off,
        t => match crate::time::parse_duration(t)
            .ok()
            .filter(|_| !t.starts_with('-'))
        {
            Some(d) if d.is_zero() => ManualHold::Off,
            Some(d) => ManualHold::For(d),
            None => {
                ctx.err(
                    v.span().start,
                    format!("`manual_hold` = `{}` is not a duration", v.get_ref()),
                    "write a duration (e.g. `1h`, the default), `\"0\"` to hold nothing, or `\"forever\"` to hold until `resume`",
                );
                ManualHold::default()
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::check_policy;
    use super::super::fixture::{BASE, Edits, assert_errors_at, diags, policy};

    #[test]
    fn each_rule_reports_an_error_at_its_place() {
        let cases: &[(Edits, &str, usize)] = &[
            (
                &[("name", "name = \"no spaces allowed\"")],
                "invalid policy name",
                2,
            ),
            (&[("^", "mode = \"dryrun\"")], "unknown mode `dryrun`", 2),
            (&[("^", "billing_type = 3")], "not a GAAP billing type", 2),
            (
                &[("^", "manual_hold = \"an hour\"")],
                "`manual_hold` = `an hour` is not a duration",
                2,
            ),
            (
                &[("^", "manual_hold = \"-1h\"")],
                "`manual_hold` = `-1h` is not a duration",
                2,
            ),
            (
                &[("^", "manual_hold_allows_saturation = \"yes\"")],
                "manual_hold_allows_saturation",
                2,
            ),
            (
                &[("^", "hold_paid_capacity = \"yes\"")],
                "hold_paid_capacity",
                2,
            ),
        ];
        assert_errors_at(cases);
    }

    #[test]
    fn valid_keys_reach_the_policy() {
        let paid = policy(&[("^", "hold_paid_capacity = true")]);
        let (p, d) = check_policy(&paid, Path::new("t.toml"));
        assert!(d.is_empty(), "{d:#?}");
        assert!(p.unwrap().policy.hold_paid_capacity);
        let (p, _) = check_policy(BASE, Path::new("t.toml"));
        assert!(!p.unwrap().policy.hold_paid_capacity);
        assert!(diags(BASE).is_empty());
    }
}
