//! Table tests, stage by stage. Numbers use the fixture policy: utilization 0.7,
//! bandwidth [10, 500] on ladder 10/20/50/100/200/500/1000, concurrent [2, 20] on 2/5/10/20/30.

use std::time::Duration;

use super::fixtures::{self, ladder, observe, policy, proxy};
use super::*;
use crate::policy::{MissingAction, Rule, StepRule};

const T0: Timestamp = Timestamp::from_secs(1_795_939_200); // 2026-11-29T00:00:00Z (a Sunday)

fn codes(d: &Decision) -> Vec<String> {
    d.reason_codes()
}

/// A controller that has watched the proxy for a day (no history in the windows).
fn seasoned() -> ControllerState {
    let mut st = ControllerState::default();
    st.bandwidth.observed_since = Some(T0 - Duration::from_secs(86_400));
    st.concurrent.observed_since = Some(T0 - Duration::from_secs(86_400));
    st
}

fn decide_simple(bw: u32, cc: u32, demand: f64, conns: f64) -> Decision {
    let p = policy();
    decide(
        &p,
        &proxy(bw, cc),
        Some(&ladder()),
        &observe(demand, conns, T0),
        &seasoned(),
        T0,
    )
}

#[test]
fn guard_stage() {
    let p = policy();
    let l = ladder();
    let obs = observe(1000.0, 500_000.0, T0);
    let st = ControllerState::default();
    let mut adjusting = proxy(10, 2);
    adjusting.status = ProxyStatus::Adjusting;
    let mut stopped = proxy(10, 2);
    stopped.status = ProxyStatus::parse("CLOSED");
    let mut fixed = proxy(10, 2);
    fixed.scalarable = 0;
    let cases: Vec<(&str, ProxyState, Option<&Ladder>, Verdict, &str)> = vec![
        (
            "adjusting waits",
            adjusting,
            Some(&l),
            Verdict::Wait,
            "guard.adjusting",
        ),
        (
            "closed is skipped",
            stopped,
            Some(&l),
            Verdict::Skip,
            "guard.not_running",
        ),
        (
            "scalarable 0 is skipped",
            fixed,
            Some(&l),
            Verdict::Skip,
            "guard.not_scalarable",
        ),
        (
            "no ladder is skipped",
            proxy(10, 2),
            None,
            Verdict::Skip,
            "guard.no_ladder",
        ),
    ];
    for (name, px, lad, verdict, code) in cases {
        let d = decide(&p, &px, lad, &obs, &st, T0);
        assert_eq!(d.verdict, verdict, "{name}");
        assert_eq!(codes(&d), vec![code.to_string()], "{name}");
        assert_eq!(
            (d.bandwidth_to, d.concurrent_to),
            (10, 2),
            "{name}: nothing moves"
        );
        assert_eq!(d.next_state, st, "{name}: state untouched");
    }
}

#[test]
fn raw_need_tolerance_and_ladder() {
    // (current bw, demand Mbps, expected bw target, expected bandwidth reason codes)
    let cases: &[(u32, f64, u32, &[&str])] = &[
        (50, 45.5, 100, &["bandwidth:scale.up"]),  // need 65 → 100
        (100, 70.0, 100, &[]),                     // need 100 exactly: nothing to say
        (100, 90.0, 200, &["bandwidth:scale.up"]), // need 128.6 → round up to 200
        (100, 72.8, 100, &["bandwidth:tolerance.within"]), // need 104 ≤ 105
        (100, 74.2, 200, &["bandwidth:scale.up"]), // need 106 > 105
        (100, 66.5, 100, &["bandwidth:tolerance.within"]), // need 95 ≥ 90
        (200, 70.0, 100, &["bandwidth:scale.down"]), // need 100 → 100 (one step down)
        (
            500,
            2000.0,
            500,
            &[
                "bandwidth:ladder.top",
                "bandwidth:data.saturated",
                "bandwidth:bounds.max",
            ],
        ), // need 2857, a reading above the capacity
    ];
    for &(cur, demand, want, want_codes) in cases {
        // Concurrent held exactly: need 2.0 = current 2.
        let d = decide_simple(cur, 2, demand, 14_000.0);
        assert_eq!(d.bandwidth_to, want, "current {cur}, demand {demand}");
        let bw: Vec<String> = codes(&d)
            .into_iter()
            .filter(|c| c.starts_with("bandwidth:"))
            .collect();
        assert_eq!(bw, want_codes, "current {cur}, demand {demand}");
        let need = demand / 0.7;
        assert!((d.bandwidth.raw_need.unwrap() - need).abs() < 1e-9);
    }
}

