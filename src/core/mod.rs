//! The decision core: one pure function, [`decide`], for one proxy at one time.
//!
//! No IO, no clock, no async, never fails. The daemon and the simulation both call it.
//! Inputs: the policy, the proxy's current state, its ladder, its observed signals, its
//! controller state and `now`. Output: a [`Decision`] (targets, reasons, a stage-by-stage
//! trace) and the next [`ControllerState`].

#[cfg(test)]
mod adaptive_tests;
pub(crate) mod decide;
pub mod fixtures;
pub mod operator;
pub mod pause;
pub mod reason;
pub mod season;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use decide::{decide, decide_into};
pub use operator::ManualHold;
pub use pause::{Pause, Paused, Scope, apply_pause, apply_pause_stamps, paused_at};
pub use reason::{Detail, Reason, ReasonCode};
pub use season::Season;

use crate::time::Timestamp;

/// The proxy lifecycle status as `DescribeProxies` reports it. Unknown values are kept.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProxyStatus {
    Running,
    Adjusting,
    Other(String),
}

impl ProxyStatus {
    pub fn parse(s: &str) -> ProxyStatus {
        match s {
            "RUNNING" => ProxyStatus::Running,
            "ADJUSTING" => ProxyStatus::Adjusting,
            other => ProxyStatus::Other(other.to_string()),
        }
    }
    pub fn as_str(&self) -> &str {
        match self {
            ProxyStatus::Running => "RUNNING",
            ProxyStatus::Adjusting => "ADJUSTING",
            ProxyStatus::Other(s) => s,
        }
    }
}

/// A proxy as the engine sees it (from `DescribeProxies` or a fleet file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProxyState {
    pub id: String,
    pub name: Option<String>,
    pub access_region: String,
    pub real_server_region: String,
    /// Current bandwidth, Mbps.
    pub bandwidth: u32,
    /// Current concurrency, units of 10,000 connections.
    pub concurrent: u32,
    pub status: ProxyStatus,
    pub scalarable: i64,
    pub billing_type: Option<i64>,
    pub tags: BTreeMap<String, String>,
}

/// The allowed values for one proxy, ascending and without duplicates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ladder {
    pub bandwidth: Vec<u32>,
    pub concurrent: Vec<u32>,
}

impl Ladder {
    /// Builds a ladder, sorting and de-duplicating the lists.
    pub fn new(mut bandwidth: Vec<u32>, mut concurrent: Vec<u32>) -> Ladder {
        bandwidth.sort_unstable();
        bandwidth.dedup();
        concurrent.sort_unstable();
        concurrent.dedup();
        Ladder {
            bandwidth,
            concurrent,
        }
    }
    pub fn values(&self, dim: Dim) -> &[u32] {
        match dim {
            Dim::Bandwidth => &self.bandwidth,
            Dim::Concurrent => &self.concurrent,
        }
    }
}

/// A capacity dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dim {
    Bandwidth,
    Concurrent,
}

impl Dim {
    pub const ALL: [Dim; 2] = [Dim::Bandwidth, Dim::Concurrent];
    pub fn as_str(self) -> &'static str {
        match self {
            Dim::Bandwidth => "bandwidth",
            Dim::Concurrent => "concurrent",
        }
    }
    /// The unit of the capacity value.
    pub fn unit(self) -> &'static str {
        match self {
            Dim::Bandwidth => "Mbps",
            Dim::Concurrent => "x10k conns",
        }
    }
}

/// Why a signal has no usable value for a proxy. None of these ever reaches the decision
/// as a number.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NoData {
    /// The query returned no series for this proxy.
    NoSeries,
    /// Several series carry this proxy's id: ambiguous, so unused.
    MultipleSeries {
        count: usize,
    },
    NotANumber,
    Infinite,
    Negative {
        value: f64,
    },
    /// The newest sample is older than the signal's max_age.
    Stale {
        age_ms: i64,
    },
    /// The query itself failed (timeout, HTTP error, PromQL error...).
    QueryError {
        kind: String,
        message: String,
    },
}

impl NoData {
    pub fn code(&self) -> &'static str {
        match self {
            NoData::NoSeries => "no_series",
            NoData::MultipleSeries { .. } => "multiple_series",
            NoData::NotANumber => "nan",
            NoData::Infinite => "inf",
            NoData::Negative { .. } => "negative",
            NoData::Stale { .. } => "stale",
            NoData::QueryError { .. } => "query_error",
        }
    }
}

/// One signal's observation for one proxy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Reading {
    /// A usable sample: `value` observed at `at`.
    Value {
        value: f64,
        at: Timestamp,
    },
    Missing {
        reason: NoData,
    },
}

impl Reading {
    /// Classifies a raw sample: NaN, ±Inf, negative and stale values become [`NoData`].
    pub fn classify(value: f64, at: Timestamp, now: Timestamp, max_age_ms: i64) -> Reading {
        let reason = if value.is_nan() {
            NoData::NotANumber
        } else if value.is_infinite() {
            NoData::Infinite
        } else if value < 0.0 {
            NoData::Negative { value }
        } else if now.millis() - at.millis() > max_age_ms {
            NoData::Stale {
                age_ms: now.millis() - at.millis(),
            }
        } else {
            return Reading::Value { value, at };
        };
        Reading::Missing { reason }
    }
    pub fn value(&self) -> Option<f64> {
        match self {
            Reading::Value { value, .. } => Some(*value),
            Reading::Missing { .. } => None,
        }
    }
}

/// The observed signals of one proxy at one evaluation, by signal name. A signal that the
/// policy names but that is absent here counts as [`NoData::NoSeries`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub signals: BTreeMap<String, Reading>,
}

