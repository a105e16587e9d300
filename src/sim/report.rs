//! The report figures (reference/autoscaling-anchors.md §(d)) and the two baselines of
//! DESIGN.md, computed from a [`SimRun`].
//!
//! Notation: steps t of length Δt (until the next evaluation), true demand d_t, capacity in
//! effect s_t, need r_t = d_t / u* (concurrent: connections / 10,000 / u*; step rules use
//! u* = 1.0). Steps without demand data count in the footprint but are never
//! under-provisioned and add no slack.
//!
//! - **oracle** a_t = the cheapest allowed value within the policy bounds with a_t ≥ r_t (the
//!   largest allowed if none); a step without data keeps the previous a_t (the cheapest
//!   allowed before any data).
//! - **static** = the cheapest allowed value within bounds covering max_t r_t, held.
//! - Dimensions a policy does not manage hold their initial value in all three.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub mod tally;

use super::{CONNECTIONS_PER_UNIT, Change, ProxyRun, SimRun};
use crate::core::{Dim, Direction};

/// Reversals within this window count as flapping.
pub const FLAP_WINDOW_MS: i64 = 30 * 60 * 1000;

const MS_PER_HOUR: f64 = 3_600_000.0;
const MS_PER_DAY: f64 = 86_400_000.0;

/// A price table (`--prices FILE`, TOML): the cost of one hour of capacity.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    /// A label printed with costs (e.g. `CNY`).
    #[serde(default)]
    pub currency: Option<String>,
    /// Price of 1 Mbps for one hour.
    #[serde(default)]
    pub mbps_hour: f64,
    /// Price of one concurrent unit (10,000 connections) for one hour.
    #[serde(default)]
    pub concurrent_hour: f64,
    /// GAAP's per-day form (a connection fee matrix and bandwidth tiers, per billing day);
    /// when given, costs come from it and the hourly prices above are not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily: Option<super::billing::DailyPrices>,
}

#[derive(Debug, thiserror::Error)]
pub enum PricesError {
    #[error("{path}: {message}")]
    Read { path: String, message: String },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
}

impl Prices {
    pub fn parse(text: &str, path: &Path) -> Result<Prices, PricesError> {
        let prices: Prices = toml::from_str(text).map_err(|e| {
            let place = e
                .span()
                .map(|sp| {
                    let (line, col) = line_col(text, sp.start);
                    format!("{line}:{col}: ")
                })
                .unwrap_or_default();
            PricesError::Parse {
                path: path.display().to_string(),
                message: format!("{place}{}", e.message()),
            }
        })?;
        for (k, v) in [
            ("mbps_hour", prices.mbps_hour),
            ("concurrent_hour", prices.concurrent_hour),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(PricesError::Parse {
                    path: path.display().to_string(),
                    message: format!("`{k}` must be a non-negative number, got {v}"),
                });
            }
        }
        if let Some(d) = &prices.daily {
            let problems = d.problems();
            if !problems.is_empty() {
                return Err(PricesError::Parse {
                    path: path.display().to_string(),
                    message: problems.join("; "),
                });
            }
        }
        Ok(prices)
    }
    pub fn load(path: &Path) -> Result<Prices, PricesError> {
        let text = std::fs::read_to_string(path).map_err(|e| PricesError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Prices::parse(&text, path)
    }
    fn cost(&self, mbps_hours: f64, concurrent_hours: f64) -> f64 {
        mbps_hours * self.mbps_hour + concurrent_hours * self.concurrent_hour
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    (line, col)
}

/// How one capacity timeline (the policy's, static or oracle) fares against demand.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Figures {
    /// Share of steps where demand exceeds the capacity in effect (either dimension), %.
    pub under_provisioned_pct: f64,
    /// Σ max(d − s, 0)·Δt, Mbps·h.
    pub unserved_mbps_hours: f64,
    /// Σ max(d − s, 0)·Δt in concurrent units (10,000 connections)·h.
    pub unserved_concurrent_hours: f64,
    /// Σ s·Δt.
    pub footprint_mbps_hours: f64,
    pub footprint_concurrent_hours: f64,
    /// Relative slack Σ max(s − d, 0) / Σ s over steps with data, % (bandwidth).
    pub slack_pct: f64,
    /// Absolute slack Σ max(s − d, 0)·Δt, Mbps·h.
    pub slack_mbps_hours: f64,
    /// The same for concurrency (% and units·h).
    pub slack_concurrent_pct: f64,
    pub slack_concurrent_hours: f64,
    /// Footprint priced with `--prices` (absent without a price table).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
    #[serde(skip)]
    pub steps: u64,
    #[serde(skip)]
    pub under_steps: u64,
    #[serde(skip)]
    sums: [SlackSums; 2],
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct SlackSums {
    slack: f64,
    capacity: f64,
}

/// Reaction-latency figures for one direction.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Episodes that ended within the range.
    pub episodes: u64,
    /// Episodes still open at the end of the range (not in the percentiles).
    pub open: u64,
    pub p50_s: Option<f64>,
    pub p95_s: Option<f64>,
    pub max_s: Option<f64>,
    #[serde(skip)]
    samples_ms: Vec<i64>,
}