#[test]
fn concurrent_need_counts_connections_in_units_of_ten_thousand() {
    // 35,000 connections / (10,000 × 0.7) = 5 units, on 10 units: one step down.
    let d = decide_simple(10, 10, 7.0, 35_000.0);
    assert_eq!(d.concurrent.raw_need, Some(5.0));
    assert_eq!(d.concurrent_to, 5);
    assert_eq!(d.direction, Some(Direction::Down));
    assert_eq!(d.verdict, Verdict::Change);
}

#[test]
fn data_stage_holds_then_falls_back_upward() {
    let mut p = policy();
    p.on_missing_data.action = MissingAction::Fallback;
    p.on_missing_data.after = 3;
    p.on_missing_data.bandwidth = Some(150);
    let l = ladder();
    let px = proxy(100, 5);
    let mut obs = observe(0.0, 35_000.0, T0);
    obs.signals.insert(
        "bandwidth".into(),
        Reading::Missing {
            reason: NoData::Stale { age_ms: 600_000 },
        },
    );
    let mut st = ControllerState::default();
    let mut seen = Vec::new();
    for i in 0..4 {
        let now = T0 + Duration::from_secs(30 * i);
        let d = decide(&p, &px, Some(&l), &obs, &st, now);
        seen.push((d.bandwidth_to, d.bandwidth.target));
        let bw: Vec<String> = codes(&d)
            .into_iter()
            .filter(|c| c.starts_with("bandwidth:"))
            .collect();
        if i < 2 {
            assert_eq!(bw, vec!["bandwidth:data.missing"], "evaluation {i}");
        } else {
            assert_eq!(
                bw,
                vec!["bandwidth:data.fallback", "bandwidth:scale.up"],
                "evaluation {i}"
            );
        }
        st = d.next_state;
        // Keep the proxy at 100 to see the streak grow (the change is not applied, so
        // the values last known are 100's too).
        st.bandwidth.last_up = None;
        st.operator.last_known = Some((px.bandwidth, px.concurrent));
    }
    assert_eq!(seen[0].0, 100);
    assert_eq!(seen[1].0, 100);
    assert_eq!(
        seen[2].0, 200,
        "cheapest allowed value covering the fallback 150"
    );
    // A fallback below the current value never scales down.
    let high = proxy(500, 5);
    let d = decide(&p, &high, Some(&l), &obs, &st, T0);
    assert_eq!(d.bandwidth_to, 500);
    // Data returning resets the streak.
    let d = decide(&p, &px, Some(&l), &observe(70.0, 35_000.0, T0), &st, T0);
    assert_eq!(d.next_state.bandwidth.missing_streak, 0);
}

#[test]
fn every_kind_of_missing_value_holds() {
    let p = policy();
    let l = ladder();
    let reasons = [
        Reading::Missing {
            reason: NoData::NoSeries,
        },
        Reading::Missing {
            reason: NoData::MultipleSeries { count: 2 },
        },
        Reading::Missing {
            reason: NoData::NotANumber,
        },
        Reading::Missing {
            reason: NoData::Infinite,
        },
        Reading::Missing {
            reason: NoData::Negative { value: -1.0 },
        },
        Reading::Missing {
            reason: NoData::Stale { age_ms: 1 },
        },
        Reading::Missing {
            reason: NoData::QueryError {
                kind: "timeout".into(),
                message: "x".into(),
            },
        },
        // A raw NaN that slipped through as a value is still not a number to the core.
        Reading::Value {
            value: f64::NAN,
            at: T0,
        },
        Reading::Value {
            value: -5.0,
            at: T0,
        },
    ];
    for r in reasons {
        let mut obs = Observation::default();
        obs.signals.insert("bandwidth".into(), r.clone());
        obs.signals.insert("connections".into(), r.clone());
        let d = decide(
            &p,
            &proxy(500, 20),
            Some(&l),
            &obs,
            &ControllerState::default(),
            T0,
        );
        assert_eq!((d.bandwidth_to, d.concurrent_to), (500, 20), "{r:?}");
        assert_eq!(d.verdict, Verdict::Hold, "{r:?}");
    }
}

