//! `[signals.NAME]`: the PromQL queries that measure demand.

use std::collections::BTreeMap;
use std::time::Duration;

use toml::Spanned;

use super::Ctx;
use crate::policy::Signal;
use crate::policy::raw::{RawPolicy, RawSignal};

const LABEL_HELP: &str = "a Prometheus label name: letters, digits and `_`, not starting with a digit (GAAP exporter: `channel_id`)";

pub(super) fn signals(ctx: &mut Ctx<'_>, raw: &RawPolicy) -> BTreeMap<String, Signal> {
    let mut out = BTreeMap::new();
    let Some(table) = &raw.signals else {
        return out;
    };
    for (name, sig) in table.get_ref() {
        if let Some(s) = signal(ctx, name, sig) {
            out.insert(name.clone(), s);
        }
    }
    out
}

fn signal(ctx: &mut Ctx<'_>, name: &str, sig: &Spanned<RawSignal>) -> Option<Signal> {
    let r: &RawSignal = sig.get_ref();
    let query = match &r.query {
        Some(q) if q.get_ref().trim().is_empty() => {
            ctx.err(
                q.span().start,
                format!("`signals.{name}.query` is empty"),
                "write the PromQL query that returns one series per proxy",
            );
            None
        }
        Some(q) => match lint_query(q.get_ref()) {
            Some(problem) => {
                ctx.err(
                    q.span().start,
                    format!("`signals.{name}.query`: {problem}"),
                    "check the PromQL brackets and quotes",
                );
                None
            }
            None => Some(q.get_ref().trim().to_string()),
        },
        // Dropped by stage 1 (a wrong type, already reported): not missing as well.
        None if ctx.dropped.contains(&format!("signals.{name}.query")) => None,
        None => {
            ctx.missing(
                "signals.query",
                sig.span().start,
                format!("signal `{name}` has no `query`"),
                "add `query = 'max by (channel_id) (qce_qaap_outbandwidth_max)'`",
            );
            None
        }
    };
    let proxy_label = match &r.proxy_label {
        None => "channel_id".to_string(),
        Some(l) => {
            let v = l.get_ref();
            let ok = v
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                ctx.err(
                    l.span().start,
                    format!("`signals.{name}.proxy_label` = `{v}` is not a label name"),
                    LABEL_HELP,
                );
            }
            v.clone()
        }
    };
    let max_age = match &r.max_age {
        None => Duration::from_secs(300),
        Some(a) => ctx.duration(a, &format!("signals.{name}.max_age"), false)?,
    };
    Some(Signal {
        name: name.to_string(),
        query: query?,
        proxy_label,
        max_age,
    })
}

/// An offline sanity check of a PromQL query: brackets balance and strings close.
fn lint_query(q: &str) -> Option<String> {
    let mut stack: Vec<char> = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in q.chars() {
        if let Some(qc) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' && qc != '`' {
                escaped = true;
            } else if c == qc {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' => {
                let open = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if stack.pop() != Some(open) {
                    return Some(format!("unexpected `{c}`"));
                }
            }
            _ => {}
        }
    }
    if let Some(qc) = quote {
        return Some(format!("unclosed string (missing {qc})"));
    }
    stack.pop().map(|open| format!("unclosed `{open}`"))
}

/// Signals nobody uses are probably a typo in a dimension's `signal`: a warning each.
pub(super) fn unused(ctx: &mut Ctx<'_>, raw: &RawPolicy) {
    let Some(table) = &raw.signals else {
        return;
    };
    for (sig_name, sig) in table.get_ref() {
        let used = [&raw.bandwidth, &raw.concurrent].iter().any(|d| {
            d.as_ref()
                .and_then(|d| d.get_ref().signal.as_ref())
                .is_some_and(|s| s.get_ref() == sig_name)
        });
        if !used {
            ctx.warn(
                sig.span().start,
                format!("signal `{sig_name}` is not used by [bandwidth] or [concurrent]"),
                "reference it with `signal = \"...\"` in a dimension, or remove it",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{Edits, assert_errors_at, diags, policy};
    use super::lint_query;

    #[test]
    fn each_rule_reports_an_error_at_its_place() {
        let cases: &[(Edits, &str, usize)] = &[
            (&[("query", "query = 'max(rate(x[5m])'")], "unclosed `(`", 6),
            (&[("query", "query = ''")], "query` is empty", 6),
            (
                &[("query", "query = 'x'\nproxy_label = \"channel-id\"")],
                "not a label name",
                7,
            ),
            (
                &[("query", "query = 'x'\nmax_age = \"0s\"")],
                "`signals.bandwidth.max_age` must be longer than 0s",
                7,
            ),
        ];
        assert_errors_at(cases);
    }

    #[test]
    fn an_unused_signal_is_a_warning() {
        let d = diags(&policy(&[("", "[signals.extra]\nquery = 'x'")]));
        assert_eq!(d.len(), 1, "{d:#?}");
        assert!(
            !d[0].is_error()
                && d[0].message == "signal `extra` is not used by [bandwidth] or [concurrent]",
            "{d:#?}"
        );
    }

    /// A signal's `query` of the wrong type is one error (stage 1's), not a second one
    /// saying the signal has no query: the two stages agree on map keys like `signals.x`.
    #[test]
    fn a_wrong_typed_query_is_not_also_missing() {
        let text = policy(&[("", "[signals.extra]\nquery = 5")]);
        let d = diags(&text);
        let errors: Vec<String> = d
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.to_string())
            .collect();
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(
            errors[0].contains("`signals.extra.query`: invalid type"),
            "{errors:#?}"
        );
        // A query left out is still missing.
        let d = diags(&policy(&[("", "[signals.extra]\nmax_age = \"1m\"")]));
        assert!(
            d.iter()
                .any(|d| d.is_error() && d.message == "signal `extra` has no `query`"),
            "{d:#?}"
        );
    }

    #[test]
    fn query_lint_finds_unbalanced_brackets_and_strings() {
        let cases: &[(&str, Option<&str>)] = &[
            ("max by (channel_id) (max_over_time(x[2m]))", None),
            ("x{channel_id=\"a)\"}", None),
            ("max(x", Some("unclosed `(`")),
            ("x[5m", Some("unclosed `[`")),
            ("x)", Some("unexpected `)`")),
            ("x{a=\"b}", Some("unclosed string (missing \")")),
        ];
        for (q, want) in cases {
            assert_eq!(lint_query(q).as_deref(), *want, "{q}");
        }
    }
}