impl Latency {
    fn finish(mut self) -> Latency {
        self.samples_ms.sort_unstable();
        let pct = |p: f64| -> Option<f64> {
            let n = self.samples_ms.len();
            if n == 0 {
                return None;
            }
            let rank = ((p * n as f64).ceil() as usize).clamp(1, n);
            Some(self.samples_ms[rank - 1] as f64 / 1000.0)
        };
        self.episodes = self.samples_ms.len() as u64;
        self.p50_s = pct(0.50);
        self.p95_s = pct(0.95);
        self.max_s = self.samples_ms.last().map(|&m| m as f64 / 1000.0);
        self
    }
    fn merge(&mut self, other: &Latency) {
        self.samples_ms.extend_from_slice(&other.samples_ms);
        self.open += other.open;
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ReactionLatency {
    /// From the first step whose capacity is below the oracle's (need not covered) to the
    /// first step where it covers the oracle's value again.
    pub up: Latency,
    /// From the first step whose capacity is above the oracle's (excess) to the first
    /// step where it is released.
    pub down: Latency,
}

/// The baselines' figures plus the values they hold.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Baselines {
    #[serde(rename = "static")]
    pub static_: StaticBaseline,
    pub oracle: Figures,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StaticBaseline {
    #[serde(flatten)]
    pub figures: Figures,
    /// The values held throughout (Mbps; concurrent units).
    pub bandwidth: u32,
    pub concurrent: u32,
}

/// One proxy's report row.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ProxyReport {
    pub proxy_id: String,
    pub policy: String,
    pub policy_set: String,
    pub steps: u64,
    pub days: f64,
    pub changes: u64,
    pub changes_up: u64,
    pub changes_down: u64,
    pub changes_per_day: f64,
    #[serde(flatten)]
    pub figures: Figures,
    /// Steps where true demand exceeded the capacity in effect, per signal, summed.
    pub censored_samples: u64,
    pub censored_bandwidth_samples: u64,
    pub censored_connection_samples: u64,
    /// Steps without usable demand data (bandwidth signal), and the longest such run.
    pub no_data_steps: u64,
    pub longest_gap_s: f64,
    /// Share of steps where the policy's capacity exceeds the oracle's in any managed
    /// dimension (more than needed), %.
    pub over_provisioned_pct: f64,
    /// Whole UTC days in the range with no change (Autopilot: most job-days have none).
    pub days_without_change: u64,
    pub whole_days: u64,
    /// Reversals (up then down, or down then up) within 30 minutes, per dimension.
    pub flapping: u64,
    pub reaction_latency: ReactionLatency,
    /// Reason code → count over every evaluation.
    pub reasons: BTreeMap<String, u64>,
    /// Changes whose API call had to wait for a later second.
    pub api_deferred: u64,
    /// Changes a saturated reading caused (`data.saturated` among their reasons): a reading
    /// at or above the policy's `saturation` × capacity, censored or not.
    pub saturated_changes: u64,
    /// How the seasonal forecasts (`[predictive]`) fared against the hours they were for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forecast: Option<ForecastAccuracy>,
    pub baselines: Baselines,
    /// Why the proxy cannot be resized (Scalarable 0, not RUNNING); such a proxy is left
    /// out of the fleet totals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unscalable: Option<String>,
}

/// The seasonal forecast against what came: per proxy, dimension and hour forecast, the
/// mean forecast need `f` against the hour's highest true need `d` (`demand / target`),
/// over the hours with data and a need above zero (anchors §(d) 14): MAPE = mean(|d − f| / d)
/// and bias = mean(f − d) / mean(d), in % (bias > 0: over-forecast). MAPE is large where
/// the need is near zero, as its definition makes it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ForecastAccuracy {
    pub hours: u64,
    pub mape_pct: f64,
    pub bias_pct: f64,
    #[serde(skip)]
    abs_sum: f64,
    #[serde(skip)]
    diff_sum: f64,
    #[serde(skip)]
    actual_sum: f64,
}

