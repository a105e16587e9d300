//! The report's figures computed step by step, as the streaming replay goes: the same
//! operations, in the same order, as [`super::proxy_report`] over a run's columns, so the
//! same figures to the bit (a test compares them), in memory bounded by the ladder and the
//! chart's width, not by the number of steps.
//!
//! What cannot be known before the end, the static baseline's value (it covers the peak
//! need of the whole range), is handled by keeping the figures of every candidate value
//! (the allowed values, a few) and choosing at the end. Exceptions that grow with time,
//! both small: the reaction-latency episodes (one number each, as the percentiles need
//! them) and, with `[predictive]` forecasts, three numbers per forecast hour of the
//! concurrent dimension (the accuracy sums the bandwidth hours first, then the concurrent
//! ones).

use std::collections::BTreeMap;

use super::{Figures, ForecastAccuracy, HOUR_MS, Latency, MS_PER_HOUR, cover};
use crate::core::Dim;
use crate::sim::billing::{DailyPrices, DayCost};
use crate::sim::html::{COLUMNS, Range};
use crate::sim::{CONNECTIONS_PER_UNIT, DimSetup};

/// One dimension's sums for one capacity timeline (the half of [`Figures`] it feeds).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct DimSums {
    footprint: f64,
    unserved: f64,
    slack_hours: f64,
    slack: f64,
    capacity: f64,
}

impl DimSums {
    /// One step of capacity `s` against `demand` (in the capacity's unit; NaN = no data).
    /// Returns whether the demand exceeds the capacity.
    #[inline]
    fn add(&mut self, s: f64, demand: f64, hours: f64) -> bool {
        self.footprint += s * hours;
        if !demand.is_finite() {
            return false;
        }
        let under = demand > s;
        if under {
            self.unserved += (demand - s) * hours;
        } else {
            self.slack_hours += (s - demand) * hours;
            self.slack += s - demand;
        }
        self.capacity += s;
        under
    }
}

/// The figures of one capacity timeline, step by step.
#[derive(Clone, Debug, Default, PartialEq)]
struct Timeline {
    dims: [DimSums; 2],
    under_steps: u64,
    cost: Option<DayCost>,
}

impl Timeline {
    fn figures(&self, steps: u64, daily: Option<&DailyPrices>) -> Figures {
        figures_of(
            &self.dims,
            steps,
            self.under_steps,
            daily,
            self.cost.as_ref(),
        )
    }
}

fn figures_of(
    dims: &[DimSums; 2],
    steps: u64,
    under_steps: u64,
    daily: Option<&DailyPrices>,
    cost: Option<&DayCost>,
) -> Figures {
    let mut f = Figures {
        steps,
        under_steps,
        footprint_mbps_hours: dims[0].footprint,
        footprint_concurrent_hours: dims[1].footprint,
        unserved_mbps_hours: dims[0].unserved,
        unserved_concurrent_hours: dims[1].unserved,
        slack_mbps_hours: dims[0].slack_hours,
        slack_concurrent_hours: dims[1].slack_hours,
        ..Figures::default()
    };
    for (sums, d) in f.sums.iter_mut().zip(dims) {
        sums.slack = d.slack;
        sums.capacity = d.capacity;
    }
    if let (Some(d), Some(c)) = (daily, cost) {
        f.cost = Some(c.total(d));
    }
    f
}

/// What a chart keeps per column and dimension (index within the dimension's four).
#[derive(Clone, Copy, Debug)]
pub enum Line {
    DemandHigh = 0,
    DemandLow = 1,
    Capacity = 2,
    Oracle = 3,
}

/// The highest value per column, as `html`'s columns keep it.
#[inline]
fn hi(slot: &mut f64, v: f64) {
    if v.is_finite() {
        *slot = if slot.is_nan() { v } else { slot.max(v) };
    }
}

#[inline]
fn lo(slot: &mut f64, v: f64) {
    if v.is_finite() {
        *slot = if slot.is_nan() { v } else { slot.min(v) };
    }
}