#[test]
fn stabilization_delays_scale_down_for_the_window() {
    let p = policy(); // scale-down stabilization 10m, cooldown 10m
    let l = ladder();
    let px = proxy(200, 2);
    let mut st = ControllerState::default();
    // Demand needs 200 for a while, then drops to need 50.
    let d = decide(&p, &px, Some(&l), &observe(140.0, 14_000.0, T0), &st, T0);
    assert_eq!(d.bandwidth_to, 200);
    st = d.next_state;
    let mut first_down = None;
    for i in 1..=30 {
        let now = T0 + Duration::from_secs(30 * i);
        let d = decide(&p, &px, Some(&l), &observe(30.0, 14_000.0, now), &st, now);
        if d.bandwidth_to < 200 {
            first_down = Some((i, d.bandwidth_to));
            break;
        }
        assert!(
            codes(&d).contains(&"bandwidth:stabilization.held".to_string()),
            "step {i}"
        );
        st = d.next_state;
    }
    // The 200 recommendation at T0 leaves the 10-minute window at T0+10m (step 20).
    assert_eq!(
        first_down,
        Some((20, 100)),
        "down one ladder step (max_steps 1), after 10 minutes"
    );
}

#[test]
fn rate_limits_steps_per_change() {
    // current 10, need ~686 → ladder 1000 → bounds 500 later; max 2 steps up → 50.
    let d = decide_simple(10, 2, 480.0, 14_000.0);
    assert_eq!(d.bandwidth.recommended, 1000);
    assert_eq!(d.bandwidth.rate_limited, 50);
    assert_eq!(d.bandwidth_to, 50);
    assert!(codes(&d).contains(&"bandwidth:rate.max_steps".to_string()));
}

#[test]
fn no_step_limit_goes_straight_to_the_need() {
    // max_steps = u32::MAX (the HPA peer's "no limit") must not wrap to a step down.
    let mut p = policy();
    p.behavior.scale_up.max_steps = u32::MAX;
    p.behavior.scale_down.max_steps = u32::MAX;
    let l = ladder();
    let st = seasoned();
    // (current, demand, want): up from 10 to cover 686 → 1000 → bounds 500; down 500 → 10;
    // a saturated 20 goes up the (unlimited) max_steps at once: to the bound.
    for (cur, demand, want) in [(10, 480.0, 500), (500, 1.0, 10), (20, 20.0, 500)] {
        let d = decide(
            &p,
            &proxy(cur, 2),
            Some(&l),
            &observe(demand, 14_000.0, T0),
            &st,
            T0,
        );
        assert_eq!(d.bandwidth_to, want, "{cur} with demand {demand}");
    }
}

#[test]
fn bounds_and_windows() {
    let mut p = policy();
    // Business hours 09:00–19:00 Asia/Shanghai on weekdays: bandwidth at least 100.
    p.windows
        .push(fixtures::window("0 0 9 * * Mon-Fri", 10, 100));
    let l = ladder();
    let monday_10_local = crate::time::parse_time("2026-11-30T10:00:00+08:00").unwrap();
    let monday_20_local = crate::time::parse_time("2026-11-30T20:00:00+08:00").unwrap();
    let sunday_10_local = crate::time::parse_time("2026-11-29T10:00:00+08:00").unwrap();
    let cases = [
        (
            monday_10_local,
            100,
            vec![
                "bandwidth:tolerance.within",
                "bandwidth:bounds.min",
                "bandwidth:window.active",
                "bandwidth:scale.up",
            ],
        ),
        (monday_20_local, 20, vec!["bandwidth:tolerance.within"]),
        (sunday_10_local, 20, vec!["bandwidth:tolerance.within"]),
    ];
    for (now, want, want_codes) in cases {
        // Demand 13.3 → need 19 → within tolerance of 20.
        let d = decide(
            &p,
            &proxy(20, 2),
            Some(&l),
            &observe(13.3, 14_000.0, now),
            &ControllerState::default(),
            now,
        );
        assert_eq!(d.bandwidth_to, want, "{now}");
        let bw: Vec<String> = codes(&d)
            .into_iter()
            .filter(|c| c.starts_with("bandwidth:"))
            .collect();
        assert_eq!(bw, want_codes, "{now}");
    }
    // Policy min: need 1.4 → ladder 10 = min.
    let d = decide_simple(20, 2, 1.0, 14_000.0);
    assert_eq!(d.bandwidth_to, 10);
}

