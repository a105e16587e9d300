//! Property tests of the decision invariants (DESIGN.md "Invariants"), over arbitrary
//! policies, ladders, proxies, observations and controller states.

use std::time::Duration;

use chrono::{Datelike, TimeZone, Timelike};
use chrono_tz::Tz;
use gaap_autoscaler::core::fixtures;
use gaap_autoscaler::core::*;
use gaap_autoscaler::policy::{
    CronSpec, FlapBudget, MissingAction, Policy, PredictiveMode, Rule, StepRule, Window,
};
use gaap_autoscaler::time::Timestamp;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

const NOW: Timestamp = Timestamp::from_secs(1_795_939_200);

fn ladder_list() -> impl Strategy<Value = Vec<u32>> {
    prop::collection::btree_set(1u32..2000, 1..10).prop_map(|s| s.into_iter().collect())
}

fn reading() -> impl Strategy<Value = Option<Reading>> {
    prop_oneof![
        4 => (0.0f64..5_000_000.0).prop_map(|v| Some(Reading::Value { value: v, at: NOW })),
        // Dated in the past (stale or not) or in the future (a clock ahead of ours).
        2 => (0.0f64..5_000_000.0, -3_600i64..3_600).prop_map(|(v, ago)| Some(Reading::Value { value: v, at: Timestamp(NOW.millis() - ago * 1000) })),
        1 => Just(None),
        1 => Just(Some(Reading::Missing { reason: NoData::NotANumber })),
        1 => Just(Some(Reading::Value { value: f64::NAN, at: NOW })),
        1 => Just(Some(Reading::Value { value: f64::INFINITY, at: NOW })),
        1 => Just(Some(Reading::Missing { reason: NoData::Stale { age_ms: 900_000 } })),
    ]
}

fn dim_state() -> impl Strategy<Value = DimState> {
    (
        prop::collection::vec((-600i64..3600, 1u32..2000), 0..30),
        prop::option::of(-600i64..3600),
        prop::option::of(-600i64..3600),
        0u32..10,
        prop::option::of(-600i64..3600),
        // Reversals (seconds ago) and the seasonal memory: (hours ago, need) over 10 days.
        prop::collection::vec(0i64..10_000, 0..6),
        prop::collection::vec((0i64..240, 0.0f64..3000.0), 0..60),
        // The typical need the flap budget's release share scales with: (seconds ago, level).
        prop::option::of((0i64..86_400, 1.0f64..2000.0)),
    )
        .prop_map(|(recs, up, down, streak, since, revs, season, level)| {
            let mut recommendations: Vec<(Timestamp, u32)> = recs
                .into_iter()
                .map(|(ago, v)| (Timestamp(NOW.millis() - ago * 1000), v))
                .collect();
            recommendations.sort();
            // What `hold_utilization` keeps is at most the recommendation of its reading.
            let held = recommendations
                .iter()
                .map(|&(t, v)| (t, (v * 2 / 3).max(1)))
                .collect();
            DimState {
                recommendations,
                held,
                last_up: up.map(|a| Timestamp(NOW.millis() - a * 1000)),
                last_down: down.map(|a| Timestamp(NOW.millis() - a * 1000)),
                missing_streak: streak,
                observed_since: since.map(|a| Timestamp(NOW.millis() - a * 1000)),
                reversals: {
                    let mut v: Vec<Timestamp> = revs
                        .iter()
                        .map(|a| Timestamp(NOW.millis() - a * 1000))
                        .collect();
                    v.sort();
                    v
                },
                level: level.map(|(a, l)| (Timestamp(NOW.millis() - a * 1000), l)),
                season: {
                    let mut s = Season::default();
                    for (h, need) in season {
                        s.record(Timestamp(NOW.millis() - h * 3_600_000), need, 7);
                    }
                    s
                },
            }
        })
}

/// Time zones for the windows: without and with summer time (none changes within a week
/// of `NOW`, 2026-11-29), and a half-hour offset.
const ZONES: [Tz; 5] = [
    Tz::UTC,
    Tz::Asia__Shanghai,
    Tz::America__New_York,
    Tz::Europe__Berlin,
    Tz::Asia__Kolkata,
];
const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// A time window as the test knows it: opens at `hour:minute` local time in `tz` (every
/// day, or on one weekday), stays open `minutes`, and overrides some bounds.
#[derive(Debug, Clone)]
struct WinSpec {
    tz: Tz,
    hour: u32,
    minute: u32,
    weekday: Option<usize>,
    minutes: u64,
    bandwidth: (Option<u32>, Option<u32>),
    concurrent: (Option<u32>, Option<u32>),
}

impl WinSpec {
    fn cron(&self) -> String {
        let day = self.weekday.map_or("*", |d| DAYS[d]);
        format!("0 {} {} * * {day}", self.minute, self.hour)
    }