/// The chart of one proxy: its range and its [`COLUMNS`] columns, each one cache line:
/// per dimension the four [`Line`]s (NaN = no value yet).
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    pub range: Range,
    cols: Vec<[f64; 8]>,
}

impl Chart {
    /// One line of dimension `k` (0 bandwidth, 1 concurrent), column by column.
    pub fn line(&self, k: usize, line: Line) -> Vec<f64> {
        self.cols.iter().map(|c| c[k * 4 + line as usize]).collect()
    }
}

/// Forecast accuracy, hour by hour, for one dimension.
#[derive(Clone, Debug, Default, PartialEq)]
struct ForecastDim {
    /// The highest need of the hours not yet closed.
    highs: BTreeMap<i64, f64>,
    /// Forecasts made for hours not yet closed: (sum, count).
    pending: BTreeMap<i64, (f64, u32)>,
    /// Closed hours' terms (concurrent only: they are summed after every bandwidth hour).
    terms: Vec<(f64, f64, f64)>,
    /// The hour of the last step.
    hour: Option<i64>,
}

/// Steps held before they are tallied: a proxy's tally (its static candidates, its chart
/// columns: a few KiB) is then brought into the cache once per batch, not once per step,
/// which keeps a 2,000-proxy replay linear (measured: 46 % of the time went to cache
/// misses in `step` without it).
const BATCH: usize = 64;

/// One step waiting in the batch.
#[derive(Clone, Copy, Debug, PartialEq)]
struct StepIn {
    t: i64,
    step_ms: u32,
    cap: [u32; 2],
    d_bw: f64,
    d_conn: f64,
}

/// The figures of one proxy's replay, step by step.
#[derive(Clone, Debug, PartialEq)]
pub struct Tally {
    batch: Vec<StepIn>,
    managed: [bool; 2],
    target: [f64; 2],
    allowed: [Vec<u32>; 2],
    daily: Option<DailyPrices>,
    steps: u64,
    ms: f64,
    first: Option<(i64, u32, u32)>,
    last: Option<(i64, u32)>,
    policy: Timeline,
    oracle: Timeline,
    oracle_prev: [u32; 2],
    /// Per dimension, per candidate static value: the sums.
    statics: [Vec<DimSums>; 2],
    /// Steps by (first bandwidth candidate not under, first concurrent candidate not
    /// under): the static baseline's under-provisioned steps for any pair of values.
    static_under: Vec<u64>,
    /// Per (bandwidth, concurrent) candidate pair: the per-day cost (per-day prices only).
    static_cost: Vec<DayCost>,
    peak: [f64; 2],
    no_data_steps: u64,
    gap: (i64, i64),
    over_steps: u64,
    latency: [Latency; 2],
    /// Per dimension: since when the capacity is below / above the oracle's.
    since: [(Option<i64>, Option<i64>); 2],
    forecast: [ForecastDim; 2],
    forecast_acc: ForecastAccuracy,
    chart: Option<Chart>,
}

/// The candidate values of a static baseline (the allowed values; `[0]` when none).
fn candidates(allowed: &[u32]) -> Vec<u32> {
    if allowed.is_empty() {
        vec![0]
    } else {
        allowed.to_vec()
    }
}

