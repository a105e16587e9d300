//! `[bandwidth]` and `[concurrent]`: the managed dimensions — their signal, bounds, rule
//! (`target_utilization`, or [`steps`](super::steps)) and `saturation`.

use std::collections::BTreeSet;

use toml::Spanned;

use super::{Ctx, PolicySpans, steps};
use crate::policy::raw::{self, RawDimension, RawPolicy};
use crate::policy::{Behavior, DEFAULT_SATURATION, Dimension, Rule};

/// Both dimensions (None: not managed, or invalid), with the places of their `min`.
pub(super) fn dimensions(
    ctx: &mut Ctx<'_>,
    raw: &RawPolicy,
    behavior: &Behavior,
    spans: &mut PolicySpans,
) -> (Option<Dimension>, Option<Dimension>) {
    // References are checked against every signal written, valid or not (a signal with
    // an error has been reported already).
    let defined: BTreeSet<String> = raw
        .signals
        .iter()
        .flat_map(|t| t.get_ref().keys().cloned())
        .collect();
    let bandwidth = raw
        .bandwidth
        .as_ref()
        .and_then(|d| dimension(ctx, "bandwidth", d, &defined, behavior));
    let concurrent = raw
        .concurrent
        .as_ref()
        .and_then(|d| dimension(ctx, "concurrent", d, &defined, behavior));
    let min_at = |d: &Spanned<RawDimension>| {
        d.get_ref()
            .min
            .as_ref()
            .map_or(d.span().start, |m| m.span().start)
    };
    spans.bandwidth = raw.bandwidth.as_ref().map(|d| ctx.loc(min_at(d)));
    spans.concurrent = raw.concurrent.as_ref().map(|d| ctx.loc(min_at(d)));
    if raw.bandwidth.is_none()
        && raw.concurrent.is_none()
        && !ctx.dropped.contains("bandwidth")
        && !ctx.dropped.contains("concurrent")
    {
        ctx.err(
            0,
            "the policy manages neither bandwidth nor concurrent",
            "add a [bandwidth] section (Mbps) and/or a [concurrent] section (units of 10,000 connections)",
        );
    }
    (bandwidth, concurrent)
}

