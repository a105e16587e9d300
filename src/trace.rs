//! A metric history in memory: per (proxy, signal), samples in ascending time order.
//! Filled from a CSV export, the synthetic generator or Prometheus range queries; read by
//! the simulation with the same "latest sample not after t and not older than max_age"
//! rule the daemon applies to instant queries.

use std::collections::BTreeMap;

use crate::core::{NoData, Reading};
use crate::time::Timestamp;

/// Samples of one series, ascending by time (equal times: the last one wins on lookup).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    pub times: Vec<i64>,
    pub values: Vec<f64>,
}

impl Series {
    pub fn push(&mut self, t: Timestamp, v: f64) {
        self.times.push(t.millis());
        self.values.push(v);
    }
    pub fn len(&self) -> usize {
        self.times.len()
    }
    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }
    /// The reading at `now`: the latest sample not after `now`, classified (NaN, Inf,
    /// negative, older than `max_age_ms` → no data).
    pub fn reading_at(&self, now: Timestamp, max_age_ms: i64) -> Reading {
        let idx = self.times.partition_point(|&t| t <= now.millis());
        if idx == 0 {
            return Reading::Missing {
                reason: NoData::NoSeries,
            };
        }
        Reading::classify(
            self.values[idx - 1],
            Timestamp(self.times[idx - 1]),
            now,
            max_age_ms,
        )
    }

    /// [`Series::reading_at`] for evaluation times visited in ascending order: `cursor`
    /// keeps the position between calls, so a whole replay reads each sample once.
    pub fn reading_from(&self, cursor: &mut usize, now: Timestamp, max_age_ms: i64) -> Reading {
        let n = now.millis();
        let mut i = *cursor;
        while i < self.times.len() && self.times[i] <= n {
            i += 1;
        }
        *cursor = i;
        if i == 0 {
            return Reading::Missing {
                reason: NoData::NoSeries,
            };
        }
        Reading::classify(
            self.values[i - 1],
            Timestamp(self.times[i - 1]),
            now,
            max_age_ms,
        )
    }
}

/// All series of a history, keyed by (proxy id, signal name).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trace {
    pub series: BTreeMap<(String, String), Series>,
}

impl Trace {
    pub fn series(&self, proxy: &str, signal: &str) -> Option<&Series> {
        self.series.get(&(proxy.to_string(), signal.to_string()))
    }
    pub fn series_mut(&mut self, proxy: &str, signal: &str) -> &mut Series {
        self.series
            .entry((proxy.to_string(), signal.to_string()))
            .or_default()
    }
    /// Earliest and latest sample time over all series.
    pub fn span(&self) -> Option<(Timestamp, Timestamp)> {
        let first = self.series.values().filter_map(|s| s.times.first()).min()?;
        let last = self.series.values().filter_map(|s| s.times.last()).max()?;
        Some((Timestamp(*first), Timestamp(*last)))
    }
    pub fn sample_count(&self) -> usize {
        self.series.values().map(Series::len).sum()
    }
}