impl ForecastAccuracy {
    fn of(run: &ProxyRun) -> Option<ForecastAccuracy> {
        let mut acc = ForecastAccuracy::default();
        for (i, dim) in Dim::ALL.into_iter().enumerate() {
            let hours = &run.forecasts[i];
            if hours.is_empty() {
                continue;
            }
            let target = run.dim(dim).target_utilization;
            let mut highs: BTreeMap<i64, f64> = BTreeMap::new();
            for (k, &t) in run.times.iter().enumerate() {
                let d = run.demand_units(dim, k);
                if d.is_finite() {
                    let h = highs.entry(t.div_euclid(HOUR_MS) * HOUR_MS).or_insert(0.0);
                    *h = h.max(d / target);
                }
            }
            for (hour, &(sum, n)) in hours {
                if let Some(&actual) = highs.get(hour).filter(|&&a| a > 0.0) {
                    let diff = sum / f64::from(n) - actual;
                    acc.hours += 1;
                    acc.abs_sum += diff.abs() / actual;
                    acc.diff_sum += diff;
                    acc.actual_sum += actual;
                }
            }
        }
        (acc.hours > 0).then(|| {
            acc.finish();
            acc
        })
    }
    fn merge(&mut self, o: &ForecastAccuracy) {
        self.hours += o.hours;
        self.abs_sum += o.abs_sum;
        self.diff_sum += o.diff_sum;
        self.actual_sum += o.actual_sum;
    }
    fn finish(&mut self) {
        if self.hours > 0 {
            self.mape_pct = 100.0 * self.abs_sum / self.hours as f64;
            self.bias_pct = 100.0 * self.diff_sum / self.actual_sum;
        }
    }
}

const HOUR_MS: i64 = 3_600_000;

/// Fleet totals for one policy set.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    pub policy_set: String,
    pub start: String,
    pub end: String,
    pub adjusting_s: f64,
    /// Proxies replayed (a policy selects them), unscalable ones included.
    pub proxies: u64,
    /// Replayed proxies that cannot be resized (Scalarable 0, not RUNNING): left out of
    /// every fleet total below (their baselines would resize what cannot be resized).
    pub excluded_unscalable: u64,
    /// Those proxies as `id: why`.
    pub unscalable_proxies: Vec<String>,
    pub proxy_days: f64,
    pub steps: u64,
    pub changes: u64,
    pub changes_up: u64,
    pub changes_down: u64,
    pub changes_per_proxy_day: f64,
    /// Share of proxy-steps under-provisioned (pooled), and weighted by footprint.
    #[serde(flatten)]
    pub figures: Figures,
    pub under_provisioned_pct_footprint_weighted: f64,
    pub censored_samples: u64,
    /// Changes a saturated reading caused (`data.saturated`).
    pub saturated_changes: u64,
    pub flapping: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forecast: Option<ForecastAccuracy>,
    /// Steps above the oracle (any managed dimension), pooled, %.
    pub over_provisioned_pct: f64,
    pub no_data_steps: u64,
    pub longest_gap_s: f64,
    /// Share of whole proxy-days without any change, %.
    pub days_without_change_pct: f64,
    pub reaction_latency: ReactionLatency,
    pub reasons: BTreeMap<String, u64>,
    pub api_calls: u64,
    pub peak_api_calls_per_second: u32,
    pub api_deferred: u64,
    pub api_max_wait_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    pub baselines: Baselines,
    /// Fleet proxies no policy selects, and proxies several policies select.
    pub unmanaged_proxies: Vec<String>,
    pub overlapping_selections: Vec<String>,
}

/// One decision that changed capacity (the `decisions` array of `--json`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DecisionRow {
    pub time: String,
    pub proxy_id: String,
    pub policy: String,
    pub policy_set: String,
    pub direction: &'static str,
    pub bandwidth_from: u32,
    pub bandwidth_to: u32,
    pub concurrent_from: u32,
    pub concurrent_to: u32,
    pub reasons: Vec<String>,
    /// When the API call went out and when the new capacity took effect.
    pub api_call_at: String,
    pub effective_at: String,
}

