//! The ten stages of DESIGN.md, in order, for one proxy:
//!
//! 1 guard → 2 data → 3 raw need → 4 tolerance → 5 ladder → 6 stabilization → 7 rate →
//! 8 bounds → 9 cooldown → 10 result.
//!
//! Stages 2–9 run per managed dimension (bandwidth, concurrent); stage 10 combines them
//! into one change carrying both values.

use std::time::Duration;

use chrono::TimeZone;

use super::*;
use crate::policy::{
    Dimension, DirectionBehavior, FLAP_WINDOW, MissingAction, Policy, PredictiveMode, Rule, Window,
};

/// Decides one proxy at `now`. Pure: same inputs, same output; never fails.
pub fn decide(
    policy: &Policy,
    proxy: &ProxyState,
    ladder: Option<&Ladder>,
    obs: &Observation,
    state: &ControllerState,
    now: Timestamp,
) -> Decision {
    let mut d = Decision::with_state(state.clone());
    decide_into(policy, proxy, ladder, obs, now, &mut d);
    d
}

/// [`decide`] written into a reused `d`: the state to start from is `d.next_state`, and
/// every other field is overwritten, so afterwards `d` equals
/// `decide(policy, proxy, ladder, obs, &state_before, now)` (a property test checks it).
/// The replay keeps one `Decision` per proxy this way: millions of evaluations with no
/// copy of the state and no allocation for the reasons. The daemon keeps the previous
/// state, so it calls [`decide`].
pub fn decide_into(
    policy: &Policy,
    proxy: &ProxyState,
    ladder: Option<&Ladder>,
    obs: &Observation,
    now: Timestamp,
    d: &mut Decision,
) {
    d.reset(proxy, now);

    // 1. Guard.
    if let Some((verdict, code, detail)) = guard(policy, proxy, ladder) {
        d.verdict = verdict;
        d.reasons.push(Reason::new(code, None, detail));
        return;
    }
    let ladder = ladder.expect("guard rejects a missing ladder");

    let stamps_before = super::operator::stamps(&d.next_state);
    // An operator's change since the last evaluation (issue 12).
    super::operator::observe(
        policy.manual_hold,
        (proxy.bandwidth, proxy.concurrent),
        &mut d.next_state.operator,
        now,
        &mut d.reasons,
    );
    let windows = active_windows(&policy.windows, now);
    let ahead = Ahead::of(policy, now);
    for dim in Dim::ALL {
        let Some(cfg) = policy.dimension(dim) else {
            continue;
        };
        let current = current_value(proxy, dim);
        let mut ctx = DimCtx {
            policy,
            cfg,
            dim,
            current,
            values: ladder.values(dim),
            now,
            reasons: &mut d.reasons,
        };
        let trace = ctx.run(obs, d.next_state.dim_mut(dim), &windows, &ahead);
        match dim {
            Dim::Bandwidth => {
                d.bandwidth_to = trace.target;
                d.bandwidth = trace;
            }
            Dim::Concurrent => {
                d.concurrent_to = trace.target;
                d.concurrent = trace;
            }
        }
    }

    // 10. Result: one change carrying both values when either changes.
    let up = d.bandwidth_to > d.bandwidth_from || d.concurrent_to > d.concurrent_from;
    let down = d.bandwidth_to < d.bandwidth_from || d.concurrent_to < d.concurrent_from;
    if up || down {
        d.verdict = Verdict::Change;
        d.direction = Some(if up { Direction::Up } else { Direction::Down });
        for dim in Dim::ALL {
            let (from, to) = match dim {
                Dim::Bandwidth => (d.bandwidth_from, d.bandwidth_to),
                Dim::Concurrent => (d.concurrent_from, d.concurrent_to),
            };
            let st = d.next_state.dim_mut(dim);
            if to == from {
                continue;
            }
            let up = to > from;
            if policy.behavior.flap_budget.is_some() && is_reversal(st, up, now) {
                st.reversals.push(now);
            }
            let code = if up {
                st.last_up = Some(now);
                ReasonCode::ScaleUp
            } else {
                st.last_down = Some(now);
                ReasonCode::ScaleDown
            };
            d.reasons.push(Reason::new(
                code,
                Some(dim),
                Detail::Scale { from, to, dim },
            ));
        }
    } else {
        // The values kept are in the decision itself: a fixed text, nothing to format.
        d.reasons.push(Reason::new(
            ReasonCode::NoChange,
            None,
            "no stage asked for a change: keeping the current values",
        ));
    }
    if d.verdict == Verdict::Change {
        d.next_state.operator.last_known = Some((d.bandwidth_to, d.concurrent_to));
    }
    super::operator::hold(policy.manual_hold_allows_saturation, d, &stamps_before, now);
    // The policy file's own pause (issue 12); run-time pauses are applied by the caller.
    if policy.paused.any() {
        super::pause::apply_pause_stamps(
            d,
            &stamps_before,
            policy.paused,
            "paused by the policy file".to_string(),
        );
    }
}

impl Decision {
    /// An empty decision holding `state`, to start [`decide_into`] from.
    pub fn with_state(state: ControllerState) -> Decision {
        Decision {
            time: Timestamp(0),
            verdict: Verdict::Hold,
            bandwidth_from: 0,
            bandwidth_to: 0,
            concurrent_from: 0,
            concurrent_to: 0,
            direction: None,
            reasons: Vec::new(),
            bandwidth: DimTrace::unmanaged(0),
            concurrent: DimTrace::unmanaged(0),
            next_state: state,
        }
    }
}

