//! The dry-run simulation: replay policies over a metric history with a virtual clock.
//!
//! [`replay`] drives the same decision as the daemon ([`crate::core::decide_into`], the
//! reused-buffer form of [`crate::core::decide`]), for every proxy a
//! policy selects, at each evaluation time of the policy (its interval, or its cron fire
//! times), carrying the controller state. It models the world the daemon lives in:
//!
//! - **Censoring**: the demand a policy observes is capped by the capacity in effect
//!   (bandwidth at the configured Mbps, connections at concurrent × 10,000); a step whose
//!   true demand exceeds the capacity counts as a censored sample.
//! - **Adjusting**: a change takes effect `adjusting` after its API call; until then the
//!   proxy is `ADJUSTING` and `decide` returns Wait.
//! - **API budget**: at most 20 `ModifyProxyConfiguration` calls in any one second across
//!   the fleet; extra changes queue to the next seconds, scale-ups first.
//! - **Gaps**: missing samples become [`crate::core::Reading::Missing`].
//!
//! Source → replay → report: a [`source::SampleSource`] delivers samples in time order in
//! bounded chunks (the synthetic generator, a CSV sorted by time, or a trace in memory);
//! [`replay`] (module `replay`) runs the evaluations; per proxy and step it records the
//! true demand and the capacity in effect, either in columns ([`Record::Columns`], what
//! [`replay()`] returns) or tallied into the figures and chart columns as it goes
//! ([`Record::Tally`], what `simulate` uses: memory bounded by the fleet, not the days);
//! [`report`] turns either into the same figures.

pub mod billing;
pub mod cmd;
pub mod csv;
pub mod html;
pub mod openmetrics;
pub mod reference;
pub mod render;
pub mod replay;
pub mod report;
pub mod source;
pub mod synthetic;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::core::{Dim, Direction, Ladder, ProxyState, ProxyStatus, ReasonCode};
use crate::fleet::Fleet;
use crate::policy::{Policy, Rule, Schedule};
use crate::time::Timestamp;
use crate::trace::Trace;

pub use replay::{ReadAhead, Record, chart_range, replay, replay_reference, replay_stream};

/// At most this many ModifyProxyConfiguration calls in any one second (GAAP's limit).
pub const API_CALLS_PER_SECOND: u32 = 20;

/// Connections per concurrent unit.
pub const CONNECTIONS_PER_UNIT: f64 = 10_000.0;

/// How to replay.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// First evaluation time (inclusive).
    pub start: Timestamp,
    /// Last evaluation time (inclusive).
    pub end: Timestamp,
    /// How long a change keeps the proxy ADJUSTING before the new capacity is in effect.
    pub adjusting: Duration,
    /// API calls allowed per second across the fleet (never more than 20).
    pub api_calls_per_second: u32,
    /// Threads for the replay; 0 = one per core when the fleet is large enough to gain.
    /// The result never depends on it.
    pub threads: usize,
    /// A pause schedule to replay (`--pause FILE`): each pause holds its direction from
    /// `since` to `until`, as the daemon's run-time pauses do.
    pub pauses: Vec<crate::core::Pause>,
}

impl SimOptions {
    pub fn new(start: Timestamp, end: Timestamp) -> SimOptions {
        SimOptions {
            start,
            end,
            adjusting: Duration::from_secs(60),
            api_calls_per_second: API_CALLS_PER_SECOND,
            threads: 0,
            pauses: Vec::new(),
        }
    }
}

/// A named set of policies (e.g. one `--policies DIR`): each set is replayed on its own
/// over the same trace, so sets can be compared side by side.
#[derive(Clone, Debug)]
pub struct PolicySet {
    pub label: String,
    pub policies: Vec<Policy>,
}

impl PolicySet {
    /// The index of the policy that manages `proxy`: the first that selects it.
    pub fn owner(&self, proxy: &ProxyState) -> Option<usize> {
        self.policies
            .iter()
            .position(|p| p.selector.matches(&proxy.id, &proxy.tags))
    }

    /// The ids of the fleet's proxies that policy `pi` manages.
    pub fn managed_by<'f>(&self, pi: usize, fleet: &'f Fleet) -> impl Iterator<Item = &'f str> {
        fleet
            .proxies
            .iter()
            .filter(move |px| self.owner(px) == Some(pi))
            .map(|px| px.id.as_str())
    }
}

/// What a dimension is managed by, for the baselines and the figures.
#[derive(Clone, Debug, PartialEq)]
pub struct DimSetup {
    pub managed: bool,
    /// Target utilization for the baselines' need (step rules: 1.0).
    pub target_utilization: f64,
    /// Allowed values within the policy bounds (ascending). Unmanaged or no ladder: the
    /// initial value alone.
    pub allowed: Vec<u32>,
    /// The signal whose values are this dimension's demand.
    pub signal: Option<String>,
}

