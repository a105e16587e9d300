//! Issue 13's four weaknesses, each on a hand-made trace replayed through the same
//! `decide()` as the daemon: the case that showed it, before (the stage off, i.e. the old
//! behavior) and after (the stage at its default). Each comparison fails if the stage does
//! nothing.

use std::time::Duration;

use gaap_autoscaler::core::{Direction, ProxyState, fixtures};
use gaap_autoscaler::fleet::{Fleet, LadderEntry};
use gaap_autoscaler::policy::{FlapBudget, Policy};
use gaap_autoscaler::sim::report::{self};
use gaap_autoscaler::sim::{PolicySet, SimOptions, SimRun, replay};
use gaap_autoscaler::time::Timestamp;
use gaap_autoscaler::trace::Trace;

const MIN: i64 = 60_000;
// 2026-11-30T00:00:00Z, a Monday.
const T0: i64 = 1_796_083_200_000 - 8 * 3_600_000 - 16 * 3_600_000;

fn proxy(bandwidth: u32) -> ProxyState {
    ProxyState {
        id: "link-hand0001".into(),
        ..fixtures::proxy(bandwidth, 2)
    }
}

/// The fixture policy (target 0.7, bandwidth [10, 500], 30 s interval) for the hand proxy,
/// bandwidth only, evaluated every minute.
fn policy() -> Policy {
    let mut p = fixtures::policy();
    p.selector.proxies = vec!["link-hand0001".into()];
    p.concurrent = None;
    p.schedule = gaap_autoscaler::policy::Schedule::Interval(Duration::from_secs(60));
    p
}

fn run(p: &Policy, start_bw: u32, minutes: i64, mbps: impl Fn(i64) -> f64) -> SimRun {
    let mut trace = Trace::default();
    for m in 0..minutes {
        trace
            .series_mut("link-hand0001", "bandwidth")
            .push(Timestamp(T0 + m * MIN), mbps(m));
    }
    let fleet = Fleet {
        ladders: vec![LadderEntry {
            access_region: "Guangzhou".into(),
            dest_region: None,
            ladder: fixtures::ladder(),
        }],
        proxies: vec![proxy(start_bw)],
    };
    let set = PolicySet {
        label: "hand".into(),
        policies: vec![p.clone()],
    };
    let opts = SimOptions::new(Timestamp(T0), Timestamp(T0 + (minutes - 1) * MIN));
    replay(&set, &fleet, &trace, &opts, &mut |_| {}).expect("replay")
}

fn ups_during(r: &SimRun, from_min: i64, to_min: i64) -> usize {
    r.proxies[0]
        .changes
        .iter()
        .filter(|c| c.direction == Direction::Up)
        .filter(|c| (T0 + from_min * MIN..T0 + to_min * MIN).contains(&c.time.millis()))
        .count()
}

fn downs(r: &SimRun) -> usize {
    r.proxies[0]
        .changes
        .iter()
        .filter(|c| c.direction == Direction::Down)
        .count()
}

fn mbps(r: &SimRun) -> f64 {
    report::proxy_report(&r.proxies[0], "hand", None)
        .figures
        .footprint_mbps_hours
}

/// 1. A 248 Mbps burst on a 10 Mbps proxy: the capped reading (10) needs 14.3 → 20, one
///    step per evaluation without the saturation stage; with it, max_steps (2) at once.
#[test]
fn saturation_climbs_the_burst_in_fewer_changes_and_serves_more_of_it() {
    let burst = |m: i64| if (60..75).contains(&m) { 248.0 } else { 5.0 };
    let mut off = policy();
    off.bandwidth.as_mut().unwrap().saturation = f64::INFINITY;
    let before = run(&off, 10, 120, burst);
    let after = run(&policy(), 10, 120, burst);
    let (b, a) = (ups_during(&before, 60, 75), ups_during(&after, 60, 75));
    assert!(
        a < b,
        "scale-ups during the burst: {a} with saturation, {b} without"
    );
    let under = |r: &SimRun| {
        report::proxy_report(&r.proxies[0], "hand", None)
            .figures
            .unserved_mbps_hours
    };
    assert!(
        under(&after) < under(&before),
        "unserved {} vs {}",
        under(&after),
        under(&before)
    );
    let reasons = &after.proxies[0].changes[0].reasons;
    assert!(
        reasons.iter().any(|r| r.contains("data.saturated")),
        "{reasons:?}"
    );
}

