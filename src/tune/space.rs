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
    BandwidthHold,
    ConcurrentHold,
    BandwidthWorth,
    ConcurrentWorth,
    PredictiveQuantile,
    PredictiveLead,
}

/// A value of a key.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Setting {
    Ratio(f64),
    Duration(Duration),
    Steps(u32),
    /// A quantity of capacity·hours (`change_worth`): written as an integer when whole.
    Amount(f64),
    /// The key left out, for its default: `change_worth` off (every scale-down waits the
    /// whole window), `hold_utilization` at the target.
    Off,
}

/// `x` rounded to 6 decimals (as written and shown).
fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

impl Setting {
    /// The order of a key's values. `Off` is where its default behaves: no
    /// `change_worth` is an endless worth (last), no `hold_utilization` holds at the
    /// target (first).
    fn sort_value(self, knob: Knob) -> f64 {
        match self {
            Setting::Ratio(x) | Setting::Amount(x) => x,
            Setting::Duration(d) => d.as_secs_f64(),
            Setting::Steps(n) => f64::from(n),
            Setting::Off if knob.is_worth() => f64::INFINITY,
            Setting::Off => f64::NEG_INFINITY,
        }
    }

    /// As written in a policy file; None: the key is removed.
    pub fn toml(self) -> Option<toml_edit::Value> {
        Some(match self {
            Setting::Ratio(x) => toml_edit::Value::from(round6(x)),
            Setting::Duration(d) => toml_edit::Value::from(format_duration(d)),
            Setting::Steps(n) => toml_edit::Value::from(i64::from(n)),
            Setting::Amount(x) if x.fract() == 0.0 && x.abs() < 9e15 => {
                toml_edit::Value::from(x as i64)
            }
            Setting::Amount(x) => toml_edit::Value::from(round6(x)),
            Setting::Off => return None,
        })
    }

    /// As shown in `--json`: `null` for the key left out.
    pub fn json(self) -> serde_json::Value {
        match self {
            Setting::Ratio(x) | Setting::Amount(x) => serde_json::json!(round6(x)),
            Setting::Duration(d) => serde_json::json!(format_duration(d)),
            Setting::Steps(n) => serde_json::json!(n),
            Setting::Off => serde_json::Value::Null,
        }
    }
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Setting::Ratio(x) | Setting::Amount(x) => write!(f, "{}", round6(*x)),
            Setting::Duration(d) => f.write_str(&format_duration(*d)),
            Setting::Steps(n) => write!(f, "{n}"),
            Setting::Off => f.write_str("off"),
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

/// `Off` and the given amounts.
fn amounts(a: &[f64]) -> Vec<Setting> {
    std::iter::once(Setting::Off)
        .chain(a.iter().map(|&x| Setting::Amount(x)))
        .collect()
}

impl Knob {
    pub const ALL: [Knob; 16] = [
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
        Knob::BandwidthHold,
        Knob::ConcurrentHold,
        Knob::BandwidthWorth,
        Knob::ConcurrentWorth,
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
            Knob::BandwidthHold => "bandwidth.hold_utilization",
            Knob::ConcurrentHold => "concurrent.hold_utilization",
            Knob::BandwidthWorth => "bandwidth.change_worth",
            Knob::ConcurrentWorth => "concurrent.change_worth",
            Knob::PredictiveQuantile => "predictive.quantile",
            Knob::PredictiveLead => "predictive.lead",
        }
    }

    pub fn parse(key: &str) -> Option<Knob> {
        Knob::ALL.into_iter().find(|k| k.key() == key)
    }

    fn is_worth(self) -> bool {
        matches!(self, Knob::BandwidthWorth | Knob::ConcurrentWorth)
    }

    fn is_hold(self) -> bool {
        matches!(self, Knob::BandwidthHold | Knob::ConcurrentHold)
    }

    /// A release key (`hold_utilization`, `change_worth`): tuned in the search's second
    /// pass, from the first pass's choice of the behavior, target and predictive keys.
    pub fn is_release(self) -> bool {
        self.is_hold() || self.is_worth()
    }

    /// A concurrent key: tuned only with a price table (without a price nothing weighs
    /// Concurrent·h against Mbps·h).
    fn needs_price(self) -> bool {
        matches!(
            self,
            Knob::ConcurrentTarget | Knob::ConcurrentHold | Knob::ConcurrentWorth
        )
    }

