//! Reason codes: one per stage outcome. Stable strings: they are stored in the decision
//! log and printed in reports, so rename none.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Dim;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ReasonCode {
    // 1. guard
    GuardAdjusting,
    GuardNotRunning,
    GuardNotScalarable,
    GuardNoLadder,
    /// An operator paused this direction (run time or the policy's `paused` key).
    GuardPaused,
    // 2. data
    DataMissing,
    DataFallback,
    /// A reading at or above `saturation` × capacity: demand is unknown, at least the cap.
    DataSaturated,
    /// The current values differ from what the engine last applied: an operator's change.
    ObservedManualChange,
    // 3/4. need and tolerance
    WithinTolerance,
    StepRule,
    AnticipatedFlapping,
    // 5. ladder
    LadderTop,
    // 6. stabilization
    Stabilized,
    /// Recent reversals lengthened the scale-down stabilization (the flap budget).
    FlapBudget,
    /// `change_worth`: a scale-down freeing enough capacity goes before the whole window.
    ChangeWorth,
    /// A scale-down that the same demand would undo soon (target tracking).
    ScaleDownAnticipatedFlapping,
    /// The seasonal forecast asks for more capacity `lead` ahead.
    PredictiveAhead,
    // 7. rate
    MaxSteps,
    // 8. bounds
    BoundMin,
    BoundMax,
    NoAllowedValue,
    WindowActive,
    /// A window opening soon: no scale-down below its minimum, or a pre-scale to it.
    WindowAhead,
    // 9. cooldown
    CooldownUp,
    CooldownDown,
    /// `hold_paid_capacity`: today's capacity is paid; going down waits for the day's end.
    HoldPaidCapacity,
    // 10. result
    ScaleUp,
    ScaleDown,
    NoChange,
}

impl ReasonCode {
    pub fn as_str(self) -> &'static str {
        use ReasonCode::*;
        match self {
            GuardAdjusting => "guard.adjusting",
            GuardNotRunning => "guard.not_running",
            GuardNotScalarable => "guard.not_scalarable",
            GuardNoLadder => "guard.no_ladder",
            GuardPaused => "guard.paused",
            DataMissing => "data.missing",
            DataFallback => "data.fallback",
            DataSaturated => "data.saturated",
            ObservedManualChange => "observed.manual_change",
            WithinTolerance => "tolerance.within",
            StepRule => "step.rule",
            AnticipatedFlapping => "step.anticipated_flapping",
            LadderTop => "ladder.top",
            Stabilized => "stabilization.held",
            FlapBudget => "scale_down.flap_budget",
            ChangeWorth => "scale_down.change_worth",
            ScaleDownAnticipatedFlapping => "scale_down.anticipated_flapping",
            PredictiveAhead => "predictive.ahead",
            MaxSteps => "rate.max_steps",
            BoundMin => "bounds.min",
            BoundMax => "bounds.max",
            NoAllowedValue => "bounds.no_allowed_value",
            WindowActive => "window.active",
            WindowAhead => "window.ahead",
            CooldownUp => "cooldown.up",
            CooldownDown => "cooldown.down",
            HoldPaidCapacity => "scale_down.paid_capacity",
            ScaleUp => "scale.up",
            ScaleDown => "scale.down",
            NoChange => "hold.no_change",
        }
    }
    /// The decision stage (1–10) this code belongs to.
    pub fn stage(self) -> u8 {
        use ReasonCode::*;
        match self {
            GuardAdjusting | GuardNotRunning | GuardNotScalarable | GuardNoLadder | GuardPaused => {
                1
            }
            DataMissing | DataFallback | DataSaturated | ObservedManualChange => 2,
            StepRule | AnticipatedFlapping => 3,
            WithinTolerance => 4,
            LadderTop => 5,
            Stabilized
            | FlapBudget
            | ChangeWorth
            | ScaleDownAnticipatedFlapping
            | PredictiveAhead => 6,
            MaxSteps => 7,
            BoundMin | BoundMax | NoAllowedValue | WindowActive | WindowAhead => 8,
            CooldownUp | CooldownDown | HoldPaidCapacity => 9,
            ScaleUp | ScaleDown | NoChange => 10,
        }
    }
}