impl Decision {
    /// Starts a reused decision over for `proxy` at `now`: a hold at its current values,
    /// no reasons, unmanaged traces; `next_state` (the state to start from) is kept.
    pub fn reset(&mut self, proxy: &ProxyState, now: Timestamp) {
        self.time = now;
        self.verdict = Verdict::Hold;
        self.bandwidth_from = proxy.bandwidth;
        self.bandwidth_to = proxy.bandwidth;
        self.concurrent_from = proxy.concurrent;
        self.concurrent_to = proxy.concurrent;
        self.direction = None;
        self.reasons.clear();
        self.bandwidth = DimTrace::unmanaged(proxy.bandwidth);
        self.concurrent = DimTrace::unmanaged(proxy.concurrent);
    }
}

impl DimTrace {
    fn unmanaged(current: u32) -> DimTrace {
        DimTrace {
            managed: false,
            current,
            demand: None,
            raw_need: None,
            recommended: current,
            stabilized: current,
            rate_limited: current,
            min: current,
            max: current,
            bounded: current,
            target: current,
            forecast: None,
        }
    }
}

fn current_value(proxy: &ProxyState, dim: Dim) -> u32 {
    match dim {
        Dim::Bandwidth => proxy.bandwidth,
        Dim::Concurrent => proxy.concurrent,
    }
}

/// Stage 1: the proxy must be RUNNING, Scalarable 1, and have a ladder for what we manage.
fn guard(
    policy: &Policy,
    proxy: &ProxyState,
    ladder: Option<&Ladder>,
) -> Option<(Verdict, ReasonCode, std::borrow::Cow<'static, str>)> {
    match &proxy.status {
        ProxyStatus::Running => {}
        ProxyStatus::Adjusting => {
            return Some((
                Verdict::Wait,
                ReasonCode::GuardAdjusting,
                "the proxy is ADJUSTING (a change is in progress); waiting".into(),
            ));
        }
        ProxyStatus::Other(s) => {
            return Some((
                Verdict::Skip,
                ReasonCode::GuardNotRunning,
                format!("the proxy is {s}, not RUNNING").into(),
            ));
        }
    }
    if proxy.scalarable != 1 {
        return Some((
            Verdict::Skip,
            ReasonCode::GuardNotScalarable,
            if proxy.scalarable == 0 {
                "Scalarable is 0: ModifyProxyConfiguration is not supported for this proxy".into()
            } else {
                format!(
                    "Scalarable is {}: ModifyProxyConfiguration is not supported for this proxy",
                    proxy.scalarable
                )
                .into()
            },
        ));
    }
    let missing = match ladder {
        None => Some("no allowed values are known for this proxy's regions".to_string()),
        Some(l) => Dim::ALL
            .into_iter()
            .find(|&dim| policy.dimension(dim).is_some() && l.values(dim).is_empty())
            .map(|dim| format!("the region's allowed {} list is empty", dim.as_str())),
    };
    missing.map(|m| (Verdict::Skip, ReasonCode::GuardNoLadder, m.into()))
}

/// Min/max overrides from the windows active at `now`.
#[derive(Default)]
struct WindowBounds {
    any_active: bool,
    bandwidth_min: Option<u32>,
    bandwidth_max: Option<u32>,
    concurrent_min: Option<u32>,
    concurrent_max: Option<u32>,
}

impl WindowBounds {
    fn for_dim(&self, dim: Dim) -> (Option<u32>, Option<u32>) {
        match dim {
            Dim::Bandwidth => (self.bandwidth_min, self.bandwidth_max),
            Dim::Concurrent => (self.concurrent_min, self.concurrent_max),
        }
    }
}

/// Several active windows combine: the highest min and the lowest max.
fn active_windows(windows: &[Window], now: Timestamp) -> WindowBounds {
    let mut wb = WindowBounds::default();
    for w in windows.iter().filter(|w| window_active(w, now)) {
        wb.any_active = true;
        let hi = |a: Option<u32>, b: Option<u32>| a.max(b);
        let lo = |a: Option<u32>, b: Option<u32>| match (a, b) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        };
        wb.bandwidth_min = hi(wb.bandwidth_min, w.bandwidth_min);
        wb.concurrent_min = hi(wb.concurrent_min, w.concurrent_min);
        wb.bandwidth_max = lo(wb.bandwidth_max, w.bandwidth_max);
        wb.concurrent_max = lo(wb.concurrent_max, w.concurrent_max);
    }
    wb
}

/// A window is active at `now` if it opened (a cron fire time in its time zone) within
/// the last `duration`: some fire time `f` with `f <= now < f + duration`.
pub fn window_active(w: &Window, now: Timestamp) -> bool {
    window_phase(w, now).0
}

/// Whether `w` is open at `now`, and until when that holds (Unix ms): the closing time
/// of an open window, the next opening of a closed one (`i64::MAX`: never).
pub fn window_phase(w: &Window, now: Timestamp) -> (bool, i64) {
    if w.duration.is_zero() {
        return (false, i64::MAX);
    }
    if let Some(known) = w.memo.get_until(now.millis()) {
        return known;
    }
    let start = now - w.duration;
    let Some(start_local) = w.timezone.timestamp_millis_opt(start.millis()).single() else {
        return (false, i64::MAX);
    };
    // The first opening after `now - duration`: at or before `now`, the window is open
    // until that opening + duration; after `now`, it is closed until then.
    let (from, until, active) = match w.cron.schedule.after(&start_local).next() {
        Some(fire) => {
            let fire = Timestamp::from_datetime(&fire);
            if fire <= now {
                (fire.millis(), (fire + w.duration).millis(), true)
            } else {
                (now.millis(), fire.millis(), false)
            }
        }
        None => (now.millis(), i64::MAX, false),
    };
    w.memo.set(from, until, active);
    (active, until)
}