/// The whole report of one policy set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SetReport {
    pub summary: Summary,
    pub proxies: Vec<ProxyReport>,
}

/// The cheapest allowed value covering `need` (the largest allowed if none does).
pub fn cover(allowed: &[u32], need: f64) -> u32 {
    allowed
        .iter()
        .copied()
        .find(|&v| f64::from(v) >= need)
        .or_else(|| allowed.last().copied())
        .unwrap_or(0)
}

/// Need of dimension `d` at step `i` (None without data).
fn need(run: &ProxyRun, d: Dim, i: usize) -> Option<f64> {
    let x = run.demand_units(d, i);
    x.is_finite()
        .then(|| x / run.dim(d).target_utilization.max(f64::MIN_POSITIVE))
}

/// The oracle's value per step for one dimension.
pub fn oracle_values(run: &ProxyRun, d: Dim) -> Vec<u32> {
    let allowed = &run.dim(d).allowed;
    let mut prev = allowed.first().copied().unwrap_or(0);
    (0..run.steps())
        .map(|i| {
            if let Some(n) = need(run, d, i) {
                prev = cover(allowed, n);
            }
            prev
        })
        .collect()
}

/// The static baseline's value for one dimension.
pub fn static_value(run: &ProxyRun, d: Dim) -> u32 {
    let peak = (0..run.steps())
        .filter_map(|i| need(run, d, i))
        .fold(0.0f64, f64::max);
    cover(&run.dim(d).allowed, peak)
}

/// Figures for a capacity timeline given per step by `cap(dim, i)`.
pub fn figures(
    run: &ProxyRun,
    prices: Option<&Prices>,
    cap: &dyn Fn(Dim, usize) -> u32,
) -> Figures {
    let mut f = Figures {
        steps: run.steps() as u64,
        ..Figures::default()
    };
    for i in 0..run.steps() {
        let hours = f64::from(run.step_ms[i]) / MS_PER_HOUR;
        let mut under = false;
        for (k, d) in Dim::ALL.into_iter().enumerate() {
            let s = f64::from(cap(d, i));
            let demand = run.demand_units(d, i);
            match d {
                Dim::Bandwidth => f.footprint_mbps_hours += s * hours,
                Dim::Concurrent => f.footprint_concurrent_hours += s * hours,
            }
            if !demand.is_finite() {
                continue;
            }
            if demand > s {
                under = true;
                match d {
                    Dim::Bandwidth => f.unserved_mbps_hours += (demand - s) * hours,
                    Dim::Concurrent => f.unserved_concurrent_hours += (demand - s) * hours,
                }
            } else {
                match d {
                    Dim::Bandwidth => f.slack_mbps_hours += (s - demand) * hours,
                    Dim::Concurrent => f.slack_concurrent_hours += (s - demand) * hours,
                }
                f.sums[k].slack += s - demand;
            }
            f.sums[k].capacity += s;
        }
        if under {
            f.under_steps += 1;
        }
    }
    f.finish(prices);
    if let Some(daily) = prices.and_then(|p| p.daily.as_ref()) {
        f.cost = Some(daily.cost(&run.times, &run.step_ms, |i| {
            (cap(Dim::Bandwidth, i), cap(Dim::Concurrent, i))
        }));
    }
    f
}

impl Figures {
    fn finish(&mut self, prices: Option<&Prices>) {
        let pct = |a: f64, b: f64| if b > 0.0 { 100.0 * a / b } else { 0.0 };
        self.under_provisioned_pct = pct(self.under_steps as f64, self.steps as f64);
        self.slack_pct = pct(self.sums[0].slack, self.sums[0].capacity);
        self.slack_concurrent_pct = pct(self.sums[1].slack, self.sums[1].capacity);
        // The per-day form prices each timeline (set by `figures`) and sums them (`add`).
        if prices.is_none_or(|p| p.daily.is_none()) {
            self.cost =
                prices.map(|p| p.cost(self.footprint_mbps_hours, self.footprint_concurrent_hours));
        }
    }
    fn add(&mut self, o: &Figures) {
        if let Some(c) = o.cost {
            self.cost = Some(self.cost.unwrap_or(0.0) + c);
        }
        self.steps += o.steps;
        self.under_steps += o.under_steps;
        self.unserved_mbps_hours += o.unserved_mbps_hours;
        self.unserved_concurrent_hours += o.unserved_concurrent_hours;
        self.footprint_mbps_hours += o.footprint_mbps_hours;
        self.footprint_concurrent_hours += o.footprint_concurrent_hours;
        self.slack_mbps_hours += o.slack_mbps_hours;
        self.slack_concurrent_hours += o.slack_concurrent_hours;
        for k in 0..2 {
            self.sums[k].slack += o.sums[k].slack;
            self.sums[k].capacity += o.sums[k].capacity;
        }
    }
}

