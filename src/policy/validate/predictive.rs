//! `[predictive]`: the seasonal recommender's mode, memory (`lookback`), `lead` and
//! `quantile`.

use std::time::Duration;

use toml::Spanned;

use super::Ctx;
use crate::policy::raw::{self, RawPredictive};
use crate::policy::{Predictive, PredictiveMode};

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

    use super::super::check_policy;
    use super::super::fixture::{assert_errors_at_col, policy};
    use crate::policy::PredictiveMode;

    #[test]
    fn each_key_reports_an_error_at_its_place() {
        assert_errors_at_col(&[
            (
                "[predictive]\nmode = \"scaling\"",
                "unknown `predictive.mode` `scaling`",
                13,
                8,
            ),
            (
                "[predictive]\nlookback = \"36h\"",
                "is not 1 to 28 whole days",
                13,
                12,
            ),
            (
                "[predictive]\nlookback = \"29d\"",
                "is not 1 to 28 whole days",
                13,
                12,
            ),
            (
                "[predictive]\nquantile = 1.2",
                "`predictive.quantile` = 1.2 is outside [0, 1]",
                13,
                12,
            ),
            (
                "[predictive]\nlead = \"-5m\"",
                "`predictive.lead` = `-5m` is negative",
                13,
                8,
            ),
        ]);
    }

    #[test]
    fn valid_keys_reach_the_policy() {
        let text = policy(&[(
            "",
            "[predictive]\nmode = \"forecast-only\"\nlookback = \"14d\"\nlead = \"5m\"\nquantile = 0.9",
        )]);
        let (p, d) = check_policy(&text, Path::new("t.toml"));
        assert!(d.is_empty(), "{d:#?}");
        let p = p.unwrap().policy.predictive;
        assert_eq!(p.mode, PredictiveMode::ForecastOnly);
        assert_eq!(p.lookback, Duration::from_secs(14 * 86_400));
        assert_eq!(p.lead, Some(Duration::from_secs(300)));
        assert_eq!(p.quantile, 0.9);
        // Off by default.
        let (p, _) = check_policy(&policy(&[]), Path::new("t.toml"));
        assert_eq!(p.unwrap().policy.predictive.mode, PredictiveMode::Off);
    }
}