/// The minimums of the windows that are closed at `now` and open within `horizon`
/// (stage 8's look-ahead): the highest per dimension.
fn upcoming_minimums(windows: &[Window], now: Timestamp, horizon: Duration) -> [Option<u32>; 2] {
    let mut out = [None, None];
    let until = now.millis().saturating_add(millis(horizon));
    for w in windows {
        if w.bandwidth_min.is_none() && w.concurrent_min.is_none() {
            continue;
        }
        let (active, next) = window_phase(w, now);
        if active || next > until {
            continue;
        }
        out[0] = out[0].max(w.bandwidth_min);
        out[1] = out[1].max(w.concurrent_min);
    }
    out
}

/// A change up (`up`) or down at `now` reverses the previous change of the dimension if
/// that one went the other way less than [`FLAP_WINDOW`] ago.
fn is_reversal(st: &DimState, up: bool, now: Timestamp) -> bool {
    let (same, opposite) = if up {
        (st.last_up, st.last_down)
    } else {
        (st.last_down, st.last_up)
    };
    opposite.is_some_and(|o| {
        same.is_none_or(|s| s < o) && now.millis().saturating_sub(o.millis()) < millis(FLAP_WINDOW)
    })
}

/// Stage 8's look-ahead, per dimension: the minimum of a window opening within the lead
/// (pre-scale to it now) and within the scale-down horizon (do not go below it).
struct Ahead {
    lead: Duration,
    prescale: [Option<u32>; 2],
    horizon: Duration,
    floor: [Option<u32>; 2],
}

impl Ahead {
    fn of(policy: &Policy, now: Timestamp) -> Ahead {
        let lead = policy.lead();
        let down = &policy.behavior.scale_down;
        let horizon = down.cooldown.max(down.stabilization);
        if policy.windows.is_empty() {
            return Ahead {
                lead,
                prescale: [None, None],
                horizon,
                floor: [None, None],
            };
        }
        Ahead {
            lead,
            prescale: upcoming_minimums(&policy.windows, now, lead),
            horizon,
            floor: upcoming_minimums(&policy.windows, now, horizon.max(lead)),
        }
    }
    fn idx(dim: Dim) -> usize {
        match dim {
            Dim::Bandwidth => 0,
            Dim::Concurrent => 1,
        }
    }
}

struct DimCtx<'a> {
    policy: &'a Policy,
    cfg: &'a Dimension,
    dim: Dim,
    current: u32,
    values: &'a [u32],
    now: Timestamp,
    reasons: &'a mut Vec<Reason>,
}