/// 2. Demand that needs 100, drops for 12 minutes, comes back, over and over: without the
///    flap budget each pulse is a scale-down and a scale-up minutes later; with it the
///    scale-down window stretches after the first reversal and the proxy holds.
#[test]
fn the_flap_budget_stops_a_pulse_from_flapping() {
    let pulse = |m: i64| if m % 25 < 13 { 60.0 } else { 10.0 };
    let mut p = policy();
    p.behavior.scale_down.cooldown = Duration::from_secs(60);
    p.behavior.scale_down.stabilization = Duration::from_secs(10 * 60);
    p.behavior.flap_budget = None;
    let before = run(&p, 100, 6 * 60, pulse);
    p.behavior.flap_budget = Some(FlapBudget::DEFAULT);
    let after = run(&p, 100, 6 * 60, pulse);
    let flaps = |r: &SimRun| report::flapping(&r.proxies[0]);
    assert!(
        flaps(&before) >= 10,
        "the case flaps without the budget: {}",
        flaps(&before)
    );
    assert!(
        flaps(&after) * 4 <= flaps(&before),
        "flaps {} with the budget, {} without",
        flaps(&after),
        flaps(&before)
    );
    assert!(
        after.proxies[0]
            .reasons
            .iter()
            .any(|(c, _)| c.as_str() == "scale_down.flap_budget")
    );
}

/// 3. A window raising the minimum to 100 at 09:00 Asia/Shanghai (01:00Z): the old engine
///    went down at 00:55 and back up at 01:00; with the look-ahead it holds (the window
///    opens within the scale-down horizon, max(cooldown 10m, stabilization 5m)).
#[test]
fn no_scale_down_just_before_a_window_raises_the_minimum() {
    let mut p = policy();
    p.behavior.scale_down.stabilization = Duration::from_secs(5 * 60);
    p.behavior.scale_down.max_steps = 6;
    // From 00:00Z: need 143 → 200 for 50 minutes, then 7 until after the window opens.
    let demand = |m: i64| if m < 50 { 100.0 } else { 5.0 };
    let downs_before_open = |r: &SimRun| {
        r.proxies[0]
            .changes
            .iter()
            .filter(|c| c.direction == Direction::Down && c.time.millis() < T0 + 60 * MIN)
            .filter(|c| c.bandwidth_to < 100)
            .count()
    };
    // Below the coming minimum before 01:00: the policy without the window does (the case).
    let blind = run(&p, 200, 90, demand);
    assert!(downs_before_open(&blind) > 0);
    p.windows
        .push(fixtures::window("0 0 9 * * Mon-Fri", 10, 100));
    let after = run(&p, 200, 90, demand);
    assert_eq!(
        downs_before_open(&after),
        0,
        "{:?}",
        after.proxies[0].changes
    );
    assert!(
        after.proxies[0]
            .reasons
            .iter()
            .any(|(c, _)| c.as_str() == "window.ahead")
    );
    // Once open, the window's minimum holds: 200 → 100 at most.
    assert!(
        after.proxies[0]
            .changes
            .iter()
            .all(|c| c.bandwidth_to >= 100)
    );
}

/// 4. Release: after a peak, a long stabilization and one step down per change made a
///    staircase; `max_steps` down lets the release be one change.
#[test]
fn a_release_is_one_change_not_a_staircase() {
    let peak = |m: i64| if m < 30 { 300.0 } else { 5.0 };
    let mut p = policy();
    p.behavior.scale_down.stabilization = Duration::from_secs(30 * 60);
    p.behavior.scale_down.cooldown = Duration::from_secs(10 * 60);
    p.behavior.scale_down.max_steps = 1;
    let stairs = run(&p, 500, 240, peak);
    p.behavior.scale_down.max_steps = 6;
    let once = run(&p, 500, 240, peak);
    assert!(downs(&stairs) >= 4, "{}", downs(&stairs));
    assert_eq!(downs(&once), 1);
    assert!(mbps(&once) < mbps(&stairs));
}