/// A reason: a code, the dimension it is about (None = the whole proxy), and a plain
/// sentence with the numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub code: ReasonCode,
    pub dim: Option<Dim>,
    /// The sentence, kept as its numbers until someone reads it (`to_string()`): the
    /// replay decides millions of times and reads none of them.
    pub detail: Detail,
}

impl Reason {
    pub fn new(code: ReasonCode, dim: Option<Dim>, detail: impl Into<Detail>) -> Reason {
        Reason {
            code,
            dim,
            detail: detail.into(),
        }
    }
}

/// The sentence of a reason. The frequent ones hold their numbers and are written out by
/// `Display`; the rare ones are text. Serialized as the sentence.
#[derive(Clone, Debug, PartialEq)]
pub enum Detail {
    Text(Cow<'static, str>),
    /// Stage 4: `need` lies within `tolerance` (a fraction) above or below `current`.
    WithinTolerance {
        need: f64,
        tolerance: f64,
        current: u32,
        above: bool,
    },
    /// Stage 6: `recommended` held at `out` by the scale-up or scale-down window.
    Stabilized {
        recommended: u32,
        out: u32,
        window: Duration,
    },
    /// Stage 7: `target` is more than `steps` ladder steps from `current`.
    MaxSteps {
        target: u32,
        steps: u32,
        current: u32,
        limited: u32,
    },
    /// Stage 9: the last change was `since` ago, the cooldown is `cooldown`.
    Cooldown {
        since: Duration,
        cooldown: Duration,
        current: u32,
        target: u32,
    },
    /// Stage 8: `target` lies outside the min (`below`) or max `bound`: `out`.
    Bound {
        target: u32,
        below: bool,
        bound: u32,
        out: u32,
    },
    /// Stage 8: a time window sets the bounds.
    WindowBounds {
        min: u32,
        max: u32,
    },
    /// Stage 5b: the seasonal forecast of the need `lead` ahead (`quantile` of that hour's
    /// daily highs) asks for `to` instead of `recommended`; `scale` = pre-scales (else
    /// forecast-only, would).
    Predictive {
        lead: Duration,
        forecast: f64,
        quantile: f64,
        to: u32,
        recommended: u32,
        scale: bool,
    },
    /// Stage 10: `from` → `to` in the dimension's unit.
    Scale {
        from: u32,
        to: u32,
        dim: Dim,
    },
}

impl From<&'static str> for Detail {
    fn from(s: &'static str) -> Detail {
        Detail::Text(Cow::Borrowed(s))
    }
}

impl From<String> for Detail {
    fn from(s: String) -> Detail {
        Detail::Text(Cow::Owned(s))
    }
}

impl From<Cow<'static, str>> for Detail {
    fn from(s: Cow<'static, str>) -> Detail {
        Detail::Text(s)
    }
}

impl fmt::Display for Detail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Detail::Text(s) => f.write_str(s),
            Detail::WithinTolerance {
                need,
                tolerance,
                current,
                above,
            } => write!(
                f,
                "need {need:.2} is within {:.0}% {} {current}",
                tolerance * 100.0,
                if *above { "above" } else { "below" }
            ),
            Detail::Stabilized {
                recommended,
                out,
                window,
            } => write!(
                f,
                "recommendation {recommended} stabilized to {out} (scale-{} window {})",
                if out > recommended { "down" } else { "up" },
                crate::time::format_duration(*window)
            ),
            Detail::MaxSteps {
                target,
                steps,
                current,
                limited,
            } => write!(
                f,
                "{target} is more than {steps} ladder step(s) from {current}: {limited}"
            ),
            Detail::Cooldown {
                since,
                cooldown,
                current,
                target,
            } => write!(
                f,
                "last change {} ago, cooldown {}: holding {current} instead of {target}",
                crate::time::format_duration(Duration::from_secs(since.as_secs())),
                crate::time::format_duration(*cooldown)
            ),
            Detail::Bound {
                target,
                below,
                bound,
                out,
            } => write!(
                f,
                "{target} is outside {} {bound}: {out}",
                if *below { "min" } else { "max" }
            ),
            Detail::WindowBounds { min, max } => {
                write!(f, "a time window sets the bounds to [{min}, {max}]")
            }
            Detail::Predictive {
                lead,
                forecast,
                quantile,
                to,
                recommended,
                scale,
            } => write!(
                f,
                "the forecast need {} ahead is {forecast:.2} (the {:.0}th percentile of that \
                 hour's daily highs): {} {to} instead of {recommended}",
                crate::time::format_duration(*lead),
                quantile * 100.0,
                if *scale {
                    "pre-scaling to"
                } else {
                    "forecast-only, would pre-scale to"
                }
            ),
            Detail::Scale { from, to, dim } => write!(f, "{from} → {to} {}", dim.unit()),
        }
    }
}