    /// The policy's window, built as `core::fixtures::window` builds one.
    fn window(&self) -> Window {
        let expr = self.cron();
        Window {
            cron: CronSpec {
                schedule: expr.parse().expect("a valid cron expression"),
                expr,
            },
            duration: Duration::from_secs(self.minutes * 60),
            timezone: self.tz,
            bandwidth_min: self.bandwidth.0,
            bandwidth_max: self.bandwidth.1,
            concurrent_min: self.concurrent.0,
            concurrent_max: self.concurrent.1,
            memo: Default::default(),
        }
    }

    /// Open at `NOW`, worked out by hand: the latest opening at or before `NOW` (today's
    /// or an earlier day's, on the weekday if one is set) and `NOW` less than `minutes`
    /// after it. An earlier opening closes earlier, so the latest one decides.
    fn active(&self) -> bool {
        let now = NOW.millis();
        let local_now = self.tz.timestamp_millis_opt(now).unwrap();
        for back in 0..=8u64 {
            let day = local_now.date_naive() - chrono::Days::new(back);
            if self
                .weekday
                .is_some_and(|d| day.weekday().num_days_from_monday() as usize != d)
            {
                continue;
            }
            let local = day.and_hms_opt(self.hour, self.minute, 0).unwrap();
            let opened = self.tz.from_local_datetime(&local).single().unwrap();
            let opened = opened.timestamp_millis();
            if opened <= now {
                return now - opened < self.minutes as i64 * 60_000;
            }
        }
        unreachable!("a weekly window opens within 8 days")
    }

    /// The first opening after `NOW` (Unix ms), worked out as [`WinSpec::active`].
    fn next_opening(&self) -> i64 {
        let now = NOW.millis();
        let local_now = self.tz.timestamp_millis_opt(now).unwrap();
        for ahead in 0..=8u64 {
            let day = local_now.date_naive() + chrono::Days::new(ahead);
            if self
                .weekday
                .is_some_and(|d| day.weekday().num_days_from_monday() as usize != d)
            {
                continue;
            }
            let local = day.and_hms_opt(self.hour, self.minute, 0).unwrap();
            let opens = self.tz.from_local_datetime(&local).single().unwrap();
            if opens.timestamp_millis() > now {
                return opens.timestamp_millis();
            }
        }
        unreachable!("a weekly window opens within 8 days")
    }

    /// Closed at `NOW` and opening within `lead` (the look-ahead pre-scales to its min).
    fn opens_within(&self, lead: Duration) -> bool {
        !self.active() && self.next_opening() - NOW.millis() <= lead.as_millis() as i64
    }

    fn bounds(&self, dim: Dim) -> (Option<u32>, Option<u32>) {
        match dim {
            Dim::Bandwidth => self.bandwidth,
            Dim::Concurrent => self.concurrent,
        }
    }
}

/// A window opening `ago` minutes before `NOW` (local wall clock; on its weekday or
/// every day), open for a random time or exactly until `NOW` or one minute past it, or
/// opening one or two minutes after `NOW` (inside and outside the 90 s look-ahead of the
/// fixture's policy), with a min and/or a max for either dimension (a min may lie above
/// the policy's max, a max below its min).
fn window_spec() -> impl Strategy<Value = WinSpec> {
    let bw = || prop::option::of(1u32..1500);
    let cc = || prop::option::of(1u32..40);
    (
        0..ZONES.len(),
        prop_oneof![8 => 0i64..(3 * 1440), 1 => -2i64..0],
        prop::option::of(0usize..7),
        (0u8..4, 1u64..3000),
        (bw(), bw(), cc(), cc()),
    )
        .prop_map(
            |(z, ago, weekday, (mode, random), (bmin, bmax, cmin, cmax))| {
                let tz = ZONES[z];
                let opened =
                    tz.timestamp_millis_opt(NOW.millis()).unwrap() - chrono::Duration::minutes(ago);
                let minutes = match mode {
                    0 if ago > 0 => ago as u64,
                    1 if ago >= 0 => ago as u64 + 1,
                    _ => random,
                };
                WinSpec {
                    tz,
                    hour: opened.hour(),
                    minute: opened.minute(),
                    // Mostly the opening's own weekday (so it opened `ago` minutes ago).
                    weekday: weekday.map(|d| {
                        if d < 4 {
                            opened.weekday().num_days_from_monday() as usize
                        } else {
                            d
                        }
                    }),
                    minutes,
                    bandwidth: (bmin, bmax),
                    concurrent: (cmin, cmax),
                }
            },
        )
}