impl Tally {
    /// A tally for a proxy with these dimensions; `daily` prices each timeline by billing
    /// day; `chart` (the set's chart range) keeps its chart columns.
    pub fn new(
        bandwidth: &DimSetup,
        concurrent: &DimSetup,
        daily: Option<&DailyPrices>,
        chart: Option<Range>,
    ) -> Tally {
        let allowed = [bandwidth.allowed.clone(), concurrent.allowed.clone()];
        let cands = [candidates(&allowed[0]), candidates(&allowed[1])];
        let cost = daily.map(|_| DayCost::default());
        Tally {
            batch: Vec::new(),
            managed: [bandwidth.managed, concurrent.managed],
            target: [
                bandwidth.target_utilization.max(f64::MIN_POSITIVE),
                concurrent.target_utilization.max(f64::MIN_POSITIVE),
            ],
            oracle_prev: [
                allowed[0].first().copied().unwrap_or(0),
                allowed[1].first().copied().unwrap_or(0),
            ],
            statics: [
                vec![DimSums::default(); cands[0].len()],
                vec![DimSums::default(); cands[1].len()],
            ],
            static_under: vec![0; (cands[0].len() + 1) * (cands[1].len() + 1)],
            static_cost: if daily.is_some() {
                vec![DayCost::default(); cands[0].len() * cands[1].len()]
            } else {
                Vec::new()
            },
            allowed,
            daily: daily.cloned(),
            steps: 0,
            // As `Iterator::sum` starts (so an empty run's days read the same).
            ms: std::iter::empty::<f64>().sum(),
            first: None,
            last: None,
            policy: Timeline {
                cost: cost.clone(),
                ..Timeline::default()
            },
            oracle: Timeline {
                cost,
                ..Timeline::default()
            },
            peak: [0.0; 2],
            no_data_steps: 0,
            gap: (0, 0),
            over_steps: 0,
            latency: Default::default(),
            since: Default::default(),
            forecast: Default::default(),
            forecast_acc: ForecastAccuracy::default(),
            chart: chart.map(|range| Chart {
                range,
                cols: vec![[f64::NAN; 8]; COLUMNS],
            }),
        }
    }

    /// One evaluation step: its time and length, the true demand (Mbps; a count of
    /// connections; NaN = no data) and the capacity in effect.
    #[inline]
    pub fn step(&mut self, t: i64, step_ms: u32, d_bw: f64, d_conn: f64, cap: [u32; 2]) {
        if self.batch.capacity() == 0 {
            self.batch.reserve_exact(BATCH);
        }
        self.batch.push(StepIn {
            t,
            step_ms,
            cap,
            d_bw,
            d_conn,
        });
        if self.batch.len() == BATCH {
            self.flush();
        }
    }

    /// Tallies the steps held (call once the replay is over, before reading figures).
    pub fn flush(&mut self) {
        let batch = std::mem::take(&mut self.batch);
        for s in &batch {
            self.tally(s.t, s.step_ms, s.d_bw, s.d_conn, s.cap);
        }
        self.batch = batch;
        self.batch.clear();
    }