#[test]
fn cooldown_per_direction() {
    let p = policy(); // up cooldown 1m, down cooldown 10m
    let l = ladder();
    let mut st = ControllerState::default();
    st.bandwidth.last_up = Some(T0);
    let cases = [
        (30, 50, 200.0, 50, "bandwidth:cooldown.up"), // wants 500, 30s after a change
        (61, 50, 200.0, 200, "bandwidth:scale.up"),   // after 1m: allowed (2 steps)
        (300, 200, 30.0, 200, "bandwidth:cooldown.down"), // wants down, 5m after
        (601, 200, 30.0, 100, "bandwidth:scale.down"), // after 10m: allowed
    ];
    for (secs, cur, demand, want, code) in cases {
        let now = T0 + Duration::from_secs(secs);
        let mut s = st.clone();
        // No stabilization history: isolate the cooldown stage.
        s.bandwidth.recommendations.clear();
        let mut pp = p.clone();
        pp.behavior.scale_down.stabilization = Duration::ZERO;
        let d = decide(
            &pp,
            &proxy(cur, 2),
            Some(&l),
            &observe(demand, 14_000.0, now),
            &s,
            now,
        );
        assert_eq!(d.bandwidth_to, want, "t+{secs}s");
        assert!(
            codes(&d).contains(&code.to_string()),
            "t+{secs}s: {:?}",
            codes(&d)
        );
    }
}

/// Step rules from (above, below, change) rows.
fn steps(rows: &[(Option<f64>, Option<f64>, i32)]) -> Rule {
    Rule::Steps(
        rows.iter()
            .map(|&(above, below, change)| StepRule {
                above,
                below,
                change,
            })
            .collect(),
    )
}

#[test]
fn step_rules_move_whole_ladder_steps() {
    let mut p = policy();
    p.bandwidth.as_mut().unwrap().rule = steps(&[
        (Some(0.9), None, 2),
        (Some(0.75), None, 1),
        (None, Some(0.3), -1),
    ]);
    let l = ladder();
    // (current, demand, target)
    let cases = [
        (100, 95.0, 500),
        (100, 80.0, 200),
        (100, 50.0, 100),
        (100, 20.0, 50),
    ];
    for (cur, demand, want) in cases {
        let mut pp = p.clone();
        pp.behavior.scale_down.stabilization = Duration::ZERO;
        let d = decide(
            &pp,
            &proxy(cur, 2),
            Some(&l),
            &observe(demand, 14_000.0, T0),
            &ControllerState::default(),
            T0,
        );
        assert_eq!(d.bandwidth_to, want, "current {cur}, demand {demand}");
    }
}