fn dimension(
    ctx: &mut Ctx<'_>,
    dim: &str,
    raw: &Spanned<RawDimension>,
    signals: &BTreeSet<String>,
    behavior: &Behavior,
) -> Option<Dimension> {
    let at = raw.span().start;
    let r: &RawDimension = raw.get_ref();
    let unit = if dim == "bandwidth" {
        "Mbps"
    } else {
        "units of 10,000 connections"
    };
    let signal = match &r.signal {
        Some(s) => {
            let name = s.get_ref();
            if !signals.contains(name) {
                let known: Vec<&str> = signals.iter().map(String::as_str).collect();
                let help = match raw::suggest(name, known.iter().copied()) {
                    Some(k) => format!(
                        "did you mean `{k}`? define signals as [signals.NAME] tables with a `query`"
                    ),
                    None if known.is_empty() => {
                        format!("define it: [signals.{name}] with `query = '...'`")
                    }
                    None => format!(
                        "defined signals: {}",
                        known
                            .iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                ctx.err(
                    s.span().start,
                    format!("`{dim}.signal` names an unknown signal `{name}`"),
                    help,
                );
            }
            Some(name.clone())
        }
        None => {
            ctx.missing(&format!("{dim}.signal"), at, format!("[{dim}] has no `signal`"), format!("add `signal = \"...\"` naming the [signals.NAME] table that measures demand for {dim}"));
            None
        }
    };
    let min = match &r.min {
        Some(v) => ctx.uint(v, &format!("{dim}.min"), 0),
        None => {
            ctx.missing(
                &format!("{dim}.min"),
                at,
                format!("[{dim}] has no `min`"),
                format!("add `min = ...` ({unit}): the policy never goes below it"),
            );
            None
        }
    };
    let max = match &r.max {
        Some(v) => ctx.uint(v, &format!("{dim}.max"), 1),
        None => {
            ctx.missing(
                &format!("{dim}.max"),
                at,
                format!("[{dim}] has no `max`"),
                format!("add `max = ...` ({unit}): the policy never goes above it"),
            );
            None
        }
    };
    if let (Some(lo), Some(hi), Some(m)) = (min, max, &r.min)
        && lo > hi
    {
        ctx.err(
            m.span().start,
            format!("`{dim}.min` ({lo}) is greater than `{dim}.max` ({hi})"),
            "swap them, or lower min",
        );
    }
    let rule = match (&r.target_utilization, &r.steps) {
        (Some(t), Some(s)) => {
            ctx.err(
                s.span().start,
                format!("[{dim}] has both `target_utilization` and `steps`"),
                "keep one: target tracking (`target_utilization`) or step rules (`steps`)",
            );
            // Each is still checked: the one kept must be right too.
            let _ = target_tracking(ctx, dim, t);
            let _ = steps::steps(ctx, dim, s, behavior);
            None
        }
        (Some(t), None) => target_tracking(ctx, dim, t),
        (None, Some(s)) => steps::steps(ctx, dim, s, behavior).map(Rule::Steps),
        (None, None) => {
            if !ctx.dropped.contains(&format!("{dim}.target_utilization"))
                && !ctx.dropped.contains(&format!("{dim}.steps"))
            {
                ctx.err(at, format!("[{dim}] has neither `target_utilization` nor `steps`"), "add `target_utilization = 0.7` (target tracking) or `steps = [{ above = 0.9, change = 1 }, { below = 0.3, change = -1 }]`");
            }
            None
        }
    };
    let saturation = saturation(ctx, dim, r.saturation.as_ref());
    let hold_utilization = r
        .hold_utilization
        .as_ref()
        .and_then(|h| hold_utilization(ctx, dim, h, rule.as_ref()));
    let change_worth = r
        .change_worth
        .as_ref()
        .and_then(|w| change_worth(ctx, dim, w));
    Some(Dimension {
        signal: signal?,
        min: min?,
        max: max?,
        rule: rule?,
        saturation,
        hold_utilization,
        change_worth,
    })
}

/// `{dim}.hold_utilization`: target tracking only, in [target_utilization, 1].
fn hold_utilization(
    ctx: &mut Ctx<'_>,
    dim: &str,
    h: &Spanned<f64>,
    rule: Option<&Rule>,
) -> Option<f64> {
    let x = *h.get_ref();
    let at = h.span().start;
    match rule {
        Some(Rule::TargetTracking { target_utilization }) => {
            let t = *target_utilization;
            if x >= t && x <= 1.0 {
                Some(x)
            } else {
                ctx.err(
                    at,
                    format!("`{dim}.hold_utilization` = {x} is outside [{t}, 1] (from `target_utilization` to 1)"),
                    "the utilization at which a past peak is kept, e.g. 0.8 with a 0.7 target; \
                     leave it out to keep peaks at the target",
                );
                None
            }
        }
        Some(Rule::Steps(_)) => {
            ctx.err(
                at,
                format!("`{dim}.hold_utilization` needs `target_utilization`"),
                "step rules have no target to hold peaks at: remove `hold_utilization`",
            );
            None
        }
        // The rule has its own error.
        None => None,
    }
}

/// `{dim}.change_worth`: a positive, finite number of capacity·hours.
fn change_worth(ctx: &mut Ctx<'_>, dim: &str, w: &Spanned<f64>) -> Option<f64> {
    let x = *w.get_ref();
    if x.is_finite() && x > 0.0 {
        Some(x)
    } else {
        let unit = if dim == "bandwidth" {
            "Mbps·h"
        } else {
            "units·h"
        };
        ctx.err(
            w.span().start,
            format!("`{dim}.change_worth` = {x} must be a positive number ({unit})"),
            format!(
                "what one change is worth: with 300, a scale-down freeing 300 {} may go after \
                 an hour without a higher need; leave it out to wait the whole window",
                if dim == "bandwidth" { "Mbps" } else { "units" }
            ),
        );
        None
    }
}

fn target_tracking(ctx: &mut Ctx<'_>, dim: &str, t: &Spanned<f64>) -> Option<Rule> {
    let v = *t.get_ref();
    if v > 0.0 && v <= 1.0 {
        Some(Rule::TargetTracking {
            target_utilization: v,
        })
    } else {
        ctx.err(
            t.span().start,
            format!("`{dim}.target_utilization` = {v} is outside (0, 1]"),
            "the share of capacity demand should use, e.g. 0.7 keeps 30% headroom",
        );
        None
    }
}

/// `{dim}.saturation`: in (0, 1].
fn saturation(ctx: &mut Ctx<'_>, dim: &str, v: Option<&Spanned<f64>>) -> f64 {
    let Some(v) = v else {
        return DEFAULT_SATURATION;
    };
    let x = *v.get_ref();
    if x > 0.0 && x <= 1.0 {
        x
    } else {
        ctx.err(
            v.span().start,
            format!("`{dim}.saturation` = {x} is outside (0, 1]"),
            "a share of the capacity in effect: 0.95 reads a sample at 95% of the cap as \
             demand the cap hides (default)",
        );
        DEFAULT_SATURATION
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::check_policy;
    use super::super::fixture::{Edits, assert_errors_at, assert_errors_at_col, diags, policy};
    use crate::policy::DEFAULT_SATURATION;

    #[test]
    fn each_rule_reports_an_error_at_its_place() {
        let cases: &[(Edits, &str, usize)] = &[
            (
                &[("min =", "min = 600")],
                "`bandwidth.min` (600) is greater than `bandwidth.max` (500)",
                10,
            ),
            (
                &[("min =", "min = -1")],
                "`bandwidth.min` = -1 must not be negative",
                10,
            ),
            (&[("min =", "")], "[bandwidth] has no `min`", 7),
            (
                &[("max =", "max = 0")],
                "`bandwidth.max` = 0 must be at least 1",
                11,
            ),
            (
                &[("target_utilization", "target_utilization = 1.5")],
                "outside (0, 1]",
                9,
            ),
            (
                &[("target_utilization", "target_utilization = 0")],
                "outside (0, 1]",
                9,
            ),
            (
                &[("target_utilization", "")],
                "has neither `target_utilization` nor `steps`",
                7,
            ),
            (
                &[("", "steps = [{ above = 0.9, change = 1 }]")],
                "both `target_utilization` and `steps`",
                12,
            ),
            (
                &[("signal =", "signal = \"bandwith\"")],
                "unknown signal `bandwith`",
                8,
            ),
            (&[("signal =", "")], "[bandwidth] has no `signal`", 7),
        ];
        assert_errors_at(cases);
        assert_errors_at_col(&[
            (
                "saturation = 1.5",
                "`bandwidth.saturation` = 1.5 is outside (0, 1]",
                12,
                14,
            ),
            ("saturation = 0.0", "is outside (0, 1]", 12, 14),
            (
                "hold_utilization = 0.5",
                "`bandwidth.hold_utilization` = 0.5 is outside [0.7, 1]",
                12,
                20,
            ),
            ("hold_utilization = 1.2", "is outside [0.7, 1]", 12, 20),
            (
                "change_worth = 0",
                "`bandwidth.change_worth` = 0 must be a positive number (Mbps·h)",
                12,
                16,
            ),
            ("change_worth = -300.0", "must be a positive number", 12, 16),
        ]);
    }

    /// `[concurrent]` alone is a valid policy.
    #[test]
    fn either_dimension_alone_is_valid() {
        let (p, d) = check_policy(
            &policy(&[("[bandwidth]", "[concurrent]")]),
            Path::new("t.toml"),
        );
        assert!(d.iter().all(|d| !d.is_error()), "{d:#?}");
        let p = p.unwrap().policy;
        assert!(p.bandwidth.is_none());
        assert_eq!(p.concurrent.unwrap().max, 500);
    }

    #[test]
    fn neither_dimension_is_an_error() {
        let text = policy(&[
            ("[bandwidth]", ""),
            ("signal =", ""),
            ("target_utilization", ""),
            ("min =", ""),
            ("max =", ""),
        ]);
        let d = diags(&text);
        assert!(
            d.iter()
                .any(|d| d.message.contains("neither bandwidth nor concurrent")),
            "{d:#?}"
        );
        // ...and the now unused signal gets a warning.
        assert!(
            d.iter()
                .any(|d| !d.is_error() && d.message.contains("signal `bandwidth` is not used")),
            "{d:#?}"
        );
    }

    #[test]
    fn hold_utilization_and_change_worth_reach_the_policy() {
        let (p, d) = check_policy(
            &policy(&[("", "hold_utilization = 0.8\nchange_worth = 300")]),
            Path::new("t.toml"),
        );
        assert!(d.is_empty(), "{d:#?}");
        let b = p.unwrap().policy.bandwidth.unwrap();
        assert_eq!(
            (b.hold_utilization, b.change_worth),
            (Some(0.8), Some(300.0))
        );
        let (p, _) = check_policy(&policy(&[]), Path::new("t.toml"));
        let b = p.unwrap().policy.bandwidth.unwrap();
        assert_eq!((b.hold_utilization, b.change_worth), (None, None));
    }

    #[test]
    fn hold_utilization_needs_a_target() {
        let text = policy(&[
            (
                "target_utilization",
                "steps = [{ above = 0.9, change = 1 }]",
            ),
            ("", "hold_utilization = 0.8"),
        ]);
        let d = diags(&text);
        assert!(
            d.iter().any(|d| d.is_error()
                && d.message == "`bandwidth.hold_utilization` needs `target_utilization`"),
            "{d:#?}"
        );
    }

    #[test]
    fn saturation_reaches_the_policy() {
        let (p, d) = check_policy(&policy(&[("", "saturation = 0.9")]), Path::new("t.toml"));
        assert!(d.is_empty(), "{d:#?}");
        assert_eq!(p.unwrap().policy.bandwidth.unwrap().saturation, 0.9);
        let (p, _) = check_policy(&policy(&[]), Path::new("t.toml"));
        assert_eq!(
            p.unwrap().policy.bandwidth.unwrap().saturation,
            DEFAULT_SATURATION
        );
    }
}
