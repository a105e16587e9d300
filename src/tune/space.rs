//! What `tune` may change in a policy: its keys, the values tried for each, and how a
//! point of the search space becomes a policy (pure).

use std::time::Duration;

use crate::policy::{Policy, PredictiveMode, Rule};
use crate::time::format_duration;

/// One tunable key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Knob {
    UpTolerance,
    UpStabilization,
    UpMaxSteps,
    UpCooldown,
    DownTolerance,
    DownStabilization,
    DownMaxSteps,
    DownCooldown,
    BandwidthTarget,
    ConcurrentTarget,
    PredictiveQuantile,
    PredictiveLead,
}

/// A value of a key.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Setting {
    Ratio(f64),
    Duration(Duration),
    Steps(u32),
}

impl Setting {
    fn sort_value(self) -> f64 {
        match self {
            Setting::Ratio(x) => x,
            Setting::Duration(d) => d.as_secs_f64(),
            Setting::Steps(n) => f64::from(n),
        }
    }

    /// As written in a policy file.
    pub fn toml(self) -> toml_edit::Value {
        match self {
            Setting::Ratio(x) => toml_edit::Value::from((x * 1e6).round() / 1e6),
            Setting::Duration(d) => toml_edit::Value::from(format_duration(d)),
            Setting::Steps(n) => toml_edit::Value::from(i64::from(n)),
        }
    }

    pub fn json(self) -> serde_json::Value {
        match self {
            Setting::Ratio(x) => serde_json::json!((x * 1e6).round() / 1e6),
            Setting::Duration(d) => serde_json::json!(format_duration(d)),
            Setting::Steps(n) => serde_json::json!(n),
        }
    }
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Setting::Ratio(x) => write!(f, "{}", (x * 1e6).round() / 1e6),
            Setting::Duration(d) => f.write_str(&format_duration(*d)),
            Setting::Steps(n) => write!(f, "{n}"),
        }
    }
}

fn mins(m: &[u64]) -> Vec<Setting> {
    m.iter()
        .map(|&m| Setting::Duration(Duration::from_secs(m * 60)))
        .collect()
}

fn ratios(r: &[f64]) -> Vec<Setting> {
    r.iter().map(|&x| Setting::Ratio(x)).collect()
}

impl Knob {
    pub const ALL: [Knob; 12] = [
        Knob::UpTolerance,
        Knob::UpStabilization,
        Knob::UpMaxSteps,
        Knob::UpCooldown,
        Knob::DownTolerance,
        Knob::DownStabilization,
        Knob::DownMaxSteps,
        Knob::DownCooldown,
        Knob::BandwidthTarget,
        Knob::ConcurrentTarget,
        Knob::PredictiveQuantile,
        Knob::PredictiveLead,
    ];