/// Reversals within the flap window, per managed dimension.
pub fn flapping(run: &ProxyRun) -> u64 {
    let mut n = 0;
    for d in Dim::ALL {
        if !run.dim(d).managed {
            continue;
        }
        let mut last: Option<(i64, bool)> = None;
        for c in &run.changes {
            let (from, to) = dim_change(c, d);
            if from == to {
                continue;
            }
            let up = to > from;
            let t = c.time.millis();
            if let Some((lt, lup)) = last
                && lup != up
                && t - lt <= FLAP_WINDOW_MS
            {
                n += 1;
            }
            last = Some((t, up));
        }
    }
    n
}

fn dim_change(c: &Change, d: Dim) -> (u32, u32) {
    match d {
        Dim::Bandwidth => (c.bandwidth_from, c.bandwidth_to),
        Dim::Concurrent => (c.concurrent_from, c.concurrent_to),
    }
}

/// Reaction latency against the oracle, per managed dimension (pooled).
pub fn reaction_latency(run: &ProxyRun, oracle: &[Vec<u32>; 2]) -> ReactionLatency {
    let mut up = Latency::default();
    let mut down = Latency::default();
    for (k, d) in Dim::ALL.into_iter().enumerate() {
        if !run.dim(d).managed {
            continue;
        }
        let mut up_since: Option<i64> = None;
        let mut down_since: Option<i64> = None;
        for (i, &a) in oracle[k].iter().enumerate() {
            if !run.demand_units(d, i).is_finite() {
                continue;
            }
            let s = run.capacity(d, i);
            let t = run.times[i];
            match (s < a, up_since) {
                (true, None) => up_since = Some(t),
                (false, Some(t0)) => {
                    up.samples_ms.push(t - t0);
                    up_since = None;
                }
                _ => {}
            }
            match (s > a, down_since) {
                (true, None) => down_since = Some(t),
                (false, Some(t0)) => {
                    down.samples_ms.push(t - t0);
                    down_since = None;
                }
                _ => {}
            }
        }
        up.open += u64::from(up_since.is_some());
        down.open += u64::from(down_since.is_some());
    }
    ReactionLatency {
        up: up.finish(),
        down: down.finish(),
    }
}

/// The longest run of consecutive steps without bandwidth data (ms).
fn longest_gap_ms(run: &ProxyRun) -> i64 {
    let mut longest = 0i64;
    let mut current = 0i64;
    for (d, &ms) in run.demand_bw.iter().zip(&run.step_ms) {
        if d.is_finite() {
            current = 0;
        } else {
            current += i64::from(ms);
            longest = longest.max(current);
        }
    }
    longest
}

/// Share of steps where capacity exceeds the oracle's value in a managed dimension, %.
fn over_provisioned_pct(run: &ProxyRun, oracle: &[Vec<u32>; 2]) -> f64 {
    let n = run.steps();
    if n == 0 {
        return 0.0;
    }
    let over = (0..n)
        .filter(|&i| {
            Dim::ALL.into_iter().enumerate().any(|(k, d)| {
                run.dim(d).managed
                    && run.demand_units(d, i).is_finite()
                    && run.capacity(d, i) > oracle[k][i]
            })
        })
        .count();
    100.0 * over as f64 / n as f64
}

/// (whole UTC days without a change, whole UTC days in the range).
fn days_without_change(run: &ProxyRun) -> (u64, u64) {
    let (Some(&first), Some(&last)) = (run.times.first(), run.times.last()) else {
        return (0, 0);
    };
    quiet_days(first, last, *run.step_ms.last().unwrap_or(&0), &run.changes)
}