/// 4b. A long window holds a big burst as long as a small one: a 300 Mbps burst for 10
///    minutes on a 20 Mbps baseline, with a 3h scale-down window, keeps 500 Mbps for 3h.
///    With `change_worth = 300` (Mbps·h), the release freeing 450 Mbps goes after 40
///    quiet minutes, in one change; a small burst (to 40 Mbps) still waits the window.
#[test]
fn a_big_burst_is_released_sooner_than_a_small_one() {
    let burst = |peak: f64| move |m: i64| if (10..20).contains(&m) { peak } else { 20.0 };
    let mut p = policy();
    p.behavior.scale_down.stabilization = Duration::from_secs(3 * 3600);
    p.behavior.scale_down.cooldown = Duration::ZERO;
    p.behavior.scale_down.max_steps = 6;
    p.behavior.flap_budget = None;
    let held = run(&p, 50, 300, burst(300.0));
    p.bandwidth.as_mut().unwrap().change_worth = Some(300.0);
    let worth = run(&p, 50, 300, burst(300.0));
    // Minute m's capacity in effect.
    let cap_at = |r: &SimRun, m: i64| {
        let pr = &r.proxies[0];
        let i = pr.times.iter().position(|&t| t == T0 + m * MIN).unwrap();
        pr.cap_bw[i]
    };
    assert_eq!(cap_at(&held, 25), 500, "the burst is served");
    assert_eq!(cap_at(&worth, 25), 500, "the burst is served");
    // 40 minutes after the burst's last minute (19): held at 500 without, 50 with.
    assert_eq!(cap_at(&held, 80), 500);
    assert_eq!(cap_at(&worth, 80), 50);
    assert_eq!(cap_at(&held, 215), 50, "the 3h window ends");
    assert_eq!(downs(&worth), 1, "one change down");
    assert!(
        mbps(&worth) < 0.5 * mbps(&held),
        "{} vs {}",
        mbps(&worth),
        mbps(&held)
    );
    // A small burst frees only 20-50 Mbps: its wait is longer than the window.
    let small = run(&p, 50, 300, burst(40.0));
    let first_down = small.proxies[0]
        .changes
        .iter()
        .find(|c| c.direction == Direction::Down)
        .map(|c| (c.time.millis() - T0) / MIN);
    assert!(
        first_down.is_none_or(|m| m >= 19 + 180),
        "released at minute {first_down:?}"
    );
}

#[test]
fn after_flapping_a_big_burst_is_still_released_soon() {
    // A pulse flaps (60 Mbps for 13 minutes of every 25, else 10) until minute 150: the
    // default flap budget stretches the 10-minute window. Then 10 Mbps, with a 300 Mbps
    // burst at minutes 200-209. The stretch holds the small releases (100 → 20), but the
    // burst's 500 frees 480 Mbps: it is held for a share of the stretched window only.
    let demand = |m: i64| match m {
        0..150 if m % 25 < 13 => 60.0,
        200..210 => 300.0,
        _ => 10.0,
    };
    let mut p = policy();
    p.behavior.scale_down.cooldown = Duration::from_secs(60);
    p.behavior.scale_down.stabilization = Duration::from_secs(10 * 60);
    p.behavior.scale_down.max_steps = 6;
    assert_eq!(p.behavior.flap_budget, Some(FlapBudget::DEFAULT));
    let r = run(&p, 100, 420, demand);
    let cap_at = |m: i64| {
        let pr = &r.proxies[0];
        let i = pr.times.iter().position(|&t| t == T0 + m * MIN).unwrap();
        pr.cap_bw[i]
    };
    // The pulse's last need for 100 is at minute 137: the stretched window still holds
    // 100 at 150 (13 minutes on; the policy's own window is 10).
    assert_eq!(cap_at(150), 100);
    assert_eq!(cap_at(205), 500, "the burst is served");
    // Released to 20 within 13 minutes of the burst's last minute (209), in one change.
    assert_eq!(cap_at(222), 20);
    let codes: Vec<&str> = r.proxies[0]
        .reasons
        .iter()
        .map(|(c, _)| c.as_str())
        .collect();
    assert!(codes.contains(&"scale_down.flap_budget"), "{codes:?}");
    assert!(codes.contains(&"scale_down.change_worth"), "{codes:?}");
    let after_burst = r.proxies[0]
        .changes
        .iter()
        .filter(|c| c.time.millis() >= T0 + 210 * MIN)
        .count();
    assert_eq!(after_burst, 1, "one change down after the burst");
}