/// One applied change (a ModifyProxyConfiguration call).
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// When the decision was taken.
    pub time: Timestamp,
    /// When the API call went out (later than `time` when the second's budget was used).
    pub call_at: Timestamp,
    /// When the new capacity took effect (`call_at` + adjusting).
    pub effective_at: Timestamp,
    pub direction: Direction,
    pub bandwidth_from: u32,
    pub bandwidth_to: u32,
    pub concurrent_from: u32,
    pub concurrent_to: u32,
    pub reasons: Vec<String>,
}

/// The replay of one proxy: per evaluation step, true demand and capacity in effect.
#[derive(Clone, Debug, PartialEq)]
pub struct ProxyRun {
    pub proxy_id: String,
    pub policy: String,
    pub bandwidth: DimSetup,
    pub concurrent: DimSetup,
    /// Evaluation times (Unix ms), ascending.
    pub times: Vec<i64>,
    /// Length of each step (ms): until the next evaluation.
    pub step_ms: Vec<u32>,
    /// True demand at each step (Mbps; a count of connections); NaN = no data.
    pub demand_bw: Vec<f64>,
    pub demand_conn: Vec<f64>,
    /// Capacity in effect at each step (Mbps; units of 10,000 connections).
    pub cap_bw: Vec<u32>,
    pub cap_conc: Vec<u32>,
    /// Steps whose true demand exceeded the capacity in effect (so the policy saw the cap).
    pub censored_bw: u64,
    pub censored_conn: u64,
    /// Reason codes over every decision (holds and waits included), by count.
    pub reasons: Vec<(ReasonCode, u64)>,
    pub changes: Vec<Change>,
    /// Changes whose API call was pushed to a later second by the budget.
    pub api_deferred: u64,
    /// Why the proxy cannot be resized (Scalarable not 1, not RUNNING), if so: the report
    /// shows it apart and leaves it out of the policy-vs-baseline fleet totals.
    pub unscalable: Option<String>,
    /// The seasonal forecasts made, per dimension (bandwidth, concurrent): the hour they
    /// were for (Unix ms of its start) → (sum of the forecast needs, how many).
    pub forecasts: [BTreeMap<i64, (f64, u32)>; 2],
    /// A streamed replay keeps no columns (`times` ... `cap_conc` and `forecasts` stay
    /// empty): its figures and chart columns are tallied step by step instead.
    pub tally: Option<Box<report::tally::Tally>>,
}

/// Why `proxy` cannot be resized at all (None: it can). ADJUSTING is a passing state.
pub fn unscalable_reason(proxy: &ProxyState) -> Option<String> {
    if let ProxyStatus::Other(s) = &proxy.status {
        return Some(format!("status {s}, not RUNNING"));
    }
    (proxy.scalarable != 1).then(|| format!("Scalarable {}", proxy.scalarable))
}

impl ProxyRun {
    pub fn dim(&self, d: Dim) -> &DimSetup {
        match d {
            Dim::Bandwidth => &self.bandwidth,
            Dim::Concurrent => &self.concurrent,
        }
    }
    /// Demand of a dimension in its capacity unit (Mbps, or units of 10,000 connections).
    pub fn demand_units(&self, d: Dim, i: usize) -> f64 {
        match d {
            Dim::Bandwidth => self.demand_bw[i],
            Dim::Concurrent => self.demand_conn[i] / CONNECTIONS_PER_UNIT,
        }
    }
    pub fn capacity(&self, d: Dim, i: usize) -> u32 {
        match d {
            Dim::Bandwidth => self.cap_bw[i],
            Dim::Concurrent => self.cap_conc[i],
        }
    }
    pub fn steps(&self) -> usize {
        match &self.tally {
            Some(t) => t.steps() as usize,
            None => self.times.len(),
        }
    }
    /// The length of the last step (ms), if any.
    pub fn last_step(&self) -> Option<u32> {
        match &self.tally {
            Some(t) => t.span().map(|s| s.2),
            None => self.step_ms.last().copied(),
        }
    }
    /// The capacity in effect at the first step (bandwidth, concurrent), if any.
    pub fn first_capacity(&self) -> Option<(u32, u32)> {
        match &self.tally {
            Some(t) => t.first_capacity(),
            None => (!self.times.is_empty()).then(|| (self.cap_bw[0], self.cap_conc[0])),
        }
    }
}

