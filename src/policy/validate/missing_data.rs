//! `[on_missing_data]`: what a dimension does after evaluations without data (hold, or
//! go up to fallback values).

use toml::Spanned;

use super::{Bounds, Ctx};
use crate::policy::raw::{self, RawMissingData};
use crate::policy::{MissingAction, MissingData};

pub(super) fn missing_data(
    ctx: &mut Ctx<'_>,
    raw: &Spanned<RawMissingData>,
    managed: (bool, bool),
    bounds: Bounds,
) -> MissingData {
    let r = raw.get_ref();
    let mut out = MissingData::default();
    if let Some(a) = &r.action {
        match a.get_ref().as_str() {
            "hold" => out.action = MissingAction::Hold,
            "fallback" => out.action = MissingAction::Fallback,
            other => {
                let hint = raw::suggest(other, ["hold", "fallback"])
                    .map_or(String::new(), |s| format!("did you mean `{s}`? "));
                ctx.err(a.span().start, format!("unknown `on_missing_data.action` `{other}`"), format!("{hint}use `hold` (keep the current values) or `fallback` (go up to the fallback values)"));
            }
        }
    }
    if let Some(a) = &r.after
        && let Some(n) = ctx.uint(a, "on_missing_data.after", 1)
    {
        out.after = n;
    }
    for (dim, v, is_managed, b) in [
        ("bandwidth", &r.bandwidth, managed.0, bounds.0),
        ("concurrent", &r.concurrent, managed.1, bounds.1),
    ] {
        let Some(v) = v else { continue };
        let n = ctx.uint(v, &format!("on_missing_data.{dim}"), 1);
        if !is_managed {
            ctx.err(
                v.span().start,
                format!("`on_missing_data.{dim}` is set but the policy has no [{dim}] section"),
                format!("remove it, or add [{dim}]"),
            );
            continue;
        }
        let Some(n) = n else { continue };
        if out.action == MissingAction::Hold && r.action.is_some() {
            ctx.warn(
                v.span().start,
                format!("`on_missing_data.{dim}` is ignored with action = \"hold\""),
                "set `action = \"fallback\"` to use it, or remove it",
            );
        }
        if let Some((lo, hi)) = b {
            if n < lo {
                ctx.warn(v.span().start, format!("fallback {dim} {n} is below `{dim}.min` = {lo}: the bounds raise it to {lo}"), "use a value within min..max");
            } else if n > hi {
                ctx.warn(v.span().start, format!("fallback {dim} {n} is above `{dim}.max` = {hi}: the bounds lower it to {hi}"), "use a value within min..max");
            }
        }
        if dim == "bandwidth" {
            out.bandwidth = Some(n);
        } else {
            out.concurrent = Some(n);
        }
    }
    if out.action == MissingAction::Fallback
        && r.bandwidth.is_none()
        && r.concurrent.is_none()
        && !ctx.dropped.contains("on_missing_data.bandwidth")
        && !ctx.dropped.contains("on_missing_data.concurrent")
    {
        let at = r
            .action
            .as_ref()
            .map_or(raw.span().start, |a| a.span().start);
        ctx.err(at, "`on_missing_data.action = \"fallback\"` without fallback values", "add `bandwidth = ...` and/or `concurrent = ...`: the values to go up to after `after` evaluations without data");
    }
    if r.action.is_none() && (r.bandwidth.is_some() || r.concurrent.is_some()) {
        ctx.warn(
            raw.span().start,
            "fallback values are set but `action` defaults to \"hold\", which ignores them",
            "add `action = \"fallback\"`",
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::check_policy;
    use super::super::fixture::{Edits, assert_errors_at, policy};
    use crate::policy::MissingAction;

    #[test]
    fn each_rule_reports_an_error_at_its_place() {
        let cases: &[(Edits, &str, usize)] = &[
            (
                &[("", "[on_missing_data]\naction = \"fallback\"")],
                "without fallback values",
                13,
            ),
            (
                &[(
                    "",
                    "[on_missing_data]\naction = \"fallback\"\nconcurrent = 5",
                )],
                "no [concurrent] section",
                14,
            ),
            (
                &[("", "[on_missing_data]\nafter = 0")],
                "must be at least 1",
                13,
            ),
            (
                &[("", "[on_missing_data]\naction = \"hodl\"")],
                "unknown `on_missing_data.action` `hodl`",
                13,
            ),
        ];
        assert_errors_at(cases);
    }

    #[test]
    fn warnings_do_not_invalidate() {
        let text = policy(&[(
            "",
            "[on_missing_data]\naction = \"fallback\"\nbandwidth = 5",
        )]);
        let (p, d) = check_policy(&text, Path::new("t.toml"));
        assert!(p.is_some(), "{d:#?}");
        assert_eq!(d.len(), 1);
        assert!(
            !d[0].is_error() && d[0].message.contains("below `bandwidth.min` = 10"),
            "{d:#?}"
        );
        assert_eq!(p.unwrap().policy.on_missing_data.bandwidth, Some(5));
    }

    #[test]
    fn fallback_values_reach_the_policy() {
        let text = policy(&[(
            "",
            "[on_missing_data]\naction = \"fallback\"\nafter = 2\nbandwidth = 100",
        )]);
        let (p, d) = check_policy(&text, Path::new("t.toml"));
        assert!(d.is_empty(), "{d:#?}");
        let m = p.unwrap().policy.on_missing_data;
        assert_eq!(
            (m.action, m.after, m.bandwidth, m.concurrent),
            (MissingAction::Fallback, 2, Some(100), None)
        );
    }
}