    fn tally(&mut self, t: i64, step_ms: u32, d_bw: f64, d_conn: f64, cap: [u32; 2]) {
        let demand = [d_bw, d_conn / CONNECTIONS_PER_UNIT];
        if self.first.is_none() {
            self.first = Some((t, cap[0], cap[1]));
        }
        self.last = Some((t, step_ms));
        self.steps += 1;
        self.ms += f64::from(step_ms);
        let hours = f64::from(step_ms) / MS_PER_HOUR;
        // The oracle's values, the peak need, forecast hours.
        let mut oracle = [0u32; 2];
        for k in 0..2 {
            if demand[k].is_finite() {
                let need = demand[k] / self.target[k];
                self.oracle_prev[k] = cover(&self.allowed[k], need);
                self.peak[k] = self.peak[k].max(need);
            }
            oracle[k] = self.oracle_prev[k];
            self.forecast_step(k, t, demand[k]);
        }
        // The policy's and the oracle's timelines.
        let mut under = false;
        let mut under_oracle = false;
        for k in 0..2 {
            under |= self.policy.dims[k].add(f64::from(cap[k]), demand[k], hours);
            under_oracle |= self.oracle.dims[k].add(f64::from(oracle[k]), demand[k], hours);
        }
        self.policy.under_steps += u64::from(under);
        self.oracle.under_steps += u64::from(under_oracle);
        // The static candidates: each value's sums, and the first value not under.
        let mut first_ok = [0usize; 2];
        for k in 0..2 {
            let cands = if self.allowed[k].is_empty() {
                &[0u32][..]
            } else {
                &self.allowed[k][..]
            };
            let mut ok = cands.len();
            for (i, (sums, &v)) in self.statics[k].iter_mut().zip(cands).enumerate() {
                if !sums.add(f64::from(v), demand[k], hours) && ok == cands.len() {
                    ok = i;
                }
            }
            // Without data no value is under.
            first_ok[k] = if demand[k].is_finite() { ok } else { 0 };
        }
        let width = self.statics[1].len() + 1;
        self.static_under[first_ok[0] * width + first_ok[1]] += 1;
        if let Some(daily) = &self.daily {
            for (c, p) in [
                (&mut self.policy.cost, cap),
                (&mut self.oracle.cost, oracle),
            ] {
                if let Some(c) = c.as_mut() {
                    c.step(daily, t, step_ms, daily.day_charge(p[0], p[1]));
                }
            }
            let n1 = self.statics[1].len();
            let c0 = candidates(&self.allowed[0]);
            let c1 = candidates(&self.allowed[1]);
            for (i, &b) in c0.iter().enumerate() {
                for (j, &c) in c1.iter().enumerate() {
                    self.static_cost[i * n1 + j].step(daily, t, step_ms, daily.day_charge(b, c));
                }
            }
        }
        // Gaps (bandwidth), steps above the oracle, reaction latency.
        if d_bw.is_finite() {
            self.gap.1 = 0;
        } else {
            self.no_data_steps += 1;
            self.gap.1 += i64::from(step_ms);
            self.gap.0 = self.gap.0.max(self.gap.1);
        }
        let mut over = false;
        for k in 0..2 {
            if !self.managed[k] || !demand[k].is_finite() {
                continue;
            }
            over |= cap[k] > oracle[k];
            let (s, a) = (cap[k], oracle[k]);
            let (up_since, down_since) = &mut self.since[k];
            let [up, down] = &mut self.latency;
            match (s < a, *up_since) {
                (true, None) => *up_since = Some(t),
                (false, Some(t0)) => {
                    up.samples_ms.push(t - t0);
                    *up_since = None;
                }
                _ => {}
            }
            match (s > a, *down_since) {
                (true, None) => *down_since = Some(t),
                (false, Some(t0)) => {
                    down.samples_ms.push(t - t0);
                    *down_since = None;
                }
                _ => {}
            }
        }
        self.over_steps += u64::from(over);
        if let Some(chart) = &mut self.chart {
            let col = &mut chart.cols[chart.range.column(t)];
            for k in 0..2 {
                hi(&mut col[k * 4], demand[k]);
                lo(&mut col[k * 4 + 1], demand[k]);
                hi(&mut col[k * 4 + 2], f64::from(cap[k]));
                hi(&mut col[k * 4 + 3], f64::from(oracle[k]));
            }
        }
    }

    /// A seasonal forecast made at the last step for `hour` (dimension index `k`).
    pub fn forecast(&mut self, k: usize, hour: i64, need: f64) {
        // The steps still in the batch are at or before this forecast's evaluation: they
        // close hours before its hour, never its own, so it may be recorded first.
        let e = self.forecast[k].pending.entry(hour).or_insert((0.0, 0));
        e.0 += need;
        e.1 += 1;
    }

    /// Records the step's need in its hour; closes the hours before it.
    fn forecast_step(&mut self, k: usize, t: i64, demand: f64) {
        let hour = t.div_euclid(HOUR_MS) * HOUR_MS;
        if self.forecast[k].hour.is_some_and(|h| h < hour) {
            close_hours(&mut self.forecast[k], k, hour, &mut self.forecast_acc);
        }
        let f = &mut self.forecast[k];
        f.hour = Some(hour);
        if demand.is_finite() {
            let h = f.highs.entry(hour).or_insert(0.0);
            *h = h.max(demand / self.target[k]);
        }
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }
    /// The first step's capacity (bandwidth, concurrent), if any step.
    pub fn first_capacity(&self) -> Option<(u32, u32)> {
        self.first.map(|(_, b, c)| (b, c))
    }
    /// The first step's time, the last step's time and length.
    pub fn span(&self) -> Option<(i64, i64, u32)> {
        Some((self.first?.0, self.last?.0, self.last?.1))
    }
    pub fn chart(&self) -> Option<&Chart> {
        self.chart.as_ref()
    }
    /// The static baseline's value for a dimension (the candidate covering the peak need).
    pub fn static_value(&self, d: Dim) -> u32 {
        let k = match d {
            Dim::Bandwidth => 0,
            Dim::Concurrent => 1,
        };
        cover(&self.allowed[k], self.peak[k])
    }
    fn static_index(&self, k: usize) -> usize {
        let v = cover(&self.allowed[k], self.peak[k]);
        candidates(&self.allowed[k])
            .iter()
            .position(|&c| c == v)
            .unwrap_or(0)
    }