    /// The key's dotted path in a policy file.
    pub fn key(self) -> &'static str {
        match self {
            Knob::UpTolerance => "behavior.scale_up.tolerance",
            Knob::UpStabilization => "behavior.scale_up.stabilization",
            Knob::UpMaxSteps => "behavior.scale_up.max_steps",
            Knob::UpCooldown => "behavior.scale_up.cooldown",
            Knob::DownTolerance => "behavior.scale_down.tolerance",
            Knob::DownStabilization => "behavior.scale_down.stabilization",
            Knob::DownMaxSteps => "behavior.scale_down.max_steps",
            Knob::DownCooldown => "behavior.scale_down.cooldown",
            Knob::BandwidthTarget => "bandwidth.target_utilization",
            Knob::ConcurrentTarget => "concurrent.target_utilization",
            Knob::PredictiveQuantile => "predictive.quantile",
            Knob::PredictiveLead => "predictive.lead",
        }
    }

    pub fn parse(key: &str) -> Option<Knob> {
        Knob::ALL.into_iter().find(|k| k.key() == key)
    }

    /// The values tried (the policy's own value is added to them).
    fn grid(self) -> Vec<Setting> {
        match self {
            // Up to 0.5 upward: scale-ups left to saturated readings, the lever on Mbps·h
            // found on the real traces (README "Decision quality").
            Knob::UpTolerance => ratios(&[0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5]),
            Knob::DownTolerance => ratios(&[0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3]),
            Knob::UpStabilization => mins(&[0, 1, 2, 5, 10]),
            Knob::DownStabilization => mins(&[0, 5, 10, 20, 30, 60, 100, 120, 180, 240, 360]),
            Knob::UpMaxSteps => [1, 2, 3, 4].map(Setting::Steps).to_vec(),
            Knob::DownMaxSteps => [1, 2, 3, 6].map(Setting::Steps).to_vec(),
            Knob::UpCooldown => mins(&[0, 1, 2, 5, 10]),
            Knob::DownCooldown => mins(&[0, 5, 10, 30, 60, 120]),
            Knob::BandwidthTarget | Knob::ConcurrentTarget => {
                ratios(&[0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9])
            }
            Knob::PredictiveQuantile => ratios(&[0.5, 0.7, 0.8, 0.9, 0.95, 1.0]),
            Knob::PredictiveLead => mins(&[1, 2, 5, 10, 20]),
        }
    }

    /// The policy's value, or None when the key does not apply to it (a step-rule
    /// dimension has no target; `[predictive]` off has no quantile to tune).
    pub fn get(self, p: &Policy) -> Option<Setting> {
        let b = &p.behavior;
        let target = |d: &Option<crate::policy::Dimension>| match d.as_ref().map(|d| &d.rule) {
            Some(Rule::TargetTracking { target_utilization }) => {
                Some(Setting::Ratio(*target_utilization))
            }
            _ => None,
        };
        let predictive = p.predictive.mode != PredictiveMode::Off;
        Some(match self {
            Knob::UpTolerance => Setting::Ratio(b.scale_up.tolerance),
            Knob::UpStabilization => Setting::Duration(b.scale_up.stabilization),
            Knob::UpMaxSteps => Setting::Steps(b.scale_up.max_steps),
            Knob::UpCooldown => Setting::Duration(b.scale_up.cooldown),
            Knob::DownTolerance => Setting::Ratio(b.scale_down.tolerance),
            Knob::DownStabilization => Setting::Duration(b.scale_down.stabilization),
            Knob::DownMaxSteps => Setting::Steps(b.scale_down.max_steps),
            Knob::DownCooldown => Setting::Duration(b.scale_down.cooldown),
            Knob::BandwidthTarget => return target(&p.bandwidth),
            Knob::ConcurrentTarget => return target(&p.concurrent),
            Knob::PredictiveQuantile if predictive => Setting::Ratio(p.predictive.quantile),
            Knob::PredictiveLead if predictive => Setting::Duration(p.lead()),
            Knob::PredictiveQuantile | Knob::PredictiveLead => return None,
        })
    }

    /// Sets the key in `p` (a key that does not apply is left alone).
    pub fn set(self, p: &mut Policy, v: Setting) {
        let b = &mut p.behavior;
        match (self, v) {
            (Knob::UpTolerance, Setting::Ratio(x)) => b.scale_up.tolerance = x,
            (Knob::UpStabilization, Setting::Duration(d)) => b.scale_up.stabilization = d,
            (Knob::UpMaxSteps, Setting::Steps(n)) => b.scale_up.max_steps = n,
            (Knob::UpCooldown, Setting::Duration(d)) => b.scale_up.cooldown = d,
            (Knob::DownTolerance, Setting::Ratio(x)) => b.scale_down.tolerance = x,
            (Knob::DownStabilization, Setting::Duration(d)) => b.scale_down.stabilization = d,
            (Knob::DownMaxSteps, Setting::Steps(n)) => b.scale_down.max_steps = n,
            (Knob::DownCooldown, Setting::Duration(d)) => b.scale_down.cooldown = d,
            (Knob::BandwidthTarget | Knob::ConcurrentTarget, Setting::Ratio(x)) => {
                let dim = if self == Knob::BandwidthTarget {
                    &mut p.bandwidth
                } else {
                    &mut p.concurrent
                };
                if let Some(d) = dim.as_mut()
                    && let Rule::TargetTracking { target_utilization } = &mut d.rule
                {
                    *target_utilization = x;
                }
            }
            (Knob::PredictiveQuantile, Setting::Ratio(x)) => p.predictive.quantile = x,
            (Knob::PredictiveLead, Setting::Duration(d)) => p.predictive.lead = Some(d),
            _ => {}
        }
    }
}

