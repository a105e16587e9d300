//! Reference peers (`simulate --reference hpa,aws,autopilot`): how the autoscalers users
//! know would have done on the same trace and model (censored demand, ADJUSTING delay,
//! the API budget), each rounded up to the ladder within the policy's bounds
//! (reference/autoscaling-anchors.md):
//!
//! - **hpa**: Kubernetes HPA defaults: tolerance 0.1, no scale-up stabilization, a
//!   5-minute scale-down stabilization, no step limit, no cooldown. Our own decision with
//!   those settings and every adaptive stage off (it is HPA's algorithm).
//! - **aws**: AWS target tracking: scale out after 3 of 3 minutes above the target, to
//!   the need of the last reading; scale in after 15 of 15 minutes below 0.9 × the target,
//!   at most once per 300 s.
//! - **autopilot**: Google Autopilot's moving window: the 95th percentile of the need over
//!   the trailing hour plus a 10 % margin, and of those the highest over the last hour.
//!
//! They live here, not in `core`: the product's decision is `core::decide` alone. The
//! policy's windows are not applied to the peers (none of them has the concept).

use std::collections::VecDeque;
use std::time::Duration;

use crate::core::{
    Decision, Detail, Dim, Direction, Ladder, Observation, ProxyState, ProxyStatus, Reason,
    ReasonCode, Verdict,
};
use crate::policy::{Behavior, DirectionBehavior, Policy, PredictiveMode, Rule};
use crate::time::Timestamp;

/// The peers named by `--reference` (one flag value, comma-separated).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peers(pub Vec<Peer>);

/// A reference autoscaler.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Peer {
    Hpa,
    Aws,
    Autopilot,
}

impl Peer {
    pub const ALL: [Peer; 3] = [Peer::Hpa, Peer::Aws, Peer::Autopilot];

    pub fn as_str(self) -> &'static str {
        match self {
            Peer::Hpa => "hpa",
            Peer::Aws => "aws",
            Peer::Autopilot => "autopilot",
        }
    }

    /// `hpa,aws,autopilot` (or `all`) → the peers, in that order, each once.
    pub fn parse_list(text: &str) -> Result<Peers, String> {
        Self::parse_vec(text).map(Peers)
    }

    fn parse_vec(text: &str) -> Result<Vec<Peer>, String> {
        let mut out = Vec::new();
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            let peers: &[Peer] = match word {
                "all" => &Peer::ALL,
                "hpa" => &[Peer::Hpa],
                "aws" => &[Peer::Aws],
                "autopilot" => &[Peer::Autopilot],
                other => {
                    return Err(format!(
                        "unknown reference `{other}`: use hpa, aws, autopilot or all"
                    ));
                }
            };
            for p in peers {
                if !out.contains(p) {
                    out.push(*p);
                }
            }
        }
        if out.is_empty() {
            return Err("name at least one reference: hpa, aws, autopilot or all".into());
        }
        out.sort();
        Ok(out)
    }
}

/// HPA's defaults as a policy: same selection, signals, targets and bounds; tolerance
/// 0.1 both ways, scale-down stabilization 5 minutes, any number of ladder steps, no
/// cooldown; no saturation, flap budget, forecast, windows, peak hold or change worth.
pub fn hpa_policy(p: &Policy) -> Policy {
    let dir = |stabilization: u64| DirectionBehavior {
        tolerance: 0.1,
        stabilization: Duration::from_secs(stabilization),
        max_steps: u32::MAX,
        cooldown: Duration::ZERO,
    };
    let mut out = p.clone();
    out.behavior = Behavior {
        scale_up: dir(0),
        scale_down: dir(300),
        flap_budget: None,
    };
    for d in [&mut out.bandwidth, &mut out.concurrent]
        .into_iter()
        .flatten()
    {
        d.saturation = f64::INFINITY;
        d.hold_utilization = None;
        d.change_worth = None;
    }
    out.predictive.mode = PredictiveMode::Off;
    out.windows.clear();
    out.paused = crate::core::Paused::NONE;
    out
}

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;

/// What a non-HPA peer remembers about one dimension of one proxy.
#[derive(Clone, Debug, Default)]
struct DimMemory {
    /// (time, need) of the readings kept (the last hour), oldest first.
    needs: VecDeque<(i64, f64)>,
    /// AWS: (time, need ÷ the capacity in effect when it was read): the metric its alarms
    /// see, each datapoint against the capacity of its own minute.
    ratios: VecDeque<(i64, f64)>,
    /// Autopilot: (time, recommendation) over the last hour.
    recs: VecDeque<(i64, f64)>,
    /// AWS: the last scale-in.
    last_in: Option<i64>,
}

/// The controller state of an AWS or Autopilot peer for one proxy.
#[derive(Clone, Debug)]
pub struct PeerState {
    peer: Peer,
    dims: [DimMemory; 2],
}