impl Serialize for Detail {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Detail {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Detail, D::Error> {
        String::deserialize(d).map(Detail::from)
    }
}

/// `bandwidth:scale.up` or `guard.adjusting`.
impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.dim {
            Some(d) => write!(f, "{}:{}", d.as_str(), self.code.as_str()),
            None => f.write_str(self.code.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_read_as_the_sentences_of_the_log() {
        let m = |s| Duration::from_secs(s);
        let cases: &[(Detail, &str)] = &[
            ("fixed".into(), "fixed"),
            (
                Detail::WithinTolerance {
                    need: 10.456,
                    tolerance: 0.05,
                    current: 10,
                    above: true,
                },
                "need 10.46 is within 5% above 10",
            ),
            (
                Detail::WithinTolerance {
                    need: 9.5,
                    tolerance: 0.1,
                    current: 10,
                    above: false,
                },
                "need 9.50 is within 10% below 10",
            ),
            (
                Detail::Predictive {
                    lead: m(120),
                    forecast: 123.456,
                    quantile: 0.9,
                    to: 200,
                    recommended: 100,
                    scale: true,
                },
                "the forecast need 2m ahead is 123.46 (the 90th percentile of that hour's daily \
                 highs): pre-scaling to 200 instead of 100",
            ),
            (
                Detail::Predictive {
                    lead: m(120),
                    forecast: 60.0,
                    quantile: 0.95,
                    to: 100,
                    recommended: 50,
                    scale: false,
                },
                "the forecast need 2m ahead is 60.00 (the 95th percentile of that hour's daily \
                 highs): forecast-only, would pre-scale to 100 instead of 50",
            ),
            (
                Detail::Stabilized {
                    recommended: 20,
                    out: 50,
                    window: m(600),
                },
                "recommendation 20 stabilized to 50 (scale-down window 10m)",
            ),
            (
                Detail::Stabilized {
                    recommended: 100,
                    out: 50,
                    window: m(90),
                },
                "recommendation 100 stabilized to 50 (scale-up window 1m30s)",
            ),
            (
                Detail::MaxSteps {
                    target: 100,
                    steps: 1,
                    current: 20,
                    limited: 50,
                },
                "100 is more than 1 ladder step(s) from 20: 50",
            ),
            (
                Detail::Cooldown {
                    since: Duration::from_millis(61_500),
                    cooldown: m(600),
                    current: 50,
                    target: 20,
                },
                "last change 1m1s ago, cooldown 10m: holding 50 instead of 20",
            ),
            (
                Detail::Bound {
                    target: 10,
                    below: true,
                    bound: 20,
                    out: 20,
                },
                "10 is outside min 20: 20",
            ),
            (
                Detail::Bound {
                    target: 500,
                    below: false,
                    bound: 200,
                    out: 200,
                },
                "500 is outside max 200: 200",
            ),
            (
                Detail::WindowBounds { min: 100, max: 200 },
                "a time window sets the bounds to [100, 200]",
            ),
            (
                Detail::Scale {
                    from: 2,
                    to: 5,
                    dim: Dim::Concurrent,
                },
                "2 → 5 x10k conns",
            ),
        ];
        for (detail, text) in cases {
            assert_eq!(detail.to_string(), *text);
            // Stored as the sentence; read back as text that reads the same.
            let json = serde_json::to_string(detail).unwrap();
            assert_eq!(json, serde_json::to_string(text).unwrap());
            let back: Detail = serde_json::from_str(&json).unwrap();
            assert_eq!(back.to_string(), *text);
        }
    }
}