impl DimCtx<'_> {
    fn reason(&mut self, code: ReasonCode, detail: impl Into<Detail>) {
        self.reasons.push(Reason::new(code, Some(self.dim), detail));
    }

    fn up(&self) -> &DirectionBehavior {
        &self.policy.behavior.scale_up
    }
    fn down(&self) -> &DirectionBehavior {
        &self.policy.behavior.scale_down
    }

    /// Stages 2–9 for one dimension. Updates the dimension's controller state (missing
    /// streak, stabilization history); cooldown stamps are set by stage 10.
    fn run(
        &mut self,
        obs: &Observation,
        st: &mut DimState,
        windows: &WindowBounds,
        ahead: &Ahead,
    ) -> DimTrace {
        let current = self.current;
        let mut t = DimTrace {
            managed: true,
            ..DimTrace::unmanaged(current)
        };
        let (mut min, mut max, window_bound) = self.bounds(windows);
        // A window opening within the lead: its minimum is in effect now, so the change
        // is done when the window opens.
        let prescale = ahead.prescale[Ahead::idx(self.dim)].filter(|&m| m > min);
        if let Some(m) = prescale {
            min = m;
            max = max.max(m);
        }
        t.min = min;
        t.max = max;

        // 2. Data.
        let reading = obs.signals.get(&self.cfg.signal);
        let demand = match reading {
            Some(Reading::Value { value, .. }) if value.is_finite() && *value >= 0.0 => *value,
            other => {
                st.missing_streak = st.missing_streak.saturating_add(1);
                let why = match other {
                    Some(Reading::Missing { reason }) => reason.code(),
                    Some(Reading::Value { .. }) => "invalid_value",
                    None => NoData::NoSeries.code(),
                };
                return self.missing(st, why, t);
            }
        };
        st.missing_streak = 0;
        t.demand = Some(demand);

        // A reading at (or near) the cap is censored: the demand behind it is unknown.
        let cap = match self.dim {
            Dim::Bandwidth => f64::from(current),
            Dim::Concurrent => f64::from(current) * 10_000.0,
        };
        let saturated = cap > 0.0 && demand >= self.cfg.saturation * cap;

        // 3–5. Raw need, tolerance, ladder (or a step rule); a saturated reading skips the
        // tolerance band and goes up at least max_steps.
        let mut recommended = match &self.cfg.rule {
            Rule::TargetTracking { target_utilization } => {
                let need = match self.dim {
                    Dim::Bandwidth => demand / target_utilization,
                    Dim::Concurrent => demand / (10_000.0 * target_utilization),
                };
                t.raw_need = Some(need);
                if saturated {
                    let cover = self.ladder(need);
                    self.saturated(demand, cap, cover)
                } else {
                    self.tolerance_and_ladder(need)
                }
            }
            Rule::Steps(rules) => {
                let v = self.step_rule(demand, rules);
                if saturated {
                    self.saturated(demand, cap, v)
                } else {
                    v
                }
            }
        };
        // The seasonal forecast: only ever raises.
        if let Some(need) = t.raw_need {
            let (r, forecast) = self.predictive(st, need, recommended);
            recommended = r;
            t.forecast = forecast;
        }
        t.recommended = recommended;
        // What a past reading needs kept: at `hold_utilization`, not the target (a peak
        // only needs serving if it comes back). A censored reading keeps its whole step up.
        let held = match (&self.cfg.rule, self.cfg.hold_utilization) {
            (Rule::TargetTracking { .. }, Some(hold)) if !saturated => {
                let need = match self.dim {
                    Dim::Bandwidth => demand / hold,
                    Dim::Concurrent => demand / (10_000.0 * hold),
                };
                let cover = self.values.iter().copied().find(|&v| f64::from(v) >= need);
                Some(cover.map_or(recommended, |v| v.min(recommended)))
            }
            (_, Some(_)) => Some(recommended),
            _ => None,
        };

        // 6. Stabilization (HPA): record, then clamp the current value into
        // [lowest recommendation within the up window, highest within the down window].
        let stabilized = self.stabilize(st, recommended, held);
        t.stabilized = stabilized;

        // 7. Rate: at most max_steps ladder steps per change.
        let rate_limited = self.rate_limit(stabilized);
        t.rate_limited = rate_limited;

        // 8. Bounds: policy min/max (adjusted by windows) intersected with the ladder.
        let Some(mut bounded) = self.bound(rate_limited, min, max, window_bound) else {
            return t;
        };
        if prescale.is_some() && bounded > rate_limited {
            self.reason(
                ReasonCode::WindowAhead,
                format!(
                    "a window opening within {} sets the minimum to {min} {}: in effect now, so \
                     the capacity is there when it opens",
                    crate::time::format_duration(ahead.lead),
                    self.dim.unit()
                ),
            );
        }
        // Not below the minimum of a window that opens within the scale-down horizon:
        // going down now would only buy a scale-up when it opens.
        if bounded < current
            && let Some(m) = ahead.floor[Ahead::idx(self.dim)]
        {
            // An allowed value: the cheapest covering `m`, else the highest not above the
            // max or the current value (both may lie off the ladder).
            let cap = max.min(current);
            let floor = self
                .values
                .iter()
                .copied()
                .filter(|&v| v <= cap)
                .find(|&v| v >= m)
                .or_else(|| self.values.iter().copied().rev().find(|&v| v <= cap))
                .unwrap_or(bounded);
            if floor > bounded {
                self.reason(
                    ReasonCode::WindowAhead,
                    format!(
                        "a window opening within {} raises the minimum to {m} {}: not going \
                         below {floor}",
                        crate::time::format_duration(ahead.horizon.max(ahead.lead)),
                        self.dim.unit()
                    ),
                );
                bounded = floor;
            }
        }
        t.bounded = bounded;

        // 9. Cooldown per direction since this dimension's last applied change. A current
        // value outside the bounds is corrected regardless.
        let forced = current < min || current > max;
        t.target = if forced {
            bounded
        } else {
            self.cooldown(st, bounded)
        };
        // Capacity paid for today is kept until the last evaluations of the billing day.
        if !forced && t.target < current && self.policy.hold_paid_capacity {
            let left = billing_day_left_ms(self.now);
            if left > millis(self.policy.lead()) {
                self.reason(
                    ReasonCode::HoldPaidCapacity,
                    format!(
                        "today's {current} {} is paid for (a day is billed at its highest \
                         specification): going down to {} waits for the last {} of the \
                         billing day, {} from now",
                        self.dim.unit(),
                        t.target,
                        crate::time::format_duration(self.policy.lead()),
                        crate::time::format_duration(Duration::from_millis(left as u64)),
                    ),
                );
                t.target = current;
            }
        }
        t
    }

    /// Effective (min, max) and whether a window set either.
    fn bounds(&self, windows: &WindowBounds) -> (u32, u32, bool) {
        let (wmin, wmax) = windows.for_dim(self.dim);
        let min = wmin.unwrap_or(self.cfg.min);
        let max = wmax.unwrap_or(self.cfg.max);
        // A window that raises min above max wins: capacity first.
        let max = max.max(min);
        (
            min,
            max,
            windows.any_active && (wmin.is_some() || wmax.is_some()),
        )
    }

    /// Stage 2 without data: hold, or after `after` consecutive failures go to the fallback
    /// value, but only upward.
    fn missing(&mut self, st: &DimState, why: &str, mut t: DimTrace) -> DimTrace {
        let md = &self.policy.on_missing_data;
        let fallback = match self.dim {
            Dim::Bandwidth => md.bandwidth,
            Dim::Concurrent => md.concurrent,
        };
        let current = self.current;
        if md.action == MissingAction::Fallback
            && st.missing_streak >= md.after
            && let Some(fb) = fallback
        {
            // Cheapest allowed value within bounds covering the fallback, never below current.
            let allowed = self
                .values
                .iter()
                .copied()
                .filter(|&v| v >= t.min && v <= t.max);
            let cover = allowed.clone().find(|&v| v >= fb).or_else(|| allowed.max());
            if let Some(v) = cover.filter(|&v| v > current) {
                self.reason(
                    ReasonCode::DataFallback,
                    format!(
                        "no data ({why}) for {} evaluations in a row: fallback upward to {v} {}",
                        st.missing_streak,
                        self.dim.unit()
                    ),
                );
                t.recommended = v;
                t.stabilized = v;
                t.rate_limited = v;
                t.bounded = v;
                t.target = v;
                return t;
            }
        }
        self.reason(
            ReasonCode::DataMissing,
            format!(
                "no data for signal `{}` ({why}, {} in a row): holding {current} {}",
                self.cfg.signal,
                st.missing_streak,
                self.dim.unit()
            ),
        );
        t
    }

    /// The cheapest allowed value covering `need` (the largest if none does).
    fn cover(&self, need: f64) -> u32 {
        self.values
            .iter()
            .copied()
            .find(|&v| f64::from(v) >= need)
            .unwrap_or_else(|| {
                *self
                    .values
                    .last()
                    .expect("guard ensures a non-empty ladder")
            })
    }

    /// A saturated reading: at least `max_steps` up from the current value, at least
    /// `at_least`, whatever the tolerance.
    fn saturated(&mut self, demand: f64, cap: f64, at_least: u32) -> u32 {
        let steps = self.up().max_steps.max(1);
        let out = self.shift(self.current, steps_i32(steps)).max(at_least);
        self.reason(
            ReasonCode::DataSaturated,
            format!(
                "demand reads {:.0}% of the capacity in effect ({} {}): the cap hides the \
                 real demand, so going up at least {steps} ladder step(s) at once, to {out}",
                100.0 * demand / cap,
                self.current,
                self.dim.unit()
            ),
        );
        out
    }

    /// The seasonal recommender: learns `need`, and raises `recommended` to the forecast
    /// of the need `lead` ahead (`scale`), or says it would (`forecast-only`).
    fn predictive(
        &mut self,
        st: &mut DimState,
        need: f64,
        recommended: u32,
    ) -> (u32, Option<(Timestamp, f64)>) {
        let p = &self.policy.predictive;
        if p.mode == PredictiveMode::Off {
            return (recommended, None);
        }
        let days = (p.lookback.as_secs() / 86_400) as usize;
        st.season.record(self.now, need, days);
        let lead = self.policy.lead();
        let at = self.now + lead;
        let Some(fc) = st.season.forecast(at, p.quantile) else {
            return (recommended, None);
        };
        let forecast = Some((at, fc));
        let v = self.cover(fc);
        if v <= recommended {
            return (recommended, forecast);
        }
        let scale = p.mode == PredictiveMode::Scale;
        self.reason(
            ReasonCode::PredictiveAhead,
            Detail::Predictive {
                lead,
                forecast: fc,
                quantile: p.quantile,
                to: v,
                recommended,
                scale,
            },
        );
        (if scale { v } else { recommended }, forecast)
    }

    /// Stage 5: the cheapest allowed value covering `need`; the largest, said, if none does.
    fn ladder(&mut self, need: f64) -> u32 {
        match self.values.iter().copied().find(|&v| f64::from(v) >= need) {
            Some(v) => v,
            None => {
                let top = *self
                    .values
                    .last()
                    .expect("guard ensures a non-empty ladder");
                self.reason(
                    ReasonCode::LadderTop,
                    format!(
                        "need {need:.2} exceeds the largest allowed value {top} {}",
                        self.dim.unit()
                    ),
                );
                top
            }
        }
    }

    /// Stages 4 and 5 for target tracking.
    fn tolerance_and_ladder(&mut self, need: f64) -> u32 {
        let current = self.current;
        let cur = f64::from(current);
        let within = |tolerance: f64, above: bool| Detail::WithinTolerance {
            need,
            tolerance,
            current,
            above,
        };
        if need > cur && need <= cur * (1.0 + self.up().tolerance) {
            let detail = within(self.up().tolerance, true);
            self.reason(ReasonCode::WithinTolerance, detail);
            return current;
        }
        if need < cur && need >= cur * (1.0 - self.down().tolerance) {
            let detail = within(self.down().tolerance, false);
            self.reason(ReasonCode::WithinTolerance, detail);
            return current;
        }
        if need == cur {
            return current;
        }
        self.ladder(need)
    }

    /// Stages 3–5 for step rules: utilization = demand / current capacity; the matching
    /// rule with the largest |change| moves the value by that many ladder steps. A step
    /// down that would land the same demand in an upward rule holds instead.
    fn step_rule(&mut self, demand: f64, rules: &[crate::policy::StepRule]) -> u32 {
        let cap = match self.dim {
            Dim::Bandwidth => f64::from(self.current),
            Dim::Concurrent => f64::from(self.current) * 10_000.0,
        };
        let util = if cap > 0.0 {
            demand / cap
        } else {
            f64::INFINITY
        };
        let matching = rules
            .iter()
            .filter(|r| r.above.is_none_or(|a| util >= a) && r.below.is_none_or(|b| util < b));
        // Largest |change| wins; on a tie (or up vs down) upward wins.
        let Some(rule) = matching.max_by_key(|r| (r.change.unsigned_abs(), r.change > 0)) else {
            return self.current;
        };
        let target = self.shift(self.current, rule.change);
        if target < self.current {
            // Anticipated flapping (AWS's check): if the same demand on the lower value
            // would fall in an upward band, going down now only buys a scale-up next time.
            let after = match self.dim {
                Dim::Bandwidth => f64::from(target),
                Dim::Concurrent => f64::from(target) * 10_000.0,
            };
            let util_after = if after > 0.0 {
                demand / after
            } else {
                f64::INFINITY
            };
            let up_rule = rules.iter().find(|r| {
                r.change > 0
                    && r.above.is_none_or(|a| util_after >= a)
                    && r.below.is_none_or(|b| util_after < b)
            });
            if let Some(up) = up_rule {
                self.reason(
                    ReasonCode::AnticipatedFlapping,
                    format!(
                        "utilization {util:.2}: {:+} ladder steps → {target} would make it \
                         {util_after:.2}, inside the {:+} rule: holding {}",
                        rule.change, up.change, self.current
                    ),
                );
                return self.current;
            }
        }
        if target != self.current {
            let band = match (rule.above, rule.below) {
                (Some(a), Some(b)) => format!("in [{a}, {b})"),
                (Some(a), None) => format!(">= {a}"),
                (None, Some(b)) => format!("< {b}"),
                (None, None) => "any".into(),
            };
            self.reason(
                ReasonCode::StepRule,
                format!(
                    "utilization {util:.2} {band}: {:+} ladder steps → {target}",
                    rule.change
                ),
            );
        }
        target
    }

    /// Moves `n` ladder steps from `from` (which may be off the ladder), clamped to the ends.
    fn shift(&self, from: u32, n: i32) -> u32 {
        let v = self.values;
        if n > 0 {
            let first_above = v.partition_point(|&x| x <= from);
            let idx = first_above + n as usize - 1;
            v.get(idx)
                .copied()
                .unwrap_or_else(|| v[v.len() - 1].max(from))
        } else if n < 0 {
            let below = v.partition_point(|&x| x < from); // values strictly below
            let k = n.unsigned_abs() as usize;
            if below == 0 {
                from.min(v[0])
            } else {
                v[below.saturating_sub(k)]
            }
        } else {
            from
        }
    }

    fn stabilize(&mut self, st: &mut DimState, recommended: u32, held: Option<u32>) -> u32 {
        // In milliseconds: this runs for every evaluation with data (the replay's hot path).
        let now = self.now.millis();
        let up_w = self.up().stabilization;
        let base_w = self.down().stabilization;
        // The flap budget may stretch the scale-down window; history is kept for the
        // longest it can be, so a stretched window has the history to hold on.
        let (down_w, keep_w) = self.flap_window(st);
        let level = if self.policy.behavior.flap_budget.is_some() {
            update_level(&mut st.level, self.now, recommended)
        } else {
            f64::from(recommended)
        };
        let (up_ms, down_ms, base_ms) = (millis(up_w), millis(down_w), millis(base_w));
        let keep = up_ms.max(millis(keep_w));
        // One pass: drop what no window needs any more (and anything from the future),
        // and take the lowest recommendation within the up window and the highest within
        // the down window. The new one, taken at `now`, is within both even for a zero
        // window (as is any other taken at `now`). With `hold_utilization` the down
        // windows read the held values instead (the reading of `now` still counts whole).
        let (mut up_rec, mut down_rec, mut base_rec) = (recommended, recommended, recommended);
        let split = held.is_some();
        let mut scan = |hist: &mut Vec<(Timestamp, u32)>, up: bool, down: bool| {
            let mut kept = 0;
            let mut sorted = true;
            for i in 0..hist.len() {
                let (t, v) = hist[i];
                let age = now.saturating_sub(t.millis());
                if age < 0 || age >= keep {
                    continue;
                }
                sorted &= kept == 0 || hist[kept - 1].0 <= t;
                hist[kept] = (t, v);
                kept += 1;
                if up && (age == 0 || age < up_ms) {
                    up_rec = up_rec.min(v);
                }
                if down && (age == 0 || age < down_ms) {
                    down_rec = down_rec.max(v);
                }
                if down && (age == 0 || age < base_ms) {
                    base_rec = base_rec.max(v);
                }
            }
            hist.truncate(kept);
            sorted
        };
        let sorted = scan(&mut st.recommendations, true, !split);
        st.recommendations.push((self.now, recommended));
        if sorted {
            drop_dominated(&mut st.recommendations);
        }
        if let Some(h) = held {
            let sorted = scan(&mut st.held, false, true);
            st.held.push((self.now, h));
            if sorted {
                drop_dominated(&mut st.held);
            }
        }
        // No history yet covers the scale-down window: do not go below the current value.
        let since = st.observed_since.get_or_insert(self.now).millis();
        let observed = now.saturating_sub(since).max(0);
        if observed < base_ms {
            down_rec = down_rec.max(self.current);
            base_rec = base_rec.max(self.current);
        }
        let (current, floor) = (self.current, self.current.max(up_rec));
        let clamp = move |hi: u32| floor.min(hi);
        let mut out = clamp(down_rec);
        // `change_worth`: a scale-down freeing F may go once nothing above its value was
        // asked for within worth / F (stretched like the window by the flap budget).
        // And a window stretched by the flap budget holds a release of F for at most
        // FLAP_RELEASE_SHARE × level / F of its length, never less than the policy's own
        // window: the stretch is for the small releases that flap back. The sooner wins.
        let worth = self.cfg.change_worth;
        let stretched = down_ms > base_ms;
        if (worth.is_some() || stretched) && out > clamp(recommended) {
            let hist = if split { &st.held } else { &st.recommendations };
            let stretch = if base_ms > 0 {
                down_ms as f64 / base_ms as f64
            } else {
                1.0
            };
            let whole = out;
            for &v in self.values.iter() {
                if v < clamp(recommended) || v >= whole {
                    continue;
                }
                let freed = f64::from(current - v);
                let by_worth = worth.map(|worth| {
                    let w = ((worth / freed * 3_600_000.0 * stretch) as i64).min(down_ms);
                    (w, Release::Worth(worth))
                });
                let by_share = stretched.then(|| {
                    let share = FLAP_RELEASE_SHARE * level / freed;
                    let w = ((share * down_ms as f64) as i64).clamp(base_ms, down_ms);
                    (w, Release::FlapShare)
                });
                let Some((w, release)) = by_worth.into_iter().chain(by_share).min_by_key(|r| r.0)
                else {
                    continue;
                };
                if observed < w || w >= down_ms {
                    continue;
                }
                let highest = hist
                    .iter()
                    .filter(|(t, _)| now.saturating_sub(t.millis()) < w)
                    .map(|&(_, r)| r)
                    .fold(recommended, u32::max);
                if highest <= v {
                    out = v;
                    let wait = crate::time::format_duration(Duration::from_millis(w as u64));
                    let words = match release {
                        Release::Worth(worth) => format!(
                            "freeing {} {} is worth a change after {wait} (change_worth \
                             {worth}): nothing above {v} was needed since, so not holding \
                             {whole} for the whole {} window",
                            current - v,
                            self.dim.unit(),
                            crate::time::format_duration(down_w),
                        ),
                        Release::FlapShare => format!(
                            "freeing {} {} (more than {:.0}% of the {:.0} this proxy \
                             typically needs) is worth a change after {wait}: nothing above \
                             {v} was needed since, so the flap budget does not hold {whole} \
                             for its whole {} window",
                            current - v,
                            self.dim.unit(),
                            FLAP_RELEASE_SHARE * 100.0,
                            level,
                            crate::time::format_duration(down_w),
                        ),
                    };
                    self.reason(ReasonCode::ChangeWorth, words);
                    break;
                }
            }
        }
        if out > clamp(base_rec) {
            let base = clamp(base_rec);
            self.reason(
                ReasonCode::FlapBudget,
                format!(
                    "{} reversal(s) within the flap budget's period stretch the scale-down \
                     window from {} to {}: holding {out} (the policy's own window would allow \
                     {base})",
                    st.reversals.len(),
                    crate::time::format_duration(base_w),
                    crate::time::format_duration(down_w),
                ),
            );
            return out;
        }
        if out != recommended {
            let window = if out > recommended { down_w } else { up_w };
            self.reason(
                ReasonCode::Stabilized,
                Detail::Stabilized {
                    recommended,
                    out,
                    window,
                },
            );
        }
        out
    }

    /// The scale-down stabilization in effect and the longest it may become: the
    /// policy's own, doubled for each reversal within the flap budget's period beyond
    /// its allowance (from at least 5 minutes), up to `max_stabilization`. Forgets
    /// reversals older than the period.
    fn flap_window(&self, st: &mut DimState) -> (Duration, Duration) {
        let base = self.down().stabilization;
        let Some(fb) = self.policy.behavior.flap_budget else {
            return (base, base);
        };
        let now = self.now.millis();
        let per = millis(fb.per);
        st.reversals.retain(|t| {
            let age = now.saturating_sub(t.millis());
            (0..per).contains(&age)
        });
        let longest = fb.max_stabilization.max(base);
        let over = (st.reversals.len() as u32).saturating_sub(fb.reversals);
        if over == 0 {
            return (base, longest);
        }
        let from = base.max(FLAP_FLOOR);
        let stretched = from.saturating_mul(1u32 << over.min(16)).min(longest);
        (stretched.max(base), longest)
    }

    fn rate_limit(&mut self, target: u32) -> u32 {
        let current = self.current;
        let limited = if target > current {
            let max_steps = steps_i32(self.up().max_steps.max(1));
            target.min(self.shift(current, max_steps))
        } else if target < current {
            let max_steps = steps_i32(self.down().max_steps.max(1));
            target.max(self.shift(current, -max_steps))
        } else {
            target
        };
        if limited != target {
            let steps = if target > current {
                self.up().max_steps
            } else {
                self.down().max_steps
            };
            self.reason(
                ReasonCode::MaxSteps,
                Detail::MaxSteps {
                    target,
                    steps,
                    current,
                    limited,
                },
            );
        }
        limited
    }

    /// Clamp into the allowed values within [min, max]. None when no allowed value lies
    /// within the bounds (the dimension then holds).
    fn bound(&mut self, target: u32, min: u32, max: u32, window: bool) -> Option<u32> {
        let lo = self.values.iter().copied().find(|&v| v >= min && v <= max);
        let hi = self
            .values
            .iter()
            .rev()
            .copied()
            .find(|&v| v >= min && v <= max);
        let (Some(lo), Some(hi)) = (lo, hi) else {
            self.reason(
                ReasonCode::NoAllowedValue,
                format!(
                    "no allowed value lies within [{min}, {max}]: holding {}",
                    self.current
                ),
            );
            return None;
        };
        let (out, code) = if target < lo {
            (lo, Some(ReasonCode::BoundMin))
        } else if target > hi {
            (hi, Some(ReasonCode::BoundMax))
        } else if !self.values.contains(&target) {
            // Off-ladder (the current value was not an allowed one): the next allowed up.
            let v = self
                .values
                .iter()
                .copied()
                .find(|&v| v >= target)
                .unwrap_or(hi);
            (v.min(hi), None)
        } else {
            (target, None)
        };
        if let Some(code) = code {
            let below = code == ReasonCode::BoundMin;
            let bound = if below { min } else { max };
            self.reason(
                code,
                Detail::Bound {
                    target,
                    below,
                    bound,
                    out,
                },
            );
            if window {
                self.reason(ReasonCode::WindowActive, Detail::WindowBounds { min, max });
            }
        }
        Some(out)
    }

    fn cooldown(&mut self, st: &DimState, target: u32) -> u32 {
        let current = self.current;
        let last_change = st.last_up.max(st.last_down);
        let Some(last) = last_change else {
            return target;
        };
        let since =
            Duration::from_millis(self.now.millis().saturating_sub(last.millis()).max(0) as u64);
        let (code, cd) = if target > current {
            (ReasonCode::CooldownUp, self.up().cooldown)
        } else if target < current {
            (ReasonCode::CooldownDown, self.down().cooldown)
        } else {
            return target;
        };
        if since < cd {
            self.reason(
                code,
                Detail::Cooldown {
                    since,
                    cooldown: cd,
                    current,
                    target,
                },
            );
            current
        } else {
            target
        }
    }
}

