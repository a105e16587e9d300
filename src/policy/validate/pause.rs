//! `paused = true` and `[pause] directions`: the directions the policy file pauses.

use super::Ctx;
use crate::core::Paused;
use crate::policy::raw::RawPolicy;

pub(super) fn paused(ctx: &mut Ctx<'_>, raw: &RawPolicy) -> Paused {
    let mut paused = Paused::NONE;
    if raw.paused.as_ref().is_some_and(|p| *p.get_ref()) {
        paused = Paused::BOTH;
    }
    if let Some(dirs) = raw
        .pause
        .as_ref()
        .and_then(|p| p.get_ref().directions.as_ref())
    {
        for d in dirs {
            match d.get_ref().as_str() {
                "scale_up" => paused.up = true,
                "scale_down" => paused.down = true,
                other => ctx.err(
                    d.span().start,
                    format!("`{other}` is not a direction to pause"),
                    "use \"scale_up\" or \"scale_down\" (or `paused = true` for both)",
                ),
            }
        }
    }
    paused
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::check_policy;
    use super::super::fixture::{Edits, assert_errors_at, policy};
    use crate::core::Paused;

    #[test]
    fn each_rule_reports_an_error_at_its_place() {
        let cases: &[(Edits, &str, usize)] = &[
            (
                &[("^", "pause = { directions = [\"sideways\"] }")],
                "`sideways` is not a direction to pause",
                2,
            ),
            (&[("^", "paused = \"yes\"")], "`paused`", 2),
        ];
        assert_errors_at(cases);
    }

    #[test]
    fn the_directions_add_up() {
        let cases: &[(&str, Paused)] = &[
            ("paused = false", Paused::NONE),
            ("paused = true", Paused::BOTH),
            (
                "pause = { directions = [\"scale_down\"] }",
                Paused {
                    up: false,
                    down: true,
                },
            ),
            (
                "pause = { directions = [\"scale_up\", \"scale_down\"] }",
                Paused::BOTH,
            ),
        ];
        for (line, want) in cases {
            let (p, d) = check_policy(&policy(&[("^", line)]), Path::new("t.toml"));
            assert!(d.is_empty(), "{line}: {d:#?}");
            assert_eq!(p.unwrap().policy.paused, *want, "{line}");
        }
    }
}
