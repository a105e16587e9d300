//! The seasonal recommender's memory (issue 13, `[predictive]`): for one proxy and
//! dimension, the highest need seen in each hour of the day (UTC) on each of the last N
//! days. The forecast for a time is a quantile of that hour's daily highs. Plain data in
//! the controller state, persisted with it; learned online, one evaluation at a time.

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

const HOURS: usize = 24;
const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// A forecast needs at least this many days with a high for its hour.
pub const MIN_DAYS: usize = 3;

/// Slot `hour * N + day % N` holds `(day, high)`: the high of that hour on that day (Unix
/// days; `u32::MAX` = empty). An hour's N days sit side by side, so recording and
/// forecasting touch one or two cache lines (the replay decides for each proxy in turn,
/// with a cold cache).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Season {
    pub slots: Vec<(u32, f32)>,
}

fn day_hour(at: Timestamp) -> (u32, usize) {
    let ms = at.millis();
    let day = ms.div_euclid(DAY_MS).clamp(0, i64::from(u32::MAX - 1)) as u32;
    let hour = (ms.rem_euclid(DAY_MS) / HOUR_MS) as usize;
    (day, hour)
}

impl Season {
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Records `need` (capacity units) seen at `at`, keeping `lookback_days` days.
    pub fn record(&mut self, at: Timestamp, need: f64, lookback_days: usize) {
        let n = lookback_days.max(1);
        if self.slots.len() != n * HOURS {
            self.slots = vec![(u32::MAX, 0.0); n * HOURS];
        }
        let (day, hour) = day_hour(at);
        let slot = &mut self.slots[hour * n + day as usize % n];
        let v = need as f32;
        if slot.0 != day {
            *slot = (day, v);
        } else if v > slot.1 {
            slot.1 = v;
        }
    }

    /// The `quantile` of the daily highs of `at`'s hour over the days kept up to `at`'s
    /// day; None with fewer than [`MIN_DAYS`] of them.
    pub fn forecast(&self, at: Timestamp, quantile: f64) -> Option<f64> {
        let n = self.slots.len() / HOURS;
        if n == 0 {
            return None;
        }
        let (day, hour) = day_hour(at);
        let oldest = day.saturating_sub(n as u32);
        let mut vals = [0f32; crate::policy::MAX_LOOKBACK_DAYS as usize];
        let mut k = 0;
        for &(sd, high) in &self.slots[hour * n..(hour + 1) * n] {
            if sd != u32::MAX && sd > oldest && sd <= day && k < vals.len() {
                vals[k] = high;
                k += 1;
            }
        }
        if k < MIN_DAYS {
            return None;
        }
        let vals = &mut vals[..k];
        vals.sort_unstable_by(f32::total_cmp);
        // Nearest rank: the smallest value with at least `quantile` of them at or below.
        let rank = ((quantile.clamp(0.0, 1.0) * k as f64).ceil() as usize).clamp(1, k);
        Some(f64::from(vals[rank - 1]))
    }
}