impl PeerState {
    /// HPA runs as a policy ([`hpa_policy`]); the others have a state of their own.
    pub fn new(peer: Peer) -> PeerState {
        PeerState {
            peer,
            dims: Default::default(),
        }
    }

    /// One evaluation, written into `d` like `core::decide_into` (no stage trace).
    pub fn decide(
        &mut self,
        policy: &Policy,
        proxy: &ProxyState,
        ladder: Option<&Ladder>,
        obs: &Observation,
        now: Timestamp,
        d: &mut Decision,
    ) {
        d.reset(proxy, now);
        let guard = match (&proxy.status, proxy.scalarable, ladder) {
            (ProxyStatus::Adjusting, _, _) => Some((Verdict::Wait, ReasonCode::GuardAdjusting)),
            (ProxyStatus::Other(_), _, _) => Some((Verdict::Skip, ReasonCode::GuardNotRunning)),
            (_, s, _) if s != 1 => Some((Verdict::Skip, ReasonCode::GuardNotScalarable)),
            (_, _, None) => Some((Verdict::Skip, ReasonCode::GuardNoLadder)),
            _ => None,
        };
        if let Some((verdict, code)) = guard {
            d.verdict = verdict;
            d.reasons.push(Reason::new(code, None, self.peer.as_str()));
            return;
        }
        let ladder = ladder.expect("checked above");
        let now_ms = now.millis();
        for (i, dim) in Dim::ALL.into_iter().enumerate() {
            let cfg = match dim {
                Dim::Bandwidth => policy.bandwidth.as_ref(),
                Dim::Concurrent => policy.concurrent.as_ref(),
            };
            let Some(cfg) = cfg else { continue };
            let allowed: Vec<u32> = ladder
                .values(dim)
                .iter()
                .copied()
                .filter(|&v| v >= cfg.min && v <= cfg.max)
                .collect();
            let Some(&top) = allowed.last() else { continue };
            let target = match &cfg.rule {
                Rule::TargetTracking { target_utilization } => *target_utilization,
                Rule::Steps(_) => 0.7,
            };
            let current = match dim {
                Dim::Bandwidth => proxy.bandwidth,
                Dim::Concurrent => proxy.concurrent,
            };
            let mem = &mut self.dims[i];
            if let Some(demand) = obs.signals.get(&cfg.signal).and_then(|r| r.value()) {
                let need = match dim {
                    Dim::Bandwidth => demand / target,
                    Dim::Concurrent => demand / (10_000.0 * target),
                };
                mem.needs.push_back((now_ms, need));
                if self.peer == Peer::Aws {
                    mem.ratios
                        .push_back((now_ms, need / f64::from(current.max(1))));
                }
            }
            while mem
                .needs
                .front()
                .is_some_and(|&(t, _)| now_ms - t >= HOUR_MS)
            {
                mem.needs.pop_front();
            }
            while mem
                .ratios
                .front()
                .is_some_and(|&(t, _)| now_ms - t >= 15 * MINUTE_MS)
            {
                mem.ratios.pop_front();
            }
            let cover = |need: f64| allowed.iter().copied().find(|&v| f64::from(v) >= need);
            let to = match self.peer {
                Peer::Hpa => None,
                Peer::Aws => aws(mem, now_ms, current, &cover),
                Peer::Autopilot => autopilot(mem, now_ms, &cover),
            };
            // Within the bounds, on the ladder (an off-ladder value goes to the next up).
            let to = match to.unwrap_or(current) {
                v if v <= allowed[0] => allowed[0],
                v if v >= top => top,
                v => cover(f64::from(v)).unwrap_or(top),
            };
            if to == current {
                continue;
            }
            if self.peer == Peer::Aws && to < current {
                mem.last_in = Some(now_ms);
            }
            match dim {
                Dim::Bandwidth => d.bandwidth_to = to,
                Dim::Concurrent => d.concurrent_to = to,
            }
            let code = if to > current {
                ReasonCode::ScaleUp
            } else {
                ReasonCode::ScaleDown
            };
            d.reasons.push(Reason::new(
                code,
                Some(dim),
                Detail::Scale {
                    from: current,
                    to,
                    dim,
                },
            ));
        }
        let up = d.bandwidth_to > d.bandwidth_from || d.concurrent_to > d.concurrent_from;
        let down = d.bandwidth_to < d.bandwidth_from || d.concurrent_to < d.concurrent_from;
        if up || down {
            d.verdict = Verdict::Change;
            d.direction = Some(if up { Direction::Up } else { Direction::Down });
        } else {
            d.reasons
                .push(Reason::new(ReasonCode::NoChange, None, self.peer.as_str()));
        }
    }
}

