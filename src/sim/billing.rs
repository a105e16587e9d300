//! GAAP's per-day billing (`--prices` with a `[daily]` table): each connection is billed
//! per billing day by its specification, a connection fee from a concurrency × bandwidth
//! matrix plus a bandwidth fee per Mbps per day by tier (reference/tencent-api.md,
//! InquiryPriceCreateProxy: `ProxyDailyPrice` and `BandwidthUnitPrice`). A day in which the
//! specification changed is charged by `period_charge`: `max` (the day's most expensive
//! specification, as a daily bill reads) or `time-weighted` (each specification for the
//! share of the day it was in effect). Pure: a capacity timeline in, a cost out.

use std::collections::BTreeMap;

use chrono::Offset;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeriodCharge {
    #[default]
    Max,
    TimeWeighted,
}

/// One bandwidth tier: the price per Mbps per day of a bandwidth in `(from, to]`
/// (`to = -1`: unbounded; the first tier also takes `from` itself).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub from: f64,
    pub to: f64,
    pub price: f64,
}

/// The `[daily]` table of a price file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DailyPrices {
    #[serde(default)]
    pub period_charge: PeriodCharge,
    /// Offset of the billing day from UTC, hours (default 8: China Standard Time).
    #[serde(default = "default_offset")]
    pub utc_offset_hours: i32,
    /// The bandwidth columns of the connection-fee matrix (Mbps, ascending).
    pub bandwidth: Vec<u32>,
    /// Connection fee per day: concurrent units (as a string key, e.g. `"2"`) → one fee per
    /// bandwidth column. A specification takes the first row and column at or above it.
    pub connection: BTreeMap<String, Vec<f64>>,
    /// Bandwidth fee per Mbps per day by tier.
    #[serde(default)]
    pub bandwidth_tiers: Vec<Tier>,
}

fn default_offset() -> i32 {
    8
}

const DAY_MS: i64 = 86_400_000;

impl DailyPrices {
    /// Every problem of the table, in words (empty: valid).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.bandwidth.is_empty() || !self.bandwidth.windows(2).all(|w| w[0] < w[1]) {
            out.push("`daily.bandwidth` must list ascending bandwidth columns (Mbps)".into());
        }
        if self.connection.is_empty() {
            out.push(
                "`daily.connection` needs at least one row (concurrent units = [fees])".into(),
            );
        }
        for (k, row) in &self.connection {
            if k.parse::<u32>().is_err() {
                out.push(format!(
                    "`daily.connection` row `{k}` is not a number of concurrent units"
                ));
            }
            if row.len() != self.bandwidth.len() {
                out.push(format!(
                    "`daily.connection.{k}` has {} fees for {} bandwidth columns",
                    row.len(),
                    self.bandwidth.len()
                ));
            }
            if row.iter().any(|v| !v.is_finite() || *v < 0.0) {
                out.push(format!(
                    "`daily.connection.{k}` has a negative or non-numeric fee"
                ));
            }
        }
        for t in &self.bandwidth_tiers {
            if !(t.price.is_finite() && t.price >= 0.0) || (t.to != -1.0 && t.to < t.from) {
                out.push(format!(
                    "bandwidth tier ({}, {}] at {}: the price must be ≥ 0 and `to` ≥ `from` (or -1)",
                    t.from, t.to, t.price
                ));
            }
        }
        if !(-12..=14).contains(&self.utc_offset_hours) {
            out.push(format!(
                "`daily.utc_offset_hours` = {} is not a UTC offset",
                self.utc_offset_hours
            ));
        }
        out
    }

    /// The charge for one day of a specification.
    pub fn day_charge(&self, bandwidth: u32, concurrent: u32) -> f64 {
        let col = self
            .bandwidth
            .iter()
            .position(|&b| b >= bandwidth)
            .unwrap_or(self.bandwidth.len().saturating_sub(1));
        let row = self
            .connection
            .iter()
            .filter_map(|(k, r)| k.parse::<u32>().ok().map(|c| (c, r)))
            .filter(|(c, _)| *c >= concurrent)
            .min_by_key(|(c, _)| *c)
            .or_else(|| {
                self.connection
                    .iter()
                    .filter_map(|(k, r)| k.parse::<u32>().ok().map(|c| (c, r)))
                    .max_by_key(|(c, _)| *c)
            })
            .map(|(_, r)| r);
        let connection = row.and_then(|r| r.get(col)).copied().unwrap_or(0.0);
        let bw = f64::from(bandwidth);
        let tier = self
            .bandwidth_tiers
            .iter()
            .enumerate()
            .find(|(i, t)| {
                (bw > t.from || (*i == 0 && bw >= t.from)) && (t.to == -1.0 || bw <= t.to)
            })
            .map_or(0.0, |(_, t)| t.price);
        connection + bw * tier
    }

    /// The cost of a timeline: `times[i]` (Unix ms) starts a step of `step_ms[i]` with the
    /// specification `spec(i)`. A day partly covered is charged for the covered share.
    pub fn cost(&self, times: &[i64], step_ms: &[u32], spec: impl Fn(usize) -> (u32, u32)) -> f64 {
        let mut acc = DayCost::default();
        for i in 0..times.len() {
            let (bw, cc) = spec(i);
            acc.step(self, times[i], step_ms[i], self.day_charge(bw, cc));
        }
        acc.total(self)
    }
}

/// [`DailyPrices::cost`] one step at a time (the streaming replay's figures): the same
/// operations in the same order, so the same total to the bit.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DayCost {
    /// The current billing day: (day, covered ms, the highest charge seen, time-weighted sum).
    cur: Option<(i64, i64, f64, f64)>,
    total: f64,
}