#[derive(Debug, Clone)]
struct Case {
    policy: Policy,
    ladder: Ladder,
    /// None: the region pair has no ladder (the guard must skip).
    has_ladder: bool,
    proxy: ProxyState,
    obs: Observation,
    state: ControllerState,
    /// The policy's windows (`policy.windows` is built from them).
    windows: Vec<WinSpec>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        (ladder_list(), ladder_list()),
        (1u32..1500, 1u32..1500, 1u32..40, 1u32..40),
        (0.05f64..=1.0, 0.05f64..=1.0, any::<bool>()),
        (
            0.0f64..0.5,
            0.0f64..0.5,
            prop_oneof![4 => 1u32..4, 1 => Just(u32::MAX)],
            prop_oneof![4 => 1u32..4, 1 => Just(u32::MAX)],
        ),
        (0u64..1200, 0u64..1200, 0u64..1200, 0u64..1200),
        (any::<bool>(), 1u32..5, prop::option::of(1u32..1500)),
        (
            prop_oneof![
                Just(None),
                (1u32..1500).prop_map(Some),
                (1u32..40).prop_map(Some)
            ],
            1u32..40,
        ),
        (reading(), reading()),
        (dim_state(), dim_state()),
        (
            status(),
            prop::bool::weighted(0.9),
            any::<bool>(),
            prop::bool::weighted(0.9),
            adaptive(),
        ),
        operator(),
        prop::collection::vec(window_spec(), 0..4),
    )
        .prop_map(|t| {
            let (
                (bw, cc),
                (a, b, c, d),
                (tu_b, tu_c, steps),
                (tol_u, tol_d, ms_u, ms_d),
                (su, sd, cu, cd),
                (fb, after, fbv),
                (cur_b, cur_c),
                (rb, rc),
                (sb, sc),
                (
                    status,
                    has_ladder,
                    cc_steps,
                    scalarable,
                    (saturation, budget, mode, quantile, (hold, worth)),
                ),
                (op, manual_hold, allows_saturation, known_is_current),
                windows,
            ) = t;
            let mut p = fixtures::policy();
            let bwd = p.bandwidth.as_mut().unwrap();
            bwd.min = a.min(b);
            bwd.max = a.max(b);
            bwd.rule = if steps {
                Rule::Steps(vec![
                    StepRule {
                        above: Some(0.9),
                        below: None,
                        change: 2,
                    },
                    StepRule {
                        above: Some(0.7),
                        below: None,
                        change: 1,
                    },
                    StepRule {
                        above: None,
                        below: Some(0.3),
                        change: -1,
                    },
                ])
            } else {
                Rule::TargetTracking {
                    target_utilization: tu_b,
                }
            };
            let ccd = p.concurrent.as_mut().unwrap();
            ccd.min = c.min(d);
            ccd.max = c.max(d);
            ccd.rule = if cc_steps {
                Rule::Steps(vec![
                    StepRule {
                        above: Some(0.8),
                        below: None,
                        change: 3,
                    },
                    StepRule {
                        above: None,
                        below: Some(0.4),
                        change: -2,
                    },
                ])
            } else {
                Rule::TargetTracking {
                    target_utilization: tu_c,
                }
            };
            p.behavior.scale_up.tolerance = tol_u;
            p.behavior.scale_down.tolerance = tol_d;
            p.behavior.scale_up.max_steps = ms_u;
            p.behavior.scale_down.max_steps = ms_d;
            p.behavior.scale_up.stabilization = Duration::from_secs(su);
            p.behavior.scale_down.stabilization = Duration::from_secs(sd);
            p.behavior.scale_up.cooldown = Duration::from_secs(cu);
            p.behavior.scale_down.cooldown = Duration::from_secs(cd);
            p.on_missing_data.action = if fb {
                MissingAction::Fallback
            } else {
                MissingAction::Hold
            };
            p.on_missing_data.after = after;
            for dim in [&mut p.bandwidth, &mut p.concurrent].into_iter().flatten() {
                dim.saturation = saturation;
                if let Rule::TargetTracking { target_utilization } = dim.rule {
                    dim.hold_utilization =
                        hold.map(|h| target_utilization + h * (1.0 - target_utilization));
                }
                dim.change_worth = worth;
            }
            p.behavior.flap_budget = budget;
            p.predictive.mode = mode;
            p.predictive.quantile = quantile;
            p.on_missing_data.bandwidth = fbv;
            p.on_missing_data.concurrent = fbv.map(|v| v % 40 + 1);
            let ladder = Ladder::new(bw, cc);
            // Current values: on the ladder most of the time, anywhere otherwise.
            let on = |list: &[u32], pick: Option<u32>, fallback: u32| match pick {
                Some(v) if v % 3 != 0 => list[(v as usize) % list.len()],
                Some(v) => v,
                None => fallback,
            };
            let mut proxy = fixtures::proxy(
                on(&ladder.bandwidth, cur_b, ladder.bandwidth[0]),
                on(&ladder.concurrent, Some(cur_c), ladder.concurrent[0]),
            );
            proxy.status = status;
            proxy.scalarable = i64::from(scalarable);
            p.windows = windows.iter().map(WinSpec::window).collect();
            let mut obs = Observation::default();
            if let Some(r) = rb {
                obs.signals.insert("bandwidth".into(), r);
            }
            if let Some(r) = rc {
                obs.signals.insert("connections".into(), r);
            }
            p.manual_hold = manual_hold;
            p.manual_hold_allows_saturation = allows_saturation;
            let mut op = op;
            if known_is_current {
                op.last_known = Some((proxy.bandwidth, proxy.concurrent));
            }
            Case {
                policy: p,
                ladder,
                has_ladder,
                proxy,
                obs,
                state: ControllerState {
                    bandwidth: sb,
                    concurrent: sc,
                    operator: op,
                },
                windows,
            }
        })
}