/// AWS target tracking on one dimension: the new value, if an alarm fires.
fn aws(
    mem: &DimMemory,
    now: i64,
    current: u32,
    cover: &impl Fn(f64) -> Option<u32>,
) -> Option<u32> {
    let &(_, last) = mem.needs.back()?;
    let oldest = mem.ratios.front()?.0;
    // High alarm: every datapoint of the last 3 minutes above the target (need above the
    // capacity of its minute), with datapoints covering those 3 minutes.
    let window = |mins: i64| {
        mem.ratios
            .iter()
            .filter(move |&&(t, _)| now - t < mins * MINUTE_MS)
    };
    if now - oldest >= 2 * MINUTE_MS && window(3).all(|&(_, r)| r > 1.0) {
        return Some(cover(last).unwrap_or(u32::MAX));
    }
    // Low alarm: 15 of 15 minutes below 0.9 × the target, then a 300 s scale-in cooldown.
    let cooled = mem.last_in.is_none_or(|t| now - t >= 5 * MINUTE_MS);
    if cooled && now - oldest >= 14 * MINUTE_MS && window(15).all(|&(_, r)| r < 0.9) {
        let v = cover(last)?;
        return (v < current).then_some(v);
    }
    None
}

/// Autopilot's moving window on one dimension: max over the last hour of (p95 of the
/// trailing hour's need + 10 %).
fn autopilot(mem: &mut DimMemory, now: i64, cover: &impl Fn(f64) -> Option<u32>) -> Option<u32> {
    if mem.needs.is_empty() {
        return None;
    }
    let mut v: Vec<f64> = mem.needs.iter().map(|&(_, n)| n).collect();
    v.sort_unstable_by(f64::total_cmp);
    let rank = ((0.95 * v.len() as f64).ceil() as usize).clamp(1, v.len());
    mem.recs.push_back((now, v[rank - 1] * 1.1));
    while mem.recs.front().is_some_and(|&(t, _)| now - t >= HOUR_MS) {
        mem.recs.pop_front();
    }
    let rec = mem.recs.iter().map(|&(_, r)| r).fold(0.0, f64::max);
    Some(cover(rec).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fixtures;

    fn run(peer: Peer, demands: &[f64], start_bw: u32) -> Vec<u32> {
        let policy = fixtures::policy();
        let ladder = fixtures::ladder();
        let mut proxy = fixtures::proxy(start_bw, 2);
        let mut st = PeerState::new(peer);
        let mut d = Decision::with_state(Default::default());
        let t0 = Timestamp::from_secs(1_795_939_200);
        let mut out = Vec::new();
        for (i, &bw) in demands.iter().enumerate() {
            let now = t0 + Duration::from_secs(60 * i as u64);
            let obs = fixtures::observe(bw, 1_000.0, now);
            st.decide(&policy, &proxy, Some(&ladder), &obs, now, &mut d);
            proxy.bandwidth = d.bandwidth_to;
            out.push(proxy.bandwidth);
        }
        out
    }

    #[test]
    fn aws_scales_out_after_three_minutes_and_in_after_fifteen() {
        // 100 Mbps at 0.7 needs 143 → 200, from minute 2 (three readings above 50).
        let mut demand = vec![100.0; 5];
        demand.extend(vec![10.0; 20]);
        let got = run(Peer::Aws, &demand, 50);
        assert_eq!(&got[..5], &[50, 50, 200, 200, 200]);
        // Each datapoint is read against its own minute's capacity: minute 2 read 143 on
        // 50 (high); from minute 3, 143 then 14.3 on 200 are below 0.9 × the target, so
        // the 15 datapoints of minutes 3..=17 are all low at minute 17: 10 needs 14.3 → 20.
        assert_eq!(got[16], 200);
        assert_eq!(got[17], 20);
    }

    #[test]
    fn autopilot_holds_the_hours_high_then_releases() {
        let mut demand = vec![100.0; 10];
        demand.extend(vec![5.0; 130]);
        let got = run(Peer::Autopilot, &demand, 10);
        // p95 of 143 Mbps × 1.1 = 157 → 200 at once.
        assert_eq!(got[0], 200);
        // The high stays within the trailing hour's readings for 60 minutes, then the
        // recommendations made while it did stay for another hour.
        assert_eq!(got[118], 200);
        assert_eq!(got[125], 10);
    }

    #[test]
    fn hpa_policy_is_our_decision_with_hpa_settings() {
        let p = hpa_policy(&fixtures::policy());
        assert_eq!(
            p.behavior.scale_down.stabilization,
            Duration::from_secs(300)
        );
        assert_eq!(p.behavior.scale_up.tolerance, 0.1);
        assert!(p.behavior.flap_budget.is_none());
        assert!(p.bandwidth.as_ref().unwrap().saturation.is_infinite());
        assert_eq!(
            Peer::parse_list("autopilot, hpa,all").unwrap().0,
            vec![Peer::Hpa, Peer::Aws, Peer::Autopilot]
        );
        assert!(Peer::parse_list("keda").is_err());
    }
}
