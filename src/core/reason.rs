//! Reason codes: one per stage outcome. Stable strings: they are stored in the decision
//! log and printed in reports, so rename none.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::Dim;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ReasonCode {
    // 1. guard
    GuardAdjusting,
    GuardNotRunning,
    GuardNotScalarable,
    GuardNoLadder,
    // 2. data
    DataMissing,
    DataFallback,
    // 3/4. need and tolerance
    WithinTolerance,
    StepRule,
    // 5. ladder
    LadderTop,
    // 6. stabilization
    Stabilized,
    // 7. rate
    MaxSteps,
    // 8. bounds
    BoundMin,
    BoundMax,
    NoAllowedValue,
    WindowActive,
    // 9. cooldown
    CooldownUp,
    CooldownDown,
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
            DataMissing => "data.missing",
            DataFallback => "data.fallback",
            WithinTolerance => "tolerance.within",
            StepRule => "step.rule",
            LadderTop => "ladder.top",
            Stabilized => "stabilization.held",
            MaxSteps => "rate.max_steps",
            BoundMin => "bounds.min",
            BoundMax => "bounds.max",
            NoAllowedValue => "bounds.no_allowed_value",
            WindowActive => "window.active",
            CooldownUp => "cooldown.up",
            CooldownDown => "cooldown.down",
            ScaleUp => "scale.up",
            ScaleDown => "scale.down",
            NoChange => "hold.no_change",
        }
    }
    /// The decision stage (1–10) this code belongs to.
    pub fn stage(self) -> u8 {
        use ReasonCode::*;
        match self {
            GuardAdjusting | GuardNotRunning | GuardNotScalarable | GuardNoLadder => 1,
            DataMissing | DataFallback => 2,
            StepRule => 3,
            WithinTolerance => 4,
            LadderTop => 5,
            Stabilized => 6,
            MaxSteps => 7,
            BoundMin | BoundMax | NoAllowedValue | WindowActive => 8,
            CooldownUp | CooldownDown => 9,
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
    /// Fixed texts are borrowed: the common holds allocate nothing.
    pub detail: Cow<'static, str>,
}

impl Reason {
    pub fn new(code: ReasonCode, dim: Option<Dim>, detail: impl Into<Cow<'static, str>>) -> Reason {
        Reason {
            code,
            dim,
            detail: detail.into(),
        }
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