/// Milliseconds from `now` to the end of its GAAP billing day (00:00 China Standard Time,
/// UTC+8).
fn billing_day_left_ms(now: Timestamp) -> i64 {
    const DAY: i64 = 86_400_000;
    const OFFSET: i64 = 8 * 3_600_000;
    DAY - (now.millis() + OFFSET).rem_euclid(DAY)
}

/// A step count as a signed shift: `max_steps` beyond `i32::MAX` (no limit) saturates,
/// never wraps to a negative (a step the other way).
fn steps_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Why a scale-down went before its whole (stretched) window was over.
#[derive(Clone, Copy)]
enum Release {
    /// The policy's `change_worth`, in capacity·hours.
    Worth(f64),
    /// The flap budget's share: see [`FLAP_RELEASE_SHARE`].
    FlapShare,
}

/// A window stretched by the flap budget holds a release that frees F for
/// `FLAP_RELEASE_SHARE × level / F` of its length, where `level` is the proxy's typical
/// need (`DimState::level`), never less than the policy's own window (`change_worth`,
/// when sooner, goes first): releasing 3 times the typical need waits about 12 % of it,
/// anything up to 35 % of the typical need all of it. Flaps come back to the level just
/// left, and holding a small release is cheap; a big one costs its size for every hour
/// held. The scale is the proxy's own traffic, not the policy's `max`: a bound is a
/// safety setting, and a release timed by it doubled its waits when `max` went from 500
/// to 1000 (issue 13's explicit policy, default `"0/24h"` budget: 1.49× the oracle's
/// Mbps·h and 2,255 flaps with max 500, 1.49× and 2,530 with max 1000 and no window;
/// timed by `max`, 1.48× and 2,453 but 1.58× and 1,690; holding every release, 1.75×
/// and 916).
pub const FLAP_RELEASE_SHARE: f64 = 0.35;

