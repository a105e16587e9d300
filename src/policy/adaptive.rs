//! Stage 2 for the keys of the adaptive stages (issue 13), one table each: a dimension's
//! `saturation`, `behavior.scale_down.flap_budget` / `max_stabilization`, and
//! `[predictive]`. Kept apart from `validate` so each table's checks read on their own.

use std::time::Duration;

use toml::Spanned;

use super::raw::{self, RawDirection, RawPredictive};
use super::{FlapBudget, Predictive, PredictiveMode};
use crate::diagnostic::collect::Ctx;

/// `{dim}.saturation`: in (0, 1].
pub(super) fn saturation(ctx: &mut Ctx<'_>, dim: &str, v: Option<&Spanned<f64>>) -> f64 {
    let Some(v) = v else {
        return super::DEFAULT_SATURATION;
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
        super::DEFAULT_SATURATION
    }
}

const FLAP_HELP: &str = "write `\"N/DURATION\"`: N reversals within DURATION are free, each \
                         further one doubles the scale-down stabilization (default `\"0/4h\"`), \
                         or `\"off\"`";

/// `behavior.scale_down.flap_budget` and `max_stabilization`; on scale_up both are errors.
pub(super) fn flap_budget(
    ctx: &mut Ctx<'_>,
    which: &str,
    raw: &RawDirection,
    out: &mut Option<FlapBudget>,
) {
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

/// The longest `[predictive] lookback` (hourly highs are kept per day of it).
pub const MAX_LOOKBACK_DAYS: u64 = 28;

/// `[predictive]`.
pub(super) fn predictive(ctx: &mut Ctx<'_>, raw: Option<&Spanned<RawPredictive>>) -> Predictive {
    let mut p = Predictive::default();
    let Some(raw) = raw else {
        return p;
    };
    let r = raw.get_ref();
    if let Some(m) = &r.mode {
        p.mode = match m.get_ref().as_str() {
            "off" => PredictiveMode::Off,
            "forecast-only" => PredictiveMode::ForecastOnly,
            "scale" => PredictiveMode::Scale,
            other => {
                let hint = raw::suggest(other, ["off", "forecast-only", "scale"])
                    .map_or(String::new(), |s| format!("did you mean `{s}`? "));
                ctx.err(
                    m.span().start,
                    format!("unknown `predictive.mode` `{other}`"),
                    format!(
                        "{hint}use `off`, `forecast-only` (learn and log what it would do) or \
                         `scale` (raise capacity ahead of the forecast)"
                    ),
                );
                PredictiveMode::Off
            }
        };
    }
    if let Some(l) = &r.lookback
        && let Some(d) = ctx.duration(l, "predictive.lookback", false)
    {
        let days = d.as_secs() / 86_400;
        if d.as_secs() % 86_400 != 0 || days == 0 || days > MAX_LOOKBACK_DAYS {
            ctx.err(
                l.span().start,
                format!(
                    "`predictive.lookback` = `{}` is not 1 to {MAX_LOOKBACK_DAYS} whole days",
                    l.get_ref()
                ),
                "the forecast keeps each hour's high per day: write e.g. `7d` or `14d`",
            );
        } else {
            p.lookback = Duration::from_secs(days * 86_400);
        }
    }
    if let Some(l) = &r.lead
        && let Some(d) = ctx.duration(l, "predictive.lead", true)
    {
        p.lead = Some(d);
    }
    if let Some(q) = &r.quantile {
        let x = *q.get_ref();
        if (0.0..=1.0).contains(&x) {
            p.quantile = x;
        } else {
            ctx.err(
                q.span().start,
                format!("`predictive.quantile` = {x} is outside [0, 1]"),
                "0.5 forecasts the median of an hour's daily highs, 1.0 their maximum",
            );
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::super::{FlapBudget, PredictiveMode, check_policy};

    const BASE: &str = r#"name = "t"
proxies = ["link-aaaaaaaa"]
interval = "30s"
[signals.bandwidth]
query = 'max by (channel_id) (qce_qaap_outbandwidth_max)'
[bandwidth]
signal = "bandwidth"
target_utilization = 0.7
min = 10
max = 500
"#;

    /// (text appended to BASE, the error fragment, its line and column).
    #[test]
    fn each_key_reports_an_error_at_its_place() {
        let cases: &[(&str, &str, usize, usize)] = &[
            (
                "saturation = 1.5",
                "`bandwidth.saturation` = 1.5 is outside (0, 1]",
                11,
                14,
            ),
            ("saturation = 0.0", "is outside (0, 1]", 11, 14),
            (
                "[behavior.scale_down]\nflap_budget = \"2 per hour\"",
                "`behavior.scale_down.flap_budget` = `2 per hour` is not a budget",
                12,
                15,
            ),
            (
                "[behavior.scale_down]\nflap_budget = \"1/0s\"",
                "is not a budget",
                12,
                15,
            ),
            (
                "[behavior.scale_up]\nflap_budget = \"1/2h\"",
                "`behavior.scale_up.flap_budget` is a scale-down setting",
                12,
                15,
            ),
            (
                "[behavior.scale_up]\nmax_stabilization = \"1h\"",
                "`behavior.scale_up.max_stabilization` is a scale-down setting",
                12,
                21,
            ),
            (
                "[predictive]\nmode = \"scaling\"",
                "unknown `predictive.mode` `scaling`",
                12,
                8,
            ),
            (
                "[predictive]\nlookback = \"36h\"",
                "is not 1 to 28 whole days",
                12,
                12,
            ),
            (
                "[predictive]\nlookback = \"29d\"",
                "is not 1 to 28 whole days",
                12,
                12,
            ),
            (
                "[predictive]\nquantile = 1.2",
                "`predictive.quantile` = 1.2 is outside [0, 1]",
                12,
                12,
            ),
        ];
        for &(extra, want, line, col) in cases {
            let text = format!("{BASE}{extra}\n");
            let (_, d) = check_policy(&text, Path::new("t.toml"));
            let hit = d
                .iter()
                .find(|d| d.is_error() && d.message.contains(want))
                .unwrap_or_else(|| panic!("{extra:?}: no error containing {want:?} in {d:#?}"));
            assert_eq!((hit.line, hit.col), (line, col), "{extra:?}: {hit}");
            assert!(hit.help.is_some(), "{extra:?}: every error says what to do");
        }
    }

    #[test]
    fn valid_keys_reach_the_policy() {
        let paid = format!("hold_paid_capacity = true\n{BASE}");
        let (p, d) = check_policy(&paid, Path::new("t.toml"));
        assert!(d.is_empty(), "{d:#?}");
        assert!(p.unwrap().policy.hold_paid_capacity);
        let (_, d) = check_policy(
            &format!("hold_paid_capacity = \"yes\"\n{BASE}"),
            Path::new("t.toml"),
        );
        assert!(d.iter().any(|d| d.is_error() && d.line == 1), "{d:#?}");
        let text = format!(
            "{BASE}saturation = 0.9\n[behavior.scale_down]\nflap_budget = \"2/3h\"\n\
             max_stabilization = \"90m\"\n[predictive]\nmode = \"forecast-only\"\n\
             lookback = \"14d\"\nlead = \"5m\"\nquantile = 0.9\n"
        );
        let (p, d) = check_policy(&text, Path::new("t.toml"));
        assert!(d.iter().all(|d| !d.is_error()), "{d:#?}");
        let p = p.unwrap().policy;
        assert_eq!(p.bandwidth.unwrap().saturation, 0.9);
        assert_eq!(
            p.behavior.flap_budget,
            Some(FlapBudget {
                reversals: 2,
                per: Duration::from_secs(3 * 3600),
                max_stabilization: Duration::from_secs(90 * 60),
            })
        );
        assert_eq!(p.predictive.mode, PredictiveMode::ForecastOnly);
        assert_eq!(p.predictive.lookback, Duration::from_secs(14 * 86_400));
        assert_eq!(p.predictive.lead, Some(Duration::from_secs(300)));
        assert_eq!(p.predictive.quantile, 0.9);

        let off = format!("{BASE}[behavior.scale_down]\nflap_budget = \"off\"\n");
        let (p, d) = check_policy(&off, Path::new("t.toml"));
        assert!(d.is_empty(), "{d:#?}");
        assert_eq!(p.unwrap().policy.behavior.flap_budget, None);
        // Defaults: saturation 0.95, the budget on (no reversal free per 4h, up to 4h), predictive off.
        let (p, _) = check_policy(BASE, Path::new("t.toml"));
        let p = p.unwrap().policy;
        assert_eq!(p.bandwidth.unwrap().saturation, 0.95);
        assert_eq!(p.behavior.flap_budget, Some(FlapBudget::DEFAULT));
        assert_eq!(p.predictive.mode, PredictiveMode::Off);
    }
}