#[test]
fn a_step_down_into_an_upward_band_holds() {
    // Down below 40% busy, up from 75%: 50 → 20 multiplies the utilization by 2.5.
    let mut p = policy();
    p.bandwidth.as_mut().unwrap().rule = steps(&[(Some(0.75), None, 1), (None, Some(0.4), -1)]);
    p.behavior.scale_down.stabilization = Duration::ZERO;
    // (current, demand, target, the bandwidth reason)
    let cases = [
        (50, 19.0, 50, "bandwidth:step.anticipated_flapping"), // 0.38 busy; on 20: 0.95
        (50, 14.0, 20, "bandwidth:step.rule"),                 // 0.28 busy; on 20: 0.70
        (100, 36.0, 50, "bandwidth:step.rule"),                // 0.36 busy; on 50: 0.72
        (100, 39.0, 100, "bandwidth:step.anticipated_flapping"), // 0.39 busy; on 50: 0.78
    ];
    for (cur, demand, want, reason) in cases {
        let d = decide(
            &p,
            &proxy(cur, 2),
            Some(&ladder()),
            &observe(demand, 14_000.0, T0),
            &ControllerState::default(),
            T0,
        );
        assert_eq!(d.bandwidth_to, want, "current {cur}, demand {demand}");
        assert!(codes(&d).contains(&reason.to_string()), "{:?}", codes(&d));
    }
}

#[test]
fn one_change_carries_both_dimensions() {
    // Bandwidth up to 200. Concurrency (seasoned state): 14,000 connections are 1.4 units,
    // 2 at utilization 0.7, but a scale-down moves at most one ladder step: 10 -> 5.
    let d = decide_simple(50, 10, 140.0, 14_000.0);
    assert_eq!(d.verdict, Verdict::Change);
    assert_eq!(d.bandwidth_to, 200);
    assert_eq!((d.concurrent_from, d.concurrent_to), (10, 5));
    assert_eq!(d.direction, Some(Direction::Up));
    assert_eq!(d.next_state.bandwidth.last_up, Some(T0));
    // Held decisions still say why.
    let d = decide_simple(100, 2, 70.0, 14_000.0);
    assert_eq!(d.verdict, Verdict::Hold);
    assert_eq!(codes(&d), vec!["hold.no_change"]);
}

#[test]
fn window_activity_over_a_week() {
    let w = fixtures::window("0 0 9 * * Mon-Fri", 10, 100);
    let cases = [
        ("2026-11-30T08:59:59+08:00", false),
        ("2026-11-30T09:00:00+08:00", true),
        ("2026-11-30T18:59:59+08:00", true),
        ("2026-11-30T19:00:00+08:00", false),
        ("2026-12-05T10:00:00+08:00", false), // Saturday
        ("2026-12-04T10:00:00+08:00", true),  // Friday
    ];
    for (t, want) in cases {
        assert_eq!(
            decide::window_active(&w, crate::time::parse_time(t).unwrap()),
            want,
            "{t}"
        );
    }
}

#[test]
fn a_fresh_controller_does_not_scale_down_before_a_whole_window() {
    let p = policy(); // scale-down stabilization 10m
    let l = ladder();
    let px = proxy(200, 2);
    let mut st = ControllerState::default();
    let mut first_down = None;
    for i in 0..=30 {
        let now = T0 + Duration::from_secs(30 * i);
        let d = decide(&p, &px, Some(&l), &observe(30.0, 14_000.0, now), &st, now);
        if d.bandwidth_to < 200 {
            first_down = Some(i);
            break;
        }
        st = d.next_state;
    }
    assert_eq!(st.bandwidth.observed_since, Some(T0));
    assert_eq!(
        first_down,
        Some(20),
        "the first scale-down comes a whole 10-minute window after the first look"
    );
    // Scale-ups are never delayed by it.
    let d = decide(
        &p,
        &proxy(20, 2),
        Some(&l),
        &observe(100.0, 14_000.0, T0),
        &ControllerState::default(),
        T0,
    );
    assert_eq!(d.bandwidth_to, 100);
}

#[test]
fn the_window_memo_never_changes_an_answer() {
    let w = fixtures::window("0 30 9 * * Mon-Fri", 5, 100);
    // Times over two weeks in a scrambled order (forwards, backwards, repeats).
    let mut x: u64 = 42;
    let mut opened = 0;
    for _ in 0..5_000 {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let t = T0 + Duration::from_secs((x >> 33) % (14 * 86_400));
        let fresh = decide::window_active(&w.clone(), t); // a clone starts with an empty memo
        assert_eq!(decide::window_active(&w, t), fresh, "{t}");
        opened += usize::from(fresh);
    }
    assert!(
        opened > 500 && opened < 3_000,
        "{opened} of 5000 open: the window is sometimes open"
    );
}