    /// The target of the same dimension (for a `hold_utilization` key).
    fn target_of(self) -> Option<Knob> {
        match self {
            Knob::BandwidthHold => Some(Knob::BandwidthTarget),
            Knob::ConcurrentHold => Some(Knob::ConcurrentTarget),
            _ => None,
        }
    }

    /// The hold of the same dimension (for a `target_utilization` key).
    fn hold_of(self) -> Option<Knob> {
        match self {
            Knob::BandwidthTarget => Some(Knob::BandwidthHold),
            Knob::ConcurrentTarget => Some(Knob::ConcurrentHold),
            _ => None,
        }
    }

    fn dimension(self, p: &Policy) -> Option<&crate::policy::Dimension> {
        match self {
            Knob::BandwidthTarget | Knob::BandwidthHold | Knob::BandwidthWorth => {
                p.bandwidth.as_ref()
            }
            Knob::ConcurrentTarget | Knob::ConcurrentHold | Knob::ConcurrentWorth => {
                p.concurrent.as_ref()
            }
            _ => None,
        }
    }

    fn dimension_mut(self, p: &mut Policy) -> Option<&mut crate::policy::Dimension> {
        match self {
            Knob::BandwidthTarget | Knob::BandwidthHold | Knob::BandwidthWorth => {
                p.bandwidth.as_mut()
            }
            Knob::ConcurrentTarget | Knob::ConcurrentHold | Knob::ConcurrentWorth => {
                p.concurrent.as_mut()
            }
            _ => None,
        }
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
            // Off: at the target (the default). Values at or below the policy's target are
            // left out by `Space::of` (the target is Off; below it does not validate).
            Knob::BandwidthHold | Knob::ConcurrentHold => {
                let mut v = vec![Setting::Off];
                v.extend(ratios(&[0.75, 0.8, 0.85, 0.9, 0.95]));
                v
            }
            // Mbps·h: a scale-down freeing 300 Mbps waits 1h with 300, 3h with 1000.
            Knob::BandwidthWorth => amounts(&[100.0, 200.0, 300.0, 500.0, 1000.0]),
            // Units of 10,000 connections × hours: the ladder is 2-20 units, not Mbps.
            Knob::ConcurrentWorth => amounts(&[1.0, 2.0, 5.0, 10.0, 20.0]),
            Knob::PredictiveQuantile => ratios(&[0.5, 0.7, 0.8, 0.9, 0.95, 1.0]),
            Knob::PredictiveLead => mins(&[1, 2, 5, 10, 20]),
        }
    }

    /// The policy's value, or None when the key does not apply to it (a step-rule
    /// dimension has no target nor hold; a missing dimension nothing; `[predictive]` off
    /// has no quantile to tune).
    pub fn get(self, p: &Policy) -> Option<Setting> {
        let b = &p.behavior;
        let target = |d: &Option<crate::policy::Dimension>| match d.as_ref().map(|d| &d.rule) {
            Some(Rule::TargetTracking { target_utilization }) => {
                Some(Setting::Ratio(*target_utilization))
            }
            _ => None,
        };
        if self.is_hold() {
            let d = self.dimension(p)?;
            return match d.rule {
                Rule::TargetTracking { .. } => {
                    Some(d.hold_utilization.map_or(Setting::Off, Setting::Ratio))
                }
                Rule::Steps(_) => None,
            };
        }
        if self.is_worth() {
            let d = self.dimension(p)?;
            return Some(d.change_worth.map_or(Setting::Off, Setting::Amount));
        }
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
            Knob::BandwidthHold
            | Knob::ConcurrentHold
            | Knob::BandwidthWorth
            | Knob::ConcurrentWorth => unreachable!("answered above"),
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
            (Knob::BandwidthHold | Knob::ConcurrentHold, Setting::Ratio(_) | Setting::Off) => {
                if let Some(d) = self.dimension_mut(p)
                    && let Rule::TargetTracking { .. } = d.rule
                {
                    d.hold_utilization = match v {
                        Setting::Ratio(x) => Some(x),
                        _ => None,
                    };
                }
            }
            (Knob::BandwidthWorth | Knob::ConcurrentWorth, Setting::Amount(_) | Setting::Off) => {
                if let Some(d) = self.dimension_mut(p) {
                    d.change_worth = match v {
                        Setting::Amount(x) => Some(x),
                        _ => None,
                    };
                }
            }
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
    /// value. Without a price table the concurrent keys are not tuned: without a price
    /// nothing weighs Concurrent·h against Mbps·h (it would only ever go down). A
    /// `hold_utilization` grid keeps only values above the policy's own target (at the
    /// target is `Off`); a `target_utilization` tuned without its hold, only values up to
    /// the policy's own hold (validate refuses a hold below the target).
    pub fn of(p: &Policy, keys: &[Knob], priced: bool) -> Space {
        let mut axes = Vec::new();
        for &knob in keys {
            if knob.needs_price() && !priced {
                continue;
            }
            let Some(cur) = knob.get(p) else { continue };
            let floor = step_floor(p, knob);
            let target = match knob.target_of().and_then(|t| t.get(p)) {
                Some(Setting::Ratio(t)) => t,
                _ => 0.0,
            };
            // A target tuned while the policy's own hold stays: not above that hold.
            let hold = match knob.hold_of() {
                Some(h) if !keys.contains(&h) || (h.needs_price() && !priced) => match h.get(p) {
                    Some(Setting::Ratio(h)) => h,
                    _ => f64::INFINITY,
                },
                _ => f64::INFINITY,
            };
            let mut values: Vec<Setting> = knob
                .grid()
                .into_iter()
                .filter(|v| !matches!(v, Setting::Steps(n) if *n < floor))
                .filter(|v| !(knob.is_hold() && matches!(v, Setting::Ratio(h) if *h <= target)))
                .filter(
                    |v| !matches!(v, Setting::Ratio(t) if knob.hold_of().is_some() && *t > hold),
                )
                .collect();
            if !values.contains(&cur) {
                values.push(cur);
            }
            values.sort_by(|a, b| a.sort_value(knob).total_cmp(&b.sort_value(knob)));
            let current = values.iter().position(|v| *v == cur).unwrap_or(0);
            axes.push(Axis {
                knob,
                values,
                current,
            });
        }
        Space { axes }
    }

    /// `c` made valid: a `hold_utilization` below its candidate's own (tuned) target is
    /// clamped to the target, i.e. `Off` (validate refuses a hold below the target).
    pub fn canonical(&self, c: &Candidate) -> Candidate {
        let mut c = c.clone();
        for (k, axis) in self.axes.iter().enumerate() {
            let Some(tk) = axis.knob.target_of() else {
                continue;
            };
            let Some(j) = self.axes.iter().position(|a| a.knob == tk) else {
                continue;
            };
            let (Setting::Ratio(h), Setting::Ratio(t)) = (
                axis.values[usize::from(c[k])],
                self.axes[j].values[usize::from(c[j])],
            ) else {
                continue;
            };
            if h < t
                && let Some(off) = axis.values.iter().position(|v| *v == Setting::Off)
            {
                c[k] = off as u8;
            }
        }
        c
    }

    pub fn is_empty(&self) -> bool {
        self.axes.is_empty()
    }

    /// The search's passes, as axis indices in order: the behavior, target and
    /// predictive keys, then the release keys (`hold_utilization`, `change_worth`); a
    /// group without a key is no pass.
    pub fn passes(&self) -> Vec<Vec<usize>> {
        let group = |release: bool| -> Vec<usize> {
            (0..self.axes.len())
                .filter(|&k| self.axes[k].knob.is_release() == release)
                .collect()
        };
        [group(false), group(true)]
            .into_iter()
            .filter(|g| !g.is_empty())
            .collect()
    }

    /// The space of the axes `axes` only, around `base`: each axis's own value is
    /// `base`'s (so `one_at_a_time`, `neighbours` and `overlay` work from `base`). As in
    /// [`Space::of`], a target whose hold is not among `axes` is not tried above `base`'s
    /// hold (the values kept are a prefix: indices stay those of `self`). Its candidates
    /// become candidates of `self` with [`Space::lift`].
    pub fn around(&self, base: &Candidate, axes: &[usize]) -> Space {
        let hold_of = |knob: Knob| -> f64 {
            let Some(h) = knob.hold_of() else {
                return f64::INFINITY;
            };
            match self.axes.iter().position(|a| a.knob == h) {
                Some(j) if !axes.contains(&j) => match self.axes[j].values[usize::from(base[j])] {
                    Setting::Ratio(h) => h,
                    _ => f64::INFINITY,
                },
                _ => f64::INFINITY,
            }
        };
        Space {
            axes: axes
                .iter()
                .map(|&k| {
                    let axis = &self.axes[k];
                    let current = usize::from(base[k]);
                    let hold = hold_of(axis.knob);
                    let mut values = axis.values.clone();
                    while values.len() > current + 1
                        && matches!(values.last(), Some(Setting::Ratio(t)) if *t > hold)
                    {
                        values.pop();
                    }
                    Axis {
                        knob: axis.knob,
                        values,
                        current,
                    }
                })
                .collect(),
        }
    }

    /// `base` with the values of `sub` (a candidate of [`Space::around`]`(base, axes)`)
    /// on `axes`, made valid.
    pub fn lift(&self, base: &Candidate, axes: &[usize], sub: &Candidate) -> Candidate {
        let mut c = base.clone();
        for (&k, &v) in axes.iter().zip(sub) {
            c[k] = v;
        }
        self.canonical(&c)
    }

    /// The values of `c` on `axes` (a candidate of [`Space::around`]).
    pub fn project(c: &Candidate, axes: &[usize]) -> Candidate {
        axes.iter().map(|&k| c[k]).collect()
    }

    /// The policy's own settings.
    pub fn current(&self) -> Candidate {
        self.axes.iter().map(|a| a.current as u8).collect()
    }

    /// `base` with the settings of `c` (made valid: [`Space::canonical`]).
    pub fn apply(&self, base: &Policy, c: &Candidate) -> Policy {
        let mut p = base.clone();
        for (axis, &i) in self.axes.iter().zip(&self.canonical(c)) {
            axis.knob.set(&mut p, axis.values[usize::from(i)]);
        }
        p
    }

    /// The settings of `c` that differ from the policy's own, as (key, value).
    pub fn changes(&self, c: &Candidate) -> Vec<(Knob, Setting)> {
        self.axes
            .iter()
            .zip(&self.canonical(c))
            .filter(|(a, i)| usize::from(**i) != a.current)
            .map(|(a, &i)| (a.knob, a.values[usize::from(i)]))
            .collect()
    }

    /// Every setting of `c`, as (key, value).
    pub fn settings(&self, c: &Candidate) -> Vec<(Knob, Setting)> {
        self.axes
            .iter()
            .zip(&self.canonical(c))
            .map(|(a, &i)| (a.knob, a.values[usize::from(i)]))
            .collect()
    }

    /// `n` made valid, unless that is `c` itself or already in `out`.
    fn push_new(&self, out: &mut Vec<Candidate>, c: &Candidate, n: Candidate) {
        let n = self.canonical(&n);
        if n != *c && !out.contains(&n) {
            out.push(n);
        }
    }

    /// The candidates one value away from `c` on one axis (each axis down, then up),
    /// made valid (a step of the target may clamp the hold).
    pub fn neighbours(&self, c: &Candidate) -> Vec<Candidate> {
        let mut out = Vec::new();
        for (k, axis) in self.axes.iter().enumerate() {
            let i = usize::from(c[k]);
            if i > 0 {
                let mut n = c.clone();
                n[k] -= 1;
                self.push_new(&mut out, c, n);
            }
            if i + 1 < axis.values.len() {
                let mut n = c.clone();
                n[k] += 1;
                self.push_new(&mut out, c, n);
            }
        }
        out
    }

    /// Every candidate that differs from `c` on one axis, made valid.
    pub fn one_at_a_time(&self, c: &Candidate) -> Vec<Candidate> {
        let mut out = Vec::new();
        for (k, axis) in self.axes.iter().enumerate() {
            for i in 0..axis.values.len() {
                if i != usize::from(c[k]) {
                    let mut n = c.clone();
                    n[k] = i as u8;
                    self.push_new(&mut out, c, n);
                }
            }
        }
        out
    }

    /// `base` with every axis on which `other` differs from the policy's own value set to
    /// `other`'s value.
    pub fn overlay(&self, base: &Candidate, other: &Candidate) -> Candidate {
        let c = self
            .axes
            .iter()
            .zip(base.iter().zip(other))
            .map(|(a, (&b, &o))| if usize::from(o) != a.current { o } else { b })
            .collect();
        self.canonical(&c)
    }

    /// A uniformly drawn candidate, made valid.
    pub fn random(&self, rng: &mut crate::sim::synthetic::SplitMix64) -> Candidate {
        let c = self
            .axes
            .iter()
            .map(|a| (rng.next_u64() % a.values.len() as u64) as u8)
            .collect();
        self.canonical(&c)
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

    fn web() -> Policy {
        crate::policy::parse_policy(
            include_str!("../../policies/web.toml"),
            std::path::Path::new("web.toml"),
        )
        .unwrap()
    }

    fn axis(space: &Space, knob: Knob) -> Option<&Axis> {
        space.axes.iter().find(|a| a.knob == knob)
    }

    const HOLD_WORTH: [Knob; 4] = [
        Knob::BandwidthHold,
        Knob::ConcurrentHold,
        Knob::BandwidthWorth,
        Knob::ConcurrentWorth,
    ];

    #[test]
    fn hold_and_worth_grids() {
        use Setting::{Amount as A, Off, Ratio as R};
        let mut custom = web();
        custom.bandwidth.as_mut().unwrap().hold_utilization = Some(0.82);
        custom.bandwidth.as_mut().unwrap().change_worth = Some(250.0);
        let mut high = crate::core::fixtures::policy();
        if let Some(d) = high.bandwidth.as_mut() {
            d.rule = Rule::TargetTracking {
                target_utilization: 0.8,
            };
        }
        let batch = crate::policy::parse_policy(
            include_str!("../../policies/batch.toml"),
            std::path::Path::new("batch.toml"),
        )
        .unwrap();
        // (policy, priced, knob, values ascending, current value); None: not tuned.
        type Row = (Policy, bool, Knob, Option<(Vec<Setting>, Setting)>);
        let table: Vec<Row> = vec![
            // web.toml: target 0.7, hold 0.8, worth 300. Off worth is an endless worth.
            (
                web(),
                false,
                Knob::BandwidthWorth,
                Some((
                    vec![A(100.0), A(200.0), A(300.0), A(500.0), A(1000.0), Off],
                    A(300.0),
                )),
            ),
            (
                web(),
                false,
                Knob::BandwidthHold,
                Some((vec![Off, R(0.75), R(0.8), R(0.85), R(0.9), R(0.95)], R(0.8))),
            ),
            // Concurrent keys only with a price table.
            (web(), false, Knob::ConcurrentHold, None),
            (web(), false, Knob::ConcurrentWorth, None),
            (
                web(),
                true,
                Knob::ConcurrentHold,
                Some((vec![Off, R(0.75), R(0.8), R(0.85), R(0.9), R(0.95)], Off)),
            ),
            (
                web(),
                true,
                Knob::ConcurrentWorth,
                Some((vec![A(1.0), A(2.0), A(5.0), A(10.0), A(20.0), Off], Off)),
            ),
            // The policy's own values are added, in order.
            (
                custom.clone(),
                false,
                Knob::BandwidthHold,
                Some((
                    vec![Off, R(0.75), R(0.8), R(0.82), R(0.85), R(0.9), R(0.95)],
                    R(0.82),
                )),
            ),
            (
                custom,
                false,
                Knob::BandwidthWorth,
                Some((
                    vec![
                        A(100.0),
                        A(200.0),
                        A(250.0),
                        A(300.0),
                        A(500.0),
                        A(1000.0),
                        Off,
                    ],
                    A(250.0),
                )),
            ),
            // Holds at or below the target are left out (at the target is Off).
            (
                high.clone(),
                false,
                Knob::BandwidthHold,
                Some((vec![Off, R(0.85), R(0.9), R(0.95)], Off)),
            ),
            (
                high,
                false,
                Knob::BandwidthWorth,
                Some((
                    vec![A(100.0), A(200.0), A(300.0), A(500.0), A(1000.0), Off],
                    Off,
                )),
            ),
            // Step rules: no hold (no target), but a change worth.
            (batch.clone(), true, Knob::BandwidthHold, None),
            (batch.clone(), true, Knob::ConcurrentHold, None),
            (
                batch,
                false,
                Knob::BandwidthWorth,
                Some((
                    vec![A(100.0), A(200.0), A(300.0), A(500.0), A(1000.0), Off],
                    Off,
                )),
            ),
        ];
        for (i, (p, priced, knob, want)) in table.into_iter().enumerate() {
            let space = Space::of(&p, &HOLD_WORTH, priced);
            let got = axis(&space, knob).map(|a| (a.values.clone(), a.values[a.current]));
            assert_eq!(got, want, "row {i}: {}", knob.key());
        }
        assert_eq!(
            Knob::parse("bandwidth.change_worth"),
            Some(Knob::BandwidthWorth)
        );
        assert_eq!(
            Knob::parse("concurrent.hold_utilization"),
            Some(Knob::ConcurrentHold)
        );
    }

    #[test]
    fn hold_and_worth_set_and_get_back() {
        let mut p = web();
        for (knob, v, hold, worth) in [
            (
                Knob::BandwidthWorth,
                Setting::Amount(500.0),
                Some(0.8),
                Some(500.0),
            ),
            (Knob::BandwidthWorth, Setting::Off, Some(0.8), None),
            (Knob::BandwidthHold, Setting::Ratio(0.9), Some(0.9), None),
            (Knob::BandwidthHold, Setting::Off, None, None),
        ] {
            knob.set(&mut p, v);
            let d = p.bandwidth.as_ref().unwrap();
            assert_eq!(
                (d.hold_utilization, d.change_worth),
                (hold, worth),
                "{knob:?} {v}"
            );
            assert_eq!(knob.get(&p), Some(v));
        }
        assert_eq!(Setting::Amount(300.0).toml().unwrap().to_string(), "300");
        assert_eq!(Setting::Amount(2.5).toml().unwrap().to_string(), "2.5");
        assert!(Setting::Off.toml().is_none());
        assert_eq!(Setting::Off.json(), serde_json::Value::Null);
        assert_eq!(Setting::Off.to_string(), "off");
    }

    #[test]
    fn a_target_tuned_without_its_hold_stays_at_or_below_it() {
        use Setting::Ratio as R;
        let p = web(); // target 0.7, hold 0.8
        let values = |keys: &[Knob]| {
            axis(&Space::of(&p, keys, false), Knob::BandwidthTarget)
                .unwrap()
                .values
                .clone()
        };
        let capped = [R(0.5), R(0.55), R(0.6), R(0.65), R(0.7), R(0.75), R(0.8)];
        assert_eq!(values(&[Knob::BandwidthTarget]), capped);
        assert_eq!(
            values(&[Knob::BandwidthTarget, Knob::DownTolerance]),
            capped
        );
        // With the hold tuned too, the whole grid (the hold is clamped per candidate).
        let both = values(&[Knob::BandwidthTarget, Knob::BandwidthHold]);
        assert_eq!(both.last(), Some(&R(0.9)));
        // No hold: nothing caps the target.
        let mut q = p.clone();
        q.bandwidth.as_mut().unwrap().hold_utilization = None;
        let space = Space::of(&q, &[Knob::BandwidthTarget], false);
        assert_eq!(space.axes[0].values.len(), 9);
    }

    #[test]
    fn passes_split_the_release_keys_and_a_pass_s_space_stays_around_its_base() {
        use Knob::*;
        let p = web(); // target 0.7, hold 0.8, worth 300
        let knobs = |space: &Space, axes: &[usize]| -> Vec<Knob> {
            axes.iter().map(|&k| space.axes[k].knob).collect()
        };
        // (keys asked, the passes' keys)
        let table: Vec<(Vec<Knob>, Vec<Vec<Knob>>)> = vec![
            (
                Knob::ALL.to_vec(),
                vec![
                    vec![
                        UpTolerance,
                        UpStabilization,
                        UpMaxSteps,
                        UpCooldown,
                        DownTolerance,
                        DownStabilization,
                        DownMaxSteps,
                        DownCooldown,
                        BandwidthTarget,
                    ],
                    vec![BandwidthHold, BandwidthWorth],
                ],
            ),
            (vec![DownTolerance], vec![vec![DownTolerance]]),
            (
                vec![BandwidthWorth, BandwidthHold],
                vec![vec![BandwidthWorth, BandwidthHold]],
            ),
            (
                vec![BandwidthWorth, DownCooldown],
                vec![vec![DownCooldown], vec![BandwidthWorth]],
            ),
            (vec![], vec![]),
        ];
        for (keys, want) in table {
            let space = Space::of(&p, &keys, false);
            let got: Vec<Vec<Knob>> = space.passes().iter().map(|g| knobs(&space, g)).collect();
            assert_eq!(got, want, "{keys:?}");
        }

        // The first pass: the target not above the policy's own hold (a prefix: the
        // indices are the full space's), every key from the policy's own value.
        let space = Space::of(&p, &Knob::ALL, false);
        let passes = space.passes();
        let cur = space.current();
        let first = space.around(&cur, &passes[0]);
        let t = first
            .axes
            .iter()
            .find(|a| a.knob == BandwidthTarget)
            .unwrap();
        let full = axis(&space, BandwidthTarget).unwrap();
        assert_eq!(t.values.last(), Some(&Setting::Ratio(0.8)));
        assert_eq!(t.values[..], full.values[..t.values.len()]);
        assert_eq!(first.current(), Space::project(&cur, &passes[0]));
        // The second pass, from a base with another target: the hold is not capped, its
        // own value is the base's, and a lifted candidate keeps the base elsewhere (a
        // hold at or below the base's target holds at it: off).
        let mut base = cur.clone();
        let ti = passes[0]
            .iter()
            .position(|&k| space.axes[k].knob == BandwidthTarget)
            .unwrap();
        let tk = passes[0][ti];
        base[tk] = full
            .values
            .iter()
            .position(|v| *v == Setting::Ratio(0.85))
            .unwrap() as u8;
        let base = space.canonical(&base);
        let second = space.around(&base, &passes[1]);
        assert_eq!(
            second.axes[0].values,
            axis(&space, BandwidthHold).unwrap().values
        );
        assert_eq!(second.current(), Space::project(&base, &passes[1]));
        for c in second.one_at_a_time(&second.current()) {
            let lifted = space.lift(&base, &passes[1], &c);
            for k in 0..lifted.len() {
                assert!(passes[1].contains(&k) || lifted[k] == base[k]);
            }
            let q = space.apply(&p, &lifted);
            let d = q.bandwidth.as_ref().unwrap();
            assert!(
                d.hold_utilization.is_none_or(|h| h >= 0.85),
                "{:?}",
                d.hold_utilization
            );
        }
    }

    #[test]
    fn a_hold_never_goes_below_its_own_target() {
        let p = web();
        let space = Space::of(&p, &[Knob::BandwidthTarget, Knob::BandwidthHold], false);
        let (t, h) = (&space.axes[0], &space.axes[1]);
        let idx = |a: &Axis, v: Setting| a.values.iter().position(|x| *x == v).unwrap() as u8;
        // Target 0.9 with a hold of 0.8 is clamped to the target: the hold is left out.
        let c = vec![idx(t, Setting::Ratio(0.9)), idx(h, Setting::Ratio(0.8))];
        let fixed = space.canonical(&c);
        assert_eq!(fixed, vec![c[0], idx(h, Setting::Off)]);
        let q = space.apply(&p, &c);
        assert_eq!(q.bandwidth.as_ref().unwrap().hold_utilization, None);
        assert_eq!(
            space.changes(&c),
            [
                (Knob::BandwidthTarget, Setting::Ratio(0.9)),
                (Knob::BandwidthHold, Setting::Off)
            ]
        );
        // At the target is valid and kept.
        let c = vec![idx(t, Setting::Ratio(0.8)), idx(h, Setting::Ratio(0.8))];
        assert_eq!(space.canonical(&c), c);
        // No generated candidate holds below its target; none repeats.
        let valid = |c: &Candidate| {
            let q = space.apply(&p, c);
            let d = q.bandwidth.as_ref().unwrap();
            let Rule::TargetTracking { target_utilization } = d.rule else {
                unreachable!()
            };
            d.hold_utilization.is_none_or(|h| h >= target_utilization) && space.canonical(c) == *c
        };
        let cur = space.current();
        let mut rng = crate::sim::synthetic::SplitMix64::new(7);
        let mut all = space.one_at_a_time(&cur);
        for n in all.clone() {
            all.extend(space.neighbours(&n));
            all.push(space.overlay(&cur, &n));
        }
        all.extend((0..200).map(|_| space.random(&mut rng)));
        assert!(all.iter().all(valid));
        let once = space.one_at_a_time(&cur);
        assert!(!once.contains(&cur));
        assert!(once.iter().enumerate().all(|(i, c)| !once[..i].contains(c)));
    }
}