/// The settings of the adaptive stages: saturation, the flap budget, the predictive mode
/// and quantile, the peak hold (a share of the way from the target to 1) and the change
/// worth (capacity·hours).
type Adaptive = (
    f64,
    Option<FlapBudget>,
    PredictiveMode,
    f64,
    (Option<f64>, Option<f64>),
);

fn adaptive() -> impl Strategy<Value = Adaptive> {
    (
        0.3f64..=1.0,
        prop::option::of((0u32..3, 600u64..7200, 0u64..14_400)).prop_map(|b| {
            b.map(|(reversals, per, max)| FlapBudget {
                reversals,
                per: Duration::from_secs(per),
                max_stabilization: Duration::from_secs(max),
            })
        }),
        prop::sample::select(vec![
            PredictiveMode::Off,
            PredictiveMode::ForecastOnly,
            PredictiveMode::Scale,
        ]),
        0.0f64..=1.0,
        (
            prop::option::of(0.0f64..=1.0),
            prop::option::of(prop_oneof![0.01f64..10.0, 10.0f64..5000.0]),
        ),
    )
}

/// `policy` without `hold_utilization` and `change_worth` (every scale-down waits the
/// whole window, for peaks kept at the target).
fn without_early_release(policy: &Policy) -> Policy {
    let mut p = policy.clone();
    for dim in [&mut p.bandwidth, &mut p.concurrent].into_iter().flatten() {
        dim.hold_utilization = None;
        dim.change_worth = None;
    }
    p
}

/// `policy` with the stages that only raise turned off: no saturation, no forecast.
fn without_raising_stages(policy: &Policy) -> Policy {
    let mut p = policy.clone();
    for dim in [&mut p.bandwidth, &mut p.concurrent].into_iter().flatten() {
        dim.saturation = f64::INFINITY;
    }
    p.predictive.mode = PredictiveMode::Off;
    p
}

/// The operator part of the state: values last known (none, the current ones, others),
/// a manual hold (none, over, running, forever), and the policy's manual_hold settings.
fn operator() -> impl Strategy<Value = (OperatorState, ManualHold, bool, bool)> {
    (
        prop::option::of((1u32..1500, 1u32..40)),
        prop_oneof![
            Just(None),
            (-7_200i64..7_200).prop_map(|s| Some(Timestamp(NOW.millis() + s * 1000))),
            Just(Some(operator::FOREVER)),
        ],
        prop_oneof![
            Just(ManualHold::Off),
            (1u64..7_200).prop_map(|s| ManualHold::For(Duration::from_secs(s))),
            Just(ManualHold::Forever),
        ],
        any::<bool>(),
        prop::bool::weighted(0.5),
    )
        .prop_map(|(known, until, mh, sat, current)| {
            (
                OperatorState {
                    last_known: known,
                    manual_hold_until: until,
                    manual_change: None,
                },
                mh,
                sat,
                current,
            )
        })
}

/// RUNNING most of the time; ADJUSTING and other states too.
fn status() -> impl Strategy<Value = ProxyStatus> {
    prop_oneof![
        6 => Just(ProxyStatus::Running),
        2 => Just(ProxyStatus::Adjusting),
        1 => prop::sample::select(vec!["CLOSED", "CREATING", "ISOLATED", "SOMETHING_NEW"])
            .prop_map(ProxyStatus::parse),
    ]
}

impl Case {
    fn ladder(&self) -> Option<&Ladder> {
        self.has_ladder.then_some(&self.ladder)
    }
}

fn has_data(obs: &Observation, signal: &str) -> bool {
    matches!(obs.signals.get(signal), Some(Reading::Value { value, .. }) if value.is_finite() && *value >= 0.0)
}