/// Warms the seasonal memory of one dimension from history (the samples before the first
/// evaluation: `simulate` from the data before `--start`, the daemon from a range query at
/// start-up): each sample's need, as the target-tracking stage computes it, is recorded.
/// Does nothing unless `[predictive]` is on and the dimension tracks a target. Pure.
pub fn warm_up(
    policy: &crate::policy::Policy,
    dim: super::Dim,
    state: &mut super::DimState,
    samples: impl IntoIterator<Item = (Timestamp, f64)>,
) {
    use crate::policy::{PredictiveMode, Rule};
    if policy.predictive.mode == PredictiveMode::Off {
        return;
    }
    let Some(Rule::TargetTracking { target_utilization }) = policy.dimension(dim).map(|c| &c.rule)
    else {
        return;
    };
    let unit = match dim {
        super::Dim::Bandwidth => 1.0,
        super::Dim::Concurrent => 10_000.0,
    };
    let days = (policy.predictive.lookback.as_secs() / 86_400) as usize;
    for (at, demand) in samples {
        if demand.is_finite() && demand >= 0.0 {
            state
                .season
                .record(at, demand / (unit * target_utilization), days);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_788_739_200_000; // 2026-09-07T00:00:00Z, a Monday

    fn at(day: i64, hour: i64, min: i64) -> Timestamp {
        Timestamp(T0 + day * DAY_MS + hour * HOUR_MS + min * 60_000)
    }

    #[test]
    fn forecasts_are_quantiles_of_an_hours_daily_highs() {
        let mut s = Season::default();
        // Hour 9 on days 0..5: highs 10, 20, 30, 40, 50 (two samples each, the high kept).
        for d in 0..5 {
            s.record(at(d, 9, 5), 1.0, 7);
            s.record(at(d, 9, 40), 10.0 * (d + 1) as f64, 7);
        }
        // (time, quantile, forecast)
        let cases = [
            (at(5, 9, 0), 1.0, Some(50.0)),
            (at(5, 9, 0), 0.5, Some(30.0)),
            (at(5, 9, 0), 0.8, Some(40.0)),
            (at(5, 9, 0), 0.0, Some(10.0)),
            (at(5, 10, 0), 1.0, None), // no history for hour 10
            (at(1, 9, 0), 1.0, None),  // only days 0 and 1 are not after day 1
            (at(2, 9, 0), 1.0, Some(30.0)),
            // 7 days kept: on day 10 only days 4..=10 count (day 4's high: 50).
            (at(10, 9, 0), 1.0, None),
        ];
        for (t, q, want) in cases {
            assert_eq!(s.forecast(t, q), want, "at {t:?}, q {q}");
        }
    }

    #[test]
    fn an_old_day_is_replaced_not_mixed() {
        let mut s = Season::default();
        for d in 0..3 {
            s.record(at(d, 0, 0), 100.0, 3);
        }
        // Day 3 reuses day 0's slot: its high starts over.
        s.record(at(3, 0, 0), 5.0, 3);
        assert_eq!(s.forecast(at(3, 0, 30), 0.0), Some(5.0));
        assert_eq!(s.forecast(at(3, 0, 30), 1.0), Some(100.0));
        // A different lookback resets the memory.
        s.record(at(3, 0, 0), 7.0, 4);
        assert_eq!(s.forecast(at(3, 0, 30), 1.0), None);
    }

    #[test]
    fn warm_up_records_the_need_of_history_only_when_predictive_is_on() {
        use crate::policy::PredictiveMode;
        let mut p = crate::core::fixtures::policy();
        let history: Vec<(Timestamp, f64)> = (0..4)
            .map(|d| (at(d, 9, 10), 70.0)) // 70 Mbps at 0.7: need 100
            .chain([(at(3, 9, 20), f64::NAN)])
            .collect();
        let mut off = crate::core::DimState::default();
        warm_up(&p, crate::core::Dim::Bandwidth, &mut off, history.clone());
        assert!(off.season.is_empty(), "predictive off: nothing learned");
        p.predictive.mode = PredictiveMode::ForecastOnly;
        let mut st = crate::core::DimState::default();
        warm_up(&p, crate::core::Dim::Bandwidth, &mut st, history.clone());
        assert_eq!(st.season.forecast(at(4, 9, 0), 1.0), Some(100.0));
        // Connections in units of 10,000: 35,000 at 0.7 → 5.
        let conns: Vec<(Timestamp, f64)> = (0..3).map(|d| (at(d, 9, 0), 35_000.0)).collect();
        let mut cc = crate::core::DimState::default();
        warm_up(&p, crate::core::Dim::Concurrent, &mut cc, conns);
        assert_eq!(cc.season.forecast(at(3, 9, 0), 1.0), Some(5.0));
    }
}