/// (whole UTC days without a change, whole UTC days) for steps from `first` to `last`
/// (lasting `last_step`).
fn quiet_days(first: i64, last: i64, last_step: u32, changes: &[Change]) -> (u64, u64) {
    let day = MS_PER_DAY as i64;
    // Days fully inside [first, last + step].
    let end = last + i64::from(last_step);
    let first_day = first.div_euclid(day) + i64::from(first.rem_euclid(day) != 0);
    let last_day = end.div_euclid(day); // exclusive
    if last_day <= first_day {
        return (0, 0);
    }
    let mut changed = std::collections::BTreeSet::new();
    for c in changes {
        changed.insert(c.time.millis().div_euclid(day));
    }
    let whole = (last_day - first_day) as u64;
    let quiet = (first_day..last_day)
        .filter(|d| !changed.contains(d))
        .count() as u64;
    (quiet, whole)
}

/// The report row of one proxy.
pub fn proxy_report(run: &ProxyRun, set: &str, prices: Option<&Prices>) -> ProxyReport {
    if let Some(t) = &run.tally {
        return tally_report(run, t, set, prices);
    }
    let oracle = [
        oracle_values(run, Dim::Bandwidth),
        oracle_values(run, Dim::Concurrent),
    ];
    let st = [
        static_value(run, Dim::Bandwidth),
        static_value(run, Dim::Concurrent),
    ];
    let measured = Measured {
        steps: run.steps() as u64,
        days: run.step_ms.iter().map(|&m| f64::from(m)).sum::<f64>() / MS_PER_DAY,
        figures: figures(run, prices, &|d, i| run.capacity(d, i)),
        static_figures: figures(run, prices, &|d, _| match d {
            Dim::Bandwidth => st[0],
            Dim::Concurrent => st[1],
        }),
        static_values: st,
        oracle_figures: figures(run, prices, &|d, i| match d {
            Dim::Bandwidth => oracle[0][i],
            Dim::Concurrent => oracle[1][i],
        }),
        no_data_steps: run.demand_bw.iter().filter(|d| !d.is_finite()).count() as u64,
        longest_gap_ms: longest_gap_ms(run),
        over_provisioned_pct: over_provisioned_pct(run, &oracle),
        quiet_days: days_without_change(run),
        reaction_latency: reaction_latency(run, &oracle),
        forecast: ForecastAccuracy::of(run),
    };
    report_row(run, set, measured)
}

/// The report row of a streamed proxy, from its [`tally::Tally`] (the same figures as
/// [`proxy_report`] over the run's columns).
fn tally_report(
    run: &ProxyRun,
    t: &tally::Tally,
    set: &str,
    prices: Option<&Prices>,
) -> ProxyReport {
    let (mut figures, mut static_figures, mut oracle_figures) = t.figures();
    for f in [&mut figures, &mut static_figures, &mut oracle_figures] {
        f.finish(prices);
    }
    let steps = t.steps();
    let (up, down) = t.latency();
    let measured = Measured {
        steps,
        days: t.days_ms() / MS_PER_DAY,
        figures,
        static_figures,
        static_values: [
            t.static_value(Dim::Bandwidth),
            t.static_value(Dim::Concurrent),
        ],
        oracle_figures,
        no_data_steps: t.no_data_steps(),
        longest_gap_ms: t.longest_gap_ms(),
        over_provisioned_pct: if steps == 0 {
            0.0
        } else {
            100.0 * t.over_steps() as f64 / steps as f64
        },
        quiet_days: t.span().map_or((0, 0), |(first, last, step)| {
            quiet_days(first, last, step, &run.changes)
        }),
        reaction_latency: ReactionLatency {
            up: up.finish(),
            down: down.finish(),
        },
        forecast: t.forecast_accuracy(),
    };
    report_row(run, set, measured)
}

/// What a report row measures over the steps: from the run's columns
/// ([`proxy_report`]) or from its tally (streamed).
struct Measured {
    steps: u64,
    days: f64,
    figures: Figures,
    static_figures: Figures,
    static_values: [u32; 2],
    oracle_figures: Figures,
    no_data_steps: u64,
    longest_gap_ms: i64,
    over_provisioned_pct: f64,
    quiet_days: (u64, u64),
    reaction_latency: ReactionLatency,
    forecast: Option<ForecastAccuracy>,
}