/// The bounds in effect at `NOW` for `dim`, computed here (ARCHITECTURE.md): the policy's
/// min/max, replaced by the highest min and the lowest max of the windows open at `NOW`;
/// a max below the min is raised to the min. Then the look-ahead: the highest min of the
/// windows closed at `NOW` that open within the policy's lead, where it is higher, is the
/// min (and raises the max to it).
fn expected_bounds(c: &Case, dim: Dim) -> (u32, u32) {
    let cfg = match dim {
        Dim::Bandwidth => c.policy.bandwidth.as_ref(),
        Dim::Concurrent => c.policy.concurrent.as_ref(),
    }
    .unwrap();
    let open: Vec<&WinSpec> = c.windows.iter().filter(|w| w.active()).collect();
    let min = open
        .iter()
        .filter_map(|w| w.bounds(dim).0)
        .max()
        .unwrap_or(cfg.min);
    let max = open
        .iter()
        .filter_map(|w| w.bounds(dim).1)
        .min()
        .unwrap_or(cfg.max);
    let (min, max) = (min, max.max(min));
    let lead = c.policy.lead();
    match c
        .windows
        .iter()
        .filter(|w| w.opens_within(lead))
        .filter_map(|w| w.bounds(dim).0)
        .max()
    {
        Some(ahead) if ahead > min => (ahead, max.max(ahead)),
        _ => (min, max),
    }
}

