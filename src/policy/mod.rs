//! Policy files: TOML in, validated [`Policy`] out.
//!
//! Parsing is two-stage: [`raw`] holds serde types with spans (`toml::Spanned`), and
//! [`validate`] turns them into the rich types below, collecting every problem as a
//! [`Diagnostic`] with file, line and column. The decision core only ever sees [`Policy`].

pub mod cmd;
pub mod diagnostic;
pub mod raw;
pub mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use diagnostic::{Diagnostic, Severity};

/// A validated policy. Every value here has been checked: bounds are ordered, utilizations
/// are in (0, 1], referenced signals exist, crons and time zones parse.
#[derive(Clone, Debug)]
pub struct Policy {
    pub name: String,
    /// The file it came from, for messages (None for policies built in code).
    pub source: Option<PathBuf>,
    pub selector: Selector,
    pub schedule: Schedule,
    pub mode: Mode,
    /// Named signals (e.g. `bandwidth`, `connections`), each a PromQL query.
    pub signals: BTreeMap<String, Signal>,
    /// Bandwidth in Mbps; None = this policy does not manage bandwidth.
    pub bandwidth: Option<Dimension>,
    /// Concurrency in units of 10,000 connections; None = not managed.
    pub concurrent: Option<Dimension>,
    pub behavior: Behavior,
    pub on_missing_data: MissingData,
    pub windows: Vec<Window>,
    /// Sent as `BillingType` with every modify call when set (0 bandwidth, 1 traffic).
    pub billing_type: Option<i64>,
}

/// Which proxies a policy manages: listed ids and/or every proxy whose tags all match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    pub proxies: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

impl Selector {
    /// True if the proxy is listed by id, or the selector has tags and the proxy carries
    /// all of them with equal values.
    pub fn matches(&self, id: &str, tags: &BTreeMap<String, String>) -> bool {
        if self.proxies.iter().any(|p| p == id) {
            return true;
        }
        !self.tags.is_empty() && self.tags.iter().all(|(k, v)| tags.get(k) == Some(v))
    }
}

#[derive(Clone, Debug)]
pub enum Schedule {
    /// Evaluate every `Duration` (aligned to multiples of it since the epoch).
    Interval(Duration),
    /// Evaluate at each fire time of a cron expression (6/7-field cron crate syntax; a
    /// 5-field expression is accepted and gets a `0` seconds field).
    Cron(CronSpec),
}

/// A parsed cron expression with the text it came from.
#[derive(Clone, Debug)]
pub struct CronSpec {
    pub expr: String,
    pub schedule: cron::Schedule,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    Live,
    DryRun,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Live => "live",
            Mode::DryRun => "dry-run",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Signal {
    pub name: String,
    pub query: String,
    /// The label of the query result that carries the proxy id (e.g. `channel_id`).
    pub proxy_label: String,
    /// Samples older than this count as no data (default 5m).
    pub max_age: Duration,
}

/// One managed capacity dimension (bandwidth or concurrent).
#[derive(Clone, Debug, PartialEq)]
pub struct Dimension {
    /// Name of the signal in [`Policy::signals`] that measures demand for it.
    pub signal: String,
    pub min: u32,
    pub max: u32,
    pub rule: Rule,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Rule {
    /// need = demand / target_utilization (HPA/KEDA style). 0 < target_utilization <= 1.
    TargetTracking { target_utilization: f64 },
    /// Utilization bands move the value by whole ladder steps (AWS step scaling).
    /// Utilization = demand / current capacity.
    Steps(Vec<StepRule>),
}

/// `utilization >= above` → move `change` ladder steps (positive), or
/// `utilization < below` → move `change` ladder steps (negative).
/// The matching rule with the largest |change| wins.
#[derive(Clone, Debug, PartialEq)]
pub struct StepRule {
    pub above: Option<f64>,
    pub below: Option<f64>,
    pub change: i32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Behavior {
    pub scale_up: DirectionBehavior,
    pub scale_down: DirectionBehavior,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DirectionBehavior {
    /// Relative band around the current value inside which nothing changes.
    pub tolerance: f64,
    pub stabilization: Duration,
    /// Ladder steps per change (at least 1).
    pub max_steps: u32,
    pub cooldown: Duration,
}

impl Behavior {
    /// Defaults: fast up, slow down (HPA-like).
    pub fn default_behavior() -> Behavior {
        Behavior {
            scale_up: DirectionBehavior {
                tolerance: 0.05,
                stabilization: Duration::ZERO,
                max_steps: 2,
                cooldown: Duration::from_secs(60),
            },
            scale_down: DirectionBehavior {
                tolerance: 0.10,
                stabilization: Duration::from_secs(600),
                max_steps: 1,
                cooldown: Duration::from_secs(600),
            },
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissingAction {
    Hold,
    Fallback,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MissingData {
    pub action: MissingAction,
    /// Consecutive evaluations without data before the fallback applies.
    pub after: u32,
    pub bandwidth: Option<u32>,
    pub concurrent: Option<u32>,
}

impl Default for MissingData {
    fn default() -> Self {
        MissingData {
            action: MissingAction::Hold,
            after: 3,
            bandwidth: None,
            concurrent: None,
        }
    }
}

/// A recurring time window that overrides bounds while active: it opens at each fire
/// time of `cron` (in `timezone`) and stays open for `duration`.
#[derive(Clone, Debug)]
pub struct Window {
    pub cron: CronSpec,
    pub duration: Duration,
    pub timezone: chrono_tz::Tz,
    pub bandwidth_min: Option<u32>,
    pub bandwidth_max: Option<u32>,
    pub concurrent_min: Option<u32>,
    pub concurrent_max: Option<u32>,
}