/// A proxy's row: `m` plus what the run's changes, reasons and counters say.
fn report_row(run: &ProxyRun, set: &str, m: Measured) -> ProxyReport {
    let changes_up = run
        .changes
        .iter()
        .filter(|c| c.direction == Direction::Up)
        .count() as u64;
    let changes = run.changes.len() as u64;
    ProxyReport {
        proxy_id: run.proxy_id.clone(),
        policy: run.policy.clone(),
        policy_set: set.to_string(),
        steps: m.steps,
        days: m.days,
        changes,
        changes_up,
        changes_down: changes - changes_up,
        changes_per_day: if m.days > 0.0 {
            changes as f64 / m.days
        } else {
            0.0
        },
        figures: m.figures,
        censored_samples: run.censored_bw + run.censored_conn,
        censored_bandwidth_samples: run.censored_bw,
        censored_connection_samples: run.censored_conn,
        no_data_steps: m.no_data_steps,
        longest_gap_s: m.longest_gap_ms as f64 / 1000.0,
        over_provisioned_pct: m.over_provisioned_pct,
        days_without_change: m.quiet_days.0,
        whole_days: m.quiet_days.1,
        flapping: flapping(run),
        reaction_latency: m.reaction_latency,
        reasons: run
            .reasons
            .iter()
            .map(|(c, n)| (c.as_str().to_string(), *n))
            .collect(),
        api_deferred: run.api_deferred,
        unscalable: run.unscalable.clone(),
        saturated_changes: run
            .changes
            .iter()
            .filter(|c| c.reasons.iter().any(|r| r.contains("data.saturated")))
            .count() as u64,
        forecast: m.forecast,
        baselines: Baselines {
            static_: StaticBaseline {
                figures: m.static_figures,
                bandwidth: m.static_values[0],
                concurrent: m.static_values[1],
            },
            oracle: m.oracle_figures,
        },
    }
}

/// The report of one policy set: a row per proxy and the fleet summary.
pub fn set_report(run: &SimRun, prices: Option<&Prices>) -> SetReport {
    let proxies: Vec<ProxyReport> =
        crate::par::map(&run.proxies, |_, p| proxy_report(p, &run.label, prices));
    let mut s = Summary {
        policy_set: run.label.clone(),
        start: run.start.to_rfc3339(),
        end: run.end.to_rfc3339(),
        adjusting_s: run.adjusting.as_secs_f64(),
        proxies: proxies.len() as u64,
        api_calls: run.api.calls,
        peak_api_calls_per_second: run.api.peak_per_second,
        api_deferred: run.api.deferred,
        api_max_wait_s: run.api.max_wait_ms as f64 / 1000.0,
        currency: prices.and_then(|p| p.currency.clone()),
        unmanaged_proxies: run.unmanaged_proxies.clone(),
        overlapping_selections: run
            .overlaps
            .iter()
            .map(|(p, used, others)| {
                format!("{p}: selected by `{used}` (used) and {}", others.join(", "))
            })
            .collect(),
        ..Summary::default()
    };
    let mut weighted_under = 0.0;
    let mut over_steps = 0.0;
    let (mut quiet, mut whole) = (0u64, 0u64);
    let mut up = Latency::default();
    let mut down = Latency::default();
    for p in &proxies {
        if let Some(why) = &p.unscalable {
            s.excluded_unscalable += 1;
            s.unscalable_proxies.push(format!("{}: {why}", p.proxy_id));
            continue;
        }
        s.proxy_days += p.days;
        s.steps += p.steps;
        s.changes += p.changes;
        s.changes_up += p.changes_up;
        s.changes_down += p.changes_down;
        s.figures.add(&p.figures);
        s.baselines
            .static_
            .figures
            .add(&p.baselines.static_.figures);
        s.baselines.oracle.add(&p.baselines.oracle);
        weighted_under += p.figures.under_provisioned_pct * p.figures.footprint_mbps_hours;
        s.censored_samples += p.censored_samples;
        s.saturated_changes += p.saturated_changes;
        if let Some(f) = &p.forecast {
            s.forecast.get_or_insert_with(Default::default).merge(f);
        }
        s.flapping += p.flapping;
        over_steps += p.over_provisioned_pct * p.steps as f64 / 100.0;
        s.no_data_steps += p.no_data_steps;
        s.longest_gap_s = s.longest_gap_s.max(p.longest_gap_s);
        quiet += p.days_without_change;
        whole += p.whole_days;
        up.merge(&p.reaction_latency.up);
        down.merge(&p.reaction_latency.down);
        for (k, n) in &p.reasons {
            *s.reasons.entry(k.clone()).or_insert(0) += n;
        }
    }
    if let Some(f) = s.forecast.as_mut() {
        f.finish();
    }
    s.figures.finish(prices);
    s.baselines.static_.figures.finish(prices);
    s.baselines.oracle.finish(prices);
    s.under_provisioned_pct_footprint_weighted = if s.figures.footprint_mbps_hours > 0.0 {
        weighted_under / s.figures.footprint_mbps_hours
    } else {
        0.0
    };
    s.over_provisioned_pct = if s.steps > 0 {
        100.0 * over_steps / s.steps as f64
    } else {
        0.0
    };
    s.days_without_change_pct = if whole > 0 {
        100.0 * quiet as f64 / whole as f64
    } else {
        0.0
    };
    s.changes_per_proxy_day = if s.proxy_days > 0.0 {
        s.changes as f64 / s.proxy_days
    } else {
        0.0
    };
    s.reaction_latency = ReactionLatency {
        up: up.finish(),
        down: down.finish(),
    };
    SetReport {
        summary: s,
        proxies,
    }
}