/// The fewest `max_steps` a direction may have: the largest step-rule `change` in that
/// direction (fewer would cut the rules down, which `validate` warns about).
fn step_floor(p: &Policy, knob: Knob) -> u32 {
    let up = match knob {
        Knob::UpMaxSteps => true,
        Knob::DownMaxSteps => false,
        _ => return 0,
    };
    [&p.bandwidth, &p.concurrent]
        .into_iter()
        .flatten()
        .filter_map(|d| match &d.rule {
            Rule::Steps(rules) => Some(rules),
            Rule::TargetTracking { .. } => None,
        })
        .flatten()
        .filter(|r| (r.change > 0) == up && r.change != 0)
        .map(|r| r.change.unsigned_abs())
        .max()
        .unwrap_or(0)
}

/// One key of a space: the values tried, ascending, and the index of the policy's own.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub knob: Knob,
    pub values: Vec<Setting>,
    pub current: usize,
}

/// The keys tuned for one policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Space {
    pub axes: Vec<Axis>,
}

/// A point of a space: one value index per axis.
pub type Candidate = Vec<u8>;

impl Space {
    /// The keys of `p` among `keys` that apply to it, each with its grid and its current
    /// value. Without a price table the concurrent target is not tuned: without a price
    /// nothing weighs Concurrent·h against Mbps·h (it would only ever go down).
    pub fn of(p: &Policy, keys: &[Knob], priced: bool) -> Space {
        let mut axes = Vec::new();
        for &knob in keys {
            if knob == Knob::ConcurrentTarget && !priced {
                continue;
            }
            let Some(cur) = knob.get(p) else { continue };
            let floor = step_floor(p, knob);
            let mut values: Vec<Setting> = knob
                .grid()
                .into_iter()
                .filter(|v| !matches!(v, Setting::Steps(n) if *n < floor))
                .collect();
            if !values.contains(&cur) {
                values.push(cur);
            }
            values.sort_by(|a, b| a.sort_value().total_cmp(&b.sort_value()));
            let current = values.iter().position(|v| *v == cur).unwrap_or(0);
            axes.push(Axis {
                knob,
                values,
                current,
            });
        }
        Space { axes }
    }

    pub fn is_empty(&self) -> bool {
        self.axes.is_empty()
    }

    /// The policy's own settings.
    pub fn current(&self) -> Candidate {
        self.axes.iter().map(|a| a.current as u8).collect()
    }

    /// `base` with the settings of `c`.
    pub fn apply(&self, base: &Policy, c: &Candidate) -> Policy {
        let mut p = base.clone();
        for (axis, &i) in self.axes.iter().zip(c) {
            axis.knob.set(&mut p, axis.values[usize::from(i)]);
        }
        p
    }

    /// The settings of `c` that differ from the policy's own, as (key, value).
    pub fn changes(&self, c: &Candidate) -> Vec<(Knob, Setting)> {
        self.axes
            .iter()
            .zip(c)
            .filter(|(a, i)| usize::from(**i) != a.current)
            .map(|(a, &i)| (a.knob, a.values[usize::from(i)]))
            .collect()
    }

