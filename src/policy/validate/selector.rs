//! `proxies = [...]` and `[select] tags`: which proxies a policy manages.

use super::{Ctx, PolicySpans};
use crate::policy::Selector;
use crate::policy::raw::RawPolicy;

const SELECT_HELP: &str =
    "add `proxies = [\"link-xxxxxxxx\"]` and/or `select = { tags = { autoscale = \"web\" } }`";

pub(super) fn selector(ctx: &mut Ctx<'_>, raw: &RawPolicy, spans: &mut PolicySpans) -> Selector {
    let mut sel = Selector::default();
    // Ids seen so far: the duplicate check is one lookup, not a scan of the list.
    let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
    if let Some(list) = &raw.proxies {
        for id in list.get_ref() {
            let at = id.span().start;
            let v = id.get_ref().trim();
            if v.is_empty() {
                ctx.err(
                    at,
                    "empty proxy id in `proxies`",
                    "proxy ids look like `link-xxxxxxxx`",
                );
                continue;
            }
            if !seen.insert(v) {
                ctx.warn(
                    at,
                    format!("proxy `{v}` is listed twice"),
                    "remove the duplicate",
                );
                continue;
            }
            if !v.starts_with("link-") {
                ctx.warn(
                    at,
                    format!("`{v}` does not look like a GAAP proxy id"),
                    "proxy ids look like `link-xxxxxxxx` (see DescribeProxies)",
                );
            }
            spans.proxies.push((v.to_string(), ctx.loc(at)));
            sel.proxies.push(v.to_string());
        }
    }
    if let Some(select) = &raw.select {
        spans.select = Some(ctx.loc(select.span().start));
        match &select.get_ref().tags {
            Some(tags) => {
                for (k, v) in tags.get_ref() {
                    if k.is_empty() {
                        ctx.err(
                            v.span().start,
                            "empty tag key in `select.tags`",
                            "write tags as `{ key = \"value\" }`",
                        );
                    }
                    sel.tags.insert(k.clone(), v.get_ref().clone());
                }
                if tags.get_ref().is_empty() {
                    ctx.err(
                        tags.span().start,
                        "`select.tags` is empty, so it selects nothing",
                        SELECT_HELP,
                    );
                }
            }
            None if !ctx.dropped.contains("select.tags") => {
                ctx.err(select.span().start, "`select` has no `tags`", SELECT_HELP);
            }
            None => {}
        }
    }
    if sel.proxies.is_empty()
        && sel.tags.is_empty()
        && raw.select.is_none()
        && !ctx.dropped.contains("proxies")
        && !ctx.dropped.contains("select")
    {
        let at = raw.proxies.as_ref().map_or(0, |p| p.span().start);
        ctx.err(at, "the policy selects no proxies", SELECT_HELP);
    }
    sel
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::check_policy;
    use super::super::fixture::{Edits, assert_errors_at, diags, policy};

    #[test]
    fn each_rule_reports_an_error_at_its_place() {
        let cases: &[(Edits, &str, usize)] = &[
            (&[("proxies", "")], "selects no proxies", 1),
            (
                &[("proxies", "select = { tags = {} }")],
                "`select.tags` is empty",
                3,
            ),
            (&[("proxies", "select = {}")], "`select` has no `tags`", 3),
            (
                &[("proxies", "proxies = [\"link-a\", \" \"]")],
                "empty proxy id in `proxies`",
                3,
            ),
            (
                &[("proxies", "select = { tags = { \"\" = \"web\" } }")],
                "empty tag key in `select.tags`",
                3,
            ),
        ];
        assert_errors_at(cases);
    }

    #[test]
    fn ids_and_tags_reach_the_selector_with_their_places() {
        let text = policy(&[(
            "proxies",
            "proxies = [\"link-a\", \"link-b\", \"link-a\", \"other\"]\nselect = { tags = { app = \"web\" } }",
        )]);
        let (p, d) = check_policy(&text, Path::new("t.toml"));
        let c = p.expect("warnings only");
        let warnings: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            warnings,
            [
                "proxy `link-a` is listed twice",
                "`other` does not look like a GAAP proxy id"
            ]
        );
        assert_eq!(c.policy.selector.proxies, ["link-a", "link-b", "other"]);
        assert_eq!(c.policy.selector.tags["app"], "web");
        assert_eq!(c.spans.selector_of("link-b"), (3, 22));
        assert_eq!(c.spans.selector_of("link-z"), (4, 10));
        assert!(diags(&policy(&[])).is_empty());
    }
}
