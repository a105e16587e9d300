//! `[behavior.scale_up]` and `[behavior.scale_down]`: tolerance, stabilization, steps and
//! cooldown per direction, and the scale-down flap budget (`flap_budget`,
//! `max_stabilization`).

use toml::Spanned;

use super::Ctx;
use crate::policy::raw::{RawBehavior, RawDirection};
use crate::policy::{Behavior, DirectionBehavior, FlapBudget};

pub(super) fn behavior(ctx: &mut Ctx<'_>, raw: Option<&Spanned<RawBehavior>>) -> Behavior {
    let mut b = Behavior::default_behavior();
    if let Some(raw) = raw {
        if let Some(up) = &raw.get_ref().scale_up {
            direction(ctx, "scale_up", up.get_ref(), &mut b.scale_up);
        }
        if let Some(down) = &raw.get_ref().scale_down {
            direction(ctx, "scale_down", down.get_ref(), &mut b.scale_down);
        }
        for (which, d) in [
            ("scale_up", &raw.get_ref().scale_up),
            ("scale_down", &raw.get_ref().scale_down),
        ] {
            if let Some(d) = d {
                flap_budget(ctx, which, d.get_ref(), &mut b.flap_budget);
            }
        }
    }
    b
}

fn direction(ctx: &mut Ctx<'_>, which: &str, raw: &RawDirection, out: &mut DirectionBehavior) {
    if let Some(t) = &raw.tolerance {
        let v = *t.get_ref();
        if (0.0..1.0).contains(&v) {
            out.tolerance = v;
        } else {
            ctx.err(
                t.span().start,
                format!("`behavior.{which}.tolerance` = {v} is outside [0, 1)"),
                "a relative band: 0.05 ignores changes smaller than 5%",
            );
        }
    }
    if let Some(s) = &raw.stabilization
        && let Some(d) = ctx.duration(s, &format!("behavior.{which}.stabilization"), true)
    {
        out.stabilization = d;
    }
    if let Some(c) = &raw.cooldown
        && let Some(d) = ctx.duration(c, &format!("behavior.{which}.cooldown"), true)
    {
        out.cooldown = d;
    }
    if let Some(m) = &raw.max_steps
        && let Some(n) = ctx.uint(m, &format!("behavior.{which}.max_steps"), 1)
    {
        out.max_steps = n;
    }
}

const FLAP_HELP: &str = "write `\"N/DURATION\"`: N reversals within DURATION are free, each \
                         further one doubles the scale-down stabilization (default `\"0/4h\"`), \
                         or `\"off\"`";

/// `behavior.scale_down.flap_budget` and `max_stabilization`; on scale_up both are errors.
fn flap_budget(ctx: &mut Ctx<'_>, which: &str, raw: &RawDirection, out: &mut Option<FlapBudget>) {
    if which != "scale_down" {
        for (key, v) in [
            ("flap_budget", &raw.flap_budget),
            ("max_stabilization", &raw.max_stabilization),
        ] {
            if let Some(v) = v {
                ctx.err(
                    v.span().start,
                    format!("`behavior.{which}.{key}` is a scale-down setting"),
                    "move it to [behavior.scale_down]",
                );
            }
        }
        return;
    }
    if let Some(v) = &raw.flap_budget {
        let text = v.get_ref().trim();
        if text == "off" {
            *out = None;
        } else {
            let parsed = text.split_once('/').and_then(|(n, per)| {
                let n: u32 = n.trim().parse().ok()?;
                let per = crate::time::parse_duration(per.trim()).ok()?;
                (!per.is_zero()).then_some((n, per))
            });
            match parsed {
                Some((reversals, per)) => {
                    let b = out.get_or_insert(FlapBudget::DEFAULT);
                    b.reversals = reversals;
                    b.per = per;
                }
                None => ctx.err(
                    v.span().start,
                    format!("`behavior.scale_down.flap_budget` = `{text}` is not a budget"),
                    FLAP_HELP,
                ),
            }
        }
    }
    if let Some(v) = &raw.max_stabilization
        && let Some(d) = ctx.duration(v, "behavior.scale_down.max_stabilization", false)
        && let Some(b) = out.as_mut()
    {
        b.max_stabilization = d;
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::super::check_policy;
    use super::super::fixture::{Edits, assert_errors_at, assert_errors_at_col, policy};
    use crate::policy::FlapBudget;

    #[test]
    fn each_rule_reports_an_error_at_its_place() {
        let cases: &[(Edits, &str, usize)] = &[
            (
                &[("", "[behavior.scale_up]\ntolerance = 1.0")],
                "outside [0, 1)",
                13,
            ),
            (
                &[("", "[behavior.scale_down]\nmax_steps = 0")],
                "must be at least 1",
                13,
            ),
            (
                &[("", "[behavior.scale_down]\ncooldown = \"-1m\"")],
                "`behavior.scale_down.cooldown` = `-1m` is negative",
                13,
            ),
        ];
        assert_errors_at(cases);
        // The flap budget's keys, with their columns.
        assert_errors_at_col(&[
            (
                "[behavior.scale_down]\nflap_budget = \"2 per hour\"",
                "`behavior.scale_down.flap_budget` = `2 per hour` is not a budget",
                13,
                15,
            ),
            (
                "[behavior.scale_down]\nflap_budget = \"1/0s\"",
                "is not a budget",
                13,
                15,
            ),
            (
                "[behavior.scale_up]\nflap_budget = \"1/2h\"",
                "`behavior.scale_up.flap_budget` is a scale-down setting",
                13,
                15,
            ),
            (
                "[behavior.scale_up]\nmax_stabilization = \"1h\"",
                "`behavior.scale_up.max_stabilization` is a scale-down setting",
                13,
                21,
            ),
        ]);
    }

    #[test]
    fn the_flap_budget_reaches_the_policy() {
        let text = policy(&[(
            "",
            "[behavior.scale_down]\nflap_budget = \"2/3h\"\nmax_stabilization = \"90m\"",
        )]);
        let (p, d) = check_policy(&text, Path::new("t.toml"));
        assert!(d.is_empty(), "{d:#?}");
        assert_eq!(
            p.unwrap().policy.behavior.flap_budget,
            Some(FlapBudget {
                reversals: 2,
                per: Duration::from_secs(3 * 3600),
                max_stabilization: Duration::from_secs(90 * 60),
            })
        );
        let off = policy(&[("", "[behavior.scale_down]\nflap_budget = \"off\"")]);
        let (p, d) = check_policy(&off, Path::new("t.toml"));
        assert!(d.is_empty(), "{d:#?}");
        assert_eq!(p.unwrap().policy.behavior.flap_budget, None);
        // The default: on, no reversal free per 4h, up to 4h.
        let (p, _) = check_policy(&policy(&[]), Path::new("t.toml"));
        assert_eq!(
            p.unwrap().policy.behavior.flap_budget,
            Some(FlapBudget::DEFAULT)
        );
    }
}