/// Per-dimension controller memory.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DimState {
    /// Recommendations (time, ladder value) kept for the stabilization windows, oldest first.
    pub recommendations: Vec<(Timestamp, u32)>,
    /// With `hold_utilization`: (time, the ladder value serving that reading at the hold
    /// utilization), kept for the scale-down window, oldest first. The scale-down window
    /// holds these instead of the recommendations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<(Timestamp, u32)>,
    /// When this dimension last changed upward / downward (for cooldowns).
    pub last_up: Option<Timestamp>,
    pub last_down: Option<Timestamp>,
    /// Consecutive evaluations without usable data for this dimension's signal.
    pub missing_streak: u32,
    /// The first evaluation with data. Until a whole scale-down stabilization window has
    /// been observed, nothing scales down (a fresh start has no history to stabilize on).
    #[serde(default)]
    pub observed_since: Option<Timestamp>,
    /// Reversals (a change against the previous one within 30 minutes), oldest first,
    /// kept while the flap budget counts them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reversals: Vec<Timestamp>,
    /// With the flap budget: (when, the recommendations' average decayed over
    /// `LEVEL_DECAY`), this dimension's typical need, the scale of its releases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<(Timestamp, f64)>,
    /// The seasonal recommender's memory (empty unless `[predictive]` is on).
    #[serde(default, skip_serializing_if = "Season::is_empty")]
    pub season: Season,
}

/// Everything the controller remembers about one proxy between evaluations. Plain data:
/// the daemon persists it in the decision log's state tree; the simulation carries it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ControllerState {
    pub bandwidth: DimState,
    pub concurrent: DimState,
    /// What the engine last applied or saw, and an operator's manual hold (issue 12).
    #[serde(default)]
    pub operator: OperatorState,
}

/// The proxy's values as the engine last applied, confirmed or saw them, and the hold an
/// operator's change started. Plain data, part of the controller state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OperatorState {
    /// (bandwidth, concurrent) as last applied by the engine or seen by it. Values that
    /// differ from these, with no change of ours in flight, are an operator's change.
    #[serde(default)]
    pub last_known: Option<(u32, u32)>,
    /// Until when an operator's change holds the proxy ([`operator::FOREVER`]: until
    /// resumed).
    #[serde(default)]
    pub manual_hold_until: Option<Timestamp>,
    /// The change that started the hold.
    #[serde(default)]
    pub manual_change: Option<ManualChange>,
}

/// An operator's change, as the engine observed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManualChange {
    /// The evaluation that saw it.
    pub at: Timestamp,
    /// (bandwidth, concurrent) before and after.
    pub from: (u32, u32),
    pub to: (u32, u32),
}

impl ControllerState {
    pub fn dim(&self, d: Dim) -> &DimState {
        match d {
            Dim::Bandwidth => &self.bandwidth,
            Dim::Concurrent => &self.concurrent,
        }
    }
    pub fn dim_mut(&mut self, d: Dim) -> &mut DimState {
        match d {
            Dim::Bandwidth => &mut self.bandwidth,
            Dim::Concurrent => &mut self.concurrent,
        }
    }
}

/// What the engine should do with a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Send one ModifyProxyConfiguration with the targets.
    Change,
    /// Keep the current values (the reasons say why).
    Hold,
    /// The proxy is ADJUSTING: come back later.
    Wait,
    /// The proxy cannot be scaled (not RUNNING/ADJUSTING, Scalarable 0, no ladder).
    Skip,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Change => "change",
            Verdict::Hold => "hold",
            Verdict::Wait => "wait",
            Verdict::Skip => "skip",
        }
    }
}

/// The direction of a change. Scale-ups are urgent (they go first in the API budget).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Up,
    Down,
}

/// What each stage made of one dimension: the numbers behind `log show`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DimTrace {
    pub managed: bool,
    pub current: u32,
    /// The demand value used (Mbps, or a count of connections), if any.
    pub demand: Option<f64>,
    /// Stage 3: demand / target utilization in capacity units (before rounding).
    pub raw_need: Option<f64>,
    /// Stage 5: the ladder value covering the need (after tolerance).
    pub recommended: u32,
    /// Stage 6: after stabilization.
    pub stabilized: u32,
    /// Stage 7: after max_steps.
    pub rate_limited: u32,
    /// Stage 8: the effective bounds and the value after them.
    pub min: u32,
    pub max: u32,
    pub bounded: u32,
    /// Stage 9/10: the final target.
    pub target: u32,
    /// The seasonal forecast of the need (capacity units) for a time ahead, when
    /// `[predictive]` is on and has learned enough: (for when, the need).
    pub forecast: Option<(Timestamp, f64)>,
}

/// The outcome of one evaluation of one proxy. It names neither the proxy nor the policy:
/// the caller has both (and the replay decides millions of times without copying them).
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub time: Timestamp,
    pub verdict: Verdict,
    pub bandwidth_from: u32,
    pub bandwidth_to: u32,
    pub concurrent_from: u32,
    pub concurrent_to: u32,
    /// Up if either dimension goes up (urgent), Down if only downward moves.
    pub direction: Option<Direction>,
    /// Every stage that changed or blocked the outcome, in stage order.
    pub reasons: Vec<Reason>,
    pub bandwidth: DimTrace,
    pub concurrent: DimTrace,
    /// The controller state to carry to the next evaluation, assuming a `Change` is applied.
    pub next_state: ControllerState,
}

impl Decision {
    /// Reason codes as strings (`scale.up`, `data.stale`...), in order.
    pub fn reason_codes(&self) -> Vec<String> {
        self.reasons.iter().map(|r| r.to_string()).collect()
    }
}