/// How fast `DimState::level` follows the recommendations: the weight of one taken `dt`
/// after the last is `1 - exp(-dt / LEVEL_DECAY)`.
pub const LEVEL_DECAY: Duration = Duration::from_secs(86_400);

/// Moves `level` toward `recommended` by the time passed since it was last moved (a
/// fresh one starts at it; time going back moves nothing) and returns it.
fn update_level(level: &mut Option<(Timestamp, f64)>, now: Timestamp, recommended: u32) -> f64 {
    let r = f64::from(recommended);
    let next = match *level {
        None => r,
        Some((t, l)) => {
            let dt = now.millis().saturating_sub(t.millis()).max(0) as f64;
            l + (r - l) * (1.0 - (-dt / millis(LEVEL_DECAY) as f64).exp())
        }
    };
    *level = Some((now, next));
    next
}

/// The flap budget doubles a scale-down window from at least this long.
const FLAP_FLOOR: Duration = Duration::from_secs(300);

/// A policy duration in milliseconds (policies hold durations far below i64::MAX ms).
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Drops the recommendations no window can ever need again: one with a newer (or as new)
/// recommendation at least as high *and* one at least as low. Whenever it is within a
/// window, those newer ones are too, so neither the highest within the down window nor the
/// lowest within the up window can be it. `recs` must be oldest first. What stays is short
/// (the record highs and lows counted from the newest), so a 30-minute window at a 30 s
/// interval does not scan 60 entries per evaluation; decisions are unchanged (property-
/// tested against a brute-force stabilization over the whole history).
fn drop_dominated(recs: &mut Vec<(Timestamp, u32)>) {
    let n = recs.len();
    if n < 3 {
        return;
    }
    let (mut hi, mut lo) = (recs[n - 1].1, recs[n - 1].1);
    // Compact towards the end, newest first; the kept ones end up in recs[w..n], in order.
    let mut w = n - 1;
    for i in (0..n - 1).rev() {
        let v = recs[i].1;
        if v > hi || v < lo {
            hi = hi.max(v);
            lo = lo.min(v);
            w -= 1;
            recs[w] = recs[i];
        }
    }
    recs.drain(..w);
}