/// API usage over a whole replay.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApiStats {
    pub calls: u64,
    /// The most calls in any one second (never above the limit).
    pub peak_per_second: u32,
    /// Calls pushed to a later second, and the longest such wait.
    pub deferred: u64,
    pub max_wait_ms: i64,
}

/// The replay of one policy set.
#[derive(Clone, Debug, PartialEq)]
pub struct SimRun {
    pub label: String,
    pub start: Timestamp,
    pub end: Timestamp,
    pub adjusting: Duration,
    pub proxies: Vec<ProxyRun>,
    pub api: ApiStats,
    /// Fleet proxies no policy of the set selects.
    pub unmanaged_proxies: Vec<String>,
    /// Proxies selected by more than one policy: (proxy, the policy used, the others).
    pub overlaps: Vec<(String, String, Vec<String>)>,
}

/// Errors that stop a replay before it starts.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SimError {
    #[error("the range is empty: start {start} is after end {end}")]
    EmptyRange { start: Timestamp, end: Timestamp },
    #[error("policy `{policy}` has a zero interval")]
    ZeroInterval { policy: String },
    /// The samples could not be read (a bad or unsorted input file).
    #[error(transparent)]
    Source(#[from] source::SourceError),
}

/// Evaluation times of a schedule within [start, end]: interval schedules at multiples of
/// the interval since the epoch (as the daemon aligns them), cron at its fire times (UTC).
/// Also returns the length of the step after the last time.
pub fn schedule_times(
    schedule: &Schedule,
    start: Timestamp,
    end: Timestamp,
) -> (Vec<i64>, Vec<u32>) {
    let mut times = Vec::new();
    let mut steps = Vec::new();
    match schedule {
        Schedule::Interval(d) => {
            let iv = crate::time::millis_i64(*d).max(1);
            let mut t = start.millis().div_euclid(iv) * iv;
            if t < start.millis() {
                t += iv;
            }
            while t <= end.millis() {
                times.push(t);
                steps.push(iv.min(u32::MAX as i64) as u32);
                let Some(next) = t.checked_add(iv) else { break };
                t = next;
            }
        }
        Schedule::Cron(spec) => {
            let from = (start - Duration::from_millis(1)).to_datetime();
            let mut it = spec.schedule.after(&from).peekable();
            while let Some(fire) = it.next() {
                let t = Timestamp::from_datetime(&fire).millis();
                if t > end.millis() {
                    break;
                }
                let next = it
                    .peek()
                    .map(|n| Timestamp::from_datetime(n).millis())
                    .unwrap_or(t);
                times.push(t);
                steps.push((next - t).clamp(0, u32::MAX as i64) as u32);
            }
        }
    }
    (times, steps)
}

/// The setup of one dimension of a proxy under a policy.
pub fn dim_setup(policy: &Policy, dim: Dim, ladder: Option<&Ladder>, initial: u32) -> DimSetup {
    let cfg = match dim {
        Dim::Bandwidth => policy.bandwidth.as_ref(),
        Dim::Concurrent => policy.concurrent.as_ref(),
    };
    let conventional = match dim {
        Dim::Bandwidth => "bandwidth",
        Dim::Concurrent => "connections",
    };
    match cfg {
        Some(c) => {
            let allowed: Vec<u32> = ladder
                .map(|l| {
                    l.values(dim)
                        .iter()
                        .copied()
                        .filter(|&v| v >= c.min && v <= c.max)
                        .collect()
                })
                .unwrap_or_default();
            DimSetup {
                managed: true,
                target_utilization: match &c.rule {
                    Rule::TargetTracking { target_utilization } => *target_utilization,
                    Rule::Steps(_) => 1.0,
                },
                allowed: if allowed.is_empty() {
                    vec![initial]
                } else {
                    allowed
                },
                signal: Some(c.signal.clone()),
            }
        }
        None => DimSetup {
            managed: false,
            target_utilization: 1.0,
            allowed: vec![initial],
            signal: Some(conventional.to_string()),
        },
    }
}

/// Replays every set; `progress` receives evaluation counts across all of them.
pub fn replay_all(
    sets: &[PolicySet],
    fleet: &Fleet,
    trace: &Trace,
    opts: &SimOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<Vec<SimRun>, SimError> {
    sets.iter()
        .map(|s| replay(s, fleet, trace, opts, progress))
        .collect()
}

/// How many evaluations a replay of `set` will do (for a progress bar).
pub fn evaluation_count(set: &PolicySet, fleet: &Fleet, opts: &SimOptions) -> u64 {
    set.policies
        .iter()
        .enumerate()
        .map(|(pi, p)| {
            let proxies = set.managed_by(pi, fleet).count() as u64;
            proxies * schedule_times(&p.schedule, opts.start, opts.end).0.len() as u64
        })
        .sum()
}