impl DayCost {
    /// One step from `t` lasting `step_ms` at `charge` (a [`DailyPrices::day_charge`]).
    pub fn step(&mut self, prices: &DailyPrices, t: i64, step_ms: u32, charge: f64) {
        let offset = prices.offset();
        let day_of = |t: i64| (t + i64::from(offset.local_minus_utc()) * 1000).div_euclid(DAY_MS);
        let (mut t, end) = (t, t + i64::from(step_ms));
        while t < end {
            let day = day_of(t);
            let day_end = (day + 1) * DAY_MS - i64::from(offset.local_minus_utc()) * 1000;
            let part = end.min(day_end) - t;
            match self.cur.as_mut() {
                Some(c) if c.0 == day => {}
                _ => {
                    if let Some(c) = self.cur.take() {
                        self.total += prices.close(c);
                    }
                    self.cur = Some((day, 0, 0.0, 0.0));
                }
            }
            let c = self.cur.as_mut().expect("set above");
            c.1 += part;
            c.2 = c.2.max(charge);
            c.3 += charge * part as f64 / DAY_MS as f64;
            t += part;
        }
    }
    /// The total with the current day closed.
    pub fn total(&self, prices: &DailyPrices) -> f64 {
        let mut total = self.total;
        if let Some(c) = self.cur {
            total += prices.close(c);
        }
        total
    }
}

impl DailyPrices {
    fn offset(&self) -> chrono::FixedOffset {
        chrono::FixedOffset::east_opt(self.utc_offset_hours * 3600)
            .unwrap_or_else(|| chrono::Utc.fix())
    }
    fn close(&self, c: (i64, i64, f64, f64)) -> f64 {
        match self.period_charge {
            PeriodCharge::Max => c.2 * c.1 as f64 / DAY_MS as f64,
            PeriodCharge::TimeWeighted => c.3,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documentation example's shape: tiers (0,20]:130, (20,100]:90, (100,500]:70,
    /// (500,2000]:60, (2000,∞):50; a connection fee of 80.64 for 2 units at 10 Mbps.
    fn example(period_charge: PeriodCharge) -> DailyPrices {
        DailyPrices {
            period_charge,
            utc_offset_hours: 8,
            bandwidth: vec![10, 20, 50, 100],
            connection: BTreeMap::from([
                ("2".to_string(), vec![80.64, 90.0, 100.0, 120.0]),
                ("5".to_string(), vec![150.0, 160.0, 170.0, 200.0]),
            ]),
            bandwidth_tiers: vec![
                Tier {
                    from: 0.0,
                    to: 20.0,
                    price: 130.0,
                },
                Tier {
                    from: 20.0,
                    to: 100.0,
                    price: 90.0,
                },
                Tier {
                    from: 100.0,
                    to: 500.0,
                    price: 70.0,
                },
                Tier {
                    from: 500.0,
                    to: 2000.0,
                    price: 60.0,
                },
                Tier {
                    from: 2000.0,
                    to: -1.0,
                    price: 50.0,
                },
            ],
        }
    }

    #[test]
    fn a_day_of_one_specification() {
        let p = example(PeriodCharge::Max);
        // (bandwidth, concurrent, charge)
        let cases = [
            (10, 2, 80.64 + 10.0 * 130.0),
            (20, 2, 90.0 + 20.0 * 130.0), // 20 is in the first tier (0, 20]
            (50, 2, 100.0 + 50.0 * 90.0),
            (30, 3, 170.0 + 30.0 * 90.0), // row 5 (first ≥ 3), column 50 (first ≥ 30)
            (200, 9, 200.0 + 200.0 * 70.0), // past the matrix: the last row and column
        ];
        for (bw, cc, want) in cases {
            assert!((p.day_charge(bw, cc) - want).abs() < 1e-9, "{bw}/{cc}");
        }
        assert!(p.problems().is_empty());
    }

    #[test]
    fn a_day_with_a_change_is_charged_by_period_charge() {
        const H: i64 = 3_600_000;
        // A billing day in UTC+8 starts at 16:00Z. Two days: 10 Mbps all day 1 but one
        // hour at 50; day 2 at 10 Mbps.
        let start = 1_796_054_400_000; // 2026-11-30T16:00:00Z = Dec 1 00:00 +08
        let times: Vec<i64> = (0..48).map(|h| start + h * H).collect();
        let steps = vec![H as u32; 48];
        let spec = |i: usize| if i == 5 { (50, 2) } else { (10, 2) };
        let low = 80.64 + 1300.0;
        let high = 100.0 + 50.0 * 90.0;
        let max = example(PeriodCharge::Max).cost(&times, &steps, spec);
        assert!((max - (high + low)).abs() < 1e-6, "{max}");
        let tw = example(PeriodCharge::TimeWeighted).cost(&times, &steps, spec);
        assert!(
            (tw - (low * 23.0 / 24.0 + high / 24.0 + low)).abs() < 1e-6,
            "{tw}"
        );
        // Half a day covered: half the day's charge.
        let half = example(PeriodCharge::Max).cost(&times[..12], &steps[..12], |_| (10, 2));
        assert!((half - low / 2.0).abs() < 1e-6, "{half}");
    }

    #[test]
    fn problems_are_named() {
        let mut p = example(PeriodCharge::Max);
        p.connection.insert("x".into(), vec![1.0]);
        p.bandwidth_tiers.push(Tier {
            from: 5.0,
            to: 1.0,
            price: -1.0,
        });
        let text = p.problems().join("\n");
        assert!(text.contains("row `x` is not a number"), "{text}");
        assert!(
            text.contains("has 1 fees for 4 bandwidth columns"),
            "{text}"
        );
        assert!(text.contains("bandwidth tier (5, 1]"), "{text}");
    }
}