/// Every change of a run as a `decisions` row.
pub fn decision_rows(run: &SimRun) -> Vec<DecisionRow> {
    let mut rows: Vec<DecisionRow> = run
        .proxies
        .iter()
        .flat_map(|p| {
            p.changes.iter().map(|c| DecisionRow {
                time: c.time.to_rfc3339(),
                proxy_id: p.proxy_id.clone(),
                policy: p.policy.clone(),
                policy_set: run.label.clone(),
                direction: match c.direction {
                    Direction::Up => "up",
                    Direction::Down => "down",
                },
                bandwidth_from: c.bandwidth_from,
                bandwidth_to: c.bandwidth_to,
                concurrent_from: c.concurrent_from,
                concurrent_to: c.concurrent_to,
                reasons: c.reasons.clone(),
                api_call_at: c.call_at.to_rfc3339(),
                effective_at: c.effective_at.to_rfc3339(),
            })
        })
        .collect();
    rows.sort_by(|a, b| a.time.cmp(&b.time).then(a.proxy_id.cmp(&b.proxy_id)));
    rows
}

/// The `--json` document: `summary` (the first set's fleet totals), `proxies` and
/// `decisions` over every set (each row names its `policy_set`), and `policy_sets` with
/// every set's summary for side-by-side comparison.
pub fn json_document(reports: &[SetReport], runs: &[SimRun]) -> serde_json::Value {
    json_document_with_reference(reports, runs, &[])
}

/// [`json_document`] plus `reference`: each peer's fleet summary by name (`hpa`, `aws`,
/// `autopilot`), replayed on the first policy set's proxies and bounds.
pub fn json_document_with_reference(
    reports: &[SetReport],
    runs: &[SimRun],
    reference: &[(&str, SetReport)],
) -> serde_json::Value {
    let mut doc = json_document_sets(reports, runs);
    if !reference.is_empty() {
        let peers: serde_json::Map<String, serde_json::Value> = reference
            .iter()
            .map(|(name, r)| {
                (
                    name.to_string(),
                    serde_json::to_value(&r.summary).unwrap_or_default(),
                )
            })
            .collect();
        doc["reference"] = serde_json::Value::Object(peers);
    }
    doc
}

fn json_document_sets(reports: &[SetReport], runs: &[SimRun]) -> serde_json::Value {
    let summary = reports
        .first()
        .map(|r| serde_json::to_value(&r.summary).unwrap_or_default())
        .unwrap_or_default();
    let proxies: Vec<&ProxyReport> = reports.iter().flat_map(|r| &r.proxies).collect();
    let decisions: Vec<DecisionRow> = runs.iter().flat_map(decision_rows).collect();
    let sets: Vec<&Summary> = reports.iter().map(|r| &r.summary).collect();
    serde_json::json!({
        "summary": summary,
        "proxies": proxies,
        "decisions": decisions,
        "policy_sets": sets,
        "connections_per_concurrent_unit": CONNECTIONS_PER_UNIT,
    })
}