fn dims(c: &Case, d: &Decision) -> [(Dim, u32, u32, &'static str); 2] {
    let _ = c;
    [
        (
            Dim::Bandwidth,
            d.bandwidth_from,
            d.bandwidth_to,
            "bandwidth",
        ),
        (
            Dim::Concurrent,
            d.concurrent_from,
            d.concurrent_to,
            "connections",
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// While a manual hold lasts (one in the state, or one started by a change seen now),
    /// no change goes out, except a scale-up that moves nothing down, with `data.saturated`
    /// among its reasons, when the policy allows it.
    #[test]
    fn a_manual_hold_lets_no_change_through(c in case()) {
        let d = decide(&c.policy, &c.proxy, c.ladder(), &c.obs, &c.state, NOW);
        let seen = (c.proxy.bandwidth, c.proxy.concurrent);
        let running = c.state.operator.manual_hold_until.is_some_and(|u| NOW < u);
        let guard_passed = !d.reason_codes().iter().any(|r| r.starts_with("guard."));
        let detected = guard_passed && c.state.operator.last_known.is_some_and(|k| k != seen);
        let started = detected && c.policy.manual_hold.until(NOW).is_some();
        if d.verdict == Verdict::Change && (running || started) {
            let down = d.bandwidth_to < d.bandwidth_from || d.concurrent_to < d.concurrent_from;
            let saturated = d.reasons.iter().any(|r| r.code == ReasonCode::DataSaturated);
            prop_assert!(c.policy.manual_hold_allows_saturation && saturated && !down,
                "a change through a manual hold: {:?}", d.reason_codes());
        }
        if detected {
            prop_assert!(d.reasons.iter().any(|r| r.code == ReasonCode::ObservedManualChange));
        }
        // What is last known afterwards is what the proxy is at once this decision is done.
        if guard_passed {
            let after = if d.verdict == Verdict::Change { (d.bandwidth_to, d.concurrent_to) } else { seen };
            prop_assert_eq!(d.next_state.operator.last_known, Some(after));
        }
    }

    /// A paused direction (the policy file's, or one paused at run time and applied after
    /// `decide`) never produces a change in that direction.
    #[test]
    fn a_paused_direction_never_changes(c in case(), up in any::<bool>(), down in any::<bool>(), in_file in any::<bool>()) {
        let paused = Paused { up, down };
        let mut policy = c.policy.clone();
        let mut d = if in_file {
            policy.paused = paused;
            decide(&policy, &c.proxy, c.ladder(), &c.obs, &c.state, NOW)
        } else {
            let mut d = decide(&policy, &c.proxy, c.ladder(), &c.obs, &c.state, NOW);
            apply_pause(&mut d, &c.state, paused, "paused by a test".into());
            d
        };
        if up {
            prop_assert!(d.bandwidth_to <= d.bandwidth_from && d.concurrent_to <= d.concurrent_from);
        }
        if down {
            prop_assert!(d.bandwidth_to >= d.bandwidth_from && d.concurrent_to >= d.concurrent_from);
        }
        if let Some(dir) = d.direction.take() {
            prop_assert!(!paused.covers(dir));
        }
    }

    /// Any value that would be sent is an allowed value within the bounds in effect at
    /// `NOW` (the policy's, adjusted by the open windows: computed here, not by the
    /// implementation), and the decision states those bounds.
    #[test]
    fn sent_values_are_allowed_and_within_the_window_adjusted_bounds(c in case()) {
        let d = decide(&c.policy, &c.proxy, c.ladder(), &c.obs, &c.state, NOW);
        for (dim, from, to, _) in dims(&c, &d) {
            let (min, max) = expected_bounds(&c, dim);
            let trace = match dim { Dim::Bandwidth => &d.bandwidth, Dim::Concurrent => &d.concurrent };
            if trace.managed {
                prop_assert_eq!((trace.min, trace.max), (min, max), "{:?} bounds", dim);
            }
            if to != from {
                prop_assert!(c.ladder.values(dim).contains(&to), "{dim:?} {to} not in ladder {:?}", c.ladder.values(dim));
                prop_assert!(to >= min && to <= max, "{dim:?} {to} outside [{min}, {max}]");
            }
        }
        prop_assert_eq!(d.verdict == Verdict::Change, d.bandwidth_to != d.bandwidth_from || d.concurrent_to != d.concurrent_from);
        // Only a RUNNING, Scalarable 1 proxy with a ladder may change.
        if d.verdict == Verdict::Change {
            prop_assert!(c.proxy.status == ProxyStatus::Running && c.proxy.scalarable == 1 && c.has_ladder);
        }
    }

    /// Missing data never lowers capacity.
    #[test]
    fn missing_data_never_scales_down(c in case()) {
        let d = decide(&c.policy, &c.proxy, c.ladder(), &c.obs, &c.state, NOW);
        for (_, from, to, signal) in dims(&c, &d) {
            if !has_data(&c.obs, signal) {
                prop_assert!(to >= from, "{signal}: {from} -> {to} without data");
            }
        }
    }

    /// No change within a direction's cooldown (unless the current value violates the
    /// bounds), stated on its own terms (DESIGN.md stage 9: "cooldown per direction since
    /// the last applied change"): a change in a direction needs the last change, in either
    /// direction, at least that direction's cooldown ago; a stamp dated in the future
    /// counts as just now.
    #[test]
    fn cooldown_holds(c in case()) {
        let d = decide(&c.policy, &c.proxy, c.ladder(), &c.obs, &c.state, NOW);
        for (dim, from, to, signal) in dims(&c, &d) {
            let (min, max) = expected_bounds(&c, dim);
            let st = c.state.dim(dim);
            let ago = |t: Option<Timestamp>| t.map(|t| Duration::from_millis((NOW.millis() - t.millis()).max(0) as u64));
            let in_bounds = from >= min && from <= max;
            if !(in_bounds && has_data(&c.obs, signal)) { continue; }
            if to > from && let Some(a) = ago(st.last_up.max(st.last_down)) {
                prop_assert!(a >= c.policy.behavior.scale_up.cooldown, "{dim:?} up {a:?} after the last change");
            }
            if to < from && let Some(a) = ago(st.last_up.max(st.last_down)) {
                prop_assert!(a >= c.policy.behavior.scale_down.cooldown, "{dim:?} down {a:?} after the last change");
            }
        }
    }

    /// At most max_steps ladder steps per change, when the bounds do not force a jump.
    #[test]
    fn max_steps_hold(c in case()) {
        let d = decide(&c.policy, &c.proxy, c.ladder(), &c.obs, &c.state, NOW);
        for (dim, from, to, signal) in dims(&c, &d) {
            let (min, max) = expected_bounds(&c, dim);
            let values = c.ladder.values(dim);
            let lo = values.iter().copied().find(|&v| v >= min && v <= max);
            // Bounds may force a jump when the limited value would fall outside them.
            let forced = from < min || from > max || lo.is_none();
            if forced || !has_data(&c.obs, signal) { continue; }
            // Ladder values strictly between from and to, plus the target itself.
            let (a, b) = (from.min(to), from.max(to));
            let steps = values.iter().filter(|&&v| v > a && v < b).count() + usize::from(to != from && values.contains(&to));
            let max = if to > from { c.policy.behavior.scale_up.max_steps } else { c.policy.behavior.scale_down.max_steps };
            let bound_hit = d.reason_codes().iter().any(|r| r.contains("bounds."));
            if !bound_hit {
                prop_assert!(steps as u32 <= max, "{dim:?}: {from} -> {to} is {steps} steps > {max}");
            }
        }
    }

    /// Same inputs, same output.
    #[test]
    fn deterministic(c in case()) {
        let a = decide(&c.policy, &c.proxy, c.ladder(), &c.obs, &c.state, NOW);
        let b = decide(&c.policy, &c.proxy, c.ladder(), &c.obs, &c.state, NOW);
        prop_assert_eq!(a, b);
    }

    /// A decision that changes nothing still says why.
    #[test]
    fn every_decision_has_reasons(c in case()) {
        let d = decide(&c.policy, &c.proxy, c.ladder(), &c.obs, &c.state, NOW);
        prop_assert!(!d.reasons.is_empty());
    }

    /// A reused decision (the replay's way) gives the same decision as a fresh one, whatever
    /// the buffer held before: only `next_state`, the starting state, carries over.
    #[test]
    fn deciding_into_a_used_decision_equals_deciding_afresh(c in case(), other in case()) {
        let mut d = decide(&other.policy, &other.proxy, other.ladder(), &other.obs, &other.state, NOW);
        d.next_state = c.state.clone();
        let later = Timestamp(NOW.millis() + 1);
        decide_into(&c.policy, &c.proxy, c.ladder(), &c.obs, later, &mut d);
        prop_assert_eq!(d, decide(&c.policy, &c.proxy, c.ladder(), &c.obs, &c.state, later));
    }

    /// Saturation and the seasonal forecast only ever raise: with them, every dimension's
    /// target is at least what it is without them.
    #[test]
    fn saturation_and_prediction_never_lower(c in case()) {
        let with = decide(&c.policy, &c.proxy, c.ladder(), &c.obs, &c.state, NOW);
        let plain = without_raising_stages(&c.policy);
        let without = decide(&plain, &c.proxy, c.ladder(), &c.obs, &c.state, NOW);
        prop_assert!(with.bandwidth_to >= without.bandwidth_to, "bandwidth {} < {}: {:?}", with.bandwidth_to, without.bandwidth_to, with.reason_codes());
        prop_assert!(with.concurrent_to >= without.concurrent_to, "concurrent {} < {}: {:?}", with.concurrent_to, without.concurrent_to, with.reason_codes());
    }

    /// The flap budget only holds scale-downs: where the decision without it goes up, it
    /// goes to the same value with it, and it never ends lower.
    #[test]
    fn the_flap_budget_never_blocks_a_scale_up(c in case()) {
        let with = decide(&c.policy, &c.proxy, c.ladder(), &c.obs, &c.state, NOW);
        let mut p = c.policy.clone();
        p.behavior.flap_budget = None;
        let without = decide(&p, &c.proxy, c.ladder(), &c.obs, &c.state, NOW);
        for (w, wo, from) in [
            (with.bandwidth_to, without.bandwidth_to, with.bandwidth_from),
            (with.concurrent_to, without.concurrent_to, with.concurrent_from),
        ] {
            prop_assert!(w >= wo, "{w} < {wo}");
            if wo > from {
                prop_assert_eq!(w, wo);
            }
        }
    }
}

proptest! {
    /// `hold_utilization` and `change_worth` only let a scale-down go sooner: never a
    /// higher value than without them, the same value wherever that goes up, and never
    /// below the recommendation of the moment (or the current value, if that is lower).
    #[test]
    fn hold_and_change_worth_only_release_sooner(c in case()) {
        let with = decide(&c.policy, &c.proxy, c.ladder(), &c.obs, &c.state, NOW);
        let plain = without_early_release(&c.policy);
        let without = decide(&plain, &c.proxy, c.ladder(), &c.obs, &c.state, NOW);
        for (w, wo, from, t) in [
            (with.bandwidth_to, without.bandwidth_to, with.bandwidth_from, &with.bandwidth),
            (with.concurrent_to, without.concurrent_to, with.concurrent_from, &with.concurrent),
        ] {
            prop_assert!(w <= wo, "{w} > {wo}: {:?}", with.reason_codes());
            if wo > from {
                prop_assert_eq!(w, wo, "{:?}", with.reason_codes());
            }
            if t.managed {
                prop_assert!(
                    t.stabilized >= t.recommended.min(t.current),
                    "stabilized {} below min(recommended {}, current {})",
                    t.stabilized, t.recommended, t.current
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// The controller keeps only the recommendations a window can still need; the
    /// stabilized value must be what HPA's rule gives over the *whole* history: the current
    /// value raised to the lowest recommendation within the up window, then lowered to the
    /// highest within the down window (not below the current value before a whole down
    /// window has been observed).
    #[test]
    fn stabilization_equals_a_brute_force_over_the_whole_history(
        demands in prop::collection::vec(0.0f64..900.0, 1..150),
        interval_s in 5i64..120,
        up_s in 0u64..900,
        down_s in 0u64..3600,
    ) {
        let mut p = fixtures::policy();
        // HPA's rule alone: the flap budget stretches the down window (its own property).
        p.behavior.flap_budget = None;
        p.behavior.scale_up.stabilization = Duration::from_secs(up_s);
        p.behavior.scale_down.stabilization = Duration::from_secs(down_s);
        let ladder = fixtures::ladder();
        let mut proxy = fixtures::proxy(100, 5);
        let mut state = ControllerState::default();
        let mut history: Vec<(i64, u32)> = Vec::new();
        let start = NOW.millis();
        for (i, &demand) in demands.iter().enumerate() {
            let now = Timestamp(start + i as i64 * interval_s * 1000);
            let obs = fixtures::observe(demand, 20_000.0, now);
            let d = decide(&p, &proxy, Some(&ladder), &obs, &state, now);
            let t = &d.bandwidth;
            history.push((now.millis(), t.recommended));
            let within = |w_s: u64| {
                history
                    .iter()
                    .filter(move |&&(at, _)| {
                        let age = now.millis() - at;
                        age == 0 || age < w_s as i64 * 1000
                    })
                    .map(|&(_, v)| v)
            };
            let up_rec = within(up_s).min().unwrap();
            let mut down_rec = within(down_s).max().unwrap();
            if now.millis() - start < down_s as i64 * 1000 {
                down_rec = down_rec.max(t.current);
            }
            let want = t.current.max(up_rec).min(down_rec);
            prop_assert_eq!(t.stabilized, want, "step {}", i);
            prop_assert!(
                d.next_state.bandwidth.recommendations.len() <= history.len(),
                "kept more than was seen"
            );
            state = d.next_state.clone();
            if d.verdict == Verdict::Change {
                proxy.bandwidth = d.bandwidth_to;
                proxy.concurrent = d.concurrent_to;
            }
        }
    }
}

/// The generator reaches the cases the properties are about (so they are not vacuous):
/// open and closed windows, several open at once, a window min above the max in effect,
/// a window max below the policy's min, closing exactly at `NOW`, opening within the
/// look-ahead and just after it, changes held to a
/// window bound, every status, no ladder, Scalarable 0, readings dated in the future and
/// controller stamps dated in the future.
#[test]
fn the_generator_reaches_the_cases_that_matter() {
    let mut runner = TestRunner::deterministic();
    let strategy = case();
    let mut seen = std::collections::BTreeMap::<&str, usize>::new();
    for _ in 0..3000 {
        let c = strategy.new_tree(&mut runner).unwrap().current();
        let d = decide(&c.policy, &c.proxy, c.ladder(), &c.obs, &c.state, NOW);
        let mut hit =
            |what: &'static str, yes: bool| *seen.entry(what).or_default() += usize::from(yes);
        let open: Vec<&WinSpec> = c.windows.iter().filter(|w| w.active()).collect();
        hit("a window open", !open.is_empty());
        hit("a window closed", c.windows.iter().any(|w| !w.active()));
        hit("two windows open", open.len() >= 2);
        let lead = c.policy.lead();
        hit(
            "a window opening within the lead",
            c.windows.iter().any(|w| w.opens_within(lead)),
        );
        hit(
            "a window opening just after the lead",
            c.windows.iter().any(|w| {
                !w.active() && !w.opens_within(lead) && w.next_opening() - NOW.millis() <= 120_000
            }),
        );
        hit(
            "a window closing exactly at NOW",
            c.windows.iter().any(|w| {
                let probe = WinSpec {
                    minutes: w.minutes + 1,
                    ..w.clone()
                };
                !w.active() && probe.active()
            }),
        );
        for dim in Dim::ALL {
            let cfg_max = match dim {
                Dim::Bandwidth => c.policy.bandwidth.as_ref(),
                Dim::Concurrent => c.policy.concurrent.as_ref(),
            }
            .unwrap()
            .max;
            let (min, max) = expected_bounds(&c, dim);
            let wmax = open.iter().filter_map(|w| w.bounds(dim).1).min();
            hit(
                "a window min raising the max",
                wmax.unwrap_or(cfg_max) < min,
            );
            hit(
                "bounds set by windows",
                (min, max) != {
                    let cfg = match dim {
                        Dim::Bandwidth => c.policy.bandwidth.as_ref(),
                        Dim::Concurrent => c.policy.concurrent.as_ref(),
                    }
                    .unwrap();
                    (cfg.min, cfg.max)
                },
            );
        }
        hit(
            "a change held to a window bound",
            d.verdict == Verdict::Change
                && d.reasons.iter().any(|r| r.code == ReasonCode::WindowActive),
        );
        hit("a change", d.verdict == Verdict::Change);
        hit("ADJUSTING", c.proxy.status == ProxyStatus::Adjusting);
        hit(
            "another status",
            matches!(c.proxy.status, ProxyStatus::Other(_)),
        );
        hit("no ladder", !c.has_ladder);
        hit("Scalarable 0", c.proxy.scalarable == 0);
        hit(
            "a reading dated in the future",
            c.obs
                .signals
                .values()
                .any(|r| matches!(r, Reading::Value { at, .. } if *at > NOW)),
        );
        hit(
            "a cooldown stamp dated in the future",
            [&c.state.bandwidth, &c.state.concurrent]
                .iter()
                .any(|s| s.last_up.max(s.last_down).is_some_and(|t| t > NOW)),
        );
        hit(
            "step rules on both dimensions",
            matches!(c.policy.bandwidth.as_ref().unwrap().rule, Rule::Steps(_))
                && matches!(c.policy.concurrent.as_ref().unwrap().rule, Rule::Steps(_)),
        );
    }
    let missing: Vec<_> = seen
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(k, _)| *k)
        .collect();
    assert!(
        missing.is_empty(),
        "never generated: {missing:?} (all: {seen:?})"
    );
    assert_eq!(seen.len(), 17, "{seen:?}");
}