    /// The figures, once every step is in: (policy, static, oracle).
    pub(super) fn figures(&self) -> (Figures, Figures, Figures) {
        let daily = self.daily.as_ref();
        let (i, j) = (self.static_index(0), self.static_index(1));
        let width = self.statics[1].len() + 1;
        let mut under = 0;
        for (r0, row) in self.static_under.chunks(width).enumerate() {
            for (r1, n) in row.iter().enumerate() {
                if r0 > i || r1 > j {
                    under += n;
                }
            }
        }
        let st = figures_of(
            &[self.statics[0][i], self.statics[1][j]],
            self.steps,
            under,
            daily,
            self.static_cost.get(i * self.statics[1].len() + j),
        );
        (
            self.policy.figures(self.steps, daily),
            st,
            self.oracle.figures(self.steps, daily),
        )
    }

    pub(super) fn days_ms(&self) -> f64 {
        self.ms
    }
    pub(super) fn no_data_steps(&self) -> u64 {
        self.no_data_steps
    }
    pub(super) fn longest_gap_ms(&self) -> i64 {
        self.gap.0
    }
    pub(super) fn over_steps(&self) -> u64 {
        self.over_steps
    }
    /// Reaction latency (up, down), open episodes counted.
    pub(super) fn latency(&self) -> (Latency, Latency) {
        let [mut up, mut down] = self.latency.clone();
        for k in 0..2 {
            up.open += u64::from(self.since[k].0.is_some());
            down.open += u64::from(self.since[k].1.is_some());
        }
        (up, down)
    }
    /// Forecast accuracy over every hour (the pending ones closed).
    pub(super) fn forecast_accuracy(&self) -> Option<ForecastAccuracy> {
        let mut acc = self.forecast_acc.clone();
        let mut f = self.forecast.clone();
        close_hours(&mut f[0], 0, i64::MAX, &mut acc);
        close_hours(&mut f[1], 1, i64::MAX, &mut acc);
        for &(a, d, x) in &f[1].terms {
            acc.hours += 1;
            acc.abs_sum += a;
            acc.diff_sum += d;
            acc.actual_sum += x;
        }
        (acc.hours > 0).then(|| {
            acc.finish();
            acc
        })
    }
}

/// Folds the forecasts of the hours before `until` of dimension `k`: the bandwidth's into
/// `acc` at once, the concurrent's kept as terms (summed after every bandwidth hour).
fn close_hours(f: &mut ForecastDim, k: usize, until: i64, acc: &mut ForecastAccuracy) {
    while let Some((&hour, &(sum, n))) = f.pending.first_key_value() {
        if hour >= until {
            break;
        }
        f.pending.pop_first();
        if let Some(&actual) = f.highs.get(&hour).filter(|&&a| a > 0.0) {
            let diff = sum / f64::from(n) - actual;
            let term = (diff.abs() / actual, diff, actual);
            if k == 0 {
                acc.hours += 1;
                acc.abs_sum += term.0;
                acc.diff_sum += term.1;
                acc.actual_sum += term.2;
            } else {
                f.terms.push(term);
            }
        }
    }
    while f.highs.first_key_value().is_some_and(|(&h, _)| h < until) {
        f.highs.pop_first();
    }
}
