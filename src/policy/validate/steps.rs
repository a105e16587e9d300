//! `steps = [...]` of a dimension: step-scaling rules (`{ above = 0.9, change = 2 }`),
//! each checked alone, then against each other (no overlapping bands, no repeated
//! threshold).

use std::collections::HashSet;

use toml::Spanned;

use super::Ctx;
use crate::policy::raw::RawStep;
use crate::policy::{Behavior, StepRule};

const STEP_HELP: &str = "a step rule is `{ above = 0.9, change = 2 }` (utilization >= 0.9: up 2 ladder steps) or `{ below = 0.3, change = -1 }` (utilization < 0.3: down 1 step)";

/// Validates `{dim}.steps`; its messages are prefixed with the key they are about.
pub(super) fn steps(
    ctx: &mut Ctx<'_>,
    dim: &str,
    raw: &Spanned<Vec<Spanned<RawStep>>>,
    behavior: &Behavior,
) -> Option<Vec<StepRule>> {
    let outer = ctx.prefix.replace(format!("`{dim}.steps`"));
    let rules = step_rules(ctx, dim, raw, behavior);
    ctx.prefix = outer;
    rules
}

fn step_rules(
    ctx: &mut Ctx<'_>,
    dim: &str,
    raw: &Spanned<Vec<Spanned<RawStep>>>,
    behavior: &Behavior,
) -> Option<Vec<StepRule>> {
    if raw.get_ref().is_empty() {
        ctx.err(
            raw.span().start,
            format!("`{dim}.steps` is empty"),
            STEP_HELP,
        );
        return None;
    }
    let mut rules = Vec::new();
    let mut ok = true;
    // Thresholds seen so far (by their bits: they are finite and positive here).
    let mut seen_above: HashSet<u64> = HashSet::new();
    let mut seen_below: HashSet<u64> = HashSet::new();
    for st in raw.get_ref() {
        let at = st.span().start;
        let r = st.get_ref();
        let threshold_ok = |v: &Spanned<f64>| v.get_ref().is_finite() && *v.get_ref() > 0.0;
        // Every problem of a rule is reported: its thresholds, then its change.
        let mut rule_ok = true;
        let (above, below) = match (&r.above, &r.below) {
            (Some(_), Some(_)) => {
                ctx.err(
                    at,
                    "a step rule has both `above` and `below`",
                    "split it into two rules, one per direction",
                );
                rule_ok = false;
                (None, None)
            }
            (None, None) => {
                if !ctx.dropped.contains(&format!("{dim}.steps.above"))
                    && !ctx.dropped.contains(&format!("{dim}.steps.below"))
                {
                    ctx.err(at, "a step rule has neither `above` nor `below`", STEP_HELP);
                }
                rule_ok = false;
                (None, None)
            }
            (Some(a), None) => {
                if !threshold_ok(a) {
                    ctx.err(
                        a.span().start,
                        format!("`above` = {} must be a positive utilization", a.get_ref()),
                        "utilization = demand / current capacity, e.g. 0.9",
                    );
                    rule_ok = false;
                } else {
                    if !seen_above.insert(a.get_ref().to_bits()) {
                        ctx.err(
                            a.span().start,
                            format!("two step rules have `above = {}`", a.get_ref()),
                            "each threshold may appear once",
                        );
                        rule_ok = false;
                    }
                }
                (Some(*a.get_ref()), None)
            }
            (None, Some(b)) => {
                if !threshold_ok(b) {
                    ctx.err(
                        b.span().start,
                        format!("`below` = {} must be a positive utilization", b.get_ref()),
                        "utilization = demand / current capacity, e.g. 0.3",
                    );
                    rule_ok = false;
                } else {
                    if !seen_below.insert(b.get_ref().to_bits()) {
                        ctx.err(
                            b.span().start,
                            format!("two step rules have `below = {}`", b.get_ref()),
                            "each threshold may appear once",
                        );
                        rule_ok = false;
                    }
                }
                (None, Some(*b.get_ref()))
            }
        };
        // None: the direction is unknown (reported above).
        let up = match (above, below) {
            (Some(_), None) => Some(true),
            (None, Some(_)) => Some(false),
            _ => None,
        };
        let Some(c) = &r.change else {
            if !ctx.dropped.contains(&format!("{dim}.steps.change")) {
                ctx.err(at, "a step rule has no `change`", STEP_HELP);
            }
            ok = false;
            continue;
        };
        let change = *c.get_ref();
        let wrong = match up {
            Some(true) if change <= 0 => Some("must be positive (an `above` rule scales up)"),
            Some(false) if change >= 0 => Some("must be negative (a `below` rule scales down)"),
            None if change == 0 => Some("must not be 0: a rule moves at least one step"),
            _ => None,
        };
        if let Some(want) = wrong {
            ctx.err(
                c.span().start,
                format!("`change` = {change} {want}"),
                STEP_HELP,
            );
            ok = false;
            continue;
        }
        if change.unsigned_abs() > 100 {
            ctx.err(
                c.span().start,
                format!("`change` = {change} is more than 100 ladder steps"),
                "ladders have a handful of values; use a small number of steps",
            );
            ok = false;
            continue;
        }
        let (true, Some(up)) = (rule_ok, up) else {
            ok = false;
            continue;
        };
        let (dir, cap) = if up {
            ("scale_up", behavior.scale_up.max_steps)
        } else {
            ("scale_down", behavior.scale_down.max_steps)
        };
        if change.unsigned_abs() > u64::from(cap) {
            ctx.warn(c.span().start, format!("`change` = {change} exceeds `behavior.{dir}.max_steps` = {cap}: each change moves at most {cap} step(s)"), format!("raise `behavior.{dir}.max_steps` or lower `change`"));
        }
        rules.push((
            at,
            StepRule {
                above,
                below,
                change: change as i32,
            },
        ));
    }
    // Bands must not overlap: a utilization that is both >= some `above` and < some
    // `below` would scale both ways.
    let min_above = rules
        .iter()
        .filter_map(|(_, r)| r.above)
        .fold(f64::INFINITY, f64::min);
    for (at, r) in &rules {
        if let Some(b) = r.below
            && b > min_above
        {
            ctx.err(*at, format!("`below = {b}` overlaps `above = {min_above}`: a utilization between them would match both"), "every `above` threshold must be at least every `below` threshold");
            ok = false;
        }
    }
    ok.then(|| rules.into_iter().map(|(_, r)| r).collect())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::check_policy;
    use super::super::fixture::{diags, policy};
    use crate::policy::{Rule, StepRule};

    #[test]
    fn step_rules_parse_and_are_checked() {
        let good = policy(&[(
            "target_utilization",
            "steps = [{ above = 0.9, change = 2 }, { above = 0.75, change = 1 }, { below = 0.3, change = -1 }]",
        )]);
        let (p, d) = check_policy(&good, Path::new("t.toml"));
        assert!(d.is_empty(), "{d:#?}");
        let Rule::Steps(rules) = &p.unwrap().policy.bandwidth.unwrap().rule else {
            panic!("steps expected")
        };
        assert_eq!(rules.len(), 3);
        assert_eq!(
            rules[0],
            StepRule {
                above: Some(0.9),
                below: None,
                change: 2
            }
        );
        assert_eq!(
            rules[2],
            StepRule {
                above: None,
                below: Some(0.3),
                change: -1
            }
        );

        let cases: &[(&str, &str)] = &[
            ("steps = []", "`bandwidth.steps` is empty"),
            (
                "steps = [{ above = 0.9, below = 0.2, change = 1 }]",
                "both `above` and `below`",
            ),
            ("steps = [{ change = 1 }]", "neither `above` nor `below`"),
            ("steps = [{ above = 0.9 }]", "no `change`"),
            ("steps = [{ above = 0.9, change = -1 }]", "must be positive"),
            ("steps = [{ below = 0.3, change = 1 }]", "must be negative"),
            ("steps = [{ above = 0.9, change = 0 }]", "must be positive"),
            (
                "steps = [{ above = -0.5, change = 1 }]",
                "positive utilization",
            ),
            (
                "steps = [{ above = 0.5, change = 1 }, { below = 0.6, change = -1 }]",
                "overlaps",
            ),
            (
                "steps = [{ above = 0.9, change = 1 }, { above = 0.9, change = 2 }]",
                "two step rules have `above = 0.9`",
            ),
            (
                "steps = [{ above = 0.9, chnage = 1 }]",
                "unknown key `chnage`",
            ),
        ];
        for (line, want) in cases {
            let d = diags(&policy(&[("target_utilization", line)]));
            assert!(
                d.iter()
                    .any(|d| d.is_error() && d.message.contains(want) && d.line == 9),
                "{line}: want {want:?} in {d:#?}"
            );
        }
        // A change larger than max_steps is a warning, not an error.
        let d = diags(&policy(&[(
            "target_utilization",
            "steps = [{ above = 0.9, change = 3 }]",
        )]));
        assert!(
            d.len() == 1 && !d[0].is_error() && d[0].message.contains("max_steps` = 2"),
            "{d:#?}"
        );
    }
}