    /// Every setting of `c`, as (key, value).
    pub fn settings(&self, c: &Candidate) -> Vec<(Knob, Setting)> {
        self.axes
            .iter()
            .zip(c)
            .map(|(a, &i)| (a.knob, a.values[usize::from(i)]))
            .collect()
    }

    /// The candidates one value away from `c` on one axis (each axis down, then up).
    pub fn neighbours(&self, c: &Candidate) -> Vec<Candidate> {
        let mut out = Vec::new();
        for (k, axis) in self.axes.iter().enumerate() {
            let i = usize::from(c[k]);
            if i > 0 {
                let mut n = c.clone();
                n[k] -= 1;
                out.push(n);
            }
            if i + 1 < axis.values.len() {
                let mut n = c.clone();
                n[k] += 1;
                out.push(n);
            }
        }
        out
    }

    /// Every candidate that differs from `c` on one axis.
    pub fn one_at_a_time(&self, c: &Candidate) -> Vec<Candidate> {
        let mut out = Vec::new();
        for (k, axis) in self.axes.iter().enumerate() {
            for i in 0..axis.values.len() {
                if i != usize::from(c[k]) {
                    let mut n = c.clone();
                    n[k] = i as u8;
                    out.push(n);
                }
            }
        }
        out
    }

    /// `base` with every axis on which `other` differs from the policy's own value set to
    /// `other`'s value.
    pub fn overlay(&self, base: &Candidate, other: &Candidate) -> Candidate {
        self.axes
            .iter()
            .zip(base.iter().zip(other))
            .map(|(a, (&b, &o))| if usize::from(o) != a.current { o } else { b })
            .collect()
    }

    /// A uniformly drawn candidate.
    pub fn random(&self, rng: &mut crate::sim::synthetic::SplitMix64) -> Candidate {
        self.axes
            .iter()
            .map(|a| (rng.next_u64() % a.values.len() as u64) as u8)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_space_holds_the_policy_s_own_values_and_applies_them_back() {
        let mut p = crate::core::fixtures::policy();
        p.behavior.scale_down.stabilization = Duration::from_secs(7 * 60);
        let space = Space::of(&p, &Knob::ALL, false);
        // Predictive is off and there is no price table: those keys are left out.
        let keys: Vec<&str> = space.axes.iter().map(|a| a.knob.key()).collect();
        assert!(!keys.contains(&"predictive.quantile"));
        assert!(!keys.contains(&"concurrent.target_utilization"));
        assert!(keys.contains(&"behavior.scale_down.stabilization"));
        let cur = space.current();
        assert!(space.changes(&cur).is_empty());
        let again = space.apply(&p, &cur);
        assert_eq!(again.behavior, p.behavior);
        // 7m is not in the grid: it is added, in order.
        let axis = space
            .axes
            .iter()
            .find(|a| a.knob == Knob::DownStabilization)
            .unwrap();
        assert_eq!(
            axis.values[axis.current],
            Setting::Duration(Duration::from_secs(420))
        );
        assert_eq!(
            axis.values[axis.current - 1],
            Setting::Duration(Duration::from_secs(300))
        );
        // An overlay takes the other's own changes and keeps the rest.
        let mut a = cur.clone();
        a[0] = (a[0] + 1) % space.axes[0].values.len() as u8;
        let mut b = cur.clone();
        b[1] = (b[1] + 1) % space.axes[1].values.len() as u8;
        let both = space.overlay(&a, &b);
        assert_eq!((both[0], both[1]), (a[0], b[1]));
        assert_eq!(&both[2..], &cur[2..]);
        // Every neighbour differs on exactly one axis by one value.
        for n in space.neighbours(&cur) {
            let diff: Vec<i32> = n
                .iter()
                .zip(&cur)
                .map(|(a, b)| i32::from(*a) - i32::from(*b))
                .filter(|d| *d != 0)
                .collect();
            assert!(diff == [1] || diff == [-1], "{diff:?}");
        }
    }
}
